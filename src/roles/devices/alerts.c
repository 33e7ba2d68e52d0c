/*
 * alerts.c — monitoring's alerts, made deliverable: the devices role knows
 * who owns a device and what it is called, so it adds both and hands the
 * alert to ws (internal.device.websocket.user.notification.queue) through
 * its outbox, in the same transaction as the inbox entry that makes a
 * redelivered alert harmless.  An alert for a device without an owner (or
 * one deleted since) is acknowledged with nobody to tell.
 */
#include <string.h>

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

ems_verdict devices_on_alert(const char *queue, const char *body, size_t len, void *ctx) {
    devices_role *d = ctx;
    json_error_t jerr;
    json_t *ev = json_loadb(body, len, 0, &jerr);
    const char *event_id = NULL, *device_id = NULL;
    json_int_t hour = 0;
    double total = 0, limit = 0;
    int queued = 0;
    ems_verdict verdict = EMS_BUS_RETRY;
    ems_db *db = NULL;
    if (!ev ||
        json_unpack(ev, "{s:s, s:s, s:I, s:F, s:F}", "event_id", &event_id, "device_id", &device_id, "hour_start",
                    &hour, "total_kwh", &total, "limit_kwh", &limit) ||
        !ems_uuid_valid(device_id)) {
        ems_log(EMS_LOG_WARN, "devices.bad_alert", "queue=%s", queue);
        verdict = EMS_BUS_REJECT;
        goto cleanup;
    }
    if (!(db = ems_store_get(d->env->store))) goto cleanup;
    ems_rc rc = ems_db_begin(db);
    if (!rc) rc = ems_inbox_first(db, event_id);
    if (rc == EMS_CONFLICT) {
        verdict = EMS_BUS_ACK; /* seen before */
        ems_db_rollback(db);
        goto cleanup;
    }
    if (!rc) rc = notify_owner(d, db, device_id, hour, total, limit, &queued);
    if (!rc) rc = ems_db_commit(db);
    if (rc) {
        ems_db_rollback(db);
        goto cleanup;
    }
    verdict = EMS_BUS_ACK;
    if (queued) ems_outbox_kick(d->env->outbox);
cleanup:
    if (db) ems_store_put(d->env->store, db);
    json_decref(ev);
    return verdict;
}
