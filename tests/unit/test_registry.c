/*
 * test_registry.c - control of injections by name (errinj(3)): enable, disable, counters,
 * parameters, the list of enabled names, the catalogue, name rules, and sites in shared
 * libraries loaded later.
 */
#include "helpers.h"
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
    };
    errinj_set_log(NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
