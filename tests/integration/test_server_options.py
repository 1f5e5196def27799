"""errinj(3), Server: the server's options as the test host passes them (listen address,
allow_remote, one server per address) and ERRINJ_AT_STARTUP read by errinj_init_from_env()."""
import json
import socket

import pytest

from conftest import open_stream, rest, run_host_expecting_failure


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_non_loopback_listen_address_is_refused_without_allow_remote():
    rc, out, err = await run_host_expecting_failure("--listen", "0.0.0.0:0")
    assert rc != 0 and "port" not in out, (rc, out, err)
    assert "non-loopback listen address refused" in err, err


async def test_allow_remote_listens_on_a_non_loopback_address(host, http):
    h = await host(listen="0.0.0.0:0", allow_remote=True)
    reply = await rest(http, "GET", h, "/status")
    assert reply.status == 200


async def test_ipv6_loopback_listen_address_serves_rest_and_events(host, http):
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback here")
    h = await host(listen="[::1]:0")
    async with http.get(f"http://[::1]:{h.port}/v2/error_injection/status") as resp:
        assert resp.status == 200
    s = await open_stream(h, address="::1")   # 200, then ': connected'
    await s.aclose()


async def test_localhost_name_is_a_loopback_listen_address(host, http):
    h = await host(listen="localhost:0")
    reply = await rest(http, "GET", h, "/status")
    assert reply.status == 200


async def test_port_in_use_fails_to_start(host):
    first = await host(listen="127.0.0.1:0")
    rc, out, err = await run_host_expecting_failure("--listen", f"127.0.0.1:{first.port}")
    assert rc != 0 and "port" not in out, (rc, out, err)
    assert "address already in use" in err, err


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:", "[::1:0", "127.0.0.1:12ab"])
async def test_malformed_listen_address_fails_to_start(listen):
    rc, out, err = await run_host_expecting_failure("--listen", listen)
    assert rc != 0 and "port" not in out, (rc, out, err)


async def test_at_startup_enables_injections_before_the_first_point(host, http, streams):
    at_startup = [{"name": "boot_once", "one_shot": True, "parameters": {"k": "v", "n": 2}},
                  {"name": "site_enter"}]
    h = await host(extra_env={"ERRINJ_AT_STARTUP": json.dumps(at_startup)})
    assert sorted((await rest(http, "GET", h, "/injection")).json()) == ["boot_once", "site_enter"]
    assert (await rest(http, "GET", h, "/injection/boot_once")).json() == [
        {"enabled": True, "one_shot": True,
         "parameters": [{"key": "k", "value": "v"}, {"key": "n", "value": "2"}], "term": "1*on", "seed": 7}]
    s = streams(await open_stream(h))
    assert await h.ok("site enter") == 1, "the compiled-in site fires: enabled before it first ran"
    ev = (await s.next_event()).json()
    assert (ev["injection"], ev["seq"]) == ("site_enter", 1), ev


async def test_malformed_at_startup_enables_nothing_and_fails_init():
    bad = json.dumps([{"name": "fine"}, {"name": "x", "one_shot": "yes"}])
    rc, out, err = await run_host_expecting_failure(extra_env={"ERRINJ_AT_STARTUP": bad})
    assert rc != 0 and "port" not in out, (rc, out, err)
    assert "ERRINJ_AT_STARTUP" in err, err
