/*
 * data.h — the answers the assistant gives from the caller's own data.
 *
 * Each action reads the REST API with the caller's own token, so the roles
 * that own the data keep deciding who may see it: the assistant never reads
 * another role's tables.  When the API cannot answer (the consumption API is
 * missing, a timeout, an error), the action's outcome is "unavailable" and
 * no number is made up.
 *
 *   usage_yesterday  total kWh of all the caller's devices over yesterday (local day)
 *   top_device       the device that used most over the last 7 local days
 *   limit_alerts     over-limit alerts over the last 7 days
 */
#ifndef EMS_SUPPORT_DATA_H
#define EMS_SUPPORT_DATA_H

#include "rules.h"

extern const support_action support_actions[];
extern const size_t support_nactions;

#endif
