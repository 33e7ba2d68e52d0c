/*
 * test_monitoring_time.c — readings in both accepted forms, ISO-8601, and
 * local days in IANA zones: 23 and 25 hours on DST days, +05:30 and +05:45.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "monitoring/reading.h"
#include "monitoring/tz.h"

#define ID "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"

static void iso8601_forms(void **state) {
    (void)state;
    int64_t ms;
    assert_int_equal(iso8601_parse("2026-11-27T10:00:00Z", &ms), 0);
    assert_int_equal(ms, 1795773600000LL);
    assert_int_equal(iso8601_parse("2026-11-27T10:00:00", &ms), 0);
    assert_int_equal(ms, 1795773600000LL);
    assert_int_equal(iso8601_parse("2026-11-27T15:45:00.250+05:45", &ms), 0);
    assert_int_equal(ms, 1795773600250LL);
    assert_int_equal(iso8601_parse("2026-11-27T05:00:00-0500", &ms), 0);
    assert_int_equal(ms, 1795773600000LL);
    const char *bad[] = {"2026-11-27", "2026-02-30T00:00:00Z", "2026-11-27T25:00:00Z", "2026-11-27T10:00:00Zjunk",
                         "x026-11-27T10:00:00Z", "2026-11-27T10:00:00.Z", "", NULL};
    for (size_t i = 0; bad[i]; i++) assert_int_not_equal(iso8601_parse(bad[i], &ms), 0);
}

static void parse_both_forms(void **state) {
    (void)state;
    reading *r;
    size_t n;
    char err[256];
    const char *seed = "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":0.25}";
    assert_int_equal(readings_parse(seed, strlen(seed), &r, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].device_id, ID);
    assert_int_equal(r[0].ts_ms, 1795773600000LL);
    assert_true(r[0].kwh == 0.25);
    free(r);
    const char *orig = "[{\"deviceId\":\"6F1C2B3A-4D5E-4F60-8A7B-9C0D1E2F3A4B\",\"timestamp\":\"2026-11-27T10:10:00Z\","
                       "\"value\":1},{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"measurement_value\":2}]";
    assert_int_equal(readings_parse(orig, strlen(orig), &r, &n, err, sizeof err), EMS_OK);
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
    const char *bad[] = {
        "not json",
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
        "{\"timestamp\":1795773600000,\"device_id\":\"" ID "\",\"device_id\":\"" ID "\",\"measurement_value\":1}",
        NULL};
    for (size_t i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(readings_parse(bad[i], strlen(bad[i]), &r, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_true(err[0] != '\0');
    }
}

/* A real timestamp far out of range is refused by its range, before any cast (UBSan caught the cast). */
static void huge_real_timestamps_refused(void **state) {
    (void)state;
    const char *bodies[] = {
        "{\"timestamp\":1.7e122,\"device_id\":\"" ID "\",\"measurement_value\":1}",
        "{\"timestamp\":-1.7e122,\"device_id\":\"" ID "\",\"measurement_value\":1}",
        "{\"timestamp\":9.3e18,\"device_id\":\"" ID "\",\"measurement_value\":1}",
        NULL};
    for (size_t i = 0; bodies[i]; i++) {
        reading *r = NULL;
        size_t n;
        char err[256] = "";
        json_t *root = json_loads(bodies[i], 0, NULL);
        assert_non_null(root);
        assert_int_equal(readings_parse_json(root, &r, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, "timestamp"));
        json_decref(root);
        assert_int_equal(readings_parse(bodies[i], strlen(bodies[i]), &r, &n, err, sizeof err), EMS_BAD_REQUEST);
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
    assert_int_equal(readings_parse(s, len, &out, &n, err, sizeof err), EMS_OK);
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
    assert_int_equal(readings_parse(s, len, &out, &n, err, sizeof err), EMS_OK);
    assert_true(out[0].kwh == 0.007);
    free(out);
    free(s);
}

static void check_day(const char *tz, int y, int m, int d, size_t hours, const char *first, const char *last) {
    local_hour h[TZ_MAX_HOURS];
    size_t n;
    int64_t end;
    char buf[32];
    assert_int_equal(tz_day_hours(tz, y, m, d, h, &n, &end), 0);
    assert_int_equal(n, hours);
    tz_format(h[0].start_ms, h[0].offset_ms, buf);
    assert_string_equal(buf, first);
    tz_format(h[n - 1].start_ms, h[n - 1].offset_ms, buf);
    assert_string_equal(buf, last);
    assert_int_equal(end - h[0].start_ms, (int64_t)hours * 3600000);
}

static void dst_days(void **state) {
    (void)state;
    check_day("Europe/Bucharest", 2026, 3, 29, 23, "2026-03-29T00:00:00+02:00", "2026-03-29T23:00:00+03:00");
    check_day("Europe/Bucharest", 2026, 10, 25, 25, "2026-10-25T00:00:00+03:00", "2026-10-25T23:00:00+02:00");
    check_day("America/New_York", 2026, 11, 1, 25, "2026-11-01T00:00:00-04:00", "2026-11-01T23:00:00-05:00");
    check_day("Europe/Bucharest", 2026, 11, 27, 24, "2026-11-27T00:00:00+02:00", "2026-11-27T23:00:00+02:00");
}

static void odd_offsets(void **state) {
    (void)state;
    check_day("Asia/Kathmandu", 2026, 11, 27, 24, "2026-11-27T00:00:00+05:45", "2026-11-27T23:00:00+05:45");
    check_day("Asia/Kolkata", 2026, 11, 27, 24, "2026-11-27T00:00:00+05:30", "2026-11-27T23:00:00+05:30");
    int64_t start;
    assert_int_equal(tz_day_start("Asia/Kathmandu", 2026, 11, 27, &start), 0);
    assert_int_equal(start % (15 * 60000), 0); /* a local hour is whole quarter-hour buckets */
    assert_int_equal(start, 1795773600000LL - (15 * 3600000LL + 45 * 60000LL)); /* 2026-11-26T18:15Z */
}

static void bad_zones_and_dates(void **state) {
    (void)state;
    int y, m, d;
    assert_false(tz_valid("Nowhere/City"));
    assert_false(tz_valid("../../etc/passwd"));
    assert_false(tz_valid(""));
    assert_true(tz_valid("UTC"));
    assert_true(tz_valid("Europe/Bucharest"));
    assert_int_equal(tz_parse_date("2026-02-28", &y, &m, &d), 0);
    assert_int_not_equal(tz_parse_date("2026-02-29", &y, &m, &d), 0);
    assert_int_not_equal(tz_parse_date("2026-2-28", &y, &m, &d), 0);
    assert_int_not_equal(tz_parse_date("2026-02-28x", &y, &m, &d), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso8601_forms),    cmocka_unit_test(parse_both_forms),
        cmocka_unit_test(refuse_bad_messages_whole), cmocka_unit_test(dump_round_trips),
        cmocka_unit_test(huge_real_timestamps_refused),
        cmocka_unit_test(dump_fits_the_longest_values),
        cmocka_unit_test(dst_days),         cmocka_unit_test(odd_offsets),
        cmocka_unit_test(bad_zones_and_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
