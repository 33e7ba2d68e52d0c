/*
 * consume.h — consume-once: a bus event is applied at most once, in one
 * transaction with its inbox entry, and every consumer answers the bus by
 * the same rules.
 *
 * A role describes its consumer as a table (ems_consumer) and calls
 * ems_consume_once from its bus handler.  The helper
 *   1. parses the body as a JSON object with a non-empty string "event_id";
 *   2. lets the role check the event and take what it needs (check), before
 *      any connection is taken: a malformed event is dead-lettered even
 *      while the database is down;
 *   3. takes a connection, begins, records event_id in the inbox
 *      (ems_inbox_first); an event applied before is acknowledged and its
 *      work skipped;
 *   4. applies it (apply), commits, or rolls back on any failure;
 *   5. after the commit only, runs after_commit (push to sockets, kick the
 *      outbox): work that must not happen unless the change is durable.
 *
 * The verdict mapping (ems_consume_verdict), the one place that decides:
 *   ack     EMS_OK, and an event seen before
 *   reject  the message itself is wrong and no redelivery will change that:
 *           a body that is not JSON or has no event_id, and EMS_BAD_REQUEST,
 *           EMS_NOT_FOUND, EMS_UNAUTHORIZED, EMS_FORBIDDEN, EMS_METHOD,
 *           EMS_TOO_LARGE, EMS_UNSUPPORTED, EMS_DECLINED from check or apply.
 *           An apply that meets a missing row it expects to appear later
 *           (events out of order) returns EMS_AGAIN, not EMS_NOT_FOUND.
 *   retry   anything that may pass next time: EMS_UNAVAILABLE, EMS_AGAIN,
 *           EMS_NOMEM, EMS_INTERNAL (any other store error), EMS_CONFLICT
 *           (a unique or foreign-key violation, which a later event may
 *           resolve), EMS_RATE_LIMITED, no connection, a failed commit.
 * A rejected message is logged once, as event=consume.rejected with its
 * queue, reason, event_id and type (when it has them); never its body.
 */
#ifndef EMS_CONSUME_H
#define EMS_CONSUME_H

#include <jansson.h>
#include <stddef.h>

#include "bus.h"
#include "result.h"
#include "store.h"

typedef struct ems_consumer {
    /*
     * Optional.  Checks `event` (a JSON object with an event_id) and takes
     * what apply needs into `arg`; no connection is held.  Pointers taken
     * from `event` stay valid until ems_consume_once returns.
     */
    ems_rc (*check)(json_t *event, void *arg);
    /* Applies the event inside the caller's transaction on `db`. */
    ems_rc (*apply)(ems_db *db, json_t *event, void *arg);
    /* Optional.  Runs once the change is committed; not for an event seen before. */
    void (*after_commit)(json_t *event, void *arg);
} ems_consumer;

/*
 * Applies one delivery of `queue` once, on a connection of `store`, and
 * returns the verdict for the bus.  `arg` is passed to every callback of
 * `c` (typically a struct on the handler's stack holding the role and the
 * fields check took).
 */
ems_verdict ems_consume_once(ems_store *store, const ems_consumer *c, const char *queue, const char *body, size_t len,
                             void *arg);

/* The verdict for a result of check, apply or commit (see above). */
ems_verdict ems_consume_verdict(ems_rc rc);

#endif
