/*
 * coverage.h - which points tests armed and reached: GET and DELETE /v2/error_injection/coverage.
 *
 * coverage.c owns the reading and the reset of the per-name coverage counters that the
 * registry keeps in each entry (times armed, evaluations and enters, counted across enables
 * since the last reset). Rows come one per compiled-in point, then one per name armed since the
 * reset that no compiled point has.
 */
#ifndef ERRINJ_COVERAGE_H
#define ERRINJ_COVERAGE_H

#include <stdbool.h>
#include <stdint.h>

struct errinj__coverage_row {
    const char *name;
    const char *type; /* NULL for a name no compiled point has */
    const char *file; /* NULL likewise */
    int line;         /* 0 likewise */
    bool enabled;
    uint64_t armed;       /* enables since the last reset */
    uint64_t evaluations; /* times a thread reached the point while enabled */
    uint64_t enters;      /* times it fired */
};

/* Calls fn for every row, sorted by name (then file and line), with no lock held. */
void errinj__coverage_each(void (*fn)(const struct errinj__coverage_row *row, void *arg), void *arg);
/* Starts every counter from zero again; names no compiled point has leave the list until armed. */
void errinj__coverage_reset(void);

#endif /* ERRINJ_COVERAGE_H */
