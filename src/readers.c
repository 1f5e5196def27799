/*
 * readers.c - per-thread read windows and the grace period an enable waits for.
 *
 * Each thread that fires gets a slot the first time (a short lock, once per thread; the
 * first 1024 slots are static, later ones allocated); the slot goes back to a free list when the thread exits (a pthread key destructor)
 * and is reused by a later thread, so the list is as long as the most threads that ever fired
 * at once. The slot's sequence number is odd while the thread is inside a read window.
 *
 * errinj__readers_synchronize() is Dekker's handshake made asymmetric: the reader stores its
 * odd sequence, then loads the shared pointer with only a compiler barrier between; the writer
 * stores the new pointer, then runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which makes
 * every thread of the process pass a full memory barrier, and only then reads the sequences.
 * So either the writer sees the reader's odd sequence and waits for it, or the reader's load
 * sees the new pointer. The system call is the enable's; a fire makes none.
 */
#define _GNU_SOURCE
#include "readers.h"

#include "lifecycle.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

_Thread_local struct errinj__reader *errinj__t_reader __attribute__((tls_model("initial-exec"), visibility("hidden")));
atomic_bool errinj__readers_asymmetric;
atomic_uint errinj__readers_without_slot;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct errinj__reader *) g_slots;
/* The first slots come from here, so a thread's first fire allocates nothing (and makes no
 * brk or mmap call); only past this many threads at once is a slot allocated. */
#define STATIC_SLOTS 1024
static struct errinj__reader g_static_slots[STATIC_SLOTS];
static unsigned g_static_used; /* under g_mu */
static pthread_key_t g_key;
static bool g_key_ok;

static int membarrier(int cmd)
{
    return (int)syscall(SYS_membarrier, cmd, 0, 0);
}

static void release_slot(void *p)
{
    struct errinj__reader *r = p;
    /* The thread is leaving: it reads nothing any more. */
    atomic_store_explicit(&r->in_use, false, memory_order_release);
}

__attribute__((constructor)) static void readers_init(void)
{
    g_key_ok = pthread_key_create(&g_key, release_slot) == 0;
    /* Registered once for the process, at load: expedited barriers need it, and it is not a
     * call a firing thread should make (a seccomp filter may not allow it there). */
    int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
        atomic_store(&errinj__readers_asymmetric, true);
}

struct errinj__reader *errinj__reader_register(void)
{
    pthread_mutex_lock(&g_mu);
    struct errinj__reader *r = atomic_load_explicit(&g_slots, memory_order_relaxed);
    while (r != NULL && atomic_load_explicit(&r->in_use, memory_order_acquire))
        r = r->next;
    if (r == NULL) {
        r = g_static_used < STATIC_SLOTS ? &g_static_slots[g_static_used++] : calloc(1, sizeof(*r));
        if (r != NULL) {
            r->next = atomic_load_explicit(&g_slots, memory_order_relaxed);
            atomic_store_explicit(&g_slots, r, memory_order_release);
        }
    }
    if (r != NULL) {
        /* A reused slot's sequence is even: its last thread left its windows before exiting. */
        atomic_store_explicit(&r->in_use, true, memory_order_relaxed);
        if (g_key_ok)
            pthread_setspecific(g_key, r);
    }
    pthread_mutex_unlock(&g_mu);
    errinj__t_reader = r;
    return r;
}

void errinj__readers_synchronize(void)
{
    if (!atomic_load(&errinj__readers_asymmetric) || membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
        atomic_thread_fence(memory_order_seq_cst); /* the readers fence for themselves then */
    for (struct errinj__reader *r = atomic_load_explicit(&g_slots, memory_order_acquire); r != NULL; r = r->next) {
        uint64_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
        if ((s & 1) == 0)
            continue;
        /* Inside a window that may have read the old value: wait until it has moved on. The
         * window is a few loads (or a term's short scan), never an action. */
        while (atomic_load_explicit(&r->seq, memory_order_acquire) == s)
            sched_yield();
    }
    while (atomic_load_explicit(&errinj__readers_without_slot, memory_order_acquire) != 0)
        sched_yield();
}

/* In a fork()ed child: only the calling thread exists; every other slot is free. */
static void readers_fork_child(void)
{
    g_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    /* Threads of the parent do not exist here; a window they had open never closes. */
    for (struct errinj__reader *r = atomic_load(&g_slots); r != NULL; r = r->next) {
        if (r != errinj__t_reader) {
            atomic_store(&r->seq, 0);
            atomic_store(&r->in_use, false);
        }
    }
    atomic_store(&errinj__readers_without_slot, 0);
}

__attribute__((constructor)) static void readers_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {NULL, NULL, readers_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_READERS, &hooks);
}
