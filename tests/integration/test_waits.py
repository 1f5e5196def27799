"""Server-side waits: the Errinj-Seq and Errinj-Warning headers of an enable, and
GET .../injection/{name}/wait (200 with the first N matching events after a seq, 408 on timeout,
410 when the events after the seq are no longer kept, 503 beyond the limit), which holds no
thread per waiter and consumes nothing."""
import asyncio
import json
import os
import time

import aiohttp
from yarl import URL

from conftest import DEADLINE, assert_error_json, enable, open_stream, poll_until, rest, snapshot, status_of



async def wait(http, h, name, query="", client_timeout=DEADLINE):
    url = URL(h.url(f"/injection/{name}/wait{query}"), encoded=True)
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=client_timeout)) as resp:
        body = await resp.read()
        return resp.status, body


def host_threads(h) -> int:
    return len(os.listdir(f"/proc/{h.proc.pid}/task"))


def host_sockets(h) -> int:
    fds = f"/proc/{h.proc.pid}/fd"
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(f"{fds}/{fd}").startswith("socket:")
        except OSError:
            pass  # closed while listing
    return count


# ---- the enable's headers --------------------------------------------------------------------

async def test_enable_answers_errinj_seq_the_last_seq_before_it(host, http):
    h = await host()
    first = await enable(http, h, "site_enter")
    assert first.headers["errinj-seq"] == "0"
    assert first.body == b""
    await h.ok("site enter 3")
    again = await rest(http, "POST", h, "/injection/other")
    assert int(again.headers["errinj-seq"]) == 3 == (await status_of(http, h))["seq"]


async def test_enable_of_a_name_without_compiled_point_warns_and_still_enables(host, http):
    h = await host()
    reply = await enable(http, h, "no_such_point")
    assert reply.headers["errinj-warning"] == "no compiled-in point named no_such_point"
    assert (await rest(http, "GET", h, "/injection")).json() == ["no_such_point"]
    compiled = await enable(http, h, "site_enter")
    assert "errinj-warning" not in compiled.headers


# ---- answers ------------------------------------------------------------------------------------

async def test_wait_after_the_act_returns_the_hit_from_history(host, http):
    h = await host()
    await enable(http, h, "site_enter")
    await h.ok("site enter")
    status, body = await wait(http, h, "site_enter")
    assert status == 200, body
    events = json.loads(body)
    assert len(events) == 1 and events[0]["injection"] == "site_enter" and events[0]["seq"] == 1
    assert events[0]["phase"] == "hit" and events[0]["type"] == "enter"


async def test_wait_before_the_act_returns_when_it_fires(host, http):
    h = await host()
    await enable(http, h, "w")
    task = asyncio.create_task(wait(http, h, "w", "?count=3"))
    await h.fire("w", "enter", 1)
    await h.fire("other", "enter", 1)
    await h.fire("w", "enter", 2)
    status, body = await task
    assert status == 200, body
    events = json.loads(body)
    assert [e["enters"] for e in events] == [1, 2, 3]
    assert all(e["injection"] == "w" for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


async def test_wait_defaults_after_to_the_latest_enable(host, http):
    h = await host()
    await enable(http, h, "w")
    await h.fire("w", "enter", 2)
    await rest(http, "DELETE", h, "/injection/w")
    second = await enable(http, h, "w")
    assert second.headers["errinj-seq"] == "2"
    await h.fire("w", "enter", 1)
    status, body = await wait(http, h, "w")
    assert status == 200
    assert [e["seq"] for e in json.loads(body)] == [3]
    # An explicit after reaches back past the latest enable.
    status, body = await wait(http, h, "w", "?after=0&count=3")
    assert status == 200 and [e["seq"] for e in json.loads(body)] == [1, 2, 3]


async def test_wait_counts_only_the_asked_phase(host, http):
    h = await host()
    await enable(http, h, "site_wait")
    wid = await h.start_site_wait(20000)
    status, body = await wait(http, h, "site_wait", "?phase=waiting")
    assert status == 200 and json.loads(body)[0]["phase"] == "waiting"
    await rest(http, "POST", h, "/injection/site_wait/message")
    assert await h.done(wid) == 0
    status, body = await wait(http, h, "site_wait", "?phase=all&count=3")
    assert status == 200
    assert [e["phase"] for e in json.loads(body)] == ["hit", "waiting", "released"]


async def test_timeout_answers_408_with_the_json_error(host, http):
    h = await host()
    await enable(http, h, "w")
    await h.fire("w", "enter", 1)
    start = time.monotonic()
    status, body = await wait(http, h, "w", "?count=2&timeout=0.3")
    elapsed = time.monotonic() - start
    assert status == 408 and elapsed >= 0.3, (status, elapsed)
    doc = json.loads(body)
    assert doc["code"] == 408 and "1 arrived" in doc["message"] and "w" in doc["message"], doc
    status, body = await wait(http, h, "w", "?count=2&timeout=0")
    assert status == 408


async def test_events_no_longer_kept_answer_410(host, http):
    h = await host(history=4)
    await enable(http, h, "w")
    await h.fire("w", "enter", 10)
    status, body = await wait(http, h, "w")
    assert status == 410, body
    doc = json.loads(body)
    assert doc["code"] == 410 and "no longer kept" in doc["message"]
    # What is still kept is still waited for.
    status, body = await wait(http, h, "w", "?after=7")
    assert status == 200 and json.loads(body)[0]["seq"] == 8


async def test_a_wait_consumes_nothing(host, http, streams):
    h = await host()
    await enable(http, h, "w")
    s = streams(await open_stream(h, "injection=w"))
    tasks = [asyncio.create_task(wait(http, h, "w")) for _ in range(5)]
    await h.fire("w", "enter", 1)
    answers = await asyncio.gather(*tasks)
    assert all(st == 200 and json.loads(b)[0]["seq"] == 1 for st, b in answers), answers
    assert (await s.next_event()).seq == 1
    status, body = await wait(http, h, "w")
    assert status == 200 and json.loads(body)[0]["seq"] == 1


async def test_bad_queries_answer_400_and_change_nothing(host, http):
    h = await host()
    await enable(http, h, "w")
    before = await snapshot(http, h, ["w"])
    for query in ("?count=0", "?count=10001", "?count=x", "?timeout=3601", "?timeout=-1", "?timeout=1.",
                  "?timeout=abc", "?after=-1", "?after=1e3", "?phase=bogus"):
        status, body = await wait(http, h, "w", query)
        assert status == 400, (query, status, body)
        doc = json.loads(body)
        assert doc["code"] == 400 and doc["message"], doc
    bad_name = await rest(http, "GET", h, "/injection/%00/wait")
    assert_error_json(bad_name, 400)
    wrong_method = await rest(http, "POST", h, "/injection/w/wait")
    assert_error_json(wrong_method, 405)
    assert await snapshot(http, h, ["w"]) == before


async def test_waits_beyond_the_limit_answer_503(host, http):
    h = await host(max_subscribers=2)
    await enable(http, h, "w")
    held = [asyncio.create_task(wait(http, h, "w")) for _ in range(2)]

    async def refused():
        status, body = await wait(http, h, "w", "?timeout=0")  # never holds a slot past its own request
        return status == 503 and body
    # The two held waits reach the server in their own time: poll for the refusal.
    deadline = time.monotonic() + DEADLINE
    body = await refused()
    while not body and time.monotonic() < deadline:
        body = await refused()
    assert body, "a third wait was never refused"
    doc = json.loads(body)
    assert doc["code"] == 503 and "too many waits" in doc["message"]
    await h.fire("w", "enter", 1)
    assert all(st == 200 for st, _ in await asyncio.gather(*held))
    status, _ = await wait(http, h, "w", "?timeout=0")
    assert status == 200  # the slots are free again


async def test_waits_hold_no_thread_and_leave_rest_answering(host, http):
    h = await host(max_subscribers=300)
    await enable(http, h, "w")
    threads_before = host_threads(h)
    sockets_before = host_sockets(h)
    tasks = [asyncio.create_task(wait(http, h, "w", "?count=1")) for _ in range(200)]
    # One of them may reuse the enable's keep-alive connection.
    await poll_until(lambda: host_sockets(h) >= sockets_before + 199, "200 wait connections accepted")
    # Each accepted wait is held (nothing fired); a wait with timeout 0 is answered at once.
    status, _ = await wait(http, h, "w", "?timeout=0")
    assert status == 408
    start = time.monotonic()
    reply = await rest(http, "GET", h, "/status")
    assert reply.status == 200 and time.monotonic() - start < 1.0
    assert host_threads(h) == threads_before
    await h.fire("w", "enter", 1)
    answers = await asyncio.gather(*tasks)
    assert all(st == 200 and json.loads(b)[0]["seq"] == 1 for st, b in answers)


async def test_server_stop_answers_open_waits_503(host, http):
    h = await host()
    await enable(http, h, "w")
    task = asyncio.create_task(wait(http, h, "w", "?timeout=60"))
    # Once a second wait times out, the first one has been received and is held.
    assert (await wait(http, h, "w", "?timeout=0.1"))[0] == 408
    await h.send_quit()
    status, body = await task
    assert status == 503 and json.loads(body)["message"] == "server is stopping"
    assert await h.wait_exit() == 0


# ---- the Python client ------------------------------------------------------------------------

async def test_python_wait_for_injection_over_rest(host):
    from errinj import HTTPError, RESTClient
    h = await host()
    async with RESTClient(port=h.port) as api:
        await api.enable_injection("127.0.0.1", "site_enter", one_shot=False)
        await h.ok("site enter 2")
        events = await api.wait_for_injection("127.0.0.1", "site_enter", count=2, timeout=10)
        assert [e["enters"] for e in events] == [1, 2]
        again = await api.wait_for_injection("127.0.0.1", "site_enter", timeout=10)
        assert again[0]["seq"] == events[0]["seq"]  # consumes nothing
        task = asyncio.create_task(api.wait_for_injection("127.0.0.1", "site_enter", count=3, timeout=10))
        await h.ok("site enter")
        assert [e["enters"] for e in await task] == [1, 2, 3]
        start = time.monotonic()
        try:
            await api.wait_for_injection("127.0.0.1", "site_enter", count=4, timeout=0.3)
        except asyncio.TimeoutError as exc:
            assert "site_enter" in str(exc) and "3 arrived" in str(exc), exc
        else:
            raise AssertionError("no timeout")
        assert time.monotonic() - start >= 0.3
        try:
            await api.wait_for_injection("127.0.0.1", "site_enter", count=0)
        except HTTPError as exc:
            assert exc.status == 400
        else:
            raise AssertionError("count=0 accepted")


async def test_python_client_logs_the_warning_once_per_name(host, caplog):
    from errinj import RESTClient
    h = await host()
    async with RESTClient(port=h.port) as api:
        with caplog.at_level("WARNING", logger="errinj"):
            for _ in range(3):
                await api.enable_injection("127.0.0.1", "misspelt", one_shot=False)
            await api.enable_injection("127.0.0.1", "site_enter", one_shot=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["errinj: no compiled-in point named misspelt"], warnings
