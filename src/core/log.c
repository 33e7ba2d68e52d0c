/*
 * log.c — key=value event lines on stderr, one write(2) per line so that
 * lines from several threads never interleave.
 *
 * Repeated lines are limited per event name: at most `rate_limit` lines of
 * one event per `rate_window_ms`; the rest of that window's lines are not
 * formatted, only counted, and one line
 *   event=log.suppressed of=<event> lines=<K> window_ms=<W>
 * says how many when the window is over (seen at the event's next line, or
 * by a sweep at most once a second on any line, or by ems_log_flush).  A
 * request that dead-letters a reading once logged a line each time, and a
 * flood of them filled the log with the same line.
 */
#include "log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Events tracked at once; an event that finds no slot is not limited (fail open: never lose a line). */
#define RATE_SLOTS 256
#define RATE_PROBES 8
/* Summaries written by one sweep, at most; the rest wait for the next. */
#define SWEEP_MAX 16
#define SWEEP_EVERY_MS 1000

ems_log_level ems_log_min = EMS_LOG_INFO;
static char log_context[128];

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

typedef struct {
    char event[64];       /* "" = free */
    int64_t window_start; /* ms, monotonic */
    unsigned lines;       /* written in this window */
    unsigned long suppressed;
    ems_log_level level; /* of the last suppressed line: the summary's */
} rate_slot;

typedef struct {
    char event[64];
    unsigned long lines;
    ems_log_level level;
} summary;

static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static rate_slot rate_slots[RATE_SLOTS];
static unsigned rate_limit = EMS_LOG_RATE_LIMIT_DEFAULT;
static int64_t rate_window_ms = EMS_LOG_RATE_WINDOW_MS_DEFAULT;
static int64_t next_sweep_ms;

int ems_log_level_parse(const char *name) {
    for (int i = 0; i <= EMS_LOG_OFF; i++)
        if (name && strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void ems_log_set_level(ems_log_level level) { ems_log_min = level; }

void ems_log_set_context(const char *fields) { snprintf(log_context, sizeof log_context, "%s", fields ? fields : ""); }

void ems_log_set_rate(unsigned lines, long window_ms) {
    pthread_mutex_lock(&rate_lock);
    rate_limit = lines;
    rate_window_ms = window_ms > 0 ? window_ms : 1;
    pthread_mutex_unlock(&rate_lock);
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Formats the line's head (ts, level, context, event) into line; returns its length. */
static int line_head(char *line, size_t cap, ems_log_level level, const char *event) {
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s%s%s event=%s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000,
                     level_names[level], log_context[0] ? " " : "", log_context, event);
    if (n < 0 || (size_t)n >= cap) n = (int)cap - 2;
    return n;
}

static void line_write(char *line, int n, size_t cap) {
    if ((size_t)n > cap - 2) n = (int)cap - 2;
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}

static void write_summaries(const summary *s, size_t n, long window_ms) {
    for (size_t i = 0; i < n; i++) {
        char line[512];
        int k = line_head(line, sizeof line, s[i].level, "log.suppressed");
        int m = snprintf(line + k, sizeof line - (size_t)k - 1, "of=%s lines=%lu window_ms=%ld", s[i].event, s[i].lines,
                         window_ms);
        line_write(line, k + (m > 0 ? m : 0), sizeof line);
    }
}

/* Takes a slot's count of suppressed lines into out (if any) and starts its window again. Lock held. */
static size_t slot_close(rate_slot *r, int64_t now, summary *out) {
    size_t n = 0;
    if (r->suppressed) {
        memcpy(out->event, r->event, sizeof out->event);
        out->lines = r->suppressed;
        out->level = r->level;
        n = 1;
    }
    r->window_start = now;
    r->lines = 0;
    r->suppressed = 0;
    return n;
}

static rate_slot *slot_find(const char *event) {
    uint32_t h = 2166136261u;
    for (const char *p = event; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    for (unsigned i = 0; i < RATE_PROBES; i++) {
        rate_slot *r = &rate_slots[(h + i) % RATE_SLOTS];
        if (strcmp(r->event, event) == 0) return r;
        if (!r->event[0] && strlen(event) < sizeof r->event) {
            memcpy(r->event, event, strlen(event) + 1);
            return r;
        }
    }
    return NULL;
}

/* 1 if a line of `event` may be written now; the summaries due are written first. */
static int rate_admit(ems_log_level level, const char *event) {
    summary due[SWEEP_MAX + 1];
    size_t ndue = 0;
    int admit = 1;
    long window;
    pthread_mutex_lock(&rate_lock);
    window = (long)rate_window_ms;
    if (rate_limit) {
        int64_t now = mono_ms();
        rate_slot *r = slot_find(event);
        if (r) {
            if (now - r->window_start >= rate_window_ms) ndue += slot_close(r, now, &due[ndue]);
            if (r->lines < rate_limit) {
                r->lines++;
            } else {
                r->suppressed++;
                r->level = level;
                admit = 0;
            }
        }
        if (now >= next_sweep_ms) { /* windows whose event went quiet: their counts are told now */
            next_sweep_ms = now + SWEEP_EVERY_MS;
            for (size_t i = 0; i < RATE_SLOTS && ndue < SWEEP_MAX; i++)
                if (&rate_slots[i] != r && rate_slots[i].suppressed &&
                    now - rate_slots[i].window_start >= rate_window_ms)
                    ndue += slot_close(&rate_slots[i], now, &due[ndue]);
        }
    }
    pthread_mutex_unlock(&rate_lock);
    write_summaries(due, ndue, window);
    return admit;
}

void ems_log_flush(void) {
    summary due[RATE_SLOTS];
    size_t ndue = 0;
    long window;
    pthread_mutex_lock(&rate_lock);
    window = (long)rate_window_ms;
    int64_t now = mono_ms();
    for (size_t i = 0; i < RATE_SLOTS; i++)
        if (rate_slots[i].suppressed) ndue += slot_close(&rate_slots[i], now, &due[ndue]);
    pthread_mutex_unlock(&rate_lock);
    write_summaries(due, ndue, window);
}

void ems_log_write(ems_log_level level, const char *event, const char *fmt, ...) {
    char line[2048];
    if (!rate_admit(level, event)) return; /* counted, never formatted */
    int n = line_head(line, sizeof line, level, event);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    line_write(line, n + m, sizeof line);
}
