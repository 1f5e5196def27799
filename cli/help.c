/*
 * help.c - the help of errinjctl: the list of commands (`errinjctl --help`) and each command's
 * own help (`errinjctl COMMAND --help`, `errinjctl help COMMAND`), written here once.
 *
 * errinjctl(1) describes the same commands and options at length; a test checks that it names
 * every option these texts name.
 */
#include <stdio.h>
#include <string.h>

#include "errinjctl.h"

typedef struct command_help {
    const char *synopsis; /* the arguments after the name */
    const char *summary;  /* one line for the list of commands */
    const char *text;     /* what it does and its options */
} command_help;

static const command_help helps[CMD_COUNT] = {
    [CMD_list] = {"", "print the enabled injections, one per line",
     "Prints the names of the enabled injections, one per line.\n"},
    [CMD_coverage] = {"[--json]", "print which points were armed, reached and fired",
     "Prints, for every point compiled into the server and every name armed since the\n"
     "counters were reset, POINT, LOCATION (file:line, '-' for a name no point has),\n"
     "ARMED (times enabled), REACHED (times a thread got to it while enabled) and FIRED\n"
     "(times it fired), counted across enables since the server started or its coverage\n"
     "was reset (DELETE /v2/error_injection/coverage).\n"
     "\n"
     "Options:\n"
     "  --json                print the server's JSON array instead\n"},
    [CMD_points] = {"", "print the catalogue of points as a table",
     "Prints every point compiled into the server, enabled or not, sorted by name:\n"
     "NAME, TYPE, LOCATION (file:line), ENABLED, ENTERS (fires since enabled) and\n"
     "WAITERS (threads parked in a handler).\n"},
    [CMD_enable] = {"NAME [--one-shot] [--term T] [--seed S] [-p KEY=VALUE]...", "enable an injection",
     "Enables the injection NAME. Enabling an enabled injection replaces its parameters,\n"
     "one-shot setting and term and keeps its counters.\n"
     "\n"
     "Options:\n"
     "  --one-shot          fire once in the whole process, then disable itself\n"
     "  --term T            when and how often it fires: steps [PCT%][COUNT*]action[(ARG)]\n"
     "                      joined by ->, actions on, off, return(V), sleep(MS), pause, abort\n"
     "                      (for example '2*off->1*on' or '1%return(-5)'); not with --one-shot\n"
     "  --seed S            seed of the term's PCT draws (unsigned 64-bit; default the\n"
     "                      server's process seed): one seed, one pattern of decisions\n"
     "  -p, --param KEY=VALUE\n"
     "                      a parameter for the point (repeatable; VALUE may be empty)\n"},
    [CMD_disable] = {"NAME | --all", "disable one injection, or all",
     "Disables the injection NAME (not an error when it is not enabled), or with --all\n"
     "every injection. Threads parked in a handler's wait for message are released.\n"
     "\n"
     "Options:\n"
     "  -a, --all           disable every injection\n"},
    [CMD_message] = {"NAME", "send a message to NAME's handlers",
     "Sends a message to the injection NAME: every handler waiting for one now is\n"
     "released, and a handler that waits later still counts it. Ignored when NAME is\n"
     "not enabled.\n"},
    [CMD_enters] = {"NAME", "print how often NAME fired since enabled",
     "Prints, as a bare integer, how many times NAME fired since it was last enabled.\n"},
    [CMD_waiters] = {"NAME", "print how many threads wait in NAME",
     "Prints, as a bare integer, how many threads are parked in NAME's wait for message.\n"},
    [CMD_get] = {"NAME", "print NAME's state as JSON",
     "Prints the server's JSON for NAME: whether it is enabled, one-shot, its parameters.\n"},
    [CMD_events] = {"[--injection NAME]... [--type T] [--since SEQ] [--json]", "print events as points fire",
     "Prints one line per event as points fire, until interrupted:\n"
     "  SEQ DATE TIME.MICROSECONDS shard=N TYPE PHASE NAME FILE:LINE [KEY=VALUE]...\n"
     "(FILE:LINE is '-' for points named at run time; values with spaces are quoted).\n"
     "Dropped events (the client fell behind) are reported on stderr and the stream goes\n"
     "on. Exits 3 when the server cannot be reached or goes away.\n"
     "\n"
     "Options:\n"
     "  -i, --injection NAME  only events of NAME (repeatable)\n"
     "  --type T              only points of type T: sleep, exception, lambda, handler,\n"
     "                        enter (repeatable)\n"
     "  --phase P             only phase P: hit (the default), waiting, released,\n"
     "                        timeout, or all (repeatable)\n"
     "  --shard N             only events fired on shard N\n"
     "  --since SEQ           first replay the kept events after SEQ\n"
     "  --json                print each event's JSON as it came, one per line\n"},
    [CMD_wait] = {"NAME [--count N] [--timeout SECONDS] [--since SEQ]", "wait until NAME fires",
     "Waits until NAME fires (N times) and prints the matching events as 'events' does.\n"
     "Exits 0 as soon as the Nth hit arrives, 1 when the timeout passes first, 3 when\n"
     "the server cannot be reached or goes away. The server waits: the hits since NAME\n"
     "was last enabled count, so a hit between 'enable' and 'wait' is not missed.\n"
     "With --since, the event stream is read instead and the kept events after that\n"
     "seq count.\n"
     "\n"
     "Options:\n"
     "  -n, --count N         wait for N hits (default 1)\n"
     "  -t, --timeout SECONDS give up after SECONDS, fractions allowed (default 30;\n"
     "                        0 waits without limit)\n"
     "  --since SEQ           count the kept events after SEQ (read the stream)\n"
     "  --phase P             count events of phase P instead of hit (waiting,\n"
     "                        released, timeout, or all)\n"
     "  --json                print the events' JSON instead of readable lines\n"
     "  -q, --quiet           print nothing on stdout\n"
     "  --all                 with several --url: until every node saw them (without\n"
     "                        it, until one node did)\n"},
    [CMD_status] = {"", "print the server's status JSON",
     "Prints the server's status: version, the last event seq, subscribers, dropped\n"
     "events and shards.\n"},
    [CMD_help] = {"[COMMAND]", "print this help, or a command's", "Prints help.\n"},
};

static const char main_help[] =
    "Usage: errinjctl [--url URL] [--token TOKEN] [-v] COMMAND [ARGS]\n"
    "\n"
    "Switches the error-injection points of a server built with errinj on and off, and\n"
    "watches or waits for them to fire, over the server's REST API and event stream.\n"
    "\n"
    "Commands:\n";

static const char main_help_tail[] =
    "\n"
    "Options:\n"
    "  --url URL       the server (default: $ERRINJ_URL, else " DEFAULT_URL ");\n"
    "                  repeat it to act on several nodes: events, wait, list,\n"
    "                  coverage, enable, disable and message; lines are tagged\n"
    "                  [NODE] (or {\"node\":NODE,...} for JSON)\n"
    "  --strict        with several nodes: any node failing is exit status 3\n"
    "                  (otherwise only when every node failed)\n"
    "  --token TOKEN   sent as 'Authorization: Bearer TOKEN' (default: $ERRINJ_TOKEN)\n"
    "  -v, --verbose   report the stream's connection and heartbeats on stderr\n"
    "  -h, --help      print this help (after a command: that command's help)\n"
    "  --version       print the version\n"
    "\n"
    "Exit status: 0 success (wait: seen), 1 wait timed out, 2 usage error,\n"
    "3 server unreachable, server error or broken event stream.\n"
    "\n"
    "Run 'errinjctl COMMAND --help' for a command's options.\n";

static void print_main_help(void)
{
    fputs(main_help, stdout);
    for (command_id id = 0; id < CMD_COUNT; id++) {
        char head[128];
        snprintf(head, sizeof(head), "%s %s", command_name(id), helps[id].synopsis);
        if (strlen(head) <= 26)
            printf("  %-26s %s\n", head, helps[id].summary);
        else
            printf("  %s\n  %-26s %s\n", head, "", helps[id].summary);
    }
    fputs(main_help_tail, stdout);
}

static void print_command_help(command_id id)
{
    printf("Usage: errinjctl [GLOBAL OPTIONS] %s %s\n\n%s", command_name(id), helps[id].synopsis,
           helps[id].text);
    printf("\nGlobal options (--url, --token, -v) are described by 'errinjctl --help'.\n");
}

int act_help(ctl *ctl)
{
    if (ctl->topic == CMD_NONE)
        print_main_help();
    else
        print_command_help(ctl->topic);
    return EXIT_SEEN_OR_OK;
}
