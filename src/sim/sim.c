/*
 * sim.c — the simulation: timeline, pacing, batching, confirmed counting
 * and the controls (see sim.h).
 *
 * One thread steps the simulation (the caller's, or the one ems_sim_start
 * makes) and owns the timeline, the fault stage, the batch being built and
 * the sender.  Other threads only touch what `lock` guards: the control
 * flags, which they change and announce on `cond` (ctl_gen counts the
 * changes so that no wake-up is lost), and the statistics, which the
 * stepping thread updates when a target confirms a batch.
 *
 * A batch is built in one body buffer: messages are ranges of it, each
 * carrying the range of items (readings, or one malformed message) it holds,
 * so that a confirmed prefix of messages is counted item by item.
 */
#include "sim.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"
#include "encode.h"
#include "faults.h"
#include "hours.h"
#include "profile.h"
#include "rng.h"
#include "sender.h"
#include "tz.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* A batch is sent once its bodies reach this size, whatever the message count. */
#define BATCH_BYTES_MAX (8u << 20)
#define MAX_SPEED 1e6
#define MAX_DAYS 3660
#define MAX_LOAD_DEVICES 1000000
#define MAX_RATE 1e7

typedef struct {
    char id[EMS_SIM_ID_LEN + 1];
    uint64_t key; /* sim_hash_str(id): the device's part of its readings' randomness */
    double scale, max_kwh;
    size_t csv_pos;
    atomic_int state; /* ems_sim_device_state */
    /* under lock */
    uint64_t readings;
    int64_t total_micro, last_ts, last_micro;
} sim_dev;

typedef struct {
    size_t off, len;         /* in body */
    size_t item_lo, item_hi; /* in items */
    uint8_t malformed;
    uint8_t attempted; /* counted in `sent` already */
} batch_msg;

struct ems_sim {
    ems_sim_config cfg;
    ems_sim_opts opts;
    uint64_t seed;
    int64_t interval_ms;
    sim_dev *devs;
    size_t ndev;
    int64_t *csv;
    size_t ncsv;
    ems_tz *tz;
    sim_profile profile;
    sim_faults *faults;
    sim_sender *sender;
    ems_sim_observer obs;
    void *obs_ctx;
    int batch;    /* readings per message */
    int cap_msgs; /* messages per send */
    int arrays;   /* messages are arrays (HTTP, or batch > 1) */

    /* ---- owned by the stepping thread ---- */
    int begun, prepared, gen_done, stopping, was_paused, finished;
    ems_rc result;
    int64_t next_ts, end_ts, last_ts;
    size_t cursor;
    int64_t wall0, anchor_wall, anchor_sim, freeze_sim;
    double speed;
    uint64_t generated;
    uint64_t ctl_seen;
    int64_t outage_ms;
    unsigned backoff_ms;
    /* the batch being built */
    sim_buf body;
    batch_msg *msgs;
    size_t nmsgs, capmsgs;
    long open; /* index of the good message still taking readings, or -1 */
    sim_item *items;
    uint8_t *fresh; /* item confirmed for the first time in the current confirm */
    size_t nitems, capitems;
    sim_msg *out;
    size_t capout;

    /* ---- shared, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t ctl_gen;
    int paused, stop, abort;
    int speed_req, start_req;
    double req_speed;
    int64_t req_start;
    int64_t started_mono, finished_mono;
    ems_sim_stats st;
    sim_hours *hours;

    pthread_t thread;
    int thread_started, thread_joined;
    ems_rc thread_rc;
};

/* ---- names ---------------------------------------------------------------- */

static const char *const mode_names[] = {
    [EMS_SIM_LIVE] = "live", [EMS_SIM_BACKFILL] = "backfill", [EMS_SIM_LOAD] = "load"};
static const char *const run_names[] = {[EMS_SIM_RUN_IDLE] = "idle",
                                        [EMS_SIM_RUN_RUNNING] = "running",
                                        [EMS_SIM_RUN_PAUSED] = "paused",
                                        [EMS_SIM_RUN_FINISHED] = "finished",
                                        [EMS_SIM_RUN_FAILED] = "failed"};
static const char *const link_names[] = {[EMS_SIM_LINK_CONNECTING] = "connecting",
                                         [EMS_SIM_LINK_UP] = "connected",
                                         [EMS_SIM_LINK_RETRYING] = "retrying",
                                         [EMS_SIM_LINK_DOWN] = "down"};
static const char *const device_names[] = {
    [EMS_SIM_DEVICE_RUNNING] = "running", [EMS_SIM_DEVICE_PAUSED] = "paused", [EMS_SIM_DEVICE_STOPPED] = "stopped"};

#define NAME_OF(table, i) ((unsigned)(i) < sizeof(table) / sizeof((table)[0]) ? (table)[i] : "unknown")

const char *ems_sim_mode_name(ems_sim_mode m) { return NAME_OF(mode_names, m); }
const char *ems_sim_run_state_name(ems_sim_run_state s) { return NAME_OF(run_names, s); }
const char *ems_sim_link_state_name(ems_sim_link_state s) { return NAME_OF(link_names, s); }
const char *ems_sim_device_state_name(ems_sim_device_state s) { return NAME_OF(device_names, s); }

int ems_sim_mode_parse(const char *name) {
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (name && strcmp(name, mode_names[i]) == 0) return (int)i;
    return -1;
}

void ems_sim_opts_init(ems_sim_opts *o, ems_sim_mode mode) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->speed = 1.0;
    o->days = 1;
    o->load_devices = 100;
    o->rate = 1000;
    o->duration_s = mode == EMS_SIM_LOAD ? 10 : 0;
}

/* ---- clocks --------------------------------------------------------------- */

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t floor_to(int64_t t, int64_t step) { return (t >= 0 ? t / step : (t - step + 1) / step) * step; }
static int64_t ceil_to(int64_t t, int64_t step) { return floor_to(t + step - 1, step); }

/* Local time of day at epoch ms as fractional hours, 0 <= h < 24: the load curve follows the meter's local hour. */
static double local_hour_of(ems_tz *tz, int64_t ms) {
    ems_civil c;
    if (ems_tz_local(tz, ms, &c) != 0) return 0.0;
    return c.hour + c.minute / 60.0 + c.second / 3600.0;
}

/* The live simulation clock. */
static int64_t sim_clock(const ems_sim *s) {
    return s->anchor_sim + (int64_t)((double)(mono_ms() - s->anchor_wall) * s->speed);
}

/* ---- events --------------------------------------------------------------- */

static void emit_state(ems_sim *s, const char *message) {
    ems_sim_event ev = {.kind = EMS_SIM_EV_STATE, .message = message};
    if (!s->obs) return;
    pthread_mutex_lock(&s->lock);
    ev.run = s->st.run;
    ev.link = s->st.link;
    pthread_mutex_unlock(&s->lock);
    s->obs(&ev, s->obs_ctx);
}

static void set_run(ems_sim *s, ems_sim_run_state r) {
    int changed;
    pthread_mutex_lock(&s->lock);
    changed = s->st.run != r;
    s->st.run = r;
    if (r == EMS_SIM_RUN_FINISHED || r == EMS_SIM_RUN_FAILED) s->finished_mono = mono_ms();
    pthread_mutex_unlock(&s->lock);
    if (changed) emit_state(s, NULL);
}

/* Records the link state; a message (or NULL) replaces last_error only when given. */
static void set_link(ems_sim *s, ems_sim_link_state l, const char *message) {
    int changed;
    pthread_mutex_lock(&s->lock);
    changed = s->st.link != l;
    s->st.link = l;
    if (message) snprintf(s->st.last_error, sizeof s->st.last_error, "%s", message);
    pthread_mutex_unlock(&s->lock);
    if (changed) emit_state(s, message);
}

/* ---- creation ------------------------------------------------------------- */

static ems_rc bad(char *err, size_t errlen, const char *msg) {
    snprintf(err, errlen, "%s", msg);
    return EMS_BAD_REQUEST;
}

static ems_rc check_opts(const ems_sim_config *c, const ems_sim_opts *o, char *err, size_t errlen) {
    if ((unsigned)o->mode > EMS_SIM_LOAD) return bad(err, errlen, "unknown mode");
    if (!(o->max_retry_s >= 0) || !isfinite(o->max_retry_s)) return bad(err, errlen, "max retry time must be >= 0");
    if (!(o->duration_s >= 0) || !isfinite(o->duration_s)) return bad(err, errlen, "duration must be >= 0 seconds");
    switch (o->mode) {
    case EMS_SIM_LIVE:
        if (!(o->speed > 0 && o->speed <= MAX_SPEED)) return bad(err, errlen, "speed must be above 0 and at most 1e6");
        if (o->end_ms && o->start_ms && o->end_ms <= o->start_ms) return bad(err, errlen, "end must be after start");
        break;
    case EMS_SIM_BACKFILL:
        if (o->days < 1 || o->days > MAX_DAYS) return bad(err, errlen, "days must be between 1 and 3660");
        break;
    case EMS_SIM_LOAD:
        if (o->load_devices < 1 || o->load_devices > MAX_LOAD_DEVICES)
            return bad(err, errlen, "load devices must be between 1 and 1000000");
        if (!(o->rate > 0 && o->rate <= MAX_RATE))
            return bad(err, errlen, "rate must be above 0 and at most 1e7 readings/s");
        if (!(o->duration_s > 0)) return bad(err, errlen, "a load run needs a duration above 0 seconds");
        break;
    }
    if (o->mode != EMS_SIM_LOAD && c->ndevices == 0)
        return bad(err, errlen, "no devices configured (\"devices\" in the config)");
    return EMS_OK;
}

ems_rc ems_sim_new(const ems_sim_config *cfg, const ems_sim_opts *opts, ems_sim **out, char *err, size_t errlen) {
    ems_rc rc;
    ems_sim *s = NULL;
    pthread_condattr_t ca;
    char path[1024];
    if ((rc = ems_sim_config_validate(cfg, err, errlen)) != EMS_OK) return rc;
    if ((rc = check_opts(cfg, opts, err, errlen)) != EMS_OK) return rc;
    if (!(s = calloc(1, sizeof *s))) return EMS_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    ems_sim_config_init(&s->cfg);
    s->open = -1;
    s->opts = *opts;
    if ((rc = ems_sim_config_copy(cfg, &s->cfg)) != EMS_OK) goto fail;
    s->seed =
        cfg->has_seed ? cfg->seed : sim_mix64((uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)mono_ms());
    s->interval_ms = (int64_t)cfg->interval_s * 1000;
    if ((rc = ems_tz_open(cfg->timezone, &s->tz, err, errlen)) != EMS_OK) goto fail;
    if (ems_sim_config_csv_path(cfg, path, sizeof path) &&
        (rc = sim_csv_load(path, &s->csv, &s->ncsv, err, errlen)) != EMS_OK)
        goto fail;
    s->ndev = opts->mode == EMS_SIM_LOAD ? opts->load_devices : cfg->ndevices;
    if (!(s->devs = calloc(s->ndev, sizeof *s->devs))) {
        rc = EMS_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s->ndev; i++) {
        sim_dev *d = &s->devs[i];
        if (opts->mode == EMS_SIM_LOAD) {
            sim_uuid_derive(s->seed, i, d->id);
            d->scale = 1.0;
        } else {
            memcpy(d->id, cfg->devices[i].id, sizeof d->id);
            d->scale = cfg->devices[i].scale;
            d->max_kwh = cfg->devices[i].max_kwh;
        }
        d->key = sim_hash_str(d->id);
        atomic_init(&d->state, EMS_SIM_DEVICE_RUNNING);
    }
    s->profile = (sim_profile){
        .curve = s->cfg.hourly_kwh, .fluctuation = cfg->fluctuation, .seed = s->seed, .interval_s = cfg->interval_s};
    if ((rc = sim_faults_new(cfg, s->seed, &s->faults)) != EMS_OK) goto fail;
    if ((rc = sim_sender_open(cfg, &s->sender, err, errlen)) != EMS_OK) goto fail;
    s->batch = ems_sim_config_batch(cfg);
    s->arrays = cfg->target.kind == EMS_SIM_TARGET_HTTP || s->batch > 1;
    s->cap_msgs = cfg->target.kind == EMS_SIM_TARGET_HTTP ? 1 : ems_sim_config_publish_batch(cfg);
    if (opts->track_hours && !(s->hours = sim_hours_new())) {
        rc = EMS_NOMEM;
        goto fail;
    }
    s->backoff_ms = BACKOFF_MIN_MS;
    s->st.seed = s->seed;
    s->st.run = EMS_SIM_RUN_IDLE;
    s->st.link = EMS_SIM_LINK_CONNECTING;
    snprintf(s->st.target, sizeof s->st.target, "%s", sim_sender_where(s->sender));
    *out = s;
    return EMS_OK;
fail:
    ems_sim_free(s);
    return rc;
}

ems_rc ems_sim_use_bus(ems_sim *s, ems_bus *bus, const char *queue) {
    sim_sender *snd;
    ems_rc rc;
    if (s->begun || !bus) return EMS_BAD_REQUEST;
    if ((rc = sim_sender_open_bus(bus, queue, &snd)) != EMS_OK) return rc;
    sim_sender_free(s->sender);
    s->sender = snd;
    s->cap_msgs = ems_sim_config_publish_batch(&s->cfg);
    s->arrays = s->batch > 1;
    pthread_mutex_lock(&s->lock);
    snprintf(s->st.target, sizeof s->st.target, "%s", sim_sender_where(snd));
    pthread_mutex_unlock(&s->lock);
    return EMS_OK;
}

void ems_sim_set_observer(ems_sim *s, ems_sim_observer fn, void *ctx) {
    s->obs = fn;
    s->obs_ctx = ctx;
}

/* ---- the batch being built ------------------------------------------------ */

static ems_rc push_msg(ems_sim *s, size_t off, uint8_t malformed) {
    if (s->nmsgs == s->capmsgs) {
        size_t cap = s->capmsgs ? s->capmsgs * 2 : 64;
        batch_msg *m = realloc(s->msgs, cap * sizeof *m);
        if (!m) return EMS_NOMEM;
        s->msgs = m;
        s->capmsgs = cap;
    }
    s->msgs[s->nmsgs++] = (batch_msg){.off = off, .item_lo = s->nitems, .item_hi = s->nitems, .malformed = malformed};
    return EMS_OK;
}

static ems_rc push_item(ems_sim *s, const sim_item *it) {
    if (s->nitems == s->capitems) {
        size_t cap = s->capitems ? s->capitems * 2 : 256;
        sim_item *v = realloc(s->items, cap * sizeof *v);
        if (v) s->items = v;
        uint8_t *f = realloc(s->fresh, cap);
        if (f) s->fresh = f;
        if (!v || !f) return EMS_NOMEM;
        s->capitems = cap;
    }
    s->items[s->nitems++] = *it;
    s->msgs[s->nmsgs - 1].item_hi = s->nitems;
    return EMS_OK;
}

static void close_open(ems_sim *s) {
    batch_msg *m;
    if (s->open < 0) return;
    m = &s->msgs[s->open];
    if (s->arrays) sim_buf_append(&s->body, "]", 1);
    m->len = s->body.len - m->off;
    s->open = -1;
}

static ems_rc builder_add(ems_sim *s, sim_item *it) {
    sim_reading r = {.device_id = s->devs[it->device].id, .ts_ms = it->ts_ms, .micro = it->micro};
    ems_sim_format fmt = s->cfg.send.format;
    ems_rc rc;
    if (it->malformed) {
        close_open(s);
        if ((rc = push_msg(s, s->body.len, 1)) != EMS_OK) return rc;
        if ((rc = sim_encode_malformed(&s->body, &r, it->malformed - 1u, fmt, s->cfg.send.iso)) != EMS_OK) return rc;
        s->msgs[s->nmsgs - 1].len = s->body.len - s->msgs[s->nmsgs - 1].off;
        return push_item(s, it);
    }
    if (s->open < 0) {
        if ((rc = push_msg(s, s->body.len, 0)) != EMS_OK) return rc;
        s->open = (long)s->nmsgs - 1;
        if (s->arrays && (rc = sim_buf_append(&s->body, "[", 1)) != EMS_OK) return rc;
    } else if ((rc = sim_buf_append(&s->body, ",", 1)) != EMS_OK) {
        return rc;
    }
    if ((rc = sim_encode_reading(&s->body, &r, fmt, s->cfg.send.iso)) != EMS_OK) return rc;
    if ((rc = push_item(s, it)) != EMS_OK) return rc;
    if (s->msgs[s->open].item_hi - s->msgs[s->open].item_lo >= (size_t)s->batch) close_open(s);
    return EMS_OK;
}

static int builder_full(const ems_sim *s) {
    size_t closed = s->nmsgs - (s->open >= 0 ? 1 : 0);
    return closed >= (size_t)s->cap_msgs || s->body.len >= BATCH_BYTES_MAX;
}

static void builder_reset(ems_sim *s) {
    for (size_t i = 0; i < s->nitems; i++) sim_item_release(&s->items[i]);
    s->nitems = s->nmsgs = 0;
    s->open = -1;
    s->body.len = 0;
}

/* Moves every item the fault stage lets go into the batch. */
static ems_rc drain(ems_sim *s) {
    sim_item it;
    while (sim_faults_pop(s->faults, &it)) {
        ems_rc rc = builder_add(s, &it);
        if (rc != EMS_OK) {
            sim_item_release(&it);
            return rc;
        }
    }
    return EMS_OK;
}

/* ---- counting ------------------------------------------------------------- */

/* Messages [lo, hi) of the batch are safe: count them, then tell the observer. */
static void confirm(ems_sim *s, size_t lo, size_t hi) {
    pthread_mutex_lock(&s->lock);
    for (size_t m = lo; m < hi; m++) {
        const batch_msg *bm = &s->msgs[m];
        s->st.messages++;
        if (bm->malformed) {
            s->st.malformed++;
            s->fresh[bm->item_lo] = 0;
            continue;
        }
        for (size_t i = bm->item_lo; i < bm->item_hi; i++) {
            sim_item *it = &s->items[i];
            sim_dev *d = &s->devs[it->device];
            s->st.confirmed++;
            s->fresh[i] = !it->dup || !it->dup->counted;
            if (!s->fresh[i]) {
                s->st.duplicates++;
                continue;
            }
            if (it->dup) it->dup->counted = 1;
            s->st.readings++;
            s->st.total_micro += it->micro;
            d->readings++;
            d->total_micro += it->micro;
            if (it->ts_ms >= d->last_ts) {
                d->last_ts = it->ts_ms;
                d->last_micro = it->micro;
            }
            if (s->hours) sim_hours_add(s->hours, it->device, it->ts_ms, it->micro);
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!s->obs) return;
    for (size_t m = lo; m < hi; m++) {
        for (size_t i = s->msgs[m].item_lo; i < s->msgs[m].item_hi; i++) {
            if (s->msgs[m].malformed || !s->fresh[i]) continue;
            ems_sim_event ev = {.kind = EMS_SIM_EV_READING,
                                .device = s->items[i].device,
                                .ts_ms = s->items[i].ts_ms,
                                .micro = s->items[i].micro};
            s->obs(&ev, s->obs_ctx);
        }
    }
}

static void publish_progress(ems_sim *s) {
    pthread_mutex_lock(&s->lock);
    s->st.generated = s->generated;
    s->st.sim_time_ms = s->last_ts;
    pthread_mutex_unlock(&s->lock);
}

/* ---- sending -------------------------------------------------------------- */

/* Sleeps up to ms unless a stop or an abort comes first. */
static void backoff_sleep(ems_sim *s, int64_t ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->stop && !s->abort)
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0) break;
    pthread_mutex_unlock(&s->lock);
}

/*
 * Sends the whole batch, retrying with backoff while the target is away.
 * EMS_OK when all of it is safe; EMS_DECLINED on an abort; otherwise the
 * final error, with last_error set.
 */
static ems_rc deliver(ems_sim *s) {
    size_t from = 0;
    char err[400], msg[512];
    close_open(s);
    if (s->nmsgs == 0) return EMS_OK;
    if (s->nmsgs > s->capout) {
        sim_msg *o = realloc(s->out, s->nmsgs * sizeof *o);
        if (!o) return EMS_NOMEM;
        s->out = o;
        s->capout = s->nmsgs;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nmsgs; i++) {
        batch_msg *m = &s->msgs[i];
        s->out[i] = (sim_msg){.body = s->body.p + m->off, .len = m->len, .malformed = m->malformed};
        if (!m->attempted && !m->malformed) s->st.sent += m->item_hi - m->item_lo;
        m->attempted = 1;
    }
    pthread_mutex_unlock(&s->lock);
    for (;;) {
        size_t done = 0;
        int stop, abort_now;
        int64_t now, left;
        ems_rc rc = EMS_OK;
        err[0] = '\0';
        if (!s->prepared && (rc = sim_sender_prepare(s->sender, err, sizeof err)) == EMS_OK) s->prepared = 1;
        if (s->prepared) rc = sim_sender_send(s->sender, s->out + from, s->nmsgs - from, &done, err, sizeof err);
        if (done) {
            confirm(s, from, from + done);
            from += done;
        }
        if (rc == EMS_OK) break;
        if (rc != EMS_UNAVAILABLE && rc != EMS_AGAIN) {
            set_link(s, EMS_SIM_LINK_DOWN, err[0] ? err : ems_rc_message(rc));
            return rc;
        }
        now = mono_ms();
        if (!s->outage_ms) s->outage_ms = now;
        pthread_mutex_lock(&s->lock);
        s->st.retries++;
        stop = s->stop;
        abort_now = s->abort;
        pthread_mutex_unlock(&s->lock);
        if (abort_now) return EMS_DECLINED;
        if (stop) {
            snprintf(msg, sizeof msg, "stopped while %s; %zu message(s) not sent", err, s->nmsgs - from);
            set_link(s, EMS_SIM_LINK_DOWN, msg);
            return EMS_UNAVAILABLE;
        }
        left = s->opts.max_retry_s > 0 ? (int64_t)(s->opts.max_retry_s * 1000) - (now - s->outage_ms) : INT64_MAX;
        if (left <= 0) {
            snprintf(msg, sizeof msg, "gave up after %.0f s: %s", s->opts.max_retry_s, err);
            set_link(s, EMS_SIM_LINK_DOWN, msg);
            return EMS_UNAVAILABLE;
        }
        snprintf(msg, sizeof msg, "%s, retrying", err);
        set_link(s, EMS_SIM_LINK_RETRYING, msg);
        backoff_sleep(s, s->backoff_ms < left ? s->backoff_ms : left);
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    }
    s->outage_ms = 0;
    s->backoff_ms = BACKOFF_MIN_MS;
    set_link(s, EMS_SIM_LINK_UP, NULL);
    builder_reset(s);
    return EMS_OK;
}

/* ---- the timeline --------------------------------------------------------- */

static void begin(ems_sim *s) {
    int64_t now = wall_ms(), I = s->interval_ms;
    s->wall0 = s->anchor_wall = mono_ms();
    s->speed = s->opts.speed > 0 ? s->opts.speed : 1.0;
    switch (s->opts.mode) {
    case EMS_SIM_LIVE: {
        int64_t start = s->opts.start_ms ? s->opts.start_ms : now;
        s->anchor_sim = start;
        s->next_ts = floor_to(start, I);
        s->end_ts = s->opts.end_ms ? s->opts.end_ms : INT64_MAX;
        break;
    }
    case EMS_SIM_BACKFILL: {
        int64_t end = s->opts.end_ms ? s->opts.end_ms : now;
        s->next_ts = ceil_to(ems_tz_add_days(s->tz, end, -s->opts.days), I);
        s->end_ts = end;
        break;
    }
    case EMS_SIM_LOAD: {
        /* Enough history for the whole run at the full rate, ending at the current interval. */
        int64_t steps = (int64_t)ceil(s->opts.rate * s->opts.duration_s / (double)s->ndev) + 1;
        int64_t last = floor_to(now, I);
        s->next_ts = last - (steps - 1) * I;
        s->end_ts = last + I;
        break;
    }
    }
    s->begun = 1;
    pthread_mutex_lock(&s->lock);
    s->started_mono = s->wall0;
    pthread_mutex_unlock(&s->lock);
    set_run(s, EMS_SIM_RUN_RUNNING);
}

/* One reading of device d at ts, into the fault stage. */
static ems_rc make_reading(ems_sim *s, size_t di, int64_t ts) {
    sim_dev *d = &s->devs[di];
    sim_item it = {.device = (uint32_t)di, .ts_ms = ts};
    if (s->ncsv) {
        double cap = d->max_kwh > 0 ? d->max_kwh * s->cfg.interval_s / 3600.0 * 1e6 : INFINITY;
        double v = (double)s->csv[d->csv_pos++ % s->ncsv] * d->scale;
        it.micro = (int64_t)llround(v < cap ? v : cap);
    } else {
        it.micro = sim_profile_value(&s->profile, local_hour_of(s->tz, ts), d->key, ts, d->scale, d->max_kwh);
    }
    s->generated++;
    s->last_ts = ts;
    return sim_faults_push(s->faults, &it);
}

/*
 * Makes the readings that are due until the batch is full.  Sets *wait (ms)
 * when the next one is not due yet, and gen_done at the end of the timeline.
 */
static ems_rc generate(ems_sim *s, int64_t *wait) {
    ems_rc rc;
    while (!builder_full(s)) {
        int64_t elapsed = mono_ms() - s->wall0;
        if (s->next_ts >= s->end_ts) {
            s->gen_done = 1;
            return EMS_OK;
        }
        if (s->opts.duration_s > 0 && elapsed >= (int64_t)(s->opts.duration_s * 1000)) {
            s->gen_done = 1;
            return EMS_OK;
        }
        if (s->opts.mode == EMS_SIM_LIVE) {
            int64_t now = sim_clock(s);
            if (s->next_ts > now) {
                *wait = (int64_t)ceil((double)(s->next_ts - now) / s->speed);
                if (*wait < 1) *wait = 1;
                return EMS_OK;
            }
        } else if (s->opts.mode == EMS_SIM_LOAD) {
            double allowed = s->opts.rate * (double)elapsed / 1000.0 + 1.0;
            if ((double)s->generated >= allowed) {
                *wait = (int64_t)ceil(((double)s->generated + 1.0 - allowed) * 1000.0 / s->opts.rate);
                if (*wait < 1) *wait = 1;
                return EMS_OK;
            }
        }
        if (atomic_load(&s->devs[s->cursor].state) == EMS_SIM_DEVICE_RUNNING) {
            if ((rc = make_reading(s, s->cursor, s->next_ts)) != EMS_OK) return rc;
            if ((rc = drain(s)) != EMS_OK) return rc;
        }
        if (++s->cursor == s->ndev) {
            s->cursor = 0;
            s->next_ts += s->interval_ms;
        }
    }
    return EMS_OK;
}

/*
 * Applies what other threads asked for.  EMS_AGAIN while paused, EMS_DECLINED
 * on an abort.
 */
static ems_rc control(ems_sim *s) {
    int paused, aborted;
    pthread_mutex_lock(&s->lock);
    s->ctl_seen = s->ctl_gen;
    aborted = s->abort;
    if (s->stop && !s->stopping) {
        s->stopping = 1;
        s->gen_done = 1;
    }
    if (s->speed_req) {
        s->anchor_sim = s->was_paused ? s->freeze_sim : sim_clock(s);
        s->freeze_sim = s->anchor_sim;
        s->anchor_wall = mono_ms();
        s->speed = s->req_speed;
        s->speed_req = 0;
    }
    if (s->start_req) {
        s->anchor_sim = s->freeze_sim = s->req_start;
        s->anchor_wall = mono_ms();
        s->next_ts = floor_to(s->req_start, s->interval_ms);
        s->cursor = 0;
        s->start_req = 0;
        if (!s->stopping) s->gen_done = 0;
    }
    paused = s->paused && !s->stopping;
    pthread_mutex_unlock(&s->lock);
    if (aborted) return EMS_DECLINED;
    if (paused) {
        if (!s->was_paused) {
            s->freeze_sim = sim_clock(s);
            s->was_paused = 1;
            set_run(s, EMS_SIM_RUN_PAUSED);
        }
        return EMS_AGAIN;
    }
    if (s->was_paused) {
        s->anchor_sim = s->freeze_sim;
        s->anchor_wall = mono_ms();
        s->was_paused = 0;
        set_run(s, EMS_SIM_RUN_RUNNING);
    }
    return EMS_OK;
}

static ems_rc finish(ems_sim *s, ems_rc rc) {
    s->finished = 1;
    s->result = rc;
    builder_reset(s);
    publish_progress(s);
    set_run(s, rc == EMS_OK ? EMS_SIM_RUN_FINISHED : EMS_SIM_RUN_FAILED);
    return rc == EMS_OK ? EMS_DECLINED : rc;
}

ems_rc ems_sim_step(ems_sim *s, int64_t *wait_ms) {
    int64_t wait = 0;
    ems_rc rc;
    *wait_ms = 0;
    if (s->finished) return s->result == EMS_OK ? EMS_DECLINED : s->result;
    if (!s->begun) begin(s);
    rc = control(s);
    if (rc == EMS_DECLINED) return finish(s, EMS_OK);
    if (rc == EMS_AGAIN) {
        /* What is built goes out before the pause. */
        publish_progress(s);
        if (s->nmsgs && (rc = deliver(s)) != EMS_OK) return finish(s, rc == EMS_DECLINED ? EMS_OK : rc);
        *wait_ms = -1;
        return EMS_AGAIN;
    }
    if (!s->gen_done && (rc = generate(s, &wait)) != EMS_OK) return finish(s, rc);
    if (s->gen_done) {
        sim_faults_flush(s->faults);
        if ((rc = drain(s)) != EMS_OK) return finish(s, rc);
    }
    if (s->nmsgs && (builder_full(s) || wait > 0 || s->gen_done)) {
        publish_progress(s);
        if ((rc = deliver(s)) != EMS_OK) return finish(s, rc == EMS_DECLINED ? EMS_OK : rc);
    }
    publish_progress(s);
    if (s->gen_done && s->nmsgs == 0 && sim_faults_held(s->faults) == 0) return finish(s, EMS_OK);
    if (wait > 0) {
        *wait_ms = wait;
        return EMS_AGAIN;
    }
    return EMS_OK;
}

/* Waits up to ms (-1: without limit) unless a control call came since the last step. */
static void wait_control(ems_sim *s, int64_t ms) {
    pthread_mutex_lock(&s->lock);
    if (s->ctl_gen == s->ctl_seen) {
        if (ms < 0) {
            pthread_cond_wait(&s->cond, &s->lock);
        } else {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += ms / 1000;
            until.tv_nsec += (ms % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cond, &s->lock, &until);
        }
    }
    pthread_mutex_unlock(&s->lock);
}

ems_rc ems_sim_run(ems_sim *s) {
    for (;;) {
        int64_t wait;
        ems_rc rc = ems_sim_step(s, &wait);
        if (rc == EMS_OK) continue;
        if (rc == EMS_DECLINED) return EMS_OK;
        if (rc != EMS_AGAIN) return rc;
        wait_control(s, wait);
    }
}

static void *run_thread(void *arg) {
    ems_sim *s = arg;
    s->thread_rc = ems_sim_run(s);
    return NULL;
}

ems_rc ems_sim_start(ems_sim *s) {
    if (s->thread_started || s->begun) return EMS_CONFLICT;
    if (pthread_create(&s->thread, NULL, run_thread, s) != 0) return EMS_INTERNAL;
    s->thread_started = 1;
    return EMS_OK;
}

ems_rc ems_sim_join(ems_sim *s) {
    if (!s->thread_started) return EMS_BAD_REQUEST;
    if (!s->thread_joined) {
        pthread_join(s->thread, NULL);
        s->thread_joined = 1;
    }
    return s->thread_rc;
}

int ems_sim_done(ems_sim *s) {
    pthread_mutex_lock(&s->lock);
    int done = s->st.run == EMS_SIM_RUN_FINISHED || s->st.run == EMS_SIM_RUN_FAILED;
    pthread_mutex_unlock(&s->lock);
    return done;
}

void ems_sim_free(ems_sim *s) {
    if (!s) return;
    if (s->thread_started) {
        ems_sim_abort(s);
        ems_sim_join(s);
    }
    builder_reset(s);
    sim_buf_free(&s->body);
    free(s->msgs);
    free(s->items);
    free(s->fresh);
    free(s->out);
    sim_faults_free(s->faults);
    sim_sender_free(s->sender);
    sim_hours_free(s->hours);
    ems_tz_free(s->tz);
    free(s->csv);
    free(s->devs);
    ems_sim_config_clear(&s->cfg);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- controls ------------------------------------------------------------- */

/* Every control goes through here: change under the lock, count it, wake the stepping thread. */
#define CONTROL(s, body)                                                                                               \
    do {                                                                                                               \
        pthread_mutex_lock(&(s)->lock);                                                                                \
        body;                                                                                                          \
        (s)->ctl_gen++;                                                                                                \
        pthread_cond_broadcast(&(s)->cond);                                                                            \
        pthread_mutex_unlock(&(s)->lock);                                                                              \
    } while (0)

void ems_sim_pause(ems_sim *s) { CONTROL(s, s->paused = 1); }
void ems_sim_resume(ems_sim *s) { CONTROL(s, s->paused = 0); }
void ems_sim_stop(ems_sim *s) { CONTROL(s, s->stop = 1); }
void ems_sim_abort(ems_sim *s) { CONTROL(s, s->abort = 1); }

ems_rc ems_sim_set_device_state(ems_sim *s, size_t device, ems_sim_device_state st) {
    if ((unsigned)st > EMS_SIM_DEVICE_STOPPED) return EMS_BAD_REQUEST;
    if (device != EMS_SIM_ALL_DEVICES && device >= s->ndev) return EMS_NOT_FOUND;
    for (size_t i = 0; i < s->ndev; i++)
        if (device == EMS_SIM_ALL_DEVICES || device == i) atomic_store(&s->devs[i].state, (int)st);
    CONTROL(s, (void)0);
    return EMS_OK;
}

ems_rc ems_sim_set_speed(ems_sim *s, double k) {
    if (s->opts.mode != EMS_SIM_LIVE || !(k > 0 && k <= MAX_SPEED)) return EMS_BAD_REQUEST;
    CONTROL(s, (s->req_speed = k, s->speed_req = 1));
    return EMS_OK;
}

ems_rc ems_sim_set_start(ems_sim *s, int64_t start_ms) {
    if (s->opts.mode != EMS_SIM_LIVE || start_ms <= 0) return EMS_BAD_REQUEST;
    CONTROL(s, (s->req_start = start_ms, s->start_req = 1));
    return EMS_OK;
}

/* ---- observation ---------------------------------------------------------- */

void ems_sim_get_stats(ems_sim *s, ems_sim_stats *out) {
    int64_t now = mono_ms();
    pthread_mutex_lock(&s->lock);
    *out = s->st;
    if (s->started_mono) {
        int64_t end = s->finished_mono ? s->finished_mono : now;
        out->elapsed_s = (double)(end - s->started_mono) / 1000.0;
    }
    pthread_mutex_unlock(&s->lock);
    out->rate = out->elapsed_s > 0 ? (double)out->readings / out->elapsed_s : 0.0;
}

size_t ems_sim_device_count(const ems_sim *s) { return s->ndev; }

ems_rc ems_sim_get_device(ems_sim *s, size_t i, ems_sim_device_info *out) {
    const sim_dev *d;
    if (i >= s->ndev) return EMS_NOT_FOUND;
    d = &s->devs[i];
    memcpy(out->id, d->id, sizeof out->id);
    out->state = (ems_sim_device_state)atomic_load(&s->devs[i].state);
    pthread_mutex_lock(&s->lock);
    out->readings = d->readings;
    out->total_micro = d->total_micro;
    out->last_ts_ms = d->last_ts;
    out->last_micro = d->last_micro;
    pthread_mutex_unlock(&s->lock);
    return EMS_OK;
}

/*
 * A point in time from the command line or the window, in the simulator's zone:
 *   an integer of 10 or more digits    epoch milliseconds
 *   YYYY-MM-DD                         the local day's start (*is_date = 1)
 *   an ISO-8601 date-time              wall time in the zone, or an instant with Z / an offset
 * (the forms of ems_iso8601_scan; years 1970 to 9999).
 */
ems_rc ems_sim_parse_time(const ems_sim_config *c, const char *text, int64_t *ms, int *is_date, char *err,
                          size_t errlen) {
    size_t n = text ? strlen(text) : 0;
    if (n >= 10 && strspn(text, "0123456789") == n) {
        char *end;
        long long v = strtoll(text, &end, 10);
        if (*end == '\0' && v > 0) {
            *ms = v;
            if (is_date) *is_date = 0;
            return EMS_OK;
        }
    }
    ems_iso_time t;
    if (!text || ems_iso8601_scan(text, &t) != 0 || t.t.year < 1970) {
        snprintf(err, errlen, "bad date '%s' (expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] or epoch ms)",
                 text ? text : "");
        return EMS_BAD_REQUEST;
    }
    ems_tz *tz = NULL;
    ems_rc rc = ems_tz_open(c->timezone, &tz, err, errlen);
    if (rc != EMS_OK) return rc;
    int bad = t.has_time ? ems_iso8601_parse(text, tz, ms) : ems_tz_day_start(tz, t.t.year, t.t.month, t.t.day, ms);
    ems_tz_free(tz);
    if (bad) {
        snprintf(err, errlen, "cannot place '%s' in time zone %s", text, c->timezone ? c->timezone : "(system)");
        return EMS_INTERNAL;
    }
    if (is_date) *is_date = !t.has_time;
    return EMS_OK;
}

size_t ems_sim_format_time(int64_t ms, char *buf, size_t cap) { return ems_iso8601_utc(ms, buf, cap); }

size_t ems_sim_format_kwh(int64_t micro, char *buf, size_t cap) { return sim_format_kwh(micro, buf, cap); }

void ems_sim_summary_line(ems_sim *s, char *buf, size_t cap) {
    ems_sim_stats st;
    char kwh[32];
    ems_sim_get_stats(s, &st);
    sim_format_kwh(st.total_micro, kwh, sizeof kwh);
    snprintf(buf, cap,
             "sent=%llu confirmed=%llu readings=%llu duplicates=%llu malformed=%llu messages=%llu generated=%llu "
             "total_kwh=%s seed=%llu",
             (unsigned long long)st.sent, (unsigned long long)st.confirmed, (unsigned long long)st.readings,
             (unsigned long long)st.duplicates, (unsigned long long)st.malformed, (unsigned long long)st.messages,
             (unsigned long long)st.generated, kwh, (unsigned long long)st.seed);
}

ems_rc ems_sim_write_summary_json(ems_sim *s, FILE *out) {
    ems_sim_stats st;
    sim_hour_sum *hours = NULL;
    size_t nh = 0, h = 0;
    char kwh[32], iso[40];
    ems_rc rc = EMS_OK;
    ems_sim_get_stats(s, &st);
    pthread_mutex_lock(&s->lock);
    if (s->hours) rc = sim_hours_sorted(s->hours, &hours, &nh);
    pthread_mutex_unlock(&s->lock);
    if (rc != EMS_OK) return rc;
    sim_format_kwh(st.total_micro, kwh, sizeof kwh);
    fprintf(out,
            "{\n  \"mode\": \"%s\",\n  \"seed\": %llu,\n  \"interval_s\": %d,\n  \"generated\": %llu,\n"
            "  \"sent\": %llu,\n  \"confirmed\": %llu,\n  \"readings\": %llu,\n  \"duplicates\": %llu,\n"
            "  \"malformed\": %llu,\n  \"messages\": %llu,\n  \"total_kwh\": %s,\n  \"total_micro_kwh\": %lld,\n"
            "  \"devices\": [",
            ems_sim_mode_name(s->opts.mode), (unsigned long long)st.seed, s->cfg.interval_s,
            (unsigned long long)st.generated, (unsigned long long)st.sent, (unsigned long long)st.confirmed,
            (unsigned long long)st.readings, (unsigned long long)st.duplicates, (unsigned long long)st.malformed,
            (unsigned long long)st.messages, kwh, (long long)st.total_micro);
    for (size_t i = 0; i < s->ndev; i++) {
        ems_sim_device_info d;
        ems_sim_get_device(s, i, &d);
        sim_format_kwh(d.total_micro, kwh, sizeof kwh);
        fprintf(out, "%s\n    {\"device_id\": \"%s\", \"readings\": %llu, \"total_kwh\": %s, \"total_micro_kwh\": %lld",
                i ? "," : "", d.id, (unsigned long long)d.readings, kwh, (long long)d.total_micro);
        if (s->hours) {
            int first = 1;
            fprintf(out, ",\n     \"hours\": [");
            for (; h < nh && hours[h].device == i; h++, first = 0) {
                ems_iso8601_utc(hours[h].hour * 3600000, iso, sizeof iso);
                sim_format_kwh(hours[h].micro, kwh, sizeof kwh);
                fprintf(out, "%s\n       {\"hour\": \"%s\", \"readings\": %llu, \"kwh\": %s, \"micro_kwh\": %lld}",
                        first ? "" : ",", iso, (unsigned long long)hours[h].readings, kwh, (long long)hours[h].micro);
            }
            fprintf(out, "%s]", first ? "" : "\n     ");
        }
        fprintf(out, "}");
    }
    fprintf(out, "%s]\n}\n", s->ndev ? "\n  " : "");
    free(hours);
    return ferror(out) ? EMS_INTERNAL : EMS_OK;
}
