/*
 * test_reading.c — readings (core/reading.c) in both accepted forms and
 * ISO-8601; the byte parser held to nasty bodies and to the jansson path's
 * verdicts on thousands of randomly edited ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reading.h"

#define ID "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"

/* 2026-11-20T11:10:00Z, the instant most cases name. */
#define T1110 1795173000000LL

/*
 * Timestamps as meters and clients write them.  Every case goes through
 * both parsers (the byte scanner and the jansson path), which must give the
 * same verdict and the same instant.  Expected instants were computed with
 * Python's datetime and zoneinfo (fold=0, java.time's rule), not with EMS.
 */
static const struct {
    const char *zone; /* reading_tz; NULL: UTC */
    const char *ts;   /* the JSON string's contents, as sent */
    int ok;
    int64_t ms;
} ts_cases[] = {
    /* Java's LocalDateTime.toString() drops zero seconds: the original simulator's form. */
    {NULL, "2026-11-20T11:10", 1, T1110},
    {NULL, "2025-01-15T00:10", 1, 1736899800000LL},
    {NULL, "2026-11-20T11:10:00", 1, T1110},
    {NULL, "2026-11-20t11:10:00", 1, T1110},
    {NULL, "2026-11-20 11:10", 1, T1110},
    {NULL, "2026-11-20T11:10Z", 1, T1110},
    {NULL, "2026-11-20T11:10:05z", 1, T1110 + 5000},
    {NULL, "2026-11-20T11:10:05.1Z", 1, T1110 + 5100},
    {NULL, "2026-11-20T11:10:05.123456789Z", 1, T1110 + 5123}, /* truncated to ms */
    {NULL, "2026-11-20T11:10:05.9999Z", 1, T1110 + 5999},      /* truncated, never rounded up */
    {NULL, "2026-11-20T11:10:05,5Z", 1, T1110 + 5500},
    {NULL, "2026-11-20T11:10:05.000000000000000000000001Z", 1, T1110 + 5000},
    {NULL, "2026-11-20T16:55+05:45", 1, T1110},
    {NULL, "2026-11-20T16:55:00+0545", 1, T1110},
    {NULL, "2026-11-20T13:10+02", 1, T1110},
    {NULL, "2026-11-20T01:10-10:00", 1, T1110},
    {NULL, "2026-11-20T11:10-00:00", 1, T1110},
    {NULL, "2026-11-21T01:10+14:00", 1, T1110},
    {NULL, "2026-11-19T23:10-12:00", 1, T1110},
    {NULL, "2026-11-20T11\\u003a10", 1, T1110},     /* an escaped colon is still a colon */
    {NULL, "2026-11-20T24:00", 1, 1795219200000LL}, /* the end of the day: the next day's 00:00 */
    {NULL, "2026-11-20T24:00:00.000Z", 1, 1795219200000LL},
    {NULL, "2026-12-31T23:59:60Z", 1, 1798761600000LL}, /* a leap second: the next minute's 00 */
    {NULL, "2099-12-31T23:59:59.999Z", 1, 4102444799999LL},
    {NULL, "2028-02-29T00:00Z", 1, 1835395200000LL},
    /* Refused: not a date-time, or not one ISO-8601 clients write. */
    {NULL, "2026-11-20", 0, 0},
    {NULL, "2026-11-20T11", 0, 0},
    {NULL, "2026-11-20T11:1", 0, 0},
    {NULL, "2026-11-20T11:10:5", 0, 0},
    {NULL, "2026-11-20T11:10:", 0, 0},
    {NULL, "2026-11-20T11:10:00.", 0, 0},
    {NULL, "2026-11-20T11:10:00.Z", 0, 0},
    {NULL, "2026-11-20T11:10.5", 0, 0},
    {NULL, "2026-11-20T24:01", 0, 0},
    {NULL, "2026-11-20T24:00:00.001", 0, 0},
    {NULL, "2026-11-20T25:00", 0, 0},
    {NULL, "2026-11-20T11:60", 0, 0},
    {NULL, "2026-11-20T11:10:61", 0, 0},
    {NULL, "2026-11-20T11:10+15:00", 0, 0},
    {NULL, "2026-11-20T11:10+14:01", 0, 0},
    {NULL, "2026-11-20T11:10+05:60", 0, 0},
    {NULL, "2026-11-20T11:10+5", 0, 0},
    {NULL, "2026-11-20T11:10+05:3", 0, 0},
    {NULL, "2026-11-20T11:10+053", 0, 0},
    {NULL, "2026-11-20T11:10+05:00:00", 0, 0},
    {NULL, "2026-11-20T11:10Zjunk", 0, 0},
    {NULL, "2026-11-20T11:10ZZ", 0, 0},
    {NULL, "2026-11-20T11:10 ", 0, 0},
    {NULL, " 2026-11-20T11:10", 0, 0},
    {NULL, "2026-11-20T11:10Z[UTC]", 0, 0},
    {NULL, "2026-11-20T11:10+01:00[Europe/Paris]", 0, 0},
    {NULL, "20261120T1110Z", 0, 0},
    {NULL, "2026-W47-5T11:10", 0, 0},
    {NULL, "2026-324T11:10", 0, 0},
    {NULL, "2026-11-20X11:10", 0, 0},
    {NULL, "2026-11-20T11-10", 0, 0},
    {NULL, "2026-02-29T00:00Z", 0, 0},
    {NULL, "2026-04-31T00:00", 0, 0},
    {NULL, "2026-13-01T00:00", 0, 0},
    {NULL, "2026-00-10T00:00", 0, 0},
    {NULL, "1999-12-31T23:59:59Z", 0, 0}, /* before 2000: a broken clock */
    {NULL, "2100-01-01T00:00Z", 0, 0},
    {NULL, "+2026-11-20T11:10", 0, 0},
    {NULL, "", 0, 0},
    /* reading_tz: a time without a zone is wall time there; an explicit zone still wins. */
    {"Europe/Bucharest", "2026-11-20T11:10", 1, 1795165800000LL},
    {"Europe/Bucharest", "2026-07-01 12:00", 1, 1782896400000LL},
    {"Europe/Bucharest", "2026-11-20T11:10Z", 1, T1110},
    {"Europe/Bucharest", "2026-10-25T03:30+02:00", 1, 1792891800000LL},
    /* A DST gap moves forward by the gap (03:30 does not exist: 04:30 EEST); an overlap takes the earlier instant. */
    {"Europe/Bucharest", "2026-03-29T03:30", 1, 1774747800000LL},
    {"Europe/Bucharest", "2026-10-25T03:30", 1, 1792888200000LL},
    {"Europe/Bucharest", "2026-11-20", 0, 0},
};

static void timestamps_same_in_both_parsers(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof ts_cases / sizeof ts_cases[0]; i++) {
        char body[256], err[256] = "";
        ems_tz *zone = NULL;
        reading *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (ts_cases[i].zone) assert_int_equal(ems_tz_open(ts_cases[i].zone, &zone, err, sizeof err), EMS_OK);
        snprintf(body, sizeof body, "{\"deviceId\":\"" ID "\",\"timestamp\":\"%s\",\"value\":1}", ts_cases[i].ts);
        ems_rc fast = readings_parse(body, strlen(body), zone, &a, &na, err, sizeof err);
        json_t *root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(root);
        ems_rc ref = readings_parse_json(root, zone, &b, &nb, err, sizeof err);
        json_decref(root);
        if (fast != ref || (fast == EMS_OK) != ts_cases[i].ok)
            fail_msg("\"%s\" (zone %s): byte parser %d, jansson %d, expected %s", ts_cases[i].ts,
                     ts_cases[i].zone ? ts_cases[i].zone : "UTC", fast, ref, ts_cases[i].ok ? "ok" : "refused");
        if (fast == EMS_OK && (a[0].ts_ms != ts_cases[i].ms || b[0].ts_ms != ts_cases[i].ms))
            fail_msg("\"%s\" (zone %s): %lld and %lld, expected %lld", ts_cases[i].ts,
                     ts_cases[i].zone ? ts_cases[i].zone : "UTC", (long long)a[0].ts_ms, (long long)b[0].ts_ms,
                     (long long)ts_cases[i].ms);
        if (fast != EMS_OK) assert_non_null(strstr(err, "timestamp"));
        free(a);
        free(b);
        ems_tz_free(zone);
    }
}

/* The reading zone comes from an option: "" is UTC, a bad name is refused naming the option. */
static void reading_zone_option(void **state) {
    (void)state;
    ems_tz *z = (ems_tz *)1;
    char err[256] = "";
    assert_int_equal(readings_zone_open("", &z, err, sizeof err), EMS_OK);
    assert_null(z);
    assert_int_equal(readings_zone_open(NULL, &z, err, sizeof err), EMS_OK);
    assert_null(z);
    assert_int_equal(readings_zone_open("Mars/Olympus", &z, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "reading_tz"));
    assert_int_equal(readings_zone_open("Asia/Kathmandu", &z, err, sizeof err), EMS_OK);
    assert_non_null(z);
    ems_tz_free(z);
}

static void parse_both_forms(void **state) {
    (void)state;
    reading *r;
    size_t n;
    char err[256];
    const char *seed = "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":0.25}";
    assert_int_equal(readings_parse(seed, strlen(seed), NULL, &r, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].device_id, ID);
    assert_int_equal(r[0].ts_ms, 1795773600000LL);
    assert_true(r[0].kwh == 0.25);
    free(r);
    const char *orig = "[{\"deviceId\":\"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\",\"timestamp\":\"2026-11-27T10:10:00Z\","
                       "\"value\":1},{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":2}]";
    assert_int_equal(readings_parse(orig, strlen(orig), NULL, &r, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].device_id, ID); /* upper case folded */
    assert_int_equal(r[0].ts_ms, 1795773600000LL + 600000);
    free(r);
}

static void refuse_bad_messages_whole(void **state) {
    (void)state;
    reading *r = NULL;
    size_t n;
    char err[256];
    const char *bad[] = {"not json",
                         "[]",
                         "42",
                         "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\"}",
                         "{\"timestamp\":1795773600000,\"device_id\":\"nope\",\"measurement_value\":1}",
                         "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":-1}",
                         "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":\"1\"}",
                         "{\"timestamp\":\"yesterday\",\"device_id\":\"" ID "\",\"measurement_value\":1}",
                         "{\"timestamp\":12,\"device_id\":\"" ID "\",\"measurement_value\":1}",
                         "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":1,\"extra\":1}",
                         "{\"timestamp\":1795773600000,\"deviceId\":\"" ID "\",\"measurement_value\":1}",
                         "[{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":1}, 5]",
                         "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"device_id\":\"" ID
                         "\",\"measurement_value\":1}",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(readings_parse(bad[i], strlen(bad[i]), NULL, &r, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_true(err[0] != '\0');
    }
}

/* A real timestamp far out of range is refused by its range, before any cast (UBSan caught the cast). */
static void huge_real_timestamps_refused(void **state) {
    (void)state;
    const char *bodies[] = {"{\"timestamp\":1.7e122,\"device_id\":\"" ID "\",\"measurement_value\":1}",
                            "{\"timestamp\":-1.7e122,\"device_id\":\"" ID "\",\"measurement_value\":1}",
                            "{\"timestamp\":9.3e18,\"device_id\":\"" ID "\",\"measurement_value\":1}", NULL};
    for (size_t i = 0; bodies[i]; i++) {
        reading *r = NULL;
        size_t n;
        char err[256] = "";
        json_t *root = json_loads(bodies[i], 0, NULL);
        assert_non_null(root);
        assert_int_equal(readings_parse_json(root, NULL, &r, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, "timestamp"));
        json_decref(root);
        assert_int_equal(readings_parse(bodies[i], strlen(bodies[i]), NULL, &r, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, "timestamp"));
    }
}

static void dump_round_trips(void **state) {
    (void)state;
    reading in[2] = {{ID, 1795773600000LL, 0.1}, {ID, 1795773600001LL, 1.0 / 3.0}};
    size_t len;
    char *s = readings_dump(in, 2, &len);
    reading *out;
    size_t n;
    char err[128];
    assert_int_equal(readings_parse(s, len, NULL, &out, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 2);
    assert_true(out[1].kwh == in[1].kwh); /* exact, not approximately */
    assert_int_equal(out[1].ts_ms, in[1].ts_ms);
    free(out);
    free(s);
}

static void dump_fits_the_longest_values(void **state) {
    (void)state;
    /* Values whose %.17g form is longest: tiny fractions and huge timestamps. */
    reading in[64];
    for (size_t i = 0; i < 64; i++) {
        memcpy(in[i].device_id, ID, EMS_ID_LEN);
        in[i].ts_ms = i % 2 ? INT64_MAX : INT64_MIN;
        in[i].kwh = i % 3 ? 0.0070000000000000001 : 1.2345678901234567e-300;
    }
    size_t len;
    char *s = readings_dump(in, 64, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    free(s);
    in[0].ts_ms = 1795773600000LL;
    in[0].kwh = 0.007;
    s = readings_dump(in, 1, &len);
    reading *out;
    size_t n;
    char err[128];
    assert_int_equal(readings_parse(s, len, NULL, &out, &n, err, sizeof err), EMS_OK);
    assert_true(out[0].kwh == 0.007);
    free(out);
    free(s);
}

/* ---- the body parser ------------------------------------------------------- */

#define UUID_A "7f3c2a10-1234-4abc-8def-012345678901"
#define NUL_BODY "[{\"timestamp\":1764000000000\0,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]"

/* readings_parse's verdict and, on refusal, a word of its reason. */
static const struct {
    const char *body;
    size_t len; /* 0: strlen(body) */
    int ok;
    size_t n;
    const char *why; /* part of the error when refused */
} parse_cases[] = {
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5}]", 0, 1, 1, NULL},
    {"{\"deviceId\":\"7F3C2A10-1234-4ABC-8DEF-012345678901\",\"timestamp\":\"2026-03-14T00:01:00+05:45\",\"value\":2}",
     0, 1, 1, NULL},
    {" \t\r\n[ {\"timestamp\" : 1.764e12 , \"device\\u005fid\" : \"" UUID_A "\" , \"measurement_value\" : 1e6 } ] \n",
     0, 1, 1, NULL},
    {"[{\"timestamp\":\"2026-03-14T00:01:00.1234567890123456789012345678901234567890123456789012345678901234567890Z\","
     "\"device_id\":\"" UUID_A "\",\"measurement_value\":0}]",
     0, 1, 1, NULL},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":-0.0},"
     "{\"timestamp\":1764000060000,\"device_id\":\"" UUID_A "\",\"measurement_value\":3}]",
     0, 1, 2, NULL},
    {"", 0, 0, 0, "malformed JSON"},
    {"   ", 0, 0, 0, "malformed JSON"},
    {"null", 0, 0, 0, "malformed JSON"},
    {"\"x\"", 0, 0, 0, "malformed JSON"},
    {"\xef\xbb\xbf[]", 0, 0, 0, "malformed JSON"},
    {"[]", 0, 0, 0, "1 to"},
    {"{}", 0, 0, 0, "needs exactly"},
    {"[1]", 0, 0, 0, "must be an object"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5},]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5}]x", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5}", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\"}]", 0, 0, 0, "duplicate"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5,\"x\":1}]", 0, 0, 0,
     "needs exactly"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"value\":0.5}]", 0, 0, 0, "needs exactly"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-01234567890\",\"measurement_value\":1}]", 0,
     0, 0, "UUID"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-01234567890g\",\"measurement_value\":1}]",
     0, 0, 0, "UUID"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-0123456789\\u00e9\",\"measurement_value\":"
     "1}]",
     0, 0, 0, "UUID"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-01234567890\\u0000\",\"measurement_value\":"
     "1}]",
     0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-01234567890\x01\",\"measurement_value\":1}"
     "]",
     0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-01234567890\xff\",\"measurement_value\":1}"
     "]",
     0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-0123456789\xc0\xaf\",\"measurement_value\":"
     "1}]",
     0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"7f3c2a10-1234-4abc-8def-0123456789\\ud800\",\"measurement_value\":"
     "1}]",
     0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"\\q\",\"measurement_value\":1}]", 0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":01764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1.}]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":.5}]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":+1}]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":-}]", 0, 0, 0, "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1e400}]", 0, 0, 0, "overflow"},
    {"[{\"timestamp\":99999999999999999999,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0, "too big"},
    {"[{\"timestamp\":1e300,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0, "timestamp"},
    {"[{\"timestamp\":1764000000000.5,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0, "timestamp"},
    {"[{\"timestamp\":1,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0, "timestamp"},
    {"[{\"timestamp\":\"2026-02-30T00:00:00Z\",\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0,
     "timestamp"},
    {"[{\"timestamp\":true,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}]", 0, 0, 0, "timestamp"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":\"0.5\"}]", 0, 0, 0,
     "measurement_value"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":-1}]", 0, 0, 0,
     "measurement_value"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1000001}]", 0, 0, 0,
     "measurement_value"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":NaN}]", 0, 0, 0,
     "malformed JSON"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":{\"a\":[1,{}]}}]", 0, 0, 0,
     "measurement_value"},
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":{\"a\":[1,}]}}]", 0, 0, 0,
     "malformed JSON"},
    /* jansson would drop a NUL after a number; it is not JSON, and refused. */
    {NUL_BODY, sizeof NUL_BODY - 1, 0, 0, "malformed JSON"},
    /* The first bad reading is named; a syntax error anywhere wins over it. */
    {"[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1},{\"timestamp\":1}]", 0, 0, 0,
     "reading 1"},
    {"[{\"timestamp\":1,\"device_id\":\"x\"},{\"timestamp\":1764000000000,]", 0, 0, 0, "malformed JSON"},
};

static void test_parse_nasty_bodies(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        reading *rs = NULL;
        size_t n = 0, len = parse_cases[i].len ? parse_cases[i].len : strlen(parse_cases[i].body);
        char err[256] = "";
        ems_rc rc = readings_parse(parse_cases[i].body, len, NULL, &rs, &n, err, sizeof err);
        if ((rc == EMS_OK) != parse_cases[i].ok || (!parse_cases[i].ok && !strstr(err, parse_cases[i].why)) ||
            (parse_cases[i].ok && n != parse_cases[i].n))
            fail_msg("case %zu: rc=%d n=%zu err=\"%s\"", i, rc, n, err);
        if (rc == EMS_OK) {
            for (size_t k = 0; k < n; k++) assert_true(ems_uuid_valid(rs[k].device_id));
            free(rs);
        }
    }
    /* Values as read: lower-cased id, ISO with an offset, the double strtod gives. */
    reading *rs = NULL;
    size_t n = 0;
    char err[256];
    const char *body = parse_cases[1].body;
    assert_int_equal(readings_parse(body, strlen(body), NULL, &rs, &n, err, sizeof err), EMS_OK);
    assert_string_equal(rs[0].device_id, UUID_A);
    assert_int_equal(rs[0].ts_ms, 1773446460000LL - (5 * 60 + 45) * 60000LL);
    assert_true(rs[0].kwh == 2.0);
    free(rs);
    body = parse_cases[2].body;
    assert_int_equal(readings_parse(body, strlen(body), NULL, &rs, &n, err, sizeof err), EMS_OK);
    assert_int_equal(rs[0].ts_ms, 1764000000000LL);
    assert_true(rs[0].kwh == 1e6);
    free(rs);
}

/* count readings, or count arrays nested depth deep; malloc'd. */
static char *many_readings(size_t count, size_t *len) {
    const char *one = "{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":1}";
    size_t each = strlen(one);
    char *body = malloc(count * (each + 1) + 2), *p = body;
    assert_non_null(body);
    *p++ = '[';
    for (size_t i = 0; i < count; i++) {
        memcpy(p, one, each);
        p += each;
        *p++ = i + 1 < count ? ',' : ']';
    }
    *len = (size_t)(p - body);
    return body;
}

static char *nested(size_t depth, size_t *len) {
    char *body = malloc(2 * depth);
    assert_non_null(body);
    memset(body, '[', depth);
    memset(body + depth, ']', depth);
    *len = 2 * depth;
    return body;
}

static void test_parse_limits(void **state) {
    (void)state;
    reading *rs = NULL;
    size_t n = 0, len;
    char err[256], *body = many_readings(READINGS_MAX_PER_MESSAGE + 1, &len);
    assert_int_equal(readings_parse(body, len, NULL, &rs, &n, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "1 to"));
    free(body);
    body = many_readings(READINGS_MAX_PER_MESSAGE, &len);
    assert_int_equal(readings_parse(body, len, NULL, &rs, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, READINGS_MAX_PER_MESSAGE);
    free(rs);
    free(body);
    /* Nesting: valid JSON (refused as a reading) up to jansson's depth of 2048, malformed past it. */
    body = nested(2048, &len);
    assert_int_equal(readings_parse(body, len, NULL, &rs, &n, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "must be an object"));
    free(body);
    body = nested(100000, &len);
    assert_int_equal(readings_parse(body, len, NULL, &rs, &n, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "depth"));
    free(body);
}

/* The jansson path, the reference the byte parser must agree with. */
static int parse_with_jansson(const char *body, size_t len, reading **out, size_t *n) {
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    char err[256];
    if (!root) return -1;
    ems_rc rc = readings_parse_json(root, NULL, out, n, err, sizeof err);
    json_decref(root);
    return rc == EMS_OK ? 0 : -1;
}

/*
 * Random edits of valid bodies (cuts, inserted JSON fragments, flipped
 * bytes): both parsers must take or refuse each, and read the same readings.
 */
static void test_parse_agrees_with_jansson(void **state) {
    (void)state;
    static const char *const seeds[] = {
        "[{\"timestamp\":1764000000000,\"device_id\":\"" UUID_A "\",\"measurement_value\":0.5}]",
        "{\"deviceId\":\"7F3C2A10-1234-4abc-8def-012345678901\",\"timestamp\":\"2026-03-14T00:01:00.123+05:45\","
        "\"value\":12}",
        "[{\"timestamp\":1.764e12,\"device_id\":\"" UUID_A "\",\"measurement_value\":1e-3},{\"value\":0,\"deviceId\":"
        "\"7f3c2a10-1234-4abc-8def-01234567890a\",\"timestamp\":\"2026-03-14 00:01:00Z\"}]",
        " [ { \"timestamp\" : \"2026-03-14T00:01:00\" , \"device\\u005fid\" : \"" UUID_A "\" , \"measurement_value\" : "
        "1000000 } ] \n",
    };
    static const char *const frags[] = {"\"",
                                        "\\",
                                        "\\u",
                                        "\\u0000",
                                        "\\ud800",
                                        "\\udc00",
                                        "\\ud83d\\ude00",
                                        "\xc3\xa9",
                                        "\xff",
                                        "\xed\xa0\x80",
                                        "\x01",
                                        "{",
                                        "}",
                                        "[",
                                        "]",
                                        ",",
                                        ":",
                                        "-",
                                        "0",
                                        "01",
                                        "1e",
                                        "1e400",
                                        "99999999999999999999",
                                        "-0",
                                        "1.",
                                        "true",
                                        "null",
                                        "\"x\":1",
                                        "\"timestamp\":1,",
                                        " ",
                                        "1764000000000",
                                        "\"2026-02-30T00:00:00Z\"",
                                        "\"2025-01-15T00:10\"",
                                        ".5",
                                        "+05",
                                        "Z",
                                        "T24:00"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char buf[1024];
    size_t accepted = 0;
    for (int it = 0; it < 20000; it++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        const char *s = seeds[seed % 4];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        for (int edits = 1 + (int)(seed >> 8) % 3; edits > 0; edits--) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t pos = n ? (size_t)(seed >> 16) % (n + 1) : 0;
            unsigned op = (unsigned)(seed % 3);
            if (op == 0 && pos < n) {
                size_t cut = 1 + (size_t)(seed >> 40) % 4;
                if (pos + cut > n) cut = n - pos;
                memmove(buf + pos, buf + pos + cut, n - pos - cut);
                n -= cut;
            } else if (op == 1) {
                const char *f = frags[(seed >> 24) % (sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                if (n + fl < sizeof buf) {
                    memmove(buf + pos + fl, buf + pos, n - pos);
                    memcpy(buf + pos, f, fl);
                    n += fl;
                }
            } else if (pos < n) {
                buf[pos] = (char)(seed >> 32);
            }
        }
        reading *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        char err[256];
        int fast = readings_parse(buf, n, NULL, &a, &na, err, sizeof err) == EMS_OK ? 0 : -1;
        int ref = parse_with_jansson(buf, n, &b, &nb);
        int same = fast == ref && (fast != 0 || na == nb);
        for (size_t k = 0; same && fast == 0 && k < na; k++)
            same = strcmp(a[k].device_id, b[k].device_id) == 0 && a[k].ts_ms == b[k].ts_ms &&
                   memcmp(&a[k].kwh, &b[k].kwh, sizeof a[k].kwh) == 0;
        if (!same) fail_msg("iteration %d: byte parser %d, jansson %d: %.*s", it, fast, ref, (int)n, buf);
        accepted += fast == 0;
        free(a);
        free(b);
    }
    assert_true(accepted > 100); /* the edits left enough valid bodies to compare values */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timestamps_same_in_both_parsers),
        cmocka_unit_test(reading_zone_option),
        cmocka_unit_test(parse_both_forms),
        cmocka_unit_test(refuse_bad_messages_whole),
        cmocka_unit_test(dump_round_trips),
        cmocka_unit_test(huge_real_timestamps_refused),
        cmocka_unit_test(dump_fits_the_longest_values),
        cmocka_unit_test(test_parse_nasty_bodies),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_agrees_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
