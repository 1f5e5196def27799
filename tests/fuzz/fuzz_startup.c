/*
 * fuzz_startup.c - libFuzzer driver for ERRINJ_AT_STARTUP: the input is the variable's value,
 * read by errinj_init_from_env() exactly as a server's main() would (ERRINJ_HTTP unset, so no
 * server starts).
 *
 * Checks the all-or-nothing rule of errinj(3): when errinj_init_from_env() fails nothing is
 * enabled; when it succeeds every listed name is enabled with the one_shot and parameters of
 * its last listing. Names are then disabled one by one (not errinj_disable_all(), whose cost
 * grows with every name the fuzzer ever created).
 */
#include "names.h"
#include "control.h"
#include "registry.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_startup"
#include "check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    errinj_set_log(NULL, NULL);
    /* A point of this driver's own. Besides putting an entry in the catalogue, it keeps
     * errinj.h's module constructor clear of undefined behaviour: with no point in the
     * program, __start_errinj_sites is NULL and &__start_errinj_sites[0] is a zero offset
     * applied to NULL, which clang's UBSan aborts on (BUG reported; see CMakeLists.txt). */
    (void)ERRINJ_ENTER("fuzz.startup.site");
    unsetenv("ERRINJ_HTTP");
    unsetenv("ERRINJ_TOKEN");
    return 0;
}

/* The item that a name's last listing in the array gave, or NULL. */
static json_t *last_item_named(json_t *list, const char *name)
{
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(list, i), "name"));
        if (n != NULL && strcmp(n, name) == 0)
            found = json_array_get(list, i);
    }
    return found;
}

static void check_enabled_as_listed(json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *item = json_array_get(list, i);
        json_t *name = json_object_get(item, "name");
        CHECK(json_is_string(name), "accepted item %zu without a string name", i);
        CHECK(strlen(json_string_value(name)) == json_string_length(name), "accepted a name with NUL");
        const char *n = json_string_value(name);
        CHECK(errinj__name_valid(n, strlen(n)), "accepted an invalid name");
        if (last_item_named(list, n) != item)
            continue;
        struct errinj__entry_state st;
        errinj__entry_state(n, &st);
        CHECK(st.enabled, "%s not enabled", n);
        CHECK(st.one_shot == json_is_true(json_object_get(item, "one_shot")), "%s one_shot", n);
        json_t *params = json_object_get(item, "parameters");
        CHECK(st.cfg->pairs == (json_is_object(params) ? json_object_size(params) : 0), "%s has %zu pairs", n,
              st.cfg->pairs);
        errinj__config_unref(st.cfg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* an environment value ends at its first NUL anyway */
    setenv("ERRINJ_AT_STARTUP", text, 1);
    int rc = errinj_init_from_env();
    json_t *list = json_loads(text, 0, NULL);
    if (rc != 0) {
        CHECK(atomic_load(&errinj__enabled_count) == 0, "failed with %d but %d injections are enabled", rc,
              atomic_load(&errinj__enabled_count));
    } else if (text[0] != '\0') {
        CHECK(json_is_array(list), "accepted a value that is not a JSON array");
        check_enabled_as_listed(list);
    }
    for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(list, i), "name"));
        if (n != NULL)
            errinj_disable(n);
    }
    if (atomic_load(&errinj__enabled_count) != 0)
        errinj_disable_all(); /* not expected; keeps the next input independent anyway */
    json_decref(list);
    free(text);
    return 0;
}
