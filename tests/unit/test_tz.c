/*
 * test_tz.c — zones, local days and ISO-8601 (core/tz.c): 23 and 25 hours on
 * DST days, +05:30 and +05:45, the gap and overlap rule, and the ISO-8601
 * forms real clients send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

static ems_tz *zone(const char *name) {
    ems_tz *z = NULL;
    char err[160];
    assert_int_equal(ems_tz_open(name, &z, err, sizeof err), EMS_OK);
    return z;
}

static void check_day(const char *tz, int y, int m, int d, size_t hours, const char *first, const char *last) {
    ems_local_hour h[EMS_TZ_MAX_HOURS];
    size_t n;
    int64_t end;
    char buf[32];
    ems_tz *z = zone(tz);
    assert_int_equal(ems_tz_day_hours(z, y, m, d, h, &n, &end), 0);
    ems_tz_free(z);
    assert_int_equal(n, hours);
    ems_iso8601_local(h[0].start_ms, h[0].offset_ms, buf);
    assert_string_equal(buf, first);
    ems_iso8601_local(h[n - 1].start_ms, h[n - 1].offset_ms, buf);
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
    ems_tz *z = zone("Asia/Kathmandu");
    assert_int_equal(ems_tz_day_start(z, 2026, 11, 27, &start), 0);
    ems_tz_free(z);
    assert_int_equal(start % (15 * 60000), 0); /* a local hour is whole quarter-hour buckets */
    assert_int_equal(start, 1795773600000LL - (15 * 3600000LL + 45 * 60000LL)); /* 2026-11-26T18:15Z */
}

static void bad_zones_and_dates(void **state) {
    (void)state;
    int y, m, d;
    assert_false(ems_tz_valid("Nowhere/City"));
    assert_false(ems_tz_valid("../../etc/passwd"));
    assert_false(ems_tz_valid(""));
    assert_true(ems_tz_valid("UTC"));
    assert_true(ems_tz_valid("Europe/Bucharest"));
    assert_int_equal(ems_date_parse("2026-02-28", &y, &m, &d), 0);
    assert_int_not_equal(ems_date_parse("2026-02-29", &y, &m, &d), 0);
    assert_int_not_equal(ems_date_parse("2026-2-28", &y, &m, &d), 0);
    assert_int_not_equal(ems_date_parse("2026-02-28x", &y, &m, &d), 0);
}

/* "Yesterday" and "a week ago" as the assistant asks them, in zones behind and ahead of UTC. */
static void local_dates_back(void **state) {
    (void)state;
    char d[11];
    const int64_t t = 1774744200000LL; /* 2026-03-29T00:30:00Z */
    static const struct {
        const char *zone;
        int back;
        const char *date;
    } cases[] = {
        {"UTC", 0, "2026-03-29"},
        {"UTC", 1, "2026-03-28"},
        {"America/New_York", 1, "2026-03-27"}, /* 20:30 on the 28th there */
        {"Asia/Kathmandu", 7, "2026-03-22"},   /* 06:15 on the 29th there */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ems_tz *z = NULL;
        assert_int_equal(ems_tz_open(cases[i].zone, &z, NULL, 0), EMS_OK);
        assert_int_equal(ems_tz_local_date(z, t, cases[i].back, d), 0);
        assert_string_equal(d, cases[i].date);
        ems_tz_free(z);
    }
    assert_false(ems_tz_valid("Mars/Olympus"));
    assert_false(ems_tz_valid("+02:00"));
}

/* The wall-time rule: a gap moves forward by the gap, an overlap takes the earlier instant (java.time's). */
static void gap_and_overlap(void **state) {
    (void)state;
    ems_tz *z = zone("Europe/Bucharest");
    int64_t ms;
    ems_civil gap = {2026, 3, 29, 3, 30, 0, 0}, overlap = {2026, 10, 25, 3, 30, 0, 0};
    assert_int_equal(ems_tz_from_local(z, &gap, &ms), 0);
    assert_int_equal(ms, 1774747800000LL); /* 2026-03-29T01:30Z = 04:30 EEST */
    assert_int_equal(ems_tz_from_local(z, &overlap, &ms), 0);
    assert_int_equal(ms, 1792888200000LL); /* 2026-10-25T00:30Z = 03:30 EEST, the first time */
    ems_tz_free(z);
    char buf[40];
    ems_iso8601_utc(1710028800123LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-03-10T00:00:00.123Z");
    ems_iso_time t;
    assert_int_equal(ems_iso8601_scan("2026-11-20", &t), 0);
    assert_false(t.has_time);
    assert_int_not_equal(ems_iso8601_parse("2026-11-20", NULL, &ms), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dst_days),         cmocka_unit_test(odd_offsets),     cmocka_unit_test(bad_zones_and_dates),
        cmocka_unit_test(local_dates_back), cmocka_unit_test(gap_and_overlap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
