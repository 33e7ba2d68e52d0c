/*
 * test_bus_amqp.c — the RabbitMQ driver against a real broker.
 *
 * Starts a private broker with tests/lib/rabbitmq.sh in a temporary
 * directory on free loopback ports (or uses EMS_TEST_AMQP_URL), and checks
 * what the bus promises: confirmed publishes, exact counts, dead letters,
 * redelivery of anything not acknowledged (a retry, a consumer killed
 * mid-message, a bus closed mid-stream), and recovery from a broker restart
 * with every confirmed message consumed.  The broker is stopped at the end,
 * even when an assertion fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "bus.h"
#include "fixture.h"
#include "log.h"

static char broker_dir[256]; /* empty when the broker is not ours */
static int broker_port;
static char url[256];
static char prefix[64]; /* queue names unique to this run */

/* ---- the private broker -------------------------------------------------- */

static const char *script_path(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/tests/lib/rabbitmq.sh", fx_source_dir());
    return path;
}

static int broker(const char *verb) {
    if (strcmp(verb, "wait") == 0)
        return fx_run("bash '%s' wait %d 40 >>'%s/test.log' 2>&1", script_path(), broker_port, broker_dir);
    return fx_run("bash '%s' %s '%s/rmq' %d >>'%s/test.log' 2>&1", script_path(), verb, broker_dir, broker_port,
                  broker_dir);
}

/* rabbitmqctl against the private broker, e.g. broker_ctl("close_all_connections test"). */
static int broker_ctl(const char *args) {
    return fx_run("bash '%s' ctl '%s/rmq' %s >>'%s/test.log' 2>&1", script_path(), broker_dir, args, broker_dir);
}

static void broker_cleanup(void) {
    if (!broker_dir[0]) return;
    broker("stop");
    if (fx_run("rm -rf '%s'", broker_dir) != 0) fprintf(stderr, "test_bus_amqp: could not remove %s\n", broker_dir);
    broker_dir[0] = '\0';
}

static int group_setup(void **state) {
    (void)state;
    const char *given = getenv("EMS_TEST_AMQP_URL");
    char cmd[600], line[32] = "";
    FILE *p;
    snprintf(prefix, sizeof prefix, "t%ld.%ld", (long)getpid(), (long)time(NULL));
    if (given && *given) {
        snprintf(url, sizeof url, "%s", given);
        return 0;
    }
    if (!fx_tmpdir(broker_dir, sizeof broker_dir, "bus")) {
        broker_dir[0] = '\0';
        return -1;
    }
    /*
     * Stops the broker even if the run ends in exit() from a failed setup;
     * if this process dies without running atexit, the script's watcher does.
     */
    atexit(broker_cleanup);
    snprintf(line, sizeof line, "%ld", (long)getpid());
    setenv("EMS_BROKER_OWNER_PID", line, 1);
    snprintf(cmd, sizeof cmd, "bash '%s' pick", script_path());
    if (!(p = popen(cmd, "r"))) return -1;
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    pclose(p);
    broker_port = atoi(line);
    if (broker_port <= 0) return -1;
    if (broker("start") != 0 || broker("wait") != 0) {
        fprintf(stderr, "test_bus_amqp: broker did not start, see %s/test.log\n", broker_dir);
        return -1;
    }
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d", broker_port);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    broker_cleanup();
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *qname(const char *name) {
    static char buf[8][128];
    static int next;
    char *q = buf[next++ % 8];
    snprintf(q, sizeof buf[0], "%s.%s", prefix, name);
    return q;
}

static ems_bus *open_bus(void) {
    ems_bus *b = NULL;
    char err[160];
    assert_int_equal(ems_bus_open(url, &b, err, sizeof err), EMS_OK);
    return b;
}

#define MAX_IDS 6000

/* What a consumer saw: ids are parsed from bodies "{\"id\":N}". */
typedef struct {
    pthread_mutex_t lock;
    unsigned char seen[MAX_IDS]; /* 0 never, 1 refused once, 2 acknowledged or rejected */
    long distinct, total, redelivered;
    int next_expected, out_of_order, unterminated;
    ems_verdict verdict;     /* returned for every message ... */
    int retry_first;         /* ... except RETRY on an id's first sight when set */
    const char *reject_body; /* REJECT for this body */
    long delay_ms;           /* work per message */
    char last[64];
} tally;

static void tally_init(tally *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->verdict = EMS_BUS_ACK;
}

static ems_verdict count_msg(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    tally *t = ctx;
    ems_verdict v;
    int id = -1;
    if (t->delay_ms) nap_ms(t->delay_ms);
    pthread_mutex_lock(&t->lock);
    v = t->verdict;
    /* No cmocka assertions here: this runs on the consumer's thread. */
    if (strlen(body) != len) t->unterminated = 1;
    snprintf(t->last, sizeof t->last, "%s", body);
    t->total++;
    if (sscanf(body, "{\"id\":%d}", &id) == 1 && id >= 0 && id < MAX_IDS) {
        int before = t->seen[id];
        if (before) {
            t->redelivered++;
        } else {
            if (id != t->next_expected) t->out_of_order = 1;
            t->next_expected = id + 1;
            if (t->retry_first) v = EMS_BUS_RETRY;
        }
        if (v == EMS_BUS_RETRY) {
            if (!before) t->seen[id] = 1;
        } else if (before != 2) {
            t->seen[id] = 2;
            t->distinct++;
        }
    }
    if (t->reject_body && strcmp(body, t->reject_body) == 0) v = EMS_BUS_REJECT;
    pthread_mutex_unlock(&t->lock);
    return v;
}

static long tally_distinct(tally *t) {
    pthread_mutex_lock(&t->lock);
    long n = t->distinct;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static long tally_total(tally *t) {
    pthread_mutex_lock(&t->lock);
    long n = t->total;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Waits up to `secs` for the consumer to have seen `n` distinct ids. */
static int wait_distinct(tally *t, long n, double secs) {
    double until = now_s() + secs;
    while (tally_distinct(t) < n && now_s() < until) nap_ms(20);
    return tally_distinct(t) >= n;
}

static int body_of(char *buf, size_t len, int id) { return snprintf(buf, len, "{\"id\":%d}", id); }

static ems_rc publish_id(ems_bus *b, const char *queue, int id) {
    char body[32];
    int n = body_of(body, sizeof body, id);
    return ems_bus_publish(b, queue, body, (size_t)n);
}

/* ---- tests --------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    const char *q = qname("roundtrip");
    ems_bus *b = open_bus();
    tally t;
    tally_init(&t);
    assert_int_equal(ems_bus_ready(b), 1);
    assert_int_equal(ems_bus_declare(b, q), EMS_OK);
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, &t), EMS_OK);
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, &t), EMS_CONFLICT);
    for (int i = 0; i < 20; i++) assert_int_equal(publish_id(b, q, i), EMS_OK);
    assert_true(wait_distinct(&t, 20, 10));
    nap_ms(200);
    assert_int_equal(tally_total(&t), 20);
    assert_int_equal(t.out_of_order, 0);
    assert_int_equal(t.unterminated, 0);
    assert_string_equal(t.last, "{\"id\":19}");
    ems_bus_close(b);
}

static void test_batch_with_confirms(void **state) {
    (void)state;
    enum { N = 5000 };
    const char *q = qname("batch");
    ems_bus *b = open_bus();
    static char bufs[N][24];
    static const char *bodies[N];
    static size_t lens[N];
    tally t;
    tally_init(&t);
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)body_of(bufs[i], sizeof bufs[i], i);
        bodies[i] = bufs[i];
    }
    assert_int_equal(ems_bus_consume(b, q, 500, count_msg, &t), EMS_OK);
    double t0 = now_s();
    assert_int_equal(ems_bus_publish_batch(b, q, bodies, lens, N), EMS_OK);
    double t1 = now_s();
    assert_true(wait_distinct(&t, N, 20));
    nap_ms(300);
    /* Exactly once each: nothing lost, nothing redelivered in a quiet run. */
    assert_int_equal(tally_total(&t), N);
    assert_int_equal(t.redelivered, 0);
    assert_int_equal(t.out_of_order, 0);
    fprintf(stderr, "    batch: %d confirmed in %.3f s, consumed after %.3f s\n", N, t1 - t0, now_s() - t0);
    ems_bus_close(b);
}

static void test_reject_goes_to_dead_letter_queue(void **state) {
    (void)state;
    const char *q = qname("reject");
    char dlq[160];
    ems_bus *b = open_bus();
    tally t, dead;
    tally_init(&t);
    tally_init(&dead);
    t.reject_body = "poison";
    snprintf(dlq, sizeof dlq, "%s.dlq", q);
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, &t), EMS_OK);
    assert_int_equal(ems_bus_publish(b, q, "poison", 6), EMS_OK);
    assert_int_equal(publish_id(b, q, 0), EMS_OK);
    assert_true(wait_distinct(&t, 1, 10));
    /* The broker moved the rejected message to "<queue>.dlq", where it can be consumed. */
    assert_int_equal(ems_bus_consume(b, dlq, 0, count_msg, &dead), EMS_OK);
    double until = now_s() + 10;
    while (tally_total(&dead) < 1 && now_s() < until) nap_ms(20);
    nap_ms(200);
    assert_int_equal(tally_total(&dead), 1);
    assert_string_equal(dead.last, "poison");
    assert_int_equal(tally_total(&t), 2);
    ems_bus_close(b);
}

static void test_retry_redelivers(void **state) {
    (void)state;
    const char *q = qname("retry");
    ems_bus *b = open_bus();
    tally t;
    tally_init(&t);
    t.retry_first = 1;
    assert_int_equal(ems_bus_consume(b, q, 1, count_msg, &t), EMS_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(publish_id(b, q, i), EMS_OK);
    assert_true(wait_distinct(&t, 3, 15));
    nap_ms(200);
    /* Each was refused once, then redelivered and acknowledged. */
    assert_int_equal(tally_total(&t), 6);
    assert_int_equal(t.redelivered, 3);
    ems_bus_close(b);
}

/* A batch consumer: each message goes through count_msg; batch sizes are recorded. */
typedef struct {
    tally *t;
    atomic_long calls;
    atomic_long largest;
} batch_stats;

static void count_batch(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    batch_stats *s = ctx;
    atomic_fetch_add(&s->calls, 1);
    if ((long)n > atomic_load(&s->largest)) atomic_store(&s->largest, (long)n);
    for (size_t i = 0; i < n; i++) verdicts[i] = count_msg(queue, msgs[i].body, msgs[i].len, s->t);
}

static void test_consume_batch(void **state) {
    (void)state;
    enum { N = 3000, MAX_BATCH = 200 };
    const char *q = qname("cbatch");
    ems_bus *b = open_bus();
    static char bufs[N][24];
    static const char *bodies[N];
    static size_t lens[N];
    tally t;
    batch_stats s = {.t = &t};
    tally_init(&t);
    atomic_init(&s.calls, 0);
    atomic_init(&s.largest, 0);
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)body_of(bufs[i], sizeof bufs[i], i);
        bodies[i] = bufs[i];
    }
    assert_int_equal(ems_bus_declare(b, q), EMS_OK);
    /* Published first, so that the consumer finds full batches waiting. */
    assert_int_equal(ems_bus_publish_batch(b, q, bodies, lens, N), EMS_OK);
    assert_int_equal(ems_bus_consume_batch(b, q, 1000, MAX_BATCH, 20, count_batch, &s), EMS_OK);
    assert_int_equal(ems_bus_consume_batch(b, q, 1000, MAX_BATCH, 20, count_batch, &s), EMS_CONFLICT);
    assert_true(wait_distinct(&t, N, 20));
    nap_ms(300);
    /* Exactly once each, in order, several per call and never more than asked for. */
    assert_int_equal(tally_total(&t), N);
    assert_int_equal(t.redelivered, 0);
    assert_int_equal(t.out_of_order, 0);
    assert_int_equal(t.unterminated, 0);
    assert_true(atomic_load(&s.largest) > 1);
    assert_true(atomic_load(&s.largest) <= MAX_BATCH);
    assert_true(atomic_load(&s.calls) < N);
    ems_bus_close(b);
    /* Everything was acknowledged: a new consumer finds the queue empty. */
    b = open_bus();
    tally_init(&t);
    assert_int_equal(ems_bus_consume_batch(b, q, 1000, MAX_BATCH, 20, count_batch, &s), EMS_OK);
    nap_ms(500);
    assert_int_equal(tally_total(&t), 0);
    ems_bus_close(b);
}

static void test_consume_batch_mixed_verdicts(void **state) {
    (void)state;
    enum { N = 50 };
    const char *q = qname("cbatchmixed");
    char dlq[160];
    static char bufs[N + 1][24];
    static const char *bodies[N + 1];
    static size_t lens[N + 1];
    ems_bus *b = open_bus();
    tally t, dead;
    batch_stats s = {.t = &t};
    tally_init(&t);
    tally_init(&dead);
    atomic_init(&s.calls, 0);
    atomic_init(&s.largest, 0);
    t.reject_body = "poison";
    t.retry_first = 1; /* every id is refused once, in the middle of its batch */
    snprintf(dlq, sizeof dlq, "%s.dlq", q);
    bodies[0] = "poison";
    lens[0] = 6;
    for (int i = 0; i < N; i++) {
        lens[i + 1] = (size_t)body_of(bufs[i], sizeof bufs[i], i);
        bodies[i + 1] = bufs[i];
    }
    assert_int_equal(ems_bus_declare(b, q), EMS_OK);
    assert_int_equal(ems_bus_publish_batch(b, q, bodies, lens, N + 1), EMS_OK);
    assert_int_equal(ems_bus_consume_batch(b, q, 500, 100, 20, count_batch, &s), EMS_OK);
    assert_true(wait_distinct(&t, N, 20));
    assert_int_equal(ems_bus_consume(b, dlq, 0, count_msg, &dead), EMS_OK);
    double until = now_s() + 10;
    while (tally_total(&dead) < 1 && now_s() < until) nap_ms(20);
    nap_ms(300);
    /* Retried ones came back once each; acknowledged ones did not; the reject went to the dlq once. */
    assert_int_equal(t.redelivered, N);
    assert_int_equal(tally_total(&t), 2 * N + 1);
    assert_int_equal(tally_total(&dead), 1);
    assert_string_equal(dead.last, "poison");
    ems_bus_close(b);
}

static void test_published_before_consumer(void **state) {
    (void)state;
    const char *q = qname("early");
    ems_bus *pub = open_bus(), *sub;
    tally t;
    tally_init(&t);
    /* No declare: the first publish declares the queue, so nothing is routed nowhere. */
    for (int i = 0; i < 50; i++) assert_int_equal(publish_id(pub, q, i), EMS_OK);
    ems_bus_close(pub);
    sub = open_bus();
    assert_int_equal(ems_bus_consume(sub, q, 10, count_msg, &t), EMS_OK);
    assert_true(wait_distinct(&t, 50, 10));
    assert_int_equal(t.out_of_order, 0);
    ems_bus_close(sub);
}

static void test_close_mid_stream_loses_nothing(void **state) {
    (void)state;
    enum { N = 300 };
    const char *q = qname("closing");
    ems_bus *b = open_bus();
    tally *t = calloc(1, sizeof *t);
    tally_init(t);
    t->delay_ms = 5;
    /*
     * Every message is in the queue before the consumer starts, so it closes mid-stream however
     * slow the publishing is (under ASan on a loaded machine the consumer used to keep up with
     * the publisher and finish first).  A wide prefetch: most of the queue sits unacknowledged
     * in the consumer when it closes.
     */
    for (int i = 0; i < N; i++) assert_int_equal(publish_id(b, q, i), EMS_OK);
    assert_int_equal(ems_bus_consume(b, q, 200, count_msg, t), EMS_OK);
    assert_true(wait_distinct(t, 20, 10));
    ems_bus_close(b);
    long handled = tally_distinct(t);
    assert_true(handled < N);
    t->delay_ms = 0;
    b = open_bus();
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, t), EMS_OK);
    assert_true(wait_distinct(t, N, 15));
    ems_bus_close(b);
    free(t);
}

/* Child side of the kill test: consume, say so on the pipe, then hang mid-handler. */
static int kill_pipe = -1;

static ems_verdict hang(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    (void)ctx;
    ssize_t w = write(kill_pipe, body, len);
    (void)w;
    for (;;) pause();
    return EMS_BUS_ACK;
}

static void test_killed_consumer_loses_nothing(void **state) {
    (void)state;
    const char *q = qname("killed");
    int fds[2];
    char got[64] = "";
    pid_t pid;
    ems_bus *b = open_bus();
    tally t;
    tally_init(&t);
    assert_int_equal(ems_bus_declare(b, q), EMS_OK);
    assert_int_equal(publish_id(b, q, 7), EMS_OK);
    ems_bus_close(b);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ems_bus *cb = NULL;
        close(fds[0]);
        kill_pipe = fds[1];
        if (ems_bus_open(url, &cb, NULL, 0) != EMS_OK || ems_bus_consume(cb, q, 0, hang, NULL) != EMS_OK) _exit(2);
        for (;;) pause();
    }
    close(fds[1]);
    /* The child has the message in its handler, unacknowledged, when it dies. */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    double until = now_s() + 15;
    ssize_t n = 0;
    while (n <= 0 && now_s() < until) {
        n = read(fds[0], got, sizeof got - 1);
        if (n <= 0) nap_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    assert_true(n > 0);
    got[n] = '\0';
    assert_string_equal(got, "{\"id\":7}");
    /* The broker gives it to the next consumer. */
    b = open_bus();
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, &t), EMS_OK);
    assert_true(wait_distinct(&t, 1, 10));
    assert_string_equal(t.last, "{\"id\":7}");
    ems_bus_close(b);
}

static void test_unreachable_broker_fails_fast(void **state) {
    (void)state;
    ems_bus *b = NULL;
    char bad[200];
    char path[] = "/tmp/ems-bus-log-XXXXXX";
    char logbuf[8192];
    int saved, fd = mkstemp(path);
    ems_rc open_rc, first, again, wrong_pw = EMS_UNAVAILABLE;
    int ready;
    double t0, took;
    ssize_t n;
    assert_true(fd >= 0);
    /*
     * Port 1 on loopback: nothing listens there.  The password must never be
     * logged.  stderr goes to a file meanwhile: results are checked after.
     */
    snprintf(bad, sizeof bad, "amqp://guest:s3cr3t-pw@127.0.0.1:1");
    ems_log_level level = ems_log_min;
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    ems_log_set_level(EMS_LOG_DEBUG);
    open_rc = ems_bus_open(bad, &b, NULL, 0); /* lazy: opening does not connect */
    t0 = now_s();
    first = ems_bus_publish(b, "t.nowhere", "{}", 2);
    ready = ems_bus_ready(b);
    again = ems_bus_publish(b, "t.nowhere", "{}", 2);
    took = now_s() - t0;
    ems_bus_close(b);
    /* A wrong password against the real broker: refused, and not logged either. */
    if (broker_port) {
        snprintf(bad, sizeof bad, "amqp://guest:s3cr3t-pw@127.0.0.1:%d", broker_port);
        b = NULL;
        if (ems_bus_open(bad, &b, NULL, 0) == EMS_OK) wrong_pw = ems_bus_publish(b, "t.nowhere", "{}", 2);
        ems_bus_close(b);
    }
    ems_log_set_level(level);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(open_rc, EMS_OK);
    assert_int_equal(first, EMS_UNAVAILABLE);
    assert_int_equal(ready, 0);
    assert_int_equal(again, EMS_UNAVAILABLE);
    assert_int_equal(wrong_pw, EMS_UNAVAILABLE);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, logbuf, sizeof logbuf - 1);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    logbuf[n] = '\0';
    assert_true(took < 3.0);
    assert_non_null(strstr(logbuf, "event=bus.connect_failed"));
    assert_non_null(strstr(logbuf, "user=guest"));
    assert_null(strstr(logbuf, "s3cr3t"));
}

static void test_vhost_forms(void **state) {
    (void)state;
    if (!broker_dir[0]) {
        fprintf(stderr, "    vhost forms: skipped (EMS_TEST_AMQP_URL may carry its own vhost)\n");
        skip();
    }
    /* No vhost, a trailing "/" and "/%2f" all mean "/"; an unknown vhost is refused. */
    static const char *const good[] = {"", "/", "/%2f"};
    char u[300];
    ems_bus *b;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(u, sizeof u, "%s%s", url, good[i]);
        b = NULL;
        assert_int_equal(ems_bus_open(u, &b, NULL, 0), EMS_OK);
        assert_int_equal(ems_bus_ready(b), 1);
        ems_bus_close(b);
    }
    snprintf(u, sizeof u, "%s/no-such-vhost", url);
    assert_int_equal(ems_bus_open(u, &b, NULL, 0), EMS_OK);
    assert_int_equal(ems_bus_ready(b), 0);
    ems_bus_close(b);
}

/* Declares a direct exchange bound to `queue` with the queue's name as key, as the definitions do. */
static void declare_exchange_to(const char *exchange, const char *queue) {
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    assert_non_null(sock);
    assert_int_equal(amqp_socket_open(sock, "127.0.0.1", broker_port), AMQP_STATUS_OK);
    assert_int_equal(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type,
                     AMQP_RESPONSE_NORMAL);
    amqp_channel_open(c, 1);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("direct"), 0, 1, 0, 0,
                          amqp_empty_table);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(queue),
                    amqp_empty_table);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/*
 * A meter's broker user may write only to the ingest exchange: it cannot
 * declare the queue, so a plain publish is refused, but a publish through
 * the exchange reaches the queue, confirmed.
 */
static void test_publish_via_exchange_as_write_only_user(void **state) {
    (void)state;
    if (!broker_dir[0]) {
        fprintf(stderr, "    publish via exchange: skipped (needs its own broker to add a user)\n");
        skip();
    }
    const char *q = qname("via"), *x = qname("via.exchange");
    char args[600], meter_url[300];
    ems_bus *admin = open_bus(), *meter = NULL;
    tally t;
    tally_init(&t);
    assert_int_equal(ems_bus_declare(admin, q), EMS_OK);
    declare_exchange_to(x, q);
    snprintf(args, sizeof args, "add_user meter%ld meter-pw", (long)getpid());
    assert_int_equal(broker_ctl(args), 0);
    snprintf(args, sizeof args, "set_permissions -p / meter%ld '^$' '^%s$' '^$'", (long)getpid(), x);
    assert_int_equal(broker_ctl(args), 0);
    snprintf(meter_url, sizeof meter_url, "amqp://meter%ld:meter-pw@127.0.0.1:%d", (long)getpid(), broker_port);
    assert_int_equal(ems_bus_open(meter_url, &meter, NULL, 0), EMS_OK);

    const char *bodies[3] = {"{\"id\":0}", "{\"id\":1}", "{\"id\":2}"};
    size_t lens[3] = {8, 8, 8};
    assert_int_not_equal(ems_bus_publish(meter, q, bodies[0], lens[0]), EMS_OK); /* may not declare */
    assert_int_equal(ems_bus_publish_via(meter, x, q, bodies, lens, 3), EMS_OK);
    assert_int_equal(ems_bus_publish_via(meter, "bad name with a \n", q, bodies, lens, 3), EMS_BAD_REQUEST);
    assert_int_equal(ems_bus_consume(admin, q, 0, count_msg, &t), EMS_OK);
    assert_true(wait_distinct(&t, 3, 10));
    nap_ms(200);
    assert_int_equal(tally_total(&t), 3);
    assert_int_equal(t.out_of_order, 0);
    ems_bus_close(meter);
    ems_bus_close(admin);
}

static void test_connections_closed_by_broker(void **state) {
    (void)state;
    if (!broker_dir[0]) {
        fprintf(stderr, "    closed connections: skipped (EMS_TEST_AMQP_URL is not ours to manage)\n");
        skip();
    }
    const char *q = qname("closed");
    ems_bus *b = open_bus();
    tally t;
    tally_init(&t);
    assert_int_equal(ems_bus_consume(b, q, 0, count_msg, &t), EMS_OK);
    assert_int_equal(publish_id(b, q, 0), EMS_OK);
    assert_true(wait_distinct(&t, 1, 10));
    /* The broker drops every connection; the broker itself stays up. */
    assert_int_equal(broker_ctl("close_all_connections test"), 0);
    /* The publisher notices its dead connection and uses a fresh one: no error reaches the caller. */
    assert_int_equal(publish_id(b, q, 1), EMS_OK);
    assert_int_equal(ems_bus_ready(b), 1);
    /* The consumer reconnects by itself. */
    assert_true(wait_distinct(&t, 2, 10));
    ems_bus_close(b);
}

/* ---- broker restart ------------------------------------------------------ */

typedef struct {
    ems_bus *bus;
    const char *queue;
    atomic_int confirmed; /* ids 0..confirmed-1 are confirmed */
    atomic_int failures;
    atomic_int stop;
} restart_pub;

/*
 * Publishes ids in order, about 200 a second, until told to stop; an id that
 * was not confirmed is published again (at least once).
 */
static void *restart_publisher(void *arg) {
    restart_pub *p = arg;
    int id = 0;
    while (id < MAX_IDS && !atomic_load(&p->stop)) {
        if (publish_id(p->bus, p->queue, id) == EMS_OK) {
            atomic_store(&p->confirmed, ++id);
            nap_ms(5);
        } else {
            atomic_fetch_add(&p->failures, 1);
            nap_ms(50);
        }
    }
    return NULL;
}

static void test_broker_restart(void **state) {
    (void)state;
    if (!broker_dir[0]) {
        fprintf(stderr, "    broker restart: skipped (EMS_TEST_AMQP_URL is not ours to restart)\n");
        skip();
    }
    const char *q = qname("restart");
    ems_bus *pubbus = open_bus(), *subbus = open_bus();
    tally *t = calloc(1, sizeof *t);
    restart_pub p = {.bus = pubbus, .queue = q};
    pthread_t thread;
    tally_init(t);
    assert_int_equal(ems_bus_consume(subbus, q, 50, count_msg, t), EMS_OK);
    assert_int_equal(pthread_create(&thread, NULL, restart_publisher, &p), 0);
    double until = now_s() + 15;
    while (atomic_load(&p.confirmed) < 100 && now_s() < until) nap_ms(10);
    assert_true(atomic_load(&p.confirmed) >= 100);

    assert_int_equal(broker("stop"), 0);
    int at_stop = atomic_load(&p.confirmed);
    /* While the broker is away publishing fails. */
    until = now_s() + 20;
    while (atomic_load(&p.failures) == 0 && now_s() < until) nap_ms(10);
    assert_true(atomic_load(&p.failures) > 0);
    assert_int_equal(ems_bus_ready(pubbus), 0);
    assert_int_equal(broker("start"), 0);
    assert_int_equal(broker("wait"), 0);

    /* The publisher recovers; the consumer reconnects and sees every confirmed id. */
    int at_start = atomic_load(&p.confirmed);
    until = now_s() + 25;
    while (atomic_load(&p.confirmed) < at_start + 100 && now_s() < until) nap_ms(20);
    atomic_store(&p.stop, 1);
    pthread_join(thread, NULL);
    int confirmed = atomic_load(&p.confirmed);
    assert_true(confirmed >= at_start + 100);
    assert_true(wait_distinct(t, confirmed, 20));
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < confirmed; i++) assert_int_equal(t->seen[i], 2);
    pthread_mutex_unlock(&t->lock);
    assert_int_equal(ems_bus_ready(pubbus), 1);
    fprintf(stderr, "    restart: %d confirmed before the stop, %d failed publishes, %ld deliveries for %d ids\n",
            at_stop, atomic_load(&p.failures), tally_total(t), confirmed);
    ems_bus_close(subbus);
    ems_bus_close(pubbus);
    free(t);
}

int main(void) {
    const char *level = getenv("EMS_LOG_LEVEL");
    ems_log_set_level(level && ems_log_level_parse(level) >= 0 ? (ems_log_level)ems_log_level_parse(level)
                                                               : EMS_LOG_WARN);
    /* EMS_TEST_FILTER=test_broker_* runs only the matching tests. */
    if (getenv("EMS_TEST_FILTER")) cmocka_set_test_filter(getenv("EMS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_batch_with_confirms),
        cmocka_unit_test(test_reject_goes_to_dead_letter_queue),
        cmocka_unit_test(test_retry_redelivers),
        cmocka_unit_test(test_consume_batch),
        cmocka_unit_test(test_consume_batch_mixed_verdicts),
        cmocka_unit_test(test_published_before_consumer),
        cmocka_unit_test(test_close_mid_stream_loses_nothing),
        cmocka_unit_test(test_killed_consumer_loses_nothing),
        cmocka_unit_test(test_unreachable_broker_fails_fast),
        cmocka_unit_test(test_vhost_forms),
        cmocka_unit_test(test_publish_via_exchange_as_write_only_user),
        cmocka_unit_test(test_connections_closed_by_broker),
        cmocka_unit_test(test_broker_restart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
