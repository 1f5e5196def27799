/*
 * control.c - switching injections on and off, messages, and reading what they are set to.
 *
 * An enable builds the arm (the term and its evaluation counter) and swaps it and the parameters
 * into the entry under the registry's lock and the entry's, so a fire sees either the old pair or
 * the new; the old ones are freed only after a grace period, since a fire reads them without a
 * lock (readers.h). It records the last seq published before it takes effect, so a wait for
 * later seqs cannot miss a hit of this enable: that is why this layer sits above events.
 * Disabling bumps the entry's generation, releasing every parked handler of older generations;
 * a disable from the API also takes the parameters and the term out of the entry. The entries
 * themselves, their table and their reclamation are the registry's (registry.c).
 *
 * Lock order: the registry's lock, then an entry's mu.
 */
#include "control.h"

#include "entry.h"
#include "events.h"
#include "hooks.h"
#include "log.h"
#include "names.h"
#include "readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- enable ------------------------------------------------------------------------------- */

void errinj__entry_disable_locked(struct errinj__entry *e, bool release_waiters)
{
    if (atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
        atomic_store_explicit(&e->enabled, false, memory_order_release);
        atomic_fetch_sub(&errinj__enabled_count, 1);
        for (struct errinj_site *s = e->sites; s != NULL; s = s->next_same_name)
            errinj__site_set_active(s, NULL);
    }
    if (release_waiters) {
        atomic_fetch_add(&e->generation, 1);
        pthread_cond_broadcast(&e->cv);
    }
}

static _Thread_local uint64_t t_last_enable_seq;

uint64_t errinj__last_enable_seq(void)
{
    return t_last_enable_seq;
}

bool errinj__enable_seq(const char *name, uint64_t *seq)
{
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    /* enable_seq holds the seq plus one, so 0 means never enabled (a compiled-in point's entry). */
    uint64_t stored = e != NULL ? atomic_load(&e->enable_seq) : 0;
    errinj__read_end(r);
    if (stored == 0)
        return false;
    *seq = stored - 1;
    return true;
}

uint64_t errinj__enable_count(const char *name)
{
    struct errinj__entry *e = errinj__entry_hold(name);
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t n = e->arm_gen;
    pthread_mutex_unlock(&e->mu);
    errinj__entry_unref(e);
    return n;
}

/* Enables name with cfg and term (both consumed; term may be NULL: always on) drawing with seed. */
static int enable_armed(const char *name, bool one_shot, struct errinj__config *cfg, struct errinj__term *term,
                        uint64_t seed)
{
    if (!errinj__name_ok(name) || errinj__hook_validate(name, cfg->kv) != 0) {
        errinj__config_unref(cfg);
        errinj__term_free(term);
        return ERRINJ_EINVAL;
    }
    struct errinj__arm *arm = calloc(1, sizeof(*arm));
    if (arm == NULL) {
        errinj__config_unref(cfg);
        errinj__term_free(term);
        return ERRINJ_ENOMEM;
    }
    arm->term = term;
    arm->seed = seed;
    errinj__registry_lock();
    struct errinj__entry *e = errinj__entry_get_locked(name, false);
    if (e == NULL) {
        errinj__registry_unlock();
        errinj__config_unref(cfg);
        errinj__term_free(term);
        free(arm);
        return ERRINJ_ENOMEM;
    }
    pthread_mutex_lock(&e->mu);
    /* Read before the injection takes effect: a fire that sees it enabled numbers its event
     * after this load, so a wait for seqs above it cannot miss one. */
    uint64_t seq = errinj__seq_last();
    atomic_store(&e->enable_seq, seq + 1);
    t_last_enable_seq = seq;
    arm->gen = ++e->arm_gen;
    /* Coverage keeps counting across enables: what the replaced arm and enable counted. */
    e->cov_armed++;
    struct errinj__config *old = atomic_exchange(&e->cfg, cfg);
    /* Every enable numbers its evaluations from 1 again: a new arm. A fire racing with this
     * enable may decide with the old arm and read the new parameters, or the other way round. */
    struct errinj__arm *old_arm = atomic_exchange(&e->arm, arm);
    uint64_t replaced_evals = errinj__arm_evaluations(old_arm);
    e->cov_evals_done += replaced_evals;
    /* one_shot before enabled: a fire that sees the injection enabled sees its one_shot too. */
    atomic_store(&e->one_shot, one_shot);
    if (!atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
        /* A fresh enable starts its counters from zero: enters, and the messages its handlers
         * will read (from msg_base on, so handlers of an earlier enable still running keep
         * theirs and new ones never see messages sent to the earlier enable). */
        e->cov_enters_done += atomic_load(&e->enters);
        atomic_store(&e->enters, 0);
        atomic_store(&e->msg_base, e->received);
        atomic_store_explicit(&e->enabled, true, memory_order_release);
        atomic_fetch_add(&errinj__enabled_count, 1);
        for (struct errinj_site *s = e->sites; s != NULL; s = s->next_same_name)
            errinj__site_set_active(s, e);
    }
    pthread_mutex_unlock(&e->mu);
    errinj__entry_enabled_locked(e);
    errinj__registry_unlock();
    /* A lock-free fire may have loaded `old` or `old_arm` just before the exchanges and still be
     * using it: wait the few nanoseconds until no thread is in that window. A name enabled for
     * the first time replaces only the shared empty config, which is never freed: no wait. */
    if (old != errinj__config_empty() || old_arm != NULL)
        errinj__readers_synchronize();
    if (old_arm != NULL) {
        /* Evaluations such a fire numbered in `old_arm` after it was read above still count. */
        uint64_t late = errinj__arm_evaluations(old_arm) - replaced_evals;
        if (late > 0) {
            pthread_mutex_lock(&e->mu);
            e->cov_evals_done += late;
            pthread_mutex_unlock(&e->mu);
        }
        errinj__term_free(old_arm->term);
        free(old_arm);
    }
    errinj__config_unref(old);
    errinj__registry_reap(false);
    return 0;
}

int errinj__enable_config(const char *name, bool one_shot, struct errinj__config *cfg)
{
    return enable_armed(name, one_shot, cfg, NULL, errinj__process_seed());
}

int errinj__enable_term(const char *name, bool one_shot, const char *term, bool has_seed, uint64_t seed,
                        struct errinj__config *cfg, char *why, size_t why_len)
{
    if (why_len > 0)
        why[0] = '\0';
    if (!errinj__name_ok(name)) {
        errinj__config_unref(cfg);
        if (why_len > 0)
            snprintf(why, why_len, "injection name must be 1 to 255 bytes of UTF-8 without control characters");
        return ERRINJ_EINVAL;
    }
    if (term != NULL && one_shot) {
        errinj__config_unref(cfg);
        if (why_len > 0)
            snprintf(why, why_len, "one_shot and a term do not go together: one_shot is the term 1*on");
        return ERRINJ_EINVAL;
    }
    uint64_t use_seed = has_seed ? seed : errinj__process_seed();
    struct errinj__term *parsed = NULL;
    if (term != NULL) {
        int rc = errinj__term_parse(term, &parsed, why, why_len);
        if (rc != 0) {
            errinj__config_unref(cfg);
            return rc;
        }
        errinj__term_arm(parsed, use_seed, name, strlen(name));
    }
    return enable_armed(name, one_shot, cfg, parsed, use_seed);
}

int errinj_term_check(const char *term, char *msg, size_t len)
{
    struct errinj__term *t;
    char why[512];
    int rc = errinj__term_parse(term, &t, why, sizeof(why));
    if (msg != NULL && len > 0)
        snprintf(msg, len, "%s", rc == 0 ? "" : why);
    errinj__term_free(t);
    return rc;
}

int errinj_enable(const char *name, bool one_shot, const char *const *params)
{
    errinj_enable_opts opts = {.one_shot = one_shot, .params = params};
    return errinj_enable_with(name, &opts);
}

int errinj_enable_with(const char *name, const errinj_enable_opts *opts)
{
    static const errinj_enable_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    size_t n = 0;
    while (opts->params != NULL && opts->params[n] != NULL)
        n++;
    if (n % 2 != 0)
        return ERRINJ_EINVAL;
    struct errinj__config *cfg = errinj__config_new(opts->params);
    if (cfg == NULL)
        return ERRINJ_ENOMEM;
    char why[512];
    int rc = errinj__enable_term(name, opts->one_shot, opts->term, opts->seed != 0, opts->seed, cfg, why, sizeof(why));
    if (rc == ERRINJ_EINVAL && why[0] != '\0')
        errinj__log("errinj: enable %s: %s", name, why);
    return rc;
}

/* What disables took out of entries, freed after one grace period. */
struct stripped {
    struct errinj__config **cfgs;
    struct errinj__term **terms;
    size_t count, cap;
};

/*
 * Disables e from the API (releasing its parked handlers) and takes its parameters and term out
 * of it: a disabled injection shows neither, and a run-time name kept after its disable should
 * cost its counters, not its last megabyte of parameters. A fire racing with the disable may
 * read the empty set. Out of memory for the list, they simply stay.
 */
static void disable_entry(struct errinj__entry *e, void *arg)
{
    struct stripped *out = arg;
    pthread_mutex_lock(&e->mu);
    errinj__entry_disable_locked(e, true);
    if (out->count == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 4;
        struct errinj__config **cfgs = realloc(out->cfgs, cap * sizeof(*cfgs));
        if (cfgs != NULL)
            out->cfgs = cfgs;
        struct errinj__term **terms = cfgs != NULL ? realloc(out->terms, cap * sizeof(*terms)) : NULL;
        if (terms != NULL) {
            out->terms = terms;
            out->cap = cap;
        }
    }
    if (out->count < out->cap) {
        struct errinj__config *cfg = atomic_load_explicit(&e->cfg, memory_order_relaxed);
        struct errinj__arm *arm = atomic_load_explicit(&e->arm, memory_order_relaxed);
        struct errinj__term *term = arm != NULL ? __atomic_load_n(&arm->term, __ATOMIC_RELAXED) : NULL;
        if (cfg != errinj__config_empty() || term != NULL) {
            out->cfgs[out->count] = atomic_exchange(&e->cfg, errinj__config_ref(errinj__config_empty()));
            out->terms[out->count] = term != NULL ? __atomic_exchange_n(&arm->term, NULL, __ATOMIC_RELEASE) : NULL;
            out->count++;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* Frees what disable_entry() took, once no fire can still be reading it. */
static void stripped_free(struct stripped *st)
{
    if (st->count > 0)
        errinj__readers_synchronize();
    for (size_t i = 0; i < st->count; i++) {
        errinj__config_unref(st->cfgs[i]);
        errinj__term_free(st->terms[i]);
    }
    free(st->cfgs);
    free(st->terms);
}

int errinj_disable(const char *name)
{
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_hold(name);
    if (e != NULL) {
        struct stripped st = {0};
        disable_entry(e, &st);
        errinj__entry_unref(e);
        stripped_free(&st);
    }
    return 0;
}

void errinj_disable_all(void)
{
    struct stripped st = {0};
    errinj__registry_lock();
    errinj__entries_each_locked(disable_entry, &st);
    errinj__registry_unlock();
    stripped_free(&st);
    errinj__registry_reap(true);
}

int errinj_message(const char *name)
{
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_hold(name);
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    if (atomic_load_explicit(&e->enabled, memory_order_relaxed) || e->ongoing > 0) {
        e->received++;
        pthread_cond_broadcast(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    errinj__entry_unref(e);
    return 0;
}

bool errinj_is_enabled(const char *name)
{
    if (!errinj__name_ok(name))
        return false;
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    bool on = e != NULL && atomic_load_explicit(&e->enabled, memory_order_acquire);
    errinj__read_end(r);
    return on;
}

uint64_t errinj_enters(const char *name)
{
    if (!errinj__name_ok(name))
        return 0;
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    uint64_t n = e == NULL ? 0 : atomic_load(&e->enters);
    errinj__read_end(r);
    return n;
}

uint64_t errinj_evaluations(const char *name)
{
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_hold(name) : NULL;
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t n = errinj__arm_evaluations(atomic_load(&e->arm));
    pthread_mutex_unlock(&e->mu);
    errinj__entry_unref(e);
    return n;
}

unsigned errinj_waiters(const char *name)
{
    if (!errinj__name_ok(name))
        return 0;
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    unsigned n = e == NULL ? 0 : atomic_load(&e->waiters);
    errinj__read_end(r);
    return n;
}

int errinj_parameter(const char *name, const char *key, char *buf, size_t len)
{
    if (!errinj__name_ok(name) || key == NULL || (buf == NULL && len > 0))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_hold(name);
    if (e == NULL)
        return ERRINJ_ENOENT;
    int rc = ERRINJ_ENOENT;
    pthread_mutex_lock(&e->mu);
    const char *value = atomic_load_explicit(&e->enabled, memory_order_relaxed)
                            ? errinj__config_get(atomic_load(&e->cfg), key)
                            : NULL;
    if (value != NULL) {
        size_t need = strlen(value);
        if (len > 0) {
            size_t copy = need < len ? need : len - 1;
            memcpy(buf, value, copy);
            buf[copy] = '\0';
        }
        rc = need < len ? 0 : ERRINJ_ERANGE;
    }
    pthread_mutex_unlock(&e->mu);
    errinj__entry_unref(e);
    return rc;
}

void errinj__entry_state(const char *name, struct errinj__entry_state *out)
{
    *out = (struct errinj__entry_state){0};
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_hold(name) : NULL;
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    if (atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
        out->enabled = true;
        out->one_shot = atomic_load(&e->one_shot);
        out->cfg = errinj__config_ref(atomic_load(&e->cfg));
        struct errinj__arm *arm = atomic_load(&e->arm);
        out->evaluations = errinj__arm_evaluations(arm);
        out->seed = arm != NULL ? arm->seed : errinj__process_seed();
        if (arm != NULL && arm->term != NULL)
            snprintf(out->term, sizeof(out->term), "%s", arm->term->text);
    }
    pthread_mutex_unlock(&e->mu);
    errinj__entry_unref(e);
}

/* What an errinj_state's strings point into: a reference to the parameters and the term's copy. */
struct state_hold {
    struct errinj__config *cfg;
    char term[];
};

int errinj_state_get(const char *name, errinj_state *state)
{
    if (state == NULL)
        return ERRINJ_EINVAL;
    *state = (errinj_state){0};
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    struct errinj__entry_state st;
    errinj__entry_state(name, &st);
    if (!st.enabled)
        return 0;
    size_t term_len = strlen(st.term);
    struct state_hold *hold = malloc(sizeof(*hold) + term_len + 1);
    if (hold == NULL) {
        errinj__config_unref(st.cfg);
        return ERRINJ_ENOMEM;
    }
    hold->cfg = st.cfg;
    memcpy(hold->term, st.term, term_len + 1);
    *state = (errinj_state){
        .enabled = true,
        .one_shot = st.one_shot,
        .term = term_len > 0 ? hold->term : NULL,
        .seed = st.seed,
        .parameters = st.cfg->kv,
        .priv = hold,
    };
    return 0;
}

void errinj_state_release(errinj_state *state)
{
    if (state == NULL || state->priv == NULL)
        return;
    struct state_hold *hold = state->priv;
    errinj__config_unref(hold->cfg);
    free(hold);
    *state = (errinj_state){0};
}

/* ---- listings ----------------------------------------------------------------------------- */

struct name_list {
    struct errinj__entry **names; /* each held */
    size_t count, cap;
    bool failed;
};

static void collect_enabled(struct errinj__entry *e, void *arg)
{
    struct name_list *list = arg;
    if (!atomic_load(&e->enabled))
        return;
    if (list->count == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 32;
        struct errinj__entry **grown = realloc(list->names, cap * sizeof(*grown));
        if (grown == NULL) {
            list->failed = true;
            return;
        }
        list->names = grown;
        list->cap = cap;
    }
    errinj__entry_ref(e);
    list->names[list->count++] = e;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(struct errinj__entry *const *)a)->name, (*(struct errinj__entry *const *)b)->name);
}

void errinj_list_enabled(void (*fn)(const char *name, void *arg), void *arg)
{
    struct name_list list = {0};
    errinj__registry_lock();
    errinj__entries_each_locked(collect_enabled, &list);
    errinj__registry_unlock();
    /* The references keep the names, so the callbacks can run without the lock. */
    if (list.failed)
        errinj__log("errinj: out of memory listing injections; the list is incomplete");
    if (list.count > 0)
        qsort(list.names, list.count, sizeof(*list.names), compare_names);
    for (size_t i = 0; i < list.count; i++)
        fn(list.names[i]->name, arg);
    for (size_t i = 0; i < list.count; i++)
        errinj__entry_unref(list.names[i]);
    free(list.names);
}
