/*
 * profile.c — the load curve and the value of one reading (see profile.h).
 */
#include "profile.h"

#include <math.h>

#include "rng.h"

/* kWh per hour for a household of two to four people, hour 0 = 00:00–01:00 local. */
const double sim_default_curve[SIM_HOURS] = {
    0.30, 0.25, 0.22, 0.21, 0.21, 0.24, 0.40, 0.65, 0.70, 0.55, 0.48, 0.45, /* 00–11 */
    0.50, 0.48, 0.45, 0.47, 0.58, 0.80, 1.10, 1.30, 1.25, 1.05, 0.75, 0.45, /* 12–23 */
};

double sim_curve_at(const double curve[SIM_HOURS], double hour) {
    double x = hour - 0.5, lo = floor(x), frac = x - lo;
    int i = ((int)lo % SIM_HOURS + SIM_HOURS) % SIM_HOURS;
    return curve[i] * (1.0 - frac) + curve[(i + 1) % SIM_HOURS] * frac;
}

int64_t sim_kwh_to_micro(double kwh) { return (int64_t)llround(kwh * 1e6); }

int64_t sim_profile_value(const sim_profile *p, double local_hour, uint64_t dev_key, int64_t ts_ms, double scale,
                          double max_kwh) {
    double rate = sim_curve_at(p->curve, local_hour);
    double u = sim_unit(sim_mix3(p->seed, dev_key, (uint64_t)ts_ms)) * 2.0 - 1.0;
    rate *= scale * (1.0 + p->fluctuation * u);
    if (max_kwh > 0 && rate > max_kwh) rate = max_kwh;
    return sim_kwh_to_micro(rate * p->interval_s / 3600.0);
}
