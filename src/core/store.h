/*
 * store.h — one storage interface over SQLite and PostgreSQL.
 *
 * An ems_store is a pool of connections to one database; a thread takes a
 * connection (ems_db) with ems_store_get, uses it, and gives it back with
 * ems_store_put.  All SQL goes through prepared statements, cached per
 * connection; nothing is ever formatted into SQL text.
 *
 * Placeholders are written $1, $2, ... for both engines.  Arguments are
 * described by a type string, one letter per placeholder:
 *   's'  const char *   (NULL binds SQL NULL)
 *   'i'  int64_t
 *   'd'  double
 * e.g. ems_db_exec(db, "UPDATE devices SET name=$1 WHERE id=$2", "ss", name, id).
 *
 * Conventions for portable schemas: ids are TEXT (UUIDs), times are BIGINT
 * epoch milliseconds (UTC), flags are INTEGER 0/1, money-like values are
 * DOUBLE PRECISION / REAL.  Both engines accept INSERT ... ON CONFLICT and
 * RETURNING.
 *
 * Errors: a unique or foreign-key violation is EMS_CONFLICT; a lost or
 * refused connection is EMS_UNAVAILABLE; anything else is EMS_INTERNAL and
 * is logged with the engine's message.
 */
#ifndef EMS_STORE_H
#define EMS_STORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"

typedef enum { EMS_STORE_SQLITE, EMS_STORE_PG } ems_store_engine;

typedef struct ems_store ems_store;
typedef struct ems_db ems_db;
typedef struct ems_rows ems_rows;

/*
 * Opens a pool of `pool` connections (0 = 4).
 *   "sqlite:/path/file.db"  — WAL, synchronous=NORMAL, foreign keys on, busy timeout
 *   "postgresql://user:pass@host:port/dbname" (or "postgres://...")
 * A PostgreSQL store opens even while the server is down (connections are
 * made on demand and re-made after a failure); ems_store_ping tells.
 */
ems_rc ems_store_open(const char *url, unsigned pool, ems_store **out, char *err, size_t errlen);
void ems_store_close(ems_store *s); /* accepts NULL */
ems_store_engine ems_store_engine_of(const ems_store *s);
/* "sqlite" or "postgres": the folder name of the engine's migrations. */
const char *ems_store_engine_name(const ems_store *s);

/*
 * Applies the migrations in `dir` (files NNN_name.sql, in order of NNN)
 * that the table schema_migrations does not list yet, each file in its own
 * transaction.  A file may hold several statements.
 */
ems_rc ems_store_migrate(ems_store *s, const char *dir, char *err, size_t errlen);

/* 1 if the database answers now. */
int ems_store_ping(ems_store *s);

/* Takes a connection (waits while all are in use); NULL if the database is unreachable. */
ems_db *ems_store_get(ems_store *s);
/* Gives it back; a connection left inside a transaction is rolled back first. */
void ems_store_put(ems_store *s, ems_db *db);

ems_rc ems_db_exec(ems_db *db, const char *sql, const char *types, ...);
ems_rc ems_db_query(ems_db *db, ems_rows **out, const char *sql, const char *types, ...);
/* The same with a va_list, for helpers that forward their own arguments. */
ems_rc ems_db_vexec(ems_db *db, const char *sql, const char *types, va_list ap);
/* Rows changed by the last ems_db_exec. */
int64_t ems_db_changes(ems_db *db);

ems_rc ems_db_begin(ems_db *db); /* SQLite: BEGIN IMMEDIATE */
ems_rc ems_db_commit(ems_db *db);
ems_rc ems_db_rollback(ems_db *db);

size_t ems_rows_count(const ems_rows *r);
size_t ems_rows_columns(const ems_rows *r);
/* NULL for SQL NULL or out of range. */
const char *ems_rows_text(const ems_rows *r, size_t row, size_t col);
int64_t ems_rows_int(const ems_rows *r, size_t row, size_t col);   /* 0 for NULL */
double ems_rows_double(const ems_rows *r, size_t row, size_t col); /* 0 for NULL */
int ems_rows_null(const ems_rows *r, size_t row, size_t col);
void ems_rows_free(ems_rows *r); /* accepts NULL */

#endif
