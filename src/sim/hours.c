/*
 * hours.c — the (device, hour) → sum map (see hours.h).  Linear probing over
 * a power-of-two table kept at most half full.
 */
#include "hours.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define MS_PER_HOUR 3600000

struct sim_hours {
    sim_hour_sum *slots; /* readings == 0 marks a free slot */
    size_t cap, n;
};

sim_hours *sim_hours_new(void) { return calloc(1, sizeof(sim_hours)); }

void sim_hours_free(sim_hours *h) {
    if (!h) return;
    free(h->slots);
    free(h);
}

static size_t slot_of(const sim_hours *h, uint32_t device, int64_t hour) {
    size_t i = (size_t)sim_mix64(((uint64_t)device << 40) ^ (uint64_t)hour) & (h->cap - 1);
    while (h->slots[i].readings && (h->slots[i].device != device || h->slots[i].hour != hour))
        i = (i + 1) & (h->cap - 1);
    return i;
}

static ems_rc grow(sim_hours *h) {
    size_t cap = h->cap ? h->cap * 2 : 1024;
    sim_hours bigger = {.slots = calloc(cap, sizeof(sim_hour_sum)), .cap = cap};
    if (!bigger.slots) return EMS_NOMEM;
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].readings) bigger.slots[slot_of(&bigger, h->slots[i].device, h->slots[i].hour)] = h->slots[i];
    free(h->slots);
    h->slots = bigger.slots;
    h->cap = cap;
    return EMS_OK;
}

ems_rc sim_hours_add(sim_hours *h, uint32_t device, int64_t ts_ms, int64_t micro) {
    int64_t hour = ts_ms >= 0 ? ts_ms / MS_PER_HOUR : (ts_ms - MS_PER_HOUR + 1) / MS_PER_HOUR;
    size_t i;
    if ((h->n + 1) * 2 > h->cap && grow(h) != EMS_OK) return EMS_NOMEM;
    i = slot_of(h, device, hour);
    if (!h->slots[i].readings) {
        h->slots[i] = (sim_hour_sum){.device = device, .hour = hour};
        h->n++;
    }
    h->slots[i].micro += micro;
    h->slots[i].readings++;
    return EMS_OK;
}

static int by_device_hour(const void *a, const void *b) {
    const sim_hour_sum *x = a, *y = b;
    if (x->device != y->device) return x->device < y->device ? -1 : 1;
    return x->hour < y->hour ? -1 : x->hour > y->hour;
}

ems_rc sim_hours_sorted(const sim_hours *h, sim_hour_sum **out, size_t *n) {
    sim_hour_sum *v;
    size_t k = 0;
    if (h->n == 0) {
        *out = NULL;
        *n = 0;
        return EMS_OK;
    }
    if (!(v = malloc(h->n * sizeof *v))) return EMS_NOMEM;
    for (size_t i = 0; i < h->cap && k < h->n; i++)
        if (h->slots[i].readings) v[k++] = h->slots[i];
    qsort(v, k, sizeof *v, by_device_hour);
    *out = v;
    *n = k;
    return EMS_OK;
}
