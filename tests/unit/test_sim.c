/*
 * test_sim.c — the simulator core: the load curve's shape, determinism with
 * a seed, the interval grid, batching, fault injection keeping the good sum
 * exact, config errors that name their key, the CSV source, the controls a
 * window uses (pause, device states, stop, speed), and giving up on an
 * unreachable broker.  Readings are sent through a real in-process bus whose
 * consumer parses every message, as a monitoring replica would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "encode.h"
#include "faults.h"
#include "fixture.h"
#include "log.h"
#include "profile.h"
#include "rng.h"
#include "sim.h"
#include "tz.h"

#define QUEUE "external.data.collection.queue"
#define DEV_A "0a0a0a0a-0000-4000-8000-00000000000a"
#define DEV_B "0b0b0b0b-0000-4000-8000-00000000000b"
#define DEV_C "0c0c0c0c-0000-4000-8000-00000000000c"

/* ---- a consumer that checks every message as a replica would ------------- */

typedef struct {
    char dev[EMS_SIM_ID_LEN + 1];
    int64_t ts;
    int64_t micro;
} rd;

typedef struct {
    pthread_mutex_t lock;
    size_t messages, malformed, arrays, max_array;
    int out_of_order;
    int64_t last_ts;
    rd *v;
    size_t n, cap;
    char *bodies; /* every body, newline-separated, for determinism checks */
    size_t blen, bcap;
} collector;

static void collector_init(collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

static void collector_free(collector *c) {
    free(c->v);
    free(c->bodies);
    pthread_mutex_destroy(&c->lock);
}

/* A reading in either form; 0 if it is not a valid one. */
static int parse_reading(json_t *o, rd *out) {
    json_t *ts = json_object_get(o, "timestamp");
    json_t *dev = json_object_get(o, "device_id");
    json_t *val = json_object_get(o, "measurement_value");
    if (!dev) dev = json_object_get(o, "deviceId");
    if (!val) val = json_object_get(o, "value");
    if (!json_is_object(o) || json_object_size(o) != 3) return 0;
    if (!json_is_string(dev) || !sim_uuid_valid(json_string_value(dev)) || !json_is_number(val)) return 0;
    if (json_is_integer(ts)) {
        out->ts = json_integer_value(ts);
    } else if (json_is_string(ts)) {
        /* The ISO form the simulator writes: UTC, whole seconds. */
        struct tm t = {0};
        char back[32];
        if (sscanf(json_string_value(ts), "%4d-%2d-%2dT%2d:%2d:%2dZ", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour,
                   &t.tm_min, &t.tm_sec) != 6)
            return 0;
        t.tm_year -= 1900;
        t.tm_mon -= 1;
        out->ts = (int64_t)timegm(&t) * 1000;
        ems_iso8601_utc(out->ts, back, sizeof back);
        if (strcmp(back, json_string_value(ts)) != 0) return 0;
    } else {
        return 0;
    }
    snprintf(out->dev, sizeof out->dev, "%s", json_string_value(dev));
    out->micro = llround(json_number_value(val) * 1e6);
    return 1;
}

static void add_reading(collector *c, const rd *r) {
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        assert_non_null(c->v);
    }
    if (r->ts < c->last_ts) c->out_of_order = 1;
    c->last_ts = r->ts;
    c->v[c->n++] = *r;
}

static ems_verdict collect(const char *queue, const char *body, size_t len, void *ctx) {
    collector *c = ctx;
    json_t *root = json_loadb(body, len, 0, NULL);
    (void)queue;
    pthread_mutex_lock(&c->lock);
    c->messages++;
    if (c->blen + len + 2 > c->bcap) {
        c->bcap = (c->bcap + len + 2) * 2;
        c->bodies = realloc(c->bodies, c->bcap);
        assert_non_null(c->bodies);
    }
    memcpy(c->bodies + c->blen, body, len);
    c->blen += len;
    c->bodies[c->blen++] = '\n';
    c->bodies[c->blen] = '\0';
    if (json_is_array(root)) {
        size_t i, n = json_array_size(root);
        json_t *x;
        rd r;
        int ok = n > 0;
        c->arrays++;
        if (n > c->max_array) c->max_array = n;
        json_array_foreach(root, i, x) ok &= parse_reading(x, &r);
        if (!ok) c->malformed++;
        json_array_foreach(root, i, x) if (ok && parse_reading(x, &r)) add_reading(c, &r);
    } else {
        rd r;
        if (root && parse_reading(root, &r)) add_reading(c, &r);
        else c->malformed++;
    }
    pthread_mutex_unlock(&c->lock);
    json_decref(root);
    return EMS_BUS_ACK;
}

static int by_key(const void *a, const void *b) {
    const rd *x = a, *y = b;
    int d = strcmp(x->dev, y->dev);
    if (d) return d;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Sorts, drops repeated (device, timestamp) pairs (checking the copies agree), returns their sum. */
static int64_t distinct_sum(collector *c, size_t *distinct) {
    int64_t sum = 0;
    size_t k = 0;
    qsort(c->v, c->n, sizeof *c->v, by_key);
    for (size_t i = 0; i < c->n; i++) {
        if (i && by_key(&c->v[i], &c->v[i - 1]) == 0) {
            assert_int_equal(c->v[i].micro, c->v[i - 1].micro);
            continue;
        }
        sum += c->v[i].micro;
        k++;
    }
    if (distinct) *distinct = k;
    return sum;
}

/* ---- helpers -------------------------------------------------------------- */

static void config_with(ems_sim_config *c, int ndev) {
    static const char *const ids[] = {DEV_A, DEV_B, DEV_C};
    char err[256];
    ems_sim_config_init(c);
    for (int i = 0; i < ndev; i++) assert_int_equal(ems_sim_config_add_device(c, ids[i], err, sizeof err), EMS_OK);
    c->has_seed = 1;
    c->seed = 42;
    assert_int_equal(ems_sim_config_set_string(&c->timezone, "Europe/Bucharest"), EMS_OK);
}

static int64_t at(const ems_sim_config *c, const char *text) {
    int64_t ms;
    char err[256];
    assert_int_equal(ems_sim_parse_time(c, text, &ms, NULL, err, sizeof err), EMS_OK);
    return ms;
}

typedef struct {
    ems_bus *bus;
    collector col;
    ems_sim *sim;
    ems_sim_stats st;
} run_ctx;

/* Runs a simulation to its end through an in-process bus; the caller checks and frees with run_free. */
static ems_rc run_sim(run_ctx *r, const ems_sim_config *c, const ems_sim_opts *o) {
    char err[256];
    ems_rc rc;
    memset(r, 0, sizeof *r);
    collector_init(&r->col);
    assert_int_equal(ems_bus_open("inproc:", &r->bus, err, sizeof err), EMS_OK);
    assert_int_equal(ems_bus_consume(r->bus, QUEUE, 0, collect, &r->col), EMS_OK);
    rc = ems_sim_new(c, o, &r->sim, err, sizeof err);
    if (rc != EMS_OK) fprintf(stderr, "ems_sim_new: %s\n", err);
    assert_int_equal(rc, EMS_OK);
    assert_int_equal(ems_sim_use_bus(r->sim, r->bus, QUEUE), EMS_OK);
    rc = ems_sim_run(r->sim);
    ems_sim_get_stats(r->sim, &r->st);
    return rc;
}

static void run_free(run_ctx *r) {
    ems_sim_free(r->sim);
    ems_bus_close(r->bus);
    collector_free(&r->col);
}

static void backfill_opts(ems_sim_opts *o, const ems_sim_config *c, const char *end, int days) {
    ems_sim_opts_init(o, EMS_SIM_BACKFILL);
    o->days = days;
    o->end_ms = at(c, end);
}

/* ---- the load curve ------------------------------------------------------- */

static void test_profile_night_below_evening(void **state) {
    (void)state;
    double night = 0, evening = 1e9;
    for (int q = 4; q <= 16; q++) night = fmax(night, sim_curve_at(sim_default_curve, q / 4.0)); /* 01:00–04:00 */
    for (int q = 72; q <= 84; q++) evening = fmin(evening, sim_curve_at(sim_default_curve, q / 4.0)); /* 18:00–21:00 */
    assert_true(night * 2 < evening);
    /* Interpolation: at h:30 the curve is the hour's own value, and it wraps around midnight. */
    assert_true(fabs(sim_curve_at(sim_default_curve, 19.5) - sim_default_curve[19]) < 1e-12);
    assert_true(fabs(sim_curve_at(sim_default_curve, 0.0) - (sim_default_curve[23] + sim_default_curve[0]) / 2) <
                1e-12);
    /* With the largest fluctuation against it, the night still reads below the evening. */
    sim_profile p = {.curve = sim_default_curve, .fluctuation = 0.1, .seed = 1, .interval_s = 600};
    int64_t max_night = 0, min_evening = INT64_MAX;
    for (int64_t ts = 0; ts < 200; ts++) {
        int64_t n = sim_profile_value(&p, 3.0, 7, ts * 600000, 1.0, 0);
        int64_t e = sim_profile_value(&p, 19.5, 7, ts * 600000, 1.0, 0);
        max_night = n > max_night ? n : max_night;
        min_evening = e < min_evening ? e : min_evening;
        /* value = rate × 600/3600 within ±10 % */
        assert_true(e >= llround(sim_default_curve[19] / 6 * 0.9e6) - 1);
        assert_true(e <= llround(sim_default_curve[19] / 6 * 1.1e6) + 1);
    }
    assert_true(max_night < min_evening);
    /* Scale multiplies; the cap clips the hourly rate. */
    assert_int_equal(sim_profile_value(&p, 19.5, 7, 0, 1.0, 0.6), 100000);
    int64_t one = sim_profile_value(&p, 12.0, 9, 600000, 1.0, 0), two = sim_profile_value(&p, 12.0, 9, 600000, 2.0, 0);
    assert_true(llabs(two - 2 * one) <= 1);
}

/* The evening readings of a simulated day are larger than the night ones, in the device's local time. */
static void test_day_shape_in_local_time(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx r;
    char err[256];
    ems_tz *tz;
    int64_t night = 0, evening = 0;
    config_with(&c, 1);
    backfill_opts(&o, &c, "2024-03-11", 1);
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    assert_int_equal(ems_tz_open("Europe/Bucharest", &tz, err, sizeof err), EMS_OK);
    for (size_t i = 0; i < r.col.n; i++) {
        ems_civil local;
        assert_int_equal(ems_tz_local(tz, r.col.v[i].ts, &local), 0);
        double h = local.hour + local.minute / 60.0;
        if (h >= 2 && h < 5) night += r.col.v[i].micro;
        if (h >= 18 && h < 21) evening += r.col.v[i].micro;
    }
    assert_true(night * 2 < evening);
    ems_tz_free(tz);
    run_free(&r);
    ems_sim_config_clear(&c);
}

/* ---- determinism and the grid --------------------------------------------- */

static void test_same_seed_same_readings(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx a, b, d;
    config_with(&c, 2);
    backfill_opts(&o, &c, "2024-03-11", 2);
    assert_int_equal(run_sim(&a, &c, &o), EMS_OK);
    assert_int_equal(run_sim(&b, &c, &o), EMS_OK);
    assert_int_equal(a.col.blen, b.col.blen);
    assert_memory_equal(a.col.bodies, b.col.bodies, a.col.blen);
    assert_int_equal(a.st.total_micro, b.st.total_micro);
    assert_int_equal(a.st.seed, 42);
    c.seed = 43;
    assert_int_equal(run_sim(&d, &c, &o), EMS_OK);
    assert_int_equal(d.col.n, a.col.n);
    assert_true(d.st.total_micro != a.st.total_micro);
    /* Values depend on (seed, device, time) only: a live replay of the same day agrees reading by reading. */
    {
        run_ctx l;
        ems_sim_opts lo;
        c.seed = 42;
        ems_sim_opts_init(&lo, EMS_SIM_LIVE);
        lo.start_ms = at(&c, "2024-03-10");
        lo.end_ms = at(&c, "2024-03-10T06:00");
        lo.speed = 1e6;
        assert_int_equal(run_sim(&l, &c, &lo), EMS_OK);
        assert_int_equal(l.col.n, 2 * 36);
        distinct_sum(&a.col, NULL);
        for (size_t i = 0; i < l.col.n; i++) {
            rd *hit = bsearch(&l.col.v[i], a.col.v, a.col.n, sizeof *a.col.v, by_key);
            assert_non_null(hit);
            assert_int_equal(hit->micro, l.col.v[i].micro);
        }
        run_free(&l);
    }
    run_free(&a);
    run_free(&b);
    run_free(&d);
    ems_sim_config_clear(&c);
}

static void test_interval_alignment(void **state) {
    (void)state;
    /* A +05:45 zone and a 15-minute interval: the grid is aligned in epoch time, the day is local. */
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx r;
    config_with(&c, 3);
    assert_int_equal(ems_sim_config_set_string(&c.timezone, "Asia/Kathmandu"), EMS_OK);
    c.interval_s = 900;
    backfill_opts(&o, &c, "2024-06-02", 1);
    int64_t end = o.end_ms, start = at(&c, "2024-06-01");
    assert_int_equal(end - start, 86400000);
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    assert_int_equal(r.col.n, 3 * 96);
    assert_int_equal(r.st.readings, 3 * 96);
    assert_int_equal(r.st.messages, 3 * 96); /* one reading per message by default */
    assert_int_equal(r.col.arrays, 0);
    for (size_t i = 0; i < r.col.n; i++) {
        assert_int_equal(r.col.v[i].ts % 900000, 0);
        assert_true(r.col.v[i].ts >= start && r.col.v[i].ts < end);
    }
    assert_false(r.col.out_of_order);
    run_free(&r);

    /* A DST day (Bucharest springs forward on 2024-03-31): 23 local hours, 138 readings. */
    assert_int_equal(ems_sim_config_set_string(&c.timezone, "Europe/Bucharest"), EMS_OK);
    c.interval_s = 600;
    backfill_opts(&o, &c, "2024-04-01", 1);
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    assert_int_equal(r.col.n, 3 * 138);
    run_free(&r);
    ems_sim_config_clear(&c);
}

/* ---- batching and formats ------------------------------------------------- */

static void test_batching(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx r;
    config_with(&c, 3);
    c.send.batch = 10;
    c.send.publish_batch = 7;
    backfill_opts(&o, &c, "2024-03-11", 1);
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    /* 432 readings in arrays of 10: 43 full ones and the rest. */
    assert_int_equal(r.col.n, 432);
    assert_int_equal(r.col.messages, 44);
    assert_int_equal(r.col.arrays, 44);
    assert_int_equal(r.col.max_array, 10);
    assert_int_equal(r.col.malformed, 0);
    assert_int_equal(r.st.messages, 44);
    assert_int_equal(r.st.confirmed, 432);
    assert_int_equal(distinct_sum(&r.col, NULL), r.st.total_micro);
    run_free(&r);

    /* The original simulator's keys and ISO-8601 timestamps. */
    c.send.batch = 1;
    c.send.format = EMS_SIM_FORMAT_ORIGINAL;
    c.send.iso = 1;
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    assert_int_equal(r.col.n, 432);
    assert_int_equal(r.col.malformed, 0);
    assert_non_null(strstr(r.col.bodies, "{\"deviceId\":\""));
    assert_non_null(strstr(r.col.bodies, "\"timestamp\":\"2024-03-09T22:00:00Z\",\"value\":"));
    assert_int_equal(distinct_sum(&r.col, NULL), r.st.total_micro);
    run_free(&r);
    ems_sim_config_clear(&c);
}

static void test_encode(void **state) {
    (void)state;
    sim_buf b = {0};
    char s[32];
    sim_reading r = {.device_id = DEV_A, .ts_ms = 1710028800000, .micro = 52001};
    assert_int_equal(sim_encode_reading(&b, &r, EMS_SIM_FORMAT_SEED, 0), EMS_OK);
    assert_string_equal(b.p,
                        "{\"timestamp\":1710028800000,\"device_id\":\"" DEV_A "\",\"measurement_value\":0.052001}");
    sim_format_kwh(-1500000, s, sizeof s);
    assert_string_equal(s, "-1.500000");
    /* Written by hand since: the same text as "%s%llu.%06llu", truncated as snprintf truncates. */
    static const int64_t kwh_cases[] = {0, 1, 999999, 1000000, 123456789012, -7, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof kwh_cases / sizeof kwh_cases[0]; i++) {
        int64_t v = kwh_cases[i];
        uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char want[48], small[6];
        int len = snprintf(want, sizeof want, "%s%llu.%06llu", v < 0 ? "-" : "", (unsigned long long)(m / 1000000),
                           (unsigned long long)(m % 1000000));
        assert_int_equal(sim_format_kwh(v, s, sizeof s), len);
        assert_string_equal(s, want);
        assert_int_equal(sim_format_kwh(v, small, sizeof small), len);
        assert_memory_equal(small, want, sizeof small - 1);
        assert_int_equal(small[sizeof small - 1], '\0');
    }
    /* The original simulator's field order; ISO times quoted. */
    b.len = 0;
    assert_int_equal(sim_encode_reading(&b, &r, EMS_SIM_FORMAT_ORIGINAL, 1), EMS_OK);
    assert_string_equal(b.p, "{\"deviceId\":\"" DEV_A "\",\"timestamp\":\"2024-03-10T00:00:00Z\",\"value\":0.052001}");
    b.len = 0;
    ems_iso8601_utc(1710028800123, s, sizeof s);
    assert_string_equal(s, "2024-03-10T00:00:00.123Z");
    /* Every malformed kind is refused by a strict reader. */
    for (unsigned k = 0; k < SIM_MALFORMED_KINDS; k++) {
        json_t *root;
        rd out;
        b.len = 0;
        assert_int_equal(sim_encode_malformed(&b, &r, k, EMS_SIM_FORMAT_SEED, 0), EMS_OK);
        root = json_loadb(b.p, b.len, 0, NULL);
        assert_false(root && parse_reading(root, &out));
        json_decref(root);
    }
    sim_buf_free(&b);
}

/* ---- faults --------------------------------------------------------------- */

static void test_faults_keep_good_sum_exact(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx clean, faulty;
    size_t distinct;
    config_with(&c, 3);
    backfill_opts(&o, &c, "2024-03-11", 3);
    o.track_hours = 1;
    assert_int_equal(run_sim(&clean, &c, &o), EMS_OK);
    c.faults.duplicates = 0.2;
    c.faults.late = 0.1;
    c.faults.late_by = 20;
    c.faults.shuffle = 1;
    c.faults.malformed = 0.05;
    assert_int_equal(run_sim(&faulty, &c, &o), EMS_OK);

    /* Same readings, same sum: the faults only add copies and bad messages and change the order. */
    assert_int_equal(faulty.st.readings, 3 * 3 * 144);
    assert_int_equal(faulty.st.total_micro, clean.st.total_micro);
    assert_int_equal(distinct_sum(&faulty.col, &distinct), clean.st.total_micro);
    assert_int_equal(distinct, 3 * 3 * 144);
    assert_true(faulty.col.out_of_order);
    /* What the consumer saw is what the simulation counted. */
    assert_true(faulty.st.duplicates > 0);
    assert_int_equal(faulty.col.n, faulty.st.confirmed);
    assert_int_equal(faulty.col.n - distinct, faulty.st.duplicates);
    assert_true(faulty.st.malformed > 0);
    assert_int_equal(faulty.col.malformed, faulty.st.malformed);
    assert_int_equal(faulty.col.messages, faulty.st.messages);
    assert_int_equal(faulty.st.sent, faulty.st.confirmed);

    /* The summary's per-device and per-hour sums add up to the same total. */
    {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        json_t *root, *dev;
        json_error_t jerr;
        size_t i, j;
        int64_t by_dev = 0, by_hour = 0;
        assert_int_equal(ems_sim_write_summary_json(faulty.sim, f), EMS_OK);
        fclose(f);
        root = json_loads(text, 0, &jerr);
        assert_non_null(root);
        assert_int_equal(json_integer_value(json_object_get(root, "total_micro_kwh")), clean.st.total_micro);
        json_array_foreach(json_object_get(root, "devices"), i, dev) {
            json_t *h;
            by_dev += json_integer_value(json_object_get(dev, "total_micro_kwh"));
            json_array_foreach(json_object_get(dev, "hours"), j, h) by_hour +=
                json_integer_value(json_object_get(h, "micro_kwh"));
        }
        assert_int_equal(by_dev, clean.st.total_micro);
        assert_int_equal(by_hour, clean.st.total_micro);
        json_decref(root);
        free(text);
    }
    run_free(&clean);
    run_free(&faulty);
    ems_sim_config_clear(&c);
}

static void test_fault_stage_order(void **state) {
    (void)state;
    ems_sim_config c;
    sim_faults *f;
    sim_item it;
    int64_t expect = 0;
    ems_sim_config_init(&c);
    /* No faults: items leave at once, in order. */
    assert_int_equal(sim_faults_new(&c, 1, &f), EMS_OK);
    assert_false(sim_faults_active(f));
    for (int64_t i = 0; i < 100; i++) {
        sim_item in = {.ts_ms = i};
        assert_int_equal(sim_faults_push(f, &in), EMS_OK);
        assert_true(sim_faults_pop(f, &it));
        assert_int_equal(it.ts_ms, expect++);
        assert_false(sim_faults_pop(f, &it));
    }
    sim_faults_free(f);
    /* Every reading late: each one waits for late_by newer ones, and a flush lets the rest go. */
    c.faults.late = 1.0;
    c.faults.late_by = 5;
    assert_int_equal(sim_faults_new(&c, 1, &f), EMS_OK);
    for (int64_t i = 0; i < 5; i++) {
        sim_item in = {.ts_ms = i};
        assert_int_equal(sim_faults_push(f, &in), EMS_OK);
        assert_false(sim_faults_pop(f, &it));
    }
    sim_item six = {.ts_ms = 5};
    assert_int_equal(sim_faults_push(f, &six), EMS_OK);
    assert_true(sim_faults_pop(f, &it));
    assert_int_equal(it.ts_ms, 0);
    sim_faults_flush(f);
    for (int64_t i = 1; i <= 5; i++) {
        assert_true(sim_faults_pop(f, &it));
        assert_int_equal(it.ts_ms, i);
    }
    assert_int_equal(sim_faults_held(f), 0);
    sim_faults_free(f);
    ems_sim_config_clear(&c);
}

/* ---- config --------------------------------------------------------------- */

static void test_config_errors_name_the_key(void **state) {
    (void)state;
    static const struct {
        const char *json, *expect;
    } cases[] = {
        {"{\"devices\": [{\"id\": \"" DEV_A "\", \"scal\": 2}]}", "devices[0]: unknown key 'scal'"},
        {"{\"devices\": [{\"id\": \"" DEV_A "\", \"scale\": \"2\"}]}", "devices[0].scale: expected a number"},
        {"{\"devices\": [{\"id\": \"" DEV_A "\"}, {\"id\": \"nope\"}]}", "devices[1].id: expected a UUID"},
        {"{\"devices\": [{\"scale\": 1}]}", "devices[0]: missing key 'id'"},
        {"{\"devices\": [{\"id\": \"" DEV_A "\"}, {\"id\": \"" DEV_A "\"}]}", "devices[1].id"},
        {"{\"devices\": [{\"id\": \"" DEV_A "\", \"scale\": -1}]}", "devices[0].scale: must be above 0"},
        {"{\"interval_s\": 0}", "interval_s: must be between 1 and 86400"},
        {"{\"interval_s\": 1.5}", "interval_s: expected an integer"},
        {"{\"seed\": -4}", "seed: expected a non-negative integer"},
        {"{\"profile\": {\"hourly_kwh\": [1, 2, 3]}}", "profile.hourly_kwh: expected an array of 24 numbers"},
        {"{\"profile\": {\"fluctuation\": 2}}", "profile.fluctuation: must be between 0 and 0.99"},
        {"{\"profile\": {\"curve\": []}}", "profile: unknown key 'curve'"},
        {"{\"timezone\": \"Mars/Olympus\"}", "timezone: unknown time zone 'Mars/Olympus'"},
        {"{\"target\": {\"amqp\": \"amqp://g:g@h:1\", \"http\": \"http://h/\"}}", "target: give either"},
        {"{\"target\": {\"http\": \"http://127.0.0.1:1/api/readings\"}}", "target.token: an http target needs"},
        {"{\"target\": {\"http\": \"https://x/\", \"token\": \"t\"}}", "target.http: https is not supported"},
        {"{\"target\": {\"amqp\": \"amqp://g:g@h:1\", \"token\": \"t\"}}", "target: \"token\" belongs to an http"},
        {"{\"target\": {\"amqp\": 5}}", "target.amqp: expected a URL string"},
        {"{\"send\": {\"format\": \"xml\"}}", "send.format: expected one of \"seed\", \"original\""},
        {"{\"faults\": {\"duplicates\": 1.5}}", "faults.duplicates: must be between 0 and 1"},
        {"{\"csv\": \"/nonexistent/sensor.csv\"}", "csv: /nonexistent/sensor.csv: No such file"},
        {"{\"interval_s\": 600, \"interval_s\": 300}", "duplicate object key"},
        {"[1, 2]", "(top level): expected an object"},
        {"{\"devices\": ", "line 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ems_sim_config c;
        char err[512] = "";
        ems_sim_config_init(&c);
        assert_int_equal(ems_sim_config_add_device(&c, DEV_C, err, sizeof err), EMS_OK);
        assert_int_equal(ems_sim_config_load_string(&c, cases[i].json, NULL, err, sizeof err), EMS_BAD_REQUEST);
        if (!strstr(err, cases[i].expect)) fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].expect);
        /* A failed load leaves the config as it was. */
        assert_int_equal(c.ndevices, 1);
        assert_string_equal(c.devices[0].id, DEV_C);
        ems_sim_config_clear(&c);
    }
}

static void test_config_round_trip(void **state) {
    (void)state;
    char dir[64], path[128], err[512];
    ems_sim_config a, b;
    char *ja, *jb;
    assert_non_null(fx_tmpdir(dir, sizeof dir, "sim"));
    snprintf(path, sizeof path, "%s/sim.json", dir);
    ems_sim_config_init(&a);
    ems_sim_config_init(&b);
    assert_int_equal(ems_sim_config_load_string(&a,
                                                "{\"devices\": [{\"id\": \"" DEV_A "\", \"name\": \"Kitchen\", "
                                                "\"scale\": 1.5, \"max_kwh\": 3}], \"interval_s\": 300, \"seed\": 9,"
                                                " \"timezone\": \"Asia/Kolkata\", \"profile\": {\"fluctuation\": 0.2},"
                                                " \"target\": {\"http\": \"http://127.0.0.1:8080/api/readings\","
                                                " \"token\": \"tok\"}, \"send\": {\"batch\": 50, \"iso\": true},"
                                                " \"faults\": {\"shuffle\": true}}",
                                                NULL, err, sizeof err),
                     EMS_OK);
    assert_int_equal(ems_sim_config_batch(&a), 50);
    assert_string_equal(ems_sim_config_token(&a), "tok");
    assert_int_equal(ems_sim_config_save(&a, path, err, sizeof err), EMS_OK);
    assert_int_equal(ems_sim_config_load_file(&b, path, err, sizeof err), EMS_OK);
    ja = ems_sim_config_to_json(&a);
    jb = ems_sim_config_to_json(&b);
    assert_string_equal(ja, jb);
    assert_string_equal(b.devices[0].name, "Kitchen");
    assert_true(b.devices[0].scale == 1.5);
    assert_int_equal(b.seed, 9);
    /* The environment's token wins over the file's and is never written back. */
    setenv("EMS_INGEST_TOKEN", "from-env", 1);
    assert_int_equal(ems_sim_config_apply_env(&b), EMS_OK);
    unsetenv("EMS_INGEST_TOKEN");
    assert_string_equal(ems_sim_config_token(&b), "from-env");
    free(jb);
    jb = ems_sim_config_to_json(&b);
    assert_null(strstr(jb, "from-env"));
    /* An invalid config is not saved. */
    b.interval_s = -1;
    assert_int_equal(ems_sim_config_save(&b, path, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "interval_s"));
    free(ja);
    free(jb);
    ems_sim_config_clear(&a);
    ems_sim_config_clear(&b);
    unlink(path);
    rmdir(dir);
}

/* ---- the CSV source ------------------------------------------------------- */

static void test_csv_source(void **state) {
    (void)state;
    char dir[64], path[128], err[512];
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx r;
    FILE *f;
    assert_non_null(fx_tmpdir(dir, sizeof dir, "sim"));
    snprintf(path, sizeof path, "%s/sensor.csv", dir);
    f = fopen(path, "w");
    fputs("measurement\n0.5\n\n0.25\n# comment\n1.0\n", f);
    fclose(f);
    /* Relative to the config's folder. */
    config_with(&c, 1);
    assert_int_equal(ems_sim_config_set_string(&c.csv, "sensor.csv"), EMS_OK);
    assert_int_equal(ems_sim_config_set_string(&c.base_dir, dir), EMS_OK);
    c.devices[0].scale = 2.0;
    backfill_opts(&o, &c, "2024-03-09T23:20", 1);
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    assert_int_equal(r.col.n, 144);
    /* In order, scaled, round and round. */
    for (size_t i = 0; i < r.col.n; i++) {
        static const int64_t v[] = {1000000, 500000, 2000000};
        assert_int_equal(r.col.v[i].micro, v[i % 3]);
    }
    run_free(&r);
    /* A bad line is named. */
    f = fopen(path, "w");
    fputs("0.5\nabc\n", f);
    fclose(f);
    assert_int_equal(ems_sim_config_validate(&c, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "sensor.csv:2: 'abc' is not a number"));
    unlink(path);
    rmdir(dir);
    ems_sim_config_clear(&c);
}

/* ---- controls ------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    size_t readings, states;
    int saw_paused;
} observed;

static void observer(const ems_sim_event *ev, void *ctx) {
    observed *o = ctx;
    pthread_mutex_lock(&o->lock);
    if (ev->kind == EMS_SIM_EV_READING) o->readings++;
    if (ev->kind == EMS_SIM_EV_STATE) o->states++;
    if (ev->kind == EMS_SIM_EV_STATE && ev->run == EMS_SIM_RUN_PAUSED) o->saw_paused = 1;
    pthread_mutex_unlock(&o->lock);
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_pause_resume_and_observer(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    ems_sim *s;
    ems_bus *bus;
    collector col;
    observed obs = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ems_sim_stats a, b;
    ems_sim_device_info d;
    char err[256];
    config_with(&c, 2);
    ems_sim_opts_init(&o, EMS_SIM_LIVE);
    o.start_ms = at(&c, "2024-03-10");
    o.end_ms = at(&c, "2024-03-11");
    o.speed = 86400 / 1.5; /* a day in 1.5 s */
    collector_init(&col);
    assert_int_equal(ems_bus_open("inproc:", &bus, err, sizeof err), EMS_OK);
    assert_int_equal(ems_bus_consume(bus, QUEUE, 0, collect, &col), EMS_OK);
    assert_int_equal(ems_sim_new(&c, &o, &s, err, sizeof err), EMS_OK);
    assert_int_equal(ems_sim_use_bus(s, bus, QUEUE), EMS_OK);
    ems_sim_set_observer(s, observer, &obs);
    assert_int_equal(ems_sim_start(s), EMS_OK);
    assert_int_equal(ems_sim_start(s), EMS_CONFLICT);
    sleep_ms(200);
    ems_sim_pause(s);
    sleep_ms(100);
    ems_sim_get_stats(s, &a);
    assert_int_equal(a.run, EMS_SIM_RUN_PAUSED);
    sleep_ms(300);
    ems_sim_get_stats(s, &b);
    assert_int_equal(a.readings, b.readings); /* nothing while paused */
    assert_true(a.readings < 2 * 144);
    ems_sim_resume(s);
    assert_int_equal(ems_sim_set_speed(s, 86400 / 0.3), EMS_OK);
    assert_int_equal(ems_sim_join(s), EMS_OK);
    ems_sim_get_stats(s, &b);
    /* The clock froze while paused: the whole day is there. */
    assert_int_equal(b.run, EMS_SIM_RUN_FINISHED);
    assert_int_equal(b.link, EMS_SIM_LINK_UP);
    assert_int_equal(b.readings, 2 * 144);
    assert_int_equal(col.n, 2 * 144);
    assert_int_equal(obs.readings, 2 * 144);
    assert_true(obs.saw_paused);
    assert_int_equal(ems_sim_get_device(s, 1, &d), EMS_OK);
    assert_string_equal(d.id, DEV_B);
    assert_int_equal(d.readings, 144);
    assert_int_equal(d.last_ts_ms, at(&c, "2024-03-10T23:50"));
    assert_int_equal(ems_sim_get_device(s, 2, &d), EMS_NOT_FOUND);
    ems_sim_free(s);
    ems_bus_close(bus);
    collector_free(&col);
    ems_sim_config_clear(&c);
}

static void test_device_states_and_stop(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    ems_sim *s;
    ems_bus *bus;
    collector col;
    ems_sim_stats st;
    ems_sim_device_info d;
    char err[256];
    config_with(&c, 3);
    /* Real time from now, no end: only a stop ends it. */
    ems_sim_opts_init(&o, EMS_SIM_LIVE);
    collector_init(&col);
    assert_int_equal(ems_bus_open("inproc:", &bus, err, sizeof err), EMS_OK);
    assert_int_equal(ems_bus_consume(bus, QUEUE, 0, collect, &col), EMS_OK);
    assert_int_equal(ems_sim_new(&c, &o, &s, err, sizeof err), EMS_OK);
    assert_int_equal(ems_sim_use_bus(s, bus, QUEUE), EMS_OK);
    assert_int_equal(ems_sim_set_device_state(s, 1, EMS_SIM_DEVICE_STOPPED), EMS_OK);
    assert_int_equal(ems_sim_set_device_state(s, 5, EMS_SIM_DEVICE_PAUSED), EMS_NOT_FOUND);
    assert_int_equal(ems_sim_set_start(s, 0), EMS_BAD_REQUEST);
    assert_int_equal(ems_sim_start(s), EMS_OK);
    for (int i = 0; i < 100; i++) {
        ems_sim_get_stats(s, &st);
        if (st.readings >= 2) break;
        sleep_ms(20);
    }
    ems_sim_stop(s);
    assert_int_equal(ems_sim_join(s), EMS_OK);
    ems_sim_get_stats(s, &st);
    /* The first interval's readings went out at once; the stopped device sent none. */
    assert_int_equal(st.readings, 2);
    assert_int_equal(st.run, EMS_SIM_RUN_FINISHED);
    assert_int_equal(ems_sim_get_device(s, 1, &d), EMS_OK);
    assert_int_equal(d.state, EMS_SIM_DEVICE_STOPPED);
    assert_int_equal(d.readings, 0);
    assert_int_equal(col.n, 2);
    assert_int_equal(col.v[0].ts % 600000, 0);
    ems_sim_free(s);
    ems_bus_close(bus);
    collector_free(&col);
    ems_sim_config_clear(&c);
}

static void test_load_mode(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    run_ctx r;
    char id[SIM_UUID_LEN + 1];
    size_t distinct;
    config_with(&c, 0);
    c.send.batch = 50;
    ems_sim_opts_init(&o, EMS_SIM_LOAD);
    o.load_devices = 20;
    o.rate = 4000;
    o.duration_s = 0.5;
    assert_int_equal(run_sim(&r, &c, &o), EMS_OK);
    /* Paced: never more than the rate allows (plus the one-reading head start). */
    assert_true(r.st.readings <= 2001);
    assert_true(r.st.readings >= 100);
    assert_int_equal(distinct_sum(&r.col, &distinct), r.st.total_micro);
    assert_int_equal(distinct, r.st.readings);
    /* Ids come from the seed. */
    sim_uuid_derive(42, 0, id);
    assert_true(sim_uuid_valid(id));
    for (size_t i = 0; i < r.col.n; i++) assert_true(sim_uuid_valid(r.col.v[i].dev));
    assert_non_null(strstr(r.col.bodies, id));
    run_free(&r);
    ems_sim_config_clear(&c);
}

static void test_bad_options(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    ems_sim *s = NULL;
    char err[256];
    config_with(&c, 0);
    ems_sim_opts_init(&o, EMS_SIM_BACKFILL);
    assert_int_equal(ems_sim_new(&c, &o, &s, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "no devices"));
    ems_sim_opts_init(&o, EMS_SIM_LOAD);
    o.rate = 0;
    assert_int_equal(ems_sim_new(&c, &o, &s, err, sizeof err), EMS_BAD_REQUEST);
    assert_non_null(strstr(err, "rate"));
    assert_null(s);
    assert_int_equal(ems_sim_mode_parse("backfill"), EMS_SIM_BACKFILL);
    assert_int_equal(ems_sim_mode_parse("nap"), -1);
    ems_sim_config_clear(&c);
}

static void test_unreachable_broker_gives_up(void **state) {
    (void)state;
    ems_sim_config c;
    ems_sim_opts o;
    ems_sim *s;
    ems_sim_stats st;
    char err[256];
    config_with(&c, 1);
    /* Port 1 on loopback: nothing listens there. */
    assert_int_equal(ems_sim_config_set_string(&c.target.url, "amqp://guest:guest@127.0.0.1:1"), EMS_OK);
    backfill_opts(&o, &c, "2024-03-11", 1);
    o.max_retry_s = 0.5;
    assert_int_equal(ems_sim_new(&c, &o, &s, err, sizeof err), EMS_OK);
    assert_int_equal(ems_sim_run(s), EMS_UNAVAILABLE);
    ems_sim_get_stats(s, &st);
    assert_int_equal(st.run, EMS_SIM_RUN_FAILED);
    assert_int_equal(st.link, EMS_SIM_LINK_DOWN);
    assert_int_equal(st.confirmed, 0);
    assert_int_equal(st.total_micro, 0);
    assert_true(st.retries > 0);
    assert_non_null(strstr(st.last_error, "broker unreachable"));
    assert_non_null(strstr(st.last_error, "127.0.0.1:1"));
    assert_null(strstr(st.last_error, "guest")); /* no credentials in messages */
    ems_sim_free(s);
    ems_sim_config_clear(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_night_below_evening),
        cmocka_unit_test(test_day_shape_in_local_time),
        cmocka_unit_test(test_same_seed_same_readings),
        cmocka_unit_test(test_interval_alignment),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_faults_keep_good_sum_exact),
        cmocka_unit_test(test_fault_stage_order),
        cmocka_unit_test(test_config_errors_name_the_key),
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_csv_source),
        cmocka_unit_test(test_pause_resume_and_observer),
        cmocka_unit_test(test_device_states_and_stop),
        cmocka_unit_test(test_load_mode),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_unreachable_broker_gives_up),
    };
    ems_log_set_level(EMS_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
