/*
 * env.c - configuration from the environment, for servers that should not grow flags:
 * ERRINJ_AT_STARTUP (a JSON array of {"name", "one_shot", "parameters", "term", "seed"}) and
 * ERRINJ_FAILPOINTS (fail-rs's "name=term;name2=term") enable injections before the first
 * point runs, all of both or nothing; ERRINJ_SEED is checked here (the term code reads it as
 * the process seed); ERRINJ_TOKEN and ERRINJ_HTTP start the server. The server started here
 * is stopped at exit.
 */
#include "json.h"
#include "log.h"
#include "names.h"
#include "control.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static errinj_server *g_env_server;

static void stop_env_server(void)
{
    errinj_server_stop(g_env_server);
    g_env_server = NULL;
}

/* One injection to enable, validated, waiting for the rest to validate too. */
struct pending {
    char *name;
    char *term;
    bool one_shot, has_seed;
    uint64_t seed;
    struct errinj__config *cfg;
};

struct pending_list {
    struct pending *items;
    size_t count, cap;
};

static void pending_free(struct pending_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        free(list->items[i].term);
        errinj__config_unref(list->items[i].cfg);
    }
    free(list->items);
    *list = (struct pending_list){0};
}

/* Checks and queues one injection (cfg consumed); a bad term is logged with `where`. */
static int pending_add(struct pending_list *list, const char *where, const char *name, size_t name_len,
                       const char *term, size_t term_len, bool one_shot, bool has_seed, uint64_t seed,
                       struct errinj__config *cfg)
{
    if (!errinj__name_valid(name, name_len)) {
        errinj__log("errinj: %s: bad injection name", where);
        errinj__config_unref(cfg);
        return ERRINJ_EINVAL;
    }
    char *term_copy = term != NULL ? strndup(term, term_len) : NULL;
    char *name_copy = strndup(name, name_len);
    if ((term != NULL && term_copy == NULL) || name_copy == NULL) {
        free(term_copy);
        free(name_copy);
        errinj__config_unref(cfg);
        return ERRINJ_ENOMEM;
    }
    char why[512];
    int rc = term_copy != NULL ? errinj_term_check(term_copy, why, sizeof(why)) : 0;
    if (rc == 0 && term_copy != NULL && one_shot) {
        snprintf(why, sizeof(why), "one_shot and a term do not go together: one_shot is the term 1*on");
        rc = ERRINJ_EINVAL;
    }
    if (rc == 0 && list->count == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 8;
        struct pending *grown = realloc(list->items, cap * sizeof(*grown));
        if (grown == NULL) {
            rc = ERRINJ_ENOMEM;
        } else {
            list->items = grown;
            list->cap = cap;
        }
    }
    if (rc != 0) {
        if (rc == ERRINJ_EINVAL)
            errinj__log("errinj: %s (%s): %s", where, name_copy, why);
        free(term_copy);
        free(name_copy);
        errinj__config_unref(cfg);
        return rc;
    }
    list->items[list->count++] = (struct pending){name_copy, term_copy, one_shot, has_seed, seed, cfg};
    return 0;
}

static int queue_startup_item(struct errinj__startup_item *it, void *arg)
{
    return pending_add(arg, it->where, it->name, strlen(it->name), it->term, it->term != NULL ? strlen(it->term) : 0,
                       it->one_shot, it->has_seed, it->seed, it->cfg);
}

/* Parses the ERRINJ_AT_STARTUP text into the list; all-or-nothing. */
static int parse_at_startup(const char *text, struct pending_list *list)
{
    return errinj__json_startup_each(text, queue_startup_item, list);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ERRINJ_FAILPOINTS, fail-rs's FAILPOINTS form: "name=term;name2=term", blanks around parts ignored. */
static int parse_failpoints(const char *text, struct pending_list *list)
{
    int rc = 0;
    for (const char *p = text; rc == 0 && *p != '\0';) {
        const char *end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (a < b) {
            const char *eq = memchr(a, '=', (size_t)(b - a));
            char where[64];
            snprintf(where, sizeof(where), "ERRINJ_FAILPOINTS entry at offset %zu", (size_t)(a - text));
            if (eq == NULL) {
                errinj__log("errinj: %s: expected name=term", where);
                return ERRINJ_EINVAL;
            }
            const char *ne = eq, *ts = eq + 1;
            while (ne > a && is_blank(ne[-1]))
                ne--;
            while (ts < b && is_blank(*ts))
                ts++;
            struct errinj__config *cfg = errinj__config_new(NULL);
            if (cfg == NULL)
                return ERRINJ_ENOMEM;
            rc = pending_add(list, where, a, (size_t)(ne - a), ts, (size_t)(b - ts), false, false, 0, cfg);
        }
        p = *end == ';' ? end + 1 : end;
    }
    return rc;
}

/* Validates ERRINJ_AT_STARTUP and ERRINJ_FAILPOINTS whole, then enables them: all or nothing. */
static int enable_from_env(const char *at_startup, const char *failpoints)
{
    struct pending_list list = {0};
    int rc = 0;
    if (at_startup != NULL && at_startup[0] != '\0')
        rc = parse_at_startup(at_startup, &list);
    if (rc == 0 && failpoints != NULL && failpoints[0] != '\0')
        rc = parse_failpoints(failpoints, &list);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        struct pending *it = &list.items[i];
        char why[512];
        rc = errinj__enable_term(it->name, it->one_shot, it->term, it->has_seed, it->seed, it->cfg, why, sizeof(why));
        it->cfg = NULL; /* consumed */
    }
    pending_free(&list);
    return rc;
}

int errinj_init_from_env(void)
{
    const char *seed = getenv("ERRINJ_SEED");
    uint64_t unused;
    if (seed != NULL && seed[0] != '\0' && !errinj__seed_parse(seed, &unused)) {
        errinj__log("errinj: ERRINJ_SEED must be an unsigned 64-bit integer (decimal, or hex with 0x)");
        return ERRINJ_EINVAL;
    }
    int rc = enable_from_env(getenv("ERRINJ_AT_STARTUP"), getenv("ERRINJ_FAILPOINTS"));
    if (rc != 0)
        return rc;
    const char *listen = getenv("ERRINJ_HTTP");
    if (listen == NULL || listen[0] == '\0' || g_env_server != NULL)
        return 0;
    errinj_server_opts opts = {.listen = listen, .token = getenv("ERRINJ_TOKEN")};
    rc = errinj_server_start(&opts, &g_env_server);
    if (rc != 0) {
        errinj__log("errinj: cannot start the server on ERRINJ_HTTP=%s: %s", listen, errinj_strerror(rc));
        return rc;
    }
    atexit(stop_env_server);
    return 0;
}
