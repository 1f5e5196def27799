/*
 * json.h - the JSON the library reads and writes, behind functions that take and give plain C,
 * so that jansson is json.c's alone.
 *
 * json.c owns every JSON text: parameter sets from request bodies and ERRINJ_AT_STARTUP, the
 * REST API's answers, the lossy string for bytes that may not be UTF-8, and the SSE frame of
 * each event (written by hand, in time linear in its size, and cut at ERRINJ__EVENT_LINE_MAX),
 * and the WebSocket sessions' commands (read field by field) and replies.
 * Every function that returns text returns it malloc'd with its length, or NULL when out of
 * memory. jansson's own types are declared only for a file that defines ERRINJ__JSON_JANSSON
 * before including this header: json.c and tests that build values with jansson.
 */
#ifndef ERRINJ_JSON_H
#define ERRINJ_JSON_H

#include "errinj.h"
#include "coverage.h"
#include "params.h"
#include "ring.h"

/* The longest `data:` line of an event, its line feed included. */
#define ERRINJ__EVENT_LINE_MAX (64 * 1024)
/* The SSE frame "id: N\ndata: {...}\n\n" of a record, malloc'd; NULL when out of memory. Its data
 * line is at most ERRINJ__EVENT_LINE_MAX bytes: parameters that would make it longer are cut (a
 * value shortened, the pairs after it left out) and the JSON then has "truncated":true. */
char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len);

/* The longest overflow frame, its NUL included. */
#define ERRINJ__OVERFLOW_FRAME_MAX 96
/* Writes "event: overflow\ndata: {"dropped":D,"next_seq":S}\n\n" into buf (at least
 * ERRINJ__OVERFLOW_FRAME_MAX bytes) and returns its length: what a stream that missed seqs gets
 * before the next event. */
size_t errinj__json_overflow_frame(char *buf, uint64_t dropped, uint64_t next_seq);

/* {"message": message, "code": code}: every error answer's body. */
char *errinj__json_error(int code, const char *message, size_t *len);
/* A bare integer (GET .../enters, .../evaluations, .../waiters). */
char *errinj__json_uint(uint64_t value, size_t *len);
/* GET .../injection/{name}: [{"enabled":...}] in ScyllaDB's per-shard shape, one element, with
 * one_shot, parameters, term and seed when enabled (term is the text to show). */
char *errinj__json_injection(const errinj_state *st, const char *term, size_t *len);

/* GET /status. */
struct errinj__json_status {
    const char *version;
    uint64_t seq;
    unsigned subscribers;
    uint64_t dropped;
    unsigned shards;
    const char *instance;
    uint64_t seed;
};
char *errinj__json_status(const struct errinj__json_status *s, size_t *len);

/* A JSON array built one element at a time: the enabled names, the catalogue, coverage. A NULL
 * list (out of memory) is accepted everywhere and finishes as NULL. */
struct errinj__json_list;
struct errinj__json_list *errinj__json_list_new(void);
void errinj__json_list_add_string(struct errinj__json_list *l, const char *s);
void errinj__json_list_add_point(struct errinj__json_list *l, const errinj_point *p, bool enabled, uint64_t enters,
                                 uint64_t evaluations, unsigned waiters);
void errinj__json_list_add_coverage(struct errinj__json_list *l, const struct errinj__coverage_row *row);
/* The array's text; frees l. */
char *errinj__json_list_finish(struct errinj__json_list *l, size_t *len);

/*
 * The parameters of a request body: empty or blank for none, JSON null, or an object whose
 * string values are kept and others stringified as ScyllaDB does. Returns 0 and *out, or
 * ERRINJ_EINVAL with the reason in why ("malformed JSON body: ..." or what is wrong with the
 * object), or ERRINJ_ENOMEM.
 */
int errinj__json_params(const char *body, size_t len, struct errinj__config **out, char *why, size_t why_len);

/* One item of ERRINJ_AT_STARTUP, valid during the callback; the callback takes cfg. */
struct errinj__startup_item {
    const char *where; /* "ERRINJ_AT_STARTUP item N", for messages */
    const char *name;
    const char *term;  /* NULL for none */
    bool one_shot;
    bool has_seed;
    uint64_t seed;
    struct errinj__config *cfg;
};
/*
 * Parses ERRINJ_AT_STARTUP (a JSON array of {"name", "one_shot", "parameters", "term", "seed"})
 * and calls fn for each item in order until one returns non-zero. A malformed text or item is
 * logged as one line naming it and is ERRINJ_EINVAL. Returns 0 or the first error.
 */
int errinj__json_startup_each(const char *text, int (*fn)(struct errinj__startup_item *item, void *arg), void *arg);

/*
 * A parsed JSON text, read field by field: a WebSocket session's command. Parses a JSON object
 * or array (no other top-level value); NULL with the reason in why ("malformed JSON: ...").
 * The getters take a key of the top-level object (none when it is an array).
 */
struct errinj__json_doc;
enum errinj__json_kind {
    ERRINJ__JSON_ABSENT,
    ERRINJ__JSON_NULL,
    ERRINJ__JSON_BOOL,
    ERRINJ__JSON_INTEGER,
    ERRINJ__JSON_REAL,
    ERRINJ__JSON_STRING,
    ERRINJ__JSON_ARRAY,
    ERRINJ__JSON_OBJECT,
};
struct errinj__json_doc *errinj__json_doc_parse(const char *text, size_t len, char *why, size_t why_len);
void errinj__json_doc_free(struct errinj__json_doc *d);
bool errinj__json_doc_is_object(const struct errinj__json_doc *d);
enum errinj__json_kind errinj__json_doc_kind(const struct errinj__json_doc *d, const char *key);
/* A string field's bytes and length (a string may hold NUL); NULL when it is no string. */
const char *errinj__json_doc_string(const struct errinj__json_doc *d, const char *key, size_t *len);
/* True when the field is JSON true. */
bool errinj__json_doc_true(const struct errinj__json_doc *d, const char *key);
/* A scalar field as text into out (len bytes): a string as it is, an integer in decimal, a real
 * with six decimals, a boolean as true/false. False for other kinds or when it does not fit. */
bool errinj__json_doc_scalar(const struct errinj__json_doc *d, const char *key, char *out, size_t len);
/* The first key, in the object's order, that allowed(key, arg) refuses; NULL when none. */
const char *errinj__json_doc_first_key_not(const struct errinj__json_doc *d,
                                           bool (*allowed)(const char *key, const void *arg), const void *arg);
/* A field's value as compact JSON text, malloc'd; NULL when absent or out of memory. */
char *errinj__json_doc_field_text(const struct errinj__json_doc *d, const char *key, size_t *len);

/* A session's reply to a command whose id is the JSON text id (NULL for JSON null):
 * {"id":ID,"ok":false,"message":M,"code":C}. */
char *errinj__json_ws_error(const char *id, int code, const char *message, size_t *len);
/* What the REST router answered to a command, as its reply. */
struct errinj__json_ws_answer {
    const char *id;      /* JSON text; NULL for null */
    int status;          /* 200, or an error whose body's "message" is the reply's */
    const char *body;
    size_t body_len;
    const char *refused; /* the message when an error's body has none */
    bool has_seq;
    uint64_t seq;
    const char *warning; /* NULL for none */
    /* How the body joins {"id":ID,"ok":true}: not at all, its first element's fields (get), or
     * as "events" (wait). */
    enum { ERRINJ__WS_ANSWER_PLAIN, ERRINJ__WS_ANSWER_FIRST_ELEMENT, ERRINJ__WS_ANSWER_EVENTS } shape;
};
char *errinj__json_ws_answer(const struct errinj__json_ws_answer *a, size_t *len);

#ifdef ERRINJ__JSON_JANSSON
#include <jansson.h>
/*
 * Builds a config from a request body or an ERRINJ_AT_STARTUP "parameters" value: NULL, JSON
 * null or an object; string values are kept, others stringified as ScyllaDB does (compact
 * JSON). Returns 0 and *out, or ERRINJ_EINVAL with a static reason in *why.
 */
int errinj__config_from_json(const json_t *params, struct errinj__config **out, const char **why);
/* A JSON string for bytes that may not be UTF-8: invalid sequences become U+FFFD. */
json_t *errinj__json_string_lossy(const char *s);
#endif

#endif /* ERRINJ_JSON_H */
