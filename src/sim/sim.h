/*
 * sim.h — the meter simulator, as a library: the `ems-sim` command line and
 * the desktop window (ems-sim-gtk) are two faces of this one core; neither
 * holds any simulation logic of its own.
 *
 * A simulation is made from a validated config (sim_config.h) and run
 * options (the mode and its parameters).  It generates readings in time
 * order — for each timestamp on the interval grid, one reading per running
 * device — passes them through fault injection, packs them into messages and
 * sends them, counting a reading only once its target confirmed it.
 *
 * Modes:
 *   LIVE      a reading per device every interval of the simulation clock,
 *             which runs at `speed` times real time from `start` (default:
 *             now; the first reading is at the interval boundary at or before
 *             it); optionally until `end` or for `duration_s` wall seconds.
 *   BACKFILL  `days` days of history up to `end` (default now), as fast as
 *             the target takes it.
 *   LOAD      `load_devices` synthetic devices (ids derived from the seed) at
 *             `rate` readings per second for `duration_s` seconds, over a
 *             history that ends now.
 *
 * Driving it: either call ems_sim_run (blocking) or ems_sim_step in a loop
 * on a thread of your own, or ems_sim_start to run it on a thread it owns;
 * never both.  Control calls (pause, resume, stop, device states, speed,
 * start) and observation calls (stats, devices, summary) are thread-safe and
 * may be made from any thread at any time.  An observer callback, if set,
 * is called on the simulation's thread for every reading confirmed and every
 * change of state; it must not block long, and may call the observation
 * functions (a GUI hands the event to its main loop).
 *
 * Nothing here prints: results are codes, messages are in the stats'
 * last_error, and the faces decide what to show.
 */
#ifndef EMS_SIM_H
#define EMS_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus.h"
#include "result.h"
#include "sim_config.h"

typedef enum { EMS_SIM_LIVE, EMS_SIM_BACKFILL, EMS_SIM_LOAD } ems_sim_mode;

typedef struct {
    ems_sim_mode mode;
    double speed;          /* live: 1 = real time */
    int64_t start_ms;      /* live: epoch ms of the first reading; 0 = now */
    int64_t end_ms;        /* live: stop there (0 = never); backfill: up to there, exclusive (0 = now) */
    int days;              /* backfill */
    uint32_t load_devices; /* load */
    double rate;           /* load: readings per second */
    double duration_s;     /* live: 0 = until stopped; load: required */
    double max_retry_s;    /* give up after the target was unreachable this long; 0 = never */
    int track_hours;       /* keep sums per device and UTC hour (for ems_sim_write_summary_json) */
} ems_sim_opts;

/* Defaults for a mode: speed 1, 1 day, 100 devices at 1000/s for 10 s. */
void ems_sim_opts_init(ems_sim_opts *o, ems_sim_mode mode);
/* "live", "backfill", "load"; ems_sim_mode_parse returns -1 for anything else. */
const char *ems_sim_mode_name(ems_sim_mode m);
int ems_sim_mode_parse(const char *name);

typedef enum {
    EMS_SIM_RUN_IDLE, /* made, not started */
    EMS_SIM_RUN_RUNNING,
    EMS_SIM_RUN_PAUSED,
    EMS_SIM_RUN_FINISHED, /* reached its end, or stopped */
    EMS_SIM_RUN_FAILED,   /* gave up or hit a final error: see last_error */
} ems_sim_run_state;

typedef enum {
    EMS_SIM_LINK_CONNECTING, /* nothing sent yet */
    EMS_SIM_LINK_UP,         /* the last send was confirmed */
    EMS_SIM_LINK_RETRYING,   /* unreachable or busy: retrying with backoff */
    EMS_SIM_LINK_DOWN,       /* a final error */
} ems_sim_link_state;

const char *ems_sim_run_state_name(ems_sim_run_state s);
const char *ems_sim_link_state_name(ems_sim_link_state s);

typedef struct {
    ems_sim_run_state run;
    ems_sim_link_state link;
    uint64_t seed;
    uint64_t generated;  /* distinct good readings made */
    uint64_t sent;       /* good reading copies handed to the target (duplicates included) */
    uint64_t confirmed;  /* good reading copies confirmed (duplicates included) */
    uint64_t readings;   /* distinct good readings confirmed */
    uint64_t duplicates; /* confirmed copies beyond the first */
    uint64_t malformed;  /* malformed messages confirmed */
    uint64_t messages;   /* messages confirmed */
    uint64_t retries;    /* sends that had to be repeated */
    int64_t total_micro; /* sum of the distinct confirmed readings, micro-kWh */
    int64_t sim_time_ms; /* timestamp of the latest reading made (the simulation clock) */
    double elapsed_s;
    double rate;      /* confirmed readings per second so far */
    char target[384]; /* where the readings go, without credentials */
    char last_error[512];
} ems_sim_stats;

typedef enum { EMS_SIM_DEVICE_RUNNING, EMS_SIM_DEVICE_PAUSED, EMS_SIM_DEVICE_STOPPED } ems_sim_device_state;
const char *ems_sim_device_state_name(ems_sim_device_state s);

typedef struct {
    char id[EMS_SIM_ID_LEN + 1];
    ems_sim_device_state state;
    uint64_t readings; /* distinct confirmed */
    int64_t total_micro;
    int64_t last_ts_ms; /* 0 before the first */
    int64_t last_micro;
} ems_sim_device_info;

typedef enum { EMS_SIM_EV_READING, EMS_SIM_EV_STATE } ems_sim_event_kind;

typedef struct {
    ems_sim_event_kind kind;
    /* EMS_SIM_EV_READING: a reading confirmed for the first time */
    size_t device;
    int64_t ts_ms;
    int64_t micro;
    /* EMS_SIM_EV_STATE: the run or link state changed; message says why (or NULL) */
    ems_sim_run_state run;
    ems_sim_link_state link;
    const char *message;
} ems_sim_event;

typedef void (*ems_sim_observer)(const ems_sim_event *ev, void *ctx);

typedef struct ems_sim ems_sim;

/*
 * Copies cfg (validated again here) and opts.  The target is the config's
 * unless ems_sim_use_bus is called before the first step.  EMS_BAD_REQUEST
 * with a message for bad options (no devices, a load without a rate, ...).
 */
ems_rc ems_sim_new(const ems_sim_config *cfg, const ems_sim_opts *opts, ems_sim **out, char *err, size_t errlen);
/* Aborts a running simulation, waits for its thread, frees; accepts NULL. */
void ems_sim_free(ems_sim *s);

/* Sends through a bus the caller owns (e.g. the embedded server's in-process bus); before the first step. */
ems_rc ems_sim_use_bus(ems_sim *s, ems_bus *bus, const char *queue);
/* Before the first step. */
void ems_sim_set_observer(ems_sim *s, ems_sim_observer fn, void *ctx);

/*
 * One unit of work on the caller's thread: makes the readings that are due
 * (at most one batch) and sends them, retrying while the target is away.
 *   EMS_OK        did something; call again
 *   EMS_AGAIN     nothing due: call again after *wait_ms (-1: after a control call)
 *   EMS_DECLINED  finished (ran to its end, stopped or aborted)
 *   other         failed for good; the stats' last_error says why
 *                 (EMS_UNAVAILABLE: gave up on an unreachable target)
 */
ems_rc ems_sim_step(ems_sim *s, int64_t *wait_ms);
/* Steps until finished: EMS_OK, or the failure. */
ems_rc ems_sim_run(ems_sim *s);
/* Runs on a thread of the simulation's own. */
ems_rc ems_sim_start(ems_sim *s);
/* Waits for that thread; returns what ems_sim_run returned. */
ems_rc ems_sim_join(ems_sim *s);
/* 1 once the run has finished or failed. */
int ems_sim_done(ems_sim *s);

/* Pause freezes the simulation clock; resume continues from where it stood. */
void ems_sim_pause(ems_sim *s);
void ems_sim_resume(ems_sim *s);
/* Stops making readings, sends what is already made (without waiting for an unreachable target), finishes. */
void ems_sim_stop(ems_sim *s);
/* Finishes at once; what was not confirmed is not counted. */
void ems_sim_abort(ems_sim *s);

/* A paused or stopped device makes no readings meanwhile (a meter switched off). */
#define EMS_SIM_ALL_DEVICES ((size_t)-1)
ems_rc ems_sim_set_device_state(ems_sim *s, size_t device, ems_sim_device_state st);

/* Live mode only (EMS_BAD_REQUEST otherwise): 0 < k <= 1e6; the clock goes on from where it stands. */
ems_rc ems_sim_set_speed(ems_sim *s, double k);
/* Live mode only: jumps the clock to start_ms (the next reading is at the boundary at or before it). */
ems_rc ems_sim_set_start(ems_sim *s, int64_t start_ms);

void ems_sim_get_stats(ems_sim *s, ems_sim_stats *out);
size_t ems_sim_device_count(const ems_sim *s);
ems_rc ems_sim_get_device(ems_sim *s, size_t i, ems_sim_device_info *out);

/*
 * A point in time typed by a person, in the config's time zone:
 * YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM[:SS] (local), with Z or
 * ±HH:MM (absolute), or epoch ms.  *is_date (may be NULL) tells a bare date.
 */
ems_rc ems_sim_parse_time(const ems_sim_config *c, const char *text, int64_t *ms, int *is_date, char *err,
                          size_t errlen);
/* "2024-03-10T00:10:00Z"; returns the length. */
size_t ems_sim_format_time(int64_t ms, char *buf, size_t cap);
/* "0.123456" from micro-kWh; returns the length. */
size_t ems_sim_format_kwh(int64_t micro, char *buf, size_t cap);

/* "sent=… confirmed=… readings=… duplicates=… malformed=… messages=… total_kwh=… seed=…" */
void ems_sim_summary_line(ems_sim *s, char *buf, size_t cap);
/* The summary with per-device sums (and per UTC hour with track_hours) as JSON. */
ems_rc ems_sim_write_summary_json(ems_sim *s, FILE *out);

#endif
