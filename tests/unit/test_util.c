/*
 * test_util.c — text checks, LIKE escaping, URL escaping, and the auth
 * role's login limiter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/limiter.h"
#include "util.h"

static void text_rules(void **state) {
    (void)state;
    assert_true(ems_text_ok("abc", 1, 3));
    assert_false(ems_text_ok("abcd", 1, 3));
    assert_false(ems_text_ok("", 1, 3));
    assert_true(ems_text_ok("", 0, 3));
    assert_true(ems_text_ok("Zoë Ångström", 1, 12)); /* characters, not bytes */
    assert_false(ems_text_ok("tab\there", 0, 100));
    assert_false(ems_text_ok("bad \xff byte", 0, 100));
    assert_false(ems_text_ok("overlong \xc0\xaf", 0, 100));
    assert_false(ems_text_ok("cut \xe2\x82", 0, 100));
    assert_false(ems_text_ok(NULL, 0, 10));
}

static void like_escapes_wildcards(void **state) {
    (void)state;
    char *p = ems_like_pattern("50%_a\\b");
    assert_string_equal(p, "%50\\%\\_a\\\\b%");
    free(p);
    p = ems_like_pattern("");
    assert_string_equal(p, "%%");
    free(p);
}

static void url_escape(void **state) {
    (void)state;
    char *s = ems_url_escape("p@ss:w/rd ok~");
    assert_string_equal(s, "p%40ss%3Aw%2Frd%20ok~");
    free(s);
}

static void limiter_counts_failures_per_username(void **state) {
    (void)state;
    limiter *l = limiter_new(1000, 3, 300);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        assert_true(limiter_allow(l, "10.0.0.1", "Bob", t));
        limiter_failure(l, "bob", t);
    }
    assert_false(limiter_allow(l, "10.0.0.2", "BOB", t + 1)); /* any address, any case */
    assert_true(limiter_allow(l, "10.0.0.1", "carol", t + 1)); /* others unaffected */
    assert_true(limiter_allow(l, "10.0.0.1", "bob", t + 300 * 1000)); /* window over */
    limiter_failure(l, "bob", t + 300 * 1000);
    limiter_success(l, "bob");
    assert_true(limiter_allow(l, "10.0.0.1", "bob", t + 300 * 1000 + 1));
    limiter_free(l);
}

static void limiter_caps_attempts_per_address(void **state) {
    (void)state;
    limiter *l = limiter_new(5, 100, 300);
    int64_t t = 5000000;
    for (int i = 0; i < 5; i++) assert_true(limiter_allow(l, "10.0.0.9", "u", t));
    assert_false(limiter_allow(l, "10.0.0.9", "v", t));
    assert_true(limiter_allow(l, "10.0.0.8", "v", t));
    assert_true(limiter_allow(l, "10.0.0.9", "v", t + 60000));
    limiter_free(l);
}

static void limiter_not_reset_by_other_usernames(void **state) {
    (void)state;
    limiter *l = limiter_new(1000000, 5, 300);
    int64_t t = 9000000;
    for (int i = 0; i < 5; i++) limiter_failure(l, "victimuser", t);
    /* A flood of other names, each failing once, must not evict the victim's count. */
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "x%d", i);
        limiter_failure(l, name, t);
    }
    assert_false(limiter_allow(l, "10.0.0.1", "victimuser", t + 1));
    limiter_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_rules),
        cmocka_unit_test(like_escapes_wildcards),
        cmocka_unit_test(url_escape),
        cmocka_unit_test(limiter_counts_failures_per_username),
        cmocka_unit_test(limiter_caps_attempts_per_address),
        cmocka_unit_test(limiter_not_reset_by_other_usernames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
