/*
 * errinj.h - named error-injection points for C servers, switched on at run time
 * and reported the moment they fire.
 *
 * A server marks places in its code with points (ERRINJ_SLEEP, ERRINJ_EXCEPTION, ...).
 * A test enables a point by name (errinj_enable(), or the REST API of errinj_server_start())
 * and learns that it fired from an event (errinj_subscribe(), or the SSE stream), instead of
 * parsing logs or polling counters.
 *
 * The macros keep a static record per call site. A point that is not enabled costs one
 * load and one predicted branch; everything else is out of line, as in FreeBSD's fail(9).
 * Building with -DERRINJ_DISABLE compiles every point out: no record, no name, no code.
 *
 * Conventions, once for the whole API:
 * - Functions return 0 or a negative ERRINJ_E* code; errinj_strerror() names it.
 * - Strings passed in are copied; the caller keeps ownership. Strings and events passed to
 *   callbacks are valid only during the call.
 * - Every function is thread-safe unless its comment says otherwise.
 * - The macros need GCC or Clang (statement expressions and section attributes) on ELF.
 */
#ifndef ERRINJ_H
#define ERRINJ_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ERRINJ_VERSION "0.1.0"

/* ------------------------------------------------------------------------------------- */
/* Error codes                                                                             */
/* ------------------------------------------------------------------------------------- */

/* The one list of error codes: XX(NAME, value, message). Add new codes last, never renumber. */
#define ERRINJ_ERRNO_MAP(XX)                                                                   \
    XX(EINVAL, -EINVAL, "invalid argument")                                                    \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                       \
    XX(ENOENT, -ENOENT, "no such injection or parameter")                                      \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out waiting for message")                                 \
    XX(ERANGE, -ERANGE, "buffer too small")                                                    \
    XX(EADDRINUSE, -EADDRINUSE, "address already in use")                                      \
    XX(EACCES, -EACCES, "non-loopback listen address refused (set allow_remote)")             \
    XX(EIO, -EIO, "I/O error")                                                                 \
    XX(EINJECTED, -10001, "injected error")

enum {
#define ERRINJ__ERRNO_ENUM(name, value, message) ERRINJ_##name = (value),
    ERRINJ_ERRNO_MAP(ERRINJ__ERRNO_ENUM)
#undef ERRINJ__ERRNO_ENUM
};

/* A static, human-readable string for an ERRINJ_E* code (or "unknown error"). */
const char *errinj_strerror(int code);

/* ------------------------------------------------------------------------------------- */
/* Types shared by points, control and events                                              */
/* ------------------------------------------------------------------------------------- */

/* The type a call site reports in events ("sleep", "exception", ...). */
typedef enum errinj_type {
    ERRINJ_TYPE_SLEEP = 0,
    ERRINJ_TYPE_EXCEPTION,
    ERRINJ_TYPE_LAMBDA,
    ERRINJ_TYPE_HANDLER,
    ERRINJ_TYPE_ENTER,
} errinj_type;

/* "sleep", "exception", "lambda", "handler" or "enter". */
const char *errinj_type_name(errinj_type type);

/* Pass as timeout_ms to wait without limit. */
#define ERRINJ_FOREVER (-1)

typedef struct errinj_handler errinj_handler;

/* A handler: runs on the firing thread when a handler point fires; its result is the point's. */
typedef int (*errinj_handler_fn)(errinj_handler *h, void *arg);

/* A lambda: runs on the firing thread when a lambda point fires. */
typedef void (*errinj_lambda_fn)(void *arg);

/*
 * A static call-site record. The macros create one per call site and list it in the
 * "errinj_sites" linker section, so the catalogue knows every point before it runs.
 * `active` is non-NULL exactly while the injection of that name is enabled; only the
 * library writes it. Not for direct use.
 */
struct errinj_site {
    const char *name;
    const char *file;
    int line;
    int type; /* errinj_type */
    void *active;
    struct errinj_site *next_same_name; /* library-private */
};

/* ------------------------------------------------------------------------------------- */
/* Injection points: the six call-site forms                                               */
/* ------------------------------------------------------------------------------------- */

/*
 * ERRINJ_SLEEP(name, ms): sleeps the calling thread `ms` milliseconds when enabled
 * (the parameter "duration_ms", if set, overrides). Nothing otherwise.
 *
 * int ERRINJ_EXCEPTION(name, err): returns `err` (non-zero; 0 becomes ERRINJ_EINJECTED)
 * when enabled, for the call site to propagate; 0 otherwise.
 *
 * ERRINJ_LAMBDA(name, fn, arg): calls fn(arg) when enabled.
 *
 * int ERRINJ_HANDLER(name, fn, arg): calls fn(h, arg) when enabled and returns its result;
 * 0 otherwise.
 *
 * int ERRINJ_WAIT_FOR_MESSAGE(name, timeout_ms): when enabled, parks the calling thread until
 * a message arrives or the injection is disabled (returns 0), or `timeout_ms` passes (returns
 * ERRINJ_ETIMEDOUT; ERRINJ_FOREVER waits without limit). Returns 0 when not enabled.
 *
 * bool ERRINJ_ENTER(name): true when enabled (the fire is counted), false otherwise.
 *
 * `name` must be a string literal. Each fire counts an enter, publishes a "hit" event and
 * logs one line (see errinj_set_log()).
 */
#ifndef ERRINJ_DISABLE

#if defined(__GNUC__) || defined(__clang__)
#define ERRINJ__LIKELY_OFF(site) __builtin_expect(__atomic_load_n(&(site)->active, __ATOMIC_ACQUIRE) != 0, 0)
#else
#error "errinj.h needs GCC or Clang"
#endif

/* Defines the site record and its pointer in the catalogue section. `"" name ""` insists on a literal. */
#define ERRINJ__SITE(name_, type_)                                                             \
    static struct errinj_site errinj__site = {"" name_ "", __FILE__, __LINE__, (type_), 0, 0};   \
    static struct errinj_site *const errinj__site_ref                                         \
        __attribute__((section("errinj_sites"), used, aligned(sizeof(void *)))) = &errinj__site;

#define ERRINJ_SLEEP(name, ms)                                                                 \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_SLEEP)                                                  \
        if (ERRINJ__LIKELY_OFF(&errinj__site))                                                 \
            errinj__fire_sleep(&errinj__site, (ms));                                           \
        (void)0;                                                                               \
    })

#define ERRINJ_EXCEPTION(name, err)                                                            \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_EXCEPTION)                                              \
        ERRINJ__LIKELY_OFF(&errinj__site) ? errinj__fire_exception(&errinj__site, (err)) : 0;  \
    })

#define ERRINJ_LAMBDA(name, fn, arg)                                                           \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_LAMBDA)                                                 \
        if (ERRINJ__LIKELY_OFF(&errinj__site))                                                 \
            errinj__fire_lambda(&errinj__site, (fn), (arg));                                   \
        (void)0;                                                                               \
    })

#define ERRINJ_HANDLER(name, fn, arg)                                                          \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_HANDLER)                                                \
        ERRINJ__LIKELY_OFF(&errinj__site) ? errinj__fire_handler(&errinj__site, (fn), (arg)) : 0; \
    })

#define ERRINJ_WAIT_FOR_MESSAGE(name, timeout_ms)                                              \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_HANDLER)                                                \
        ERRINJ__LIKELY_OFF(&errinj__site) ? errinj__fire_wait(&errinj__site, (timeout_ms)) : 0; \
    })

#define ERRINJ_ENTER(name)                                                                     \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_ENTER)                                                  \
        ERRINJ__LIKELY_OFF(&errinj__site) ? errinj__fire_enter(&errinj__site) : false;         \
    })

/*
 * The same six forms with a name chosen at run time (never in the catalogue, which lists
 * compiled-in sites; events carry no file or line). A disabled check is an atomic load when nothing is
 * enabled, otherwise a lock-free hash lookup.
 */
void errinj_inject_sleep(const char *name, unsigned ms);
int errinj_inject_exception(const char *name, int err);
void errinj_inject_lambda(const char *name, errinj_lambda_fn fn, void *arg);
int errinj_inject_handler(const char *name, errinj_handler_fn fn, void *arg);
int errinj_inject_wait_for_message(const char *name, int timeout_ms);
bool errinj_inject_enter(const char *name);

/*
 * Each module (the program, each shared library) that includes this header registers its
 * "errinj_sites" section when it is loaded, also by dlopen(), and unregisters it on unload.
 * The symbols are hidden, so each module sees its own section. Not for direct use.
 */
extern struct errinj_site *const __start_errinj_sites[] __attribute__((weak, visibility("hidden")));
extern struct errinj_site *const __stop_errinj_sites[] __attribute__((weak, visibility("hidden")));
void errinj__module_register(struct errinj_site *const *start, struct errinj_site *const *stop);
void errinj__module_unregister(struct errinj_site *const *start, struct errinj_site *const *stop);

__attribute__((constructor, used)) static void errinj__module_load(void)
{
    /* Compared as addresses, not indexed: in a module without points both are weak and NULL. */
    if ((const void *)__start_errinj_sites != (const void *)__stop_errinj_sites)
        errinj__module_register(__start_errinj_sites, __stop_errinj_sites);
}

__attribute__((destructor, used)) static void errinj__module_unload(void)
{
    if ((const void *)__start_errinj_sites != (const void *)__stop_errinj_sites)
        errinj__module_unregister(__start_errinj_sites, __stop_errinj_sites);
}

#else /* ERRINJ_DISABLE: every point compiles to nothing; names never reach the binary. */

/* "Uses" its arguments without evaluating them, so variables that feed only points stay used. */
#define ERRINJ__USE(x) ((void)sizeof(0 ? (x) : 0))
/* Statement expressions, so a value-returning form used as a statement draws no warning. */
#define ERRINJ__OFF(value, ...) __extension__({ __VA_ARGS__; (value); })
#define ERRINJ_SLEEP(name, ms) ERRINJ__USE(ms)
#define ERRINJ_EXCEPTION(name, err) ERRINJ__OFF(0, ERRINJ__USE(err))
#define ERRINJ_LAMBDA(name, fn, arg) (ERRINJ__USE(fn), ERRINJ__USE(arg))
#define ERRINJ_HANDLER(name, fn, arg) ERRINJ__OFF(0, ERRINJ__USE(fn), ERRINJ__USE(arg))
#define ERRINJ_WAIT_FOR_MESSAGE(name, timeout_ms) ERRINJ__OFF(0, ERRINJ__USE(timeout_ms))
#define ERRINJ_ENTER(name) ERRINJ__OFF(false, (void)0)
#define errinj_inject_sleep(name, ms) ERRINJ__USE(ms)
#define errinj_inject_exception(name, err) ERRINJ__OFF(0, ERRINJ__USE(err))
#define errinj_inject_lambda(name, fn, arg) (ERRINJ__USE(fn), ERRINJ__USE(arg))
#define errinj_inject_handler(name, fn, arg) ERRINJ__OFF(0, ERRINJ__USE(fn), ERRINJ__USE(arg))
#define errinj_inject_wait_for_message(name, timeout_ms) ERRINJ__OFF(0, ERRINJ__USE(timeout_ms))
#define errinj_inject_enter(name) ERRINJ__OFF(false, (void)0)

#endif /* ERRINJ_DISABLE */

/* Out-of-line halves of the macros: called only when the site is enabled, so marked cold to keep
 * the caller's fast path free of their register saves. Not for direct use. */
#define ERRINJ__COLD __attribute__((cold, noinline))
ERRINJ__COLD void errinj__fire_sleep(struct errinj_site *site, unsigned ms);
ERRINJ__COLD int errinj__fire_exception(struct errinj_site *site, int err);
ERRINJ__COLD void errinj__fire_lambda(struct errinj_site *site, errinj_lambda_fn fn, void *arg);
ERRINJ__COLD int errinj__fire_handler(struct errinj_site *site, errinj_handler_fn fn, void *arg);
ERRINJ__COLD int errinj__fire_wait(struct errinj_site *site, int timeout_ms);
ERRINJ__COLD bool errinj__fire_enter(struct errinj_site *site);

/* ------------------------------------------------------------------------------------- */
/* Inside a handler                                                                        */
/* ------------------------------------------------------------------------------------- */

/*
 * Parks until a message arrives for this handler's injection, or it is disabled (both return
 * 0), or timeout_ms passes (ERRINJ_ETIMEDOUT; ERRINJ_FOREVER waits without limit). Each
 * handler keeps its own read count: a message sent before the call still counts, and one
 * message releases every handler waiting. Publishes "waiting", then "released" or "timeout".
 */
int errinj_handler_wait_for_message(errinj_handler *h, int timeout_ms);

/* Consumes one message if one is there for this handler: true if it did. Never blocks. */
bool errinj_handler_poll_for_message(errinj_handler *h);

/* The value of parameter `key` as it was when the point fired, or NULL. Valid while the handler runs. */
const char *errinj_handler_get(const errinj_handler *h, const char *key);

/* The injection's name. Valid while the handler runs. */
const char *errinj_handler_name(const errinj_handler *h);

/*
 * Copies the value of parameter `key` of the enabled injection `name` into buf (always
 * NUL-terminated when len > 0). Returns 0, ERRINJ_ENOENT (not enabled or no such key) or
 * ERRINJ_ERANGE (buf too small; it holds a truncated prefix).
 */
int errinj_parameter(const char *name, const char *key, char *buf, size_t len);

/* ------------------------------------------------------------------------------------- */
/* Control                                                                                 */
/* ------------------------------------------------------------------------------------- */

/*
 * Enables the injection `name` (1 to 255 bytes of UTF-8, no control characters) in every
 * site of that name, loaded now or later. `params` is NULL or a NULL-terminated array of
 * key, value, key, value strings (copied). Enabling a name that is enabled replaces its
 * parameters and one_shot and keeps its counters; otherwise counters start from 0.
 * A one-shot fires once in the whole process, then disables itself.
 * Returns 0, ERRINJ_EINVAL (bad name or odd params) or ERRINJ_ENOMEM.
 */
int errinj_enable(const char *name, bool one_shot, const char *const *params);

/* Disables `name` and releases every thread parked in its wait_for_message (they return 0).
 * Unknown names are not an error. Returns 0 or ERRINJ_EINVAL (bad name). */
int errinj_disable(const char *name);

/* Disables every injection, as errinj_disable() does for each. */
void errinj_disable_all(void);

/*
 * Sends a message to `name`: every handler now waiting wakes, and one that waits later still
 * sees it (each handler has its own read count). Ignored (returns 0) when not enabled, unless
 * a one-shot handler of that name is still running. Returns 0 or ERRINJ_EINVAL (bad name).
 */
int errinj_message(const char *name);

/* True while `name` is enabled (a fired one-shot is not, even while its handler runs). */
bool errinj_is_enabled(const char *name);

/* Fires since `name` was last enabled; kept after it disables (a fired one-shot reads 1). */
uint64_t errinj_enters(const char *name);

/* Threads parked now in `name`'s wait_for_message. */
unsigned errinj_waiters(const char *name);

/* Calls fn(name, arg) for each enabled injection, in name order. fn must not call enable/disable. */
void errinj_list_enabled(void (*fn)(const char *name, void *arg), void *arg);

/* One entry of the catalogue of every point compiled into the process. */
typedef struct errinj_point {
    const char *name;
    errinj_type type;
    const char *file;
    int line;
} errinj_point;

/* Calls fn for each site in every loaded module, enabled or not (sorted by name, file, line).
 * fn must not call enable/disable or load modules. */
void errinj_list_points(void (*fn)(const errinj_point *point, void *arg), void *arg);

/* ------------------------------------------------------------------------------------- */
/* Shards                                                                                  */
/* ------------------------------------------------------------------------------------- */

/* Names the calling thread's shard (default 0); events fired on this thread carry it. */
void errinj_shard_set(unsigned id);

/* The calling thread's shard. */
unsigned errinj_shard(void);

/* ------------------------------------------------------------------------------------- */
/* Events                                                                                  */
/* ------------------------------------------------------------------------------------- */

/*
 * One event: a point fired ("hit"), or a handler parked ("waiting") and woke ("released",
 * "timeout"). Valid only during the callback.
 */
typedef struct errinj_event {
    uint64_t seq;                   /* process-wide, from 1, strictly increasing in publish order */
    const char *injection;          /* the injection's name */
    const char *type;               /* "sleep", "exception", "lambda", "handler", "enter" */
    const char *phase;              /* "hit", "waiting", "released", "timeout" */
    unsigned shard;                 /* errinj_shard() of the firing thread */
    long thread;                    /* OS thread id of the firing thread */
    int64_t ts_ns;                  /* CLOCK_REALTIME, nanoseconds */
    uint64_t enters;                /* this fire's count since the injection was enabled */
    const char *const *parameters;  /* NULL-terminated key, value pairs (never NULL) */
    const char *file;               /* call site, or NULL for run-time names */
    int line;                       /* call site, or 0 */
    const char *detail;             /* a JSON object saying what the fire was about, or NULL (the
                                       libc points of liberrinj-preload.so: function, fd, path, size) */
} errinj_event;

typedef void (*errinj_event_fn)(const errinj_event *ev, void *arg);
typedef struct errinj_subscription errinj_subscription;

/*
 * Calls cb(ev, arg) for every event from now on, on the thread that fired, after the event is
 * numbered and before the action. Callbacks of different threads may run concurrently and in
 * any order; a callback must not subscribe, unsubscribe or fire points.
 * Callbacks run with no lock held: a slow one delays only the thread that fired.
 * Pair with errinj_unsubscribe(). Returns 0, ERRINJ_EINVAL, or ERRINJ_ENOMEM (out of memory,
 * or 64 subscriptions already).
 */
int errinj_subscribe(errinj_event_fn cb, void *arg, errinj_subscription **sub);

/* Stops the subscription and frees it; returns only when no call of its callback is running.
 * Must not be called from a callback. NULL is ignored. */
void errinj_unsubscribe(errinj_subscription *sub);

/* ------------------------------------------------------------------------------------- */
/* Logging                                                                                 */
/* ------------------------------------------------------------------------------------- */

/*
 * Each fire logs one line in ScyllaDB's words (`Triggering sleep injection "NAME" (100ms)`,
 * `NAME: waiting for message`, `NAME: message received`) by calling fn(shard, line, arg) on
 * the firing thread. Default: stderr. errinj_set_log(NULL, NULL) silences.
 */
typedef void (*errinj_log_fn)(unsigned shard, const char *line, void *arg);
void errinj_set_log(errinj_log_fn fn, void *arg);

/* ------------------------------------------------------------------------------------- */
/* Server: REST API and SSE stream (see errinj-events(7))                                  */
/* ------------------------------------------------------------------------------------- */

typedef struct errinj_server errinj_server;

/* Options; a zero field takes its default. */
typedef struct errinj_server_opts {
    const char *listen;        /* "host:port", default "127.0.0.1:10000"; port 0 picks a free one */
    const char *token;         /* if set, every request needs "Authorization: Bearer <token>" */
    unsigned heartbeat_ms;     /* ": ping" on idle streams, default 15000, at most 86400000 */
    unsigned history;          /* events kept for replay, default 65536, at most 16777216 */
    unsigned max_subscribers;  /* concurrent SSE streams, default 1024, at most 65536 */
    bool allow_remote;         /* allow a non-loopback listen address and Host, default false */
} errinj_server_opts;

/*
 * Starts the server on its own thread. `opts` may be NULL. Pair with errinj_server_stop().
 * One server per process. Returns 0, ERRINJ_EINVAL (bad option), ERRINJ_EACCES (remote
 * address without allow_remote), ERRINJ_EADDRINUSE, ERRINJ_ENOMEM or ERRINJ_EIO.
 */
int errinj_server_start(const errinj_server_opts *opts, errinj_server **out);

/* The TCP port the server listens on (useful with port 0). */
unsigned errinj_server_port(const errinj_server *srv);

/*
 * Ends every stream, stops the server and frees it. Disables every injection so that no
 * application thread stays parked waiting for a message only the server could have sent.
 * NULL is ignored.
 */
void errinj_server_stop(errinj_server *srv);

/*
 * Reads the environment: ERRINJ_AT_STARTUP (a JSON array of {"name", "one_shot",
 * "parameters"} to enable; all or nothing), ERRINJ_TOKEN, and ERRINJ_HTTP (a listen
 * address: starts the server). Call it first thing in main(). Returns 0 or an error code;
 * the server it started, if any, is stopped at exit.
 */
int errinj_init_from_env(void);

#ifdef __cplusplus
}
#endif

#endif /* ERRINJ_H */
