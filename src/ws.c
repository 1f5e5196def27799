/*
 * ws.c - the WebSocket session channel's sessions (see ws.h): socket I/O with libwslay, the
 * event pump, closing and lingering, the tick. What a text message asks for is ws_commands.c's.
 *
 * Framing is libwslay's: it parses and checks the client's frames (masking, opcodes, control
 * frame sizes, fragments; a violation is a 1002 close, a message over 1 MiB a 1009), answers
 * pings and close frames, and builds the replies' and control frames. It does no I/O of its own:
 * its receive callback reads the socket (after the bytes libmicrohttpd read past the handshake),
 * and its send callback fills a per-session buffer that one send(2) writes, so a burst of events
 * costs one system call per session, not one per frame. What events a session is sent, and how
 * they get into that buffer, is ws_events.c's.
 *
 * A text message is checked for UTF-8 here (libwslay does not; invalid text closes with 1007),
 * binary messages close with 1003, and a text message is a command, run by ws_commands.c.
 *
 * A session is closed in three steps, so that no loop callback frees what the loop still uses:
 * it is marked closed (its watch removed) where the close is found; the server loop's next turn
 * (errinj__ws_tick) disables the injections it owns, forgets its waits and frees it. A close
 * the server starts (a bad frame, stopping) lingers: after the close frame is written the
 * sending side is shut and the client has a moment to answer before the socket goes, so that
 * it reads the close code rather than a reset.
 */
#define _GNU_SOURCE
#include "ws_session.h"

#include "events.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "wait.h"

#include <wslay/wslay.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long a closing session waits for the client to close its side, and for the socket. */
#define LINGER_NS (2000ll * 1000 * 1000)
#define PENDING_NS (30ll * 1000 * 1000 * 1000)

static void session_pump(struct errinj__ws_session *s, const struct errinj__history_view *h);

/* ---- sessions: I/O ------------------------------------------------------------------------- */

void errinj__ws_session_mark_closed(struct errinj__ws_session *s)
{
    if (s->closed)
        return;
    s->closed = true;
    errinj__loop_unwatch(s->ws->loop, &s->watch);
    s->watching = 0;
    s->dead_next = s->ws->dead;
    s->ws->dead = s;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct errinj__ws_session *s = user;
    if (s->extra_len > 0) {
        size_t n = s->extra_len < len ? s->extra_len : len;
        memcpy(buf, s->extra, n);
        s->extra += n;
        s->extra_len -= n;
        return (ssize_t)n;
    }
    ssize_t n = recv(s->fd, buf, len, MSG_DONTWAIT);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    /* The client's end (FIN) or a reset: a client that crashed sends no close frame. */
    s->peer_gone = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)flags;
    struct errinj__ws_session *s = user;
    size_t room = sizeof(s->out) - s->out_len;
    /* libwslay fails a connection on a malformed control frame (fragmented, or over 125 bytes)
     * with a close frame that has no status at all; RFC 6455 wants 1002 there. Its one empty
     * close of its own is that one (an empty close from the client is answered as it came). */
    if (len == 2 && data[0] == 0x88 && data[1] == 0x00 && !wslay_event_get_close_received(ctx) && room >= 4) {
        static const uint8_t protocol_error[4] = {0x88, 0x02, WSLAY_CODE_PROTOCOL_ERROR >> 8,
                                                  WSLAY_CODE_PROTOCOL_ERROR & 0xff};
        memcpy(s->out + s->out_len, protocol_error, sizeof(protocol_error));
        s->out_len += sizeof(protocol_error);
        return 2;
    }
    if (room == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < room ? len : room;
    memcpy(s->out + s->out_len, data, n);
    s->out_len += n;
    return (ssize_t)n;
}

/* Starts the end of a session whose close frame is out: shut our side, wait for the client's. */
static void session_linger(struct errinj__ws_session *s)
{
    if (s->lingering)
        return;
    s->lingering = true;
    s->linger_until = errinj__now_mono_ns() + LINGER_NS;
    shutdown(s->fd, SHUT_WR);
}

/* Writes what libwslay has queued until the socket takes no more. False when the session ended. */
static bool session_flush(struct errinj__ws_session *s)
{
    if (s->closed || !s->upgraded)
        return !s->closed;
    for (;;) {
        while (s->out_off < s->out_len) {
            ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return true;
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                errinj__ws_session_mark_closed(s);
                return false;
            }
            s->out_off += (size_t)n;
        }
        s->out_len = s->out_off = 0;
        if (s->lingering || !wslay_event_want_write(s->ctx))
            break;
        if (wslay_event_send(s->ctx) != 0) {
            errinj__ws_session_mark_closed(s);
            return false;
        }
        if (s->out_len == 0)
            break;
    }
    if (wslay_event_get_close_sent(s->ctx) && s->out_len == 0)
        session_linger(s);
    return true;
}

static void on_socket(void *arg, uint32_t events);

/* Watches for what the session can use now: input unless it has too much queued, output while
 * something waits to be written. */
static void session_rewatch(struct errinj__ws_session *s)
{
    if (s->closed || !s->upgraded)
        return;
    uint32_t want = EPOLLRDHUP;
    bool backlog = s->out_len > s->out_off || wslay_event_want_write(s->ctx);
    if (s->lingering ||
        (wslay_event_want_read(s->ctx) && wslay_event_get_queued_msg_length(s->ctx) < ERRINJ__WS_QUEUE_MAX))
        want |= EPOLLIN;
    if (backlog && !s->lingering)
        want |= EPOLLOUT;
    if (want == s->watching)
        return;
    if (s->watch.armed)
        errinj__loop_unwatch(s->ws->loop, &s->watch);
    s->watch = (struct errinj__watch){.fd = s->fd, .fn = on_socket, .arg = s};
    if (errinj__loop_watch(s->ws->loop, &s->watch, want) != 0) {
        errinj__log("errinj server: cannot watch a WebSocket; closing it");
        errinj__ws_session_mark_closed(s);
        return;
    }
    s->watching = want;
}

void errinj__ws_session_queue_text(struct errinj__ws_session *s, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    if (wslay_event_queue_msg(s->ctx, &msg) == WSLAY_ERR_NOMEM)
        errinj__ws_session_mark_closed(s);
}

static void queue_close(struct errinj__ws_session *s, uint16_t code, const char *reason)
{
    wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(s->ctx);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0, len; i < n; i += len) {
        len = errinj__utf8_sequence(p + i, n - i, NULL);
        if (len == 0)
            return false;
    }
    return true;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ctx;
    struct errinj__ws_session *s = user;
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        queue_close(s, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted; send JSON text");
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME)
        return; /* pings, pongs and closes are libwslay's */
    if (!utf8_valid(arg->msg, arg->msg_length)) {
        queue_close(s, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "text message is not UTF-8");
        return;
    }
    errinj__ws_command(s, (const char *)arg->msg, arg->msg_length);
}

/* ---- sessions: life ------------------------------------------------------------------------- */

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_msg_recv_callback = on_message,
};

/* Reads what the socket has: commands while a session is open, the client's end while it
 * lingers. */
static void session_read(struct errinj__ws_session *s)
{
    if (s->lingering) {
        char sink[4096];
        for (;;) {
            ssize_t n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0 && errno == EINTR)
                continue;
            errinj__ws_session_mark_closed(s); /* the client's end: done */
            return;
        }
    }
    if (!wslay_event_want_read(s->ctx) || wslay_event_recv(s->ctx) == 0)
        return;
    /* libwslay fails on some malformed frames (a fragmented or oversized control frame) with
     * its 1002 queued, or none: either way the client gets the code, unless it is gone. */
    if (s->peer_gone) {
        errinj__ws_session_mark_closed(s);
        return;
    }
    wslay_event_queue_close(s->ctx, WSLAY_CODE_PROTOCOL_ERROR, (const uint8_t *)"malformed frame", 15);
    if (!wslay_event_want_write(s->ctx) && !wslay_event_get_close_sent(s->ctx))
        errinj__ws_session_mark_closed(s);
}

static void on_socket(void *arg, uint32_t events)
{
    struct errinj__ws_session *s = arg;
    if (s->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        session_read(s);
    if (s->closed)
        return;
    /* The client said goodbye: its injections go before the answering close frame does, so a
     * client that saw the close finish finds them disabled. */
    if (s->owned_count > 0 && wslay_event_get_close_received(s->ctx))
        errinj__ws_release_owned(s);
    struct errinj__ws *ws = s->ws;
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    if (!s->closed && !s->lingering && !wslay_event_get_read_enabled(s->ctx) && !wslay_event_want_write(s->ctx) &&
        s->out_len == 0 && !wslay_event_get_close_sent(s->ctx))
        errinj__ws_session_mark_closed(s); /* reading ended (the client's FIN) with nothing left to say */
}

static int session_start(struct errinj__ws_session *s, int fd, const char *extra, size_t extra_len)
{
    s->fd = fd;
    s->extra = extra;
    s->extra_len = extra_len;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (wslay_event_context_server_init(&s->ctx, &callbacks, s) != 0)
        return ERRINJ_ENOMEM;
    wslay_event_config_set_max_recv_msg_length(s->ctx, ERRINJ__BODY_MAX);
    s->upgraded = true;
    /* Bytes the client sent with its handshake are commands like any other. */
    if (extra_len > 0)
        session_read(s);
    return 0;
}

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn, (void)con_cls;
    struct errinj__ws_session *s = cls;
    struct errinj__ws *ws = s->ws;
    s->urh = urh;
    if (s->pending != NULL)
        *s->pending = NULL;
    s->pending = NULL;
    if (session_start(s, sock, extra_in, extra_in_size) != 0) {
        errinj__ws_session_mark_closed(s);
        return;
    }
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    /* libmicrohttpd's buffer of extra bytes is not ours after this returns. */
    if (s->extra_len > 0) {
        errinj__log("errinj server: a WebSocket client sent more with its handshake than was read; closing it");
        errinj__ws_session_mark_closed(s);
    }
    s->extra = NULL;
    s->extra_len = 0;
}

static struct errinj__ws_session *session_new(struct errinj__ws *ws, struct errinj__filter *filter)
{
    struct errinj__ws_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ws = ws;
    s->fd = -1;
    s->filter = *filter;
    *filter = (struct errinj__filter){0};
    s->opened_ns = errinj__now_mono_ns();
    /* From the last seq published, as an SSE stream starts: whatever fires once the client has
     * the 101 reaches it, and a replay starts where it asked. */
    uint64_t published = errinj__seq_last();
    if (s->filter.since < 0)
        s->cursor = published;
    else if ((uint64_t)s->filter.since > published)
        s->cursor = 0;
    else
        s->cursor = (uint64_t)s->filter.since;
    s->next = ws->sessions;
    if (ws->sessions != NULL)
        ws->sessions->prev = s;
    ws->sessions = s;
    ws->count++;
    return s;
}

struct MHD_Response *errinj__ws_open(struct errinj__ws *ws, struct errinj__filter *filter, const char *accept,
                                     bool with_protocol, struct errinj__ws_session **pending,
                                     struct errinj__http_reply *reply)
{
    pthread_mutex_lock(ws->host.mu);
    struct errinj__ws_session *s = ws->stopping ? NULL : session_new(ws, filter);
    pthread_mutex_unlock(ws->host.mu);
    if (s == NULL) {
        errinj__filter_free(filter);
        errinj__http_error(reply, ws->stopping ? 503 : 500, ws->stopping ? "server is stopping" : "out of memory");
        return NULL;
    }
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, s);
    if (resp == NULL) {
        errinj__ws_abandon(ws, s);
        errinj__http_error(reply, 500, "out of memory");
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    /* libmicrohttpd adds Connection: Upgrade itself. */
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    if (with_protocol)
        MHD_add_response_header(resp, "Sec-WebSocket-Protocol", "errinj");
    s->pending = pending;
    *pending = s;
    return resp;
}

void errinj__ws_abandon(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    (void)ws;
    s->pending = NULL;
    errinj__ws_session_mark_closed(s);
}

struct errinj__ws_session *errinj__ws_attach(struct errinj__ws *ws, int fd, const char *extra, size_t extra_len)
{
    struct errinj__filter none = {.shard = -1, .since = -1, .phases = 1u << ERRINJ__PHASE_HIT};
    pthread_mutex_lock(ws->host.mu);
    struct errinj__ws_session *s = session_new(ws, &none);
    pthread_mutex_unlock(ws->host.mu);
    if (s == NULL)
        return NULL;
    if (session_start(s, fd, extra, extra_len) != 0) {
        errinj__ws_session_mark_closed(s);
        return s;
    }
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    s->extra = NULL;
    s->extra_len = 0;
    return s;
}

/* ---- the pump --------------------------------------------------------------------------------- */

/* Queues and writes until the session has all the history has, or its socket takes no more.
 * mu held. */
static void session_pump(struct errinj__ws_session *s, const struct errinj__history_view *h)
{
    if (s->closed || !s->upgraded)
        return;
    for (;;) {
        errinj__ws_session_queue_events(s, h);
        if (!session_flush(s))
            return;
        /* Everything queued went out while events are left: go on, or nothing would wake this
         * session for them (it waits for writability only while something is unwritten). */
        bool drained = s->out_len == 0 && !wslay_event_want_write(s->ctx);
        if (!drained || s->cursor >= h->newest || s->lingering || wslay_event_get_close_sent(s->ctx))
            break;
    }
    session_rewatch(s);
}


static void resume_nothing(void *conn)
{
    (void)conn; /* settled waits are found by errinj__ws_answer_settled_waits() after each advance */
}

void errinj__ws_pump(struct errinj__ws *ws, const struct errinj__history_view *h)
{
    if (ws->wait_list != NULL) {
        errinj__waits_advance(ws->waits, h, errinj__now_mono_ns());
        errinj__ws_answer_settled_waits(ws);
    }
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next)
        session_pump(s, h);
}

void errinj__ws_ping(struct errinj__ws *ws)
{
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed || !s->upgraded || s->lingering || wslay_event_get_close_sent(s->ctx))
            continue;
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
        wslay_event_queue_msg(s->ctx, &ping);
        if (session_flush(s))
            session_rewatch(s);
    }
}

/* ---- ends ----------------------------------------------------------------------------------- */


/* Frees a closed session: its waits forgotten, its injections disabled, its socket given back. */
static void session_free(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    pthread_mutex_lock(ws->host.mu);
    errinj__ws_forget_waits(ws, s);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ws->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    ws->count--;
    pthread_mutex_unlock(ws->host.mu);
    errinj__ws_release_owned(s);
    if (s->ctx != NULL)
        wslay_event_context_free(s->ctx);
    if (s->urh != NULL)
        MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    else if (s->fd >= 0)
        close(s->fd); /* a fuzzer's socket */
    if (s->pending != NULL)
        *s->pending = NULL;
    errinj__filter_free(&s->filter);
    free(s);
}

int64_t errinj__ws_tick(struct errinj__ws *ws)
{
    int64_t now = errinj__now_mono_ns(), next = INT64_MAX;
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed)
            continue;
        if (s->lingering && now >= s->linger_until)
            errinj__ws_session_mark_closed(s);
        else if (s->lingering && s->linger_until < next)
            next = s->linger_until;
        /* A 101 that never went out (the client left, or never read it) ends with its request;
         * this only catches a request libmicrohttpd never reported ending. */
        if (!s->upgraded && s->pending == NULL && now >= s->opened_ns + PENDING_NS)
            errinj__ws_session_mark_closed(s);
    }
    pthread_mutex_lock(ws->host.mu);
    if (ws->wait_list != NULL) {
        int64_t deadline = errinj__waits_next_deadline(ws->waits);
        if (deadline <= now) {
            struct errinj__history_view h = ws->host.history(ws->host.arg);
            errinj__waits_advance(ws->waits, &h, now);
            errinj__ws_answer_settled_waits(ws);
            for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next)
                if (!s->closed && s->upgraded && session_flush(s))
                    session_rewatch(s);
            deadline = errinj__waits_next_deadline(ws->waits);
        }
        if (deadline < next)
            next = deadline;
    }
    pthread_mutex_unlock(ws->host.mu);
    while (ws->dead != NULL) {
        struct errinj__ws_session *s = ws->dead;
        ws->dead = s->dead_next;
        session_free(ws, s);
    }
    return next;
}

struct errinj__ws *errinj__ws_new(struct errinj__loop *loop, const struct errinj__ws_host *host, unsigned max_waits)
{
    struct errinj__ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->loop = loop;
    ws->host = *host;
    ws->waits = errinj__waits_new(max_waits, resume_nothing);
    if (ws->waits == NULL) {
        free(ws);
        return NULL;
    }
    return ws;
}

void errinj__ws_stop(struct errinj__ws *ws)
{
    pthread_mutex_lock(ws->host.mu);
    ws->stopping = true;
    errinj__waits_stop(ws->waits);
    errinj__ws_answer_settled_waits(ws);
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed)
            continue;
        if (s->upgraded && !wslay_event_get_close_sent(s->ctx)) {
            queue_close(s, WSLAY_CODE_GOING_AWAY, "server is stopping");
            session_flush(s);
        }
        errinj__ws_session_mark_closed(s);
    }
    pthread_mutex_unlock(ws->host.mu);
    errinj__ws_tick(ws);
}

void errinj__ws_free(struct errinj__ws *ws)
{
    if (ws == NULL)
        return;
    errinj__waits_free(ws->waits);
    free(ws);
}

unsigned errinj__ws_count(const struct errinj__ws *ws)
{
    return ws->count;
}
