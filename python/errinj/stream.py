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

Failures never leave a wait hanging: a dropped connection is re-opened with ``Last-Event-ID`` for up
to ``reconnect_timeout`` seconds (see _connection.py, which also recognises a restarted node), after
which every pending and later wait raises ``StreamClosedError`` (events received before still
count). A server ``event: overflow`` (events lost) makes waits raise ``EventsLostError`` unless the
stream was opened with ``on_overflow="flag"``.

The layers: _connection.py reads one node and calls back; _waiting.py keeps the events and serves
the waits; this module joins them behind the public stream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import aiohttp

from ._connection import NodeConnection, StreamOptions, describe
from ._nodes import Node, node_tag, parse_node
from ._waiting import Cursor, Event, Mailbox, Matcher, Spec, injection_spec
from .errors import StreamClosedError

logger = logging.getLogger("errinj")


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
        options = StreamOptions(params, self.since, token, connect_timeout, read_timeout, reconnect_timeout)

        self._conns: List[NodeConnection] = []
        for node in nodes:
            host, p = parse_node(node, port)
            conn = NodeConnection(host, p, options, on_event=self._on_event, on_overflow=self._on_overflow,
                                  on_failed=self._node_failed)
            if any(c.tag == conn.tag for c in self._conns):
                raise ValueError(f"node {conn.tag} is listed twice")
            self._conns.append(conn)
        self.nodes: List[str] = [c.tag for c in self._conns]

        self._mail = Mailbox(self.nodes, on_overflow == "raise", lambda: self.reconnects)
        self.events: List[Event] = self._mail.events
        self.overflows: List[Dict[str, Any]] = self._mail.overflows
        self._session: Optional[aiohttp.ClientSession] = None
        self._opened = False
        self._shared_cursor: Optional[Cursor] = None

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
        self._mail.start()
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

    async def _open_node(self, conn: NodeConnection) -> None:
        assert self._session is not None
        try:
            await conn.open(self._session)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, StreamClosedError):
                raise
            raise StreamClosedError(conn.tag, f"cannot connect to {conn.url}: {describe(exc)}") from exc

    async def close(self) -> None:
        """Close every connection. Pending waits raise ``StreamClosedError``; ``async for`` ends."""
        if self._opened:
            await self._shutdown("closed by the client", by_client=True)

    async def _shutdown(self, reason: str, by_client: bool = False) -> None:
        self._mail.close(None, reason, by_client)
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
        return self._mail.closed is not None

    # -- the node connections' callbacks ------------------------------------------------------

    def _on_event(self, node: str, event: Event) -> None:
        self._mail.add(node, event)

    def _on_overflow(self, node: str, dropped: Any, next_seq: Any) -> None:
        mark = self._mail.add_overflow(node, dropped, next_seq)
        logger.warning("errinj: %s", mark.error())

    def _node_failed(self, node: str, reason: str) -> None:
        logger.warning("errinj: event stream of %s closed: %s", node, reason)
        self._mail.close(node, reason)
        # One node's stream is gone: the merged stream would have a silent hole, so it closes whole.
        for other in self._conns:
            if other.tag != node and other.task is not None:
                other.task.cancel()

    # -- waiting ------------------------------------------------------------------------------

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

    def _spec(self, name: str, phase: Optional[str], node: Optional[Node]) -> Spec:
        if self.injection_filter is not None and name not in self.injection_filter:
            raise ValueError(f"this stream is filtered to injection(s) {self.injection_filter}, "
                             f"so {name!r} can never arrive")
        phases = self.phase_filter or ["hit"]
        if phase is not None and phase not in phases and "all" not in phases:
            raise ValueError(
                f"this stream receives phase(s) {phases} only (the server's default is 'hit'), so "
                f"phase {phase!r} can never arrive: open the stream with phase='all' or phase=[...]")
        return injection_spec(name, phase, self._resolve_node(node))

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("the event stream is not open: use 'async with' or 'await stream.open()'")

    async def _wait_many(self, specs: List[Spec], timeout: Optional[float]) -> List[Event]:
        self._require_open()
        return await self._mail.wait_many(specs, timeout)

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
        return (await self._wait_many([Spec(predicate, tag, None, description)], timeout))[0]

    def clear_overflow(self) -> None:
        """Accept the events lost so far: waits stop raising ``EventsLostError`` for past overflows."""
        self._mail.clear_overflow()

    # -- iteration ----------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._shared_cursor is None:
            self._shared_cursor = Cursor(self._mail, 0, self._require_open)
        return self._shared_cursor

    def iter_events(self, start: Optional[int] = 0) -> AsyncIterator[Event]:
        """An independent cursor over the stream: yields ``events[start:]`` then every new event, in
        arrival order (``start=None``: only events from now on). Like ``async for event in stream``
        (whose cursor is shared by every loop over the stream itself) it consumes nothing. Both end
        when the client closes the stream, raise ``StreamClosedError`` when the stream is lost (after
        yielding every received event) and, in ``on_overflow="raise"`` mode, raise
        ``EventsLostError`` at the place of a loss (iterating again continues after it)."""
        return Cursor(self._mail, len(self.events) if start is None else start, self._require_open)


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
