/*
 * test_consume.c — consume-once: an event is applied once, in one
 * transaction with its inbox entry, and the verdict follows one mapping.
 *
 * The consumer under test writes one row per application into `effects`
 * (no key: a second application would show as a second row) and answers
 * what the test tells it to.  Every test runs on SQLite (a temporary file)
 * and again on PostgreSQL (a private server started with tests/lib/pg.sh,
 * or EMS_TEST_PG_URL).  A failed commit is a real one: a deferred foreign
 * key that only COMMIT checks, on both engines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consume.h"
#include "fixture.h"
#include "log.h"
#include "store.h"

#define QUEUE "internal.test.consume.queue"
#define EV1 "{\"event_id\":\"e1\",\"type\":\"t.done\",\"n\":1}"

typedef struct {
    const char *engine;
    char url[512];
    ems_store *s; /* per test */
} fixture;

/* The consumer: what it is told to do, and what it did. */
typedef struct {
    ems_rc answer;   /* apply's result, after its write */
    ems_rc check_rc; /* check's result */
    int orphan;      /* apply also adds a child without a parent: COMMIT fails */
    int checks, applies, commits;
    ems_rc applied; /* what apply last returned */
} probe;

static char tmpdir[64];

static ems_rc probe_check(json_t *ev, void *arg) {
    probe *p = arg;
    (void)ev;
    p->checks++;
    return p->check_rc;
}

static ems_rc probe_apply(ems_db *db, json_t *ev, void *arg) {
    probe *p = arg;
    p->applies++;
    const char *id = json_string_value(json_object_get(ev, "event_id"));
    ems_rc rc = ems_db_exec(db, "INSERT INTO effects (event_id) VALUES ($1)", "s", id);
    if (!rc && p->orphan) rc = ems_db_exec(db, "INSERT INTO children (id, parent_id) VALUES ($1, 'nobody')", "s", id);
    p->applied = rc ? rc : p->answer;
    return p->applied;
}

static void probe_committed(json_t *ev, void *arg) {
    probe *p = arg;
    (void)ev;
    p->commits++;
}

static const ems_consumer probe_consumer = {
    .check = probe_check, .apply = probe_apply, .after_commit = probe_committed};

static ems_verdict deliver(fixture *fx, const char *body, probe *p) {
    return ems_consume_once(fx->s, &probe_consumer, QUEUE, body, strlen(body), p);
}

static int64_t count_rows(fixture *fx, const char *sql) {
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, sql, ""), EMS_OK);
    int64_t n = ems_rows_int(r, 0, 0);
    ems_rows_free(r);
    ems_store_put(fx->s, db);
    return n;
}

static fx_capture captured;

static void capture_start(void) { assert_int_equal(fx_capture_start(&captured), 0); }

/* Restores stderr; returns how many lines since capture_start hold `needle`. */
static int capture_count(const char *needle) {
    char *text = fx_capture_end(&captured), *save = NULL;
    assert_non_null(text);
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strstr(line, needle)) n++;
    free(text);
    return n;
}

/* ---- fixtures ------------------------------------------------------------ */

static fixture sqlite_fx = {.engine = "sqlite"};
static fixture pg_fx = {.engine = "postgres"};
static fx_pg pg_server;

/* The same DDL on both engines. */
static const char *const ddl[] = {
    "DROP TABLE IF EXISTS inbox",
    "DROP TABLE IF EXISTS effects",
    "DROP TABLE IF EXISTS children",
    "DROP TABLE IF EXISTS parents",
    "CREATE TABLE inbox (event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL)",
    "CREATE TABLE effects (event_id TEXT NOT NULL)",
    "CREATE TABLE parents (id TEXT PRIMARY KEY)",
    "CREATE TABLE children (id TEXT PRIMARY KEY, "
    "parent_id TEXT NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
};

static int setup_test(void **state) {
    fixture *fx = *state;
    char err[256];
    if (ems_store_open(fx->url, 2, &fx->s, err, sizeof err) != EMS_OK) return -1;
    ems_db *db = ems_store_get(fx->s);
    if (!db) return -1;
    for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
        if (ems_db_exec(db, ddl[i], "") != EMS_OK) return -1;
    ems_store_put(fx->s, db);
    return 0;
}

static int teardown_test(void **state) {
    fixture *fx = *state;
    ems_store_close(fx->s);
    fx->s = NULL;
    return 0;
}

static int setup_sqlite(void **state) {
    snprintf(sqlite_fx.url, sizeof sqlite_fx.url, "sqlite:%s/consume.db", tmpdir);
    *state = &sqlite_fx;
    return 0;
}

static int setup_pg(void **state) {
    *state = &pg_fx;
    if (fx_pg_start(&pg_server, "ems_consume") != 0) return -1;
    snprintf(pg_fx.url, sizeof pg_fx.url, "%s", pg_server.url);
    return 0;
}

static int teardown_pg(void **state) {
    (void)state;
    fx_pg_stop(&pg_server);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

/* Redelivered, the event is acknowledged again and applied once; after_commit runs once. */
static void test_duplicate_applied_once(void **state) {
    fixture *fx = *state;
    probe p = {0};
    for (int i = 0; i < 3; i++) assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_ACK);
    assert_int_equal(p.applies, 1);
    assert_int_equal(p.commits, 1);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects WHERE event_id = 'e1'"), 1);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 1);
    /* Another event is another application. */
    assert_int_equal(deliver(fx, "{\"event_id\":\"e2\"}", &p), EMS_BUS_ACK);
    assert_int_equal(p.applies, 2);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects"), 2);
}

/* A body that is not an event is dead-lettered, logged once, and never reaches the role or the database. */
static void test_malformed_rejected_nothing_written(void **state) {
    fixture *fx = *state;
    const char *bad[] = {"",
                         "not json",
                         "[1,2]",
                         "\"e1\"",
                         "{}",
                         "{\"event_id\":5}",
                         "{\"event_id\":\"\"}",
                         "{\"event_id\":null,\"type\":\"t\"}",
                         "{\"event_id\":\"e1\"",
                         "{\"event_id\":\"e1\"} trailing"};
    size_t n = sizeof bad / sizeof bad[0];
    probe p = {0};
    capture_start();
    for (size_t i = 0; i < n; i++) assert_int_equal(deliver(fx, bad[i], &p), EMS_BUS_REJECT);
    assert_int_equal(capture_count("event=consume.rejected queue=" QUEUE " reason="), (int)n);
    assert_int_equal(p.checks + p.applies + p.commits, 0);

    /* The role's check refuses it: still before any transaction. */
    p.check_rc = EMS_BAD_REQUEST;
    capture_start();
    assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_REJECT);
    assert_int_equal(capture_count("reason=bad_request event_id=e1 type=t.done"), 1);
    assert_int_equal(p.checks, 1);
    assert_int_equal(p.applies + p.commits, 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects"), 0);
}

/* An apply that finds the event invalid: dead letter, and its write and the inbox entry rolled back. */
static void test_apply_bad_request_rejected_rolled_back(void **state) {
    fixture *fx = *state;
    ems_rc invalid[] = {EMS_BAD_REQUEST, EMS_NOT_FOUND};
    for (size_t i = 0; i < 2; i++) {
        probe p = {.answer = invalid[i]};
        capture_start();
        assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_REJECT);
        assert_int_equal(capture_count("event=consume.rejected"), 1);
        assert_int_equal(p.applies, 1);
        assert_int_equal(p.commits, 0);
        assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects"), 0);
        assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 0);
    }
}

/* A passing failure: retry with everything rolled back; the redelivery applies it, once. */
static void test_apply_unavailable_retried_then_applied_once(void **state) {
    fixture *fx = *state;
    ems_rc passing[] = {EMS_UNAVAILABLE, EMS_AGAIN, EMS_NOMEM, EMS_INTERNAL, EMS_CONFLICT};
    probe p = {0};
    capture_start();
    for (size_t i = 0; i < sizeof passing / sizeof passing[0]; i++) {
        p.answer = passing[i];
        assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_RETRY);
        assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects"), 0);
        assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 0);
    }
    assert_int_equal(capture_count("event=consume.rejected"), 0);
    assert_int_equal(p.commits, 0);
    p.answer = EMS_OK;
    assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_ACK);
    assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_ACK);
    assert_int_equal(p.applies, 6);
    assert_int_equal(p.commits, 1);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects WHERE event_id = 'e1'"), 1);
    /* A check that fails for now is retried too. */
    p.check_rc = EMS_NOMEM;
    assert_int_equal(deliver(fx, "{\"event_id\":\"e2\"}", &p), EMS_BUS_RETRY);
    assert_int_equal(p.applies, 6);
}

/* COMMIT refuses (a deferred foreign key): retry, nothing kept, no after_commit; later it goes through. */
static void test_commit_failure_retried(void **state) {
    fixture *fx = *state;
    probe p = {.orphan = 1};
    assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_RETRY);
    assert_int_equal(p.applies, 1);
    assert_int_equal(p.applied, EMS_OK); /* so it was COMMIT that failed */
    assert_int_equal(p.commits, 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM effects"), 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM children"), 0);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 0);
    /* The connection went back clean: the parent arrives and the redelivery commits. */
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, "INSERT INTO parents (id) VALUES ('nobody')", ""), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(deliver(fx, EV1, &p), EMS_BUS_ACK);
    assert_int_equal(p.commits, 1);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM children"), 1);
    assert_int_equal(count_rows(fx, "SELECT COUNT(*) FROM inbox"), 1);
}

/* Without a database nothing is lost: retry. */
static void test_no_connection_retried(void **state) {
    (void)state;
    char err[256];
    ems_store *gone = NULL;
    assert_int_equal(ems_store_open("postgresql://postgres@127.0.0.1:1/none", 1, &gone, err, sizeof err), EMS_OK);
    probe p = {0};
    assert_int_equal(ems_consume_once(gone, &probe_consumer, QUEUE, EV1, strlen(EV1), &p), EMS_BUS_RETRY);
    assert_int_equal(p.checks, 1);
    assert_int_equal(p.applies, 0);
    /* ... but a malformed message needs no database to be dead-lettered. */
    capture_start();
    assert_int_equal(ems_consume_once(gone, &probe_consumer, QUEUE, "nope", 4, &p), EMS_BUS_REJECT);
    assert_int_equal(capture_count("reason=not_json"), 1);
    ems_store_close(gone);
}

/* The one mapping, code by code. */
static void test_verdict_mapping(void **state) {
    (void)state;
    for (int rc = 0; rc < EMS_RC_COUNT; rc++) {
        ems_verdict want = EMS_BUS_RETRY;
        if (rc == EMS_OK) want = EMS_BUS_ACK;
        else if (rc == EMS_BAD_REQUEST || rc == EMS_UNAUTHORIZED || rc == EMS_FORBIDDEN || rc == EMS_NOT_FOUND ||
                 rc == EMS_METHOD || rc == EMS_TOO_LARGE || rc == EMS_UNSUPPORTED || rc == EMS_DECLINED)
            want = EMS_BUS_REJECT;
        assert_int_equal(ems_consume_verdict((ems_rc)rc), want);
    }
}

#define TESTS                                                                                                          \
    {                                                                                                                  \
        cmocka_unit_test_setup_teardown(test_duplicate_applied_once, setup_test, teardown_test),                       \
            cmocka_unit_test_setup_teardown(test_malformed_rejected_nothing_written, setup_test, teardown_test),       \
            cmocka_unit_test_setup_teardown(test_apply_bad_request_rejected_rolled_back, setup_test, teardown_test),   \
            cmocka_unit_test_setup_teardown(test_apply_unavailable_retried_then_applied_once, setup_test,              \
                                            teardown_test),                                                            \
            cmocka_unit_test_setup_teardown(test_commit_failure_retried, setup_test, teardown_test),                   \
    }

int main(void) {
    if (!fx_tmpdir(tmpdir, sizeof tmpdir, "consume")) return 1;
    ems_log_set_rate(0, 0); /* every rejected line is counted */
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_verdict_mapping),
        cmocka_unit_test(test_no_connection_retried),
    };
    const struct CMUnitTest tests[] = TESTS;
    int failed = cmocka_run_group_tests_name("consume", common, NULL, NULL);
    failed += cmocka_run_group_tests_name("consume.sqlite", tests, setup_sqlite, NULL);
    failed += cmocka_run_group_tests_name("consume.postgres", tests, setup_pg, teardown_pg);
    fx_run("rm -rf %s", tmpdir);
    return failed ? 1 : 0;
}
