/*
 * replica.c — rendezvous hashing of device ids over monitoring replicas.
 */
#include "replica.h"

#include <stdint.h>

/* FNV-1a over the text, then a 64-bit finalizer so that nearby inputs land far apart. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t text_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

unsigned ems_replica_of(const char *device_id, unsigned n) {
    uint64_t h = text_hash(device_id), best = 0;
    unsigned winner = 1;
    if (n == 0) n = 1;
    for (unsigned r = 1; r <= n; r++) {
        uint64_t score = mix64(h ^ mix64(r));
        if (r == 1 || score > best) {
            best = score;
            winner = r;
        }
    }
    return winner;
}
