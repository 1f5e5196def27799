/*
 * api.h - the server's REST API as errinjctl's commands use it: the paths of errinj-events(7),
 * one call that insists on 200 and says what went wrong otherwise, and JSON answers read with
 * the checks every command makes. Below rest.c and events.c, above http.c.
 */
#ifndef ERRINJCTL_API_H
#define ERRINJCTL_API_H

#include <jansson.h>

#include "errinjctl.h"

/* Appends API "/injection/" + NAME percent-encoded + suffix (such as "/enters" or "?x=1"). */
void api_injection_path(strbuf *path, const char *name, const char *suffix);

/*
 * Sends a request to ctl's node and insists on 200. Returns 0 with the answer in resp (release
 * it with http_response_free()), or EXIT_SERVER after saying on stderr what went wrong.
 */
int api_call(ctl *ctl, const char *method, const char *path, const char *body, http_response *resp);

/* The same for a GET whose answer must be a JSON array, in *array (the caller decrefs it). */
int api_get_array(ctl *ctl, const char *path, json_t **array);

/* An answer parsed as JSON (any value); NULL, said on stderr, when it is not JSON. */
json_t *api_answer_json(const ctl *ctl, const http_response *resp);

/* Says "server error: HTTP 400: the server's message" on stderr for an answer that is not 200. */
void api_complain_status(const ctl *ctl, const http_response *resp);

/* object[key] when it is a string, else `fallback`. */
const char *api_string(json_t *object, const char *key, const char *fallback);

/* Appends a point's "file:line" from its "file" and "line" members: the file alone without a
 * line, "-" without a file. */
void api_append_location(strbuf *out, json_t *object);

#endif
