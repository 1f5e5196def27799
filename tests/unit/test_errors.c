/* test_errors.c - error codes and type names come from one list and read as documented. */
#include <errinj.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_its_message),
        cmocka_unit_test(unknown_codes_say_so),
        cmocka_unit_test(type_names_match_the_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
