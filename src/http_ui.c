/*
 * http_ui.c - the dashboard's files under /v2/error_injection/ui, embedded at build time (web.h).
 *
 * The page holds no state and no secret, so it needs no token (its API calls do); it is served
 * with a Content-Security-Policy that lets it load and call only this server, and with its ETag,
 * so that a browser revalidates instead of fetching it again.
 */
#include "http_routes.h"
#include "web.h"

#include <stdlib.h>
#include <string.h>

/* ---- the dashboard ------------------------------------------------------------------------ */

/* Only this server's own files: scripts, styles, fetch() and images from nowhere else, no frames. */
#define UI_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " \
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/* Serves the embedded page and its files (`rest` is the path after the prefix's slash) when the
 * path is the dashboard's; false for every other path. The page holds no state and no secret, so
 * it needs no token (its API calls do); the Origin and Host checks have already run. The files
 * are constant, so a browser may keep them and revalidate with If-None-Match. */
bool errinj__http_serve_ui(const char *rest, const struct errinj__http_request *req, struct errinj__http_reply *reply)
{
    if (strcmp(rest, "ui") != 0 && strncmp(rest, "ui/", 3) != 0)
        return false;
    const char *want = strcmp(rest, "ui/") == 0 ? "ui" : rest;
    const struct errinj__web_file *f = errinj__web_files;
    while (f->path != NULL && strcmp(f->path, want) != 0)
        f++;
    if (f->path == NULL) {
        errinj__http_error(reply, 404, "unknown path");
        return true;
    }
    if (!errinj__http_method_is(req, "GET") && !errinj__http_method_is(req, "HEAD")) {
        errinj__http_method_not_allowed(reply, "GET, HEAD");
        return true;
    }
    reply->content_type = f->content_type;
    reply->cache_control = "no-cache";
    reply->etag = f->etag;
    reply->csp = UI_CSP;
    const char *inm = req->header != NULL ? req->header(req->header_ctx, "If-None-Match") : NULL;
    if (inm != NULL && strstr(inm, f->etag) != NULL) {
        reply->status = 304;
        return true;
    }
    reply->body = malloc(f->len);
    if (reply->body == NULL) {
        errinj__http_error(reply, 500, "out of memory");
        return true;
    }
    memcpy(reply->body, f->data, f->len);
    reply->body_len = f->len;
    reply->status = 200;
    return true;
}

