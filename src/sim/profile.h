/*
 * profile.h — what a simulated meter reads.
 *
 * A daily load curve gives 24 hourly rates in kWh per hour (the value for
 * hour h sits at h:30 and the rate in between is interpolated linearly,
 * wrapping around midnight).  A reading taken at time t over an interval of
 * I seconds is
 *
 *     rate(local hour of t) × I/3600 × device scale × (1 + f·u)
 *
 * where f is the fluctuation (0.1 = ±10 %) and u in [-1, 1) is derived from
 * the seed, the device id and t alone, so that one seed always yields the
 * same value for the same device and time, whatever the mode or the order.
 * An optional cap (max_kwh per hour) clips the rate.
 *
 * Values are whole micro-kWh (1 µkWh = 1 mWh): every reading is sent with six
 * decimals exactly as counted, so sums over readings are exact integers and
 * tests can compare them with stored totals without rounding arguments.
 */
#ifndef EMS_SIM_PROFILE_H
#define EMS_SIM_PROFILE_H

#include <stdint.h>

#define SIM_HOURS 24

/* A household: low at night, a morning bump, a high evening peak. */
extern const double sim_default_curve[SIM_HOURS];

/* The interpolated rate in kWh per hour at local fractional hour h (0 <= h < 24). */
double sim_curve_at(const double curve[SIM_HOURS], double hour);

typedef struct {
    const double *curve; /* SIM_HOURS rates */
    double fluctuation;  /* 0 <= f < 1 */
    uint64_t seed;
    int interval_s;
} sim_profile;

/*
 * One reading in micro-kWh.  dev_key is sim_hash_str(device id); max_kwh is
 * the cap on the hourly rate, 0 for none.
 */
int64_t sim_profile_value(const sim_profile *p, double local_hour, uint64_t dev_key, int64_t ts_ms, double scale,
                          double max_kwh);

/* Rounds kWh to micro-kWh. */
int64_t sim_kwh_to_micro(double kwh);

#endif
