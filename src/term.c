/*
 * term.c - fault terms: the grammar, the parser, the seeded draw and the step walk.
 *
 * Parsing happens once per enable and refuses anything it does not understand with the byte
 * offset of the problem, so a typo never silently becomes "always on". The fire path calls
 * only errinj__term_decide(), which for terms whose steps have no PCT-with-COUNT is a few
 * comparisons over boundaries fixed at enable: no lock, no allocation, no system call. A step
 * with both PCT and COUNT ends at its COUNT-th successful draw; that boundary is found once,
 * by scanning the (pure) draws under a mutex, and then published for every later evaluation.
 */
#define _GNU_SOURCE
#include "term.h"

#include "errinj.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const action_names[] = {
#define ERRINJ__ACTION_TEXT(name, text) [ERRINJ__ACTION_##name] = text,
    ERRINJ__ACTION_MAP(ERRINJ__ACTION_TEXT)
#undef ERRINJ__ACTION_TEXT
};

const char *errinj__action_name(enum errinj__action action)
{
    return (unsigned)action < ERRINJ__ACTION_COUNT ? action_names[action] : "unknown";
}

/* ---- the draw ------------------------------------------------------------------------------- */

/* splitmix64's finaliser: a bijection of 64-bit values with good avalanche. */
static uint64_t mix64(uint64_t z)
{
    return errinj__term_draw(z, 0);
}

static uint64_t draw_key(uint64_t seed, const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
    return mix64(seed ^ mix64(h));
}

/* ---- seeds ---------------------------------------------------------------------------------- */

bool errinj__seed_parse(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == '\0')
            return false;
    }
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false; /* overflows 64 bits */
        v = v * base + d;
    }
    *out = v;
    return true;
}

static pthread_once_t g_seed_once = PTHREAD_ONCE_INIT;
static uint64_t g_process_seed;

static void choose_process_seed(void)
{
    const char *env = getenv("ERRINJ_SEED");
    if (env != NULL && env[0] != '\0') {
        if (errinj__seed_parse(env, &g_process_seed))
            return;
        fprintf(stderr, "errinj: ERRINJ_SEED=%s is not an unsigned 64-bit integer; using a random seed\n", env);
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40));
    }
    /* 53 bits: a random seed shown in JSON stays exact in every parser, JavaScript's too. */
    g_process_seed = seed & ((1ull << 53) - 1);
}

uint64_t errinj__process_seed(void)
{
    pthread_once(&g_seed_once, choose_process_seed);
    return g_process_seed;
}

/* ---- parsing -------------------------------------------------------------------------------- */

#define ACCEPTED                                                                               \
    "a term is [PCT%][COUNT*]action[(ARG)] joined by ->, with PCT in (0, 100], COUNT >= 1 and "  \
    "action one of on, off, return(V), sleep(MS), pause, abort"

struct parser {
    const char *text;
    size_t pos;
    char *why;
    size_t why_len;
};

static int fail_at(struct parser *p, size_t offset, const char *what)
{
    snprintf(p->why, p->why_len, "bad term at offset %zu: %s; %s", offset, what, ACCEPTED);
    return ERRINJ_EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* PCT in units of 10^-9 percent: up to 3 integer digits and 9 decimals. */
#define PCT_SCALE 1000000000ull
#define PCT_HUNDRED (100ull * PCT_SCALE)

/* Parses the decimal at p->pos (digits with an optional '.' and decimals) as a percentage. */
static int parse_pct(struct parser *p, size_t end, uint64_t *out)
{
    size_t at = p->pos;
    uint64_t whole = 0, frac = 0;
    unsigned int_digits = 0, frac_digits = 0;
    size_t i = at;
    for (; i < end && is_digit(p->text[i]); i++) {
        int_digits++;
        whole = whole * 10 + (uint64_t)(p->text[i] - '0');
        if (whole > 100)
            return fail_at(p, at, "percentage is over 100");
    }
    if (i < end && p->text[i] == '.') {
        i++;
        for (; i < end && is_digit(p->text[i]); i++) {
            if (++frac_digits > 9)
                return fail_at(p, at, "percentage has more than 9 decimals");
            frac = frac * 10 + (uint64_t)(p->text[i] - '0');
        }
    }
    if (i != end || int_digits + frac_digits == 0)
        return fail_at(p, at, "percentage must be a decimal number");
    for (unsigned k = frac_digits; k < 9; k++)
        frac *= 10;
    uint64_t v = whole * PCT_SCALE + frac;
    if (v == 0)
        return fail_at(p, at, "percentage must be more than 0");
    if (v > PCT_HUNDRED)
        return fail_at(p, at, "percentage is over 100");
    *out = v;
    p->pos = end + 1; /* past '%' */
    return 0;
}

/* Parses an unsigned decimal in [lo, hi] occupying [p->pos, end). */
static int parse_unsigned(struct parser *p, size_t end, uint64_t lo, uint64_t hi, const char *what, uint64_t *out)
{
    size_t at = p->pos;
    char msg[128];
    if (at == end) {
        snprintf(msg, sizeof(msg), "%s is missing", what);
        return fail_at(p, at, msg);
    }
    uint64_t v = 0;
    for (size_t i = at; i < end; i++) {
        if (!is_digit(p->text[i])) {
            snprintf(msg, sizeof(msg), "%s must be a decimal integer", what);
            return fail_at(p, i, msg);
        }
        unsigned d = (unsigned)(p->text[i] - '0');
        if (v > (hi - d) / 10) {
            snprintf(msg, sizeof(msg), "%s is over %" PRIu64, what, hi);
            return fail_at(p, at, msg);
        }
        v = v * 10 + d;
    }
    if (v < lo) {
        snprintf(msg, sizeof(msg), "%s must be at least %" PRIu64, what, lo);
        return fail_at(p, at, msg);
    }
    *out = v;
    return 0;
}

/* The argument of return: a signed int. */
static int parse_int_arg(struct parser *p, size_t at, size_t end, int64_t *out)
{
    size_t i = at;
    bool neg = false;
    if (i < end && (p->text[i] == '-' || p->text[i] == '+')) {
        neg = p->text[i] == '-';
        i++;
    }
    if (i == end)
        return fail_at(p, at, "return needs an integer value, as in return(-5)");
    int64_t v = 0;
    for (; i < end; i++) {
        if (!is_digit(p->text[i]))
            return fail_at(p, i, "return takes an integer value, as in return(-5)");
        v = v * 10 + (p->text[i] - '0');
        if (v > (int64_t)INT32_MAX + (neg ? 1 : 0))
            return fail_at(p, at, "return value does not fit an int");
    }
    *out = neg ? -v : v;
    return 0;
}

/* What fail-rs, gofail and fail(9) users may paste, and what errinj says about it. */
static int foreign_action(struct parser *p, size_t at, const char *word, size_t len)
{
    static const struct {
        const char *word;
        const char *advice;
    } foreign[] = {
        {"print", "print is not an errinj action (every evaluation that fires is an event); use on"},
        {"yield", "yield is not an errinj action; use off, or sleep(MS) for a delay"},
        {"break", "break is not an errinj action; use pause and attach a debugger"},
        {"delay", NULL}, /* mapped to sleep by the caller */
        {"panic", NULL}, /* mapped to abort by the caller */
    };
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
        if (strlen(foreign[i].word) == len && memcmp(foreign[i].word, word, len) == 0 && foreign[i].advice != NULL)
            return fail_at(p, at, foreign[i].advice);
    return fail_at(p, at, "unknown action");
}

static bool word_is(const char *word, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(word, name, len) == 0;
}

/* Parses one step occupying [p->pos, end). */
static int parse_step(struct parser *p, size_t end, struct errinj__term_step *step)
{
    const char *t = p->text;
    size_t begin = p->pos;
    if (begin == end)
        return fail_at(p, begin, "empty step");
    *step = (struct errinj__term_step){0};

    /* The argument first: it is the only part that may contain other characters. */
    size_t open = begin;
    while (open < end && t[open] != '(')
        open++;
    size_t body_end = open;
    bool has_arg = open < end;
    size_t arg_at = open + 1, arg_end = end;
    if (has_arg) {
        if (t[end - 1] != ')')
            return fail_at(p, open, "an argument must end with ')' at the end of its step");
        arg_end = end - 1;
        for (size_t i = arg_at; i < arg_end; i++)
            if (t[i] == '(' || t[i] == ')')
                return fail_at(p, i, "an argument must not contain parentheses");
    }

    size_t pct = begin;
    while (pct < body_end && t[pct] != '%')
        pct++;
    if (pct < body_end) {
        uint64_t v;
        int rc = parse_pct(p, pct, &v);
        if (rc != 0)
            return rc;
        if (v < PCT_HUNDRED) {
            step->has_pct = true;
            /* threshold = v / 100% of 2^64, rounded down; 0 never happens for v >= 1e-9 %. */
            step->threshold = (uint64_t)(((unsigned __int128)v << 64) / PCT_HUNDRED);
        }
    }
    size_t star = p->pos;
    while (star < body_end && t[star] != '*')
        star++;
    if (star < body_end) {
        uint64_t count;
        int rc = parse_unsigned(p, star, 1, ERRINJ__TERM_COUNT_MAX, "COUNT", &count);
        if (rc != 0)
            return rc;
        step->count = count;
        p->pos = star + 1;
    }
    size_t word_at = p->pos;
    const char *word = t + word_at;
    size_t len = body_end - word_at;
    if (len == 0)
        return fail_at(p, word_at, "action is missing");
    for (size_t i = word_at; i < body_end; i++)
        if (t[i] == '%' || t[i] == '*')
            return fail_at(p, i, t[i] == '%' ? "'%' must come first in a step" : "'*' must follow the percentage, before the action");

    enum { NONE, INT, MS } takes = NONE;
    if (word_is(word, len, "on")) {
        step->action = ERRINJ__ACTION_ON;
    } else if (word_is(word, len, "off")) {
        step->action = ERRINJ__ACTION_OFF;
    } else if (word_is(word, len, "return")) {
        step->action = ERRINJ__ACTION_RETURN;
        takes = INT;
    } else if (word_is(word, len, "sleep") || word_is(word, len, "delay")) {
        step->action = ERRINJ__ACTION_SLEEP;
        takes = MS;
    } else if (word_is(word, len, "pause")) {
        step->action = ERRINJ__ACTION_PAUSE;
    } else if (word_is(word, len, "abort") || word_is(word, len, "panic")) {
        step->action = ERRINJ__ACTION_ABORT;
        /* fail-rs's panic(MESSAGE): the message is accepted and not used. */
        if (word_is(word, len, "panic"))
            has_arg = false;
    } else {
        return foreign_action(p, word_at, word, len);
    }
    if (takes == NONE && has_arg) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s takes no argument", action_names[step->action]);
        return fail_at(p, open, msg);
    }
    if (takes == INT) {
        if (!has_arg)
            return fail_at(p, end, "return needs a value, as in return(-5)");
        return parse_int_arg(p, arg_at, arg_end, &step->arg);
    }
    if (takes == MS) {
        if (!has_arg)
            return fail_at(p, end, "sleep needs milliseconds, as in sleep(100)");
        uint64_t ms;
        p->pos = arg_at;
        int rc = parse_unsigned(p, arg_end, 0, ERRINJ__TERM_SLEEP_MAX, "sleep's milliseconds", &ms);
        if (rc != 0)
            return rc;
        step->arg = (int64_t)ms;
    }
    return 0;
}

/* Where the step starting at `at` ends: the next "->" or the end of the text. */
static size_t step_end(const char *text, size_t len, size_t at)
{
    size_t end = at;
    while (end < len && !(text[end] == '-' && end + 1 < len && text[end + 1] == '>'))
        end++;
    return end;
}

int errinj__term_parse(const char *text, struct errinj__term **out, char *why, size_t why_len)
{
    char scratch[8];
    if (why == NULL || why_len == 0)
        why = scratch, why_len = sizeof(scratch);
    why[0] = '\0';
    *out = NULL;
    struct parser p = {.text = text, .why = why, .why_len = why_len};
    if (text == NULL)
        return fail_at(&p, 0, "no term");
    size_t len = strnlen(text, ERRINJ__TERM_TEXT_MAX + 1);
    if (len > ERRINJ__TERM_TEXT_MAX) {
        snprintf(why, why_len, "bad term at offset %d: longer than %d bytes; %s", ERRINJ__TERM_TEXT_MAX,
                 ERRINJ__TERM_TEXT_MAX, ACCEPTED);
        return ERRINJ_EINVAL;
    }
    if (len == 0)
        return fail_at(&p, 0, "empty term");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail_at(&p, i, c == ' ' ? "spaces are not allowed" : "only printable ASCII is allowed");
    }
    /* Count the steps: "->" separates them. */
    size_t nsteps = 1;
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '-' && text[i + 1] == '>')
            nsteps++;
    if (nsteps > ERRINJ__TERM_STEPS_MAX) {
        snprintf(why, why_len, "bad term at offset 0: more than %d steps; %s", ERRINJ__TERM_STEPS_MAX, ACCEPTED);
        return ERRINJ_EINVAL;
    }
    struct errinj__term *term = calloc(1, sizeof(*term) + nsteps * sizeof(term->steps[0]));
    if (term == NULL)
        return ERRINJ_ENOMEM;
    term->start = calloc(nsteps + 1, sizeof(*term->start));
    term->text = malloc(len + 1);
    if (term->start == NULL || term->text == NULL) {
        errinj__term_free(term);
        return ERRINJ_ENOMEM;
    }
    memcpy(term->text, text, len + 1);
    pthread_mutex_init(&term->scan_mu, NULL);

    /* Empty steps first ("->" at either end, "->->"), so they are named as such. */
    for (size_t at = 0, s = 0; s < nsteps; s++) {
        size_t end = step_end(text, len, at);
        if (end == at) {
            errinj__term_free(term);
            return fail_at(&p, at, s == 0 ? "empty step (a term must not start with ->)"
                                   : end == len ? "empty step (a term must not end with ->)"
                                                : "empty step between two ->");
        }
        at = end + 2;
    }
    for (size_t at = 0, s = 0; s < nsteps; s++) {
        size_t end = step_end(text, len, at);
        p.pos = at;
        int rc = parse_step(&p, end, &term->steps[s]);
        if (rc == 0 && s + 1 < nsteps && term->steps[s].count == 0)
            /* A step without a count never ends: what follows it could never run. */
            rc = fail_at(&p, at, "only the last step may go without a COUNT (a step without one never ends)");
        if (rc != 0) {
            errinj__term_free(term);
            return rc;
        }
        term->nsteps++;
        at = end + 2;
    }
    *out = term;
    return 0;
}

void errinj__term_free(struct errinj__term *term)
{
    if (term == NULL)
        return;
    if (term->start != NULL)
        pthread_mutex_destroy(&term->scan_mu);
    free(term->start);
    free(term->text);
    free(term);
}

/* ---- deciding ------------------------------------------------------------------------------- */

#define NEVER UINT64_MAX

/* The end of step i given its start, when it does not depend on draws: NEVER for ever, 0 if it must be scanned. */
static uint64_t fixed_end(const struct errinj__term_step *step, uint64_t start)
{
    if (step->count == 0)
        return NEVER;
    if (step->has_pct)
        return 0;
    return start + step->count; /* no overflow: start and count are at most a few times 10^18 */
}

/* Publishes the boundaries that follow from known ones, from step i on. */
static void settle_from(struct errinj__term *term, size_t i)
{
    for (; i < term->nsteps; i++) {
        uint64_t start = atomic_load_explicit(&term->start[i], memory_order_acquire);
        if (start == 0 || atomic_load_explicit(&term->start[i + 1], memory_order_relaxed) != 0)
            return;
        uint64_t end = start == NEVER ? NEVER : fixed_end(&term->steps[i], start);
        if (end == 0)
            return;
        atomic_store_explicit(&term->start[i + 1], end, memory_order_release);
    }
}

void errinj__term_arm(struct errinj__term *term, uint64_t seed, const char *name, size_t name_len)
{
    term->seed = seed;
    term->key = draw_key(seed, name, name_len);
    atomic_store(&term->start[0], 1);
    for (size_t i = 1; i <= term->nsteps; i++)
        atomic_store(&term->start[i], 0);
    atomic_store(&term->hint, 0);
    term->scan_step = 0;
    term->scan_eval = 0;
    term->scan_used = 0;
    settle_from(term, 0);
}

static bool takes_effect(const struct errinj__term *term, const struct errinj__term_step *step, uint64_t eval)
{
    return !step->has_pct || errinj__term_draw(term->key, eval) < step->threshold;
}

/*
 * Step i (started at `start`) has both PCT and COUNT and its end is not known yet: scan its
 * draws in evaluation order up to `eval`, publishing the end once the COUNT-th success is
 * found. The scan resumes where the last one stopped, so every draw is made once.
 */
static void scan_step(struct errinj__term *term, size_t i, uint64_t start, uint64_t eval)
{
    pthread_mutex_lock(&term->scan_mu);
    if (atomic_load_explicit(&term->start[i + 1], memory_order_relaxed) == 0) {
        if (term->scan_step != i || term->scan_eval < start) {
            /* The first scan of this step: the steps before it have all ended. */
            term->scan_step = i;
            term->scan_eval = start;
            term->scan_used = 0;
        }
        const struct errinj__term_step *step = &term->steps[i];
        for (; term->scan_eval <= eval; term->scan_eval++) {
            if (takes_effect(term, step, term->scan_eval) && ++term->scan_used == step->count) {
                atomic_store_explicit(&term->start[i + 1], term->scan_eval + 1, memory_order_release);
                term->scan_eval++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&term->scan_mu);
    settle_from(term, i + 1);
}

void errinj__term_decide(struct errinj__term *term, uint64_t eval, struct errinj__decision *d)
{
    size_t i = atomic_load_explicit(&term->hint, memory_order_relaxed);
    if (eval < atomic_load_explicit(&term->start[i], memory_order_acquire))
        i = 0; /* an evaluation older than the hint's step: walk from the first */
    for (;;) {
        if (i == term->nsteps) {
            /* Past the last step: the injection is disabling itself; act as off. */
            *d = (struct errinj__decision){.action = ERRINJ__ACTION_OFF};
            return;
        }
        uint64_t end = atomic_load_explicit(&term->start[i + 1], memory_order_acquire);
        if (end == 0) {
            scan_step(term, i, atomic_load_explicit(&term->start[i], memory_order_acquire), eval);
            end = atomic_load_explicit(&term->start[i + 1], memory_order_acquire);
        }
        if (end == 0 || eval < end)
            break; /* in step i (end == 0: its COUNT-th success is still ahead of eval) */
        i++;
    }
    if (i > atomic_load_explicit(&term->hint, memory_order_relaxed))
        atomic_store_explicit(&term->hint, i, memory_order_relaxed);
    const struct errinj__term_step *step = &term->steps[i];
    if (!takes_effect(term, step, eval)) {
        *d = (struct errinj__decision){.action = ERRINJ__ACTION_OFF};
        return;
    }
    uint64_t end = atomic_load_explicit(&term->start[i + 1], memory_order_acquire);
    *d = (struct errinj__decision){
        .action = step->action,
        .arg = step->arg,
        .last = i + 1 == term->nsteps && step->count != 0 && end != 0 && eval + 1 == end,
    };
}
