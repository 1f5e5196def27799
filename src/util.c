/*
 * util.c - clocks, UTF-8, host:port and loopback tests: the bottom layer of the library.
 *
 * Each of these was once written out where it was needed (the name check, the JSON writer, the
 * listener, the Host check); they live here once so that a fix reaches every user. Nothing here
 * allocates or takes a lock.
 */
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

int64_t errinj__now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t errinj__now_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

size_t errinj__utf8_sequence(const unsigned char *s, size_t left, uint32_t *cp_out)
{
    if (left == 0)
        return 0;
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        n = 1;
        cp = c;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    if (cp_out != NULL)
        *cp_out = cp;
    return n;
}

bool errinj__hostport_split(const char *text, char *host, size_t host_len, const char **port)
{
    const char *host_start, *host_end;
    if (text[0] == '[') {
        /* An IPv6 literal: its colons are not the port's. */
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return false;
        host_start = text + 1;
        host_end = close;
        *port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return false;
        host_start = text;
        host_end = colon;
        *port = colon + 1;
    }
    size_t len = (size_t)(host_end - host_start);
    if (len >= host_len)
        return false;
    memcpy(host, host_start, len);
    host[len] = '\0';
    return true;
}

bool errinj__host_is_loopback(const char *host)
{
    char name[256];
    size_t len;
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL || (size_t)(end - host - 1) >= sizeof(name))
            return false;
        len = (size_t)(end - host - 1);
        memcpy(name, host + 1, len);
        name[len] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6) &&
               (end[1] == '\0' || end[1] == ':');
    }
    const char *colon = strchr(host, ':');
    len = colon != NULL ? (size_t)(colon - host) : strlen(host);
    if (len == 0 || len >= sizeof(name))
        return false;
    memcpy(name, host, len);
    name[len] = '\0';
    if (strcasecmp(name, "localhost") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

bool errinj__sockaddr_is_loopback(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
    if (addr->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)addr)->sin6_addr);
    return false;
}
