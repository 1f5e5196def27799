/*
 * test_registry.c - control of injections by name (errinj(3)): enable, disable, counters,
 * parameters, the list of enabled names, the catalogue, name rules, sites in shared libraries
 * loaded later, and the forgetting of disabled run-time names past the kept number, also while
 * other threads fire them (run under ASan and TSan too).
 */
#include "helpers.h"
#include "coverage.h"
#include "entry.h"
#include "registry.h"
#include "threads.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int reset(void **state)
{
    (void)state;
    errinj_disable_all();
    return 0;
}

static bool fire_reg_point(void)
{
    return ERRINJ_ENTER("reg_point");
}

static void enable_then_disable_switches_the_site(void **state)
{
    (void)state;
    assert_false(errinj_is_enabled("reg_point"));
    assert_false(fire_reg_point());
    assert_int_equal(errinj_enable("reg_point", false, NULL), 0);
    assert_true(errinj_is_enabled("reg_point"));
    assert_true(fire_reg_point());
    assert_true(fire_reg_point());
    assert_int_equal(errinj_enters("reg_point"), 2);
    assert_int_equal(errinj_disable("reg_point"), 0);
    assert_false(errinj_is_enabled("reg_point"));
    assert_false(fire_reg_point());
    assert_int_equal(errinj_enters("reg_point"), 2); /* kept after disable */
}

static void fresh_enable_resets_counters_and_reenable_keeps_them(void **state)
{
    (void)state;
    errinj_enable("reg_point", false, NULL);
    fire_reg_point();
    fire_reg_point();
    /* Enabling an enabled name replaces parameters and one_shot, keeps counters. */
    const char *params[] = {"k", "v2", NULL};
    assert_int_equal(errinj_enable("reg_point", true, params), 0);
    assert_int_equal(errinj_enters("reg_point"), 2);
    char buf[16];
    assert_int_equal(errinj_parameter("reg_point", "k", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "v2");
    assert_true(fire_reg_point()); /* now one-shot: fires once more, then disables itself */
    assert_false(fire_reg_point());
    assert_int_equal(errinj_enters("reg_point"), 3);
    /* A fresh enable starts from zero. */
    errinj_enable("reg_point", false, NULL);
    assert_int_equal(errinj_enters("reg_point"), 0);
    assert_int_equal(errinj_parameter("reg_point", "k", buf, sizeof(buf)), ERRINJ_ENOENT);
}

static void one_shot_enters_reads_one_after_self_disable(void **state)
{
    (void)state;
    errinj_enable("reg_point", true, NULL);
    assert_true(fire_reg_point());
    assert_false(errinj_is_enabled("reg_point"));
    assert_false(fire_reg_point());
    assert_int_equal(errinj_enters("reg_point"), 1);
}

static void disabling_unknown_names_is_not_an_error(void **state)
{
    (void)state;
    assert_int_equal(errinj_disable("never_seen_anywhere"), 0);
    assert_int_equal(errinj_message("never_seen_anywhere"), 0);
    assert_int_equal(errinj_enters("never_seen_anywhere"), 0);
    assert_int_equal(errinj_waiters("never_seen_anywhere"), 0);
    assert_false(errinj_is_enabled("never_seen_anywhere"));
}

static void bad_names_are_refused_and_change_nothing(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    const char *bad[] = {"", long_name, "tab\there", "del\x7f", "c1\xc2\x85", "bad\xff", "overlong\xc0\xaf",
                         "surrogate\xed\xa0\x80", "cut\xe2\x82", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        assert_int_equal(errinj_enable(bad[i], false, NULL), ERRINJ_EINVAL);
        assert_int_equal(errinj_disable(bad[i]), ERRINJ_EINVAL);
        assert_int_equal(errinj_message(bad[i]), ERRINJ_EINVAL);
        assert_false(errinj_is_enabled(bad[i]));
    }
    assert_int_equal(errinj_enable(NULL, false, NULL), ERRINJ_EINVAL);
    long_name[255] = '\0'; /* 255 bytes is the longest valid name */
    assert_int_equal(errinj_enable(long_name, false, NULL), 0);
    assert_int_equal(errinj_enable("名前/with spaces", false, NULL), 0);
    assert_true(errinj_is_enabled("名前/with spaces"));
}

static void odd_parameter_lists_are_refused(void **state)
{
    (void)state;
    const char *odd[] = {"k", NULL};
    assert_int_equal(errinj_enable("reg_odd", false, odd), ERRINJ_EINVAL);
    assert_false(errinj_is_enabled("reg_odd"));
}

/* A key given twice keeps its first value, with few pairs and with many (hashed). */
static void a_key_given_twice_keeps_its_first_value(void **state)
{
    (void)state;
    for (int pairs = 3; pairs <= 3000; pairs *= 10) {
        const char **kv = calloc(2 * (size_t)pairs + 1, sizeof(*kv));
        char (*text)[2][16] = calloc((size_t)pairs, sizeof(*text));
        assert_non_null(kv);
        assert_non_null(text);
        for (int i = 0; i < pairs; i++) {
            snprintf(text[i][0], 16, "k%d", i % (pairs / 3 + 1)); /* each key about three times */
            snprintf(text[i][1], 16, "v%d", i);
            kv[2 * i] = text[i][0];
            kv[2 * i + 1] = text[i][1];
        }
        struct errinj__config *cfg = errinj__config_new(kv);
        assert_non_null(cfg);
        assert_int_equal(cfg->pairs, (size_t)(pairs / 3 + 1));
        for (int i = 0; i <= pairs / 3; i++) {
            char key[16], first[16];
            snprintf(key, sizeof(key), "k%d", i);
            snprintf(first, sizeof(first), "v%d", i);
            assert_string_equal(errinj__config_get(cfg, key), first);
            assert_string_equal(cfg->kv[2 * i], key); /* in the order given */
        }
        errinj__config_unref(cfg);
        free(text);
        free(kv);
    }
}

static void parameter_copies_values_and_reports_missing_and_short_buffers(void **state)
{
    (void)state;
    const char *params[] = {"key", "value", "empty", "", NULL};
    errinj_enable("reg_param", false, params);
    char buf[8];
    assert_int_equal(errinj_parameter("reg_param", "key", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "value");
    assert_int_equal(errinj_parameter("reg_param", "empty", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(errinj_parameter("reg_param", "nope", buf, sizeof(buf)), ERRINJ_ENOENT);
    assert_int_equal(errinj_parameter("reg_param", "key", buf, 3), ERRINJ_ERANGE);
    assert_string_equal(buf, "va"); /* truncated, terminated */
    errinj_disable("reg_param");
    assert_int_equal(errinj_parameter("reg_param", "key", buf, sizeof(buf)), ERRINJ_ENOENT);
}

static void append_name(const char *name, void *arg)
{
    char *out = arg;
    strcat(out, name);
    strcat(out, ";");
}

static void enabled_list_is_sorted_and_disable_all_empties_it(void **state)
{
    (void)state;
    errinj_enable("reg_c", false, NULL);
    errinj_enable("reg_a", false, NULL);
    errinj_enable("reg_b", true, NULL);
    char out[256] = "";
    errinj_list_enabled(append_name, out);
    assert_string_equal(out, "reg_a;reg_b;reg_c;");
    errinj_disable_all();
    out[0] = '\0';
    errinj_list_enabled(append_name, out);
    assert_string_equal(out, "");
}

struct catalogue {
    int reg_point_sites, sleep_sites;
    int line;
    char file[256];
    errinj_type type;
};

static void catalogue_one(const errinj_point *p, void *arg)
{
    struct catalogue *c = arg;
    if (strcmp(p->name, "reg_point") == 0) {
        c->reg_point_sites++;
        c->line = p->line;
        c->type = p->type;
        snprintf(c->file, sizeof(c->file), "%s", p->file);
    }
    if (strcmp(p->name, "reg_never_runs") == 0 && p->type == ERRINJ_TYPE_SLEEP)
        c->sleep_sites++;
}

/* Never called: with external linkage the compiler must emit it, and so its site. (A point in a
 * static function the compiler drops as unused is dropped with it.) */
void never_called(void);
void never_called(void)
{
    ERRINJ_SLEEP("reg_never_runs", 1);
}

static void catalogue_lists_points_that_never_ran(void **state)
{
    (void)state;
    struct catalogue c = {0};
    errinj_list_points(catalogue_one, &c);
    assert_int_equal(c.sleep_sites, 1);
    assert_int_equal(c.reg_point_sites, 1);
    assert_int_equal(c.type, ERRINJ_TYPE_ENTER);
    assert_non_null(strstr(c.file, "test_registry.c"));
    assert_true(c.line > 0);
}

static void count_named(const errinj_point *p, void *arg)
{
    struct { const char *name; int n; } *want = arg;
    if (strcmp(p->name, want->name) == 0)
        want->n++;
}

static int listed(const char *name)
{
    struct { const char *name; int n; } want = {name, 0};
    errinj_list_points(count_named, &want);
    return want.n;
}

/* Runs fire() with stderr sent to a file and returns what it wrote there. */
static char *stderr_of(bool (*fire)(struct errinj_site *), struct errinj_site *site, bool *fired)
{
    static char text[1024];
    fflush(stderr);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    int saved = dup(2);
    dup2(fileno(capture), 2);
    *fired = fire(site);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(capture);
    size_t n = fread(text, 1, sizeof(text) - 1, capture);
    text[n] = '\0';
    fclose(capture);
    return text;
}

static bool fire_enter_site(struct errinj_site *site)
{
    return errinj__fire_enter(site);
}

/* A record as the x86-64 asm emits it (active = 1) that no constructor listed: what a toolchain
 * that loses the errinj_sites section leaves. Its first run lists it, fires it and says so. */
static void a_site_missing_from_the_catalogue_is_listed_when_it_runs_and_reported(void **state)
{
    (void)state;
    static struct errinj_site lost = {"reg_lost_site", "lost.c", 7, ERRINJ_TYPE_ENTER, (void *)1, NULL};
    assert_int_equal(listed("reg_lost_site"), 0);
    assert_int_equal(errinj_enable("reg_lost_site", false, NULL), 0);
    bool fired = false;
    const char *err = stderr_of(fire_enter_site, &lost, &fired);
    assert_true(fired);
    assert_non_null(strstr(err, "\"reg_lost_site\" at lost.c:7 ran but was not in the catalogue"));
    assert_int_equal(listed("reg_lost_site"), 1);
    assert_ptr_equal(__atomic_load_n(&lost.active, __ATOMIC_ACQUIRE), errinj__entry_find("reg_lost_site"));
    errinj_disable("reg_lost_site");
    assert_null(__atomic_load_n(&lost.active, __ATOMIC_ACQUIRE));
    assert_false(errinj__fire_enter(&lost));
    errinj__site_unlist(&lost);
}

/* A C++ record that runs before its module's constructors listed it (static initialisation
 * order) is listed and fires without a warning. */
static void a_cxx_site_running_before_its_listing_fires_quietly(void **state)
{
    (void)state;
    static struct errinj_site early = {"reg_early_cxx", "early.cpp", 3, ERRINJ_TYPE_ENTER, &errinj__unlisted[1], NULL};
    assert_int_equal(errinj_enable("reg_early_cxx", false, NULL), 0);
    bool fired = false;
    const char *err = stderr_of(fire_enter_site, &early, &fired);
    assert_true(fired);
    assert_null(strstr(err, "catalogue"));
    errinj__site_list(&early); /* its constructor, later: listed once */
    assert_int_equal(listed("reg_early_cxx"), 1);
    errinj__site_unlist(&early);
    assert_int_equal(listed("reg_early_cxx"), 0);
}

typedef bool (*plugin_fn)(void);

static void sites_in_a_library_loaded_later_follow_the_enabled_state(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("plugin_point", false, NULL), 0); /* before the library exists */
    void *lib = dlopen(PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    plugin_fn fire = (plugin_fn)dlsym(lib, "plugin_enter");
    assert_non_null(fire);
    assert_true(fire());
    assert_int_equal(errinj_enters("plugin_point"), 1);
    errinj_disable("plugin_point");
    assert_false(fire());
    errinj_enable("plugin_point", false, NULL);
    assert_true(fire());
    assert_int_equal(errinj_enters("plugin_point"), 1); /* the fresh enable restarted the count */
    dlclose(lib);
    /* After unloading, enabling and listing must not touch the unloaded sites. */
    errinj_disable("plugin_point");
    errinj_enable("plugin_point", false, NULL);
    struct catalogue c = {0};
    errinj_list_points(catalogue_one, &c);
    assert_int_equal(c.reg_point_sites, 1);
}

static void plugin_point_seen(const errinj_point *p, void *arg)
{
    if (strcmp(p->name, "plugin_point") == 0)
        (*(int *)arg)++;
}

static void catalogue_gains_and_loses_a_library_sites(void **state)
{
    (void)state;
    int n = 0;
    errinj_list_points(plugin_point_seen, &n);
    assert_int_equal(n, 0);
    void *lib = dlopen(PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    errinj_list_points(plugin_point_seen, &n);
    assert_int_equal(n, 1);
    dlclose(lib);
    n = 0;
    errinj_list_points(plugin_point_seen, &n);
    assert_int_equal(n, 0);
}

static void thousands_of_names_enable_and_disable(void **state)
{
    (void)state;
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "many_%d", i);
        assert_int_equal(errinj_enable(name, false, NULL), 0);
    }
    for (int i = 0; i < 5000; i += 499) {
        snprintf(name, sizeof(name), "many_%d", i);
        assert_true(errinj_is_enabled(name));
        assert_true(errinj_inject_enter(name));
    }
    errinj_disable_all();
    for (int i = 0; i < 5000; i += 499) {
        snprintf(name, sizeof(name), "many_%d", i);
        assert_false(errinj_is_enabled(name));
    }
    assert_int_equal(atomic_load(&errinj__enabled_count), 0);
}

struct racer {
    int rounds;
    const char *name;
};

/* Thread 0 enables and disables the name; the others fire its site meanwhile. */
static void enable_disable_or_fire(void *arg, unsigned index)
{
    struct racer *r = arg;
    if (index == 0) {
        for (int i = 0; i < r->rounds; i++) {
            errinj_enable(r->name, i % 2 == 0, NULL);
            errinj_disable(r->name);
        }
    } else {
        for (int i = 0; i < r->rounds * 4; i++)
            (void)fire_reg_point();
    }
}

static void enable_disable_races_firing_threads_safely(void **state)
{
    (void)state;
    struct racer r = {2000, "reg_point"};
    struct crew racers;
    crew_start(&racers, 3, enable_disable_or_fire, &r);
    crew_join(&racers);
    assert_false(errinj_is_enabled("reg_point"));
    assert_false(fire_reg_point());
}

/* ---- reclaiming disabled run-time names ---------------------------------------------------- */

/* Enables and disables `count` distinct names prefix_0 ... */
static void churn(const char *prefix, int count)
{
    char name[64];
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof(name), "%s_%d", prefix, i);
        assert_int_equal(errinj_enable(name, false, NULL), 0);
        assert_int_equal(errinj_disable(name), 0);
    }
}

static void count_run_time_rows(const struct errinj__coverage_row *row, void *arg)
{
    if (row->type == NULL)
        (*(size_t *)arg)++;
}

static size_t run_time_coverage_rows(void)
{
    size_t n = 0;
    errinj__coverage_each(count_run_time_rows, &n);
    return n;
}

static void only_the_most_recent_disabled_run_time_names_are_kept(void **state)
{
    (void)state;
    errinj__coverage_reset();
    /* A one-shot that fired keeps its count of 1 while it is among the kept names. */
    assert_int_equal(errinj_enable("recl_first", true, NULL), 0);
    assert_true(errinj_inject_enter("recl_first"));
    assert_false(errinj_is_enabled("recl_first"));
    assert_int_equal(errinj_enters("recl_first"), 1);
    churn("recl_keep", ERRINJ__KEPT_NAMES - 1);
    assert_int_equal(errinj_enters("recl_first"), 1);
    assert_int_equal(run_time_coverage_rows(), ERRINJ__KEPT_NAMES);
    /* One newer name pushes the oldest one out: its counters are gone, not wrong. */
    churn("recl_more", 1);
    assert_null(errinj__entry_find("recl_first"));
    assert_int_equal(errinj_enters("recl_first"), 0);
    assert_non_null(errinj__entry_find("recl_keep_0"));
    assert_non_null(errinj__entry_find("recl_more_0"));
    assert_int_equal(run_time_coverage_rows(), ERRINJ__KEPT_NAMES);
    /* Many more: still exactly the kept number, the newest ones. */
    churn("recl_flood", 3 * ERRINJ__KEPT_NAMES);
    assert_int_equal(run_time_coverage_rows(), ERRINJ__KEPT_NAMES);
    assert_null(errinj__entry_find("recl_keep_9998"));
    char newest[64];
    snprintf(newest, sizeof(newest), "recl_flood_%d", 3 * ERRINJ__KEPT_NAMES - 1);
    assert_non_null(errinj__entry_find(newest));
    snprintf(newest, sizeof(newest), "recl_flood_%d", 2 * ERRINJ__KEPT_NAMES);
    assert_non_null(errinj__entry_find(newest));
    snprintf(newest, sizeof(newest), "recl_flood_%d", 2 * ERRINJ__KEPT_NAMES - 1);
    assert_null(errinj__entry_find(newest));
    /* A reclaimed name can be enabled again, from fresh counters. */
    assert_int_equal(errinj_enable("recl_first", false, NULL), 0);
    assert_true(errinj_inject_enter("recl_first"));
    assert_int_equal(errinj_enters("recl_first"), 1);
}

static void compiled_and_enabled_names_are_never_reclaimed(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("reg_point", false, NULL), 0);
    assert_true(fire_reg_point());
    assert_int_equal(errinj_disable("reg_point"), 0);
    struct errinj__entry *compiled = errinj__entry_find("reg_point");
    assert_non_null(compiled);
    const char *params[] = {"k", "v", NULL};
    assert_int_equal(errinj_enable("recl_still_on", false, params), 0);
    churn("recl_pass", ERRINJ__KEPT_NAMES + 100);
    assert_ptr_equal(errinj__entry_find("reg_point"), compiled);
    assert_int_equal(errinj_enters("reg_point"), 1);
    assert_true(errinj_is_enabled("recl_still_on"));
    assert_true(errinj_inject_enter("recl_still_on"));
    char value[8];
    assert_int_equal(errinj_parameter("recl_still_on", "k", value, sizeof(value)), 0);
    assert_string_equal(value, "v");
    assert_int_equal(errinj_enable("reg_point", false, NULL), 0);
    assert_true(fire_reg_point());
}

static void disable_drops_the_parameters_and_reenable_brings_new_ones(void **state)
{
    (void)state;
    const char *params[] = {"big", "value", NULL};
    assert_int_equal(errinj_enable("recl_params", false, params), 0);
    struct errinj__entry *e = errinj__entry_find("recl_params");
    assert_int_equal(atomic_load(&e->cfg)->pairs, 1);
    assert_int_equal(errinj_disable("recl_params"), 0);
    /* What a disabled name keeps is its counters: not its parameters. */
    assert_int_equal(atomic_load(&e->cfg)->pairs, 0);
    char value[8];
    assert_int_equal(errinj_parameter("recl_params", "big", value, sizeof(value)), ERRINJ_ENOENT);
    const char *other[] = {"k2", "v2", NULL};
    assert_int_equal(errinj_enable("recl_params", false, other), 0);
    assert_int_equal(errinj_parameter("recl_params", "k2", value, sizeof(value)), 0);
    assert_string_equal(value, "v2");
}

struct parked {
    const char *name;
    int rc;
};

static void *park_one_shot(void *arg)
{
    struct parked *p = arg;
    p->rc = errinj_inject_wait_for_message(p->name, 30000);
    return NULL;
}

static void a_running_one_shot_handler_stays_reachable_by_messages(void **state)
{
    (void)state;
    struct parked p = {"recl_parked", -1};
    assert_int_equal(errinj_enable(p.name, true, NULL), 0);
    pthread_t t;
    pthread_create(&t, NULL, park_one_shot, &p);
    assert_true(WAIT_UNTIL(errinj_waiters(p.name) == 1, 10.0));
    assert_false(errinj_is_enabled(p.name)); /* the one-shot disabled itself */
    churn("recl_around", ERRINJ__KEPT_NAMES + 100);
    assert_int_equal(errinj_message(p.name), 0);
    pthread_join(t, NULL);
    assert_int_equal(p.rc, 0); /* released by the message, not by its timeout */
}

/* ---- reclaiming while other threads fire ---- */

#define RACE_NAMES 4
static const char *const race_names[RACE_NAMES] = {"race_a", "race_b", "race_c", "race_d"};

struct race {
    atomic_bool stop;
    atomic_ulong fires;
    atomic_ulong bad;
    atomic_uint round;    /* the control thread's round */
    atomic_uint released; /* handlers of rounds up to this one may return */
    atomic_int holding;   /* handlers waiting for their round's release */
};

static int race_handler(errinj_handler *h, void *arg)
{
    struct race *r = arg;
    /* Stay in the fire until the control thread has disabled the name and reclaimed its entry
     * from the table: what the fire reads must still be there. */
    unsigned round = atomic_load(&r->round);
    atomic_fetch_add(&r->holding, 1);
    double deadline = test_now() + 30;
    while (atomic_load(&r->released) < round && !atomic_load(&r->stop) && test_now() < deadline)
        sched_yield();
    const char *name = errinj_handler_name(h);
    const char *v = errinj_handler_get(h, "k");
    if (name == NULL || strncmp(name, "race_", 5) != 0 || v == NULL || strcmp(v, "v") != 0)
        atomic_fetch_add(&r->bad, 1);
    atomic_fetch_add(&r->fires, 1);
    atomic_fetch_sub(&r->holding, 1);
    return 0;
}

static void *race_fire(void *arg)
{
    struct race *r = arg;
    for (unsigned i = 0; !atomic_load(&r->stop); i++) {
        const char *name = race_names[i % RACE_NAMES];
        switch (i % 4) {
        case 0:
            if (errinj_inject_enter(name))
                atomic_fetch_add(&r->fires, 1);
            break;
        case 1:
            errinj_inject_handler(name, race_handler, r);
            break;
        case 2:
            if (errinj_inject_exception(name, 5) == 5)
                atomic_fetch_add(&r->fires, 1);
            break;
        default:
            /* Parks on the entry until the disable releases it (or 5 ms pass). */
            errinj_inject_wait_for_message(name, 5);
            break;
        }
    }
    return NULL;
}

static void reclaiming_names_while_threads_fire_them_is_safe(void **state)
{
    (void)state;
    errinj_set_log(NULL, NULL);
    struct race r = {0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, race_fire, &r);
    const char *params[] = {"k", "v", NULL};
    char name[64];
    unsigned rounds = 4;
    int reclaimed = 0;
    for (unsigned round = 1; round <= rounds; round++) {
        atomic_store(&r.round, round);
        for (int k = 0; k < RACE_NAMES; k++)
            assert_int_equal(errinj_enable(race_names[k], false, params), 0);
        /* Fires in progress (a handler waits for the release below), then the names go. */
        assert_true(WAIT_UNTIL(atomic_load(&r.holding) > 0, 10.0));
        for (int k = 0; k < RACE_NAMES; k++)
            assert_int_equal(errinj_disable(race_names[k]), 0);
        /* Enough newer names to push every race name out of the kept ones, and to have the
         * reclaimed entries reaped (grace period) while the handlers still hold theirs. */
        for (int i = 0; i < ERRINJ__KEPT_NAMES + 256; i++) {
            snprintf(name, sizeof(name), "race_churn_%u_%d", round, i);
            assert_int_equal(errinj_enable(name, false, NULL), 0);
            assert_int_equal(errinj_disable(name), 0);
        }
        /* Only this thread reclaims, so a lookup outside a read window is safe here. */
        for (int k = 0; k < RACE_NAMES; k++)
            reclaimed += errinj__entry_find(race_names[k]) == NULL;
        atomic_store(&r.released, round);
        assert_true(WAIT_UNTIL(atomic_load(&r.holding) == 0, 10.0));
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(reclaimed, (int)rounds * RACE_NAMES);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_true(atomic_load(&r.fires) >= rounds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(catalogue_gains_and_loses_a_library_sites, reset),
        cmocka_unit_test_setup(enable_then_disable_switches_the_site, reset),
        cmocka_unit_test_setup(fresh_enable_resets_counters_and_reenable_keeps_them, reset),
        cmocka_unit_test_setup(one_shot_enters_reads_one_after_self_disable, reset),
        cmocka_unit_test_setup(disabling_unknown_names_is_not_an_error, reset),
        cmocka_unit_test_setup(bad_names_are_refused_and_change_nothing, reset),
        cmocka_unit_test_setup(odd_parameter_lists_are_refused, reset),
        cmocka_unit_test_setup(parameter_copies_values_and_reports_missing_and_short_buffers, reset),
        cmocka_unit_test_setup(a_key_given_twice_keeps_its_first_value, reset),
        cmocka_unit_test_setup(enabled_list_is_sorted_and_disable_all_empties_it, reset),
        cmocka_unit_test_setup(catalogue_lists_points_that_never_ran, reset),
        cmocka_unit_test_setup(a_site_missing_from_the_catalogue_is_listed_when_it_runs_and_reported, reset),
        cmocka_unit_test_setup(a_cxx_site_running_before_its_listing_fires_quietly, reset),
        cmocka_unit_test_setup(sites_in_a_library_loaded_later_follow_the_enabled_state, reset),
        cmocka_unit_test_setup(thousands_of_names_enable_and_disable, reset),
        cmocka_unit_test_setup(enable_disable_races_firing_threads_safely, reset),
        cmocka_unit_test_setup(only_the_most_recent_disabled_run_time_names_are_kept, reset),
        cmocka_unit_test_setup(compiled_and_enabled_names_are_never_reclaimed, reset),
        cmocka_unit_test_setup(disable_drops_the_parameters_and_reenable_brings_new_ones, reset),
        cmocka_unit_test_setup(a_running_one_shot_handler_stays_reachable_by_messages, reset),
        cmocka_unit_test_setup(reclaiming_names_while_threads_fire_them_is_safe, reset),
    };
    errinj_set_log(NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
