/*
 * registry.c - injection names, their state, and the catalogue of loaded sites.
 *
 * Every name the process ever enables or compiles in gets one entry that is never freed.
 * That makes the hot path simple: a site's `active` pointer, once read, stays valid, and
 * events can carry the entry's name without reference counting. Entries live in an
 * open-addressing hash table that readers probe without a lock (run-time-name points);
 * writers insert under g_mu and publish with release stores. A grown table replaces the
 * old one, which is kept (it is at most half the size of the new one) so that a reader
 * still probing it is safe.
 *
 * Lock order: g_mu, then an entry's mu. Firing threads only ever take an entry's mu.
 *
 * It stays one file (about 900 lines) because the entry table, the enable/disable state and
 * the site catalogue share g_mu and the entry layout; terms (term.c), coverage (coverage.c)
 * and the read windows (readers.c) are already apart.
 */
#include "registry.h"

#include "entry.h"
#include "events.h" /* errinj__seq_last(), for an enable's seq: moves out with enable (control) */
#include "hooks.h"
#include "lifecycle.h"
#include "log.h"
#include "names.h"
#include "readers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

/* ---- the table of entries ------------------------------------------------------------ */

struct table {
    size_t mask;
    struct table *older; /* kept for readers still probing it */
    _Atomic(struct errinj__entry *) slots[];
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct table *) g_table;
static size_t g_entry_count;
atomic_int errinj__enabled_count;

static uint64_t hash_name(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static struct errinj__entry *table_find(struct table *t, const char *name, size_t len)
{
    if (t == NULL)
        return NULL;
    for (size_t i = hash_name(name, len) & t->mask;; i = (i + 1) & t->mask) {
        struct errinj__entry *e = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (e == NULL)
            return NULL;
        if (e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
}

static struct table *table_new(size_t capacity)
{
    struct table *t = calloc(1, sizeof(*t) + capacity * sizeof(t->slots[0]));
    if (t != NULL)
        t->mask = capacity - 1;
    return t;
}

static void table_put(struct table *t, struct errinj__entry *e)
{
    size_t i = hash_name(e->name, e->name_len) & t->mask;
    while (atomic_load_explicit(&t->slots[i], memory_order_relaxed) != NULL)
        i = (i + 1) & t->mask;
    atomic_store_explicit(&t->slots[i], e, memory_order_release);
}

struct errinj__entry *errinj__entry_find(const char *name)
{
    size_t len = strnlen(name, ERRINJ__NAME_MAX + 1);
    return table_find(atomic_load_explicit(&g_table, memory_order_acquire), name, len);
}

static void entry_init_sync(struct errinj__entry *e)
{
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &attr);
    pthread_condattr_destroy(&attr);
}

/* Finds or creates the entry for name; g_mu held. NULL only when out of memory. */
static struct errinj__entry *entry_get_locked(const char *name)
{
    size_t len = strlen(name);
    struct table *t = atomic_load_explicit(&g_table, memory_order_relaxed);
    struct errinj__entry *e = table_find(t, name, len);
    if (e != NULL)
        return e;
    if (t == NULL || (g_entry_count + 1) * 2 > t->mask + 1) {
        struct table *bigger = table_new(t == NULL ? 64 : 2 * (t->mask + 1));
        if (bigger == NULL)
            return NULL;
        for (size_t i = 0; t != NULL && i <= t->mask; i++) {
            struct errinj__entry *old = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
            if (old != NULL)
                table_put(bigger, old);
        }
        bigger->older = t;
        atomic_store_explicit(&g_table, bigger, memory_order_release);
        t = bigger;
    }
    e = calloc(1, sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    char *copy = (char *)(e + 1);
    memcpy(copy, name, len + 1);
    e->name = copy;
    e->name_len = len;
    entry_init_sync(e);
    atomic_init(&e->cfg, errinj__config_ref(errinj__config_empty()));
    table_put(t, e);
    g_entry_count++;
    return e;
}

/* Calls fn on every entry; g_mu held. */
static void entries_each_locked(void (*fn)(struct errinj__entry *e, void *arg), void *arg)
{
    struct table *t = atomic_load_explicit(&g_table, memory_order_relaxed);
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        struct errinj__entry *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e != NULL)
            fn(e, arg);
    }
}

const char *errinj__entry_name(const struct errinj__entry *e)
{
    return e->name;
}

/* fork(): the registry's lock is taken before and released on both sides; in the child every
 * entry's lock, condition and waiter counts start anew (their holders stayed in the parent). */
static void registry_fork_prepare(void)
{
    pthread_mutex_lock(&g_mu);
}

static void registry_fork_parent(void)
{
    pthread_mutex_unlock(&g_mu);
}

static void reset_entry_in_child(struct errinj__entry *e, void *arg)
{
    (void)arg;
    /* Threads of the parent that held or waited on it do not exist in the child. */
    entry_init_sync(e);
    atomic_store(&e->waiters, 0);
    e->ongoing = 0;
}

static void registry_fork_child(void)
{
    entries_each_locked(reset_entry_in_child, NULL);
    pthread_mutex_unlock(&g_mu);
}

__attribute__((constructor)) static void registry_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {registry_fork_prepare, registry_fork_parent, registry_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_REGISTRY, &hooks);
}

/* ---- sites and modules ------------------------------------------------------------------ */

struct module {
    struct errinj_site *start, *stop;
    unsigned refs; /* one per translation unit of the module that registered it */
    struct module *next;
};

static struct module *g_modules;

/*
 * File names of sites, interned: events carry a site's file pointer to the server thread, which
 * may format them after the module that held the string was dlclose()d. The interned copies live
 * as long as the process. g_mu held.
 */
struct interned {
    struct interned *next;
    char text[];
};

static struct interned *g_files[64];

static const char *intern_file_locked(const char *file)
{
    size_t len = strlen(file);
    struct interned **bucket = &g_files[hash_name(file, len) % 64];
    for (struct interned *i = *bucket; i != NULL; i = i->next)
        if (strcmp(i->text, file) == 0)
            return i->text;
    struct interned *i = malloc(sizeof(*i) + len + 1);
    if (i == NULL)
        return file; /* out of memory: keep the module's copy; only a dlclose() could hurt */
    memcpy(i->text, file, len + 1);
    i->next = *bucket;
    *bucket = i;
    return i->text;
}

static void site_set_active(struct errinj_site *s, struct errinj__entry *e)
{
    __atomic_store_n(&s->active, (void *)e, __ATOMIC_RELEASE);
}

/* The marks a site's `active` holds until it is listed (errinj__site_unlisted). */
char errinj__unlisted[2];

/*
 * Lists site s under its name. A site can be listed more than once (inlining and cloning copy
 * the asm statement that lists a C site, so a module's section may name it twice); it is
 * linked once. Sites of one record always come from one module, so unlisting stays paired.
 * g_mu held.
 */
static void site_list_locked(struct errinj_site *s)
{
    struct errinj__entry *e = entry_get_locked(s->name);
    if (e == NULL)
        return; /* out of memory: it stays unlisted and retries when it first runs */
    pthread_mutex_lock(&e->mu);
    for (struct errinj_site *x = e->sites; x != NULL; x = x->next_same_name) {
        if (x == s) {
            pthread_mutex_unlock(&e->mu);
            return;
        }
    }
    s->file = intern_file_locked(s->file); /* before the site can fire */
    s->next_same_name = e->sites;
    e->sites = s;
    site_set_active(s, atomic_load_explicit(&e->enabled, memory_order_relaxed) ? e : NULL);
    pthread_mutex_unlock(&e->mu);
}

static void site_unlist_locked(struct errinj_site *s)
{
    struct errinj__entry *e = errinj__entry_find(s->name);
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    for (struct errinj_site **sp = &e->sites; *sp != NULL; sp = &(*sp)->next_same_name) {
        if (*sp == s) {
            *sp = s->next_same_name;
            s->next_same_name = NULL;
            site_set_active(s, NULL);
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

void errinj__site_list(struct errinj_site *site)
{
    pthread_mutex_lock(&g_mu);
    site_list_locked(site);
    pthread_mutex_unlock(&g_mu);
}

void errinj__site_unlist(struct errinj_site *site)
{
    pthread_mutex_lock(&g_mu);
    site_unlist_locked(site);
    pthread_mutex_unlock(&g_mu);
}

struct errinj__entry *errinj__site_adopt(struct errinj_site *site)
{
    pthread_mutex_lock(&g_mu);
    void *was = __atomic_load_n(&site->active, __ATOMIC_ACQUIRE);
    if (errinj__site_unlisted(was)) {
        site_list_locked(site);
        /* A C++ site can run before its module's constructors list it (static initialisation
         * order); a C site can only be here if the toolchain dropped its catalogue entry. */
        if (was != (void *)&errinj__unlisted[1])
            errinj__log("errinj: point \"%s\" at %s:%d ran but was not in the catalogue: the toolchain "
                        "dropped its entry from the errinj_sites section; it is listed now, but the "
                        "catalogue misses this module's points until they run",
                        site->name, site->file, site->line);
    }
    struct errinj__entry *e = __atomic_load_n(&site->active, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&g_mu);
    return errinj__site_unlisted(e) ? NULL : e;
}

void errinj__module_register(struct errinj_site *start, struct errinj_site *stop)
{
    pthread_mutex_lock(&g_mu);
    for (struct module *m = g_modules; m != NULL; m = m->next) {
        if (m->start == start) {
            m->refs++;
            pthread_mutex_unlock(&g_mu);
            return;
        }
    }
    struct module *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        /* Without memory the module's sites stay unlisted until each first runs. */
        pthread_mutex_unlock(&g_mu);
        errinj__log("errinj: out of memory registering a module; its points are listed when they first run");
        return;
    }
    *m = (struct module){start, stop, 1, g_modules};
    g_modules = m;
    for (struct errinj_site *site = start; site < stop; site++) {
        if (site->name != NULL) /* padding between translation units' records */
            site_list_locked(site);
    }
    pthread_mutex_unlock(&g_mu);
}

void errinj__module_unregister(struct errinj_site *start, struct errinj_site *stop)
{
    pthread_mutex_lock(&g_mu);
    struct module **link = &g_modules;
    while (*link != NULL && (*link)->start != start)
        link = &(*link)->next;
    struct module *m = *link;
    if (m == NULL || --m->refs > 0) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    *link = m->next;
    free(m);
    for (struct errinj_site *site = start; site < stop; site++) {
        if (site->name != NULL)
            site_unlist_locked(site);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ---- control ------------------------------------------------------------------------------ */

void errinj__entry_disable_locked(struct errinj__entry *e, bool release_waiters)
{
    if (atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
        atomic_store_explicit(&e->enabled, false, memory_order_release);
        atomic_fetch_sub(&errinj__enabled_count, 1);
        for (struct errinj_site *s = e->sites; s != NULL; s = s->next_same_name)
            site_set_active(s, NULL);
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
    struct errinj__entry *e = errinj__entry_find(name);
    /* enable_seq holds the seq plus one, so 0 means never enabled (a compiled-in point's entry). */
    uint64_t stored = e != NULL ? atomic_load(&e->enable_seq) : 0;
    if (stored == 0)
        return false;
    *seq = stored - 1;
    return true;
}

uint64_t errinj__enable_count(const char *name)
{
    struct errinj__entry *e = errinj__entry_find(name);
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t n = e->arm_gen;
    pthread_mutex_unlock(&e->mu);
    return n;
}

bool errinj__has_site(const char *name)
{
    struct errinj__entry *e = errinj__entry_find(name);
    if (e == NULL)
        return false;
    pthread_mutex_lock(&g_mu);
    bool has = e->sites != NULL;
    pthread_mutex_unlock(&g_mu);
    return has;
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
    pthread_mutex_lock(&g_mu);
    struct errinj__entry *e = entry_get_locked(name);
    if (e == NULL) {
        pthread_mutex_unlock(&g_mu);
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
            site_set_active(s, e);
    }
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_unlock(&g_mu);
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
    return 0;
}

int errinj__enable_config(const char *name, bool one_shot, struct errinj__config *cfg)
{
    return enable_armed(name, one_shot, cfg, NULL, errinj__process_seed());
}

void errinj__entries_each(void (*fn)(struct errinj__entry *e, void *arg), void *arg)
{
    pthread_mutex_lock(&g_mu);
    entries_each_locked(fn, arg);
    pthread_mutex_unlock(&g_mu);
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

static void disable_entry(struct errinj__entry *e, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&e->mu);
    errinj__entry_disable_locked(e, true);
    pthread_mutex_unlock(&e->mu);
}

int errinj_disable(const char *name)
{
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_find(name);
    if (e != NULL)
        disable_entry(e, NULL);
    return 0;
}

void errinj_disable_all(void)
{
    pthread_mutex_lock(&g_mu);
    entries_each_locked(disable_entry, NULL);
    pthread_mutex_unlock(&g_mu);
}

int errinj_message(const char *name)
{
    if (!errinj__name_ok(name))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_find(name);
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    if (atomic_load_explicit(&e->enabled, memory_order_relaxed) || e->ongoing > 0) {
        e->received++;
        pthread_cond_broadcast(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return 0;
}

bool errinj_is_enabled(const char *name)
{
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_find(name) : NULL;
    return e != NULL && atomic_load_explicit(&e->enabled, memory_order_acquire);
}

uint64_t errinj_enters(const char *name)
{
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_find(name) : NULL;
    return e == NULL ? 0 : atomic_load(&e->enters);
}

uint64_t errinj_evaluations(const char *name)
{
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_find(name) : NULL;
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t n = errinj__arm_evaluations(atomic_load(&e->arm));
    pthread_mutex_unlock(&e->mu);
    return n;
}

unsigned errinj_waiters(const char *name)
{
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_find(name) : NULL;
    return e == NULL ? 0 : atomic_load(&e->waiters);
}

int errinj_parameter(const char *name, const char *key, char *buf, size_t len)
{
    if (!errinj__name_ok(name) || key == NULL || (buf == NULL && len > 0))
        return ERRINJ_EINVAL;
    struct errinj__entry *e = errinj__entry_find(name);
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
    return rc;
}

void errinj__entry_state(const char *name, struct errinj__entry_state *out)
{
    *out = (struct errinj__entry_state){0};
    struct errinj__entry *e = errinj__name_ok(name) ? errinj__entry_find(name) : NULL;
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
    const char **names;
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
        const char **grown = realloc(list->names, cap * sizeof(*grown));
        if (grown == NULL) {
            list->failed = true;
            return;
        }
        list->names = grown;
        list->cap = cap;
    }
    list->names[list->count++] = e->name;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void errinj_list_enabled(void (*fn)(const char *name, void *arg), void *arg)
{
    struct name_list list = {0};
    pthread_mutex_lock(&g_mu);
    entries_each_locked(collect_enabled, &list);
    pthread_mutex_unlock(&g_mu);
    /* Entry names are immortal, so the callbacks can run without the lock. */
    if (list.failed)
        errinj__log("errinj: out of memory listing injections; the list is incomplete");
    if (list.count > 0)
        qsort(list.names, list.count, sizeof(*list.names), compare_names);
    for (size_t i = 0; i < list.count; i++)
        fn(list.names[i], arg);
    free(list.names);
}

static int compare_points(const void *a, const void *b)
{
    const errinj_point *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0)
        c = strcmp(x->file, y->file);
    if (c == 0)
        c = (x->line > y->line) - (x->line < y->line);
    return c;
}

struct point_list {
    errinj_point *points;
    size_t count, cap;
    bool failed;
};

static void collect_points(struct errinj__entry *e, void *arg)
{
    struct point_list *list = arg;
    pthread_mutex_lock(&e->mu);
    for (struct errinj_site *s = e->sites; s != NULL && !list->failed; s = s->next_same_name) {
        if (list->count == list->cap) {
            size_t cap = list->cap ? 2 * list->cap : 64;
            errinj_point *grown = realloc(list->points, cap * sizeof(*grown));
            if (grown == NULL) {
                list->failed = true;
                break;
            }
            list->points = grown;
            list->cap = cap;
        }
        list->points[list->count++] = (errinj_point){s->name, (errinj_type)s->type, s->file, s->line};
    }
    pthread_mutex_unlock(&e->mu);
}

void errinj_list_points(void (*fn)(const errinj_point *point, void *arg), void *arg)
{
    pthread_mutex_lock(&g_mu);
    struct point_list list = {0};
    entries_each_locked(collect_points, &list);
    if (list.failed)
        errinj__log("errinj: out of memory listing points");
    else if (list.count > 0)
        qsort(list.points, list.count, sizeof(*list.points), compare_points);
    /* The callbacks run under g_mu: a module must not unload while its sites are listed. Copies
     * of one site (a C99 inline function's record in each translation unit) are listed once. */
    for (size_t i = 0; !list.failed && i < list.count; i++) {
        if (i > 0 && compare_points(&list.points[i - 1], &list.points[i]) == 0 &&
            list.points[i - 1].type == list.points[i].type)
            continue;
        fn(&list.points[i], arg);
    }
    pthread_mutex_unlock(&g_mu);
    free(list.points);
}
