/*
 * msgs.c - the messages of errinjctl on standard error (see msgs.h). One function, vcomplain(),
 * writes every line, so the "errinjctl: COMMAND: " prefix and the line end are in one place.
 */
#include "msgs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "errinjctl: [COMMAND: ][what]message\n" on stderr. */
static void vcomplain(const ctl *ctl, const char *what, const char *fmt, va_list ap)
{
    fputs("errinjctl: ", stderr);
    if (ctl && ctl->command != CMD_NONE)
        fprintf(stderr, "%s: ", command_name(ctl->command));
    fputs(what, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void complain(const ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomplain(ctl, "", fmt, ap);
    va_end(ap);
}

void warnf(const ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomplain(ctl, "warning: ", fmt, ap);
    va_end(ap);
}

void notef(const ctl *ctl, const char *fmt, ...)
{
    if (!ctl || !ctl->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vcomplain(ctl, "", fmt, ap);
    va_end(ap);
}

int usage_hint(const ctl *ctl)
{
    if (ctl && ctl->command != CMD_NONE)
        fprintf(stderr, "Try 'errinjctl %s --help'.\n", command_name(ctl->command));
    else
        fputs("Try 'errinjctl --help'.\n", stderr);
    return EXIT_USAGE;
}

int usage_error(const ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomplain(ctl, "", fmt, ap);
    va_end(ap);
    return usage_hint(ctl);
}

void out_of_memory(const ctl *ctl)
{
    complain(ctl, "out of memory");
    exit(EXIT_SERVER);
}

int flush_stdout(const ctl *ctl)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        complain(ctl, "cannot write to standard output: %s", strerror(errno));
        return EXIT_SERVER;
    }
    return 0;
}
