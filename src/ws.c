/*
 * ws.c - the WebSocket session channel (see ws.h).
 *
 * Framing is libwslay's: it parses and checks the client's frames (masking, opcodes, control
 * frame sizes, fragments; a violation is a 1002 close, a message over 1 MiB a 1009), answers
 * pings and close frames, and builds the replies' and control frames. It does no I/O of its own:
 * its receive callback reads the socket (after the bytes libmicrohttpd read past the handshake),
 * and its send callback fills a per-session buffer that one send(2) writes, so a burst of events
 * costs one system call per session, not one per frame. Event frames, the bulk of what goes out
 * and the simplest frame there is (unmasked, one text frame), are written into that buffer
 * directly when libwslay has nothing in flight (emit_text says why).
 *
 * A text message is checked for UTF-8 here (libwslay does not; invalid text closes with 1007),
 * binary messages close with 1003, and a text message is a command: its JSON is checked, turned
 * into the REST request it stands for, run by the REST router (same validation, same effects),
 * and the router's answer becomes the reply. `wait` commands are server-side waits (wait.c) of
 * the sessions' own, answered from the history as it grows.
 *
 * A session is closed in three steps, so that no loop callback frees what the loop still uses:
 * it is marked closed (its watch removed) where the close is found; the server loop's next turn
 * (errinj__ws_tick) disables the injections it owns, forgets its waits and frees it. A close
 * the server starts (a bad frame, stopping) lingers: after the close frame is written the
 * sending side is shut and the client has a moment to answer before the socket goes, so that
 * it reads the close code rather than a reset.
 */
#define _GNU_SOURCE
#include "ws.h"

#include "events.h"
#include "http.h"
#define ERRINJ__JSON_JANSSON /* its session messages are built with jansson (see json.h) */
#include "json.h"
#include "log.h"
#include "names.h"
#include "control.h"
#include "registry.h"
#include "util.h"
#include "wait.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PREFIX "/v2/error_injection"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* What a session may have queued before it stops taking events and reading commands. */
#define QUEUE_MAX (256u * 1024)
#define OUT_MAX (16u * 1024)
/* How long a closing session waits for the client to close its side, and for the socket. */
#define LINGER_NS (2000ll * 1000 * 1000)
#define PENDING_NS (30ll * 1000 * 1000 * 1000)

struct ws_wait;

struct errinj__ws_session {
    struct errinj__ws *ws;
    struct errinj__filter filter;
    uint64_t cursor; /* the last seq given or skipped */
    int fd;
    struct MHD_UpgradeResponseHandle *urh; /* NULL for a fuzzer's socket */
    struct errinj__ws_session **pending;   /* the request's pointer, until upgraded */
    int64_t opened_ns;
    struct errinj__watch watch;
    uint32_t watching;
    wslay_event_context_ptr ctx;
    const char *extra;  /* bytes libmicrohttpd read past the handshake, not yet parsed */
    size_t extra_len;
    char out[OUT_MAX];  /* whole frames (events, and what libwslay built), written from out_off */
    size_t out_len, out_off;
    struct owned { char *name; uint64_t gen; } *owned; /* session injections, and which enable */
    size_t owned_count;
    bool upgraded;
    bool peer_gone;     /* the client's end of the stream (FIN or RST) was read */
    bool lingering;     /* our close frame is out; waiting for the client's end */
    int64_t linger_until;
    bool closed;        /* on the dead list */
    struct errinj__ws_session *prev, *next, *dead_next;
};

/* A `wait` command in progress: its waiter and the id its reply carries. */
struct ws_wait {
    struct errinj__ws_session *s;
    json_t *id;
    struct errinj__waiter *waiter;
    struct ws_wait *prev, *next;
};

struct errinj__ws {
    struct errinj__loop *loop;
    struct errinj__ws_host host;
    struct errinj__ws_session *sessions; /* mu */
    unsigned count;                     /* mu */
    struct errinj__ws_session *dead;
    struct errinj__waits *waits;        /* mu */
    struct ws_wait *wait_list;          /* mu */
    bool stopping;
};

static void session_pump(struct errinj__ws_session *s, const struct errinj__history_view *h);
static void release_owned(struct errinj__ws_session *s);
static void answer_settled_waits(struct errinj__ws *ws);

/* ---- the handshake ------------------------------------------------------------------------ */

/* True when the comma-separated list has token (case-insensitive when nocase). */
static bool list_has(const char *list, const char *token, bool nocase)
{
    size_t tlen = strlen(token);
    for (const char *p = list; p != NULL && *p != '\0';) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tlen && (nocase ? strncasecmp(p, token, tlen) : strncmp(p, token, tlen)) == 0)
            return true;
        p += n;
    }
    return false;
}

int errinj__ws_handshake(const char *(*header)(void *ctx, const char *name), void *ctx, char accept[29],
                         bool *with_protocol, const char **why)
{
    const char *upgrade = header(ctx, "Upgrade");
    const char *connection = header(ctx, "Connection");
    const char *version = header(ctx, "Sec-WebSocket-Version");
    const char *key = header(ctx, "Sec-WebSocket-Key");
    const char *protocols = header(ctx, "Sec-WebSocket-Protocol");
    if (upgrade == NULL || !list_has(upgrade, "websocket", true) || connection == NULL ||
        !list_has(connection, "upgrade", true)) {
        *why = "a WebSocket handshake needs Upgrade: websocket and Connection: Upgrade";
        return 400;
    }
    if (version == NULL || strcmp(version, "13") != 0) {
        *why = "Sec-WebSocket-Version must be 13";
        return 426;
    }
    struct base64_decode_ctx b64;
    uint8_t raw[BASE64_DECODE_LENGTH(24) + 1];
    size_t raw_len = sizeof(raw);
    base64_decode_init(&b64);
    if (key == NULL || strlen(key) != 24 || !base64_decode_update(&b64, &raw_len, raw, 24, key) ||
        !base64_decode_final(&b64) || raw_len != 16) {
        *why = "Sec-WebSocket-Key must be 16 bytes in base64";
        return 400;
    }
    *with_protocol = protocols != NULL && list_has(protocols, "errinj", false);
    if (protocols != NULL && protocols[strspn(protocols, " \t,")] != '\0' && !*with_protocol) {
        *why = "the only subprotocol is errinj (offer it beside errinj.bearer.TOKEN)";
        return 400;
    }
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sha);
    sha1_update(&sha, 24, (const uint8_t *)key);
    sha1_update(&sha, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&sha, SHA1_DIGEST_SIZE, digest);
    base64_encode_raw(accept, SHA1_DIGEST_SIZE, digest);
    accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return 0;
}

/* ---- sessions: I/O ------------------------------------------------------------------------- */

static void session_mark_closed(struct errinj__ws_session *s)
{
    if (s->closed)
        return;
    s->closed = true;
    errinj__loop_unwatch(s->ws->loop, &s->watch);
    s->watching = 0;
    s->dead_next = s->ws->dead;
    s->ws->dead = s;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    struct errinj__ws_session *s = user;
    if (s->extra_len > 0) {
        size_t n = s->extra_len < len ? s->extra_len : len;
        memcpy(buf, s->extra, n);
        s->extra += n;
        s->extra_len -= n;
        return (ssize_t)n;
    }
    ssize_t n = recv(s->fd, buf, len, MSG_DONTWAIT);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    /* The client's end (FIN) or a reset: a client that crashed sends no close frame. */
    s->peer_gone = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    (void)flags;
    struct errinj__ws_session *s = user;
    size_t room = OUT_MAX - s->out_len;
    /* libwslay fails a connection on a malformed control frame (fragmented, or over 125 bytes)
     * with a close frame that has no status at all; RFC 6455 wants 1002 there. Its one empty
     * close of its own is that one (an empty close from the client is answered as it came). */
    if (len == 2 && data[0] == 0x88 && data[1] == 0x00 && !wslay_event_get_close_received(ctx) && room >= 4) {
        static const uint8_t protocol_error[4] = {0x88, 0x02, WSLAY_CODE_PROTOCOL_ERROR >> 8,
                                                  WSLAY_CODE_PROTOCOL_ERROR & 0xff};
        memcpy(s->out + s->out_len, protocol_error, sizeof(protocol_error));
        s->out_len += sizeof(protocol_error);
        return 2;
    }
    if (room == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < room ? len : room;
    memcpy(s->out + s->out_len, data, n);
    s->out_len += n;
    return (ssize_t)n;
}

/* Starts the end of a session whose close frame is out: shut our side, wait for the client's. */
static void session_linger(struct errinj__ws_session *s)
{
    if (s->lingering)
        return;
    s->lingering = true;
    s->linger_until = errinj__now_mono_ns() + LINGER_NS;
    shutdown(s->fd, SHUT_WR);
}

/* Writes what libwslay has queued until the socket takes no more. False when the session ended. */
static bool session_flush(struct errinj__ws_session *s)
{
    if (s->closed || !s->upgraded)
        return !s->closed;
    for (;;) {
        while (s->out_off < s->out_len) {
            ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return true;
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                session_mark_closed(s);
                return false;
            }
            s->out_off += (size_t)n;
        }
        s->out_len = s->out_off = 0;
        if (s->lingering || !wslay_event_want_write(s->ctx))
            break;
        if (wslay_event_send(s->ctx) != 0) {
            session_mark_closed(s);
            return false;
        }
        if (s->out_len == 0)
            break;
    }
    if (wslay_event_get_close_sent(s->ctx) && s->out_len == 0)
        session_linger(s);
    return true;
}

static void on_socket(void *arg, uint32_t events);

/* Watches for what the session can use now: input unless it has too much queued, output while
 * something waits to be written. */
static void session_rewatch(struct errinj__ws_session *s)
{
    if (s->closed || !s->upgraded)
        return;
    uint32_t want = EPOLLRDHUP;
    bool backlog = s->out_len > s->out_off || wslay_event_want_write(s->ctx);
    if (s->lingering || (wslay_event_want_read(s->ctx) && wslay_event_get_queued_msg_length(s->ctx) < QUEUE_MAX))
        want |= EPOLLIN;
    if (backlog && !s->lingering)
        want |= EPOLLOUT;
    if (want == s->watching)
        return;
    if (s->watch.armed)
        errinj__loop_unwatch(s->ws->loop, &s->watch);
    s->watch = (struct errinj__watch){.fd = s->fd, .fn = on_socket, .arg = s};
    if (errinj__loop_watch(s->ws->loop, &s->watch, want) != 0) {
        errinj__log("errinj server: cannot watch a WebSocket; closing it");
        session_mark_closed(s);
        return;
    }
    s->watching = want;
}

static void queue_text(struct errinj__ws_session *s, const char *text, size_t len)
{
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)text, len};
    if (wslay_event_queue_msg(s->ctx, &msg) == WSLAY_ERR_NOMEM)
        session_mark_closed(s);
}

static void queue_json(struct errinj__ws_session *s, json_t *value)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
    if (text != NULL)
        queue_text(s, text, strlen(text));
    else
        session_mark_closed(s); /* out of memory: the client is not misled with a missing reply */
    free(text);
    json_decref(value);
}

static void queue_close(struct errinj__ws_session *s, uint16_t code, const char *reason)
{
    wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, strlen(reason));
    wslay_event_shutdown_read(s->ctx);
}

/* ---- commands ------------------------------------------------------------------------------- */

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
    struct owned *grown = realloc(s->owned, (s->owned_count + 1) * sizeof(*grown));
    char *copy = strdup(name);
    if (grown == NULL || copy == NULL) {
        free(copy);
        if (grown != NULL)
            s->owned = grown;
        errinj__log("errinj server: out of memory: session injection %s stays enabled after its session", name);
        return;
    }
    s->owned = grown;
    s->owned[s->owned_count++] = (struct owned){copy, gen};
}

/* Starts a wait command with the query the router validated; replies now if settled. */
static json_t *start_wait(struct errinj__ws_session *s, json_t *id, struct errinj__http_reply *reply)
{
    struct errinj__ws *ws = s->ws;
    struct ws_wait *w = calloc(1, sizeof(*w));
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
    answer_settled_waits(ws);
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

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0, len; i < n; i += len) {
        len = errinj__utf8_sequence(p + i, n - i, NULL);
        if (len == 0)
            return false;
    }
    return true;
}

static void on_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    (void)ctx;
    struct errinj__ws_session *s = user;
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        queue_close(s, WSLAY_CODE_UNSUPPORTED_DATA, "binary messages are not accepted; send JSON text");
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME)
        return; /* pings, pongs and closes are libwslay's */
    if (!utf8_valid(arg->msg, arg->msg_length)) {
        queue_close(s, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "text message is not UTF-8");
        return;
    }
    json_t *reply = run_command(s, (const char *)arg->msg, arg->msg_length);
    if (reply != NULL)
        queue_json(s, reply);
}

/* ---- sessions: life ------------------------------------------------------------------------- */

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_msg_recv_callback = on_message,
};

/* Reads what the socket has: commands while a session is open, the client's end while it
 * lingers. */
static void session_read(struct errinj__ws_session *s)
{
    if (s->lingering) {
        char sink[4096];
        for (;;) {
            ssize_t n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0 && errno == EINTR)
                continue;
            session_mark_closed(s); /* the client's end: done */
            return;
        }
    }
    if (!wslay_event_want_read(s->ctx) || wslay_event_recv(s->ctx) == 0)
        return;
    /* libwslay fails on some malformed frames (a fragmented or oversized control frame) with
     * its 1002 queued, or none: either way the client gets the code, unless it is gone. */
    if (s->peer_gone) {
        session_mark_closed(s);
        return;
    }
    wslay_event_queue_close(s->ctx, WSLAY_CODE_PROTOCOL_ERROR, (const uint8_t *)"malformed frame", 15);
    if (!wslay_event_want_write(s->ctx) && !wslay_event_get_close_sent(s->ctx))
        session_mark_closed(s);
}

static void on_socket(void *arg, uint32_t events)
{
    struct errinj__ws_session *s = arg;
    if (s->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        session_read(s);
    if (s->closed)
        return;
    /* The client said goodbye: its injections go before the answering close frame does, so a
     * client that saw the close finish finds them disabled. */
    if (s->owned_count > 0 && wslay_event_get_close_received(s->ctx))
        release_owned(s);
    struct errinj__ws *ws = s->ws;
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    if (!s->closed && !s->lingering && !wslay_event_get_read_enabled(s->ctx) && !wslay_event_want_write(s->ctx) &&
        s->out_len == 0 && !wslay_event_get_close_sent(s->ctx))
        session_mark_closed(s); /* reading ended (the client's FIN) with nothing left to say */
}

static int session_start(struct errinj__ws_session *s, int fd, const char *extra, size_t extra_len)
{
    s->fd = fd;
    s->extra = extra;
    s->extra_len = extra_len;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (wslay_event_context_server_init(&s->ctx, &callbacks, s) != 0)
        return ERRINJ_ENOMEM;
    wslay_event_config_set_max_recv_msg_length(s->ctx, ERRINJ__BODY_MAX);
    s->upgraded = true;
    /* Bytes the client sent with its handshake are commands like any other. */
    if (extra_len > 0)
        session_read(s);
    return 0;
}

static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)conn, (void)con_cls;
    struct errinj__ws_session *s = cls;
    struct errinj__ws *ws = s->ws;
    s->urh = urh;
    if (s->pending != NULL)
        *s->pending = NULL;
    s->pending = NULL;
    if (session_start(s, sock, extra_in, extra_in_size) != 0) {
        session_mark_closed(s);
        return;
    }
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    /* libmicrohttpd's buffer of extra bytes is not ours after this returns. */
    if (s->extra_len > 0) {
        errinj__log("errinj server: a WebSocket client sent more with its handshake than was read; closing it");
        session_mark_closed(s);
    }
    s->extra = NULL;
    s->extra_len = 0;
}

static struct errinj__ws_session *session_new(struct errinj__ws *ws, struct errinj__filter *filter)
{
    struct errinj__ws_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ws = ws;
    s->fd = -1;
    s->filter = *filter;
    *filter = (struct errinj__filter){0};
    s->opened_ns = errinj__now_mono_ns();
    /* From the last seq published, as an SSE stream starts: whatever fires once the client has
     * the 101 reaches it, and a replay starts where it asked. */
    uint64_t published = errinj__seq_last();
    if (s->filter.since < 0)
        s->cursor = published;
    else if ((uint64_t)s->filter.since > published)
        s->cursor = 0;
    else
        s->cursor = (uint64_t)s->filter.since;
    s->next = ws->sessions;
    if (ws->sessions != NULL)
        ws->sessions->prev = s;
    ws->sessions = s;
    ws->count++;
    return s;
}

struct MHD_Response *errinj__ws_open(struct errinj__ws *ws, struct errinj__filter *filter, const char *accept,
                                     bool with_protocol, struct errinj__ws_session **pending,
                                     struct errinj__http_reply *reply)
{
    pthread_mutex_lock(ws->host.mu);
    struct errinj__ws_session *s = ws->stopping ? NULL : session_new(ws, filter);
    pthread_mutex_unlock(ws->host.mu);
    if (s == NULL) {
        errinj__filter_free(filter);
        errinj__http_error(reply, ws->stopping ? 503 : 500, ws->stopping ? "server is stopping" : "out of memory");
        return NULL;
    }
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgraded, s);
    if (resp == NULL) {
        errinj__ws_abandon(ws, s);
        errinj__http_error(reply, 500, "out of memory");
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    /* libmicrohttpd adds Connection: Upgrade itself. */
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    if (with_protocol)
        MHD_add_response_header(resp, "Sec-WebSocket-Protocol", "errinj");
    s->pending = pending;
    *pending = s;
    return resp;
}

void errinj__ws_abandon(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    (void)ws;
    s->pending = NULL;
    session_mark_closed(s);
}

struct errinj__ws_session *errinj__ws_attach(struct errinj__ws *ws, int fd, const char *extra, size_t extra_len)
{
    struct errinj__filter none = {.shard = -1, .since = -1, .phases = 1u << ERRINJ__PHASE_HIT};
    pthread_mutex_lock(ws->host.mu);
    struct errinj__ws_session *s = session_new(ws, &none);
    pthread_mutex_unlock(ws->host.mu);
    if (s == NULL)
        return NULL;
    if (session_start(s, fd, extra, extra_len) != 0) {
        session_mark_closed(s);
        return s;
    }
    pthread_mutex_lock(ws->host.mu);
    struct errinj__history_view h = ws->host.history(ws->host.arg);
    session_pump(s, &h);
    pthread_mutex_unlock(ws->host.mu);
    s->extra = NULL;
    s->extra_len = 0;
    return s;
}

/* ---- events out ------------------------------------------------------------------------------ */

static bool filter_passes(const struct errinj__filter *f, const struct frame *fr)
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

/* Queues what the history has past the session's cursor, up to its bound. */
/*
 * Puts one text message on its way: straight into the output buffer as an unmasked frame when
 * libwslay has nothing in flight (so that no two frames interleave), else through libwslay's
 * queue, which keeps the order. libwslay copies every message it queues into an allocation of its
 * own; for the fan-out of events that was an allocation, a copy and a free per event and session,
 * a third of the server thread's time at 100 sessions. False when the message has to wait for
 * room (the session's bound).
 */
static bool emit_text(struct errinj__ws_session *s, const char *text, size_t len)
{
    size_t head = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (!wslay_event_want_write(s->ctx)) {
        if (s->out_off > 0) {
            memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
            s->out_len -= s->out_off;
            s->out_off = 0;
        }
        if (OUT_MAX - s->out_len >= head + len) {
            unsigned char *o = (unsigned char *)s->out + s->out_len;
            o[0] = 0x80 | WSLAY_TEXT_FRAME;
            if (head == 2) {
                o[1] = (unsigned char)len;
            } else if (head == 4) {
                o[1] = 126;
                o[2] = (unsigned char)(len >> 8);
                o[3] = (unsigned char)len;
            } else {
                o[1] = 127;
                for (int i = 0; i < 8; i++)
                    o[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
            }
            memcpy(o + head, text, len);
            s->out_len += head + len;
            return true;
        }
        if (s->out_len > 0)
            return false; /* written out first, then this one */
    }
    if (wslay_event_get_queued_msg_length(s->ctx) >= QUEUE_MAX)
        return false;
    queue_text(s, text, len); /* larger than the buffer, or behind what libwslay has */
    return true;
}

/* Puts what the history has past the session's cursor on its way, up to its bound. */
static void session_queue_events(struct errinj__ws_session *s, const struct errinj__history_view *h)
{
    if (s->lingering || !wslay_event_get_write_enabled(s->ctx) || wslay_event_get_close_sent(s->ctx))
        return;
    while (s->cursor < h->newest && !s->closed) {
        uint64_t next = s->cursor + 1, skipped = 0;
        if (next < h->oldest) {
            skipped = h->oldest - next;
            next = h->oldest;
        }
        while (next <= h->newest && errinj__history_at(h, next)->text == NULL) {
            skipped++;
            next++;
        }
        if (skipped > 0) {
            char notice[96];
            int n = snprintf(notice, sizeof(notice), "{\"overflow\":{\"dropped\":%llu,\"next_seq\":%llu}}",
                             (unsigned long long)skipped, (unsigned long long)next);
            if (!emit_text(s, notice, (size_t)n))
                return;
            s->cursor = next - 1;
            continue;
        }
        const struct frame *fr = errinj__history_at(h, next);
        if (filter_passes(&s->filter, fr)) {
            size_t len;
            const char *json = errinj__frame_json(fr, &len);
            if (!emit_text(s, json, len))
                return;
        }
        s->cursor = next;
    }
}

/* Queues and writes until the session has all the history has, or its socket takes no more.
 * mu held. */
static void session_pump(struct errinj__ws_session *s, const struct errinj__history_view *h)
{
    if (s->closed || !s->upgraded)
        return;
    for (;;) {
        session_queue_events(s, h);
        if (!session_flush(s))
            return;
        /* Everything queued went out while events are left: go on, or nothing would wake this
         * session for them (it waits for writability only while something is unwritten). */
        bool drained = s->out_len == 0 && !wslay_event_want_write(s->ctx);
        if (!drained || s->cursor >= h->newest || s->lingering || wslay_event_get_close_sent(s->ctx))
            break;
    }
    session_rewatch(s);
}

static void answer_settled_waits(struct errinj__ws *ws)
{
    struct ws_wait *w = ws->wait_list;
    while (w != NULL) {
        struct ws_wait *next = w->next;
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

static void resume_nothing(void *conn)
{
    (void)conn; /* settled waits are found by answer_settled_waits() after each advance */
}

void errinj__ws_pump(struct errinj__ws *ws, const struct errinj__history_view *h)
{
    if (ws->wait_list != NULL) {
        errinj__waits_advance(ws->waits, h, errinj__now_mono_ns());
        answer_settled_waits(ws);
    }
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next)
        session_pump(s, h);
}

void errinj__ws_ping(struct errinj__ws *ws)
{
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed || !s->upgraded || s->lingering || wslay_event_get_close_sent(s->ctx))
            continue;
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
        wslay_event_queue_msg(s->ctx, &ping);
        if (session_flush(s))
            session_rewatch(s);
    }
}

/* ---- ends ----------------------------------------------------------------------------------- */

/* Disables the injections the session owns, unless enabled again since (by anyone): the later
 * enable owns it then. Disabling releases every handler parked in it. */
static void release_owned(struct errinj__ws_session *s)
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

/* Frees a closed session: its waits forgotten, its injections disabled, its socket given back. */
static void session_free(struct errinj__ws *ws, struct errinj__ws_session *s)
{
    pthread_mutex_lock(ws->host.mu);
    for (struct ws_wait *w = ws->wait_list, *next; w != NULL; w = next) {
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
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ws->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    ws->count--;
    pthread_mutex_unlock(ws->host.mu);
    release_owned(s);
    if (s->ctx != NULL)
        wslay_event_context_free(s->ctx);
    if (s->urh != NULL)
        MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    else if (s->fd >= 0)
        close(s->fd); /* a fuzzer's socket */
    if (s->pending != NULL)
        *s->pending = NULL;
    errinj__filter_free(&s->filter);
    free(s);
}

int64_t errinj__ws_tick(struct errinj__ws *ws)
{
    int64_t now = errinj__now_mono_ns(), next = INT64_MAX;
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed)
            continue;
        if (s->lingering && now >= s->linger_until)
            session_mark_closed(s);
        else if (s->lingering && s->linger_until < next)
            next = s->linger_until;
        /* A 101 that never went out (the client left, or never read it) ends with its request;
         * this only catches a request libmicrohttpd never reported ending. */
        if (!s->upgraded && s->pending == NULL && now >= s->opened_ns + PENDING_NS)
            session_mark_closed(s);
    }
    pthread_mutex_lock(ws->host.mu);
    if (ws->wait_list != NULL) {
        int64_t deadline = errinj__waits_next_deadline(ws->waits);
        if (deadline <= now) {
            struct errinj__history_view h = ws->host.history(ws->host.arg);
            errinj__waits_advance(ws->waits, &h, now);
            answer_settled_waits(ws);
            for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next)
                if (!s->closed && s->upgraded && session_flush(s))
                    session_rewatch(s);
            deadline = errinj__waits_next_deadline(ws->waits);
        }
        if (deadline < next)
            next = deadline;
    }
    pthread_mutex_unlock(ws->host.mu);
    while (ws->dead != NULL) {
        struct errinj__ws_session *s = ws->dead;
        ws->dead = s->dead_next;
        session_free(ws, s);
    }
    return next;
}

struct errinj__ws *errinj__ws_new(struct errinj__loop *loop, const struct errinj__ws_host *host, unsigned max_waits)
{
    struct errinj__ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->loop = loop;
    ws->host = *host;
    ws->waits = errinj__waits_new(max_waits, resume_nothing);
    if (ws->waits == NULL) {
        free(ws);
        return NULL;
    }
    return ws;
}

void errinj__ws_stop(struct errinj__ws *ws)
{
    pthread_mutex_lock(ws->host.mu);
    ws->stopping = true;
    errinj__waits_stop(ws->waits);
    answer_settled_waits(ws);
    for (struct errinj__ws_session *s = ws->sessions; s != NULL; s = s->next) {
        if (s->closed)
            continue;
        if (s->upgraded && !wslay_event_get_close_sent(s->ctx)) {
            queue_close(s, WSLAY_CODE_GOING_AWAY, "server is stopping");
            session_flush(s);
        }
        session_mark_closed(s);
    }
    pthread_mutex_unlock(ws->host.mu);
    errinj__ws_tick(ws);
}

void errinj__ws_free(struct errinj__ws *ws)
{
    if (ws == NULL)
        return;
    errinj__waits_free(ws->waits);
    free(ws);
}

unsigned errinj__ws_count(const struct errinj__ws *ws)
{
    return ws->count;
}
