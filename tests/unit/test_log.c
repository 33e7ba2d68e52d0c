/*
 * test_log.c — the log lines: one per event, key=value, and the limit on
 * repeated lines: at most log_rate_limit lines of one event per window, then
 * one "log.suppressed" line that counts the rest, so that a flood of the
 * same event (a dead letter per request, say) cannot fill the disk and the
 * count is never lost.
 *
 * stderr is pointed at a temporary file while a test logs, then read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"

static fx_capture captured;

static void capture_start(void) { assert_int_equal(fx_capture_start(&captured), 0); }

/* Restores stderr; returns what was written meanwhile (malloc'd). */
static char *capture_end(void) {
    char *text = fx_capture_end(&captured);
    assert_non_null(text);
    return text;
}

static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* With the defaults, 100 lines of one event in a burst leave at most 10 of them. */
static void test_a_flood_of_one_event_is_limited(void **state) {
    (void)state;
    ems_log_set_level(EMS_LOG_INFO);
    capture_start();
    for (int i = 0; i < 100; i++) ems_log(EMS_LOG_WARN, "t.flood", "i=%d", i);
    ems_log(EMS_LOG_INFO, "t.other", "x=1");
    char *out = capture_end();
    assert_int_equal(count_of(out, "event=t.flood "), 10);
    assert_int_equal(count_of(out, "event=t.other x=1"), 1); /* another event has its own budget */
    free(out);
}

/* A window's suppressed lines are counted in one line when the event comes again after the window. */
static void test_suppressed_lines_are_counted(void **state) {
    (void)state;
    ems_log_set_rate(5, 200);
    capture_start();
    for (int i = 0; i < 50; i++) ems_log(EMS_LOG_WARN, "t.counted", "i=%d", i);
    usleep(250 * 1000);
    ems_log(EMS_LOG_WARN, "t.counted", "i=last");
    char *out = capture_end();
    assert_int_equal(count_of(out, "event=t.counted "), 6);
    assert_int_equal(count_of(out, "level=warn event=log.suppressed of=t.counted lines=45 window_ms=200"), 1);
    /* The summary comes before the line that ended the window. */
    assert_true(strstr(out, "event=log.suppressed") < strstr(out, "i=last"));
    free(out);
    ems_log_set_rate(EMS_LOG_RATE_LIMIT_DEFAULT, EMS_LOG_RATE_WINDOW_MS_DEFAULT);
}

/* An event that went quiet: its count is told by any later line after the window, or by ems_log_flush. */
static void test_quiet_events_are_told_by_a_sweep_or_a_flush(void **state) {
    (void)state;
    ems_log_set_rate(2, 100);
    capture_start();
    for (int i = 0; i < 7; i++) ems_log(EMS_LOG_ERROR, "t.quiet", "i=%d", i);
    usleep(1100 * 1000); /* past the window and the sweep's second */
    ems_log(EMS_LOG_INFO, "t.someone_else", "x=1");
    for (int i = 0; i < 4; i++) ems_log(EMS_LOG_INFO, "t.flushed", "i=%d", i);
    ems_log_flush();
    char *out = capture_end();
    assert_int_equal(count_of(out, "event=log.suppressed of=t.quiet lines=5 "), 1);
    assert_int_equal(count_of(out, "event=log.suppressed of=t.flushed lines=2 "), 1);
    free(out);
    ems_log_set_rate(EMS_LOG_RATE_LIMIT_DEFAULT, EMS_LOG_RATE_WINDOW_MS_DEFAULT);
}

/* 0 lines: no limit. */
static void test_no_limit(void **state) {
    (void)state;
    ems_log_set_rate(0, 1000);
    capture_start();
    for (int i = 0; i < 300; i++) ems_log(EMS_LOG_INFO, "t.unlimited", "i=%d", i);
    char *out = capture_end();
    assert_int_equal(count_of(out, "event=t.unlimited "), 300);
    assert_int_equal(count_of(out, "log.suppressed"), 0);
    free(out);
    ems_log_set_rate(EMS_LOG_RATE_LIMIT_DEFAULT, EMS_LOG_RATE_WINDOW_MS_DEFAULT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_flood_of_one_event_is_limited),
        cmocka_unit_test(test_suppressed_lines_are_counted),
        cmocka_unit_test(test_quiet_events_are_told_by_a_sweep_or_a_flush),
        cmocka_unit_test(test_no_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
