/*
 * ws.h - the WebSocket session channel: GET /v2/error_injection/ws (RFC 6455), described in
 * errinj-events(7).
 *
 * A session is an event stream and a command channel on one connection. Out go the events
 * that pass its filters (each a text frame holding the same JSON the SSE stream sends),
 * overflow notices, and the replies to its commands; in come commands `{"id":I,"op":OP,...}`
 * that the REST router runs. Injections a session enabled with "session": true are disabled
 * when it closes, however it closes (close frame, FIN, RST, server stop).
 *
 * libmicrohttpd answers the handshake with 101 and hands over the socket; from then on ws.c
 * owns it: libwslay does the framing (without I/O) and the server thread's loop (loop.h) tells
 * when the socket is readable or writable. Like an SSE stream, a session is a cursor into the
 * server's history: a firing thread never sees it. What it has queued to send is bounded; a
 * client that stops reading stalls only its own cursor, which the history may overtake (the
 * client then gets an overflow notice), and its commands are not read meanwhile.
 *
 * Every function runs on the server thread (errinj__ws_stop() also with the server thread
 * ending). Functions that say so take the host's mutex themselves; the others need it held.
 */
#ifndef ERRINJ_WS_H
#define ERRINJ_WS_H

#include "history.h"
#include "http.h"
#include "loop.h"

#include <microhttpd.h>

#include <stdbool.h>
#include <stdint.h>

struct errinj__ws;
struct errinj__ws_session;

/* What the sessions need of the server: its mutex and, with it held, the history. */
struct errinj__ws_host {
    pthread_mutex_t *mu;
    struct errinj__history_view (*history)(void *arg);
    void *arg;
};

/* Sessions on loop, with at most max_waits `wait` commands open at a time. Pair with
 * errinj__ws_free(). NULL when out of memory. */
struct errinj__ws *errinj__ws_new(struct errinj__loop *loop, const struct errinj__ws_host *host, unsigned max_waits);
/* After errinj__ws_stop() (or when no session was ever opened). */
void errinj__ws_free(struct errinj__ws *ws);
/* Sessions registered, upgraded or not; mu held. */
unsigned errinj__ws_count(const struct errinj__ws *ws);

/*
 * Registers a session with filter (taken) for a request whose handshake passed, and returns
 * the 101 response to queue (the caller destroys its reference), or NULL with reply set to the
 * error (503 when the server stops, 500 out of memory). Events published from now on reach it.
 * *pending is set to the session and cleared when libmicrohttpd hands over the socket; if the
 * request ends before that, pass it to errinj__ws_abandon(). Takes mu.
 */
struct MHD_Response *errinj__ws_open(struct errinj__ws *ws, struct errinj__filter *filter, const char *accept,
                                     bool with_protocol, struct errinj__ws_session **pending,
                                     struct errinj__http_reply *reply);
/* The request of a session that never got its socket ended. Takes mu. */
void errinj__ws_abandon(struct errinj__ws *ws, struct errinj__ws_session *s);

/* New events are in the history (or its waits' deadlines may have passed): queue them to every
 * session, answer the `wait` commands now settled, and write what the sockets take. mu held. */
void errinj__ws_pump(struct errinj__ws *ws, const struct errinj__history_view *h);
/* A heartbeat: a ping frame to every session (it finds dead clients). mu held. */
void errinj__ws_ping(struct errinj__ws *ws);
/* Once per turn of the server loop, outside the loop's callbacks: frees closed sessions (their
 * session-owned injections disabled), times out waits and lingering closes. Returns the next
 * deadline (monotonic ns) it needs a turn at, or INT64_MAX. Takes mu. */
int64_t errinj__ws_tick(struct errinj__ws *ws);
/* The server stops: every session gets a close frame (1001) and is ended. Takes mu. */
void errinj__ws_stop(struct errinj__ws *ws);

/*
 * What the fuzzer drives: one session over the socket fd (one end of a socketpair), as if
 * libmicrohttpd had just handed it over, with extra bytes already read. The session reads and
 * answers as a real one; errinj__ws_tick() frees it once it closed. Takes mu.
 */
struct errinj__ws_session *errinj__ws_attach(struct errinj__ws *ws, int fd, const char *extra, size_t extra_len);

#endif /* ERRINJ_WS_H */
