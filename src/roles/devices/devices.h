/*
 * devices.h — the devices role's private state, shared by its files.
 */
#ifndef EMS_ROLE_DEVICES_H
#define EMS_ROLE_DEVICES_H

#include "role.h"

typedef struct devices_role {
    ems_role_env *env;
    const char *monitoring_queue; /* internal.device.monitoring.queue */
} devices_role;

/* Handlers (handlers.c). */
ems_rc devices_list(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_create(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_get(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_patch(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_delete(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_set_owner(ems_req *req, ems_resp *resp, void *ctx);
ems_rc devices_clear_owner(ems_req *req, ems_resp *resp, void *ctx);

/* Queues device.upserted (or device.deleted when the row is gone) for monitoring. */
ems_rc devices_announce(devices_role *d, ems_db *db, const char *id);

/* internal.auth.device.queue consumer (accounts.c). */
ems_verdict devices_on_account(const char *queue, const char *body, size_t len, void *ctx);

/* internal.monitoring.device.alert.queue consumer (alerts.c): enriches and forwards to ws. */
ems_verdict devices_on_alert(const char *queue, const char *body, size_t len, void *ctx);

#endif
