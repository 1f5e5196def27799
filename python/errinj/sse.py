"""An incremental Server-Sent Events parser (WHATWG HTML, "Interpreting an event stream").

aiohttp's ``StreamReader`` splits lines on LF only, while SSE lines may end in LF, CR or CRLF and
a network chunk may end anywhere (inside a line, inside a UTF-8 sequence, between the CR and the
LF of a CRLF). So the client feeds raw chunks here and this parser does the splitting: it keeps the
unfinished tail in bytes, decodes only complete lines, and remembers a trailing CR so that an LF at
the start of the next chunk is not read as an empty line (which would end an event early).
"""

from __future__ import annotations

import re
from typing import List, NamedTuple, Optional, Union

_LINE_END = re.compile(rb"[\r\n]")
_CR = 0x0D
_LF = 0x0A


class SSEEvent(NamedTuple):
    """One dispatched event: ``event`` is the type ("message" when the frame had no ``event:``),
    ``data`` the ``data:`` lines joined by LF, ``id`` the last event ID at dispatch ("" if none)."""
    event: str
    data: str
    id: str


class SSEComment(NamedTuple):
    """A comment line (``: text``), with one leading space dropped."""
    text: str


SSEItem = Union[SSEEvent, SSEComment]


class SSEParser:
    """Feed it bytes with ``feed()``; it returns the comments and events those bytes completed.

    ``last_event_id`` persists across events, as the ``id`` field does in SSE; ``retry`` holds the
    last ``retry:`` value in milliseconds, or None. An event still unfinished when the stream ends is
    never returned (use a new parser for a new connection).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._after_cr = False      # the previous chunk ended with CR: a leading LF belongs to it
        self._first_line = True     # a UTF-8 byte order mark may open the stream
        self._data: List[str] = []
        self._has_data = False
        self._event = ""
        self.last_event_id = ""
        self.retry: Optional[int] = None

    def feed(self, chunk: bytes) -> List[SSEItem]:
        out: List[SSEItem] = []
        if not chunk:
            return out
        buf = self._buf
        buf += chunk
        pos = 0
        if self._after_cr:
            self._after_cr = False
            if buf[0] == _LF:
                pos = 1
        end = len(buf)
        while pos < end:
            m = _LINE_END.search(buf, pos)
            if m is None:
                break
            eol = m.start()
            line = bytes(buf[pos:eol])
            if buf[eol] == _CR:
                if eol + 1 < end:
                    pos = eol + 2 if buf[eol + 1] == _LF else eol + 1
                else:
                    pos = eol + 1
                    self._after_cr = True
            else:
                pos = eol + 1
            self._line(line, out)
        del buf[:pos]
        return out

    def _line(self, raw: bytes, out: List[SSEItem]) -> None:
        text = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if not text:
            self._dispatch(out)
            return
        if text[0] == ":":
            comment = text[1:]
            out.append(SSEComment(comment[1:] if comment.startswith(" ") else comment))
            return
        name, colon, value = text.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value and all("0" <= c <= "9" for c in value):
                self.retry = int(value)
        # Other field names are ignored, as the SSE rules say.

    def _dispatch(self, out: List[SSEItem]) -> None:
        if self._has_data:
            out.append(SSEEvent(self._event or "message", "\n".join(self._data), self.last_event_id))
        self._data = []
        self._has_data = False
        self._event = ""
