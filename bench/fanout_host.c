/*
 * fanout_host.c - the server side of the fan-out bench: a process that links errinj, runs its
 * server and fires one point in a loop on command, so that the driver can measure the server's
 * CPU and memory while bench_sse_clients reads.
 *
 *     bench_fanout_host [--history N] [--max-subscribers N]
 *
 * Prints "port P" once the server listens, then one line per command on stdin:
 *   fire N   -> fires the point "fanout" N times back to back; "fired N T0 T1" (CLOCK_MONOTONIC ns)
 *   stats    -> "stats utime_us=U stime_us=S rss_kb=R hwm_kb=H"  (this process: the server)
 *   quit     -> stops the server and exits
 * The library's per-fire log line is silenced: the bench measures events, not stderr.
 */
#define _GNU_SOURCE
#include <errinj.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static void fire(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        ERRINJ_ENTER("fanout");
}

int main(int argc, char **argv)
{
    errinj_server_opts opts = {.listen = "127.0.0.1:0", .history = 1u << 17, .max_subscribers = 2048};
    static const struct option longopts[] = {{"history", required_argument, NULL, 'h'},
                                             {"max-subscribers", required_argument, NULL, 'm'},
                                             {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (o == 'h')
            opts.history = (unsigned)strtoul(optarg, NULL, 10);
        else if (o == 'm')
            opts.max_subscribers = (unsigned)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    /* Each subscriber is a socket: lift the 1024-descriptor default. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    errinj_set_log(NULL, NULL);
    int rc = errinj_enable("fanout", false, NULL);
    errinj_server *srv = NULL;
    if (rc == 0)
        rc = errinj_server_start(&opts, &srv);
    if (rc != 0) {
        fprintf(stderr, "bench_fanout_host: %s\n", errinj_strerror(rc));
        return 1;
    }
    printf("port %u\n", errinj_server_port(srv));

    char line[128];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "fire ", 5) == 0) {
            unsigned long n = strtoul(line + 5, NULL, 10);
            long long t0 = mono_ns();
            fire(n);
            long long t1 = mono_ns();
            printf("fired %lu %lld %lld\n", n, t0, t1);
        } else if (strncmp(line, "stats", 5) == 0) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            printf("stats utime_us=%lld stime_us=%lld rss_kb=%ld hwm_kb=%ld\n",
                   (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
                   (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, status_kb("VmRSS"),
                   status_kb("VmHWM"));
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            printf("error unknown command\n");
        }
    }
    errinj_server_stop(srv);
    return 0;
}
