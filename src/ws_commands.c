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
#include "ws_session.h"

#include "control.h"
#include "http.h"
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
    char *id; /* JSON text */
    struct errinj__waiter *waiter;
    struct errinj__ws_wait *prev, *next;
};

/* Queues a reply built by json.c (NULL: out of memory, and the client is not misled with a
 * missing reply: the session closes). */
static void queue_reply(struct errinj__ws_session *s, char *text, size_t len)
{
    if (text != NULL)
        errinj__ws_session_queue_text(s, text, len);
    else
        errinj__ws_session_mark_closed(s);
    free(text);
}

/* A reply text and its length, as one value: what running a command gives. */
struct reply {
    char *text;
    size_t len;
    bool later; /* a wait: its reply comes when it settles */
};

static struct reply error_reply(const char *id, int code, const char *message)
{
    struct reply r = {0};
    r.text = errinj__json_ws_error(id, code, message, &r.len);
    return r;
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

static bool field_allowed(const char *key, const void *arg)
{
    const struct op_spec *spec = arg;
    if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0)
        return true;
    for (const char *const *f = spec->fields; *f != NULL; f++)
        if (strcmp(*f, key) == 0)
            return true;
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

/* The reply to an op from the router's answer (refused: the message when the answer has none). */
static struct reply reply_of(const struct op_spec *spec, const char *id, const struct errinj__http_reply *reply,
                             const char *refused)
{
    struct errinj__json_ws_answer a = {
        .id = id,
        .status = reply->status,
        .body = reply->body,
        .body_len = reply->body_len,
        .refused = refused,
        .has_seq = reply->has_seq,
        .seq = reply->seq,
        .warning = reply->warning,
        .shape = strcmp(spec->op, "get") == 0    ? ERRINJ__WS_ANSWER_FIRST_ELEMENT
                 : strcmp(spec->op, "wait") == 0 ? ERRINJ__WS_ANSWER_EVENTS
                                                 : ERRINJ__WS_ANSWER_PLAIN,
    };
    struct reply r = {0};
    r.text = errinj__json_ws_answer(&a, &r.len);
    return r;
}

static const struct op_spec wait_spec = {"wait", "GET", "/wait", {NULL}};

/* Starts a wait command with the query the router validated; replies now if refused. Takes id. */
static struct reply start_wait(struct errinj__ws_session *s, char *id, struct errinj__http_reply *reply)
{
    struct errinj__ws *ws = s->ws;
    struct errinj__ws_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        struct reply r = error_reply(id, 500, "out of memory");
        free(id);
        return r;
    }
    w->s = s;
    w->id = id;
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    struct errinj__http_reply refusal = {0};
    w->waiter = errinj__wait_start(ws->waits, &h, &reply->wait_query, w, errinj__now_mono_ns(), &refusal);
    if (w->waiter == NULL) {
        pthread_mutex_unlock(ws->host.mu);
        struct reply r = reply_of(&wait_spec, id, &refusal, "wait refused");
        errinj__http_reply_free(&refusal);
        free(w->id);
        free(w);
        return r;
    }
    errinj__waiter_suspended(w->waiter);
    w->next = ws->wait_list;
    if (ws->wait_list != NULL)
        ws->wait_list->prev = w;
    ws->wait_list = w;
    errinj__ws_answer_settled_waits(ws);
    pthread_mutex_unlock(ws->host.mu);
    return (struct reply){.later = true};
}

/* Runs one command; returns its reply, or one marked later when a wait will answer. */
static struct reply run_command(struct errinj__ws_session *s, const char *text, size_t len)
{
    char message[300];
    struct errinj__json_doc *cmd = errinj__json_doc_parse(text, len, message, sizeof(message));
    if (cmd == NULL)
        return error_reply(NULL, 400, message);
    struct reply out = {0};
    char *id = NULL;
    size_t id_len, op_len, name_len = 0;
    const char *opname = errinj__json_doc_string(cmd, "op", &op_len);
    const struct op_spec *spec = NULL;
    for (size_t i = 0; opname != NULL && i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].op, opname) == 0)
            spec = &ops[i];
    if (!errinj__json_doc_is_object(cmd)) {
        out = error_reply(NULL, 400, "a command is a JSON object {\"id\":..., \"op\":...}");
        goto done;
    }
    enum errinj__json_kind id_kind = errinj__json_doc_kind(cmd, "id");
    if (id_kind != ERRINJ__JSON_INTEGER && id_kind != ERRINJ__JSON_STRING) {
        out = error_reply(NULL, 400, "missing id: every command needs \"id\", an integer or a string");
        goto done;
    }
    id = errinj__json_doc_field_text(cmd, "id", &id_len);
    if (id == NULL) {
        out = error_reply(NULL, 500, "out of memory");
        goto done;
    }
    if (spec == NULL) {
        out = error_reply(id, 400, "unknown op: op must be enable, disable, disable_all, message, get or wait");
        goto done;
    }
    const char *key = errinj__json_doc_first_key_not(cmd, field_allowed, spec);
    if (key != NULL) {
        snprintf(message, sizeof(message), "op %s takes no field \"%.200s\"", spec->op, key);
        out = error_reply(id, 400, message);
        goto done;
    }
    /* The REST request this op stands for. */
    char path[3 * ERRINJ__NAME_MAX + 64];
    size_t plen = (size_t)snprintf(path, sizeof(path), PREFIX "/injection%s", spec->suffix != NULL ? "/" : "");
    const char *name = errinj__json_doc_string(cmd, "name", &name_len);
    if (spec->suffix != NULL) {
        if (name == NULL || name_len == 0 || name_len > ERRINJ__NAME_MAX || strlen(name) != name_len) {
            out = error_reply(id, 400, "name must be a string of 1 to 255 bytes");
            goto done;
        }
        pct_append(path, sizeof(path), &plen, name);
        plen += (size_t)snprintf(path + plen, sizeof(path) - plen, "%s", spec->suffix);
    }
    char values[5][256 * 3 + 1];
    struct errinj__query_arg query[5];
    size_t nq = 0;
    static const char *const query_fields[] = {"one_shot", "term", "seed", "phase", "count", "after", "timeout"};
    for (size_t i = 0; i < sizeof(query_fields) / sizeof(query_fields[0]); i++) {
        enum errinj__json_kind kind = errinj__json_doc_kind(cmd, query_fields[i]);
        if (kind == ERRINJ__JSON_ABSENT)
            continue;
        char raw[257];
        bool is_bool_field = strcmp(query_fields[i], "one_shot") == 0;
        bool is_text_field = strcmp(query_fields[i], "term") == 0 || strcmp(query_fields[i], "phase") == 0;
        bool is_number = kind == ERRINJ__JSON_INTEGER || kind == ERRINJ__JSON_REAL;
        if ((is_bool_field && kind != ERRINJ__JSON_BOOL) || (is_text_field && kind != ERRINJ__JSON_STRING) ||
            (!is_bool_field && !is_text_field && !is_number && kind != ERRINJ__JSON_STRING) ||
            !errinj__json_doc_scalar(cmd, query_fields[i], raw, sizeof(raw))) {
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
    enum errinj__json_kind session = errinj__json_doc_kind(cmd, "session");
    if (session != ERRINJ__JSON_ABSENT && session != ERRINJ__JSON_BOOL) {
        out = error_reply(id, 400, "session must be true or false");
        goto done;
    }
    size_t body_len = 0;
    char *body = errinj__json_doc_field_text(cmd, "parameters", &body_len);
    if (errinj__json_doc_kind(cmd, "parameters") != ERRINJ__JSON_ABSENT && body == NULL) {
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
        .body_len = body_len,
        .body_too_large = false,
    };
    struct errinj__http_reply reply;
    errinj__http_route_trusted(&req, &reply);
    free(body);
    if (reply.status == 200 && strcmp(spec->op, "enable") == 0)
        session_own(s, name, errinj__json_doc_true(cmd, "session"));
    else if (reply.status == 200 && strcmp(spec->op, "disable") == 0)
        session_own(s, name, false);
    else if (reply.status == 200 && strcmp(spec->op, "disable_all") == 0)
        while (s->owned_count > 0)
            session_own(s, s->owned[0].name, false);
    if (reply.wait) {
        out = start_wait(s, id, &reply);
        id = NULL;
    } else {
        out = reply_of(spec, id, &reply, "refused");
    }
    errinj__http_reply_free(&reply);
done:
    free(id);
    errinj__json_doc_free(cmd);
    return out;
}

void errinj__ws_command(struct errinj__ws_session *s, const char *text, size_t len)
{
    struct reply r = run_command(s, text, len);
    if (!r.later)
        queue_reply(s, r.text, r.len);
}

/* Takes a wait off the channel's list and frees it (its waiter already answered or abandoned). */
static void wait_drop(struct errinj__ws *ws, struct errinj__ws_wait *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        ws->wait_list = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    free(w->id);
    free(w);
}

void errinj__ws_answer_settled_waits(struct errinj__ws *ws)
{
    struct errinj__ws_wait *w = ws->wait_list;
    while (w != NULL) {
        struct errinj__ws_wait *next = w->next;
        if (errinj__waiter_done(w->waiter)) {
            struct errinj__http_reply reply;
            errinj__waiter_answer(ws->waits, w->waiter, &reply);
            /* Queued only: the caller writes (this may run inside libwslay's receive). */
            if (!w->s->closed) {
                struct reply r = reply_of(&wait_spec, w->id, &reply, "refused");
                queue_reply(w->s, r.text, r.len);
            }
            errinj__http_reply_free(&reply);
            wait_drop(ws, w);
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

void errinj__ws_forget_waits(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    for (struct errinj__ws_wait *w = ws->wait_list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->s != s)
            continue;
        errinj__waiter_abandon(ws->waits, w->waiter);
        wait_drop(ws, w);
    }
}
