/*
 * server.c - the embedded HTTP server: libmicrohttpd glue, the SSE streams, and the one server
 * thread that feeds them.
 *
 * It stays one file for now (about 1,100 lines): the history, the stream cursors and the
 * libmicrohttpd callbacks share the server struct and its thread, and the loop (loop.c), the
 * connection guard (conns.c), waits (wait.c) and request framing (framing.c) already live
 * apart. Next to move out: the history store (history.h declares its view) and the streams.
 *
 * Events travel: firing thread -> ring (events.c) -> server thread -> history -> streams.
 * The server thread drains the ring, turns each record into its finished SSE frame once, and
 * stores it in the history, a ring of `history` frames indexed by seq (also bounded in
 * bytes). Each stream is just a cursor into the history: fan-out costs a memcpy per client
 * and nothing per client on the firing side. A client that falls behind what the history
 * keeps gets an `overflow` event with the exact count it missed; one that stops reading
 * only stalls its own TCP connection, and its buffers are the kernel's, so memory stays
 * bounded whatever clients do.
 *
 * The same thread runs libmicrohttpd's event loop (external epoll mode), so an event reaches a
 * client's socket without another thread hand-off. A stream's content reader returns what the
 * history has past its cursor; when there is nothing, it suspends the connection (never
 * returning 0 without suspending, which makes libmicrohttpd spin) and the thread resumes it
 * when new events or a heartbeat arrive. One mutex guards the history and the client list: all
 * their users run on the server thread except the stream free callbacks that MHD_stop_daemon()
 * makes from the stopping thread; firing threads never take it.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "history.h"
#include "hooks.h"
#include "wait.h"

#include "conns.h"
#include "framing.h"
#include "loop.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:10000"
#define HISTORY_BYTES_MAX (64u * 1024 * 1024)
#define DRAIN_BATCH 1024
#define STOP_GRACE_NS (1000ll * 1000 * 1000)
/* Limits of the options, so that no derived figure overflows: a day, 16 M events, 64 K streams. */
#define HEARTBEAT_MS_MAX (24u * 3600 * 1000)
#define HISTORY_MAX (16u * 1024 * 1024)
#define SUBSCRIBERS_MAX 65536u
/* While libmicrohttpd cannot accept (out of descriptors or connections) it leaves the listener out
 * of its epoll set until its next turn after a connection closed: the loop turns this often. */
#define ACCEPT_STALLED_POLL_MS 50

struct sse_client {
    struct errinj_server *srv;
    struct MHD_Connection *conn;
    struct errinj__filter filter;
    uint64_t cursor; /* the last seq this client has been given or skipped */
    bool greeted;    /* ": connected" written */
    bool ping_due;
    bool suspended;
    bool peer_gone;  /* the client closed its socket (seen by the connection guard) */
    struct frame_text *pending; /* a frame larger than one read, sent from pending_off on */
    size_t pending_off;
    struct errinj__conn *rec; /* the guard's record; NULL once libmicrohttpd closed the connection */
    struct sse_client *prev, *next;
};

struct errinj_server {
    struct MHD_Daemon *mhd;
    int listen_fd;
    unsigned port;
    char *token;
    bool allow_remote;
    unsigned heartbeat_ms;
    unsigned max_subscribers;
    struct errinj__http_config http;

    pthread_mutex_t mu; /* guards everything below */
    struct frame *history;
    size_t history_cap;
    uint64_t oldest; /* first seq still kept; newest + 1 when empty */
    uint64_t newest; /* last seq stored */
    size_t history_bytes;
    uint64_t lost;   /* seqs the ring dropped */
    struct sse_client *clients;
    unsigned client_count;
    struct errinj__waits *waits; /* server-side waits (wait.c) */
    bool stopping;

    struct errinj__ring *ring;
    int wake_fd;
    struct errinj__loop *loop;   /* what the server thread sleeps on */
    struct errinj__watch mhd_watch; /* libmicrohttpd's epoll fd in the loop */
    struct errinj__watch listen_watch; /* the listener, while libmicrohttpd takes what it has */
    struct errinj__conns *conns; /* the connection guard */
    unsigned connection_limit;   /* libmicrohttpd's */
    atomic_bool consumer_stop;
    pthread_t thread; /* the server thread: ring consumer and libmicrohttpd's loop */
    struct batch *batch; /* the server thread's drain buffer, allocated at start */
    uint64_t dropped_seen; /* the ring's drop count when the server thread last looked */
    atomic_uint_fast64_t passes; /* turns of the server thread's loop, for abort's wait */
    bool orphaned; /* this is a fork()ed child: the server's threads live in the parent only */
};

/* One server per process: the ring is process-wide. */
static atomic_bool g_running;
static _Atomic(struct errinj_server *) g_server;

/* ---- the history ----------------------------------------------------------------------- */

static struct frame_text *frame_text_new(char *bytes, size_t len)
{
    struct frame_text *t = malloc(sizeof(*t));
    if (t == NULL) {
        free(bytes);
        return NULL;
    }
    *t = (struct frame_text){1, len, bytes};
    return t;
}

static void frame_text_unref(struct frame_text *t)
{
    if (t != NULL && --t->refs == 0) {
        free(t->bytes);
        free(t);
    }
}

static struct frame *frame_at(struct errinj_server *srv, uint64_t seq)
{
    return &srv->history[seq % srv->history_cap];
}

static struct errinj__history_view history_view(const struct errinj_server *srv)
{
    return (struct errinj__history_view){srv->history, srv->history_cap, srv->oldest, srv->newest};
}

/* After new frames were stored (or lost): hand them to the waits; mu held. */
static void advance_waits_locked(struct errinj_server *srv)
{
    struct errinj__history_view h = history_view(srv);
    errinj__waits_advance(srv->waits, &h, errinj__now_mono_ns());
}

static void evict_oldest(struct errinj_server *srv)
{
    struct frame *f = frame_at(srv, srv->oldest);
    srv->history_bytes -= f->len;
    frame_text_unref(f->text);
    *f = (struct frame){0};
    srv->oldest++;
}

/* Stores a frame for seq (newest + 1); mu held. Takes ownership of text. */
static void history_store(struct errinj_server *srv, uint64_t seq, const struct frame *in)
{
    if (seq <= srv->newest) {
        frame_text_unref(in->text); /* cannot happen: the ring delivers in seq order */
        return;
    }
    /* Seqs between newest and seq were published before the ring was attached or lost. */
    while (srv->newest + 1 < seq) {
        if (srv->newest + 1 - srv->oldest >= srv->history_cap)
            evict_oldest(srv);
        *frame_at(srv, ++srv->newest) = (struct frame){0};
    }
    while (srv->newest + 1 - srv->oldest >= srv->history_cap ||
           (srv->oldest <= srv->newest && srv->history_bytes + in->len > HISTORY_BYTES_MAX))
        evict_oldest(srv);
    *frame_at(srv, seq) = *in;
    srv->history_bytes += in->len;
    srv->newest = seq;
}

static void resume_all_locked(struct errinj_server *srv)
{
    for (struct sse_client *c = srv->clients; c != NULL; c = c->next) {
        if (c->suspended) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
    }
}

/* ---- the server thread -------------------------------------------------------------------- */

struct batch {
    size_t count;
    uint64_t seq[DRAIN_BATCH];
    uint64_t lost_before[DRAIN_BATCH];
    struct frame frame[DRAIN_BATCH];
};

static void take_record(struct errinj__record *rec, void *arg)
{
    struct batch *b = arg;
    size_t len = 0;
    char *bytes = errinj__record_sse_frame(rec, &len);
    struct frame_text *text = bytes != NULL ? frame_text_new(bytes, len) : NULL;
    /* Out of memory turns the event into a lost one: clients are told, not misled. */
    b->seq[b->count] = rec->seq;
    b->lost_before[b->count] = rec->lost_before + (text == NULL);
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
    if (last > srv->newest) {
        /* An empty frame at `last` makes every seq up to it a placeholder. */
        history_store(srv, last, &(struct frame){0});
    }
    resume_all_locked(srv);
    advance_waits_locked(srv);
    pthread_mutex_unlock(&srv->mu);
}

/* Drains at most one batch; returns how many records it took. */
static size_t drain_once(struct errinj_server *srv, struct batch *b)
{
    b->count = 0;
    size_t n = errinj__ring_drain_max(srv->ring, DRAIN_BATCH, take_record, b);
    if (n == 0) {
        store_lost_tail(srv);
        return 0;
    }
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < b->count; i++) {
        /* Lost seqs (and a frame without text) become placeholders that readers report as overflow. */
        srv->lost += b->lost_before[i];
        history_store(srv, b->seq[i], &b->frame[i]);
    }
    resume_all_locked(srv);
    advance_waits_locked(srv);
    pthread_mutex_unlock(&srv->mu);
    return n;
}

static void ping_all(struct errinj_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    for (struct sse_client *c = srv->clients; c != NULL; c = c->next)
        c->ping_due = true;
    resume_all_locked(srv);
    pthread_mutex_unlock(&srv->mu);
}

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

/* Sleeps until the ring, libmicrohttpd's sockets, a watched socket or a timer need the thread, at
 * most max_ms. */
static void wait_for_work(struct errinj_server *srv, int64_t max_ms)
{
    MHD_UNSIGNED_LONG_LONG mhd_ms;
    if (MHD_get_timeout(srv->mhd, &mhd_ms) == MHD_YES && (int64_t)mhd_ms < max_ms)
        max_ms = (int64_t)mhd_ms;
    errinj__loop_wait(srv->loop, (int)(max_ms < 0 ? 0 : max_ms));
}

/*
 * The server thread: it is both the ring's consumer and libmicrohttpd's event loop, so an event
 * goes from the ring to the client's socket without another thread hand-off: drain, store,
 * resume the streams, and let libmicrohttpd write them, all in one pass.
 */
static void *server_main(void *arg)
{
    struct errinj_server *srv = arg;
    errinj__hook_run_thread_start();
    struct batch *b = srv->batch;
    int64_t next_ping = errinj__now_mono_ns() + (int64_t)srv->heartbeat_ms * 1000000;
    while (!atomic_load(&srv->consumer_stop)) {
        /* Bounded work per pass: a flood of events must not starve the sockets, heartbeats or stop
         * (firing threads that outrun the server make the ring drop, and say so). */
        for (int i = 0; i < 8 && drain_once(srv, b) == DRAIN_BATCH; i++)
            ;
        int64_t now = errinj__now_mono_ns();
        if (now >= next_ping) {
            ping_all(srv);
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
        if (wake_at > next_ping)
            wake_at = next_ping;
        int64_t max_ms = guard_connections(srv, (wake_at - errinj__now_mono_ns() + 999999) / 1000000);
        if (errinj__ring_prepare_sleep(srv->ring))
            wait_for_work(srv, max_ms);
    }
    /* Stopping: deliver what was published, end every stream, and give clients a moment to
     * receive the end; one that does not read is cut by MHD_stop_daemon. */
    for (int i = 0; i < 64 && drain_once(srv, b) == DRAIN_BATCH; i++)
        ; /* bounded: points may go on firing while the server stops */
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    resume_all_locked(srv);
    errinj__waits_stop(srv->waits);
    pthread_mutex_unlock(&srv->mu);
    int64_t deadline = errinj__now_mono_ns() + STOP_GRACE_NS;
    for (;;) {
        MHD_run(srv->mhd);
        pthread_mutex_lock(&srv->mu);
        unsigned left = srv->client_count + errinj__waits_count(srv->waits);
        resume_all_locked(srv); /* a reader may have suspended before seeing `stopping` */
        pthread_mutex_unlock(&srv->mu);
        int64_t remaining_ms = (deadline - errinj__now_mono_ns()) / 1000000;
        if (left == 0 || remaining_ms <= 0)
            break;
        wait_for_work(srv, remaining_ms < 20 ? remaining_ms : 20);
    }
    return NULL;
}

static void wake_consumer(void *arg)
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
static void wait_delivered(void *arg, uint64_t seq, int64_t deadline_ns)
{
    struct errinj_server *srv = arg;
    struct timespec tick = {0, 1000000};
    uint64_t target = 0;
    for (;;) {
        wake_consumer(srv);
        if (target == 0) {
            pthread_mutex_lock(&srv->mu);
            bool done = srv->newest >= seq;
            for (struct sse_client *c = srv->clients; done && c != NULL; c = c->next)
                done = c->cursor >= seq && c->pending == NULL;
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

/* ---- SSE streams ----------------------------------------------------------------------------- */

static bool filter_passes(const struct errinj__filter *f, const struct frame *fr)
{
    if (f->types != 0 && !(f->types & (1u << fr->type)))
        return false;
    if (!(f->phases & (1u << fr->phase)))
        return false;
    if (f->shard >= 0 && (unsigned long long)f->shard != fr->shard)
        return false;
    if (f->injections == NULL)
        return true;
    for (char **n = f->injections; *n != NULL; n++)
        if (strcmp(*n, fr->entry->name) == 0)
            return true;
    return false;
}

/* Appends text to buf if it fits; otherwise, when buf is still empty and the text is a shared
 * frame, sends what fits and keeps a reference to the frame with the offset to go on from (no
 * copy per client, however large the frame). Returns false when the read is full. */
static bool emit(struct sse_client *c, char *buf, size_t max, size_t *used, const char *text, size_t len,
                 struct frame_text *shared)
{
    if (*used + len <= max) {
        memcpy(buf + *used, text, len);
        *used += len;
        return true;
    }
    if (*used > 0 || shared == NULL)
        return false;
    memcpy(buf, text, max);
    shared->refs++;
    c->pending = shared;
    c->pending_off = max;
    *used = max;
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse_client *c = cls;
    struct errinj_server *srv = c->srv;
    size_t used = 0;
    pthread_mutex_lock(&srv->mu);
    if (c->peer_gone) {
        /* The client closed its socket: end the connection now rather than at the next write. */
        pthread_mutex_unlock(&srv->mu);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (c->pending != NULL) {
        size_t left = c->pending->len - c->pending_off;
        size_t n = left < max ? left : max;
        memcpy(buf, c->pending->bytes + c->pending_off, n);
        c->pending_off += n;
        if (c->pending_off == c->pending->len) {
            frame_text_unref(c->pending);
            c->pending = NULL;
        }
        pthread_mutex_unlock(&srv->mu);
        return (ssize_t)n;
    }
    /* Stopping ends the stream once it has what was published: a program that fires and then
     * exits at once (errinj-run's sqlite3, cp) must still be seen to have fired. */
    if (srv->stopping && c->cursor >= srv->newest) {
        pthread_mutex_unlock(&srv->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (!c->greeted) {
        emit(c, buf, max, &used, ": connected\n\n", 13, NULL);
        c->greeted = true;
    }
    if (c->ping_due && emit(c, buf, max, &used, ": ping\n\n", 8, NULL))
        c->ping_due = false;
    while (c->cursor < srv->newest) {
        uint64_t next = c->cursor + 1;
        uint64_t skipped = 0;
        /* Count what this client can no longer get: evicted, never kept, or lost in the ring. */
        if (next < srv->oldest) {
            skipped = srv->oldest - next;
            next = srv->oldest;
        }
        while (next <= srv->newest && frame_at(srv, next)->text == NULL) {
            skipped++;
            next++;
        }
        if (skipped > 0) {
            char notice[96];
            int n = snprintf(notice, sizeof(notice), "event: overflow\ndata: {\"dropped\":%llu,\"next_seq\":%llu}\n\n",
                             (unsigned long long)skipped, (unsigned long long)next);
            if (!emit(c, buf, max, &used, notice, (size_t)n, NULL))
                break;
            c->cursor = next - 1;
            continue;
        }
        const struct frame *fr = frame_at(srv, next);
        if (filter_passes(&c->filter, fr) && !emit(c, buf, max, &used, fr->text->bytes, fr->len, fr->text))
            break;
        c->cursor = next;
        if (c->pending != NULL)
            break;
    }
    if (used == 0 && srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        return MHD_CONTENT_READER_END_OF_STREAM; /* the rest was filtered out */
    }
    if (used == 0) {
        /* Nothing to send: suspend until the consumer has news (see NOTES: never return 0 otherwise). */
        c->suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&srv->mu);
    return (ssize_t)used;
}

/* The connection guard saw the client of a stream close its socket (server thread). */
static void stream_hangup(void *arg)
{
    struct sse_client *c = arg;
    struct errinj_server *srv = c->srv;
    pthread_mutex_lock(&srv->mu);
    c->peer_gone = true;
    if (c->suspended) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&srv->mu);
}

static void stream_free(void *cls)
{
    struct sse_client *c = cls;
    struct errinj_server *srv = c->srv;
    errinj__conns_stream_ended(c->rec);
    pthread_mutex_lock(&srv->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->client_count--;
    frame_text_unref(c->pending); /* frame reference counts are guarded by mu */
    pthread_mutex_unlock(&srv->mu);
    errinj__filter_free(&c->filter);
    free(c);
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, const struct errinj__http_reply *reply)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(reply->body_len, reply->body != NULL ? reply->body : "",
                                        MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            reply->cache_control != NULL ? reply->cache_control : "no-store");
    if (reply->etag != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, reply->etag);
    if (reply->csp != NULL) {
        MHD_add_response_header(resp, "Content-Security-Policy", reply->csp);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    }
    if (reply->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
    if (reply->auth_challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (reply->close_connection)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (reply->has_seq) {
        char seq[24];
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)reply->seq);
        MHD_add_response_header(resp, "Errinj-Seq", seq);
    }
    if (reply->warning != NULL)
        MHD_add_response_header(resp, "Errinj-Warning", reply->warning);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)reply->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result start_stream(struct errinj_server *srv, struct MHD_Connection *conn,
                                    struct errinj__http_reply *reply)
{
    struct sse_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        errinj__http_error(reply, 500, "out of memory");
        return queue_reply(conn, reply);
    }
    c->srv = srv;
    c->conn = conn;
    c->filter = reply->filter;
    reply->filter = (struct errinj__filter){0};
    pthread_mutex_lock(&srv->mu);
    if (srv->client_count >= srv->max_subscribers || srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        errinj__filter_free(&c->filter);
        free(c);
        errinj__http_error(reply, 503, srv->stopping ? "server is stopping" : "too many subscribers");
        return queue_reply(conn, reply);
    }
    /* Registered before ": connected" is written, from the last seq published (not just stored):
     * whatever fires after the client reads it has a seq above this cursor, and nothing fired
     * before it is sent late. */
    uint64_t published = errinj__seq_last();
    if (c->filter.since < 0)
        c->cursor = published; /* live only: nothing published before this moment */
    else if ((uint64_t)c->filter.since > published)
        c->cursor = 0; /* an id from an earlier run of the process: replay all this run kept */
    else
        c->cursor = (uint64_t)c->filter.since;
    c->next = srv->clients;
    if (srv->clients != NULL)
        srv->clients->prev = c;
    srv->clients = c;
    srv->client_count++;
    pthread_mutex_unlock(&srv->mu);
    /* Watched from now on: a client that leaves frees its slot without waiting for a heartbeat. */
    c->rec = errinj__conns_of(conn);
    if (errinj__conns_make_stream(srv->conns, &c->rec, stream_hangup, c) != 0)
        errinj__log("errinj server: cannot watch a stream's socket; the heartbeat will find it closed");

    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, c, stream_free);
    if (resp == NULL) {
        stream_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- requests ------------------------------------------------------------------------------ */

struct request_state {
    char *body;
    size_t len;
    bool too_large;
    struct errinj__request_line line; /* where the URI lay, to find NUL bytes in the request line */
    bool started;    /* the access handler's first call has been answered */
    struct errinj__waiter *waiter; /* a server-side wait, its connection suspended until answered */
};

/* Called by libmicrohttpd with the request line's URI before anything else (and before it splits
 * off the query); what it returns is the request's *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls, (void)conn;
    struct request_state *st = calloc(1, sizeof(*st));
    if (st != NULL)
        st->line = (struct errinj__request_line){uri, strlen(uri)};
    return st;
}

struct query_collect {
    struct errinj__query_arg args[ERRINJ__QUERY_MAX + 1];
    size_t count;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_collect *q = cls;
    if (q->count <= ERRINJ__QUERY_MAX)
        q->args[q->count] = (struct errinj__query_arg){key, value};
    q->count++;
    return MHD_YES;
}

static const char *lookup_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* ---- server-side waits ----------------------------------------------------------------------- */

static void resume_connection(void *conn)
{
    MHD_resume_connection(conn);
}

/* The waiter's answer is ready (or the connection was resumed early): send it. */
static enum MHD_Result answer_wait(struct errinj_server *srv, struct MHD_Connection *conn, struct request_state *st)
{
    pthread_mutex_lock(&srv->mu);
    if (!errinj__waiter_done(st->waiter)) {
        errinj__waiter_suspended(st->waiter);
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&srv->mu);
        return MHD_YES;
    }
    struct errinj__http_reply reply;
    errinj__waiter_answer(srv->waits, st->waiter, &reply);
    st->waiter = NULL;
    pthread_mutex_unlock(&srv->mu);
    enum MHD_Result ret = queue_reply(conn, &reply);
    errinj__http_reply_free(&reply);
    return ret;
}

/* Starts a wait: answered now when the history settles it, else the connection is suspended
 * and the server thread resumes it once the answer is ready (no thread waits). */
static enum MHD_Result start_wait(struct errinj_server *srv, struct MHD_Connection *conn, struct request_state *st,
                                  struct errinj__http_reply *reply)
{
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        errinj__http_error(reply, 503, "server is stopping");
        return queue_reply(conn, reply);
    }
    struct errinj__history_view h = history_view(srv);
    st->waiter = errinj__wait_start(srv->waits, &h, &reply->wait_query, conn, errinj__now_mono_ns(), reply);
    pthread_mutex_unlock(&srv->mu);
    if (st->waiter == NULL)
        return queue_reply(conn, reply);
    /* Waits count against max_subscribers: out of the REST budget, which would shed them. */
    errinj__conns_park(srv->conns, errinj__conns_of(conn));
    return answer_wait(srv, conn, st);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct errinj_server *srv = cls;
    struct request_state *st = *con_cls;
    if (st == NULL)
        return MHD_NO; /* out of memory in on_uri */
    if (!st->started) {
        st->started = true;
        errinj__conns_head_done(errinj__conns_of(conn));
        /* A request whose line or length cannot be trusted is answered before its body is read,
         * and the connection closed: what follows on it could be anything. */
        const char *why = NULL;
        int bad = errinj__framing_check(conn, &st->line, method, version, &why);
        if (bad != 0) {
            struct errinj__http_reply refusal = {0};
            errinj__http_error(&refusal, bad, why);
            refusal.close_connection = true;
            enum MHD_Result ret = queue_reply(conn, &refusal);
            errinj__http_reply_free(&refusal);
            return ret;
        }
        return MHD_YES;
    }
    if (st->waiter != NULL)
        return answer_wait(srv, conn, st);
    if (*upload_data_size > 0) {
        /* Bodies arrive in pieces; keep up to the limit and discard the rest, answering 413 at the end. */
        size_t n = *upload_data_size;
        if (!st->too_large && st->len + n <= ERRINJ__BODY_MAX) {
            char *grown = realloc(st->body, st->len + n);
            if (grown == NULL)
                return MHD_NO;
            st->body = grown;
            memcpy(st->body + st->len, upload_data, n);
            st->len += n;
        } else {
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            st->len = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct query_collect q = {.count = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, &q);
    struct errinj__http_request req = {
        .method = method,
        .path = url,
        .query = q.args,
        .query_count = q.count,
        .header = lookup_header,
        .header_ctx = conn,
        .body = st->body != NULL ? st->body : "",
        .body_len = st->len,
        .body_too_large = st->too_large,
    };
    struct errinj__http_reply reply;
    errinj__http_handle(&srv->http, &req, &reply);
    enum MHD_Result ret = reply.stream ? start_stream(srv, conn, &reply)
                          : reply.wait ? start_wait(srv, conn, st, &reply)
                                       : queue_reply(conn, &reply);
    errinj__http_reply_free(&reply);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct errinj_server *srv = cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        errinj__conns_request_done(srv->conns, errinj__conns_of(conn));
    struct request_state *st = *con_cls;
    if (st != NULL && st->waiter != NULL) {
        pthread_mutex_lock(&srv->mu);
        errinj__waiter_abandon(srv->waits, st->waiter);
        pthread_mutex_unlock(&srv->mu);
    }
    if (st != NULL) {
        free(st->body);
        free(st);
        *con_cls = NULL;
    }
}

/* Keeps the path and query exactly as sent: http.c decodes names itself, so that "%2F" is part
 * of a name rather than a path separator. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls, (void)conn;
    return strlen(uri);
}

/* libmicrohttpd reports every client that leaves mid-stream, which is normal for event streams:
 * its messages reach stderr only with ERRINJ_DEBUG set. Start failures are error codes anyway. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (getenv("ERRINJ_DEBUG") == NULL)
        return;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    errinj__log("errinj server: %s", line);
}

static void status_of(void *ctx, unsigned *subscribers, uint64_t *dropped)
{
    struct errinj_server *srv = ctx;
    pthread_mutex_lock(&srv->mu);
    *subscribers = srv->client_count;
    *dropped = srv->lost;
    pthread_mutex_unlock(&srv->mu);
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* Binds host:port ("[v6]:port" for IPv6). Returns the fd or a negative ERRINJ_E* code. */
static int open_listener(const char *listen_addr, bool allow_remote, int *family)
{
    char host[256];
    const char *port;
    if (listen_addr[0] == '[') {
        const char *end = strchr(listen_addr, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - listen_addr - 1) >= sizeof(host))
            return ERRINJ_EINVAL;
        memcpy(host, listen_addr + 1, (size_t)(end - listen_addr - 1));
        host[end - listen_addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(listen_addr, ':');
        if (colon == NULL || (size_t)(colon - listen_addr) >= sizeof(host))
            return ERRINJ_EINVAL;
        memcpy(host, listen_addr, (size_t)(colon - listen_addr));
        host[colon - listen_addr] = '\0';
        port = colon + 1;
    }
    char *end;
    long pnum = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || pnum < 0 || pnum > 65535)
        return ERRINJ_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res) != 0 || res == NULL)
        return ERRINJ_EINVAL;
    int rc = ERRINJ_EINVAL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        bool loopback = false;
        if (ai->ai_family == AF_INET)
            loopback = (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
        else if (ai->ai_family == AF_INET6)
            loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
        else
            continue;
        if (!loopback && !allow_remote) {
            rc = ERRINJ_EACCES;
            break;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = ERRINJ_EIO;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            rc = errno == EADDRINUSE ? ERRINJ_EADDRINUSE : errno == EACCES ? ERRINJ_EACCES : ERRINJ_EIO;
            close(fd);
            continue;
        }
        *family = ai->ai_family;
        freeaddrinfo(res);
        return fd;
    }
    freeaddrinfo(res);
    return rc;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void server_free(struct errinj_server *srv)
{
    if (srv->ring != NULL)
        errinj__ring_detach(srv->ring);
    for (size_t i = 0; srv->history != NULL && i < srv->history_cap; i++)
        frame_text_unref(srv->history[i].text);
    free(srv->history);
    free(srv->batch);
    errinj__waits_free(srv->waits);
    errinj__conns_free(srv->conns);
    errinj__loop_free(srv->loop);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    pthread_mutex_destroy(&srv->mu);
    free(srv->token);
    free(srv);
}

int errinj_server_start(const errinj_server_opts *opts, errinj_server **out)
{
    static const errinj_server_opts defaults = {0};
    if (out == NULL)
        return ERRINJ_EINVAL;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&g_running, &expected, true))
        return ERRINJ_EINVAL; /* one server per process */
    struct errinj_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        atomic_store(&g_running, false);
        return ERRINJ_ENOMEM;
    }
    srv->listen_fd = -1;
    srv->wake_fd = -1;
    pthread_mutex_init(&srv->mu, NULL);
    srv->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 15000;
    srv->history_cap = opts->history ? opts->history : 65536;
    srv->max_subscribers = opts->max_subscribers ? opts->max_subscribers : 1024;
    int rc = ERRINJ_EINVAL;
    if (srv->heartbeat_ms > HEARTBEAT_MS_MAX || srv->history_cap > HISTORY_MAX || srv->max_subscribers > SUBSCRIBERS_MAX)
        goto fail;
    srv->allow_remote = opts->allow_remote;
    rc = ERRINJ_ENOMEM;
    if (opts->token != NULL && opts->token[0] != '\0' && (srv->token = strdup(opts->token)) == NULL)
        goto fail;
    srv->http = (struct errinj__http_config){srv->token, srv->allow_remote, status_of, srv};
    srv->history = calloc(srv->history_cap, sizeof(*srv->history));
    srv->batch = malloc(sizeof(*srv->batch));
    /* Waits are bounded like streams, by their own count: a suite's waits never take the
     * streams' slots. */
    srv->waits = errinj__waits_new(srv->max_subscribers, resume_connection);
    if (srv->history == NULL || srv->batch == NULL || srv->waits == NULL)
        goto fail;
    int family = AF_INET;
    srv->listen_fd = open_listener(opts->listen ? opts->listen : DEFAULT_LISTEN, opts->allow_remote, &family);
    if (srv->listen_fd < 0) {
        rc = srv->listen_fd;
        goto fail;
    }
    srv->port = bound_port(srv->listen_fd);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0) {
        rc = ERRINJ_EIO;
        goto fail;
    }
    uint64_t base = 0;
    srv->loop = errinj__loop_new(srv->wake_fd);
    srv->conns = srv->loop != NULL ? errinj__conns_new(srv->loop) : NULL;
    if (srv->conns == NULL) {
        rc = srv->loop == NULL ? ERRINJ_EIO : ERRINJ_ENOMEM;
        goto fail;
    }
    srv->ring = errinj__ring_attach(65536, wake_consumer, srv, &base);
    if (srv->ring == NULL)
        goto fail;
    srv->newest = base;
    srv->oldest = base + 1;
    /* libmicrohttpd without its own thread: server_main runs its loop (see there). */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned idle_s = 2 * srv->heartbeat_ms / 1000 + 30;
    /* Streams and waits have max_subscribers each, REST connections a budget of their own that
     * the guard keeps (conns.h), so this is reached only if the guard could not keep it. */
    srv->connection_limit = 2 * srv->max_subscribers + ERRINJ__REST_CONNS_MAX + 64;
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                                MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                MHD_OPTION_NOTIFY_CONNECTION, errinj__conns_notify, srv->conns,
                                MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, srv,
                                MHD_OPTION_CONNECTION_LIMIT, srv->connection_limit,
                                MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                                MHD_OPTION_END);
    if (srv->mhd == NULL) {
        rc = ERRINJ_EIO;
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    srv->mhd_watch = (struct errinj__watch){.fd = info != NULL ? info->epoll_fd : -1};
    srv->listen_watch = (struct errinj__watch){.fd = srv->listen_fd};
    if (srv->mhd_watch.fd < 0 || errinj__loop_watch(srv->loop, &srv->mhd_watch, EPOLLIN) != 0) {
        MHD_stop_daemon(srv->mhd);
        srv->listen_fd = -1; /* MHD closed it */
        rc = ERRINJ_EIO;
        goto fail;
    }
    if (pthread_create(&srv->thread, NULL, server_main, srv) != 0) {
        MHD_stop_daemon(srv->mhd);
        srv->listen_fd = -1; /* MHD closed it */
        rc = ERRINJ_ENOMEM;
        goto fail;
    }
    atomic_store(&g_server, srv);
    errinj__set_delivery_wait(wait_delivered, srv);
    *out = srv;
    return 0;
fail:
    server_free(srv);
    atomic_store(&g_running, false);
    return rc;
}

unsigned errinj_server_port(const errinj_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void errinj__server_forget_in_child(void)
{
    struct errinj_server *srv = atomic_exchange(&g_server, NULL);
    if (srv == NULL)
        return;
    /* Its threads did not survive fork(): stopping them would hang. Close what would keep the
     * parent's port and wake-ups tied to the child, leak the rest, and let the child start anew. */
    srv->orphaned = true;
    close(srv->wake_fd);
    close(srv->listen_fd);
    atomic_store(&g_running, false);
}

void errinj_server_stop(errinj_server *srv)
{
    if (srv == NULL || srv->orphaned)
        return;
    atomic_store(&g_server, NULL);
    errinj__set_delivery_wait(NULL, NULL); /* waits out an abort's wait in progress */
    atomic_store(&srv->consumer_stop, true);
    wake_consumer(srv);
    pthread_join(srv->thread, NULL); /* it ended the streams */
    MHD_stop_daemon(srv->mhd);
    srv->listen_fd = -1; /* MHD closed it */
    /* No thread of the application may stay parked for a message only the server could send. */
    errinj_disable_all();
    server_free(srv);
    atomic_store(&g_running, false);
}
