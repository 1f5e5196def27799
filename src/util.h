/*
 * util.h - the bottom layer: clocks and the small text checks every layer above shares.
 *
 * util.c owns the clocks (nanoseconds, monotonic and real time), the one UTF-8 decoder, the one
 * host:port splitter and the loopback tests (of a host name as a Host header gives it, and of a
 * resolved socket address). It knows nothing of injections, events or the server; nothing in it
 * allocates or locks, so any layer, and a fire, may call it.
 */
#ifndef ERRINJ_UTIL_H
#define ERRINJ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Monotonic and real-time clocks in nanoseconds. */
int64_t errinj__now_mono_ns(void);
int64_t errinj__now_real_ns(void);

/*
 * The length (1 to 4) of the valid UTF-8 sequence at s, of which `left` bytes may be read, and
 * its code point in *cp (may be NULL); 0 when no valid sequence starts there. Overlong forms,
 * surrogates and values past U+10FFFF are not valid.
 */
size_t errinj__utf8_sequence(const unsigned char *s, size_t left, uint32_t *cp);

/*
 * Splits "host:port", "[v6]:port" or ":port" at its port: copies the host (without brackets) to
 * host (host_len bytes, NUL-terminated) and points *port at the text after the colon. False when
 * there is no port separator or the host does not fit. The port is not checked.
 */
bool errinj__hostport_split(const char *text, char *host, size_t host_len, const char **port);

/* True when a Host header's value ("localhost", "127.0.0.1:80", "[::1]:80") names a loopback
 * host: localhost, 127.0.0.0/8 or ::1, with or without a port. */
bool errinj__host_is_loopback(const char *host);

/* True for an AF_INET address in 127.0.0.0/8 or the AF_INET6 address ::1; false otherwise. */
bool errinj__sockaddr_is_loopback(const struct sockaddr *addr);

#endif /* ERRINJ_UTIL_H */
