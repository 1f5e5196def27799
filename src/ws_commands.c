/*
 * ws_commands.c - a WebSocket session's text message as a command (errinj-events(7)).
 *
 * A command `{"id":I,"op":OP,...}` is checked (an object, an id, a known op, only the fields
 * that op takes, each of its type), turned into the REST request it stands for (method, path
 * with the name percent-encoded, query, body from "parameters"), run by the REST router (same
 * validation, same effects as over HTTP) and the router's answer becomes the reply
 * `{"id":I,"ok":...}`. `wait` commands are server-side waits (wait.c) of the sessions' own,
 * answered from the history as it grows. Injections enabled with "session": true are the
 * session's: ws.c has them disabled when it closes.
 */
#include "ws_commands.h"

#include "control.h"
#include "http.h"
#define ERRINJ__JSON_JANSSON /* its session messages are built with jansson (see json.h) */
#include "json.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/v2/error_injection"

/* A `wait` command in progress: its waiter and the id its reply carries. */
struct errinj__ws_wait {
    struct errinj__ws_session *s;
    json_t *id;
    struct errinj__waiter *waiter;
    struct errinj__ws_wait *prev, *next;
};

static void queue_json(struct errinj__ws_session *s, json_t *value)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
    if (text != NULL)
        errinj__ws_session_queue_text(s, text, strlen(text));
    else
        errinj__ws_session_mark_closed(s); /* out of memory: the client is not misled with a missing reply */
    free(text);
    json_decref(value);
}

static json_t *error_reply(json_t *id, int code, const char *message)
{
    return json_pack("{s:O, s:b, s:s, s:i}", "id", id != NULL ? id : json_null(), "ok", 0, "message", message, "code",
                     code);
}

/* Appends s percent-encoded (everything but unreserved characters) to buf of size cap. */
static bool pct_append(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*len + 4 > cap)
            return false;
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~') {
            buf[(*len)++] = (char)*p;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*p >> 4];
            buf[(*len)++] = hex[*p & 15];
        }
    }
    buf[*len] = '\0';
    return true;
}

/* The fields each op takes besides id and op. */
struct op_spec {
    const char *op;
    const char *method;
    const char *suffix; /* after /injection/NAME; NULL: no name (disable_all) */
    const char *fields[7];
};

static const struct op_spec ops[] = {
    {"enable", "POST", "", {"name", "one_shot", "term", "seed", "parameters", "session", NULL}},
    {"disable", "DELETE", "", {"name", NULL}},
    {"disable_all", "DELETE", NULL, {NULL}},
    {"message", "POST", "/message", {"name", NULL}},
    {"get", "GET", "", {"name", NULL}},
    {"wait", "GET", "/wait", {"name", "phase", "count", "after", "timeout", NULL}},
};

static bool field_allowed(const struct op_spec *spec, const char *key)
{
    if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0)
        return true;
    for (const char *const *f = spec->fields; *f != NULL; f++)
        if (strcmp(*f, key) == 0)
            return true;
    return false;
}

/* A query value from a JSON scalar: strings as they are, integers and reals in decimal, booleans
 * as true/false. NULL for other types. */
static bool scalar_text(const json_t *v, char *out, size_t len)
{
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

static const char *no_header(void *ctx, const char *name)
{
    (void)ctx, (void)name;
    return NULL;
}

/* The number of enables of name so far (0: never enabled): tells whether the enable a session
 * made is still the latest. */
static uint64_t enable_generation(const char *name)
{
    return errinj__enable_count(name);
}

/* Remembers (or, for a non-session enable, forgets) a name the session owns. */
static void session_own(struct errinj__ws_session *s, const char *name, bool own)
{
    uint64_t gen = own ? enable_generation(name) : 0;
    for (size_t i = 0; i < s->owned_count; i++) {
        if (strcmp(s->owned[i].name, name) == 0) {
            if (own) {
                s->owned[i].gen = gen;
            } else {
                free(s->owned[i].name);
                s->owned[i] = s->owned[--s->owned_count];
            }
            return;
        }
    }
    if (!own)
        return;
    struct errinj__ws_owned *grown = realloc(s->owned, (s->owned_count + 1) * sizeof(*grown));
    char *copy = strdup(name);
    if (grown == NULL || copy == NULL) {
        free(copy);
        if (grown != NULL)
            s->owned = grown;
        errinj__log("errinj server: out of memory: session injection %s stays enabled after its session", name);
        return;
    }
    s->owned = grown;
    s->owned[s->owned_count++] = (struct errinj__ws_owned){copy, gen};
}

/* Starts a wait command with the query the router validated; replies now if settled. */
static json_t *start_wait(struct errinj__ws_session *s, json_t *id, struct errinj__http_reply *reply)
{
    struct errinj__ws *ws = s->ws;
    struct errinj__ws_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return error_reply(id, 500, "out of memory");
    w->s = s;
    w->id = json_incref(id);
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    struct errinj__http_reply refusal = {0};
    w->waiter = errinj__wait_start(ws->waits, &h, &reply->wait_query, w, errinj__now_mono_ns(), &refusal);
    if (w->waiter == NULL) {
        pthread_mutex_unlock(ws->host.mu);
        json_decref(w->id);
        free(w);
        json_t *body = refusal.body != NULL ? json_loadb(refusal.body, refusal.body_len, 0, NULL) : NULL;
        json_t *out = error_reply(id, refusal.status, body != NULL ? json_string_value(json_object_get(body, "message"))
                                                                   : "wait refused");
        json_decref(body);
        errinj__http_reply_free(&refusal);
        return out;
    }
    errinj__waiter_suspended(w->waiter);
    w->next = ws->wait_list;
    if (ws->wait_list != NULL)
        ws->wait_list->prev = w;
    ws->wait_list = w;
    errinj__ws_answer_settled_waits(ws);
    pthread_mutex_unlock(ws->host.mu);
    return NULL;
}

/* Turns the router's reply to an op into the session's reply. */
static json_t *reply_of(const struct op_spec *spec, json_t *id, const struct errinj__http_reply *reply)
{
    json_t *body = reply->body_len > 0 ? json_loadb(reply->body, reply->body_len, JSON_DECODE_ANY, NULL) : NULL;
    json_t *out;
    if (reply->status != 200) {
        const char *message = json_string_value(json_object_get(body, "message"));
        out = error_reply(id, reply->status, message != NULL ? message : "refused");
    } else {
        out = json_pack("{s:O, s:b}", "id", id, "ok", 1);
        if (reply->has_seq)
            json_object_set_new(out, "seq", json_integer((json_int_t)reply->seq));
        if (reply->warning != NULL)
            json_object_set_new(out, "warning", json_string(reply->warning));
        if (strcmp(spec->op, "get") == 0 && json_is_array(body))
            json_object_update(out, json_array_get(body, 0));
        else if (strcmp(spec->op, "wait") == 0 && body != NULL)
            json_object_set(out, "events", body);
    }
    json_decref(body);
    return out;
}

/* Runs one command; returns its reply, or NULL when a wait will answer later. */
static json_t *run_command(struct errinj__ws_session *s, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *cmd = json_loadb(text, len, 0, &jerr);
    if (cmd == NULL) {
        char message[300];
        snprintf(message, sizeof(message), "malformed JSON: %s", jerr.text);
        return error_reply(NULL, 400, message);
    }
    json_t *id = json_object_get(cmd, "id");
    json_t *out = NULL;
    const char *opname = json_string_value(json_object_get(cmd, "op"));
    const struct op_spec *spec = NULL;
    for (size_t i = 0; opname != NULL && i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].op, opname) == 0)
            spec = &ops[i];
    if (!json_is_object(cmd)) {
        out = error_reply(NULL, 400, "a command is a JSON object {\"id\":..., \"op\":...}");
        goto done;
    }
    if (id == NULL || !(json_is_integer(id) || json_is_string(id))) {
        out = error_reply(NULL, 400, "missing id: every command needs \"id\", an integer or a string");
        goto done;
    }
    if (spec == NULL) {
        out = error_reply(id, 400, "unknown op: op must be enable, disable, disable_all, message, get or wait");
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(cmd, key, value) {
        if (!field_allowed(spec, key)) {
            char message[300];
            snprintf(message, sizeof(message), "op %s takes no field \"%.200s\"", spec->op, key);
            out = error_reply(id, 400, message);
            goto done;
        }
    }
    /* The REST request this op stands for. */
    char path[3 * ERRINJ__NAME_MAX + 64];
    size_t plen = (size_t)snprintf(path, sizeof(path), PREFIX "/injection%s", spec->suffix != NULL ? "/" : "");
    if (spec->suffix != NULL) {
        json_t *name = json_object_get(cmd, "name");
        if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > ERRINJ__NAME_MAX ||
            strlen(json_string_value(name)) != json_string_length(name)) {
            out = error_reply(id, 400, "name must be a string of 1 to 255 bytes");
            goto done;
        }
        pct_append(path, sizeof(path), &plen, json_string_value(name));
        plen += (size_t)snprintf(path + plen, sizeof(path) - plen, "%s", spec->suffix);
    }
    char values[5][256 * 3 + 1];
    struct errinj__query_arg query[5];
    size_t nq = 0;
    static const char *const query_fields[] = {"one_shot", "term", "seed", "phase", "count", "after", "timeout"};
    for (size_t i = 0; i < sizeof(query_fields) / sizeof(query_fields[0]); i++) {
        json_t *v = json_object_get(cmd, query_fields[i]);
        if (v == NULL)
            continue;
        char raw[257];
        bool is_bool_field = strcmp(query_fields[i], "one_shot") == 0;
        bool is_text_field = strcmp(query_fields[i], "term") == 0 || strcmp(query_fields[i], "phase") == 0;
        if ((is_bool_field && !json_is_boolean(v)) || (is_text_field && !json_is_string(v)) ||
            (!is_bool_field && !is_text_field && !json_is_number(v) && !json_is_string(v)) ||
            !scalar_text(v, raw, sizeof(raw))) {
            char message[128];
            snprintf(message, sizeof(message), "%s has the wrong type", query_fields[i]);
            out = error_reply(id, 400, message);
            goto done;
        }
        size_t vlen = 0;
        values[nq][0] = '\0';
        pct_append(values[nq], sizeof(values[nq]), &vlen, raw);
        query[nq] = (struct errinj__query_arg){query_fields[i], values[nq]};
        nq++;
    }
    json_t *params = json_object_get(cmd, "parameters");
    json_t *session = json_object_get(cmd, "session");
    if (session != NULL && !json_is_boolean(session)) {
        out = error_reply(id, 400, "session must be true or false");
        goto done;
    }
    char *body = params != NULL ? json_dumps(params, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (params != NULL && body == NULL) {
        out = error_reply(id, 500, "out of memory");
        goto done;
    }
    struct errinj__http_request req = {
        .method = spec->method,
        .path = path,
        .query = query,
        .query_count = nq,
        .header = no_header,
        .header_ctx = NULL,
        .body = body != NULL ? body : "",
        .body_len = body != NULL ? strlen(body) : 0,
        .body_too_large = false,
    };
    struct errinj__http_reply reply;
    errinj__http_route_trusted(&req, &reply);
    free(body);
    if (reply.status == 200 && strcmp(spec->op, "enable") == 0)
        session_own(s, json_string_value(json_object_get(cmd, "name")), json_is_true(session));
    else if (reply.status == 200 && strcmp(spec->op, "disable") == 0)
        session_own(s, json_string_value(json_object_get(cmd, "name")), false);
    else if (reply.status == 200 && strcmp(spec->op, "disable_all") == 0)
        while (s->owned_count > 0)
            session_own(s, s->owned[0].name, false);
    if (reply.wait)
        out = start_wait(s, id, &reply);
    else
        out = reply_of(spec, id, &reply);
    errinj__http_reply_free(&reply);
done:
    json_decref(cmd);
    return out;
}


void errinj__ws_answer_settled_waits(struct errinj__ws *ws)
{
    struct errinj__ws_wait *w = ws->wait_list;
    while (w != NULL) {
        struct errinj__ws_wait *next = w->next;
        if (errinj__waiter_done(w->waiter)) {
            struct errinj__http_reply reply;
            errinj__waiter_answer(ws->waits, w->waiter, &reply);
            static const struct op_spec wait_spec = {"wait", "GET", "/wait", {NULL}};
            /* Queued only: the caller writes (this may run inside libwslay's receive). */
            if (!w->s->closed)
                queue_json(w->s, reply_of(&wait_spec, w->id, &reply));
            errinj__http_reply_free(&reply);
            if (w->prev != NULL)
                w->prev->next = w->next;
            else
                ws->wait_list = w->next;
            if (w->next != NULL)
                w->next->prev = w->prev;
            json_decref(w->id);
            free(w);
        }
        w = next;
    }
}

void errinj__ws_release_owned(struct errinj__ws_session *s)
{
    for (size_t i = 0; i < s->owned_count; i++) {
        if (enable_generation(s->owned[i].name) == s->owned[i].gen)
            errinj_disable(s->owned[i].name);
        free(s->owned[i].name);
    }
    free(s->owned);
    s->owned = NULL;
    s->owned_count = 0;
}

void errinj__ws_command(struct errinj__ws_session *s, const char *text, size_t len)
{
    json_t *reply = run_command(s, text, len);
    if (reply != NULL)
        queue_json(s, reply);
}

void errinj__ws_forget_waits(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    for (struct errinj__ws_wait *w = ws->wait_list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->s != s)
            continue;
        errinj__waiter_abandon(ws->waits, w->waiter);
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            ws->wait_list = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        json_decref(w->id);
        free(w);
    }
}
