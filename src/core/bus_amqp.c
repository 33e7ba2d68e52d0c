/*
 * bus_amqp.c — the RabbitMQ driver (rabbitmq-c).
 *
 * rabbitmq-c connections are not thread-safe, so the driver keeps one
 * publishing connection behind a mutex and gives every consumer a
 * connection and a thread of its own.  All of them use channel 1.
 *
 * Publishing is safe only once confirmed: the publisher channel is in
 * confirm mode, messages are persistent, and a publish returns EMS_OK only
 * after the broker acknowledged every delivery tag it sent.  Consumers ack
 * after their handler returns EMS_BUS_ACK (several acks may go out as one
 * multiple-ack), so a consumer that dies mid-message loses nothing: the
 * broker redelivers what was not acknowledged.  A batch consumer gathers
 * deliveries into an array of envelopes (each body lives in its message's
 * own pool, so it survives further reads), calls its handler once, and
 * settles the whole batch before reading again.
 *
 * Connections are opened lazily and re-opened after a failure with a backoff
 * of 100 ms doubling to 5 s.  A publish never waits for that backoff: while
 * the broker is away it answers EMS_UNAVAILABLE at once, and a publish to a
 * broker that stops answering gives up after CONFIRM_TIMEOUT_MS.
 *
 * Every queue Q is durable and dead-letters through the default exchange to
 * "Q.dlq" (itself durable and plain); a REJECT is a basic.reject without
 * requeue, so the broker moves the message there.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_impl.h"
#include "log.h"

#define CHANNEL 1
#define HEARTBEAT_S 10
#define FRAME_MAX 131072
#define CONNECT_TIMEOUT_MS 2000 /* TCP connect and AMQP handshake */
#define RPC_TIMEOUT_MS 5000     /* queue.declare, basic.qos, ... */
#define CONFIRM_TIMEOUT_MS 5000 /* without a single confirm arriving */
#define CONSUME_POLL_MS 200     /* how soon a consumer notices it must stop */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define RETRY_DELAY_MIN_MS 100 /* before requeueing a message whose handler said RETRY */
#define RETRY_DELAY_MAX_MS 2000
#define PUBLISH_DRAIN_EVERY 256 /* read confirms while publishing a large batch */
#define SLEEP_SLICE_MS 50

/* One connection with channel 1 open, and the queues declared on it. */
typedef struct {
    amqp_connection_state_t conn; /* NULL while closed */
    char **declared;
    size_t ndeclared, cap;
    uint64_t next_tag;   /* publisher: delivery tag of the next message */
    unsigned backoff_ms; /* 0 after a success */
    int64_t next_try_ms; /* monotonic: no connection attempt before this */
    const char *role;    /* for log lines: "publisher" or the queue */
} amqp_link;

typedef struct amqp_bus amqp_bus;

typedef struct amqp_consumer {
    struct amqp_consumer *next;
    amqp_bus *bus;
    amqp_link link;
    char *queue;
    unsigned prefetch;
    ems_bus_handler fn; /* one of fn, bfn */
    ems_bus_batch_handler bfn;
    size_t max_batch;      /* batch consumers: 1..prefetch deliveries per call */
    unsigned max_wait_ms;  /* how long to wait for more after the first */
    amqp_envelope_t *envs; /* max_batch each */
    ems_bus_msg *msgs;
    ems_verdict *verdicts;
    void *ctx;
    pthread_t thread;
    atomic_int stop;
    char *buf; /* the body being handled, NUL-terminated */
    size_t cap;
    uint64_t ack_tag; /* acks not yet sent: everything up to this tag */
    unsigned ack_count;
    unsigned retry_delay_ms;
} amqp_consumer;

struct amqp_bus {
    const bus_url *url;       /* owned by bus.c, outlives the driver */
    pthread_mutex_t pub_lock; /* guards pub */
    amqp_link pub;
    pthread_mutex_t consumers_lock;
    amqp_consumer *consumers;
};

/* Confirms awaited for one publish: tags first .. first+n-1. */
typedef struct {
    uint64_t first;
    size_t n;
    unsigned char *done;
    size_t remaining;
    int nacked;
} confirm_set;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(long ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Sleeps up to ms, in slices, returning early once *stop is set. */
static void sleep_unless(atomic_int *stop, long ms) {
    for (long left = ms; left > 0 && !atomic_load(stop); left -= SLEEP_SLICE_MS)
        sleep_ms(left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS);
}

/* Describes a failed RPC for a log line (never contains credentials). */
static void reply_text(amqp_rpc_reply_t r, char *out, size_t outlen) {
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(out, outlen, "\"%s\"", amqp_error_string2(r.library_error));
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        snprintf(out, outlen, "\"connection closed %u %.*s\"", m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        snprintf(out, outlen, "\"channel closed %u %.*s\"", m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else {
        snprintf(out, outlen, "\"no reply\"");
    }
}

/* A channel-level refusal (e.g. 406 on a queue declared with other arguments) is the caller's fault. */
static ems_rc reply_rc(amqp_rpc_reply_t r) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return EMS_OK;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) return EMS_CONFLICT;
    return EMS_UNAVAILABLE;
}

static void link_forget_declared(amqp_link *l) {
    for (size_t i = 0; i < l->ndeclared; i++) free(l->declared[i]);
    l->ndeclared = 0;
}

/* No connection attempt before the backoff, which doubles from failure to failure. */
static void link_backoff(amqp_link *l) {
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS) l->backoff_ms = BACKOFF_MAX_MS;
    l->next_try_ms = now_ms() + l->backoff_ms;
}

/*
 * Drops the connection.  `graceful` closes channel and connection politely
 * (the broker is there); otherwise the socket is simply closed.  Without
 * `backoff` the next attempt may come at once (the broker answered: only this
 * connection was bad).
 */
static void link_drop(amqp_link *l, int graceful, int backoff) {
    if (l->conn) {
        if (graceful) {
            amqp_channel_close(l->conn, CHANNEL, AMQP_REPLY_SUCCESS);
            amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(l->conn);
        l->conn = NULL;
    }
    link_forget_declared(l);
    if (backoff) link_backoff(l);
    else l->next_try_ms = 0;
}

static void link_free(amqp_link *l) {
    link_drop(l, 1, 0);
    free(l->declared);
    l->declared = NULL;
    l->cap = 0;
}

/* The link is set up and in use: the backoff starts over. */
static void link_ready(const bus_url *u, amqp_link *l) {
    if (l->backoff_ms) ems_log(EMS_LOG_INFO, "bus.reconnected", "link=%s host=%s port=%d", l->role, u->host, u->port);
    l->backoff_ms = 0;
    l->next_try_ms = 0;
}

/*
 * Opens TCP, logs in and opens channel 1.  On failure the backoff is
 * scheduled; on success it is left as it is until the caller has set the
 * link up completely (link_ready), so that a broker that accepts connections
 * but refuses what follows is not retried in a tight loop.
 */
static ems_rc link_open(const bus_url *u, amqp_link *l) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock;
    amqp_rpc_reply_t r;
    struct timeval connect_tv = ms_tv(CONNECT_TIMEOUT_MS), rpc_tv = ms_tv(RPC_TIMEOUT_MS);
    char why[160];
    int st;
    if (!conn) return EMS_NOMEM;
    sock = amqp_tcp_socket_new(conn);
    if (!sock) {
        snprintf(why, sizeof why, "\"no socket\"");
        goto fail;
    }
    if ((st = amqp_socket_open_noblock(sock, u->host, u->port, &connect_tv)) != AMQP_STATUS_OK) {
        snprintf(why, sizeof why, "\"%s\"", amqp_error_string2(st));
        goto fail;
    }
    amqp_set_handshake_timeout(conn, &connect_tv);
    amqp_set_rpc_timeout(conn, &rpc_tv);
    r = amqp_login(conn, u->vhost, 0, FRAME_MAX, HEARTBEAT_S, AMQP_SASL_METHOD_PLAIN, u->user, u->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_text(r, why, sizeof why);
        goto fail;
    }
    amqp_channel_open(conn, CHANNEL);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_text(r, why, sizeof why);
        goto fail;
    }
    l->conn = conn;
    return EMS_OK;
fail:
    amqp_destroy_connection(conn);
    link_drop(l, 0, 1);
    ems_log(EMS_LOG_WARN, "bus.connect_failed", "link=%s host=%s port=%d user=%s error=%s retry_ms=%u", l->role,
            u->host, u->port, u->user, why, l->backoff_ms);
    return EMS_UNAVAILABLE;
}

static ems_rc declare_one(amqp_link *l, const char *name, amqp_table_t args) {
    char why[160];
    amqp_rpc_reply_t r;
    amqp_queue_declare(l->conn, CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    r = amqp_get_rpc_reply(l->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return EMS_OK;
    reply_text(r, why, sizeof why);
    ems_log(EMS_LOG_ERROR, "bus.declare_failed", "link=%s queue=%s error=%s", l->role, name, why);
    return reply_rc(r);
}

/*
 * Declares `queue` (and its dead-letter queue) once per connection.  Any
 * failure drops the connection: a refused declare closes the channel, and a
 * fresh connection is the simplest way to a clean one.
 */
static ems_rc link_declare(amqp_link *l, const char *queue) {
    ems_rc rc;
    for (size_t i = 0; i < l->ndeclared; i++)
        if (strcmp(l->declared[i], queue) == 0) return EMS_OK;
    if (l->ndeclared == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **d = realloc(l->declared, cap * sizeof *d);
        if (!d) return EMS_NOMEM;
        l->declared = d;
        l->cap = cap;
    }
    if (bus_is_dlq(queue)) {
        rc = declare_one(l, queue, amqp_empty_table);
    } else {
        char dlq[BUS_QUEUE_MAX + sizeof BUS_DLQ_SUFFIX];
        amqp_table_entry_t entries[2];
        amqp_table_t args = {.num_entries = 2, .entries = entries};
        snprintf(dlq, sizeof dlq, "%s%s", queue, BUS_DLQ_SUFFIX);
        entries[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
        entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[0].value.value.bytes = amqp_cstring_bytes("");
        entries[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[1].value.value.bytes = amqp_cstring_bytes(dlq);
        rc = declare_one(l, dlq, amqp_empty_table);
        if (rc == EMS_OK) rc = declare_one(l, queue, args);
    }
    if (rc != EMS_OK) {
        link_drop(l, 0, rc != EMS_CONFLICT);
        return rc;
    }
    if (!(l->declared[l->ndeclared] = strdup(queue))) return EMS_NOMEM;
    l->ndeclared++;
    return EMS_OK;
}

/* ---- publishing ---------------------------------------------------------- */

/* Records a confirm; tags outside the set are stale ones from an earlier, failed publish. */
static void confirm_mark(confirm_set *cs, uint64_t tag, int multiple, int nack) {
    uint64_t lo, hi;
    if (!cs || tag < cs->first) return;
    hi = tag - cs->first;
    if (hi >= cs->n) {
        if (!multiple) return;
        hi = cs->n - 1;
    }
    lo = multiple ? 0 : hi;
    for (uint64_t i = lo; i <= hi; i++) {
        if (cs->done[i]) continue;
        cs->done[i] = 1;
        cs->remaining--;
        if (nack) cs->nacked = 1;
    }
}

/*
 * Handles one frame read on the publisher connection.  Confirms are
 * recorded in cs (NULL: nothing awaited, stale confirms are dropped); a
 * closed connection is EMS_UNAVAILABLE, a closed channel (a refusal, e.g.
 * no such exchange or no write permission) EMS_CONFLICT.
 */
static ems_rc pub_frame(amqp_link *l, const amqp_frame_t *f, confirm_set *cs) {
    if (f->frame_type != AMQP_FRAME_METHOD) return EMS_OK;
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *m = f->payload.method.decoded;
        confirm_mark(cs, m->delivery_tag, m->multiple, 0);
        return EMS_OK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *m = f->payload.method.decoded;
        confirm_mark(cs, m->delivery_tag, m->multiple, 1);
        return EMS_OK;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        ems_log(EMS_LOG_WARN, "bus.closed_by_broker", "link=%s code=%u reason=\"%.*s\"", l->role, m->reply_code,
                (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return EMS_UNAVAILABLE;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        ems_log(EMS_LOG_WARN, "bus.channel_closed", "link=%s code=%u reason=\"%.*s\"", l->role, m->reply_code,
                (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return EMS_CONFLICT; /* the broker refused this publish (403, 404 ...): trying again will not help */
    }
    default: return EMS_OK; /* basic.return (we never publish mandatory), connection.blocked, ... */
    }
}

/*
 * Reads frames until cs is complete (cs with nothing remaining: until none
 * is waiting).  `wait_ms` 0 only takes what has arrived; otherwise gives up
 * after wait_ms without progress.  Returns EMS_AGAIN on that timeout.
 */
static ems_rc pub_read(amqp_link *l, confirm_set *cs, long wait_ms) {
    int64_t deadline = now_ms() + wait_ms;
    while (!cs || cs->remaining > 0) {
        amqp_frame_t f;
        long left = wait_ms ? (long)(deadline - now_ms()) : 0;
        struct timeval tv;
        size_t before = cs ? cs->remaining : 0;
        ems_rc rc;
        int st;
        if (wait_ms && left <= 0) return EMS_AGAIN;
        tv = ms_tv(left);
        st = amqp_simple_wait_frame_noblock(l->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT) {
            if (!wait_ms) return EMS_OK;
            continue;
        }
        if (st != AMQP_STATUS_OK) {
            /* Without a publish under way this is an idle connection the broker gave up on: no alarm. */
            ems_log(cs ? EMS_LOG_WARN : EMS_LOG_INFO, "bus.connection_lost", "link=%s error=\"%s\"", l->role,
                    amqp_error_string2(st));
            return EMS_UNAVAILABLE;
        }
        rc = pub_frame(l, &f, cs);
        amqp_maybe_release_buffers(l->conn);
        if (rc != EMS_OK) return rc;
        if (cs && cs->remaining < before) deadline = now_ms() + wait_ms;
    }
    return EMS_OK;
}

/*
 * Makes sure the publisher connection is usable: an open one is first
 * drained without waiting, which notices a broker that closed it (after a
 * restart, or missed heartbeats while idle) and sends a due heartbeat.
 * A closed one is re-opened unless the backoff says not yet.
 */
static ems_rc pub_ensure(amqp_bus *b, int *fresh) {
    amqp_link *l = &b->pub;
    amqp_rpc_reply_t r;
    ems_rc rc;
    *fresh = 0;
    if (l->conn) {
        if (pub_read(l, NULL, 0) == EMS_OK) return EMS_OK;
        link_drop(l, 0, 0);
    }
    if (now_ms() < l->next_try_ms) return EMS_UNAVAILABLE;
    if ((rc = link_open(b->url, l)) != EMS_OK) return rc;
    amqp_confirm_select(l->conn, CHANNEL);
    r = amqp_get_rpc_reply(l->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[160];
        reply_text(r, why, sizeof why);
        ems_log(EMS_LOG_WARN, "bus.confirm_select_failed", "error=%s", why);
        link_drop(l, 0, 1);
        return EMS_UNAVAILABLE;
    }
    /* Queues are declared again lazily, on first use on this connection. */
    l->next_tag = 1;
    link_ready(b->url, l);
    *fresh = 1;
    return EMS_OK;
}

/*
 * Publishes n messages to the exchange (NULL: the default one) with routing
 * key `queue` and waits for their confirms.  Called with pub_lock held and the link open.
 */
static ems_rc pub_send(amqp_link *l, const char *exchange, const char *queue, const char *const *bodies,
                       const size_t *lens, size_t n) {
    ems_rc rc = EMS_OK;
    int keep = 0; /* the connection outlives a failure the broker reported itself */
    amqp_basic_properties_t props;
    confirm_set cs = {.first = l->next_tag, .n = n, .remaining = n};
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    cs.done = calloc(n, 1);
    if (!cs.done) return EMS_NOMEM;
    for (size_t i = 0; i < n; i++) {
        amqp_bytes_t body = {.len = lens[i], .bytes = (void *)bodies[i]};
        int st = amqp_basic_publish(l->conn, CHANNEL, exchange ? amqp_cstring_bytes(exchange) : amqp_empty_bytes,
                                    amqp_cstring_bytes(queue), 0, 0, &props, body);
        if (st != AMQP_STATUS_OK) {
            ems_log(EMS_LOG_WARN, "bus.publish_failed", "queue=%s error=\"%s\"", queue, amqp_error_string2(st));
            rc = EMS_UNAVAILABLE;
            goto cleanup;
        }
        l->next_tag++;
        /* Taking confirms as they come keeps the broker from stalling on a full socket. */
        if ((i + 1) % PUBLISH_DRAIN_EVERY == 0 && (rc = pub_read(l, &cs, 0)) != EMS_OK) goto cleanup;
    }
    rc = pub_read(l, &cs, CONFIRM_TIMEOUT_MS);
    if (rc == EMS_AGAIN) {
        /* The broker is there but does not answer: back off instead of trying again at once. */
        ems_log(EMS_LOG_WARN, "bus.confirm_timeout", "queue=%s unconfirmed=%zu of=%zu", queue, cs.remaining, n);
        link_drop(l, 0, 1);
        rc = EMS_UNAVAILABLE;
    } else if (rc == EMS_OK && cs.nacked) {
        ems_log(EMS_LOG_WARN, "bus.nacked", "queue=%s n=%zu", queue, n);
        keep = 1;
        rc = EMS_UNAVAILABLE;
    }
cleanup:
    free(cs.done);
    /* A broken connection or channel goes; amqp_publish decides whether to back off. */
    if ((rc == EMS_UNAVAILABLE || rc == EMS_CONFLICT) && !keep && l->conn) link_drop(l, 0, 0);
    return rc;
}

static ems_rc amqp_publish(void *state, const char *exchange, const char *queue, const char *const *bodies,
                           const size_t *lens, size_t n) {
    amqp_bus *b = state;
    ems_rc rc = EMS_UNAVAILABLE;
    pthread_mutex_lock(&b->pub_lock);
    /*
     * A connection that was open before this call may have died unnoticed;
     * it gets one more try on a fresh connection.  A fresh one that fails
     * means the broker is away: back off.
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh;
        if ((rc = pub_ensure(b, &fresh)) != EMS_OK) break;
        rc = exchange ? EMS_OK : link_declare(&b->pub, queue);
        if (rc == EMS_OK) rc = pub_send(&b->pub, exchange, queue, bodies, lens, n);
        if (rc == EMS_OK || rc == EMS_CONFLICT || rc == EMS_NOMEM || b->pub.conn) break;
        if (fresh) {
            link_backoff(&b->pub);
            break;
        }
    }
    pthread_mutex_unlock(&b->pub_lock);
    return rc;
}

/* Declares now; publishers and consumers declare again on every new connection anyway. */
static ems_rc amqp_declare(void *state, const char *queue) {
    amqp_bus *b = state;
    int fresh;
    pthread_mutex_lock(&b->pub_lock);
    ems_rc rc = pub_ensure(b, &fresh);
    if (rc == EMS_OK) rc = link_declare(&b->pub, queue);
    pthread_mutex_unlock(&b->pub_lock);
    return rc;
}

static int amqp_ready(void *state) {
    amqp_bus *b = state;
    int fresh;
    pthread_mutex_lock(&b->pub_lock);
    int ok = pub_ensure(b, &fresh) == EMS_OK;
    pthread_mutex_unlock(&b->pub_lock);
    return ok;
}

/* ---- consuming ----------------------------------------------------------- */

static ems_rc consumer_connect(amqp_consumer *c) {
    amqp_link *l = &c->link;
    amqp_rpc_reply_t r;
    ems_rc rc;
    if ((rc = link_open(c->bus->url, l)) != EMS_OK) return rc;
    if ((rc = link_declare(l, c->queue)) != EMS_OK) {
        link_drop(l, 0, 1); /* even a refused declare waits for the backoff */
        return rc;
    }
    amqp_basic_qos(l->conn, CHANNEL, 0, (uint16_t)c->prefetch, 0);
    r = amqp_get_rpc_reply(l->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_basic_consume(l->conn, CHANNEL, amqp_cstring_bytes(c->queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        r = amqp_get_rpc_reply(l->conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[160];
        reply_text(r, why, sizeof why);
        ems_log(EMS_LOG_WARN, "bus.consume_failed", "queue=%s error=%s", c->queue, why);
        link_drop(l, 0, 1);
        return EMS_UNAVAILABLE;
    }
    link_ready(c->bus->url, l);
    ems_log(EMS_LOG_INFO, "bus.consuming", "queue=%s prefetch=%u", c->queue, c->prefetch);
    c->ack_count = 0;
    return EMS_OK;
}

/* Sends the acks held back so far as one multiple-ack. */
static int consumer_flush_acks(amqp_consumer *c) {
    int st = AMQP_STATUS_OK;
    if (c->ack_count && c->link.conn) st = amqp_basic_ack(c->link.conn, CHANNEL, c->ack_tag, 1);
    c->ack_count = 0;
    return st;
}

static ems_rc consumer_handle(amqp_consumer *c, const amqp_envelope_t *env) {
    const amqp_bytes_t *body = &env->message.body;
    uint64_t tag = env->delivery_tag;
    ems_verdict v = EMS_BUS_RETRY;
    int st;
    if (body->len + 1 > c->cap) {
        char *buf = realloc(c->buf, body->len + 1);
        if (buf) {
            c->buf = buf;
            c->cap = body->len + 1;
        }
    }
    if (body->len + 1 <= c->cap) {
        if (body->len) memcpy(c->buf, body->bytes, body->len);
        c->buf[body->len] = '\0';
        v = c->fn(c->queue, c->buf, body->len, c->ctx);
    } else {
        ems_log(EMS_LOG_ERROR, "bus.no_memory", "queue=%s len=%zu action=retry", c->queue, body->len);
    }
    if (v == EMS_BUS_ACK) {
        c->retry_delay_ms = 0;
        c->ack_tag = tag;
        /* Up to a quarter of the prefetch window goes out as one multiple-ack. */
        if (++c->ack_count < (c->prefetch + 3) / 4) return EMS_OK;
        st = consumer_flush_acks(c);
    } else if (v == EMS_BUS_REJECT) {
        c->retry_delay_ms = 0;
        st = consumer_flush_acks(c);
        if (st == AMQP_STATUS_OK) st = amqp_basic_reject(c->link.conn, CHANNEL, tag, 0);
    } else {
        /* A message that keeps failing must not spin: wait a little longer each time. */
        st = consumer_flush_acks(c);
        c->retry_delay_ms = c->retry_delay_ms ? c->retry_delay_ms * 2 : RETRY_DELAY_MIN_MS;
        if (c->retry_delay_ms > RETRY_DELAY_MAX_MS) c->retry_delay_ms = RETRY_DELAY_MAX_MS;
        sleep_unless(&c->stop, c->retry_delay_ms);
        if (st == AMQP_STATUS_OK) st = amqp_basic_nack(c->link.conn, CHANNEL, tag, 0, 1);
    }
    if (st != AMQP_STATUS_OK) {
        ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=\"%s\"", c->queue, amqp_error_string2(st));
        return EMS_UNAVAILABLE;
    }
    return EMS_OK;
}

/* A frame other than a delivery arrived: a close or a cancel means reconnecting. */
static ems_rc consumer_other_frame(amqp_consumer *c) {
    amqp_frame_t f;
    struct timeval tv = ms_tv(CONSUME_POLL_MS);
    int st = amqp_simple_wait_frame_noblock(c->link.conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT) return EMS_OK;
    if (st != AMQP_STATUS_OK) {
        ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=\"%s\"", c->queue, amqp_error_string2(st));
        return EMS_UNAVAILABLE;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) return EMS_OK;
    if (f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
        ems_log(EMS_LOG_WARN, "bus.consumer_cancelled", "queue=%s", c->queue);
        return EMS_UNAVAILABLE;
    }
    /* A consumer whose channel was closed connects again, whatever the reason. */
    return pub_frame(&c->link, &f, NULL) == EMS_OK ? EMS_OK : EMS_UNAVAILABLE;
}

/* One turn of the consumer loop on an open connection. */
static ems_rc consumer_step(amqp_consumer *c) {
    amqp_connection_state_t conn = c->link.conn;
    amqp_envelope_t env;
    amqp_rpc_reply_t r;
    struct timeval tv = ms_tv(CONSUME_POLL_MS);
    /* Nothing more at hand: send the acks held back before waiting. */
    if (c->ack_count && !amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) {
        int st = consumer_flush_acks(c);
        if (st != AMQP_STATUS_OK) {
            ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=\"%s\"", c->queue, amqp_error_string2(st));
            return EMS_UNAVAILABLE;
        }
    }
    amqp_maybe_release_buffers(conn);
    r = amqp_consume_message(conn, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        ems_rc rc = consumer_handle(c, &env);
        amqp_destroy_envelope(&env);
        return rc;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) return EMS_OK;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return consumer_other_frame(c);
    char why[160];
    reply_text(r, why, sizeof why);
    ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=%s", c->queue, why);
    return EMS_UNAVAILABLE;
}

/* Settles a handled batch: one multiple-ack when all were ACKs, else message by message. */
static int batch_settle(amqp_consumer *c, size_t n) {
    amqp_connection_state_t conn = c->link.conn;
    size_t i, retries = 0;
    int st = AMQP_STATUS_OK;
    for (i = 0; i < n && c->verdicts[i] == EMS_BUS_ACK; i++) {
    }
    if (i == n) {
        c->retry_delay_ms = 0;
        return amqp_basic_ack(conn, CHANNEL, c->envs[n - 1].delivery_tag, 1);
    }
    for (i = 0; i < n; i++) retries += c->verdicts[i] == EMS_BUS_RETRY;
    if (retries) {
        /* A batch that keeps failing must not spin: wait a little longer each time. */
        c->retry_delay_ms = c->retry_delay_ms ? c->retry_delay_ms * 2 : RETRY_DELAY_MIN_MS;
        if (c->retry_delay_ms > RETRY_DELAY_MAX_MS) c->retry_delay_ms = RETRY_DELAY_MAX_MS;
        sleep_unless(&c->stop, c->retry_delay_ms);
    } else {
        c->retry_delay_ms = 0;
    }
    for (i = 0; i < n && st == AMQP_STATUS_OK; i++) {
        uint64_t tag = c->envs[i].delivery_tag;
        if (c->verdicts[i] == EMS_BUS_ACK) st = amqp_basic_ack(conn, CHANNEL, tag, 0);
        else if (c->verdicts[i] == EMS_BUS_REJECT) st = amqp_basic_reject(conn, CHANNEL, tag, 0);
        else st = amqp_basic_nack(conn, CHANNEL, tag, 0, 1);
    }
    return st;
}

/*
 * Gives the batch's bodies their NULs: they are copied one after another
 * into c->buf, and the pointers are taken once the buffer stopped moving.
 */
static int batch_bodies(amqp_consumer *c, size_t n) {
    size_t total = 0, off = 0;
    for (size_t i = 0; i < n; i++) total += c->envs[i].message.body.len + 1;
    if (total > c->cap) {
        char *buf = realloc(c->buf, total);
        if (!buf) return 0;
        c->buf = buf;
        c->cap = total;
    }
    for (size_t i = 0; i < n; i++) {
        const amqp_bytes_t *body = &c->envs[i].message.body;
        if (body->len) memcpy(c->buf + off, body->bytes, body->len);
        c->buf[off + body->len] = '\0';
        c->msgs[i].body = c->buf + off;
        c->msgs[i].len = body->len;
        off += body->len + 1;
    }
    return 1;
}

/*
 * One turn of a batch consumer: waits for a first delivery, gathers more
 * until max_batch or max_wait_ms after the first, hands them over, settles.
 */
static ems_rc consumer_step_batch(amqp_consumer *c) {
    amqp_connection_state_t conn = c->link.conn;
    ems_rc rc = EMS_OK;
    size_t n = 0;
    int other = 0, st;
    int64_t deadline = 0;
    while (n < c->max_batch) {
        amqp_rpc_reply_t r;
        long wait = n == 0 ? CONSUME_POLL_MS : (long)(deadline - now_ms());
        struct timeval tv = ms_tv(wait > 0 ? wait : 0);
        if (n == 0) amqp_maybe_release_buffers(conn);
        r = amqp_consume_message(conn, &c->envs[n], &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (n++ == 0) deadline = now_ms() + c->max_wait_ms;
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) break;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            other = 1; /* a method frame waits: handle what was gathered, then it */
            break;
        }
        char why[160];
        reply_text(r, why, sizeof why);
        ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=%s", c->queue, why);
        rc = EMS_UNAVAILABLE; /* what was gathered is redelivered by the broker */
        goto cleanup;
    }
    if (n) {
        if (batch_bodies(c, n)) {
            c->bfn(c->queue, c->msgs, n, c->verdicts, c->ctx);
        } else {
            ems_log(EMS_LOG_ERROR, "bus.no_memory", "queue=%s n=%zu action=retry", c->queue, n);
            for (size_t i = 0; i < n; i++) c->verdicts[i] = EMS_BUS_RETRY;
        }
        if ((st = batch_settle(c, n)) != AMQP_STATUS_OK) {
            ems_log(EMS_LOG_WARN, "bus.connection_lost", "link=%s error=\"%s\"", c->queue, amqp_error_string2(st));
            rc = EMS_UNAVAILABLE;
            goto cleanup;
        }
    }
    if (other) rc = consumer_other_frame(c);
cleanup:
    for (size_t i = 0; i < n; i++) amqp_destroy_envelope(&c->envs[i]);
    return rc;
}

static void *consumer_main(void *arg) {
    amqp_consumer *c = arg;
    while (!atomic_load(&c->stop)) {
        if (!c->link.conn) {
            int64_t wait = c->link.next_try_ms - now_ms();
            if (wait > 0) {
                sleep_unless(&c->stop, (long)wait);
                continue;
            }
            if (consumer_connect(c) != EMS_OK) continue;
        }
        if ((c->bfn ? consumer_step_batch(c) : consumer_step(c)) != EMS_OK) link_drop(&c->link, 0, 1);
    }
    /* Work already committed is acknowledged; the rest goes back to the queue. */
    consumer_flush_acks(c);
    link_free(&c->link);
    return NULL;
}

static void consumer_free(amqp_consumer *c) {
    free(c->envs);
    free(c->msgs);
    free(c->verdicts);
    free(c->buf);
    free(c->queue);
    free(c);
}

/* Starts a consumer thread of either kind (exactly one of fn, bfn is set). */
static ems_rc consume_any(amqp_bus *b, const char *queue, unsigned prefetch, size_t max_batch, unsigned max_wait_ms,
                          ems_bus_handler fn, ems_bus_batch_handler bfn, void *ctx) {
    amqp_consumer *c = calloc(1, sizeof *c);
    if (!c) return EMS_NOMEM;
    c->bus = b;
    c->queue = strdup(queue);
    c->prefetch = prefetch;
    c->fn = fn;
    c->bfn = bfn;
    c->max_batch = max_batch;
    c->max_wait_ms = max_wait_ms;
    c->ctx = ctx;
    c->link.role = c->queue;
    atomic_init(&c->stop, 0);
    if (!c->queue) goto fail;
    if (bfn) {
        c->envs = calloc(max_batch, sizeof *c->envs);
        c->msgs = calloc(max_batch, sizeof *c->msgs);
        c->verdicts = calloc(max_batch, sizeof *c->verdicts);
        if (!c->envs || !c->msgs || !c->verdicts) goto fail;
    }
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) goto fail;
    pthread_mutex_lock(&b->consumers_lock);
    c->next = b->consumers;
    b->consumers = c;
    pthread_mutex_unlock(&b->consumers_lock);
    return EMS_OK;
fail:
    consumer_free(c);
    return EMS_NOMEM;
}

static ems_rc amqp_consume(void *state, const char *queue, unsigned prefetch, ems_bus_handler fn, void *ctx) {
    return consume_any(state, queue, prefetch, 1, 0, fn, NULL, ctx);
}

static ems_rc amqp_consume_batch(void *state, const char *queue, unsigned prefetch, size_t max_batch,
                                 unsigned max_wait_ms, ems_bus_batch_handler fn, void *ctx) {
    return consume_any(state, queue, prefetch, max_batch, max_wait_ms, NULL, fn, ctx);
}

/* ---- the bus ------------------------------------------------------------- */

static ems_rc amqp_open(const bus_url *url, void **state, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    amqp_bus *b = calloc(1, sizeof *b);
    if (!b) return EMS_NOMEM;
    b->url = url;
    b->pub.role = "publisher";
    pthread_mutex_init(&b->pub_lock, NULL);
    pthread_mutex_init(&b->consumers_lock, NULL);
    *state = b;
    return EMS_OK;
}

static void amqp_close(void *state) {
    amqp_bus *b = state;
    amqp_consumer *c;
    if (!b) return;
    /* Tell every consumer first so that they all wind down together. */
    pthread_mutex_lock(&b->consumers_lock);
    for (c = b->consumers; c; c = c->next) atomic_store(&c->stop, 1);
    pthread_mutex_unlock(&b->consumers_lock);
    while ((c = b->consumers) != NULL) {
        b->consumers = c->next;
        pthread_join(c->thread, NULL);
        consumer_free(c);
    }
    link_free(&b->pub);
    pthread_mutex_destroy(&b->consumers_lock);
    pthread_mutex_destroy(&b->pub_lock);
    free(b);
}

const bus_driver bus_amqp_driver = {
    .name = "amqp",
    .open = amqp_open,
    .close = amqp_close,
    .declare = amqp_declare,
    .publish = amqp_publish,
    .consume = amqp_consume,
    .consume_batch = amqp_consume_batch,
    .ready = amqp_ready,
    .dlq_count = NULL,
    .dlq_message = NULL,
};
