/*
 * ring.c - the ring buffer between firing threads and the server thread, and its detail pool.
 *
 * Producers are serialised by the events layer's seq mutex (the ring holds records in seq
 * order, so the consumer never reorders or waits for stragglers); the consumer is a single
 * thread. Nothing a producer does here allocates, makes a system call or depends on how many
 * clients the server has. The consumer is woken (one write to an eventfd, by the wake function
 * it gave) only when it announced that it was going to sleep.
 */
#include "ring.h"

#include "lifecycle.h"
#include "registry.h" /* a record's reference to its entry */

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- detail texts ------------------------------------------------------------------------- */

/*
 * The ring keeps its own copy of an event's detail until the server thread has written the
 * frame. Copies come from a fixed pool of slots, taken and returned with one atomic operation,
 * so that a fire allocates nothing: a fire from inside a malloc wrapper must not call malloc.
 * Only a detail longer than a slot, or one made while 256 are still undelivered, is copied with
 * malloc.
 */
#define DETAIL_SLOTS 256
#define DETAIL_SLOT_BYTES 512

static char g_detail_pool[DETAIL_SLOTS][DETAIL_SLOT_BYTES];
static _Atomic uint64_t g_detail_used[DETAIL_SLOTS / 64];

const char *errinj__detail_copy(const char *text)
{
    size_t len = strlen(text) + 1;
    for (size_t w = 0; len <= DETAIL_SLOT_BYTES && w < DETAIL_SLOTS / 64; w++) {
        uint64_t used = atomic_load_explicit(&g_detail_used[w], memory_order_relaxed);
        while (used != UINT64_MAX) {
            unsigned bit = (unsigned)__builtin_ctzll(~used);
            if (atomic_compare_exchange_weak(&g_detail_used[w], &used, used | (1ull << bit))) {
                char *slot = g_detail_pool[w * 64 + bit];
                memcpy(slot, text, len);
                return slot;
            }
        }
    }
    return strdup(text); /* NULL when out of memory: the event then goes without its detail */
}

void errinj__detail_free(const char *detail)
{
    uintptr_t p = (uintptr_t)detail, base = (uintptr_t)g_detail_pool;
    if (p >= base && p < base + sizeof(g_detail_pool)) {
        size_t slot = (p - base) / DETAIL_SLOT_BYTES;
        atomic_fetch_and(&g_detail_used[slot / 64], ~(1ull << (slot % 64)));
    } else {
        free((void *)detail);
    }
}

/* In a fork()ed child: the records the parent's ring held are gone with its consumer, so every
 * detail copy is free again. */
static void ring_fork_child(void)
{
    for (size_t w = 0; w < DETAIL_SLOTS / 64; w++)
        atomic_store(&g_detail_used[w], 0);
}

__attribute__((constructor)) static void ring_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {NULL, NULL, ring_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_RING, &hooks);
}

/* ---- the ring ------------------------------------------------------------------------------ */

struct errinj__ring {
    size_t mask;
    struct errinj__record *slots;
    _Atomic uint64_t head;   /* next slot to write; written under the producers' mutex */
    _Atomic uint64_t tail;   /* next slot to read; written by the consumer only */
    uint64_t lost_pending;   /* dropped since the last record pushed; under the producers' mutex */
    _Atomic uint64_t dropped;
    atomic_bool sleeping;
    atomic_uint wakers; /* producers between claiming a wake and finishing their wake call */
    void (*wake)(void *);
    void *wake_arg;
};

struct errinj__ring *errinj__ring_new(size_t capacity, void (*wake)(void *), void *wake_arg)
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
    return ring;
}

static void drop_record(struct errinj__record *rec, void *arg)
{
    (void)arg;
    errinj__config_unref(rec->cfg);
    errinj__entry_unref(rec->entry);
    errinj__detail_free(rec->detail);
}

void errinj__ring_free(struct errinj__ring *ring)
{
    if (ring == NULL)
        return;
    /* A producer may still be waking the consumer through this ring: let it finish. */
    while (atomic_load(&ring->wakers) != 0)
        sched_yield();
    errinj__ring_drain(ring, drop_record, NULL);
    free(ring->slots);
    free(ring);
}

bool errinj__ring_push_locked(struct errinj__ring *ring, const struct errinj__record *rec, const char *detail)
{
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
    if (head - tail > ring->mask) {
        ring->lost_pending++;
        atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
        return false;
    }
    struct errinj__record *slot = &ring->slots[head & ring->mask];
    *slot = *rec;
    slot->cfg = errinj__config_ref(rec->cfg);
    errinj__entry_ref(rec->entry); /* the consumer (the server's history) keeps the name */
    slot->detail = detail;
    slot->lost_before = ring->lost_pending;
    ring->lost_pending = 0;
    atomic_store_explicit(&ring->head, head + 1, memory_order_release);
    return true;
}

bool errinj__ring_claim_wake_locked(struct errinj__ring *ring)
{
    /* Publishing head and then reading `sleeping` must not be reordered (store then load: x86
     * allows it), or this push and the consumer's prepare_sleep could each miss the other and
     * the event would wait for the next one. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&ring->sleeping, memory_order_relaxed) && atomic_exchange(&ring->sleeping, false)) {
        atomic_fetch_add(&ring->wakers, 1); /* keeps errinj__ring_free() from freeing it */
        return true;
    }
    return false;
}

void errinj__ring_wake(struct errinj__ring *ring)
{
    ring->wake(ring->wake_arg);
    atomic_fetch_sub(&ring->wakers, 1);
}

uint64_t errinj__ring_take_lost_locked(struct errinj__ring *ring)
{
    /* Losses are reported with the next record pushed; when none comes, the consumer asks for
     * them so that the last events dropped are reported too. Under the producers' mutex every
     * seq published is either in the ring or counted in lost_pending, so an empty ring means
     * the pending losses are the newest seqs. */
    uint64_t lost = 0;
    if (ring->lost_pending > 0 && atomic_load(&ring->head) == atomic_load(&ring->tail)) {
        lost = ring->lost_pending;
        ring->lost_pending = 0;
    }
    return lost;
}

size_t errinj__ring_drain(struct errinj__ring *ring, void (*fn)(struct errinj__record *rec, void *arg), void *arg)
{
    return errinj__ring_drain_max(ring, SIZE_MAX, UINT64_MAX, fn, arg);
}

size_t errinj__ring_drain_max(struct errinj__ring *ring, size_t max, uint64_t last_seq,
                              void (*fn)(struct errinj__record *rec, void *arg), void *arg)
{
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (head - tail > max)
        head = tail + max;
    uint64_t i = tail;
    /* Records are in seq order: the first one past last_seq ends the drain. */
    for (; i < head && ring->slots[i & ring->mask].seq <= last_seq; i++) {
        fn(&ring->slots[i & ring->mask], arg);
        /* Free each slot as soon as it is read, so producers see room early. */
        atomic_store_explicit(&ring->tail, i + 1, memory_order_release);
    }
    return (size_t)(i - tail);
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
