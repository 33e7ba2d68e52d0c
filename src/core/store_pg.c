/*
 * store_pg.c — the PostgreSQL engine of the store, over libpq.
 *
 * Connections are made on first use, not at ems_store_open, so that a role
 * starts (and answers /readyz with 503) while its database is still down.
 * A connection that fails — an error of class 08 or 57P, a result-less
 * call, or a socket the server closed while the connection sat in the
 * pool — is marked bad; the call that saw it returns EMS_UNAVAILABLE and
 * the next use connects afresh.  Prepared statements live on the server's
 * session, so a new connection starts with an empty statement cache and
 * prepares again on demand.
 *
 * Statements are prepared with PQprepare under generated names s1, s2, ...
 * and run with PQexecPrepared with text parameters; results come back as
 * text and are copied into an ems_rows.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_impl.h"

#define CONNECT_TIMEOUT_S "3"
/* Arguments formatted on the stack; longer lists go to the heap. */
#define STACK_PARAMS 16

/* SQLSTATE prefixes that mean something to callers; anything else is EMS_INTERNAL. */
static const struct {
    const char *prefix;
    ems_rc rc;
} sqlstate_map[] = {
    {"23505", EMS_CONFLICT},    /* unique_violation */
    {"23503", EMS_CONFLICT},    /* foreign_key_violation */
    {"08", EMS_UNAVAILABLE},    /* connection exceptions */
    {"57P", EMS_UNAVAILABLE},   /* server shutting down, starting up, crashed */
    {"53300", EMS_UNAVAILABLE}, /* too many connections */
};

/* Maps a result (or its absence) to a code, marks the connection bad when it is gone, logs. */
static ems_rc check(ems_db *db, PGresult *res, const char *sql, char *err, size_t errlen) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return EMS_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    ems_rc rc = EMS_INTERNAL;
    for (size_t i = 0; state && i < sizeof sqlstate_map / sizeof sqlstate_map[0]; i++) {
        if (strncmp(state, sqlstate_map[i].prefix, strlen(sqlstate_map[i].prefix)) == 0) {
            rc = sqlstate_map[i].rc;
            break;
        }
    }
    if (!res || PQstatus(db->conn) != CONNECTION_OK) rc = EMS_UNAVAILABLE;
    if (rc == EMS_UNAVAILABLE) db->bad = 1;

    char msg[256], head[96];
    const char *text = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!text && res && *PQresultErrorMessage(res)) text = PQresultErrorMessage(res);
    ems_store_clean_msg(msg, sizeof msg, text ? text : PQerrorMessage(db->conn));
    ems_store_clean_msg(head, sizeof head, sql);
    ems_log_level level = rc == EMS_CONFLICT ? EMS_LOG_DEBUG : rc == EMS_UNAVAILABLE ? EMS_LOG_WARN : EMS_LOG_ERROR;
    ems_log(level, "store.error", "engine=postgres sqlstate=%s error=\"%s\" sql=\"%s\"", state ? state : "none", msg,
            head);
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return rc;
}

/* Notices ("relation already exists, skipping") would go to stderr unformatted. */
static void drop_notice(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

/*
 * 1 if an idle connection still works.  A server that shut down has sent a
 * FATAL message and closed the socket; reading what is pending (without
 * blocking: libpq's sockets are non-blocking) makes libpq notice.
 */
static int still_alive(PGconn *c) {
    for (int i = 0; i < 2 && PQstatus(c) == CONNECTION_OK; i++) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0) break;
        if (!PQconsumeInput(c)) return 0;
        (void)PQisBusy(c); /* parses what arrived, e.g. the FATAL notice */
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) PQfreemem(n);
    }
    return PQstatus(c) == CONNECTION_OK;
}

static ems_rc pg_connect(ems_db *db, char *err, size_t errlen) {
    if (db->conn && !db->bad && still_alive(db->conn)) return EMS_OK;
    if (db->conn) {
        PQfinish(db->conn);
        db->conn = NULL;
        ems_db_forget_statements(db);
    }
    db->bad = 1;
    /* connect_timeout first: a value in the URL (expanded from dbname) overrides it. */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const values[] = {CONNECT_TIMEOUT_S, db->store->target, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (!c) return EMS_NOMEM;
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        ems_store_clean_msg(msg, sizeof msg, PQerrorMessage(c));
        ems_log(EMS_LOG_WARN, "store.connect_failed", "engine=postgres error=\"%s\"", msg);
        if (err && errlen) snprintf(err, errlen, "%s", msg);
        PQfinish(c);
        return EMS_UNAVAILABLE;
    }
    PQsetNoticeProcessor(c, drop_notice, NULL);
    db->conn = c;
    db->bad = 0;
    db->in_tx = 0;
    return EMS_OK;
}

/* Checks the URL now, so that a typo fails at start-up rather than on every use. */
static ems_rc pg_open(ems_store *s, char *err, size_t errlen) {
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(s->target, &msg);
    if (!opts) {
        char clean[256];
        ems_store_clean_msg(clean, sizeof clean, msg ? msg : "out of memory");
        if (err && errlen) snprintf(err, errlen, "bad PostgreSQL URL: %s", clean);
        PQfreemem(msg);
        return EMS_BAD_REQUEST;
    }
    PQconninfoFree(opts);
    return EMS_OK;
}

static void pg_disconnect(ems_db *db) {
    PQfinish(db->conn);
    db->conn = NULL;
}

static ems_rc pg_prepare(ems_db *db, const char *sql, int nparams, void **handle) {
    char name[32];
    snprintf(name, sizeof name, "s%lu", ++db->next_name);
    PGresult *res = PQprepare(db->conn, name, sql, nparams, NULL);
    ems_rc rc = check(db, res, sql, NULL, 0);
    PQclear(res);
    if (rc != EMS_OK) return rc;
    *handle = strdup(name);
    return *handle ? EMS_OK : EMS_NOMEM;
}

/* The cache is dropped while the session lives on: drop the server's statements too. */
static void pg_forget(ems_db *db) {
    if (!db->conn || db->bad || PQtransactionStatus(db->conn) != PQTRANS_IDLE) return;
    PQclear(PQexec(db->conn, "DEALLOCATE ALL"));
}

static void pg_finalize(ems_db *db, void *handle) {
    (void)db;
    free(handle);
}

static ems_rc to_rows(PGresult *res, ems_rows **out) {
    size_t nrows = (size_t)PQntuples(res), ncols = (size_t)PQnfields(res), bytes = 1;
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) bytes += (size_t)PQgetlength(res, (int)r, (int)c) + 1;
    ems_rows *rows = ems_rows_new(ncols, nrows, bytes);
    if (!rows) return EMS_NOMEM;
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            int null = PQgetisnull(res, (int)r, (int)c);
            ems_rc rc = ems_rows_push(rows, null ? EMS_CELL_NULL : EMS_CELL_TEXT, PQgetvalue(res, (int)r, (int)c),
                                      (size_t)PQgetlength(res, (int)r, (int)c), 0, 0);
            if (rc != EMS_OK) {
                ems_rows_free(rows);
                return rc;
            }
        }
        ems_rows_end_row(rows);
    }
    *out = rows;
    return EMS_OK;
}

static ems_rc pg_run(ems_db *db, const ems_stmt *st, const ems_param *p, size_t n, ems_rows **out) {
    const char *stack_values[STACK_PARAMS];
    char stack_nums[STACK_PARAMS][32];
    const char **values = stack_values;
    char(*nums)[32] = stack_nums;
    ems_rc rc = EMS_OK;
    PGresult *res = NULL;
    if (n > STACK_PARAMS) {
        values = calloc(n, sizeof *values);
        nums = calloc(n, sizeof *nums);
        if (!values || !nums) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (p[k].type == 'i') {
            snprintf(nums[k], sizeof nums[k], "%" PRId64, p[k].i);
            values[k] = nums[k];
        } else if (p[k].type == 'd') {
            snprintf(nums[k], sizeof nums[k], "%.17g", p[k].d);
            values[k] = nums[k];
        } else {
            values[k] = p[k].s;
        }
    }
    res = PQexecPrepared(db->conn, st->handle, (int)n, values, NULL, NULL, 0);
    rc = check(db, res, st->sql, NULL, 0);
    if (rc != EMS_OK) goto cleanup;
    db->changes = strtoll(PQcmdTuples(res), NULL, 10);
    if (out) rc = to_rows(res, out);

cleanup:
    PQclear(res);
    if (values != stack_values) free(values);
    if (nums != stack_nums) free(nums);
    return rc;
}

static ems_rc pg_script(ems_db *db, const char *sql, char *err, size_t errlen) {
    PGresult *res = PQexec(db->conn, sql);
    ems_rc rc = check(db, res, "(script)", err, errlen);
    PQclear(res);
    return rc;
}

static int pg_in_tx(ems_db *db) {
    if (!db->conn) return 0;
    PGTransactionStatusType t = PQtransactionStatus(db->conn);
    return t == PQTRANS_INERROR ? 2 : t == PQTRANS_INTRANS || t == PQTRANS_ACTIVE;
}

const ems_driver ems_pg_driver = {
    .name = "postgres",
    .engine = EMS_STORE_PG,
    .begin_sql = "BEGIN",
    /* Serializes concurrent starts of one role: the second waits, then sees the file applied. */
    .migrate_lock_sql = "SELECT pg_advisory_xact_lock(4542803)",
    .open = pg_open,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .prepare = pg_prepare,
    .forget = pg_forget,
    .finalize = pg_finalize,
    .run = pg_run,
    .script = pg_script,
    .in_tx = pg_in_tx,
};
