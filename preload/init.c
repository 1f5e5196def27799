/*
 * init.c - starting liberrinj-preload.so inside a program, and keeping it out of its own way.
 *
 * The constructor runs before main and before the program's own constructors (a preloaded
 * library is initialised before the executable). It finds the real functions, registers the
 * libc points, applies the environment (ERRINJ_AT_STARTUP and the rest, as errinj_init_from_env()
 * reads it) and starts the server: on ERRINJ_HTTP if set, else on ERRINJ_RUN_LISTEN, the address
 * errinj-run passes.
 *
 * Reentrancy: preload_guard is a per-thread count, raised while the constructor runs, while a
 * fault is decided and fired (so the log line's write and any allocation of the library pass
 * through), around fork's handlers, and for good on every thread the library creates (the server
 * thread, marked through the library's thread-start hook). A guarded call goes straight to libc.
 *
 * Children: after fork() the child keeps every point's state and its faults fire, but it has no
 * server (the library orphans the parent's in the child) and its events reach no stream. A
 * program exec'd with LD_PRELOAD inherited loads this library again and starts its own server if
 * it can bind the address; if it cannot (its parent still holds it), it runs unharmed without
 * one. Only the program errinj-run started (ERRINJ_RUN_PID) treats that as fatal.
 */
#define _GNU_SOURCE
#include "preload.h"
#include "../src/hooks.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

PRELOAD_HIDDEN __thread unsigned preload_guard __attribute__((tls_model("initial-exec")));

static errinj_server *g_server;

static void mark_library_thread(void)
{
    preload_guard = 1;
}

static void guard_before_fork(void)
{
    preload_guard++;
}

static void unguard_after_fork(void)
{
    preload_guard--;
}

static void guard_at_exit(void)
{
    preload_guard++;
}

static void stop_server(void)
{
    /* Past the program's own exit handlers: from here the process is tearing down, so every
     * call passes through, and the streams end cleanly. */
    preload_guard++;
    errinj_server_stop(g_server);
    g_server = NULL;
}

static bool is_the_program_errinj_run_started(void)
{
    const char *pid = getenv("ERRINJ_RUN_PID");
    return pid != NULL && strtol(pid, NULL, 10) == (long)getpid();
}

static void start_server(const char *listen)
{
    errinj_server_opts opts = {.listen = listen, .token = getenv("ERRINJ_TOKEN")};
    int rc = errinj_server_start(&opts, &g_server);
    if (rc == 0) {
        atexit(stop_server);
        if (getenv("ERRINJ_RUN_ANNOUNCE") != NULL)
            fprintf(stderr, "errinj-run: listening on port %u\n", errinj_server_port(g_server));
        return;
    }
    if (is_the_program_errinj_run_started()) {
        fprintf(stderr, "errinj-run: cannot listen on %s: %s\n", listen, errinj_strerror(rc));
        _exit(127);
    }
    /* A descendant (exec'd with LD_PRELOAD inherited) whose ancestor holds the address: it runs
     * as it would without errinj. */
    if (getenv("ERRINJ_DEBUG") != NULL)
        fprintf(stderr, "errinj-run: pid %ld runs without a server: %s: %s\n", (long)getpid(), listen,
                errinj_strerror(rc));
}

__attribute__((constructor(101))) static void preload_init(void)
{
    preload_guard++;
    int saved = errno;
    preload_resolve();
    preload_points_register();
    errinj__hook_thread_start(mark_library_thread);
    /* Prepare handlers run in reverse order of registration, so this one runs before the
     * library's, and the child/parent ones after: fork's own work is guarded throughout. */
    pthread_atfork(guard_before_fork, unguard_after_fork, unguard_after_fork);
    const char *http = getenv("ERRINJ_HTTP");
    errinj_init_from_env(); /* it starts the server itself when ERRINJ_HTTP is set */
    /* Registered after that server's stop handler, so it runs before it; after the program's. */
    atexit(guard_at_exit);
    const char *listen = getenv("ERRINJ_RUN_LISTEN");
    if ((http == NULL || http[0] == '\0') && listen != NULL && listen[0] != '\0')
        start_server(listen);
    errno = saved;
    preload_guard--;
}
