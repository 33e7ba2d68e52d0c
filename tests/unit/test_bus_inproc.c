/*
 * test_bus_inproc.c — the in-process bus: synchronous delivery, verdicts,
 * dead letters, ordering, handlers that publish, and concurrent publishers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "bus_impl.h"
#include "log.h"
#include "metrics.h"

static ems_bus *open_inproc(void) {
    ems_bus *b = NULL;
    char err[128];
    assert_int_equal(ems_bus_open("inproc:", &b, err, sizeof err), EMS_OK);
    assert_non_null(b);
    return b;
}

/* ---- handlers ------------------------------------------------------------ */

/* The body names the verdict: "ack", "retry", "reject", anything else acks. */
static ems_verdict by_body(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    (void)len;
    atomic_int *calls = ctx;
    if (calls) atomic_fetch_add(calls, 1);
    if (strncmp(body, "retry", 5) == 0) return EMS_BUS_RETRY;
    if (strncmp(body, "reject", 6) == 0) return EMS_BUS_REJECT;
    if (strcmp(body, "bogus") == 0) return (ems_verdict)7;
    return EMS_BUS_ACK;
}

/* Records bodies in order. */
typedef struct {
    char seen[4096][16];
    size_t n;
} recorder;

static ems_verdict record(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    recorder *r = ctx;
    assert_true(len < sizeof r->seen[0]);
    assert_int_equal(strlen(body), len); /* NUL-terminated at len */
    memcpy(r->seen[r->n++], body, len + 1);
    return EMS_BUS_ACK;
}

/* ---- tests --------------------------------------------------------------- */

static void test_open_rejects_bad_urls(void **state) {
    (void)state;
    static const char *const bad[] = {"",
                                      "inproc:x",
                                      "kafka://h:1",
                                      "amqp://u:p@h:port",
                                      "amqp://u:p@h:0",
                                      "amqps://u:p@h:5671",
                                      "amqp://u:p@h:99999"};
    ems_bus *b = NULL;
    char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ems_bus_open(bad[i], &b, err, sizeof err), EMS_BAD_REQUEST);
        assert_null(b);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(ems_bus_open(NULL, &b, err, sizeof err), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_open("inproc:", &b, NULL, 0), EMS_OK);
    assert_int_equal(ems_bus_ready(b), 1);
    ems_bus_close(b);
    ems_bus_close(NULL);
    assert_int_equal(ems_bus_ready(NULL), 0);
}

static void test_verdict_names(void **state) {
    (void)state;
    assert_string_equal(ems_verdict_name(EMS_BUS_ACK), "ack");
    assert_string_equal(ems_verdict_name(EMS_BUS_RETRY), "retry");
    assert_string_equal(ems_verdict_name(EMS_BUS_REJECT), "reject");
    assert_string_equal(ems_verdict_name((ems_verdict)42), "unknown");
}

static void test_publish_without_consumer_is_again(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    atomic_int calls = 0;
    assert_int_equal(ems_bus_declare(b, "t.none"), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.none", "{}", 2), EMS_AGAIN);
    assert_int_equal(ems_bus_publish(b, "t.undeclared", "{}", 2), EMS_AGAIN);
    /* Once a consumer exists the same message goes through: the publisher kept it. */
    assert_int_equal(ems_bus_consume(b, "t.none", 0, by_body, &calls), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.none", "{}", 2), EMS_OK);
    assert_int_equal(atomic_load(&calls), 1);
    ems_bus_close(b);
}

static void test_verdicts_and_dead_letters(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    atomic_int calls = 0;
    size_t len = 0;
    char *m;
    assert_int_equal(ems_bus_consume(b, "t.verdicts", 0, by_body, &calls), EMS_OK);
    assert_int_equal(ems_bus_dlq_count(b, "t.verdicts"), 0);

    assert_int_equal(ems_bus_publish(b, "t.verdicts", "ack", 3), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.verdicts", "retry", 5), EMS_AGAIN);
    assert_int_equal(ems_bus_dlq_count(b, "t.verdicts"), 0);
    /* A rejected message is safe (in the dead-letter list): the publisher is done with it. */
    assert_int_equal(ems_bus_publish(b, "t.verdicts", "reject-1", 8), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.verdicts", "reject-2", 8), EMS_OK);
    /* A verdict outside the enum is treated as a reject, never dropped. */
    assert_int_equal(ems_bus_publish(b, "t.verdicts", "bogus", 5), EMS_OK);
    assert_int_equal(atomic_load(&calls), 5);
    assert_int_equal(ems_bus_dlq_count(b, "t.verdicts"), 3);

    m = ems_bus_dlq_message(b, "t.verdicts", 0, &len);
    assert_non_null(m);
    assert_string_equal(m, "reject-1");
    assert_int_equal(len, 8);
    free(m);
    m = ems_bus_dlq_message(b, "t.verdicts", 2, NULL);
    assert_string_equal(m, "bogus");
    free(m);
    assert_null(ems_bus_dlq_message(b, "t.verdicts", 3, NULL));
    assert_null(ems_bus_dlq_message(b, "t.nosuch", 0, NULL));
    assert_int_equal(ems_bus_dlq_count(b, "t.nosuch"), 0);

    /* Every handled message is counted by verdict in /metrics. */
    size_t mlen;
    char *text = ems_metrics_render(&mlen);
    assert_non_null(text);
    assert_non_null(strstr(text, "queue=\"t.verdicts\",verdict=\"ack\"} 1"));
    assert_non_null(strstr(text, "queue=\"t.verdicts\",verdict=\"retry\"} 1"));
    assert_non_null(strstr(text, "queue=\"t.verdicts\",verdict=\"reject\"} 3"));
    free(text);
    ems_bus_close(b);
}

static void test_dead_letters_are_bounded(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    char body[32];
    assert_int_equal(ems_bus_consume(b, "t.flood", 0, by_body, NULL), EMS_OK);
    for (int i = 0; i < 1500; i++) {
        int n = snprintf(body, sizeof body, "reject-%d", i);
        assert_int_equal(ems_bus_publish(b, "t.flood", body, (size_t)n), EMS_OK);
    }
    /* All are counted; the oldest kept is no older than the last thousand. */
    assert_int_equal(ems_bus_dlq_count(b, "t.flood"), 1500);
    char *m = ems_bus_dlq_message(b, "t.flood", 0, NULL);
    assert_string_equal(m, "reject-500");
    free(m);
    assert_null(ems_bus_dlq_message(b, "t.flood", 1000, NULL));
    ems_bus_close(b);
}

/* Bytes of the dead letters `queue` keeps, and how many. */
static size_t dlq_bytes(ems_bus *b, const char *queue, size_t *kept) {
    size_t total = 0, len = 0, i = 0;
    char *m;
    while ((m = ems_bus_dlq_message(b, queue, i, &len)) != NULL) {
        total += len;
        free(m);
        i++;
    }
    if (kept) *kept = i;
    return total;
}

/* The value of `series` (a line's start, e.g. `x_total{queue="q"}`) in /metrics, or -1. */
static double metric_value(const char *series) {
    char *text = ems_metrics_render(NULL), *at = text ? strstr(text, series) : NULL;
    double v = -1;
    while (at && at != text && at[-1] != '\n') at = strstr(at + 1, series);
    if (at && at[strlen(series)] == ' ') v = strtod(at + strlen(series) + 1, NULL);
    free(text);
    return v;
}

/*
 * Sixty dead letters of 1 MiB (an unknown device's readings, in embedded
 * mode) once held 60 MiB: the bytes kept stay under the bound (8 MiB by
 * default, the oldest dropped first), every one is counted, and the dropped
 * ones are counted in /metrics.
 */
static void test_dead_letters_are_bounded_in_bytes(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    size_t big = (size_t)1 << 20, kept = 0;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'x', big);
    memcpy(body, "reject", 6);
    assert_int_equal(ems_bus_consume(b, "t.big", 0, by_body, NULL), EMS_OK);
    for (int i = 0; i < 60; i++) {
        body[6] = (char)('A' + i % 26);
        assert_int_equal(ems_bus_publish(b, "t.big", body, big), EMS_OK);
    }
    assert_int_equal(ems_bus_dlq_count(b, "t.big"), 60);
    size_t held = dlq_bytes(b, "t.big", &kept);
    assert_true(held <= (size_t)8 << 20);
    assert_int_equal(kept, 8);
    char *newest = ems_bus_dlq_message(b, "t.big", kept - 1, NULL);
    assert_int_equal(newest[6], 'A' + 59 % 26); /* the newest stay */
    free(newest);
    assert_true(metric_value("ems_bus_dead_letters_dropped_total{queue=\"t.big\"}") == 52);
    assert_true(metric_value("ems_bus_messages_total{queue=\"t.big\",verdict=\"reject\"}") == 60);

    /* A smaller bound holds at once; a letter larger than the bound alone is counted and not kept. */
    ems_bus_set_dlq_max_bytes(b, 3 * big + 10);
    assert_int_equal(ems_bus_publish(b, "t.big", body, big), EMS_OK);
    assert_true(dlq_bytes(b, "t.big", &kept) <= 3 * big + 10);
    assert_int_equal(kept, 3);
    ems_bus_set_dlq_max_bytes(b, big - 1);
    assert_int_equal(ems_bus_publish(b, "t.big", body, big), EMS_OK);
    assert_int_equal(dlq_bytes(b, "t.big", &kept), 0);
    assert_int_equal(kept, 0);
    assert_int_equal(ems_bus_dlq_count(b, "t.big"), 62);
    assert_true(metric_value("ems_bus_dead_letters_dropped_total{queue=\"t.big\"}") == 62);
    free(body);
    ems_bus_close(b);
}

static void test_order_and_batches(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    recorder *r = calloc(1, sizeof *r);
    char bufs[100][16];
    const char *bodies[100];
    size_t lens[100];
    assert_int_equal(ems_bus_consume(b, "t.order", 0, record, r), EMS_OK);
    for (int i = 0; i < 1000; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "m%d", i);
        assert_int_equal(ems_bus_publish(b, "t.order", body, (size_t)n), EMS_OK);
    }
    for (int i = 0; i < 100; i++) {
        lens[i] = (size_t)snprintf(bufs[i], sizeof bufs[i], "m%d", 1000 + i);
        bodies[i] = bufs[i];
    }
    assert_int_equal(ems_bus_publish_batch(b, "t.order", bodies, lens, 100), EMS_OK);
    assert_int_equal(ems_bus_publish_batch(b, "t.order", bodies, lens, 0), EMS_OK);
    assert_int_equal(r->n, 1100);
    for (size_t i = 0; i < r->n; i++) {
        char want[32];
        snprintf(want, sizeof want, "m%zu", i);
        assert_string_equal(r->seen[i], want);
    }
    free(r);
    ems_bus_close(b);
}

static void test_batch_stops_at_first_retry(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    atomic_int calls = 0;
    const char *bodies[] = {"a", "reject", "retry", "d", "e"};
    size_t lens[] = {1, 6, 5, 1, 1};
    assert_int_equal(ems_bus_consume(b, "t.batch", 0, by_body, &calls), EMS_OK);
    assert_int_equal(ems_bus_publish_batch(b, "t.batch", bodies, lens, 5), EMS_AGAIN);
    /* "d" and "e" were not delivered: the publisher's retry keeps them in order. */
    assert_int_equal(atomic_load(&calls), 3);
    assert_int_equal(ems_bus_dlq_count(b, "t.batch"), 1);
    ems_bus_close(b);
}

static void test_body_is_nul_terminated(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    recorder *r = calloc(1, sizeof *r);
    static const char raw[] = {'a', 'b', 'c', 'X', 'Y'};
    assert_int_equal(ems_bus_consume(b, "t.raw", 0, record, r), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.raw", raw, 3), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.raw", NULL, 0), EMS_OK);
    assert_string_equal(r->seen[0], "abc");
    assert_string_equal(r->seen[1], "");
    free(r);
    ems_bus_close(b);
}

/* A batch handler: each message goes through by_body; the batch sizes are recorded. */
typedef struct {
    atomic_int calls;
    size_t largest;
    char last[16];
} batch_seen;

static void by_body_batch(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    batch_seen *s = ctx;
    if (n > s->largest) s->largest = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(msgs[i].body), msgs[i].len);
        snprintf(s->last, sizeof s->last, "%s", msgs[i].body);
        verdicts[i] = by_body(queue, msgs[i].body, msgs[i].len, &s->calls);
    }
}

/* Leaves every verdict unset: the bus must take that as a retry. */
static void silent_batch(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    (void)queue;
    (void)msgs;
    (void)n;
    (void)verdicts;
    (void)ctx;
}

static void test_consume_batch_delivers_one_at_a_time(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    batch_seen s = {.largest = 0};
    const char *bodies[] = {"a", "b", "reject", "c"};
    size_t lens[] = {1, 1, 6, 1};
    atomic_init(&s.calls, 0);
    assert_int_equal(ems_bus_consume_batch(b, "q.batch", 2000, 1000, 20, NULL, &s), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_consume_batch(b, "q.batch", 2000, 1000, 20, by_body_batch, &s), EMS_OK);
    assert_int_equal(ems_bus_consume(b, "q.batch", 0, by_body, NULL), EMS_CONFLICT);
    assert_int_equal(ems_bus_consume_batch(b, "q.batch", 0, 0, 0, by_body_batch, &s), EMS_CONFLICT);
    /* Synchronous: when publish returns, the handler has run, one message per call. */
    assert_int_equal(ems_bus_publish_batch(b, "q.batch", bodies, lens, 4), EMS_OK);
    assert_int_equal(atomic_load(&s.calls), 4);
    assert_int_equal(s.largest, 1);
    assert_string_equal(s.last, "c");
    assert_int_equal(ems_bus_dlq_count(b, "q.batch"), 1);
    /* A retry verdict is EMS_AGAIN to the publisher, as with a plain consumer. */
    assert_int_equal(ems_bus_publish(b, "q.batch", "retry", 5), EMS_AGAIN);
    assert_int_equal(ems_bus_publish(b, "q.batch", "bogus", 5), EMS_OK); /* bad verdict → dead letter */
    assert_int_equal(ems_bus_dlq_count(b, "q.batch"), 2);
    /* Unset verdicts are retries. */
    assert_int_equal(ems_bus_consume_batch(b, "q.silent", 0, 0, 0, silent_batch, NULL), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "q.silent", "x", 1), EMS_AGAIN);
    assert_int_equal(ems_bus_dlq_count(b, "q.silent"), 0);
    ems_bus_close(b);
}

static void test_bad_arguments(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    char longname[300];
    const char *bodies[] = {NULL};
    size_t lens[] = {4};
    memset(longname, 'q', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(ems_bus_publish(NULL, "q", "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, NULL, "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, "", "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, "amq.direct", "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, "bad\nname", "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, longname, "x", 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_declare(b, longname), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish(b, "q", NULL, 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish_batch(b, "q", bodies, lens, 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_publish_batch(b, "q", NULL, NULL, 1), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_consume(b, "q", 0, NULL, NULL), EMS_BAD_REQUEST);
    /* One consumer per queue: a second would break "never concurrently for one queue". */
    assert_int_equal(ems_bus_consume(b, "q", 0, by_body, NULL), EMS_OK);
    assert_int_equal(ems_bus_consume(b, "q", 0, by_body, NULL), EMS_CONFLICT);
    ems_bus_close(b);
}

/* ---- handlers that publish ----------------------------------------------- */

typedef struct {
    ems_bus *bus;
    const char *target;
    ems_rc last;
    atomic_int calls;
    pthread_barrier_t *meet; /* first calls: both handlers inside before either publishes */
} forwarder;

/* Forwards its message to ctx->target; acks only once the forward succeeded. */
static ems_verdict forward(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    forwarder *f = ctx;
    if (atomic_fetch_add(&f->calls, 1) == 0 && f->meet) pthread_barrier_wait(f->meet);
    f->last = ems_bus_publish(f->bus, f->target, body, len);
    return f->last == EMS_OK ? EMS_BUS_ACK : EMS_BUS_RETRY;
}

static void test_handler_publishes_to_another_queue(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    recorder *r = calloc(1, sizeof *r);
    forwarder f = {.bus = b, .target = "t.second"};
    assert_int_equal(ems_bus_consume(b, "t.first", 0, forward, &f), EMS_OK);
    /* No consumer on the second queue yet: the first handler retries, the publisher hears AGAIN. */
    assert_int_equal(ems_bus_publish(b, "t.first", "hop", 3), EMS_AGAIN);
    assert_int_equal(f.last, EMS_AGAIN);
    assert_int_equal(ems_bus_consume(b, "t.second", 0, record, r), EMS_OK);
    assert_int_equal(ems_bus_publish(b, "t.first", "hop", 3), EMS_OK);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->seen[0], "hop");
    free(r);
    ems_bus_close(b);
}

static void test_handler_publishes_to_its_own_queue(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    forwarder f = {.bus = b, .target = "t.loop"};
    assert_int_equal(ems_bus_consume(b, "t.loop", 0, forward, &f), EMS_OK);
    /* Re-entering the queue being handled is EMS_AGAIN at once, not a deadlock. */
    assert_int_equal(ems_bus_publish(b, "t.loop", "x", 1), EMS_AGAIN);
    assert_int_equal(f.last, EMS_AGAIN);
    assert_int_equal(atomic_load(&f.calls), 1);
    ems_bus_close(b);
}

typedef struct {
    ems_bus *bus;
    const char *queue;
    ems_rc rc;
} publish_job;

static void *publish_once(void *arg) {
    publish_job *j = arg;
    j->rc = ems_bus_publish(j->bus, j->queue, "x", 1);
    return NULL;
}

static void test_crossed_handlers_do_not_deadlock(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    pthread_barrier_t meet;
    pthread_t t1, t2;
    pthread_barrier_init(&meet, NULL, 2);
    /* A's handler publishes to B while B's handler publishes to A, on two threads at once. */
    forwarder fa = {.bus = b, .target = "t.b", .meet = &meet};
    forwarder fb = {.bus = b, .target = "t.a", .meet = &meet};
    publish_job ja = {.bus = b, .queue = "t.a"}, jb = {.bus = b, .queue = "t.b"};
    assert_int_equal(ems_bus_consume(b, "t.a", 0, forward, &fa), EMS_OK);
    assert_int_equal(ems_bus_consume(b, "t.b", 0, forward, &fb), EMS_OK);
    assert_int_equal(pthread_create(&t1, NULL, publish_once, &ja), 0);
    assert_int_equal(pthread_create(&t2, NULL, publish_once, &jb), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    /* Both nested publishes gave up after a bounded wait; both publishers may try again. */
    assert_int_equal(ja.rc, EMS_AGAIN);
    assert_int_equal(jb.rc, EMS_AGAIN);
    assert_int_equal(fa.last, EMS_AGAIN);
    assert_int_equal(fb.last, EMS_AGAIN);
    pthread_barrier_destroy(&meet);
    ems_bus_close(b);
}

/* ---- concurrent publishers ----------------------------------------------- */

#define PUBLISHERS 4
#define PER_PUBLISHER 5000

typedef struct {
    atomic_int inside; /* >1 would mean two deliveries at once */
    int overlap;
    long count;            /* plain: only ever touched by one handler at a time */
    long next[PUBLISHERS]; /* next sequence number expected per publisher */
    int out_of_order;
} tally;

static ems_verdict count_msg(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    (void)len;
    tally *t = ctx;
    int p;
    long seq;
    if (atomic_fetch_add(&t->inside, 1) != 0) t->overlap = 1;
    if (sscanf(body, "%d:%ld", &p, &seq) == 2 && p >= 0 && p < PUBLISHERS) {
        if (seq != t->next[p]) t->out_of_order = 1;
        t->next[p] = seq + 1;
    }
    t->count++;
    atomic_fetch_sub(&t->inside, 1);
    return EMS_BUS_ACK;
}

typedef struct {
    ems_bus *bus;
    int id;
    int failures;
} publisher;

static void *publish_many(void *arg) {
    publisher *p = arg;
    char body[32];
    for (long i = 0; i < PER_PUBLISHER; i++) {
        int n = snprintf(body, sizeof body, "%d:%ld", p->id, i);
        if (ems_bus_publish(p->bus, "t.busy", body, (size_t)n) != EMS_OK) p->failures++;
    }
    return NULL;
}

static void test_concurrent_publishers_exact_count(void **state) {
    (void)state;
    ems_bus *b = open_inproc();
    tally *t = calloc(1, sizeof *t);
    pthread_t threads[PUBLISHERS];
    publisher pubs[PUBLISHERS];
    assert_int_equal(ems_bus_consume(b, "t.busy", 0, count_msg, t), EMS_OK);
    for (int i = 0; i < PUBLISHERS; i++) {
        pubs[i] = (publisher){.bus = b, .id = i};
        assert_int_equal(pthread_create(&threads[i], NULL, publish_many, &pubs[i]), 0);
    }
    for (int i = 0; i < PUBLISHERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(pubs[i].failures, 0);
    }
    assert_int_equal(t->count, PUBLISHERS * PER_PUBLISHER);
    assert_int_equal(t->overlap, 0);
    assert_int_equal(t->out_of_order, 0);
    for (int i = 0; i < PUBLISHERS; i++) assert_int_equal(t->next[i], PER_PUBLISHER);
    free(t);
    ems_bus_close(b);
}

int main(void) {
    ems_log_set_level(EMS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects_bad_urls),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_publish_without_consumer_is_again),
        cmocka_unit_test(test_verdicts_and_dead_letters),
        cmocka_unit_test(test_dead_letters_are_bounded),
        cmocka_unit_test(test_dead_letters_are_bounded_in_bytes),
        cmocka_unit_test(test_order_and_batches),
        cmocka_unit_test(test_batch_stops_at_first_retry),
        cmocka_unit_test(test_body_is_nul_terminated),
        cmocka_unit_test(test_consume_batch_delivers_one_at_a_time),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_handler_publishes_to_another_queue),
        cmocka_unit_test(test_handler_publishes_to_its_own_queue),
        cmocka_unit_test(test_crossed_handlers_do_not_deadlock),
        cmocka_unit_test(test_concurrent_publishers_exact_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
