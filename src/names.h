/*
 * names.h - the names of things, each written once: error codes, point types, event phases, and
 * the rule for an injection's name.
 *
 * names.c owns the tables built from the X-macro lists: ERRINJ_ERRNO_MAP and ERRINJ_TYPE_MAP in
 * errinj.h (public: the codes and types are API) and ERRINJ__PHASE_MAP here. Adding a type or a
 * phase touches its one list; the enum, the names and the parsers all follow from it. The
 * fault terms' actions have their list beside their grammar (ERRINJ__ACTION_MAP, term.h).
 */
#ifndef ERRINJ_NAMES_H
#define ERRINJ_NAMES_H

#include "errinj.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest injection name, in bytes. */
#define ERRINJ__NAME_MAX 255

/* Checks the rules for a name: 1 to ERRINJ__NAME_MAX bytes of UTF-8 without control characters. */
bool errinj__name_valid(const char *name, size_t len);
/* The same for a NUL-terminated name (NULL is not valid). */
bool errinj__name_ok(const char *name);

/* The one list of event phases: XX(NAME, "name"). Add new phases last. */
#define ERRINJ__PHASE_MAP(XX)                                                                  \
    XX(HIT, "hit")                                                                             \
    XX(WAITING, "waiting")                                                                     \
    XX(RELEASED, "released")                                                                   \
    XX(TIMEOUT, "timeout")

enum errinj__phase {
#define ERRINJ__PHASE_ENUM(name, text) ERRINJ__PHASE_##name,
    ERRINJ__PHASE_MAP(ERRINJ__PHASE_ENUM)
#undef ERRINJ__PHASE_ENUM
    ERRINJ__PHASE_COUNT
};

/* "hit", "waiting", ...; "unknown" outside the enum. */
const char *errinj__phase_name(enum errinj__phase phase);
/* The phase named by the len bytes at text: true and *out, or false for no phase of that name. */
bool errinj__phase_parse(const char *text, size_t len, enum errinj__phase *out);

/* The number of point types, and the type named by the len bytes at text (true and *out). */
#define ERRINJ__TYPE_COUNT (0 ERRINJ_TYPE_MAP(ERRINJ__TYPE_PLUS_ONE))
#define ERRINJ__TYPE_PLUS_ONE(name, text) +1
bool errinj__type_parse(const char *text, size_t len, errinj_type *out);

#endif /* ERRINJ_NAMES_H */
