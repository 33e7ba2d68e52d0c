/*
 * test_metrics.c — the Prometheus rendering: format and grouping, histogram
 * buckets, escaping, refusal of bad names and kinds, and exact totals when
 * several threads count at once.
 *
 * Metrics are process-wide and never reset, so every test uses label values
 * and names of its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(void) {
    size_t len = 0;
    char *text = ems_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* The value of the sample line that starts with `series ` (whole line match), or -1 if absent. */
static double sample(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if ((size_t)(end - line) > n && strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = *end ? end + 1 : end;
    }
    return -1;
}

/*
 * Every line is a HELP, a TYPE, or a sample of the family whose TYPE came
 * last (families are not interleaved), and every line ends with a newline.
 */
static void test_render_format(void **state) {
    (void)state;
    ems_metrics_count("ems_test_things_total", "Things counted.", 3);
    ems_metrics_count("ems_test_things_total", "Things counted.", 2.5);
    ems_metrics_gauge("ems_test_level", "A level.", 7);
    ems_metrics_gauge("ems_test_level", "A level.", -1.25);
    ems_metrics_http("GET", "/t/format", 200, 0.01);
    ems_metrics_bus("q.format", "ack");
    char *text = render();

    assert_non_null(strstr(text, "# HELP ems_test_things_total Things counted.\n"
                                 "# TYPE ems_test_things_total counter\n"
                                 "ems_test_things_total 5.5\n"));
    assert_non_null(strstr(text, "# HELP ems_test_level A level.\n"
                                 "# TYPE ems_test_level gauge\n"
                                 "ems_test_level -1.25\n"));
    assert_non_null(strstr(text, "# TYPE ems_http_requests_total counter\n"));
    assert_non_null(strstr(text, "# TYPE ems_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE ems_bus_messages_total counter\n"));
    assert_true(sample(text, "ems_http_requests_total{method=\"GET\",route=\"/t/format\",status=\"200\"}") == 1);
    assert_true(sample(text, "ems_bus_messages_total{queue=\"q.format\",verdict=\"ack\"}") == 1);

    assert_int_equal(text[strlen(text) - 1], '\n');
    char family[128] = "";
    int types = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%127s", family), 1);
            types++;
            continue;
        }
        assert_true(family[0] != '\0');
        /* A histogram's samples carry a suffix after the family name. */
        assert_int_equal(strncmp(line, family, strlen(family)), 0);
        char after = line[strlen(family)];
        assert_true(after == ' ' || after == '{' || after == '_');
        const char *value = strrchr(line, ' ');
        assert_non_null(value);
        char *end;
        strtod(value + 1, &end);
        assert_int_equal(*end, '\0');
    }
    assert_true(types >= 5);
    free(text);
}

static void test_histogram_buckets(void **state) {
    (void)state;
    /* 0.0005 sits on a bound: `le` is inclusive. */
    const double durations[] = {0.0005, 0.003, 0.7, 5.0};
    for (size_t i = 0; i < 4; i++) ems_metrics_http("GET", "/t/hist", 200, durations[i]);
    ems_metrics_http("DELETE", "/t/hist", 404, 0.0001);
    char *text = render();

    static const struct {
        const char *le;
        double count;
    } expect[] = {{"0.0005", 2}, {"0.001", 2}, {"0.0025", 2}, {"0.005", 3}, {"0.01", 3}, {"0.025", 3}, {"0.05", 3},
                  {"0.1", 3},    {"0.25", 3},  {"0.5", 3},    {"1", 4},     {"2.5", 4},  {"+Inf", 5}};
    char series[160];
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        snprintf(series, sizeof series, "ems_http_request_duration_seconds_bucket{route=\"/t/hist\",le=\"%s\"}",
                 expect[i].le);
        assert_true(sample(text, series) == expect[i].count);
    }
    assert_true(sample(text, "ems_http_request_duration_seconds_count{route=\"/t/hist\"}") == 5);
    double sum = sample(text, "ems_http_request_duration_seconds_sum{route=\"/t/hist\"}");
    assert_true(sum > 5.7036 - 1e-9 && sum < 5.7036 + 1e-9); /* the DELETE counts too */
    assert_true(sample(text, "ems_http_requests_total{method=\"GET\",route=\"/t/hist\",status=\"200\"}") == 4);
    assert_true(sample(text, "ems_http_requests_total{method=\"DELETE\",route=\"/t/hist\",status=\"404\"}") == 1);

    /* Buckets come in increasing order, +Inf last, then _sum and _count. */
    const char *first = strstr(text, "_bucket{route=\"/t/hist\",le=\"0.0005\"}");
    const char *inf = strstr(text, "_bucket{route=\"/t/hist\",le=\"+Inf\"}");
    const char *sum_line = strstr(text, "_sum{route=\"/t/hist\"}");
    assert_true(first && inf && sum_line && first < inf && inf < sum_line);
    free(text);
}

static void test_label_escaping(void **state) {
    (void)state;
    ems_metrics_bus("q\"a\\b\nc", "ack");
    ems_metrics_count("ems_test_escaped_help_total", "line one\nback\\slash \"quoted\"", 1);
    char route[600];
    memset(route, 'r', sizeof route - 1);
    route[0] = '/';
    route[sizeof route - 1] = '\0';
    ems_metrics_http("GET", route, 200, 0.001); /* longer than the lookup's stack buffer */
    ems_metrics_http("GET", route, 200, 0.001);
    char *text = render();

    assert_true(sample(text, "ems_bus_messages_total{queue=\"q\\\"a\\\\b\\nc\",verdict=\"ack\"}") == 1);
    /* In HELP only backslash and newline are escaped. */
    assert_non_null(strstr(text, "# HELP ems_test_escaped_help_total line one\\nback\\\\slash \"quoted\"\n"));
    char series[700];
    snprintf(series, sizeof series, "ems_http_requests_total{method=\"GET\",route=\"%s\",status=\"200\"}", route);
    assert_true(sample(text, series) == 2);
    free(text);
}

static void test_refusals(void **state) {
    (void)state;
    ems_metrics_count("9starts_with_digit", "bad", 1);
    ems_metrics_count("has space", "bad", 1);
    ems_metrics_count("", "bad", 1);
    ems_metrics_count(NULL, "bad", 1);
    ems_metrics_count("ems_test_kind_total", "a counter", 1);
    ems_metrics_gauge("ems_test_kind_total", "now a gauge?", 50);    /* another kind: ignored */
    ems_metrics_count("ems_test_kind_total", "a counter", -4);       /* counters never go down */
    ems_metrics_count("ems_http_requests_total", "fixed family", 1); /* not reachable by name */
    char *text = render();
    assert_null(strstr(text, "starts_with_digit"));
    assert_null(strstr(text, "has space"));
    assert_true(sample(text, "ems_test_kind_total") == 1);
    assert_null(strstr(text, "# TYPE ems_test_kind_total gauge"));
    assert_true(sample(text, "ems_http_requests_total") == -1);
    free(text);
}

#define THREADS 4
#define ROUNDS 20000

static void *count_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        ems_metrics_count("ems_test_concurrent_total", "Counted by threads.", 1);
        ems_metrics_http("POST", "/t/concurrent", 201, 0.002);
        ems_metrics_bus("q.concurrent", i % 2 ? "ack" : "retry");
        if (i % 5000 == 0) free(ems_metrics_render(NULL)); /* readers meanwhile */
    }
    return NULL;
}

static void test_concurrency_exact(void **state) {
    (void)state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, count_worker, NULL), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    char *text = render();
    assert_true(sample(text, "ems_test_concurrent_total") == THREADS * ROUNDS);
    assert_true(sample(text, "ems_http_requests_total{method=\"POST\",route=\"/t/concurrent\",status=\"201\"}") ==
                THREADS * ROUNDS);
    assert_true(sample(text, "ems_http_request_duration_seconds_count{route=\"/t/concurrent\"}") == THREADS * ROUNDS);
    assert_true(sample(text, "ems_http_request_duration_seconds_bucket{route=\"/t/concurrent\",le=\"0.001\"}") == 0);
    assert_true(sample(text, "ems_http_request_duration_seconds_bucket{route=\"/t/concurrent\",le=\"0.0025\"}") ==
                THREADS * ROUNDS);
    assert_true(sample(text, "ems_bus_messages_total{queue=\"q.concurrent\",verdict=\"ack\"}") == THREADS * ROUNDS / 2);
    assert_true(sample(text, "ems_bus_messages_total{queue=\"q.concurrent\",verdict=\"retry\"}") ==
                THREADS * ROUNDS / 2);
    free(text);
}

/* Many distinct series force the table to grow; none is lost on the way. */
static void test_many_series(void **state) {
    (void)state;
    char queue[32];
    for (int i = 0; i < 1500; i++) {
        snprintf(queue, sizeof queue, "q.many.%d", i);
        ems_metrics_bus(queue, "reject");
        if (i % 3 == 0) ems_metrics_bus(queue, "reject");
    }
    char *text = render();
    char series[96];
    for (int i = 0; i < 1500; i++) {
        snprintf(series, sizeof series, "ems_bus_messages_total{queue=\"q.many.%d\",verdict=\"reject\"}", i);
        assert_true(sample(text, series) == (i % 3 == 0 ? 2 : 1));
    }
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_format),     cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_label_escaping),    cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_concurrency_exact), cmocka_unit_test(test_many_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
