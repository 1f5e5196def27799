/*
 * lifecycle.h - the library across fork(): one pthread_atfork, and the order of the layers.
 *
 * lifecycle.c owns the single pthread_atfork() of the library. Each layer that has state to
 * lock before fork() or to start anew in the child registers its hooks here, from a constructor
 * of its own file, under its place in the one list below. The hooks run in that order: prepare
 * from the bottom layer up (so locks are taken in the library's lock order: the registry's
 * before the seq mutex), parent from the top down (released in reverse), child from the bottom
 * up (each layer starts anew before the layers that use it).
 */
#ifndef ERRINJ_LIFECYCLE_H
#define ERRINJ_LIFECYCLE_H

/* The layers with fork hooks, bottom first: the order every hook runs in. */
enum errinj__layer {
    ERRINJ__LAYER_LOG,
    ERRINJ__LAYER_READERS,
    ERRINJ__LAYER_REGISTRY,
    ERRINJ__LAYER_RING,
    ERRINJ__LAYER_EVENTS,
    ERRINJ__LAYER_SERVER,
    ERRINJ__LAYER_COUNT
};

/* A layer's hooks; any may be NULL. The child hook runs in the child's only thread. */
struct errinj__fork_hooks {
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
};

/* Registers the hooks (static storage) of layer; once per layer, from a constructor. */
void errinj__lifecycle_register(enum errinj__layer layer, const struct errinj__fork_hooks *hooks);

#endif /* ERRINJ_LIFECYCLE_H */
