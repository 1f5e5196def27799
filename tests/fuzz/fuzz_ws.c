/*
 * fuzz_ws.c - libFuzzer driver for the WebSocket session's input: the client's bytes after the
 * handshake, through libwslay's frame parser, the UTF-8 check and the command handling (JSON,
 * fields, the REST router), on a real session of ws.c.
 *
 * An input is the byte stream a client sends once the 101 is out. The session gets it as the
 * bytes libmicrohttpd read past the handshake (so it is all parsed in one go, as a client that
 * wrote it at once would have it parsed), over one end of a socketpair; the driver then closes
 * the other end, lets the server loop run the session to its end, and checks that it was freed
 * (the session count is back to zero), that every frame the server wrote parses as a server frame
 * (unmasked, known opcode, a close with a code RFC 6455 allows). Injections the input enabled are
 * disabled after each input, so the registry stays small.
 */
#define _GNU_SOURCE
#include "events.h"
#include "http.h"
#include "registry.h"
#include "loop.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_TARGET "fuzz_ws"
#include "check.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct frame g_frame;
static struct errinj__loop *g_loop;
static struct errinj__ws *g_ws;

/* No history: the driver fires nothing, so sessions have no event to send. */
static struct errinj__history_view empty_history(void *arg)
{
    (void)arg;
    uint64_t last = errinj__seq_last();
    return (struct errinj__history_view){&g_frame, 1, last + 1, last};
}

static void count_enabled(const char *name, void *arg)
{
    (void)name;
    (*(unsigned *)arg)++;
}

/* Checks the frames the server wrote: all of them complete and well-formed. */
static void check_server_frames(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        CHECK(n - i >= 2, "a truncated frame header at %zu of %zu", i, n);
        unsigned op = p[i] & 0x0f;
        CHECK((p[i] & 0x70) == 0, "reserved bits set");
        CHECK(op == 1 || op == 8 || op == 9 || op == 10, "opcode %u", op);
        CHECK(!(p[i + 1] & 0x80), "a masked server frame");
        uint64_t len = p[i + 1] & 0x7f;
        size_t head = 2;
        if (len == 126) {
            CHECK(n - i >= 4, "truncated length");
            len = (uint64_t)p[i + 2] << 8 | p[i + 3];
            head = 4;
        } else if (len == 127) {
            CHECK(n - i >= 10, "truncated length");
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | p[i + 2 + k];
            head = 10;
        }
        CHECK(len <= n - i - head, "a frame of %llu bytes with %zu left", (unsigned long long)len, n - i - head);
        if (op == 8 && len >= 2) {
            unsigned code = (unsigned)p[i + head] << 8 | p[i + head + 1];
            /* The codes RFC 6455 lets an endpoint send (7.4.1, 7.4.2): a client's own 3000-4999
             * come back as they came. */
            CHECK((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999),
                  "close code %u", code);
        }
        i += head + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_ws == NULL) {
        errinj_set_log(NULL, NULL);
        int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        g_loop = errinj__loop_new(wake);
        struct errinj__ws_host host = {&g_mu, empty_history, NULL};
        g_ws = g_loop != NULL ? errinj__ws_new(g_loop, &host, 64) : NULL;
        CHECK(g_ws != NULL, "setup");
    }
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair: %s", strerror(errno));
    errinj__ws_attach(g_ws, fds[0], (const char *)data, size);
    /* The client leaves: the session reads its end, finishes what it says and ends. */
    shutdown(fds[1], SHUT_WR);
    unsigned char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    for (int turn = 0; turn < 1000; turn++) {
        errinj__loop_wait(g_loop, 0);
        errinj__ws_tick(g_ws);
        for (;;) {
            if (out_cap - out_len < 65536) {
                out_cap = out_cap ? out_cap * 2 : 65536;
                out = realloc(out, out_cap);
                CHECK(out != NULL, "out of memory");
            }
            ssize_t n = recv(fds[1], out + out_len, out_cap - out_len, MSG_DONTWAIT);
            if (n <= 0)
                break;
            out_len += (size_t)n;
        }
        pthread_mutex_lock(&g_mu);
        unsigned left = errinj__ws_count(g_ws);
        pthread_mutex_unlock(&g_mu);
        if (left == 0)
            break;
    }
    pthread_mutex_lock(&g_mu);
    unsigned left = errinj__ws_count(g_ws);
    pthread_mutex_unlock(&g_mu);
    CHECK(left == 0, "the session did not end after its client left");
    check_server_frames(out, out_len);
    free(out);
    close(fds[1]);
    /* What the input enabled outside a session stays; a reset clears it for the next input. */
    errinj_disable_all();
    unsigned enabled = 0;
    errinj_list_enabled(count_enabled, &enabled);
    CHECK(enabled == 0, "%u injections stay enabled after disable_all", enabled);
    return 0;
}
