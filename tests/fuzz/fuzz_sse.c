/*
 * fuzz_sse.c - libFuzzer driver for the CLI's incremental SSE parser (cli/sse.c).
 *
 * libcurl hands the parser chunks cut anywhere, so the parser must give the same transcript
 * (events, comments, last event id, retry, error) whatever the cuts. Each input is parsed three
 * ways, whole, one byte at a time, and in chunks whose sizes come from the input, and the three
 * transcripts must be equal. The first two bytes of the input choose the chunk sizes and a small
 * max_line (so SSE_ETOOLONG paths run); the rest is the stream.
 */
#include "sse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct transcript {
    char *text;
    size_t len, cap;
};

static void append(struct transcript *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *grown = realloc(t->text, cap);
        if (grown == NULL)
            abort();
        t->text = grown;
        t->cap = cap;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

static int on_event(void *arg, const sse_event *ev)
{
    struct transcript *t = arg;
    if (ev->type == NULL || ev->data == NULL || ev->id == NULL || ev->data[ev->data_len] != '\0')
        abort();
    append(t, "E", 1);
    append(t, ev->type, strlen(ev->type));
    append(t, "|", 1);
    append(t, ev->data, ev->data_len);
    append(t, "|", 1);
    append(t, ev->id, strlen(ev->id));
    append(t, "\n", 1);
    return 0;
}

static int on_comment(void *arg, const char *text, size_t len)
{
    struct transcript *t = arg;
    if (text[len] != '\0')
        abort();
    append(t, "C", 1);
    append(t, text, len);
    append(t, "\n", 1);
    return 0;
}

/* Parses data with chunk sizes from `sizes` (cycled; 0 = whole) and returns the transcript. */
static struct transcript parse(const uint8_t *data, size_t size, size_t max_line, const uint8_t *sizes, size_t nsizes)
{
    struct transcript t = {0};
    sse_parser p;
    sse_parser_init(&p, on_event, on_comment, &t, max_line);
    int rc = 0;
    size_t off = 0, k = 0;
    while (off < size && rc == 0) {
        size_t n = nsizes == 0 ? size - off : (size_t)sizes[k++ % nsizes] % 17 + 1;
        if (n > size - off)
            n = size - off;
        rc = sse_parser_feed(&p, (const char *)data + off, n);
        off += n;
    }
    int fin = sse_parser_finish(&p);
    char tail[128];
    int m = snprintf(tail, sizeof(tail), "rc=%d finish=%d id=%s retry=%ld\n", rc, fin,
                     strlen(sse_parser_last_event_id(&p)) < 64 ? sse_parser_last_event_id(&p) : "(long)",
                     sse_parser_retry_ms(&p));
    append(&t, tail, (size_t)m);
    append(&t, sse_parser_last_event_id(&p), strlen(sse_parser_last_event_id(&p)));
    sse_parser_free(&p);
    return t;
}

static void compare(const struct transcript *a, const struct transcript *b, const char *what)
{
    if (a->len != b->len || memcmp(a->text, b->text, a->len) != 0) {
        fprintf(stderr, "fuzz_sse: %s differs from whole:\n--- whole ---\n%.*s\n--- %s ---\n%.*s\n", what,
                (int)(a->len < 2000 ? a->len : 2000), a->text, what, (int)(b->len < 2000 ? b->len : 2000), b->text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] & 1 ? 16 + data[1] : 0; /* 0: the default (4 MiB) */
    const uint8_t one = 0;
    struct transcript whole = parse(data + 2, size - 2, max_line, NULL, 0);
    struct transcript bytes = parse(data + 2, size - 2, max_line, &one, 1);
    struct transcript chunks = parse(data + 2, size - 2, max_line, data, size < 10 ? size : 10);
    compare(&whole, &bytes, "byte at a time");
    compare(&whole, &chunks, "chunked");
    free(whole.text);
    free(bytes.text);
    free(chunks.text);
    return 0;
}
