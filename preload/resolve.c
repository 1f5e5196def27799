/*
 * resolve.c - finding the real libc functions behind the wrappers.
 *
 * dlsym(RTLD_NEXT, name) gives the next definition after this library in the search order:
 * libc's, or an allocator the program links (redis-server's jemalloc), so memory allocated by the
 * program and freed through the wrappers always meets the same allocator. dlsym itself may
 * allocate (calloc for its error state) before malloc has been found: while resolving, the
 * allocation wrappers take memory from a static, zeroed arena instead, and free() leaves arena
 * blocks alone. Resolution runs once, from the first wrapped call or from the constructor,
 * whichever comes first (calls can come before the constructor: other libraries' constructors).
 * Until it has run, preload_fast is empty, so every wrapper takes its armed path, which resolves;
 * at its end it fills preload_fast, unless a libc point was enabled meanwhile (preload_arm() and
 * this run under one lock, so the table cannot be filled after it was emptied).
 */
#define _GNU_SOURCE
#include "preload.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

PRELOAD_HIDDEN struct preload_functions preload_real __attribute__((aligned(64)));
/* Aligned to a cache line: each line holds the eight pointers the table's order puts together. */
PRELOAD_HIDDEN struct preload_functions preload_fast __attribute__((aligned(64)));
PRELOAD_HIDDEN unsigned preload_armed;

static pthread_mutex_t g_resolve_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool g_resolved;
static atomic_bool g_resolving;

bool preload_resolving(void)
{
    return atomic_load_explicit(&g_resolving, memory_order_acquire);
}

static void *find(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (fn == NULL) {
        /* Nothing can work without it; say so without stdio, which may not be set up yet. */
        static const char msg[] = "liberrinj-preload.so: libc has no function ";
        syscall(SYS_write, 2, msg, sizeof(msg) - 1);
        syscall(SYS_write, 2, name, strlen(name));
        syscall(SYS_write, 2, "\n", 1);
    }
    return fn;
}

void preload_resolve(void)
{
    if (atomic_load_explicit(&g_resolved, memory_order_acquire))
        return;
    pthread_mutex_lock(&g_resolve_mu);
    if (!atomic_load_explicit(&g_resolved, memory_order_relaxed)) {
        atomic_store(&g_resolving, true);
        /* The allocator first: once it is known, dlsym's own allocations use it. Each pointer
         * is stored as soon as it is found, so a wrapper dlsym calls meanwhile can use it. */
#define PRELOAD_FIND(name, ret, params)                                                        \
    __atomic_store_n(&preload_real.name, (ret(*) params)find(#name), __ATOMIC_RELEASE);
        PRELOAD_REAL_FUNCTIONS(PRELOAD_FIND)
#undef PRELOAD_FIND
        atomic_store(&g_resolving, false);
        atomic_store_explicit(&g_resolved, true, memory_order_release);
        if (!__atomic_load_n(&preload_armed, __ATOMIC_RELAXED)) {
#define PRELOAD_PUBLISH(name, ret, params)                                                     \
    __atomic_store_n(&preload_fast.name, preload_real.name, __ATOMIC_RELEASE);
            PRELOAD_REAL_FUNCTIONS(PRELOAD_PUBLISH)
#undef PRELOAD_PUBLISH
        }
    }
    pthread_mutex_unlock(&g_resolve_mu);
}

void preload_arm(void)
{
    if (__atomic_load_n(&preload_armed, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&g_resolve_mu);
    __atomic_store_n(&preload_armed, 1u, __ATOMIC_SEQ_CST);
#define PRELOAD_EMPTY(name, ret, params) __atomic_store_n(&preload_fast.name, NULL, __ATOMIC_SEQ_CST);
    PRELOAD_REAL_FUNCTIONS(PRELOAD_EMPTY)
#undef PRELOAD_EMPTY
    pthread_mutex_unlock(&g_resolve_mu);
}

/* ---- the bootstrap arena --------------------------------------------------------------------- */

#define ARENA_ALIGN 16

PRELOAD_HIDDEN _Alignas(ARENA_ALIGN) unsigned char preload_arena[PRELOAD_ARENA_BYTES];
static atomic_size_t g_arena_used;

void *preload_arena_alloc(size_t size)
{
    /* Each block keeps its size in front of it, for realloc. */
    size_t need = ARENA_ALIGN + ((size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
    size_t at = atomic_fetch_add(&g_arena_used, need);
    if (size > PRELOAD_ARENA_BYTES || at + need > PRELOAD_ARENA_BYTES)
        return NULL;
    memcpy(preload_arena + at, &size, sizeof(size));
    return preload_arena + at + ARENA_ALIGN;
}

size_t preload_arena_size(const void *p)
{
    size_t size;
    memcpy(&size, (const unsigned char *)p - ARENA_ALIGN, sizeof(size));
    return size;
}
