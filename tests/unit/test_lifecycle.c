/*
 * test_lifecycle.c - fork() while other threads enable, disable, message and fire: the child
 * inherits no lock held by a thread that does not exist there (the registry's, the seq mutex,
 * an entry's, the log's, the subscribers'), so it can do all of it again itself; the parent
 * carries on. Each layer's fork hooks are registered with lifecycle.c; a missing prepare or
 * child hook shows here as a child that hangs (killed by its alarm) or fails.
 */
#include "errinj.h"
#include "threads.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define FORKS 40

static atomic_bool g_stop;
static atomic_uint g_events;

static void count_event(const errinj_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    atomic_fetch_add(&g_events, 1);
}

static void quiet(unsigned shard, const char *line, void *arg)
{
    (void)shard;
    (void)line;
    (void)arg;
}

/* What the parent's other threads do while it forks: every lock a fork may catch held. */
static void busy(void *arg, unsigned index)
{
    (void)arg;
    char name[32];
    const char *params[] = {"k", "v", NULL};
    for (unsigned i = 0; !atomic_load(&g_stop); i++) {
        snprintf(name, sizeof(name), "life.%u.%u", index, i % 64); /* new names, then reused */
        switch (i % 4) {
        case 0:
            errinj_enable(name, false, params);
            break;
        case 1:
            errinj_inject_enter(name);
            break;
        case 2:
            errinj_message(name);
            break;
        default:
            errinj_disable(name);
            break;
        }
        errinj_inject_enter("life.shared");
        errinj_subscription *sub;
        if (i % 16 == 0 && errinj_subscribe(count_event, NULL, &sub) == 0)
            errinj_unsubscribe(sub);
    }
}

/* In the child: the library works as in a fresh process. 0 on success. */
static int child_main(void)
{
    /* A lock inherited held would hang here: the alarm turns that into a failure. */
    alarm(20);
    errinj_subscription *sub;
    if (errinj_subscribe(count_event, NULL, &sub) != 0)
        return 2;
    unsigned before = atomic_load(&g_events);
    if (errinj_enable("life.child", false, NULL) != 0 || !errinj_inject_enter("life.child"))
        return 3;
    if (errinj_message("life.child") != 0 || errinj_disable("life.child") != 0)
        return 4;
    if (errinj_inject_enter("life.child"))
        return 5;
    errinj_unsubscribe(sub);
    if (atomic_load(&g_events) <= before)
        return 6;
    errinj_set_log(quiet, NULL); /* the log's writer lock */
    errinj_disable_all();
    return 0;
}

static void a_child_forked_amid_every_kind_of_call_can_make_them_all(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    /* GCC 12's AddressSanitizer allocator takes no lock across fork(): a child that allocates
     * after a fork amid the other threads' allocations can hang inside ASan's malloc (seen in
     * SizeClassAllocator64::GetFromAllocator), whatever the library does. glibc's malloc and
     * TSan's both prepare for fork, so the test runs in the plain and the TSan builds. */
    skip();
#endif
    errinj_set_log(quiet, NULL);
    assert_int_equal(errinj_enable("life.shared", false, NULL), 0);
    atomic_store(&g_stop, false);
    struct crew crew;
    crew_start(&crew, 3, busy, NULL);
    for (int i = 0; i < FORKS; i++) {
        /* Change the logger too, so a fork can meet its lock held for writing. */
        errinj_set_log(i % 2 ? quiet : NULL, NULL);
        pid_t child = fork();
        if (child == 0)
            _exit(child_main());
        assert_true(child > 0);
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            atomic_store(&g_stop, true);
            crew_join(&crew);
            fail_msg("fork %d: the child %s %d", i, WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    atomic_store(&g_stop, true);
    assert_true(crew_join_within(&crew, 30));
    /* The parent's own locks were released after each fork: it still does everything. */
    assert_true(errinj_inject_enter("life.shared"));
    assert_int_equal(errinj_disable("life.shared"), 0);
    errinj_disable_all();
    errinj_set_log(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_child_forked_amid_every_kind_of_call_can_make_them_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
