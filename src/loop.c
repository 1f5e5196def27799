/*
 * loop.c - the server thread's epoll set (see loop.h): the ring's wake-up, libmicrohttpd's epoll
 * descriptor (itself pollable: it is readable when one of libmicrohttpd's sockets is ready, and
 * watched without a callback), and the sockets other parts of the server watch.
 */
#include "loop.h"

#include "errinj.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENTS_PER_WAIT 64

struct errinj__loop {
    int epfd;
    int wake_fd;
    struct errinj__watch wake; /* handled here */
};

struct errinj__loop *errinj__loop_new(int wake_fd)
{
    struct errinj__loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = wake_fd;
    loop->wake = (struct errinj__watch){.fd = wake_fd};
    if (loop->epfd < 0 || errinj__loop_watch(loop, &loop->wake, EPOLLIN) != 0) {
        errinj__loop_free(loop);
        return NULL;
    }
    return loop;
}

void errinj__loop_free(struct errinj__loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop);
}

int errinj__loop_watch(struct errinj__loop *loop, struct errinj__watch *w, uint32_t events)
{
    if (w->armed)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0)
        return errno == ENOMEM || errno == ENOSPC ? ERRINJ_ENOMEM : ERRINJ_EIO;
    w->armed = true;
    return 0;
}

void errinj__loop_unwatch(struct errinj__loop *loop, struct errinj__watch *w)
{
    if (!w->armed)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    w->armed = false;
}

bool errinj__loop_wait(struct errinj__loop *loop, int timeout_ms)
{
    struct epoll_event ready[EVENTS_PER_WAIT];
    int n = epoll_wait(loop->epfd, ready, EVENTS_PER_WAIT, timeout_ms < 0 ? 0 : timeout_ms);
    bool woken = false;
    /* Callbacks may unwatch but never free a watch (their owners free them from libmicrohttpd's
     * callbacks, inside MHD_run()), so every watch of this batch is still valid here. */
    for (int i = 0; i < n; i++) {
        struct errinj__watch *w = ready[i].data.ptr;
        if (w == &loop->wake) {
            uint64_t value;
            if (read(loop->wake_fd, &value, sizeof(value)) < 0) {
                /* EAGAIN: nothing was pending. */
            }
            woken = true;
        } else if (w->armed && w->fn != NULL) {
            w->fn(w->arg, ready[i].events);
        }
    }
    return woken;
}
