/*
 * entry.h - the layout of a registry entry and of an enable's arm.
 *
 * These details are private to the registry (registry.c), the control layer (control.c), which
 * switches an entry with the registry's lock and find-or-create lent below, the fire path
 * (points.c), which reads them without a lock on every fire, and the coverage counters
 * (coverage.c), which read them under the entry's lock. They are in a header at all only so
 * that the fire path can use them inline; every other layer holds an entry as the opaque
 * handle of registry.h.
 */
#ifndef ERRINJ_ENTRY_H
#define ERRINJ_ENTRY_H

#include "registry.h"

#include <pthread.h>

/*
 * What one enable counts and decides with, read by fires inside a read window (readers.h) and
 * freed by the next enable after a grace period: the evaluations numbered since that enable
 * and the parsed term (NULL: always on) with its step boundaries. `gen` is the entry's enable
 * number, so a fire can tell later whether the arm it used is still the current one.
 */
struct errinj__arm {
    _Atomic uint64_t evaluations;
    struct errinj__term *term; /* owns the term's text */
    uint64_t seed;             /* the seed its draws use */
    uint64_t gen;
};

/* The evaluations an arm numbered; 0 for none (a name never enabled). */
static inline uint64_t errinj__arm_evaluations(struct errinj__arm *arm)
{
    return arm != NULL ? atomic_load(&arm->evaluations) : 0;
}

/*
 * One per injection name compiled in or recently enabled. An entry of a compiled-in point is
 * pinned: never freed, so a site's `active` pointer stays valid without reference counting.
 * An entry of a run-time name is reclaimed once it is disabled and ERRINJ__KEPT_NAMES newer
 * run-time names were enabled: it leaves the table, and is freed after a grace period once no
 * holder is left (errinj__entry_ref: a fire in progress, an event in the server's ring or
 * history, a listing). Writers hold mu; every write of a site's `active` happens under mu too.
 * A fire of a non-one-shot injection reads the atomics without the lock: `cfg` is swapped
 * atomically and the old one freed only once no fire is between loading it and taking its
 * reference (a read window, readers.h). One-shots and handler waits take mu.
 */
struct errinj__entry {
    const char *name;
    size_t name_len;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* signalled on message and on disable */
    atomic_bool enabled;
    atomic_bool one_shot;
    unsigned ongoing;        /* one-shot handlers still running after the one-shot disabled itself */
    atomic_uint_fast64_t enters;
    atomic_uint waiters;
    uint64_t received;       /* messages ever received; never reset */
    atomic_uint_fast64_t msg_base; /* `received` when last enabled: handlers start reading there */
    atomic_uint_fast64_t generation; /* bumped by disable: parked handlers of older generations leave */
    _Atomic(struct errinj__config *) cfg;
    _Atomic(struct errinj__arm *) arm; /* NULL until first enabled; replaced by each enable */
    uint64_t arm_gen;                 /* enables so far; under mu */
    struct errinj_site *sites;
    atomic_uint_fast64_t enable_seq; /* 1 + the last seq published before the latest enable took effect; 0: never enabled */
    /* Coverage (coverage.c), under mu: enables since the last reset, the evaluations and enters
     * of configs and enables already replaced, and what a reset found (subtracted). */
    uint64_t cov_armed;
    uint64_t cov_evals_done, cov_enters_done;
    uint64_t cov_evals_base, cov_enters_base;
    /* Reclamation (registry.c). */
    atomic_bool pinned;      /* a compiled-in point has (or had) this name: never freed */
    atomic_uint refs;        /* holders of an unpinned entry (errinj__entry_ref) */
    struct errinj__entry *recent_prev, *recent_next; /* unpinned entries, least recently enabled first; under the registry's lock */
};

/* ---- what the registry lends the control layer (control.c), and only it ----------------- */

/* The registry's lock: taken before an entry's. */
void errinj__registry_lock(void);
void errinj__registry_unlock(void);
/* Finds or creates the entry for name (pinned when a compiled-in point has it); registry lock
 * held. NULL only when out of memory. */
struct errinj__entry *errinj__entry_get_locked(const char *name, bool pin);
/* Calls fn on every entry; registry lock held. */
void errinj__entries_each_locked(void (*fn)(struct errinj__entry *e, void *arg), void *arg);
/* After an enable of e (registry lock held): a run-time name becomes the most recently enabled,
 * and disabled ones past ERRINJ__KEPT_NAMES leave the table. */
void errinj__entry_enabled_locked(struct errinj__entry *e);
/* Frees the entries and tables that left the table once no reader can hold them (a grace
 * period: a system call, never from a fire). Unless `now`, only when a batch is waiting. */
void errinj__registry_reap(bool now);

/* Points site s at e (NULL: not enabled), with a release store a fire's acquire load pairs with. */
static inline void errinj__site_set_active(struct errinj_site *s, struct errinj__entry *e)
{
    __atomic_store_n(&s->active, (void *)e, __ATOMIC_RELEASE);
}

#endif /* ERRINJ_ENTRY_H */
