/*
 * check.h - the fuzz drivers' one assertion: a check that fails prints the target, the
 * condition and a message, then aborts, which libFuzzer records as a crash with its input.
 * Define FUZZ_TARGET ("fuzz_http", ...) before including it.
 */
#ifndef ERRINJ_FUZZ_CHECK_H
#define ERRINJ_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, FUZZ_TARGET ": check failed: %s: ", #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
