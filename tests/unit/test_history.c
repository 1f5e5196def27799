/*
 * test_history.c - history.c, the store of kept events, on its own (no server, no socket):
 * frames kept by seq, eviction by count and by bytes, placeholders for seqs it never got, what a
 * subscriber behind it is sent next, a stale seq dropped, and every frame reference handed back.
 */
#include "history.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A frame of seq whose text is `len` bytes ("id: SEQ" padded with dots). */
static struct frame frame_of(uint64_t seq, size_t len)
{
    char *bytes = malloc(len + 1);
    assert_non_null(bytes);
    memset(bytes, '.', len);
    snprintf(bytes, len + 1, "id: %llu", (unsigned long long)seq);
    if (strlen(bytes) < len)
        bytes[strlen(bytes)] = '.';
    struct frame_text *t = errinj__frame_text_new(bytes, len);
    assert_non_null(t);
    return (struct frame){.text = t, .len = len, .type = 1, .phase = 0, .shard = (unsigned)seq};
}

/* The seq a kept frame was made for, or 0 for a placeholder. */
static uint64_t seq_in(const struct errinj__history *h, uint64_t seq)
{
    struct errinj__history_view v = errinj__history_view_of(h);
    const struct frame *f = errinj__history_at(&v, seq);
    return f->text != NULL ? strtoull(f->text->bytes + 4, NULL, 10) : 0;
}

static void test_starts_empty_after_the_given_seq(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1000, 41), 0);
    assert_int_equal(h.oldest, 42);
    assert_int_equal(h.newest, 41);
    assert_int_equal(h.bytes, 0);
    errinj__history_fini(&h);
}

static void test_keeps_frames_by_seq(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1000, 0), 0);
    for (uint64_t s = 1; s <= 5; s++) {
        struct frame f = frame_of(s, 20);
        errinj__history_store(&h, s, &f);
    }
    assert_int_equal(h.oldest, 1);
    assert_int_equal(h.newest, 5);
    assert_int_equal(h.bytes, 100);
    for (uint64_t s = 1; s <= 5; s++)
        assert_int_equal(seq_in(&h, s), s);
    struct errinj__history_view v = errinj__history_view_of(&h);
    assert_int_equal(errinj__history_at(&v, 3)->shard, 3);
    errinj__history_fini(&h);
}

static void test_evicts_the_oldest_when_the_count_is_full(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1000, 0), 0);
    struct frame first = frame_of(1, 10);
    first.text->refs++; /* a stream still sending it */
    errinj__history_store(&h, 1, &first);
    for (uint64_t s = 2; s <= 6; s++) {
        struct frame f = frame_of(s, 10);
        errinj__history_store(&h, s, &f);
    }
    /* A ring of 4 keeps the newest 4. */
    assert_int_equal(h.oldest, 3);
    assert_int_equal(h.newest, 6);
    assert_int_equal(h.bytes, 40);
    for (uint64_t s = 3; s <= 6; s++)
        assert_int_equal(seq_in(&h, s), s);
    assert_int_equal(first.text->refs, 1); /* the store gave its reference back */
    errinj__frame_text_unref(first.text);
    errinj__history_fini(&h);
}

static void test_evicts_the_oldest_until_the_bytes_fit(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 64, 100, 0), 0);
    for (uint64_t s = 1; s <= 4; s++) {
        struct frame f = frame_of(s, 40);
        errinj__history_store(&h, s, &f);
        assert_true(h.bytes <= 100);
    }
    assert_int_equal(h.oldest, 3);
    assert_int_equal(h.newest, 4);
    assert_int_equal(h.bytes, 80);
    /* A frame larger than the whole budget is still kept, alone. */
    struct frame big = frame_of(5, 500);
    errinj__history_store(&h, 5, &big);
    assert_int_equal(h.oldest, 5);
    assert_int_equal(h.newest, 5);
    assert_int_equal(h.bytes, 500);
    assert_int_equal(seq_in(&h, 5), 5);
    errinj__history_fini(&h);
}

static void test_seqs_it_never_got_become_placeholders(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1000, 0), 0);
    struct frame f1 = frame_of(1, 10), f4 = frame_of(4, 10);
    errinj__history_store(&h, 1, &f1);
    errinj__history_store(&h, 4, &f4);
    assert_int_equal(h.oldest, 1);
    assert_int_equal(h.newest, 4);
    assert_int_equal(seq_in(&h, 1), 1);
    assert_int_equal(seq_in(&h, 2), 0);
    assert_int_equal(seq_in(&h, 3), 0);
    assert_int_equal(seq_in(&h, 4), 4);
    /* The lost tail: an empty frame at the last lost seq makes every seq up to it a placeholder. */
    errinj__history_store(&h, 6, &(struct frame){0});
    assert_int_equal(h.newest, 6);
    assert_int_equal(seq_in(&h, 5), 0);
    assert_int_equal(seq_in(&h, 6), 0);
    assert_int_equal(h.bytes, 20);
    errinj__history_fini(&h);
}

static void test_a_gap_wider_than_the_ring_keeps_only_the_newest(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1000, 0), 0);
    struct frame f1 = frame_of(1, 10), f10 = frame_of(10, 10);
    errinj__history_store(&h, 1, &f1);
    errinj__history_store(&h, 10, &f10);
    assert_int_equal(h.oldest, 7);
    assert_int_equal(h.newest, 10);
    assert_int_equal(seq_in(&h, 7), 0);
    assert_int_equal(seq_in(&h, 8), 0);
    assert_int_equal(seq_in(&h, 9), 0);
    assert_int_equal(seq_in(&h, 10), 10);
    assert_int_equal(h.bytes, 10); /* seq 1's bytes left with it */
    errinj__history_fini(&h);
}

/* What a subscriber behind the history is sent next: the first kept event past its cursor, and
 * how many it skipped (evicted, or placeholders). */
static void test_next_skips_what_was_evicted_or_never_kept(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1000, 0), 0);
    struct frame f3 = frame_of(3, 10), f6 = frame_of(6, 10), f7 = frame_of(7, 10);
    errinj__history_store(&h, 3, &f3);
    errinj__history_store(&h, 6, &f6); /* 4 and 5 are placeholders */
    errinj__history_store(&h, 7, &f7); /* a ring of 4: 3 is evicted, 4..7 kept */
    struct errinj__history_view v = errinj__history_view_of(&h);
    uint64_t skipped = 99;
    assert_int_equal(errinj__history_next(&v, 0, &skipped), 6); /* 1..3 evicted, 4, 5 never kept */
    assert_int_equal(skipped, 5);
    assert_int_equal(errinj__history_next(&v, 5, &skipped), 6);
    assert_int_equal(skipped, 0);
    assert_int_equal(errinj__history_next(&v, 6, &skipped), 7);
    assert_int_equal(skipped, 0);
    errinj__history_fini(&h);
}

static void test_a_stale_seq_is_dropped_and_its_reference_returned(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1000, 0), 0);
    struct frame f1 = frame_of(1, 10), f2 = frame_of(2, 10);
    errinj__history_store(&h, 1, &f1);
    errinj__history_store(&h, 2, &f2);
    struct frame again = frame_of(2, 30);
    again.text->refs++;
    errinj__history_store(&h, 2, &again);
    assert_int_equal(again.text->refs, 1);
    assert_int_equal(h.newest, 2);
    assert_int_equal(h.bytes, 20);
    assert_int_equal(seq_in(&h, 2), 2);
    errinj__frame_text_unref(again.text);
    errinj__history_fini(&h);
}

static void test_fini_returns_every_reference(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1000, 7), 0);
    struct frame kept = frame_of(8, 10);
    kept.text->refs++;
    errinj__history_store(&h, 8, &kept);
    errinj__history_fini(&h);
    assert_null(h.frames);
    assert_int_equal(kept.text->refs, 1);
    errinj__frame_text_unref(kept.text);
}

static void test_frame_json_is_the_data_line(void **state)
{
    (void)state;
    static const char text[] = "id: 3\ndata: {\"seq\":3}\n\n";
    char *bytes = malloc(sizeof(text));
    assert_non_null(bytes);
    memcpy(bytes, text, sizeof(text));
    struct frame f = {.text = errinj__frame_text_new(bytes, sizeof(text) - 1), .len = sizeof(text) - 1};
    size_t len = 0;
    const char *json = errinj__frame_json(&f, &len);
    assert_int_equal(len, strlen("{\"seq\":3}"));
    assert_memory_equal(json, "{\"seq\":3}", len);
    errinj__frame_text_unref(f.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_empty_after_the_given_seq),
        cmocka_unit_test(test_keeps_frames_by_seq),
        cmocka_unit_test(test_evicts_the_oldest_when_the_count_is_full),
        cmocka_unit_test(test_evicts_the_oldest_until_the_bytes_fit),
        cmocka_unit_test(test_seqs_it_never_got_become_placeholders),
        cmocka_unit_test(test_a_gap_wider_than_the_ring_keeps_only_the_newest),
        cmocka_unit_test(test_next_skips_what_was_evicted_or_never_kept),
        cmocka_unit_test(test_a_stale_seq_is_dropped_and_its_reference_returned),
        cmocka_unit_test(test_fini_returns_every_reference),
        cmocka_unit_test(test_frame_json_is_the_data_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
