/*
 * http.c - the REST API (errinj-events(7)) as a pure function: a request in, a reply out.
 *
 * Nothing here touches a socket, so the whole request handling can be unit-tested and
 * fuzzed as the server calls it. mhd_request.c feeds it what libmicrohttpd parsed (raw, still
 * percent-encoded path and query: decoding happens here, once, so "%2F" in a name stays
 * part of the name instead of splitting the path) and carries the reply back. The SSE
 * endpoint only validates its query here; mhd_sse.c registers the stream.
 *
 * Every check happens before any change: a rejected request leaves the injection state as
 * it was. Checks run in this order: cross-origin (403), token (401), route (404, 405),
 * body size (413), then the request's own values (400). The dashboard's files (/ui) are
 * served after the cross-origin check and before the token's: the page holds no secret, and
 * asks for the token when one of its API calls answers 401.
 *
 * This file is the router and the routes' bodies; beside it, http_access.c decides who may
 * call (Host, Origin, token), http_query.c reads what a request asks (percent-decoding, names,
 * numbers, the events filter, the wait query), and http_ui.c serves the dashboard's files.
 * http_routes.h is what they share.
 */
#include "http_routes.h"

#include "coverage.h"
#include "disconnect.h"
#include "events.h"
#include "hooks.h"
#include "json.h"
#include "control.h"
#include "registry.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREFIX ERRINJ__HTTP_PREFIX

/* ---- replies ------------------------------------------------------------------------------ */

/* A JSON reply of text (malloc'd, len long, taken); a 500 when it is NULL (out of memory). */
static void reply_json(struct errinj__http_reply *reply, int status, char *text, size_t len)
{
    reply->status = status;
    reply->content_type = "application/json";
    reply->body = text;
    reply->body_len = len;
    if (text == NULL) {
        reply->status = 500;
        reply->body = strdup("{\"message\":\"out of memory\",\"code\":500}");
        reply->body_len = reply->body != NULL ? strlen(reply->body) : 0;
    }
}

void errinj__http_error(struct errinj__http_reply *reply, int status, const char *message)
{
    free(reply->body);
    reply->body = NULL;
    size_t len = 0;
    char *text = errinj__json_error(status, message, &len);
    reply_json(reply, status, text, len);
}

static void reply_empty(struct errinj__http_reply *reply)
{
    reply->status = 200;
    reply->content_type = "text/plain";
    reply->body = NULL;
    reply->body_len = 0;
}

void errinj__filter_free(struct errinj__filter *f)
{
    for (size_t i = 0; f->injections != NULL && f->injections[i] != NULL; i++)
        free(f->injections[i]);
    free(f->injections);
    f->injections = NULL;
}

void errinj__http_reply_free(struct errinj__http_reply *reply)
{
    free(reply->body);
    reply->body = NULL;
    free(reply->warning);
    reply->warning = NULL;
    free(reply->wait_query.name);
    reply->wait_query.name = NULL;
    errinj__filter_free(&reply->filter);
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static void list_one(const char *name, void *arg)
{
    errinj__json_list_add_string(arg, name);
}

static void get_injection(const char *name, struct errinj__http_reply *reply)
{
    errinj_state st;
    if (errinj_state_get(name, &st) == ERRINJ_ENOMEM) {
        errinj__http_error(reply, 500, "out of memory");
        return;
    }
    /* No term is "on"; one_shot is the term "1*on". */
    const char *term = st.term != NULL ? st.term : st.one_shot ? "1*on" : "on";
    size_t len = 0;
    char *text = errinj__json_injection(&st, term, &len);
    errinj_state_release(&st);
    reply_json(reply, 200, text, len);
}

static void enable_injection(const char *name, const struct errinj__http_request *req,
                             struct errinj__http_reply *reply)
{
    bool one_shot = false, has_seed = false;
    uint64_t seed = 0;
    char *term = NULL;
    const char *bad = NULL;
    for (size_t i = 0; i < req->query_count && bad == NULL; i++) {
        bool is_one_shot = errinj__http_query_is(&req->query[i], "one_shot");
        bool is_term = errinj__http_query_is(&req->query[i], "term");
        bool is_seed = errinj__http_query_is(&req->query[i], "seed");
        if (!is_one_shot && !is_term && !is_seed)
            continue;
        char *v = errinj__http_query_value(&req->query[i]);
        if (v == NULL) {
            bad = is_one_shot ? "one_shot must be true or false"
                  : is_seed   ? "seed must be an unsigned 64-bit integer (decimal, or hex with 0x)"
                              : "term has a bad percent-encoding";
        } else if (is_one_shot) {
            if (strcasecmp(v, "true") == 0)
                one_shot = true;
            else if (strcasecmp(v, "false") == 0)
                one_shot = false;
            else
                bad = "one_shot must be true or false";
        } else if (is_seed) {
            if (!errinj__seed_parse(v, &seed))
                bad = "seed must be an unsigned 64-bit integer (decimal, or hex with 0x)";
            has_seed = true;
        } else {
            free(term);
            term = v;
            v = NULL;
        }
        free(v);
    }
    if (bad == NULL && one_shot && term != NULL)
        bad = "one_shot=true and a term do not go together: one_shot is the term 1*on";
    char why[512] = "";
    if (bad == NULL && term != NULL && errinj_term_check(term, why, sizeof(why)) == ERRINJ_EINVAL)
        bad = why; /* checked before the body, so the message names the term */
    if (bad != NULL) {
        errinj__http_error(reply, 400, bad);
        free(term);
        return;
    }
    struct errinj__config *cfg;
    char reason[300];
    int rc = errinj__json_params(req->body, req->body_len, &cfg, reason, sizeof(reason));
    if (rc == ERRINJ_EINVAL) {
        errinj__http_error(reply, 400, reason);
        free(term);
        return;
    }
    if (rc == 0)
        rc = errinj__enable_term(name, one_shot, term, has_seed, seed, cfg, why, sizeof(why));
    free(term);
    if (rc != 0) {
        /* The term's reason, or a validator's (bad libc.* parameters): either says more than
         * "invalid argument". */
        const char *reason = rc != ERRINJ_EINVAL          ? errinj_strerror(rc)
                             : why[0] != '\0'             ? why
                             : errinj__hook_message()[0] != '\0' ? errinj__hook_message()
                                                           : errinj_strerror(rc);
        errinj__http_error(reply, rc == ERRINJ_EINVAL ? 400 : 500, reason);
        return;
    }
    reply_empty(reply);
    reply->has_seq = true;
    reply->seq = errinj__last_enable_seq();
    if (!errinj__has_site(name)) {
        /* Still enabled (run-time names exist), but a typo here would silently test nothing. */
        static const char prefix[] = "no compiled-in point named ";
        size_t len = strlen(name);
        reply->warning = malloc(sizeof(prefix) + len);
        if (reply->warning != NULL) {
            memcpy(reply->warning, prefix, sizeof(prefix) - 1);
            memcpy(reply->warning + sizeof(prefix) - 1, name, len + 1);
        }
    }
}

static void point_one(const errinj_point *p, void *arg)
{
    errinj__json_list_add_point(arg, p, errinj_is_enabled(p->name), errinj_enters(p->name),
                                errinj_evaluations(p->name), errinj_waiters(p->name));
}

static void coverage_one(const struct errinj__coverage_row *row, void *arg)
{
    errinj__json_list_add_coverage(arg, row);
}

static void status(const struct errinj__http_config *cfg, struct errinj__http_reply *reply)
{
    unsigned subscribers = 0;
    uint64_t dropped = 0;
    if (cfg->status != NULL)
        cfg->status(cfg->status_ctx, &subscribers, &dropped);
    struct errinj__json_status s = {ERRINJ_VERSION, errinj__seq_last(), subscribers, dropped,
                                    errinj__shards_seen(), errinj__instance_id(), errinj__process_seed()};
    size_t len = 0;
    char *text = errinj__json_status(&s, &len);
    reply_json(reply, 200, text, len);
}



/* ---- routing ------------------------------------------------------------------------------ */

bool errinj__http_method_is(const struct errinj__http_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

/* 405 with the Allow header ("GET, DELETE") and the same list in words ("GET or DELETE"). */
void errinj__http_method_not_allowed(struct errinj__http_reply *reply, const char *allow)
{
    char words[64];
    snprintf(words, sizeof(words), "%s", allow);
    char *last = strrchr(words, ',');
    if (last != NULL) {
        /* "GET, POST, DELETE" reads "GET, POST or DELETE". */
        memmove(last + 3, last + 1, strlen(last + 1) + 1);
        memcpy(last, " or", 3);
    }
    char message[96];
    snprintf(message, sizeof(message), "method not allowed; use %s", words);
    errinj__http_error(reply, 405, message);
    reply->allow = allow;
}

/* Routes /injection/{name}[/{action}]; `rest` points after "/injection/". */
static void route_injection(const char *rest, const struct errinj__http_request *req,
                            struct errinj__http_reply *reply)
{
    const char *slash = strchr(rest, '/');
    size_t seg_len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    const char *action = slash != NULL ? slash + 1 : NULL;
    if (action != NULL && strcmp(action, "message") != 0 && strcmp(action, "enters") != 0 &&
        strcmp(action, "waiters") != 0 && strcmp(action, "evaluations") != 0 && strcmp(action, "wait") != 0) {
        errinj__http_error(reply, 404, "unknown path");
        return;
    }
    const char *need = action == NULL ? NULL : strcmp(action, "message") == 0 ? "POST" : "GET";
    if (need != NULL && !errinj__http_method_is(req, need)) {
        errinj__http_method_not_allowed(reply, strcmp(need, "GET") == 0 ? "GET, HEAD" : need);
        return;
    }
    if (need == NULL && !errinj__http_method_is(req, "GET") && !errinj__http_method_is(req, "POST") && !errinj__http_method_is(req, "DELETE")) {
        errinj__http_method_not_allowed(reply, "GET, HEAD, POST, DELETE");
        return;
    }
    if (req->body_too_large) {
        errinj__http_error(reply, 413, "request body is larger than 1 MiB");
        return;
    }
    const char *why = NULL;
    char *name = errinj__http_decode_name(rest, seg_len, &why);
    if (name == NULL) {
        errinj__http_error(reply, 400, why);
        return;
    }
    if (action == NULL && errinj__http_method_is(req, "GET")) {
        get_injection(name, reply);
    } else if (action == NULL && errinj__http_method_is(req, "POST")) {
        enable_injection(name, req, reply);
    } else if (action == NULL) {
        errinj_disable(name);
        reply_empty(reply);
    } else if (strcmp(action, "message") == 0) {
        errinj_message(name);
        reply_empty(reply);
    } else if (strcmp(action, "wait") == 0) {
        errinj__http_parse_wait(name, req, reply); /* the reply owns name now, whatever the outcome */
        return;
    } else {
        uint64_t n = strcmp(action, "enters") == 0        ? errinj_enters(name)
                     : strcmp(action, "evaluations") == 0 ? errinj_evaluations(name)
                                                          : errinj_waiters(name);
        size_t len = 0;
        char *text = errinj__json_uint(n, &len);
        reply_json(reply, 200, text, len);
    }
    free(name);
}

/* POST /disconnect/{ip}: the program's disconnect handler drops its connections from ip. */
static void route_disconnect(const char *seg, const struct errinj__http_request *req, struct errinj__http_reply *reply)
{
    if (!errinj__http_method_is(req, "POST")) {
        errinj__http_method_not_allowed(reply, "POST");
        return;
    }
    if (req->body_too_large) {
        errinj__http_error(reply, 413, "request body is larger than 1 MiB");
        return;
    }
    char *ip = strchr(seg, '/') == NULL ? errinj__http_decode(seg, strlen(seg), NULL) : NULL;
    unsigned char addr[sizeof(struct in6_addr)];
    if (ip == NULL || (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1)) {
        free(ip);
        errinj__http_error(reply, 400, "disconnect needs an IPv4 or IPv6 address");
        return;
    }
    if (errinj__disconnect(ip))
        reply_empty(reply);
    else
        errinj__http_error(reply, 404, "no disconnect handler is registered");
    free(ip);
}

static void route_request(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                          struct errinj__http_reply *reply);
static void route_api(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                      struct errinj__http_reply *reply);

/* HEAD is answered as GET would be, without the body (libmicrohttpd leaves it out); a stream or
 * anything else that would go on past the head is answered with its head only. */
void errinj__http_handle(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                         struct errinj__http_reply *reply)
{
    if (!errinj__http_method_is(req, "HEAD")) {
        route_request(cfg, req, reply);
        return;
    }
    struct errinj__http_request as_get = *req;
    as_get.method = "GET";
    route_request(cfg, &as_get, reply);
    if (reply->stream || reply->websocket) {
        errinj__filter_free(&reply->filter);
        reply->stream = false;
        reply->websocket = false;
        if (reply->status == 0)
            reply_empty(reply);
        free(reply->body);
        reply->body = NULL;
        reply->body_len = 0;
    }
}

static void route_request(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                          struct errinj__http_reply *reply)
{
    *reply = (struct errinj__http_reply){0};
    const char *host = req->header != NULL ? req->header(req->header_ctx, "Host") : NULL;
    const char *origin = req->header != NULL ? req->header(req->header_ctx, "Origin") : NULL;
    if ((!cfg->allow_remote && host != NULL && !errinj__host_is_loopback(host)) || !errinj__http_origin_allowed(origin, host)) {
        errinj__http_error(reply, 403, "cross-origin request refused");
        return;
    }
    if (strncmp(req->path, PREFIX "/", sizeof(PREFIX)) == 0 && errinj__http_serve_ui(req->path + sizeof(PREFIX), req, reply))
        return;
    const char *authorization = req->header != NULL ? req->header(req->header_ctx, "Authorization") : NULL;
    const char *protocols = req->header != NULL ? req->header(req->header_ctx, "Sec-WebSocket-Protocol") : NULL;
    bool is_ws = strcmp(req->path, PREFIX "/ws") == 0;
    if (!errinj__http_authorized(cfg->token, authorization) &&
        !(is_ws && errinj__http_subprotocol_authorized(cfg->token, protocols))) {
        errinj__http_error(reply, 401, "missing or wrong Authorization: Bearer token");
        reply->auth_challenge = true;
        return;
    }
    route_api(cfg, req, reply);
}

void errinj__http_route_trusted(const struct errinj__http_request *req, struct errinj__http_reply *reply)
{
    static const struct errinj__http_config no_server = {0};
    *reply = (struct errinj__http_reply){0};
    route_api(&no_server, req, reply);
}

/* The routes, once the request passed the cross-origin and token checks. */
static void route_api(const struct errinj__http_config *cfg, const struct errinj__http_request *req,
                      struct errinj__http_reply *reply)
{
    if (req->query_count > ERRINJ__QUERY_MAX) {
        errinj__http_error(reply, 400, "too many query parameters");
        return;
    }
    const char *path = req->path;
    if (strncmp(path, PREFIX "/", sizeof(PREFIX)) != 0) {
        errinj__http_error(reply, 404, "unknown path");
        return;
    }
    const char *rest = path + sizeof(PREFIX);
    if (strncmp(rest, "injection/", 10) == 0) {
        route_injection(rest + 10, req, reply);
        return;
    }
    if (strncmp(rest, "disconnect/", 11) == 0) {
        route_disconnect(rest + 11, req, reply);
        return;
    }
    /* The other routes: find the route and check the method and the body size before acting. */
    enum { LIST, POINTS, STATUS, EVENTS, WS, COVERAGE } route;
    const char *allowed = "GET, HEAD";
    if (strcmp(rest, "injection") == 0) {
        route = LIST;
        allowed = "GET, HEAD, DELETE";
    } else if (strcmp(rest, "points") == 0) {
        route = POINTS;
    } else if (strcmp(rest, "status") == 0) {
        route = STATUS;
    } else if (strcmp(rest, "events") == 0) {
        route = EVENTS;
    } else if (strcmp(rest, "ws") == 0) {
        route = WS;
    } else if (strcmp(rest, "coverage") == 0) {
        route = COVERAGE;
        allowed = "GET, HEAD, DELETE";
    } else {
        errinj__http_error(reply, 404, "unknown path");
        return;
    }
    if (!errinj__http_method_is(req, "GET") && !((route == LIST || route == COVERAGE) && errinj__http_method_is(req, "DELETE"))) {
        errinj__http_method_not_allowed(reply, allowed);
        return;
    }
    if (req->body_too_large) {
        errinj__http_error(reply, 413, "request body is larger than 1 MiB");
        return;
    }
    if (route == LIST && errinj__http_method_is(req, "DELETE")) {
        errinj_disable_all();
        reply_empty(reply);
    } else if (route == LIST || route == POINTS) {
        struct errinj__json_list *list = errinj__json_list_new();
        if (route == LIST)
            errinj_list_enabled(list_one, list);
        else
            errinj_list_points(point_one, list);
        size_t len = 0;
        char *text = errinj__json_list_finish(list, &len);
        reply_json(reply, 200, text, len);
    } else if (route == COVERAGE && errinj__http_method_is(req, "DELETE")) {
        errinj__coverage_reset();
        reply_empty(reply);
    } else if (route == COVERAGE) {
        struct errinj__json_list *list = errinj__json_list_new();
        errinj__coverage_each(coverage_one, list);
        size_t len = 0;
        char *text = errinj__json_list_finish(list, &len);
        reply_json(reply, 200, text, len);
    } else if (route == STATUS) {
        status(cfg, reply);
    } else if (route == WS) {
        /* The same filters as the SSE stream; mhd_ws.c checks the handshake and upgrades. */
        if (errinj__http_parse_filter(req, reply))
            reply->websocket = true;
    } else if (errinj__http_parse_filter(req, reply)) {
        reply->stream = true;
        reply->status = 200;
        reply->content_type = "text/event-stream";
    }
}

