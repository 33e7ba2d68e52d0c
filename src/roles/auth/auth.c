/*
 * auth.c — the auth role: accounts, credentials and tokens.
 *
 * Owns the accounts table (username, password hash, role, token version).
 * Announces every account change on internal.auth.user.queue (for users'
 * profiles) and internal.auth.device.queue (for devices' owners), and every
 * revocation of an account's tokens on internal.auth.websocket.queue (ws
 * closes the sockets they opened), through its outbox.  Serves the gateway's
 * forward-auth check, /api/auth/verify.
 */
#include "auth_role.h"

#include <stdlib.h>

#include "log.h"
#include "roles.h"

static const ems_conf_def auth_conf[] = {
    {"admin_username", "EMS_ADMIN_USERNAME", EMS_CONF_STR, "admin", 0, 0, "initial administrator's username"},
    {"admin_password", "EMS_ADMIN_PASSWORD", EMS_CONF_SECRET, "", 0, 0,
     "initial administrator's password (generated and printed once if empty)"},
    {"token_ttl", "EMS_TOKEN_TTL", EMS_CONF_INT, "3600", 1, 31L * 24 * 3600, "token lifetime in seconds"},
    {"login_rate", "EMS_LOGIN_RATE", EMS_CONF_INT, "60", 1, 1000000, "login attempts a minute per address"},
    {"login_max_failures", "EMS_LOGIN_MAX_FAILURES", EMS_CONF_INT, "5", 1, 1000,
     "failed logins per username from one address before 429 (for that address only)"},
    {"login_max_failures_user", "EMS_LOGIN_MAX_FAILURES_USER", EMS_CONF_INT, "100", 1, 1000000,
     "failed logins per username from all addresses before 429 (the ceiling for a spread-out guesser)"},
    {"login_window", "EMS_LOGIN_WINDOW", EMS_CONF_INT, "300", 1, 86400, "seconds the failures are counted over"},
    {"register_rate", "EMS_REGISTER_RATE", EMS_CONF_INT, "60", 1, 1000000, "registrations a minute per address"},
    {"register_hourly", "EMS_REGISTER_HOURLY", EMS_CONF_INT, "200", 1, 1000000, "registrations an hour per address"},
    {"password_max_failures", "EMS_PASSWORD_MAX_FAILURES", EMS_CONF_INT, "5", 1, 1000,
     "wrong old passwords per account before password changes get 429"},
    {"password_window", "EMS_PASSWORD_WINDOW", EMS_CONF_INT, "300", 1, 86400,
     "seconds the wrong old passwords are counted over"},
    {"trusted_proxies", "EMS_TRUSTED_PROXIES", EMS_CONF_STR, "", 0, 0,
     "addresses or CIDRs whose X-Real-IP names the client, or none (default: none embedded; loopback and "
     "private ranges with --role)"},
};

static const ems_route auth_routes[] = {
    {"POST", "/api/auth/register", EMS_ACCESS_ANY, auth_register},
    {"POST", "/api/auth/login", EMS_ACCESS_ANY, auth_login},
    {"GET", "/api/auth/verify", EMS_ACCESS_USER, auth_verify},
    {"POST", "/api/auth/accounts", EMS_ACCESS_ADMIN, auth_account_create},
    {"PATCH", "/api/auth/accounts/{id}", EMS_ACCESS_ADMIN, auth_account_patch},
    {"DELETE", "/api/auth/accounts/{id}", EMS_ACCESS_ADMIN, auth_account_delete},
    {"PUT", "/api/auth/password", EMS_ACCESS_USER, auth_password},
};

static void auth_stop(void *state) {
    auth_role *a = state;
    if (!a) return;
    limiter_free(a->limiter);
    pthread_mutex_destroy(&a->ver_lock);
    free(a);
}

static ems_rc auth_start(ems_role_env *env, void **state) {
    auth_role *a = calloc(1, sizeof *a);
    if (!a) return EMS_NOMEM;
    pthread_mutex_init(&a->ver_lock, NULL);
    a->env = env;
    a->token_ttl = ems_conf_int(env->conf, "token_ttl");
    a->user_queue = EMS_Q_AUTH_USER(env->conf);
    a->device_queue = EMS_Q_AUTH_DEVICE(env->conf);
    a->ws_queue = EMS_Q_AUTH_WS(env->conf);
    limiter_conf lc = {
        .login_rate = (int)ems_conf_int(env->conf, "login_rate"),
        .login_max_failures = (int)ems_conf_int(env->conf, "login_max_failures"),
        .login_max_failures_user = (int)ems_conf_int(env->conf, "login_max_failures_user"),
        .login_window_s = (int)ems_conf_int(env->conf, "login_window"),
        .register_rate = (int)ems_conf_int(env->conf, "register_rate"),
        .register_hourly = (int)ems_conf_int(env->conf, "register_hourly"),
        .password_max_failures = (int)ems_conf_int(env->conf, "password_max_failures"),
        .password_window_s = (int)ems_conf_int(env->conf, "password_window"),
    };
    char err[128] = "";
    ems_rc rc =
        auth_proxies_parse(ems_conf_str(env->conf, "trusted_proxies"), env->embedded, &a->proxies, err, sizeof err);
    if (rc == EMS_BAD_REQUEST) ems_log(EMS_LOG_ERROR, "auth.bad_conf", "key=trusted_proxies error=\"%s\"", err);
    if (!rc) rc = (a->limiter = limiter_new(&lc)) ? EMS_OK : EMS_NOMEM;
    if (!rc) rc = ems_bus_declare(env->bus, a->user_queue);
    if (!rc) rc = ems_bus_declare(env->bus, a->device_queue);
    if (!rc) rc = ems_bus_declare(env->bus, a->ws_queue);
    if (!rc)
        rc = auth_ensure_admin(a, ems_conf_str(env->conf, "admin_username"), ems_conf_str(env->conf, "admin_password"));
    if (!rc) rc = ems_http_routes(env->http, auth_routes, sizeof auth_routes / sizeof auth_routes[0], a);
    if (rc) {
        auth_stop(a);
        return rc;
    }
    /* Every role in this process trusts a token only while its account's version matches. */
    ems_http_token_check(env->http, auth_token_check, a);
    *state = a;
    return EMS_OK;
}

const ems_role_def ems_role_auth = {
    .name = "auth",
    .conf = auth_conf,
    .nconf = sizeof auth_conf / sizeof auth_conf[0],
    .has_store = 1,
    .start = auth_start,
    .stop = auth_stop,
};
