/*
 * encode.h — message bodies for readings, good and deliberately bad.
 *
 * A reading is written as the seed's {"timestamp", "device_id",
 * "measurement_value"} or the original simulator's {"deviceId", "timestamp",
 * "value"}, with the timestamp in epoch ms or UTC ISO-8601, and the value
 * with exactly six decimals (whole micro-kWh, see profile.h).  Malformed
 * bodies come in kinds from a table; each one is something a consumer must
 * refuse (to its dead-letter queue, or with a 400) without losing the good
 * readings around it.
 */
#ifndef EMS_SIM_ENCODE_H
#define EMS_SIM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "sim_config.h"

/* A growable byte buffer; zero-initialise it, free with sim_buf_free. */
typedef struct {
    char *p;
    size_t len, cap;
} sim_buf;

ems_rc sim_buf_reserve(sim_buf *b, size_t extra);
ems_rc sim_buf_append(sim_buf *b, const char *s, size_t n);
void sim_buf_free(sim_buf *b);

typedef struct {
    const char *device_id;
    int64_t ts_ms;
    int64_t micro; /* micro-kWh */
} sim_reading;

/* "0.123456" — kWh with six decimals; returns the length. */
size_t sim_format_kwh(int64_t micro, char *buf, size_t cap);

/* Appends one reading as a JSON object. */
ems_rc sim_encode_reading(sim_buf *b, const sim_reading *r, ems_sim_format fmt, int iso);

#define SIM_MALFORMED_KINDS 6
/* "truncated", "missing_value", "wrong_type", "bad_device_id", "bad_timestamp", "not_an_object". */
const char *sim_malformed_name(unsigned kind);
/* Appends a malformed body of the given kind (mod SIM_MALFORMED_KINDS), built around r. */
ems_rc sim_encode_malformed(sim_buf *b, const sim_reading *r, unsigned kind, ems_sim_format fmt, int iso);

#endif
