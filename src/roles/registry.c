/*
 * registry.c — the table of roles compiled into this binary.
 */
#include "roles.h"

#include <string.h>

const ems_role_def *const ems_roles[] = {&ems_role_auth,     &ems_role_users, &ems_role_devices, &ems_role_monitoring,
                                         &ems_role_balancer, &ems_role_ws,    &ems_role_support};
const size_t ems_nroles = sizeof ems_roles / sizeof ems_roles[0];

const ems_role_def *ems_role_find(const char *name) {
    for (size_t i = 0; i < ems_nroles; i++)
        if (name && strcmp(ems_roles[i]->name, name) == 0) return ems_roles[i];
    return NULL;
}
