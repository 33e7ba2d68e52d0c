/*
 * accounts.c — the devices role's replica of accounts, fed by
 * internal.auth.device.queue.  A device may only be given to a known
 * account; when an account is deleted its devices become unassigned, and
 * monitoring hears of each.
 */
#include <string.h>

#include "devices.h"
#include "log.h"
#include "util.h"

static ems_rc forget_account(devices_role *d, ems_db *db, const char *id) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT id FROM devices WHERE owner_id = $1", "s", id);
    if (!rc)
        rc = ems_db_exec(db, "UPDATE devices SET owner_id = NULL, updated_at = $1 WHERE owner_id = $2", "is",
                         ems_now_ms(), id);
    for (size_t i = 0; !rc && i < ems_rows_count(rows); i++) rc = devices_announce(d, db, ems_rows_text(rows, i, 0));
    if (!rc) rc = ems_db_exec(db, "DELETE FROM accounts WHERE id = $1", "s", id);
    ems_rows_free(rows);
    return rc;
}

ems_verdict devices_on_account(const char *queue, const char *body, size_t len, void *ctx) {
    devices_role *d = ctx;
    json_error_t jerr;
    json_t *ev = json_loadb(body, len, 0, &jerr);
    const char *event_id = NULL, *type = NULL, *id = NULL, *username = NULL, *role = NULL;
    if (!ev ||
        json_unpack(ev, "{s:s, s:s, s:{s:s, s:s, s:s}}", "event_id", &event_id, "type", &type, "account", "id", &id,
                    "username", &username, "role", &role) ||
        !ems_uuid_valid(id)) {
        ems_log(EMS_LOG_WARN, "devices.bad_event", "queue=%s", queue);
        json_decref(ev);
        return EMS_BUS_REJECT;
    }
    ems_verdict verdict = EMS_BUS_RETRY;
    ems_db *db = ems_store_get(d->env->store);
    if (!db) goto cleanup;
    ems_rc rc = ems_db_begin(db);
    if (!rc) rc = ems_inbox_first(db, event_id);
    if (rc == EMS_CONFLICT) {
        ems_db_rollback(db);
        verdict = EMS_BUS_ACK; /* applied before */
    } else if (!rc) {
        if (strcmp(type, "account.created") == 0 || strcmp(type, "account.updated") == 0)
            rc = ems_db_exec(db,
                             "INSERT INTO accounts (id, username, role) VALUES ($1, $2, $3) ON CONFLICT (id) "
                             "DO UPDATE SET username = excluded.username, role = excluded.role",
                             "sss", id, username, role);
        else if (strcmp(type, "account.deleted") == 0) rc = forget_account(d, db, id);
        else rc = EMS_BAD_REQUEST;
        if (!rc) rc = ems_db_commit(db);
        if (!rc) verdict = EMS_BUS_ACK;
        else if (rc == EMS_BAD_REQUEST) verdict = EMS_BUS_REJECT;
    }
    ems_store_put(d->env->store, db);
    if (verdict == EMS_BUS_ACK) ems_outbox_kick(d->env->outbox);
cleanup:
    json_decref(ev);
    return verdict;
}
