/*
 * tz.h — local time for the simulator, through ICU's calendar.
 *
 * The load curve follows the meter's local hour (people cook at 19:00 local
 * time, whatever the UTC offset), and dates given on the command line are
 * local days.  ICU reads the IANA database, so DST days and +05:45 zones
 * come out right; nothing here touches TZ or calls tzset, which are
 * process-wide.  A sim_tz is used by one thread at a time.
 */
#ifndef EMS_SIM_TZ_H
#define EMS_SIM_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"

typedef struct sim_tz sim_tz;

/*
 * zone: an IANA name such as "Europe/Bucharest", or NULL for the system's
 * zone.  An unknown name is EMS_BAD_REQUEST with a message in err.
 */
ems_rc sim_tz_open(const char *zone, sim_tz **out, char *err, size_t errlen);
void sim_tz_free(sim_tz *tz); /* accepts NULL */

/* 1 if zone is a known IANA zone name. */
int sim_tz_valid(const char *zone);

/* The IANA name in use (the system's when opened with NULL). */
const char *sim_tz_name(const sim_tz *tz);

/* Local time of day at epoch ms as fractional hours, 0 <= h < 24. */
double sim_tz_hour(sim_tz *tz, int64_t ms);

/* Epoch ms of the same local wall time `days` days later (earlier if negative). */
int64_t sim_tz_add_days(sim_tz *tz, int64_t ms, int days);

/*
 * Parses a point in time:
 *   YYYY-MM-DD                         local midnight (*is_date = 1)
 *   YYYY-MM-DDTHH:MM[:SS]              local wall time ('T' or ' ')
 *   YYYY-MM-DDTHH:MM[:SS](Z|±HH:MM)    an absolute instant
 *   an integer of 10 or more digits    epoch milliseconds
 * EMS_BAD_REQUEST on anything else (err says what was expected).
 */
ems_rc sim_tz_parse(sim_tz *tz, const char *text, int64_t *ms, int *is_date, char *err, size_t errlen);

/* Writes epoch ms as UTC ISO-8601, "2024-03-10T00:10:00Z" (".123Z" when ms is not whole). */
size_t sim_iso_utc(int64_t ms, char *buf, size_t cap);

#endif
