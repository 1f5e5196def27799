/*
 * fuzz_term.c - libFuzzer driver for the fault-term parser and the step walk.
 *
 * The input is a term's text (up to the first NUL). A refused term must say where: its message
 * names an offset within the text and the accepted forms, and errinj_term_check() agrees. An
 * accepted term must hold what the grammar allows (1 to 256 steps, a count on every step but
 * the last, arguments in range), and, armed twice with one seed, decide every evaluation the
 * same way in whichever order the evaluations are asked, with at most one evaluation that ends
 * the last step.
 */
#include "errinj.h"
#include "term.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_term"
#include "check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    errinj_set_log(NULL, NULL);
    /* A point of this driver's own, so errinj.h's module constructor has a section to register. */
    (void)ERRINJ_ENTER("fuzz.term.site");
    return 0;
}

#define EVALS 96

static void check_accepted(struct errinj__term *a, const char *text)
{
    CHECK(a->nsteps >= 1 && a->nsteps <= ERRINJ__TERM_STEPS_MAX, "%zu steps in %s", a->nsteps, text);
    CHECK(strcmp(a->text, text) == 0, "kept text %s for %s", a->text, text);
    for (size_t i = 0; i < a->nsteps; i++) {
        const struct errinj__term_step *s = &a->steps[i];
        CHECK(s->action < ERRINJ__ACTION_COUNT, "step %zu action %u in %s", i, s->action, text);
        CHECK(s->count <= ERRINJ__TERM_COUNT_MAX, "step %zu count in %s", i, text);
        CHECK(s->count != 0 || i + 1 == a->nsteps, "step %zu of %s never ends but is not last", i, text);
        CHECK(!s->has_pct || s->threshold > 0, "step %zu of %s can never take effect", i, text);
        if (s->action == ERRINJ__ACTION_SLEEP)
            CHECK(s->arg >= 0 && s->arg <= ERRINJ__TERM_SLEEP_MAX, "sleep %lld in %s", (long long)s->arg, text);
        if (s->action == ERRINJ__ACTION_RETURN)
            CHECK(s->arg >= INT32_MIN && s->arg <= INT32_MAX, "return %lld in %s", (long long)s->arg, text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    struct errinj__term *a = NULL, *b = NULL;
    char why[512], again[512];
    int rc = errinj__term_parse(text, &a, why, sizeof(why));
    int checked = errinj_term_check(text, again, sizeof(again));
    CHECK(rc == checked, "parse %d, check %d for %s", rc, checked, text);
    if (rc != 0) {
        CHECK(rc == ERRINJ_EINVAL && a == NULL, "rc %d for %s", rc, text);
        CHECK(strcmp(why, again) == 0, "two messages for %s: %s / %s", text, why, again);
        size_t offset = 0;
        CHECK(sscanf(why, "bad term at offset %zu:", &offset) == 1, "message without an offset: %s", why);
        CHECK(offset <= len || len > ERRINJ__TERM_TEXT_MAX, "offset %zu past the end (%zu) of %s", offset, len, text);
        CHECK(strstr(why, "[PCT%][COUNT*]action[(ARG)]") != NULL, "message without the forms: %s", why);
        free(text);
        return 0;
    }
    check_accepted(a, text);
    CHECK(errinj__term_parse(text, &b, why, sizeof(why)) == 0, "second parse of %s failed", text);
    uint64_t seed = size >= 8 ? ((uint64_t)data[0] << 56 | (uint64_t)data[size - 1] << 8 | size) : size;
    errinj__term_arm(a, seed, "fuzz.term", 9);
    errinj__term_arm(b, seed, "fuzz.term", 9);
    /* a in order, b backwards: the same decisions, and at most one that ends the term. */
    struct errinj__decision da[EVALS + 1], db;
    unsigned lasts = 0;
    for (uint64_t e = 1; e <= EVALS; e++) {
        errinj__term_decide(a, e, &da[e]);
        lasts += da[e].last;
        CHECK(da[e].action < ERRINJ__ACTION_COUNT, "eval %llu of %s", (unsigned long long)e, text);
    }
    CHECK(lasts <= 1, "%u evaluations ended %s", lasts, text);
    for (uint64_t e = EVALS; e >= 1; e--) {
        errinj__term_decide(b, e, &db);
        CHECK(db.action == da[e].action && db.arg == da[e].arg && db.last == da[e].last,
              "eval %llu of %s: %u/%lld/%d in order, %u/%lld/%d backwards", (unsigned long long)e, text,
              da[e].action, (long long)da[e].arg, da[e].last, db.action, (long long)db.arg, db.last);
    }
    errinj__term_free(a);
    errinj__term_free(b);
    free(text);
    return 0;
}
