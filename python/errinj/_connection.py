"""One node's connection of an event stream: opens ``GET /v2/error_injection/events``, reads it in a
background task, and re-opens it after a drop.

It keeps no events and serves no waiter: what it reads it hands to its owner (the stream in
stream.py) through three callbacks, ``on_event(tag, event)``, ``on_overflow(tag, dropped,
next_seq)`` and ``on_failed(tag, reason)`` (lost for good), where ``tag`` is the node's
``"ip:port"``. It depends on nothing above it.

Reconnection: a dropped connection is re-opened with ``Last-Event-ID`` (so the server replays what
was missed, without gap or duplicate) for up to ``reconnect_timeout`` seconds, backing off from
the server's ``retry:`` (or 50 ms) to at most 1 s; client errors other than 408 and 429 end it at
once. A node that restarted (a new process numbers its events from 1 again) is recognised by its
``/status`` and replayed from its first kept event; see ``NodeConnection._resume_point``.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import aiohttp

from ._nodes import base_url, node_tag
from .errors import HTTPError, StreamClosedError
from .rest import API, error_from_response
from .sse import SSEComment, SSEEvent, SSEParser

logger = logging.getLogger("errinj")

Event = Dict[str, Any]

# Statuses after which reconnecting cannot help (a browser's EventSource gives up on any non-200;
# errinj retries the transient ones: 408, 429 and 5xx, e.g. 503 "too many subscribers").
_RETRYABLE = {408, 429}


def describe(exc: BaseException) -> str:
    """An exception in words for a message: its class, and its text if it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StreamOptions:
    """What every node connection of one stream shares: the query (filters), the first
    connection's ``since``, the bearer token and the timeouts (see ``injection_event_stream``)."""

    __slots__ = ("filter_params", "since", "token", "connect_timeout", "read_timeout", "reconnect_timeout")

    def __init__(self, filter_params: List[Tuple[str, str]], since: Optional[int], token: Optional[str],
                 connect_timeout: float, read_timeout: Optional[float], reconnect_timeout: float) -> None:
        self.filter_params = filter_params
        self.since = since
        self.token = token
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.reconnect_timeout = reconnect_timeout

    def auth_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class _GiveUp(Exception):
    pass


class NodeConnection:
    """One node's SSE connection: opens it, reads it in a background task, re-opens it."""

    def __init__(self, host: str, port: int, options: StreamOptions, *,
                 on_event: Callable[[str, Event], None],
                 on_overflow: Callable[[str, Any, Any], None],
                 on_failed: Callable[[str, str], None]) -> None:
        self.options = options
        self.on_event = on_event
        self.on_overflow = on_overflow
        self.on_failed = on_failed
        self.session: Optional[aiohttp.ClientSession] = None
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

    async def open(self, session: aiohttp.ClientSession) -> None:
        """Connect and return once the server sent ``: connected``; then read in the background."""
        self.session = session
        s = self.options
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
            raise StreamClosedError(self.tag, f"connection lost during the handshake: {describe(exc)}") from exc
        except BaseException:
            resp.close()
            raise
        self.task = asyncio.create_task(self._run(resp, parser), name=f"errinj-events-{self.tag}")

    async def _read_status(self, strict: bool = False) -> Dict[str, Any]:
        """The server's ``/status``, or {} if it cannot say (an error status or an unexpected body,
        e.g. a server without ``/status``). Connection errors give {} too, unless ``strict``, when
        they propagate (the node is not reachable yet)."""
        try:
            assert self.session is not None
            timeout = aiohttp.ClientTimeout(total=self.options.connect_timeout)
            async with self.session.get(base_url(self.host, self.port) + f"{API}/status",
                                        headers=self.options.auth_headers(), timeout=timeout) as resp:
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
        s = self.options
        assert self.session is not None
        params = list(s.filter_params)
        if initial and s.since is not None:
            params.append(("since", str(s.since)))
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **s.auth_headers()}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = aiohttp.ClientTimeout(total=None, connect=s.connect_timeout,
                                        sock_connect=s.connect_timeout, sock_read=s.read_timeout)
        try:
            resp = await self.session.get(self.url, params=params, headers=headers, timeout=timeout)
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
                    self.on_event(self.tag, data)
                else:
                    logger.warning("errinj: %s sent an event that is not a JSON object: %r", self.tag, data)
            elif item.event == "overflow":
                data = data if isinstance(data, dict) else {}
                self.on_overflow(self.tag, data.get("dropped"), data.get("next_seq"))
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
            return f"nothing received for {self.options.read_timeout}s (no heartbeat)"
        except (aiohttp.ClientError, OSError) as exc:
            return f"connection lost: {describe(exc)}"

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
            self.on_failed(self.tag, str(exc))
        except Exception as exc:  # a bug must not leave waiters hanging
            resp.close()
            logger.exception("errinj: event stream reader of %s failed", self.tag)
            self.on_failed(self.tag, f"reader failed: {exc!r}")

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
        s = self.options
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
                last_error = describe(exc)
                continue
            self.reconnects += 1
            logger.info("errinj: event stream of %s reconnected (Last-Event-ID: %s)", self.tag, resume)
            return resp
