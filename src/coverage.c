/*
 * coverage.c - coverage of injection points: armed, evaluated, fired, since the last reset.
 *
 * The counters live in the registry's entries: an enable counts itself as armed and folds the
 * evaluations of the arm it replaces and the enters of the enable it ends into running
 * totals, so that firing threads keep touching only the counters they touched before. A
 * reading is the totals plus what the current config and enable counted, minus what the
 * last reset saw; a reset records exactly that, under the entry's mutex, without touching
 * anything a firing thread reads.
 */
#include "coverage.h"

#include "entry.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The coverage counters of e now; e->mu held. */
static void counts_locked(struct errinj__entry *e, struct errinj__coverage_row *row)
{
    uint64_t evals = e->cov_evals_done + errinj__arm_evaluations(atomic_load(&e->arm));
    uint64_t enters = e->cov_enters_done + atomic_load(&e->enters);
    row->enabled = atomic_load(&e->enabled);
    row->armed = e->cov_armed;
    row->evaluations = evals - e->cov_evals_base;
    row->enters = enters - e->cov_enters_base;
}

static void reset_entry(struct errinj__entry *e, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&e->mu);
    e->cov_armed = 0;
    e->cov_evals_base = e->cov_evals_done + errinj__arm_evaluations(atomic_load(&e->arm));
    e->cov_enters_base = e->cov_enters_done + atomic_load(&e->enters);
    pthread_mutex_unlock(&e->mu);
}

void errinj__coverage_reset(void)
{
    errinj__entries_each(reset_entry, NULL);
}

struct rows {
    struct errinj__coverage_row *row;
    size_t count, cap;
    bool failed;
    struct errinj__entry **held; /* the entries of the rows, referenced so their names stay */
    size_t held_count, held_cap;
};

/* Keeps e (and so its name) until the rows are read; false when out of memory. */
static bool hold(struct rows *rows, struct errinj__entry *e)
{
    if (rows->held_count == rows->held_cap) {
        size_t cap = rows->held_cap ? 2 * rows->held_cap : 64;
        struct errinj__entry **grown = realloc(rows->held, cap * sizeof(*grown));
        if (grown == NULL) {
            rows->failed = true;
            return false;
        }
        rows->held = grown;
        rows->held_cap = cap;
    }
    errinj__entry_ref(e);
    rows->held[rows->held_count++] = e;
    return true;
}

static struct errinj__coverage_row *row_add(struct rows *rows)
{
    if (rows->count == rows->cap) {
        size_t cap = rows->cap ? 2 * rows->cap : 64;
        struct errinj__coverage_row *grown = realloc(rows->row, cap * sizeof(*grown));
        if (grown == NULL) {
            rows->failed = true;
            return NULL;
        }
        rows->row = grown;
        rows->cap = cap;
    }
    return &rows->row[rows->count++];
}

/* One row per site of e, or one for the name when it has none and was armed since the reset.
 * A reference keeps a run-time name's entry; the sites' interned files outlive the listing. */
static void collect(struct errinj__entry *e, void *arg)
{
    struct rows *rows = arg;
    struct errinj__coverage_row counts = {0};
    pthread_mutex_lock(&e->mu);
    counts_locked(e, &counts);
    if (e->sites == NULL) {
        struct errinj__coverage_row *r = counts.armed > 0 && hold(rows, e) ? row_add(rows) : NULL;
        if (r != NULL) {
            *r = counts;
            r->name = e->name;
        }
    }
    for (struct errinj_site *s = e->sites; s != NULL; s = s->next_same_name) {
        struct errinj__coverage_row *r = row_add(rows);
        if (r == NULL)
            break;
        *r = counts;
        r->name = e->name;
        r->type = errinj_type_name((errinj_type)s->type);
        r->file = s->file;
        r->line = s->line;
    }
    pthread_mutex_unlock(&e->mu);
}

static int compare_rows(const void *a, const void *b)
{
    const struct errinj__coverage_row *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0 && (x->file == NULL) != (y->file == NULL))
        c = x->file == NULL ? 1 : -1;
    if (c == 0 && x->file != NULL)
        c = strcmp(x->file, y->file);
    if (c == 0)
        c = (x->line > y->line) - (x->line < y->line);
    return c;
}

void errinj__coverage_each(void (*fn)(const struct errinj__coverage_row *row, void *arg), void *arg)
{
    struct rows rows = {0};
    errinj__entries_each(collect, &rows);
    if (rows.failed)
        errinj__log("errinj: out of memory listing coverage; the list is incomplete");
    if (rows.count > 0)
        qsort(rows.row, rows.count, sizeof(*rows.row), compare_rows);
    for (size_t i = 0; i < rows.count; i++)
        fn(&rows.row[i], arg);
    for (size_t i = 0; i < rows.held_count; i++)
        errinj__entry_unref(rows.held[i]);
    free(rows.held);
    free(rows.row);
}
