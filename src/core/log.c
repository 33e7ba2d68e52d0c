/*
 * log.c — key=value event lines on stderr, one write(2) per line so that
 * lines from several threads never interleave.
 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

ems_log_level ems_log_min = EMS_LOG_INFO;
static char log_context[128];

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int ems_log_level_parse(const char *name) {
    for (int i = 0; i <= EMS_LOG_OFF; i++)
        if (name && strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void ems_log_set_level(ems_log_level level) { ems_log_min = level; }

void ems_log_set_context(const char *fields) {
    snprintf(log_context, sizeof log_context, "%s", fields ? fields : "");
}

void ems_log_write(ems_log_level level, const char *event, const char *fmt, ...) {
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s%s%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)tv.tv_usec / 1000, level_names[level], log_context[0] ? " " : "", log_context, event);
    if (n < 0 || (size_t)n >= sizeof line) n = sizeof line - 2;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += m;
    if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}
