/*
 * bus_inproc.c — the in-process bus of the embedded mode.
 *
 * Delivery is synchronous: publish runs the queue's handler on the
 * publisher's thread and returns EMS_OK only once the handler acknowledged
 * (or dead-lettered) every message.  Anything else is EMS_AGAIN, and the
 * publisher — the outbox relay, whose table is the durable copy — tries
 * again later.  Nothing is queued in memory, so nothing is lost in a crash.
 *
 * A batch consumer gets each published message as a batch of one.
 *
 * A rejected message is kept in memory as a dead letter, for tests and
 * diagnostics (ems_bus_dlq_message), within two bounds per queue: DLQ_KEEP
 * messages and dlq_max_bytes of bodies (ems_bus_set_dlq_max_bytes; 8 MiB by
 * default).  The oldest go first.  Every dead letter is counted
 * (dlq_count, ems_bus_messages_total{verdict="reject"}); every one dropped
 * from memory is counted too, in ems_bus_dead_letters_dropped_total{queue}:
 * 1,000 letters of ~1 MiB once held a gigabyte, silently.
 *
 * Each queue has a mutex held while its handler runs, so a handler is never
 * called concurrently for one queue.  A handler may publish to another
 * queue: the nested publish only waits a bounded time for that queue's
 * mutex and otherwise answers EMS_AGAIN, so two handlers publishing to each
 * other's queues cannot deadlock, and a handler publishing to its own queue
 * gets EMS_AGAIN at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_impl.h"
#include "log.h"
#include "metrics.h"

/* Dead letters kept per queue (the count goes on beyond it; the oldest are dropped). */
#define DLQ_KEEP 1000
/* Bytes of dead letters' bodies kept per queue, unless set otherwise. */
#define DLQ_MAX_BYTES_DEFAULT ((size_t)8 << 20)
/* How long a publish from inside a handler waits for a busy queue before EMS_AGAIN. */
#define NESTED_WAIT_MS 1000
/* Bodies up to this size are copied on the stack to add their NUL. */
#define STACK_BODY 1024

typedef struct dead_letter {
    struct dead_letter *next;
    size_t len;
    char body[];
} dead_letter;

typedef struct inproc_queue {
    struct inproc_queue *next;
    pthread_mutex_t run; /* held while the handler runs; guards everything below */
    ems_bus_handler fn;  /* the consumer: one of fn, bfn */
    ems_bus_batch_handler bfn;
    void *ctx;
    dead_letter *dlq_head, *dlq_tail;
    size_t dlq_kept;
    size_t dlq_bytes; /* bodies of the kept ones */
    long dlq_total;
    char name[];
} inproc_queue;

typedef struct {
    pthread_mutex_t lock; /* guards the list of queues (not their contents) */
    inproc_queue *queues;
    _Atomic size_t dlq_max_bytes; /* per queue */
} inproc_bus;

/* How many handlers this thread is inside: non-zero means a nested publish. */
static _Thread_local int handler_depth;

/* Finds or creates `name`; queues live as long as the bus. */
static ems_rc queue_get(inproc_bus *b, const char *name, inproc_queue **out) {
    ems_rc rc = EMS_OK;
    inproc_queue *q;
    pthread_mutexattr_t attr;
    size_t len = strlen(name);
    pthread_mutex_lock(&b->lock);
    for (q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0) goto cleanup;
    q = calloc(1, sizeof *q + len + 1);
    if (!q) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    /* Error-checking: a handler re-entering its own queue gets EDEADLK, not a hang. */
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&q->run, &attr);
    pthread_mutexattr_destroy(&attr);
    memcpy(q->name, name, len + 1);
    q->next = b->queues;
    b->queues = q;
cleanup:
    pthread_mutex_unlock(&b->lock);
    if (rc == EMS_OK) *out = q;
    return rc;
}

static inproc_queue *queue_find(inproc_bus *b, const char *name) {
    inproc_queue *q;
    pthread_mutex_lock(&b->lock);
    for (q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0) break;
    pthread_mutex_unlock(&b->lock);
    return q;
}

/* Takes the queue's run mutex: blocking at top level, bounded when nested. */
static ems_rc queue_enter(inproc_queue *q) {
    struct timespec until;
    if (handler_depth == 0) return pthread_mutex_lock(&q->run) == 0 ? EMS_OK : EMS_INTERNAL;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += NESTED_WAIT_MS / 1000;
    until.tv_nsec += (long)(NESTED_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&q->run, &until) == 0 ? EMS_OK : EMS_AGAIN;
}

static ems_rc inproc_open(const bus_url *url, void **state, char *err, size_t errlen) {
    (void)url;
    (void)err;
    (void)errlen;
    inproc_bus *b = calloc(1, sizeof *b);
    if (!b) return EMS_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    atomic_store(&b->dlq_max_bytes, DLQ_MAX_BYTES_DEFAULT);
    *state = b;
    return EMS_OK;
}

static void inproc_close(void *state) {
    inproc_bus *b = state;
    if (!b) return;
    while (b->queues) {
        inproc_queue *q = b->queues;
        b->queues = q->next;
        while (q->dlq_head) {
            dead_letter *d = q->dlq_head;
            q->dlq_head = d->next;
            free(d);
        }
        pthread_mutex_destroy(&q->run);
        free(q);
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static ems_rc inproc_declare(void *state, const char *queue) {
    inproc_queue *q;
    return queue_get(state, queue, &q);
}

static void dlq_count_dropped(const inproc_queue *q, long n) {
    if (n > 0)
        ems_metrics_count_labeled("ems_bus_dead_letters_dropped_total",
                                  "Dead letters dropped from memory (over the count or byte bound), by queue.", "queue",
                                  q->name, (double)n);
}

/*
 * Keeps a dead letter, then drops the oldest until both bounds hold; a body
 * larger than the byte bound alone is counted and not kept.  Called with
 * q->run held.
 */
static ems_rc dlq_add(inproc_bus *b, inproc_queue *q, const char *body, size_t len) {
    size_t max_bytes = atomic_load(&b->dlq_max_bytes);
    long dropped = 0;
    if (len > max_bytes) {
        dropped++;
    } else {
        dead_letter *d = malloc(sizeof *d + len + 1);
        if (!d) return EMS_NOMEM;
        d->next = NULL;
        d->len = len;
        if (len) memcpy(d->body, body, len);
        d->body[len] = '\0';
        if (q->dlq_tail) q->dlq_tail->next = d;
        else q->dlq_head = d;
        q->dlq_tail = d;
        q->dlq_kept++;
        q->dlq_bytes += len;
    }
    q->dlq_total++;
    while (q->dlq_kept > DLQ_KEEP || q->dlq_bytes > max_bytes) {
        dead_letter *old = q->dlq_head;
        q->dlq_head = old->next;
        if (!q->dlq_head) q->dlq_tail = NULL;
        q->dlq_kept--;
        q->dlq_bytes -= old->len;
        free(old);
        dropped++;
    }
    dlq_count_dropped(q, dropped);
    return EMS_OK;
}

/* Runs the handler on a NUL-terminated copy of the body.  Called with q->run held. */
static ems_rc deliver(inproc_queue *q, const char *body, size_t len, ems_verdict *v) {
    char small[STACK_BODY];
    char *copy = len < sizeof small ? small : malloc(len + 1);
    if (!copy) return EMS_NOMEM;
    if (len) memcpy(copy, body, len);
    copy[len] = '\0';
    handler_depth++;
    if (q->fn) {
        *v = q->fn(q->name, copy, len, q->ctx);
    } else {
        ems_bus_msg m = {.body = copy, .len = len};
        q->bfn(q->name, &m, 1, v, q->ctx);
    }
    handler_depth--;
    if (copy != small) free(copy);
    return EMS_OK;
}

static ems_rc inproc_publish(void *state, const char *exchange, const char *queue, const char *const *bodies,
                             const size_t *lens, size_t n) {
    (void)exchange; /* no exchanges in process: the routing key is the queue */
    inproc_queue *q;
    ems_rc rc = queue_get(state, queue, &q);
    if (rc != EMS_OK) return rc;
    if ((rc = queue_enter(q)) != EMS_OK) return rc;
    if (!q->fn && !q->bfn) {
        rc = EMS_AGAIN; /* nobody consumes it yet: the publisher keeps it */
        goto cleanup;
    }
    /* In order; the first retry stops the batch so that order is kept on the next try. */
    for (size_t i = 0; i < n; i++) {
        ems_verdict v;
        if ((rc = deliver(q, bodies[i], lens[i], &v)) != EMS_OK) goto cleanup;
        if (v == EMS_BUS_RETRY) {
            rc = EMS_AGAIN;
            goto cleanup;
        }
        if (v == EMS_BUS_REJECT && (rc = dlq_add(state, q, bodies[i], lens[i])) != EMS_OK) goto cleanup;
    }
cleanup:
    pthread_mutex_unlock(&q->run);
    return rc;
}

/* Registers the queue's one consumer, of either kind. */
static ems_rc consume_any(void *state, const char *queue, ems_bus_handler fn, ems_bus_batch_handler bfn, void *ctx) {
    inproc_queue *q;
    ems_rc rc = queue_get(state, queue, &q);
    if (rc != EMS_OK) return rc;
    if ((rc = queue_enter(q)) != EMS_OK) return rc;
    if (q->fn || q->bfn) {
        rc = EMS_CONFLICT;
    } else {
        q->fn = fn;
        q->bfn = bfn;
        q->ctx = ctx;
    }
    pthread_mutex_unlock(&q->run);
    return rc;
}

static ems_rc inproc_consume(void *state, const char *queue, unsigned prefetch, ems_bus_handler fn, void *ctx) {
    (void)prefetch; /* delivery is synchronous: nothing is ever in flight */
    return consume_any(state, queue, fn, NULL, ctx);
}

static ems_rc inproc_consume_batch(void *state, const char *queue, unsigned prefetch, size_t max_batch,
                                   unsigned max_wait_ms, ems_bus_batch_handler fn, void *ctx) {
    (void)prefetch;
    (void)max_batch; /* each publish is delivered on its own, at once */
    (void)max_wait_ms;
    return consume_any(state, queue, NULL, fn, ctx);
}

static int inproc_ready(void *state) {
    (void)state;
    return 1;
}

static long inproc_dlq_count(void *state, const char *queue) {
    inproc_queue *q = queue_find(state, queue);
    long n = 0;
    if (!q || queue_enter(q) != EMS_OK) return 0;
    n = q->dlq_total;
    pthread_mutex_unlock(&q->run);
    return n;
}

static char *inproc_dlq_message(void *state, const char *queue, size_t i, size_t *len) {
    inproc_queue *q = queue_find(state, queue);
    char *copy = NULL;
    const dead_letter *d;
    if (!q || queue_enter(q) != EMS_OK) return NULL;
    for (d = q->dlq_head; d && i; d = d->next) i--;
    if (d && (copy = malloc(d->len + 1)) != NULL) {
        memcpy(copy, d->body, d->len + 1);
        if (len) *len = d->len;
    }
    pthread_mutex_unlock(&q->run);
    return copy;
}

static void inproc_set_dlq_max_bytes(void *state, size_t bytes) {
    inproc_bus *b = state;
    atomic_store(&b->dlq_max_bytes, bytes);
}

const bus_driver bus_inproc_driver = {
    .name = "inproc",
    .open = inproc_open,
    .close = inproc_close,
    .declare = inproc_declare,
    .publish = inproc_publish,
    .consume = inproc_consume,
    .consume_batch = inproc_consume_batch,
    .ready = inproc_ready,
    .dlq_count = inproc_dlq_count,
    .dlq_message = inproc_dlq_message,
    .set_dlq_max_bytes = inproc_set_dlq_max_bytes,
};
