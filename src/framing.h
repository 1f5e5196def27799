/*
 * framing.h - the checks errinj makes of a request's framing before it trusts what
 * libmicrohttpd parsed: a NUL byte anywhere in the request line, and the message length given
 * twice or two ways (request smuggling).
 *
 * libmicrohttpd hands the method, URI and version on as C strings, so a raw NUL silently cuts
 * one short ("DELETE /injection/a\0HTTP/1.1 HTTP/1.1" reads as a DELETE of "a"); it takes the
 * first of two different Content-Lengths, accepts Content-Length together with
 * Transfer-Encoding, and waits for the end of the connection on a transfer coding it does not
 * know. Each of these is refused here, with the connection closed after the answer.
 */
#ifndef ERRINJ_FRAMING_H
#define ERRINJ_FRAMING_H

#include <microhttpd.h>

#include <stdbool.h>
#include <stddef.h>

/* Where the request line's URI lay when libmicrohttpd reported it (its URI log callback, before it
 * splits off the query): the start and the length up to the first NUL. */
struct errinj__request_line {
    const char *uri;
    size_t uri_len;
};

/*
 * True unless method, URI and version lie as libmicrohttpd leaves a request line without a NUL
 * of its own: the method, its terminator, spaces, the URI (uri_len bytes), its terminator, the
 * version. Reads the bytes from the method to the URI's terminator and nothing after it.
 */
bool errinj__request_line_has_nul(const struct errinj__request_line *line, const char *method, const char *version);

/*
 * Checks the request once its head is complete (the access handler's first call, with its method
 * and version). Returns 0, or the status to answer (400, 501) with a static reason in *why.
 */
int errinj__framing_check(struct MHD_Connection *conn, const struct errinj__request_line *line, const char *method,
                          const char *version, const char **why);

#endif
