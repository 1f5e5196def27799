/*
 * term.h - fault terms: when and how often an enabled injection fires.
 *
 * A term is the grammar of FreeBSD fail(9) and tikv/fail-rs:
 *     term := step ( "->" step )*
 *     step := [ PCT "%" ] [ COUNT "*" ] action [ "(" ARG ")" ]
 * It is parsed once, when an injection is enabled; the parsed term is then private to that
 * one enable (it also carries the enable's step boundaries), and the fire path only asks it
 * for the decision of one evaluation (errinj__term_decide).
 *
 * Decisions are a pure function of (seed, injection name, evaluation number): the draw of an
 * evaluation never depends on which thread makes it or when, so one seed gives one pattern.
 * Which step an evaluation falls in depends only on the draws of earlier evaluations, which
 * are pure too; so the decision of evaluation N is fixed the moment the term is enabled, and
 * a racing thread that holds N can compute it without waiting for the holders of 1..N-1.
 *
 * This file owns the grammar, the parser, the draw and the step walk. It knows nothing of
 * entries, sites or events.
 */
#ifndef ERRINJ_TERM_H
#define ERRINJ_TERM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one list of actions: XX(NAME, "text"). The enum and the names come from it. */
#define ERRINJ__ACTION_MAP(XX)                                                                 \
    XX(ON, "on")                                                                               \
    XX(OFF, "off")                                                                             \
    XX(RETURN, "return")                                                                       \
    XX(SLEEP, "sleep")                                                                         \
    XX(PAUSE, "pause")                                                                         \
    XX(ABORT, "abort")

enum errinj__action {
#define ERRINJ__ACTION_ENUM(name, text) ERRINJ__ACTION_##name,
    ERRINJ__ACTION_MAP(ERRINJ__ACTION_ENUM)
#undef ERRINJ__ACTION_ENUM
    ERRINJ__ACTION_COUNT
};

/* "on", "off", ...; "unknown" outside the enum. */
const char *errinj__action_name(enum errinj__action action);

/* Limits of the grammar, so that sums of counts and the walk stay bounded. */
#define ERRINJ__TERM_TEXT_MAX 4096
#define ERRINJ__TERM_STEPS_MAX 256
#define ERRINJ__TERM_COUNT_MAX 1000000000000000000ull /* 10^18 */
#define ERRINJ__TERM_SLEEP_MAX 86400000u              /* one day, in ms */

struct errinj__term_step {
    uint64_t threshold; /* the step takes effect when draw < threshold; used only if has_pct */
    uint64_t count;     /* evaluations it takes effect on; 0: for ever */
    int64_t arg;        /* return value or sleep milliseconds */
    uint8_t action;     /* enum errinj__action */
    bool has_pct;       /* a PCT below 100 */
};

struct errinj__term {
    char *text;         /* as given, NUL-terminated */
    uint64_t seed;
    uint64_t key;       /* the draw's key: seed and injection name mixed */
    size_t nsteps;
    /* Step boundaries: step i takes the evaluations [start[i], start[i+1]); 0 means not yet
     * known (a step with both PCT and COUNT ends at its COUNT-th successful draw, found by
     * scanning the draws under scan_mu). UINT64_MAX: never starts / never ends. */
    _Atomic uint64_t *start;
    atomic_size_t hint; /* a step index whose start is known and <= recent evaluations */
    pthread_mutex_t scan_mu;
    size_t scan_step;   /* the step being scanned (steps end in order); under scan_mu */
    uint64_t scan_eval; /* next evaluation to draw for that step; under scan_mu */
    uint64_t scan_used; /* successful draws so far in that step; under scan_mu */
    struct errinj__term_step steps[];
};

/* What one evaluation does. */
struct errinj__decision {
    uint8_t action; /* enum errinj__action */
    int64_t arg;
    bool last;      /* this evaluation used up the last step: the injection disables itself */
};

/*
 * Parses text into a new term (pair with errinj__term_free()). Returns 0, ERRINJ_EINVAL with
 * a message naming the byte offset and the accepted forms in why (always NUL-terminated), or
 * ERRINJ_ENOMEM. The term decides nothing until errinj__term_arm().
 */
int errinj__term_parse(const char *text, struct errinj__term **out, char *why, size_t why_len);

/* Sets the seed and the injection name the draws use, and the boundaries known up front. */
void errinj__term_arm(struct errinj__term *term, uint64_t seed, const char *name, size_t name_len);

void errinj__term_free(struct errinj__term *term);

/* The decision of evaluation `eval` (from 1). Thread-safe; lock-free unless a step has both
 * PCT and COUNT. Exactly one evaluation of an armed term gets `last`, if its last step counts. */
void errinj__term_decide(struct errinj__term *term, uint64_t eval, struct errinj__decision *d);

/* The draw of one evaluation: a 64-bit value, a pure function of (key, eval): splitmix64's
 * finaliser (a bijection with good avalanche) of the key plus eval times the golden ratio. */
static inline uint64_t errinj__term_draw(uint64_t key, uint64_t eval)
{
    uint64_t z = key + eval * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * errinj__term_decide() with the commonest terms inline: one step without a count ("off",
 * "1%return(-5)") decides from that step and the draw alone, with no call and no shared write.
 */
static inline void errinj__term_decide_inline(struct errinj__term *term, uint64_t eval, struct errinj__decision *d)
{
    if (term->nsteps == 1 && term->steps[0].count == 0) {
        const struct errinj__term_step *s = &term->steps[0];
        bool skip = s->has_pct && errinj__term_draw(term->key, eval) >= s->threshold;
        d->action = skip ? (uint8_t)ERRINJ__ACTION_OFF : s->action;
        d->arg = s->arg;
        d->last = false;
        return;
    }
    errinj__term_decide(term, eval, d);
}

/* The seed enables without one use: ERRINJ_SEED if it is a valid unsigned 64-bit decimal (or
 * 0x hex), else random, chosen once per process. */
uint64_t errinj__process_seed(void);

/* Parses a seed ("123", "0x7b"): true and *out on success. */
bool errinj__seed_parse(const char *s, uint64_t *out);

#endif /* ERRINJ_TERM_H */
