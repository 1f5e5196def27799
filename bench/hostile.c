/*
 * hostile.c - bench_hostile: what careless and hostile clients cost the server, measured against
 * the test host (tests/host/testhost.c) in a process of its own, through the same client and
 * host drivers as the attack tests (tests/lib: net.c, host.c). Each part prints one line of
 * key=value figures for bench/run.py, which tabulates them in docs/BENCHMARKS.md's section 5:
 *
 *   churn    streams opened and closed at 50 a second for `--churn-s` seconds (FIN and RST in
 *            turn), default limits: streams opened, refused, and the time of the first 503;
 *   emfile   a host limited to 64 descriptors filled with streams, one closed: seconds until a
 *            REST request is answered again (median and worst of `--rounds`);
 *   slow     max_subscribers streams plus 2,000 idle, slow (a byte every 5 s) and half-sent
 *            connections: latency of new REST requests (p50, p99, max of 200);
 *   bigkey   an injection with 100,000 parameter keys (a 0.9 MB body): the fire on the firing
 *            thread, a REST request sent at the fire, and the event reaching a stream;
 *   names    `--names` distinct names enabled and disabled over REST: the host's RSS before and
 *            after.
 *
 * Usage: bench_hostile --host PATH-TO-testhost [--only churn,emfile,slow,bigkey,names]
 *                      [--churn-s 30] [--rounds 5] [--names 100000]
 * No figure is asserted: the attack tests check the bounds, this reports the numbers.
 */
#define _GNU_SOURCE
#include "clock.h"
#include "host.h"
#include "net.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define API "/v2/error_injection"
#define IO_TIMEOUT_S 20.0

static const char *g_exe;

static void die(const char *what)
{
    fprintf(stderr, "bench_hostile: %s\n", what);
    exit(1);
}

static void start(struct host *h, const char *const *args, long nofile)
{
    if (!host_start(h, g_exe, args, nofile))
        die("the test host did not start");
}

static void pause_s(double s)
{
    struct pollfd none;
    if (s > 0)
        poll(&none, 0, (int)(s * 1000)); /* pacing is what is measured */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i];
}

/* One REST request on a new connection: its latency in seconds, or -1 when not answered 200. */
static double rest_latency(unsigned port)
{
    struct net_response r;
    double t0 = test_now();
    int status = net_request(port, "GET", API "/status", NULL, NULL, 0, IO_TIMEOUT_S, &r);
    double dt = test_now() - t0;
    net_response_free(&r);
    return status == 200 ? dt : -1;
}

/* ---- churn ---- */

static void churn(double seconds)
{
    struct host h;
    const char *args[] = {NULL}; /* defaults: heartbeat 15 s, 1024 subscribers */
    start(&h, args, 0);
    double t0 = test_now(), next = t0, first_503 = -1;
    int opened = 0, refused = 0;
    while (test_now() - t0 < seconds) {
        struct net_sse s;
        if (net_sse_open_connected(&s, h.port, API "/events", NULL, 5.0, 0)) {
            opened++;
        } else {
            refused++;
            if (first_503 < 0)
                first_503 = test_now() - t0;
        }
        net_sse_close(&s, (opened + refused) % 2 == 0);
        next += 0.02;
        pause_s(next - test_now());
    }
    printf("hostile churn seconds=%.0f rate=50 opened=%d refused=%d first_503_s=%.1f\n", seconds, opened, refused,
           first_503);
    host_quit(&h, 30.0);
}

/* ---- emfile ---- */

static void emfile(int rounds)
{
    enum { NOFILE = 64, MAX = 200 };
    struct host h;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    start(&h, args, NOFILE);
    double *resume = calloc((size_t)rounds, sizeof(*resume));
    struct net_sse *streams = calloc(MAX, sizeof(*streams));
    if (resume == NULL || streams == NULL)
        die("out of memory");
    for (int r = 0; r < rounds; r++) {
        int n = 0;
        while (n < MAX && net_sse_open_connected(&streams[n], h.port, API "/events", NULL, 2.0, 0))
            n++;
        if (n < MAX)
            net_sse_close(&streams[n], true); /* the one refused */
        net_sse_close(&streams[0], false);
        double t0 = test_now();
        while (rest_latency(h.port) < 0 && test_now() - t0 < 120)
            ;
        resume[r] = test_now() - t0;
        for (int i = 1; i < n; i++)
            net_sse_close(&streams[i], false);
        double w = test_now();
        while (net_status_field(h.port, NULL, "subscribers", 5.0) != 0 && test_now() - w < 30)
            pause_s(0.01);
    }
    printf("hostile emfile nofile=%d rounds=%d resume_median_s=%.3f resume_max_s=%.3f\n", NOFILE, rounds,
           pct(resume, rounds, 50), pct(resume, rounds, 100));
    free(resume);
    free(streams);
    host_quit(&h, 30.0);
}

/* ---- slow ---- */

static void slow(void)
{
    enum { STREAMS = 1024, SLOW = 2000, REQUESTS = 200 };
    struct host h;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    start(&h, args, 8192);
    struct net_sse *streams = calloc(STREAMS, sizeof(*streams));
    int *fds = calloc(SLOW, sizeof(*fds));
    double *lat = calloc(REQUESTS, sizeof(*lat));
    if (streams == NULL || fds == NULL || lat == NULL)
        die("out of memory");
    int opened = 0;
    while (opened < STREAMS && net_sse_open_connected(&streams[opened], h.port, API "/events", NULL, 5.0, 0))
        opened++;
    static const char head[] = "GET " API "/status HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    int slow_open = 0;
    for (int i = 0; i < SLOW; i++) {
        fds[i] = net_connect(h.port, 5.0, 0);
        if (fds[i] < 0)
            continue;
        slow_open++;
        if (i % 3 == 1)
            net_send_all(fds[i], head, 10); /* half-sent */
    }
    /* The slow third trickles a byte every 5 s while the REST requests are measured. */
    double next_byte = test_now() + 5.0;
    size_t trickled = 0;
    int answered = 0;
    for (int i = 0; i < REQUESTS; i++) {
        if (test_now() >= next_byte) {
            for (int k = 2; k < SLOW; k += 3)
                if (fds[k] >= 0)
                    net_send_all(fds[k], head + trickled % (sizeof(head) - 1), 1);
            trickled++;
            next_byte += 5.0;
        }
        lat[i] = rest_latency(h.port);
        if (lat[i] >= 0)
            answered++;
        else
            lat[i] = IO_TIMEOUT_S;
        pause_s(0.02);
    }
    printf("hostile slow streams=%d slow=%d requests=%d answered=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", opened,
           slow_open, REQUESTS, answered, pct(lat, REQUESTS, 50) * 1e3, pct(lat, REQUESTS, 99) * 1e3,
           pct(lat, REQUESTS, 100) * 1e3);
    for (int i = 0; i < SLOW; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int i = 0; i < opened; i++)
        net_sse_close(&streams[i], false);
    free(streams);
    free(fds);
    free(lat);
    host_quit(&h, 60.0);
}

/* ---- bigkey ---- */

static void bigkey(void)
{
    enum { KEYS = 100000 };
    struct host h;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    start(&h, args, 0);
    size_t cap = (size_t)KEYS * 16 + 16, len = 0;
    char *body = malloc(cap);
    if (body == NULL)
        die("out of memory");
    body[len++] = '{';
    /* {"aaaa":"","aaab":"",...}: 100,000 keys in about 1 MB, as the attack test sends them. */
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < KEYS; i++) {
        char key[5] = {0};
        for (int d = 0, n = i; d < 4; d++, n /= 36)
            key[d] = digits[n % 36];
        len += (size_t)snprintf(body + len, cap - len, "%s\"%s\":\"\"", i ? "," : "", key);
    }
    body[len++] = '}';
    struct net_response r;
    if (net_request(h.port, "POST", API "/injection/bench.bigkey", NULL, body, len, IO_TIMEOUT_S, &r) != 200)
        die("enable of the 100,000-key injection failed");
    net_response_free(&r);
    struct net_sse s;
    if (!net_sse_open_connected(&s, h.port, API "/events?injection=bench.bigkey", NULL, IO_TIMEOUT_S, 0))
        die("no stream");
    char line[128];
    double t0 = test_now();
    host_send(&h, "fire enter bench.bigkey");
    double rest = rest_latency(h.port); /* sent at the fire: the server thread builds the frame now */
    if (!host_line(&h, line, sizeof(line), 120))
        die("the fire did not return");
    double fired = test_now() - t0;
    struct net_sse_event ev;
    double event = net_sse_next_event(&s, &ev) > 0 ? test_now() - t0 : -1;
    printf("hostile bigkey keys=%d body_bytes=%zu fire_ms=%.2f rest_during_ms=%.2f event_ms=%.2f event_bytes=%zu\n",
           KEYS, len, fired * 1e3, rest * 1e3, event * 1e3, event > 0 ? ev.data_len : 0);
    net_sse_close(&s, false);
    free(body);
    host_quit(&h, 60.0);
}

/* ---- names ---- */

static void names(long count)
{
    struct host h;
    const char *args[] = {"--heartbeat-ms", "60000", NULL};
    start(&h, args, 0);
    int fd = -1;
    struct net_response r;
    net_keepalive_request(&fd, h.port, "GET", API "/status", IO_TIMEOUT_S, &r);
    net_response_free(&r);
    long before = proc_rss_kib(h.pid);
    double t0 = test_now();
    char target[128];
    for (long i = 0; i < count; i++) {
        snprintf(target, sizeof(target), API "/injection/bench.name.%07ld", i);
        net_keepalive_request(&fd, h.port, "POST", target, IO_TIMEOUT_S, &r);
        net_response_free(&r);
        net_keepalive_request(&fd, h.port, "DELETE", target, IO_TIMEOUT_S, &r);
        net_response_free(&r);
    }
    double seconds = test_now() - t0;
    long after = proc_rss_kib(h.pid);
    printf("hostile names count=%ld seconds=%.1f rss_before_kib=%ld rss_after_kib=%ld\n", count, seconds, before,
           after);
    if (fd >= 0)
        close(fd);
    host_quit(&h, 60.0);
}

int main(int argc, char **argv)
{
    const char *only = "churn,emfile,slow,bigkey,names";
    double churn_s = 30;
    int rounds = 5;
    long name_count = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            g_exe = argv[i + 1];
        else if (strcmp(argv[i], "--only") == 0)
            only = argv[i + 1];
        else if (strcmp(argv[i], "--churn-s") == 0)
            churn_s = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--names") == 0)
            name_count = atol(argv[i + 1]);
    }
    if (g_exe == NULL || rounds < 1)
        die("usage: bench_hostile --host PATH-TO-testhost [--only churn,emfile,slow,bigkey,names] [--churn-s S] "
            "[--rounds N] [--names N]");
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl); /* 2,000 slow connections and 1,024 streams */
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strstr(only, "churn"))
        churn(churn_s);
    if (strstr(only, "emfile"))
        emfile(rounds);
    if (strstr(only, "slow"))
        slow();
    if (strstr(only, "bigkey"))
        bigkey();
    if (strstr(only, "names"))
        names(name_count);
    return 0;
}
