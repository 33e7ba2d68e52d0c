/*
 * sender.c — the three targets behind one interface (see sender.h).  HTTP
 * answers are classified by one table of status ranges.
 */
#include "sender.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "httpc.h"

typedef enum { TARGET_BUS, TARGET_HTTP } target_kind;

struct sim_sender {
    target_kind kind;
    ems_bus *bus;
    int own_bus;
    char *queue;
    char *exchange; /* NULL: the default exchange, the queue declared first */
    sim_httpc *http;
    char *token;
    sim_buf resp;
    const char **bodies; /* scratch for ems_bus_publish_batch */
    size_t *lens;
    size_t scratch;
    char where[384];
};

/* host:port of an amqp URL, leaving out the user and the password. */
static void amqp_where(const char *url, char *out, size_t cap) {
    const char *p = url + strlen("amqp://"), *at = strrchr(p, '@');
    if (at) p = at + 1;
    snprintf(out, cap, "%.*s", (int)strcspn(p, "/?"), p);
}

ems_rc sim_sender_open(const ems_sim_config *c, sim_sender **out, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    sim_sender *s = calloc(1, sizeof *s);
    char host[256];
    if (!s) return EMS_NOMEM;
    if (c->target.kind == EMS_SIM_TARGET_HTTP) {
        s->kind = TARGET_HTTP;
        if ((rc = sim_httpc_open(ems_sim_config_url(c), &s->http, err, errlen)) != EMS_OK) goto cleanup;
        if (!(s->token = strdup(ems_sim_config_token(c)))) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
        snprintf(s->where, sizeof s->where, "http://%s", sim_httpc_where(s->http));
    } else {
        s->kind = TARGET_BUS;
        s->own_bus = 1;
        if ((rc = ems_bus_open(ems_sim_config_url(c), &s->bus, err, errlen)) != EMS_OK) goto cleanup;
        if (!(s->queue = strdup(ems_sim_config_queue(c)))) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
        if (c->target.exchange && !(s->exchange = strdup(c->target.exchange))) {
            rc = EMS_NOMEM;
            goto cleanup;
        }
        amqp_where(ems_sim_config_url(c), host, sizeof host);
        if (s->exchange) snprintf(s->where, sizeof s->where, "%s exchange %s key %s", host, s->exchange, s->queue);
        else snprintf(s->where, sizeof s->where, "%s queue %s", host, s->queue);
    }
    *out = s;
    s = NULL;
cleanup:
    sim_sender_free(s);
    return rc;
}

ems_rc sim_sender_open_bus(ems_bus *bus, const char *queue, sim_sender **out) {
    sim_sender *s = calloc(1, sizeof *s);
    if (!s) return EMS_NOMEM;
    s->kind = TARGET_BUS;
    s->bus = bus;
    if (!(s->queue = strdup(queue ? queue : EMS_SIM_DEFAULT_QUEUE))) {
        free(s);
        return EMS_NOMEM;
    }
    snprintf(s->where, sizeof s->where, "queue %s", s->queue);
    *out = s;
    return EMS_OK;
}

void sim_sender_free(sim_sender *s) {
    if (!s) return;
    if (s->own_bus) ems_bus_close(s->bus);
    free(s->queue);
    free(s->exchange);
    sim_httpc_free(s->http);
    free(s->token);
    sim_buf_free(&s->resp);
    free(s->bodies);
    free(s->lens);
    free(s);
}

const char *sim_sender_peer(const sim_sender *s) { return s->kind == TARGET_HTTP ? "server" : "broker"; }

const char *sim_sender_where(const sim_sender *s) { return s->where; }

/* ---- bus ----------------------------------------------------------------- */

static ems_rc bus_result(sim_sender *s, ems_rc rc, char *err, size_t errlen) {
    switch (rc) {
    case EMS_OK: break;
    case EMS_UNAVAILABLE: snprintf(err, errlen, "broker unreachable (%s)", s->where); break;
    case EMS_AGAIN: snprintf(err, errlen, "no consumer took the messages (%s)", s->where); break;
    case EMS_CONFLICT: /* the broker closed the channel: a refusal, not an outage */
        if (s->exchange)
            snprintf(err, errlen,
                     "the broker refused the publish to exchange %s: it does not exist, or this user "
                     "may not write to it",
                     s->exchange);
        else
            snprintf(err, errlen,
                     "the broker refused queue %s: it exists with other arguments (it must be durable, "
                     "dead-lettering to %s.dlq), or this user may not declare it (a publish-only user needs "
                     "--exchange)",
                     s->queue, s->queue);
        break;
    default: snprintf(err, errlen, "publishing to %s failed: %s", s->where, ems_rc_message(rc)); break;
    }
    return rc;
}

static ems_rc bus_send(sim_sender *s, const sim_msg *msgs, size_t n, size_t *done, char *err, size_t errlen) {
    ems_rc rc;
    if (n > s->scratch) {
        const char **b = realloc(s->bodies, n * sizeof *b);
        if (b) s->bodies = b;
        size_t *l = realloc(s->lens, n * sizeof *l);
        if (l) s->lens = l;
        if (!b || !l) return EMS_NOMEM;
        s->scratch = n;
    }
    for (size_t i = 0; i < n; i++) {
        s->bodies[i] = msgs[i].body;
        s->lens[i] = msgs[i].len;
    }
    rc = ems_bus_publish_via(s->bus, s->exchange, s->queue, s->bodies, s->lens, n);
    *done = rc == EMS_OK ? n : 0;
    return bus_result(s, rc, err, errlen);
}

/* ---- http ---------------------------------------------------------------- */

typedef enum { HTTP_DELIVERED, HTTP_RETRY, HTTP_FATAL } http_verdict;

/* First matching range wins.  `malformed` is the verdict for a deliberately malformed message. */
static const struct {
    int lo, hi;
    http_verdict good, malformed;
    const char *hint;
} http_statuses[] = {
    {200, 299, HTTP_DELIVERED, HTTP_DELIVERED, NULL},
    {401, 401, HTTP_FATAL, HTTP_FATAL, "check the ingest token (--token or EMS_INGEST_TOKEN)"},
    {403, 403, HTTP_FATAL, HTTP_FATAL, "the token may not post readings"},
    {404, 404, HTTP_FATAL, HTTP_FATAL, "check the URL: readings go to /api/readings"},
    {413, 413, HTTP_FATAL, HTTP_FATAL, "lower --batch"},
    {400, 400, HTTP_FATAL, HTTP_DELIVERED, NULL},
    {422, 422, HTTP_FATAL, HTTP_DELIVERED, NULL},
    {408, 408, HTTP_RETRY, HTTP_RETRY, NULL},
    {429, 429, HTTP_RETRY, HTTP_RETRY, NULL},
    {502, 504, HTTP_RETRY, HTTP_RETRY, NULL},
    {100, 599, HTTP_FATAL, HTTP_FATAL, NULL},
};

/* The server's own words: {"error":{"message":...}}, or the start of the body. */
static void server_message(const sim_buf *resp, char *out, size_t cap) {
    json_t *root = resp->len ? json_loadb(resp->p, resp->len, 0, NULL) : NULL;
    const char *msg = NULL;
    if (root) {
        json_t *e = json_object_get(root, "error");
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : json_object_get(root, "message");
        if (json_is_string(m)) msg = json_string_value(m);
    }
    if (msg) snprintf(out, cap, "%s", msg);
    else if (resp->len)
        snprintf(out, cap, "%.*s", (int)strcspn(resp->p, "\r\n") < 200 ? (int)strcspn(resp->p, "\r\n") : 200, resp->p);
    else snprintf(out, cap, "no message");
    json_decref(root);
}

static ems_rc http_send(sim_sender *s, const sim_msg *msgs, size_t n, size_t *done, char *err, size_t errlen) {
    *done = 0;
    for (size_t i = 0; i < n; i++) {
        int status = 0;
        size_t k = 0;
        char said[256];
        ems_rc rc = sim_httpc_post(s->http, s->token, msgs[i].body, msgs[i].len, &status, &s->resp, err, errlen);
        if (rc == EMS_UNAVAILABLE) {
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "server unreachable (%s)", why);
        }
        if (rc != EMS_OK) return rc;
        while (status < http_statuses[k].lo || status > http_statuses[k].hi) {
            if (++k == sizeof http_statuses / sizeof http_statuses[0]) break;
        }
        http_verdict v = HTTP_FATAL;
        if (k < sizeof http_statuses / sizeof http_statuses[0])
            v = msgs[i].malformed ? http_statuses[k].malformed : http_statuses[k].good;
        if (v == HTTP_DELIVERED) {
            (*done)++;
            continue;
        }
        server_message(&s->resp, said, sizeof said);
        if (v == HTTP_RETRY) {
            snprintf(err, errlen, "server busy: HTTP %d %s", status, said);
            return EMS_UNAVAILABLE;
        }
        const char *hint = k < sizeof http_statuses / sizeof http_statuses[0] ? http_statuses[k].hint : NULL;
        snprintf(err, errlen, "server refused the readings: HTTP %d: %s%s%s", status, said, hint ? "; " : "",
                 hint ? hint : "");
        return status == 401 ? EMS_UNAUTHORIZED : status == 403 ? EMS_FORBIDDEN : EMS_BAD_REQUEST;
    }
    return EMS_OK;
}

/* ---- either -------------------------------------------------------------- */

ems_rc sim_sender_prepare(sim_sender *s, char *err, size_t errlen) {
    if (s->kind == TARGET_HTTP || s->exchange) return EMS_OK; /* the first POST / publish tells */
    return bus_result(s, ems_bus_declare(s->bus, s->queue), err, errlen);
}

ems_rc sim_sender_send(sim_sender *s, const sim_msg *msgs, size_t n, size_t *done, char *err, size_t errlen) {
    *done = 0;
    if (n == 0) return EMS_OK;
    return s->kind == TARGET_HTTP ? http_send(s, msgs, n, done, err, errlen) : bus_send(s, msgs, n, done, err, errlen);
}
