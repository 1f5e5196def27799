/*
 * bad_input.c - errinj's server under bad input, over real sockets against a real server (the
 * test host, in a process of its own, with a token): the socket driver of the table of refused
 * requests in tests/lib/refused.c, which test_http.c also runs through the router alone.
 *
 * Each row of that table is a request, written as it travels (raw bytes where that is the
 * point); this file adds scenarios for the attacks that are about time rather than bytes (a
 * client that sends half a request and stalls, one that never reads its stream, more
 * subscribers than allowed). Each row gives the status the server must answer and a substring
 * of its JSON error message (errinj-events(7)), and afterwards the injection state must be what
 * it was before: the list of enabled injections, the parameters and counters of an injection
 * enabled before the first row (with a thread parked in it, which no row may release), and the
 * host must still be alive. A control row that enables something names it, and the check is
 * then "that, and nothing else, changed".
 *
 * Status 0 in a row means "no HTTP reply": the server closed the connection (bytes that are not
 * HTTP) or, for a stalled client, is still waiting for the rest of the request. Rows whose reply
 * comes from libmicrohttpd itself rather than from errinj (a malformed request line, an absurd
 * Content-Length) have an HTML body, so only their status is checked.
 *
 * The stalled connections end by libmicrohttpd's idle timeout, 2 * heartbeat + 30 s (server.c):
 * with ERRINJ_ATTACK_LONG=1 (make stress) the test waits for that and checks it; otherwise it
 * checks that they get nothing, that everybody else is served meanwhile, and closes them.
 *
 * Usage: attack_bad_input PATH-TO-errinj-testhost
 */
#define _GNU_SOURCE
#include "clock.h"
#include "host.h"
#include "net.h"
#include "refused.h"

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
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after setjmp.h, stdarg.h and stddef.h */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

#define TOKEN REFUSED_TOKEN
#define AUTH_LINE "Authorization: Bearer " TOKEN "\r\n"
#define API "/v2/error_injection"
#define MAX_SUBSCRIBERS 8
#define HEARTBEAT_MS 100
#define IO_TIMEOUT_S 20.0
#define DEADLINE_S 30.0
#define ONE_MIB REFUSED_ONE_MIB

static const char *g_testhost;

/* ---- the scenarios, after the table's rows ------------------------------------------------ */

struct ctx;
struct result {
    int status;
    char body[4096];
    char headers[2048];
    bool closed; /* the server closed the connection after its answer */
};

static void subscribers_beyond_the_limit(struct ctx *c, struct result *r);
static void half_requests_that_stall(struct ctx *c, struct result *r);
static void streams_that_are_never_read(struct ctx *c, struct result *r);

/* An attack that takes time: what it is and expects, as a row of the table, and how it runs. */
struct scenario {
    struct refused row;
    void (*run)(struct ctx *c, struct result *r);
};

static const struct scenario g_scenarios[] = {
    {{.what = "more subscribers than allowed", .status = 503, .expect = "too many subscribers"},
     subscribers_beyond_the_limit},
    {{.what = "clients that send half a request and stall", .status = 0}, half_requests_that_stall},
    {{.what = "clients that never read their stream", .status = 200}, streams_that_are_never_read},
};
#define N_SCENARIOS (sizeof(g_scenarios) / sizeof(g_scenarios[0]))
#define N_ROWS (refused_count + N_SCENARIOS)
#define INJ API "/injection/"

/* ---- the context and its checks ------------------------------------------------------------ */

struct ctx {
    struct host host;
    unsigned port;
    const struct refused *row;
    int row_failures, failures;
};

static void row_fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_fail(struct ctx *c, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    printf("    FAIL: %s\n", line);
    fflush(stdout);
    c->row_failures++;
}

/* Replaces {PORT}, {HOST} and {AUTH} in a template of len bytes; appends to out. */
static void expand(const struct ctx *c, const char *tpl, size_t len, struct net_buf *out)
{
    refused_expand(tpl, len, c->port, out);
}

/* A plain authorised request; returns the status, body in r (freed by the caller). */
static int api(struct ctx *c, const char *method, const char *target, const char *body,
               struct net_response *r)
{
    return net_request(c->port, method, target, AUTH_LINE, body, body != NULL ? strlen(body) : 0,
                       IO_TIMEOUT_S, r);
}

/* A field of GET /status, or -1. */
static long long status_field(struct ctx *c, const char *key)
{
    return net_status_field(c->port, AUTH_LINE, key, IO_TIMEOUT_S);
}

/* Waits until the server counts n subscribers: streams a client closed go when the next
 * heartbeat finds them gone, so earlier rows' streams may still be counted for a moment. */
static bool subscribers_become(struct ctx *c, long long n)
{
    return WAIT_UNTIL(status_field(c, "subscribers") == n, DEADLINE_S);
}

/* What no bad input may change. */
struct snapshot {
    char list[4096], pre[1024], enters[64], waiters[64];
};

static bool get_into(struct ctx *c, const char *target, char *out, size_t len)
{
    struct net_response r;
    int status = api(c, "GET", target, NULL, &r);
    snprintf(out, len, "%d %s", status, r.body.data != NULL ? r.body.data : "");
    net_response_free(&r);
    return status == 200;
}

static bool snapshot_take(struct ctx *c, struct snapshot *s)
{
    return get_into(c, API "/injection", s->list, sizeof(s->list)) &
           get_into(c, INJ "attack.pre", s->pre, sizeof(s->pre)) &
           get_into(c, INJ "attack.pre/enters", s->enters, sizeof(s->enters)) &
           get_into(c, INJ "attack.pre/waiters", s->waiters, sizeof(s->waiters));
}

static void snapshot_compare(struct ctx *c, const struct snapshot *before, const struct snapshot *after)
{
    if (strcmp(before->list, after->list) != 0)
        row_fail(c, "enabled list changed: before %s, after %s", before->list, after->list);
    if (strcmp(before->pre, after->pre) != 0)
        row_fail(c, "attack.pre changed: before %s, after %s", before->pre, after->pre);
    if (strcmp(before->enters, after->enters) != 0)
        row_fail(c, "attack.pre enters changed: before %s, after %s", before->enters, after->enters);
    if (strcmp(before->waiters, after->waiters) != 0)
        row_fail(c, "attack.pre waiters changed: before %s, after %s", before->waiters, after->waiters);
}

/* ---- request rows ------------------------------------------------------------------------- */

static void run_request(struct ctx *c, const struct refused *row, struct result *res)
{
    struct net_buf req = {0}, body = {0};
    if (row->raw != NULL) {
        expand(c, row->raw, row->raw_len ? row->raw_len : strlen(row->raw), &req);
    } else {
        refused_body(row, &body);
        char line[8192];
        snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\n", row->method, row->target);
        expand(c, line, strlen(line), &req);
        if (!(row->flags & REFUSED_NO_HOST))
            expand(c, "{HOST}", 6, &req);
        if (!(row->flags & REFUSED_NO_AUTH))
            expand(c, "{AUTH}", 6, &req);
        if (row->headers != NULL)
            expand(c, row->headers, strlen(row->headers), &req);
        if (row->gen == REFUSED_BODY_MIB_PLUS_1_CHUNKED) {
            net_buf_add(&req, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", 49);
            for (size_t off = 0; off < body.len; off += 65536) {
                size_t n = body.len - off < 65536 ? body.len - off : 65536;
                char size[32];
                int k = snprintf(size, sizeof(size), "%zx\r\n", n);
                net_buf_add(&req, size, (size_t)k);
                net_buf_add(&req, body.data + off, n);
                net_buf_add(&req, "\r\n", 2);
            }
            net_buf_add(&req, "0\r\n\r\n", 5);
        } else {
            snprintf(line, sizeof(line), "Content-Length: %zu\r\nConnection: close\r\n\r\n", body.len);
            net_buf_add(&req, line, strlen(line));
            net_buf_add(&req, body.data, body.len);
        }
    }
    res->status = 0;
    res->body[0] = '\0';
    int fd = net_connect(c->port, IO_TIMEOUT_S, 0);
    if (fd < 0) {
        row_fail(c, "cannot connect: %s", strerror(errno));
    } else {
        struct net_response r;
        memset(&r, 0, sizeof(r));
        /* The server may answer and close before it has read everything (it never does for
         * errinj's own replies, but libmicrohttpd may for its own): a failed send is not a failure. */
        net_send_all(fd, req.data, req.len);
        net_read_response(fd, &r);
        res->status = r.status;
        snprintf(res->body, sizeof(res->body), "%s", r.body.data != NULL ? r.body.data : "");
        snprintf(res->headers, sizeof(res->headers), "%s", r.headers);
        /* Closed: the answer is followed by the end of the stream, not by another answer or a wait. */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char more;
        res->closed = poll(&pfd, 1, 5000) > 0 && recv(fd, &more, 1, 0) <= 0;
        net_response_free(&r);
        close(fd);
    }
    free(req.data);
    free(body.data);
}

/* ---- scenario rows -------------------------------------------------------------------------- */

static void subscribers_beyond_the_limit(struct ctx *c, struct result *res)
{
    const long long subs0 = 0;
    if (!subscribers_become(c, subs0))
        row_fail(c, "streams of earlier rows are still counted: %lld", status_field(c, "subscribers"));
    struct net_sse s[MAX_SUBSCRIBERS];
    int opened = 0;
    for (long long i = subs0; i < MAX_SUBSCRIBERS; i++) {
        if (!net_sse_open(&s[opened], c->port, API "/events", AUTH_LINE, IO_TIMEOUT_S, 0) ||
            s[opened].status != 200) {
            row_fail(c, "stream %d of %d: status %d", opened + 1, MAX_SUBSCRIBERS, s[opened].status);
            net_sse_close(&s[opened], true);
            break;
        }
        opened++;
    }
    /* One more than allowed. Its reply is a plain JSON error, read as a response. */
    struct net_response r;
    net_request(c->port, "GET", API "/events", AUTH_LINE, NULL, 0, IO_TIMEOUT_S, &r);
    res->status = r.status;
    snprintf(res->body, sizeof(res->body), "%s", r.body.data);
    net_response_free(&r);
    /* The others are still served meanwhile. */
    if (status_field(c, "subscribers") != MAX_SUBSCRIBERS)
        row_fail(c, "status counts %lld subscribers, expected %d", status_field(c, "subscribers"),
                 MAX_SUBSCRIBERS);
    /* Abruptly gone: the heartbeat finds them, and the slots are free again. */
    for (int i = 0; i < opened; i++)
        net_sse_close(&s[i], true);
    if (!subscribers_become(c, subs0))
        row_fail(c, "subscribers still %lld after the clients left", status_field(c, "subscribers"));
    struct net_sse again;
    if (!net_sse_open(&again, c->port, API "/events", AUTH_LINE, IO_TIMEOUT_S, 0) || again.status != 200)
        row_fail(c, "a stream after the others left: status %d", again.status);
    net_sse_close(&again, false);
    if (!subscribers_become(c, subs0))
        row_fail(c, "subscribers still %lld at the end", status_field(c, "subscribers"));
}

/* Shows that the server still serves others: REST answers, and a stream gets an event fired now. */
static void others_are_served(struct ctx *c, const char *when)
{
    struct net_response r;
    if (api(c, "POST", INJ "attack.probe", NULL, &r) != 200)
        row_fail(c, "%s: enable attack.probe: %d %s", when, r.status, r.body.data);
    net_response_free(&r);
    struct net_sse s;
    if (!net_sse_open(&s, c->port, API "/events?injection=attack.probe", AUTH_LINE, IO_TIMEOUT_S, 0) ||
        s.status != 200) {
        row_fail(c, "%s: a new stream: status %d", when, s.status);
    } else {
        /* Fire only once the stream is registered: ": connected" is its proof. */
        while (s.comments == 0 && !s.closed) {
            struct net_sse_event ev;
            if (net_sse_next(&s, &ev) == 0 && !net_sse_read(&s, 4096))
                break;
        }
        char line[256];
        if (!host_send(&c->host, "fire enter attack.probe 1") ||
            !host_line(&c->host, line, sizeof(line), DEADLINE_S))
            row_fail(c, "%s: the host did not fire", when);
        struct net_sse_event ev;
        int got = 0;
        double deadline = test_now() + DEADLINE_S;
        while (got == 0 && test_now() < deadline && !s.closed) {
            got = net_sse_next(&s, &ev);
            if (got == 0)
                net_sse_read(&s, 65536);
        }
        if (got != 1 || strstr(ev.data, "\"attack.probe\"") == NULL)
            row_fail(c, "%s: the stream did not get the event fired meanwhile", when);
    }
    net_sse_close(&s, false);
    if (api(c, "DELETE", INJ "attack.probe", NULL, &r) != 200)
        row_fail(c, "%s: disable attack.probe: %d", when, r.status);
    net_response_free(&r);
}

static void half_requests_that_stall(struct ctx *c, struct result *res)
{
    static const char *const halves[] = {
        "G",
        "GET " API "/sta",
        "GET " API "/status HTTP/1.1\r\n",
        "GET " API "/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor",
        "POST " INJ "attack.half HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 100\r\n\r\n{\"k\":",
        "POST " INJ "attack.half HTTP/1.1\r\n{HOST}{AUTH}Transfer-Encoding: chunked\r\n\r\n5\r\n{\"k\":\r\n",
        "DELETE " API "/injection HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 1\r\n\r\n",
        "POST " INJ "attack.pre/message HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 10\r\n\r\n",
    };
    enum { N_HALF = sizeof(halves) / sizeof(halves[0]), N_BIG = 4 };
    long rss0 = proc_rss_kib(c->host.pid);
    int fds[N_HALF + N_BIG];
    int n = 0;
    for (size_t i = 0; i < N_HALF; i++, n++) {
        struct net_buf b = {0};
        expand(c, halves[i], strlen(halves[i]), &b);
        fds[n] = net_connect(c->port, IO_TIMEOUT_S, 0);
        if (fds[n] < 0 || !net_send_all(fds[n], b.data, b.len))
            row_fail(c, "half request %zu: cannot send", i);
        free(b.data);
    }
    /* The largest a stalled client can make the server hold: all but the last byte of 1 MiB. */
    char *big = malloc(ONE_MIB);
    memset(big, ' ', ONE_MIB);
    big[0] = '{';
    for (int i = 0; i < N_BIG; i++, n++) {
        static const char head[] =
            "POST " INJ "attack.half HTTP/1.1\r\n{HOST}{AUTH}Content-Length: 1048576\r\n\r\n";
        struct net_buf b = {0};
        expand(c, head, strlen(head), &b);
        fds[n] = net_connect(c->port, IO_TIMEOUT_S, 0);
        if (fds[n] < 0 || !net_send_all(fds[n], b.data, b.len) || !net_send_all(fds[n], big, ONE_MIB - 1))
            row_fail(c, "1 MiB - 1 body %d: cannot send", i);
        free(b.data);
    }
    free(big);
    /* Meanwhile: everybody else is served, and the stalled clients get nothing. */
    others_are_served(c, "while clients stall");
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0 && !net_nothing_pending(fds[i]))
            row_fail(c, "stalled client %d got a reply or was closed before the idle timeout", i);
    struct net_response r;
    if (api(c, "GET", INJ "attack.half", NULL, &r) != 200 || strstr(r.body.data, "\"enabled\":false") == NULL)
        row_fail(c, "attack.half: %d %s", r.status, r.body.data);
    net_response_free(&r);
    long rss1 = proc_rss_kib(c->host.pid);
    /* Each 1 MiB - 1 body is held until the request completes or times out: bounded by
     * the connection limit times 1 MiB. Here: 4 MiB and change. */
    long bound = (N_BIG + 16) * 1024;
    printf("    server RSS %ld KiB before, %ld KiB with %d stalled clients (%d holding 1 MiB - 1 each)\n",
           rss0, rss1, n, N_BIG);
    if (!UNDER_SANITIZER && rss1 - rss0 > bound)
        row_fail(c, "server RSS grew by %ld KiB with stalled clients (bound %ld KiB)", rss1 - rss0, bound);
    if (host_long_run()) {
        /* libmicrohttpd's idle timeout, as server.c sets it: 2 * heartbeat + 30 s. */
        double idle = 2 * HEARTBEAT_MS / 1000 + 30, t0 = test_now();
        for (int i = 0; i < n; i++)
            if (fds[i] >= 0 && !net_closed_by_peer(fds[i], idle + 15 - (test_now() - t0)))
                row_fail(c, "stalled client %d still open %.0f s after it stalled", i, test_now() - t0);
        printf(
            "    the server closed all %d stalled clients %.1f s after they stalled (idle timeout %.0f s)\n",
            n, test_now() - t0, idle);
        others_are_served(c, "after the idle timeout");
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            net_reset(fds[i]);
    res->status = 0; /* what a stalled client gets: nothing */
}

/* ---- streams nobody reads ----------------------------------------------------------------- */

struct reader {
    struct ctx *c;
    pthread_t thread;
    struct net_sse s;
    _Atomic uint64_t last_id, until; /* until: 0 while the flood runs */
    atomic_ulong events, overflows, dropped;
    atomic_bool done, failed;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    for (;;) {
        struct net_sse_event ev;
        int got = net_sse_next(&rd->s, &ev);
        if (got < 0) {
            atomic_store(&rd->failed, true);
            break;
        }
        if (got == 1) {
            if (ev.overflow) {
                atomic_fetch_add(&rd->overflows, 1);
                atomic_fetch_add(&rd->dropped, ev.dropped);
            } else {
                atomic_fetch_add(&rd->events, 1);
                atomic_store(&rd->last_id, ev.id);
            }
        } else {
            uint64_t until = atomic_load(&rd->until);
            if (until != 0 && atomic_load(&rd->last_id) >= until)
                break;
            if (!net_sse_read(&rd->s, 65536)) {
                atomic_store(&rd->failed, true);
                break;
            }
        }
    }
    atomic_store(&rd->done, true);
    return NULL;
}

struct rest_loop {
    struct ctx *c;
    pthread_t thread;
    atomic_bool stop;
    atomic_ulong calls, bad;
    atomic_long max_us;
};

static void *rest_main(void *arg)
{
    struct rest_loop *rl = arg;
    while (!atomic_load(&rl->stop)) {
        struct net_response r;
        double t0 = test_now();
        int status = api(rl->c, "GET", INJ "attack.pre/enters", NULL, &r);
        long us = (long)((test_now() - t0) * 1e6);
        net_response_free(&r);
        atomic_fetch_add(&rl->calls, 1);
        if (status != 200)
            atomic_fetch_add(&rl->bad, 1);
        long max = atomic_load(&rl->max_us);
        while (us > max && !atomic_compare_exchange_weak(&rl->max_us, &max, us))
            ;
    }
    return NULL;
}

static bool host_fire(struct ctx *c, const char *name, int times)
{
    char line[256];
    return host_send(&c->host, "fire enter %s %d", name, times) &&
           host_line(&c->host, line, sizeof(line), 120.0) && strncmp(line, "ok", 2) == 0;
}

static void streams_that_are_never_read(struct ctx *c, struct result *res)
{
    enum { N_DEAF = 4, FLOOD = 4000 };
    const long long subs0 = 0;
    if (!subscribers_become(c, subs0))
        row_fail(c, "streams of earlier rows are still counted: %lld", status_field(c, "subscribers"));
    /* Big events fill buffers fast: a 2 KB parameter in each. */
    char body[2100];
    memset(body, 0, sizeof(body));
    strcpy(body, "{\"pad\":\"");
    memset(body + 8, 'p', 2000);
    strcpy(body + 2008, "\"}");
    struct net_response r;
    if (api(c, "POST", INJ "attack.flood", body, &r) != 200)
        row_fail(c, "enable attack.flood: %d", r.status);
    net_response_free(&r);

    struct net_sse deaf[N_DEAF];
    res->status = 200;
    for (int i = 0; i < N_DEAF; i++) {
        /* A small receive buffer: the kernel holds little, and the server's writes block soon. */
        if (!net_sse_open(&deaf[i], c->port, API "/events", AUTH_LINE, IO_TIMEOUT_S, 4096) ||
            deaf[i].status != 200) {
            row_fail(c, "deaf stream %d: status %d", i, deaf[i].status);
            res->status = deaf[i].status;
        }
    }
    struct reader rd = {.c = c};
    if (!net_sse_open(&rd.s, c->port, API "/events?injection=attack.flood", AUTH_LINE, IO_TIMEOUT_S, 0) ||
        rd.s.status != 200)
        row_fail(c, "reading stream: status %d", rd.s.status);
    pthread_create(&rd.thread, NULL, reader_main, &rd);
    struct rest_loop rl = {.c = c};
    pthread_create(&rl.thread, NULL, rest_main, &rl);

    /* Warm up (the history fills and stays full), then measure what more of the same costs. */
    if (!host_fire(c, "attack.flood", FLOOD))
        row_fail(c, "the host did not fire the first flood");
    long rss_warm = proc_rss_kib(c->host.pid);
    if (!host_fire(c, "attack.flood", FLOOD))
        row_fail(c, "the host did not fire the second flood");
    long rss_end = proc_rss_kib(c->host.pid);
    long long final = status_field(c, "seq");
    atomic_store(&rd.until, (uint64_t)(final > 0 ? final : 1));
    if (!WAIT_UNTIL(atomic_load(&rd.done), 60.0))
        row_fail(c, "the reading stream reached seq %llu of %lld",
                 (unsigned long long)atomic_load(&rd.last_id), final);
    /* At least one REST call was answered while the deaf streams hung (on a busy machine the
     * flood may be over before the REST thread ran at all). */
    if (!WAIT_UNTIL(atomic_load(&rl.calls) > 0, DEADLINE_S))
        row_fail(c, "no REST call was answered while the streams were not read");
    atomic_store(&rl.stop, true);
    pthread_join(rl.thread, NULL);
    if (atomic_load(&rd.done))
        pthread_join(rd.thread, NULL);
    else
        shutdown(rd.s.fd, SHUT_RDWR), pthread_join(rd.thread, NULL);
    if (atomic_load(&rd.failed) || atomic_load(&rd.last_id) != (uint64_t) final)
        row_fail(c, "reading stream: last id %llu, final seq %lld%s",
                 (unsigned long long)atomic_load(&rd.last_id), final,
                 atomic_load(&rd.failed) ? ", stream failed" : "");
    if (atomic_load(&rl.calls) == 0 || atomic_load(&rl.bad) != 0)
        row_fail(c, "REST during the flood: %lu calls, %lu not 200", atomic_load(&rl.calls),
                 atomic_load(&rl.bad));
    printf("    %d events of 2 KB past %d streams never read: the reading stream got %lu events + %lu "
           "dropped in %lu "
           "overflow notices, %lu REST calls answered meanwhile (slowest %.1f ms); server RSS %ld KiB after "
           "the first "
           "half, %ld KiB after the second\n",
           2 * FLOOD, N_DEAF, atomic_load(&rd.events), atomic_load(&rd.dropped), atomic_load(&rd.overflows),
           atomic_load(&rl.calls), atomic_load(&rl.max_us) / 1e3, rss_warm, rss_end);
    /* The history is 1024 frames (--history): what the second half adds must be noise. */
    if (!UNDER_SANITIZER && rss_end - rss_warm > 16 * 1024)
        row_fail(c, "server RSS grew by %ld KiB during the second half of the flood", rss_end - rss_warm);
    if (status_field(c, "subscribers") != subs0 + N_DEAF + 1)
        row_fail(c, "status counts %lld subscribers, expected %lld", status_field(c, "subscribers"),
                 subs0 + N_DEAF + 1);
    net_sse_close(&rd.s, false);
    for (int i = 0; i < N_DEAF; i++)
        net_sse_close(&deaf[i], true);
    if (api(c, "DELETE", INJ "attack.flood", NULL, &r) != 200)
        row_fail(c, "disable attack.flood: %d", r.status);
    net_response_free(&r);
    if (!subscribers_become(c, subs0))
        row_fail(c, "subscribers still %lld after the clients left", status_field(c, "subscribers"));
}

/* ---- the test ---------------------------------------------------------------------------- */

static void check_result(struct ctx *c, const struct refused *row, const struct result *res)
{
    if (row->header != NULL && strcasestr(res->headers, row->header) == NULL)
        row_fail(c, "no \"%s\" header in %.300s", row->header, res->headers);
    if (row->closes && !res->closed)
        row_fail(c, "the connection stayed open after the answer");
    if (res->status != row->status)
        row_fail(c, "status %d, expected %d (body: %.200s)", res->status, row->status, res->body);
    if (row->expect == NULL || res->status != row->status)
        return;
    if (res->status < 400) {
        if (strstr(res->body, row->expect) == NULL)
            row_fail(c, "body %.300s does not contain %s", res->body, row->expect);
        return;
    }
    json_error_t jerr;
    json_t *j = json_loads(res->body, 0, &jerr);
    json_t *message = json_object_get(j, "message"), *code = json_object_get(j, "code");
    if (!json_is_object(j) || !json_is_string(message) || !json_is_integer(code) || json_object_size(j) != 2)
        row_fail(c, "the error body is not {\"message\": string, \"code\": int}: %.300s", res->body);
    else if (strstr(json_string_value(message), row->expect) == NULL)
        row_fail(c, "message \"%s\" does not contain \"%s\"", json_string_value(message), row->expect);
    else if (json_integer_value(code) != res->status)
        row_fail(c, "code %lld in a %d reply", (long long)json_integer_value(code), res->status);
    json_decref(j);
}

static void bad_inputs_get_their_status_and_change_nothing(void **state)
{
    (void)state;
    static struct ctx ctx;
    struct ctx *c = &ctx;
    char max_subs[16], heartbeat[16];
    snprintf(max_subs, sizeof(max_subs), "%d", MAX_SUBSCRIBERS);
    snprintf(heartbeat, sizeof(heartbeat), "%d", HEARTBEAT_MS);
    const char *args[] = {"--token",           TOKEN,       "--heartbeat-ms",
                          heartbeat,           "--history", "1024",
                          "--max-subscribers", max_subs,    NULL};
    assert_true(host_start(&c->host, g_testhost, args, 0));
    c->port = c->host.port;

    /* The state to keep: an injection with parameters, fired three times, one thread parked in it. */
    struct net_response r;
    assert_int_equal(api(c, "POST", INJ "attack.pre", "{\"k\":\"v\",\"n\":7}", &r), 200);
    net_response_free(&r);
    char line[256];
    assert_true(host_send(&c->host, "wait attack.pre 600000"));
    assert_true(host_line(&c->host, line, sizeof(line), DEADLINE_S));
    assert_string_equal(line, "started 1");
    if (!WAIT_UNTIL(status_field(c, "seq") >= 2, DEADLINE_S))
        fail_msg("the parked thread never published its waiting event");
    assert_true(host_send(&c->host, "fire enter attack.pre 2"));
    assert_true(host_line(&c->host, line, sizeof(line), DEADLINE_S));
    assert_string_equal(line, "ok 1");
    struct snapshot base;
    assert_true(snapshot_take(c, &base));
    printf("state kept through every row: list %s | attack.pre %s | enters %s | waiters %s\n", base.list,
           base.pre, base.enters, base.waiters);
    assert_string_equal(base.enters, "200 3");
    assert_string_equal(base.waiters, "200 1");

    int passed = 0, ran = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct scenario *scenario = i < refused_count ? NULL : &g_scenarios[i - refused_count];
        const struct refused *row = scenario != NULL ? &scenario->row : &refused_requests[i];
        /* The router alone takes these; no socket carries them to it as they are (refused.h). */
        if (row->flags & (REFUSED_PURE_ONLY | REFUSED_ALLOW_REMOTE))
            continue;
        c->row = row;
        c->row_failures = 0;
        ran++;
        struct snapshot before, after;
        if (!snapshot_take(c, &before))
            row_fail(c, "cannot read the state before the row");
        struct result res = {0};
        double t0 = test_now();
        if (scenario != NULL)
            scenario->run(c, &res);
        else
            run_request(c, row, &res);
        check_result(c, row, &res);
        if (row->enables != NULL) {
            char target[600];
            snprintf(target, sizeof(target), INJ "%s", row->enables);
            /* Names here have no characters that need encoding but '/'. */
            char enc[700] = INJ;
            for (const char *p = row->enables; *p; p++) {
                size_t len = strlen(enc);
                if (*p == '/')
                    snprintf(enc + len, sizeof(enc) - len, "%%2F");
                else
                    snprintf(enc + len, sizeof(enc) - len, "%c", *p);
            }
            char got[1024];
            get_into(c, enc, got, sizeof(got));
            if (strstr(got, "\"enabled\":true") == NULL)
                row_fail(c, "%s is not enabled: %s", row->enables, got);
            struct net_response d;
            api(c, "DELETE", enc, NULL, &d);
            net_response_free(&d);
        }
        if (!snapshot_take(c, &after))
            row_fail(c, "cannot read the state after the row");
        snapshot_compare(c, &before, &after);
        snapshot_compare(c, &base, &after);
        if (!host_alive(&c->host))
            row_fail(c, "the server process died");
        char message[160] = "";
        json_t *j = json_loads(res.body, 0, NULL);
        if (json_is_string(json_object_get(j, "message")))
            snprintf(message, sizeof(message), " \"%s\"", json_string_value(json_object_get(j, "message")));
        json_decref(j);
        printf("%s [%3zu] %-60.60s -> %d%s (%.2f s)\n", c->row_failures ? "FAIL" : "ok  ", i + 1, row->what,
               res.status, message, test_now() - t0);
        fflush(stdout);
        if (c->row_failures == 0)
            passed++;
        c->failures += c->row_failures > 0;
        if (!host_alive(&c->host))
            break;
    }

    /* The parked thread was never released by any row; stopping the server releases it with 0. */
    assert_true(host_send(&c->host, "waiters attack.pre"));
    assert_true(host_line(&c->host, line, sizeof(line), DEADLINE_S));
    assert_string_equal(line, "ok 1");
    int rc = host_quit(&c->host, 60.0);
    bool released = false;
    while (host_line(&c->host, line, sizeof(line), 0))
        released |= strcmp(line, "done 1 0") == 0;
    printf("bad input: %d of %d rows passed; the host exited with %d%s\n", passed, ran, rc,
           released ? ", its parked thread released with 0 at stop" : "");
    assert_int_equal(c->failures, 0);
    assert_int_equal(rc, 0);
    assert_true(released);
}

int main(int argc, char **argv)
{
    g_testhost = host_program(argc, argv);
    if (g_testhost == NULL)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_inputs_get_their_status_and_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
