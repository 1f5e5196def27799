"""The life of streams (errinj(3) Server, errinj-events(7) THE STREAM): heartbeats, the subscriber limit, stopping the
server with streams open and threads parked, and many clients while threads fire."""
import asyncio
import json

from conftest import DEADLINE, check_contiguous, enable, open_stream, poll_until, rest, status_of



async def waiters_are(http, h, name, n):
    return (await rest(http, "GET", h, f"/injection/{name}/waiters")).json() == n


# ---- heartbeats ------------------------------------------------------------------------------

async def test_idle_stream_receives_ping_comments(host, streams):
    h = await host(heartbeat_ms=200)
    s = streams(await open_stream(h))
    for _ in range(2):  # periodic, not once
        item = await s.next(timeout=5)
        assert item.raw == b": ping\n\n", item.raw
        assert item.is_comment and item.comments == ["ping"]


async def test_events_still_arrive_between_pings(host, http, streams):
    h = await host(heartbeat_ms=200)
    await enable(http, h, "p")
    s = streams(await open_stream(h))
    assert (await s.next(timeout=5)).comments == ["ping"]
    await h.fire("p")
    ev = await s.next_event(timeout=5)
    assert ev.seq == 1 and ev.json()["injection"] == "p"


# ---- the subscriber limit ----------------------------------------------------------------------

async def test_stream_over_max_subscribers_is_503_json(host, http, streams):
    h = await host(max_subscribers=2)
    streams(await open_stream(h))
    streams(await open_stream(h))
    third = streams(await open_stream(h, connected=False))
    assert third.status == 503, (third.status, third.body)
    assert third.headers["content-type"].startswith("application/json")
    doc = json.loads(third.body)
    assert set(doc) == {"message", "code"} and doc["code"] == 503, doc
    # The REST API is not limited by the streams.
    assert (await status_of(http, h))["subscribers"] == 2


async def test_closed_stream_frees_its_subscriber_slot(host, http, streams):
    # Heartbeats find clients that left while their stream was idle.
    h = await host(max_subscribers=2, heartbeat_ms=200)
    first = await open_stream(h)
    streams(await open_stream(h))
    assert (await open_stream(h, connected=False)).status == 503
    await first.aclose()

    async def one_left():
        return (await status_of(http, h))["subscribers"] == 1
    await poll_until(one_left, "status.subscribers == 1 after a stream closed")
    again = streams(await open_stream(h))  # accepted, and live
    await enable(http, h, "x")
    await h.fire("x")
    assert (await again.next_event()).seq == 1


async def test_503_stream_request_leaves_state_unchanged(host, http, streams):
    h = await host(max_subscribers=1)
    await enable(http, h, "keep", {"k": "v"})
    streams(await open_stream(h))
    assert (await open_stream(h, connected=False)).status == 503
    assert (await rest(http, "GET", h, "/injection/keep")).json() == [
        {"enabled": True, "one_shot": False, "parameters": [{"key": "k", "value": "v"}], "term": "on", "seed": 7}]
    assert (await status_of(http, h))["subscribers"] == 1


# ---- stopping ----------------------------------------------------------------------------------

async def test_quit_ends_streams_releases_parked_threads_and_exits_0(host, http):
    h = await host()
    await enable(http, h, "parked")
    open_streams = [await open_stream(h) for _ in range(3)]
    open_streams.append(await open_stream(h, "phase=all&injection=parked"))
    ids = [await h.start_wait("parked", 60000) for _ in range(2)]
    await poll_until(lambda: waiters_are(http, h, "parked", 2), "two parked threads")
    await h.send_quit()
    await asyncio.gather(*(s.wait_eof() for s in open_streams))
    for s in open_streams:
        assert s.clean_end, "each stream must end with its terminating chunk, not a cut connection"
    assert [await h.done(i) for i in ids] == [0, 0]
    assert await h.wait_exit() == 0
    for s in open_streams:
        await s.aclose()


async def test_quit_with_a_stalled_client_still_exits_0(host, http, streams):
    h = await host(history=4)
    await enable(http, h, "big", {"pad": "y" * 200_000})
    stalled = streams(await open_stream(h, rcvbuf=4096, read_limit=1024))
    assert stalled.status == 200
    await h.fire("big", "enter", 50)   # far more than the stalled socket can take
    assert await h.quit() == 0


async def test_rest_api_works_while_streams_are_open(host, http, streams):
    h = await host()
    for _ in range(5):
        streams(await open_stream(h))
    await enable(http, h, "r")
    assert (await rest(http, "GET", h, "/injection")).json() == ["r"]
    assert (await status_of(http, h))["subscribers"] == 5


# ---- concurrency ------------------------------------------------------------------------------

async def test_bursts_with_churning_and_long_lived_clients_lose_nothing(host, http):
    h = await host()
    await enable(http, h, "hot")
    await enable(http, h, "end")
    long_lived = [await open_stream(h) for _ in range(3)]
    bursts_done = asyncio.Event()
    rounds = 3

    async def churn():
        cycles = 0
        while not bursts_done.is_set() and cycles < 40:
            s = await open_stream(h)
            await s.aclose()
            cycles += 1
        return cycles

    async def read_until_end(s):
        items = []
        while True:
            item = await s.next_event(timeout=DEADLINE)
            items.append(item)
            if not item.is_overflow and item.json()["injection"] == "end":
                return items

    readers = [asyncio.create_task(read_until_end(s)) for s in long_lived]
    churners = [asyncio.create_task(churn()) for _ in range(5)]
    total = 0
    for _ in range(rounds):
        total += await h.ok("burst 4 2000 hot", timeout=60)
    bursts_done.set()
    cycles = await asyncio.gather(*churners)
    await h.fire("end")
    assert total == rounds * 4 * 2000, "an enabled enter returns true on every fire"
    assert (await rest(http, "GET", h, "/injection/hot/enters")).json() == total
    last = (await status_of(http, h))["seq"]
    assert last == total + 1
    for items in await asyncio.gather(*readers):
        check_contiguous(items, 1, last)
        hits = sum(1 for i in items if not i.is_overflow and i.json()["injection"] == "hot")
        dropped = sum(i.json()["dropped"] for i in items if i.is_overflow)
        assert hits + dropped == total, (hits, dropped, total)
    assert all(c >= 1 for c in cycles), cycles
    for s in long_lived:
        await s.aclose()


async def test_many_concurrent_streams_each_get_every_event(host, http):
    h = await host()
    await enable(http, h, "many")
    clients = await asyncio.gather(*(open_stream(h) for _ in range(50)))
    assert (await status_of(http, h))["subscribers"] == 50
    await h.fire("many", "enter", 20)
    for c in clients:
        assert [e.seq for e in await c.events(20)] == list(range(1, 21))
    for c in clients:
        await c.aclose()
