/*
 * fdtable.c - what each descriptor refers to, for the `path` parameter and the event's detail.
 *
 * The open calls record the path they were given (joined to the directory's path for a relative
 * path under a known directory descriptor), socket, bind, connect and accept record what the
 * socket is ("tcp", then "tcp:127.0.0.1:6379"), dup, dup2, dup3 and fcntl(F_DUPFD) copy, close
 * forgets, from the first enable of a libc point on. A descriptor nothing recorded (opened before
 * that, inherited across exec, or made by a call not wrapped: pipe, eventfd, ...) is looked up in
 * /proc/self/fd when a fault needs it, and a socket is then described from getpeername(2) or
 * getsockname(2).
 *
 * The table is two-level (chunks of 4096 slots made on first use, 1 M descriptors in all), each
 * slot an atomic pointer to an immutable string. Writers of one slot never race: open and accept
 * set it after the kernel handed the number out, close clears it before the kernel frees the
 * number, so a load and a release store replace it without a locked instruction. Readers only come
 * from the fault path, so they count themselves in g_readers while they copy a string, and a
 * writer frees the string it replaced only when no reader is in that window: the uncontended
 * case costs a writer one load. Strings are allocated with the real allocator, not through the
 * wrappers, so tracking never faults.
 */
#define _GNU_SOURCE
#include "preload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK_BITS 12
#define CHUNK_SLOTS (1u << CHUNK_BITS)
#define CHUNKS 256

typedef _Atomic(char *) slot_t;

static _Atomic(slot_t *) g_chunks[CHUNKS];
static atomic_uint g_readers;
static slot_t *slot_of(int fd, bool create)
{
    if (fd < 0 || (unsigned)fd >= CHUNKS * CHUNK_SLOTS)
        return NULL;
    unsigned c = (unsigned)fd >> CHUNK_BITS;
    slot_t *chunk = atomic_load_explicit(&g_chunks[c], memory_order_acquire);
    if (chunk == NULL && create) {
        slot_t *fresh = REAL(calloc)(CHUNK_SLOTS, sizeof(slot_t));
        if (fresh == NULL)
            return NULL;
        if (atomic_compare_exchange_strong(&g_chunks[c], &chunk, fresh))
            chunk = fresh;
        else
            REAL(free)(fresh);
    }
    return chunk != NULL ? &chunk[fd & (CHUNK_SLOTS - 1)] : NULL;
}

static char *copy_text(const char *text)
{
    size_t len = strlen(text) + 1;
    char *s = REAL(malloc)(len);
    if (s != NULL)
        memcpy(s, text, len);
    return s;
}

/* Puts text (owned, may be NULL) in fd's slot and frees what it held. */
static void slot_set(int fd, char *text)
{
    slot_t *slot = slot_of(fd, text != NULL);
    if (slot == NULL) {
        REAL(free)(text);
        return;
    }
    char *old = atomic_load_explicit(slot, memory_order_relaxed);
    atomic_store_explicit(slot, text, memory_order_release);
    if (old != NULL) {
        atomic_thread_fence(memory_order_seq_cst); /* the store before the readers' count is read */
        while (atomic_load(&g_readers) != 0)
            sched_yield();
        REAL(free)(old);
    }
}

/* Copies fd's recorded text into out; false if none. */
static bool slot_get(int fd, char *out, size_t cap)
{
    slot_t *slot = slot_of(fd, false);
    if (slot == NULL)
        return false;
    atomic_fetch_add(&g_readers, 1);
    const char *text = atomic_load(slot);
    if (text != NULL)
        snprintf(out, cap, "%s", text);
    atomic_fetch_sub(&g_readers, 1);
    return text != NULL;
}

const char *preload_at_path(int dirfd, const char *path, char *out, size_t cap)
{
    if (path == NULL || path[0] == '/' || dirfd == AT_FDCWD)
        return path;
    char dir[4096];
    if (!slot_get(dirfd, dir, sizeof(dir)))
        return path;
    snprintf(out, cap, "%s/%s", dir, path);
    return out;
}

void preload_fd_opened(int fd, int dirfd, const char *path)
{
    if (fd < 0 || path == NULL)
        return;
    int saved = errno;
    char joined[4096];
    slot_set(fd, copy_text(preload_at_path(dirfd, path, joined, sizeof(joined))));
    errno = saved;
}

void preload_fd_describe(int fd, const char *text)
{
    if (fd < 0)
        return;
    int saved = errno;
    slot_set(fd, copy_text(text));
    errno = saved;
}

void preload_fd_socket(int fd, int domain, int type)
{
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const char *kind = domain == AF_UNIX                               ? "unix"
                       : (domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM ? "tcp"
                       : (domain == AF_INET || domain == AF_INET6) && type == SOCK_DGRAM  ? "udp"
                                                                                            : "socket";
    preload_fd_describe(fd, kind);
}

static void sockaddr_text_of_kind(const char *kind, const struct sockaddr *addr, socklen_t len, char *out,
                                  size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr == NULL || len < sizeof(sa_family_t)) {
        snprintf(out, cap, "%s", kind);
    } else if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%s:%u", kind, host, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "%s:[%s]:%u", kind, host, ntohs(in6->sin6_port));
    } else if (addr->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
        size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n == 0)
            snprintf(out, cap, "unix");
        else if (un->sun_path[0] == '\0') /* abstract: @name */
            snprintf(out, cap, "unix:@%.*s", (int)(n - 1), un->sun_path + 1);
        else
            snprintf(out, cap, "unix:%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
    } else {
        snprintf(out, cap, "%s", kind);
    }
}

void preload_sockaddr_text(int fd, const struct sockaddr *addr, socklen_t len, char *out, size_t cap)
{
    /* The kind comes from what socket() recorded: tcp or udp cannot be told from an address. */
    char kind[64] = "socket";
    if (slot_get(fd, kind, sizeof(kind)))
        kind[strcspn(kind, ":")] = '\0';
    sockaddr_text_of_kind(kind, addr, len, out, cap);
}

/* A socket nothing recorded, described as socket, bind, connect and accept would have. */
static void describe_socket(int fd, char *out, size_t cap)
{
    int domain = 0, type = 0;
    socklen_t n = sizeof(domain);
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &n);
    n = sizeof(type);
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n);
    const char *kind = domain == AF_UNIX                               ? "unix"
                       : (domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM ? "tcp"
                       : (domain == AF_INET || domain == AF_INET6) && type == SOCK_DGRAM  ? "udp"
                                                                                            : "socket";
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getpeername(fd, (struct sockaddr *)&addr, &len) != 0) {
        len = sizeof(addr);
        if (getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
            len = 0;
    }
    if (domain == AF_UNIX && len <= offsetof(struct sockaddr_un, sun_path))
        len = 0; /* an unnamed end: just "unix" */
    sockaddr_text_of_kind(kind, len > 0 ? (struct sockaddr *)&addr : NULL, len, out, cap);
}

void preload_fd_dup(int oldfd, int newfd)
{
    if (newfd < 0 || oldfd == newfd)
        return;
    int saved = errno;
    char text[4096];
    slot_set(newfd, slot_get(oldfd, text, sizeof(text)) ? copy_text(text) : NULL);
    errno = saved;
}

void preload_fd_closed(int fd)
{
    slot_t *slot = slot_of(fd, false);
    if (slot != NULL && atomic_load_explicit(slot, memory_order_relaxed) != NULL)
        slot_set(fd, NULL);
}

bool preload_fd_path(int fd, char *out, size_t cap)
{
    if (slot_get(fd, out, cap))
        return true;
    if (fd < 0 || cap == 0)
        return false;
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    if (n < 0)
        return false;
    out[n] = '\0';
    if (strncmp(out, "socket:[", 8) == 0) {
        describe_socket(fd, out, cap);
    } else if (n > 10 && strcmp(out + n - 10, " (deleted)") == 0) {
        out[n - 10] = '\0'; /* unlinked since: the name it had */
    }
    return true;
}
