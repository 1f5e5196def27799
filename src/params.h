/*
 * params.h - an injection's parameters: immutable, reference-counted sets of key/value pairs.
 *
 * params.c owns the set: building it (of a key given twice, the first is kept, since
 * errinj_handler_get() finds the first and events and GET show what it finds), counting its
 * references, and lookups. The layout is visible to every layer above, because events, the JSON
 * writer and the REST API read kv directly; nothing may write it after errinj__config_new().
 */
#ifndef ERRINJ_PARAMS_H
#define ERRINJ_PARAMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* kv is key, value, ..., NULL, each key once. */
struct errinj__config {
    atomic_uint refs;
    size_t pairs;
    const char *const *kv;
};

/* A new set from params (key, value, ..., NULL; NULL for none), with one reference: pair with
 * errinj__config_unref(). NULL for an odd number of strings or when out of memory. */
struct errinj__config *errinj__config_new(const char *const *params);
/* Takes one more reference to cfg and returns it. */
struct errinj__config *errinj__config_ref(struct errinj__config *cfg);
/* Drops a reference (NULL ignored); the last frees the set. */
void errinj__config_unref(struct errinj__config *cfg);
/* The value of key in cfg (NULL ignored), or NULL. */
const char *errinj__config_get(const struct errinj__config *cfg, const char *key);

/* The shared empty set: every injection's parameters before its first enable. It is never
 * freed and its references are not counted (every fire of every injection without parameters
 * would otherwise write the same cache line). */
struct errinj__config *errinj__config_empty(void);

#endif /* ERRINJ_PARAMS_H */
