/*
 * hours.h — sums of readings per device and UTC hour, for the exactness
 * summary (--summary-json): an open-addressing hash map from (device index,
 * hour) to micro-kWh and a count.  Not thread-safe: the simulation guards it.
 */
#ifndef EMS_SIM_HOURS_H
#define EMS_SIM_HOURS_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

typedef struct {
    uint32_t device;
    int64_t hour; /* epoch ms / 3600000 */
    int64_t micro;
    uint64_t readings;
} sim_hour_sum;

typedef struct sim_hours sim_hours;

sim_hours *sim_hours_new(void);
void sim_hours_free(sim_hours *h); /* accepts NULL */

ems_rc sim_hours_add(sim_hours *h, uint32_t device, int64_t ts_ms, int64_t micro);

/* Every sum, sorted by device then hour; *out is malloc'd (NULL when n is 0). */
ems_rc sim_hours_sorted(const sim_hours *h, sim_hour_sum **out, size_t *n);

#endif
