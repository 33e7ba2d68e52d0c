/*
 * bus_impl.h — what bus.c expects of a bus driver (private to the bus).
 *
 * bus.c parses the URL, checks arguments, and wraps every consumer's handler
 * so that each handled message is counted in /metrics whatever the driver;
 * a driver only moves bytes.  Each driver keeps its own state behind a void
 * pointer and fills in one static table of operations.
 */
#ifndef EMS_BUS_IMPL_H
#define EMS_BUS_IMPL_H

#include <stddef.h>

#include "bus.h"
#include "result.h"

/* Longest queue name: an AMQP short string (255) less the ".dlq" suffix. */
#define BUS_QUEUE_MAX 251
/* Suffix of a dead-letter queue. */
#define BUS_DLQ_SUFFIX ".dlq"

/* Where a driver connects; every string is owned by the bus. */
typedef struct {
    char *host;
    int port;
    char *user;
    char *password;
    char *vhost;
} bus_url;

typedef struct {
    const char *name;
    /* Sets *state on success; must not connect to anything yet. */
    ems_rc (*open)(const bus_url *url, void **state, char *err, size_t errlen);
    /* Stops and joins consumers, then frees everything. */
    void (*close)(void *state);
    ems_rc (*declare)(void *state, const char *queue);
    /*
     * n >= 1; EMS_OK only when every message is safe (see bus.h).  exchange
     * NULL: the default exchange, the queue declared first; otherwise that
     * exchange with `queue` as the routing key, nothing declared.
     */
    ems_rc (*publish)(void *state, const char *exchange, const char *queue, const char *const *bodies,
                      const size_t *lens, size_t n);
    /*
     * fn is called with a body that is NUL-terminated at body[len], never
     * concurrently for one queue.  prefetch is at least 1.
     */
    ems_rc (*consume)(void *state, const char *queue, unsigned prefetch, ems_bus_handler fn, void *ctx);
    /* The same for a batch handler (bus.h); max_batch is 1..prefetch. */
    ems_rc (*consume_batch)(void *state, const char *queue, unsigned prefetch, size_t max_batch, unsigned max_wait_ms,
                            ems_bus_batch_handler fn, void *ctx);
    int (*ready)(void *state);
    /*
     * Dead letters kept in memory (inproc); NULL where the broker keeps them
     * in "<queue>.dlq".  dlq_count is the number ever dead-lettered from
     * `queue`; dlq_message returns a malloc'd NUL-terminated copy of the i-th
     * kept one (0 = oldest kept) or NULL.
     */
    long (*dlq_count)(void *state, const char *queue);
    char *(*dlq_message)(void *state, const char *queue, size_t i, size_t *len);
    /* The bytes of dead letters kept per queue (inproc); NULL where the broker keeps them. */
    void (*set_dlq_max_bytes)(void *state, size_t bytes);
} bus_driver;

extern const bus_driver bus_inproc_driver;
extern const bus_driver bus_amqp_driver;

/* 1 if `queue` names a dead-letter queue: it is declared plain, without one of its own. */
int bus_is_dlq(const char *queue);

/*
 * For tests and diagnostics: how many messages were dead-lettered from
 * `queue` by a driver that keeps them in memory; -1 when the broker keeps
 * them (consume "<queue>.dlq" instead).
 */
long ems_bus_dlq_count(ems_bus *b, const char *queue);
/* The i-th kept dead letter of `queue` (see dlq_message above), or NULL. */
char *ems_bus_dlq_message(ems_bus *b, const char *queue, size_t i, size_t *len);

#endif
