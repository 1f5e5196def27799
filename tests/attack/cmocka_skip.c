/*
 * cmocka_skip.c - preloaded into a cmocka test (LD_PRELOAD) to skip the cases named by
 * ERRINJ_CMOCKA_SKIP, a cmocka pattern ('*' and '?'), without touching the test's source.
 *
 * The valgrind tests use it for the few unit test cases that only measure behaviour under
 * heavy thread contention (hundreds of thread creations, a thread firing at full speed while
 * the server starts and stops ten times): valgrind runs one thread at a time, 50 to 100 times
 * slower, which turns seconds into minutes, and says nothing about memory that the rest of
 * the run does not. They still run in the plain, ASan and TSan builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h and stddef.h */

__attribute__((constructor)) static void skip_from_environment(void)
{
    const char *pattern = getenv("ERRINJ_CMOCKA_SKIP");
    if (pattern != NULL && pattern[0] != '\0')
        cmocka_set_skip_filter(pattern);
}
