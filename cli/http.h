/*
 * http.h - the little HTTP client errinjctl needs, on top of libcurl.
 *
 * Two shapes of exchange: a request with a short answer (the REST API), and a stream read
 * until the caller has what it wants, a deadline passes or the server goes away (the SSE
 * event stream). The stream runs a curl multi loop that wakes at least every second, so a
 * deadline is honoured even when the server sends nothing at all.
 *
 * Call curl_global_init() once before using these functions.
 */
#ifndef ERRINJCTL_HTTP_H
#define ERRINJCTL_HTTP_H

#include <stddef.h>

/* Where and how to reach the server. Strings are borrowed: they must outlive the calls. */
typedef struct http_client {
    const char *base_url; /* "http://127.0.0.1:10000", without a trailing '/' */
    const char *token;    /* sent as "Authorization: Bearer TOKEN"; NULL for none */
} http_client;

/* An answer: the status and the body, NUL-terminated. Release with http_response_free(). */
typedef struct http_response {
    long status;
    char *body;
    size_t body_len;
    char *warning; /* the server's Errinj-Warning header, or NULL */
} http_response;

void http_response_free(http_response *resp);

/*
 * Sends `method` to base_url + `path` (which starts with '/' and is already percent-encoded,
 * query included), with `body` as application/json when not NULL. Returns 0 when the server
 * answered (any status: look at resp->status), or -1 when it could not be reached or the
 * exchange failed, with a message in err.
 */
int http_request(const http_client *client, const char *method, const char *path, const char *body,
                 http_response *resp, char *err, size_t err_len);

/* The same with a total time limit of `timeout_s` seconds instead of the default 60 (for a
 * request the server holds, such as a server-side wait). */
int http_request_timeout(const http_client *client, const char *method, const char *path, const char *body,
                         double timeout_s, http_response *resp, char *err, size_t err_len);

/* Receives stream bytes as they arrive. Return 0 to go on, non-zero to stop the stream. */
typedef int (*http_data_fn)(void *arg, const char *buf, size_t len);

/* How a stream ended. */
typedef enum http_stream_end {
    HTTP_STREAM_STOPPED, /* the data callback returned non-zero (its value is in *stop_rc) */
    HTTP_STREAM_TIMEOUT, /* the deadline passed */
    HTTP_STREAM_CLOSED,  /* the server ended the stream or the connection broke; err says how */
    HTTP_STREAM_FAILED,  /* the server could not be reached; err says why */
    HTTP_STREAM_REFUSED, /* the server answered without a stream: resp holds status and body */
} http_stream_end;

/*
 * GETs base_url + `path` as a text/event-stream and hands every byte of a 200 answer to
 * on_data. `deadline` is a monotonic time in seconds (mono_now()), or 0 for none. A status
 * other than 200, or another content type, ends with HTTP_STREAM_REFUSED and the answer in
 * `resp` (release it with http_response_free()). `*connected` (may be NULL) tells whether any
 * stream byte arrived, to tell a slow server from a quiet stream.
 */
http_stream_end http_stream(const http_client *client, const char *path, http_data_fn on_data, void *arg,
                            double deadline, int *stop_rc, http_response *resp, int *connected, char *err,
                            size_t err_len);

/* Seconds on the monotonic clock. */
double mono_now(void);

/*
 * A one-line description of a failed answer: the status and the server's JSON "message",
 * e.g. "HTTP 400: one_shot must be true or false".
 */
void http_error_describe(const http_response *resp, char *out, size_t out_len);

#endif
