/*
 * limiter.c — fixed-window counters in two set-associative tables under one
 * mutex.
 *
 * Keys are hashed with SipHash under a key drawn at start, so nobody can
 * aim usernames at the slot of the account under attack; and a key that
 * misses evicts the entry with the fewest failures of its set, so a burst of
 * new names cannot wash out the counter of an account near its limit.
 */
#include "limiter.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SETS 512
#define WAYS 8
#define KEY_MAX 80

typedef struct {
    char key[KEY_MAX];
    int64_t window_start;
    int count;
} slot;

typedef slot table[SETS][WAYS];

struct limiter {
    pthread_mutex_t lock;
    int per_minute, max_failures;
    int64_t window_ms;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    table by_ip, by_user;
};

limiter *limiter_new(int per_minute, int max_failures, int window_s) {
    if (sodium_init() < 0) return NULL;
    limiter *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->per_minute = per_minute;
    l->max_failures = max_failures;
    l->window_ms = (int64_t)window_s * 1000;
    crypto_shorthash_keygen(l->hash_key);
    return l;
}

void limiter_free(limiter *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/*
 * The slot counting `key` in its window, or — when create is set and the
 * key has none — a fresh one taken from the set's least-counted entry.
 * NULL when !create and the key is not there.
 */
static slot *lookup(limiter *l, table t, const char *key, int fold, int64_t now, int64_t window, int create) {
    char k[KEY_MAX] = {0};
    for (size_t i = 0; key[i] && i + 1 < KEY_MAX; i++) k[i] = fold ? (char)tolower((unsigned char)key[i]) : key[i];
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)k, strlen(k), l->hash_key);
    slot *set = t[(((unsigned)h[0] << 8) | h[1]) % SETS], *victim = NULL;
    for (int w = 0; w < WAYS; w++) {
        slot *s = &set[w];
        if (s->key[0] && strcmp(s->key, k) == 0) {
            if (now - s->window_start >= window) {
                s->window_start = now;
                s->count = 0;
            }
            return s;
        }
        int stale = !s->key[0] || now - s->window_start >= window;
        if (stale) s->count = 0;
        if (!victim || s->count < victim->count) victim = s;
    }
    if (!create) return NULL;
    memcpy(victim->key, k, sizeof k);
    victim->window_start = now;
    victim->count = 0;
    return victim;
}

int limiter_allow(limiter *l, const char *ip, const char *username, int64_t now) {
    pthread_mutex_lock(&l->lock);
    slot *a = lookup(l, l->by_ip, ip, 0, now, 60000, 1);
    slot *u = lookup(l, l->by_user, username, 1, now, l->window_ms, 0);
    int ok = a->count < l->per_minute && (!u || u->count < l->max_failures);
    a->count++;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void limiter_failure(limiter *l, const char *username, int64_t now) {
    pthread_mutex_lock(&l->lock);
    lookup(l, l->by_user, username, 1, now, l->window_ms, 1)->count++;
    pthread_mutex_unlock(&l->lock);
}

void limiter_success(limiter *l, const char *username) {
    pthread_mutex_lock(&l->lock);
    slot *u = lookup(l, l->by_user, username, 1, INT64_MIN / 2, INT64_MAX, 0);
    if (u) u->count = 0;
    pthread_mutex_unlock(&l->lock);
}
