/*
 * http_query.c - what a request asks, read from its path and query: percent-decoding, injection
 * names, integers and seconds, the events stream's filter and the server-side wait's query.
 *
 * Each parser checks every value before it keeps any, and answers a bad one with a 400 that
 * names the value, so that a refused request changes nothing.
 */
#include "http_routes.h"

#include "control.h"
#include "events.h"
#include "history.h"
#include "names.h"
#include "registry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoding ------------------------------------------------------------------------------ */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape, an embedded NUL or no memory. */
char *errinj__http_decode(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return out;
}

/* Decodes and checks an injection name from a path segment. NULL with *why on failure. */
char *errinj__http_decode_name(const char *seg, size_t len, const char **why)
{
    size_t n;
    char *name = errinj__http_decode(seg, len, &n);
    if (name == NULL) {
        *why = "injection name has a bad percent-encoding";
        return NULL;
    }
    if (!errinj__name_valid(name, n)) {
        *why = "injection name must be 1 to 255 bytes of UTF-8 without control characters";
        free(name);
        return NULL;
    }
    return name;
}

/* Query values: '+' was already turned into ' ' by the HTTP layer only for MHD; decode %XX here. */
char *errinj__http_query_value(const struct errinj__query_arg *arg)
{
    const char *v = arg->value != NULL ? arg->value : "";
    return errinj__http_decode(v, strlen(v), NULL);
}

bool errinj__http_query_is(const struct errinj__query_arg *arg, const char *key)
{
    return strcmp(arg->key, key) == 0;
}

/* Parses a non-negative decimal integer; false on anything else. */
static bool parse_count(const char *s, long long *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return false;
    long long v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* Seconds with an optional fraction ("30", "0.25") into milliseconds, rounded up; false on
 * anything else or beyond max_ms. */
static bool parse_seconds_ms(const char *s, int64_t max_ms, int64_t *out)
{
    int64_t whole = 0, frac_ns = 0, scale = 100000000;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > max_ms / 1000)
            return false;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++) {
            frac_ns += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (*p != '\0')
        return false;
    int64_t ms = whole * 1000 + (frac_ns + 999999) / 1000000;
    if (ms > max_ms)
        return false;
    *out = ms;
    return true;
}

/* Every phase's bit: what phase=all asks for. */
#define ALL_PHASES ((1u << ERRINJ__PHASE_COUNT) - 1)

/* The phase named v (from names.h's one list), or -1. */
static int phase_index(const char *v)
{
    enum errinj__phase p;
    return errinj__phase_parse(v, strlen(v), &p) ? (int)p : -1;
}

/* The point type named v, or -1. */
static int type_index(const char *v)
{
    errinj_type t;
    return errinj__type_parse(v, strlen(v), &t) ? (int)t : -1;
}

/* Validates GET .../injection/{name}/wait into reply->wait_query (taking name); false after a 400. */
bool errinj__http_parse_wait(char *name, const struct errinj__http_request *req, struct errinj__http_reply *reply)
{
    struct errinj__wait_query *w = &reply->wait_query;
    *w = (struct errinj__wait_query){.name = name, .count = 1, .timeout_ms = 30 * 1000};
    bool after_given = false;
    const char *bad = NULL;
    for (size_t i = 0; i < req->query_count && bad == NULL; i++) {
        const struct errinj__query_arg *arg = &req->query[i];
        char *v = errinj__http_query_value(arg);
        long long n;
        if (v == NULL) {
            bad = "query value has a bad percent-encoding";
        } else if (errinj__http_query_is(arg, "phase")) {
            int p = phase_index(v);
            if (strcmp(v, "all") == 0)
                w->phases |= ALL_PHASES;
            else if (p < 0)
                bad = "phase must be hit, waiting, released, timeout or all";
            else
                w->phases |= 1u << p;
        } else if (errinj__http_query_is(arg, "count")) {
            if (!parse_count(v, &n) || n < 1 || n > ERRINJ__WAIT_COUNT_MAX)
                bad = "count must be an integer from 1 to 10000";
            else
                w->count = (uint64_t)n;
        } else if (errinj__http_query_is(arg, "after")) {
            if (!parse_count(v, &n))
                bad = "after must be a non-negative integer (an event seq)";
            else
                w->after = (uint64_t)n, after_given = true;
        } else if (errinj__http_query_is(arg, "timeout")) {
            if (!parse_seconds_ms(v, ERRINJ__WAIT_TIMEOUT_MAX_MS, &w->timeout_ms))
                bad = "timeout must be seconds from 0 to 3600 (fractions allowed)";
        }
        free(v);
    }
    if (bad != NULL) {
        errinj__http_error(reply, 400, bad);
        return false;
    }
    if (w->phases == 0)
        w->phases = 1u << ERRINJ__PHASE_HIT;
    /* By default from the latest enable: enable, act, wait then sees every hit of the act. A
     * name never enabled has no such moment; its wait starts now. */
    if (!after_given && !errinj__enable_seq(name, &w->after))
        w->after = errinj__seq_last();
    reply->wait = true;
    return true;
}

/* Validates the events query into reply->filter; false after setting a 400. */
bool errinj__http_parse_filter(const struct errinj__http_request *req, struct errinj__http_reply *reply)
{
    struct errinj__filter *f = &reply->filter;
    *f = (struct errinj__filter){.shard = -1, .since = -1};
    size_t names = 0;
    const char *bad = NULL;
    for (size_t i = 0; i < req->query_count && bad == NULL; i++) {
        const struct errinj__query_arg *arg = &req->query[i];
        char *v = errinj__http_query_value(arg);
        if (v == NULL) {
            bad = "query value has a bad percent-encoding";
            break;
        }
        if (errinj__http_query_is(arg, "injection")) {
            if (!errinj__name_valid(v, strlen(v))) {
                bad = "injection must be a valid injection name";
            } else {
                char **grown = realloc(f->injections, (names + 2) * sizeof(char *));
                if (grown == NULL) {
                    bad = "out of memory";
                } else {
                    f->injections = grown;
                    f->injections[names++] = v;
                    f->injections[names] = NULL;
                    v = NULL;
                }
            }
        } else if (errinj__http_query_is(arg, "type")) {
            int t = type_index(v);
            if (t < 0)
                bad = "type must be sleep, exception, lambda, handler or enter";
            else
                f->types |= 1u << t;
        } else if (errinj__http_query_is(arg, "phase")) {
            int p = phase_index(v);
            if (strcmp(v, "all") == 0)
                f->phases |= ALL_PHASES;
            else if (p < 0)
                bad = "phase must be hit, waiting, released, timeout or all";
            else
                f->phases |= 1u << p;
        } else if (errinj__http_query_is(arg, "shard")) {
            if (!parse_count(v, &f->shard) || f->shard > 0xffffffffll)
                bad = "shard must be a non-negative integer";
        } else if (errinj__http_query_is(arg, "since")) {
            if (!parse_count(v, &f->since))
                bad = "since must be a non-negative integer";
        }
        free(v);
    }
    const char *last_id = req->header != NULL ? req->header(req->header_ctx, "Last-Event-ID") : NULL;
    if (bad == NULL && last_id != NULL && last_id[0] != '\0' && !parse_count(last_id, &f->since))
        bad = "Last-Event-ID must be a non-negative integer";
    if (bad != NULL) {
        errinj__filter_free(f);
        errinj__http_error(reply, 400, bad);
        return false;
    }
    if (f->phases == 0)
        f->phases = 1u << ERRINJ__PHASE_HIT;
    return true;
}

bool errinj__filter_passes(const struct errinj__filter *f, const struct frame *fr)
{
    if (f->types != 0 && !(f->types & (1u << fr->type)))
        return false;
    if (!(f->phases & (1u << fr->phase)))
        return false;
    if (f->shard >= 0 && (unsigned long long)f->shard != fr->shard)
        return false;
    if (f->injections == NULL)
        return true;
    for (char **n = f->injections; *n != NULL; n++)
        if (strcmp(*n, errinj__entry_name(fr->entry)) == 0)
            return true;
    return false;
}

