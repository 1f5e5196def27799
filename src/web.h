/*
 * web.h - the dashboard's files (HTML, CSS, JavaScript of web/), embedded in the library.
 *
 * web/embed.cmake generates the table at build time from the files under web/; http.c serves
 * them under /v2/error_injection/ui. Nothing here has state: the bytes are constant.
 */
#ifndef ERRINJ_WEB_H
#define ERRINJ_WEB_H

#include <stddef.h>

struct errinj__web_file {
    const char *path;         /* relative to /v2/error_injection/, e.g. "ui" or "ui/app.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *etag;         /* quoted, as sent in the ETag header */
};

/* Terminated by an entry whose path is NULL. */
extern const struct errinj__web_file errinj__web_files[];

#endif /* ERRINJ_WEB_H */
