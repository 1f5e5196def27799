/*
 * variadic.c - the wrappers of libc's variadic calls: open, open64, openat, openat64, fcntl and
 * fcntl64.
 *
 * Their fast path must be a jump, like every other wrapper's: a wrapper that calls the real
 * function runs its own code again after the system call returns, when the kernel's work has
 * pushed that code and its stack frame out of the first-level caches (measured here: 1-2 ns on a
 * write, about 15 ns on an open+close pair, three times the whole budget). A C function declared
 * with `...` cannot pass its unnamed argument on without va_start and a call. So on the ABIs
 * where an unnamed argument travels in the same register as a named one of its type (x86-64
 * System V and AArch64 Linux: open's mode in the third argument register, fcntl's argument
 * likewise), these wrappers are defined with that argument named, in this file, which does not
 * include <fcntl.h> and so does not see libc's variadic prototypes. The register is passed on as
 * it came, whether or not the caller filled it, exactly as a direct call of libc would leave it;
 * libc reads it only when the flags or command say it is there. Elsewhere they are variadic and
 * read it with va_arg.
 */
#define _GNU_SOURCE
#include "preload.h"

#if defined(__x86_64__) || (defined(__aarch64__) && defined(__linux__))

PRELOAD_EXPORT int open(const char *path, int flags, mode_t mode)
{
    int (*fast)(const char *, int, ...) = FAST(open);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(path, flags, mode);
    return preload_open_armed(PRELOAD_OPEN, path, flags, mode);
}

PRELOAD_EXPORT int open64(const char *path, int flags, mode_t mode)
{
    int (*fast)(const char *, int, ...) = FAST(open64);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(path, flags, mode);
    return preload_open_armed(PRELOAD_OPEN64, path, flags, mode);
}

PRELOAD_EXPORT int openat(int dirfd, const char *path, int flags, mode_t mode)
{
    int (*fast)(int, const char *, int, ...) = FAST(openat);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(dirfd, path, flags, mode);
    return preload_openat_armed(PRELOAD_OPENAT, dirfd, path, flags, mode);
}

PRELOAD_EXPORT int openat64(int dirfd, const char *path, int flags, mode_t mode)
{
    int (*fast)(int, const char *, int, ...) = FAST(openat64);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(dirfd, path, flags, mode);
    return preload_openat_armed(PRELOAD_OPENAT64, dirfd, path, flags, mode);
}

PRELOAD_EXPORT int fcntl(int fd, int cmd, void *arg)
{
    int (*fast)(int, int, ...) = FAST(fcntl);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, cmd, arg);
    return preload_fcntl_armed(false, fd, cmd, arg);
}

PRELOAD_EXPORT int fcntl64(int fd, int cmd, void *arg)
{
    int (*fast)(int, int, ...) = FAST(fcntl64);
    if (PRELOAD_LIKELY(fast != NULL))
        return fast(fd, cmd, arg);
    return preload_fcntl_armed(true, fd, cmd, arg);
}

#else /* an ABI where unnamed arguments may travel apart: read them */

#include <fcntl.h>
#include <stdarg.h>

/* The unnamed argument of type `type` after `last`, read only when `present`. */
#define UNNAMED(present, last, type, out)                                                      \
    do {                                                                                       \
        if (present) {                                                                         \
            va_list ap;                                                                        \
            va_start(ap, last);                                                                \
            out = va_arg(ap, type);                                                            \
            va_end(ap);                                                                        \
        }                                                                                      \
    } while (0)

/* open's mode argument exists only with O_CREAT or O_TMPFILE. */
#define HAS_MODE(flags) (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE)

PRELOAD_EXPORT int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    UNNAMED(HAS_MODE(flags), flags, mode_t, mode);
    int (*fast)(const char *, int, ...) = FAST(open);
    return fast != NULL ? fast(path, flags, mode) : preload_open_armed(PRELOAD_OPEN, path, flags, mode);
}

PRELOAD_EXPORT int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    UNNAMED(HAS_MODE(flags), flags, mode_t, mode);
    int (*fast)(const char *, int, ...) = FAST(open64);
    return fast != NULL ? fast(path, flags, mode) : preload_open_armed(PRELOAD_OPEN64, path, flags, mode);
}

PRELOAD_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    UNNAMED(HAS_MODE(flags), flags, mode_t, mode);
    int (*fast)(int, const char *, int, ...) = FAST(openat);
    return fast != NULL ? fast(dirfd, path, flags, mode) : preload_openat_armed(PRELOAD_OPENAT, dirfd, path, flags, mode);
}

PRELOAD_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    UNNAMED(HAS_MODE(flags), flags, mode_t, mode);
    int (*fast)(int, const char *, int, ...) = FAST(openat64);
    return fast != NULL ? fast(dirfd, path, flags, mode)
                        : preload_openat_armed(PRELOAD_OPENAT64, dirfd, path, flags, mode);
}

PRELOAD_EXPORT int fcntl(int fd, int cmd, ...)
{
    void *arg = NULL;
    UNNAMED(true, cmd, void *, arg); /* as libc's fcntl reads it: every argument fits a pointer */
    int (*fast)(int, int, ...) = FAST(fcntl);
    return fast != NULL ? fast(fd, cmd, arg) : preload_fcntl_armed(false, fd, cmd, arg);
}

PRELOAD_EXPORT int fcntl64(int fd, int cmd, ...)
{
    void *arg = NULL;
    UNNAMED(true, cmd, void *, arg); /* as libc's fcntl reads it: every argument fits a pointer */
    int (*fast)(int, int, ...) = FAST(fcntl64);
    return fast != NULL ? fast(fd, cmd, arg) : preload_fcntl_armed(true, fd, cmd, arg);
}

#endif
