/*
 * limiter.h — login rate limiting for the auth role.
 *
 * Two independent limits: attempts per client address per minute, and
 * failed attempts per username within a window.  Fixed-size tables hashed by
 * key: a flood of distinct keys evicts old entries instead of growing memory.
 */
#ifndef EMS_AUTH_LIMITER_H
#define EMS_AUTH_LIMITER_H

#include <stdint.h>

typedef struct limiter limiter;

limiter *limiter_new(int per_minute, int max_failures, int window_s);
void limiter_free(limiter *l);

/* 1 if another attempt from ip for username may proceed now (and counts it). */
int limiter_allow(limiter *l, const char *ip, const char *username, int64_t now_ms);
void limiter_failure(limiter *l, const char *username, int64_t now_ms);
void limiter_success(limiter *l, const char *username);

#endif
