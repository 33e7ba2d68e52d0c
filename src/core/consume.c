/*
 * consume.c — consume-once for the bus consumers of every role.
 *
 * One transaction holds the inbox entry and the event's effect, so an event
 * is applied once however often the bus delivers it; the verdict comes from
 * one table of result codes, so every consumer dead-letters and retries by
 * the same rules (see consume.h).
 */
#include "consume.h"

#include <string.h>

#include "log.h"
#include "outbox.h"

/* A field from a message goes into the log only if it cannot break the line or forge a field. */
#define LOG_FIELD_MAX 64

ems_verdict ems_consume_verdict(ems_rc rc) {
    switch (rc) {
    case EMS_OK: return EMS_BUS_ACK;
    case EMS_BAD_REQUEST:
    case EMS_UNAUTHORIZED:
    case EMS_FORBIDDEN:
    case EMS_NOT_FOUND:
    case EMS_METHOD:
    case EMS_TOO_LARGE:
    case EMS_UNSUPPORTED:
    case EMS_DECLINED: return EMS_BUS_REJECT;
    case EMS_CONFLICT:
    case EMS_RATE_LIMITED:
    case EMS_INTERNAL:
    case EMS_UNAVAILABLE:
    case EMS_AGAIN:
    case EMS_NOMEM:
    case EMS_RC_COUNT: break;
    }
    return EMS_BUS_RETRY; /* no case left out: -Wswitch names a new code that needs a decision */
}

static const char *log_field(const char *s) {
    if (!s || !s[0] || strlen(s) > LOG_FIELD_MAX) return "-";
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *p)) return "-";
    return s;
}

static void log_rejected(const char *queue, const char *reason, json_t *event) {
    const char *event_id = json_string_value(json_object_get(event, "event_id"));
    const char *type = json_string_value(json_object_get(event, "type"));
    ems_log(EMS_LOG_WARN, "consume.rejected", "queue=%s reason=%s event_id=%s type=%s", queue ? queue : "-", reason,
            log_field(event_id), log_field(type));
}

ems_verdict ems_consume_once(ems_store *store, const ems_consumer *c, const char *queue, const char *body, size_t len,
                             void *arg) {
    json_error_t jerr;
    json_t *event = json_loadb(body, len, 0, &jerr);
    const char *event_id = NULL;
    ems_db *db = NULL;
    ems_rc rc = EMS_OK;
    ems_verdict verdict = EMS_BUS_RETRY;
    if (!event) {
        if (json_error_code(&jerr) == json_error_out_of_memory) goto cleanup;
        log_rejected(queue, "not_json", NULL);
        verdict = EMS_BUS_REJECT;
        goto cleanup;
    }
    if (json_unpack(event, "{s:s}", "event_id", &event_id) != 0 || !event_id[0]) {
        log_rejected(queue, "no_event_id", event);
        verdict = EMS_BUS_REJECT;
        goto cleanup;
    }
    if (c->check) rc = c->check(event, arg);
    if (rc == EMS_OK) {
        db = ems_store_get(store);
        rc = db ? ems_db_begin(db) : EMS_UNAVAILABLE;
        if (rc == EMS_OK) rc = ems_inbox_first(db, event_id);
        if (rc == EMS_CONFLICT) { /* applied before: nothing to do again */
            ems_db_rollback(db);
            verdict = EMS_BUS_ACK;
            goto cleanup;
        }
        if (rc == EMS_OK) rc = c->apply(db, event, arg);
        if (rc == EMS_OK) rc = ems_db_commit(db);
        if (rc != EMS_OK && db) ems_db_rollback(db);
    }
    verdict = ems_consume_verdict(rc);
    if (verdict == EMS_BUS_REJECT) log_rejected(queue, ems_rc_code(rc), event);
    else if (verdict == EMS_BUS_RETRY)
        ems_log(EMS_LOG_DEBUG, "consume.retry", "queue=%s reason=%s event_id=%s", queue, ems_rc_code(rc),
                log_field(event_id));
    if (db) { /* before after_commit: a push or a kick must not hold a connection */
        ems_store_put(store, db);
        db = NULL;
    }
    if (verdict == EMS_BUS_ACK && c->after_commit) c->after_commit(event, arg);
cleanup:
    if (db) ems_store_put(store, db);
    json_decref(event);
    return verdict;
}
