/*
 * test_points.c - the six call-site forms and their run-time-name twins (errinj(3)),
 * handlers and messages, one-shots under races, and the log lines.
 */
#include "helpers.h"
#include "events.h"
#include "threads.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

static int reset(void **state)
{
    (void)state;
    errinj_disable_all();
    errinj_set_log(NULL, NULL);
    errinj_shard_set(0);
    return 0;
}

static void set_flag(void *arg)
{
    *(int *)arg += 1;
}

static int handler_doubles(errinj_handler *h, void *arg)
{
    const char *v = errinj_handler_get(h, "value");
    assert_string_equal(errinj_handler_name(h), "pt_handler");
    return (v != NULL ? atoi(v) : 0) * *(int *)arg;
}

/* ---- each form ------------------------------------------------------------------------------ */

static void disabled_points_do_nothing(void **state)
{
    (void)state;
    int flag = 0, two = 2;
    ERRINJ_SLEEP("pt_sleep", 100000);
    assert_int_equal(ERRINJ_EXCEPTION("pt_exception", -EIO), 0);
    ERRINJ_LAMBDA("pt_lambda", set_flag, &flag);
    assert_int_equal(flag, 0);
    assert_int_equal(ERRINJ_HANDLER("pt_handler", handler_doubles, &two), 0);
    assert_int_equal(ERRINJ_WAIT_FOR_MESSAGE("pt_wait", ERRINJ_FOREVER), 0);
    assert_false(ERRINJ_ENTER("pt_enter"));
    errinj_inject_sleep("pt_sleep", 100000);
    assert_int_equal(errinj_inject_exception("pt_exception", -EIO), 0);
    errinj_inject_lambda("pt_lambda", set_flag, &flag);
    assert_int_equal(flag, 0);
    assert_int_equal(errinj_inject_handler("pt_handler", handler_doubles, &two), 0);
    assert_int_equal(errinj_inject_wait_for_message("pt_wait", ERRINJ_FOREVER), 0);
    assert_false(errinj_inject_enter("pt_enter"));
}

static void exception_returns_the_error_and_zero_becomes_einjected(void **state)
{
    (void)state;
    errinj_enable("pt_exception", false, NULL);
    assert_int_equal(ERRINJ_EXCEPTION("pt_exception", -EIO), -EIO);
    assert_int_equal(ERRINJ_EXCEPTION("pt_exception", 0), ERRINJ_EINJECTED);
    assert_int_equal(errinj_inject_exception("pt_exception", -ENOSPC), -ENOSPC);
    assert_int_equal(errinj_enters("pt_exception"), 3);
}

static void lambda_calls_the_function_with_its_argument(void **state)
{
    (void)state;
    int flag = 0;
    errinj_enable("pt_lambda", false, NULL);
    ERRINJ_LAMBDA("pt_lambda", set_flag, &flag);
    errinj_inject_lambda("pt_lambda", set_flag, &flag);
    assert_int_equal(flag, 2);
}

static void handler_returns_its_result_and_reads_parameters(void **state)
{
    (void)state;
    int two = 2;
    const char *params[] = {"value", "21", NULL};
    errinj_enable("pt_handler", false, params);
    assert_int_equal(ERRINJ_HANDLER("pt_handler", handler_doubles, &two), 42);
    assert_int_equal(errinj_inject_handler("pt_handler", handler_doubles, &two), 42);
}

static void enter_returns_true_when_enabled(void **state)
{
    (void)state;
    errinj_enable("pt_enter", false, NULL);
    assert_true(ERRINJ_ENTER("pt_enter"));
    assert_true(errinj_inject_enter("pt_enter"));
    assert_int_equal(errinj_enters("pt_enter"), 2);
}

static void sleep_sleeps_the_duration_parameter(void **state)
{
    (void)state;
    const char *params[] = {"duration_ms", "30", NULL};
    errinj_enable("pt_sleep", false, params);
    double start = test_now();
    ERRINJ_SLEEP("pt_sleep", 100000); /* the parameter overrides the site's 100 s */
    double took = test_now() - start;
    assert_true(took >= 0.030);
    assert_true(took < 50.0);
    start = test_now();
    errinj_inject_sleep("pt_sleep", 100000);
    assert_true(test_now() - start >= 0.030);
    errinj_enable("pt_sleep", false, NULL); /* without the parameter, the site's duration */
    start = test_now();
    ERRINJ_SLEEP("pt_sleep", 20);
    assert_true(test_now() - start >= 0.020);
}

/* ---- handlers, messages and waiters --------------------------------------------------------- */

struct parked {
    pthread_t thread;
    const char *name;
    int timeout_ms;
    int rc;
    bool runtime_name;
};

static void *park(void *arg)
{
    struct parked *p = arg;
    p->rc = p->runtime_name ? errinj_inject_wait_for_message(p->name, p->timeout_ms)
                            : ERRINJ_WAIT_FOR_MESSAGE("pt_wait", p->timeout_ms);
    return NULL;
}

static void start_parked(struct parked *p, const char *name, int timeout_ms)
{
    p->name = name;
    p->timeout_ms = timeout_ms;
    p->rc = -12345;
    p->runtime_name = strcmp(name, "pt_wait") != 0;
    pthread_create(&p->thread, NULL, park, p);
}

static void a_message_sent_before_parking_still_counts(void **state)
{
    (void)state;
    errinj_enable("pt_wait", false, NULL);
    assert_int_equal(errinj_message("pt_wait"), 0);
    /* Returns at once: without the early message this would time out after 10 s. */
    assert_int_equal(ERRINJ_WAIT_FOR_MESSAGE("pt_wait", 10000), 0);
    assert_int_equal(errinj_waiters("pt_wait"), 0);
}

static void a_message_to_a_disabled_injection_is_ignored(void **state)
{
    (void)state;
    errinj_message("pt_wait"); /* not enabled: dropped */
    errinj_enable("pt_wait", false, NULL);
    assert_int_equal(ERRINJ_WAIT_FOR_MESSAGE("pt_wait", 0), ERRINJ_ETIMEDOUT);
}

static void one_message_releases_every_waiting_handler(void **state)
{
    (void)state;
    errinj_enable("pt_wait", false, NULL);
    struct parked p[4];
    for (int i = 0; i < 4; i++)
        start_parked(&p[i], "pt_wait", ERRINJ_FOREVER);
    assert_true(WAIT_UNTIL(errinj_waiters("pt_wait") == 4, WAIT_S));
    errinj_message("pt_wait");
    for (int i = 0; i < 4; i++) {
        pthread_join(p[i].thread, NULL);
        assert_int_equal(p[i].rc, 0);
    }
    assert_int_equal(errinj_waiters("pt_wait"), 0);
    assert_int_equal(errinj_enters("pt_wait"), 4);
}

static void disable_releases_many_parked_handlers_with_zero(void **state)
{
    (void)state;
    errinj_enable("pt_rt_wait", false, NULL);
    struct parked p[6];
    for (int i = 0; i < 6; i++)
        start_parked(&p[i], "pt_rt_wait", ERRINJ_FOREVER);
    assert_true(WAIT_UNTIL(errinj_waiters("pt_rt_wait") == 6, WAIT_S));
    errinj_disable("pt_rt_wait");
    for (int i = 0; i < 6; i++) {
        pthread_join(p[i].thread, NULL);
        assert_int_equal(p[i].rc, 0);
    }
    assert_int_equal(errinj_waiters("pt_rt_wait"), 0);
}

static void disable_all_releases_parked_handlers(void **state)
{
    (void)state;
    errinj_enable("pt_wait", false, NULL);
    struct parked p;
    start_parked(&p, "pt_wait", ERRINJ_FOREVER);
    assert_true(WAIT_UNTIL(errinj_waiters("pt_wait") == 1, WAIT_S));
    errinj_disable_all();
    pthread_join(p.thread, NULL);
    assert_int_equal(p.rc, 0);
}

static void wait_times_out_with_etimedout(void **state)
{
    (void)state;
    errinj_enable("pt_wait", false, NULL);
    double start = test_now();
    assert_int_equal(ERRINJ_WAIT_FOR_MESSAGE("pt_wait", 20), ERRINJ_ETIMEDOUT);
    assert_true(test_now() - start >= 0.019);
    assert_int_equal(errinj_waiters("pt_wait"), 0);
}

static int poll_twice(errinj_handler *h, void *arg)
{
    (void)arg;
    int got = errinj_handler_poll_for_message(h);
    got += errinj_handler_poll_for_message(h);
    return got;
}

static void poll_for_message_consumes_one_message_without_blocking(void **state)
{
    (void)state;
    errinj_enable("pt_poll", false, NULL);
    assert_int_equal(errinj_inject_handler("pt_poll", poll_twice, NULL), 0);
    errinj_message("pt_poll");
    assert_int_equal(errinj_inject_handler("pt_poll", poll_twice, NULL), 1);
    errinj_message("pt_poll");
    /* Each handler has its own read count: both messages are there for a new handler. */
    assert_int_equal(errinj_inject_handler("pt_poll", poll_twice, NULL), 2);
}

struct one_shot_handler {
    atomic_int stage;
};

static int one_shot_body(errinj_handler *h, void *arg)
{
    struct one_shot_handler *s = arg;
    atomic_store(&s->stage, 1);
    int rc = errinj_handler_wait_for_message(h, ERRINJ_FOREVER);
    atomic_store(&s->stage, 2);
    return rc == 0 ? 5 : rc;
}

struct one_shot_thread {
    pthread_t thread;
    struct one_shot_handler *s;
    int rc;
};

static void *run_one_shot(void *arg)
{
    struct one_shot_thread *t = arg;
    t->rc = errinj_inject_handler("pt_one_shot_handler", one_shot_body, t->s);
    return NULL;
}

static void one_shot_handler_stays_reachable_by_messages_until_it_returns(void **state)
{
    (void)state;
    struct one_shot_handler s = {0};
    struct one_shot_thread t = {.s = &s};
    errinj_enable("pt_one_shot_handler", true, NULL);
    pthread_create(&t.thread, NULL, run_one_shot, &t);
    assert_true(WAIT_UNTIL(errinj_waiters("pt_one_shot_handler") == 1, WAIT_S));
    /* It fired, so it is no longer enabled and a second hit does not run... */
    assert_false(errinj_is_enabled("pt_one_shot_handler"));
    assert_int_equal(errinj_inject_handler("pt_one_shot_handler", one_shot_body, &(struct one_shot_handler){0}), 0);
    /* ...but a message still reaches the running handler. */
    errinj_message("pt_one_shot_handler");
    pthread_join(t.thread, NULL);
    assert_int_equal(t.rc, 5);
    assert_int_equal(errinj_enters("pt_one_shot_handler"), 1);
    /* Once it returned, messages are ignored again. */
    errinj_message("pt_one_shot_handler");
    errinj_enable("pt_one_shot_handler", false, NULL);
    assert_int_equal(errinj_inject_wait_for_message("pt_one_shot_handler", 0), ERRINJ_ETIMEDOUT);
}

/* ---- one-shot races --------------------------------------------------------------------------- */

struct race {
    atomic_int *wins;
    bool use_site;
};

static void race_for_one_shot(void *arg, unsigned index)
{
    (void)index;
    struct race *r = arg;
    int won = r->use_site ? ERRINJ_ENTER("pt_race") : errinj_inject_enter("pt_race");
    atomic_fetch_add(r->wins, won);
}

static void one_shot_fires_exactly_once_when_eight_threads_race(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        atomic_int wins = 0;
        struct race r = {&wins, round % 2 == 0};
        errinj_enable("pt_race", true, NULL);
        crew_race(8, race_for_one_shot, &r);
        assert_int_equal(atomic_load(&wins), 1);
        assert_int_equal(errinj_enters("pt_race"), 1);
        assert_false(errinj_is_enabled("pt_race"));
    }
}

/* ---- messages racing parking ----------------------------------------------------------------- */

static void messages_racing_parking_are_never_lost(void **state)
{
    (void)state;
    for (int round = 0; round < 200; round++) {
        errinj_enable("pt_rt_race_wait", false, NULL);
        struct parked p;
        start_parked(&p, "pt_rt_race_wait", 10000);
        errinj_message("pt_rt_race_wait"); /* before, during or after the thread parks */
        pthread_join(p.thread, NULL);
        assert_int_equal(p.rc, 0);
        errinj_disable("pt_rt_race_wait");
    }
}

/* ---- shards ---------------------------------------------------------------------------------- */

static void *read_shard(void *arg)
{
    *(unsigned *)arg = errinj_shard();
    errinj_shard_set(9);
    return NULL;
}

static void shard_is_per_thread_and_defaults_to_zero(void **state)
{
    (void)state;
    errinj_shard_set(3);
    assert_int_equal(errinj_shard(), 3);
    unsigned other = 77;
    pthread_t t;
    pthread_create(&t, NULL, read_shard, &other);
    pthread_join(t, NULL);
    assert_int_equal(other, 0);
    assert_int_equal(errinj_shard(), 3);
    assert_true(errinj__shards_seen() >= 10);
}

/* ---- logging --------------------------------------------------------------------------------- */

struct log_capture {
    pthread_mutex_t mu;
    char lines[16][300];
    unsigned shards[16];
    int count;
};

static void capture_line(unsigned shard, const char *line, void *arg)
{
    struct log_capture *c = arg;
    pthread_mutex_lock(&c->mu);
    if (c->count < 16) {
        snprintf(c->lines[c->count], sizeof(c->lines[0]), "%s", line);
        c->shards[c->count++] = shard;
    }
    pthread_mutex_unlock(&c->mu);
}

static void each_fire_logs_scylladb_wording(void **state)
{
    (void)state;
    static struct log_capture c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    errinj_set_log(capture_line, &c);
    errinj_shard_set(2);
    const char *params[] = {"duration_ms", "1", NULL};
    errinj_enable("log_sleep", false, params);
    errinj_enable("log_exc", false, NULL);
    errinj_enable("log_wait", false, NULL);
    errinj_enable("log_enter", false, NULL);
    errinj_inject_sleep("log_sleep", 100);
    errinj_inject_exception("log_exc", ERRINJ_EINJECTED);
    errinj_message("log_wait");
    errinj_inject_wait_for_message("log_wait", 1000);
    errinj_inject_wait_for_message("log_wait", 0);
    errinj_inject_enter("log_enter");
    errinj_set_log(NULL, NULL);
    errinj_inject_enter("log_enter"); /* silenced */
    const char *expected[] = {
        "Triggering sleep injection \"log_sleep\" (1ms)",
        "Triggering injection \"log_exc\" with exception \"injected error\"",
        "Triggering injection \"log_wait\" with injection handler",
        "log_wait: waiting for message",
        "log_wait: message received",
        "Triggering injection \"log_wait\" with injection handler",
        "log_wait: waiting for message",
        "log_wait: message received", /* shared message: a new handler reads it too */
        "Triggering injection \"log_enter\"",
    };
    assert_int_equal(c.count, sizeof(expected) / sizeof(expected[0]));
    for (int i = 0; i < c.count; i++) {
        assert_string_equal(c.lines[i], expected[i]);
        assert_int_equal(c.shards[i], 2);
    }
}

static void timeout_is_logged(void **state)
{
    (void)state;
    static struct log_capture c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    errinj_set_log(capture_line, &c);
    errinj_enable("log_timeout", false, NULL);
    errinj_inject_wait_for_message("log_timeout", 0);
    errinj_set_log(NULL, NULL);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.lines[2], "log_timeout: timed out waiting for message");
}

/* ---- parameters replaced while threads fire ------------------------------------------------- */

static atomic_bool swap_stop;
static atomic_long swap_bad;

static int check_param(errinj_handler *h, void *arg)
{
    (void)arg;
    const char *v = errinj_handler_get(h, "v");
    /* Every fire sees one whole parameter set: never a freed or torn one. */
    if (v == NULL || (strcmp(v, "first-value") != 0 && strcmp(v, "second-value") != 0))
        atomic_fetch_add(&swap_bad, 1);
    return 0;
}

static void fire_handler_until_stopped(void *arg, unsigned index)
{
    long *fired = arg;
    while (!atomic_load(&swap_stop)) {
        errinj_inject_handler("pt_swap", check_param, NULL);
        fired[index]++;
    }
}

static void reenabling_with_new_parameters_while_threads_fire_is_safe(void **state)
{
    (void)state;
    const char *first[] = {"v", "first-value", NULL};
    const char *second[] = {"v", "second-value", NULL};
    errinj_enable("pt_swap", false, first);
    atomic_store(&swap_stop, false);
    atomic_store(&swap_bad, 0);
    struct crew firers;
    long fired[3] = {0};
    crew_start(&firers, 3, fire_handler_until_stopped, fired);
    for (int i = 0; i < 3000; i++)
        errinj_enable("pt_swap", false, i % 2 ? first : second);
    atomic_store(&swap_stop, true);
    crew_join(&firers);
    assert_int_equal(atomic_load(&swap_bad), 0);
    assert_int_equal((long)errinj_enters("pt_swap"), fired[0] + fired[1] + fired[2]);
}

/* ---- messages belong to one enable ------------------------------------------------------------ */

struct still_running {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool got_message, finish;
};

static int receive_then_linger(errinj_handler *h, void *arg)
{
    struct still_running *s = arg;
    int rc = errinj_handler_wait_for_message(h, 10000);
    pthread_mutex_lock(&s->mu);
    s->got_message = rc == 0;
    pthread_cond_broadcast(&s->cv);
    while (!s->finish)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void *run_lingering_one_shot(void *arg)
{
    errinj_inject_handler("pt_stale", receive_then_linger, arg);
    return NULL;
}

static void a_new_enable_does_not_inherit_messages_of_the_previous_one(void **state)
{
    (void)state;
    struct still_running s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    errinj_enable("pt_stale", true, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run_lingering_one_shot, &s);
    assert_true(WAIT_UNTIL(errinj_waiters("pt_stale") == 1, WAIT_S));
    errinj_message("pt_stale");
    pthread_mutex_lock(&s.mu);
    while (!s.got_message)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    /* The first one-shot's handler still runs; a new enable must start with no message. */
    errinj_enable("pt_stale", true, NULL);
    assert_int_equal(errinj_inject_wait_for_message("pt_stale", 0), ERRINJ_ETIMEDOUT);
    pthread_mutex_lock(&s.mu);
    s.finish = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(disabled_points_do_nothing, reset),
        cmocka_unit_test_setup(exception_returns_the_error_and_zero_becomes_einjected, reset),
        cmocka_unit_test_setup(lambda_calls_the_function_with_its_argument, reset),
        cmocka_unit_test_setup(handler_returns_its_result_and_reads_parameters, reset),
        cmocka_unit_test_setup(enter_returns_true_when_enabled, reset),
        cmocka_unit_test_setup(sleep_sleeps_the_duration_parameter, reset),
        cmocka_unit_test_setup(a_message_sent_before_parking_still_counts, reset),
        cmocka_unit_test_setup(a_message_to_a_disabled_injection_is_ignored, reset),
        cmocka_unit_test_setup(one_message_releases_every_waiting_handler, reset),
        cmocka_unit_test_setup(disable_releases_many_parked_handlers_with_zero, reset),
        cmocka_unit_test_setup(disable_all_releases_parked_handlers, reset),
        cmocka_unit_test_setup(wait_times_out_with_etimedout, reset),
        cmocka_unit_test_setup(poll_for_message_consumes_one_message_without_blocking, reset),
        cmocka_unit_test_setup(one_shot_handler_stays_reachable_by_messages_until_it_returns, reset),
        cmocka_unit_test_setup(one_shot_fires_exactly_once_when_eight_threads_race, reset),
        cmocka_unit_test_setup(messages_racing_parking_are_never_lost, reset),
        cmocka_unit_test_setup(shard_is_per_thread_and_defaults_to_zero, reset),
        cmocka_unit_test_setup(each_fire_logs_scylladb_wording, reset),
        cmocka_unit_test_setup(timeout_is_logged, reset),
        cmocka_unit_test_setup(reenabling_with_new_parameters_while_threads_fire_is_safe, reset),
        cmocka_unit_test_setup(a_new_enable_does_not_inherit_messages_of_the_previous_one, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
