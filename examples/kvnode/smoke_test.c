/*
 * smoke_test.c - starts a real kvnode and talks to it over TCP, the way a user would.
 *
 *     kvnode_smoke_test PATH/TO/kvnode
 *
 * It runs kvnode on port 0 for both the line protocol and the errinj API, reads the real ports
 * from its ready line, then checks: PUT/GET/DEL and malformed requests; pipelined requests are
 * answered in order; kv_put_fail, kv_accept and kv_get_delay enabled over the REST API; a PUT
 * parked in kv_put_before_apply (only for its "key") is released by a message; and a PUT still
 * parked at SIGTERM is released by the shutdown, answered, and kvnode exits 0. Last it checks
 * the shape of the log lines.
 *
 * Nothing waits a fixed time: every read has a deadline, and where the test must know that the
 * PUT is parked it polls the API's waiters count until it reads 1 (bounded by a deadline). A C
 * program rather than a shell script, so that it needs no nc or curl and every wait is bounded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous: under AddressSanitizer or ThreadSanitizer on a loaded machine things are slow. */
#define STEP_TIMEOUT_MS 20000

static pid_t g_child = -1;
static char g_log_path[] = "/tmp/kvnode-smoke-XXXXXX";
static int g_failures;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void dump_log(void)
{
    FILE *f = fopen(g_log_path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- kvnode log (%s) ----\n", g_log_path);
    char line[4096];
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

/* Reports a failure that leaves nothing sensible to test after it, and ends the test. */
static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "smoke: FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
    }
    dump_log();
    unlink(g_log_path);
    exit(1);
}

#define EXPECT_STR(what, got, want)                                                            \
    do {                                                                                       \
        const char *got_ = (got), *want_ = (want);                                             \
        if (strcmp(got_, want_) != 0) {                                                        \
            fprintf(stderr, "smoke: %s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
                    (what), got_, want_);                                                      \
            g_failures++;                                                                      \
        }                                                                                      \
    } while (0)

#define EXPECT_INT(what, got, want)                                                            \
    do {                                                                                       \
        long got_ = (got), want_ = (want);                                                     \
        if (got_ != want_) {                                                                   \
            fprintf(stderr, "smoke: %s:%d: %s: got %ld, want %ld\n", __FILE__, __LINE__,       \
                    (what), got_, want_);                                                      \
            g_failures++;                                                                      \
        }                                                                                      \
    } while (0)

/* ---- sockets with deadlines ------------------------------------------------------------------ */

/* Waits until fd is readable; false when the deadline passed first. */
static bool wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

static int connect_local(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fatal("connect to 127.0.0.1:%u: %s", port, strerror(errno));
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fatal("send: %s", strerror(errno));
        s += n;
        len -= (size_t)n;
    }
}

/* A buffered line reader over a socket or pipe. */
struct reader {
    int fd;
    char buf[8192];
    size_t len;
};

/* Reads one line without its "\n" into out. Returns 1, 0 at end of file, -1 on timeout or error. */
static int read_line(struct reader *r, char *out, size_t outlen)
{
    int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - r->buf);
            snprintf(out, outlen, "%.*s", (int)n, r->buf);
            memmove(r->buf, nl + 1, r->len - n - 1);
            r->len -= n + 1;
            return 1;
        }
        if (r->len == sizeof(r->buf) || !wait_readable(r->fd, deadline))
            return -1;
        ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        r->len += (size_t)n;
    }
}

/* Sends one request line and returns its reply line (a static buffer), or "<eof>"/"<timeout>". */
static const char *ask(struct reader *r, const char *request)
{
    static char reply[8192];
    send_str(r->fd, request);
    int rc = read_line(r, reply, sizeof(reply));
    return rc == 1 ? reply : rc == 0 ? "<eof>" : "<timeout>";
}

static const char *next_reply(struct reader *r)
{
    static char reply[8192];
    int rc = read_line(r, reply, sizeof(reply));
    return rc == 1 ? reply : rc == 0 ? "<eof>" : "<timeout>";
}

/* ---- a minimal HTTP/1.1 client for the errinj API ------------------------------------------- */

static unsigned g_api_port;

/* One request with Connection: close; returns the status and copies the body (de-chunked). */
static int http(const char *method, const char *path, const char *body, char *out, size_t outlen)
{
    int fd = connect_local(g_api_port);
    char req[2048];
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, g_api_port, body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    send_str(fd, req);

    static char resp[65536];
    size_t len = 0;
    int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
    for (;;) {
        if (!wait_readable(fd, deadline))
            fatal("%s %s: no complete response in time", method, path);
        ssize_t n = read(fd, resp + len, sizeof(resp) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(resp) - 1)
            fatal("%s %s: response too long", method, path);
    }
    close(fd);
    resp[len] = '\0';

    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        fatal("%s %s: not an HTTP response: \"%.200s\"", method, path, resp);
    char *payload = strstr(resp, "\r\n\r\n");
    payload = payload != NULL ? payload + 4 : resp + len;
    if (strcasestr(resp, "transfer-encoding: chunked") != NULL) {
        /* Join the chunks in place: "<hex>\r\n<data>\r\n" ... "0\r\n\r\n". */
        char *src = payload, *dst = payload;
        unsigned long size;
        while ((size = strtoul(src, &src, 16)) > 0 && (src = strstr(src, "\r\n")) != NULL) {
            memmove(dst, src + 2, size);
            dst += size;
            src += 2 + size + 2;
        }
        *dst = '\0';
    }
    snprintf(out, outlen, "%s", payload);
    return status;
}

static void api_expect_ok(const char *method, const char *path, const char *body)
{
    char out[4096];
    int status = http(method, path, body, out, sizeof(out));
    if (status != 200)
        fatal("%s %s: status %d, body \"%s\"", method, path, status, out);
}

static long api_number(const char *path)
{
    char out[256];
    int status = http("GET", path, NULL, out, sizeof(out));
    if (status != 200)
        fatal("GET %s: status %d, body \"%s\"", path, status, out);
    return strtol(out, NULL, 10);
}

/* Polls the waiters count of `name` until it reads `want` (the PUT has parked), with a deadline. */
static void wait_for_waiters(const char *name, long want)
{
    char path[256];
    snprintf(path, sizeof(path), "/v2/error_injection/injection/%s/waiters", name);
    int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
    long got;
    while ((got = api_number(path)) != want) {
        if (now_ms() > deadline)
            fatal("%s: waiters stayed %ld, want %ld", name, got, want);
        poll(NULL, 0, 5); /* between polls of a bounded wait, not a synchronisation */
    }
}

/* ---- kvnode as a child process ------------------------------------------------------------- */

static struct reader g_stdout;

static void start_kvnode(const char *exe, unsigned *kv_port, unsigned *api_port)
{
    int log_fd = mkstemp(g_log_path);
    if (log_fd < 0)
        fatal("mkstemp: %s", strerror(errno));
    close(log_fd);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        fatal("pipe: %s", strerror(errno));
    g_child = fork();
    if (g_child < 0)
        fatal("fork: %s", strerror(errno));
    if (g_child == 0) {
        dup2(out[1], STDOUT_FILENO);
        execl(exe, exe, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--shards", "4", "--log",
              g_log_path, (char *)NULL);
        fprintf(stderr, "smoke: exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    g_stdout.fd = out[0];

    char line[512];
    if (read_line(&g_stdout, line, sizeof(line)) != 1)
        fatal("kvnode printed no ready line");
    unsigned shards;
    if (sscanf(line, "kvnode ready listen=127.0.0.1:%u api=127.0.0.1:%u shards=%u", kv_port, api_port,
               &shards) != 3 || shards != 4)
        fatal("unexpected ready line \"%s\"", line);
    printf("smoke: %s\n", line);
}

/* Waits for kvnode to exit and returns its exit status (or 128+signal). */
static int wait_exit(void)
{
    int64_t deadline = now_ms() + STEP_TIMEOUT_MS;
    for (;;) {
        int status;
        pid_t pid = waitpid(g_child, &status, WNOHANG);
        if (pid == g_child) {
            g_child = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (pid < 0 && errno != EINTR)
            fatal("waitpid: %s", strerror(errno));
        if (now_ms() > deadline)
            fatal("kvnode did not exit within %d ms of SIGTERM", STEP_TIMEOUT_MS);
        poll(NULL, 0, 5); /* a bounded poll for the exit, not a synchronisation */
    }
}

/* ---- the checks ---------------------------------------------------------------------------- */

static void check_protocol(unsigned kv_port)
{
    struct reader c = {.fd = connect_local(kv_port)};
    EXPECT_STR("GET missing", ask(&c, "GET k1\n"), "NOTFOUND");
    EXPECT_STR("PUT", ask(&c, "PUT k1 v1\n"), "OK");
    EXPECT_STR("GET", ask(&c, "GET k1\n"), "VALUE v1");
    EXPECT_STR("PUT with spaces, CRLF", ask(&c, "PUT k1 hello big world\r\n"), "OK");
    EXPECT_STR("GET overwritten", ask(&c, "GET k1\r\n"), "VALUE hello big world");
    EXPECT_STR("DEL", ask(&c, "DEL k1\n"), "OK");
    EXPECT_STR("GET deleted", ask(&c, "GET k1\n"), "NOTFOUND");
    EXPECT_STR("DEL missing", ask(&c, "DEL k1\n"), "OK");
    EXPECT_STR("unknown command", ask(&c, "FROB k1\n"), "ERR bad request");
    EXPECT_STR("PUT without value", ask(&c, "PUT k1\n"), "ERR bad request");
    EXPECT_STR("GET with two keys", ask(&c, "GET a b\n"), "ERR bad request");
    EXPECT_STR("empty line", ask(&c, "\n"), "ERR bad request");
    EXPECT_STR("lower case", ask(&c, "get k1\n"), "ERR bad request");

    /* Pipelined requests over every shard come back in request order. */
    char batch[8192] = "";
    for (int i = 0; i < 50; i++)
        snprintf(batch + strlen(batch), sizeof(batch) - strlen(batch), "PUT key%d value%d\nGET key%d\n", i, i, i);
    send_str(c.fd, batch);
    for (int i = 0; i < 50; i++) {
        char want[64];
        snprintf(want, sizeof(want), "VALUE value%d", i);
        EXPECT_STR("pipelined PUT", next_reply(&c), "OK");
        EXPECT_STR("pipelined GET", next_reply(&c), want);
    }
    close(c.fd);
}

static void check_simple_injections(unsigned kv_port)
{
    struct reader c = {.fd = connect_local(kv_port)};

    api_expect_ok("POST", "/v2/error_injection/injection/kv_put_fail?one_shot=true", NULL);
    EXPECT_STR("PUT with kv_put_fail", ask(&c, "PUT failing 1\n"), "ERR injected");
    EXPECT_STR("PUT after the one-shot", ask(&c, "PUT failing 2\n"), "OK");
    EXPECT_STR("GET after failed PUT", ask(&c, "GET failing\n"), "VALUE 2");
    EXPECT_INT("kv_put_fail enters", api_number("/v2/error_injection/injection/kv_put_fail/enters"), 1);

    api_expect_ok("POST", "/v2/error_injection/injection/kv_get_delay", "{\"duration_ms\": \"1\"}");
    EXPECT_STR("GET with kv_get_delay", ask(&c, "GET failing\n"), "VALUE 2");
    EXPECT_INT("kv_get_delay enters", api_number("/v2/error_injection/injection/kv_get_delay/enters"), 1);
    api_expect_ok("DELETE", "/v2/error_injection/injection/kv_get_delay", NULL);

    api_expect_ok("POST", "/v2/error_injection/injection/kv_accept?one_shot=true", NULL);
    struct reader refused = {.fd = connect_local(kv_port)};
    EXPECT_STR("connection with kv_accept", next_reply(&refused), "ERR injected");
    EXPECT_STR("then closed", next_reply(&refused), "<eof>");
    close(refused.fd);
    struct reader accepted = {.fd = connect_local(kv_port)};
    EXPECT_STR("next connection", ask(&accepted, "GET failing\n"), "VALUE 2");
    close(accepted.fd);
    close(c.fd);
}

/* kvnode's documented key-to-shard mapping: FNV-1a (64 bit) of the key, modulo the shards. */
static unsigned shard_of(const char *key, unsigned shards)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (unsigned)(h % shards);
}

/* A key that lives on another shard than `key` (of 4), so it is served while `key`'s shard is parked. */
static const char *key_on_other_shard(const char *key)
{
    static char other[32];
    for (int i = 0;; i++) {
        snprintf(other, sizeof(other), "other%d", i);
        if (shard_of(other, 4) != shard_of(key, 4))
            return other;
    }
}

/* Parks a PUT of `key` (kv_put_before_apply must be enabled for it) and returns its connection. */
static struct reader *park_put(unsigned kv_port, const char *request)
{
    static struct reader r;
    r = (struct reader){.fd = connect_local(kv_port)};
    send_str(r.fd, request);
    wait_for_waiters("kv_put_before_apply", 1);
    return &r;
}

static void check_parked_put(unsigned kv_port)
{
    api_expect_ok("POST", "/v2/error_injection/injection/kv_put_before_apply", "{\"key\": \"parked\"}");

    /* Another key goes through: the handler lets every key but "parked" pass at once. */
    struct reader other = {.fd = connect_local(kv_port)};
    char request[128];
    snprintf(request, sizeof(request), "PUT %s 1\n", key_on_other_shard("parked"));
    EXPECT_STR("PUT of another key", ask(&other, request), "OK");

    struct reader *parked = park_put(kv_port, "PUT parked v1\n");
    /* The parked PUT holds its shard thread, but the other shards serve on. */
    snprintf(request, sizeof(request), "GET %s\n", key_on_other_shard("parked"));
    EXPECT_STR("GET on another shard while parked", ask(&other, request), "VALUE 1");
    api_expect_ok("POST", "/v2/error_injection/injection/kv_put_before_apply/message", NULL);
    EXPECT_STR("parked PUT after the message", next_reply(parked), "OK");
    EXPECT_INT("waiters after the message", api_number("/v2/error_injection/injection/kv_put_before_apply/waiters"), 0);
    EXPECT_STR("GET the released write", ask(&other, "GET parked\n"), "VALUE v1");
    close(parked->fd);
    close(other.fd);
}

static void check_shutdown_releases_parked_put(unsigned kv_port)
{
    /* Messages are shared as in ScyllaDB: a handler counts every message sent since the
     * injection was enabled, so the message above would release the next PUT at once. A fresh
     * enable (after a disable) starts the count again. */
    api_expect_ok("DELETE", "/v2/error_injection/injection/kv_put_before_apply", NULL);
    api_expect_ok("POST", "/v2/error_injection/injection/kv_put_before_apply", "{\"key\": \"parked\"}");
    struct reader *parked = park_put(kv_port, "PUT parked v2\n");
    struct reader idle = {.fd = connect_local(kv_port)};
    char request[128];
    snprintf(request, sizeof(request), "GET %s\n", key_on_other_shard("parked"));
    EXPECT_STR("idle connection works", ask(&idle, request), "VALUE 1");

    if (kill(g_child, SIGTERM) != 0)
        fatal("kill: %s", strerror(errno));
    EXPECT_STR("parked PUT at shutdown", next_reply(parked), "OK");
    EXPECT_STR("then the connection ends", next_reply(parked), "<eof>");
    EXPECT_STR("idle connection ends", next_reply(&idle), "<eof>");
    EXPECT_INT("kvnode exit status", wait_exit(), 0);
    close(parked->fd);
    close(idle.fd);
}

/* Log lines look like `INFO  2026-11-29 05:40:01,123 [shard 2] kvnode - PUT k1 applied`. */
static void check_log(void)
{
    FILE *f = fopen(g_log_path, "r");
    if (f == NULL)
        fatal("open %s: %s", g_log_path, strerror(errno));
    char line[4096];
    int lines = 0, malformed = 0;
    bool saw_applied = false, saw_waiting = false, saw_stopped = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        char level[8], logger[64];
        int y, mo, d, h, mi, s, ms, n = 0;
        unsigned shard;
        if (sscanf(line, "%5s %4d-%2d-%2d %2d:%2d:%2d,%3d [shard %u] %63s - %n", level, &y, &mo, &d, &h,
                   &mi, &s, &ms, &shard, logger, &n) != 10 || n == 0) {
            if (malformed++ == 0)
                fprintf(stderr, "smoke: malformed log line: %s", line);
            continue;
        }
        const char *msg = line + n;
        if (strcmp(logger, "kvnode") == 0 && strcmp(msg, "PUT parked applied\n") == 0)
            saw_applied = true;
        if (strcmp(logger, "debug_error_injection") == 0 && strcmp(msg, "kv_put_before_apply: waiting for message\n") == 0)
            saw_waiting = true;
        if (strcmp(logger, "kvnode") == 0 && strcmp(msg, "stopped\n") == 0)
            saw_stopped = true;
    }
    fclose(f);
    EXPECT_INT("malformed log lines", malformed, 0);
    EXPECT_INT("log has 'PUT parked applied'", saw_applied, 1);
    EXPECT_INT("log has 'kv_put_before_apply: waiting for message'", saw_waiting, 1);
    EXPECT_INT("log has 'stopped'", saw_stopped, 1);
    if (lines == 0)
        fatal("empty log");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/kvnode\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    unsigned kv_port;
    start_kvnode(argv[1], &kv_port, &g_api_port);

    check_protocol(kv_port);
    check_simple_injections(kv_port);
    check_parked_put(kv_port);
    check_shutdown_releases_parked_put(kv_port);
    check_log();

    if (g_failures != 0)
        dump_log();
    close(g_stdout.fd);
    unlink(g_log_path);
    printf("smoke: %s\n", g_failures == 0 ? "ok" : "FAILED");
    return g_failures == 0 ? 0 : 1;
}
