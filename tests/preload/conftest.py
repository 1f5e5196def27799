"""Fixtures for the errinj-run tests: programs nobody here wrote (sqlite3, redis-server, cp) and a
small driver, each run under build/preload/errinj-run on a free loopback port.

A program is started with `started(argv)`: it waits until errinj's API inside the program answers
`/status`, then the test opens the event stream (errinj's Python client), enables libc points over
REST, makes the program act, waits for the event, and checks what the program did. Nothing waits
with a fixed sleep: every wait is on output, an event, or a bounded poll with a deadline. Every
process a test starts is killed at teardown if it is still running.
"""
import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import List, Optional

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

BUILD = Path(os.environ.get("ERRINJ_BUILD_DIR") or REPO / "build")
ERRINJ_RUN = Path(os.environ.get("ERRINJ_RUN") or BUILD / "preload" / "errinj-run")
DRIVER = Path(os.environ.get("ERRINJ_PRELOAD_DRIVER") or BUILD / "tests" / "preload" / "errinj-preload-driver")
ERRINJCTL = Path(os.environ.get("ERRINJ_ERRINJCTL") or BUILD / "cli" / "errinjctl")
DEADLINE = float(os.environ.get("ERRINJ_TEST_DEADLINE", "20"))
PREFIX = "/v2/error_injection"


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick, released for the program)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Program:
    """One program under errinj-run, with its API port, output and REST helpers."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, argv: List[str]):
        self.proc = proc
        self.port = port
        self.argv = argv
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._readers = []
        self._lines: asyncio.Queue = asyncio.Queue()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_reading(self, line_queue: bool):
        async def pump(stream, buf, queue):
            while True:
                chunk = await stream.readline()
                if not chunk:
                    break
                buf.extend(chunk)
                if queue is not None:
                    queue.put_nowait(chunk.decode(errors="replace").rstrip("\n"))
        if self.proc.stdout is not None:
            self._readers.append(asyncio.create_task(pump(self.proc.stdout, self.stdout,
                                                          self._lines if line_queue else None)))
        if self.proc.stderr is not None:
            self._readers.append(asyncio.create_task(pump(self.proc.stderr, self.stderr, None)))

    async def line(self, prefix: str, timeout: float = DEADLINE) -> str:
        """The next stdout line that starts with prefix (earlier lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{self.argv[0]}: no line starting {prefix!r}; stdout {bytes(self.stdout)!r}, "
                            f"stderr {bytes(self.stderr)!r}")
            try:
                got = await asyncio.wait_for(self._lines.get(), left)
            except asyncio.TimeoutError:
                continue
            if got.startswith(prefix):
                return got

    async def send(self, text: str):
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def request(self, method: str, path: str, **kw):
        async with aiohttp.ClientSession() as s:
            async with s.request(method, self.url + PREFIX + path, **kw) as r:
                return r.status, await r.text()

    async def enable(self, name: str, one_shot: bool = False, **params):
        status, body = await self.request("POST", f"/injection/{name}", params={"one_shot": str(one_shot)},
                                          json={k: str(v) for k, v in params.items()})
        assert status == 200, f"enable {name} {params}: {status} {body}"

    async def wait_exit(self, timeout: float = DEADLINE) -> int:
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"{self.argv} did not exit within {timeout}s; stderr {bytes(self.stderr)!r}")
        await asyncio.gather(*self._readers, return_exceptions=True)
        return rc


async def wait_for_api(program: Program, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        if program.proc.returncode is not None:
            pytest.fail(f"{program.argv} exited {program.proc.returncode} before its API answered; "
                        f"stderr {bytes(program.stderr)!r}")
        try:
            status, _ = await program.request("GET", "/status")
            if status == 200:
                return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"errinj API of {program.argv} did not answer within {timeout}s")
        await asyncio.sleep(0.02)  # allow-sleep: the interval of a bounded poll


@pytest.fixture
async def started(tmp_path):
    """started(argv, env=None, stdin=True, lines=False) -> Program, its API answering."""
    programs: List[Program] = []

    async def start(argv, env: Optional[dict] = None, stdin: bool = True, lines: bool = False,
                    port: Optional[int] = None, cwd=None, wait_api: bool = True) -> Program:
        if not ERRINJ_RUN.exists():
            pytest.fail(f"errinj-run not found at {ERRINJ_RUN}: build it, or set ERRINJ_RUN")
        port = port or free_port()
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.pop("ERRINJ_HTTP", None)
        full_env.setdefault("ERRINJ_PRELOAD", str(ERRINJ_RUN.parent / "liberrinj-preload.so"))
        cmd = [str(ERRINJ_RUN), "--listen", f"127.0.0.1:{port}", "--", *map(str, argv)]
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=full_env, cwd=cwd or tmp_path,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        program = Program(proc, port, [str(a) for a in argv])
        program.start_reading(lines)
        programs.append(program)
        if wait_api:
            await wait_for_api(program)
        return program

    yield start
    for p in programs:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()
        for t in p._readers:
            t.cancel()


def detail_of(event: dict) -> dict:
    assert "detail" in event, f"event without detail: {event}"
    d = event["detail"]
    assert set(d) >= {"function", "fd", "path", "size"}, d
    return d
