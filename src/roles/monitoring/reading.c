/*
 * reading.c — parsing and serializing readings in the two accepted forms.
 */
#include "reading.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2000-01-01 and 2100-01-01: anything outside is a broken clock, not a reading. */
#define TS_MIN 946684800000LL
#define TS_MAX 4102444800000LL

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p)) return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

int iso8601_parse(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, frac = 0, fdigits = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
        (*p != 'T' && *p != ' ') || !*p++ || digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
        *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++)
            if (fdigits < 3) frac = frac * 10 + (*p - '0'), fdigits++;
        if (fdigits == 0) return -1;
        while (fdigits < 3) frac *= 10, fdigits++;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':') p++;
        if (digits(&p, 2, &om) || oh > 23 || om > 59) return -1;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) return -1; /* 31 April and friends */
    *ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + frac;
    return 0;
}

static int timestamp_of(const json_t *v, int64_t *ms) {
    if (json_is_integer(v)) {
        *ms = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != floor(d)) return -1;
        *ms = (int64_t)d;
    } else if (!json_is_string(v) || iso8601_parse(json_string_value(v), ms)) {
        return -1;
    }
    return *ms >= TS_MIN && *ms < TS_MAX ? 0 : -1;
}

static int one(const json_t *o, reading *r, char *err, size_t errlen) {
    if (!json_is_object(o)) {
        snprintf(err, errlen, "a reading must be an object");
        return -1;
    }
    const json_t *id = json_object_get(o, "device_id"), *val = json_object_get(o, "measurement_value");
    size_t expect = 3;
    if (!id && !val) {
        id = json_object_get(o, "deviceId");
        val = json_object_get(o, "value");
    }
    const json_t *ts = json_object_get(o, "timestamp");
    if (!id || !val || !ts || json_object_size(o) != expect) {
        snprintf(err, errlen, "a reading needs exactly timestamp, device_id and measurement_value");
        return -1;
    }
    const char *s = json_string_value(id);
    if (!s || strlen(s) != EMS_ID_LEN - 1) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    for (size_t i = 0; i < EMS_ID_LEN; i++) r->device_id[i] = (char)tolower((unsigned char)s[i]);
    if (!ems_uuid_valid(r->device_id)) {
        snprintf(err, errlen, "device_id must be a UUID");
        return -1;
    }
    if (timestamp_of(ts, &r->ts_ms)) {
        snprintf(err, errlen, "timestamp must be epoch milliseconds or ISO-8601 between 2000 and 2100");
        return -1;
    }
    if (!json_is_number(val) || !isfinite(r->kwh = json_number_value(val)) || r->kwh < 0 || r->kwh > 1e6) {
        snprintf(err, errlen, "measurement_value must be a number from 0 to 1000000 (kWh)");
        return -1;
    }
    return 0;
}

ems_rc readings_parse_json(const json_t *root, reading **out, size_t *n, char *err, size_t errlen) {
    size_t count = json_is_array(root) ? json_array_size(root) : 1;
    if (count == 0 || count > READINGS_MAX_PER_MESSAGE) {
        snprintf(err, errlen, "a message holds 1 to %d readings", READINGS_MAX_PER_MESSAGE);
        return EMS_BAD_REQUEST;
    }
    reading *r = malloc(count * sizeof *r);
    if (!r) return EMS_NOMEM;
    for (size_t i = 0; i < count; i++) {
        const json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
        char why[160];
        if (one(o, &r[i], why, sizeof why)) {
            snprintf(err, errlen, "reading %zu: %s", i, why);
            free(r);
            return EMS_BAD_REQUEST;
        }
    }
    *out = r;
    *n = count;
    return EMS_OK;
}

ems_rc readings_parse(const char *body, size_t len, reading **out, size_t *n, char *err, size_t errlen) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return EMS_BAD_REQUEST;
    }
    ems_rc rc = readings_parse_json(root, out, n, err, errlen);
    json_decref(root);
    return rc;
}

char *readings_dump(const reading *r, size_t n, size_t *len) {
    /*
     * Written by hand: this is the balancer's hot path, and the shape is fixed.
     * The longest a reading can print: separator 1 + {"timestamp": 13 + an int64
     * 20 + ,"device_id":" 14 + the id 36 + ","measurement_value": 22 + a %.17g
     * double 24 + } 1 = 131 bytes.
     */
    size_t cap = n * 131 + 3, used = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[used++] = '[';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, cap - used, "%s{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":%.17g}",
                         i ? "," : "", (long long)r[i].ts_ms, r[i].device_id, r[i].kwh);
        if (w < 0 || (size_t)w >= cap - used) {
            free(buf);
            return NULL;
        }
        used += (size_t)w;
    }
    buf[used++] = ']';
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}
