/*
 * limiter.h — how often the auth role lets a caller try: logins,
 * registrations and password changes.
 *
 * Every limit is a fixed-window counter in a fixed-size table hashed by key:
 * a flood of distinct keys evicts old entries instead of growing memory.
 *
 * Logins are limited three ways: attempts per client address a minute
 * (login_rate); failures per (username, address) within login_window
 * (login_max_failures), so that a guesser at one address locks out only
 * itself and the owner signing in from elsewhere still gets in; and failures
 * per username from all addresses within the same window
 * (login_max_failures_user, much higher), the ceiling for a guesser spread
 * over many addresses.  Registrations are limited per address a minute and
 * an hour; wrong old passwords on a password change per account.
 *
 * An attempt is counted as a failure when it is let through and forgiven
 * when it turns out right (the *_ok calls), so that concurrent guesses cannot
 * all pass the check before the first of them fails.
 *
 * Each check returns 0 to go ahead, or the seconds until the window that
 * refused it ends (at least 1): the value for Retry-After.  All calls are
 * thread-safe.
 */
#ifndef EMS_AUTH_LIMITER_H
#define EMS_AUTH_LIMITER_H

#include <stdint.h>

typedef struct limiter limiter;

typedef struct limiter_conf {
    int login_rate;              /* login attempts per address a minute */
    int login_max_failures;      /* failures per (username, address) per login_window_s */
    int login_max_failures_user; /* failures per username, all addresses, per login_window_s */
    int login_window_s;
    int register_rate;         /* registrations per address a minute */
    int register_hourly;       /* registrations per address an hour */
    int password_max_failures; /* wrong old passwords per account per password_window_s */
    int password_window_s;
} limiter_conf;

/* NULL when out of memory or libsodium cannot start. */
limiter *limiter_new(const limiter_conf *conf);
void limiter_free(limiter *l);

/* A login for username (any case) from ip. */
int limiter_login(limiter *l, const char *ip, const char *username, int64_t now_ms);
/* The login let through was right: its pair's failures are forgiven. */
void limiter_login_ok(limiter *l, const char *ip, const char *username, int64_t now_ms);

/* A registration from ip (counted whatever its outcome). */
int limiter_register(limiter *l, const char *ip, int64_t now_ms);

/* A password change on account (an id) that will check the old password. */
int limiter_password(limiter *l, const char *account, int64_t now_ms);
/* The old password was right: the account's failures are forgiven. */
void limiter_password_ok(limiter *l, const char *account, int64_t now_ms);

#endif
