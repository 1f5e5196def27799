"""errinj-events(7), Authorization and Cross-origin requests: the bearer token (401), cross-origin and foreign-Host requests
(403), and that no rejected request of any kind (400, 401, 403, 404, 405, 413) changes state."""
import json

import pytest

from conftest import assert_error_json, open_stream, poll_until, rest, snapshot

TOKEN = "s3cret-token"
FOREIGN = "http://evil.example"


# ---- the token ---------------------------------------------------------------------------------

async def test_missing_token_is_401_json(host, http):
    h = await host(token=TOKEN)
    assert_error_json(await rest(http, "GET", h, "/injection"), 401)


async def test_wrong_token_is_401_json(host, http):
    h = await host(token=TOKEN)
    for wrong in ("nope", TOKEN[:-1], TOKEN + "x", "", TOKEN.upper()):
        assert_error_json(await rest(http, "GET", h, "/injection", headers={"Authorization": f"Bearer {wrong}"}), 401)


async def test_wrong_scheme_is_401_json(host, http):
    h = await host(token=TOKEN)
    for value in (f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}", f"Bearer{TOKEN}"):
        assert_error_json(await rest(http, "GET", h, "/injection", headers={"Authorization": value}), 401)


async def test_correct_token_is_accepted_on_every_endpoint(host, http):
    h = await host(token=TOKEN)
    calls = [("POST", "/injection/t"), ("GET", "/injection/t"), ("POST", "/injection/t/message"),
             ("GET", "/injection/t/enters"), ("GET", "/injection/t/waiters"), ("GET", "/injection"),
             ("GET", "/points"), ("GET", "/status"), ("DELETE", "/injection/t"), ("DELETE", "/injection")]
    for method, path in calls:
        reply = await rest(http, method, h, path, token=TOKEN)
        assert reply.status == 200, (method, path, reply)


async def test_every_endpoint_needs_the_token(host, http):
    h = await host(token=TOKEN)
    calls = [("POST", "/injection/t"), ("GET", "/injection/t"), ("POST", "/injection/t/message"),
             ("GET", "/injection/t/enters"), ("GET", "/injection/t/waiters"), ("GET", "/injection"),
             ("GET", "/points"), ("GET", "/status"), ("DELETE", "/injection/t"), ("DELETE", "/injection"),
             ("GET", "/events")]
    for method, path in calls:
        assert_error_json(await rest(http, method, h, path), 401)


async def test_events_stream_needs_the_token(host, streams):
    h = await host(token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        s = streams(await open_stream(h, headers=headers, connected=False))
        assert s.status == 401, (headers, s.status)
        assert json.loads(s.body)["code"] == 401
    streams(await open_stream(h, token=TOKEN))  # 200 and ': connected'


async def test_without_a_token_configured_any_authorization_is_ignored(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/injection", headers={"Authorization": "Bearer whatever"})
    assert reply.status == 200


# ---- cross-origin and Host -------------------------------------------------------------------------

async def test_foreign_origin_post_is_403_and_enables_nothing(host, http):
    h = await host()
    assert_error_json(await rest(http, "POST", h, "/injection/x", headers={"Origin": FOREIGN}), 403)
    assert (await rest(http, "GET", h, "/injection")).json() == []


async def test_foreign_origin_get_is_403(host, http):
    h = await host()
    for path in ("/injection", "/injection/x", "/points", "/status", "/injection/x/enters"):
        assert_error_json(await rest(http, "GET", h, path, headers={"Origin": FOREIGN}), 403)


async def test_foreign_origin_events_is_403(host, streams):
    h = await host()
    s = streams(await open_stream(h, headers={"Origin": FOREIGN}, connected=False))
    assert s.status == 403 and json.loads(s.body)["code"] == 403, (s.status, s.body)


async def test_origins_that_are_not_exactly_our_own_are_403(host, http):
    h = await host()
    for origin in ("null", f"https://127.0.0.1:{h.port}", f"http://127.0.0.1:{h.port + 1}",
                   "http://127.0.0.1", f"http://127.0.0.1:{h.port}.evil.example", f"http://evil.example:{h.port}"):
        assert_error_json(await rest(http, "GET", h, "/injection", headers={"Origin": origin}), 403)


async def test_same_origin_requests_pass(host, http, streams):
    h = await host()
    hdrs = {"Origin": h.origin}
    assert (await rest(http, "POST", h, "/injection/same", headers=hdrs)).status == 200
    assert (await rest(http, "GET", h, "/injection", headers=hdrs)).json() == ["same"]
    assert (await rest(http, "DELETE", h, "/injection/same", headers=hdrs)).status == 200
    streams(await open_stream(h, headers=hdrs))


async def test_non_loopback_host_header_is_403(host, http, streams):
    h = await host()
    for value in (f"evil.example:{h.port}", "evil.example", f"10.0.0.1:{h.port}", f"127.0.0.1.evil.example:{h.port}",
                  f"[2001:db8::1]:{h.port}"):
        assert_error_json(await rest(http, "POST", h, "/injection/x", headers={"Host": value}), 403)
        assert_error_json(await rest(http, "GET", h, "/injection", headers={"Host": value}), 403)
        s = streams(await open_stream(h, headers={"Host": value}, connected=False))
        assert s.status == 403, (value, s.status)
    assert (await rest(http, "GET", h, "/injection")).json() == []


async def test_loopback_host_names_pass(host, http):
    h = await host()
    for value in (f"127.0.0.1:{h.port}", f"localhost:{h.port}", f"LOCALHOST:{h.port}", f"127.9.8.7:{h.port}",
                  f"[::1]:{h.port}", "localhost"):
        reply = await rest(http, "GET", h, "/injection", headers={"Host": value})
        assert reply.status == 200, (value, reply)


async def test_allow_remote_accepts_foreign_host_but_still_refuses_foreign_origin(host, http):
    h = await host(allow_remote=True)
    reply = await rest(http, "GET", h, "/injection", headers={"Host": f"node1.example:{h.port}"})
    assert reply.status == 200, reply
    reply = await rest(http, "GET", h, "/injection",
                       headers={"Host": f"node1.example:{h.port}", "Origin": f"http://node1.example:{h.port}"})
    assert reply.status == 200, "an Origin equal to the Host is the server's own origin"
    assert_error_json(await rest(http, "GET", h, "/injection",
                                 headers={"Host": f"node1.example:{h.port}", "Origin": FOREIGN}), 403)


# ---- no rejected request changes state ------------------------------------------------------------

BIG = '{"k":"' + "z" * (1024 * 1024) + '"}'
TOO_MANY_QUERY = "&".join(f"q{i}=1" for i in range(100))

# id -> (status, method, path, kwargs). Paths are relative to /v2/error_injection, or absolute with "!".
REJECTED = {
    "400-malformed-json": (400, "POST", "/injection/keep", {"data": '{"k": '}),
    "400-body-not-an-object": (400, "POST", "/injection/keep", {"data": '["new", "params"]'}),
    "400-bad-one-shot-existing": (400, "POST", "/injection/keep?one_shot=maybe", {"data": '{"new": "x"}'}),
    "400-bad-one-shot-new-name": (400, "POST", "/injection/fresh?one_shot=1", {}),
    "400-name-too-long": (400, "POST", "/injection/" + "n" * 256, {}),
    "400-name-control-char": (400, "POST", "/injection/ke%0Aep", {}),
    "400-name-bad-escape": (400, "DELETE", "/injection/keep%zz", {}),
    "400-too-many-query-values": (400, "POST", "/injection/keep?" + TOO_MANY_QUERY, {"data": '{"new": "x"}'}),
    "401-no-token-delete-all": (401, "DELETE", "/injection", {"token_": None}),
    "401-wrong-token-enable": (401, "POST", "/injection/keep", {"token_": "wrong", "data": '{"new": "x"}'}),
    "401-wrong-token-message": (401, "POST", "/injection/park/message", {"token_": "wrong"}),
    "403-origin-delete-all": (403, "DELETE", "/injection", {"headers": {"Origin": FOREIGN}}),
    "403-origin-enable": (403, "POST", "/injection/fresh", {"headers": {"Origin": FOREIGN}}),
    "403-origin-reenable": (403, "POST", "/injection/keep?one_shot=true",
                            {"headers": {"Origin": FOREIGN}, "data": '{"new": "x"}'}),
    "403-origin-disable": (403, "DELETE", "/injection/keep", {"headers": {"Origin": FOREIGN}}),
    "403-origin-message": (403, "POST", "/injection/park/message", {"headers": {"Origin": FOREIGN}}),
    "403-host-delete-all": (403, "DELETE", "/injection", {"headers": {"Host": "evil.example"}}),
    "403-host-enable": (403, "POST", "/injection/fresh", {"headers": {"Host": "evil.example"}}),
    "404-unknown-action": (404, "POST", "/injection/park/release", {}),
    "404-unknown-root": (404, "DELETE", "!/v2/error_injection", {}),
    "404-unknown-prefix": (404, "DELETE", "!/v1/error_injection/injection/keep", {}),
    "405-put-injection": (405, "PUT", "/injection/keep", {"data": '{"new": "x"}'}),
    "405-post-collection": (405, "POST", "/injection", {"data": '{"new": "x"}'}),
    "405-delete-enters": (405, "DELETE", "/injection/keep/enters", {}),
    "405-get-message": (405, "GET", "/injection/park/message", {}),
    "413-reenable": (413, "POST", "/injection/keep", {"data": BIG}),
    "413-new-name": (413, "POST", "/injection/fresh", {"data": BIG}),
}


@pytest.mark.parametrize("kind", list(REJECTED))
async def test_rejected_request_leaves_state_unchanged(host, http, kind):
    status, method, path, kwargs = REJECTED[kind]
    kwargs = dict(kwargs)
    needs_token = "token_" in kwargs
    token = TOKEN if needs_token else None
    h = await host(token=token)
    # State to protect: an enabled injection with parameters and enters, and a parked thread.
    assert (await rest(http, "POST", h, "/injection/keep", data='{"k": "v"}', token=token)).status == 200
    assert (await rest(http, "POST", h, "/injection/park", token=token)).status == 200
    await h.fire("keep", "enter", 2)
    wid = await h.start_wait("park", 60000)

    async def parked():
        return (await rest(http, "GET", h, "/injection/park/waiters", token=token)).json() == 1
    await poll_until(parked, "a parked thread")
    names = ["keep", "park", "fresh"]
    before = await snapshot(http, h, names, token=token)

    request_token = kwargs.pop("token_", token)
    if path.startswith("!"):
        async with http.request(method, h.base + path[1:], **kwargs) as resp:
            reply_status, body = resp.status, await resp.read()
        assert reply_status == status, (kind, reply_status, body[:200])
    else:
        reply = await rest(http, method, h, path, token=request_token, **kwargs)
        assert_error_json(reply, status)

    after = await snapshot(http, h, names, token=token)
    assert after == before, f"{kind} changed state"
    assert not h.done_already(wid), f"{kind} released a parked thread"
    assert (await rest(http, "POST", h, "/injection/park/message", token=token)).status == 200
    assert await h.done(wid) == 0
