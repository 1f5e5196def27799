"""The SSE reader of the integration suites: a raw HTTP/1.1 client of
``GET /v2/error_injection/events`` that decodes the chunked body itself and splits it into SSE
blocks, keeping the exact bytes of each, so a test sees what the server sent (and can shrink its
receive buffer to play a slow client) without trusting any SSE library. errinj's own parser for
clients is python/errinj/sse.py; this one is deliberately separate, so the server's framing is
checked against an independent reading of the SSE rules.

``open_stream(h, query)`` opens a stream to a test host (see testhost.py) or to any ``port``;
``SSEStream.next_event()``/``events(n)`` read events with deadlines; ``check_contiguous`` checks
that events and overflow notices account for every seq once.
"""
import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

import pytest

from testhost import DEADLINE, PREFIX


@dataclass
class SSEItem:
    """One SSE block: an event (id/event/data fields) or a block of comments only."""
    raw: bytes
    comments: list = field(default_factory=list)
    id: Optional[str] = None
    event: Optional[str] = None
    data: Optional[str] = None

    @property
    def is_comment(self) -> bool:
        return self.id is None and self.event is None and self.data is None

    @property
    def is_overflow(self) -> bool:
        return self.event == "overflow"

    def json(self):
        return json.loads(self.data)

    @property
    def seq(self) -> int:
        return self.json()["seq"]


def parse_block(raw: bytes) -> SSEItem:
    """Parses one SSE block (WHATWG rules: ':' comment, one space after the colon dropped,
    data lines joined with LF)."""
    item = SSEItem(raw=raw)
    data_lines = []
    for line in raw.decode("utf-8").split("\n"):
        if line == "":
            continue
        if line.startswith(":"):
            item.comments.append(line[1:].removeprefix(" "))
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            item.id = value
        elif name == "event":
            item.event = value
        elif name == "data":
            data_lines.append(value)
    if data_lines:
        item.data = "\n".join(data_lines)
    return item


class SSEStream:
    """A raw HTTP/1.1 client for GET /events: decodes chunked transfer encoding itself and
    parses the SSE body block by block, keeping the exact bytes of each block."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.status = None
        self.headers = {}
        self.body = b""        # the whole body of a non-200 reply
        self._buf = bytearray()  # decoded body bytes not yet parsed
        self._chunked = False
        self.eof = False
        self.clean_end = False   # the chunked body ended with its terminating chunk

    async def _read_head(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                self.headers[k.strip().lower()] = v.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if self.status != 200:
            if "content-length" in self.headers:
                self.body = await self.reader.readexactly(int(self.headers["content-length"]))
            else:
                while await self._fill():
                    pass
                self.body = bytes(self._buf)

    async def _fill(self) -> bool:
        """Reads the next piece of body into _buf; False at end of stream."""
        if self.eof:
            return False
        try:
            if self._chunked:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers: the final CRLF
                    self.eof = True
                    self.clean_end = True
                    return False
                self._buf += await self.reader.readexactly(size)
                crlf = await self.reader.readexactly(2)
                assert crlf == b"\r\n", f"bad chunk end {crlf!r}"
            else:
                piece = await self.reader.read(65536)
                if not piece:
                    self.eof = True
                    self.clean_end = True
                    return False
                self._buf += piece
        except (asyncio.IncompleteReadError, ConnectionResetError):
            self.eof = True
            return False
        return True

    async def read_raw(self, n: int, timeout: float = DEADLINE) -> bytes:
        """Exactly the next n body bytes."""
        async def go():
            while len(self._buf) < n:
                if not await self._fill():
                    raise EOFError(f"stream ended after {bytes(self._buf)!r}")
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out
        return await asyncio.wait_for(go(), timeout)

    async def next(self, timeout: float = DEADLINE) -> SSEItem:
        """The next block, comment or event. EOFError when the stream ends."""
        async def go():
            while True:
                end = self._buf.find(b"\n\n")
                if end >= 0:
                    raw = bytes(self._buf[:end + 2])
                    del self._buf[:end + 2]
                    return parse_block(raw)
                if not await self._fill():
                    raise EOFError(f"stream ended; unparsed rest {bytes(self._buf)!r}")
        try:
            return await asyncio.wait_for(go(), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"no SSE block within {timeout}s")

    async def expect_connected(self, timeout: float = DEADLINE):
        """errinj-events(7), THE STREAM: the first body bytes are exactly ': connected\\n\\n'."""
        first = await self.read_raw(len(b": connected\n\n"), timeout)
        assert first == b": connected\n\n", f"first bytes {first!r}"

    async def next_event(self, timeout: float = DEADLINE) -> SSEItem:
        """The next event or overflow notice, skipping comments (heartbeats)."""
        deadline = time.monotonic() + timeout
        while True:
            item = await self.next(max(0.0, deadline - time.monotonic()))
            if not item.is_comment:
                return item

    async def events(self, count: int, timeout: float = DEADLINE) -> list:
        """The next count events (comments skipped); fails on an unexpected overflow."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            item = await self.next_event(max(0.0, deadline - time.monotonic()))
            assert not item.is_overflow, f"unexpected overflow {item.raw!r} after {[e.seq for e in out]}"
            out.append(item)
        return out

    async def wait_eof(self, timeout: float = DEADLINE):
        """Reads (and discards) until the stream ends."""
        async def go():
            while await self._fill():
                pass
        try:
            await asyncio.wait_for(go(), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"stream did not end within {timeout}s")

    def close(self):
        if not self.writer.is_closing():
            self.writer.close()

    async def aclose(self):
        self.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def open_stream(h, query: str = "", *, headers=None, token=None, rcvbuf=None,
                      read_limit: int = 2 ** 20, connected: bool = True, port=None,
                      address: str = "127.0.0.1", timeout: float = DEADLINE) -> SSEStream:
    """Opens GET /events?query. With connected=True (the default) it also checks the status and
    headers of a stream and consumes ': connected', after which every fire reaches the stream.
    rcvbuf sets SO_RECV before connecting (a slow client); read_limit bounds what asyncio buffers
    before it stops reading the socket. h is anything with a ``port`` (or pass ``port``);
    ``address`` is the server's (an IPv6 one is bracketed in the Host header)."""
    port = port or h.port
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (address, port)), timeout)
    reader, writer = await asyncio.open_connection(sock=sock, limit=read_limit)
    hdrs = {"Host": f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}",
            "Accept": "text/event-stream"}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    target = PREFIX + "/events" + (f"?{query}" if query else "")
    request = f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    writer.write(request.encode())
    await writer.drain()
    s = SSEStream(reader, writer)
    await asyncio.wait_for(s._read_head(), timeout)
    if connected:
        assert s.status == 200, f"events answered {s.status}: {s.body!r}"
        await s.expect_connected(timeout)
    return s


def check_contiguous(items: list, first: int, last: int):
    """A stream's events and overflow notices account for every seq from first to last exactly
    once, in order: each event is the next seq, or an overflow says how many were skipped."""
    expect = first
    overflows = 0
    for item in items:
        if item.is_overflow:
            note = item.json()
            assert note["next_seq"] == expect + note["dropped"], f"overflow {note} when expecting seq {expect}"
            expect = note["next_seq"]
            overflows += 1
        else:
            assert int(item.id) == item.seq == expect, f"got seq {item.seq} (id {item.id}), expected {expect}"
            expect += 1
    assert expect == last + 1, f"stream ended at seq {expect - 1}, expected {last}"
    return overflows
