/*
 * env.c - configuration from the environment, for servers that should not grow flags:
 * ERRINJ_AT_STARTUP enables injections before the first point runs (a JSON array of
 * {"name", "one_shot", "parameters"}; all of it or nothing), ERRINJ_TOKEN and ERRINJ_HTTP
 * start the server. The server started here is stopped at exit.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static errinj_server *g_env_server;

static void stop_env_server(void)
{
    errinj_server_stop(g_env_server);
    g_env_server = NULL;
}

/* Parses the ERRINJ_AT_STARTUP text into parallel arrays; all-or-nothing. */
static int enable_at_startup(const char *text)
{
    json_error_t jerr;
    json_t *list = json_loads(text, 0, &jerr);
    if (list == NULL || !json_is_array(list)) {
        errinj__log("errinj: ERRINJ_AT_STARTUP must be a JSON array: %s", list == NULL ? jerr.text : "not an array");
        json_decref(list);
        return ERRINJ_EINVAL;
    }
    size_t n = json_array_size(list);
    struct errinj__config **cfgs = calloc(n + 1, sizeof(*cfgs));
    int rc = cfgs == NULL ? ERRINJ_ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *item = json_array_get(list, i);
        const char *name = NULL;
        int one_shot = 0;
        json_t *params = NULL;
        json_error_t perr;
        if (json_unpack_ex(item, &perr, JSON_STRICT, "{s:s, s?b, s?o}", "name", &name, "one_shot", &one_shot,
                           "parameters", &params) != 0) {
            errinj__log("errinj: ERRINJ_AT_STARTUP item %zu: %s", i, perr.text);
            rc = ERRINJ_EINVAL;
        } else if (!errinj__name_valid(name, strlen(name))) {
            errinj__log("errinj: ERRINJ_AT_STARTUP item %zu: bad injection name", i);
            rc = ERRINJ_EINVAL;
        } else {
            const char *why = "";
            rc = errinj__config_from_json(params, &cfgs[i], &why);
            if (rc == ERRINJ_EINVAL)
                errinj__log("errinj: ERRINJ_AT_STARTUP item %zu: %s", i, why);
        }
    }
    for (size_t i = 0; i < n && cfgs != NULL; i++) {
        if (rc == 0) {
            json_t *item = json_array_get(list, i);
            json_t *one_shot = json_object_get(item, "one_shot");
            rc = errinj__enable_config(json_string_value(json_object_get(item, "name")), json_is_true(one_shot), cfgs[i]);
        } else {
            errinj__config_unref(cfgs[i]);
        }
    }
    free(cfgs);
    json_decref(list);
    return rc;
}

int errinj_init_from_env(void)
{
    const char *at_startup = getenv("ERRINJ_AT_STARTUP");
    if (at_startup != NULL && at_startup[0] != '\0') {
        int rc = enable_at_startup(at_startup);
        if (rc != 0)
            return rc;
    }
    const char *listen = getenv("ERRINJ_HTTP");
    if (listen == NULL || listen[0] == '\0' || g_env_server != NULL)
        return 0;
    errinj_server_opts opts = {.listen = listen, .token = getenv("ERRINJ_TOKEN")};
    int rc = errinj_server_start(&opts, &g_env_server);
    if (rc != 0) {
        errinj__log("errinj: cannot start the server on ERRINJ_HTTP=%s: %s", listen, errinj_strerror(rc));
        return rc;
    }
    atexit(stop_env_server);
    return 0;
}
