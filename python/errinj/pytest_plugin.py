"""pytest fixtures for tests that drive an errinj server (registered as the ``errinj`` plugin
through the ``pytest11`` entry point when the package is installed; otherwise add
``pytest_plugins = ["errinj.pytest_plugin"]`` to a conftest.py).

- ``errinj_port`` (default 10000) and ``errinj_token`` (default ``$ERRINJ_TOKEN`` or None): the
  defaults the factories use. Override them in a conftest.py, e.g. with the port of a server
  started on port 0.
- ``errinj_api(port=None, token=None, timeout=300)`` makes a ``RESTClient``; all are closed when
  the test ends.
- ``await errinj_stream(node, **options)`` opens ``injection_event_stream(node, ...)`` (or, when
  ``node`` is a list, ``cluster_event_stream(node, ...)``) and returns it once the server(s) said
  ``: connected``; all are closed when the test ends. Options as for those functions.

The fixtures are async, made with ``pytest_asyncio.fixture``, so they work in pytest-asyncio's
strict and auto modes.

Coverage: every injection a test enables through an ``errinj_api`` client is checked when the
test ends against the server's coverage counters (``GET /v2/error_injection/coverage``): one no
thread reached during the test raises ``errinj.UnreachedInjectionWarning`` (a test that arms a
fault nobody hits tests nothing), or fails the test with ``--errinj-strict``. At the end of the
session the plugin prints, per server it talked to, the compiled-in points no test armed and
those armed but never reached, and records both in the JUnit XML report (``--junitxml``) as the
test suite's properties ``errinj_never_armed`` and ``errinj_never_reached`` (comma-separated
``name (file:line)``). Counts are differences from what the server said when the plugin first saw it, so a
server's own reset or other users do not confuse them; a server without the coverage endpoint
is left out.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import pytest
import pytest_asyncio

from ._nodes import Node, parse_node
from .errors import HTTPError
from .rest import RESTClient
from .stream import InjectionEventStream, cluster_event_stream, injection_event_stream


class UnreachedInjectionWarning(UserWarning):
    """A test enabled an injection that no thread reached during the test."""


# (host, port, token) of a server -> {name: (armed, evaluations)} when the plugin first saw it.
_ServerKey = Tuple[str, int, Optional[str]]
_session_baselines: Dict[_ServerKey, Dict[str, Tuple[int, int]]] = {}
_session_rows: Dict[_ServerKey, List[Dict[str, Any]]] = {}


def _counts(rows: List[Dict[str, Any]]) -> Dict[str, Tuple[int, int]]:
    """Per name (summed over its sites, which share the counters: the first one counts)."""
    out: Dict[str, Tuple[int, int]] = {}
    for row in rows:
        out.setdefault(row["name"], (int(row.get("armed", 0)), int(row.get("evaluations", 0))))
    return out


class _TrackedRESTClient(RESTClient):
    """A RESTClient that remembers what it enabled, and the coverage before the first enable on
    each server, so the plugin can tell which injections a test left unreached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enabled: Dict[_ServerKey, Set[str]] = {}
        self.nodes: Dict[_ServerKey, Node] = {}
        self.before: Dict[_ServerKey, Optional[Dict[str, Tuple[int, int]]]] = {}

    def _key(self, node_ip: Node) -> _ServerKey:
        host, port = parse_node(node_ip, self.port)
        return (host, port, self.token)

    async def _coverage_or_none(self, node_ip: Node) -> Optional[List[Dict[str, Any]]]:
        try:
            return await self.get_coverage(node_ip)
        except (HTTPError, OSError, asyncio.TimeoutError, ValueError):
            return None  # no coverage endpoint (an older server, a fake): nothing to check

    async def enable_injection(self, node_ip: Node, injection: str, *args: Any, **kwargs: Any) -> None:
        key = self._key(node_ip)
        if key not in self.before:
            rows = await self._coverage_or_none(node_ip)
            self.before[key] = _counts(rows) if rows is not None else None
            if rows is not None and key not in _session_baselines:
                _session_baselines[key] = _counts(rows)
        await super().enable_injection(node_ip, injection, *args, **kwargs)
        self.nodes[key] = node_ip
        self.enabled.setdefault(key, set()).add(injection)

    async def unreached(self) -> List[str]:
        """``"name on host:port"`` for each injection enabled here and evaluated 0 times since."""
        missed = []
        for key, names in self.enabled.items():
            before = self.before.get(key)
            if before is None:
                continue
            rows = await self._coverage_or_none(self.nodes[key])
            if rows is None:
                continue
            _session_rows[key] = rows
            after = _counts(rows)
            for name in sorted(names):
                if after.get(name, (0, 0))[1] <= before.get(name, (0, 0))[1]:
                    missed.append(f"{name} on {key[0]}:{key[1]}")
        return missed


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("errinj")
    group.addoption("--errinj-strict", action="store_true", default=False,
                    help="fail a test that enabled an injection (through errinj_api) that no thread reached")


@pytest.fixture
def errinj_port() -> int:
    """The default REST/SSE port of the server under test."""
    return 10000


@pytest.fixture
def errinj_strict(request: Any) -> bool:
    """True with ``--errinj-strict``: an unreached injection fails the test instead of warning."""
    return bool(request.config.getoption("errinj_strict", default=False))


@pytest.fixture
def errinj_token() -> Optional[str]:
    """The default bearer token (``$ERRINJ_TOKEN``, the variable the server reads, or None)."""
    return os.environ.get("ERRINJ_TOKEN") or None


@pytest_asyncio.fixture
async def errinj_api(errinj_port: int, errinj_token: Optional[str],
                     errinj_strict: bool) -> AsyncIterator[Callable[..., RESTClient]]:
    """A factory of ``RESTClient``\\ s, closed at the end of the test."""
    clients: List[_TrackedRESTClient] = []

    def make(port: Optional[int] = None, token: Optional[str] = None, **kwargs: Any) -> RESTClient:
        client = _TrackedRESTClient(port=errinj_port if port is None else port,
                                    token=errinj_token if token is None else token, **kwargs)
        clients.append(client)
        return client

    yield make
    missed: List[str] = []
    for client in clients:
        try:
            missed += await client.unreached()
        finally:
            await client.close()
    if missed:
        message = ("injection(s) enabled by this test but never reached: " + ", ".join(missed) +
                   " (the test armed a fault that nothing hit, so it did not test it)")
        if errinj_strict:
            pytest.fail(message, pytrace=False)
        warnings.warn(UnreachedInjectionWarning(message), stacklevel=1)


@pytest_asyncio.fixture
async def errinj_stream(errinj_port: int, errinj_token: Optional[str]) -> AsyncIterator[Callable[..., Any]]:
    """A factory of open event streams, closed at the end of the test:
    ``stream = await errinj_stream(ip, injection="name")``."""
    streams: List[InjectionEventStream] = []

    async def make(node: Union[Node, Sequence[Node]], port: Optional[int] = None,
                   token: Optional[str] = None, **options: Any) -> InjectionEventStream:
        port = errinj_port if port is None else port
        token = errinj_token if token is None else token
        if isinstance(node, list):
            stream = cluster_event_stream(node, port=port, token=token, **options)
        else:
            stream = injection_event_stream(node, port=port, token=token, **options)
        await stream.open()
        streams.append(stream)
        return stream

    yield make
    for stream in reversed(streams):
        await stream.close()


# ---- the end of the session --------------------------------------------------------------------

def _summary() -> Tuple[List[str], List[str]]:
    """(never armed, armed but never reached), over every server the session saw: a point
    (name, file, line) counts as armed or reached when it was on any server, counted from the
    plugin's first look at each server. Compiled-in points only (names with a file)."""
    totals: Dict[Tuple[str, Optional[str], Optional[int]], List[int]] = {}
    for key, rows in _session_rows.items():
        base = _session_baselines.get(key, {})
        for row in rows:
            armed0, evals0 = base.get(row["name"], (0, 0))
            t = totals.setdefault((row["name"], row.get("file"), row.get("line")), [0, 0])
            t[0] += max(int(row.get("armed", 0)) - armed0, 0)
            t[1] += max(int(row.get("evaluations", 0)) - evals0, 0)
    never_armed, never_reached = [], []
    for (name, file, line), (armed, evals) in sorted(totals.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2] or 0)):
        where = f"{name} ({file}:{line})" if file is not None else name
        if file is not None and armed == 0:
            never_armed.append(where)
        elif armed > 0 and evals == 0:
            never_reached.append(where)
    return never_armed, never_reached


def pytest_sessionstart(session: Any) -> None:
    _session_baselines.clear()
    _session_rows.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    """Before the JUnit XML is written (its own sessionfinish), add the summary as properties."""
    if not _session_rows:
        return
    never_armed, never_reached = _summary()
    try:
        from _pytest.junitxml import xml_key
        xml = session.config.stash.get(xml_key, None)
    except ImportError:  # pytest < 7
        xml = getattr(session.config, "_xml", None)
    if xml is not None:
        xml.add_global_property("errinj_never_armed", ", ".join(never_armed))
        xml.add_global_property("errinj_never_reached", ", ".join(never_reached))
    session.config._errinj_summary = (never_armed, never_reached)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: Any, config: Any) -> None:
    summary = getattr(config, "_errinj_summary", None)
    if summary is None:
        return
    never_armed, never_reached = summary
    terminalreporter.section("errinj coverage")
    terminalreporter.line(f"compiled-in points no test armed: {len(never_armed)}")
    for point in never_armed:
        terminalreporter.line(f"  {point}")
    terminalreporter.line(f"points armed but never reached: {len(never_reached)}")
    for point in never_reached:
        terminalreporter.line(f"  {point}")
