/*
 * history.c - the store of kept events (see history.h): a ring of finished SSE frames indexed
 * by seq, evicted by count and by bytes.
 *
 * Each event's frame is made once, by the server thread, and kept here; every stream, wait and
 * session is just a cursor into this ring, so fan-out costs a memcpy per client and nothing per
 * client on the firing side. The store is plain data with no lock and no socket, so it is tested
 * on its own (tests/unit/test_history.c).
 */
#include "history.h"

#include "errinj.h"
#include "registry.h" /* the frames' references to their entries */

#include <stdlib.h>

struct frame_text *errinj__frame_text_new(char *bytes, size_t len)
{
    struct frame_text *t = malloc(sizeof(*t));
    if (t == NULL) {
        free(bytes);
        return NULL;
    }
    *t = (struct frame_text){1, len, bytes};
    return t;
}

void errinj__frame_text_unref(struct frame_text *t)
{
    if (t != NULL && --t->refs == 0) {
        free(t->bytes);
        free(t);
    }
}

int errinj__history_init(struct errinj__history *h, size_t cap, size_t bytes_max, uint64_t after_seq)
{
    *h = (struct errinj__history){.cap = cap, .bytes_max = bytes_max, .oldest = after_seq + 1, .newest = after_seq};
    h->frames = calloc(cap, sizeof(*h->frames));
    return h->frames != NULL ? 0 : ERRINJ_ENOMEM;
}

void errinj__history_fini(struct errinj__history *h)
{
    for (size_t i = 0; h->frames != NULL && i < h->cap; i++) {
        errinj__frame_text_unref(h->frames[i].text);
        errinj__entry_unref(h->frames[i].entry);
    }
    free(h->frames);
    h->frames = NULL;
}

static struct frame *slot(struct errinj__history *h, uint64_t seq)
{
    return &h->frames[seq % h->cap];
}

static void evict_oldest(struct errinj__history *h)
{
    struct frame *f = slot(h, h->oldest);
    h->bytes -= f->len;
    errinj__frame_text_unref(f->text);
    errinj__entry_unref(f->entry); /* a run-time name's entry may be freed once no frame has it */
    *f = (struct frame){0};
    h->oldest++;
}

void errinj__history_store(struct errinj__history *h, uint64_t seq, const struct frame *in)
{
    if (seq <= h->newest) {
        errinj__frame_text_unref(in->text);
        errinj__entry_unref(in->entry);
        return;
    }
    /* Seqs between newest and seq were published before the ring was attached or lost. */
    while (h->newest + 1 < seq) {
        if (h->newest + 1 - h->oldest >= h->cap)
            evict_oldest(h);
        *slot(h, ++h->newest) = (struct frame){0};
    }
    while (h->newest + 1 - h->oldest >= h->cap || (h->oldest <= h->newest && h->bytes + in->len > h->bytes_max))
        evict_oldest(h);
    *slot(h, seq) = *in;
    h->bytes += in->len;
    h->newest = seq;
}
