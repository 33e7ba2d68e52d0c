/*
 * cli.c — `ems-sim`, the simulator's command line: parses flags from one
 * table, layers config file → environment → flags, runs the simulation core
 * (sim.h) on its thread, shows progress on stderr at most once a second and
 * prints a summary line on stdout at the end.
 *
 * Exit codes: 0 done; 1 internal error; 2 bad usage or config; 3 the target
 * stayed unreachable (--max-retry-s) or was unreachable when stopped; 4 the
 * target refused the readings (HTTP 401/403/4xx, a queue with other
 * arguments).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_REFUSED 4
#define POLL_MS 100
#define PROGRESS_MS 1000

enum { C_LIVE = 1, C_BACKFILL = 2, C_LOAD = 4, C_VALIDATE = 8, C_RUN = C_LIVE | C_BACKFILL | C_LOAD, C_ANY = 15 };

typedef enum { A_FLAG, A_INT, A_U64, A_NUM, A_STR, A_LIST } arg_kind;

typedef struct {
    const char *config, *amqp, *queue, *exchange, *http, *token, *timezone, *csv, *format, *start, *end, *summary_json,
        *log_level;
    const char **devices;
    size_t ndevices;
    long interval, batch, publish_batch, late_by, shuffle_window, days, load_devices;
    unsigned long long seed;
    double duplicates, late, malformed, speed, duration, rate, max_retry;
    int iso, shuffle, quiet, help;
} cli_args;

typedef struct {
    const char *name;
    arg_kind kind;
    size_t off;
    double lo, hi;
    unsigned cmds;
    const char *meta;
    const char *help;
} cli_opt;

#define F(field) offsetof(cli_args, field)

static const cli_opt opts[] = {
    {"config", A_STR, F(config), 0, 0, C_ANY, "FILE", "JSON config file (see docs/sim.md)"},
    {"amqp", A_STR, F(amqp), 0, 0, C_ANY, "URL", "send to RabbitMQ, amqp://user:pass@host:port"},
    {"queue", A_STR, F(queue), 0, 0, C_ANY, "NAME", "queue (default external.data.collection.queue)"},
    {"exchange", A_STR, F(exchange), 0, 0, C_ANY, "NAME", "publish to this exchange, queue as key; declare nothing"},
    {"http", A_STR, F(http), 0, 0, C_ANY, "URL", "POST to http://host:port/api/readings instead"},
    {"token", A_STR, F(token), 0, 0, C_ANY, "TOKEN", "ingest token for --http (or EMS_INGEST_TOKEN)"},
    {"device", A_LIST, F(devices), 0, 0, C_ANY, "UUID", "add a device (repeatable)"},
    {"interval", A_INT, F(interval), 1, 86400, C_ANY, "S", "seconds between readings of a device (default 600)"},
    {"seed", A_U64, F(seed), 0, 0, C_ANY, "N", "seed for reproducible readings (default random)"},
    {"timezone", A_STR, F(timezone), 0, 0, C_ANY, "ZONE", "the meters' IANA time zone (default the system's)"},
    {"csv", A_STR, F(csv), 0, 0, C_ANY, "FILE", "values file used in order instead of the load curve"},
    {"batch", A_INT, F(batch), 1, 10000, C_ANY, "N", "readings per message (default 1; http 1000)"},
    {"publish-batch", A_INT, F(publish_batch), 1, 10000, C_ANY, "N", "AMQP messages per confirm wait (default 500)"},
    {"format", A_STR, F(format), 0, 0, C_ANY, "F", "seed (default) or original ({deviceId,timestamp,value})"},
    {"iso", A_FLAG, F(iso), 0, 0, C_ANY, NULL, "ISO-8601 timestamps instead of epoch ms"},
    {"duplicates", A_NUM, F(duplicates), 0, 1, C_ANY, "P", "fraction of readings sent twice"},
    {"late", A_NUM, F(late), 0, 1, C_ANY, "P", "fraction of readings sent after newer ones"},
    {"late-by", A_INT, F(late_by), 1, 1000000, C_ANY, "N", "how many readings a late one waits (default 50)"},
    {"shuffle", A_FLAG, F(shuffle), 0, 0, C_ANY, NULL, "send out of order within a window"},
    {"shuffle-window", A_INT, F(shuffle_window), 2, 1000000, C_ANY, "N", "readings in that window (default 32)"},
    {"malformed", A_NUM, F(malformed), 0, 1, C_ANY, "P", "extra malformed messages per reading"},
    {"speed", A_NUM, F(speed), 1e-6, 1e6, C_LIVE, "K", "run the clock K times faster than real time"},
    {"start", A_STR, F(start), 0, 0, C_LIVE, "DATE", "replay from DATE (YYYY-MM-DD or ISO-8601)"},
    {"end", A_STR, F(end), 0, 0, C_LIVE | C_BACKFILL, "DATE", "stop at DATE (backfill: default now)"},
    {"days", A_INT, F(days), 1, 3660, C_BACKFILL, "N", "days of history (default 1)"},
    {"devices", A_INT, F(load_devices), 1, 1000000, C_LOAD, "N", "synthetic devices (default 100)"},
    {"rate", A_NUM, F(rate), 1e-3, 1e7, C_LOAD, "R", "readings per second (default 1000)"},
    {"duration", A_NUM, F(duration), 1e-3, 1e9, C_LIVE | C_LOAD, "S", "stop after S seconds (load: default 10)"},
    {"max-retry-s", A_NUM, F(max_retry), 0, 1e9, C_RUN, "S", "give up (exit 3) after S s unreachable"},
    {"summary-json", A_STR, F(summary_json), 0, 0, C_RUN, "FILE", "write totals per device and UTC hour"},
    {"quiet", A_FLAG, F(quiet), 0, 0, C_ANY, NULL, "no progress line"},
    {"log-level", A_STR, F(log_level), 0, 0, C_ANY, "L", "debug, info, warn (default), error"},
    {"help", A_FLAG, F(help), 0, 0, C_ANY, NULL, "this text"},
};

#define NOPTS (sizeof opts / sizeof opts[0])

static const struct {
    const char *name;
    unsigned mask;
    const char *what;
} commands[] = {
    {"live", C_LIVE, "a reading per device every interval, in real time or faster"},
    {"backfill", C_BACKFILL, "N days of history, as fast as the target takes it"},
    {"load", C_LOAD, "many synthetic devices at a target rate"},
    {"validate", C_VALIDATE, "check a config (and flags) and say what would run"},
};

static volatile sig_atomic_t signals_seen;
static atomic_int progress_shown; /* a \r progress line is on the terminal */
static int stderr_tty;

static void on_signal(int sig) {
    (void)sig;
    signals_seen++;
}

static void usage(FILE *out) {
    fprintf(out, "usage: ems-sim <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].what);
    fprintf(out, "\noptions:\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].meta ? " " : "",
                 opts[i].meta ? opts[i].meta : "");
        fprintf(out, "  %-24s %s", left, opts[i].help);
        if (opts[i].cmds != C_ANY && opts[i].cmds != C_RUN) {
            fprintf(out, " [");
            for (size_t c = 0, n = 0; c < sizeof commands / sizeof commands[0]; c++)
                if (opts[i].cmds & commands[c].mask) fprintf(out, "%s%s", n++ ? ", " : "", commands[c].name);
            fprintf(out, "]");
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\nFlags override the config file; see docs/sim.md.  Exit codes: 0 ok, 2 bad usage or config,\n"
                 "3 target unreachable, 4 target refused the readings.\n");
}

/* Prints a message line on stderr, clearing a progress line first. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%sems-sim: %s\n", atomic_exchange(&progress_shown, 0) ? "\r\033[K" : "", line);
}

/* ---- flags --------------------------------------------------------------- */

static int set_value(const cli_opt *o, const char *v, cli_args *a, char *err, size_t errlen) {
    void *dst = (char *)a + o->off;
    char *end;
    errno = 0;
    switch (o->kind) {
    case A_FLAG: *(int *)dst = 1; return 0;
    case A_STR: *(const char **)dst = v; return 0;
    case A_LIST: {
        const char **list = realloc(a->devices, (a->ndevices + 1) * sizeof *list);
        if (!list) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        a->devices = list;
        list[a->ndevices++] = v;
        return 0;
    }
    case A_INT: {
        long n = strtol(v, &end, 10);
        if (end == v || *end || errno || n < (long)o->lo || n > (long)o->hi) {
            snprintf(err, errlen, "--%s: expected an integer between %g and %g, got '%s'", o->name, o->lo, o->hi, v);
            return -1;
        }
        *(long *)dst = n;
        return 0;
    }
    case A_U64: {
        unsigned long long n = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-') {
            snprintf(err, errlen, "--%s: expected a non-negative integer, got '%s'", o->name, v);
            return -1;
        }
        *(unsigned long long *)dst = n;
        return 0;
    }
    case A_NUM: {
        double d = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(d) || d < o->lo || d > o->hi) {
            snprintf(err, errlen, "--%s: expected a number between %g and %g, got '%s'", o->name, o->lo, o->hi, v);
            return -1;
        }
        *(double *)dst = d;
        return 0;
    }
    }
    return -1;
}

/* Fills a and given[] (one flag per option) from argv[first..]; the command's mask limits the options. */
static int parse_flags(int argc, char **argv, int first, unsigned cmd, cli_args *a, unsigned char *given, char *err,
                       size_t errlen) {
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *eq, *value = NULL;
        size_t nlen, k;
        if (strcmp(arg, "-h") == 0) arg = "--help";
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            return -1;
        }
        arg += 2;
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        for (k = 0; k < NOPTS; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, arg, nlen) == 0) break;
        if (k == NOPTS) {
            snprintf(err, errlen, "unknown option --%.*s (see ems-sim --help)", (int)nlen, arg);
            return -1;
        }
        if (!(opts[k].cmds & cmd)) {
            char where[96] = "";
            for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
                if (opts[k].cmds & commands[c].mask)
                    snprintf(where + strlen(where), sizeof where - strlen(where), "%s%s", where[0] ? ", " : "",
                             commands[c].name);
            snprintf(err, errlen, "--%s applies to: %s", opts[k].name, where);
            return -1;
        }
        if (opts[k].kind == A_FLAG) {
            if (eq) {
                snprintf(err, errlen, "--%s takes no value", opts[k].name);
                return -1;
            }
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value (%s)", opts[k].name, opts[k].meta);
            return -1;
        }
        if (set_value(&opts[k], value, a, err, errlen) != 0) return -1;
        given[k] = 1;
    }
    return 0;
}

static int was_given(const unsigned char *given, const char *name) {
    for (size_t k = 0; k < NOPTS; k++)
        if (strcmp(opts[k].name, name) == 0) return given[k];
    return 0;
}

/* Turns a relative path given on the command line into one that does not depend on the config's folder. */
static int absolute(const char *path, char *out, size_t cap) {
    char cwd[2048];
    if (path[0] == '/') return snprintf(out, cap, "%s", path) < (int)cap ? 0 : -1;
    if (!getcwd(cwd, sizeof cwd)) return -1;
    return snprintf(out, cap, "%s/%s", cwd, path) < (int)cap ? 0 : -1;
}

/* Flags over the config: the last layer. */
static int apply_flags(const cli_args *a, const unsigned char *g, ems_sim_config *c, char *err, size_t errlen) {
    char path[4096];
    int ok = 1;
    if (a->amqp && a->http) {
        snprintf(err, errlen, "--amqp and --http exclude each other");
        return -1;
    }
    if (a->amqp) {
        c->target.kind = EMS_SIM_TARGET_AMQP;
        c->target.from_env = 0;
        ok &= ems_sim_config_set_string(&c->target.url, a->amqp) == EMS_OK;
    }
    if (a->http) {
        c->target.kind = EMS_SIM_TARGET_HTTP;
        c->target.from_env = 0;
        ok &= ems_sim_config_set_string(&c->target.url, a->http) == EMS_OK;
    }
    if (a->queue) {
        if (c->target.kind != EMS_SIM_TARGET_AMQP) {
            snprintf(err, errlen, "--queue applies to an amqp target");
            return -1;
        }
        ok &= ems_sim_config_set_string(&c->target.queue, a->queue) == EMS_OK;
    }
    if (a->exchange) {
        if (c->target.kind != EMS_SIM_TARGET_AMQP) {
            snprintf(err, errlen, "--exchange applies to an amqp target");
            return -1;
        }
        ok &= ems_sim_config_set_string(&c->target.exchange, a->exchange) == EMS_OK;
    }
    if (a->token) { /* a flag beats the environment */
        ok &= ems_sim_config_set_string(&c->target.token, a->token) == EMS_OK;
        ok &= ems_sim_config_set_string(&c->target.env_token, NULL) == EMS_OK;
    }
    for (size_t i = 0; i < a->ndevices; i++) {
        char inner[256];
        if (ems_sim_config_add_device(c, a->devices[i], inner, sizeof inner) != EMS_OK) {
            snprintf(err, errlen, "--device: %s", inner);
            return -1;
        }
    }
    if (was_given(g, "interval")) c->interval_s = (int)a->interval;
    if (was_given(g, "seed")) {
        c->seed = a->seed;
        c->has_seed = 1;
    }
    if (a->timezone) ok &= ems_sim_config_set_string(&c->timezone, a->timezone) == EMS_OK;
    if (a->csv) {
        if (absolute(a->csv, path, sizeof path) != 0) {
            snprintf(err, errlen, "--csv: path too long");
            return -1;
        }
        ok &= ems_sim_config_set_string(&c->csv, path) == EMS_OK;
    }
    if (was_given(g, "batch")) c->send.batch = (int)a->batch;
    if (was_given(g, "publish-batch")) c->send.publish_batch = (int)a->publish_batch;
    if (a->format) {
        if (strcmp(a->format, "seed") == 0) {
            c->send.format = EMS_SIM_FORMAT_SEED;
        } else if (strcmp(a->format, "original") == 0) {
            c->send.format = EMS_SIM_FORMAT_ORIGINAL;
        } else {
            snprintf(err, errlen, "--format: expected seed or original, got '%s'", a->format);
            return -1;
        }
    }
    if (a->iso) c->send.iso = 1;
    if (was_given(g, "duplicates")) c->faults.duplicates = a->duplicates;
    if (was_given(g, "late")) c->faults.late = a->late;
    if (was_given(g, "late-by")) c->faults.late_by = (int)a->late_by;
    if (a->shuffle) c->faults.shuffle = 1;
    if (was_given(g, "shuffle-window")) c->faults.shuffle_window = (int)a->shuffle_window;
    if (was_given(g, "malformed")) c->faults.malformed = a->malformed;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int build_opts(const cli_args *a, const unsigned char *g, ems_sim_mode mode, const ems_sim_config *c,
                      ems_sim_opts *o, char *err, size_t errlen) {
    char inner[256];
    ems_sim_opts_init(o, mode);
    if (was_given(g, "speed")) o->speed = a->speed;
    if (was_given(g, "days")) o->days = (int)a->days;
    if (was_given(g, "devices")) o->load_devices = (uint32_t)a->load_devices;
    if (was_given(g, "rate")) o->rate = a->rate;
    if (was_given(g, "duration")) o->duration_s = a->duration;
    if (was_given(g, "max-retry-s")) o->max_retry_s = a->max_retry;
    o->track_hours = a->summary_json != NULL;
    if (a->start && ems_sim_parse_time(c, a->start, &o->start_ms, NULL, inner, sizeof inner) != EMS_OK) {
        snprintf(err, errlen, "--start: %s", inner);
        return -1;
    }
    if (a->end && ems_sim_parse_time(c, a->end, &o->end_ms, NULL, inner, sizeof inner) != EMS_OK) {
        snprintf(err, errlen, "--end: %s", inner);
        return -1;
    }
    return 0;
}

/* ---- running ------------------------------------------------------------- */

static void observe(const ems_sim_event *ev, void *ctx) {
    static _Thread_local int was_retrying;
    (void)ctx;
    if (ev->kind != EMS_SIM_EV_STATE) return;
    if (ev->link == EMS_SIM_LINK_RETRYING && ev->message) {
        say("%s", ev->message);
        was_retrying = 1;
    } else if (ev->link == EMS_SIM_LINK_UP && was_retrying) {
        say("connected again");
        was_retrying = 0;
    }
}

static void progress(ems_sim *s, const char *mode) {
    ems_sim_stats st;
    char when[40] = "-";
    ems_sim_get_stats(s, &st);
    if (st.sim_time_ms) ems_sim_format_time(st.sim_time_ms, when, sizeof when);
    fprintf(stderr, "%sems-sim: %s generated=%llu sent=%llu confirmed=%llu rate=%.0f/s at=%s link=%s%s",
            stderr_tty ? "\r\033[K" : "", mode, (unsigned long long)st.generated, (unsigned long long)st.sent,
            (unsigned long long)st.confirmed, st.rate, when, ems_sim_link_state_name(st.link), stderr_tty ? "" : "\n");
    if (stderr_tty) atomic_store(&progress_shown, 1);
}

static int exit_code(ems_rc rc) {
    static const struct {
        ems_rc rc;
        int code;
    } codes[] = {
        {EMS_OK, 0},
        {EMS_UNAVAILABLE, EXIT_UNREACHABLE},
        {EMS_AGAIN, EXIT_UNREACHABLE},
        {EMS_UNAUTHORIZED, EXIT_REFUSED},
        {EMS_FORBIDDEN, EXIT_REFUSED},
        {EMS_BAD_REQUEST, EXIT_REFUSED},
        {EMS_CONFLICT, EXIT_REFUSED},
        {EMS_NOT_FOUND, EXIT_REFUSED},
        {EMS_TOO_LARGE, EXIT_REFUSED},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].rc == rc) return codes[i].code;
    return 1;
}

static int write_summary_json(ems_sim *s, const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    int bad;
    if (!f) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    bad = ems_sim_write_summary_json(s, f) != EMS_OK;
    if (f != stdout) bad |= fclose(f) != 0;
    if (bad) say("%s: could not write the summary", path);
    return bad ? -1 : 0;
}

static int run(ems_sim *s, const cli_args *a, const char *mode) {
    struct sigaction sa;
    sigset_t block, old;
    int64_t last = 0;
    int handled = 0, code;
    ems_sim_stats st;
    char line[512];
    ems_rc rc;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* The simulation's thread must not take the signals: its sockets would see EINTR. */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    rc = ems_sim_start(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != EMS_OK) {
        say("cannot start: %s", ems_rc_message(rc));
        return 1;
    }
    while (!ems_sim_done(s)) {
        struct timespec ts = {.tv_nsec = POLL_MS * 1000000L}, now;
        int64_t ms;
        nanosleep(&ts, NULL);
        if (signals_seen > handled) {
            handled = signals_seen;
            if (handled == 1) {
                say("stopping: sending what is made (again to abort)");
                ems_sim_stop(s);
            } else {
                ems_sim_abort(s);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        if (!a->quiet && ms - last >= PROGRESS_MS) {
            if (last) progress(s, mode);
            last = ms;
        }
    }
    rc = ems_sim_join(s);
    if (atomic_exchange(&progress_shown, 0)) fputs("\r\033[K", stderr);
    ems_sim_get_stats(s, &st);
    if (rc != EMS_OK) say("%s", st.last_error[0] ? st.last_error : ems_rc_message(rc));
    ems_sim_summary_line(s, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
    code = exit_code(rc);
    if (a->summary_json && write_summary_json(s, a->summary_json) != 0 && code == 0) code = 1;
    return code;
}

static void describe(const ems_sim_config *c) {
    printf("config ok: %zu device(s), interval %d s, time zone %s, %s target %s%s%s\n", c->ndevices, c->interval_s,
           c->timezone ? c->timezone : "(system)", c->target.kind == EMS_SIM_TARGET_HTTP ? "http" : "amqp",
           c->target.kind == EMS_SIM_TARGET_HTTP ? "" : "queue ",
           c->target.kind == EMS_SIM_TARGET_HTTP ? "" : ems_sim_config_queue(c), c->csv ? ", values from csv" : "");
}

int main(int argc, char **argv) {
    cli_args a;
    unsigned char given[NOPTS];
    ems_sim_config cfg;
    ems_sim_opts o;
    ems_sim *s = NULL;
    char err[1024];
    unsigned cmd = 0;
    int mode = -1, code = EXIT_USAGE, level;
    memset(&a, 0, sizeof a);
    memset(given, 0, sizeof given);
    ems_sim_config_init(&cfg);
    stderr_tty = isatty(STDERR_FILENO);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) cmd = commands[i].mask;
    if (!cmd) {
        say("unknown command '%s' (live, backfill, load or validate; see ems-sim --help)", argv[1]);
        return EXIT_USAGE;
    }
    if (parse_flags(argc, argv, 2, cmd, &a, given, err, sizeof err) != 0) {
        say("%s", err);
        goto cleanup;
    }
    if (a.help) {
        usage(stdout);
        code = 0;
        goto cleanup;
    }
    level = ems_log_level_parse(a.log_level ? a.log_level : "warn");
    if (level < 0) {
        say("--log-level: expected debug, info, warn, error or off");
        goto cleanup;
    }
    ems_log_set_level((ems_log_level)level);
    ems_log_set_context("app=ems-sim");
    if (a.config && ems_sim_config_load_file(&cfg, a.config, err, sizeof err) != EMS_OK) {
        say("invalid config: %s", err);
        goto cleanup;
    }
    if (ems_sim_config_apply_env(&cfg) != EMS_OK || apply_flags(&a, given, &cfg, err, sizeof err) != 0) {
        say("%s", err);
        goto cleanup;
    }
    if (ems_sim_config_validate(&cfg, err, sizeof err) != EMS_OK) {
        say("invalid config: %s", err);
        goto cleanup;
    }
    if (cmd == C_VALIDATE) {
        describe(&cfg);
        code = 0;
        goto cleanup;
    }
    mode = cmd == C_LIVE ? EMS_SIM_LIVE : cmd == C_BACKFILL ? EMS_SIM_BACKFILL : EMS_SIM_LOAD;
    if (build_opts(&a, given, (ems_sim_mode)mode, &cfg, &o, err, sizeof err) != 0) {
        say("%s", err);
        goto cleanup;
    }
    if (ems_sim_new(&cfg, &o, &s, err, sizeof err) != EMS_OK) {
        say("%s%s", err, cfg.ndevices == 0 && mode != EMS_SIM_LOAD ? "; or pass --device UUID" : "");
        goto cleanup;
    }
    ems_sim_set_observer(s, observe, NULL);
    code = run(s, &a, ems_sim_mode_name((ems_sim_mode)mode));
cleanup:
    ems_sim_free(s);
    ems_sim_config_clear(&cfg);
    free(a.devices);
    return code;
}
