/*
 * tz.h — local days in IANA time zones, through ICU's calendar.
 *
 * A local day has 24 hours, or 23 / 25 on the days daylight saving time
 * starts / ends; in zones like Asia/Kathmandu (+05:45) its hours start at a
 * quarter past a UTC hour.  Readings are kept in UTC quarter-hour buckets,
 * so every local hour is a whole number of buckets.  Thread-safe: nothing
 * process-global (no TZ / tzset) is touched.
 */
#ifndef EMS_MONITORING_TZ_H
#define EMS_MONITORING_TZ_H

#include <stddef.h>
#include <stdint.h>

#define TZ_MAX_HOURS 26

typedef struct local_hour {
    int64_t start_ms;  /* UTC instant the local hour starts */
    int32_t offset_ms; /* the zone's offset from UTC at that instant */
} local_hour;

/* 1 if tz is an IANA zone ICU knows ("Europe/Bucharest", "UTC", ...). */
int tz_valid(const char *tz);

/* Parses YYYY-MM-DD; 0 on success. */
int tz_parse_date(const char *date, int *y, int *m, int *d);

/*
 * The hours of local day y-m-d in tz: fills out (up to TZ_MAX_HOURS) and
 * *end_ms (the next local midnight).  0 on success, -1 for a bad zone.
 */
int tz_day_hours(const char *tz, int y, int m, int d, local_hour *out, size_t *n, int64_t *end_ms);

/* The local start of day y-m-d in tz as a UTC instant; -1 on a bad zone. */
int tz_day_start(const char *tz, int y, int m, int d, int64_t *ms);

/* Formats a UTC instant as local ISO-8601 with offset: "2026-03-29T03:00:00+03:00" (26 bytes + NUL). */
void tz_format(int64_t ms, int32_t offset_ms, char out[32]);

/* The offset of tz at a UTC instant (ms); 0 on a bad zone. */
int32_t tz_offset(const char *tz, int64_t ms);

#endif
