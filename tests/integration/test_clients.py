"""Third-party SSE clients read the stream: curl -N, and npm eventsource@4 (the WHATWG
EventSource API on Node), including its reconnect with Last-Event-ID after a dropped
connection. The connection is dropped by a small TCP proxy between the client and the server,
which also shows what the client sent on the wire."""
import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, PREFIX, enable, open_stream, rest

NODE_DIR = Path(__file__).resolve().parent / "node"



# ---- curl ---------------------------------------------------------------------------------------

async def read_line(stream, timeout=DEADLINE) -> str:
    raw = await asyncio.wait_for(stream.readline(), timeout)
    if not raw:
        raise EOFError("process closed its output")
    return raw.decode()


async def test_curl_reads_connected_comment_and_an_event(host, http):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    h = await host()
    await enable(http, h, "via_curl")
    proc = await asyncio.create_subprocess_exec(
        curl, "-sS", "-N", "-i", "--max-time", "60", h.url("/events"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        head = []
        while (line := await read_line(proc.stdout)) != "\r\n":
            head.append(line.strip())
        assert head[0].startswith("HTTP/1.1 200"), head
        lowered = [x.lower() for x in head]
        assert "content-type: text/event-stream" in lowered and "cache-control: no-cache" in lowered, head
        assert await read_line(proc.stdout) == ": connected\n"
        assert await read_line(proc.stdout) == "\n"
        await h.fire("via_curl")
        assert await read_line(proc.stdout) == "id: 1\n"
        data = await read_line(proc.stdout)
        assert data.startswith("data: ")
        ev = json.loads(data[len("data: "):])
        assert ev["injection"] == "via_curl" and ev["seq"] == 1, ev
        assert await read_line(proc.stdout) == "\n"
    finally:
        proc.kill()
        await proc.wait()


async def test_curl_upload_of_1_mib_is_accepted_and_1_mib_plus_1_is_413(host, http, tmp_path):
    """curl sends large bodies after `Expect: 100-continue`; the limit holds either way."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    h = await host()
    results = {}
    for size in (1024 * 1024, 1024 * 1024 + 1):
        body = tmp_path / f"body-{size}.json"
        body.write_bytes(b'{"k":"' + b"b" * (size - 8) + b'"}')
        proc = await asyncio.create_subprocess_exec(
            curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", f"@{body}",
            h.url(f"/injection/size{size}"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
        results[size] = out.decode()
    assert results == {1024 * 1024: "200", 1024 * 1024 + 1: "413"}, results
    assert (await rest(http, "GET", h, "/injection")).json() == [f"size{1024 * 1024}"]


# ---- npm eventsource@4 -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def eventsource_script():
    """The node script, with eventsource@4 installed in tests/integration/node/node_modules
    (npm ci from package-lock.json when missing); skips when that cannot be done."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "eventsource" / "package.json").exists():
        if npm is None:
            pytest.skip("eventsource@4 is not installed in tests/integration/node and npm is missing")
        try:
            done = subprocess.run([npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
                                  capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci in tests/integration/node timed out (no network?)")
        if done.returncode != 0:
            pytest.skip(f"npm ci in tests/integration/node failed (no network?): {done.stderr.strip()[-500:]}")
    return [node, str(NODE_DIR / "es_client.mjs")]


class NodeClient:
    def __init__(self, proc):
        self.proc = proc
        self.seen = []

    @classmethod
    async def start(cls, argv, url):
        proc = await asyncio.create_subprocess_exec(*argv, url, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def next(self, kind, timeout=DEADLINE) -> dict:
        """The next line of the given kind; lines of other kinds are kept in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), max(left, 0.0))
            except asyncio.TimeoutError:
                pytest.fail(f"node client printed no {kind!r} within {timeout}s; saw {self.seen}")
            if not raw:
                err = (await self.proc.stderr.read()).decode()
                pytest.fail(f"node client exited; saw {self.seen}; stderr: {err}")
            msg = json.loads(raw)
            self.seen.append(msg)
            if msg["kind"] == kind:
                return msg

    async def close(self):
        if self.proc.returncode is None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), DEADLINE)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class DroppingProxy:
    """Forwards TCP connections to the server; remembers what each client sent first (its
    request head) and can cut a connection as a network failure would."""

    def __init__(self, port):
        self.target_port = port
        self.server = None
        self.connections = []   # (client_writer, upstream_writer, request_bytes)
        self.new_connection = asyncio.Event()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, client_reader, client_writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        request = bytearray()
        self.connections.append((client_writer, up_writer, request))
        self.new_connection.set()

        async def pump(reader, writer, record=None):
            try:
                while chunk := await reader.read(65536):
                    if record is not None:
                        record += chunk
                    writer.write(chunk)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, up_writer, request), pump(up_reader, client_writer))

    def drop(self, index):
        client_writer, up_writer, _ = self.connections[index]
        client_writer.transport.abort()
        up_writer.transport.abort()

    def request_headers(self, index) -> dict:
        head = bytes(self.connections[index][2]).split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}

    async def close(self):
        for i in range(len(self.connections)):
            self.drop(i)
        self.server.close()
        await self.server.wait_closed()


def check_message(msg, injection):
    """onmessage saw an unnamed event whose lastEventId is the event's seq."""
    assert msg["type"] == "message", msg
    ev = json.loads(msg["data"])
    assert ev["injection"] == injection, ev
    assert msg["lastEventId"] == str(ev["seq"]), msg
    return ev["seq"]


async def test_eventsource_onmessage_parses_events_and_last_event_id(host, http, eventsource_script):
    h = await host()
    await enable(http, h, "es")
    watcher = await open_stream(h)
    node = await NodeClient.start(eventsource_script, h.url("/events"))
    try:
        await node.next("open")
        # `open` fires once the response headers arrive; ': connected' (the subscription) is
        # registered before them, so every fire from now on reaches the client.
        await h.fire("es", "enter", 3)
        seqs = [check_message(await node.next("message"), "es") for _ in range(3)]
        assert seqs == [1, 2, 3]
        assert [e.seq for e in await watcher.events(3)] == [1, 2, 3]
        assert not any(m["kind"] == "error" for m in node.seen), node.seen
    finally:
        await node.close()
        await watcher.aclose()


async def test_eventsource_gets_overflow_as_a_named_event_not_a_message(host, http, eventsource_script):
    h = await host(history=4)
    await enable(http, h, "es")
    watcher = await open_stream(h)
    await h.fire("es", "enter", 10)
    # Read the watcher up to seq 10 so the history surely holds 7..10.
    while True:
        item = await watcher.next_event()
        if not item.is_overflow and item.seq == 10:
            break
    node = await NodeClient.start(eventsource_script, h.url("/events?since=0"))
    try:
        overflow = await node.next("overflow")
        assert json.loads(overflow["data"]) == {"dropped": 6, "next_seq": 7}, overflow
        seqs = [check_message(await node.next("message"), "es") for _ in range(4)]
        assert seqs == [7, 8, 9, 10]
        before_overflow = node.seen[:node.seen.index(overflow)]
        assert not any(m["kind"] == "message" for m in before_overflow), node.seen
    finally:
        await node.close()
        await watcher.aclose()


async def test_eventsource_reconnects_with_last_event_id_and_misses_nothing(host, http, eventsource_script):
    h = await host()
    await enable(http, h, "es")
    proxy = DroppingProxy(h.port)
    proxy_port = await proxy.start()
    node = await NodeClient.start(eventsource_script, f"http://127.0.0.1:{proxy_port}{PREFIX}/events")
    try:
        await node.next("open")
        await h.fire("es", "enter", 3)
        seqs = [check_message(await node.next("message"), "es") for _ in range(3)]
        assert "last-event-id" not in proxy.request_headers(0)
        proxy.new_connection.clear()
        proxy.drop(0)
        await node.next("error")
        await h.fire("es", "enter", 2)                 # 4, 5 while the client is away
        # eventsource@4 waits its default retry (3 s) before reconnecting.
        await asyncio.wait_for(proxy.new_connection.wait(), DEADLINE)
        await node.next("open")
        assert proxy.request_headers(1).get("last-event-id") == "3", proxy.request_headers(1)
        request = next(m for m in reversed(node.seen) if m["kind"] == "request")
        assert request["headers"].get("Last-Event-ID") == "3", request
        seqs += [check_message(await node.next("message"), "es") for _ in range(2)]
        await h.fire("es")                               # 6, live
        seqs.append(check_message(await node.next("message"), "es"))
        assert seqs == [1, 2, 3, 4, 5, 6], seqs
    finally:
        await node.close()
        await proxy.close()
