/*
 * threads.h - the tests' threads: a crew of N threads running one function (started as each
 * is created, or held at a barrier until all exist, so that they race), and joins with a
 * deadline, so that a thread that never returns (a stop that hangs, a parked handler nobody
 * releases) fails its test instead of hanging it.
 */
#ifndef ERRINJ_TESTLIB_THREADS_H
#define ERRINJ_TESTLIB_THREADS_H

#include <pthread.h>
#include <stdbool.h>

/* What each thread of a crew runs: the crew's argument and the thread's index, 0 to n - 1. */
typedef void (*crew_fn)(void *arg, unsigned index);

struct crew_member {
    struct crew *crew;
    unsigned index;
};

struct crew {
    unsigned n;
    crew_fn fn;
    void *arg;
    bool racing; /* the members wait at `start` until all exist */
    pthread_barrier_t start;
    pthread_t *thread;
    struct crew_member *member;
};

/* Starts n (n > 0) threads running fn(arg, index), each as soon as it is created. A thread
 * that cannot be created aborts the test program. Pair with crew_join() or crew_join_within().
 * The crew must stay where it is until joined: its threads read it. */
void crew_start(struct crew *c, unsigned n, crew_fn fn, void *arg);

/* crew_start(), but the threads begin together, once all n exist: a race. */
void crew_start_racing(struct crew *c, unsigned n, crew_fn fn, void *arg);

/* Waits for every thread of the crew to return. */
void crew_join(struct crew *c);

/* Waits up to `seconds` for every thread; false when one had not returned by then (the crew
 * is then still running: make it return, then crew_join()). */
bool crew_join_within(struct crew *c, double seconds);

/* crew_start_racing() then crew_join(): n threads racing through fn. */
void crew_race(unsigned n, crew_fn fn, void *arg);

/* pthread_join() with a deadline: false when `t` had not returned within `seconds`. */
bool thread_join_within(pthread_t t, double seconds);

#endif
