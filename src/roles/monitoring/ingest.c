/*
 * ingest.c — readings in: batches from the balancer, and POST /api/readings.
 *
 * A batch from a replica queue is stored in one transaction.  Its readings
 * are sorted by device and time, so that each device is looked up once and
 * its quarter-hour sums are built in one pass.  A reading counts only when
 * its (device, ts) row was new: duplicates and broker redeliveries insert
 * nothing and add nothing, which is what keeps the totals exact.  The hours
 * touched are then checked against the device's limit; the first time an
 * hour's total passes it, an alert row and its outbox event are written in
 * the same transaction.  The batch is acknowledged only after the commit; a
 * failure rolls everything back and the whole batch comes again.
 *
 * Readings of a device this replica does not know are published to the
 * queue's dead-letter queue (before the commit, so nothing acknowledged is
 * lost) and counted; the rest of their message is stored as usual.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "monitoring.h"
#include "reading.h"
#include "util.h"

/* One reading of a batch, with the index of the message it came in. */
typedef struct {
    reading r;
    size_t msg;
} batch_reading;

/* What a batch did, for /metrics. */
typedef struct {
    size_t stored;     /* new readings */
    size_t duplicates; /* readings seen before */
    int events;        /* alerts raised */
} batch_counts;

/* A quarter hour's sum of the new readings of one device. */
typedef struct {
    int64_t bucket;
    double kwh;
} bucket_sum;

/* Device, then time, then arrival: of two copies of a reading the first to arrive is kept. */
static int by_device_ts(const void *a, const void *b) {
    const batch_reading *x = a, *y = b;
    int c = strcmp(x->r.device_id, y->r.device_id);
    if (c) return c;
    if (x->r.ts_ms != y->r.ts_ms) return x->r.ts_ms < y->r.ts_ms ? -1 : 1;
    return (x->msg > y->msg) - (x->msg < y->msg);
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/*
 * Parses every message; a message that does not parse is rejected (to the
 * dead-letter queue) and counted.  The others' readings are appended to *out.
 */
static ems_rc parse_batch(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts,
                          batch_reading **out, size_t *nout) {
    batch_reading *all = NULL;
    size_t nall = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        reading *rs = NULL;
        size_t nr = 0;
        char err[256];
        if (readings_parse(msgs[i].body, msgs[i].len, &rs, &nr, err, sizeof err) != EMS_OK) {
            verdicts[i] = EMS_BUS_REJECT;
            ems_log(EMS_LOG_WARN, "monitoring.malformed", "queue=%s len=%zu reason=\"%s\"", queue, msgs[i].len, err);
            ems_metrics_count("ems_readings_malformed_total", "messages of readings that could not be parsed", 1);
            continue;
        }
        if (nall + nr > cap) {
            size_t ncap = cap ? cap * 2 : 256;
            while (ncap < nall + nr) ncap *= 2;
            batch_reading *grown = realloc(all, ncap * sizeof *grown);
            if (!grown) {
                free(rs);
                free(all);
                return EMS_NOMEM;
            }
            all = grown;
            cap = ncap;
        }
        for (size_t k = 0; k < nr; k++) all[nall++] = (batch_reading){.r = rs[k], .msg = i};
        verdicts[i] = EMS_BUS_ACK; /* provisional: only after the commit */
        free(rs);
    }
    *out = all;
    *nout = nall;
    return EMS_OK;
}

/* Publishes the readings of an unknown device to "<queue>.dlq", serialized as the seed's form. */
static ems_rc dead_letter(monitoring_role *m, const char *queue, const batch_reading *br, size_t n) {
    ems_rc rc = EMS_NOMEM;
    char dlq[300];
    size_t len = 0;
    char *body = NULL;
    reading *rs = malloc(n * sizeof *rs);
    if (!rs) return EMS_NOMEM;
    for (size_t i = 0; i < n; i++) rs[i] = br[i].r;
    snprintf(dlq, sizeof dlq, "%s.dlq", queue);
    if (!(body = readings_dump(rs, n, &len))) goto cleanup;
    rc = ems_bus_publish(m->env->bus, dlq, body, len);
    if (rc == EMS_OK) {
        ems_log(EMS_LOG_WARN, "monitoring.unknown_device", "queue=%s device_id=%s readings=%zu", queue,
                br[0].r.device_id, n);
        ems_metrics_count("ems_readings_unknown_device_total", "readings of devices unknown to monitoring",
                          (double)n);
    }
cleanup:
    free(body);
    free(rs);
    return rc;
}

/*
 * After the hour's buckets changed: when its total is over the limit and no
 * alert was raised for it yet, raises one (row + outbox event).
 */
static ems_rc check_hour(monitoring_role *m, ems_db *db, const char *device_id, int64_t hour, double limit,
                         batch_counts *counts) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows,
                             "SELECT COALESCE(SUM(kwh), 0) FROM buckets WHERE device_id = $1 AND bucket_start >= $2 "
                             "AND bucket_start < $3",
                             "sii", device_id, hour, hour + MON_HOUR_MS);
    double total = rc ? 0 : ems_rows_double(rows, 0, 0);
    ems_rows_free(rows);
    if (rc || !(total > limit)) return rc;
    rc = ems_db_exec(db,
                     "INSERT INTO alerts (device_id, hour_start, total_kwh, limit_kwh, created_at) "
                     "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id, hour_start) DO NOTHING",
                     "siddi", device_id, hour, total, limit, ems_now_ms());
    if (rc || ems_db_changes(db) == 0) return rc;
    json_t *ev = json_pack("{s:s, s:s, s:I, s:f, s:f}", "type", "alert", "device_id", device_id, "hour_start",
                           (json_int_t)hour, "total_kwh", total, "limit_kwh", limit);
    if (!ev) return EMS_NOMEM;
    rc = ems_outbox_add(db, m->alert_queue, ev);
    json_decref(ev);
    if (rc == EMS_OK) {
        counts->events++;
        ems_log(EMS_LOG_INFO, "monitoring.alert", "device_id=%s hour_start=%lld total_kwh=%.3f limit_kwh=%.3f",
                device_id, (long long)hour, total, limit);
    }
    return rc;
}

/* Adds a new reading to the quarter-hour sums; readings come in time order. */
static void add_sum(bucket_sum *sums, size_t *nsums, int64_t ts, double kwh) {
    int64_t b = mon_bucket_of(ts);
    if (*nsums && sums[*nsums - 1].bucket == b)
        sums[*nsums - 1].kwh += kwh;
    else
        sums[(*nsums)++] = (bucket_sum){.bucket = b, .kwh = kwh};
}

/* SQLite, in process: one prepared INSERT per reading costs microseconds. */
static ems_rc insert_rowwise(ems_db *db, const batch_reading *br, size_t n, bucket_sum *sums, size_t *nsums,
                             batch_counts *counts) {
    for (size_t k = 0; k < n; k++) {
        const reading *r = &br[k].r;
        ems_rc rc = ems_db_exec(db, "INSERT INTO readings (device_id, ts, kwh) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                "sid", r->device_id, r->ts_ms, r->kwh);
        if (rc) return rc;
        if (ems_db_changes(db) == 0) {
            counts->duplicates++; /* seen before: counted then, not now */
            continue;
        }
        add_sum(sums, nsums, r->ts_ms, r->kwh);
        counts->stored++;
    }
    return EMS_OK;
}

static int by_ts(const void *a, const void *b) {
    const reading *x = a, *y = b;
    return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

/*
 * PostgreSQL, over the network: all of a device's readings in one statement
 * (arrays unnested), which returns the rows that were new.  Copies within the
 * batch are dropped first (the first to arrive is kept, as row by row).
 */
static ems_rc insert_unnest(ems_db *db, const batch_reading *br, size_t n, bucket_sum *sums, size_t *nsums,
                            batch_counts *counts) {
    char *ts_text = NULL, *kwh_text = NULL;
    size_t ts_len = 0, kwh_len = 0, unique = 0;
    ems_rows *rows = NULL;
    reading *fresh = NULL;
    ems_rc rc = EMS_NOMEM;
    FILE *ts_out = open_memstream(&ts_text, &ts_len), *kwh_out = open_memstream(&kwh_text, &kwh_len);
    if (!ts_out || !kwh_out) goto cleanup;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && br[k].r.ts_ms == br[k - 1].r.ts_ms) continue;
        /* %.17g gives back the same double. */
        fprintf(ts_out, "%c%lld", unique ? ',' : '{', (long long)br[k].r.ts_ms);
        fprintf(kwh_out, "%c%.17g", unique ? ',' : '{', br[k].r.kwh);
        unique++;
    }
    fputc('}', ts_out);
    fputc('}', kwh_out);
    if (fclose(ts_out) != 0 || fclose(kwh_out) != 0) {
        ts_out = kwh_out = NULL;
        goto cleanup;
    }
    ts_out = kwh_out = NULL;
    rc = ems_db_query(db, &rows,
                      "INSERT INTO readings (device_id, ts, kwh) SELECT $1, t.ts, t.kwh FROM "
                      "unnest($2::bigint[], $3::double precision[]) AS t(ts, kwh) ON CONFLICT DO NOTHING RETURNING ts, kwh",
                      "sss", br[0].r.device_id, ts_text, kwh_text);
    if (rc) goto cleanup;
    size_t stored = ems_rows_count(rows);
    if (stored && !(fresh = malloc(stored * sizeof *fresh))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    for (size_t k = 0; k < stored; k++) {
        fresh[k].ts_ms = ems_rows_int(rows, k, 0);
        fresh[k].kwh = ems_rows_double(rows, k, 1);
    }
    if (stored) qsort(fresh, stored, sizeof *fresh, by_ts); /* RETURNING promises no order */
    for (size_t k = 0; k < stored; k++) add_sum(sums, nsums, fresh[k].ts_ms, fresh[k].kwh);
    counts->stored += stored;
    counts->duplicates += n - stored;
cleanup:
    if (ts_out) fclose(ts_out);
    if (kwh_out) fclose(kwh_out);
    free(ts_text);
    free(kwh_text);
    free(fresh);
    ems_rows_free(rows);
    return rc;
}

/*
 * Stores the readings of one device (br[0..n), sorted by time): new rows
 * only, their quarter-hour sums, then the hours they touched.
 */
static ems_rc store_device(monitoring_role *m, ems_db *db, const batch_reading *br, size_t n, double limit,
                           bucket_sum *sums, batch_counts *counts) {
    const char *id = br[0].r.device_id;
    size_t nsums = 0;
    ems_rc rc;
    if (m->delay_ms) sleep_ms(m->delay_ms * (long)n); /* SIMULATOR_DELAY_MS: per reading */
    if (ems_store_engine_of(m->env->store) == EMS_STORE_PG)
        rc = insert_unnest(db, br, n, sums, &nsums, counts);
    else
        rc = insert_rowwise(db, br, n, sums, &nsums, counts);
    for (size_t k = 0; k < nsums && !rc; k++)
        rc = ems_db_exec(db,
                         "INSERT INTO buckets (device_id, bucket_start, kwh) VALUES ($1, $2, $3) "
                         "ON CONFLICT (device_id, bucket_start) DO UPDATE SET kwh = buckets.kwh + excluded.kwh",
                         "sid", id, sums[k].bucket, sums[k].kwh);
    for (size_t k = 0; k < nsums && !rc; k++) {
        int64_t hour = mon_hour_of(sums[k].bucket);
        if (k > 0 && mon_hour_of(sums[k - 1].bucket) == hour) continue;
        rc = check_hour(m, db, id, hour, limit, counts);
    }
    return rc;
}

/* Everything the batch changes, inside the caller's transaction. */
static ems_rc store_batch(monitoring_role *m, ems_db *db, const char *queue, batch_reading *br, size_t nr,
                          batch_counts *counts) {
    ems_rc rc = EMS_OK;
    bucket_sum *sums = malloc(nr * sizeof *sums);
    if (!sums) return EMS_NOMEM;
    qsort(br, nr, sizeof *br, by_device_ts);
    for (size_t i = 0, j; i < nr && !rc; i = j) {
        ems_rows *dev = NULL;
        for (j = i + 1; j < nr && strcmp(br[j].r.device_id, br[i].r.device_id) == 0; j++) {
        }
        rc = ems_db_query(db, &dev, "SELECT max_hourly_kwh FROM devices WHERE id = $1", "s", br[i].r.device_id);
        if (!rc && ems_rows_count(dev) == 0)
            rc = dead_letter(m, queue, br + i, j - i);
        else if (!rc)
            rc = store_device(m, db, br + i, j - i, ems_rows_double(dev, 0, 0), sums, counts);
        ems_rows_free(dev);
    }
    free(sums);
    return rc;
}

void monitoring_on_readings(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    monitoring_role *m = ctx;
    batch_reading *br = NULL;
    size_t nr = 0;
    batch_counts counts = {0, 0, 0};
    ems_db *db = NULL;
    ems_rc rc = parse_batch(queue, msgs, n, verdicts, &br, &nr);
    if (rc || nr == 0) goto cleanup;
    if (!(db = ems_store_get(m->env->store))) {
        rc = EMS_UNAVAILABLE;
        goto cleanup;
    }
    rc = ems_db_begin(db);
    if (!rc) rc = store_batch(m, db, queue, br, nr, &counts);
    if (!rc) rc = ems_db_commit(db);
    if (rc) ems_db_rollback(db);
cleanup:
    if (db) ems_store_put(m->env->store, db);
    if (rc) {
        /* Nothing was committed: every message that parsed comes again. */
        for (size_t i = 0; i < n; i++)
            if (verdicts[i] == EMS_BUS_ACK) verdicts[i] = EMS_BUS_RETRY;
        ems_log(EMS_LOG_WARN, "monitoring.batch_failed", "queue=%s messages=%zu error=%s", queue, n, ems_rc_code(rc));
    } else {
        ems_metrics_count("ems_readings_stored_total", "readings stored (each exactly once)", (double)counts.stored);
        ems_metrics_count("ems_readings_duplicate_total", "readings received again and ignored",
                          (double)counts.duplicates);
        if (counts.events) {
            ems_metrics_count("ems_alerts_raised_total", "alerts raised (one per device and hour)", counts.events);
            ems_outbox_kick(m->env->outbox);
        }
    }
    free(br);
}

ems_rc monitoring_post_readings(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    reading *rs = NULL;
    size_t n = 0, len = 0;
    char err[256], *body = NULL;
    ems_rc rc;
    if (!req->body) return ems_fail(resp, EMS_BAD_REQUEST, "expected a reading or an array of readings");
    if (readings_parse_json(req->body, &rs, &n, err, sizeof err) != EMS_OK)
        return ems_fail(resp, EMS_BAD_REQUEST, "%s", err);
    if (!(body = readings_dump(rs, n, &len))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    /* Embedded: the balancer and monitoring run before this returns, so EMS_OK means committed. */
    rc = ems_bus_publish(m->env->bus, m->ingest_queue, body, len);
    if (rc == EMS_NOMEM)
        rc = ems_fail(resp, rc, "readings not accepted");
    else if (rc) /* the broker (or, embedded, monitoring's database) did not take them */
        rc = ems_fail(resp, EMS_UNAVAILABLE, "readings not accepted now: send them again");
    else
        rc = ems_reply_json(resp, 202, json_pack("{s:I}", "accepted", (json_int_t)n));
cleanup:
    free(body);
    free(rs);
    return rc;
}
