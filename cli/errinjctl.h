/*
 * errinjctl.h - what the parts of errinjctl share: the exit statuses, the list of commands,
 * and the ctl record that the option parser fills and the commands read.
 *
 * The tool is split by concern, as curl's src/ is: main.c parses and dispatches, options.c
 * turns the command line into a ctl (getopt_long), msgs.c is the one way to say something on
 * stderr, help.c holds the help texts, rest.c the commands that are one REST exchange,
 * events.c the commands that read events, and multi.c runs a command on several nodes. The
 * commands talk to the server only through api.c (paths, checked answers), http.c (libcurl)
 * and sse.c (the stream parser); strbuf.c builds their strings.
 *
 * Every command is parsed completely before anything is sent, so a usage error never leaves
 * one node changed and another not.
 */
#ifndef ERRINJCTL_H
#define ERRINJCTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "strbuf.h"

/* The exit statuses of errinjctl(1). */
enum {
    EXIT_SEEN_OR_OK = 0, /* success; for wait: the events arrived */
    EXIT_TIMED_OUT = 1,  /* wait: the timeout passed first */
    EXIT_USAGE = 2,      /* an unknown command or option, a missing or bad argument */
    EXIT_SERVER = 3,     /* unreachable, an error answer, a broken stream, or stdout failed */
};

#define DEFAULT_URL "http://127.0.0.1:10000"
#define API "/v2/error_injection"
#define DEFAULT_WAIT_TIMEOUT_S 30.0

/* Where a command runs: on no server, on the one --url, or on every --url given. */
typedef enum command_reach {
    REACH_NONE,
    REACH_ONE_NODE,
    REACH_EVERY_NODE,
} command_reach;

/*
 * The commands, in the order `errinjctl --help` lists them: XX(name, reach). Adding a command
 * adds a line here, its options in options.c, its help in help.c and its act_NAME() function.
 */
#define ERRINJCTL_COMMANDS(XX)           \
    XX(list, REACH_EVERY_NODE)           \
    XX(coverage, REACH_EVERY_NODE)       \
    XX(points, REACH_ONE_NODE)           \
    XX(enable, REACH_EVERY_NODE)         \
    XX(disable, REACH_EVERY_NODE)        \
    XX(message, REACH_EVERY_NODE)        \
    XX(enters, REACH_ONE_NODE)           \
    XX(waiters, REACH_ONE_NODE)          \
    XX(get, REACH_ONE_NODE)              \
    XX(events, REACH_EVERY_NODE)         \
    XX(wait, REACH_EVERY_NODE)           \
    XX(status, REACH_ONE_NODE)           \
    XX(help, REACH_NONE)

typedef enum command_id {
#define XX(name, reach) CMD_##name,
    ERRINJCTL_COMMANDS(XX)
#undef XX
    CMD_COUNT,
    CMD_NONE = CMD_COUNT, /* no command named yet */
} command_id;

/*
 * One run of errinjctl: the global options, the command and its arguments. options_parse()
 * fills it; the command's act function reads it, once per node. Strings point into argv
 * unless said otherwise.
 */
typedef struct ctl {
    /* Global options. */
    http_client client; /* base_url: the node being talked to now (one of urls) */
    char **urls;        /* every --url (owned copies, trailing '/' removed), or the default */
    size_t url_count;
    int url_given; /* --url was given (else urls holds $ERRINJ_URL or DEFAULT_URL) */
    int verbose;
    int strict;             /* several nodes: any node failing is exit 3 */
    command_id command;     /* CMD_NONE until the command name is read */
    const char *name;       /* NAME, for the commands that take one */
    int json;               /* coverage, events, wait: print JSON */

    /* enable */
    int one_shot;
    const char *term;
    const char *seed;
    json_t *params; /* the -p KEY=VALUE pairs (owned) */

    /* disable */
    int all_injections; /* --all */

    /* events: the query of the stream, filters in the order given ("?injection=a&type=sleep") */
    strbuf events_query;

    /* wait */
    uint64_t count;
    double timeout; /* seconds, 0 for none */
    const char *since;
    const char *phase;
    int quiet;
    int all_nodes; /* --all: until every node saw the events */

    /* help */
    command_id topic; /* CMD_NONE: the list of commands */
} ctl;

/* A command's name, e.g. "enable"; "" for CMD_NONE. */
static inline const char *command_name(command_id id)
{
    static const char *const names[CMD_COUNT] = {
#define XX(name, reach) #name,
        ERRINJCTL_COMMANDS(XX)
#undef XX
    };
    return id < CMD_COUNT ? names[id] : "";
}

/* The command called `name`, or CMD_NONE. */
static inline command_id command_find(const char *name)
{
    for (command_id id = 0; id < CMD_COUNT; id++)
        if (strcmp(command_name(id), name) == 0)
            return id;
    return CMD_NONE;
}

/* Where command `id` runs. */
static inline command_reach command_reach_of(command_id id)
{
    static const command_reach reaches[CMD_COUNT] = {
#define XX(name, reach) reach,
        ERRINJCTL_COMMANDS(XX)
#undef XX
    };
    return id < CMD_COUNT ? reaches[id] : REACH_NONE;
}

/* The acts of the commands: each runs its command once against ctl->client, and returns its
 * exit status. */
#define XX(name, reach) int act_##name(ctl *ctl);
ERRINJCTL_COMMANDS(XX)
#undef XX

#endif
