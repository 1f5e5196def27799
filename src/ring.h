/*
 * ring.h - the ring between firing threads and the server's single consumer, and the records
 * it carries.
 *
 * ring.c owns the ring buffer and the pool of detail copies. Producers push under the one
 * short mutex that also orders seq (the events layer holds it: events.c attaches the ring and
 * pushes into it), never block otherwise, and wake the consumer only when it sleeps. When full,
 * events are counted as lost and reported with the next record. The consumer (the server
 * thread) drains with the functions below and needs no lock.
 */
#ifndef ERRINJ_RING_H
#define ERRINJ_RING_H

#include "params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct errinj__entry;

/* An event as it travels from the firing thread to the server: plain fields, a config ref. */
struct errinj__record {
    uint64_t seq;
    uint64_t lost_before;   /* events dropped just before this one because the ring was full */
    struct errinj__entry *entry;
    struct errinj__config *cfg;
    const char *file;
    int line;
    uint8_t type;
    uint8_t phase;
    unsigned shard;
    long thread;
    int64_t ts_ns;
    uint64_t enters;
    const char *detail;     /* JSON object text or NULL; in the ring, a copy the ring owns */
    uint64_t eval;
    uint8_t action; /* enum errinj__action */
};

struct errinj__ring;

/* ---- the consumer's side ------------------------------------------------------------------ */

/* Calls fn for each pending record in seq order; fn must unref rec->cfg and rec->entry (or keep
 * the entry's reference). Returns how many. */
size_t errinj__ring_drain(struct errinj__ring *ring, void (*fn)(struct errinj__record *rec, void *arg), void *arg);
/* The same for at most `max` records, none newer than seq last_seq: a consumer that stops takes
 * what was published before it, however fast firing threads refill the ring. */
size_t errinj__ring_drain_max(struct errinj__ring *ring, size_t max, uint64_t last_seq,
                              void (*fn)(struct errinj__record *rec, void *arg), void *arg);
/* Before the consumer sleeps: true if it may sleep (nothing pending); false means drain again. */
bool errinj__ring_prepare_sleep(struct errinj__ring *ring);
uint64_t errinj__ring_dropped(const struct errinj__ring *ring);
/* Returns a detail copy the ring made (a record it handed out) to its pool, or frees it. NULL ignored. */
void errinj__detail_free(const char *detail);

/* ---- the producers' side (events.c) ------------------------------------------------------- */

/* A ring of at least capacity records (a power of two) that wakes its consumer with wake(arg).
 * NULL when out of memory. Pair with errinj__ring_free(). */
struct errinj__ring *errinj__ring_new(size_t capacity, void (*wake)(void *), void *wake_arg);
/* Once no producer can reach the ring any more: waits for a wake in progress, drops what is
 * pending and frees it. */
void errinj__ring_free(struct errinj__ring *ring);
/* The ring's copy of a detail text (from the pool, so that a fire allocates nothing, or
 * malloc'd when the pool is used up or the text is long); NULL when out of memory. */
const char *errinj__detail_copy(const char *text);
/* With the producers' mutex held: pushes a copy of rec whose detail is `detail` (the ring's
 * copy, which the slot takes); false, and the loss counted, if the ring was full. */
bool errinj__ring_push_locked(struct errinj__ring *ring, const struct errinj__record *rec, const char *detail);
/* With the producers' mutex held, after a push: true when the consumer sleeps and this producer
 * is the one to wake it; it must then call errinj__ring_wake() after releasing the mutex. */
bool errinj__ring_claim_wake_locked(struct errinj__ring *ring);
/* Wakes the consumer (a system call, so outside the mutex) and ends the claim. */
void errinj__ring_wake(struct errinj__ring *ring);
/* With the producers' mutex held: the losses not yet reported with a record, taken, when the
 * ring is empty (they are then the newest seqs); 0 otherwise. */
uint64_t errinj__ring_take_lost_locked(struct errinj__ring *ring);

#endif /* ERRINJ_RING_H */
