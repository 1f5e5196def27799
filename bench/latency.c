/*
 * latency.c - a test written in C that makes kvnode fire a point and waits to know it did,
 * over errinj's event stream: how long from the fire to the test knowing.
 *
 *     bench_latency --kv HOST:PORT --api HOST:PORT --mode socket|ws|curl|errinjctl [--tool PATH]
 *                   [--point NAME] [--hits N] [--warmup N] [--max-delay-ms MS] --out FILE
 *
 * Each hit is what a test does: it starts waiting, the server reaches the point a random delay
 * later (uniform in [0, max-delay) ms; for a push stream the delay changes nothing, it is there
 * so that every method of the bench sees the same schedule), and the test learns it.
 * The fire is a PUT on kvnode's line protocol, with the point enabled (kv_put_fail: every PUT
 * fires it once). t_send is CLOCK_REALTIME just before send(); t_known is CLOCK_REALTIME when
 * the event's last line was parsed; ts_ns is the event's own CLOCK_REALTIME of publication.
 * One line per hit goes to FILE: "t_send t_known ts_ns" in ns.
 *
 * Modes: socket, this program's own reader on a TCP socket (HTTP/1.1, chunked); ws, the same
 * reader on a WebSocket session (GET .../ws?injection=NAME, frames); curl, `curl -sN`
 * with its output read through a pipe; errinjctl, `errinjctl events --json` through a pipe.
 * Events are matched by their `enters` count, so a late or stale event is never taken for the
 * current hit.
 */
#define _GNU_SOURCE
#include "sse_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_latency: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int tcp_connect(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
        die("bad address %s", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        die("cannot resolve %s", hostport);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        die("cannot connect to %s: %s", hostport, strerror(errno));
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("send: %s", strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

/* Runs argv with its stdout on a pipe; returns the read end. */
static int spawn_reader(char *const argv[], pid_t *pid)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    *pid = fork();
    if (*pid < 0)
        die("fork: %s", strerror(errno));
    if (*pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "bench_latency: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(p[1]);
    return p[0];
}

/* ---- the stream ------------------------------------------------------------------------ */

struct waiter {
    const char *point;
    bool greeted;
    bool have_last;
    uint64_t last_enters; /* the enters count of the newest event of the point seen */
    uint64_t want;        /* 0: any event of the point; else this enters count */
    bool found;
    int64_t t_known;
    uint64_t ts_ns;
};

static void on_event(struct sse_stream *s, const struct sse_event *ev, void *arg)
{
    (void)s;
    struct waiter *w = arg;
    int64_t now = real_ns();
    if (ev->name[0] != '\0' || ev->data_len == 0)
        return;
    char needle[300];
    snprintf(needle, sizeof(needle), "\"injection\":\"%s\"", w->point);
    uint64_t enters = 0, ts = 0;
    if (strstr(ev->data, needle) == NULL || !sse_json_u64(ev->data, ev->data_len, "enters", &enters))
        return;
    sse_json_u64(ev->data, ev->data_len, "ts_ns", &ts);
    w->have_last = true;
    w->last_enters = enters;
    if (!w->found && (w->want == 0 || enters == w->want)) {
        w->found = true;
        w->t_known = now;
        w->ts_ns = ts;
    }
}

static void on_comment(struct sse_stream *s, const char *text, size_t len, void *arg)
{
    (void)s;
    struct waiter *w = arg;
    if (len == 9 && memcmp(text, "connected", 9) == 0)
        w->greeted = true;
}

/* Reads the stream until *flag is set or timeout_ms passes; false on timeout. */
static bool pump(int fd, struct sse_stream *s, bool *flag, int timeout_ms)
{
    static char buf[65536];
    int64_t deadline = real_ns() + (int64_t)timeout_ms * 1000000;
    while (!*flag) {
        int64_t left = (deadline - real_ns()) / 1000000;
        if (left < 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            die("the event stream ended (%s)", n == 0 ? "EOF" : strerror(errno));
        if (!sse_stream_feed(s, buf, (size_t)n))
            die("bad event stream (HTTP status %d)", s->status);
    }
    return true;
}

/* Reads one reply line of kvnode. */
static void read_reply(int fd)
{
    char c;
    for (;;) {
        ssize_t n = recv(fd, &c, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("kvnode closed the connection");
        if (c == '\n')
            return;
    }
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

int main(int argc, char **argv)
{
    const char *kv = NULL, *api = NULL, *mode = "socket", *tool = NULL, *out = NULL, *point = "kv_put_fail";
    long hits = 1000, warmup = 50;
    double max_delay_ms = 10;
    static const struct option longopts[] = {
        {"kv", required_argument, NULL, 'k'},       {"api", required_argument, NULL, 'a'},
        {"mode", required_argument, NULL, 'm'},     {"tool", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'},      {"point", required_argument, NULL, 'p'},
        {"hits", required_argument, NULL, 'n'},     {"warmup", required_argument, NULL, 'w'},
        {"max-delay-ms", required_argument, NULL, 'd'}, {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'k': kv = optarg; break;
        case 'a': api = optarg; break;
        case 'm': mode = optarg; break;
        case 't': tool = optarg; break;
        case 'o': out = optarg; break;
        case 'p': point = optarg; break;
        case 'n': hits = atol(optarg); break;
        case 'w': warmup = atol(optarg); break;
        case 'd': max_delay_ms = atof(optarg); break;
        case 's': g_rng = strtoull(optarg, NULL, 10) | 1; break;
        default: return 2;
        }
    }
    if (kv == NULL || api == NULL || out == NULL)
        die("usage: bench_latency --kv HOST:PORT --api HOST:PORT --mode socket|ws|curl|errinjctl --out FILE");
    signal(SIGPIPE, SIG_IGN);

    char path[512], url[768];
    snprintf(path, sizeof(path), "/v2/error_injection/events?injection=%s", point);
    snprintf(url, sizeof(url), "http://%s%s", api, path);
    struct waiter w = {.point = point};
    struct sse_stream s;
    static const struct sse_callbacks cb = {on_event, on_comment};
    int fd;
    pid_t child = 0;
    bool greets = true;
    if (strcmp(mode, "socket") == 0) {
        sse_stream_init(&s, SSE_INPUT_HTTP, true, &cb, &w);
        fd = tcp_connect(api);
        char req[1024];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path,
                         api);
        send_all(fd, req, (size_t)n);
    } else if (strcmp(mode, "ws") == 0) {
        sse_stream_init(&s, SSE_INPUT_WEBSOCKET, true, &cb, &w);
        fd = tcp_connect(api);
        char req[1024];
        int n = snprintf(req, sizeof(req),
                         "GET /v2/error_injection/ws?injection=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                         point, api);
        send_all(fd, req, (size_t)n);
    } else if (strcmp(mode, "curl") == 0) {
        sse_stream_init(&s, SSE_INPUT_RAW, true, &cb, &w);
        char *args[] = {tool ? (char *)tool : "curl", "-sN", "-H", "Accept: text/event-stream", url, NULL};
        fd = spawn_reader(args, &child);
    } else if (strcmp(mode, "errinjctl") == 0) {
        sse_stream_init(&s, SSE_INPUT_JSON_LINES, true, &cb, &w);
        char base[300];
        snprintf(base, sizeof(base), "http://%s", api);
        char *args[] = {tool ? (char *)tool : "errinjctl", "--url", base, "events", "--injection", (char *)point,
                        "--json", NULL};
        fd = spawn_reader(args, &child);
        greets = false; /* it prints events only: readiness is found by firing (below) */
    } else {
        die("unknown mode %s", mode);
    }
    if (greets && !pump(fd, &s, &w.greeted, 10000))
        die("no \": connected\" from the stream within 10 s");

    int kvfd = tcp_connect(kv);
    char req[128];
    long key = 0;
    if (!greets) {
        /* Fire until an event comes back: from then on the reader is subscribed. */
        bool ready = false;
        for (int i = 0; i < 100 && !ready; i++) {
            int n = snprintf(req, sizeof(req), "PUT bench_ready_%d v\n", i);
            send_all(kvfd, req, (size_t)n);
            read_reply(kvfd);
            w.want = 0;
            w.found = false;
            ready = pump(fd, &s, &w.found, 200);
        }
        if (!ready)
            die("%s printed no event in 20 s of firing", mode);
    }

    FILE *f = fopen(out, "w");
    if (f == NULL)
        die("cannot write %s", out);
    for (long i = -warmup; i < hits; i++) {
        /* What the point's enters count will be for this hit: one more than the newest seen. The
         * first hit of a greeting stream takes whatever comes (nothing fired since it subscribed). */
        w.want = w.have_last ? w.last_enters + 1 : 0;
        w.found = false;
        long delay_ns = (long)((double)(rnd() % 1000000) / 1e6 * max_delay_ms * 1e6);
        struct timespec d = {.tv_sec = delay_ns / 1000000000, .tv_nsec = delay_ns % 1000000000};
        nanosleep(&d, NULL); /* allow-sleep: a random gap between hits is the load under test */
        int n = snprintf(req, sizeof(req), "PUT bench_%ld v\n", key++);
        int64_t t_send = real_ns();
        send_all(kvfd, req, (size_t)n);
        if (!pump(fd, &s, &w.found, 10000))
            die("hit %ld: no event within 10 s", i);
        read_reply(kvfd);
        if (i >= 0)
            fprintf(f, "%lld %lld %llu\n", (long long)t_send, (long long)w.t_known, (unsigned long long)w.ts_ns);
    }
    fclose(f);
    close(kvfd);
    close(fd);
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, 0);
    }
    sse_stream_free(&s);
    return 0;
}
