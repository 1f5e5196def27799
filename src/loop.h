/*
 * loop.h - what the server thread sleeps on: one epoll set holding the ring's wake-up eventfd,
 * libmicrohttpd's own epoll descriptor, and any socket another part of the server asks it to
 * watch (a suspended stream whose client may leave, an upgraded connection).
 *
 * libmicrohttpd stops watching a connection while it is suspended, so a stream with nothing to
 * send would not notice its client leave until a heartbeat wrote to it; watching the socket here
 * for a hang-up frees the slot at once. Watches are owned by their caller and used on the server
 * thread only.
 */
#ifndef ERRINJ_LOOP_H
#define ERRINJ_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct errinj__loop;

/* A socket to watch: fn(arg, events) runs on the server thread when epoll reports `events`. */
struct errinj__watch {
    int fd;
    bool armed;
    void (*fn)(void *arg, uint32_t events);
    void *arg;
};

/* An epoll set over wake_fd (drained when it fires). NULL on failure. Pair with
 * errinj__loop_free(). A watch without fn only wakes the loop (libmicrohttpd's epoll fd). */
struct errinj__loop *errinj__loop_new(int wake_fd);
void errinj__loop_free(struct errinj__loop *loop);

/* Starts watching w->fd for `events` (EPOLLRDHUP and the like); 0 or a negative ERRINJ_E* code.
 * Unwatch before the socket is closed. */
int errinj__loop_watch(struct errinj__loop *loop, struct errinj__watch *w, uint32_t events);
void errinj__loop_unwatch(struct errinj__loop *loop, struct errinj__watch *w);

/* Sleeps until something is ready or timeout_ms passed (0: just look), then runs the callbacks
 * of ready watches. Returns true when the wake-up eventfd fired. */
bool errinj__loop_wait(struct errinj__loop *loop, int timeout_ms);

#endif
