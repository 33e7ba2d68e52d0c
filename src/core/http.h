/*
 * http.h — the HTTP server every role serves its REST API with.
 *
 * libmicrohttpd underneath (epoll, a thread pool sized to the cores).  A
 * role hands the server a static table of routes; the server matches the
 * method and path, checks the caller's token against the route's access
 * level, parses a JSON body, calls the handler, and turns the handler's
 * ems_rc into a status and the JSON error envelope
 *     {"error":{"code":"not_found","message":"device 7f… not found"}}
 *
 * Every server also answers GET /healthz (always 200), GET /readyz (200 only
 * while every registered readiness check passes, else 503) and GET /metrics
 * (Prometheus text; open, or only to an admin token and the metrics secret,
 * see metrics_access).  With a static_dir it serves the web app for GET paths
 * outside /api: files with their content type, no path traversal, and
 * index.html for unknown paths (client-side routing).
 *
 * What a client may hold: max_conns connections in all, max_conns_per_ip from
 * one address (addresses in conn_limit_exempt, such as a gateway's, are not
 * counted; more connections are refused at accept), and header_timeout_s from
 * accept to the end of a request's headers, however the bytes trickle in (past
 * it the connection is closed).  A request whose length is ambiguous (two
 * Content-Lengths, Content-Length beside Transfer-Encoding, a transfer coding
 * other than chunked) gets 400 and the connection is closed, so that nothing
 * sent behind it is read as a request of its own.
 *
 * Handlers run on the pool's threads, several at once.
 */
#ifndef EMS_HTTP_H
#define EMS_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "auth.h"
#include "result.h"

typedef enum {
    EMS_ACCESS_ANY,    /* anyone; `who` is filled if a valid token came along */
    EMS_ACCESS_USER,   /* a valid token, client or admin (else 401) */
    EMS_ACCESS_ADMIN,  /* an admin token (401 without a valid token, 403 for a client) */
    EMS_ACCESS_INGEST, /* "Bearer <ingest_token>" or an admin token */
} ems_access;

#define EMS_HTTP_MAX_PARAMS 4

typedef struct ems_req {
    const char *method;
    const char *path;                       /* without the query string */
    const char *param[EMS_HTTP_MAX_PARAMS]; /* path parameters in pattern order */
    json_t *body;                           /* parsed JSON body, NULL if none was sent */
    ems_principal who;                      /* who.role == EMS_ROLE_NONE when anonymous */
    const char *token;                      /* the bearer token as sent, or NULL */
    int ingest;                             /* 1 if authenticated with the ingest token */
    void *impl;                             /* the server's own */
    const char *raw_body;                   /* see ems_http_raw_body: the body as sent (no NUL added) */
    size_t raw_len;                         /* its length in bytes */
} ems_req;

typedef struct ems_resp ems_resp; /* owned by the server */

/* Query-string argument (URL-decoded) or NULL. */
const char *ems_req_query(const ems_req *r, const char *name);
/* Request header (case-insensitive name) or NULL. */
const char *ems_req_header(const ems_req *r, const char *name);
/* The caller's IP address as text. */
const char *ems_req_ip(const ems_req *r);

/*
 * Unpacks req->body with json_unpack_ex(JSON_STRICT) and the given format.
 * On failure fills the error message ("field 'name': ..." as jansson says it)
 * and returns EMS_BAD_REQUEST; a missing body is EMS_BAD_REQUEST too.
 */
ems_rc ems_req_unpack(ems_req *r, ems_resp *resp, const char *fmt, ...);

/*
 * Replies.  Each returns EMS_OK so that a handler can `return ems_reply_json(...)`.
 * Numbers are written with 15 significant digits: 0.721188, not the binary
 * noise 0.72118800000000005 that a double holds.
 */
ems_rc ems_reply_json(ems_resp *resp, int status, json_t *body); /* steals body */
ems_rc ems_reply_raw(ems_resp *resp, int status, const char *content_type, char *data,
                     size_t len);                                             /* takes data (malloc'd) */
ems_rc ems_reply_empty(ems_resp *resp, int status);                           /* e.g. 204 */
ems_rc ems_reply_header(ems_resp *resp, const char *name, const char *value); /* copies both */

/*
 * Records the message for the error envelope and returns rc, so that a
 * handler can `return ems_fail(resp, EMS_NOT_FOUND, "device %s not found", id);`
 * The first message recorded for a response stands: a caller may wrap a
 * failure in a general message without hiding the specific one.
 */
ems_rc ems_fail(ems_resp *resp, ems_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef ems_rc (*ems_handler)(ems_req *req, ems_resp *resp, void *ctx);

/*
 * A route.  In the pattern, {name} matches one non-empty path segment; a
 * literal may follow it in the same segment ("/api/consumption/{id}.csv").
 * The first matching route wins.  A path that matches with another method
 * gets 405.
 */
typedef struct ems_route {
    const char *method;
    const char *pattern;
    ems_access access;
    ems_handler handler;
} ems_route;

typedef struct ems_http_opts {
    const char *bind;              /* address to listen on; NULL = "127.0.0.1" */
    int port;                      /* 0 = any free port (see ems_http_port) */
    unsigned threads;              /* 0 = number of cores */
    size_t max_body;               /* bytes; 0 = 1 MiB; larger bodies get 413 */
    size_t max_header;             /* bytes of headers per request; 0 = 16 KiB */
    unsigned max_conns;            /* 0 = 4096 */
    unsigned timeout_s;            /* idle connection timeout; 0 = 30 */
    unsigned max_conns_per_ip;     /* connections one client address may hold; 0 = no limit */
    const char *conn_limit_exempt; /* comma-separated addresses or CIDRs max_conns_per_ip spares, or NULL */
    unsigned header_timeout_s;     /* accept (or the previous response) to end of headers; 0 = 10 */
    ems_access metrics_access;     /* EMS_ACCESS_ANY (the default) or EMS_ACCESS_ADMIN for GET /metrics */
    const char *metrics_token;     /* with EMS_ACCESS_ADMIN: a bearer secret that may read /metrics too, or NULL */
    const char *static_dir;        /* web app files, or NULL */
    ems_jwt *jwt;                  /* token verifier; NULL: only EMS_ACCESS_ANY routes work */
    const char *ingest_token;      /* secret for EMS_ACCESS_INGEST, or NULL */
} ems_http_opts;

typedef struct ems_http ems_http;

/* Called after a token verified: EMS_OK to accept, EMS_UNAUTHORIZED if revoked. */
typedef ems_rc (*ems_token_check)(const ems_principal *who, void *ctx);
/* Readiness check: 1 = ready; on 0 writes a short reason into why. */
typedef int (*ems_ready_check)(void *ctx, char *why, size_t len);

ems_http *ems_http_new(const ems_http_opts *opts);
/* Adds routes (the table must outlive the server); ctx is passed to their handlers. */
ems_rc ems_http_routes(ems_http *h, const ems_route *routes, size_t n, void *ctx);
void ems_http_token_check(ems_http *h, ems_token_check fn, void *ctx);
/*
 * Requests routed to handler fn get their body unparsed, in req->raw_body
 * and req->raw_len (req->body stays NULL; Content-Type is still checked):
 * for hot paths that read their own format.  EMS_INTERNAL when full.
 */
ems_rc ems_http_raw_body(ems_http *h, ems_handler fn);
ems_rc ems_http_ready_check(ems_http *h, ems_ready_check fn, void *ctx);
/*
 * Starts listening.  EMS_UNAVAILABLE if the port cannot be bound;
 * EMS_BAD_REQUEST (err names it) for a bad bind address, static_dir or
 * conn_limit_exempt entry.
 */
ems_rc ems_http_start(ems_http *h, char *err, size_t errlen);

/*
 * Calls a route of this server in-process, on the calling thread: no socket
 * and no pool thread, so a handler can read another role of the same process
 * (embedded mode) without waiting for a free thread of its own server.  The
 * server need not be started.  target is the path and query as they would be
 * sent ("/api/devices?owner=…&limit=100", percent-encoded); no body.  The
 * call runs as `who` (NULL: anonymous), a principal this server has already
 * authorized (the token is not verified again), with `token` as req->token;
 * the route's access level is checked against it as for a request.  Only
 * routes are reachable: no built-ins, no static files; handlers see no
 * request headers and "local" as the address.
 * EMS_OK with *status (any status: 404 when no route matches, 403, 503...)
 * and *body (malloc'd, NUL-terminated, maybe empty; errors in the usual
 * JSON envelope); EMS_NOMEM.
 */
ems_rc ems_http_call(ems_http *h, const char *method, const char *target, const ems_principal *who, const char *token,
                     long *status, char **body);
int ems_http_port(const ems_http *h);
void ems_http_free(ems_http *h); /* stops it first; accepts NULL */

#endif
