/*
 * conns.c - the connection guard (see conns.h).
 *
 * Records of REST connections sit on one list in the order they started waiting for a request
 * head (connecting, or finishing a request on a kept-alive connection), so the oldest waiter,
 * which is the first to pass its deadline and the one to close when room is needed, is always
 * at the front. A stream leaves the list; a closed-by-us connection leaves it too and its
 * record lives on until libmicrohttpd reports the connection closed.
 */
#define _GNU_SOURCE
#include "conns.h"

#include "util.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define HEAD_TIMEOUT_NS ((int64_t)ERRINJ__HEAD_TIMEOUT_S * 1000000000)

struct errinj__conn {
    struct errinj__conns *guard;
    struct errinj__watch watch; /* streams: the client leaving */
    int64_t waiting_since;      /* when it started waiting for a request head */
    bool head_done;             /* a request head arrived and its request has not ended */
    bool listed;                /* on the REST list */
    bool stream;
    bool parked;                /* a long-poll wait held on the server, its socket watched */
    bool shut;                  /* shut down by the guard: libmicrohttpd will close it */
    void (*on_hangup)(void *arg);
    void *hangup_arg;
    struct errinj__conn **owner_ref; /* the stream's pointer to this record, cleared at close */
    struct errinj__conn *prev, *next;
};

struct errinj__conns {
    struct errinj__loop *loop;
    struct errinj__conn *head, *tail; /* REST connections, oldest waiting first */
    unsigned listed;
    uint64_t closed_by_guard;
};

struct errinj__conns *errinj__conns_new(struct errinj__loop *loop)
{
    struct errinj__conns *g = calloc(1, sizeof(*g));
    if (g != NULL)
        g->loop = loop;
    return g;
}

void errinj__conns_free(struct errinj__conns *g)
{
    /* Records belong to libmicrohttpd's connections, which are all closed (and reported) by
     * MHD_stop_daemon() before this runs. */
    free(g);
}

static void unlink_rec(struct errinj__conns *g, struct errinj__conn *rec)
{
    if (!rec->listed)
        return;
    if (rec->prev != NULL)
        rec->prev->next = rec->next;
    else
        g->head = rec->next;
    if (rec->next != NULL)
        rec->next->prev = rec->prev;
    else
        g->tail = rec->prev;
    rec->prev = rec->next = NULL;
    rec->listed = false;
    g->listed--;
}

static void append_rec(struct errinj__conns *g, struct errinj__conn *rec)
{
    rec->prev = g->tail;
    rec->next = NULL;
    if (g->tail != NULL)
        g->tail->next = rec;
    else
        g->head = rec;
    g->tail = rec;
    rec->listed = true;
    g->listed++;
}

/* Ends a connection from outside libmicrohttpd: it sees the end of the stream on its next turn. */
static void shut(struct errinj__conns *g, struct errinj__conn *rec)
{
    unlink_rec(g, rec);
    if (rec->shut)
        return;
    rec->shut = true;
    g->closed_by_guard++;
    shutdown(rec->watch.fd, SHUT_RDWR);
}

/* The oldest connection waiting for a head, else (when any_state) the oldest REST connection. */
static struct errinj__conn *oldest(struct errinj__conns *g, bool any_state)
{
    for (struct errinj__conn *r = g->head; r != NULL; r = r->next)
        if (!r->head_done)
            return r;
    return any_state ? g->head : NULL;
}

void errinj__conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct errinj__conns *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct errinj__conn *rec = info != NULL ? calloc(1, sizeof(*rec)) : NULL;
        *socket_context = rec;
        if (rec == NULL)
            return; /* out of memory: libmicrohttpd's own timeout still applies */
        rec->guard = g;
        rec->watch.fd = info->connect_fd;
        rec->waiting_since = errinj__now_mono_ns();
        /* Room for this one: the REST budget closes the oldest waiter (or, if every one has sent
         * its head, the oldest REST connection: a body trickling in is no better). */
        while (g->listed >= ERRINJ__REST_CONNS_MAX) {
            struct errinj__conn *victim = oldest(g, true);
            if (victim == NULL)
                break;
            shut(g, victim);
        }
        append_rec(g, rec);
        return;
    }
    struct errinj__conn *rec = *socket_context;
    if (rec == NULL)
        return;
    /* Closed: libmicrohttpd closes the socket after this returns, so stop watching it now. */
    errinj__loop_unwatch(g->loop, &rec->watch);
    unlink_rec(g, rec);
    /* The stream's owner may outlive this record (libmicrohttpd frees responses later). */
    if (rec->owner_ref != NULL)
        *rec->owner_ref = NULL;
    free(rec);
    *socket_context = NULL;
}

struct errinj__conn *errinj__conns_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
}

void errinj__conns_head_done(struct errinj__conn *rec)
{
    if (rec != NULL)
        rec->head_done = true;
}

void errinj__conns_request_done(struct errinj__conns *g, struct errinj__conn *rec)
{
    if (rec == NULL || rec->stream || rec->shut)
        return;
    rec->head_done = false;
    rec->waiting_since = errinj__now_mono_ns();
    unlink_rec(g, rec);
    append_rec(g, rec);
}

static void on_socket_event(void *arg, uint32_t events);

int errinj__conns_park(struct errinj__conns *g, struct errinj__conn *rec, void (*on_hangup)(void *arg), void *arg)
{
    if (rec == NULL)
        return 0; /* no record (out of memory at connect): the wait ends at its answer */
    unlink_rec(g, rec);
    if (on_hangup == NULL)
        return 0;
    rec->parked = true;
    rec->on_hangup = on_hangup;
    rec->hangup_arg = arg;
    rec->watch.fn = on_socket_event;
    rec->watch.arg = rec;
    return errinj__loop_watch(g->loop, &rec->watch, EPOLLRDHUP);
}

void errinj__conns_unpark(struct errinj__conn *rec)
{
    if (rec == NULL || !rec->parked)
        return;
    rec->parked = false;
    rec->on_hangup = NULL;
    /* The connection stays open (kept alive): its next request is an ordinary REST one. */
    errinj__loop_unwatch(rec->guard->loop, &rec->watch);
}

static void on_socket_event(void *arg, uint32_t events)
{
    struct errinj__conn *rec = arg;
    if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    /* Level-triggered: stop watching, or the hang-up would be reported on every turn. */
    errinj__loop_unwatch(rec->guard->loop, &rec->watch);
    void (*fn)(void *) = rec->on_hangup;
    rec->on_hangup = NULL;
    if (fn != NULL)
        fn(rec->hangup_arg);
}

int errinj__conns_make_stream(struct errinj__conns *g, struct errinj__conn **ref, void (*on_hangup)(void *arg),
                              void *arg)
{
    struct errinj__conn *rec = *ref;
    if (rec == NULL)
        return 0; /* no record (out of memory at connect): the heartbeat finds a dead client */
    unlink_rec(g, rec);
    rec->owner_ref = ref;
    rec->stream = true;
    rec->on_hangup = on_hangup;
    rec->hangup_arg = arg;
    rec->watch.fn = on_socket_event;
    rec->watch.arg = rec;
    return errinj__loop_watch(g->loop, &rec->watch, EPOLLRDHUP);
}

void errinj__conns_stream_ended(struct errinj__conn *rec)
{
    if (rec != NULL) {
        rec->on_hangup = NULL;
        rec->owner_ref = NULL;
    }
}

int64_t errinj__conns_sweep(struct errinj__conns *g)
{
    int64_t now = errinj__now_mono_ns();
    struct errinj__conn *r = g->head;
    while (r != NULL) {
        struct errinj__conn *next = r->next;
        if (r->waiting_since + HEAD_TIMEOUT_NS > now)
            return (r->waiting_since + HEAD_TIMEOUT_NS - now) / 1000000 + 1;
        if (!r->head_done)
            shut(g, r);
        r = next;
    }
    return -1;
}

bool errinj__conns_shed_one(struct errinj__conns *g)
{
    struct errinj__conn *victim = oldest(g, false);
    if (victim == NULL)
        return false;
    shut(g, victim);
    return true;
}

uint64_t errinj__conns_closed_by_guard(const struct errinj__conns *g)
{
    return g->closed_by_guard;
}
