/*
 * test_http_call.c — ems_http_call, the in-process call to a route of the
 * same server (support reads devices and consumption this way in embedded
 * mode).  No socket is opened: the server is never started, which is the
 * point — a call needs no free pool thread.
 *
 * Covers routing (parameters, suffix patterns, 404, 405), the query string
 * as handlers read it (decoding, '+', repeated and empty arguments), the
 * access levels against the principal the caller vouches for, the error
 * envelope with the handler's own message and headers, empty replies (204)
 * and a handler's status and body passed through as they are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "http.h"

/* Echoes what the handler saw: parameters, some query arguments, token, caller, address. */
static ems_rc echo(ems_req *req, ems_resp *resp, void *ctx) {
    const char *names[] = {"a", "b", "empty", "bare", "plus"};
    json_t *q = json_object();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = ems_req_query(req, names[i]);
        if (v) json_object_set_new(q, names[i], json_string(v));
    }
    return ems_reply_json(resp, 200,
                          json_pack("{s:s, s:s?, s:s?, s:o, s:s?, s:s, s:s, s:s}", "ctx", (const char *)ctx, "p0",
                                    req->param[0], "p1", req->param[1], "query", q, "token", req->token, "who",
                                    req->who.id, "ip", ems_req_ip(req), "header",
                                    ems_req_header(req, "Authorization") ? "seen" : "none"));
}

static ems_rc fail_with_header(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    ems_reply_header(resp, "Retry-After", "1");
    return ems_fail(resp, EMS_CONFLICT, "device %s is taken", "d1");
}

static ems_rc empty(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    return ems_reply_empty(resp, 204);
}

static ems_rc teapot(ems_req *req, ems_resp *resp, void *ctx) {
    (void)req;
    (void)ctx;
    return ems_reply_raw(resp, 418, "text/plain", strdup("short and stout"), 15);
}

static const ems_route routes[] = {
    {"GET", "/api/things/{id}.csv", EMS_ACCESS_USER, echo},
    {"GET", "/api/things/{id}/parts/{part}", EMS_ACCESS_USER, echo},
    {"GET", "/api/things", EMS_ACCESS_ANY, echo},
    {"GET", "/api/admin", EMS_ACCESS_ADMIN, echo},
    {"POST", "/api/readings", EMS_ACCESS_INGEST, echo},
    {"DELETE", "/api/things", EMS_ACCESS_USER, empty},
    {"GET", "/api/conflict", EMS_ACCESS_ANY, fail_with_header},
    {"GET", "/api/teapot", EMS_ACCESS_ANY, teapot},
};

static ems_http *server;
static ems_principal client = {
    .id = "11111111-1111-4111-8111-111111111111", .username = "ana", .role = EMS_ROLE_CLIENT};
static ems_principal admin = {.id = "22222222-2222-4222-8222-222222222222", .username = "root", .role = EMS_ROLE_ADMIN};

static int setup(void **state) {
    (void)state;
    server = ems_http_new(NULL);
    assert_non_null(server);
    assert_int_equal(ems_http_routes(server, routes, sizeof routes / sizeof routes[0], "things-ctx"), EMS_OK);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ems_http_free(server);
    return 0;
}

/* Calls and parses the answer as JSON (NULL if it is not). */
static json_t *call(const char *method, const char *target, const ems_principal *who, long *status) {
    char *body = NULL;
    assert_int_equal(ems_http_call(server, method, target, who, "tok", status, &body), EMS_OK);
    assert_non_null(body);
    json_t *doc = json_loads(body, JSON_DECODE_ANY, NULL);
    free(body);
    return doc;
}

static const char *str(json_t *doc, const char *path1, const char *path2) {
    json_t *v = json_object_get(doc, path1);
    if (path2) v = json_object_get(v, path2);
    return json_string_value(v);
}

static void routes_and_parameters(void **state) {
    (void)state;
    long status = 0;
    json_t *d = call("GET", "/api/things/abc%20d/parts/p%2F1", &client, &status);
    assert_int_equal(status, 200);
    assert_string_equal(str(d, "ctx", NULL), "things-ctx");
    assert_string_equal(str(d, "p0", NULL), "abc d");
    assert_string_equal(str(d, "p1", NULL), "p/1"); /* an encoded slash is no separator */
    assert_string_equal(str(d, "who", NULL), client.id);
    assert_string_equal(str(d, "token", NULL), "tok");
    assert_string_equal(str(d, "ip", NULL), "local");
    assert_string_equal(str(d, "header", NULL), "none");
    json_decref(d);

    d = call("GET", "/api/things/x1.csv", &client, &status);
    assert_int_equal(status, 200);
    assert_string_equal(str(d, "p0", NULL), "x1");
    json_decref(d);

    d = call("GET", "/api/nothing", &client, &status);
    assert_int_equal(status, 404);
    assert_string_equal(str(d, "error", "code"), "not_found");
    json_decref(d);

    d = call("PUT", "/api/things", &client, &status);
    assert_int_equal(status, 405);
    json_decref(d);

    d = call("GET", "/api/things/%00/parts/x", &client, &status);
    assert_int_equal(status, 400);
    json_decref(d);
}

static void query_string(void **state) {
    (void)state;
    long status = 0;
    json_t *d = call("GET", "/api/things?a=1%262&b=x+y%2Bz&a=second&empty=&bare&plus=%2B", NULL, &status);
    assert_int_equal(status, 200);
    assert_string_equal(str(d, "query", "a"), "1&2"); /* the first of repeated arguments */
    assert_string_equal(str(d, "query", "b"), "x y+z");
    assert_string_equal(str(d, "query", "empty"), "");
    assert_string_equal(str(d, "query", "bare"), "");
    assert_string_equal(str(d, "query", "plus"), "+");
    json_decref(d);

    d = call("GET", "/api/things", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_object_size(json_object_get(d, "query")), 0);
    json_decref(d);

    d = call("GET", "/api/things?&&a=%zz", NULL, &status);
    assert_int_equal(status, 400);
    assert_string_equal(str(d, "error", "message"), "invalid query string");
    json_decref(d);
}

static void access_levels(void **state) {
    (void)state;
    static const struct {
        const char *method, *target;
        const ems_principal *who;
        long status;
    } cases[] = {
        {"GET", "/api/things/1.csv", NULL, 401},   {"GET", "/api/things/1.csv", &client, 200},
        {"GET", "/api/things/1.csv", &admin, 200}, {"GET", "/api/admin", NULL, 401},
        {"GET", "/api/admin", &client, 403},       {"GET", "/api/admin", &admin, 200},
        {"POST", "/api/readings", &client, 403},   {"POST", "/api/readings", &admin, 200},
        {"GET", "/api/things", NULL, 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long status = 0;
        json_t *d = call(cases[i].method, cases[i].target, cases[i].who, &status);
        if (status != cases[i].status)
            fail_msg("%s %s: %ld, not %ld", cases[i].method, cases[i].target, status, cases[i].status);
        json_decref(d);
    }
}

static void replies_pass_through(void **state) {
    (void)state;
    long status = 0;
    json_t *d = call("GET", "/api/conflict", NULL, &status);
    assert_int_equal(status, 409);
    assert_string_equal(str(d, "error", "code"), "conflict");
    assert_string_equal(str(d, "error", "message"), "device d1 is taken");
    json_decref(d);

    char *body = NULL;
    assert_int_equal(ems_http_call(server, "DELETE", "/api/things", &client, NULL, &status, &body), EMS_OK);
    assert_int_equal(status, 204);
    assert_string_equal(body, "");
    free(body);

    assert_int_equal(ems_http_call(server, "GET", "/api/teapot", NULL, NULL, &status, &body), EMS_OK);
    assert_int_equal(status, 418);
    assert_string_equal(body, "short and stout");
    free(body);

    /* Built-ins are the server's own, not routes. */
    assert_int_equal(ems_http_call(server, "GET", "/healthz", NULL, NULL, &status, &body), EMS_OK);
    assert_int_equal(status, 404);
    free(body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_and_parameters),
        cmocka_unit_test(query_string),
        cmocka_unit_test(access_levels),
        cmocka_unit_test(replies_pass_through),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
