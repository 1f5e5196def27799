"""errinj-events(7), THE STREAM, replay and overflow: `since=N` and `Last-Event-ID: N` replay kept events
then continue live without gap or duplicate; a subscriber that asks for events no longer kept,
or falls behind the history, gets an exact `overflow` notice before its next event."""
import asyncio

from conftest import check_contiguous, enable, open_stream, status_of



async def read_until_seq(s, last, timeout=None):
    """Events and overflow notices up to and including the event with seq `last`."""
    items = []
    while True:
        item = await s.next_event() if timeout is None else await s.next_event(timeout)
        items.append(item)
        if not item.is_overflow and item.seq >= last:
            return items


# ---- replay ----------------------------------------------------------------------------------

async def test_since_replays_kept_events_after_n_then_live(host, http, streams):
    h = await host()
    await enable(http, h, "r")
    watcher = streams(await open_stream(h))
    await h.fire("r", "enter", 5)
    await read_until_seq(watcher, 5)
    s = streams(await open_stream(h, "since=2"))
    assert [e.seq for e in await s.events(3)] == [3, 4, 5]
    await h.fire("r", "enter", 2)
    assert [e.seq for e in await s.events(2)] == [6, 7]


async def test_last_event_id_header_replays_like_since(host, http, streams):
    h = await host()
    await enable(http, h, "r")
    watcher = streams(await open_stream(h))
    await h.fire("r", "enter", 5)
    await read_until_seq(watcher, 5)
    s = streams(await open_stream(h, headers={"Last-Event-ID": "3"}))
    assert [int(e.id) for e in await s.events(2)] == [4, 5]
    await h.fire("r")
    assert [e.seq for e in await s.events(1)] == [6]


async def test_since_0_replays_everything_kept(host, http, streams):
    h = await host()
    await enable(http, h, "r")
    watcher = streams(await open_stream(h))
    await h.fire("r", "enter", 4)
    await read_until_seq(watcher, 4)
    s = streams(await open_stream(h, "since=0"))
    assert [e.seq for e in await s.events(4)] == [1, 2, 3, 4]


async def test_replay_applies_the_filters(host, http, streams):
    h = await host()
    for name in ("a", "b"):
        await enable(http, h, name)
    watcher = streams(await open_stream(h, "phase=all"))
    await h.fire("a")            # 1
    await h.fire("b")            # 2
    await h.fire("a", "handler")  # 3
    await h.fire("b")            # 4
    await read_until_seq(watcher, 4)
    s = streams(await open_stream(h, "since=1&injection=a&injection=b&type=enter"))
    await h.fire("a")            # 5, live
    assert [e.seq for e in await s.events(3)] == [2, 4, 5]


async def test_reconnect_with_last_event_id_has_no_gap_and_no_duplicate(host, http, streams):
    h = await host()
    await enable(http, h, "r")
    first = await open_stream(h)
    await h.fire("r", "enter", 5)
    got = await first.events(3)
    last_id = got[-1].id
    await first.aclose()                      # drop the connection with 4 and 5 unread
    await h.fire("r", "enter", 5)             # 6..10 while disconnected
    second = streams(await open_stream(h, headers={"Last-Event-ID": last_id}))
    got += await second.events(7)             # 4..10 replayed
    await h.fire("r", "enter", 2)             # 11, 12 live
    got += await second.events(2)
    assert [e.seq for e in got] == list(range(1, 13))
    assert [int(e.id) for e in got] == list(range(1, 13))


async def test_replay_joins_live_events_while_a_burst_fires(host, http, streams):
    h = await host()
    await enable(http, h, "burst")
    burst = asyncio.create_task(h.ok("burst 2 3000 burst"))
    # Connect while the burst may still be firing: the replayed part and the live part must meet.
    s = streams(await open_stream(h, "since=0"))
    assert await burst == 6000
    items = await read_until_seq(s, 6000)
    assert check_contiguous(items, 1, 6000) == 0, "history is large enough for everything"


# ---- overflow ---------------------------------------------------------------------------------

async def fire_50_with_history_8(host, http, streams):
    h = await host(history=8)
    await enable(http, h, "o")
    watcher = streams(await open_stream(h))
    await h.fire("o", "enter", 50)
    await read_until_seq(watcher, 50)  # the history now holds 43..50
    return h


async def test_since_older_than_history_gets_exact_overflow_then_kept_events(host, http, streams):
    h = await fire_50_with_history_8(host, http, streams)
    s = streams(await open_stream(h, "since=0"))
    note = await s.next_event()
    assert note.raw == b'event: overflow\ndata: {"dropped":42,"next_seq":43}\n\n', note.raw
    assert [e.seq for e in await s.events(8)] == list(range(43, 51))
    await h.fire("o")
    assert [e.seq for e in await s.events(1)] == [51]


async def test_last_event_id_older_than_history_gets_exact_overflow(host, http, streams):
    h = await fire_50_with_history_8(host, http, streams)
    s = streams(await open_stream(h, headers={"Last-Event-ID": "10"}))
    note = await s.next_event()
    assert note.is_overflow and note.json() == {"dropped": 32, "next_seq": 43}, note.raw
    assert [e.seq for e in await s.events(8)] == list(range(43, 51))


async def test_since_exactly_at_history_start_has_no_overflow(host, http, streams):
    h = await fire_50_with_history_8(host, http, streams)
    s = streams(await open_stream(h, "since=42"))
    assert [e.seq for e in await s.events(8)] == list(range(43, 51))


async def test_since_one_before_history_start_overflows_by_one(host, http, streams):
    h = await fire_50_with_history_8(host, http, streams)
    s = streams(await open_stream(h, "since=41"))
    note = await s.next_event()
    assert note.is_overflow and note.json() == {"dropped": 1, "next_seq": 43}, note.raw


async def test_overflow_is_sent_even_when_the_filter_matches_nothing_lost(host, http, streams):
    """Nothing is lost silently: a filtered subscriber still learns that events were dropped,
    since it cannot know whether they would have matched."""
    h = await fire_50_with_history_8(host, http, streams)
    s = streams(await open_stream(h, "since=0&injection=other"))
    await enable(http, h, "other")
    await h.fire("other")
    note, ev = await s.next_event(), await s.next_event()
    assert note.is_overflow and note.json() == {"dropped": 42, "next_seq": 43}, note.raw
    assert ev.seq == 51 and ev.json()["injection"] == "other"


async def test_stalled_client_gets_overflow_then_contiguous_events_and_blocks_nobody(host, http, streams):
    h = await host(history=8)
    pad = "x" * 60_000                   # each event frame is ~60 KB, within the 64 KiB line
    await enable(http, h, "big", {"pad": pad})
    await enable(http, h, "marker")
    witness = streams(await open_stream(h, "injection=marker"))
    # A client with a tiny receive buffer that stops reading after ': connected': the kernel holds
    # a few MB at most (tcp_wmem max 4 MB), far less than the 30 MB about to be published.
    slow = streams(await open_stream(h, rcvbuf=4096, read_limit=1024))
    fires = 500
    assert await h.fire("big", "enter", fires) == 1, "a slow client must not block the firing thread"
    await h.fire("marker")
    last = fires + 1
    # Another client and the REST API keep working while `slow` is stalled.
    items = await read_until_seq(witness, last)
    assert items[-1].json()["injection"] == "marker"
    st = await status_of(http, h)
    assert st["seq"] == last and st["subscribers"] == 2, st
    # Now the slow client reads again: what the kernel held, an exact overflow, then the rest.
    items = await read_until_seq(slow, last, timeout=60)
    overflows = check_contiguous(items, 1, last)
    assert overflows >= 1, f"expected an overflow; got seqs {[i.raw[:40] for i in items]}"
    for item in items:
        if not item.is_overflow and item.seq <= fires:
            assert item.json()["parameters"] == {"pad": pad}


async def test_last_event_id_takes_precedence_over_since(host, http, streams):
    """An EventSource opened on a `?since=0` URL sends Last-Event-ID when it reconnects: the header
    must win, or every reconnect would replay from the start again (duplicates)."""
    h = await host()
    await enable(http, h, "r")
    watcher = streams(await open_stream(h))
    await h.fire("r", "enter", 5)
    await read_until_seq(watcher, 5)
    s = streams(await open_stream(h, "since=0", headers={"Last-Event-ID": "3"}))
    assert [e.seq for e in await s.events(2)] == [4, 5]


async def test_an_id_beyond_what_this_process_published_replays_all_it_kept(host, http, streams):
    """A Last-Event-ID from an earlier run of the server process (its seqs restarted at 1) must
    not skip this run's events up to that number: the stream replays everything kept."""
    h = await host()
    await enable(http, h, "r")
    watcher = streams(await open_stream(h))
    await h.fire("r", "enter", 3)
    await read_until_seq(watcher, 3)
    s = streams(await open_stream(h, headers={"Last-Event-ID": "500"}))
    assert [e.seq for e in await s.events(3)] == [1, 2, 3]
    await h.fire("r")
    assert [e.seq for e in await s.events(1)] == [4]
