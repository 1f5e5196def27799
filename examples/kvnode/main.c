/*
 * main.c - kvnode: a small sharded key-value server with errinj points on its real paths.
 *
 *     kvnode [--listen HOST:PORT] [--api HOST:PORT] [--shards N] [--log FILE] [--token T]
 *
 * It starts N shard threads (store.c), the line-protocol listener (net.c) and errinj's HTTP
 * server on --api, then prints one line to stdout for whoever started it (a test reads the
 * real ports from it when it passed port 0):
 *
 *     kvnode ready listen=127.0.0.1:7000 api=127.0.0.1:10000 shards=4
 *
 * The main thread accepts connections and waits for SIGTERM or SIGINT in the same poll():
 * the signals are blocked in every thread and read from a signalfd, so the shutdown runs
 * as ordinary code, not in a signal handler. Shutdown stops accepting, stops the errinj
 * server (which disables every injection and so releases any parked PUT), lets each
 * connection finish the request it has in flight, stops the shards, frees everything and
 * exits 0.
 *
 * ERRINJ_AT_STARTUP is honoured (injections enabled before the first request); ERRINJ_TOKEN
 * is the token when --token is not given. ERRINJ_HTTP is refused: --api says where the API is.
 */
#define _GNU_SOURCE
#include "kvnode.h"

#include <errinj.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct options {
    const char *listen;
    const char *api;
    unsigned shards;
    const char *log;
    const char *token;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kvnode [--listen HOST:PORT] [--api HOST:PORT] [--shards N] [--log FILE] [--token T]\n"
            "  --listen  line protocol (PUT/GET/DEL), default 127.0.0.1:7000; port 0 picks one\n"
            "  --api     errinj REST API and event stream, default 127.0.0.1:10000; port 0 picks one\n"
            "  --shards  shard threads, 1 to 1024, default 4\n"
            "  --log     append the log to FILE instead of stderr\n"
            "  --token   require \"Authorization: Bearer T\" on the API (default: $ERRINJ_TOKEN)\n");
}

/* Returns 0, or 2 for a usage error (already reported). */
static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'}, {"api", required_argument, NULL, 'a'},
        {"shards", required_argument, NULL, 's'}, {"log", required_argument, NULL, 'L'},
        {"token", required_argument, NULL, 't'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (struct options){.listen = "127.0.0.1:7000", .api = "127.0.0.1:10000", .shards = 4,
                            .token = getenv("ERRINJ_TOKEN")};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            opt->listen = optarg;
            break;
        case 'a':
            opt->api = optarg;
            break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long n = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || n < 1 || n > 1024) {
                fprintf(stderr, "kvnode: --shards must be 1 to 1024, not \"%s\"\n", optarg);
                return 2;
            }
            opt->shards = (unsigned)n;
            break;
        }
        case 'L':
            opt->log = optarg;
            break;
        case 't':
            opt->token = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "kvnode: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

/* "host" as given, in brackets when it is an IPv6 address, for the ready line. */
static void format_host(const char *addr, char *out, size_t outlen)
{
    char host[256], port[16];
    if (kv_split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0)
        snprintf(out, outlen, "?");
    else
        snprintf(out, outlen, strchr(host, ':') != NULL ? "[%s]" : "%s", host);
}

/* Blocks SIGTERM and SIGINT in this thread and every thread it creates from now on, and
 * returns a signalfd that reads them. */
static int open_signalfd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    /* A client that hangs up must not kill the node; every send() also says MSG_NOSIGNAL,
     * but a log on a closed pipe would raise it too. */
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Accepts connections until SIGTERM or SIGINT. */
static void serve(struct kv_net *net, int sigfd)
{
    struct pollfd fds[2] = {
        {.fd = kv_net_fd(net), .events = POLLIN},
        {.fd = sigfd, .events = POLLIN},
    };
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            KV_LOG(KV_ERROR, "poll failed: %s; shutting down", strerror(errno));
            return;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                KV_LOG(KV_INFO, "received %s, shutting down", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                return;
            }
        }
        if (fds[0].revents & POLLIN)
            kv_net_accept(net);
    }
}

int main(int argc, char **argv)
{
    struct options opt;
    if (parse_options(argc, argv, &opt) != 0)
        return 2;

    int sigfd = open_signalfd();
    if (sigfd < 0) {
        fprintf(stderr, "kvnode: signalfd: %s\n", strerror(errno));
        return 1;
    }
    int rc = kv_log_open(opt.log);
    if (rc != 0) {
        fprintf(stderr, "kvnode: cannot open log %s: %s\n", opt.log, strerror(-rc));
        close(sigfd);
        return 1;
    }

    int status = 1;
    struct kv_store *store = NULL;
    struct kv_net *net = NULL;
    errinj_server *api = NULL;

    /* ERRINJ_AT_STARTUP before the shards exist, so its injections are on for the first request. */
    if (getenv("ERRINJ_HTTP") != NULL) {
        KV_LOG(KV_ERROR, "ERRINJ_HTTP is set; kvnode starts its own API server: use --api instead");
        goto out;
    }
    rc = errinj_init_from_env();
    if (rc != 0) {
        KV_LOG(KV_ERROR, "ERRINJ_AT_STARTUP: %s", errinj_strerror(rc));
        goto out;
    }

    rc = kv_store_start(opt.shards, &store);
    if (rc != 0) {
        KV_LOG(KV_ERROR, "cannot start %u shards: %s", opt.shards, strerror(-rc));
        goto out;
    }
    unsigned listen_port;
    rc = kv_net_listen(opt.listen, store, &net, &listen_port);
    if (rc != 0) {
        KV_LOG(KV_ERROR, "cannot listen on %s: %s", opt.listen, strerror(-rc));
        goto out;
    }
    errinj_server_opts api_opts = {.listen = opt.api, .token = opt.token};
    rc = errinj_server_start(&api_opts, &api);
    if (rc != 0) {
        KV_LOG(KV_ERROR, "cannot start the errinj API on %s: %s", opt.api, errinj_strerror(rc));
        api = NULL;
        goto out;
    }

    char listen_host[260], api_host[260];
    format_host(opt.listen, listen_host, sizeof(listen_host));
    format_host(opt.api, api_host, sizeof(api_host));
    KV_LOG(KV_INFO, "serving on %s:%u, errinj API on %s:%u, %u shards", listen_host, listen_port,
           api_host, errinj_server_port(api), opt.shards);
    printf("kvnode ready listen=%s:%u api=%s:%u shards=%u\n", listen_host, listen_port, api_host,
           errinj_server_port(api), opt.shards);
    fflush(stdout);

    serve(net, sigfd);
    status = 0;

out:
    /* The order matters. The API goes first: stopping it disables every injection, which
     * releases a PUT parked in kv_put_before_apply, and nobody can enable one again. Then each
     * connection finishes its request in flight (its shard is still running) and ends; only
     * when no connection can submit work do the shards drain and stop. */
    errinj_server_stop(api);
    kv_net_stop(net);
    kv_store_stop(store);
    if (status == 0)
        KV_LOG(KV_INFO, "stopped");
    kv_log_close();
    close(sigfd);
    return status;
}
