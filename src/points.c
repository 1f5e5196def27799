/*
 * points.c - what happens when an enabled point fires.
 *
 * The macros in errinj.h test a site's `active` pointer inline and call in here only when it
 * is set. A fire re-checks that the injection is still enabled, counts the enter and takes a
 * reference to the parameters without a lock; only a one-shot takes the entry's mutex, to let
 * exactly one thread in the process win it and disable it. Then the fire publishes the event,
 * logs, and runs the action with no lock held, so a sleeping or parked point never delays
 * another thread, a DELETE, or a message (the lesson of gofail#64).
 *
 * Handlers park on the entry's condition variable. Messages are shared as in ScyllaDB: the
 * entry counts messages received since it was enabled and each handler its own reads, so a
 * message sent before a handler waits still counts and one message wakes every waiter.
 * Disabling bumps the entry's generation, which releases every handler of older generations.
 */
#define _GNU_SOURCE
#include "points.h"

#include "control.h"
#include "entry.h"
#include "events.h"
#include "log.h"
#include "readers.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Logs a fire's line with the firing thread's shard. */
#define log_fire(...) errinj__log_fire(errinj_shard(), __VA_ARGS__)

/* ---- firing ------------------------------------------------------------------------------- */

/* What one fire holds while its action runs. */
struct fire {
    struct errinj__entry *entry;
    struct errinj__config *cfg;
    const char *file;
    int line;
    errinj_type type;
    uint64_t enters;
    uint64_t eval;     /* this evaluation's number since the enable */
    uint64_t arm_gen;  /* the enable whose arm decided it */
    uint64_t seq;      /* the hit's seq */
    uint64_t generation;
    uint64_t msg_base; /* the entry's message count when it was enabled */
    struct errinj__decision decision; /* what the term said (on for no term) */
    bool ongoing; /* a one-shot handler or last pause that keeps the entry reachable by messages */
    bool held;    /* a reference to the entry (a run-time name's, which may be reclaimed) */
};

struct errinj_handler {
    struct fire fire;
    uint64_t read; /* messages this handler has consumed */
};

/* The detail of the fire running on this thread (errinj__fire_exception_detail), or NULL: every
 * event of that fire carries it. */
static _Thread_local const char *t_detail;

static void publish(struct fire *f, enum errinj__phase phase)
{
    struct errinj__record rec = {
        .detail = t_detail,
        .entry = f->entry,
        .cfg = f->cfg,
        .file = f->file,
        .line = f->line,
        .type = (uint8_t)f->type,
        .phase = (uint8_t)phase,
        .enters = f->enters,
        .action = f->decision.action,
        .eval = f->eval,
    };
    errinj__publish(&rec);
    if (phase == ERRINJ__PHASE_HIT)
        f->seq = rec.seq;
}

/* Whether the action parks the thread, so a self-disabled injection must stay reachable by messages. */
static bool parks(const struct fire *f)
{
    return f->decision.action == ERRINJ__ACTION_PAUSE ||
           (f->decision.action == ERRINJ__ACTION_ON && f->type == ERRINJ_TYPE_HANDLER);
}

/*
 * The evaluation that used up the term's last step disables the injection, as a one-shot
 * does; unless a newer enable replaced the term meanwhile (its config is another one).
 */
static void finish_term(struct errinj__entry *e, struct fire *f)
{
    pthread_mutex_lock(&e->mu);
    if (e->arm_gen == f->arm_gen && atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
        errinj__entry_disable_locked(e, false);
        if (parks(f)) {
            e->ongoing++;
            f->ongoing = true;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/*
 * Claims a fire of entry e. False if it is not enabled (or lost a race with a disable or with
 * another thread's one-shot), or if its term decided `off` for this evaluation. On true, pair
 * with fire_end().
 *
 * A non-one-shot fire takes no lock: inside a read window of its own thread (readers.h), so a
 * concurrent enable cannot free the config under it, it loads the config, numbers the
 * evaluation, asks the term and takes a reference, then counts the enter. An evaluation the term
 * turns off leaves without a reference, an enter or an event. A one-shot takes the entry's
 * mutex so that exactly one thread in the process wins it and disables it.
 */
static bool fire_begin(struct errinj__entry *e, errinj_type type, const char *file, int line, struct fire *f)
{
    /* The generation before `enabled`: disable clears `enabled` before it bumps the generation,
     * so a fire that still sees the injection enabled holds the generation a disable changes,
     * and a handler of it can never park unreleased after the disable. */
    uint64_t generation = atomic_load_explicit(&e->generation, memory_order_acquire);
    if (!atomic_load_explicit(&e->enabled, memory_order_acquire))
        return false;
    f->decision = (struct errinj__decision){.action = ERRINJ__ACTION_ON};
    if (!atomic_load_explicit(&e->one_shot, memory_order_acquire)) {
        struct errinj__reader *r = errinj__read_begin();
        struct errinj__arm *arm = atomic_load_explicit(&e->arm, memory_order_acquire);
        f->eval = atomic_fetch_add_explicit(&arm->evaluations, 1, memory_order_relaxed) + 1;
        /* A disable takes the term out (and frees it after a grace period): load it once. */
        struct errinj__term *term = __atomic_load_n(&arm->term, __ATOMIC_ACQUIRE);
        if (term != NULL) {
            errinj__term_decide_inline(term, f->eval, &f->decision);
            if (f->decision.action == ERRINJ__ACTION_OFF && !f->decision.last) {
                errinj__read_end(r);
                return false;
            }
        }
        f->arm_gen = arm->gen;
        f->cfg = errinj__config_ref(atomic_load_explicit(&e->cfg, memory_order_acquire));
        errinj__read_end(r);
        f->entry = e;
        f->file = file;
        f->line = line;
        f->type = type;
        f->ongoing = false;
        f->msg_base = atomic_load_explicit(&e->msg_base, memory_order_relaxed);
        f->generation = generation;
        if (f->decision.last) {
            finish_term(e, f);
            if (f->decision.action == ERRINJ__ACTION_OFF) {
                errinj__config_unref(f->cfg);
                return false;
            }
        }
    } else {
        f->entry = e;
        f->file = file;
        f->line = line;
        f->type = type;
        f->ongoing = false;
        pthread_mutex_lock(&e->mu);
        if (!atomic_load_explicit(&e->enabled, memory_order_relaxed)) {
            pthread_mutex_unlock(&e->mu);
            return false;
        }
        if (atomic_load_explicit(&e->one_shot, memory_order_relaxed)) {
            errinj__entry_disable_locked(e, false);
            if (type == ERRINJ_TYPE_HANDLER) {
                e->ongoing++;
                f->ongoing = true;
            }
        }
        f->cfg = errinj__config_ref(atomic_load(&e->cfg));
        /* Under mu the arm cannot be replaced, let alone freed. */
        f->eval = atomic_fetch_add_explicit(&atomic_load(&e->arm)->evaluations, 1, memory_order_relaxed) + 1;
        f->generation = atomic_load_explicit(&e->generation, memory_order_relaxed);
        f->msg_base = atomic_load_explicit(&e->msg_base, memory_order_relaxed);
        pthread_mutex_unlock(&e->mu);
    }
    f->enters = atomic_fetch_add_explicit(&e->enters, 1, memory_order_relaxed) + 1;
    publish(f, ERRINJ__PHASE_HIT);
    return true;
}

static void fire_end(struct fire *f)
{
    errinj__config_unref(f->cfg);
    if (f->ongoing) {
        pthread_mutex_lock(&f->entry->mu);
        f->entry->ongoing--;
        pthread_mutex_unlock(&f->entry->mu);
    }
    if (f->held)
        errinj__entry_unref(f->entry);
}

static bool fire_site(struct errinj_site *site, struct fire *f)
{
    struct errinj__entry *e = __atomic_load_n(&site->active, __ATOMIC_ACQUIRE);
    if (__builtin_expect(errinj__site_unlisted(e), 0))
        e = errinj__site_adopt(site); /* first run of a site missing from the catalogue */
    /* A site's entry is pinned: it needs no reference. */
    f->held = false;
    return e != NULL && fire_begin(e, (errinj_type)site->type, site->file, site->line, f);
}

/* A run-time name's entry may be reclaimed once disabled: the fire holds a reference to it from
 * the lookup (inside a read window) to fire_end(). */
static bool fire_name(const char *name, errinj_type type, struct fire *f)
{
    if (name == NULL || atomic_load_explicit(&errinj__enabled_count, memory_order_relaxed) == 0)
        return false;
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__entry *e = errinj__entry_find(name);
    bool on = e != NULL && atomic_load_explicit(&e->enabled, memory_order_relaxed);
    if (on)
        errinj__entry_ref(e);
    errinj__read_end(r);
    if (!on)
        return false;
    f->held = true;
    if (fire_begin(e, type, NULL, 0, f))
        return true;
    errinj__entry_unref(e);
    return false;
}

/* ---- the actions -------------------------------------------------------------------------- */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0)
        ; /* EINTR: sleep the rest */
}

/*
 * The term's actions other than `on`. Each returns true when it handled the fire (the point's
 * own action must not run); the value the point returns is then *rc: V for return, what a
 * disabled point returns otherwise. `on` returns false and the point acts as compiled.
 */
static void park_until_message(struct fire *f);

static bool term_action(struct fire *f, int *rc)
{
    const char *name = f->entry->name;
    switch (f->decision.action) {
    case ERRINJ__ACTION_RETURN:
        log_fire("Triggering injection \"%s\" returning %lld", name, (long long)f->decision.arg);
        *rc = (int)f->decision.arg;
        break;
    case ERRINJ__ACTION_SLEEP:
        log_fire("Triggering sleep injection \"%s\" (%lldms)", name, (long long)f->decision.arg);
        sleep_ms((unsigned)f->decision.arg);
        *rc = 0;
        break;
    case ERRINJ__ACTION_PAUSE:
        park_until_message(f);
        *rc = 0;
        break;
    case ERRINJ__ACTION_ABORT:
        log_fire("Triggering injection \"%s\": abort", name);
        /* Every connected stream gets the hit before the process dies (at most 1 s). */
        errinj__wait_delivered(f->seq, 1000);
        abort();
    default:
        return false;
    }
    fire_end(f);
    return true;
}

static void do_sleep(struct fire *f, unsigned ms)
{
    int rc;
    if (term_action(f, &rc))
        return;
    const char *override = errinj__config_get(f->cfg, "duration_ms");
    if (override != NULL) {
        char *end;
        unsigned long v = strtoul(override, &end, 10);
        if (*override != '\0' && *end == '\0' && v <= 86400000ul)
            ms = (unsigned)v;
    }
    log_fire("Triggering sleep injection \"%s\" (%ums)", f->entry->name, ms);
    sleep_ms(ms);
    fire_end(f);
}

static int do_exception(struct fire *f, int err)
{
    int rc;
    if (term_action(f, &rc))
        return rc;
    if (err == 0)
        err = ERRINJ_EINJECTED;
    /* A positive code is an errno (the libc points of liberrinj-preload.so): named as such. */
    const char *what = err > 0 && strerrorname_np(err) != NULL ? strerrorname_np(err) : errinj_strerror(err);
    log_fire("Triggering injection \"%s\" with exception \"%s\"", f->entry->name, what);
    fire_end(f);
    return err;
}

static void do_lambda(struct fire *f, errinj_lambda_fn fn, void *arg)
{
    int rc;
    if (term_action(f, &rc))
        return;
    log_fire("Triggering injection \"%s\"", f->entry->name);
    if (fn != NULL)
        fn(arg);
    fire_end(f);
}

static int do_handler(struct fire *f, errinj_handler_fn fn, void *arg)
{
    int rc;
    if (term_action(f, &rc))
        return rc;
    log_fire("Triggering injection \"%s\" with injection handler", f->entry->name);
    errinj_handler h = {.fire = *f, .read = f->msg_base};
    rc = fn != NULL ? fn(&h, arg) : 0;
    fire_end(f);
    return rc;
}

static bool do_enter(struct fire *f)
{
    int rc;
    if (term_action(f, &rc))
        return rc != 0;
    log_fire("Triggering injection \"%s\"", f->entry->name);
    fire_end(f);
    return true;
}

static int wait_handler(errinj_handler *h, void *arg)
{
    return errinj_handler_wait_for_message(h, *(const int *)arg);
}

void errinj__fire_sleep(struct errinj_site *site, unsigned ms)
{
    struct fire f;
    if (fire_site(site, &f))
        do_sleep(&f, ms);
}

int errinj__fire_exception(struct errinj_site *site, int err)
{
    struct fire f;
    return fire_site(site, &f) ? do_exception(&f, err) : 0;
}

void errinj__fire_lambda(struct errinj_site *site, errinj_lambda_fn fn, void *arg)
{
    struct fire f;
    if (fire_site(site, &f))
        do_lambda(&f, fn, arg);
}

int errinj__fire_handler(struct errinj_site *site, errinj_handler_fn fn, void *arg)
{
    struct fire f;
    return fire_site(site, &f) ? do_handler(&f, fn, arg) : 0;
}

int errinj__fire_wait(struct errinj_site *site, int timeout_ms)
{
    struct fire f;
    return fire_site(site, &f) ? do_handler(&f, wait_handler, &timeout_ms) : 0;
}

bool errinj__fire_enter(struct errinj_site *site)
{
    struct fire f;
    return fire_site(site, &f) && do_enter(&f);
}

int errinj__fire_exception_detail(struct errinj_site *site, int err, const char *detail)
{
    t_detail = detail;
    int rc = errinj__fire_exception(site, err);
    t_detail = NULL;
    return rc;
}

struct errinj__config *errinj__site_config(struct errinj_site *site)
{
    struct errinj__entry *e = __atomic_load_n(&site->active, __ATOMIC_ACQUIRE);
    if (e == NULL || !atomic_load_explicit(&e->enabled, memory_order_acquire))
        return NULL;
    /* The lock-free reader's protocol of fire_begin: a concurrent enable frees the config it
     * replaced only once no reader is between loading it and taking its reference. */
    struct errinj__reader *r = errinj__read_begin();
    struct errinj__config *cfg = errinj__config_ref(atomic_load_explicit(&e->cfg, memory_order_acquire));
    errinj__read_end(r);
    return cfg;
}

void errinj_inject_sleep(const char *name, unsigned ms)
{
    struct fire f;
    if (fire_name(name, ERRINJ_TYPE_SLEEP, &f))
        do_sleep(&f, ms);
}

int errinj_inject_exception(const char *name, int err)
{
    struct fire f;
    return fire_name(name, ERRINJ_TYPE_EXCEPTION, &f) ? do_exception(&f, err) : 0;
}

void errinj_inject_lambda(const char *name, errinj_lambda_fn fn, void *arg)
{
    struct fire f;
    if (fire_name(name, ERRINJ_TYPE_LAMBDA, &f))
        do_lambda(&f, fn, arg);
}

int errinj_inject_handler(const char *name, errinj_handler_fn fn, void *arg)
{
    struct fire f;
    return fire_name(name, ERRINJ_TYPE_HANDLER, &f) ? do_handler(&f, fn, arg) : 0;
}

int errinj_inject_wait_for_message(const char *name, int timeout_ms)
{
    struct fire f;
    return fire_name(name, ERRINJ_TYPE_HANDLER, &f) ? do_handler(&f, wait_handler, &timeout_ms) : 0;
}

bool errinj_inject_enter(const char *name)
{
    struct fire f;
    return fire_name(name, ERRINJ_TYPE_ENTER, &f) && do_enter(&f);
}

/* ---- inside a handler --------------------------------------------------------------------- */

int errinj_handler_wait_for_message(errinj_handler *h, int timeout_ms)
{
    if (h == NULL)
        return ERRINJ_EINVAL;
    struct errinj__entry *e = h->fire.entry;
    log_fire("%s: waiting for message", e->name);
    atomic_fetch_add(&e->waiters, 1);
    publish(&h->fire, ERRINJ__PHASE_WAITING);

    struct timespec deadline;
    if (timeout_ms >= 0) {
        int64_t at = errinj__now_mono_ns() + (int64_t)timeout_ms * 1000000;
        deadline = (struct timespec){.tv_sec = at / 1000000000, .tv_nsec = at % 1000000000};
    }
    enum { MESSAGE, DISABLED, TIMED_OUT } outcome;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (h->read < e->received) {
            h->read++;
            outcome = MESSAGE;
            break;
        }
        if (atomic_load_explicit(&e->generation, memory_order_relaxed) != h->fire.generation) {
            outcome = DISABLED;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&e->cv, &e->mu);
        } else if (pthread_cond_timedwait(&e->cv, &e->mu, &deadline) == ETIMEDOUT) {
            /* One last look: a message that raced with the deadline still counts. */
            if (h->read < e->received) {
                h->read++;
                outcome = MESSAGE;
            } else {
                outcome = atomic_load_explicit(&e->generation, memory_order_relaxed) != h->fire.generation
                              ? DISABLED
                              : TIMED_OUT;
            }
            break;
        }
    }
    atomic_fetch_sub(&e->waiters, 1);
    pthread_mutex_unlock(&e->mu);

    if (outcome == TIMED_OUT) {
        publish(&h->fire, ERRINJ__PHASE_TIMEOUT);
        log_fire("%s: timed out waiting for message", e->name);
        return ERRINJ_ETIMEDOUT;
    }
    publish(&h->fire, ERRINJ__PHASE_RELEASED);
    if (outcome == MESSAGE)
        log_fire("%s: message received", e->name);
    else
        log_fire("%s: released by disable", e->name);
    return 0;
}

bool errinj_handler_poll_for_message(errinj_handler *h)
{
    if (h == NULL)
        return false;
    struct errinj__entry *e = h->fire.entry;
    pthread_mutex_lock(&e->mu);
    bool got = h->read < e->received;
    if (got)
        h->read++;
    pthread_mutex_unlock(&e->mu);
    return got;
}

/* pause: parks as a wait for message without a time limit; a message or a disable releases it. */
static void park_until_message(struct fire *f)
{
    errinj_handler h = {.fire = *f, .read = f->msg_base};
    errinj_handler_wait_for_message(&h, ERRINJ_FOREVER);
}

const char *errinj_handler_get(const errinj_handler *h, const char *key)
{
    return h == NULL || key == NULL ? NULL : errinj__config_get(h->fire.cfg, key);
}

const char *errinj_handler_name(const errinj_handler *h)
{
    return h == NULL ? NULL : h->fire.entry->name;
}
