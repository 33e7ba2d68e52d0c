/*
 * client.c — the client address behind a trusted gateway.
 *
 * Addresses and ranges are core's (netaddr.h): an IPv4 address seen as IPv6
 * (::ffff:a.b.c.d, on a dual-stack socket) is taken as the IPv4 one, so that
 * one rule covers both ways a gateway may connect.
 */
#include "client.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_BEHIND_GATEWAY "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

ems_rc auth_proxies_parse(const char *spec, int embedded, auth_proxies *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) spec = embedded ? "none" : DEFAULT_BEHIND_GATEWAY;
    if (strcmp(spec, "none") == 0) return EMS_OK;
    return ems_cidr_list_parse(spec, out->cidr, AUTH_MAX_PROXIES, &out->n, err, errlen);
}

int auth_proxies_trust(const auth_proxies *t, const char *addr) {
    ems_ip ip;
    return ems_ip_parse(addr, &ip) && ems_cidr_list_match(t->cidr, t->n, &ip);
}

void auth_client_ip(const auth_proxies *t, const ems_req *req, char out[AUTH_IP_LEN]) {
    const char *peer = ems_req_ip(req);
    ems_ip ip;
    snprintf(out, AUTH_IP_LEN, "%s", peer);
    if (!ems_ip_parse(peer, &ip)) return; /* "local", "unknown": an in-process call */
    ems_ip_text(&ip, out);                /* one spelling per address */
    const char *real = ems_cidr_list_match(t->cidr, t->n, &ip) ? ems_req_header(req, "X-Real-IP") : NULL;
    if (real && ems_ip_parse(real, &ip)) ems_ip_text(&ip, out);
}
