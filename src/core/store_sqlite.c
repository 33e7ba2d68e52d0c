/*
 * store_sqlite.c — the SQLite engine of the store.
 *
 * Every connection of the pool opens the same file in WAL mode with
 * synchronous=NORMAL (a commit survives a crash of the process; a power cut
 * may lose the last commits but never corrupts the file), foreign keys on
 * and a 5 s busy timeout, so that writers of several connections queue up
 * instead of failing.  Connections are opened without SQLite's own mutex:
 * the pool already guarantees one thread per connection.
 *
 * Statements are prepared once per connection with SQLITE_PREPARE_PERSISTENT
 * after their $N placeholders were rewritten to ?N; SQLite would otherwise
 * read $1 as a *named* parameter numbered by order of appearance.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define BUSY_TIMEOUT_MS 5000

/* Extended codes first, then primary codes; anything else is EMS_INTERNAL. */
static const struct {
    int code;
    ems_rc rc;
} error_map[] = {
    {SQLITE_CONSTRAINT_UNIQUE, EMS_CONFLICT},
    {SQLITE_CONSTRAINT_PRIMARYKEY, EMS_CONFLICT},
    {SQLITE_CONSTRAINT_FOREIGNKEY, EMS_CONFLICT},
    {SQLITE_BUSY, EMS_UNAVAILABLE},
    {SQLITE_LOCKED, EMS_UNAVAILABLE},
    {SQLITE_NOMEM, EMS_NOMEM},
};

static ems_rc map_code(int code) {
    for (size_t i = 0; i < sizeof error_map / sizeof error_map[0]; i++)
        if (error_map[i].code == code) return error_map[i].rc;
    for (size_t i = 0; i < sizeof error_map / sizeof error_map[0]; i++)
        if (error_map[i].code == (code & 0xff)) return error_map[i].rc;
    return EMS_INTERNAL;
}

/* Maps an engine error and logs it: conflicts are expected (debug), the rest are not. */
static ems_rc report(sqlite3 *conn, int code, const char *sql) {
    ems_rc rc = map_code(code);
    char msg[256], head[96];
    ems_store_clean_msg(msg, sizeof msg, conn ? sqlite3_errmsg(conn) : sqlite3_errstr(code));
    ems_store_clean_msg(head, sizeof head, sql);
    ems_log(rc == EMS_CONFLICT ? EMS_LOG_DEBUG : EMS_LOG_ERROR, "store.error",
            "engine=sqlite code=%d error=\"%s\" sql=\"%s\"", code, msg, head);
    return rc;
}

static ems_rc sqlite_connect(ems_db *db, char *err, size_t errlen) {
    if (db->conn) return EMS_OK;
    sqlite3 *conn = NULL;
    const char *path = db->store->target;
    int code = sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (code == SQLITE_OK) {
        sqlite3_extended_result_codes(conn, 1);
        sqlite3_busy_timeout(conn, BUSY_TIMEOUT_MS);
        code = sqlite3_exec(conn, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", NULL,
                            NULL, NULL);
    }
    if (code != SQLITE_OK) {
        char msg[256];
        ems_store_clean_msg(msg, sizeof msg, conn ? sqlite3_errmsg(conn) : sqlite3_errstr(code));
        ems_log(EMS_LOG_ERROR, "store.open_failed", "engine=sqlite path=\"%s\" error=\"%s\"", path, msg);
        if (err && errlen) snprintf(err, errlen, "cannot open %s: %s", path, msg);
        sqlite3_close_v2(conn);
        return EMS_INTERNAL;
    }
    db->conn = conn;
    db->bad = 0;
    return EMS_OK;
}

static ems_rc sqlite_open(ems_store *s, char *err, size_t errlen) {
    for (size_t i = 0; i < s->size; i++) {
        ems_rc rc = sqlite_connect(&s->dbs[i], err, errlen);
        if (rc != EMS_OK) return rc;
    }
    return EMS_OK;
}

static void sqlite_disconnect(ems_db *db) {
    sqlite3_close_v2(db->conn);
    db->conn = NULL;
}

/* 1 if `tail` (what follows the first statement) holds another statement. */
static int more_statements(sqlite3 *conn, const char *tail) {
    tail += strspn(tail, " \t\r\n;");
    if (!*tail) return 0;
    sqlite3_stmt *next = NULL;
    int code = sqlite3_prepare_v2(conn, tail, -1, &next, NULL);
    int more = code != SQLITE_OK || next != NULL;
    sqlite3_finalize(next);
    return more;
}

static ems_rc sqlite_prepare(ems_db *db, const char *sql, int nparams, void **handle) {
    (void)nparams;
    size_t len = strlen(sql);
    char *text = malloc(len + 1);
    if (!text) return EMS_NOMEM;
    ems_sql_placeholders(sql, text);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    ems_rc rc = EMS_OK;
    int code = sqlite3_prepare_v3(db->conn, text, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (code != SQLITE_OK) {
        rc = report(db->conn, code, sql);
    } else if (!st || more_statements(db->conn, tail)) {
        char head[96];
        ems_store_clean_msg(head, sizeof head, sql);
        ems_log(EMS_LOG_ERROR, "store.error", "engine=sqlite error=\"expected exactly one statement\" sql=\"%s\"",
                head);
        rc = EMS_INTERNAL;
    }
    if (rc == EMS_OK) *handle = st;
    else sqlite3_finalize(st);
    free(text);
    return rc;
}

static void sqlite_finalize(ems_db *db, void *handle) {
    (void)db;
    sqlite3_finalize(handle);
}

static int bind_all(sqlite3_stmt *st, const ems_param *p, size_t n) {
    int code = SQLITE_OK;
    for (size_t k = 0; k < n && code == SQLITE_OK; k++) {
        int idx = (int)k + 1;
        if (p[k].type == 'i') code = sqlite3_bind_int64(st, idx, p[k].i);
        else if (p[k].type == 'd') code = sqlite3_bind_double(st, idx, p[k].d);
        else if (p[k].s) code = sqlite3_bind_text(st, idx, p[k].s, -1, SQLITE_STATIC);
        else code = sqlite3_bind_null(st, idx);
    }
    return code;
}

static ems_rc push_row(ems_rows *rows, sqlite3_stmt *st) {
    ems_rc rc = EMS_OK;
    int ncols = sqlite3_column_count(st);
    for (int c = 0; c < ncols && rc == EMS_OK; c++) {
        int type = sqlite3_column_type(st, c);
        if (type == SQLITE_NULL) {
            rc = ems_rows_push(rows, EMS_CELL_NULL, NULL, 0, 0, 0);
        } else if (type == SQLITE_INTEGER) {
            char num[24];
            int64_t v = sqlite3_column_int64(st, c);
            int len = snprintf(num, sizeof num, "%lld", (long long)v);
            rc = ems_rows_push(rows, EMS_CELL_INT, num, (size_t)len, v, (double)v);
        } else if (type == SQLITE_FLOAT) {
            double v = sqlite3_column_double(st, c);
            const char *text = (const char *)sqlite3_column_text(st, c);
            rc = ems_rows_push(rows, EMS_CELL_DOUBLE, text, (size_t)sqlite3_column_bytes(st, c), 0, v);
        } else {
            const char *text =
                type == SQLITE_BLOB ? sqlite3_column_blob(st, c) : (const char *)sqlite3_column_text(st, c);
            rc = ems_rows_push(rows, EMS_CELL_TEXT, text ? text : "", (size_t)sqlite3_column_bytes(st, c), 0, 0);
        }
    }
    if (rc == EMS_OK) ems_rows_end_row(rows);
    return rc;
}

static ems_rc sqlite_run(ems_db *db, const ems_stmt *stmt, const ems_param *p, size_t n, ems_rows **out) {
    sqlite3_stmt *st = stmt->handle;
    ems_rows *rows = NULL;
    ems_rc rc = EMS_OK;
    int code = bind_all(st, p, n);
    if (code != SQLITE_OK) {
        rc = report(db->conn, code, stmt->sql);
        goto cleanup;
    }
    if (out) {
        rows = ems_rows_new((size_t)sqlite3_column_count(st), 0, 0);
        if (!rows) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
    }
    while ((code = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows && (rc = push_row(rows, st)) != EMS_OK) goto cleanup;
    }
    if (code != SQLITE_DONE) {
        rc = report(db->conn, code, stmt->sql);
        goto cleanup;
    }
    db->changes = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes64(db->conn);

cleanup:
    /* Unbind too: SQLITE_STATIC pointers are only valid during this call. */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == EMS_OK && out) {
        *out = rows;
        rows = NULL;
    }
    ems_rows_free(rows);
    return rc;
}

static ems_rc sqlite_script(ems_db *db, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    int code = sqlite3_exec(db->conn, sql, NULL, NULL, &msg);
    if (code == SQLITE_OK) return EMS_OK;
    if (err && errlen) ems_store_clean_msg(err, errlen, msg ? msg : sqlite3_errstr(code));
    sqlite3_free(msg);
    return map_code(code);
}

static int sqlite_in_tx(ems_db *db) { return db->conn && !sqlite3_get_autocommit(db->conn); }

const ems_driver ems_sqlite_driver = {
    .name = "sqlite",
    .engine = EMS_STORE_SQLITE,
    .begin_sql = "BEGIN IMMEDIATE",
    .migrate_lock_sql = NULL,
    .open = sqlite_open,
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .prepare = sqlite_prepare,
    .forget = NULL,
    .finalize = sqlite_finalize,
    .run = sqlite_run,
    .script = sqlite_script,
    .in_tx = sqlite_in_tx,
};
