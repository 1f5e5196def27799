"""The WebSocket session channel GET /v2/error_injection/ws (errinj-events(7)): the handshake and
its token, Origin and Host rules, events with the stream's filters, replay and overflow, commands
and their replies, session-owned injections (also when the client process is killed), and every
kind of bad input at the socket level."""
import asyncio
import json
import os
import struct
import subprocess
import sys

import aiohttp
import pytest

from conftest import DEADLINE, REPO, assert_error_json, open_stream, poll_until, rest, snapshot, status_of
from errinj import HTTPError, injection_session
from wsraw import BINARY, CLOSE, CONT, PING, TEXT, RawWS, frame, masked_fast


async def enabled(http, h, token=None):
    return (await rest(http, "GET", h, "/injection", token=token)).json()


# ---- handshake ----------------------------------------------------------------------------------

async def test_handshake_answers_101_with_accept_and_echoes_only_errinj(host):
    h = await host()
    ws = await RawWS.connect(h.port, headers={"Sec-WebSocket-Protocol": "errinj"})
    assert ws.header("upgrade").lower() == "websocket"
    assert ws.header("sec-websocket-protocol") == "errinj"
    ws.close()
    plain = await RawWS.connect(h.port)
    assert plain.header("sec-websocket-protocol") is None
    plain.close()


@pytest.mark.parametrize("headers,status", ids=["short-key", "no-key", "version-8", "no-upgrade", "other-protocol"],
                         argvalues=[
    ({"Sec-WebSocket-Key": "short"}, 400),
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Version": "8"}, 426),
    ({"Upgrade": None}, 400),
    ({"Sec-WebSocket-Protocol": "chat"}, 400),
])
async def test_bad_handshake_is_a_json_error(host, headers, status):
    h = await host()
    ws = await RawWS.connect(h.port, headers=headers, expect=status)
    doc = json.loads(await ws.body())
    assert doc["code"] == status and doc["message"], doc
    ws.close()


async def test_bad_filter_is_400_like_the_stream(host):
    h = await host()
    ws = await RawWS.connect(h.port, query="?phase=nope", expect=400)
    assert "phase" in json.loads(await ws.body())["message"]
    ws.close()


async def test_token_as_subprotocol_or_authorization_but_never_in_the_url(host, http):
    h = await host(token="s3cret")
    bad = await RawWS.connect(h.port, headers={"Sec-WebSocket-Protocol": "errinj, errinj.bearer.wrong"}, expect=401)
    assert bad.header("www-authenticate") == "Bearer"
    bad.close()
    (await RawWS.connect(h.port, query="?token=s3cret", expect=401)).close()
    good = await RawWS.connect(h.port, headers={"Sec-WebSocket-Protocol": "errinj, errinj.bearer.s3cret"})
    assert good.header("sec-websocket-protocol") == "errinj"
    good.close()
    (await RawWS.connect(h.port, headers={"Authorization": "Bearer s3cret"})).close()
    # The bearer subprotocol is only for the WebSocket: REST still wants Authorization.
    reply = await rest(http, "GET", h, "/injection", headers={"Sec-WebSocket-Protocol": "errinj.bearer.s3cret"})
    assert_error_json(reply, 401)


async def test_cross_origin_and_foreign_host_are_403(host):
    h = await host()
    (await RawWS.connect(h.port, headers={"Origin": "http://evil.example"}, expect=403)).close()
    (await RawWS.connect(h.port, headers={"Host": "evil.example"}, expect=403)).close()
    (await RawWS.connect(h.port, headers={"Origin": h.origin})).close()


async def test_sessions_count_against_max_subscribers_with_streams(host, http):
    h = await host(max_subscribers=2)
    a = await RawWS.connect(h.port)
    s = await open_stream(h)
    full = await RawWS.connect(h.port, expect=503)
    assert "too many subscribers" in json.loads(await full.body())["message"]
    full.close()
    assert (await status_of(http, h))["subscribers"] == 2
    a.close()
    await poll_until(lambda: status_of(http, h), "the closed session's slot")
    await poll_until(lambda: _subscribers_below(http, h, 2), "the session's slot freed")
    b = await RawWS.connect(h.port)
    b.close()
    s.close()


async def _subscribers_below(http, h, n):
    return (await status_of(http, h))["subscribers"] < n


# ---- events ---------------------------------------------------------------------------------------

async def test_events_are_the_same_json_as_the_sse_stream(host, http):
    h = await host()
    stream = await open_stream(h)
    async with injection_session(("127.0.0.1", h.port)) as session:
        await session.enable("same", parameters={"k": "v"})
        await h.fire("same")
        ws_event = await session.wait_for_injection("same", timeout=DEADLINE)
        sse_event = (await stream.next_event()).json()
    stream.close()
    del ws_event["node"]
    assert ws_event == sse_event


async def test_filters_replay_and_phases(host, http):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as control:
        await control.enable("kept", session=False)
        await control.enable("other", session=False)
        await h.fire("kept", times=2)
        await h.fire("other")
    first = (await rest(http, "GET", h, "/injection/kept/wait", params={"after": "0", "count": "2"})).json()
    ws = await RawWS.connect(h.port, query="?injection=kept&since=0")
    got = [await ws.recv_json(), await ws.recv_json()]
    assert [e["seq"] for e in got] == [e["seq"] for e in first]
    await h.fire("other")
    await h.fire("kept")
    assert (await ws.recv_json())["seq"] == first[1]["seq"] + 3  # both "other" events were filtered out
    ws.close()


async def test_overflow_notice_when_the_history_no_longer_has_a_replay(host, http):
    h = await host(history=4)
    async with injection_session(("127.0.0.1", h.port)) as control:
        await control.enable("many", session=False)
        await h.fire("many", times=10)
    ws = await RawWS.connect(h.port, query="?since=0")
    notice = await ws.recv_json()
    assert notice == {"overflow": {"dropped": 6, "next_seq": 7}}, notice
    assert [(await ws.recv_json())["seq"] for _ in range(4)] == [7, 8, 9, 10]
    ws.close()


# ---- commands --------------------------------------------------------------------------------------

async def test_commands_enable_get_message_wait_disable(host, http):
    h = await host()
    async with injection_session(("127.0.0.1", h.port), phase="all") as session:
        seq = await session.enable("parked", parameters={"n": 3}, session=False)
        assert (await rest(http, "GET", h, "/injection/parked")).json()[0]["parameters"] == [{"key": "n", "value": "3"}]
        state = await session.get("parked")
        assert state["enabled"] is True and state["parameters"] == [{"key": "n", "value": "3"}], state
        wid = await h.start_wait("parked", 20000)
        waiting = await session.wait("parked", phase="waiting", timeout=DEADLINE)
        assert waiting[0]["seq"] > seq and waiting[0]["phase"] == "waiting"
        await session.message("parked")
        assert await h.done(wid) == 0
        released = await session.wait_for_injection("parked", phase="released", timeout=DEADLINE)
        assert released["seq"] > waiting[0]["seq"]
        await session.disable("parked")
        assert (await session.get("parked")) == {"enabled": False}
        await session.enable("a", session=False)
        await session.enable("b", session=False)
        await session.disable_all()
        assert await enabled(http, h) == []


async def test_enable_takes_term_seed_and_one_shot_as_rest_does(host, http):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as session:
        await session.enable("termed", term="2*on->off", seed=42, session=False)
        state = await session.get("termed")
        assert state["term"] == "2*on->off" and state["seed"] == 42, state
        await session.enable("once", one_shot=True, session=False)
        assert (await session.get("once"))["one_shot"] is True
        with pytest.raises(HTTPError) as e:
            await session.enable("both", one_shot=True, term="on")
        assert e.value.status == 400 and "one_shot" in e.value.error_message
        assert json.loads(e.value.message) == {"message": e.value.error_message, "code": 400}


async def test_wait_timeout_is_408_and_unknown_name_wait_starts_now(host):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as session:
        with pytest.raises(HTTPError) as e:
            await session.wait("never", timeout=0.2)
        assert e.value.status == 408


@pytest.mark.parametrize("text,fragment", [
    ("{bad", "malformed JSON"),
    ("[1,2]", "JSON object"),
    ('{"op":"get","name":"x"}', "missing id"),
    ('{"id":null,"op":"get","name":"x"}', "missing id"),
    ('{"id":7,"op":"launch"}', "unknown op"),
    ('{"id":7}', "unknown op"),
    ('{"id":7,"op":"enable","name":"x","bogus":1}', "bogus"),
    ('{"id":7,"op":"enable","name":""}', "name"),
    ('{"id":7,"op":"enable","name":"x","one_shot":"yes"}', "one_shot"),
    ('{"id":7,"op":"enable","name":"x","term":"nope"}', "term"),
    ('{"id":7,"op":"enable","name":"x","parameters":[1]}', "parameters"),
    ('{"id":7,"op":"enable","name":"x","session":1}', "session"),
    ('{"id":7,"op":"wait","name":"x","count":0}', "count"),
    ('{"id":7,"op":"enable","name":"a\\u0001b"}', "name"),
    # A field name cut inside a character in the message: the reply still goes out (U+FFFD).
    ('{"id":7,"op":"enable","name":"x","a' + "\u00e9" * 150 + '":1}', "takes no field"),
])
async def test_bad_commands_get_an_error_reply_and_change_nothing(host, http, text, fragment):
    h = await host()
    before = await snapshot(http, h, ["x"])
    ws = await RawWS.connect(h.port)
    await ws.send_text(text)
    reply = await ws.recv_json()
    assert reply["ok"] is False and reply["code"] == 400, reply
    assert fragment in reply["message"], reply
    expected_id = 7 if '"id":7' in text else None
    assert reply["id"] == expected_id, reply
    # The session goes on: a good command after a bad one is answered.
    await ws.send_json({"id": 8, "op": "get", "name": "x"})
    assert (await ws.reply(8))["ok"] is True
    assert await snapshot(http, h, ["x"]) == before
    ws.close()


# ---- session-owned injections --------------------------------------------------------------------

async def test_session_injection_is_disabled_when_the_socket_closes_and_releases_its_handler(host, http):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as session:
        await session.enable("owned")
        await session.enable("kept", session=False)
        wid = await h.start_wait("owned", 60000)
        await poll_until(lambda: _waiters(http, h, "owned"), "the handler parked")
    assert await h.done(wid) == 0  # released by the disable, not by a timeout
    assert await enabled(http, h) == ["kept"]


async def test_a_later_enable_by_someone_else_takes_the_injection_over(host, http):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as session:
        await session.enable("shared")
        assert (await rest(http, "POST", h, "/injection/shared")).status == 200
    assert await enabled(http, h) == ["shared"]


async def _waiters(http, h, name):
    return (await rest(http, "GET", h, f"/injection/{name}/waiters")).json() >= 1


CLIENT = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from errinj import injection_session
async def main():
    async with injection_session(("127.0.0.1", int(sys.argv[1]))) as s:
        await s.enable("crash_owned", parameters={"by": "client"})
        print("armed", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


async def test_killing_the_client_process_disables_its_injection_and_releases_the_parked_handler(host, http):
    h = await host()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, str(h.port), str(REPO / "python"),
                                                stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        assert line == b"armed\n", line
        assert await enabled(http, h) == ["crash_owned"]
        wid = await h.start_wait("crash_owned", 60000)
        await poll_until(lambda: _waiters(http, h, "crash_owned"), "the handler parked")
        proc.kill()
        await proc.wait()
        assert await h.done(wid) == 0
        assert await enabled(http, h) == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---- bad input at the socket level --------------------------------------------------------------

async def closes_with(ws: RawWS, code: int):
    got, reason = await ws.expect_close()
    assert got == code, (got, reason)
    await ws.expect_eof()
    ws.close()


async def still_serves(http, h):
    """The server is unharmed: a new session works and REST answers."""
    async with injection_session(("127.0.0.1", h.port)) as session:
        assert await session.get("x") == {"enabled": False}
    assert (await rest(http, "GET", h, "/status")).status == 200


@pytest.mark.parametrize("data,code", ids=["unmasked", "reserved-opcode", "reserved-bit", "fragmented-ping",
                                          "long-ping", "lone-continuation", "message-in-message", "not-utf8",
                                          "surrogate", "overlong", "binary"], argvalues=[
    (frame(TEXT, b'{"id":1,"op":"get","name":"x"}', mask=False), 1002),   # a client frame must be masked
    (frame(3, b"x"), 1002),                                                # a reserved opcode
    (frame(TEXT, b"x", rsv=4), 1002),                                      # a reserved bit
    (frame(PING, b"x", fin=False), 1002),                                  # a fragmented control frame
    (frame(PING, b"x" * 126), 1002),                                       # a control frame over 125 bytes
    (frame(CONT, b"x"), 1002),                                             # a continuation with nothing to continue
    (frame(TEXT, b"{", fin=False) + frame(TEXT, b"}"), 1002),              # a new message inside a fragmented one
    (frame(TEXT, b"\xff\xfe"), 1007),                                      # text that is not UTF-8
    (frame(TEXT, b"\xed\xa0\x80"), 1007),                                  # a UTF-16 surrogate in UTF-8
    (frame(TEXT, b"\xc0\xaf"), 1007),                                      # an overlong encoding
    (frame(BINARY, b'{"id":1}'), 1003),                                    # binary messages
])
async def test_malformed_frames_close_with_the_rfc_6455_code(host, http, data, code):
    h = await host()
    async with injection_session(("127.0.0.1", h.port)) as control:
        await control.enable("x_kept", session=False)
    before = await snapshot(http, h, ["x_kept"])
    ws = await RawWS.connect(h.port)
    await ws.send(data)
    await closes_with(ws, code)
    assert await snapshot(http, h, ["x_kept"]) == before
    await still_serves(http, h)


async def test_a_message_over_1_mib_closes_with_1009_and_one_of_1_mib_is_read(host, http):
    h = await host()
    ws = await RawWS.connect(h.port)
    body = b'{"id":1,"op":"get","name":"x","pad":"'
    exact = body + b"y" * (1024 * 1024 - len(body) - 2) + b'"}'
    assert len(exact) == 1024 * 1024
    await ws.send(masked_fast(TEXT, exact))
    reply = await ws.recv_json()
    assert reply["ok"] is False and "pad" in reply["message"], reply  # read and parsed: an unknown field
    await ws.send(masked_fast(TEXT, exact + b" "))
    await closes_with(ws, 1009)
    await still_serves(http, h)


async def test_fragments_of_one_message_over_1_mib_close_with_1009(host, http):
    h = await host()
    ws = await RawWS.connect(h.port)
    part = b"a" * (600 * 1024)
    await ws.send(masked_fast(TEXT, part, fin=False))
    await ws.send(masked_fast(CONT, part))
    await closes_with(ws, 1009)
    await still_serves(http, h)


async def test_heartbeat_pings_every_session(host):
    h = await host(heartbeat_ms=200)
    ws = await RawWS.connect(h.port)
    op, _ = await ws.recv_frame()
    assert op == PING
    await ws.send(frame(10, b""))  # the pong; the session goes on
    await ws.send_json({"id": 1, "op": "get", "name": "x"})
    assert (await ws.reply(1))["ok"] is True
    ws.close()


async def test_stopping_the_server_closes_sessions_with_1001(host):
    h = await host()
    ws = await RawWS.connect(h.port)
    await ws.send_json({"id": 1, "op": "enable", "name": "stop_owned", "session": True})
    assert (await ws.reply(1))["ok"] is True
    await h.send_quit()
    code, reason = await ws.expect_close()
    assert code == 1001 and "stopping" in reason, (code, reason)
    await ws.expect_eof()
    ws.close()
    assert await h.wait_exit() == 0


async def test_client_close_frame_is_answered_with_its_code(host):
    h = await host()
    ws = await RawWS.connect(h.port)
    await ws.send(frame(CLOSE, struct.pack("!H", 1000) + b"bye"))
    code, _ = await ws.expect_close()
    assert code == 1000
    await ws.expect_eof()
    ws.close()


async def test_a_client_that_never_reads_gets_overflow_and_harms_nobody(host, http):
    h = await host(history=2000)
    async with injection_session(("127.0.0.1", h.port)) as control:
        await control.enable("flood", parameters={"pad": "p" * 2000}, session=False)
    sleeper = await RawWS.connect(h.port, rcvbuf=4096, limit=4096)
    # It sends commands but reads nothing: replies and events queue up to the bound, then the
    # server stops reading from it; other clients and REST carry on.
    for i in range(200):
        sleeper.writer.write(frame(TEXT, json.dumps({"id": i, "op": "get", "name": "flood"}).encode()))
    async with injection_session(("127.0.0.1", h.port), injection="flood") as watcher:
        # 20 MB: far more than the history (4 MB), the session's bound and the kernel's buffers hold.
        for burst in range(1, 11):
            await h.fire("flood", times=1000)
            await watcher.wait_for_event(lambda e, last=burst * 1000: e["seq"] == last, timeout=DEADLINE)
        assert not watcher.overflows
    assert (await rest(http, "GET", h, "/status")).status == 200
    # Reading at last: what the history overtook is reported, never silently skipped.
    seen_overflow = False
    last_seq = 0
    replies = set()
    while last_seq < 10000 or len(replies) < 200:
        msg = await sleeper.recv_json()
        if "overflow" in msg:
            seen_overflow = True
            last_seq = msg["overflow"]["next_seq"] - 1
        elif "ok" in msg:
            assert msg["ok"] is True, msg
            replies.add(msg["id"])
        else:
            assert msg["seq"] == last_seq + 1, (msg["seq"], last_seq)
            last_seq = msg["seq"]
    assert seen_overflow
    sleeper.close()
    await still_serves(http, h)
