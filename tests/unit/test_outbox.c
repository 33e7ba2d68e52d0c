/*
 * test_outbox.c — events are published if and only if their change commits.
 *
 * The relay runs against the in-process bus, whose publish returns EMS_OK
 * only once a consumer acknowledged: so "published" here means "handled".
 * Every test runs on SQLite (a temporary file) and again on PostgreSQL (a
 * private server started with tests/lib/pg.sh, or EMS_TEST_PG_URL), each
 * with the outbox/inbox DDL a role's migration would have.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "bus.h"
#include "fixture.h"
#include "outbox.h"
#include "store.h"

#define QUEUE "internal.test.outbox.queue"
#define MAX_SEEN 1024

typedef struct {
    const char *engine;
    char url[512];
    /* per test */
    ems_store *s;
    ems_bus *bus;
    ems_outbox *o;
} fixture;

/* What the consumer saw: every call, and the acknowledged ones, by "seq". */
typedef struct {
    pthread_mutex_t mu;
    int calls[MAX_SEEN], ncalls;
    int acked[MAX_SEEN], nacked;
    int retry_seq; /* answer RETRY the first time this seq arrives (0: never) */
    int bad;       /* bodies without event_id / at, or not JSON */
} consumer;

static consumer seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
static char tmpdir[64];

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ems_verdict on_event(const char *queue, const char *body, size_t len, void *ctx) {
    (void)ctx;
    (void)len;
    json_error_t jerr;
    json_t *ev = json_loads(body, 0, &jerr);
    int seq = (int)json_integer_value(json_object_get(ev, "seq"));
    ems_verdict v = EMS_BUS_ACK;
    pthread_mutex_lock(&seen.mu);
    if (!ev || strcmp(queue, QUEUE) != 0 || !ems_uuid_valid(json_string_value(json_object_get(ev, "event_id"))) ||
        !json_is_integer(json_object_get(ev, "at")))
        seen.bad++;
    if (seen.ncalls < MAX_SEEN) seen.calls[seen.ncalls++] = seq;
    if (seq == seen.retry_seq) {
        seen.retry_seq = 0;
        v = EMS_BUS_RETRY;
    } else if (seen.nacked < MAX_SEEN) {
        seen.acked[seen.nacked++] = seq;
    }
    pthread_mutex_unlock(&seen.mu);
    json_decref(ev);
    return v;
}

static void seen_reset(void) {
    pthread_mutex_lock(&seen.mu);
    seen.ncalls = seen.nacked = seen.retry_seq = seen.bad = 0;
    pthread_mutex_unlock(&seen.mu);
}

static int seen_acked(void) {
    pthread_mutex_lock(&seen.mu);
    int n = seen.nacked;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

/* Waits until the outbox is empty; returns the number left. */
static long wait_drained(ems_outbox *o, long timeout_ms) {
    long left = ems_outbox_pending(o);
    for (long t = 0; left != 0 && t < timeout_ms; t += 20) {
        sleep_ms(20);
        left = ems_outbox_pending(o);
    }
    return left;
}

/* Adds events seq first..last in one transaction, committed or rolled back. */
static void add_events(ems_store *s, int first, int last, int commit) {
    ems_db *db = ems_store_get(s);
    assert_non_null(db);
    assert_int_equal(ems_db_begin(db), EMS_OK);
    for (int seq = first; seq <= last; seq++) {
        json_t *ev = json_pack("{s:s, s:i}", "type", commit ? "committed" : "rolled_back", "seq", seq);
        assert_int_equal(ems_outbox_add(db, QUEUE, ev), EMS_OK);
        json_decref(ev);
    }
    assert_int_equal(commit ? ems_db_commit(db) : ems_db_rollback(db), EMS_OK);
    ems_store_put(s, db);
}

static void assert_acked_in_order(int first, int last) {
    pthread_mutex_lock(&seen.mu);
    int n = seen.nacked, bad = seen.bad;
    int ok = n == last - first + 1;
    for (int i = 0; ok && i < n; i++) ok = seen.acked[i] == first + i;
    pthread_mutex_unlock(&seen.mu);
    assert_int_equal(bad, 0);
    assert_int_equal(n, last - first + 1);
    assert_true(ok);
}

/* ---- fixtures ------------------------------------------------------------ */

static fixture sqlite_fx = {.engine = "sqlite"};
static fixture pg_fx = {.engine = "postgres"};
static fx_pg pg_server;

static const char *const ddl[][2] = {
    /* sqlite, postgres */
    {"DROP TABLE IF EXISTS outbox", "DROP TABLE IF EXISTS outbox"},
    {"DROP TABLE IF EXISTS inbox", "DROP TABLE IF EXISTS inbox"},
    {"CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL, "
     "created_at BIGINT NOT NULL)",
     "CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL, "
     "created_at BIGINT NOT NULL)"},
    {"CREATE TABLE inbox (event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL)",
     "CREATE TABLE inbox (event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL)"},
};

/* Per test: fresh tables, a fresh in-process bus, a relay. */
static int setup_test(void **state) {
    fixture *fx = *state;
    char err[256];
    if (ems_store_open(fx->url, 4, &fx->s, err, sizeof err) != EMS_OK) return -1;
    ems_db *db = ems_store_get(fx->s);
    if (!db) return -1;
    int col = ems_store_engine_of(fx->s) == EMS_STORE_SQLITE ? 0 : 1;
    for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
        if (ems_db_exec(db, ddl[i][col], "") != EMS_OK) return -1;
    ems_store_put(fx->s, db);
    if (ems_bus_open("inproc:", &fx->bus, err, sizeof err) != EMS_OK) return -1;
    if (ems_bus_declare(fx->bus, QUEUE) != EMS_OK) return -1;
    if (ems_outbox_start(fx->s, fx->bus, &fx->o) != EMS_OK) return -1;
    seen_reset();
    return 0;
}

static int teardown_test(void **state) {
    fixture *fx = *state;
    ems_outbox_stop(fx->o);
    ems_bus_close(fx->bus);
    ems_store_close(fx->s);
    fx->o = NULL;
    fx->bus = NULL;
    fx->s = NULL;
    return 0;
}

static int make_tmpdir(void) {
    if (tmpdir[0]) return 0;
    return fx_tmpdir(tmpdir, sizeof tmpdir, "outbox") ? 0 : -1;
}

static int setup_sqlite(void **state) {
    if (make_tmpdir() != 0) return -1;
    snprintf(sqlite_fx.url, sizeof sqlite_fx.url, "sqlite:%s/outbox.db", tmpdir);
    *state = &sqlite_fx;
    return 0;
}

static int setup_pg(void **state) {
    *state = &pg_fx;
    if (fx_pg_start(&pg_server, "ems_outbox") != 0) return -1;
    snprintf(pg_fx.url, sizeof pg_fx.url, "%s", pg_server.url);
    return 0;
}

static int teardown_pg(void **state) {
    (void)state;
    fx_pg_stop(&pg_server);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_add_fills_ids(void **state) {
    fixture *fx = *state;
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_begin(db), EMS_OK);
    json_t *ev = json_pack("{s:s}", "type", "device.created");
    assert_int_equal(ems_outbox_add(db, QUEUE, ev), EMS_OK);
    assert_true(ems_uuid_valid(json_string_value(json_object_get(ev, "event_id"))));
    json_int_t at = json_integer_value(json_object_get(ev, "at"));
    assert_true(at > 1600000000000LL);
    /* present ones are kept */
    json_t *given = json_pack("{s:s, s:i}", "event_id", "given-id", "at", 5);
    assert_int_equal(ems_outbox_add(db, QUEUE, given), EMS_OK);
    assert_string_equal(json_string_value(json_object_get(given, "event_id")), "given-id");
    assert_int_equal(json_integer_value(json_object_get(given, "at")), 5);
    /* programming errors are refused and write nothing */
    json_t *arr = json_array();
    assert_int_equal(ems_outbox_add(db, QUEUE, arr), EMS_INTERNAL);
    assert_int_equal(ems_outbox_add(db, QUEUE, NULL), EMS_INTERNAL);
    assert_int_equal(ems_outbox_add(db, "", ev), EMS_INTERNAL);
    assert_int_equal(ems_outbox_add(db, "bad\nname", ev), EMS_INTERNAL);
    assert_int_equal(ems_outbox_add(NULL, QUEUE, ev), EMS_INTERNAL);
    assert_int_equal(ems_db_commit(db), EMS_OK);

    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, "SELECT queue, body, created_at FROM outbox ORDER BY id", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 2);
    assert_string_equal(ems_rows_text(r, 0, 0), QUEUE);
    json_t *stored = json_loads(ems_rows_text(r, 0, 1), 0, NULL);
    assert_true(json_equal(stored, ev));
    assert_true(ems_rows_int(r, 0, 2) >= at);
    json_decref(stored);
    ems_rows_free(r);
    ems_store_put(fx->s, db);
    json_decref(ev);
    json_decref(given);
    json_decref(arr);
    /* no consumer: nothing goes */
    assert_int_equal(ems_outbox_pending(fx->o), 2);
}

static void test_rolled_back_never_published(void **state) {
    fixture *fx = *state;
    assert_int_equal(ems_bus_consume(fx->bus, QUEUE, 0, on_event, NULL), EMS_OK);
    add_events(fx->s, 1001, 1003, 0);
    add_events(fx->s, 1, 5, 1);
    add_events(fx->s, 1004, 1006, 0);
    add_events(fx->s, 6, 7, 1);
    ems_outbox_kick(fx->o);
    assert_int_equal(wait_drained(fx->o, 5000), 0);
    sleep_ms(300);
    assert_acked_in_order(1, 7);
}

static void test_no_consumer_then_delivered(void **state) {
    fixture *fx = *state;
    add_events(fx->s, 1, 3, 1);
    ems_outbox_kick(fx->o);
    sleep_ms(400);
    assert_int_equal(ems_outbox_pending(fx->o), 3);
    assert_int_equal(seen_acked(), 0);
    add_events(fx->s, 4, 4, 1);

    assert_int_equal(ems_bus_consume(fx->bus, QUEUE, 0, on_event, NULL), EMS_OK);
    ems_outbox_kick(fx->o);
    assert_int_equal(wait_drained(fx->o, 5000), 0);
    sleep_ms(300);
    assert_acked_in_order(1, 4);
}

/* A consumer that says "retry" gets that event again, and nothing after it overtakes it. */
static void test_retry_keeps_order_and_count(void **state) {
    fixture *fx = *state;
    pthread_mutex_lock(&seen.mu);
    seen.retry_seq = 2;
    pthread_mutex_unlock(&seen.mu);
    assert_int_equal(ems_bus_consume(fx->bus, QUEUE, 0, on_event, NULL), EMS_OK);
    add_events(fx->s, 1, 3, 1);
    ems_outbox_kick(fx->o);
    assert_int_equal(wait_drained(fx->o, 5000), 0);
    /* the idle relay looks again (every second) and publishes nothing twice */
    sleep_ms(1300);
    assert_acked_in_order(1, 3);
    pthread_mutex_lock(&seen.mu);
    int calls[4] = {0};
    int ncalls = seen.ncalls;
    memcpy(calls, seen.calls, sizeof calls);
    pthread_mutex_unlock(&seen.mu);
    assert_int_equal(ncalls, 4);
    assert_int_equal(calls[0], 1);
    assert_int_equal(calls[1], 2);
    assert_int_equal(calls[2], 2);
    assert_int_equal(calls[3], 3);
}

/* More than one batch of the relay, in one transaction: all of them, in order. */
static void test_many_in_order(void **state) {
    fixture *fx = *state;
    assert_int_equal(ems_bus_consume(fx->bus, QUEUE, 0, on_event, NULL), EMS_OK);
    add_events(fx->s, 1, 250, 1);
    ems_outbox_kick(fx->o);
    assert_int_equal(wait_drained(fx->o, 10000), 0);
    assert_acked_in_order(1, 250);
}

static void test_inbox_dedups(void **state) {
    fixture *fx = *state;
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    char id[EMS_ID_LEN];
    ems_uuid(id);
    assert_int_equal(ems_inbox_first(db, id), EMS_OK);
    assert_int_equal(ems_inbox_first(db, id), EMS_CONFLICT);

    /* seen inside a transaction: the transaction goes on and commits (no error was raised) */
    assert_int_equal(ems_db_begin(db), EMS_OK);
    assert_int_equal(ems_inbox_first(db, id), EMS_CONFLICT);
    assert_int_equal(ems_inbox_first(db, "other-event"), EMS_OK);
    assert_int_equal(ems_db_commit(db), EMS_OK);
    assert_int_equal(ems_inbox_first(db, "other-event"), EMS_CONFLICT);

    /* recorded in a transaction that rolled back: not seen */
    assert_int_equal(ems_db_begin(db), EMS_OK);
    assert_int_equal(ems_inbox_first(db, "rolled-back"), EMS_OK);
    assert_int_equal(ems_db_rollback(db), EMS_OK);
    assert_int_equal(ems_inbox_first(db, "rolled-back"), EMS_OK);

    assert_int_equal(ems_inbox_first(db, NULL), EMS_BAD_REQUEST);
    assert_int_equal(ems_inbox_first(db, ""), EMS_BAD_REQUEST);
    assert_int_equal(ems_inbox_first(NULL, id), EMS_BAD_REQUEST);

    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, "SELECT COUNT(*) FROM inbox", ""), EMS_OK);
    assert_int_equal(ems_rows_int(r, 0, 0), 3);
    ems_rows_free(r);
    ems_store_put(fx->s, db);
}

/* Stopping does not wait for the back-off or the idle wait to run out. */
static void test_stop_is_prompt(void **state) {
    fixture *fx = *state;
    add_events(fx->s, 1, 1, 1);
    sleep_ms(1500); /* the relay is now several back-offs into a stall */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ems_outbox_stop(fx->o);
    fx->o = NULL;
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    assert_true(ms < 300);
    ems_outbox_stop(NULL);
    ems_outbox_kick(NULL);
    assert_int_equal(ems_outbox_pending(NULL), -1);
    /* the event is still there for the next start */
    ems_outbox *again = NULL;
    assert_int_equal(ems_outbox_start(fx->s, fx->bus, &again), EMS_OK);
    assert_int_equal(ems_outbox_pending(again), 1);
    assert_int_equal(ems_bus_consume(fx->bus, QUEUE, 0, on_event, NULL), EMS_OK);
    ems_outbox_kick(again);
    assert_int_equal(wait_drained(again, 5000), 0);
    ems_outbox_stop(again);
    assert_acked_in_order(1, 1);
}

#define TESTS                                                                                                          \
    {                                                                                                                  \
        cmocka_unit_test_setup_teardown(test_add_fills_ids, setup_test, teardown_test),                                \
            cmocka_unit_test_setup_teardown(test_rolled_back_never_published, setup_test, teardown_test),              \
            cmocka_unit_test_setup_teardown(test_no_consumer_then_delivered, setup_test, teardown_test),               \
            cmocka_unit_test_setup_teardown(test_retry_keeps_order_and_count, setup_test, teardown_test),              \
            cmocka_unit_test_setup_teardown(test_many_in_order, setup_test, teardown_test),                            \
            cmocka_unit_test_setup_teardown(test_inbox_dedups, setup_test, teardown_test),                             \
            cmocka_unit_test_setup_teardown(test_stop_is_prompt, setup_test, teardown_test),                           \
    }

int main(void) {
    const struct CMUnitTest tests[] = TESTS;
    int failed = cmocka_run_group_tests_name("outbox.sqlite", tests, setup_sqlite, NULL);
    failed += cmocka_run_group_tests_name("outbox.postgres", tests, setup_pg, teardown_pg);
    if (tmpdir[0]) fx_run("rm -rf %s", tmpdir);
    return failed ? 1 : 0;
}
