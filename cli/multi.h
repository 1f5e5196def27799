/*
 * multi.h - errinjctl on several nodes at once: --url given more than once.
 *
 * multi_run() runs the command once per node, each in a child process of its own, all at the
 * same time, tags every line they print with the node, and combines their exit statuses as
 * errinjctl(1) says under MANY NODES (--strict, and wait's --all).
 */
#ifndef ERRINJCTL_MULTI_H
#define ERRINJCTL_MULTI_H

#include "errinjctl.h"

/* Runs ctl's command against the node at `url`; returns its exit status. */
typedef int (*multi_node_fn)(ctl *ctl, const char *url);

/* Runs run_node once per URL of ctl, each in a child process; returns the combined status. */
int multi_run(ctl *ctl, multi_node_fn run_node);

#endif
