/*
 * hooks.h - what a layer built on the library (liberrinj-preload.so) plugs into it.
 *
 * Two hooks, both registered once at start-up and read without a lock afterwards:
 * - a parameter validator for the names with a given prefix ("libc."), run by every enable
 *   before anything changes, so a bad parameter is ERRINJ_EINVAL with a message (400 over HTTP)
 *   and the injection stays as it was;
 * - a function each thread the library creates (the server thread) runs first, so the preload
 *   can mark that thread as its own and let its calls pass its wrappers unfaulted.
 * These symbols are exported from liberrinj.so for the preload only; they are not API.
 */
#ifndef ERRINJ_HOOKS_H
#define ERRINJ_HOOKS_H

#include <stddef.h>

/* Checks `params` (key, value, ..., NULL) for injection `name`. Returns 0, or ERRINJ_EINVAL with
 * a NUL-terminated reason written to msg (len bytes). Must not enable, disable or fire. */
typedef int (*errinj__validate_fn)(const char *name, const char *const *params, char *msg, size_t len);

/* Registers fn for names starting with prefix (a static string). At most 8 prefixes.
 * Returns 0, ERRINJ_EINVAL or ERRINJ_ENOMEM (table full). */
int errinj__hook_validator(const char *prefix, errinj__validate_fn fn);

/* Runs the validator of name's prefix, if any: 0, or ERRINJ_EINVAL and the reason kept for this
 * thread (errinj__hook_message()). */
int errinj__hook_validate(const char *name, const char *const *params);

/* The reason of this thread's last failed validation, or "" if the last one passed. */
const char *errinj__hook_message(void);

/* Sets the function each library thread calls first (NULL: none). */
void errinj__hook_thread_start(void (*fn)(void));

/* Called by each thread the library creates, first thing. */
void errinj__hook_run_thread_start(void);

#endif /* ERRINJ_HOOKS_H */
