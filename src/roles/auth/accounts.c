/*
 * accounts.c — the auth role's handlers: register, login, verify, account
 * administration and password change, and the token revocation check.
 *
 * Every change to an account and the events announcing it are written in one
 * transaction (the outbox); the relay publishes them after the commit.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_role.h"
#include "log.h"
#include "util.h"

#define VER_TTL_MS 5000

/*
 * A hash nobody's password matches: login spends the same time whether or
 * not the user exists.  Made on the first login rather than at start, which
 * it would slow by one argon2id hash.
 */
static char dummy_hash[EMS_PWHASH_LEN];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void dummy_make(void) {
    if (ems_password_hash("not a password anybody has", dummy_hash)) dummy_hash[0] = '\0';
}

static int username_ok(const char *u) {
    size_t n = strlen(u);
    if (n < 3 || n > EMS_USERNAME_MAX) return 0;
    for (; *u; u++)
        if (!isalnum((unsigned char)*u) && *u != '.' && *u != '_' && *u != '-') return 0;
    return 1;
}

static int email_ok(const char *e) {
    const char *at = strchr(e, '@');
    return ems_text_ok(e, 3, 254) && at && at != e && at[1] && !strchr(at + 1, '@') && !strchr(e, ' ');
}

typedef struct {
    const char *username, *password, *role, *first_name, *last_name, *email, *address;
} account_input;

static ems_rc check_input(ems_resp *resp, const account_input *in) {
    if (in->username && !username_ok(in->username))
        return ems_fail(resp, EMS_BAD_REQUEST, "username must be 3-64 characters of letters, digits, '.', '_', '-'");
    if (in->password && !ems_text_ok(in->password, 8, 128))
        return ems_fail(resp, EMS_BAD_REQUEST, "password must be 8-128 characters");
    if (in->role && ems_role_parse(in->role) == EMS_ROLE_NONE)
        return ems_fail(resp, EMS_BAD_REQUEST, "role must be 'admin' or 'client'");
    if (in->first_name && !ems_text_ok(in->first_name, 1, 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "first_name must be 1-100 characters");
    if (in->first_name && !ems_text_visible(in->first_name))
        return ems_fail(resp, EMS_BAD_REQUEST, "first_name must have a visible character");
    if (in->last_name && !ems_text_ok(in->last_name, 1, 100))
        return ems_fail(resp, EMS_BAD_REQUEST, "last_name must be 1-100 characters");
    if (in->last_name && !ems_text_visible(in->last_name))
        return ems_fail(resp, EMS_BAD_REQUEST, "last_name must have a visible character");
    if (in->email && !email_ok(in->email)) return ems_fail(resp, EMS_BAD_REQUEST, "email is not a valid address");
    if (in->address && !ems_text_ok(in->address, 0, 200))
        return ems_fail(resp, EMS_BAD_REQUEST, "address must be at most 200 characters");
    return EMS_OK;
}

static json_t *account_json(const char *id, const char *username, const char *role, int64_t created_at) {
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "username", username, "role", role);
    if (created_at) json_object_set_new(o, "created_at", json_integer(created_at));
    return o;
}

/* Queues the announcement of an account change for users and devices. */
static ems_rc announce(auth_role *a, ems_db *db, const char *type, const char *id, const char *username,
                       const char *role, const account_input *profile) {
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "account", account_json(id, username, role, 0));
    if (!ev) return EMS_NOMEM;
    ems_rc rc = ems_outbox_add(db, a->device_queue, ev);
    if (!rc && profile) {
        json_object_set_new(ev, "profile",
                            json_pack("{s:s, s:s, s:s, s:s}", "first_name", profile->first_name, "last_name",
                                      profile->last_name, "email", profile->email, "address",
                                      profile->address ? profile->address : ""));
    }
    json_object_del(ev, "event_id"); /* each queue's copy is its own event */
    if (!rc) rc = ems_outbox_add(db, a->user_queue, ev);
    json_decref(ev);
    return rc;
}

/*
 * Tells ws that the account's tokens below version `ver` are revoked (all of
 * them when ver is 0: the account is gone), so that the sockets they opened
 * close.  In the transaction of the change, like announce.
 */
static ems_rc announce_revoked(auth_role *a, ems_db *db, const char *id, int64_t ver) {
    json_t *ev = json_pack("{s:s, s:s, s:I}", "type", "account.revoked", "id", id, "ver", (json_int_t)ver);
    ems_rc rc = ev ? ems_outbox_add(db, a->ws_queue, ev) : EMS_NOMEM;
    json_decref(ev);
    return rc;
}

static void ver_remember(auth_role *a, const char *id, int64_t ver) {
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_mutex_lock(&a->ver_lock);
    struct ver_entry *e = &a->vers[h % (sizeof a->vers / sizeof a->vers[0])];
    memcpy(e->id, id, EMS_ID_LEN);
    e->ver = ver;
    e->checked_ms = ems_now_ms();
    pthread_mutex_unlock(&a->ver_lock);
}

/* Drops what is cached of an account, so that the next check reads the database. */
static void ver_forget(auth_role *a, const char *id) {
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    pthread_mutex_lock(&a->ver_lock);
    struct ver_entry *e = &a->vers[h % (sizeof a->vers / sizeof a->vers[0])];
    if (strcmp(e->id, id) == 0) e->id[0] = '\0';
    pthread_mutex_unlock(&a->ver_lock);
}

ems_rc auth_token_check(const ems_principal *who, void *ctx) {
    auth_role *a = ctx;
    uint32_t h = 2166136261u;
    for (const char *p = who->id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    int64_t now = ems_now_ms(), ver = -1;
    pthread_mutex_lock(&a->ver_lock);
    struct ver_entry *e = &a->vers[h % (sizeof a->vers / sizeof a->vers[0])];
    if (strcmp(e->id, who->id) == 0 && now - e->checked_ms < VER_TTL_MS) ver = e->ver;
    pthread_mutex_unlock(&a->ver_lock);

    if (ver < 0) {
        ems_db *db = ems_store_get(a->env->store);
        if (!db) return EMS_UNAVAILABLE;
        ems_rows *rows = NULL;
        ems_rc rc = ems_db_query(db, &rows, "SELECT token_version FROM accounts WHERE id = $1", "s", who->id);
        ems_store_put(a->env->store, db);
        if (rc) return rc;
        ver = ems_rows_count(rows) ? ems_rows_int(rows, 0, 0) : 0;
        ems_rows_free(rows);
        ver_remember(a, who->id, ver);
    }
    return ver == who->ver ? EMS_OK : EMS_UNAUTHORIZED;
}

/* Replies {token, expires_at, user} for a principal. */
static ems_rc reply_token(auth_role *a, ems_resp *resp, int status, const ems_principal *p) {
    char *token = NULL;
    int64_t expires_at;
    ems_rc rc = ems_jwt_sign(a->env->jwt, p, a->token_ttl, &token, &expires_at);
    if (rc) return ems_fail(resp, rc, "cannot sign a token");
    json_t *body = json_pack("{s:s, s:I, s:o}", "token", token, "expires_at", (json_int_t)expires_at, "user",
                             account_json(p->id, p->username, ems_role_name(p->role), 0));
    free(token);
    return body ? ems_reply_json(resp, status, body) : EMS_NOMEM;
}

/* Inserts an account and announces it; fills *p for a token.  EMS_CONFLICT: username taken. */
static ems_rc create_account(auth_role *a, const account_input *in, ems_principal *p, int64_t *created) {
    char hash[EMS_PWHASH_LEN];
    if (ems_password_hash(in->password, hash)) return EMS_NOMEM;
    memset(p, 0, sizeof *p);
    ems_uuid(p->id);
    snprintf(p->username, sizeof p->username, "%s", in->username);
    p->role = ems_role_parse(in->role);
    p->ver = 1;
    *created = ems_now_ms();

    ems_db *db = ems_store_get(a->env->store);
    if (!db) return EMS_UNAVAILABLE;
    ems_rc rc = ems_db_begin(db);
    if (!rc)
        rc = ems_db_exec(db,
                         "INSERT INTO accounts (id, username, password_hash, role, token_version, created_at, "
                         "updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5)",
                         "ssssi", p->id, in->username, hash, in->role, *created);
    if (!rc) rc = announce(a, db, "account.created", p->id, in->username, in->role, in);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(a->env->store, db);
    if (rc) return rc;
    (void)ems_outbox_flush(a->env->outbox);
    ver_remember(a, p->id, 1);
    ems_log(EMS_LOG_INFO, "auth.account_created", "id=%s role=%s", p->id, in->role);
    return EMS_OK;
}

/* 429 with Retry-After: `what` may be tried again in `wait` seconds. */
static ems_rc too_many(ems_resp *resp, int wait, const char *what) {
    char v[16];
    snprintf(v, sizeof v, "%d", wait);
    ems_rc rc = ems_reply_header(resp, "Retry-After", v);
    return rc ? rc : ems_fail(resp, EMS_RATE_LIMITED, "too many %s; try again in %d s", what, wait);
}

static ems_rc create_failed(ems_resp *resp, ems_rc rc, const account_input *in) {
    if (rc == EMS_CONFLICT) return ems_fail(resp, rc, "username '%s' is taken", in->username);
    return ems_fail(resp, rc, "cannot create the account");
}

ems_rc auth_register(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    account_input in = {.role = "client"};
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:s, s:s, s:s, s:s, s?:s}", "username", &in.username, "password",
                               &in.password, "first_name", &in.first_name, "last_name", &in.last_name, "email",
                               &in.email, "address", &in.address);
    if (!rc) rc = check_input(resp, &in);
    if (rc) return rc;
    /* Counted once the input is valid: from here on each one costs a hash and three events. */
    char ip[AUTH_IP_LEN];
    auth_client_ip(&a->proxies, req, ip);
    int wait = limiter_register(a->limiter, ip, ems_now_ms());
    if (wait) {
        ems_log(EMS_LOG_INFO, "auth.register_limited", "ip=%s retry_s=%d", ip, wait);
        return too_many(resp, wait, "registrations from this address");
    }
    ems_principal p;
    int64_t created;
    if ((rc = create_account(a, &in, &p, &created))) return create_failed(resp, rc, &in);
    return reply_token(a, resp, 201, &p);
}

ems_rc auth_account_create(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    account_input in = {0};
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:s, s:s, s:s, s:s, s:s, s?:s}", "username", &in.username, "password",
                               &in.password, "role", &in.role, "first_name", &in.first_name, "last_name", &in.last_name,
                               "email", &in.email, "address", &in.address);
    if (!rc) rc = check_input(resp, &in);
    ems_principal p;
    int64_t created;
    if (!rc && (rc = create_account(a, &in, &p, &created))) return create_failed(resp, rc, &in);
    return rc ? rc : ems_reply_json(resp, 201, account_json(p.id, p.username, in.role, created));
}

ems_rc auth_login(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    const char *username, *password;
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:s}", "username", &username, "password", &password);
    if (rc) return rc;
    int64_t now = ems_now_ms();
    char ip[AUTH_IP_LEN];
    auth_client_ip(&a->proxies, req, ip);
    int wait = limiter_login(a->limiter, ip, username, now);
    if (wait) return too_many(resp, wait, "login attempts");

    ems_db *db = ems_store_get(a->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    rc = ems_db_query(db, &rows,
                      "SELECT id, username, password_hash, role, token_version FROM accounts "
                      "WHERE lower(username) = lower($1)",
                      "s", username);
    ems_store_put(a->env->store, db);
    if (rc) return ems_fail(resp, rc, "cannot read accounts");

    int found = ems_rows_count(rows) == 1;
    if (!found) pthread_once(&dummy_once, dummy_make);
    int ok = ems_password_verify(found ? ems_rows_text(rows, 0, 2) : dummy_hash, password) && found;
    if (!ok) {
        ems_rows_free(rows);
        ems_log(EMS_LOG_INFO, "auth.login_failed", "ip=%s", ip);
        return ems_fail(resp, EMS_UNAUTHORIZED, "wrong username or password");
    }
    limiter_login_ok(a->limiter, ip, username, now);
    ems_principal p = {0};
    snprintf(p.id, sizeof p.id, "%s", ems_rows_text(rows, 0, 0));
    snprintf(p.username, sizeof p.username, "%s", ems_rows_text(rows, 0, 1));
    p.role = ems_role_parse(ems_rows_text(rows, 0, 3));
    p.ver = ems_rows_int(rows, 0, 4);
    ems_rows_free(rows);
    return reply_token(a, resp, 200, &p);
}

ems_rc auth_verify(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    ems_reply_header(resp, "X-User-Id", req->who.id);
    ems_reply_header(resp, "X-User-Role", ems_role_name(req->who.role));
    ems_reply_header(resp, "X-Username", req->who.username);
    return ems_reply_empty(resp, 204);
}

/* Number of admins other than `id`. */
static ems_rc other_admins(ems_db *db, const char *id, int64_t *n) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT count(*) FROM accounts WHERE role = 'admin' AND id <> $1", "s", id);
    if (!rc) *n = ems_rows_int(rows, 0, 0);
    ems_rows_free(rows);
    return rc;
}

ems_rc auth_account_patch(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    const char *id = req->param[0];
    account_input in = {0};
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    ems_rc rc = ems_req_unpack(req, resp, "{s?:s, s?:s, s?:s}", "username", &in.username, "password", &in.password,
                               "role", &in.role);
    if (rc) return rc;
    if (!in.username && !in.password && !in.role)
        return ems_fail(resp, EMS_BAD_REQUEST, "give at least one of username, password, role");
    if ((rc = check_input(resp, &in))) return rc;
    char hash[EMS_PWHASH_LEN] = "";
    if (in.password && ems_password_hash(in.password, hash)) return ems_fail(resp, EMS_NOMEM, "cannot hash");

    ems_db *db = ems_store_get(a->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    int64_t admins = 1;
    rc = ems_db_begin(db);
    if (!rc)
        rc = ems_db_query(db, &rows, "SELECT username, role, created_at, token_version FROM accounts WHERE id = $1",
                          "s", id);
    if (!rc && ems_rows_count(rows) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "account %s not found", id);
    if (!rc && in.role && strcmp(in.role, "client") == 0 && strcmp(ems_rows_text(rows, 0, 1), "admin") == 0)
        rc = other_admins(db, id, &admins);
    if (!rc && admins == 0) rc = ems_fail(resp, EMS_CONFLICT, "cannot demote the last administrator");
    /* Credentials or role changed: earlier tokens stop working. */
    int bump = !rc && (in.password || (in.role && strcmp(in.role, ems_rows_text(rows, 0, 1)) != 0));
    if (!rc)
        rc = ems_db_exec(db,
                         "UPDATE accounts SET username = COALESCE($1, username), "
                         "password_hash = COALESCE($2, password_hash), role = COALESCE($3, role), "
                         "token_version = token_version + $4, updated_at = $5 WHERE id = $6",
                         "sssiis", in.username, in.password ? hash : NULL, in.role, (int64_t)bump, ems_now_ms(), id);
    const char *username = in.username ? in.username : (rows && ems_rows_count(rows) ? ems_rows_text(rows, 0, 0) : "");
    const char *role = in.role ? in.role : (rows && ems_rows_count(rows) ? ems_rows_text(rows, 0, 1) : "");
    int64_t created = rows && ems_rows_count(rows) ? ems_rows_int(rows, 0, 2) : 0;
    if (!rc) rc = announce(a, db, "account.updated", id, username, role, NULL);
    if (!rc && bump) rc = announce_revoked(a, db, id, ems_rows_int(rows, 0, 3) + 1);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(a->env->store, db);
    json_t *body = rc ? NULL : account_json(id, username, role, created);
    ems_rows_free(rows);
    if (rc == EMS_CONFLICT && in.username) return ems_fail(resp, rc, "username '%s' is taken", in.username);
    if (rc) return ems_fail(resp, rc, "cannot update account %s", id);
    (void)ems_outbox_flush(a->env->outbox);
    if (bump) ver_forget(a, id);
    return ems_reply_json(resp, 200, body);
}

ems_rc auth_account_delete(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    const char *id = req->param[0];
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid id", id);
    if (strcmp(id, req->who.id) == 0) return ems_fail(resp, EMS_CONFLICT, "you cannot delete your own account");

    ems_db *db = ems_store_get(a->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_begin(db);
    if (!rc) rc = ems_db_query(db, &rows, "SELECT username, role FROM accounts WHERE id = $1", "s", id);
    if (!rc && ems_rows_count(rows) == 0) rc = ems_fail(resp, EMS_NOT_FOUND, "account %s not found", id);
    if (!rc) rc = ems_db_exec(db, "DELETE FROM accounts WHERE id = $1", "s", id);
    if (!rc) rc = announce(a, db, "account.deleted", id, ems_rows_text(rows, 0, 0), ems_rows_text(rows, 0, 1), NULL);
    if (!rc) rc = announce_revoked(a, db, id, 0);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(a->env->store, db);
    ems_rows_free(rows);
    if (rc) return ems_fail(resp, rc, "cannot delete account %s", id);
    (void)ems_outbox_flush(a->env->outbox);
    ver_forget(a, id);
    ems_log(EMS_LOG_INFO, "auth.account_deleted", "id=%s by=%s", id, req->who.id);
    return ems_reply_empty(resp, 204);
}

ems_rc auth_password(ems_req *req, ems_resp *resp, void *ctx) {
    auth_role *a = ctx;
    const char *old_pw, *new_pw;
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:s}", "old_password", &old_pw, "new_password", &new_pw);
    if (rc) return rc;
    if (!ems_text_ok(new_pw, 8, 128)) return ems_fail(resp, EMS_BAD_REQUEST, "new_password must be 8-128 characters");
    /* Per account, not per address: whoever holds the token may guess from anywhere.  Once the
     * limit is reached even the right old password waits for the window to end. */
    int64_t now = ems_now_ms();
    int wait = limiter_password(a->limiter, req->who.id, now);
    if (wait) {
        ems_log(EMS_LOG_INFO, "auth.password_limited", "id=%s retry_s=%d", req->who.id, wait);
        return too_many(resp, wait, "wrong old passwords");
    }

    ems_db *db = ems_store_get(a->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rows *rows = NULL;
    rc = ems_db_query(db, &rows, "SELECT password_hash, token_version FROM accounts WHERE id = $1", "s", req->who.id);
    if (!rc && ems_rows_count(rows) == 0) rc = ems_fail(resp, EMS_UNAUTHORIZED, "account no longer exists");
    if (!rc && !ems_password_verify(ems_rows_text(rows, 0, 0), old_pw))
        rc = ems_fail(resp, EMS_FORBIDDEN, "old_password does not match");
    if (!rc) limiter_password_ok(a->limiter, req->who.id, now);
    char hash[EMS_PWHASH_LEN];
    if (!rc && ems_password_hash(new_pw, hash)) rc = ems_fail(resp, EMS_NOMEM, "cannot hash");
    ems_principal p = req->who;
    p.ver = rows && ems_rows_count(rows) ? ems_rows_int(rows, 0, 1) + 1 : 0;
    if (!rc) rc = ems_db_begin(db); /* after the hashing, which takes a while */
    if (!rc)
        rc =
            ems_db_exec(db, "UPDATE accounts SET password_hash = $1, token_version = $2, updated_at = $3 WHERE id = $4",
                        "siis", hash, p.ver, ems_now_ms(), req->who.id);
    if (!rc) rc = announce_revoked(a, db, p.id, p.ver);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(a->env->store, db); /* rolls back what was not committed */
    ems_rows_free(rows);
    if (rc) return ems_fail(resp, rc, "cannot change the password");
    (void)ems_outbox_flush(a->env->outbox);
    ver_remember(a, p.id, p.ver);
    return reply_token(a, resp, 200, &p);
}

ems_rc auth_ensure_admin(auth_role *a, const char *username, const char *password) {
    ems_db *db = ems_store_get(a->env->store);
    if (!db) return EMS_UNAVAILABLE;
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT count(*) FROM accounts WHERE role = 'admin'", "");
    int64_t admins = rc ? 0 : ems_rows_int(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(a->env->store, db);
    if (rc || admins > 0) return rc;

    char generated[25];
    if (!password || !*password) {
        ems_random_token(generated, 24);
        password = generated;
        /* Printed once, on the first start, to the operator's terminal; never logged. */
        fprintf(stderr,
                "\n  EMS initial administrator: username '%s', password '%s'\n"
                "  (set EMS_ADMIN_PASSWORD to choose it; this is shown only once)\n\n",
                username, password);
    }
    account_input in = {.username = username,
                        .password = password,
                        .role = "admin",
                        .first_name = "System",
                        .last_name = "Administrator",
                        .email = "admin@localhost",
                        .address = ""};
    if (!username_ok(username) || !ems_text_ok(password, 8, 128)) {
        ems_log(EMS_LOG_ERROR, "auth.admin_invalid", "reason=%s", "admin username or password breaks the rules");
        return EMS_BAD_REQUEST;
    }
    ems_principal p;
    int64_t created;
    return create_account(a, &in, &p, &created);
}
