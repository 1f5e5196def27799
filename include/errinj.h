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
 * It stays one header on purpose (about 660 lines): a user includes one file for the points, the
 * control API, events, the server and the -DERRINJ_DISABLE stubs; C++ adds errinj.hpp.
 *
 * Conventions, once for the whole API:
 * - Functions return 0 or a negative ERRINJ_E* code; errinj_strerror() names it.
 * - Strings passed in are copied; the caller keeps ownership. Strings and events passed to
 *   callbacks are valid only during the call.
 * - Every function is thread-safe unless its comment says otherwise.
 * - The macros need GCC or Clang (statement expressions, inline asm) on ELF.
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

/* The one list of point types: XX(NAME, "name"). The enum and errinj_type_name() come from it;
 * add new types last, never reorder (events and the catalogue carry the numbers). */
#define ERRINJ_TYPE_MAP(XX)                                                                    \
    XX(SLEEP, "sleep")                                                                         \
    XX(EXCEPTION, "exception")                                                                 \
    XX(LAMBDA, "lambda")                                                                       \
    XX(HANDLER, "handler")                                                                     \
    XX(ENTER, "enter")

/* The type a call site reports in events ("sleep", "exception", ...): ERRINJ_TYPE_SLEEP (0),
 * ERRINJ_TYPE_EXCEPTION, ERRINJ_TYPE_LAMBDA, ERRINJ_TYPE_HANDLER, ERRINJ_TYPE_ENTER. */
#define ERRINJ__TYPE_ENUM(name, text) ERRINJ_TYPE_##name,
typedef enum errinj_type {
    ERRINJ_TYPE_MAP(ERRINJ__TYPE_ENUM)
} errinj_type;
#undef ERRINJ__TYPE_ENUM

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
 * catalogue, so it knows every point before it runs (see ERRINJ__SITE). `active` points
 * into errinj__unlisted until the site is listed, then is non-NULL exactly while the
 * injection of that name is enabled; only the library writes it. Not for direct use.
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
 * An injection enabled with a term (errinj_enable_with()) acts as its term says on each
 * evaluation: `on` as above; `off` as if not enabled (no enter, no event); `return(V)` skips
 * the point's own action and returns V (an enter point returns V != 0); `sleep(MS)` and
 * `pause` (parks until a message or a disable) then act as if not enabled; `abort` publishes
 * the hit, waits up to 1 s for every SSE stream to have it, and calls abort().
 *
 * `name` must be a string literal. Each fire counts an enter, publishes a "hit" event and
 * logs one line (see errinj_set_log()).
 */
#if !defined(__GNUC__) && !defined(__clang__)
#error "errinj.h needs GCC or Clang"
#endif

#ifndef ERRINJ_DISABLE

/*
 * How a site gets into the catalogue. Every site record starts with `active` holding an
 * "unlisted" mark; listing it (at load time) sets it to NULL, enabling it to its entry. So a site
 * is never silently lost: one whose listing a toolchain dropped still calls out of line the first
 * time it runs, and the library lists it then and says so on stderr.
 *
 * C: the records of a module lie in its "errinj_sites" section, which the module's constructor
 * below lists. On x86-64 an asm statement emits each record there and yields its address (one
 * lea, then the usual load and branch); the section is flagged SHF_GNU_RETAIN ("R"), so
 * --gc-sections keeps it with every linker (lld no longer keeps a section just because
 * __start_/__stop_ name it). Emitting the record from asm is what lets a point sit in a C99
 * inline function, where C forbids a modifiable static variable. Elsewhere the record is a static
 * variable placed in the section (retained where the compiler has the attribute).
 *
 * C++: static locals of templates and inline functions have vague linkage: g++ ignores a section
 * attribute on them, refuses their address as an asm constant under -fPIC, and COMDAT and
 * ordinary variables cannot share one section. The record is a static member of a class template
 * keyed by a local class (one per site and per instantiation), with a companion object whose
 * constructor lists the site when its module loads and whose destructor unlists it. Hidden
 * visibility gives each module its own record, reached without the GOT.
 */
extern char errinj__unlisted[2];
void errinj__site_list(struct errinj_site *site);
void errinj__site_unlist(struct errinj_site *site);

#if !defined(ERRINJ_NO_RETAIN) && ((defined(__clang__) && __clang_major__ >= 13) || \
                                   (!defined(__clang__) && __GNUC__ >= 11))
#define ERRINJ__RETAIN "R"
#define ERRINJ__RETAIN_ATTR __attribute__((retain))
#else /* assemblers before binutils 2.36; bfd and gold keep the section anyway */
#define ERRINJ__RETAIN ""
#define ERRINJ__RETAIN_ATTR
#endif

#define ERRINJ__LIKELY_OFF(site)                                                                 \
    __builtin_expect(__atomic_load_n(&(site)->active, __ATOMIC_ACQUIRE) != 0, 0)

/* ERRINJ__SITE(name, type) defines `errinj__site`, the record's address. `"" name ""` insists on a
 * literal. */
#if defined(__cplusplus)
#define ERRINJ__SITE(name_, type_)                                                               \
    struct errinj__tag {                                                                         \
        static constexpr const char *name() { return "" name_ ""; }                              \
        static constexpr const char *file() { return __FILE__; }                                 \
        static constexpr int line() { return __LINE__; }                                         \
        static constexpr int type() { return (type_); }                                          \
    };                                                                                           \
    (void)&::errinj__detail::site_of<errinj__tag>::listed;                                        \
    struct errinj_site *const errinj__site = &::errinj__detail::site_of<errinj__tag>::site;
#elif defined(__x86_64__) && !defined(__ILP32__)
/* The record's fields as struct errinj_site lays them out; `active` starts as 1, "unlisted". */
#define ERRINJ__SITE(name_, type_)                                                               \
    struct errinj_site *errinj__site;                                                            \
    __asm__(".pushsection errinj_sites,\"aw" ERRINJ__RETAIN "\"\n\t.balign 8\n"                   \
            "1:\n\t.quad %c1, %c2\n\t.long %c3, %c4\n\t.quad 1, 0\n\t.popsection\n\t"             \
            "lea 1b(%%rip), %0"                                                                  \
            : "=r"(errinj__site)                                                                 \
            : "i"("" name_ ""), "i"(__FILE__), "i"(__LINE__), "i"(type_));
#else
#define ERRINJ__SITE(name_, type_)                                                               \
    static struct errinj_site errinj__site_record                                                \
        __attribute__((section("errinj_sites"), used, aligned(sizeof(void *)))) ERRINJ__RETAIN_ATTR = \
            {"" name_ "", __FILE__, __LINE__, (type_), (void *)&errinj__unlisted[0], 0};         \
    struct errinj_site *const errinj__site = errinj__site_record;
#endif

#define ERRINJ_SLEEP(name, ms)                                                                 \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_SLEEP)                                                  \
        if (ERRINJ__LIKELY_OFF(errinj__site))                                                 \
            errinj__fire_sleep(errinj__site, (ms));                                           \
        (void)0;                                                                               \
    })

#define ERRINJ_EXCEPTION(name, err)                                                            \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_EXCEPTION)                                              \
        ERRINJ__LIKELY_OFF(errinj__site) ? errinj__fire_exception(errinj__site, (err)) : 0;  \
    })

#define ERRINJ_LAMBDA(name, fn, arg)                                                           \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_LAMBDA)                                                 \
        if (ERRINJ__LIKELY_OFF(errinj__site))                                                 \
            errinj__fire_lambda(errinj__site, (fn), (arg));                                   \
        (void)0;                                                                               \
    })

#define ERRINJ_HANDLER(name, fn, arg)                                                          \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_HANDLER)                                                \
        ERRINJ__LIKELY_OFF(errinj__site) ? errinj__fire_handler(errinj__site, (fn), (arg)) : 0; \
    })

#define ERRINJ_WAIT_FOR_MESSAGE(name, timeout_ms)                                              \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_HANDLER)                                                \
        ERRINJ__LIKELY_OFF(errinj__site) ? errinj__fire_wait(errinj__site, (timeout_ms)) : 0; \
    })

#define ERRINJ_ENTER(name)                                                                     \
    __extension__({                                                                            \
        ERRINJ__SITE(name, ERRINJ_TYPE_ENTER)                                                  \
        ERRINJ__LIKELY_OFF(errinj__site) ? errinj__fire_enter(errinj__site) : false;         \
    })

/*
 * Each module (the program, each shared library) that includes this header lists its
 * "errinj_sites" section when it is loaded, also by dlopen(), and unlists it on unload.
 * The symbols are hidden, so each module sees its own section. Not for direct use.
 */
extern struct errinj_site __start_errinj_sites[] __attribute__((weak, visibility("hidden")));
extern struct errinj_site __stop_errinj_sites[] __attribute__((weak, visibility("hidden")));
void errinj__module_register(struct errinj_site *start, struct errinj_site *stop);
void errinj__module_unregister(struct errinj_site *start, struct errinj_site *stop);

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

/* "Uses" x without evaluating it (any C or C++ expression: nullptr, a lambda, a static function),
 * so what feeds only points draws no unused warning. */
#define ERRINJ__IGNORE(x) if (0) { (void)(x); }
#define ERRINJ_SLEEP(name, ms) __extension__({ ERRINJ__IGNORE(ms) (void)0; })
#define ERRINJ_EXCEPTION(name, err) __extension__({ ERRINJ__IGNORE(err) 0; })
#define ERRINJ_LAMBDA(name, fn, arg) __extension__({ ERRINJ__IGNORE(fn) ERRINJ__IGNORE(arg) (void)0; })
#define ERRINJ_HANDLER(name, fn, arg) __extension__({ ERRINJ__IGNORE(fn) ERRINJ__IGNORE(arg) 0; })
#define ERRINJ_WAIT_FOR_MESSAGE(name, timeout_ms) __extension__({ ERRINJ__IGNORE(timeout_ms) 0; })
#define ERRINJ_ENTER(name) (false)

#endif /* ERRINJ_DISABLE */

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

/*
 * How errinj_enable_with() enables an injection; a zero field takes its default.
 * - one_shot: fire once in the whole process, then disable (the term "1*on"). Not with a term.
 * - term: when and how often the injection fires, in the grammar of FreeBSD fail(9) and
 *   tikv/fail-rs: steps `[PCT%][COUNT*]action[(ARG)]` joined by `->`, with the actions on (the
 *   point's own behaviour), off, return(V), sleep(MS), pause and abort; see errinj(3).
 *   NULL: always on. Parsed (and copied) at enable.
 * - seed: the seed of the term's PCT draws; 0: the process seed (ERRINJ_SEED, else random).
 *   A draw is a pure function of (seed, name, evaluation number), so one seed and term give
 *   the same decisions on every run, whichever threads make the evaluations.
 * - params: NULL, or a NULL-terminated array of key, value, ... strings (copied).
 */
typedef struct errinj_enable_opts {
    bool one_shot;
    const char *term;
    uint64_t seed;
    const char *const *params;
} errinj_enable_opts;

/*
 * Enables `name` as errinj_enable() does, with a term and a seed. `opts` may be NULL (always
 * on, no parameters). Every enable numbers its evaluations from 1 again; enters are kept when
 * the injection was already enabled. Returns 0, ERRINJ_EINVAL (bad name, odd params, a bad
 * term, or one_shot with a term; nothing changes, the reason goes to stderr as one line,
 * and errinj_term_check() gives it to the caller) or ERRINJ_ENOMEM.
 */
int errinj_enable_with(const char *name, const errinj_enable_opts *opts);

/*
 * Checks a term without enabling anything. Returns 0 or ERRINJ_EINVAL with a message naming the
 * byte offset of the problem and the accepted forms in msg (NUL-terminated when len > 0).
 */
int errinj_term_check(const char *term, char *msg, size_t len);

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

/* Evaluations since `name` was last enabled: each time a thread reached it while enabled,
 * whatever its term decided (an enter counts only those that did not act as off). Kept after
 * it disables. */
uint64_t errinj_evaluations(const char *name);

/* Threads parked now in `name`'s wait_for_message. */
unsigned errinj_waiters(const char *name);

/*
 * What an injection is enabled with, read at one moment by errinj_state_get(): the answer of
 * GET /v2/error_injection/injection/{name}. The strings stay valid until errinj_state_release(),
 * whatever enables and disables happen meanwhile.
 */
typedef struct errinj_state {
    bool enabled;                  /* false: every other field is 0 or NULL */
    bool one_shot;
    const char *term;              /* the term it was enabled with, or NULL for none (always on;
                                      a one-shot acts as the term "1*on") */
    uint64_t seed;                 /* the seed of its term's draws (the process seed if none was given) */
    const char *const *parameters; /* NULL-terminated key, value pairs (never NULL while enabled) */
    void *priv;                    /* library-private: what errinj_state_release() frees */
} errinj_state;

/*
 * Fills *state with what `name` is enabled with now (enabled false when it is not, or was never
 * seen). Pair with errinj_state_release(). Returns 0, ERRINJ_EINVAL (bad name, NULL state; *state
 * is then zeroed if given) or ERRINJ_ENOMEM.
 */
int errinj_state_get(const char *name, errinj_state *state);

/* Frees what errinj_state_get() kept for *state and zeroes it. NULL and a zeroed state are ignored. */
void errinj_state_release(errinj_state *state);

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
    const char *action;             /* what the term made this evaluation do: "on", "return", "sleep",
                                       "pause", "abort" */
    uint64_t eval;                  /* the evaluation's number since the injection was enabled, from 1 */
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
 * What `POST /v2/error_injection/disconnect/{ip}` (ScyllaDB's path) calls: the program drops its
 * connections to or from `ip` (the textual IPv4 or IPv6 address from the path, NUL-terminated,
 * valid during the call). It runs on the server thread, so it must not block for long. Without a
 * handler (the default, or after errinj_set_disconnect_handler(NULL, NULL)) the route answers 404.
 * Thread-safe: a call already running finishes with the handler it started with.
 */
typedef void (*errinj_disconnect_fn)(const char *ip, void *arg);
void errinj_set_disconnect_handler(errinj_disconnect_fn fn, void *arg);

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

#if defined(__cplusplus) && !defined(ERRINJ_DISABLE)
/* The C++ site records (see ERRINJ__SITE): one per site and instantiation, listed at load. */
namespace errinj__detail {
template <class Tag> struct __attribute__((visibility("hidden"))) site_of {
    static struct errinj_site site;
    struct lister {
        lister() { errinj__site_list(&site); }
        ~lister() { errinj__site_unlist(&site); }
    };
    static lister listed;
};
template <class Tag>
struct errinj_site site_of<Tag>::site = {Tag::name(), Tag::file(), Tag::line(), Tag::type(),
                                         static_cast<void *>(&errinj__unlisted[1]), nullptr};
template <class Tag> typename site_of<Tag>::lister site_of<Tag>::listed;
} // namespace errinj__detail
#endif

/*
 * -DERRINJ_DISABLE: every function of the API is a no-op that evaluates none of its arguments
 * and yields what the library answers when nothing is enabled, so a release build links
 * without liberrinj and its dependencies. One line per function; a test checks that every
 * function declared above has one. (Taking a function's address still needs the library.)
 */
#ifdef ERRINJ_DISABLE
#define ERRINJ__OFF(value, ...) __extension__({ if (0) { errinj__off_args(0, __VA_ARGS__); } (value); })
#define ERRINJ__OFF_SET_NULL(value, type, ptrptr)                                              \
    __extension__({ type **errinj__pp = (ptrptr); if (errinj__pp) *errinj__pp = NULL; (value); })
static inline void errinj__off_args(int unused, ...) { (void)unused; }
/* errinj_state_get() compiled out: a zeroed state (not enabled) and 0. */
static inline int errinj__state_off(errinj_state *state)
{
    if (state != 0) {
        state->enabled = false;
        state->one_shot = false;
        state->term = 0;
        state->seed = 0;
        state->parameters = 0;
        state->priv = 0;
    }
    return 0;
}

#define errinj_strerror(code) ERRINJ__OFF((const char *)"errinj compiled out", code)
#define errinj_type_name(type) ERRINJ__OFF((const char *)"unknown", type)
#define errinj_inject_sleep(name, ms) ERRINJ__OFF((void)0, name, ms)
#define errinj_inject_exception(name, err) ERRINJ__OFF(0, name, err)
#define errinj_inject_lambda(name, fn, arg) ERRINJ__OFF((void)0, name, fn, arg)
#define errinj_inject_handler(name, fn, arg) ERRINJ__OFF(0, name, fn, arg)
#define errinj_inject_wait_for_message(name, timeout_ms) ERRINJ__OFF(0, name, timeout_ms)
#define errinj_inject_enter(name) ERRINJ__OFF(false, name)
#define errinj_handler_wait_for_message(h, timeout_ms) ERRINJ__OFF(0, h, timeout_ms)
#define errinj_handler_poll_for_message(h) ERRINJ__OFF(false, h)
#define errinj_handler_get(h, key) ERRINJ__OFF((const char *)NULL, h, key)
#define errinj_handler_name(h) ERRINJ__OFF((const char *)NULL, h)
#define errinj_parameter(name, key, buf, len) ERRINJ__OFF(ERRINJ_ENOENT, name, key, buf, len)
#define errinj_enable(name, one_shot, params) ERRINJ__OFF(0, name, one_shot, params)
#define errinj_enable_with(name, opts) ERRINJ__OFF(0, name, opts)
#define errinj_term_check(term, msg, len) ERRINJ__OFF(0, term, msg, len)
#define errinj_disable(name) ERRINJ__OFF(0, name)
#define errinj_disable_all() ((void)0)
#define errinj_message(name) ERRINJ__OFF(0, name)
#define errinj_is_enabled(name) ERRINJ__OFF(false, name)
#define errinj_enters(name) ERRINJ__OFF((uint64_t)0, name)
#define errinj_evaluations(name) ERRINJ__OFF((uint64_t)0, name)
#define errinj_waiters(name) ERRINJ__OFF(0u, name)
#define errinj_state_get(name, state) ERRINJ__OFF(errinj__state_off(state), name)
#define errinj_state_release(state) ERRINJ__OFF((void)0, state)
#define errinj_list_enabled(fn, arg) ERRINJ__OFF((void)0, fn, arg)
#define errinj_list_points(fn, arg) ERRINJ__OFF((void)0, fn, arg)
#define errinj_shard_set(id) ERRINJ__OFF((void)0, id)
#define errinj_shard() (0u)
#define errinj_subscribe(cb, arg, sub) ERRINJ__OFF(ERRINJ__OFF_SET_NULL(0, errinj_subscription, sub), cb, arg)
#define errinj_unsubscribe(sub) ERRINJ__OFF((void)0, sub)
#define errinj_set_log(fn, arg) ERRINJ__OFF((void)0, fn, arg)
#define errinj_set_disconnect_handler(fn, arg) ERRINJ__OFF((void)0, fn, arg)
#define errinj_server_start(opts, out) ERRINJ__OFF(ERRINJ__OFF_SET_NULL(0, errinj_server, out), opts)
#define errinj_server_port(srv) ERRINJ__OFF(0u, srv)
#define errinj_server_stop(srv) ERRINJ__OFF((void)0, srv)
#define errinj_init_from_env() (0)
#endif /* ERRINJ_DISABLE */

#endif /* ERRINJ_H */
