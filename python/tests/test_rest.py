"""RESTClient against the fake server: paths, query, bodies, answers, errors; the context
managers; wait_for_injection_enter on the event stream."""

import asyncio
import json

import pytest

from errinj import HTTPError, RESTClient, inject_error, inject_error_one_shot

API = "/v2/error_injection"


@pytest.fixture
async def api(server):
    client = RESTClient(port=server.port)
    yield client
    await client.close()


async def test_enable_injection_sends_one_shot_as_str_and_parameters_as_strings(server, api):
    await api.enable_injection("127.0.0.1", "put_before_apply", one_shot=True,
                               parameters={"duration_ms": 100, "mode": "x"})
    req = server.requests[-1]
    assert (req.method, req.raw_path) == ("POST", f"{API}/injection/put_before_apply")
    assert req.query == [("one_shot", "True")]
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req.body) == {"duration_ms": "100", "mode": "x"}
    assert "Authorization" not in req.headers
    await api.enable_injection("127.0.0.1", "plain", False)
    assert server.requests[-1].query == [("one_shot", "False")]
    assert json.loads(server.requests[-1].body) == {}


async def test_enable_injection_sends_term_and_seed_as_query_values(server, api):
    await api.enable_injection("127.0.0.1", "t", term="2*off->1*on", seed=18446744073709551615)
    req = server.requests[-1]
    assert req.query == [("one_shot", "False"), ("term", "2*off->1*on"), ("seed", "18446744073709551615")]
    await api.enable_injection("127.0.0.1", "t2", False, {"k": 1}, term="1%return(-5)")
    assert server.requests[-1].query == [("one_shot", "False"), ("term", "1%return(-5)")]
    for bad in (-1, 2 ** 64, "7", True, 1.5):
        with pytest.raises(ValueError):
            await api.enable_injection("127.0.0.1", "t3", seed=bad)
    assert server.requests[-1].query[-1] == ("term", "1%return(-5)")  # nothing more was sent


async def test_injection_names_are_percent_encoded_as_one_path_segment(server, api):
    name = "a b/c?d%ž"
    await api.enable_injection("127.0.0.1", name, one_shot=False)
    assert server.requests[-1].raw_path == f"{API}/injection/a%20b%2Fc%3Fd%25%C5%BE"
    assert server.injections.keys() == {name}
    assert await api.get_enabled_injections("127.0.0.1") == [name]
    await api.message_injection("127.0.0.1", name)
    assert server.requests[-1].raw_path.endswith("%C5%BE/message")


async def test_get_injection_returns_the_per_shard_list(server, api):
    await api.enable_injection("127.0.0.1", "x", one_shot=False, parameters={"k": "v"})
    assert await api.get_injection("127.0.0.1", "x") == [
        {"enabled": True, "one_shot": False, "parameters": [{"key": "k", "value": "v"}]}]
    await api.disable_injection("127.0.0.1", "x")
    assert server.requests[-1].method == "DELETE"
    assert await api.get_injection("127.0.0.1", "x") == [{"enabled": False}]


async def test_counters_points_status_and_disable_all(server, api):
    await api.enable_injection("127.0.0.1", "a", one_shot=False)
    await api.enable_injection("127.0.0.1", "b", one_shot=False)
    server.fire("a")
    server.fire("a")
    server.injections["a"]["waiters"] = 3
    assert await api.get_injection_enter_count("127.0.0.1", "a") == 2
    assert await api.get_injection_enter_count("127.0.0.1", "never") == 0
    assert await api.get_injection_waiters("127.0.0.1", "a") == 3
    assert sorted(await api.get_enabled_injections("127.0.0.1")) == ["a", "b"]
    points = await api.get_points("127.0.0.1")
    assert {p["name"]: p["enters"] for p in points} == {"a": 2, "b": 0}
    status = await api.get_status("127.0.0.1")
    assert status["seq"] == 2 and set(status) >= {"version", "seq", "subscribers", "dropped", "shards"}
    await api.disable_all_injections("127.0.0.1")
    assert (server.requests[-1].method, server.requests[-1].raw_path) == ("DELETE", f"{API}/injection")
    assert await api.get_enabled_injections("127.0.0.1") == []


async def test_message_injection_posts_to_message(server, api):
    await api.enable_injection("127.0.0.1", "h", one_shot=False)
    await api.message_injection("127.0.0.1", "h")
    req = server.requests[-1]
    assert (req.method, req.raw_path, req.body) == ("POST", f"{API}/injection/h/message", "")
    assert server.injections["h"]["messages"] == 1


async def test_error_answer_raises_http_error_with_status_message_and_url(server, api):
    server.fail_next = (400, "one_shot must be true or false")
    with pytest.raises(HTTPError) as info:
        await api.enable_injection("127.0.0.1", "x", one_shot=True)
    err = info.value
    assert err.status == 400 and err.code == 400 and err.error_code == 400
    assert err.error_message == "one_shot must be true or false"
    # message is the body as received, as in ScyllaDB's test/pylib HTTPError
    assert json.loads(err.message) == {"message": "one_shot must be true or false", "code": 400}
    assert err.body == err.message
    assert err.url.startswith(f"http://127.0.0.1:{server.port}{API}/injection/x")
    assert err.uri == err.url and err.method == "POST"
    assert err.params == {"one_shot": "True"} and err.json == {}
    assert "400" in str(err) and "one_shot must be" in str(err)


def test_http_error_is_built_with_scylladbs_positional_arguments():
    """ScyllaDB's client raises HTTPError(uri, code, params, json, text): a conftest that binds
    test.pylib.rest_client.HTTPError to errinj's class keeps that call working."""
    err = HTTPError("http://127.0.0.1:10000/x", 500, {"a": "1"}, {"k": "v"}, "plain text body")
    assert (err.uri, err.code, err.params, err.json, err.message) == \
        ("http://127.0.0.1:10000/x", 500, {"a": "1"}, {"k": "v"}, "plain text body")
    assert err.error_message == "plain text body" and err.error_code is None
    assert err.args == ("plain text body",)
    assert str(err).startswith("HTTP error 500")


def test_http_error_is_still_built_with_errinj_0_1s_arguments():
    err = HTTPError("http://h:1/p", 400, "bad term", method="POST", json={"k": "v"})
    assert (err.code, err.error_message, err.message, err.params, err.json, err.method) == \
        (400, "bad term", "bad term", None, {"k": "v"}, "POST")
    raw = '{"message": "bad term", "code": 400}'
    err = HTTPError("http://h:1/p", 400, "bad term", body=raw, error_code=400)
    assert (err.error_message, err.message, err.body, err.error_code) == ("bad term", raw, raw, 400)


async def test_unknown_path_and_non_json_error_bodies(server, api):
    with pytest.raises(HTTPError) as info:
        await api._request("GET", "127.0.0.1", "/nope")
    assert info.value.status == 404 and info.value.error_message == "no such path /nope"


async def test_token_is_sent_as_bearer_and_a_wrong_one_gives_401(make_server):
    server = await make_server(token="s3cret")
    async with RESTClient(port=server.port, token="s3cret") as good:
        await good.enable_injection("127.0.0.1", "x", one_shot=False)
        assert server.requests[-1].headers["Authorization"] == "Bearer s3cret"
    async with RESTClient(port=server.port) as anonymous:
        with pytest.raises(HTTPError) as info:
            await anonymous.get_enabled_injections("127.0.0.1")
    assert info.value.status == 401 and info.value.error_message == "missing or wrong bearer token"


async def test_nodes_may_carry_their_port(server):
    async with RESTClient(port=1) as api:   # the default port is wrong; each call names the right one
        await api.enable_injection(("127.0.0.1", server.port), "a", one_shot=False)
        await api.enable_injection(f"127.0.0.1:{server.port}", "b", one_shot=False)
        await api.enable_injection(f"http://127.0.0.1:{server.port}", "c", one_shot=False)
    assert sorted(server.injections) == ["a", "b", "c"]


async def test_a_closed_client_can_be_used_again(server, api):
    await api.get_enabled_injections("127.0.0.1")
    await api.close()
    assert await api.get_enabled_injections("127.0.0.1") == []


# -- context managers -----------------------------------------------------------------------

async def test_inject_error_enables_then_disables_even_on_error(server, api):
    with pytest.raises(RuntimeError):
        async with inject_error(api, "127.0.0.1", "ctx", {"k": 1}) as handler:
            assert server.injections["ctx"] == {"enters": 0, "waiters": 0, "messages": 0,
                                                "one_shot": False, "parameters": {"k": "1"}}
            await handler.message()
            assert server.injections["ctx"]["messages"] == 1
            raise RuntimeError("body failed")
    assert "ctx" not in server.injections
    assert server.requests[-1].method == "DELETE"


async def test_inject_error_one_shot_awaited_as_in_scylladb(server, api):
    handler = await inject_error_one_shot(api, "127.0.0.1", "once", {"p": "q"})
    assert server.injections["once"]["one_shot"] is True
    assert handler.injection == "once" and await handler.enters() == 0


async def test_inject_error_one_shot_as_a_context_manager(server, api):
    async with inject_error_one_shot(api, "127.0.0.1", "once") as handler:
        assert server.injections["once"]["one_shot"] is True
        assert await handler.waiters() == 0
    assert "once" not in server.injections


# -- wait_for_injection_enter -----------------------------------------------------------------

async def test_wait_for_injection_enter_returns_at_once_when_the_count_is_reached(server, api):
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    server.fire("e")
    server.fire("e")
    assert await api.wait_for_injection_enter("127.0.0.1", "e", threshold=2, timeout=5) == 2


async def test_wait_for_injection_enter_waits_on_the_stream_not_by_polling(server, api):
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    server.fire("e")
    waiting = asyncio.create_task(api.wait_for_injection_enter("127.0.0.1", "e", threshold=3, timeout=10))
    await server.wait_until(lambda: len(server.requests_to("/enters")) == 1)
    assert not waiting.done()
    server.fire("other")
    server.fire("e")
    server.fire("e")
    assert await asyncio.wait_for(waiting, 10) == 3
    paths = [r.raw_path.rsplit("/", 1)[-1] for r in server.requests]
    # The stream was subscribed (filtered to the injection) before the one and only count read.
    assert paths.index("events") < paths.index("enters") and paths.count("enters") == 1
    assert server.requests_to("/events")[0].query == [("injection", "e")]


async def test_wait_for_injection_enter_takes_scylladbs_absolute_deadline(server, api):
    """ScyllaDB's helpers pass time.time() + N positionally (and as deadline=) and expect an
    AssertionError on timeout."""
    import time
    from errinj import InjectionTimeout
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    t0 = time.monotonic()
    with pytest.raises(AssertionError):
        await api.wait_for_injection_enter("127.0.0.1", "e", 1, time.time() + 0.2)
    with pytest.raises(InjectionTimeout):
        await api.wait_for_injection_enter("127.0.0.1", "e", threshold=1, deadline=time.time() + 0.2)
    assert time.monotonic() - t0 < 10, "the deadline was taken as a timeout in seconds"
    assert issubclass(InjectionTimeout, TimeoutError) and issubclass(InjectionTimeout, AssertionError)


async def test_wait_for_injection_enter_times_out(server, api):
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    with pytest.raises(asyncio.TimeoutError, match="fired 0 time.*waited for 1"):
        await api.wait_for_injection_enter("127.0.0.1", "e", timeout=0.1)


async def test_wait_for_injection_enter_with_a_deadline_already_gone_reads_the_count_once(server, api):
    import time
    from errinj import InjectionTimeout
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    with pytest.raises(InjectionTimeout, match="fired 0 time"):
        await api.wait_for_injection_enter("127.0.0.1", "e", 1, time.time() - 5)
    server.fire("e")
    assert await api.wait_for_injection_enter("127.0.0.1", "e", 1, time.time() - 5) == 1
    assert not server.requests_to("/events"), "no stream is opened when no time is left"


async def test_wait_for_injection_enter_whose_stream_does_not_open_in_time_is_a_timeout(server, api):
    from errinj import InjectionTimeout
    server.hold_connected = asyncio.Event()   # the server never says ': connected'
    await api.enable_injection("127.0.0.1", "e", one_shot=False)
    with pytest.raises(InjectionTimeout, match="did not open its event stream"):
        await api.wait_for_injection_enter("127.0.0.1", "e", timeout=0.3)
    server.hold_connected.set()
