/*
 * test_events.c - in-process events (errinj(3)): numbering, fields, phases, when the
 * callback runs, unsubscribe waiting for running callbacks, and the ring to the server.
 */
#include "helpers.h"
#include "events.h"
#include "json.h"
#include "registry.h"
#include "threads.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static struct recorder rec = {.mu = PTHREAD_MUTEX_INITIALIZER};
static errinj_subscription *sub;

static int subscribe(void **state)
{
    (void)state;
    errinj_disable_all();
    errinj_set_log(NULL, NULL);
    pthread_mutex_lock(&rec.mu);
    rec.count = 0;
    pthread_mutex_unlock(&rec.mu);
    return errinj_subscribe(recorder_cb, &rec, &sub);
}

static int unsubscribe(void **state)
{
    (void)state;
    errinj_unsubscribe(sub);
    sub = NULL;
    return 0;
}

static int site_line;

static bool fire_site(void)
{
    site_line = __LINE__ + 1;
    return ERRINJ_ENTER("ev_site");
}

static void first_event_has_seq_one_and_every_field(void **state)
{
    (void)state;
    const char *params[] = {"k", "v", "x", "y", NULL};
    errinj_enable("ev_site", false, params);
    errinj_shard_set(5);
    int64_t before = errinj__now_real_ns();
    assert_true(fire_site());
    int64_t after = errinj__now_real_ns();
    errinj_shard_set(0);
    assert_int_equal(rec.count, 1);
    struct recorded *e = &rec.ev[0];
    assert_int_equal(e->seq, 1); /* the first event of the process */
    assert_string_equal(e->injection, "ev_site");
    assert_string_equal(e->type, "enter");
    assert_string_equal(e->phase, "hit");
    assert_int_equal(e->shard, 5);
    assert_int_equal(e->thread, (long)syscall(SYS_gettid));
    assert_true(e->ts_ns >= before && e->ts_ns <= after);
    assert_int_equal(e->enters, 1);
    assert_string_equal(e->params, "k=v,x=y");
    assert_non_null(strstr(e->file, "test_events.c"));
    assert_int_equal(e->line, site_line);
    assert_int_equal(errinj__seq_last(), 1);
}

static void run_time_names_carry_no_file_or_line(void **state)
{
    (void)state;
    errinj_enable("ev_runtime", false, NULL);
    errinj_inject_lambda("ev_runtime", NULL, NULL);
    assert_int_equal(rec.count, 1);
    assert_string_equal(rec.ev[0].file, "");
    assert_int_equal(rec.ev[0].line, 0);
    assert_string_equal(rec.ev[0].type, "lambda");
    assert_string_equal(rec.ev[0].params, "");
}

static void seq_strictly_increases_and_enters_counts_this_fire(void **state)
{
    (void)state;
    errinj_enable("ev_a", false, NULL);
    errinj_enable("ev_b", false, NULL);
    for (int i = 0; i < 10; i++)
        errinj_inject_enter(i % 2 ? "ev_a" : "ev_b");
    assert_int_equal(rec.count, 10);
    for (size_t i = 1; i < rec.count; i++)
        assert_true(rec.ev[i].seq == rec.ev[i - 1].seq + 1);
    assert_int_equal(rec.ev[9].enters, 5);
    assert_int_equal(rec.ev[8].enters, 5);
    assert_int_equal(rec.ev[0].enters, 1);
}

static void a_parked_handler_publishes_waiting_then_released(void **state)
{
    (void)state;
    errinj_enable("ev_wait", false, NULL);
    errinj_message("ev_wait");
    assert_int_equal(errinj_inject_wait_for_message("ev_wait", 1000), 0);
    assert_int_equal(rec.count, 3);
    assert_string_equal(rec.ev[0].phase, "hit");
    assert_string_equal(rec.ev[1].phase, "waiting");
    assert_string_equal(rec.ev[2].phase, "released");
    assert_string_equal(rec.ev[2].type, "handler");
    assert_int_equal(rec.ev[2].enters, 1);
}

static void a_timed_out_handler_publishes_timeout(void **state)
{
    (void)state;
    errinj_enable("ev_wait", false, NULL);
    assert_int_equal(errinj_inject_wait_for_message("ev_wait", 0), ERRINJ_ETIMEDOUT);
    assert_int_equal(rec.count, 3);
    assert_string_equal(rec.ev[1].phase, "waiting");
    assert_string_equal(rec.ev[2].phase, "timeout");
}

struct parked {
    pthread_t thread;
    int rc;
};

static void *park(void *arg)
{
    struct parked *p = arg;
    p->rc = errinj_inject_wait_for_message("ev_wait", ERRINJ_FOREVER);
    return NULL;
}

static void disable_release_publishes_released(void **state)
{
    (void)state;
    errinj_enable("ev_wait", false, NULL);
    struct parked p;
    pthread_create(&p.thread, NULL, park, &p);
    /* The waiting event comes after the waiter is counted: wait for the event itself. */
    assert_true(WAIT_UNTIL(recorder_count_of(&rec, "ev_wait", "waiting") == 1, WAIT_S));
    assert_int_equal(errinj_waiters("ev_wait"), 1);
    errinj_disable("ev_wait");
    pthread_join(p.thread, NULL);
    assert_int_equal(p.rc, 0);
    assert_int_equal(recorder_count_of(&rec, "ev_wait", "released"), 1);
}

static int lambda_ran;

static void lambda_marks(void *arg)
{
    (void)arg;
    lambda_ran = 1;
}

static int lambda_ran_when_called;

static void observe_lambda(const errinj_event *ev, void *arg)
{
    (void)ev, (void)arg;
    lambda_ran_when_called = lambda_ran;
}

static void callback_runs_on_the_firing_thread_before_the_action(void **state)
{
    (void)state;
    errinj_subscription *s;
    assert_int_equal(errinj_subscribe(observe_lambda, NULL, &s), 0);
    lambda_ran = 0;
    lambda_ran_when_called = -1;
    errinj_enable("ev_lambda", false, NULL);
    errinj_inject_lambda("ev_lambda", lambda_marks, NULL);
    errinj_unsubscribe(s);
    assert_int_equal(lambda_ran_when_called, 0);
    assert_int_equal(lambda_ran, 1);
    assert_int_equal(rec.ev[0].thread, (long)syscall(SYS_gettid));
}

static void subscribe_rejects_null_arguments(void **state)
{
    (void)state;
    errinj_subscription *s;
    assert_int_equal(errinj_subscribe(NULL, NULL, &s), ERRINJ_EINVAL);
    assert_int_equal(errinj_subscribe(observe_lambda, NULL, NULL), ERRINJ_EINVAL);
    errinj_unsubscribe(NULL); /* ignored */
}

/* ---- unsubscribe waits for a running callback -------------------------------------------------- */

struct slow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, go, done;
    bool done_seen_by_unsubscriber;
    errinj_subscription *sub;
};

static void slow_cb(const errinj_event *ev, void *arg)
{
    (void)ev;
    struct slow *s = arg;
    pthread_mutex_lock(&s->mu);
    s->entered = true;
    pthread_cond_broadcast(&s->cv);
    while (!s->go)
        pthread_cond_wait(&s->cv, &s->mu);
    s->done = true;
    pthread_mutex_unlock(&s->mu);
}

static void *fire_once(void *name)
{
    errinj_inject_enter(name);
    return NULL;
}

/* Subscribes slow_cb, fires `name` on a new thread and returns it once the callback blocks. */
static pthread_t block_in_callback(struct slow *s, const char *name)
{
    assert_int_equal(errinj_subscribe(slow_cb, s, &s->sub), 0);
    errinj_enable(name, false, NULL);
    pthread_t firer;
    pthread_create(&firer, NULL, fire_once, (void *)name);
    pthread_mutex_lock(&s->mu);
    while (!s->entered)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return firer;
}

static void release_callback(struct slow *s)
{
    pthread_mutex_lock(&s->mu);
    s->go = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *unsubscribe_slow(void *arg)
{
    struct slow *s = arg;
    errinj_unsubscribe(s->sub);
    pthread_mutex_lock(&s->mu);
    s->done_seen_by_unsubscriber = s->done;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void unsubscribe_returns_only_after_running_callbacks_finish(void **state)
{
    (void)state;
    struct slow s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t firer = block_in_callback(&s, "ev_slow"), unsub;
    pthread_create(&unsub, NULL, unsubscribe_slow, &s);
    /* Let the callback finish only now: unsubscribe must have waited for it. */
    release_callback(&s);
    pthread_join(unsub, NULL);
    pthread_join(firer, NULL);
    assert_true(s.done_seen_by_unsubscriber);
}

/* ---- subscribe and unsubscribe while others fire ---------------------------------------------- */

static atomic_bool churn_stop;

static void count_cb(const errinj_event *ev, void *arg)
{
    (void)ev;
    atomic_fetch_add((atomic_long *)arg, 1);
}

static void fire_until_stopped(void *arg, unsigned index)
{
    long *fired = arg;
    while (!atomic_load(&churn_stop)) {
        errinj_inject_enter("ev_churn");
        fired[index]++;
    }
}

static void subscribing_while_threads_fire_is_safe(void **state)
{
    (void)state;
    errinj_enable("ev_churn", false, NULL);
    atomic_store(&churn_stop, false);
    struct crew firers;
    long fired[3] = {0};
    crew_start(&firers, 3, fire_until_stopped, fired);
    for (int i = 0; i < 300; i++) {
        atomic_long seen = 0;
        errinj_subscription *s;
        assert_int_equal(errinj_subscribe(count_cb, &seen, &s), 0);
        long start = (long)errinj__seq_last();
        assert_true(WAIT_UNTIL((long)errinj__seq_last() > start + 2, WAIT_S));
        errinj_unsubscribe(s);
        long after = atomic_load(&seen);
        /* After unsubscribe returned, the callback never runs again. */
        assert_true(WAIT_UNTIL((long)errinj__seq_last() > start + 10, WAIT_S));
        assert_int_equal(atomic_load(&seen), after);
    }
    atomic_store(&churn_stop, true);
    crew_join(&firers);
    assert_int_equal((long)errinj_enters("ev_churn"), fired[0] + fired[1] + fired[2]);
}

/* ---- the ring to the server --------------------------------------------------------------------- */

static atomic_int wakes;

static void count_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

struct drained {
    uint64_t seqs[70000];
    uint64_t lost;
    size_t count;
};

static void take(struct errinj__record *r, void *arg)
{
    struct drained *d = arg;
    d->seqs[d->count++] = r->seq;
    d->lost += r->lost_before;
    assert_non_null(r->cfg);
    assert_string_equal(errinj__entry_name(r->entry), "ev_ring");
    errinj__config_unref(r->cfg);
}

static void format_into(struct errinj__record *r, void *arg)
{
    char *out = arg;
    size_t len = 0;
    char *frame = errinj__record_sse_frame(r, &len);
    assert_non_null(frame);
    snprintf(out, 512, "%s", frame);
    free(frame);
    errinj__config_unref(r->cfg);
}

static void ring_keeps_seq_order_wakes_only_a_sleeper_and_counts_losses(void **state)
{
    (void)state;
    static struct drained d;
    memset(&d, 0, sizeof(d));
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(8, count_wake, NULL, &base);
    assert_non_null(ring);
    assert_null(errinj__ring_attach(8, count_wake, NULL, &base)); /* only one */
    errinj_enable("ev_ring", false, NULL);
    atomic_store(&wakes, 0);
    for (int i = 0; i < 5; i++)
        errinj_inject_enter("ev_ring");
    assert_int_equal(atomic_load(&wakes), 0); /* the consumer never said it sleeps */
    assert_int_equal(errinj__ring_drain(ring, take, &d), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(d.seqs[i], base + 1 + i);
    assert_true(errinj__ring_prepare_sleep(ring));
    errinj_inject_enter("ev_ring");
    errinj_inject_enter("ev_ring");
    assert_int_equal(atomic_load(&wakes), 1); /* one wake for a sleeping consumer, not one per event */
    assert_false(errinj__ring_prepare_sleep(ring)); /* pending records: drain first */
    /* Overfill: 8 slots, 2 used; 10 more fires lose 4, reported on the next record. */
    for (int i = 0; i < 10; i++)
        errinj_inject_enter("ev_ring");
    assert_int_equal(errinj__ring_dropped(ring), 4);
    d.count = 0;
    assert_int_equal(errinj__ring_drain(ring, take, &d), 8);
    errinj_inject_enter("ev_ring");
    assert_int_equal(errinj__ring_drain(ring, take, &d), 1);
    assert_int_equal(d.lost, 4);
    assert_int_equal(d.seqs[8], d.seqs[7] + 5);
    errinj__ring_detach(ring);
}

/* A stopping consumer drains up to the seq published when it stopped: records fired after it stay
 * in the ring, so a thread that keeps refilling the ring cannot keep the drain going. */
static void a_drain_up_to_a_seq_leaves_the_newer_records(void **state)
{
    (void)state;
    static struct drained d;
    memset(&d, 0, sizeof(d));
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(16, count_wake, NULL, &base);
    assert_non_null(ring);
    errinj_enable("ev_ring", false, NULL);
    for (int i = 0; i < 3; i++)
        errinj_inject_enter("ev_ring");
    uint64_t last = errinj__seq_last();
    for (int i = 0; i < 4; i++)
        errinj_inject_enter("ev_ring"); /* fired after the stop */
    assert_int_equal(errinj__ring_drain_max(ring, 2, last, take, &d), 2); /* the batch limit */
    assert_int_equal(errinj__ring_drain_max(ring, 100, last, take, &d), 1);
    assert_int_equal(errinj__ring_drain_max(ring, 100, last, take, &d), 0); /* nothing newer */
    assert_int_equal(d.count, 3);
    assert_int_equal(d.seqs[2], last);
    assert_false(errinj__ring_prepare_sleep(ring)); /* the newer four are still pending */
    assert_int_equal(errinj__ring_drain(ring, take, &d), 4);
    assert_int_equal(d.seqs[6], last + 4);
    errinj__ring_detach(ring);
}

static void fire_many(void *arg, unsigned index)
{
    (void)arg;
    errinj_shard_set(index);
    for (int i = 0; i < 10000; i++)
        errinj_inject_enter("ev_ring");
}

static void ring_orders_events_from_four_threads_without_gaps(void **state)
{
    (void)state;
    static struct drained d;
    memset(&d, 0, sizeof(d));
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(65536, count_wake, NULL, &base);
    errinj_enable("ev_ring", false, NULL);
    struct crew firers;
    crew_start(&firers, 4, fire_many, NULL);
    crew_join(&firers);
    assert_int_equal(errinj__ring_drain(ring, take, &d), 40000);
    for (size_t i = 0; i < d.count; i++)
        assert_int_equal(d.seqs[i], base + 1 + i);
    assert_int_equal(d.lost, 0);
    errinj__ring_detach(ring);
}

static void a_forked_child_fires_without_touching_the_parents_ring(void **state)
{
    (void)state;
    static struct drained d;
    memset(&d, 0, sizeof(d));
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(64, count_wake, NULL, &base);
    assert_non_null(ring);
    errinj_enable("ev_ring", false, NULL);
    errinj_inject_enter("ev_ring");
    char parent_instance[32];
    snprintf(parent_instance, sizeof(parent_instance), "%s", errinj__instance_id());
    assert_int_equal(strlen(parent_instance), 16);
    assert_string_equal(errinj__instance_id(), parent_instance); /* stable within a process */
    pid_t child = fork();
    if (child == 0) {
        /* In the child: firing works (no inherited lock is held), the ring is not used, and the
         * child is a new instance, so a client can tell its seqs from the parent's. */
        bool fired = errinj_inject_enter("ev_ring");
        bool new_instance = strcmp(errinj__instance_id(), parent_instance) != 0;
        _exit(fired && new_instance && errinj__seq_last() == base + 2 ? 0 : 1);
    }
    assert_true(child > 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(errinj__ring_drain(ring, take, &d), 1); /* only the parent's event */
    errinj__ring_detach(ring);
}

static void record_thread(const errinj_event *ev, void *arg)
{
    *(long *)arg = ev->thread;
}

static void a_forked_child_reports_its_own_thread_id(void **state)
{
    (void)state;
    long seen = 0;
    errinj_subscription *sub = NULL;
    assert_int_equal(errinj_subscribe(record_thread, &seen, &sub), 0);
    errinj_enable("ev_fork_tid", false, NULL);
    assert_true(errinj_inject_enter("ev_fork_tid")); /* the parent's id is now cached */
    assert_int_equal(seen, (long)getpid());
    pid_t child = fork();
    if (child == 0) {
        /* The child's only thread has the child's pid as its id, not the forking thread's. */
        seen = 0;
        errinj_subscription *mine = NULL;
        if (errinj_subscribe(record_thread, &seen, &mine) != 0 || !errinj_inject_enter("ev_fork_tid"))
            _exit(2);
        _exit(seen == (long)getpid() ? 0 : 1);
    }
    assert_true(child > 0);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    errinj_disable("ev_fork_tid");
    errinj_unsubscribe(sub);
}

/* ---- a record outlives the module of its site ------------------------------------------------- */

typedef bool (*plugin_fn)(void);

static void a_record_of_an_unloaded_module_still_formats(void **state)
{
    (void)state;
    static struct drained d;
    memset(&d, 0, sizeof(d));
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(64, count_wake, NULL, &base);
    assert_non_null(ring);
    errinj_enable("plugin_point", false, NULL);
    void *lib = dlopen(PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    plugin_fn fire = (plugin_fn)dlsym(lib, "plugin_enter");
    assert_true(fire());
    dlclose(lib); /* the record in the ring still names the site's file */
    struct record_copy {
        char frame[512];
    } out = {{0}};
    size_t n = errinj__ring_drain(ring, format_into, &out);
    assert_int_equal(n, 1);
    assert_non_null(strstr(out.frame, "\"file\":\""));
    assert_non_null(strstr(out.frame, "plugin.c\""));
    errinj__ring_detach(ring);
    errinj_disable("plugin_point");
}

/* ---- fork while another thread is inside a callback --------------------------------------------- */

static void a_child_forked_during_a_callback_can_subscribe(void **state)
{
    (void)state;
    struct slow s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t firer = block_in_callback(&s, "ev_fork_slow");
    pid_t child = fork(); /* another thread is inside a callback right now */
    if (child == 0) {
        alarm(10); /* a hang kills the child, and the parent sees it */
        errinj_subscription *mine;
        int rc = errinj_subscribe(count_cb, &(atomic_long){0}, &mine);
        errinj_unsubscribe(mine);
        errinj_set_log(NULL, NULL);
        _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    release_callback(&s);
    pthread_join(firer, NULL);
    errinj_unsubscribe(s.sub);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(first_event_has_seq_one_and_every_field, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(run_time_names_carry_no_file_or_line, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(seq_strictly_increases_and_enters_counts_this_fire, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(a_parked_handler_publishes_waiting_then_released, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(a_timed_out_handler_publishes_timeout, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(disable_release_publishes_released, subscribe, unsubscribe),
        cmocka_unit_test_setup_teardown(callback_runs_on_the_firing_thread_before_the_action, subscribe, unsubscribe),
        cmocka_unit_test(subscribe_rejects_null_arguments),
        cmocka_unit_test(unsubscribe_returns_only_after_running_callbacks_finish),
        cmocka_unit_test(subscribing_while_threads_fire_is_safe),
        cmocka_unit_test(ring_keeps_seq_order_wakes_only_a_sleeper_and_counts_losses),
        cmocka_unit_test(a_drain_up_to_a_seq_leaves_the_newer_records),
        cmocka_unit_test(ring_orders_events_from_four_threads_without_gaps),
        cmocka_unit_test(a_forked_child_fires_without_touching_the_parents_ring),
        cmocka_unit_test(a_forked_child_reports_its_own_thread_id),
        cmocka_unit_test(a_record_of_an_unloaded_module_still_formats),
        cmocka_unit_test(a_child_forked_during_a_callback_can_subscribe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
