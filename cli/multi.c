/*
 * multi.c - errinjctl on several nodes: each node's command in a child process, its output
 * tagged with the node, the exit statuses combined.
 *
 * The command line was read once, before anything was sent (options.c); a child is forked per
 * node and runs the command against that node alone, so every command behaves on each node
 * exactly as it does alone. The parent reads each child's stdout and stderr by whole lines and
 * prints them as they come:
 *   - a line that is a JSON object gets the node as its first member: {"node":"HOST:PORT",...}
 *   - a line that is a JSON array of objects (coverage --json) becomes one such line per object
 *   - any other line is prefixed: [HOST:PORT] line
 * The node's name is its URL without "http://" and without trailing slashes.
 *
 * Exit status: a node whose command exits 3 (unreachable, an error answer, a broken stream)
 * is reported on stderr and the others go on; the status is 3 only when every node failed, or
 * with --strict when any did. Otherwise `wait` exits 0 when a node saw the event (with --all:
 * when every node that did not fail saw it), 1 when one timed out first; other commands exit 0.
 */
#define _GNU_SOURCE
#include "multi.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msgs.h"

typedef struct node {
    const char *url;
    char *label;
    pid_t pid;
    int fd[2];       /* the child's stdout and stderr, -1 once at end of file */
    strbuf part[2];  /* a line not yet ended */
    int status;      /* exit status, once reaped */
    int reaped;
    int stopped;     /* we sent it SIGTERM: its end is not a failure */
    int hold;        /* keep the output until the end, to print the nodes in --url order */
    strbuf held[2];
} node;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* The node's name: its URL (trailing slashes already dropped) without "http://". */
static char *label_of(const char *url)
{
    return strdup(strncmp(url, "http://", 7) == 0 ? url + 7 : url);
}

static int emit_line(node *n, int which, const char *line, size_t len);

/* A JSON array of objects: one line per object, the node first. False when the line is not one. */
static int emit_array(node *n, const char *line, size_t len, int *rc)
{
    json_t *array = json_loadb(line, len, 0, NULL);
    size_t i;
    json_t *item;
    int objects = json_is_array(array);
    json_array_foreach(array, i, item) objects = objects && json_is_object(item);
    if (!objects) {
        json_decref(array);
        return 0;
    }
    *rc = 0;
    json_array_foreach(array, i, item) {
        char *text = json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (text == NULL || emit_line(n, 0, text, strlen(text)) != 0)
            *rc = -1;
        free(text);
    }
    json_decref(array);
    return 1;
}

/* Writes one whole line of node n's stream `which` (0 stdout, 1 stderr), tagged. */
static int emit_line(node *n, int which, const char *line, size_t len)
{
    strbuf out = {0};
    int rc;
    if (which == 0 && len >= 2 && line[0] == '[' && line[len - 1] == ']' && emit_array(n, line, len, &rc))
        return rc;
    if (which == 0 && len >= 2 && line[0] == '{' && line[len - 1] == '}') {
        /* Unchecked: a label that is not UTF-8 goes out as it came, its quotes and controls escaped. */
        json_t *label = json_string_nocheck(n->label);
        char *quoted = label ? json_dumps(label, JSON_ENCODE_ANY) : NULL;
        json_decref(label);
        if (!quoted)
            return -1;
        strbuf_append(&out, "{\"node\":");
        strbuf_append(&out, quoted);
        strbuf_append(&out, len == 2 ? "" : ",");
        strbuf_append_n(&out, line + 1, len - 1);
        free(quoted);
    } else {
        strbuf_appendf(&out, "[%s] ", n->label);
        strbuf_append_n(&out, line, len);
    }
    strbuf_append(&out, "\n");
    if (n->hold) {
        strbuf_append_n(&n->held[which], out.s, out.len);
        strbuf_free(&out);
        return 0;
    }
    FILE *f = which == 0 ? stdout : stderr;
    int ok = fwrite(out.s, 1, out.len, f) == out.len && fflush(f) == 0;
    strbuf_free(&out);
    return ok ? 0 : -1;
}

/* Reads what node n's stream `which` has; writes its whole lines. -1 when stdout failed. */
static int drain(node *n, int which)
{
    char buf[8192];
    ssize_t got = read(n->fd[which], buf, sizeof(buf));
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    strbuf *part = &n->part[which];
    if (got <= 0) {
        /* End of file: a last line without its newline still counts. */
        close(n->fd[which]);
        n->fd[which] = -1;
        int rc = part->len > 0 ? emit_line(n, which, part->s, part->len) : 0;
        strbuf_free(part);
        return rc;
    }
    strbuf_append_n(part, buf, (size_t)got);
    size_t start = 0;
    for (size_t i = 0; i < part->len; i++) {
        if (part->s[i] != '\n')
            continue;
        if (emit_line(n, which, part->s + start, i - start) != 0)
            return -1;
        start = i + 1;
    }
    if (start > 0) {
        size_t rest = part->len - start;
        memmove(part->s, part->s + start, rest);
        part->len = rest;
        part->s[rest] = '\0';
    }
    return 0;
}

static void stop_others(node *nodes, size_t count, const node *except)
{
    for (size_t i = 0; i < count; i++) {
        if (&nodes[i] != except && !nodes[i].reaped && !nodes[i].stopped) {
            nodes[i].stopped = 1;
            kill(nodes[i].pid, SIGTERM);
        }
    }
}

static void reap(node *n)
{
    int st;
    while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR) {
    }
    n->reaped = 1;
    n->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int multi_run(ctl *ctl, multi_node_fn run_node)
{
    size_t count = ctl->url_count;
    int strict = ctl->strict, wait_all = ctl->all_nodes;
    node *nodes = calloc(count, sizeof(*nodes));
    struct pollfd *fds = calloc(count * 2, sizeof(*fds));
    if (!nodes || !fds)
        out_of_memory(ctl);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fflush(stdout);
    fflush(stderr);

    int is_wait = ctl->command == CMD_wait;
    int output_failed = 0;
    size_t started = 0;
    for (size_t i = 0; i < count; i++) {
        node *n = &nodes[i];
        n->url = ctl->urls[i];
        n->label = label_of(n->url);
        /* Streams print as events come; the other commands' answers are printed node by node. */
        n->hold = !is_wait && ctl->command != CMD_events;
        int out[2], err[2];
        if (!n->label || pipe(out) != 0 || pipe(err) != 0) {
            complain(ctl, "cannot start a process per node: %s", strerror(errno));
            stop_others(nodes, started, NULL);
            break;
        }
        /* SIGINT and SIGTERM stay blocked across the fork until the child has its default
         * actions back: one sent to a child still running our handler would be swallowed there,
         * and that child would go on waiting after the others ended (wait without --all). */
        sigset_t stop_signals, was;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        sigprocmask(SIG_BLOCK, &stop_signals, &was);
        n->pid = fork();
        if (n->pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            signal(SIGPIPE, SIG_DFL);
            sigprocmask(SIG_SETMASK, &was, NULL);
            dup2(out[1], STDOUT_FILENO);
            dup2(err[1], STDERR_FILENO);
            close(out[0]), close(out[1]), close(err[0]), close(err[1]);
            for (size_t j = 0; j < i; j++)
                close(nodes[j].fd[0]), close(nodes[j].fd[1]);
            int rc = run_node(ctl, n->url);
            fflush(stdout);
            _exit(rc & 0xff);
        }
        sigprocmask(SIG_SETMASK, &was, NULL);
        close(out[1]);
        close(err[1]);
        if (n->pid < 0) {
            complain(ctl, "cannot start a process per node: %s", strerror(errno));
            close(out[0]), close(err[0]);
            stop_others(nodes, started, NULL);
            break;
        }
        n->fd[0] = out[0];
        n->fd[1] = err[0];
        started++;
    }

    int signalled = 0;
    for (;;) {
        if (got_signal && !signalled) {
            signalled = got_signal;
            stop_others(nodes, started, NULL);
        }
        size_t nfds = 0;
        for (size_t i = 0; i < started; i++)
            for (int w = 0; w < 2; w++)
                if (nodes[i].fd[w] >= 0)
                    fds[nfds++] = (struct pollfd){.fd = nodes[i].fd[w], .events = POLLIN};
        if (nfds == 0)
            break;
        if (poll(fds, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t k = 0; k < nfds; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (size_t i = 0; i < started; i++) {
                node *n = &nodes[i];
                for (int w = 0; w < 2; w++) {
                    if (n->fd[w] != fds[k].fd)
                        continue;
                    if (drain(n, w) != 0 && !output_failed) {
                        output_failed = 1;
                        stop_others(nodes, started, NULL);
                    }
                    if (n->fd[0] < 0 && n->fd[1] < 0 && !n->reaped) {
                        reap(n);
                        /* wait without --all: the first node that saw the event ends the wait. */
                        if (is_wait && !wait_all && n->status == EXIT_SEEN_OR_OK)
                            stop_others(nodes, started, n);
                    }
                }
            }
        }
    }
    for (size_t i = 0; i < started; i++)
        if (!nodes[i].reaped)
            reap(&nodes[i]);

    for (size_t i = 0; i < started; i++) {
        for (int w = 0; w < 2; w++) {
            strbuf *h = &nodes[i].held[w];
            FILE *f = w == 0 ? stdout : stderr;
            if (h->len > 0 && (fwrite(h->s, 1, h->len, f) != h->len || fflush(f) != 0))
                output_failed = 1;
            strbuf_free(h);
        }
    }

    /* Combine. A node failed when its command exited 3 (or died) and we did not stop it. */
    size_t failed = 0, seen = 0, timed_out = 0;
    strbuf report = {0};
    for (size_t i = 0; i < started; i++) {
        node *n = &nodes[i];
        if (n->stopped && n->status != EXIT_SEEN_OR_OK && n->status != EXIT_TIMED_OUT)
            continue;
        if (n->status == EXIT_SEEN_OR_OK)
            seen++;
        else if (n->status == EXIT_TIMED_OUT)
            timed_out++;
        else {
            failed++;
            char what[32];
            snprintf(what, sizeof(what), n->status > 128 ? " (signal %d)" : " (exit %d)",
                     n->status > 128 ? n->status - 128 : n->status);
            strbuf_append(&report, report.len ? ", " : "");
            strbuf_append(&report, n->label);
            strbuf_append(&report, what);
        }
    }
    failed += count - started;
    int rc;
    if (output_failed)
        rc = EXIT_SERVER;
    else if (failed == count || (strict && failed > 0))
        rc = EXIT_SERVER;
    else if (is_wait && !wait_all)
        rc = seen > 0 ? EXIT_SEEN_OR_OK : timed_out > 0 ? EXIT_TIMED_OUT : EXIT_SERVER;
    else if (is_wait)
        rc = timed_out > 0 ? EXIT_TIMED_OUT : EXIT_SEEN_OR_OK;
    else
        rc = EXIT_SEEN_OR_OK;
    if (failed > 0 && !signalled)
        complain(ctl, "%zu of %zu nodes failed: %s%s", failed, count, report.s ? report.s : "not started",
                 rc == EXIT_SERVER ? "" : "; the others went on");
    strbuf_free(&report);
    for (size_t i = 0; i < count; i++) {
        free(nodes[i].label);
        strbuf_free(&nodes[i].part[0]);
        strbuf_free(&nodes[i].part[1]);
    }
    free(fds);
    free(nodes);
    if (signalled) {
        signal(signalled, SIG_DFL);
        raise(signalled);
    }
    return rc;
}
