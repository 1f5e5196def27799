"""Exceptions raised by the errinj client.

Three kinds of failure reach a test, and each has its own class so a test can tell them apart:
the server answered a REST call with an error (``HTTPError``), an event stream is gone for good
(``StreamClosedError``), or the server said that events were lost (``EventsLostError``). A wait that
runs out of time raises the built-in ``TimeoutError`` (``asyncio.TimeoutError`` is the same class
on Python 3.11).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class HTTPError(Exception):
    """A REST call (or the request that opens an event stream) answered with a non-2xx status.

    Attributes: ``status`` (the HTTP status), ``message`` (the ``message`` of the server's JSON error
    body ``{"message": ..., "code": ...}``, or the raw body when it is not that JSON), ``url``,
    ``method``, ``body`` (the raw response text), ``error_code`` (the JSON ``code``, if any),
    ``params`` and ``json`` (what was sent). ``code`` and ``uri`` are aliases of ``status`` and
    ``url``, the names ScyllaDB's test/pylib ``HTTPError`` uses.
    """

    def __init__(self, url: str, status: int, message: str, *, method: str = "GET",
                 body: str = "", error_code: Optional[int] = None,
                 params: Any = None, json: Optional[Mapping] = None) -> None:
        super().__init__(url, status, message)
        self.url = url
        self.status = status
        self.message = message
        self.method = method
        self.body = body
        self.error_code = error_code
        self.params = params
        self.json = json

    @property
    def code(self) -> int:
        return self.status

    @property
    def uri(self) -> str:
        return self.url

    def __str__(self) -> str:
        return f"HTTP {self.status} from {self.method} {self.url}: {self.message}"


class StreamClosedError(ConnectionError):
    """An event stream ended and could not be re-established (or the client closed it).

    ``node`` is the ``"ip:port"`` of the node whose stream failed (``None`` when the client closed
    the whole stream), ``reason`` says why in words.
    """

    def __init__(self, node: Optional[str], reason: str) -> None:
        where = f"event stream of {node}" if node else "event stream"
        super().__init__(f"{where} closed: {reason}")
        self.node = node
        self.reason = reason


class EventsLostError(Exception):
    """The server sent ``event: overflow``: ``dropped`` events were lost before ``next_seq``.

    ``node`` is the ``"ip:port"`` of the node that lost them. Raised by waits on a stream opened
    with ``on_overflow="raise"`` (the default); see ``InjectionEventStream``.
    """

    def __init__(self, node: Optional[str], dropped: Optional[int], next_seq: Optional[int]) -> None:
        super().__init__(f"{node or 'server'} dropped {dropped} event(s) before seq {next_seq}: "
                         f"the stream fell behind the server's history, so an awaited event may be lost")
        self.node = node
        self.dropped = dropped
        self.next_seq = next_seq


class InjectionTimeout(TimeoutError, AssertionError):
    """A wait of the client timed out. Both a ``TimeoutError`` (so ``asyncio.TimeoutError`` on
    Python 3.11) and an ``AssertionError``, which is what ScyllaDB's test/pylib ``wait_for``
    raises, so a ScyllaDB test that expects either catches it."""
