/*
 * points.h - the firing side: what happens when an enabled point fires.
 *
 * points.c owns the out-of-line halves of the point macros (errinj__fire_*, declared in
 * errinj.h because the macros call them), the run-time-name points (errinj_inject_*), the
 * actions, and the handlers' waits for messages. Declared here are the two entries the libc
 * preload uses besides the macros' own.
 */
#ifndef ERRINJ_POINTS_H
#define ERRINJ_POINTS_H

#include "errinj.h"
#include "params.h"

/*
 * The exception fire of a site whose events carry `detail` (a JSON object's text, copied): what
 * the libc wrappers of liberrinj-preload.so call after matching their parameters. Returns as
 * errinj__fire_exception() does.
 */
ERRINJ__COLD int errinj__fire_exception_detail(struct errinj_site *site, int err, const char *detail);
/* A reference to the parameters of the injection enabled at site (unref it), or NULL when it is
 * not enabled. Lock-free. */
struct errinj__config *errinj__site_config(struct errinj_site *site);

#endif /* ERRINJ_POINTS_H */
