/*
 * bus.c — the public face of the message bus: picks a driver from the URL,
 * checks arguments once for every driver, and wraps each consumer's handler
 * so that every handled message is counted in /metrics and every rejected
 * one is logged, whichever driver delivered it.
 */
#include "bus.h"

#include <amqp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_impl.h"
#include "log.h"
#include "metrics.h"

/* A consumer as the application registered it; the driver calls bus_handle with it. */
typedef struct bus_consumer {
    struct bus_consumer *next;
    ems_bus_handler fn;        /* one message at a time, or */
    ems_bus_batch_handler bfn; /* a batch at a time */
    void *ctx;
    char queue[];
} bus_consumer;

struct ems_bus {
    const bus_driver *drv;
    void *state;
    bus_url url;
    pthread_mutex_t lock; /* guards consumers */
    bus_consumer *consumers;
};

static const char *const verdict_names[] = {
    [EMS_BUS_ACK] = "ack",
    [EMS_BUS_RETRY] = "retry",
    [EMS_BUS_REJECT] = "reject",
};

const char *ems_verdict_name(ems_verdict v) {
    if ((unsigned)v >= sizeof verdict_names / sizeof verdict_names[0]) return "unknown";
    return verdict_names[v];
}

int bus_is_dlq(const char *queue) {
    size_t n = strlen(queue), s = strlen(BUS_DLQ_SUFFIX);
    return n > s && strcmp(queue + n - s, BUS_DLQ_SUFFIX) == 0;
}

/* Queue names must fit an AMQP short string with ".dlq" appended; "amq." is the broker's. */
static int queue_name_ok(const char *queue) {
    if (!queue || !queue[0] || strlen(queue) > BUS_QUEUE_MAX) return 0;
    if (strncmp(queue, "amq.", 4) == 0) return 0;
    for (const char *p = queue; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

static void url_clear(bus_url *u) {
    free(u->host);
    free(u->user);
    free(u->password);
    free(u->vhost);
    memset(u, 0, sizeof *u);
}

/*
 * "amqp://user:pass@host:port[/vhost]".  amqp_parse_url reads a trailing "/"
 * as the empty vhost, which RabbitMQ refuses; no vhost and "/" both mean "/".
 * Error messages never repeat the URL: it carries the password.
 */
static ems_rc parse_amqp_url(const char *url, bus_url *out, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    bus_url u = {0};
    struct amqp_connection_info info;
    char *copy = strdup(url);
    if (!copy) return EMS_NOMEM;
    amqp_default_connection_info(&info);
    if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "bus: malformed amqp URL (expected amqp://user:pass@host:port[/vhost])");
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if (info.ssl) {
        snprintf(err, errlen, "bus: amqps is not supported");
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if (!info.host[0] || info.port <= 0 || info.port > 65535) {
        snprintf(err, errlen, "bus: amqp URL needs a host and a port in 1..65535");
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    u.host = strdup(info.host);
    u.port = info.port;
    u.user = strdup(info.user);
    u.password = strdup(info.password);
    u.vhost = strdup(info.vhost && info.vhost[0] ? info.vhost : "/");
    if (!u.host || !u.user || !u.password || !u.vhost) {
        url_clear(&u);
        rc = EMS_NOMEM;
        goto cleanup;
    }
    *out = u;
cleanup:
    free(copy);
    return rc;
}

/* URL schemes and their drivers; `located` schemes carry user, host and port. */
static const struct {
    const char *prefix;
    const bus_driver *drv;
    int located;
} schemes[] = {
    {"inproc:", &bus_inproc_driver, 0},
    {"amqp://", &bus_amqp_driver, 1},
};

ems_rc ems_bus_open(const char *url, ems_bus **out, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    ems_bus *b = NULL;
    const bus_driver *drv = NULL;
    int located = 0;
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!url || !out) {
        snprintf(err, errlen, "bus: no URL");
        return EMS_BAD_REQUEST;
    }
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
            drv = schemes[i].drv;
            located = schemes[i].located;
            break;
        }
    }
    if (!drv || (!located && strcmp(url, "inproc:") != 0 && strcmp(url, "inproc://") != 0)) {
        snprintf(err, errlen, "bus: unknown URL scheme (expected inproc: or amqp://)");
        return EMS_BAD_REQUEST;
    }
    b = calloc(1, sizeof *b);
    if (!b) return EMS_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    b->drv = drv;
    if (located && (rc = parse_amqp_url(url, &b->url, err, errlen)) != EMS_OK) goto cleanup;
    rc = drv->open(located ? &b->url : NULL, &b->state, err, errlen);
    if (rc != EMS_OK) goto cleanup;
    if (located)
        ems_log(EMS_LOG_INFO, "bus.open", "driver=%s host=%s port=%d vhost=%s user=%s", drv->name, b->url.host,
                b->url.port, b->url.vhost, b->url.user);
    else ems_log(EMS_LOG_INFO, "bus.open", "driver=%s", drv->name);
    *out = b;
    b = NULL;
cleanup:
    if (b) {
        url_clear(&b->url);
        pthread_mutex_destroy(&b->lock);
        free(b);
    }
    return rc;
}

void ems_bus_close(ems_bus *b) {
    if (!b) return;
    /* The driver joins its consumer threads first: nothing calls bus_handle after this. */
    b->drv->close(b->state);
    while (b->consumers) {
        bus_consumer *c = b->consumers;
        b->consumers = c->next;
        free(c);
    }
    url_clear(&b->url);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

ems_rc ems_bus_declare(ems_bus *b, const char *queue) {
    if (!b || !queue_name_ok(queue)) return EMS_BAD_REQUEST;
    return b->drv->declare(b->state, queue);
}

ems_rc ems_bus_publish(ems_bus *b, const char *queue, const char *body, size_t len) {
    return ems_bus_publish_batch(b, queue, &body, &len, 1);
}

ems_rc ems_bus_publish_batch(ems_bus *b, const char *queue, const char *const *bodies, const size_t *lens, size_t n) {
    return ems_bus_publish_via(b, NULL, queue, bodies, lens, n);
}

ems_rc ems_bus_publish_via(ems_bus *b, const char *exchange, const char *queue, const char *const *bodies,
                           const size_t *lens, size_t n) {
    if (!b || !queue_name_ok(queue) || (exchange && !queue_name_ok(exchange))) return EMS_BAD_REQUEST;
    if (n == 0) return EMS_OK;
    if (!bodies || !lens) return EMS_BAD_REQUEST;
    for (size_t i = 0; i < n; i++)
        if (!bodies[i] && lens[i]) return EMS_BAD_REQUEST;
    return b->drv->publish(b->state, exchange, queue, bodies, lens, n);
}

/*
 * Every delivery passes here: the application's verdict is checked, counted
 * and, for a reject, logged (a dead-lettered message is never silent).
 */
static ems_verdict bus_handle(const char *queue, const char *body, size_t len, void *ctx) {
    const bus_consumer *c = ctx;
    ems_verdict v = c->fn(queue, body, len, c->ctx);
    if ((unsigned)v > EMS_BUS_REJECT) {
        ems_log(EMS_LOG_ERROR, "bus.bad_verdict", "queue=%s verdict=%d action=reject", queue, (int)v);
        v = EMS_BUS_REJECT;
    }
    if (v == EMS_BUS_REJECT) ems_log(EMS_LOG_WARN, "bus.reject", "queue=%s len=%zu", queue, len);
    ems_metrics_bus(queue, ems_verdict_name(v));
    return v;
}

/* The same checks and counting for a batch; a verdict the handler left unset is a retry. */
static void bus_handle_batch(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    const bus_consumer *c = ctx;
    for (size_t i = 0; i < n; i++) verdicts[i] = EMS_BUS_RETRY;
    c->bfn(queue, msgs, n, verdicts, c->ctx);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)verdicts[i] > EMS_BUS_REJECT) {
            ems_log(EMS_LOG_ERROR, "bus.bad_verdict", "queue=%s verdict=%d action=reject", queue, (int)verdicts[i]);
            verdicts[i] = EMS_BUS_REJECT;
        }
        if (verdicts[i] == EMS_BUS_REJECT) ems_log(EMS_LOG_WARN, "bus.reject", "queue=%s len=%zu", queue, msgs[i].len);
        ems_metrics_bus(queue, ems_verdict_name(verdicts[i]));
    }
}

/* Registers one consumer of either kind (exactly one of fn, bfn is set). */
static ems_rc consume_any(ems_bus *b, const char *queue, unsigned prefetch, size_t max_batch, unsigned max_wait_ms,
                          ems_bus_handler fn, ems_bus_batch_handler bfn, void *ctx) {
    ems_rc rc = EMS_OK;
    bus_consumer *c = NULL;
    size_t qlen;
    if (!b || !queue_name_ok(queue)) return EMS_BAD_REQUEST;
    if (prefetch == 0) prefetch = 100;
    if (prefetch > 65535) prefetch = 65535; /* basic.qos carries a 16-bit count */
    if (max_batch == 0) max_batch = 1;
    if (max_batch > prefetch) max_batch = prefetch; /* the broker never has more in flight */
    qlen = strlen(queue);
    pthread_mutex_lock(&b->lock);
    /* One consumer per queue and bus keeps "never concurrently for one queue" true. */
    for (const bus_consumer *o = b->consumers; o; o = o->next) {
        if (strcmp(o->queue, queue) == 0) {
            rc = EMS_CONFLICT;
            goto cleanup;
        }
    }
    c = calloc(1, sizeof *c + qlen + 1);
    if (!c) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    c->fn = fn;
    c->bfn = bfn;
    c->ctx = ctx;
    memcpy(c->queue, queue, qlen + 1);
    if (fn) rc = b->drv->consume(b->state, queue, prefetch, bus_handle, c);
    else rc = b->drv->consume_batch(b->state, queue, prefetch, max_batch, max_wait_ms, bus_handle_batch, c);
    if (rc != EMS_OK) goto cleanup;
    c->next = b->consumers;
    b->consumers = c;
    c = NULL;
cleanup:
    pthread_mutex_unlock(&b->lock);
    free(c);
    return rc;
}

ems_rc ems_bus_consume(ems_bus *b, const char *queue, unsigned prefetch, ems_bus_handler fn, void *ctx) {
    if (!fn) return EMS_BAD_REQUEST;
    return consume_any(b, queue, prefetch, 1, 0, fn, NULL, ctx);
}

ems_rc ems_bus_consume_batch(ems_bus *b, const char *queue, unsigned prefetch, size_t max_batch, unsigned max_wait_ms,
                             ems_bus_batch_handler fn, void *ctx) {
    if (!fn) return EMS_BAD_REQUEST;
    return consume_any(b, queue, prefetch, max_batch, max_wait_ms, NULL, fn, ctx);
}

int ems_bus_ready(ems_bus *b) { return b ? b->drv->ready(b->state) : 0; }

void ems_bus_set_dlq_max_bytes(ems_bus *b, size_t bytes) {
    if (b && b->drv->set_dlq_max_bytes) b->drv->set_dlq_max_bytes(b->state, bytes);
}

long ems_bus_dlq_count(ems_bus *b, const char *queue) {
    if (!b || !queue || !b->drv->dlq_count) return -1;
    return b->drv->dlq_count(b->state, queue);
}

char *ems_bus_dlq_message(ems_bus *b, const char *queue, size_t i, size_t *len) {
    if (!b || !queue || !b->drv->dlq_message) return NULL;
    return b->drv->dlq_message(b->state, queue, i, len);
}
