/*
 * host.h - runs the test host (tests/host/testhost.c) as a child process: a real server in a
 * process of its own, so that what a test measures (its RSS, whether it is still alive, its
 * exit status under a sanitizer) is the server's and nothing else's.
 *
 * The host prints "port N" when it listens and answers one line per command on stdin (see the
 * comment at the top of testhost.c). Every read of its output has a deadline, so a host that
 * hangs fails the test instead of hanging it.
 */
#ifndef ERRINJ_TESTLIB_HOST_H
#define ERRINJ_TESTLIB_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct host {
    pid_t pid;
    int in_fd;  /* the host's stdin */
    int out_fd; /* the host's stdout */
    char buf[8192];
    size_t len;
    unsigned port;
};

/* The test host's path: argv[1], else $ERRINJ_TESTHOST; NULL (after printing the usage) when
 * neither is given. Also ignores SIGPIPE: a driver writing to a host that hung up gets EPIPE,
 * which it checks, instead of dying. */
const char *host_program(int argc, char **argv);

/* True when ERRINJ_ATTACK_LONG=1 (make stress): the drivers then run their long variants. */
bool host_long_run(void);

/*
 * Starts `exe` with the NULL-terminated `args` and waits for its "port N" line. nofile > 0 sets
 * RLIMIT_NOFILE in the child before exec. The host's stderr is the test's, so sanitizer reports
 * show up in the test log. Pair with host_quit() (or host_kill() in a teardown).
 */
bool host_start(struct host *h, const char *exe, const char *const *args, long nofile);

/* Reads one line of the host's output into line (without the newline). false when none came
 * within timeout_s or the host closed its output. */
bool host_line(struct host *h, char *line, size_t len, double timeout_s);

/* Sends one command line (printf-style, without the newline). */
bool host_send(struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True while the host process exists and has not exited. */
bool host_alive(struct host *h);

/* The resident set size of process `pid` in KiB (VmRSS), or -1: the host's, or a test's own. */
long proc_rss_kib(pid_t pid);

/*
 * Sends "quit" and waits up to timeout_s for the host to exit. Returns its exit status, 128 +
 * the signal that killed it, or -1 when it did not exit in time (it is then killed). What the
 * host printed stays readable with host_line().
 */
int host_quit(struct host *h, double timeout_s);

/* Kills the host a test left running (a failed assertion skips its host_quit) and reaps it:
 * a cmocka teardown for tests whose host is in `h`. */
void host_kill(struct host *h);

#endif
