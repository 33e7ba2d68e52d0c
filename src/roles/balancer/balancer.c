/*
 * balancer.c — the balancer role: spreads readings over monitoring replicas.
 *
 * Consumes external.data.collection.queue in batches, sends every reading
 * to internal.loadbalancer.monitoring.queue.{r} where r is the replica its
 * device hashes to (ems_replica_of, core), several readings per forwarded
 * message, and acknowledges its input only once the broker confirmed every
 * forward (else the whole batch comes again; monitoring ignores the
 * readings it already stored).  A message that cannot be parsed is
 * rejected to the dead-letter queue and counted.  No store of its own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "reading.h"
#include "replica.h"
#include "roles.h"

#define BALANCER_PREFETCH 2000
#define BALANCER_BATCH 1000
#define BALANCER_WAIT_MS 20
/* Readings per forwarded message. */
#define FORWARD_MAX 1000

typedef struct {
    reading *r;
    size_t n, cap;
} replica_group;

typedef struct balancer_role {
    ems_role_env *env;
    const char *input;
    unsigned replicas;
    char (*queues)[300]; /* queues[r - 1]: replica r */
    ems_tz *zone;        /* reading_tz: places timestamps without a zone (NULL: UTC) */
} balancer_role;

static int group_add(replica_group *g, const reading *r) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        reading *grown = realloc(g->r, cap * sizeof *grown);
        if (!grown) return -1;
        g->r = grown;
        g->cap = cap;
    }
    g->r[g->n++] = *r;
    return 0;
}

/* Sends one replica's readings, FORWARD_MAX per message, with one wait for the confirms. */
static ems_rc forward(balancer_role *b, const char *queue, const replica_group *g) {
    size_t nmsg = (g->n + FORWARD_MAX - 1) / FORWARD_MAX;
    char **bodies = calloc(nmsg, sizeof *bodies);
    size_t *lens = calloc(nmsg, sizeof *lens);
    ems_rc rc = EMS_NOMEM;
    if (!bodies || !lens) goto cleanup;
    for (size_t i = 0; i < nmsg; i++) {
        size_t from = i * FORWARD_MAX, count = g->n - from < FORWARD_MAX ? g->n - from : FORWARD_MAX;
        if (!(bodies[i] = readings_dump(g->r + from, count, &lens[i]))) goto cleanup;
    }
    rc = ems_bus_publish_batch(b->env->bus, queue, (const char *const *)bodies, lens, nmsg);
cleanup:
    for (size_t i = 0; bodies && i < nmsg; i++) free(bodies[i]);
    free(bodies);
    free(lens);
    return rc;
}

static void balancer_on_readings(const char *queue, const ems_bus_msg *msgs, size_t n, ems_verdict *verdicts,
                                 void *ctx) {
    balancer_role *b = ctx;
    ems_rc rc = EMS_OK;
    size_t total = 0;
    replica_group *groups = calloc(b->replicas, sizeof *groups);
    if (!groups) rc = EMS_NOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        reading *rs = NULL;
        size_t nr = 0;
        char err[256];
        if (readings_parse(msgs[i].body, msgs[i].len, b->zone, &rs, &nr, err, sizeof err) != EMS_OK) {
            verdicts[i] = EMS_BUS_REJECT;
            ems_log(EMS_LOG_WARN, "balancer.malformed", "queue=%s len=%zu reason=\"%s\"", queue, msgs[i].len, err);
            ems_metrics_count("ems_balancer_malformed_total", "messages of readings that could not be parsed", 1);
            continue;
        }
        for (size_t k = 0; k < nr && !rc; k++)
            if (group_add(&groups[ems_replica_of(rs[k].device_id, b->replicas) - 1], &rs[k]) != 0) rc = EMS_NOMEM;
        free(rs);
        verdicts[i] = EMS_BUS_ACK; /* provisional: only once every forward is confirmed */
        total += nr;
    }
    for (unsigned r = 0; r < b->replicas && !rc; r++)
        if (groups[r].n) rc = forward(b, b->queues[r], &groups[r]);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            if (verdicts[i] == EMS_BUS_ACK) verdicts[i] = EMS_BUS_RETRY;
        ems_log(EMS_LOG_WARN, "balancer.forward_failed", "queue=%s messages=%zu error=%s", queue, n, ems_rc_code(rc));
    } else {
        ems_metrics_count("ems_balancer_forwarded_total", "readings forwarded to monitoring replicas", (double)total);
    }
    for (unsigned r = 0; groups && r < b->replicas; r++) free(groups[r].r);
    free(groups);
}

static void balancer_stop(void *state) {
    balancer_role *b = state;
    if (!b) return;
    free(b->queues);
    ems_tz_free(b->zone);
    free(b);
}

static ems_rc balancer_start(ems_role_env *env, void **state) {
    const ems_conf *c = env->conf;
    const char *prefix = ems_conf_str(c, "rabbitmq_monitoring_queue_prefix");
    ems_rc rc = EMS_OK;
    balancer_role *b = calloc(1, sizeof *b);
    if (!b) return EMS_NOMEM;
    b->env = env;
    b->input = ems_conf_str(c, "rabbitmq_data_collection_queue");
    b->replicas = (unsigned)ems_conf_int(c, "replicas");
    /* The same zone as monitoring's: a message must get the same verdict wherever it is parsed. */
    char err[256];
    if ((rc = readings_zone_open(ems_conf_str(c, "reading_tz"), &b->zone, err, sizeof err)) != EMS_OK) {
        ems_log(EMS_LOG_ERROR, "balancer.config", "reason=\"%s\"", err);
        goto cleanup;
    }
    if (!(b->queues = calloc(b->replicas, sizeof *b->queues))) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    /* Every replica queue exists from the start: nothing forwarded waits for its consumer to declare it. */
    for (unsigned r = 0; r < b->replicas && !rc; r++) {
        snprintf(b->queues[r], sizeof b->queues[r], "%s%u", prefix, r + 1);
        rc = ems_bus_declare(env->bus, b->queues[r]);
    }
    if (!rc) rc = ems_bus_declare(env->bus, b->input);
    if (!rc)
        rc = ems_bus_consume_batch(env->bus, b->input, BALANCER_PREFETCH, BALANCER_BATCH, BALANCER_WAIT_MS,
                                   balancer_on_readings, b);
    if (!rc) ems_log(EMS_LOG_INFO, "balancer.routing", "queue=%s replicas=%u", b->input, b->replicas);
cleanup:
    if (rc) {
        balancer_stop(b);
        return rc;
    }
    *state = b;
    return EMS_OK;
}

const ems_role_def ems_role_balancer = {
    .name = "balancer",
    .has_store = 0,
    .start = balancer_start,
    .stop = balancer_stop,
};
