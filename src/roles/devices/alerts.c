/*
 * alerts.c — monitoring's alerts, made deliverable: the devices role knows
 * who owns a device and what it is called, so it adds both and hands the
 * alert to ws (internal.device.websocket.user.notification.queue) through
 * its outbox, in the same transaction as the inbox entry that makes a
 * redelivered alert harmless.  An alert for a device without an owner (or
 * one deleted since) is acknowledged with nobody to tell.
 */
#include <string.h>

#include "consume.h"
#include "devices.h"
#include "log.h"
#include "roles.h"
#include "util.h"

/* The alert as ws delivers it; inside the caller's transaction. */
static ems_rc notify_owner(devices_role *d, ems_db *db, const char *device_id, json_int_t hour, double total,
                           double limit, int *queued) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT name, owner_id FROM devices WHERE id = $1", "s", device_id);
    if (rc) return rc;
    if (ems_rows_count(rows) == 0 || ems_rows_null(rows, 0, 1)) {
        ems_log(EMS_LOG_INFO, "devices.alert_unowned", "device_id=%s hour_start=%lld", device_id, (long long)hour);
        goto cleanup;
    }
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:I, s:f, s:f}", "type", "alert", "device_id", device_id,
                           "device_name", ems_rows_text(rows, 0, 0), "owner_id", ems_rows_text(rows, 0, 1),
                           "hour_start", hour, "total_kwh", total, "limit_kwh", limit);
    if (!ev) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    rc = ems_outbox_add(db, EMS_Q_NOTIFICATION(d->env->conf), ev);
    json_decref(ev);
    if (!rc) *queued = 1;
cleanup:
    ems_rows_free(rows);
    return rc;
}

typedef struct alert_event {
    devices_role *d;
    const char *device_id;
    json_int_t hour;
    double total, limit;
    int queued; /* the alert went into the outbox */
} alert_event;

static ems_rc alert_check(json_t *ev, void *arg) {
    alert_event *a = arg;
    if (json_unpack(ev, "{s:s, s:I, s:F, s:F}", "device_id", &a->device_id, "hour_start", &a->hour, "total_kwh",
                    &a->total, "limit_kwh", &a->limit) ||
        !ems_uuid_valid(a->device_id))
        return EMS_BAD_REQUEST;
    return EMS_OK;
}

static ems_rc alert_apply(ems_db *db, json_t *ev, void *arg) {
    (void)ev;
    alert_event *a = arg;
    return notify_owner(a->d, db, a->device_id, a->hour, a->total, a->limit, &a->queued);
}

static void alert_committed(json_t *ev, void *arg) {
    (void)ev;
    const alert_event *a = arg;
    if (a->queued) ems_outbox_kick(a->d->env->outbox);
}

static const ems_consumer alert_consumer = {
    .check = alert_check, .apply = alert_apply, .after_commit = alert_committed};

ems_verdict devices_on_alert(const char *queue, const char *body, size_t len, void *ctx) {
    alert_event a = {.d = ctx};
    return ems_consume_once(a.d->env->store, &alert_consumer, queue, body, len, &a);
}
