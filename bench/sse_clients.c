/*
 * sse_clients.c - many SSE subscribers in one process, for the fan-out and point-cost benches.
 *
 *     bench_sse_clients --port P --clients N [--stalled S] [--path PATH] [--ws]
 *
 * With --ws the subscribers are WebSocket sessions (GET /v2/error_injection/ws): the 101 is their
 * greeting and each text message an event; the checks are the same.
 * Opens N reading subscribers and S that stop reading once the server greeted them, all on
 * one epoll loop with non-blocking sockets (a thousand threads would measure the scheduler, not
 * the server). Each subscriber checks that the seqs it receives go up by one, or jump exactly
 * to the next_seq of an overflow notice: that is the "nothing lost silently" check.
 *
 * Prints "connected N S" once every subscriber was greeted with ": connected", then answers
 * one line per command on stdin (the driver talks to it through pipes):
 *   wait N     -> "reached N T" when every reading subscriber has received N events (counting
 *                 those an overflow notice reported as dropped); T is when the last of them read
 *                 its Nth (CLOCK_MONOTONIC, ns; even if that was before the command came)
 *   stats      -> "stats key=value ..." for the reading subscribers and the stalled ones
 *   unstall    -> the stalled subscribers start reading; they count as reading from now on
 *   quit       -> exits
 */
#define _GNU_SOURCE
#include "sse_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_WINDOW 64
#define READ_BUF (256 * 1024)

enum conn_state { C_CONNECTING, C_HEAD, C_LIVE, C_CLOSED };

struct conn {
    int fd;
    enum conn_state state;
    bool stalled;  /* greeted, then left unread until "unstall" */
    bool reading;  /* counts for "wait" */
    bool greeted;
    struct sse_stream s;
    uint64_t expect; /* the next seq; 0 before the first event */
    uint64_t events, overflows, dropped, order_errors;
    bool counted;     /* reached the current wait target */
    int64_t last_rx;  /* CLOCK_MONOTONIC of the last read that brought events */
    int64_t crossed;  /* when it reached the current wait target */
};

static struct conn *g_conns;
static int g_nconns;
static int g_epfd;
static uint16_t g_port;
static const char *g_path = "/v2/error_injection/events";
static bool g_ws;
static uint64_t g_target;  /* current wait target; 0 = none */
static int g_reached;      /* reading subscribers at or past the target */
static int g_greeted;
static int g_failed;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t got(const struct conn *c)
{
    return c->events + c->dropped;
}

static int g_reading; /* reading subscribers still open, counted when a wait starts */

static int reading_count(void)
{
    int n = 0;
    for (int i = 0; i < g_nconns; i++)
        n += g_conns[i].reading && g_conns[i].state != C_CLOSED;
    return n;
}

static void check_target(void)
{
    if (g_target != 0 && g_reached >= g_reading) {
        /* The moment the last subscriber had it, not the moment this loop noticed. */
        int64_t last = 0;
        for (int i = 0; i < g_nconns; i++)
            if (g_conns[i].counted && g_conns[i].crossed > last)
                last = g_conns[i].crossed;
        printf("reached %llu %lld\n", (unsigned long long)g_target, (long long)last);
        fflush(stdout);
        g_target = 0;
    }
}

/* Counts c toward the wait target once it has reached it; `at` is when its events arrived. */
static void progress(struct conn *c, int64_t at)
{
    if (g_target != 0 && c->reading && !c->counted && got(c) >= g_target) {
        c->counted = true;
        c->crossed = at;
        g_reached++;
    }
}

static void on_event(struct sse_stream *s, const struct sse_event *ev, void *arg)
{
    (void)s;
    struct conn *c = arg;
    if (strcmp(ev->name, "overflow") == 0) {
        uint64_t dropped = 0, next = 0;
        sse_json_u64(ev->data, ev->data_len, "dropped", &dropped);
        sse_json_u64(ev->data, ev->data_len, "next_seq", &next);
        c->overflows++;
        c->dropped += dropped;
        if (c->expect != 0 && next != c->expect + dropped)
            c->order_errors++; /* the notice must account for exactly the gap */
        c->expect = next;
        return;
    }
    if (!ev->has_id)
        return;
    if (c->expect != 0 && ev->id != c->expect)
        c->order_errors++;
    c->expect = ev->id + 1;
    c->events++;
}

static void on_comment(struct sse_stream *s, const char *text, size_t len, void *arg)
{
    (void)s;
    struct conn *c = arg;
    if (!c->greeted && len == 9 && memcmp(text, "connected", 9) == 0) {
        c->greeted = true;
        g_greeted++;
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = C_CLOSED;
    if (!c->greeted)
        g_failed++;
    if (c->reading && g_target != 0) {
        /* A subscriber that the server closed can never reach the target: recount without it. */
        g_reading = reading_count();
        if (c->counted)
            g_reached--;
    }
}

static bool conn_start(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        return false;
    }
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    return epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0;
}

static void conn_writable(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        conn_close(c);
        return;
    }
    char req[512];
    int n = g_ws ? snprintf(req, sizeof(req),
                            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                            g_path, (unsigned)g_port)
                 : snprintf(req, sizeof(req),
                            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAccept: text/event-stream\r\n\r\n", g_path,
                            (unsigned)g_port);
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        conn_close(c);
        return;
    }
    c->state = C_HEAD;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_readable(struct conn *c)
{
    static char buf[READ_BUF];
    /* Level-triggered, one read per wakeup: every subscriber gets its turn. */
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    bool was_greeted = c->greeted;
    uint64_t before = got(c);
    int64_t now = mono_ns();
    if (!sse_stream_feed(&c->s, buf, (size_t)n)) {
        fprintf(stderr, "bench_sse_clients: bad response (status %d)\n", c->s.status);
        conn_close(c);
        return;
    }
    if (!was_greeted && c->greeted) {
        c->state = C_LIVE;
        if (c->stalled) {
            /* Never read again (until "unstall"): the server must cope with a client that stops. */
            epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
        }
    }
    if (got(c) != before)
        c->last_rx = now;
    progress(c, now);
}

static void handle_command(char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "wait ", 5) == 0) {
        g_target = strtoull(line + 5, NULL, 10);
        g_reached = 0;
        g_reading = reading_count();
        for (int i = 0; i < g_nconns; i++) {
            g_conns[i].counted = false;
            progress(&g_conns[i], g_conns[i].last_rx);
        }
        check_target();
    } else if (strcmp(line, "stats") == 0) {
        uint64_t ev[2] = {0}, of[2] = {0}, dr[2] = {0}, oe[2] = {0}, bytes = 0;
        uint64_t min_got = UINT64_MAX, max_got = 0;
        int n[2] = {0}, closed = 0;
        for (int i = 0; i < g_nconns; i++) {
            struct conn *c = &g_conns[i];
            int k = c->stalled ? 1 : 0;
            n[k]++;
            ev[k] += c->events;
            of[k] += c->overflows;
            dr[k] += c->dropped;
            oe[k] += c->order_errors;
            bytes += c->s.bytes;
            closed += c->state == C_CLOSED;
            if (!c->stalled) {
                min_got = got(c) < min_got ? got(c) : min_got;
                max_got = got(c) > max_got ? got(c) : max_got;
            }
        }
        printf("stats readers=%d events=%llu overflows=%llu dropped=%llu order_errors=%llu min_got=%llu "
               "max_got=%llu stalled=%d stalled_events=%llu stalled_overflows=%llu stalled_dropped=%llu "
               "stalled_order_errors=%llu closed=%d bytes=%llu\n",
               n[0], (unsigned long long)ev[0], (unsigned long long)of[0], (unsigned long long)dr[0],
               (unsigned long long)oe[0], (unsigned long long)(n[0] ? min_got : 0), (unsigned long long)max_got,
               n[1], (unsigned long long)ev[1], (unsigned long long)of[1], (unsigned long long)dr[1],
               (unsigned long long)oe[1], closed, (unsigned long long)bytes);
        fflush(stdout);
    } else if (strcmp(line, "unstall") == 0) {
        for (int i = 0; i < g_nconns; i++) {
            struct conn *c = &g_conns[i];
            if (c->stalled && c->state == C_LIVE && !c->reading) {
                c->reading = true;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
        printf("unstalled\n");
        fflush(stdout);
    } else if (strcmp(line, "quit") == 0) {
        exit(0);
    } else {
        printf("error unknown command\n");
        fflush(stdout);
    }
}

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    int clients = 1, stalled = 0;
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"clients", required_argument, NULL, 'n'},
                                             {"stalled", required_argument, NULL, 's'},
                                             {"path", required_argument, NULL, 'P'},
                                             {"ws", no_argument, NULL, 'w'},
                                             {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'p':
            g_port = (uint16_t)atoi(optarg);
            break;
        case 'n':
            clients = atoi(optarg);
            break;
        case 's':
            stalled = atoi(optarg);
            break;
        case 'P':
            g_path = optarg;
            break;
        case 'w':
            g_ws = true;
            g_path = "/v2/error_injection/ws";
            break;
        default:
            fprintf(stderr, "usage: bench_sse_clients --port P --clients N [--stalled S] [--path PATH] [--ws]\n");
            return 2;
        }
    }
    if (g_port == 0 || clients < 0 || stalled < 0 || clients + stalled == 0) {
        fprintf(stderr, "bench_sse_clients: --port and at least one client are needed\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile(clients + stalled + 64);
    g_nconns = clients + stalled;
    g_conns = calloc((size_t)g_nconns, sizeof(*g_conns));
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_conns == NULL || g_epfd < 0)
        return 1;
    static const struct sse_callbacks cb = {on_event, on_comment};
    for (int i = 0; i < g_nconns; i++) {
        struct conn *c = &g_conns[i];
        c->fd = -1;
        c->stalled = i >= clients;
        c->reading = !c->stalled;
        sse_stream_init(&c->s, g_ws ? SSE_INPUT_WEBSOCKET : SSE_INPUT_HTTP, false, &cb, c);
    }

    /* Connect in a window, so the server's listen backlog never overflows (a dropped SYN costs
     * a one-second retransmission and would look like a slow server). */
    int started = 0;
    struct epoll_event evs[256];
    int64_t deadline = mono_ns() + 60ll * 1000000000;
    while (g_greeted + g_failed < g_nconns) {
        while (started < g_nconns && started - g_greeted - g_failed < CONNECT_WINDOW) {
            if (!conn_start(&g_conns[started])) {
                g_conns[started].state = C_CLOSED;
                g_failed++;
            }
            started++;
        }
        int n = epoll_wait(g_epfd, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state == C_CONNECTING)
                conn_writable(c);
            else
                conn_readable(c);
        }
        if (mono_ns() > deadline)
            break;
    }
    int greeted[2] = {0, 0};
    for (int i = 0; i < g_nconns; i++)
        greeted[g_conns[i].stalled] += g_conns[i].greeted;
    printf("connected %d %d\n", greeted[0], greeted[1]);
    if (g_failed > 0)
        fprintf(stderr, "bench_sse_clients: %d subscribers failed to connect\n", g_failed);

    struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, STDIN_FILENO, &in);
    char cmd[256];
    size_t cmd_len = 0;
    for (;;) {
        int n = epoll_wait(g_epfd, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c != NULL) {
                conn_readable(c);
                continue;
            }
            ssize_t r = read(STDIN_FILENO, cmd + cmd_len, sizeof(cmd) - 1 - cmd_len);
            if (r <= 0)
                return 0; /* the driver went away */
            cmd_len += (size_t)r;
            cmd[cmd_len] = '\0';
            char *nl;
            while ((nl = strchr(cmd, '\n')) != NULL) {
                *nl = '\0';
                handle_command(cmd);
                size_t used = (size_t)(nl + 1 - cmd);
                memmove(cmd, nl + 1, cmd_len - used + 1);
                cmd_len -= used;
            }
            if (cmd_len == sizeof(cmd) - 1)
                cmd_len = 0; /* a line too long to be a command */
        }
        check_target();
    }
}
