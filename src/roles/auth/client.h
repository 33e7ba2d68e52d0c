/*
 * client.h — which address a request to the auth role comes from.
 *
 * The limits count per client address.  Behind the gateway every request
 * arrives from nginx, which names the client in X-Real-IP; a client talking
 * to the server directly could send that header too.  So the header is
 * believed only from a peer on the trusted_proxies list, and the socket's
 * peer address is used otherwise.
 */
#ifndef EMS_AUTH_CLIENT_H
#define EMS_AUTH_CLIENT_H

#include <stddef.h>

#include "http.h"
#include "netaddr.h"

#define AUTH_IP_LEN EMS_IP_TEXT_MAX
#define AUTH_MAX_PROXIES 16

typedef struct {
    ems_cidr cidr[AUTH_MAX_PROXIES];
    size_t n;
} auth_proxies;

/*
 * Parses trusted_proxies: "none", comma-separated addresses or CIDRs, or ""
 * for the mode's default — none embedded (clients reach the server
 * directly), and loopback and the private ranges with --role (the gateway
 * is on the deployment's private network).  EMS_BAD_REQUEST with the bad
 * entry named in err.
 */
ems_rc auth_proxies_parse(const char *spec, int embedded, auth_proxies *out, char *err, size_t errlen);

/* 1 if addr (text) is on the list. */
int auth_proxies_trust(const auth_proxies *t, const char *addr);

/* The client's address as text: X-Real-IP from a trusted proxy when it holds one address, else the peer's. */
void auth_client_ip(const auth_proxies *t, const ems_req *req, char out[AUTH_IP_LEN]);

#endif
