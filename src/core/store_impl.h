/*
 * store_impl.h — what store.c shares with its engine drivers (private).
 *
 * store.c owns everything common to both engines: the pool, the per-
 * connection cache of prepared statements (keyed by the SQL text as the
 * caller wrote it), the count of $N placeholders, the decoding of the
 * variadic arguments into an ems_param array, the transaction flag and the
 * materialized result set.  A driver (store_sqlite.c, store_pg.c) only
 * connects, prepares, runs a prepared statement with already-decoded
 * parameters, and runs trusted multi-statement scripts (migrations).
 *
 * Threading: an ems_db is used by one thread at a time (the pool hands it
 * out), so nothing in a driver locks.
 */
#ifndef EMS_STORE_IMPL_H
#define EMS_STORE_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* One decoded argument: type is 's', 'i' or 'd'; s == NULL binds SQL NULL. */
typedef struct ems_param {
    char type;
    const char *s;
    int64_t i;
    double d;
} ems_param;

typedef struct ems_driver ems_driver;

/* One cached prepared statement: the driver's handle and its placeholder count. */
typedef struct ems_stmt {
    char *sql; /* the caller's text, the cache key; NULL = empty slot */
    uint64_t hash;
    void *handle;
    int nparams;
} ems_stmt;

struct ems_db {
    ems_store *store;
    void *conn;    /* sqlite3 * or PGconn *; NULL until connected */
    int bad;       /* the connection failed: re-made on the next use */
    int in_tx;     /* inside ems_db_begin .. commit/rollback */
    int tx_failed; /* a statement failed inside it: commit will roll back */
    int64_t changes;
    ems_stmt *stmts; /* open-addressing table, power-of-two size */
    size_t nstmts, stmt_cap;
    unsigned long next_name; /* PostgreSQL: statement names s1, s2, ... */
};

struct ems_store {
    const ems_driver *drv;
    char *target; /* SQLite: the file path; PostgreSQL: the connection URL */
    ems_db *dbs;
    ems_db **idle; /* stack of connections not in use */
    size_t size, nidle;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct ems_driver {
    const char *name; /* "sqlite" / "postgres" */
    ems_store_engine engine;
    const char *begin_sql;
    /* Run first inside each migration transaction; NULL if the engine's BEGIN already serializes. */
    const char *migrate_lock_sql;
    /* Called once by ems_store_open: checks the target, connects now if the engine is local. */
    ems_rc (*open)(ems_store *s, char *err, size_t errlen);
    /* Connects db if it is not, or re-makes a bad or dropped connection. */
    ems_rc (*connect)(ems_db *db, char *err, size_t errlen);
    void (*disconnect)(ems_db *db);
    ems_rc (*prepare)(ems_db *db, const char *sql, int nparams, void **handle);
    /* Called before every handle of db is finalized at once (may be NULL). */
    void (*forget)(ems_db *db);
    void (*finalize)(ems_db *db, void *handle);
    /* Runs a prepared statement; fills *out when out is not NULL; sets db->changes. */
    ems_rc (*run)(ems_db *db, const ems_stmt *st, const ems_param *p, size_t n, ems_rows **out);
    /* Runs trusted SQL holding several statements; the engine's message goes to err. */
    ems_rc (*script)(ems_db *db, const char *sql, char *err, size_t errlen);
    /* 0: no transaction open on db; 1: one is open; 2: one is open but failed (PostgreSQL). */
    int (*in_tx)(ems_db *db);
};

extern const ems_driver ems_sqlite_driver;
extern const ems_driver ems_pg_driver;

/*
 * Scans sql for $N placeholders outside quoted strings, quoted identifiers,
 * comments and PostgreSQL dollar-quoted bodies; returns the largest N (0 if
 * none), or -1 if a number is out of range.  If `rewrite` is not NULL (a
 * buffer as long as sql plus its NUL) it receives sql with each such '$'
 * turned into '?', SQLite's ?N form.
 */
int ems_sql_placeholders(const char *sql, char *rewrite);

/* Drops every cached statement of db (after a reconnect, or when the cache is full). */
void ems_db_forget_statements(ems_db *db);

/* Copies an engine message into dst on one line (newlines become spaces, double quotes single ones). */
void ems_store_clean_msg(char *dst, size_t n, const char *src);

/* Building a result set: rows are filled cell by cell, left to right. */
enum { EMS_CELL_NULL, EMS_CELL_TEXT, EMS_CELL_INT, EMS_CELL_DOUBLE };
ems_rows *ems_rows_new(size_t ncols, size_t rows_hint, size_t bytes_hint);
/* text/len: the value as text (ignored for NULL); i/d: the native value for INT/DOUBLE. */
ems_rc ems_rows_push(ems_rows *r, int kind, const char *text, size_t len, int64_t i, double d);
void ems_rows_end_row(ems_rows *r);

#endif
