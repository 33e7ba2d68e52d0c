/*
 * faults.h — fault injection between the generator and the sender.
 *
 * Good readings go in in time order; items come out in the order they are
 * to be sent.  On request the stage
 *   - sends a fraction of readings twice (the copy a little later),
 *   - holds a fraction back until late_by newer readings went out,
 *   - reorders readings at random within a window,
 *   - adds malformed messages (of kinds from encode.h) at a given rate.
 * Malformed messages are always extra: no good reading is ever replaced or
 * dropped, so the sum of the good readings stays known.  Delays are counted
 * in readings, not in time; sim_faults_flush releases everything held.
 *
 * Decisions come from a generator seeded with the simulation's seed, so a
 * backfill with one seed injects the same faults every time.
 */
#ifndef EMS_SIM_FAULTS_H
#define EMS_SIM_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "sim_config.h"

/* Shared by the copies of a duplicated reading: the first copy confirmed is the one counted. */
typedef struct {
    int refs;
    int counted;
} sim_dup;

typedef struct {
    uint32_t device;   /* index into the simulation's devices */
    uint8_t malformed; /* 0: a good reading; k + 1: malformed of kind k */
    int64_t ts_ms;
    int64_t micro;
    sim_dup *dup; /* NULL unless the reading is sent more than once */
} sim_item;

/* Drops an item's share of its sim_dup (freeing it with the last copy). */
void sim_item_release(sim_item *it);

typedef struct sim_faults sim_faults;

ems_rc sim_faults_new(const ems_sim_config *c, uint64_t seed, sim_faults **out);
void sim_faults_free(sim_faults *f); /* releases held items; accepts NULL */

/* 1 if any fault is enabled (otherwise items pass straight through). */
int sim_faults_active(const sim_faults *f);

/* One good reading (malformed = 0, dup = NULL). */
ems_rc sim_faults_push(sim_faults *f, const sim_item *good);
/* Takes the next item that is due; 1 if there was one. */
int sim_faults_pop(sim_faults *f, sim_item *out);
/* Makes every held item due. */
void sim_faults_flush(sim_faults *f);
size_t sim_faults_held(const sim_faults *f);

/* What was injected so far (copies, late readings, malformed messages). */
typedef struct {
    uint64_t duplicates, late, malformed;
} sim_fault_counts;
void sim_faults_counts(const sim_faults *f, sim_fault_counts *out);

#endif
