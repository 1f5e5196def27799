/*
 * test_state.c - errinj_state_get() and errinj_state_release(), the public read of what an
 * injection is enabled with (the REST API's GET .../injection/{name} is built on it): each
 * field, names not enabled, bad arguments, and strings that outlive later enables and disables.
 */
#include <errinj.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int reset(void **state)
{
    (void)state;
    errinj_disable_all();
    return 0;
}

static void expect_zeroed(const errinj_state *st)
{
    assert_false(st->enabled);
    assert_false(st->one_shot);
    assert_null(st->term);
    assert_int_equal(st->seed, 0);
    assert_null(st->parameters);
    assert_null(st->priv);
}

static void a_name_never_enabled_reads_not_enabled(void **state)
{
    (void)state;
    errinj_state st;
    memset(&st, 0xa5, sizeof(st));
    assert_int_equal(errinj_state_get("state.never", &st), 0);
    expect_zeroed(&st);
    errinj_state_release(&st);
}

static void a_disabled_name_reads_not_enabled(void **state)
{
    (void)state;
    const char *params[] = {"k", "v", NULL};
    assert_int_equal(errinj_enable("state.off", true, params), 0);
    assert_int_equal(errinj_disable("state.off"), 0);
    errinj_state st;
    assert_int_equal(errinj_state_get("state.off", &st), 0);
    expect_zeroed(&st);
}

static void bad_arguments_are_einval_and_zero_the_state(void **state)
{
    (void)state;
    errinj_state st;
    memset(&st, 0xa5, sizeof(st));
    assert_int_equal(errinj_state_get(NULL, &st), ERRINJ_EINVAL);
    expect_zeroed(&st);
    memset(&st, 0xa5, sizeof(st));
    assert_int_equal(errinj_state_get("", &st), ERRINJ_EINVAL);
    expect_zeroed(&st);
    assert_int_equal(errinj_state_get("bad\nname", &st), ERRINJ_EINVAL);
    expect_zeroed(&st);
    assert_int_equal(errinj_state_get("state.x", NULL), ERRINJ_EINVAL);
    errinj_state_release(NULL); /* ignored */
}

static void reads_one_shot_and_parameters_in_order(void **state)
{
    (void)state;
    const char *params[] = {"b", "2", "a", "1", NULL};
    assert_int_equal(errinj_enable("state.params", true, params), 0);
    errinj_state st;
    assert_int_equal(errinj_state_get("state.params", &st), 0);
    assert_true(st.enabled);
    assert_true(st.one_shot);
    assert_null(st.term); /* no term: a one-shot acts as 1*on */
    assert_non_null(st.parameters);
    assert_string_equal(st.parameters[0], "b");
    assert_string_equal(st.parameters[1], "2");
    assert_string_equal(st.parameters[2], "a");
    assert_string_equal(st.parameters[3], "1");
    assert_null(st.parameters[4]);
    errinj_state_release(&st);
    expect_zeroed(&st);
    errinj_state_release(&st); /* a zeroed state is ignored */
}

static void reads_the_term_and_the_seed(void **state)
{
    (void)state;
    errinj_enable_opts opts = {.term = "25%3*return(7)->off", .seed = 1234};
    assert_int_equal(errinj_enable_with("state.term", &opts), 0);
    errinj_state st;
    assert_int_equal(errinj_state_get("state.term", &st), 0);
    assert_true(st.enabled);
    assert_false(st.one_shot);
    assert_string_equal(st.term, "25%3*return(7)->off");
    assert_int_equal(st.seed, 1234);
    assert_non_null(st.parameters);
    assert_null(st.parameters[0]);
    errinj_state_release(&st);
}

static void strings_outlive_later_enables_and_disables(void **state)
{
    (void)state;
    const char *first[] = {"key", "first value", NULL};
    errinj_enable_opts opts = {.term = "2*on", .seed = 9, .params = first};
    assert_int_equal(errinj_enable_with("state.keep", &opts), 0);
    errinj_state st;
    assert_int_equal(errinj_state_get("state.keep", &st), 0);
    /* Replace both, then disable: the state read before still shows what it read. */
    const char *second[] = {"key", "second", "other", "x", NULL};
    errinj_enable_opts again = {.term = "off", .params = second};
    for (int i = 0; i < 3; i++)
        assert_int_equal(errinj_enable_with("state.keep", &again), 0);
    assert_int_equal(errinj_disable("state.keep"), 0);
    assert_string_equal(st.term, "2*on");
    assert_int_equal(st.seed, 9);
    assert_string_equal(st.parameters[0], "key");
    assert_string_equal(st.parameters[1], "first value");
    assert_null(st.parameters[2]);
    errinj_state_release(&st);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(a_name_never_enabled_reads_not_enabled, reset),
        cmocka_unit_test_setup(a_disabled_name_reads_not_enabled, reset),
        cmocka_unit_test_setup(bad_arguments_are_einval_and_zero_the_state, reset),
        cmocka_unit_test_setup(reads_one_shot_and_parameters_in_order, reset),
        cmocka_unit_test_setup(reads_the_term_and_the_seed, reset),
        cmocka_unit_test_setup(strings_outlive_later_enables_and_disables, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
