/*
 * data.c — data-grounded answers: the caller's devices, their consumption
 * and their alerts, read through the REST API as the caller (support.c says
 * how: in-process in embedded mode, over HTTP otherwise).  Every device the
 * caller owns counts: the list is read page after page.
 *
 * Local days come from core's zone module (tz.h).  Any failure along the way turns the whole answer
 * into "unavailable": a partial sum would be a wrong number.
 */
#include "data.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "tz.h"
#include "util.h"

#define WEEK_DAYS 7
#define DEVICE_PAGE 100    /* the API's largest page */
#define DEVICES_MAX 100000 /* beyond this many the answer is "unavailable", not a long stall */

typedef struct device {
    char id[EMS_ID_LEN];
    char name[404];
    double kwh;
} device;

/* ---- time ---- */

/* The local date `days_back` days before now_ms in tz, as YYYY-MM-DD; 0 on success. */
static int local_date(const char *tz, int64_t now_ms, int days_back, char out[11]) {
    ems_tz *z = NULL;
    if (!tz || ems_tz_open(tz, &z, NULL, 0) != EMS_OK) return -1;
    int rc = ems_tz_local_date(z, now_ms, days_back, out);
    ems_tz_free(z);
    return rc;
}

/* A UTC instant as local "YYYY-MM-DD HH:MM" in tz, or "?". */
static void local_time(const char *tz, int64_t ms, char *out, size_t n) {
    ems_tz *z = NULL;
    ems_civil c;
    if (!tz || ems_tz_open(tz, &z, NULL, 0) != EMS_OK || ems_tz_local(z, ms, &c) != 0) {
        ems_tz_free(z);
        snprintf(out, n, "?");
        return;
    }
    ems_tz_free(z);
    snprintf(out, n, "%04u-%02u-%02u %02u:%02u", (unsigned)c.year % 10000u, (unsigned)c.month % 100u,
             (unsigned)c.day % 100u, (unsigned)c.hour % 100u, (unsigned)c.minute % 100u);
}

/* ---- the REST API ---- */

/* GETs path as the caller; the parsed JSON of a 200, else NULL. */
static json_t *api_get(const support_caller *who, const char *path) {
    char *body = NULL;
    long status = 0;
    json_t *doc = NULL;
    if (!who->get) return NULL;
    if (who->get(who->get_ctx, path, &status, &body)) return NULL; /* the transport logged why */
    if (status != 200)
        ems_log(EMS_LOG_INFO, "support.api_status", "path=%.*s status=%ld", (int)strcspn(path, "?"), path, status);
    else doc = json_loads(body, 0, NULL);
    free(body);
    return doc;
}

/* Appends one page of devices to *out; how many it held, or -1 on a bad page. */
static int add_devices(json_t *items, device **out, size_t *n, size_t *cap) {
    size_t count = json_array_size(items);
    if (*n + count > *cap) {
        size_t want = *cap ? *cap : DEVICE_PAGE;
        while (want < *n + count) want *= 2;
        device *grown = realloc(*out, want * sizeof *grown);
        if (!grown) return -1;
        *out = grown;
        *cap = want;
    }
    for (size_t i = 0; i < count; i++) {
        const char *id = NULL, *name = NULL;
        if (json_unpack(json_array_get(items, i), "{s:s, s:s}", "id", &id, "name", &name) || !ems_uuid_valid(id))
            return -1;
        device *d = &(*out)[(*n)++];
        snprintf(d->id, sizeof d->id, "%s", id);
        snprintf(d->name, sizeof d->name, "%s", name);
        d->kwh = 0;
    }
    return (int)count;
}

/*
 * Every device the caller owns, page after page until the API's total is
 * reached: 0 and *out (malloc'd, may be empty), or -1.  ?owner= matters for
 * an admin, who would otherwise get everybody's; a client gets its own
 * whatever the filter.
 */
static int list_devices(const support_caller *who, device **out, size_t *n) {
    size_t cap = 0;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (!who->user_id || !ems_uuid_valid(who->user_id)) return -1;
    for (;;) {
        char path[160];
        snprintf(path, sizeof path, "/api/devices?owner=%s&limit=%d&offset=%zu", who->user_id, DEVICE_PAGE, *n);
        json_t *doc = api_get(who, path), *items = json_object_get(doc, "items"),
               *total = json_object_get(doc, "total");
        int got = json_is_array(items) && json_is_integer(total) ? add_devices(items, out, n, &cap) : -1;
        json_int_t want = json_integer_value(total);
        json_decref(doc);
        if (got < 0 || want > DEVICES_MAX) break;
        /* Done at the total, or at a short page (devices removed while reading). */
        if ((json_int_t)*n >= want || got < DEVICE_PAGE) {
            rc = 0;
            break;
        }
    }
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    } else if (!*out && !(*out = calloc(1, sizeof **out))) {
        rc = -1;
    }
    return rc;
}

/* total_kwh of one device over the local days [from .. to]: 0 and *kwh, or -1. */
static int range_total(const support_caller *who, const char *device_id, const char *from, const char *to,
                       const char *tz_escaped, double *kwh) {
    char path[256];
    snprintf(path, sizeof path, "/api/consumption/%s/days?from=%s&to=%s&tz=%s", device_id, from, to, tz_escaped);
    json_t *doc = api_get(who, path), *total = json_object_get(doc, "total_kwh");
    int rc = json_is_number(total) ? 0 : -1;
    if (!rc) *kwh = json_number_value(total);
    json_decref(doc);
    return rc;
}

/* Each device's consumption over the local days [first_back .. last_back] days ago, one call per device. */
static int sum_days(const support_caller *who, device *devs, size_t n, int first_back, int last_back) {
    char from[11], to[11];
    if (local_date(who->tz, who->now_ms, last_back, from) || local_date(who->tz, who->now_ms, first_back, to))
        return -1;
    char *tz = ems_url_escape(who->tz);
    int rc = tz ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++) rc = range_total(who, devs[i].id, from, to, tz, &devs[i].kwh);
    free(tz);
    return rc;
}

/* ---- actions ---- */

static const char *usage_yesterday(const support_caller *who, support_vars *vars) {
    device *devs = NULL;
    size_t n = 0;
    const char *outcome = "unavailable";
    char date[11];
    if (local_date(who->tz, who->now_ms, 1, date)) return outcome;
    support_vars_set(vars, "date", "%s", date);
    support_vars_set(vars, "tz", "%s", who->tz);
    if (list_devices(who, &devs, &n)) goto cleanup;
    if (n == 0) {
        outcome = "no_devices";
        goto cleanup;
    }
    if (sum_days(who, devs, n, 1, 1)) goto cleanup;
    double total = 0;
    for (size_t i = 0; i < n; i++) total += devs[i].kwh;
    support_vars_set(vars, "total_kwh", "%.2f", total);
    support_vars_set(vars, "device_count", "%zu", n);
    outcome = "ok";
cleanup:
    free(devs);
    return outcome;
}

static const char *top_device(const support_caller *who, support_vars *vars) {
    device *devs = NULL;
    size_t n = 0;
    const char *outcome = "unavailable";
    char from[11], to[11];
    if (local_date(who->tz, who->now_ms, WEEK_DAYS, from) || local_date(who->tz, who->now_ms, 1, to)) return outcome;
    support_vars_set(vars, "from", "%s", from);
    support_vars_set(vars, "to", "%s", to);
    support_vars_set(vars, "days", "%d", WEEK_DAYS);
    support_vars_set(vars, "tz", "%s", who->tz);
    if (list_devices(who, &devs, &n)) goto cleanup;
    if (n == 0) {
        outcome = "no_devices";
        goto cleanup;
    }
    if (sum_days(who, devs, n, 1, WEEK_DAYS)) goto cleanup;
    /* The list comes ordered by name, so a tie goes to the first name: the same answer every time. */
    size_t best = 0;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        total += devs[i].kwh;
        if (devs[i].kwh > devs[best].kwh) best = i;
    }
    support_vars_set(vars, "total_kwh", "%.2f", total);
    if (devs[best].kwh <= 0) {
        outcome = "no_usage";
        goto cleanup;
    }
    support_vars_set(vars, "device", "%s", devs[best].name);
    support_vars_set(vars, "device_kwh", "%.2f", devs[best].kwh);
    support_vars_set(vars, "share", "%.0f", 100.0 * devs[best].kwh / total);
    outcome = "ok";
cleanup:
    free(devs);
    return outcome;
}

#define ALERT_PAGE 100

/* The latest of an alert list (ordered newest first) within the window, and how many are; -1 on a bad answer. */
typedef struct alert_tally {
    size_t count;
    int more;       /* a full page still inside the window: there may be more */
    json_t *latest; /* borrowed from the page it came from, kept alive by the caller */
    int64_t latest_start;
} alert_tally;

static int tally_page(json_t *items, int64_t since, alert_tally *t) {
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *a = json_array_get(items, i), *start = json_object_get(a, "hour_start");
        if (!json_is_integer(start)) return -1;
        int64_t at = json_integer_value(start);
        if (at < since) continue;
        t->count++;
        if (!t->latest || at > t->latest_start) {
            t->latest = a;
            t->latest_start = at;
        }
        if (i + 1 == ALERT_PAGE) t->more = 1;
    }
    return 0;
}

/*
 * Alerts of each device the caller owns, one API call per device: exact for
 * a client and for an admin alike (an admin's unfiltered list is everybody's).
 */
static const char *limit_alerts(const support_caller *who, support_vars *vars) {
    const int64_t since = who->now_ms - (int64_t)WEEK_DAYS * 86400 * 1000;
    const char *outcome = "unavailable";
    device *devs = NULL;
    size_t ndev = 0;
    json_t *pages = json_array(); /* keeps every page alive while `latest` points into one */
    alert_tally t = {0};
    support_vars_set(vars, "days", "%d", WEEK_DAYS);
    support_vars_set(vars, "tz", "%s", who->tz);
    if (!pages || list_devices(who, &devs, &ndev)) goto cleanup;
    for (size_t i = 0; i < ndev; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/alerts?device_id=%s&limit=%d", devs[i].id, ALERT_PAGE);
        json_t *doc = api_get(who, path), *items = json_object_get(doc, "items");
        json_array_append_new(pages, doc);
        if (!json_is_array(items) || tally_page(items, since, &t)) goto cleanup;
    }
    if (t.count == 0) {
        outcome = "no";
        goto cleanup;
    }
    const char *name = json_string_value(json_object_get(t.latest, "device_name"));
    char when[40];
    local_time(who->tz, t.latest_start, when, sizeof when);
    support_vars_set(vars, "count", "%zu%s", t.count, t.more ? "+" : "");
    support_vars_set(vars, "device", "%s", name ? name : "a device");
    support_vars_set(vars, "hour", "%s", when);
    support_vars_set(vars, "total_kwh", "%.2f", json_number_value(json_object_get(t.latest, "total_kwh")));
    support_vars_set(vars, "limit_kwh", "%.2f", json_number_value(json_object_get(t.latest, "limit_kwh")));
    outcome = "yes";
cleanup:
    json_decref(pages);
    free(devs);
    return outcome;
}

static const char *const usage_outcomes[] = {"ok", "no_devices", "unavailable", NULL};
static const char *const usage_vars[] = {"total_kwh", "date", "tz", "device_count", NULL};
static const char *const top_outcomes[] = {"ok", "no_devices", "no_usage", "unavailable", NULL};
static const char *const top_vars[] = {"device", "device_kwh", "share", "total_kwh", "days", "from", "to", "tz", NULL};
static const char *const alert_outcomes[] = {"yes", "no", "unavailable", NULL};
static const char *const alert_vars[] = {"count", "days", "device", "hour", "total_kwh", "limit_kwh", "tz", NULL};

const support_action support_actions[] = {
    {"usage_yesterday", usage_outcomes, usage_vars, usage_yesterday},
    {"top_device", top_outcomes, top_vars, top_device},
    {"limit_alerts", alert_outcomes, alert_vars, limit_alerts},
};
const size_t support_nactions = sizeof support_actions / sizeof support_actions[0];
