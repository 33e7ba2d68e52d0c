/*
 * faults.c — the fault stage (see faults.h): a binary min-heap of items
 * keyed by the reading count at which each is due, ties broken by arrival,
 * so that with no faults enabled items leave in exactly the order they came.
 */
#include "faults.h"

#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "rng.h"

/* A duplicate copy follows its original by 1..DUP_GAP_MAX readings (or the shuffle window). */
#define DUP_GAP_MAX 8

typedef struct {
    uint64_t due;   /* releasable once this many readings have come in */
    uint64_t order; /* arrival, for ties */
    sim_item item;
} held;

struct sim_faults {
    double duplicates, late, malformed;
    uint64_t late_by, window;
    int shuffle;
    sim_rng rng;
    uint64_t seq;   /* good readings pushed */
    uint64_t order; /* items held so far */
    int flushing;
    held *heap;
    size_t n, cap;
    sim_fault_counts counts;
};

void sim_item_release(sim_item *it) {
    if (it->dup && --it->dup->refs == 0) free(it->dup);
    it->dup = NULL;
}

ems_rc sim_faults_new(const ems_sim_config *c, uint64_t seed, sim_faults **out) {
    sim_faults *f = calloc(1, sizeof *f);
    if (!f) return EMS_NOMEM;
    f->duplicates = c->faults.duplicates;
    f->late = c->faults.late;
    f->malformed = c->faults.malformed;
    f->late_by = (uint64_t)(c->faults.late_by > 0 ? c->faults.late_by : EMS_SIM_DEFAULT_LATE_BY);
    f->window = (uint64_t)(c->faults.shuffle_window > 1 ? c->faults.shuffle_window : EMS_SIM_DEFAULT_SHUFFLE_WINDOW);
    f->shuffle = c->faults.shuffle;
    sim_rng_seed(&f->rng, sim_mix64(seed ^ 0xfa0175ULL));
    *out = f;
    return EMS_OK;
}

void sim_faults_free(sim_faults *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) sim_item_release(&f->heap[i].item);
    free(f->heap);
    free(f);
}

int sim_faults_active(const sim_faults *f) {
    return f->duplicates > 0 || f->late > 0 || f->malformed > 0 || f->shuffle;
}

static int before(const held *a, const held *b) { return a->due < b->due || (a->due == b->due && a->order < b->order); }

static ems_rc hold(sim_faults *f, const sim_item *it, uint64_t due) {
    size_t i;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        held *h = realloc(f->heap, cap * sizeof *h);
        if (!h) return EMS_NOMEM;
        f->heap = h;
        f->cap = cap;
    }
    i = f->n++;
    f->heap[i] = (held){.due = due, .order = f->order++, .item = *it};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        held tmp;
        if (!before(&f->heap[i], &f->heap[parent])) break;
        tmp = f->heap[i];
        f->heap[i] = f->heap[parent];
        f->heap[parent] = tmp;
        i = parent;
    }
    return EMS_OK;
}

ems_rc sim_faults_push(sim_faults *f, const sim_item *good) {
    uint64_t now = f->seq++, delay = 0;
    sim_item it = *good;
    ems_rc rc;
    if (f->shuffle) delay = sim_rng_below(&f->rng, f->window);
    if (f->late > 0 && sim_rng_unit(&f->rng) < f->late) {
        delay += f->late_by;
        f->counts.late++;
    }
    if (f->duplicates > 0 && sim_rng_unit(&f->rng) < f->duplicates) {
        uint64_t gap = 1 + sim_rng_below(&f->rng, f->shuffle ? f->window : DUP_GAP_MAX);
        sim_dup *d = calloc(1, sizeof *d);
        if (!d) return EMS_NOMEM;
        d->refs = 2;
        it.dup = d;
        if ((rc = hold(f, &it, now + delay + gap)) != EMS_OK) {
            free(d);
            return rc;
        }
        f->counts.duplicates++;
    }
    if ((rc = hold(f, &it, now + delay)) != EMS_OK) {
        sim_item_release(&it); /* the copy already held keeps the link alive */
        return rc;
    }
    if (f->malformed > 0 && sim_rng_unit(&f->rng) < f->malformed) {
        sim_item bad = *good;
        bad.dup = NULL;
        bad.malformed = (uint8_t)(1 + sim_rng_below(&f->rng, SIM_MALFORMED_KINDS));
        if ((rc = hold(f, &bad, now + (f->shuffle ? sim_rng_below(&f->rng, f->window) : 0))) != EMS_OK) return rc;
        f->counts.malformed++;
    }
    return EMS_OK;
}

int sim_faults_pop(sim_faults *f, sim_item *out) {
    size_t i = 0;
    if (f->n == 0) return 0;
    if (!f->flushing && f->heap[0].due >= f->seq) return 0;
    *out = f->heap[0].item;
    f->heap[0] = f->heap[--f->n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        held tmp;
        if (l < f->n && before(&f->heap[l], &f->heap[m])) m = l;
        if (r < f->n && before(&f->heap[r], &f->heap[m])) m = r;
        if (m == i) break;
        tmp = f->heap[i];
        f->heap[i] = f->heap[m];
        f->heap[m] = tmp;
        i = m;
    }
    if (f->n == 0) f->flushing = 0;
    return 1;
}

void sim_faults_flush(sim_faults *f) {
    if (f->n) f->flushing = 1;
}

size_t sim_faults_held(const sim_faults *f) { return f->n; }

void sim_faults_counts(const sim_faults *f, sim_fault_counts *out) { *out = f->counts; }
