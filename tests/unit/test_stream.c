/*
 * test_stream.c - stream.c, an SSE subscriber's cursor, on a history built by hand (no server,
 * no socket): the greeting first, live streams start after the last published seq, replay from
 * since, filters, overflow for seqs evicted or lost, a frame larger than one read sent in pieces,
 * heartbeats, and the end of a stopping server's stream.
 */
#include "names.h"
#include "registry.h"
#include "stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internals_helpers.h"


static void store(struct errinj__history *h, uint64_t seq, const char *name, uint8_t phase)
{
    char *bytes = malloc(64);
    assert_non_null(bytes);
    int n = snprintf(bytes, 64, "id: %llu\ndata: {\"seq\":%llu}\n\n", (unsigned long long)seq,
                     (unsigned long long)seq);
    struct frame f = {errinj__frame_text_new(bytes, (size_t)n), (size_t)n, entry_of(name), 0, phase, 0};
    errinj__history_store(h, seq, &f);
}

/* Reads what the stream is owed into a NUL-terminated string; returns the read's result. */
static ssize_t read_into(struct errinj__stream *s, const struct errinj__history *h, bool stopping, char *out,
                         size_t max)
{
    struct errinj__history_view v = errinj__history_view_of(h);
    ssize_t n = errinj__stream_read(s, &v, stopping, out, max);
    out[n > 0 ? n : 0] = '\0';
    return n;
}

static struct errinj__filter any_hit(void)
{
    return (struct errinj__filter){.phases = 1u << ERRINJ__PHASE_HIT, .shard = -1, .since = -1};
}

static void test_live_stream_greets_then_sends_only_what_follows(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 16, 1 << 20, 0), 0);
    store(&h, 1, "st_a", ERRINJ__PHASE_HIT);
    struct errinj__filter f = any_hit();
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 1);
    char buf[512];
    assert_int_equal(read_into(&s, &h, false, buf, sizeof(buf)), 13);
    assert_string_equal(buf, ": connected\n\n");
    assert_int_equal(read_into(&s, &h, false, buf, sizeof(buf)), 0); /* nothing new: suspend */
    store(&h, 2, "st_a", ERRINJ__PHASE_HIT);
    read_into(&s, &h, false, buf, sizeof(buf));
    assert_string_equal(buf, "id: 2\ndata: {\"seq\":2}\n\n");
    assert_true(errinj__stream_delivered(&s, 2));
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_replay_from_since_with_filters(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 16, 1 << 20, 0), 0);
    store(&h, 1, "st_a", ERRINJ__PHASE_HIT);
    store(&h, 2, "st_b", ERRINJ__PHASE_HIT);
    store(&h, 3, "st_a", ERRINJ__PHASE_WAITING);
    store(&h, 4, "st_a", ERRINJ__PHASE_HIT);
    struct errinj__filter f = any_hit();
    f.since = 0;
    f.injections = calloc(2, sizeof(char *));
    assert_non_null(f.injections);
    f.injections[0] = strdup("st_a");
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 4);
    assert_null(f.injections); /* taken */
    char buf[512];
    read_into(&s, &h, false, buf, sizeof(buf));
    assert_string_equal(buf, ": connected\n\nid: 1\ndata: {\"seq\":1}\n\nid: 4\ndata: {\"seq\":4}\n\n");
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_since_from_an_earlier_run_replays_everything_kept(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 16, 1 << 20, 0), 0);
    store(&h, 1, "st_a", ERRINJ__PHASE_HIT);
    struct errinj__filter f = any_hit();
    f.since = 900;
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 1);
    assert_int_equal(s.cursor, 0);
    char buf[512];
    read_into(&s, &h, false, buf, sizeof(buf));
    assert_string_equal(buf, ": connected\n\nid: 1\ndata: {\"seq\":1}\n\n");
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_evicted_and_lost_seqs_are_reported_as_overflow(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 4, 1 << 20, 0), 0);
    struct errinj__filter f = any_hit();
    f.since = 0;
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 0);
    for (uint64_t q = 1; q <= 6; q++)
        store(&h, q, "st_a", ERRINJ__PHASE_HIT);
    store(&h, 8, "st_a", ERRINJ__PHASE_HIT); /* 7 was lost; the ring of 4 keeps 5 to 8 */
    char buf[1024];
    read_into(&s, &h, false, buf, sizeof(buf));
    assert_string_equal(buf, ": connected\n\n"
                             "event: overflow\ndata: {\"dropped\":4,\"next_seq\":5}\n\n"
                             "id: 5\ndata: {\"seq\":5}\n\nid: 6\ndata: {\"seq\":6}\n\n"
                             "event: overflow\ndata: {\"dropped\":1,\"next_seq\":8}\n\n"
                             "id: 8\ndata: {\"seq\":8}\n\n");
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_a_frame_larger_than_a_read_is_sent_in_pieces(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1 << 20, 0), 0);
    struct errinj__filter f = any_hit();
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 0);
    char buf[64];
    assert_int_equal(read_into(&s, &h, false, buf, 13), 13);
    store(&h, 1, "st_a", ERRINJ__PHASE_HIT);
    const char *frame = "id: 1\ndata: {\"seq\":1}\n\n";
    char whole[64] = "";
    while (strlen(whole) < strlen(frame)) {
        ssize_t n = read_into(&s, &h, false, buf, 10);
        assert_true(n > 0 && n <= 10);
        strcat(whole, buf);
        assert_true(strlen(whole) == strlen(frame) || !errinj__stream_delivered(&s, 1));
    }
    assert_string_equal(whole, frame);
    assert_true(errinj__stream_delivered(&s, 1));
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_a_due_ping_is_sent_once(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1 << 20, 0), 0);
    struct errinj__filter f = any_hit();
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 0);
    char buf[64];
    read_into(&s, &h, false, buf, sizeof(buf));
    s.ping_due = true;
    read_into(&s, &h, false, buf, sizeof(buf));
    assert_string_equal(buf, ": ping\n\n");
    assert_int_equal(read_into(&s, &h, false, buf, sizeof(buf)), 0);
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

static void test_a_stopping_server_ends_the_stream_after_what_was_published(void **state)
{
    (void)state;
    struct errinj__history h;
    assert_int_equal(errinj__history_init(&h, 8, 1 << 20, 0), 0);
    struct errinj__filter f = any_hit();
    struct errinj__stream s;
    errinj__stream_init(&s, &f, 0);
    char buf[256];
    read_into(&s, &h, false, buf, sizeof(buf));
    store(&h, 1, "st_a", ERRINJ__PHASE_HIT);
    store(&h, 2, "st_a", ERRINJ__PHASE_WAITING); /* filtered out */
    read_into(&s, &h, true, buf, sizeof(buf));
    assert_string_equal(buf, "id: 1\ndata: {\"seq\":1}\n\n");
    assert_int_equal(read_into(&s, &h, true, buf, sizeof(buf)), ERRINJ__STREAM_END);
    errinj__stream_fini(&s);
    errinj__history_fini(&h);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_stream_greets_then_sends_only_what_follows),
        cmocka_unit_test(test_replay_from_since_with_filters),
        cmocka_unit_test(test_since_from_an_earlier_run_replays_everything_kept),
        cmocka_unit_test(test_evicted_and_lost_seqs_are_reported_as_overflow),
        cmocka_unit_test(test_a_frame_larger_than_a_read_is_sent_in_pieces),
        cmocka_unit_test(test_a_due_ping_is_sent_once),
        cmocka_unit_test(test_a_stopping_server_ends_the_stream_after_what_was_published),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
