/* result.c — lookups over the EMS_RESULT_MAP table. */
#include "result.h"

static const struct {
    int status;
    const char *code;
    const char *msg;
} rc_table[] = {
#define EMS_RC_ROW(name, status, code, msg) {status, code, msg},
    EMS_RESULT_MAP(EMS_RC_ROW)
#undef EMS_RC_ROW
};

int ems_rc_status(ems_rc rc) { return (unsigned)rc < EMS_RC_COUNT ? rc_table[rc].status : 500; }

const char *ems_rc_code(ems_rc rc) { return (unsigned)rc < EMS_RC_COUNT ? rc_table[rc].code : "internal"; }

const char *ems_rc_message(ems_rc rc) { return (unsigned)rc < EMS_RC_COUNT ? rc_table[rc].msg : "internal error"; }
