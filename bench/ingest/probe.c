/*
 * probe.c — bench/ingest's end-to-end latency: publishes one reading at a
 * time to the ingest queue and times how long it takes to show up in the
 * device's hourly series (GET /api/consumption/{id}?date=&tz=UTC, asked every
 * millisecond on one kept-alive connection), i.e. what "a reading shows up in
 * the owner's hourly series within a second" asks.  The clock starts just
 * before the publish.  run.sh compiles it into its temp dir; it is not part
 * of the product.
 *
 *   probe HOST PORT USER PASSWORD QUEUE SERIES_URL TOKEN DEVICE_ID SAMPLES PAUSE_MS
 *   -> one "lat_ms=<ms>" line per sample on stdout
 *
 * SERIES_URL is ".../api/consumption/<device id>".  Each reading is 0.001
 * kWh at the wall-clock millisecond it is sent (never a whole second, which
 * is the simulator's grid), so no two samples of any run coincide and each
 * adds to its day's total.  Exits 0 when every sample was seen, 3 when one
 * took over 10 s (the rest are not sent), 1 on an error.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KWH 0.001
#define GIVE_UP_MS 10000

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void nap_us(long us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
    buffer *b = ctx;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        size_t cap = (b->len + add + 1) * 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* The day's total_kwh, or a negative number when it cannot be read. */
static double day_total(CURL *curl, buffer *b) {
    long status = 0;
    b->len = 0;
    if (curl_easy_perform(curl) != CURLE_OK) return -1;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    const char *t = b->data ? strstr(b->data, "\"total_kwh\":") : NULL;
    if (status != 200 || !t) return -2;
    return strtod(t + strlen("\"total_kwh\":"), NULL);
}

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: probe HOST PORT USER PASSWORD QUEUE SERIES_URL TOKEN DEVICE_ID SAMPLES PAUSE_MS\n");
        return 2;
    }
    int rc = 1, samples = atoi(argv[9]), pause_ms = atoi(argv[10]);
    char url[1024], auth[2048], body[256];
    buffer b = {0};
    struct curl_slist *headers = NULL;
    CURL *curl = NULL;

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT,
                                     .content_type = amqp_cstring_bytes("application/json")};
    if (!sock || amqp_socket_open(sock, argv[1], atoi(argv[2])) != AMQP_STATUS_OK ||
        amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, argv[3], argv[4]).reply_type !=
            AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "probe: cannot log in to the broker at %s:%s\n", argv[1], argv[2]);
        goto cleanup;
    }
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) goto cleanup;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(curl = curl_easy_init())) goto cleanup;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[7]);
    headers = curl_slist_append(headers, auth);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);

    for (int i = 0; i < samples; i++) {
        int64_t ts = wall_ms();
        if (ts % 1000 == 0) ts++;
        time_t day = (time_t)(ts / 1000);
        struct tm tm;
        char date[16];
        gmtime_r(&day, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        snprintf(url, sizeof url, "%s?date=%s&tz=UTC", argv[6], date);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        double before = day_total(curl, &b), seen = before, t0;
        if (before < 0) {
            fprintf(stderr, "probe: cannot read %s (%.0f)\n", url, before);
            goto cleanup;
        }
        int len = snprintf(body, sizeof body, "{\"timestamp\":%lld,\"device_id\":\"%s\",\"measurement_value\":%.3f}",
                           (long long)ts, argv[8], KWH);
        t0 = now_ms();
        if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(argv[5]), 0, 0, &props,
                               (amqp_bytes_t){.len = (size_t)len, .bytes = body}) != AMQP_STATUS_OK) {
            fprintf(stderr, "probe: publish failed\n");
            goto cleanup;
        }
        while (seen < before + KWH / 2) {
            if (now_ms() - t0 > GIVE_UP_MS) {
                fprintf(stderr, "probe: sample %d not seen after %d ms\n", i, GIVE_UP_MS);
                rc = 3;
                goto cleanup;
            }
            nap_us(1000);
            seen = day_total(curl, &b);
        }
        printf("lat_ms=%.1f\n", now_ms() - t0);
        fflush(stdout);
        nap_us((long)pause_ms * 1000);
    }
    rc = 0;
cleanup:
    if (curl) curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(b.data);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return rc;
}
