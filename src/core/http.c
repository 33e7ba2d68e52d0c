/*
 * http.c — the REST server of every role, over libmicrohttpd.
 *
 * A request passes through these steps, each one a callback of MHD:
 *   on_uri        MHD shows us the request target before it decodes it.  The
 *                 request state is allocated here and keeps the path still
 *                 percent-encoded: routes match encoded segments, so that an
 *                 encoded "/" can never act as a separator.
 *   first call    The headers are in.  A request with a body is routed,
 *                 authorized and its Content-Length checked now, so that a
 *                 refusal goes out before the body is read (MHD closes the
 *                 connection after it).  One without a body waits: answering
 *                 on the first call would cost the keep-alive connection.
 *   upload calls  The body is gathered up to max_body; past it, the rest is
 *                 drained without being kept and the answer is 413.
 *   last call     Whatever is left of: built-ins and static files, route,
 *                 authorize, Content-Type and JSON checks, the handler, the
 *                 reply.
 *   on_completed  Frees the request state.
 *
 * Routes and readiness checks may be added while the server runs: they sit
 * in fixed arrays whose length is published with release/acquire ordering, so
 * the pool threads read them without a lock.
 *
 * Connections are tracked beside the requests (on_connection): each one's
 * client address, counted against max_conns_per_ip when MHD offers the
 * connection (on_accept), and the moment the wait for its next request's
 * headers began.  MHD's own timeout starts again with every byte, so a client
 * trickling a header could hold a connection for ever; a sweeping thread
 * instead shuts down every connection whose headers are late, which MHD then
 * sees as closed by the client.  The sweep only touches sockets still in the
 * list, and MHD takes a connection out of it (NOTIFY_CLOSED) before closing
 * its socket, so a number that was reused is never shut down.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "netaddr.h"

#define MAX_GROUPS 32 /* route tables: one per role is the norm */
#define MAX_RAW 8     /* handlers registered with ems_http_raw_body */
#define MAX_READY 32  /* readiness checks */
#define DEFAULT_MAX_BODY (1u << 20)
#define DEFAULT_MAX_HEADER (16u << 10)
#define DEFAULT_MAX_CONNS 4096
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_HEADER_TIMEOUT_S 10
#define POOL_SLACK (16u << 10) /* connection memory beyond the headers: MHD's own structures and buffers */
#define PREALLOC_MAX (64u << 10)
#define MAX_EXEMPT 32    /* entries of conn_limit_exempt */
#define ADDR_BUCKETS 256 /* per-address connection counts */

typedef struct {
    const ems_route *routes;
    size_t n;
    void *ctx;
} route_group;

typedef struct {
    ems_ready_check fn;
    void *ctx;
} ready_entry;

/* Hooks are replaced, never changed in place; the old ones live until the server is freed. */
typedef struct token_hook {
    ems_token_check fn;
    void *ctx;
    struct token_hook *older;
} token_hook;

/* How many connections one address holds; freed when it holds none. */
typedef struct addr_count {
    struct addr_count *next;
    ems_ip key;
    unsigned n;
} addr_count;

/* One TCP connection, from NOTIFY_STARTED to NOTIFY_CLOSED (its socket context). */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    addr_count *count;     /* NULL when the address is not counted */
    struct timespec since; /* when the wait for the next request's headers began */
    unsigned allowed_s;    /* how long that wait may last */
    int waiting;           /* 1 while headers are awaited */
    int cut;               /* shut down by the sweep */
} conn_track;

struct ems_http {
    struct MHD_Daemon *daemon;
    int port; /* the bound port once started */
    int want_port;
    char *bind;
    char *static_dir;
    char *static_root; /* static_dir resolved by realpath at start */
    size_t static_root_len;
    char *ingest_token;
    size_t ingest_len;
    ems_jwt *jwt;
    unsigned threads, max_conns, timeout_s;
    size_t max_body, max_header;
    unsigned max_per_ip, header_timeout_s;
    char *exempt_text;
    ems_cidr exempt[MAX_EXEMPT];
    size_t nexempt;
    ems_access metrics_access;
    char *metrics_token;
    size_t metrics_token_len;

    /* Connection tracking: the list, the per-address counts and the sweeper's state. */
    pthread_mutex_t conn_lock;
    pthread_cond_t sweep_wake;
    pthread_t sweeper;
    int sweeping, sweep_stop;
    conn_track *tracks;
    addr_count *counts[ADDR_BUCKETS];
    atomic_uint refused; /* connections refused by max_per_ip since the last sweep */

    pthread_mutex_t lock; /* serializes registrations and guards start_err */
    route_group groups[MAX_GROUPS];
    _Atomic size_t ngroups;
    ems_handler raw[MAX_RAW]; /* handlers that take their body unparsed */
    _Atomic size_t nraw;
    ready_entry ready[MAX_READY];
    _Atomic size_t nready;
    _Atomic(token_hook *) hook;
    token_hook *hooks;      /* every hook ever set, for ems_http_free */
    atomic_int hook_broken; /* a hook could not be installed: refuse every token */

    atomic_int starting;
    char start_err[256]; /* what MHD logged while starting */
};

/* The state of one request, from on_uri to on_completed. */
typedef struct http_req {
    ems_http *h;
    struct MHD_Connection *conn;
    struct timespec t0;
    int begun, has_body, answered, too_large, no_memory;
    const ems_route *route;
    void *route_ctx;
    const char *label; /* route label for metrics and logs */
    char *body;
    size_t body_len, body_cap;
    ems_req req;
    char ip[INET6_ADDRSTRLEN];
    char *args;      /* in-process calls (conn is NULL): the decoded query, "name\0value\0" pairs */
    size_t args_len; /* bytes of args */
    char *params;    /* decoded path parameters, after raw */
    char raw[];      /* the path as sent, without the query string */
} http_req;

typedef struct resp_header {
    struct resp_header *next;
    char *name, *value;
} resp_header;

struct ems_resp {
    int status; /* 0 until a reply is set */
    char *data;
    size_t len;
    char *content_type;
    resp_header *headers;
    char *message; /* from ems_fail */
};

/* Methods by name: which carry a JSON body, and the bounded set that labels metrics. */
static const struct {
    const char *name;
    int json_body;
} methods[] = {
    {"GET", 0}, {"HEAD", 0}, {"POST", 1}, {"PUT", 1}, {"PATCH", 1}, {"DELETE", 0}, {"OPTIONS", 0},
};

static const char *method_label(const char *m) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0) return methods[i].name;
    return "other";
}

static int method_has_json_body(const char *m) {
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0) return methods[i].json_body;
    return 0;
}

static int is_get_or_head(const char *m) { return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0; }

/* What each access level asks of the caller's token. */
static const struct {
    int needs_token;
    int needs_admin;
} access_rules[] = {
    [EMS_ACCESS_ANY] = {0, 0},
    [EMS_ACCESS_USER] = {1, 0},
    [EMS_ACCESS_ADMIN] = {1, 1},
    [EMS_ACCESS_INGEST] = {1, 1}, /* unless the ingest secret came instead */
};

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"ico", "image/x-icon"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
    {"map", "application/json"},
    {"wasm", "application/wasm"},
};

static const char *content_type_of(const char *ext) {
    for (size_t i = 0; ext && i < sizeof content_types / sizeof content_types[0]; i++)
        if (strcasecmp(ext, content_types[i].ext) == 0) return content_types[i].type;
    return "application/octet-stream";
}

/* ---- small helpers ------------------------------------------------------ */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of percent-encoded src into dst (n + 1 bytes); -1 on a bad escape or an encoded NUL. */
static int percent_decode(const char *src, size_t n, char *dst) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] != '%') {
            dst[w++] = src[i];
            continue;
        }
        int hi = i + 2 < n ? hex_value(src[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) return -1;
        dst[w++] = (char)(hi * 16 + lo);
        i += 2;
    }
    dst[w] = '\0';
    return 0;
}

/* Compares a token with the secret in time that depends only on the secret's length. */
static int secret_equal(const char *given, const char *secret, size_t secret_len) {
    size_t given_len = strlen(given);
    unsigned char diff = given_len != secret_len;
    for (size_t i = 0; i < secret_len; i++) diff |= (unsigned char)((i < given_len ? given[i] : 0) ^ secret[i]);
    return diff == 0;
}

static double elapsed_s(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *header(const http_req *q, const char *name) {
    return q->conn ? MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name) : NULL; /* in-process: none */
}

/* ---- routing ------------------------------------------------------------ */

typedef struct {
    const char *p;
    size_t len;
} span;

/*
 * Matches the raw path against a pattern; fills the spans of its parameters
 * and returns how many, or -1.  A parameter takes its whole segment except
 * the literal that follows it in the pattern, and is never empty.
 */
static int route_match(const char *pat, const char *path, span out[EMS_HTTP_MAX_PARAMS]) {
    int n = 0;
    while (*pat) {
        if (*pat != '{') {
            if (*pat++ != *path++) return -1;
            continue;
        }
        const char *suffix = strchr(pat, '}') + 1; /* validated when the routes were added */
        size_t suffix_len = strcspn(suffix, "/");
        size_t seg = strcspn(path, "/");
        if (seg <= suffix_len || memcmp(path + seg - suffix_len, suffix, suffix_len) != 0) return -1;
        out[n].p = path;
        out[n].len = seg - suffix_len;
        n++;
        path += seg;
        pat = suffix + suffix_len;
    }
    return *path ? -1 : n;
}

/* A pattern starts with '/', and each "{name}" opens its segment, is closed, and comes at most MAX times. */
static int pattern_valid(const char *pat) {
    if (!pat || pat[0] != '/') return 0;
    int params = 0;
    for (const char *p = pat; *p; p++) {
        if (*p == '}') return 0;
        if (*p != '{') continue;
        if (p[-1] != '/' || ++params > EMS_HTTP_MAX_PARAMS) return 0;
        size_t name_len = strcspn(p + 1, "{}/");
        if (name_len == 0 || p[1 + name_len] != '}') return 0;
        p += 1 + name_len; /* on the '}' */
        size_t suffix_len = strcspn(p + 1, "/");
        if (memchr(p + 1, '{', suffix_len) || memchr(p + 1, '}', suffix_len)) return 0;
    }
    return 1;
}

/* Appends a method to the Allow list once. */
static void allow_add(char *allow, size_t len, const char *method) {
    size_t mlen = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)); p += mlen)
        if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0')) return;
    size_t used = strlen(allow);
    snprintf(allow + used, len - used, "%s%s", used ? ", " : "", method);
}

/* ---- responses ---------------------------------------------------------- */

/* Queues a response with the headers every answer carries, and records the request. */
static enum MHD_Result queue(http_req *q, unsigned status, struct MHD_Response *r, int api) {
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (api) MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(q->conn, status, r);
    MHD_destroy_response(r);
    q->answered = 1;
    double secs = elapsed_s(&q->t0);
    const char *label = q->label ? q->label : "unmatched";
    const char *method = method_label(q->req.method);
    ems_metrics_http(method, label, (int)status, secs);
    ems_log(EMS_LOG_DEBUG, "http.request", "method=%s route=%s status=%u ms=%.3f", method, label, status, secs * 1000);
    return ok;
}

static struct MHD_Response *text_response(const char *text, const char *content_type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r) MHD_add_response_header(r, "Content-Type", content_type);
    return r;
}

/* A JSON body given as a malloc'd string; the response takes it. */
static struct MHD_Response *json_response(char *json) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

static void add_headers(struct MHD_Response *r, const resp_header *hd) {
    if (!r) return;
    for (const resp_header *h = hd; h != NULL; h = h->next) MHD_add_response_header(r, h->name, h->value);
}

/*
 * The error envelope.  The message falls back to the code's default when
 * none was given, or when it cannot go into JSON (not UTF-8).
 */
static enum MHD_Result reply_error(http_req *q, ems_rc rc, const char *message, const resp_header *extra) {
    json_t *env = NULL;
    if (message) env = json_pack("{s:{s:s,s:s}}", "error", "code", ems_rc_code(rc), "message", message);
    if (!env) env = json_pack("{s:{s:s,s:s}}", "error", "code", ems_rc_code(rc), "message", ems_rc_message(rc));
    char *text = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    struct MHD_Response *r = text ? json_response(text) : NULL;
    if (r && rc == EMS_UNAUTHORIZED) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    add_headers(r, extra);
    return queue(q, (unsigned)ems_rc_status(rc), r, 1);
}

__attribute__((format(printf, 3, 4))) static enum MHD_Result reply_errorf(http_req *q, ems_rc rc, const char *fmt,
                                                                          ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return reply_error(q, rc, message, NULL);
}

static enum MHD_Result reply_method(http_req *q, char *allow) {
    resp_header h = {NULL, "Allow", allow};
    return reply_error(q, EMS_METHOD, NULL, &h);
}

static void resp_clear(ems_resp *resp) {
    free(resp->data);
    free(resp->content_type);
    free(resp->message);
    for (resp_header *h = resp->headers, *next; h; h = next) {
        next = h->next;
        free(h->name);
        free(h->value);
        free(h);
    }
}

/* Turns what a handler left in resp, and its result, into the response. */
static enum MHD_Result reply_handler(http_req *q, ems_resp *resp, ems_rc rc) {
    if (rc != EMS_OK) {
        if (ems_rc_status(rc) >= 500)
            ems_log(EMS_LOG_WARN, "http.handler_failed", "route=%s code=%s", q->label, ems_rc_code(rc));
        return reply_error(q, rc, resp->message, resp->headers);
    }
    if (resp->status && (resp->status < 100 || resp->status > 599)) {
        ems_log(EMS_LOG_ERROR, "http.bad_status", "route=%s status=%d", q->label, resp->status);
        return reply_error(q, EMS_INTERNAL, NULL, NULL);
    }
    struct MHD_Response *r;
    if (resp->data) {
        r = MHD_create_response_from_buffer(resp->len, resp->data, MHD_RESPMEM_MUST_FREE);
        if (r) resp->data = NULL;
    } else {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (r && resp->content_type) MHD_add_response_header(r, "Content-Type", resp->content_type);
    add_headers(r, resp->headers);
    return queue(q, resp->status ? (unsigned)resp->status : 204, r, 1);
}

/* ---- the public request and reply helpers -------------------------------- */

static const char *call_arg(const http_req *q, const char *name);

const char *ems_req_query(const ems_req *r, const char *name) {
    const http_req *q = r->impl;
    if (!q->conn) return call_arg(q, name);
    return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ems_req_header(const ems_req *r, const char *name) { return header(r->impl, name); }

const char *ems_req_ip(const ems_req *r) {
    http_req *q = r->impl;
    if (q->ip[0]) return q->ip;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, q->ip, sizeof q->ip);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, q->ip, sizeof q->ip);
    if (!q->ip[0]) snprintf(q->ip, sizeof q->ip, "unknown");
    return q->ip;
}

static void set_reply(ems_resp *resp, int status, char *content_type, char *data, size_t len) {
    free(resp->data);
    free(resp->content_type);
    resp->status = status;
    resp->content_type = content_type;
    resp->data = data;
    resp->len = len;
}

ems_rc ems_reply_json(ems_resp *resp, int status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(body);
    char *type = strdup("application/json");
    if (!text || !type) {
        free(text);
        free(type);
        return EMS_NOMEM;
    }
    set_reply(resp, status, type, text, strlen(text));
    return EMS_OK;
}

ems_rc ems_reply_raw(ems_resp *resp, int status, const char *content_type, char *data, size_t len) {
    char *type = strdup(content_type ? content_type : "application/octet-stream");
    if (!type) {
        free(data);
        return EMS_NOMEM;
    }
    set_reply(resp, status, type, data, len);
    return EMS_OK;
}

ems_rc ems_reply_empty(ems_resp *resp, int status) {
    set_reply(resp, status, NULL, NULL, 0);
    return EMS_OK;
}

ems_rc ems_reply_header(ems_resp *resp, const char *name, const char *value) {
    /* A line break would let a value smuggle in headers of its own. */
    if (!name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return EMS_INTERNAL;
    resp_header *h = calloc(1, sizeof *h);
    if (!h || !(h->name = strdup(name)) || !(h->value = strdup(value))) {
        if (h) free(h->name);
        free(h);
        return EMS_NOMEM;
    }
    h->next = resp->headers;
    resp->headers = h;
    return EMS_OK;
}

ems_rc ems_fail(ems_resp *resp, ems_rc rc, const char *fmt, ...) {
    if (resp->message) return rc; /* the first, most specific message stands */
    char *message = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0) message = NULL;
    va_end(ap);
    resp->message = message;
    return rc;
}

/*
 * Names the field a failed unpack stopped at.  jansson tells where in the
 * format it stopped (error.position, 1-based) but not the key, and the keys
 * are among the arguments: walk the format in step with a copy of them.
 * Writes "" when the failure is not at a field (or the format is beyond us).
 */
static void failed_field(const char *fmt, int position, va_list ap, char *out, size_t len) {
    struct {
        const char *key;
        int index;
        char kind;
    } stack[16];
    int depth = 0;
    out[0] = '\0';
    for (int i = 0; i < position - 1 && fmt[i]; i++) {
        char c = fmt[i];
        if (strchr(" \t\n:,!*?", c)) continue;
        int in_object = depth > 0 && stack[depth - 1].kind == '{';
        if (in_object && !stack[depth - 1].key && c != '}') {
            stack[depth - 1].key = va_arg(ap, const char *);
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == (int)(sizeof stack / sizeof stack[0])) return;
            stack[depth].kind = c;
            stack[depth].key = NULL;
            stack[depth].index = 0;
            depth++;
            continue;
        }
        if (c == '}' || c == ']') {
            if (depth == 0) return;
            depth--;
        } else if (strchr("sbiIfFoO", c)) {
            (void)va_arg(ap, void *); /* where the value goes */
            if (c == 's' && fmt[i + 1] == '%') {
                (void)va_arg(ap, void *); /* and its length */
                i++;
            }
        } else if (c != 'n') {
            return;
        }
        /* One value done: the enclosing object wants its next key, the array its next index. */
        if (depth > 0 && stack[depth - 1].kind == '{') stack[depth - 1].key = NULL;
        else if (depth > 0) stack[depth - 1].index++;
    }
    /* The path to the failing token: keys of enclosing objects, indexes of enclosing arrays. */
    size_t used = 0;
    for (int d = 0; d < depth && used < len; d++) {
        int n = 0;
        if (stack[d].kind == '[') n = snprintf(out + used, len - used, "[%d]", stack[d].index);
        else if (stack[d].key) n = snprintf(out + used, len - used, "%s%s", used ? "." : "", stack[d].key);
        if (n < 0) break;
        used += (size_t)n;
    }
}

ems_rc ems_req_unpack(ems_req *r, ems_resp *resp, const char *fmt, ...) {
    if (!r->body) return ems_fail(resp, EMS_BAD_REQUEST, "invalid body: a JSON body is required");
    json_error_t err;
    va_list ap, walk;
    va_start(ap, fmt);
    va_copy(walk, ap);
    int failed = json_vunpack_ex(r->body, &err, JSON_STRICT, fmt, ap) != 0;
    ems_rc rc = EMS_OK;
    if (failed && strcmp(err.source, "<validation>") != 0) {
        /* The format or its arguments are wrong: the caller's bug, not the client's. */
        ems_log(EMS_LOG_ERROR, "http.unpack_format", "format=\"%s\" error=\"%s\"", fmt, err.text);
        rc = ems_fail(resp, EMS_INTERNAL, "internal error");
    } else if (failed) {
        char field[128];
        failed_field(fmt, err.position, walk, field, sizeof field);
        if (field[0]) rc = ems_fail(resp, EMS_BAD_REQUEST, "invalid body: field '%s': %s", field, err.text);
        else rc = ems_fail(resp, EMS_BAD_REQUEST, "invalid body: %s", err.text);
    }
    va_end(walk);
    va_end(ap);
    return rc;
}

/* ---- authorization ------------------------------------------------------- */

/* Verifies a token and asks the hook; fills who only on success. */
static ems_rc identify(ems_http *h, const char *token, ems_principal *who) {
    if (!h->jwt || atomic_load(&h->hook_broken)) return EMS_UNAUTHORIZED;
    ems_principal p;
    if (ems_jwt_verify(h->jwt, token, &p) != EMS_OK) return EMS_UNAUTHORIZED;
    token_hook *hook = atomic_load_explicit(&h->hook, memory_order_acquire);
    if (hook) {
        ems_rc rc = hook->fn(&p, hook->ctx);
        if (rc != EMS_OK) return rc;
    }
    *who = p;
    return EMS_OK;
}

static ems_rc authorize(http_req *q, ems_access access) {
    ems_http *h = q->h;
    const char *token = ems_bearer(header(q, MHD_HTTP_HEADER_AUTHORIZATION));
    q->req.token = token;
    q->req.who.role = EMS_ROLE_NONE;
    if (access == EMS_ACCESS_INGEST && token && h->ingest_token &&
        secret_equal(token, h->ingest_token, h->ingest_len)) {
        q->req.ingest = 1;
        return EMS_OK;
    }
    ems_rc rc = token ? identify(h, token, &q->req.who) : EMS_UNAUTHORIZED;
    if (!access_rules[access].needs_token) return EMS_OK; /* an invalid token just means anonymous */
    if (rc != EMS_OK) return rc;
    if (access_rules[access].needs_admin && q->req.who.role != EMS_ROLE_ADMIN) return EMS_FORBIDDEN;
    return EMS_OK;
}

/* ---- built-in routes ------------------------------------------------------ */

static enum MHD_Result builtin_healthz(http_req *q) {
    return queue(q, 200, text_response("{\"status\":\"ok\"}", "application/json"), 1);
}

static enum MHD_Result builtin_readyz(http_req *q) {
    ems_http *h = q->h;
    size_t n = atomic_load_explicit(&h->nready, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        char why[256] = "";
        if (h->ready[i].fn(h->ready[i].ctx, why, sizeof why)) continue;
        json_t *body = json_pack("{s:s,s:s}", "status", "not_ready", "reason", why[0] ? why : "not ready");
        if (!body) body = json_pack("{s:s,s:s}", "status", "not_ready", "reason", "not ready");
        char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        json_decref(body);
        return text ? queue(q, 503, json_response(text), 1) : reply_error(q, EMS_NOMEM, NULL, NULL);
    }
    return queue(q, 200, text_response("{\"status\":\"ready\"}", "application/json"), 1);
}

/* Behind metrics_access: an admin token, or the metrics secret (a scraper's, which does not expire). */
static enum MHD_Result builtin_metrics(http_req *q) {
    ems_http *h = q->h;
    if (h->metrics_access != EMS_ACCESS_ANY) {
        const char *token = ems_bearer(header(q, MHD_HTTP_HEADER_AUTHORIZATION));
        int secret = token && h->metrics_token && secret_equal(token, h->metrics_token, h->metrics_token_len);
        ems_rc rc = secret ? EMS_OK : authorize(q, EMS_ACCESS_ADMIN);
        if (rc != EMS_OK) return reply_error(q, rc, NULL, NULL);
    }
    size_t len = 0;
    char *text = ems_metrics_render(&len);
    if (!text) return reply_error(q, EMS_NOMEM, NULL, NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) free(text);
    if (r) MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return queue(q, 200, r, 1);
}

static const struct {
    const char *path;
    enum MHD_Result (*serve)(http_req *q);
} builtins[] = {
    {"/healthz", builtin_healthz},
    {"/readyz", builtin_readyz},
    {"/metrics", builtin_metrics},
};

/* ---- static files -------------------------------------------------------- */

/* The extension of the last segment, or NULL. */
static const char *extension_of(const char *path) {
    const char *last = strrchr(path, '/');
    const char *dot = strrchr(last ? last : path, '.');
    return dot && dot[1] ? dot + 1 : NULL;
}

/*
 * Refuses what could step outside the directory or name what is not meant
 * to be served: encoded separators, backslashes, and segments starting with
 * a dot ("..", ".", hidden files).  Encoded NULs were refused when decoding.
 */
static int static_path_safe(const char *raw, const char *decoded) {
    if (strcasestr(raw, "%2f") || strcasestr(raw, "%5c") || strchr(decoded, '\\')) return 0;
    for (const char *p = decoded; (p = strchr(p, '/')); p++)
        if (p[1] == '.') return 0;
    return decoded[0] == '/';
}

static int under_root(const ems_http *h, const char *real) {
    return strncmp(real, h->static_root, h->static_root_len) == 0 &&
           (real[h->static_root_len] == '/' || real[h->static_root_len] == '\0');
}

/* Opens a regular file for reading; -1 for anything else. */
static int open_regular(const char *path, uint64_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
        return fd;
    }
    if (fd >= 0) close(fd);
    return -1;
}

static enum MHD_Result serve_static(http_req *q) {
    ems_http *h = q->h;
    q->label = "static";
    if (!is_get_or_head(q->req.method)) {
        char allow[] = "GET, HEAD";
        return reply_method(q, allow);
    }
    char *decoded = q->params; /* free scratch: static requests have no parameters */
    if (percent_decode(q->raw, strlen(q->raw), decoded) != 0 || !static_path_safe(q->raw, decoded))
        return reply_error(q, EMS_NOT_FOUND, NULL, NULL);

    char full[PATH_MAX];
    int n = snprintf(full, sizeof full, "%s%s%s", h->static_root, decoded,
                     decoded[strlen(decoded) - 1] == '/' ? "index.html" : "");
    char *real = n > 0 && (size_t)n < sizeof full ? realpath(full, NULL) : NULL;
    uint64_t size = 0;
    int fd = real && under_root(h, real) ? open_regular(real, &size) : -1;
    const char *type = content_type_of(extension_of(real ? real : full));
    /* Hashed build output never changes under its name; everything else is revalidated. */
    const char *cache = strncmp(decoded, "/assets/", 8) == 0 ? "public, max-age=31536000, immutable" : "no-cache";
    free(real);
    if (fd < 0 && !extension_of(decoded)) {
        /* Client-side routes have no extension: they all get the app's entry page. */
        snprintf(full, sizeof full, "%s/index.html", h->static_root);
        fd = open_regular(full, &size);
        type = content_type_of("html");
        cache = "no-cache";
    }
    if (fd < 0) return reply_error(q, EMS_NOT_FOUND, NULL, NULL);

    struct MHD_Response *r = MHD_create_response_from_fd64(size, fd);
    if (!r) {
        close(fd);
        return reply_error(q, EMS_NOMEM, NULL, NULL);
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache);
    return queue(q, 200, r, 0);
}

/* ---- connections: per-address limit and header deadline -------------------- */

/* Whether the per-address limit applies to this address at all. */
static int addr_counted(const ems_http *h, const struct sockaddr *sa, ems_ip *k) {
    return h->max_per_ip && ems_ip_of_sockaddr(sa, k) && !ems_cidr_list_match(h->exempt, h->nexempt, k);
}

static addr_count **addr_slot(ems_http *h, const ems_ip *k) {
    unsigned hash = 2166136261u; /* FNV-1a */
    for (unsigned i = 0; i < k->len; i++) hash = (hash ^ k->b[i]) * 16777619u;
    addr_count **slot = &h->counts[hash % ADDR_BUCKETS];
    while (*slot && ((*slot)->key.len != k->len || memcmp((*slot)->key.b, k->b, k->len) != 0)) slot = &(*slot)->next;
    return slot;
}

/*
 * MHD asks before it takes a connection: refuse an address at its limit.  The
 * count grows later, in NOTIFY_STARTED on the same thread, so each pool
 * thread can let at most one connection past the limit at a time.
 */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa, socklen_t len) {
    ems_http *h = cls;
    (void)len;
    ems_ip k;
    if (!addr_counted(h, sa, &k)) return MHD_YES;
    pthread_mutex_lock(&h->conn_lock);
    addr_count *c = *addr_slot(h, &k);
    int full = c && c->n >= h->max_per_ip;
    pthread_mutex_unlock(&h->conn_lock);
    if (full) atomic_fetch_add(&h->refused, 1);
    return full ? MHD_NO : MHD_YES;
}

static void track_wait(conn_track *t, unsigned allowed_s) {
    clock_gettime(CLOCK_MONOTONIC, &t->since);
    t->allowed_s = allowed_s;
    t->waiting = 1;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **ctx,
                          enum MHD_ConnectionNotificationCode code) {
    ems_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        conn_track *t = fd_info ? calloc(1, sizeof *t) : NULL;
        if (!t) return; /* untracked: MHD's idle timeout still holds */
        t->fd = fd_info->connect_fd;
        track_wait(t, h->header_timeout_s);
        ems_ip k;
        pthread_mutex_lock(&h->conn_lock);
        if (addr_counted(h, addr_info ? addr_info->client_addr : NULL, &k)) {
            addr_count **slot = addr_slot(h, &k);
            if (!*slot && (*slot = calloc(1, sizeof **slot))) (*slot)->key = k;
            if (*slot) (*slot)->n++;
            t->count = *slot;
        }
        t->next = h->tracks;
        if (h->tracks) h->tracks->prev = t;
        h->tracks = t;
        pthread_mutex_unlock(&h->conn_lock);
        *ctx = t;
        return;
    }
    conn_track *t = *ctx;
    if (!t) return;
    pthread_mutex_lock(&h->conn_lock);
    if (t->prev) t->prev->next = t->next;
    else h->tracks = t->next;
    if (t->next) t->next->prev = t->prev;
    if (t->count && --t->count->n == 0) {
        addr_count **slot = addr_slot(h, &t->count->key);
        *slot = t->count->next;
        free(t->count);
    }
    pthread_mutex_unlock(&h->conn_lock);
    free(t);
    *ctx = NULL;
}

/*
 * A request's headers are in (waiting = 0), or its answer is out and the
 * connection waits for the next one: a kept-alive connection may idle as
 * long as MHD's own timeout allows, but not trickle past it.
 */
static void track_headers(ems_http *h, struct MHD_Connection *conn, int waiting) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&h->conn_lock);
    if (waiting) track_wait(t, h->timeout_s > h->header_timeout_s ? h->timeout_s : h->header_timeout_s);
    else t->waiting = 0;
    pthread_mutex_unlock(&h->conn_lock);
}

/* Shuts down the connections whose headers are late; logs what it did, once per round. */
static void *sweep(void *arg) {
    ems_http *h = arg;
    /* A quarter of the deadline, at most a second: a connection lives at most that much past it. */
    long tick_ms = h->header_timeout_s * 250L;
    if (tick_ms > 1000) tick_ms = 1000;
    pthread_mutex_lock(&h->conn_lock);
    while (!h->sweep_stop) {
        struct timespec wake;
        clock_gettime(CLOCK_MONOTONIC, &wake);
        wake.tv_nsec += tick_ms * 1000000L;
        wake.tv_sec += wake.tv_nsec / 1000000000L;
        wake.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&h->sweep_wake, &h->conn_lock, &wake);
        if (h->sweep_stop) break;
        unsigned cut = 0;
        for (conn_track *t = h->tracks; t; t = t->next) {
            if (!t->waiting || t->cut || elapsed_s(&t->since) < t->allowed_s) continue;
            t->cut = 1;
            shutdown(t->fd, SHUT_RDWR);
            cut++;
        }
        unsigned refused = atomic_exchange(&h->refused, 0);
        if (!cut && !refused) continue;
        pthread_mutex_unlock(&h->conn_lock);
        if (cut) ems_log(EMS_LOG_WARN, "http.header_timeout", "closed=%u timeout_s=%u", cut, h->header_timeout_s);
        if (refused) ems_log(EMS_LOG_WARN, "http.conn_limit", "refused=%u max_per_ip=%u", refused, h->max_per_ip);
        pthread_mutex_lock(&h->conn_lock);
    }
    pthread_mutex_unlock(&h->conn_lock);
    return NULL;
}

/* ---- the request steps ---------------------------------------------------- */

static int is_api_path(const char *path) { return strncmp(path, "/api", 4) == 0 && (path[4] == '/' || !path[4]); }

/* Content-Type is application/json, parameters allowed. */
static int is_json_type(const char *type) {
    if (!type) return 0;
    while (*type == ' ') type++;
    return strncasecmp(type, "application/json", 16) == 0 && (type[16] == '\0' || type[16] == ';' || type[16] == ' ');
}

static int wants_raw(ems_http *h, ems_handler fn) {
    size_t n = atomic_load_explicit(&h->nraw, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (h->raw[i] == fn) return 1;
    return 0;
}

static enum MHD_Result finish(http_req *q) {
    if (q->too_large) return reply_errorf(q, EMS_TOO_LARGE, "request body exceeds %zu bytes", q->h->max_body);
    if (q->no_memory) return reply_error(q, EMS_NOMEM, NULL, NULL);
    if (q->body_len && method_has_json_body(q->req.method)) {
        if (!is_json_type(header(q, MHD_HTTP_HEADER_CONTENT_TYPE)))
            return reply_error(q, EMS_UNSUPPORTED, "expected Content-Type: application/json", NULL);
        if (wants_raw(q->h, q->route->handler)) {
            q->req.raw_body = q->body; /* freed with the request */
            q->req.raw_len = q->body_len;
        } else {
            json_error_t err;
            q->req.body = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &err);
            if (!q->req.body)
                return reply_errorf(q, EMS_BAD_REQUEST, "invalid JSON: %s at line %d, column %d", err.text, err.line,
                                    err.column);
        }
    }
    if (!q->req.raw_body) {
        free(q->body);
        q->body = NULL;
    }

    ems_resp resp = {0};
    ems_rc rc = q->route->handler(&q->req, &resp, q->route_ctx);
    enum MHD_Result ok = reply_handler(q, &resp, rc);
    resp_clear(&resp);
    return ok;
}

/* Keeps the body while it fits; past max_body, forgets it and drains the rest. */
static void absorb(http_req *q, const char *data, size_t n) {
    if (q->answered || q->too_large || q->no_memory) return;
    if (n > q->h->max_body - q->body_len) {
        q->too_large = 1;
        free(q->body);
        q->body = NULL;
        q->body_len = q->body_cap = 0;
        return;
    }
    if (q->body_len + n > q->body_cap) {
        size_t cap = q->body_cap ? q->body_cap * 2 : 4096;
        if (cap < q->body_len + n) cap = q->body_len + n;
        if (cap > q->h->max_body) cap = q->h->max_body;
        char *grown = realloc(q->body, cap);
        if (!grown) {
            q->no_memory = 1;
            return;
        }
        q->body = grown;
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, data, n);
    q->body_len += n;
}

static enum MHD_Result route(http_req *q) {
    ems_http *h = q->h;
    span spans[EMS_HTTP_MAX_PARAMS];
    char allow[128] = "";
    int nparams = -1;
    size_t ngroups = atomic_load_explicit(&h->ngroups, memory_order_acquire);
    for (size_t g = 0; g < ngroups && !q->route; g++) {
        for (size_t i = 0; i < h->groups[g].n; i++) {
            const ems_route *r = &h->groups[g].routes[i];
            span found[EMS_HTTP_MAX_PARAMS];
            int n = route_match(r->pattern, q->raw, found);
            if (n < 0) continue;
            if (strcmp(r->method, q->req.method) != 0) {
                if (!q->label) q->label = r->pattern;
                allow_add(allow, sizeof allow, r->method);
                continue;
            }
            q->route = r;
            q->route_ctx = h->groups[g].ctx;
            q->label = r->pattern;
            nparams = n;
            memcpy(spans, found, (size_t)n * sizeof found[0]);
            break;
        }
    }
    if (!q->route) return allow[0] ? reply_method(q, allow) : reply_error(q, EMS_NOT_FOUND, NULL, NULL);

    char *w = q->params;
    for (int i = 0; i < nparams; i++) {
        if (percent_decode(spans[i].p, spans[i].len, w) != 0)
            return reply_error(q, EMS_BAD_REQUEST, "invalid path parameter", NULL);
        q->req.param[i] = w;
        w += strlen(w) + 1;
    }

    ems_rc rc = authorize(q, q->route->access);
    if (rc != EMS_OK) return reply_error(q, rc, NULL, NULL);

    if (!q->has_body) return finish(q);
    /* Refuse an announced oversize body before reading it; a body of unknown size is judged as it comes. */
    const char *length = header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = length ? strtoull(length, NULL, 10) : 0;
    if (declared > h->max_body) return reply_errorf(q, EMS_TOO_LARGE, "request body exceeds %zu bytes", h->max_body);
    if (declared) {
        /* Sized as announced, up to a bound: an announcement alone should not reserve much memory. */
        size_t cap = declared < PREALLOC_MAX ? (size_t)declared : PREALLOC_MAX;
        if (!(q->body = malloc(cap))) return reply_error(q, EMS_NOMEM, NULL, NULL);
        q->body_cap = cap;
    }
    return MHD_YES;
}

static enum MHD_Result begin(http_req *q) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (strcmp(q->raw, builtins[i].path) != 0) continue;
        q->label = builtins[i].path;
        if (is_get_or_head(q->req.method)) return builtins[i].serve(q);
        char allow[] = "GET, HEAD";
        return reply_method(q, allow);
    }
    if (q->h->static_root && !is_api_path(q->raw)) return serve_static(q);
    return route(q);
}

/* The headers that say where a request's body ends, each line counted as sent. */
typedef struct {
    int lengths, codings;
    int length_bad; /* a Content-Length that is not a bare number */
    int coding_bad; /* a transfer coding other than chunked */
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    framing *f = cls;
    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->lengths++;
        f->length_bad |= !value || !*value || value[strspn(value, "0123456789")] != '\0';
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->codings++;
        f->coding_bad |= !value || strcasecmp(value, "chunked") != 0;
    }
    return MHD_YES;
}

/*
 * Where the body ends must be beyond doubt: a server and a proxy in front of
 * it that read it differently would each take a different request from the
 * bytes that follow (request smuggling).  NULL if it is, else why not.
 */
static const char *framing_problem(struct MHD_Connection *conn) {
    framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.lengths > 1) return "more than one Content-Length";
    if (f.length_bad) return "Content-Length is not a number";
    if (f.lengths && f.codings) return "both Content-Length and Transfer-Encoding";
    if (f.codings > 1 || f.coding_bad) return "unsupported Transfer-Encoding: only chunked is accepted";
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)url; /* decoded by MHD: q->raw, kept by on_uri, is what we route on */
    (void)version;
    http_req *q = *con_cls;
    if (!q) return MHD_NO; /* on_uri ran out of memory: drop the connection */
    if (!q->begun) {
        q->begun = 1;
        q->req.method = method;
        track_headers(cls, conn, 0);
        const char *problem = framing_problem(conn);
        if (problem) {
            /* Nothing after this request on the connection can be trusted to be one. */
            resp_header close_it = {NULL, "Connection", "close"};
            char message[128];
            snprintf(message, sizeof message, "invalid request framing: %s", problem);
            return reply_error(q, EMS_BAD_REQUEST, message, &close_it);
        }
        const char *length = header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
        q->has_body = (length && strtoull(length, NULL, 10) > 0) || header(q, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        /*
         * MHD closes the connection after a response queued on this first
         * call, since a body might still be coming.  Without a body, wait for
         * the next call and keep the connection alive; with one, refusals go
         * out now so that the body is never read.
         */
        return q->has_body ? begin(q) : MHD_YES;
    }
    if (*upload_size) {
        absorb(q, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->answered) return MHD_YES;
    return q->has_body ? finish(q) : begin(q);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
    size_t n = strcspn(uri, "?");
    /* raw, then room for the decoded parameters (never longer) and their NULs. */
    http_req *q = calloc(1, sizeof *q + 2 * (n + 1) + EMS_HTTP_MAX_PARAMS);
    if (!q) return NULL;
    q->h = cls;
    q->conn = conn;
    clock_gettime(CLOCK_MONOTONIC, &q->t0);
    memcpy(q->raw, uri, n);
    q->raw[n] = '\0';
    q->params = q->raw + n + 1;
    q->req.path = q->raw;
    q->req.impl = q;
    return q;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    track_headers(cls, conn, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    http_req *q = *con_cls;
    if (!q) return;
    json_decref(q->req.body);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

/* MHD's own messages: kept as the reason while starting, logged afterwards. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    ems_http *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '"') *p = ' ';
    if (atomic_load(&h->starting)) {
        pthread_mutex_lock(&h->lock);
        snprintf(h->start_err, sizeof h->start_err, "%s", msg);
        pthread_mutex_unlock(&h->lock);
    }
    ems_log(EMS_LOG_INFO, "http.mhd", "msg=\"%s\"", msg);
}

/* ---- in-process calls ------------------------------------------------------- */

/* The value of query argument name of an in-process call, or NULL. */
static const char *call_arg(const http_req *q, const char *name) {
    for (const char *p = q->args, *end = q->args + q->args_len; p && p < end;) {
        const char *value = p + strlen(p) + 1;
        if (strcmp(p, name) == 0) return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

/* Decodes "a=1&b=x%20y" into q->args as MHD would ('+' is a space); -1 on no memory or a bad escape. */
static int call_args_parse(http_req *q, const char *query) {
    size_t n = strlen(query);
    if (!n) return 0;
    char *spaced = strdup(query), *w = q->args = malloc(n + 2 * (n + 1)); /* per argument: its bytes, two NULs */
    int rc = -1;
    if (!spaced || !w) goto cleanup;
    for (char *c = spaced; *c; c++)
        if (*c == '+') *c = ' '; /* before decoding: an encoded "%2B" stays a plus */
    for (const char *p = spaced; *p;) {
        size_t len = strcspn(p, "&");
        size_t name_len = strcspn(p, "=&");
        const char *value = name_len < len ? p + name_len + 1 : p + len;
        size_t value_len = (size_t)(p + len - value);
        if (name_len) {
            if (percent_decode(p, name_len, w) != 0) goto cleanup;
            w += strlen(w) + 1;
            if (percent_decode(value, value_len, w) != 0) goto cleanup;
            w += strlen(w) + 1;
        }
        p += len;
        if (*p == '&') p++;
    }
    q->args_len = (size_t)(w - q->args);
    rc = 0;
cleanup:
    free(spaced);
    return rc;
}

/* The first route for method and raw path: its parameters' spans and count, or -1 (*allowed: the path has others). */
static int call_route(ems_http *h, http_req *q, span spans[EMS_HTTP_MAX_PARAMS], int *allowed) {
    size_t ngroups = atomic_load_explicit(&h->ngroups, memory_order_acquire);
    *allowed = 0;
    for (size_t g = 0; g < ngroups; g++) {
        for (size_t i = 0; i < h->groups[g].n; i++) {
            const ems_route *r = &h->groups[g].routes[i];
            int n = route_match(r->pattern, q->raw, spans);
            if (n < 0) continue;
            if (strcmp(r->method, q->req.method) != 0) {
                *allowed = 1;
                continue;
            }
            q->route = r;
            q->route_ctx = h->groups[g].ctx;
            q->label = r->pattern;
            return n;
        }
    }
    return -1;
}

/* What the route's access level asks, of a principal the caller vouches for (no token is verified again). */
static ems_rc call_access(ems_access access, const ems_principal *who) {
    if (!access_rules[access].needs_token) return EMS_OK;
    if (who->role == EMS_ROLE_NONE) return EMS_UNAUTHORIZED;
    if (access_rules[access].needs_admin && who->role != EMS_ROLE_ADMIN) return EMS_FORBIDDEN;
    return EMS_OK;
}

/* Runs the route for q; its result, and what it left in resp. */
static ems_rc call_run(ems_http *h, http_req *q, ems_resp *resp) {
    span spans[EMS_HTTP_MAX_PARAMS];
    int allowed = 0, nparams = call_route(h, q, spans, &allowed);
    if (nparams < 0) return allowed ? EMS_METHOD : EMS_NOT_FOUND;
    char *w = q->params;
    for (int i = 0; i < nparams; i++) {
        if (percent_decode(spans[i].p, spans[i].len, w) != 0)
            return ems_fail(resp, EMS_BAD_REQUEST, "invalid path parameter");
        q->req.param[i] = w;
        w += strlen(w) + 1;
    }
    ems_rc rc = call_access(q->route->access, &q->req.who);
    return rc ? rc : q->route->handler(&q->req, resp, q->route_ctx);
}

ems_rc ems_http_call(ems_http *h, const char *method, const char *target, const ems_principal *who, const char *token,
                     long *status, char **body) {
    size_t n = strcspn(target, "?");
    ems_resp resp = {0};
    ems_rc rc = EMS_NOMEM, hrc;
    char *out = NULL;
    /* As on_uri lays it out: raw, then room for the decoded parameters. */
    http_req *q = calloc(1, sizeof *q + 2 * (n + 1) + EMS_HTTP_MAX_PARAMS);
    if (!q) return EMS_NOMEM;
    q->h = h;
    memcpy(q->raw, target, n);
    q->params = q->raw + n + 1;
    q->req.path = q->raw;
    q->req.impl = q;
    q->req.method = method;
    q->req.token = token;
    if (who) q->req.who = *who;
    else q->req.who.role = EMS_ROLE_NONE;
    snprintf(q->ip, sizeof q->ip, "local");
    if (call_args_parse(q, target[n] == '?' ? target + n + 1 : "") != 0)
        hrc = q->args ? ems_fail(&resp, EMS_BAD_REQUEST, "invalid query string") : EMS_NOMEM;
    else hrc = call_run(h, q, &resp);

    long st = hrc ? ems_rc_status(hrc) : resp.status ? resp.status : 204;
    if (hrc) {
        const char *message = resp.message ? resp.message : ems_rc_message(hrc);
        json_t *env = json_pack("{s:{s:s,s:s}}", "error", "code", ems_rc_code(hrc), "message", message);
        if (!env) env = json_pack("{s:{s:s,s:s}}", "error", "code", ems_rc_code(hrc), "message", ems_rc_message(hrc));
        out = env ? json_dumps(env, JSON_COMPACT) : NULL;
        json_decref(env);
    } else if (st < 100 || st > 599) {
        ems_log(EMS_LOG_ERROR, "http.bad_status", "route=%s status=%ld", q->label, st);
        st = 500;
        out = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}");
    } else if ((out = malloc(resp.len + 1)) != NULL) {
        if (resp.len) memcpy(out, resp.data, resp.len);
        out[resp.len] = '\0';
    }
    if (out) {
        *status = st;
        *body = out;
        rc = EMS_OK;
    }
    resp_clear(&resp);
    json_decref(q->req.body);
    free(q->args);
    free(q);
    return rc;
}

/* ---- the server ------------------------------------------------------------ */

ems_http *ems_http_new(const ems_http_opts *opts) {
    static const ems_http_opts defaults = {0};
    if (!opts) opts = &defaults;
    ems_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->lock, NULL);
    h->bind = strdup(opts->bind ? opts->bind : "127.0.0.1");
    h->static_dir = opts->static_dir ? strdup(opts->static_dir) : NULL;
    h->ingest_token = opts->ingest_token && *opts->ingest_token ? strdup(opts->ingest_token) : NULL;
    h->ingest_len = h->ingest_token ? strlen(h->ingest_token) : 0;
    h->want_port = opts->port;
    h->threads = opts->threads;
    h->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    h->max_header = opts->max_header ? opts->max_header : DEFAULT_MAX_HEADER;
    h->max_conns = opts->max_conns ? opts->max_conns : DEFAULT_MAX_CONNS;
    h->timeout_s = opts->timeout_s ? opts->timeout_s : DEFAULT_TIMEOUT_S;
    h->max_per_ip = opts->max_conns_per_ip;
    h->header_timeout_s = opts->header_timeout_s ? opts->header_timeout_s : DEFAULT_HEADER_TIMEOUT_S;
    h->exempt_text = opts->conn_limit_exempt ? strdup(opts->conn_limit_exempt) : NULL;
    h->metrics_access = opts->metrics_access == EMS_ACCESS_ANY ? EMS_ACCESS_ANY : EMS_ACCESS_ADMIN;
    h->metrics_token = opts->metrics_token && *opts->metrics_token ? strdup(opts->metrics_token) : NULL;
    h->metrics_token_len = h->metrics_token ? strlen(h->metrics_token) : 0;
    h->jwt = opts->jwt;
    pthread_mutex_init(&h->conn_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the sweep's deadlines are monotonic */
    pthread_cond_init(&h->sweep_wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!h->bind || (opts->static_dir && !h->static_dir) ||
        (opts->ingest_token && *opts->ingest_token && !h->ingest_token) ||
        (opts->conn_limit_exempt && !h->exempt_text) ||
        (opts->metrics_token && *opts->metrics_token && !h->metrics_token)) {
        ems_http_free(h);
        return NULL;
    }
    return h;
}

ems_rc ems_http_raw_body(ems_http *h, ems_handler fn) {
    ems_rc rc = EMS_OK;
    pthread_mutex_lock(&h->lock);
    size_t n = atomic_load_explicit(&h->nraw, memory_order_relaxed);
    if (n == MAX_RAW) {
        ems_log(EMS_LOG_ERROR, "http.raw_full", "max=%d", MAX_RAW);
        rc = EMS_INTERNAL;
    } else {
        h->raw[n] = fn;
        atomic_store_explicit(&h->nraw, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

ems_rc ems_http_routes(ems_http *h, const ems_route *routes, size_t n, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].method || !routes[i].handler || !pattern_valid(routes[i].pattern) ||
            (unsigned)routes[i].access >= sizeof access_rules / sizeof access_rules[0]) {
            ems_log(EMS_LOG_ERROR, "http.route_invalid", "pattern=\"%s\"",
                    routes[i].pattern ? routes[i].pattern : "(null)");
            return EMS_BAD_REQUEST;
        }
    }
    ems_rc rc = EMS_OK;
    pthread_mutex_lock(&h->lock);
    size_t g = atomic_load_explicit(&h->ngroups, memory_order_relaxed);
    if (g == MAX_GROUPS) {
        ems_log(EMS_LOG_ERROR, "http.routes_full", "max=%d", MAX_GROUPS);
        rc = EMS_INTERNAL;
    } else {
        h->groups[g] = (route_group){routes, n, ctx};
        atomic_store_explicit(&h->ngroups, g + 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void ems_http_token_check(ems_http *h, ems_token_check fn, void *ctx) {
    token_hook *hook = fn ? calloc(1, sizeof *hook) : NULL;
    if (fn && !hook) {
        /* Without the hook revoked tokens would pass: refuse all of them instead. */
        ems_log(EMS_LOG_ERROR, "http.token_check_lost", "reason=out_of_memory");
        atomic_store(&h->hook_broken, 1);
        return;
    }
    pthread_mutex_lock(&h->lock);
    if (hook) {
        hook->fn = fn;
        hook->ctx = ctx;
        hook->older = h->hooks;
        h->hooks = hook;
    }
    atomic_store_explicit(&h->hook, hook, memory_order_release);
    atomic_store(&h->hook_broken, 0);
    pthread_mutex_unlock(&h->lock);
}

ems_rc ems_http_ready_check(ems_http *h, ems_ready_check fn, void *ctx) {
    if (!fn) return EMS_BAD_REQUEST;
    ems_rc rc = EMS_OK;
    pthread_mutex_lock(&h->lock);
    size_t n = atomic_load_explicit(&h->nready, memory_order_relaxed);
    if (n == MAX_READY) {
        ems_log(EMS_LOG_ERROR, "http.ready_checks_full", "max=%d", MAX_READY);
        rc = EMS_INTERNAL;
    } else {
        h->ready[n] = (ready_entry){fn, ctx};
        atomic_store_explicit(&h->nready, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

ems_rc ems_http_start(ems_http *h, char *err, size_t errlen) {
    if (h->daemon) {
        snprintf(err, errlen, "server already started on port %d", h->port);
        return EMS_CONFLICT;
    }
    if (h->static_dir && !h->static_root) {
        if (!(h->static_root = realpath(h->static_dir, NULL))) {
            snprintf(err, errlen, "static_dir %s: %s", h->static_dir, strerror(errno));
            return EMS_BAD_REQUEST;
        }
        h->static_root_len = strlen(h->static_root);
        if (h->static_root_len == 1) h->static_root_len = 0; /* "/": every resolved path is under it */
    }

    char why[128];
    if (ems_cidr_list_parse(h->exempt_text, h->exempt, MAX_EXEMPT, &h->nexempt, why, sizeof why) != EMS_OK) {
        snprintf(err, errlen, "conn_limit_exempt: %s", why);
        return EMS_BAD_REQUEST;
    }
    if (h->want_port < 0 || h->want_port > 65535) {
        snprintf(err, errlen, "port %d is out of range", h->want_port);
        return EMS_BAD_REQUEST;
    }
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->want_port)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)h->want_port)};
    const struct sockaddr *addr;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, h->bind, &v4.sin_addr) == 1) {
        addr = (const struct sockaddr *)&v4;
    } else if (inet_pton(AF_INET6, h->bind, &v6.sin6_addr) == 1) {
        addr = (const struct sockaddr *)&v6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "bind address %s is not an IP address", h->bind);
        return EMS_BAD_REQUEST;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = h->threads ? h->threads : (cores > 0 ? (unsigned)cores : 1);
    h->start_err[0] = '\0';
    atomic_store(&h->starting, 1);
    /* The logger goes first: MHD reports problems with the options that follow through it. */
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)h->want_port, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u, /* 1 = no pool */
        MHD_OPTION_CONNECTION_LIMIT, h->max_conns, MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->max_header + POOL_SLACK, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    atomic_store(&h->starting, 0);
    if (!h->daemon) {
        pthread_mutex_lock(&h->lock);
        snprintf(err, errlen, "cannot listen on %s:%d%s%s", h->bind, h->want_port, h->start_err[0] ? ": " : "",
                 h->start_err);
        pthread_mutex_unlock(&h->lock);
        return EMS_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : h->want_port;
    int rc = pthread_create(&h->sweeper, NULL, sweep, h);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the connection sweeper: %s", strerror(rc));
        MHD_stop_daemon(h->daemon);
        h->daemon = NULL;
        return EMS_UNAVAILABLE;
    }
    h->sweeping = 1;
    ems_log(EMS_LOG_INFO, "http.listen", "bind=%s port=%d threads=%u max_per_ip=%u header_timeout_s=%u", h->bind,
            h->port, threads, h->max_per_ip, h->header_timeout_s);
    return EMS_OK;
}

int ems_http_port(const ems_http *h) { return h->port; }

void ems_http_free(ems_http *h) {
    if (!h) return;
    if (h->sweeping) {
        pthread_mutex_lock(&h->conn_lock);
        h->sweep_stop = 1;
        pthread_cond_signal(&h->sweep_wake);
        pthread_mutex_unlock(&h->conn_lock);
        pthread_join(h->sweeper, NULL);
    }
    if (h->daemon) MHD_stop_daemon(h->daemon); /* closes every connection: the tracks go with them */
    for (token_hook *k = h->hooks, *older; k; k = older) {
        older = k->older;
        free(k);
    }
    if (h->ingest_token) explicit_bzero(h->ingest_token, h->ingest_len);
    free(h->ingest_token);
    if (h->metrics_token) explicit_bzero(h->metrics_token, h->metrics_token_len);
    free(h->metrics_token);
    free(h->exempt_text);
    pthread_cond_destroy(&h->sweep_wake);
    pthread_mutex_destroy(&h->conn_lock);
    free(h->static_root);
    free(h->static_dir);
    free(h->bind);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
