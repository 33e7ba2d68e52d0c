/*
 * result.h — the one result type of EMS.
 *
 * Every fallible function in the core and the roles returns an ems_rc.  The
 * table below is the single source of the codes, their HTTP status and the
 * short machine-readable name that goes into the JSON error envelope
 * {"error":{"code":"<name>","message":"..."}}.  EMS_OK is 0.
 *
 * EMS_AGAIN ("try again later") and EMS_DECLINED ("not mine") are not
 * failures: callers decide what they mean in context.
 */
#ifndef EMS_RESULT_H
#define EMS_RESULT_H

#define EMS_RESULT_MAP(X)                                                                                              \
    X(OK, 200, "ok", "ok")                                                                                             \
    X(BAD_REQUEST, 400, "bad_request", "bad request")                                                                  \
    X(UNAUTHORIZED, 401, "unauthorized", "missing or invalid token")                                                   \
    X(FORBIDDEN, 403, "forbidden", "not allowed")                                                                      \
    X(NOT_FOUND, 404, "not_found", "not found")                                                                        \
    X(METHOD, 405, "method_not_allowed", "method not allowed")                                                         \
    X(CONFLICT, 409, "conflict", "conflict")                                                                           \
    X(TOO_LARGE, 413, "too_large", "request too large")                                                                \
    X(UNSUPPORTED, 415, "unsupported_media_type", "expected JSON")                                                     \
    X(RATE_LIMITED, 429, "rate_limited", "too many requests")                                                          \
    X(INTERNAL, 500, "internal", "internal error")                                                                     \
    X(UNAVAILABLE, 503, "unavailable", "dependency unavailable")                                                       \
    X(AGAIN, 503, "again", "try again")                                                                                \
    X(DECLINED, 404, "declined", "not handled here")                                                                   \
    X(NOMEM, 500, "internal", "out of memory")

typedef enum {
#define EMS_RC_ENUM(name, status, code, msg) EMS_##name,
    EMS_RESULT_MAP(EMS_RC_ENUM)
#undef EMS_RC_ENUM
        EMS_RC_COUNT
} ems_rc;

/* HTTP status for a result code (200 for EMS_OK). */
int ems_rc_status(ems_rc rc);
/* Short machine-readable name, e.g. "not_found". */
const char *ems_rc_code(ems_rc rc);
/* Default human message, e.g. "not found". */
const char *ems_rc_message(ems_rc rc);

#endif
