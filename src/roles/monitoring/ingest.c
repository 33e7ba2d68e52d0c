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
 *
 * The engines are written to differently: PostgreSQL, over the network, with
 * one statement per device carrying all its readings; SQLite, in process,
 * with a statement per sixteen rows of each kind, into tables clustered by
 * time (sql/monitoring/sqlite/002) so that a commit writes few pages.
 *
 * POST /api/readings parses the body once (readings_parse).  Distributed, it
 * publishes the readings to the balancer's queue; embedded (one process, one
 * database) it stores them at once in one transaction, and 202 means
 * committed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "monitoring.h"
#include "reading.h"
#include "replica.h"
#include "util.h"

/*
 * One reading of a batch, with the index of the message it came in and its
 * device's UUID as a 128-bit number: sorting by it is sorting by the
 * canonical text, without comparing 36 bytes each time.
 */
typedef struct {
    reading r;
    size_t msg;
    uint64_t id_hi, id_lo;
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

/* A parsed reading (its device_id a valid lower-case UUID) as a batch entry. */
static batch_reading batch_entry(const reading *r, size_t msg) {
    batch_reading b = {.r = *r, .msg = msg};
    int nibbles = 0;
    for (const char *p = r->device_id; *p; p++) {
        if (*p == '-') continue;
        uint64_t v = (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
        if (nibbles++ < 16) b.id_hi = b.id_hi << 4 | v;
        else b.id_lo = b.id_lo << 4 | v;
    }
    return b;
}

static int same_device(const batch_reading *x, const batch_reading *y) {
    return x->id_hi == y->id_hi && x->id_lo == y->id_lo;
}

/* Device, then time, then arrival: of two copies of a reading the first to arrive is kept. */
static int by_device_ts(const void *a, const void *b) {
    const batch_reading *x = a, *y = b;
    if (x->id_hi != y->id_hi) return x->id_hi < y->id_hi ? -1 : 1;
    if (x->id_lo != y->id_lo) return x->id_lo < y->id_lo ? -1 : 1;
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
static ems_rc parse_batch(monitoring_role *m, const char *queue, const ems_bus_msg *msgs, size_t n,
                          ems_verdict *verdicts, batch_reading **out, size_t *nout) {
    batch_reading *all = NULL;
    size_t nall = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        reading *rs = NULL;
        size_t nr = 0;
        char err[256];
        if (readings_parse(msgs[i].body, msgs[i].len, m->reading_tz, &rs, &nr, err, sizeof err) != EMS_OK) {
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
        for (size_t k = 0; k < nr; k++) all[nall++] = batch_entry(&rs[k], i);
        verdicts[i] = EMS_BUS_ACK; /* provisional: only after the commit */
        free(rs);
    }
    *out = all;
    *nout = nall;
    return EMS_OK;
}

/*
 * Publishes the readings of an unknown device to "<queue>.dlq", serialized
 * as the seed's form; with no queue, to the dead-letter queue of the replica
 * queue the balancer routes the device to.
 */
static ems_rc dead_letter(monitoring_role *m, const char *queue, const batch_reading *br, size_t n) {
    ems_rc rc = EMS_NOMEM;
    char dlq[320];
    size_t len = 0;
    char *body = NULL;
    reading *rs = malloc(n * sizeof *rs);
    if (!rs) return EMS_NOMEM;
    for (size_t i = 0; i < n; i++) rs[i] = br[i].r;
    if (queue) snprintf(dlq, sizeof dlq, "%s.dlq", queue);
    else snprintf(dlq, sizeof dlq, "%s%u.dlq", m->queue_prefix, ems_replica_of(br[0].r.device_id, m->replicas));
    if (!(body = readings_dump(rs, n, &len))) goto cleanup;
    rc = ems_bus_publish(m->env->bus, dlq, body, len);
    if (rc == EMS_OK) {
        ems_log(EMS_LOG_WARN, "monitoring.unknown_device", "dlq=%s device_id=%s readings=%zu", dlq, br[0].r.device_id,
                n);
        ems_metrics_count("ems_readings_unknown_device_total", "readings of devices unknown to monitoring", (double)n);
    }
cleanup:
    free(body);
    free(rs);
    return rc;
}

/*
 * When the hour's total is over the limit and no alert was raised for it
 * yet, raises one (row + outbox event).
 */
static ems_rc raise_alert(monitoring_role *m, ems_db *db, const char *device_id, int64_t hour, double total,
                          double limit, batch_counts *counts) {
    if (!(total > limit)) return EMS_OK;
    ems_rc rc = ems_db_exec(db,
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

/* PostgreSQL: after the hour's buckets changed, its total against the limit. */
static ems_rc check_hour(monitoring_role *m, ems_db *db, const char *device_id, int64_t hour, double limit,
                         batch_counts *counts) {
    ems_rows *rows = NULL;
    ems_rc rc = ems_db_query(db, &rows,
                             "SELECT COALESCE(SUM(kwh), 0) FROM buckets WHERE device_id = $1 AND bucket_start >= $2 "
                             "AND bucket_start < $3",
                             "sii", device_id, hour, hour + MON_HOUR_MS);
    double total = rc ? 0 : ems_rows_double(rows, 0, 0);
    ems_rows_free(rows);
    return rc ? rc : raise_alert(m, db, device_id, hour, total, limit, counts);
}

/* Adds a new reading to the quarter-hour sums; readings come in time order. */
static void add_sum(bucket_sum *sums, size_t *nsums, int64_t ts, double kwh) {
    int64_t b = mon_bucket_of(ts);
    if (*nsums && sums[*nsums - 1].bucket == b) sums[*nsums - 1].kwh += kwh;
    else sums[(*nsums)++] = (bucket_sum){.bucket = b, .kwh = kwh};
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
    rc = ems_db_query(
        db, &rows,
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
 * PostgreSQL: stores the readings of one device (br[0..n), sorted by time):
 * new rows only, their quarter-hour sums, then the hours they touched.
 */
static ems_rc store_device(monitoring_role *m, ems_db *db, const batch_reading *br, size_t n, double limit,
                           bucket_sum *sums, batch_counts *counts) {
    const char *id = br[0].r.device_id;
    size_t nsums = 0;
    ems_rc rc = insert_unnest(db, br, n, sums, &nsums, counts);
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

/* PostgreSQL, over the network: a few statements per device, each carrying all its readings. */
static ems_rc store_batch_pg(monitoring_role *m, ems_db *db, const char *queue, const batch_reading *br, size_t nr,
                             bucket_sum *sums, batch_counts *counts) {
    ems_rc rc = EMS_OK;
    for (size_t i = 0, j; i < nr && !rc; i = j) {
        ems_rows *dev = NULL;
        for (j = i + 1; j < nr && same_device(&br[j], &br[i]); j++) {
        }
        if (m->delay_ms) sleep_ms(m->delay_ms * (long)(j - i)); /* SIMULATOR_DELAY_MS: per reading */
        rc = ems_db_query(db, &dev, "SELECT max_hourly_kwh FROM devices WHERE id = $1", "s", br[i].r.device_id);
        if (!rc && ems_rows_count(dev) == 0) rc = dead_letter(m, queue, br + i, j - i);
        else if (!rc) rc = store_device(m, db, br + i, j - i, ems_rows_double(dev, 0, 0), sums, counts);
        ems_rows_free(dev);
    }
    return rc;
}

/* ---- SQLite: a statement per sixteen rows ----------------------------------
 *
 * In process, what a statement costs beyond its rows (the statement cache,
 * binding, starting the VDBE program) is most of what a one-row statement
 * costs, so the batch is written CHUNK rows per statement: the devices'
 * lookups, the readings, their quarter hours and the hours' totals.  A
 * short chunk repeats its last row, which changes nothing: a reading
 * inserted twice is inserted once, a bucket row repeated adds 0 kWh, a
 * device or an hour asked for twice answers the same.  Rows are keyed as
 * sql/monitoring/sqlite/002 says.
 */
#define CHUNK 16
#define EACH16(f) f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13), f(14), f(15)
#define TIMES16(t) t t t t t t t t t t t t t t t t

/* A device of the batch: its readings br[from, to), and what the database says of it. */
typedef struct {
    size_t from, to;
    int known;
    double limit;
    int64_t key; /* device_keys.key */
} sq_device;

/* One row of a chunk: a reading (ts, key, kwh), a bucket (+ hour) or an hour (ts = hour). */
typedef struct {
    int64_t ts, key, hour;
    double kwh;
    size_t at; /* the reading's index in the batch, or the device's */
} sq_row;

/* Fills c[n..CHUNK) (c holds CHUNK rows) with copies of c[n - 1]. */
static void sq_pad(sq_row *c, size_t n) {
    for (size_t i = n; i < CHUNK; i++) c[i] = c[n - 1];
}

/* Limits and keys of devs[0..n) (n ≤ CHUNK); a device seen for the first time gets its key. */
static ems_rc sq_lookup(ems_db *db, const batch_reading *br, sq_device *devs, size_t n) {
    const char *ids[CHUNK];
    ems_rows *rows = NULL;
    for (size_t i = 0; i < CHUNK; i++) ids[i] = br[devs[i < n ? i : n - 1].from].r.device_id;
#define LOOKUP_ARG(i) ids[i]
    ems_rc rc =
        ems_db_query(db, &rows,
                     "SELECT d.id, d.max_hourly_kwh, k.key FROM devices d LEFT JOIN device_keys k ON k.id = d.id "
                     "WHERE d.id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                     TIMES16("s"), EACH16(LOOKUP_ARG));
#undef LOOKUP_ARG
    for (size_t r = 0; !rc && r < ems_rows_count(rows); r++) {
        const char *id = ems_rows_text(rows, r, 0);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(id, ids[i]) != 0) continue;
            devs[i].known = 1;
            devs[i].limit = ems_rows_double(rows, r, 1);
            devs[i].key = ems_rows_null(rows, r, 2) ? 0 : ems_rows_int(rows, r, 2);
        }
    }
    ems_rows_free(rows);
    rows = NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!devs[i].known || devs[i].key) continue;
        rc = ems_db_query(db, &rows, "INSERT INTO device_keys (id) VALUES ($1) RETURNING key", "s", ids[i]);
        if (!rc) devs[i].key = ems_rows_int(rows, 0, 0);
        ems_rows_free(rows);
        rows = NULL;
    }
    return rc;
}

/* Inserts the readings c[0..n); the ones that were new are marked in fresh. */
static ems_rc sq_insert(ems_db *db, sq_row *c, size_t n, char *fresh, batch_counts *counts) {
    ems_rows *rows = NULL;
    sq_pad(c, n);
#define READING_ARG(i) c[i].ts, c[i].key, c[i].kwh
    ems_rc rc = ems_db_query(
        db, &rows,
        "INSERT INTO readings (ts, device_key, kwh) VALUES "
        "($1, $2, $3), ($4, $5, $6), ($7, $8, $9), ($10, $11, $12), ($13, $14, $15), ($16, $17, $18), "
        "($19, $20, $21), ($22, $23, $24), ($25, $26, $27), ($28, $29, $30), ($31, $32, $33), ($34, $35, $36), "
        "($37, $38, $39), ($40, $41, $42), ($43, $44, $45), ($46, $47, $48) "
        "ON CONFLICT DO NOTHING RETURNING ts, device_key",
        TIMES16("iid"), EACH16(READING_ARG));
#undef READING_ARG
    size_t stored = rc ? 0 : ems_rows_count(rows);
    for (size_t r = 0; r < stored; r++) {
        int64_t ts = ems_rows_int(rows, r, 0), key = ems_rows_int(rows, r, 1);
        for (size_t i = 0; i < n; i++)
            if (c[i].ts == ts && c[i].key == key) fresh[c[i].at] = 1;
    }
    counts->stored += stored;
    counts->duplicates += rc ? 0 : n - stored;
    ems_rows_free(rows);
    return rc;
}

/* Adds the quarter-hour sums c[0..n). */
static ems_rc sq_buckets(ems_db *db, sq_row *c, size_t n) {
    sq_pad(c, n);
    for (size_t i = n; i < CHUNK; i++) c[i].kwh = 0;
#define BUCKET_ARG(i) c[i].hour, c[i].key, c[i].ts, c[i].kwh
    return ems_db_exec(
        db,
        "INSERT INTO buckets (hour_start, device_key, bucket_start, kwh) VALUES "
        "($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12), ($13, $14, $15, $16), ($17, $18, $19, $20), "
        "($21, $22, $23, $24), ($25, $26, $27, $28), ($29, $30, $31, $32), ($33, $34, $35, $36), "
        "($37, $38, $39, $40), ($41, $42, $43, $44), ($45, $46, $47, $48), ($49, $50, $51, $52), "
        "($53, $54, $55, $56), ($57, $58, $59, $60), ($61, $62, $63, $64) "
        "ON CONFLICT (hour_start, device_key, bucket_start) DO UPDATE SET kwh = buckets.kwh + excluded.kwh",
        TIMES16("iiid"), EACH16(BUCKET_ARG));
#undef BUCKET_ARG
}

/* The totals of the hours c[0..n) (c[i].hour of device c[i].at), each against its device's limit. */
static ems_rc sq_hours(monitoring_role *m, ems_db *db, const batch_reading *br, const sq_device *devs,
                       const sq_row *hours, size_t n, batch_counts *counts) {
    ems_rows *rows = NULL;
    sq_row c[CHUNK];
    memcpy(c, hours, n * sizeof *c);
    sq_pad(c, n);
#define HOUR_ARG(i) c[i].hour, c[i].key
    ems_rc rc = ems_db_query(
        db, &rows,
        "SELECT v.column1, v.column2, SUM(b.kwh) FROM (SELECT DISTINCT column1, column2 FROM (VALUES "
        "($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11, $12), ($13, $14), ($15, $16), ($17, $18), "
        "($19, $20), ($21, $22), ($23, $24), ($25, $26), ($27, $28), ($29, $30), ($31, $32))) v "
        "JOIN buckets b ON b.hour_start = v.column1 AND b.device_key = v.column2 GROUP BY v.column1, v.column2",
        TIMES16("ii"), EACH16(HOUR_ARG));
#undef HOUR_ARG
    for (size_t r = 0; !rc && r < ems_rows_count(rows); r++) {
        int64_t hour = ems_rows_int(rows, r, 0), key = ems_rows_int(rows, r, 1);
        for (size_t i = 0; i < n && !rc; i++) {
            if (c[i].hour != hour || c[i].key != key) continue;
            const sq_device *d = &devs[c[i].at];
            rc = raise_alert(m, db, br[d->from].r.device_id, hour, ems_rows_double(rows, r, 2), d->limit, counts);
            break;
        }
    }
    ems_rows_free(rows);
    return rc;
}

/* SQLite: the batch (sorted by device and time) in a statement per CHUNK rows of each kind. */
static ems_rc store_batch_sqlite(monitoring_role *m, ems_db *db, const char *queue, const batch_reading *br, size_t nr,
                                 bucket_sum *sums, batch_counts *counts) {
    ems_rc rc = EMS_NOMEM;
    sq_device *devs = calloc(nr, sizeof *devs);
    sq_row *hours = malloc(nr * sizeof *hours), c[CHUNK];
    char *fresh = calloc(nr, 1);
    size_t ndev = 0, nc = 0, nhours = 0;
    if (!devs || !hours || !fresh) goto cleanup;
    for (size_t i = 0, j; i < nr; i = j, ndev++) {
        for (j = i + 1; j < nr && same_device(&br[j], &br[i]); j++) {
        }
        devs[ndev] = (sq_device){.from = i, .to = j};
    }
    rc = EMS_OK;
    for (size_t i = 0; i < ndev && !rc; i += CHUNK)
        rc = sq_lookup(db, br, devs + i, ndev - i < CHUNK ? ndev - i : CHUNK);
    /* Readings: a copy inside the batch is a duplicate at once (the first to arrive was sorted first). */
    for (size_t d = 0; d < ndev && !rc; d++) {
        if (!devs[d].known) {
            rc = dead_letter(m, queue, br + devs[d].from, devs[d].to - devs[d].from);
            continue;
        }
        if (m->delay_ms) sleep_ms(m->delay_ms * (long)(devs[d].to - devs[d].from)); /* SIMULATOR_DELAY_MS */
        for (size_t k = devs[d].from; k < devs[d].to && !rc; k++) {
            if (k > devs[d].from && br[k].r.ts_ms == br[k - 1].r.ts_ms) {
                counts->duplicates++;
                continue;
            }
            c[nc++] = (sq_row){.ts = br[k].r.ts_ms, .key = devs[d].key, .kwh = br[k].r.kwh, .at = k};
            if (nc == CHUNK) rc = sq_insert(db, c, nc, fresh, counts), nc = 0;
        }
    }
    if (!rc && nc) rc = sq_insert(db, c, nc, fresh, counts);
    /* Quarter hours of the new readings, and the hours they fall in. */
    nc = 0;
    for (size_t d = 0; d < ndev && !rc; d++) {
        size_t nsums = 0;
        if (!devs[d].known) continue;
        for (size_t k = devs[d].from; k < devs[d].to; k++)
            if (fresh[k]) add_sum(sums, &nsums, br[k].r.ts_ms, br[k].r.kwh);
        for (size_t k = 0; k < nsums && !rc; k++) {
            int64_t hour = mon_hour_of(sums[k].bucket);
            c[nc++] = (sq_row){.ts = sums[k].bucket, .key = devs[d].key, .hour = hour, .kwh = sums[k].kwh};
            if (nc == CHUNK) rc = sq_buckets(db, c, nc), nc = 0;
            if (k == 0 || mon_hour_of(sums[k - 1].bucket) != hour)
                hours[nhours++] = (sq_row){.hour = hour, .key = devs[d].key, .at = d};
        }
    }
    if (!rc && nc) rc = sq_buckets(db, c, nc);
    for (size_t i = 0; i < nhours && !rc; i += CHUNK)
        rc = sq_hours(m, db, br, devs, hours + i, nhours - i < CHUNK ? nhours - i : CHUNK, counts);
cleanup:
    free(devs);
    free(hours);
    free(fresh);
    return rc;
}

/* Everything the batch changes, inside the caller's transaction. */
static ems_rc store_batch(monitoring_role *m, ems_db *db, const char *queue, batch_reading *br, size_t nr,
                          batch_counts *counts) {
    bucket_sum *sums = malloc(nr * sizeof *sums);
    if (!sums) return EMS_NOMEM;
    qsort(br, nr, sizeof *br, by_device_ts);
    ems_rc rc = ems_store_engine_of(m->env->store) == EMS_STORE_SQLITE
                    ? store_batch_sqlite(m, db, queue, br, nr, sums, counts)
                    : store_batch_pg(m, db, queue, br, nr, sums, counts);
    free(sums);
    return rc;
}

/*
 * Stores readings in one transaction and counts them in /metrics once it
 * committed.  queue names where unknown devices' readings are dead-lettered
 * (NULL: the replica queue the balancer would have sent each device to).
 * In embedded mode writers take the role's lock first, so that they queue
 * here in order rather than in SQLite's busy handler, which sleeps.
 */
static ems_rc store_committed(monitoring_role *m, const char *queue, batch_reading *br, size_t nr) {
    batch_counts counts = {0, 0, 0};
    ems_db *db = ems_store_get(m->env->store);
    ems_rc rc;
    if (!db) return EMS_UNAVAILABLE;
    if (m->embedded) pthread_mutex_lock(&m->write_lock);
    rc = ems_db_begin(db);
    if (!rc) rc = store_batch(m, db, queue, br, nr, &counts);
    if (!rc) rc = ems_db_commit(db);
    if (rc) ems_db_rollback(db);
    if (m->embedded) pthread_mutex_unlock(&m->write_lock);
    ems_store_put(m->env->store, db);
    if (rc) return rc;
    ems_metrics_count("ems_readings_stored_total", "readings stored (each exactly once)", (double)counts.stored);
    ems_metrics_count("ems_readings_duplicate_total", "readings received again and ignored", (double)counts.duplicates);
    if (counts.events) {
        ems_metrics_count("ems_alerts_raised_total", "alerts raised (one per device and hour)", counts.events);
        ems_outbox_kick(m->env->outbox);
    }
    return EMS_OK;
}

void monitoring_on_readings(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts, void *ctx) {
    monitoring_role *m = ctx;
    batch_reading *br = NULL;
    size_t nr = 0;
    ems_rc rc = parse_batch(m, queue, msgs, n, verdicts, &br, &nr);
    if (!rc && nr) rc = store_committed(m, queue, br, nr);
    if (rc) {
        /* Nothing was committed: every message that parsed comes again. */
        for (size_t i = 0; i < n; i++)
            if (verdicts[i] == EMS_BUS_ACK) verdicts[i] = EMS_BUS_RETRY;
        ems_log(EMS_LOG_WARN, "monitoring.batch_failed", "queue=%s messages=%zu error=%s", queue, n, ems_rc_code(rc));
    }
    free(br);
}

/*
 * Distributed: the readings go to the balancer through the broker, in the
 * seed's form, and 202 means the broker confirmed them.
 */
static ems_rc post_to_balancer(monitoring_role *m, const reading *rs, size_t n) {
    size_t len = 0;
    char *body = readings_dump(rs, n, &len);
    if (!body) return EMS_NOMEM;
    ems_rc rc = ems_bus_publish(m->env->bus, m->ingest_queue, body, len);
    free(body);
    return rc;
}

/*
 * Embedded: one process, one database for every replica queue, so the
 * readings are stored here and now, in one transaction, by the code that
 * stores a replica's batch: the balancer's routing would only split them
 * into four transactions and serialize them twice on the way.  202 means
 * committed.
 */
static ems_rc post_embedded(monitoring_role *m, const reading *rs, size_t n) {
    batch_reading *br = malloc(n * sizeof *br);
    if (!br) return EMS_NOMEM;
    for (size_t i = 0; i < n; i++) br[i] = batch_entry(&rs[i], 0);
    ems_rc rc = store_committed(m, NULL, br, n);
    free(br);
    return rc;
}

ems_rc monitoring_post_readings(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    reading *rs = NULL;
    size_t n = 0;
    char err[256];
    ems_rc rc;
    if (!req->raw_body) return ems_fail(resp, EMS_BAD_REQUEST, "expected a reading or an array of readings");
    if ((rc = readings_parse(req->raw_body, req->raw_len, m->reading_tz, &rs, &n, err, sizeof err)) != EMS_OK)
        return rc == EMS_NOMEM ? rc : ems_fail(resp, EMS_BAD_REQUEST, "%s", err);
    rc = m->embedded ? post_embedded(m, rs, n) : post_to_balancer(m, rs, n);
    if (rc == EMS_NOMEM) rc = ems_fail(resp, rc, "readings not accepted");
    else if (rc) /* the broker (or, embedded, monitoring's database) did not take them */
        rc = ems_fail(resp, EMS_UNAVAILABLE, "readings not accepted now: send them again");
    else rc = ems_reply_json(resp, 202, json_pack("{s:I}", "accepted", (json_int_t)n));
    free(rs);
    return rc;
}
