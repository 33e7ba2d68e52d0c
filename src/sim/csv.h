/*
 * csv.h — a file of reading values, like the original assignment's
 * sensor.csv: one value per line in kWh per reading, used in order.
 * Blank lines and lines starting with '#' are skipped; a first line that is
 * not a number is taken for a header.  Anything else that is not a finite
 * number is an error naming the line.
 */
#ifndef EMS_SIM_CSV_H
#define EMS_SIM_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

/* *values (malloc'd micro-kWh) and *n are set only on success; n >= 1. */
ems_rc sim_csv_load(const char *path, int64_t **values, size_t *n, char *err, size_t errlen);

#endif
