/*
 * limiter.c — fixed-window counters in set-associative tables under one
 * mutex.
 *
 * Keys are hashed with SipHash under a key drawn at start, so nobody can
 * aim usernames at the slot of the account under attack; and a key that
 * misses evicts the entry with the lowest count of its set, so a burst of
 * new names cannot wash out the counter of an account near its limit.
 */
#include "limiter.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 8
/* An address (at most 45 characters), a separator and a username (at most 64). */
#define KEY_MAX 112

typedef struct {
    char key[KEY_MAX];
    int64_t start; /* of the entry's window, ms */
    int count;
} slot;

typedef struct {
    int limit;
    int64_t window_ms;
    unsigned sets;
    slot (*set)[WAYS];
} counter;

struct limiter {
    pthread_mutex_t lock;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    counter login_ip, login_pair, login_user, reg_minute, reg_hour, password;
};

static int counter_init(counter *c, unsigned sets, int limit, int window_s) {
    c->limit = limit;
    c->window_ms = (int64_t)window_s * 1000;
    c->sets = sets;
    c->set = calloc(sets, sizeof *c->set);
    return c->set != NULL;
}

limiter *limiter_new(const limiter_conf *conf) {
    if (sodium_init() < 0) return NULL;
    limiter *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    crypto_shorthash_keygen(l->hash_key);
    int ok = counter_init(&l->login_ip, 512, conf->login_rate, 60) &&
             counter_init(&l->login_pair, 512, conf->login_max_failures, conf->login_window_s) &&
             counter_init(&l->login_user, 512, conf->login_max_failures_user, conf->login_window_s) &&
             counter_init(&l->reg_minute, 256, conf->register_rate, 60) &&
             counter_init(&l->reg_hour, 256, conf->register_hourly, 3600) &&
             counter_init(&l->password, 256, conf->password_max_failures, conf->password_window_s);
    if (!ok) {
        limiter_free(l);
        return NULL;
    }
    return l;
}

void limiter_free(limiter *l) {
    if (!l) return;
    counter *all[] = {&l->login_ip, &l->login_pair, &l->login_user, &l->reg_minute, &l->reg_hour, &l->password};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]->set);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Writes `a`, and when b is given a newline and b in lower case, into k (cut to fit). */
static void make_key(char k[KEY_MAX], const char *a, const char *b) {
    size_t n = 0;
    memset(k, 0, KEY_MAX);
    for (; a && a[0] && n + 1 < KEY_MAX; a++) k[n++] = *a;
    if (!b) return;
    if (n + 1 < KEY_MAX) k[n++] = '\n';
    for (; b[0] && n + 1 < KEY_MAX; b++) k[n++] = (char)tolower((unsigned char)*b);
}

/*
 * The slot counting key k in its current window (its count restarted if the
 * window is over), or — when create is set and the key has none — a fresh
 * one taken from the set's lowest-counted entry.  NULL when !create and the
 * key is not there.  Under l->lock.
 */
static slot *find(limiter *l, counter *c, const char *k, int64_t now, int create) {
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)k, strlen(k), l->hash_key);
    slot *set = c->set[(((unsigned)h[0] << 8) | h[1]) % c->sets], *victim = NULL;
    for (int w = 0; w < WAYS; w++) {
        slot *s = &set[w];
        int stale = !s->key[0] || now - s->start >= c->window_ms;
        if (stale) {
            s->start = now;
            s->count = 0;
        }
        if (s->key[0] && strcmp(s->key, k) == 0) return s;
        if (!victim || s->count < victim->count) victim = s;
    }
    if (!create) return NULL;
    memcpy(victim->key, k, KEY_MAX);
    victim->start = now;
    victim->count = 0;
    return victim;
}

/* 0 if the slot is under its counter's limit, else whole seconds (≥ 1) until its window ends. */
static int wait_s(const counter *c, const slot *s, int64_t now) {
    if (!s || s->count < c->limit) return 0;
    int64_t left = s->start + c->window_ms - now;
    return left <= 1000 ? 1 : (int)((left + 999) / 1000);
}

static int max3(int a, int b, int c) {
    int m = a > b ? a : b;
    return m > c ? m : c;
}

int limiter_login(limiter *l, const char *ip, const char *username, int64_t now) {
    char kip[KEY_MAX], kpair[KEY_MAX], kuser[KEY_MAX];
    make_key(kip, ip, NULL);
    make_key(kpair, ip, username);
    make_key(kuser, "", username);
    pthread_mutex_lock(&l->lock);
    slot *a = find(l, &l->login_ip, kip, now, 1);
    slot *p = find(l, &l->login_pair, kpair, now, 1);
    slot *u = find(l, &l->login_user, kuser, now, 1);
    int wait = max3(wait_s(&l->login_ip, a, now), wait_s(&l->login_pair, p, now), wait_s(&l->login_user, u, now));
    a->count++; /* every attempt counts against the address, refused or not */
    if (!wait) {
        p->count++;
        u->count++;
    }
    pthread_mutex_unlock(&l->lock);
    return wait;
}

void limiter_login_ok(limiter *l, const char *ip, const char *username, int64_t now) {
    char kpair[KEY_MAX], kuser[KEY_MAX];
    make_key(kpair, ip, username);
    make_key(kuser, "", username);
    pthread_mutex_lock(&l->lock);
    slot *p = find(l, &l->login_pair, kpair, now, 0);
    if (p) p->count = 0;
    /* Only this attempt is taken back from the username's total: the owner
     * signing in must not give a spread-out guesser a fresh allowance. */
    slot *u = find(l, &l->login_user, kuser, now, 0);
    if (u && u->count > 0) u->count--;
    pthread_mutex_unlock(&l->lock);
}

int limiter_register(limiter *l, const char *ip, int64_t now) {
    char k[KEY_MAX];
    make_key(k, ip, NULL);
    pthread_mutex_lock(&l->lock);
    slot *m = find(l, &l->reg_minute, k, now, 1);
    slot *h = find(l, &l->reg_hour, k, now, 1);
    int wait = max3(wait_s(&l->reg_minute, m, now), wait_s(&l->reg_hour, h, now), 0);
    if (!wait) {
        m->count++;
        h->count++;
    }
    pthread_mutex_unlock(&l->lock);
    return wait;
}

int limiter_password(limiter *l, const char *account, int64_t now) {
    char k[KEY_MAX];
    make_key(k, account, NULL);
    pthread_mutex_lock(&l->lock);
    slot *s = find(l, &l->password, k, now, 1);
    int wait = wait_s(&l->password, s, now);
    if (!wait) s->count++;
    pthread_mutex_unlock(&l->lock);
    return wait;
}

void limiter_password_ok(limiter *l, const char *account, int64_t now) {
    char k[KEY_MAX];
    make_key(k, account, NULL);
    pthread_mutex_lock(&l->lock);
    slot *s = find(l, &l->password, k, now, 0);
    if (s) s->count = 0;
    pthread_mutex_unlock(&l->lock);
}
