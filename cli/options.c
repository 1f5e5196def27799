/*
 * options.c - errinjctl's command line (see options.h): getopt_long over the global options,
 * then over the command's own options plus the global ones again.
 *
 * Each command's options are a getopt_long table below; apply_option() gives every option its
 * meaning and checks its value at once, so the first mistake on the line is the one reported.
 * The arguments are read in order ("-" mode of getopt: a non-option comes back as 1), which
 * also keeps POSIXLY_CORRECT from changing what a line means. getopt_long accepts
 * abbreviations and grouped short options; next_option() refuses both, since the accepted
 * command lines are those of errinjctl(1) and no others.
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgs.h"

/* Values of the long options without a short form (after every char). */
enum {
    OPT_URL = 256,
    OPT_TOKEN,
    OPT_STRICT,
    OPT_VERSION,
    OPT_JSON,
    OPT_ONE_SHOT,
    OPT_TERM,
    OPT_SEED,
    OPT_TYPE,
    OPT_PHASE,
    OPT_SHARD,
    OPT_SINCE,
    OPT_ALL_NODES,
};

/* The options of every command (and, with --version, of errinjctl before its command). */
static const struct option global_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"verbose", no_argument, NULL, 'v'},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
#define GLOBAL_SHORT "hv"

static const struct option version_option[] = {
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const struct option no_options[] = {{NULL, 0, NULL, 0}};

static const struct option json_option[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0},
};

static const struct option enable_options[] = {
    {"one-shot", no_argument, NULL, OPT_ONE_SHOT},
    {"term", required_argument, NULL, OPT_TERM},
    {"seed", required_argument, NULL, OPT_SEED},
    {"param", required_argument, NULL, 'p'},
    {NULL, 0, NULL, 0},
};

static const struct option disable_options[] = {
    {"all", no_argument, NULL, 'a'},
    {NULL, 0, NULL, 0},
};

static const struct option events_options[] = {
    {"injection", required_argument, NULL, 'i'},
    {"type", required_argument, NULL, OPT_TYPE},
    {"phase", required_argument, NULL, OPT_PHASE},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"since", required_argument, NULL, OPT_SINCE},
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0},
};

static const struct option wait_options[] = {
    {"count", required_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 't'},
    {"since", required_argument, NULL, OPT_SINCE},
    {"phase", required_argument, NULL, OPT_PHASE},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"all", no_argument, NULL, OPT_ALL_NODES},
    {NULL, 0, NULL, 0},
};

/* What a command takes besides options. */
typedef enum arguments {
    ARGS_NONE,
    ARGS_NAME,        /* exactly one NAME */
    ARGS_NAME_OR_ALL, /* one NAME, or --all instead (disable) */
    ARGS_TOPIC,       /* at most one COMMAND (help) */
} arguments;

typedef struct syntax {
    const char *short_options; /* getopt's letters, as "p:" */
    const struct option *options;
    arguments arguments;
} syntax;

static const syntax syntaxes[CMD_COUNT] = {
    [CMD_list] = {"", no_options, ARGS_NONE},
    [CMD_coverage] = {"", json_option, ARGS_NONE},
    [CMD_points] = {"", no_options, ARGS_NONE},
    [CMD_enable] = {"p:", enable_options, ARGS_NAME},
    [CMD_disable] = {"a", disable_options, ARGS_NAME_OR_ALL},
    [CMD_message] = {"", no_options, ARGS_NAME},
    [CMD_enters] = {"", no_options, ARGS_NAME},
    [CMD_waiters] = {"", no_options, ARGS_NAME},
    [CMD_get] = {"", no_options, ARGS_NAME},
    [CMD_events] = {"i:", events_options, ARGS_NONE},
    [CMD_wait] = {"n:t:q", wait_options, ARGS_NAME},
    [CMD_status] = {"", no_options, ARGS_NONE},
    [CMD_help] = {"", no_options, ARGS_TOPIC},
};

/* One pass of getopt_long over a stretch of argv with one merged table of options. */
typedef struct parser {
    ctl *ctl;
    int argc;
    char **argv;
    char short_options[32];
    struct option options[24];
    int in_order;      /* non-options come back as positional arguments (else: the pass ends) */
    int rest;          /* after "--": the next argument, all of them positional; 0 before */
    const char *value; /* the option's value, or the positional argument */
} parser;

/* Positional argument, the end of the arguments, or a usage error already reported. */
enum { NEXT_POSITIONAL = -10, NEXT_END = -11, NEXT_ERROR = -12 };

static void parser_add(parser *p, const struct option *options)
{
    size_t n = 0;
    while (p->options[n].name)
        n++;
    for (; options->name; options++) {
        if (n + 1 >= sizeof(p->options) / sizeof(p->options[0]))
            abort(); /* the tables above outgrew the parser: a programming error */
        p->options[n++] = *options;
    }
    p->options[n] = (struct option){NULL, 0, NULL, 0};
}

/* mode: "+" (stop at the first non-option) or "-" (return non-options in order). */
static void parser_init(parser *p, ctl *ctl, int argc, char **argv, const char *mode,
                        const char *short_options)
{
    memset(p, 0, sizeof(*p));
    p->ctl = ctl;
    p->argc = argc;
    p->argv = argv;
    p->in_order = mode[0] == '-';
    /* ':' first: a missing value comes back as ':', and getopt prints nothing itself. */
    snprintf(p->short_options, sizeof(p->short_options), "%s:%s%s", mode, GLOBAL_SHORT, short_options);
    parser_add(p, global_options);
    optind = 0; /* glibc: start afresh, on this argv */
    opterr = 0;
}

/* Whether "--NAME" or "--NAME=VALUE" names one of the options exactly. */
static int is_exact_long(const parser *p, const char *arg)
{
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    for (const struct option *o = p->options; o->name; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return 1;
    return 0;
}

static int takes_value(const parser *p, int c)
{
    /* Past the mode letter and the ':' that parser_init() put first. */
    const char *at = c > 0 && c < 256 ? strchr(p->short_options + 2, c) : NULL;
    return at && at[1] == ':';
}

/*
 * The next option (its value in p->value), NEXT_POSITIONAL (the argument in p->value),
 * NEXT_END, or NEXT_ERROR after reporting a usage error.
 */
static int next_option(parser *p)
{
    if (p->rest > 0) {
        if (p->rest >= p->argc)
            return NEXT_END;
        p->value = p->argv[p->rest++];
        return NEXT_POSITIONAL;
    }
    /* getopt reads the argument at optind (1 on the first call) and moves optind past it, and
     * past its value when that is the next argument; in this mode it never reorders argv. */
    int at = optind > 0 ? optind : 1;
    int c = getopt_long(p->argc, p->argv, p->short_options, p->options, NULL);
    p->value = optarg;
    if (c == -1) {
        if (!p->in_order)
            return NEXT_END;
        p->rest = optind; /* "--" was read, or every argument */
        return next_option(p);
    }
    if (c == 1)
        return NEXT_POSITIONAL;

    const char *arg = p->argv[at];
    int is_long = arg[0] == '-' && arg[1] == '-';
    if ((is_long && !is_exact_long(p, arg)) || (c == '?' && !(is_long && optopt)) ||
        (!is_long && c != ':' && c != '?' && !takes_value(p, c) && arg[2] != '\0')) {
        usage_error(p->ctl, "unknown option '%s'", arg);
        return NEXT_ERROR;
    }
    if (c == '?') {
        usage_error(p->ctl, "option %.*s takes no value", (int)strcspn(arg, "="), arg);
        return NEXT_ERROR;
    }
    if (c == ':') {
        usage_error(p->ctl, "option %s needs a value", arg);
        return NEXT_ERROR;
    }
    return c;
}

/* --url: the first one given replaces the default; trailing slashes are dropped. */
static int add_url(ctl *ctl, const char *url, int given)
{
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len == 0)
        return usage_error(ctl, "the server URL is empty");
    if (given && !ctl->url_given) {
        for (size_t i = 0; i < ctl->url_count; i++)
            free(ctl->urls[i]);
        ctl->url_count = 0;
        ctl->url_given = 1;
    }
    char **urls = realloc(ctl->urls, (ctl->url_count + 1) * sizeof(*urls));
    char *copy = strndup(url, len);
    if (!urls || !copy)
        out_of_memory(ctl);
    ctl->urls = urls;
    ctl->urls[ctl->url_count++] = copy;
    return 0;
}

/* --token: "" for none; control characters would break the header. */
static int set_token(ctl *ctl, const char *token)
{
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return usage_error(ctl, "the token holds a control character");
    ctl->client.token = *token ? token : NULL;
    return 0;
}

/* Parses a non-negative decimal integer that fits uint64_t; returns 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* Parses SECONDS: a finite number, 0 or more, fractions allowed. */
static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* -p KEY=VALUE: KEY not empty, the first '=' splits, both UTF-8; a KEY again keeps its last VALUE. */
static int add_param(ctl *ctl, const char *pair)
{
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair)
        return usage_error(ctl, "bad parameter '%s': expected KEY=VALUE", pair);
    char *key = strndup(pair, (size_t)(eq - pair));
    json_t *value = json_string(eq + 1);
    /* json_object_set_new() takes the value even when it fails (bad UTF-8 key). */
    int bad = !key || !value || json_object_set_new(ctl->params, key, value) != 0;
    free(key);
    return bad ? usage_error(ctl, "bad parameter '%s': not valid UTF-8", pair) : 0;
}

/* Gives option c (value v) its meaning for the command; returns 0 or a reported EXIT_USAGE. */
static int apply_option(ctl *ctl, int c, const char *v)
{
    uint64_t number;
    switch (c) {
    case OPT_URL:
        return add_url(ctl, v, 1);
    case OPT_TOKEN:
        return set_token(ctl, v);
    case 'v':
        ctl->verbose = 1;
        return 0;
    case OPT_STRICT:
        ctl->strict = 1;
        return 0;
    case OPT_JSON:
        ctl->json = 1;
        return 0;
    case OPT_ONE_SHOT:
        ctl->one_shot = 1;
        return 0;
    case OPT_TERM:
        if (!*v)
            return usage_error(ctl, "--term needs a term, such as '2*off->1*on'");
        ctl->term = v;
        return 0;
    case OPT_SEED:
        /* At most 20 digits, as the server reads it: 0 to 18446744073709551615. */
        if (parse_u64(v, &number) != 0 || strlen(v) > 20)
            return usage_error(ctl, "bad seed '%s': expected an unsigned 64-bit decimal integer", v);
        ctl->seed = v;
        return 0;
    case 'p':
        return add_param(ctl, v);
    case 'a':
        ctl->all_injections = 1;
        return 0;
    case 'i':
        if (!*v)
            return usage_error(ctl, "--injection NAME is empty");
        strbuf_append_query(&ctl->events_query, "injection", v);
        return 0;
    case OPT_TYPE:
        strbuf_append_query(&ctl->events_query, "type", v);
        return 0;
    case OPT_PHASE:
        if (ctl->command == CMD_events) {
            strbuf_append_query(&ctl->events_query, "phase", v);
            return 0;
        }
        if (!*v)
            return usage_error(ctl, "--phase is empty");
        ctl->phase = v;
        return 0;
    case OPT_SHARD:
        if (parse_u64(v, &number) != 0 || number > UINT32_MAX)
            return usage_error(ctl, "bad --shard '%s': expected a shard number", v);
        strbuf_append_query(&ctl->events_query, "shard", v);
        return 0;
    case OPT_SINCE:
        if (parse_u64(v, &number) != 0)
            return usage_error(ctl, "bad --since '%s': expected an event seq (0 or more)", v);
        if (ctl->command == CMD_events)
            strbuf_append_query(&ctl->events_query, "since", v);
        else
            ctl->since = v;
        return 0;
    case 'n':
        if (parse_u64(v, &ctl->count) != 0 || ctl->count == 0)
            return usage_error(ctl, "bad --count '%s': expected a whole number, 1 or more", v);
        return 0;
    case 't':
        if (parse_seconds(v, &ctl->timeout) != 0)
            return usage_error(ctl,
                               "bad --timeout '%s': expected seconds, 0 or more "
                               "(fractions allowed, 0 for no limit)",
                               v);
        return 0;
    case 'q':
        ctl->quiet = 1;
        return 0;
    case OPT_ALL_NODES:
        ctl->all_nodes = 1;
        return 0;
    default:
        /* A table above lists an option this switch forgot: a programming error. */
        abort();
    }
}

/* A positional argument of the command; returns 0 or a reported EXIT_USAGE. */
static int take_argument(ctl *ctl, const char *arg, const char **topic)
{
    switch (syntaxes[ctl->command].arguments) {
    case ARGS_NAME:
    case ARGS_NAME_OR_ALL:
        if (ctl->name)
            return usage_error(ctl, "unexpected argument '%s' (one NAME only)", arg);
        if (!*arg)
            return usage_error(ctl, "NAME is empty");
        ctl->name = arg;
        return 0;
    case ARGS_TOPIC:
        if (*topic)
            return usage_error(ctl, "unexpected argument '%s'", arg);
        *topic = arg;
        return 0;
    case ARGS_NONE:
    default:
        return usage_error(ctl, "unexpected argument '%s'", arg);
    }
}

/* What can only be checked once every argument was read. */
static int check_arguments(ctl *ctl, const char *topic)
{
    arguments args = syntaxes[ctl->command].arguments;
    if (args == ARGS_NAME && !ctl->name)
        return usage_error(ctl, "missing NAME");
    if (args == ARGS_NAME_OR_ALL && ctl->name && ctl->all_injections)
        return usage_error(ctl, "give NAME or --all, not both");
    if (args == ARGS_NAME_OR_ALL && !ctl->name && !ctl->all_injections)
        return usage_error(ctl, "missing NAME (or --all)");
    if (ctl->one_shot && ctl->term)
        return usage_error(ctl, "--one-shot and --term do not go together: --one-shot is the term 1*on");
    if (topic) {
        ctl->topic = command_find(topic);
        if (ctl->topic == CMD_NONE)
            return usage_error(ctl, "unknown command '%s'", topic);
    }
    return 0;
}

/* -h or --help: the run becomes `help COMMAND` (or `help` before the command). */
static int want_help(ctl *ctl)
{
    ctl->topic = ctl->command;
    ctl->command = CMD_help;
    return -1;
}

/*
 * The global options before the command name. Returns -1 with the index of the name in *at
 * (0 when -h or --help asks for the list of commands instead), or an exit status.
 */
static int parse_global(ctl *ctl, int argc, char **argv, int *at)
{
    parser p;
    parser_init(&p, ctl, argc, argv, "+", "");
    parser_add(&p, version_option);
    int c;
    *at = 0;
    while ((c = next_option(&p)) != NEXT_END) {
        if (c == NEXT_ERROR)
            return EXIT_USAGE;
        if (c == 'h')
            return -1;
        if (c == OPT_VERSION) {
            printf("errinjctl %s\n", ERRINJCTL_VERSION);
            return EXIT_SEEN_OR_OK;
        }
        if (apply_option(ctl, c, p.value) != 0)
            return EXIT_USAGE;
    }
    if (optind >= argc)
        return usage_error(ctl, "missing COMMAND");
    *at = optind;
    return -1;
}

int options_parse(ctl *ctl, int argc, char **argv)
{
    memset(ctl, 0, sizeof(*ctl));
    ctl->command = CMD_NONE;
    ctl->topic = CMD_NONE;
    ctl->count = 1;
    ctl->timeout = DEFAULT_WAIT_TIMEOUT_S;
    ctl->phase = "hit";
    ctl->params = json_object();
    if (!ctl->params)
        out_of_memory(ctl);

    const char *env_url = getenv("ERRINJ_URL");
    if (add_url(ctl, env_url && *env_url ? env_url : DEFAULT_URL, 0) != 0)
        return EXIT_USAGE;
    const char *env_token = getenv("ERRINJ_TOKEN");
    if (env_token && set_token(ctl, env_token) != 0)
        return EXIT_USAGE;

    int at, rc = parse_global(ctl, argc, argv, &at);
    if (rc >= 0)
        return rc;
    if (at == 0)
        return want_help(ctl);
    ctl->command = command_find(argv[at]);
    if (ctl->command == CMD_NONE)
        return usage_error(ctl, "unknown command '%s'", argv[at]);

    /* The command's arguments, its name standing in for argv[0]. */
    const syntax *syn = &syntaxes[ctl->command];
    parser p;
    parser_init(&p, ctl, argc - at, argv + at, "-", syn->short_options);
    parser_add(&p, syn->options);
    const char *topic = NULL;
    int c;
    while ((c = next_option(&p)) != NEXT_END) {
        if (c == NEXT_ERROR)
            return EXIT_USAGE;
        if (c == 'h')
            return want_help(ctl);
        rc = c == NEXT_POSITIONAL ? take_argument(ctl, p.value, &topic) : apply_option(ctl, c, p.value);
        if (rc != 0)
            return rc;
    }
    return check_arguments(ctl, topic) != 0 ? EXIT_USAGE : -1;
}

void options_free(ctl *ctl)
{
    for (size_t i = 0; i < ctl->url_count; i++)
        free(ctl->urls[i]);
    free(ctl->urls);
    ctl->urls = NULL;
    ctl->url_count = 0;
    json_decref(ctl->params);
    ctl->params = NULL;
    strbuf_free(&ctl->events_query);
}
