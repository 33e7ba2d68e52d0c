/*
 * encode.c — reading bodies written with snprintf into one buffer: the hot
 * path of a backfill makes tens of thousands a second, and the fields are
 * fixed (a UUID, an integer or an ISO time, a decimal), so nothing needs
 * escaping.
 */
#include "encode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

/* Longest reading object: keys, a 36-character id, a 24-character time, a value. */
#define READING_MAX 192

ems_rc sim_buf_reserve(sim_buf *b, size_t extra) {
    size_t cap;
    char *p;
    if (b->len + extra + 1 <= b->cap) return EMS_OK;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    if (!(p = realloc(b->p, cap))) return EMS_NOMEM;
    b->p = p;
    b->cap = cap;
    return EMS_OK;
}

ems_rc sim_buf_append(sim_buf *b, const char *s, size_t n) {
    if (sim_buf_reserve(b, n) != EMS_OK) return EMS_NOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return EMS_OK;
}

void sim_buf_free(sim_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The decimal digits of v at p (no NUL); returns the end. */
static char *put_u64(char *p, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Written by hand, not with snprintf: a backfill formats hundreds of thousands a second. */
size_t sim_format_kwh(int64_t micro, char *buf, size_t cap) {
    uint64_t m = micro < 0 ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro, frac = m % 1000000;
    char tmp[32], *p = tmp; /* "-" + 14 digits + "." + 6 at most */
    if (micro < 0) *p++ = '-';
    p = put_u64(p, m / 1000000);
    *p++ = '.';
    for (uint64_t div = 100000; div; div /= 10) *p++ = (char)('0' + frac / div % 10);
    size_t n = (size_t)(p - tmp);
    if (cap) {
        size_t keep = n < cap ? n : cap - 1;
        memcpy(buf, tmp, keep);
        buf[keep] = '\0';
    }
    return n;
}

/* The timestamp as a JSON value: a number, or a quoted ISO-8601 string. */
static void format_ts(int64_t ms, int iso, char *buf, size_t cap) {
    if (iso) {
        buf[0] = '"';
        size_t n = ems_iso8601_utc(ms, buf + 1, cap - 2);
        buf[n + 1] = '"';
        buf[n + 2] = '\0';
    } else if (ms >= 0 && cap > 20) {
        *put_u64(buf, (uint64_t)ms) = '\0';
    } else {
        snprintf(buf, cap, "%lld", (long long)ms);
    }
}

/* Key names per format: timestamp, device, value. */
static const char *const keys[][3] = {
    [EMS_SIM_FORMAT_SEED] = {"timestamp", "device_id", "measurement_value"},
    [EMS_SIM_FORMAT_ORIGINAL] = {"timestamp", "deviceId", "value"},
};

/* Order of the fields per format, as indexes into keys[fmt] (and the values). */
static const int field_order[][3] = {
    [EMS_SIM_FORMAT_SEED] = {0, 1, 2},
    [EMS_SIM_FORMAT_ORIGINAL] = {1, 0, 2},
};

/* Appends "key":value at p (value a ready-made JSON value); returns the end. */
static char *put_field(char *p, const char *key, const char *value) {
    size_t k = strlen(key), v = strlen(value);
    *p++ = '"';
    memcpy(p, key, k);
    p += k;
    *p++ = '"';
    *p++ = ':';
    memcpy(p, value, v);
    return p + v;
}

/* Writes {"<ts key>":<ts>,"<dev key>":<dev>,"<value key>":<value>} from ready-made JSON values. */
static ems_rc put_object(sim_buf *b, ems_sim_format fmt, const char *ts, const char *dev, const char *value) {
    const char *const values[3] = {ts, dev, value};
    if (sim_buf_reserve(b, READING_MAX + strlen(ts) + strlen(dev) + strlen(value)) != EMS_OK) return EMS_NOMEM;
    char *p = b->p + b->len;
    for (int i = 0; i < 3; i++) {
        int f = field_order[fmt][i];
        *p++ = i ? ',' : '{';
        p = put_field(p, keys[fmt][f], values[f]);
    }
    *p++ = '}';
    *p = '\0';
    b->len = (size_t)(p - b->p);
    return EMS_OK;
}

ems_rc sim_encode_reading(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    char ts[48], dev[48], value[32];
    size_t id = strlen(r->device_id);
    format_ts(r->ts_ms, iso, ts, sizeof ts);
    if (id > sizeof dev - 3) id = sizeof dev - 3;
    dev[0] = '"';
    memcpy(dev + 1, r->device_id, id);
    dev[id + 1] = '"';
    dev[id + 2] = '\0';
    sim_format_kwh(r->micro, value, sizeof value);
    return put_object(b, fmt, ts, dev, value);
}

/* ---- malformed bodies ---------------------------------------------------- */

typedef ems_rc (*malformed_fn)(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso);

/* A good body cut in the middle: never valid JSON. */
static ems_rc mf_truncated(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    size_t start = b->len;
    ems_rc rc = sim_encode_reading(b, r, fmt, iso);
    if (rc == EMS_OK) {
        b->len = start + (b->len - start) / 2;
        b->p[b->len] = '\0';
    }
    return rc;
}

static ems_rc mf_missing_value(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    char ts[48];
    int n;
    format_ts(r->ts_ms, iso, ts, sizeof ts);
    if (sim_buf_reserve(b, READING_MAX) != EMS_OK) return EMS_NOMEM;
    n = snprintf(b->p + b->len, b->cap - b->len, "{\"%s\":%s,\"%s\":\"%s\"}", keys[fmt][0], ts, keys[fmt][1],
                 r->device_id);
    if (n < 0) return EMS_INTERNAL;
    b->len += (size_t)n;
    return EMS_OK;
}

static ems_rc mf_wrong_type(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    char ts[48], dev[48];
    format_ts(r->ts_ms, iso, ts, sizeof ts);
    snprintf(dev, sizeof dev, "\"%s\"", r->device_id);
    return put_object(b, fmt, ts, dev, "\"lots\"");
}

static ems_rc mf_bad_device_id(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    char ts[48], value[32];
    format_ts(r->ts_ms, iso, ts, sizeof ts);
    sim_format_kwh(r->micro, value, sizeof value);
    return put_object(b, fmt, ts, "\"not-a-uuid\"", value);
}

static ems_rc mf_bad_timestamp(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    char dev[48], value[32];
    (void)iso;
    snprintf(dev, sizeof dev, "\"%s\"", r->device_id);
    sim_format_kwh(r->micro, value, sizeof value);
    return put_object(b, fmt, "\"yesterday at noon\"", dev, value);
}

static ems_rc mf_not_an_object(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso) {
    (void)r;
    (void)fmt;
    (void)iso;
    return sim_buf_append(b, "\"reading\"", 9);
}

static const struct {
    const char *name;
    malformed_fn fn;
} malformed_kinds[SIM_MALFORMED_KINDS] = {
    {"truncated", mf_truncated},         {"missing_value", mf_missing_value}, {"wrong_type", mf_wrong_type},
    {"bad_device_id", mf_bad_device_id}, {"bad_timestamp", mf_bad_timestamp}, {"not_an_object", mf_not_an_object},
};

const char *sim_malformed_name(unsigned kind) { return malformed_kinds[kind % SIM_MALFORMED_KINDS].name; }

ems_rc sim_encode_malformed(sim_buf *b, const sim_reading *r, unsigned kind, ems_sim_format fmt, int iso) {
    return malformed_kinds[kind % SIM_MALFORMED_KINDS].fn(b, r, fmt, iso);
}
