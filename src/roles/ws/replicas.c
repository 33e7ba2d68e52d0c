/*
 * replicas.c — several ws replicas in distributed mode.
 *
 * A user's sessions may sit on any replica, so every delivery made on one
 * replica is also published to the others.  The bus has durable named
 * queues only, so each replica consumes a queue of its own,
 * <ws_replica_queue_prefix><ws_replica_id>, and announces itself in the
 * shared ws_replicas table with a heartbeat.  A thread of this file beats
 * every HEARTBEAT_MS and re-reads the replicas that beat within PEER_TTL_MS.
 * A delivery is written to the role's outbox once for each of them: the
 * outbox relay publishes it with confirms, off the service thread, and
 * `ems serve` stops the relay before it closes the bus.  The relay is not
 * kicked: `ems serve` frees it before it stops the roles, and a session
 * closing in between would kick freed memory.  So an envelope waits for the
 * relay's next pass (at most its idle period, 1 s).
 *
 * A delivery travels as an envelope {from, at, target, user, exclude, ver, msg}
 * (ver: for a revocation, the token version its sessions must reach).
 * Deliveries are live pushes (what they carry is already stored), so an
 * envelope older than STALE_MS — a replica restarting onto its old queue —
 * is acknowledged and dropped.  The replica id is stable across restarts
 * (hostname and port by default) so that queues do not pile up.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"
#include "ws.h"

#define HEARTBEAT_MS 2000
#define PEER_TTL_MS 10000
#define STALE_MS 30000

struct ws_replicas {
    ws_role *w;
    char id[128];
    char queue[384];
    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t wake;
    int stopping;
    char **peers; /* the other live replicas' queues */
    size_t npeers;
};

/* Indexed by ws_target. */
static const char *target_names[] = {"user", "conversation", "admins", "clients", "revoke"};

void ws_replicas_publish(ws_replicas *r, ws_target target, const char *user, const char *exclude, int64_t ver,
                         const char *text) {
    json_t *msg = text ? json_loads(text, 0, NULL) : json_object();
    json_t *env = msg ? json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:o}", "from", r->id, "at", (json_int_t)ems_now_ms(),
                                  "target", target_names[target], "user", user ? user : "", "exclude",
                                  exclude ? exclude : "", "ver", (json_int_t)ver, "msg", msg)
                      : NULL;
    if (!env) return;
    ems_rc rc = EMS_OK;
    pthread_mutex_lock(&r->lock);
    if (r->npeers) {
        ems_db *db = ems_store_get(r->w->env->store);
        rc = db ? ems_db_begin(db) : EMS_UNAVAILABLE;
        for (size_t i = 0; !rc && i < r->npeers; i++) {
            json_object_del(env, "event_id"); /* a new one per copy */
            rc = ems_outbox_add(db, r->peers[i], env);
        }
        if (!rc) rc = ems_db_commit(db);
        if (db) ems_store_put(r->w->env->store, db);
    }
    pthread_mutex_unlock(&r->lock);
    json_decref(env);
    if (rc) ems_log(EMS_LOG_WARN, "ws.replica_publish_failed", "replica=%s rc=%s", r->id, ems_rc_code(rc));
}

/* Another replica's delivery for the sessions held here. */
static ems_verdict on_envelope(const char *queue, const char *body, size_t len, void *ctx) {
    ws_replicas *r = ctx;
    json_t *env = json_loadb(body, len, 0, NULL);
    const char *from = NULL, *target = NULL, *user = NULL, *exclude = NULL;
    json_int_t at = 0, ver = 0;
    json_t *msg = NULL;
    size_t t = 0, nt = sizeof target_names / sizeof target_names[0];
    if (!env || json_unpack(env, "{s:s, s:I, s:s, s:s, s:s, s?:I, s:o}", "from", &from, "at", &at, "target", &target,
                            "user", &user, "exclude", &exclude, "ver", &ver, "msg", &msg)) {
        ems_log(EMS_LOG_WARN, "ws.bad_envelope", "queue=%s", queue);
        json_decref(env);
        return EMS_BUS_REJECT;
    }
    while (t < nt && strcmp(target_names[t], target) != 0) t++;
    if (t == nt) {
        json_decref(env);
        return EMS_BUS_REJECT;
    }
    /* A revocation is acted on however late it comes: the sockets it closes may still be open. */
    if (strcmp(from, r->id) != 0 && t == WS_REVOKE) ws_server_revoke(r->w->server, user, ver);
    else if (strcmp(from, r->id) != 0 && ems_now_ms() - at <= STALE_MS)
        ws_server_post(r->w->server, (ws_target)t, user, exclude, json_dumps(msg, JSON_COMPACT));
    json_decref(env);
    return EMS_BUS_ACK;
}

static void free_peers(ws_replicas *r) {
    for (size_t i = 0; i < r->npeers; i++) free(r->peers[i]);
    free(r->peers);
    r->peers = NULL;
    r->npeers = 0;
}

/* Beats, and re-reads who else is alive. */
static void heartbeat(ws_replicas *r) {
    ems_store *store = r->w->env->store;
    ems_db *db = ems_store_get(store);
    if (!db) return;
    int64_t now = ems_now_ms();
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_exec(db,
                            "INSERT INTO ws_replicas (id, queue, heartbeat_at) VALUES ($1, $2, $3) ON CONFLICT (id) "
                            "DO UPDATE SET queue = excluded.queue, heartbeat_at = excluded.heartbeat_at",
                            "ssi", r->id, r->queue, now);
    if (!rc)
        rc = ems_db_query(db, &rows, "SELECT queue FROM ws_replicas WHERE id <> $1 AND heartbeat_at > $2 ORDER BY id",
                          "si", r->id, now - PEER_TTL_MS);
    ems_store_put(store, db);
    if (rc) {
        ems_log(EMS_LOG_WARN, "ws.heartbeat_failed", "replica=%s", r->id);
        return;
    }
    pthread_mutex_lock(&r->lock);
    free_peers(r);
    size_t n = ems_rows_count(rows);
    if (n && (r->peers = calloc(n, sizeof *r->peers)))
        for (size_t i = 0; i < n; i++)
            if ((r->peers[r->npeers] = strdup(ems_rows_text(rows, i, 0)))) r->npeers++;
    size_t peers = r->npeers;
    pthread_mutex_unlock(&r->lock);
    ems_metrics_gauge("ems_ws_peers", "Other ws replicas this one knows alive (its deliveries go to them too).",
                      (double)peers);
    ems_rows_free(rows);
}

size_t ws_replicas_peers(ws_replicas *r) {
    if (!r) return 0;
    pthread_mutex_lock(&r->lock);
    size_t n = r->npeers;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void *replica_thread(void *arg) {
    ws_replicas *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        heartbeat(r);
        pthread_mutex_lock(&r->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += HEARTBEAT_MS / 1000;
        if (!r->stopping) pthread_cond_timedwait(&r->wake, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

ems_rc ws_replicas_start(ws_role *w, ws_replicas **out) {
    const ems_conf *c = w->env->conf;
    ws_replicas *r = calloc(1, sizeof *r);
    if (!r) return EMS_NOMEM;
    r->w = w;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    const char *id = ems_conf_str(c, "ws_replica_id");
    if (id && *id) {
        snprintf(r->id, sizeof r->id, "%s", id);
    } else {
        char host[64] = "ws";
        gethostname(host, sizeof host - 1);
        snprintf(r->id, sizeof r->id, "%s-%d", host, ws_server_port(w->server));
    }
    snprintf(r->queue, sizeof r->queue, "%s%s", ems_conf_str(c, "ws_replica_queue_prefix"), r->id);
    /* The thread first: once the consumer is registered, nothing may fail and free r. */
    ems_rc rc = pthread_create(&r->thread, NULL, replica_thread, r) == 0 ? EMS_OK : EMS_INTERNAL;
    r->started = rc == EMS_OK;
    if (!rc) rc = ems_bus_declare(w->env->bus, r->queue);
    if (!rc) rc = ems_bus_consume(w->env->bus, r->queue, 100, on_envelope, r);
    if (rc) {
        ws_replicas_stop(r);
        return rc;
    }
    ems_log(EMS_LOG_INFO, "ws.replica", "id=%s queue=%s", r->id, r->queue);
    *out = r;
    return EMS_OK;
}

void ws_replicas_stop(ws_replicas *r) {
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    if (r->started) pthread_join(r->thread, NULL);
    free_peers(r);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
