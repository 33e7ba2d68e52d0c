/*
 * relay.c — the middle of bench/ingest's two-hop broker ceiling: consumes
 * one queue and republishes every message, unchanged, to another, the way
 * the balancer forwards readings but with no work on them.  Like the
 * balancer it takes a batch of deliveries (up to BATCH, or what came within
 * WAIT_MS of the first), publishes them persistent with publisher confirms,
 * waits for the confirms, and only then multi-acks the batch: nothing is
 * acknowledged before the broker holds its copy.  run.sh compiles it into
 * its temp dir; it is not part of the product.
 *
 *   relay HOST PORT USER PASSWORD FROM_QUEUE TO_QUEUE
 *   -> "relayed=<n>" on stdout when stopped by SIGTERM / SIGINT
 *
 * TO_QUEUE is declared durable here (FROM_QUEUE is the producer's).  Exits 0
 * when stopped by a signal, 1 on an AMQP error.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

enum { PREFETCH = 1000, BATCH = 500, WAIT_MS = 20 };

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rpc_ok(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 1;
    fprintf(stderr, "relay: %s failed (reply type %d)\n", what, (int)r.reply_type);
    return 0;
}

static amqp_connection_state_t connect_to(char **argv) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock || amqp_socket_open(sock, argv[1], atoi(argv[2])) != AMQP_STATUS_OK) {
        fprintf(stderr, "relay: cannot connect to %s:%s\n", argv[1], argv[2]);
        amqp_destroy_connection(conn);
        return NULL;
    }
    if (!rpc_ok(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, argv[3], argv[4]), "login")) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, 1);
    if (!rpc_ok(amqp_get_rpc_reply(conn), "channel.open")) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

/* Reads frames until every tag up to `last` is confirmed; 0 on success. */
static int wait_confirms(amqp_connection_state_t pub, uint64_t last) {
    uint64_t confirmed = 0;
    while (confirmed < last) {
        amqp_frame_t f;
        if (amqp_simple_wait_frame(pub, &f) != AMQP_STATUS_OK) return -1;
        if (f.frame_type != AMQP_FRAME_METHOD) continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            if (a->delivery_tag > confirmed) confirmed = a->delivery_tag;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf(stderr, "relay: the broker nacked a publish\n");
            return -1;
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            fprintf(stderr, "relay: closed by the broker\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: relay HOST PORT USER PASSWORD FROM_QUEUE TO_QUEUE\n");
        return 2;
    }
    int rc = 1;
    long long relayed = 0;
    uint64_t published = 0;
    size_t n = 0; /* deliveries held in batch[] */
    amqp_envelope_t *batch = calloc(BATCH, sizeof *batch);
    amqp_connection_state_t in = connect_to(argv), out = connect_to(argv);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT,
                                     .content_type = amqp_cstring_bytes("application/json")};
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (!batch || !in || !out) goto cleanup;

    amqp_queue_declare(out, 1, amqp_cstring_bytes(argv[6]), 0, 1, 0, 0, amqp_empty_table);
    if (!rpc_ok(amqp_get_rpc_reply(out), "queue.declare")) goto cleanup;
    amqp_confirm_select(out, 1);
    if (!rpc_ok(amqp_get_rpc_reply(out), "confirm.select")) goto cleanup;
    amqp_basic_qos(in, 1, 0, PREFETCH, 0);
    if (!rpc_ok(amqp_get_rpc_reply(in), "basic.qos")) goto cleanup;
    /* The producer declares FROM_QUEUE: wait for it as drain does. */
    for (amqp_channel_t ch = 1;; ch++) {
        if (ch > 1) {
            amqp_channel_open(in, ch);
            if (!rpc_ok(amqp_get_rpc_reply(in), "channel.open")) goto cleanup;
            amqp_basic_qos(in, ch, 0, PREFETCH, 0);
        }
        amqp_basic_consume(in, ch, amqp_cstring_bytes(argv[5]), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        if (amqp_get_rpc_reply(in).reply_type == AMQP_RESPONSE_NORMAL) {
            break;
        }
        if (stop || ch > 1000) goto cleanup;
        struct timespec pause = {.tv_nsec = 20 * 1000000};
        nanosleep(&pause, NULL);
    }

    while (!stop) {
        int64_t until = 0;
        /* A batch: the first delivery waits up to a second, the rest up to WAIT_MS after it. */
        while (n < BATCH) {
            int64_t left = n ? until - now_ms() : 1000;
            if (left <= 0 || stop) break;
            struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
            amqp_maybe_release_buffers(in);
            amqp_rpc_reply_t r = amqp_consume_message(in, &batch[n], &tv, 0);
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) break;
            if (!rpc_ok(r, "consume")) goto cleanup;
            if (!n) until = now_ms() + WAIT_MS;
            n++;
        }
        if (!n) continue;
        for (size_t i = 0; i < n; i++) {
            if (amqp_basic_publish(out, 1, amqp_empty_bytes, amqp_cstring_bytes(argv[6]), 0, 0, &props,
                                   batch[i].message.body) != AMQP_STATUS_OK) {
                fprintf(stderr, "relay: publish failed\n");
                goto cleanup;
            }
        }
        published += n;
        if (wait_confirms(out, published) != 0) goto cleanup;
        amqp_basic_ack(in, batch[n - 1].channel, batch[n - 1].delivery_tag, 1);
        relayed += (long long)n;
        for (size_t i = 0; i < n; i++) amqp_destroy_envelope(&batch[i]);
        n = 0;
    }
    rc = 0;
    printf("relayed=%lld\n", relayed);
cleanup:
    for (size_t i = 0; i < n; i++) amqp_destroy_envelope(&batch[i]);
    if (in) {
        amqp_connection_close(in, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(in);
    }
    if (out) {
        amqp_connection_close(out, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(out);
    }
    free(batch);
    return rc;
}
