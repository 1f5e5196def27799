/*
 * disconnect.c - the program's disconnect handler, which `POST .../disconnect/{ip}` calls: a
 * function pointer and its argument, set by errinj_set_disconnect_handler() from any thread and
 * called from the server thread, so the pair is read and written under one mutex (a call holds it
 * only to copy the pair, not while the handler runs).
 */
#include "disconnect.h"

#include "errinj.h"

#include <pthread.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static errinj_disconnect_fn g_fn;
static void *g_arg;

void errinj_set_disconnect_handler(errinj_disconnect_fn fn, void *arg)
{
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_arg = fn != NULL ? arg : NULL;
    pthread_mutex_unlock(&g_mu);
}

bool errinj__disconnect(const char *ip)
{
    pthread_mutex_lock(&g_mu);
    errinj_disconnect_fn fn = g_fn;
    void *arg = g_arg;
    pthread_mutex_unlock(&g_mu);
    if (fn == NULL)
        return false;
    fn(ip, arg);
    return true;
}
