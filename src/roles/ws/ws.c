/*
 * ws.c — the ws role: live notifications and client–administrator chat.
 *
 * Owns the notifications, messages and people tables.  Alerts come from
 * devices on internal.device.websocket.user.notification.queue; each is
 * stored once (inbox) and pushed to every open session of the device's
 * owner; an owner who is offline gets the unread ones, in order, when a
 * session opens.  The WebSocket server (server.c) listens on a port of its
 * own, ws_port: PORT+1 unless set.  The chat history is served over REST on
 * the role's HTTP server (chat.c).  Questions to the "assistant" peer are
 * asked of the support role over HTTP by worker threads (assistant.c).
 * A socket opens only with a token whose account still has that token
 * version, as auth says (tokens.c); auth's revocations, on
 * internal.auth.websocket.queue, close the sockets already open.
 * In distributed mode several ws replicas may run: each delivery is also
 * published to the other live replicas (replicas.c).
 */
#include <stdlib.h>
#include <string.h>

#include "consume.h"
#include "log.h"
#include "roles.h"
#include "util.h"
#include "ws.h"

static const ems_conf_def ws_conf[] = {
    {"ws_port", "EMS_WS_PORT", EMS_CONF_INT, "0", 0, 65535,
     "WebSocket port (0: PORT+1; embedded, any free port when that is taken or PORT is 0)"},
    {"ws_max_message", "EMS_WS_MAX_MESSAGE", EMS_CONF_INT, "16384", 256, 1048576,
     "largest WebSocket message from a client, in bytes"},
    {"ws_rate", "EMS_WS_RATE", EMS_CONF_INT, "50", 1, 100000,
     "WebSocket messages per second a client may send before it is disconnected"},
    {"ws_replica_id", "EMS_WS_REPLICA_ID", EMS_CONF_STR, "", 0, 0,
     "this ws replica's name in distributed mode (default: <hostname>-<ws_port>)"},
    {"ws_replica_queue_prefix", "RABBITMQ_WS_REPLICA_QUEUE_PREFIX", EMS_CONF_STR, "internal.ws.replica.", 0, 0,
     "ws replica queues (+ replica id): deliveries for the sessions a replica holds"},
    {"ws_assistant_timeout_ms", "EMS_WS_ASSISTANT_TIMEOUT_MS", EMS_CONF_INT, "10000", 100, 120000,
     "timeout of a question the chat assistant asks the support role (ms)"},
    {"ws_auth_timeout_ms", "EMS_WS_AUTH_TIMEOUT_MS", EMS_CONF_INT, "2000", 100, 60000,
     "timeout of the token check asked of auth when a WebSocket opens (ms)"},
    {"ws_token_cache_ms", "EMS_WS_TOKEN_CACHE_MS", EMS_CONF_INT, "1000", 0, 60000,
     "how long auth's answer on an account's token version is reused for new WebSockets (ms; 0: ask every time)"},
};

void ws_dispatch(ws_role *w, ws_target target, const char *user, const char *exclude, json_t *msg) {
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (!text) return;
    if (w->replicas) ws_replicas_publish(w->replicas, target, user, exclude, 0, text);
    ws_server_post(w->server, target, user, exclude, text);
}

/*
 * internal.auth.websocket.queue: {type:"account.revoked", id, ver}, the
 * account's tokens below version ver (0: all) are revoked.  Their sessions
 * close here and, through the other replicas' queues, everywhere: replicas
 * compete for this queue, so one of them hears it for all.
 */
static ems_verdict ws_on_revoked(const char *queue, const char *body, size_t len, void *ctx) {
    ws_role *w = ctx;
    json_t *ev = json_loadb(body, len, 0, NULL);
    const char *type = NULL, *id = NULL;
    json_int_t ver = -1;
    if (json_unpack(ev, "{s:s, s:s, s:I}", "type", &type, "id", &id, "ver", &ver) ||
        strcmp(type, "account.revoked") != 0 || !ems_uuid_valid(id) || ver < 0) {
        ems_log(EMS_LOG_WARN, "ws.bad_revocation", "queue=%s", queue);
        json_decref(ev);
        return EMS_BUS_REJECT;
    }
    if (w->replicas) ws_replicas_publish(w->replicas, WS_REVOKE, id, NULL, ver, NULL);
    ws_server_revoke(w->server, id, ver);
    json_decref(ev);
    return EMS_BUS_ACK;
}

/*
 * internal.device.websocket.user.notification.queue: an alert enriched with
 * its owner.  Stored with the inbox entry in one transaction, then pushed.
 */
typedef struct notification_event {
    ws_role *w;
    const char *owner;
    char *payload;  /* the event as stored and pushed */
    ems_rows *rows; /* the stored row's id and created_at */
} notification_event;

static ems_rc notification_check(json_t *ev, void *arg) {
    notification_event *n = arg;
    if (json_unpack(ev, "{s:s}", "owner_id", &n->owner) || !ems_uuid_valid(n->owner)) return EMS_BAD_REQUEST;
    n->payload = json_dumps(ev, JSON_COMPACT);
    return n->payload ? EMS_OK : EMS_NOMEM;
}

static ems_rc notification_apply(ems_db *db, json_t *ev, void *arg) {
    (void)ev;
    notification_event *n = arg;
    return ems_db_query(db, &n->rows,
                        "INSERT INTO notifications (user_id, payload, created_at) VALUES ($1, $2, $3) "
                        "RETURNING id, created_at",
                        "ssi", n->owner, n->payload, ems_now_ms());
}

static void notification_committed(json_t *ev, void *arg) {
    (void)ev;
    const notification_event *n = arg;
    json_t *msg = ws_notification_json(ems_rows_int(n->rows, 0, 0), n->payload, ems_rows_int(n->rows, 0, 1));
    ws_dispatch(n->w, WS_TO_USER, n->owner, NULL, msg);
    json_decref(msg);
    ems_log(EMS_LOG_DEBUG, "ws.notification", "user_id=%s id=%lld", n->owner, (long long)ems_rows_int(n->rows, 0, 0));
}

static const ems_consumer notification_consumer = {
    .check = notification_check, .apply = notification_apply, .after_commit = notification_committed};

static ems_verdict ws_on_notification(const char *queue, const char *body, size_t len, void *ctx) {
    notification_event n = {.w = ctx};
    ems_verdict verdict = ems_consume_once(n.w->env->store, &notification_consumer, queue, body, len, &n);
    ems_rows_free(n.rows);
    free(n.payload);
    return verdict;
}

static const ems_route ws_routes[] = {
    {"GET", "/api/chat/conversations", EMS_ACCESS_USER, ws_conversations},
    {"GET", "/api/chat/conversations/{peer_id}/messages", EMS_ACCESS_USER, ws_messages},
};

static void ws_stop(void *state) {
    ws_role *w = state;
    if (!w) return;
    ws_assistant_stop(w->assistant); /* before the server: its workers deliver through it */
    ws_replicas_stop(w->replicas);
    ws_server_stop(w->server);
    ws_tokens_free(w->tokens); /* after the server: its thread checks tokens */
    free(w);
}

/* ws_port, or PORT+1 (any free port when PORT is 0 too). */
static int ws_port_of(const ems_conf *c) {
    long port = ems_conf_int(c, "ws_port");
    if (port) return (int)port;
    long http = ems_conf_int(c, "port");
    return http && http < 65535 ? (int)http + 1 : 0;
}

static ems_rc ws_start(ems_role_env *env, void **state) {
    ws_role *w = calloc(1, sizeof *w);
    if (!w) return EMS_NOMEM;
    w->env = env;
    w->max_message = (size_t)ems_conf_int(env->conf, "ws_max_message");
    w->rate = (unsigned)ems_conf_int(env->conf, "ws_rate");
    const char *queue = EMS_Q_NOTIFICATION(env->conf), *revocations = EMS_Q_AUTH_WS(env->conf);
    ems_rc rc = ws_tokens_new(w, &w->tokens);
    if (!rc) rc = ws_assistant_start(w, &w->assistant);
    if (!rc) rc = ws_server_start(w, ems_conf_str(env->conf, "bind"), ws_port_of(env->conf), &w->server);
    /*
     * Without its replica queue (the broker refused it) this replica still
     * serves its own sessions: loudly degraded rather than down.
     */
    if (!rc && !env->embedded && ws_replicas_start(w, &w->replicas) != EMS_OK)
        ems_log(EMS_LOG_ERROR, "ws.replicas_off",
                "reason=\"cannot declare or consume this replica's queue (broker permissions?)\" "
                "effect=\"deliveries reach only the sessions on this replica\"");
    if (!rc) rc = ems_http_routes(env->http, ws_routes, sizeof ws_routes / sizeof ws_routes[0], w);
    if (!rc) rc = ems_bus_declare(env->bus, queue);
    if (!rc) rc = ems_bus_consume(env->bus, queue, 100, ws_on_notification, w);
    if (!rc) rc = ems_bus_declare(env->bus, revocations);
    if (!rc) rc = ems_bus_consume(env->bus, revocations, 100, ws_on_revoked, w);
    if (rc) {
        ws_stop(w);
        return rc;
    }
    *state = w;
    return EMS_OK;
}

const ems_role_def ems_role_ws = {
    .name = "ws",
    .conf = ws_conf,
    .nconf = sizeof ws_conf / sizeof ws_conf[0],
    .has_store = 1,
    .start = ws_start,
    .stop = ws_stop,
};
