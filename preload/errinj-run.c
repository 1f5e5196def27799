/*
 * errinj-run - runs a program with liberrinj-preload.so preloaded and errinj's server inside it.
 *
 *   errinj-run [--listen ADDR] [--token T] [--] PROGRAM [ARG]...
 *
 * It only prepares the environment and execs PROGRAM (same process, same pid): LD_PRELOAD gets
 * the preload library first, ERRINJ_RUN_LISTEN the address, ERRINJ_TOKEN the token, and
 * ERRINJ_RUN_PID the pid, which tells the preload that this is the program errinj-run started
 * (a failure to listen is fatal there, and only there). The library is looked up in
 * ERRINJ_PRELOAD, beside this executable, in ../lib and ../LIBDIR relative to it, then where it
 * was installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ERRINJ_PRELOAD_INSTALLED
#define ERRINJ_PRELOAD_INSTALLED "/usr/local/lib/liberrinj-preload.so"
#endif
#ifndef ERRINJ_LIBDIR_NAME
#define ERRINJ_LIBDIR_NAME "lib"
#endif
#define PRELOAD_NAME "liberrinj-preload.so"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: errinj-run [--listen ADDR] [--token T] [--] PROGRAM [ARG]...\n"
            "Runs PROGRAM with liberrinj-preload.so preloaded: its libc calls become errinj points\n"
            "(libc.open, libc.read, libc.write, ... libc.malloc) and errinj's REST API and event\n"
            "stream listen inside it.\n"
            "\n"
            "Options:\n"
            "  -l, --listen ADDR  host:port of the API (default 127.0.0.1:10000; port 0 picks a\n"
            "                     free one and prints it on stderr)\n"
            "  -t, --token T      require \"Authorization: Bearer T\" on every request\n"
            "  -h, --help         print this help and exit\n"
            "  -V, --version      print the version and exit\n"
            "\n"
            "Exit status: PROGRAM's, or 127 when it cannot be run or the API cannot listen.\n");
}

static bool readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* The preload library's path, or NULL. */
static const char *find_preload(char *buf, size_t len)
{
    const char *env = getenv("ERRINJ_PRELOAD");
    if (env != NULL && env[0] != '\0')
        return env;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            const char *candidates[] = {"%s/" PRELOAD_NAME, "%s/../lib/" PRELOAD_NAME,
                                        "%s/../" ERRINJ_LIBDIR_NAME "/" PRELOAD_NAME};
            for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
                snprintf(buf, len, candidates[i], self);
                if (readable(buf))
                    return buf;
            }
        }
    }
    return readable(ERRINJ_PRELOAD_INSTALLED) ? ERRINJ_PRELOAD_INSTALLED : NULL;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:10000";
    const char *token = NULL;
    int c;
    /* "+": options end at PROGRAM, so its own options are left alone. */
    while ((c = getopt_long(argc, argv, "+l:t:hV", options, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("errinj-run %s\n", ERRINJ_RUN_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "errinj-run: no PROGRAM given\n");
        usage(stderr);
        return 2;
    }
    if (listen[0] == '\0' || strchr(listen, ':') == NULL) {
        fprintf(stderr, "errinj-run: --listen wants host:port, not \"%s\"\n", listen);
        return 2;
    }
    char found[PATH_MAX];
    const char *preload = find_preload(found, sizeof(found));
    if (preload == NULL) {
        fprintf(stderr, "errinj-run: cannot find %s (set ERRINJ_PRELOAD to its path)\n", PRELOAD_NAME);
        return 127;
    }
    char real[PATH_MAX];
    if (realpath(preload, real) != NULL)
        preload = real;

    /* Ours first, then whatever the caller preloads already. */
    const char *before = getenv("LD_PRELOAD");
    size_t need = strlen(preload) + (before != NULL ? strlen(before) + 2 : 1);
    char *ld_preload = malloc(need);
    char pid[32];
    if (ld_preload == NULL) {
        fprintf(stderr, "errinj-run: out of memory\n");
        return 127;
    }
    snprintf(ld_preload, need, "%s%s%s", preload, before != NULL && before[0] != '\0' ? ":" : "",
             before != NULL ? before : "");
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    const char *port = strrchr(listen, ':') + 1;
    if (setenv("LD_PRELOAD", ld_preload, 1) != 0 || setenv("ERRINJ_RUN_LISTEN", listen, 1) != 0 ||
        setenv("ERRINJ_RUN_PID", pid, 1) != 0 || (token != NULL && setenv("ERRINJ_TOKEN", token, 1) != 0) ||
        (strcmp(port, "0") == 0 && setenv("ERRINJ_RUN_ANNOUNCE", "1", 1) != 0)) {
        fprintf(stderr, "errinj-run: cannot set the environment: %s\n", strerror(errno));
        return 127;
    }
    if (strcmp(port, "0") != 0)
        unsetenv("ERRINJ_RUN_ANNOUNCE");
    free(ld_preload);
    execvp(argv[optind], argv + optind);
    fprintf(stderr, "errinj-run: %s: %s\n", argv[optind], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
