"""The raw WebSocket client of the integration suites (RFC 6455), for GET /v2/error_injection/ws: it writes exactly the frames a test builds
(masked or not, any opcode, any length, fragments) and reads the server's frames as they come,
so that malformed input can be sent and the server's close codes read without trusting a
WebSocket library to refuse or repair them."""
import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
from typing import Optional, Tuple

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def masked_fast(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked frame with a zero key (payload unchanged): for large payloads."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + b"\0\0\0\0" + payload


class RawWS:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes):
        self.reader = reader
        self.writer = writer
        self.head = head

    @classmethod
    async def connect(cls, port: int, query: str = "", headers: Optional[dict] = None, rcvbuf: Optional[int] = None,
                      expect: int = 101, limit: int = 1 << 22) -> "RawWS":
        """Opens a session; `limit` bounds what asyncio reads ahead of the test (it buffers up to
        twice that before it stops reading the socket)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": key}
        hdrs.update(headers or {})
        req = f"GET /v2/error_injection/ws{query} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None) + "\r\n"
        writer.write(req.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        ws = cls(reader, writer, head)
        status = int(head.split(b" ", 2)[1])
        assert status == expect, head
        if status == 101:
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert ws.header("sec-websocket-accept") == accept, head
        return ws

    def header(self, name: str) -> Optional[str]:
        for line in self.head.decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    async def body(self) -> bytes:
        n = int(self.header("content-length") or 0)
        return await asyncio.wait_for(self.reader.readexactly(n), 20)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self.send(frame(TEXT, text.encode()))

    async def send_json(self, value) -> None:
        await self.send_text(json.dumps(value))

    async def recv_frame(self, timeout: float = 20) -> Tuple[int, bytes]:
        async def go():
            b0, b1 = await self.reader.readexactly(2)
            assert not b1 & 0x80, "server frames must not be masked"
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return b0 & 0x0F, await self.reader.readexactly(n)
        return await asyncio.wait_for(go(), timeout)

    async def recv_json(self, timeout: float = 20):
        """The next text message as JSON (pings are answered and skipped)."""
        while True:
            op, payload = await self.recv_frame(timeout)
            if op == PING:
                await self.send(frame(PONG, payload))
                continue
            assert op == TEXT, (op, payload[:200])
            return json.loads(payload)

    async def reply(self, cid, timeout: float = 20):
        """The reply with id cid, skipping events."""
        while True:
            msg = await self.recv_json(timeout)
            if msg.get("id") == cid and "ok" in msg:
                return msg

    async def expect_close(self, timeout: float = 20) -> Tuple[int, str]:
        """Reads until the server's close frame; returns its code and reason."""
        while True:
            op, payload = await self.recv_frame(timeout)
            if op == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return code, payload[2:].decode(errors="replace")

    async def expect_eof(self, timeout: float = 20) -> None:
        async def go():
            while await self.reader.read(65536):
                pass
        await asyncio.wait_for(go(), timeout)

    def close(self) -> None:
        self.writer.close()
