/*
 * test_json.c - json.c: parameters read from JSON, strings written to JSON whatever their
 * bytes, the SSE frame of an event, and a WebSocket command read field by field and its reply.
 *
 * The frame tests build a struct errinj__record by hand, as the server's consumer receives
 * it from the ring, so every field has a value the test chose and can look for.
 */
#include "entry.h"
#include "events.h"
#define ERRINJ__JSON_JANSSON /* builds values with jansson */
#include "json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* True when s[0..len) is UTF-8 as JSON needs it: no overlongs, surrogates or values past U+10FFFF. */
static bool utf8_valid(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    json_decref(j);
    return j != NULL;
}

static struct errinj__config *config_of(const char *const *kv)
{
    struct errinj__config *cfg = errinj__config_new(kv);
    assert_non_null(cfg);
    return cfg;
}

static void expect_param(const struct errinj__config *cfg, const char *key, const char *value)
{
    const char *got = errinj__config_get(cfg, key);
    if (got == NULL)
        fail_msg("parameter %s missing, expected \"%s\"", key, value);
    assert_string_equal(got, value);
}

static void free_config(struct errinj__config **cfg)
{
    errinj__config_unref(*cfg);
    *cfg = NULL;
}

/* ---- errinj__config_from_json --------------------------------------------------------------- */

static void config_from_null_pointer_or_json_null_is_empty(void **state)
{
    (void)state;
    json_t *null = json_null();
    const json_t *inputs[] = {NULL, null};
    for (size_t i = 0; i < 2; i++) {
        struct errinj__config *cfg = (void *)1;
        const char *why = NULL;
        assert_int_equal(errinj__config_from_json(inputs[i], &cfg, &why), 0);
        assert_non_null(cfg);
        assert_int_equal(cfg->pairs, 0);
        assert_null(cfg->kv[0]);
        assert_null(why);
        free_config(&cfg);
    }
    json_decref(null);
}

static void config_from_an_empty_object_is_empty(void **state)
{
    (void)state;
    json_t *obj = json_object();
    struct errinj__config *cfg = NULL;
    const char *why = NULL;
    assert_int_equal(errinj__config_from_json(obj, &cfg, &why), 0);
    assert_int_equal(cfg->pairs, 0);
    assert_null(cfg->kv[0]);
    free_config(&cfg);
    json_decref(obj);
}

static void config_keeps_strings_and_stringifies_other_values(void **state)
{
    (void)state;
    json_t *obj = json_loads("{\"s\":\"text\",\"empty\":\"\",\"n\":5,\"neg\":-12,\"b\":true,\"f\":false,"
                             "\"o\":{\"x\":[1]},\"z\":null,\"a\":[1,\"two\",null],\"r\":1.5,\"u\":\"caf\\u00e9\","
                             "\"q\":\"say \\\"hi\\\"\\n\"}",
                             0, NULL);
    assert_non_null(obj);
    struct errinj__config *cfg = NULL;
    const char *why = NULL;
    assert_int_equal(errinj__config_from_json(obj, &cfg, &why), 0);
    assert_int_equal(cfg->pairs, 12);
    expect_param(cfg, "s", "text");
    expect_param(cfg, "empty", "");
    expect_param(cfg, "n", "5");
    expect_param(cfg, "neg", "-12");
    expect_param(cfg, "b", "true");
    expect_param(cfg, "f", "false");
    expect_param(cfg, "o", "{\"x\":[1]}");
    expect_param(cfg, "z", "null");
    expect_param(cfg, "a", "[1,\"two\",null]");
    expect_param(cfg, "r", "1.5");
    expect_param(cfg, "u", "caf\xc3\xa9");
    expect_param(cfg, "q", "say \"hi\"\n"); /* a string is kept as is, not re-encoded */
    assert_null(cfg->kv[24]);
    json_decref(obj); /* the config owns copies */
    expect_param(cfg, "o", "{\"x\":[1]}");
    free_config(&cfg);
}

static void config_from_a_non_object_is_einval_with_a_reason(void **state)
{
    (void)state;
    json_t *inputs[] = {json_array(), json_integer(5), json_string("k=v"), json_true(), json_false(),
                        json_real(1.5), json_loads("[{\"k\":\"v\"}]", 0, NULL)};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_non_null(inputs[i]);
        struct errinj__config *cfg = (void *)1;
        const char *why = NULL;
        int rc = errinj__config_from_json(inputs[i], &cfg, &why);
        char *text = json_dumps(inputs[i], JSON_ENCODE_ANY);
        if (rc != ERRINJ_EINVAL)
            fail_msg("%s: rc %d (%s), expected ERRINJ_EINVAL", text, rc, errinj_strerror(rc));
        assert_null(cfg);
        if (why == NULL || why[0] == '\0')
            fail_msg("%s: refused without a reason", text);
        free(text);
        json_decref(inputs[i]);
    }
}

static void config_refuses_nul_in_keys_and_values(void **state)
{
    (void)state;
    json_t *bad_key = json_object();
    json_object_setn_new(bad_key, "a\0b", 3, json_string("v"));
    json_t *bad_value = json_object();
    json_object_set_new(bad_value, "k", json_stringn("a\0b", 3));
    json_t *inputs[] = {bad_key, bad_value};
    for (size_t i = 0; i < 2; i++) {
        struct errinj__config *cfg = (void *)1;
        const char *why = NULL;
        assert_int_equal(errinj__config_from_json(inputs[i], &cfg, &why), ERRINJ_EINVAL);
        assert_null(cfg);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
        json_decref(inputs[i]);
    }
}

/* ---- errinj__json_string_lossy ------------------------------------------------------------- */

#define FFFD "\xef\xbf\xbd"

static void lossy_string_keeps_valid_utf8_and_replaces_each_bad_byte(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"", ""},
        {"plain ascii", "plain ascii"},
        {"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x92\xa5", "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x92\xa5"},
        {"ctl \x01\x1f\x7f\n", "ctl \x01\x1f\x7f\n"},
        {"a\xff" "b", "a" FFFD "b"},
        {"\xfe\xff", FFFD FFFD},
        {"\x80", FFFD},
        {"\xc0\xaf", FFFD FFFD},                /* overlong '/' */
        {"\xe0\x80\xaf", FFFD FFFD FFFD},       /* overlong, three bytes */
        {"\xed\xa0\x80", FFFD FFFD FFFD},       /* a surrogate */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* past U+10FFFF */
        {"\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD},
        {"x\xe2\x82", "x" FFFD FFFD},           /* a sequence cut short at the end */
        {"\xe2\x82x", FFFD FFFD "x"},           /* ... or in the middle */
        {"\xc3\xa9\xff\xc3\xa9", "\xc3\xa9" FFFD "\xc3\xa9"},
        {"\xef\xbf\xbd", "\xef\xbf\xbd"},       /* U+FFFD itself is valid */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = errinj__json_string_lossy(cases[i].in);
        if (j == NULL)
            fail_msg("case %zu: NULL", i);
        assert_true(json_is_string(j));
        assert_string_equal(json_string_value(j), cases[i].out);
        assert_int_equal(json_string_length(j), strlen(cases[i].out));
        json_decref(j);
    }
}

/* Every string of up to three bytes from a mix of ASCII, lead, continuation and invalid bytes. */
static void lossy_string_is_always_valid_utf8(void **state)
{
    (void)state;
    static const unsigned char bytes[] = {'a', 0x01, 0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                          0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xf8, 0xfe, 0xff};
    const size_t n = sizeof(bytes);
    size_t checked = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b <= n; b++)
            for (size_t c = 0; c <= n; c++) {
                if (b == n && c != n)
                    continue; /* shorter strings are covered once */
                char s[4] = {(char)bytes[a], b < n ? (char)bytes[b] : 0, c < n ? (char)bytes[c] : 0, 0};
                json_t *j = errinj__json_string_lossy(s);
                if (j == NULL)
                    fail_msg("%02x %02x %02x: NULL", bytes[a], b < n ? bytes[b] : 0, c < n ? bytes[c] : 0);
                const char *out = json_string_value(j);
                if (!utf8_valid(out, strlen(out)))
                    fail_msg("%02x %02x %02x: result is not UTF-8", bytes[a], b < n ? bytes[b] : 0,
                             c < n ? bytes[c] : 0);
                /* Valid input comes out unchanged. */
                if (utf8_valid(s, strlen(s)))
                    assert_string_equal(out, s);
                json_decref(j);
                checked++;
            }
    assert_true(checked > 10000);
}

/* ---- errinj__record_sse_frame ------------------------------------------------------------- */

/* A record of the injection "json.frame" (enabled so that the entry exists). */
static struct errinj__record record_of(struct errinj__config *cfg, const char *file, int line)
{
    assert_int_equal(errinj_enable("json.frame", false, NULL), 0);
    struct errinj__entry *e = errinj__entry_find("json.frame");
    assert_non_null(e);
    return (struct errinj__record){
        .seq = 42,
        .entry = e,
        .cfg = cfg,
        .file = file,
        .line = line,
        .type = ERRINJ_TYPE_HANDLER,
        .phase = ERRINJ__PHASE_WAITING,
        .shard = 2,
        .thread = 12345,
        .ts_ns = 1700000000123456789ll,
        .enters = 3,
        .action = ERRINJ__ACTION_RETURN,
        .eval = 7,
    };
}

/* Splits a frame into its id and its JSON, checking the exact framing on the way. */
static json_t *parse_frame(const char *frame, size_t len, unsigned long long *id)
{
    assert_non_null(frame);
    assert_int_equal(len, strlen(frame));
    char tail[] = "\n\n";
    if (len < 2 || memcmp(frame + len - 2, tail, 2) != 0)
        fail_msg("frame does not end with a blank line: %s", frame);
    if (strncmp(frame, "id: ", 4) != 0)
        fail_msg("frame does not start with \"id: \": %s", frame);
    char *end;
    *id = strtoull(frame + 4, &end, 10);
    if (end == frame + 4 || strncmp(end, "\ndata: ", 7) != 0)
        fail_msg("no \"\\ndata: \" after the id: %s", frame);
    const char *data = end + 7;
    size_t data_len = (size_t)(frame + len - 2 - data);
    if (memchr(data, '\n', data_len) != NULL || memchr(data, '\r', data_len) != NULL)
        fail_msg("the data spans more than one line: %s", frame);
    json_error_t err;
    json_t *obj = json_loadb(data, data_len, 0, &err);
    if (obj == NULL)
        fail_msg("data is not JSON (%s): %s", err.text, frame);
    assert_true(json_is_object(obj));
    return obj;
}

static void expect_int_field(json_t *obj, const char *key, long long value)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is missing or not an integer", key);
    assert_int_equal(json_integer_value(v), value);
}

static void expect_string_field(json_t *obj, const char *key, const char *value)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("\"%s\" is missing or not a string", key);
    assert_string_equal(json_string_value(v), value);
}

static void frame_is_id_then_one_data_line_with_every_field(void **state)
{
    (void)state;
    struct errinj__config *cfg = config_of((const char *[]){"k", "v", "n", "5", NULL});
    struct errinj__record rec = record_of(cfg, "src/server.cc", 77);
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id);
    assert_int_equal(id, 42);
    assert_true(strncmp(frame, "id: 42\ndata: {", 14) == 0);
    expect_string_field(obj, "injection", "json.frame");
    expect_string_field(obj, "type", "handler");
    expect_string_field(obj, "phase", "waiting");
    expect_int_field(obj, "shard", 2);
    expect_int_field(obj, "seq", 42);
    expect_int_field(obj, "thread", 12345);
    expect_int_field(obj, "ts_ns", 1700000000123456789ll);
    expect_int_field(obj, "enters", 3);
    expect_string_field(obj, "action", "return");
    expect_int_field(obj, "eval", 7);
    expect_string_field(obj, "file", "src/server.cc");
    expect_int_field(obj, "line", 77);
    json_t *params = json_object_get(obj, "parameters");
    assert_true(json_is_object(params));
    assert_int_equal(json_object_size(params), 2);
    expect_string_field(params, "k", "v");
    expect_string_field(params, "n", "5");
    if (json_object_size(obj) != 13) {
        fail_msg("frame has %zu keys, expected 13: %s", json_object_size(obj), frame);
    }
    json_decref(obj);
    free(frame);
    free_config(&cfg);
}

static void frame_without_a_file_has_no_file_or_line(void **state)
{
    (void)state;
    struct errinj__config *cfg = config_of(NULL);
    struct errinj__record rec = record_of(cfg, NULL, 0);
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id);
    if (json_object_get(obj, "file") != NULL || json_object_get(obj, "line") != NULL)
        fail_msg("a run-time-name event has file or line: %s", frame);
    json_t *params = json_object_get(obj, "parameters");
    if (!json_is_object(params) || json_object_size(params) != 0)
        fail_msg("parameters is not an empty object: %s", frame);
    assert_int_equal(json_object_size(obj), 11);
    json_decref(obj);
    free(frame);
    free_config(&cfg);
}

static void frame_names_each_type_and_phase(void **state)
{
    (void)state;
    static const char *const types[] = {"sleep", "exception", "lambda", "handler", "enter"};
    static const char *const phases[] = {"hit", "waiting", "released", "timeout"};
    struct errinj__config *cfg = config_of(NULL);
    for (unsigned t = 0; t < 5; t++) {
        for (unsigned p = 0; p < 4; p++) {
            struct errinj__record rec = record_of(cfg, NULL, 0);
            rec.type = (uint8_t)t;
            rec.phase = (uint8_t)p;
            rec.seq = 1000 + 10 * t + p;
            size_t len = 0;
            char *frame = errinj__record_sse_frame(&rec, &len);
            unsigned long long id;
            json_t *obj = parse_frame(frame, len, &id);
            assert_int_equal(id, rec.seq);
            expect_int_field(obj, "seq", (long long)rec.seq);
            expect_string_field(obj, "type", types[t]);
            expect_string_field(obj, "phase", phases[p]);
            json_decref(obj);
            free(frame);
        }
    }
    free_config(&cfg);
}

static void frame_keeps_newlines_and_control_characters_on_one_data_line(void **state)
{
    (void)state;
    const char *key = "multi\nline\rkey";
    const char *value = "a\nb\r\n\x01\x1f\x7f\t\"quoted\" \\ </script>\n\ndata: fake\n\n";
    struct errinj__config *cfg = config_of((const char *[]){key, value, NULL});
    struct errinj__record rec = record_of(cfg, "dir/with\nnewline.c", 5);
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    /* Exactly three line feeds: after the id, and the blank line that ends the frame. */
    size_t lf = 0;
    for (size_t i = 0; i < len; i++)
        lf += frame[i] == '\n';
    if (lf != 3)
        fail_msg("%zu line feeds, expected 3: %s", lf, frame);
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id);
    expect_string_field(json_object_get(obj, "parameters"), key, value);
    expect_string_field(obj, "file", "dir/with\nnewline.c");
    json_decref(obj);
    free(frame);
    free_config(&cfg);
}

static void frame_turns_non_utf8_parameters_into_valid_json(void **state)
{
    (void)state;
    struct errinj__config *cfg =
        config_of((const char *[]){"k\xff", "v\xc0\xaf", "ok", "bad \xed\xa0\x80 surrogate", "caf\xc3\xa9", "\xc3\xa9", NULL});
    struct errinj__record rec = record_of(cfg, "file\xfe.c", 9);
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    assert_non_null(frame);
    assert_true(utf8_valid(frame, len));
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id); /* jansson refuses JSON that is not UTF-8 */
    json_t *params = json_object_get(obj, "parameters");
    assert_int_equal(json_object_size(params), 3);
    expect_string_field(params, "k" FFFD, "v" FFFD FFFD);
    expect_string_field(params, "ok", "bad " FFFD FFFD FFFD " surrogate");
    expect_string_field(params, "caf\xc3\xa9", "\xc3\xa9");
    expect_string_field(obj, "file", "file" FFFD ".c");
    json_decref(obj);
    free(frame);
    free_config(&cfg);
}

static void frame_of_a_large_seq_prints_it_whole(void **state)
{
    (void)state;
    struct errinj__config *cfg = config_of(NULL);
    struct errinj__record rec = record_of(cfg, NULL, 0);
    rec.seq = 9007199254740993ull; /* above 2^53: must not pass through a double */
    rec.enters = 18446744073ull;
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    assert_true(strncmp(frame, "id: 9007199254740993\ndata: ", 27) == 0);
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id);
    assert_int_equal(id, 9007199254740993ull);
    expect_int_field(obj, "seq", 9007199254740993ll);
    expect_int_field(obj, "enters", 18446744073ll);
    json_decref(obj);
    free(frame);
    free_config(&cfg);
}

static int disable_everything(void **state)
{
    (void)state;
    errinj_disable_all();
    return 0;
}

/* The frame as jansson's compact dump writes it: the reference the hand-written frames match. */
static char *jansson_frame(const struct errinj__record *rec)
{
    errinj_event ev;
    errinj__record_to_event(rec, &ev);
    json_t *params = json_object();
    for (size_t i = 0; ev.parameters[i] != NULL; i += 2) {
        json_t *key = errinj__json_string_lossy(ev.parameters[i]);
        if (json_object_get(params, json_string_value(key)) == NULL)
            json_object_set_new(params, json_string_value(key), errinj__json_string_lossy(ev.parameters[i + 1]));
        json_decref(key);
    }
    json_t *obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:o}", "injection", ev.injection,
                            "type", ev.type, "phase", ev.phase, "shard", (json_int_t)ev.shard, "seq",
                            (json_int_t)ev.seq, "thread", (json_int_t)ev.thread, "ts_ns", (json_int_t)ev.ts_ns,
                            "enters", (json_int_t)ev.enters, "action", ev.action, "eval", (json_int_t)ev.eval,
                            "parameters", params);
    if (ev.file != NULL) {
        json_object_set_new(obj, "file", errinj__json_string_lossy(ev.file));
        json_object_set_new(obj, "line", json_integer(ev.line));
    }
    if (ev.detail != NULL)
        json_object_set_new(obj, "detail", json_loads(ev.detail, 0, NULL));
    char *data = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    char *frame = malloc(strlen(data) + 64);
    sprintf(frame, "id: %llu\ndata: %s\n\n", (unsigned long long)ev.seq, data);
    free(data);
    return frame;
}

static void random_text(char *out, size_t max, unsigned top)
{
    size_t n = (size_t)rand() % max;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(1 + rand() % (int)top);
    out[n] = '\0';
}

/* Frames are written by hand for speed; they must be byte for byte what jansson would write, for
 * any bytes in parameters and file names (keys stay ASCII: two different invalid keys that both
 * become U+FFFD are a collision jansson resolves and the writer does not). */
static void frame_is_byte_identical_to_janssons_compact_dump(void **state)
{
    (void)state;
    srand(7);
    for (int iter = 0; iter < 20000; iter++) {
        char k[3][12], v[3][12], file[12];
        const char *kv[7];
        int n = rand() % 4;
        for (int i = 0; i < n && i < 3; i++) {
            random_text(k[i], 11, 127);
            random_text(v[i], 11, 255);
            kv[2 * i] = k[i];
            kv[2 * i + 1] = v[i];
        }
        n = n > 3 ? 3 : n;
        kv[2 * n] = NULL;
        random_text(file, 11, 255);
        struct errinj__config *cfg = errinj__config_new(kv);
        struct errinj__record rec = record_of(cfg, rand() % 2 ? file : NULL, rand());
        rec.seq = (uint64_t)rand() * (uint64_t)rand();
        rec.type = (uint8_t)(rand() % 5);
        rec.phase = (uint8_t)(rand() % 4);
        rec.ts_ns = (int64_t)rand() * rand() * (rand() % 2 ? 1 : -1);
        /* A detail is a compact JSON object its maker wrote; jansson keeps key order. */
        char detail[96];
        snprintf(detail, sizeof(detail), "{\"function\":\"write\",\"fd\":%d,\"path\":null,\"size\":%d}", rand() % 100,
                 rand());
        rec.detail = rand() % 2 ? detail : NULL;
        size_t len = 0;
        char *mine = errinj__record_sse_frame(&rec, &len);
        char *reference = jansson_frame(&rec);
        assert_string_equal(mine, reference);
        assert_int_equal(len, strlen(reference));
        free(mine);
        free(reference);
        errinj__config_unref(cfg);
    }
}

/* ---- the 64 KiB event line ------------------------------------------------------------------ */

/* The data line of a frame (without "data: " and the line feed) and its length with both. */
static const char *data_line(const char *frame, size_t *line_len)
{
    const char *data = strstr(frame, "\ndata: ");
    assert_non_null(data);
    data += 1;
    const char *lf = strchr(data, '\n');
    assert_non_null(lf);
    *line_len = (size_t)(lf - data) + 1;
    return data + 6;
}

/* Checks the line bound, parses the frame and says whether it carries "truncated": true. */
static json_t *bounded_frame(struct errinj__record *rec, bool *truncated)
{
    size_t len = 0, line_len = 0;
    char *frame = errinj__record_sse_frame(rec, &len);
    assert_non_null(frame);
    data_line(frame, &line_len);
    if (line_len > ERRINJ__EVENT_LINE_MAX)
        fail_msg("event line of %zu bytes, more than %d", line_len, ERRINJ__EVENT_LINE_MAX);
    assert_true(utf8_valid(frame, len));
    unsigned long long id;
    json_t *obj = parse_frame(frame, len, &id);
    json_t *t = json_object_get(obj, "truncated");
    *truncated = json_is_true(t);
    if (t != NULL && !json_is_true(t))
        fail_msg("\"truncated\" is there but not true: %s", frame);
    free(frame);
    return obj;
}

static void frame_of_100000_keys_fits_one_64_kib_line_and_says_truncated(void **state)
{
    (void)state;
    enum { KEYS = 100000 };
    const char **kv = calloc(2 * KEYS + 1, sizeof(*kv));
    char *text = malloc((size_t)KEYS * 24);
    assert_non_null(kv);
    assert_non_null(text);
    for (int i = 0; i < KEYS; i++) {
        char *k = text + (size_t)i * 24;
        snprintf(k, 12, "key%06d", i);
        snprintf(k + 12, 12, "value%06d", i);
        kv[2 * i] = k;
        kv[2 * i + 1] = k + 12;
    }
    struct errinj__config *cfg = config_of(kv);
    assert_int_equal(cfg->pairs, KEYS);
    struct errinj__record rec = record_of(cfg, "src/big.c", 10);
    bool truncated = false;
    json_t *obj = bounded_frame(&rec, &truncated);
    assert_true(truncated);
    /* The parameters that are there are the first ones, in order, whole or the last one cut. */
    json_t *params = json_object_get(obj, "parameters");
    size_t n = json_object_size(params);
    if (n < 1000 || n >= KEYS)
        fail_msg("%zu of %d parameters in a 64 KiB line", n, KEYS);
    for (size_t i = 0; i + 1 < n; i++)
        expect_string_field(params, kv[2 * i], kv[2 * i + 1]);
    expect_string_field(obj, "file", "src/big.c");
    expect_int_field(obj, "line", 10);
    json_decref(obj);
    free_config(&cfg);
    free(text);
    free(kv);
}

static void frame_cuts_a_long_value_at_a_character_boundary(void **state)
{
    (void)state;
    /* 100 KB of two-byte characters, escapes and control bytes: no cut may split any of them. */
    static const char *const pieces[] = {"\xc3\xa9", "\"", "\\", "\n", "\x01", "a", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff"};
    size_t cap = 100 * 1024;
    char *value = malloc(cap + 8);
    assert_non_null(value);
    size_t len = 0;
    for (unsigned i = 0; len < cap; i = (i * 7 + 3) % 9) {
        size_t n = strlen(pieces[i]);
        memcpy(value + len, pieces[i], n);
        len += n;
    }
    value[len] = '\0';
    struct errinj__config *cfg = config_of((const char *[]){"short", "kept", "long", value, "after", "dropped", NULL});
    struct errinj__record rec = record_of(cfg, NULL, 0);
    bool truncated = false;
    json_t *obj = bounded_frame(&rec, &truncated);
    assert_true(truncated);
    json_t *params = json_object_get(obj, "parameters");
    expect_string_field(params, "short", "kept");
    assert_null(json_object_get(params, "after"));
    /* What arrived of the long value is a prefix of the whole value as JSON reads it. */
    json_t *whole = errinj__json_string_lossy(value);
    const char *got = json_string_value(json_object_get(params, "long"));
    assert_non_null(got);
    assert_true(strlen(got) > 10000);
    assert_true(strncmp(got, json_string_value(whole), strlen(got)) == 0);
    json_decref(whole);
    json_decref(obj);
    free_config(&cfg);
    free(value);
}

static void frame_within_the_line_is_whole_and_not_truncated(void **state)
{
    (void)state;
    size_t big_len = 60 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    struct errinj__config *cfg = config_of((const char *[]){"big", big, NULL});
    struct errinj__record rec = record_of(cfg, "f.c", 1);
    size_t len = 0;
    char *mine = errinj__record_sse_frame(&rec, &len);
    char *reference = jansson_frame(&rec);
    assert_string_equal(mine, reference);
    free(mine);
    free(reference);
    free_config(&cfg);
    free(big);
}

/* Random sizes around the limit, random bytes: the line bound, valid JSON, and "truncated" exactly
 * when the frame differs from jansson's whole dump. */
static void frames_near_the_line_limit_are_bounded_and_flag_every_cut(void **state)
{
    (void)state;
    srand(11);
    for (int iter = 0; iter < 300; iter++) {
        enum { PAIRS = 4 };
        char *text[2 * PAIRS];
        const char *kv[2 * PAIRS + 1];
        int pairs = 1 + rand() % PAIRS;
        for (int i = 0; i < 2 * pairs; i++) {
            size_t n = i % 2 ? (size_t)rand() % 40000 : 1 + (size_t)rand() % 20;
            text[i] = malloc(n + 1);
            for (size_t k = 0; k < n; k++)
                text[i][k] = (char)(i % 2 ? 1 + rand() % 255 : 'a' + rand() % 26);
            text[i][n] = '\0';
            kv[i] = text[i];
        }
        kv[2 * pairs] = NULL;
        struct errinj__config *cfg = config_of(kv);
        struct errinj__record rec = record_of(cfg, rand() % 2 ? "some/file.c" : NULL, 3);
        bool truncated = false;
        json_t *obj = bounded_frame(&rec, &truncated);
        size_t len = 0;
        char *mine = errinj__record_sse_frame(&rec, &len);
        char *reference = jansson_frame(&rec);
        if (truncated == (strcmp(mine, reference) == 0))
            fail_msg("iteration %d: truncated is %d but the frame %s jansson's", iter, truncated,
                     truncated ? "equals" : "differs from");
        free(mine);
        free(reference);
        json_decref(obj);
        free_config(&cfg);
        for (int i = 0; i < 2 * pairs; i++)
            free(text[i]);
    }
}

/* ---- the REST bodies and the overflow frame ---------------------------------------------- */

static void params_of_a_blank_or_null_body_are_none(void **state)
{
    (void)state;
    static const char *const bodies[] = {"", " \t\r\n\v\f", "null", " null "};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct errinj__config *cfg = NULL;
        char why[128] = "x";
        assert_int_equal(errinj__json_params(bodies[i], strlen(bodies[i]), &cfg, why, sizeof(why)), 0);
        assert_non_null(cfg);
        assert_int_equal(cfg->pairs, 0);
        assert_string_equal(why, "");
        errinj__config_unref(cfg);
    }
}

static void params_of_an_object_are_kept_and_stringified(void **state)
{
    (void)state;
    const char body[] = "{\"s\":\"v\",\"n\":5,\"o\":{\"a\":[1,true]}}";
    struct errinj__config *cfg = NULL;
    char why[128];
    assert_int_equal(errinj__json_params(body, sizeof(body) - 1, &cfg, why, sizeof(why)), 0);
    assert_int_equal(cfg->pairs, 3);
    assert_string_equal(errinj__config_get(cfg, "s"), "v");
    assert_string_equal(errinj__config_get(cfg, "n"), "5");
    assert_string_equal(errinj__config_get(cfg, "o"), "{\"a\":[1,true]}");
    errinj__config_unref(cfg);
}

static void params_refuse_malformed_json_and_non_objects_with_the_reason(void **state)
{
    (void)state;
    struct errinj__config *cfg = NULL;
    char why[128];
    assert_int_equal(errinj__json_params("{\"a\":", 5, &cfg, why, sizeof(why)), ERRINJ_EINVAL);
    assert_null(cfg);
    assert_true(strncmp(why, "malformed JSON body: ", 21) == 0 && strlen(why) > 21);
    assert_int_equal(errinj__json_params("[1]", 3, &cfg, why, sizeof(why)), ERRINJ_EINVAL);
    assert_null(cfg);
    assert_string_equal(why, "parameters must be a JSON object");
}

static void error_body_has_the_message_lossy_and_the_code(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = errinj__json_error(404, "no \"such\" \xff path", &len);
    assert_non_null(text);
    assert_string_equal(text, "{\"message\":\"no \\\"such\\\" \xef\xbf\xbd path\",\"code\":404}");
    assert_int_equal(len, strlen(text));
    free(text);
}

static void uint_and_lists_are_compact_json(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = errinj__json_uint(12345, &len);
    assert_string_equal(text, "12345");
    free(text);
    struct errinj__json_list *l = errinj__json_list_new();
    errinj__json_list_add_string(l, "a");
    errinj__json_list_add_string(l, "b\"c");
    text = errinj__json_list_finish(l, &len);
    assert_string_equal(text, "[\"a\",\"b\\\"c\"]");
    assert_int_equal(len, strlen(text));
    free(text);
    /* A list that could not be made (out of memory) takes elements and finishes as NULL. */
    errinj__json_list_add_string(NULL, "x");
    assert_null(errinj__json_list_finish(NULL, &len));
    assert_int_equal(len, 0);
}

static void overflow_frame_names_the_dropped_count_and_the_next_seq(void **state)
{
    (void)state;
    char buf[ERRINJ__OVERFLOW_FRAME_MAX];
    size_t n = errinj__json_overflow_frame(buf, 3, 42);
    assert_string_equal(buf, "event: overflow\ndata: {\"dropped\":3,\"next_seq\":42}\n\n");
    assert_int_equal(n, strlen(buf));
    n = errinj__json_overflow_frame(buf, UINT64_MAX, UINT64_MAX);
    assert_int_equal(n, strlen(buf));
    assert_true(n < sizeof(buf));
}

/* ---- WebSocket commands and replies ---- */

static bool not_x(const char *key, const void *arg)
{
    (void)arg;
    return strcmp(key, "x") != 0;
}

static void doc_reads_each_field_by_kind(void **state)
{
    (void)state;
    const char text[] = "{\"i\":7,\"r\":0.5,\"s\":\"a\\u00e9\",\"b\":true,\"n\":null,\"a\":[1],"
                        "\"o\":{\"k\":2},\"x\":1}";
    char why[128];
    struct errinj__json_doc *d = errinj__json_doc_parse(text, sizeof(text) - 1, why, sizeof(why));
    assert_non_null(d);
    assert_true(errinj__json_doc_is_object(d));
    assert_int_equal(errinj__json_doc_kind(d, "i"), ERRINJ__JSON_INTEGER);
    assert_int_equal(errinj__json_doc_kind(d, "r"), ERRINJ__JSON_REAL);
    assert_int_equal(errinj__json_doc_kind(d, "s"), ERRINJ__JSON_STRING);
    assert_int_equal(errinj__json_doc_kind(d, "b"), ERRINJ__JSON_BOOL);
    assert_int_equal(errinj__json_doc_kind(d, "n"), ERRINJ__JSON_NULL);
    assert_int_equal(errinj__json_doc_kind(d, "a"), ERRINJ__JSON_ARRAY);
    assert_int_equal(errinj__json_doc_kind(d, "o"), ERRINJ__JSON_OBJECT);
    assert_int_equal(errinj__json_doc_kind(d, "missing"), ERRINJ__JSON_ABSENT);
    size_t len = 99;
    const char *s = errinj__json_doc_string(d, "s", &len);
    assert_int_equal(len, 3); /* bytes, not characters */
    assert_string_equal(s, "a\xc3\xa9");
    assert_null(errinj__json_doc_string(d, "i", &len));
    assert_true(errinj__json_doc_true(d, "b"));
    assert_false(errinj__json_doc_true(d, "i"));
    char out[16];
    assert_true(errinj__json_doc_scalar(d, "i", out, sizeof(out)));
    assert_string_equal(out, "7");
    assert_true(errinj__json_doc_scalar(d, "r", out, sizeof(out)));
    assert_string_equal(out, "0.500000");
    assert_true(errinj__json_doc_scalar(d, "b", out, sizeof(out)));
    assert_string_equal(out, "true");
    assert_false(errinj__json_doc_scalar(d, "o", out, sizeof(out)));
    assert_false(errinj__json_doc_scalar(d, "i", out, 1)); /* does not fit */
    char *field = errinj__json_doc_field_text(d, "o", &len);
    assert_string_equal(field, "{\"k\":2}");
    assert_int_equal(len, strlen(field));
    free(field);
    assert_null(errinj__json_doc_field_text(d, "missing", &len));
    assert_string_equal(errinj__json_doc_first_key_not(d, not_x, NULL), "x");
    errinj__json_doc_free(d);
}

static void doc_refuses_malformed_json_and_takes_arrays_as_no_object(void **state)
{
    (void)state;
    char why[128];
    assert_null(errinj__json_doc_parse("{\"a\":", 5, why, sizeof(why)));
    assert_true(strncmp(why, "malformed JSON: ", 16) == 0 && strlen(why) > 16);
    assert_null(errinj__json_doc_parse("5", 1, why, sizeof(why))); /* an object or an array only */
    struct errinj__json_doc *d = errinj__json_doc_parse("[1]", 3, why, sizeof(why));
    assert_non_null(d);
    assert_false(errinj__json_doc_is_object(d));
    assert_int_equal(errinj__json_doc_kind(d, "id"), ERRINJ__JSON_ABSENT);
    errinj__json_doc_free(d);
}

static void ws_replies_carry_the_id_and_the_routers_answer(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = errinj__json_ws_error(NULL, 400, "bad \xff", &len);
    assert_string_equal(text, "{\"id\":null,\"ok\":false,\"message\":\"bad \xef\xbf\xbd\",\"code\":400}");
    assert_int_equal(len, strlen(text));
    free(text);
    const char err[] = "{\"message\":\"no such injection\",\"code\":404}";
    struct errinj__json_ws_answer a = {.id = "\"x\"", .status = 404, .body = err, .body_len = sizeof(err) - 1,
                                       .refused = "refused"};
    text = errinj__json_ws_answer(&a, &len);
    assert_string_equal(text, "{\"id\":\"x\",\"ok\":false,\"message\":\"no such injection\",\"code\":404}");
    free(text);
    a = (struct errinj__json_ws_answer){.id = "3", .status = 500, .refused = "wait refused"};
    text = errinj__json_ws_answer(&a, &len);
    assert_string_equal(text, "{\"id\":3,\"ok\":false,\"message\":\"wait refused\",\"code\":500}");
    free(text);
    a = (struct errinj__json_ws_answer){.id = "1", .status = 200, .has_seq = true, .seq = 9, .warning = "w"};
    text = errinj__json_ws_answer(&a, &len);
    assert_string_equal(text, "{\"id\":1,\"ok\":true,\"seq\":9,\"warning\":\"w\"}");
    free(text);
    const char got[] = "[{\"enabled\":true,\"one_shot\":false}]";
    a = (struct errinj__json_ws_answer){.id = "2", .status = 200, .body = got, .body_len = sizeof(got) - 1,
                                        .shape = ERRINJ__WS_ANSWER_FIRST_ELEMENT};
    text = errinj__json_ws_answer(&a, &len);
    assert_string_equal(text, "{\"id\":2,\"ok\":true,\"enabled\":true,\"one_shot\":false}");
    free(text);
    const char events[] = "[{\"seq\":4}]";
    a = (struct errinj__json_ws_answer){.id = "5", .status = 200, .body = events, .body_len = sizeof(events) - 1,
                                        .shape = ERRINJ__WS_ANSWER_EVENTS};
    text = errinj__json_ws_answer(&a, &len);
    assert_string_equal(text, "{\"id\":5,\"ok\":true,\"events\":[{\"seq\":4}]}");
    free(text);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_from_null_pointer_or_json_null_is_empty),
        cmocka_unit_test(config_from_an_empty_object_is_empty),
        cmocka_unit_test(config_keeps_strings_and_stringifies_other_values),
        cmocka_unit_test(config_from_a_non_object_is_einval_with_a_reason),
        cmocka_unit_test(config_refuses_nul_in_keys_and_values),
        cmocka_unit_test(lossy_string_keeps_valid_utf8_and_replaces_each_bad_byte),
        cmocka_unit_test(lossy_string_is_always_valid_utf8),
        cmocka_unit_test_teardown(frame_is_id_then_one_data_line_with_every_field, disable_everything),
        cmocka_unit_test_teardown(frame_without_a_file_has_no_file_or_line, disable_everything),
        cmocka_unit_test_teardown(frame_names_each_type_and_phase, disable_everything),
        cmocka_unit_test_teardown(frame_keeps_newlines_and_control_characters_on_one_data_line, disable_everything),
        cmocka_unit_test_teardown(frame_turns_non_utf8_parameters_into_valid_json, disable_everything),
        cmocka_unit_test_teardown(frame_of_a_large_seq_prints_it_whole, disable_everything),
        cmocka_unit_test_teardown(frame_is_byte_identical_to_janssons_compact_dump, disable_everything),
        cmocka_unit_test_teardown(frame_of_100000_keys_fits_one_64_kib_line_and_says_truncated, disable_everything),
        cmocka_unit_test_teardown(frame_cuts_a_long_value_at_a_character_boundary, disable_everything),
        cmocka_unit_test_teardown(frame_within_the_line_is_whole_and_not_truncated, disable_everything),
        cmocka_unit_test_teardown(frames_near_the_line_limit_are_bounded_and_flag_every_cut, disable_everything),
        cmocka_unit_test(params_of_a_blank_or_null_body_are_none),
        cmocka_unit_test(params_of_an_object_are_kept_and_stringified),
        cmocka_unit_test(params_refuse_malformed_json_and_non_objects_with_the_reason),
        cmocka_unit_test(error_body_has_the_message_lossy_and_the_code),
        cmocka_unit_test(uint_and_lists_are_compact_json),
        cmocka_unit_test(overflow_frame_names_the_dropped_count_and_the_next_seq),
        cmocka_unit_test(doc_reads_each_field_by_kind),
        cmocka_unit_test(doc_refuses_malformed_json_and_takes_arrays_as_no_object),
        cmocka_unit_test(ws_replies_carry_the_id_and_the_routers_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
