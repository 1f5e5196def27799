/*
 * helpers.h - what the unit tests share besides tests/lib: an event recorder, and the time they
 * give a condition another thread settles (WAIT_UNTIL, from clock.h: tests never sleep to
 * synchronise).
 */
#ifndef ERRINJ_TEST_HELPERS_H
#define ERRINJ_TEST_HELPERS_H

#include <errinj.h>

#include "clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a unit test waits for a condition another thread settles. */
#define WAIT_S 10.0

/* Records events: name, phase, seq, shard, file, line and parameters. */
#define RECORDER_MAX 4096
struct recorded {
    char injection[64];
    char type[16];
    char phase[16];
    char action[16];
    char file[128];
    char params[256];
    int line;
    uint64_t seq, enters, eval;
    unsigned shard;
    long thread;
    int64_t ts_ns;
};

struct recorder {
    pthread_mutex_t mu;
    size_t count;
    struct recorded ev[RECORDER_MAX];
};

static inline void recorder_cb(const errinj_event *ev, void *arg)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->count < RECORDER_MAX) {
        struct recorded *e = &r->ev[r->count++];
        memset(e, 0, sizeof(*e));
        strncpy(e->injection, ev->injection, sizeof(e->injection) - 1);
        strncpy(e->type, ev->type, sizeof(e->type) - 1);
        strncpy(e->phase, ev->phase, sizeof(e->phase) - 1);
        strncpy(e->action, ev->action, sizeof(e->action) - 1);
        e->eval = ev->eval;
        if (ev->file != NULL)
            strncpy(e->file, ev->file, sizeof(e->file) - 1);
        for (size_t i = 0; ev->parameters[i] != NULL; i += 2) {
            size_t used = strlen(e->params);
            snprintf(e->params + used, sizeof(e->params) - used, "%s%s=%s", used ? "," : "", ev->parameters[i],
                     ev->parameters[i + 1]);
        }
        e->line = ev->line;
        e->seq = ev->seq;
        e->enters = ev->enters;
        e->shard = ev->shard;
        e->thread = ev->thread;
        e->ts_ns = ev->ts_ns;
    }
    pthread_mutex_unlock(&r->mu);
}

static inline size_t recorder_count(struct recorder *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Counts recorded events of injection `name` in `phase`. */
static inline size_t recorder_count_of(struct recorder *r, const char *name, const char *phase)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->count; i++)
        n += strcmp(r->ev[i].injection, name) == 0 && strcmp(r->ev[i].phase, phase) == 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

#endif
