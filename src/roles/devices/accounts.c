/*
 * accounts.c — the devices role's replica of accounts, fed by
 * internal.auth.device.queue.  A device may only be given to a known
 * account; when an account is deleted its devices become unassigned, and
 * monitoring hears of each.
 */
#include <string.h>

#include "consume.h"
#include "devices.h"
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

typedef struct account_event {
    devices_role *d;
    const char *type, *id, *username, *role;
} account_event;

static ems_rc account_check(json_t *ev, void *arg) {
    account_event *a = arg;
    if (json_unpack(ev, "{s:s, s:{s:s, s:s, s:s}}", "type", &a->type, "account", "id", &a->id, "username", &a->username,
                    "role", &a->role) ||
        !ems_uuid_valid(a->id))
        return EMS_BAD_REQUEST;
    if (strcmp(a->type, "account.created") != 0 && strcmp(a->type, "account.updated") != 0 &&
        strcmp(a->type, "account.deleted") != 0)
        return EMS_BAD_REQUEST;
    return EMS_OK;
}

static ems_rc account_apply(ems_db *db, json_t *ev, void *arg) {
    (void)ev;
    const account_event *a = arg;
    if (strcmp(a->type, "account.deleted") == 0) return forget_account(a->d, db, a->id);
    return ems_db_exec(db,
                       "INSERT INTO accounts (id, username, role) VALUES ($1, $2, $3) ON CONFLICT (id) "
                       "DO UPDATE SET username = excluded.username, role = excluded.role",
                       "sss", a->id, a->username, a->role);
}

/* A deleted account's devices were announced through the outbox: send them now. */
static void account_committed(json_t *ev, void *arg) {
    (void)ev;
    const account_event *a = arg;
    ems_outbox_kick(a->d->env->outbox);
}

static const ems_consumer account_consumer = {
    .check = account_check, .apply = account_apply, .after_commit = account_committed};

ems_verdict devices_on_account(const char *queue, const char *body, size_t len, void *ctx) {
    account_event a = {.d = ctx};
    return ems_consume_once(a.d->env->store, &account_consumer, queue, body, len, &a);
}
