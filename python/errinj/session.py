"""The WebSocket session channel (``GET /v2/error_injection/ws``): events and commands on one socket.

```python
from errinj import injection_session

async with injection_session(ip, port=10000) as session:   # returns once the socket is open
    seq = await session.enable("put_before_apply", one_shot=True)   # owned by the session
    ...                                                   # make the server reach the point
    event = await session.wait_for_injection("put_before_apply", timeout=30)
# leaving (or the test process dying) disables what the session enabled
```

A session receives the same events as the SSE stream (same filters and replay, overflow as
``{"overflow": ...}``), with the same wait API as ``InjectionEventStream``: each wait returns the
earliest event that matches and that no earlier wait returned, whether it arrived before the call or
after. Commands are sent over the socket and answered by id; an error answer raises ``HTTPError``
as the REST client does: ``code`` is the reply's code, ``error_message`` the server's words and
``message`` the JSON ``{"message", "code"}`` the REST call would have answered. Injections enabled with
``session=True`` (the default here) are disabled by the server when the socket closes, however it
closes: a test that crashes leaves nothing armed and no handler parked.

The token (if the server has one) goes in the ``Sec-WebSocket-Protocol`` list as
``errinj.bearer.<token>`` beside ``errinj``, the way a browser has to send it, never in the URL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence, Tuple

import aiohttp

from ._nodes import Node, node_tag, parse_node
from .errors import EventsLostError, HTTPError, StreamClosedError

logger = logging.getLogger("errinj")
Event = Dict[str, Any]
PHASES = ("hit", "waiting", "released", "timeout")


class InjectionSession:
    """One WebSocket session with one node. Make it with ``injection_session``.

    ``events`` holds every event received, in order, each a dict of the event JSON with ``"node"``.
    ``overflows`` holds each ``{"dropped", "next_seq"}`` notice; with ``on_overflow="raise"`` (the
    default) waits raise ``EventsLostError`` for a loss not yet accepted with ``clear_overflow()``.
    """

    def __init__(self, node: Node, port: int = 10000, token: Optional[str] = None, *,
                 injection: Any = None, type: Any = None, shard: Optional[int] = None, phase: Any = None,
                 since: Optional[int] = None, on_overflow: str = "raise", connect_timeout: float = 10.0,
                 heartbeat: Optional[float] = None) -> None:
        self.host, self.port = parse_node(node, port)
        self.node = node_tag(self.host, self.port)
        self.token = token
        self.on_overflow = on_overflow
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self.query: List[Tuple[str, str]] = []
        for key, value in (("injection", injection), ("type", type), ("phase", phase)):
            for v in ([] if value is None else [value] if isinstance(value, str) else list(value)):
                self.query.append((key, str(v)))
        if shard is not None:
            self.query.append(("shard", str(shard)))
        if since is not None:
            self.query.append(("since", str(since)))
        self.events: List[Event] = []
        self.overflows: List[Dict[str, Any]] = []
        self._consumed: set = set()
        self._unacked: List[Dict[str, Any]] = []
        self._replies: Dict[Any, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self._http: Optional[aiohttp.ClientSession] = None
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._reader: Optional[asyncio.Task] = None
        self._closed: Optional[str] = None
        self._warned: set = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2/error_injection/ws"

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def open(self) -> "InjectionSession":
        protocols = ["errinj"] + ([f"errinj.bearer.{self.token}"] if self.token else [])
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout))
        try:
            self._ws = await self._http.ws_connect(self.url, params=self.query, protocols=protocols,
                                                   heartbeat=self.heartbeat, max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            await self._http.close()
            raise HTTPError(self.url, e.status, None, None, str(e.message), method="GET",
                            error_message=str(e.message)) from None
        except BaseException:
            await self._http.close()
            raise
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        """Closes the socket (the server then disables the session's injections) and ends waits."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        self._end("closed by the client")

    async def __aenter__(self) -> "InjectionSession":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- the reader ---------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        if self._closed is None:
            self._closed = reason
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(StreamClosedError(self.node, self._closed))
        self._replies.clear()
        self._arrived.set()

    async def _read(self) -> None:
        assert self._ws is not None
        reason = "the server closed the session"
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if "id" in data and "ok" in data:
                    fut = self._replies.pop(data["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
                elif "overflow" in data:
                    notice = dict(data["overflow"], position=len(self.events))
                    self.overflows.append(notice)
                    self._unacked.append(notice)
                    self._arrived.set()
                else:
                    data["node"] = self.node
                    self.events.append(data)
                    self._arrived.set()
            if self._ws.close_code not in (None, 1000):
                reason = f"the server closed the session with code {self._ws.close_code}"
        except Exception as e:  # a broken connection ends the session; waits say why
            reason = f"the session failed: {type(e).__name__}: {e}"
        self._end(reason)

    # -- commands -----------------------------------------------------------------------------

    async def command(self, op: str, **fields: Any) -> Dict[str, Any]:
        """Sends ``{"id", "op", **fields}`` and returns the reply; raises ``HTTPError`` when the
        server refused it (``status`` is the reply's ``code``)."""
        if self._ws is None or self._closed is not None:
            raise StreamClosedError(self.node, self._closed or "the session is not open")
        cid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._replies[cid] = fut
        body = {"id": cid, "op": op, **{k: v for k, v in fields.items() if v is not None}}
        await self._ws.send_str(json.dumps(body))
        reply = await fut
        if not reply.get("ok"):
            code = int(reply.get("code", 500))
            words = str(reply.get("message"))
            raise HTTPError(self.url, code, None, body, json.dumps({"message": words, "code": code}), method=op,
                            error_message=words, error_code=code)
        warning = reply.get("warning")
        if warning and warning not in self._warned:
            self._warned.add(warning)
            logger.warning("errinj: %s", warning)
        return reply

    async def enable(self, name: str, one_shot: bool = False, parameters: Optional[Dict[str, Any]] = None, *,
                     term: Optional[str] = None, seed: Optional[int] = None, session: bool = True) -> int:
        """Enables ``name``; returns the last seq published before it took effect (every event of
        this enable has a larger one). ``session=True`` (default) ties it to this socket."""
        reply = await self.command("enable", name=name, one_shot=one_shot if one_shot else None,
                                   parameters=parameters, term=term, seed=seed, session=session)
        return int(reply["seq"])

    async def disable(self, name: str) -> None:
        await self.command("disable", name=name)

    async def disable_all(self) -> None:
        await self.command("disable_all")

    async def message(self, name: str) -> None:
        """Releases the handlers of ``name`` waiting for a message (ScyllaDB's shared messages)."""
        await self.command("message", name=name)

    async def get(self, name: str) -> Dict[str, Any]:
        """The injection's state: ``enabled`` and, when enabled, ``one_shot``, ``parameters``,
        ``term`` and ``seed``, as ``GET .../injection/{name}`` has them."""
        reply = await self.command("get", name=name)
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    async def wait(self, name: str, phase: Optional[str] = None, count: Optional[int] = None,
                   after: Optional[int] = None, timeout: Optional[float] = None) -> List[Event]:
        """A wait on the server (as ``GET .../injection/{name}/wait``): the first ``count`` events of
        ``name`` and ``phase`` after ``after`` (default: its latest enable). Raises ``HTTPError``
        408 on timeout, 410 when those events are no longer kept. Consumes nothing."""
        reply = await self.command("wait", name=name, phase=phase, count=count, after=after, timeout=timeout)
        return reply["events"]

    # -- waits on received events ---------------------------------------------------------------

    def clear_overflow(self) -> None:
        """Accept the events lost so far: waits stop raising ``EventsLostError`` for them."""
        self._unacked.clear()

    def _check_overflow(self) -> None:
        if self._unacked and self.on_overflow == "raise":
            notice = self._unacked[0]
            raise EventsLostError(self.node, notice.get("dropped"), notice.get("next_seq"))

    def _take(self, match: Callable[[Event], bool]) -> Optional[Event]:
        for i, event in enumerate(self.events):
            if i not in self._consumed and match(event):
                self._consumed.add(i)
                return event
        return None

    async def _wait_all(self, matches: Sequence[Tuple[Callable[[Event], bool], str]],
                        timeout: Optional[float]) -> List[Event]:
        if self._ws is None:
            raise RuntimeError("the session is not open: use 'async with' or 'await session.open()'")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        found: List[Optional[Tuple[int, Event]]] = [None] * len(matches)
        try:
            while True:
                self._check_overflow()
                for k, (match, _) in enumerate(matches):
                    if found[k] is None:
                        event = self._take(match)
                        if event is not None:
                            found[k] = (self.events.index(event), event)
                if all(f is not None for f in found):
                    return [f[1] for f in found if f is not None]
                if self._closed is not None:
                    raise StreamClosedError(self.node, self._closed)
                self._arrived.clear()
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    missing = ", ".join(d for (m, d), f in zip(matches, found) if f is None)
                    raise asyncio.TimeoutError(f"timed out after {timeout}s waiting for {missing} on {self.node}; "
                                               f"{len(self.events)} event(s) arrived")
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    pass
        except BaseException:
            for f in found:  # all or nothing: give back what this wait took
                if f is not None:
                    self._consumed.discard(f[0])
            raise

    @staticmethod
    def _by_name(name: str, phase: Optional[str]) -> Tuple[Callable[[Event], bool], str]:
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES} or None, not {phase!r}")
        return ((lambda e: e.get("injection") == name and (phase is None or e.get("phase") == phase)),
                f"{name} ({phase or 'any phase'})")

    async def wait_for_injection(self, name: str, timeout: Optional[float] = 30,
                                 phase: Optional[str] = "hit") -> Event:
        """The earliest unconsumed event of ``name`` and ``phase`` (``None``: any), received before or
        after the call. ``TimeoutError`` after ``timeout`` s, ``EventsLostError`` on an overflow,
        ``StreamClosedError`` once the session closed and no received event matches."""
        return (await self._wait_all([self._by_name(name, phase)], timeout))[0]

    async def wait_for_injections(self, names: Sequence[str], timeout: Optional[float] = 30,
                                  phase: Optional[str] = "hit") -> List[Event]:
        """One event of each name (a name twice needs two), in the order of ``names``; all or nothing."""
        return await self._wait_all([self._by_name(n, phase) for n in names], timeout)

    async def wait_for_event(self, predicate: Callable[[Event], bool], timeout: Optional[float] = 30,
                             description: str = "an event matching the predicate") -> Event:
        """The earliest unconsumed event for which ``predicate(event)`` is true."""
        return (await self._wait_all([(predicate, description)], timeout))[0]

    async def iter_events(self, start: int = 0) -> AsyncIterator[Event]:
        """Yields ``events[start:]`` and then each new event until the session closes; consumes nothing."""
        pos = start
        while True:
            if pos < len(self.events):
                pos += 1
                yield self.events[pos - 1]
                continue
            if self._closed is not None:
                return
            self._arrived.clear()
            await self._arrived.wait()


def injection_session(ip: Node, port: int = 10000, token: Optional[str] = None, **options: Any) -> InjectionSession:
    """A WebSocket session with one node, as an async context manager:
    ``async with injection_session(ip, port=10000) as session: ...``.

    Entering returns once the server accepted the socket: every point that fires afterwards reaches
    it. ``ip`` is an IP or name (using ``port``), ``"ip:port"`` or an ``(ip, port)`` pair. Filters as
    for ``injection_event_stream``: ``injection``, ``type``, ``shard``, ``phase``, ``since``. Options:
    ``on_overflow`` ("raise" or "flag"), ``connect_timeout``, ``heartbeat`` (seconds between the
    client's own pings; the server pings on its heartbeat anyway).
    """
    return InjectionSession(ip, port, token, **options)
