/*
 * options.h - errinjctl's command line, read with getopt_long into a ctl.
 *
 * `errinjctl [GLOBAL OPTIONS] COMMAND [ARGS]`: the global options (--url, --token, -v,
 * --strict, -h, --version) come before the command name, and all but --version may come
 * after it too; a command's own options may come before, between and after its arguments,
 * and "--" ends them. Values go as "--name VALUE", "--name=VALUE", "-x VALUE" or "-xVALUE".
 * Long options are spelled out in full and short options stand one to an argument: an
 * abbreviation ("--cou") or a group ("-qv") is an unknown option, so that an option added
 * later can never change what an existing command line means.
 */
#ifndef ERRINJCTL_OPTIONS_H
#define ERRINJCTL_OPTIONS_H

#include "errinjctl.h"

/*
 * Sets ctl up from the environment ($ERRINJ_URL, $ERRINJ_TOKEN) and argv. Returns -1 when the
 * command is ready to run (ctl->command; --help and -h make it `help` with ctl->topic set), or
 * the exit status when there is nothing to run: 0 after --version, EXIT_USAGE after a usage
 * error it reported. Pair with options_free(), whatever it returned.
 */
int options_parse(ctl *ctl, int argc, char **argv);

/* Releases what options_parse() allocated in ctl. */
void options_free(ctl *ctl);

#endif
