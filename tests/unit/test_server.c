/*
 * test_server.c - server.c: starting and stopping the embedded server, the listen address
 * rules, and the REST API and SSE stream as a client sees them over a plain TCP socket.
 *
 * The client is tests/lib's (net.h): requests through net_request_family(), and streams read
 * raw with its net_inbox, so that what the test sees is what went over the wire. Nothing waits
 * by sleeping: reads wait on poll() with a deadline, and "a thread has parked" is a bounded
 * poll of errinj_waiters().
 */
#define _GNU_SOURCE
#include "events.h"
#include "http.h"
#include "registry.h"

#include "clock.h"
#include "net.h"
#include "threads.h"

#include <jansson.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "internals_helpers.h"

#define DEADLINE_S 10.0
#define DEADLINE_MS 10000

/* ---- requests, over tests/lib's client ---------------------------------------------------- */

/* Connects to the loopback address of `family` on `port`; -1 with errno on failure. */
static int connect_loopback(int family, unsigned port)
{
    return net_connect_family(family, port, DEADLINE_S, 0);
}

static void send_all(int fd, const char *data, size_t len)
{
    if (!net_send_all(fd, data, len))
        fail_msg("send: %s", strerror(errno));
}

struct response {
    int status;
    char *head; /* status line and headers */
    char *body;
};

static void response_free(struct response *r)
{
    free(r->head);
    free(r->body);
    *r = (struct response){0};
}

/* Sends one request (Connection: close) and reads the whole response. */
static struct response http_on(int family, unsigned port, const char *method, const char *target,
                               const char *extra_headers, const char *body, size_t body_len)
{
    struct net_response got;
    int status = net_request_family(family, port, method, target, extra_headers, body, body_len, DEADLINE_S, &got);
    if (status <= 0)
        fail_msg("%s %s: no complete response within %.0f s", method, target, DEADLINE_S);
    struct response r = {.status = status, .head = strdup(got.headers), .body = strdup(got.body.data)};
    net_response_free(&got);
    return r;
}

static struct response http(unsigned port, const char *method, const char *target, const char *body)
{
    return http_on(AF_INET, port, method, target, NULL, body, body != NULL ? strlen(body) : 0);
}

static void expect_http_status(const struct response *r, int status, const char *what)
{
    if (r->status != status)
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status, r->body);
}


static errinj_server *start_on(const char *listen)
{
    errinj_server_opts opts = {.listen = listen};
    errinj_server *srv = NULL;
    int rc = errinj_server_start(&opts, &srv);
    if (rc != 0)
        fail_msg("errinj_server_start(%s): %d %s", listen, rc, errinj_strerror(rc));
    assert_non_null(srv);
    assert_int_not_equal(errinj_server_port(srv), 0);
    return srv;
}

static int disable_everything(void **state)
{
    (void)state;
    errinj_disable_all();
    return 0;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void start_refuses_a_null_out_pointer(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    assert_int_equal(errinj_server_start(&opts, NULL), ERRINJ_EINVAL);
    /* ... and holds nothing: a real start still works. */
    errinj_server_stop(start_on("127.0.0.1:0"));
}

static void stop_of_null_is_ignored(void **state)
{
    (void)state;
    errinj_server_stop(NULL);
    assert_int_equal(errinj_server_port(NULL), 0);
}

static void null_opts_listen_on_the_default_address(void **state)
{
    (void)state;
    errinj_server *srv = (void *)1;
    int rc = errinj_server_start(NULL, &srv);
    if (rc == ERRINJ_EADDRINUSE) {
        assert_null(srv);
        skip(); /* something else on this machine owns 127.0.0.1:10000 */
    }
    if (rc != 0)
        fail_msg("errinj_server_start(NULL): %d %s", rc, errinj_strerror(rc));
    assert_int_equal(errinj_server_port(srv), 10000);
    struct response r = http(10000, "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "status on the default port");
    response_free(&r);
    errinj_server_stop(srv);
}

static void port_zero_picks_a_free_port_that_answers(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    unsigned port = errinj_server_port(srv);
    assert_true(port > 0 && port <= 65535);
    struct response r = http(port, "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "status");
    response_free(&r);
    errinj_server_stop(srv);
}

static void a_second_server_in_the_same_process_is_refused(void **state)
{
    (void)state;
    errinj_server *first = start_on("127.0.0.1:0");
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    errinj_server *second = (void *)1;
    int rc = errinj_server_start(&opts, &second);
    if (rc == 0)
        fail_msg("a second server started on port %u", errinj_server_port(second));
    assert_true(rc < 0);
    assert_null(second);
    /* The first one is unharmed, and once it stops a new one may start. */
    struct response r = http(errinj_server_port(first), "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "first server after the refused second");
    response_free(&r);
    errinj_server_stop(first);
    errinj_server_stop(start_on("127.0.0.1:0"));
}

static void a_non_loopback_listen_address_is_refused_without_allow_remote(void **state)
{
    (void)state;
    unsigned port = unused_port();
    char wildcard[32], remote[32];
    snprintf(wildcard, sizeof(wildcard), "0.0.0.0:%u", port);
    snprintf(remote, sizeof(remote), "10.1.2.3:%u", port);
    const char *const addrs[] = {"10.1.2.3:0", remote, wildcard, ":0", "[::]:0", "[2001:db8::1]:0"};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        errinj_server_opts opts = {.listen = addrs[i]};
        errinj_server *srv = (void *)1;
        int rc = errinj_server_start(&opts, &srv);
        if (rc != ERRINJ_EACCES)
            fail_msg("listen %s: %d %s, expected ERRINJ_EACCES", addrs[i], rc, errinj_strerror(rc));
        assert_null(srv);
    }
    /* Nothing listens on the port of the refused wildcard address. */
    int fd = connect_loopback(AF_INET, port);
    if (fd >= 0)
        fail_msg("something listens on port %u after a refused start", port);
    assert_int_equal(errno, ECONNREFUSED);
    errinj_server_stop(start_on("127.0.0.1:0"));
}

static void allow_remote_permits_a_wildcard_listen_address(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "0.0.0.0:0", .allow_remote = true};
    errinj_server *srv = NULL;
    int rc = errinj_server_start(&opts, &srv);
    if (rc != 0)
        fail_msg("listen 0.0.0.0:0 with allow_remote: %d %s", rc, errinj_strerror(rc));
    struct response r = http(errinj_server_port(srv), "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "status on a wildcard listener");
    response_free(&r);
    errinj_server_stop(srv);
}

static void malformed_listen_addresses_are_einval(void **state)
{
    (void)state;
    static const char *const addrs[] = {
        "nonsense", "127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1:abc",
        "127.0.0.1:80x", "[::1", "[::1]", "[::1]0", ":", "127.0.0.1",
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        errinj_server_opts opts = {.listen = addrs[i]};
        errinj_server *srv = (void *)1;
        int rc = errinj_server_start(&opts, &srv);
        if (rc != ERRINJ_EINVAL)
            fail_msg("listen \"%s\": %d %s, expected ERRINJ_EINVAL", addrs[i], rc, errinj_strerror(rc));
        assert_null(srv);
    }
    errinj_server_stop(start_on("127.0.0.1:0"));
}

static void a_port_in_use_is_eaddrinuse(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
    errinj_server_opts opts = {.listen = addr};
    errinj_server *srv = (void *)1;
    int rc = errinj_server_start(&opts, &srv);
    close(fd);
    if (rc != ERRINJ_EADDRINUSE)
        fail_msg("listen %s while taken: %d %s, expected ERRINJ_EADDRINUSE", addr, rc, errinj_strerror(rc));
    assert_null(srv);
    errinj_server_stop(start_on("127.0.0.1:0"));
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void ipv6_loopback_listens_and_answers(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip(); /* no IPv6 on this machine */
    errinj_server *srv = start_on("[::1]:0");
    struct response r = http_on(AF_INET6, errinj_server_port(srv), "GET", "/v2/error_injection/status", NULL, NULL, 0);
    expect_http_status(&r, 200, "status over IPv6");
    response_free(&r);
    errinj_server_stop(srv);
}

static void start_and_stop_twenty_times_in_a_row(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        errinj_server *srv = start_on("127.0.0.1:0");
        if (i % 5 == 0) {
            struct response r = http(errinj_server_port(srv), "GET", "/v2/error_injection/status", NULL);
            expect_http_status(&r, 200, "status");
            response_free(&r);
        }
        errinj_server_stop(srv);
    }
}

/* ---- the REST API over a socket ------------------------------------------------------------ */

static void status_over_a_socket_is_200_json(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    struct response r = http(errinj_server_port(srv), "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "status");
    if (strcasestr(r.head, "\r\nContent-Type: application/json") == NULL)
        fail_msg("status headers lack Content-Type: application/json: %s", r.head);
    json_error_t err;
    json_t *body = json_loads(r.body, 0, &err);
    if (!json_is_object(body))
        fail_msg("status body is not a JSON object: %s", r.body);
    assert_string_equal(json_string_value(json_object_get(body, "version")), ERRINJ_VERSION);
    assert_true(json_is_integer(json_object_get(body, "seq")));
    assert_int_equal(json_integer_value(json_object_get(body, "subscribers")), 0);
    assert_int_equal(json_integer_value(json_object_get(body, "dropped")), 0);
    assert_true(json_integer_value(json_object_get(body, "shards")) >= 1);
    json_decref(body);
    response_free(&r);
    errinj_server_stop(srv);
}

static void a_token_guards_the_socket_api(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .token = "s3cret"};
    errinj_server *srv = NULL;
    assert_int_equal(errinj_server_start(&opts, &srv), 0);
    unsigned port = errinj_server_port(srv);
    struct response r = http(port, "POST", "/v2/error_injection/injection/srv.tok", NULL);
    expect_http_status(&r, 401, "no token");
    response_free(&r);
    assert_false(errinj_is_enabled("srv.tok"));
    r = http_on(AF_INET, port, "POST", "/v2/error_injection/injection/srv.tok", "Authorization: Bearer wrong\r\n",
                NULL, 0);
    expect_http_status(&r, 401, "wrong token");
    response_free(&r);
    assert_false(errinj_is_enabled("srv.tok"));
    r = http_on(AF_INET, port, "POST", "/v2/error_injection/injection/srv.tok", "Authorization: Bearer s3cret\r\n",
                NULL, 0);
    expect_http_status(&r, 200, "right token");
    response_free(&r);
    assert_true(errinj_is_enabled("srv.tok"));
    errinj_server_stop(srv);
}

static void a_remote_host_header_is_forbidden_over_the_socket(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    int fd = connect_loopback(AF_INET, errinj_server_port(srv));
    assert_true(fd >= 0);
    const char *req = "POST /v2/error_injection/injection/srv.rebind HTTP/1.1\r\nHost: evil.example\r\n"
                      "Connection: close\r\nContent-Length: 0\r\n\r\n";
    send_all(fd, req, strlen(req));
    struct net_inbox in = {0};
    assert_true(net_inbox_to_eof(fd, &in, test_now() + DEADLINE_S));
    close(fd);
    if (strncmp(in.data, "HTTP/1.1 403", 12) != 0)
        fail_msg("remote Host: %s, expected 403", in.data);
    net_inbox_free(&in);
    assert_false(errinj_is_enabled("srv.rebind"));
    errinj_server_stop(srv);
}

static void names_and_bodies_arrive_as_sent(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    unsigned port = errinj_server_port(srv);
    /* %2F stays inside the name instead of splitting the path. */
    struct response r = http(port, "POST", "/v2/error_injection/injection/a%2Fb?one_shot=TRUE",
                             "{\"k\":\"v w\",\"n\":5}");
    expect_http_status(&r, 200, "POST a%2Fb");
    response_free(&r);
    assert_true(errinj_is_enabled("a/b"));
    char buf[32];
    assert_int_equal(errinj_parameter("a/b", "k", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "v w");
    assert_int_equal(errinj_parameter("a/b", "n", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "5");
    r = http(port, "GET", "/v2/error_injection/injection/a%2Fb", NULL);
    expect_http_status(&r, 200, "GET a%2Fb");
    assert_string_equal(r.body, "[{\"enabled\":true,\"one_shot\":true,\"parameters\":"
                                "[{\"key\":\"k\",\"value\":\"v w\"},{\"key\":\"n\",\"value\":\"5\"}],"
                                "\"term\":\"1*on\",\"seed\":42}]");
    response_free(&r);
    errinj_server_stop(srv);
}

static void a_body_over_one_mib_is_413_and_changes_nothing(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    size_t len = ERRINJ__BODY_MAX + 1;
    char *body = malloc(len);
    assert_non_null(body);
    /* A valid JSON object if it were accepted: {"k":"xxxx...x"}. */
    memset(body, 'x', len);
    memcpy(body, "{\"k\":\"", 6);
    memcpy(body + len - 2, "\"}", 2);
    struct response r = http_on(AF_INET, errinj_server_port(srv), "POST", "/v2/error_injection/injection/srv.big",
                                NULL, body, len);
    expect_http_status(&r, 413, "oversized body");
    response_free(&r);
    assert_false(errinj_is_enabled("srv.big"));
    /* Exactly 1 MiB is accepted. */
    len = ERRINJ__BODY_MAX;
    memcpy(body + len - 2, "\"}", 2);
    r = http_on(AF_INET, errinj_server_port(srv), "POST", "/v2/error_injection/injection/srv.big", NULL, body, len);
    expect_http_status(&r, 200, "body of exactly 1 MiB");
    response_free(&r);
    assert_true(errinj_is_enabled("srv.big"));
    free(body);
    errinj_server_stop(srv);
}

/* ---- the SSE stream ------------------------------------------------------------------------- */

/* Opens GET /v2/error_injection/events?query and reads through ": connected\n\n". */
static int open_stream(unsigned port, const char *query, struct net_inbox *in)
{
    int fd = connect_loopback(AF_INET, port);
    if (fd < 0)
        fail_msg("connect to port %u: %s", port, strerror(errno));
    char req[512];
    int n = snprintf(req, sizeof(req), "GET /v2/error_injection/events%s%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                     query != NULL ? "?" : "", query != NULL ? query : "", port);
    send_all(fd, req, (size_t)n);
    const char *hit = net_inbox_until(fd, in, 0, ": connected\n\n", test_now() + DEADLINE_S);
    if (hit == NULL)
        fail_msg("no \": connected\" within %d ms; got %s", DEADLINE_MS, in->data != NULL ? in->data : "nothing");
    if (strncmp(in->data, "HTTP/1.1 200", 12) != 0)
        fail_msg("events: %s, expected 200", in->data);
    const char *end_of_head = strstr(in->data, "\r\n\r\n");
    if (end_of_head == NULL || hit < end_of_head)
        fail_msg("\": connected\" is not in the body: %s", in->data);
    if (strcasestr(in->data, "\r\nContent-Type: text/event-stream") == NULL)
        fail_msg("events headers lack Content-Type: text/event-stream: %s", in->data);
    if (strcasestr(in->data, "\r\nCache-Control: no-cache") == NULL)
        fail_msg("events headers lack Cache-Control: no-cache: %s", in->data);
    return fd;
}

/* Reads the next frame of `name` after `from`; returns its JSON (and the frame's id). */
static json_t *read_event(int fd, struct net_inbox *in, size_t *from, const char *name, unsigned long long *id)
{
    char needle[300];
    snprintf(needle, sizeof(needle), "\"injection\":\"%s\"", name);
    const char *hit = net_inbox_until(fd, in, *from, needle, test_now() + DEADLINE_S);
    if (hit == NULL)
        fail_msg("no event of %s within %d ms; got %s", name, DEADLINE_MS, in->data + *from);
    /* The frame starts at the "id: " line before the hit and ends with a blank line. */
    const char *start = hit;
    while (start > in->data + *from && strncmp(start, "id: ", 4) != 0)
        start--;
    size_t start_off = (size_t)(start - in->data);
    const char *end = net_inbox_until(fd, in, start_off, "\n\n", test_now() + DEADLINE_S);
    if (end == NULL)
        fail_msg("the frame of %s never ends: %s", name, in->data + start_off);
    start = in->data + start_off; /* the buffer may have moved */
    if (sscanf(start, "id: %llu\n", id) != 1)
        fail_msg("no id line before the event of %s: %s", name, start);
    const char *data = strstr(start, "\ndata: ");
    assert_non_null(data);
    data += 7;
    json_t *ev = json_loadb(data, (size_t)(end - data), 0, NULL);
    if (ev == NULL)
        fail_msg("event data is not JSON: %.*s", (int)(end - data), data);
    *from = (size_t)(end - in->data) + 2;
    return ev;
}

static void stream_greets_then_delivers_an_event_fired_after_the_greeting(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    assert_int_equal(errinj_enable("srv.sse", false, (const char *[]){"k", "v", NULL}), 0);
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), "injection=srv.sse", &in);
    size_t from = in.len;
    assert_true(errinj_inject_enter("srv.sse"));
    uint64_t seq = errinj__seq_last();
    unsigned long long id;
    json_t *ev = read_event(fd, &in, &from, "srv.sse", &id);
    assert_int_equal(id, seq);
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), seq);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "enter");
    assert_string_equal(json_string_value(json_object_get(ev, "phase")), "hit");
    assert_int_equal(json_integer_value(json_object_get(ev, "enters")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "parameters"), "k")), "v");
    json_decref(ev);
    close(fd);
    net_inbox_free(&in);
    errinj_server_stop(srv);
}

static void stream_replays_kept_events_after_since(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    assert_int_equal(errinj_enable("srv.replay", false, NULL), 0);
    assert_true(errinj_inject_enter("srv.replay"));
    uint64_t first = errinj__seq_last();
    assert_true(errinj_inject_enter("srv.replay"));
    uint64_t second = errinj__seq_last();
    char query[96];
    snprintf(query, sizeof(query), "injection=srv.replay&since=%llu", (unsigned long long)(first - 1));
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), query, &in);
    size_t from = 0;
    unsigned long long id;
    json_t *ev = read_event(fd, &in, &from, "srv.replay", &id);
    assert_int_equal(id, first);
    assert_int_equal(json_integer_value(json_object_get(ev, "enters")), 1);
    json_decref(ev);
    ev = read_event(fd, &in, &from, "srv.replay", &id);
    assert_int_equal(id, second);
    assert_int_equal(json_integer_value(json_object_get(ev, "enters")), 2);
    json_decref(ev);
    close(fd);
    net_inbox_free(&in);
    errinj_server_stop(srv);
}

/* Opens a stream with extra request headers (e.g. Last-Event-ID). */
static int open_stream_with(unsigned port, const char *query, const char *headers, struct net_inbox *in)
{
    int fd = connect_loopback(AF_INET, port);
    if (fd < 0)
        fail_msg("connect to port %u: %s", port, strerror(errno));
    char req[512];
    int n = snprintf(req, sizeof(req), "GET /v2/error_injection/events?%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%s\r\n",
                     query, port, headers);
    send_all(fd, req, (size_t)n);
    if (net_inbox_until(fd, in, 0, ": connected\n\n", test_now() + DEADLINE_S) == NULL)
        fail_msg("no \": connected\" within %d ms; got %s", DEADLINE_MS, in->data != NULL ? in->data : "nothing");
    return fd;
}

static void a_stream_asking_for_events_no_longer_kept_gets_an_overflow_first(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .history = 4};
    errinj_server *srv = NULL;
    assert_int_equal(errinj_server_start(&opts, &srv), 0);
    unsigned port = errinj_server_port(srv);
    assert_int_equal(errinj_enable("srv.kept", false, NULL), 0);
    /* A live stream shows when the server has taken in all ten events. */
    struct net_inbox live = {0};
    int live_fd = open_stream(port, "injection=srv.kept", &live);
    uint64_t base = errinj__seq_last();
    for (int i = 0; i < 10; i++)
        assert_true(errinj_inject_enter("srv.kept"));
    assert_int_equal(errinj__seq_last(), base + 10);
    if (net_inbox_until(live_fd, &live, 0, "\"enters\":10", test_now() + DEADLINE_S) == NULL)
        fail_msg("the live stream never saw the tenth event: %s", live.data);

    /* Only the last four are kept: since=base gets an overflow for six, then the four. */
    char query[96], expected[160];
    snprintf(query, sizeof(query), "injection=srv.kept&since=%llu", (unsigned long long)base);
    struct net_inbox in = {0};
    int fd = open_stream_with(port, query, "", &in);
    size_t from = (size_t)(strstr(in.data, ": connected\n\n") - in.data) + 13;
    snprintf(expected, sizeof(expected), "event: overflow\ndata: {\"dropped\":6,\"next_seq\":%llu}\n\n",
             (unsigned long long)(base + 7));
    const char *overflow = net_inbox_until(fd, &in, from, expected, test_now() + DEADLINE_S);
    if (overflow == NULL)
        fail_msg("no overflow notice \"%s\"; got %s", expected, in.data + from);
    size_t at = (size_t)(overflow - in.data);
    if (strstr(in.data + from, "id: ") != NULL && (size_t)(strstr(in.data + from, "id: ") - in.data) < at)
        fail_msg("an event came before the overflow notice: %s", in.data + from);
    from = at + strlen(expected);
    for (uint64_t seq = base + 7; seq <= base + 10; seq++) {
        unsigned long long id;
        json_t *ev = read_event(fd, &in, &from, "srv.kept", &id);
        assert_int_equal(id, seq);
        assert_int_equal(json_integer_value(json_object_get(ev, "enters")), seq - base);
        json_decref(ev);
    }
    close(fd);
    net_inbox_free(&in);

    /* Last-Event-ID inside what is kept: no overflow, just the events after it. */
    char header[64];
    snprintf(header, sizeof(header), "Last-Event-ID: %llu\r\n", (unsigned long long)(base + 8));
    fd = open_stream_with(port, "injection=srv.kept", header, &in);
    from = (size_t)(strstr(in.data, ": connected\n\n") - in.data) + 13;
    for (uint64_t seq = base + 9; seq <= base + 10; seq++) {
        unsigned long long id;
        json_t *ev = read_event(fd, &in, &from, "srv.kept", &id);
        assert_int_equal(id, seq);
        json_decref(ev);
    }
    if (strstr(in.data, "overflow") != NULL)
        fail_msg("an overflow notice although nothing was missed: %s", in.data);
    close(fd);
    net_inbox_free(&in);
    close(live_fd);
    net_inbox_free(&live);
    errinj_server_stop(srv);
}

static void an_idle_stream_gets_a_ping_every_heartbeat(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .heartbeat_ms = 50};
    errinj_server *srv = NULL;
    assert_int_equal(errinj_server_start(&opts, &srv), 0);
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), NULL, &in);
    size_t from = in.len;
    for (int i = 0; i < 3; i++) {
        const char *ping = net_inbox_until(fd, &in, from, ": ping\n\n", test_now() + DEADLINE_S);
        if (ping == NULL)
            fail_msg("ping %d did not come within %d ms with heartbeat_ms 50; got %s", i + 1, DEADLINE_MS,
                     in.data + from);
        from = (size_t)(ping - in.data) + 8;
    }
    close(fd);
    net_inbox_free(&in);
    errinj_server_stop(srv);
}

static void status_counts_open_streams(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    unsigned port = errinj_server_port(srv);
    struct net_inbox a = {0}, b = {0};
    int fa = open_stream(port, NULL, &a);
    int fb = open_stream(port, NULL, &b);
    struct response r = http(port, "GET", "/v2/error_injection/status", NULL);
    expect_http_status(&r, 200, "status");
    json_t *body = json_loads(r.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "subscribers")), 2);
    json_decref(body);
    response_free(&r);
    close(fa);
    close(fb);
    net_inbox_free(&a);
    net_inbox_free(&b);
    errinj_server_stop(srv);
}

static void a_stream_beyond_max_subscribers_is_503(void **state)
{
    (void)state;
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .max_subscribers = 1};
    errinj_server *srv = NULL;
    assert_int_equal(errinj_server_start(&opts, &srv), 0);
    unsigned port = errinj_server_port(srv);
    struct net_inbox in = {0};
    int fd = open_stream(port, NULL, &in);
    struct response r = http(port, "GET", "/v2/error_injection/events", NULL);
    expect_http_status(&r, 503, "second stream");
    json_t *body = json_loads(r.body, 0, NULL);
    if (!json_is_object(body) || json_integer_value(json_object_get(body, "code")) != 503)
        fail_msg("503 body is not {\"message\",\"code\":503}: %s", r.body);
    json_decref(body);
    response_free(&r);
    close(fd);
    net_inbox_free(&in);
    errinj_server_stop(srv);
}

static void stop_ends_an_open_stream(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), NULL, &in);
    double before = test_now();
    errinj_server_stop(srv);
    if (!net_inbox_to_eof(fd, &in, test_now() + DEADLINE_S))
        fail_msg("the stream was still open %d ms after stop; got %s", DEADLINE_MS, in.data);
    /* Ended cleanly: the chunked body's last chunk, not a cut connection. */
    if (in.len < 5 || strcmp(in.data + in.len - 5, "0\r\n\r\n") != 0)
        fail_msg("the stream did not end with the last chunk: %s", in.data);
    assert_true(test_now() - before < DEADLINE_S);
    close(fd);
    net_inbox_free(&in);
}

/* A program that fires and exits at once (a CLI under errinj-run) stops the server right after
 * the fire: the streams must still get every event published before they end. */
static void stop_delivers_the_events_fired_just_before_it(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        errinj_server *srv = start_on("127.0.0.1:0");
        assert_int_equal(errinj_enable("srv.last", false, NULL), 0);
        struct net_inbox in = {0};
        int fd = open_stream(errinj_server_port(srv), NULL, &in);
        for (int i = 0; i < 3; i++)
            assert_true(errinj_inject_enter("srv.last"));
        uint64_t last = errinj__seq_last();
        errinj_server_stop(srv);
        if (!net_inbox_to_eof(fd, &in, test_now() + DEADLINE_S))
            fail_msg("the stream was still open %d ms after stop", DEADLINE_MS);
        char id[48];
        snprintf(id, sizeof(id), "id: %llu\n", (unsigned long long)last);
        if (strstr(in.data, id) == NULL)
            fail_msg("round %d: the stream ended without event %llu: %s", round, (unsigned long long)last, in.data);
        close(fd);
        net_inbox_free(&in);
    }
}

static void a_frame_larger_than_one_read_arrives_whole(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    unsigned port = errinj_server_port(srv);
    /* 60 KB of parameter: past libmicrohttpd's 32 KB read block, within the 64 KiB event line. */
    size_t big_len = 60 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    big[big_len] = '\0';
    assert_int_equal(errinj_enable("srv.big_frame", false, (const char *[]){"big", big, NULL}), 0);
    /* HTTP/1.0: the body comes unchunked, so the frame can be read as sent. */
    int fd = connect_loopback(AF_INET, port);
    assert_true(fd >= 0);
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET /v2/error_injection/events?injection=srv.big_frame HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n\r\n", port);
    send_all(fd, req, (size_t)n);
    struct net_inbox in = {0};
    if (net_inbox_until(fd, &in, 0, ": connected\n\n", test_now() + DEADLINE_S) == NULL)
        fail_msg("no \": connected\"; got %s", in.data != NULL ? in.data : "nothing");
    size_t from = in.len;
    assert_true(errinj_inject_enter("srv.big_frame"));
    assert_true(errinj_inject_enter("srv.big_frame"));
    for (int k = 1; k <= 2; k++) {
        unsigned long long id;
        json_t *ev = read_event(fd, &in, &from, "srv.big_frame", &id);
        assert_int_equal(json_integer_value(json_object_get(ev, "enters")), k);
        const char *got = json_string_value(json_object_get(json_object_get(ev, "parameters"), "big"));
        assert_non_null(got);
        if (strlen(got) != big_len || strcmp(got, big) != 0)
            fail_msg("event %d: parameter of %zu bytes arrived as %zu bytes or changed", k, big_len, strlen(got));
        json_decref(ev);
    }
    close(fd);
    net_inbox_free(&in);
    free(big);
    errinj_server_stop(srv);
}

static void stop_returns_even_when_a_client_stopped_reading(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    size_t big_len = 64 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    assert_int_equal(errinj_enable("srv.flood", false, (const char *[]){"big", big, NULL}), 0);
    free(big);
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), "injection=srv.flood", &in);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    /* About 16 MB of frames that the client never reads: its socket and the server's fill up. */
    for (int i = 0; i < 256; i++)
        assert_true(errinj_inject_enter("srv.flood"));
    double before = test_now();
    errinj_server_stop(srv);
    double took = test_now() - before;
    if (took >= DEADLINE_S)
        fail_msg("stop took %.0f ms with a client that does not read", took * 1000);
    close(fd);
    net_inbox_free(&in);
}

struct firing {
    atomic_bool stop;
    atomic_ulong fired;
};

static void *fire_until_stopped(void *arg)
{
    struct firing *f = arg;
    while (!atomic_load(&f->stop)) {
        errinj_inject_enter("srv.busy");
        atomic_fetch_add(&f->fired, 1);
    }
    return NULL;
}

static void *stop_server(void *arg)
{
    errinj_server_stop(arg);
    return NULL;
}

static void start_and_stop_while_another_thread_fires_points(void **state)
{
    (void)state;
    /* A thread firing faster than the consumer makes frames keeps the ring full: stop must still
     * return promptly (it once waited for the drain loop forever, and later framed a whole ring of
     * events first: past this deadline under ThreadSanitizer on a loaded machine). */
    assert_int_equal(errinj_enable("srv.busy", false, NULL), 0);
    struct firing f = {.stop = false, .fired = 0};
    pthread_t firer;
    assert_int_equal(pthread_create(&firer, NULL, fire_until_stopped, &f), 0);
    for (int i = 0; i < 10; i++) {
        errinj_server *srv = start_on("127.0.0.1:0");
        struct net_inbox in = {0};
        int fd = open_stream(errinj_server_port(srv), "injection=srv.busy", &in);
        /* Some event reaches the stream while the other thread keeps firing. */
        if (net_inbox_until(fd, &in, in.len, "\"injection\":\"srv.busy\"", test_now() + DEADLINE_S) == NULL)
            fail_msg("round %d: no event of srv.busy on the stream", i);
        /* Stop on another thread, so that a stop that never returns fails the test instead of hanging it. */
        pthread_t stopper;
        assert_int_equal(pthread_create(&stopper, NULL, stop_server, srv), 0);
        if (!thread_join_within(stopper, DEADLINE_S)) {
            atomic_store(&f.stop, true); /* the firing stops; the stuck stop can then finish */
            pthread_join(firer, NULL);
            pthread_join(stopper, NULL);
            close(fd);
            net_inbox_free(&in);
            fail_msg("round %d: errinj_server_stop() did not return within %d ms while another thread fired "
                     "points (%lu fired)", i, DEADLINE_MS, atomic_load(&f.fired));
        }
        close(fd);
        net_inbox_free(&in);
        assert_false(errinj_is_enabled("srv.busy")); /* stop disabled it */
        assert_int_equal(errinj_enable("srv.busy", false, NULL), 0);
    }
    atomic_store(&f.stop, true);
    assert_int_equal(pthread_join(firer, NULL), 0);
    assert_true(atomic_load(&f.fired) > 0);
}

struct parked {
    const char *name;
    atomic_int rc;
};

static void *park(void *arg)
{
    struct parked *p = arg;
    atomic_store(&p->rc, errinj_inject_wait_for_message(p->name, ERRINJ_FOREVER));
    return NULL;
}

/* Polls errinj_waiters(name) until it reads `n`; false at the deadline. */
static bool wait_for_waiters(const char *name, unsigned n)
{
    double deadline = test_now() + DEADLINE_S;
    while (errinj_waiters(name) != n) {
        if (test_now() >= deadline)
            return false;
        poll(NULL, 0, 1);
    }
    return true;
}

static void stop_releases_a_thread_parked_in_wait_for_message(void **state)
{
    (void)state;
    errinj_server *srv = start_on("127.0.0.1:0");
    struct net_inbox in = {0};
    int fd = open_stream(errinj_server_port(srv), "injection=srv.park&phase=all", &in);
    assert_int_equal(errinj_enable("srv.park", false, NULL), 0);
    struct parked p = {.name = "srv.park", .rc = 12345};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, park, &p), 0);
    if (!wait_for_waiters("srv.park", 1))
        fail_msg("waiters of srv.park is %u after %d ms, expected 1", errinj_waiters("srv.park"), DEADLINE_MS);
    errinj_server_stop(srv);
    if (!thread_join_within(t, DEADLINE_S))
        fail_msg("the parked thread did not return within %d ms of stop", DEADLINE_MS);
    assert_int_equal(atomic_load(&p.rc), 0);
    assert_int_equal(errinj_waiters("srv.park"), 0);
    assert_false(errinj_is_enabled("srv.park"));
    assert_true(net_inbox_to_eof(fd, &in, test_now() + DEADLINE_S));
    close(fd);
    net_inbox_free(&in);
}

/* Options beyond their limits are refused, so that no derived figure (idle timeout, connection
 * limit, poll timeout) overflows; nothing starts. */
static void options_beyond_their_limits_are_einval(void **state)
{
    (void)state;
    errinj_server *srv = NULL;
    errinj_server_opts too_long = {.listen = "127.0.0.1:0", .heartbeat_ms = 86400001u};
    errinj_server_opts too_many = {.listen = "127.0.0.1:0", .max_subscribers = 65537u};
    errinj_server_opts too_deep = {.listen = "127.0.0.1:0", .history = 16777217u};
    assert_int_equal(errinj_server_start(&too_long, &srv), ERRINJ_EINVAL);
    assert_int_equal(errinj_server_start(&too_many, &srv), ERRINJ_EINVAL);
    assert_int_equal(errinj_server_start(&too_deep, &srv), ERRINJ_EINVAL);
    assert_null(srv);
    errinj_server_opts at_limits = {.listen = "127.0.0.1:0", .heartbeat_ms = 86400000u, .max_subscribers = 65536u};
    assert_int_equal(errinj_server_start(&at_limits, &srv), 0);
    errinj_server_stop(srv);
}

int main(void)
{
    setenv("ERRINJ_SEED", "42", 1); /* the process seed, before anything reads it */
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_teardown(fn, disable_everything)
        T(start_refuses_a_null_out_pointer),
        T(stop_of_null_is_ignored),
        T(null_opts_listen_on_the_default_address),
        T(port_zero_picks_a_free_port_that_answers),
        T(a_second_server_in_the_same_process_is_refused),
        T(a_non_loopback_listen_address_is_refused_without_allow_remote),
        T(allow_remote_permits_a_wildcard_listen_address),
        T(malformed_listen_addresses_are_einval),
        T(a_port_in_use_is_eaddrinuse),
        T(ipv6_loopback_listens_and_answers),
        T(start_and_stop_twenty_times_in_a_row),
        T(status_over_a_socket_is_200_json),
        T(a_token_guards_the_socket_api),
        T(a_remote_host_header_is_forbidden_over_the_socket),
        T(names_and_bodies_arrive_as_sent),
        T(a_body_over_one_mib_is_413_and_changes_nothing),
        T(stream_greets_then_delivers_an_event_fired_after_the_greeting),
        T(stream_replays_kept_events_after_since),
        T(a_stream_asking_for_events_no_longer_kept_gets_an_overflow_first),
        T(an_idle_stream_gets_a_ping_every_heartbeat),
        T(status_counts_open_streams),
        T(a_stream_beyond_max_subscribers_is_503),
        T(a_frame_larger_than_one_read_arrives_whole),
        T(stop_ends_an_open_stream),
        T(stop_delivers_the_events_fired_just_before_it),
        T(stop_returns_even_when_a_client_stopped_reading),
        T(start_and_stop_while_another_thread_fires_points),
        T(options_beyond_their_limits_are_einval),
        T(stop_releases_a_thread_parked_in_wait_for_message),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
