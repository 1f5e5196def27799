/*
 * test_sse.c - unit tests of the SSE parser (cli/sse.c) on its own, no network.
 *
 * Every stream is fed whole, byte by byte, split once at every byte position and, for short
 * streams, split twice at every pair of positions: the parser must produce the same transcript
 * of events and comments whatever the split, since libcurl hands over chunks cut anywhere.
 * Streams written with LF line ends are also run with CR and CRLF line ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sse.h"

/* What the callbacks saw, as text: one "E<type>|<data>|<id>" or "C<text>" line each. */
typedef struct transcript {
    char *text;
    size_t len, cap;
    int stop_after; /* the on_event return becomes 7 after this many events (0: never) */
    int events;
} transcript;

static void append(transcript *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->text = realloc(t->text, t->cap);
        assert_non_null(t->text);
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

/* Appends s with LF, CR and NUL made visible, so a transcript stays one line per callback. */
static void append_escaped(transcript *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            append(t, "\\n", 2);
        else if (s[i] == '\r')
            append(t, "\\r", 2);
        else if (s[i] == '\0')
            append(t, "\\0", 2);
        else
            append(t, s + i, 1);
    }
}

static int record_event(void *arg, const sse_event *ev)
{
    transcript *t = arg;
    append(t, "E", 1);
    append(t, ev->type, strlen(ev->type));
    append(t, "|", 1);
    append_escaped(t, ev->data, ev->data_len);
    append(t, "|", 1);
    append(t, ev->id, strlen(ev->id));
    append(t, "\n", 1);
    t->events++;
    return t->stop_after && t->events >= t->stop_after ? 7 : 0;
}

static int record_comment(void *arg, const char *text, size_t len)
{
    transcript *t = arg;
    assert_int_equal(strlen(text), len);
    append(t, "C", 1);
    append_escaped(t, text, len);
    append(t, "\n", 1);
    return 0;
}

/*
 * Parses `input` cut at the sorted positions cuts[0..ncuts) and returns the transcript,
 * ending with "R<rc>" when feeding or finishing failed. Caller frees.
 */
static char *parse_with_cuts(const char *input, size_t len, const size_t *cuts, size_t ncuts, size_t max_line)
{
    transcript t = {0};
    append(&t, "", 0);
    sse_parser p;
    sse_parser_init(&p, record_event, record_comment, &t, max_line);
    size_t from = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = sse_parser_feed(&p, input + from, to - from);
        from = to;
    }
    if (rc == 0)
        rc = sse_parser_finish(&p);
    if (rc != 0) {
        char buf[32];
        snprintf(buf, sizeof(buf), "R%d\n", rc);
        append(&t, buf, strlen(buf));
    }
    sse_parser_free(&p);
    return t.text;
}

/* Checks one split of the input against the expected transcript, naming the split on failure. */
static void expect_split(const char *input, size_t len, const size_t *cuts, size_t ncuts, size_t max_line,
                         const char *expected)
{
    char *got = parse_with_cuts(input, len, cuts, ncuts, max_line);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "split at");
        for (size_t i = 0; i < ncuts; i++)
            fprintf(stderr, " %zu", cuts[i]);
        fprintf(stderr, " of %zu bytes\n", len);
    }
    assert_string_equal(got, expected);
    free(got);
}

/* Runs the input whole, byte by byte, with one cut anywhere and (if short) two cuts anywhere. */
static void expect_all_splits_n(const char *input, size_t len, size_t max_line, const char *expected)
{
    expect_split(input, len, NULL, 0, max_line, expected);

    size_t *every = malloc((len + 1) * sizeof(*every));
    assert_non_null(every);
    for (size_t i = 0; i < len; i++)
        every[i] = i + 1;
    expect_split(input, len, every, len ? len - 1 : 0, max_line, expected);
    free(every);

    for (size_t a = 0; a <= len; a++)
        expect_split(input, len, &a, 1, max_line, expected);

    if (len <= 96) {
        for (size_t a = 0; a <= len; a++)
            for (size_t b = a; b <= len; b++) {
                size_t cuts[2] = {a, b};
                expect_split(input, len, cuts, 2, max_line, expected);
            }
    }
}

static void expect_all_splits(const char *input, const char *expected)
{
    expect_all_splits_n(input, strlen(input), 0, expected);
}

/* The template with every LF replaced by `eol` (LF, CR or CRLF). Caller frees. */
static char *with_line_ends(const char *template, const char *eol)
{
    size_t n = strlen(template), eol_len = strlen(eol);
    char *out = malloc(n * eol_len + 1), *w = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (template[i] == '\n') {
            memcpy(w, eol, eol_len);
            w += eol_len;
        } else {
            *w++ = template[i];
        }
    }
    *w = '\0';
    return out;
}

/* Runs the LF template with LF, CR and CRLF line ends, every split of each. */
static void expect_any_line_end(const char *template, const char *expected)
{
    static const char *const eols[] = {"\n", "\r", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        char *input = with_line_ends(template, eols[i]);
        expect_all_splits(input, expected);
        free(input);
    }
}

/*
 * Streams whose transcript must be the same with LF, CR and CRLF line ends and every split: one
 * row a behaviour, named for what it pins. The tests that need more than a transcript follow.
 */
typedef struct line_end_case {
    const char *name;
    const char *stream; /* written with LF line ends */
    const char *transcript;
} line_end_case;

static const line_end_case line_end_cases[] = {
    {"event_with_id_and_json_data_is_dispatched",
     "id: 42\ndata: {\"injection\":\"a\",\"seq\":42}\n\n",
     "Emessage|{\"injection\":\"a\",\"seq\":42}|42\n"},
    {"comments_are_reported_without_leading_space",
     ": connected\n\n: ping\n:ping2\n:  two spaces\n:\n",
     "Cconnected\nCping\nCping2\nC two spaces\nC\n"},
    {"server_stream_of_connect_events_and_pings",
     ": connected\n\nid: 1\ndata: {\"seq\":1}\n\n: ping\n\nid: 2\ndata: {\"seq\":2}\n\n",
     "Cconnected\nEmessage|{\"seq\":1}|1\nCping\nEmessage|{\"seq\":2}|2\n"},
    {"multi_line_data_is_joined_with_lf",
     "data: first\ndata:second\ndata\ndata:  indented\n\n",
     "Emessage|first\\nsecond\\n\\n indented|\n"},
    {"one_space_after_colon_is_dropped_and_colons_in_value_kept",
     "data:x\n\ndata: y\n\ndata:  z\n\ndata: a:b: c\n\n",
     "Emessage|x|\nEmessage|y|\nEmessage| z|\nEmessage|a:b: c|\n"},
    {"empty_data_line_dispatches_empty_event",
     "data\n\ndata:\n\n",
     "Emessage||\nEmessage||\n"},
    {"id_persists_until_changed",
     "id: 5\ndata: x\n\ndata: y\n\nid: 6\n\ndata: z\n\nid\ndata: w\n\n",
     "Emessage|x|5\nEmessage|y|5\nEmessage|z|6\nEmessage|w|\n"},
    {"overflow_event_has_its_type_and_type_resets_after",
     "id: 3\ndata: {\"seq\":3}\n\nevent: overflow\ndata: {\"dropped\":4,\"next_seq\":8}\n\n"
     "id: 8\ndata: {\"seq\":8}\n\n",
     "Emessage|{\"seq\":3}|3\nEoverflow|{\"dropped\":4,\"next_seq\":8}|3\n"
     "Emessage|{\"seq\":8}|8\n"},
    {"event_type_without_data_is_not_dispatched_and_resets",
     "event: overflow\n\ndata: x\n\nevent:\ndata: y\n\n",
     "Emessage|x|\nEmessage|y|\n"},
    {"unknown_fields_and_lines_without_colon_are_ignored",
     "foo: bar\nbaz\ndata: x\nDATA: y\nData\n\n",
     "Emessage|x|\n"},
};

static void test_line_end_case(void **state)
{
    const line_end_case *c = *state;
    expect_any_line_end(c->stream, c->transcript);
}

static void test_id_with_nul_is_ignored(void **state)
{
    (void)state;
    static const char input[] = "id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n";
    expect_all_splits_n(input, sizeof(input) - 1, 0, "Emessage|a|1\nEmessage|b|1\n");
}

static void test_id_sets_last_event_id_even_without_data(void **state)
{
    (void)state;
    transcript t = {0};
    sse_parser p;
    sse_parser_init(&p, record_event, record_comment, &t, 0);
    assert_string_equal(sse_parser_last_event_id(&p), "");
    assert_int_equal(sse_parser_feed(&p, "id: 9\n", 6), 0);
    assert_string_equal(sse_parser_last_event_id(&p), ""); /* not yet dispatched */
    assert_int_equal(sse_parser_feed(&p, "\n", 1), 0);
    assert_string_equal(sse_parser_last_event_id(&p), "9");
    assert_int_equal(t.events, 0);
    assert_int_equal(sse_parser_finish(&p), 0);
    assert_string_equal(sse_parser_last_event_id(&p), "9"); /* kept for a reconnect */
    sse_parser_free(&p);
    free(t.text);
}

static void test_unfinished_event_at_end_is_discarded(void **state)
{
    (void)state;
    expect_any_line_end("data: a\n\ndata: b\n", "Emessage|a|\n");
    expect_all_splits("data: a\n\ndata: b", "Emessage|a|\n");
    expect_all_splits("data: a\r\n\r\ndata: b\r\n\r", "Emessage|a|\nEmessage|b|\n");
    expect_all_splits(": partial comment", "");
}

static void test_mixed_line_ends_in_one_stream(void **state)
{
    (void)state;
    expect_all_splits("data: a\rdata: b\r\ndata: c\n\r\n: x\r\r\n\ndata: d\n\r",
                      "Emessage|a\\nb\\nc|\nCx\nEmessage|d|\n");
}

static void test_cr_then_cr_is_two_line_ends(void **state)
{
    (void)state;
    /* "\r\r" ends the data line and then a blank line; "\r\n" alone is one line end. */
    expect_all_splits("data: a\r\rdata: b\r\n\r\n", "Emessage|a|\nEmessage|b|\n");
    expect_all_splits("data: a\n\r\n", "Emessage|a|\n");
}

static void test_retry_field_sets_reconnection_time_when_all_digits(void **state)
{
    (void)state;
    sse_parser p;
    sse_parser_init(&p, NULL, NULL, NULL, 0);
    assert_int_equal(sse_parser_retry_ms(&p), -1);
    const char *s = "retry: 3x\nretry:\nretry: -5\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_retry_ms(&p), -1);
    s = "retry: 2500\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_retry_ms(&p), 2500);
    s = "retry: 99999999999999999999999\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_retry_ms(&p), INT32_MAX);
    sse_parser_free(&p);
}

static void test_leading_byte_order_mark_is_skipped_once(void **state)
{
    (void)state;
    expect_all_splits("\xEF\xBB\xBF"
                      "data: a\n\n\xEF\xBB\xBF"
                      "data: b\n\n",
                      "Emessage|a|\n");
}

static void test_line_at_the_cap_is_accepted_and_one_byte_over_fails(void **state)
{
    (void)state;
    /* max_line 16: "data: 0123456789" is exactly 16 bytes. */
    const char ok[] = "data: 0123456789\n\n";
    expect_all_splits_n(ok, sizeof(ok) - 1, 16, "Emessage|0123456789|\n");
    const char over[] = "data: 0123456789X\n\n";
    char expected[32];
    snprintf(expected, sizeof(expected), "R%d\n", SSE_ETOOLONG);
    expect_all_splits_n(over, sizeof(over) - 1, 16, expected);
    /* Without a line end the line still may not grow past the cap. */
    const char endless[] = "data: 0123456789012345678901234567890";
    expect_all_splits_n(endless, sizeof(endless) - 1, 16, expected);
}

static void test_event_data_over_the_cap_fails_and_the_error_sticks(void **state)
{
    (void)state;
    sse_parser p;
    transcript t = {0};
    sse_parser_init(&p, record_event, NULL, &t, 16);
    const char *line = "data: 01234567\n"; /* 9 bytes of data each, counting the joining LF */
    assert_int_equal(sse_parser_feed(&p, line, strlen(line)), 0);
    assert_int_equal(sse_parser_feed(&p, line, strlen(line)), SSE_ETOOLONG);
    assert_int_equal(sse_parser_feed(&p, "\n", 1), SSE_ETOOLONG);
    assert_int_equal(sse_parser_finish(&p), SSE_ETOOLONG);
    assert_int_equal(t.events, 0);
    sse_parser_free(&p);
}

static void test_long_line_under_default_cap_in_many_chunks(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *input = malloc(n + 16);
    assert_non_null(input);
    memcpy(input, "data: ", 6);
    memset(input + 6, 'x', n);
    memcpy(input + 6 + n, "\n\n", 2);
    transcript t = {0};
    sse_parser p;
    sse_parser_init(&p, record_event, NULL, &t, 0);
    for (size_t at = 0; at < n + 8; at += 4093) {
        size_t chunk = n + 8 - at < 4093 ? n + 8 - at : 4093;
        assert_int_equal(sse_parser_feed(&p, input + at, chunk), 0);
    }
    assert_int_equal(t.events, 1);
    assert_int_equal(t.len, 1 + 7 + 1 + n + 1 + 1); /* "Emessage|" + data + "|" + "\n" */
    sse_parser_free(&p);
    free(t.text);
    free(input);
}

static void test_callback_stop_value_is_returned(void **state)
{
    (void)state;
    transcript t = {.stop_after = 2};
    sse_parser p;
    sse_parser_init(&p, record_event, NULL, &t, 0);
    const char *s = "data: a\n\ndata: b\n\ndata: c\n\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 7);
    assert_int_equal(t.events, 2);
    assert_string_equal(t.text, "Emessage|a|\nEmessage|b|\n");
    sse_parser_free(&p);
    free(t.text);
}

static void test_finish_resets_for_a_new_stream(void **state)
{
    (void)state;
    transcript t = {0};
    sse_parser p;
    sse_parser_init(&p, record_event, NULL, &t, 0);
    const char *s = "id: 4\ndata: a\n\ndata: cut off\r";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_finish(&p), 0);
    /* The CR remembered from the old stream must not swallow this stream's first LF. */
    s = "\ndata: b\n\n";
    assert_int_equal(sse_parser_feed(&p, s, strlen(s)), 0);
    assert_string_equal(t.text, "Emessage|a|4\nEmessage|b|4\n");
    sse_parser_free(&p);
    free(t.text);
}

int main(void)
{
    enum { N_LINE_END = sizeof(line_end_cases) / sizeof(line_end_cases[0]) };
    struct CMUnitTest tests[N_LINE_END + 32] = {
        cmocka_unit_test(test_id_with_nul_is_ignored),
        cmocka_unit_test(test_id_sets_last_event_id_even_without_data),
        cmocka_unit_test(test_unfinished_event_at_end_is_discarded),
        cmocka_unit_test(test_mixed_line_ends_in_one_stream),
        cmocka_unit_test(test_cr_then_cr_is_two_line_ends),
        cmocka_unit_test(test_retry_field_sets_reconnection_time_when_all_digits),
        cmocka_unit_test(test_leading_byte_order_mark_is_skipped_once),
        cmocka_unit_test(test_line_at_the_cap_is_accepted_and_one_byte_over_fails),
        cmocka_unit_test(test_event_data_over_the_cap_fails_and_the_error_sticks),
        cmocka_unit_test(test_long_line_under_default_cap_in_many_chunks),
        cmocka_unit_test(test_callback_stop_value_is_returned),
        cmocka_unit_test(test_finish_resets_for_a_new_stream),
    };
    /* The table's rows after the tests above, each its own named test. */
    size_t n = 0;
    while (tests[n].name)
        n++;
    for (size_t i = 0; i < N_LINE_END; i++)
        tests[n++] = (struct CMUnitTest){line_end_cases[i].name, test_line_end_case, NULL, NULL,
                                         (void *)&line_end_cases[i]};
    return _cmocka_run_group_tests("test_sse", tests, n, NULL, NULL);
}
