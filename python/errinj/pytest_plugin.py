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
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator, Callable, List, Optional, Sequence, Union

import pytest
import pytest_asyncio

from ._nodes import Node
from .rest import RESTClient
from .stream import InjectionEventStream, cluster_event_stream, injection_event_stream


@pytest.fixture
def errinj_port() -> int:
    """The default REST/SSE port of the server under test."""
    return 10000


@pytest.fixture
def errinj_token() -> Optional[str]:
    """The default bearer token (``$ERRINJ_TOKEN``, the variable the server reads, or None)."""
    return os.environ.get("ERRINJ_TOKEN") or None


@pytest_asyncio.fixture
async def errinj_api(errinj_port: int, errinj_token: Optional[str]) -> AsyncIterator[Callable[..., RESTClient]]:
    """A factory of ``RESTClient``\\ s, closed at the end of the test."""
    clients: List[RESTClient] = []

    def make(port: Optional[int] = None, token: Optional[str] = None, **kwargs: Any) -> RESTClient:
        client = RESTClient(port=errinj_port if port is None else port,
                            token=errinj_token if token is None else token, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


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
