"""Coverage: GET /v2/error_injection/coverage lists every compiled-in point and every name armed
since the last reset with how often it was armed, evaluated and fired (counted across enables);
DELETE resets the counters."""
from conftest import HOST_SITES, assert_error_json, rest


async def coverage(http, h):
    reply = await rest(http, "GET", h, "/coverage")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json", reply
    return reply.json()


def row(rows, name):
    found = [r for r in rows if r["name"] == name]
    assert len(found) == 1, (name, rows)
    return found[0]


async def test_every_compiled_point_is_listed_before_anything_is_armed(host, http):
    h = await host()
    rows = await coverage(http, h)
    assert {r["name"]: r["type"] for r in rows} == HOST_SITES
    for r in rows:
        assert set(r) == {"name", "type", "file", "line", "enabled", "armed", "evaluations", "enters"}
        assert r["file"].endswith("testhost.c") and r["line"] > 0
        assert (r["enabled"], r["armed"], r["evaluations"], r["enters"]) == (False, 0, 0, 0)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)


async def test_counts_armed_evaluations_and_enters_across_enables(host, http):
    h = await host()
    assert (await rest(http, "POST", h, "/injection/site_enter")).status == 200
    await h.ok("site enter 3")
    r = row(await coverage(http, h), "site_enter")
    assert (r["enabled"], r["armed"], r["evaluations"], r["enters"]) == (True, 1, 3, 3)
    # Enabling again (new parameters) and after a disable both count as armed; totals go on.
    assert (await rest(http, "POST", h, "/injection/site_enter", data='{"k":"v"}')).status == 200
    await h.ok("site enter")
    await rest(http, "DELETE", h, "/injection/site_enter")
    await h.ok("site enter 5")  # disabled: not evaluated
    assert (await rest(http, "POST", h, "/injection/site_enter")).status == 200
    await h.ok("site enter 2")
    r = row(await coverage(http, h), "site_enter")
    assert (r["armed"], r["evaluations"], r["enters"]) == (3, 6, 6)
    assert (await rest(http, "GET", h, "/injection/site_enter/enters")).json() == 2  # per enable, unchanged


async def test_a_term_that_skips_counts_evaluations_but_not_enters(host, http):
    h = await host()
    reply = await rest(http, "POST", h, "/injection/site_enter?term=2*off-%3E1*on")
    assert reply.status == 200, reply
    await h.ok("site enter 4")
    r = row(await coverage(http, h), "site_enter")
    assert (r["evaluations"], r["enters"]) == (3, 1), r  # the term ran out at the third


async def test_names_without_a_point_are_listed_once_armed_with_null_location(host, http):
    h = await host()
    assert "rt" not in {r["name"] for r in await coverage(http, h)}
    await rest(http, "POST", h, "/injection/rt")
    await h.fire("rt", "enter", 2)
    r = row(await coverage(http, h), "rt")
    assert (r["type"], r["file"], r["line"]) == (None, None, None)
    assert (r["enabled"], r["armed"], r["evaluations"], r["enters"]) == (True, 1, 2, 2)


async def test_delete_resets_the_counters(host, http):
    h = await host()
    await rest(http, "POST", h, "/injection/rt")
    await rest(http, "POST", h, "/injection/site_enter")
    await h.ok("site enter 2")
    reply = await rest(http, "DELETE", h, "/coverage")
    assert (reply.status, reply.body) == (200, b"")
    rows = await coverage(http, h)
    assert "rt" not in {r["name"] for r in rows}
    r = row(rows, "site_enter")
    assert (r["enabled"], r["armed"], r["evaluations"], r["enters"]) == (True, 0, 0, 0)
    await h.ok("site enter")
    r = row(await coverage(http, h), "site_enter")
    assert (r["evaluations"], r["enters"]) == (1, 1)
    assert (await rest(http, "GET", h, "/injection/site_enter/enters")).json() == 3  # REST counters untouched


async def test_other_methods_are_refused(host, http):
    h = await host()
    reply = await rest(http, "POST", h, "/coverage")
    assert_error_json(reply, 405)
    assert reply.headers["allow"] == "GET, HEAD, DELETE"
