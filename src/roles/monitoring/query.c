/*
 * query.c — the read API: hourly series of a local day, daily totals of a
 * range of days, CSV export, alerts.
 *
 * Consumption is kept in UTC quarter-hour buckets; a local hour in any zone
 * (even +05:45) is a whole number of them, so a local day is served by
 * summing the buckets between the UTC instants its hours start at, as ICU
 * computes them (core tz.h): 23 or 25 hours on the days daylight saving time
 * starts or ends.  Only an administrator or the device's owner may read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "monitoring.h"
#include "tz.h"
#include "util.h"

#define CSV_MAX_DAYS 366
#define DAY_S 86400
#define DATE_LEN 40 /* "%04d-%02d-%02d" of any int, as the compiler counts */

/* Loads the device the caller asks about: 400 for a bad id, 404 unknown, 403 for another client's. */
static ems_rc device_access(ems_db *db, const ems_req *req, ems_resp *resp, const char *id, double *limit) {
    ems_rows *rows = NULL;
    if (!ems_uuid_valid(id)) return ems_fail(resp, EMS_BAD_REQUEST, "'%s' is not a valid device id", id);
    ems_rc rc = ems_db_query(db, &rows, "SELECT owner_id, max_hourly_kwh FROM devices WHERE id = $1", "s", id);
    if (rc) {
        rc = ems_fail(resp, rc, "cannot read device %s", id);
    } else if (ems_rows_count(rows) == 0) {
        rc = ems_fail(resp, EMS_NOT_FOUND, "device %s not found", id);
    } else if (req->who.role != EMS_ROLE_ADMIN &&
               (!ems_rows_text(rows, 0, 0) || strcmp(ems_rows_text(rows, 0, 0), req->who.id) != 0)) {
        rc = ems_fail(resp, EMS_FORBIDDEN, "device %s is not yours", id);
    } else if (limit) {
        *limit = ems_rows_double(rows, 0, 1);
    }
    ems_rows_free(rows);
    return rc;
}

/* ?tz=, default UTC: its name, and the zone opened (the caller frees it). */
static ems_rc query_tz(const ems_req *req, ems_resp *resp, const char **tz, ems_tz **zone) {
    const char *q = ems_req_query(req, "tz");
    char err[160];
    *tz = q && *q ? q : "UTC";
    if (strlen(*tz) > 64 || !ems_tz_valid(*tz))
        return ems_fail(resp, EMS_BAD_REQUEST, "tz must be an IANA time zone such as Europe/Bucharest");
    ems_rc rc = ems_tz_open(*tz, zone, err, sizeof err);
    return rc ? ems_fail(resp, rc, "%s", err) : EMS_OK;
}

/* A date argument as y-m-d; when absent, today in tz. */
static ems_rc query_date(const ems_req *req, ems_resp *resp, const char *name, ems_tz *tz, int ymd[3]) {
    const char *q = ems_req_query(req, name);
    if (q && *q) {
        if (strlen(q) != 10 || ems_date_parse(q, &ymd[0], &ymd[1], &ymd[2]) != 0 || ymd[0] < 2000 || ymd[0] > 2099)
            return ems_fail(resp, EMS_BAD_REQUEST, "%s must be a date YYYY-MM-DD (years 2000-2099)", name);
        return EMS_OK;
    }
    ems_civil today;
    if (ems_tz_local(tz, ems_now_ms(), &today) != 0) return ems_fail(resp, EMS_INTERNAL, "cannot tell today's date");
    ymd[0] = today.year;
    ymd[1] = today.month;
    ymd[2] = today.day;
    return EMS_OK;
}

/* Days since 1970-01-01 of a civil date, and back. */
static int64_t day_number(const int ymd[3]) {
    struct tm tm = {.tm_year = ymd[0] - 1900, .tm_mon = ymd[1] - 1, .tm_mday = ymd[2]};
    return (int64_t)timegm(&tm) / DAY_S;
}

static void day_date(int64_t day, int ymd[3]) {
    time_t t = (time_t)(day * DAY_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    ymd[0] = tm.tm_year + 1900;
    ymd[1] = tm.tm_mon + 1;
    ymd[2] = tm.tm_mday;
}

/*
 * A device's buckets in [$2, $3), in order, per engine.  SQLite clusters them
 * by UTC hour under an integer device key (sql/monitoring/sqlite/002): the
 * range's hours are generated and each is one short lookup of (hour, key).
 */
static const char *const buckets_sql[] = {
    [EMS_STORE_SQLITE] = "WITH RECURSIVE h(hour_start) AS (SELECT $2 - $2 % 3600000 UNION ALL "
                         "SELECT hour_start + 3600000 FROM h WHERE hour_start + 3600000 < $3) "
                         "SELECT b.bucket_start, b.kwh FROM h JOIN buckets b ON b.hour_start = h.hour_start "
                         "AND b.device_key = (SELECT key FROM device_keys WHERE id = $1) "
                         "WHERE b.bucket_start >= $2 AND b.bucket_start < $3 ORDER BY b.bucket_start",
    [EMS_STORE_PG] = "SELECT bucket_start, kwh FROM buckets WHERE device_id = $1 AND bucket_start >= $2 "
                     "AND bucket_start < $3 ORDER BY bucket_start",
};

/* The device's buckets in [from, to), in order. */
static ems_rc load_buckets(const monitoring_role *m, ems_db *db, const char *id, int64_t from, int64_t to,
                           ems_rows **rows) {
    return ems_db_query(db, rows, buckets_sql[ems_store_engine_of(m->env->store)], "sii", id, from, to);
}

/*
 * Sums buckets into the hours hours[0..n) (the last one ending at end_ms),
 * starting at row *next of the ordered rows; moves *next past them.
 */
static void sum_hours(const ems_rows *rows, size_t *next, const ems_local_hour *hours, size_t n, int64_t end_ms,
                      double *kwh) {
    size_t count = ems_rows_count(rows);
    for (size_t h = 0; h < n; h++) {
        int64_t until = h + 1 < n ? hours[h + 1].start_ms : end_ms;
        kwh[h] = 0;
        while (*next < count && ems_rows_int(rows, *next, 0) < hours[h].start_ms) (*next)++;
        while (*next < count && ems_rows_int(rows, *next, 0) < until) kwh[h] += ems_rows_double(rows, (*next)++, 1);
    }
}

ems_rc monitoring_day(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    const char *id = req->param[0], *tz;
    int ymd[3];
    ems_local_hour hours[EMS_TZ_MAX_HOURS];
    double kwh[EMS_TZ_MAX_HOURS], limit = 0;
    size_t n = 0, next = 0;
    int64_t end_ms;
    ems_rows *rows = NULL;
    ems_tz *zone = NULL;
    ems_db *db = NULL;
    ems_rc rc = query_tz(req, resp, &tz, &zone);
    if (!rc) rc = query_date(req, resp, "date", zone, ymd);
    if (rc) goto cleanup;
    if (ems_tz_day_hours(zone, ymd[0], ymd[1], ymd[2], hours, &n, &end_ms) != 0 || n == 0) {
        rc = ems_fail(resp, EMS_BAD_REQUEST, "no such day in %s", tz);
        goto cleanup;
    }
    if (!(db = ems_store_get(m->env->store))) {
        rc = ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
        goto cleanup;
    }
    rc = device_access(db, req, resp, id, &limit);
    if (!rc && (rc = load_buckets(m, db, id, hours[0].start_ms, end_ms, &rows)) != EMS_OK)
        rc = ems_fail(resp, rc, "cannot read consumption");
    ems_store_put(m->env->store, db);
    if (rc) goto cleanup;

    sum_hours(rows, &next, hours, n, end_ms, kwh);
    json_t *series = json_array();
    double total = 0;
    size_t peak = 0;
    char start[32], date[16];
    for (size_t h = 0; h < n; h++) {
        ems_iso8601_local(hours[h].start_ms, hours[h].offset_ms, start);
        json_array_append_new(series, json_pack("{s:s, s:f}", "start", start, "kwh", kwh[h]));
        total += kwh[h];
        if (kwh[h] > kwh[peak]) peak = h;
    }
    ems_iso8601_local(hours[peak].start_ms, hours[peak].offset_ms, start);
    snprintf(date, sizeof date, "%04d-%02d-%02d", ymd[0], ymd[1], ymd[2]);
    rc = ems_reply_json(resp, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:o, s:f, s:f, s:{s:s, s:f}, s:f}", "device_id", id, "date",
                                  date, "tz", tz, "unit", "kWh", "hours", series, "total_kwh", total, "average_kwh",
                                  total / (double)n, "peak", "start", start, "kwh", kwh[peak], "limit_kwh", limit));
cleanup:
    ems_rows_free(rows);
    ems_tz_free(zone);
    return rc;
}

/* A range of local days ?from=&to=&tz= (both days included), as the CSV and the daily totals read it. */
typedef struct day_range {
    const char *tz;
    ems_tz *zone; /* opened from tz; the caller frees it */
    int from[3], to[3];
    int64_t first_day, last_day; /* days since 1970-01-01 */
    int64_t start_ms, end_ms;    /* UTC: the first day's start, and past the end of the last */
} day_range;

static ems_rc query_range(const ems_req *req, ems_resp *resp, day_range *r) {
    ems_rc rc = query_tz(req, resp, &r->tz, &r->zone);
    if (!rc) rc = query_date(req, resp, "from", r->zone, r->from);
    if (!rc) rc = query_date(req, resp, "to", r->zone, r->to);
    if (rc) return rc;
    r->first_day = day_number(r->from);
    r->last_day = day_number(r->to);
    if (r->last_day < r->first_day) return ems_fail(resp, EMS_BAD_REQUEST, "to must not be before from");
    if (r->last_day - r->first_day + 1 > CSV_MAX_DAYS)
        return ems_fail(resp, EMS_BAD_REQUEST, "at most %d days at once", CSV_MAX_DAYS);
    if (ems_tz_day_start(r->zone, r->from[0], r->from[1], r->from[2], &r->start_ms) != 0 ||
        ems_tz_day_start(r->zone, r->to[0], r->to[1], r->to[2], &r->end_ms) != 0)
        return ems_fail(resp, EMS_BAD_REQUEST, "no such day in %s", r->tz);
    r->end_ms += 26 * MON_HOUR_MS; /* past the end of the last day, whatever its length */
    return EMS_OK;
}

/* Checks access and loads the range's buckets; on failure the response is set. */
static ems_rc load_range(monitoring_role *m, const ems_req *req, ems_resp *resp, const char *id, const day_range *r,
                         double *limit, ems_rows **rows) {
    ems_db *db = ems_store_get(m->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    ems_rc rc = device_access(db, req, resp, id, limit);
    if (!rc && (rc = load_buckets(m, db, id, r->start_ms, r->end_ms, rows)) != EMS_OK)
        rc = ems_fail(resp, rc, "cannot read consumption");
    ems_store_put(m->env->store, db);
    return rc;
}

/*
 * Daily totals of local days: what a month view draws.  A day's total is the
 * sum of its hours, so it agrees with the day's series and with the CSV.
 */
ems_rc monitoring_days(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    const char *id = req->param[0];
    day_range r = {0};
    double limit = 0, total = 0, peak_kwh = -1;
    char peak_date[DATE_LEN] = "";
    size_t next = 0, ndays = 0;
    ems_rows *rows = NULL;
    ems_rc rc = query_range(req, resp, &r);
    if (!rc) rc = load_range(m, req, resp, id, &r, &limit, &rows);
    if (rc) goto cleanup;

    json_t *days = json_array();
    for (int64_t day = r.first_day; day <= r.last_day; day++) {
        ems_local_hour hours[EMS_TZ_MAX_HOURS];
        double kwh[EMS_TZ_MAX_HOURS], sum = 0;
        size_t n = 0;
        int64_t end_ms;
        int ymd[3];
        char date[DATE_LEN];
        day_date(day, ymd);
        if (ems_tz_day_hours(r.zone, ymd[0], ymd[1], ymd[2], hours, &n, &end_ms) != 0) continue;
        sum_hours(rows, &next, hours, n, end_ms, kwh);
        for (size_t h = 0; h < n; h++) sum += kwh[h];
        snprintf(date, sizeof date, "%04d-%02d-%02d", ymd[0], ymd[1], ymd[2]);
        json_array_append_new(days, json_pack("{s:s, s:f}", "date", date, "kwh", sum));
        total += sum;
        ndays++;
        if (sum > peak_kwh) {
            peak_kwh = sum;
            memcpy(peak_date, date, sizeof date);
        }
    }
    char from[DATE_LEN], to[DATE_LEN];
    snprintf(from, sizeof from, "%04d-%02d-%02d", r.from[0], r.from[1], r.from[2]);
    snprintf(to, sizeof to, "%04d-%02d-%02d", r.to[0], r.to[1], r.to[2]);
    rc = ems_reply_json(resp, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:f, s:f, s:o, s:f}", "device_id", id, "from", from,
                                  "to", to, "tz", r.tz, "unit", "kWh", "days", days, "total_kwh", total, "average_kwh",
                                  ndays ? total / (double)ndays : 0.0, "peak",
                                  ndays ? json_pack("{s:s, s:f}", "date", peak_date, "kwh", peak_kwh) : json_null(),
                                  "limit_kwh", limit));
cleanup:
    ems_rows_free(rows);
    ems_tz_free(r.zone);
    return rc;
}

ems_rc monitoring_csv(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    const char *id = req->param[0];
    day_range r = {0};
    int *from = r.from, *to = r.to;
    ems_rows *rows = NULL;
    char *data = NULL;
    size_t len = 0, next = 0;
    FILE *out = NULL;
    ems_rc rc = query_range(req, resp, &r);
    if (!rc) rc = load_range(m, req, resp, id, &r, NULL, &rows);
    if (rc) goto cleanup;

    if (!(out = open_memstream(&data, &len))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    fputs("start,kwh\r\n", out);
    for (int64_t day = r.first_day; day <= r.last_day; day++) {
        ems_local_hour hours[EMS_TZ_MAX_HOURS];
        double kwh[EMS_TZ_MAX_HOURS];
        size_t n = 0;
        int64_t end_ms;
        int ymd[3];
        day_date(day, ymd);
        if (ems_tz_day_hours(r.zone, ymd[0], ymd[1], ymd[2], hours, &n, &end_ms) != 0) continue;
        sum_hours(rows, &next, hours, n, end_ms, kwh);
        for (size_t h = 0; h < n; h++) {
            char start[32];
            ems_iso8601_local(hours[h].start_ms, hours[h].offset_ms, start);
            fprintf(out, "%s,%.6f\r\n", start, kwh[h]);
        }
    }
    if (fclose(out) != 0) {
        out = NULL;
        rc = EMS_NOMEM;
        goto cleanup;
    }
    out = NULL;
    char disposition[160];
    snprintf(disposition, sizeof disposition,
             "attachment; filename=\"consumption-%s-%04d-%02d-%02d-%04d-%02d-%02d.csv\"", id, from[0], from[1], from[2],
             to[0], to[1], to[2]);
    rc = ems_reply_header(resp, "Content-Disposition", disposition);
    if (!rc) {
        rc = ems_reply_raw(resp, 200, "text/csv; charset=utf-8", data, len);
        data = NULL;
    }
cleanup:
    if (out) fclose(out);
    free(data);
    ems_rows_free(rows);
    ems_tz_free(r.zone);
    return rc;
}

#define ALERT_COLUMNS                                                                                                  \
    "SELECT a.device_id, d.name, a.hour_start, a.total_kwh, a.limit_kwh, a.created_at FROM alerts a "                  \
    "LEFT JOIN devices d ON d.id = a.device_id "
#define ALERT_ORDER " ORDER BY a.hour_start DESC, a.device_id LIMIT $2 OFFSET $3"

ems_rc monitoring_alerts(ems_req *req, ems_resp *resp, void *ctx) {
    monitoring_role *m = ctx;
    const char *device = ems_req_query(req, "device_id");
    int64_t limit, offset;
    ems_rows *rows = NULL;
    ems_rc rc = ems_paging(req, resp, &limit, &offset);
    if (rc) return rc;
    ems_db *db = ems_store_get(m->env->store);
    if (!db) return ems_fail(resp, EMS_UNAVAILABLE, "database unavailable");
    if (device && *device) {
        rc = device_access(db, req, resp, device, NULL);
        if (!rc)
            rc = ems_db_query(db, &rows, ALERT_COLUMNS "WHERE a.device_id = $1" ALERT_ORDER, "sii", device, limit,
                              offset);
    } else if (req->who.role == EMS_ROLE_ADMIN) {
        /* $1 is always true: the three queries share their placeholders. */
        rc = ems_db_query(db, &rows, ALERT_COLUMNS "WHERE $1 = 1" ALERT_ORDER, "iii", (int64_t)1, limit, offset);
    } else {
        rc = ems_db_query(db, &rows, ALERT_COLUMNS "WHERE d.owner_id = $1" ALERT_ORDER, "sii", req->who.id, limit,
                          offset);
    }
    ems_store_put(m->env->store, db);
    if (rc) {
        ems_rows_free(rows);
        return ems_fail(resp, rc, "cannot list alerts");
    }
    json_t *items = json_array();
    for (size_t i = 0; i < ems_rows_count(rows); i++) {
        const char *name = ems_rows_text(rows, i, 1);
        json_array_append_new(items, json_pack("{s:s, s:o, s:I, s:f, s:f, s:I}", "device_id", ems_rows_text(rows, i, 0),
                                               "device_name", name ? json_string(name) : json_null(), "hour_start",
                                               (json_int_t)ems_rows_int(rows, i, 2), "total_kwh",
                                               ems_rows_double(rows, i, 3), "limit_kwh", ems_rows_double(rows, i, 4),
                                               "created_at", (json_int_t)ems_rows_int(rows, i, 5)));
    }
    ems_rows_free(rows);
    return ems_reply_json(
        resp, 200,
        json_pack("{s:o, s:I, s:I}", "items", items, "limit", (json_int_t)limit, "offset", (json_int_t)offset));
}
