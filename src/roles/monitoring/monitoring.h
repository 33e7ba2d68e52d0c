/*
 * monitoring.h — the monitoring role's private state, shared by its files.
 *
 * monitoring.c starts the role (routes, consumers) and keeps the replica of
 * devices; ingest.c turns batches of readings into quarter-hour buckets and
 * alerts; query.c serves the read API.
 */
#ifndef EMS_ROLE_MONITORING_H
#define EMS_ROLE_MONITORING_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "role.h"
#include "store.h"
#include "tz.h"

/* Quarter hours and hours in epoch milliseconds. */
#define MON_BUCKET_MS 900000LL
#define MON_HOUR_MS 3600000LL

typedef struct monitoring_role {
    ems_role_env *env;
    const char *alert_queue;    /* internal.monitoring.device.alert.queue */
    const char *ingest_queue;   /* external.data.collection.queue, for POST /api/readings */
    long delay_ms;              /* SIMULATOR_DELAY_MS: pause per reading */
    int embedded;               /* one process: POST /api/readings stores at once, writers take write_lock */
    const char *queue_prefix;   /* internal.loadbalancer.monitoring.queue. */
    unsigned replicas;          /* how many replica queues the balancer spreads devices over */
    pthread_mutex_t write_lock; /* embedded: one writing transaction at a time */
    ems_tz *reading_tz;         /* places reading timestamps without a zone (NULL: UTC) */
} monitoring_role;

/* UTC quarter hour and hour a reading at ts falls in. */
static inline int64_t mon_bucket_of(int64_t ts) { return ts - ts % MON_BUCKET_MS; }
static inline int64_t mon_hour_of(int64_t ts) { return ts - ts % MON_HOUR_MS; }

/* internal.loadbalancer.monitoring.queue.N consumer (ingest.c): one transaction per batch. */
void monitoring_on_readings(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx);

/*
 * Applies one device event (type "device.upserted" or "device.deleted") to
 * the replica of devices, inside the caller's transaction (monitoring.c).
 * EMS_BAD_REQUEST for a malformed one.
 */
ems_rc monitoring_device_event(ems_db *db, ems_store_engine engine, const char *type, json_t *device, int64_t at);

/* POST /api/readings (ingest.c). */
ems_rc monitoring_post_readings(ems_req *req, ems_resp *resp, void *ctx);

/* Read API (query.c). */
ems_rc monitoring_day(ems_req *req, ems_resp *resp, void *ctx);
ems_rc monitoring_csv(ems_req *req, ems_resp *resp, void *ctx);
ems_rc monitoring_days(ems_req *req, ems_resp *resp, void *ctx);
ems_rc monitoring_alerts(ems_req *req, ems_resp *resp, void *ctx);

#endif
