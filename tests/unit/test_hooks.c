/*
 * test_hooks.c - hooks.c: a validator registered for a prefix refuses bad parameters at enable
 * (ERRINJ_EINVAL, its reason kept, the injection unchanged; 400 with the reason over HTTP), names
 * outside the prefix are not asked; the thread-start hook runs on the server thread.
 */
#include "helpers.h"
#include "hooks.h"
#include "http.h"
#include "control.h"
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static int calls;

static int refuse_bad(const char *name, const char *const *params, char *msg, size_t len)
{
    calls++;
    for (size_t i = 0; params[i] != NULL; i += 2) {
        if (strcmp(params[i], "bad") == 0) {
            snprintf(msg, len, "%s: parameter bad is not allowed", name);
            return ERRINJ_EINVAL;
        }
    }
    return 0;
}

static void validator_refuses_at_enable_and_changes_nothing(void **state)
{
    (void)state;
    const char *good[] = {"k", "1", NULL};
    const char *bad[] = {"bad", "1", NULL};
    calls = 0;
    assert_int_equal(errinj_enable("hooked.point", false, good), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(errinj__hook_message()[0], '\0');
    assert_int_equal(errinj_enable("hooked.point", true, bad), ERRINJ_EINVAL);
    assert_string_equal(errinj__hook_message(), "hooked.point: parameter bad is not allowed");
    /* Still enabled as before, with its old parameters and one_shot. */
    struct errinj__entry_state st;
    errinj__entry_state("hooked.point", &st);
    assert_true(st.enabled);
    assert_false(st.one_shot);
    assert_string_equal(errinj__config_get(st.cfg, "k"), "1");
    assert_null(errinj__config_get(st.cfg, "bad"));
    errinj__config_unref(st.cfg);
    errinj_disable("hooked.point");
    /* A disabled name stays disabled when its enable is refused. */
    assert_int_equal(errinj_enable("hooked.point", false, bad), ERRINJ_EINVAL);
    assert_false(errinj_is_enabled("hooked.point"));
    /* Other names are not the validator's business. */
    calls = 0;
    assert_int_equal(errinj_enable("other.point", false, bad), 0);
    assert_int_equal(calls, 0);
    errinj_disable("other.point");
}

static const char *no_header(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static void rest_answers_400_with_the_validators_reason(void **state)
{
    (void)state;
    const char body[] = "{\"bad\":\"x\"}";
    struct errinj__http_request req = {.method = "POST", .path = "/v2/error_injection/injection/hooked.point",
                                       .header = no_header, .body = body, .body_len = sizeof(body) - 1};
    struct errinj__http_config cfg = {0};
    struct errinj__http_reply reply = {0};
    errinj__http_handle(&cfg, &req, &reply);
    assert_int_equal(reply.status, 400);
    assert_non_null(strstr(reply.body, "hooked.point: parameter bad is not allowed"));
    errinj__http_reply_free(&reply);
    assert_false(errinj_is_enabled("hooked.point"));
}

static atomic_int started;

static void on_thread_start(void)
{
    atomic_fetch_add(&started, 1);
}

static void thread_start_hook_runs_on_the_server_thread(void **state)
{
    (void)state;
    errinj__hook_thread_start(on_thread_start);
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    errinj_server *srv;
    assert_int_equal(errinj_server_start(&opts, &srv), 0);
    assert_true(WAIT_UNTIL(atomic_load(&started) == 1, WAIT_S));
    errinj_server_stop(srv);
    errinj__hook_thread_start(NULL);
}

int main(void)
{
    errinj_set_log(NULL, NULL);
    assert_int_equal(errinj__hook_validator("hooked.", refuse_bad), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validator_refuses_at_enable_and_changes_nothing),
        cmocka_unit_test(rest_answers_400_with_the_validators_reason),
        cmocka_unit_test(thread_start_hook_runs_on_the_server_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
