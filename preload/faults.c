/*
 * faults.c - the libc points: their sites, their parameters, and what a fault does.
 *
 * Each point (libc.write, ...) has one site record, shared by all the functions it covers
 * (write, pwrite, pwrite64, writev, ...), catalogued with file "libc" and line 0 through the
 * library's module registration. When a point is enabled, a wrapped call comes here: it is
 * matched against the parameters (fd, path); a call they do not match passes through and is not
 * an evaluation of the point (with the term 3*off->1*on and path=*-journal, only journal writes
 * count). A matched call fires the point with its detail; if the fire says so (on, a term's step
 * that takes effect, a one-shot that won) the call fails with `errno`, or with `short` moves at
 * most that many bytes. A term's return(V) fails the call with errno V.
 *
 * Parameters are checked when the point is enabled (the validator registered for "libc."), so a
 * bad errno name, glob, descriptor or short is refused with a message and changes nothing.
 */
#define _GNU_SOURCE
#include "preload.h"
#include "../src/hooks.h"
#include "../src/params.h"
#include "../src/points.h"
#include "../src/util.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each point takes: the descriptor and size parameters make sense only where the call has them. */
struct point_info {
    const char *name;
    int default_errno;
    bool has_fd;   /* `fd` applies */
    bool has_path; /* `path` applies (a path argument, or a descriptor's path) */
    bool has_size; /* `short` applies */
};

static const struct point_info g_points[POINT_COUNT] = {
    [POINT_OPEN] = {"libc.open", EIO, false, true, false},
    [POINT_READ] = {"libc.read", EIO, true, true, true},
    [POINT_WRITE] = {"libc.write", EIO, true, true, true},
    [POINT_FSYNC] = {"libc.fsync", EIO, true, true, false},
    [POINT_CLOSE] = {"libc.close", EIO, true, true, false},
    [POINT_RENAME] = {"libc.rename", EIO, false, true, false},
    [POINT_UNLINK] = {"libc.unlink", EIO, false, true, false},
    [POINT_MKDIR] = {"libc.mkdir", EIO, false, true, false},
    [POINT_FTRUNCATE] = {"libc.ftruncate", EIO, true, true, false},
    [POINT_FALLOCATE] = {"libc.fallocate", EIO, true, true, false},
    [POINT_CONNECT] = {"libc.connect", ECONNREFUSED, true, true, false},
    [POINT_ACCEPT] = {"libc.accept", ECONNABORTED, true, true, false},
    [POINT_SEND] = {"libc.send", ECONNRESET, true, true, true},
    [POINT_RECV] = {"libc.recv", ECONNRESET, true, true, true},
    [POINT_MALLOC] = {"libc.malloc", ENOMEM, false, false, false},
};

PRELOAD_HIDDEN struct errinj_site preload_sites[POINT_COUNT];

/* ---- parameters ---------------------------------------------------------------------------- */

/* errno from a name ("ENOSPC") or a number ("28"); 0 if neither. */
static int parse_errno(const char *text)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*end == '\0' && errno == 0)
        return v > 0 && v < 4096 ? (int)v : 0;
    for (int e = 1; e < 4096; e++) {
        const char *name = strerrorname_np(e);
        if (name != NULL && strcmp(name, text) == 0)
            return e;
    }
    return 0;
}

/* A non-negative integer that fits an int, or -1. */
static long long parse_count(const char *text)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    return *end == '\0' && errno == 0 && v <= INT_MAX ? v : -1;
}

/* Why a glob is not one fnmatch can use, or NULL: unclosed brackets, a trailing backslash. */
static const char *glob_problem(const char *glob)
{
    if (glob[0] == '\0')
        return "is empty";
    for (const char *p = glob; *p != '\0'; p++) {
        if (*p == '\\') {
            if (*++p == '\0')
                return "ends in a lone backslash";
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q != '\0' && *q != ']')
                q++;
            if (*q == '\0')
                return "has a '[' without its ']'";
            p = q;
        }
    }
    return NULL;
}

static const struct point_info *point_named(const char *name, enum preload_point *which)
{
    for (int i = 0; i < POINT_COUNT; i++) {
        if (strcmp(g_points[i].name, name) == 0) {
            if (which != NULL)
                *which = (enum preload_point)i;
            return &g_points[i];
        }
    }
    return NULL;
}

static int validate(const char *name, const char *const *params, char *msg, size_t len)
{
    const struct point_info *p = point_named(name, NULL);
    if (p == NULL) {
        snprintf(msg, len,
                 "%s: no such libc point (libc.open, read, write, fsync, close, rename, unlink, mkdir, ftruncate, "
                 "fallocate, connect, accept, send, recv, malloc)",
                 name);
        return ERRINJ_EINVAL;
    }
    for (size_t i = 0; params[i] != NULL && params[i + 1] != NULL; i += 2) {
        const char *key = params[i], *value = params[i + 1];
        if (strcmp(key, "errno") == 0) {
            if (parse_errno(value) == 0) {
                snprintf(msg, len, "%s: errno must be an errno name such as ENOSPC or a number from 1 to 4095, not \"%s\"",
                         name, value);
                return ERRINJ_EINVAL;
            }
        } else if (strcmp(key, "path") == 0) {
            const char *problem = p->has_path ? glob_problem(value) : NULL;
            if (!p->has_path) {
                snprintf(msg, len, "%s: path does not apply, the call has no path or descriptor", name);
                return ERRINJ_EINVAL;
            }
            if (problem != NULL) {
                snprintf(msg, len, "%s: path \"%s\" is not a valid glob: it %s", name, value, problem);
                return ERRINJ_EINVAL;
            }
        } else if (strcmp(key, "fd") == 0) {
            if (!p->has_fd) {
                snprintf(msg, len, "%s: fd does not apply, the call takes no descriptor", name);
                return ERRINJ_EINVAL;
            }
            if (parse_count(value) < 0) {
                snprintf(msg, len, "%s: fd must be a descriptor number (an integer from 0), not \"%s\"", name, value);
                return ERRINJ_EINVAL;
            }
        } else if (strcmp(key, "short") == 0) {
            if (!p->has_size) {
                snprintf(msg, len, "%s: short applies only to calls that move bytes (libc.read, write, send, recv)", name);
                return ERRINJ_EINVAL;
            }
            if (parse_count(value) < 0) {
                snprintf(msg, len, "%s: short must be a byte count (an integer from 0), not \"%s\"", name, value);
                return ERRINJ_EINVAL;
            }
        } else {
            snprintf(msg, len, "%s: unknown parameter \"%s\" (libc points take errno, path, fd and short)", name, key);
            return ERRINJ_EINVAL;
        }
    }
    /* From now on every wrapper checks its point and descriptors are tracked: this enable may apply. */
    preload_arm();
    return 0;
}

void preload_points_register(void)
{
    for (int i = 0; i < POINT_COUNT; i++)
        preload_sites[i] = (struct errinj_site){.name = g_points[i].name, .file = "libc", .line = 0,
                                                .type = ERRINJ_TYPE_EXCEPTION};
    errinj__hook_validator("libc.", validate);
    /* The library's module registration, with the records in an array rather than a section. */
    errinj__module_register(preload_sites, preload_sites + POINT_COUNT);
}

/* ---- the detail ---------------------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n >= t->cap)
        n = t->len + 1 < t->cap ? t->cap - t->len - 1 : 0;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_int(struct text *t, long long v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%lld", v);
    put(t, digits, (size_t)n);
}

/* A JSON string as jansson's compact dump writes it; bytes that are not UTF-8 become U+FFFD. */
static void put_json_string(struct text *t, const char *s)
{
    put(t, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0';) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = {'\\', (char)*c};
            put(t, esc, 2);
            c++;
        } else if (*c < 0x20) {
            char esc[8];
            const char *named = *c == '\b' ? "\\b" : *c == '\f' ? "\\f" : *c == '\n' ? "\\n" : *c == '\r' ? "\\r"
                                : *c == '\t' ? "\\t" : NULL;
            if (named == NULL)
                snprintf(esc, sizeof(esc), "\\u%04X", *c);
            put_str(t, named != NULL ? named : esc);
            c++;
        } else if (*c < 0x80) {
            put(t, (const char *)c, 1);
            c++;
        } else {
            size_t n = errinj__utf8_sequence(c, strnlen((const char *)c, 4), NULL);
            if (n == 0) {
                put(t, "\xef\xbf\xbd", 3);
                c++;
            } else {
                put(t, (const char *)c, n);
                c += n;
            }
        }
    }
    put(t, "\"", 1);
}

static void make_detail(struct text *t, const struct preload_call *call, const char *path)
{
    put_str(t, "{\"function\":");
    put_json_string(t, call->function);
    put_str(t, ",\"fd\":");
    if (call->fd >= 0)
        put_int(t, call->fd);
    else
        put_str(t, "null");
    put_str(t, ",\"path\":");
    if (path != NULL)
        put_json_string(t, path);
    else
        put_str(t, "null");
    put_str(t, ",\"size\":");
    if (call->size >= 0)
        put_int(t, call->size);
    else
        put_str(t, "null");
    put_str(t, "}");
}

/* ---- a call at an enabled point ------------------------------------------------------------ */

enum preload_fault preload_fault_check(enum preload_point point, const struct preload_call *call,
                                       struct preload_outcome *out)
{
    /* The library's own calls, the server thread's, and calls made while a fault is being
     * decided (the log line's write, a detail copy's malloc) pass through. */
    if (preload_guard != 0)
        return FAULT_NONE;
    int saved = errno;
    preload_guard++;
    enum preload_fault fault = FAULT_NONE;
    struct errinj_site *site = &preload_sites[point];
    struct errinj__config *cfg = errinj__site_config(site);
    if (cfg == NULL)
        goto out;

    const char *want_fd = errinj__config_get(cfg, "fd");
    if (want_fd != NULL && (call->fd < 0 || parse_count(want_fd) != call->fd))
        goto out;
    char path_buf[4096];
    const char *path = call->path;
    if (path == NULL && call->fd >= 0 && g_points[point].has_path)
        path = preload_fd_path(call->fd, path_buf, sizeof(path_buf)) ? path_buf : NULL;
    const char *glob = errinj__config_get(cfg, "path");
    if (glob != NULL) {
        bool match = (path != NULL && fnmatch(glob, path, 0) == 0) ||
                     (call->path2 != NULL && fnmatch(glob, call->path2, 0) == 0);
        if (!match)
            goto out;
    }

    const char *errno_text = errinj__config_get(cfg, "errno");
    int err = errno_text != NULL ? parse_errno(errno_text) : 0;
    if (err == 0)
        err = g_points[point].default_errno;
    char detail_buf[4096 + 256];
    struct text detail = {detail_buf, 0, sizeof(detail_buf)};
    detail_buf[0] = '\0';
    make_detail(&detail, call, path);
    int rc = errinj__fire_exception_detail(site, err, detail_buf);
    if (rc == 0)
        goto out;
    long long limit = parse_count(errinj__config_get(cfg, "short"));
    if (limit >= 0 && g_points[point].has_size) {
        fault = FAULT_SHORT;
        out->limit = (size_t)limit;
    } else {
        fault = FAULT_FAIL;
        /* "on" gives back the errno passed in; a term's return(V) gives V. */
        out->err = rc > 0 ? rc : rc == ERRINJ_EINJECTED ? err : -rc;
    }
out:
    errinj__config_unref(cfg);
    preload_guard--;
    errno = saved;
    return fault;
}
