/*
 * main.c - errinjctl's main(): read the command line (options.c), then run the command on no
 * server (help), on the one node, or on every node given (multi.c).
 *
 * errinjctl switches the injection points of a running errinj server on and off and watches or
 * waits for them to fire. It talks to the server only over HTTP (the REST API and the SSE
 * stream of errinj-events(7)), never through the library, so it works against any process
 * that runs errinj's server, local or remote. Exit statuses: errinjctl.h and errinjctl(1).
 */
#include <curl/curl.h>
#include <stdlib.h>

#include "msgs.h"
#include "multi.h"
#include "options.h"

static int (*const acts[CMD_COUNT])(ctl *ctl) = {
#define XX(name, reach) act_##name,
    ERRINJCTL_COMMANDS(XX)
#undef XX
};

/* Runs the command against the node at `url`. */
static int run_on_node(ctl *ctl, const char *url)
{
    ctl->client.base_url = url;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        complain(ctl, "cannot initialise libcurl");
        return EXIT_SERVER;
    }
    int rc = acts[ctl->command](ctl);
    curl_global_cleanup();
    return rc;
}

/* "list, coverage, ... and wait": the commands that act on several nodes. */
static void append_every_node_commands(strbuf *out)
{
    command_id last = CMD_NONE;
    for (command_id id = 0; id < CMD_COUNT; id++)
        if (command_reach_of(id) == REACH_EVERY_NODE)
            last = id;
    for (command_id id = 0; id < CMD_COUNT; id++) {
        if (command_reach_of(id) != REACH_EVERY_NODE)
            continue;
        if (out->len > 0)
            strbuf_append(out, id == last ? " and " : ", ");
        strbuf_append(out, command_name(id));
    }
}

static int dispatch(ctl *ctl)
{
    switch (command_reach_of(ctl->command)) {
    case REACH_NONE:
        return acts[ctl->command](ctl);
    case REACH_ONE_NODE:
        if (ctl->url_count > 1) {
            strbuf list = {0};
            append_every_node_commands(&list);
            complain(ctl, "takes one --url (%s act on several nodes)", strbuf_str(&list));
            strbuf_free(&list);
            return usage_hint(NULL); /* --url is described in the main help */
        }
        return run_on_node(ctl, ctl->urls[0]);
    case REACH_EVERY_NODE:
        return ctl->url_count > 1 ? multi_run(ctl, run_on_node) : run_on_node(ctl, ctl->urls[0]);
    }
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    ctl ctl;
    int rc = options_parse(&ctl, argc, argv);
    if (rc < 0)
        rc = dispatch(&ctl);
    options_free(&ctl);
    return rc;
}
