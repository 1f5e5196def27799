/*
 * net.c - the one HTTP/1.1 and SSE client of the C tests (unit, attack, stress): blocking, over
 * plain sockets, one request per connection. See net.h for why it is hand-rolled.
 */
#define _GNU_SOURCE
#include "net.h"

#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- connections ---------------------------------------------------------------------------- */


int net_connect_family(int family, unsigned port, double timeout_s, int rcvbuf)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int net_connect(unsigned port, double timeout_s, int rcvbuf)
{
    return net_connect_family(AF_INET, port, timeout_s, rcvbuf);
}

int net_connect_nowait(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Closes with a TCP reset instead of a FIN: the abrupt disconnect of a crashed client. */
void net_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

bool net_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* ---- a growable byte buffer ------------------------------------------------------------ */


bool net_buf_add(struct net_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return false;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

void net_buf_consume(struct net_buf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

/* ---- chunked transfer decoding ---------------------------------------------------------- */


/* Feeds raw bytes; appends decoded bytes to out. Returns false on a malformed stream. */
bool net_chunked_feed(struct net_chunked *c, const char *p, size_t n, struct net_buf *out)
{
    for (size_t i = 0; i < n && c->state != CH_ERROR;) {
        switch (c->state) {
        case CH_SIZE:
        case CH_DATA_CRLF:
        case CH_TRAILER:
            if (p[i] == '\n') {
                c->line[c->line_len] = '\0';
                if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
                    c->line[--c->line_len] = '\0';
                if (c->state == CH_SIZE) {
                    char *end;
                    unsigned long long size = strtoull(c->line, &end, 16);
                    if (end == c->line) {
                        c->state = CH_ERROR;
                        break;
                    }
                    c->left = (size_t)size;
                    c->state = size == 0 ? CH_TRAILER : CH_DATA;
                } else if (c->state == CH_DATA_CRLF) {
                    c->state = c->line_len == 0 ? CH_SIZE : CH_ERROR;
                } else if (c->line_len == 0) {
                    c->state = CH_DONE; /* the blank line after the last chunk */
                }
                c->line_len = 0;
            } else if (c->line_len + 1 < sizeof(c->line)) {
                c->line[c->line_len++] = p[i];
            } else {
                c->state = CH_ERROR;
            }
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i < c->left ? n - i : c->left;
            if (!net_buf_add(out, p + i, take))
                return false;
            c->left -= take;
            i += take;
            if (c->left == 0)
                c->state = CH_DATA_CRLF;
            break;
        }
        case CH_DONE:
            i = n; /* nothing may follow on a Connection: close reply; ignore */
            break;
        case CH_ERROR:
            break;
        }
    }
    return c->state != CH_ERROR;
}

/* ---- plain requests ---------------------------------------------------------------------- */


void net_response_free(struct net_response *r)
{
    free(r->body.data);
    r->body = (struct net_buf){0};
}

/* Case-insensitive header lookup in r->headers: copies the value into out. */
bool net_header(const struct net_response *r, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->headers, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r\n");
            if (vlen >= len)
                vlen = len - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
    }
    return false;
}

/* Reads a response to its end (Content-Length, chunked end, or EOF). false if none. */
bool net_read_response(int fd, struct net_response *r)
{
    struct net_buf raw = {0};
    char buf[16384];
    size_t head_end = 0;
    long long content_length = -1;
    bool chunked = false;
    struct net_chunked ch = {0};
    r->status = 0;
    r->body = (struct net_buf){0};
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (head_end == 0) {
            if (!net_buf_add(&raw, buf, (size_t)n))
                break;
            char *end = strstr(raw.data, "\r\n\r\n");
            if (end == NULL)
                continue;
            head_end = (size_t)(end - raw.data) + 4;
            size_t hl = head_end < sizeof(r->headers) ? head_end : sizeof(r->headers) - 1;
            memcpy(r->headers, raw.data, hl);
            r->headers[hl] = '\0';
            if (sscanf(raw.data, "HTTP/1.%*d %d", &r->status) != 1)
                r->status = -1;
            char v[64];
            if (net_header(r, "Content-Length", v, sizeof(v)))
                content_length = atoll(v);
            if (net_header(r, "Transfer-Encoding", v, sizeof(v)) && strcasecmp(v, "chunked") == 0)
                chunked = true;
            const char *rest = raw.data + head_end;
            size_t rest_len = raw.len - head_end;
            if (chunked)
                net_chunked_feed(&ch, rest, rest_len, &r->body);
            else
                net_buf_add(&r->body, rest, rest_len);
        } else if (chunked) {
            net_chunked_feed(&ch, buf, (size_t)n, &r->body);
        } else {
            net_buf_add(&r->body, buf, (size_t)n);
        }
        if (head_end > 0 && ((chunked && (ch.state == CH_DONE || ch.state == CH_ERROR)) ||
                             (!chunked && content_length >= 0 && (long long)r->body.len >= content_length)))
            break;
    }
    free(raw.data);
    if (r->body.data == NULL)
        net_buf_add(&r->body, "", 0);
    return r->status != 0;
}

int net_request_family(int family, unsigned port, const char *method, const char *target, const char *extra,
                       const char *body, size_t body_len, double timeout_s, struct net_response *r)
{
    memset(r, 0, sizeof(*r));
    int fd = net_connect_family(family, port, timeout_s, 0);
    if (fd < 0)
        return 0;
    char head[4096];
    /* A Host with the real port, as curl or a browser sends it, unless the test gives its own. */
    bool has_host = extra != NULL && (strncasecmp(extra, "Host:", 5) == 0 || strcasestr(extra, "\r\nHost:") != NULL);
    char host[64] = "";
    if (!has_host)
        snprintf(host, sizeof(host), "Host: %s:%u\r\n", family == AF_INET6 ? "[::1]" : "127.0.0.1", port);
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\n%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, target, host, extra ? extra : "", body_len);
    bool ok = n > 0 && (size_t)n < sizeof(head) && net_send_all(fd, head, (size_t)n) &&
              (body_len == 0 || net_send_all(fd, body, body_len));
    if (ok)
        net_read_response(fd, r);
    close(fd);
    return r->status;
}

int net_request(unsigned port, const char *method, const char *target, const char *extra, const char *body,
                size_t body_len, double timeout_s, struct net_response *r)
{
    return net_request_family(AF_INET, port, method, target, extra, body, body_len, timeout_s, r);
}

int net_keepalive_request(int *fd, unsigned port, const char *method, const char *target, double timeout_s,
                          struct net_response *r)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0)
            *fd = net_connect(port, timeout_s, 0);
        if (*fd < 0)
            return 0;
        char head[512];
        int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 0\r\n\r\n",
                         method, target, port);
        memset(r, 0, sizeof(*r));
        if (n > 0 && (size_t)n < sizeof(head) && net_send_all(*fd, head, (size_t)n) && net_read_response(*fd, r))
            return r->status;
        net_response_free(r);
        close(*fd);
        *fd = -1;
    }
    return 0;
}

long long net_status_field(unsigned port, const char *extra, const char *key, double timeout_s)
{
    struct net_response r;
    long long v = -1;
    if (net_request(port, "GET", "/v2/error_injection/status", extra, NULL, 0, timeout_s, &r) == 200) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *at = strstr(r.body.data, pat);
        if (at != NULL)
            v = strtoll(at + strlen(pat), NULL, 10);
    }
    net_response_free(&r);
    return v;
}

/* ---- SSE streams --------------------------------------------------------------------------- */



/* Opens GET target as an event stream and reads the response head. status 0 on failure. */
bool net_sse_open(struct net_sse *s, unsigned port, const char *target, const char *extra,
                                double timeout_s, int rcvbuf)
{
    memset(s, 0, sizeof(*s));
    s->fd = net_connect(port, timeout_s, rcvbuf);
    if (s->fd < 0)
        return false;
    char head[2048];
    int n = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAccept: text/event-stream\r\n%s\r\n",
                     target, port, extra ? extra : "");
    if (n <= 0 || (size_t)n >= sizeof(head) || !net_send_all(s->fd, head, (size_t)n))
        return false;
    struct net_buf raw = {0};
    char buf[4096];
    while (s->status == 0) {
        ssize_t got = recv(s->fd, buf, sizeof(buf), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        net_buf_add(&raw, buf, (size_t)got);
        char *end = raw.data != NULL ? strstr(raw.data, "\r\n\r\n") : NULL;
        if (end == NULL)
            continue;
        size_t head_len = (size_t)(end - raw.data) + 4;
        size_t hl = head_len < sizeof(s->headers) ? head_len : sizeof(s->headers) - 1;
        memcpy(s->headers, raw.data, hl);
        s->headers[hl] = '\0';
        if (sscanf(raw.data, "HTTP/1.%*d %d", &s->status) != 1)
            s->status = -1;
        s->chunked = strcasestr(s->headers, "Transfer-Encoding: chunked") != NULL;
        if (s->chunked)
            net_chunked_feed(&s->ch, raw.data + head_len, raw.len - head_len, &s->text);
        else
            net_buf_add(&s->text, raw.data + head_len, raw.len - head_len);
    }
    free(raw.data);
    return s->status != 0;
}

void net_sse_close(struct net_sse *s, bool reset)
{
    if (s->fd >= 0) {
        if (reset)
            net_reset(s->fd);
        else
            close(s->fd);
    }
    s->fd = -1;
    free(s->text.data);
    free(s->cur_data.data);
    free(s->event_data.data);
    s->text = s->cur_data = s->event_data = (struct net_buf){0};
}

/* Reads up to max bytes once (blocking up to the socket timeout). false at EOF or error. */
bool net_sse_read(struct net_sse *s, size_t max)
{
    char buf[65536];
    if (max > sizeof(buf))
        max = sizeof(buf);
    ssize_t n;
    do
        n = recv(s->fd, buf, max, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        s->closed = true;
        return false;
    }
    s->bytes += (uint64_t)n;
    /* Drop what was parsed once per read, not once per line. */
    net_buf_consume(&s->text, s->text_off);
    s->text_off = 0;
    if (s->chunked) {
        if (!net_chunked_feed(&s->ch, buf, (size_t)n, &s->text))
            s->closed = true;
        if (s->ch.state == CH_DONE)
            s->ended_cleanly = true;
    } else {
        net_buf_add(&s->text, buf, (size_t)n);
    }
    return true;
}

/*
 * Takes the next complete event out of what was read: 1 and *ev, or 0 when more bytes are
 * needed. Comments are counted and skipped. -1 on a line the server never sends.
 */
int net_sse_next(struct net_sse *s, struct net_sse_event *ev)
{
    for (;;) {
        char *line = s->text.data + s->text_off;
        char *nl = s->text.len > s->text_off ? memchr(line, '\n', s->text.len - s->text_off) : NULL;
        if (nl == NULL)
            return 0;
        size_t len = (size_t)(nl - line);
        int rc = 0;
        if (len == 0) {
            if (s->cur_data.len > 0) {
                *ev = (struct net_sse_event){.id = s->cur_id, .overflow = s->cur_overflow};
                ev->data = s->cur_data.data;
                ev->data_len = s->cur_data.len;
                if (ev->overflow) {
                    unsigned long long d = 0, nx = 0;
                    if (sscanf(ev->data, "{\"dropped\":%llu,\"next_seq\":%llu}", &d, &nx) != 2)
                        rc = -1;
                    ev->dropped = d, ev->next_seq = nx;
                }
                rc = rc == 0 ? 1 : rc;
            }
            s->cur_id = 0;
            s->cur_overflow = false;
            /* Hand the data over in event_data, so it stays readable until the next call. */
            struct net_buf done = s->cur_data;
            s->cur_data = s->event_data;
            s->cur_data.len = 0;
            s->event_data = done;
            if (rc == 1)
                ev->data = s->event_data.data;
        } else if (line[0] == ':') {
            s->comments++;
        } else if (len > 4 && strncmp(line, "id: ", 4) == 0) {
            s->cur_id = strtoull(line + 4, NULL, 10);
        } else if (len == 15 && strncmp(line, "event: overflow", 15) == 0) {
            s->cur_overflow = true;
        } else if (len > 6 && strncmp(line, "data: ", 6) == 0) {
            if (s->cur_data.len > 0)
                rc = -1; /* every event is one data line */
            net_buf_add(&s->cur_data, line + 6, len - 6);
        } else {
            rc = -1;
        }
        s->text_off += len + 1;
        if (rc != 0)
            return rc;
    }
}


bool net_sse_open_connected(struct net_sse *s, unsigned port, const char *target, const char *extra,
                            double timeout_s, int rcvbuf)
{
    if (!net_sse_open(s, port, target, extra, timeout_s, rcvbuf) || s->status != 200)
        return false;
    for (;;) {
        struct net_sse_event ev;
        int got = net_sse_next(s, &ev);
        /* Checked before reading more: after the greeting the server may stay silent for a
         * whole heartbeat. */
        if (s->comments > 0)
            return true;
        if (got == 0 && !net_sse_read(s, 4096))
            return false;
    }
}

int net_sse_next_event(struct net_sse *s, struct net_sse_event *ev)
{
    for (;;) {
        int got = net_sse_next(s, ev);
        if (got != 0)
            return got;
        if (!net_sse_read(s, 65536))
            return 0;
    }
}

/* ---- raw reading ------------------------------------------------------------------------------ */

bool net_nothing_pending(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

bool net_closed_by_peer(int fd, double seconds)
{
    double deadline = test_now() + seconds;
    char buf[65536];
    while (test_now() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 1000) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
            return true;
    }
    return false;
}

void net_inbox_free(struct net_inbox *in)
{
    free(in->data);
    *in = (struct net_inbox){0};
}

bool net_inbox_read(int fd, struct net_inbox *in, double deadline)
{
    double left = deadline - test_now();
    if (left <= 0)
        return false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (rc <= 0)
        return false;
    if (in->cap - in->len < 4097) {
        size_t cap = in->cap * 2 + 8192;
        char *grown = realloc(in->data, cap);
        if (grown == NULL)
            return false;
        in->data = grown;
        in->cap = cap;
    }
    ssize_t n = recv(fd, in->data + in->len, in->cap - in->len - 1, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n < 0) {
        /* A reset, or any other error, ends what can be read; the caller sees it in `eof`. */
        in->eof = true;
        in->error = errno;
        n = 0;
    } else if (n == 0) {
        in->eof = true;
    }
    in->len += (size_t)n;
    in->data[in->len] = '\0';
    return true;
}

const char *net_inbox_until(int fd, struct net_inbox *in, size_t from, const char *needle, double deadline)
{
    for (;;) {
        if (in->len > from) {
            const char *hit = strstr(in->data + from, needle);
            if (hit != NULL)
                return hit;
        }
        if (in->eof || !net_inbox_read(fd, in, deadline))
            return NULL;
    }
}

bool net_inbox_to_eof(int fd, struct net_inbox *in, double deadline)
{
    while (!in->eof)
        if (!net_inbox_read(fd, in, deadline))
            return false;
    return true;
}
