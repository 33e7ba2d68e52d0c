/*
 * devices.c — the devices role: metering devices and who owns them.
 *
 * Owns the devices table and a replica of the accounts that may own a device
 * (from internal.auth.device.queue).  Every change to a device is announced
 * on internal.device.monitoring.queue through the outbox, with the device's
 * hourly limit, so that monitoring can judge readings without asking.
 */
#include "devices.h"

#include <stdlib.h>

#include "roles.h"

static const ems_route devices_routes[] = {
    {"GET", "/api/devices", EMS_ACCESS_USER, devices_list},
    {"POST", "/api/devices", EMS_ACCESS_ADMIN, devices_create},
    {"GET", "/api/devices/{id}", EMS_ACCESS_USER, devices_get},
    {"PATCH", "/api/devices/{id}", EMS_ACCESS_ADMIN, devices_patch},
    {"DELETE", "/api/devices/{id}", EMS_ACCESS_ADMIN, devices_delete},
    {"PUT", "/api/devices/{id}/owner", EMS_ACCESS_ADMIN, devices_set_owner},
    {"DELETE", "/api/devices/{id}/owner", EMS_ACCESS_ADMIN, devices_clear_owner},
};

static void devices_stop(void *state) { free(state); }

static ems_rc devices_start(ems_role_env *env, void **state) {
    devices_role *d = calloc(1, sizeof *d);
    if (!d) return EMS_NOMEM;
    d->env = env;
    d->monitoring_queue = EMS_Q_DEVICE_MONITORING(env->conf);
    const char *accounts = EMS_Q_AUTH_DEVICE(env->conf);
    ems_rc rc = ems_http_routes(env->http, devices_routes, sizeof devices_routes / sizeof devices_routes[0], d);
    if (!rc) rc = ems_bus_declare(env->bus, d->monitoring_queue);
    if (!rc) rc = ems_bus_declare(env->bus, accounts);
    if (!rc) rc = ems_bus_consume(env->bus, accounts, 100, devices_on_account, d);
    if (!rc) rc = ems_bus_declare(env->bus, EMS_Q_NOTIFICATION(env->conf));
    if (!rc) rc = ems_bus_declare(env->bus, EMS_Q_ALERT(env->conf));
    if (!rc) rc = ems_bus_consume(env->bus, EMS_Q_ALERT(env->conf), 100, devices_on_alert, d);
    if (rc) {
        free(d);
        return rc;
    }
    *state = d;
    return EMS_OK;
}

const ems_role_def ems_role_devices = {
    .name = "devices",
    .has_store = 1,
    .start = devices_start,
    .stop = devices_stop,
};
