/*
 * faults.c - errinj when things go wrong around it, with nothing lost and nothing left behind:
 *
 * - the server stopped while streams are open (readers, clients that never read, a half
 *   request) and handlers are parked, with a thread firing at full speed: stop returns, every
 *   stream ends, every parked thread returns 0 (and ASan's leak check runs at exit);
 * - a subscriber callback that blocks: callbacks run on the firing thread by design, so it
 *   slows only the thread that fired; other threads fire, the SSE stream gets their events and
 *   the REST API answers (also a DELETE of the very injection whose callback is blocked); and
 *   a subscription change meanwhile must not hold up other firing threads;
 * - fork() with the server running: the child's handle is orphaned (stop returns at once), the
 *   child fires its points, starts a server of its own and answers on it; the parent's server
 *   keeps answering and streaming, and sees none of the child's events (errinj(3), "After
 *   fork(2) ..."); the child counts no waiter for threads parked in the parent;
 * - 10,000 names enabled over REST, listed, and disabled in one call;
 * - running out of file descriptors: a test host limited to 64 descriptors gets streams until
 *   it can accept no more; it does not crash, its other threads keep working, and once the
 *   streams close it serves again.
 *
 * The in-process tests link the static library and start and stop a server each (one per
 * process at a time). The descriptor test runs the test host in a process of its own:
 *   attack_faults PATH-TO-errinj-testhost
 */
#define _GNU_SOURCE
#include <errinj.h>

#include "clock.h"
#include "host.h"
#include "net.h"
#include "threads.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h and stddef.h */

#ifdef __SANITIZE_THREAD__
/* The fork test's child starts a server, hence threads, after fork() in a threaded process:
 * allowed by errinj (and POSIX, with care), refused by TSan unless told. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

#define API "/v2/error_injection"
#define INJ API "/injection/"
#define IO_TIMEOUT_S 20.0
#define DEADLINE_S 30.0

static const char *g_testhost;

/* The server of the running test, stopped by the teardown if the test failed before it could. */
static errinj_server *g_srv;

static errinj_server *start_server(unsigned heartbeat_ms)
{
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .heartbeat_ms = heartbeat_ms};
    int rc = errinj_server_start(&opts, &g_srv);
    if (rc != 0)
        fail_msg("errinj_server_start: %s", errinj_strerror(rc));
    return g_srv;
}

static void stop_server(errinj_server *srv)
{
    errinj_server_stop(srv);
    if (srv == g_srv)
        g_srv = NULL;
}

static int get(unsigned port, const char *target, struct net_response *r)
{
    return net_request(port, "GET", target, NULL, NULL, 0, IO_TIMEOUT_S, r);
}

static int call(unsigned port, const char *method, const char *target)
{
    struct net_response r;
    int status = net_request(port, method, target, NULL, NULL, 0, IO_TIMEOUT_S, &r);
    net_response_free(&r);
    return status;
}

/* ---- the server stopped under load -------------------------------------------------------- */

struct parker {
    pthread_t thread;
    bool at_handler_site;
    atomic_int rc;
};

static int park_in_handler(errinj_handler *h, void *arg)
{
    (void)arg;
    return errinj_handler_wait_for_message(h, ERRINJ_FOREVER);
}

static void *parker_main(void *arg)
{
    struct parker *p = arg;
    int rc = p->at_handler_site ? ERRINJ_HANDLER("fault_park_handler", park_in_handler, NULL)
                                : errinj_inject_wait_for_message("fault.park", ERRINJ_FOREVER);
    atomic_store(&p->rc, rc);
    return NULL;
}

static atomic_bool g_stop_busy;

static void *busy_main(void *arg)
{
    atomic_ulong *fired = arg;
    while (!atomic_load(&g_stop_busy))
        if (errinj_inject_enter("fault.busy"))
            atomic_fetch_add(fired, 1);
    return NULL;
}

struct stream_reader {
    pthread_t thread;
    struct net_sse s;
    unsigned waiting; /* "waiting" events seen */
    bool ended_cleanly;
};

static void *stream_reader_main(void *arg)
{
    struct stream_reader *sr = arg;
    struct net_sse_event ev;
    while (net_sse_next_event(&sr->s, &ev) == 1)
        if (strstr(ev.data, "\"phase\":\"waiting\"") != NULL)
            sr->waiting++;
    sr->ended_cleanly = sr->s.ended_cleanly;
    return NULL;
}

static void stop_ends_streams_and_releases_parked_handlers_under_load(void **state)
{
    (void)state;
    enum { READERS = 4, DEAF = 2, PARKED_RT = 4, PARKED_SITE = 2 };
    errinj_server *srv = start_server(100);
    unsigned port = errinj_server_port(srv);
    /* Events of some size, so that the streams that are never read fill up quickly. (Not much
     * larger: stop delivers up to 64 Ki published events first, which a TSan build makes slow.) */
    char pad[200] = "";
    memset(pad, 'p', 128);
    const char *busy_params[] = {"pad", pad, NULL};
    assert_int_equal(errinj_enable("fault.park", false, NULL), 0);
    assert_int_equal(errinj_enable("fault_park_handler", false, NULL), 0);
    assert_int_equal(errinj_enable("fault.busy", false, busy_params), 0);

    struct stream_reader readers[READERS];
    memset(readers, 0, sizeof(readers));
    for (int i = 0; i < READERS; i++) {
        assert_true(net_sse_open_connected(&readers[i].s, port,
                                           API "/events?phase=all&injection=fault.park&injection=fault_park_handler",
                                           NULL, IO_TIMEOUT_S, 0));
        pthread_create(&readers[i].thread, NULL, stream_reader_main, &readers[i]);
    }
    struct net_sse deaf[DEAF];
    for (int i = 0; i < DEAF; i++)
        assert_true(net_sse_open_connected(&deaf[i], port, API "/events", NULL, IO_TIMEOUT_S, 4096));
    int half = net_connect(port, IO_TIMEOUT_S, 0);
    assert_true(half >= 0);
    const char partial[] = "POST " INJ "fault.half HTTP/1.1\r\nContent-Length: 10\r\n\r\n{";
    assert_true(net_send_all(half, partial, sizeof(partial) - 1));

    struct parker parkers[PARKED_RT + PARKED_SITE];
    memset(parkers, 0, sizeof(parkers));
    for (int i = 0; i < PARKED_RT + PARKED_SITE; i++) {
        parkers[i].at_handler_site = i >= PARKED_RT;
        atomic_store(&parkers[i].rc, 12345);
        pthread_create(&parkers[i].thread, NULL, parker_main, &parkers[i]);
    }
    if (!WAIT_UNTIL(errinj_waiters("fault.park") == PARKED_RT &&
                        errinj_waiters("fault_park_handler") == PARKED_SITE,
                    DEADLINE_S))
        fail_msg("parked: %u and %u, expected %d and %d", errinj_waiters("fault.park"),
                 errinj_waiters("fault_park_handler"), PARKED_RT, PARKED_SITE);
    atomic_ulong fired = 0;
    atomic_store(&g_stop_busy, false);
    pthread_t busy;
    pthread_create(&busy, NULL, busy_main, &fired);
    /* Stop once the busy thread has filled the deaf clients' buffers for a while. */
    if (!WAIT_UNTIL(atomic_load(&fired) > 20000, DEADLINE_S))
        fail_msg("the busy thread fired only %lu times", atomic_load(&fired));

    double t0 = test_now();
    stop_server(srv);
    double took = test_now() - t0;

    /* Every parked thread returns 0 (released by the disable that stop does). */
    for (int i = 0; i < PARKED_RT + PARKED_SITE; i++) {
        if (!thread_join_within(parkers[i].thread, DEADLINE_S))
            fail_msg("parked thread %d did not return after stop", i);
        assert_int_equal(atomic_load(&parkers[i].rc), 0);
    }
    atomic_store(&g_stop_busy, true);
    pthread_join(busy, NULL);
    /* Every stream ends: readers with the chunked terminator; the others are closed. */
    for (int i = 0; i < READERS; i++) {
        if (!thread_join_within(readers[i].thread, DEADLINE_S))
            fail_msg("reader %d: its stream did not end after stop", i);
        if (!readers[i].ended_cleanly)
            fail_msg("reader %d: the stream was cut instead of ended", i);
        assert_int_equal(readers[i].waiting, PARKED_RT + PARKED_SITE);
        net_sse_close(&readers[i].s, false);
    }
    for (int i = 0; i < DEAF; i++) {
        if (!net_closed_by_peer(deaf[i].fd, DEADLINE_S))
            fail_msg("deaf stream %d still open after stop", i);
        net_sse_close(&deaf[i], false);
    }
    if (!net_closed_by_peer(half, DEADLINE_S))
        fail_msg("the half request's connection is still open after stop");
    close(half);
    printf("stop took %.2f s with %d reading streams, %d never read, a half request, %d parked threads and a "
           "thread "
           "that fired %lu times\n",
           took, READERS, DEAF, PARKED_RT + PARKED_SITE, atomic_load(&fired));
    assert_true(took < 20.0); /* about 1 s: the grace for streams; a TSan build is slower */
    assert_int_equal(errinj_waiters("fault.park"), 0);
    assert_int_equal(errinj_waiters("fault_park_handler"), 0);
    assert_false(errinj_is_enabled("fault.park"));
    assert_false(errinj_is_enabled("fault.busy"));
    /* The port is free again: a new server can start and answer. */
    srv = start_server(100);
    assert_int_equal(call(errinj_server_port(srv), "GET", API "/status"), 200);
    stop_server(srv);
}

/* ---- a slow subscriber callback ------------------------------------------------------------ */

struct slow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, release;
    atomic_ulong fast_seen;
};
static struct slow g_slow = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0};

static void slow_cb(const errinj_event *ev, void *arg)
{
    struct slow *s = arg;
    if (strcmp(ev->injection, "fault.fast") == 0) {
        atomic_fetch_add(&s->fast_seen, 1);
        return;
    }
    if (strcmp(ev->injection, "fault.slow") != 0)
        return;
    /* Blocks until released (or 60 s, so that a broken test cannot hang forever). */
    pthread_mutex_lock(&s->mu);
    s->entered = true;
    pthread_cond_broadcast(&s->cv);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    while (!s->release && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&s->mu);
}

static void reset_slow_callback(void)
{
    pthread_mutex_lock(&g_slow.mu);
    g_slow.entered = g_slow.release = false;
    atomic_store(&g_slow.fast_seen, 0);
    pthread_mutex_unlock(&g_slow.mu);
}

/* The state letter of a thread of this process ('R', 'S', ...), or 0. */
static char thread_state(int tid)
{
    char path[64], text[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *paren = strrchr(text, ')'); /* after "tid (comm)" */
    return paren != NULL && paren[1] == ' ' ? paren[2] : 0;
}

/* Waits until a thread is blocked in slow_cb. */
static bool wait_for_slow_callback(void)
{
    pthread_mutex_lock(&g_slow.mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)DEADLINE_S;
    while (!g_slow.entered && pthread_cond_timedwait(&g_slow.cv, &g_slow.mu, &until) == 0)
        ;
    bool entered = g_slow.entered;
    pthread_mutex_unlock(&g_slow.mu);
    return entered;
}

static void release_slow_callback(void)
{
    pthread_mutex_lock(&g_slow.mu);
    g_slow.release = true;
    pthread_cond_broadcast(&g_slow.cv);
    pthread_mutex_unlock(&g_slow.mu);
}

static void count_cb(const errinj_event *ev, void *arg)
{
    if (strcmp(ev->injection, "fault.fast") == 0)
        atomic_fetch_add((atomic_ulong *)arg, 1);
}

struct firer {
    pthread_t thread;
    const char *name;
    int times;
    atomic_int fired;
    atomic_bool done;
};

static void *firer_main(void *arg)
{
    struct firer *f = arg;
    for (int i = 0; i < f->times; i++)
        atomic_fetch_add(&f->fired, errinj_inject_enter(f->name));
    atomic_store(&f->done, true);
    return NULL;
}

struct unsubscriber {
    pthread_t thread;
    errinj_subscription *sub;
    atomic_int tid;
    atomic_bool done;
};

static void *unsubscriber_main(void *arg)
{
    struct unsubscriber *u = arg;
    atomic_store(&u->tid, (int)gettid());
    errinj_unsubscribe(u->sub);
    atomic_store(&u->done, true);
    return NULL;
}

static void a_slow_subscriber_callback_slows_only_the_thread_that_fired(void **state)
{
    (void)state;
    enum { FAST = 1000 };
    errinj_server *srv = start_server(100);
    unsigned port = errinj_server_port(srv);
    assert_int_equal(errinj_enable("fault.slow", false, NULL), 0);
    assert_int_equal(errinj_enable("fault.fast", false, NULL), 0);
    struct net_sse s;
    assert_true(net_sse_open_connected(&s, port, API "/events?injection=fault.slow&injection=fault.fast", NULL, IO_TIMEOUT_S, 0));
    reset_slow_callback();
    /* Subscribing waits for every running callback: both subscribe before any callback blocks. */
    atomic_ulong counted = 0;
    errinj_subscription *sub, *other;
    assert_int_equal(errinj_subscribe(slow_cb, &g_slow, &sub), 0);
    assert_int_equal(errinj_subscribe(count_cb, &counted, &other), 0);

    /* Thread A fires fault.slow and stays in the callback. */
    struct firer a = {.name = "fault.slow", .times = 1};
    pthread_create(&a.thread, NULL, firer_main, &a);
    if (!wait_for_slow_callback())
        fail_msg("the slow callback was never called");

    /* Thread B fires 1000 times and is done, callbacks included. */
    struct firer b = {.name = "fault.fast", .times = FAST};
    pthread_create(&b.thread, NULL, firer_main, &b);
    if (!thread_join_within(b.thread, DEADLINE_S))
        fail_msg("thread B fired %d of %d times while A's callback was blocked", atomic_load(&b.fired), FAST);
    assert_int_equal(atomic_load(&b.fired), FAST);
    assert_int_equal(atomic_load(&g_slow.fast_seen), FAST);
    assert_int_equal(atomic_load(&counted), FAST); /* the other subscriber too */

    /* The stream gets A's event (published before the callbacks run) and all of B's. */
    unsigned slow_events = 0, fast_events = 0;
    while (slow_events + fast_events < FAST + 1) {
        struct net_sse_event ev;
        if (net_sse_next_event(&s, &ev) != 1)
            fail_msg("the stream ended after %u + %u events", slow_events, fast_events);
        assert_false(ev.overflow);
        if (strstr(ev.data, "\"injection\":\"fault.slow\"") != NULL)
            slow_events++;
        else if (strstr(ev.data, "\"injection\":\"fault.fast\"") != NULL)
            fast_events++;
    }
    assert_int_equal(slow_events, 1);
    assert_int_equal(fast_events, FAST);

    /* The REST API answers, also about and to the injection whose callback is blocked. */
    struct net_response r;
    assert_int_equal(get(port, API "/status", &r), 200);
    net_response_free(&r);
    assert_int_equal(call(port, "POST", INJ "fault.other"), 200);
    assert_int_equal(call(port, "POST", INJ "fault.slow/message"), 200);
    assert_int_equal(get(port, INJ "fault.slow/enters", &r), 200);
    assert_string_equal(r.body.data, "1");
    net_response_free(&r);
    assert_int_equal(call(port, "DELETE", INJ "fault.slow"), 200);
    assert_int_equal(call(port, "DELETE", INJ "fault.other"), 200);
    assert_false(errinj_is_enabled("fault.slow"));

    assert_false(atomic_load(&a.done)); /* still in its callback */
    release_slow_callback();
    if (!thread_join_within(a.thread, DEADLINE_S))
        fail_msg("thread A did not return once its callback was released");
    assert_int_equal(atomic_load(&a.fired), 1);
    printf(
        "with one callback blocked: %d fires of another thread, all in its callbacks and on the stream; REST "
        "answered, also a DELETE of the blocked injection\n",
        FAST);
    errinj_unsubscribe(other);
    errinj_unsubscribe(sub);
    net_sse_close(&s, false);
    stop_server(srv);
}

/*
 * One slow callback plus a subscription change must not stall the other firing threads
 * (errinj(3): no subscriber can block a thread that fires a point). Callbacks run with no lock
 * held, and unsubscribe waits only for its own callback's calls.
 */
static void a_subscription_change_during_a_slow_callback_holds_up_no_firing_thread(void **state)
{
    (void)state;
    enum { FAST = 1000 };
    reset_slow_callback();
    assert_int_equal(errinj_enable("fault.slow", false, NULL), 0);
    assert_int_equal(errinj_enable("fault.fast", false, NULL), 0);
    atomic_ulong counted = 0;
    errinj_subscription *sub, *other;
    assert_int_equal(errinj_subscribe(slow_cb, &g_slow, &sub), 0);
    assert_int_equal(errinj_subscribe(count_cb, &counted, &other), 0);
    struct firer a = {.name = "fault.slow", .times = 1};
    pthread_create(&a.thread, NULL, firer_main, &a);
    if (!wait_for_slow_callback())
        fail_msg("the slow callback was never called");
    /* Unsubscribing waits for the running callbacks (documented); firing must go on meanwhile. */
    struct unsubscriber u = {.sub = other};
    pthread_create(&u.thread, NULL, unsubscriber_main, &u);
    /* The unsubscriber has nothing to sleep on but the lock: once it sleeps, it waits for it. */
    if (!WAIT_UNTIL(atomic_load(&u.tid) != 0 &&
                        (thread_state(atomic_load(&u.tid)) == 'S' || atomic_load(&u.done)),
                    DEADLINE_S))
        fail_msg("the unsubscribing thread neither waits nor returns");
    struct firer c = {.name = "fault.fast", .times = FAST};
    pthread_create(&c.thread, NULL, firer_main, &c);
    /* 1000 fires take milliseconds, even under TSan: 2 s means held up. */
    bool held_up = !WAIT_UNTIL(atomic_load(&c.done), 2.0);
    int fired_while_blocked = atomic_load(&c.fired);
    bool unsubscribed_early = atomic_load(&u.done);
    release_slow_callback();
    pthread_join(a.thread, NULL);
    pthread_join(c.thread, NULL);
    pthread_join(u.thread, NULL);
    errinj_unsubscribe(sub);
    assert_int_equal(atomic_load(&c.fired), FAST);
    if (held_up)
        fail_msg("while a callback was blocked and an unsubscribe ran, another thread fired only %d of %d "
                 "times until the callback returned",
                 fired_while_blocked, FAST);
    printf("with one callback blocked and an unsubscribe %s, another thread fired %d times\n",
           unsubscribed_early ? "done" : "waiting for it", FAST);
}

/* ---- fork() with the server running --------------------------------------------------------- */

struct child_waiter {
    pthread_t thread;
    atomic_int rc;
    atomic_bool done;
};

static void *child_waiter_main(void *arg)
{
    struct child_waiter *w = arg;
    atomic_store(&w->rc, errinj_inject_wait_for_message("fault.fork.park", 10000));
    atomic_store(&w->done, true);
    return NULL;
}

/* The child's part: returns its exit status (0, or the number of the step that failed). */
static int child_main(errinj_server *parent_srv, unsigned parent_port, uint64_t enters_before)
{
    double t0 = test_now();
    errinj_server_stop(parent_srv); /* orphaned: returns at once, touches nothing of the parent */
    if (test_now() - t0 > 1.0)
        return 10;
    if (!errinj_inject_enter("fault.fork") || errinj_enters("fault.fork") != enters_before + 1)
        return 11;
    if (!ERRINJ_ENTER("fault_fork_site"))
        return 12;
#ifdef __SANITIZE_THREAD__
    /* TSan keeps the parent's threads in the child's registry and refuses new threads whose id
     * one of them had ("dup thread with used id"): the rest, which starts threads, runs in the
     * plain and ASan builds. */
    printf("child: orphaned stop returned at once and points fire; the steps that start threads are skipped "
           "under TSan\n");
    fflush(stdout);
    return 0;
#endif
    errinj_server *mine = NULL;
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .heartbeat_ms = 100};
    if (errinj_server_start(&opts, &mine) != 0)
        return 13;
    unsigned port = errinj_server_port(mine);
    if (port == 0 || port == parent_port)
        return 14;
    struct net_response r;
    if (get(port, API "/status", &r) != 200)
        return 15;
    net_response_free(&r);
    if (get(port, API "/injection", &r) != 200 || strstr(r.body.data, "\"fault.fork\"") == NULL)
        return 16; /* the injections are inherited */
    net_response_free(&r);
    struct net_sse s;
    if (!net_sse_open_connected(&s, port, API "/events?injection=fault.fork", NULL, IO_TIMEOUT_S, 0))
        return 17;
    errinj_inject_enter("fault.fork");
    struct net_sse_event ev;
    if (net_sse_next_event(&s, &ev) != 1 || strstr(ev.data, "\"injection\":\"fault.fork\"") == NULL)
        return 18;
    net_sse_close(&s, false);
    /* The parent's parked thread does not exist here. A thread of the child parks on the same
     * injection, and a message and a disable reach it. */
    struct child_waiter w = {.rc = 12345};
    unsigned inherited = errinj_waiters("fault.fork.park");
    pthread_create(&w.thread, NULL, child_waiter_main, &w);
    if (!WAIT_UNTIL(errinj_waiters("fault.fork.park") == inherited + 1, 10.0))
        return 19;
    if (errinj_message("fault.fork.park") != 0 || !WAIT_UNTIL(atomic_load(&w.done), 10.0))
        return 20;
    pthread_join(w.thread, NULL);
    if (atomic_load(&w.rc) != 0)
        return 21;
    if (errinj_disable("fault.fork.park") != 0)
        return 22;
    t0 = test_now();
    errinj_server_stop(mine);
    if (test_now() - t0 > 5.0)
        return 23;
    printf("child: orphaned stop returned at once; fired; own server on port %u answered and streamed; "
           "inherited waiters count of the parent's parked thread: %u\n",
           port, inherited);
    fflush(stdout);
    return 0;
}

static struct child_waiter g_parent_parked;

static void fork_child_has_an_orphaned_server_and_may_start_its_own(void **state)
{
    (void)state;
    errinj_server *srv = start_server(100);
    unsigned port = errinj_server_port(srv);
    assert_int_equal(errinj_enable("fault.fork", false, NULL), 0);
    assert_int_equal(errinj_enable("fault.fork.parent", false, NULL), 0);
    assert_int_equal(errinj_enable("fault_fork_site", false, NULL), 0);
    assert_int_equal(errinj_enable("fault.fork.park", false, NULL), 0);
    assert_true(errinj_inject_enter("fault.fork"));
    struct net_sse s;
    assert_true(net_sse_open_connected(&s, port, API "/events?injection=fault.fork&injection=fault.fork.parent", NULL, IO_TIMEOUT_S, 0));
    struct net_sse_event ev;
    /* A parent thread parked at fork time: it must not be released by anything the child does. */
    atomic_store(&g_parent_parked.rc, 12345);
    pthread_create(&g_parent_parked.thread, NULL, child_waiter_main, &g_parent_parked);
    if (!WAIT_UNTIL(errinj_waiters("fault.fork.park") == 1, DEADLINE_S))
        fail_msg("the parent's thread did not park");
    uint64_t enters_before = errinj_enters("fault.fork");

    int done[2];
    assert_int_equal(pipe2(done, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(done[0]);
        int rc = child_main(srv, port, enters_before);
        if (rc != 0)
            fprintf(stderr, "child: failed at step %d\n", rc);
        /* _exit, not exit: LeakSanitizer cannot check a child forked from a threaded process (its
         * thread list is the parent's, whose threads do not exist here), and what the orphaned
         * server's threads held is left behind in the child by design (errinj(3)). */
        fflush(stdout);
        _exit(rc);
    }
    close(done[1]);
    /* The pipe closes when the child exits (or execs): wait for that, with a deadline. */
    struct pollfd pfd = {.fd = done[0], .events = POLLIN};
    int ready = poll(&pfd, 1, (int)(DEADLINE_S * 1000));
    close(done[0]);
    int status = 0;
    if (ready <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child did not exit within %.0f s (hung in a step after fork)", DEADLINE_S);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child %s %d (see its step in faults.c: child_main)",
                 WIFEXITED(status) ? "exited with" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));

    /* The parent: its counters, its parked thread and its server are as they were. */
    assert_int_equal(errinj_enters("fault.fork"), enters_before);
    assert_int_equal(errinj_waiters("fault.fork.park"), 1);
    assert_false(atomic_load(&g_parent_parked.done));
    struct net_response r;
    assert_int_equal(get(port, API "/status", &r), 200);
    net_response_free(&r);
    assert_int_equal(get(port, INJ "fault.fork/enters", &r), 200);
    char expect[32];
    snprintf(expect, sizeof(expect), "%llu", (unsigned long long)enters_before);
    assert_string_equal(r.body.data, expect);
    net_response_free(&r);
    /* The stream goes on, and the first event on it is the parent's, none of the child's. */
    assert_true(errinj_inject_enter("fault.fork.parent"));
    assert_int_equal(net_sse_next_event(&s, &ev), 1);
    if (strstr(ev.data, "\"injection\":\"fault.fork.parent\"") == NULL)
        fail_msg("the parent's stream got %s", ev.data);
    net_sse_close(&s, false);
    /* A new stream of the parent's server works too. */
    assert_true(net_sse_open_connected(&s, port, API "/events?injection=fault.fork.parent", NULL, IO_TIMEOUT_S, 0));
    assert_true(errinj_inject_enter("fault.fork.parent"));
    assert_int_equal(net_sse_next_event(&s, &ev), 1);
    net_sse_close(&s, false);
    stop_server(srv); /* releases the parked thread */
    if (!thread_join_within(g_parent_parked.thread, DEADLINE_S))
        fail_msg("the parent's parked thread was not released by stop");
    assert_int_equal(atomic_load(&g_parent_parked.rc), 0);
}

/* The child counts no waiter for a thread parked in the parent only: that thread does not exist
 * there (errinj(3): waiters counts the threads parked in wait_for_message). */
static void fork_child_counts_none_of_the_parents_parked_threads(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("fault.fork.park", false, NULL), 0);
    atomic_store(&g_parent_parked.done, false);
    pthread_create(&g_parent_parked.thread, NULL, child_waiter_main, &g_parent_parked);
    if (!WAIT_UNTIL(errinj_waiters("fault.fork.park") == 1, DEADLINE_S))
        fail_msg("the parent's thread did not park");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit((int)errinj_waiters("fault.fork.park")); /* no thread is parked in the child */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    errinj_disable("fault.fork.park");
    pthread_join(g_parent_parked.thread, NULL);
    assert_int_equal(atomic_load(&g_parent_parked.rc), 0);
    if (WEXITSTATUS(status) != 0)
        fail_msg("the forked child counts %d waiter(s) of fault.fork.park, parked in the parent only",
                 WEXITSTATUS(status));
}

/* ---- 10,000 names --------------------------------------------------------------------------- */

static int keepalive_request(int *fd, unsigned port, const char *method, const char *target,
                             struct net_response *r)
{
    return net_keepalive_request(fd, port, method, target, IO_TIMEOUT_S, r);
}

static void ten_thousand_names_are_enabled_listed_and_disabled_over_rest(void **state)
{
    (void)state;
    enum { NAMES = 10000 };
    errinj_server *srv = start_server(0);
    unsigned port = errinj_server_port(srv);
    int fd = -1;
    double t0 = test_now();
    for (int i = 0; i < NAMES; i++) {
        char target[128];
        snprintf(target, sizeof(target), INJ "bulk.%05d?one_shot=%s", i, i % 2 ? "true" : "false");
        struct net_response r;
        int status = keepalive_request(&fd, port, "POST", target, &r);
        net_response_free(&r);
        if (status != 200)
            fail_msg("enable bulk.%05d: %d", i, status);
    }
    double t_enable = test_now() - t0;
    struct net_response r;
    t0 = test_now();
    assert_int_equal(keepalive_request(&fd, port, "GET", API "/injection", &r), 200);
    double t_list = test_now() - t0;
    json_error_t jerr;
    json_t *list = json_loadb(r.body.data, r.body.len, 0, &jerr);
    if (!json_is_array(list))
        fail_msg("the list is not a JSON array: %s", jerr.text);
    assert_int_equal(json_array_size(list), NAMES);
    for (size_t i = 0; i < NAMES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "bulk.%05zu", i);
        const char *got = json_string_value(json_array_get(list, i));
        if (got == NULL || strcmp(got, name) != 0)
            fail_msg("list[%zu] is %s, expected %s (in name order)", i, got ? got : "not a string", name);
    }
    size_t list_bytes = r.body.len;
    json_decref(list);
    net_response_free(&r);
    assert_int_equal(keepalive_request(&fd, port, "GET", INJ "bulk.05001", &r), 200);
    assert_non_null(strstr(r.body.data, "\"enabled\":true,\"one_shot\":true"));
    net_response_free(&r);
    assert_int_equal(keepalive_request(&fd, port, "GET", API "/points", &r), 200);
    net_response_free(&r);
    assert_int_equal(keepalive_request(&fd, port, "GET", API "/status", &r), 200);
    net_response_free(&r);
    assert_true(errinj_inject_enter("bulk.09998"));
    assert_true(errinj_inject_enter("bulk.09999")); /* a one-shot: fires once */
    assert_false(errinj_inject_enter("bulk.09999"));
    assert_false(errinj_inject_enter("bulk.10000")); /* never enabled */
    t0 = test_now();
    assert_int_equal(keepalive_request(&fd, port, "DELETE", API "/injection", &r), 200);
    double t_disable = test_now() - t0;
    net_response_free(&r);
    assert_int_equal(keepalive_request(&fd, port, "GET", API "/injection", &r), 200);
    assert_string_equal(r.body.data, "[]");
    net_response_free(&r);
    if (fd >= 0)
        close(fd);
    printf("%d names: enabled over REST in %.2f s (%.0f/s), listed in %.1f ms (%zu bytes), all disabled in "
           "%.1f ms\n",
           NAMES, t_enable, NAMES / t_enable, t_list * 1e3, list_bytes, t_disable * 1e3);
    stop_server(srv);
}

/* ---- running out of file descriptors ------------------------------------------------------ */

static void running_out_of_descriptors_refuses_cleanly_and_service_resumes(void **state)
{
    (void)state;
    enum { NOFILE = 64, MAX_STREAMS = 200 };
    const char *args[] = {"--heartbeat-ms", "100", "--max-subscribers", "1000", NULL};
    struct host h;
    assert_true(host_start(&h, g_testhost, args, NOFILE));
    assert_int_equal(call(h.port, "POST", INJ "fault.fd"), 200);

    /* Streams until one gets no answer: the host has no descriptor left to accept it with. */
    static struct net_sse streams[MAX_STREAMS];
    int opened = 0, refused_status = -1;
    while (opened < MAX_STREAMS) {
        struct net_sse *s = &streams[opened];
        if (!net_sse_open(s, h.port, API "/events?injection=fault.fd", NULL, 2.0, 0) || s->status != 200) {
            refused_status = s->status;
            net_sse_close(s, true);
            break;
        }
        opened++;
    }
    if (opened == MAX_STREAMS)
        fail_msg("%d streams with RLIMIT_NOFILE %d: the host never ran out", opened, NOFILE);
    /* It ran out of descriptors, not of patience: about NOFILE less the few it uses itself. */
    if (opened < NOFILE / 2)
        fail_msg("only %d streams with RLIMIT_NOFILE %d: a stream was refused too early", opened, NOFILE);
    /* Out of descriptors: the host is alive, and its other threads work. */
    char line[256];
    assert_true(host_alive(&h));
    assert_true(host_send(&h, "enters fault.fd"));
    assert_true(host_line(&h, line, sizeof(line), DEADLINE_S));
    assert_string_equal(line, "ok 0");
    struct net_response r;
    int status_while_out = net_request(h.port, "GET", API "/status", NULL, NULL, 0, 2.0, &r);
    net_response_free(&r);

    /* The streams go; the heartbeat finds them gone, and service resumes. */
    for (int i = 0; i < opened; i++)
        net_sse_close(&streams[i], true);
    double t0 = test_now();
    int status = 0;
    while (status != 200 && test_now() - t0 < DEADLINE_S) {
        status = net_request(h.port, "GET", API "/status", NULL, NULL, 0, 2.0, &r);
        net_response_free(&r);
    }
    double resumed = test_now() - t0;
    assert_int_equal(status, 200);
    /* And streams work again: five of them get an event. */
    struct net_sse again[5];
    for (int i = 0; i < 5; i++)
        assert_true(net_sse_open_connected(&again[i], h.port, API "/events?injection=fault.fd", NULL, IO_TIMEOUT_S, 0));
    assert_true(host_send(&h, "fire enter fault.fd 1"));
    assert_true(host_line(&h, line, sizeof(line), DEADLINE_S));
    for (int i = 0; i < 5; i++) {
        struct net_sse_event ev;
        assert_int_equal(net_sse_next_event(&again[i], &ev), 1);
        assert_non_null(strstr(ev.data, "\"injection\":\"fault.fd\""));
        net_sse_close(&again[i], false);
    }
    assert_true(host_alive(&h));
    int rc = host_quit(&h, 60.0);
    printf("RLIMIT_NOFILE %d: %d streams accepted, the next one got status %d (0: no answer); /status "
           "meanwhile: %d; "
           "service resumed %.2f s after the streams closed; host exit status %d\n",
           NOFILE, opened, refused_status, status_while_out, resumed, rc);
    assert_int_equal(rc, 0);
}

/* After a failed test: release a blocked callback, stop the server, disable everything. */
static int clean_up(void **state)
{
    (void)state;
    release_slow_callback();
    if (g_srv != NULL)
        stop_server(g_srv);
    errinj_disable_all();
    return 0;
}

int main(int argc, char **argv)
{
    g_testhost = host_program(argc, argv);
    if (g_testhost == NULL)
        return 2;
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(stop_ends_streams_and_releases_parked_handlers_under_load, clean_up),
        cmocka_unit_test_teardown(a_slow_subscriber_callback_slows_only_the_thread_that_fired, clean_up),
        cmocka_unit_test_teardown(a_subscription_change_during_a_slow_callback_holds_up_no_firing_thread,
                                  clean_up),
        cmocka_unit_test_teardown(fork_child_has_an_orphaned_server_and_may_start_its_own, clean_up),
        cmocka_unit_test_teardown(fork_child_counts_none_of_the_parents_parked_threads, clean_up),
        cmocka_unit_test_teardown(ten_thousand_names_are_enabled_listed_and_disabled_over_rest, clean_up),
        cmocka_unit_test_teardown(running_out_of_descriptors_refuses_cleanly_and_service_resumes, clean_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
