/*
 * wait.h - server-side waits: GET /v2/error_injection/injection/{name}/wait.
 *
 * wait.c owns the waiters: each is a request whose connection the server suspended until its
 * events arrive, its timeout passes, or the events it needs are no longer kept. No thread
 * waits: the server thread scans each waiter's new events after every batch it stores, and
 * resumes the connections whose answer is ready. A wait only reads the history, so it consumes
 * nothing that streams or other waits see. Every function runs with the server's mutex held.
 */
#ifndef ERRINJ_WAIT_H
#define ERRINJ_WAIT_H

#include "history.h"
#include "http.h"

struct errinj__waits;
struct errinj__waiter;

/* At most `max` waiters at a time. Pair with errinj__waits_free(). NULL when out of memory. */
struct errinj__waits *errinj__waits_new(unsigned max, void (*resume)(void *conn));
/* Frees every waiter left; their connections are no longer used. */
void errinj__waits_free(struct errinj__waits *ws);
unsigned errinj__waits_count(const struct errinj__waits *ws);

/*
 * Starts the wait of q (taken) for the connection conn. Returns the waiter, answered already
 * (errinj__waiter_done()) when the history settles it at once; NULL with a 503 or 500 in reply
 * when over the limit or out of memory.
 */
struct errinj__waiter *errinj__wait_start(struct errinj__waits *ws, const struct errinj__history_view *h,
                                          struct errinj__wait_query *q, void *conn, int64_t now_ns,
                                          struct errinj__http_reply *reply);
bool errinj__waiter_done(const struct errinj__waiter *w);
/* The waiter's connection is suspended: resume it when its answer is ready. */
void errinj__waiter_suspended(struct errinj__waiter *w);
/* Moves the answer (200, 408, 410 or 503) into reply, removes the waiter and frees it. */
void errinj__waiter_answer(struct errinj__waits *ws, struct errinj__waiter *w, struct errinj__http_reply *reply);
/* The client closed its socket while it waited: the waiter is settled as gone (no answer will
 * be sent) and its connection resumed, so that the request ends and frees its slot now. */
void errinj__waiter_hangup(struct errinj__waits *ws, struct errinj__waiter *w);
/* True once the waiter's client is gone: end the request without an answer. */
bool errinj__waiter_gone(const struct errinj__waiter *w);
/* The request ended without an answer (connection gone): forgets the waiter. */
void errinj__waiter_abandon(struct errinj__waits *ws, struct errinj__waiter *w);

/* Scans every open wait's new events and its timeout; resumes those now answered. */
void errinj__waits_advance(struct errinj__waits *ws, const struct errinj__history_view *h, int64_t now_ns);
/* The earliest deadline of an open wait (monotonic ns), or INT64_MAX. */
int64_t errinj__waits_next_deadline(const struct errinj__waits *ws);
/* The server stops: every open wait is answered 503 and resumed. */
void errinj__waits_stop(struct errinj__waits *ws);

#endif /* ERRINJ_WAIT_H */
