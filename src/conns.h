/*
 * conns.h - the connection guard: libmicrohttpd's connections as the server sees them, so that
 * careless or hostile clients cannot take the service away.
 *
 * libmicrohttpd has one connection limit and an idle timeout that any byte resets, so clients
 * that connect and send nothing, or one byte every few seconds, could hold every connection the
 * process has. The guard keeps its own record per connection (libmicrohttpd's socket context):
 * - a connection that has not sent a whole request head within ERRINJ__HEAD_TIMEOUT_S of
 *   connecting (or of its previous request's end) is closed;
 * - streams are counted apart: REST connections have a budget of their own
 *   (ERRINJ__REST_CONNS_MAX), and a new connection over it closes the oldest one waiting for a
 *   head, so a new REST request always finds room, however many slow clients there are;
 * - while libmicrohttpd cannot accept (out of descriptors), the oldest connection waiting for a
 *   head is closed to give it one;
 * - a stream's socket, and that of a long-poll wait held on the server, is watched in the server
 *   loop, so a client that leaves (FIN or RST) while its connection is suspended is noticed at
 *   once, not at the next heartbeat or at the wait's timeout.
 * Connections are closed with shutdown(2): libmicrohttpd then reads the end of the stream and
 * closes and frees the connection itself. Everything here runs on the server thread (or on the
 * stopping thread once the server thread has ended).
 */
#ifndef ERRINJ_CONNS_H
#define ERRINJ_CONNS_H

#include "loop.h"

#include <microhttpd.h>

#include <stdbool.h>
#include <stdint.h>

#define ERRINJ__HEAD_TIMEOUT_S 10
#define ERRINJ__REST_CONNS_MAX 512u

struct errinj__conns;
struct errinj__conn;

/* Pair with errinj__conns_free(). NULL when out of memory. */
struct errinj__conns *errinj__conns_new(struct errinj__loop *loop);
void errinj__conns_free(struct errinj__conns *g);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void errinj__conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
/* The guard's record of conn, or NULL (out of memory when it connected). */
struct errinj__conn *errinj__conns_of(struct MHD_Connection *conn);
/* The request head of conn is complete (the access handler's first call). */
void errinj__conns_head_done(struct errinj__conn *rec);
/* The request ended and the connection stays open: the next head has its own deadline. */
void errinj__conns_request_done(struct errinj__conns *g, struct errinj__conn *rec);
/* The connection whose record *ref is becomes a stream: out of the REST budget, and its socket
 * watched for the client leaving, which calls on_hangup(arg) on the server thread (once). *ref
 * is set to NULL when libmicrohttpd closes the connection. 0 or a negative ERRINJ_E* code. */
int errinj__conns_make_stream(struct errinj__conns *g, struct errinj__conn **ref, void (*on_hangup)(void *arg),
                              void *arg);
/* The request of rec is held on the server (a long-poll wait): out of the REST budget, so that
 * shedding never ends it, and its socket watched for the client leaving, which calls
 * on_hangup(arg) on the server thread (once), until errinj__conns_unpark(); a NULL on_hangup
 * watches nothing (an upgraded connection, whose owner reads the socket). 0 or a negative
 * ERRINJ_E* code (the wait then simply runs to its answer). */
int errinj__conns_park(struct errinj__conns *g, struct errinj__conn *rec, void (*on_hangup)(void *arg), void *arg);
/* The held request ended (answered or abandoned): on_hangup is not called any more. NULL and a
 * record that was not parked are ignored. */
void errinj__conns_unpark(struct errinj__conn *rec);
/* The stream's owner is gone: on_hangup is not called any more. */
void errinj__conns_stream_ended(struct errinj__conn *rec);
/* Closes connections past their head deadline; returns milliseconds until the next deadline
 * (-1: none). */
int64_t errinj__conns_sweep(struct errinj__conns *g);
/* Closes the oldest connection that waits for a request head; false when there is none. */
bool errinj__conns_shed_one(struct errinj__conns *g);
/* Connections closed by the guard so far (head deadline, REST budget, shedding). */
uint64_t errinj__conns_closed_by_guard(const struct errinj__conns *g);

#endif
