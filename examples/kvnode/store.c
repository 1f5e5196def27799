/*
 * store.c - the shards: one thread per shard owns the keys that hash to it, as in ScyllaDB's
 * shard-per-core design, so a key's table is touched by one thread only and needs no lock.
 *
 * A request is handed to its key's shard through the shard's queue (a mutex and a condition
 * variable) and the caller sleeps until the shard has run it and written the reply, so every
 * reply comes after the shard ran its request, and a connection's replies keep its order.
 *
 * The injection points sit on the real paths:
 *   kv_put_before_apply  handler: parks a PUT on its shard thread before the write is applied
 *                        (parameters "key": park only this key; "timeout_ms": give up after it,
 *                        and the PUT answers "ERR timed out waiting for message"). It fires for
 *                        every PUT and lets other keys pass at once, so with "key" use it not
 *                        one-shot: a one-shot is spent by the first PUT, whatever its key.
 *   kv_put_fail          exception: the PUT answers "ERR injected" and nothing is written.
 *   kv_get_delay         sleep: a GET sleeps 100 ms (parameter "duration_ms") before it reads.
 *   kv_flush             lambda: each shard flushes every 50 ms when it has unflushed writes;
 *                        the lambda drops that flush (logged as a warning).
 *
 * A parked PUT parks its shard thread, not just the request: the shard's other requests,
 * other keys included, wait behind it until the message (or disable) comes. That is on
 * purpose and what ScyllaDB does too (the parked fiber holds its place in the shard's work),
 * and it lets a test see a stalled shard. Requests to other shards go on as usual.
 */
#define _GNU_SOURCE
#include "kvnode.h"

#include <errinj.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLUSH_PERIOD_MS 50
#define MAX_SHARDS 1024

/* ---- one shard's table: chained hashing, grown when it averages one key per bucket ---------- */

struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    char *key;
    char *value;
};

struct kv_table {
    struct kv_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

static uint64_t hash_key(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The low bits of the hash choose the shard, so the bucket uses the high ones. */
static size_t bucket_of(const struct kv_table *t, uint64_t hash)
{
    return (size_t)(hash >> 32 ^ hash >> 11) & (t->nbuckets - 1);
}

static int table_init(struct kv_table *t)
{
    t->nbuckets = 64;
    t->count = 0;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets == NULL ? -ENOMEM : 0;
}

static void table_free(struct kv_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct kv_entry *e = t->buckets[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            free(e->key);
            free(e->value);
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
}

static struct kv_entry **table_find(struct kv_table *t, const char *key, uint64_t hash)
{
    struct kv_entry **link = &t->buckets[bucket_of(t, hash)];
    while (*link != NULL && ((*link)->hash != hash || strcmp((*link)->key, key) != 0))
        link = &(*link)->next;
    return link;
}

/* Doubles the bucket array. Failing to grow is not an error: chains just get longer. */
static void table_grow(struct kv_table *t)
{
    size_t old_n = t->nbuckets;
    struct kv_entry **old = t->buckets;
    struct kv_entry **fresh = calloc(old_n * 2, sizeof(*fresh));
    if (fresh == NULL)
        return;
    t->buckets = fresh;
    t->nbuckets = old_n * 2;
    for (size_t i = 0; i < old_n; i++) {
        struct kv_entry *e = old[i];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            size_t b = bucket_of(t, e->hash);
            e->next = t->buckets[b];
            t->buckets[b] = e;
            e = next;
        }
    }
    free(old);
}

/* Sets key to value. Returns 0 or -ENOMEM (and then the table is unchanged). */
static int table_put(struct kv_table *t, const char *key, uint64_t hash, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -ENOMEM;
    struct kv_entry **link = table_find(t, key, hash);
    if (*link != NULL) {
        free((*link)->value);
        (*link)->value = copy;
        return 0;
    }
    struct kv_entry *e = malloc(sizeof(*e));
    char *key_copy = strdup(key);
    if (e == NULL || key_copy == NULL) {
        free(e);
        free(key_copy);
        free(copy);
        return -ENOMEM;
    }
    *e = (struct kv_entry){.next = NULL, .hash = hash, .key = key_copy, .value = copy};
    *link = e;
    if (++t->count > t->nbuckets)
        table_grow(t);
    return 0;
}

static const char *table_get(struct kv_table *t, const char *key, uint64_t hash)
{
    struct kv_entry *e = *table_find(t, key, hash);
    return e == NULL ? NULL : e->value;
}

static bool table_del(struct kv_table *t, const char *key, uint64_t hash)
{
    struct kv_entry **link = table_find(t, key, hash);
    struct kv_entry *e = *link;
    if (e == NULL)
        return false;
    *link = e->next;
    free(e->key);
    free(e->value);
    free(e);
    t->count--;
    return true;
}

/* ---- shards and their queues ------------------------------------------------------------- */

/* A request on its way through a shard's queue; lives on the caller's stack. */
struct queued {
    struct kv_request *req;
    uint64_t hash;
    struct queued *next;
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
};

struct shard {
    unsigned id;
    pthread_t thread;
    bool started;

    /* The queue; everything below `table` is the shard thread's alone. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct queued *head, *tail;
    bool stopping;

    struct kv_table table;
    uint64_t unflushed_writes;
};

struct kv_store {
    unsigned nshards;
    struct shard *shards;
};

static void reply(struct kv_request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct kv_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->reply, KV_REPLY_MAX, fmt, ap);
    va_end(ap);
}

/* kv_put_before_apply's handler. It fires for every PUT while enabled (each fire is counted and
 * published); the "key" parameter then picks the one write to park, so a test can stall one
 * key without stalling every write that happens to come first. */
static int park_put(errinj_handler *h, void *arg)
{
    const struct kv_request *req = arg;
    const char *only_key = errinj_handler_get(h, "key");
    if (only_key != NULL && strcmp(only_key, req->key) != 0)
        return 0;

    int timeout_ms = ERRINJ_FOREVER;
    const char *timeout = errinj_handler_get(h, "timeout_ms");
    if (timeout != NULL) {
        char *end;
        errno = 0;
        long ms = strtol(timeout, &end, 10);
        if (errno == 0 && end != timeout && *end == '\0' && ms >= 0 && ms <= INT32_MAX)
            timeout_ms = (int)ms;
        else
            KV_LOG(KV_WARN, "kv_put_before_apply: ignoring timeout_ms=\"%s\" (not a number of ms)", timeout);
    }
    return errinj_handler_wait_for_message(h, timeout_ms);
}

static void run_put(struct shard *s, struct kv_request *req, uint64_t hash)
{
    int rc = ERRINJ_HANDLER("kv_put_before_apply", park_put, req);
    if (rc != 0) {
        KV_LOG(KV_WARN, "PUT %s not applied: %s", req->key, errinj_strerror(rc));
        reply(req, "ERR %s\n", errinj_strerror(rc));
        return;
    }
    if (ERRINJ_EXCEPTION("kv_put_fail", ERRINJ_EINJECTED) != 0) {
        KV_LOG(KV_WARN, "PUT %s failed: injected error", req->key);
        reply(req, "ERR injected\n");
        return;
    }
    if (table_put(&s->table, req->key, hash, req->value) != 0) {
        KV_LOG(KV_ERROR, "PUT %s failed: out of memory", req->key);
        reply(req, "ERR out of memory\n");
        return;
    }
    s->unflushed_writes++;
    KV_LOG(KV_INFO, "PUT %s applied", req->key);
    reply(req, "OK\n");
}

static void run_get(struct shard *s, struct kv_request *req, uint64_t hash)
{
    ERRINJ_SLEEP("kv_get_delay", 100);
    const char *value = table_get(&s->table, req->key, hash);
    if (value == NULL)
        reply(req, "NOTFOUND\n");
    else
        reply(req, "VALUE %s\n", value);
}

static void run_del(struct shard *s, struct kv_request *req, uint64_t hash)
{
    if (table_del(&s->table, req->key, hash)) {
        s->unflushed_writes++;
        KV_LOG(KV_INFO, "DEL %s applied", req->key);
    }
    reply(req, "OK\n");
}

struct flush_ctx {
    bool dropped;
};

/* kv_flush's lambda: the flush that was about to happen is dropped. */
static void drop_flush(void *arg)
{
    struct flush_ctx *ctx = arg;
    ctx->dropped = true;
}

/* The periodic flush. A real node would write its memtable out; kvnode only counts what it
 * would write. It runs only when something changed, so kv_flush fires once per batch of
 * writes rather than 20 times a second on every idle shard. */
static void flush(struct shard *s)
{
    if (s->unflushed_writes == 0)
        return;
    struct flush_ctx ctx = {.dropped = false};
    ERRINJ_LAMBDA("kv_flush", drop_flush, &ctx);
    if (ctx.dropped)
        KV_LOG(KV_WARN, "flush dropped by injection: %llu writes not flushed",
               (unsigned long long)s->unflushed_writes);
    else
        KV_LOG(KV_INFO, "flushed %zu keys after %llu writes", s->table.count,
               (unsigned long long)s->unflushed_writes);
    s->unflushed_writes = 0;
}

static void run(struct shard *s, struct queued *q)
{
    switch (q->req->op) {
    case KV_PUT:
        run_put(s, q->req, q->hash);
        break;
    case KV_GET:
        run_get(s, q->req, q->hash);
        break;
    case KV_DEL:
        run_del(s, q->req, q->hash);
        break;
    }
    pthread_mutex_lock(&q->lock);
    q->done = true;
    pthread_cond_signal(&q->done_cond);
    pthread_mutex_unlock(&q->lock);
}

static struct timespec mono_after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static bool reached(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void *shard_main(void *arg)
{
    struct shard *s = arg;
    errinj_shard_set(s->id);
    KV_LOG(KV_INFO, "shard started");

    struct timespec next_flush = mono_after_ms(FLUSH_PERIOD_MS);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->head == NULL && !s->stopping && !reached(&next_flush))
            pthread_cond_timedwait(&s->wake, &s->lock, &next_flush);
        if (s->head != NULL) {
            struct queued *q = s->head;
            s->head = q->next;
            if (s->head == NULL)
                s->tail = NULL;
            /* Run without the queue lock, so callers can keep queueing while a request
             * sleeps or parks in an injection. */
            pthread_mutex_unlock(&s->lock);
            run(s, q);
            pthread_mutex_lock(&s->lock);
        } else if (s->stopping) {
            break;
        }
        if (reached(&next_flush)) {
            pthread_mutex_unlock(&s->lock);
            flush(s);
            next_flush = mono_after_ms(FLUSH_PERIOD_MS);
            pthread_mutex_lock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->lock);

    flush(s);
    KV_LOG(KV_INFO, "shard stopped (%zu keys)", s->table.count);
    return NULL;
}

unsigned kv_store_shard_of(const struct kv_store *store, const char *key)
{
    return (unsigned)(hash_key(key) % store->nshards);
}

void kv_store_execute(struct kv_store *store, struct kv_request *req)
{
    struct queued q = {.req = req, .hash = hash_key(req->key), .next = NULL, .done = false};
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.done_cond, NULL);

    struct shard *s = &store->shards[q.hash % store->nshards];
    pthread_mutex_lock(&s->lock);
    if (s->tail != NULL)
        s->tail->next = &q;
    else
        s->head = &q;
    s->tail = &q;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);

    pthread_mutex_lock(&q.lock);
    while (!q.done)
        pthread_cond_wait(&q.done_cond, &q.lock);
    pthread_mutex_unlock(&q.lock);

    pthread_cond_destroy(&q.done_cond);
    pthread_mutex_destroy(&q.lock);
}

void kv_store_stop(struct kv_store *store)
{
    if (store == NULL)
        return;
    for (unsigned i = 0; i < store->nshards; i++) {
        struct shard *s = &store->shards[i];
        if (!s->started)
            continue;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
    }
    for (unsigned i = 0; i < store->nshards; i++) {
        struct shard *s = &store->shards[i];
        if (s->started)
            pthread_join(s->thread, NULL);
        table_free(&s->table);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
    }
    free(store->shards);
    free(store);
}

int kv_store_start(unsigned nshards, struct kv_store **out)
{
    if (nshards == 0 || nshards > MAX_SHARDS)
        return -EINVAL;
    struct kv_store *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return -ENOMEM;
    store->shards = calloc(nshards, sizeof(*store->shards));
    if (store->shards == NULL) {
        free(store);
        return -ENOMEM;
    }
    store->nshards = nshards;

    /* Shards wait for work with a deadline (the next flush) on the monotonic clock, so a
     * change of the wall clock neither stalls nor hurries the flushes. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = 0;
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &store->shards[i];
        s->id = i;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, &attr);
        if (rc == 0)
            rc = table_init(&s->table);
        if (rc == 0) {
            rc = -pthread_create(&s->thread, NULL, shard_main, s);
            s->started = rc == 0;
        }
    }
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        kv_store_stop(store);
        return rc;
    }
    *out = store;
    return 0;
}
