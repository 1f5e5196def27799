/*
 * sites_c.c - every point form in every C context: ordinary, static, static inline and C99
 * inline functions (the inline one in two translation units, sites_c2.c being the other).
 * Built by run.sh with gcc and clang for C99, C11, C17 and C2x (C23), -pedantic, with and
 * without ERRINJ_DISABLE. Normal build: every site is in the catalogue and fires; disabled
 * build: linked without liberrinj, every point yields its "off" value.
 */
#include "sites_c.h"

#include <stdio.h>
#include <string.h>

int c2_exception(void);

static int failures;
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#ifdef ERRINJ_DISABLE
#define ON 0
#else
#define ON 1
#endif

static const char *const expected[][2] = {
    {"c_plain_sleep", "sleep"},        {"c_static_exception", "exception"},
    {"c_static_inline_enter", "enter"}, {"c_c99_inline_exception", "exception"},
    {"c_lambda", "lambda"},            {"c_handler", "handler"},
    {"c_wait", "handler"},             {"c_second_tu_exception", "exception"},
};
enum { EXPECTED = sizeof(expected) / sizeof(expected[0]) };

/* Used by a point only: ERRINJ_DISABLE must still count it as used (clang's
 * -Wunneeded-internal-declaration, gcc's -Wunused-function). */
static void only_for_a_point(void *arg)
{
    ++*(int *)arg;
}

static int handler(errinj_handler *h, void *arg)
{
    return errinj_handler_name(h) != NULL ? *(int *)arg : -1;
}

void plain_sleep(void);
void plain_sleep(void)
{
    ERRINJ_SLEEP("c_plain_sleep", 0);
}

static int static_exception(void)
{
    return ERRINJ_EXCEPTION("c_static_exception", -2);
}

static inline bool static_inline_enter(void)
{
    return ERRINJ_ENTER("c_static_inline_enter");
}

#ifndef ERRINJ_DISABLE
static void collect(const errinj_point *p, void *arg)
{
    int *found = arg;
    for (int i = 0; i < EXPECTED; i++)
        if (strcmp(p->name, expected[i][0]) == 0 && strcmp(errinj_type_name(p->type), expected[i][1]) == 0 &&
            strstr(p->file, "sites_c") != NULL)
            found[i]++;
}
#endif

int main(void)
{
    int counter = 0, value = 6;
#ifndef ERRINJ_DISABLE
    int found[EXPECTED] = {0};
    errinj_set_log(NULL, NULL);
    errinj_list_points(collect, found);
    for (int i = 0; i < EXPECTED; i++) {
        if (found[i] != 1) {
            fprintf(stderr, "%s listed %d times, want once\n", expected[i][0], found[i]);
            failures++;
        }
        CHECK(errinj_enable(expected[i][0], false, NULL) == 0);
    }
#endif
    plain_sleep();
    CHECK(static_exception() == (ON ? -2 : 0));
    CHECK(static_inline_enter() == ON);
    CHECK(c99_inline_exception() == (ON ? -3 : 0));
    CHECK(c2_exception() == (ON ? -7 : 0));
    ERRINJ_LAMBDA("c_lambda", only_for_a_point, &counter);
    CHECK(counter == ON);
    CHECK(ERRINJ_HANDLER("c_handler", handler, &value) == (ON ? 6 : 0));
    CHECK(ERRINJ_WAIT_FOR_MESSAGE("c_wait", 0) == (ON ? ERRINJ_ETIMEDOUT : 0));
#ifndef ERRINJ_DISABLE
    for (int i = 0; i < EXPECTED; i++) {
        if (errinj_enters(expected[i][0]) < 1) {
            fprintf(stderr, "%s never fired\n", expected[i][0]);
            failures++;
        }
    }
#endif
    printf("%s: %s, C%ld, %s\n", failures ? "FAIL" : "ok",
#ifdef __clang__
           "clang",
#else
           "gcc",
#endif
           __STDC_VERSION__ / 100 % 100, ON ? "points on" : expected[0][1] != NULL ? "ERRINJ_DISABLE" : "");
    return failures ? 1 : 0;
}
