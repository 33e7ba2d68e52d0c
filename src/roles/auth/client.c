/*
 * client.c — the client address behind a trusted gateway.
 *
 * Addresses are compared as bytes: an IPv4 address seen as IPv6
 * (::ffff:a.b.c.d, on a dual-stack socket) is taken as the IPv4 one, so that
 * one rule covers both ways a gateway may connect.
 */
#include "client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BEHIND_GATEWAY "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses an address into family and bytes.  0 if it is not one. */
static int addr_parse(const char *s, int *family, unsigned char addr[16]) {
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, s, addr) != 1) return 0;
    *family = 6;
    if (memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = 4;
    }
    return 1;
}

/* Parses "address" or "address/bits".  0 if malformed. */
static int cidr_parse(const char *entry, auth_cidr *c) {
    char text[64];
    size_t n = strlen(entry);
    if (n == 0 || n >= sizeof text) return 0;
    memcpy(text, entry, n + 1);
    char *slash = strchr(text, '/');
    if (slash) *slash = '\0';
    if (!addr_parse(text, &c->family, c->addr)) return 0;
    int max = c->family == 4 ? 32 : 128;
    c->bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > max) return 0;
        c->bits = (int)b;
    }
    return 1;
}

static int cidr_match(const auth_cidr *c, int family, const unsigned char addr[16]) {
    if (c->family != family) return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0) return 0;
    if (!rest) return 1;
    unsigned mask = (0xffu << (8 - rest)) & 0xffu;
    return (c->addr[full] & mask) == (addr[full] & mask);
}

ems_rc auth_proxies_parse(const char *spec, int embedded, auth_proxies *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) spec = embedded ? "none" : DEFAULT_BEHIND_GATEWAY;
    if (strcmp(spec, "none") == 0) return EMS_OK;
    char *copy = strdup(spec), *save = NULL;
    if (!copy) return EMS_NOMEM;
    ems_rc rc = EMS_OK;
    for (char *e = strtok_r(copy, ", ", &save); e && !rc; e = strtok_r(NULL, ", ", &save)) {
        if (out->n == AUTH_MAX_PROXIES) {
            snprintf(err, errlen, "more than %d entries", AUTH_MAX_PROXIES);
            rc = EMS_BAD_REQUEST;
        } else if (!cidr_parse(e, &out->cidr[out->n])) {
            snprintf(err, errlen, "'%s' is not an address or CIDR", e);
            rc = EMS_BAD_REQUEST;
        } else {
            out->n++;
        }
    }
    free(copy);
    return rc;
}

static int trusted(const auth_proxies *t, int family, const unsigned char addr[16]) {
    for (int i = 0; i < t->n; i++)
        if (cidr_match(&t->cidr[i], family, addr)) return 1;
    return 0;
}

int auth_proxies_trust(const auth_proxies *t, const char *addr) {
    int family;
    unsigned char a[16];
    return addr_parse(addr, &family, a) && trusted(t, family, a);
}

void auth_client_ip(const auth_proxies *t, const ems_req *req, char out[AUTH_IP_LEN]) {
    const char *peer = ems_req_ip(req);
    int family;
    unsigned char addr[16];
    snprintf(out, AUTH_IP_LEN, "%s", peer);
    if (!addr_parse(peer, &family, addr)) return;                        /* "local", "unknown": an in-process call */
    inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out, AUTH_IP_LEN); /* one spelling per address */
    const char *real = trusted(t, family, addr) ? ems_req_header(req, "X-Real-IP") : NULL;
    if (real && addr_parse(real, &family, addr)) inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out, AUTH_IP_LEN);
}
