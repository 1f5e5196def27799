/*
 * events.c - numbering events and handing them on.
 *
 * Every fire becomes a record with a process-wide seq. Two kinds of consumers get it:
 * in-process subscribers, called on the firing thread, and at most one ring, the server's,
 * drained by a single consumer thread. Ordering the ring is the only thing firing threads
 * share: seq is taken and the record copied into the ring under one short mutex, so the ring
 * holds records in seq order and the consumer never has to reorder or wait for stragglers.
 * Nothing in that section allocates, makes a syscall or depends on how many clients the
 * server has. The consumer is woken (one write to an eventfd, by the caller's wake function)
 * only when it announced that it was going to sleep.
 *
 * Subscribers are called under a read lock that errinj_unsubscribe() takes for writing: when
 * it returns, no call of the removed callback is running.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *const phase_names[] = {"hit", "waiting", "released", "timeout"};

const char *errinj__phase_name(enum errinj__phase phase)
{
    return (unsigned)phase < 4 ? phase_names[phase] : "unknown";
}

int64_t errinj__now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t errinj__now_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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

static long thread_id(void)
{
    if (t_tid == 0)
        t_tid = (long)syscall(SYS_gettid);
    return t_tid;
}

/* ---- the ring to the server ------------------------------------------------------------- */

struct errinj__ring {
    size_t mask;
    struct errinj__record *slots;
    _Atomic uint64_t head;   /* next slot to write; written under g_seq_mu */
    _Atomic uint64_t tail;   /* next slot to read; written by the consumer only */
    uint64_t lost_pending;   /* dropped since the last record pushed; under g_seq_mu */
    _Atomic uint64_t dropped;
    atomic_bool sleeping;
    atomic_uint wakers; /* publishers between leaving g_seq_mu and finishing their wake call */
    void (*wake)(void *);
    void *wake_arg;
};

static pthread_mutex_t g_seq_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_seq;
static _Atomic(struct errinj__ring *) g_ring;

struct errinj__ring *errinj__ring_attach(size_t capacity, void (*wake)(void *), void *wake_arg, uint64_t *seq_at_attach)
{
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    struct errinj__ring *ring = calloc(1, sizeof(*ring));
    if (ring == NULL)
        return NULL;
    ring->slots = calloc(cap, sizeof(*ring->slots));
    if (ring->slots == NULL) {
        free(ring);
        return NULL;
    }
    ring->mask = cap - 1;
    ring->wake = wake;
    ring->wake_arg = wake_arg;
    pthread_mutex_lock(&g_seq_mu);
    struct errinj__ring *expected = NULL;
    bool ok = atomic_compare_exchange_strong(&g_ring, &expected, ring);
    *seq_at_attach = atomic_load(&g_seq);
    pthread_mutex_unlock(&g_seq_mu);
    if (!ok) {
        free(ring->slots);
        free(ring);
        return NULL;
    }
    return ring;
}

static void drop_record(struct errinj__record *rec, void *arg)
{
    (void)arg;
    errinj__config_unref(rec->cfg);
}

void errinj__ring_detach(struct errinj__ring *ring)
{
    if (ring == NULL)
        return;
    pthread_mutex_lock(&g_seq_mu);
    atomic_store(&g_ring, NULL);
    pthread_mutex_unlock(&g_seq_mu);
    /* A publisher may still be waking the consumer through this ring: let it finish. */
    while (atomic_load(&ring->wakers) != 0)
        sched_yield();
    errinj__ring_drain(ring, drop_record, NULL);
    free(ring->slots);
    free(ring);
}

/* With g_seq_mu held. */
static void ring_push(struct errinj__ring *ring, const struct errinj__record *rec)
{
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
    if (head - tail > ring->mask) {
        ring->lost_pending++;
        atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
        return;
    }
    struct errinj__record *slot = &ring->slots[head & ring->mask];
    *slot = *rec;
    slot->cfg = errinj__config_ref(rec->cfg);
    slot->lost_before = ring->lost_pending;
    ring->lost_pending = 0;
    atomic_store_explicit(&ring->head, head + 1, memory_order_release);
}

size_t errinj__ring_drain(struct errinj__ring *ring, void (*fn)(struct errinj__record *rec, void *arg), void *arg)
{
    return errinj__ring_drain_max(ring, SIZE_MAX, fn, arg);
}

size_t errinj__ring_drain_max(struct errinj__ring *ring, size_t max,
                              void (*fn)(struct errinj__record *rec, void *arg), void *arg)
{
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (head - tail > max)
        head = tail + max;
    for (uint64_t i = tail; i < head; i++) {
        fn(&ring->slots[i & ring->mask], arg);
        /* Free each slot as soon as it is read, so producers see room early. */
        atomic_store_explicit(&ring->tail, i + 1, memory_order_release);
    }
    return (size_t)(head - tail);
}

bool errinj__ring_prepare_sleep(struct errinj__ring *ring)
{
    atomic_store(&ring->sleeping, true);
    if (atomic_load(&ring->head) != atomic_load(&ring->tail)) {
        atomic_store(&ring->sleeping, false);
        return false;
    }
    return true;
}

uint64_t errinj__ring_dropped(const struct errinj__ring *ring)
{
    return atomic_load_explicit(&ring->dropped, memory_order_relaxed);
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

struct errinj_subscription {
    errinj_event_fn cb;
    void *arg;
    struct errinj_subscription *next;
};

/* Writer-preferring, so that a stream of fires cannot starve errinj_unsubscribe(). */
static pthread_rwlock_t g_subs_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct errinj_subscription *g_subs;
static atomic_int g_sub_count;

int errinj_subscribe(errinj_event_fn cb, void *arg, errinj_subscription **sub)
{
    if (cb == NULL || sub == NULL)
        return ERRINJ_EINVAL;
    struct errinj_subscription *s = malloc(sizeof(*s));
    if (s == NULL)
        return ERRINJ_ENOMEM;
    s->cb = cb;
    s->arg = arg;
    pthread_rwlock_wrlock(&g_subs_lock);
    s->next = g_subs;
    g_subs = s;
    atomic_fetch_add(&g_sub_count, 1);
    pthread_rwlock_unlock(&g_subs_lock);
    *sub = s;
    return 0;
}

void errinj_unsubscribe(errinj_subscription *sub)
{
    if (sub == NULL)
        return;
    /* Taking the write lock waits for every callback running under the read lock. */
    pthread_rwlock_wrlock(&g_subs_lock);
    for (struct errinj_subscription **p = &g_subs; *p != NULL; p = &(*p)->next) {
        if (*p == sub) {
            *p = sub->next;
            atomic_fetch_sub(&g_sub_count, 1);
            break;
        }
    }
    pthread_rwlock_unlock(&g_subs_lock);
    free(sub);
}

void errinj__record_to_event(const struct errinj__record *rec, errinj_event *ev)
{
    *ev = (errinj_event){
        .seq = rec->seq,
        .injection = rec->entry->name,
        .type = errinj_type_name((errinj_type)rec->type),
        .phase = errinj__phase_name((enum errinj__phase)rec->phase),
        .shard = rec->shard,
        .thread = rec->thread,
        .ts_ns = rec->ts_ns,
        .enters = rec->enters,
        .parameters = rec->cfg->kv,
        .file = rec->file,
        .line = rec->line,
    };
}

void errinj__publish(struct errinj__record *rec)
{
    rec->shard = t_shard;
    rec->thread = thread_id();
    rec->ts_ns = errinj__now_real_ns();
    rec->lost_before = 0;
    struct errinj__ring *woken = NULL;
    if (atomic_load_explicit(&g_ring, memory_order_acquire) != NULL) {
        pthread_mutex_lock(&g_seq_mu);
        rec->seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
        struct errinj__ring *ring = atomic_load_explicit(&g_ring, memory_order_relaxed);
        if (ring != NULL) {
            ring_push(ring, rec);
            /* Publishing head and then reading `sleeping` must not be reordered (store then
             * load: x86 allows it), or this push and the consumer's prepare_sleep could each
             * miss the other and the event would wait for the next one. */
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load_explicit(&ring->sleeping, memory_order_relaxed) && atomic_exchange(&ring->sleeping, false)) {
                woken = ring;
                atomic_fetch_add(&ring->wakers, 1); /* keeps detach from freeing it */
            }
        }
        pthread_mutex_unlock(&g_seq_mu);
        /* Wake after unlocking: the wake is a system call, and other firing threads must not
         * wait it out. Only a sleeping consumer is woken, so a busy one costs no call at all. */
        if (woken != NULL) {
            woken->wake(woken->wake_arg);
            atomic_fetch_sub(&woken->wakers, 1);
        }
    } else {
        rec->seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
    }
    if (atomic_load_explicit(&g_sub_count, memory_order_relaxed) > 0) {
        errinj_event ev;
        errinj__record_to_event(rec, &ev);
        pthread_rwlock_rdlock(&g_subs_lock);
        for (struct errinj_subscription *s = g_subs; s != NULL; s = s->next)
            s->cb(&ev, s->arg);
        pthread_rwlock_unlock(&g_subs_lock);
    }
}

/* ---- fork ----------------------------------------------------------------------------------- */

static void before_fork(void)
{
    errinj__registry_lock_for_fork();
    pthread_mutex_lock(&g_seq_mu);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&g_seq_mu);
    errinj__registry_unlock_after_fork();
}

static void after_fork_in_child(void)
{
    /* The ring's consumer thread stayed in the parent: events of the child must not go there. */
    atomic_store(&g_ring, NULL);
    pthread_mutex_unlock(&g_seq_mu);
    /* Locks that threads of the parent may have held at fork (a callback or a log call running,
     * a handler parked): none of those threads exists here, so start them afresh. */
    g_subs_lock = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    errinj__log_reset_in_child();
    errinj__registry_reset_in_child();
    errinj__registry_unlock_after_fork();
    errinj__server_forget_in_child();
    /* The child's seqs go their own way from here: it is a new instance. */
    make_instance_id();
    g_instance_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    pthread_once(&g_instance_once, make_instance_id);
}

__attribute__((constructor)) static void install_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* ---- library diagnostics ------------------------------------------------------------------ */

void errinj__log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
