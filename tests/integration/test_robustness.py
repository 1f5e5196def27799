"""errinj-events(7), Responses: "No request may crash the process, leak, or leave state half-changed."
Malformed HTTP sent over raw sockets: each gets a 4xx (or the connection closes), the state is
unchanged, the server keeps serving, and the host still exits 0 with no sanitizer report (the
ASan build checks leaks at exit)."""
import asyncio
import re
import socket
import struct

import pytest

from conftest import DEADLINE, open_stream, poll_until, rest, snapshot, status_of

H = b"Host: 127.0.0.1\r\n"
HC = H + b"Connection: close\r\n"  # so the server closes after answering, whatever it makes of a half-close
P = b"/v2/error_injection"

CASES = {
    "garbage-bytes": (b"\x00\x01\x02garbage\xff\r\n\r\n", None),
    "unknown-method": (b"FOO " + P + b"/injection HTTP/1.1\r\n" + HC + b"\r\n", {405}),
    "header-without-colon": (b"GET " + P + b"/injection HTTP/1.1\r\n" + HC + b"NoColonHere\r\n\r\n", {400}),
    "url-of-100-kb": (b"GET " + P + b"/injection/" + b"u" * 100_000 + b" HTTP/1.1\r\n" + HC + b"\r\n", {414, 400, 431}),
    "header-of-100-kb": (b"GET " + P + b"/status HTTP/1.1\r\n" + HC + b"X-Big: " + b"h" * 100_000 + b"\r\n\r\n",
                         {431, 400, 413}),
    "thousand-headers": (b"GET " + P + b"/status HTTP/1.1\r\n" + HC +
                         b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n", {200, 400, 431}),
    "negative-content-length": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC + b"Content-Length: -5\r\n\r\n",
                                {400}),
    "huge-content-length": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC +
                            b"Content-Length: 99999999999999999999999\r\n\r\n", {400, 413}),
    "bad-chunk-size": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC + b"Transfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nabc\r\n0\r\n\r\n", {400}),
    "truncated-body": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC + b"Content-Length: 100\r\n\r\n"
                       b'{"new": "x"', None),
    "truncated-chunked-body": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC + b"Transfer-Encoding: chunked\r\n"
                               b"\r\n5\r\n{\"new\r\n", None),
    "bad-http-version": (b"GET " + P + b"/status HTTP/9.9\r\n" + HC + b"\r\n", {505, 400}),
    "expect-continue-over-limit": (b"POST " + P + b"/injection/keep HTTP/1.1\r\n" + HC +
                                   b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n", None),
    "events-with-bad-query": (b"GET " + P + b"/events?shard=%zz HTTP/1.1\r\n" + HC + b"\r\n", {400}),
}


async def send_and_half_close(port, data: bytes) -> bytes:
    """Sends data, shuts our side down (the server sees EOF), reads whatever comes until EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        await writer.drain()
        writer.write_eof()
    except (ConnectionError, OSError):
        pass
    out = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), DEADLINE):
            out += chunk
    except asyncio.TimeoutError:  # before OSError: on 3.11 TimeoutError is an OSError
        pytest.fail(f"the server neither answered nor closed within {DEADLINE}s; got {out[:200]!r}")
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return out


async def send_and_close(port, data: bytes):
    """Sends data and closes the connection without waiting for an answer: for requests the
    server cannot finish (truncated, garbage), whose fate must not depend on noticing a half-close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    writer.close()


async def open_events_and_hang_up(h, read_greeting: bool):
    """Requests the event stream and closes the connection, after ': connected' or at once."""
    if read_greeting:
        (await open_stream(h)).close()
    else:
        await send_and_close(h.port, b"GET " + P + b"/events HTTP/1.1\r\n" + H + b"\r\n")


def statuses(reply: bytes):
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", reply) if m.group(1) != b"100"]


@pytest.mark.parametrize("case", list(CASES))
async def test_malformed_request_is_refused_without_harm(host, http, case):
    data, accepted = CASES[case]
    h = await host()
    assert (await rest(http, "POST", h, "/injection/keep", data='{"k": "v"}')).status == 200
    await h.fire("keep", "enter", 2)
    before = await snapshot(http, h, ["keep"])
    if accepted is None:
        await send_and_close(h.port, data)
    else:
        reply = await send_and_half_close(h.port, data)
        got = statuses(reply)
        assert got and got[0] in accepted, f"{case}: answered {reply[:300]!r}"
    assert await snapshot(http, h, ["keep"]) == before, f"{case} changed state"
    # The server keeps serving, and a connection that went away leaves no subscriber behind.
    assert (await rest(http, "GET", h, "/status")).status == 200
    live = await open_stream(h)
    await h.fire("keep")
    # A new stream may also get the two earlier fires if the server had not stored them yet when
    # it registered (a stream promises only what fires after ': connected'): read up to the third.
    enters = []
    while not enters or enters[-1] < 3:
        enters.append((await live.next_event()).json()["enters"])
    assert enters[-1] == 3 and enters == sorted(set(enters)), enters
    await live.aclose()


async def test_raw_nul_byte_in_path_is_400_and_enables_nothing(host, http):
    h = await host()
    reply = await send_and_half_close(
        h.port, b"POST " + P + b"/injection/a\x00b HTTP/1.1\r\n" + HC + b"Content-Length: 0\r\n\r\n")
    enabled = (await rest(http, "GET", h, "/injection")).json()
    assert enabled == [], f"enabled {enabled} after {reply[:120]!r}"
    assert statuses(reply)[:1] == [400], reply


async def test_pipelined_requests_are_answered_in_order(host):
    h = await host()
    one = b"POST " + P + b"/injection/p HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n"
    two = b"GET " + P + b"/injection/p HTTP/1.1\r\n" + H + b"\r\n"
    three = b"GET " + P + b"/injection/nope/bogus HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    reply = await send_and_half_close(h.port, one + two + three)
    assert statuses(reply) == [200, 200, 404], reply
    assert b'[{"enabled":true,"one_shot":false,"parameters":[],"term":"on","seed":7}]' in reply


@pytest.mark.parametrize("read_greeting", [False, True], ids=["before-greeting", "after-greeting"])
async def test_hundreds_of_streams_that_hang_up_leave_no_subscriber_behind(host, http, read_greeting):
    h = await host(heartbeat_ms=200)
    for _ in range(4):
        await asyncio.gather(*(open_events_and_hang_up(h, read_greeting) for _ in range(50)))

    async def none_left():
        return (await rest(http, "GET", h, "/status")).json()["subscribers"] == 0
    await poll_until(none_left, "every hung-up stream to be noticed (heartbeats find dead clients)")
    assert (await rest(http, "POST", h, "/injection/after")).status == 200
    live = await open_stream(h)
    await h.fire("after")
    assert (await live.next_event()).seq == 1
    await live.aclose()


async def test_a_client_that_sends_fin_or_rst_frees_its_slot_without_a_heartbeat(host, http):
    """A client that closes its stream, with a FIN (even one that only shuts down its sending side,
    which no event-stream client does while it still wants events) or a RST, has left: its slot
    is free long before the next heartbeat."""
    h = await host(heartbeat_ms=600_000, max_subscribers=2)
    for how in ("fin", "rst"):
        s = await open_stream(h)
        writer = s.writer
        assert (await status_of(http, h))["subscribers"] == 1
        if how == "fin":
            writer.write_eof()
        else:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

        async def freed():
            return (await status_of(http, h))["subscribers"] == 0
        await poll_until(freed, f"the slot of a stream closed by {how} to be free (heartbeat 600 s)", timeout=10)
        writer.close()


async def test_raw_nul_byte_in_a_path_with_a_query_is_400(host, http):
    h = await host()
    reply = await send_and_half_close(
        h.port, b"POST " + P + b"/injection/a\x00b?one_shot=true HTTP/1.1\r\n" + HC + b"Content-Length: 0\r\n\r\n")
    assert statuses(reply)[:1] == [400], reply
    assert (await rest(http, "GET", h, "/injection")).json() == []


async def test_a_query_without_nul_is_still_accepted(host, http):
    h = await host()
    reply = await send_and_half_close(
        h.port, b"POST " + P + b"/injection/ab?one_shot=true HTTP/1.1\r\n" + HC + b"Content-Length: 0\r\n\r\n")
    assert statuses(reply)[:1] == [200], reply
    assert (await rest(http, "GET", h, "/injection")).json() == ["ab"]


async def test_405_names_the_allowed_methods_in_the_allow_header(host, http):
    h = await host()
    async with http.put(f"http://127.0.0.1:{h.port}/v2/error_injection/injection/x") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD, POST, DELETE"
    async with http.post(f"http://127.0.0.1:{h.port}/v2/error_injection/injection") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, HEAD, DELETE"
