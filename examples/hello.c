/*
 * hello.c - the six errinj call-site forms in one small program, to copy from.
 *
 * Each point below is passed once while disabled (nothing happens) and once enabled (it
 * fires). A subscriber prints every event, which is how a test learns that a point fired
 * without reading logs. The wait-for-message point needs a second thread to send the
 * message; that thread waits for the point's "waiting" event, not for a guessed delay.
 * No HTTP server is involved: errinj_enable() is the same call the REST API makes.
 *
 * Build: cc hello.c $(pkg-config --cflags --libs errinj) -pthread
 */
#include <errinj.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "hello: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

/* ---- the subscriber: prints each event; tells the messenger when someone waits ------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static bool g_someone_waits;
static bool g_released; /* hello_wait woke up by a message or a disable, not by its timeout */

static void print_event(const errinj_event *ev, void *arg)
{
    (void)arg;
    printf("event seq=%" PRIu64 " injection=%s type=%s phase=%s shard=%u enters=%" PRIu64, ev->seq,
           ev->injection, ev->type, ev->phase, ev->shard, ev->enters);
    for (const char *const *p = ev->parameters; p[0] != NULL; p += 2)
        printf(" %s=%s", p[0], p[1]);
    printf("\n");
    fflush(stdout);

    if (strcmp(ev->injection, "hello_wait") == 0 && strcmp(ev->phase, "waiting") == 0) {
        pthread_mutex_lock(&g_lock);
        g_someone_waits = true;
        pthread_cond_signal(&g_cond);
        pthread_mutex_unlock(&g_lock);
    }
    if (strcmp(ev->injection, "hello_wait") == 0 && strcmp(ev->phase, "released") == 0) {
        pthread_mutex_lock(&g_lock);
        g_released = true;
        pthread_mutex_unlock(&g_lock);
    }
}

/* Sends hello_wait its message once the main thread is parked in it. */
static void *messenger(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_someone_waits)
        pthread_cond_wait(&g_cond, &g_lock);
    pthread_mutex_unlock(&g_lock);
    errinj_message("hello_wait");
    return NULL;
}

/* ---- what the points call --------------------------------------------------------------- */

static void say_hello(void *arg)
{
    printf("lambda: hello, %s\n", (const char *)arg);
}

/* A handler decides what its point returns; here, from a parameter set at enable time. */
static int answer_handler(errinj_handler *h, void *arg)
{
    (void)arg;
    const char *answer = errinj_handler_get(h, "answer");
    printf("handler %s: answer=%s\n", errinj_handler_name(h), answer != NULL ? answer : "(none)");
    return answer != NULL && strcmp(answer, "yes") == 0 ? 1 : 0;
}

/* The code under test: in a server these lines sit on real paths (a write, a read, a flush). */
static int exercise(void)
{
    int hits = 0;
    ERRINJ_SLEEP("hello_sleep", 10);
    if (ERRINJ_EXCEPTION("hello_exception", ERRINJ_EINJECTED) != 0)
        hits++;
    ERRINJ_LAMBDA("hello_lambda", say_hello, "world");
    if (ERRINJ_HANDLER("hello_handler", answer_handler, NULL) == 1)
        hits++;
    if (ERRINJ_WAIT_FOR_MESSAGE("hello_wait", 10000) == ERRINJ_ETIMEDOUT)
        printf("wait: no message in 10 s\n"); /* a message or a disable returns 0 */
    if (ERRINJ_ENTER("hello_enter"))
        hits++;
    return hits;
}

int main(void)
{
    errinj_subscription *sub;
    CHECK(errinj_subscribe(print_event, NULL, &sub) == 0);

    printf("-- all points disabled: nothing fires\n");
    CHECK(exercise() == 0);

    printf("-- all points enabled\n");
    static const char *const sleep_params[] = {"duration_ms", "5", NULL};
    static const char *const handler_params[] = {"answer", "yes", NULL};
    CHECK(errinj_enable("hello_sleep", false, sleep_params) == 0);
    CHECK(errinj_enable("hello_exception", false, NULL) == 0);
    CHECK(errinj_enable("hello_lambda", false, NULL) == 0);
    CHECK(errinj_enable("hello_handler", false, handler_params) == 0);
    CHECK(errinj_enable("hello_wait", true, NULL) == 0); /* one-shot: fires once, then disables */
    CHECK(errinj_enable("hello_enter", false, NULL) == 0);

    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, messenger, NULL) == 0);
    CHECK(exercise() == 3);
    pthread_join(thread, NULL);

    CHECK(errinj_enters("hello_sleep") == 1);
    CHECK(errinj_enters("hello_wait") == 1); /* it parked and was released by the message */
    CHECK(!errinj_is_enabled("hello_wait"));
    pthread_mutex_lock(&g_lock);
    CHECK(g_released);
    pthread_mutex_unlock(&g_lock);

    errinj_disable_all();
    errinj_unsubscribe(sub);
    if (failures != 0) {
        printf("hello: %d checks failed\n", failures);
        return 1;
    }
    printf("hello: ok\n");
    return 0;
}
