/*
 * http.c - libcurl under errinjctl: short REST exchanges and long-lived SSE streams.
 *
 * REST requests use a plain easy handle with connect and total timeouts, since every REST
 * call of the server answers at once. Streams must not have a total timeout (they are meant
 * to stay open), so they run in a curl multi loop instead: curl_multi_poll() wakes on data
 * or after at most a second, and the loop checks the caller's deadline itself. That honours a
 * deadline to the millisecond even when the server is silent between its heartbeats.
 *
 * Loopback addresses never go through a proxy: a test talking to 127.0.0.1 on a machine with
 * http_proxy set must still reach its own server.
 */
#include "http.h"

#include <jansson.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "strbuf.h"

/* Answers longer than this are cut: nothing the server says legitimately comes near it. */
#define MAX_BODY ((size_t)64 << 20)
#define MAX_ERROR_BODY ((size_t)1 << 20)
#define CONNECT_TIMEOUT_S 10L
#define REQUEST_TIMEOUT_S 60L

double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void http_response_free(http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    free(resp->warning);
    resp->warning = NULL;
}

/* Keeps the value of an Errinj-Warning header (the last one, without its line end). */
static size_t collect_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_response *resp = userdata;
    size_t len = size * nmemb;
    static const char name[] = "Errinj-Warning:";
    if (len > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
        const char *v = ptr + sizeof(name) - 1, *end = ptr + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        free(resp->warning);
        resp->warning = strndup(v, (size_t)(end - v));
    }
    return len;
}

/* Collects an answer's body, up to a cap. */
typedef struct body_sink {
    strbuf body;
    size_t cap;
} body_sink;

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_sink *sink = userdata;
    size_t len = size * nmemb;
    if (sink->body.len + len > sink->cap)
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    strbuf_append_n(&sink->body, ptr, len);
    return len;
}

/* The request headers every exchange sends. Caller frees with curl_slist_free_all(). */
static struct curl_slist *common_headers(const http_client *client, const char *extra)
{
    struct curl_slist *headers = NULL;
    if (client->token) {
        strbuf auth = {0};
        strbuf_appendf(&auth, "Authorization: Bearer %s", client->token);
        headers = curl_slist_append(headers, auth.s);
        strbuf_free(&auth);
    }
    /* A POST body of any size goes at once: no "Expect: 100-continue" round trip. */
    headers = curl_slist_append(headers, "Expect:");
    if (extra)
        headers = curl_slist_append(headers, extra);
    return headers;
}

/* One easy handle and what it borrows (its URL, headers, error buffer and NOPROXY list). */
typedef struct exchange {
    CURL *easy; /* NULL when it could not be made */
    strbuf url, noproxy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
} exchange;

/* Sets up a handle for base_url + path with the options requests and streams share; `extra` is
 * one more request header, or NULL. Pair with exchange_close(), even when ex->easy is NULL. */
static void exchange_open(exchange *ex, const http_client *client, const char *path, const char *extra)
{
    memset(ex, 0, sizeof(*ex));
    strbuf_append(&ex->url, client->base_url);
    strbuf_append(&ex->url, path);
    ex->headers = common_headers(client, extra);
    const char *env_noproxy = getenv("NO_PROXY");
    if (!env_noproxy)
        env_noproxy = getenv("no_proxy");
    if (env_noproxy && *env_noproxy)
        strbuf_appendf(&ex->noproxy, "%s,", env_noproxy);
    strbuf_append(&ex->noproxy, "localhost,127.0.0.1,::1");

    CURL *easy = ex->easy = curl_easy_init();
    if (!easy)
        return;
    curl_easy_setopt(easy, CURLOPT_URL, ex->url.s);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, ex->headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, ex->errbuf);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, ex->noproxy.s);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "errinjctl/" ERRINJCTL_VERSION);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
}

static void exchange_close(exchange *ex)
{
    if (ex->easy)
        curl_easy_cleanup(ex->easy);
    curl_slist_free_all(ex->headers);
    strbuf_free(&ex->url);
    strbuf_free(&ex->noproxy);
}

/* "curl's name for the code (its detail)", the detail being what the error buffer says. */
static void describe_curl_error(CURLcode code, const char *errbuf, char *err, size_t err_len)
{
    if (errbuf[0])
        snprintf(err, err_len, "%s (%s)", curl_easy_strerror(code), errbuf);
    else
        snprintf(err, err_len, "%s", curl_easy_strerror(code));
}

int http_request(const http_client *client, const char *method, const char *path, const char *body,
                 http_response *resp, char *err, size_t err_len)
{
    return http_request_timeout(client, method, path, body, REQUEST_TIMEOUT_S, resp, err, err_len);
}

int http_request_timeout(const http_client *client, const char *method, const char *path, const char *body,
                         double timeout_s, http_response *resp, char *err, size_t err_len)
{
    memset(resp, 0, sizeof(*resp));
    exchange ex;
    exchange_open(&ex, client, path, body ? "Content-Type: application/json" : NULL);
    CURL *easy = ex.easy;
    body_sink sink = {.cap = MAX_BODY};
    int rc = -1;
    if (!easy) {
        snprintf(err, err_len, "cannot create a curl handle");
        goto out;
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode code = curl_easy_perform(easy);
    if (code != CURLE_OK) {
        if (code == CURLE_WRITE_ERROR && sink.body.len + 1 > sink.cap)
            snprintf(err, err_len, "the answer is over %zu bytes", sink.cap);
        else
            describe_curl_error(code, ex.errbuf, err, err_len);
        free(resp->warning);
        resp->warning = NULL;
        goto out;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
    strbuf_append(&sink.body, ""); /* an empty answer still gets a NUL-terminated body */
    resp->body = sink.body.s;
    resp->body_len = sink.body.len;
    sink.body.s = NULL;
    rc = 0;
out:
    exchange_close(&ex);
    strbuf_free(&sink.body);
    return rc;
}

/* The state of one stream, shared by the write callback and the loop. */
typedef struct stream_ctx {
    CURL *easy;
    http_data_fn on_data;
    void *arg;
    int checked; /* the status and content type were looked at */
    int refused; /* not a 200 event stream: the body is collected as an error answer */
    int stopped; /* on_data returned non-zero */
    int stop_rc;
    int got_bytes; /* any stream byte arrived */
    body_sink error_body;
} stream_ctx;

/* Whether the answer is a 200 text/event-stream; decided on its first body bytes. */
static void check_answer(stream_ctx *ctx)
{
    ctx->checked = 1;
    long status = 0;
    char *content_type = NULL;
    curl_easy_getinfo(ctx->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(ctx->easy, CURLINFO_CONTENT_TYPE, &content_type);
    if (status != 200 || !content_type ||
        strncasecmp(content_type, "text/event-stream", strlen("text/event-stream")) != 0)
        ctx->refused = 1;
}

static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    stream_ctx *ctx = userdata;
    size_t len = size * nmemb;
    if (!ctx->checked)
        check_answer(ctx);
    if (ctx->refused)
        return collect_body(ptr, size, nmemb, &ctx->error_body);
    ctx->got_bytes = 1;
    int rc = ctx->on_data(ctx->arg, ptr, len);
    if (rc) {
        ctx->stopped = 1;
        ctx->stop_rc = rc;
        return 0; /* ends the transfer; the loop sees ctx->stopped */
    }
    return len;
}

http_stream_end http_stream(const http_client *client, const char *path, http_data_fn on_data, void *arg,
                            double deadline, int *stop_rc, http_response *resp, int *connected, char *err,
                            size_t err_len)
{
    memset(resp, 0, sizeof(*resp));
    if (connected)
        *connected = 0;
    exchange ex;
    exchange_open(&ex, client, path, "Accept: text/event-stream");
    stream_ctx ctx = {.easy = ex.easy, .on_data = on_data, .arg = arg, .error_body = {.cap = MAX_ERROR_BODY}};
    http_stream_end end = HTTP_STREAM_FAILED;
    CURLM *multi = curl_multi_init();
    if (!ctx.easy || !multi) {
        snprintf(err, err_len, "cannot create a curl handle");
        goto out;
    }
    curl_easy_setopt(ctx.easy, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(ctx.easy, CURLOPT_WRITEDATA, &ctx);
    /* Keepalive probes find a server host that vanished without closing the connection. */
    curl_easy_setopt(ctx.easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(ctx.easy, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(ctx.easy, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_multi_add_handle(multi, ctx.easy);

    int running = 1;
    int timed_out = 0;
    for (;;) {
        CURLMcode mcode = curl_multi_perform(multi, &running);
        if (mcode != CURLM_OK) {
            snprintf(err, err_len, "%s", curl_multi_strerror(mcode));
            goto out;
        }
        if (ctx.stopped || !running)
            break;
        int wait_ms = 1000;
        if (deadline > 0) {
            double left = deadline - mono_now();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            /* Round up, so the loop does not spin through the last partial millisecond. */
            if (left * 1000 + 1 < wait_ms)
                wait_ms = (int)(left * 1000) + 1;
        }
        mcode = curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
        if (mcode != CURLM_OK) {
            snprintf(err, err_len, "%s", curl_multi_strerror(mcode));
            goto out;
        }
    }

    if (connected)
        *connected = ctx.got_bytes;
    if (ctx.stopped) {
        if (stop_rc)
            *stop_rc = ctx.stop_rc;
        end = HTTP_STREAM_STOPPED;
        goto out;
    }

    /* The transfer ended (or the deadline passed): find out how. */
    CURLcode code = CURLE_OK;
    int finished = 0;
    CURLMsg *msg;
    int left_msgs;
    while ((msg = curl_multi_info_read(multi, &left_msgs))) {
        if (msg->msg == CURLMSG_DONE) {
            code = msg->data.result;
            finished = 1;
        }
    }
    if (!ctx.checked && finished && code == CURLE_OK)
        check_answer(&ctx); /* an answer without a body never reached stream_write */

    if (ctx.refused) {
        curl_easy_getinfo(ctx.easy, CURLINFO_RESPONSE_CODE, &resp->status);
        strbuf_append(&ctx.error_body.body, "");
        resp->body = ctx.error_body.body.s;
        resp->body_len = ctx.error_body.body.len;
        ctx.error_body.body.s = NULL;
        end = HTTP_STREAM_REFUSED;
    } else if (timed_out) {
        end = HTTP_STREAM_TIMEOUT;
    } else if (!ctx.got_bytes && code != CURLE_OK) {
        describe_curl_error(code, ex.errbuf, err, err_len);
        end = HTTP_STREAM_FAILED;
    } else {
        if (code == CURLE_OK)
            snprintf(err, err_len, "the server closed the event stream");
        else {
            char detail[CURL_ERROR_SIZE + 128];
            describe_curl_error(code, ex.errbuf, detail, sizeof(detail));
            snprintf(err, err_len, "the event stream broke: %s", detail);
        }
        end = HTTP_STREAM_CLOSED;
    }
out:
    if (multi && ctx.easy)
        curl_multi_remove_handle(multi, ctx.easy);
    exchange_close(&ex);
    if (multi)
        curl_multi_cleanup(multi);
    strbuf_free(&ctx.error_body.body);
    return end;
}

void http_error_describe(const http_response *resp, char *out, size_t out_len)
{
    json_t *root = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    json_t *message = json_is_object(root) ? json_object_get(root, "message") : NULL;
    if (json_is_string(message)) {
        snprintf(out, out_len, "HTTP %ld: %s", resp->status, json_string_value(message));
    } else if (resp->body && resp->body_len > 0) {
        /* Not errinj's JSON: show the start of whatever came, on one line. */
        char excerpt[201];
        size_t n = resp->body_len < 200 ? resp->body_len : 200;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)resp->body[i];
            excerpt[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        excerpt[n] = '\0';
        snprintf(out, out_len, "HTTP %ld: %s%s", resp->status, excerpt, resp->body_len > 200 ? "..." : "");
    } else {
        snprintf(out, out_len, "HTTP %ld", resp->status);
    }
    json_decref(root);
}
