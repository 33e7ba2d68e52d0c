/*
 * tokens.c — is a token still good for its account, when a socket opens?
 *
 * The signature and expiry are checked in server.c; a token also dies when
 * its account's token version moves on (a password change, an account
 * deleted or changed by an administrator).  Only auth knows the version, so
 * ws asks auth the question the gateway asks: GET <auth>/api/auth/verify
 * with the token.  <auth> is auth_service_host, or in embedded mode this
 * process's own HTTP server, whose token hook is auth's version check.
 *
 * The answer is cached per (account, token version) for ws_token_cache_ms,
 * so that a burst of reconnections costs auth one question per account.
 * Fail closed: when auth cannot be reached or answers with anything but 204
 * or 401/403, the socket is refused and ws.auth_unavailable is logged; for
 * the next AUTH_BACKOFF_MS every socket that needs to ask is refused at once
 * instead of waiting out another timeout on the service thread.
 *
 * Only the service thread calls this file: the cache has no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "util.h"
#include "ws.h"

#define CACHE_SLOTS 4096
#define AUTH_BACKOFF_MS 1000

typedef struct {
    char id[EMS_ID_LEN];
    int64_t ver;
    int64_t checked_ms;
    ems_rc verdict; /* EMS_OK or EMS_UNAUTHORIZED */
} cache_slot;

struct ws_tokens {
    ws_role *w;
    cache_slot slots[CACHE_SLOTS];
    int64_t down_until_ms; /* auth failed: refuse without asking until then */
};

static cache_slot *slot_of(ws_tokens *t, const char *id) {
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return &t->slots[h % CACHE_SLOTS];
}

/* auth's base URL into out ("" when there is none); see support_base in assistant.c. */
static void auth_base(const ws_tokens *t, char *out, size_t n) {
    const ems_role_env *env = t->w->env;
    const char *host = ems_conf_str(env->conf, "auth_service_host");
    int port = env->http ? ems_http_port(env->http) : 0;
    if (host && *host) snprintf(out, n, "%s", host);
    else if (env->embedded && port > 0) snprintf(out, n, "http://127.0.0.1:%d", port);
    else out[0] = '\0';
    size_t len = strlen(out);
    while (len && out[len - 1] == '/') out[--len] = '\0';
}

ems_rc ws_tokens_new(ws_role *w, ws_tokens **out) {
    ws_tokens *t = calloc(1, sizeof *t);
    if (!t) return EMS_NOMEM;
    t->w = w;
    ems_fetch_init();
    *out = t;
    return EMS_OK;
}

void ws_tokens_free(ws_tokens *t) { free(t); }

void ws_tokens_forget(ws_tokens *t, const char *id) {
    cache_slot *s = slot_of(t, id);
    if (strcmp(s->id, id) == 0) s->id[0] = '\0';
}

ems_rc ws_tokens_check(ws_tokens *t, const ems_principal *who, const char *token) {
    int64_t now = ems_now_ms(), ttl = ems_conf_int(t->w->env->conf, "ws_token_cache_ms");
    cache_slot *s = slot_of(t, who->id);
    if (ttl > 0 && strcmp(s->id, who->id) == 0 && s->ver == who->ver && now - s->checked_ms < ttl) return s->verdict;
    if (now < t->down_until_ms) return EMS_UNAVAILABLE;

    char base[512], url[600], why[128] = "";
    char *body = NULL;
    long status = 0;
    ems_rc rc = EMS_UNAVAILABLE;
    auth_base(t, base, sizeof base);
    if (!base[0]) {
        snprintf(why, sizeof why, "no auth_service_host");
        goto cleanup;
    }
    snprintf(url, sizeof url, "%s/api/auth/verify", base);
    ems_fetch_req req = {.method = "GET",
                         .url = url,
                         .bearer = token,
                         .timeout_ms = ems_conf_int(t->w->env->conf, "ws_auth_timeout_ms")};
    if (ems_fetch(&req, &status, &body, why, sizeof why) != EMS_OK) goto cleanup;
    if (status == 204 || status == 200) rc = EMS_OK;
    else if (status == 401 || status == 403) rc = EMS_UNAUTHORIZED;
    else snprintf(why, sizeof why, "status %ld", status);
cleanup:
    free(body);
    if (rc == EMS_UNAVAILABLE) {
        ems_log(EMS_LOG_ERROR, "ws.auth_unavailable", "auth=%s reason=\"%s\" effect=\"sockets refused for %d ms\"",
                base[0] ? base : "-", why, AUTH_BACKOFF_MS);
        t->down_until_ms = ems_now_ms() + AUTH_BACKOFF_MS;
        return rc;
    }
    snprintf(s->id, sizeof s->id, "%s", who->id);
    s->ver = who->ver;
    s->checked_ms = now;
    s->verdict = rc;
    return rc;
}
