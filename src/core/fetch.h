/*
 * fetch.h — a small HTTP client (libcurl) for calls between roles and out
 * to an LLM: support asks the REST API and the LLM, ws asks support.
 *
 * One easy handle per call, so any thread may call at once; no signals
 * (CURLOPT_NOSIGNAL), a hard timeout per call, and answers larger than
 * 1 MiB are refused rather than buffered.
 */
#ifndef EMS_FETCH_H
#define EMS_FETCH_H

#include <stddef.h>

#include "result.h"

/* Initialises libcurl once for the process; safe to call from several places. */
void ems_fetch_init(void);

typedef struct ems_fetch_req {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *bearer;    /* sent as "Authorization: Bearer <bearer>", or NULL */
    const char *json_body; /* POST body (sent as application/json), or NULL */
    long timeout_ms;
} ems_fetch_req;

/*
 * Performs the request.  On EMS_OK *status is the HTTP status (any status,
 * 404 and 500 included) and *body the answer (malloc'd, NUL-terminated).
 * EMS_UNAVAILABLE when no answer came: refused, timed out, too large; then
 * `why` (if not NULL) gets a short reason without any header or body in it.
 */
ems_rc ems_fetch(const ems_fetch_req *req, long *status, char **body, char *why, size_t whylen);

/* The host part of a URL for log lines ("?" if it cannot be parsed), into out. */
void support_url_host(const char *url, char *out, size_t n);

#endif
