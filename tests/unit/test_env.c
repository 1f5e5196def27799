/*
 * test_env.c - env.c: errinj_init_from_env() reading ERRINJ_AT_STARTUP, ERRINJ_HTTP and
 * ERRINJ_TOKEN, as a server's main() would call it.
 *
 * All tests share one process, so the order matters: the tests that must not start a server
 * come first, and the one that starts the server from ERRINJ_HTTP runs last, because that
 * server can only be stopped by the atexit handler env.c registers (one server per process).
 * The token of that server is checked over a plain socket on a port the test chose.
 */
#define _GNU_SOURCE
#include "registry.h"

#include "net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internals_helpers.h"

#define DEADLINE_S 10.0


static void expect_state(const char *expected, const char *what)
{
    struct snapshot s;
    take_snapshot(&s);
    if (strcmp(s.text, expected) != 0)
        fail_msg("%s: state \"%s\", expected \"%s\"", what, s.text, expected);
}

static int clean_slate(void **state)
{
    (void)state;
    errinj_disable_all();
    unsetenv("ERRINJ_AT_STARTUP");
    unsetenv("ERRINJ_HTTP");
    unsetenv("ERRINJ_TOKEN");
    return 0;
}

/* ---- requests, over tests/lib's client ---------------------------------------------------- */

/* Sends one request (Connection: close); returns the status and the body (malloc'd) in *body. */
static int http(unsigned port, const char *method, const char *path, const char *extra_headers, char **body)
{
    struct net_response r;
    int status = net_request(port, method, path, extra_headers, NULL, 0, DEADLINE_S, &r);
    if (status <= 0)
        fail_msg("%s %s: no HTTP response within %.0f s", method, path, DEADLINE_S);
    *body = strdup(r.body.data);
    net_response_free(&r);
    return status;
}

/* ---- ERRINJ_AT_STARTUP ------------------------------------------------------------------ */


static void startup_list_enables_each_name_with_one_shot_and_parameters(void **state)
{
    (void)state;
    setenv("ERRINJ_AT_STARTUP",
           "[{\"name\":\"env.a\",\"one_shot\":true,\"parameters\":{\"k\":\"v\",\"n\":5,\"b\":false,"
           "\"o\":{\"x\":[1]},\"z\":null}},"
           " {\"name\":\"env.b\"},"
           " {\"name\":\"env.c\",\"one_shot\":false,\"parameters\":null},"
           " {\"name\":\"env/\\u00e9\",\"parameters\":{}}]",
           1);
    int rc = errinj_init_from_env();
    if (rc != 0)
        fail_msg("errinj_init_from_env: %d %s, expected 0", rc, errinj_strerror(rc));
    expect_state("env.a(one_shot){k=v;n=5;b=false;o={\"x\":[1]};z=null;} env.b{} env.c{} env/\xc3\xa9{} ",
                 "after a valid list");
    expect_parameter("env.a", "n", "5");
    expect_parameter("env.a", "o", "{\"x\":[1]}");
}

static void a_one_shot_from_the_startup_list_fires_once(void **state)
{
    (void)state;
    setenv("ERRINJ_AT_STARTUP", "[{\"name\":\"env.once\",\"one_shot\":true},{\"name\":\"env.always\"}]", 1);
    assert_int_equal(errinj_init_from_env(), 0);
    assert_true(errinj_inject_enter("env.once"));
    assert_false(errinj_inject_enter("env.once"));
    assert_int_equal(errinj_enters("env.once"), 1);
    assert_true(errinj_inject_enter("env.always"));
    assert_true(errinj_inject_enter("env.always"));
}

static void an_empty_or_missing_startup_list_enables_nothing(void **state)
{
    (void)state;
    assert_int_equal(errinj_init_from_env(), 0); /* nothing set at all */
    expect_state("", "no variables");
    static const char *const texts[] = {"", "[]", " [ ] "};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        setenv("ERRINJ_AT_STARTUP", texts[i], 1);
        int rc = errinj_init_from_env();
        if (rc != 0)
            fail_msg("ERRINJ_AT_STARTUP='%s': %d %s, expected 0", texts[i], rc, errinj_strerror(rc));
        expect_state("", texts[i]);
    }
}

#define N16 "nnnnnnnnnnnnnnnn"
#define N256 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16 N16

/* Each of these must fail as a whole: "env.pre" keeps its parameters and nothing else is enabled. */
static const struct {
    const char *what;
    const char *text;
} bad_lists[] = {
    {"invalid JSON", "not json"},
    {"unterminated array", "[{\"name\":\"env.x\"}"},
    {"trailing garbage", "[{\"name\":\"env.x\"}] x"},
    {"an object, not an array", "{\"name\":\"env.x\"}"},
    {"a string, not an array", "\"env.x\""},
    {"a number, not an array", "5"},
    {"an item that is not an object", "[\"env.x\"]"},
    {"a null item", "[null]"},
    {"an item without a name", "[{\"one_shot\":true}]"},
    {"a name that is not a string", "[{\"name\":5}]"},
    {"a null name", "[{\"name\":null}]"},
    {"an empty name", "[{\"name\":\"\"}]"},
    {"a name with a control character", "[{\"name\":\"env\\u0001x\"}]"},
    {"a name with a C1 control", "[{\"name\":\"env\\u0085x\"}]"},
    {"a name with a NUL", "[{\"name\":\"env\\u0000x\"}]"},
    {"a name of 256 bytes", "[{\"name\":\"" N256 "\"}]"},
    {"invalid UTF-8 in a name", "[{\"name\":\"env\xff\"}]"},
    {"an unknown key", "[{\"name\":\"env.x\",\"extra\":1}]"},
    {"a misspelt key", "[{\"name\":\"env.x\",\"oneshot\":true}]"},
    {"one_shot that is not a boolean", "[{\"name\":\"env.x\",\"one_shot\":\"true\"}]"},
    {"parameters that are an array", "[{\"name\":\"env.x\",\"parameters\":[1]}]"},
    {"parameters that are a string", "[{\"name\":\"env.x\",\"parameters\":\"k=v\"}]"},
    {"parameters that are a number", "[{\"name\":\"env.x\",\"parameters\":5}]"},
    {"a valid item, then one with a bad name", "[{\"name\":\"env.first\"},{\"name\":\"\"}]"},
    {"a valid item, then one without a name", "[{\"name\":\"env.first\"},{\"nme\":\"env.x\"}]"},
    {"a valid item, then bad parameters", "[{\"name\":\"env.first\"},{\"name\":\"env.x\",\"parameters\":[]}]"},
    {"a change of an enabled name, then an unknown key",
     "[{\"name\":\"env.pre\",\"parameters\":{\"p\":\"changed\"}},{\"name\":\"env.x\",\"extra\":true}]"},
    {"two valid items, then a bad one", "[{\"name\":\"env.first\"},{\"name\":\"env.second\",\"one_shot\":true},7]"},
};

static void a_bad_startup_list_is_einval_and_enables_nothing(void **state)
{
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        clean_slate(state);
        assert_int_equal(errinj_enable("env.pre", false, (const char *[]){"p", "1", NULL}), 0);
        setenv("ERRINJ_AT_STARTUP", bad_lists[i].text, 1);
        int rc = errinj_init_from_env();
        if (rc != ERRINJ_EINVAL)
            fail_msg("%s: %d %s, expected ERRINJ_EINVAL", bad_lists[i].what, rc, errinj_strerror(rc));
        expect_state("env.pre{p=1;} ", bad_lists[i].what);
    }
}

/* ---- ERRINJ_HTTP and ERRINJ_TOKEN -------------------------------------------------------- */

/* No server may be running: one starts and stops on port 0. */
static void expect_no_server_running(const char *what)
{
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    errinj_server *srv = NULL;
    int rc = errinj_server_start(&opts, &srv);
    if (rc != 0)
        fail_msg("%s: errinj_server_start: %d %s, expected 0 (is a server left running?)", what, rc,
                 errinj_strerror(rc));
    errinj_server_stop(srv);
}

static void a_bad_startup_list_starts_no_server(void **state)
{
    (void)state;
    unsigned port = unused_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    setenv("ERRINJ_HTTP", listen, 1);
    setenv("ERRINJ_AT_STARTUP", "[{\"name\":\"env.x\",\"extra\":1}]", 1);
    assert_int_equal(errinj_init_from_env(), ERRINJ_EINVAL);
    int fd = net_connect(port, DEADLINE_S, 0);
    if (fd >= 0)
        fail_msg("a server listens on %s after a failed ERRINJ_AT_STARTUP", listen);
    expect_no_server_running("after a bad ERRINJ_AT_STARTUP");
}

static void a_non_loopback_ERRINJ_HTTP_is_refused(void **state)
{
    (void)state;
    static const char *const addrs[] = {"10.1.2.3:0", "0.0.0.0:0"};
    for (size_t i = 0; i < 2; i++) {
        setenv("ERRINJ_HTTP", addrs[i], 1);
        int rc = errinj_init_from_env();
        if (rc != ERRINJ_EACCES)
            fail_msg("ERRINJ_HTTP=%s: %d %s, expected ERRINJ_EACCES", addrs[i], rc, errinj_strerror(rc));
        expect_no_server_running(addrs[i]);
    }
}

static void a_malformed_ERRINJ_HTTP_is_einval(void **state)
{
    (void)state;
    static const char *const addrs[] = {"nonsense", "127.0.0.1:99999", "[::1"};
    for (size_t i = 0; i < 3; i++) {
        setenv("ERRINJ_HTTP", addrs[i], 1);
        int rc = errinj_init_from_env();
        if (rc != ERRINJ_EINVAL)
            fail_msg("ERRINJ_HTTP=%s: %d %s, expected ERRINJ_EINVAL", addrs[i], rc, errinj_strerror(rc));
        expect_no_server_running(addrs[i]);
    }
}

/* Runs last: the server it starts lives until exit. */
static void ERRINJ_HTTP_starts_the_one_server_and_it_requires_ERRINJ_TOKEN(void **state)
{
    (void)state;
    unsigned port = unused_port();
    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    setenv("ERRINJ_HTTP", listen, 1);
    setenv("ERRINJ_TOKEN", "s3cret", 1);
    setenv("ERRINJ_AT_STARTUP", "[{\"name\":\"env.served\",\"parameters\":{\"k\":\"v\"}}]", 1);
    int rc = errinj_init_from_env();
    if (rc != 0)
        fail_msg("errinj_init_from_env with ERRINJ_HTTP=%s: %d %s", listen, rc, errinj_strerror(rc));

    char *body = NULL;
    int status = http(port, "GET", "/v2/error_injection/injection", NULL, &body);
    if (status != 401)
        fail_msg("without a token: %d %s, expected 401", status, body);
    free(body);
    status = http(port, "GET", "/v2/error_injection/injection", "Authorization: Bearer wrong\r\n", &body);
    if (status != 401)
        fail_msg("with a wrong token: %d %s, expected 401", status, body);
    free(body);
    status = http(port, "GET", "/v2/error_injection/injection", "Authorization: Bearer s3cret\r\n", &body);
    if (status != 200)
        fail_msg("with the token: %d %s, expected 200", status, body);
    assert_string_equal(body, "[\"env.served\"]");
    free(body);

    /* One server per process: neither the API nor a second call starts another. */
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    errinj_server *srv = (void *)1;
    rc = errinj_server_start(&opts, &srv);
    if (rc == 0)
        fail_msg("a second server started on port %u next to the ERRINJ_HTTP one", errinj_server_port(srv));
    assert_null(srv);
    unsetenv("ERRINJ_AT_STARTUP");
    assert_int_equal(errinj_init_from_env(), 0);
    status = http(port, "GET", "/v2/error_injection/status", "Authorization: Bearer s3cret\r\n", &body);
    assert_int_equal(status, 200);
    free(body);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, clean_slate, clean_slate)
        T(startup_list_enables_each_name_with_one_shot_and_parameters),
        T(a_one_shot_from_the_startup_list_fires_once),
        T(an_empty_or_missing_startup_list_enables_nothing),
        T(a_bad_startup_list_is_einval_and_enables_nothing),
        T(a_bad_startup_list_starts_no_server),
        T(a_non_loopback_ERRINJ_HTTP_is_refused),
        T(a_malformed_ERRINJ_HTTP_is_einval),
        /* Last: it leaves the process's one server running until exit. */
        cmocka_unit_test_setup(ERRINJ_HTTP_starts_the_one_server_and_it_requires_ERRINJ_TOKEN, clean_slate),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
