"""ScyllaDB's test code, call for call, against kvnode: each test here is written the way
ScyllaDB's test/pylib helpers and its cluster tests call the error-injection API (a ``manager``
whose ``api`` takes a bare server IP and knows the port, ``one_shot`` passed positionally,
``wait_for_injection_enter`` with an absolute ``time.time()`` deadline and ``AssertionError``
expected on timeout, ``except HTTPError`` reading ``code``/``uri``/``message``, the
``InjectionEventStream(ip, port)`` ... ``connect()`` ... ``disconnect()`` stream client of
ScyllaDB's unmerged event-stream change), so that those call shapes are proven to work with
errinj unchanged. Only the names are imported from errinj instead of test.pylib."""

import asyncio
import json
import time
import types

import pytest

from kvfixtures import DEADLINE, connect, kvnode, kvnodes  # noqa: F401 (fixtures)
from errinj import (HTTPError, InjectionEventStream, RESTClient, inject_error, inject_error_one_shot,
                    injection_event_stream)


class Server:
    """What ScyllaDB's tests get from ``manager.running_servers()``: the node's IP."""

    def __init__(self, node):
        self.ip_addr = node.ip
        self.server_id = node.log.stem


class Manager:
    """The part of ScyllaDB's ManagerClient these tests use: ``api`` is a REST client whose calls
    take a bare IP, the port being the client's (10000 for ScyllaDB; kvnode's random port here)."""

    def __init__(self, node):
        self.api = RESTClient(port=node.api_port)
        self.node = node

    async def running_servers(self):
        return [Server(self.node)]


@pytest.fixture
async def manager(kvnode):
    m = Manager(kvnode)
    yield m
    await m.api.close()


async def test_inject_error_parks_a_write_until_the_handler_is_messaged(manager, kvnode, connect):
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    key = kvnode.key_on_shard(1)
    async with inject_error(manager.api, server.ip_addr, "kv_put_before_apply",
                            parameters={"key": key}) as handler:
        await kv.send(f"PUT {key} parked")
        # PR #29972's form: threshold and an absolute deadline, positionally.
        count = await manager.api.wait_for_injection_enter(server.ip_addr, "kv_put_before_apply", 1,
                                                           time.time() + DEADLINE)
        assert count == 1
        assert "kv_put_before_apply" in await manager.api.get_enabled_injections(server.ip_addr)
        await handler.message()
        assert await kv.reply() == "OK"
    assert "kv_put_before_apply" not in await manager.api.get_enabled_injections(server.ip_addr)


async def test_enable_message_and_disable_with_positional_one_shot(manager, kvnode, connect):
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    key = kvnode.key_on_shard(2)
    await manager.api.enable_injection(server.ip_addr, "kv_put_before_apply", False, {"key": key})
    state = await manager.api.get_injection(server.ip_addr, "kv_put_before_apply")
    assert state[0]["enabled"] is True and state[0]["one_shot"] is False
    assert {"key": "key", "value": key} in state[0]["parameters"]
    await kv.send(f"PUT {key} v")
    await manager.api.wait_for_injection_enter(server.ip_addr, "kv_put_before_apply", deadline=time.time() + DEADLINE)
    await manager.api.message_injection(server.ip_addr, "kv_put_before_apply")
    assert await kv.reply() == "OK"
    await manager.api.disable_injection(server.ip_addr, "kv_put_before_apply")
    assert (await manager.api.get_injection(server.ip_addr, "kv_put_before_apply"))[0]["enabled"] is False


async def test_one_shot_handler_from_inject_error_one_shot(manager, kvnode, connect):
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    handler = await inject_error_one_shot(manager.api, server.ip_addr, "kv_put_fail")
    assert await kv.call("PUT a 1") == "ERR injected"
    assert await kv.call("PUT a 2") == "OK"
    assert await manager.api.get_injection_enter_count(server.ip_addr, "kv_put_fail") == 1
    assert "kv_put_fail" not in await manager.api.get_enabled_injections(server.ip_addr)
    await handler.message()   # a message to a spent one-shot is ignored, as in ScyllaDB


async def test_wait_for_injection_enter_past_its_deadline_is_an_assertion_error(manager):
    server = (await manager.running_servers())[0]
    await manager.api.enable_injection(server.ip_addr, "kv_put_fail", True)
    started = time.time()
    with pytest.raises(AssertionError, match="kv_put_fail"):
        await manager.api.wait_for_injection_enter(server.ip_addr, "kv_put_fail", 1, time.time() + 0.5)
    assert time.time() - started >= 0.5
    # A deadline already gone still asks once, and fails the same way.
    with pytest.raises(AssertionError):
        await manager.api.wait_for_injection_enter(server.ip_addr, "kv_put_fail", deadline=time.time() - 1)
    await manager.api.disable_injection(server.ip_addr, "kv_put_fail")


async def test_except_http_error_reads_code_uri_and_the_body(manager):
    server = (await manager.running_servers())[0]
    try:
        await manager.api.enable_injection(server.ip_addr, "x" * 256, False)
    except HTTPError as e:
        assert e.code == 400
        assert e.uri.startswith(f"http://{server.ip_addr}:{manager.node.api_port}/v2/error_injection/injection/")
        assert e.params == {"one_shot": "False"}
        body = json.loads(e.message)          # the body as received, as in ScyllaDB
        assert body["code"] == 400 and "name" in body["message"]
        assert e.error_message == body["message"]
    else:
        pytest.fail("an over-long name was accepted")


async def test_http_error_caught_under_scylladbs_name_once_bound(manager):
    """A ScyllaDB test says ``from test.pylib.rest_client import HTTPError``. ``except`` matches
    the class itself, so a look-alike class of that name does not catch errinj's error; binding
    the name to errinj's class (what a conftest does before the tests import it) does, and
    ScyllaDB's own raise, ``HTTPError(uri, code, params, json, text)``, still works."""
    server = (await manager.running_servers())[0]

    class LookAlike(Exception):
        pass

    rest_client = types.ModuleType("rest_client")   # stands in for test.pylib.rest_client
    rest_client.HTTPError = LookAlike
    with pytest.raises(HTTPError):
        try:
            await manager.api.enable_injection(server.ip_addr, "", False)
        except rest_client.HTTPError:
            pytest.fail("a different class of the same name caught it")

    rest_client.HTTPError = HTTPError
    caught = None
    try:
        await manager.api.enable_injection(server.ip_addr, "x" * 256, False)
    except rest_client.HTTPError as e:
        caught = e
    assert caught is not None and caught.code == 400
    own = rest_client.HTTPError("http://h:1/p", 500, None, None, "body text")
    assert (own.uri, own.code, own.message) == ("http://h:1/p", 500, "body text")


async def test_event_stream_client_connect_wait_disconnect(manager, kvnode, connect):
    """ScyllaDB's event-stream change used its client like this: made with the node's IP and the
    API port, connected, waited on, disconnected."""
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    stream = InjectionEventStream(server.ip_addr, kvnode.api_port)
    await stream.connect()
    try:
        await manager.api.enable_injection(server.ip_addr, "kv_put_fail", True)
        assert await kv.call("PUT k1 v1") == "ERR injected"
        event = await stream.wait_for_injection("kv_put_fail", timeout=DEADLINE)
    finally:
        await stream.disconnect()
    assert event["injection"] == "kv_put_fail" and event["type"] == "exception"
    assert event["shard"] == kvnode.shard_of("k1") and event["enters"] == 1
    assert stream.closed


async def test_event_stream_as_a_context_manager_with_filters(manager, kvnode, connect):
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    key = kvnode.key_on_shard(3)
    async with injection_event_stream(server.ip_addr, port=kvnode.api_port,
                                      injection="kv_put_before_apply", phase="all") as stream:
        async with inject_error(manager.api, server.ip_addr, "kv_put_before_apply",
                                parameters={"key": key}) as handler:
            await kv.send(f"PUT {key} v")
            waiting = await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
            await handler.message()
            released = await stream.wait_for_injection("kv_put_before_apply", phase="released", timeout=DEADLINE)
            assert await kv.reply() == "OK"
    assert waiting["shard"] == released["shard"] == kvnode.shard_of(key)
    assert released["seq"] > waiting["seq"]


async def test_inject_disconnect_drops_the_connections_from_an_address(manager, kvnode, connect):
    server = (await manager.running_servers())[0]
    kv = await connect(kvnode)
    assert await kv.call("PUT d v") == "OK"
    await manager.api.inject_disconnect(server.ip_addr, "127.0.0.1")
    assert await asyncio.wait_for(kv.reader.read(), DEADLINE) == b"", "the connection was not dropped"
    again = await connect(kvnode)
    assert await again.call("GET d") == "VALUE v"


async def test_inject_disconnect_without_a_handler_is_http_error_404(host):
    """A program that registered no disconnect handler (the test host) answers 404, and the
    client raises it as ScyllaDB's client would."""
    h = await host()
    api = RESTClient(port=h.port)
    try:
        with pytest.raises(HTTPError) as info:
            await api.inject_disconnect("127.0.0.1", "127.0.0.2")
    finally:
        await api.close()
    assert info.value.code == 404
    assert info.value.uri.endswith("/v2/error_injection/disconnect/127.0.0.2")
    assert json.loads(info.value.message)["code"] == 404
