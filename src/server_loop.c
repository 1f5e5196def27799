/*
 * server_loop.c - the server's one thread: it drains the events firing threads published into
 * the history, runs libmicrohttpd's event loop, sends heartbeats, answers waits whose time is up,
 * and guards the connections.
 *
 * Events travel: firing thread -> ring (events.c) -> this thread -> history -> streams. The
 * thread turns each record into its finished SSE frame once, stores it in the history
 * (history.c), resumes the suspended streams and lets libmicrohttpd write them, all in one
 * pass, so an event reaches a client's socket without another thread hand-off. libmicrohttpd
 * runs in external epoll mode for that reason: this thread is its loop. Firing threads only
 * push into the ring and, when the thread sleeps, write its eventfd.
 */
#define _GNU_SOURCE
#include "server.h"
#include "hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define STOP_GRACE_NS (1000ll * 1000 * 1000)
/* How long a stop spends turning the events published before it into frames. A ring kept full by
 * threads that outrun the server holds 64 K events, whose frames take seconds on a slow or loaded
 * machine; the ones left at the end are reported to the streams as lost, as the ring's drops are. */
#define STOP_DRAIN_NS (500ll * 1000 * 1000)
/* While libmicrohttpd cannot accept (out of descriptors or connections) it leaves the listener out
 * of its epoll set until its next turn after a connection closed: the loop turns this often. */
#define ACCEPT_STALLED_POLL_MS 50

/* After new frames were stored (or lost): hand them to the waits; mu held. */
static void advance_waits_locked(struct errinj_server *srv)
{
    struct errinj__history_view h = errinj__history_view_of(&srv->history);
    errinj__waits_advance(srv->waits, &h, errinj__now_mono_ns());
    errinj__ws_pump(srv->ws, &h);
}

/* ---- draining the ring -------------------------------------------------------------------- */

static void take_record(struct errinj__record *rec, void *arg)
{
    struct errinj__drain_batch *b = arg;
    size_t len = 0;
    char *bytes = errinj__record_sse_frame(rec, &len);
    struct frame_text *text = bytes != NULL ? errinj__frame_text_new(bytes, len) : NULL;
    /* Out of memory turns the event into a lost one: clients are told, not misled. */
    b->seq[b->count] = rec->seq;
    b->lost_before[b->count] = rec->lost_before + (text == NULL);
    /* The record's reference to its entry passes to the frame: the history keeps the name. */
    b->frame[b->count] = (struct frame){text, len, rec->entry, rec->type, rec->phase, rec->shard};
    if (text == NULL)
        b->frame[b->count].len = 0;
    b->count++;
    errinj__config_unref(rec->cfg);
    errinj__detail_free(rec->detail);
}

/* Makes the newest events the ring dropped, which no later record reported, into placeholders,
 * so that streams report them as overflow too. Cheap unless the ring dropped something. */
static void store_lost_tail(struct errinj_server *srv)
{
    uint64_t dropped = errinj__ring_dropped(srv->ring);
    if (dropped == srv->dropped_seen)
        return;
    srv->dropped_seen = dropped;
    uint64_t last = 0;
    uint64_t lost = errinj__ring_take_lost_tail(srv->ring, &last);
    if (lost == 0)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->lost += lost;
    if (last > srv->history.newest) {
        /* An empty frame at `last` makes every seq up to it a placeholder. */
        errinj__history_store(&srv->history, last, &(struct frame){0});
    }
    errinj__sse_resume_all_locked(srv);
    advance_waits_locked(srv);
    pthread_mutex_unlock(&srv->mu);
}

/* Drains at most one batch, none newer than last_seq; returns how many records it took. */
static size_t drain_once(struct errinj_server *srv, struct errinj__drain_batch *b, uint64_t last_seq)
{
    b->count = 0;
    size_t n = errinj__ring_drain_max(srv->ring, ERRINJ__DRAIN_BATCH, last_seq, take_record, b);
    if (n == 0) {
        store_lost_tail(srv);
        return 0;
    }
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < b->count; i++) {
        /* Lost seqs (and a frame without text) become placeholders that readers report as overflow. */
        srv->lost += b->lost_before[i];
        errinj__history_store(&srv->history, b->seq[i], &b->frame[i]);
    }
    errinj__sse_resume_all_locked(srv);
    advance_waits_locked(srv);
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* At stop, after the drain's time ran out: the events published before the stop that are still
 * in the ring become placeholders, which streams report as overflow. */
static void report_undrained(struct errinj_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    if (srv->stop_seq > srv->history.newest) {
        srv->lost += srv->stop_seq - srv->history.newest;
        errinj__history_store(&srv->history, srv->stop_seq, &(struct frame){0});
    }
    pthread_mutex_unlock(&srv->mu);
}

/* ---- guarding the connections -------------------------------------------------------------- */

/* True when a client waits in the listener's backlog after libmicrohttpd's turn. */
static bool listener_backlogged(struct errinj_server *srv)
{
    struct pollfd pfd = {.fd = srv->listen_fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
}

/* True when libmicrohttpd cannot accept: no descriptor left, or its connection limit reached. */
static bool cannot_accept(struct errinj_server *srv)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (info != NULL && info->num_connections >= srv->connection_limit)
        return true;
    int fd = fcntl(srv->wake_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return errno == EMFILE || errno == ENFILE;
    close(fd);
    return false;
}

/*
 * What libmicrohttpd needs done besides its own sockets: close connections that sent no request
 * head in time; and when clients wait that it did not accept, turn the loop soon, since after it
 * ran out of descriptors or connections it re-arms its listener only on a later turn, and, if it
 * cannot accept at all, give it a descriptor (the oldest connection still waiting for its request
 * head goes). The listener is in the loop's epoll set too, so that a client arriving after
 * libmicrohttpd left it out of its own set wakes the thread; while a backlog stays it is taken
 * out, or the loop would spin. Returns how long the thread may sleep at most.
 */
static int64_t guard_connections(struct errinj_server *srv, int64_t max_ms)
{
    int64_t head_ms = errinj__conns_sweep(srv->conns);
    if (head_ms >= 0 && head_ms < max_ms)
        max_ms = head_ms;
    if (!listener_backlogged(srv)) {
        errinj__loop_watch(srv->loop, &srv->listen_watch, EPOLLIN);
        return max_ms;
    }
    errinj__loop_unwatch(srv->loop, &srv->listen_watch);
    if (cannot_accept(srv))
        errinj__conns_shed_one(srv->conns);
    return max_ms < ACCEPT_STALLED_POLL_MS ? max_ms : ACCEPT_STALLED_POLL_MS;
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* Sleeps until the ring, libmicrohttpd's sockets, a watched socket or a timer need the thread, at
 * most max_ms. */
static void wait_for_work(struct errinj_server *srv, int64_t max_ms)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    if (MHD_get_timeout(srv->mhd, &mhd_ms) == MHD_YES && (int64_t)mhd_ms < max_ms)
        max_ms = (int64_t)mhd_ms;
    errinj__loop_wait(srv->loop, (int)(max_ms < 0 ? 0 : max_ms));
}

void *errinj__server_main(void *arg)
{
    struct errinj_server *srv = arg;
    errinj__hook_run_thread_start();
    struct errinj__drain_batch *b = srv->batch;
    int64_t next_ping = errinj__now_mono_ns() + (int64_t)srv->heartbeat_ms * 1000000;
    while (!atomic_load(&srv->consumer_stop)) {
        /* Bounded work per pass: a flood of events must not starve the sockets, heartbeats or stop
         * (firing threads that outrun the server make the ring drop, and say so). */
        for (int i = 0; i < 8 && !atomic_load(&srv->consumer_stop) &&
                        drain_once(srv, b, UINT64_MAX) == ERRINJ__DRAIN_BATCH;
             i++)
            ;
        int64_t now = errinj__now_mono_ns();
        if (now >= next_ping) {
            errinj__sse_ping_all(srv);
            pthread_mutex_lock(&srv->mu);
            errinj__ws_ping(srv->ws);
            pthread_mutex_unlock(&srv->mu);
            next_ping = now + (int64_t)srv->heartbeat_ms * 1000000;
        }
        /* Waits whose time is up are answered before libmicrohttpd runs: it picks up resumed
         * connections only in MHD_run, and nothing would wake the poll below for them. */
        pthread_mutex_lock(&srv->mu);
        if (errinj__waits_next_deadline(srv->waits) <= now)
            advance_waits_locked(srv);
        pthread_mutex_unlock(&srv->mu);
        MHD_run(srv->mhd);
        atomic_fetch_add_explicit(&srv->passes, 1, memory_order_release);
        pthread_mutex_lock(&srv->mu);
        int64_t wake_at = errinj__waits_next_deadline(srv->waits);
        pthread_mutex_unlock(&srv->mu);
        /* WebSocket sessions closed in this turn's callbacks are freed here, outside them. */
        int64_t ws_at = errinj__ws_tick(srv->ws);
        if (ws_at < wake_at)
            wake_at = ws_at;
        if (wake_at > next_ping)
            wake_at = next_ping;
        int64_t max_ms = guard_connections(srv, (wake_at - errinj__now_mono_ns() + 999999) / 1000000);
        if (errinj__ring_prepare_sleep(srv->ring))
            wait_for_work(srv, max_ms);
    }
    /* Stopping: deliver what was published before the stop (not what points fire meanwhile), end
     * every stream, and give clients a moment to receive the end; one that does not read is cut
     * by MHD_stop_daemon. Each step has a time limit, so a stop never waits on firing threads. */
    int64_t drain_until = errinj__now_mono_ns() + STOP_DRAIN_NS;
    while (drain_once(srv, b, srv->stop_seq) == ERRINJ__DRAIN_BATCH && errinj__now_mono_ns() < drain_until)
        ;
    report_undrained(srv);
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    errinj__sse_resume_all_locked(srv);
    errinj__waits_stop(srv->waits);
    pthread_mutex_unlock(&srv->mu);
    errinj__ws_stop(srv->ws);
    int64_t deadline = errinj__now_mono_ns() + STOP_GRACE_NS;
    for (;;) {
        MHD_run(srv->mhd);
        pthread_mutex_lock(&srv->mu);
        unsigned left = srv->client_count + errinj__waits_count(srv->waits);
        errinj__sse_resume_all_locked(srv); /* a reader may have suspended before seeing `stopping` */
        pthread_mutex_unlock(&srv->mu);
        int64_t remaining_ms = (deadline - errinj__now_mono_ns()) / 1000000;
        if (left == 0 || remaining_ms <= 0)
            break;
        wait_for_work(srv, remaining_ms < 20 ? remaining_ms : 20);
    }
    return NULL;
}

void errinj__server_wake(void *arg)
{
    struct errinj_server *srv = arg;
    uint64_t one = 1;
    if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is already non-zero, so the consumer will wake anyway. */
    }
}

/*
 * For an abort: returns once every connected stream has been handed the event `seq` (its cursor
 * is past it and no part of a frame is left to send) and the server thread then made two more
 * turns of its loop (libmicrohttpd writes what a stream handed it in the turn that asked), or
 * at the deadline. Polls every millisecond: it runs once, just before the process aborts.
 */
void errinj__server_wait_delivered(void *arg, uint64_t seq, int64_t deadline_ns)
{
    struct errinj_server *srv = arg;
    struct timespec tick = {0, 1000000};
    uint64_t target = 0;
    for (;;) {
        errinj__server_wake(srv);
        if (target == 0) {
            pthread_mutex_lock(&srv->mu);
            bool done = srv->history.newest >= seq && errinj__sse_delivered_locked(srv, seq);
            pthread_mutex_unlock(&srv->mu);
            if (done)
                target = atomic_load_explicit(&srv->passes, memory_order_acquire) + 2;
        } else if (atomic_load_explicit(&srv->passes, memory_order_acquire) >= target) {
            return;
        }
        if (errinj__now_mono_ns() >= deadline_ns)
            return;
        nanosleep(&tick, NULL);
    }
}
