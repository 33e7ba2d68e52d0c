/*
 * rng.c — splitmix64 mixing and sequences, FNV-1a, and UUIDs derived from a
 * seed (see rng.h for why both kinds of randomness exist).
 */
#include "rng.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL

uint64_t sim_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t sim_mix3(uint64_t a, uint64_t b, uint64_t c) {
    return sim_mix64((sim_mix64(sim_mix64(a + GOLDEN) ^ b) + GOLDEN) ^ c);
}

uint64_t sim_hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

double sim_unit(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

void sim_rng_seed(sim_rng *r, uint64_t seed) { r->state = seed; }

uint64_t sim_rng_next(sim_rng *r) {
    r->state += GOLDEN;
    return sim_mix64(r->state);
}

double sim_rng_unit(sim_rng *r) { return sim_unit(sim_rng_next(r)); }

uint64_t sim_rng_below(sim_rng *r, uint64_t n) {
    /* The modulo bias is below 2^-40 for the small n used here. */
    return sim_rng_next(r) % n;
}

void sim_uuid_derive(uint64_t seed, uint64_t n, char out[SIM_UUID_LEN + 1]) {
    uint64_t hi = sim_mix3(seed, n, 0x1d), lo = sim_mix3(seed, n, 0x2e);
    /* Version 4 (random) and the RFC 4122 variant, so the ids look like any other. */
    hi = (hi & ~0xf000ULL) | 0x4000ULL;
    lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48);
    snprintf(out, SIM_UUID_LEN + 1, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32), (unsigned)(hi >> 16) & 0xffff,
             (unsigned)hi & 0xffff, (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

int sim_uuid_valid(const char *s) {
    if (!s || strlen(s) != SIM_UUID_LEN) return 0;
    for (int i = 0; i < SIM_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}
