/*
 * preload.c - bench_preload: the cost of the libc calls liberrinj-preload.so wraps, made in a
 * loop by a program with no points of its own. run.py runs it bare, under errinj-run (nothing
 * enabled; another libc point enabled; the call's own point enabled with a path that does not
 * match) and under libfiu's fiu-run -x, and prints the rows side by side.
 *
 *   bench_preload [--quick]   prints "ROW NS LIBC_NS" per row: nanoseconds per call (or per
 *                             pair) through the program's own symbols (the wrappers, when
 *                             preloaded) and through libc's, looked up in libc.so.6 itself:
 *                             the 10th percentile of many short rounds that alternate between
 *                             the two (short, so that most rounds run without being preempted
 *                             on a loaded machine, and the low percentile is the undisturbed
 *                             cost)
 *
 * The second figure is the bare call measured in the same process, a few microseconds apart, so
 * the difference is the wrapper's cost without the noise between processes; in a process without
 * the preload both are libc's and their difference shows the noise that is left.
 *
 * BENCH_IDLE_THREAD=1 in the environment starts one more thread that only waits, as errinj-run's server thread does most of
 * the time: a process with a second thread pays glibc's multi-threaded paths (the cancellation
 * bookkeeping around each blocking call, the allocator's locks), whatever is preloaded, and this
 * shows that cost apart from the wrappers'.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void *volatile g_sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int g_null, g_zero, g_pair[2];
static char g_byte;

/* The calls each row makes: the program's symbols, or libc's own. */
struct calls {
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*pread64)(int, void *, size_t, off_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    int (*open)(const char *, int, ...);
    int (*close)(int);
    int (*fsync)(int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recv)(int, void *, size_t, int);
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void (*free)(void *);
};

static struct calls g_own, g_libc;
static const struct calls *c = &g_own;

static void row_write(long n)
{
    for (long i = 0; i < n; i++)
        if (c->write(g_null, "x", 1) != 1)
            abort();
}

static void row_read(long n)
{
    for (long i = 0; i < n; i++)
        if (c->read(g_zero, &g_byte, 1) != 1)
            abort();
}

static void row_pread64(long n)
{
    for (long i = 0; i < n; i++)
        if (c->pread64(g_zero, &g_byte, 1, 0) != 1)
            abort();
}

static void row_writev(long n)
{
    struct iovec iov = {"x", 1};
    for (long i = 0; i < n; i++)
        if (c->writev(g_null, &iov, 1) != 1)
            abort();
}

static void row_open_close(long n)
{
    for (long i = 0; i < n; i++) {
        int fd = c->open("/dev/null", O_WRONLY);
        if (fd < 0 || c->close(fd) != 0)
            abort();
    }
}

static void row_fsync(long n)
{
    for (long i = 0; i < n; i++)
        g_sink = (void *)(long)c->fsync(g_null); /* EINVAL on /dev/null: the call, not the disk */
}

static void row_send_recv(long n)
{
    for (long i = 0; i < n; i++)
        if (c->send(g_pair[0], "x", 1, 0) != 1 || c->recv(g_pair[1], &g_byte, 1, 0) != 1)
            abort();
}

static void row_malloc(long n)
{
    for (long i = 0; i < n; i++) {
        void *p = c->malloc(64);
        g_sink = p;
        c->free(p);
    }
}

static void row_calloc(long n)
{
    for (long i = 0; i < n; i++) {
        void *p = c->calloc(1, 64);
        g_sink = p;
        c->free(p);
    }
}

static int g_idle_pipe[2];

/* Waits on a pipe nobody writes to: a thread that exists and never runs. */
static void *idle_thread(void *arg)
{
    (void)arg;
    char byte;
    for (;;)
        if (read(g_idle_pipe[0], &byte, 1) <= 0)
            return NULL;
}

struct row {
    const char *name;
    void (*fn)(long);
    long n;
};

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const char *idle_env = getenv("BENCH_IDLE_THREAD");
    int idle = idle_env != NULL && strcmp(idle_env, "1") == 0;
    pthread_t idler;
    if (idle && (pipe(g_idle_pipe) != 0 || pthread_create(&idler, NULL, idle_thread, NULL) != 0))
        return 1;
    g_own = (struct calls){write, read, pread64, writev, open, close, fsync, send, recv, malloc, calloc, free};
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc == NULL)
        return 1;
#define LIBC(name) (__typeof__(g_libc.name))dlsym(libc, #name)
    g_libc = (struct calls){LIBC(write), LIBC(read), LIBC(pread64), LIBC(writev), LIBC(open), LIBC(close),
                            LIBC(fsync), LIBC(send), LIBC(recv), LIBC(malloc), LIBC(calloc), LIBC(free)};
    g_null = open("/dev/null", O_WRONLY);
    g_zero = open("/dev/zero", O_RDONLY);
    if (g_null < 0 || g_zero < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, g_pair) != 0)
        return 1;
    /* Calls per round; 1001 rounds of each kind. */
    const struct row rows[] = {
        {"write", row_write, 200},
        {"read", row_read, 200},
        {"pread64", row_pread64, 200},
        {"writev", row_writev, 200},
        {"open+close", row_open_close, 50},
        {"fsync", row_fsync, 200},
        {"send+recv", row_send_recv, 50},
        {"malloc+free", row_malloc, 5000},
        {"calloc+free", row_calloc, 5000},
    };
    enum { ROUNDS = 1001 };
    static double own[ROUNDS], bare[ROUNDS];
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        long n = rows[r].n;
        int rounds = quick ? ROUNDS / 10 : ROUNDS;
        rows[r].fn(n * 10); /* warm up */
        for (int k = 0; k < rounds; k++) {
            for (int which = 0; which < 2; which++) {
                c = which == 0 ? &g_own : &g_libc;
                double t0 = now_ns();
                rows[r].fn(n);
                (which == 0 ? own : bare)[k] = (now_ns() - t0) / (double)n;
            }
        }
        c = &g_own;
        qsort(own, (size_t)rounds, sizeof(own[0]), cmp_double);
        qsort(bare, (size_t)rounds, sizeof(bare[0]), cmp_double);
        printf("%s %.2f %.2f\n", rows[r].name, own[rounds / 10], bare[rounds / 10]);
    }
    return 0;
}
