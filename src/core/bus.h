/*
 * bus.h — one message-bus interface over an in-process driver and RabbitMQ.
 *
 * Queues are named as in DESIGN.md; every queue is durable and has a
 * dead-letter queue "<name>.dlq" for messages a handler rejects.
 *
 * Publishing returns EMS_OK only once the message is safe:
 *   amqp    — the broker confirmed it (publisher confirms; persistent messages)
 *   inproc  — a consumer of the queue handled it and returned EMS_BUS_ACK
 *             (the handler runs on the publisher's thread; with no consumer
 *             registered, or on EMS_BUS_RETRY, publish returns EMS_AGAIN and
 *             the caller — the outbox relay — tries again later).  This is
 *             what makes the embedded bus as durable as the databases behind it.
 * A message that cannot be published is EMS_UNAVAILABLE (broker down) or
 * EMS_AGAIN.
 *
 * Consuming: a handler returns a verdict.  ACK → the message is acknowledged
 * (call it only after your work is committed); RETRY → requeued and
 * redelivered later; REJECT → moved to "<queue>.dlq" and counted in
 * /metrics.  A handler is never called concurrently for the same queue.
 *
 * The amqp driver reconnects with backoff after the broker restarts and
 * re-declares its queues; unacknowledged messages are redelivered by the
 * broker, so handlers must be idempotent.
 */
#ifndef EMS_BUS_H
#define EMS_BUS_H

#include <stddef.h>

#include "result.h"

typedef enum { EMS_BUS_ACK, EMS_BUS_RETRY, EMS_BUS_REJECT } ems_verdict;

/* "ack", "retry", "reject". */
const char *ems_verdict_name(ems_verdict v);

typedef struct ems_bus ems_bus;

typedef ems_verdict (*ems_bus_handler)(const char *queue, const char *body, size_t len, void *ctx);

/*
 * "inproc:"                                  — in-process
 * "amqp://user:pass@host:port" ("/vhost")    — RabbitMQ; the connection is
 *                                              made lazily and re-made on failure
 */
ems_rc ems_bus_open(const char *url, ems_bus **out, char *err, size_t errlen);
void ems_bus_close(ems_bus *b); /* stops consumers, closes connections; accepts NULL */

/* Declares a durable queue and its dead-letter queue. */
ems_rc ems_bus_declare(ems_bus *b, const char *queue);

ems_rc ems_bus_publish(ems_bus *b, const char *queue, const char *body, size_t len);

/* Publishes n messages with one wait for confirms.  EMS_OK only if all were confirmed. */
ems_rc ems_bus_publish_batch(ems_bus *b, const char *queue, const char *const *bodies, const size_t *lens, size_t n);

/*
 * The same through a named exchange, with `queue` as the routing key, and
 * without declaring anything: for a publisher whose broker user may write
 * only to that exchange, as a meter (the exchange and its binding exist on
 * the broker already).  inproc has no exchanges: the message goes to `queue`.
 */
ems_rc ems_bus_publish_via(ems_bus *b, const char *exchange, const char *queue, const char *const *bodies,
                           const size_t *lens, size_t n);

/* Starts consuming `queue` on a thread of its own; prefetch 0 = 100. */
ems_rc ems_bus_consume(ems_bus *b, const char *queue, unsigned prefetch, ems_bus_handler fn, void *ctx);

/*
 * Batch consumption, for hot paths that commit many messages in one
 * transaction.  The handler gets up to max_batch messages at once (each body
 * NUL-terminated at body[len]) and sets verdicts[i] for each; a verdict left
 * unset counts as RETRY.
 *   amqp    — after the first delivery the consumer waits at most
 *             max_wait_ms for more; then one multiple-ack when every verdict
 *             is ACK, otherwise an ack, a reject (to "<queue>.dlq") or a
 *             requeue per message
 *   inproc  — every published message is a batch of one, handled
 *             synchronously as with ems_bus_consume
 * prefetch 0 = 100, max_batch 0 = 1 (and never more than prefetch).
 */
typedef struct ems_bus_msg {
    const char *body;
    size_t len;
} ems_bus_msg;

typedef void (*ems_bus_batch_handler)(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts,
                                      void *ctx);

ems_rc ems_bus_consume_batch(ems_bus *b, const char *queue, unsigned prefetch, size_t max_batch, unsigned max_wait_ms,
                             ems_bus_batch_handler fn, void *ctx);

/* 1 while the broker is reachable (inproc: always). */
int ems_bus_ready(ems_bus *b);

/*
 * inproc: dead letters are kept in memory up to `bytes` of bodies per queue
 * (default 8 MiB); the oldest are dropped first, and counted.  amqp: nothing
 * (the broker keeps "<queue>.dlq").
 */
void ems_bus_set_dlq_max_bytes(ems_bus *b, size_t bytes);

#endif
