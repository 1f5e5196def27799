/* test_util.c - the bottom layer: clocks, the UTF-8 decoder, host:port splitting, loopback tests. */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static void clocks_read_their_own_clock(void **state)
{
    (void)state;
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    int64_t m = errinj__now_mono_ns();
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t r = errinj__now_real_ns();
    assert_true(m >= (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec);
    assert_true(r >= (int64_t)real.tv_sec * 1000000000 + real.tv_nsec);
    /* Real time is past 2020 in nanoseconds; monotonic time is not tied to it. */
    assert_true(r > 1577836800ll * 1000000000);
    assert_true(errinj__now_mono_ns() >= m);
}

static size_t seq(const char *s, uint32_t *cp)
{
    return errinj__utf8_sequence((const unsigned char *)s, strlen(s), cp);
}

static void utf8_sequences_decode_with_their_length(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_int_equal(seq("a", &cp), 1);
    assert_int_equal(cp, 'a');
    assert_int_equal(seq("\xc3\xa9", &cp), 2);
    assert_int_equal(cp, 0xe9);
    assert_int_equal(seq("\xe2\x82\xac", &cp), 3);
    assert_int_equal(cp, 0x20ac);
    assert_int_equal(seq("\xf0\x9f\x92\xa5", &cp), 4);
    assert_int_equal(cp, 0x1f4a5);
    assert_int_equal(seq("\xf4\x8f\xbf\xbf", &cp), 4);
    assert_int_equal(cp, 0x10ffff);
    assert_int_equal(errinj__utf8_sequence((const unsigned char *)"\xc3\xa9", 2, NULL), 2); /* cp optional */
}

static void invalid_utf8_is_zero_and_leaves_the_code_point(void **state)
{
    (void)state;
    uint32_t cp = 7;
    const char *bad[] = {
        "\x80",             /* a continuation byte first */
        "\xc0\xaf",         /* overlong, two bytes */
        "\xc1\xbf",         /* overlong, two bytes */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xf0\x80\x80\xaf", /* overlong, four bytes */
        "\xed\xa0\x80",     /* a surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xf5\x80\x80\x80", /* no such lead byte */
        "\xff",
        "\xc3(",            /* a lead byte without its continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(seq(bad[i], &cp), 0);
        assert_int_equal(cp, 7);
    }
    /* Only `left` bytes are read: a sequence longer than what is left is not valid. */
    assert_int_equal(errinj__utf8_sequence((const unsigned char *)"\xe2\x82\xac", 2, &cp), 0);
    assert_int_equal(errinj__utf8_sequence((const unsigned char *)"a", 0, &cp), 0);
}

static void host_port_splits_at_the_last_colon_outside_brackets(void **state)
{
    (void)state;
    char host[64];
    const char *port = NULL;
    assert_true(errinj__hostport_split("127.0.0.1:10000", host, sizeof(host), &port));
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "10000");
    assert_true(errinj__hostport_split("[::1]:0", host, sizeof(host), &port));
    assert_string_equal(host, "::1");
    assert_string_equal(port, "0");
    assert_true(errinj__hostport_split(":8080", host, sizeof(host), &port));
    assert_string_equal(host, "");
    assert_string_equal(port, "8080");
    assert_true(errinj__hostport_split("localhost:", host, sizeof(host), &port));
    assert_string_equal(host, "localhost");
    assert_string_equal(port, "");
}

static void host_port_refuses_what_has_no_port_or_does_not_fit(void **state)
{
    (void)state;
    char host[10];
    const char *port = "untouched";
    assert_false(errinj__hostport_split("localhost", host, sizeof(host), &port));
    assert_false(errinj__hostport_split("[::1]", host, sizeof(host), &port));
    assert_false(errinj__hostport_split("[::1:80", host, sizeof(host), &port));
    assert_false(errinj__hostport_split("[::1]80", host, sizeof(host), &port));
    assert_false(errinj__hostport_split("0123456789:80", host, sizeof(host), &port)); /* 10 bytes + NUL */
    assert_true(errinj__hostport_split("012345678:80", host, sizeof(host), &port));    /* 9 fit */
    assert_string_equal(host, "012345678");
}

static void host_headers_naming_loopback_pass(void **state)
{
    (void)state;
    const char *yes[] = {"localhost", "LocalHost:10000", "127.0.0.1", "127.0.0.1:80", "127.255.1.2:1",
                         "[::1]", "[::1]:10000"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(errinj__host_is_loopback(yes[i]));
    const char *no[] = {"", ":80", "10.0.0.1", "128.0.0.1:80", "localhost.example.com", "[::2]:80",
                        "[::1", "[::1]x", "127.0.0.1.evil", "example.com:80"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (errinj__host_is_loopback(no[i]))
            fail_msg("\"%s\" was taken for a loopback host", no[i]);
    }
}

static void socket_addresses_are_loopback_only_in_127_and_at_1(void **state)
{
    (void)state;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
    assert_true(errinj__sockaddr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "127.8.9.10", &v4.sin_addr);
    assert_true(errinj__sockaddr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "0.0.0.0", &v4.sin_addr);
    assert_false(errinj__sockaddr_is_loopback((struct sockaddr *)&v4));
    inet_pton(AF_INET, "192.168.1.1", &v4.sin_addr);
    assert_false(errinj__sockaddr_is_loopback((struct sockaddr *)&v4));
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_true(errinj__sockaddr_is_loopback((struct sockaddr *)&v6));
    inet_pton(AF_INET6, "::", &v6.sin6_addr);
    assert_false(errinj__sockaddr_is_loopback((struct sockaddr *)&v6));
    struct sockaddr unix_addr = {.sa_family = AF_UNIX};
    assert_false(errinj__sockaddr_is_loopback(&unix_addr));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clocks_read_their_own_clock),
        cmocka_unit_test(utf8_sequences_decode_with_their_length),
        cmocka_unit_test(invalid_utf8_is_zero_and_leaves_the_code_point),
        cmocka_unit_test(host_port_splits_at_the_last_colon_outside_brackets),
        cmocka_unit_test(host_port_refuses_what_has_no_port_or_does_not_fit),
        cmocka_unit_test(host_headers_naming_loopback_pass),
        cmocka_unit_test(socket_addresses_are_loopback_only_in_127_and_at_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
