/*
 * net.c - kvnode's line protocol over TCP: the listener and one thread per connection.
 *
 *     PUT key value   ->  OK | ERR reason        (value: the rest of the line, spaces allowed)
 *     GET key         ->  VALUE v | NOTFOUND
 *     DEL key         ->  OK
 *     anything else   ->  ERR bad request
 *
 * Lines end in "\n" ("\r\n" accepted); keys have no spaces. A line over KV_LINE_MAX bytes is
 * answered "ERR line too long" and its connection closed.
 *
 * The caller's thread accepts (kv_net_accept() from its poll loop); that is where kv_accept
 * fires: when it is enabled the new connection is answered "ERR injected" and closed. Each
 * connection then gets a thread that reads its lines, hands each request to the key's shard
 * (kv_store_execute()) and writes the reply the shard produced. One request per connection is
 * in flight at a time, so replies come in the order of the requests, whatever shards they hit.
 *
 * A connection thread never closes its own socket: the accepting thread closes it after joining
 * the thread, so a descriptor number is never reused while kv_net_stop() may still shut it down.
 */
#define _GNU_SOURCE
#include "kvnode.h"

#include <errinj.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A client that stops reading its replies for this long is dropped, so it cannot hold a
 * connection thread (and shutdown) forever. */
#define SEND_TIMEOUT_S 10

struct conn {
    struct conn *next;
    struct kv_net *net;
    int fd;
    unsigned long id;
    char peer_host[NI_MAXHOST]; /* numeric, as inet_ntop writes it */
    pthread_t thread;
    atomic_bool finished; /* set by the connection thread as its last act */
};

struct kv_net {
    int listen_fd;
    struct kv_store *store;
    atomic_bool stopping;
    /* The accepting thread changes the list; the disconnect handler (errinj's server thread)
     * walks it too, so both hold conns_mu. */
    pthread_mutex_t conns_mu;
    struct conn *conns;
    unsigned long next_id;
};

int kv_split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *host_start = addr, *host_end, *colon;
    if (addr[0] == '[') {
        host_start = addr + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':')
            return -EINVAL;
        colon = host_end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return -EINVAL;
        host_end = colon;
    }
    size_t hlen = (size_t)(host_end - host_start);
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (hlen == 0 || hlen >= hostlen || plen == 0 || plen >= portlen || strspn(p, "0123456789") != plen)
        return -EINVAL;
    memcpy(host, host_start, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* Sends all of buf. False when the peer is gone or stopped reading for SEND_TIMEOUT_S. */
static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Parses one line (without its "\n" or "\r\n") in place. False for a malformed request. */
static bool parse_request(char *line, size_t len, struct kv_request *req)
{
    if (memchr(line, '\0', len) != NULL)
        return false;
    char *space = strchr(line, ' ');
    if (space == NULL)
        return false;
    *space = '\0';
    char *key = space + 1;
    if (strcmp(line, "PUT") == 0) {
        char *value_sep = strchr(key, ' ');
        if (value_sep == NULL)
            return false;
        *value_sep = '\0';
        req->op = KV_PUT;
        req->value = value_sep + 1;
        if (req->value[0] == '\0')
            return false;
    } else if (strcmp(line, "GET") == 0) {
        req->op = KV_GET;
    } else if (strcmp(line, "DEL") == 0) {
        req->op = KV_DEL;
    } else {
        return false;
    }
    req->key = key;
    return key[0] != '\0' && strchr(key, ' ') == NULL;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    char *buf = malloc(KV_LINE_MAX);
    char *reply = malloc(KV_REPLY_MAX);
    size_t len = 0;     /* bytes in buf */
    size_t scanned = 0; /* of which known to hold no "\n" */

    while (buf != NULL && reply != NULL && !atomic_load(&c->net->stopping)) {
        char *nl = memchr(buf + scanned, '\n', len - scanned);
        if (nl == NULL) {
            scanned = len;
            if (len == KV_LINE_MAX) {
                send_all(c->fd, "ERR line too long\n", 18);
                break;
            }
            ssize_t n = recv(c->fd, buf + len, KV_LINE_MAX - len, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
            continue;
        }

        size_t line_len = (size_t)(nl - buf);
        size_t consumed = line_len + 1;
        if (line_len > 0 && buf[line_len - 1] == '\r')
            line_len--;
        buf[line_len] = '\0';

        struct kv_request req = {.reply = reply};
        if (parse_request(buf, line_len, &req))
            kv_store_execute(c->net->store, &req);
        else
            snprintf(reply, KV_REPLY_MAX, "ERR bad request\n");
        if (!send_all(c->fd, reply, strlen(reply)))
            break;

        memmove(buf, buf + consumed, len - consumed);
        len -= consumed;
        scanned = 0;
    }
    if (buf == NULL || reply == NULL)
        KV_LOG(KV_ERROR, "connection %lu: out of memory", c->id);
    free(buf);
    free(reply);
    KV_LOG(KV_INFO, "connection %lu closed", c->id);
    atomic_store(&c->finished, true);
    return NULL;
}

static void conn_free(struct conn *c)
{
    pthread_join(c->thread, NULL);
    close(c->fd);
    free(c);
}

/* Joins and frees the connections whose threads have ended. */
static void reap(struct kv_net *net)
{
    pthread_mutex_lock(&net->conns_mu);
    struct conn **link = &net->conns;
    while (*link != NULL) {
        struct conn *c = *link;
        if (atomic_load(&c->finished)) {
            *link = c->next;
            conn_free(c);
        } else {
            link = &c->next;
        }
    }
    pthread_mutex_unlock(&net->conns_mu);
}

/* The textual address of a socket's peer in inet_ntop's form ("" if it has none). */
static void peer_host_of(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
}

/*
 * errinj's disconnect handler (POST /v2/error_injection/disconnect/{ip}, as ScyllaDB's): drops
 * every data connection from ip. shutdown() ends each connection thread's read at once; the
 * accepting thread closes and frees them as usual.
 */
static void disconnect_from(const char *ip, void *arg)
{
    struct kv_net *net = arg;
    unsigned char addr[sizeof(struct in6_addr)];
    char want[INET6_ADDRSTRLEN] = "";
    if (inet_pton(AF_INET, ip, addr) == 1)
        inet_ntop(AF_INET, addr, want, sizeof(want));
    else if (inet_pton(AF_INET6, ip, addr) == 1)
        inet_ntop(AF_INET6, addr, want, sizeof(want));
    unsigned dropped = 0;
    pthread_mutex_lock(&net->conns_mu);
    for (struct conn *c = net->conns; c != NULL; c = c->next) {
        if (!atomic_load(&c->finished) && strcmp(c->peer_host, want) == 0) {
            shutdown(c->fd, SHUT_RDWR);
            dropped++;
        }
    }
    pthread_mutex_unlock(&net->conns_mu);
    KV_LOG(KV_WARN, "disconnect %s: dropped %u connection(s)", ip, dropped);
}

static void describe_peer(const struct sockaddr_storage *sa, socklen_t salen, char *out, size_t outlen)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo((const struct sockaddr *)sa, salen, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(out, outlen, "?");
    else
        snprintf(out, outlen, strchr(host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, port);
}

void kv_net_accept(struct kv_net *net)
{
    reap(net);

    struct sockaddr_storage peer;
    socklen_t peerlen = sizeof(peer);
    int fd = accept4(net->listen_fd, (struct sockaddr *)&peer, &peerlen, SOCK_CLOEXEC);
    if (fd < 0) {
        /* The listener is non-blocking: a client that connected and vanished before we got
         * here leaves nothing to accept, which is not worth a log line. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            KV_LOG(KV_WARN, "accept failed: %s", strerror(errno));
        return;
    }
    unsigned long id = ++net->next_id;
    char who[NI_MAXHOST + NI_MAXSERV + 4];
    describe_peer(&peer, peerlen, who, sizeof(who));

    if (ERRINJ_ENTER("kv_accept")) {
        KV_LOG(KV_WARN, "connection %lu from %s refused by injection", id, who);
        send_all(fd, "ERR injected\n", 13);
        close(fd);
        return;
    }

    struct timeval send_timeout = {.tv_sec = SEND_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));

    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        KV_LOG(KV_ERROR, "connection %lu from %s dropped: out of memory", id, who);
        close(fd);
        return;
    }
    c->net = net;
    c->fd = fd;
    c->id = id;
    peer_host_of(&peer, c->peer_host, sizeof(c->peer_host));
    atomic_init(&c->finished, false);
    /* Logged before the thread exists, so "accepted" always comes before "closed". */
    KV_LOG(KV_INFO, "connection %lu from %s accepted", id, who);
    int rc = pthread_create(&c->thread, NULL, conn_main, c);
    if (rc != 0) {
        KV_LOG(KV_ERROR, "connection %lu from %s dropped: no thread: %s", id, who, strerror(rc));
        close(fd);
        free(c);
        return;
    }
    pthread_mutex_lock(&net->conns_mu);
    c->next = net->conns;
    net->conns = c;
    pthread_mutex_unlock(&net->conns_mu);
}

int kv_net_fd(const struct kv_net *net)
{
    return net->listen_fd;
}

int kv_net_listen(const char *addr, struct kv_store *store, struct kv_net **out, unsigned *port)
{
    char host[256], service[16];
    if (kv_split_addr(addr, host, sizeof(host), service, sizeof(service)) != 0)
        return -EINVAL;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -EINVAL;
    int fd = -1, err = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            err = -errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err;

    struct sockaddr_storage bound;
    socklen_t boundlen = sizeof(bound);
    struct kv_net *net = calloc(1, sizeof(*net));
    if (net == NULL || getsockname(fd, (struct sockaddr *)&bound, &boundlen) != 0) {
        err = net == NULL ? -ENOMEM : -errno;
        free(net);
        close(fd);
        return err;
    }
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    net->listen_fd = fd;
    net->store = store;
    atomic_init(&net->stopping, false);
    pthread_mutex_init(&net->conns_mu, NULL);
    errinj_set_disconnect_handler(disconnect_from, net);
    *out = net;
    return 0;
}

void kv_net_stop(struct kv_net *net)
{
    if (net == NULL)
        return;
    /* The errinj server has stopped (main stops it first), so no disconnect call is running. */
    errinj_set_disconnect_handler(NULL, NULL);
    close(net->listen_fd);
    atomic_store(&net->stopping, true);
    /* Shut down only the reading side: a thread blocked in recv() sees end of file, while one
     * whose request is still on a shard can yet write its reply, so a client whose write was
     * in flight (a PUT released from its injection by the shutdown) learns how it ended. */
    for (struct conn *c = net->conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RD);
    while (net->conns != NULL) {
        struct conn *c = net->conns;
        net->conns = c->next;
        conn_free(c);
    }
    pthread_mutex_destroy(&net->conns_mu);
    free(net);
}
