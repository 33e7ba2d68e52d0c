/*
 * test_netaddr.c — addresses and CIDR ranges: parsing, IPv4-mapped IPv6,
 * prefix lengths that end inside a byte, and lists with bad entries named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"

static int in(const char *rule, const char *addr) {
    ems_cidr c;
    ems_ip ip;
    assert_true(ems_cidr_parse(rule, &c));
    assert_true(ems_ip_parse(addr, &ip));
    return ems_cidr_match(&c, &ip);
}

static void ranges_match_by_prefix(void **state) {
    (void)state;
    assert_true(in("10.0.0.0/8", "10.255.1.2"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_true(in("172.16.0.0/12", "172.31.255.255"));
    assert_false(in("172.16.0.0/12", "172.32.0.0"));
    assert_true(in("192.168.1.7", "192.168.1.7"));
    assert_false(in("192.168.1.7", "192.168.1.8"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_true(in("fc00::/7", "fd12::1"));
    assert_false(in("fc00::/7", "fe80::1"));
    assert_false(in("::1", "127.0.0.1"));               /* families differ */
    assert_true(in("127.0.0.0/8", "::ffff:127.0.0.2")); /* a dual-stack socket's view of IPv4 */
    assert_true(in("::ffff:10.0.0.0/104", "10.1.2.3")); /* a mapped rule is an IPv4 rule */
}

static void sockaddrs_fold_mapped_ipv6(void **state) {
    (void)state;
    struct sockaddr_in6 six = {.sin6_family = AF_INET6};
    static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 2};
    memcpy(six.sin6_addr.s6_addr, mapped, 16);
    ems_ip ip;
    char text[EMS_IP_TEXT_MAX];
    assert_true(ems_ip_of_sockaddr((const struct sockaddr *)&six, &ip));
    assert_int_equal(ip.len, 4);
    ems_ip_text(&ip, text);
    assert_string_equal(text, "127.0.0.2");
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    assert_false(ems_ip_of_sockaddr(&unix_sa, &ip));
    assert_false(ems_ip_parse("local", &ip));
}

static void lists_name_the_bad_entry(void **state) {
    (void)state;
    ems_cidr rules[3];
    size_t n = 99;
    char err[128] = "";
    assert_int_equal(ems_cidr_list_parse(" 10.0.0.0/8, ::1 ,192.168.0.1", rules, 3, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ems_cidr_list_parse("", rules, 3, &n, err, sizeof err), EMS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(ems_cidr_list_parse("1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", rules, 3, &n, err, sizeof err),
                     EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "more than 3"));
    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/",   "10.0.0/8",   "::1/129",
                         "gateway",     "10.0.0.1/8x", "1.2.3.4/-1", NULL};
    for (size_t i = 0; bad[i]; i++) {
        assert_int_equal(ems_cidr_list_parse(bad[i], rules, 3, &n, err, sizeof err), EMS_BAD_REQUEST);
        assert_non_null(strstr(err, bad[i]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranges_match_by_prefix),
        cmocka_unit_test(sockaddrs_fold_mapped_ipv6),
        cmocka_unit_test(lists_name_the_bad_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
