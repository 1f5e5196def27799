/*
 * lifecycle.c - the one pthread_atfork of the library, calling each layer's hooks in order.
 *
 * Each layer knows what of its own state must be locked before fork() or started anew in the
 * child; none knows the others'. This file owns the order in which they run, in one list
 * (lifecycle.h), as nng's init.c owns the order subsystems start in and libuv's uv_loop_fork()
 * resets each in turn.
 *
 * It sits at the bottom and the layers register with it, rather than at the top calling every
 * layer, so that nothing calls upward and a static link keeps only the layers a program uses:
 * a top-level file would be linked by nothing (no lower layer may name it), or, named, would
 * drag the server and libmicrohttpd into every program that only fires points. The order does
 * not depend on constructor order: each layer has its slot in the list, and the handlers walk
 * the slots.
 *
 * The locks taken before fork() are those a fire or an enable may hold while another thread
 * forks (the registry's and the seq mutex); every other lock a thread of the parent might have
 * held is initialised anew in the child, whose only thread is the one that forked.
 */
#include "lifecycle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

static _Atomic(const struct errinj__fork_hooks *) g_hooks[ERRINJ__LAYER_COUNT];
static pthread_once_t g_installed = PTHREAD_ONCE_INIT;
/* Held from before fork() to after it, so a layer loaded (dlopen) by another thread meanwhile
 * cannot get its parent or child hook run without its prepare hook. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void before_fork(void)
{
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < ERRINJ__LAYER_COUNT; i++) {
        const struct errinj__fork_hooks *h = atomic_load_explicit(&g_hooks[i], memory_order_acquire);
        if (h != NULL && h->prepare != NULL)
            h->prepare();
    }
}

static void after_fork_in_parent(void)
{
    for (int i = ERRINJ__LAYER_COUNT - 1; i >= 0; i--) {
        const struct errinj__fork_hooks *h = atomic_load_explicit(&g_hooks[i], memory_order_acquire);
        if (h != NULL && h->parent != NULL)
            h->parent();
    }
    pthread_mutex_unlock(&g_mu);
}

static void after_fork_in_child(void)
{
    for (int i = 0; i < ERRINJ__LAYER_COUNT; i++) {
        const struct errinj__fork_hooks *h = atomic_load_explicit(&g_hooks[i], memory_order_acquire);
        if (h != NULL && h->child != NULL)
            h->child();
    }
    pthread_mutex_unlock(&g_mu);
}

static void install(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

void errinj__lifecycle_register(enum errinj__layer layer, const struct errinj__fork_hooks *hooks)
{
    if ((unsigned)layer >= ERRINJ__LAYER_COUNT || hooks == NULL)
        return;
    pthread_once(&g_installed, install);
    pthread_mutex_lock(&g_mu);
    atomic_store_explicit(&g_hooks[layer], hooks, memory_order_release);
    pthread_mutex_unlock(&g_mu);
}
