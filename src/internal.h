/*
 * internal.h - what the files of the library share and nothing else reaches.
 *
 * The library has four layers: registry.c keeps one immortal entry per injection name (state,
 * counters, parameters, the sites of that name) and the catalogue of loaded sites; points.c
 * is the firing side (the out-of-line halves of the macros, handlers, logging, shards);
 * events.c numbers events and hands them to in-process subscribers and to the server's ring;
 * server.c, http.c and env.c turn all of it into the REST API and the SSE stream.
 */
#ifndef ERRINJ_INTERNAL_H
#define ERRINJ_INTERNAL_H

#include "errinj.h"
#include "readers.h"
#include "term.h"

#include <pthread.h>
#include <stdatomic.h>

#define ERRINJ__NAME_MAX 255

/* An immutable, reference-counted set of parameters: kv is key, value, ..., NULL, each key once
 * (of a key given twice, the first is kept). */
struct errinj__config {
    atomic_uint refs;
    size_t pairs;
    const char *const *kv;
};

/*
 * What one enable counts and decides with, read by fires inside a read window (readers.h) and
 * freed by the next enable after a grace period: the evaluations numbered since that enable
 * and the parsed term (NULL: always on) with its step boundaries. `gen` is the entry's enable
 * number, so a fire can tell later whether the arm it used is still the current one.
 */
struct errinj__arm {
    _Atomic uint64_t evaluations;
    struct errinj__term *term; /* owns the term's text */
    uint64_t seed;             /* the seed its draws use */
    uint64_t gen;
};

/* The evaluations an arm numbered; 0 for none (a name never enabled). */
static inline uint64_t errinj__arm_evaluations(struct errinj__arm *arm)
{
    return arm != NULL ? atomic_load(&arm->evaluations) : 0;
}

struct errinj__config *errinj__config_new(const char *const *params);
struct errinj__config *errinj__config_ref(struct errinj__config *cfg);
void errinj__config_unref(struct errinj__config *cfg);
const char *errinj__config_get(const struct errinj__config *cfg, const char *key);

/*
 * One per injection name ever enabled or compiled in; never freed, so a site's `active`
 * pointer and an event's name stay valid without reference counting. Writers hold mu; every
 * write of a site's `active` happens under mu too. A fire of a non-one-shot injection reads
 * the atomics without the lock: `cfg` is swapped atomically and the old one freed only once no
 * fire is between loading it and taking its reference (a read window, readers.h). One-shots and handler
 * waits take mu.
 */
struct errinj__entry {
    const char *name;
    size_t name_len;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* signalled on message and on disable */
    atomic_bool enabled;
    atomic_bool one_shot;
    unsigned ongoing;        /* one-shot handlers still running after the one-shot disabled itself */
    atomic_uint_fast64_t enters;
    atomic_uint waiters;
    uint64_t received;       /* messages ever received; never reset */
    atomic_uint_fast64_t msg_base; /* `received` when last enabled: handlers start reading there */
    atomic_uint_fast64_t generation; /* bumped by disable: parked handlers of older generations leave */
    _Atomic(struct errinj__config *) cfg;
    _Atomic(struct errinj__arm *) arm; /* NULL until first enabled; replaced by each enable */
    uint64_t arm_gen;                 /* enables so far; under mu */
    struct errinj_site *sites;
    atomic_uint_fast64_t enable_seq; /* 1 + the last seq published before the latest enable took effect; 0: never enabled */
    /* Coverage (coverage.c), under mu: enables since the last reset, the evaluations and enters
     * of configs and enables already replaced, and what a reset found (subtracted). */
    uint64_t cov_armed;
    uint64_t cov_evals_done, cov_enters_done;
    uint64_t cov_evals_base, cov_enters_base;
};

/* Lists a site that ran before it was catalogued (saying so when a C site's catalogue entry was
 * lost) and returns its entry if enabled, else NULL. */
struct errinj__entry *errinj__site_adopt(struct errinj_site *site);
/* True for the marks a site's `active` holds until it is listed. */
/* What a site's `active` holds until it is listed: 1 (C records emitted by asm) or
 * &errinj__unlisted[0] (other C records), &errinj__unlisted[1] (C++ records). Inline: every
 * fire of an enabled point asks. */
static inline bool errinj__site_unlisted(const void *active)
{
    return active == (const void *)1 || active == (const void *)&errinj__unlisted[0] ||
           active == (const void *)&errinj__unlisted[1];
}
/* Looks a name up without locking; NULL if never seen. */
struct errinj__entry *errinj__entry_find(const char *name);
/* Number of enabled injections: the fast "nothing enabled" test of run-time-name points. */
extern atomic_int errinj__enabled_count;
/* Disables e with e->mu held (one-shot self-disable); release_waiters also wakes parked handlers. */
void errinj__entry_disable_locked(struct errinj__entry *e, bool release_waiters);
/* Checks the rules for a name: 1 to 255 bytes of UTF-8 without control characters. */
bool errinj__name_valid(const char *name, size_t len);
/* Same as errinj_enable but with a ready config (consumed). */
int errinj__enable_config(const char *name, bool one_shot, struct errinj__config *cfg);
/*
 * Enables with a ready config (consumed) and a term text (NULL: none) and seed: what every
 * interface calls. A bad term, or one_shot with a term, is ERRINJ_EINVAL with the reason in
 * why (NUL-terminated, at most why_len bytes) and changes nothing.
 */
int errinj__enable_term(const char *name, bool one_shot, const char *term, bool has_seed, uint64_t seed,
                        struct errinj__config *cfg, char *why, size_t why_len);
/* The last seq published before the calling thread's latest successful enable took effect:
 * every event of that enable has a higher seq. */
uint64_t errinj__last_enable_seq(void);
/* The same for the latest enable of name by any thread; false when name was never enabled. */
bool errinj__enable_seq(const char *name, uint64_t *seq);
/* Calls fn on every entry with the registry locked (fn must not call back into it; an entry's
 * own mu may be taken). */
void errinj__entries_each(void (*fn)(struct errinj__entry *e, void *arg), void *arg);
/* True when a loaded module has a compiled-in point named name. */
bool errinj__has_site(const char *name);
/* Snapshot of an entry for the REST API. */
struct errinj__entry_state {
    bool enabled;
    bool one_shot;
    uint64_t evaluations;
    uint64_t seed;                          /* when enabled: the seed of its draws */
    char term[ERRINJ__TERM_TEXT_MAX + 1];   /* when enabled: its term, "" for none */
    struct errinj__config *cfg; /* a reference: unref it; NULL when not enabled */
};
void errinj__entry_state(const char *name, struct errinj__entry_state *out);
/* Highest shard id + 1 seen by errinj_shard_set (at least 1). */
unsigned errinj__shards_seen(void);

/* Events. */
enum errinj__phase { ERRINJ__PHASE_HIT, ERRINJ__PHASE_WAITING, ERRINJ__PHASE_RELEASED, ERRINJ__PHASE_TIMEOUT };
const char *errinj__phase_name(enum errinj__phase phase);

/* An event as it travels from the firing thread to the server: plain fields, a config ref. */
struct errinj__record {
    uint64_t seq;
    uint64_t lost_before;   /* events dropped just before this one because the ring was full */
    struct errinj__entry *entry;
    struct errinj__config *cfg;
    const char *file;
    int line;
    uint8_t type;
    uint8_t phase;
    unsigned shard;
    long thread;
    int64_t ts_ns;
    uint64_t enters;
    const char *detail;     /* JSON object text or NULL; in the ring, a copy the ring owns */
    uint64_t eval;
    uint8_t action; /* enum errinj__action */
};

/*
 * The exception fire of a site whose events carry `detail` (a JSON object's text, copied): what
 * the libc wrappers of liberrinj-preload.so call after matching their parameters. Returns as
 * errinj__fire_exception() does.
 */
ERRINJ__COLD int errinj__fire_exception_detail(struct errinj_site *site, int err, const char *detail);
/* A reference to the parameters of the injection enabled at site (unref it), or NULL when it is
 * not enabled. Lock-free. */
struct errinj__config *errinj__site_config(struct errinj_site *site);

/* Numbers the record, fills shard/thread/time, passes it to the ring and to subscribers. */
void errinj__publish(struct errinj__record *rec);
/* Returns a detail copy the ring made (a record it handed out) to its pool, or frees it. NULL ignored. */
void errinj__detail_free(const char *detail);
/* The last seq handed out. */
uint64_t errinj__seq_last(void);
/* A random id of this process's seq space (new after fork): lets clients tell a restart. */
const char *errinj__instance_id(void);
/*
 * Waits until every connected SSE stream has been handed the event `seq`, at most timeout_ms
 * (for abort: the hit must reach the streams before the process dies). Returns at once when
 * no server runs. The server registers how to wait with errinj__set_delivery_wait(); fn
 * returns when delivered or at deadline_ns (CLOCK_MONOTONIC).
 */
void errinj__wait_delivered(uint64_t seq, int timeout_ms);
void errinj__set_delivery_wait(void (*fn)(void *arg, uint64_t seq, int64_t deadline_ns), void *arg);
/* Fills ev from rec (ev points into rec and its config). */
void errinj__record_to_event(const struct errinj__record *rec, errinj_event *ev);

/*
 * The ring between firing threads and the server's single consumer. Producers push under one
 * short mutex (the one that also orders seq), never block otherwise, and wake the consumer only
 * when it sleeps. When full, events are counted as lost and reported with the next record.
 */
struct errinj__ring;
/* Attaches the one ring; *seq_at_attach gets the last seq published before it. NULL if one is attached. */
struct errinj__ring *errinj__ring_attach(size_t capacity, void (*wake)(void *), void *wake_arg, uint64_t *seq_at_attach);
/* Calls fn for each pending record in seq order; fn must unref rec->cfg. Returns how many. */
size_t errinj__ring_drain(struct errinj__ring *ring, void (*fn)(struct errinj__record *rec, void *arg), void *arg);
size_t errinj__ring_drain_max(struct errinj__ring *ring, size_t max,
                              void (*fn)(struct errinj__record *rec, void *arg), void *arg);
/* Before the consumer sleeps: true if it may sleep (nothing pending); false means drain again. */
bool errinj__ring_prepare_sleep(struct errinj__ring *ring);
void errinj__ring_detach(struct errinj__ring *ring);
uint64_t errinj__ring_dropped(const struct errinj__ring *ring);
/* With the ring drained: takes the count of losses not yet reported with a record (the newest
 * seqs, ending at *last_lost). Takes the publishers' mutex: call only when dropped() changed. */
uint64_t errinj__ring_take_lost_tail(struct errinj__ring *ring, uint64_t *last_lost);

/*
 * fork(): the process-wide locks are taken before fork and released on both sides, so the child
 * never inherits a lock held by a thread that does not exist there. In the child the server's
 * ring is detached and the server is orphaned (errinj_server_stop() in the child only forgets
 * it), so the child can fire points and even start its own server.
 */
void errinj__registry_lock_for_fork(void);
void errinj__registry_unlock_after_fork(void);
/* In the child, with the registry locked: every entry's lock, condition and waiter counts anew. */
void errinj__registry_reset_in_child(void);
void errinj__log_reset_in_child(void);
void errinj__server_forget_in_child(void);

/* Calls the program's disconnect handler with ip; false when none is registered (disconnect.c). */
bool errinj__disconnect(const char *ip);

/* Logging from the library (not per fire): for errors the server meets. */
void errinj__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic and real-time clocks in nanoseconds. */
int64_t errinj__now_mono_ns(void);
int64_t errinj__now_real_ns(void);

/* JSON (json.c). */
#include <jansson.h>
/*
 * Builds a config from a request body or an ERRINJ_AT_STARTUP "parameters" value: NULL, JSON
 * null or an object; string values are kept, others stringified as ScyllaDB does (compact
 * JSON). Returns 0 and *out, or ERRINJ_EINVAL with a static reason in *why.
 */
int errinj__config_from_json(const json_t *params, struct errinj__config **out, const char **why);
/* A JSON string for bytes that may not be UTF-8: invalid sequences become U+FFFD. */
json_t *errinj__json_string_lossy(const char *s);
/* The longest `data:` line of an event, its line feed included. */
#define ERRINJ__EVENT_LINE_MAX (64 * 1024)
/* The SSE frame "id: N\ndata: {...}\n\n" of a record, malloc'd; NULL when out of memory. Its data
 * line is at most ERRINJ__EVENT_LINE_MAX bytes: parameters that would make it longer are cut (a
 * value shortened, the pairs after it left out) and the JSON then has "truncated":true. */
char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len);

/* HTTP (http.c): the REST API as a pure function of a request, so it can be fuzzed without a socket. */
#define ERRINJ__BODY_MAX (1024 * 1024)
#define ERRINJ__QUERY_MAX 64

struct errinj__query_arg {
    const char *key;   /* raw, percent-encoded */
    const char *value; /* raw, percent-encoded; NULL for a key without '=' */
};

struct errinj__http_request {
    const char *method;
    const char *path; /* raw, percent-encoded, without the query */
    const struct errinj__query_arg *query;
    size_t query_count; /* more than ERRINJ__QUERY_MAX is refused */
    const char *(*header)(void *ctx, const char *name); /* case-insensitive lookup, NULL if absent */
    void *header_ctx;
    const char *body;
    size_t body_len;
    bool body_too_large;
};

/* What an SSE subscriber asked for. */
struct errinj__filter {
    char **injections; /* NULL-terminated, or NULL for any */
    unsigned types;    /* bit per errinj_type; 0 = any */
    unsigned phases;   /* bit per phase */
    long long shard;   /* -1 = any */
    long long since;   /* replay after this seq; -1 = live only */
};
void errinj__filter_free(struct errinj__filter *f);

/* What a server-side wait (GET .../injection/{name}/wait) asked for. */
#define ERRINJ__WAIT_COUNT_MAX 10000
#define ERRINJ__WAIT_TIMEOUT_MAX_MS (3600ll * 1000)
struct errinj__wait_query {
    char *name;          /* decoded, malloc'd */
    unsigned phases;     /* bit per phase */
    uint64_t count;      /* events wanted, 1 to ERRINJ__WAIT_COUNT_MAX */
    uint64_t after;      /* only events with a higher seq */
    int64_t timeout_ms;  /* 0 to ERRINJ__WAIT_TIMEOUT_MAX_MS */
};

struct errinj__http_reply {
    int status;
    char *body; /* malloc'd or NULL */
    size_t body_len;
    const char *content_type;
    const char *allow;           /* for 405: the Allow header */
    const char *cache_control;   /* NULL: "no-store" */
    const char *etag;            /* the dashboard's files: ETag and Content-Security-Policy */
    const char *csp;
    bool auth_challenge;         /* a 401: WWW-Authenticate: Bearer */
    bool close_connection;       /* Connection: close (the request's framing cannot be trusted) */
    bool stream;                 /* start an SSE stream with `filter` */
    bool websocket;              /* upgrade to a WebSocket session (ws.h) with `filter` */
    struct errinj__filter filter; /* owned by the reply until taken */
    bool has_seq;                /* send Errinj-Seq: seq (an enable's answer) */
    uint64_t seq;
    char *warning;               /* Errinj-Warning, malloc'd, or NULL */
    bool wait;                   /* start a server-side wait with `wait_query` */
    struct errinj__wait_query wait_query; /* owned by the reply until taken */
};

/* What the router needs to know of the server. */
struct errinj__http_config {
    const char *token;
    bool allow_remote;
    void (*status)(void *ctx, unsigned *subscribers, uint64_t *dropped); /* may be NULL */
    void *status_ctx;
};

void errinj__http_handle(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                         struct errinj__http_reply *reply);
void errinj__http_reply_free(struct errinj__http_reply *reply);
/* Routes a request that needs no cross-origin or token check (a command of an authorized
 * WebSocket session): the same validation and effects as over HTTP. */
void errinj__http_route_trusted(const struct errinj__http_request *req, struct errinj__http_reply *reply);
/* Sets reply to a JSON error {"message","code"}. */
void errinj__http_error(struct errinj__http_reply *reply, int status, const char *message);

#endif /* ERRINJ_INTERNAL_H */
