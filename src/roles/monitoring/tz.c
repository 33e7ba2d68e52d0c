/*
 * tz.c — local days over ICU's ucal: one UCalendar per call, so no state is
 * shared between threads.
 */
#include "tz.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define HOUR_MS 3600000LL

static UCalendar *open_zone(const char *tz) {
    UChar id[128];
    UErrorCode st = U_ZERO_ERROR;
    if (!tz || strlen(tz) >= sizeof id / sizeof id[0]) return NULL;
    u_uastrcpy(id, tz);
    /* ICU quietly falls back to GMT for an unknown id: check it first. */
    UChar canon[128];
    UBool system = 0;
    ucal_getCanonicalTimeZoneID(id, -1, canon, 128, &system, &st);
    if (U_FAILURE(st) || !system) return NULL;
    UCalendar *cal = ucal_open(id, -1, "en_US@calendar=gregorian", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) return NULL;
    return cal;
}

int tz_valid(const char *tz) {
    UCalendar *cal = open_zone(tz);
    if (!cal) return 0;
    ucal_close(cal);
    return 1;
}

int tz_parse_date(const char *date, int *y, int *m, int *d) {
    char tail;
    if (!date || strlen(date) != 10 || sscanf(date, "%4d-%2d-%2d%c", y, m, d, &tail) != 3) return -1;
    if (date[4] != '-' || date[7] != '-' || *y < 2000 || *y > 2099 || *m < 1 || *m > 12 || *d < 1) return -1;
    struct tm tm = {.tm_year = *y - 1900, .tm_mon = *m - 1, .tm_mday = *d, .tm_hour = 12};
    timegm(&tm);
    return tm.tm_mday == *d ? 0 : -1;
}

static int64_t local_midnight(UCalendar *cal, int y, int m, int d) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_clear(cal);
    ucal_setDateTime(cal, y, m - 1, d, 0, 0, 0, &st);
    UDate t = ucal_getMillis(cal, &st);
    return U_FAILURE(st) ? -1 : (int64_t)t;
}

static int32_t offset_at(UCalendar *cal, int64_t ms) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)ms, &st);
    int32_t off = ucal_get(cal, UCAL_ZONE_OFFSET, &st) + ucal_get(cal, UCAL_DST_OFFSET, &st);
    return U_FAILURE(st) ? 0 : off;
}

int tz_day_start(const char *tz, int y, int m, int d, int64_t *ms) {
    UCalendar *cal = open_zone(tz);
    if (!cal) return -1;
    *ms = local_midnight(cal, y, m, d);
    ucal_close(cal);
    return *ms == -1 ? -1 : 0;
}

int tz_day_hours(const char *tz, int y, int m, int d, local_hour *out, size_t *n, int64_t *end_ms) {
    UCalendar *cal = open_zone(tz);
    if (!cal) return -1;
    struct tm next = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + 1, .tm_hour = 12};
    timegm(&next);
    int64_t start = local_midnight(cal, y, m, d);
    int64_t end = local_midnight(cal, next.tm_year + 1900, next.tm_mon + 1, next.tm_mday);
    size_t count = 0;
    for (int64_t t = start; t < end && count < TZ_MAX_HOURS; t += HOUR_MS) {
        out[count].start_ms = t;
        out[count].offset_ms = offset_at(cal, t);
        count++;
    }
    ucal_close(cal);
    *n = count;
    *end_ms = end;
    return start < 0 || end < 0 ? -1 : 0;
}

int32_t tz_offset(const char *tz, int64_t ms) {
    UCalendar *cal = open_zone(tz);
    if (!cal) return 0;
    int32_t off = offset_at(cal, ms);
    ucal_close(cal);
    return off;
}

void tz_format(int64_t ms, int32_t offset_ms, char out[32]) {
    time_t local = (time_t)((ms + offset_ms) / 1000);
    struct tm tm;
    gmtime_r(&local, &tm);
    int off_min = offset_ms / 60000, a = off_min < 0 ? -off_min : off_min;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off_min < 0 ? '-' : '+', a / 60, a % 60);
    size_t len = n < 0 ? 0 : (size_t)n > 31 ? 31 : (size_t)n;
    memcpy(out, buf, len);
    out[len] = '\0';
}
