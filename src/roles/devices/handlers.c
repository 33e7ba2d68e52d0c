/*
 * handlers.c — the devices role's REST handlers.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "log.h"
#include "util.h"

#define DEVICE_COLUMNS "id, name, description, address, max_hourly_kwh, energy_class, owner_id, created_at, updated_at"

static const char *const energy_classes[] = {"A+++", "A++", "A+", "A", "B", "C", "D", "E", "F", "G"};

static json_t *text_or_null(const ems_rows *r, size_t i, size_t col) {
    const char *s = ems_rows_text(r, i, col);
    return s ? json_string(s) : json_null();
}

static json_t *device_json(const ems_rows *r, size_t i) {
    return json_pack("{s:s, s:s, s:s, s:s, s:f, s:o, s:o, s:I, s:I}", "id", ems_rows_text(r, i, 0), "name",
                     ems_rows_text(r, i, 1), "description", ems_rows_text(r, i, 2), "address", ems_rows_text(r, i, 3),
                     "max_hourly_kwh", ems_rows_double(r, i, 4), "energy_class", text_or_null(r, i, 5), "owner_id",
                     text_or_null(r, i, 6), "created_at", (json_int_t)ems_rows_int(r, i, 7), "updated_at",
                     (json_int_t)ems_rows_int(r, i, 8));
}

/* Fields a device is created or edited with; a NULL pointer means "not given". */
typedef struct {
    const char *name, *description, *address;
    double max_kwh;
    int has_max;
    json_t *energy_class; /* absent, null or a string */
    json_t *owner_id;
} device_input;

static ems_rc check_device(ems_resp *resp, const device_input *in) {
    if (in->name && !ems_text_ok(in->name, 1, 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "name must be 1-100 characters");
    if (in->name && !ems_text_visible(in->name))
        return ems_fail(resp, EMS_BAD_REQUEST, "name must have a visible character");
    if (in->description && !ems_text_ok(in->description, 0, 500))
        return ems_fail(resp, EMS_BAD_REQUEST, "description must be at most 500 characters");
    if (in->address && !ems_text_ok(in->address, 0, 200))
        return ems_fail(resp, EMS_BAD_REQUEST, "address must be at most 200 characters");
    if (in->has_max && !(in->max_kwh > 0 && in->max_kwh <= 1e6))
        return ems_fail(resp, EMS_BAD_REQUEST, "max_hourly_kwh must be a number above 0 and at most 1000000");
    if (in->energy_class && !json_is_null(in->energy_class)) {
        const char *c = json_string_value(in->energy_class);
        size_t i = 0, n = sizeof energy_classes / sizeof energy_classes[0];
        while (c && i < n && strcmp(c, energy_classes[i]) != 0) i++;
        if (!c || i == n)
            return ems_fail(resp, EMS_BAD_REQUEST, "energy_class must be one of A+++ A++ A+ A B C D E F G or null");
    }
    if (in->owner_id && !json_is_null(in->owner_id) && !ems_uuid_valid(json_string_value(in->owner_id)))
        return ems_fail(resp, EMS_BAD_REQUEST, "owner_id must be a user id or null");
    return EMS_OK;
}

static const char *class_or_null(const device_input *in) {
    return in->energy_class ? json_string_value(in->energy_class) : NULL;
}

/* Reads one device; EMS_NOT_FOUND (with message) if there is none. */
static ems_rc load_device(ems_db *db, ems_resp *resp, const char *id, ems_rows **rows) {
    ems_rc rc = ems_db_query(db, rows, "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = $1", "s", id);
    if (rc) return ems_fail(resp, rc, "cannot read device %s", id);
    if (ems_rows_count(*rows) == 0) return ems_fail(resp, EMS_NOT_FOUND, "device %s not found", id);
    return EMS_OK;
}

static ems_rc account_exists(ems_db *db, ems_resp *resp, const char *user_id) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT 1 FROM accounts WHERE id = $1", "s", user_id);
    if (!rc && ems_rows_count(rows) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "user %s not found", user_id);
    ems_rows_free(rows);
    return rc;
}

ems_rc devices_announce(devices_role *d, ems_db *db, const char *id) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = $1", "s", id);
    if (rc) return rc;
    json_t *ev = ems_rows_count(rows)
                     ? json_pack("{s:s, s:o}", "type", "device.upserted", "device", device_json(rows, 0))
                     : json_pack("{s:s, s:{s:s}}", "type", "device.deleted", "device", "id", id);
    ems_rows_free(rows);
    if (!ev) return EMS_NOMEM;
    rc = ems_outbox_add(db, d->monitoring_queue, ev);
    json_decref(ev);
    return rc;
}

/*
 * Runs `sql` (which changes device `id`) and announces the result, in one
 * transaction, then replies with the device as it now is.
 */
static ems_rc change_and_reply(devices_role *d, ems_resp *resp, int status, const char *id, const char *owner,
                               const char *sql, const char *types, ...);

ems_rc devices_list(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    int64_t limit, offset;
    ems_rc rc = ems_paging(req, resp, &limit, &offset);
    if (rc) return rc;
    const char *owner = NULL;
    int64_t unassigned = 0;
    if (req->who.role == EMS_ROLE_ADMIN) {
        owner = ems_req_query(req, "owner");
        const char *u = ems_req_query(req, "unassigned");
        if (owner && !ems_uuid_valid(owner)) return ems_fail(resp, EMS_BAD_REQUEST, "owner must be a user id");
        if (u && strcmp(u, "true") != 0 && strcmp(u, "false") != 0)
            return ems_fail(resp, EMS_BAD_REQUEST, "unassigned must be true or false");
        unassigned = u && strcmp(u, "true") == 0;
    } else {
        owner = req->who.id; /* a client sees its own devices, whatever it asks */
    }
#define DEVICE_FILTER " FROM devices WHERE (CAST($1 AS TEXT) IS NULL OR owner_id = $1) AND ($2 = 0 OR owner_id IS NULL)"
    ems_db *db = ems_store_get(d->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL, *count = NULL;
    /* The total rides along with the page, so that both come from one snapshot. */
    rc = ems_db_query(db, &rows,
                      "SELECT " DEVICE_COLUMNS ", count(*) OVER ()" DEVICE_FILTER
                      " ORDER BY lower(name), id LIMIT $3 OFFSET $4",
                      "siii", owner, unassigned, limit, offset);
    if (!rc && ems_rows_count(rows) == 0 && offset > 0)
        rc = ems_db_query(db, &count, "SELECT count(*)" DEVICE_FILTER, "si", owner, unassigned);
    ems_store_put(d->env->store, db);
    if (!rc) {
        json_t *items = json_array();
        for (size_t i = 0; i < ems_rows_count(rows); i++) json_array_append_new(items, device_json(rows, i));
        rc = ems_reply_json(resp, 200,
                            json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
                                      (json_int_t)(count ? ems_rows_int(count, 0, 0) : ems_rows_int(rows, 0, 9)),
                                      "limit", (json_int_t)limit, "offset", (json_int_t)offset));
    } else {
        rc = ems_fail(resp, rc, "cannot list devices");
    }
    ems_rows_free(rows);
    ems_rows_free(count);
    return rc;
}

ems_rc devices_create(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    device_input in = {.description = "", .address = "", .has_max = 1};
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:F, s?:s, s?:s, s?:o, s?:o}", "name", &in.name, "max_hourly_kwh",
                               &in.max_kwh, "description", &in.description, "address", &in.address, "energy_class",
                               &in.energy_class, "owner_id", &in.owner_id);
    if (!rc) rc = check_device(resp, &in);
    if (rc) return rc;
    char id[EMS_ID_LEN];
    ems_uuid(id);
    const char *owner = in.owner_id ? json_string_value(in.owner_id) : NULL;
    return change_and_reply(d, resp, 201, id, owner,
                            "INSERT INTO devices (id, name, description, address, max_hourly_kwh, energy_class, "
                            "owner_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                            "ssssdssi", id, in.name, in.description, in.address, in.max_kwh, class_or_null(&in), owner,
                            ems_now_ms());
}

ems_rc devices_get(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    const char *id = req->param[0];
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    ems_db *db = ems_store_get(d->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    ems_rc rc = load_device(db, resp, id, &rows);
    ems_store_put(d->env->store, db);
    if (!rc && req->who.role != EMS_ROLE_ADMIN) {
        const char *owner = ems_rows_text(rows, 0, 6);
        if (!owner || strcmp(owner, req->who.id) != 0) rc = ems_fail(resp, EMS_FORBIDDEN, "device %s is not yours", id);
    }
    if (!rc) rc = ems_reply_json(resp, 200, device_json(rows, 0));
    ems_rows_free(rows);
    return rc;
}

ems_rc devices_patch(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    const char *id = req->param[0];
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    device_input in = {0};
    json_t *max = NULL;
    ems_rc rc =
        ems_req_unpack(req, resp, "{s?:s, s?:o, s?:s, s?:s, s?:o}", "name", &in.name, "max_hourly_kwh", &max,
                       "description", &in.description, "address", &in.address, "energy_class", &in.energy_class);
    if (rc) return rc;
    if (max) {
        if (!json_is_number(max)) return ems_fail(resp, EMS_BAD_REQUEST, "max_hourly_kwh must be a number");
        in.max_kwh = json_number_value(max);
        in.has_max = 1;
    }
    if (!in.name && !max && !in.description && !in.address && !in.energy_class)
        return ems_fail(resp, EMS_BAD_REQUEST, "give at least one field to change");
    if ((rc = check_device(resp, &in))) return rc;
    return change_and_reply(d, resp, 200, id, NULL,
                            "UPDATE devices SET name = COALESCE($1, name), description = COALESCE($2, description), "
                            "address = COALESCE($3, address), "
                            "max_hourly_kwh = CASE WHEN $4 = 1 THEN $5 ELSE max_hourly_kwh END, "
                            "energy_class = CASE WHEN $6 = 1 THEN $7 ELSE energy_class END, updated_at = $8 "
                            "WHERE id = $9",
                            "sssidisis", in.name, in.description, in.address, (int64_t)in.has_max, in.max_kwh,
                            (int64_t)(in.energy_class != NULL), class_or_null(&in), ems_now_ms(), id);
}

ems_rc devices_set_owner(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    const char *id = req->param[0], *user_id;
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    ems_rc rc = ems_req_unpack(req, resp, "{s:s}", "user_id", &user_id);
    if (rc) return rc;
    if (!ems_uuid_valid(user_id)) return ems_fail(resp, EMS_BAD_REQUEST, "user_id must be a user id");
    return change_and_reply(d, resp, 200, id, user_id,
                            "UPDATE devices SET owner_id = $1, updated_at = $2 WHERE id = $3", "sis", user_id,
                            ems_now_ms(), id);
}

ems_rc devices_clear_owner(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    const char *id = req->param[0];
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    return change_and_reply(d, resp, 200, id, NULL, "UPDATE devices SET owner_id = NULL, updated_at = $1 WHERE id = $2",
                            "is", ems_now_ms(), id);
}

ems_rc devices_delete(ems_req *req, ems_resp *resp, void *ctx) {
    devices_role *d = ctx;
    const char *id = req->param[0];
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    ems_db *db = ems_store_get(d->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rc rc = ems_db_begin(db);
    if (!rc) rc = ems_db_exec(db, "DELETE FROM devices WHERE id = $1", "s", id);
    if (!rc && ems_db_changes(db) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "device %s not found", id);
    if (!rc) rc = devices_announce(d, db, id);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(d->env->store, db);
    if (rc) return ems_fail(resp, rc, "cannot delete device %s", id);
    (void)ems_outbox_flush(d->env->outbox);
    return ems_reply_empty(resp, 204);
}

static ems_rc change_and_reply(devices_role *d, ems_resp *resp, int status, const char *id, const char *owner,
                               const char *sql, const char *types, ...) {
    ems_db *db = ems_store_get(d->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_begin(db);
    if (!rc && owner) rc = account_exists(db, resp, owner);
    if (!rc) {
        va_list ap;
        va_start(ap, types);
        rc = ems_db_vexec(db, sql, types, ap);
        va_end(ap);
        if (rc) rc = ems_fail(resp, rc, "cannot save device %s", id);
    }
    if (!rc && ems_db_changes(db) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "device %s not found", id);
    if (!rc) rc = devices_announce(d, db, id);
    if (!rc) rc = load_device(db, resp, id, &rows);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(d->env->store, db);
    if (!rc) {
        (void)ems_outbox_flush(d->env->outbox);
        rc = ems_reply_json(resp, status, device_json(rows, 0));
    }
    ems_rows_free(rows);
    return rc;
}
