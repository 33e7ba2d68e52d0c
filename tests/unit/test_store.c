/*
 * test_store.c — the store against both engines.
 *
 * One battery of tests runs twice: against a SQLite file in a temporary
 * folder, and against a real PostgreSQL — a private server this test starts
 * with tests/lib/pg.sh on a free loopback port and stops at the end, or the
 * server named by EMS_TEST_PG_URL (then the stop/start test is skipped).
 * A third group checks the $N scanner on its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "store.h"
#include "store_impl.h"

typedef struct {
    const char *engine;
    char url[512];
    ems_store *s;
    char dir[256]; /* scratch folder for migration files */
} fixture;

static char tmpdir[128];

/* ---- helpers ------------------------------------------------------------ */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int64_t count_rows(ems_store *s, const char *sql) {
    ems_db *db = ems_store_get(s);
    assert_non_null(db);
    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, sql, ""), EMS_OK);
    int64_t n = ems_rows_int(r, 0, 0);
    ems_rows_free(r);
    ems_store_put(s, db);
    return n;
}

static void exec_ok(ems_store *s, const char *sql) {
    ems_db *db = ems_store_get(s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, sql, ""), EMS_OK);
    ems_store_put(s, db);
}

static const char *const test_tables[] = {"child",  "parent",           "tv", "mig_b", "mig_a", "mig_c", "mc",
                                          "pool_t", "schema_migrations"};

/* Each test starts from an empty database. */
static int reset(void **state) {
    fixture *fx = *state;
    ems_db *db = ems_store_get(fx->s);
    if (!db) return -1;
    for (size_t i = 0; i < sizeof test_tables / sizeof test_tables[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", test_tables[i]);
        if (ems_db_exec(db, sql, "") != EMS_OK) {
            ems_store_put(fx->s, db);
            return -1;
        }
    }
    ems_store_put(fx->s, db);
    return 0;
}

static void create_tv(ems_store *s) {
    exec_ok(s, "CREATE TABLE tv (id TEXT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, s TEXT)");
}

/* ---- fixtures ------------------------------------------------------------ */

static fixture sqlite_fx = {.engine = "sqlite"};
static fixture pg_fx = {.engine = "postgres"};
static fx_pg pg_server; /* dir empty: EMS_TEST_PG_URL's server, not ours to stop */

static int make_tmpdir(void) {
    if (tmpdir[0]) return 0;
    return fx_tmpdir(tmpdir, sizeof tmpdir, "store") ? 0 : -1;
}

static int open_fixture(fixture *fx) {
    char err[256] = "";
    snprintf(fx->dir, sizeof fx->dir, "%s/%s-mig", tmpdir, fx->engine);
    mkdir(fx->dir, 0755);
    if (ems_store_open(fx->url, 4, &fx->s, err, sizeof err) != EMS_OK) {
        fprintf(stderr, "cannot open %s store: %s\n", fx->engine, err);
        return -1;
    }
    return 0;
}

static int setup_sqlite(void **state) {
    if (make_tmpdir() != 0) return -1;
    snprintf(sqlite_fx.url, sizeof sqlite_fx.url, "sqlite:%s/test.db", tmpdir);
    *state = &sqlite_fx;
    return open_fixture(&sqlite_fx);
}

static int teardown_sqlite(void **state) {
    (void)state;
    ems_store_close(sqlite_fx.s);
    sqlite_fx.s = NULL;
    return 0;
}

static int setup_pg(void **state) {
    if (make_tmpdir() != 0) return -1;
    *state = &pg_fx;
    if (fx_pg_start(&pg_server, "ems_test") != 0) return -1;
    snprintf(pg_fx.url, sizeof pg_fx.url, "%s", pg_server.url);
    return open_fixture(&pg_fx);
}

static int teardown_pg(void **state) {
    (void)state;
    ems_store_close(pg_fx.s);
    pg_fx.s = NULL;
    fx_pg_stop(&pg_server);
    return 0;
}

/* ---- the battery ---------------------------------------------------------- */

static void test_engine_name(void **state) {
    fixture *fx = *state;
    assert_string_equal(ems_store_engine_name(fx->s), fx->engine);
    assert_int_equal(ems_store_engine_of(fx->s), strcmp(fx->engine, "sqlite") == 0 ? EMS_STORE_SQLITE : EMS_STORE_PG);
    assert_int_equal(ems_store_ping(fx->s), 1);
}

static void test_types_roundtrip(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    const char *unicode = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89";
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id, n, x, s) VALUES ($1, $2, $3, $4)", "sids", "a",
                                 (int64_t)INT64_MAX, 0.1, unicode),
                     EMS_OK);
    assert_int_equal(ems_db_changes(db), 1);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id, n, x, s) VALUES ($1, $2, $3, $4)", "sids", "b",
                                 (int64_t)INT64_MIN, -1.5e300, (const char *)NULL),
                     EMS_OK);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "c"), EMS_OK);

    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, "SELECT id, n, x, s FROM tv ORDER BY id", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 3);
    assert_int_equal(ems_rows_columns(r), 4);
    assert_string_equal(ems_rows_text(r, 0, 0), "a");
    assert_true(ems_rows_int(r, 0, 1) == INT64_MAX);
    assert_string_equal(ems_rows_text(r, 0, 1), "9223372036854775807");
    assert_true(ems_rows_double(r, 0, 2) == 0.1);
    assert_string_equal(ems_rows_text(r, 0, 3), unicode);
    assert_true(ems_rows_int(r, 1, 1) == INT64_MIN);
    assert_true(ems_rows_double(r, 1, 2) == -1.5e300);
    assert_true(ems_rows_null(r, 1, 3));
    assert_null(ems_rows_text(r, 1, 3));
    /* NULL numbers read as 0; out of range reads as NULL */
    assert_true(ems_rows_null(r, 2, 1));
    assert_int_equal(ems_rows_int(r, 2, 1), 0);
    assert_true(ems_rows_double(r, 2, 2) == 0.0);
    assert_false(ems_rows_null(r, 2, 0));
    assert_null(ems_rows_text(r, 3, 0));
    assert_null(ems_rows_text(r, 0, 4));
    assert_true(ems_rows_null(r, 9, 9));
    ems_rows_free(r);

    /* $N may appear in any order: $2 first must still bind the second argument */
    assert_int_equal(ems_db_query(db, &r, "SELECT id FROM tv WHERE n = $2 AND id = $1", "si", "a", (int64_t)INT64_MAX),
                     EMS_OK);
    assert_int_equal(ems_rows_count(r), 1);
    ems_rows_free(r);
    /* the same placeholder twice */
    assert_int_equal(ems_db_query(db, &r, "SELECT id FROM tv WHERE id = $1 OR s = $1", "s", unicode), EMS_OK);
    assert_int_equal(ems_rows_count(r), 1);
    assert_string_equal(ems_rows_text(r, 0, 0), "a");
    ems_rows_free(r);
    /* an empty result */
    assert_int_equal(ems_db_query(db, &r, "SELECT id FROM tv WHERE id = $1", "s", "nope"), EMS_OK);
    assert_int_equal(ems_rows_count(r), 0);
    assert_null(ems_rows_text(r, 0, 0));
    ems_rows_free(r);
    ems_rows_free(NULL);
    ems_store_put(fx->s, db);
}

static void test_values_stay_data(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    static const char *const evil[] = {
        "x'); DROP TABLE tv;--",
        "it's \"quoted\" $1 ?1 ?2 :a @b \\ %s %n",
        "/* not a comment */ -- nor this\n;",
        "$$ dollar $$",
        "E'\\''",
        "\x01\x7f",
    };
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "e%zu", i);
        assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id, s) VALUES ($1, $2)", "ss", id, evil[i]), EMS_OK);
    }
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        char id[8];
        snprintf(id, sizeof id, "e%zu", i);
        ems_rows *r = NULL;
        assert_int_equal(ems_db_query(db, &r, "SELECT s FROM tv WHERE id = $1", "s", id), EMS_OK);
        assert_int_equal(ems_rows_count(r), 1);
        assert_string_equal(ems_rows_text(r, 0, 0), evil[i]);
        ems_rows_free(r);
    }
    /* a value may be the whole WHERE clause an attacker hoped for: it matches nothing */
    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, "SELECT id FROM tv WHERE id = $1", "s", "x' OR '1'='1"), EMS_OK);
    assert_int_equal(ems_rows_count(r), 0);
    ems_rows_free(r);
    /* placeholders inside literals and comments are text, not parameters */
    assert_int_equal(ems_db_query(db, &r, "SELECT '$1 ?' || $1 -- and $2\n", "s", "x"), EMS_OK);
    assert_string_equal(ems_rows_text(r, 0, 0), "$1 ?x");
    ems_rows_free(r);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), sizeof evil / sizeof evil[0]);
}

static void test_unique_conflict(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "u"), EMS_OK);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "u"), EMS_CONFLICT);
    /* ON CONFLICT DO NOTHING is the portable way to insert-if-absent: no error, no change */
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", "s", "u"), EMS_OK);
    assert_int_equal(ems_db_changes(db), 0);
    /* the connection is still fine after the error */
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "v"), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 2);
}

static void test_fk_conflict(void **state) {
    fixture *fx = *state;
    exec_ok(fx->s, "CREATE TABLE parent (id TEXT PRIMARY KEY)");
    exec_ok(fx->s, "CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent (id))");
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, "INSERT INTO child (id, parent_id) VALUES ($1, $2)", "ss", "c1", "p1"),
                     EMS_CONFLICT);
    assert_int_equal(ems_db_exec(db, "INSERT INTO parent (id) VALUES ($1)", "s", "p1"), EMS_OK);
    assert_int_equal(ems_db_exec(db, "INSERT INTO child (id, parent_id) VALUES ($1, $2)", "ss", "c1", "p1"), EMS_OK);
    assert_int_equal(ems_db_exec(db, "DELETE FROM parent WHERE id = $1", "s", "p1"), EMS_CONFLICT);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM parent"), 1);
}

static void test_transactions(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    ems_db *a = ems_store_get(fx->s), *b = ems_store_get(fx->s);
    assert_non_null(a);
    assert_non_null(b);
    ems_rows *r = NULL;

    /* committed: visible to another connection, but only after the commit */
    assert_int_equal(ems_db_begin(a), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id, n) VALUES ($1, $2)", "si", "t1", (int64_t)1), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id, n) VALUES ($1, $2)", "si", "t2", (int64_t)1), EMS_OK);
    assert_int_equal(ems_db_query(b, &r, "SELECT id FROM tv", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 0);
    ems_rows_free(r);
    assert_int_equal(ems_db_commit(a), EMS_OK);
    assert_int_equal(ems_db_query(b, &r, "SELECT id FROM tv ORDER BY id", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 2);
    ems_rows_free(r);
    assert_int_equal(ems_db_exec(a, "UPDATE tv SET n = n + 1 WHERE n = $1", "i", (int64_t)1), EMS_OK);
    assert_int_equal(ems_db_changes(a), 2);

    /* rolled back: never visible */
    assert_int_equal(ems_db_begin(a), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id) VALUES ($1)", "s", "t3"), EMS_OK);
    assert_int_equal(ems_db_exec(a, "DELETE FROM tv WHERE id = $1", "s", "t1"), EMS_OK);
    assert_int_equal(ems_db_rollback(a), EMS_OK);
    assert_int_equal(ems_db_query(b, &r, "SELECT id FROM tv ORDER BY id", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 2);
    assert_string_equal(ems_rows_text(r, 0, 0), "t1");
    ems_rows_free(r);

    /* a failed statement dooms its transaction on both engines: commit rolls back and says so */
    assert_int_equal(ems_db_begin(a), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id) VALUES ($1)", "s", "t4"), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id) VALUES ($1)", "s", "t1"), EMS_CONFLICT);
    assert_int_not_equal(ems_db_commit(a), EMS_OK);
    assert_int_equal(ems_db_query(b, &r, "SELECT id FROM tv WHERE id = $1", "s", "t4"), EMS_OK);
    assert_int_equal(ems_rows_count(r), 0);
    ems_rows_free(r);
    /* and the connection is usable again */
    assert_int_equal(ems_db_begin(a), EMS_OK);
    assert_int_equal(ems_db_exec(a, "INSERT INTO tv (id) VALUES ($1)", "s", "t5"), EMS_OK);
    assert_int_equal(ems_db_commit(a), EMS_OK);

    ems_store_put(fx->s, a);
    ems_store_put(fx->s, b);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 3);
}

static void test_put_rolls_back(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_begin(db), EMS_OK);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "p1"), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 0);
    /* the connection comes back out of the transaction: BEGIN works, and it is not locked (SQLite) */
    ems_db *all[4];
    for (int i = 0; i < 4; i++) {
        all[i] = ems_store_get(fx->s);
        assert_non_null(all[i]);
        assert_int_equal(ems_db_begin(all[i]), EMS_OK);
        assert_int_equal(ems_db_rollback(all[i]), EMS_OK);
    }
    for (int i = 0; i < 4; i++) ems_store_put(fx->s, all[i]);
    /* a transaction started with a raw BEGIN is rolled back too */
    db = ems_store_get(fx->s);
    assert_int_equal(ems_db_exec(db, "BEGIN", ""), EMS_OK);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1)", "s", "p2"), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 0);
}

static void test_type_mismatch(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    const char *ins = "INSERT INTO tv (id, s) VALUES ($1, $2)";
    assert_int_equal(ems_db_exec(db, ins, "s", "m1"), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, ins, "sss", "m2", "x", "y"), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, ins, "sx", "m3", "x"), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, ins, NULL), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, ins, ""), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, "SELECT 1", "s", "extra"), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, "SELECT $0", ""), EMS_INTERNAL);
    ems_rows *r = NULL;
    assert_int_equal(ems_db_query(db, &r, "SELECT s FROM tv WHERE id = $1", "", "x"), EMS_INTERNAL);
    assert_null(r);
    assert_int_equal(ems_db_query(db, NULL, "SELECT 1", ""), EMS_INTERNAL);
    /* a statement that does not parse is an error too */
    assert_int_equal(ems_db_exec(db, "INSERT INTO nowhere VALUES ($1)", "s", "x"), EMS_INTERNAL);
    assert_int_equal(ems_db_exec(db, "SELEC 1", ""), EMS_INTERNAL);
    /* nothing was written, and the right call still works */
    assert_int_equal(ems_db_exec(db, ins, "ss", "ok", "x"), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 1);
    assert_int_equal(ems_db_exec(NULL, "SELECT 1", ""), EMS_INTERNAL);
}

static void test_one_statement_per_call(void **state) {
    fixture *fx = *state;
    create_tv(fx->s);
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ('m1'); DROP TABLE tv", ""), EMS_INTERNAL);
    /* a trailing semicolon or comment is fine */
    assert_int_equal(ems_db_exec(db, "INSERT INTO tv (id) VALUES ($1); -- done", "s", "m2"), EMS_OK);
    ems_store_put(fx->s, db);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv WHERE id = 'm1'"), 0);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 1);
}

static void test_migrations(void **state) {
    fixture *fx = *state;
    char dir[300], err[512];
    snprintf(dir, sizeof dir, "%s/m1", fx->dir);
    mkdir(dir, 0755);
    write_file(dir, "001_create.sql",
               "CREATE TABLE mig_a (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n"
               "INSERT INTO mig_a (id, v) VALUES (1, 'one');\n");
    /* 9 before 10: numeric order, not the order of the names */
    write_file(dir, "9_more.sql",
               "-- a comment with a ; and a $1\n"
               "CREATE TABLE mig_b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES mig_a (id));\n"
               "INSERT INTO mig_b (id, a_id) VALUES (10, 1);\n");
    write_file(dir, "10_after.sql", "INSERT INTO mig_b (id, a_id) VALUES (11, 1);\nUPDATE mig_a SET v = 'ten';\n");
    write_file(dir, "README.md", "not a migration");
    write_file(dir, "abc.sql", "this is not SQL and must be ignored");

    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_OK);
    ems_db *db = ems_store_get(fx->s);
    assert_non_null(db);
    ems_rows *r = NULL;
    assert_int_equal(
        ems_db_query(db, &r, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version", ""), EMS_OK);
    assert_int_equal(ems_rows_count(r), 3);
    assert_int_equal(ems_rows_int(r, 0, 0), 1);
    assert_int_equal(ems_rows_int(r, 1, 0), 9);
    assert_int_equal(ems_rows_int(r, 2, 0), 10);
    assert_string_equal(ems_rows_text(r, 1, 1), "9_more.sql");
    assert_true(ems_rows_int(r, 0, 2) > 1600000000000LL);
    int64_t applied_at = ems_rows_int(r, 2, 2);
    ems_rows_free(r);
    assert_int_equal(ems_db_query(db, &r, "SELECT v FROM mig_a WHERE id = 1", ""), EMS_OK);
    assert_string_equal(ems_rows_text(r, 0, 0), "ten");
    ems_rows_free(r);
    ems_store_put(fx->s, db);

    /* twice: nothing new */
    sleep_ms(5);
    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_OK);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM mig_b"), 2);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM schema_migrations"), 3);
    assert_int_equal(count_rows(fx->s, "SELECT applied_at FROM schema_migrations WHERE version = 10"), applied_at);

    /* a failing file: rolled back as a whole, reported by name with the engine's message */
    write_file(dir, "011_bad.sql", "CREATE TABLE mig_c (id INTEGER);\nINSERT INTO mig_nope (id) VALUES (1);\n");
    err[0] = '\0';
    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_INTERNAL);
    assert_non_null(strstr(err, "011_bad.sql"));
    assert_non_null(strstr(err, "mig_nope"));
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM schema_migrations"), 3);
    db = ems_store_get(fx->s);
    assert_int_equal(ems_db_query(db, &r, "SELECT id FROM mig_c", ""), EMS_INTERNAL);
    ems_store_put(fx->s, db);

    /* fixed, it applies */
    write_file(dir, "011_bad.sql", "CREATE TABLE mig_c (id INTEGER);\nINSERT INTO mig_c (id) VALUES (1);\n");
    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_OK);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM mig_c"), 1);
    assert_int_equal(count_rows(fx->s, "SELECT MAX(version) FROM schema_migrations"), 11);

    /* two files with one number, and a missing folder, are errors */
    write_file(dir, "011_twin.sql", "SELECT 1;");
    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_INTERNAL);
    assert_non_null(strstr(err, "011"));
    snprintf(dir, sizeof dir, "%s/none", fx->dir);
    assert_int_equal(ems_store_migrate(fx->s, dir, err, sizeof err), EMS_INTERNAL);
    assert_non_null(strstr(err, "none"));
}

typedef struct {
    const char *url;
    const char *dir;
    pthread_barrier_t *go;
    ems_rc rc;
} migrator;

static void *migrate_thread(void *arg) {
    migrator *m = arg;
    ems_store *s = NULL;
    char err[256];
    m->rc = ems_store_open(m->url, 2, &s, err, sizeof err);
    pthread_barrier_wait(m->go);
    if (m->rc == EMS_OK) m->rc = ems_store_migrate(s, m->dir, err, sizeof err);
    ems_store_close(s);
    return NULL;
}

/* Two processes of one role starting together: each file is applied once. */
static void test_migrations_concurrent(void **state) {
    fixture *fx = *state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/m2", fx->dir);
    mkdir(dir, 0755);
    write_file(dir, "001_mc.sql",
               "CREATE TABLE mc (id INTEGER NOT NULL, what TEXT);\nINSERT INTO mc VALUES (1, 'a');\n");
    write_file(dir, "002_mc.sql", "INSERT INTO mc VALUES (2, 'b');\n");
    write_file(dir, "003_mc.sql", "INSERT INTO mc VALUES (3, 'c');\n");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    migrator m[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        m[i] = (migrator){.url = fx->url, .dir = dir, .go = &go};
        pthread_create(&th[i], NULL, migrate_thread, &m[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < 4; i++) assert_int_equal(m[i].rc, EMS_OK);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM mc"), 3);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

typedef struct {
    ems_store *s;
    ems_db *got;
    volatile int done;
} getter;

static void *get_thread(void *arg) {
    getter *g = arg;
    g->got = ems_store_get(g->s);
    __atomic_store_n(&g->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct {
    ems_store *s;
    int id;
    int *in_use, *max_in_use;
    pthread_mutex_t *mu;
    int failures;
} worker;

static void *work_thread(void *arg) {
    worker *w = arg;
    for (int i = 0; i < 15; i++) {
        ems_db *db = ems_store_get(w->s);
        if (!db) {
            w->failures++;
            continue;
        }
        pthread_mutex_lock(w->mu);
        if (++*w->in_use > *w->max_in_use) *w->max_in_use = *w->in_use;
        pthread_mutex_unlock(w->mu);
        if (ems_db_exec(db, "INSERT INTO pool_t (worker, i) VALUES ($1, $2)", "ii", (int64_t)w->id, (int64_t)i) !=
            EMS_OK)
            w->failures++;
        sleep_ms(2);
        pthread_mutex_lock(w->mu);
        --*w->in_use;
        pthread_mutex_unlock(w->mu);
        ems_store_put(w->s, db);
    }
    return NULL;
}

static void test_pool_blocks(void **state) {
    fixture *fx = *state;
    exec_ok(fx->s, "CREATE TABLE pool_t (worker INTEGER NOT NULL, i INTEGER NOT NULL)");
    ems_store *s = NULL;
    char err[256];
    assert_int_equal(ems_store_open(fx->url, 2, &s, err, sizeof err), EMS_OK);

    /* with both connections out, a third get waits until one comes back */
    ems_db *a = ems_store_get(s), *b = ems_store_get(s);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    getter g = {.s = s};
    pthread_t th;
    pthread_create(&th, NULL, get_thread, &g);
    sleep_ms(200);
    assert_int_equal(__atomic_load_n(&g.done, __ATOMIC_SEQ_CST), 0);
    ems_store_put(s, a);
    pthread_join(th, NULL);
    assert_ptr_equal(g.got, a);
    ems_store_put(s, g.got);
    ems_store_put(s, b);

    /* more threads than connections: each connection serves one thread at a time, all work gets done */
    enum { NTHREADS = 6 };
    int in_use = 0, max_in_use = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    worker w[NTHREADS];
    pthread_t ths[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.s = s, .id = i, .in_use = &in_use, .max_in_use = &max_in_use, .mu = &mu};
        pthread_create(&ths[i], NULL, work_thread, &w[i]);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(ths[i], NULL);
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(w[i].failures, 0);
    assert_int_equal(max_in_use, 2);
    ems_store_close(s);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM pool_t"), NTHREADS * 15);
}

static void test_bad_urls(void **state) {
    (void)state;
    ems_store *s = (ems_store *)0x1;
    char err[256] = "";
    assert_int_equal(ems_store_open("mysql://x", 1, &s, err, sizeof err), EMS_BAD_REQUEST);
    assert_ptr_equal(s, (ems_store *)0x1);
    assert_true(err[0] != '\0');
    assert_int_equal(ems_store_open("sqlite:", 1, &s, err, sizeof err), EMS_BAD_REQUEST);
    assert_int_equal(ems_store_open("postgresql://u@h:notaport/db?bogus=1", 1, &s, err, sizeof err), EMS_BAD_REQUEST);
    assert_int_equal(ems_store_open("sqlite:/nonexistent-dir/x/y.db", 1, &s, err, sizeof err), EMS_INTERNAL);
    assert_non_null(strstr(err, "/nonexistent-dir/x/y.db"));
    ems_store_close(NULL);
    ems_store_put(NULL, NULL);
    assert_null(ems_store_get(NULL));
}

/* The server goes away and comes back: callers see EMS_UNAVAILABLE, then it just works again. */
static void test_pg_down_up(void **state) {
    fixture *fx = *state;
    if (strcmp(fx->engine, "postgres") != 0 || !pg_server.dir[0]) skip();
    create_tv(fx->s);
    ems_store *s = NULL;
    char err[256];
    assert_int_equal(ems_store_open(fx->url, 2, &s, err, sizeof err), EMS_OK);
    ems_db *db = ems_store_get(s);
    assert_non_null(db);
    const char *ins = "INSERT INTO tv (id, n) VALUES ($1, $2)";
    assert_int_equal(ems_db_exec(db, ins, "si", "before", (int64_t)1), EMS_OK);
    /* leave one connection of the fixture idle and connected, to be found dead later */
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 1);

    assert_int_equal(fx_pg_down(&pg_server), 0);
    assert_int_equal(ems_db_exec(db, ins, "si", "during", (int64_t)2), EMS_UNAVAILABLE);
    assert_int_equal(ems_db_exec(db, ins, "si", "during", (int64_t)2), EMS_UNAVAILABLE);
    ems_store_put(s, db);
    assert_int_equal(ems_store_ping(s), 0);
    assert_null(ems_store_get(s));
    /* a store opens while the server is down */
    ems_store *late = NULL;
    assert_int_equal(ems_store_open(fx->url, 1, &late, err, sizeof err), EMS_OK);
    assert_int_equal(ems_store_ping(late), 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/m2", fx->dir);
    assert_int_equal(ems_store_migrate(late, dir, err, sizeof err), EMS_UNAVAILABLE);

    assert_int_equal(fx_pg_up(&pg_server), 0);
    assert_int_equal(ems_store_ping(s), 1);
    assert_int_equal(ems_store_ping(late), 1);
    db = ems_store_get(s);
    assert_non_null(db);
    /* the statement is prepared again on the new session */
    assert_int_equal(ems_db_exec(db, ins, "si", "after", (int64_t)3), EMS_OK);
    ems_store_put(s, db);
    ems_store_close(s);
    ems_store_close(late);
    /* connections that sat idle through the restart are re-made on get, not failed */
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv"), 2);
    assert_int_equal(count_rows(fx->s, "SELECT COUNT(*) FROM tv WHERE id = 'after'"), 1);
}

/* ---- the scanner ------------------------------------------------------------ */

static void test_placeholder_scan(void **state) {
    (void)state;
    const char *sql = "SELECT $1, '$2 it''s', \"$3\", $$ $4 $$, $q$ $5 $q$, E'\\' $6', -- $7\n"
                      "/* $8 /* $9 */ $10 */ $2, x$11";
    char out[256];
    assert_int_equal(ems_sql_placeholders(sql, out), 2);
    assert_string_equal(out, "SELECT ?1, '$2 it''s', \"$3\", $$ $4 $$, $q$ $5 $q$, E'\\' $6', -- $7\n"
                             "/* $8 /* $9 */ $10 */ ?2, x$11");
    assert_int_equal(ems_sql_placeholders("SELECT 1", NULL), 0);
    assert_int_equal(ems_sql_placeholders("VALUES ($12, $3)", NULL), 12);
    assert_int_equal(ems_sql_placeholders("SELECT $0", NULL), -1);
    assert_int_equal(ems_sql_placeholders("SELECT $99999999999999999999", NULL), -1);
    assert_int_equal(ems_sql_placeholders("SELECT 'unterminated $1", NULL), 0);
    assert_int_equal(ems_sql_placeholders("SELECT $", NULL), 0);
}

#define BATTERY(setup_fn)                                                                                              \
    {                                                                                                                  \
        cmocka_unit_test_setup(test_engine_name, setup_fn), cmocka_unit_test_setup(test_types_roundtrip, setup_fn),    \
            cmocka_unit_test_setup(test_values_stay_data, setup_fn),                                                   \
            cmocka_unit_test_setup(test_unique_conflict, setup_fn),                                                    \
            cmocka_unit_test_setup(test_fk_conflict, setup_fn), cmocka_unit_test_setup(test_transactions, setup_fn),   \
            cmocka_unit_test_setup(test_put_rolls_back, setup_fn),                                                     \
            cmocka_unit_test_setup(test_type_mismatch, setup_fn),                                                      \
            cmocka_unit_test_setup(test_one_statement_per_call, setup_fn),                                             \
            cmocka_unit_test_setup(test_migrations, setup_fn),                                                         \
            cmocka_unit_test_setup(test_migrations_concurrent, setup_fn),                                              \
            cmocka_unit_test_setup(test_pool_blocks, setup_fn), cmocka_unit_test_setup(test_pg_down_up, setup_fn),     \
    }

int main(void) {
    const struct CMUnitTest battery[] = BATTERY(reset);
    const struct CMUnitTest scanner[] = {
        cmocka_unit_test(test_placeholder_scan),
        cmocka_unit_test(test_bad_urls),
    };
    int failed = cmocka_run_group_tests_name("scanner", scanner, NULL, NULL);
    failed += cmocka_run_group_tests_name("sqlite", battery, setup_sqlite, teardown_sqlite);
    failed += cmocka_run_group_tests_name("postgres", battery, setup_pg, teardown_pg);
    if (tmpdir[0]) fx_run("rm -rf %s", tmpdir);
    return failed ? 1 : 0;
}
