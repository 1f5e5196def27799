/*
 * wrappers.c - the wrapped libc functions.
 *
 * Every wrapper has two parts. The exported function is the fast path: while no libc point has
 * ever been enabled (its entry in preload_fast is set) it jumps to the real function and does
 * nothing else. Otherwise it calls its armed part (out of line, with the cold code): if its point is
 * enabled, ask faults.c what this call must do; then call the real function, perhaps with fewer
 * bytes. Armed parts of calls that make, copy or drop descriptors also keep fdtable.c up to date.
 * The armed part also serves calls made before the real functions are found. Large-file twins
 * (open64, pread64, ...) are the same functions on 64-bit glibc and share the code. A fault sets
 * errno and returns what the function returns on failure; a pass-through leaves errno to the real
 * function. The variadic calls (open, openat, fcntl and their twins) are exported from variadic.c;
 * their armed parts are here.
 */
#define _GNU_SOURCE
#include "preload.h"

#include <alloca.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* glibc's fortified entry points have no prototypes outside fortified builds. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t offset, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t offset, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr, socklen_t *len);
void __chk_fail(void) __attribute__((noreturn));

#define ON(point) preload_point_on(point)

/* The armed part of a wrapper: out of line, so that the fast path stays a load, a test and a jump. */
#define ARMED __attribute__((noinline, cold))

/*
 * WRAP(type, name, (parameters), (arguments)) { armed part }: the exported wrapper `name`, whose
 * fast path calls the real function, and its armed part name_armed, the block that follows.
 */
#define WRAP(ret, name, params, args)                                                          \
    static ret name##_armed params;                                                            \
    PRELOAD_EXPORT ret name params                                                             \
    {                                                                                          \
        __typeof__(preload_fast.name) fast_ = FAST(name);                                      \
        if (PRELOAD_LIKELY(fast_ != NULL))                                                     \
            return fast_ args;                                                                 \
        return name##_armed args;                                                              \
    }                                                                                          \
    ARMED static ret name##_armed params

/* The fault for a call, FAULT_NONE when its point is off or its parameters do not match. */
static enum preload_fault check(enum preload_point point, const char *function, int fd, const char *path,
                                long long size, struct preload_outcome *out)
{
    struct preload_call call = {.function = function, .fd = fd, .path = path, .size = size};
    return preload_fault_check(point, &call, out);
}

static size_t shorter(size_t n, const struct preload_outcome *out)
{
    return n < out->limit ? n : out->limit;
}

/* The failing return of a call that returns -1. */
#define FAIL_WITH(out) (errno = (out).err, -1)

/* ---- memory --------------------------------------------------------------------------------- */

static bool malloc_fails(const char *function, size_t size)
{
    struct preload_outcome out;
    if (check(POINT_MALLOC, function, -1, NULL, (long long)size, &out) != FAULT_FAIL)
        return false;
    errno = out.err;
    return true;
}

WRAP(void *, malloc, (size_t size), (size))
{
    void *(*fn)(size_t) = __atomic_load_n(&preload_real.malloc, __ATOMIC_RELAXED);
    if (PRELOAD_UNLIKELY(fn == NULL)) {
        if (preload_resolving())
            return preload_arena_alloc(size);
        preload_resolve();
        fn = preload_real.malloc;
    }
    if (ON(POINT_MALLOC) && malloc_fails("malloc", size))
        return NULL;
    return fn(size);
}

WRAP(void *, calloc, (size_t n, size_t size), (n, size))
{
    void *(*fn)(size_t, size_t) = __atomic_load_n(&preload_real.calloc, __ATOMIC_RELAXED);
    if (PRELOAD_UNLIKELY(fn == NULL)) {
        size_t total;
        if (preload_resolving())
            return __builtin_mul_overflow(n, size, &total) ? NULL : preload_arena_alloc(total);
        preload_resolve();
        fn = preload_real.calloc;
    }
    if (ON(POINT_MALLOC) && malloc_fails("calloc", n * size))
        return NULL;
    return fn(n, size);
}

/* A block of the bootstrap arena moves to the real allocator; the arena keeps its bytes. */
ARMED static void *realloc_from_arena(void *p, size_t size)
{
    void *moved = malloc(size);
    if (moved != NULL) {
        size_t old = preload_arena_size(p);
        memcpy(moved, p, old < size ? old : size);
    }
    return moved;
}

static void *realloc_armed(void *p, size_t size);

PRELOAD_EXPORT void *realloc(void *p, size_t size)
{
    if (PRELOAD_UNLIKELY(preload_in_arena(p)))
        return realloc_from_arena(p, size);
    __typeof__(preload_fast.realloc) fast = FAST(realloc);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(p, size);
    return realloc_armed(p, size);
}

ARMED static void *realloc_armed(void *p, size_t size)
{
    if (ON(POINT_MALLOC) && malloc_fails("realloc", size))
        return NULL;
    return REAL(realloc)(p, size);
}

static void *reallocarray_armed(void *p, size_t n, size_t size);

PRELOAD_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    if (PRELOAD_UNLIKELY(preload_in_arena(p)))
        return reallocarray_armed(p, n, size);
    __typeof__(preload_fast.reallocarray) fast = FAST(reallocarray);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(p, n, size);
    return reallocarray_armed(p, n, size);
}

ARMED static void *reallocarray_armed(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (PRELOAD_UNLIKELY(preload_in_arena(p)))
        return realloc(p, total);
    if (ON(POINT_MALLOC) && malloc_fails("reallocarray", total))
        return NULL;
    return REAL(reallocarray)(p, n, size);
}

ARMED static void free_armed(void *p)
{
    void (*fn)(void *) = __atomic_load_n(&preload_real.free, __ATOMIC_RELAXED);
    if (PRELOAD_UNLIKELY(fn == NULL)) {
        if (p == NULL || preload_resolving())
            return; /* nothing can have come from the real allocator yet */
        preload_resolve();
        fn = preload_real.free;
    }
    fn(p);
}

PRELOAD_EXPORT void free(void *p)
{
    if (PRELOAD_UNLIKELY(preload_in_arena(p)))
        return;
    void (*fast)(void *) = FAST(free);
    if (PRELOAD_LIKELY(fast != NULL)) {
        fast(p);
        return;
    }
    free_armed(p);
}

WRAP(int, posix_memalign, (void **out, size_t align, size_t size), (out, align, size))
{
    if (ON(POINT_MALLOC) && malloc_fails("posix_memalign", size))
        return errno; /* it reports the error instead of setting errno */
    return REAL(posix_memalign)(out, align, size);
}

WRAP(void *, aligned_alloc, (size_t align, size_t size), (align, size))
{
    if (ON(POINT_MALLOC) && malloc_fails("aligned_alloc", size))
        return NULL;
    return REAL(aligned_alloc)(align, size);
}

WRAP(void *, memalign, (size_t align, size_t size), (align, size))
{
    if (ON(POINT_MALLOC) && malloc_fails("memalign", size))
        return NULL;
    return REAL(memalign)(align, size);
}

/* ---- opening -------------------------------------------------------------------------------- */

/* The fault of a call of a path relative to dirfd; out of line, so that the wrappers' frames
 * stay small without it. */
__attribute__((noinline, cold)) static enum preload_fault path_fault(enum preload_point point, const char *function,
                                                                     int dirfd, const char *path,
                                                                     struct preload_outcome *out)
{
    char joined[4096];
    return check(point, function, -1, preload_at_path(dirfd, path, joined, sizeof(joined)), -1, out);
}

/* The armed part of every open: the fault, the real call, the descriptor's path. The exported
 * open, open64, openat and openat64 are in variadic.c. */
ARMED static int open_armed(const char *function, enum preload_open real, int dirfd, const char *path, int flags,
                            mode_t mode)
{
    if (ON(POINT_OPEN)) {
        struct preload_outcome out;
        if (path_fault(POINT_OPEN, function, dirfd, path, &out) == FAULT_FAIL)
            return FAIL_WITH(out);
    }
    /* The mode exists only with O_CREAT or O_TMPFILE: otherwise the register held anything. */
    if (!(flags & O_CREAT) && (flags & O_TMPFILE) != O_TMPFILE)
        mode = 0;
    int fd;
    switch (real) {
    case PRELOAD_OPEN:
        fd = REAL(open)(path, flags, mode);
        break;
    case PRELOAD_OPEN64:
        fd = REAL(open64)(path, flags, mode);
        break;
    case PRELOAD_OPENAT:
        fd = REAL(openat)(dirfd, path, flags, mode);
        break;
    default:
        fd = REAL(openat64)(dirfd, path, flags, mode);
        break;
    }
    if (fd >= 0 && preload_tracking_on())
        preload_fd_opened(fd, dirfd, path);
    return fd;
}

static const char *const g_open_names[] = {"open", "open64", "openat", "openat64"};

int preload_open_armed(enum preload_open real, const char *path, int flags, mode_t mode)
{
    return open_armed(g_open_names[real], real, AT_FDCWD, path, flags, mode);
}

int preload_openat_armed(enum preload_open real, int dirfd, const char *path, int flags, mode_t mode)
{
    return open_armed(g_open_names[real], real, dirfd, path, flags, mode);
}

WRAP(int, creat, (const char *path, mode_t mode), (path, mode))
{
    return open_armed("creat", PRELOAD_OPEN, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

WRAP(int, creat64, (const char *path, mode_t mode), (path, mode))
{
    return open_armed("creat64", PRELOAD_OPEN64, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* The fortified forms check that O_CREAT came with a mode; the real ones do that and abort. */
WRAP(int, __open_2, (const char *path, int flags), (path, flags))
{
    if (flags & O_CREAT)
        return REAL(__open_2)(path, flags);
    return open_armed("open", PRELOAD_OPEN, AT_FDCWD, path, flags, 0);
}

WRAP(int, __open64_2, (const char *path, int flags), (path, flags))
{
    if (flags & O_CREAT)
        return REAL(__open64_2)(path, flags);
    return open_armed("open64", PRELOAD_OPEN64, AT_FDCWD, path, flags, 0);
}

WRAP(int, __openat_2, (int dirfd, const char *path, int flags), (dirfd, path, flags))
{
    if (flags & O_CREAT)
        return REAL(__openat_2)(dirfd, path, flags);
    return open_armed("openat", PRELOAD_OPENAT, dirfd, path, flags, 0);
}

WRAP(int, __openat64_2, (int dirfd, const char *path, int flags), (dirfd, path, flags))
{
    if (flags & O_CREAT)
        return REAL(__openat64_2)(dirfd, path, flags);
    return open_armed("openat64", PRELOAD_OPENAT64, dirfd, path, flags, 0);
}

/* ---- reading and writing ------------------------------------------------------------------- */

/* A read or write of n bytes: FAULT_FAIL returns -1 with errno; FAULT_SHORT lowers *n. */
#define MOVE_CHECK(point, function, fd, n)                                                     \
    do {                                                                                       \
        if (ON(point)) {                                                                       \
            struct preload_outcome out_;                                                       \
            enum preload_fault f_ = check(point, function, fd, NULL, (long long)(n), &out_);  \
            if (f_ == FAULT_FAIL)                                                              \
                return FAIL_WITH(out_);                                                        \
            if (f_ == FAULT_SHORT)                                                             \
                n = shorter(n, &out_);                                                         \
        }                                                                                      \
    } while (0)

static size_t iov_total(const struct iovec *iov, int count)
{
    size_t total = 0;
    for (int i = 0; iov != NULL && i < count; i++)
        total += iov[i].iov_len;
    return total;
}

/* Copies iov into cut (count entries) keeping at most limit bytes; returns the new count. */
static int iov_cut(const struct iovec *iov, int count, size_t limit, struct iovec *cut)
{
    int n = 0;
    for (int i = 0; i < count && limit > 0; i++) {
        cut[n] = iov[i];
        if (cut[n].iov_len > limit)
            cut[n].iov_len = limit;
        limit -= cut[n].iov_len;
        n++;
    }
    return n;
}

/* The vector forms: fail, or replace (iov, count) by a shortened copy (on the stack, only then). */
#define IOV_CHECK(point, function, fd, iov, count)                                             \
    do {                                                                                       \
        if (ON(point)) {                                                                       \
            struct preload_outcome out_;                                                       \
            enum preload_fault f_ = check(point, function, fd, NULL, (long long)iov_total(iov, count), &out_); \
            if (f_ == FAULT_FAIL)                                                              \
                return FAIL_WITH(out_);                                                        \
            if (f_ == FAULT_SHORT && count > 0 && count <= IOV_MAX) {                          \
                struct iovec *cut_ = alloca(sizeof(struct iovec) * (size_t)count);             \
                count = iov_cut(iov, count, out_.limit, cut_);                                 \
                iov = cut_;                                                                    \
            }                                                                                  \
        }                                                                                      \
    } while (0)

WRAP(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n))
{
    MOVE_CHECK(POINT_READ, "read", fd, n);
    return REAL(read)(fd, buf, n);
}

PRELOAD_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    __typeof__(preload_fast.read) fast = FAST(read);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, buf, n);
    return read_armed(fd, buf, n);
}

WRAP(ssize_t, pread, (int fd, void *buf, size_t n, off_t offset), (fd, buf, n, offset))
{
    MOVE_CHECK(POINT_READ, "pread", fd, n);
    return REAL(pread)(fd, buf, n, offset);
}

WRAP(ssize_t, pread64, (int fd, void *buf, size_t n, off_t offset), (fd, buf, n, offset))
{
    MOVE_CHECK(POINT_READ, "pread64", fd, n);
    return REAL(pread64)(fd, buf, n, offset);
}

PRELOAD_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t offset, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    __typeof__(preload_fast.pread) fast = FAST(pread);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, buf, n, offset);
    return pread_armed(fd, buf, n, offset);
}

PRELOAD_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t offset, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    __typeof__(preload_fast.pread64) fast = FAST(pread64);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, buf, n, offset);
    return pread64_armed(fd, buf, n, offset);
}

WRAP(ssize_t, readv, (int fd, const struct iovec *iov, int count), (fd, iov, count))
{
    IOV_CHECK(POINT_READ, "readv", fd, iov, count);
    return REAL(readv)(fd, iov, count);
}

WRAP(ssize_t, preadv, (int fd, const struct iovec *iov, int count, off_t offset), (fd, iov, count, offset))
{
    IOV_CHECK(POINT_READ, "preadv", fd, iov, count);
    return REAL(preadv)(fd, iov, count, offset);
}

WRAP(ssize_t, preadv64, (int fd, const struct iovec *iov, int count, off_t offset), (fd, iov, count, offset))
{
    IOV_CHECK(POINT_READ, "preadv64", fd, iov, count);
    return REAL(preadv64)(fd, iov, count, offset);
}

WRAP(ssize_t, preadv2, (int fd, const struct iovec *iov, int count, off_t offset, int flags), (fd, iov, count, offset, flags))
{
    IOV_CHECK(POINT_READ, "preadv2", fd, iov, count);
    return REAL(preadv2)(fd, iov, count, offset, flags);
}

WRAP(ssize_t, preadv64v2, (int fd, const struct iovec *iov, int count, off_t offset, int flags), (fd, iov, count, offset, flags))
{
    IOV_CHECK(POINT_READ, "preadv64v2", fd, iov, count);
    return REAL(preadv64v2)(fd, iov, count, offset, flags);
}

WRAP(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n))
{
    MOVE_CHECK(POINT_WRITE, "write", fd, n);
    return REAL(write)(fd, buf, n);
}

WRAP(ssize_t, pwrite, (int fd, const void *buf, size_t n, off_t offset), (fd, buf, n, offset))
{
    MOVE_CHECK(POINT_WRITE, "pwrite", fd, n);
    return REAL(pwrite)(fd, buf, n, offset);
}

WRAP(ssize_t, pwrite64, (int fd, const void *buf, size_t n, off_t offset), (fd, buf, n, offset))
{
    MOVE_CHECK(POINT_WRITE, "pwrite64", fd, n);
    return REAL(pwrite64)(fd, buf, n, offset);
}

WRAP(ssize_t, writev, (int fd, const struct iovec *iov, int count), (fd, iov, count))
{
    IOV_CHECK(POINT_WRITE, "writev", fd, iov, count);
    return REAL(writev)(fd, iov, count);
}

WRAP(ssize_t, pwritev, (int fd, const struct iovec *iov, int count, off_t offset), (fd, iov, count, offset))
{
    IOV_CHECK(POINT_WRITE, "pwritev", fd, iov, count);
    return REAL(pwritev)(fd, iov, count, offset);
}

WRAP(ssize_t, pwritev64, (int fd, const struct iovec *iov, int count, off_t offset), (fd, iov, count, offset))
{
    IOV_CHECK(POINT_WRITE, "pwritev64", fd, iov, count);
    return REAL(pwritev64)(fd, iov, count, offset);
}

WRAP(ssize_t, pwritev2, (int fd, const struct iovec *iov, int count, off_t offset, int flags), (fd, iov, count, offset, flags))
{
    IOV_CHECK(POINT_WRITE, "pwritev2", fd, iov, count);
    return REAL(pwritev2)(fd, iov, count, offset, flags);
}

WRAP(ssize_t, pwritev64v2, (int fd, const struct iovec *iov, int count, off_t offset, int flags), (fd, iov, count, offset, flags))
{
    IOV_CHECK(POINT_WRITE, "pwritev64v2", fd, iov, count);
    return REAL(pwritev64v2)(fd, iov, count, offset, flags);
}

/* coreutils cp copies regular files with copy_file_range, so it counts as a write of fd_out. */
WRAP(ssize_t, copy_file_range, (int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t n, unsigned flags), (fd_in, off_in, fd_out, off_out, n, flags))
{
    MOVE_CHECK(POINT_WRITE, "copy_file_range", fd_out, n);
    return REAL(copy_file_range)(fd_in, off_in, fd_out, off_out, n, flags);
}

/* ---- syncing, closing, names ---------------------------------------------------------------- */

/* A call of a descriptor that moves no bytes: fail or pass. */
#define FD_CHECK(point, function, fd)                                                          \
    do {                                                                                       \
        if (ON(point)) {                                                                       \
            struct preload_outcome out_;                                                       \
            if (check(point, function, fd, NULL, -1, &out_) == FAULT_FAIL)                     \
                return FAIL_WITH(out_);                                                        \
        }                                                                                      \
    } while (0)

WRAP(int, fsync, (int fd), (fd))
{
    FD_CHECK(POINT_FSYNC, "fsync", fd);
    return REAL(fsync)(fd);
}

WRAP(int, fdatasync, (int fd), (fd))
{
    FD_CHECK(POINT_FSYNC, "fdatasync", fd);
    return REAL(fdatasync)(fd);
}

WRAP(int, sync_file_range, (int fd, off_t offset, off_t n, unsigned flags), (fd, offset, n, flags))
{
    FD_CHECK(POINT_FSYNC, "sync_file_range", fd);
    return REAL(sync_file_range)(fd, offset, n, flags);
}

WRAP(int, close, (int fd), (fd))
{
    /* A failed close leaves the descriptor open (and remembered), as a program would assume. */
    FD_CHECK(POINT_CLOSE, "close", fd);
    if (preload_tracking_on())
        preload_fd_closed(fd);
    return REAL(close)(fd);
}

__attribute__((noinline, cold)) static int rename_check(const char *function, int olddir, const char *from,
                                                         int newdir, const char *to)
{
    char a[4096], b[4096];
    struct preload_call call = {.function = function, .fd = -1, .size = -1,
                                .path = preload_at_path(olddir, from, a, sizeof(a)),
                                .path2 = preload_at_path(newdir, to, b, sizeof(b))};
    struct preload_outcome out;
    if (preload_fault_check(POINT_RENAME, &call, &out) != FAULT_FAIL)
        return 0;
    errno = out.err;
    return -1;
}

WRAP(int, rename, (const char *from, const char *to), (from, to))
{
    if (ON(POINT_RENAME) && rename_check("rename", AT_FDCWD, from, AT_FDCWD, to) != 0)
        return -1;
    return REAL(rename)(from, to);
}

WRAP(int, renameat, (int olddir, const char *from, int newdir, const char *to), (olddir, from, newdir, to))
{
    if (ON(POINT_RENAME) && rename_check("renameat", olddir, from, newdir, to) != 0)
        return -1;
    return REAL(renameat)(olddir, from, newdir, to);
}

WRAP(int, renameat2, (int olddir, const char *from, int newdir, const char *to, unsigned flags), (olddir, from, newdir, to, flags))
{
    if (ON(POINT_RENAME) && rename_check("renameat2", olddir, from, newdir, to) != 0)
        return -1;
    return REAL(renameat2)(olddir, from, newdir, to, flags);
}

/* A call of a path (relative to dirfd): fail or pass. */
#define PATH_CHECK(point, function, dirfd, path)                                               \
    do {                                                                                       \
        if (ON(point)) {                                                                       \
            struct preload_outcome out_;                                                       \
            if (path_fault(point, function, dirfd, path, &out_) == FAULT_FAIL)                 \
                return FAIL_WITH(out_);                                                        \
        }                                                                                      \
    } while (0)

WRAP(int, unlink, (const char *path), (path))
{
    PATH_CHECK(POINT_UNLINK, "unlink", AT_FDCWD, path);
    return REAL(unlink)(path);
}

WRAP(int, unlinkat, (int dirfd, const char *path, int flags), (dirfd, path, flags))
{
    PATH_CHECK(POINT_UNLINK, "unlinkat", dirfd, path);
    return REAL(unlinkat)(dirfd, path, flags);
}

WRAP(int, mkdir, (const char *path, mode_t mode), (path, mode))
{
    PATH_CHECK(POINT_MKDIR, "mkdir", AT_FDCWD, path);
    return REAL(mkdir)(path, mode);
}

WRAP(int, mkdirat, (int dirfd, const char *path, mode_t mode), (dirfd, path, mode))
{
    PATH_CHECK(POINT_MKDIR, "mkdirat", dirfd, path);
    return REAL(mkdirat)(dirfd, path, mode);
}

WRAP(int, ftruncate, (int fd, off_t length), (fd, length))
{
    FD_CHECK(POINT_FTRUNCATE, "ftruncate", fd);
    return REAL(ftruncate)(fd, length);
}

WRAP(int, ftruncate64, (int fd, off_t length), (fd, length))
{
    FD_CHECK(POINT_FTRUNCATE, "ftruncate64", fd);
    return REAL(ftruncate64)(fd, length);
}

WRAP(int, fallocate, (int fd, int mode, off_t offset, off_t n), (fd, mode, offset, n))
{
    FD_CHECK(POINT_FALLOCATE, "fallocate", fd);
    return REAL(fallocate)(fd, mode, offset, n);
}

WRAP(int, fallocate64, (int fd, int mode, off_t offset, off_t n), (fd, mode, offset, n))
{
    FD_CHECK(POINT_FALLOCATE, "fallocate64", fd);
    return REAL(fallocate64)(fd, mode, offset, n);
}

/* posix_fallocate reports its error as its result, not in errno. */
static int posix_fallocate_fault(const char *function, int fd)
{
    struct preload_outcome out;
    return check(POINT_FALLOCATE, function, fd, NULL, -1, &out) == FAULT_FAIL ? out.err : 0;
}

WRAP(int, posix_fallocate, (int fd, off_t offset, off_t n), (fd, offset, n))
{
    int err = ON(POINT_FALLOCATE) ? posix_fallocate_fault("posix_fallocate", fd) : 0;
    return err != 0 ? err : REAL(posix_fallocate)(fd, offset, n);
}

WRAP(int, posix_fallocate64, (int fd, off_t offset, off_t n), (fd, offset, n))
{
    int err = ON(POINT_FALLOCATE) ? posix_fallocate_fault("posix_fallocate64", fd) : 0;
    return err != 0 ? err : REAL(posix_fallocate64)(fd, offset, n);
}

/* ---- descriptors: copies ------------------------------------------------------------------ */

WRAP(int, dup, (int fd), (fd))
{
    int copy = REAL(dup)(fd);
    if (preload_tracking_on())
        preload_fd_dup(fd, copy);
    return copy;
}

WRAP(int, dup2, (int fd, int target), (fd, target))
{
    int copy = REAL(dup2)(fd, target);
    if (preload_tracking_on())
        preload_fd_dup(fd, copy);
    return copy;
}

WRAP(int, dup3, (int fd, int target, int flags), (fd, target, flags))
{
    int copy = REAL(dup3)(fd, target, flags);
    if (preload_tracking_on())
        preload_fd_dup(fd, copy);
    return copy;
}

/* The armed part of fcntl and fcntl64 (exported from variadic.c). Every fcntl argument is an int
 * or a pointer: passed on as a pointer-sized value. */
int preload_fcntl_armed(bool large, int fd, int cmd, void *arg)
{
    int rc = large ? REAL(fcntl64)(fd, cmd, arg) : REAL(fcntl)(fd, cmd, arg);
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && rc >= 0 && preload_tracking_on())
        preload_fd_dup(fd, rc);
    return rc;
}

/* ---- sockets ------------------------------------------------------------------------------- */

WRAP(int, socket, (int domain, int type, int protocol), (domain, type, protocol))
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0 && preload_tracking_on())
        preload_fd_socket(fd, domain, type);
    return fd;
}

WRAP(int, bind, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len))
{
    int rc = REAL(bind)(fd, addr, len);
    if (rc == 0 && preload_tracking_on()) {
        char text[256];
        preload_sockaddr_text(fd, addr, len, text, sizeof(text));
        preload_fd_describe(fd, text);
    }
    return rc;
}

/* A connect's fault is matched against the address it connects to ("tcp:127.0.0.1:6379"). */
__attribute__((noinline, cold)) static enum preload_fault connect_fault(int fd, const struct sockaddr *addr,
                                                                        socklen_t len, struct preload_outcome *out)
{
    char text[256];
    int saved = errno;
    preload_sockaddr_text(fd, addr, len, text, sizeof(text));
    errno = saved;
    return check(POINT_CONNECT, "connect", fd, text, -1, out);
}

WRAP(int, connect, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len))
{
    if (ON(POINT_CONNECT)) {
        struct preload_outcome out;
        if (connect_fault(fd, addr, len, &out) == FAULT_FAIL)
            return FAIL_WITH(out);
    }
    int rc = REAL(connect)(fd, addr, len);
    if ((rc == 0 || errno == EINPROGRESS) && preload_tracking_on()) {
        int saved = errno;
        char text[256];
        preload_sockaddr_text(fd, addr, len, text, sizeof(text));
        preload_fd_describe(fd, text);
        errno = saved;
    }
    return rc;
}

static int accept_common(const char *function, int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    FD_CHECK(POINT_ACCEPT, function, fd);
    if (!preload_tracking_on() || (addr != NULL && len == NULL)) /* (the latter: the kernel's EFAULT) */
        return REAL(accept4)(fd, addr, len, flags);
    /* The peer's address, whether or not the caller asked for it, describes the new socket. */
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    int conn = REAL(accept4)(fd, (struct sockaddr *)&peer, &peer_len, flags);
    if (conn < 0)
        return conn;
    int saved = errno;
    if (addr != NULL) {
        memcpy(addr, &peer, *len < peer_len ? *len : peer_len);
        *len = peer_len;
    }
    preload_fd_socket(conn, peer.ss_family, SOCK_STREAM);
    char text[256];
    preload_sockaddr_text(conn, (struct sockaddr *)&peer, peer_len, text, sizeof(text));
    preload_fd_describe(conn, text);
    errno = saved;
    return conn;
}

WRAP(int, accept, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len))
{
    return accept_common("accept", fd, addr, len, 0);
}

WRAP(int, accept4, (int fd, struct sockaddr *addr, socklen_t *len, int flags), (fd, addr, len, flags))
{
    return accept_common("accept4", fd, addr, len, flags);
}

WRAP(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags))
{
    MOVE_CHECK(POINT_SEND, "send", fd, n);
    return REAL(send)(fd, buf, n, flags);
}

WRAP(ssize_t, sendto, (int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len), (fd, buf, n, flags, addr, len))
{
    MOVE_CHECK(POINT_SEND, "sendto", fd, n);
    return REAL(sendto)(fd, buf, n, flags, addr, len);
}

WRAP(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))
{
    if (ON(POINT_SEND) && msg != NULL) {
        struct preload_outcome out;
        enum preload_fault f = check(POINT_SEND, "sendmsg", fd, NULL,
                                     (long long)iov_total(msg->msg_iov, (int)msg->msg_iovlen), &out);
        if (f == FAULT_FAIL)
            return FAIL_WITH(out);
        if (f == FAULT_SHORT) {
            struct iovec *cut = alloca(sizeof(struct iovec) * (msg->msg_iovlen ? msg->msg_iovlen : 1));
            struct msghdr shorter_msg = *msg;
            shorter_msg.msg_iovlen = (size_t)iov_cut(msg->msg_iov, (int)msg->msg_iovlen, out.limit, cut);
            shorter_msg.msg_iov = cut;
            return REAL(sendmsg)(fd, &shorter_msg, flags);
        }
    }
    return REAL(sendmsg)(fd, msg, flags);
}

WRAP(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags))
{
    MOVE_CHECK(POINT_RECV, "recv", fd, n);
    return REAL(recv)(fd, buf, n, flags);
}

PRELOAD_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    __typeof__(preload_fast.recv) fast = FAST(recv);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, buf, n, flags);
    return recv_armed(fd, buf, n, flags);
}

WRAP(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *len), (fd, buf, n, flags, addr, len))
{
    MOVE_CHECK(POINT_RECV, "recvfrom", fd, n);
    return REAL(recvfrom)(fd, buf, n, flags, addr, len);
}

PRELOAD_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr,
                                      socklen_t *len)
{
    if (n > buflen)
        __chk_fail();
    __typeof__(preload_fast.recvfrom) fast = FAST(recvfrom);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, buf, n, flags, addr, len);
    return recvfrom_armed(fd, buf, n, flags, addr, len);
}

WRAP(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
{
    if (ON(POINT_RECV) && msg != NULL) {
        struct preload_outcome out;
        enum preload_fault f = check(POINT_RECV, "recvmsg", fd, NULL,
                                     (long long)iov_total(msg->msg_iov, (int)msg->msg_iovlen), &out);
        if (f == FAULT_FAIL)
            return FAIL_WITH(out);
        if (f == FAULT_SHORT) {
            struct iovec *cut = alloca(sizeof(struct iovec) * (msg->msg_iovlen ? msg->msg_iovlen : 1));
            struct iovec *whole = msg->msg_iov;
            size_t whole_len = msg->msg_iovlen;
            msg->msg_iovlen = (size_t)iov_cut(whole, (int)whole_len, out.limit, cut);
            msg->msg_iov = cut;
            ssize_t rc = REAL(recvmsg)(fd, msg, flags);
            int saved = errno;
            msg->msg_iov = whole;
            msg->msg_iovlen = whole_len;
            errno = saved;
            return rc;
        }
    }
    return REAL(recvmsg)(fd, msg, flags);
}
