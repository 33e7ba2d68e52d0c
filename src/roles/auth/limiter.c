/*
 * limiter.c — fixed-window counters in two hashed tables under one mutex.
 */
#include "limiter.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 1024
#define KEY_MAX 80

typedef struct {
    char key[KEY_MAX];
    int64_t window_start;
    int count;
} slot;

struct limiter {
    pthread_mutex_t lock;
    int per_minute, max_failures;
    int64_t window_ms;
    slot by_ip[SLOTS];
    slot by_user[SLOTS];
};

limiter *limiter_new(int per_minute, int max_failures, int window_s) {
    limiter *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->per_minute = per_minute;
    l->max_failures = max_failures;
    l->window_ms = (int64_t)window_s * 1000;
    return l;
}

void limiter_free(limiter *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* The slot for key, reset when it belongs to another key or its window is over. */
static slot *lookup(slot *table, const char *key, int fold, int64_t now, int64_t window) {
    char k[KEY_MAX];
    size_t i = 0;
    for (; key[i] && i + 1 < KEY_MAX; i++) k[i] = fold ? (char)tolower((unsigned char)key[i]) : key[i];
    k[i] = '\0';
    uint32_t h = 2166136261u;
    for (const char *p = k; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    slot *s = &table[h % SLOTS];
    if (strcmp(s->key, k) != 0 || now - s->window_start >= window) {
        memcpy(s->key, k, sizeof k);
        s->window_start = now;
        s->count = 0;
    }
    return s;
}

int limiter_allow(limiter *l, const char *ip, const char *username, int64_t now) {
    pthread_mutex_lock(&l->lock);
    slot *a = lookup(l->by_ip, ip, 0, now, 60000);
    slot *u = lookup(l->by_user, username, 1, now, l->window_ms);
    int ok = a->count < l->per_minute && u->count < l->max_failures;
    a->count++;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void limiter_failure(limiter *l, const char *username, int64_t now) {
    pthread_mutex_lock(&l->lock);
    lookup(l->by_user, username, 1, now, l->window_ms)->count++;
    pthread_mutex_unlock(&l->lock);
}

void limiter_success(limiter *l, const char *username) {
    pthread_mutex_lock(&l->lock);
    slot *u = lookup(l->by_user, username, 1, 0, INT64_MAX);
    u->count = 0;
    pthread_mutex_unlock(&l->lock);
}
