"""End-to-end: the seed's scenarios and every injection type, against real kvnode processes,
through the Python client (REST and the SSE event stream)."""

import asyncio
import time

import pytest

from kvfixtures import DEADLINE, api, connect, kvnode, kvnodes, wait_for_log  # noqa: F401 (fixtures)
from errinj import (EventsLostError, HTTPError, StreamClosedError, cluster_event_stream, inject_error,
                    inject_error_one_shot, injection_event_stream)


async def test_injection_event_stream_basic(kvnode, api, connect):
    kv = await connect(kvnode)
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port) as stream:
        await api.enable_injection(kvnode.node, "kv_put_fail", one_shot=False)
        assert await kv.call("PUT k1 v1") == "ERR injected"
        event = await stream.wait_for_injection("kv_put_fail", timeout=DEADLINE)
    assert event["injection"] == "kv_put_fail"
    assert event["type"] == "exception"
    assert event["phase"] == "hit"
    assert event["shard"] == kvnode.shard_of("k1")
    assert event["enters"] == 1
    assert event["seq"] >= 1
    assert event["file"].endswith("store.c") and event["line"] > 0


async def test_injection_event_stream_multiple_injections(kvnode, api, connect):
    kv = await connect(kvnode)
    names = ["kv_put_fail", "kv_get_delay", "kv_accept"]
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port) as stream:
        await api.enable_injection(kvnode.node, "kv_put_fail", one_shot=True)
        await api.enable_injection(kvnode.node, "kv_get_delay", one_shot=True, parameters={"duration_ms": 1})
        await api.enable_injection(kvnode.node, "kv_accept", one_shot=True)
        assert await kv.call("PUT a 1") == "ERR injected"
        assert await kv.call("GET a") == "NOTFOUND"
        refused = await connect(kvnode)
        assert await refused.reply() == "ERR injected"
        # Waited in the reverse order of arrival: no waiter steals another's event.
        events = await stream.wait_for_injections(list(reversed(names)), timeout=DEADLINE)
    assert [e["injection"] for e in events] == list(reversed(names))
    assert {e["type"] for e in events} == {"exception", "sleep", "enter"}
    assert all(e["enters"] == 1 for e in events)


async def test_injection_event_vs_log_parsing_comparison(kvnode, api, connect, capsys):
    """The same hit found twice: by the event stream and by log parsing as ScyllaDB's
    log_browsing.py does it. Both times are reported; the event must not come after the log."""
    kv = await connect(kvnode)
    key = kvnode.key_on_shard(1)
    log_start = kvnode.log.stat().st_size
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, phase="waiting") as stream:
        await api.enable_injection(kvnode.node, "kv_put_before_apply", one_shot=False, parameters={"key": key})
        sent = time.monotonic()
        await kv.send(f"PUT {key} parked")
        event = await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
        event_after = time.monotonic() - sent
        line, _ = await asyncio.to_thread(wait_for_log, kvnode.log, r"kv_put_before_apply: waiting for message",
                                          log_start)
        log_after = time.monotonic() - sent
        await api.message_injection(kvnode.node, "kv_put_before_apply")
        assert await kv.reply() == "OK"
    assert event["shard"] == kvnode.shard_of(key)
    assert f"[shard {event['shard']}]" in line
    with capsys.disabled():
        print(f"\n  same hit: event after {event_after * 1e3:.3f} ms, log line after {log_after * 1e3:.3f} ms")
    assert event_after <= log_after


async def test_every_injection_type_reports_its_type(kvnode, api, connect):
    kv = await connect(kvnode)
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, phase="all") as stream:
        await api.enable_injection(kvnode.node, "kv_get_delay", one_shot=True, parameters={"duration_ms": 1})
        await api.enable_injection(kvnode.node, "kv_put_fail", one_shot=True)
        await api.enable_injection(kvnode.node, "kv_accept", one_shot=True)
        assert await kv.call("GET x") == "NOTFOUND"
        assert await kv.call("PUT x 1") == "ERR injected"
        assert await (await connect(kvnode)).reply() == "ERR injected"
        # kv_flush is armed before the write that gives its shard a flush to drop, so the 50 ms
        # flush cannot run before the enable; the parked PUT goes to another shard, which would
        # not flush while parked.
        flushed_key, parked_key = kvnode.key_on_shard(0, "y"), kvnode.key_on_shard(1, "z")
        await api.enable_injection(kvnode.node, "kv_flush", one_shot=True)
        assert await kv.call(f"PUT {flushed_key} 2") == "OK"
        await api.enable_injection(kvnode.node, "kv_put_before_apply", one_shot=True)
        await kv.send(f"PUT {parked_key} 3")
        got = {}
        for name in ["kv_get_delay", "kv_put_fail", "kv_accept", "kv_flush", "kv_put_before_apply"]:
            got[name] = (await stream.wait_for_injection(name, timeout=DEADLINE))["type"]
        waiting = await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
        await api.message_injection(kvnode.node, "kv_put_before_apply")
        assert await kv.reply() == "OK"
    assert got == {"kv_get_delay": "sleep", "kv_put_fail": "exception", "kv_accept": "enter",
                   "kv_flush": "lambda", "kv_put_before_apply": "handler"}
    assert waiting["injection"] == "kv_put_before_apply"


async def test_parameters_reach_the_handler_and_the_event(kvnode, api, connect):
    kv = await connect(kvnode)
    parked_key = kvnode.key_on_shard(2, "p")
    other_key = kvnode.key_on_shard(3, "o")
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, injection="kv_put_before_apply",
                                      phase="all") as stream:
        await api.enable_injection(kvnode.node, "kv_put_before_apply", one_shot=False,
                                   parameters={"key": parked_key, "timeout_ms": 60000})
        assert await kv.call(f"PUT {other_key} free") == "OK"      # not the parameter's key: no park
        await kv.send(f"PUT {parked_key} held")
        waiting = await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
        assert waiting["parameters"] == {"key": parked_key, "timeout_ms": "60000"}
        assert waiting["shard"] == kvnode.shard_of(parked_key)
        state = await api.get_injection(kvnode.node, "kv_put_before_apply")
        assert state[0].pop("term") == "on" and isinstance(state[0].pop("seed"), int), state
        assert state == [
            {"enabled": True, "one_shot": False,
             "parameters": [{"key": "key", "value": parked_key}, {"key": "timeout_ms", "value": "60000"}]}]
        await api.message_injection(kvnode.node, "kv_put_before_apply")
        released = await stream.wait_for_injection("kv_put_before_apply", phase="released", timeout=DEADLINE)
        assert released["seq"] > waiting["seq"]
        assert await kv.reply() == "OK"


async def test_one_shot_fires_once_and_enters_stays_one(kvnode, api, connect):
    kv = await connect(kvnode)
    async with inject_error_one_shot(api, kvnode.node, "kv_put_fail"):
        assert await kv.call("PUT a 1") == "ERR injected"
        assert await kv.call("PUT a 2") == "OK"
        assert await api.get_injection_enter_count(kvnode.node, "kv_put_fail") == 1
        assert "kv_put_fail" not in await api.get_enabled_injections(kvnode.node)
    assert await kv.call("GET a") == "VALUE 2"


async def test_message_releases_a_parked_write_while_other_shards_serve(kvnode, api, connect):
    writer, reader = await connect(kvnode), await connect(kvnode)
    key = kvnode.key_on_shard(0)
    other = kvnode.key_on_shard(1)
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, phase="waiting") as stream:
        async with inject_error(api, kvnode.node, "kv_put_before_apply", parameters={"key": key}) as handler:
            await writer.send(f"PUT {key} late")
            await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
            assert await handler.waiters() == 1
            assert await reader.call(f"PUT {other} now") == "OK"      # another shard still serves
            await handler.message()
            assert await writer.reply() == "OK"
    assert await reader.call(f"GET {key}") == "VALUE late"


async def test_wait_for_injection_enter_uses_the_stream(kvnode, api, connect):
    kv = await connect(kvnode)
    await api.enable_injection(kvnode.node, "kv_put_fail", one_shot=False)
    waiter = asyncio.create_task(api.wait_for_injection_enter(kvnode.node, "kv_put_fail", threshold=3,
                                                              timeout=DEADLINE))
    for i in range(3):
        assert await kv.call(f"PUT k{i} v") == "ERR injected"
    await waiter
    assert await api.get_injection_enter_count(kvnode.node, "kv_put_fail") == 3


async def test_errors_carry_status_and_message(kvnode, api):
    with pytest.raises(HTTPError) as err:
        await api.enable_injection(kvnode.node, "x" * 256, one_shot=False)
    assert err.value.status == 400
    assert "name" in str(err.value)


async def test_three_node_cluster_stream_tags_each_event_with_its_node(kvnodes, api, connect):
    nodes = [await kvnodes(f"n{i}") for i in range(3)]
    async with cluster_event_stream([n.node for n in nodes]) as stream:
        for n in nodes:
            await api.enable_injection(n.node, "kv_put_fail", one_shot=True)
        for n in reversed(nodes):
            assert await (await connect(n)).call("PUT k v") == "ERR injected"
        events = [await stream.wait_for_injection("kv_put_fail", node=n.node, timeout=DEADLINE) for n in nodes]
    assert [e["node"] for e in events] == [f"{n.ip}:{n.api_port}" for n in nodes]


async def test_a_killed_node_is_reported_and_nothing_hangs(kvnode, api):
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, reconnect_timeout=1.0) as stream:
        waiter = asyncio.create_task(stream.wait_for_injection("kv_put_fail", timeout=DEADLINE))
        kvnode.kill()
        with pytest.raises(StreamClosedError) as err:
            await asyncio.wait_for(waiter, DEADLINE)
    assert f"{kvnode.ip}:{kvnode.api_port}" in str(err.value)


class CuttableProxy:
    """A TCP proxy in front of a node's API whose connections the test can cut, as a network
    failure would, while the node itself keeps running."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.links = []
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader, writer):
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.append((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self):
        for a, b in self.links:
            a.transport.abort()
            b.transport.abort()
        self.links.clear()

    async def close(self):
        self.cut()
        self.server.close()


async def test_reconnect_after_a_cut_resumes_with_last_event_id_and_no_gap(kvnode, api, connect):
    proxy = CuttableProxy(kvnode.api_port)
    port = await proxy.start()
    kv = await connect(kvnode)
    try:
        await api.enable_injection(kvnode.node, "kv_put_fail", one_shot=False)
        async with injection_event_stream("127.0.0.1", port=port, injection="kv_put_fail") as stream:
            for i in range(3):
                assert await kv.call(f"PUT a{i} v") == "ERR injected"
            first = [await stream.wait_for_injection("kv_put_fail", timeout=DEADLINE) for _ in range(3)]
            proxy.cut()
            for i in range(5):  # fired while the stream is down
                assert await kv.call(f"PUT b{i} v") == "ERR injected"
            rest = [await stream.wait_for_injection("kv_put_fail", timeout=DEADLINE) for _ in range(5)]
            assert stream.reconnects >= 1
        seqs = [e["seq"] for e in first + rest]
        assert seqs == list(range(seqs[0], seqs[0] + 8)), seqs
        assert [e["enters"] for e in first + rest] == list(range(1, 9))
        assert proxy.connections >= 2
    finally:
        await proxy.close()


async def test_sigterm_releases_a_parked_write_and_exits_cleanly(kvnode, api, connect):
    kv = await connect(kvnode)
    async with injection_event_stream(kvnode.ip, port=kvnode.api_port, phase="waiting") as stream:
        await api.enable_injection(kvnode.node, "kv_put_before_apply", one_shot=False)
        await kv.send("PUT parked v")
        await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=DEADLINE)
        assert await kvnode.stop() == 0
    assert await kv.reply() == "OK"


async def test_disconnect_drops_the_data_connections_from_that_address(kvnode, api, connect):
    """ScyllaDB's POST /v2/error_injection/disconnect/{ip}: kvnode's handler drops its data
    connections from that address; the node goes on serving new ones."""
    first, second = await connect(kvnode), await connect(kvnode)
    assert await first.call("PUT dk v") == "OK"
    assert await second.call("GET dk") == "VALUE v"
    await api.inject_disconnect(kvnode.node, "127.0.0.1")
    for c in (first, second):
        assert await asyncio.wait_for(c.reader.read(), DEADLINE) == b"", "the connection was not dropped"
    third = await connect(kvnode)
    assert await third.call("GET dk") == "VALUE v"
    # Another address has no connection: nothing dropped, still 200.
    await api.inject_disconnect(kvnode.node, "10.1.2.3")
    assert await third.call("GET dk") == "VALUE v"
    wait_for_log(kvnode.log, r"disconnect 127\.0\.0\.1: dropped 2 connection\(s\)")
