/*
 * rest.c - the commands that are one REST exchange: list, points, coverage, enable, disable,
 * message, enters, waiters, get and status. Each sends its request, checks the shape of the
 * answer and prints it: tables for people, bare values and JSON for scripts.
 *
 * They run once per node (multi.c calls them in a process per node), read only what
 * options.c put in the ctl, and exit 3 on anything the server does not answer as
 * errinj-events(7) promises.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "msgs.h"

int act_list(ctl *ctl)
{
    json_t *names;
    int rc = api_get_array(ctl, API "/injection", &names);
    if (rc)
        return rc;
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name) {
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

/* Widens *width to hold s. */
static void fit(int *width, const char *s)
{
    if ((int)strlen(s) > *width)
        *width = (int)strlen(s);
}

/* Every point's "file:line" (see api_append_location()), in the order of the array. */
static char **locations_of(const ctl *ctl, json_t *points)
{
    size_t n = json_array_size(points), i;
    char **locations = calloc(n ? n : 1, sizeof(*locations));
    if (!locations)
        out_of_memory(ctl);
    json_t *p;
    json_array_foreach(points, i, p) {
        strbuf location = {0};
        api_append_location(&location, p);
        locations[i] = location.s;
    }
    return locations;
}

static void free_locations(char **locations, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(locations[i]);
    free(locations);
}

int act_points(ctl *ctl)
{
    json_t *points;
    int rc = api_get_array(ctl, API "/points", &points);
    if (rc)
        return rc;
    size_t n = json_array_size(points), i;
    point_row *rows = calloc(n ? n : 1, sizeof(*rows));
    char **locations = locations_of(ctl, points);
    if (!rows)
        out_of_memory(ctl);
    int w_name = 4, w_type = 4, w_location = 8;
    json_t *p;
    json_array_foreach(points, i, p) {
        point_row *row = &rows[i];
        row->name = api_string(p, "name", "?");
        row->type = api_string(p, "type", "?");
        row->location = locations[i];
        row->enabled = json_is_true(json_object_get(p, "enabled")) ? "yes" : "no";
        row->enters = json_integer_value(json_object_get(p, "enters"));
        row->waiters = json_integer_value(json_object_get(p, "waiters"));
        fit(&w_name, row->name);
        fit(&w_type, row->type);
        fit(&w_location, row->location);
    }
    qsort(rows, n, sizeof(*rows), compare_rows);
    printf("%-*s  %-*s  %-*s  %-7s  %6s  %7s\n", w_name, "NAME", w_type, "TYPE", w_location, "LOCATION",
           "ENABLED", "ENTERS", "WAITERS");
    for (i = 0; i < n; i++)
        printf("%-*s  %-*s  %-*s  %-7s  %6" JSON_INTEGER_FORMAT "  %7" JSON_INTEGER_FORMAT "\n", w_name,
               rows[i].name, w_type, rows[i].type, w_location, rows[i].location, rows[i].enabled,
               rows[i].enters, rows[i].waiters);
    free_locations(locations, n);
    free(rows);
    json_decref(points);
    return flush_stdout(ctl);
}

/*
 * coverage [--json]: which points were armed, reached (evaluated while enabled) and fired since
 * the server's counters were last reset, as a table in the server's order (by name), or the
 * server's JSON as it came. A name no compiled-in point has shows "-" as its location.
 */
int act_coverage(ctl *ctl)
{
    json_t *rows;
    int rc = api_get_array(ctl, API "/coverage", &rows);
    if (rc)
        return rc;
    if (ctl->json) {
        char *text = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
        json_decref(rows);
        return flush_stdout(ctl);
    }
    size_t n = json_array_size(rows), i;
    char **locations = locations_of(ctl, rows);
    int w_name = 5, w_location = 8;
    json_t *p;
    json_array_foreach(rows, i, p) {
        fit(&w_name, api_string(p, "name", "?"));
        fit(&w_location, locations[i]);
    }
    printf("%-*s  %-*s  %8s  %8s  %8s\n", w_name, "POINT", w_location, "LOCATION", "ARMED", "REACHED",
           "FIRED");
    json_array_foreach(rows, i, p) {
        printf("%-*s  %-*s  %8" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT
               "\n",
               w_name, api_string(p, "name", "?"), w_location, locations[i],
               json_integer_value(json_object_get(p, "armed")),
               json_integer_value(json_object_get(p, "evaluations")),
               json_integer_value(json_object_get(p, "enters")));
    }
    free_locations(locations, n);
    json_decref(rows);
    return flush_stdout(ctl);
}

/* Sends a request whose answer is only its status (enable, disable, message). */
static int send_command(ctl *ctl, const char *method, const char *path, const char *body)
{
    http_response resp;
    int rc = api_call(ctl, method, path, body, &resp);
    if (rc == 0) {
        /* The server's Errinj-Warning: a name no compiled-in point has, say. */
        if (resp.warning != NULL && resp.warning[0] != '\0')
            warnf(ctl, "%s", resp.warning);
        http_response_free(&resp);
    }
    return rc;
}

int act_enable(ctl *ctl)
{
    char *body = json_dumps(ctl->params, JSON_COMPACT | JSON_SORT_KEYS);
    strbuf path = {0};
    api_injection_path(&path, ctl->name, ctl->one_shot ? "?one_shot=true" : "?one_shot=false");
    if (ctl->term)
        strbuf_append_query(&path, "term", ctl->term);
    if (ctl->seed)
        strbuf_append_query(&path, "seed", ctl->seed);
    int rc = send_command(ctl, "POST", path.s, body);
    strbuf_free(&path);
    free(body);
    return rc;
}

int act_disable(ctl *ctl)
{
    strbuf path = {0};
    if (ctl->all_injections)
        strbuf_append(&path, API "/injection");
    else
        api_injection_path(&path, ctl->name, "");
    int rc = send_command(ctl, "DELETE", path.s, NULL);
    strbuf_free(&path);
    return rc;
}

int act_message(ctl *ctl)
{
    strbuf path = {0};
    api_injection_path(&path, ctl->name, "/message");
    int rc = send_command(ctl, "POST", path.s, NULL);
    strbuf_free(&path);
    return rc;
}

/* GETs path; returns 0 with the answer in resp, or the exit status. */
static int get(ctl *ctl, const char *name, const char *suffix, http_response *resp)
{
    strbuf path = {0};
    if (name)
        api_injection_path(&path, name, suffix);
    else
        strbuf_append(&path, suffix);
    int rc = api_call(ctl, "GET", path.s, NULL, resp);
    strbuf_free(&path);
    return rc;
}

/* enters and waiters: GET a bare integer and print it. */
static int print_counter(ctl *ctl, const char *suffix)
{
    http_response resp;
    int rc = get(ctl, ctl->name, suffix, &resp);
    if (rc)
        return rc;
    json_t *count = api_answer_json(ctl, &resp);
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

int act_enters(ctl *ctl)
{
    return print_counter(ctl, "/enters");
}

int act_waiters(ctl *ctl)
{
    return print_counter(ctl, "/waiters");
}

/* get and status: the answer's JSON indented (as it came, if it is not JSON), ending in a newline. */
static int print_json(ctl *ctl, const char *name, const char *suffix)
{
    http_response resp;
    int rc = get(ctl, name, suffix, &resp);
    if (rc)
        return rc;
    json_t *root = json_loadb(resp.body, resp.body_len, JSON_DECODE_ANY, NULL);
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
        putchar('\n');
        json_decref(root);
    } else {
        fwrite(resp.body, 1, resp.body_len, stdout);
        if (resp.body_len == 0 || resp.body[resp.body_len - 1] != '\n')
            putchar('\n');
    }
    http_response_free(&resp);
    return flush_stdout(ctl);
}

int act_get(ctl *ctl)
{
    return print_json(ctl, ctl->name, "");
}

int act_status(ctl *ctl)
{
    return print_json(ctl, NULL, API "/status");
}
