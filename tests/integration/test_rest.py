"""errinj-events(7), ENDPOINTS: every REST endpoint, with exact paths, query values, bodies, status codes
and JSON, against a real test host."""
import json
import re

from conftest import (HOST_SITES, Reply, assert_error_json, host_site_lines, open_stream, poll_until,
                      project_version, rest, status_of)


def assert_empty_200(reply: Reply):
    assert reply.status == 200, f"{reply.status}: {reply.body[:300]!r}"
    assert reply.body == b"", f"expected an empty body, got {reply.body[:300]!r}"


# ---- POST/GET/DELETE /injection/{name} --------------------------------------------------------

async def test_get_unknown_injection_reports_disabled(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/injection/never_enabled")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == [{"enabled": False}]


async def test_enable_without_body_returns_empty_200_and_get_shows_scylla_shape(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/alpha"))
    reply = await rest(http, "GET", h, "/injection/alpha")
    assert reply.status == 200
    assert reply.json() == [{"enabled": True, "one_shot": False, "parameters": [], "term": "on", "seed": 7}]


async def test_enable_with_parameters_lists_them_as_key_value_pairs(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/alpha", data=json.dumps({"k": "v"})))
    reply = await rest(http, "GET", h, "/injection/alpha")
    assert reply.json() == [{"enabled": True, "one_shot": False, "parameters": [{"key": "k", "value": "v"}],
                             "term": "on", "seed": 7}]


async def test_enable_with_null_body_has_no_parameters(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/alpha", data="null"))
    assert (await rest(http, "GET", h, "/injection/alpha")).json() == [
        {"enabled": True, "one_shot": False, "parameters": [], "term": "on", "seed": 7}]


async def test_enable_stringifies_non_string_parameter_values(host, http):
    h = await host()
    body = '{"n": 5, "t": true, "f": false, "x": 1.5, "o": {"a": 1}, "l": [1, "b"], "z": null, "s": "str"}'
    assert_empty_200(await rest(http, "POST", h, "/injection/typed", data=body))
    got = (await rest(http, "GET", h, "/injection/typed")).json()[0]["parameters"]
    values = {p["key"]: p["value"] for p in got}
    assert all(isinstance(v, str) for v in values.values()), got
    assert values == {"n": "5", "t": "true", "f": "false", "x": "1.5", "o": '{"a":1}', "l": '[1,"b"]',
                      "z": "null", "s": "str"}


async def test_enable_one_shot_query_is_case_insensitive(host, http):
    h = await host()
    for value, expected in (("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)):
        name = f"os_{value}"
        assert_empty_200(await rest(http, "POST", h, f"/injection/{name}", params={"one_shot": value}))
        assert (await rest(http, "GET", h, f"/injection/{name}")).json()[0]["one_shot"] is expected, value


async def test_reenable_replaces_parameters_and_one_shot_but_keeps_enters(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/re", data='{"a": "1"}')
    await h.fire("re", "enter", 3)
    assert_empty_200(await rest(http, "POST", h, "/injection/re", params={"one_shot": "true"}, data='{"b": "2"}'))
    assert (await rest(http, "GET", h, "/injection/re")).json() == [
        {"enabled": True, "one_shot": True, "parameters": [{"key": "b", "value": "2"}], "term": "1*on", "seed": 7}]
    assert (await rest(http, "GET", h, "/injection/re/enters")).json() == 3


async def test_delete_disables_and_returns_empty_200(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/alpha")
    assert_empty_200(await rest(http, "DELETE", h, "/injection/alpha"))
    assert (await rest(http, "GET", h, "/injection/alpha")).json() == [{"enabled": False}]
    assert await h.fire("alpha", "enter") == 0, "a disabled point must not fire"


async def test_delete_unknown_name_returns_empty_200(host, http):
    h = await host()
    assert_empty_200(await rest(http, "DELETE", h, "/injection/nobody_knows_me"))


async def test_percent_encoded_name_is_decoded_and_slash_stays_in_name(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/a%2Fb%20c%C3%A9"))
    assert (await rest(http, "GET", h, "/injection")).json() == ["a/b cé"]
    assert (await rest(http, "GET", h, "/injection/a%2Fb%20c%C3%A9")).json()[0]["enabled"] is True


async def test_name_of_255_bytes_is_accepted(host, http):
    h = await host()
    name = "n" * 255
    assert_empty_200(await rest(http, "POST", h, f"/injection/{name}"))
    assert (await rest(http, "GET", h, "/injection")).json() == [name]


async def test_parameter_body_of_exactly_1_mib_is_accepted(host, http):
    h = await host()
    prefix, suffix = '{"big":"', '"}'
    body = prefix + "x" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body.encode()) == 1024 * 1024
    assert_empty_200(await rest(http, "POST", h, "/injection/big", data=body))
    params = (await rest(http, "GET", h, "/injection/big")).json()[0]["parameters"]
    assert len(params) == 1 and params[0]["key"] == "big" and len(params[0]["value"]) == 1024 * 1024 - 10


async def test_parameter_body_of_1_mib_plus_1_is_413(host, http):
    h = await host()
    prefix, suffix = '{"big":"', '"}'
    body = prefix + "x" * (1024 * 1024 + 1 - len(prefix) - len(suffix)) + suffix
    assert len(body.encode()) == 1024 * 1024 + 1
    assert_error_json(await rest(http, "POST", h, "/injection/big", data=body), 413)
    assert (await rest(http, "GET", h, "/injection/big")).json() == [{"enabled": False}]


# ---- message, enters, waiters -------------------------------------------------------------------

async def test_message_returns_empty_200_and_releases_a_parked_handler(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/parked")
    wid = await h.start_wait("parked", 60000)
    async def one_waiter():
        return (await rest(http, "GET", h, "/injection/parked/waiters")).json() == 1
    await poll_until(one_waiter, "waiters == 1")
    assert_empty_200(await rest(http, "POST", h, "/injection/parked/message"))
    assert await h.done(wid) == 0


async def test_message_to_unknown_name_returns_empty_200(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/nobody/message"))


async def test_enters_is_a_bare_integer_counting_fires(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/injection/counted/enters")
    assert reply.status == 200 and reply.body == b"0", reply
    await rest(http, "POST", h, "/injection/counted")
    await h.fire("counted", "enter", 4)
    reply = await rest(http, "GET", h, "/injection/counted/enters")
    assert reply.status == 200 and reply.body == b"4", reply
    assert reply.headers["content-type"].startswith("application/json")


async def test_enters_of_a_fired_one_shot_stays_1(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/once", params={"one_shot": "true"})
    assert await h.fire("once", "enter", 3) == 0, "the last of three fires of a one-shot returns false"
    assert (await rest(http, "GET", h, "/injection/once/enters")).body == b"1"
    assert (await rest(http, "GET", h, "/injection")).json() == []


async def test_waiters_is_a_bare_integer_counting_parked_threads(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/injection/w/waiters")
    assert reply.status == 200 and reply.body == b"0", reply
    await rest(http, "POST", h, "/injection/w")
    ids = [await h.start_wait("w", 60000) for _ in range(2)]

    async def two():
        r = await rest(http, "GET", h, "/injection/w/waiters")
        return r.body == b"2"
    await poll_until(two, "waiters == 2")
    assert_empty_200(await rest(http, "DELETE", h, "/injection/w"))
    assert [await h.done(i) for i in ids] == [0, 0]
    assert (await rest(http, "GET", h, "/injection/w/waiters")).body == b"0"


# ---- the collection: list, delete all ------------------------------------------------------------

async def test_list_returns_enabled_names(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/injection")
    assert reply.status == 200 and reply.json() == []
    for name in ("b_two", "a_one", "c_three"):
        await rest(http, "POST", h, f"/injection/{name}")
    await rest(http, "DELETE", h, "/injection/c_three")
    assert sorted((await rest(http, "GET", h, "/injection")).json()) == ["a_one", "b_two"]


async def test_delete_all_disables_everything_and_returns_empty_200(host, http):
    h = await host()
    for name in ("a", "b", "c"):
        await rest(http, "POST", h, f"/injection/{name}")
    wid = await h.start_wait("a", 60000)
    await poll_until(lambda: h.ok("waiters a"), "a parked thread")
    assert_empty_200(await rest(http, "DELETE", h, "/injection"))
    assert (await rest(http, "GET", h, "/injection")).json() == []
    assert await h.done(wid) == 0, "disabling releases parked threads with 0"


# ---- points and status ------------------------------------------------------------------------

async def test_points_lists_compiled_sites_before_they_ever_ran(host, http):
    h = await host()
    reply = await rest(http, "GET", h, "/points")
    assert reply.status == 200
    points = reply.json()
    lines = host_site_lines()
    by_name = {p["name"]: p for p in points}
    for name, type_ in HOST_SITES.items():
        assert name in by_name, f"{name} missing from {sorted(by_name)}"
        p = by_name[name]
        assert set(p) == {"name", "type", "file", "line", "enabled", "enters", "evaluations", "waiters"}, p
        assert p["type"] == type_, p
        assert p["file"].endswith("tests/host/testhost.c"), p
        assert p["line"] == lines[name], (p, lines[name])
        assert p["enabled"] is False and p["enters"] == 0 and p["evaluations"] == 0 and p["waiters"] == 0, p


async def test_points_show_enabled_state_and_enters_of_a_site(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/site_enter")
    assert await h.ok("site enter 2") == 1
    by_name = {p["name"]: p for p in (await rest(http, "GET", h, "/points")).json()}
    assert by_name["site_enter"]["enabled"] is True and by_name["site_enter"]["enters"] == 2
    assert by_name["site_sleep"]["enabled"] is False


async def test_status_reports_version_seq_subscribers_dropped_shards(host, http):
    h = await host()
    st = await status_of(http, h)
    assert set(st) == {"version", "seq", "subscribers", "dropped", "shards", "instance", "seed"}, st
    assert st["seed"] == 7, st  # the process seed: ERRINJ_SEED of the test host
    assert re.fullmatch(r"[0-9a-f]{16}", st["instance"]), st
    assert st["version"] == project_version(), st
    assert st["seq"] == 0 and st["subscribers"] == 0 and st["dropped"] == 0 and st["shards"] == 1, st
    await rest(http, "POST", h, "/injection/s")
    await h.ok("shard 3")
    await h.fire("s", "enter", 5)
    st = await status_of(http, h)
    assert st["seq"] == 5 and st["shards"] == 4 and st["dropped"] == 0, st


async def test_status_counts_open_subscribers(host, http, streams):
    h = await host()
    track = streams
    track(await open_stream(h))
    track(await open_stream(h))
    assert (await status_of(http, h))["subscribers"] == 2


# ---- errors: 404 and 405 and 400 ----------------------------------------------------------------

async def test_unknown_paths_are_404_json(host, http):
    h = await host()
    for path in ("/nope", "/injection/x/bogus", "/injection/x/message/extra"):
        assert_error_json(await rest(http, "GET", h, path), 404)
    async with http.get(h.base + "/") as resp:
        assert resp.status == 404
    async with http.get(h.base + "/v2/other") as resp:
        assert resp.status == 404


async def test_wrong_methods_are_405_json(host, http):
    h = await host()
    cases = [("PUT", "/injection/x"), ("PATCH", "/injection/x"), ("GET", "/injection/x/message"),
             ("POST", "/injection/x/enters"), ("DELETE", "/injection/x/waiters"), ("POST", "/injection"),
             ("POST", "/points"), ("DELETE", "/status"), ("POST", "/events")]
    for method, path in cases:
        reply = await rest(http, method, h, path)
        assert_error_json(reply, 405)


async def test_bad_one_shot_value_is_400(host, http):
    h = await host()
    assert_error_json(await rest(http, "POST", h, "/injection/x", params={"one_shot": "yes"}), 400)
    assert (await rest(http, "GET", h, "/injection/x")).json() == [{"enabled": False}]


async def test_malformed_json_body_is_400(host, http):
    h = await host()
    for body in ('{"k": ', "[1, 2]", '"str"', "42", "{'k': 'v'}"):
        assert_error_json(await rest(http, "POST", h, "/injection/x", data=body), 400)
    assert (await rest(http, "GET", h, "/injection/x")).json() == [{"enabled": False}]


async def test_bad_names_are_400(host, http):
    h = await host()
    bad = ["n" * 256, "\u00e9" * 128, "a%01b", "a%00b", "a%1Fb", "a%7Fb", "a%C2%80b", "a%C2%9Fb", "%ff%fe",
           "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%C3", "bad%zzescape", "bad%4", ""]
    for name in bad:
        path = "/injection/" + (name.encode().decode("latin-1") if "%" in name else
                                "".join(f"%{b:02X}" for b in name.encode()))
        assert_error_json(await rest(http, "POST", h, path), 400)
    assert (await rest(http, "GET", h, "/injection")).json() == []


async def test_multibyte_name_of_255_bytes_is_accepted(host, http):
    h = await host()
    name = "\u00e9" * 127 + "a"
    assert len(name.encode()) == 255
    path = "/injection/" + "".join(f"%{b:02X}" for b in name.encode())
    assert_empty_200(await rest(http, "POST", h, path))
    assert (await rest(http, "GET", h, "/injection")).json() == [name]


async def test_bodies_that_are_not_a_json_object_of_parameters_are_400(host, http):
    h = await host()
    bodies = [b'{"k": ', b"[1, 2]", b'"str"', b"42", b"true", b"{'k': 'v'}", b'{"k": "v"} trailing',
              b'{"k": "\xff\xfe"}', b'{"k": "a\\u0000b"}', b'{"a\\u0000b": "v"}', b"k=v"]
    for body in bodies:
        assert_error_json(await rest(http, "POST", h, "/injection/x", data=body), 400)
    assert (await rest(http, "GET", h, "/injection/x")).json() == [{"enabled": False}]


async def test_whitespace_only_body_means_no_parameters(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/ws", data=" \r\n\t "))
    assert (await rest(http, "GET", h, "/injection/ws")).json()[0]["parameters"] == []


async def test_json_content_type_body_as_aiohttp_json_sends_it(host, http):
    h = await host()
    url = h.url("/injection/j")
    async with http.post(url, json={"k": "v", "n": 1}) as resp:
        assert resp.status == 200 and await resp.read() == b""
    got = (await rest(http, "GET", h, "/injection/j")).json()[0]["parameters"]
    assert sorted((p["key"], p["value"]) for p in got) == [("k", "v"), ("n", "1")]


async def test_chunked_request_body_counts_against_the_1_mib_limit(host, http):
    h = await host()

    def body(total):
        async def gen():
            yield b'{"k":"'
            left = total - 8
            while left > 0:
                n = min(left, 65536)
                yield b"c" * n
                left -= n
            yield b'"}'
        return gen()
    assert_empty_200(await rest(http, "POST", h, "/injection/chunked", data=body(1024 * 1024)))
    assert_error_json(await rest(http, "POST", h, "/injection/other", data=body(1024 * 1024 + 1)), 413)
    assert (await rest(http, "GET", h, "/injection")).json() == ["chunked"]


# ---- one-shot handlers through the API (ScyllaDB's "ongoing one-shot") ------------------------------

async def test_message_reaches_a_parked_one_shot_handler_that_left_the_list(host, http):
    h = await host()
    assert_empty_200(await rest(http, "POST", h, "/injection/os", params={"one_shot": "true"}))
    first = await h.start_wait("os", 60000)
    await poll_until(lambda: h.ok("waiters os"), "the one-shot handler parked")
    second = await h.start_wait("os", 60000)
    assert await h.done(second) == 0, "a one-shot fires once: the second call does not park"
    assert (await rest(http, "GET", h, "/injection")).json() == []
    assert (await rest(http, "GET", h, "/injection/os/enters")).json() == 1
    assert (await rest(http, "GET", h, "/injection/os/waiters")).json() == 1
    assert_empty_200(await rest(http, "POST", h, "/injection/os/message"))
    assert await h.done(first) == 0


async def test_delete_releases_a_parked_one_shot_handler(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/os", params={"one_shot": "true"})
    wid = await h.start_wait("os", 60000)
    await poll_until(lambda: h.ok("waiters os"), "the one-shot handler parked")
    assert_empty_200(await rest(http, "DELETE", h, "/injection/os"))
    assert await h.done(wid) == 0
