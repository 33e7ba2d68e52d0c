/*
 * metrics.h — process-wide counters rendered in Prometheus text format.
 *
 * Thread-safe.  Route labels are route patterns (e.g. "/api/devices/{id}"),
 * never raw paths, so that the number of series stays bounded.
 */
#ifndef EMS_METRICS_H
#define EMS_METRICS_H

#include <stddef.h>

/* One HTTP request served: method, route pattern ("unmatched" if none), status, seconds. */
void ems_metrics_http(const char *method, const char *route, int status, double seconds);

/* One bus message handled: queue name and verdict name ("ack", "retry", "reject"). */
void ems_metrics_bus(const char *queue, const char *verdict);

/* A named counter (e.g. "ems_readings_stored_total") incremented by n. */
void ems_metrics_count(const char *name, const char *help, double n);

/* A named counter with one label (e.g. "queue", a queue name: bounded values only) incremented by n. */
void ems_metrics_count_labeled(const char *name, const char *help, const char *label, const char *value, double n);

/* A named gauge set to v. */
void ems_metrics_gauge(const char *name, const char *help, double v);

/* Renders everything; returns a malloc'd NUL-terminated string (len in *len). */
char *ems_metrics_render(size_t *len);

#endif
