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
 * The question is a blocking HTTP call, so it is never asked on the service
 * thread: a slow auth held every open session's frames for as long as it
 * took (pings went from 0 to 1.8 s while one sign-in waited).  WORKERS
 * threads take questions off a locked queue and hand each answer back to
 * the service thread (ws_server_verdict), which admits or refuses the
 * sockets that waited for it.  What is already known is answered on the
 * service thread at once, with no question (ws_tokens_known):
 *   - the answer for an (account, token version) is cached for
 *     ws_token_cache_ms, so a burst of reconnections costs auth one question
 *     per account;
 *   - a revocation heard from auth (ws_tokens_revoke) is kept as the
 *     account's floor: its tokens below that version are dead for good;
 *   - fail closed: when auth cannot be reached or answers with anything but
 *     204 or 401/403, the sockets waiting for it are refused and
 *     ws.auth_unavailable is logged; for the next AUTH_BACKOFF_MS every
 *     socket that needs to ask is refused at once.
 *
 * The cache belongs to the service thread; the workers share only the queue
 * (under `lock`) and `down_until_ms` (atomic).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "util.h"
#include "ws.h"

#define CACHE_SLOTS 4096
#define AUTH_BACKOFF_MS 1000
#define WORKERS 4
/* Questions waiting for a worker; a socket beyond that is refused as if auth were down. */
#define QUEUE_MAX 1024

typedef struct cache_slot {
    char id[EMS_ID_LEN];
    int64_t floor;      /* tokens of this account below this version were revoked (INT64_MAX: all) */
    int64_t ver;        /* the last answer: for this version, */
    int64_t checked_ms; /* at this time (0: none), */
    ems_rc verdict;     /* EMS_OK or EMS_UNAUTHORIZED */
} cache_slot;

typedef struct question {
    struct question *next;
    uint64_t seq;
    char id[EMS_ID_LEN];
    int64_t ver;
    uint64_t epoch; /* revocations heard when it was asked */
    int64_t asked_ms;
    char *token;
} question;

struct ws_tokens {
    ws_role *w;
    ws_server *server;             /* where the answers go */
    cache_slot slots[CACHE_SLOTS]; /* service thread only */
    uint64_t epoch;                /* revocations heard (service thread only) */
    _Atomic int64_t down_until_ms; /* auth failed: refuse without asking until then */
    pthread_mutex_t lock;          /* guards the queue and `stopping` */
    pthread_cond_t wake;
    question *head, *tail;
    size_t queued;
    int stopping;
    size_t nthreads;
    pthread_t threads[WORKERS];
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

static void question_free(question *q) {
    if (!q) return;
    free(q->token);
    free(q);
}

/*
 * Asks auth one question, on a worker: EMS_OK, EMS_UNAUTHORIZED, or
 * EMS_UNAVAILABLE (then ws.auth_unavailable is logged and every socket is
 * refused without asking for AUTH_BACKOFF_MS).
 */
static ems_rc ask(ws_tokens *t, const question *q) {
    char base[512], url[600], why[128] = "";
    char *body = NULL;
    long status = 0, timeout = ems_conf_int(t->w->env->conf, "ws_auth_timeout_ms");
    ems_rc rc = EMS_UNAVAILABLE;
    int64_t now = ems_now_ms();
    /* Refused without a question: auth just failed, or the socket waited a whole timeout for a worker already. */
    if (now < atomic_load(&t->down_until_ms) || now - q->asked_ms >= timeout) return EMS_UNAVAILABLE;
    auth_base(t, base, sizeof base);
    if (!base[0]) {
        snprintf(why, sizeof why, "no auth_service_host");
        goto cleanup;
    }
    snprintf(url, sizeof url, "%s/api/auth/verify", base);
    ems_fetch_req req = {.method = "GET", .url = url, .bearer = q->token, .timeout_ms = timeout};
    if (ems_fetch(&req, &status, &body, why, sizeof why) != EMS_OK) goto cleanup;
    if (status == 204 || status == 200) rc = EMS_OK;
    else if (status == 401 || status == 403) rc = EMS_UNAUTHORIZED;
    else snprintf(why, sizeof why, "status %ld", status);
cleanup:
    free(body);
    if (rc == EMS_UNAVAILABLE) {
        ems_log(EMS_LOG_ERROR, "ws.auth_unavailable", "auth=%s reason=\"%s\" effect=\"sockets refused for %d ms\"",
                base[0] ? base : "-", why, AUTH_BACKOFF_MS);
        atomic_store(&t->down_until_ms, ems_now_ms() + AUTH_BACKOFF_MS);
    }
    return rc;
}

static void *worker(void *arg) {
    ws_tokens *t = arg;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->head && !t->stopping) pthread_cond_wait(&t->wake, &t->lock);
        if (t->stopping) break;
        question *q = t->head;
        t->head = q->next;
        if (!t->head) t->tail = NULL;
        t->queued--;
        pthread_mutex_unlock(&t->lock);
        ems_rc verdict = ask(t, q);
        ws_server_verdict(t->server, q->seq, q->id, q->ver, verdict, q->epoch);
        question_free(q);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

ems_rc ws_tokens_new(ws_role *w, ws_tokens **out) {
    ws_tokens *t = calloc(1, sizeof *t);
    if (!t) return EMS_NOMEM;
    t->w = w;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    ems_fetch_init();
    *out = t;
    return EMS_OK;
}

ems_rc ws_tokens_start(ws_tokens *t, ws_server *server) {
    t->server = server;
    for (; t->nthreads < WORKERS; t->nthreads++)
        if (pthread_create(&t->threads[t->nthreads], NULL, worker, t) != 0) break;
    return t->nthreads ? EMS_OK : EMS_UNAVAILABLE;
}

void ws_tokens_stop(ws_tokens *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < t->nthreads; i++) pthread_join(t->threads[i], NULL);
    t->nthreads = 0;
    while (t->head) {
        question *q = t->head;
        t->head = q->next;
        question_free(q);
    }
    t->tail = NULL;
    t->queued = 0;
}

void ws_tokens_free(ws_tokens *t) {
    if (!t) return;
    ws_tokens_stop(t);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void ws_tokens_revoke(ws_tokens *t, const char *id, int64_t ver) {
    cache_slot *s = slot_of(t, id);
    if (strcmp(s->id, id) != 0) {
        memset(s, 0, sizeof *s);
        snprintf(s->id, sizeof s->id, "%s", id);
    }
    int64_t floor = ver == 0 ? INT64_MAX : ver;
    if (floor > s->floor) s->floor = floor;
    s->checked_ms = 0; /* the cached answer may be one the revocation overrides */
    t->epoch++;
}

ems_rc ws_tokens_known(ws_tokens *t, const ems_principal *who) {
    int64_t now = ems_now_ms(), ttl = ems_conf_int(t->w->env->conf, "ws_token_cache_ms");
    const cache_slot *s = slot_of(t, who->id);
    if (strcmp(s->id, who->id) == 0) {
        if (who->ver < s->floor) return EMS_UNAUTHORIZED;
        if (ttl > 0 && s->checked_ms && s->ver == who->ver && now - s->checked_ms < ttl) return s->verdict;
    }
    if (now < atomic_load(&t->down_until_ms)) return EMS_UNAVAILABLE;
    return EMS_AGAIN;
}

ems_rc ws_tokens_ask(ws_tokens *t, const ems_principal *who, const char *token, uint64_t seq) {
    question *q = calloc(1, sizeof *q);
    ems_rc rc = EMS_NOMEM;
    if (q && token && (q->token = strdup(token))) {
        q->seq = seq;
        snprintf(q->id, sizeof q->id, "%s", who->id);
        q->ver = who->ver;
        q->epoch = t->epoch;
        q->asked_ms = ems_now_ms();
        pthread_mutex_lock(&t->lock);
        rc = EMS_RATE_LIMITED;
        if (t->queued < QUEUE_MAX && !t->stopping && t->nthreads) {
            if (t->tail) t->tail->next = q;
            else t->head = q;
            t->tail = q;
            t->queued++;
            rc = EMS_OK;
            pthread_cond_signal(&t->wake);
        }
        pthread_mutex_unlock(&t->lock);
    }
    if (rc == EMS_OK) return rc;
    question_free(q);
    ems_log(EMS_LOG_WARN, "ws.auth_busy", "user_id=%s waiting=%d", who->id, QUEUE_MAX);
    return rc;
}

ems_rc ws_tokens_settle(ws_tokens *t, const char *id, int64_t ver, ems_rc verdict, uint64_t epoch) {
    cache_slot *s = slot_of(t, id);
    int mine = strcmp(s->id, id) == 0;
    if (mine && ver < s->floor) return EMS_UNAUTHORIZED; /* revoked while auth was being asked */
    /* Not cached when any revocation came meanwhile: auth's answer may predate it. */
    if (verdict == EMS_UNAVAILABLE || epoch != t->epoch) return verdict;
    if (!mine) {
        memset(s, 0, sizeof *s);
        snprintf(s->id, sizeof s->id, "%s", id);
    }
    s->ver = ver;
    s->checked_ms = ems_now_ms();
    s->verdict = verdict;
    return verdict;
}
