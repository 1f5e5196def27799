/*
 * seccomp_fire.c - fires every point type from a thread confined by a seccomp filter that allows
 * only the system calls errinj(3) lists for a fire, with the server running and an in-process
 * subscriber attached. A call outside the list raises SIGSYS: the handler prints its number and
 * the test fails. Allowed, as errinj(3) says a fire may call: futex (locks, the handler's wait),
 * write (the one wake of the server thread, an eventfd), clock_nanosleep (the sleep point's own
 * sleep), clock_gettime (normally the vDSO, no system call). Allowed for the harness itself, after
 * the fires: exit, madvise, munmap, rt_sigprocmask (thread exit).
 */
#define _GNU_SOURCE
#include <errinj.h>

#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int g_events;
static int g_results[8];
static int g_lambda_ran;

static void on_event(const errinj_event *ev, void *arg)
{
    (void)ev, (void)arg;
    atomic_fetch_add(&g_events, 1);
}

static void lambda(void *arg)
{
    ++*(int *)arg;
}

static int handler(errinj_handler *h, void *arg)
{
    (void)arg;
    return errinj_handler_poll_for_message(h) ? 2 : 1;
}

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
    (void)sig, (void)ctx;
    char line[96];
    int n = snprintf(line, sizeof(line), "seccomp: a fire made the forbidden system call %d\n", info->si_syscall);
    (void)!write(2, line, (size_t)n);
    _exit(3);
}

static void confine(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    const int allowed[] = {
        /* what a fire may call (errinj(3), "System calls") */
        SCMP_SYS(futex), SCMP_SYS(write), SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime),
        /* the harness: thread exit */
        SCMP_SYS(exit), SCMP_SYS(madvise), SCMP_SYS(munmap), SCMP_SYS(rt_sigprocmask),
    };
    if (ctx == NULL)
        abort();
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0) != 0)
            abort();
    if (seccomp_load(ctx) != 0) {
        perror("seccomp_load");
        exit(2);
    }
    seccomp_release(ctx);
}

static void *fire_everything(void *arg)
{
    (void)arg;
    confine();
    ERRINJ_SLEEP("sc_sleep", 1);
    g_results[0] = ERRINJ_EXCEPTION("sc_exception", -5);
    ERRINJ_LAMBDA("sc_lambda", lambda, &g_lambda_ran);
    g_results[1] = ERRINJ_HANDLER("sc_handler", handler, NULL);
    g_results[2] = ERRINJ_WAIT_FOR_MESSAGE("sc_wait", 1);
    g_results[3] = ERRINJ_ENTER("sc_enter");
    g_results[4] = errinj_inject_exception("sc_runtime", -6);
    g_results[5] = ERRINJ_EXCEPTION("sc_one_shot", -7); /* a one-shot takes the entry's mutex */
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);

    errinj_set_log(NULL, NULL); /* the default log writes to stderr: the log function's own call */
    errinj_server_opts opts = {.listen = "127.0.0.1:0"};
    errinj_server *srv = NULL;
    errinj_subscription *sub = NULL;
    if (errinj_server_start(&opts, &srv) != 0 || errinj_subscribe(on_event, NULL, &sub) != 0)
        return 2;
    const char *names[] = {"sc_sleep", "sc_exception", "sc_lambda", "sc_handler", "sc_wait", "sc_enter", "sc_runtime"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        errinj_enable(names[i], false, NULL);
    errinj_enable("sc_one_shot", true, NULL);

    pthread_t t;
    pthread_create(&t, NULL, fire_everything, NULL);
    pthread_join(t, NULL);

    int want[] = {-5, 1, ERRINJ_ETIMEDOUT, 1, -6, -7};
    int bad = g_lambda_ran != 1;
    for (int i = 0; i < 6; i++)
        if (g_results[i] != want[i]) {
            fprintf(stderr, "result %d: %d, want %d\n", i, g_results[i], want[i]);
            bad = 1;
        }
    /* hit for each of the 8 fires, plus waiting and timeout for the wait */
    if (atomic_load(&g_events) != 10) {
        fprintf(stderr, "events: %d, want 10\n", atomic_load(&g_events));
        bad = 1;
    }
    errinj_unsubscribe(sub);
    errinj_server_stop(srv);
    printf("%s: every point type fired under the seccomp filter\n", bad ? "FAIL" : "ok");
    return bad;
}
