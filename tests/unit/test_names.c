/* test_names.c - error codes, type and phase names come from one list each and read as
 * documented; the parsers accept exactly those names; the injection name rule. */
#include <errinj.h>

#include "names.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void every_code_has_its_message(void **state)
{
    (void)state;
    assert_string_equal(errinj_strerror(0), "success");
    assert_string_equal(errinj_strerror(ERRINJ_ETIMEDOUT), "timed out waiting for message");
    assert_string_equal(errinj_strerror(ERRINJ_EINVAL), "invalid argument");
    assert_string_equal(errinj_strerror(ERRINJ_EINJECTED), "injected error");
    assert_int_equal(ERRINJ_ETIMEDOUT, -ETIMEDOUT);
    assert_int_equal(ERRINJ_EINVAL, -EINVAL);
#define CHECK(name, value, message) assert_string_equal(errinj_strerror(value), message);
    ERRINJ_ERRNO_MAP(CHECK)
#undef CHECK
}

static void unknown_codes_say_so(void **state)
{
    (void)state;
    assert_string_equal(errinj_strerror(-99999), "unknown error");
    assert_string_equal(errinj_strerror(12345), "unknown error");
}

static void type_names_match_the_spec(void **state)
{
    (void)state;
    assert_string_equal(errinj_type_name(ERRINJ_TYPE_SLEEP), "sleep");
    assert_string_equal(errinj_type_name(ERRINJ_TYPE_EXCEPTION), "exception");
    assert_string_equal(errinj_type_name(ERRINJ_TYPE_LAMBDA), "lambda");
    assert_string_equal(errinj_type_name(ERRINJ_TYPE_HANDLER), "handler");
    assert_string_equal(errinj_type_name(ERRINJ_TYPE_ENTER), "enter");
    assert_string_equal(errinj_type_name((errinj_type)42), "unknown");
}

static void phase_names_match_the_events(void **state)
{
    (void)state;
    assert_string_equal(errinj__phase_name(ERRINJ__PHASE_HIT), "hit");
    assert_string_equal(errinj__phase_name(ERRINJ__PHASE_WAITING), "waiting");
    assert_string_equal(errinj__phase_name(ERRINJ__PHASE_RELEASED), "released");
    assert_string_equal(errinj__phase_name(ERRINJ__PHASE_TIMEOUT), "timeout");
    assert_int_equal(ERRINJ__PHASE_COUNT, 4);
    assert_string_equal(errinj__phase_name(ERRINJ__PHASE_COUNT), "unknown");
    assert_string_equal(errinj__phase_name((enum errinj__phase)-1), "unknown");
}

static void every_listed_phase_and_type_parses_back(void **state)
{
    (void)state;
    for (int p = 0; p < ERRINJ__PHASE_COUNT; p++) {
        const char *name = errinj__phase_name((enum errinj__phase)p);
        enum errinj__phase got = ERRINJ__PHASE_COUNT;
        assert_true(errinj__phase_parse(name, strlen(name), &got));
        assert_int_equal(got, p);
    }
    assert_int_equal(ERRINJ__TYPE_COUNT, 5);
    for (int t = 0; t < ERRINJ__TYPE_COUNT; t++) {
        const char *name = errinj_type_name((errinj_type)t);
        errinj_type got = (errinj_type)99;
        assert_true(errinj__type_parse(name, strlen(name), &got));
        assert_int_equal(got, t);
    }
}

static void parsers_refuse_other_names_and_leave_the_output(void **state)
{
    (void)state;
    enum errinj__phase phase = ERRINJ__PHASE_TIMEOUT;
    assert_false(errinj__phase_parse("hits", 4, &phase));
    assert_false(errinj__phase_parse("hit", 2, &phase)); /* a prefix is not the name */
    assert_false(errinj__phase_parse("HIT", 3, &phase));
    assert_false(errinj__phase_parse("", 0, &phase));
    assert_int_equal(phase, ERRINJ__PHASE_TIMEOUT);
    assert_true(errinj__phase_parse("waiting,hit", 7, &phase)); /* only len bytes are read */
    assert_int_equal(phase, ERRINJ__PHASE_WAITING);
    errinj_type type = ERRINJ_TYPE_ENTER;
    assert_false(errinj__type_parse("unknown", 7, &type));
    assert_false(errinj__type_parse("sleeps", 6, &type));
    assert_int_equal(type, ERRINJ_TYPE_ENTER);
}

static void names_are_utf8_without_controls_up_to_255_bytes(void **state)
{
    (void)state;
    char longest[256];
    memset(longest, 'a', 255);
    longest[255] = '\0';
    assert_true(errinj__name_ok(longest));
    assert_true(errinj__name_ok("kv.put-fail_1"));
    assert_true(errinj__name_ok("\xc3\xa9t\xc3\xa9 \xf0\x9f\x92\xa5")); /* é, space, U+1F4A5 */
    assert_false(errinj__name_ok(NULL));
    assert_false(errinj__name_ok(""));
    char too_long[257];
    memset(too_long, 'a', 256);
    too_long[256] = '\0';
    assert_false(errinj__name_ok(too_long));
    assert_false(errinj__name_ok("tab\there"));
    assert_false(errinj__name_ok("del\x7f"));
    assert_false(errinj__name_ok("c1\xc2\x85"));         /* U+0085, a C1 control */
    assert_false(errinj__name_ok("\xc0\xaf"));          /* overlong '/' */
    assert_false(errinj__name_ok("\xed\xa0\x80"));      /* a surrogate */
    assert_false(errinj__name_ok("cut\xe2\x82"));       /* a sequence cut short */
    assert_false(errinj__name_valid("a\0b", 3));        /* NUL inside */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_its_message),
        cmocka_unit_test(unknown_codes_say_so),
        cmocka_unit_test(type_names_match_the_spec),
        cmocka_unit_test(phase_names_match_the_events),
        cmocka_unit_test(every_listed_phase_and_type_parses_back),
        cmocka_unit_test(parsers_refuse_other_names_and_leave_the_output),
        cmocka_unit_test(names_are_utf8_without_controls_up_to_255_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
