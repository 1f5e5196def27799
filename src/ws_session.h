/*
 * ws_session.h - what the parts of the WebSocket session channel share: ws.c (the sessions:
 * socket I/O with libwslay, framing, the pump, closing, the tick), ws_events.c (the events a
 * session is sent) and ws_commands.c (a text message as a command, the `wait` commands in
 * progress, the injections a session owns). The state of a session and of the channel is here
 * so that each can reach it; nothing outside ws*.c includes this header (ws.h is the channel's
 * interface).
 */
#ifndef ERRINJ_WS_SESSION_H
#define ERRINJ_WS_SESSION_H

#include "ws.h"

#include <wslay/wslay.h>

#include <stddef.h>

struct errinj__ws_wait;

/* What a session may have queued before it stops taking events and reading commands. */
#define ERRINJ__WS_QUEUE_MAX (256u * 1024)
/* What a session buffers to write (whole frames). */
#define ERRINJ__WS_OUT_MAX (16u * 1024)

struct errinj__ws_session {
    struct errinj__ws *ws;
    struct errinj__filter filter;
    uint64_t cursor; /* the last seq given or skipped */
    int fd;
    struct MHD_UpgradeResponseHandle *urh; /* NULL for a fuzzer's socket */
    struct errinj__ws_session **pending;   /* the request's pointer, until upgraded */
    int64_t opened_ns;
    struct errinj__watch watch;
    uint32_t watching;
    wslay_event_context_ptr ctx;
    const char *extra;  /* bytes libmicrohttpd read past the handshake, not yet parsed */
    size_t extra_len;
    char out[ERRINJ__WS_OUT_MAX]; /* whole frames (events, and what libwslay built), written from out_off */
    size_t out_len, out_off;
    struct errinj__ws_owned { char *name; uint64_t gen; } *owned; /* session injections, and which enable */
    size_t owned_count;
    bool upgraded;
    bool peer_gone;     /* the client's end of the stream (FIN or RST) was read */
    bool lingering;     /* our close frame is out; waiting for the client's end */
    int64_t linger_until;
    bool closed;        /* on the dead list */
    struct errinj__ws_session *prev, *next, *dead_next;
};

struct errinj__ws {
    struct errinj__loop *loop;
    struct errinj__ws_host host;
    struct errinj__ws_session *sessions; /* mu */
    unsigned count;                     /* mu */
    struct errinj__ws_session *dead;
    struct errinj__waits *waits;        /* mu */
    struct errinj__ws_wait *wait_list;  /* mu */
    bool stopping;
};

/* ---- ws.c, for the others ---- */

/* Marks the session closed (its watch removed); errinj__ws_tick() frees it. */
void errinj__ws_session_mark_closed(struct errinj__ws_session *s);
/* Queues a text message through libwslay (the session is closed if it is out of memory). */
void errinj__ws_session_queue_text(struct errinj__ws_session *s, const char *text, size_t len);

/* ---- ws_events.c ---- */

/* Puts what the history has past the session's cursor on its way, up to its bound. */
void errinj__ws_session_queue_events(struct errinj__ws_session *s, const struct errinj__history_view *h);

/* ---- ws_commands.c ---- */

/* Runs a text message (UTF-8 already checked) as a command and queues its reply; a `wait`
 * replies when it settles. */
void errinj__ws_command(struct errinj__ws_session *s, const char *text, size_t len);
/* Queues the replies of the `wait` commands that settled and forgets them. mu held. */
void errinj__ws_answer_settled_waits(struct errinj__ws *ws);
/* Abandons the `wait` commands of a session being freed. mu held. */
void errinj__ws_forget_waits(struct errinj__ws *ws, struct errinj__ws_session *s);
/* Disables the injections the session owns, unless enabled again since (by anyone): the later
 * enable owns it then. Disabling releases every handler parked in it. */
void errinj__ws_release_owned(struct errinj__ws_session *s);

#endif /* ERRINJ_WS_SESSION_H */
