/*
 * msgs.h - everything errinjctl says on standard error goes through these functions, so that
 * every line has the same shape: "errinjctl: COMMAND: message" (without "COMMAND: " before the
 * command is known), as curl's tool_msgs.c does behind warnf() and errorf().
 */
#ifndef ERRINJCTL_MSGS_H
#define ERRINJCTL_MSGS_H

#include "errinjctl.h"

#define MSGS_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* An error or a report the user must see. `ctl` may be NULL. */
void complain(const ctl *ctl, const char *fmt, ...) MSGS_PRINTF(2, 3);

/* A warning: "errinjctl: COMMAND: warning: message". */
void warnf(const ctl *ctl, const char *fmt, ...) MSGS_PRINTF(2, 3);

/* A note for -v only: nothing unless ctl->verbose. */
void notef(const ctl *ctl, const char *fmt, ...) MSGS_PRINTF(2, 3);

/* A usage error, followed by "Try 'errinjctl COMMAND --help'."; returns EXIT_USAGE. */
int usage_error(const ctl *ctl, const char *fmt, ...) MSGS_PRINTF(2, 3);

/* "Try 'errinjctl COMMAND --help'." (with ctl NULL or before the command: 'errinjctl --help');
 * returns EXIT_USAGE. */
int usage_hint(const ctl *ctl);

/* "out of memory", then exit 3: errinjctl is a short-lived command, and an allocation that
 * fails ends it rather than threading an error through every caller. */
void out_of_memory(const ctl *ctl) __attribute__((noreturn));

/* Flushes stdout; says so and returns EXIT_SERVER when it could not be written, else 0. */
int flush_stdout(const ctl *ctl);

#endif
