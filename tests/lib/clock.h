/*
 * clock.h - the tests' one clock and their one bounded wait. Tests never sleep to synchronise:
 * they wait for a condition with a deadline, and the deadline is what fails a test whose
 * condition never comes, instead of hanging it.
 */
#ifndef ERRINJ_TESTLIB_CLOCK_H
#define ERRINJ_TESTLIB_CLOCK_H

#include <sched.h>
#include <stdbool.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls cond until it holds or `seconds` pass; the result says which. For states only another
 * thread or process settles and that publish no event to block on. */
#define WAIT_UNTIL(cond, seconds)                                                                  \
    __extension__({                                                                                \
        double deadline_ = test_now() + (seconds);                                                 \
        while (!(cond) && test_now() < deadline_)                                                  \
            sched_yield();                                                                         \
        (bool)(cond);                                                                              \
    })

#endif
