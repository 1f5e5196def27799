/*
 * server.h - what the files of the embedded HTTP server share, and nothing else includes.
 *
 * The server is one object used by one thread: server.c starts and stops it (options, the
 * listener, libmicrohttpd's daemon); server_loop.c is its thread (drains the events into the
 * history, heartbeats, the connection guard); the mhd_*.c files are libmicrohttpd's callbacks:
 * reading a request (mhd_request.c), answering it by the kind of reply http.c made
 * (mhd_dispatch.c), the SSE responses (mhd_sse.c) and the WebSocket upgrade (mhd_ws.c, handing
 * over to ws.c). The struct is here, not in server.c,
 * because all of them read it; only these files may.
 *
 * Locking: `mu` guards the history, the client list and the waits. Every user runs on the
 * server thread, except the stream free callbacks that MHD_stop_daemon() makes from the
 * stopping thread and the abort path's delivery wait; firing threads never take it.
 */
#ifndef ERRINJ_SERVER_H
#define ERRINJ_SERVER_H

#include "conns.h"
#include "events.h"
#include "http.h"
#include "json.h"
#include "lifecycle.h"
#include "log.h"
#include "util.h"
#include "framing.h"
#include "history.h"
#include "loop.h"
#include "stream.h"
#include "wait.h"
#include "ws.h"

#include <microhttpd.h>
#include <pthread.h>

#define ERRINJ__DRAIN_BATCH 1024

/* An SSE stream's connection: its cursor (stream.c) and what libmicrohttpd needs of it. */
struct sse_client {
    struct errinj_server *srv;
    struct MHD_Connection *conn;
    struct errinj__stream stream;
    bool suspended;
    bool peer_gone;  /* the client closed its socket (seen by the connection guard) */
    struct errinj__conn *rec; /* the guard's record; NULL once libmicrohttpd closed the connection */
    struct sse_client *prev, *next;
};

/* The server thread's drain buffer: a batch of frames made outside the mutex. */
struct errinj__drain_batch {
    size_t count;
    uint64_t seq[ERRINJ__DRAIN_BATCH];
    uint64_t lost_before[ERRINJ__DRAIN_BATCH];
    struct frame frame[ERRINJ__DRAIN_BATCH];
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
    struct errinj__history history;
    uint64_t lost;   /* seqs the ring dropped */
    struct sse_client *clients;
    unsigned client_count;
    struct errinj__waits *waits; /* server-side waits (wait.c) */
    struct errinj__ws *ws;       /* WebSocket sessions (ws.c) */
    bool stopping;

    struct errinj__ring *ring;
    int wake_fd;
    struct errinj__loop *loop;   /* what the server thread sleeps on */
    struct errinj__watch mhd_watch; /* libmicrohttpd's epoll fd in the loop */
    struct errinj__watch listen_watch; /* the listener, while libmicrohttpd takes what it has */
    struct errinj__conns *conns; /* the connection guard */
    unsigned connection_limit;   /* libmicrohttpd's */
    atomic_bool consumer_stop;
    uint64_t stop_seq; /* the newest seq when stop was asked, written before consumer_stop is set */
    pthread_t thread; /* the server thread: ring consumer and libmicrohttpd's loop */
    struct errinj__drain_batch *batch; /* the server thread's drain buffer, allocated at start */
    uint64_t dropped_seen; /* the ring's drop count when the server thread last looked */
    atomic_uint_fast64_t passes; /* turns of the server thread's loop, for abort's wait */
    bool orphaned; /* this is a fork()ed child: the server's threads live in the parent only */
};

/* What one request carries between libmicrohttpd's calls: its *con_cls. */
struct request_state {
    char *body;
    size_t len;
    bool too_large;
    struct errinj__request_line line; /* where the URI lay, to find NUL bytes in the request line */
    bool started;    /* the access handler's first call has been answered */
    struct errinj__waiter *waiter; /* a server-side wait, its connection suspended until answered */
    struct errinj_server *srv;     /* set with waiter: for the hang-up of its client */
    struct errinj__ws_session *ws_pending; /* a WebSocket session until its 101 went out (ws.h) */
};

/* ---- server_loop.c: the server thread ---------------------------------------------------- */

/* The thread's body (pthread_create's start routine); returns once consumer_stop is set and
 * the streams have ended. */
void *errinj__server_main(void *arg);
/* Wakes the server thread (the ring's wake callback; any thread). */
void errinj__server_wake(void *arg);
/* For abort: returns once every stream has been handed seq, or at deadline_ns (any thread). */
void errinj__server_wait_delivered(void *arg, uint64_t seq, int64_t deadline_ns);

/* ---- mhd_request.c: libmicrohttpd's request callbacks ------------------------------------ */

void *errinj__mhd_on_uri(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result errinj__mhd_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                       const char *version, const char *upload_data, size_t *upload_data_size,
                                       void **con_cls);
void errinj__mhd_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe);
size_t errinj__mhd_keep_escaped(void *cls, struct MHD_Connection *conn, char *uri);
void errinj__mhd_log(void *cls, const char *fmt, va_list ap);

/* ---- mhd_dispatch.c: answering a request by its reply's kind ----------------------------- */

/* Answers with what http.c made of the request: a plain reply, an SSE stream or a wait. */
enum MHD_Result errinj__mhd_dispatch(struct errinj_server *srv, struct MHD_Connection *conn,
                                     struct request_state *st, struct errinj__http_reply *reply);
/* Queues a plain reply with its headers. */
enum MHD_Result errinj__mhd_queue_reply(struct MHD_Connection *conn, const struct errinj__http_reply *reply);
/* A resumed wait's connection: answers it, or suspends it again if its answer is not ready. */
enum MHD_Result errinj__mhd_answer_wait(struct errinj_server *srv, struct MHD_Connection *conn,
                                        struct request_state *st);
/* Resumes a suspended connection (the waits' resume callback). */
void errinj__mhd_resume(void *conn);

/* ---- mhd_sse.c: SSE stream responses ---------------------------------------------------- */

/* Registers a stream with reply's filter and queues its response; a 503 when full or stopping. */
enum MHD_Result errinj__sse_start(struct errinj_server *srv, struct MHD_Connection *conn,
                                  struct errinj__http_reply *reply);
/* Resumes every suspended stream, to read what is new; mu held. */
void errinj__sse_resume_all_locked(struct errinj_server *srv);
/* Marks a heartbeat due on every stream and resumes them; takes mu. */
void errinj__sse_ping_all(struct errinj_server *srv);
/* True when every stream has been handed seq whole; mu held. */
bool errinj__sse_delivered_locked(const struct errinj_server *srv, uint64_t seq);

/* ---- mhd_ws.c: the WebSocket upgrade ---------------------------------------------------- */

/* Checks the handshake and queues the 101 of a new session (ws.c), or the error (400, 426, 503). */
enum MHD_Result errinj__mhd_ws_start(struct errinj_server *srv, struct MHD_Connection *conn, struct request_state *st,
                                     struct errinj__http_reply *reply);

#endif /* ERRINJ_SERVER_H */
