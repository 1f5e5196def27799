"""Fault terms (errinj(3), Fault terms) over HTTP and the environment: fault terms and seeds through the REST API, the
event stream's action and eval fields, exact counts with racing threads in a real process, one
seed's pattern across two processes, pause, and abort reaching a stream before the process dies."""
import json
import signal
from urllib.parse import quote

from conftest import HOST_SEED, assert_error_json, open_stream, rest, snapshot, status_of
from test_server_options import run_host_expecting_failure


def term_query(term: str, **more) -> str:
    """The query string of an enable with a term, percent-encoded by hand (aiohttp would leave
    '>' and '*' alone, which a server must accept too, but the encoded form is what errinj(3) shows)."""
    query = "term=" + quote(term, safe="")
    for key, value in more.items():
        query += f"&{key}={value}"
    return query


async def enable_term(http, h, name, term, **more):
    reply = await rest(http, "POST", h, f"/injection/{name}?{term_query(term, **more)}")
    assert reply.status == 200 and reply.body == b"", (reply.status, reply.body)


async def hits(stream, count):
    return [item.json() for item in await stream.events(count)]


async def test_get_shows_the_term_and_seed_and_evaluations_count(host, http):
    h = await host()
    await enable_term(http, h, "t1", "2*off->1*on", seed="12345")
    assert (await rest(http, "GET", h, "/injection/t1")).json() == [
        {"enabled": True, "one_shot": False, "parameters": [], "term": "2*off->1*on", "seed": 12345}]
    assert [await h.fire("t1") for _ in range(3)] == [0, 0, 1]
    assert (await rest(http, "GET", h, "/injection/t1/evaluations")).json() == 3
    assert (await rest(http, "GET", h, "/injection/t1/enters")).json() == 1
    assert (await rest(http, "GET", h, "/injection/t1")).json() == [{"enabled": False}]
    # Without a seed, the process seed (the host's ERRINJ_SEED); a hex seed; the largest seed.
    await enable_term(http, h, "t2", "50%on")
    assert (await rest(http, "GET", h, "/injection/t2")).json()[0]["seed"] == int(HOST_SEED)
    assert (await status_of(http, h))["seed"] == int(HOST_SEED)
    await enable_term(http, h, "t3", "on", seed="0x10")
    assert (await rest(http, "GET", h, "/injection/t3")).json()[0]["seed"] == 16
    await enable_term(http, h, "t4", "on", seed="18446744073709551615")
    assert (await rest(http, "GET", h, "/injection/t4")).json()[0]["seed"] == "18446744073709551615"
    # An unencoded term works too.
    reply = await rest(http, "POST", h, "/injection/t5?term=1*return(-5)->off")
    assert reply.status == 200
    assert await h.fire("t5", "exception") == -5
    assert await h.fire("t5", "exception") == 0


async def test_bad_terms_and_seeds_are_400_and_change_nothing(host, http):
    h = await host()
    await enable_term(http, h, "keep", "3*on")
    assert await h.fire("keep") == 1
    before = await snapshot(http, h, ["keep", "never"])
    for query, words in (
        (term_query("3*on->0%off"), "bad term at offset 6: percentage must be more than 0"),
        (term_query("bogus"), "bad term at offset 0: unknown action"),
        (term_query(""), "bad term at offset 0: empty term"),
        (term_query("on->"), "must not end with ->"),
        (term_query("print"), "print is not an errinj action"),
        (term_query("3*on", one_shot="true"), "one_shot=true and a term do not go together"),
        (term_query("3*on", seed="-1"), "seed must be an unsigned 64-bit integer"),
        (term_query("3*on", seed="18446744073709551616"), "seed must be an unsigned 64-bit integer"),
        ("term=%zz", "term has a bad percent-encoding"),
    ):
        for name in ("keep", "never"):
            reply = await rest(http, "POST", h, f"/injection/{name}?{query}", data='{"k": "v"}')
            assert_error_json(reply, 400)
            message = reply.json()["message"]
            assert words in message, (query, message)
            if "bad term" in words:
                assert "[PCT%][COUNT*]action[(ARG)]" in message, message
    assert await snapshot(http, h, ["keep", "never"]) == before
    # The term kept counting its own evaluations through all of that.
    assert await h.fire("keep") == 1
    assert (await rest(http, "GET", h, "/injection/keep/evaluations")).json() == 2


async def test_count_is_exact_with_eight_racing_threads(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=race3&injection=skip2"))
    await enable_term(http, h, "race3", "3*on")
    assert await h.ok("burst 8 200 race3") == 3
    got = await hits(s, 3)
    assert sorted(e["eval"] for e in got) == [1, 2, 3], got
    assert all(e["action"] == "on" for e in got), got
    assert (await rest(http, "GET", h, "/injection/race3")).json() == [{"enabled": False}]

    await enable_term(http, h, "skip2", "2*off->1*on")
    assert await h.ok("burst 8 200 skip2") == 1
    (ev,) = await hits(s, 1)
    assert (ev["injection"], ev["eval"], ev["enters"], ev["action"]) == ("skip2", 3, 1, "on"), ev
    assert (await rest(http, "GET", h, "/injection/skip2/enters")).json() == 1


async def racing_pattern(host, http, streams, term, seed, total=1600):
    """The evaluations that fired in a fresh process with 8 threads racing."""
    h = await host()
    s = streams(await open_stream(h, "injection=pat"))
    await enable_term(http, h, "pat", term, seed=str(seed))
    fired = await h.ok(f"burst 8 {total // 8} pat")
    got = await hits(s, fired)
    assert (await rest(http, "GET", h, "/injection/pat/evaluations")).json() == total
    await h.quit()
    return sorted(e["eval"] for e in got)


async def test_one_seed_gives_one_pattern_in_two_processes_with_racing_threads(host, http, streams):
    for term in ("10%on", "25%40*return(3)->off"):
        first = await racing_pattern(host, http, streams, term, 99)
        second = await racing_pattern(host, http, streams, term, 99)
        other = await racing_pattern(host, http, streams, term, 100)
        assert first == second, term
        assert first != other, term
        assert 40 <= len(first) < 400, (term, len(first))


async def test_pause_parks_with_waiting_and_released_until_a_message(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=pz&phase=all"))
    await enable_term(http, h, "pz", "pause")
    wid = await h.start_wait("pz", 60000)  # the pause has no time limit; the point's timeout is unused
    hit, waiting = await hits(s, 2)
    assert (hit["phase"], hit["action"], hit["eval"]) == ("hit", "pause", 1), hit
    assert (waiting["phase"], waiting["action"]) == ("waiting", "pause"), waiting
    assert (await rest(http, "GET", h, "/injection/pz/waiters")).json() == 1
    assert not h.done_already(wid)
    await rest(http, "POST", h, "/injection/pz/message")
    (released,) = await hits(s, 1)
    assert (released["phase"], released["action"]) == ("released", "pause"), released
    assert await h.done(wid) == 0  # then as if not enabled


async def test_abort_reaches_the_stream_before_the_process_dies(host, http, streams):
    h = await host()
    s = streams(await open_stream(h, "injection=boom"))
    other = streams(await open_stream(h))
    await enable_term(http, h, "boom", "2*off->abort")
    # Not h.cmd(): the host dies in this command and never answers it.
    h.proc.stdin.write(b"fire enter boom 3\n")
    await h.proc.stdin.drain()
    assert await h.wait_exit() == -signal.SIGABRT
    # The process is gone; both streams still read the hit it published first.
    for stream in (s, other):
        ev = (await stream.next_event()).json()
        assert (ev["injection"], ev["phase"], ev["action"], ev["eval"], ev["enters"]) == \
            ("boom", "hit", "abort", 3, 1), ev
    h.returncode = 0  # it aborted as the term said (checked above): not a failure of the host


async def test_at_startup_and_failpoints_take_terms_and_seeds(host, http):
    at_startup = [{"name": "boot_term", "term": "1*off->1*return(-9)", "seed": 5},
                  {"name": "boot_big", "term": "on", "seed": "18446744073709551615"}]
    h = await host(extra_env={"ERRINJ_AT_STARTUP": json.dumps(at_startup),
                              "ERRINJ_FAILPOINTS": " fp_a = 3*on ; fp_b=50%return(-5);; "})
    assert sorted((await rest(http, "GET", h, "/injection")).json()) == ["boot_big", "boot_term", "fp_a", "fp_b"]
    assert (await rest(http, "GET", h, "/injection/boot_term")).json() == [
        {"enabled": True, "one_shot": False, "parameters": [], "term": "1*off->1*return(-9)", "seed": 5}]
    assert (await rest(http, "GET", h, "/injection/boot_big")).json()[0]["seed"] == "18446744073709551615"
    assert (await rest(http, "GET", h, "/injection/fp_a")).json()[0]["term"] == "3*on"
    assert (await rest(http, "GET", h, "/injection/fp_b")).json()[0]["term"] == "50%return(-5)"
    assert [await h.fire("boot_term", "exception") for _ in range(3)] == [0, -9, 0]
    assert [await h.fire("fp_a") for _ in range(4)] == [1, 1, 1, 0]


async def test_bad_terms_in_the_environment_enable_nothing_and_fail_init():
    cases = [
        {"ERRINJ_FAILPOINTS": "fine=on;bad=0*on"},
        {"ERRINJ_FAILPOINTS": "noequals"},
        {"ERRINJ_AT_STARTUP": json.dumps([{"name": "x", "term": "3*"}])},
        {"ERRINJ_AT_STARTUP": json.dumps([{"name": "x", "term": "on", "one_shot": True}])},
        {"ERRINJ_AT_STARTUP": json.dumps([{"name": "x", "seed": -1}])},
        {"ERRINJ_AT_STARTUP": json.dumps([{"name": "ok"}]), "ERRINJ_FAILPOINTS": "y=bogus"},
        {"ERRINJ_SEED": "not-a-number"},
    ]
    for env in cases:
        rc, out, err = await run_host_expecting_failure(extra_env=env)
        assert rc != 0 and "port" not in out, (env, rc, out, err)
        assert "ERRINJ_" in err, (env, err)


async def test_the_python_client_enables_terms_and_sees_action_and_eval(host):
    from errinj import HTTPError, RESTClient, injection_event_stream

    h = await host()
    api = RESTClient(port=h.port)
    try:
        async with injection_event_stream("127.0.0.1", port=h.port) as stream:
            await api.enable_injection("127.0.0.1", "py", term="1*off->1*return(-4)", seed=11)
            state = await api.get_injection("127.0.0.1", "py")
            assert (state[0]["term"], state[0]["seed"]) == ("1*off->1*return(-4)", 11), state
            assert [await h.fire("py", "exception") for _ in range(3)] == [0, -4, 0]
            ev = await stream.wait_for_injection("py", timeout=20)
            assert (ev["action"], ev["eval"], ev["enters"]) == ("return", 2, 1), ev
        try:
            await api.enable_injection("127.0.0.1", "py", term="2**on")
        except HTTPError as e:
            assert e.status == 400 and "offset 2" in e.message, e.message
        else:
            raise AssertionError("a bad term was accepted")
    finally:
        await api.close()
