/*
 * json.c - the JSON the library reads and writes, with jansson.
 *
 * Parameters arrive as JSON objects (REST bodies, ERRINJ_AT_STARTUP) and are kept as
 * strings: non-string values are stringified as ScyllaDB does, so 5 becomes "5" and
 * {"a":1} becomes "{\"a\":1}". Events leave as one compact line each, control characters
 * escaped, so an event always fits one SSE `data:` line. jansson refuses
 * strings that are not UTF-8; parameters set from C may be any bytes, so those are
 * converted lossily (U+FFFD) rather than dropped. WebSocket commands are read here field by
 * field and their replies built here, so that the session code sees no jansson.
 *
 * It stays one file (about 640 lines) on purpose: jansson is this file's alone, so every JSON
 * reader and writer of the library (REST, SSE, startup, WebSocket) is here; splitting it would
 * hand jansson to a second file.
 */
#define ERRINJ__JSON_JANSSON
#include "json.h"

#include "events.h"
#include "log.h"
#include "term.h"
#include "util.h"

#include <stdint.h>
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
        size_t n = errinj__utf8_sequence((const unsigned char *)s + i, len - i, NULL);
        if (n > 0) {
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
            continue;
        }
        memcpy(fixed + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

/* ---- SSE frames ------------------------------------------------------------------------------ */

/*
 * Frames are written by hand rather than through jansson: the consumer thread makes one per
 * event, and building a json_t tree, dumping it and copying it cost several microseconds per
 * event (most of the server's CPU under load). The output is byte for byte what jansson's
 * compact dump gives: the same key order, the same escapes.
 */
struct frame_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void frame_reserve(struct frame_buf *b, size_t more)
{
    if (b->failed || b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *grown = realloc(b->p, cap);
    if (grown == NULL) {
        b->failed = true;
        return;
    }
    b->p = grown;
    b->cap = cap;
}

static void frame_put(struct frame_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL then (an empty tail): memcpy must not see it */
    frame_reserve(b, n);
    if (!b->failed) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void frame_puts(struct frame_buf *b, const char *s)
{
    frame_put(b, s, strlen(s));
}

static void frame_int(struct frame_buf *b, long long v)
{
    char digits[24];
    frame_put(b, digits, (size_t)snprintf(digits, sizeof(digits), "%lld", v));
}

static void frame_uint(struct frame_buf *b, unsigned long long v)
{
    char digits[24];
    frame_put(b, digits, (size_t)snprintf(digits, sizeof(digits), "%llu", v));
}

/*
 * A JSON string as jansson writes it; bytes that are not UTF-8 become U+FFFD. The frame grows to
 * at most `limit` bytes: the string is cut before the first character that would not fit (never
 * inside an escape or a UTF-8 sequence) and still closed. Returns true when it was cut. The work
 * is bounded by what is written, so a huge value costs no more than the part that fits.
 */
static bool frame_string_within(struct frame_buf *b, const char *str, size_t limit)
{
    const unsigned char *s = (const unsigned char *)str;
    frame_put(b, "\"", 1);
    for (;;) {
        size_t room = b->len + 1 < limit ? limit - b->len - 1 : 0; /* the closing quote */
        /* Copy the longest run that needs no escape in one go. */
        size_t run = 0;
        while (run < room && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        frame_put(b, (const char *)s, run);
        s += run;
        room -= run;
        if (*s == '\0')
            break;
        unsigned c = *s;
        char esc[8];
        size_t n = 1, out;
        const char *piece = esc;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            out = 2;
        } else if (c < 0x20) {
            const char *named = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t" : NULL;
            if (named != NULL)
                piece = named, out = 2;
            else
                out = (size_t)snprintf(esc, sizeof(esc), "\\u%04X", c);
        } else if (c < 0x80) {
            out = 1; /* a plain character the run stopped at for want of room */
            piece = (const char *)s;
        } else {
            n = errinj__utf8_sequence(s, strnlen((const char *)s, 4), NULL);
            if (n == 0)
                piece = "\xef\xbf\xbd", out = 3, n = 1;
            else
                piece = (const char *)s, out = n;
        }
        if (out > room) {
            frame_put(b, "\"", 1);
            return true;
        }
        frame_put(b, piece, out);
        s += n;
    }
    frame_put(b, "\"", 1);
    return false;
}

static void frame_string(struct frame_buf *b, const char *str)
{
    frame_string_within(b, str, SIZE_MAX);
}

char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len)
{
    errinj_event ev;
    errinj__record_to_event(rec, &ev);
    struct frame_buf b = {0};
    frame_reserve(&b, 256);
    frame_puts(&b, "id: ");
    frame_uint(&b, ev.seq);
    frame_puts(&b, "\ndata: ");
    size_t line_start = b.len - 6;
    frame_puts(&b, "{\"injection\":");
    frame_string(&b, ev.injection);
    frame_puts(&b, ",\"type\":\"");
    frame_puts(&b, ev.type);
    frame_puts(&b, "\",\"phase\":\"");
    frame_puts(&b, ev.phase);
    frame_puts(&b, "\",\"shard\":");
    frame_uint(&b, ev.shard);
    frame_puts(&b, ",\"seq\":");
    frame_uint(&b, ev.seq);
    frame_puts(&b, ",\"thread\":");
    frame_int(&b, ev.thread);
    frame_puts(&b, ",\"ts_ns\":");
    frame_int(&b, ev.ts_ns);
    frame_puts(&b, ",\"enters\":");
    frame_uint(&b, ev.enters);
    frame_puts(&b, ",\"action\":\"");
    frame_puts(&b, ev.action);
    frame_puts(&b, "\",\"eval\":");
    frame_uint(&b, ev.eval);
    frame_puts(&b, ",\"parameters\":{");
    /* What follows the parameters, written first so that the parameters know their room. */
    static const char truncated[] = ",\"truncated\":true";
    struct frame_buf tail = {0};
    if (ev.file != NULL) {
        frame_puts(&tail, ",\"file\":");
        frame_string(&tail, ev.file);
        frame_puts(&tail, ",\"line\":");
        frame_int(&tail, ev.line);
    }
    if (ev.detail != NULL) {
        /* Already a compact JSON object (its maker's contract), so it is copied as it is. */
        frame_puts(&tail, ",\"detail\":");
        frame_puts(&tail, ev.detail);
    }
    /* The line: the parameters' "}", the tail, "}" and the line feed; a tail too long for the
     * line (a huge file name or detail) is left out rather than the event. */
    size_t fixed = b.len - line_start + 1 + (sizeof(truncated) - 1) + 2;
    if (tail.failed || fixed + tail.len > ERRINJ__EVENT_LINE_MAX)
        tail.len = 0;
    size_t limit = line_start + ERRINJ__EVENT_LINE_MAX - (fixed - (b.len - line_start)) - tail.len;
    bool cut = false;
    for (size_t i = 0; ev.parameters[i] != NULL && !cut; i += 2) {
        size_t mark = b.len;
        if (i > 0)
            frame_put(&b, ",", 1);
        /* A pair whose key does not fit with at least an empty value is left out. */
        if (frame_string_within(&b, ev.parameters[i], limit > 3 ? limit - 3 : 0) || b.len + 3 > limit) {
            b.len = mark;
            cut = true;
            break;
        }
        frame_put(&b, ":", 1);
        cut = frame_string_within(&b, ev.parameters[i + 1], limit);
    }
    frame_put(&b, "}", 1);
    if (cut)
        frame_puts(&b, truncated);
    frame_put(&b, tail.p, tail.len);
    free(tail.p);
    frame_put(&b, "}\n\n", 4); /* with its NUL, which len leaves out */
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}

size_t errinj__json_overflow_frame(char *buf, uint64_t dropped, uint64_t next_seq)
{
    int n = snprintf(buf, ERRINJ__OVERFLOW_FRAME_MAX, "event: overflow\ndata: {\"dropped\":%llu,\"next_seq\":%llu}\n\n",
                     (unsigned long long)dropped, (unsigned long long)next_seq);
    return (size_t)n;
}

/* ---- REST bodies ----------------------------------------------------------------------------- */

/* Dumps value compactly and frees it; NULL (and value freed) when value is NULL or out of memory. */
static char *dump(json_t *value, size_t *len)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(value);
    *len = text != NULL ? strlen(text) : 0;
    return text;
}

/* A seed as JSON: an integer where JSON parsers agree on it (jansson's integers are signed
 * 64-bit), else its decimal digits as a string. */
static json_t *seed_json(uint64_t seed)
{
    if (seed <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)seed);
    char digits[24];
    snprintf(digits, sizeof(digits), "%llu", (unsigned long long)seed);
    return json_string(digits);
}

static json_t *string_or_null(const char *s)
{
    return s != NULL ? errinj__json_string_lossy(s) : json_null();
}

char *errinj__json_error(int code, const char *message, size_t *len)
{
    return dump(json_pack("{s:o, s:i}", "message", errinj__json_string_lossy(message), "code", code), len);
}

char *errinj__json_uint(uint64_t value, size_t *len)
{
    return dump(json_integer((json_int_t)value), len);
}

char *errinj__json_injection(const errinj_state *st, const char *term, size_t *len)
{
    json_t *shard = json_object();
    json_object_set_new(shard, "enabled", json_boolean(st->enabled));
    if (st->enabled) {
        json_object_set_new(shard, "one_shot", json_boolean(st->one_shot));
        json_t *params = json_array();
        for (size_t i = 0; st->parameters[i] != NULL; i += 2)
            json_array_append_new(params, json_pack("{s:o, s:o}", "key", errinj__json_string_lossy(st->parameters[i]),
                                                    "value", errinj__json_string_lossy(st->parameters[i + 1])));
        json_object_set_new(shard, "parameters", params);
        json_object_set_new(shard, "term", json_string(term));
        json_object_set_new(shard, "seed", seed_json(st->seed));
    }
    json_t *list = json_array();
    json_array_append_new(list, shard);
    return dump(list, len);
}

char *errinj__json_status(const struct errinj__json_status *s, size_t *len)
{
    return dump(json_pack("{s:s, s:I, s:i, s:I, s:i, s:s, s:o}", "version", s->version, "seq", (json_int_t)s->seq,
                          "subscribers", (int)s->subscribers, "dropped", (json_int_t)s->dropped, "shards",
                          (int)s->shards, "instance", s->instance, "seed", seed_json(s->seed)),
                len);
}

struct errinj__json_list {
    json_t *array;
};

struct errinj__json_list *errinj__json_list_new(void)
{
    struct errinj__json_list *l = malloc(sizeof(*l));
    if (l != NULL && (l->array = json_array()) == NULL) {
        free(l);
        l = NULL;
    }
    return l;
}

void errinj__json_list_add_string(struct errinj__json_list *l, const char *s)
{
    if (l != NULL)
        json_array_append_new(l->array, json_string(s));
}

void errinj__json_list_add_point(struct errinj__json_list *l, const errinj_point *p, bool enabled, uint64_t enters,
                                 uint64_t evaluations, unsigned waiters)
{
    if (l == NULL)
        return;
    json_array_append_new(l->array, json_pack("{s:s, s:s, s:o, s:i, s:b, s:I, s:I, s:I}", "name", p->name, "type",
                                              errinj_type_name(p->type), "file", errinj__json_string_lossy(p->file),
                                              "line", p->line, "enabled", enabled, "enters", (json_int_t)enters,
                                              "evaluations", (json_int_t)evaluations, "waiters", (json_int_t)waiters));
}

void errinj__json_list_add_coverage(struct errinj__json_list *l, const struct errinj__coverage_row *row)
{
    if (l == NULL)
        return;
    json_array_append_new(l->array, json_pack("{s:o, s:o, s:o, s:o, s:b, s:I, s:I, s:I}", "name",
                                              errinj__json_string_lossy(row->name), "type", string_or_null(row->type),
                                              "file", string_or_null(row->file), "line",
                                              row->file != NULL ? json_integer(row->line) : json_null(), "enabled",
                                              row->enabled, "armed", (json_int_t)row->armed, "evaluations",
                                              (json_int_t)row->evaluations, "enters", (json_int_t)row->enters));
}

char *errinj__json_list_finish(struct errinj__json_list *l, size_t *len)
{
    *len = 0;
    if (l == NULL)
        return NULL;
    char *text = dump(l->array, len);
    free(l);
    return text;
}

int errinj__json_params(const char *body, size_t len, struct errinj__config **out, char *why, size_t why_len)
{
    *out = NULL;
    if (why_len > 0)
        why[0] = '\0';
    size_t blank = 0;
    while (blank < len && (body[blank] == ' ' || body[blank] == '\t' || body[blank] == '\n' || body[blank] == '\r' ||
                           body[blank] == '\v' || body[blank] == '\f'))
        blank++;
    json_t *params = NULL;
    if (blank < len) {
        json_error_t jerr;
        params = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
        if (params == NULL) {
            snprintf(why, why_len, "malformed JSON body: %s", jerr.text);
            return ERRINJ_EINVAL;
        }
    }
    const char *reason = "bad parameters";
    int rc = errinj__config_from_json(params, out, &reason);
    json_decref(params);
    if (rc == ERRINJ_EINVAL)
        snprintf(why, why_len, "%s", reason);
    return rc;
}

/* ---- ERRINJ_AT_STARTUP ----------------------------------------------------------------------- */

int errinj__json_startup_each(const char *text, int (*fn)(struct errinj__startup_item *item, void *arg), void *arg)
{
    json_error_t jerr;
    json_t *array = json_loads(text, 0, &jerr);
    if (array == NULL || !json_is_array(array)) {
        errinj__log("errinj: ERRINJ_AT_STARTUP must be a JSON array: %s", array == NULL ? jerr.text : "not an array");
        json_decref(array);
        return ERRINJ_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(array); i++) {
        json_t *item = json_array_get(array, i);
        const char *name = NULL, *term = NULL;
        int one_shot = 0;
        json_t *params = NULL, *seed = NULL;
        json_error_t perr;
        char where[64];
        snprintf(where, sizeof(where), "ERRINJ_AT_STARTUP item %zu", i);
        if (json_unpack_ex(item, &perr, JSON_STRICT, "{s:s, s?b, s?o, s?s, s?o}", "name", &name, "one_shot",
                           &one_shot, "parameters", &params, "term", &term, "seed", &seed) != 0) {
            errinj__log("errinj: %s: %s", where, perr.text);
            rc = ERRINJ_EINVAL;
            break;
        }
        uint64_t seed_value = 0;
        if (seed != NULL && !(json_is_integer(seed) && json_integer_value(seed) >= 0 &&
                              (seed_value = (uint64_t)json_integer_value(seed), true)) &&
            !(json_is_string(seed) && errinj__seed_parse(json_string_value(seed), &seed_value))) {
            errinj__log("errinj: %s: seed must be an unsigned 64-bit integer (a number, or a string of digits)", where);
            rc = ERRINJ_EINVAL;
            break;
        }
        struct errinj__config *cfg = NULL;
        const char *why = "";
        rc = errinj__config_from_json(params, &cfg, &why);
        if (rc == ERRINJ_EINVAL)
            errinj__log("errinj: %s: %s", where, why);
        if (rc == 0) {
            struct errinj__startup_item it = {where, name, term, one_shot != 0, seed != NULL, seed_value, cfg};
            rc = fn(&it, arg);
        }
    }
    json_decref(array);
    return rc;
}

/* ---- WebSocket commands and replies ---------------------------------------------------------- */

struct errinj__json_doc {
    json_t *root;
};

struct errinj__json_doc *errinj__json_doc_parse(const char *text, size_t len, char *why, size_t why_len)
{
    json_error_t jerr;
    struct errinj__json_doc *d = malloc(sizeof(*d));
    if (d == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    d->root = json_loadb(text, len, 0, &jerr);
    if (d->root == NULL) {
        snprintf(why, why_len, "malformed JSON: %s", jerr.text);
        free(d);
        return NULL;
    }
    return d;
}

void errinj__json_doc_free(struct errinj__json_doc *d)
{
    if (d == NULL)
        return;
    json_decref(d->root);
    free(d);
}

bool errinj__json_doc_is_object(const struct errinj__json_doc *d)
{
    return json_is_object(d->root);
}

enum errinj__json_kind errinj__json_doc_kind(const struct errinj__json_doc *d, const char *key)
{
    const json_t *v = json_object_get(d->root, key);
    switch (v != NULL ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT: return ERRINJ__JSON_OBJECT;
    case JSON_ARRAY: return ERRINJ__JSON_ARRAY;
    case JSON_STRING: return ERRINJ__JSON_STRING;
    case JSON_INTEGER: return ERRINJ__JSON_INTEGER;
    case JSON_REAL: return ERRINJ__JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return ERRINJ__JSON_BOOL;
    case JSON_NULL: break;
    }
    return v != NULL ? ERRINJ__JSON_NULL : ERRINJ__JSON_ABSENT;
}

const char *errinj__json_doc_string(const struct errinj__json_doc *d, const char *key, size_t *len)
{
    const json_t *v = json_object_get(d->root, key);
    *len = json_string_length(v);
    return json_string_value(v);
}

bool errinj__json_doc_true(const struct errinj__json_doc *d, const char *key)
{
    return json_is_true(json_object_get(d->root, key));
}

bool errinj__json_doc_scalar(const struct errinj__json_doc *d, const char *key, char *out, size_t len)
{
    const json_t *v = json_object_get(d->root, key);
    if (json_is_string(v))
        return (size_t)snprintf(out, len, "%s", json_string_value(v)) < len;
    if (json_is_integer(v))
        return (size_t)snprintf(out, len, "%lld", (long long)json_integer_value(v)) < len;
    if (json_is_real(v))
        return (size_t)snprintf(out, len, "%.6f", json_real_value(v)) < len;
    if (json_is_boolean(v))
        return (size_t)snprintf(out, len, "%s", json_is_true(v) ? "true" : "false") < len;
    return false;
}

const char *errinj__json_doc_first_key_not(const struct errinj__json_doc *d,
                                           bool (*allowed)(const char *key, const void *arg), const void *arg)
{
    const char *key;
    json_t *value;
    json_object_foreach(d->root, key, value) {
        if (!allowed(key, arg))
            return key;
    }
    return NULL;
}

char *errinj__json_doc_field_text(const struct errinj__json_doc *d, const char *key, size_t *len)
{
    json_t *v = json_object_get(d->root, key);
    *len = 0;
    if (v == NULL)
        return NULL;
    return dump(json_incref(v), len);
}

/* The command's id from its JSON text; JSON null for none. */
static json_t *ws_id(const char *id)
{
    json_t *v = id != NULL ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;
    return v != NULL ? v : json_null();
}

char *errinj__json_ws_error(const char *id, int code, const char *message, size_t *len)
{
    return dump(json_pack("{s:o, s:b, s:o, s:i}", "id", ws_id(id), "ok", 0, "message",
                          errinj__json_string_lossy(message), "code", code),
                len);
}

char *errinj__json_ws_answer(const struct errinj__json_ws_answer *a, size_t *len)
{
    json_t *body = a->body_len > 0 ? json_loadb(a->body, a->body_len, JSON_DECODE_ANY, NULL) : NULL;
    if (a->status != 200) {
        const char *message = json_string_value(json_object_get(body, "message"));
        char *text = errinj__json_ws_error(a->id, a->status, message != NULL ? message : a->refused, len);
        json_decref(body);
        return text;
    }
    json_t *out = json_pack("{s:o, s:b}", "id", ws_id(a->id), "ok", 1);
    if (out != NULL && a->has_seq)
        json_object_set_new(out, "seq", json_integer((json_int_t)a->seq));
    if (out != NULL && a->warning != NULL)
        json_object_set_new(out, "warning", errinj__json_string_lossy(a->warning));
    if (out != NULL && a->shape == ERRINJ__WS_ANSWER_FIRST_ELEMENT && json_is_array(body))
        json_object_update(out, json_array_get(body, 0));
    else if (out != NULL && a->shape == ERRINJ__WS_ANSWER_EVENTS && body != NULL)
        json_object_set(out, "events", body);
    json_decref(body);
    return dump(out, len);
}
