"""The event stream client against the fake server: handshake, waiting, iteration, framing,
reconnection, overflow, merging several nodes, closing."""

import asyncio

import pytest

from errinj import (EventsLostError, HTTPError, InjectionEventStream, StreamClosedError,
                    cluster_event_stream, injection_event_stream)


async def until_received(stream, count, timeout=5.0):
    """Wait until the stream has received ``count`` events (an iteration cursor consumes nothing)."""
    async def watch():
        if len(stream.events) >= count:
            return
        async for _ in stream.iter_events(start=None):
            if len(stream.events) >= count:
                return
    await asyncio.wait_for(watch(), timeout)


def stream_to(server, **options):
    return injection_event_stream("127.0.0.1", port=server.port, **options)


# -- handshake and opening ---------------------------------------------------------------------

async def test_open_returns_only_after_the_server_said_connected(server):
    server.hold_connected = asyncio.Event()
    stream = stream_to(server)
    opening = asyncio.create_task(stream.open())
    await server.wait_until(lambda: len(server.subscribers) == 1)
    assert not opening.done(), "open() returned before ': connected'"
    server.hold_connected.set()
    await asyncio.wait_for(opening, 5)
    try:
        event = server.fire("after_connect")
        got = await stream.wait_for_injection("after_connect", timeout=5)
        assert got["seq"] == event["seq"]
    finally:
        await stream.close()


async def test_open_fails_when_connected_never_comes(server):
    server.send_connected = False
    with pytest.raises(StreamClosedError, match="connected") as info:
        async with stream_to(server, connect_timeout=0.3):
            pass
    assert info.value.node == server.node


async def test_open_raises_http_error_with_the_server_message(make_server):
    server = await make_server(token="secret")
    with pytest.raises(HTTPError) as info:
        async with stream_to(server, token="wrong"):
            pass
    assert info.value.status == 401
    assert info.value.error_message == "missing or wrong bearer token"
    assert "/v2/error_injection/events" in info.value.url


async def test_open_sends_the_bearer_token(make_server):
    server = await make_server(token="secret")
    async with stream_to(server, token="secret") as stream:
        server.fire("x")
        await stream.wait_for_injection("x", timeout=5)
    assert server.requests_to("/events")[0].headers["Authorization"] == "Bearer secret"


async def test_open_fails_fast_when_nothing_listens(server):
    port = server.port
    await server.stop()
    with pytest.raises(StreamClosedError) as info:
        async with injection_event_stream("127.0.0.1", port=port, connect_timeout=5):
            pass
    assert info.value.node == f"127.0.0.1:{port}"
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize("form", ["ip", "ip:port", "pair"])
async def test_made_directly_for_one_node_with_connect_and_disconnect(server, form):
    """As ScyllaDB's stream client was used: InjectionEventStream("127.0.0.1", 10000, **filters),
    then connect() and disconnect(); the node string is one node, not a list of characters."""
    if form == "ip":
        stream = InjectionEventStream("127.0.0.1", server.port, injection="x")
    elif form == "ip:port":
        stream = InjectionEventStream(f"127.0.0.1:{server.port}", injection="x")
    else:
        stream = InjectionEventStream(("127.0.0.1", server.port), injection="x")
    assert stream.nodes == [server.node]
    assert await stream.connect() is stream
    try:
        server.fire("x")
        assert (await stream.wait_for_injection("x", timeout=5))["node"] == server.node
        pending = asyncio.create_task(stream.wait_for_injection("x", timeout=30))
    finally:
        await stream.disconnect()
    with pytest.raises(StreamClosedError, match="closed by the client"):
        await pending
    assert stream.closed
    assert server.requests_to("/events")[0].query == [("injection", "x")]
    await server.wait_until(lambda: not server.subscribers)


async def test_a_list_of_two_names_is_two_nodes_not_a_pair(make_server):
    one, two = await make_server(), await make_server()
    stream = InjectionEventStream([one.node, two.node])
    assert stream.nodes == [one.node, two.node]
    with pytest.raises(ValueError, match="listed twice"):
        InjectionEventStream([one.node, one.node])
    with pytest.raises(ValueError, match="no nodes"):
        InjectionEventStream([])


async def test_filters_become_query_parameters(server):
    async with stream_to(server, injection=["a", "b"], type="sleep", shard=2, phase=["hit", "waiting"], since=0):
        pass
    req = server.requests_to("/events")[0]
    assert req.query == [("injection", "a"), ("injection", "b"), ("type", "sleep"), ("shard", "2"),
                         ("phase", "hit"), ("phase", "waiting"), ("since", "0")]
    assert req.headers["Accept"] == "text/event-stream"


async def test_events_in_the_same_chunk_as_connected_are_kept(server):
    server.history.append({"seq": 1, "injection": "replayed", "phase": "hit", "type": "sleep", "shard": 0})
    server.seq = 1
    async with stream_to(server, since=0) as stream:
        event = await stream.wait_for_injection("replayed", timeout=5)
        assert event["seq"] == 1 and event["node"] == server.node


# -- waiting ----------------------------------------------------------------------------------

async def test_concurrent_waiters_do_not_steal_each_others_events(server):
    async with stream_to(server) as stream:
        wait_a = asyncio.create_task(stream.wait_for_injection("a", timeout=5))
        wait_b1 = asyncio.create_task(stream.wait_for_injection("b", timeout=5))
        wait_b2 = asyncio.create_task(stream.wait_for_injection("b", timeout=5))
        b1 = server.fire("b")
        a = server.fire("a")
        b2 = server.fire("b")
        assert (await wait_a)["seq"] == a["seq"]
        assert (await wait_b1)["seq"] == b1["seq"], "the earlier call gets the earlier event"
        assert (await wait_b2)["seq"] == b2["seq"]


async def test_events_received_before_the_call_count_and_each_is_returned_once(server):
    async with stream_to(server) as stream:
        first, other, second = server.fire("x"), server.fire("y"), server.fire("x")
        await until_received(stream, 3)
        assert (await stream.wait_for_injection("x", timeout=1))["seq"] == first["seq"]
        assert (await stream.wait_for_injection("x", timeout=1))["seq"] == second["seq"]
        assert (await stream.wait_for_injection("y", timeout=1))["seq"] == other["seq"]
        with pytest.raises(asyncio.TimeoutError):
            await stream.wait_for_injection("x", timeout=0.05)


async def test_many_concurrent_waiters_each_get_one_event(server):
    async with stream_to(server) as stream:
        names = [f"p{i % 7}" for i in range(70)]
        waits = [asyncio.create_task(stream.wait_for_injection(n, timeout=5)) for n in names]
        fired = [server.fire(n) for n in reversed(names)]
        got = await asyncio.gather(*waits)
        assert sorted(e["seq"] for e in got) == sorted(e["seq"] for e in fired)
        assert all(g["injection"] == n for g, n in zip(got, names))


async def test_timeout_names_what_was_awaited_and_what_arrived(server):
    async with stream_to(server) as stream:
        server.fire("alpha")
        server.fire("beta")
        await until_received(stream, 2)
        await stream.wait_for_injection("alpha", timeout=1)
        with pytest.raises(TimeoutError) as info:
            await stream.wait_for_injection("alpha", timeout=0.05)
    text = str(info.value)
    assert "'alpha'" in text and "phase 'hit'" in text and server.node in text
    assert "alpha/hit#1" in text and "beta/hit#2" in text
    assert "earlier waits took them" in text
    assert isinstance(info.value, asyncio.TimeoutError)


async def test_timeout_when_nothing_arrived_says_so(server):
    async with stream_to(server) as stream:
        with pytest.raises(asyncio.TimeoutError, match="no event arrived at all"):
            await stream.wait_for_injection("never", timeout=0.05)


async def test_wait_for_phase_needs_a_stream_that_receives_it(server):
    async with stream_to(server) as stream:
        with pytest.raises(ValueError, match="phase='all'"):
            await stream.wait_for_injection("h", phase="waiting")
    async with stream_to(server, phase="all") as stream:
        server.fire("h", phase="hit")
        waiting = server.fire("h", phase="waiting")
        released = server.fire("h", phase="released")
        assert (await stream.wait_for_injection("h", phase="waiting", timeout=5))["seq"] == waiting["seq"]
        assert (await stream.wait_for_injection("h", phase=None, timeout=5))["phase"] == "hit"
        assert (await stream.wait_for_injection("h", phase=None, timeout=5))["seq"] == released["seq"]


async def test_wait_for_a_name_outside_the_injection_filter_is_an_error(server):
    async with stream_to(server, injection="only") as stream:
        with pytest.raises(ValueError, match="filtered"):
            await stream.wait_for_injection("other")


async def test_wait_for_injections_returns_events_in_the_order_of_names(server):
    async with stream_to(server) as stream:
        c = server.fire("c")
        waiting = asyncio.create_task(stream.wait_for_injections(["a", "b", "c", "a"], timeout=5))
        a1, b, a2 = server.fire("a"), server.fire("b"), server.fire("a")
        got = await waiting
        assert [e["seq"] for e in got] == [a1["seq"], b["seq"], c["seq"], a2["seq"]]


async def test_wait_for_injections_that_times_out_leaves_its_events_for_others(server):
    async with stream_to(server) as stream:
        a = server.fire("a")
        await until_received(stream, 1)
        with pytest.raises(asyncio.TimeoutError) as info:
            await stream.wait_for_injections(["a", "missing"], timeout=0.05)
        assert "'missing'" in str(info.value) and "1 of 2" in str(info.value)
        assert (await stream.wait_for_injection("a", timeout=1))["seq"] == a["seq"]


async def test_a_cancelled_wait_gives_its_event_back(server):
    async with stream_to(server) as stream:
        task = asyncio.create_task(stream.wait_for_injections(["a", "b"], timeout=5))
        a = server.fire("a")
        await until_received(stream, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await stream.wait_for_injection("a", timeout=1))["seq"] == a["seq"]


async def test_wait_for_event_with_a_predicate(server):
    async with stream_to(server) as stream:
        server.fire("p", shard=0)
        two = server.fire("p", shard=2)
        got = await stream.wait_for_event(lambda e: e["shard"] == 2, timeout=5)
        assert got["seq"] == two["seq"]
        assert (await stream.wait_for_injection("p", timeout=5))["shard"] == 0


# -- iteration ------------------------------------------------------------------------------

async def test_async_for_yields_every_event_in_order_without_stealing(server):
    async with stream_to(server) as stream:
        fired = [server.fire(n) for n in ["a", "b", "a"]]
        taken = await stream.wait_for_injection("a", timeout=5)
        seen = []
        async for event in stream:
            seen.append(event["seq"])
            if len(seen) == 2:
                break
        async for event in stream:   # the stream's cursor continues where the last loop stopped
            seen.append(event["seq"])
            break
        assert seen == [e["seq"] for e in fired]
        assert taken["seq"] == fired[0]["seq"]
        # Iterating took nothing from the waiters.
        assert (await stream.wait_for_injection("a", timeout=1))["seq"] == fired[2]["seq"]
        assert [e["seq"] async for e in _take(stream.iter_events(0), 3)] == seen


async def _take(iterator, count):
    async for item in iterator:
        yield item
        count -= 1
        if count == 0:
            return


async def test_async_for_ends_when_the_client_closes_the_stream(server):
    async with stream_to(server) as stream:
        server.fire("a")

        async def collect():
            return [e["injection"] async for e in stream]

        collector = asyncio.create_task(collect())
        await until_received(stream, 1)
    assert await asyncio.wait_for(collector, 5) == ["a"]


# -- framing end to end ---------------------------------------------------------------------

@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
async def test_frames_written_byte_by_byte_with_any_line_end_arrive_whole(server, line_end):
    server.line_end = line_end
    server.chunk_size = 1
    async with stream_to(server) as stream:
        fired = [server.fire(f"n{i}", parameters={"k": "v:\u00e9"}) for i in range(5)]
        got = await stream.wait_for_injections([f"n{i}" for i in range(5)], timeout=5)
        assert [g["seq"] for g in got] == [f["seq"] for f in fired]
        assert got[0]["parameters"] == {"k": "v:\u00e9"}


async def test_comments_and_awkward_splits_between_raw_frames(server):
    async with stream_to(server) as stream:
        server.send_raw(b": ping\r\n\r\nid: 9\r")
        server.send_raw(b"\ndata: {\"injection\":\"raw\",\"seq\":9,\"phase\":\"hit\"}\r")
        server.send_raw(b"\n: a comment inside the event\r\n\r")
        server.send_raw(b"\ndata: {\"injection\":\"raw2\",\"phase\":\"hit\"}\n\n")
        first = await stream.wait_for_injection("raw", timeout=5)
        second = await stream.wait_for_injection("raw2", timeout=5)
        assert first["seq"] == 9 and "seq" not in second
        assert [e["injection"] for e in stream.events] == ["raw", "raw2"]


# -- reconnection ---------------------------------------------------------------------------

async def drop_and_fire_while_away(server, injection, how="close"):
    """Drop every stream and fire an event while no client is subscribed: the server refuses
    reconnections (503, which the client retries) until the event is in its history."""
    server.events_status = (503, "not now")
    before = len(server.requests_to("/events"))
    server.drop_all(how)
    await server.wait_until(lambda: not server.subscribers)
    missed = server.fire(injection)
    server.events_status = None
    await server.wait_until(lambda: server.subscribers and server.subscribers[-1].connected_sent
                            and len(server.requests_to("/events")) > before)
    return missed


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_reconnects_with_last_event_id_and_gets_what_was_missed(server, how):
    async with stream_to(server, reconnect_timeout=5) as stream:
        server.fire("a")
        two = server.fire("a")
        await until_received(stream, 2)
        missed = await drop_and_fire_while_away(server, "b", how)
        live = server.fire("b")
        got = await stream.wait_for_injections(["b", "b"], timeout=5)
        assert [g["seq"] for g in got] == [missed["seq"], live["seq"]]
        resumed = [r for r in server.requests_to("/events")[1:] if "Last-Event-ID" in r.headers]
        assert resumed and all(r.headers["Last-Event-ID"] == str(two["seq"]) for r in resumed)
        assert [e["seq"] for e in stream.events] == [1, 2, 3, 4], "no gap, no duplicate"
        assert stream.reconnects == 1


async def test_reconnect_before_any_event_resumes_from_the_seq_at_open(server):
    server.fire("before")   # seq 1, before the stream: not wanted
    async with stream_to(server, reconnect_timeout=5) as stream:
        missed = await drop_and_fire_while_away(server, "during")
        assert (await stream.wait_for_injection("during", timeout=5))["seq"] == missed["seq"]
        assert server.requests_to("/events")[-1].headers["Last-Event-ID"] == "1"
        assert [e["injection"] for e in stream.events] == ["during"]


async def test_last_event_id_outlives_a_connection_that_brought_no_new_id(server):
    async with stream_to(server, reconnect_timeout=5) as stream:
        server.fire("a")
        await until_received(stream, 1)
        server.drop_all("close")
        await server.wait_subscriptions(2)
        pending = asyncio.create_task(stream.wait_for_injection("b", timeout=5))
        server.overflow(dropped=1, next_seq=3)     # a frame without an id line
        with pytest.raises(EventsLostError):
            await pending
        server.drop_all("close")
        await server.wait_subscriptions(3)
    assert [r.headers.get("Last-Event-ID") for r in server.requests_to("/events")] == [None, "1", "1"]


async def restart_while_away(server, instance, fire_count):
    """Act out a restart: drop the streams, refuse reconnections, start numbering events from 1
    again (a new process) and fire ``fire_count`` events, then accept reconnections."""
    server.events_status = (503, "restarting")
    server.drop_all("abort")
    await server.wait_until(lambda: not server.subscribers)
    server.seq, server.history, server.instance = 0, [], instance
    reborn = [server.fire("b") for _ in range(fire_count)]
    server.events_status = None
    return reborn


async def test_reconnect_to_a_restarted_server_resumes_from_its_first_event(server):
    async with stream_to(server, reconnect_timeout=5) as stream:
        server.fire("a")
        server.fire("a")
        await until_received(stream, 2)
        reborn = await restart_while_away(server, None, 1)   # its seq (1) is below the last id (2)
        got = await stream.wait_for_injection("b", timeout=5)
        assert got["seq"] == reborn[0]["seq"] == 1
        assert server.requests_to("/events")[-1].headers["Last-Event-ID"] == "0"


async def test_reconnect_sees_a_restart_by_the_status_instance(server):
    server.instance = "boot-1"
    async with stream_to(server, reconnect_timeout=5) as stream:
        server.fire("a")
        await until_received(stream, 1)
        reborn = await restart_while_away(server, "boot-2", 3)  # seq 3, past the last id (1)
        got = await stream.wait_for_injections(["b"] * 3, timeout=5)
        assert [g["seq"] for g in got] == [e["seq"] for e in reborn] == [1, 2, 3]
        assert server.requests_to("/events")[-1].headers["Last-Event-ID"] == "0"


async def test_reconnect_keeps_filters_but_not_since(server):
    async with stream_to(server, injection="a", since=0, reconnect_timeout=5) as stream:
        server.fire("a")
        await until_received(stream, 1)
        server.drop_all("close")
        await server.wait_subscriptions(2)
    first, second = server.requests_to("/events")
    assert first.query == [("injection", "a"), ("since", "0")]
    assert second.query == [("injection", "a")]
    assert second.headers["Last-Event-ID"] == "1"


async def test_lost_stream_fails_pending_and_later_waits_naming_the_node(server):
    async with stream_to(server, reconnect_timeout=0.3) as stream:
        server.fire("kept")
        await until_received(stream, 1)
        pending = asyncio.create_task(stream.wait_for_injection("never", timeout=30))
        node = server.node
        await server.stop()
        with pytest.raises(StreamClosedError) as info:
            await asyncio.wait_for(pending, 10)
        assert info.value.node == node and "could not reconnect within 0.3s" in str(info.value)
        # An event received before the loss still counts; anything else fails at once.
        assert (await stream.wait_for_injection("kept", timeout=1))["injection"] == "kept"
        with pytest.raises(StreamClosedError):
            await stream.wait_for_injection("never", timeout=30)
        with pytest.raises(StreamClosedError):
            async for _ in stream.iter_events(1):
                pass


async def test_reconnect_gives_up_at_once_on_a_client_error(server):
    async with stream_to(server, reconnect_timeout=30) as stream:
        pending = asyncio.create_task(stream.wait_for_injection("never", timeout=30))
        server.events_status = (401, "token changed")
        server.drop_all("close")
        with pytest.raises(StreamClosedError, match="token changed"):
            await asyncio.wait_for(pending, 10)


async def test_reconnect_retries_while_the_server_is_unavailable(server):
    async with stream_to(server, reconnect_timeout=10) as stream:
        server.events_status = (503, "too many subscribers")
        server.drop_all("close")
        await server.wait_until(lambda: len(server.requests_to("/events")) >= 3)
        server.events_status = None
        await server.wait_subscriptions(2)
        server.fire("back")
        assert (await stream.wait_for_injection("back", timeout=5))["injection"] == "back"


# -- overflow -------------------------------------------------------------------------------

async def test_overflow_raises_in_pending_and_later_waits_until_cleared(server):
    async with stream_to(server) as stream:
        before = server.fire("x")
        await until_received(stream, 1)
        pending = asyncio.create_task(stream.wait_for_injection("y", timeout=5))
        server.overflow(dropped=4, next_seq=6)
        with pytest.raises(EventsLostError) as info:
            await pending
        assert (info.value.dropped, info.value.next_seq, info.value.node) == (4, 6, server.node)
        # An event received before the loss is still answered; a wait past it raises.
        assert (await stream.wait_for_injection("x", timeout=1))["seq"] == before["seq"]
        with pytest.raises(EventsLostError):
            await stream.wait_for_injection("y", timeout=1)
        assert stream.overflows == [{"node": server.node, "dropped": 4, "next_seq": 6}]
        stream.clear_overflow()
        server.fire("y")
        assert (await stream.wait_for_injection("y", timeout=5))["injection"] == "y"


async def test_overflow_as_a_flag_only_records(server):
    async with stream_to(server, on_overflow="flag") as stream:
        server.overflow(dropped=2, next_seq=10)
        server.fire("z")
        assert (await stream.wait_for_injection("z", timeout=5))["injection"] == "z"
        assert stream.overflows == [{"node": server.node, "dropped": 2, "next_seq": 10}]
        assert [e["injection"] async for e in _take(stream, 1)] == ["z"]


async def test_async_for_raises_once_at_the_place_of_an_overflow(server):
    async with stream_to(server) as stream:
        server.fire("a")
        server.overflow(dropped=1, next_seq=3)
        server.fire("b")
        seen = []
        with pytest.raises(EventsLostError):
            async for event in stream:
                seen.append(event["injection"])
        async for event in stream:
            seen.append(event["injection"])
            break
        assert seen == ["a", "b"]


# -- several nodes --------------------------------------------------------------------------

async def test_cluster_stream_merges_nodes_and_tags_events(make_server):
    one, two = await make_server(), await make_server()
    nodes = [("127.0.0.1", one.port), f"127.0.0.1:{two.port}"]
    async with cluster_event_stream(nodes) as stream:
        assert stream.nodes == [one.node, two.node]
        from_two = two.fire("x")
        from_one = one.fire("x")
        got = await stream.wait_for_injection("x", node=one.node, timeout=5)
        assert got["node"] == one.node and got["seq"] == from_one["seq"]
        got = await stream.wait_for_injection("x", timeout=5)
        assert got["node"] == two.node and got["seq"] == from_two["seq"]
        one.fire("y")
        two.fire("y")
        ys = await stream.wait_for_injections(["y", "y"], timeout=5)
        assert sorted(e["node"] for e in ys) == sorted([one.node, two.node])
        with pytest.raises(ValueError, match="not one of"):
            await stream.wait_for_injection("x", node="10.0.0.1:1")


async def test_cluster_stream_with_a_default_port(make_server):
    one = await make_server()
    async with cluster_event_stream(["127.0.0.1"], port=one.port) as stream:
        one.fire("x")
        got = await stream.wait_for_injection("x", node="127.0.0.1", timeout=5)
        assert got["node"] == one.node


async def test_cluster_stream_closes_whole_when_one_node_is_lost(make_server):
    one, two = await make_server(), await make_server()
    async with cluster_event_stream([one.node, two.node], reconnect_timeout=0.3) as stream:
        pending = asyncio.create_task(stream.wait_for_injection("x", timeout=30))
        lost = two.node
        await two.stop()
        with pytest.raises(StreamClosedError) as info:
            await asyncio.wait_for(pending, 10)
        assert info.value.node == lost


# -- closing --------------------------------------------------------------------------------

async def test_close_fails_pending_waits(server):
    stream = await stream_to(server).open()
    pending = asyncio.create_task(stream.wait_for_injection("x", timeout=30))
    await stream.close()
    with pytest.raises(StreamClosedError, match="closed by the client"):
        await pending
    await server.wait_until(lambda: not server.subscribers)


async def test_waiting_on_a_stream_that_was_never_opened_is_an_error(server):
    with pytest.raises(RuntimeError, match="not open"):
        await stream_to(server).wait_for_injection("x")
