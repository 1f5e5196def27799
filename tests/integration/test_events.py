"""errinj-events(7), THE STREAM: the SSE stream's headers, first bytes, event frames and fields, every query
filter, and the phases a parked handler publishes."""
import asyncio
import json
import time

from conftest import (ETIMEDOUT, assert_error_json, enable, check_event_fields, host_site_lines, open_stream,
                      poll_until, rest)



# ---- the stream itself --------------------------------------------------------------------------

async def test_stream_headers_are_event_stream_and_no_cache(host, streams):
    h = await host()
    s = streams(await open_stream(h, connected=False))
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream", s.headers
    assert s.headers["cache-control"] == "no-cache", s.headers


async def test_stream_first_bytes_are_exactly_connected_comment(host, streams):
    h = await host()
    s = streams(await open_stream(h, connected=False))
    assert await s.read_raw(13) == b": connected\n\n"


async def test_event_frame_is_id_then_one_data_line(host, http, streams):
    h = await host()
    await enable(http, h, "framed", {"k": "v"})
    s = streams(await open_stream(h))
    await h.fire("framed")
    item = await s.next()
    text = item.raw.decode()
    lines = text.split("\n")
    assert len(lines) == 4 and lines[2:] == ["", ""], f"frame {text!r}"
    assert lines[0] == "id: 1", text
    assert lines[1].startswith("data: {") and lines[1].endswith("}"), text
    ev = json.loads(lines[1][len("data: "):])
    assert ev["seq"] == 1 and item.event is None, "events are unnamed"


async def test_event_of_runtime_name_has_every_field_and_no_file_or_line(host, http, streams):
    h = await host()
    await enable(http, h, "rt", {"k": "v", "n": 3})
    s = streams(await open_stream(h))
    before = time.time_ns()
    assert await h.fire("rt", "exception") == -5
    after = time.time_ns()
    ev = (await s.next_event()).json()
    check_event_fields(ev, injection="rt", type_="exception")
    assert ev["seq"] == 1 and ev["shard"] == 0 and ev["enters"] == 1, ev
    assert ev["parameters"] == {"k": "v", "n": "3"}, ev
    assert ev["thread"] == h.proc.pid, "the host fires from its main thread, whose tid is the pid"
    assert before <= ev["ts_ns"] <= after, (before, ev["ts_ns"], after)


async def test_event_of_compiled_site_carries_file_and_line(host, http, streams):
    h = await host()
    lines = host_site_lines()
    s = streams(await open_stream(h))
    for type_ in ("sleep", "exception", "lambda", "handler", "enter"):
        await enable(http, h, f"site_{type_}")
        await h.ok(f"site {type_}")
        ev = (await s.next_event()).json()
        check_event_fields(ev, injection=f"site_{type_}", type_=type_, site=True)
        assert ev["file"].endswith("tests/host/testhost.c"), ev
        assert ev["line"] == lines[f"site_{type_}"], (ev, lines)


async def test_each_fire_type_reports_its_type(host, http, streams):
    h = await host()
    s = streams(await open_stream(h))
    for type_ in ("sleep", "exception", "lambda", "handler", "enter"):
        await enable(http, h, f"t_{type_}")
        await h.fire(f"t_{type_}", type_)
        ev = (await s.next_event()).json()
        check_event_fields(ev, injection=f"t_{type_}", type_=type_)


async def test_enters_and_seq_increase_per_fire(host, http, streams):
    h = await host()
    await enable(http, h, "inc")
    s = streams(await open_stream(h))
    await h.fire("inc", "enter", 3)
    evs = [e.json() for e in await s.events(3)]
    assert [(e["seq"], e["enters"]) for e in evs] == [(1, 1), (2, 2), (3, 3)]


async def test_event_carries_the_firing_shard(host, http, streams):
    h = await host()
    await enable(http, h, "sh")
    s = streams(await open_stream(h))
    await h.ok("shard 7")
    await h.fire("sh")
    assert (await s.next_event()).json()["shard"] == 7


async def test_disabled_points_publish_nothing(host, http, streams):
    h = await host()
    await enable(http, h, "on")
    s = streams(await open_stream(h))
    await h.fire("off", "enter", 5)
    await h.fire("on")
    ev = (await s.next_event()).json()
    assert ev["injection"] == "on" and ev["seq"] == 1, ev


async def test_parameter_values_with_control_characters_stay_on_one_data_line(host, http, streams):
    h = await host()
    await enable(http, h, "ctl", {"multi": "a\nb\r\nc\u2028d"})
    s = streams(await open_stream(h))
    await h.fire("ctl")
    item = await s.next_event()
    assert item.raw.count(b"\n") == 3, item.raw
    assert item.json()["parameters"] == {"multi": "a\nb\r\nc\u2028d"}


async def test_every_client_gets_every_event(host, http, streams):
    h = await host()
    await enable(http, h, "fan")
    clients = [streams(await open_stream(h)) for _ in range(4)]
    await h.fire("fan", "enter", 10)
    for c in clients:
        assert [e.seq for e in await c.events(10)] == list(range(1, 11))


# ---- filters ------------------------------------------------------------------------------------

async def fire_mix(h, http):
    """Fires, in order: a/enter shard0, b/exception shard1, c/enter shard2, a/exception shard1, then
    a marker m/lambda shard 0 so that a filtered stream's end is known."""
    for name in ("a", "b", "c", "m"):
        await enable(http, h, name)
    await h.fire("a", "enter")              # 1
    await h.ok("shard 1")
    await h.fire("b", "exception")          # 2
    await h.ok("shard 2")
    await h.fire("c", "enter")              # 3
    await h.ok("shard 1")
    await h.fire("a", "exception")          # 4
    await h.ok("shard 0")
    await h.fire("m", "lambda")             # 5


async def seqs_until_marker(s, marker_seq=5):
    got = []
    while True:
        ev = (await s.next_event()).json()
        got.append(ev["seq"])
        if ev["seq"] >= marker_seq:
            return got


async def test_filter_by_injection(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=a&injection=m"))
    await fire_mix(h, http)
    assert await seqs_until_marker(s) == [1, 4, 5]


async def test_filter_by_repeated_injection_only_those_names(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=b&injection=c&injection=m"))
    await fire_mix(h, http)
    assert await seqs_until_marker(s) == [2, 3, 5]


async def test_filter_by_type(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "type=exception&type=lambda"))
    await fire_mix(h, http)
    assert await seqs_until_marker(s) == [2, 4, 5]


async def test_filter_by_shard(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "shard=1"))
    await fire_mix(h, http)
    await h.ok("shard 1")
    await h.fire("m", "lambda")             # 6: the marker for this filter
    assert await seqs_until_marker(s, 6) == [2, 4, 6]


async def test_filters_combine(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=a&injection=b&injection=m&type=exception&type=lambda&shard=1"))
    await fire_mix(h, http)
    await h.ok("shard 1")
    await h.fire("m", "lambda")             # 6
    assert await seqs_until_marker(s, 6) == [2, 4, 6]


async def test_percent_encoded_injection_filter_matches_decoded_name(host, http, streams):
    h = await host()
    await rest(http, "POST", h, "/injection/a%2Fb%C3%A9")
    await enable(http, h, "a")
    s = streams(await open_stream(h, "injection=a%2Fb%C3%A9"))
    await h.fire("a")
    await h.fire("a/b\u00e9")
    ev = (await s.next_event()).json()
    assert (ev["injection"], ev["seq"]) == ("a/b\u00e9", 2), ev


async def test_bad_filter_values_are_400(host, streams):
    h = await host()
    for query in ("type=bogus", "phase=bogus", "shard=-1", "shard=x", "shard=99999999999", "since=abc",
                  "since=-3", "injection=" + "n" * 256, "injection=a%01"):
        s = streams(await open_stream(h, query, connected=False))
        assert s.status == 400, (query, s.status, s.body)
        doc = json.loads(s.body)
        assert doc["code"] == 400 and doc["message"], (query, doc)


async def test_bad_last_event_id_is_400(host, streams):
    h = await host()
    s = streams(await open_stream(h, headers={"Last-Event-ID": "abc"}, connected=False))
    assert s.status == 400, s.body
    assert json.loads(s.body)["code"] == 400


# ---- phases ------------------------------------------------------------------------------------

async def wait_for_waiters(h, name, n):
    await poll_until(lambda: _waiters_is(h, name, n), f"waiters({name}) == {n}")


async def _waiters_is(h, name, n):
    return await h.ok(f"waiters {name}") == n


async def test_default_phase_is_hit_only(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    s = streams(await open_stream(h))
    wid = await h.start_wait("w", 60000)
    await wait_for_waiters(h, "w", 1)
    await rest(http, "POST", h, "/injection/w/message")
    assert await h.done(wid) == 0
    await enable(http, h, "marker")
    await h.fire("marker")
    first, second = await s.events(2)
    assert (first.json()["injection"], first.json()["phase"], first.seq) == ("w", "hit", 1)
    assert (second.json()["injection"], second.seq) == ("marker", 4), "waiting (2), released (3) filtered out"


async def test_message_release_publishes_hit_waiting_released(host, http, streams):
    h = await host()
    await enable(http, h, "w", {"p": "1"})
    s = streams(await open_stream(h, "phase=all"))
    wid = await h.start_wait("w", 60000)
    hit, waiting = await s.events(2)
    await rest(http, "POST", h, "/injection/w/message")
    (released,) = await s.events(1)
    assert await h.done(wid) == 0
    evs = [hit.json(), waiting.json(), released.json()]
    assert [e["phase"] for e in evs] == ["hit", "waiting", "released"]
    assert [e["seq"] for e in evs] == [1, 2, 3]
    for e, phase in zip(evs, ("hit", "waiting", "released")):
        check_event_fields(e, injection="w", type_="handler", phase=phase)
        assert e["parameters"] == {"p": "1"}
    assert len({e["thread"] for e in evs}) == 1 and evs[0]["thread"] != h.proc.pid, "fired on the parked thread"


async def test_disable_release_publishes_released(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    s = streams(await open_stream(h, "phase=waiting&phase=released"))
    wid = await h.start_wait("w", 60000)
    (waiting,) = await s.events(1)
    assert waiting.json()["phase"] == "waiting"
    await rest(http, "DELETE", h, "/injection/w")
    (released,) = await s.events(1)
    assert released.json()["phase"] == "released"
    assert await h.done(wid) == 0


async def test_timeout_publishes_timeout_and_returns_etimedout(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    s = streams(await open_stream(h, "phase=all"))
    wid = await h.start_wait("w", 100)  # the timeout is the behaviour under test
    evs = [e.json() for e in await s.events(3)]
    assert [e["phase"] for e in evs] == ["hit", "waiting", "timeout"], evs
    assert await h.done(wid) == ETIMEDOUT


async def test_phase_filter_single_phase(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    s = streams(await open_stream(h, "phase=waiting"))
    wid = await h.start_wait("w", 60000)
    (waiting,) = await s.events(1)
    assert waiting.json()["phase"] == "waiting" and waiting.seq == 2
    await rest(http, "POST", h, "/injection/w/message")
    assert await h.done(wid) == 0
    wid = await h.start_wait("w", 60000)
    (again,) = await s.events(1)
    assert again.json()["phase"] == "waiting" and again.seq == 5, "hit 4 filtered out; released 3 too"
    await rest(http, "DELETE", h, "/injection/w")
    assert await h.done(wid) == 0


async def test_phase_filter_combines_with_injection_and_shard(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    await enable(http, h, "other")
    everything = streams(await open_stream(h, "phase=all"))
    s = streams(await open_stream(h, "phase=waiting&injection=w&type=handler&shard=1"))
    w0 = await h.start_wait("w", 60000)                 # shard 0: hit, waiting
    await wait_for_waiters(h, "w", 1)
    await h.ok("shard 1")
    o1 = await h.start_wait("other", 60000)             # shard 1, another name: hit, waiting
    await wait_for_waiters(h, "other", 1)
    w1 = await h.start_wait("w", 60000)                 # shard 1: hit, waiting <- the only match
    seen = []
    while not any(e["injection"] == "w" and e["shard"] == 1 and e["phase"] == "waiting" for e in seen):
        seen.append((await everything.next_event()).json())
    (ev,) = await s.events(1)
    ev = ev.json()
    assert (ev["seq"], ev["phase"], ev["shard"], ev["injection"]) == (seen[-1]["seq"], "waiting", 1, "w"), (ev, seen)
    assert len(seen) == 6, seen
    await rest(http, "DELETE", h, "/injection")
    assert [await h.done(i) for i in (w0, o1, w1)] == [0, 0, 0]


async def test_site_wait_events_carry_file_and_line(host, http, streams):
    h = await host()
    await enable(http, h, "site_wait")
    s = streams(await open_stream(h, "phase=all"))
    wid = await h.start_site_wait(60000)
    hit, waiting = await s.events(2)
    line = host_site_lines()["site_wait"]
    for e in (hit.json(), waiting.json()):
        check_event_fields(e, injection="site_wait", type_="handler", phase=e["phase"], site=True)
        assert e["line"] == line
    await rest(http, "POST", h, "/injection/site_wait/message")
    assert await h.done(wid) == 0


async def test_events_endpoint_refuses_bad_query_with_json(host, http):
    h = await host()
    assert_error_json(await rest(http, "GET", h, "/events", params={"since": "x"}), 400)


async def test_query_values_are_form_decoded_so_plus_is_a_space(host, http, streams):
    """As in every HTML form and URLSearchParams: '+' in a query value is a space, '%2B' a plus."""
    h = await host()
    assert (await rest(http, "POST", h, "/injection/a+b")).status == 200    # in a path '+' is itself
    assert (await rest(http, "POST", h, "/injection/c%2Bd")).status == 200
    assert sorted((await rest(http, "GET", h, "/injection")).json()) == ["a+b", "c+d"]
    s = streams(await open_stream(h, "injection=a+b&injection=c%2Bd"))   # "a b" and "c+d"
    await h.fire("a+b")
    await h.fire("c+d")
    ev = (await s.next_event()).json()
    assert (ev["injection"], ev["seq"]) == ("c+d", 2), ev


async def test_sleep_event_arrives_while_the_thread_still_sleeps(host, http, streams):
    """The event is published before the action: a stream sees a sleep injection while it sleeps
    (duration_ms from REST overrides the call site's 1 ms)."""
    h = await host()
    await enable(http, h, "slp", {"duration_ms": 2000})
    s = streams(await open_stream(h))
    started = time.monotonic()
    firing = asyncio.create_task(h.ok("fire sleep slp"))  # the 2 s sleep is the behaviour under test
    ev = (await s.next_event()).json()
    assert not firing.done(), "the event must arrive before the sleeping thread returns"
    assert (ev["injection"], ev["type"], ev["parameters"]) == ("slp", "sleep", {"duration_ms": "2000"}), ev
    await firing
    assert time.monotonic() - started >= 1.9, "duration_ms set over REST overrides the call site's 1 ms"


async def test_parameters_set_over_rest_reach_the_handler(host, http, streams):
    h = await host()
    await enable(http, h, "h", {"rc": 42})
    assert await h.fire("h", "handler") == 42, "the host's handler returns errinj_handler_get(h, \"rc\")"
    await enable(http, h, "h", {"rc": -3})
    assert await h.fire("h", "handler") == -3
    await enable(http, h, "h")
    assert await h.fire("h", "handler") == 7, "no rc parameter: the handler's default"
