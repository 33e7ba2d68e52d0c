/*
 * users.c — the users role: customer and administrator profiles.
 *
 * Owns the profiles table.  Profiles are born, renamed and removed by auth's
 * events on internal.auth.user.queue; people edit their names, e-mail and
 * address here.  Administrators list and search everybody; a client reads
 * and edits only itself.
 */
#include <stdlib.h>
#include <string.h>

#include "consume.h"
#include "roles.h"
#include "util.h"

typedef struct users_role {
    ems_role_env *env;
} users_role;

#define PROFILE_COLUMNS "id, username, role, first_name, last_name, email, address, created_at, updated_at"

static json_t *profile_json(const ems_rows *r, size_t i) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", ems_rows_text(r, i, 0), "username",
                     ems_rows_text(r, i, 1), "role", ems_rows_text(r, i, 2), "first_name", ems_rows_text(r, i, 3),
                     "last_name", ems_rows_text(r, i, 4), "email", ems_rows_text(r, i, 5), "address",
                     ems_rows_text(r, i, 6), "created_at", (json_int_t)ems_rows_int(r, i, 7), "updated_at",
                     (json_int_t)ems_rows_int(r, i, 8));
}

/* The caller may see `id` if it is an admin or `id` itself. */
static ems_rc may_see(const ems_req *req, ems_resp *resp, const char *id) {
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    if (req->who.role != EMS_ROLE_ADMIN && strcmp(req->who.id, id) != 0)
        return ems_fail(resp, EMS_FORBIDDEN, "you may only see your own profile");
    return EMS_OK;
}

static ems_rc reply_profile(users_role *u, ems_resp *resp, const char *id) {
    ems_db *db = ems_store_get(u->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT " PROFILE_COLUMNS " FROM profiles WHERE id = $1", "s", id);
    ems_store_put(u->env->store, db);
    if (!rc && ems_rows_count(rows) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "user %s not found", id);
    if (!rc) rc = ems_reply_json(resp, 200, profile_json(rows, 0));
    ems_rows_free(rows);
    return rc;
}

/* Case-insensitive search over the names a person would type. */
#define PROFILE_MATCH                                                                                                  \
    " FROM profiles WHERE lower(username) LIKE lower($1) ESCAPE '\\' OR lower(first_name) LIKE lower($1) "             \
    "ESCAPE '\\' OR lower(last_name) LIKE lower($1) ESCAPE '\\' OR lower(email) LIKE lower($1) ESCAPE '\\'"

static ems_rc users_list(ems_req *req, ems_resp *resp, void *ctx) {
    users_role *u = ctx;
    int64_t limit, offset;
    ems_rc rc = ems_paging(req, resp, &limit, &offset);
    if (rc) return rc;
    const char *q = ems_req_query(req, "q");
    if (q && !ems_text_ok(q, 0, 100)) return ems_fail(resp, EMS_BAD_REQUEST, "q must be at most 100 characters");
    char *like = ems_like_pattern(q ? q : "");
    if (!like) return EMS_NOMEM;

    ems_rows *rows = NULL, *count = NULL;
    ems_db *db = ems_store_get(u->env->store);
    if (!db) {
        rc = ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    /* The total rides along with the page, so that both come from one snapshot. */
    rc = ems_db_query(db, &rows,
                      "SELECT " PROFILE_COLUMNS ", count(*) OVER ()" PROFILE_MATCH
                      " ORDER BY lower(username), id LIMIT $2 OFFSET $3",
                      "sii", like, limit, offset);
    if (!rc && ems_rows_count(rows) == 0 && offset > 0)
        rc = ems_db_query(db, &count, "SELECT count(*)" PROFILE_MATCH, "s", like);
    ems_store_put(u->env->store, db);
    if (rc) {
        rc = ems_fail(resp, rc, "cannot list users");
        goto cleanup;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < ems_rows_count(rows); i++) json_array_append_new(items, profile_json(rows, i));
    rc = ems_reply_json(resp, 200,
                        json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
                                  (json_int_t)(count ? ems_rows_int(count, 0, 0) : ems_rows_int(rows, 0, 9)), "limit",
                                  (json_int_t)limit, "offset", (json_int_t)offset));
cleanup:
    ems_rows_free(count);
    ems_rows_free(rows);
    free(like);
    return rc;
}

static ems_rc users_me(ems_req *req, ems_resp *resp, void *ctx) { return reply_profile(ctx, resp, req->who.id); }

static ems_rc users_get(ems_req *req, ems_resp *resp, void *ctx) {
    ems_rc rc = may_see(req, resp, req->param[0]);
    return rc ? rc : reply_profile(ctx, resp, req->param[0]);
}

static ems_rc users_patch(ems_req *req, ems_resp *resp, void *ctx) {
    users_role *u = ctx;
    const char *id = req->param[0];
    const char *first = NULL, *last = NULL, *email = NULL, *address = NULL;
    ems_rc rc = may_see(req, resp, id);
    if (!rc)
        rc = ems_req_unpack(req, resp, "{s?:s, s?:s, s?:s, s?:s}", "first_name", &first, "last_name", &last, "email",
                            &email, "address", &address);
    if (rc) return rc;
    if (!first && !last && !email && !address)
        return ems_fail(resp, EMS_BAD_REQUEST, "give at least one of first_name, last_name, email, address");
    if (first && !ems_text_ok(first, 1, 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "first_name must be 1-100 characters");
    if (last && !ems_text_ok(last, 1, 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "last_name must be 1-100 characters");
    if (first && !ems_text_visible(first))
        return ems_fail(resp, EMS_BAD_REQUEST, "first_name must have a visible character");
    if (last && !ems_text_visible(last))
        return ems_fail(resp, EMS_BAD_REQUEST, "last_name must have a visible character");
    if (email) {
        const char *at = strchr(email, '@');
        if (!ems_text_ok(email, 3, 254) || !at || at == email || !at[1] || strchr(at + 1, '@') || strchr(email, ' '))
            return ems_fail(resp, EMS_BAD_REQUEST, "email is not a valid address");
    }
    if (address && !ems_text_ok(address, 0, 200))
        return ems_fail(resp, EMS_BAD_REQUEST, "address must be at most 200 characters");

    ems_db *db = ems_store_get(u->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    rc = ems_db_exec(db,
                     "UPDATE profiles SET first_name = COALESCE($1, first_name), last_name = COALESCE($2, last_name), "
                     "email = COALESCE($3, email), address = COALESCE($4, address), updated_at = $5 WHERE id = $6",
                     "ssssis", first, last, email, address, ems_now_ms(), id);
    int64_t changed = rc ? 0 : ems_db_changes(db);
    ems_store_put(u->env->store, db);
    if (rc) return ems_fail(resp, rc, "cannot update user %s", id);
    if (changed == 0) return ems_fail(resp, EMS_NOT_FOUND, "user %s not found", id);
    return reply_profile(u, resp, id);
}

/*
 * internal.auth.user.queue: account.created / account.updated / account.deleted.
 * Each event is applied once (inbox) and in the same transaction as its effect.
 */
typedef struct account_event {
    const char *type, *id, *username, *role;
    const char *first, *last, *email, *address;
    int64_t at;
} account_event;

static ems_rc account_check(json_t *ev, void *arg) {
    account_event *a = arg;
    a->first = a->last = a->email = a->address = "";
    a->at = ems_now_ms();
    if (json_unpack(ev, "{s:s, s:{s:s, s:s, s:s}}", "type", &a->type, "account", "id", &a->id, "username", &a->username,
                    "role", &a->role) ||
        !ems_uuid_valid(a->id))
        return EMS_BAD_REQUEST;
    if (strcmp(a->type, "account.created") != 0 && strcmp(a->type, "account.updated") != 0 &&
        strcmp(a->type, "account.deleted") != 0)
        return EMS_BAD_REQUEST;
    json_unpack(ev, "{s?{s?s, s?s, s?s, s?s}}", "profile", "first_name", &a->first, "last_name", &a->last, "email",
                &a->email, "address", &a->address);
    json_t *jat = json_object_get(ev, "at");
    if (json_is_integer(jat)) a->at = json_integer_value(jat);
    return EMS_OK;
}

static ems_rc account_apply(ems_db *db, json_t *ev, void *arg) {
    (void)ev;
    const account_event *a = arg;
    if (strcmp(a->type, "account.created") == 0)
        return ems_db_exec(db,
                           "INSERT INTO profiles (id, username, role, first_name, last_name, email, address, "
                           "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) "
                           "ON CONFLICT (id) DO UPDATE SET username = excluded.username, role = excluded.role",
                           "sssssssi", a->id, a->username, a->role, a->first, a->last, a->email, a->address, a->at);
    if (strcmp(a->type, "account.updated") == 0)
        return ems_db_exec(db, "UPDATE profiles SET username = $1, role = $2, updated_at = $3 WHERE id = $4", "ssis",
                           a->username, a->role, a->at, a->id);
    return ems_db_exec(db, "DELETE FROM profiles WHERE id = $1", "s", a->id); /* account.deleted */
}

static const ems_consumer account_consumer = {.check = account_check, .apply = account_apply};

static ems_verdict users_on_account(const char *queue, const char *body, size_t len, void *ctx) {
    users_role *u = ctx;
    account_event a = {0};
    return ems_consume_once(u->env->store, &account_consumer, queue, body, len, &a);
}

static const ems_route users_routes[] = {
    {"GET", "/api/users", EMS_ACCESS_ADMIN, users_list},
    {"GET", "/api/users/me", EMS_ACCESS_USER, users_me},
    {"GET", "/api/users/{id}", EMS_ACCESS_USER, users_get},
    {"PATCH", "/api/users/{id}", EMS_ACCESS_USER, users_patch},
};

static void users_stop(void *state) { free(state); }

static ems_rc users_start(ems_role_env *env, void **state) {
    users_role *u = calloc(1, sizeof *u);
    if (!u) return EMS_NOMEM;
    u->env = env;
    const char *queue = EMS_Q_AUTH_USER(env->conf);
    ems_rc rc = ems_http_routes(env->http, users_routes, sizeof users_routes / sizeof users_routes[0], u);
    if (!rc) rc = ems_bus_declare(env->bus, queue);
    if (!rc) rc = ems_bus_consume(env->bus, queue, 100, users_on_account, u);
    if (rc) {
        free(u);
        return rc;
    }
    *state = u;
    return EMS_OK;
}

const ems_role_def ems_role_users = {
    .name = "users",
    .has_store = 1,
    .start = users_start,
    .stop = users_stop,
};
