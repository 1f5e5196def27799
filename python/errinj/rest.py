"""The REST half of the client: switch injection points on and off, message them, read counters.

The method names and arguments are those of ScyllaDB's test/pylib/rest_client.py
(``ScyllaRESTAPIClient``), so a test written against ScyllaDB's helpers runs against an errinj
server by swapping the client: the node comes first (``node_ip``), ``one_shot`` is sent as
``str(one_shot)`` (``"True"``/``"False"``; the server compares case-insensitively) and parameters
travel as a JSON object of strings. What ScyllaDB answers by polling (``wait_for_injection_enter``)
is answered here from the event stream.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional
from urllib.parse import quote

import aiohttp

from ._nodes import Node, base_url, node_tag, parse_node
from .errors import HTTPError, InjectionTimeout

logger = logging.getLogger("errinj")

API = "/v2/error_injection"


def _injection_path(injection: str, suffix: str = "") -> str:
    return f"{API}/injection/{quote(injection, safe='')}{suffix}"


def error_from_response(method: str, url: str, status: int, text: str,
                        params: Any = None, json: Optional[Mapping] = None) -> HTTPError:
    """Build the ``HTTPError`` for a non-2xx answer: ``message`` is the body as received (as
    ScyllaDB's), ``error_message`` and ``error_code`` come from the server's JSON error body when
    it is one."""
    error_message, code = text.strip(), None
    try:
        body = jsonlib.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            error_message = body["message"]
        if isinstance(body.get("code"), int):
            code = body["code"]
    return HTTPError(url, status, params, json, text, method=method,
                     error_message=error_message or f"HTTP {status}", error_code=code)


class RESTClient:
    """An asyncio client for the errinj REST API (``/v2/error_injection``) of one or more nodes.

    ``port`` is used for every node given as a bare IP; a node may also be given as ``"ip:port"``
    or an ``(ip, port)`` pair (see ``errinj._nodes``). ``token`` is sent as
    ``Authorization: Bearer <token>``. ``timeout`` bounds each REST call, in seconds (ScyllaDB's
    default, 300). A non-2xx answer raises ``HTTPError``; connection failures raise aiohttp's
    ``ClientConnectionError`` subclasses (which are ``OSError``\\ s).

    The client holds one aiohttp session, made on first use in the running event loop; ``close()``
    it (or use ``async with RESTClient(...) as api``) when done.
    """

    def __init__(self, port: int = 10000, token: Optional[str] = None, timeout: float = 300.0) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self._session: Optional[aiohttp.ClientSession] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._warned: set = set()

    async def __aenter__(self) -> "RESTClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session. The client may be used again afterwards (it opens a new one)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to the loop it was made in; pytest-asyncio gives each test a new loop.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            self._loop = loop
        return self._session

    def url(self, node_ip: Node, path: str) -> str:
        """The full URL of ``path`` on ``node_ip``."""
        host, port = parse_node(node_ip, self.port)
        return base_url(host, port) + path

    async def _request(self, method: str, node_ip: Node, path: str, *,
                       params: Optional[Mapping[str, str]] = None,
                       json: Optional[Mapping] = None, timeout: Optional[float] = None) -> str:
        url = self.url(node_ip, path)
        headers = self._headers()
        data = None
        if json is not None:
            data = jsonlib.dumps(json)
            headers["Content-Type"] = "application/json"
        client_timeout = aiohttp.ClientTimeout(total=timeout if timeout is not None else self.timeout)
        logger.debug("errinj REST %s %s params=%s json=%s", method, url, params, json)
        async with self._get_session().request(method, url, params=params, data=data,
                                               headers=headers, timeout=client_timeout) as resp:
            text = await resp.text()
            if not 200 <= resp.status < 300:
                raise error_from_response(method, str(resp.url), resp.status, text, params, json)
            self._log_warning(resp.headers.get("Errinj-Warning"))
            return text

    def _log_warning(self, warning: Optional[str]) -> None:
        """Logs the server's ``Errinj-Warning`` (say, no compiled-in point has the name just
        enabled) once per text, so that a suite enabling a misspelt name in every test is told
        once rather than flooded."""
        if warning and warning not in self._warned:
            self._warned.add(warning)
            logger.warning("errinj: %s", warning)

    async def _get_json(self, node_ip: Node, path: str) -> Any:
        text = await self._request("GET", node_ip, path)
        return jsonlib.loads(text) if text.strip() else None

    # --- injections, as ScyllaRESTAPIClient names them -------------------------------------

    async def enable_injection(self, node_ip: Node, injection: str, one_shot: bool = False,
                               parameters: Optional[Mapping[str, Any]] = {},  # noqa: B006
                               *, term: Optional[str] = None, seed: Optional[int] = None) -> None:
        """Enable ``injection`` on ``node_ip``: ``POST .../injection/{name}?one_shot=True|False`` with
        the parameters as a JSON object of strings. A one-shot fires once, then disables itself.
        Enabling an enabled injection replaces its parameters and one_shot and keeps its counters.

        ``term`` says when and how often it fires (``"2*off->1*on"``, ``"1%return(-5)"``; the fault
        terms of errinj(3)), ``seed`` seeds its percentage draws (an unsigned 64-bit integer; default
        the server's process seed). A bad term raises ``HTTPError`` 400 naming its offset."""
        body = {key: str(value) for key, value in (parameters or {}).items()}
        params = {"one_shot": str(one_shot)}
        if term is not None:
            params["term"] = term
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64:
                raise ValueError(f"seed must be an unsigned 64-bit integer, not {seed!r}")
            params["seed"] = str(seed)
        await self._request("POST", node_ip, _injection_path(injection), params=params, json=body)

    async def disable_injection(self, node_ip: Node, injection: str) -> None:
        """Disable ``injection`` (releasing every thread parked in it); unknown names are not an error."""
        await self._request("DELETE", node_ip, _injection_path(injection))

    async def disable_all_injections(self, node_ip: Node) -> None:
        """Disable every injection on ``node_ip`` (``DELETE .../injection``)."""
        await self._request("DELETE", node_ip, f"{API}/injection")

    async def get_injection(self, node_ip: Node, injection: str) -> List[Dict[str, Any]]:
        """The state of ``injection``, as ScyllaDB's per-shard JSON list: ``[{"enabled": true,
        "one_shot": false, "parameters": [{"key": k, "value": v}], "term": "on", "seed": S}]`` or
        ``[{"enabled": false}]``."""
        return await self._get_json(node_ip, _injection_path(injection))

    async def get_enabled_injections(self, node_ip: Node) -> List[str]:
        """The names of the injections enabled on ``node_ip``."""
        data = await self._get_json(node_ip, f"{API}/injection")
        assert isinstance(data, list), f"get_enabled_injections: expected a list, got {data!r}"
        return data

    async def message_injection(self, node_ip: Node, injection: str) -> None:
        """Send a message to ``injection``: releases every handler of it now waiting for a message;
        a message sent before a handler waits still counts. Ignored when not enabled."""
        await self._request("POST", node_ip, _injection_path(injection, "/message"))

    async def inject_disconnect(self, node_ip: Node, ip_to_disconnect_from: str) -> None:
        """Ask ``node_ip`` to drop its connections from ``ip_to_disconnect_from``
        (``POST .../disconnect/{ip}``): the server calls the program's disconnect handler
        (``errinj_set_disconnect_handler``); ``HTTPError`` 404 when the program registered none."""
        await self._request("POST", node_ip, f"{API}/disconnect/{quote(ip_to_disconnect_from, safe='')}")

    async def get_injection_enter_count(self, node_ip: Node, injection: str) -> int:
        """How many times ``injection`` fired since it was last enabled (0 when never enabled)."""
        return int(await self._get_json(node_ip, _injection_path(injection, "/enters")))

    async def get_injection_waiters(self, node_ip: Node, injection: str) -> int:
        """How many threads are parked in ``injection`` waiting for a message now."""
        return int(await self._get_json(node_ip, _injection_path(injection, "/waiters")))

    async def get_points(self, node_ip: Node) -> List[Dict[str, Any]]:
        """The catalogue of every point compiled into the process, enabled or not:
        ``[{"name", "type", "file", "line", "enabled", "enters", "waiters"}]``."""
        return await self._get_json(node_ip, f"{API}/points")

    async def get_status(self, node_ip: Node) -> Dict[str, Any]:
        """The server's status: ``{"version", "seq", "subscribers", "dropped", "shards"}``."""
        return await self._get_json(node_ip, f"{API}/status")

    async def get_coverage(self, node_ip: Node) -> List[Dict[str, Any]]:
        """Coverage since the server's last reset, one dict per compiled-in point and per name armed
        since then: ``{"name", "type", "file", "line", "enabled", "armed", "evaluations",
        "enters"}`` (``type``, ``file``, ``line`` are None for a name no compiled point has)."""
        return await self._get_json(node_ip, f"{API}/coverage")

    async def reset_coverage(self, node_ip: Node) -> None:
        """Start the server's coverage counters from zero (``DELETE .../coverage``)."""
        await self._request("DELETE", node_ip, f"{API}/coverage")

    def injection_event_stream(self, node_ip: Node, **options: Any):
        """``injection_event_stream`` for ``node_ip`` with this client's port and token; see there."""
        from .stream import injection_event_stream
        host, port = parse_node(node_ip, self.port)
        options.setdefault("token", self.token)
        return injection_event_stream(host, port=port, **options)

    async def wait_for_injection_enter(self, node_ip: Node, injection: str, threshold: int = 1,
                                       deadline: Optional[float] = None, *,
                                       timeout: Optional[float] = None) -> int:
        """Wait until ``injection`` on ``node_ip`` has fired at least ``threshold`` times since it was
        last enabled, and return that count.

        It waits on the event stream, not by polling: it opens a stream filtered to ``injection``
        (phase ``hit``), and only once the server has confirmed the subscription reads the enter
        count once. If the count already reaches ``threshold`` it returns it; otherwise it waits for
        a ``hit`` event whose ``enters`` reaches ``threshold``. No fire can fall between the two,
        because every fire after the subscription reaches the stream. ``deadline`` is ScyllaDB's:
        an absolute ``time.time()`` value (positional or keyword); ``timeout`` is seconds from now;
        neither: 30 s. Raises ``InjectionTimeout`` (a ``TimeoutError`` and an ``AssertionError``)
        when time runs out, ``StreamClosedError`` if the stream is lost for good.
        """
        if timeout is None:
            timeout = deadline - time.time() if deadline is not None else 30.0
        timeout = max(timeout, 0.0)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout

        where = node_tag(*parse_node(node_ip, self.port))

        def timed_out(count: Optional[int]) -> InjectionTimeout:
            fired = f"fired {count} time(s)" if count is not None else "did not open its event stream"
            return InjectionTimeout(f"{injection!r} on {where} {fired} in {timeout:.3g}s, "
                                    f"waited for {threshold} enter(s)")

        if timeout == 0:  # no time to subscribe: the count as it is now decides
            count = await self.get_injection_enter_count(node_ip, injection)
            if count < threshold:
                raise timed_out(count)
            return count
        stream = self.injection_event_stream(node_ip, injection=injection, connect_timeout=timeout + 1.0)
        try:
            await asyncio.wait_for(stream.open(), timeout)
        except asyncio.TimeoutError:
            raise timed_out(None) from None
        try:
            count = await self.get_injection_enter_count(node_ip, injection)
            while count < threshold:
                remaining = end - loop.time()
                try:
                    event = await stream.wait_for_injection(injection, timeout=max(remaining, 0))
                except asyncio.TimeoutError as exc:
                    raise timed_out(count) from exc
                enters = event.get("enters")
                count = int(enters) if isinstance(enters, int) else count + 1
            return count
        finally:
            await stream.close()

    async def wait_for_injection(self, node_ip: Node, injection: str, timeout: float = 30.0,
                                 phase: str = "hit", *, count: int = 1,
                                 after: Optional[int] = None) -> List[Dict[str, Any]]:
        """Wait on the server (``GET .../injection/{name}/wait``) for the first ``count`` events of
        ``injection`` in ``phase`` (``"hit"``, ``"waiting"``, ``"released"``, ``"timeout"`` or ``"all"``)
        with a seq above ``after``, and return them (a list of event dicts, oldest first).

        ``after`` defaults to the seq at the injection's latest enable, so ``enable_injection``, then
        the action, then this call can never miss a hit, however fast it was: no stream is needed. A
        wait consumes nothing (another wait, or a stream, sees the same events). Raises
        ``TimeoutError`` (``asyncio.TimeoutError``) naming what was awaited after ``timeout``
        seconds (fractions allowed; at most 3600 per request, longer waits ask again), and
        ``HTTPError`` with status 410 when events after ``after`` are no longer kept by the server.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        path = _injection_path(injection, "/wait")
        while True:
            left = max(deadline - loop.time(), 0.0)
            piece = min(left, 3600.0)
            params = {"count": str(count), "phase": phase, "timeout": f"{piece:.3f}"}
            if after is not None:
                params["after"] = str(after)
            try:
                text = await self._request("GET", node_ip, path, params=params, timeout=piece + 30)
            except HTTPError as exc:
                if exc.status != 408:
                    raise
                if loop.time() < deadline:
                    continue  # the server's per-request limit, not the caller's: ask again
                raise asyncio.TimeoutError(
                    f"waited {timeout}s on {node_ip} for {count} {phase!r} event(s) of {injection!r}: "
                    f"{exc.error_message}") from None
            return jsonlib.loads(text)


class InjectionHandler:
    """A handle on an enabled injection, as ScyllaDB's: ``message()`` releases its waiting handlers."""

    def __init__(self, api: RESTClient, injection: str, node_ip: Node) -> None:
        self.api = api
        self.injection = injection
        self.node_ip = node_ip

    async def message(self) -> None:
        """Send a message to the injection (see ``RESTClient.message_injection``)."""
        await self.api.message_injection(self.node_ip, self.injection)

    async def enters(self) -> int:
        """The injection's enter count (see ``RESTClient.get_injection_enter_count``)."""
        return await self.api.get_injection_enter_count(self.node_ip, self.injection)

    async def waiters(self) -> int:
        """Threads parked in the injection now (see ``RESTClient.get_injection_waiters``)."""
        return await self.api.get_injection_waiters(self.node_ip, self.injection)

    async def disable(self) -> None:
        """Disable the injection now (exiting the context manager disables it again, harmlessly)."""
        await self.api.disable_injection(self.node_ip, self.injection)


@asynccontextmanager
async def inject_error(api: RESTClient, node_ip: Node, injection: str,
                       parameters: Optional[Mapping[str, Any]] = None) -> AsyncIterator[InjectionHandler]:
    """``async with inject_error(api, ip, name, params) as handler:`` enables ``name`` (not one-shot)
    on entry and disables it on exit, even when the body raises. Unlike ScyllaDB's, it does not skip
    the test when the build has no injections: an errinj server always accepts an enable."""
    await api.enable_injection(node_ip, injection, False, parameters or {})
    try:
        yield InjectionHandler(api, injection, node_ip)
    finally:
        logger.info("disabling error injection %s on %s", injection, node_ip)
        await api.disable_injection(node_ip, injection)


class inject_error_one_shot:  # noqa: N801 (a function in ScyllaDB; a class here so it can be both)
    """Enable ``injection`` as a one-shot; two ways to use it:

    - ``handler = await inject_error_one_shot(api, ip, name)``: ScyllaDB's form; enables it and
      returns an ``InjectionHandler``; the injection disables itself once it fires.
    - ``async with inject_error_one_shot(api, ip, name) as handler:``: enables it on entry and
      disables it on exit (in case it never fired, or a one-shot handler is still parked).
    """

    def __init__(self, api: RESTClient, node_ip: Node, injection: str,
                 parameters: Optional[Mapping[str, Any]] = None) -> None:
        self.api = api
        self.node_ip = node_ip
        self.injection = injection
        self.parameters = parameters or {}

    async def _enable(self) -> InjectionHandler:
        await self.api.enable_injection(self.node_ip, self.injection, True, self.parameters)
        return InjectionHandler(self.api, self.injection, self.node_ip)

    def __await__(self):
        return self._enable().__await__()

    async def __aenter__(self) -> InjectionHandler:
        return await self._enable()

    async def __aexit__(self, *exc: Any) -> None:
        await self.api.disable_injection(self.node_ip, self.injection)
