/*
 * preload.h - what the files of liberrinj-preload.so share.
 *
 * The preload wraps libc calls as errinj points of type exception named libc.FUNCTION. Its parts:
 * resolve.c finds the real functions with dlsym(RTLD_NEXT) (with a static arena for the
 * allocations dlsym makes before malloc itself is found); fdtable.c remembers the path each
 * descriptor was opened with (or what a socket is connected to); faults.c matches a call against
 * its point's parameters, builds the event's detail and fires; wrappers.c holds the wrappers;
 * init.c starts everything from the constructor and keeps the library's own threads and calls
 * out of the wrappers.
 *
 * A wrapper's fast path, while no libc point has ever been enabled, is one load of its entry in
 * preload_fast, a test and a jump. Once one has been, a wrapper takes its armed path: it loads
 * its site's `active` pointer, and the descriptor calls keep the descriptor table.
 */
#ifndef ERRINJ_PRELOAD_H
#define ERRINJ_PRELOAD_H

#include <errinj.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PRELOAD_HIDDEN __attribute__((visibility("hidden")))
#define PRELOAD_EXPORT __attribute__((visibility("default")))
#define PRELOAD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PRELOAD_LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- resolve.c ------------------------------------------------------------------------------ */

/* Every real function the wrappers call: X(name, return type, parameter list). The order is the
 * layout of the tables below, eight pointers to a cache line: the allocator first (it is also
 * resolved first), then the calls programs make most, those often made together side by side. */
#define PRELOAD_REAL_FUNCTIONS(X)                                                              \
    X(malloc, void *, (size_t))                                                                \
    X(free, void, (void *))                                                                    \
    X(calloc, void *, (size_t, size_t))                                                        \
    X(realloc, void *, (void *, size_t))                                                       \
    X(read, ssize_t, (int, void *, size_t))                                                    \
    X(write, ssize_t, (int, const void *, size_t))                                             \
    X(open, int, (const char *, int, ...))                                                     \
    X(close, int, (int))                                                                       \
    X(open64, int, (const char *, int, ...))                                                   \
    X(openat, int, (int, const char *, int, ...))                                              \
    X(openat64, int, (int, const char *, int, ...))                                            \
    X(pread64, ssize_t, (int, void *, size_t, off_t))                                          \
    X(pwrite64, ssize_t, (int, const void *, size_t, off_t))                                   \
    X(readv, ssize_t, (int, const struct iovec *, int))                                        \
    X(writev, ssize_t, (int, const struct iovec *, int))                                       \
    X(fsync, int, (int))                                                                       \
    X(fdatasync, int, (int))                                                                   \
    X(send, ssize_t, (int, const void *, size_t, int))                                         \
    X(recv, ssize_t, (int, void *, size_t, int))                                               \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                     \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                                           \
    X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))   \
    X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))           \
    X(fcntl, int, (int, int, ...))                                                             \
    X(reallocarray, void *, (void *, size_t, size_t))                                          \
    X(posix_memalign, int, (void **, size_t, size_t))                                          \
    X(aligned_alloc, void *, (size_t, size_t))                                                 \
    X(memalign, void *, (size_t, size_t))                                                      \
    X(creat, int, (const char *, mode_t))                                                      \
    X(creat64, int, (const char *, mode_t))                                                    \
    X(__open_2, int, (const char *, int))                                                      \
    X(__open64_2, int, (const char *, int))                                                    \
    X(__openat_2, int, (int, const char *, int))                                               \
    X(__openat64_2, int, (int, const char *, int))                                             \
    X(pread, ssize_t, (int, void *, size_t, off_t))                                            \
    X(preadv, ssize_t, (int, const struct iovec *, int, off_t))                                \
    X(preadv64, ssize_t, (int, const struct iovec *, int, off_t))                              \
    X(preadv2, ssize_t, (int, const struct iovec *, int, off_t, int))                          \
    X(preadv64v2, ssize_t, (int, const struct iovec *, int, off_t, int))                       \
    X(pwrite, ssize_t, (int, const void *, size_t, off_t))                                     \
    X(pwritev, ssize_t, (int, const struct iovec *, int, off_t))                               \
    X(pwritev64, ssize_t, (int, const struct iovec *, int, off_t))                             \
    X(pwritev2, ssize_t, (int, const struct iovec *, int, off_t, int))                         \
    X(pwritev64v2, ssize_t, (int, const struct iovec *, int, off_t, int))                      \
    X(copy_file_range, ssize_t, (int, off_t *, int, off_t *, size_t, unsigned))                \
    X(sync_file_range, int, (int, off_t, off_t, unsigned))                                     \
    X(rename, int, (const char *, const char *))                                               \
    X(renameat, int, (int, const char *, int, const char *))                                   \
    X(renameat2, int, (int, const char *, int, const char *, unsigned))                        \
    X(unlink, int, (const char *))                                                             \
    X(unlinkat, int, (int, const char *, int))                                                 \
    X(mkdir, int, (const char *, mode_t))                                                      \
    X(mkdirat, int, (int, const char *, mode_t))                                               \
    X(ftruncate, int, (int, off_t))                                                            \
    X(ftruncate64, int, (int, off_t))                                                          \
    X(fallocate, int, (int, int, off_t, off_t))                                                \
    X(fallocate64, int, (int, int, off_t, off_t))                                              \
    X(posix_fallocate, int, (int, off_t, off_t))                                               \
    X(posix_fallocate64, int, (int, off_t, off_t))                                             \
    X(socket, int, (int, int, int))                                                            \
    X(bind, int, (int, const struct sockaddr *, socklen_t))                                    \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                                 \
    X(accept, int, (int, struct sockaddr *, socklen_t *))                                      \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))                                \
    X(dup, int, (int))                                                                         \
    X(dup2, int, (int, int))                                                                   \
    X(dup3, int, (int, int, int))                                                              \
    X(fcntl64, int, (int, int, ...))

/*
 * Two tables of the real functions. preload_real holds each one as soon as it is found, for the
 * armed paths and the preload's own calls. preload_fast is what a wrapper's fast path jumps
 * through: it holds the same pointers once all are found, and only while no libc point has ever
 * been enabled; otherwise NULL, which sends the wrapper to its armed path. So with nothing enabled
 * a wrapper is one load (of its own pointer: one cache line, no gate word elsewhere), a test and
 * a jump, and it checks no site and tracks no descriptor.
 */
struct preload_functions {
#define PRELOAD_MEMBER(name, ret, params) ret(*name) params;
    PRELOAD_REAL_FUNCTIONS(PRELOAD_MEMBER)
#undef PRELOAD_MEMBER
};
extern PRELOAD_HIDDEN struct preload_functions preload_real;
extern PRELOAD_HIDDEN struct preload_functions preload_fast;

/* The pointer a wrapper's fast path calls, or NULL: take the armed path. */
#define FAST(name) __atomic_load_n(&preload_fast.name, __ATOMIC_RELAXED)

/* Non-zero, for good, from the first enable of a libc point on. */
extern PRELOAD_HIDDEN unsigned preload_armed;

/* Called at the first enable of a libc point (before it applies): sets preload_armed and empties
 * preload_fast, so that every wrapper checks its point and descriptors are tracked from then on. */
PRELOAD_HIDDEN void preload_arm(void);

/* Finds every real function (once; later calls return at once). */
PRELOAD_HIDDEN void preload_resolve(void);
/* True while preload_resolve() runs: allocations then come from the bootstrap arena. */
PRELOAD_HIDDEN bool preload_resolving(void);

/* The real function, found on first use (a call before the constructor ran). */
#define REAL(name)                                                                             \
    (__builtin_expect(__atomic_load_n(&preload_real.name, __ATOMIC_RELAXED) != NULL, 1)        \
         ? __atomic_load_n(&preload_real.name, __ATOMIC_RELAXED)                               \
         : (preload_resolve(), __atomic_load_n(&preload_real.name, __ATOMIC_RELAXED)))

/* The bootstrap arena: zeroed memory for the allocations dlsym makes before malloc is found.
 * Never freed; free() and realloc() recognise its blocks. */
#define PRELOAD_ARENA_BYTES (256 * 1024)
extern PRELOAD_HIDDEN unsigned char preload_arena[PRELOAD_ARENA_BYTES];
PRELOAD_HIDDEN void *preload_arena_alloc(size_t size);
PRELOAD_HIDDEN size_t preload_arena_size(const void *p);
/* Inline: free() and realloc() ask it before anything else. */
static inline bool preload_in_arena(const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)preload_arena;
    return PRELOAD_UNLIKELY(a - base < PRELOAD_ARENA_BYTES);
}

/* ---- wrappers.c, for variadic.c ----------------------------------------------------------------- */

/* Which real open an armed open calls. */
enum preload_open { PRELOAD_OPEN, PRELOAD_OPEN64, PRELOAD_OPENAT, PRELOAD_OPENAT64 };

/* The armed parts of the variadic wrappers: the point's check, the real call and the descriptor
 * table. mode is what the caller's third (fourth) argument register held: used only with O_CREAT
 * or O_TMPFILE. */
PRELOAD_HIDDEN __attribute__((cold)) int preload_open_armed(enum preload_open real, const char *path, int flags,
                                                            mode_t mode);
PRELOAD_HIDDEN __attribute__((cold)) int preload_openat_armed(enum preload_open real, int dirfd, const char *path,
                                                              int flags, mode_t mode);
PRELOAD_HIDDEN __attribute__((cold)) int preload_fcntl_armed(bool large, int fd, int cmd, void *arg);

/* ---- init.c ------------------------------------------------------------------------------------ */

/* Non-zero while this thread runs the library, the preload's own code, or is a library thread:
 * its calls then pass through unwrapped. */
extern PRELOAD_HIDDEN __thread unsigned preload_guard __attribute__((tls_model("initial-exec")));

/* ---- fdtable.c --------------------------------------------------------------------------------- */

/*
 * Descriptors are tracked from the first time a libc point is enabled on (the validator calls
 * preload_arm() before the enable applies), so that a process that never enables one pays nothing
 * for it in open, close and dup: their wrappers stay a jump. A descriptor opened before is looked up in /proc/self/fd, and a socket
 * described from getpeername/getsockname, when a fault needs it.
 */
static inline bool preload_tracking_on(void)
{
    return __atomic_load_n(&preload_armed, __ATOMIC_RELAXED) != 0;
}

/* Remembers `path` for fd (relative paths of *at calls joined to dirfd's path when known). */
PRELOAD_HIDDEN void preload_fd_opened(int fd, int dirfd, const char *path);
/* Remembers a description of a socket ("tcp", "tcp:127.0.0.1:6379", "unix:/run/x.sock"). */
PRELOAD_HIDDEN void preload_fd_describe(int fd, const char *text);
/* The socket's kind from socket(2), for descriptions made later. */
PRELOAD_HIDDEN void preload_fd_socket(int fd, int domain, int type);
/* Describes the address addr for socket fd ("tcp:1.2.3.4:80"), into out. */
PRELOAD_HIDDEN void preload_sockaddr_text(int fd, const struct sockaddr *addr, socklen_t len, char *out, size_t cap);
/* newfd now refers to what oldfd does. */
PRELOAD_HIDDEN void preload_fd_dup(int oldfd, int newfd);
/* fd is closed (or about to be). */
PRELOAD_HIDDEN void preload_fd_closed(int fd);
/* Copies fd's path into out (cap bytes): true if known. Falls back to /proc/self/fd. */
PRELOAD_HIDDEN bool preload_fd_path(int fd, char *out, size_t cap);
/* Joins a relative path of an *at call to dirfd's path when that is known: out, or path. */
PRELOAD_HIDDEN const char *preload_at_path(int dirfd, const char *path, char *out, size_t cap);

/* ---- faults.c ---------------------------------------------------------------------------------- */

/* One libc point: its site and what its calls take. */
enum preload_point {
    POINT_OPEN, POINT_READ, POINT_WRITE, POINT_FSYNC, POINT_CLOSE, POINT_RENAME, POINT_UNLINK,
    POINT_MKDIR, POINT_FTRUNCATE, POINT_FALLOCATE, POINT_CONNECT, POINT_ACCEPT, POINT_SEND,
    POINT_RECV, POINT_MALLOC, POINT_COUNT
};
extern PRELOAD_HIDDEN struct errinj_site preload_sites[POINT_COUNT];

/* One wrapped call, as the parameters see it. */
struct preload_call {
    const char *function; /* the libc function called */
    int fd;               /* -1 when the call has no descriptor */
    const char *path;     /* the path argument, or NULL: the descriptor's path is looked up */
    const char *path2;    /* rename's new path, also matched */
    long long size;       /* -1 when the call moves no bytes */
};

/* What a matched, fired call must do instead of its real work. */
enum preload_fault { FAULT_NONE, FAULT_FAIL, FAULT_SHORT };

struct preload_outcome {
    int err;       /* FAULT_FAIL: the errno to set */
    size_t limit;  /* FAULT_SHORT: the most bytes to move */
};

/* Matches the call against its enabled point's parameters and fires: what to do. errno is
 * as it was on return. Call only when the point's site is active. */
PRELOAD_HIDDEN enum preload_fault preload_fault_check(enum preload_point point, const struct preload_call *call,
                                                       struct preload_outcome *out);

/* The site test of the fast path. */
static inline bool preload_point_on(enum preload_point point)
{
    return PRELOAD_UNLIKELY(__atomic_load_n(&preload_sites[point].active, __ATOMIC_ACQUIRE) != NULL);
}

/* Registers the sites with the library and the parameter validator for "libc.". */
PRELOAD_HIDDEN void preload_points_register(void);

#endif /* ERRINJ_PRELOAD_H */
