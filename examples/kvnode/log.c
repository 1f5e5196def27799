/*
 * log.c - kvnode's log, in ScyllaDB's shape so that people who read Scylla logs feel at home:
 *
 *     INFO  2026-11-29 05:40:01,123 [shard 2] kvnode - PUT k1 applied
 *     INFO  2026-11-29 05:40:01,124 [shard 2] debug_error_injection - kv_put_before_apply: waiting for message
 *
 * Each line is formatted whole in a buffer and written with one write() under a mutex, so lines
 * of different threads never interleave and a reader (a person with `tail -f`, a test) sees each
 * line complete the moment it is logged: there is no stdio buffer to flush or lose on a crash.
 * The errinj library's own lines (one per fire) come through errinj_set_log() and are written
 * under the logger name debug_error_injection, as ScyllaDB names them.
 */
#define _GNU_SOURCE
#include "kvnode.h"

#include <errinj.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longer messages are cut: a log line is for people, and a 64 KiB key helps no one. */
#define LOG_LINE_MAX 2048

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_log_fd = STDERR_FILENO;

static const char *level_name(enum kv_level level)
{
    switch (level) {
    case KV_DEBUG:
        return "DEBUG";
    case KV_INFO:
        return "INFO ";
    case KV_WARN:
        return "WARN ";
    case KV_ERROR:
        return "ERROR";
    }
    return "?????";
}

/* Writes all of buf, retrying short writes; errors are dropped, as a log has nowhere to report them. */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void log_vline(enum kv_level level, unsigned shard, const char *logger, const char *fmt, va_list ap)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    localtime_r(&now.tv_sec, &tm);

    char line[LOG_LINE_MAX];
    size_t len;
    int n = snprintf(line, sizeof(line), "%s %04d-%02d-%02d %02d:%02d:%02d,%03ld [shard %u] %s - ",
                     level_name(level), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, shard, logger);
    len = n < 0 ? 0 : (size_t)n;
    if (len < sizeof(line) - 1) {
        n = vsnprintf(line + len, sizeof(line) - 1 - len, fmt, ap);
        if (n > 0)
            len += (size_t)n;
    }
    /* Leave room for the newline even when the message was cut. */
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';

    pthread_mutex_lock(&g_log_lock);
    write_all(g_log_fd, line, len);
    pthread_mutex_unlock(&g_log_lock);
}

void kv_log(enum kv_level level, const char *logger, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, errinj_shard(), logger, fmt, ap);
    va_end(ap);
}

static void log_line_with_shard(enum kv_level level, unsigned shard, const char *logger, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void log_line_with_shard(enum kv_level level, unsigned shard, const char *logger, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline(level, shard, logger, fmt, ap);
    va_end(ap);
}

/* The errinj library's log callback: it runs on the firing thread and names that thread's shard. */
static void log_from_library(unsigned shard, const char *line, void *arg)
{
    (void)arg;
    log_line_with_shard(KV_INFO, shard, "debug_error_injection", "%s", line);
}

int kv_log_open(const char *path)
{
    if (path != NULL) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        pthread_mutex_lock(&g_log_lock);
        g_log_fd = fd;
        pthread_mutex_unlock(&g_log_lock);
    }
    errinj_set_log(log_from_library, NULL);
    return 0;
}

void kv_log_close(void)
{
    /* Detach the library first. A library line still being written races with nothing: the
     * descriptor is swapped back to stderr under the same mutex that every write holds. */
    errinj_set_log(NULL, NULL);
    pthread_mutex_lock(&g_log_lock);
    if (g_log_fd != STDERR_FILENO)
        close(g_log_fd);
    g_log_fd = STDERR_FILENO;
    pthread_mutex_unlock(&g_log_lock);
}
