/*
 * server.c — the ws role's WebSocket server (libwebsockets, one service thread).
 *
 * The service thread runs a libev loop (epoll) that libwebsockets drives
 * through its evlib plugin: lws's own loop waits with poll() over every
 * socket, which costs each pass time in proportion to the sessions open
 * (two thirds of the thread at 10k sessions, in bench/ws).
 *
 * A connection to GET /ws is accepted only with a valid token (?token=... or
 * "Authorization: Bearer ..."), still good for its account (tokens.c);
 * anything else is refused before the upgrade.  Whether it is still good is
 * auth's to say, and asking takes a blocking HTTP call that never runs on
 * this thread: when the answer is not known already (cached, a revocation
 * heard, auth down), the socket is upgraded and held *pending*: it is in no
 * map, gets no frame, and its frames are not read (lws rx flow control; any
 * that came with the handshake are held) until a worker's answer comes back
 * as a WS_VERDICT job.  Then it is admitted (hello, and the rest as for any
 * session), or refused: an error frame, then 4001 when auth says revoked,
 * 1013 (try again later) when auth cannot say.  Sockets of one account and
 * token version that arrive while a question is out wait on that question.
 * Each session keeps its principal, a queue of frames to write (written one
 * per WRITEABLE callback, as lws requires) and a small budget: a message
 * larger than max_message gets an error and a close (1009), more than
 * `rate` messages in one second a close (1008), a binary frame an error.
 *
 * A session lives no longer than its token: once a second a sweep closes
 * the sessions whose token expired, and a revocation from auth (a password
 * changed, an account changed or deleted) closes those its token version
 * no longer covers.  Either gets an error frame, then close code 4001.
 *
 * Presence frames are coalesced: those a pass of the loop hands to one
 * session go out as one {"type":"presence.batch","users":[...]} when there
 * are several (a new session's snapshot of who is online, a storm of
 * reconnections after a restart), as the single frame otherwise.  With 10k
 * clients and 50 administrators that turns a million small frames into a
 * few large ones.
 *
 * Sessions are found by user id in a hash table; administrators are also on
 * a list of their own, since every conversation includes them.  All of it
 * belongs to the service thread; other threads only append to the job queue
 * under its lock and wake the loop with lws_cancel_service.
 */
#include <ev.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "ws.h"

#define BUCKETS 4096
/* A session whose unsent frames exceed this is too slow to keep. */
#define MAX_PENDING_BYTES (4u << 20)
/* Frames written to one session per WRITEABLE callback, at most (fairness between sessions). */
#define WRITE_BATCH 64
/* Messages a pending session may send before it is admitted (more: close 1008). */
#define PENDING_HELD_MAX 16
/* The close code of a socket refused because auth cannot say: RFC 6455's "try again later". */
#define CLOSE_TRY_AGAIN_LATER 1013
/* How often the sessions are swept for expired tokens. */
#define SWEEP_US ((lws_usec_t)1000 * 1000)
/* TCP keepalive: a peer gone without a FIN is dropped after about 60 + 3 x 10 s of silence. */
#define KEEPALIVE_IDLE_S 60
#define KEEPALIVE_PROBES 3
#define KEEPALIVE_INTERVAL_S 10

typedef struct out_frame {
    struct out_frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes, then the text */
} out_frame;

typedef struct held_msg {
    struct held_msg *next;
    size_t len;
    char text[];
} held_msg;

typedef struct session {
    struct lws *wsi;
    ems_principal who;
    int linked;                      /* in the maps (between ESTABLISHED and CLOSED) */
    int pending;                     /* waiting for auth's answer: in the pending map, not in the others */
    uint64_t seq;                    /* the question it waits on */
    struct session *next_pending;    /* pending bucket chain */
    held_msg *held_head, *held_tail; /* messages it sent while pending */
    unsigned held_n;
    struct session *next_user; /* bucket chain */
    struct session *next_admin;
    out_frame *out_head, *out_tail;
    size_t out_bytes;
    char *token; /* the token it was opened with (malloc'd): the assistant asks with it */
    char *rx;    /* the message being assembled */
    size_t rx_len;
    int64_t window_ms; /* flood control: start of this second */
    unsigned window_count;
    int close_code; /* nonzero: close after the pending frames */
    char *presence; /* presence frames waiting for this pass's end, comma-separated */
    size_t presence_len, presence_cap;
    unsigned presence_n;
} session;

struct ws_server {
    ws_role *w;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    struct ev_loop *loop; /* the service thread's */
    int port;
    pthread_t thread;
    int started;
    atomic_int stopping;
    pthread_mutex_t lock; /* guards the job queue */
    ws_job *jobs_head, *jobs_tail;
    session *buckets[BUCKETS]; /* service thread only, from here on */
    session *admins;
    size_t nsessions;
    session *pending[BUCKETS];    /* sessions waiting for auth, by user id */
    uint64_t next_seq;            /* questions asked of auth */
    lws_sorted_usec_list_t sweep; /* the expiry sweep's timer */
    session **touched;            /* sessions with presence waiting (during drain_jobs) */
    size_t ntouched, touched_cap;
};

static unsigned bucket_of(const char *id) {
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h % BUCKETS;
}

static unsigned user_sessions(ws_server *s, const char *id) {
    unsigned n = 0;
    for (session *p = s->buckets[bucket_of(id)]; p; p = p->next_user)
        if (strcmp(p->who.id, id) == 0) n++;
    return n;
}

static void link_session(ws_server *s, session *ss) {
    unsigned b = bucket_of(ss->who.id);
    ss->next_user = s->buckets[b];
    s->buckets[b] = ss;
    if (ss->who.role == EMS_ROLE_ADMIN) {
        ss->next_admin = s->admins;
        s->admins = ss;
    }
    ss->linked = 1;
    s->nsessions++;
}

static void unlink_session(ws_server *s, session *ss) {
    for (session **pp = &s->buckets[bucket_of(ss->who.id)]; *pp; pp = &(*pp)->next_user)
        if (*pp == ss) {
            *pp = ss->next_user;
            break;
        }
    for (session **pp = &s->admins; *pp; pp = &(*pp)->next_admin)
        if (*pp == ss) {
            *pp = ss->next_admin;
            break;
        }
    ss->linked = 0;
    s->nsessions--;
}

/* Queues one text frame made of n pieces, copied once; a session that cannot keep up is closed. */
static void send_pieces(session *ss, const char *const *piece, const size_t *piece_len, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += piece_len[i];
    if (ss->close_code) return;
    if (ss->out_bytes + len > MAX_PENDING_BYTES) {
        /* It is not reading: waiting for it to become writable again could take forever. */
        ems_log(EMS_LOG_WARN, "ws.slow_consumer", "user_id=%s pending=%zu", ss->who.id, ss->out_bytes);
        ss->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
        lws_set_timeout(ss->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    out_frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) return;
    f->next = NULL;
    f->len = len;
    unsigned char *at = f->buf + LWS_PRE;
    for (int i = 0; i < n; i++) {
        memcpy(at, piece[i], piece_len[i]);
        at += piece_len[i];
    }
    if (ss->out_tail) ss->out_tail->next = f;
    else ss->out_head = f;
    ss->out_tail = f;
    ss->out_bytes += len;
    lws_callback_on_writable(ss->wsi);
}

/* Queues a text frame for one session; a session that cannot keep up is closed. */
static void send_text(session *ss, const char *text, size_t len) { send_pieces(ss, &text, &len, 1); }

static void send_json(session *ss, json_t *msg) {
    char *text = json_dumps(msg, JSON_COMPACT);
    if (text) send_text(ss, text, strlen(text));
    free(text);
}

/* Adds a presence frame to the session's batch; `touched` collects the sessions to flush. */
static void queue_presence(ws_server *s, session *ss, const char *text, size_t len) {
    if (ss->close_code) return;
    if (ss->presence_len + len + 1 > ss->presence_cap) {
        size_t cap = ss->presence_cap ? ss->presence_cap * 2 : 1024;
        while (cap < ss->presence_len + len + 1) cap *= 2;
        char *p = realloc(ss->presence, cap);
        if (!p) return;
        ss->presence = p;
        ss->presence_cap = cap;
    }
    if (ss->presence_n == 0) {
        if (s->ntouched == s->touched_cap) {
            size_t cap = s->touched_cap ? s->touched_cap * 2 : 64;
            session **t = realloc(s->touched, cap * sizeof(session *));
            if (!t) return;
            s->touched = t;
            s->touched_cap = cap;
        }
        s->touched[s->ntouched++] = ss;
    } else {
        ss->presence[ss->presence_len++] = ',';
    }
    memcpy(ss->presence + ss->presence_len, text, len);
    ss->presence_len += len;
    ss->presence_n++;
}

/* Sends a session's waiting presence: the frame itself if one, a presence.batch of them if more. */
static void flush_presence(session *ss) {
    if (ss->presence_n == 1) {
        send_text(ss, ss->presence, ss->presence_len);
    } else if (ss->presence_n > 1) {
        static const char head[] = "{\"type\":\"presence.batch\",\"users\":[", tail[] = "]}";
        const char *piece[] = {head, ss->presence, tail};
        const size_t piece_len[] = {sizeof head - 1, ss->presence_len, sizeof tail - 1};
        send_pieces(ss, piece, piece_len, 3);
    }
    /* Freed, not kept for the next batch: kept, 10k sessions' buffers held ~150 MB after a storm. */
    free(ss->presence);
    ss->presence = NULL;
    ss->presence_len = ss->presence_cap = ss->presence_n = 0;
}

static void flush_touched(ws_server *s) {
    for (size_t i = 0; i < s->ntouched; i++) flush_presence(s->touched[i]);
    s->ntouched = 0;
}

/* Sends the error frame, then closes with `code` once it is written. */
static void fail_and_close(session *ss, ems_rc rc, const char *message, int code) {
    json_t *e = ws_error(rc, message);
    send_json(ss, e);
    json_decref(e);
    ss->close_code = code;
    lws_callback_on_writable(ss->wsi);
}

/* The error frame, then close code 4001 once it is written: the client must sign in again. */
static void sign_out(session *ss, const char *reason, const char *message) {
    ems_log(EMS_LOG_INFO, "ws.signed_out", "user_id=%s reason=%s", ss->who.id, reason);
    fail_and_close(ss, EMS_UNAUTHORIZED, message, WS_CLOSE_SIGNED_OUT);
}

static void pending_unlink(ws_server *s, session *ss) {
    for (session **pp = &s->pending[bucket_of(ss->who.id)]; *pp; pp = &(*pp)->next_pending)
        if (*pp == ss) {
            *pp = ss->next_pending;
            break;
        }
    ss->next_pending = NULL;
    ss->pending = 0;
}

/* A pending session that auth's answer (or a revocation) refuses: an error frame, then the close. */
static void refuse_pending(ws_server *s, session *ss, ems_rc rc) {
    pending_unlink(s, ss);
    ems_log(EMS_LOG_INFO, "ws.refused", "reason=%s user_id=%s", rc == EMS_UNAUTHORIZED ? "revoked" : "auth_unavailable",
            ss->who.id);
    if (rc == EMS_UNAUTHORIZED)
        fail_and_close(ss, EMS_UNAUTHORIZED, "your token is no longer valid: sign in again", WS_CLOSE_SIGNED_OUT);
    else
        fail_and_close(ss, EMS_UNAVAILABLE, "your sign-in cannot be checked right now: try again",
                       CLOSE_TRY_AGAIN_LATER);
}

static void close_revoked(ws_server *s, const ws_job *j) {
    ws_tokens_revoke(s->w->tokens, j->user, j->ver);
    for (session *p = s->buckets[bucket_of(j->user)]; p; p = p->next_user)
        if (strcmp(p->who.id, j->user) == 0 && (j->ver == 0 || p->who.ver < j->ver) && !p->close_code)
            sign_out(p, "revoked", "your session was ended (password or account changed): sign in again");
    /* Those waiting for auth now would be admitted on an answer the revocation overrides. */
    for (session *p = s->pending[bucket_of(j->user)], *next; p; p = next) {
        next = p->next_pending;
        if (strcmp(p->who.id, j->user) == 0 && (j->ver == 0 || p->who.ver < j->ver))
            refuse_pending(s, p, EMS_UNAUTHORIZED);
    }
}

/* Once a second, on the service thread: the sessions whose token expired are closed. */
static void sweep(lws_sorted_usec_list_t *sul) {
    ws_server *s = lws_container_of(sul, ws_server, sweep);
    int64_t now_s = ems_now_ms() / 1000;
    for (size_t b = 0; b < BUCKETS; b++)
        for (session *p = s->buckets[b]; p; p = p->next_user)
            if (p->who.exp && p->who.exp <= now_s && !p->close_code)
                sign_out(p, "expired", "your session expired: sign in again");
    if (!atomic_load(&s->stopping)) lws_sul_schedule(s->ctx, 0, &s->sweep, sweep, SWEEP_US);
}

static void on_verdict(ws_server *s, const ws_job *j);

static void deliver(ws_server *s, const ws_job *j) {
    if (j->target == WS_REVOKE) {
        close_revoked(s, j);
        return;
    }
    if (j->target == WS_VERDICT) {
        on_verdict(s, j);
        return;
    }
    int to_user = j->target == WS_TO_USER || j->target == WS_TO_CONVERSATION;
    if (to_user)
        for (session *p = s->buckets[bucket_of(j->user)]; p; p = p->next_user)
            if (strcmp(p->who.id, j->user) == 0 && strcmp(p->who.id, j->exclude) != 0) send_text(p, j->text, j->len);
    if (j->target == WS_TO_CONVERSATION)
        for (session *p = s->admins; p; p = p->next_admin)
            if (strcmp(p->who.id, j->exclude) != 0 && strcmp(p->who.id, j->user) != 0) send_text(p, j->text, j->len);
    if (j->target == WS_PRESENCE_TO_ADMINS)
        for (session *p = s->admins; p; p = p->next_admin)
            if (strcmp(p->who.id, j->exclude) != 0) queue_presence(s, p, j->text, j->len);
    if (j->target == WS_PRESENCE_TO_CLIENTS)
        for (size_t b = 0; b < BUCKETS; b++)
            for (session *p = s->buckets[b]; p; p = p->next_user)
                if (p->who.role == EMS_ROLE_CLIENT && strcmp(p->who.id, j->exclude) != 0)
                    queue_presence(s, p, j->text, j->len);
}

static void free_job(ws_job *j) {
    if (!j) return;
    free(j->text);
    free(j);
}

static void drain_jobs(ws_server *s) {
    pthread_mutex_lock(&s->lock);
    ws_job *j = s->jobs_head;
    s->jobs_head = s->jobs_tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (j) {
        ws_job *next = j->next;
        deliver(s, j);
        free_job(j);
        j = next;
    }
    flush_touched(s);
}

/* Appends a job and wakes the service thread. */
static void post_job(ws_server *s, ws_job *j) {
    pthread_mutex_lock(&s->lock);
    if (s->jobs_tail) s->jobs_tail->next = j;
    else s->jobs_head = j;
    s->jobs_tail = j;
    pthread_mutex_unlock(&s->lock);
    if (!atomic_load(&s->stopping)) lws_cancel_service(s->ctx);
}

void ws_server_revoke(ws_server *s, const char *user, int64_t ver) {
    ws_job *j = s && user ? calloc(1, sizeof *j) : NULL;
    if (!j) return;
    j->target = WS_REVOKE;
    snprintf(j->user, sizeof j->user, "%s", user);
    j->ver = ver;
    post_job(s, j);
}

void ws_server_verdict(ws_server *s, uint64_t seq, const char *user, int64_t ver, ems_rc verdict, uint64_t epoch) {
    ws_job *j = s && user ? calloc(1, sizeof *j) : NULL;
    if (!j) return; /* out of memory: the socket stays pending until it closes */
    j->target = WS_VERDICT;
    snprintf(j->user, sizeof j->user, "%s", user);
    j->ver = ver;
    j->seq = seq;
    j->epoch = epoch;
    j->verdict = verdict;
    post_job(s, j);
}

void ws_server_post(ws_server *s, ws_target target, const char *user, const char *exclude, char *text) {
    ws_job *j = s && text ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        free(text);
        return;
    }
    j->target = target;
    snprintf(j->user, sizeof j->user, "%s", user ? user : "");
    snprintf(j->exclude, sizeof j->exclude, "%s", exclude ? exclude : "");
    j->text = text;
    j->len = strlen(text);
    post_job(s, j);
}

/* {"type":"presence","user_id","username","role","online"} to the other side. */
static void announce_presence(ws_server *s, const ems_principal *who, int online) {
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "presence", "user_id", who->id, "username",
                            who->username, "role", ems_role_name(who->role), "online", online);
    ws_dispatch(s->w, who->role == EMS_ROLE_ADMIN ? WS_PRESENCE_TO_CLIENTS : WS_PRESENCE_TO_ADMINS, NULL, who->id, msg);
    json_decref(msg);
}

static void queue_online(ws_server *s, session *ss, const session *p) {
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "presence", "user_id", p->who.id, "username",
                            p->who.username, "role", ems_role_name(p->who.role), "online", 1);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (text) queue_presence(s, ss, text, strlen(text));
    free(text);
    json_decref(msg);
}

/*
 * Who of the other side is online here, for a new session: one entry per
 * user, not per session, all in one frame.  A client's side is the
 * administrators, walked on their own list: a walk over every session for
 * each client that connects would cost O(sessions) per connection.
 */
static void send_presence_snapshot(ws_server *s, session *ss) {
    if (ss->who.role != EMS_ROLE_ADMIN) {
        for (session *p = s->admins; p; p = p->next_admin) {
            const session *q = s->admins;
            while (q != p && strcmp(q->who.id, p->who.id) != 0) q = q->next_admin;
            if (q == p) queue_online(s, ss, p);
        }
    } else {
        for (size_t b = 0; b < BUCKETS; b++)
            for (session *p = s->buckets[b]; p; p = p->next_user) {
                if (p->who.role != EMS_ROLE_CLIENT) continue;
                const session *q = s->buckets[b];
                while (q != p && strcmp(q->who.id, p->who.id) != 0) q = q->next_user;
                if (q == p) queue_online(s, ss, p);
            }
    }
    flush_touched(s);
}

/*
 * The token from ?token= (what a browser can send) or the Authorization
 * header; copied into buf.  Not from Sec-WebSocket-Protocol: libwebsockets
 * 4.1.6 refuses a subprotocol list as long as a JWT ("protocol list too long").
 */
static const char *token_of(struct lws *wsi, char *buf, int len) {
    const char *t = lws_get_urlarg_by_name(wsi, "token=", buf, len);
    if (t && *t) return t;
    if (lws_hdr_copy(wsi, buf, len, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) return ems_bearer(buf);
    return NULL;
}

static int on_filter(ws_server *s, struct lws *wsi, session *ss) {
    char uri[64], buf[4096];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0) {
        ems_log(EMS_LOG_INFO, "ws.refused", "reason=path");
        return -1;
    }
    const char *token = token_of(wsi, buf, sizeof buf);
    if (!token || ems_jwt_verify(s->w->env->jwt, token, &ss->who) != EMS_OK || ss->who.role == EMS_ROLE_NONE) {
        ems_log(EMS_LOG_INFO, "ws.refused", "reason=%s", token ? "bad_token" : "no_token");
        memset(&ss->who, 0, sizeof ss->who);
        return -1;
    }
    /*
     * A well-signed token of an account whose tokens were revoked since, or
     * auth unable to say: refused.  Not known yet: upgraded, and held
     * pending while a worker asks auth (ESTABLISHED).
     */
    ems_rc rc = ws_tokens_known(s->w->tokens, &ss->who);
    if (rc == EMS_AGAIN) {
        ss->pending = 1;
        return 0;
    }
    if (rc != EMS_OK) {
        ems_log(EMS_LOG_INFO, "ws.refused", "reason=%s user_id=%s",
                rc == EMS_UNAUTHORIZED ? "revoked" : "auth_unavailable", ss->who.id);
        memset(&ss->who, 0, sizeof ss->who);
        return -1;
    }
    return 0;
}

static void on_established(ws_server *s, session *ss) {
    int first = user_sessions(s, ss->who.id) == 0;
    link_session(s, ss);
    ws_chat_seen_person(s->w, &ss->who);
    json_t *backlog = ws_chat_backlog(s->w, &ss->who);
    for (size_t i = 0; i < json_array_size(backlog); i++) send_json(ss, json_array_get(backlog, i));
    json_decref(backlog);
    send_presence_snapshot(s, ss);
    ems_log(EMS_LOG_DEBUG, "ws.open", "user_id=%s role=%s sessions=%zu", ss->who.id, ems_role_name(ss->who.role),
            s->nsessions);
    if (first) announce_presence(s, &ss->who, 1);
}

static int flooding(ws_server *s, session *ss);

/*
 * A socket whose token auth must be asked about: held, unread, in the
 * pending map, on the question already out for its account and token
 * version if there is one, or on a new one.
 */
static void start_pending(ws_server *s, session *ss) {
    unsigned b = bucket_of(ss->who.id);
    session *twin = s->pending[b];
    while (twin && (twin->who.ver != ss->who.ver || strcmp(twin->who.id, ss->who.id) != 0)) twin = twin->next_pending;
    ss->next_pending = s->pending[b];
    s->pending[b] = ss;
    if (twin) {
        ss->seq = twin->seq;
    } else {
        ss->seq = ++s->next_seq;
        if (!ss->token || ws_tokens_ask(s->w->tokens, &ss->who, ss->token, ss->seq) != EMS_OK) {
            refuse_pending(s, ss, EMS_UNAVAILABLE);
            return;
        }
    }
    lws_rx_flow_control(ss->wsi, 0);
    ems_log(EMS_LOG_DEBUG, "ws.pending", "user_id=%s seq=%llu", ss->who.id, (unsigned long long)ss->seq);
}

/* A pending session auth said yes to: a session like any other, then what it sent while it waited. */
static void admit(ws_server *s, session *ss) {
    pending_unlink(s, ss);
    lws_rx_flow_control(ss->wsi, 1);
    on_established(s, ss);
    held_msg *h = ss->held_head;
    ss->held_head = ss->held_tail = NULL;
    ss->held_n = 0;
    while (h) {
        held_msg *next = h->next;
        if (!ss->close_code && flooding(s, ss)) {
            ems_log(EMS_LOG_WARN, "ws.flood", "user_id=%s", ss->who.id);
            fail_and_close(ss, EMS_RATE_LIMITED, "too many messages", LWS_CLOSE_STATUS_POLICY_VIOLATION);
        } else if (!ss->close_code) {
            json_t *reply = NULL;
            ws_chat_handle(s->w, &ss->who, ss->token, h->text, h->len, &reply);
            if (reply) send_json(ss, reply);
            json_decref(reply);
        }
        free(h);
        h = next;
    }
}

/* auth's answer to a question: every socket waiting on it is admitted or refused. */
static void on_verdict(ws_server *s, const ws_job *j) {
    ems_rc verdict = ws_tokens_settle(s->w->tokens, j->user, j->ver, j->verdict, j->epoch);
    for (session *p = s->pending[bucket_of(j->user)], *next; p; p = next) {
        next = p->next_pending;
        if (p->seq != j->seq) continue;
        if (verdict == EMS_OK) admit(s, p);
        else refuse_pending(s, p, verdict);
    }
}

static void on_closed(ws_server *s, session *ss) {
    while (ss->out_head) {
        out_frame *f = ss->out_head;
        ss->out_head = f->next;
        free(f);
    }
    ss->out_tail = NULL;
    free(ss->rx);
    ss->rx = NULL;
    free(ss->token);
    ss->token = NULL;
    free(ss->presence);
    ss->presence = NULL;
    ss->presence_len = ss->presence_cap = ss->presence_n = 0;
    while (ss->held_head) {
        held_msg *h = ss->held_head;
        ss->held_head = h->next;
        free(h);
    }
    ss->held_tail = NULL;
    if (ss->pending) pending_unlink(s, ss);
    if (!ss->linked) return;
    unlink_session(s, ss);
    if (!atomic_load(&s->stopping) && user_sessions(s, ss->who.id) == 0) announce_presence(s, &ss->who, 0);
}

/*
 * Writes queued frames while the socket takes them, up to WRITE_BATCH.  One
 * frame per WRITEABLE callback would cost a whole service-loop pass (a poll
 * over every session's socket) per frame: with 10k sessions open, a burst of
 * frames for one session (an administrator's presence snapshot, say) would
 * crawl and hold everything queued behind it.
 */
static int on_writeable(session *ss) {
    int written = 0;
    while (ss->out_head && written < WRITE_BATCH && (written == 0 || !lws_send_pipe_choked(ss->wsi))) {
        out_frame *f = ss->out_head;
        ss->out_head = f->next;
        if (!ss->out_head) ss->out_tail = NULL;
        ss->out_bytes -= f->len;
        int n = lws_write(ss->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
        free(f);
        if (n < 0) return -1;
        written++;
    }
    if (written) {
        if (ss->out_head || ss->close_code) lws_callback_on_writable(ss->wsi);
        return 0;
    }
    if (ss->close_code) {
        lws_close_reason(ss->wsi, (enum lws_close_status)ss->close_code, NULL, 0);
        return -1;
    }
    return 0;
}

/* 1 if this message goes over the per-second budget. */
static int flooding(ws_server *s, session *ss) {
    int64_t now = ems_now_ms();
    if (now - ss->window_ms >= 1000) {
        ss->window_ms = now;
        ss->window_count = 0;
    }
    return ++ss->window_count > s->w->rate;
}

static void on_receive(ws_server *s, struct lws *wsi, session *ss, const char *in, size_t len) {
    if (ss->close_code) return;
    int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (ss->rx_len + len > s->w->max_message) { /* the rest of it is ignored: close_code is set */
        free(ss->rx);
        ss->rx = NULL;
        ss->rx_len = 0;
        fail_and_close(ss, EMS_TOO_LARGE, "message too large", LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        return;
    }
    char *rx = realloc(ss->rx, ss->rx_len + len + 1);
    if (!rx) return;
    memcpy(rx + ss->rx_len, in, len);
    ss->rx = rx;
    ss->rx_len += len;
    ss->rx[ss->rx_len] = '\0';
    if (!last) return;

    char *msg = ss->rx;
    size_t msg_len = ss->rx_len;
    ss->rx = NULL;
    ss->rx_len = 0;
    if (ss->pending) { /* read before flow control took hold: kept for when it is admitted */
        held_msg *h = ss->held_n < PENDING_HELD_MAX && !lws_frame_is_binary(wsi) ? malloc(sizeof *h + msg_len) : NULL;
        if (!h) {
            fail_and_close(ss, EMS_RATE_LIMITED, "too many messages before the sign-in was checked",
                           LWS_CLOSE_STATUS_POLICY_VIOLATION);
        } else {
            h->next = NULL;
            h->len = msg_len;
            memcpy(h->text, msg, msg_len);
            if (ss->held_tail) ss->held_tail->next = h;
            else ss->held_head = h;
            ss->held_tail = h;
            ss->held_n++;
        }
        free(msg);
        return;
    }
    if (flooding(s, ss)) {
        ems_log(EMS_LOG_WARN, "ws.flood", "user_id=%s", ss->who.id);
        fail_and_close(ss, EMS_RATE_LIMITED, "too many messages", LWS_CLOSE_STATUS_POLICY_VIOLATION);
    } else if (lws_frame_is_binary(wsi)) {
        json_t *e = ws_error(EMS_UNSUPPORTED, "binary frames are not understood: send JSON text");
        send_json(ss, e);
        json_decref(e);
    } else {
        json_t *reply = NULL;
        ws_chat_handle(s->w, &ss->who, ss->token, msg, msg_len, &reply);
        if (reply) send_json(ss, reply);
        json_decref(reply);
    }
    free(msg);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    struct lws_vhost *vh = lws_get_vhost(wsi);
    ws_server *s = vh ? lws_get_vhost_user(vh) : NULL;
    session *ss = user;
    if (reason == LWS_CALLBACK_HTTP) { /* a plain request to the WebSocket port: answered and closed */
        lws_return_http_status(wsi, 426, "WebSocket only: GET /ws with an Upgrade");
        return -1;
    }
    if (!s || (!ss && reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED)) /* fail closed */
        return reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION ? -1 : 0;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        drain_jobs(s);
        if (atomic_load(&s->stopping)) ev_break(s->loop, EVBREAK_ALL); /* ws_server_stop woke us */
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: return on_filter(s, wsi, ss);
    case LWS_CALLBACK_ESTABLISHED: {
        /* Kept from here, not from the filter: CLOSED, which frees it, follows only ESTABLISHED. */
        char buf[4096];
        const char *token = token_of(wsi, buf, sizeof buf);
        ss->token = token ? strdup(token) : NULL;
        ss->wsi = wsi;
        if (ss->pending) start_pending(s, ss);
        else on_established(s, ss);
        return 0;
    }
    case LWS_CALLBACK_CLOSED: on_closed(s, ss); return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: return on_writeable(ss);
    case LWS_CALLBACK_RECEIVE: on_receive(s, wsi, ss, in, len); return 0;
    default: return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"ems", callback, sizeof(session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* secs_since_valid_hangup 0: lws schedules no validity check at all. */
static const lws_retry_bo_t no_validity_timer = {.secs_since_valid_ping = 0, .secs_since_valid_hangup = 0};

/* libwebsockets' own log lines, in ours. */
static void lws_log_emit(int level, const char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    ems_log(level == LLL_ERR ? EMS_LOG_ERROR : EMS_LOG_WARN, "ws.lws", "msg=\"%.*s\"", (int)n, line);
}

static void *service(void *arg) {
    ws_server *s = arg;
    lws_sul_schedule(s->ctx, 0, &s->sweep, sweep, SWEEP_US); /* lws timers belong to the service thread */
    if (!atomic_load(&s->stopping)) ev_run(s->loop, 0);
    return NULL;
}

ems_rc ws_server_start(ws_role *w, const char *bind, int port, ws_server **out) {
    ws_server *s = calloc(1, sizeof *s);
    if (!s) return EMS_NOMEM;
    s->w = w;
    pthread_mutex_init(&s->lock, NULL);
    lws_set_log_level(LLL_ERR, lws_log_emit); /* its warnings repeat ours (e.g. every refused upgrade) */

    /* Signals stay the process's (ems serve's SIGTERM handling): the loop neither blocks nor takes them. */
    if (!(s->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK))) goto fail;
    void *loops[1] = {s->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port ? port : CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = loops;
    info.count_threads = 1;
    info.fd_limit_per_thread = 0; /* as many as the process may open (RLIMIT_NOFILE) */
    /*
     * No lws validity timer: 4.1.6 re-inserts a session's timer into one
     * sorted list on every frame in or out, a walk over every open session,
     * which made each frame cost O(sessions) (measured by bench/ws: the
     * service thread spent a third of its time there with 10k open).  A
     * dead peer is found by TCP keepalive instead, in the kernel.
     */
    info.retry_and_idle_policy = &no_validity_timer;
    info.ka_time = KEEPALIVE_IDLE_S;
    info.ka_probes = KEEPALIVE_PROBES;
    info.ka_interval = KEEPALIVE_INTERVAL_S;
    if (!(s->ctx = lws_create_context(&info))) goto fail;

    /* The vhost carries the server as its user pointer; port 0 asks lws for any free port. */
    info.port = port;
    info.iface = bind && *bind ? bind : "127.0.0.1";
    info.protocols = protocols;
    info.user = s;
    info.vhost_name = "ems-ws";
    if (!(s->vhost = lws_create_vhost(s->ctx, &info))) goto fail;
    s->port = lws_get_vhost_listen_port(s->vhost);
    if (ws_tokens_start(w->tokens, s) != EMS_OK) goto fail;
    if (pthread_create(&s->thread, NULL, service, s) != 0) goto fail;
    s->started = 1;
    ems_log(EMS_LOG_INFO, "ws.listening", "bind=%s port=%d", info.iface, s->port);
    *out = s;
    return EMS_OK;
fail:
    ems_log(EMS_LOG_ERROR, "ws.listen_failed", "bind=%s port=%d", bind ? bind : "", port);
    ws_server_stop(s);
    return EMS_UNAVAILABLE;
}

int ws_server_port(const ws_server *s) { return s ? s->port : 0; }

void ws_server_stop(ws_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->started) {
        lws_cancel_service(s->ctx);
        pthread_join(s->thread, NULL);
        lws_sul_cancel(&s->sweep);
    }
    ws_tokens_stop(s->w->tokens);            /* before the context goes: the workers hand their answers to it */
    if (s->ctx) lws_context_destroy(s->ctx); /* closes every session (CLOSED frees their frames) */
    if (s->loop) ev_loop_destroy(s->loop);
    ws_job *j = s->jobs_head;
    while (j) {
        ws_job *next = j->next;
        free_job(j);
        j = next;
    }
    pthread_mutex_destroy(&s->lock);
    free(s->touched);
    free(s);
}
