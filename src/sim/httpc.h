/*
 * httpc.h — just enough HTTP/1.1 to POST readings: one keep-alive
 * connection, Content-Length and chunked responses, plain http:// (the
 * embedded server and the gateway listen on the local machine).  Not
 * thread-safe: one sender owns one client.
 */
#ifndef EMS_SIM_HTTPC_H
#define EMS_SIM_HTTPC_H

#include <stddef.h>

#include "encode.h"
#include "result.h"

typedef struct sim_httpc sim_httpc;

/*
 * url: http://host[:port][/path]; a missing or "/" path means
 * /api/readings.  Nothing is connected yet.  EMS_BAD_REQUEST for a URL
 * that is not of that form.
 */
ems_rc sim_httpc_open(const char *url, sim_httpc **out, char *err, size_t errlen);
void sim_httpc_free(sim_httpc *h); /* accepts NULL */

/* "host:port" for messages. */
const char *sim_httpc_where(const sim_httpc *h);

/*
 * POSTs a JSON body with "Authorization: Bearer <token>" (none if token is
 * empty).  EMS_OK once a response arrived: *status and the body (in resp,
 * replaced) tell how it went.  EMS_UNAVAILABLE when the server could not be
 * reached or the connection broke (err says why); a stale keep-alive
 * connection is re-made once without being reported.
 */
ems_rc sim_httpc_post(sim_httpc *h, const char *token, const char *body, size_t len, int *status, sim_buf *resp,
                      char *err, size_t errlen);

#endif
