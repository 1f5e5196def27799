"""A fake errinj server in aiohttp.web, for testing the client without the C library.

It implements the REST API and the SSE stream of errinj-events(7) closely enough for the
client, records every request, and lets a test misbehave on purpose: write frames byte by byte or
with CR / CRLF line ends, send raw bytes, hold back ``: connected``, report an overflow, drop a
connection (cleanly or abruptly), answer the next request with an error. Tests synchronise with it
through ``wait_until(condition)``, never with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import unquote

from aiohttp import web

API = "/v2/error_injection"


class Recorded:
    def __init__(self, request: web.Request, body: str) -> None:
        self.method = request.method
        self.raw_path = request.raw_path.split("?")[0]
        self.query = list(request.query.items())
        self.headers = dict(request.headers)
        self.body = body

    def query_values(self, key: str) -> List[str]:
        return [v for k, v in self.query if k == key]

    def __repr__(self) -> str:
        return f"<{self.method} {self.raw_path} {self.query}>"


class Subscriber:
    def __init__(self, request: Recorded, filters: Dict[str, Any]) -> None:
        self.request = request
        self.filters = filters
        self.queue: "asyncio.Queue[Any]" = asyncio.Queue()
        self.connected_sent = False

    def wants(self, event: Dict[str, Any]) -> bool:
        f = self.filters
        if f["injection"] and event["injection"] not in f["injection"]:
            return False
        if f["type"] and event["type"] not in f["type"]:
            return False
        if f["shard"] is not None and event["shard"] != f["shard"]:
            return False
        phases = f["phase"] or ["hit"]
        return "all" in phases or event["phase"] in phases


def frame(event: Dict[str, Any]) -> str:
    return f"id: {event['seq']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


class FakeServer:
    def __init__(self, token: Optional[str] = None) -> None:
        self.token = token
        self.injections: Dict[str, Dict[str, Any]] = {}
        self.requests: List[Recorded] = []
        self.history: List[Dict[str, Any]] = []
        self.subscribers: List[Subscriber] = []
        self.subscriptions = 0          # every stream ever accepted
        self.seq = 0
        self.line_end = "\n"            # how frames end their lines: "\n", "\r" or "\r\n"
        self.chunk_size: Optional[int] = None   # write frames in pieces of this many bytes
        self.hold_connected: Optional[asyncio.Event] = None   # delay ': connected' until set
        self.send_connected = True
        self.fail_next: Optional[tuple] = None   # (status, message) for the next REST request
        self.events_status: Optional[tuple] = None   # (status, message) for every /events request
        self.instance: Optional[str] = None   # reported in /status when set
        self._watchers: List["asyncio.Future[None]"] = []
        self._runner: Optional[web.AppRunner] = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, port: int = 0) -> "FakeServer":
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, shutdown_timeout=1.0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.drop_all("abort")
        if self.hold_connected is not None:
            self.hold_connected.set()
        # aiohttp's shutdown does not wait for handlers whose client already left: wait for ours.
        await self.wait_until(lambda: not self.subscribers, timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _notify(self) -> None:
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds, re-checking whenever the server's state changes."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"fake server: condition not met within {timeout}s")
            # Registered before waiting, so a change between the check and the wait is not missed.
            changed = asyncio.get_running_loop().create_future()
            self._watchers.append(changed)
            try:
                await asyncio.wait_for(changed, remaining)
            except asyncio.TimeoutError:
                pass

    async def wait_subscriptions(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` streams in all have been accepted (and told ': connected')."""
        await self.wait_until(lambda: self.subscriptions >= count and
                              all(s.connected_sent for s in self.subscribers), timeout)

    def requests_to(self, suffix: str) -> List[Recorded]:
        return [r for r in self.requests if r.raw_path.endswith(suffix)]

    # -- events -------------------------------------------------------------------------------

    def fire(self, injection: str, phase: str = "hit", type: str = "handler", shard: int = 0,
             parameters: Optional[Dict[str, str]] = None, **extra: Any) -> Dict[str, Any]:
        """Publish an event as the C library would, and count an enter for a hit."""
        state = self.injections.get(injection)
        if phase == "hit" and state is not None:
            state["enters"] += 1
        self.seq += 1
        event = {"seq": self.seq, "injection": injection, "type": type, "phase": phase,
                 "shard": shard, "thread": 4242, "ts_ns": time.time_ns(),
                 "enters": state["enters"] if state else 1,
                 "parameters": parameters or (state["parameters"] if state else {}),
                 "file": "fake.c", "line": 1, **extra}
        self.history.append(event)
        for sub in self.subscribers:
            if sub.wants(event):
                sub.queue.put_nowait(frame(event))
        return event

    def fire_unrecorded(self, injection: str, **kwargs: Any) -> Dict[str, Any]:
        """Number an event but let no subscriber see it live (as if it was lost in transit);
        it stays in the history for replay."""
        subscribers, self.subscribers = self.subscribers, []
        try:
            return self.fire(injection, **kwargs)
        finally:
            self.subscribers = subscribers

    def send_raw(self, data: bytes) -> None:
        """Send bytes to every subscriber exactly as given (no line-end conversion)."""
        for sub in self.subscribers:
            sub.queue.put_nowait(data)

    def overflow(self, dropped: int, next_seq: int) -> None:
        for sub in self.subscribers:
            sub.queue.put_nowait(f"event: overflow\ndata: {json.dumps({'dropped': dropped, 'next_seq': next_seq})}\n\n")

    def drop_all(self, how: str = "close") -> None:
        """End every stream: "close" ends the response cleanly, "abort" cuts the TCP connection."""
        for sub in self.subscribers:
            sub.queue.put_nowait(("drop", how))

    # -- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text()
        rec = Recorded(request, body)
        self.requests.append(rec)
        self._notify()
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "missing or wrong bearer token")
        if self.fail_next is not None and not rec.raw_path.endswith("/events"):
            status, message = self.fail_next
            self.fail_next = None
            return self._error(status, message)
        request["recorded"] = rec
        return await handler(request)

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"message": message, "code": status}, status=status)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        rec: Recorded = request["recorded"]
        path = rec.raw_path
        if not path.startswith(API + "/"):
            return self._error(404, f"no such path {path}")
        parts = [unquote(p) for p in path[len(API) + 1:].split("/")]
        m = request.method
        if parts == ["events"]:
            return await self._events(request, rec) if m == "GET" else self._error(405, "GET only")
        if parts == ["status"] and m == "GET":
            status = {"version": "fake", "seq": self.seq, "shards": 1, "dropped": 0,
                      "subscribers": len(self.subscribers)}
            if self.instance is not None:
                status["instance"] = self.instance
            return web.json_response(status)
        if parts == ["points"] and m == "GET":
            return web.json_response([{"name": n, "type": "handler", "file": "fake.c", "line": 1,
                                       "enabled": True, "enters": s["enters"], "waiters": 0}
                                      for n, s in self.injections.items()])
        if parts == ["injection"]:
            if m == "GET":
                return web.json_response(sorted(self.injections))
            if m == "DELETE":
                self.injections.clear()
                return web.Response()
            return self._error(405, "GET or DELETE")
        if len(parts) >= 2 and parts[0] == "injection":
            name = parts[1]
            rest = parts[2:]
            if not rest:
                return self._injection(m, name, rec)
            state = self.injections.get(name)
            if rest == ["message"] and m == "POST":
                if state is not None:
                    state["messages"] += 1
                return web.Response()
            if rest == ["enters"] and m == "GET":
                return web.Response(text=str(state["enters"] if state else 0))
            if rest == ["waiters"] and m == "GET":
                return web.Response(text=str(state["waiters"] if state else 0))
        return self._error(404, f"no such path {path}")

    def _injection(self, method: str, name: str, rec: Recorded) -> web.Response:
        if method == "POST":
            one_shot = rec.query_values("one_shot")
            if len(one_shot) != 1 or one_shot[0].lower() not in ("true", "false"):
                return self._error(400, f"one_shot must be true or false, not {one_shot}")
            try:
                params = json.loads(rec.body) if rec.body.strip() else None
            except ValueError:
                return self._error(400, "malformed JSON body")
            if params is not None and not isinstance(params, dict):
                return self._error(400, "body must be a JSON object")
            old = self.injections.get(name, {"enters": 0, "waiters": 0, "messages": 0})
            self.injections[name] = {**old, "one_shot": one_shot[0].lower() == "true",
                                     "parameters": {k: str(v) for k, v in (params or {}).items()}}
            return web.Response()
        if method == "DELETE":
            self.injections.pop(name, None)
            return web.Response()
        if method == "GET":
            state = self.injections.get(name)
            if state is None:
                return web.json_response([{"enabled": False}])
            return web.json_response([{"enabled": True, "one_shot": state["one_shot"],
                                       "parameters": [{"key": k, "value": v}
                                                      for k, v in state["parameters"].items()]}])
        return self._error(405, "POST, GET or DELETE")

    async def _events(self, request: web.Request, rec: Recorded) -> web.StreamResponse:
        if self.events_status is not None:
            return self._error(*self.events_status)
        q = request.query
        try:
            shard = int(q["shard"]) if "shard" in q else None
            resume = request.headers.get("Last-Event-ID", q.get("since"))
            resume_seq = int(resume) if resume is not None else None
        except ValueError:
            return self._error(400, "shard, since and Last-Event-ID must be integers")
        filters = {"injection": q.getall("injection", []), "type": q.getall("type", []),
                   "shard": shard, "phase": q.getall("phase", [])}
        sub = Subscriber(rec, filters)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        if resume_seq is not None:
            for event in self.history:
                if event["seq"] > resume_seq and sub.wants(event):
                    sub.queue.put_nowait(frame(event))
        self.subscribers.append(sub)
        self.subscriptions += 1
        try:
            if self.hold_connected is not None:
                self._notify()
                await self.hold_connected.wait()
            if self.send_connected:
                await self._write(resp, ": connected\n\n")
            sub.connected_sent = True
            self._notify()
            while True:
                try:
                    # aiohttp 3.8 does not cancel a handler whose client left: look now and then,
                    # as the real server's heartbeat does.
                    item = await asyncio.wait_for(sub.queue.get(), 0.05)
                except asyncio.TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        return resp
                    continue
                if isinstance(item, tuple):
                    if item[1] == "abort":
                        if request.transport is not None:
                            request.transport.close()
                        return resp
                    break
                await self._write(resp, item)
            await resp.write_eof()
            return resp
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            self.subscribers.remove(sub)
            self._notify()

    async def _write(self, resp: web.StreamResponse, item: Any) -> None:
        data = item if isinstance(item, bytes) else item.replace("\n", self.line_end).encode()
        step = self.chunk_size or len(data)
        for i in range(0, len(data), step):
            await resp.write(data[i:i + step])
