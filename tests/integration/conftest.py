"""Fixtures and helpers for the server's integration tests.

Each test starts its own errinj-testhost (tests/host/testhost.c), a process that links the
library, starts the HTTP server on a free loopback port and fires points on command. The driver
of that host (tests/pylib/testhost.py) and the raw SSE reader (tests/pylib/ssereader.py) are
shared with errinjctl's tests; this file adds the fixtures, REST helpers and checks of the
integration suites, and re-exports the shared names the test modules import from here.

Nothing here waits with a fixed sleep: every wait is on output, an event, or a bounded poll
with a deadline. At teardown each host is asked to quit and must exit 0 within a deadline
with no sanitizer report on its stderr.
"""
import asyncio
import faulthandler
import functools
import inspect
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import aiohttp
from yarl import URL
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "pylib"))

from testhost import (DEADLINE, EXIT_DEADLINE, HOST_SEED, PREFIX, SANITIZER_MARKERS, Host,  # noqa: E402,F401
                      exit_problems, find_testhost, run_host_expecting_failure, start_host)
from ssereader import SSEItem, SSEStream, check_contiguous, open_stream, parse_block  # noqa: E402,F401

# errinj's own pytest plugin (its fixtures and its coverage report), and pytester to run it on
# suites made up by the tests.
pytest_plugins = ["errinj.pytest_plugin", "pytester"]

TEST_TIMEOUT_S = 120      # one test, fixtures excluded
TEST_HANG_GUARD_S = 300   # the whole process, as a last resort

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

@pytest.fixture
async def host():
    """Factory: `h = await host(token=..., heartbeat_ms=..., history=..., max_subscribers=...,
    allow_remote=..., listen=..., extra_env=...)` starts a test host and waits for its port. Teardown quits each host and
    fails the test unless it exits 0 without a sanitizer report."""
    started = []

    async def start(**options) -> Host:
        h = await start_host(**options)
        started.append(h)
        return h

    yield start

    failures = []
    for h in started:   # every host is ended before the test fails for one of them
        problems = await exit_problems(h)
        if problems:
            failures.append("; ".join(problems) + f"\n--- test host stderr ---\n{h.stderr_text()}")
    if failures:
        pytest.fail("\n".join(failures))


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


async def enable(session: aiohttp.ClientSession, h: Host, name: str, params=None, *, one_shot=None,
                 query: str = "", token=None) -> Reply:
    """Enables ``name`` (``POST /injection/{name}{query}``, with ``?one_shot=`` when given and the
    parameters as a JSON body when given), insists on 200 and returns the reply."""
    reply = await rest(session, "POST", h, f"/injection/{name}{query}",
                       params={"one_shot": str(one_shot)} if one_shot is not None else None,
                       data=json.dumps(params) if params is not None else None, token=token)
    assert reply.status == 200, reply
    return reply


def assert_error_json(reply: Reply, status: int):
    """errinj-events(7), Responses: errors are JSON {"message": "...", "code": N}."""
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
    """errinj-events(7), EVENTS: every field of an event, with the right JSON types."""
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


