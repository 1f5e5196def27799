/*
 * events.c - the commands that read events: `events` prints them as points fire, `wait` until
 * NAME fired N times.
 *
 * events reads the SSE stream (GET /v2/error_injection/events, see errinj-events(7)) through
 * http_stream() and sse.c, and prints each event as one readable line or as its JSON. wait
 * asks the server to wait (GET .../injection/NAME/wait) from the injection's latest enable, so
 * that enable, act, wait never misses a hit; with --since it reads the stream instead and
 * counts the kept events after that seq. Both end with the exit statuses of errinjctl(1): 0
 * seen, 1 timed out, 3 the server unreachable, refusing or gone.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "api.h"
#include "msgs.h"
#include "sse.h"

/* Appends a value for an event line: bare when plain, else quoted with JSON escapes. */
static void append_word(strbuf *line, const char *s)
{
    int plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p == 0x7f)
            plain = 0;
    if (plain) {
        strbuf_append(line, s);
        return;
    }
    json_t *str = json_string(s);
    char *quoted = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    strbuf_append(line, quoted ? quoted : "\"?\"");
    free(quoted);
    json_decref(str);
}

/* Appends ts_ns as local time with microseconds: "2026-01-05 14:03:07.123456". */
static void append_time(strbuf *line, json_t *ts)
{
    if (!json_is_integer(ts)) {
        strbuf_append(line, "-");
        return;
    }
    json_int_t ns = json_integer_value(ts);
    time_t secs = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    struct tm tm;
    char when[64];
    if (!localtime_r(&secs, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm)) {
        strbuf_append(line, "-");
        return;
    }
    strbuf_appendf(line, "%s.%06ld", when, frac / 1000);
}

/* Appends prefix and the integer v, or prefix and "-" when v is not an integer. */
static void append_integer(strbuf *line, const char *prefix, json_t *v)
{
    strbuf_append(line, prefix);
    if (json_is_integer(v))
        strbuf_appendf(line, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        strbuf_append(line, "-");
}

/*
 * One readable line for an event:
 * "SEQ DATE TIME shard=N TYPE PHASE NAME FILE:LINE action=A eval=N [KEY=VALUE]..."
 * (action and eval only when the server sends them).
 */
static void format_event(strbuf *line, json_t *ev)
{
    append_integer(line, "", json_object_get(ev, "seq"));
    strbuf_append(line, " ");
    append_time(line, json_object_get(ev, "ts_ns"));
    append_integer(line, " shard=", json_object_get(ev, "shard"));
    static const char *const words[] = {"type", "phase", "injection"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        strbuf_append(line, " ");
        append_word(line, api_string(ev, words[i], "-"));
    }
    strbuf_append(line, " ");
    const char *file = api_string(ev, "file", NULL);
    json_t *at = json_object_get(ev, "line");
    if (file) {
        append_word(line, file);
        if (json_is_integer(at))
            strbuf_appendf(line, ":%" JSON_INTEGER_FORMAT, json_integer_value(at));
    } else {
        strbuf_append(line, "-");
    }
    const char *action = api_string(ev, "action", NULL);
    if (action) {
        strbuf_append(line, " action=");
        append_word(line, action);
    }
    json_t *eval = json_object_get(ev, "eval");
    if (json_is_integer(eval))
        strbuf_appendf(line, " eval=%" JSON_INTEGER_FORMAT, json_integer_value(eval));
    json_t *params = json_object_get(ev, "parameters");
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value)
    {
        strbuf_append(line, " ");
        append_word(line, key);
        strbuf_append(line, "=");
        if (json_is_string(value)) {
            append_word(line, json_string_value(value));
        } else {
            char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            append_word(line, dumped ? dumped : "?");
            free(dumped);
        }
    }
}

/* Why a stream callback stopped the stream. */
enum {
    STOP_SEEN = 1,   /* wait: the Nth hit arrived */
    STOP_OUTPUT = 2, /* stdout failed */
};

/* The state shared by the events and wait commands while a stream runs. */
typedef struct watch {
    ctl *ctl;
    sse_parser parser;
    int json;              /* print raw event JSON */
    int quiet;             /* print nothing on stdout */
    int connected_comment; /* ": connected" arrived */
    /* wait only: events of `name` in `phase` are counted until `want`. */
    const char *name;
    const char *phase;
    uint64_t want, seen;
    uint64_t last_seq;
} watch;

static int print_event_line(watch *w, const sse_event *ev, json_t *root)
{
    if (w->quiet)
        return 0;
    if (w->json) {
        fwrite(ev->data, 1, ev->data_len, stdout);
        putchar('\n');
    } else {
        strbuf line = {0};
        format_event(&line, root);
        puts(strbuf_str(&line));
        strbuf_free(&line);
    }
    return flush_stdout(w->ctl) == 0 ? 0 : STOP_OUTPUT;
}

static int on_stream_event(void *arg, const sse_event *ev)
{
    watch *w = arg;
    if (strcmp(ev->type, "overflow") == 0) {
        json_t *root = json_loadb(ev->data, ev->data_len, 0, NULL);
        json_t *dropped = json_object_get(root, "dropped");
        json_t *next = json_object_get(root, "next_seq");
        if (json_is_integer(dropped) && json_is_integer(next))
            complain(w->ctl,
                     "overflow: %" JSON_INTEGER_FORMAT " events dropped, the stream goes on "
                     "at seq %" JSON_INTEGER_FORMAT,
                     json_integer_value(dropped), json_integer_value(next));
        else
            complain(w->ctl, "overflow: events were dropped (%.*s)", (int)ev->data_len, ev->data);
        json_decref(root);
        return 0;
    }
    if (strcmp(ev->type, "message") != 0) {
        notef(w->ctl, "ignoring an event of type '%s'", ev->type);
        return 0;
    }

    json_error_t error;
    json_t *root = json_loadb(ev->data, ev->data_len, 0, &error);
    if (!json_is_object(root)) {
        complain(w->ctl, "ignoring an event that is not a JSON object: %.*s",
                 (int)(ev->data_len < 200 ? ev->data_len : 200), ev->data);
        json_decref(root);
        return 0;
    }
    json_t *seq = json_object_get(root, "seq");
    if (json_is_integer(seq))
        w->last_seq = (uint64_t)json_integer_value(seq);

    int rc = 0;
    if (!w->name) {
        rc = print_event_line(w, ev, root);
    } else if (strcmp(api_string(root, "injection", ""), w->name) == 0 &&
               (strcmp(w->phase, "all") == 0 || strcmp(api_string(root, "phase", ""), w->phase) == 0)) {
        rc = print_event_line(w, ev, root);
        if (rc == 0 && ++w->seen >= w->want)
            rc = STOP_SEEN;
    }
    json_decref(root);
    return rc;
}

static int on_stream_comment(void *arg, const char *text, size_t len)
{
    watch *w = arg;
    (void)len;
    if (strcmp(text, "connected") == 0) {
        w->connected_comment = 1;
        notef(w->ctl, "connected to %s", w->ctl->client.base_url);
    } else {
        notef(w->ctl, "server says: %s", text);
    }
    return 0;
}

static int on_stream_data(void *arg, const char *buf, size_t len)
{
    watch *w = arg;
    return sse_parser_feed(&w->parser, buf, len);
}

/*
 * Runs the stream at `path` through the watch until it stops, times out or breaks, and turns
 * the end into an exit status. `timeout` (seconds, 0 for none) is for the messages.
 */
static int run_stream(watch *w, const char *path, double timeout)
{
    ctl *ctl = w->ctl;
    sse_parser_init(&w->parser, on_stream_event, on_stream_comment, w, 0);
    double deadline = timeout > 0 ? mono_now() + timeout : 0;
    int stop_rc = 0, connected = 0;
    http_response resp;
    char err[CURL_ERROR_SIZE + 256] = "";
    http_stream_end end = http_stream(&ctl->client, path, on_stream_data, w, deadline, &stop_rc, &resp,
                                      &connected, err, sizeof(err));
    sse_parser_free(&w->parser);

    switch (end) {
    case HTTP_STREAM_STOPPED:
        if (stop_rc == STOP_SEEN)
            return EXIT_SEEN_OR_OK;
        if (stop_rc == STOP_OUTPUT)
            return EXIT_SERVER; /* said by flush_stdout() */
        if (stop_rc == SSE_ETOOLONG)
            complain(ctl, "the event stream sent a line or event over %zu bytes", SSE_DEFAULT_MAX_LINE);
        else
            complain(ctl, "out of memory while reading the event stream");
        return EXIT_SERVER;
    case HTTP_STREAM_TIMEOUT:
        if (!connected) {
            complain(ctl, "no answer from %s within %g s", ctl->client.base_url, timeout);
            return EXIT_SERVER;
        }
        complain(ctl, "timed out after %g s waiting for %s (phase %s): seen %" PRIu64 " of %" PRIu64, timeout,
                 w->name, w->phase, w->seen, w->want);
        return EXIT_TIMED_OUT;
    case HTTP_STREAM_CLOSED:
        complain(ctl, "%s (%s)", err, ctl->client.base_url);
        return EXIT_SERVER;
    case HTTP_STREAM_FAILED:
        complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
        return EXIT_SERVER;
    case HTTP_STREAM_REFUSED:
        if (resp.status == 200) {
            char what[512];
            http_error_describe(&resp, what, sizeof(what));
            complain(ctl, "the server did not answer with an event stream (%s)", what);
        } else {
            api_complain_status(ctl, &resp);
        }
        http_response_free(&resp);
        return EXIT_SERVER;
    }
    return EXIT_SERVER;
}

int act_events(ctl *ctl)
{
    watch w = {.ctl = ctl, .json = ctl->json};
    strbuf path = {0};
    strbuf_append(&path, API "/events");
    strbuf_append(&path, strbuf_str(&ctl->events_query));
    int rc = run_stream(&w, path.s, 0);
    strbuf_free(&path);
    return rc;
}

/* The server holds a wait at most this long; longer (or unlimited) waits ask again. */
#define SERVER_WAIT_MAX_S 3600.0

/* Prints the JSON array of events a server-side wait answered, as the stream would. */
static int print_wait_answer(watch *w, const http_response *resp)
{
    json_t *events = api_answer_json(w->ctl, resp);
    if (!json_is_array(events)) {
        if (events)
            complain(w->ctl, "the server's wait answer is not a JSON array");
        json_decref(events);
        return EXIT_SERVER;
    }
    size_t i;
    json_t *ev;
    int rc = 0;
    json_array_foreach(events, i, ev) {
        char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        sse_event sev = {.type = "message", .data = text ? text : "{}", .data_len = text ? strlen(text) : 2};
        if (rc == 0 && print_event_line(w, &sev, ev) != 0)
            rc = STOP_OUTPUT;
        free(text);
    }
    json_decref(events);
    return rc == STOP_OUTPUT ? EXIT_SERVER : EXIT_SEEN_OR_OK;
}

/*
 * wait without --since: the server waits (GET .../injection/NAME/wait) from the injection's
 * latest enable, so a hit between the enable and this command is not missed. A timeout beyond
 * what the server holds, or none, becomes several requests; a wait consumes nothing, so each
 * asks for the same events again.
 */
static int run_wait_on_server(watch *w, double timeout)
{
    ctl *ctl = w->ctl;
    double deadline = timeout > 0 ? mono_now() + timeout : 0;
    for (;;) {
        double slice = SERVER_WAIT_MAX_S;
        if (deadline > 0) {
            double left = deadline - mono_now();
            slice = left < 0 ? 0 : left < slice ? left : slice;
        }
        char number[64];
        strbuf path = {0};
        api_injection_path(&path, w->name, "/wait");
        snprintf(number, sizeof(number), "%" PRIu64, w->want);
        strbuf_append_query(&path, "count", number);
        if (strcmp(w->phase, "hit") != 0)
            strbuf_append_query(&path, "phase", w->phase);
        snprintf(number, sizeof(number), "%.3f", slice);
        strbuf_append_query(&path, "timeout", number);
        http_response resp;
        char err[CURL_ERROR_SIZE + 256];
        /* The server answers 408 at the end of the slice; a little longer means it is stuck. */
        double sent_at = mono_now();
        int sent =
            http_request_timeout(&ctl->client, "GET", path.s, NULL, slice + 2, &resp, err, sizeof(err));
        strbuf_free(&path);
        /* curl's own clock may stop a hair short of slice + 2: a failure after more than the
         * slice itself is a server that accepted and never answered, not one out of reach. */
        if (sent != 0 && mono_now() - sent_at > slice + 1) {
            complain(ctl, "no answer from %s within %g s (%s)", ctl->client.base_url, slice + 2, err);
            return EXIT_SERVER;
        } else if (sent != 0) {
            complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
            return EXIT_SERVER;
        }
        int rc;
        if (resp.status == 200) {
            rc = print_wait_answer(w, &resp);
        } else if (resp.status == 408 && (deadline == 0 || mono_now() < deadline)) {
            http_response_free(&resp);
            continue; /* the server's limit, not ours: ask again */
        } else if (resp.status == 408) {
            char what[512];
            http_error_describe(&resp, what, sizeof(what));
            complain(ctl, "timed out after %g s waiting for %s (phase %s): %s", timeout, w->name, w->phase,
                     what);
            rc = EXIT_TIMED_OUT;
        } else {
            api_complain_status(ctl, &resp);
            rc = EXIT_SERVER;
        }
        http_response_free(&resp);
        return rc;
    }
}

int act_wait(ctl *ctl)
{
    watch w = {.ctl = ctl, .json = ctl->json, .quiet = ctl->quiet, .name = ctl->name, .phase = ctl->phase,
               .want = ctl->count};
    if (!ctl->since)
        return run_wait_on_server(&w, ctl->timeout);
    strbuf path = {0};
    strbuf_append(&path, API "/events");
    strbuf_append_query(&path, "injection", w.name);
    if (strcmp(w.phase, "hit") != 0)
        strbuf_append_query(&path, "phase", w.phase);
    strbuf_append_query(&path, "since", ctl->since);
    int rc = run_stream(&w, path.s, ctl->timeout);
    strbuf_free(&path);
    return rc;
}
