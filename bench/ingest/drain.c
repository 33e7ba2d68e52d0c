/*
 * drain.c — the consumer half of bench/ingest's broker ceiling: consumes
 * messages from one queue with a large prefetch and multi-acks, doing no
 * work on them, and prints the epoch ms of the first and last delivery.
 * run.sh compiles it into its temp dir; it is not part of the product.
 *
 *   drain HOST PORT USER PASSWORD QUEUE N [TIMEOUT_S]
 *   -> "first_ms=<ms> last_ms=<ms> consumed=<n>" on stdout
 *
 * Stops after N messages, or (N = 0, when the producer's count is not known
 * in advance) once no message came for IDLE_S seconds after the first one.
 * Exits 0 when it stopped so, 1 on an AMQP error, 3 when TIMEOUT_S passed
 * first (the line still says how many came).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

enum { PREFETCH = 1000, ACK_EVERY = 500, IDLE_S = 3 };

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rpc_ok(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 1;
    fprintf(stderr, "drain: %s failed (reply type %d)\n", what, (int)r.reply_type);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: drain HOST PORT USER PASSWORD QUEUE N [TIMEOUT_S]\n");
        return 2;
    }
    long long want = atoll(argv[6]), got = 0;
    int timeout_s = argc > 7 ? atoi(argv[7]) : 120;
    int rc = 1;
    int64_t first = 0, last = 0, deadline = now_ms() + (int64_t)timeout_s * 1000;
    uint64_t unacked_tag = 0;
    int unacked = 0;
    amqp_channel_t channel = 1;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (!sock || amqp_socket_open(sock, argv[1], atoi(argv[2])) != AMQP_STATUS_OK) {
        fprintf(stderr, "drain: cannot connect to %s:%s\n", argv[1], argv[2]);
        goto cleanup;
    }
    if (!rpc_ok(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, argv[3], argv[4]), "login")) goto cleanup;
    /* The producer declares the queue (with its own arguments): until it
     * exists, basic.consume fails and closes the channel; retry on a new one. */
    for (amqp_channel_t ch = 1;; ch++) {
        amqp_channel_open(conn, ch);
        if (!rpc_ok(amqp_get_rpc_reply(conn), "channel.open")) goto cleanup;
        amqp_basic_qos(conn, ch, 0, PREFETCH, 0);
        if (!rpc_ok(amqp_get_rpc_reply(conn), "basic.qos")) goto cleanup;
        amqp_basic_consume(conn, ch, amqp_cstring_bytes(argv[5]), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
        if (amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL) {
            channel = ch;
            break;
        }
        if (now_ms() > deadline || ch > 1000) {
            fprintf(stderr, "drain: queue %s did not appear\n", argv[5]);
            goto cleanup;
        }
        struct timespec pause = {.tv_nsec = 20 * 1000000};
        nanosleep(&pause, NULL);
    }
    while (want == 0 || got < want) {
        amqp_envelope_t env;
        struct timeval tv = {.tv_sec = 1};
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
            if (want == 0 && got > 0 && now_ms() - last >= IDLE_S * 1000) break;
            if (now_ms() > deadline) {
                rc = 3;
                break;
            }
            continue;
        }
        if (!rpc_ok(r, "consume")) goto cleanup;
        last = now_ms();
        if (!got) first = last;
        got++;
        unacked_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        if (++unacked >= ACK_EVERY || got == want) {
            amqp_basic_ack(conn, channel, unacked_tag, 1);
            unacked = 0;
        }
    }
    if (unacked) amqp_basic_ack(conn, channel, unacked_tag, 1);
    if (rc != 3) rc = 0;
    printf("first_ms=%lld last_ms=%lld consumed=%lld\n", (long long)first, (long long)last, got);
cleanup:
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return rc;
}
