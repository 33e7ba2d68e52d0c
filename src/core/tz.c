/*
 * tz.c — zones over ICU's ucal (one UCalendar per ems_tz, behind its lock)
 * and ISO-8601 over plain civil-calendar arithmetic: an instant with Z or
 * an offset, and anything in UTC, needs no library at all.
 */
#include "tz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

struct ems_tz {
    pthread_mutex_t lock;
    UCalendar *cal;
    char name[EMS_TZ_NAME_MAX];
};

/* ---- civil dates (H. Hinnant's algorithms, proleptic Gregorian) ----------- */

int64_t ems_days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t days, int *y, int *m, int *d) {
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int ems_days_in_month(int y, int m) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m < 1 || m > 12 ? 0 : m == 2 && leap ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* UTC wall time → instant; hour 24 and second 60 roll over. */
static int64_t utc_from_civil(const ems_civil *c) {
    int64_t secs = ems_days_from_civil(c->year, c->month, c->day) * 86400 + (int64_t)c->hour * 3600 +
                   (int64_t)c->minute * 60 + c->second;
    return secs * 1000 + c->ms;
}

static void civil_from_utc(int64_t ms, ems_civil *c) {
    int64_t days = floor_div(ms, DAY_MS), rem = ms - days * DAY_MS;
    civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (int)(rem / HOUR_MS);
    c->minute = (int)(rem / 60000 % 60);
    c->second = (int)(rem / 1000 % 60);
    c->ms = (int)(rem % 1000);
}

/* ---- zones ---------------------------------------------------------------- */

/* Zone names are invariant ASCII, so the plain conversion suffices; -1 if it is not. */
static int zone_to_uchars(const char *zone, UChar *out, size_t cap) {
    size_t n = zone ? strlen(zone) : 0;
    if (n == 0 || n >= cap) return -1;
    for (size_t i = 0; i < n; i++)
        if (zone[i] <= 0x20 || zone[i] >= 0x7f) return -1;
    u_charsToUChars(zone, out, (int32_t)n + 1);
    return (int)n;
}

int ems_tz_valid(const char *zone) {
    UChar id[EMS_TZ_NAME_MAX], canon[EMS_TZ_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    UBool system = 0;
    int n = zone_to_uchars(zone, id, EMS_TZ_NAME_MAX);
    if (n < 0) return 0;
    /* ICU quietly falls back to GMT for an unknown id: only a system id is a zone. */
    ucal_getCanonicalTimeZoneID(id, n, canon, EMS_TZ_NAME_MAX, &system, &st);
    return U_SUCCESS(st) && system;
}

ems_rc ems_tz_open(const char *zone, ems_tz **out, char *err, size_t errlen) {
    UChar id[EMS_TZ_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    int n = -1;
    if (zone && (!ems_tz_valid(zone) || (n = zone_to_uchars(zone, id, EMS_TZ_NAME_MAX)) < 0)) {
        snprintf(err, errlen, "unknown time zone '%s' (expected an IANA name such as Europe/Bucharest)", zone);
        return EMS_BAD_REQUEST;
    }
    ems_tz *tz = calloc(1, sizeof *tz);
    if (!tz) return EMS_NOMEM;
    tz->cal = ucal_open(zone ? id : NULL, zone ? n : 0, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st) || !tz->cal) {
        snprintf(err, errlen, "cannot open a calendar for time zone '%s': %s", zone ? zone : "(system)",
                 u_errorName(st));
        free(tz);
        return EMS_INTERNAL;
    }
    /* The gap and overlap rule of tz.h; lenient (the default) so that a gap moves forward. */
    ucal_setAttribute(tz->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
    ucal_setAttribute(tz->cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
    if (zone) {
        snprintf(tz->name, sizeof tz->name, "%s", zone);
    } else {
        UChar def[EMS_TZ_NAME_MAX];
        UErrorCode st2 = U_ZERO_ERROR;
        int32_t len = ucal_getDefaultTimeZone(def, EMS_TZ_NAME_MAX, &st2);
        if (U_SUCCESS(st2) && len > 0 && len < EMS_TZ_NAME_MAX) {
            u_UCharsToChars(def, tz->name, len);
            tz->name[len] = '\0';
        } else {
            snprintf(tz->name, sizeof tz->name, "UTC");
        }
    }
    pthread_mutex_init(&tz->lock, NULL);
    *out = tz;
    return EMS_OK;
}

void ems_tz_free(ems_tz *tz) {
    if (!tz) return;
    ucal_close(tz->cal);
    pthread_mutex_destroy(&tz->lock);
    free(tz);
}

const char *ems_tz_name(const ems_tz *tz) { return tz ? tz->name : "UTC"; }

/* The locked helpers: the caller holds tz->lock. */
static int local_locked(ems_tz *tz, int64_t ms, ems_civil *c) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(tz->cal, (UDate)ms, &st);
    c->year = ucal_get(tz->cal, UCAL_EXTENDED_YEAR, &st);
    c->month = ucal_get(tz->cal, UCAL_MONTH, &st) + 1;
    c->day = ucal_get(tz->cal, UCAL_DATE, &st);
    c->hour = ucal_get(tz->cal, UCAL_HOUR_OF_DAY, &st);
    c->minute = ucal_get(tz->cal, UCAL_MINUTE, &st);
    c->second = ucal_get(tz->cal, UCAL_SECOND, &st);
    c->ms = ucal_get(tz->cal, UCAL_MILLISECOND, &st);
    return U_FAILURE(st) ? -1 : 0;
}

static int from_local_locked(ems_tz *tz, const ems_civil *c, int64_t *ms) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_clear(tz->cal);
    ucal_setDateTime(tz->cal, c->year, c->month - 1, c->day, c->hour, c->minute, c->second, &st);
    ucal_set(tz->cal, UCAL_MILLISECOND, c->ms);
    UDate t = ucal_getMillis(tz->cal, &st);
    if (U_FAILURE(st)) return -1;
    *ms = (int64_t)t;
    return 0;
}

int32_t ems_tz_offset(ems_tz *tz, int64_t ms) {
    if (!tz) return 0;
    UErrorCode st = U_ZERO_ERROR;
    pthread_mutex_lock(&tz->lock);
    ucal_setMillis(tz->cal, (UDate)ms, &st);
    int32_t off = ucal_get(tz->cal, UCAL_ZONE_OFFSET, &st) + ucal_get(tz->cal, UCAL_DST_OFFSET, &st);
    pthread_mutex_unlock(&tz->lock);
    return U_FAILURE(st) ? 0 : off;
}

int ems_tz_local(ems_tz *tz, int64_t ms, ems_civil *out) {
    if (!tz) {
        civil_from_utc(ms, out);
        return 0;
    }
    pthread_mutex_lock(&tz->lock);
    int rc = local_locked(tz, ms, out);
    pthread_mutex_unlock(&tz->lock);
    return rc;
}

int ems_tz_from_local(ems_tz *tz, const ems_civil *local, int64_t *ms) {
    if (!tz) {
        *ms = utc_from_civil(local);
        return 0;
    }
    pthread_mutex_lock(&tz->lock);
    int rc = from_local_locked(tz, local, ms);
    pthread_mutex_unlock(&tz->lock);
    return rc;
}

int64_t ems_tz_add_days(ems_tz *tz, int64_t ms, int days) {
    ems_civil c;
    int64_t r;
    if (ems_tz_local(tz, ms, &c) != 0) return ms + (int64_t)days * DAY_MS;
    int y, m, d;
    civil_from_days(ems_days_from_civil(c.year, c.month, c.day) + days, &y, &m, &d);
    c.year = y, c.month = m, c.day = d;
    return ems_tz_from_local(tz, &c, &r) == 0 ? r : ms + (int64_t)days * DAY_MS;
}

int ems_tz_local_date(ems_tz *tz, int64_t now_ms, int days_back, char out[11]) {
    ems_civil c;
    int y, m, d;
    if (ems_tz_local(tz, now_ms, &c) != 0) return -1;
    civil_from_days(ems_days_from_civil(c.year, c.month, c.day) - days_back, &y, &m, &d);
    if (y < 1 || y > 9999) return -1;
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u);
    return 0;
}

int ems_tz_day_start(ems_tz *tz, int y, int m, int d, int64_t *ms) {
    ems_civil c = {.year = y, .month = m, .day = d};
    if (m < 1 || m > 12 || d < 1 || d > ems_days_in_month(y, m)) return -1;
    return ems_tz_from_local(tz, &c, ms);
}

int ems_tz_day_hours(ems_tz *tz, int y, int m, int d, ems_local_hour *out, size_t *n, int64_t *end_ms) {
    int64_t start, end;
    int ny, nm, nd;
    civil_from_days(ems_days_from_civil(y, m, d) + 1, &ny, &nm, &nd);
    if (ems_tz_day_start(tz, y, m, d, &start) != 0 || ems_tz_day_start(tz, ny, nm, nd, &end) != 0) return -1;
    size_t count = 0;
    for (int64_t t = start; t < end && count < EMS_TZ_MAX_HOURS; t += HOUR_MS) {
        out[count].start_ms = t;
        out[count].offset_ms = ems_tz_offset(tz, t);
        count++;
    }
    *n = count;
    *end_ms = end;
    return 0;
}

/* ---- ISO-8601 ------------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads exactly n digits; never reads past a NUL. */
static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int ems_date_parse(const char *s, int *y, int *m, int *d) {
    ems_iso_time t;
    if (!s || strlen(s) != 10 || ems_iso8601_scan(s, &t) != 0 || t.has_time) return -1;
    *y = t.t.year, *m = t.t.month, *d = t.t.day;
    return 0;
}

int ems_iso8601_scan(const char *s, ems_iso_time *out) {
    ems_iso_time r = {0};
    const char *p = s;
    int fraction_nonzero = 0;
    /* Each "*p++ != c" stops at the first mismatch, so p never passes the NUL. */
    if (!s || digits(&p, 4, &r.t.year) || *p++ != '-' || digits(&p, 2, &r.t.month) || *p++ != '-' ||
        digits(&p, 2, &r.t.day))
        return -1;
    if (r.t.month < 1 || r.t.month > 12 || r.t.day < 1 || r.t.day > ems_days_in_month(r.t.year, r.t.month)) return -1;
    if (*p == '\0') {
        *out = r;
        return 0;
    }
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    r.has_time = 1;
    if (digits(&p, 2, &r.t.hour) || *p++ != ':' || digits(&p, 2, &r.t.minute)) return -1;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &r.t.second)) return -1;
        if (*p == '.' || *p == ',') {
            int n = 0;
            if (!is_digit(*++p)) return -1;
            for (; is_digit(*p); p++, n++) {
                if (n < 3) r.t.ms = r.t.ms * 10 + (*p - '0'); /* truncated to ms, never rounded up */
                if (*p != '0') fraction_nonzero = 1;
            }
            for (; n < 3; n++) r.t.ms *= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
        r.has_offset = 1;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':' ? (p++, digits(&p, 2, &om)) : is_digit(*p) ? digits(&p, 2, &om) : 0) return -1;
        if (oh > 14 || om > 59 || (oh == 14 && om > 0)) return -1;
        r.has_offset = 1;
        r.offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0' || r.t.hour > 24 || r.t.minute > 59 || r.t.second > 60) return -1;
    if (r.t.hour == 24 && (r.t.minute || r.t.second || fraction_nonzero)) return -1;
    *out = r;
    return 0;
}

int ems_iso8601_parse(const char *s, ems_tz *local, int64_t *ms) {
    ems_iso_time t;
    if (ems_iso8601_scan(s, &t) != 0 || !t.has_time) return -1;
    if (t.has_offset) {
        *ms = utc_from_civil(&t.t) - (int64_t)t.offset_min * 60000;
        return 0;
    }
    return ems_tz_from_local(local, &t.t, ms);
}

size_t ems_iso8601_utc(int64_t ms, char *buf, size_t cap) {
    ems_civil c;
    int n;
    civil_from_utc(ms, &c);
    if (c.ms)
        n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month, c.day, c.hour, c.minute,
                     c.second, c.ms);
    else n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second);
    return n < 0 ? 0 : (size_t)n;
}

void ems_iso8601_local(int64_t ms, int32_t offset_ms, char out[32]) {
    ems_civil c;
    civil_from_utc(ms + offset_ms, &c);
    int off_min = offset_ms / 60000, a = off_min < 0 ? -off_min : off_min;
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", c.year % 10000, c.month, c.day, c.hour, c.minute,
             c.second, off_min < 0 ? '-' : '+', a / 60, a % 60);
}
