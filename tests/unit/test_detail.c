/*
 * test_detail.c - events that carry a detail (what liberrinj-preload.so's libc points publish):
 * the exception fire with a detail, the parameters a wrapper reads before it fires, the ring's
 * copies of details (a fixed pool, then malloc), and the detail in the SSE frame.
 */
#include "helpers.h"
#include "events.h"
#include "json.h"
#include "points.h"
#include "registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* A site registered the way the preload registers its own: records in an array, no section. */
static struct errinj_site g_site = {.name = "detail.site", .file = "libc", .line = 0, .type = ERRINJ_TYPE_EXCEPTION};

struct seen {
    pthread_mutex_t mu;
    unsigned count;
    char detail[8][128];
    bool null_detail[8];
};

static void record_detail(const errinj_event *ev, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->count < 8) {
        s->null_detail[s->count] = ev->detail == NULL;
        snprintf(s->detail[s->count], sizeof(s->detail[0]), "%s", ev->detail != NULL ? ev->detail : "");
    }
    s->count++;
    pthread_mutex_unlock(&s->mu);
}

static int setup(void **state)
{
    (void)state;
    errinj_set_log(NULL, NULL);
    errinj_disable_all();
    return 0;
}

static void exception_fire_with_detail_gives_the_event_its_detail(void **state)
{
    (void)state;
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    errinj_subscription *sub;
    assert_int_equal(errinj_subscribe(record_detail, &s, &sub), 0);
    const char *detail = "{\"function\":\"write\",\"fd\":3,\"path\":\"x\",\"size\":10}";
    assert_int_equal(errinj__fire_exception_detail(&g_site, 28, detail), 0); /* not enabled: no event */
    assert_int_equal(s.count, 0);
    assert_int_equal(errinj_enable("detail.site", false, NULL), 0);
    assert_int_equal(errinj__fire_exception_detail(&g_site, 28, detail), 28);
    /* The same site fired without a detail afterwards has none: the detail belongs to one fire. */
    assert_int_equal(errinj__fire_exception(&g_site, 5), 5);
    errinj_unsubscribe(sub);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.detail[0], detail);
    assert_false(s.null_detail[0]);
    assert_true(s.null_detail[1]);
    assert_int_equal(errinj_enters("detail.site"), 2);
}

static void site_config_is_the_enabled_parameters_or_null(void **state)
{
    (void)state;
    assert_null(errinj__site_config(&g_site));
    const char *params[] = {"path", "*.db", NULL};
    assert_int_equal(errinj_enable("detail.site", false, params), 0);
    struct errinj__config *cfg = errinj__site_config(&g_site);
    assert_non_null(cfg);
    assert_string_equal(errinj__config_get(cfg, "path"), "*.db");
    /* A re-enable replaces the parameters; the reference taken before stays valid. */
    const char *other[] = {"path", "*.log", NULL};
    assert_int_equal(errinj_enable("detail.site", false, other), 0);
    assert_string_equal(errinj__config_get(cfg, "path"), "*.db");
    errinj__config_unref(cfg);
    cfg = errinj__site_config(&g_site);
    assert_string_equal(errinj__config_get(cfg, "path"), "*.log");
    errinj__config_unref(cfg);
    errinj_disable("detail.site");
    assert_null(errinj__site_config(&g_site));
}

static void wake_nothing(void *arg)
{
    (void)arg;
}

struct drained {
    unsigned count, wrong;
    uint64_t first_seq;
};

static void check_record(struct errinj__record *rec, void *arg)
{
    struct drained *d = arg;
    char want[128];
    snprintf(want, sizeof(want), "{\"function\":\"read\",\"fd\":%llu,\"path\":null,\"size\":1}",
             (unsigned long long)(rec->seq - d->first_seq));
    if (rec->detail == NULL || strcmp(rec->detail, want) != 0) {
        if (d->wrong++ == 0)
            print_error("seq %llu: detail %s, want %s\n", (unsigned long long)rec->seq,
                        rec->detail ? rec->detail : "NULL", want);
    }
    /* The frame carries the detail as it was given, as an object. */
    size_t len;
    char *frame = errinj__record_sse_frame(rec, &len);
    if (frame == NULL || strstr(frame, ",\"detail\":{\"function\":\"read\"") == NULL)
        d->wrong++;
    free(frame);
    errinj__config_unref(rec->cfg);
    errinj__detail_free(rec->detail);
    d->count++;
}

/* More undelivered details than the pool has slots (256): the rest are copied with malloc, and
 * every record keeps its own text; a second round reuses the returned slots. */
static void ring_keeps_a_copy_of_every_detail_past_the_pool(void **state)
{
    (void)state;
    assert_int_equal(errinj_enable("detail.site", false, NULL), 0);
    uint64_t base = 0;
    struct errinj__ring *ring = errinj__ring_attach(2048, wake_nothing, NULL, &base);
    assert_non_null(ring);
    for (int round = 0; round < 2; round++) {
        struct drained d = {.first_seq = errinj__seq_last() + 1};
        for (unsigned i = 0; i < 1000; i++) {
            char detail[128];
            snprintf(detail, sizeof(detail), "{\"function\":\"read\",\"fd\":%u,\"path\":null,\"size\":1}", i);
            assert_int_equal(errinj__fire_exception_detail(&g_site, 5, detail), 5);
        }
        assert_int_equal(errinj__ring_drain(ring, check_record, &d), 1000);
        assert_int_equal(d.wrong, 0);
        assert_int_equal(d.count, 1000);
    }
    errinj__ring_detach(ring);
    errinj_disable("detail.site");
}

int main(void)
{
    errinj__site_list(&g_site);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(exception_fire_with_detail_gives_the_event_its_detail, setup),
        cmocka_unit_test_setup(site_config_is_the_enabled_parameters_or_null, setup),
        cmocka_unit_test_setup(ring_keeps_a_copy_of_every_detail_past_the_pool, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
