/*
 * fuzz_params.c - libFuzzer driver for parameter JSON: what a POST body or an
 * ERRINJ_AT_STARTUP "parameters" value becomes (errinj__config_from_json), how an enabled
 * injection shows it (GET /injection/{name}) and how an event carries it (the SSE frame).
 *
 * byte 0 picks the path: even, the rest is a JSON document (bit 1 set: parsed with
 * JSON_ALLOW_NUL, so "\u0000" reaches the library's own NUL checks); odd, the rest is raw
 * bytes given to errinj__json_string_lossy(), the converter for parameters set from C.
 *
 * Checks: a config has exactly the object's pairs, string values kept and others stringified;
 * the GET reply and the SSE frame are well-formed JSON with the same parameters; a frame is
 * exactly "id: N\ndata: <one line>\n\n"; a lossy string is valid UTF-8 and equals its input
 * whenever the input already was UTF-8.
 */
#include "http.h"
#define ERRINJ__JSON_JANSSON /* builds values with jansson */
#include "json.h"
#include "names.h"
#include "control.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.params"

#define FUZZ_TARGET "fuzz_params"
#include "check.h"

static const char *no_header(void *ctx, const char *name)
{
    (void)ctx, (void)name;
    return NULL;
}

/* The config must hold the object's pairs in order, strings as they are, the rest as compact JSON. */
static void check_config(const json_t *params, const struct errinj__config *cfg)
{
    if (params == NULL || json_is_null(params)) {
        CHECK(cfg->pairs == 0 && cfg->kv[0] == NULL, "null gave %zu pairs", cfg->pairs);
        return;
    }
    CHECK(cfg->pairs == json_object_size(params), "%zu pairs for %zu members", cfg->pairs, json_object_size(params));
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)params, key, value) {
        CHECK(strcmp(cfg->kv[2 * i], key) == 0, "key %zu", i);
        if (json_is_string(value)) {
            CHECK(strcmp(cfg->kv[2 * i + 1], json_string_value(value)) == 0, "value of %s", key);
        } else {
            json_error_t jerr;
            json_t *back = json_loads(cfg->kv[2 * i + 1], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            CHECK(back != NULL && json_equal(back, value), "stringified %s does not parse back: %s", key,
                  cfg->kv[2 * i + 1]);
            json_decref(back);
        }
        i++;
    }
    CHECK(cfg->kv[2 * i] == NULL, "kv not terminated");
}

/* GET /injection/NAME must show the parameters as [{"enabled":true,...,"parameters":[{key,value}]}]. */
static void check_get(const struct errinj__config *cfg)
{
    struct errinj__http_config hc = {0};
    struct errinj__http_request req = {.method = "GET", .path = "/v2/error_injection/injection/" NAME,
                                       .header = no_header, .body = ""};
    struct errinj__http_reply reply;
    errinj__http_handle(&hc, &req, &reply);
    CHECK(reply.status == 200, "GET gave %d", reply.status);
    json_error_t jerr;
    json_t *body = json_loadb(reply.body, reply.body_len, 0, &jerr);
    CHECK(body != NULL, "GET body: %s", jerr.text);
    json_t *list = json_object_get(json_array_get(body, 0), "parameters");
    CHECK(json_array_size(list) == cfg->pairs, "GET shows %zu of %zu parameters", json_array_size(list), cfg->pairs);
    for (size_t i = 0; i < cfg->pairs; i++) {
        json_t *kv = json_array_get(list, i);
        CHECK(strcmp(json_string_value(json_object_get(kv, "key")), cfg->kv[2 * i]) == 0, "GET key %zu", i);
        CHECK(strcmp(json_string_value(json_object_get(kv, "value")), cfg->kv[2 * i + 1]) == 0, "GET value %zu", i);
    }
    json_decref(body);
    errinj__http_reply_free(&reply);
}

/* The SSE frame of an event with these parameters: one id line, one data line, a blank line. */
static void check_frame(struct errinj__config *cfg)
{
    struct errinj__record rec = {
        .seq = 42,
        .entry = errinj__entry_find(NAME),
        .cfg = cfg,
        .type = ERRINJ_TYPE_HANDLER,
        .phase = ERRINJ__PHASE_HIT,
        .enters = 1,
    };
    size_t len = 0;
    char *frame = errinj__record_sse_frame(&rec, &len);
    CHECK(frame != NULL, "no frame");
    CHECK(len == strlen(frame) && len > 20, "frame length %zu", len);
    CHECK(strncmp(frame, "id: 42\ndata: {", 14) == 0, "frame starts %.20s", frame);
    CHECK(strcmp(frame + len - 2, "\n\n") == 0, "frame end");
    CHECK(memchr(frame + 13, '\n', len - 15) == NULL && memchr(frame, '\r', len) == NULL, "data spans lines");
    json_error_t jerr;
    json_t *data = json_loadb(frame + 13, len - 15, 0, &jerr);
    CHECK(data != NULL, "frame data: %s", jerr.text);
    json_t *params = json_object_get(data, "parameters");
    /* Keys are unique (they came from one JSON object), so nothing may collapse. */
    CHECK(json_object_size(params) == cfg->pairs, "frame has %zu of %zu", json_object_size(params), cfg->pairs);
    for (size_t i = 0; i < cfg->pairs; i++) {
        const char *v = json_string_value(json_object_get(params, cfg->kv[2 * i]));
        CHECK(v != NULL && strcmp(v, cfg->kv[2 * i + 1]) == 0, "frame value of %s", cfg->kv[2 * i]);
    }
    json_decref(data);
    free(frame);
}

static void fuzz_json(const uint8_t *data, size_t size, bool allow_nul)
{
    json_error_t jerr;
    json_t *params = json_loadb((const char *)data, size, JSON_DECODE_ANY | (allow_nul ? JSON_ALLOW_NUL : 0), &jerr);
    if (params == NULL)
        return;
    struct errinj__config *cfg = NULL;
    const char *why = NULL;
    int rc = errinj__config_from_json(params, &cfg, &why);
    if (rc != 0) {
        CHECK(rc == ERRINJ_EINVAL && why != NULL && cfg == NULL, "rc %d", rc);
        json_decref(params);
        return;
    }
    check_config(params, cfg);
    CHECK(errinj__enable_config(NAME, false, errinj__config_ref(cfg)) == 0, "enable");
    check_get(cfg);
    check_frame(cfg);
    errinj_disable(NAME);
    errinj__config_unref(cfg);
    json_decref(params);
}

static void fuzz_lossy(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    json_t *j = errinj__json_string_lossy(s);
    CHECK(j != NULL, "lossy gave NULL");
    const char *out = json_string_value(j);
    /* Valid UTF-8 per jansson, which refuses anything else. */
    json_t *again = json_stringn(out, json_string_length(j));
    CHECK(again != NULL, "lossy output is not UTF-8");
    json_decref(again);
    json_t *direct = json_string(s);
    if (direct != NULL)
        CHECK(strcmp(json_string_value(direct), out) == 0, "valid UTF-8 was changed");
    json_decref(direct);
    json_decref(j);
    free(s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    errinj_set_log(NULL, NULL);
    /* A point of this driver's own. Besides putting an entry in the catalogue, it keeps
     * errinj.h's module constructor clear of undefined behaviour: with no point in the
     * program, __start_errinj_sites is NULL and &__start_errinj_sites[0] is a zero offset
     * applied to NULL, which clang's UBSan aborts on (BUG reported; see CMakeLists.txt). */
    (void)ERRINJ_ENTER("fuzz.params.site");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_lossy(data + 1, size - 1);
    else
        fuzz_json(data + 1, size - 1, (data[0] & 2) != 0);
    return 0;
}
