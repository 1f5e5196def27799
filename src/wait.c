/*
 * wait.c - server-side waits: the first N events of one injection and phase after a seq.
 *
 * A waiter is a cursor into the history plus the events it has matched so far. The server
 * thread hands every waiter its new events after each batch it stores (advance), so a waiter
 * costs no thread and no copy of events it does not want. Its answer is settled by the first
 * of: N matches (200, a JSON array of the events), its deadline (408), or a seq in its range
 * that the history no longer has (410: evicted, lost when the ring was full, or published
 * before the server started), because a wait that skipped an event could wrongly report that
 * an injection was never reached. Matching only reads frames, so waits consume nothing.
 */
#include "wait.h"

#include "names.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct errinj__waiter {
    struct errinj__wait_query q;
    void *conn;
    int64_t deadline_ns;
    int64_t timeout_ms;
    uint64_t cursor;  /* the last seq scanned */
    uint64_t found;
    char *body;       /* "[ev,ev" so far */
    size_t len, cap;
    int status;       /* 0 while open */
    char *message;    /* the error's message when status is not 200 */
    bool suspended;
    bool gone;        /* the client closed its socket */
    struct errinj__waiter *prev, *next;
};

struct errinj__waits {
    struct errinj__waiter *head;
    unsigned count;
    unsigned max;
    void (*resume)(void *conn);
};

struct errinj__waits *errinj__waits_new(unsigned max, void (*resume)(void *conn))
{
    struct errinj__waits *ws = calloc(1, sizeof(*ws));
    if (ws != NULL) {
        ws->max = max;
        ws->resume = resume;
    }
    return ws;
}

static void waiter_free(struct errinj__waiter *w)
{
    free(w->q.name);
    free(w->body);
    free(w->message);
    free(w);
}

static void unlink_waiter(struct errinj__waits *ws, struct errinj__waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        ws->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    ws->count--;
}

void errinj__waits_free(struct errinj__waits *ws)
{
    if (ws == NULL)
        return;
    while (ws->head != NULL) {
        struct errinj__waiter *w = ws->head;
        unlink_waiter(ws, w);
        waiter_free(w);
    }
    free(ws);
}

unsigned errinj__waits_count(const struct errinj__waits *ws)
{
    return ws->count;
}

static bool append(struct errinj__waiter *w, const char *s, size_t n)
{
    if (w->len + n + 2 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (w->len + n + 2 > cap)
            cap *= 2;
        char *grown = realloc(w->body, cap);
        if (grown == NULL)
            return false;
        w->body = grown;
        w->cap = cap;
    }
    memcpy(w->body + w->len, s, n);
    w->len += n;
    return true;
}

static void describe_phases(unsigned phases, char *out, size_t len)
{
    if (phases == (1u << ERRINJ__PHASE_COUNT) - 1) {
        snprintf(out, len, "all");
        return;
    }
    out[0] = '\0';
    for (unsigned p = 0; p < ERRINJ__PHASE_COUNT; p++) {
        if (phases & (1u << p)) {
            size_t used = strlen(out);
            snprintf(out + used, len - used, "%s%s", used ? "," : "", errinj__phase_name((enum errinj__phase)p));
        }
    }
}

/* Settles the waiter; status is 200 or an error with its message. */
static void finish(struct errinj__waits *ws, struct errinj__waiter *w, int status, const char *message)
{
    w->status = status;
    if (message != NULL)
        w->message = strdup(message);
    if (w->suspended) {
        w->suspended = false;
        ws->resume(w->conn);
    }
}

static void finish_gone(struct errinj__waits *ws, struct errinj__waiter *w, uint64_t missing)
{
    char message[160];
    snprintf(message, sizeof(message),
             "events after seq %llu are no longer kept (%llu missing from the server's history)",
             (unsigned long long)w->q.after, (unsigned long long)missing);
    finish(ws, w, 410, message);
}

static void scan(struct errinj__waits *ws, struct errinj__waiter *w, const struct errinj__history_view *h)
{
    if (w->cursor >= h->newest)
        return;
    uint64_t next = w->cursor + 1;
    if (next < h->oldest) {
        finish_gone(ws, w, h->oldest - next);
        return;
    }
    for (; next <= h->newest; next++) {
        const struct frame *f = errinj__history_at(h, next);
        if (f->text == NULL) {
            finish_gone(ws, w, 1);
            return;
        }
        w->cursor = next;
        /* By name: a run-time name's entry may be reclaimed and a new one made for it, and the
         * history keeps events of both. */
        if (!(w->q.phases & (1u << f->phase)) || strcmp(errinj__entry_name(f->entry), w->q.name) != 0)
            continue;
        size_t len;
        const char *json = errinj__frame_json(f, &len);
        if (!append(w, w->found == 0 ? "[" : ",", 1) || !append(w, json, len)) {
            finish(ws, w, 500, "out of memory");
            return;
        }
        if (++w->found == w->q.count) {
            append(w, "]", 1); /* room for it was reserved */
            finish(ws, w, 200, NULL);
            return;
        }
    }
}

static void check_deadline(struct errinj__waits *ws, struct errinj__waiter *w, int64_t now_ns)
{
    if (w->status != 0 || now_ns < w->deadline_ns)
        return;
    char phases[48], message[400];
    describe_phases(w->q.phases, phases, sizeof(phases));
    snprintf(message, sizeof(message),
             "timed out after %.3g s waiting for %llu event(s) of %s (phase %s) after seq %llu: %llu arrived",
             (double)w->timeout_ms / 1000.0, (unsigned long long)w->q.count, w->q.name, phases,
             (unsigned long long)w->q.after, (unsigned long long)w->found);
    finish(ws, w, 408, message);
}

struct errinj__waiter *errinj__wait_start(struct errinj__waits *ws, const struct errinj__history_view *h,
                                          struct errinj__wait_query *q, void *conn, int64_t now_ns,
                                          struct errinj__http_reply *reply)
{
    if (ws->count >= ws->max) {
        char message[96];
        snprintf(message, sizeof(message), "too many waits (at most %u at a time)", ws->max);
        errinj__http_error(reply, 503, message);
        return NULL;
    }
    struct errinj__waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        errinj__http_error(reply, 500, "out of memory");
        return NULL;
    }
    w->q = *q;
    q->name = NULL;
    w->conn = conn;
    w->timeout_ms = w->q.timeout_ms;
    w->deadline_ns = now_ns + w->q.timeout_ms * 1000000;
    w->cursor = w->q.after;
    w->next = ws->head;
    if (ws->head != NULL)
        ws->head->prev = w;
    ws->head = w;
    ws->count++;
    scan(ws, w, h);
    check_deadline(ws, w, now_ns);
    return w;
}

bool errinj__waiter_done(const struct errinj__waiter *w)
{
    return w->status != 0;
}

void errinj__waiter_suspended(struct errinj__waiter *w)
{
    w->suspended = true;
}

void errinj__waiter_answer(struct errinj__waits *ws, struct errinj__waiter *w, struct errinj__http_reply *reply)
{
    *reply = (struct errinj__http_reply){0};
    if (w->status == 200) {
        reply->status = 200;
        reply->content_type = "application/json";
        reply->body = w->body;
        reply->body_len = w->len;
        w->body = NULL;
    } else {
        errinj__http_error(reply, w->status, w->message != NULL ? w->message : "wait failed");
    }
    unlink_waiter(ws, w);
    waiter_free(w);
}

void errinj__waiter_hangup(struct errinj__waits *ws, struct errinj__waiter *w)
{
    w->gone = true;
    if (w->status == 0)
        finish(ws, w, 499, "the client closed the connection");
}

bool errinj__waiter_gone(const struct errinj__waiter *w)
{
    return w->gone;
}

void errinj__waiter_abandon(struct errinj__waits *ws, struct errinj__waiter *w)
{
    unlink_waiter(ws, w);
    waiter_free(w);
}

void errinj__waits_advance(struct errinj__waits *ws, const struct errinj__history_view *h, int64_t now_ns)
{
    for (struct errinj__waiter *w = ws->head; w != NULL; w = w->next) {
        if (w->status != 0)
            continue;
        scan(ws, w, h);
        check_deadline(ws, w, now_ns);
    }
}

int64_t errinj__waits_next_deadline(const struct errinj__waits *ws)
{
    int64_t next = INT64_MAX;
    for (const struct errinj__waiter *w = ws->head; w != NULL; w = w->next)
        if (w->status == 0 && w->deadline_ns < next)
            next = w->deadline_ns;
    return next;
}

void errinj__waits_stop(struct errinj__waits *ws)
{
    for (struct errinj__waiter *w = ws->head; w != NULL; w = w->next)
        if (w->status == 0)
            finish(ws, w, 503, "server is stopping");
}
