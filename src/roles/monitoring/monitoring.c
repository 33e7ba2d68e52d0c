/*
 * monitoring.c — the monitoring role: exact hourly consumption and alerts.
 *
 * Owns readings, their UTC quarter-hour buckets and the alerts, and keeps a
 * replica of the devices (limit, owner, name) from devices' events on
 * internal.device.monitoring.queue.  A replica consumes the balancer's queue
 * internal.loadbalancer.monitoring.queue.{REPLICA_ID}; the embedded mode,
 * one process for everything, consumes all of them 1..replicas.  Any number
 * of replicas may share one database: the balancer sends each device to one
 * replica, and every write is idempotent.
 */
#include "monitoring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consume.h"
#include "log.h"
#include "reading.h"
#include "roles.h"
#include "util.h"

/* A replica's window of unacknowledged deliveries and the batches it stores in one transaction. */
#define INGEST_PREFETCH 2000
#define INGEST_BATCH 1000
#define INGEST_WAIT_MS 20

typedef struct monitoring_state {
    monitoring_role role;
    char (*queues)[300]; /* the replica queues consumed, and their dead-letter queues in embedded mode */
    size_t nqueues;
} monitoring_state;

static const ems_route monitoring_routes[] = {
    {"GET", "/api/consumption/{device_id}.csv", EMS_ACCESS_USER, monitoring_csv},
    {"GET", "/api/consumption/{device_id}/days", EMS_ACCESS_USER, monitoring_days},
    {"GET", "/api/consumption/{device_id}", EMS_ACCESS_USER, monitoring_day},
    {"GET", "/api/alerts", EMS_ACCESS_USER, monitoring_alerts},
    {"POST", "/api/readings", EMS_ACCESS_INGEST, monitoring_post_readings},
};

/*
 * PostgreSQL: one device's events are applied one at a time.  Replicas
 * consume the device events side by side, and under READ COMMITTED a delete
 * and an upsert applied at once could each miss the other: the upsert looks
 * in deleted_devices before the delete commits and inserts after it, which
 * brings the device back.  The lock, held to the end of the transaction,
 * makes the later of the two see the earlier.  SQLite has one writer at a
 * time already.
 */
static ems_rc lock_device(ems_db *db, ems_store_engine engine, const char *id) {
    if (engine != EMS_STORE_PG) return EMS_OK;
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "s", id);
    ems_rows_free(rows);
    return rc;
}

ems_rc monitoring_device_event(ems_db *db, ems_store_engine engine, const char *type, json_t *device, int64_t at) {
    const char *id = NULL, *name = "", *owner = NULL;
    json_t *owner_json = NULL;
    double limit = 0;
    json_int_t updated = at;
    if (strcmp(type, "device.deleted") == 0) {
        if (json_unpack(device, "{s:s}", "id", &id) || !ems_uuid_valid(id)) return EMS_BAD_REQUEST;
        ems_rc rc = lock_device(db, engine, id);
        if (!rc)
            rc = ems_db_exec(db, "INSERT INTO deleted_devices (id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                             "si", id, at);
        return rc ? rc : ems_db_exec(db, "DELETE FROM devices WHERE id = $1", "s", id);
    }
    if (strcmp(type, "device.upserted") != 0) return EMS_BAD_REQUEST;
    if (json_unpack(device, "{s:s, s?s, s?o, s:F, s?I}", "id", &id, "name", &name, "owner_id", &owner_json,
                    "max_hourly_kwh", &limit, "updated_at", &updated) ||
        !ems_uuid_valid(id) || !(limit > 0))
        return EMS_BAD_REQUEST;
    if (json_is_string(owner_json)) owner = json_string_value(owner_json); /* null: no owner */
    /*
     * Events may be redelivered, or applied by replicas, out of order: a
     * deleted device stays deleted (deleted_devices), and an older state
     * never overwrites a newer one.
     */
    ems_rows *rows = NULL;
    ems_rc rc = lock_device(db, engine, id);
    if (!rc) rc = ems_db_query(db, &rows, "SELECT 1 FROM deleted_devices WHERE id = $1", "s", id);
    size_t deleted = rc ? 0 : ems_rows_count(rows);
    ems_rows_free(rows);
    if (rc || deleted) return rc;
    return ems_db_exec(
        db,
        "INSERT INTO devices (id, owner_id, max_hourly_kwh, name, updated_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, "
        "max_hourly_kwh = excluded.max_hourly_kwh, name = excluded.name, updated_at = excluded.updated_at "
        "WHERE devices.updated_at <= excluded.updated_at",
        "ssdsi", id, owner, limit, name, (int64_t)updated);
}

/* internal.device.monitoring.queue: device.upserted / device.deleted, each applied once (inbox). */
typedef struct device_event {
    monitoring_role *m;
    const char *type;
    json_t *device;
    json_int_t at;
} device_event;

static ems_rc device_check(json_t *ev, void *arg) {
    device_event *e = arg;
    e->at = ems_now_ms();
    if (json_unpack(ev, "{s:s, s:o, s?I}", "type", &e->type, "device", &e->device, "at", &e->at))
        return EMS_BAD_REQUEST;
    return EMS_OK;
}

static ems_rc device_apply(ems_db *db, json_t *ev, void *arg) {
    (void)ev;
    const device_event *e = arg;
    return monitoring_device_event(db, ems_store_engine_of(e->m->env->store), e->type, e->device, e->at);
}

static const ems_consumer device_consumer = {.check = device_check, .apply = device_apply};

static ems_verdict monitoring_on_device(const char *queue, const char *body, size_t len, void *ctx) {
    device_event e = {.m = ctx};
    return ems_consume_once(e.m->env->store, &device_consumer, queue, body, len, &e);
}

/*
 * Embedded mode only: the in-process bus keeps dead letters in memory, and a
 * dead-letter queue with a consumer that rejects is where it keeps the
 * readings of unknown devices (counted, and listed by ems_bus_dlq_message).
 */
static ems_verdict keep_dead_letter(const char *queue, const char *body, size_t len, void *ctx) {
    (void)queue;
    (void)body;
    (void)len;
    (void)ctx;
    return EMS_BUS_REJECT;
}

static void monitoring_stop(void *state) {
    monitoring_state *s = state;
    if (!s) return;
    pthread_mutex_destroy(&s->role.write_lock);
    ems_tz_free(s->role.reading_tz);
    free(s->queues);
    free(s);
}

static ems_rc monitoring_start(ems_role_env *env, void **state) {
    const ems_conf *c = env->conf;
    const char *prefix = ems_conf_str(c, "rabbitmq_monitoring_queue_prefix");
    long replicas = ems_conf_int(c, "replicas"), replica = ems_conf_int(c, "replica_id");
    long first = env->embedded ? 1 : replica, last = env->embedded ? replicas : replica;
    ems_rc rc = EMS_OK;
    monitoring_state *s = calloc(1, sizeof *s);
    if (!s) return EMS_NOMEM;
    s->role.env = env;
    s->role.alert_queue = ems_conf_str(c, "rabbitmq_alert_queue");
    s->role.ingest_queue = ems_conf_str(c, "rabbitmq_data_collection_queue");
    s->role.delay_ms = ems_conf_int(c, "simulator_delay_ms");
    s->role.embedded = env->embedded;
    s->role.queue_prefix = prefix;
    s->role.replicas = (unsigned)replicas;
    pthread_mutex_init(&s->role.write_lock, NULL);
    char err[256];
    if ((rc = readings_zone_open(ems_conf_str(c, "reading_tz"), &s->role.reading_tz, err, sizeof err)) != EMS_OK) {
        ems_log(EMS_LOG_ERROR, "monitoring.config", "reason=\"%s\"", err);
        goto cleanup;
    }
    s->nqueues = (size_t)(last - first + 1);
    if (!(s->queues = calloc(s->nqueues, sizeof *s->queues))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    rc =
        ems_http_routes(env->http, monitoring_routes, sizeof monitoring_routes / sizeof monitoring_routes[0], &s->role);
    /* Readings are parsed from the bytes by readings_parse, without a jansson tree first. */
    if (!rc) rc = ems_http_raw_body(env->http, monitoring_post_readings);
    if (!rc) rc = ems_bus_declare(env->bus, s->role.alert_queue);
    /* Distributed, the balancer and the broker's definitions own the input queue (a replica may only write to it). */
    if (!rc && env->embedded) rc = ems_bus_declare(env->bus, s->role.ingest_queue);
    if (!rc) rc = ems_bus_declare(env->bus, EMS_Q_DEVICE_MONITORING(c));
    if (!rc) rc = ems_bus_consume(env->bus, EMS_Q_DEVICE_MONITORING(c), 100, monitoring_on_device, &s->role);
    for (size_t i = 0; i < s->nqueues && !rc; i++) {
        char dlq[310];
        snprintf(s->queues[i], sizeof s->queues[i], "%s%ld", prefix, first + (long)i);
        snprintf(dlq, sizeof dlq, "%s.dlq", s->queues[i]);
        rc = ems_bus_declare(env->bus, s->queues[i]);
        if (!rc && env->embedded) rc = ems_bus_consume(env->bus, dlq, 1, keep_dead_letter, NULL);
        if (!rc)
            rc = ems_bus_consume_batch(env->bus, s->queues[i], INGEST_PREFETCH, INGEST_BATCH, INGEST_WAIT_MS,
                                       monitoring_on_readings, &s->role);
    }
    if (!rc)
        ems_log(EMS_LOG_INFO, "monitoring.consuming", "replicas=%ld..%ld of=%ld delay_ms=%ld", first, last, replicas,
                s->role.delay_ms);
cleanup:
    if (rc) {
        monitoring_stop(s);
        return rc;
    }
    *state = s;
    return EMS_OK;
}

const ems_role_def ems_role_monitoring = {
    .name = "monitoring",
    .has_store = 1,
    .start = monitoring_start,
    .stop = monitoring_stop,
};
