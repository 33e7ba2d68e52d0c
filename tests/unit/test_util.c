/*
 * test_util.c — text checks (strict UTF-8, names that show), LIKE escaping,
 * URL escaping, and the auth role's limiter (logins, registrations,
 * password changes).
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

/* Every sequence a strict decoder refuses (RFC 3629 section 4), beside its nearest valid neighbours. */
static void text_is_strict_utf8(void **state) {
    (void)state;
    static const char *bad[] = {
        "\xe0\x80\xaf",             /* '/' overlong in three bytes */
        "\xe0\x9f\xbf",             /* U+07FF overlong in three bytes */
        "\xf0\x80\x80\xaf",         /* '/' overlong in four bytes */
        "\xf0\x8f\xbf\xbf",         /* U+FFFF overlong in four bytes */
        "\xc1\xbf",                 /* overlong in two bytes */
        "\xed\xa0\x80",             /* U+D800, a high surrogate */
        "\xed\xbf\xbf",             /* U+DFFF, a low surrogate */
        "\xed\xa0\xbd\xed\xb8\x80", /* a surrogate pair, CESU-8 style */
        "\xf4\x90\x80\x80",         /* U+110000 */
        "\xf5\x80\x80\x80",         /* lead byte past U+10FFFF */
        "\xf8\x88\x80\x80\x80",     /* five bytes */
        "\x80",                     /* a lone continuation byte */
        "a\xc3",                    /* cut after the lead byte */
        "\xf0\x9f\x98",             /* cut in the fourth byte */
        "\xe2\x82x",                /* a continuation replaced by ASCII */
        "\xc2\x85",                 /* U+0085, a C1 control (NEL) */
        "\xc2\x9f",                 /* U+009F, the last C1 control */
        "\x7f",                     /* DEL */
        "line\nbreak",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ems_text_ok(bad[i], 0, 100)) fail_msg("accepted bad[%zu]", i);
    }
    static const char *good[] = {
        "\xc2\xa0",         /* U+00A0, first after the C1 block */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800, shortest three-byte */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbf\xbd",     /* U+FFFD */
        "\xf0\x90\x80\x80", /* U+10000, shortest four-byte */
        "\xf0\x9f\x98\x80", /* an emoji */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!ems_text_ok(good[i], 1, 1)) fail_msg("refused good[%zu]", i);
    }
}

static void text_visible_needs_something_that_shows(void **state) {
    (void)state;
    static const char *blank[] = {
        "",
        "   ",
        "\xc2\xad",                 /* U+00AD soft hyphen */
        "\xe2\x80\x8b\xe2\x80\x8b", /* U+200B zero-width spaces */
        "\xef\xbb\xbf",             /* U+FEFF */
        "\xe2\x81\xa0",             /* U+2060 word joiner */
        "\xe2\x80\x8c\xe2\x80\x8d", /* ZWNJ, ZWJ */
        "\xcc\x81\xcc\x88",         /* combining acute and diaeresis, no base */
        "\xc2\xa0\xe3\x80\x80",     /* no-break and ideographic spaces */
        "\xe2\x80\xae",             /* RIGHT-TO-LEFT OVERRIDE */
        "\xe3\x85\xa4",             /* U+3164 Hangul filler */
        "\xe2\xa0\x80",             /* U+2800 blank Braille pattern */
        "\xef\xb8\x8f",             /* U+FE0F variation selector */
        "\xf3\xa0\x80\x81",         /* U+E0001 language tag */
        "\xe1\x85\x9f",             /* U+115F Hangul choseong filler */
        "\xe2\x81\xa4",             /* U+2064 invisible plus */
        "\xc0\xa1",                 /* not UTF-8 at all */
    };
    for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
        if (ems_text_visible(blank[i])) fail_msg("blank[%zu] taken as visible", i);
    }
    assert_false(ems_text_visible(NULL));
    static const char *shown[] = {
        "a",        " \xe2\x80\x8bx\xe2\x80\x8b ", "e\xcc\x81", "Zo\xc3\xab", "\xe6\x9d\x8e", "\xf0\x9f\x98\x80", ".",
        "\xd8\xa7", /* Arabic alef */
    };
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        if (!ems_text_visible(shown[i])) fail_msg("shown[%zu] taken as blank", i);
    }
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

static limiter *limiter_with(int rate, int pair, int user, int reg_min, int reg_hour, int pw) {
    limiter_conf c = {.login_rate = rate,
                      .login_max_failures = pair,
                      .login_max_failures_user = user,
                      .login_window_s = 300,
                      .register_rate = reg_min,
                      .register_hourly = reg_hour,
                      .password_max_failures = pw,
                      .password_window_s = 300};
    limiter *l = limiter_new(&c);
    assert_non_null(l);
    return l;
}

static void limiter_counts_failures_per_username_and_address(void **state) {
    (void)state;
    limiter *l = limiter_with(1000, 3, 100, 5, 50, 5);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) assert_int_equal(limiter_login(l, "10.0.0.1", "Bob", t), 0); /* all wrong */
    int wait = limiter_login(l, "10.0.0.1", "BOB", t + 1000);                                /* any case */
    assert_int_equal(wait, 299);                                                             /* Retry-After */
    /* The owner at another address is not locked out by the guesser's failures. */
    assert_int_equal(limiter_login(l, "10.0.0.2", "bob", t + 1000), 0);
    limiter_login_ok(l, "10.0.0.2", "bob", t + 1000);
    assert_int_equal(limiter_login(l, "10.0.0.1", "carol", t + 1), 0);        /* others unaffected */
    assert_int_equal(limiter_login(l, "10.0.0.1", "bob", t + 300 * 1000), 0); /* window over */
    limiter_login_ok(l, "10.0.0.1", "bob", t + 300 * 1000);
    for (int i = 0; i < 2; i++) assert_int_equal(limiter_login(l, "10.0.0.1", "bob", t + 300 * 1000 + 1), 0);
    limiter_free(l);
}

static void limiter_caps_failures_per_username_from_all_addresses(void **state) {
    (void)state;
    limiter *l = limiter_with(1000, 5, 20, 5, 50, 5);
    int64_t t = 2000000;
    char ip[32];
    for (int i = 0; i < 20; i++) {
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 250, i % 250);
        assert_int_equal(limiter_login(l, ip, "dave", t), 0);
    }
    assert_true(limiter_login(l, "192.168.9.9", "dave", t) > 0); /* ceiling: even a fresh address waits */
    assert_int_equal(limiter_login(l, "192.168.9.9", "erin", t), 0);
    limiter_free(l);
}

static void limiter_forgives_a_right_login(void **state) {
    (void)state;
    limiter *l = limiter_with(1000, 3, 100, 5, 50, 5);
    int64_t t = 3000000;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 2; i++) assert_int_equal(limiter_login(l, "10.0.0.1", "frank", t), 0);
        assert_int_equal(limiter_login(l, "10.0.0.1", "frank", t), 0); /* the third is right */
        limiter_login_ok(l, "10.0.0.1", "frank", t);
    }
    limiter_free(l);
}

static void limiter_caps_attempts_per_address(void **state) {
    (void)state;
    limiter *l = limiter_with(5, 100, 1000, 5, 50, 5);
    int64_t t = 5000000;
    for (int i = 0; i < 5; i++) assert_int_equal(limiter_login(l, "10.0.0.9", "u", t), 0);
    assert_int_equal(limiter_login(l, "10.0.0.9", "v", t + 30000), 30);
    assert_int_equal(limiter_login(l, "10.0.0.8", "v", t), 0);
    assert_int_equal(limiter_login(l, "10.0.0.9", "v", t + 60000), 0);
    limiter_free(l);
}

static void limiter_not_reset_by_other_usernames(void **state) {
    (void)state;
    limiter *l = limiter_with(1000000, 5, 1000, 5, 50, 5);
    int64_t t = 9000000;
    for (int i = 0; i < 5; i++) limiter_login(l, "10.0.0.1", "victimuser", t);
    /* A flood of other names, each failing once, must not evict the victim's count. */
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "x%d", i);
        limiter_login(l, "10.0.0.1", name, t);
    }
    assert_true(limiter_login(l, "10.0.0.1", "victimuser", t + 1) > 0);
    limiter_free(l);
}

static void limiter_caps_registrations_per_minute_and_hour(void **state) {
    (void)state;
    limiter *l = limiter_with(1000, 5, 100, 3, 5, 5);
    int64_t t = 10000000;
    for (int i = 0; i < 3; i++) assert_int_equal(limiter_register(l, "10.0.0.1", t), 0);
    assert_int_equal(limiter_register(l, "10.0.0.1", t + 15000), 45); /* the minute */
    assert_int_equal(limiter_register(l, "10.0.0.2", t), 0);          /* per address */
    for (int i = 0; i < 2; i++) assert_int_equal(limiter_register(l, "10.0.0.1", t + 60000), 0);
    assert_int_equal(limiter_register(l, "10.0.0.1", t + 120000), 3600 - 120); /* the hour */
    assert_int_equal(limiter_register(l, "10.0.0.1", t + 3600 * 1000), 0);
    limiter_free(l);
}

static void limiter_caps_wrong_old_passwords_per_account(void **state) {
    (void)state;
    limiter *l = limiter_with(1000, 5, 100, 5, 50, 3);
    int64_t t = 20000000;
    const char *id = "0b9d1a4e-2c1f-4f8e-9d3a-6a1b2c3d4e5f";
    for (int i = 0; i < 3; i++) assert_int_equal(limiter_password(l, id, t), 0);
    assert_int_equal(limiter_password(l, id, t + 100000), 200); /* the right one waits too */
    assert_int_equal(limiter_password(l, "another-account", t), 0);
    assert_int_equal(limiter_password(l, id, t + 300000), 0);
    limiter_password_ok(l, id, t + 300000);
    for (int i = 0; i < 3; i++) assert_int_equal(limiter_password(l, id, t + 300001), 0);
    limiter_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_rules),
        cmocka_unit_test(text_is_strict_utf8),
        cmocka_unit_test(text_visible_needs_something_that_shows),
        cmocka_unit_test(like_escapes_wildcards),
        cmocka_unit_test(url_escape),
        cmocka_unit_test(limiter_counts_failures_per_username_and_address),
        cmocka_unit_test(limiter_caps_failures_per_username_from_all_addresses),
        cmocka_unit_test(limiter_forgives_a_right_login),
        cmocka_unit_test(limiter_caps_attempts_per_address),
        cmocka_unit_test(limiter_not_reset_by_other_usernames),
        cmocka_unit_test(limiter_caps_registrations_per_minute_and_hour),
        cmocka_unit_test(limiter_caps_wrong_old_passwords_per_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
