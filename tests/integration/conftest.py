"""Fixtures and helpers for the server's integration tests.

Each test starts its own errinj-testhost (tests/host/testhost.c), a process that links the
library, starts the HTTP server on a free loopback port and fires points on command. The
helpers here drive it over its stdin protocol, talk REST with aiohttp, and read the SSE
stream with a small raw-socket client of our own, so that the tests see the exact bytes the
server sends (and can shrink a client's receive buffer) without trusting any SSE library.

Nothing here waits with a fixed sleep: every wait is on output, an event, or a bounded poll
with a deadline. At teardown each host is asked to quit and must exit 0 within a deadline
with no sanitizer report on its stderr.
"""
import asyncio
import faulthandler
import functools
import inspect
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import aiohttp
from yarl import URL
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

# errinj's own pytest plugin (its fixtures and its coverage report), and pytester to run it on
# suites made up by the tests.
pytest_plugins = ["errinj.pytest_plugin", "pytester"]
PREFIX = "/v2/error_injection"

# Deadlines are upper bounds for things that normally take milliseconds; they are generous so
# that sanitizer builds (TSan runs several times slower) pass without making passing runs slower.
DEADLINE = float(os.environ.get("ERRINJ_TEST_DEADLINE", "20"))
EXIT_DEADLINE = 30.0
TEST_TIMEOUT_S = 120      # one test, fixtures excluded
TEST_HANG_GUARD_S = 300   # the whole process, as a last resort

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "runtime error", "ERROR: ThreadSanitizer")

# The compiled-in sites of the test host, with the type each reports.
HOST_SITES = {
    "site_sleep": "sleep",
    "site_exception": "exception",
    "site_lambda": "lambda",
    "site_handler": "handler",
    "site_enter": "enter",
    "site_wait": "handler",
}
ETIMEDOUT = -110  # ERRINJ_ETIMEDOUT is -ETIMEDOUT on Linux
HOST_SEED = "7"   # ERRINJ_SEED of every test host (the seed of enables that give none)


def find_testhost() -> Path:
    env = os.environ.get("ERRINJ_TESTHOST")
    if env:
        return Path(env)
    build = os.environ.get("ERRINJ_BUILD_DIR")
    candidates = [Path(build) / "tests" / "errinj-testhost"] if build else []
    candidates.append(REPO / "build" / "tests" / "errinj-testhost")
    for c in candidates:
        if c.exists():
            return c
    pytest.fail("errinj-testhost not found: set ERRINJ_TESTHOST to its path (cmake --build builds it)")


# ---- guards against hangs (no pytest-timeout on this machine) ------------------------------

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Fails an async test that runs longer than TEST_TIMEOUT_S instead of hanging the run.
    Registered after pytest-asyncio's wrapper, so it runs first and wraps the coroutine itself."""
    fn = pyfuncitem.obj
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def guarded(*args, **kwargs):
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                pytest.fail(f"test did not finish within {TEST_TIMEOUT_S}s")
        pyfuncitem.obj = guarded
    yield


@pytest.fixture(autouse=True)
def hang_guard():
    """Kills the run with every thread's traceback if something hangs past every other guard."""
    faulthandler.dump_traceback_later(TEST_HANG_GUARD_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---- bounded waiting ------------------------------------------------------------------------

async def poll_until(check: Callable, what: str, timeout: float = DEADLINE, interval: float = 0.02):
    """Calls check() (sync or async) until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last value {last!r}")
        await asyncio.sleep(interval)  # allow-sleep: the interval of a bounded poll, not a synchronisation


# ---- the test host --------------------------------------------------------------------------

class Host:
    """One errinj-testhost process. Commands are answered one line each, in order; `done ID RC`
    lines come from parked threads at any time and are routed to their own futures."""

    def __init__(self, proc: asyncio.subprocess.Process, argv):
        self.proc = proc
        self.argv = argv
        self.port: Optional[int] = None
        self.stderr = bytearray()
        self.stdout_log = []
        self._answers: asyncio.Queue = asyncio.Queue()
        self._done = {}
        self._port_future = asyncio.get_running_loop().create_future()
        self._lock = asyncio.Lock()
        self._quit_sent = False
        self.returncode: Optional[int] = None
        self._stdout_task = asyncio.create_task(self._read_stdout())
        self._stderr_task = asyncio.create_task(self._read_stderr())

    # -- output demultiplexing
    def _done_future(self, wid: int) -> asyncio.Future:
        if wid not in self._done:
            self._done[wid] = asyncio.get_running_loop().create_future()
        return self._done[wid]

    async def _read_stdout(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_log.append(line)
            m = re.fullmatch(r"done (\d+) (-?\d+)", line)
            if m:
                fut = self._done_future(int(m.group(1)))
                if not fut.done():
                    fut.set_result(int(m.group(2)))
            elif line.startswith("port ") and not self._port_future.done():
                self._port_future.set_result(int(line.split()[1]))
            else:
                self._answers.put_nowait(line)
        if not self._port_future.done():
            self._port_future.set_exception(RuntimeError("test host closed stdout before printing its port"))

    async def _read_stderr(self):
        while True:
            chunk = await self.proc.stderr.read(65536)
            if not chunk:
                break
            self.stderr += chunk

    # -- commands
    async def wait_port(self, timeout: float = DEADLINE) -> int:
        try:
            self.port = await asyncio.wait_for(asyncio.shield(self._port_future), timeout)
        except (asyncio.TimeoutError, RuntimeError) as e:
            pytest.fail(f"test host {self.argv} did not print its port ({e!r}); stderr: {self.stderr_text()}")
        return self.port

    async def cmd(self, line: str, timeout: float = DEADLINE) -> str:
        """Sends one command and returns its answer line (e.g. 'ok 0')."""
        async with self._lock:
            self.proc.stdin.write((line + "\n").encode())
            await self.proc.stdin.drain()
            try:
                answer = await asyncio.wait_for(self._answers.get(), timeout)
            except asyncio.TimeoutError:
                pytest.fail(f"test host did not answer {line!r} within {timeout}s; stderr: {self.stderr_text()}")
        if answer.startswith("error"):
            pytest.fail(f"test host refused {line!r}: {answer}")
        return answer

    async def ok(self, line: str, timeout: float = DEADLINE) -> int:
        """Sends a command answered `ok N` and returns N."""
        answer = await self.cmd(line, timeout)
        parts = answer.split()
        assert parts[0] == "ok", f"{line!r} answered {answer!r}"
        return int(parts[1]) if len(parts) > 1 else 0

    async def fire(self, name: str, type_: str = "enter", times: int = 1) -> int:
        return await self.ok(f"fire {type_} {name} {times}")

    async def start_wait(self, name: str, timeout_ms: int) -> int:
        """Parks a new thread at wait_for_message(name); returns its id (see done())."""
        answer = await self.cmd(f"wait {name} {timeout_ms}")
        m = re.fullmatch(r"started (\d+)", answer)
        assert m, f"wait answered {answer!r}"
        return int(m.group(1))

    async def start_site_wait(self, timeout_ms: int) -> int:
        answer = await self.cmd(f"site-wait {timeout_ms}")
        m = re.fullmatch(r"started (\d+)", answer)
        assert m, f"site-wait answered {answer!r}"
        return int(m.group(1))

    async def done(self, wid: int, timeout: float = DEADLINE) -> int:
        """The result a parked thread printed as `done ID RC`."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._done_future(wid)), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"parked thread {wid} did not finish within {timeout}s")

    def done_already(self, wid: int) -> bool:
        return wid in self._done and self._done[wid].done()

    # -- shutdown
    async def send_quit(self):
        if not self._quit_sent and self.proc.returncode is None:
            self._quit_sent = True
            try:
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
                self.proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def wait_exit(self, timeout: float = EXIT_DEADLINE) -> int:
        try:
            self.returncode = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            pytest.fail(f"test host did not exit within {timeout}s of quit; killed it; stderr: {self.stderr_text()}")
        await asyncio.wait_for(asyncio.gather(self._stdout_task, self._stderr_task), DEADLINE)
        return self.returncode

    async def quit(self, timeout: float = EXIT_DEADLINE) -> int:
        await self.send_quit()
        return await self.wait_exit(timeout)

    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    def sanitizer_report(self) -> Optional[str]:
        text = self.stderr_text()
        return text if any(m in text for m in SANITIZER_MARKERS) else None

    # -- URLs
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + PREFIX + path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _sanitizer_env() -> dict:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if "TSAN_OPTIONS" not in env:
        opts = "second_deadlock_stack=1"
        supp = REPO / "tests" / "tsan.supp"
        if supp.exists() and supp.stat().st_size > 0:
            opts += f" suppressions={supp}"
        env["TSAN_OPTIONS"] = opts
    # The server's own ERRINJ_* variables would change what a test sees.
    for var in ("ERRINJ_HTTP", "ERRINJ_TOKEN", "ERRINJ_AT_STARTUP"):
        env.pop(var, None)
    return env


@pytest.fixture
async def host():
    """Factory: `h = await host(token=..., heartbeat_ms=..., history=..., max_subscribers=...,
    allow_remote=..., listen=..., extra_env=...)` starts a test host and waits for its port. Teardown quits each host and
    fails the test unless it exits 0 without a sanitizer report."""
    started = []

    async def start(*, token=None, heartbeat_ms=None, history=None, max_subscribers=None,
                    allow_remote=False, listen=None, extra_env=None) -> Host:
        argv = [str(find_testhost())]
        if listen is not None:
            argv += ["--listen", listen]
        if token is not None:
            argv += ["--token", token]
        if heartbeat_ms is not None:
            argv += ["--heartbeat-ms", str(heartbeat_ms)]
        if history is not None:
            argv += ["--history", str(history)]
        if max_subscribers is not None:
            argv += ["--max-subscribers", str(max_subscribers)]
        if allow_remote:
            argv += ["--allow-remote"]
        env = _sanitizer_env()
        # A known process seed, so the seed that GET .../injection/{name} shows is known too.
        env["ERRINJ_SEED"] = HOST_SEED
        env.update(extra_env or {})
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        h = Host(proc, argv)
        started.append(h)
        await h.wait_port()
        return h

    yield start

    problems = []
    for h in started:
        if h.returncode is None:
            await h.send_quit()
            try:
                await asyncio.wait_for(h.proc.wait(), EXIT_DEADLINE)
            except asyncio.TimeoutError:
                h.proc.kill()
                await h.proc.wait()
                problems.append(f"test host did not exit within {EXIT_DEADLINE}s of quit (killed)")
            await asyncio.wait_for(asyncio.gather(h._stdout_task, h._stderr_task), DEADLINE)
            h.returncode = h.proc.returncode
        if h.returncode != 0:
            problems.append(f"test host exited with {h.returncode}, expected 0")
        report = h.sanitizer_report()
        if report:
            problems.append("sanitizer report on the test host's stderr")
        if problems:
            pytest.fail("; ".join(problems) + f"\n--- test host stderr ---\n{h.stderr_text()}")


# ---- REST -----------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


@pytest.fixture
async def http():
    """An aiohttp session for REST calls (no connection limit, no client timeout surprises)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=DEADLINE)) as session:
        yield session


async def rest(session: aiohttp.ClientSession, method: str, h: Host, path: str, *, params=None,
               data=None, headers=None, token=None) -> Reply:
    """One REST request to PREFIX + path. path is sent as written (already percent-encoded)."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    url = URL(h.url(path), encoded=True)
    async with session.request(method, url, params=params, data=data, headers=hdrs) as resp:
        body = await resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)


def assert_error_json(reply: Reply, status: int):
    """SPEC 4: errors are JSON {"message": "...", "code": N}."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body[:300]!r}"
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    doc = reply.json()
    assert set(doc) == {"message", "code"}, doc
    assert doc["code"] == status, doc
    assert isinstance(doc["message"], str) and doc["message"], doc


async def snapshot(session, h: Host, names, token=None) -> dict:
    """The observable injection state: the enabled list, and per name its GET answer, enters
    and waiters. Rejected requests must leave it exactly as it was."""
    state = {"enabled": sorted((await rest(session, "GET", h, "/injection", token=token)).json())}
    for name in names:
        state[name] = {
            "get": (await rest(session, "GET", h, f"/injection/{name}", token=token)).json(),
            "enters": (await rest(session, "GET", h, f"/injection/{name}/enters", token=token)).json(),
            "waiters": (await rest(session, "GET", h, f"/injection/{name}/waiters", token=token)).json(),
        }
    return state


async def status_of(session, h: Host, token=None) -> dict:
    reply = await rest(session, "GET", h, "/status", token=token)
    assert reply.status == 200, reply
    return reply.json()


# ---- SSE ------------------------------------------------------------------------------------

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
        """SPEC 5: the first body bytes are exactly ': connected\\n\\n'."""
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


async def open_stream(h: Host, query: str = "", *, headers=None, token=None, rcvbuf=None,
                      read_limit: int = 2 ** 20, connected: bool = True, port=None,
                      timeout: float = DEADLINE) -> SSEStream:
    """Opens GET /events?query. With connected=True (the default) it also checks the status and
    headers of a stream and consumes ': connected', after which every fire reaches the stream.
    rcvbuf sets SO_RECV before connecting (a slow client); read_limit bounds what asyncio buffers
    before it stops reading the socket."""
    port = port or h.port
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), timeout)
    reader, writer = await asyncio.open_connection(sock=sock, limit=read_limit)
    hdrs = {"Host": f"127.0.0.1:{port}", "Accept": "text/event-stream"}
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


@pytest.fixture
async def streams():
    """Closes every stream a test opened through track()."""
    opened = []

    def track(s: SSEStream) -> SSEStream:
        opened.append(s)
        return s

    yield track
    for s in opened:
        await s.aclose()


def check_event_fields(ev: dict, *, injection: str, type_: str, phase: str = "hit", site: bool = False):
    """SPEC 2: every field of an event, with the right JSON types."""
    expected = {"injection", "type", "phase", "shard", "seq", "thread", "ts_ns", "enters", "parameters",
                "action", "eval"}
    if site:
        expected |= {"file", "line"}
    assert set(ev) == expected, f"fields {sorted(ev)} != {sorted(expected)}"
    assert ev["injection"] == injection and ev["type"] == type_ and ev["phase"] == phase, ev
    assert ev["action"] in ("on", "return", "sleep", "pause", "abort"), ev
    for k in ("shard", "seq", "thread", "ts_ns", "enters", "eval"):
        assert isinstance(ev[k], int) and not isinstance(ev[k], bool), (k, ev)
    assert isinstance(ev["parameters"], dict), ev
    if site:
        assert isinstance(ev["file"], str) and isinstance(ev["line"], int), ev


def host_site_lines() -> dict:
    """Where each compiled-in site of the test host sits in testhost.c: name -> line."""
    src = (REPO / "tests" / "host" / "testhost.c").read_text().splitlines()
    lines = {}
    for i, text in enumerate(src, start=1):
        for name in HOST_SITES:
            if f'"{name}"' in text and "ERRINJ_" in text and name not in lines:
                lines[name] = i
    return lines


def project_version() -> str:
    m = re.search(r"project\(errinj VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    return m.group(1) if m else ""


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
