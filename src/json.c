/*
 * json.c - the JSON the library reads and writes, with jansson.
 *
 * Parameters arrive as JSON objects (REST bodies, ERRINJ_AT_STARTUP) and are kept as
 * strings: non-string values are stringified as ScyllaDB does, so 5 becomes "5" and
 * {"a":1} becomes "{\"a\":1}". Events leave as one compact line each; jansson escapes
 * control characters, so an event always fits one SSE `data:` line. jansson refuses
 * strings that are not UTF-8; parameters set from C may be any bytes, so those are
 * converted lossily (U+FFFD) rather than dropped.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int errinj__config_from_json(const json_t *params, struct errinj__config **out, const char **why)
{
    *out = NULL;
    if (params == NULL || json_is_null(params)) {
        *out = errinj__config_new(NULL);
        return *out != NULL ? 0 : ERRINJ_ENOMEM;
    }
    if (!json_is_object(params)) {
        *why = "parameters must be a JSON object";
        return ERRINJ_EINVAL;
    }
    size_t n = json_object_size(params);
    const char **kv = calloc(2 * n + 1, sizeof(*kv));
    char **owned = calloc(n + 1, sizeof(*owned));
    int rc = 0;
    size_t i = 0;
    const char *key;
    json_t *value;
    if (kv == NULL || owned == NULL) {
        rc = ERRINJ_ENOMEM;
        goto out;
    }
    json_object_foreach((json_t *)params, key, value) {
        if (strlen(key) != json_object_iter_key_len(json_object_key_to_iter(key))) {
            *why = "parameter names must not contain NUL";
            rc = ERRINJ_EINVAL;
            goto out;
        }
        kv[2 * i] = key;
        if (json_is_string(value)) {
            if (strlen(json_string_value(value)) != json_string_length(value)) {
                *why = "parameter values must not contain NUL";
                rc = ERRINJ_EINVAL;
                goto out;
            }
            kv[2 * i + 1] = json_string_value(value);
        } else {
            owned[i] = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            if (owned[i] == NULL) {
                rc = ERRINJ_ENOMEM;
                goto out;
            }
            kv[2 * i + 1] = owned[i];
        }
        i++;
    }
    *out = errinj__config_new(kv);
    if (*out == NULL)
        rc = ERRINJ_ENOMEM;
out:
    for (size_t k = 0; owned != NULL && k < n; k++)
        free(owned[k]);
    free(owned);
    free(kv);
    return rc;
}

json_t *errinj__json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    /* Not UTF-8: copy valid runs and replace each bad byte with U+FFFD. */
    size_t len = strlen(s);
    char *fixed = malloc(3 * len + 1);
    if (fixed == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            n = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        char probe[5] = {0};
        if (n > 0 && i + n <= len) {
            memcpy(probe, s + i, n);
            json_t *ok = json_stringn(probe, n);
            if (ok != NULL) {
                json_decref(ok);
                memcpy(fixed + o, probe, n);
                o += n;
                i += n;
                continue;
            }
        }
        memcpy(fixed + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len)
{
    errinj_event ev;
    errinj__record_to_event(rec, &ev);
    json_t *params = json_object();
    for (size_t i = 0; params != NULL && ev.parameters[i] != NULL; i += 2) {
        /* Keys that are not UTF-8 cannot be JSON object keys; make them so. */
        json_t *key = errinj__json_string_lossy(ev.parameters[i]);
        if (key != NULL)
            json_object_set_new(params, json_string_value(key), errinj__json_string_lossy(ev.parameters[i + 1]));
        json_decref(key);
    }
    json_t *obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o?}", "injection", ev.injection, "type",
                            ev.type, "phase", ev.phase, "shard", (json_int_t)ev.shard, "seq", (json_int_t)ev.seq,
                            "thread", (json_int_t)ev.thread, "ts_ns", (json_int_t)ev.ts_ns, "enters",
                            (json_int_t)ev.enters, "parameters", params);
    if (obj == NULL)
        return NULL;
    if (ev.file != NULL) {
        json_object_set_new(obj, "file", errinj__json_string_lossy(ev.file));
        json_object_set_new(obj, "line", json_integer(ev.line));
    }
    char *data = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (data == NULL)
        return NULL;
    size_t data_len = strlen(data);
    char *frame = malloc(data_len + 48);
    if (frame != NULL)
        *len = (size_t)sprintf(frame, "id: %llu\ndata: %s\n\n", (unsigned long long)ev.seq, data);
    free(data);
    return frame;
}
