/*
 * test_wait.c - wait.c on a history built by hand: matches by name and phase, the answer's
 * JSON array, 410 for seqs evicted or lost inside the range, 408 at the deadline, the limit,
 * and the resume of a suspended connection exactly when its answer is settled.
 */
#include "names.h"
#include "registry.h"
#include "wait.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internals_helpers.h"

#define CAP 8

struct fake {
    struct frame frames[CAP];
    struct errinj__history_view view;
    int resumed;
};

static struct fake *g_fake;

static void resume(void *conn)
{
    (void)conn;
    g_fake->resumed++;
}


/* Stores seq as an event of name/phase (text NULL: lost). */
static void put(struct fake *f, uint64_t seq, const char *name, int phase, bool lost)
{
    struct frame *fr = &f->frames[seq % CAP];
    if (fr->text != NULL) {
        free(fr->text->bytes);
        free(fr->text);
    }
    *fr = (struct frame){0};
    if (!lost) {
        char *bytes = malloc(128);
        int n = snprintf(bytes, 128, "id: %llu\ndata: {\"seq\":%llu}\n\n", (unsigned long long)seq,
                         (unsigned long long)seq);
        fr->text = calloc(1, sizeof(*fr->text));
        *fr->text = (struct frame_text){1, (size_t)n, bytes};
        fr->len = (size_t)n;
        fr->entry = entry_of(name);
        fr->phase = (uint8_t)phase;
    }
    if (f->view.newest < seq)
        f->view.newest = seq;
    while (f->view.newest - f->view.oldest + 1 > CAP)
        f->view.oldest++;
}

static struct fake *fake_new(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    f->view = (struct errinj__history_view){f->frames, CAP, 1, 0};
    g_fake = f;
    return f;
}

static void fake_free(struct fake *f)
{
    for (int i = 0; i < CAP; i++)
        if (f->frames[i].text != NULL) {
            free(f->frames[i].text->bytes);
            free(f->frames[i].text);
        }
    free(f);
}

static struct errinj__wait_query query(const char *name, unsigned phases, uint64_t count, uint64_t after,
                                       int64_t timeout_ms)
{
    return (struct errinj__wait_query){strdup(name), phases, count, after, timeout_ms};
}

static int answer(struct errinj__waits *ws, struct errinj__waiter *w, char *body, size_t len)
{
    struct errinj__http_reply reply;
    errinj__waiter_answer(ws, w, &reply);
    snprintf(body, len, "%.*s", (int)reply.body_len, reply.body != NULL ? reply.body : "");
    int status = reply.status;
    errinj__http_reply_free(&reply);
    return status;
}

static void test_matches_name_and_phase_from_history_then_live(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct errinj__waits *ws = errinj__waits_new(4, resume);
    put(f, 1, "wa", ERRINJ__PHASE_HIT, false);
    put(f, 2, "wb", ERRINJ__PHASE_HIT, false);
    put(f, 3, "wa", ERRINJ__PHASE_WAITING, false);
    struct errinj__wait_query q = query("wa", 1u << ERRINJ__PHASE_HIT, 2, 0, 1000);
    struct errinj__http_reply reply = {0};
    struct errinj__waiter *w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    assert_non_null(w);
    assert_false(errinj__waiter_done(w)); /* one of two */
    errinj__waiter_suspended(w);
    put(f, 4, "wb", ERRINJ__PHASE_HIT, false);
    errinj__waits_advance(ws, &f->view, 1);
    assert_int_equal(f->resumed, 0);
    put(f, 5, "wa", ERRINJ__PHASE_HIT, false);
    errinj__waits_advance(ws, &f->view, 2);
    assert_int_equal(f->resumed, 1);
    char body[256];
    assert_int_equal(answer(ws, w, body, sizeof(body)), 200);
    assert_string_equal(body, "[{\"seq\":1},{\"seq\":5}]");
    assert_int_equal(errinj__waits_count(ws), 0);
    errinj__waits_free(ws);
    fake_free(f);
}

static void test_a_lost_seq_inside_the_range_answers_410(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct errinj__waits *ws = errinj__waits_new(4, resume);
    put(f, 1, "wa", ERRINJ__PHASE_HIT, false);
    struct errinj__wait_query q = query("wa", 1u << ERRINJ__PHASE_HIT, 2, 0, 1000);
    struct errinj__http_reply reply = {0};
    struct errinj__waiter *w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    errinj__waiter_suspended(w);
    put(f, 2, "wa", ERRINJ__PHASE_HIT, true); /* the ring was full: it might have been ours */
    errinj__waits_advance(ws, &f->view, 1);
    assert_true(errinj__waiter_done(w));
    assert_int_equal(f->resumed, 1);
    char body[256];
    assert_int_equal(answer(ws, w, body, sizeof(body)), 410);
    assert_non_null(strstr(body, "no longer kept"));
    errinj__waits_free(ws);
    fake_free(f);
}

static void test_evicted_before_the_wait_answers_410_at_once(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct errinj__waits *ws = errinj__waits_new(4, resume);
    for (uint64_t s = 1; s <= 12; s++)
        put(f, s, "wa", ERRINJ__PHASE_HIT, false);
    assert_int_equal(f->view.oldest, 5);
    struct errinj__wait_query q = query("wa", 1u << ERRINJ__PHASE_HIT, 1, 2, 1000);
    struct errinj__http_reply reply = {0};
    struct errinj__waiter *w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    assert_true(errinj__waiter_done(w));
    assert_int_equal(f->resumed, 0); /* never suspended: nothing to resume */
    char body[256];
    assert_int_equal(answer(ws, w, body, sizeof(body)), 410);
    /* From seq 4 on everything is kept: the wait is answered. */
    q = query("wa", 1u << ERRINJ__PHASE_HIT, 1, 4, 1000);
    w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    assert_int_equal(answer(ws, w, body, sizeof(body)), 200);
    assert_string_equal(body, "[{\"seq\":5}]");
    errinj__waits_free(ws);
    fake_free(f);
}

static void test_deadline_answers_408_and_limit_answers_503(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct errinj__waits *ws = errinj__waits_new(1, resume);
    struct errinj__wait_query q = query("wa", 1u << ERRINJ__PHASE_HIT, 1, 0, 5);
    struct errinj__http_reply reply = {0};
    struct errinj__waiter *w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    errinj__waiter_suspended(w);
    assert_int_equal(errinj__waits_next_deadline(ws), 5 * 1000000);
    struct errinj__wait_query q2 = query("wa", 1u << ERRINJ__PHASE_HIT, 1, 0, 5);
    assert_null(errinj__wait_start(ws, &f->view, &q2, NULL, 0, &reply));
    assert_int_equal(reply.status, 503);
    errinj__http_reply_free(&reply);
    free(q2.name);
    errinj__waits_advance(ws, &f->view, 5 * 1000000 - 1);
    assert_false(errinj__waiter_done(w));
    errinj__waits_advance(ws, &f->view, 5 * 1000000);
    assert_true(errinj__waiter_done(w));
    assert_int_equal(errinj__waits_next_deadline(ws), INT64_MAX);
    char body[256];
    assert_int_equal(answer(ws, w, body, sizeof(body)), 408);
    assert_non_null(strstr(body, "0 arrived"));
    errinj__waits_free(ws);
    fake_free(f);
}

static void test_stop_answers_503_and_abandon_forgets(void **state)
{
    (void)state;
    struct fake *f = fake_new();
    struct errinj__waits *ws = errinj__waits_new(4, resume);
    struct errinj__wait_query q = query("wa", 1u << ERRINJ__PHASE_HIT, 1, 0, 1000);
    struct errinj__wait_query q2 = query("wb", 1u << ERRINJ__PHASE_HIT, 1, 0, 1000);
    struct errinj__http_reply reply = {0};
    struct errinj__waiter *w = errinj__wait_start(ws, &f->view, &q, NULL, 0, &reply);
    struct errinj__waiter *w2 = errinj__wait_start(ws, &f->view, &q2, NULL, 0, &reply);
    errinj__waiter_suspended(w);
    errinj__waiter_abandon(ws, w2);
    assert_int_equal(errinj__waits_count(ws), 1);
    errinj__waits_stop(ws);
    assert_int_equal(f->resumed, 1);
    char body[256];
    assert_int_equal(answer(ws, w, body, sizeof(body)), 503);
    errinj__waits_free(ws);
    fake_free(f);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_name_and_phase_from_history_then_live),
        cmocka_unit_test(test_a_lost_seq_inside_the_range_answers_410),
        cmocka_unit_test(test_evicted_before_the_wait_answers_410_at_once),
        cmocka_unit_test(test_deadline_answers_408_and_limit_answers_503),
        cmocka_unit_test(test_stop_answers_503_and_abandon_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
