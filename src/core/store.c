/*
 * store.c — the engine-independent half of the storage layer.
 *
 * It owns the pool (a stack of idle connections behind a mutex and a
 * condition variable), the cache of prepared statements of each connection,
 * the $N placeholder scanner shared by both engines, the decoding of the
 * type string and variadic arguments, transactions, migrations and the
 * materialized result sets.  The engines plug in through the ems_driver
 * table of store_impl.h; nothing here knows SQLite or libpq.
 */
#include "store_impl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"

/* Largest $N accepted: PostgreSQL's protocol limit on parameters. */
#define MAX_PLACEHOLDER 65535
/* Statements cached per connection before the cache is emptied and refilled. */
#define STMT_CACHE_MAX 512
/* Arguments decoded on the stack; longer lists go to the heap. */
#define STACK_PARAMS 16

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void ems_store_clean_msg(char *dst, size_t n, const char *src) {
    if (n == 0) return;
    size_t j = 0;
    for (const char *p = src ? src : ""; *p && j + 1 < n; p++)
        dst[j++] = (char)(*p == '"' ? '\'' : (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p);
    while (j > 0 && dst[j - 1] == ' ') j--;
    dst[j] = '\0';
}

/* The first characters of a statement, on one line, for log lines. */
static void sql_head(char *dst, size_t n, const char *sql) { ems_store_clean_msg(dst, n, sql); }

/* ---- placeholders ------------------------------------------------------- */

static int ident_char(int c) { return isalnum(c) || c == '_' || c == '$' || (c & 0x80); }

/* Skips a quoted run starting at s[0] == q; returns the index after the closing quote. */
static size_t skip_quoted(const char *s, char q, int backslash_escapes) {
    size_t i = 1;
    while (s[i]) {
        if (backslash_escapes && s[i] == '\\' && s[i + 1]) {
            i += 2;
        } else if (s[i] == q) {
            if (s[i + 1] != q) return i + 1;
            i += 2; /* doubled quote: part of the text */
        } else {
            i++;
        }
    }
    return i;
}

/* Skips a possibly nested block comment starting at "/ *". */
static size_t skip_block_comment(const char *s) {
    size_t i = 2;
    int depth = 1;
    while (s[i] && depth > 0) {
        if (s[i] == '/' && s[i + 1] == '*') {
            depth++;
            i += 2;
        } else if (s[i] == '*' && s[i + 1] == '/') {
            depth--;
            i += 2;
        } else {
            i++;
        }
    }
    return i;
}

/* If s starts a dollar-quoted body ($tag$ ... $tag$), returns its length, else 0. */
static size_t skip_dollar_quoted(const char *s) {
    size_t t = 1;
    while (isalnum((unsigned char)s[t]) || s[t] == '_') t++;
    if (s[t] != '$') return 0;
    if (t > 1 && isdigit((unsigned char)s[1])) return 0;
    size_t taglen = t + 1;
    const char *end = s + taglen;
    while ((end = strchr(end, '$')) != NULL) {
        if (strncmp(end, s, taglen) == 0) return (size_t)(end - s) + taglen;
        end++;
    }
    return strlen(s);
}

int ems_sql_placeholders(const char *sql, char *rewrite) {
    size_t len = strlen(sql);
    if (rewrite) memcpy(rewrite, sql, len + 1);
    int max = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];
        int prev_ident = i > 0 && ident_char((unsigned char)sql[i - 1]);
        if (c == '\'') {
            int esc =
                i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && !(i > 1 && ident_char((unsigned char)sql[i - 2]));
            i += skip_quoted(sql + i, '\'', esc);
        } else if (c == '"') {
            i += skip_quoted(sql + i, '"', 0);
        } else if (c == '-' && sql[i + 1] == '-') {
            const char *nl = strchr(sql + i, '\n');
            i = nl ? (size_t)(nl - sql) + 1 : len;
        } else if (c == '/' && sql[i + 1] == '*') {
            i += skip_block_comment(sql + i);
        } else if (c == '$' && !prev_ident && isdigit((unsigned char)sql[i + 1])) {
            long n = 0;
            size_t j = i + 1;
            while (isdigit((unsigned char)sql[j])) {
                if (n <= MAX_PLACEHOLDER) n = n * 10 + (sql[j] - '0');
                j++;
            }
            if (n < 1 || n > MAX_PLACEHOLDER) return -1;
            if (n > max) max = (int)n;
            if (rewrite) rewrite[i] = '?';
            i = j;
        } else if (c == '$' && !prev_ident) {
            size_t skip = skip_dollar_quoted(sql + i);
            i += skip ? skip : 1;
        } else {
            i++;
        }
    }
    return max;
}

/* ---- statement cache ---------------------------------------------------- */

static uint64_t hash_sql(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void ems_db_forget_statements(ems_db *db) {
    if (db->nstmts && db->store->drv->forget) db->store->drv->forget(db);
    for (size_t i = 0; i < db->stmt_cap; i++) {
        ems_stmt *st = &db->stmts[i];
        if (!st->sql) continue;
        db->store->drv->finalize(db, st->handle);
        free(st->sql);
    }
    free(db->stmts);
    db->stmts = NULL;
    db->nstmts = db->stmt_cap = 0;
}

static ems_stmt *stmt_slot(ems_stmt *tab, size_t cap, const char *sql, uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (tab[i].sql && !(tab[i].hash == h && strcmp(tab[i].sql, sql) == 0)) i = (i + 1) & (cap - 1);
    return &tab[i];
}

static ems_rc stmt_grow(ems_db *db) {
    size_t cap = db->stmt_cap ? db->stmt_cap * 2 : 32;
    ems_stmt *tab = calloc(cap, sizeof *tab);
    if (!tab) return EMS_NOMEM;
    for (size_t i = 0; i < db->stmt_cap; i++)
        if (db->stmts[i].sql) *stmt_slot(tab, cap, db->stmts[i].sql, db->stmts[i].hash) = db->stmts[i];
    free(db->stmts);
    db->stmts = tab;
    db->stmt_cap = cap;
    return EMS_OK;
}

/* Finds the prepared statement for sql, preparing it on first use. */
static ems_rc stmt_get(ems_db *db, const char *sql, ems_stmt **out) {
    uint64_t h = hash_sql(sql);
    if (db->stmt_cap) {
        ems_stmt *st = stmt_slot(db->stmts, db->stmt_cap, sql, h);
        if (st->sql) {
            *out = st;
            return EMS_OK;
        }
    }
    int nparams = ems_sql_placeholders(sql, NULL);
    if (nparams < 0) {
        char head[96];
        sql_head(head, sizeof head, sql);
        ems_log(EMS_LOG_ERROR, "store.bad_placeholder", "sql=\"%s\"", head);
        return EMS_INTERNAL;
    }
    /* Statements come from the code, so the cache only overflows when SQL is generated. */
    if (db->nstmts >= STMT_CACHE_MAX) ems_db_forget_statements(db);
    if ((db->nstmts + 1) * 2 > db->stmt_cap) {
        ems_rc rc = stmt_grow(db);
        if (rc != EMS_OK) return rc;
    }
    char *key = strdup(sql);
    if (!key) return EMS_NOMEM;
    void *handle = NULL;
    ems_rc rc = db->store->drv->prepare(db, sql, nparams, &handle);
    if (rc != EMS_OK) {
        free(key);
        return rc;
    }
    ems_stmt *st = stmt_slot(db->stmts, db->stmt_cap, sql, h);
    st->sql = key;
    st->hash = h;
    st->handle = handle;
    st->nparams = nparams;
    db->nstmts++;
    *out = st;
    return EMS_OK;
}

/* ---- running statements ------------------------------------------------- */

/* Makes a failed connection usable again, unless a transaction was lost with it. */
static ems_rc db_usable(ems_db *db) {
    if (!db->bad && db->conn) return EMS_OK;
    if (db->in_tx) return EMS_UNAVAILABLE;
    return db->store->drv->connect(db, NULL, 0);
}

static int types_valid(const char *types) {
    for (const char *t = types; *t; t++)
        if (!strchr("sid", *t)) return 0;
    return 1;
}

static ems_rc db_run(ems_db *db, ems_rows **out, const char *sql, const char *types, va_list ap) {
    if (!db || !sql) return EMS_INTERNAL;
    if (!types) types = "";
    char head[96];
    if (!types_valid(types)) {
        sql_head(head, sizeof head, sql);
        ems_log(EMS_LOG_ERROR, "store.bad_types", "types=\"%s\" sql=\"%s\"", types, head);
        return EMS_INTERNAL;
    }
    ems_rc rc = db_usable(db);
    if (rc != EMS_OK) return rc;
    ems_stmt *st = NULL;
    rc = stmt_get(db, sql, &st);
    if (rc != EMS_OK) return rc;
    size_t n = strlen(types);
    if (n != (size_t)st->nparams) {
        sql_head(head, sizeof head, sql);
        ems_log(EMS_LOG_ERROR, "store.bad_types", "types=\"%s\" placeholders=%d sql=\"%s\"", types, st->nparams, head);
        return EMS_INTERNAL;
    }
    ems_param stack[STACK_PARAMS];
    ems_param *p = n <= STACK_PARAMS ? stack : calloc(n, sizeof *p);
    if (!p) return EMS_NOMEM;
    for (size_t k = 0; k < n; k++) {
        p[k] = (ems_param){.type = types[k]};
        if (types[k] == 's') p[k].s = va_arg(ap, const char *);
        else if (types[k] == 'i') p[k].i = va_arg(ap, int64_t);
        else p[k].d = va_arg(ap, double);
    }
    rc = db->store->drv->run(db, st, p, n, out);
    if (p != stack) free(p);
    /*
     * PostgreSQL aborts a transaction at its first failed statement; SQLite
     * would carry on.  Both engines follow PostgreSQL's rule, so that code
     * written against one cannot depend on the other's leniency.
     */
    if (rc != EMS_OK && db->in_tx) db->tx_failed = 1;
    return rc;
}

ems_rc ems_db_exec(ems_db *db, const char *sql, const char *types, ...) {
    va_list ap;
    va_start(ap, types);
    ems_rc rc = db_run(db, NULL, sql, types, ap);
    va_end(ap);
    return rc;
}

ems_rc ems_db_vexec(ems_db *db, const char *sql, const char *types, va_list ap) {
    return db_run(db, NULL, sql, types, ap);
}

ems_rc ems_db_query(ems_db *db, ems_rows **out, const char *sql, const char *types, ...) {
    if (!out) return EMS_INTERNAL;
    ems_rows *rows = NULL;
    va_list ap;
    va_start(ap, types);
    ems_rc rc = db_run(db, &rows, sql, types, ap);
    va_end(ap);
    if (rc == EMS_OK) *out = rows;
    else ems_rows_free(rows);
    return rc;
}

int64_t ems_db_changes(ems_db *db) { return db ? db->changes : 0; }

static ems_rc db_simple(ems_db *db, const char *sql) { return ems_db_exec(db, sql, ""); }

ems_rc ems_db_begin(ems_db *db) {
    if (!db) return EMS_INTERNAL;
    ems_rc rc = db_simple(db, db->store->drv->begin_sql);
    if (rc == EMS_OK) {
        db->in_tx = 1;
        db->tx_failed = 0;
    }
    return rc;
}

ems_rc ems_db_commit(ems_db *db) {
    if (!db) return EMS_INTERNAL;
    if (db->bad) {
        db->in_tx = 0; /* the server dropped the transaction with the connection */
        return EMS_UNAVAILABLE;
    }
    /* PostgreSQL turns COMMIT of a failed transaction into a silent ROLLBACK: say so. */
    if (db->tx_failed || db->store->drv->in_tx(db) == 2) {
        ems_log(EMS_LOG_WARN, "store.commit_failed_tx", "engine=%s", db->store->drv->name);
        ems_db_rollback(db);
        return EMS_INTERNAL;
    }
    ems_rc rc = db_simple(db, "COMMIT");
    db->in_tx = !db->bad && db->store->drv->in_tx(db) != 0;
    db->tx_failed = 0;
    return rc;
}

ems_rc ems_db_rollback(ems_db *db) {
    if (!db) return EMS_INTERNAL;
    ems_rc rc = EMS_OK;
    /* A lost connection's transaction is rolled back by the server already. */
    if (!db->bad && db->conn && db->store->drv->in_tx(db)) rc = db_simple(db, "ROLLBACK");
    db->in_tx = 0;
    db->tx_failed = 0;
    return rc;
}

/* ---- the pool ----------------------------------------------------------- */

static const struct {
    const char *prefix;
    int keep_prefix; /* libpq takes the whole URL; SQLite only the path */
    const ems_driver *drv;
} url_schemes[] = {
    {"sqlite:", 0, &ems_sqlite_driver},
    {"postgresql://", 1, &ems_pg_driver},
    {"postgres://", 1, &ems_pg_driver},
};

ems_rc ems_store_open(const char *url, unsigned pool, ems_store **out, char *err, size_t errlen) {
    const ems_driver *drv = NULL;
    const char *target = NULL;
    for (size_t i = 0; url && i < sizeof url_schemes / sizeof url_schemes[0]; i++) {
        size_t n = strlen(url_schemes[i].prefix);
        if (strncmp(url, url_schemes[i].prefix, n) == 0) {
            drv = url_schemes[i].drv;
            target = url_schemes[i].keep_prefix ? url : url + n;
            break;
        }
    }
    if (!drv || !*target) {
        set_err(err, errlen, "unknown store URL: expected sqlite:<path> or postgresql://...");
        return EMS_BAD_REQUEST;
    }
    if (pool == 0) pool = 4;
    /* Each connection to ":memory:" would be a database of its own. */
    if (drv->engine == EMS_STORE_SQLITE && strcmp(target, ":memory:") == 0) pool = 1;

    ems_rc rc = EMS_NOMEM;
    ems_store *s = calloc(1, sizeof *s);
    if (!s) goto fail;
    s->drv = drv;
    s->size = pool;
    s->target = strdup(target);
    s->dbs = calloc(pool, sizeof *s->dbs);
    s->idle = calloc(pool, sizeof(ems_db *));
    if (!s->target || !s->dbs || !s->idle) goto fail;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (size_t i = 0; i < pool; i++) {
        s->dbs[i].store = s;
        s->idle[s->nidle++] = &s->dbs[pool - 1 - i];
    }
    rc = drv->open(s, err, errlen);
    if (rc != EMS_OK) {
        ems_store_close(s);
        return rc;
    }
    *out = s;
    return EMS_OK;

fail:
    set_err(err, errlen, "out of memory");
    if (s) {
        free(s->target);
        free(s->dbs);
        free(s->idle);
        free(s);
    }
    return rc;
}

void ems_store_close(ems_store *s) {
    if (!s) return;
    /* Disconnect first: the server forgets its statements with the session. */
    for (size_t i = 0; i < s->size; i++) {
        s->drv->disconnect(&s->dbs[i]);
        ems_db_forget_statements(&s->dbs[i]);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->idle);
    free(s->dbs);
    free(s->target);
    free(s);
}

ems_store_engine ems_store_engine_of(const ems_store *s) { return s->drv->engine; }

const char *ems_store_engine_name(const ems_store *s) { return s->drv->name; }

static void pool_release(ems_store *s, ems_db *db) {
    pthread_mutex_lock(&s->mu);
    s->idle[s->nidle++] = db;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

ems_db *ems_store_get(ems_store *s) {
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    while (s->nidle == 0) pthread_cond_wait(&s->cv, &s->mu);
    ems_db *db = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->mu);
    if (s->drv->connect(db, NULL, 0) != EMS_OK) {
        pool_release(s, db);
        return NULL;
    }
    return db;
}

void ems_store_put(ems_store *s, ems_db *db) {
    if (!s || !db) return;
    if (db->in_tx || (!db->bad && db->conn && s->drv->in_tx(db))) {
        ems_log(EMS_LOG_DEBUG, "store.put_rollback", "engine=%s", s->drv->name);
        ems_db_rollback(db);
    }
    db->changes = 0;
    pool_release(s, db);
}

int ems_store_ping(ems_store *s) {
    ems_db *db = ems_store_get(s);
    if (!db) return 0;
    ems_rc rc = db_simple(db, "SELECT 1");
    ems_store_put(s, db);
    return rc == EMS_OK;
}

/* ---- migrations --------------------------------------------------------- */

typedef struct {
    long version;
    char *name;
} migration;

static int migration_cmp(const void *a, const void *b) {
    long x = ((const migration *)a)->version, y = ((const migration *)b)->version;
    return (x > y) - (x < y);
}

/* A migration file is NNN_name.sql; returns its number, or -1 for any other name. */
static long migration_version(const char *name) {
    size_t digits = strspn(name, "0123456789");
    size_t len = strlen(name);
    if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 5) return -1;
    if (strcmp(name + len - 4, ".sql") != 0) return -1;
    return strtol(name, NULL, 10);
}

static void migrations_free(migration *m, size_t n) {
    for (size_t i = 0; i < n; i++) free(m[i].name);
    free(m);
}

static ems_rc migrations_list(const char *dir, migration **out, size_t *count, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open migrations folder %s: %s", dir, strerror(errno));
        return EMS_INTERNAL;
    }
    ems_rc rc = EMS_OK;
    migration *m = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long v = migration_version(e->d_name);
        if (v < 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            migration *bigger = realloc(m, cap * sizeof *m);
            if (!bigger) {
                rc = EMS_NOMEM;
                goto cleanup;
            }
            m = bigger;
        }
        m[n].version = v;
        m[n].name = strdup(e->d_name);
        if (!m[n].name) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
        n++;
    }
    if (n) qsort(m, n, sizeof *m, migration_cmp);
    for (size_t i = 1; i < n; i++) {
        if (m[i].version == m[i - 1].version) {
            set_err(err, errlen, "two migrations numbered %ld: %s and %s", m[i].version, m[i - 1].name, m[i].name);
            rc = EMS_INTERNAL;
            goto cleanup;
        }
    }
cleanup:
    closedir(d);
    if (rc != EMS_OK) {
        if (rc == EMS_NOMEM) set_err(err, errlen, "out of memory");
        migrations_free(m, n);
        return rc;
    }
    *out = m;
    *count = n;
    return EMS_OK;
}

static char *read_whole(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *bigger = realloc(buf, cap + 1);
            if (!bigger) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Opens a migration transaction; on PostgreSQL it also takes the lock that serializes concurrent starts. */
static ems_rc migration_begin(ems_db *db) {
    ems_rc rc = ems_db_begin(db);
    const char *lock = db->store->drv->migrate_lock_sql;
    if (rc == EMS_OK && lock) rc = db_simple(db, lock);
    return rc;
}

/* Applies one file and records it, in one transaction; skips a file another process applied meanwhile. */
static ems_rc migration_apply(ems_db *db, const char *dir, const migration *m, char *err, size_t errlen) {
    char *sql = NULL;
    ems_rows *seen = NULL;
    char msg[512] = "";
    ems_rc rc = migration_begin(db);
    if (rc != EMS_OK) {
        set_err(err, errlen, "%s: cannot start a transaction (%s)", m->name, ems_rc_message(rc));
        goto cleanup;
    }
    rc = ems_db_query(db, &seen, "SELECT 1 FROM schema_migrations WHERE version = $1", "i", (int64_t)m->version);
    if (rc != EMS_OK) {
        set_err(err, errlen, "%s: cannot read schema_migrations (%s)", m->name, ems_rc_message(rc));
        goto cleanup;
    }
    if (ems_rows_count(seen) > 0) goto cleanup;

    size_t plen = strlen(dir) + strlen(m->name) + 2;
    char *path = malloc(plen);
    if (path) {
        snprintf(path, plen, "%s/%s", dir, m->name);
        sql = read_whole(path);
        free(path);
    }
    if (!sql) {
        set_err(err, errlen, "%s: cannot read the file", m->name);
        rc = EMS_INTERNAL;
        goto cleanup;
    }
    rc = db->store->drv->script(db, sql, msg, sizeof msg);
    if (rc != EMS_OK) {
        set_err(err, errlen, "%s: %s", m->name, msg);
        if (rc != EMS_UNAVAILABLE) rc = EMS_INTERNAL;
        goto cleanup;
    }
    rc = ems_db_exec(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", "isi",
                     (int64_t)m->version, m->name, now_ms());
    if (rc == EMS_OK) rc = ems_db_commit(db);
    if (rc != EMS_OK) {
        set_err(err, errlen, "%s: cannot record the migration (%s)", m->name, ems_rc_message(rc));
        goto cleanup;
    }
    ems_log(EMS_LOG_INFO, "store.migrated", "engine=%s file=%s", db->store->drv->name, m->name);

cleanup:
    if (db->in_tx) ems_db_rollback(db);
    ems_rows_free(seen);
    free(sql);
    return rc;
}

static int version_applied(const ems_rows *applied, long version) {
    for (size_t i = 0; i < ems_rows_count(applied); i++)
        if (ems_rows_int(applied, i, 0) == version) return 1;
    return 0;
}

ems_rc ems_store_migrate(ems_store *s, const char *dir, char *err, size_t errlen) {
    migration *m = NULL;
    size_t n = 0;
    ems_rows *applied = NULL;
    ems_db *db = NULL;
    char msg[512] = "";
    ems_rc rc = migrations_list(dir, &m, &n, err, errlen);
    if (rc != EMS_OK) return rc;
    db = ems_store_get(s);
    if (!db) {
        set_err(err, errlen, "database unreachable");
        rc = EMS_UNAVAILABLE;
        goto cleanup;
    }
    rc = migration_begin(db);
    if (rc == EMS_OK)
        rc = s->drv->script(db,
                            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                            "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                            msg, sizeof msg);
    if (rc == EMS_OK) rc = ems_db_commit(db);
    if (rc == EMS_OK) rc = ems_db_query(db, &applied, "SELECT version FROM schema_migrations", "");
    if (rc != EMS_OK) {
        set_err(err, errlen, "schema_migrations: %s", msg[0] ? msg : ems_rc_message(rc));
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        if (version_applied(applied, m[i].version)) continue;
        rc = migration_apply(db, dir, &m[i], err, errlen);
        if (rc != EMS_OK) {
            char clean[512];
            ems_store_clean_msg(clean, sizeof clean, err);
            ems_log(EMS_LOG_ERROR, "store.migration_failed", "engine=%s error=\"%s\"", s->drv->name, clean);
            goto cleanup;
        }
    }

cleanup:
    ems_rows_free(applied);
    ems_store_put(s, db);
    migrations_free(m, n);
    return rc;
}

/* ---- result sets -------------------------------------------------------- */

typedef struct {
    size_t off; /* into the arena; the text is NUL-terminated there */
    int64_t i;
    double d;
    int kind;
} cell;

struct ems_rows {
    size_t ncols, nrows;
    cell *cells;
    size_t ncells, cells_cap;
    char *arena;
    size_t arena_len, arena_cap;
};

ems_rows *ems_rows_new(size_t ncols, size_t rows_hint, size_t bytes_hint) {
    ems_rows *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ncols = ncols;
    r->cells_cap = ncols * (rows_hint ? rows_hint : 8);
    r->arena_cap = bytes_hint ? bytes_hint : 256;
    r->cells = r->cells_cap ? malloc(r->cells_cap * sizeof *r->cells) : NULL;
    r->arena = malloc(r->arena_cap);
    if ((r->cells_cap && !r->cells) || !r->arena) {
        ems_rows_free(r);
        return NULL;
    }
    return r;
}

ems_rc ems_rows_push(ems_rows *r, int kind, const char *text, size_t len, int64_t i, double d) {
    if (r->ncells == r->cells_cap) {
        size_t cap = r->cells_cap ? r->cells_cap * 2 : 16;
        cell *bigger = realloc(r->cells, cap * sizeof *bigger);
        if (!bigger) return EMS_NOMEM;
        r->cells = bigger;
        r->cells_cap = cap;
    }
    cell *c = &r->cells[r->ncells];
    c->kind = kind;
    c->i = i;
    c->d = d;
    c->off = 0;
    if (kind != EMS_CELL_NULL) {
        if (r->arena_cap - r->arena_len < len + 1) {
            size_t cap = r->arena_cap * 2;
            while (cap - r->arena_len < len + 1) cap *= 2;
            char *bigger = realloc(r->arena, cap);
            if (!bigger) return EMS_NOMEM;
            r->arena = bigger;
            r->arena_cap = cap;
        }
        c->off = r->arena_len;
        memcpy(r->arena + r->arena_len, text, len);
        r->arena[r->arena_len + len] = '\0';
        r->arena_len += len + 1;
    }
    r->ncells++;
    return EMS_OK;
}

void ems_rows_end_row(ems_rows *r) { r->nrows++; }

size_t ems_rows_count(const ems_rows *r) { return r ? r->nrows : 0; }

size_t ems_rows_columns(const ems_rows *r) { return r ? r->ncols : 0; }

static const cell *rows_cell(const ems_rows *r, size_t row, size_t col) {
    if (!r || row >= r->nrows || col >= r->ncols) return NULL;
    const cell *c = &r->cells[row * r->ncols + col];
    return c->kind == EMS_CELL_NULL ? NULL : c;
}

const char *ems_rows_text(const ems_rows *r, size_t row, size_t col) {
    const cell *c = rows_cell(r, row, col);
    return c ? r->arena + c->off : NULL;
}

int64_t ems_rows_int(const ems_rows *r, size_t row, size_t col) {
    const cell *c = rows_cell(r, row, col);
    if (!c) return 0;
    if (c->kind == EMS_CELL_INT) return c->i;
    if (c->kind == EMS_CELL_DOUBLE) {
        if (isnan(c->d)) return 0;
        if (c->d >= 9223372036854775807.0) return INT64_MAX;
        if (c->d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)c->d;
    }
    const char *t = r->arena + c->off;
    if (strcmp(t, "t") == 0) return 1; /* a PostgreSQL boolean */
    return strtoll(t, NULL, 10);
}

double ems_rows_double(const ems_rows *r, size_t row, size_t col) {
    const cell *c = rows_cell(r, row, col);
    if (!c) return 0;
    if (c->kind == EMS_CELL_DOUBLE) return c->d;
    if (c->kind == EMS_CELL_INT) return (double)c->i;
    return strtod(r->arena + c->off, NULL);
}

int ems_rows_null(const ems_rows *r, size_t row, size_t col) {
    if (!r || row >= r->nrows || col >= r->ncols) return 1;
    return r->cells[row * r->ncols + col].kind == EMS_CELL_NULL;
}

void ems_rows_free(ems_rows *r) {
    if (!r) return;
    free(r->cells);
    free(r->arena);
    free(r);
}
