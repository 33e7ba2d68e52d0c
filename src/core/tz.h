/*
 * tz.h — time zones, local days and ISO-8601, through ICU's calendar.
 *
 * The one place EMS turns instants into local wall time and back: the
 * monitoring role's local days, the simulator's local hours, the assistant's
 * "yesterday", and the local times of readings sent without a zone.  ICU
 * reads the IANA database, so DST days (23 or 25 hours) and zones like
 * Asia/Kathmandu (+05:45) come out right; nothing here touches TZ or calls
 * tzset, which are process-wide.
 *
 * Wall time to instant, one rule everywhere (java.time's, which the
 * original simulator's clients use):
 *   - in a DST gap (a wall time that does not exist, 02:30 when clocks jump
 *     from 02:00 to 03:00) the time is moved forward by the gap: 03:30;
 *   - in an overlap (a wall time that happens twice, 02:30 when clocks go
 *     back from 03:00 to 02:00) the earlier instant is taken, the one with
 *     the offset before the change.
 *
 * An ems_tz may be shared between threads: calls on one are serialized by
 * its lock.  A NULL ems_tz means UTC wherever a zone is optional.
 */
#ifndef EMS_TZ_H
#define EMS_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

#define EMS_TZ_NAME_MAX 128 /* a zone name is shorter */
#define EMS_TZ_MAX_HOURS 26

typedef struct ems_tz ems_tz;

/* Wall-clock fields: month 1-12, day 1-31, hour 0-23 (24 as the next day's 0), second 0-60, ms 0-999. */
typedef struct ems_civil {
    int year, month, day, hour, minute, second, ms;
} ems_civil;

typedef struct ems_local_hour {
    int64_t start_ms;  /* UTC instant the local hour starts */
    int32_t offset_ms; /* the zone's offset from UTC at that instant */
} ems_local_hour;

/* 1 if zone is an IANA zone ICU knows ("Europe/Bucharest", "UTC", ...); 0 for NULL, "", "+02:00", etc. */
int ems_tz_valid(const char *zone);

/*
 * Opens zone, or the system's zone when zone is NULL.  An unknown name is
 * EMS_BAD_REQUEST with a message in err; EMS_NOMEM or EMS_INTERNAL if ICU
 * cannot open a calendar.  *out is set only on success.
 */
ems_rc ems_tz_open(const char *zone, ems_tz **out, char *err, size_t errlen);
void ems_tz_free(ems_tz *tz); /* accepts NULL */

/* The IANA name in use (the system's when opened with NULL); "UTC" for a NULL tz. */
const char *ems_tz_name(const ems_tz *tz);

/* The offset from UTC (ms) at a UTC instant; 0 for a NULL tz or if ICU fails. */
int32_t ems_tz_offset(ems_tz *tz, int64_t ms);

/* The wall-clock fields at a UTC instant; 0 on success, -1 if ICU fails. */
int ems_tz_local(ems_tz *tz, int64_t ms, ems_civil *out);

/*
 * The UTC instant of a wall time in tz, by the gap and overlap rule above.
 * The fields must be in range (hour 24 and second 60 roll over); 0 on
 * success, -1 if ICU fails.
 */
int ems_tz_from_local(ems_tz *tz, const ems_civil *local, int64_t *ms);

/* The same wall time `days` days later (earlier if negative), by the same rule. */
int64_t ems_tz_add_days(ems_tz *tz, int64_t ms, int days);

/* The local date `days_back` days before the instant now_ms, as YYYY-MM-DD; 0 on success. */
int ems_tz_local_date(ems_tz *tz, int64_t now_ms, int days_back, char out[11]);

/* The instant local day y-m-d starts (its first wall time, 00:00 or after a gap); 0 on success. */
int ems_tz_day_start(ems_tz *tz, int y, int m, int d, int64_t *ms);

/*
 * The hours of local day y-m-d: fills out (up to EMS_TZ_MAX_HOURS: 23, 24
 * or 25 of them) and *end_ms (the next day's start).  0 on success.
 */
int ems_tz_day_hours(ems_tz *tz, int y, int m, int d, ems_local_hour *out, size_t *n, int64_t *end_ms);

/* ---- dates and ISO-8601 --------------------------------------------------- */

/* Days in month m (1-12) of year y, proleptic Gregorian. */
int ems_days_in_month(int y, int m);

/* Days since 1970-01-01 of a proleptic Gregorian date (negative before). */
int64_t ems_days_from_civil(int64_t y, int m, int d);

/* Parses exactly "YYYY-MM-DD", a date that exists; 0 on success. */
int ems_date_parse(const char *s, int *y, int *m, int *d);

/* An ISO-8601 date-time as written, before any zone is applied. */
typedef struct ems_iso_time {
    ems_civil t;
    int has_time;   /* 0: a date alone ("2026-11-20") */
    int has_offset; /* 1: Z or ±hh[[:]mm] was given */
    int offset_min; /* that offset, east of UTC positive */
} ems_iso_time;

/*
 * Scans the ISO-8601 extended forms real clients send, the whole string:
 *   YYYY-MM-DD                                  a date alone
 *   YYYY-MM-DD(T|t| )hh:mm[:ss[(.|,)f...]][zone]
 *     seconds optional (Java's LocalDateTime drops ":00"); any number of
 *     fraction digits, truncated to milliseconds; hour 24 only as 24:00[:00[.0...]]
 *     (the end of the day, the next day's 00:00); second 60 (a leap second)
 *     counts as the next minute's 00, as POSIX time has no leap seconds;
 *   zone: Z or z, ±hh:mm, ±hhmm or ±hh, at most 14:00 either way.
 * Refused: anything else (basic format 20261120T1110, week or ordinal dates,
 * a fraction without seconds, [Zone/Name] suffixes, spaces around, junk
 * after).  0 on success; *out is set only then.
 */
int ems_iso8601_scan(const char *s, ems_iso_time *out);

/*
 * An instant: a date and a time (a date alone is refused).  A time without
 * a zone is wall time in `local` (NULL: UTC), by the gap and overlap rule.
 * 0 on success.
 */
int ems_iso8601_parse(const char *s, ems_tz *local, int64_t *ms);

/* Writes an instant as UTC, "2024-03-10T00:10:00Z" (".123Z" when ms is not whole); the length written. */
size_t ems_iso8601_utc(int64_t ms, char *buf, size_t cap);

/* Writes an instant as local time with its offset, "2026-03-29T03:00:00+03:00". */
void ems_iso8601_local(int64_t ms, int32_t offset_ms, char out[32]);

#endif
