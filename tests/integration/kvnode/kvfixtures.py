"""Fixtures for the end-to-end suites (imported by the test modules; not a conftest.py, whose
module name would clash with tests/integration/conftest.py): real kvnode processes, a line-protocol client, and the
errinj Python client pointed at them. Every wait has a deadline; nothing sleeps to synchronise."""

import asyncio
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests" / "pylib"))

from kvdriver import DEADLINE, KVNode, start_kvnode  # noqa: E402 (the kvnode driver, shared with cli/tests)


@pytest.fixture
async def kvnodes(tmp_path):
    """A factory of kvnode processes; each is stopped with SIGTERM at teardown and must exit 0."""
    started = []

    async def make(name: str = None, **kw) -> KVNode:
        node = await start_kvnode(tmp_path, name or f"node{len(started) + 1}", **kw)
        started.append(node)
        return node

    yield make
    for node in started:
        if node.proc.returncode is None:
            rc = await node.stop()
            assert rc == 0, f"kvnode exited {rc}: {(await node.proc.stderr.read()).decode()[-2000:]}"


@pytest.fixture
async def kvnode(kvnodes):
    return await kvnodes()


@pytest.fixture
async def api(errinj_api):
    """A RESTClient from errinj's pytest plugin, which reports the injections a test enabled but
    never reached (and closes the client)."""
    return errinj_api()


class KVClient:
    """The line protocol: one request, one reply line."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def call(self, line: str, timeout: float = DEADLINE) -> str:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()
        reply = await asyncio.wait_for(self.reader.readline(), timeout)
        return reply.decode().rstrip("\r\n")

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def reply(self, timeout: float = DEADLINE) -> str:
        return (await asyncio.wait_for(self.reader.readline(), timeout)).decode().rstrip("\r\n")

    async def close(self):
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
async def connect():
    """A factory of line-protocol connections to a kvnode."""
    clients = []

    async def make(node: KVNode) -> KVClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(node.ip, node.port), DEADLINE)
        client = KVClient(reader, writer)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


def wait_for_log(log: Path, pattern: str, start: int = 0, timeout: float = DEADLINE):
    """ScyllaDB's test/pylib/log_browsing.py, as tests use it today: read new lines, sleep 10 ms
    at the end of the file, match a regex. Returns (match, offset after the line)."""
    import time
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    with open(log, "r", errors="replace") as f:
        f.seek(start)
        while True:
            at = f.tell()
            line = f.readline()
            if line.endswith("\n"):
                if rx.search(line):
                    return line, f.tell()
                continue
            f.seek(at)  # a line still being written: read it whole next time
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not found in {log}")
            time.sleep(0.01)  # allow-sleep: this is the log-parsing method being measured
