/*
 * json.h - the JSON the library reads and writes, behind functions that take and give plain C,
 * so that jansson is json.c's alone.
 *
 * json.c owns every JSON text: parameter sets from request bodies and ERRINJ_AT_STARTUP, the
 * REST API's answers, the lossy string for bytes that may not be UTF-8, and the SSE frame of
 * each event (written by hand, in time linear in its size, and cut at ERRINJ__EVENT_LINE_MAX).
 * Every function that returns text returns it malloc'd with its length, or NULL when out of
 * memory. jansson's own types are declared only for a file that defines ERRINJ__JSON_JANSSON
 * before including this header: json.c, tests that build values with jansson, and ws.c, whose
 * session messages still use jansson directly (the next to move behind functions here).
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
