/*
 * test_term.c - fault terms: the parser (every malformed form refused with its offset), the
 * seeded draws (one pattern per seed, across threads and processes), COUNT and the end of the
 * last step exact under races, the six actions at every point type, and the counters and event
 * fields (action, eval) they produce.
 */
#define _GNU_SOURCE
#include "helpers.h"
#include "errinj.h"
#include "term.h"
#include "threads.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static struct recorder g_rec;
static errinj_subscription *g_sub;

static void stop_recording(void)
{
    errinj_unsubscribe(g_sub);
    g_sub = NULL;
}

static int reset(void **state)
{
    (void)state;
    stop_recording(); /* a failed test may have left it on */
    errinj_disable_all();
    errinj_set_log(NULL, NULL);
    pthread_mutex_lock(&g_rec.mu);
    g_rec.count = 0;
    pthread_mutex_unlock(&g_rec.mu);
    return 0;
}

static int enable_term(const char *name, const char *term, uint64_t seed)
{
    errinj_enable_opts opts = {.term = term, .seed = seed};
    return errinj_enable_with(name, &opts);
}

/* ---- the parser ------------------------------------------------------------------------------ */

static void accepted_terms_parse(void **state)
{
    (void)state;
    static const char *const good[] = {
        "on", "off", "return(-5)", "return(0)", "return(+7)", "return(2147483647)", "return(-2147483648)",
        "sleep(0)", "sleep(86400000)", "pause", "abort", "50%on", "0.5%on", "100%on", "100.000%on", ".5%on",
        "0.000000001%on", "3*on", "2*off->1*on", "25%3*return(7)->off", "1000000000000000000*on",
        "1*on->2*sleep(1)->3*pause->abort", "delay(5)", "panic", "panic(boom)", "5%panic",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char msg[512];
        int rc = errinj_term_check(good[i], msg, sizeof(msg));
        if (rc != 0)
            fail_msg("term %s refused: %s", good[i], msg);
        assert_string_equal(msg, "");
    }
}

struct bad_term {
    const char *term;
    size_t offset;       /* the offset the message must name */
    const char *mention; /* a phrase the message must contain */
};

static const struct bad_term bad_terms[] = {
    {"", 0, "empty term"},
    {"->on", 0, "must not start with ->"},
    {"1*on->", 6, "must not end with ->"},
    {"1*on->->off", 6, "between two ->"},
    {"->", 0, "empty step"},
    {"0%on", 0, "more than 0"},
    {"0.0%on", 0, "more than 0"},
    {"101%on", 0, "over 100"},
    {"100.1%on", 0, "over 100"},
    {"99999999999999999999999%on", 0, "over 100"},
    {"0.0000000001%on", 0, "more than 9 decimals"},
    {"%on", 0, "decimal number"},
    {"a%on", 0, "decimal number"},
    {"1.2.3%on", 0, "decimal number"},
    {"5%%on", 2, "'%' must come first"},
    {"0*on", 0, "at least 1"},
    {"1000000000000000001*on", 0, "over 1000000000000000000"},
    {"99999999999999999999999999*on", 0, "over"},
    {"*on", 0, "COUNT is missing"},
    {"x*on", 0, "decimal integer"},
    {"3*", 2, "action is missing"},
    {"50%", 3, "action is missing"},
    {"3*50%on", 0, "decimal number"},
    {"foo", 0, "unknown action"},
    {"1*on->bar", 6, "unknown action"},
    {"print", 0, "print is not an errinj action"},
    {"print(hello)", 0, "print is not an errinj action"},
    {"yield", 0, "yield is not an errinj action"},
    {"break", 0, "break is not an errinj action"},
    {"on(1)", 2, "on takes no argument"},
    {"off()", 3, "off takes no argument"},
    {"pause(3)", 5, "pause takes no argument"},
    {"abort(1)", 5, "abort takes no argument"},
    {"return", 6, "return needs a value"},
    {"return()", 7, "return needs an integer value"},
    {"return(x)", 7, "integer value"},
    {"return(1.5)", 8, "integer value"},
    {"return(2147483648)", 7, "does not fit an int"},
    {"return(-2147483649)", 7, "does not fit an int"},
    {"return(99999999999999999999999)", 7, "does not fit an int"},
    {"sleep", 5, "sleep needs milliseconds"},
    {"sleep()", 6, "milliseconds is missing"},
    {"sleep(abc)", 6, "decimal integer"},
    {"sleep(-1)", 6, "decimal integer"},
    {"sleep(86400001)", 6, "over 86400000"},
    {"delay", 5, "sleep needs milliseconds"},
    {"return(1", 6, "must end with ')'"},
    {"return(1)x", 6, "must end with ')'"},
    {"return((1))", 7, "must not contain parentheses"},
    {"on->off", 0, "only the last step may go without a COUNT"},
    {"50%on->off", 0, "only the last step may go without a COUNT"},
    {" on", 0, "spaces are not allowed"},
    {"on ", 2, "spaces are not allowed"},
    {"1*on -> off", 4, "spaces are not allowed"},
    {"o\tn", 1, "printable ASCII"},
    {"\xc3\xa9", 0, "printable ASCII"},
};

static void every_malformed_term_is_refused_with_its_offset(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_terms) / sizeof(bad_terms[0]); i++) {
        const struct bad_term *b = &bad_terms[i];
        char msg[512], want[64];
        int rc = errinj_term_check(b->term, msg, sizeof(msg));
        if (rc != ERRINJ_EINVAL)
            fail_msg("term \"%s\" gave %d, expected EINVAL", b->term, rc);
        snprintf(want, sizeof(want), "offset %zu:", b->offset);
        if (strstr(msg, want) == NULL || strstr(msg, b->mention) == NULL)
            fail_msg("term \"%s\": message \"%s\" should name \"%s\" and say \"%s\"", b->term, msg, want, b->mention);
        /* And the accepted forms, so the user can fix it. */
        if (strstr(msg, "[PCT%][COUNT*]action[(ARG)]") == NULL || strstr(msg, "return(V)") == NULL)
            fail_msg("term \"%s\": message \"%s\" does not give the accepted forms", b->term, msg);
    }
}

static void too_long_and_too_many_steps_are_refused(void **state)
{
    (void)state;
    char msg[512];
    char *big = malloc(ERRINJ__TERM_TEXT_MAX + 2);
    memset(big, 'o', ERRINJ__TERM_TEXT_MAX + 1);
    big[ERRINJ__TERM_TEXT_MAX + 1] = '\0';
    assert_int_equal(errinj_term_check(big, msg, sizeof(msg)), ERRINJ_EINVAL);
    assert_non_null(strstr(msg, "longer than"));
    /* 257 steps of "1*on->" in under 4096 bytes. */
    size_t at = 0;
    for (int i = 0; i < ERRINJ__TERM_STEPS_MAX + 1; i++)
        at += (size_t)sprintf(big + at, "%s1*on", i ? "->" : "");
    assert_int_equal(errinj_term_check(big, msg, sizeof(msg)), ERRINJ_EINVAL);
    assert_non_null(strstr(msg, "more than 256 steps"));
    free(big);
    assert_int_equal(errinj_term_check(NULL, msg, sizeof(msg)), ERRINJ_EINVAL);
}

static void parsed_steps_hold_what_the_text_says(void **state)
{
    (void)state;
    struct errinj__term *t;
    char why[256];
    assert_int_equal(errinj__term_parse("25%3*return(-7)->sleep(20)", &t, why, sizeof(why)), 0);
    assert_int_equal(t->nsteps, 2);
    assert_true(t->steps[0].has_pct);
    assert_int_equal(t->steps[0].threshold, 1ull << 62);
    assert_int_equal(t->steps[0].count, 3);
    assert_int_equal(t->steps[0].action, ERRINJ__ACTION_RETURN);
    assert_int_equal(t->steps[0].arg, -7);
    assert_false(t->steps[1].has_pct);
    assert_int_equal(t->steps[1].count, 0);
    assert_int_equal(t->steps[1].action, ERRINJ__ACTION_SLEEP);
    assert_int_equal(t->steps[1].arg, 20);
    assert_string_equal(t->text, "25%3*return(-7)->sleep(20)");
    errinj__term_free(t);
    /* fail-rs's names: delay is sleep, panic is abort; 100% is no draw at all. */
    assert_int_equal(errinj__term_parse("100%delay(3)->panic(x)", &t, why, sizeof(why)), ERRINJ_EINVAL);
    assert_int_equal(errinj__term_parse("1*delay(3)->panic(x)", &t, why, sizeof(why)), 0);
    assert_int_equal(t->steps[0].action, ERRINJ__ACTION_SLEEP);
    assert_int_equal(t->steps[0].arg, 3);
    assert_int_equal(t->steps[1].action, ERRINJ__ACTION_ABORT);
    errinj__term_free(t);
    assert_int_equal(errinj__term_parse("100%on", &t, why, sizeof(why)), 0);
    assert_false(t->steps[0].has_pct);
    errinj__term_free(t);
}

static void a_bad_term_changes_nothing(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("tm.keep", false, (const char *[]){"k", "v", NULL}), 0);
    assert_true(ERRINJ_ENTER("tm.keep"));
    assert_int_equal(enable_term("tm.keep", "3*bogus", 0), ERRINJ_EINVAL);
    assert_int_equal(enable_term("tm.never", "0%on", 0), ERRINJ_EINVAL);
    assert_false(errinj_is_enabled("tm.never"));
    /* Still the earlier enable: always on, its parameters, its evaluations. */
    assert_true(errinj_is_enabled("tm.keep"));
    char buf[8];
    assert_int_equal(errinj_parameter("tm.keep", "k", buf, sizeof(buf)), 0);
    assert_int_equal(errinj_evaluations("tm.keep"), 1);
    assert_true(ERRINJ_ENTER("tm.keep"));
    assert_int_equal(errinj_enters("tm.keep"), 2);
    /* one_shot with a term is refused too. */
    errinj_enable_opts both = {.one_shot = true, .term = "1*on"};
    assert_int_equal(errinj_enable_with("tm.keep", &both), ERRINJ_EINVAL);
    assert_int_equal(errinj_evaluations("tm.keep"), 2);
    /* NULL options: always on. */
    assert_int_equal(errinj_enable_with("tm.null", NULL), 0);
    assert_true(ERRINJ_ENTER("tm.null"));
}

/* ---- the draw --------------------------------------------------------------------------------- */

static void draws_are_a_pure_function_of_seed_name_and_eval(void **state)
{
    (void)state;
    struct errinj__term *a, *b, *c;
    char why[256];
    assert_int_equal(errinj__term_parse("30%on", &a, why, sizeof(why)), 0);
    assert_int_equal(errinj__term_parse("30%on", &b, why, sizeof(why)), 0);
    assert_int_equal(errinj__term_parse("30%on", &c, why, sizeof(why)), 0);
    errinj__term_arm(a, 7, "tm.draw", 7);
    errinj__term_arm(b, 7, "tm.draw", 7);
    errinj__term_arm(c, 8, "tm.draw", 7);
    unsigned fired = 0, differ = 0;
    for (uint64_t e = 1; e <= 10000; e++) {
        struct errinj__decision da, db, dc;
        errinj__term_decide(a, e, &da);
        errinj__term_decide(b, 10001 - e > 0 ? e : e, &db);
        errinj__term_decide(c, e, &dc);
        assert_int_equal(da.action, db.action);
        fired += da.action == ERRINJ__ACTION_ON;
        differ += da.action != dc.action;
    }
    /* About 30% (the draw is uniform), and another seed is another pattern. */
    if (fired < 2700 || fired > 3300)
        fail_msg("30%% fired %u times in 10000", fired);
    assert_true(differ > 1000);
    /* Asked out of order, the same answers. */
    for (uint64_t e = 10000; e >= 1; e--) {
        struct errinj__decision da, db;
        errinj__term_decide(a, e, &da);
        errinj__term_decide(b, e, &db);
        assert_int_equal(da.action, db.action);
    }
    errinj__term_free(a);
    errinj__term_free(b);
    errinj__term_free(c);
}

static void a_counted_percentage_step_ends_at_its_count_th_success(void **state)
{
    (void)state;
    struct errinj__term *t;
    char why[256];
    assert_int_equal(errinj__term_parse("10%4*return(1)->2*return(2)", &t, why, sizeof(why)), 0);
    errinj__term_arm(t, 99, "tm.scan", 7);
    /* Walk it in order: four 1s at the draws that succeed, then exactly two 2s, then off. */
    unsigned ones = 0, twos = 0, lasts = 0;
    uint64_t last_one = 0, first_two = 0;
    for (uint64_t e = 1; e <= 2000; e++) {
        struct errinj__decision d;
        errinj__term_decide(t, e, &d);
        if (d.action == ERRINJ__ACTION_RETURN && d.arg == 1)
            ones++, last_one = e;
        if (d.action == ERRINJ__ACTION_RETURN && d.arg == 2) {
            twos++;
            if (first_two == 0)
                first_two = e;
        }
        lasts += d.last;
    }
    assert_int_equal(ones, 4);
    assert_int_equal(twos, 2);
    assert_int_equal(first_two, last_one + 1);
    assert_int_equal(lasts, 1);
    errinj__term_free(t);
}

static void two_counted_percentage_steps_each_count_their_own_successes(void **state)
{
    (void)state;
    struct errinj__term *t, *u;
    char why[256];
    assert_int_equal(errinj__term_parse("20%3*return(1)->20%2*return(2)", &t, why, sizeof(why)), 0);
    assert_int_equal(errinj__term_parse("20%3*return(1)->20%2*return(2)", &u, why, sizeof(why)), 0);
    errinj__term_arm(t, 5, "tm.scan2", 8);
    errinj__term_arm(u, 5, "tm.scan2", 8);
    unsigned ones = 0, twos = 0;
    for (uint64_t e = 1; e <= 3000; e++) {
        struct errinj__decision d;
        errinj__term_decide(t, e, &d);
        ones += d.action == ERRINJ__ACTION_RETURN && d.arg == 1;
        twos += d.action == ERRINJ__ACTION_RETURN && d.arg == 2;
    }
    assert_int_equal(ones, 3);
    assert_int_equal(twos, 2);
    /* Asked from the far end first: the same decisions. */
    for (uint64_t e = 3000; e >= 1; e--) {
        struct errinj__decision d, w;
        errinj__term_decide(t, e, &d);
        errinj__term_decide(u, e, &w);
        assert_int_equal(d.action, w.action);
        assert_int_equal(d.arg, w.arg);
        assert_int_equal(d.last, w.last);
    }
    errinj__term_free(t);
    errinj__term_free(u);
}

/* ---- races: exact counts and one pattern whatever the threads ---------------------------------- */

#define RACERS 8

struct race {
    const char *name;
    int per_thread;
    atomic_uint fired;
};

static void race_enter(void *arg, unsigned index)
{
    (void)index;
    struct race *r = arg;
    for (int i = 0; i < r->per_thread; i++)
        if (errinj_inject_enter(r->name))
            atomic_fetch_add(&r->fired, 1);
}

/* RACERS threads, released together, each fire r->name per_thread times. */
static void run_race(struct race *r)
{
    atomic_store(&r->fired, 0);
    crew_race(RACERS, race_enter, r);
}

static void count_fires_exactly_under_eight_racing_threads(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        reset(NULL);
        errinj_subscribe(recorder_cb, &g_rec, &g_sub);
        struct race r = {.name = "tm.race3", .per_thread = 20};
        assert_int_equal(enable_term(r.name, "3*on", 0), 0);
        run_race(&r);
        stop_recording();
        assert_int_equal(atomic_load(&r.fired), 3);
        assert_int_equal(errinj_enters(r.name), 3);
        assert_int_equal(recorder_count_of(&g_rec, r.name, "hit"), 3);
        assert_false(errinj_is_enabled(r.name)); /* the last step ran out: disabled itself */
        /* The three hits are evaluations 1, 2 and 3. */
        unsigned seen = 0;
        for (size_t i = 0; i < g_rec.count; i++)
            if (strcmp(g_rec.ev[i].injection, r.name) == 0)
                seen |= 1u << g_rec.ev[i].eval;
        assert_int_equal(seen, 0xe);
    }
}

static void skip_then_fire_once_fires_on_the_third_evaluation_under_races(void **state)
{
    (void)state;
    for (int round = 0; round < 50; round++) {
        reset(NULL);
        errinj_subscribe(recorder_cb, &g_rec, &g_sub);
        struct race r = {.name = "tm.race_skip", .per_thread = 20};
        assert_int_equal(enable_term(r.name, "2*off->1*on", 0), 0);
        run_race(&r);
        stop_recording();
        assert_int_equal(atomic_load(&r.fired), 1);
        assert_int_equal(errinj_enters(r.name), 1);
        assert_int_equal(recorder_count_of(&g_rec, r.name, "hit"), 1);
        assert_int_equal(g_rec.ev[0].eval, 3);
        assert_string_equal(g_rec.ev[0].action, "on");
        assert_false(errinj_is_enabled(r.name));
        assert_true(errinj_evaluations(r.name) >= 3);
    }
}

static void skip_then_fire_once_on_one_thread(void **state)
{
    (void)state;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term("tm.skip", "2*off->1*on", 0), 0);
    assert_false(errinj_inject_enter("tm.skip"));
    assert_false(errinj_inject_enter("tm.skip"));
    assert_int_equal(errinj_enters("tm.skip"), 0);
    assert_int_equal(errinj_evaluations("tm.skip"), 2);
    assert_true(errinj_inject_enter("tm.skip"));
    assert_false(errinj_is_enabled("tm.skip"));
    assert_false(errinj_inject_enter("tm.skip"));
    stop_recording();
    assert_int_equal(errinj_evaluations("tm.skip"), 3);
    assert_int_equal(errinj_enters("tm.skip"), 1);
    assert_int_equal(g_rec.count, 1);
    assert_int_equal(g_rec.ev[0].eval, 3);
    assert_int_equal(g_rec.ev[0].enters, 1);
}

/* The evaluations that fired, as a bitmap of the first `n`. */
static void pattern_one_thread(const char *name, const char *term, uint64_t seed, unsigned n, uint8_t *bits)
{
    memset(bits, 0, (n + 8) / 8);
    assert_int_equal(enable_term(name, term, seed), 0);
    for (unsigned e = 1; e <= n; e++)
        if (errinj_inject_enter(name))
            bits[e / 8] |= (uint8_t)(1u << (e % 8));
    errinj_disable(name);
}

static void pattern_racing(const char *name, const char *term, uint64_t seed, unsigned n, uint8_t *bits)
{
    memset(bits, 0, (n + 8) / 8);
    reset(NULL);
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term(name, term, seed), 0);
    struct race r = {.name = name, .per_thread = (int)(n / RACERS)};
    run_race(&r);
    stop_recording();
    errinj_disable(name);
    for (size_t i = 0; i < g_rec.count; i++)
        if (strcmp(g_rec.ev[i].injection, name) == 0 && g_rec.ev[i].eval <= n)
            bits[g_rec.ev[i].eval / 8] |= (uint8_t)(1u << (g_rec.ev[i].eval % 8));
}

static void one_seed_gives_one_pattern_whatever_the_threads(void **state)
{
    (void)state;
    enum { N = 2400 };
    static const char *const terms[] = {"20%on", "10%30*on->off", "50%5*off->25%on"};
    for (size_t k = 0; k < sizeof(terms) / sizeof(terms[0]); k++) {
        uint8_t alone[N / 8 + 1], racing[N / 8 + 1], other[N / 8 + 1];
        pattern_one_thread("tm.pattern", terms[k], 1234, N, alone);
        for (int round = 0; round < 5; round++) {
            pattern_racing("tm.pattern", terms[k], 1234, N, racing);
            if (memcmp(alone, racing, sizeof(alone)) != 0)
                fail_msg("term %s, seed 1234: 8 racing threads fired other evaluations than one thread", terms[k]);
        }
        pattern_one_thread("tm.pattern", terms[k], 1235, N, other);
        assert_true(memcmp(alone, other, sizeof(alone)) != 0);
    }
}

/* Run as `test_term --pattern SEED TERM N`: prints the evaluations that fired, as 0/1. */
static int print_pattern(const char *seed, const char *term, const char *n)
{
    errinj_set_log(NULL, NULL);
    unsigned count = (unsigned)atoi(n);
    assert_int_equal(enable_term("tm.process", term, strtoull(seed, NULL, 10)), 0);
    for (unsigned e = 1; e <= count; e++)
        putchar(errinj_inject_enter("tm.process") ? '1' : '0');
    putchar('\n');
    return 0;
}

static char *pattern_of_process(const char *seed_arg, const char *seed_env, const char *term)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s%s%s /proc/%d/exe --pattern %s '%s' 1000", seed_env ? "ERRINJ_SEED=" : "",
             seed_env ? seed_env : "", seed_env ? " " : "", (int)getpid(), seed_arg, term);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *line = calloc(1, 1100);
    assert_non_null(fgets(line, 1100, p));
    assert_int_equal(pclose(p), 0);
    assert_int_equal(strlen(line), 1001);
    return line;
}

static void one_seed_gives_one_pattern_in_two_processes(void **state)
{
    (void)state;
    char *a = pattern_of_process("77", NULL, "15%on");
    char *b = pattern_of_process("77", NULL, "15%on");
    char *c = pattern_of_process("78", NULL, "15%on");
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    /* The process seed: ERRINJ_SEED stands for every enable without a seed. */
    char *d = pattern_of_process("0", "77", "15%on");
    char *e = pattern_of_process("0", "77", "15%on");
    assert_string_equal(d, e);
    assert_string_equal(d, a);
    free(a), free(b), free(c), free(d), free(e);
}

struct churn {
    atomic_bool stop;
    atomic_ullong fired;
};

static void fire_while_reenabled(void *arg, unsigned index)
{
    (void)index;
    struct churn *c = arg;
    char buf[16];
    while (!atomic_load(&c->stop)) {
        if (errinj_inject_exception("tm.churn", -EIO) != 0)
            atomic_fetch_add(&c->fired, 1);
        (void)errinj_parameter("tm.churn", "k", buf, sizeof(buf));
    }
}

/* Lock-free fires read the term and parameters of an enable that the next enable frees: each
 * enable waits for the threads inside their read windows (under ASan a freed term would show). */
static void reenabling_under_racing_fires_frees_nothing_in_use(void **state)
{
    (void)state;
    struct churn c = {0};
    struct crew firers;
    assert_int_equal(enable_term("tm.churn", "50%return(-1)", 1), 0);
    crew_start(&firers, 3, fire_while_reenabled, &c);
    static const char *const terms[] = {"50%return(-1)", "3*return(-2)->off", "10%2*return(-3)->on", NULL};
    for (int i = 0; i < 2000; i++) {
        const char *params[] = {"k", i % 2 ? "odd" : "even", NULL};
        errinj_enable_opts opts = {.term = terms[i % 4], .seed = (uint64_t)i + 1, .params = i % 3 ? params : NULL};
        assert_int_equal(errinj_enable_with("tm.churn", &opts), 0);
        if (i % 50 == 0)
            errinj_disable("tm.churn");
    }
    /* The firing threads really ran against an enabled injection (a loaded machine may have let
     * the loop above finish first). */
    assert_int_equal(enable_term("tm.churn", "return(-4)", 1), 0);
    assert_true(WAIT_UNTIL(atomic_load(&c.fired) > 0, WAIT_S));
    atomic_store(&c.stop, true);
    crew_join(&firers);
}

/* ---- actions at each point type ----------------------------------------------------------------- */

static int counting_handler(errinj_handler *h, void *arg)
{
    (void)h;
    return ++*(int *)arg;
}

static void flag_lambda(void *arg)
{
    *(int *)arg = 1;
}

static void return_skips_the_points_own_action_and_returns_v(void **state)
{
    (void)state;
    int called = 0;
    assert_int_equal(enable_term("tm.ret_exc", "return(-28)", 0), 0);
    assert_int_equal(ERRINJ_EXCEPTION("tm.ret_exc", -EIO), -28);
    assert_int_equal(errinj_inject_exception("tm.ret_exc", -EIO), -28);
    assert_int_equal(enable_term("tm.ret_h", "return(5)", 0), 0);
    assert_int_equal(ERRINJ_HANDLER("tm.ret_h", counting_handler, &called), 5);
    assert_int_equal(called, 0);
    assert_int_equal(enable_term("tm.ret_w", "return(-3)", 0), 0);
    assert_int_equal(ERRINJ_WAIT_FOR_MESSAGE("tm.ret_w", ERRINJ_FOREVER), -3);
    assert_int_equal(enable_term("tm.ret_e", "1*return(1)->1*return(0)", 0), 0);
    assert_true(ERRINJ_ENTER("tm.ret_e"));
    assert_false(ERRINJ_ENTER("tm.ret_e"));
    assert_int_equal(errinj_enters("tm.ret_e"), 2); /* return(0) still counts and publishes */
    assert_int_equal(enable_term("tm.ret_s", "return(1)", 0), 0);
    double t0 = test_now();
    ERRINJ_SLEEP("tm.ret_s", 100000);
    assert_true(test_now() - t0 < 50.0);
    assert_int_equal(enable_term("tm.ret_l", "return(1)", 0), 0);
    ERRINJ_LAMBDA("tm.ret_l", flag_lambda, &called);
    assert_int_equal(called, 0);
    assert_int_equal(errinj_enters("tm.ret_l"), 1);
}

static void sleep_sleeps_then_acts_as_not_enabled(void **state)
{
    (void)state;
    int called = 0;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term("tm.sleep", "sleep(30)", 0), 0);
    double t0 = test_now();
    assert_int_equal(ERRINJ_EXCEPTION("tm.sleep", -EIO), 0);
    assert_true(test_now() - t0 >= 0.029);
    assert_int_equal(ERRINJ_HANDLER("tm.sleep", counting_handler, &called), 0);
    assert_int_equal(called, 0);
    assert_false(ERRINJ_ENTER("tm.sleep"));
    stop_recording();
    assert_int_equal(errinj_enters("tm.sleep"), 3);
    assert_int_equal(g_rec.count, 3);
    assert_string_equal(g_rec.ev[0].action, "sleep");
    assert_string_equal(g_rec.ev[0].phase, "hit");
}

static void off_counts_evaluations_but_no_enters_or_events(void **state)
{
    (void)state;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term("tm.off", "off", 0), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(ERRINJ_EXCEPTION("tm.off", -EIO), 0);
    stop_recording();
    assert_int_equal(errinj_evaluations("tm.off"), 10);
    assert_int_equal(errinj_enters("tm.off"), 0);
    assert_int_equal(g_rec.count, 0);
    assert_true(errinj_is_enabled("tm.off"));
}

struct parked {
    const char *name;
    pthread_t thread;
    int rc;
    atomic_bool done;
};

static void *park_exception(void *arg)
{
    struct parked *p = arg;
    p->rc = errinj_inject_exception(p->name, -EIO);
    atomic_store(&p->done, true);
    return NULL;
}

static void pause_parks_until_a_message_or_a_disable(void **state)
{
    (void)state;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term("tm.pause", "pause", 0), 0);
    struct parked p = {.name = "tm.pause", .rc = 99};
    pthread_create(&p.thread, NULL, park_exception, &p);
    assert_true(WAIT_UNTIL(errinj_waiters("tm.pause") == 1, WAIT_S));
    assert_false(atomic_load(&p.done));
    errinj_message("tm.pause");
    pthread_join(p.thread, NULL);
    assert_int_equal(p.rc, 0); /* then as if not enabled */
    /* A message counts for the whole enable, as for wait-for-message: enable again, and this
     * time a disable releases it. */
    errinj_disable("tm.pause");
    assert_int_equal(enable_term("tm.pause", "pause", 0), 0);
    p = (struct parked){.name = "tm.pause", .rc = 99};
    pthread_create(&p.thread, NULL, park_exception, &p);
    assert_true(WAIT_UNTIL(errinj_waiters("tm.pause") == 1, WAIT_S));
    errinj_disable("tm.pause");
    pthread_join(p.thread, NULL);
    assert_int_equal(p.rc, 0);
    stop_recording();
    static const char *const phases[] = {"hit", "waiting", "released", "hit", "waiting", "released"};
    assert_int_equal(g_rec.count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(g_rec.ev[i].phase, phases[i]);
        assert_string_equal(g_rec.ev[i].action, "pause");
        assert_int_equal(g_rec.ev[i].eval, 1);
    }
}

static void a_last_pause_stays_reachable_by_messages(void **state)
{
    (void)state;
    assert_int_equal(enable_term("tm.pause1", "1*pause", 0), 0);
    struct parked p = {.name = "tm.pause1", .rc = 99};
    pthread_create(&p.thread, NULL, park_exception, &p);
    assert_true(WAIT_UNTIL(errinj_waiters("tm.pause1") == 1, WAIT_S));
    assert_false(errinj_is_enabled("tm.pause1")); /* its only step ran out */
    errinj_message("tm.pause1");
    pthread_join(p.thread, NULL);
    assert_int_equal(p.rc, 0);
}

static void write_event_to_fd(const errinj_event *ev, void *arg)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "%s %s %s %llu\n", ev->injection, ev->phase, ev->action,
                     (unsigned long long)ev->eval);
    if (write(*(int *)arg, line, (size_t)n) != n)
        _exit(4);
}

static void abort_publishes_the_hit_then_aborts(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        errinj_disable_all();
        errinj_subscription *sub;
        errinj_subscribe(write_event_to_fd, &fds[1], &sub);
        signal(SIGABRT, SIG_DFL);
        enable_term("tm.abort", "2*off->abort", 0);
        for (int i = 0; i < 3; i++)
            errinj_inject_enter("tm.abort");
        /* Never reached: the third evaluation aborted. Say what was seen instead. */
        _exit(3);
    }
    close(fds[1]);
    char seen[256] = "";
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(seen) - 1 && (n = read(fds[0], seen + got, sizeof(seen) - 1 - got)) > 0)
        got += (size_t)n;
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    assert_string_equal(seen, "tm.abort hit abort 3\n");
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("the child did not abort: status %#x", status);
}

static void events_carry_action_and_eval_and_reenable_restarts_eval(void **state)
{
    (void)state;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(enable_term("tm.ev", "1*off->1*return(4)->on", 0), 0);
    assert_int_equal(ERRINJ_EXCEPTION("tm.ev", -EIO), 0);
    assert_int_equal(ERRINJ_EXCEPTION("tm.ev", -EIO), 4);
    assert_int_equal(ERRINJ_EXCEPTION("tm.ev", -EIO), -EIO);
    assert_int_equal(errinj_enters("tm.ev"), 2);
    /* Re-enabling an enabled injection: evaluations start from 1 again, enters are kept. */
    assert_int_equal(enable_term("tm.ev", "1*return(6)", 0), 0);
    assert_int_equal(errinj_evaluations("tm.ev"), 0);
    assert_int_equal(ERRINJ_EXCEPTION("tm.ev", -EIO), 6);
    stop_recording();
    assert_int_equal(errinj_enters("tm.ev"), 3);
    assert_int_equal(errinj_evaluations("tm.ev"), 1);
    assert_int_equal(g_rec.count, 3);
    assert_string_equal(g_rec.ev[0].action, "return");
    assert_int_equal(g_rec.ev[0].eval, 2);
    assert_string_equal(g_rec.ev[1].action, "on");
    assert_int_equal(g_rec.ev[1].eval, 3);
    assert_string_equal(g_rec.ev[2].action, "return");
    assert_int_equal(g_rec.ev[2].eval, 1);
    assert_int_equal(g_rec.ev[2].enters, 3);
}

static void plain_enables_number_their_evaluations_too(void **state)
{
    (void)state;
    errinj_subscribe(recorder_cb, &g_rec, &g_sub);
    assert_int_equal(errinj_enable("tm.plain", false, NULL), 0);
    assert_true(ERRINJ_ENTER("tm.plain"));
    assert_true(ERRINJ_ENTER("tm.plain"));
    assert_int_equal(errinj_enable("tm.plain1", true, NULL), 0);
    assert_true(ERRINJ_ENTER("tm.plain1"));
    assert_false(ERRINJ_ENTER("tm.plain1"));
    stop_recording();
    assert_int_equal(errinj_evaluations("tm.plain"), 2);
    assert_int_equal(errinj_evaluations("tm.plain1"), 1);
    assert_int_equal(errinj_evaluations("tm.never_enabled"), 0);
    assert_int_equal(g_rec.count, 3);
    assert_string_equal(g_rec.ev[1].action, "on");
    assert_int_equal(g_rec.ev[1].eval, 2);
    assert_int_equal(g_rec.ev[2].eval, 1);
}

static void seeds_parse_as_unsigned_64_bit(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(errinj__seed_parse("0", &v) && v == 0);
    assert_true(errinj__seed_parse("18446744073709551615", &v) && v == UINT64_MAX);
    assert_true(errinj__seed_parse("0xff", &v) && v == 255);
    assert_false(errinj__seed_parse("18446744073709551616", &v));
    assert_false(errinj__seed_parse("-1", &v));
    assert_false(errinj__seed_parse("", &v));
    assert_false(errinj__seed_parse("0x", &v));
    assert_false(errinj__seed_parse("12a", &v));
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--pattern") == 0)
        return print_pattern(argv[2], argv[3], argv[4]);
    pthread_mutex_init(&g_rec.mu, NULL);
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup(fn, reset)
        T(accepted_terms_parse),
        T(every_malformed_term_is_refused_with_its_offset),
        T(too_long_and_too_many_steps_are_refused),
        T(parsed_steps_hold_what_the_text_says),
        T(a_bad_term_changes_nothing),
        T(draws_are_a_pure_function_of_seed_name_and_eval),
        T(a_counted_percentage_step_ends_at_its_count_th_success),
        T(two_counted_percentage_steps_each_count_their_own_successes),
        T(count_fires_exactly_under_eight_racing_threads),
        T(skip_then_fire_once_fires_on_the_third_evaluation_under_races),
        T(skip_then_fire_once_on_one_thread),
        T(one_seed_gives_one_pattern_whatever_the_threads),
        T(one_seed_gives_one_pattern_in_two_processes),
        T(reenabling_under_racing_fires_frees_nothing_in_use),
        T(return_skips_the_points_own_action_and_returns_v),
        T(sleep_sleeps_then_acts_as_not_enabled),
        T(off_counts_evaluations_but_no_enters_or_events),
        T(pause_parks_until_a_message_or_a_disable),
        T(a_last_pause_stays_reachable_by_messages),
        T(abort_publishes_the_hit_then_aborts),
        T(events_carry_action_and_eval_and_reenable_restarts_eval),
        T(plain_enables_number_their_evaluations_too),
        T(seeds_parse_as_unsigned_64_bit),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
