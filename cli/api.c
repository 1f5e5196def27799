/*
 * api.c - the REST API of the server, as errinjctl's commands call it (see api.h).
 */
#include "api.h"

#include <curl/curl.h>

#include "msgs.h"

void api_injection_path(strbuf *path, const char *name, const char *suffix)
{
    strbuf_append(path, API "/injection/");
    strbuf_append_url_encoded(path, name);
    strbuf_append(path, suffix);
}

void api_complain_status(const ctl *ctl, const http_response *resp)
{
    char what[512];
    http_error_describe(resp, what, sizeof(what));
    complain(ctl, "server error: %s", what);
}

int api_call(ctl *ctl, const char *method, const char *path, const char *body, http_response *resp)
{
    char err[CURL_ERROR_SIZE + 256];
    if (http_request(&ctl->client, method, path, body, resp, err, sizeof(err)) != 0) {
        complain(ctl, "cannot reach the server at %s: %s", ctl->client.base_url, err);
        return EXIT_SERVER;
    }
    if (resp->status != 200) {
        api_complain_status(ctl, resp);
        http_response_free(resp);
        return EXIT_SERVER;
    }
    return 0;
}

json_t *api_answer_json(const ctl *ctl, const http_response *resp)
{
    json_error_t error;
    json_t *root = json_loadb(resp->body, resp->body_len, JSON_DECODE_ANY, &error);
    if (!root)
        complain(ctl, "the server's answer is not JSON: %s", error.text);
    return root;
}

int api_get_array(ctl *ctl, const char *path, json_t **array)
{
    http_response resp;
    int rc = api_call(ctl, "GET", path, NULL, &resp);
    if (rc)
        return rc;
    *array = api_answer_json(ctl, &resp);
    http_response_free(&resp);
    if (*array && !json_is_array(*array)) {
        complain(ctl, "the server's answer is not a JSON array");
        json_decref(*array);
        *array = NULL;
    }
    return *array ? 0 : EXIT_SERVER;
}

const char *api_string(json_t *object, const char *key, const char *fallback)
{
    json_t *v = json_object_get(object, key);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

void api_append_location(strbuf *out, json_t *object)
{
    const char *file = api_string(object, "file", NULL);
    json_t *line = json_object_get(object, "line");
    if (file && json_is_integer(line))
        strbuf_appendf(out, "%s:%" JSON_INTEGER_FORMAT, file, json_integer_value(line));
    else
        strbuf_append(out, file ? file : "-");
}
