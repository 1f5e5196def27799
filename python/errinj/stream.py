"""The event half of the client: know the moment an injection point fires, without logs or polling.

``injection_event_stream(ip)`` (one node) and ``cluster_event_stream(nodes)`` (several, merged) open
``GET /v2/error_injection/events`` and return only after the server wrote ``: connected``, the
promise that every later fire reaches this client. So the safe order in a test is: open the stream,
then enable the injection and start the work, then wait.

How received events are shared (the choices a test can rely on):

- Every event the stream receives is kept, in arrival order, in ``stream.events`` (a list of dicts:
  the event JSON plus ``"node": "ip:port"``). Nothing is thrown away while the stream is open.
- Waiting *consumes*: ``wait_for_injection(name)`` returns the earliest received event of that name
  (and phase, and node) that no earlier wait returned, whether it arrived before or after the call.
  Events of other names stay for other waiters. Concurrent waiters are served in call order.
- Iterating does *not* consume: ``async for event in stream`` walks ``stream.events`` with the
  stream's own cursor (successive loops continue where the last one stopped) and yields every event,
  whatever waits took; waits take events whether or not they were iterated over.
  ``stream.iter_events(start)`` gives an independent cursor.

Failures never leave a wait hanging: a dropped connection is re-opened with ``Last-Event-ID`` (so the
server replays what was missed, without gap or duplicate) for up to ``reconnect_timeout`` seconds,
after which every pending and later wait raises ``StreamClosedError`` (events received before still
count). A node that restarted (a new process numbers its events from 1 again) is recognised by its
``/status`` and replayed from its first kept event; see ``_NodeConnection._resume_point``.
A server ``event: overflow`` (events lost) makes waits raise ``EventsLostError`` unless the stream
was opened with ``on_overflow="flag"``.

The module stays whole for now (about 800 lines): the waiting queue, the per-node connection and
the merged stream share one event list and its cursors. Next to move out: ``_NodeConnection`` into
its own module, talking to the stream through callbacks instead of its private members.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from typing import (Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

import aiohttp

from ._nodes import Node, base_url, node_tag, parse_node
from .errors import EventsLostError, HTTPError, StreamClosedError
from .rest import API, error_from_response
from .sse import SSEComment, SSEEvent, SSEParser

logger = logging.getLogger("errinj")

Event = Dict[str, Any]
Matcher = Callable[[Event], bool]

# Statuses after which reconnecting cannot help (a browser's EventSource gives up on any non-200;
# errinj retries the transient ones: 408, 429 and 5xx, e.g. 503 "too many subscribers").
_RETRYABLE = {408, 429}


def _as_list(value: Union[None, str, int, Iterable[Any]]) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [str(value)]
    return [str(v) for v in value]


def _node_list(nodes: Union[Node, Sequence[Node]]) -> List[Node]:
    """The nodes of a stream: one node (an IP or ``"ip:port"`` string, or an ``(ip, port)`` pair,
    as ``InjectionEventStream("127.0.0.1", 10000)`` passes it) or a sequence of them."""
    if isinstance(nodes, str):
        return [nodes]
    if isinstance(nodes, tuple) and len(nodes) == 2 and isinstance(nodes[1], int) \
            and not isinstance(nodes[1], bool):
        return [nodes]
    listed = list(nodes)
    if not listed:
        raise ValueError("no nodes to stream events from")
    return listed


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Spec:
    """What one wait is for: a matcher, the node it is restricted to, and words for messages."""

    __slots__ = ("match", "node", "name", "description")

    def __init__(self, match: Matcher, node: Optional[str], name: Optional[str], description: str) -> None:
        self.match = match
        self.node = node
        self.name = name
        self.description = description


class _Waiter:
    __slots__ = ("spec", "future")

    def __init__(self, spec: _Spec, future: "asyncio.Future[Tuple[int, Event]]") -> None:
        self.spec = spec
        self.future = future


class _Overflow:
    __slots__ = ("node", "dropped", "next_seq", "position")

    def __init__(self, node: str, dropped: Optional[int], next_seq: Optional[int], position: int) -> None:
        self.node = node
        self.dropped = dropped
        self.next_seq = next_seq
        self.position = position  # len(stream.events) when it arrived: it sits before that event

    def error(self) -> EventsLostError:
        return EventsLostError(self.node, self.dropped, self.next_seq)


class _GiveUp(Exception):
    pass


class _NodeConnection:
    """One node's SSE connection: opens it, reads it in a background task, re-opens it."""

    def __init__(self, stream: "InjectionEventStream", host: str, port: int) -> None:
        self.stream = stream
        self.host = host
        self.port = port
        self.tag = node_tag(host, port)
        self.url = base_url(host, port) + f"{API}/events"
        self.last_event_id: Optional[str] = None   # the id of the last event received, as sent
        self.baseline: Optional[str] = None        # where to resume if no event arrived yet
        self.instance: Any = None                  # /status "instance", if the server has one
        self.retry_ms: Optional[int] = None        # the server's `retry:`, if it sent one
        self.connected = False
        self.reconnects = 0
        self.restarts = 0                          # reconnections that found a restarted server
        self.task: Optional["asyncio.Task[None]"] = None

    # -- opening ------------------------------------------------------------------------------

    async def open(self) -> None:
        s = self.stream
        # The server's current seq, read before subscribing: if the connection drops before any
        # event arrives, resuming from here replays what fired meanwhile instead of losing it.
        status = await self._read_status()
        self.instance = status.get("instance")
        if s.since is not None:
            self.baseline = str(s.since)
        else:
            self.baseline = self._seq_of(status)
        resp = await self._connect(initial=True)
        parser = SSEParser()
        try:
            await asyncio.wait_for(self._handshake(resp, parser), s.connect_timeout)
        except asyncio.TimeoutError:
            resp.close()
            raise StreamClosedError(
                self.tag, f"no ': connected' from {self.url} within {s.connect_timeout}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            resp.close()
            raise StreamClosedError(self.tag, f"connection lost during the handshake: {_describe(exc)}") from exc
        except BaseException:
            resp.close()
            raise
        self.task = asyncio.create_task(self._run(resp, parser), name=f"errinj-events-{self.tag}")

    async def _read_status(self, strict: bool = False) -> Dict[str, Any]:
        """The server's ``/status``, or {} if it cannot say (an error status or an unexpected body,
        e.g. a server without ``/status``). Connection errors give {} too, unless ``strict``, when
        they propagate (the node is not reachable yet)."""
        try:
            timeout = aiohttp.ClientTimeout(total=self.stream.connect_timeout)
            async with self.stream._session.get(base_url(self.host, self.port) + f"{API}/status",
                                                headers=self.stream._auth_headers(),
                                                timeout=timeout) as resp:
                if resp.status != 200:
                    return {}
                status = jsonlib.loads(await resp.text())
                return status if isinstance(status, dict) else {}
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            if strict:
                raise
            return {}
        except ValueError:
            return {}

    @staticmethod
    def _seq_of(status: Dict[str, Any]) -> Optional[str]:
        seq = status.get("seq")
        return str(seq) if isinstance(seq, int) and not isinstance(seq, bool) else None

    async def _connect(self, initial: bool, last_event_id: Optional[str] = None) -> aiohttp.ClientResponse:
        s = self.stream
        params = list(s._filter_params)
        if initial and s.since is not None:
            params.append(("since", str(s.since)))
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **s._auth_headers()}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = aiohttp.ClientTimeout(total=None, connect=s.connect_timeout,
                                        sock_connect=s.connect_timeout, sock_read=s.read_timeout)
        try:
            resp = await s._session.get(self.url, params=params, headers=headers, timeout=timeout)
        except asyncio.TimeoutError as exc:
            raise aiohttp.ServerTimeoutError(f"timed out connecting to {self.url}") from exc
        if resp.status != 200:
            try:
                text = await resp.text()
            except Exception:
                text = ""
            resp.release()
            raise error_from_response("GET", str(resp.url), resp.status, text, params)
        if resp.content_type != "text/event-stream":
            resp.close()
            raise StreamClosedError(self.tag, f"{self.url} answered with Content-Type "
                                              f"{resp.content_type!r}, not text/event-stream")
        return resp

    async def _handshake(self, resp: aiohttp.ClientResponse, parser: SSEParser) -> None:
        while not self.connected:
            chunk = await resp.content.readany()
            if not chunk:
                raise StreamClosedError(self.tag, "the server ended the stream before ': connected'")
            self._handle(parser, parser.feed(chunk))

    # -- reading ------------------------------------------------------------------------------

    def _handle(self, parser: SSEParser, items: List[Union[SSEEvent, SSEComment]]) -> None:
        if parser.retry is not None:
            self.retry_ms = parser.retry
        for item in items:
            if isinstance(item, SSEComment):
                if item.text.strip() == "connected":
                    self.connected = True
                continue
            # The server's first bytes are ': connected'; an event is as good a proof of the
            # subscription if some proxy ate the comment.
            self.connected = True
            self.last_event_id = item.id or None
            try:
                data = jsonlib.loads(item.data)
            except ValueError:
                logger.warning("errinj: %s sent an event whose data is not JSON: %r", self.tag, item.data)
                continue
            if item.event == "message":
                if isinstance(data, dict):
                    self.stream._on_event(self, data)
                else:
                    logger.warning("errinj: %s sent an event that is not a JSON object: %r", self.tag, data)
            elif item.event == "overflow":
                data = data if isinstance(data, dict) else {}
                self.stream._on_overflow(self, data.get("dropped"), data.get("next_seq"))
            else:
                logger.debug("errinj: %s sent an event of unknown type %r", self.tag, item.event)

    async def _pump(self, resp: aiohttp.ClientResponse, parser: SSEParser) -> str:
        """Read until the connection ends; return why it ended."""
        try:
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    return "the server closed the stream"
                self._handle(parser, parser.feed(chunk))
        except asyncio.TimeoutError:
            return f"nothing received for {self.stream.read_timeout}s (no heartbeat)"
        except (aiohttp.ClientError, OSError) as exc:
            return f"connection lost: {_describe(exc)}"

    async def _run(self, resp: aiohttp.ClientResponse, parser: SSEParser) -> None:
        try:
            while True:
                reason = await self._pump(resp, parser)
                resp.close()
                logger.info("errinj: event stream of %s dropped (%s); reconnecting", self.tag, reason)
                resp = await self._reconnect(reason)
                parser = SSEParser()
                # The last event ID outlives the connection, as in a browser's EventSource.
                parser.last_event_id = self.last_event_id or ""
        except asyncio.CancelledError:
            resp.close()
            raise
        except _GiveUp as exc:
            resp.close()
            self.stream._node_failed(self, str(exc))
        except Exception as exc:  # a bug must not leave waiters hanging
            resp.close()
            logger.exception("errinj: event stream reader of %s failed", self.tag)
            self.stream._node_failed(self, f"reader failed: {exc!r}")

    async def _resume_point(self) -> Optional[str]:
        """The Last-Event-ID to reconnect with: the last event's id (or, before any event, the
        server's seq when the stream opened), or "0" when the server is a new process, whose seq
        starts again from 1, so that all it kept is replayed. A new process shows by a different
        ``/status`` "instance" (if the server reports one), or by a seq below the last id. Without
        an "instance", a restarted server that already fired as many events as we had seen cannot
        be told apart, and the events it fired before we reconnected are missed."""
        resume = self.last_event_id if self.last_event_id is not None else self.baseline
        if resume is None or not resume.isdigit():
            return resume
        status = await self._read_status(strict=True)
        seq = self._seq_of(status)
        instance = status.get("instance")
        restarted = (instance is not None and self.instance is not None and instance != self.instance) or \
            (seq is not None and int(seq) < int(resume))
        if instance is not None:
            self.instance = instance
        if restarted:
            logger.warning("errinj: %s restarted (seq %s, last event id %s): resuming from its first event",
                           self.tag, seq, resume)
            self.restarts += 1
            # Keep to that decision if this attempt fails and the next one asks again.
            self.last_event_id, self.baseline = None, "0"
            return "0"
        return resume

    async def _reconnect(self, reason: str) -> aiohttp.ClientResponse:
        s = self.stream
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.reconnect_timeout
        delay = (self.retry_ms / 1000.0) if self.retry_ms is not None else 0.05
        max_delay = max(1.0, delay)
        last_error = reason
        first = True
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _GiveUp(f"{reason}; could not reconnect within {s.reconnect_timeout}s "
                              f"(last error: {last_error})")
            if not first:
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, max_delay)
            first = False
            try:
                resume = await self._resume_point()
                resp = await self._connect(initial=False, last_event_id=resume)
            except HTTPError as exc:
                last_error = str(exc)
                if exc.status == 204:
                    raise _GiveUp(f"{reason}; the server answered 204 No Content: "
                                  f"it asks clients not to reconnect") from None
                if exc.status < 500 and exc.status not in _RETRYABLE:
                    raise _GiveUp(f"{reason}; reconnecting failed: {exc}") from None
                continue
            except StreamClosedError as exc:
                raise _GiveUp(f"{reason}; reconnecting failed: {exc.reason}") from None
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                last_error = _describe(exc)
                continue
            self.reconnects += 1
            logger.info("errinj: event stream of %s reconnected (Last-Event-ID: %s)", self.tag, resume)
            return resp


class InjectionEventStream:
    """The events of one or more nodes, behind one waiting API. Make it with
    ``injection_event_stream()`` or ``cluster_event_stream()`` and use it as an async context
    manager (or ``await stream.open()`` ... ``await stream.close()``). It can also be made
    directly, as ScyllaDB's stream client was: ``InjectionEventStream(node_ip, port, **filters)``
    for one node (an IP, ``"ip:port"`` or an ``(ip, port)`` pair; a list for several), then
    ``await stream.connect()`` ... ``await stream.disconnect()``.

    Public state: ``nodes`` (the ``"ip:port"`` of each node), ``events`` (every event received,
    in arrival order), ``overflows`` (every ``event: overflow`` received, as dicts
    ``{"node", "dropped", "next_seq"}``), ``reconnects`` (how many times a connection was re-opened),
    ``restarts`` (how many of those found a restarted node), ``closed``.

    Overflow: with ``on_overflow="raise"`` (the default), when a node reports lost events every wait
    pending then that may concern that node raises ``EventsLostError``, and so does every later wait
    that cannot be answered from events received before the loss, until ``clear_overflow()`` says
    the test accepts the loss; ``async for`` raises it once, at the point of the loss, and the next
    loop continues after it. With ``on_overflow="flag"`` nothing raises and ``overflows`` is the
    only record; the test should check it.
    """

    def __init__(self, nodes: Union[Node, Sequence[Node]], port: int = 10000, token: Optional[str] = None, *,
                 injection: Union[None, str, Iterable[str]] = None,
                 type: Union[None, str, Iterable[str]] = None,  # noqa: A002 (the query parameter's name)
                 shard: Optional[int] = None,
                 phase: Union[None, str, Iterable[str]] = None,
                 since: Optional[int] = None,
                 on_overflow: str = "raise",
                 reconnect_timeout: float = 10.0,
                 connect_timeout: float = 10.0,
                 read_timeout: Optional[float] = 60.0) -> None:
        if on_overflow not in ("raise", "flag"):
            raise ValueError(f"on_overflow must be 'raise' or 'flag', not {on_overflow!r}")
        nodes = _node_list(nodes)
        self.token = token
        self.default_port = port
        self.on_overflow = on_overflow
        self.reconnect_timeout = reconnect_timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.since = int(since) if since is not None else None
        self.injection_filter = _as_list(injection) or None
        self.phase_filter = _as_list(phase) or None
        params: List[Tuple[str, str]] = [("injection", v) for v in _as_list(injection)]
        params += [("type", v) for v in _as_list(type)]
        if shard is not None:
            params.append(("shard", str(int(shard))))
        params += [("phase", v) for v in _as_list(phase)]
        self._filter_params = params

        self._conns: List[_NodeConnection] = []
        for node in nodes:
            host, p = parse_node(node, port)
            conn = _NodeConnection(self, host, p)
            if any(c.tag == conn.tag for c in self._conns):
                raise ValueError(f"node {conn.tag} is listed twice")
            self._conns.append(conn)
        self.nodes: List[str] = [c.tag for c in self._conns]

        self.events: List[Event] = []
        self.overflows: List[Dict[str, Any]] = []
        self._overflow_marks: List[_Overflow] = []
        self._unacked: List[_Overflow] = []
        # Unconsumed events by injection name, each dict ordered by arrival index.
        self._pending: Dict[Any, Dict[int, Event]] = {}
        self._waiters: List[_Waiter] = []
        self._session: Any = None
        self._arrived: Optional[asyncio.Event] = None
        self._opened = False
        self._closed: Optional[Tuple[Optional[str], str]] = None   # (node, reason) once closed
        self._closed_by_client = False
        self._shared_cursor: Optional[_Cursor] = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> "InjectionEventStream":
        """Connect to every node and return once each has sent ``: connected``.

        Raises ``HTTPError`` if a node answers the request with an error status, and
        ``StreamClosedError`` if a node cannot be reached or does not confirm the subscription
        within ``connect_timeout``. On failure every connection already made is closed.
        """
        if self._opened:
            raise RuntimeError("the event stream is already open")
        self._opened = True
        self._arrived = asyncio.Event()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            results = await asyncio.gather(*(self._open_node(c) for c in self._conns),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            await self._shutdown("the stream failed to open")
            raise
        return self

    async def _open_node(self, conn: _NodeConnection) -> None:
        try:
            await conn.open()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, StreamClosedError):
                raise
            raise StreamClosedError(conn.tag, f"cannot connect to {conn.url}: {_describe(exc)}") from exc

    async def close(self) -> None:
        """Close every connection. Pending waits raise ``StreamClosedError``; ``async for`` ends."""
        if self._opened:
            self._closed_by_client = True
            await self._shutdown("closed by the client")

    async def _shutdown(self, reason: str) -> None:
        self._close_with(None, reason)
        tasks = [c.task for c in self._conns if c.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def connect(self) -> "InjectionEventStream":
        """``open()`` under the name ScyllaDB's stream client used: ``await stream.connect()``."""
        return await self.open()

    async def disconnect(self) -> None:
        """``close()`` under the name ScyllaDB's stream client used: ``await stream.disconnect()``."""
        await self.close()

    async def __aenter__(self) -> "InjectionEventStream":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _auth_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def reconnects(self) -> int:
        """How many times a dropped connection was re-opened, over all nodes."""
        return sum(c.reconnects for c in self._conns)

    @property
    def restarts(self) -> int:
        """How many reconnections found a restarted node (and replayed it from its first event)."""
        return sum(c.restarts for c in self._conns)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    # -- arrivals (called by the node connections) --------------------------------------------

    def _wake(self) -> None:
        assert self._arrived is not None
        self._arrived.set()
        self._arrived.clear()

    def _on_event(self, conn: _NodeConnection, event: Event) -> None:
        event["node"] = conn.tag
        index = len(self.events)
        self.events.append(event)
        if not self._deliver(index, event):
            self._pending.setdefault(event.get("injection"), {})[index] = event
        self._wake()

    def _deliver(self, index: int, event: Event) -> bool:
        """Hand the event to the earliest registered waiter it matches."""
        for waiter in self._waiters:
            if not waiter.future.done() and self._matches(waiter.spec, event):
                self._waiters.remove(waiter)
                waiter.future.set_result((index, event))
                return True
        return False

    def _on_overflow(self, conn: _NodeConnection, dropped: Any, next_seq: Any) -> None:
        mark = _Overflow(conn.tag, dropped, next_seq, len(self.events))
        self.overflows.append({"node": conn.tag, "dropped": dropped, "next_seq": next_seq})
        self._overflow_marks.append(mark)
        logger.warning("errinj: %s", mark.error())
        if self.on_overflow == "raise":
            self._unacked.append(mark)
            for waiter in list(self._waiters):
                if waiter.spec.node in (None, conn.tag) and not waiter.future.done():
                    self._waiters.remove(waiter)
                    waiter.future.set_exception(mark.error())
        self._wake()

    def _node_failed(self, conn: _NodeConnection, reason: str) -> None:
        logger.warning("errinj: event stream of %s closed: %s", conn.tag, reason)
        self._close_with(conn.tag, reason)
        # One node's stream is gone: the merged stream would have a silent hole, so it closes whole.
        for other in self._conns:
            if other is not conn and other.task is not None:
                other.task.cancel()

    def _close_with(self, node: Optional[str], reason: str) -> None:
        if self._closed is None:
            self._closed = (node, reason)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(self._closed_error())
        if self._arrived is not None:
            self._wake()

    def _closed_error(self) -> StreamClosedError:
        assert self._closed is not None
        node, reason = self._closed
        if node is None and len(self.nodes) == 1:
            node = self.nodes[0]
        return StreamClosedError(node, reason)

    # -- waiting ------------------------------------------------------------------------------

    def _matches(self, spec: _Spec, event: Event) -> bool:
        return (spec.node is None or event.get("node") == spec.node) and spec.match(event)

    def _resolve_node(self, node: Optional[Node]) -> Optional[str]:
        """The tag of ``node`` (any spelling; a bare IP shared by no other node needs no port)."""
        if node is None:
            return None
        if isinstance(node, str) and node in self.nodes:
            return node
        host, port = parse_node(node, -1)
        if port == -1:
            same_host = [c.tag for c in self._conns if c.host == host]
            if len(same_host) == 1:
                return same_host[0]
            port = self.default_port
        tag = node_tag(host, port)
        if tag in self.nodes:
            return tag
        raise ValueError(f"node {node!r} is not one of this stream's nodes {self.nodes}")

    def _check_phase(self, phase: Optional[str]) -> None:
        if phase is None:
            return
        phases = self.phase_filter or ["hit"]
        if phase not in phases and "all" not in phases:
            raise ValueError(
                f"this stream receives phase(s) {phases} only (the server's default is 'hit'), so "
                f"phase {phase!r} can never arrive: open the stream with phase='all' or phase=[...]")

    def _check_name(self, name: str) -> None:
        if self.injection_filter is not None and name not in self.injection_filter:
            raise ValueError(f"this stream is filtered to injection(s) {self.injection_filter}, "
                             f"so {name!r} can never arrive")

    def _spec(self, name: str, phase: Optional[str], node: Optional[Node]) -> _Spec:
        self._check_name(name)
        self._check_phase(phase)
        tag = self._resolve_node(node)

        def match(event: Event) -> bool:
            return event.get("injection") == name and (phase is None or event.get("phase") == phase)

        words = f"injection {name!r}" + (f" phase {phase!r}" if phase else " (any phase)")
        return _Spec(match, tag, name, words + (f" on {tag}" if tag else ""))

    def _take_pending(self, spec: _Spec) -> Optional[Tuple[int, Event]]:
        """Remove and return the earliest unconsumed event the spec matches. Raise
        ``EventsLostError`` if that would mean looking past an unacknowledged overflow."""
        block = next((m for m in self._unacked if spec.node in (None, m.node)), None)
        limit = block.position if block is not None else None
        buckets = [self._pending.get(spec.name, {})] if spec.name is not None else list(self._pending.values())
        best: Optional[Tuple[int, Event]] = None
        for bucket in buckets:
            for index, event in bucket.items():
                if best is not None and index >= best[0]:
                    break
                if self._matches(spec, event):
                    best = (index, event)
                    break
        if best is not None and (limit is None or best[0] < limit):
            bucket = self._pending[best[1].get("injection")]
            del bucket[best[0]]
            return best
        if block is not None:
            raise block.error()
        return None

    def _put_back(self, taken: List[Tuple[int, Event]]) -> None:
        """Return events that a failed wait had taken, as if it had never taken them."""
        for index, event in sorted(taken, key=lambda item: item[0]):
            if self._deliver(index, event):
                continue
            name = event.get("injection")
            bucket = self._pending.setdefault(name, {})
            bucket[index] = event
            if any(i > index for i in bucket):  # keep each bucket in arrival order
                self._pending[name] = dict(sorted(bucket.items()))

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("the event stream is not open: use 'async with' or 'await stream.open()'")

    async def _wait_many(self, specs: List[_Spec], timeout: Optional[float]) -> List[Event]:
        self._require_open()
        loop = asyncio.get_running_loop()
        results: List[Optional[Tuple[int, Event]]] = [None] * len(specs)
        taken: List[Tuple[int, Event]] = []
        waiters: List[Tuple[int, _Waiter]] = []
        try:
            for i, spec in enumerate(specs):
                hit = self._take_pending(spec)
                if hit is not None:
                    results[i] = hit
                    taken.append(hit)
                    continue
                if self._closed is not None:
                    raise self._closed_error()
                waiter = _Waiter(spec, loop.create_future())
                self._waiters.append(waiter)
                waiters.append((i, waiter))
            if waiters:
                futures = {w.future for _, w in waiters}
                _, not_done = await asyncio.wait(futures, timeout=timeout,
                                                 return_when=asyncio.FIRST_EXCEPTION)
                failed = [f for f in futures if f.done() and f.exception() is not None]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
                if not_done:
                    missing = [w.spec for _, w in waiters if not w.future.done()]
                    raise asyncio.TimeoutError(self._timeout_message(specs, missing, timeout))
                for i, waiter in waiters:
                    results[i] = waiter.future.result()
            return [r[1] for r in results if r is not None]
        except BaseException:
            for _, waiter in waiters:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                future = waiter.future
                if not future.done():
                    future.cancel()
                elif not future.cancelled() and future.exception() is None:
                    taken.append(future.result())
            self._put_back(taken)
            raise

    def _timeout_message(self, specs: List[_Spec], missing: List[_Spec], timeout: Optional[float]) -> str:
        awaited = ", ".join(s.description for s in missing)
        where = ", ".join(self.nodes)
        text = f"timed out after {timeout}s waiting for {awaited} on {where}"
        if len(specs) > len(missing):
            text += f" ({len(specs) - len(missing)} of {len(specs)} awaited events did arrive)"
        if not self.events:
            text += "; no event arrived at all"
        else:
            recent = []
            for event in self.events[-5:]:
                word = f"{event.get('injection')}/{event.get('phase')}"
                if event.get("action") not in (None, "on"):
                    word += f"[{event.get('action')}]"
                if event.get("eval") is not None:
                    word += f"@eval{event.get('eval')}"
                if len(self.nodes) > 1:
                    word += f"@{event.get('node')}"
                recent.append(f"{word}#{event.get('seq')}")
            text += f"; {len(self.events)} event(s) arrived, the last: {', '.join(recent)}"
            for spec in missing:
                seen = sum(1 for e in self.events if self._matches(spec, e))
                if seen:
                    text += f"; {seen} event(s) matching {spec.description} arrived but earlier waits took them"
        if self.reconnects:
            text += f"; the stream reconnected {self.reconnects} time(s)"
        return text

    async def wait_for_injection(self, name: str, timeout: Optional[float] = 30, phase: Optional[str] = "hit",
                                 node: Optional[Node] = None) -> Event:
        """Wait for an event of injection ``name`` and return it (a dict of the event JSON with
        ``"node"``).

        Returns the earliest event of that name, ``phase`` (``None``: any phase) and ``node``
        (``None``: any node of the stream) that the stream received and that no earlier wait
        returned, whether it arrived before this call or after. Raises ``TimeoutError`` after
        ``timeout`` seconds (``None``: no limit) naming what it awaited and the last events that
        arrived; ``EventsLostError`` on an overflow (see the class); ``StreamClosedError`` once the
        stream is closed and no received event matches; ``ValueError`` if the stream's filters mean
        the event can never arrive.
        """
        return (await self._wait_many([self._spec(name, phase, node)], timeout))[0]

    async def wait_for_injections(self, names: Sequence[str], timeout: Optional[float] = 30,
                                  phase: Optional[str] = "hit", node: Optional[Node] = None) -> List[Event]:
        """Wait for one event of each name in ``names`` (a name listed twice needs two events) and
        return them in the order of ``names``, each chosen as ``wait_for_injection`` would.

        All or nothing: if it times out (after ``timeout`` seconds in all) or fails, the events it
        had already matched are left for other waits, and the ``TimeoutError`` names the missing ones.
        """
        specs = [self._spec(name, phase, node) for name in names]
        return await self._wait_many(specs, timeout)

    async def wait_for_event(self, predicate: Matcher, timeout: Optional[float] = 30,
                             node: Optional[Node] = None,
                             description: str = "an event matching the predicate") -> Event:
        """Wait for the earliest unconsumed event (received before or after the call) for which
        ``predicate(event)`` is true, and consume it, as ``wait_for_injection`` does. For conditions
        a name and phase cannot express, such as a parameter value or a shard."""
        tag = self._resolve_node(node)
        return (await self._wait_many([_Spec(predicate, tag, None, description)], timeout))[0]

    def clear_overflow(self) -> None:
        """Accept the events lost so far: waits stop raising ``EventsLostError`` for past overflows."""
        self._unacked.clear()

    # -- iteration ----------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._shared_cursor is None:
            self._shared_cursor = _Cursor(self, 0)
        return self._shared_cursor

    def iter_events(self, start: Optional[int] = 0) -> AsyncIterator[Event]:
        """An independent cursor over the stream: yields ``events[start:]`` then every new event, in
        arrival order (``start=None``: only events from now on). Like ``async for event in stream``
        (whose cursor is shared by every loop over the stream itself) it consumes nothing. Both end
        when the client closes the stream, raise ``StreamClosedError`` when the stream is lost (after
        yielding every received event) and, in ``on_overflow="raise"`` mode, raise
        ``EventsLostError`` at the place of a loss (iterating again continues after it)."""
        return _Cursor(self, len(self.events) if start is None else start)

    async def _next(self, cursor: "_Cursor") -> Event:
        self._require_open()
        while True:
            marks = self._overflow_marks
            if cursor.overflow < len(marks) and marks[cursor.overflow].position <= cursor.pos:
                mark = marks[cursor.overflow]
                cursor.overflow += 1
                if self.on_overflow == "raise":
                    raise mark.error()
                continue
            if cursor.pos < len(self.events):
                cursor.pos += 1
                return self.events[cursor.pos - 1]
            if self._closed is not None:
                if self._closed_by_client:
                    raise StopAsyncIteration
                raise self._closed_error()
            assert self._arrived is not None
            await self._arrived.wait()


class _Cursor:
    """A position in ``stream.events`` (and among its overflow marks) for iteration."""

    def __init__(self, stream: InjectionEventStream, start: int) -> None:
        self.stream = stream
        self.pos = start
        self.overflow = next((i for i, m in enumerate(stream._overflow_marks) if m.position >= start),
                             len(stream._overflow_marks))

    def __aiter__(self) -> "_Cursor":
        return self

    async def __anext__(self) -> Event:
        return await self.stream._next(self)


def injection_event_stream(ip: Node, port: int = 10000, token: Optional[str] = None,
                           **options: Any) -> InjectionEventStream:
    """The event stream of one node, as an async context manager:
    ``async with injection_event_stream(ip, port=10000) as stream: ...``.

    Entering returns once the server sent ``: connected``: every point that fires afterwards reaches
    the stream. ``ip`` is an IP or name (using ``port``), ``"ip:port"`` or an ``(ip, port)`` pair.

    Filters (sent as query parameters; lists repeat the key): ``injection`` (name or names),
    ``type``, ``shard``, ``phase`` (default: the server's, ``hit`` only; ``"all"`` for every phase),
    ``since`` (replay kept events with a larger seq first). Options: ``on_overflow`` ("raise" or
    "flag"), ``reconnect_timeout`` (seconds to keep re-opening a dropped connection, default 10),
    ``connect_timeout`` (for opening and the handshake, default 10), ``read_timeout`` (silence after
    which the connection counts as dead, default 60; the server pings every 15 s; ``None``: never).
    """
    return InjectionEventStream([ip], port, token, **options)


def cluster_event_stream(nodes: Sequence[Node], port: int = 10000, token: Optional[str] = None,
                         **options: Any) -> InjectionEventStream:
    """The merged event streams of several nodes, as an async context manager:
    ``async with cluster_event_stream([ip1, ip2], port=10000) as stream: ...``.

    A node is an IP (using ``port``), ``"ip:port"`` or an ``(ip, port)`` pair. Entering returns once
    every node sent ``: connected``. Events are kept in arrival order (across nodes, the order in
    which this client read them), each tagged ``"node": "ip:port"``; waits take ``node=`` to
    restrict to one node. Filters and options as for ``injection_event_stream``. If one node's
    stream is lost for good the whole stream closes (waits raise ``StreamClosedError`` naming it).
    """
    return InjectionEventStream(list(nodes), port, token, **options)
