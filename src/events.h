/*
 * events.h - numbering events and handing them on: seq, shards, thread ids, subscribers.
 *
 * events.c owns the process-wide seq and the mutex that orders it, the calling thread's shard
 * and OS thread id, the in-process subscribers (errinj_subscribe()), the attachment of the one
 * ring (ring.h) the server drains, and the wait an abort makes for its hit to reach the streams.
 */
#ifndef ERRINJ_EVENTS_H
#define ERRINJ_EVENTS_H

#include "errinj.h"
#include "names.h"
#include "ring.h"

#include <stdint.h>

/* Numbers the record, fills shard/thread/time, passes it to the ring and to subscribers. */
void errinj__publish(struct errinj__record *rec);
/* Fills ev from rec (ev points into rec and its config). */
void errinj__record_to_event(const struct errinj__record *rec, errinj_event *ev);
/* The last seq handed out. */
uint64_t errinj__seq_last(void);
/* A random id of this process's seq space (new after fork): lets clients tell a restart. */
const char *errinj__instance_id(void);
/* Highest shard id + 1 seen by errinj_shard_set (at least 1). */
unsigned errinj__shards_seen(void);

/* Attaches the one ring; *seq_at_attach gets the last seq published before it. NULL if one is
 * attached or when out of memory. Pair with errinj__ring_detach(). */
struct errinj__ring *errinj__ring_attach(size_t capacity, void (*wake)(void *), void *wake_arg, uint64_t *seq_at_attach);
/* Detaches the ring (no event reaches it after this returns) and frees it. NULL ignored. */
void errinj__ring_detach(struct errinj__ring *ring);
/* With the ring drained: takes the count of losses not yet reported with a record (the newest
 * seqs, ending at *last_lost). Takes the publishers' mutex: call only when dropped() changed. */
uint64_t errinj__ring_take_lost_tail(struct errinj__ring *ring, uint64_t *last_lost);

/*
 * Waits until every connected SSE stream has been handed the event `seq`, at most timeout_ms
 * (for abort: the hit must reach the streams before the process dies). Returns at once when
 * no server runs. The server registers how to wait with errinj__set_delivery_wait(); fn
 * returns when delivered or at deadline_ns (CLOCK_MONOTONIC).
 */
void errinj__wait_delivered(uint64_t seq, int timeout_ms);
void errinj__set_delivery_wait(void (*fn)(void *arg, uint64_t seq, int64_t deadline_ns), void *arg);

#endif /* ERRINJ_EVENTS_H */
