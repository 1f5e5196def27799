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

    It is built and read as ScyllaDB's test/pylib ``HTTPError``: ``HTTPError(uri, code, params,
    json, message)``, with the attributes ``uri`` (the URL asked), ``code`` (the HTTP status),
    ``params`` and ``json`` (the query parameters and JSON body sent) and ``message``, which is the
    raw text of the response body, as in ScyllaDB (for errinj's JSON errors that is
    ``{"message": "...", "code": N}``, so ``"text" in exc.message`` finds the server's words and
    ``json.loads(exc.message)`` parses them).

    errinj adds ``error_message`` (the ``message`` field of that JSON body, or the stripped body
    when it is not such JSON), ``error_code`` (the JSON ``code``, if any), ``method``, and the
    aliases ``status`` (= ``code``), ``url`` (= ``uri``) and ``body`` (= ``message``). errinj 0.1's
    ``HTTPError(url, status, message, body=text)`` still builds the same error.

    Python's ``except`` matches the class itself (not a look-alike of the same name): a ScyllaDB
    test written ``from test.pylib.rest_client import HTTPError`` catches this class once that
    name is bound to it (``test.pylib.rest_client.HTTPError = errinj.HTTPError`` in its conftest,
    before the test modules are imported), or when it imports ``from errinj import HTTPError``.
    """

    def __init__(self, uri: str, code: int, params: Any = None, json: Optional[Mapping] = None,
                 message: str = "", *, method: str = "GET", error_message: Optional[str] = None,
                 error_code: Optional[int] = None, body: Optional[str] = None) -> None:
        if isinstance(params, str) and not message:
            # errinj 0.1's form, HTTPError(url, status, message[, body=raw text]): the third
            # argument is the server's message (ScyllaDB's form passes the query there, never a str).
            error_message = params if error_message is None else error_message
            message, params = (body if body is not None else params), None
        elif body is not None and not message:
            message = body
        super().__init__(message)
        self.uri = uri
        self.code = code
        self.params = params
        self.json = json
        self.message = message
        self.method = method
        self.error_message = error_message if error_message is not None else (message.strip() or f"HTTP {code}")
        self.error_code = error_code

    @property
    def status(self) -> int:
        return self.code

    @property
    def url(self) -> str:
        return self.uri

    @property
    def body(self) -> str:
        return self.message

    def __str__(self) -> str:
        return f"HTTP error {self.code} from {self.method} {self.uri}: {self.error_message}"


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
