/*
 * test_web.c - the dashboard's route: GET/HEAD /v2/error_injection/ui and its files, through
 * errinj__http_handle() as a pure function, and the embedded bytes against the files of web/.
 *
 * The page needs no token (its API calls do), keeps the Origin and Host rules, answers with its
 * Content-Type, a Content-Security-Policy of 'self' only, an ETag and revalidation (304), and
 * changes no injection state whatever is asked of it.
 */
#include "errinj.h"
#include "http.h"
#include "web.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "internals_helpers.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"


static void handle(const char *method, const char *path, const struct hdr *headers, const char *token,
                   struct errinj__http_reply *reply)
{
    struct errinj__http_config cfg = {.token = token};
    struct errinj__http_request req = {
        .method = method, .path = path, .header = lookup_header, .header_ctx = (void *)headers, .body = ""};
    errinj__http_handle(&cfg, &req, reply);
}

static char *read_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", ERRINJ_WEB_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static const struct errinj__web_file *web_file(const char *path)
{
    for (const struct errinj__web_file *f = errinj__web_files; f->path != NULL; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    fail_msg("no embedded file %s", path);
    return NULL;
}

static const struct hdr loopback[] = {{"Host", "127.0.0.1:10000"}, {NULL, NULL}};

static void the_page_is_served_without_the_token_with_its_headers(void **state)
{
    (void)state;
    static const struct {
        const char *path, *file, *type;
    } files[] = {
        {"/v2/error_injection/ui", "index.html", "text/html; charset=utf-8"},
        {"/v2/error_injection/ui/", "index.html", "text/html; charset=utf-8"},
        {"/v2/error_injection/ui/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/v2/error_injection/ui/app.css", "app.css", "text/css; charset=utf-8"},
        {"/v2/error_injection/ui/favicon.svg", "favicon.svg", "image/svg+xml; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        for (int head = 0; head < 2; head++) {
            struct errinj__http_reply reply;
            handle(head ? "HEAD" : "GET", files[i].path, loopback, "s3cret", &reply);
            assert_int_equal(reply.status, 200);
            assert_string_equal(reply.content_type, files[i].type);
            assert_string_equal(reply.cache_control, "no-cache");
            assert_non_null(reply.etag);
            assert_true(reply.etag[0] == '"' && reply.etag[strlen(reply.etag) - 1] == '"');
            assert_non_null(reply.csp);
            assert_non_null(strstr(reply.csp, "default-src 'self'"));
            assert_non_null(strstr(reply.csp, "frame-ancestors 'none'"));
            assert_null(strstr(reply.csp, "unsafe"));
            assert_null(strstr(reply.csp, "http"));
            /* The bytes are the file's, as it is in web/ (libmicrohttpd drops the body of a HEAD). */
            size_t len;
            char *want = read_file(files[i].file, &len);
            assert_int_equal(reply.body_len, len);
            assert_memory_equal(reply.body, want, len);
            free(want);
            errinj__http_reply_free(&reply);
        }
    }
}

static void the_api_still_wants_the_token(void **state)
{
    (void)state;
    struct errinj__http_reply reply;
    handle("GET", "/v2/error_injection/points", loopback, "s3cret", &reply);
    assert_int_equal(reply.status, 401);
    errinj__http_reply_free(&reply);
    /* A path that only starts like the page's is not the page. */
    handle("GET", "/v2/error_injection/uix", loopback, "s3cret", &reply);
    assert_int_equal(reply.status, 401);
    errinj__http_reply_free(&reply);
}

static void a_matching_etag_revalidates_with_304(void **state)
{
    (void)state;
    const struct errinj__web_file *f = web_file("ui/app.js");
    struct hdr headers[] = {{"Host", "localhost:10000"}, {"If-None-Match", f->etag}, {NULL, NULL}};
    struct errinj__http_reply reply;
    handle("GET", "/v2/error_injection/ui/app.js", headers, NULL, &reply);
    assert_int_equal(reply.status, 304);
    assert_int_equal(reply.body_len, 0);
    assert_string_equal(reply.etag, f->etag);
    errinj__http_reply_free(&reply);
    /* Another file's tag does not match. */
    headers[1].value = web_file("ui")->etag;
    handle("GET", "/v2/error_injection/ui/app.js", headers, NULL, &reply);
    assert_int_equal(reply.status, 200);
    assert_int_equal(reply.body_len, f->len);
    errinj__http_reply_free(&reply);
}

static void every_etag_differs(void **state)
{
    (void)state;
    for (const struct errinj__web_file *a = errinj__web_files; a->path != NULL; a++)
        for (const struct errinj__web_file *b = a + 1; b->path != NULL; b++)
            assert_string_not_equal(a->etag, b->etag);
}

static void refusals_keep_the_origin_and_host_rules_and_change_nothing(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("web.keep", false, NULL), 0);
    static const struct {
        const char *method, *path;
        struct hdr headers[3];
        int status;
    } cases[] = {
        {"GET", "/v2/error_injection/ui", {{"Host", "127.0.0.1:10000"}, {"Origin", "http://evil.example"}}, 403},
        {"GET", "/v2/error_injection/ui", {{"Host", "evil.example:10000"}}, 403},
        {"GET", "/v2/error_injection/ui/app.js", {{"Host", "example.com"}}, 403},
        {"POST", "/v2/error_injection/ui", {{"Host", "127.0.0.1:10000"}}, 405},
        {"DELETE", "/v2/error_injection/ui/app.js", {{"Host", "127.0.0.1:10000"}}, 405},
        {"GET", "/v2/error_injection/ui/nothing.js", {{"Host", "127.0.0.1:10000"}}, 404},
        {"GET", "/v2/error_injection/ui/../injection", {{"Host", "127.0.0.1:10000"}}, 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct errinj__http_reply reply;
        handle(cases[i].method, cases[i].path, cases[i].headers, NULL, &reply);
        if (reply.status != cases[i].status)
            fail_msg("%s %s: %d, expected %d", cases[i].method, cases[i].path, reply.status, cases[i].status);
        assert_string_equal(reply.content_type, "application/json");
        assert_null(reply.csp);
        assert_non_null(reply.body);
        assert_non_null(strstr(reply.body, "\"message\""));
        if (cases[i].status == 405)
            assert_string_equal(reply.allow, "GET, HEAD");
        errinj__http_reply_free(&reply);
        assert_true(errinj_is_enabled("web.keep"));
    }
    errinj_disable_all();
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_page_is_served_without_the_token_with_its_headers),
        cmocka_unit_test(the_api_still_wants_the_token),
        cmocka_unit_test(a_matching_etag_revalidates_with_304),
        cmocka_unit_test(every_etag_differs),
        cmocka_unit_test(refusals_keep_the_origin_and_host_rules_and_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
