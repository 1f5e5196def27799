"""The WebSocket session with clients errinj did not write: npm ws@8 and the WebSocket of Debian's
headless Chromium (playwright-core), both through tests/integration/node/ws_bridge.mjs. Each
sends its token the only way a browser can (the subprotocol errinj.bearer.TOKEN), enables a
session injection, sees its event, and closes; the injection is then disabled."""
import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, rest

NODE_DIR = Path(__file__).resolve().parent / "node"


def bridge(kind):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: scripts/deps.sh installs nodejs")
    for package in ("ws", "playwright-core"):
        if not (NODE_DIR / "node_modules" / package / "package.json").exists():
            pytest.fail(f"{package} is not installed in tests/integration/node: run scripts/deps.sh")
    if kind == "browser" and not Path(os.environ.get("ERRINJ_CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.fail("chromium is missing: scripts/deps.sh installs Debian's chromium")
    return [node, str(NODE_DIR / "ws_bridge.mjs"), kind]


class Bridge:
    def __init__(self, proc):
        self.proc = proc
        self.seen = []

    @classmethod
    async def start(cls, argv, url, token):
        proc = await asyncio.create_subprocess_exec(*argv, url, token, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def next(self, kind, timeout=DEADLINE * 3, allow_error=False) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), max(deadline - time.monotonic(), 0.0))
            except asyncio.TimeoutError:
                pytest.fail(f"the client printed no {kind!r} within {timeout}s; saw {self.seen}")
            if not raw:
                err = (await self.proc.stderr.read()).decode()
                pytest.fail(f"the client exited; saw {self.seen}; stderr: {err[-2000:]}")
            msg = json.loads(raw)
            self.seen.append(msg)
            if msg["kind"] == "error" and not allow_error:
                pytest.fail(f"the client reported an error: {msg}; saw {self.seen}")
            if msg["kind"] == kind:
                return msg

    async def message(self) -> dict:
        msg = await self.next("message")
        assert msg["binary"] is False, msg
        return json.loads(msg["data"])

    async def send(self, value):
        self.proc.stdin.write((json.dumps(value) + "\n").encode())
        await self.proc.stdin.drain()

    async def close(self) -> dict:
        self.proc.stdin.close()
        closed = await self.next("close")
        await asyncio.wait_for(self.proc.wait(), DEADLINE * 3)
        return closed


@pytest.mark.parametrize("kind", ["ws", "browser"])
async def test_third_party_client_with_the_subprotocol_token(host, http, kind):
    argv = bridge(kind)
    h = await host(token="tok3n")
    client = await Bridge.start(argv, f"ws://127.0.0.1:{h.port}/v2/error_injection/ws?phase=all", "tok3n")
    try:
        opened = await client.next("open")
        assert opened["protocol"] == "errinj", opened
        await client.send({"id": 1, "op": "enable", "name": "from_client", "session": True,
                           "parameters": {"who": kind}})
        reply = await client.message()
        assert reply["id"] == 1 and reply["ok"] is True and isinstance(reply["seq"], int), reply
        assert (await rest(http, "GET", h, "/injection", token="tok3n")).json() == ["from_client"]
        await h.fire("from_client")
        event = await client.message()
        assert event["injection"] == "from_client" and event["parameters"] == {"who": kind}, event
        assert event["seq"] > reply["seq"]
        await client.send({"id": "x", "op": "nope"})
        refused = await client.message()
        assert refused == {"id": "x", "ok": False, "code": 400, "message": refused["message"]}, refused
        closed = await client.close()
        assert closed["code"] == 1000, closed
    finally:
        if client.proc.returncode is None:
            client.proc.kill()
            await client.proc.wait()
    assert (await rest(http, "GET", h, "/injection", token="tok3n")).json() == []


async def test_browser_without_the_token_is_refused(host, http):
    argv = bridge("browser")
    h = await host(token="tok3n")
    client = await Bridge.start(argv, f"ws://127.0.0.1:{h.port}/v2/error_injection/ws", "wrong")
    try:
        closed = await client.next("close", allow_error=True)
        assert closed["code"] == 1006, closed  # the handshake failed (401): no session
        assert not any(m["kind"] == "open" for m in client.seen), client.seen
    finally:
        client.proc.stdin.close()
        try:
            await asyncio.wait_for(client.proc.wait(), DEADLINE * 3)
        except asyncio.TimeoutError:
            client.proc.kill()
            await client.proc.wait()
