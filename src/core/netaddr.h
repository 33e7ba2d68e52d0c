/*
 * netaddr.h — IP addresses and address ranges (CIDR), compared as bytes.
 *
 * Used wherever a rule names clients by address: the HTTP server's list of
 * addresses its per-address limit skips, auth's trusted proxies.  An IPv4
 * address seen as IPv6 (::ffff:a.b.c.d, a dual-stack socket's view) is taken
 * as the IPv4 one, in addresses and in rules alike, so one rule covers both
 * ways a peer may connect.
 */
#ifndef EMS_NETADDR_H
#define EMS_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "result.h"

#define EMS_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

/* An address: 4 bytes (IPv4) or 16 (IPv6) in b. */
typedef struct {
    unsigned char len;
    unsigned char b[16];
} ems_ip;

/* A range: the addresses whose first `bits` bits are net's. */
typedef struct {
    ems_ip net;
    unsigned bits;
} ems_cidr;

/* Parses an address in text; 0 if it is not one ("local", "", a name). */
int ems_ip_parse(const char *text, ems_ip *out);

/* The address of a socket; 0 for a family that is not IP. */
int ems_ip_of_sockaddr(const struct sockaddr *sa, ems_ip *out);

/* The address as text, one spelling per address, into out. */
void ems_ip_text(const ems_ip *ip, char out[EMS_IP_TEXT_MAX]);

/* Parses "address" or "address/bits"; 0 if it is neither. */
int ems_cidr_parse(const char *text, ems_cidr *out);

/* 1 if ip is in c. */
int ems_cidr_match(const ems_cidr *c, const ems_ip *ip);

/*
 * Parses a list of ranges separated by commas or spaces into rules (at most
 * max), setting *n.  EMS_BAD_REQUEST with the bad entry, or the overflow,
 * named in err.
 */
ems_rc ems_cidr_list_parse(const char *text, ems_cidr *rules, size_t max, size_t *n, char *err, size_t errlen);

/* 1 if ip is in any of the n rules. */
int ems_cidr_list_match(const ems_cidr *rules, size_t n, const ems_ip *ip);

#endif
