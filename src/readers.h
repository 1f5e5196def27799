/*
 * readers.h - grace periods for the lock-free readers of an injection's config.
 *
 * A firing thread reads the config of an enabled injection without a lock, and an enable may
 * replace that config at the same moment. Before freeing the config it replaced, the enable
 * waits until every thread that might still be reading it has left its read window.
 *
 * The fire is the hot side and an enable the rare one, so the cost sits with the enable: each
 * thread owns a slot whose sequence number is odd while it reads; entering and leaving are
 * plain stores to its own slot (no read-modify-write, no shared cache line). An enable makes
 * the other threads' stores visible with membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED), then
 * waits for every slot it saw odd to move on. Where membarrier is not available, readers pay
 * for a full fence instead.
 *
 * Owns the slots, their list and the barrier; knows nothing of entries or configs.
 */
#ifndef ERRINJ_READERS_H
#define ERRINJ_READERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct errinj__reader {
    _Atomic uint64_t seq;          /* odd while its thread reads */
    atomic_bool in_use;            /* false once its thread exited: the slot may be reused */
    struct errinj__reader *next;   /* the list of every slot, never shortened */
};

/* initial-exec: a fire reads it without a call to __tls_get_addr (the library is loaded with
 * the program, or preloaded; glibc keeps room in the static TLS block for a dlopen()ed one). */
extern _Thread_local struct errinj__reader *errinj__t_reader
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern atomic_bool errinj__readers_asymmetric;
/* Readers in a window without a slot of their own (out of memory for one): a shared count. */
extern atomic_uint errinj__readers_without_slot;

/* The calling thread's slot, registering it on first use. NULL only when out of memory. */
struct errinj__reader *errinj__reader_register(void);

/* Enters a read window: loads made after it return values no older than a concurrent
 * errinj__readers_synchronize() waits for. Pair with errinj__read_end(). */
static inline struct errinj__reader *errinj__read_begin(void)
{
    struct errinj__reader *r = errinj__t_reader;
    if (__builtin_expect(r == NULL, 0) && (r = errinj__reader_register()) == NULL) {
        atomic_fetch_add(&errinj__readers_without_slot, 1); /* seq_cst: a full fence */
        return NULL;
    }
    uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
    if (__builtin_expect(s & 1, 0)) {
        /* A window inside a window (a point fired from a signal handler): the outer one must
         * stay open as the writer sees it, so this one counts in the shared way. */
        atomic_fetch_add(&errinj__readers_without_slot, 1);
        return NULL;
    }
    atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
    if (atomic_load_explicit(&errinj__readers_asymmetric, memory_order_relaxed))
        atomic_signal_fence(memory_order_seq_cst); /* the writer's membarrier() is the other half */
    else
        atomic_thread_fence(memory_order_seq_cst);
    return r;
}

/* Leaves the window: everything read in it may be freed after this. */
static inline void errinj__read_end(struct errinj__reader *r)
{
    if (r != NULL)
        atomic_store_explicit(&r->seq, atomic_load_explicit(&r->seq, memory_order_relaxed) + 1,
                              memory_order_release);
    else
        atomic_fetch_sub_explicit(&errinj__readers_without_slot, 1, memory_order_release);
}

/* Returns once every read window that was open when it was called has closed. Call after
 * unpublishing what is to be freed. Makes a system call (membarrier); never from a fire. */
void errinj__readers_synchronize(void);

#endif /* ERRINJ_READERS_H */
