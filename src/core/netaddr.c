/*
 * netaddr.c — IP addresses and CIDR ranges (see netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Sets out from 16 IPv6 bytes, folding an IPv4-mapped address to its 4. */
static void from_v6(const unsigned char a[16], ems_ip *out) {
    memset(out, 0, sizeof *out);
    if (memcmp(a, v4_mapped, sizeof v4_mapped) == 0) {
        out->len = 4;
        memcpy(out->b, a + 12, 4);
    } else {
        out->len = 16;
        memcpy(out->b, a, 16);
    }
}

int ems_ip_parse(const char *text, ems_ip *out) {
    unsigned char a[16];
    memset(out, 0, sizeof *out);
    if (!text) return 0;
    if (inet_pton(AF_INET, text, out->b) == 1) {
        out->len = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, text, a) != 1) return 0;
    from_v6(a, out);
    return 1;
}

int ems_ip_of_sockaddr(const struct sockaddr *sa, ems_ip *out) {
    memset(out, 0, sizeof *out);
    if (sa && sa->sa_family == AF_INET) {
        out->len = 4;
        memcpy(out->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 1;
    }
    if (sa && sa->sa_family == AF_INET6) {
        from_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, out);
        return 1;
    }
    return 0;
}

void ems_ip_text(const ems_ip *ip, char out[EMS_IP_TEXT_MAX]) {
    if (!inet_ntop(ip->len == 4 ? AF_INET : AF_INET6, ip->b, out, EMS_IP_TEXT_MAX)) snprintf(out, EMS_IP_TEXT_MAX, "?");
}

int ems_cidr_parse(const char *text, ems_cidr *out) {
    char addr[EMS_IP_TEXT_MAX];
    size_t n = strcspn(text, "/");
    memset(out, 0, sizeof *out);
    if (n == 0 || n >= sizeof addr) return 0;
    memcpy(addr, text, n);
    addr[n] = '\0';
    if (!ems_ip_parse(addr, &out->net)) return 0;
    /* ::ffff:a.b.c.d/N was written in IPv6's 128 bits; as an IPv4 rule its prefix is N - 96. */
    unsigned written = strchr(addr, ':') ? 128u : 32u, skip = written - out->net.len * 8u;
    out->bits = out->net.len * 8u;
    if (text[n] == '/') {
        char *end;
        unsigned long bits = strtoul(text + n + 1, &end, 10);
        if (end == text + n + 1 || *end || text[n + 1] == '-' || bits > written || bits < skip) return 0;
        out->bits = (unsigned)bits - skip;
    }
    return 1;
}

int ems_cidr_match(const ems_cidr *c, const ems_ip *ip) {
    if (c->net.len != ip->len) return 0;
    unsigned whole = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.b, ip->b, whole) != 0) return 0;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return !rest || !((c->net.b[whole] ^ ip->b[whole]) & mask);
}

ems_rc ems_cidr_list_parse(const char *text, ems_cidr *rules, size_t max, size_t *n, char *err, size_t errlen) {
    *n = 0;
    for (const char *p = text; p && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (len == 0) break;
        char entry[EMS_IP_TEXT_MAX + 8] = "";
        if (*n == max) {
            snprintf(err, errlen, "more than %zu entries", max);
            return EMS_BAD_REQUEST;
        }
        if (len < sizeof entry) memcpy(entry, p, len);
        if (len >= sizeof entry || !ems_cidr_parse(entry, &rules[*n])) {
            snprintf(err, errlen, "'%.*s' is not an IP address or CIDR", (int)(len < 64 ? len : 64), p);
            return EMS_BAD_REQUEST;
        }
        (*n)++;
        p += len;
    }
    return EMS_OK;
}

int ems_cidr_list_match(const ems_cidr *rules, size_t n, const ems_ip *ip) {
    for (size_t i = 0; i < n; i++)
        if (ems_cidr_match(&rules[i], ip)) return 1;
    return 0;
}
