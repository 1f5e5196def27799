/*
 * threads.c - crews of racing threads and joins with a deadline; see threads.h.
 */
#define _GNU_SOURCE
#include "threads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The CLOCK_REALTIME time `seconds` from now, as pthread_timedjoin_np() wants its deadline. */
static struct timespec realtime_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)seconds;
    ts.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

static void *crew_main(void *arg)
{
    struct crew_member *m = arg;
    if (m->crew->racing)
        pthread_barrier_wait(&m->crew->start);
    m->crew->fn(m->crew->arg, m->index);
    return NULL;
}

/* Once every thread is joined: nothing uses the barrier and the arrays any more. */
static void crew_free(struct crew *c)
{
    if (c->racing)
        pthread_barrier_destroy(&c->start);
    free(c->thread);
    free(c->member);
    c->thread = NULL;
    c->member = NULL;
    c->n = 0;
}

static void start(struct crew *c, unsigned n, crew_fn fn, void *arg, bool racing)
{
    c->thread = calloc(n, sizeof(*c->thread));
    c->member = calloc(n, sizeof(*c->member));
    if (n == 0 || c->thread == NULL || c->member == NULL) {
        fprintf(stderr, "crew_start: cannot start %u threads\n", n);
        abort();
    }
    c->n = n;
    c->fn = fn;
    c->arg = arg;
    c->racing = racing;
    if (racing)
        pthread_barrier_init(&c->start, NULL, n);
    for (unsigned i = 0; i < n; i++) {
        c->member[i] = (struct crew_member){c, i};
        int rc = pthread_create(&c->thread[i], NULL, crew_main, &c->member[i]);
        if (rc != 0) {
            /* The members already started wait at the barrier for ever: no test can go on. */
            fprintf(stderr, "crew_start: pthread_create: %s\n", strerror(rc));
            abort();
        }
    }
}

void crew_start(struct crew *c, unsigned n, crew_fn fn, void *arg)
{
    start(c, n, fn, arg, false);
}

void crew_start_racing(struct crew *c, unsigned n, crew_fn fn, void *arg)
{
    start(c, n, fn, arg, true);
}

void crew_join(struct crew *c)
{
    for (unsigned i = 0; i < c->n; i++)
        pthread_join(c->thread[i], NULL);
    crew_free(c);
}

bool crew_join_within(struct crew *c, double seconds)
{
    struct timespec ts = realtime_in(seconds);
    unsigned joined = 0;
    while (joined < c->n) {
        if (pthread_timedjoin_np(c->thread[joined], NULL, &ts) != 0) {
            /* The ones joined are gone; keep the rest for a later crew_join(). */
            for (unsigned i = joined; i < c->n; i++)
                c->thread[i - joined] = c->thread[i];
            c->n -= joined;
            return false;
        }
        joined++;
    }
    crew_free(c);
    return true;
}

void crew_race(unsigned n, crew_fn fn, void *arg)
{
    struct crew c;
    crew_start_racing(&c, n, fn, arg);
    crew_join(&c);
}

bool thread_join_within(pthread_t t, double seconds)
{
    struct timespec ts = realtime_in(seconds);
    return pthread_timedjoin_np(t, NULL, &ts) == 0;
}
