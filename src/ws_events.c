/*
 * ws_events.c - the events a WebSocket session is sent: those past its cursor that pass its
 * filters (the same JSON text the SSE stream sends, from the history's frames), and an overflow
 * notice {"overflow":{"dropped":D,"next_seq":S}} where the history moved past what it had not
 * sent yet. Event frames, the bulk of what goes out and the simplest frame there is (unmasked,
 * one text frame), are written straight into the session's output buffer when libwslay has
 * nothing in flight (emit_text says why).
 */
#include "ws_session.h"

#include "registry.h"

#include <stdio.h>
#include <string.h>

/*
 * Puts one text message on its way: straight into the output buffer as an unmasked frame when
 * libwslay has nothing in flight (so that no two frames interleave), else through libwslay's
 * queue, which keeps the order. libwslay copies every message it queues into an allocation of its
 * own; for the fan-out of events that was an allocation, a copy and a free per event and session,
 * a third of the server thread's time at 100 sessions. False when the message has to wait for
 * room (the session's bound).
 */
static bool emit_text(struct errinj__ws_session *s, const char *text, size_t len)
{
    size_t head = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (!wslay_event_want_write(s->ctx)) {
        if (s->out_off > 0) {
            memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
            s->out_len -= s->out_off;
            s->out_off = 0;
        }
        if (sizeof(s->out) - s->out_len >= head + len) {
            unsigned char *o = (unsigned char *)s->out + s->out_len;
            o[0] = 0x80 | WSLAY_TEXT_FRAME;
            if (head == 2) {
                o[1] = (unsigned char)len;
            } else if (head == 4) {
                o[1] = 126;
                o[2] = (unsigned char)(len >> 8);
                o[3] = (unsigned char)len;
            } else {
                o[1] = 127;
                for (int i = 0; i < 8; i++)
                    o[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
            }
            memcpy(o + head, text, len);
            s->out_len += head + len;
            return true;
        }
        if (s->out_len > 0)
            return false; /* written out first, then this one */
    }
    if (wslay_event_get_queued_msg_length(s->ctx) >= ERRINJ__WS_QUEUE_MAX)
        return false;
    errinj__ws_session_queue_text(s, text, len); /* larger than the buffer, or behind what libwslay has */
    return true;
}

void errinj__ws_session_queue_events(struct errinj__ws_session *s, const struct errinj__history_view *h)
{
    if (s->lingering || !wslay_event_get_write_enabled(s->ctx) || wslay_event_get_close_sent(s->ctx))
        return;
    while (s->cursor < h->newest && !s->closed) {
        uint64_t skipped;
        uint64_t next = errinj__history_next(h, s->cursor, &skipped);
        if (skipped > 0) {
            char notice[96];
            int n = snprintf(notice, sizeof(notice), "{\"overflow\":{\"dropped\":%llu,\"next_seq\":%llu}}",
                             (unsigned long long)skipped, (unsigned long long)next);
            if (!emit_text(s, notice, (size_t)n))
                return;
            s->cursor = next - 1;
            continue;
        }
        const struct frame *fr = errinj__history_at(h, next);
        if (errinj__filter_passes(&s->filter, fr)) {
            size_t len;
            const char *json = errinj__frame_json(fr, &len);
            if (!emit_text(s, json, len))
                return;
        }
        s->cursor = next;
    }
}
