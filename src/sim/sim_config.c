/*
 * sim_config.c — the simulator's configuration (see sim_config.h).
 *
 * The JSON reader is driven by tables: each object of the file has a static
 * table of its keys with a setter and the offset of the field it fills, so a
 * new key is one line, and unknown keys and wrong types are caught in one
 * place with the path of the key in the message.  Types are checked while
 * reading; ranges and cross-field rules in ems_sim_config_validate, which a
 * window editing the struct calls too.
 */
#include "sim_config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "csv.h"
#include "profile.h"
#include "rng.h"
#include "tz.h"

#define PATH_MAX_LEN 192
#define MAX_DEVICES 1000000
#define MAX_BATCH 10000
#define MAX_WINDOW 1000000
#define MAX_SCALE 1000.0
#define MAX_RATE_KWH 1000.0
#define QUEUE_MAX 251
#define NAME_MAX_LEN 200

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    char path[PATH_MAX_LEN]; /* of the value being read, e.g. "devices[2].scale" */
    char *err;
    size_t errlen;
} reader;

typedef struct field field;
typedef ems_rc (*field_set)(const field *f, json_t *v, void *obj, reader *r);

struct field {
    const char *key;
    field_set set;
    size_t off;      /* into the object the table describes */
    const void *sub; /* nested table (terminated by a NULL key) or enum names */
};

#define AT(obj, f, type) ((type *)(void *)((char *)(obj) + (f)->off))

static ems_rc fail(reader *r, const char *what) {
    snprintf(r->err, r->errlen, "%s: %s", r->path[0] ? r->path : "(top level)", what);
    return EMS_BAD_REQUEST;
}

/* Appends ".key" (or "key" at the top) to the path; returns the old length to restore. */
static size_t path_push_key(reader *r, const char *key) {
    size_t n = strlen(r->path);
    snprintf(r->path + n, sizeof r->path - n, "%s%s", n ? "." : "", key);
    return n;
}

static size_t path_push_index(reader *r, size_t i) {
    size_t n = strlen(r->path);
    snprintf(r->path + n, sizeof r->path - n, "[%zu]", i);
    return n;
}

static void path_pop(reader *r, size_t n) { r->path[n] = '\0'; }

static ems_rc read_object(const field *table, json_t *v, void *obj, reader *r) {
    const char *key;
    json_t *val;
    if (!json_is_object(v)) return fail(r, "expected an object");
    json_object_foreach(v, key, val) {
        const field *f = table;
        size_t mark;
        ems_rc rc;
        while (f->key && strcmp(f->key, key) != 0) f++;
        if (!f->key) {
            char what[128];
            snprintf(what, sizeof what, "unknown key '%.60s'", key);
            return fail(r, what);
        }
        mark = path_push_key(r, key);
        rc = f->set(f, val, obj, r);
        if (rc != EMS_OK) return rc;
        path_pop(r, mark);
    }
    return EMS_OK;
}

static ems_rc set_int(const field *f, json_t *v, void *obj, reader *r) {
    if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
        return fail(r, "expected an integer");
    *AT(obj, f, int) = (int)json_integer_value(v);
    return EMS_OK;
}

static ems_rc set_num(const field *f, json_t *v, void *obj, reader *r) {
    if (!json_is_number(v)) return fail(r, "expected a number");
    *AT(obj, f, double) = json_number_value(v);
    return EMS_OK;
}

static ems_rc set_bool(const field *f, json_t *v, void *obj, reader *r) {
    if (!json_is_boolean(v)) return fail(r, "expected true or false");
    *AT(obj, f, int) = json_is_true(v);
    return EMS_OK;
}

static ems_rc set_str(const field *f, json_t *v, void *obj, reader *r) {
    if (!json_is_string(v)) return fail(r, "expected a string");
    return ems_sim_config_set_string(AT(obj, f, char *), json_string_value(v));
}

static ems_rc set_seed(const field *f, json_t *v, void *obj, reader *r) {
    ems_sim_config *c = obj;
    (void)f;
    if (!json_is_integer(v) || json_integer_value(v) < 0) return fail(r, "expected a non-negative integer");
    c->seed = (uint64_t)json_integer_value(v);
    c->has_seed = 1;
    return EMS_OK;
}

static ems_rc set_uuid(const field *f, json_t *v, void *obj, reader *r) {
    char *dst = AT(obj, f, char);
    if (!json_is_string(v) || !sim_uuid_valid(json_string_value(v)))
        return fail(r, "expected a UUID (8-4-4-4-12 hex digits)");
    for (int i = 0; i <= EMS_SIM_ID_LEN; i++) dst[i] = (char)tolower((unsigned char)json_string_value(v)[i]);
    return EMS_OK;
}

static ems_rc set_curve(const field *f, json_t *v, void *obj, reader *r) {
    double *curve = AT(obj, f, double);
    size_t i;
    json_t *x;
    if (!json_is_array(v) || json_array_size(v) != EMS_SIM_HOURS)
        return fail(r, "expected an array of 24 numbers (kWh per hour, hour 0 first)");
    json_array_foreach(v, i, x) {
        if (!json_is_number(x)) {
            size_t mark = path_push_index(r, i);
            ems_rc rc = fail(r, "expected a number");
            path_pop(r, mark);
            return rc;
        }
        curve[i] = json_number_value(x);
    }
    return EMS_OK;
}

static ems_rc set_enum(const field *f, json_t *v, void *obj, reader *r) {
    const char *const *names = f->sub;
    char what[128];
    if (json_is_string(v)) {
        for (int i = 0; names[i]; i++) {
            if (strcmp(names[i], json_string_value(v)) == 0) {
                *AT(obj, f, int) = i;
                return EMS_OK;
            }
        }
    }
    snprintf(what, sizeof what, "expected one of");
    for (int i = 0; names[i]; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s \"%s\"", i ? "," : "", names[i]);
    return fail(r, what);
}

static ems_rc set_object(const field *f, json_t *v, void *obj, reader *r) { return read_object(f->sub, v, obj, r); }

static const field device_fields[] = {
    {"id", set_uuid, offsetof(ems_sim_device_conf, id), NULL},
    {"name", set_str, offsetof(ems_sim_device_conf, name), NULL},
    {"scale", set_num, offsetof(ems_sim_device_conf, scale), NULL},
    {"max_kwh", set_num, offsetof(ems_sim_device_conf, max_kwh), NULL},
    {NULL, NULL, 0, NULL},
};

static ems_rc set_devices(const field *f, json_t *v, void *obj, reader *r) {
    ems_sim_config *c = obj;
    size_t i;
    json_t *x;
    (void)f;
    if (!json_is_array(v)) return fail(r, "expected an array of devices");
    if (json_array_size(v) > MAX_DEVICES) return fail(r, "too many devices");
    json_array_foreach(v, i, x) {
        size_t mark = path_push_index(r, i);
        ems_sim_device_conf *d;
        ems_rc rc;
        if (!json_is_object(x)) return fail(r, "expected an object {\"id\": \"<uuid>\", ...}");
        if (!json_object_get(x, "id")) return fail(r, "missing key 'id'");
        d = realloc(c->devices, (c->ndevices + 1) * sizeof *d);
        if (!d) return EMS_NOMEM;
        c->devices = d;
        d = &c->devices[c->ndevices++];
        memset(d, 0, sizeof *d);
        d->scale = 1.0;
        if ((rc = read_object(device_fields, x, d, r)) != EMS_OK) return rc;
        path_pop(r, mark);
    }
    return EMS_OK;
}

static ems_rc set_target_url(const field *f, json_t *v, void *obj, reader *r) {
    ems_sim_config *c = obj;
    if (!json_is_string(v)) return fail(r, "expected a URL string");
    c->target.kind = strcmp(f->key, "http") == 0 ? EMS_SIM_TARGET_HTTP : EMS_SIM_TARGET_AMQP;
    return ems_sim_config_set_string(&c->target.url, json_string_value(v));
}

static const field target_fields[] = {
    {"amqp", set_target_url, 0, NULL},
    {"http", set_target_url, 0, NULL},
    {"queue", set_str, offsetof(ems_sim_config, target.queue), NULL},
    {"exchange", set_str, offsetof(ems_sim_config, target.exchange), NULL},
    {"token", set_str, offsetof(ems_sim_config, target.token), NULL},
    {NULL, NULL, 0, NULL},
};

/* One target, and only the keys that belong to its kind. */
static ems_rc set_target(const field *f, json_t *v, void *obj, reader *r) {
    int amqp, http;
    ems_rc rc = read_object(f->sub, v, obj, r);
    if (rc != EMS_OK) return rc;
    amqp = json_object_get(v, "amqp") != NULL;
    http = json_object_get(v, "http") != NULL;
    if (amqp && http) return fail(r, "give either \"amqp\" or \"http\", not both");
    if (!amqp && !http) return fail(r, "needs \"amqp\": \"amqp://...\" or \"http\": \"http://...\"");
    if (http && json_object_get(v, "queue")) return fail(r, "\"queue\" belongs to an amqp target");
    if (http && json_object_get(v, "exchange")) return fail(r, "\"exchange\" belongs to an amqp target");
    if (amqp && json_object_get(v, "token")) return fail(r, "\"token\" belongs to an http target");
    return EMS_OK;
}

static const field profile_fields[] = {
    {"hourly_kwh", set_curve, offsetof(ems_sim_config, hourly_kwh), NULL},
    {"fluctuation", set_num, offsetof(ems_sim_config, fluctuation), NULL},
    {NULL, NULL, 0, NULL},
};

static const char *const format_names[] = {
    [EMS_SIM_FORMAT_SEED] = "seed", [EMS_SIM_FORMAT_ORIGINAL] = "original", NULL};

static const field send_fields[] = {
    {"batch", set_int, offsetof(ems_sim_config, send.batch), NULL},
    {"publish_batch", set_int, offsetof(ems_sim_config, send.publish_batch), NULL},
    {"format", set_enum, offsetof(ems_sim_config, send.format), format_names},
    {"iso", set_bool, offsetof(ems_sim_config, send.iso), NULL},
    {NULL, NULL, 0, NULL},
};

static const field fault_fields[] = {
    {"duplicates", set_num, offsetof(ems_sim_config, faults.duplicates), NULL},
    {"late", set_num, offsetof(ems_sim_config, faults.late), NULL},
    {"late_by", set_int, offsetof(ems_sim_config, faults.late_by), NULL},
    {"shuffle", set_bool, offsetof(ems_sim_config, faults.shuffle), NULL},
    {"shuffle_window", set_int, offsetof(ems_sim_config, faults.shuffle_window), NULL},
    {"malformed", set_num, offsetof(ems_sim_config, faults.malformed), NULL},
    {NULL, NULL, 0, NULL},
};

static const field top_fields[] = {
    {"devices", set_devices, 0, NULL},
    {"interval_s", set_int, offsetof(ems_sim_config, interval_s), NULL},
    {"timezone", set_str, offsetof(ems_sim_config, timezone), NULL},
    {"seed", set_seed, 0, NULL},
    {"profile", set_object, 0, profile_fields},
    {"csv", set_str, offsetof(ems_sim_config, csv), NULL},
    {"target", set_target, 0, target_fields},
    {"send", set_object, 0, send_fields},
    {"faults", set_object, 0, fault_fields},
    {NULL, NULL, 0, NULL},
};

/* ---- life cycle ---------------------------------------------------------- */

void ems_sim_config_init(ems_sim_config *c) {
    memset(c, 0, sizeof *c);
    c->interval_s = EMS_SIM_DEFAULT_INTERVAL_S;
    memcpy(c->hourly_kwh, sim_default_curve, sizeof c->hourly_kwh);
    c->fluctuation = EMS_SIM_DEFAULT_FLUCTUATION;
    c->target.kind = EMS_SIM_TARGET_AMQP;
    c->send.format = EMS_SIM_FORMAT_SEED;
    c->faults.late_by = EMS_SIM_DEFAULT_LATE_BY;
    c->faults.shuffle_window = EMS_SIM_DEFAULT_SHUFFLE_WINDOW;
}

void ems_sim_config_clear(ems_sim_config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->ndevices; i++) free(c->devices[i].name);
    free(c->devices);
    free(c->timezone);
    free(c->csv);
    free(c->base_dir);
    free(c->target.url);
    free(c->target.queue);
    free(c->target.exchange);
    free(c->target.token);
    free(c->target.env_token);
    ems_sim_config_init(c);
}

ems_rc ems_sim_config_set_string(char **slot, const char *value) {
    char *copy = NULL;
    if (value && !(copy = strdup(value))) return EMS_NOMEM;
    free(*slot);
    *slot = copy;
    return EMS_OK;
}

ems_rc ems_sim_config_copy(const ems_sim_config *c, ems_sim_config *out) {
    ems_sim_config n = *c;
    int ok = 1;
    n.devices = NULL;
    n.ndevices = 0;
    n.timezone = n.csv = n.base_dir = NULL;
    n.target.url = n.target.queue = n.target.exchange = n.target.token = n.target.env_token = NULL;
    if (c->ndevices) {
        n.devices = calloc(c->ndevices, sizeof *n.devices);
        if (!n.devices) return EMS_NOMEM;
        for (size_t i = 0; i < c->ndevices; i++) {
            n.devices[i] = c->devices[i];
            n.devices[i].name = NULL;
            n.ndevices++;
            ok &= ems_sim_config_set_string(&n.devices[i].name, c->devices[i].name) == EMS_OK;
        }
    }
    ok &= ems_sim_config_set_string(&n.timezone, c->timezone) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.csv, c->csv) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.base_dir, c->base_dir) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.target.url, c->target.url) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.target.queue, c->target.queue) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.target.exchange, c->target.exchange) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.target.token, c->target.token) == EMS_OK;
    ok &= ems_sim_config_set_string(&n.target.env_token, c->target.env_token) == EMS_OK;
    if (!ok) {
        ems_sim_config_clear(&n);
        return EMS_NOMEM;
    }
    *out = n;
    return EMS_OK;
}

ems_rc ems_sim_config_load_string(ems_sim_config *c, const char *json, const char *base_dir, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    json_error_t jerr;
    ems_sim_config n;
    reader r = {.err = err, .errlen = errlen};
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    ems_sim_config_init(&n);
    if (!root) {
        snprintf(err, errlen, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if ((rc = read_object(top_fields, root, &n, &r)) != EMS_OK) goto cleanup;
    if ((rc = ems_sim_config_set_string(&n.base_dir, base_dir)) != EMS_OK) goto cleanup;
    if ((rc = ems_sim_config_validate(&n, err, errlen)) != EMS_OK) goto cleanup;
    ems_sim_config_clear(c);
    *c = n;
    ems_sim_config_init(&n);
cleanup:
    ems_sim_config_clear(&n);
    json_decref(root);
    return rc;
}

ems_rc ems_sim_config_load_file(ems_sim_config *c, const char *path, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    FILE *f = fopen(path, "rb");
    char *text = NULL, *dir = NULL, *slash, inner[512];
    long size;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EMS_BAD_REQUEST;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot read", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if (size > 64L * 1024 * 1024) {
        snprintf(err, errlen, "%s: larger than 64 MiB", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    text = malloc((size_t)size + 1);
    dir = strdup(path);
    if (!text || !dir) {
        rc = EMS_NOMEM;
        goto cleanup;
    }
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "%s: read error", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    text[size] = '\0';
    slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = '\0';
    else strcpy(dir, ".");
    rc = ems_sim_config_load_string(c, text, dir, inner, sizeof inner);
    if (rc != EMS_OK) snprintf(err, errlen, "%s: %s", path, inner);
cleanup:
    free(dir);
    free(text);
    fclose(f);
    return rc;
}

/* Percent-encodes the characters a URL's userinfo cannot carry as they are. */
static void url_escape(const char *s, char *out, size_t cap) {
    static const char safe[] = "-._~";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || strchr(safe, ch)) out[n++] = (char)ch;
        else n += (size_t)snprintf(out + n, cap - n, "%%%02X", ch);
    }
    out[n] = '\0';
}

ems_rc ems_sim_config_apply_env(ems_sim_config *c) {
    const char *token = getenv("EMS_INGEST_TOKEN"), *host = getenv("RABBITMQ_HOST");
    ems_rc rc = EMS_OK;
    if (token && *token && (rc = ems_sim_config_set_string(&c->target.env_token, token)) != EMS_OK) return rc;
    if (!c->target.url && host && *host) {
        const char *port = getenv("RABBITMQ_PORT"), *user = getenv("RABBITMQ_USERNAME"),
                   *pass = getenv("RABBITMQ_PASSWORD");
        char u[256], p[256], url[768];
        url_escape(user && *user ? user : "guest", u, sizeof u);
        url_escape(pass && *pass ? pass : "guest", p, sizeof p);
        snprintf(url, sizeof url, "amqp://%s:%s@%s:%s", u, p, host, port && *port ? port : "5672");
        if ((rc = ems_sim_config_set_string(&c->target.url, url)) != EMS_OK) return rc;
        c->target.kind = EMS_SIM_TARGET_AMQP;
        c->target.from_env = 1;
    }
    return rc;
}

/* ---- effective values ---------------------------------------------------- */

const char *ems_sim_config_url(const ems_sim_config *c) {
    if (c->target.url) return c->target.url;
    return c->target.kind == EMS_SIM_TARGET_AMQP ? EMS_SIM_DEFAULT_AMQP : "";
}

const char *ems_sim_config_queue(const ems_sim_config *c) {
    return c->target.queue ? c->target.queue : EMS_SIM_DEFAULT_QUEUE;
}

const char *ems_sim_config_token(const ems_sim_config *c) {
    if (c->target.env_token) return c->target.env_token;
    return c->target.token ? c->target.token : "";
}

int ems_sim_config_batch(const ems_sim_config *c) {
    if (c->send.batch > 0) return c->send.batch;
    return c->target.kind == EMS_SIM_TARGET_HTTP ? EMS_SIM_DEFAULT_HTTP_BATCH : EMS_SIM_DEFAULT_AMQP_BATCH;
}

int ems_sim_config_publish_batch(const ems_sim_config *c) {
    return c->send.publish_batch > 0 ? c->send.publish_batch : EMS_SIM_DEFAULT_PUBLISH_BATCH;
}

const char *ems_sim_config_csv_path(const ems_sim_config *c, char *buf, size_t cap) {
    if (!c->csv) return NULL;
    if (c->csv[0] == '/' || !c->base_dir) snprintf(buf, cap, "%s", c->csv);
    else snprintf(buf, cap, "%s/%s", c->base_dir, c->csv);
    return buf;
}

/* ---- validation ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static ems_rc bad(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return EMS_BAD_REQUEST;
}

static int in_range(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

/* Numeric settings and their bounds, checked alike. */
static const struct {
    const char *key;
    size_t off;
    double lo, hi;
    int is_int;
} bounds[] = {
    {"interval_s", offsetof(ems_sim_config, interval_s), 1, 86400, 1},
    {"send.batch", offsetof(ems_sim_config, send.batch), 0, MAX_BATCH, 1},
    {"send.publish_batch", offsetof(ems_sim_config, send.publish_batch), 0, MAX_BATCH, 1},
    {"faults.late_by", offsetof(ems_sim_config, faults.late_by), 1, MAX_WINDOW, 1},
    {"faults.shuffle_window", offsetof(ems_sim_config, faults.shuffle_window), 2, MAX_WINDOW, 1},
    {"profile.fluctuation", offsetof(ems_sim_config, fluctuation), 0, 0.99, 0},
    {"faults.duplicates", offsetof(ems_sim_config, faults.duplicates), 0, 1, 0},
    {"faults.late", offsetof(ems_sim_config, faults.late), 0, 1, 0},
    {"faults.malformed", offsetof(ems_sim_config, faults.malformed), 0, 1, 0},
};

static ems_rc validate_target(const ems_sim_config *c, char *err, size_t errlen) {
    const char *url = ems_sim_config_url(c);
    if (c->target.kind == EMS_SIM_TARGET_AMQP) {
        const char *q = ems_sim_config_queue(c);
        if (strncmp(url, "amqp://", 7) != 0 || !url[7])
            return bad(err, errlen, "target.amqp: expected amqp://user:pass@host:port");
        if (!q[0] || strlen(q) > QUEUE_MAX || strncmp(q, "amq.", 4) == 0)
            return bad(err, errlen, "target.queue: expected a queue name of 1..%d characters, not amq.*", QUEUE_MAX);
        const char *x = c->target.exchange;
        if (x && (!x[0] || strlen(x) > QUEUE_MAX || strncmp(x, "amq.", 4) == 0))
            return bad(err, errlen, "target.exchange: expected an exchange name of 1..%d characters, not amq.*",
                       QUEUE_MAX);
        return EMS_OK;
    }
    if (strncmp(url, "https://", 8) == 0)
        return bad(err, errlen, "target.http: https is not supported; use http:// to a local gateway or server");
    if (strncmp(url, "http://", 7) != 0 || !url[7])
        return bad(err, errlen, "target.http: expected http://host:port/api/readings");
    if (!ems_sim_config_token(c)[0])
        return bad(err, errlen, "target.token: an http target needs an ingest token (or set EMS_INGEST_TOKEN)");
    return EMS_OK;
}

ems_rc ems_sim_config_validate(const ems_sim_config *c, char *err, size_t errlen) {
    ems_rc rc;
    char path[1024];
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const void *p = (const char *)c + bounds[i].off;
        double v = bounds[i].is_int ? (double)*(const int *)p : *(const double *)p;
        if (!in_range(v, bounds[i].lo, bounds[i].hi))
            return bad(err, errlen, "%s: must be between %g and %g (got %g)", bounds[i].key, bounds[i].lo, bounds[i].hi,
                       v);
    }
    for (int h = 0; h < EMS_SIM_HOURS; h++)
        if (!in_range(c->hourly_kwh[h], 0, MAX_RATE_KWH))
            return bad(err, errlen, "profile.hourly_kwh[%d]: must be between 0 and %g kWh per hour (got %g)", h,
                       MAX_RATE_KWH, c->hourly_kwh[h]);
    if ((unsigned)c->send.format > EMS_SIM_FORMAT_ORIGINAL)
        return bad(err, errlen, "send.format: expected \"seed\" or \"original\"");
    if (c->timezone && !ems_tz_valid(c->timezone))
        return bad(err, errlen, "timezone: unknown time zone '%.60s' (expected an IANA name such as Europe/Bucharest)",
                   c->timezone);
    if (c->ndevices > MAX_DEVICES) return bad(err, errlen, "devices: more than %d", MAX_DEVICES);
    for (size_t i = 0; i < c->ndevices; i++) {
        const ems_sim_device_conf *d = &c->devices[i];
        if (!sim_uuid_valid(d->id)) return bad(err, errlen, "devices[%zu].id: expected a UUID", i);
        if (!in_range(d->scale, 1e-6, MAX_SCALE))
            return bad(err, errlen, "devices[%zu].scale: must be above 0 and at most %g (got %g)", i, MAX_SCALE,
                       d->scale);
        if (!in_range(d->max_kwh, 0, MAX_RATE_KWH))
            return bad(err, errlen, "devices[%zu].max_kwh: must be between 0 (no cap) and %g (got %g)", i, MAX_RATE_KWH,
                       d->max_kwh);
        if (d->name && strlen(d->name) > NAME_MAX_LEN)
            return bad(err, errlen, "devices[%zu].name: longer than %d characters", i, NAME_MAX_LEN);
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(c->devices[j].id, d->id) == 0)
                return bad(err, errlen, "devices[%zu].id: %s is also devices[%zu].id", i, d->id, j);
    }
    if ((rc = validate_target(c, err, errlen)) != EMS_OK) return rc;
    if (ems_sim_config_csv_path(c, path, sizeof path)) {
        int64_t *values = NULL;
        size_t n = 0;
        char inner[384];
        if (sim_csv_load(path, &values, &n, inner, sizeof inner) != EMS_OK) return bad(err, errlen, "csv: %s", inner);
        free(values);
    }
    return EMS_OK;
}

/* ---- writing ------------------------------------------------------------- */

static int set_new(json_t *obj, const char *key, json_t *v) { return v ? json_object_set_new(obj, key, v) : -1; }

char *ems_sim_config_to_json(const ems_sim_config *c) {
    json_t *root = json_object(), *devs = json_array(), *prof = json_object(), *curve = json_array();
    json_t *send = json_object(), *faults = json_object();
    char *text = NULL;
    int e = 0;
    if (!root || !devs || !prof || !curve || !send || !faults) goto cleanup;
    for (size_t i = 0; i < c->ndevices; i++) {
        const ems_sim_device_conf *d = &c->devices[i];
        json_t *o = json_object();
        e |= set_new(o, "id", json_string(d->id));
        if (d->name) e |= set_new(o, "name", json_string(d->name));
        e |= set_new(o, "scale", json_real(d->scale));
        if (d->max_kwh > 0) e |= set_new(o, "max_kwh", json_real(d->max_kwh));
        e |= json_array_append_new(devs, o);
    }
    e |= json_object_set(root, "devices", devs);
    e |= set_new(root, "interval_s", json_integer(c->interval_s));
    if (c->timezone) e |= set_new(root, "timezone", json_string(c->timezone));
    if (c->has_seed) e |= set_new(root, "seed", json_integer((json_int_t)c->seed));
    for (int h = 0; h < EMS_SIM_HOURS; h++) e |= json_array_append_new(curve, json_real(c->hourly_kwh[h]));
    e |= json_object_set(prof, "hourly_kwh", curve);
    e |= set_new(prof, "fluctuation", json_real(c->fluctuation));
    e |= json_object_set(root, "profile", prof);
    if (c->csv) e |= set_new(root, "csv", json_string(c->csv));
    if (c->target.url && !c->target.from_env) {
        json_t *t = json_object();
        if (c->target.kind == EMS_SIM_TARGET_AMQP) {
            e |= set_new(t, "amqp", json_string(c->target.url));
            e |= set_new(t, "queue", json_string(ems_sim_config_queue(c)));
            if (c->target.exchange) e |= set_new(t, "exchange", json_string(c->target.exchange));
        } else {
            e |= set_new(t, "http", json_string(c->target.url));
            if (c->target.token) e |= set_new(t, "token", json_string(c->target.token));
        }
        e |= set_new(root, "target", t);
    }
    /* Only what differs from the defaults, so that a saved file stays short. */
    if (c->send.batch) e |= set_new(send, "batch", json_integer(c->send.batch));
    if (c->send.publish_batch) e |= set_new(send, "publish_batch", json_integer(c->send.publish_batch));
    if (c->send.format != EMS_SIM_FORMAT_SEED) e |= set_new(send, "format", json_string(format_names[c->send.format]));
    if (c->send.iso) e |= set_new(send, "iso", json_true());
    if (json_object_size(send)) e |= json_object_set(root, "send", send);
    if (c->faults.duplicates > 0) e |= set_new(faults, "duplicates", json_real(c->faults.duplicates));
    if (c->faults.late > 0) e |= set_new(faults, "late", json_real(c->faults.late));
    if (c->faults.late_by != EMS_SIM_DEFAULT_LATE_BY) e |= set_new(faults, "late_by", json_integer(c->faults.late_by));
    if (c->faults.shuffle) e |= set_new(faults, "shuffle", json_true());
    if (c->faults.shuffle_window != EMS_SIM_DEFAULT_SHUFFLE_WINDOW)
        e |= set_new(faults, "shuffle_window", json_integer(c->faults.shuffle_window));
    if (c->faults.malformed > 0) e |= set_new(faults, "malformed", json_real(c->faults.malformed));
    if (json_object_size(faults)) e |= json_object_set(root, "faults", faults);
    if (!e) text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
cleanup:
    json_decref(faults);
    json_decref(send);
    json_decref(curve);
    json_decref(prof);
    json_decref(devs);
    json_decref(root);
    return text;
}

ems_rc ems_sim_config_save(const ems_sim_config *c, const char *path, char *err, size_t errlen) {
    ems_rc rc = EMS_OK;
    char *text = NULL, tmp[4096];
    int fd = -1;
    size_t len, off = 0;
    if ((rc = ems_sim_config_validate(c, err, errlen)) != EMS_OK) return rc;
    if (!(text = ems_sim_config_to_json(c))) return EMS_NOMEM;
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    len = strlen(text);
    text[len++] = '\n'; /* json_dumps' string has room: its NUL */
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = EMS_BAD_REQUEST;
            goto cleanup;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = EMS_BAD_REQUEST;
        goto cleanup;
    }
    tmp[0] = '\0';
cleanup:
    if (fd >= 0) close(fd);
    if (rc != EMS_OK && tmp[0]) unlink(tmp);
    free(text);
    return rc;
}

/* ---- devices ------------------------------------------------------------- */

ems_rc ems_sim_config_add_device(ems_sim_config *c, const char *id, char *err, size_t errlen) {
    ems_sim_device_conf *d;
    if (!sim_uuid_valid(id)) {
        snprintf(err, errlen, "device id '%.60s' is not a UUID", id ? id : "");
        return EMS_BAD_REQUEST;
    }
    for (size_t i = 0; i < c->ndevices; i++) {
        if (strcasecmp(c->devices[i].id, id) == 0) {
            snprintf(err, errlen, "device %s is configured twice", id);
            return EMS_CONFLICT;
        }
    }
    d = realloc(c->devices, (c->ndevices + 1) * sizeof *d);
    if (!d) return EMS_NOMEM;
    c->devices = d;
    d = &c->devices[c->ndevices++];
    memset(d, 0, sizeof *d);
    for (int i = 0; i <= EMS_SIM_ID_LEN; i++) d->id[i] = (char)tolower((unsigned char)id[i]);
    d->scale = 1.0;
    return EMS_OK;
}

ems_rc ems_sim_config_remove_device(ems_sim_config *c, size_t i) {
    if (i >= c->ndevices) return EMS_NOT_FOUND;
    free(c->devices[i].name);
    memmove(&c->devices[i], &c->devices[i + 1], (c->ndevices - i - 1) * sizeof *c->devices);
    c->ndevices--;
    return EMS_OK;
}
