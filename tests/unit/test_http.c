/*
 * test_http.c - the REST API of errinj-events(7), through errinj__http_handle() as a pure
 * function: a request struct in, a reply struct out, no socket.
 *
 * Most of the file is requests that must succeed and what they must leave behind. The
 * requests that must be refused are the table of tests/lib/refused.c, which
 * tests/attack/bad_input.c also sends over a socket: every row the router can take alone is
 * checked here three ways: its status and message, its JSON error body {"message","code"}, and
 * that the injection state (which names are enabled, their one_shot and their parameters) is
 * exactly what it was before the request.
 */
#include "events.h"
#include "http.h"
#include "registry.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "internals_helpers.h"
#include "refused.h"

/* Table rows and request literals give method and path by position and the rest by name;
 * every field left out is meant to be zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* A point compiled into this file, so the catalogue has an entry whose line we know. */
static const int catalogued_line = __LINE__; static bool fire_catalogued(void) { return ERRINJ_ENTER("test_http.catalogued"); }

/* ---- building requests ------------------------------------------------------------------ */


/* A request as a table row: the query is the raw text after '?', split here on '&' and '='. */
struct request {
    const char *method;
    const char *path;
    const char *query;     /* raw "a=b&c"; NULL for none */
    const char *body;      /* NULL for none */
    struct hdr headers[4]; /* NULL-name terminated; no Host header unless given */
    const char *token;     /* the server's token */
    bool allow_remote;
    bool too_large;
};

#define QUERY_ROOM 80

struct split_query {
    struct errinj__query_arg args[QUERY_ROOM];
    char text[1024];
    size_t count;
};

static void split_query(const char *query, struct split_query *q)
{
    q->count = 0;
    if (query == NULL)
        return;
    assert_true(strlen(query) < sizeof(q->text));
    strcpy(q->text, query);
    char *save = NULL;
    for (char *part = strtok_r(q->text, "&", &save); part != NULL; part = strtok_r(NULL, "&", &save)) {
        assert_true(q->count < QUERY_ROOM);
        char *eq = strchr(part, '=');
        if (eq != NULL)
            *eq = '\0';
        q->args[q->count++] = (struct errinj__query_arg){part, eq != NULL ? eq + 1 : NULL};
    }
}

static void status_of_test(void *ctx, unsigned *subscribers, uint64_t *dropped)
{
    (void)ctx;
    *subscribers = 3;
    *dropped = 7;
}

static void handle(const struct request *r, struct errinj__http_reply *reply)
{
    struct split_query q;
    split_query(r->query, &q);
    struct errinj__http_config cfg = {.token = r->token, .allow_remote = r->allow_remote};
    struct errinj__http_request req = {
        .method = r->method,
        .path = r->path,
        .query = q.args,
        .query_count = q.count,
        .header = lookup_header,
        .header_ctx = (void *)r->headers,
        .body = r->body != NULL ? r->body : "",
        .body_len = r->body != NULL ? strlen(r->body) : 0,
        .body_too_large = r->too_large,
    };
    errinj__http_handle(&cfg, &req, reply);
}


/* The state every test starts from: one plain injection with a parameter, one one-shot. */
#define KEPT_STATE "keep{k=v;} keep_once(one_shot){} "

static int reset_state(void **state)
{
    (void)state;
    errinj_disable_all();
    const char *params[] = {"k", "v", NULL};
    assert_int_equal(errinj_enable("keep", false, params), 0);
    assert_int_equal(errinj_enable("keep_once", true, NULL), 0);
    struct snapshot s;
    take_snapshot(&s);
    assert_string_equal(s.text, KEPT_STATE);
    return 0;
}

static int disable_everything(void **state)
{
    (void)state;
    errinj_disable_all();
    return 0;
}

/* ---- checking replies ------------------------------------------------------------------- */

static const char *body_text(const struct errinj__http_reply *reply)
{
    return reply->body != NULL ? reply->body : "(no body)";
}

static void expect_status(const struct errinj__http_reply *reply, int status, const char *what)
{
    if (reply->status != status)
        fail_msg("%s: status %d, expected %d (body %s)", what, reply->status, status, body_text(reply));
}

/* 200 with no body at all. */
static void expect_empty_200(const struct errinj__http_reply *reply, const char *what)
{
    expect_status(reply, 200, what);
    if (reply->body_len != 0)
        fail_msg("%s: body of %zu bytes \"%s\", expected none", what, reply->body_len, body_text(reply));
    assert_false(reply->stream);
}

/* Parses the body and compares it with `expected` as JSON values (key order aside). */
static void expect_json_body(const struct errinj__http_reply *reply, const char *expected, const char *what)
{
    json_error_t err;
    json_t *want = json_loads(expected, JSON_DECODE_ANY, &err);
    if (want == NULL)
        fail_msg("%s: the test's expected JSON %s does not parse: %s", what, expected, err.text);
    if (reply->body == NULL)
        fail_msg("%s: no body, expected %s", what, expected);
    if (reply->body_len != strlen(reply->body))
        fail_msg("%s: body_len %zu, but the body is %zu bytes", what, reply->body_len, strlen(reply->body));
    json_t *got = json_loadb(reply->body, reply->body_len, JSON_DECODE_ANY, &err);
    if (got == NULL)
        fail_msg("%s: body %s is not JSON: %s", what, reply->body, err.text);
    if (!json_equal(got, want))
        fail_msg("%s: body %s, expected %s", what, reply->body, expected);
    if (reply->content_type == NULL || strcmp(reply->content_type, "application/json") != 0)
        fail_msg("%s: content type %s, expected application/json", what,
                 reply->content_type != NULL ? reply->content_type : "(none)");
    json_decref(got);
    json_decref(want);
}

/* An error reply: the status, and a JSON body {"message": non-empty string, "code": status}. */
static void expect_error(const struct errinj__http_reply *reply, int status, const char *what)
{
    expect_status(reply, status, what);
    assert_false(reply->stream);
    json_error_t err;
    json_t *body = reply->body != NULL ? json_loadb(reply->body, reply->body_len, 0, &err) : NULL;
    if (body == NULL)
        fail_msg("%s: error body %s is not a JSON object", what, body_text(reply));
    json_t *message = json_object_get(body, "message");
    json_t *code = json_object_get(body, "code");
    if (!json_is_string(message) || json_string_length(message) == 0)
        fail_msg("%s: error body %s has no message string", what, reply->body);
    if (!json_is_integer(code) || json_integer_value(code) != status)
        fail_msg("%s: error body %s, expected \"code\": %d", what, reply->body, status);
    if (json_object_size(body) != 2)
        fail_msg("%s: error body %s has keys besides message and code", what, reply->body);
    json_decref(body);
}

/* Runs a request that must be refused with `status` and leave the injection state alone. */
static void expect_refused(const struct request *r, int status, const char *what)
{
    struct snapshot before, after;
    take_snapshot(&before);
    struct errinj__http_reply reply;
    handle(r, &reply);
    expect_error(&reply, status, what);
    errinj__http_reply_free(&reply);
    take_snapshot(&after);
    if (strcmp(before.text, after.text) != 0)
        fail_msg("%s: state changed from \"%s\" to \"%s\"", what, before.text, after.text);
}


static void expect_one_shot(const char *name, bool one_shot)
{
    errinj_state st;
    assert_int_equal(errinj_state_get(name, &st), 0);
    if (!st.enabled)
        fail_msg("%s is not enabled", name);
    if (st.one_shot != one_shot)
        fail_msg("%s: one_shot %d, expected %d", name, st.one_shot, one_shot);
    errinj_state_release(&st);
}

static size_t parameter_count(const char *name)
{
    errinj_state st;
    assert_int_equal(errinj_state_get(name, &st), 0);
    size_t n = 0;
    while (st.parameters != NULL && st.parameters[2 * n] != NULL)
        n++;
    errinj_state_release(&st);
    return n;
}

#define INJ "/v2/error_injection/injection"

/* ---- POST: enabling ------------------------------------------------------------------- */

static void post_with_empty_body_enables_without_parameters(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"POST", INJ "/fresh"}, &reply);
    expect_empty_200(&reply, "POST fresh");
    errinj__http_reply_free(&reply);
    assert_true(errinj_is_enabled("fresh"));
    expect_one_shot("fresh", false);
    assert_int_equal(parameter_count("fresh"), 0);
}

static void post_with_blank_or_null_body_means_no_parameters(void **state)
{
    (void)state;
    static const char *const bodies[] = {" ", " \t\r\n ", "null", "  null\n", ""};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        /* "keep" has k=v: a body without parameters replaces them with none. */
        assert_int_equal(errinj_enable("keep", false, (const char *[]){"k", "v", NULL}), 0);
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", INJ "/keep", .body = bodies[i]}, &reply);
        char what[64];
        snprintf(what, sizeof(what), "POST keep with body \"%s\"", bodies[i]);
        expect_empty_200(&reply, what);
        errinj__http_reply_free(&reply);
        assert_true(errinj_is_enabled("keep"));
        assert_int_equal(parameter_count("keep"), 0);
    }
}

static void post_one_shot_is_case_insensitive(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        bool one_shot;
    } cases[] = {
        {"one_shot=true", true}, {"one_shot=True", true}, {"one_shot=TRUE", true},
        {"one_shot=false", false}, {"one_shot=False", false}, {"one_shot=FALSE", false},
        {NULL, false}, {"other=1&one_shot=tRuE", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        errinj_disable("shot");
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", INJ "/shot", cases[i].query}, &reply);
        expect_empty_200(&reply, cases[i].query != NULL ? cases[i].query : "no query");
        errinj__http_reply_free(&reply);
        expect_one_shot("shot", cases[i].one_shot);
    }
}

static void post_stringifies_non_string_parameter_values(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"POST", INJ "/params",
                             .body = "{\"s\":\"text\",\"n\":5,\"b\":true,\"o\":{\"x\":[1]},\"z\":null,\"f\":false,"
                                     "\"a\":[1,\"two\"],\"r\":1.5,\"u\":\"caf\\u00e9\"}"},
           &reply);
    expect_empty_200(&reply, "POST params");
    errinj__http_reply_free(&reply);
    expect_parameter("params", "s", "text");
    expect_parameter("params", "n", "5");
    expect_parameter("params", "b", "true");
    expect_parameter("params", "o", "{\"x\":[1]}");
    expect_parameter("params", "z", "null");
    expect_parameter("params", "f", "false");
    expect_parameter("params", "a", "[1,\"two\"]");
    expect_parameter("params", "r", "1.5");
    expect_parameter("params", "u", "caf\xc3\xa9");
    assert_int_equal(parameter_count("params"), 9);
}

static void post_on_an_enabled_name_replaces_parameters_and_one_shot_and_keeps_enters(void **state)
{
    (void)state;
    assert_true(errinj_inject_enter("keep"));
    assert_true(errinj_inject_enter("keep"));
    struct errinj__http_reply reply;
    handle(&(struct request){"POST", INJ "/keep", "one_shot=true", "{\"other\":\"x\"}"}, &reply);
    expect_empty_200(&reply, "re-POST keep");
    errinj__http_reply_free(&reply);
    expect_one_shot("keep", true);
    expect_parameter("keep", "other", "x");
    assert_int_equal(errinj_parameter("keep", "k", NULL, 0), ERRINJ_ENOENT);
    assert_int_equal(errinj_enters("keep"), 2);
}

static void post_decodes_percent_escapes_in_the_name(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *name;
    } cases[] = {
        {INJ "/a%2Fb", "a/b"},
        {INJ "/a%2fb", "a/b"},
        {INJ "/with%20space", "with space"},
        {INJ "/caf%C3%A9", "caf\xc3\xa9"},
        {INJ "/\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"}, /* raw UTF-8 in the path */
        {INJ "/%F0%9F%92%A5", "\xf0\x9f\x92\xa5"},
        {INJ "/plus+sign", "plus+sign"},
        {INJ "/pct%25", "pct%"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", cases[i].path}, &reply);
        expect_empty_200(&reply, cases[i].path);
        errinj__http_reply_free(&reply);
        if (!errinj_is_enabled(cases[i].name))
            fail_msg("POST %s did not enable \"%s\"", cases[i].path, cases[i].name);
    }
    /* The decoded name is one segment: the action after it still routes. */
    assert_true(errinj_inject_enter("a/b"));
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ "/a%2Fb/enters"}, &reply);
    expect_json_body(&reply, "1", "GET a%2Fb/enters");
    errinj__http_reply_free(&reply);
}

static void post_accepts_a_name_of_255_bytes(void **state)
{
    (void)state;
    char path[sizeof(INJ) + 300];
    char name[256];
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(path, sizeof(path), INJ "/%s", name);
    struct errinj__http_reply reply;
    handle(&(struct request){"POST", path}, &reply);
    expect_empty_200(&reply, "POST 255-byte name");
    errinj__http_reply_free(&reply);
    assert_true(errinj_is_enabled(name));
}

static void correct_token_passes(void **state)
{
    (void)state;
    static const char *const auths[] = {"Bearer s3cret", "bearer s3cret"};
    for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
        errinj_disable("tok");
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", INJ "/tok", .headers = {{"Authorization", auths[i]}}, .token = "s3cret"},
               &reply);
        expect_empty_200(&reply, auths[i]);
        errinj__http_reply_free(&reply);
        assert_true(errinj_is_enabled("tok"));
    }
}

static void loopback_hosts_and_same_origin_pass(void **state)
{
    (void)state;
    static const struct hdr cases[][3] = {
        {{"Host", "localhost:1"}},
        {{"Host", "LOCALHOST:10000"}},
        {{"Host", "localhost"}},
        {{"Host", "127.0.0.1:1"}},
        {{"Host", "127.0.0.1"}},
        {{"Host", "127.5.5.5"}},
        {{"Host", "[::1]:1"}},
        {{"Host", "[::1]"}},
        {{"Host", "127.0.0.1:1234"}, {"Origin", "http://127.0.0.1:1234"}},
        {{"Host", "localhost:8080"}, {"Origin", "http://localhost:8080"}},
        {{NULL, NULL}}, /* no Host at all (HTTP/1.0) */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct request r = {"GET", "/v2/error_injection/status"};
        memcpy(r.headers, cases[i], sizeof(cases[i]));
        struct errinj__http_reply reply;
        handle(&r, &reply);
        char what[128];
        snprintf(what, sizeof(what), "Host %s, Origin %s", cases[i][0].value ? cases[i][0].value : "(none)",
                 cases[i][1].value ? cases[i][1].value : "(none)");
        expect_status(&reply, 200, what);
        errinj__http_reply_free(&reply);
    }
}

static void allow_remote_lets_a_remote_host_through(void **state)
{
    (void)state;
    static const char *const hosts[] = {"evil.example:10000", "10.0.0.1", "10.0.0.1:10000", "[2001:db8::1]:80"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        errinj_disable("remote");
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", INJ "/remote", .headers = {{"Host", hosts[i]}}, .allow_remote = true},
               &reply);
        expect_empty_200(&reply, hosts[i]);
        errinj__http_reply_free(&reply);
        assert_true(errinj_is_enabled("remote"));
    }
    /* Same origin on a remote host is the server's own origin. */
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", "/v2/error_injection/status",
                             .headers = {{"Host", "10.0.0.1:10000"}, {"Origin", "http://10.0.0.1:10000"}},
                             .allow_remote = true},
           &reply);
    expect_status(&reply, 200, "same remote origin");
    errinj__http_reply_free(&reply);
}

/* ---- GET, DELETE, message, enters, waiters ------------------------------------------------ */

static void get_injection_shows_the_enabled_shape(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ "/keep"}, &reply);
    expect_json_body(&reply,
                     "[{\"enabled\":true,\"one_shot\":false,\"parameters\":[{\"key\":\"k\",\"value\":\"v\"}],"
                     "\"term\":\"on\",\"seed\":42}]",
                     "GET keep");
    errinj__http_reply_free(&reply);

    handle(&(struct request){"GET", INJ "/keep_once"}, &reply);
    expect_json_body(&reply, "[{\"enabled\":true,\"one_shot\":true,\"parameters\":[],\"term\":\"1*on\",\"seed\":42}]",
                     "GET keep_once");
    errinj__http_reply_free(&reply);
}

static void get_injection_lists_parameters_in_order(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("multi", false, (const char *[]){"b", "2", "a", "1", NULL}), 0);
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ "/multi"}, &reply);
    expect_json_body(&reply,
                     "[{\"enabled\":true,\"one_shot\":false,\"parameters\":"
                     "[{\"key\":\"b\",\"value\":\"2\"},{\"key\":\"a\",\"value\":\"1\"}],"
                     "\"term\":\"on\",\"seed\":42}]",
                     "GET multi");
    errinj__http_reply_free(&reply);
}

static void get_injection_of_a_disabled_or_unknown_name_says_not_enabled(void **state)
{
    (void)state;
    static const char *const paths[] = {INJ "/never_heard_of", INJ "/keep"};
    assert_int_equal(errinj_disable("keep"), 0);
    for (size_t i = 0; i < 2; i++) {
        struct errinj__http_reply reply;
        handle(&(struct request){"GET", paths[i]}, &reply);
        expect_json_body(&reply, "[{\"enabled\":false}]", paths[i]);
        errinj__http_reply_free(&reply);
    }
}

static void delete_disables_and_accepts_unknown_names(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"DELETE", INJ "/keep"}, &reply);
    expect_empty_200(&reply, "DELETE keep");
    errinj__http_reply_free(&reply);
    assert_false(errinj_is_enabled("keep"));
    assert_true(errinj_is_enabled("keep_once"));

    handle(&(struct request){"DELETE", INJ "/never_heard_of"}, &reply);
    expect_empty_200(&reply, "DELETE never_heard_of");
    errinj__http_reply_free(&reply);
    struct snapshot s;
    take_snapshot(&s);
    assert_string_equal(s.text, "keep_once(one_shot){} ");
}

static void enters_and_waiters_are_bare_integers(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ "/keep/enters"}, &reply);
    expect_json_body(&reply, "0", "enters before");
    assert_string_equal(reply.body, "0");
    errinj__http_reply_free(&reply);

    assert_true(errinj_inject_enter("keep"));
    assert_true(errinj_inject_enter("keep"));
    assert_true(errinj_inject_enter("keep"));
    handle(&(struct request){"GET", INJ "/keep/enters"}, &reply);
    expect_json_body(&reply, "3", "enters after three");
    assert_string_equal(reply.body, "3");
    errinj__http_reply_free(&reply);

    handle(&(struct request){"GET", INJ "/keep/waiters"}, &reply);
    expect_json_body(&reply, "0", "waiters");
    assert_string_equal(reply.body, "0");
    errinj__http_reply_free(&reply);

    handle(&(struct request){"GET", INJ "/never_heard_of/enters"}, &reply);
    expect_json_body(&reply, "0", "enters of an unknown name");
    errinj__http_reply_free(&reply);
}

static void a_fired_one_shot_still_reads_one_enter(void **state)
{
    (void)state;
    assert_true(errinj_inject_enter("keep_once"));
    assert_false(errinj_is_enabled("keep_once"));
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ "/keep_once/enters"}, &reply);
    expect_json_body(&reply, "1", "enters of a fired one-shot");
    errinj__http_reply_free(&reply);
}

static void message_replies_empty_200_even_for_unknown_names(void **state)
{
    (void)state;
    static const char *const paths[] = {INJ "/keep/message", INJ "/never_heard_of/message"};
    for (size_t i = 0; i < 2; i++) {
        struct errinj__http_reply reply;
        handle(&(struct request){"POST", paths[i]}, &reply);
        expect_empty_200(&reply, paths[i]);
        errinj__http_reply_free(&reply);
    }
    struct snapshot s;
    take_snapshot(&s);
    assert_string_equal(s.text, KEPT_STATE);
}

static void a_message_counts_for_a_handler_that_waits_later(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"POST", INJ "/keep/message"}, &reply);
    expect_empty_200(&reply, "message keep");
    errinj__http_reply_free(&reply);
    /* Sent before anyone waited: the next waiter takes it instead of timing out. */
    assert_int_equal(errinj_inject_wait_for_message("keep", 0), 0);
}

static void get_list_names_the_enabled_injections_sorted(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("a_first", false, NULL), 0);
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", INJ}, &reply);
    expect_json_body(&reply, "[\"a_first\",\"keep\",\"keep_once\"]", "GET list");
    errinj__http_reply_free(&reply);

    errinj_disable_all();
    handle(&(struct request){"GET", INJ}, &reply);
    expect_json_body(&reply, "[]", "GET empty list");
    errinj__http_reply_free(&reply);
}

static void delete_all_disables_every_injection(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle(&(struct request){"DELETE", INJ}, &reply);
    expect_empty_200(&reply, "DELETE all");
    errinj__http_reply_free(&reply);
    assert_false(errinj_is_enabled("keep"));
    assert_false(errinj_is_enabled("keep_once"));
    struct snapshot s;
    take_snapshot(&s);
    assert_string_equal(s.text, "");
}

/* ---- points and status ------------------------------------------------------------------ */

static json_t *find_point(json_t *list, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p) {
        if (json_is_string(json_object_get(p, "name")) && strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
            return p;
    }
    return NULL;
}

/* Checks the catalogue entry of test_http.catalogued against what the test expects. */
static void expect_catalogued_point(bool enabled, long long enters)
{
    struct errinj__http_reply reply;
    handle(&(struct request){"GET", "/v2/error_injection/points"}, &reply);
    expect_status(&reply, 200, "GET points");
    assert_string_equal(reply.content_type, "application/json");
    json_t *list = json_loadb(reply.body, reply.body_len, 0, NULL);
    if (!json_is_array(list))
        fail_msg("points body %s is not an array", body_text(&reply));
    json_t *p = find_point(list, "test_http.catalogued");
    if (p == NULL)
        fail_msg("test_http.catalogued missing from %s", reply.body);
    if (json_object_size(p) != 8)
        fail_msg("point %s has %zu keys, expected name/type/file/line/enabled/enters/evaluations/waiters",
                 reply.body, json_object_size(p));
    assert_string_equal(json_string_value(json_object_get(p, "type")), "enter");
    const char *file = json_string_value(json_object_get(p, "file"));
    assert_non_null(file);
    if (strstr(file, "test_http.c") == NULL)
        fail_msg("point file %s, expected it to name test_http.c", file);
    assert_true(json_is_integer(json_object_get(p, "line")));
    assert_int_equal(json_integer_value(json_object_get(p, "line")), catalogued_line);
    assert_true(json_is_boolean(json_object_get(p, "enabled")));
    assert_int_equal(json_is_true(json_object_get(p, "enabled")), enabled);
    assert_true(json_is_integer(json_object_get(p, "enters")));
    assert_int_equal(json_integer_value(json_object_get(p, "enters")), enters);
    /* Every evaluation of this plain enter point fires, so its evaluations are its enters. */
    assert_true(json_is_integer(json_object_get(p, "evaluations")));
    assert_int_equal(json_integer_value(json_object_get(p, "evaluations")), enters);
    assert_true(json_is_integer(json_object_get(p, "waiters")));
    assert_int_equal(json_integer_value(json_object_get(p, "waiters")), 0);
    json_decref(list);
    errinj__http_reply_free(&reply);
}

static void points_lists_every_compiled_point_with_its_state(void **state)
{
    (void)state;
    /* Listed before it is ever enabled or fired. */
    assert_false(fire_catalogued());
    expect_catalogued_point(false, 0);
    /* Enabled and fired twice through its own call site. */
    assert_int_equal(errinj_enable("test_http.catalogued", false, NULL), 0);
    assert_true(fire_catalogued());
    assert_true(fire_catalogued());
    expect_catalogued_point(true, 2);
}

static void status_reports_version_seq_subscribers_dropped_shards(void **state)
{
    (void)state;
    errinj_shard_set(4);
    assert_true(errinj_inject_enter("keep")); /* publishes an event: seq moves */
    errinj_shard_set(0);
    struct errinj__http_config cfg = {.status = status_of_test};
    struct errinj__http_request req = {.method = "GET", .path = "/v2/error_injection/status", .body = ""};
    struct errinj__http_reply reply;
    errinj__http_handle(&cfg, &req, &reply);
    expect_status(&reply, 200, "GET status");
    json_t *body = json_loadb(reply.body, reply.body_len, 0, NULL);
    if (!json_is_object(body))
        fail_msg("status body %s is not an object", body_text(&reply));
    assert_int_equal(json_object_size(body), 7);
    assert_string_equal(json_string_value(json_object_get(body, "version")), ERRINJ_VERSION);
    /* The process seed: what enables without a seed draw with. */
    assert_true(json_is_integer(json_object_get(body, "seed")));
    assert_int_equal(json_integer_value(json_object_get(body, "seed")), errinj__process_seed());
    /* The process's instance id: clients use it to tell a restarted server from a reconnect. */
    assert_string_equal(json_string_value(json_object_get(body, "instance")), errinj__instance_id());
    assert_true(json_is_integer(json_object_get(body, "seq")));
    assert_int_equal(json_integer_value(json_object_get(body, "seq")), errinj__seq_last());
    assert_true(errinj__seq_last() >= 1);
    assert_int_equal(json_integer_value(json_object_get(body, "subscribers")), 3);
    assert_int_equal(json_integer_value(json_object_get(body, "dropped")), 7);
    assert_true(json_is_integer(json_object_get(body, "shards")));
    assert_true(json_integer_value(json_object_get(body, "shards")) >= 5);
    json_decref(body);
    errinj__http_reply_free(&reply);

    /* Without a status callback (no server), subscribers and dropped read 0. */
    handle(&(struct request){"GET", "/v2/error_injection/status"}, &reply);
    body = json_loadb(reply.body, reply.body_len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "subscribers")), 0);
    assert_int_equal(json_integer_value(json_object_get(body, "dropped")), 0);
    json_decref(body);
    errinj__http_reply_free(&reply);
}

/* ---- the events endpoint's filter --------------------------------------------------------- */

struct filter_case {
    const char *query;
    const char *last_event_id;
    const char *injections[4]; /* NULL-terminated expected names; {NULL} means any */
    unsigned types;
    unsigned phases;
    long long shard;
    long long since;
};

#define BIT(n) (1u << (n))
#define HIT BIT(ERRINJ__PHASE_HIT)

static void events_parses_the_filter_and_asks_for_a_stream(void **state)
{
    (void)state;
    static const struct filter_case cases[] = {
        {NULL, NULL, {NULL}, 0, HIT, -1, -1},
        {"injection=a", NULL, {"a", NULL}, 0, HIT, -1, -1},
        {"injection=a&injection=b%2Fc&injection=caf%C3%A9", NULL, {"a", "b/c", "caf\xc3\xa9", NULL}, 0, HIT, -1, -1},
        {"type=sleep", NULL, {NULL}, BIT(ERRINJ_TYPE_SLEEP), HIT, -1, -1},
        {"type=handler&type=enter", NULL, {NULL}, BIT(ERRINJ_TYPE_HANDLER) | BIT(ERRINJ_TYPE_ENTER), HIT, -1, -1},
        {"type=exception&type=lambda", NULL, {NULL}, BIT(ERRINJ_TYPE_EXCEPTION) | BIT(ERRINJ_TYPE_LAMBDA), HIT, -1, -1},
        {"shard=3", NULL, {NULL}, 0, HIT, 3, -1},
        {"shard=0", NULL, {NULL}, 0, HIT, 0, -1},
        {"phase=waiting", NULL, {NULL}, 0, BIT(ERRINJ__PHASE_WAITING), -1, -1},
        {"phase=released&phase=timeout", NULL, {NULL}, 0,
         BIT(ERRINJ__PHASE_RELEASED) | BIT(ERRINJ__PHASE_TIMEOUT), -1, -1},
        {"phase=hit&phase=waiting", NULL, {NULL}, 0, HIT | BIT(ERRINJ__PHASE_WAITING), -1, -1},
        {"phase=all", NULL, {NULL}, 0, 0xf, -1, -1},
        {"since=0", NULL, {NULL}, 0, HIT, -1, 0},
        {"since=5", NULL, {NULL}, 0, HIT, -1, 5},
        {NULL, "9", {NULL}, 0, HIT, -1, 9},
        {"since=5", "9", {NULL}, 0, HIT, -1, 9},  /* Last-Event-ID overrides since */
        {"since=12", "3", {NULL}, 0, HIT, -1, 3}, /* ... also downwards */
        {"since=5", "", {NULL}, 0, HIT, -1, 5},   /* an empty Last-Event-ID is no header */
        {"unknown=1&injection=x&type=enter&shard=2&phase=all&since=7", NULL, {"x", NULL}, BIT(ERRINJ_TYPE_ENTER), 0xf,
         2, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct filter_case *c = &cases[i];
        struct request r = {"GET", "/v2/error_injection/events", c->query};
        if (c->last_event_id != NULL)
            r.headers[0] = (struct hdr){"Last-Event-ID", c->last_event_id};
        char what[160];
        snprintf(what, sizeof(what), "events?%s Last-Event-ID %s", c->query ? c->query : "",
                 c->last_event_id ? c->last_event_id : "(none)");
        struct errinj__http_reply reply;
        handle(&r, &reply);
        expect_status(&reply, 200, what);
        if (!reply.stream)
            fail_msg("%s: reply.stream is false", what);
        assert_string_equal(reply.content_type, "text/event-stream");
        const struct errinj__filter *f = &reply.filter;
        if (c->injections[0] == NULL) {
            if (f->injections != NULL)
                fail_msg("%s: injections filter %s..., expected any", what, f->injections[0]);
        } else {
            if (f->injections == NULL)
                fail_msg("%s: no injections filter, expected %s...", what, c->injections[0]);
            size_t k = 0;
            for (; c->injections[k] != NULL; k++) {
                if (f->injections[k] == NULL)
                    fail_msg("%s: injections filter ends at %zu, expected %s", what, k, c->injections[k]);
                assert_string_equal(f->injections[k], c->injections[k]);
            }
            if (f->injections[k] != NULL)
                fail_msg("%s: extra injection %s in the filter", what, f->injections[k]);
        }
        if (f->types != c->types)
            fail_msg("%s: types 0x%x, expected 0x%x", what, f->types, c->types);
        if (f->phases != c->phases)
            fail_msg("%s: phases 0x%x, expected 0x%x", what, f->phases, c->phases);
        if (f->shard != c->shard)
            fail_msg("%s: shard %lld, expected %lld", what, f->shard, c->shard);
        if (f->since != c->since)
            fail_msg("%s: since %lld, expected %lld", what, f->since, c->since);
        errinj__http_reply_free(&reply);
    }
}

/* ---- refused requests: the table both drivers run (tests/lib/refused.c) --------------------- */

/* Splits header lines "Name: value\r\n..." (in place) into hs, NULL-name terminated. The value
 * loses the white space around it, as libmicrohttpd gives it to the router. */
static void split_headers(char *text, struct hdr *hs, size_t room)
{
    size_t n = 0;
    for (char *line = text; *line != '\0';) {
        char *end = strstr(line, "\r\n");
        assert_non_null(end);
        *end = '\0';
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        for (char *tail = value + strlen(value); tail > value && (tail[-1] == ' ' || tail[-1] == '\t');)
            *--tail = '\0';
        assert_true(n + 1 < room);
        hs[n++] = (struct hdr){line, value};
        line = end + 2;
    }
    hs[n] = (struct hdr){NULL, NULL};
}

/* Runs one row through the router, from the state refused.h describes, and checks its status,
 * its error body {"message","code"} and message, the header it names, and that the state is
 * what it was (less the one name a control row enables). */
static void run_refused(const struct refused *row)
{
    errinj_disable_all();
    const char *pre[] = {"k", "v", "n", "7", NULL};
    assert_int_equal(errinj_enable(REFUSED_PRE, false, pre), 0);

    struct net_buf target = {0}, headers = {0}, body = {0};
    refused_expand(row->target, strlen(row->target), REFUSED_PURE_PORT, &target);
    if (!(row->flags & REFUSED_NO_HOST))
        refused_expand("{HOST}", 6, REFUSED_PURE_PORT, &headers);
    if (!(row->flags & REFUSED_NO_AUTH))
        refused_expand("{AUTH}", 6, REFUSED_PURE_PORT, &headers);
    if (row->headers != NULL)
        refused_expand(row->headers, strlen(row->headers), REFUSED_PURE_PORT, &headers);
    refused_body(row, &body);
    char *query = strchr(target.data, '?');
    if (query != NULL)
        *query++ = '\0';
    struct split_query q;
    split_query(query, &q);
    struct hdr hs[16];
    split_headers(headers.data, hs, 16);
    /* The server keeps none of a body over the limit and tells the router so. */
    bool too_large = row->gen == REFUSED_BODY_MIB_PLUS_1 || row->gen == REFUSED_BODY_MIB_PLUS_1_CHUNKED;
    struct errinj__http_config cfg = {.token = REFUSED_TOKEN, .allow_remote = (row->flags & REFUSED_ALLOW_REMOTE) != 0};
    struct errinj__http_request req = {
        .method = row->method,
        .path = target.data,
        .query = q.args,
        .query_count = q.count,
        .header = lookup_header,
        .header_ctx = hs,
        .body = too_large ? "" : body.data,
        .body_len = too_large ? 0 : body.len,
        .body_too_large = too_large,
    };

    struct snapshot before, after;
    take_snapshot(&before);
    struct errinj__http_reply reply;
    errinj__http_handle(&cfg, &req, &reply);
    if (row->status >= 400)
        expect_error(&reply, row->status, row->what);
    else
        expect_status(&reply, row->status, row->what);
    if (row->expect != NULL && (reply.body == NULL || strstr(reply.body, row->expect) == NULL))
        fail_msg("%s: body %s does not contain \"%s\"", row->what, body_text(&reply), row->expect);
    if (row->header != NULL) {
        char seen[256];
        snprintf(seen, sizeof(seen), "%s%s%s%s", reply.allow != NULL ? "Allow: " : "",
                 reply.allow != NULL ? reply.allow : "", reply.allow != NULL ? "\r\n" : "",
                 reply.auth_challenge ? "WWW-Authenticate: Bearer\r\n" : "");
        if (strstr(seen, row->header) == NULL)
            fail_msg("%s: no \"%s\" header in \"%s\"", row->what, row->header, seen);
    }
    errinj__http_reply_free(&reply);
    if (row->enables != NULL) {
        if (!errinj_is_enabled(row->enables))
            fail_msg("%s: %s is not enabled", row->what, row->enables);
        errinj_disable(row->enables);
    }
    take_snapshot(&after);
    if (strcmp(before.text, after.text) != 0)
        fail_msg("%s: state changed from \"%s\" to \"%s\"", row->what, before.text, after.text);
    free(target.data);
    free(headers.data);
    free(body.data);
}

/* Raw rows are bytes on a socket, for bad_input.c alone: the router never sees a request line. */
static void refused_requests_get_their_status_and_change_nothing(void **state)
{
    (void)state;
    size_t ran = 0;
    for (size_t i = 0; i < refused_count; i++) {
        if (refused_requests[i].raw != NULL)
            continue;
        run_refused(&refused_requests[i]);
        ran++;
    }
    print_message("%zu of %zu rows of the refused-request table run through the router\n", ran, refused_count);
}

static void too_many_query_parameters_are_refused(void **state)
{
    (void)state;
    static struct errinj__query_arg args[ERRINJ__QUERY_MAX + 1];
    for (size_t i = 0; i < ERRINJ__QUERY_MAX + 1; i++)
        args[i] = (struct errinj__query_arg){"one_shot", "true"};
    static const char *const paths[] = {INJ "/victim", INJ "/keep", "/v2/error_injection/events"};
    for (size_t p = 0; p < 3; p++) {
        struct snapshot before, after;
        take_snapshot(&before);
        struct errinj__http_config cfg = {0};
        struct errinj__http_request req = {.method = p < 2 ? "POST" : "GET", .path = paths[p], .query = args,
                                           .query_count = ERRINJ__QUERY_MAX + 1, .body = ""};
        struct errinj__http_reply reply;
        errinj__http_handle(&cfg, &req, &reply);
        expect_error(&reply, 400, paths[p]);
        errinj__http_reply_free(&reply);
        take_snapshot(&after);
        assert_string_equal(after.text, before.text);
    }
    /* Exactly the maximum is fine. */
    struct errinj__http_config cfg = {0};
    struct errinj__http_request req = {.method = "POST", .path = INJ "/victim", .query = args,
                                       .query_count = ERRINJ__QUERY_MAX, .body = ""};
    struct errinj__http_reply reply;
    errinj__http_handle(&cfg, &req, &reply);
    expect_empty_200(&reply, "64 query parameters");
    errinj__http_reply_free(&reply);
    expect_one_shot("victim", true);
}

/* errinj-events(7)'s 413 is for any body over 1 MiB; a request whose body was cut must not act. */
static void oversized_body_is_refused_on_every_route_before_any_change(void **state)
{
    (void)state;
    expect_refused(&(struct request){"DELETE", INJ, .too_large = true}, 413, "DELETE all with an oversized body");
    expect_refused(&(struct request){"GET", "/v2/error_injection/status", .too_large = true}, 413,
                   "status with an oversized body");
}

int main(void)
{
    setenv("ERRINJ_SEED", "42", 1); /* the process seed, before anything reads it */
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, reset_state, disable_everything)
        T(post_with_empty_body_enables_without_parameters),
        T(post_with_blank_or_null_body_means_no_parameters),
        T(post_one_shot_is_case_insensitive),
        T(post_stringifies_non_string_parameter_values),
        T(post_on_an_enabled_name_replaces_parameters_and_one_shot_and_keeps_enters),
        T(post_decodes_percent_escapes_in_the_name),
        T(post_accepts_a_name_of_255_bytes),
        T(correct_token_passes),
        T(loopback_hosts_and_same_origin_pass),
        T(allow_remote_lets_a_remote_host_through),
        T(get_injection_shows_the_enabled_shape),
        T(get_injection_lists_parameters_in_order),
        T(get_injection_of_a_disabled_or_unknown_name_says_not_enabled),
        T(delete_disables_and_accepts_unknown_names),
        T(enters_and_waiters_are_bare_integers),
        T(a_fired_one_shot_still_reads_one_enter),
        T(message_replies_empty_200_even_for_unknown_names),
        T(a_message_counts_for_a_handler_that_waits_later),
        T(get_list_names_the_enabled_injections_sorted),
        T(delete_all_disables_every_injection),
        T(points_lists_every_compiled_point_with_its_state),
        T(status_reports_version_seq_subscribers_dropped_shards),
        T(events_parses_the_filter_and_asks_for_a_stream),
        T(refused_requests_get_their_status_and_change_nothing),
        T(too_many_query_parameters_are_refused),
        T(oversized_body_is_refused_on_every_route_before_any_change),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
