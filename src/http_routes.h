/*
 * http_routes.h - what the files of the REST layer share, and nothing else includes: http.c
 * (the router and the routes), http_access.c (who may call), http_query.c (reading the path
 * and query), http_ui.c (the dashboard's files).
 */
#ifndef ERRINJ_HTTP_ROUTES_H
#define ERRINJ_HTTP_ROUTES_H

#include "http.h"

#define ERRINJ__HTTP_PREFIX "/v2/error_injection"

/* ---- http.c ---------------------------------------------------------------------------- */

bool errinj__http_method_is(const struct errinj__http_request *req, const char *m);
/* A 405 with the Allow header ("GET, DELETE") and the same list in words ("GET or DELETE"). */
void errinj__http_method_not_allowed(struct errinj__http_reply *reply, const char *allow);

/* ---- http_access.c ------------------------------------------------------------------------- */

/* True without an Origin, or for the server's own ("http://" + Host). */
bool errinj__http_origin_allowed(const char *origin, const char *host);
/* True when no token is set, or Authorization is "Bearer <token>". */
bool errinj__http_authorized(const char *token, const char *authorization);
/* True when no token is set, or a Sec-WebSocket-Protocol list has "errinj.bearer.<token>". */
bool errinj__http_subprotocol_authorized(const char *token, const char *protocols);

/* ---- http_query.c ---------------------------------------------------------------------------- */

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape, an embedded NUL or no memory. */
char *errinj__http_decode(const char *s, size_t len, size_t *out_len);
/* Decodes and checks an injection name from a path segment; NULL with a static *why on failure. */
char *errinj__http_decode_name(const char *seg, size_t len, const char **why);
/* A query argument's value decoded ("" for a key without '='), malloc'd; NULL on a bad escape. */
char *errinj__http_query_value(const struct errinj__query_arg *arg);
bool errinj__http_query_is(const struct errinj__query_arg *arg, const char *key);
/* Validates the events query into reply->filter; false after setting a 400. */
bool errinj__http_parse_filter(const struct errinj__http_request *req, struct errinj__http_reply *reply);
/* Validates GET .../injection/{name}/wait into reply->wait_query (taking name); false after a 400. */
bool errinj__http_parse_wait(char *name, const struct errinj__http_request *req, struct errinj__http_reply *reply);

/* ---- http_ui.c ------------------------------------------------------------------------------- */

/* Serves the dashboard's files when `rest` (the path after the prefix's slash) is one of its
 * paths; false for every other path. */
bool errinj__http_serve_ui(const char *rest, const struct errinj__http_request *req, struct errinj__http_reply *reply);

#endif /* ERRINJ_HTTP_ROUTES_H */
