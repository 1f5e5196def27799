/*
 * server.c - the embedded HTTP server's life: options, the listener, libmicrohttpd's daemon,
 * the server thread, and stopping it all again.
 *
 * The server is split by concern (server.h says who reads what): this file starts and stops it;
 * server_loop.c is its one thread, which drains events into the history (history.c) and runs
 * libmicrohttpd's loop; mhd_request.c reads requests, mhd_dispatch.c answers them with what
 * http.c made of them, and mhd_sse.c serves the event streams, whose cursors are stream.c's.
 * One server per process, since the ring from firing threads (events.c) is process-wide.
 * Stopping ends every stream cleanly and frees nothing application threads still use.
 */
#define _GNU_SOURCE
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:10000"
#define HISTORY_BYTES_MAX (64u * 1024 * 1024)
/* Limits of the options, so that no derived figure overflows: a day, 16 M events, 64 K streams. */
#define HEARTBEAT_MS_MAX (24u * 3600 * 1000)
#define HISTORY_MAX (16u * 1024 * 1024)
#define SUBSCRIBERS_MAX 65536u

/* One server per process: the ring is process-wide. */
static atomic_bool g_running;
static _Atomic(struct errinj_server *) g_server;

/* The WebSocket sessions' view of the history (ws.h); mu held. */
static struct errinj__history_view history_of(void *arg)
{
    struct errinj_server *srv = arg;
    return errinj__history_view_of(&srv->history);
}

static void status_of(void *ctx, unsigned *subscribers, uint64_t *dropped)
{
    struct errinj_server *srv = ctx;
    pthread_mutex_lock(&srv->mu);
    *subscribers = srv->client_count + errinj__ws_count(srv->ws);
    *dropped = srv->lost;
    pthread_mutex_unlock(&srv->mu);
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* Binds host:port ("[v6]:port" for IPv6). Returns the fd or a negative ERRINJ_E* code. */
static int open_listener(const char *listen_addr, bool allow_remote, int *family)
{
    char host[256];
    const char *port;
    if (!errinj__hostport_split(listen_addr, host, sizeof(host), &port))
        return ERRINJ_EINVAL;
    char *end;
    long pnum = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || pnum < 0 || pnum > 65535)
        return ERRINJ_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res) != 0 || res == NULL)
        return ERRINJ_EINVAL;
    int rc = ERRINJ_EINVAL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!errinj__sockaddr_is_loopback(ai->ai_addr) && !allow_remote) {
            rc = ERRINJ_EACCES;
            break;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = ERRINJ_EIO;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            rc = errno == EADDRINUSE ? ERRINJ_EADDRINUSE : errno == EACCES ? ERRINJ_EACCES : ERRINJ_EIO;
            close(fd);
            continue;
        }
        *family = ai->ai_family;
        freeaddrinfo(res);
        return fd;
    }
    freeaddrinfo(res);
    return rc;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void server_free(struct errinj_server *srv)
{
    if (srv->ring != NULL)
        errinj__ring_detach(srv->ring);
    errinj__history_fini(&srv->history);
    free(srv->batch);
    errinj__waits_free(srv->waits);
    errinj__ws_free(srv->ws);
    errinj__conns_free(srv->conns);
    errinj__loop_free(srv->loop);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    pthread_mutex_destroy(&srv->mu);
    free(srv->token);
    free(srv);
}

int errinj_server_start(const errinj_server_opts *opts, errinj_server **out)
{
    static const errinj_server_opts defaults = {0};
    if (out == NULL)
        return ERRINJ_EINVAL;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    bool expected = false;
    if (!atomic_compare_exchange_strong(&g_running, &expected, true))
        return ERRINJ_EINVAL; /* one server per process */
    struct errinj_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        atomic_store(&g_running, false);
        return ERRINJ_ENOMEM;
    }
    srv->listen_fd = -1;
    srv->wake_fd = -1;
    pthread_mutex_init(&srv->mu, NULL);
    srv->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 15000;
    size_t history_cap = opts->history ? opts->history : 65536;
    srv->max_subscribers = opts->max_subscribers ? opts->max_subscribers : 1024;
    int rc = ERRINJ_EINVAL;
    if (srv->heartbeat_ms > HEARTBEAT_MS_MAX || history_cap > HISTORY_MAX || srv->max_subscribers > SUBSCRIBERS_MAX)
        goto fail;
    srv->allow_remote = opts->allow_remote;
    rc = ERRINJ_ENOMEM;
    if (opts->token != NULL && opts->token[0] != '\0' && (srv->token = strdup(opts->token)) == NULL)
        goto fail;
    srv->http = (struct errinj__http_config){srv->token, srv->allow_remote, status_of, srv};
    srv->batch = malloc(sizeof(*srv->batch));
    /* Waits are bounded like streams, by their own count: a suite's waits never take the
     * streams' slots. */
    srv->waits = errinj__waits_new(srv->max_subscribers, errinj__mhd_resume);
    if (srv->batch == NULL || srv->waits == NULL)
        goto fail;
    int family = AF_INET;
    srv->listen_fd = open_listener(opts->listen ? opts->listen : DEFAULT_LISTEN, opts->allow_remote, &family);
    if (srv->listen_fd < 0) {
        rc = srv->listen_fd;
        goto fail;
    }
    srv->port = bound_port(srv->listen_fd);
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0) {
        rc = ERRINJ_EIO;
        goto fail;
    }
    uint64_t base = 0;
    srv->loop = errinj__loop_new(srv->wake_fd);
    srv->conns = srv->loop != NULL ? errinj__conns_new(srv->loop) : NULL;
    struct errinj__ws_host ws_host = {&srv->mu, history_of, srv};
    srv->ws = srv->conns != NULL ? errinj__ws_new(srv->loop, &ws_host, srv->max_subscribers) : NULL;
    if (srv->ws == NULL) {
        rc = srv->loop == NULL ? ERRINJ_EIO : ERRINJ_ENOMEM;
        goto fail;
    }
    srv->ring = errinj__ring_attach(65536, errinj__server_wake, srv, &base);
    if (srv->ring == NULL || errinj__history_init(&srv->history, history_cap, HISTORY_BYTES_MAX, base) != 0)
        goto fail;
    /* libmicrohttpd without its own thread: the server thread runs its loop (server_loop.c). */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned idle_s = 2 * srv->heartbeat_ms / 1000 + 30;
    /* Streams and waits have max_subscribers each, REST connections a budget of their own that
     * the guard keeps (conns.h), so this is reached only if the guard could not keep it. */
    srv->connection_limit = 2 * srv->max_subscribers + ERRINJ__REST_CONNS_MAX + 64;
    srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, errinj__mhd_on_request, srv,
                                MHD_OPTION_EXTERNAL_LOGGER, errinj__mhd_log, srv,
                                MHD_OPTION_LISTEN_SOCKET, srv->listen_fd,
                                MHD_OPTION_URI_LOG_CALLBACK, errinj__mhd_on_uri, srv,
                                MHD_OPTION_NOTIFY_COMPLETED, errinj__mhd_on_completed, srv,
                                MHD_OPTION_NOTIFY_CONNECTION, errinj__conns_notify, srv->conns,
                                MHD_OPTION_UNESCAPE_CALLBACK, errinj__mhd_keep_escaped, srv,
                                MHD_OPTION_CONNECTION_LIMIT, srv->connection_limit,
                                MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
                                MHD_OPTION_END);
    if (srv->mhd == NULL) {
        rc = ERRINJ_EIO;
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    srv->mhd_watch = (struct errinj__watch){.fd = info != NULL ? info->epoll_fd : -1};
    srv->listen_watch = (struct errinj__watch){.fd = srv->listen_fd};
    if (srv->mhd_watch.fd < 0 || errinj__loop_watch(srv->loop, &srv->mhd_watch, EPOLLIN) != 0) {
        MHD_stop_daemon(srv->mhd);
        srv->listen_fd = -1; /* MHD closed it */
        rc = ERRINJ_EIO;
        goto fail;
    }
    if (pthread_create(&srv->thread, NULL, errinj__server_main, srv) != 0) {
        MHD_stop_daemon(srv->mhd);
        srv->listen_fd = -1; /* MHD closed it */
        rc = ERRINJ_ENOMEM;
        goto fail;
    }
    atomic_store(&g_server, srv);
    errinj__set_delivery_wait(errinj__server_wait_delivered, srv);
    *out = srv;
    return 0;
fail:
    server_free(srv);
    atomic_store(&g_running, false);
    return rc;
}

unsigned errinj_server_port(const errinj_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

/* In a fork()ed child: the server thread stayed in the parent. */
static void server_fork_child(void)
{
    struct errinj_server *srv = atomic_exchange(&g_server, NULL);
    if (srv == NULL)
        return;
    /* Its threads did not survive fork(): stopping them would hang. Close what would keep the
     * parent's port and wake-ups tied to the child, leak the rest, and let the child start anew. */
    srv->orphaned = true;
    close(srv->wake_fd);
    close(srv->listen_fd);
    atomic_store(&g_running, false);
}

__attribute__((constructor)) static void server_register_fork_hooks(void)
{
    static const struct errinj__fork_hooks hooks = {NULL, NULL, server_fork_child};
    errinj__lifecycle_register(ERRINJ__LAYER_SERVER, &hooks);
}

void errinj_server_stop(errinj_server *srv)
{
    if (srv == NULL || srv->orphaned)
        return;
    atomic_store(&g_server, NULL);
    errinj__set_delivery_wait(NULL, NULL); /* waits out an abort's wait in progress */
    /* What was published before this call is what the streams still get. */
    srv->stop_seq = errinj__seq_last();
    atomic_store(&srv->consumer_stop, true);
    errinj__server_wake(srv);
    pthread_join(srv->thread, NULL); /* it ended the streams */
    MHD_stop_daemon(srv->mhd);
    srv->listen_fd = -1; /* MHD closed it */
    /* No thread of the application may stay parked for a message only the server could send. */
    errinj_disable_all();
    server_free(srv);
    atomic_store(&g_running, false);
}
