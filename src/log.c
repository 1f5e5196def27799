/*
 * log.c - the library's one logging path: fire lines through errinj_set_log(), diagnostics to
 * stderr.
 *
 * The function errinj_set_log() installs is read by every fire and replaced rarely, so it sits
 * behind a reader-writer lock that prefers the writer: glibc's default would let a steady
 * stream of fires starve errinj_set_log(). A fire with logging off reads one flag and returns.
 */
#define _GNU_SOURCE
#include "log.h"

#include "errinj.h"
#include "lifecycle.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* The longest fire line: an injection name (at most 255 bytes) and the words around it. */
#define FIRE_LINE_MAX (255 + 160)

static void log_to_stderr(unsigned shard, const char *line, void *arg)
{
    (void)arg;
    fprintf(stderr, "errinj [shard %u]: %s\n", shard, line);
}

static pthread_rwlock_t g_log_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static errinj_log_fn g_log_fn = log_to_stderr;
static void *g_log_arg;
static atomic_bool g_log_on = true;

static void log_fork_child(void)
{
    /* The only thread of a forked child holds no lock; a fire in the parent may have. */
    g_log_lock = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
}

__attribute__((constructor)) static void log_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {NULL, NULL, log_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_LOG, &hooks);
}

void errinj_set_log(errinj_log_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&g_log_lock);
    g_log_fn = fn;
    g_log_arg = arg;
    atomic_store(&g_log_on, fn != NULL);
    pthread_rwlock_unlock(&g_log_lock);
}

void errinj__log_fire(unsigned shard, const char *fmt, ...)
{
    if (!atomic_load_explicit(&g_log_on, memory_order_relaxed))
        return;
    char line[FIRE_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_rwlock_rdlock(&g_log_lock);
    if (g_log_fn != NULL)
        g_log_fn(shard, line, g_log_arg);
    pthread_rwlock_unlock(&g_log_lock);
}

void errinj__log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
