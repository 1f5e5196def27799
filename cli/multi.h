/*
 * multi.h - errinjctl on several nodes at once: --url given more than once.
 *
 * multi_main() owns the options that only make sense across nodes (every --url, --strict,
 * and wait's --all). With one node it hands the command line, those options removed, to the
 * one-node errinjctl. With several it runs the one-node errinjctl once per node, each in a
 * child process of its own, all at the same time, tags every line they print with the node,
 * and combines their exit statuses.
 */
#ifndef ERRINJCTL_MULTI_H
#define ERRINJCTL_MULTI_H

/* The one-node errinjctl: main() without the options above. Returns the exit status. */
typedef int (*multi_single_fn)(int argc, char **argv);

/* main() of errinjctl. Returns the exit status. */
int multi_main(int argc, char **argv, multi_single_fn single);

#endif
