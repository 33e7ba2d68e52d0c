/*
 * fixture.h — what the unit tests share: the source tree, shell commands,
 * a free loopback port, temporary folders and a private PostgreSQL.
 *
 * Each test is its own executable and includes this header; everything here
 * is static inline, so a test that uses only some of it builds without
 * unused-function warnings under -Werror.  A test removes what it made:
 * fx_pg_stop for the server, `rm -rf` (fx_run) for its own folders.
 */
#ifndef EMS_TEST_FIXTURE_H
#define EMS_TEST_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef EMS_SOURCE_DIR
#define EMS_SOURCE_DIR "."
#endif

/* The checkout: $EMS_SOURCE_DIR (ctest sets it), else the one this test was built from. */
static inline const char *fx_source_dir(void) {
    const char *d = getenv("EMS_SOURCE_DIR");
    return d && *d ? d : EMS_SOURCE_DIR;
}

/* Runs a printf-formatted shell command; returns system()'s status, -1 if it did not fit. */
static inline int fx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline int fx_run(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    return system(cmd);
}

/* A loopback TCP port nobody listens on right now (the kernel's pick), or -1. */
static inline int fx_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Makes /tmp/ems-test-<name>.XXXXXX (mode 0700) and writes its path to buf; returns buf, or NULL. */
static inline char *fx_tmpdir(char *buf, size_t n, const char *name) {
    int len = snprintf(buf, n, "/tmp/ems-test-%s.XXXXXX", name);
    if (len < 0 || (size_t)len >= n) return NULL;
    return mkdtemp(buf);
}

/*
 * A private PostgreSQL, from tests/lib/pg.sh: a folder of its own (pg.sh hands
 * it to the postgres user, who could not enter a test's 0700 folder), a free
 * loopback port, one database.  When EMS_TEST_PG_URL is set that server is used
 * instead: dir stays empty and nothing is started or stopped.
 */
typedef struct {
    int quiet;     /* set before fx_pg_start: pg.sh's output goes to <dir>.log, not to stderr */
    char dir[64];  /* the private server's folder; empty when there is none */
    int port;      /* its port */
    char url[256]; /* postgresql://postgres@127.0.0.1:<port>/<dbname>, or EMS_TEST_PG_URL */
} fx_pg;

/* Runs `pg.sh <args>`, into <dir>.log if quiet. */
static inline int fx_pg_sh(const fx_pg *pg, const char *args) {
    if (pg->quiet) return fx_run("bash %s/tests/lib/pg.sh %s >>%s.log 2>&1", fx_source_dir(), args, pg->dir);
    return fx_run("bash %s/tests/lib/pg.sh %s", fx_source_dir(), args);
}

/* Starts the private server again after fx_pg_down, on the same folder and port. */
static inline int fx_pg_up(fx_pg *pg) {
    char args[128];
    snprintf(args, sizeof args, "start %s %d", pg->dir, pg->port);
    return fx_pg_sh(pg, args);
}

/* Stops the private server and keeps its folder, for fx_pg_up. */
static inline int fx_pg_down(fx_pg *pg) {
    char args[96];
    snprintf(args, sizeof args, "stop %s", pg->dir);
    return fx_pg_sh(pg, args);
}

/*
 * Fills pg->url with EMS_TEST_PG_URL, or starts a private server with database
 * `dbname` on it.  Returns 0, or -1 (when quiet, <dir>.log says why); either
 * way, fx_pg_stop stops what was started and removes the folder.
 */
static inline int fx_pg_start(fx_pg *pg, const char *dbname) {
    const char *given = getenv("EMS_TEST_PG_URL");
    char args[192];
    if (given && *given) {
        pg->dir[0] = '\0';
        snprintf(pg->url, sizeof pg->url, "%s", given);
        return 0;
    }
    if (!fx_tmpdir(pg->dir, sizeof pg->dir, "pg")) {
        pg->dir[0] = '\0';
        return -1;
    }
    pg->port = fx_free_port();
    if (pg->port < 0 || fx_pg_up(pg) != 0) return -1;
    snprintf(args, sizeof args, "createdb %s %d %s", pg->dir, pg->port, dbname);
    if (fx_pg_sh(pg, args) != 0) return -1;
    snprintf(pg->url, sizeof pg->url, "postgresql://postgres@127.0.0.1:%d/%s", pg->port, dbname);
    return 0;
}

/* Stops the private server, if any, and removes its folder (and log). */
static inline void fx_pg_stop(fx_pg *pg) {
    if (!pg->dir[0]) return;
    fx_pg_down(pg);
    if (pg->quiet) fx_run("rm -rf %s %s.log", pg->dir, pg->dir);
    else fx_run("rm -rf %s", pg->dir);
    pg->dir[0] = '\0';
}

/*
 * What the code under test writes to stderr (its log) between fx_capture_start
 * and fx_capture_end, kept in an unnamed temporary file.
 */
typedef struct {
    FILE *file;
    int saved; /* the real stderr */
} fx_capture;

static inline int fx_capture_start(fx_capture *c) {
    fflush(stderr);
    if (!(c->file = tmpfile())) return -1;
    c->saved = dup(STDERR_FILENO);
    if (c->saved < 0 || dup2(fileno(c->file), STDERR_FILENO) < 0) return -1;
    return 0;
}

/* Restores stderr and returns what was written (malloc'd, NUL-terminated), or NULL. */
static inline char *fx_capture_end(fx_capture *c) {
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    long size = fseek(c->file, 0, SEEK_END) == 0 ? ftell(c->file) : -1;
    char *text = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (text) {
        rewind(c->file);
        text[fread(text, 1, (size_t)size, c->file)] = '\0';
    }
    fclose(c->file);
    return text;
}

#endif
