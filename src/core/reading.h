/*
 * reading.h — meter readings as they travel the bus: the contract between the
 * balancer and monitoring roles (and whatever sends them readings).
 *
 * Accepted forms, one reading or an array of them per message:
 *   the seed's      {"timestamp": <epoch ms | ISO-8601>, "device_id": "<uuid>", "measurement_value": <kWh>}
 *   the original's  {"deviceId": "<uuid>", "timestamp": <epoch ms | ISO-8601>, "value": <kWh>}
 * A timestamp is epoch milliseconds (a JSON integer, or a real with no
 * fraction) or an ISO-8601 date-time in the forms of ems_iso8601_scan
 * (tz.h): "2025-01-15T00:10" as Java's LocalDateTime writes it,
 * "2025-01-15 00:10:00.123456+05:45", "...Z", ...; a date alone is refused.
 * One without a zone is wall time in the reading zone (option reading_tz,
 * UTC by default), placed by tz.h's gap and overlap rule.  Either way it
 * must fall in [2000-01-01, 2100-01-01) UTC.
 * A message is taken whole or refused whole: one bad reading refuses it, so
 * that a dead-lettered message can be replayed as it was.
 */
#ifndef EMS_READING_H
#define EMS_READING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "result.h"
#include "tz.h"

#define READINGS_MAX_PER_MESSAGE 100000

typedef struct reading {
    char device_id[EMS_ID_LEN]; /* lower-case canonical UUID */
    int64_t ts_ms;              /* UTC epoch milliseconds */
    double kwh;                 /* energy used in the interval before ts */
} reading;

/*
 * Parses a message body (len bytes, no NUL needed) straight from its bytes;
 * zone places timestamps written without one (NULL: UTC).
 * On success *out is a malloc'd array of *n readings (n ≥ 1).  On failure
 * returns EMS_BAD_REQUEST and a reason in err ("malformed JSON at line L
 * column C: ...", "a message holds 1 to ...", "reading I: ..."), or
 * EMS_NOMEM.  Takes and refuses exactly what json_loadb (duplicate keys
 * refused) followed by readings_parse_json does, with one exception: a NUL
 * byte right after a number, which jansson skips, is refused.
 */
ems_rc readings_parse(const char *body, size_t len, ems_tz *zone, reading **out, size_t *n, char *err, size_t errlen);

/* Parses the same from a JSON value already loaded. */
ems_rc readings_parse_json(const json_t *root, ems_tz *zone, reading **out, size_t *n, char *err, size_t errlen);

/* Serializes readings in the seed's form (epoch ms) as a compact JSON array; malloc'd. */
char *readings_dump(const reading *r, size_t n, size_t *len);

/*
 * The reading zone named by option reading_tz: "" or NULL is UTC (*out =
 * NULL).  EMS_BAD_REQUEST with a message naming the option for a name that
 * is not an IANA zone.
 */
ems_rc readings_zone_open(const char *name, ems_tz **out, char *err, size_t errlen);

#endif
