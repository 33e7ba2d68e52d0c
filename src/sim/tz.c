/*
 * tz.c — local hours, local midnights and time parsing over ICU's ucal (see
 * tz.h).  Absolute instants (with Z or an offset) are computed with the
 * civil-calendar arithmetic of days_from_civil, no library needed.
 */
#include "tz.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#define ZONE_MAX 128

struct sim_tz {
    UCalendar *cal;
    char name[ZONE_MAX];
};

/* Zone names are invariant ASCII, so the plain conversions suffice. */
static int zone_to_uchars(const char *zone, UChar *out, size_t cap) {
    size_t n = strlen(zone);
    if (n == 0 || n >= cap) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)zone[i] >= 0x80 || !isprint((unsigned char)zone[i])) return -1;
    u_charsToUChars(zone, out, (int32_t)n + 1);
    return (int)n;
}

int sim_tz_valid(const char *zone) {
    UChar id[ZONE_MAX], canon[ZONE_MAX];
    UErrorCode st = U_ZERO_ERROR;
    UBool system = 0;
    int n;
    if (!zone || (n = zone_to_uchars(zone, id, ZONE_MAX)) < 0) return 0;
    ucal_getCanonicalTimeZoneID(id, n, canon, ZONE_MAX, &system, &st);
    return U_SUCCESS(st) && system;
}

ems_rc sim_tz_open(const char *zone, sim_tz **out, char *err, size_t errlen) {
    UChar id[ZONE_MAX];
    UErrorCode st = U_ZERO_ERROR;
    int n = -1;
    sim_tz *tz;
    if (zone && (!sim_tz_valid(zone) || (n = zone_to_uchars(zone, id, ZONE_MAX)) < 0)) {
        snprintf(err, errlen, "unknown time zone '%s' (expected an IANA name such as Europe/Bucharest)", zone);
        return EMS_BAD_REQUEST;
    }
    tz = calloc(1, sizeof *tz);
    if (!tz) return EMS_NOMEM;
    tz->cal = ucal_open(zone ? id : NULL, zone ? n : 0, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st) || !tz->cal) {
        snprintf(err, errlen, "cannot open a calendar for time zone '%s': %s", zone ? zone : "(system)",
                 u_errorName(st));
        free(tz);
        return EMS_INTERNAL;
    }
    if (zone) {
        snprintf(tz->name, sizeof tz->name, "%s", zone);
    } else {
        UChar def[ZONE_MAX];
        UErrorCode st2 = U_ZERO_ERROR;
        int32_t len = ucal_getDefaultTimeZone(def, ZONE_MAX, &st2);
        if (U_SUCCESS(st2) && len > 0 && len < ZONE_MAX) {
            u_UCharsToChars(def, tz->name, len);
            tz->name[len] = '\0';
        } else {
            snprintf(tz->name, sizeof tz->name, "UTC");
        }
    }
    *out = tz;
    return EMS_OK;
}

void sim_tz_free(sim_tz *tz) {
    if (!tz) return;
    ucal_close(tz->cal);
    free(tz);
}

const char *sim_tz_name(const sim_tz *tz) { return tz->name; }

double sim_tz_hour(sim_tz *tz, int64_t ms) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(tz->cal, (UDate)ms, &st);
    int32_t h = ucal_get(tz->cal, UCAL_HOUR_OF_DAY, &st);
    int32_t m = ucal_get(tz->cal, UCAL_MINUTE, &st);
    int32_t s = ucal_get(tz->cal, UCAL_SECOND, &st);
    if (U_FAILURE(st)) return 0.0;
    return h + m / 60.0 + s / 3600.0;
}

int64_t sim_tz_add_days(sim_tz *tz, int64_t ms, int days) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(tz->cal, (UDate)ms, &st);
    ucal_add(tz->cal, UCAL_DATE, days, &st);
    UDate r = ucal_getMillis(tz->cal, &st);
    return U_FAILURE(st) ? ms + (int64_t)days * 86400000 : (int64_t)r;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static ems_rc local_wall(sim_tz *tz, int y, int mo, int d, int h, int mi, int s, int64_t *ms) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_clear(tz->cal);
    ucal_setDateTime(tz->cal, y, mo - 1, d, h, mi, s, &st);
    UDate r = ucal_getMillis(tz->cal, &st);
    if (U_FAILURE(st)) return EMS_BAD_REQUEST;
    *ms = (int64_t)r;
    return EMS_OK;
}

ems_rc sim_tz_parse(sim_tz *tz, const char *text, int64_t *ms, int *is_date, char *err, size_t errlen) {
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, date_only = 1;
    size_t n = text ? strlen(text) : 0;
    if (n >= 10 && strspn(text, "0123456789") == n) {
        char *end;
        long long v = strtoll(text, &end, 10);
        if (*end == '\0' && v > 0) {
            *ms = v;
            if (is_date) *is_date = 0;
            return EMS_OK;
        }
    }
    if (!text || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        goto bad;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) goto bad;
    if (*p == 'T' || *p == ' ') {
        p++;
        date_only = 0;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) goto bad;
        if (*p == ':' && (p++, digits(&p, 2, &s))) goto bad;
        if (h > 23 || mi > 59 || s > 59) goto bad;
    }
    if (*p == '\0') {
        if (local_wall(tz, y, mo, d, h, mi, s, ms) != EMS_OK) goto bad;
        if (is_date) *is_date = date_only;
        return EMS_OK;
    }
    if (date_only) goto bad;
    {
        int off = 0;
        if (*p == 'Z' && p[1] == '\0') {
            off = 0;
        } else if ((*p == '+' || *p == '-') && p[1]) {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || *p != '\0' || oh > 23 || om > 59)
                goto bad;
            off = sign * (oh * 60 + om);
        } else {
            goto bad;
        }
        int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
        *ms = (secs - off * 60) * 1000;
        if (is_date) *is_date = 0;
        return EMS_OK;
    }
bad:
    snprintf(err, errlen, "bad date '%s' (expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] or epoch ms)",
             text ? text : "");
    return EMS_BAD_REQUEST;
}

size_t sim_iso_utc(int64_t ms, char *buf, size_t cap) {
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    /* civil_from_days (H. Hinnant) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int n;
    y += m <= 2;
    if (frac)
        n = snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), frac);
    else
        n = snprintf(buf, cap, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    return n < 0 ? 0 : (size_t)n;
}
