/*
 * app.c — `ems-sim-gtk`, the simulator's desktop window: a GTK 4 face over
 * the same core as the `ems-sim` command line (sim.h, sim_config.h).  It
 * opens a config file, shows its main settings for editing and saving, runs
 * a live simulation (a replay date and a speed-up factor), and shows the
 * devices with their states and counts, the connection status and a plot of
 * the values sent.  It holds no simulation logic.
 *
 * Threads: the core runs on its own thread (ems_sim_start).  Its observer
 * only copies confirmed readings into a mutex-guarded ring (plain C, no
 * GTK); a GLib timeout on the main loop drains that ring into the plot and
 * polls the stats and device infos.  GTK is touched from the main loop only.
 *
 * Problems are shown in a banner at the top of the window and written to
 * stderr as "ems-sim-gtk: <message>", never as a crash.  For tests,
 * --autostart starts the run once the window is up and --screenshot FILE
 * --after-ms N saves the window as a PNG after N ms and quits; the exit
 * code then says what the window was showing:
 *   0 no problem; 1 the screenshot could not be saved (or bad usage of a
 *   test flag); 2 invalid config; 3 target unreachable (retrying, or gave
 *   up); 4 the target refused the readings or the run failed otherwise.
 */
#include <errno.h>
#include <gtk/gtk.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plot.h"
#include "sim.h"

#define APP_ID "org.ems.SimGtk"
#define POLL_MS 200
#define FEED_CAP 8192
#define EXIT_SHOT_FAILED 1
#define EXIT_CONFIG 2
#define EXIT_UNREACHABLE 3
#define EXIT_REFUSED 4

/* ---- command line -------------------------------------------------------- */

typedef struct {
    const char *config, *screenshot, *start, *speed, *after_ms;
    int autostart, help;
} app_args;

typedef struct {
    const char *name;
    size_t off;
    int is_flag;
    const char *meta, *help;
} app_opt;

#define A(field) offsetof(app_args, field)
static const app_opt app_opts[] = {
    {"config", A(config), 0, "FILE", "open this config file (see docs/sim.md)"},
    {"start", A(start), 0, "DATE", "replay from DATE (YYYY-MM-DD or ISO-8601; default now)"},
    {"speed", A(speed), 0, "K", "run the clock K times faster than real time (default 1)"},
    {"autostart", A(autostart), 1, NULL, "start the simulation as soon as the window is up"},
    {"screenshot", A(screenshot), 0, "FILE", "save the window as PNG after --after-ms and quit"},
    {"after-ms", A(after_ms), 0, "N", "milliseconds before the screenshot (default 3000)"},
    {"help", A(help), 1, NULL, "this text"},
};
#define NAPP_OPTS (sizeof app_opts / sizeof app_opts[0])

static void usage(FILE *out) {
    fprintf(out, "usage: ems-sim-gtk [options]\n\noptions:\n");
    for (size_t i = 0; i < NAPP_OPTS; i++) {
        char left[40];
        snprintf(left, sizeof left, "--%s%s%s", app_opts[i].name, app_opts[i].meta ? " " : "",
                 app_opts[i].meta ? app_opts[i].meta : "");
        fprintf(out, "  %-20s %s\n", left, app_opts[i].help);
    }
    fprintf(out, "\nWith --screenshot the exit code tells what the window showed: 0 no problem,\n"
                 "1 screenshot not saved, 2 invalid config, 3 target unreachable, 4 target refused.\n");
}

static int parse_args(int argc, char **argv, app_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq;
        size_t nlen, k;
        if (strcmp(arg, "-h") == 0) arg = "--help";
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "ems-sim-gtk: unexpected argument '%s'\n", arg);
            return -1;
        }
        arg += 2;
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        for (k = 0; k < NAPP_OPTS; k++)
            if (strlen(app_opts[k].name) == nlen && strncmp(app_opts[k].name, arg, nlen) == 0) break;
        if (k == NAPP_OPTS) {
            fprintf(stderr, "ems-sim-gtk: unknown option --%.*s (see --help)\n", (int)nlen, arg);
            return -1;
        }
        if (app_opts[k].is_flag) {
            *(int *)((char *)a + app_opts[k].off) = 1;
        } else if (eq || i + 1 < argc) {
            *(const char **)((char *)a + app_opts[k].off) = eq ? eq + 1 : argv[++i];
        } else {
            fprintf(stderr, "ems-sim-gtk: --%s needs a value (%s)\n", app_opts[k].name, app_opts[k].meta);
            return -1;
        }
    }
    return 0;
}

/* ---- the feed from the simulation thread --------------------------------- */

/* Confirmed readings on their way from the simulation thread to the main loop. */
typedef struct {
    pthread_mutex_t lock;
    struct {
        size_t dev;
        int64_t micro;
    } q[FEED_CAP];
    size_t head, n; /* a ring: when full the oldest is overwritten (the plot shows the newest) */
} app_feed;

static void on_sim_event(const ems_sim_event *ev, void *ctx) {
    app_feed *f = ctx;
    size_t at;
    if (ev->kind != EMS_SIM_EV_READING) return; /* states are polled from the stats */
    pthread_mutex_lock(&f->lock);
    at = (f->head + f->n) % FEED_CAP;
    f->q[at].dev = ev->device;
    f->q[at].micro = ev->micro;
    if (f->n < FEED_CAP) f->n++;
    else f->head = (f->head + 1) % FEED_CAP;
    pthread_mutex_unlock(&f->lock);
}

/* ---- the window ---------------------------------------------------------- */

typedef enum { PROBLEM_NONE, PROBLEM_CONFIG, PROBLEM_UNREACHABLE, PROBLEM_REFUSED } app_problem;

typedef struct {
    GtkWidget *id, *name, *scale, *state, *readings, *start, *pause, *stop, *remove;
    double max_kwh; /* kept from the file; not shown */
} dev_row;

typedef struct {
    GtkApplication *gapp;
    app_args args;
    int exit_code;
    long after_ms; /* --after-ms, or 0 for the default */
    char *path;    /* the open config file, or NULL */
    ems_sim_config cfg;
    ems_sim *sim;
    int joined; /* the finished simulation's thread was waited for */
    app_feed feed;
    sim_plot *plot;
    app_problem problem;
    char banner_text[640];
    guint poll_id, autostart_id, shot_id;

    GtkWidget *window, *banner, *banner_label;
    GtkWidget *interval, *kind, *url, *queue, *queue_label, *token, *token_label;
    GtkWidget *dev_grid, *add_dev;
    GPtrArray *rows; /* dev_row * */
    GtkWidget *start_date, *speed, *btn_start, *btn_pause, *btn_stop;
    GtkWidget *link, *run, *clock, *counts, *target, *last_error;
    GtkWidget *area;
} app;

static const char *css = ".banner { padding: 8px 12px; border-radius: 4px; }"
                         ".banner-error { background: #c01c28; color: white; }"
                         ".banner-warn { background: #e5a50a; color: black; }"
                         ".link { font-weight: bold; font-size: 1.15em; padding: 2px 10px; border-radius: 10px; }"
                         ".link-connecting { background: #deddda; color: #241f31; }"
                         ".link-up { background: #2ec27e; color: white; }"
                         ".link-retrying { background: #e5a50a; color: black; }"
                         ".link-down { background: #c01c28; color: white; }"
                         ".section { font-weight: bold; }"
                         ".dim { color: #5e5c64; }"
                         "entry.narrow { min-width: 60px; }";

static const char *const link_classes[] = {
    [EMS_SIM_LINK_CONNECTING] = "link-connecting",
    [EMS_SIM_LINK_UP] = "link-up",
    [EMS_SIM_LINK_RETRYING] = "link-retrying",
    [EMS_SIM_LINK_DOWN] = "link-down",
};

static const char *const link_texts[] = {
    [EMS_SIM_LINK_CONNECTING] = "connecting",
    [EMS_SIM_LINK_UP] = "connected",
    [EMS_SIM_LINK_RETRYING] = "unreachable, retrying",
    [EMS_SIM_LINK_DOWN] = "down",
};

static int sim_active(app *a) { return a->sim && !ems_sim_done(a->sim); }

/* Shows a problem in the banner (and on stderr, once per distinct message); PROBLEM_NONE hides it. */
static void show_problem(app *a, app_problem p, const char *text) {
    static const char *const classes[] = {
        [PROBLEM_CONFIG] = "banner-error", [PROBLEM_UNREACHABLE] = "banner-warn", [PROBLEM_REFUSED] = "banner-error"};
    a->problem = p;
    if (p == PROBLEM_NONE) {
        gtk_widget_set_visible(a->banner, FALSE);
        a->banner_text[0] = '\0';
        return;
    }
    if (strcmp(a->banner_text, text) != 0) {
        snprintf(a->banner_text, sizeof a->banner_text, "%s", text);
        fprintf(stderr, "ems-sim-gtk: %s\n", text);
    }
    gtk_widget_remove_css_class(a->banner, "banner-error");
    gtk_widget_remove_css_class(a->banner, "banner-warn");
    gtk_widget_add_css_class(a->banner, classes[p]);
    gtk_label_set_text(GTK_LABEL(a->banner_label), text);
    gtk_widget_set_visible(a->banner, TRUE);
}

static void show_config_error(app *a, const char *err) {
    char *text = g_strdup_printf("invalid config: %s", err);
    show_problem(a, PROBLEM_CONFIG, text);
    g_free(text);
}

static void set_title(app *a) {
    char title[512];
    const char *base = a->path ? strrchr(a->path, '/') : NULL;
    snprintf(title, sizeof title, "EMS meter simulator — %s", a->path ? (base ? base + 1 : a->path) : "new config");
    gtk_window_set_title(GTK_WINDOW(a->window), title);
}

/* ---- the devices table ---------------------------------------------------- */

static void on_device_control(GtkButton *b, gpointer data);
static void on_remove_device(GtkButton *b, gpointer data);

static GtkWidget *cell_label(const char *text, int dim) {
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    if (dim) gtk_widget_add_css_class(l, "dim");
    return l;
}

static GtkWidget *row_button(app *a, const char *label, const char *key, int value, GCallback cb) {
    GtkWidget *b = gtk_button_new_with_label(label);
    g_object_set_data(G_OBJECT(b), key, GINT_TO_POINTER(value));
    g_signal_connect(b, "clicked", cb, a);
    return b;
}

/* Appends a row for a device (editable id, name, scale; state, count and controls). */
static void add_row(app *a, const char *id, const char *name, double scale, double max_kwh) {
    dev_row *r = g_new0(dev_row, 1);
    int y = (int)a->rows->len + 1;
    char buf[32];
    r->max_kwh = max_kwh;
    r->id = gtk_entry_new();
    gtk_editable_set_text(GTK_EDITABLE(r->id), id ? id : "");
    gtk_editable_set_width_chars(GTK_EDITABLE(r->id), 36);
    gtk_entry_set_placeholder_text(GTK_ENTRY(r->id), "device UUID");
    r->name = gtk_entry_new();
    gtk_editable_set_text(GTK_EDITABLE(r->name), name ? name : "");
    gtk_editable_set_width_chars(GTK_EDITABLE(r->name), 16);
    gtk_widget_set_hexpand(r->name, TRUE);
    r->scale = gtk_entry_new();
    snprintf(buf, sizeof buf, "%g", scale);
    gtk_editable_set_text(GTK_EDITABLE(r->scale), buf);
    gtk_editable_set_width_chars(GTK_EDITABLE(r->scale), 5);
    gtk_editable_set_max_width_chars(GTK_EDITABLE(r->scale), 6);
    gtk_widget_add_css_class(r->scale, "narrow");
    r->state = cell_label("idle", 1);
    r->readings = cell_label("0", 0);
    gtk_label_set_xalign(GTK_LABEL(r->readings), 1);
    gtk_label_set_width_chars(GTK_LABEL(r->readings), 7);
    r->start = row_button(a, "Start", "state", EMS_SIM_DEVICE_RUNNING, G_CALLBACK(on_device_control));
    r->pause = row_button(a, "Pause", "state", EMS_SIM_DEVICE_PAUSED, G_CALLBACK(on_device_control));
    r->stop = row_button(a, "Stop", "state", EMS_SIM_DEVICE_STOPPED, G_CALLBACK(on_device_control));
    r->remove = row_button(a, "Remove", "state", 0, G_CALLBACK(on_remove_device));
    g_object_set_data(G_OBJECT(r->start), "row", r);
    g_object_set_data(G_OBJECT(r->pause), "row", r);
    g_object_set_data(G_OBJECT(r->stop), "row", r);
    g_object_set_data(G_OBJECT(r->remove), "row", r);
    GtkWidget *cells[] = {r->id, r->name, r->scale, r->state, r->readings, r->start, r->pause, r->stop, r->remove};
    for (int x = 0; x < (int)(sizeof cells / sizeof cells[0]); x++)
        gtk_grid_attach(GTK_GRID(a->dev_grid), cells[x], x, y, 1, 1);
    g_ptr_array_add(a->rows, r);
}

static void clear_rows(app *a) {
    while (a->rows->len) {
        gtk_grid_remove_row(GTK_GRID(a->dev_grid), (int)a->rows->len);
        g_ptr_array_remove_index(a->rows, a->rows->len - 1);
    }
}

static void on_remove_device(GtkButton *b, gpointer data) {
    app *a = data;
    dev_row *r = g_object_get_data(G_OBJECT(b), "row");
    for (guint i = 0; i < a->rows->len; i++) {
        if (g_ptr_array_index(a->rows, i) != r) continue;
        gtk_grid_remove_row(GTK_GRID(a->dev_grid), (int)i + 1);
        g_ptr_array_remove_index(a->rows, i); /* frees r */
        return;
    }
}

static void on_add_device(GtkButton *b, gpointer data) {
    app *a = data;
    (void)b;
    add_row(a, NULL, NULL, 1, 0);
}

/* ---- config ⇄ form ------------------------------------------------------- */

static void set_entry(GtkWidget *e, const char *text) { gtk_editable_set_text(GTK_EDITABLE(e), text ? text : ""); }

static void update_target_fields(app *a) {
    int http = gtk_drop_down_get_selected(GTK_DROP_DOWN(a->kind)) == 1;
    gtk_widget_set_visible(a->queue, !http);
    gtk_widget_set_visible(a->queue_label, !http);
    gtk_widget_set_visible(a->token, http);
    gtk_widget_set_visible(a->token_label, http);
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->url),
                                   http ? "http://127.0.0.1:8080" : "amqp://guest:guest@127.0.0.1:5672");
}

static void on_kind_changed(GObject *o, GParamSpec *ps, gpointer data) {
    (void)o;
    (void)ps;
    update_target_fields(data);
}

/* Shows a->cfg in the form. */
static void config_to_form(app *a) {
    const ems_sim_config *c = &a->cfg;
    clear_rows(a);
    for (size_t i = 0; i < c->ndevices; i++)
        add_row(a, c->devices[i].id, c->devices[i].name, c->devices[i].scale, c->devices[i].max_kwh);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->interval), c->interval_s);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(a->kind), c->target.kind == EMS_SIM_TARGET_HTTP ? 1 : 0);
    set_entry(a->url, c->target.url);
    set_entry(a->queue, c->target.queue);
    set_entry(a->token, c->target.token);
    update_target_fields(a);
}

/* An entry's text, or NULL when it is empty. */
static const char *entry_or_null(GtkWidget *e) {
    const char *t = gtk_editable_get_text(GTK_EDITABLE(e));
    return t && t[0] ? t : NULL;
}

/* Builds a validated config from a->cfg and the form into *out (initialised here); err says what is wrong. */
static ems_rc form_to_config(app *a, ems_sim_config *out, char *err, size_t errlen) {
    ems_sim_config c;
    int http = gtk_drop_down_get_selected(GTK_DROP_DOWN(a->kind)) == 1, ok = 1;
    ems_rc rc;
    if (ems_sim_config_copy(&a->cfg, &c) != EMS_OK) {
        snprintf(err, errlen, "out of memory");
        return EMS_NOMEM;
    }
    while (c.ndevices) ems_sim_config_remove_device(&c, c.ndevices - 1);
    for (guint i = 0; i < a->rows->len; i++) {
        dev_row *r = g_ptr_array_index(a->rows, i);
        const char *scale = gtk_editable_get_text(GTK_EDITABLE(r->scale));
        char inner[256], *end;
        double v;
        errno = 0;
        v = strtod(scale, &end);
        if (end == scale || *end || errno || !isfinite(v)) {
            snprintf(err, errlen, "devices[%u].scale: expected a number, got '%s'", i, scale);
            rc = EMS_BAD_REQUEST;
            goto fail;
        }
        if ((rc = ems_sim_config_add_device(&c, gtk_editable_get_text(GTK_EDITABLE(r->id)), inner, sizeof inner)) !=
            EMS_OK) {
            snprintf(err, errlen, "devices[%u]: %s", i, inner);
            goto fail;
        }
        c.devices[c.ndevices - 1].scale = v;
        c.devices[c.ndevices - 1].max_kwh = r->max_kwh;
        ok &= ems_sim_config_set_string(&c.devices[c.ndevices - 1].name, entry_or_null(r->name)) == EMS_OK;
    }
    c.interval_s = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(a->interval));
    if ((c.target.kind == EMS_SIM_TARGET_HTTP) != http || c.target.from_env) {
        c.target.kind = http ? EMS_SIM_TARGET_HTTP : EMS_SIM_TARGET_AMQP;
        c.target.from_env = 0;
    }
    ok &= ems_sim_config_set_string(&c.target.url, entry_or_null(a->url)) == EMS_OK;
    ok &= ems_sim_config_set_string(&c.target.queue, http ? NULL : entry_or_null(a->queue)) == EMS_OK;
    ok &= ems_sim_config_set_string(&c.target.token, http ? entry_or_null(a->token) : NULL) == EMS_OK;
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        rc = EMS_NOMEM;
        goto fail;
    }
    if ((rc = ems_sim_config_validate(&c, err, errlen)) != EMS_OK) goto fail;
    *out = c;
    return EMS_OK;
fail:
    ems_sim_config_clear(&c);
    return rc;
}

/* Frees the simulation (aborting it if it still runs) and empties the feed. */
static void drop_sim(app *a) {
    ems_sim_free(a->sim);
    a->sim = NULL;
    a->joined = 0;
    pthread_mutex_lock(&a->feed.lock);
    a->feed.head = a->feed.n = 0;
    pthread_mutex_unlock(&a->feed.lock);
}

/* Loads path into a->cfg and the form; on error the banner says why and the form is left as it was. */
static int open_config(app *a, const char *path) {
    char err[1024];
    ems_sim_config c;
    ems_sim_config_init(&c);
    if (ems_sim_config_load_file(&c, path, err, sizeof err) != EMS_OK) {
        ems_sim_config_clear(&c);
        show_config_error(a, err);
        return -1;
    }
    /* Another file means other devices: a run of the old ones ends here. */
    drop_sim(a);
    sim_plot_free(a->plot);
    a->plot = NULL;
    gtk_widget_queue_draw(a->area);
    ems_sim_config_clear(&a->cfg);
    a->cfg = c;
    g_free(a->path);
    a->path = g_canonicalize_filename(path, NULL); /* absolute: the title and Save as use its base name */
    config_to_form(a);
    set_title(a);
    show_problem(a, PROBLEM_NONE, NULL);
    return 0;
}

static void save_to(app *a, const char *path) {
    char err[1024];
    ems_sim_config c;
    if (form_to_config(a, &c, err, sizeof err) != EMS_OK) {
        show_config_error(a, err);
        return;
    }
    if (ems_sim_config_save(&c, path, err, sizeof err) != EMS_OK) {
        ems_sim_config_clear(&c);
        show_config_error(a, err);
        return;
    }
    ems_sim_config_clear(&a->cfg);
    a->cfg = c;
    if (path != a->path) {
        g_free(a->path);
        a->path = g_canonicalize_filename(path, NULL);
    }
    set_title(a);
    show_problem(a, PROBLEM_NONE, NULL);
}

static void on_chooser_response(GtkNativeDialog *d, int response, gpointer data) {
    app *a = data;
    int saving = gtk_file_chooser_get_action(GTK_FILE_CHOOSER(d)) == GTK_FILE_CHOOSER_ACTION_SAVE;
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = f ? g_file_get_path(f) : NULL;
        if (path && saving) save_to(a, path);
        else if (path) open_config(a, path);
        g_free(path);
        if (f) g_object_unref(f);
    }
    g_object_unref(d);
}

static void choose_file(app *a, GtkFileChooserAction action) {
    int saving = action == GTK_FILE_CHOOSER_ACTION_SAVE;
    GtkFileChooserNative *d = gtk_file_chooser_native_new(saving ? "Save config" : "Open config", GTK_WINDOW(a->window),
                                                          action, saving ? "_Save" : "_Open", "_Cancel");
    GtkFileFilter *json = gtk_file_filter_new();
    gtk_file_filter_set_name(json, "JSON config");
    gtk_file_filter_add_pattern(json, "*.json");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), json);
    g_object_unref(json);
    if (saving)
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(d), a->path ? strrchr(a->path, '/') + 1 : "sim.json");
    g_signal_connect(d, "response", G_CALLBACK(on_chooser_response), a);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

static void on_open(GtkButton *b, gpointer data) {
    (void)b;
    choose_file(data, GTK_FILE_CHOOSER_ACTION_OPEN);
}

static void on_save(GtkButton *b, gpointer data) {
    app *a = data;
    (void)b;
    if (a->path) save_to(a, a->path);
    else choose_file(a, GTK_FILE_CHOOSER_ACTION_SAVE);
}

static void on_save_as(GtkButton *b, gpointer data) {
    (void)b;
    choose_file(data, GTK_FILE_CHOOSER_ACTION_SAVE);
}

/* ---- running ------------------------------------------------------------- */

static void start_sim(app *a) {
    char err[1024], inner[512];
    ems_sim_config c;
    ems_sim_opts o;
    const char *date = gtk_editable_get_text(GTK_EDITABLE(a->start_date));
    ems_rc rc;
    if (form_to_config(a, &c, err, sizeof err) != EMS_OK) {
        show_config_error(a, err);
        return;
    }
    ems_sim_opts_init(&o, EMS_SIM_LIVE);
    o.speed = gtk_spin_button_get_value(GTK_SPIN_BUTTON(a->speed));
    if (date[0] && ems_sim_parse_time(&c, date, &o.start_ms, NULL, inner, sizeof inner) != EMS_OK) {
        snprintf(err, sizeof err, "replay start: %s", inner);
        show_config_error(a, err);
        goto cleanup;
    }
    /* The environment (EMS_INGEST_TOKEN) applies to the run only, so a save never writes it. */
    if (ems_sim_config_apply_env(&c) != EMS_OK) {
        show_config_error(a, "out of memory");
        goto cleanup;
    }
    drop_sim(a);
    if (ems_sim_new(&c, &o, &a->sim, err, sizeof err) != EMS_OK) {
        show_config_error(a, err);
        goto cleanup;
    }
    ems_sim_set_observer(a->sim, on_sim_event, &a->feed);
    sim_plot_free(a->plot);
    a->plot = sim_plot_new(c.ndevices);
    for (size_t i = 0; a->plot && i < c.ndevices; i++)
        sim_plot_set_label(a->plot, i, c.devices[i].name ? c.devices[i].name : c.devices[i].id);
    if ((rc = ems_sim_start(a->sim)) != EMS_OK) {
        snprintf(err, sizeof err, "cannot start the simulation: %s", ems_rc_message(rc));
        show_problem(a, PROBLEM_REFUSED, err);
        drop_sim(a);
        goto cleanup;
    }
    show_problem(a, PROBLEM_NONE, NULL);
    ems_log(EMS_LOG_INFO, "sim.start", "devices=%zu speed=%g", c.ndevices, o.speed);
cleanup:
    ems_sim_config_clear(&c);
}

static void on_start_all(GtkButton *b, gpointer data) {
    app *a = data;
    (void)b;
    if (!sim_active(a)) {
        start_sim(a);
        return;
    }
    ems_sim_resume(a->sim);
    ems_sim_set_device_state(a->sim, EMS_SIM_ALL_DEVICES, EMS_SIM_DEVICE_RUNNING);
}

static void on_pause_all(GtkButton *b, gpointer data) {
    app *a = data;
    ems_sim_stats st;
    (void)b;
    if (!sim_active(a)) return;
    ems_sim_get_stats(a->sim, &st);
    if (st.run == EMS_SIM_RUN_PAUSED) ems_sim_resume(a->sim);
    else ems_sim_pause(a->sim);
}

static void on_stop_all(GtkButton *b, gpointer data) {
    app *a = data;
    (void)b;
    if (sim_active(a)) ems_sim_stop(a->sim);
}

static void on_device_control(GtkButton *b, gpointer data) {
    app *a = data;
    dev_row *r = g_object_get_data(G_OBJECT(b), "row");
    ems_sim_device_state st = (ems_sim_device_state)GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "state"));
    if (!sim_active(a)) return;
    for (guint i = 0; i < a->rows->len; i++)
        if (g_ptr_array_index(a->rows, i) == r) ems_sim_set_device_state(a->sim, i, st);
}

static void on_speed_changed(GtkSpinButton *sb, gpointer data) {
    app *a = data;
    if (sim_active(a)) ems_sim_set_speed(a->sim, gtk_spin_button_get_value(sb));
}

/* Enter in the date field while running jumps the clock there. */
static void on_date_activate(GtkEntry *e, gpointer data) {
    app *a = data;
    char inner[512], err[640];
    int64_t ms;
    const char *text = gtk_editable_get_text(GTK_EDITABLE(e));
    if (!sim_active(a) || !text[0]) return;
    if (ems_sim_parse_time(&a->cfg, text, &ms, NULL, inner, sizeof inner) != EMS_OK) {
        snprintf(err, sizeof err, "replay start: %s", inner);
        show_config_error(a, err);
        return;
    }
    ems_sim_set_start(a->sim, ms);
}

/* The problem the stats show, if any. */
static app_problem stats_problem(const ems_sim_stats *st) {
    if (st->link == EMS_SIM_LINK_RETRYING) return PROBLEM_UNREACHABLE;
    if (st->run == EMS_SIM_RUN_FAILED || st->link == EMS_SIM_LINK_DOWN)
        return strstr(st->last_error, "unreachable") || strstr(st->last_error, "gave up") ? PROBLEM_UNREACHABLE
                                                                                          : PROBLEM_REFUSED;
    return PROBLEM_NONE;
}

static void refresh_controls(app *a, const ems_sim_stats *st) {
    int active = sim_active(a);
    gtk_widget_set_sensitive(a->btn_pause, active);
    gtk_widget_set_sensitive(a->btn_stop, active);
    gtk_button_set_label(GTK_BUTTON(a->btn_pause), st && st->run == EMS_SIM_RUN_PAUSED ? "Resume" : "Pause");
    gtk_button_set_label(GTK_BUTTON(a->btn_start), active ? "Start all" : "Start");
    /* The table maps rows to the running simulation's devices: no edits meanwhile. */
    gtk_widget_set_sensitive(a->add_dev, !active);
    gtk_widget_set_sensitive(a->interval, !active);
    gtk_widget_set_sensitive(a->kind, !active);
    gtk_widget_set_sensitive(a->url, !active);
    gtk_widget_set_sensitive(a->queue, !active);
    gtk_widget_set_sensitive(a->token, !active);
    for (guint i = 0; i < a->rows->len; i++) {
        dev_row *r = g_ptr_array_index(a->rows, i);
        gtk_editable_set_editable(GTK_EDITABLE(r->id), !active);
        gtk_editable_set_editable(GTK_EDITABLE(r->name), !active);
        gtk_editable_set_editable(GTK_EDITABLE(r->scale), !active);
        gtk_widget_set_sensitive(r->remove, !active);
        gtk_widget_set_sensitive(r->start, active);
        gtk_widget_set_sensitive(r->pause, active);
        gtk_widget_set_sensitive(r->stop, active);
    }
}

/* The main loop's view of the simulation: drains the feed, polls the stats, updates the widgets. */
static gboolean on_poll(gpointer data) {
    app *a = data;
    ems_sim_stats st;
    char buf[768], when[40] = "-";
    size_t ndev;
    if (!a->sim) {
        refresh_controls(a, NULL);
        return G_SOURCE_CONTINUE;
    }
    pthread_mutex_lock(&a->feed.lock);
    for (size_t k = 0; k < a->feed.n; k++) {
        size_t at = (a->feed.head + k) % FEED_CAP;
        sim_plot_push(a->plot, a->feed.q[at].dev, a->feed.q[at].micro);
    }
    a->feed.head = a->feed.n = 0;
    pthread_mutex_unlock(&a->feed.lock);
    gtk_widget_queue_draw(a->area);

    if (ems_sim_done(a->sim) && !a->joined) {
        ems_sim_join(a->sim);
        a->joined = 1;
    }
    ems_sim_get_stats(a->sim, &st);
    for (size_t i = 0; i < sizeof link_classes / sizeof link_classes[0]; i++)
        gtk_widget_remove_css_class(a->link, link_classes[i]);
    gtk_widget_add_css_class(a->link, link_classes[st.link]);
    gtk_label_set_text(GTK_LABEL(a->link), link_texts[st.link]);
    snprintf(buf, sizeof buf, "Run: %s", ems_sim_run_state_name(st.run));
    gtk_label_set_text(GTK_LABEL(a->run), buf);
    if (st.sim_time_ms) ems_sim_format_time(st.sim_time_ms, when, sizeof when);
    snprintf(buf, sizeof buf, "Simulation clock: %s", when);
    gtk_label_set_text(GTK_LABEL(a->clock), buf);
    {
        char kwh[32];
        ems_sim_format_kwh(st.total_micro, kwh, sizeof kwh);
        snprintf(buf, sizeof buf, "Sent %llu · confirmed %llu · retries %llu · %.1f readings/s · %s kWh",
                 (unsigned long long)st.sent, (unsigned long long)st.confirmed, (unsigned long long)st.retries, st.rate,
                 kwh);
    }
    gtk_label_set_text(GTK_LABEL(a->counts), buf);
    snprintf(buf, sizeof buf, "Target: %s", st.target);
    gtk_label_set_text(GTK_LABEL(a->target), buf);
    snprintf(buf, sizeof buf, "Last error: %s", st.last_error[0] ? st.last_error : "none");
    gtk_label_set_text(GTK_LABEL(a->last_error), buf);

    ndev = ems_sim_device_count(a->sim);
    for (guint i = 0; i < a->rows->len && i < ndev; i++) {
        dev_row *r = g_ptr_array_index(a->rows, i);
        ems_sim_device_info info;
        char n[32];
        if (ems_sim_get_device(a->sim, i, &info) != EMS_OK) continue;
        gtk_label_set_text(GTK_LABEL(r->state),
                           ems_sim_done(a->sim) ? "finished" : ems_sim_device_state_name(info.state));
        snprintf(n, sizeof n, "%llu", (unsigned long long)info.readings);
        gtk_label_set_text(GTK_LABEL(r->readings), n);
    }

    {
        app_problem p = stats_problem(&st);
        if (p != PROBLEM_NONE) {
            snprintf(buf, sizeof buf, "%s: %s",
                     p == PROBLEM_UNREACHABLE ? "target unreachable" : "target refused the readings",
                     st.last_error[0] ? st.last_error : ems_sim_link_state_name(st.link));
            show_problem(a, p, buf);
        } else if (a->problem == PROBLEM_UNREACHABLE || a->problem == PROBLEM_REFUSED) {
            show_problem(a, PROBLEM_NONE, NULL); /* connected again */
        }
    }
    refresh_controls(a, &st);
    return G_SOURCE_CONTINUE;
}

static void on_draw(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data) {
    app *a = data;
    (void)area;
    sim_plot_draw(a->plot, cr, w, h);
}

/* ---- screenshot ---------------------------------------------------------- */

static int save_screenshot(GtkWidget *w, const char *file) {
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w), ok = 0;
    GdkPaintable *paintable = gtk_widget_paintable_new(w);
    GtkSnapshot *snap = gtk_snapshot_new();
    GskRenderNode *node;
    GdkTexture *tex = NULL;
    gdk_paintable_snapshot(paintable, GDK_SNAPSHOT(snap), width, height);
    node = gtk_snapshot_free_to_node(snap);
    if (node && width > 0 && height > 0) {
        graphene_rect_t vp = GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height);
        tex = gsk_renderer_render_texture(gtk_native_get_renderer(GTK_NATIVE(w)), node, &vp);
        ok = tex && gdk_texture_save_to_png(tex, file);
    }
    if (tex) g_object_unref(tex);
    if (node) gsk_render_node_unref(node);
    g_object_unref(paintable);
    return ok ? 0 : -1;
}

/* Right after a frame was painted the layout is valid: the moment to render the window again. */
static void on_after_paint(GdkFrameClock *clock, gpointer data) {
    static const int codes[] = {[PROBLEM_NONE] = 0,
                                [PROBLEM_CONFIG] = EXIT_CONFIG,
                                [PROBLEM_UNREACHABLE] = EXIT_UNREACHABLE,
                                [PROBLEM_REFUSED] = EXIT_REFUSED};
    app *a = data;
    g_signal_handlers_disconnect_by_func(clock, G_CALLBACK(on_after_paint), a);
    a->exit_code = codes[a->problem];
    if (save_screenshot(a->window, a->args.screenshot) != 0) {
        fprintf(stderr, "ems-sim-gtk: could not save the screenshot to %s\n", a->args.screenshot);
        a->exit_code = EXIT_SHOT_FAILED;
    }
    gtk_window_destroy(GTK_WINDOW(a->window));
}

static gboolean on_screenshot(gpointer data) {
    app *a = data;
    GdkFrameClock *clock = gtk_widget_get_frame_clock(a->window);
    a->shot_id = 0;
    if (a->poll_id) g_source_remove(a->poll_id); /* the window shows the latest state, and keeps it */
    a->poll_id = 0;
    on_poll(a);
    g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), a);
    gtk_widget_queue_draw(a->window);
    return G_SOURCE_REMOVE;
}

static gboolean on_autostart(gpointer data) {
    app *a = data;
    a->autostart_id = 0;
    if (a->problem != PROBLEM_CONFIG) start_sim(a);
    return G_SOURCE_REMOVE;
}

/* ---- building the window ------------------------------------------------- */

static GtkWidget *section(const char *title, GtkWidget *child) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6), *l = gtk_label_new(title);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_add_css_class(l, "section");
    gtk_box_append(GTK_BOX(box), l);
    gtk_box_append(GTK_BOX(box), child);
    return box;
}

static GtkWidget *form_label(const char *text) {
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 1);
    return l;
}

static GtkWidget *status_label(void) {
    GtkWidget *l = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    return l;
}

static GtkWidget *build_settings(app *a) {
    static const char *const kinds[] = {"RabbitMQ (AMQP)", "HTTP (ems serve)", NULL};
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 6);
    gtk_grid_set_column_spacing(GTK_GRID(g), 8);
    a->interval = gtk_spin_button_new_with_range(1, 86400, 60);
    a->kind = gtk_drop_down_new_from_strings(kinds);
    g_signal_connect(a->kind, "notify::selected", G_CALLBACK(on_kind_changed), a);
    a->url = gtk_entry_new();
    gtk_widget_set_hexpand(a->url, TRUE);
    a->queue = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->queue), EMS_SIM_DEFAULT_QUEUE);
    a->queue_label = form_label("Queue");
    a->token = gtk_entry_new();
    gtk_entry_set_visibility(GTK_ENTRY(a->token), FALSE);
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->token), "ingest token (or EMS_INGEST_TOKEN)");
    a->token_label = form_label("Token");
    gtk_grid_attach(GTK_GRID(g), form_label("Interval (s)"), 0, 0, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->interval, 1, 0, 1, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("Target"), 0, 1, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->kind, 1, 1, 1, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("URL"), 0, 2, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->url, 1, 2, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->queue_label, 0, 3, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->queue, 1, 3, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->token_label, 0, 4, 1, 1);
    gtk_grid_attach(GTK_GRID(g), a->token, 1, 4, 1, 1);
    return g;
}

static GtkWidget *build_devices(app *a) {
    static const char *const heads[] = {"Device id", "Name", "Scale", "State", "Readings"};
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6), *scroll = gtk_scrolled_window_new();
    a->dev_grid = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(a->dev_grid), 4);
    gtk_grid_set_column_spacing(GTK_GRID(a->dev_grid), 6);
    for (int x = 0; x < (int)(sizeof heads / sizeof heads[0]); x++)
        gtk_grid_attach(GTK_GRID(a->dev_grid), cell_label(heads[x], 1), x, 0, 1, 1);
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), a->dev_grid);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_AUTOMATIC, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_size_request(scroll, -1, 150);
    a->add_dev = gtk_button_new_with_label("Add device");
    gtk_widget_set_halign(a->add_dev, GTK_ALIGN_START);
    g_signal_connect(a->add_dev, "clicked", G_CALLBACK(on_add_device), a);
    gtk_box_append(GTK_BOX(box), scroll);
    gtk_box_append(GTK_BOX(box), a->add_dev);
    return box;
}

static GtkWidget *build_run(app *a) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6), *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    a->start_date = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(a->start_date), "now (or YYYY-MM-DD)");
    gtk_editable_set_width_chars(GTK_EDITABLE(a->start_date), 20);
    g_signal_connect(a->start_date, "activate", G_CALLBACK(on_date_activate), a);
    a->speed = gtk_spin_button_new_with_range(1, 1e6, 1);
    gtk_spin_button_set_digits(GTK_SPIN_BUTTON(a->speed), 0);
    g_signal_connect(a->speed, "value-changed", G_CALLBACK(on_speed_changed), a);
    gtk_box_append(GTK_BOX(row), gtk_label_new("Replay from"));
    gtk_box_append(GTK_BOX(row), a->start_date);
    gtk_box_append(GTK_BOX(row), gtk_label_new("Speed ×"));
    gtk_box_append(GTK_BOX(row), a->speed);
    a->btn_start = gtk_button_new_with_label("Start");
    gtk_widget_add_css_class(a->btn_start, "suggested-action");
    a->btn_pause = gtk_button_new_with_label("Pause");
    a->btn_stop = gtk_button_new_with_label("Stop");
    g_signal_connect(a->btn_start, "clicked", G_CALLBACK(on_start_all), a);
    g_signal_connect(a->btn_pause, "clicked", G_CALLBACK(on_pause_all), a);
    g_signal_connect(a->btn_stop, "clicked", G_CALLBACK(on_stop_all), a);
    gtk_box_append(GTK_BOX(buttons), a->btn_start);
    gtk_box_append(GTK_BOX(buttons), a->btn_pause);
    gtk_box_append(GTK_BOX(buttons), a->btn_stop);
    gtk_box_append(GTK_BOX(box), row);
    gtk_box_append(GTK_BOX(box), buttons);
    return box;
}

static GtkWidget *build_status(app *a) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4), *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 10);
    a->link = gtk_label_new("not started");
    gtk_widget_add_css_class(a->link, "link");
    gtk_widget_add_css_class(a->link, link_classes[EMS_SIM_LINK_CONNECTING]);
    a->run = gtk_label_new("Run: not started");
    gtk_box_append(GTK_BOX(row), gtk_label_new("Connection"));
    gtk_box_append(GTK_BOX(row), a->link);
    gtk_box_append(GTK_BOX(row), a->run);
    a->clock = status_label();
    a->counts = status_label();
    a->target = status_label();
    a->last_error = status_label();
    gtk_box_append(GTK_BOX(box), row);
    gtk_box_append(GTK_BOX(box), a->clock);
    gtk_box_append(GTK_BOX(box), a->counts);
    gtk_box_append(GTK_BOX(box), a->target);
    gtk_box_append(GTK_BOX(box), a->last_error);
    gtk_label_set_text(GTK_LABEL(a->clock), "Simulation clock: -");
    gtk_label_set_text(GTK_LABEL(a->counts), "Nothing sent yet: press Start");
    return box;
}

static void on_banner_close(GtkButton *b, gpointer data) {
    app *a = data;
    (void)b;
    gtk_widget_set_visible(a->banner, FALSE);
}

/* The widgets go with the window: the poll must not outlive them. */
static void on_window_destroy(GtkWidget *w, gpointer data) {
    app *a = data;
    guint *ids[] = {&a->poll_id, &a->autostart_id, &a->shot_id};
    (void)w;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        if (*ids[i]) g_source_remove(*ids[i]);
        *ids[i] = 0;
    }
}

static void on_activate(GtkApplication *gapp, gpointer data) {
    app *a = data;
    GtkWidget *header = gtk_header_bar_new(), *open = gtk_button_new_with_label("Open…");
    GtkWidget *save = gtk_button_new_with_label("Save"), *save_as = gtk_button_new_with_label("Save as…");
    GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 10), *cols = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 16);
    GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 14), *right = gtk_box_new(GTK_ORIENTATION_VERTICAL, 14);
    GtkWidget *close = gtk_button_new_with_label("Dismiss");
    GtkCssProvider *provider = gtk_css_provider_new();
    char err[512];
    if (a->window) { /* a second activation just raises the window */
        gtk_window_present(GTK_WINDOW(a->window));
        return;
    }
    gtk_css_provider_load_from_data(provider, css, -1);
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(provider),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(provider);

    a->window = gtk_application_window_new(gapp);
    gtk_window_set_default_size(GTK_WINDOW(a->window), 1180, 880);
    g_signal_connect(a->window, "destroy", G_CALLBACK(on_window_destroy), a);
    g_signal_connect(open, "clicked", G_CALLBACK(on_open), a);
    g_signal_connect(save, "clicked", G_CALLBACK(on_save), a);
    g_signal_connect(save_as, "clicked", G_CALLBACK(on_save_as), a);
    gtk_header_bar_pack_start(GTK_HEADER_BAR(header), open);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(header), save_as);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(header), save);
    gtk_window_set_titlebar(GTK_WINDOW(a->window), header);

    a->banner = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_add_css_class(a->banner, "banner");
    a->banner_label = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(a->banner_label), TRUE);
    gtk_label_set_xalign(GTK_LABEL(a->banner_label), 0);
    gtk_widget_set_hexpand(a->banner_label, TRUE);
    g_signal_connect(close, "clicked", G_CALLBACK(on_banner_close), a);
    gtk_box_append(GTK_BOX(a->banner), a->banner_label);
    gtk_box_append(GTK_BOX(a->banner), close);
    gtk_widget_set_visible(a->banner, FALSE);

    /* Settings and the run side by side, then the devices and the plot across the whole width. */
    gtk_box_append(GTK_BOX(left), section("Settings", build_settings(a)));
    gtk_box_append(GTK_BOX(right), section("Run", build_run(a)));
    gtk_box_append(GTK_BOX(right), section("Status", build_status(a)));
    gtk_widget_set_hexpand(left, TRUE);
    gtk_widget_set_hexpand(right, TRUE);
    gtk_box_set_homogeneous(GTK_BOX(cols), TRUE);
    gtk_box_append(GTK_BOX(cols), left);
    gtk_box_append(GTK_BOX(cols), right);
    a->area = gtk_drawing_area_new();
    gtk_widget_set_vexpand(a->area, TRUE);
    gtk_widget_set_size_request(a->area, 420, 220);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a->area), on_draw, a, NULL);
    gtk_widget_set_margin_start(outer, 14);
    gtk_widget_set_margin_end(outer, 14);
    gtk_widget_set_margin_top(outer, 10);
    gtk_widget_set_margin_bottom(outer, 14);
    gtk_box_append(GTK_BOX(outer), a->banner);
    gtk_box_append(GTK_BOX(outer), cols);
    gtk_box_append(GTK_BOX(outer), section("Devices", build_devices(a)));
    gtk_box_append(GTK_BOX(outer), section("Values sent", a->area));
    gtk_window_set_child(GTK_WINDOW(a->window), outer);

    config_to_form(a);
    set_title(a);
    if (a->args.start) gtk_editable_set_text(GTK_EDITABLE(a->start_date), a->args.start);
    if (a->args.speed) {
        char *end;
        double k = strtod(a->args.speed, &end);
        if (end == a->args.speed || *end || !isfinite(k) || k < 1 || k > 1e6) {
            snprintf(err, sizeof err, "--speed: expected a number between 1 and 1000000, got '%s'", a->args.speed);
            show_config_error(a, err);
        } else {
            gtk_spin_button_set_value(GTK_SPIN_BUTTON(a->speed), k);
        }
    }
    if (a->args.config) open_config(a, a->args.config);
    refresh_controls(a, NULL);
    gtk_window_set_focus(GTK_WINDOW(a->window), a->btn_start); /* not the first entry, whose text would be selected */
    gtk_window_present(GTK_WINDOW(a->window));

    a->poll_id = g_timeout_add(POLL_MS, on_poll, a);
    if (a->args.autostart) a->autostart_id = g_timeout_add(300, on_autostart, a);
    if (a->args.screenshot) {
        a->shot_id = g_timeout_add((guint)(a->after_ms ? a->after_ms : 3000), on_screenshot, a);
    }
}

int main(int argc, char **argv) {
    app a;
    char *argv0[] = {argv[0], NULL};
    int status;
    memset(&a, 0, sizeof a);
    ems_sim_config_init(&a.cfg);
    if (parse_args(argc, argv, &a.args) != 0) return EXIT_CONFIG;
    if (a.args.help) {
        usage(stdout);
        return 0;
    }
    if (a.args.after_ms) {
        char *end;
        errno = 0;
        a.after_ms = strtol(a.args.after_ms, &end, 10);
        if (end == a.args.after_ms || *end || errno || a.after_ms <= 0 || a.after_ms > 3600000 || !a.args.screenshot) {
            fprintf(stderr, "ems-sim-gtk: --after-ms needs a number of ms (1..3600000) and --screenshot\n");
            return EXIT_SHOT_FAILED;
        }
    }
    ems_log_set_level(EMS_LOG_WARN);
    ems_log_set_context("app=ems-sim-gtk");
    pthread_mutex_init(&a.feed.lock, NULL);
    a.rows = g_ptr_array_new_with_free_func(g_free);
    a.gapp = gtk_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
    g_signal_connect(a.gapp, "activate", G_CALLBACK(on_activate), &a);
    /* Our own flags are parsed above; GTK sees none of them. */
    status = g_application_run(G_APPLICATION(a.gapp), 1, argv0);
    drop_sim(&a);
    g_object_unref(a.gapp);
    g_ptr_array_unref(a.rows);
    sim_plot_free(a.plot);
    ems_sim_config_clear(&a.cfg);
    g_free(a.path);
    pthread_mutex_destroy(&a.feed.lock);
    return status ? status : a.exit_code;
}
