/*
 * registry.h - injection names, their state, and the catalogue of loaded sites.
 *
 * registry.c owns one entry per injection name compiled in or recently enabled, the table that
 * finds it, enable/disable/message, and the catalogue of the sites of loaded modules. To every
 * layer above, an entry is an opaque handle. An entry of a compiled-in point is pinned and lives
 * as long as the process, so a site's `active` pointer needs no reference counting; an entry of
 * a run-time name (no compiled point has it) is forgotten once it is disabled and
 * ERRINJ__KEPT_NAMES newer run-time names were enabled, so whatever keeps one past a read window
 * (readers.h) holds a reference (errinj__entry_ref). Its layout is in entry.h, for the files
 * that fire it (points.c) and count it (coverage.c) only.
 *
 * Lock order: the registry's lock, then an entry's lock. Firing threads only take an entry's.
 */
#ifndef ERRINJ_REGISTRY_H
#define ERRINJ_REGISTRY_H

#include "errinj.h"
#include "params.h"
#include "term.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct errinj__entry;

/* The entry's injection name (NUL-terminated, as long-lived as the entry). */
const char *errinj__entry_name(const struct errinj__entry *e);
/* How many run-time names (names no compiled-in point has) keep their entry, counters and
 * coverage row after they are disabled: the most recently enabled ones. */
#define ERRINJ__KEPT_NAMES 10000

/* Looks a name up without locking; NULL if not known. The entry stays valid while the caller's
 * read window (readers.h) is open, or for good when it is pinned; take a reference to keep it. */
struct errinj__entry *errinj__entry_find(const char *name);
/* errinj__entry_find() with a reference taken (NULL if not known): release it with
 * errinj__entry_unref(). Opens a read window of its own. */
struct errinj__entry *errinj__entry_hold(const char *name);
/* A reference keeps an entry (and its name) allocated after it left the table: a relaxed atomic
 * add on an unpinned entry, nothing on a pinned one. Neither ever frees; e may not be NULL. */
void errinj__entry_ref(struct errinj__entry *e);
/* Drops a reference (NULL is ignored). The entry is freed later, by an enable, never here. */
void errinj__entry_unref(struct errinj__entry *e);
/* Calls fn on every entry with the registry locked (fn must not call back into it; an entry's
 * own lock may be taken). */
void errinj__entries_each(void (*fn)(struct errinj__entry *e, void *arg), void *arg);
/* Number of enabled injections: the fast "nothing enabled" test of run-time-name points. */
extern atomic_int errinj__enabled_count;

/* Lists a site that ran before it was catalogued (saying so when a C site's catalogue entry was
 * lost) and returns its entry if enabled, else NULL. */
struct errinj__entry *errinj__site_adopt(struct errinj_site *site);
/* What a site's `active` holds until it is listed: 1 (C records emitted by asm) or
 * &errinj__unlisted[0] (other C records), &errinj__unlisted[1] (C++ records). Inline: every
 * fire of an enabled point asks. */
static inline bool errinj__site_unlisted(const void *active)
{
    return active == (const void *)1 || active == (const void *)&errinj__unlisted[0] ||
           active == (const void *)&errinj__unlisted[1];
}
/* True when a loaded module has a compiled-in point named name. */
bool errinj__has_site(const char *name);

#endif /* ERRINJ_REGISTRY_H */
