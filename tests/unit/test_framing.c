/*
 * test_framing.c - framing.c's request-line check on request lines laid out in memory as
 * libmicrohttpd leaves them: a clean line passes, a raw NUL in the URI is found, and a URI that
 * ends its buffer is never read past (under ASan a read of one byte beyond it fails this test;
 * an earlier check compared the five bytes after the URI with "HTTP/").
 */
#include "framing.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A buffer of exactly n bytes copied from bytes, so that a sanitizer sees any byte past it. */
static char *exact_copy(const char *bytes, size_t n)
{
    char *p = malloc(n);
    assert_non_null(p);
    memcpy(p, bytes, n);
    return p;
}

static void test_clean_request_line_has_no_nul(void **state)
{
    (void)state;
    /* "GET  /v2/x?a=1 HTTP/1.1": libmicrohttpd wrote NULs over the separating spaces. */
    static const char line[] = "GET\0 /v2/x?a=1\0HTTP/1.1";
    char *buf = exact_copy(line, sizeof(line));
    struct errinj__request_line l = {buf + 5, strlen(buf + 5)};
    assert_false(errinj__request_line_has_nul(&l, buf, buf + 15));
    free(buf);
}

static void test_raw_nul_in_the_uri_is_found(void **state)
{
    (void)state;
    /* "DELETE /a\0HTTP/1.1 HTTP/1.1": the URI reads as "/a", the version is the last word. */
    static const char line[] = "DELETE\0/a\0HTTP/1.1\0HTTP/1.1";
    char *buf = exact_copy(line, sizeof(line));
    struct errinj__request_line l = {buf + 7, strlen(buf + 7)};
    assert_int_equal(l.uri_len, 2);
    assert_true(errinj__request_line_has_nul(&l, buf, buf + 19));
    free(buf);
}

static void test_uri_at_the_exact_end_of_its_buffer_is_not_read_past(void **state)
{
    (void)state;
    /* The URI's NUL is the buffer's last byte; the version lies in another buffer. The answer is
     * "a NUL the client sent" (the version does not follow the URI), found without a read past
     * the end. */
    static const char line[] = "GET\0/v2/error_injection/injection/a";
    char *buf = exact_copy(line, sizeof(line));
    char *version = exact_copy("HTTP/1.1", 9);
    struct errinj__request_line l = {buf + 4, strlen(buf + 4)};
    assert_ptr_equal(l.uri + l.uri_len + 1, buf + sizeof(line));
    assert_true(errinj__request_line_has_nul(&l, buf, version));
    free(version);
    free(buf);
}

static void test_missing_pieces_count_as_a_nul(void **state)
{
    (void)state;
    static const char line[] = "GET\0/\0HTTP/1.1";
    struct errinj__request_line l = {line + 4, 1};
    assert_true(errinj__request_line_has_nul(&l, NULL, line + 6));
    assert_true(errinj__request_line_has_nul(&l, line, NULL));
    struct errinj__request_line none = {NULL, 0};
    assert_true(errinj__request_line_has_nul(&none, line, line + 6));
    assert_false(errinj__request_line_has_nul(&l, line, line + 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_request_line_has_no_nul),
        cmocka_unit_test(test_raw_nul_in_the_uri_is_found),
        cmocka_unit_test(test_uri_at_the_exact_end_of_its_buffer_is_not_read_past),
        cmocka_unit_test(test_missing_pieces_count_as_a_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
