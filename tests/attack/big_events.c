/*
 * big_events.c - regression test: an injection with 100,000 parameter keys (a 1 MB body) used to
 * block the server thread for about 11 s per fire, because the SSE frame writer checked each key
 * against every earlier one; every stream and the REST API waited meanwhile. Now building an
 * event is linear in its size, and the event line is at most 64 KiB: the event says
 * "truncated": true, and GET .../injection/{name} still gives every parameter whole.
 *
 * Against the test host over real sockets: five fires of that injection must reach a stream
 * within the deadline, an event of another injection must reach another stream, and REST must
 * answer meanwhile. With ERRINJ_ATTACK_LONG=1 (make stress) it fires 200 times.
 *
 * Usage: attack_big_events PATH-TO-errinj-testhost
 */
#define _GNU_SOURCE
#include "clock.h"
#include "host.h"
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h and stddef.h */

#define API "/v2/error_injection"
#define KEYS 100000
#define DEADLINE_S 10.0 /* the defect took 11 s per fire */
#define EVENT_LINE_MAX (64 * 1024)

static const char *g_testhost;
static struct host g_host; /* the running test's host, killed by the teardown if the test failed */

static int kill_host(void **state)
{
    (void)state;
    host_kill(&g_host);
    return 0;
}

/* The next event within the socket timeout, as JSON (with the length of its data line). */
static json_t *next_event(struct net_sse *s, size_t *line_len)
{
    struct net_sse_event ev;
    if (net_sse_next_event(s, &ev) != 1)
        return NULL;
    *line_len = strlen("data: ") + ev.data_len + 1;
    return json_loadb(ev.data, ev.data_len, 0, NULL);
}

static void an_event_with_100000_keys_holds_up_nothing_and_fits_64_kib(void **state)
{
    (void)state;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    struct host *h = &g_host;
    assert_true(host_start(h, g_testhost, args, 0));
    /* {"aaaa":"","aaab":"",...}: 100,000 keys in about 1 MB. */
    struct net_buf body = {0};
    net_buf_add(&body, "{", 1);
    for (int i = 0; i < KEYS; i++) {
        static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        char key[16];
        int n = i, len = snprintf(key, sizeof(key), "%s\"", i ? "," : "");
        for (int d = 0; d < 4; d++, n /= 36)
            key[len++] = digits[n % 36];
        memcpy(key + len, "\":\"\"", 4);
        net_buf_add(&body, key, (size_t)len + 4);
    }
    net_buf_add(&body, "}", 1);
    printf("a body of %zu bytes with %d keys\n", body.len, KEYS);
    struct net_response r;
    double t0 = test_now();
    assert_int_equal(net_request(h->port, "POST", API "/injection/big.keys", NULL, body.data, body.len, 30.0, &r), 200);
    net_response_free(&r);
    double t_enable = test_now() - t0;
    assert_int_equal(net_request(h->port, "POST", API "/injection/big.other", NULL, NULL, 0, 30.0, &r), 200);
    net_response_free(&r);

    struct net_sse big, other;
    assert_true(net_sse_open_connected(&big, h->port, API "/events?injection=big.keys", NULL, 30.0, 0));
    assert_true(net_sse_open_connected(&other, h->port, API "/events?injection=big.other", NULL, 30.0, 0));
    int fires = host_long_run() ? 200 : 5;
    char line[256];
    t0 = test_now();
    assert_true(host_send(h, "fire enter big.keys %d", fires));
    assert_true(host_send(h, "fire enter big.other 1"));
    assert_true(host_line(h, line, sizeof(line), 30.0));
    assert_true(host_line(h, line, sizeof(line), 30.0));
    /* REST and the other stream are served while the big events are built and sent. */
    double q0 = test_now();
    assert_int_equal(net_request(h->port, "GET", API "/status", NULL, NULL, 0, DEADLINE_S, &r), 200);
    net_response_free(&r);
    double t_rest = test_now() - q0;
    size_t line_len = 0;
    json_t *ev = next_event(&other, &line_len);
    assert_non_null(ev);
    double t_other = test_now() - t0;
    json_decref(ev);
    size_t longest = 0;
    for (int i = 0; i < fires; i++) {
        ev = next_event(&big, &line_len);
        if (ev == NULL)
            fail_msg("event %d of big.keys did not arrive", i + 1);
        if (line_len > EVENT_LINE_MAX)
            fail_msg("event line of %zu bytes", line_len);
        longest = line_len > longest ? line_len : longest;
        assert_true(json_is_true(json_object_get(ev, "truncated")));
        assert_true(json_object_size(json_object_get(ev, "parameters")) > 1000);
        json_decref(ev);
    }
    double t_big = test_now() - t0;
    /* Every parameter is still readable, whole. */
    assert_int_equal(net_request(h->port, "GET", API "/injection/big.keys", NULL, NULL, 0, 30.0, &r), 200);
    json_t *got = json_loadb(r.body.data, r.body.len, 0, NULL);
    net_response_free(&r);
    assert_int_equal(json_array_size(json_object_get(json_array_get(got, 0), "parameters")), KEYS);
    json_decref(got);
    printf("enable %.3f s; %d fires: all events %.3f s after the fire command, longest line %zu bytes; "
           "/status meanwhile %.3f s; the other stream's event %.3f s\n",
           t_enable, fires, t_big, longest, t_rest, t_other);
    if (t_big > DEADLINE_S || t_other > DEADLINE_S)
        fail_msg("events took %.1f s (other stream %.1f s): the server thread was held up", t_big, t_other);
    net_sse_close(&big, false);
    net_sse_close(&other, false);
    free(body.data);
    assert_int_equal(host_quit(h, 60.0), 0);
}

int main(int argc, char **argv)
{
    g_testhost = host_program(argc, argv);
    if (g_testhost == NULL)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(an_event_with_100000_keys_holds_up_nothing_and_fits_64_kib, kill_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
