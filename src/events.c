/*
 * events.c - numbering events and handing them on.
 *
 * Every fire becomes a record with a process-wide seq. Two kinds of consumers get it:
 * in-process subscribers, called on the firing thread, and at most one ring (ring.c), the server's,
 * drained by a single consumer thread. Ordering the ring is the only thing firing threads
 * share: seq is taken and the record copied into the ring under one short mutex, so the ring
 * holds records in seq order and the consumer never has to reorder or wait for stragglers.
 * Nothing in that section allocates, makes a syscall or depends on how many clients the
 * server has. The consumer is woken (one write to an eventfd, by the caller's wake function)
 * only when it announced that it was going to sleep.
 *
 * Subscribers are called on the firing thread with no lock held (see notify_subscribers);
 * errinj_unsubscribe() returns once no call of its callback runs.
 */
#define _GNU_SOURCE
#include "events.h"

#include "lifecycle.h"
#include "registry.h"
#include "util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- shards and threads --------------------------------------------------------------- */

static _Thread_local unsigned t_shard;
static _Thread_local long t_tid;
static atomic_uint g_max_shard;

void errinj_shard_set(unsigned id)
{
    t_shard = id;
    unsigned seen = atomic_load_explicit(&g_max_shard, memory_order_relaxed);
    while (id > seen && !atomic_compare_exchange_weak(&g_max_shard, &seen, id))
        ;
}

unsigned errinj_shard(void)
{
    return t_shard;
}

unsigned errinj__shards_seen(void)
{
    return atomic_load(&g_max_shard) + 1;
}

/*
 * The OS thread id without a system call: a fire must make none beyond a futex and the server's
 * wake, or a seccomp sandbox that forbids gettid kills the process on its first fire. glibc keeps
 * each thread's id in its thread descriptor (pthread_self()) and publishes the field's offset for
 * debuggers as _thread_db_pthread_tid ({bits, count, offset}). It is read once at load and
 * checked against gettid; without it (another libc) the id comes from gettid, once per thread.
 */
static long g_tid_offset = -1;

__attribute__((constructor)) static void find_tid_offset(void)
{
    const uint32_t *desc = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
    if (desc == NULL || desc[0] != 32 || desc[2] > 4096)
        return;
    pid_t tid;
    memcpy(&tid, (const char *)pthread_self() + desc[2], sizeof(tid));
    if ((long)tid == (long)syscall(SYS_gettid))
        g_tid_offset = (long)desc[2];
}

static long thread_id(void)
{
    if (t_tid == 0) {
        pid_t tid;
        if (g_tid_offset >= 0 && (memcpy(&tid, (const char *)pthread_self() + g_tid_offset, sizeof(tid)), tid > 0))
            t_tid = tid;
        else
            t_tid = (long)syscall(SYS_gettid);
    }
    return t_tid;
}

/* ---- seq and the ring to the server ------------------------------------------------ */

static pthread_mutex_t g_seq_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_seq;
static _Atomic(struct errinj__ring *) g_ring;

struct errinj__ring *errinj__ring_attach(size_t capacity, void (*wake)(void *), void *wake_arg, uint64_t *seq_at_attach)
{
    struct errinj__ring *ring = errinj__ring_new(capacity, wake, wake_arg);
    if (ring == NULL)
        return NULL;
    pthread_mutex_lock(&g_seq_mu);
    struct errinj__ring *expected = NULL;
    bool ok = atomic_compare_exchange_strong(&g_ring, &expected, ring);
    *seq_at_attach = atomic_load(&g_seq);
    pthread_mutex_unlock(&g_seq_mu);
    if (!ok) {
        errinj__ring_free(ring);
        return NULL;
    }
    return ring;
}

void errinj__ring_detach(struct errinj__ring *ring)
{
    if (ring == NULL)
        return;
    pthread_mutex_lock(&g_seq_mu);
    atomic_store(&g_ring, NULL);
    pthread_mutex_unlock(&g_seq_mu);
    errinj__ring_free(ring);
}

uint64_t errinj__ring_take_lost_tail(struct errinj__ring *ring, uint64_t *last_lost)
{
    pthread_mutex_lock(&g_seq_mu);
    uint64_t lost = errinj__ring_take_lost_locked(ring);
    if (lost > 0)
        *last_lost = atomic_load(&g_seq);
    pthread_mutex_unlock(&g_seq_mu);
    return lost;
}

uint64_t errinj__seq_last(void)
{
    return atomic_load(&g_seq);
}

static pthread_once_t g_instance_once = PTHREAD_ONCE_INIT;
static char g_instance[17];

static void make_instance_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
        id = (uint64_t)errinj__now_real_ns() ^ ((uint64_t)getpid() << 32);
    snprintf(g_instance, sizeof(g_instance), "%016llx", (unsigned long long)id);
}

const char *errinj__instance_id(void)
{
    pthread_once(&g_instance_once, make_instance_id);
    return g_instance;
}

/* ---- subscribers ------------------------------------------------------------------------ */

/*
 * Subscribers without a lock on the firing path. The subscriptions form an immutable snapshot
 * array, replaced whole (under g_subs_mu) by subscribe and unsubscribe. A fire counts itself
 * among the snapshot's readers only while it pins each subscription (its `running` count), then
 * calls the callbacks with nothing held: a slow callback delays its own thread only, never
 * another thread's fire. An old snapshot is freed once no fire is reading it, and a subscription
 * once no call of it runs, which is exactly what errinj_unsubscribe() waits for.
 */
#define SUBSCRIBERS_MAX 64

struct errinj_subscription {
    errinj_event_fn cb;
    void *arg;
    atomic_uint running; /* calls pinned or in progress */
    atomic_bool removed; /* unsubscribing: pinned calls are skipped */
};

struct snapshot {
    size_t count;
    struct errinj_subscription *subs[];
};

static pthread_mutex_t g_subs_mu = PTHREAD_MUTEX_INITIALIZER;
/* An unsubscribe sleeps here until its callback's last pinned call ends: while any unsubscribe
 * waits (g_unsubscribing > 0), a call that brings a `running` count to 0 broadcasts. */
static pthread_mutex_t g_unsub_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_unsub_cv = PTHREAD_COND_INITIALIZER;
static atomic_uint g_unsubscribing;
static _Atomic(struct snapshot *) g_snapshot;
static atomic_uint g_snapshot_readers;
static atomic_int g_sub_count;

/* Publishes a new snapshot and frees the old one once no fire reads it; g_subs_mu held. */
static void snapshot_replace_locked(struct snapshot *next)
{
    struct snapshot *old = atomic_exchange(&g_snapshot, next);
    atomic_store(&g_sub_count, next != NULL ? (int)next->count : 0);
    while (atomic_load(&g_snapshot_readers) != 0)
        sched_yield();
    free(old);
}

/* A copy of the current snapshot with `add` appended and `drop` left out; g_subs_mu held. */
static struct snapshot *snapshot_edit_locked(struct errinj_subscription *add, struct errinj_subscription *drop)
{
    struct snapshot *cur = atomic_load(&g_snapshot);
    size_t n = cur != NULL ? cur->count : 0;
    struct snapshot *next = malloc(sizeof(*next) + (n + 1) * sizeof(next->subs[0]));
    if (next == NULL)
        return NULL;
    next->count = 0;
    for (size_t i = 0; i < n; i++)
        if (cur->subs[i] != drop)
            next->subs[next->count++] = cur->subs[i];
    if (add != NULL)
        next->subs[next->count++] = add;
    return next;
}

int errinj_subscribe(errinj_event_fn cb, void *arg, errinj_subscription **sub)
{
    if (cb == NULL || sub == NULL)
        return ERRINJ_EINVAL;
    struct errinj_subscription *s = malloc(sizeof(*s));
    if (s == NULL)
        return ERRINJ_ENOMEM;
    s->cb = cb;
    s->arg = arg;
    atomic_init(&s->running, 0);
    atomic_init(&s->removed, false);
    pthread_mutex_lock(&g_subs_mu);
    struct snapshot *cur = atomic_load(&g_snapshot);
    struct snapshot *next = cur != NULL && cur->count >= SUBSCRIBERS_MAX ? NULL : snapshot_edit_locked(s, NULL);
    if (next == NULL) {
        pthread_mutex_unlock(&g_subs_mu);
        free(s);
        return ERRINJ_ENOMEM;
    }
    snapshot_replace_locked(next);
    pthread_mutex_unlock(&g_subs_mu);
    *sub = s;
    return 0;
}

void errinj_unsubscribe(errinj_subscription *sub)
{
    if (sub == NULL)
        return;
    atomic_store(&sub->removed, true);
    pthread_mutex_lock(&g_subs_mu);
    struct snapshot *next = snapshot_edit_locked(NULL, sub);
    while (next == NULL) {
        /* Out of memory for the new list: wait for some rather than leave a freed callback in it. */
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
        next = snapshot_edit_locked(NULL, sub);
    }
    snapshot_replace_locked(next);
    pthread_mutex_unlock(&g_subs_mu);
    /* No fire can pin it any more; wait for the calls that did. Only this callback's calls.
     * g_unsubscribing is raised before the check, so a call whose count drop comes after the
     * check sees it and broadcasts under the mutex this thread holds until it sleeps. */
    atomic_fetch_add(&g_unsubscribing, 1);
    pthread_mutex_lock(&g_unsub_mu);
    while (atomic_load(&sub->running) != 0)
        pthread_cond_wait(&g_unsub_cv, &g_unsub_mu);
    pthread_mutex_unlock(&g_unsub_mu);
    atomic_fetch_sub(&g_unsubscribing, 1);
    free(sub);
}

/* Calls every subscriber's callback for ev, on this thread, holding no lock. */
static void notify_subscribers(const errinj_event *ev)
{
    struct errinj_subscription *pinned[SUBSCRIBERS_MAX];
    size_t n = 0;
    atomic_fetch_add(&g_snapshot_readers, 1);
    struct snapshot *snap = atomic_load(&g_snapshot);
    for (size_t i = 0; snap != NULL && i < snap->count; i++) {
        atomic_fetch_add(&snap->subs[i]->running, 1);
        pinned[n++] = snap->subs[i];
    }
    atomic_fetch_sub(&g_snapshot_readers, 1);
    for (size_t i = 0; i < n; i++) {
        if (!atomic_load(&pinned[i]->removed))
            pinned[i]->cb(ev, pinned[i]->arg);
        /* After the drop the subscription may be freed: only globals are read from here on. */
        if (atomic_fetch_sub(&pinned[i]->running, 1) == 1 && atomic_load(&g_unsubscribing) != 0) {
            pthread_mutex_lock(&g_unsub_mu);
            pthread_cond_broadcast(&g_unsub_cv);
            pthread_mutex_unlock(&g_unsub_mu);
        }
    }
}

void errinj__record_to_event(const struct errinj__record *rec, errinj_event *ev)
{
    *ev = (errinj_event){
        .seq = rec->seq,
        .injection = errinj__entry_name(rec->entry),
        .type = errinj_type_name((errinj_type)rec->type),
        .phase = errinj__phase_name((enum errinj__phase)rec->phase),
        .shard = rec->shard,
        .thread = rec->thread,
        .ts_ns = rec->ts_ns,
        .enters = rec->enters,
        .parameters = rec->cfg->kv,
        .file = rec->file,
        .line = rec->line,
        .detail = rec->detail,
        .action = errinj__action_name((enum errinj__action)rec->action),
        .eval = rec->eval,
    };
}

/* ---- delivery to the streams, for abort ------------------------------------------------------ */

static pthread_mutex_t g_delivery_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*g_delivery_fn)(void *arg, uint64_t seq, int64_t deadline_ns);
static void *g_delivery_arg;

void errinj__set_delivery_wait(void (*fn)(void *arg, uint64_t seq, int64_t deadline_ns), void *arg)
{
    pthread_mutex_lock(&g_delivery_mu);
    g_delivery_fn = fn;
    g_delivery_arg = arg;
    pthread_mutex_unlock(&g_delivery_mu);
}

void errinj__wait_delivered(uint64_t seq, int timeout_ms)
{
    /* Held across the wait, so the server cannot be stopped and freed under it: the caller is
     * about to abort the process, and a stop waits at most timeout_ms. */
    int64_t deadline = errinj__now_mono_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&g_delivery_mu);
    if (g_delivery_fn != NULL)
        g_delivery_fn(g_delivery_arg, seq, deadline);
    pthread_mutex_unlock(&g_delivery_mu);
}

void errinj__publish(struct errinj__record *rec)
{
    rec->shard = t_shard;
    rec->thread = thread_id();
    rec->ts_ns = errinj__now_real_ns();
    rec->lost_before = 0;
    struct errinj__ring *woken = NULL;
    if (atomic_load_explicit(&g_ring, memory_order_acquire) != NULL) {
        /* The ring's copy of the detail is made before the lock: nothing under it allocates. */
        const char *detail = rec->detail != NULL ? errinj__detail_copy(rec->detail) : NULL;
        pthread_mutex_lock(&g_seq_mu);
        rec->seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
        struct errinj__ring *ring = atomic_load_explicit(&g_ring, memory_order_relaxed);
        if (ring != NULL && errinj__ring_push_locked(ring, rec, detail))
            detail = NULL;
        if (ring != NULL && errinj__ring_claim_wake_locked(ring))
            woken = ring;
        pthread_mutex_unlock(&g_seq_mu);
        if (detail != NULL)
            errinj__detail_free(detail); /* not pushed: the ring was full or went away */
        /* Wake after unlocking: the wake is a system call, and other firing threads must not
         * wait it out. Only a sleeping consumer is woken, so a busy one costs no call at all. */
        if (woken != NULL)
            errinj__ring_wake(woken);
    } else {
        rec->seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
    }
    if (atomic_load_explicit(&g_sub_count, memory_order_relaxed) > 0) {
        errinj_event ev;
        errinj__record_to_event(rec, &ev);
        notify_subscribers(&ev);
    }
}

/* ---- fork ----------------------------------------------------------------------------------- */

/* The seq mutex is taken before fork() and released on both sides. In the child the ring is
 * detached (its consumer stayed in the parent), the subscribers' and the delivery wait's locks
 * start anew, the thread id is read again and the child gets an instance id of its own. */
static void events_fork_prepare(void)
{
    pthread_mutex_lock(&g_seq_mu);
}

static void events_fork_parent(void)
{
    pthread_mutex_unlock(&g_seq_mu);
}

static void events_fork_child(void)
{
    /* The ring's consumer thread stayed in the parent: events of the child must not go there
     * (the ring's records are abandoned with it: errinj__ring_fork_child()). */
    atomic_store(&g_ring, NULL);
    pthread_mutex_unlock(&g_seq_mu);
    /* Locks that threads of the parent may have held at fork (a callback running, an abort
     * waiting for delivery): none of those threads exists here, so start them afresh. */
    g_subs_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    g_unsub_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    g_unsub_cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    atomic_store(&g_unsubscribing, 0);
    atomic_store(&g_snapshot_readers, 0);
    struct snapshot *snap = atomic_load(&g_snapshot);
    for (size_t i = 0; snap != NULL && i < snap->count; i++)
        atomic_store(&snap->subs[i]->running, 0);
    /* The forking thread is the child's only thread, with an id of its own. */
    t_tid = 0;
    /* The server (and so its way to wait for delivery) stayed in the parent. */
    g_delivery_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    g_delivery_fn = NULL;
    /* The child's seqs go their own way from here: it is a new instance. */
    make_instance_id();
    g_instance_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    pthread_once(&g_instance_once, make_instance_id);
}

__attribute__((constructor)) static void events_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {events_fork_prepare, events_fork_parent, events_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_EVENTS, &hooks);
}
