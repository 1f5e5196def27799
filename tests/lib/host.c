/*
 * host.c - runs the test host (tests/host/testhost.c) as a child process; see host.h.
 */
#define _GNU_SOURCE
#include "host.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

const char *host_program(int argc, char **argv)
{
    const char *exe = argc > 1 ? argv[1] : getenv("ERRINJ_TESTHOST");
    if (exe == NULL)
        fprintf(stderr, "usage: %s PATH-TO-errinj-testhost\n", argv[0]);
    signal(SIGPIPE, SIG_IGN);
    return exe;
}

bool host_long_run(void)
{
    const char *v = getenv("ERRINJ_ATTACK_LONG");
    return v != NULL && strcmp(v, "1") == 0;
}

/* Reads one line of the host's output into line (without the newline). false when none came
 * within timeout_s or the host closed its output. */
bool host_line(struct host *h, char *line, size_t len, double timeout_s)
{
    double deadline = test_now() + timeout_s;
    for (;;) {
        char *nl = memchr(h->buf, '\n', h->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - h->buf);
            size_t copy = n < len - 1 ? n : len - 1;
            memcpy(line, h->buf, copy);
            line[copy] = '\0';
            memmove(h->buf, nl + 1, h->len - n - 1);
            h->len -= n + 1;
            return true;
        }
        double left = deadline - test_now();
        if (left < 0 || h->len == sizeof(h->buf))
            return false;
        struct pollfd pfd = {.fd = h->out_fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        ssize_t got = read(h->out_fd, h->buf + h->len, sizeof(h->buf) - h->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        h->len += (size_t)got;
    }
}

/*
 * Starts `exe` with the NULL-terminated `args` and waits for its "port N" line. nofile > 0 sets
 * RLIMIT_NOFILE in the child before exec. The host's stderr is the test's, so sanitizer reports
 * show up in the test log.
 */
bool host_start(struct host *h, const char *exe, const char *const *args, long nofile)
{
    memset(h, 0, sizeof(*h));
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0)
        return false;
    if (pipe2(from_child, O_CLOEXEC) != 0) {
        close(to_child[0]), close(to_child[1]);
        return false;
    }
    const char *argv[32] = {exe};
    size_t argc = 1;
    for (size_t i = 0; args != NULL && args[i] != NULL && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        if (nofile > 0) {
            struct rlimit rl = {.rlim_cur = (rlim_t)nofile, .rlim_max = (rlim_t)nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(126);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    h->pid = pid;
    h->in_fd = to_child[1];
    h->out_fd = from_child[0];
    char line[256];
    /* Generous: a sanitizer build of the host takes a while to start. */
    if (!host_line(h, line, sizeof(line), 30.0) || sscanf(line, "port %u", &h->port) != 1) {
        fprintf(stderr, "host: no \"port N\" line from %s (got \"%s\")\n", exe, line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    return true;
}

/* Sends one command line (printf-style, without the newline). */
bool host_send(struct host *h, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) - 1)
        return false;
    line[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(h->in_fd, line + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += (int)w;
    }
    return true;
}

/* True while the host process exists and has not exited. */
bool host_alive(struct host *h)
{
    int status;
    return h->pid > 0 && waitpid(h->pid, &status, WNOHANG) == 0;
}

/* The host's resident set size in KiB (VmRSS), or -1. */
long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/*
 * Sends "quit" and waits up to timeout_s for the host to exit. Returns its exit status, 128 +
 * the signal that killed it, or -1 when it did not exit in time (it is then killed).
 */
int host_quit(struct host *h, double timeout_s)
{
    host_send(h, "quit");
    close(h->in_fd);
    double deadline = test_now() + timeout_s;
    int status = 0, result = -1;
    for (;;) {
        pid_t r = waitpid(h->pid, &status, WNOHANG);
        if (r == h->pid) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (r < 0 || test_now() > deadline) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
            break;
        }
        /* Waiting for another process to exit has no event to block on but its pipe closing. */
        struct pollfd pfd = {.fd = h->out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0) {
            char sink[4096];
            ssize_t got = read(h->out_fd, sink, sizeof(sink));
            if (got > 0 && h->len + (size_t)got <= sizeof(h->buf)) {
                memcpy(h->buf + h->len, sink, (size_t)got);
                h->len += (size_t)got;
            }
        }
    }
    /* What the host printed stays readable with host_line(): the rest is in the pipe, whose
     * write end closed with the host. */
    for (;;) {
        char sink[4096];
        ssize_t got = read(h->out_fd, sink, sizeof(sink));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (h->len + (size_t)got <= sizeof(h->buf)) {
            memcpy(h->buf + h->len, sink, (size_t)got);
            h->len += (size_t)got;
        }
    }
    close(h->out_fd);
    h->out_fd = -1;
    h->pid = -1;
    return result;
}

/* Kills the host a test left running (a failed assertion skips its host_quit) and reaps it:
 * a cmocka teardown for tests whose host is in `h`. */
void host_kill(struct host *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        close(h->in_fd);
        close(h->out_fd);
    }
    memset(h, 0, sizeof(*h));
}

