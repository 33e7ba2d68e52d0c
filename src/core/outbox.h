/*
 * outbox.h — events that are published if and only if their change commits.
 *
 * A role that changes its data and announces the change writes the event
 * into its own `outbox` table inside the same transaction (ems_outbox_add).
 * A relay thread publishes pending events in order, with confirms, and
 * deletes each one only after the bus confirmed it.  A crash between the
 * two publishes the event again: consumers are idempotent.
 *
 * Every role with a store has, in its migrations:
 *   CREATE TABLE outbox (id <autoincrement> PRIMARY KEY, queue TEXT NOT NULL,
 *                        body TEXT NOT NULL, created_at BIGINT NOT NULL);
 *   CREATE TABLE inbox (event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL);
 */
#ifndef EMS_OUTBOX_H
#define EMS_OUTBOX_H

#include <jansson.h>

#include "bus.h"
#include "result.h"
#include "store.h"

/*
 * Adds `event` (a JSON object) for `queue`, inside the caller's transaction.
 * Sets "event_id" (a new UUID) and "at" (epoch ms) on the object if absent.
 * Does not steal the reference.
 */
ems_rc ems_outbox_add(ems_db *db, const char *queue, json_t *event);

/*
 * For consumers: records event_id in the inbox inside the caller's
 * transaction.  EMS_OK the first time, EMS_CONFLICT if it was seen before
 * (the caller then acks without doing the work again).
 */
ems_rc ems_inbox_first(ems_db *db, const char *event_id);

typedef struct ems_outbox ems_outbox;

/* Starts the relay thread for one store. */
ems_rc ems_outbox_start(ems_store *store, ems_bus *bus, ems_outbox **out);
/* Wakes the relay now (call after a commit that added events). */
void ems_outbox_kick(ems_outbox *o);
/*
 * Publishes pending events now, on the caller's thread (after a commit in a
 * request handler: in embedded mode the consumers have then applied them
 * before the response goes out).  On failure the relay thread retries later;
 * the result is for logging only.
 */
ems_rc ems_outbox_flush(ems_outbox *o);
/* Number of events not yet published (for tests and /metrics). */
long ems_outbox_pending(ems_outbox *o);
/*
 * Ends the relay thread but keeps the outbox, so that consumers still
 * running may kick it harmlessly while the process shuts down.
 */
void ems_outbox_halt(ems_outbox *o); /* accepts NULL */
/* Halts it if needed and frees it. */
void ems_outbox_stop(ems_outbox *o); /* accepts NULL */

#endif
