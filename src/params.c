/*
 * params.c - building, sharing and reading an injection's parameters (params.h).
 *
 * A set is one allocation: the struct, the pointer array, then the strings, so that a reference
 * taken by a fire is one atomic add and the last unref one free(). Building it is linear in the
 * number of pairs, because an injection may have 100,000 of them and every event carries them.
 */
#include "params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const empty_kv[] = {NULL};
static struct errinj__config empty_config = {.refs = 1, .pairs = 0, .kv = empty_kv};

static uint64_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/*
 * Marks in keep[] the pairs to keep: the first of each key, since errinj_handler_get() finds the
 * first, and events and GET show what it finds. A hash set of the keys seen makes this linear in
 * the number of pairs (an injection may have 100,000 of them); a few pairs are compared directly.
 * False when out of memory.
 */
static bool first_of_each_key(const char *const *params, size_t pairs, bool *keep)
{
    if (pairs <= 8) {
        for (size_t i = 0; i < pairs; i++) {
            keep[i] = true;
            for (size_t k = 0; k < i && keep[i]; k++)
                keep[i] = !keep[k] || strcmp(params[2 * k], params[2 * i]) != 0;
        }
        return true;
    }
    size_t cap = 16;
    while (cap < 2 * pairs)
        cap *= 2;
    size_t *slot = malloc(cap * sizeof(*slot)); /* pair index + 1; 0: empty */
    if (slot == NULL)
        return false;
    memset(slot, 0, cap * sizeof(*slot));
    for (size_t i = 0; i < pairs; i++) {
        keep[i] = true;
        for (size_t at = key_hash(params[2 * i]) & (cap - 1);; at = (at + 1) & (cap - 1)) {
            if (slot[at] == 0) {
                slot[at] = i + 1;
                break;
            }
            if (strcmp(params[2 * (slot[at] - 1)], params[2 * i]) == 0) {
                keep[i] = false;
                break;
            }
        }
    }
    free(slot);
    return true;
}

struct errinj__config *errinj__config_new(const char *const *params)
{
    if (params == NULL || params[0] == NULL)
        return errinj__config_ref(&empty_config);
    size_t n = 0, bytes = 0;
    for (; params != NULL && params[n] != NULL; n++)
        ;
    if (n % 2 != 0)
        return NULL;
    bool *keep = malloc(n / 2 * sizeof(*keep) + 1);
    if (keep == NULL || !first_of_each_key(params, n / 2, keep)) {
        free(keep);
        return NULL;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n / 2; i++) {
        if (keep[i]) {
            bytes += strlen(params[2 * i]) + strlen(params[2 * i + 1]) + 2;
            kept++;
        }
    }
    /* One block: the struct, the pointer array, then the strings. */
    size_t head = sizeof(struct errinj__config) + (2 * kept + 1) * sizeof(char *);
    char *block = malloc(head + bytes);
    if (block == NULL) {
        free(keep);
        return NULL;
    }
    struct errinj__config *cfg = (struct errinj__config *)block;
    const char **kv = (const char **)(block + sizeof(*cfg));
    char *text = block + head;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i / 2])
            continue;
        size_t len = strlen(params[i]) + 1;
        memcpy(text, params[i], len);
        kv[o++] = text;
        text += len;
    }
    free(keep);
    kv[o] = NULL;
    atomic_init(&cfg->refs, 1);
    cfg->pairs = kept;
    cfg->kv = kv;
    return cfg;
}

struct errinj__config *errinj__config_ref(struct errinj__config *cfg)
{
    /* The shared empty set is never freed: counting it would only make every fire of every
     * injection without parameters touch the same cache line. */
    if (cfg != &empty_config)
        atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void errinj__config_unref(struct errinj__config *cfg)
{
    if (cfg == NULL || cfg == &empty_config)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1) {
        free(cfg);
    }
}

const char *errinj__config_get(const struct errinj__config *cfg, const char *key)
{
    for (size_t i = 0; cfg != NULL && i < cfg->pairs; i++)
        if (strcmp(cfg->kv[2 * i], key) == 0)
            return cfg->kv[2 * i + 1];
    return NULL;
}

struct errinj__config *errinj__config_empty(void)
{
    return &empty_config;
}
