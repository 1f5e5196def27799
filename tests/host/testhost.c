/*
 * testhost.c - a small program that links the library, starts the server and fires points on
 * command, so that tests of the server, the CLI and the clients drive a real process.
 *
 * Usage: errinj-testhost [--listen ADDR] [--token T] [--heartbeat-ms N] [--history N]
 *                        [--max-subscribers N] [--allow-remote]
 * Prints "port N" once the server listens, then answers one line per command on stdin:
 *   fire TYPE NAME [N]    fire a run-time-name point N times  -> ok <last result>
 *   site TYPE [N]         fire the compiled-in point site_TYPE -> ok <last result>
 *   wait NAME TIMEOUT_MS  park a new thread in wait_for_message -> started ID, later done ID RC
 *   site-wait TIMEOUT_MS  the same at the compiled-in site_wait  -> started ID, later done ID RC
 *   shard N | enable NAME [one_shot] | disable NAME | message NAME | enters NAME | waiters NAME
 *   burst THREADS N NAME  THREADS threads each fire enter NAME N times -> ok TOTAL_TRUE
 *   quit                  stop the server, join threads, exit 0
 * TYPE is one of: sleep, for 1 ms; exception; lambda; handler; enter. Output is line-buffered.
 */
#include <errinj.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_mu);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    va_end(ap);
}

static void noop(void *arg)
{
    (void)arg;
}

static int handler_returns_param(errinj_handler *h, void *arg)
{
    (void)arg;
    const char *rc = errinj_handler_get(h, "rc");
    return rc != NULL ? atoi(rc) : 7;
}

static long fire_runtime(const char *type, const char *name)
{
    if (strcmp(type, "sleep") == 0)
        return errinj_inject_sleep(name, 1), 0;
    if (strcmp(type, "exception") == 0)
        return errinj_inject_exception(name, -5);
    if (strcmp(type, "lambda") == 0)
        return errinj_inject_lambda(name, noop, NULL), 0;
    if (strcmp(type, "handler") == 0)
        return errinj_inject_handler(name, handler_returns_param, NULL);
    if (strcmp(type, "enter") == 0)
        return errinj_inject_enter(name);
    return -1000;
}

static long fire_site(const char *type)
{
    if (strcmp(type, "sleep") == 0)
        return ERRINJ_SLEEP("site_sleep", 1), 0;
    if (strcmp(type, "exception") == 0)
        return ERRINJ_EXCEPTION("site_exception", -5);
    if (strcmp(type, "lambda") == 0)
        return ERRINJ_LAMBDA("site_lambda", noop, NULL), 0;
    if (strcmp(type, "handler") == 0)
        return ERRINJ_HANDLER("site_handler", handler_returns_param, NULL);
    if (strcmp(type, "enter") == 0)
        return ERRINJ_ENTER("site_enter");
    return -1000;
}

struct waiter {
    pthread_t thread;
    int id;
    char name[300];
    int timeout_ms;
    unsigned shard;
    bool at_site;
    struct waiter *next;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    errinj_shard_set(w->shard);
    int rc = w->at_site ? ERRINJ_WAIT_FOR_MESSAGE("site_wait", w->timeout_ms)
                        : errinj_inject_wait_for_message(w->name, w->timeout_ms);
    say("done %d %d", w->id, rc);
    return NULL;
}

struct burst {
    pthread_t thread;
    const char *name;
    long count, hits;
    unsigned shard;
};

static void *burst_main(void *arg)
{
    struct burst *b = arg;
    errinj_shard_set(b->shard);
    for (long i = 0; i < b->count; i++)
        b->hits += errinj_inject_enter(b->name);
    return NULL;
}

int main(int argc, char **argv)
{
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--allow-remote") == 0) {
            opts.allow_remote = true;
        } else if (next == NULL) {
            fprintf(stderr, "errinj-testhost: %s needs a value\n", argv[i]);
            return 2;
        } else if (strcmp(argv[i], "--listen") == 0) {
            opts.listen = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0) {
            opts.token = argv[++i];
        } else if (strcmp(argv[i], "--heartbeat-ms") == 0) {
            opts.heartbeat_ms = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--history") == 0) {
            opts.history = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--max-subscribers") == 0) {
            opts.max_subscribers = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "errinj-testhost: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    errinj_set_log(NULL, NULL);
    int rc = errinj_init_from_env();
    if (rc != 0) {
        fprintf(stderr, "errinj-testhost: errinj_init_from_env: %s\n", errinj_strerror(rc));
        return 1;
    }
    errinj_server *srv;
    rc = errinj_server_start(&opts, &srv);
    if (rc != 0) {
        fprintf(stderr, "errinj-testhost: errinj_server_start: %s\n", errinj_strerror(rc));
        return 1;
    }
    say("port %u", errinj_server_port(srv));

    struct waiter *waiters = NULL;
    int next_id = 1;
    char line[1024];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char cmd[32] = "", a[300] = "", b[300] = "", c[300] = "";
        int n = sscanf(line, "%31s %299s %299s %299s", cmd, a, b, c);
        if (n <= 0)
            continue;
        if (strcmp(cmd, "quit") == 0)
            break;
        if (strcmp(cmd, "fire") == 0 && n >= 3) {
            long times = n >= 4 ? atol(c) : 1, result = 0;
            for (long i = 0; i < times; i++)
                result = fire_runtime(a, b);
            say("ok %ld", result);
        } else if (strcmp(cmd, "site") == 0 && n >= 2) {
            long times = n >= 3 ? atol(b) : 1, result = 0;
            for (long i = 0; i < times; i++)
                result = fire_site(a);
            say("ok %ld", result);
        } else if ((strcmp(cmd, "wait") == 0 && n >= 3) || (strcmp(cmd, "site-wait") == 0 && n >= 2)) {
            struct waiter *w = calloc(1, sizeof(*w));
            bool at_site = cmd[0] == 's';
            w->id = next_id++;
            w->at_site = at_site;
            snprintf(w->name, sizeof(w->name), "%s", at_site ? "site_wait" : a);
            w->timeout_ms = atoi(at_site ? a : b);
            w->shard = errinj_shard();
            w->next = waiters;
            waiters = w;
            say("started %d", w->id);
            pthread_create(&w->thread, NULL, waiter_main, w);
        } else if (strcmp(cmd, "burst") == 0 && n >= 4) {
            int threads = atoi(a);
            struct burst *bs = calloc((size_t)threads, sizeof(*bs));
            long total = 0;
            for (int i = 0; i < threads; i++) {
                bs[i] = (struct burst){.name = c, .count = atol(b), .shard = (unsigned)i};
                pthread_create(&bs[i].thread, NULL, burst_main, &bs[i]);
            }
            for (int i = 0; i < threads; i++) {
                pthread_join(bs[i].thread, NULL);
                total += bs[i].hits;
            }
            free(bs);
            say("ok %ld", total);
        } else if (strcmp(cmd, "shard") == 0 && n >= 2) {
            errinj_shard_set((unsigned)atoi(a));
            say("ok");
        } else if (strcmp(cmd, "enable") == 0 && n >= 2) {
            say("ok %d", errinj_enable(a, n >= 3 && strcmp(b, "one_shot") == 0, NULL));
        } else if (strcmp(cmd, "disable") == 0 && n >= 2) {
            say("ok %d", errinj_disable(a));
        } else if (strcmp(cmd, "message") == 0 && n >= 2) {
            say("ok %d", errinj_message(a));
        } else if (strcmp(cmd, "enters") == 0 && n >= 2) {
            say("ok %llu", (unsigned long long)errinj_enters(a));
        } else if (strcmp(cmd, "waiters") == 0 && n >= 2) {
            say("ok %u", errinj_waiters(a));
        } else {
            say("error unknown command");
        }
    }
    errinj_server_stop(srv); /* disables everything: parked waiters return */
    while (waiters != NULL) {
        struct waiter *w = waiters;
        waiters = w->next;
        pthread_join(w->thread, NULL);
        free(w);
    }
    return 0;
}
