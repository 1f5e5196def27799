/*
 * errinjctl.c - the command line of errinj: switch injection points of a running server on
 * and off, and watch or wait for them to fire.
 *
 * It talks to the server only over HTTP (the REST API and the SSE event stream of
 * errinj-events(7)), never through the library, so it works against any process that
 * runs errinj's server, local or remote. Each command is a function run_<command>() that
 * parses its own arguments with the small scanner below; global options (--url, --token,
 * --verbose) are accepted before and after the command name.
 *
 * Exit status: 0 success (for wait: seen), 1 wait timed out, 2 usage error, 3 the server is
 * unreachable, answered with an error, or the stream broke.
 *
 * At about 1,500 lines it is still the whole tool but its many-node runner (multi.c), HTTP
 * (http.c) and SSE parser (sse.c): the split into options (getopt_long), messages, REST
 * commands, event commands and help, as curl's tool is split, is the next change to it.
 */
#include <jansson.h>

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "multi.h"
#include "sse.h"
#include "strbuf.h"

enum {
    EXIT_SEEN_OR_OK = 0,
    EXIT_TIMED_OUT = 1,
    EXIT_USAGE = 2,
    EXIT_SERVER = 3,
};

#define DEFAULT_URL "http://127.0.0.1:10000"
#define API "/v2/error_injection"
#define DEFAULT_WAIT_TIMEOUT_S 30.0

/* What every command needs: the server and how loud to be. */
typedef struct ctl {
    http_client client;
    char *url; /* owned copy behind client.base_url, trailing '/' removed */
    int verbose;
    const char *command; /* the command's name, for messages; NULL before it is known */
} ctl;

typedef struct command command;
struct command {
    const char *name;
    const char *synopsis; /* the arguments after the name */
    const char *summary;  /* one line for the command list */
    const char *help;     /* what it does and its options, for COMMAND --help */
    int (*run)(ctl *ctl, const command *cmd, int argc, char **argv);
};

static const command commands[];

/* ------------------------------------------------------------------------------------- */
/* Messages                                                                                */
/* ------------------------------------------------------------------------------------- */

/* "errinjctl: COMMAND: message" on stderr. */
static void complain(const ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(const ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("errinjctl: ", stderr);
    if (ctl && ctl->command)
        fprintf(stderr, "%s: ", ctl->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Reports a usage error with a pointer to the right help; returns EXIT_USAGE. */
static int usage_error(const ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("errinjctl: ", stderr);
    if (ctl && ctl->command)
        fprintf(stderr, "%s: ", ctl->command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (ctl && ctl->command)
        fprintf(stderr, "Try 'errinjctl %s --help'.\n", ctl->command);
    else
        fputs("Try 'errinjctl --help'.\n", stderr);
    return EXIT_USAGE;
}

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

static void print_main_help(FILE *out)
{
    fputs(main_help, out);
    for (const command *c = commands; c->name; c++) {
        char head[128];
        snprintf(head, sizeof(head), "%s %s", c->name, c->synopsis);
        if (strlen(head) <= 26)
            fprintf(out, "  %-26s %s\n", head, c->summary);
        else
            fprintf(out, "  %s\n  %-26s %s\n", head, "", c->summary);
    }
    fputs(main_help_tail, out);
}

static void print_command_help(const command *cmd)
{
    printf("Usage: errinjctl [GLOBAL OPTIONS] %s %s\n\n%s", cmd->name, cmd->synopsis, cmd->help);
    printf("\nGlobal options (--url, --token, -v) are described by 'errinjctl --help'.\n");
}

/* ------------------------------------------------------------------------------------- */
/* Argument scanning                                                                       */
/* ------------------------------------------------------------------------------------- */

/*
 * Walks a command's arguments. Options may come before, between and after positional
 * arguments; "--" ends options. Values go as "--name VALUE", "--name=VALUE", "-x VALUE" or
 * "-xVALUE". Global options and --help are handled here for every command.
 */
typedef struct argscan {
    ctl *ctl;
    int argc;
    char **argv;
    int next;          /* index of the next argument */
    int options_done;  /* "--" was seen */
    const char *arg;   /* the current argument */
    const char *value; /* a positional argument, or the value of a matched option */
} argscan;

typedef enum scan_result {
    SCAN_END,
    SCAN_POSITIONAL, /* a->value */
    SCAN_OPTION,     /* a->arg: test it with option_is() */
    SCAN_HELP,
    SCAN_ERROR, /* reported already */
} scan_result;

static int option_is(argscan *a, const char *long_name, char short_name, int takes_value);

/* Sets the server URL, dropping trailing slashes; returns 0 or EXIT_USAGE. */
static int set_url(ctl *ctl, const char *url)
{
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len == 0)
        return usage_error(ctl, "the server URL is empty");
    free(ctl->url);
    ctl->url = strndup(url, len);
    if (!ctl->url) {
        complain(ctl, "out of memory");
        exit(EXIT_SERVER);
    }
    ctl->client.base_url = ctl->url;
    return 0;
}

/* Sets the bearer token ("" for none); returns 0 or EXIT_USAGE. */
static int set_token(ctl *ctl, const char *token)
{
    for (const char *p = token; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return usage_error(ctl, "the token holds a control character");
    ctl->client.token = *token ? token : NULL;
    return 0;
}

static scan_result scan_next(argscan *a)
{
    while (a->next < a->argc) {
        const char *arg = a->argv[a->next++];
        a->arg = arg;
        a->value = NULL;
        if (a->options_done || arg[0] != '-' || arg[1] == '\0') {
            a->value = arg;
            return SCAN_POSITIONAL;
        }
        if (strcmp(arg, "--") == 0) {
            a->options_done = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return SCAN_HELP;
        int m;
        if ((m = option_is(a, "url", 0, 1)) != 0) {
            if (m < 0 || set_url(a->ctl, a->value) != 0)
                return SCAN_ERROR;
        } else if ((m = option_is(a, "token", 0, 1)) != 0) {
            if (m < 0 || set_token(a->ctl, a->value) != 0)
                return SCAN_ERROR;
        } else if ((m = option_is(a, "verbose", 'v', 0)) != 0) {
            if (m < 0)
                return SCAN_ERROR;
            a->ctl->verbose = 1;
        } else {
            return SCAN_OPTION;
        }
    }
    return SCAN_END;
}

/*
 * Whether the current argument is the option --long_name (or -short_name). Returns 1 when
 * it is (its value, if it takes one, in a->value), 0 when it is not, -1 when it is but is
 * misused (reported).
 */
static int option_is(argscan *a, const char *long_name, char short_name, int takes_value)
{
    const char *arg = a->arg;
    const char *attached = NULL;
    int is_long = 0;
    if (arg[0] == '-' && arg[1] == '-') {
        size_t n = strlen(long_name);
        if (strncmp(arg + 2, long_name, n) != 0 || (arg[2 + n] != '\0' && arg[2 + n] != '='))
            return 0;
        if (arg[2 + n] == '=')
            attached = arg + 3 + n;
        is_long = 1;
    } else if (short_name && arg[0] == '-' && arg[1] == short_name) {
        if (arg[2] != '\0')
            attached = arg + 2;
    } else {
        return 0;
    }

    if (!takes_value) {
        if (attached) {
            if (is_long)
                usage_error(a->ctl, "option --%s takes no value", long_name);
            else
                usage_error(a->ctl, "unknown option '%s'", arg);
            return -1;
        }
        return 1;
    }
    if (attached) {
        a->value = attached;
        return 1;
    }
    if (a->next >= a->argc) {
        usage_error(a->ctl, "option %s needs a value", arg);
        return -1;
    }
    a->value = a->argv[a->next++];
    return 1;
}

/* Handles the scanner results every command treats alike; returns -1 to go on, else a status. */
static int common_result(argscan *a, const command *cmd, scan_result r)
{
    switch (r) {
    case SCAN_HELP:
        print_command_help(cmd);
        return EXIT_SEEN_OR_OK;
    case SCAN_ERROR:
        return EXIT_USAGE;
    case SCAN_OPTION:
        return usage_error(a->ctl, "unknown option '%s'", a->arg);
    default:
        return -1;
    }
}

/* Takes a command's one NAME argument; returns 0 or a reported usage error. */
static int take_name(const ctl *ctl, const char **name, const char *value)
{
    if (*name)
        return usage_error(ctl, "unexpected argument '%s' (one NAME only)", value);
    if (!*value)
        return usage_error(ctl, "NAME is empty");
    *name = value;
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

/* ------------------------------------------------------------------------------------- */
/* REST calls                                                                              */
/* ------------------------------------------------------------------------------------- */

/* API + "/injection/" + NAME percent-encoded + suffix. Caller frees. */
static void injection_path(strbuf *path, const char *name, const char *suffix)
{
    strbuf_append(path, API "/injection/");
    strbuf_append_url_encoded(path, name);
    strbuf_append(path, suffix);
}

/*
 * Sends a request and insists on 200. Returns 0 with the answer in resp (free it), or
 * EXIT_SERVER after saying on stderr what went wrong.
 */
static int call(ctl *ctl, const char *method, const char *path, const char *body, http_response *resp)
{
    char err[CURL_ERROR_SIZE + 256];
    if (http_request(&ctl->client, method, path, body, resp, err, sizeof(err)) != 0) {
        complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
        return EXIT_SERVER;
    }
    if (resp->status != 200) {
        char what[512];
        http_error_describe(resp, what, sizeof(what));
        complain(ctl, "server error: %s", what);
        http_response_free(resp);
        return EXIT_SERVER;
    }
    return 0;
}

/* Parses an answer as JSON; NULL (reported) when it is not. */
static json_t *answer_json(const ctl *ctl, const http_response *resp)
{
    json_error_t error;
    json_t *root = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &error);
    if (!root)
        complain(ctl, "the server's answer is not JSON: %s", error.text);
    return root;
}

/* Flushes stdout; reports and returns EXIT_SERVER when output failed, else 0. */
static int flush_stdout(const ctl *ctl)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        complain(ctl, "cannot write to standard output: %s", strerror(errno));
        return EXIT_SERVER;
    }
    return 0;
}

/* GETs path and parses the answer as a JSON array into *array (the caller decrefs it). Returns 0,
 * or the exit code after saying what went wrong. */
static int get_array(ctl *ctl, const char *path, json_t **array)
{
    http_response resp;
    int rc = call(ctl, "GET", path, NULL, &resp);
    if (rc)
        return rc;
    *array = answer_json(ctl, &resp);
    http_response_free(&resp);
    if (*array && !json_is_array(*array)) {
        complain(ctl, "the server's answer is not a JSON array");
        json_decref(*array);
        *array = NULL;
    }
    return *array ? 0 : EXIT_SERVER;
}

/* Commands with no argument but options: rejects positional arguments. */
static int scan_no_arguments(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    scan_result r;
    while ((r = scan_next(&a)) != SCAN_END) {
        int rc = common_result(&a, cmd, r);
        if (rc >= 0)
            return rc;
        return usage_error(ctl, "unexpected argument '%s'", a.value);
    }
    return -1;
}

/* Commands whose only argument is NAME: stores it in *name. */
static int scan_name_only(ctl *ctl, const command *cmd, int argc, char **argv, const char **name)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    scan_result r;
    *name = NULL;
    while ((r = scan_next(&a)) != SCAN_END) {
        int rc = common_result(&a, cmd, r);
        if (rc >= 0)
            return rc;
        if (take_name(ctl, name, a.value))
            return EXIT_USAGE;
    }
    if (!*name)
        return usage_error(ctl, "missing NAME");
    return -1;
}

static int run_list(ctl *ctl, const command *cmd, int argc, char **argv)
{
    int rc = scan_no_arguments(ctl, cmd, argc, argv);
    if (rc >= 0)
        return rc;
    json_t *names;
    if ((rc = get_array(ctl, API "/injection", &names)))
        return rc;
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        if (json_is_string(name))
            printf("%s\n", json_string_value(name));
    }
    json_decref(names);
    return flush_stdout(ctl);
}

/* One row of the points table. */
typedef struct point_row {
    const char *name;
    const char *type;
    char *location; /* "file:line", or "-" */
    const char *enabled;
    json_int_t enters;
    json_int_t waiters;
} point_row;

static int compare_rows(const void *a, const void *b)
{
    const point_row *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->location, y->location);
}

static const char *string_field(json_t *object, const char *key, const char *fallback)
{
    json_t *v = json_object_get(object, key);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

static int run_points(ctl *ctl, const command *cmd, int argc, char **argv)
{
    int rc = scan_no_arguments(ctl, cmd, argc, argv);
    if (rc >= 0)
        return rc;
    json_t *points;
    if ((rc = get_array(ctl, API "/points", &points)))
        return rc;
    size_t n = json_array_size(points), i;
    point_row *rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        complain(ctl, "out of memory");
        exit(EXIT_SERVER);
    }
    int w_name = 4, w_type = 4, w_location = 8;
    json_t *p;
    json_array_foreach(points, i, p)
    {
        point_row *row = &rows[i];
        row->name = string_field(p, "name", "?");
        row->type = string_field(p, "type", "?");
        const char *file = string_field(p, "file", NULL);
        json_t *line = json_object_get(p, "line");
        strbuf location = {0};
        if (file && json_is_integer(line))
            strbuf_appendf(&location, "%s:%" JSON_INTEGER_FORMAT, file, json_integer_value(line));
        else
            strbuf_append(&location, file ? file : "-");
        row->location = location.s;
        row->enabled = json_is_true(json_object_get(p, "enabled")) ? "yes" : "no";
        row->enters = json_integer_value(json_object_get(p, "enters"));
        row->waiters = json_integer_value(json_object_get(p, "waiters"));
        if ((int)strlen(row->name) > w_name)
            w_name = (int)strlen(row->name);
        if ((int)strlen(row->type) > w_type)
            w_type = (int)strlen(row->type);
        if ((int)strlen(row->location) > w_location)
            w_location = (int)strlen(row->location);
    }
    qsort(rows, n, sizeof(*rows), compare_rows);
    printf("%-*s  %-*s  %-*s  %-7s  %6s  %7s\n", w_name, "NAME", w_type, "TYPE", w_location, "LOCATION",
           "ENABLED", "ENTERS", "WAITERS");
    for (i = 0; i < n; i++)
        printf("%-*s  %-*s  %-*s  %-7s  %6" JSON_INTEGER_FORMAT "  %7" JSON_INTEGER_FORMAT "\n", w_name,
               rows[i].name, w_type, rows[i].type, w_location, rows[i].location, rows[i].enabled,
               rows[i].enters, rows[i].waiters);
    for (i = 0; i < n; i++)
        free(rows[i].location);
    free(rows);
    json_decref(points);
    return flush_stdout(ctl);
}

/*
 * coverage [--json]: which points were armed, reached (evaluated while enabled) and fired since
 * the server's counters were last reset, as a table in the server's order (by name), or the
 * server's JSON as it came. A name no compiled-in point has shows "-" as its location.
 */
static int run_coverage(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    int json = 0;
    scan_result r;
    while ((r = scan_next(&a)) != SCAN_END) {
        int m;
        if (r == SCAN_OPTION && (m = option_is(&a, "json", 0, 0)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            json = 1;
            continue;
        }
        int rc = common_result(&a, cmd, r);
        if (rc >= 0)
            return rc;
        return usage_error(ctl, "unexpected argument '%s'", a.value);
    }
    json_t *rows;
    int rc = get_array(ctl, API "/coverage", &rows);
    if (rc)
        return rc;
    if (json) {
        char *text = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
        json_decref(rows);
        return flush_stdout(ctl);
    }
    size_t n = json_array_size(rows), i;
    char **locations = calloc(n ? n : 1, sizeof(*locations));
    if (!locations) {
        complain(ctl, "out of memory");
        exit(EXIT_SERVER);
    }
    int w_name = 5, w_location = 8;
    json_t *p;
    json_array_foreach(rows, i, p) {
        const char *file = string_field(p, "file", NULL);
        json_t *line = json_object_get(p, "line");
        strbuf location = {0};
        if (file && json_is_integer(line))
            strbuf_appendf(&location, "%s:%" JSON_INTEGER_FORMAT, file, json_integer_value(line));
        else
            strbuf_append(&location, file ? file : "-");
        locations[i] = location.s;
        int len = (int)strlen(string_field(p, "name", "?"));
        if (len > w_name)
            w_name = len;
        if ((int)strlen(locations[i]) > w_location)
            w_location = (int)strlen(locations[i]);
    }
    printf("%-*s  %-*s  %8s  %8s  %8s\n", w_name, "POINT", w_location, "LOCATION", "ARMED", "REACHED", "FIRED");
    json_array_foreach(rows, i, p) {
        printf("%-*s  %-*s  %8" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT "\n",
               w_name, string_field(p, "name", "?"), w_location, locations[i],
               json_integer_value(json_object_get(p, "armed")), json_integer_value(json_object_get(p, "evaluations")),
               json_integer_value(json_object_get(p, "enters")));
        free(locations[i]);
    }
    free(locations);
    json_decref(rows);
    return flush_stdout(ctl);
}

/* The server's Errinj-Warning (a name no compiled-in point has, say), on stderr. */
static void print_server_warning(const ctl *ctl, const http_response *resp)
{
    if (resp->warning != NULL && resp->warning[0] != '\0')
        complain(ctl, "warning: %s", resp->warning);
}

static int run_enable(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    const char *name = NULL, *term = NULL, *seed = NULL;
    int one_shot = 0;
    json_t *params = json_object();
    int rc = -1;
    scan_result r;
    while (rc < 0 && (r = scan_next(&a)) != SCAN_END) {
        int m;
        if (r == SCAN_POSITIONAL) {
            if (take_name(ctl, &name, a.value))
                rc = EXIT_USAGE;
        } else if (r == SCAN_OPTION && (m = option_is(&a, "one-shot", 0, 0)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            one_shot = 1;
        } else if (r == SCAN_OPTION && (m = option_is(&a, "term", 0, 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else if (a.value[0] == '\0')
                rc = usage_error(ctl, "--term needs a term, such as '2*off->1*on'");
            term = a.value;
        } else if (r == SCAN_OPTION && (m = option_is(&a, "seed", 0, 1)) != 0) {
            if (m < 0) {
                rc = EXIT_USAGE;
                break;
            }
            seed = a.value;
            int ok = *seed != '\0';
            for (const char *p = seed; *p && ok; p++)
                ok = *p >= '0' && *p <= '9';
            if (!ok || strlen(seed) > 20 || (strlen(seed) == 20 && strcmp(seed, "18446744073709551615") > 0))
                rc = usage_error(ctl, "bad seed '%s': expected an unsigned 64-bit decimal integer", seed);
        } else if (r == SCAN_OPTION && (m = option_is(&a, "param", 'p', 1)) != 0) {
            if (m < 0) {
                rc = EXIT_USAGE;
                break;
            }
            const char *eq = strchr(a.value, '=');
            if (!eq || eq == a.value) {
                rc = usage_error(ctl, "bad parameter '%s': expected KEY=VALUE", a.value);
                break;
            }
            char *key = strndup(a.value, (size_t)(eq - a.value));
            json_t *value = json_string(eq + 1);
            /* json_object_set_new() takes the value even when it fails (bad UTF-8 key). */
            if (!key || !value || json_object_set_new(params, key, value) != 0)
                rc = usage_error(ctl, "bad parameter '%s': not valid UTF-8", a.value);
            free(key);
        } else {
            rc = common_result(&a, cmd, r);
        }
    }
    if (rc < 0 && !name)
        rc = usage_error(ctl, "missing NAME");
    if (rc < 0 && one_shot && term)
        rc = usage_error(ctl, "--one-shot and --term do not go together: --one-shot is the term 1*on");
    if (rc < 0) {
        char *body = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        strbuf path = {0};
        injection_path(&path, name, one_shot ? "?one_shot=true" : "?one_shot=false");
        if (term) {
            strbuf_append(&path, "&term=");
            strbuf_append_url_encoded(&path, term);
        }
        if (seed) {
            strbuf_append(&path, "&seed=");
            strbuf_append(&path, seed);
        }
        http_response resp;
        rc = call(ctl, "POST", path.s, body, &resp);
        if (rc == 0) {
            print_server_warning(ctl, &resp);
            http_response_free(&resp);
        }
        strbuf_free(&path);
        free(body);
    }
    json_decref(params);
    return rc;
}

static int run_disable(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    const char *name = NULL;
    int all = 0;
    scan_result r;
    while ((r = scan_next(&a)) != SCAN_END) {
        int m;
        if (r == SCAN_POSITIONAL) {
            if (take_name(ctl, &name, a.value))
                return EXIT_USAGE;
        } else if (r == SCAN_OPTION && (m = option_is(&a, "all", 'a', 0)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            all = 1;
        } else {
            return common_result(&a, cmd, r);
        }
    }
    if (all && name)
        return usage_error(ctl, "give NAME or --all, not both");
    if (!all && !name)
        return usage_error(ctl, "missing NAME (or --all)");
    strbuf path = {0};
    if (all)
        strbuf_append(&path, API "/injection");
    else
        injection_path(&path, name, "");
    http_response resp;
    int rc = call(ctl, "DELETE", path.s, NULL, &resp);
    if (rc == 0)
        http_response_free(&resp);
    strbuf_free(&path);
    return rc;
}

static int run_message(ctl *ctl, const command *cmd, int argc, char **argv)
{
    const char *name;
    int rc = scan_name_only(ctl, cmd, argc, argv, &name);
    if (rc >= 0)
        return rc;
    strbuf path = {0};
    injection_path(&path, name, "/message");
    http_response resp;
    rc = call(ctl, "POST", path.s, NULL, &resp);
    if (rc == 0)
        http_response_free(&resp);
    strbuf_free(&path);
    return rc;
}

/* enters and waiters: GET a bare integer and print it. */
static int print_counter(ctl *ctl, const command *cmd, int argc, char **argv, const char *suffix)
{
    const char *name;
    int rc = scan_name_only(ctl, cmd, argc, argv, &name);
    if (rc >= 0)
        return rc;
    strbuf path = {0};
    injection_path(&path, name, suffix);
    http_response resp;
    rc = call(ctl, "GET", path.s, NULL, &resp);
    strbuf_free(&path);
    if (rc)
        return rc;
    json_t *count = answer_json(ctl, &resp);
    rc = EXIT_SERVER;
    if (count && !json_is_integer(count)) {
        complain(ctl, "the server's answer is not an integer");
    } else if (count) {
        printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(count));
        rc = flush_stdout(ctl);
    }
    json_decref(count);
    http_response_free(&resp);
    return rc;
}

static int run_enters(ctl *ctl, const command *cmd, int argc, char **argv)
{
    return print_counter(ctl, cmd, argc, argv, "/enters");
}

static int run_waiters(ctl *ctl, const command *cmd, int argc, char **argv)
{
    return print_counter(ctl, cmd, argc, argv, "/waiters");
}

/* Prints an answer's JSON indented (or as it came, if it is not JSON), ending in a newline. */
static int print_json_answer(ctl *ctl, const http_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, NULL);
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        putchar('\n');
        json_decref(root);
    } else {
        fwrite(resp->body, 1, resp->body_len, stdout);
        if (resp->body_len == 0 || resp->body[resp->body_len - 1] != '\n')
            putchar('\n');
    }
    return flush_stdout(ctl);
}

static int run_get(ctl *ctl, const command *cmd, int argc, char **argv)
{
    const char *name;
    int rc = scan_name_only(ctl, cmd, argc, argv, &name);
    if (rc >= 0)
        return rc;
    strbuf path = {0};
    injection_path(&path, name, "");
    http_response resp;
    rc = call(ctl, "GET", path.s, NULL, &resp);
    strbuf_free(&path);
    if (rc)
        return rc;
    rc = print_json_answer(ctl, &resp);
    http_response_free(&resp);
    return rc;
}

static int run_status(ctl *ctl, const command *cmd, int argc, char **argv)
{
    int rc = scan_no_arguments(ctl, cmd, argc, argv);
    if (rc >= 0)
        return rc;
    http_response resp;
    if ((rc = call(ctl, "GET", API "/status", NULL, &resp)))
        return rc;
    rc = print_json_answer(ctl, &resp);
    http_response_free(&resp);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Events                                                                                  */
/* ------------------------------------------------------------------------------------- */

/* Appends a value for an event line: bare when plain, else quoted with JSON escapes. */
static void append_word(strbuf *line, const char *s)
{
    int plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p == 0x7f)
            plain = 0;
    if (plain) {
        strbuf_append(line, s);
        return;
    }
    json_t *str = json_string(s);
    char *quoted = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    strbuf_append(line, quoted ? quoted : "\"?\"");
    free(quoted);
    json_decref(str);
}

/* Appends ts_ns as local time with microseconds: "2026-01-05 14:03:07.123456". */
static void append_time(strbuf *line, json_t *ts)
{
    if (!json_is_integer(ts)) {
        strbuf_append(line, "-");
        return;
    }
    json_int_t ns = json_integer_value(ts);
    time_t secs = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    struct tm tm;
    char when[64];
    if (!localtime_r(&secs, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm)) {
        strbuf_append(line, "-");
        return;
    }
    strbuf_appendf(line, "%s.%06ld", when, frac / 1000);
}

/*
 * One readable line for an event:
 * "SEQ DATE TIME shard=N TYPE PHASE NAME FILE:LINE action=A eval=N [KEY=VALUE]..."
 * (action and eval only when the server sends them).
 */
static void format_event(strbuf *line, json_t *ev)
{
    json_t *seq = json_object_get(ev, "seq");
    if (json_is_integer(seq))
        strbuf_appendf(line, "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
    else
        strbuf_append(line, "-");
    strbuf_append(line, " ");
    append_time(line, json_object_get(ev, "ts_ns"));
    json_t *shard = json_object_get(ev, "shard");
    if (json_is_integer(shard))
        strbuf_appendf(line, " shard=%" JSON_INTEGER_FORMAT, json_integer_value(shard));
    else
        strbuf_append(line, " shard=-");
    strbuf_append(line, " ");
    append_word(line, string_field(ev, "type", "-"));
    strbuf_append(line, " ");
    append_word(line, string_field(ev, "phase", "-"));
    strbuf_append(line, " ");
    append_word(line, string_field(ev, "injection", "-"));
    strbuf_append(line, " ");
    const char *file = string_field(ev, "file", NULL);
    json_t *at = json_object_get(ev, "line");
    if (file) {
        append_word(line, file);
        if (json_is_integer(at))
            strbuf_appendf(line, ":%" JSON_INTEGER_FORMAT, json_integer_value(at));
    } else {
        strbuf_append(line, "-");
    }
    const char *action = string_field(ev, "action", NULL);
    if (action) {
        strbuf_append(line, " action=");
        append_word(line, action);
    }
    json_t *eval = json_object_get(ev, "eval");
    if (json_is_integer(eval))
        strbuf_appendf(line, " eval=%" JSON_INTEGER_FORMAT, json_integer_value(eval));
    json_t *params = json_object_get(ev, "parameters");
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value)
    {
        strbuf_append(line, " ");
        append_word(line, key);
        strbuf_append(line, "=");
        if (json_is_string(value)) {
            append_word(line, json_string_value(value));
        } else {
            char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            append_word(line, dumped ? dumped : "?");
            free(dumped);
        }
    }
}

/* Why a stream callback stopped the stream. */
enum {
    STOP_SEEN = 1,   /* wait: the Nth hit arrived */
    STOP_OUTPUT = 2, /* stdout failed */
};

/* The state shared by the events and wait commands while a stream runs. */
typedef struct watch {
    ctl *ctl;
    sse_parser parser;
    int json;              /* print raw event JSON */
    int quiet;             /* print nothing on stdout */
    int connected_comment; /* ": connected" arrived */
    /* wait only: events of `name` in `phase` are counted until `want`. */
    const char *name;
    const char *phase;
    uint64_t want, seen;
    uint64_t last_seq;
} watch;

static int print_event_line(watch *w, const sse_event *ev, json_t *root)
{
    if (w->quiet)
        return 0;
    if (w->json) {
        fwrite(ev->data, 1, ev->data_len, stdout);
        putchar('\n');
    } else {
        strbuf line = {0};
        format_event(&line, root);
        puts(strbuf_str(&line));
        strbuf_free(&line);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : STOP_OUTPUT;
}

static int on_stream_event(void *arg, const sse_event *ev)
{
    watch *w = arg;
    if (strcmp(ev->type, "overflow") == 0) {
        json_t *root = json_loadb(ev->data, ev->data_len, 0, NULL);
        json_t *dropped = json_object_get(root, "dropped");
        json_t *next = json_object_get(root, "next_seq");
        if (json_is_integer(dropped) && json_is_integer(next))
            complain(w->ctl,
                     "overflow: %" JSON_INTEGER_FORMAT " events dropped, the stream goes on "
                     "at seq %" JSON_INTEGER_FORMAT,
                     json_integer_value(dropped), json_integer_value(next));
        else
            complain(w->ctl, "overflow: events were dropped (%.*s)", (int)ev->data_len, ev->data);
        json_decref(root);
        return 0;
    }
    if (strcmp(ev->type, "message") != 0) {
        if (w->ctl->verbose)
            complain(w->ctl, "ignoring an event of type '%s'", ev->type);
        return 0;
    }

    json_error_t error;
    json_t *root = json_loadb(ev->data, ev->data_len, 0, &error);
    if (!json_is_object(root)) {
        complain(w->ctl, "ignoring an event that is not a JSON object: %.*s",
                 (int)(ev->data_len < 200 ? ev->data_len : 200), ev->data);
        json_decref(root);
        return 0;
    }
    json_t *seq = json_object_get(root, "seq");
    if (json_is_integer(seq))
        w->last_seq = (uint64_t)json_integer_value(seq);

    int rc = 0;
    if (!w->name) {
        rc = print_event_line(w, ev, root);
    } else if (strcmp(string_field(root, "injection", ""), w->name) == 0 &&
               (strcmp(w->phase, "all") == 0 || strcmp(string_field(root, "phase", ""), w->phase) == 0)) {
        rc = print_event_line(w, ev, root);
        if (rc == 0 && ++w->seen >= w->want)
            rc = STOP_SEEN;
    }
    json_decref(root);
    return rc;
}

static int on_stream_comment(void *arg, const char *text, size_t len)
{
    watch *w = arg;
    (void)len;
    if (strcmp(text, "connected") == 0) {
        w->connected_comment = 1;
        if (w->ctl->verbose)
            complain(w->ctl, "connected to %s", w->ctl->client.base_url);
    } else if (w->ctl->verbose) {
        complain(w->ctl, "server says: %s", text);
    }
    return 0;
}

static int on_stream_data(void *arg, const char *buf, size_t len)
{
    watch *w = arg;
    return sse_parser_feed(&w->parser, buf, len);
}

/*
 * Runs the stream at `path` through the watch until it stops, times out or breaks, and turns
 * the end into an exit status. `timeout` (seconds, 0 for none) is for the messages.
 */
static int run_stream(watch *w, const char *path, double timeout)
{
    ctl *ctl = w->ctl;
    sse_parser_init(&w->parser, on_stream_event, on_stream_comment, w, 0);
    double deadline = timeout > 0 ? mono_now() + timeout : 0;
    int stop_rc = 0, connected = 0;
    http_response resp;
    char err[CURL_ERROR_SIZE + 256] = "";
    http_stream_end end = http_stream(&ctl->client, path, on_stream_data, w, deadline, &stop_rc, &resp,
                                      &connected, err, sizeof(err));
    sse_parser_free(&w->parser);

    switch (end) {
    case HTTP_STREAM_STOPPED:
        if (stop_rc == STOP_SEEN)
            return EXIT_SEEN_OR_OK;
        if (stop_rc == STOP_OUTPUT) {
            complain(ctl, "cannot write to standard output: %s", strerror(errno));
            return EXIT_SERVER;
        }
        if (stop_rc == SSE_ETOOLONG)
            complain(ctl, "the event stream sent a line or event over %zu bytes", SSE_DEFAULT_MAX_LINE);
        else
            complain(ctl, "out of memory while reading the event stream");
        return EXIT_SERVER;
    case HTTP_STREAM_TIMEOUT:
        if (!connected) {
            complain(ctl, "no answer from %s within %g s", ctl->client.base_url, timeout);
            return EXIT_SERVER;
        }
        complain(ctl, "timed out after %g s waiting for %s (phase %s): seen %" PRIu64 " of %" PRIu64, timeout,
                 w->name, w->phase, w->seen, w->want);
        return EXIT_TIMED_OUT;
    case HTTP_STREAM_CLOSED:
        complain(ctl, "%s (%s)", err, ctl->client.base_url);
        return EXIT_SERVER;
    case HTTP_STREAM_FAILED:
        complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
        return EXIT_SERVER;
    case HTTP_STREAM_REFUSED: {
        char what[512];
        http_error_describe(&resp, what, sizeof(what));
        if (resp.status == 200)
            complain(ctl, "the server did not answer with an event stream (%s)", what);
        else
            complain(ctl, "server error: %s", what);
        http_response_free(&resp);
        return EXIT_SERVER;
    }
    }
    return EXIT_SERVER;
}

/* Appends "&key=value" (or "?key=value" first) to a stream path. */
static void add_query(strbuf *path, const char *key, const char *value)
{
    strbuf_append(path, strchr(strbuf_str(path), '?') ? "&" : "?");
    strbuf_append(path, key);
    strbuf_append(path, "=");
    strbuf_append_url_encoded(path, value);
}

static int run_events(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    watch w = {.ctl = ctl};
    strbuf path = {0};
    strbuf_append(&path, API "/events");
    int rc = -1;
    scan_result r;
    while (rc < 0 && (r = scan_next(&a)) != SCAN_END) {
        int m;
        uint64_t number;
        if (r != SCAN_OPTION) {
            rc = r == SCAN_POSITIONAL ? usage_error(ctl, "unexpected argument '%s'", a.value)
                                      : common_result(&a, cmd, r);
        } else if ((m = option_is(&a, "injection", 'i', 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else if (!*a.value)
                rc = usage_error(ctl, "--injection NAME is empty");
            else
                add_query(&path, "injection", a.value);
        } else if ((m = option_is(&a, "type", 0, 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else
                add_query(&path, "type", a.value);
        } else if ((m = option_is(&a, "phase", 0, 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else
                add_query(&path, "phase", a.value);
        } else if ((m = option_is(&a, "shard", 0, 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else if (parse_u64(a.value, &number) != 0 || number > UINT32_MAX)
                rc = usage_error(ctl, "bad --shard '%s': expected a shard number", a.value);
            else
                add_query(&path, "shard", a.value);
        } else if ((m = option_is(&a, "since", 0, 1)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            else if (parse_u64(a.value, &number) != 0)
                rc = usage_error(ctl, "bad --since '%s': expected an event seq (0 or more)", a.value);
            else
                add_query(&path, "since", a.value);
        } else if ((m = option_is(&a, "json", 0, 0)) != 0) {
            if (m < 0)
                rc = EXIT_USAGE;
            w.json = 1;
        } else {
            rc = common_result(&a, cmd, r);
        }
    }
    if (rc < 0)
        rc = run_stream(&w, path.s, 0);
    strbuf_free(&path);
    return rc;
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

/* The server holds a wait at most this long; longer (or unlimited) waits ask again. */
#define SERVER_WAIT_MAX_S 3600.0

/* Prints the JSON array of events a server-side wait answered, as the stream would. */
static int print_wait_answer(watch *w, const http_response *resp)
{
    json_t *events = answer_json(w->ctl, resp);
    if (!json_is_array(events)) {
        if (events)
            complain(w->ctl, "the server's wait answer is not a JSON array");
        json_decref(events);
        return EXIT_SERVER;
    }
    size_t i;
    json_t *ev;
    int rc = 0;
    json_array_foreach(events, i, ev) {
        char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        sse_event sev = {.type = "message", .data = text ? text : "{}", .data_len = text ? strlen(text) : 2};
        if (rc == 0 && print_event_line(w, &sev, ev) != 0)
            rc = STOP_OUTPUT;
        free(text);
    }
    json_decref(events);
    if (rc == STOP_OUTPUT) {
        complain(w->ctl, "cannot write to standard output: %s", strerror(errno));
        return EXIT_SERVER;
    }
    return EXIT_SEEN_OR_OK;
}

/*
 * wait without --since: the server waits (GET .../injection/NAME/wait) from the injection's
 * latest enable, so a hit between the enable and this command is not missed. A timeout beyond
 * what the server holds, or none, becomes several requests; a wait consumes nothing, so each
 * asks for the same events again.
 */
static int run_wait_on_server(watch *w, double timeout)
{
    ctl *ctl = w->ctl;
    double deadline = timeout > 0 ? mono_now() + timeout : 0;
    for (;;) {
        double slice = SERVER_WAIT_MAX_S;
        if (deadline > 0) {
            double left = deadline - mono_now();
            slice = left < 0 ? 0 : left < slice ? left : slice;
        }
        char number[64];
        strbuf path = {0};
        injection_path(&path, w->name, "/wait");
        snprintf(number, sizeof(number), "%" PRIu64, w->want);
        add_query(&path, "count", number);
        if (strcmp(w->phase, "hit") != 0)
            add_query(&path, "phase", w->phase);
        snprintf(number, sizeof(number), "%.3f", slice);
        add_query(&path, "timeout", number);
        http_response resp;
        char err[CURL_ERROR_SIZE + 256];
        /* The server answers 408 at the end of the slice; a little longer means it is stuck. */
        double sent_at = mono_now();
        int sent = http_request_timeout(&ctl->client, "GET", path.s, NULL, slice + 2, &resp, err, sizeof(err));
        strbuf_free(&path);
        /* curl's own clock may stop a hair short of slice + 2: a failure after more than the
         * slice itself is a server that accepted and never answered, not one out of reach. */
        if (sent != 0 && mono_now() - sent_at > slice + 1) {
            complain(ctl, "no answer from %s within %g s (%s)", ctl->client.base_url, slice + 2, err);
            return EXIT_SERVER;
        } else if (sent != 0) {
            complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
            return EXIT_SERVER;
        }
        int rc;
        if (resp.status == 200) {
            rc = print_wait_answer(w, &resp);
        } else if (resp.status == 408 && (deadline == 0 || mono_now() < deadline)) {
            http_response_free(&resp);
            continue; /* the server's limit, not ours: ask again */
        } else if (resp.status == 408) {
            char what[512];
            http_error_describe(&resp, what, sizeof(what));
            complain(ctl, "timed out after %g s waiting for %s (phase %s): %s", timeout, w->name, w->phase, what);
            rc = EXIT_TIMED_OUT;
        } else {
            char what[512];
            http_error_describe(&resp, what, sizeof(what));
            complain(ctl, "server error: %s", what);
            rc = EXIT_SERVER;
        }
        http_response_free(&resp);
        return rc;
    }
}

static int run_wait(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    watch w = {.ctl = ctl, .want = 1, .phase = "hit"};
    double timeout = DEFAULT_WAIT_TIMEOUT_S;
    const char *since = NULL;
    scan_result r;
    while ((r = scan_next(&a)) != SCAN_END) {
        int m;
        uint64_t number;
        if (r == SCAN_POSITIONAL) {
            if (take_name(ctl, &w.name, a.value))
                return EXIT_USAGE;
        } else if (r != SCAN_OPTION) {
            return common_result(&a, cmd, r);
        } else if ((m = option_is(&a, "count", 'n', 1)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            if (parse_u64(a.value, &w.want) != 0 || w.want == 0)
                return usage_error(ctl, "bad --count '%s': expected a whole number, 1 or more", a.value);
        } else if ((m = option_is(&a, "timeout", 't', 1)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            if (parse_seconds(a.value, &timeout) != 0)
                return usage_error(ctl,
                                   "bad --timeout '%s': expected seconds, 0 or more "
                                   "(fractions allowed, 0 for no limit)",
                                   a.value);
        } else if ((m = option_is(&a, "since", 0, 1)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            if (parse_u64(a.value, &number) != 0)
                return usage_error(ctl, "bad --since '%s': expected an event seq (0 or more)", a.value);
            since = a.value;
        } else if ((m = option_is(&a, "phase", 0, 1)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            if (!*a.value)
                return usage_error(ctl, "--phase is empty");
            w.phase = a.value;
        } else if ((m = option_is(&a, "json", 0, 0)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            w.json = 1;
        } else if ((m = option_is(&a, "quiet", 'q', 0)) != 0) {
            if (m < 0)
                return EXIT_USAGE;
            w.quiet = 1;
        } else {
            return common_result(&a, cmd, r);
        }
    }
    if (!w.name)
        return usage_error(ctl, "missing NAME");

    if (!since)
        return run_wait_on_server(&w, timeout);
    strbuf path = {0};
    strbuf_append(&path, API "/events");
    add_query(&path, "injection", w.name);
    if (strcmp(w.phase, "hit") != 0)
        add_query(&path, "phase", w.phase);
    add_query(&path, "since", since);
    int rc = run_stream(&w, path.s, timeout);
    strbuf_free(&path);
    return rc;
}

/* ------------------------------------------------------------------------------------- */
/* Main                                                                                    */
/* ------------------------------------------------------------------------------------- */

static int run_help(ctl *ctl, const command *cmd, int argc, char **argv);

static const command commands[] = {
    {"list", "", "print the enabled injections, one per line",
     "Prints the names of the enabled injections, one per line.\n", run_list},
    {"coverage", "[--json]", "print which points were armed, reached and fired",
     "Prints, for every point compiled into the server and every name armed since the\n"
     "counters were reset, POINT, LOCATION (file:line, '-' for a name no point has),\n"
     "ARMED (times enabled), REACHED (times a thread got to it while enabled) and FIRED\n"
     "(times it fired), counted across enables since the server started or its coverage\n"
     "was reset (DELETE /v2/error_injection/coverage).\n"
     "\n"
     "Options:\n"
     "  --json                print the server's JSON array instead\n",
     run_coverage},
    {"points", "", "print the catalogue of points as a table",
     "Prints every point compiled into the server, enabled or not, sorted by name:\n"
     "NAME, TYPE, LOCATION (file:line), ENABLED, ENTERS (fires since enabled) and\n"
     "WAITERS (threads parked in a handler).\n",
     run_points},
    {"enable", "NAME [--one-shot] [--term T] [--seed S] [-p KEY=VALUE]...", "enable an injection",
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
     "                      a parameter for the point (repeatable; VALUE may be empty)\n",
     run_enable},
    {"disable", "NAME | --all", "disable one injection, or all",
     "Disables the injection NAME (not an error when it is not enabled), or with --all\n"
     "every injection. Threads parked in a handler's wait for message are released.\n"
     "\n"
     "Options:\n"
     "  -a, --all           disable every injection\n",
     run_disable},
    {"message", "NAME", "send a message to NAME's handlers",
     "Sends a message to the injection NAME: every handler waiting for one now is\n"
     "released, and a handler that waits later still counts it. Ignored when NAME is\n"
     "not enabled.\n",
     run_message},
    {"enters", "NAME", "print how often NAME fired since enabled",
     "Prints, as a bare integer, how many times NAME fired since it was last enabled.\n", run_enters},
    {"waiters", "NAME", "print how many threads wait in NAME",
     "Prints, as a bare integer, how many threads are parked in NAME's wait for message.\n", run_waiters},
    {"get", "NAME", "print NAME's state as JSON",
     "Prints the server's JSON for NAME: whether it is enabled, one-shot, its parameters.\n", run_get},
    {"events", "[--injection NAME]... [--type T] [--since SEQ] [--json]", "print events as points fire",
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
     "  --json                print each event's JSON as it came, one per line\n",
     run_events},
    {"wait", "NAME [--count N] [--timeout SECONDS] [--since SEQ]", "wait until NAME fires",
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
     "                        it, until one node did)\n",
     run_wait},
    {"status", "", "print the server's status JSON",
     "Prints the server's status: version, the last event seq, subscribers, dropped\n"
     "events and shards.\n",
     run_status},
    {"help", "[COMMAND]", "print this help, or a command's", "Prints help.\n", run_help},
    {NULL, NULL, NULL, NULL, NULL},
};

static const command *find_command(const char *name)
{
    for (const command *c = commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int run_help(ctl *ctl, const command *cmd, int argc, char **argv)
{
    argscan a = {.ctl = ctl, .argc = argc, .argv = argv};
    const char *topic = NULL;
    scan_result r;
    while ((r = scan_next(&a)) != SCAN_END) {
        int rc = common_result(&a, cmd, r);
        if (rc >= 0)
            return rc;
        if (topic)
            return usage_error(ctl, "unexpected argument '%s'", a.value);
        topic = a.value;
    }
    if (!topic) {
        print_main_help(stdout);
        return EXIT_SEEN_OR_OK;
    }
    const command *about = find_command(topic);
    if (!about)
        return usage_error(ctl, "unknown command '%s'", topic);
    print_command_help(about);
    return EXIT_SEEN_OR_OK;
}

/* Everything main() does but releasing ctl, so that any step may return. */
static int run_main(ctl *ctl, int argc, char **argv)
{
    const char *env_url = getenv("ERRINJ_URL");
    if (set_url(ctl, env_url && *env_url ? env_url : DEFAULT_URL) != 0)
        return EXIT_USAGE;
    const char *env_token = getenv("ERRINJ_TOKEN");
    if (env_token && set_token(ctl, env_token) != 0)
        return EXIT_USAGE;

    /* Global options, up to the command name. */
    argscan a = {.ctl = ctl, .argc = argc - 1, .argv = argv + 1};
    const command *cmd = NULL;
    scan_result r;
    while (!cmd && (r = scan_next(&a)) != SCAN_END) {
        switch (r) {
        case SCAN_HELP:
            print_main_help(stdout);
            return EXIT_SEEN_OR_OK;
        case SCAN_ERROR:
            return EXIT_USAGE;
        case SCAN_OPTION:
            if (strcmp(a.arg, "--version") == 0) {
                printf("errinjctl %s\n", ERRINJCTL_VERSION);
                return EXIT_SEEN_OR_OK;
            }
            return usage_error(ctl, "unknown option '%s'", a.arg);
        default:
            cmd = find_command(a.value);
            if (!cmd)
                return usage_error(ctl, "unknown command '%s'", a.value);
        }
    }
    if (!cmd)
        return usage_error(ctl, "missing COMMAND");

    ctl->command = cmd->name;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        complain(ctl, "cannot initialise libcurl");
        return EXIT_SERVER;
    }
    int rc = cmd->run(ctl, cmd, argc - 1 - a.next, argv + 1 + a.next);
    curl_global_cleanup();
    return rc;
}

/* errinjctl on one node: multi.c runs this once per --url. */
static int single_main(int argc, char **argv)
{
    ctl ctl = {0};
    int rc = run_main(&ctl, argc, argv);
    free(ctl.url);
    return rc;
}

int main(int argc, char **argv)
{
    return multi_main(argc, argv, single_main);
}
