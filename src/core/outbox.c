/*
 * outbox.c — the transactional outbox and the consumer's inbox.
 *
 * ems_outbox_add writes an event into the caller's transaction, so the
 * event exists if and only if the change commits.  One relay thread per
 * store then publishes the rows in id order and deletes each row only after
 * the bus confirmed it: a crash in between publishes the event again, which
 * idempotent consumers (ems_inbox_first) absorb.  The relay holds a
 * connection only to read a batch and to delete a row, never while the bus
 * works, since an in-process publish runs the consumer on this thread.
 *
 * The relay stops at the first event the bus does not take (no consumer
 * yet, broker down) so that later events never overtake it, and tries again
 * after a back-off that doubles from 100 ms to 5 s; a kick wakes it at once.
 */
#include "outbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "auth.h"
#include "log.h"

#define RELAY_BATCH 100
#define RELAY_IDLE_MS 1000
/* A flush relays at most this many batches on the caller's thread. */
#define FLUSH_PASSES 4
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* A bus queue name: an AMQP short string less the ".dlq" suffix. */
#define QUEUE_MAX 251

struct ems_outbox {
    ems_store *store;
    ems_bus *bus;
    pthread_t thread;
    pthread_mutex_t mu;       /* guards stop and kicked */
    pthread_mutex_t relay_mu; /* one relay pass at a time: the thread's or a flush */
    pthread_cond_t cv;        /* on CLOCK_MONOTONIC */
    int stop, kicked;
    int joined; /* the relay thread has ended (ems_outbox_halt) */
};

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A name the bus would refuse must not get into the table, where it would block every later event. */
static int queue_ok(const char *queue) {
    if (!queue || !queue[0] || strlen(queue) > QUEUE_MAX || strncmp(queue, "amq.", 4) == 0) return 0;
    for (const char *p = queue; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

ems_rc ems_outbox_add(ems_db *db, const char *queue, json_t *event) {
    if (!db || !queue_ok(queue) || !json_is_object(event)) {
        ems_log(EMS_LOG_ERROR, "outbox.bad_event", "queue=\"%s\" object=%d", queue_ok(queue) ? queue : "(invalid)",
                json_is_object(event));
        return EMS_INTERNAL;
    }
    int64_t now = now_ms();
    if (!json_object_get(event, "event_id")) {
        char id[EMS_ID_LEN];
        ems_uuid(id);
        if (json_object_set_new(event, "event_id", json_string(id)) != 0) return EMS_NOMEM;
    }
    if (!json_object_get(event, "at") && json_object_set_new(event, "at", json_integer(now)) != 0) return EMS_NOMEM;
    char *body = json_dumps(event, JSON_COMPACT);
    if (!body) return EMS_NOMEM;
    ems_rc rc =
        ems_db_exec(db, "INSERT INTO outbox (queue, body, created_at) VALUES ($1, $2, $3)", "ssi", queue, body, now);
    free(body);
    return rc;
}

ems_rc ems_inbox_first(ems_db *db, const char *event_id) {
    if (!db || !event_id || !event_id[0]) return EMS_BAD_REQUEST;
    /* DO NOTHING rather than a unique violation: on PostgreSQL an error would abort the caller's transaction. */
    ems_rc rc = ems_db_exec(db,
                            "INSERT INTO inbox (event_id, received_at) VALUES ($1, $2) "
                            "ON CONFLICT (event_id) DO NOTHING",
                            "si", event_id, now_ms());
    if (rc != EMS_OK) return rc;
    return ems_db_changes(db) == 1 ? EMS_OK : EMS_CONFLICT;
}

long ems_outbox_pending(ems_outbox *o) {
    if (!o) return -1;
    ems_db *db = ems_store_get(o->store);
    if (!db) return -1;
    ems_rows *rows = NULL;
    long n = -1;
    if (ems_db_query(db, &rows, "SELECT COUNT(*) FROM outbox", "") == EMS_OK) n = (long)ems_rows_int(rows, 0, 0);
    ems_rows_free(rows);
    ems_store_put(o->store, db);
    return n;
}

static ems_rc relay_delete(ems_outbox *o, int64_t id) {
    ems_db *db = ems_store_get(o->store);
    if (!db) return EMS_UNAVAILABLE;
    ems_rc rc = ems_db_exec(db, "DELETE FROM outbox WHERE id = $1", "i", id);
    ems_store_put(o->store, db);
    return rc;
}

/*
 * Publishes one batch in order.  *full says the batch was a whole one, so
 * more may be waiting.  Returns the first failure, which ends the batch.
 */
static ems_rc relay_batch(ems_outbox *o, int *full) {
    ems_rows *rows = NULL;
    ems_db *db = ems_store_get(o->store);
    if (!db) return EMS_UNAVAILABLE;
    ems_rc rc =
        ems_db_query(db, &rows, "SELECT id, queue, body FROM outbox ORDER BY id LIMIT $1", "i", (int64_t)RELAY_BATCH);
    ems_store_put(o->store, db);
    if (rc != EMS_OK) return rc;
    size_t n = ems_rows_count(rows);
    for (size_t i = 0; i < n && rc == EMS_OK; i++) {
        int64_t id = ems_rows_int(rows, i, 0);
        const char *queue = ems_rows_text(rows, i, 1), *body = ems_rows_text(rows, i, 2);
        rc = ems_bus_publish(o->bus, queue, body, strlen(body));
        if (rc == EMS_OK) rc = relay_delete(o, id);
        if (rc != EMS_OK)
            ems_log(EMS_LOG_DEBUG, "outbox.publish_failed", "id=%lld queue=%s rc=%s", (long long)id, queue,
                    ems_rc_code(rc));
    }
    *full = n == RELAY_BATCH;
    ems_rows_free(rows);
    return rc;
}

/* Sleeps up to ms, or until kicked or stopped. */
static void relay_wait(ems_outbox *o, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->mu);
    while (!o->stop && !o->kicked)
        if (pthread_cond_timedwait(&o->cv, &o->mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&o->mu);
}

static void *relay_main(void *arg) {
    ems_outbox *o = arg;
    long backoff = 0;
    for (;;) {
        pthread_mutex_lock(&o->mu);
        int stop = o->stop;
        o->kicked = 0; /* a kick from now on wakes the next wait */
        pthread_mutex_unlock(&o->mu);
        if (stop) break;

        int full = 0;
        pthread_mutex_lock(&o->relay_mu);
        ems_rc rc = relay_batch(o, &full);
        pthread_mutex_unlock(&o->relay_mu);
        long wait;
        if (rc == EMS_OK) {
            if (backoff) ems_log(EMS_LOG_INFO, "outbox.resumed", "engine=%s", ems_store_engine_name(o->store));
            backoff = 0;
            wait = full ? 0 : RELAY_IDLE_MS;
        } else {
            /* Once per stall, not once per try: an embedded bus may have no consumer for a while. */
            if (!backoff)
                ems_log(rc == EMS_AGAIN ? EMS_LOG_INFO : EMS_LOG_WARN, "outbox.stalled", "engine=%s rc=%s",
                        ems_store_engine_name(o->store), ems_rc_code(rc));
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
            wait = backoff;
        }
        if (wait) relay_wait(o, wait);
    }
    return NULL;
}

ems_rc ems_outbox_start(ems_store *store, ems_bus *bus, ems_outbox **out) {
    if (!store || !bus || !out) return EMS_INTERNAL;
    ems_outbox *o = calloc(1, sizeof *o);
    if (!o) return EMS_NOMEM;
    o->store = store;
    o->bus = bus;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->relay_mu, NULL);
    if (pthread_create(&o->thread, NULL, relay_main, o) != 0) {
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        pthread_mutex_destroy(&o->relay_mu);
        free(o);
        return EMS_INTERNAL;
    }
    *out = o;
    return EMS_OK;
}

void ems_outbox_kick(ems_outbox *o) {
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    o->kicked = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void ems_outbox_halt(ems_outbox *o) {
    if (!o || o->joined) return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    o->joined = 1;
}

void ems_outbox_stop(ems_outbox *o) {
    if (!o) return;
    ems_outbox_halt(o);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->relay_mu);
    free(o);
}

ems_rc ems_outbox_flush(ems_outbox *o) {
    if (!o) return EMS_OK;
    int full = 1;
    ems_rc rc = EMS_OK;
    pthread_mutex_lock(&o->relay_mu);
    for (int pass = 0; pass < FLUSH_PASSES && full && rc == EMS_OK; pass++) rc = relay_batch(o, &full);
    pthread_mutex_unlock(&o->relay_mu);
    if (rc != EMS_OK || full) ems_outbox_kick(o); /* the thread finishes the job */
    return rc;
}
