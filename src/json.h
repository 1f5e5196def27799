/*
 * json.h - JSON in and out: parameters from request bodies, event frames for the streams.
 *
 * json.c owns every use of jansson: building a parameter set from a JSON value, the lossy
 * string for bytes that may not be UTF-8, and the SSE frame of an event record (written by
 * hand, linear in the event's size, and cut at ERRINJ__EVENT_LINE_MAX).
 */
#ifndef ERRINJ_JSON_H
#define ERRINJ_JSON_H

#include "params.h"
#include "ring.h"

#include <jansson.h>

/*
 * Builds a config from a request body or an ERRINJ_AT_STARTUP "parameters" value: NULL, JSON
 * null or an object; string values are kept, others stringified as ScyllaDB does (compact
 * JSON). Returns 0 and *out, or ERRINJ_EINVAL with a static reason in *why.
 */
int errinj__config_from_json(const json_t *params, struct errinj__config **out, const char **why);
/* A JSON string for bytes that may not be UTF-8: invalid sequences become U+FFFD. */
json_t *errinj__json_string_lossy(const char *s);
/* The longest `data:` line of an event, its line feed included. */
#define ERRINJ__EVENT_LINE_MAX (64 * 1024)
/* The SSE frame "id: N\ndata: {...}\n\n" of a record, malloc'd; NULL when out of memory. Its data
 * line is at most ERRINJ__EVENT_LINE_MAX bytes: parameters that would make it longer are cut (a
 * value shortened, the pairs after it left out) and the JSON then has "truncated":true. */
char *errinj__record_sse_frame(const struct errinj__record *rec, size_t *len);

#endif /* ERRINJ_JSON_H */
