/*
 * sender.h — where messages go: RabbitMQ through the core bus (persistent,
 * publisher confirms, one wait per batch), a bus handed in by the caller
 * (the embedded server's in-process bus), or POST /api/readings over HTTP.
 *
 * A send reports how many messages of the batch are safe (a prefix): for
 * the bus, all or none; over HTTP one request per message, in order.
 * Results: EMS_OK (all safe); EMS_UNAVAILABLE or EMS_AGAIN (try again later:
 * the target is away or busy); anything else is final and err says why
 * (a queue declared with other arguments, HTTP 401, 404, 413, ...).  A
 * malformed message answered 400 or 422 by an HTTP server is delivered: it
 * was refused as it should be.
 */
#ifndef EMS_SIM_SENDER_H
#define EMS_SIM_SENDER_H

#include <stddef.h>

#include "bus.h"
#include "result.h"
#include "sim_config.h"

typedef struct {
    const char *body;
    size_t len;
    int malformed;
} sim_msg;

typedef struct sim_sender sim_sender;

/* From the config's target; connects lazily. */
ems_rc sim_sender_open(const ems_sim_config *c, sim_sender **out, char *err, size_t errlen);
/* Over a bus the caller owns and keeps open longer than the sender. */
ems_rc sim_sender_open_bus(ems_bus *bus, const char *queue, sim_sender **out);
void sim_sender_free(sim_sender *s); /* accepts NULL */

/* "broker" or "server", for messages. */
const char *sim_sender_peer(const sim_sender *s);
/* Where, without credentials: "127.0.0.1:5672 queue external.data.collection.queue". */
const char *sim_sender_where(const sim_sender *s);

/* Reaches the target once (declares the queue); same results as a send. */
ems_rc sim_sender_prepare(sim_sender *s, char *err, size_t errlen);

ems_rc sim_sender_send(sim_sender *s, const sim_msg *msgs, size_t n, size_t *done, char *err, size_t errlen);

#endif
