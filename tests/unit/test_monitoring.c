/*
 * test_monitoring.c — the monitoring and balancer roles, started as `ems
 * serve` starts them: SQLite, the in-process bus, an HTTP server on a free
 * loopback port.  Readings go in through the balancer's queue (and POST
 * /api/readings); the test compares the stored quarter-hour sums and hourly
 * series with sums it computes itself, under duplicates, out-of-order and
 * late readings and redelivered batches; checks one alert per device and
 * hour, dead letters for unknown devices and malformed messages, the read
 * API's authorization and a DST day in a real zone.  (The reading parsers
 * and the replica hash are core: test_reading.c, test_replica.c.)  The
 * devices role runs beside them (its own SQLite file), so that an alert
 * travels on to the owner's notification queue.
 *
 * A second group runs the replica's batch consumer over a real PostgreSQL
 * (a private server started with tests/lib/pg.sh on a free loopback port and
 * stopped at the end, or EMS_TEST_PG_URL), where readings are inserted with
 * one statement per device: the same exactness checks there, and a device's
 * delete and upsert applied at once by two replicas.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus_impl.h"
#include "fixture.h"
#include "log.h"
#include "monitoring/monitoring.h"
#include "reading.h"
#include "replica.h"
#include "roles.h"

#define Q_IN "external.data.collection.queue"
#define Q_PREFIX "internal.loadbalancer.monitoring.queue."
#define Q_DEVICES "internal.device.monitoring.queue"
#define Q_ALERTS "internal.monitoring.device.alert.queue"
#define Q_NOTIFY "internal.device.websocket.user.notification.queue"
#define REPLICAS 4

/* The keys the two roles read, as main.c declares them. */
static const ems_conf_def test_conf[] = {
    {"rabbitmq_device_monitoring_queue", NULL, EMS_CONF_STR, Q_DEVICES, 0, 0, ""},
    {"rabbitmq_alert_queue", NULL, EMS_CONF_STR, Q_ALERTS, 0, 0, ""},
    {"rabbitmq_notification_queue", NULL, EMS_CONF_STR, Q_NOTIFY, 0, 0, ""},
    {"rabbitmq_auth_device_queue", NULL, EMS_CONF_STR, "internal.auth.device.queue", 0, 0, ""},
    {"rabbitmq_data_collection_queue", NULL, EMS_CONF_STR, Q_IN, 0, 0, ""},
    {"rabbitmq_monitoring_queue_prefix", NULL, EMS_CONF_STR, Q_PREFIX, 0, 0, ""},
    {"replica_id", NULL, EMS_CONF_INT, "1", 1, 1024, ""},
    {"replicas", NULL, EMS_CONF_INT, "4", 1, 1024, ""},
    {"simulator_delay_ms", NULL, EMS_CONF_INT, "0", 0, 60000, ""},
    {"reading_tz", NULL, EMS_CONF_STR, "", 0, 0, ""},
};

/* Notifications as devices' relay delivered them to a stand-in for ws. */
typedef struct {
    pthread_mutex_t lock;
    json_t *events; /* array */
} alert_sink;

static struct {
    char dir[64];
    ems_conf *conf;
    ems_bus *bus;
    ems_store *store, *dev_store;
    ems_outbox *outbox, *dev_outbox;
    ems_jwt *jwt;
    ems_http *http;
    int port;
    ems_role_env mon_env, bal_env, dev_env;
    void *mon_state, *bal_state, *dev_state;
    alert_sink alerts;
    char *admin_token, *owner_token, *other_token;
    char owner_id[EMS_ID_LEN];
} fx;

/* ---- harness ---------------------------------------------------------------- */

static ems_verdict sink_alert(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    alert_sink *s = ctx;
    json_t *ev = json_loadb(body, len, 0, NULL);
    if (!ev) return EMS_BUS_REJECT;
    pthread_mutex_lock(&s->lock);
    json_array_append_new(s->events, ev);
    pthread_mutex_unlock(&s->lock);
    return EMS_BUS_ACK;
}

static char *mint(const char *id, const char *username, ems_role role) {
    ems_principal p = {0};
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.username, sizeof p.username, "%s", username);
    p.role = role;
    p.ver = 1;
    char *token = NULL;
    assert_int_equal(ems_jwt_sign(fx.jwt, &p, 3600, &token, NULL), EMS_OK);
    return token;
}

static int setup(void **state) {
    (void)state;
    char err[256], path[256], id[EMS_ID_LEN];
    if (!fx_tmpdir(fx.dir, sizeof fx.dir, "monitoring")) return -1;
    fx.conf = ems_conf_new();
    ems_conf_add(fx.conf, test_conf, sizeof test_conf / sizeof test_conf[0]);
    if (ems_conf_load(fx.conf, NULL, 0, NULL, err, sizeof err)) return -1;
    if (ems_bus_open("inproc:", &fx.bus, err, sizeof err)) return -1;
    snprintf(path, sizeof path, "sqlite:%s/monitoring.db", fx.dir);
    if (ems_store_open(path, 4, &fx.store, err, sizeof err)) return -1;
    if (ems_store_migrate(fx.store, EMS_SOURCE_DIR "/sql/monitoring/sqlite", err, sizeof err)) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    if (ems_outbox_start(fx.store, fx.bus, &fx.outbox)) return -1;
    snprintf(path, sizeof path, "sqlite:%s/devices.db", fx.dir);
    if (ems_store_open(path, 2, &fx.dev_store, err, sizeof err)) return -1;
    if (ems_store_migrate(fx.dev_store, EMS_SOURCE_DIR "/sql/devices/sqlite", err, sizeof err)) return -1;
    if (ems_outbox_start(fx.dev_store, fx.bus, &fx.dev_outbox)) return -1;
    char priv[128], pub[128];
    snprintf(priv, sizeof priv, "%s/jwt-private.pem", fx.dir);
    snprintf(pub, sizeof pub, "%s/jwt-public.pem", fx.dir);
    if (ems_jwt_load(priv, pub, 1, &fx.jwt, err, sizeof err)) return -1;
    ems_http_opts o = {.bind = "127.0.0.1", .threads = 2, .jwt = fx.jwt, .ingest_token = "ingest-secret"};
    if (!(fx.http = ems_http_new(&o))) return -1;
    pthread_mutex_init(&fx.alerts.lock, NULL);
    fx.alerts.events = json_array();
    if (ems_bus_consume(fx.bus, Q_NOTIFY, 0, sink_alert, &fx.alerts)) return -1;

    fx.mon_env = (ems_role_env){.name = "monitoring",
                                .conf = fx.conf,
                                .store = fx.store,
                                .bus = fx.bus,
                                .outbox = fx.outbox,
                                .jwt = fx.jwt,
                                .http = fx.http,
                                .embedded = 1};
    fx.bal_env = (ems_role_env){
        .name = "balancer", .conf = fx.conf, .bus = fx.bus, .jwt = fx.jwt, .http = fx.http, .embedded = 1};
    fx.dev_env = (ems_role_env){.name = "devices",
                                .conf = fx.conf,
                                .store = fx.dev_store,
                                .bus = fx.bus,
                                .outbox = fx.dev_outbox,
                                .jwt = fx.jwt,
                                .http = fx.http,
                                .embedded = 1};
    if (ems_role_devices.start(&fx.dev_env, &fx.dev_state)) return -1;
    if (ems_role_monitoring.start(&fx.mon_env, &fx.mon_state)) return -1;
    if (ems_role_balancer.start(&fx.bal_env, &fx.bal_state)) return -1;
    if (ems_http_start(fx.http, err, sizeof err)) return -1;
    fx.port = ems_http_port(fx.http);

    ems_uuid(id);
    fx.admin_token = mint(id, "admin", EMS_ROLE_ADMIN);
    ems_uuid(fx.owner_id);
    fx.owner_token = mint(fx.owner_id, "owner", EMS_ROLE_CLIENT);
    ems_uuid(id);
    fx.other_token = mint(id, "other", EMS_ROLE_CLIENT);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state) {
    (void)state;
    /* As main.c: producers first, then the bus, then the roles' state. */
    ems_outbox_stop(fx.outbox);
    ems_outbox_stop(fx.dev_outbox);
    ems_http_free(fx.http);
    ems_bus_close(fx.bus);
    if (fx.bal_state) ems_role_balancer.stop(fx.bal_state);
    if (fx.mon_state) ems_role_monitoring.stop(fx.mon_state);
    if (fx.dev_state) ems_role_devices.stop(fx.dev_state);
    ems_store_close(fx.store);
    ems_store_close(fx.dev_store);
    ems_jwt_free(fx.jwt);
    ems_conf_free(fx.conf);
    json_decref(fx.alerts.events);
    pthread_mutex_destroy(&fx.alerts.lock);
    free(fx.admin_token);
    free(fx.owner_token);
    free(fx.other_token);
    nftw(fx.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static void nap_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A device as devices announces it; owner may be NULL. */
static void announce_device(const char *id, const char *owner, double limit) {
    char event_id[EMS_ID_LEN];
    ems_uuid(event_id);
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:f, s:I}}", "event_id", event_id, "type", "device.upserted",
                           "device", "id", id, "name", "meter", "owner_id", owner ? json_string(owner) : json_null(),
                           "max_hourly_kwh", limit, "updated_at", (json_int_t)1);
    char *body = json_dumps(ev, JSON_COMPACT);
    assert_int_equal(ems_bus_publish(fx.bus, Q_DEVICES, body, strlen(body)), EMS_OK);
    /* The same event again changes nothing (inbox). */
    assert_int_equal(ems_bus_publish(fx.bus, Q_DEVICES, body, strlen(body)), EMS_OK);
    free(body);
    json_decref(ev);
}

/* The device in devices' own table too (as its API would have written it), so that alerts find their owner. */
static void devices_row(const char *id, const char *owner, double limit) {
    ems_db *db = ems_store_get(fx.dev_store);
    assert_non_null(db);
    if (owner)
        assert_int_equal(ems_db_exec(db,
                                     "INSERT INTO accounts (id, username, role) VALUES ($1, $2, 'client') "
                                     "ON CONFLICT (id) DO NOTHING",
                                     "ss", owner, "owner"),
                         EMS_OK);
    assert_int_equal(ems_db_exec(db,
                                 "INSERT INTO devices (id, name, max_hourly_kwh, owner_id, created_at, updated_at) "
                                 "VALUES ($1, 'meter', $2, $3, 1, 1)",
                                 "sds", id, limit, owner),
                     EMS_OK);
    ems_store_put(fx.dev_store, db);
}

static char *new_device(const char *owner, double limit) {
    char *id = malloc(EMS_ID_LEN);
    ems_uuid(id);
    devices_row(id, owner, limit);
    announce_device(id, owner, limit);
    return id;
}

static void publish_json(const char *queue, json_t *msg) {
    char *body = json_dumps(msg, JSON_COMPACT);
    assert_int_equal(ems_bus_publish(fx.bus, queue, body, strlen(body)), EMS_OK);
    free(body);
    json_decref(msg);
}

static json_t *seed_reading(const char *id, int64_t ts, double kwh) {
    return json_pack("{s:I, s:s, s:f}", "timestamp", (json_int_t)ts, "device_id", id, "measurement_value", kwh);
}

static double db_double(const char *sql, const char *id, int64_t a, int64_t b) {
    ems_db *db = ems_store_get(fx.store);
    ems_rows *rows = NULL;
    assert_non_null(db);
    assert_int_equal(ems_db_query(db, &rows, sql, "sii", id, a, b), EMS_OK);
    double v = ems_rows_double(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(fx.store, db);
    return v;
}

/* SQLite keys a device's rows by its device_keys.key (sql/monitoring/sqlite/002). */
static double bucket_kwh(const char *id, int64_t bucket) {
    return db_double("SELECT COALESCE(SUM(b.kwh), 0) FROM buckets b JOIN device_keys k ON k.key = b.device_key "
                     "WHERE k.id = $1 AND b.bucket_start >= $2 AND b.bucket_start < $3",
                     id, bucket, bucket + MON_BUCKET_MS);
}

static long alerts_of(const char *id) {
    return (long)db_double("SELECT count(*) FROM alerts WHERE device_id = $1 AND hour_start >= $2 AND hour_start < $3",
                           id, 0, INT64_MAX);
}

/* Notifications delivered for a device, once both relays (monitoring → devices → ws) are drained. */
static size_t delivered_alerts(const char *id) {
    for (int i = 0; i < 200 && (ems_outbox_pending(fx.outbox) > 0 || ems_outbox_pending(fx.dev_outbox) > 0); i++)
        nap_ms(20);
    size_t n = 0, i;
    json_t *ev;
    pthread_mutex_lock(&fx.alerts.lock);
    json_array_foreach(fx.alerts.events, i, ev) {
        const char *d = json_string_value(json_object_get(ev, "device_id"));
        if (d && strcmp(d, id) == 0) n++;
    }
    pthread_mutex_unlock(&fx.alerts.lock);
    return n;
}

typedef struct {
    int status;
    char head[4096];
    char *body;
} http_res;

static http_res call(const char *method, const char *path, const char *token, const char *body) {
    http_res res = {0};
    char req[65536];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (token) n += snprintf(req + n, sizeof req - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (body)
        n += snprintf(req + n, sizeof req - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n%s", body ? body : "");
    assert_true(n > 0 && (size_t)n < sizeof req);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    for (ssize_t r; (r = recv(fd, buf + got, cap - got - 1, 0)) > 0;) {
        got += (size_t)r;
        if (cap - got < 4096) buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &res.status), 1);
    size_t head = (size_t)(end - buf) < sizeof res.head ? (size_t)(end - buf) : sizeof res.head - 1;
    memcpy(res.head, buf, head);
    res.body = strdup(end + 4);
    free(buf);
    return res;
}

static json_t *call_json(const char *method, const char *path, const char *token, const char *body, int status) {
    http_res r = call(method, path, token, body);
    if (r.status != status) fprintf(stderr, "%s %s: %d %s\n", method, path, r.status, r.body);
    assert_int_equal(r.status, status);
    json_t *j = json_loads(r.body, 0, NULL);
    free(r.body);
    assert_non_null(j);
    return j;
}

/* 2026-03-10T00:00:00Z, a Tuesday with no DST change anywhere near. */
#define T0 1773100800000LL

/* ---- tests ------------------------------------------------------------------- */

static void test_exact_sums_under_duplicates_reorder_and_late(void **state) {
    (void)state;
    enum { N = 96 }; /* every 10 minutes for 16 hours */
    char *id = new_device(fx.owner_id, 1000);
    double expect[N * 10 / 15 + 2] = {0};
    /* Readings in reverse order, each message of 8 with the previous message's last one repeated. */
    for (int start = N - 1; start >= 0; start -= 8) {
        json_t *msg = json_array();
        for (int k = start; k > start - 8 && k >= 0; k--)
            json_array_append_new(msg, seed_reading(id, T0 + (int64_t)k * 600000, 0.01 * (k + 1)));
        if (start + 1 < N)
            json_array_append_new(msg, seed_reading(id, T0 + (int64_t)(start + 1) * 600000, 0.01 * (start + 2)));
        publish_json(Q_IN, msg);
    }
    for (int k = 0; k < N; k++) expect[(k * 10) / 15] += 0.01 * (k + 1);
    /* A late reading for the first hour, and a whole message sent twice. */
    json_t *late = json_array();
    json_array_append_new(late, seed_reading(id, T0 + 7 * 60000, 0.5));
    json_array_append_new(late, seed_reading(id, T0 + 7 * 60000, 0.5));
    char *late_body = json_dumps(late, JSON_COMPACT);
    json_decref(late);
    assert_int_equal(ems_bus_publish(fx.bus, Q_IN, late_body, strlen(late_body)), EMS_OK);
    assert_int_equal(ems_bus_publish(fx.bus, Q_IN, late_body, strlen(late_body)), EMS_OK);
    free(late_body);
    expect[0] += 0.5;
    for (size_t b = 0; b < sizeof expect / sizeof expect[0]; b++)
        assert_float_equal(bucket_kwh(id, T0 + (int64_t)b * MON_BUCKET_MS), expect[b], 1e-9);
    assert_float_equal(db_double("SELECT count(*) FROM readings r JOIN device_keys k ON k.key = r.device_key "
                                 "WHERE k.id = $1 AND r.ts >= $2 AND r.ts < $3",
                                 id, 0, INT64_MAX),
                       N + 1, 0);
    free(id);
}

static void test_redelivered_batch_counts_once(void **state) {
    (void)state;
    char *id = new_device(NULL, 1000);
    reading rs[3];
    for (int i = 0; i < 3; i++) {
        snprintf(rs[i].device_id, sizeof rs[i].device_id, "%s", id);
        rs[i].ts_ms = T0 + 86400000LL + i * 60000;
        rs[i].kwh = 0.25;
    }
    size_t l1, l2;
    char *b1 = readings_dump(rs, 2, &l1), *b2 = readings_dump(rs + 1, 2, &l2);
    ems_bus_msg msgs[3] = {{b1, l1}, {"{\"broken\"", 9}, {b2, l2}};
    ems_verdict v[3];
    /* The consumer called as the broker would call it, the second time as a redelivery. */
    for (int round = 0; round < 2; round++) {
        monitoring_on_readings(Q_PREFIX "1", msgs, 3, v, fx.mon_state);
        assert_int_equal(v[0], EMS_BUS_ACK);
        assert_int_equal(v[1], EMS_BUS_REJECT);
        assert_int_equal(v[2], EMS_BUS_ACK);
        assert_float_equal(bucket_kwh(id, T0 + 86400000LL), 0.75, 1e-12);
    }
    free(b1);
    free(b2);
    free(id);
}

static void test_one_alert_per_device_and_hour(void **state) {
    (void)state;
    char *id = new_device(fx.owner_id, 1.0);
    int64_t h = T0 + 2 * 86400000LL;
    json_t *m1 = json_array(), *m2 = json_array(), *m3 = json_array();
    json_array_append_new(m1, seed_reading(id, h + 5 * 60000, 0.6));
    publish_json(Q_IN, m1);
    assert_int_equal(alerts_of(id), 0); /* 0.6: under the limit */
    json_array_append_new(m2, seed_reading(id, h + 50 * 60000, 0.6));
    json_array_append_new(m2, seed_reading(id, h + 50 * 60000, 0.6)); /* duplicate */
    publish_json(Q_IN, m2);
    assert_int_equal(alerts_of(id), 1); /* 1.2 > 1.0 */
    json_array_append_new(m3, seed_reading(id, h + 55 * 60000, 0.5));
    json_array_append_new(m3, seed_reading(id, h + MON_HOUR_MS + 60000, 2.0)); /* next hour, over at once */
    publish_json(Q_IN, m3);
    assert_int_equal(alerts_of(id), 2);
    assert_int_equal(delivered_alerts(id), 2);
    /* devices added the owner and the name on the way. */
    pthread_mutex_lock(&fx.alerts.lock);
    json_t *note = json_array_get(fx.alerts.events, json_array_size(fx.alerts.events) - 1);
    assert_string_equal(json_string_value(json_object_get(note, "owner_id")), fx.owner_id);
    assert_string_equal(json_string_value(json_object_get(note, "device_name")), "meter");
    assert_string_equal(json_string_value(json_object_get(note, "type")), "alert");
    assert_int_equal(json_integer_value(json_object_get(note, "hour_start")), h + MON_HOUR_MS);
    assert_float_equal(json_real_value(json_object_get(note, "total_kwh")), 2.0, 1e-12);
    pthread_mutex_unlock(&fx.alerts.lock);
    /* The stored alert carries the total at the moment it passed the limit. */
    json_t *list = call_json("GET", "/api/alerts?limit=100", fx.owner_token, NULL, 200);
    size_t i, mine = 0;
    json_t *a;
    json_array_foreach(json_object_get(list, "items"), i, a) {
        if (strcmp(json_string_value(json_object_get(a, "device_id")), id) != 0) continue;
        mine++;
        if (json_integer_value(json_object_get(a, "hour_start")) == h)
            assert_float_equal(json_real_value(json_object_get(a, "total_kwh")), 1.2, 1e-9);
        assert_float_equal(json_real_value(json_object_get(a, "limit_kwh")), 1.0, 1e-12);
    }
    assert_int_equal(mine, 2);
    json_decref(list);
    /* Another client sees none of them; asking by device is refused. */
    list = call_json("GET", "/api/alerts", fx.other_token, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 0);
    json_decref(list);
    char path[128];
    snprintf(path, sizeof path, "/api/alerts?device_id=%s", id);
    json_decref(call_json("GET", path, fx.other_token, NULL, 403));
    list = call_json("GET", path, fx.admin_token, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 2);
    json_decref(list);
    free(id);
}

static void test_unknown_device_goes_to_dead_letters(void **state) {
    (void)state;
    char *known = new_device(NULL, 1000), unknown[EMS_ID_LEN], dlq[128];
    ems_uuid(unknown);
    unsigned replica = ems_replica_of(unknown, REPLICAS);
    snprintf(dlq, sizeof dlq, "%s%u.dlq", Q_PREFIX, replica);
    long before = ems_bus_dlq_count(fx.bus, dlq);
    json_t *msg = json_array();
    json_array_append_new(msg, seed_reading(unknown, T0 + 3 * 86400000LL, 1.5));
    json_array_append_new(msg, seed_reading(known, T0 + 3 * 86400000LL, 0.75));
    publish_json(Q_IN, msg);
    /* The known device's reading is stored; the unknown one's is dead-lettered, not dropped. */
    assert_float_equal(bucket_kwh(known, T0 + 3 * 86400000LL), 0.75, 1e-12);
    assert_float_equal(bucket_kwh(unknown, T0 + 3 * 86400000LL), 0, 0);
    assert_int_equal(ems_bus_dlq_count(fx.bus, dlq), before + 1);
    size_t len;
    char *dead = ems_bus_dlq_message(fx.bus, dlq, (size_t)(ems_bus_dlq_count(fx.bus, dlq) - 1), &len);
    assert_non_null(dead);
    assert_non_null(strstr(dead, unknown));
    assert_null(strstr(dead, known));
    free(dead);
    free(known);
}

/* A counter's value in /metrics (0 when absent). */
static double metric(const char *name) {
    http_res r = call("GET", "/metrics", NULL, NULL);
    char key[128];
    double v = 0;
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    if (p) v = strtod(p + strlen(key), NULL);
    free(r.body);
    return v;
}

static void test_malformed_messages_go_to_dead_letters(void **state) {
    (void)state;
    double replica_count = metric("ems_readings_malformed_total"),
           balancer_count = metric("ems_balancer_malformed_total");
    long in_before = ems_bus_dlq_count(fx.bus, Q_IN), rep_before = ems_bus_dlq_count(fx.bus, Q_PREFIX "2");
    /* Refused whole by the balancer: one bad reading spoils its message. */
    assert_int_equal(ems_bus_publish(fx.bus, Q_IN, "not json", 8), EMS_OK);
    assert_int_equal(
        ems_bus_publish(fx.bus, Q_IN, "[{\"timestamp\":1,\"device_id\":\"x\",\"measurement_value\":1}]", 55), EMS_OK);
    assert_int_equal(ems_bus_dlq_count(fx.bus, Q_IN), in_before + 2);
    /* And by a replica, should one reach it directly. */
    assert_int_equal(ems_bus_publish(fx.bus, Q_PREFIX "2", "{}", 2), EMS_OK);
    assert_int_equal(ems_bus_dlq_count(fx.bus, Q_PREFIX "2"), rep_before + 1);
    assert_float_equal(metric("ems_readings_malformed_total"), replica_count + 1, 0);
    assert_float_equal(metric("ems_balancer_malformed_total"), balancer_count + 2, 0);
}

static void test_post_readings(void **state) {
    (void)state;
    char *id = new_device(NULL, 1000), body[512];
    int64_t t = T0 + 4 * 86400000LL;
    snprintf(body, sizeof body,
             "[{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":1.25},"
             "{\"deviceId\":\"%s\",\"timestamp\":\"2026-03-14T00:01:00Z\",\"value\":0.5}]",
             (long long)t, id, id);
    json_t *ok = call_json("POST", "/api/readings", "ingest-secret", body, 202);
    assert_int_equal(json_integer_value(json_object_get(ok, "accepted")), 2);
    json_decref(ok);
    /* 202 means committed: the sums are there already. */
    assert_float_equal(bucket_kwh(id, t), 1.75, 1e-12);
    json_decref(call_json("POST", "/api/readings", fx.admin_token, body, 202));
    assert_float_equal(bucket_kwh(id, t), 1.75, 1e-12);
    /* A bad reading refuses the whole body, with the reason, and stores nothing. */
    snprintf(
        body, sizeof body,
        "[{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":9},{\"timestamp\":1,\"device_id\":\"%s\"}]",
        (long long)(t + 60000), id, id);
    json_t *err = call_json("POST", "/api/readings", "ingest-secret", body, 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(err, "error"), "message")), "reading 1"));
    json_decref(err);
    assert_float_equal(bucket_kwh(id, t), 1.75, 1e-12);
    json_decref(call_json("POST", "/api/readings", NULL, body, 401));
    json_decref(call_json("POST", "/api/readings", fx.owner_token, body, 403));
    json_decref(call_json("POST", "/api/readings", "wrong-secret", body, 401));
    free(id);
}

/*
 * 2026-10-25 in Europe/Bucharest has 25 hours (03:00 EEST → 03:00 EET).  One
 * reading of (h + 1) / 10 kWh at ten past every UTC hour of that local day.
 */
static void test_day_series_on_a_dst_day(void **state) {
    (void)state;
    char *id = new_device(fx.owner_id, 2.0), path[256];
    const int64_t start = 1792875600000LL; /* 2026-10-24T21:00:00Z = 2026-10-25T00:00+03:00 */
    json_t *msg = json_array();
    double total = 0;
    for (int h = 0; h < 25; h++) {
        json_array_append_new(msg, seed_reading(id, start + h * MON_HOUR_MS + 10 * 60000, (h + 1) / 10.0));
        total += (h + 1) / 10.0;
    }
    publish_json(Q_IN, msg);
    snprintf(path, sizeof path, "/api/consumption/%s?date=2026-10-25&tz=Europe/Bucharest", id);
    json_t *day = call_json("GET", path, fx.owner_token, NULL, 200);
    json_t *hours = json_object_get(day, "hours");
    assert_int_equal(json_array_size(hours), 25);
    for (size_t h = 0; h < 25; h++)
        assert_float_equal(json_real_value(json_object_get(json_array_get(hours, h), "kwh")), (h + 1) / 10.0, 1e-12);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hours, 0), "start")),
                        "2026-10-25T00:00:00+03:00");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hours, 3), "start")),
                        "2026-10-25T03:00:00+03:00");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hours, 4), "start")),
                        "2026-10-25T03:00:00+02:00");
    assert_float_equal(json_real_value(json_object_get(day, "total_kwh")), total, 1e-9);
    assert_float_equal(json_real_value(json_object_get(day, "average_kwh")), total / 25, 1e-9);
    assert_float_equal(json_real_value(json_object_get(json_object_get(day, "peak"), "kwh")), 2.5, 1e-12);
    assert_string_equal(json_string_value(json_object_get(json_object_get(day, "peak"), "start")),
                        "2026-10-25T23:00:00+02:00");
    assert_float_equal(json_real_value(json_object_get(day, "limit_kwh")), 2.0, 0);
    assert_string_equal(json_string_value(json_object_get(day, "unit")), "kWh");
    json_decref(day);

    /* The same instants in Asia/Kathmandu (+05:45): the local hours start at a quarter past. */
    snprintf(path, sizeof path, "/api/consumption/%s?date=2026-10-25&tz=Asia/Kathmandu", id);
    day = call_json("GET", path, fx.admin_token, NULL, 200);
    hours = json_object_get(day, "hours");
    assert_int_equal(json_array_size(hours), 24);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hours, 0), "start")),
                        "2026-10-25T00:00:00+05:45");
    double kathmandu = 0;
    for (size_t h = 0; h < 24; h++) kathmandu += json_real_value(json_object_get(json_array_get(hours, h), "kwh"));
    assert_float_equal(json_real_value(json_object_get(day, "total_kwh")), kathmandu, 1e-9);
    json_decref(day);

    /* CSV over two days: a header and 25 + 24 rows. */
    snprintf(path, sizeof path, "/api/consumption/%s.csv?from=2026-10-25&to=2026-10-26&tz=Europe/Bucharest", id);
    http_res r = call("GET", path, fx.owner_token, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "text/csv"));
    assert_non_null(strstr(r.head, "attachment"));
    size_t lines = 0;
    for (const char *p = r.body; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, 1 + 25 + 24);
    assert_non_null(strstr(r.body, "start,kwh\r\n2026-10-25T00:00:00+03:00,0.100000\r\n"));
    free(r.body);

    /* Who may ask, and what is refused. */
    snprintf(path, sizeof path, "/api/consumption/%s?date=2026-10-25", id);
    json_decref(call_json("GET", path, fx.other_token, NULL, 403));
    json_decref(call_json("GET", path, NULL, NULL, 401));
    snprintf(path, sizeof path, "/api/consumption/%s.csv", id);
    json_decref(call_json("GET", path, fx.other_token, NULL, 403));
    snprintf(path, sizeof path, "/api/consumption/%s?date=2026-02-30", id);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 400));
    snprintf(path, sizeof path, "/api/consumption/%s?tz=Mars/Olympus", id);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 400));
    snprintf(path, sizeof path, "/api/consumption/%s.csv?from=2026-01-01&to=2027-01-02", id);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 400));
    snprintf(path, sizeof path, "/api/consumption/%s.csv?from=2026-01-02&to=2026-01-01", id);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 400));
    json_decref(call_json("GET", "/api/consumption/not-a-uuid", fx.admin_token, NULL, 400));
    json_decref(call_json("GET", "/api/consumption/7f000000-0000-4000-8000-000000000000", fx.admin_token, NULL, 404));
    free(id);
}

static void test_device_events_replicated(void **state) {
    (void)state;
    char *id = new_device(NULL, 1.0), event_id[EMS_ID_LEN], path[128];
    snprintf(path, sizeof path, "/api/consumption/%s", id);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 403));
    announce_device(id, fx.owner_id, 3.0); /* owner and limit changed */
    json_t *day = call_json("GET", path, fx.owner_token, NULL, 200);
    assert_float_equal(json_real_value(json_object_get(day, "limit_kwh")), 3.0, 0);
    json_decref(day);
    ems_uuid(event_id);
    publish_json(Q_DEVICES,
                 json_pack("{s:s, s:s, s:{s:s}}", "event_id", event_id, "type", "device.deleted", "device", "id", id));
    json_decref(call_json("GET", path, fx.owner_token, NULL, 404));
    /* An upsert applied after the delete (a slower replica, a redelivery) does not bring the device back. */
    announce_device(id, fx.owner_id, 5.0);
    json_decref(call_json("GET", path, fx.owner_token, NULL, 404));
    /* A malformed event is dead-lettered, not retried for ever. */
    long before = ems_bus_dlq_count(fx.bus, Q_DEVICES);
    assert_int_equal(ems_bus_publish(fx.bus, Q_DEVICES, "{\"type\":1}", 10), EMS_OK);
    assert_int_equal(ems_bus_dlq_count(fx.bus, Q_DEVICES), before + 1);
    free(id);
}

static void test_devices_enriches_alerts_once(void **state) {
    (void)state;
    char *owned = new_device(fx.owner_id, 1.0), *unowned = new_device(NULL, 1.0), body[512];
    /* The same alert event twice (a redelivery): one notification. */
    snprintf(body, sizeof body,
             "{\"event_id\":\"0f000000-0000-4000-8000-000000000001\",\"type\":\"alert\",\"device_id\":\"%s\","
             "\"hour_start\":%lld,\"total_kwh\":1.5,\"limit_kwh\":1.0}",
             owned, (long long)T0);
    assert_int_equal(ems_bus_publish(fx.bus, Q_ALERTS, body, strlen(body)), EMS_OK);
    assert_int_equal(ems_bus_publish(fx.bus, Q_ALERTS, body, strlen(body)), EMS_OK);
    assert_int_equal(delivered_alerts(owned), 1);
    /* Nobody to tell: acknowledged, nothing sent. */
    snprintf(body, sizeof body,
             "{\"event_id\":\"0f000000-0000-4000-8000-000000000002\",\"type\":\"alert\",\"device_id\":\"%s\","
             "\"hour_start\":%lld,\"total_kwh\":1.5,\"limit_kwh\":1.0}",
             unowned, (long long)T0);
    assert_int_equal(ems_bus_publish(fx.bus, Q_ALERTS, body, strlen(body)), EMS_OK);
    assert_int_equal(delivered_alerts(unowned), 0);
    /* A malformed alert is dead-lettered. */
    long before = ems_bus_dlq_count(fx.bus, Q_ALERTS);
    assert_int_equal(ems_bus_publish(fx.bus, Q_ALERTS, "{\"device_id\":3}", 15), EMS_OK);
    assert_int_equal(ems_bus_dlq_count(fx.bus, Q_ALERTS), before + 1);
    free(owned);
    free(unowned);
}

/* ---- the batch consumer over PostgreSQL -------------------------------------------- */

static struct {
    fx_pg server; /* quiet: pg.sh's output goes to <dir>.log */
    ems_store *store;
    ems_bus *bus;
    ems_outbox *outbox;
    ems_role_env env;
    monitoring_role role;
} pg;

static ems_verdict keep_rejected(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    (void)body;
    (void)len;
    (void)ctx;
    return EMS_BUS_REJECT; /* the in-process bus keeps it, counted */
}

static int setup_pg(void **state) {
    (void)state;
    char err[256];
    pg.server.quiet = 1;
    if (fx_pg_start(&pg.server, "ems_monitoring_test") != 0) {
        fprintf(stderr, "test_monitoring: PostgreSQL did not start, see %s.log\n", pg.server.dir);
        return -1;
    }
    if (ems_store_open(pg.server.url, 2, &pg.store, err, sizeof err)) return -1;
    if (ems_store_migrate(pg.store, EMS_SOURCE_DIR "/sql/monitoring/postgres", err, sizeof err)) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    if (ems_bus_open("inproc:", &pg.bus, err, sizeof err)) return -1;
    if (ems_outbox_start(pg.store, pg.bus, &pg.outbox)) return -1;
    if (ems_bus_consume(pg.bus, Q_PREFIX "1.dlq", 0, keep_rejected, NULL)) return -1;
    if (ems_bus_consume(pg.bus, Q_ALERTS, 0, keep_rejected, NULL)) return -1;
    pg.env = (ems_role_env){.name = "monitoring", .store = pg.store, .bus = pg.bus, .outbox = pg.outbox};
    pg.role = (monitoring_role){.env = &pg.env, .alert_queue = Q_ALERTS, .ingest_queue = Q_IN};
    return 0;
}

static int teardown_pg(void **state) {
    (void)state;
    ems_outbox_stop(pg.outbox);
    ems_bus_close(pg.bus);
    ems_store_close(pg.store);
    fx_pg_stop(&pg.server);
    return 0;
}

static double pg_double(const char *sql, const char *id) {
    ems_db *db = ems_store_get(pg.store);
    ems_rows *rows = NULL;
    assert_non_null(db);
    assert_int_equal(ems_db_query(db, &rows, sql, "s", id), EMS_OK);
    double v = ems_rows_double(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(pg.store, db);
    return v;
}

static void test_pg_batches_exact_and_alert_once(void **state) {
    (void)state;
    char id[EMS_ID_LEN], unknown[EMS_ID_LEN];
    ems_uuid(id);
    ems_uuid(unknown);
    ems_db *db = ems_store_get(pg.store);
    assert_non_null(db);
    assert_int_equal(ems_db_exec(db,
                                 "INSERT INTO devices (id, owner_id, max_hourly_kwh, name, updated_at) "
                                 "VALUES ($1, NULL, 1.0, 'meter', 1)",
                                 "s", id),
                     EMS_OK);
    ems_store_put(pg.store, db);
    /* Message 1: four readings of the first hour, backwards, one of them twice; message 3 repeats two of them. */
    enum { NR = 6 };
    reading m1[NR], m3[3];
    for (int i = 0; i < NR; i++) {
        snprintf(m1[i].device_id, sizeof m1[i].device_id, "%s", id);
        m1[i].ts_ms = T0 + (int64_t)(NR - 1 - i) * 10 * 60000;
        m1[i].kwh = 0.1 + 0.01 * i;
    }
    m1[NR - 1] = m1[0]; /* a copy inside the message */
    m3[0] = m1[2];
    m3[1] = m1[3];
    m3[2] = m1[1];
    snprintf(m3[2].device_id, sizeof m3[2].device_id, "%s", unknown); /* a device nobody announced */
    m3[2].kwh = 5;
    size_t l1, l3;
    char *b1 = readings_dump(m1, NR, &l1), *b3 = readings_dump(m3, 3, &l3);
    ems_bus_msg msgs[3] = {{b1, l1}, {"[{\"timestamp\":1}]", 16}, {b3, l3}};
    ems_verdict v[3];
    double expect_first = 0, expect_total = 0;
    for (int i = 0; i < NR - 1; i++) {
        if (m1[i].ts_ms - T0 < MON_BUCKET_MS) expect_first += m1[i].kwh;
        expect_total += m1[i].kwh;
    }
    /* Delivered, then delivered again (a redelivery after a crash before the ack). */
    for (int round = 0; round < 2; round++) {
        monitoring_on_readings(Q_PREFIX "1", msgs, 3, v, &pg.role);
        assert_int_equal(v[0], EMS_BUS_ACK);
        assert_int_equal(v[1], EMS_BUS_REJECT);
        assert_int_equal(v[2], EMS_BUS_ACK);
        assert_float_equal(pg_double("SELECT kwh FROM buckets WHERE device_id = $1 ORDER BY bucket_start LIMIT 1", id),
                           expect_first, 1e-12);
        assert_float_equal(pg_double("SELECT SUM(kwh) FROM buckets WHERE device_id = $1", id), expect_total, 1e-12);
        assert_float_equal(pg_double("SELECT count(*) FROM readings WHERE device_id = $1", id), NR - 1, 0);
        assert_float_equal(pg_double("SELECT SUM(kwh) FROM readings WHERE device_id = $1", id),
                           pg_double("SELECT SUM(kwh) FROM buckets WHERE device_id = $1", id), 1e-12);
        /* 0.1 + ... + 0.14 = 0.6 in the hour: under the limit of 1.0, so no alert yet. */
        assert_float_equal(pg_double("SELECT count(*) FROM alerts WHERE device_id = $1", id), 0, 0);
    }
    assert_int_equal(ems_bus_dlq_count(pg.bus, Q_PREFIX "1.dlq"), 2); /* the unknown device, once per delivery */
    /* Over the limit: exactly one alert for the hour, however often it is passed again. */
    reading more = m1[0];
    for (int round = 0; round < 3; round++) {
        more.ts_ms = T0 + 50 * 60000 + round * 1000;
        more.kwh = 0.3;
        size_t len;
        char *body = readings_dump(&more, 1, &len);
        ems_bus_msg msg = {body, len};
        monitoring_on_readings(Q_PREFIX "1", &msg, 1, v, &pg.role);
        assert_int_equal(v[0], EMS_BUS_ACK);
        free(body);
    }
    assert_float_equal(pg_double("SELECT count(*) FROM alerts WHERE device_id = $1", id), 1, 0);
    assert_float_equal(pg_double("SELECT total_kwh FROM alerts WHERE device_id = $1", id), 0.6 + 0.3 + 0.3, 1e-9);
    free(b1);
    free(b3);
}

/* POST /api/readings (embedded: stored at once): copies count once, an unknown device is dead-lettered. */
static void test_post_readings_exact_and_dead_letters(void **state) {
    (void)state;
    char *id = new_device(NULL, 1000), unknown[EMS_ID_LEN], dlq[128], body[1024];
    int64_t t = T0 + 5 * 86400000LL;
    ems_uuid(unknown);
    snprintf(dlq, sizeof dlq, "%s%u.dlq", Q_PREFIX, ems_replica_of(unknown, REPLICAS));
    long dead = ems_bus_dlq_count(fx.bus, dlq);
    double stored = metric("ems_readings_stored_total"), dups = metric("ems_readings_duplicate_total");
    snprintf(body, sizeof body,
             "[{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":0.25},"
             "{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":0.25},"
             "{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":9},"
             "{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":0.5}]",
             (long long)(t + 60000), id, (long long)(t + 60000), id, (long long)t, unknown, (long long)t, id);
    for (int round = 0; round < 2; round++) {
        json_t *ok = call_json("POST", "/api/readings", "ingest-secret", body, 202);
        assert_int_equal(json_integer_value(json_object_get(ok, "accepted")), 4);
        json_decref(ok);
        assert_float_equal(bucket_kwh(id, t), 0.75, 1e-12);
        assert_int_equal(ems_bus_dlq_count(fx.bus, dlq), dead + round + 1);
    }
    /* Two new, then a copy inside the body, then all three again. */
    assert_float_equal(metric("ems_readings_stored_total"), stored + 2, 0);
    assert_float_equal(metric("ems_readings_duplicate_total"), dups + 1 + 3, 0);
    /* Malformed JSON is refused by the handler's parser, with where and why. */
    json_t *err = call_json("POST", "/api/readings", "ingest-secret", "[{\"timestamp\":", 400);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(err, "error"), "message")),
                           "malformed JSON at line 1"));
    json_decref(err);
    assert_float_equal(metric("ems_readings_stored_total"), stored + 2, 0);
    free(id);
}

/* Many devices in one POST: more than a statement's chunk of devices, readings, quarter hours and hours. */
static void test_batch_of_many_devices(void **state) {
    (void)state;
    enum { NDEV = 35, PER = 6 }; /* 420 readings: the test's requests are at most 64 KiB */
    char *ids[NDEV];
    json_t *msg = json_array();
    int64_t t = T0 + 6 * 86400000LL;
    for (int d = 0; d < NDEV; d++) {
        ids[d] = new_device(NULL, 1000);
        for (int k = PER - 1; k >= 0; k--) /* backwards, and a copy of each */
            for (int copy = 0; copy < 2; copy++)
                json_array_append_new(msg, seed_reading(ids[d], t + k * 5 * 60000, 0.001 * (d + 1) * (k + 1)));
    }
    char *body = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    json_decref(call_json("POST", "/api/readings", "ingest-secret", body, 202));
    free(body);
    for (int d = 0; d < NDEV; d++) {
        double sums[2] = {0, 0};
        for (int k = 0; k < PER; k++) sums[k / 3] += 0.001 * (d + 1) * (k + 1);
        for (int b = 0; b < 2; b++) assert_float_equal(bucket_kwh(ids[d], t + b * MON_BUCKET_MS), sums[b], 1e-12);
        free(ids[d]);
    }
}

/* A second replica applying an upsert of `id` on its own connection, in a thread. */
static void *pg_upsert_device(void *arg) {
    const char *id = arg;
    json_t *device = json_pack("{s:s, s:s, s:f, s:I}", "id", id, "name", "late", "max_hourly_kwh", 9.0, "updated_at",
                               (json_int_t)T0 + 2);
    ems_db *db = ems_store_get(pg.store);
    ems_rc rc = db ? ems_db_begin(db) : EMS_UNAVAILABLE;
    if (!rc) rc = monitoring_device_event(db, EMS_STORE_PG, "device.upserted", device, T0 + 2);
    if (!rc) rc = ems_db_commit(db);
    ems_store_put(pg.store, db);
    json_decref(device);
    return (void *)(intptr_t)rc;
}

/* Transactions waiting for an advisory lock, asked on a connection of its own (the test's pool is busy). */
static long pg_lock_waiters(void) {
    char err[256];
    ems_store *probe = NULL;
    ems_rows *rows = NULL;
    long n = -1;
    assert_int_equal(ems_store_open(pg.server.url, 1, &probe, err, sizeof err), EMS_OK);
    ems_db *db = ems_store_get(probe);
    assert_non_null(db);
    if (ems_db_query(db, &rows, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", "") ==
        EMS_OK)
        n = (long)ems_rows_int(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(probe, db);
    ems_store_close(probe);
    return n;
}

/*
 * Two replicas apply a device's delete and a late upsert of it at the same
 * moment: the upsert must not bring the device back.  The delete is held
 * open while the upsert runs; without the per-device lock the upsert's check
 * of deleted_devices misses the uncommitted delete and its insert lands
 * after it.
 */
static void test_pg_delete_and_upsert_at_once(void **state) {
    (void)state;
    char id[EMS_ID_LEN];
    ems_uuid(id);
    json_t *device =
        json_pack("{s:s, s:s, s:f, s:I}", "id", id, "name", "m", "max_hourly_kwh", 1.0, "updated_at", (json_int_t)T0);
    ems_db *db = ems_store_get(pg.store);
    assert_non_null(db);
    assert_int_equal(ems_db_begin(db), EMS_OK);
    assert_int_equal(monitoring_device_event(db, EMS_STORE_PG, "device.upserted", device, T0), EMS_OK);
    assert_int_equal(ems_db_commit(db), EMS_OK);
    assert_float_equal(pg_double("SELECT count(*) FROM devices WHERE id = $1", id), 1, 0);

    assert_int_equal(ems_db_begin(db), EMS_OK);
    assert_int_equal(monitoring_device_event(db, EMS_STORE_PG, "device.deleted", device, T0 + 1), EMS_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pg_upsert_device, id), 0);
    /*
     * The upsert is under way on the other connection once it waits for the device's lock.  Without
     * the lock (the bug this test is for) it never waits: after 5 s the delete commits anyway and
     * the assertions below fail.
     */
    for (int i = 0; i < 500 && pg_lock_waiters() < 1; i++) usleep(10 * 1000);
    assert_int_equal(ems_db_commit(db), EMS_OK);
    ems_store_put(pg.store, db);
    void *rc = NULL;
    pthread_join(t, &rc);
    assert_int_equal((intptr_t)rc, EMS_OK);
    assert_float_equal(pg_double("SELECT count(*) FROM devices WHERE id = $1", id), 0, 0);
    assert_float_equal(pg_double("SELECT count(*) FROM deleted_devices WHERE id = $1", id), 1, 0);
    json_decref(device);
}

int main(void) {
    const char *level = getenv("EMS_LOG_LEVEL");
    ems_log_set_level(level && ems_log_level_parse(level) >= 0 ? (ems_log_level)ems_log_level_parse(level)
                                                               : EMS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_sums_under_duplicates_reorder_and_late),
        cmocka_unit_test(test_redelivered_batch_counts_once),
        cmocka_unit_test(test_one_alert_per_device_and_hour),
        cmocka_unit_test(test_unknown_device_goes_to_dead_letters),
        cmocka_unit_test(test_malformed_messages_go_to_dead_letters),
        cmocka_unit_test(test_post_readings),
        cmocka_unit_test(test_day_series_on_a_dst_day),
        cmocka_unit_test(test_device_events_replicated),
        cmocka_unit_test(test_devices_enriches_alerts_once),
        cmocka_unit_test(test_post_readings_exact_and_dead_letters),
        cmocka_unit_test(test_batch_of_many_devices),
    };
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_pg_batches_exact_and_alert_once),
        cmocka_unit_test(test_pg_delete_and_upsert_at_once),
    };
    int failures = cmocka_run_group_tests_name("embedded", tests, setup, teardown);
    return failures + cmocka_run_group_tests_name("postgresql", pg_tests, setup_pg, teardown_pg);
}
