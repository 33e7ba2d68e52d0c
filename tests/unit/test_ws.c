/*
 * test_ws.c — the ws role in process: notifications from the bus to the
 * owner's WebSocket sessions, and deliveries between two replicas.
 *
 * Each test starts a real ws role (libwebsockets on a free loopback port)
 * over a temporary SQLite database migrated with sql/ws/sqlite and the
 * in-process bus, and talks to it with the small RFC 6455 client below.
 * Notifications are published on the bus as the devices role would.  The
 * two-replica test runs two roles in distributed shape (embedded = 0) over
 * one database and one bus: a chat message sent on one replica must reach a
 * session held by the other through the replica queues.  Each replica's
 * HTTP server also plays auth's token check (GET /api/auth/verify), which
 * refuses the tokens of one version as revoked and answers slowly for two
 * others (a slow auth, injected); auth's revocations of open sessions are
 * published on the bus as auth would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bus.h"
#include "conf.h"
#include "fixture.h"
#include "http.h"
#include "log.h"
#include "roles.h"
#include "outbox.h"
#include "store.h"
#include "ws/ws.h"

#define NQ "internal.device.websocket.user.notification.queue"
#define RQ "internal.auth.websocket.queue"

/* The keys of main.c's table that the role reads. */
static const ems_conf_def test_conf[] = {
    {"port", "PORT", EMS_CONF_INT, "0", 0, 65535, ""},
    {"bind", "EMS_BIND", EMS_CONF_STR, "127.0.0.1", 0, 0, ""},
    {"rabbitmq_notification_queue", NULL, EMS_CONF_STR, NQ, 0, 0, ""},
    {"rabbitmq_auth_ws_queue", NULL, EMS_CONF_STR, RQ, 0, 0, ""},
    {"support_service_host", NULL, EMS_CONF_STR, "", 0, 0, ""},
    {"auth_service_host", NULL, EMS_CONF_STR, "", 0, 0, ""},
};

/* The version this test's auth says was revoked: a token carrying it is refused. */
#define REVOKED_VER 7
/* Versions auth takes SLOW_AUTH_MS to answer for: good, and revoked. */
#define SLOW_VER 8
#define SLOW_REVOKED_VER 9
#define SLOW_AUTH_MS 1500

/*
 * auth's GET /api/auth/verify as the tests play it: every verified token is
 * good but those of REVOKED_VER; a slow auth (a fault injected) for SLOW_*.
 */
static ems_rc fake_verify(ems_req *req, ems_resp *resp, void *ctx) {
    (void)ctx;
    if (req->who.ver == SLOW_VER || req->who.ver == SLOW_REVOKED_VER) usleep(SLOW_AUTH_MS * 1000);
    if (req->who.ver == REVOKED_VER || req->who.ver == SLOW_REVOKED_VER)
        return ems_fail(resp, EMS_UNAUTHORIZED, "token revoked");
    return ems_reply_empty(resp, 204);
}

static const ems_route fake_auth_routes[] = {{"GET", "/api/auth/verify", EMS_ACCESS_USER, fake_verify}};

typedef struct replica {
    ems_conf *conf;
    ems_http *http;
    ems_role_env env;
    void *state;
} replica;

typedef struct fixture {
    char dir[64];
    ems_store *store;
    ems_bus *bus;
    ems_outbox *outbox;
    ems_jwt *jwt;
    replica r[2];
} fixture;

static char *tok_client1, *tok_client1_b, *tok_client2, *tok_admin;
static ems_principal client1 = {
    .id = "11111111-1111-4111-8111-111111111111", .username = "ann", .role = EMS_ROLE_CLIENT};
static ems_principal client2 = {
    .id = "22222222-2222-4222-8222-222222222222", .username = "bob", .role = EMS_ROLE_CLIENT};
static ems_principal admin = {.id = "33333333-3333-4333-8333-333333333333", .username = "root", .role = EMS_ROLE_ADMIN};

/* `queue` and `revocations`: the in-process bus has one consumer per queue, so each replica has its own. */
static int start_replica(fixture *fx, int i, int embedded, const char *queue, const char *revocations) {
    replica *r = &fx->r[i];
    char err[256], rid[32];
    r->conf = ems_conf_new();
    ems_conf_add(r->conf, test_conf, sizeof test_conf / sizeof test_conf[0]);
    ems_conf_add(r->conf, ems_role_ws.conf, ems_role_ws.nconf);
    if (ems_conf_load(r->conf, NULL, 0, NULL, err, sizeof err)) return -1;
    ems_conf_set(r->conf, "rabbitmq_notification_queue", queue, err, sizeof err);
    ems_conf_set(r->conf, "rabbitmq_auth_ws_queue", revocations, err, sizeof err);
    snprintf(rid, sizeof rid, "test-%d", i);
    ems_conf_set(r->conf, "ws_replica_id", rid, err, sizeof err);
    ems_conf_set(r->conf, "ws_rate", "20", err, sizeof err);
    ems_http_opts o = {.port = 0, .jwt = fx->jwt};
    r->http = ems_http_new(&o);
    r->env = (ems_role_env){.name = "ws",
                            .conf = r->conf,
                            .store = fx->store,
                            .bus = fx->bus,
                            .outbox = fx->outbox,
                            .jwt = fx->jwt,
                            .http = r->http,
                            .embedded = embedded};
    /*
     * The replica's HTTP server plays auth too: embedded, ws asks its own
     * server; distributed, it is told where auth is, as AUTH_SERVICE_HOST would.
     */
    if (ems_http_routes(r->http, fake_auth_routes, 1, NULL) || ems_role_ws.start(&r->env, &r->state) != EMS_OK ||
        ems_http_start(r->http, err, sizeof err))
        return -1;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ems_http_port(r->http));
    if (!embedded) ems_conf_set(r->conf, "auth_service_host", url, err, sizeof err);
    return 0;
}

static int setup(void **state, int replicas) {
    fixture *fx = calloc(1, sizeof *fx);
    char err[256], url[128], pub[96], priv[96], mig[512];
    ems_log_set_level(EMS_LOG_WARN);
    if (!fx_tmpdir(fx->dir, sizeof fx->dir, "ws")) {
        free(fx);
        return -1;
    }
    snprintf(url, sizeof url, "sqlite:%s/ws.db", fx->dir);
    snprintf(pub, sizeof pub, "%s/pub.pem", fx->dir);
    snprintf(priv, sizeof priv, "%s/priv.pem", fx->dir);
    snprintf(mig, sizeof mig, "%s/sql/ws/sqlite", fx_source_dir());
    if (ems_store_open(url, 4, &fx->store, err, sizeof err) || ems_store_migrate(fx->store, mig, err, sizeof err) ||
        ems_bus_open("inproc:", &fx->bus, err, sizeof err) || ems_outbox_start(fx->store, fx->bus, &fx->outbox) ||
        ems_jwt_load(priv, pub, 1, &fx->jwt, err, sizeof err)) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    int64_t exp;
    ems_jwt_sign(fx->jwt, &client1, 600, &tok_client1, &exp);
    ems_jwt_sign(fx->jwt, &client1, 601, &tok_client1_b, &exp);
    ems_jwt_sign(fx->jwt, &client2, 600, &tok_client2, &exp);
    ems_jwt_sign(fx->jwt, &admin, 600, &tok_admin, &exp);
    if (start_replica(fx, 0, replicas == 1, NQ, RQ)) return -1;
    if (replicas == 2 && start_replica(fx, 1, 0, NQ ".second", RQ ".second")) return -1;
    *state = fx;
    return 0;
}

static int setup_one(void **state) { return setup(state, 1); }
static int setup_two(void **state) { return setup(state, 2); }

static int teardown(void **state) {
    fixture *fx = *state;
    ems_outbox_stop(fx->outbox); /* producers, then consumers, as main.c does */
    ems_bus_close(fx->bus);
    for (int i = 0; i < 2; i++) {
        if (fx->r[i].state) ems_role_ws.stop(fx->r[i].state);
        ems_http_free(fx->r[i].http);
        ems_conf_free(fx->r[i].conf);
    }
    ems_store_close(fx->store);
    ems_jwt_free(fx->jwt);
    free(tok_client1);
    free(tok_client1_b);
    free(tok_client2);
    free(tok_admin);
    if (fx_run("rm -rf %s", fx->dir) != 0) fprintf(stderr, "teardown: cannot remove %s\n", fx->dir);
    free(fx);
    return 0;
}

/* ---- a minimal RFC 6455 client ---- */

static int ws_port(fixture *fx, int i) { return ws_server_port(((ws_role *)fx->r[i].state)->server); }

/* Waits (up to 10 s) until each of two replicas knows the other from its heartbeat. */
static int replicas_know_each_other(fixture *fx) {
    for (int i = 0; i < 200; i++) {
        if (ws_replicas_peers(((ws_role *)fx->r[0].state)->replicas) >= 1 &&
            ws_replicas_peers(((ws_role *)fx->r[1].state)->replicas) >= 1)
            return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

/* Connects and sends the upgrade request with `token` in the query (NULL: none); -1 if it cannot connect. */
static int wsc_start(int port, const char *token) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET /ws%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     token ? "?token=" : "", token ? token : "");
    if (send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads the answer to wsc_start's request: the socket if upgraded (101), else -1 (and it is closed). */
static int wsc_finish(int fd) {
    char resp[4096];
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < sizeof resp - 1) { /* byte by byte: frames may follow the headers at once */
        if (recv(fd, resp + got, 1, 0) != 1) goto refused;
        got++;
        resp[got] = '\0';
        if (got >= 4 && strcmp(resp + got - 4, "\r\n\r\n") == 0) break;
    }
    if (strncmp(resp, "HTTP/1.1 101", 12) == 0) return fd;
refused:
    close(fd);
    return -1;
}

/* Connects with `token` in the query (NULL: none); the socket, or -1 when refused. */
static int wsc_open(int port, const char *token) { return wsc_finish(wsc_start(port, token)); }

static void wsc_send(int fd, int opcode, const char *data, size_t len) {
    unsigned char h[14];
    size_t hn = 0;
    h[hn++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[hn++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hn++] = 0x80 | 126;
        h[hn++] = (unsigned char)(len >> 8);
        h[hn++] = (unsigned char)len;
    } else {
        h[hn++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) h[hn++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memset(h + hn, 0, 4); /* a zero mask leaves the payload as it is */
    hn += 4;
    assert_int_equal(send(fd, h, hn, MSG_NOSIGNAL), (ssize_t)hn);
    if (len) send(fd, data, len, MSG_NOSIGNAL);
}

static void wsc_send_json(int fd, const char *text) { wsc_send(fd, 1, text, strlen(text)); }

/* The next frame: its opcode, payload malloc'd in *out; -1 on timeout or close of the socket. */
static int wsc_recv(int fd, char **out) {
    unsigned char h[2];
    if (read_full(fd, h, 2)) return -1;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        unsigned char e[2];
        if (read_full(fd, e, 2)) return -1;
        len = (uint64_t)e[0] << 8 | e[1];
    } else if (len == 127) {
        unsigned char e[8];
        if (read_full(fd, e, 8)) return -1;
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | e[i];
    }
    char *p = malloc(len + 1);
    if (read_full(fd, p, len)) {
        free(p);
        return -1;
    }
    p[len] = '\0';
    *out = p;
    return h[0] & 0x0f;
}

/* The first JSON frame of `type` within the timeout, skipping others; NULL if none (or closed). */
static json_t *wsc_expect(int fd, const char *type) {
    for (;;) {
        char *p = NULL;
        int op = wsc_recv(fd, &p);
        if (op != 1) {
            free(p);
            return NULL;
        }
        json_t *j = json_loads(p, 0, NULL);
        free(p);
        const char *t = json_string_value(json_object_get(j, "type"));
        if (t && strcmp(t, type) == 0) return j;
        json_decref(j);
    }
}

/* 1 if no frame of `type` arrives within ms. */
static int wsc_quiet(int fd, const char *type, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000}, back = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    json_t *j = wsc_expect(fd, type);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &back, sizeof back);
    json_decref(j);
    return j == NULL;
}

/* The close code the server sends, skipping other frames; -1 if none comes (or the socket just ends). */
static int wsc_wait_close(int fd) {
    for (;;) {
        char *p = NULL;
        int op = wsc_recv(fd, &p);
        int code = op == 8 && p ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : -1;
        free(p);
        if (op == 8 || op < 0) return code;
    }
}

/* 1 if the session still answers a ping. */
static int wsc_alive(int fd) {
    wsc_send_json(fd, "{\"type\":\"ping\"}");
    json_t *pong = wsc_expect(fd, "pong");
    json_decref(pong);
    return pong != NULL;
}

/* An error frame with code "unauthorized", then close code 4001. */
static void assert_signed_out(int fd) {
    json_t *e = wsc_expect(fd, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "unauthorized");
    json_decref(e);
    assert_int_equal(wsc_wait_close(fd), WS_CLOSE_SIGNED_OUT);
}

static void publish_revoked(fixture *fx, const char *id, long ver) {
    char body[160];
    snprintf(body, sizeof body, "{\"type\":\"account.revoked\",\"id\":\"%s\",\"ver\":%ld}", id, ver);
    assert_int_equal(ems_bus_publish(fx->bus, RQ, body, strlen(body)), EMS_OK);
}

static void publish_alert(fixture *fx, const char *event_id, const char *owner, const char *device_name) {
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:f}", "event_id", event_id, "type", "alert",
                           "device_id", "44444444-4444-4444-8444-444444444444", "device_name", device_name, "owner_id",
                           owner, "hour_start", (json_int_t)1764240000000, "total_kwh", 3.5, "limit_kwh", 2.0);
    char *body = json_dumps(ev, JSON_COMPACT);
    assert_int_equal(ems_bus_publish(fx->bus, NQ, body, strlen(body)), EMS_OK);
    free(body);
    json_decref(ev);
}

static long count_rows(fixture *fx, const char *sql) {
    ems_db *db = ems_store_get(fx->store);
    ems_rows *rows = NULL;
    assert_int_equal(ems_db_query(db, &rows, sql, ""), EMS_OK);
    long n = (long)ems_rows_int(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(fx->store, db);
    return n;
}

/* ---- tests ---- */

static void test_refuses_missing_and_bad_tokens(void **state) {
    fixture *fx = *state;
    int port = ws_port(fx, 0);
    assert_int_equal(wsc_open(port, NULL), -1);
    assert_int_equal(wsc_open(port, "not-a-token"), -1);
    char *forged = strdup(tok_client1);
    forged[strlen(forged) - 3] = forged[strlen(forged) - 3] == 'A' ? 'B' : 'A'; /* break the signature */
    assert_int_equal(wsc_open(port, forged), -1);
    free(forged);
    char *expired = NULL;
    int64_t exp;
    assert_int_equal(ems_jwt_sign(fx->jwt, &client1, -60, &expired, &exp), EMS_OK);
    assert_int_equal(wsc_open(port, expired), -1);
    free(expired);
    int fd = wsc_open(port, tok_client1);
    assert_true(fd >= 0);
    json_t *hello = wsc_expect(fd, "hello");
    assert_non_null(hello);
    assert_string_equal(json_string_value(json_object_get(json_object_get(hello, "user"), "id")), client1.id);
    json_decref(hello);
    close(fd);
}

static int silent_listener(int *port);

/* A well-signed token whose account moved on is refused; so is every new socket when auth cannot say. */
static void test_refuses_revoked_tokens_and_fails_closed(void **state) {
    fixture *fx = *state;
    char err[256], url[64], *revoked = NULL;
    int64_t exp;
    int port = ws_port(fx, 0);
    ems_principal old = client2;
    old.ver = REVOKED_VER;
    assert_int_equal(ems_jwt_sign(fx->jwt, &old, 600, &revoked, &exp), EMS_OK);
    /* Upgraded while a worker asks auth, then signed out on its answer... */
    int r = wsc_open(port, revoked);
    assert_true(r >= 0);
    assert_signed_out(r);
    close(r);
    /* ...which is cached: the same token again is refused before the upgrade. */
    assert_int_equal(wsc_open(port, revoked), -1);
    int fd = wsc_open(port, tok_client1);
    assert_true(fd >= 0);
    json_decref(wsc_expect(fd, "hello"));
    /* auth gone: nothing listens on its port any more. */
    int gone = 0, gone_fd = silent_listener(&gone);
    assert_true(gone_fd >= 0);
    close(gone_fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", gone);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "auth_service_host", url, err, sizeof err), EMS_OK);
    /* Fail closed: an error and close 1013 (try again later)... */
    int u = wsc_open(port, tok_client2);
    assert_true(u >= 0);
    json_t *e = wsc_expect(u, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "unavailable");
    json_decref(e);
    assert_int_equal(wsc_wait_close(u), 1013);
    close(u);
    /* ...and for the next second, refused before the upgrade without asking. */
    assert_int_equal(wsc_open(port, tok_admin), -1);
    /* The session opened before stays. */
    wsc_send_json(fd, "{\"type\":\"ping\"}");
    json_t *pong = wsc_expect(fd, "pong");
    assert_non_null(pong);
    json_decref(pong);
    close(fd);
    free(revoked);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long a ping takes to come back as a pong, in ms; -1 if it does not. */
static long ping_ms(int fd) {
    int64_t t0 = mono_ms();
    return wsc_alive(fd) ? (long)(mono_ms() - t0) : -1;
}

/*
 * auth takes SLOW_AUTH_MS to answer for two new sockets' tokens: the session
 * already open is served meanwhile (its pings come back at once), and each
 * new socket gets no frame until auth answered: then the good one is
 * admitted (hello first, then the answer to a ping it sent while it
 * waited), and the revoked one is signed out.
 */
static void test_slow_auth_stalls_no_other_session(void **state) {
    fixture *fx = *state;
    int port = ws_port(fx, 0);
    char *slow = NULL, *slow_revoked = NULL;
    int64_t exp;
    ems_principal who = client2;
    who.ver = SLOW_VER;
    assert_int_equal(ems_jwt_sign(fx->jwt, &who, 600, &slow, &exp), EMS_OK);
    who.ver = SLOW_REVOKED_VER;
    assert_int_equal(ems_jwt_sign(fx->jwt, &who, 600, &slow_revoked, &exp), EMS_OK);
    /*
     * Both questions may land on one of the fake auth's HTTP threads and be answered one after
     * the other (2 × SLOW_AUTH_MS): the timeout must not turn the second into "unavailable".
     */
    char err[128];
    assert_int_equal(ems_conf_set(fx->r[0].conf, "ws_auth_timeout_ms", "5000", err, sizeof err), EMS_OK);
    int a = wsc_open(port, tok_client1);
    assert_true(a >= 0);
    json_decref(wsc_expect(a, "hello"));

    int64_t t0 = mono_ms();
    int b = wsc_start(port, slow), c = wsc_start(port, slow_revoked);
    assert_true(b >= 0 && c >= 0);
    usleep(100 * 1000); /* both sign-ins are waiting for auth now */
    long worst = 0;
    for (int i = 0; i < 5; i++) {
        long ms = ping_ms(a);
        assert_true(ms >= 0);
        if (ms > worst) worst = ms;
        usleep(50 * 1000);
    }
    print_message("ping round trip while two sign-ins wait %d ms for auth: worst %ld ms\n", SLOW_AUTH_MS, worst);
    assert_true(worst < 300);
    assert_true(mono_ms() - t0 < SLOW_AUTH_MS); /* the pings were measured while auth was still thinking */

    b = wsc_finish(b);
    assert_true(b >= 0);
    wsc_send_json(b, "{\"type\":\"ping\"}"); /* sent while pending: held, answered once admitted */
    char *p = NULL;
    assert_int_equal(wsc_recv(b, &p), 1);
    json_t *first = json_loads(p, 0, NULL);
    free(p);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "hello");
    json_decref(first);
    assert_true(mono_ms() - t0 >= SLOW_AUTH_MS - 100); /* nothing came before auth said yes */
    json_t *pong = wsc_expect(b, "pong");
    assert_non_null(pong);
    json_decref(pong);

    c = wsc_finish(c);
    assert_true(c >= 0);
    assert_signed_out(c);
    assert_true(wsc_alive(a));
    close(a);
    close(b);
    close(c);
    free(slow);
    free(slow_revoked);
}

static void test_session_closes_when_its_token_expires(void **state) {
    fixture *fx = *state;
    char *brief = NULL;
    int64_t exp;
    assert_int_equal(ems_jwt_sign(fx->jwt, &client1, 2, &brief, &exp), EMS_OK);
    int fd = wsc_open(ws_port(fx, 0), brief), other = wsc_open(ws_port(fx, 0), tok_client1);
    assert_true(fd >= 0 && other >= 0);
    json_decref(wsc_expect(fd, "hello"));
    json_decref(wsc_expect(other, "hello"));
    assert_true(wsc_alive(fd)); /* good until it expires */
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_signed_out(fd);
    assert_true(wsc_alive(other)); /* the same user's session with a longer token stays */
    close(fd);
    close(other);
    free(brief);
}

/*
 * auth revokes client1's tokens below version 2 (a password change): its
 * sessions on both replicas close, though only replica 0 hears auth; its
 * session with a version-2 token and other users' stay, until the account is
 * deleted (version 0: all).  A malformed revocation changes nothing.
 */
static void test_revocation_closes_open_sessions_on_every_replica(void **state) {
    fixture *fx = *state;
    assert_true(replicas_know_each_other(fx));
    char *renewed = NULL;
    int64_t exp;
    ems_principal after = client1;
    after.ver = 2;
    assert_int_equal(ems_jwt_sign(fx->jwt, &after, 600, &renewed, &exp), EMS_OK);
    int old0 = wsc_open(ws_port(fx, 0), tok_client1), old1 = wsc_open(ws_port(fx, 1), tok_client1_b);
    int new1 = wsc_open(ws_port(fx, 1), renewed), bob = wsc_open(ws_port(fx, 0), tok_client2);
    assert_true(old0 >= 0 && old1 >= 0 && new1 >= 0 && bob >= 0);
    int fds[] = {old0, old1, new1, bob};
    for (int i = 0; i < 4; i++) json_decref(wsc_expect(fds[i], "hello"));

    const char *bad[] = {"not json", "{\"type\":\"account.revoked\",\"id\":\"nope\",\"ver\":9}",
                         "{\"type\":\"account.updated\",\"id\":\"11111111-1111-4111-8111-111111111111\",\"ver\":9}"};
    for (size_t i = 0; i < 3; i++) assert_int_equal(ems_bus_publish(fx->bus, RQ, bad[i], strlen(bad[i])), EMS_OK);
    assert_true(wsc_alive(old0) && wsc_alive(old1));

    publish_revoked(fx, client1.id, 2);
    assert_signed_out(old0);
    assert_signed_out(old1);
    assert_true(wsc_alive(new1));
    assert_true(wsc_alive(bob));

    publish_revoked(fx, client1.id, 0);
    assert_signed_out(new1);
    assert_true(wsc_alive(bob));
    for (int i = 0; i < 4; i++) close(fds[i]);
    free(renewed);
}

static void test_notification_reaches_every_session_of_the_owner_only(void **state) {
    fixture *fx = *state;
    int port = ws_port(fx, 0);
    int a = wsc_open(port, tok_client1), b = wsc_open(port, tok_client1_b), other = wsc_open(port, tok_client2);
    assert_true(a >= 0 && b >= 0 && other >= 0);
    json_decref(wsc_expect(a, "hello"));
    json_decref(wsc_expect(b, "hello"));
    json_decref(wsc_expect(other, "hello"));
    publish_alert(fx, "aaaaaaaa-0000-4000-8000-000000000001", client1.id, "Heater");
    for (int i = 0; i < 2; i++) {
        json_t *n = wsc_expect(i ? b : a, "notification");
        assert_non_null(n);
        assert_string_equal(json_string_value(json_object_get(n, "kind")), "alert");
        assert_string_equal(json_string_value(json_object_get(n, "device_name")), "Heater");
        assert_true(json_integer_value(json_object_get(n, "id")) > 0);
        json_decref(n);
    }
    assert_true(wsc_quiet(other, "notification", 300));
    /* The same event again (broker redelivery) is stored and pushed once. */
    publish_alert(fx, "aaaaaaaa-0000-4000-8000-000000000001", client1.id, "Heater");
    assert_true(wsc_quiet(a, "notification", 300));
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM notifications"), 1);
    close(a);
    close(b);
    close(other);
}

static void test_offline_notifications_in_order_and_read(void **state) {
    fixture *fx = *state;
    int port = ws_port(fx, 0);
    publish_alert(fx, "aaaaaaaa-0000-4000-8000-000000000002", client1.id, "Oven");
    publish_alert(fx, "aaaaaaaa-0000-4000-8000-000000000003", client1.id, "Boiler");
    int fd = wsc_open(port, tok_client1);
    json_t *hello = wsc_expect(fd, "hello");
    assert_int_equal(json_integer_value(json_object_get(hello, "unread_notifications")), 2);
    json_decref(hello);
    json_t *n1 = wsc_expect(fd, "notification"), *n2 = wsc_expect(fd, "notification");
    assert_string_equal(json_string_value(json_object_get(n1, "device_name")), "Oven");
    assert_string_equal(json_string_value(json_object_get(n2, "device_name")), "Boiler");
    char frame[128];
    snprintf(frame, sizeof frame, "{\"type\":\"notification.read\",\"id\":%lld}",
             (long long)json_integer_value(json_object_get(n1, "id")));
    wsc_send_json(fd, frame);
    json_t *ack = wsc_expect(fd, "notification.read");
    assert_non_null(ack);
    assert_int_equal(json_integer_value(json_object_get(ack, "id")), json_integer_value(json_object_get(n1, "id")));
    json_decref(ack);
    /* Someone else's notification cannot be marked. */
    int other = wsc_open(port, tok_client2);
    json_decref(wsc_expect(other, "hello"));
    snprintf(frame, sizeof frame, "{\"type\":\"notification.read\",\"id\":%lld}",
             (long long)json_integer_value(json_object_get(n2, "id")));
    wsc_send_json(other, frame);
    json_t *err = wsc_expect(other, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "not_found");
    json_decref(err);
    close(other);
    close(fd);
    /* Next time only the unread one comes. */
    fd = wsc_open(port, tok_client1);
    hello = wsc_expect(fd, "hello");
    assert_int_equal(json_integer_value(json_object_get(hello, "unread_notifications")), 1);
    json_t *again = wsc_expect(fd, "notification");
    assert_string_equal(json_string_value(json_object_get(again, "device_name")), "Boiler");
    json_decref(again);
    json_decref(hello);
    json_decref(n1);
    json_decref(n2);
    close(fd);
}

static void test_bad_notification_is_dead_lettered(void **state) {
    fixture *fx = *state;
    const char *bad[] = {"not json", "{\"event_id\":\"x\"}", "{\"event_id\":\"x\",\"owner_id\":\"nope\"}"};
    for (size_t i = 0; i < 3; i++) assert_int_equal(ems_bus_publish(fx->bus, NQ, bad[i], strlen(bad[i])), EMS_OK);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM notifications"), 0);
}

static void test_bad_frames_get_errors_and_floods_a_close(void **state) {
    fixture *fx = *state;
    int port = ws_port(fx, 0);
    int fd = wsc_open(port, tok_client1);
    json_decref(wsc_expect(fd, "hello"));
    const char *bad[] = {"nonsense",
                         "[1,2]",
                         "{\"no\":\"type\"}",
                         "{\"type\":\"launch.rockets\"}",
                         "{\"type\":\"chat.send\",\"text\":\"\"}",
                         "{\"type\":\"chat.send\",\"text\":\"x\",\"extra\":1}"};
    const char *codes[] = {"bad_request", "bad_request", "bad_request", "unknown_type", "bad_request", "bad_request"};
    for (size_t i = 0; i < 6; i++) {
        wsc_send_json(fd, bad[i]);
        json_t *e = wsc_expect(fd, "error");
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "code")), codes[i]);
        json_decref(e);
    }
    wsc_send(fd, 2, "\x01\x02", 2); /* binary */
    json_t *e = wsc_expect(fd, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "unsupported_media_type");
    json_decref(e);
    close(fd);

    /* Oversized: an error, then a close (1009). */
    fd = wsc_open(port, tok_client1);
    json_decref(wsc_expect(fd, "hello"));
    size_t big = 20000;
    char *blob = malloc(big);
    memset(blob, 'x', big);
    wsc_send(fd, 1, blob, big);
    free(blob);
    e = wsc_expect(fd, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "too_large");
    json_decref(e);
    char *p = NULL;
    assert_int_equal(wsc_recv(fd, &p), 8);
    assert_int_equal(((unsigned char)p[0] << 8) | (unsigned char)p[1], 1009);
    free(p);
    close(fd);

    /* A flood (the test's rate is 20/s): closed with 1008. */
    fd = wsc_open(port, tok_client1);
    json_decref(wsc_expect(fd, "hello"));
    for (int i = 0; i < 40; i++) wsc_send_json(fd, "{\"type\":\"ping\"}");
    int closed = 0;
    for (int i = 0; i < 100 && !closed; i++) {
        p = NULL;
        int op = wsc_recv(fd, &p);
        if (op == 8) {
            closed = ((unsigned char)p[0] << 8 | (unsigned char)p[1]) == 1008;
        } else if (op < 0) {
            break;
        }
        free(p);
        if (closed) p = NULL;
    }
    free(p);
    assert_true(closed);
    close(fd);

    /* Still serving. */
    fd = wsc_open(port, tok_client2);
    json_t *hello = wsc_expect(fd, "hello");
    assert_non_null(hello);
    json_decref(hello);
    close(fd);
}

static void test_chat_between_replicas(void **state) {
    fixture *fx = *state;
    /* The admin on replica 0, the client on replica 1; wait until each knows the other from the heartbeat. */
    assert_true(replicas_know_each_other(fx));
    int adm = wsc_open(ws_port(fx, 0), tok_admin), cli = wsc_open(ws_port(fx, 1), tok_client1);
    assert_true(adm >= 0 && cli >= 0);
    json_decref(wsc_expect(adm, "hello"));
    json_decref(wsc_expect(cli, "hello"));
    /* Presence crosses replicas too. */
    json_t *pres = wsc_expect(adm, "presence");
    assert_non_null(pres);
    assert_string_equal(json_string_value(json_object_get(pres, "user_id")), client1.id);
    json_decref(pres);
    char frame[256];
    snprintf(frame, sizeof frame, "{\"type\":\"chat.send\",\"to\":\"%s\",\"text\":\"hello from replica 0\"}",
             client1.id);
    wsc_send_json(adm, frame);
    json_t *m = wsc_expect(cli, "chat.message");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "hello from replica 0");
    assert_string_equal(json_string_value(json_object_get(m, "sender_role")), "admin");
    json_decref(m);
    wsc_send_json(cli, "{\"type\":\"chat.send\",\"text\":\"and back\"}");
    m = wsc_expect(adm, "chat.message"); /* the admin's own message comes back to it first */
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "hello from replica 0");
    json_decref(m);
    m = wsc_expect(adm, "chat.message");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "and back");
    assert_string_equal(json_string_value(json_object_get(m, "conversation")), client1.id);
    json_decref(m);
    close(adm);
    close(cli);
}

/* A loopback listener that never accepts (its backlog holds the connections); *port gets its port. */
static int silent_listener(int *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 8) ||
        getsockname(fd, (struct sockaddr *)&sa, &n)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/*
 * Asks the assistant; the answer must be the apology.  With `slow` (support
 * holds the request until the timeout), a ping sent meanwhile is answered
 * first: the service loop does not wait for support.
 */
static void ask_expect_apology(int fd, int slow) {
    wsc_send_json(fd, "{\"type\":\"chat.send\",\"to\":\"assistant\",\"text\":\"how much did I use yesterday?\"}");
    json_t *q = wsc_expect(fd, "chat.message");
    assert_non_null(q);
    assert_string_equal(json_string_value(json_object_get(q, "sender_id")), client1.id);
    assert_string_equal(json_string_value(json_object_get(q, "conversation")), "assistant");
    json_decref(q);
    if (slow) {
        wsc_send_json(fd, "{\"type\":\"ping\"}");
        char *p = NULL;
        assert_int_equal(wsc_recv(fd, &p), 1);
        json_t *pong = json_loads(p, 0, NULL);
        free(p);
        assert_string_equal(json_string_value(json_object_get(pong, "type")), "pong");
        json_decref(pong);
    }
    json_t *r = wsc_expect(fd, "chat.message");
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "sender_id")), "assistant");
    assert_string_equal(json_string_value(json_object_get(r, "conversation")), "assistant");
    assert_string_equal(json_string_value(json_object_get(r, "source")), "unavailable");
    assert_non_null(strstr(json_string_value(json_object_get(r, "text")), "Sorry"));
    json_decref(r);
}

static void test_assistant_unreachable_or_silent_gets_an_apology(void **state) {
    fixture *fx = *state;
    char err[256], url[64];
    int port = 0, silent = silent_listener(&port);
    assert_true(silent >= 0);
    int a = wsc_open(ws_port(fx, 0), tok_client1), admin_fd = wsc_open(ws_port(fx, 0), tok_admin);
    assert_true(a >= 0 && admin_fd >= 0);
    json_decref(wsc_expect(a, "hello"));
    json_decref(wsc_expect(admin_fd, "hello"));
    /* Refused: nothing listens on the port any more. */
    int gone = 0, gone_fd = silent_listener(&gone);
    assert_true(gone_fd >= 0);
    close(gone_fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", gone);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "support_service_host", url, err, sizeof err), EMS_OK);
    ask_expect_apology(a, 0);
    /* Silent: connected, never answered; the timeout ends the wait. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "support_service_host", url, err, sizeof err), EMS_OK);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "ws_assistant_timeout_ms", "300", err, sizeof err), EMS_OK);
    ask_expect_apology(a, 1);
    /* Both questions and both answers are kept, in the client's assistant conversation only. */
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM messages WHERE conversation = "
                                    "'assistant:11111111-1111-4111-8111-111111111111'"),
                     4);
    /* The apologies keep their source; the questions, a person's, have none. */
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM messages WHERE sender_id = 'assistant' AND "
                                    "source = 'unavailable' AND rule IS NULL"),
                     2);
    assert_int_equal(count_rows(fx, "SELECT count(*) FROM messages WHERE sender_id <> 'assistant' AND "
                                    "source IS NOT NULL"),
                     0);
    assert_true(wsc_quiet(admin_fd, "chat.message", 200));
    close(a);
    close(admin_fd);
    close(silent);
}

/* A flood of questions while support is silent: the queue stays bounded and the excess is refused at once. */
static void test_assistant_queue_is_bounded(void **state) {
    fixture *fx = *state;
    char err[256], url[64];
    int port = 0, silent = silent_listener(&port);
    assert_true(silent >= 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "support_service_host", url, err, sizeof err), EMS_OK);
    assert_int_equal(ems_conf_set(fx->r[0].conf, "ws_assistant_timeout_ms", "2000", err, sizeof err), EMS_OK);
    ws_role *w = fx->r[0].state;
    int queued = 0, refused = 0;
    for (int i = 0; i < 300; i++) {
        ems_rc rc = ws_assistant_ask(w->assistant, client1.id, tok_client1, "hello", NULL);
        if (rc == EMS_OK) queued++;
        else if (rc == EMS_RATE_LIMITED) refused++;
    }
    /* 256 wait, and at most the 4 workers' questions left the queue meanwhile. */
    assert_int_equal(queued + refused, 300);
    assert_true(queued >= 256 && queued <= 260);
    close(silent); /* the questions being asked fail now; the waiting ones are dropped at stop */
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* as `ems serve` does: a peer that went away is not fatal */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuses_missing_and_bad_tokens, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_revoked_tokens_and_fails_closed, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_slow_auth_stalls_no_other_session, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_session_closes_when_its_token_expires, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_closes_open_sessions_on_every_replica, setup_two, teardown),
        cmocka_unit_test_setup_teardown(test_notification_reaches_every_session_of_the_owner_only, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_offline_notifications_in_order_and_read, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_bad_notification_is_dead_lettered, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frames_get_errors_and_floods_a_close, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_chat_between_replicas, setup_two, teardown),
        cmocka_unit_test_setup_teardown(test_assistant_unreachable_or_silent_gets_an_apology, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_assistant_queue_is_bounded, setup_one, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
