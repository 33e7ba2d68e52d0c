/*
 * metrics.c — process-wide counters, gauges and one histogram, rendered in
 * the Prometheus text exposition format 0.0.4.
 *
 * A metric family (name, help, type) holds series, one per distinct label
 * set.  Every series lives in one open-addressing hash table keyed by its
 * family and its rendered label text (`method="GET",route="/x"`), so that the
 * hot path — one call per HTTP request — is a label render into a stack
 * buffer, one lookup and an add, all under one mutex.  Series are never
 * removed: label values are bounded by design (route patterns, queue names),
 * and the memory lives as long as the process.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } metric_kind;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* Upper bounds of the duration histogram's buckets; +Inf is implied. */
static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NBOUNDS (sizeof duration_bounds / sizeof duration_bounds[0])

typedef struct series series;

typedef struct family {
    const char *name;
    const char *help;
    metric_kind kind;
    int builtin; /* the fixed families below: not reachable by name */
    series *first, *last;
    struct family *next;
} family;

struct series {
    family *fam;
    uint64_t hash;
    char *labels;                  /* rendered, escaped; "" when none */
    double value;                  /* counter or gauge */
    uint64_t buckets[NBOUNDS + 1]; /* histogram: per bucket, not cumulative; last is +Inf */
    double sum;
    uint64_t count;
    series *next; /* within the family, in creation order */
};

/* The fixed families, listed first in every rendering; named ones are appended. */
static family bus_messages = {
    "ems_bus_messages_total", "Bus messages handled, by queue and verdict.", KIND_COUNTER, 1, NULL, NULL, NULL};
static family http_duration = {"ems_http_request_duration_seconds",
                               "Time to answer an HTTP request, by route.",
                               KIND_HISTOGRAM,
                               1,
                               NULL,
                               NULL,
                               &bus_messages};
static family http_requests = {"ems_http_requests_total",
                               "HTTP requests served, by method, route and status.",
                               KIND_COUNTER,
                               1,
                               NULL,
                               NULL,
                               &http_duration};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static family *families_head = &http_requests;
static family *families_tail = &bus_messages;
static series **table; /* open addressing, power-of-two capacity, at most half full */
static size_t table_cap, table_used;

static uint64_t hash_key(const family *f, const char *labels) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)f;
    for (const char *p = labels; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int table_grow(void) {
    size_t cap = table_cap ? table_cap * 2 : 256;
    series **t = calloc(cap, sizeof(series *));
    if (!t) return -1;
    for (size_t i = 0; i < table_cap; i++) {
        series *s = table[i];
        if (!s) continue;
        size_t j = s->hash & (cap - 1);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    free(table);
    table = t;
    table_cap = cap;
    return 0;
}

/* Finds or creates the series; NULL only when memory runs out.  Caller holds the lock. */
static series *series_get(family *f, const char *labels) {
    uint64_t h = hash_key(f, labels);
    if (table_cap) {
        for (size_t i = h & (table_cap - 1); table[i]; i = (i + 1) & (table_cap - 1)) {
            series *s = table[i];
            if (s->hash == h && s->fam == f && strcmp(s->labels, labels) == 0) return s;
        }
    }
    if ((table_used + 1) * 2 > table_cap && table_grow() != 0) return NULL;
    series *s = calloc(1, sizeof *s);
    if (!s || !(s->labels = strdup(labels))) {
        free(s);
        return NULL;
    }
    s->fam = f;
    s->hash = h;
    size_t i = h & (table_cap - 1);
    while (table[i]) i = (i + 1) & (table_cap - 1);
    table[i] = s;
    table_used++;
    if (f->last) f->last->next = s;
    else f->first = s;
    f->last = s;
    return s;
}

/*
 * A growable text buffer.  Appends after a failed allocation are no-ops and
 * the failure is reported once, at the end.
 */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text;

static void text_reserve(text *t, size_t extra) {
    if (t->failed || t->len + extra + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + extra + 1) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->failed = 1;
        return;
    }
    t->p = p;
    t->cap = cap;
}

static void text_add(text *t, const char *s, size_t n) {
    text_reserve(t, n);
    if (t->failed) return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void text_str(text *t, const char *s) { text_add(t, s, strlen(s)); }

/*
 * The format's escapes: in label values \ " and newline; in HELP text only
 * \ and newline.  NULL for a character that stands for itself.
 */
static const char *escape_of(char c, int in_label) {
    switch (c) {
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '"': return in_label ? "\\\"" : NULL;
    default: return NULL;
    }
}

static void text_escaped(text *t, const char *s, int in_label) {
    for (; *s; s++) {
        const char *e = escape_of(*s, in_label);
        if (e) text_add(t, e, 2);
        else text_add(t, s, 1);
    }
}

/*
 * Writes `name="value",...` from a NULL-terminated list of name, value
 * into buf like snprintf: truncates to cap, returns the length it needs.
 */
static size_t labels_write(char *buf, size_t cap, const char *const *kv) {
    size_t n = 0;
#define PUT(c)                                                                                                         \
    do {                                                                                                               \
        if (n + 1 < cap) buf[n] = (c);                                                                                 \
        n++;                                                                                                           \
    } while (0)
    for (size_t i = 0; kv[i]; i += 2) {
        if (i) PUT(',');
        for (const char *p = kv[i]; *p; p++) PUT(*p);
        PUT('=');
        PUT('"');
        for (const char *p = kv[i + 1] ? kv[i + 1] : ""; *p; p++) {
            const char *e = escape_of(*p, 1);
            if (e) {
                PUT(e[0]);
                PUT(e[1]);
            } else {
                PUT(*p);
            }
        }
        PUT('"');
    }
#undef PUT
    if (cap) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

/*
 * The label text of a lookup.  The stack buffer serves the hot path; only
 * labels that do not fit cost an allocation.
 */
typedef struct {
    char stack[256];
    char *heap;
} label_key;

static const char *label_key_make(label_key *k, const char *const *kv) {
    k->heap = NULL;
    size_t n = labels_write(k->stack, sizeof k->stack, kv);
    if (n < sizeof k->stack) return k->stack;
    if (!(k->heap = malloc(n + 1))) return NULL;
    labels_write(k->heap, n + 1, kv);
    return k->heap;
}

static void label_key_done(label_key *k) { free(k->heap); }

/* Integers print exactly; everything else round-trips through %.17g. */
static void text_number(text *t, double v) {
    char buf[64];
    if (isnan(v)) snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v)) snprintf(buf, sizeof buf, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0) snprintf(buf, sizeof buf, "%.0f", v);
    else snprintf(buf, sizeof buf, "%.17g", v);
    text_str(t, buf);
}

void ems_metrics_http(const char *method, const char *route, int status, double seconds) {
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    const char *const req_kv[] = {"method", method, "route", route, "status", code, NULL};
    const char *const dur_kv[] = {"route", route, NULL};
    label_key rk, dk;
    const char *req_labels = label_key_make(&rk, req_kv);
    const char *dur_labels = label_key_make(&dk, dur_kv);
    size_t bucket = 0;
    while (bucket < NBOUNDS && seconds > duration_bounds[bucket]) bucket++;

    pthread_mutex_lock(&lock);
    series *s = req_labels ? series_get(&http_requests, req_labels) : NULL;
    if (s) s->value += 1;
    s = dur_labels ? series_get(&http_duration, dur_labels) : NULL;
    if (s) {
        s->buckets[bucket]++;
        s->sum += seconds;
        s->count++;
    }
    pthread_mutex_unlock(&lock);
    label_key_done(&rk);
    label_key_done(&dk);
}

void ems_metrics_bus(const char *queue, const char *verdict) {
    const char *const kv[] = {"queue", queue, "verdict", verdict, NULL};
    label_key k;
    const char *labels = label_key_make(&k, kv);
    if (!labels) return;
    pthread_mutex_lock(&lock);
    series *s = series_get(&bus_messages, labels);
    if (s) s->value += 1;
    pthread_mutex_unlock(&lock);
    label_key_done(&k);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static int name_valid(const char *name) {
    if (!name || !*name || (*name >= '0' && *name <= '9')) return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':'))
            return 0;
    }
    return 1;
}

/* Finds or creates a named family; NULL if the name belongs to another kind.  Caller holds the lock. */
static family *family_get(const char *name, const char *help, metric_kind kind) {
    for (family *f = families_head; f; f = f->next)
        if (strcmp(f->name, name) == 0) return (f->kind == kind && !f->builtin) ? f : NULL;
    family *f = calloc(1, sizeof *f);
    char *own_name = strdup(name), *own_help = strdup(help ? help : name);
    if (!f || !own_name || !own_help) {
        free(own_help);
        free(own_name);
        free(f);
        return NULL;
    }
    f->name = own_name;
    f->help = own_help;
    f->kind = kind;
    families_tail->next = f;
    families_tail = f;
    return f;
}

/*
 * A named metric is a family with one unlabelled series.  The series lookup
 * comes first because it is the common case; a name seen for the first time
 * creates its family.
 */
static void named_update(const char *name, const char *help, metric_kind kind, double v) {
    if (!name_valid(name)) return;
    pthread_mutex_lock(&lock);
    family *f = family_get(name, help, kind);
    series *s = f ? series_get(f, "") : NULL;
    if (s) {
        if (kind == KIND_COUNTER) s->value += v;
        else s->value = v;
    }
    pthread_mutex_unlock(&lock);
}

void ems_metrics_count(const char *name, const char *help, double n) {
    if (n < 0 || isnan(n)) return; /* counters only go up */
    named_update(name, help, KIND_COUNTER, n);
}

void ems_metrics_gauge(const char *name, const char *help, double v) { named_update(name, help, KIND_GAUGE, v); }

void ems_metrics_count_labeled(const char *name, const char *help, const char *label, const char *value, double n) {
    const char *const kv[] = {label, value, NULL};
    label_key k;
    if (n < 0 || isnan(n) || !name_valid(name) || !label || !value) return;
    const char *labels = label_key_make(&k, kv);
    if (!labels) return;
    pthread_mutex_lock(&lock);
    family *f = family_get(name, help, KIND_COUNTER);
    series *s = f ? series_get(f, labels) : NULL;
    if (s) s->value += n;
    pthread_mutex_unlock(&lock);
    label_key_done(&k);
}

static void render_sample(text *t, const char *name, const char *suffix, const char *labels, const char *extra,
                          double v) {
    text_str(t, name);
    text_str(t, suffix);
    if (*labels || extra) {
        text_add(t, "{", 1);
        text_str(t, labels);
        if (extra) {
            if (*labels) text_add(t, ",", 1);
            text_str(t, extra);
        }
        text_add(t, "}", 1);
    }
    text_add(t, " ", 1);
    text_number(t, v);
    text_add(t, "\n", 1);
}

static void render_histogram(text *t, const family *f, const series *s) {
    uint64_t cumulative = 0;
    char le[48];
    for (size_t b = 0; b <= NBOUNDS; b++) {
        cumulative += s->buckets[b];
        if (b < NBOUNDS) snprintf(le, sizeof le, "le=\"%g\"", duration_bounds[b]);
        else snprintf(le, sizeof le, "le=\"+Inf\"");
        render_sample(t, f->name, "_bucket", s->labels, le, (double)cumulative);
    }
    render_sample(t, f->name, "_sum", s->labels, NULL, s->sum);
    render_sample(t, f->name, "_count", s->labels, NULL, (double)s->count);
}

char *ems_metrics_render(size_t *len) {
    text t = {NULL, 0, 0, 0};
    text_reserve(&t, 4096);
    pthread_mutex_lock(&lock);
    for (const family *f = families_head; f; f = f->next) {
        text_str(&t, "# HELP ");
        text_str(&t, f->name);
        text_add(&t, " ", 1);
        text_escaped(&t, f->help, 0);
        text_str(&t, "\n# TYPE ");
        text_str(&t, f->name);
        text_add(&t, " ", 1);
        text_str(&t, kind_names[f->kind]);
        text_add(&t, "\n", 1);
        for (const series *s = f->first; s; s = s->next) {
            if (f->kind == KIND_HISTOGRAM) render_histogram(&t, f, s);
            else render_sample(&t, f->name, "", s->labels, NULL, s->value);
        }
    }
    pthread_mutex_unlock(&lock);
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    if (len) *len = t.len;
    return t.p;
}
