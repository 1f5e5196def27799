/*
 * registry.c - injection names: their entries, the table that finds them, and the catalogue of
 * loaded sites.
 *
 * Every name compiled into the process gets one entry that is never freed (pinned), which
 * keeps the hot path simple: a site's `active` pointer, once read, stays valid. A name no
 * compiled point has (a run-time name) gets an entry when it is first enabled; entries of
 * run-time names are kept on a list in the order they were last enabled, and once there are
 * more than ERRINJ__KEPT_NAMES of them, the oldest disabled one is reclaimed, so enabling and
 * disabling any number of distinct names keeps memory bounded.
 *
 * Entries live in an open-addressing hash table that readers probe without a lock, inside a
 * read window (readers.h); writers insert and remove (leaving a tombstone) under g_mu and
 * publish with release stores. A reclaimed entry leaves the table at once and is freed by
 * reap() after a grace period (errinj__readers_synchronize), and only when no reference is
 * left: fires of run-time names, events on their way to the server and in its history, and
 * listings hold one (errinj__entry_ref). A rebuilt table replaces the old one, which is freed
 * after a grace period too. Firing threads never wait for any of it: reap() runs from enables.
 *
 * What an entry is set to (enable, disable, messages, the getters) is control.c's, which
 * borrows the lock and the find-or-create of entry.h; this file owns their life.
 *
 * Lock order: g_mu, then an entry's mu. Firing threads only ever take an entry's mu.
 *
 * It stays one file (about 670 lines) because the table, the reclamation of entries and the
 * site catalogue share g_mu and the list of recently enabled names: listing a site pins its
 * entry, and a reclaimed entry must leave the table and its sites at once.
 */
#include "registry.h"

#include "entry.h"
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
    struct table *retired_next; /* on g_retired_tables, once replaced */
    _Atomic(struct errinj__entry *) slots[];
};

/* Where a removed entry was: probes go on past it. Its length matches no name. */
static struct errinj__entry g_tombstone = {.name = "", .name_len = SIZE_MAX};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct table *) g_table;
static size_t g_entry_count; /* entries in the table */
static size_t g_tombstones;  /* tombstones in the table */
atomic_int errinj__enabled_count;

/* Unpinned entries, least recently enabled first (g_mu). */
static struct errinj__entry *g_recent_head, *g_recent_tail;
static size_t g_recent_count;
/* Removed from the table, to be freed by reap() (g_mu): entries linked by recent_next, tables. */
static struct errinj__entry *g_retired;
static size_t g_retired_new; /* retired since the last reap */
static struct table *g_retired_tables;
/* Entries retired before reap() runs: one grace period frees this many at once. */
#define REAP_BATCH 64
/* Entries looked at per enable of a new name when there are too many: an enabled one goes
 * back to the end, so one enable never walks the whole list. */
#define EVICT_STEPS 4

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

/* Puts e in the first free slot or tombstone of its probe; a reader probing meanwhile sees
 * either, and both send it on. Returns true when it reused a tombstone. */
static bool table_put(struct table *t, struct errinj__entry *e)
{
    size_t i = hash_name(e->name, e->name_len) & t->mask;
    struct errinj__entry *at;
    while ((at = atomic_load_explicit(&t->slots[i], memory_order_relaxed)) != NULL && at != &g_tombstone)
        i = (i + 1) & t->mask;
    atomic_store_explicit(&t->slots[i], e, memory_order_release);
    return at == &g_tombstone;
}

static void table_remove(struct table *t, struct errinj__entry *e)
{
    for (size_t i = hash_name(e->name, e->name_len) & t->mask;; i = (i + 1) & t->mask) {
        struct errinj__entry *at = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (at == NULL)
            return;
        if (at == e) {
            atomic_store_explicit(&t->slots[i], &g_tombstone, memory_order_release);
            g_entry_count--;
            g_tombstones++;
            return;
        }
    }
}

struct errinj__entry *errinj__entry_find(const char *name)
{
    size_t len = strnlen(name, ERRINJ__NAME_MAX + 1);
    return table_find(atomic_load_explicit(&g_table, memory_order_acquire), name, len);
}

void errinj__entry_ref(struct errinj__entry *e)
{
    if (!atomic_load_explicit(&e->pinned, memory_order_acquire))
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void errinj__entry_unref(struct errinj__entry *e)
{
    /* pinned is sticky: a reference taken before the entry was pinned is simply never dropped. */
    if (e != NULL && !atomic_load_explicit(&e->pinned, memory_order_acquire))
        atomic_fetch_sub_explicit(&e->refs, 1, memory_order_release);
}

struct errinj__entry *errinj__entry_hold(const char *name)
{
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    if (e != NULL)
        errinj__entry_ref(e);
    errinj__read_end(r);
    return e;
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

static void recent_unlink(struct errinj__entry *e)
{
    if (e->recent_prev != NULL)
        e->recent_prev->recent_next = e->recent_next;
    else
        g_recent_head = e->recent_next;
    if (e->recent_next != NULL)
        e->recent_next->recent_prev = e->recent_prev;
    else
        g_recent_tail = e->recent_prev;
    e->recent_prev = e->recent_next = NULL;
    g_recent_count--;
}

static void recent_append(struct errinj__entry *e)
{
    e->recent_prev = g_recent_tail;
    e->recent_next = NULL;
    if (g_recent_tail != NULL)
        g_recent_tail->recent_next = e;
    else
        g_recent_head = e;
    g_recent_tail = e;
    g_recent_count++;
}

/* A compiled-in point has e's name: e is never reclaimed from now on. g_mu held. */
static void entry_pin_locked(struct errinj__entry *e)
{
    if (atomic_load_explicit(&e->pinned, memory_order_relaxed))
        return;
    recent_unlink(e);
    atomic_store_explicit(&e->pinned, true, memory_order_release);
}

/*
 * Reclaims entries of disabled run-time names past the ERRINJ__KEPT_NAMES most recently
 * enabled: each leaves the table for g_retired. An entry still enabled, or with a one-shot
 * handler still running (reachable by messages), goes back to the end instead. g_mu held.
 */
static void evict_locked(void)
{
    struct table *t = atomic_load_explicit(&g_table, memory_order_relaxed);
    for (unsigned steps = 0; g_recent_count > ERRINJ__KEPT_NAMES && steps < EVICT_STEPS; steps++) {
        struct errinj__entry *e = g_recent_head;
        recent_unlink(e);
        /* Only an enable (under g_mu) makes a disabled entry busy again, so what is seen here
         * holds until the entry has left the table. */
        pthread_mutex_lock(&e->mu);
        bool idle = !atomic_load_explicit(&e->enabled, memory_order_relaxed) && e->ongoing == 0 &&
                    atomic_load_explicit(&e->waiters, memory_order_relaxed) == 0;
        pthread_mutex_unlock(&e->mu);
        if (!idle) {
            recent_append(e);
            continue;
        }
        table_remove(t, e);
        e->recent_next = g_retired;
        g_retired = e;
        g_retired_new++;
    }
}

/* Finds or creates the entry for name (pinned when a compiled-in point has it); g_mu held.
 * NULL only when out of memory. */
static struct errinj__entry *entry_get_locked(const char *name, bool pin)
{
    size_t len = strlen(name);
    struct table *t = atomic_load_explicit(&g_table, memory_order_relaxed);
    struct errinj__entry *e = table_find(t, name, len);
    if (e != NULL) {
        if (pin)
            entry_pin_locked(e);
        return e;
    }
    if (t == NULL || (g_entry_count + g_tombstones + 1) * 2 > t->mask + 1) {
        /* Rebuilt without tombstones, at most a third full. */
        size_t cap = 64;
        while (cap < 3 * (g_entry_count + 1))
            cap *= 2;
        struct table *rebuilt = table_new(cap);
        if (rebuilt == NULL)
            return NULL;
        for (size_t i = 0; t != NULL && i <= t->mask; i++) {
            struct errinj__entry *old = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
            if (old != NULL && old != &g_tombstone)
                table_put(rebuilt, old);
        }
        atomic_store_explicit(&g_table, rebuilt, memory_order_release);
        g_tombstones = 0;
        if (t != NULL) {
            /* Readers may still probe it: freed by reap() after a grace period. */
            t->retired_next = g_retired_tables;
            g_retired_tables = t;
        }
        t = rebuilt;
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
    atomic_init(&e->pinned, pin);
    if (!pin)
        recent_append(e);
    if (table_put(t, e))
        g_tombstones--;
    g_entry_count++;
    return e;
}

static void entry_destroy(struct errinj__entry *e)
{
    struct errinj__arm *arm = atomic_load_explicit(&e->arm, memory_order_relaxed);
    if (arm != NULL) {
        errinj__term_free(arm->term);
        free(arm);
    }
    errinj__config_unref(atomic_load_explicit(&e->cfg, memory_order_relaxed));
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/*
 * Frees what left the table once no reader can still be probing for it: the replaced tables,
 * and the retired entries nothing holds any more (the others wait for a later call). Makes a
 * system call (the grace period): from enables only, never from a fire. Unless `now`, it does
 * nothing until REAP_BATCH entries or a table are waiting, so the grace period is shared.
 */
static void reap(bool now)
{
    pthread_mutex_lock(&g_mu);
    if ((!now && g_retired_new < REAP_BATCH && g_retired_tables == NULL) ||
        (g_retired == NULL && g_retired_tables == NULL)) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    struct errinj__entry *entries = g_retired;
    struct table *tables = g_retired_tables;
    g_retired = NULL;
    g_retired_tables = NULL;
    g_retired_new = 0;
    pthread_mutex_unlock(&g_mu);

    errinj__readers_synchronize();
    while (tables != NULL) {
        struct table *next = tables->retired_next;
        free(tables);
        tables = next;
    }
    /* No reference can be taken any more (the entry is out of the table and every reader that
     * found it has left its window): one that reads 0 stays 0. */
    struct errinj__entry *held = NULL, *held_tail = NULL;
    while (entries != NULL) {
        struct errinj__entry *next = entries->recent_next;
        if (atomic_load_explicit(&entries->refs, memory_order_acquire) == 0) {
            entry_destroy(entries);
        } else {
            entries->recent_next = held;
            held = entries;
            if (held_tail == NULL)
                held_tail = entries;
        }
        entries = next;
    }
    if (held != NULL) {
        pthread_mutex_lock(&g_mu);
        held_tail->recent_next = g_retired;
        g_retired = held;
        pthread_mutex_unlock(&g_mu);
    }
}

/* Calls fn on every entry; g_mu held. */
static void entries_each_locked(void (*fn)(struct errinj__entry *e, void *arg), void *arg)
{
    struct table *t = atomic_load_explicit(&g_table, memory_order_relaxed);
    for (size_t i = 0; t != NULL && i <= t->mask; i++) {
        struct errinj__entry *e = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (e != NULL && e != &g_tombstone)
            fn(e, arg);
    }
}

/* ---- what control.c borrows (entry.h) ------------------------------------------------------ */

void errinj__registry_lock(void)
{
    pthread_mutex_lock(&g_mu);
}

void errinj__registry_unlock(void)
{
    pthread_mutex_unlock(&g_mu);
}

struct errinj__entry *errinj__entry_get_locked(const char *name, bool pin)
{
    return entry_get_locked(name, pin);
}

void errinj__entries_each_locked(void (*fn)(struct errinj__entry *e, void *arg), void *arg)
{
    entries_each_locked(fn, arg);
}

void errinj__entry_enabled_locked(struct errinj__entry *e)
{
    if (!atomic_load_explicit(&e->pinned, memory_order_relaxed)) {
        /* The most recently enabled run-time name; older disabled ones past the kept number go. */
        recent_unlink(e);
        recent_append(e);
        evict_locked();
    }
}

void errinj__registry_reap(bool now)
{
    reap(now);
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
    struct errinj__entry *e = entry_get_locked(s->name, true);
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
    errinj__site_set_active(s, atomic_load_explicit(&e->enabled, memory_order_relaxed) ? e : NULL);
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
            errinj__site_set_active(s, NULL);
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

/* ---- lookups ------------------------------------------------------------------------------ */

bool errinj__has_site(const char *name)
{
    pthread_mutex_lock(&g_mu);
    struct errinj__entry *e = errinj__entry_find(name);
    bool has = e != NULL && e->sites != NULL;
    pthread_mutex_unlock(&g_mu);
    return has;
}

void errinj__entries_each(void (*fn)(struct errinj__entry *e, void *arg), void *arg)
{
    pthread_mutex_lock(&g_mu);
    entries_each_locked(fn, arg);
    pthread_mutex_unlock(&g_mu);
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
