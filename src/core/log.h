/*
 * log.h — one line per event, key=value fields, on stderr.
 *
 *   ems_log(EMS_LOG_INFO, "http.listen", "port=%d", port);
 * prints
 *   ts=2026-11-27T10:00:00.123Z level=info event=http.listen port=8080
 *
 * The level is checked before anything is formatted.  Never pass a password,
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

void ems_log_write(ems_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ems_log(level, event, ...)                                            \
    do {                                                                      \
        if ((level) >= ems_log_min) ems_log_write((level), (event), __VA_ARGS__); \
    } while (0)

#endif
