/*
 * control.h - switching injections: enable, disable, message, and reading their state.
 *
 * control.c owns what errinj_enable(), errinj_disable(), errinj_message() and the getters of
 * errinj(3) do to an entry of the registry, and the internal forms every interface (REST, the
 * environment, the WebSocket session) calls. It sits above the events layer because an enable
 * records the last seq published before it takes effect (Errinj-Seq, and where a wait starts),
 * and below the fire path, which disables a one-shot through it.
 */
#ifndef ERRINJ_CONTROL_H
#define ERRINJ_CONTROL_H

#include "params.h"
#include "registry.h"
#include "term.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* The enables of name so far (0: never enabled): tells whether an enable is still the latest. */
uint64_t errinj__enable_count(const char *name);

/* Snapshot of an entry for the REST API. */
struct errinj__entry_state {
    bool enabled;
    bool one_shot;
    uint64_t evaluations;
    uint64_t seed;                        /* when enabled: the seed of its draws */
    char term[ERRINJ__TERM_TEXT_MAX + 1]; /* when enabled: its term, "" for none */
    struct errinj__config *cfg;           /* a reference: unref it; NULL when not enabled */
};
void errinj__entry_state(const char *name, struct errinj__entry_state *out);

/* Disables e with e->mu held (one-shot self-disable); release_waiters also wakes parked handlers. */
void errinj__entry_disable_locked(struct errinj__entry *e, bool release_waiters);

#endif /* ERRINJ_CONTROL_H */
