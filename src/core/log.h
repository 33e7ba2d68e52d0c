/*
 * log.h — one line per event, key=value fields, on stderr.
 *
 *   ems_log(EMS_LOG_INFO, "http.listen", "port=%d", port);
 * prints
 *   ts=2026-11-27T10:00:00.123Z level=info event=http.listen port=8080
 *
 * The level is checked before anything is formatted, and so is the limit on
 * repeated lines: at most N lines of one event name per window (10 per 10 s
 * unless ems_log_set_rate says otherwise), then one line
 *   event=log.suppressed of=<event> lines=<K> window_ms=<W>
 * counting the rest once the window is over.  Never pass a password,
 * a token or a key to these functions: nothing filters them out for you.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef EMS_LOG_H
#define EMS_LOG_H

#include <stdarg.h>

typedef enum { EMS_LOG_DEBUG, EMS_LOG_INFO, EMS_LOG_WARN, EMS_LOG_ERROR, EMS_LOG_OFF } ems_log_level;

extern ems_log_level ems_log_min;

/* Parses "debug", "info", "warn", "error" or "off"; returns -1 on anything else. */
int ems_log_level_parse(const char *name);
void ems_log_set_level(ems_log_level level);
/* Adds a fixed field to every line, e.g. ems_log_set_context("role=auth"). Copied. */
void ems_log_set_context(const char *fields);

#define EMS_LOG_RATE_LIMIT_DEFAULT 10
#define EMS_LOG_RATE_WINDOW_MS_DEFAULT 10000
/* At most `lines` lines of one event per `window_ms` (lines 0: no limit). */
void ems_log_set_rate(unsigned lines, long window_ms);
/* Writes the log.suppressed lines still owed (at exit, so that no count is lost). */
void ems_log_flush(void);

void ems_log_write(ems_log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define ems_log(level, event, ...)                                                                                     \
    do {                                                                                                               \
        if ((level) >= ems_log_min) ems_log_write((level), (event), __VA_ARGS__);                                      \
    } while (0)

#endif
