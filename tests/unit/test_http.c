/*
 * test_http.c — the HTTP server over the wire: a real server on 127.0.0.1
 * and an ephemeral port, spoken to by a small HTTP/1.1 client over plain
 * sockets (so that the test can send what a browser never would: raw
 * traversal paths, lying headers, chunked bodies).
 *
 * Covers routing (parameters, suffix patterns, 404, 405), every access level
 * against every kind of token, the token-check hook, the ingest secret, body
 * limits and checks (413, 415, 400), strict unpacking, the error envelope,
 * the built-ins, static files with their traversal attempts and the
 * client-side-routing fallback, handlers running on several threads, and
 * the hardening: ambiguous framing refused with the connection closed,
 * /metrics behind an admin token, connections per client address, and the
 * deadline for a request's headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "fixture.h"
#include "http.h"
#include "log.h"

#define MAX_BODY 4096
#define INGEST_SECRET "ingest-secret-0123456789"
#define SECRET_TEXT "top secret outside the web root"

/* ---- fixture -------------------------------------------------------------- */

static struct {
    char dir[64];
    char static_dir[96];
    ems_jwt *jwt;
    ems_http *server;
    int port;
    char *client_token, *admin_token, *expired_token, *revoked_token;
} fx;

static atomic_int ready_flag = 1;
static atomic_int calls, in_flight, max_in_flight;

/* ---- a small HTTP/1.1 client ---------------------------------------------- */

typedef struct {
    int status;
    char head[8192]; /* status line and headers */
    char *body;
    size_t body_len;
} http_res;

static void res_free(http_res *r) {
    free(r->body);
    r->body = NULL;
}

/* Sends raw bytes, reads the whole answer (the request asks the server to close). */
static int http_raw(const char *request, size_t len, http_res *res) {
    memset(res, 0, sizeof *res);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    for (size_t sent = 0; sent < len;) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may answer and close before reading it all */
        sent += (size_t)n;
    }
    size_t cap = 16384, got = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (got + 4096 > cap) {
            char *grown = realloc(buf, cap *= 2);
            assert_non_null(grown);
            buf = grown;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.1 %d", &res->status) != 1) {
        free(buf);
        return -1;
    }
    size_t head_len = (size_t)(end - buf);
    if (head_len >= sizeof res->head) head_len = sizeof res->head - 1;
    memcpy(res->head, buf, head_len);
    res->head[head_len] = '\0';
    res->body_len = got - (size_t)(end + 4 - buf);
    res->body = malloc(res->body_len + 1);
    memcpy(res->body, end + 4, res->body_len);
    res->body[res->body_len] = '\0';
    free(buf);
    return 0;
}

/* One request; extra is "Name: value\r\n" lines or NULL; a body gets a Content-Length. */
static http_res call(const char *method, const char *path, const char *extra, const char *body) {
    char req[16384];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method, path,
                     extra ? extra : "");
    if (body) n += snprintf(req + n, sizeof req - (size_t)n, "Content-Length: %zu\r\n", strlen(body));
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n%s", body ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof req);
    http_res res;
    assert_int_equal(http_raw(req, (size_t)n, &res), 0);
    return res;
}

/* A response header's value (case-insensitive name), copied into a static buffer, or NULL. */
static const char *res_header(const http_res *r, const char *name) {
    static char value[512];
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r");
            if (len >= sizeof value) len = sizeof value - 1;
            memcpy(value, v, len);
            value[len] = '\0';
            return value;
        }
    }
    return NULL;
}

static char *auth_line(const char *token) {
    static char line[4096];
    snprintf(line, sizeof line, "Authorization: Bearer %s\r\n", token);
    return line;
}

static json_t *res_json(const http_res *r) {
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, 0, &err);
    if (!j) fprintf(stderr, "not JSON (%s): %s\n", err.text, r->body);
    assert_non_null(j);
    return j;
}

/* Asserts the error envelope: exactly {"error":{"code":code,"message":<string>}}; returns the message. */
static void assert_envelope(const http_res *r, int status, const char *code, const char *message_part) {
    if (r->status != status) fprintf(stderr, "status %d, body %s\n", r->status, r->body);
    assert_int_equal(r->status, status);
    assert_string_equal(res_header(r, "Content-Type"), "application/json");
    json_t *j = res_json(r);
    assert_int_equal(json_object_size(j), 1);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 2);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *message = json_string_value(json_object_get(e, "message"));
    assert_non_null(message);
    if (message_part && !strstr(message, message_part)) fprintf(stderr, "message: %s\n", message);
    if (message_part) assert_non_null(strstr(message, message_part));
    json_decref(j);
}

/* ---- handlers ------------------------------------------------------------- */

static ems_rc h_list(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    assert_string_equal(ctx, "things-ctx");
    return ems_reply_json(resp, 200, json_pack("{s:s}", "route", "list"));
}

static ems_rc h_thing(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    assert_null(req->param[1]);
    return ems_reply_json(resp, 200, json_pack("{s:s}", "id", req->param[0]));
}

static ems_rc h_owner(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    return ems_reply_json(resp, 200, json_pack("{s:s,s:s}", "id", req->param[0], "user", req->param[1]));
}

static ems_rc h_delete(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)resp;
    (void)ctx;
    return EMS_OK; /* no reply: 204 */
}

static ems_rc h_csv(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    char *text = NULL;
    int n = asprintf(&text, "csv:%s", req->param[0]);
    assert_true(n > 0);
    return ems_reply_raw(resp, 200, "text/csv", text, (size_t)n);
}

static ems_rc h_consumption(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    return ems_reply_json(resp, 200, json_pack("{s:s}", "json", req->param[0]));
}

/* Who is calling, as the server saw it. */
static ems_rc h_who(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    return ems_reply_json(resp, 200,
                          json_pack("{s:s,s:s,s:i,s:b}", "role", ems_role_name(req->who.role), "username",
                                    req->who.username, "ingest", req->ingest, "token", req->token != NULL));
}

static ems_rc h_echo(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    const char *name;
    int count, flag = 0;
    ems_rc rc = ems_req_unpack(req, resp, "{s:s, s:i, s?b}", "name", &name, "count", &count, "flag", &flag);
    if (rc != EMS_OK) return rc;
    return ems_reply_json(resp, 201, json_pack("{s:s,s:i,s:b}", "name", name, "count", count, "flag", flag));
}

static ems_rc h_nested(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    const char *name;
    json_t *tags;
    ems_rc rc = ems_req_unpack(req, resp, "{s:{s:s}, s:o}", "device", "name", &name, "tags", &tags);
    if (rc != EMS_OK) return rc;
    return ems_reply_empty(resp, 202);
}

static ems_rc h_fail(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    ems_reply_json(resp, 200, json_pack("{s:s}", "discarded", "yes")); /* an error wins over a reply */
    assert_int_equal(ems_reply_header(resp, "X-Extra", "kept"), EMS_OK);
    return ems_fail(resp, EMS_CONFLICT, "thing %s exists", "x");
}

static ems_rc h_plain_fail(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)resp;
    (void)ctx;
    return EMS_RATE_LIMITED;
}

static ems_rc h_inject(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    return ems_reply_header(resp, "X-Evil", "a\r\nSet-Cookie: b=c");
}

static ems_rc h_query(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    const char *q = ems_req_query(req, "q"), *h = ems_req_header(req, "x-test");
    assert_null(ems_req_query(req, "absent"));
    return ems_reply_json(resp, 200,
                          json_pack("{s:s?,s:s?,s:s,s:s}", "q", q, "h", h, "ip", ems_req_ip(req), "path", req->path));
}

static ems_rc h_count(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    atomic_fetch_add(&calls, 1);
    return ems_reply_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

/* Stays a while so that overlapping calls are seen. */
static ems_rc h_slow(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    for (int seen = atomic_load(&max_in_flight);
         now > seen && !atomic_compare_exchange_weak(&max_in_flight, &seen, now);)
        ;
    usleep(150 * 1000);
    atomic_fetch_sub(&in_flight, 1);
    return ems_reply_empty(resp, 204);
}

static char things_ctx[] = "things-ctx";

static const ems_route thing_routes[] = {
    {"GET", "/api/things", EMS_ACCESS_ANY, h_list},
    {"GET", "/api/things/{id}", EMS_ACCESS_ANY, h_thing},
    {"DELETE", "/api/things/{id}", EMS_ACCESS_ADMIN, h_delete},
    {"PUT", "/api/things/{id}/owner/{user}", EMS_ACCESS_ADMIN, h_owner},
};

static const ems_route other_routes[] = {
    {"GET", "/api/consumption/{id}.csv", EMS_ACCESS_ANY, h_csv},
    {"GET", "/api/consumption/{id}", EMS_ACCESS_ANY, h_consumption},
    {"GET", "/api/me", EMS_ACCESS_USER, h_who},
    {"GET", "/api/whoami", EMS_ACCESS_ANY, h_who},
    {"POST", "/api/readings", EMS_ACCESS_INGEST, h_who},
    {"POST", "/api/echo", EMS_ACCESS_ANY, h_echo},
    {"PATCH", "/api/echo", EMS_ACCESS_ANY, h_echo},
    {"POST", "/api/nested", EMS_ACCESS_ANY, h_nested},
    {"GET", "/api/fail", EMS_ACCESS_ANY, h_fail},
    {"GET", "/api/plain-fail", EMS_ACCESS_ANY, h_plain_fail},
    {"GET", "/api/inject", EMS_ACCESS_ANY, h_inject},
    {"GET", "/api/query", EMS_ACCESS_ANY, h_query},
    {"GET", "/api/count", EMS_ACCESS_ANY, h_count},
    {"GET", "/api/slow", EMS_ACCESS_ANY, h_slow},
};

static const ems_route late_routes[] = {
    {"GET", "/api/late/{id}", EMS_ACCESS_ANY, h_thing},
};

static int check_ready(void *ctx, char *why, size_t len) {
    (void)ctx;
    if (atomic_load(&ready_flag)) return 1;
    snprintf(why, len, "database down");
    return 0;
}

static ems_rc reject_revoked(const ems_principal *who, void *ctx) {
    (void)ctx;
    return strcmp(who->username, "revoked") == 0 ? EMS_UNAUTHORIZED : EMS_OK;
}

/* ---- setup ---------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *mint(const char *username, ems_role role, int64_t ttl) {
    ems_principal p = {0};
    ems_uuid(p.id);
    snprintf(p.username, sizeof p.username, "%s", username);
    p.role = role;
    p.ver = 1;
    char *token = NULL;
    assert_int_equal(ems_jwt_sign(fx.jwt, &p, ttl, &token, NULL), EMS_OK);
    return token;
}

static int setup(void **state) {
    (void)state;
    ems_log_set_level(EMS_LOG_WARN);
    if (!fx_tmpdir(fx.dir, sizeof fx.dir, "http")) return -1;
    char priv[128], pub[128], err[256];
    snprintf(priv, sizeof priv, "%s/jwt.key", fx.dir);
    snprintf(pub, sizeof pub, "%s/jwt.pub", fx.dir);
    if (ems_jwt_load(priv, pub, 1, &fx.jwt, err, sizeof err) != EMS_OK) {
        fprintf(stderr, "keys: %s\n", err);
        return -1;
    }
    fx.client_token = mint("carol", EMS_ROLE_CLIENT, 3600);
    fx.admin_token = mint("alice", EMS_ROLE_ADMIN, 3600);
    fx.expired_token = mint("eve", EMS_ROLE_ADMIN, -60);
    fx.revoked_token = mint("revoked", EMS_ROLE_CLIENT, 3600);

    /* The web root, a secret beside it, and a link from inside to the secret. */
    snprintf(fx.static_dir, sizeof fx.static_dir, "%s/www", fx.dir);
    char assets[128], link_path[160], secret[128];
    snprintf(assets, sizeof assets, "%s/assets", fx.static_dir);
    if (mkdir(fx.static_dir, 0755) || mkdir(assets, 0755)) return -1;
    write_file(fx.dir, "secret.txt", SECRET_TEXT);
    write_file(fx.static_dir, "index.html", "<!doctype html><title>EMS</title>");
    write_file(fx.static_dir, "app.js", "console.log('app');");
    write_file(fx.static_dir, "style.css", "body{}");
    write_file(fx.static_dir, "data.json", "{}");
    write_file(fx.static_dir, "logo.svg", "<svg/>");
    write_file(fx.static_dir, "thing.xyz", "xyz");
    write_file(fx.static_dir, ".env", "SECRET=1");
    write_file(assets, "app-3f2a.js", "export{};");
    snprintf(secret, sizeof secret, "%s/secret.txt", fx.dir);
    snprintf(link_path, sizeof link_path, "%s/link.txt", fx.static_dir);
    if (symlink(secret, link_path)) return -1;

    ems_http_opts o = {.bind = "127.0.0.1",
                       .port = 0,
                       .threads = 2,
                       .max_body = MAX_BODY,
                       .static_dir = fx.static_dir,
                       .jwt = fx.jwt,
                       .ingest_token = INGEST_SECRET};
    fx.server = ems_http_new(&o);
    if (!fx.server) return -1;
    if (ems_http_routes(fx.server, thing_routes, sizeof thing_routes / sizeof thing_routes[0], things_ctx) ||
        ems_http_routes(fx.server, other_routes, sizeof other_routes / sizeof other_routes[0], NULL) ||
        ems_http_ready_check(fx.server, check_ready, NULL))
        return -1;
    ems_http_token_check(fx.server, reject_revoked, NULL);
    if (ems_http_start(fx.server, err, sizeof err) != EMS_OK) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    fx.port = ems_http_port(fx.server);
    return fx.port > 0 ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state) {
    (void)state;
    ems_http_free(fx.server);
    ems_jwt_free(fx.jwt);
    free(fx.client_token);
    free(fx.admin_token);
    free(fx.expired_token);
    free(fx.revoked_token);
    nftw(fx.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_builtins(void **state) {
    (void)state;
    http_res r = call("GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(res_header(&r, "Content-Type"), "application/json");
    assert_string_equal(res_header(&r, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(res_header(&r, "Cache-Control"), "no-store");
    res_free(&r);

    r = call("POST", "/healthz", NULL, NULL);
    assert_envelope(&r, 405, "method_not_allowed", NULL);
    assert_string_equal(res_header(&r, "Allow"), "GET, HEAD");
    res_free(&r);
}

static void test_readyz_flips(void **state) {
    (void)state;
    http_res r = call("GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ready\"}");
    res_free(&r);

    atomic_store(&ready_flag, 0);
    r = call("GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 503);
    json_t *j = res_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "not_ready");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "database down");
    json_decref(j);
    res_free(&r);

    atomic_store(&ready_flag, 1);
    r = call("GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    res_free(&r);
}

static void test_metrics_endpoint(void **state) {
    (void)state;
    http_res r = call("GET", "/api/things/metric-probe", NULL, NULL);
    assert_int_equal(r.status, 200);
    res_free(&r);
    r = call("GET", "/api/no/such/thing", NULL, NULL);
    assert_int_equal(r.status, 404);
    res_free(&r);
    r = call("BREW", "/api/things", NULL, NULL); /* an odd method must not make a series of its own */
    assert_int_equal(r.status, 405);
    res_free(&r);

    r = call("GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(res_header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(
        strstr(r.body, "ems_http_requests_total{method=\"GET\",route=\"/api/things/{id}\",status=\"200\"} "));
    assert_non_null(strstr(r.body, "ems_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} "));
    assert_non_null(strstr(r.body, "ems_http_requests_total{method=\"other\",route=\"/api/things\",status=\"405\"} "));
    assert_non_null(strstr(r.body, "ems_http_request_duration_seconds_count{route=\"/api/things/{id}\"} "));
    assert_null(strstr(r.body, "metric-probe")); /* patterns, never raw paths */
    assert_null(strstr(r.body, "BREW"));
    res_free(&r);
}

static void test_routing(void **state) {
    (void)state;
    http_res r = call("GET", "/api/things", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"route\":\"list\"}");
    assert_string_equal(res_header(&r, "Cache-Control"), "no-store");
    assert_string_equal(res_header(&r, "X-Content-Type-Options"), "nosniff");
    res_free(&r);

    static const struct {
        const char *path;
        int status;
        const char *body;
    } cases[] = {
        {"/api/things/abc", 200, "{\"id\":\"abc\"}"},
        {"/api/things/a%20b%2Fc", 200, "{\"id\":\"a b/c\"}"}, /* decoded, and %2F stays inside the segment */
        {"/api/things/abc?x=1", 200, "{\"id\":\"abc\"}"},
        {"/api/consumption/dev1.csv", 200, "csv:dev1"},
        {"/api/consumption/dev1", 200, "{\"json\":\"dev1\"}"},
        {"/api/consumption/.csv", 200, "{\"json\":\".csv\"}"}, /* {id} before .csv is never empty */
        {"/api/things/", 404, NULL},
        {"/api/things//", 404, NULL},
        {"/api/things/abc/extra", 404, NULL},
        {"/api/thingsX", 404, NULL},
        {"/api", 404, NULL},
        {"/api/things/%zz", 400, NULL},
        {"/api/things/ab%2", 400, NULL},
        {"/api/things/a%00b", 400, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = call("GET", cases[i].path, NULL, NULL);
        if (r.status != cases[i].status) fprintf(stderr, "%s: %d %s\n", cases[i].path, r.status, r.body);
        assert_int_equal(r.status, cases[i].status);
        if (cases[i].body) assert_string_equal(r.body, cases[i].body);
        else assert_envelope(&r, cases[i].status, cases[i].status == 404 ? "not_found" : "bad_request", NULL);
        res_free(&r);
    }
    r = call("GET", "/api/consumption/dev1.csv", NULL, NULL);
    assert_string_equal(res_header(&r, "Content-Type"), "text/csv");
    res_free(&r);

    /* Two parameters, in pattern order. */
    r = call("PUT", "/api/things/t1/owner/u%2B2", auth_line(fx.admin_token), NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"id\":\"t1\",\"user\":\"u+2\"}");
    res_free(&r);

    /* The path exists with other methods: 405 naming them. */
    r = call("POST", "/api/things/abc", NULL, "{}");
    assert_envelope(&r, 405, "method_not_allowed", NULL);
    assert_string_equal(res_header(&r, "Allow"), "GET, DELETE");
    res_free(&r);
    r = call("GET", "/api/things/a/owner/b", NULL, NULL);
    assert_envelope(&r, 405, "method_not_allowed", NULL);
    assert_string_equal(res_header(&r, "Allow"), "PUT");
    res_free(&r);

    /* Routes added while the server runs are served. */
    r = call("GET", "/api/late/7", NULL, NULL);
    assert_int_equal(r.status, 404);
    res_free(&r);
    assert_int_equal(ems_http_routes(fx.server, late_routes, 1, NULL), EMS_OK);
    r = call("GET", "/api/late/7", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"id\":\"7\"}");
    res_free(&r);
}

/* Every access level against every kind of credential. */
static void test_access_levels(void **state) {
    (void)state;
    enum { NONE, CLIENT, ADMIN, EXPIRED, GARBAGE, INGEST, REVOKED, KINDS };
    const char *tokens[KINDS] = {NULL,          fx.client_token, fx.admin_token,  fx.expired_token,
                                 "abc.def.ghi", INGEST_SECRET,   fx.revoked_token};
    static const struct {
        const char *method, *path;
        int status[KINDS];
        const char *role[KINDS]; /* for 200s: the role the handler saw */
    } cases[] = {
        {"GET", "/api/me", {401, 200, 200, 401, 401, 401, 401}, {NULL, "client", "admin"}},
        {"DELETE", "/api/things/x", {401, 403, 204, 401, 401, 401, 401}, {NULL}},
        {"POST", "/api/readings", {401, 403, 200, 401, 401, 200, 401}, {NULL, NULL, "admin", NULL, NULL, "none"}},
        {"GET",
         "/api/whoami",
         {200, 200, 200, 200, 200, 200, 200},
         {"none", "client", "admin", "none", "none", "none", "none"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int k = 0; k < KINDS; k++) {
            http_res r = call(cases[c].method, cases[c].path, tokens[k] ? auth_line(tokens[k]) : NULL, NULL);
            if (r.status != cases[c].status[k])
                fprintf(stderr, "%s %s token kind %d: %d %s\n", cases[c].method, cases[c].path, k, r.status, r.body);
            assert_int_equal(r.status, cases[c].status[k]);
            if (r.status == 401) {
                assert_envelope(&r, 401, "unauthorized", NULL);
                assert_string_equal(res_header(&r, "WWW-Authenticate"), "Bearer");
            } else if (r.status == 403) {
                assert_envelope(&r, 403, "forbidden", NULL);
            } else if (r.status == 200) {
                json_t *j = res_json(&r);
                assert_string_equal(json_string_value(json_object_get(j, "role")), cases[c].role[k]);
                int by_secret = k == INGEST && strcmp(cases[c].path, "/api/readings") == 0;
                assert_int_equal(json_integer_value(json_object_get(j, "ingest")), by_secret);
                assert_int_equal(json_is_true(json_object_get(j, "token")), tokens[k] != NULL);
                json_decref(j);
            }
            res_free(&r);
        }
    }

    /* The ingest secret must match whole: a prefix, a longer string or another case is refused. */
    const char *near[] = {"ingest-secret-012345678", INGEST_SECRET "9", "INGEST-SECRET-0123456789"};
    for (size_t i = 0; i < 3; i++) {
        http_res r = call("POST", "/api/readings", auth_line(near[i]), NULL);
        assert_int_equal(r.status, 401);
        res_free(&r);
    }
    /* Refused before its body is read. */
    http_res early = call("POST", "/api/readings", "Content-Type: application/json\r\n", "{\"device_id\":\"x\"}");
    assert_envelope(&early, 401, "unauthorized", NULL);
    res_free(&early);

    /* "Bearer" is required; a bare token or Basic is no token. */
    http_res r = call("GET", "/api/me", "Authorization: Basic YWxpY2U6eA==\r\n", NULL);
    assert_int_equal(r.status, 401);
    res_free(&r);
}

static void test_token_check_hook(void **state) {
    (void)state;
    http_res r = call("GET", "/api/me", auth_line(fx.revoked_token), NULL);
    assert_envelope(&r, 401, "unauthorized", NULL);
    res_free(&r);
    r = call("GET", "/api/whoami", auth_line(fx.revoked_token), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"role\":\"none\""));
    res_free(&r);

    /* Without the hook the same token passes; with it again it does not. */
    ems_http_token_check(fx.server, NULL, NULL);
    r = call("GET", "/api/me", auth_line(fx.revoked_token), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"username\":\"revoked\""));
    res_free(&r);
    ems_http_token_check(fx.server, reject_revoked, NULL);
    r = call("GET", "/api/me", auth_line(fx.revoked_token), NULL);
    assert_int_equal(r.status, 401);
    res_free(&r);
}

static void test_body_checks(void **state) {
    (void)state;
    const char *json = "Content-Type: application/json\r\n";
    http_res r = call("POST", "/api/echo", json, "{\"name\":\"x\",");
    assert_envelope(&r, 400, "bad_request", "invalid JSON");
    assert_non_null(strstr(r.body, "line 1"));
    res_free(&r);

    r = call("POST", "/api/echo", json, "{\"name\":\"x\",\"name\":\"y\",\"count\":1}");
    assert_envelope(&r, 400, "bad_request", "duplicate");
    res_free(&r);

    r = call("POST", "/api/echo", "Content-Type: text/plain\r\n", "{\"name\":\"x\",\"count\":1}");
    assert_envelope(&r, 415, "unsupported_media_type", NULL);
    res_free(&r);
    r = call("POST", "/api/echo", NULL, "{\"name\":\"x\",\"count\":1}");
    assert_envelope(&r, 415, "unsupported_media_type", NULL);
    res_free(&r);
    r = call("POST", "/api/echo", "Content-Type: application/jsonx\r\n", "{\"name\":\"x\",\"count\":1}");
    assert_int_equal(r.status, 415);
    res_free(&r);

    r = call("POST", "/api/echo", "Content-Type: Application/JSON; charset=utf-8\r\n", "{\"name\":\"x\",\"count\":1}");
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"name\":\"x\",\"count\":1,\"flag\":false}");
    res_free(&r);

    /* An empty body is no body. */
    r = call("POST", "/api/echo", json, "");
    assert_envelope(&r, 400, "bad_request", "invalid body: a JSON body is required");
    res_free(&r);

    /* Announced too large: refused before the body is sent. */
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n",
                     MAX_BODY + 1);
    assert_int_equal(http_raw(req, (size_t)n, &r), 0);
    assert_envelope(&r, 413, "too_large", NULL);
    res_free(&r);

    /* Chunked, no length announced: judged as it arrives. */
    size_t chunk = 1000, chunks = 6;
    size_t cap = 256 + chunks * (chunk + 16);
    char *big = malloc(cap);
    size_t w = (size_t)snprintf(big, cap,
                                "POST /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < chunks; i++) {
        w += (size_t)snprintf(big + w, cap - w, "%zx\r\n", chunk);
        memset(big + w, ' ', chunk);
        w += chunk;
        w += (size_t)snprintf(big + w, cap - w, "\r\n");
    }
    w += (size_t)snprintf(big + w, cap - w, "0\r\n\r\n");
    assert_int_equal(http_raw(big, w, &r), 0);
    assert_envelope(&r, 413, "too_large", NULL);
    res_free(&r);
    free(big);

    /* Chunked and within the limit works. */
    const char *small = "PATCH /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "c\r\n{\"name\":\"ch\"\r\n"
                        "c\r\n,\"count\":42}\r\n0\r\n\r\n";
    assert_int_equal(http_raw(small, strlen(small), &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "{\"name\":\"ch\",\"count\":42,\"flag\":false}");
    res_free(&r);

    /* Exactly at the limit is allowed (it then fails as JSON, not as size). */
    char *exact = malloc(MAX_BODY + 1);
    memset(exact, ' ', MAX_BODY);
    exact[0] = '{';
    exact[MAX_BODY - 1] = '}';
    exact[MAX_BODY] = '\0';
    r = call("POST", "/api/echo", json, exact);
    assert_envelope(&r, 400, "bad_request", "Object item not found: name");
    res_free(&r);
    free(exact);
}

static void test_unpack_strict(void **state) {
    (void)state;
    const char *json = "Content-Type: application/json\r\n";
    static const struct {
        const char *path, *body;
        int status;
        const char *message;
    } cases[] = {
        {"/api/echo", "{\"name\":\"n\",\"count\":3,\"flag\":true}", 201, NULL},
        {"/api/echo", "{\"name\":\"n\",\"count\":3,\"extra\":1}", 400,
         "invalid body: 1 object item(s) left unpacked: extra"},
        {"/api/echo", "{\"name\":\"n\",\"count\":\"3\"}", 400,
         "invalid body: field 'count': Expected integer, got string"},
        {"/api/echo", "{\"name\":7,\"count\":3}", 400, "invalid body: field 'name': Expected string, got integer"},
        {"/api/echo", "{\"name\":\"n\",\"count\":3,\"flag\":1}", 400,
         "invalid body: field 'flag': Expected true or false, got integer"},
        {"/api/echo", "{\"name\":\"n\"}", 400, "invalid body: field 'count': Object item not found: count"},
        {"/api/echo", "[1,2]", 400, "invalid body: Expected object, got array"},
        {"/api/nested", "{\"device\":{\"name\":\"d\"},\"tags\":[]}", 202, NULL},
        {"/api/nested", "{\"device\":{\"name\":5},\"tags\":[]}", 400,
         "invalid body: field 'device.name': Expected string, got integer"},
        {"/api/nested", "{\"device\":{\"name\":\"d\",\"x\":1},\"tags\":[]}", 400,
         "invalid body: field 'device': 1 object item(s) left unpacked: x"},
        {"/api/nested", "{\"device\":[],\"tags\":[]}", 400, "invalid body: field 'device': Expected object, got array"},
        {"/api/nested", "{\"device\":{\"name\":\"d\"}}", 400,
         "invalid body: field 'tags': Object item not found: tags"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_res r = call("POST", cases[i].path, json, cases[i].body);
        if (cases[i].message) {
            assert_envelope(&r, cases[i].status, "bad_request", NULL);
            json_t *j = res_json(&r);
            const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
            if (strcmp(m, cases[i].message) != 0) fprintf(stderr, "case %zu: got \"%s\"\n", i, m);
            assert_string_equal(m, cases[i].message);
            json_decref(j);
        } else {
            assert_int_equal(r.status, cases[i].status);
        }
        res_free(&r);
    }
}

static void test_error_envelope(void **state) {
    (void)state;
    http_res r = call("GET", "/api/fail", NULL, NULL);
    assert_envelope(&r, 409, "conflict", NULL);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"conflict\",\"message\":\"thing x exists\"}}");
    assert_string_equal(res_header(&r, "X-Extra"), "kept");
    assert_string_equal(res_header(&r, "Cache-Control"), "no-store");
    res_free(&r);

    /* A bare result code gets its default message. */
    r = call("GET", "/api/plain-fail", NULL, NULL);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many requests\"}}");
    assert_int_equal(r.status, 429);
    res_free(&r);

    r = call("GET", "/api/inject", NULL, NULL);
    assert_envelope(&r, 500, "internal", NULL);
    assert_null(res_header(&r, "Set-Cookie"));
    res_free(&r);

    r = call("GET", "/api/nowhere", NULL, NULL);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"not found\"}}");
    res_free(&r);
}

static void test_query_header_ip(void **state) {
    (void)state;
    http_res r = call("GET", "/api/query?q=a%20b&x=1", "X-Test: hello\r\n", NULL);
    assert_int_equal(r.status, 200);
    json_t *j = res_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "q")), "a b");
    assert_string_equal(json_string_value(json_object_get(j, "h")), "hello");
    assert_string_equal(json_string_value(json_object_get(j, "ip")), "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/api/query");
    json_decref(j);
    res_free(&r);
}

static void test_static_files(void **state) {
    (void)state;
    static const struct {
        const char *path;
        const char *type;
        const char *body;
        const char *cache;
    } files[] = {
        {"/", "text/html; charset=utf-8", "<!doctype html><title>EMS</title>", "no-cache"},
        {"/index.html", "text/html; charset=utf-8", "<!doctype html><title>EMS</title>", "no-cache"},
        {"/app.js", "text/javascript; charset=utf-8", "console.log('app');", "no-cache"},
        {"/style.css", "text/css; charset=utf-8", "body{}", "no-cache"},
        {"/data.json", "application/json", "{}", "no-cache"},
        {"/logo.svg", "image/svg+xml", "<svg/>", "no-cache"},
        {"/thing.xyz", "application/octet-stream", "xyz", "no-cache"},
        {"/assets/app-3f2a.js", "text/javascript; charset=utf-8", "export{};", "public, max-age=31536000, immutable"},
        /* client-side routes: the entry page */
        {"/devices", "text/html; charset=utf-8", "<!doctype html><title>EMS</title>", "no-cache"},
        {"/devices/42/consumption?date=2026-01-01", "text/html; charset=utf-8", "<!doctype html><title>EMS</title>",
         "no-cache"},
        {"/assets", "text/html; charset=utf-8", "<!doctype html><title>EMS</title>", "no-cache"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        http_res r = call("GET", files[i].path, NULL, NULL);
        if (r.status != 200) fprintf(stderr, "%s: %d\n", files[i].path, r.status);
        assert_int_equal(r.status, 200);
        assert_string_equal(res_header(&r, "Content-Type"), files[i].type);
        assert_string_equal(r.body, files[i].body);
        assert_string_equal(res_header(&r, "Cache-Control"), files[i].cache);
        assert_string_equal(res_header(&r, "X-Content-Type-Options"), "nosniff");
        res_free(&r);
    }

    http_res r = call("HEAD", "/app.js", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(res_header(&r, "Content-Length"), "19");
    res_free(&r);

    r = call("POST", "/app.js", NULL, NULL);
    assert_envelope(&r, 405, "method_not_allowed", NULL);
    res_free(&r);

    /* An unknown /api path is an API 404, not the web app. */
    r = call("GET", "/api/unknown", NULL, NULL);
    assert_envelope(&r, 404, "not_found", NULL);
    res_free(&r);

    /* Every way out of the web root, and hidden or missing files: 404, never the secret. */
    static const char *const refused[] = {
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/../index.html",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/assets%2f..%2f..%2fsecret.txt",
        "/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/app.js%00.png",
        "/link.txt",
        "/.env",
        "/./app.js",
        "/missing.png",
        "/assets/missing.js",
        "/..",
        "/../secret",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = call("GET", refused[i], NULL, NULL);
        if (r.status != 404) fprintf(stderr, "%s: %d %s\n", refused[i], r.status, r.body);
        assert_int_equal(r.status, 404);
        assert_null(strstr(r.body, "secret"));
        res_free(&r);
    }
}

#define CLIENTS 4
#define CALLS_EACH 25

static void *client_worker(void *arg) {
    int *ok = arg;
    for (int i = 0; i < CALLS_EACH; i++) {
        http_res r;
        const char *req = "GET /api/count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (http_raw(req, strlen(req), &r) == 0 && r.status == 200 && strcmp(r.body, "{\"ok\":true}") == 0) (*ok)++;
        res_free(&r);
    }
    return NULL;
}

static void *slow_worker(void *arg) {
    int *status = arg;
    http_res r;
    const char *req = "GET /api/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    *status = http_raw(req, strlen(req), &r) == 0 ? r.status : -1;
    res_free(&r);
    return NULL;
}

static void test_concurrent_handlers(void **state) {
    (void)state;
    pthread_t t[CLIENTS];
    int ok[CLIENTS] = {0};
    atomic_store(&calls, 0);
    for (int i = 0; i < CLIENTS; i++) assert_int_equal(pthread_create(&t[i], NULL, client_worker, &ok[i]), 0);
    for (int i = 0; i < CLIENTS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < CLIENTS; i++) assert_int_equal(ok[i], CALLS_EACH);
    assert_int_equal(atomic_load(&calls), CLIENTS * CALLS_EACH);

    /*
     * Slow calls at once overlap on a pool of two threads, never more than
     * two.  Each worker accepts for itself, so a round may put both calls on
     * one worker: a few rounds make an overlap certain enough.
     */
    atomic_store(&max_in_flight, 0);
    for (int round = 0; round < 6 && atomic_load(&max_in_flight) < 2; round++) {
        int status[3];
        for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&t[i], NULL, slow_worker, &status[i]), 0);
        for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < 3; i++) assert_int_equal(status[i], 204);
    }
    assert_int_equal(atomic_load(&max_in_flight), 2);
}

/* Keep-alive: several requests on one connection, each answered in turn. */
static void test_keep_alive(void **state) {
    (void)state;
    const char *req =
        "GET /api/things/one HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n"
        "{\"name\":\"k\",\"count\":2}"
        "GET /api/things/two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    http_res r;
    assert_int_equal(http_raw(req, strlen(req), &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "{\"id\":\"one\"}"));
    assert_non_null(strstr(r.body, "HTTP/1.1 201"));
    assert_non_null(strstr(r.body, "{\"name\":\"k\",\"count\":2,\"flag\":false}"));
    assert_non_null(strstr(r.body, "{\"id\":\"two\"}"));
    res_free(&r);
}

static void test_start_and_config_errors(void **state) {
    (void)state;
    char err[256] = "";
    /* The port is taken. */
    ems_http_opts o = {.port = fx.port, .threads = 1};
    ems_http *h = ems_http_new(&o);
    assert_non_null(h);
    assert_int_equal(ems_http_start(h, err, sizeof err), EMS_UNAVAILABLE);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1"));
    ems_http_free(h);

    o = (ems_http_opts){.bind = "not-an-address"};
    h = ems_http_new(&o);
    assert_non_null(h);
    assert_int_equal(ems_http_start(h, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "not-an-address"));
    ems_http_free(h);

    o = (ems_http_opts){.static_dir = "/nonexistent/ems/www"};
    h = ems_http_new(&o);
    assert_non_null(h);
    assert_int_equal(ems_http_start(h, err, sizeof err), EMS_BAD_REQUEST);
    ems_http_free(h);

    /* Bad patterns are refused when added (quietly: the log line is expected). */
    h = ems_http_new(NULL);
    assert_non_null(h);
    ems_log_set_level(EMS_LOG_OFF);
    static const ems_route bad[][1] = {
        {{"GET", "no-slash", EMS_ACCESS_ANY, h_list}},  {{"GET", "/a/{unclosed", EMS_ACCESS_ANY, h_list}},
        {{"GET", "/a/x{mid}", EMS_ACCESS_ANY, h_list}}, {{"GET", "/a/{}", EMS_ACCESS_ANY, h_list}},
        {{"GET", "/a/{b}{c}", EMS_ACCESS_ANY, h_list}}, {{"GET", "/{a}/{b}/{c}/{d}/{e}", EMS_ACCESS_ANY, h_list}},
        {{"GET", "/a/}", EMS_ACCESS_ANY, h_list}},      {{"GET", "/a", EMS_ACCESS_ANY, NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ems_http_routes(h, bad[i], 1, NULL), EMS_BAD_REQUEST);
    ems_log_set_level(EMS_LOG_WARN);
    static const ems_route good[] = {{"GET", "/{a}/{b}/{c}/{d}.csv", EMS_ACCESS_ANY, h_list}};
    assert_int_equal(ems_http_routes(h, good, 1, NULL), EMS_OK);
    assert_int_equal(ems_http_port(h), 0);
    ems_http_free(h);

    ems_http_free(NULL);
}

/* Without a verifier only EMS_ACCESS_ANY routes work: every token is refused. */
static void test_no_verifier(void **state) {
    (void)state;
    ems_http_opts o = {.threads = 1};
    ems_http *h = ems_http_new(&o);
    assert_non_null(h);
    char err[256];
    assert_int_equal(ems_http_routes(h, other_routes, sizeof other_routes / sizeof other_routes[0], NULL), EMS_OK);
    assert_int_equal(ems_http_start(h, err, sizeof err), EMS_OK);
    int saved = fx.port;
    fx.port = ems_http_port(h);
    assert_true(fx.port > 0 && fx.port != saved);
    http_res r = call("GET", "/api/me", auth_line(fx.admin_token), NULL);
    assert_int_equal(r.status, 401);
    res_free(&r);
    r = call("GET", "/api/whoami", auth_line(fx.admin_token), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"role\":\"none\""));
    res_free(&r);
    r = call("GET", "/index.html", NULL, NULL); /* no static_dir: nothing outside the API */
    assert_envelope(&r, 404, "not_found", NULL);
    res_free(&r);
    fx.port = saved;
    ems_http_free(h);
}

/* ---- hardening: framing, /metrics access, connection limits ---------------- */

/* A server on its own ephemeral port with the other routes; fx.port is pointed at it by the caller. */
static ems_http *start_server(const ems_http_opts *o) {
    ems_http *h = ems_http_new(o);
    assert_non_null(h);
    assert_int_equal(ems_http_routes(h, other_routes, sizeof other_routes / sizeof other_routes[0], NULL), EMS_OK);
    char err[256] = "";
    if (ems_http_start(h, err, sizeof err) != EMS_OK) fprintf(stderr, "start: %s\n", err);
    assert_true(ems_http_port(h) > 0);
    return h;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connection to 127.0.0.1:port from the loopback address src; reads give up after timeout_ms. */
static int connect_from(const char *src, int port, int timeout_ms) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &from.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    return fd;
}

/* 1 if the server closed (or reset) the connection before the read timeout, 0 if it is still open. */
static int closed_by_server(int fd) {
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0) return 1;
        if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

/*
 * The body's end must be beyond doubt, or the request is refused and the
 * connection closed: nothing pipelined behind it may run as a request.
 */
static void test_framing(void **state) {
    (void)state;
    static const struct {
        const char *what, *request, *message;
    } cases[] = {
        {"two Content-Lengths",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 22\r\nContent-Length: 60\r\n\r\n{\"name\":\"k\",\"count\":2}"
         "GET /api/count HTTP/1.1\r\nHost: x\r\n\r\n",
         "more than one Content-Length"},
        {"two equal Content-Lengths",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 22\r\nContent-Length: 22\r\n\r\n{\"name\":\"k\",\"count\":2}"
         "GET /api/count HTTP/1.1\r\nHost: x\r\n\r\n",
         "more than one Content-Length"},
        {"Content-Length and chunked",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         "GET /api/count HTTP/1.1\r\nHost: x\r\n\r\n",
         "both Content-Length and Transfer-Encoding"},
        {"chunked and Content-Length",
         "GET /api/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n"
         "GET /api/count HTTP/1.1\r\nHost: x\r\n\r\n",
         "both Content-Length and Transfer-Encoding"},
        {"xchunked",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: xchunked\r\n\r\n"
         "{\"name\":\"k\",\"count\":2}",
         "only chunked"},
        {"gzip, chunked",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
         "only chunked"},
        {"chunked twice",
         "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "only chunked"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = atomic_load(&calls);
        double t0 = now_s();
        http_res r;
        /* No "Connection: close" from us: the server must close by itself, or the read waits 10 s. */
        assert_int_equal(http_raw(cases[i].request, strlen(cases[i].request), &r), 0);
        if (r.status != 400 || now_s() - t0 > 3) fprintf(stderr, "case: %s\n", cases[i].what);
        assert_true(now_s() - t0 < 3);
        assert_envelope(&r, 400, "bad_request", cases[i].message);
        assert_string_equal(res_header(&r, "Connection"), "close");
        assert_null(strstr(r.body, "HTTP/1.1")); /* no second answer */
        assert_int_equal(atomic_load(&calls), before);
        res_free(&r);
    }

    /* One length, or chunked alone, still work; so does a pipelined request behind them. */
    const char *fine = "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 22\r\n\r\n{\"name\":\"k\",\"count\":2}"
                       "PATCH /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: Chunked\r\n\r\n16\r\n{\"name\":\"c\",\"count\":3}\r\n0\r\n\r\n"
                       "GET /api/count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int before = atomic_load(&calls);
    http_res r;
    assert_int_equal(http_raw(fine, strlen(fine), &r), 0);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "{\"name\":\"k\",\"count\":2,\"flag\":false}"));
    assert_non_null(strstr(r.body, "{\"name\":\"c\",\"count\":3,\"flag\":false}"));
    assert_int_equal(atomic_load(&calls), before + 1);
    res_free(&r);
}

/* With metrics_access admin: an admin token or the metrics secret, nothing else. */
static void test_metrics_admin_only(void **state) {
    (void)state;
    ems_http_opts o = {
        .threads = 1, .jwt = fx.jwt, .metrics_access = EMS_ACCESS_ADMIN, .metrics_token = "scrape-secret-42"};
    ems_http *h = start_server(&o);
    ems_http_token_check(h, reject_revoked, NULL);
    int saved = fx.port;
    fx.port = ems_http_port(h);

    http_res r = call("GET", "/metrics", NULL, NULL);
    assert_envelope(&r, 401, "unauthorized", NULL);
    assert_null(strstr(r.body, "ems_http_requests_total"));
    res_free(&r);
    r = call("GET", "/metrics", auth_line(fx.client_token), NULL);
    assert_envelope(&r, 403, "forbidden", NULL);
    res_free(&r);
    r = call("GET", "/metrics", auth_line(fx.expired_token), NULL);
    assert_envelope(&r, 401, "unauthorized", NULL);
    res_free(&r);
    r = call("GET", "/metrics", auth_line("scrape-secret-43"), NULL);
    assert_envelope(&r, 401, "unauthorized", NULL);
    res_free(&r);
    r = call("GET", "/metrics", auth_line(INGEST_SECRET), NULL);
    assert_envelope(&r, 401, "unauthorized", NULL);
    res_free(&r);

    r = call("GET", "/metrics", auth_line(fx.admin_token), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "ems_http_requests_total"));
    res_free(&r);
    r = call("GET", "/metrics", auth_line("scrape-secret-42"), NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "ems_http_requests_total"));
    res_free(&r);

    /* The other built-ins stay open. */
    r = call("GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    res_free(&r);
    r = call("GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    res_free(&r);

    fx.port = saved;
    ems_http_free(h);
}

/* One address holds at most max_conns_per_ip connections; other addresses, and exempt ones, are still served. */
static void test_conn_limit_per_ip(void **state) {
    (void)state;
    enum { LIMIT = 4 };
    ems_http_opts o = {.threads = 2, .max_conns_per_ip = LIMIT, .conn_limit_exempt = "127.0.0.3, 10.0.0.0/8"};
    ems_http *h = start_server(&o);
    int port = ems_http_port(h), saved = fx.port;
    fx.port = port;

    int held[LIMIT], exempt[LIMIT + 2];
    for (int i = 0; i < LIMIT; i++) {
        held[i] = connect_from("127.0.0.2", port, 300);
        assert_int_equal(send(held[i], "GET /api/count HTT", 18, MSG_NOSIGNAL), 18);
    }
    usleep(200 * 1000); /* the server has taken them all */
    int extra = connect_from("127.0.0.2", port, 2000);
    assert_true(closed_by_server(extra));
    close(extra);
    for (int i = 0; i < LIMIT; i++) assert_false(closed_by_server(held[i])); /* the first ones are kept */

    /* Another address is served. */
    http_res r = call("GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    res_free(&r);
    /* An exempt one is not counted. */
    for (int i = 0; i < LIMIT + 2; i++) exempt[i] = connect_from("127.0.0.3", port, 200);
    usleep(200 * 1000);
    for (int i = 0; i < LIMIT + 2; i++) {
        assert_false(closed_by_server(exempt[i]));
        close(exempt[i]);
    }

    /* A connection closed frees its place. */
    close(held[0]);
    usleep(300 * 1000);
    held[0] = connect_from("127.0.0.2", port, 300);
    assert_false(closed_by_server(held[0]));
    const char *req = "GET /api/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(held[0], req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    char buf[64] = "";
    assert_true(recv(held[0], buf, sizeof buf - 1, 0) > 12);
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    for (int i = 0; i < LIMIT; i++) close(held[i]);
    fx.port = saved;
    ems_http_free(h);

    /* A bad exempt entry stops the start, naming it. */
    static const char *bad[] = {"127.0.0.1/33", "not-an-ip", "10.0.0.0/", "::1/129"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = (ems_http_opts){.threads = 1, .max_conns_per_ip = 2, .conn_limit_exempt = bad[i]};
        h = ems_http_new(&o);
        char err[256] = "";
        assert_int_equal(ems_http_start(h, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, bad[i]));
        ems_http_free(h);
    }
}

/*
 * A request's headers must be in within header_timeout_s of the accept,
 * however the bytes trickle; an idle kept-alive connection is not cut by it.
 */
static void test_header_timeout(void **state) {
    (void)state;
    ems_http_opts o = {.threads = 1, .header_timeout_s = 1, .timeout_s = 30};
    ems_http *h = start_server(&o);
    int port = ems_http_port(h);

    /* One byte every 100 ms: each would restart an idle timeout. */
    double t0 = now_s();
    int fd = connect_from("127.0.0.1", port, 100);
    const char *head = "GET /api/count HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    int closed = 0;
    while (!closed && now_s() - t0 < 5) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) break;
        closed = closed_by_server(fd); /* waits 100 ms */
    }
    double took = now_s() - t0;
    close(fd);
    if (took < 0.9 || took > 2.5) fprintf(stderr, "trickler closed after %.2f s\n", took);
    assert_true(took >= 0.9 && took <= 2.5);

    /* Kept alive: answered, idle past header_timeout_s, then answered again. */
    fd = connect_from("127.0.0.1", port, 2000);
    const char *req = "GET /api/whoami HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[1024];
    for (int round = 0; round < 2; round++) {
        if (round) usleep(1600 * 1000);
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        assert_true(n > 12);
        assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    }
    close(fd);
    ems_http_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),           cmocka_unit_test(test_readyz_flips),
        cmocka_unit_test(test_metrics_endpoint),   cmocka_unit_test(test_routing),
        cmocka_unit_test(test_access_levels),      cmocka_unit_test(test_token_check_hook),
        cmocka_unit_test(test_body_checks),        cmocka_unit_test(test_unpack_strict),
        cmocka_unit_test(test_error_envelope),     cmocka_unit_test(test_query_header_ip),
        cmocka_unit_test(test_static_files),       cmocka_unit_test(test_concurrent_handlers),
        cmocka_unit_test(test_keep_alive),         cmocka_unit_test(test_start_and_config_errors),
        cmocka_unit_test(test_no_verifier),        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_metrics_admin_only), cmocka_unit_test(test_conn_limit_per_ip),
        cmocka_unit_test(test_header_timeout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
