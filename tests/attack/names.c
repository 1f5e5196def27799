/*
 * names.c - memory stays bounded however many distinct injection names clients enable: the test
 * host, in a process of its own, gets 100,000 distinct names enabled and disabled over REST (a
 * million with ERRINJ_ATTACK_LONG=1, make stress), some of them fired in between, and its
 * resident set must grow by no more than errinj-events(7) allows (it used to grow by 33 MiB for
 * good: every name kept an entry for ever). On the way, what the kept names promise must hold:
 * coverage lists exactly the 10,000 most recent run-time names, and an event of a name whose
 * entry was reclaimed is still served, name and all, from the history.
 *
 * Sanitizer builds run fewer names and do not compare the resident set, which their allocators
 * inflate by design (ASan's quarantine keeps freed memory for a while); they check the rest.
 *
 * Usage: attack_names PATH-TO-errinj-testhost
 */
#define _GNU_SOURCE
#include "clock.h"
#include "host.h"
#include "net.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h and stddef.h */

#define API "/v2/error_injection"
#define INJ API "/injection/"
#define IO_TIMEOUT_S 20.0
/* errinj-events(7): the names a process keeps after their disable, and what memory they may
 * take at most (with names of up to 32 bytes, as here: 10,000 entries and the table). */
#define KEPT_NAMES 10000
#define RSS_GROWTH_MAX_KIB (8 * 1024)
/* One name in this many is fired while enabled, so that events of reclaimed names sit in the
 * server's history. */
#define FIRE_EVERY 1000

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const char *g_testhost;
static struct host g_host; /* killed by the teardown if the test failed */
static bool g_long;

static int kill_host(void **state)
{
    (void)state;
    host_kill(&g_host);
    return 0;
}

static void name_of(char *out, size_t len, long i)
{
    snprintf(out, len, "names.%07ld", i);
}

/* Counts the coverage rows of run-time names (type null) and whether `want` is among them. */
static size_t run_time_rows(const char *body, const char *want, bool *found)
{
    size_t rows = 0;
    *found = false;
    char pat[96];
    snprintf(pat, sizeof(pat), "\"name\":\"%s\"", want);
    for (const char *p = body; (p = strstr(p, "{\"name\":")) != NULL; p++) {
        const char *end = strchr(p, '}');
        if (end == NULL)
            break;
        const char *type = strstr(p, "\"type\":null");
        if (type != NULL && type < end) {
            rows++;
            if (strncmp(p + 1, pat, strlen(pat)) == 0)
                *found = true;
        }
    }
    return rows;
}

static void distinct_names_enabled_and_disabled_leave_memory_bounded(void **state)
{
    (void)state;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    assert_true(host_start(&g_host, g_testhost, args, 0));
    unsigned port = g_host.port;
    long names = g_long ? 1000000 : SANITIZED ? 25000 : 100000;
    int fd = -1;
    struct net_response r;
    char name[64], target[160], line[256];
    assert_int_equal(net_keepalive_request(&fd, port, "GET", API "/status", IO_TIMEOUT_S, &r), 200);
    net_response_free(&r);
    long rss_start = proc_rss_kib(g_host.pid), rss_half = -1;
    double t0 = test_now();
    for (long i = 0; i < names; i++) {
        name_of(name, sizeof(name), i);
        snprintf(target, sizeof(target), INJ "%s", name);
        int status = net_keepalive_request(&fd, port, "POST", target, IO_TIMEOUT_S, &r);
        net_response_free(&r);
        if (status != 200)
            fail_msg("enable %s: %d", name, status);
        if (i % FIRE_EVERY == 0) {
            assert_true(host_send(&g_host, "fire enter %s", name));
            if (!host_line(&g_host, line, sizeof(line), IO_TIMEOUT_S) || strcmp(line, "ok 1") != 0)
                fail_msg("fire %s: %s", name, line);
        }
        status = net_keepalive_request(&fd, port, "DELETE", target, IO_TIMEOUT_S, &r);
        net_response_free(&r);
        if (status != 200)
            fail_msg("disable %s: %d", name, status);
        if (i == names / 2)
            rss_half = proc_rss_kib(g_host.pid);
    }
    double seconds = test_now() - t0;
    long rss_end = proc_rss_kib(g_host.pid);
    printf("%ld distinct names enabled and disabled over REST in %.1f s: RSS %ld KiB at the start, %ld KiB "
           "halfway, %ld KiB at the end (+%ld KiB; at most +%d KiB allowed)\n",
           names, seconds, rss_start, rss_half, rss_end, rss_end - rss_start, RSS_GROWTH_MAX_KIB);
    assert_true(rss_start > 0 && rss_end > 0);
    if (!SANITIZED && rss_end - rss_start > RSS_GROWTH_MAX_KIB)
        fail_msg("RSS grew by %ld KiB over %ld distinct names (at most %d KiB allowed)", rss_end - rss_start, names,
                 RSS_GROWTH_MAX_KIB);

    /* Coverage keeps the most recent names and no more. */
    assert_int_equal(net_keepalive_request(&fd, port, "GET", API "/coverage", IO_TIMEOUT_S, &r), 200);
    bool newest_listed, oldest_listed;
    name_of(name, sizeof(name), names - 1);
    assert_int_equal(run_time_rows(r.body.data, name, &newest_listed), KEPT_NAMES);
    assert_true(newest_listed);
    name_of(name, sizeof(name), names - KEPT_NAMES - 1);
    run_time_rows(r.body.data, name, &oldest_listed);
    assert_false(oldest_listed);
    net_response_free(&r);

    /* The first name's entry is long reclaimed, but its event is still in the history. */
    name_of(name, sizeof(name), 0);
    snprintf(target, sizeof(target), INJ "%s/wait?after=0&timeout=5", name);
    assert_int_equal(net_keepalive_request(&fd, port, "GET", target, IO_TIMEOUT_S, &r), 200);
    char want[96];
    snprintf(want, sizeof(want), "\"injection\":\"%s\"", name);
    if (strstr(r.body.data, want) == NULL)
        fail_msg("the wait for %s answered %s", name, r.body.data);
    net_response_free(&r);
    if (fd >= 0)
        close(fd);
    assert_int_equal(host_quit(&g_host, 30.0), 0);
}

int main(int argc, char **argv)
{
    g_testhost = host_program(argc, argv);
    if (g_testhost == NULL)
        return 2;
    g_long = host_long_run();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(distinct_names_enabled_and_disabled_leave_memory_bounded, kill_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
