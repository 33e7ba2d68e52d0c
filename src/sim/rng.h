/*
 * rng.h — deterministic randomness for the simulator.
 *
 * Two kinds: counter-based values (sim_mix64 of a key) where a result must
 * depend only on what it describes — a reading's fluctuation depends on the
 * seed, the device and the timestamp, never on the order readings were made
 * in, so live and backfill runs with one seed agree — and a small sequential
 * generator (splitmix64) where order is the point (fault decisions).
 */
#ifndef EMS_SIM_RNG_H
#define EMS_SIM_RNG_H

#include <stdint.h>

/* Length of a canonical UUID text without its NUL. */
#define SIM_UUID_LEN 36

/* A bijective 64-bit mixer (the splitmix64 finalizer). */
uint64_t sim_mix64(uint64_t x);

/* Mixes several keys into one (order matters). */
uint64_t sim_mix3(uint64_t a, uint64_t b, uint64_t c);

/* FNV-1a of a string: stable across runs and machines. */
uint64_t sim_hash_str(const char *s);

/* A double in [0, 1) from the top 53 bits of h. */
double sim_unit(uint64_t h);

typedef struct {
    uint64_t state;
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(sim_rng *r);
/* Uniform in [0, 1). */
double sim_rng_unit(sim_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);

/* The n-th synthetic device id of a seed: a version-4 UUID, lower case, NUL-terminated. */
void sim_uuid_derive(uint64_t seed, uint64_t n, char out[SIM_UUID_LEN + 1]);

/* 1 if s is a UUID in canonical 8-4-4-4-12 hex form (either case). */
int sim_uuid_valid(const char *s);

#endif
