"""The dashboard in a real browser: Debian's headless chromium, driven by npm playwright-core
(tests/integration/node/dashboard.mjs), against real kvnode processes.

- the page's own HTTP answers (Content-Type, Content-Security-Policy, ETag, HEAD, no token needed);
- enable from the page, make kvnode fire, see the event row and the timeline mark, see an error in
  the server's words, disable, see the catalogue follow; a screenshot under the build directory;
- the same with a token: the page asks for it, sends it as a header, and no URL carries it;
- a few seconds at 1,000 events a second: the DOM, the kept events and the timeline stay bounded.
  (The one-minute run with frame times and heap is bench/run.py's "dashboard" piece.)
"""
import asyncio
import http.client
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "kvnode"))

from kvfixtures import DEADLINE, kvnodes  # noqa: E402,F401 (fixture)

NODE_DIR = ROOT / "tests" / "integration" / "node"
BUILD = Path(os.environ.get("ERRINJ_BUILD_DIR", ROOT / "build"))
SHOTS = BUILD / "dashboard"
UI = "/v2/error_injection/ui"


def node_or_fail():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: scripts/deps.sh installs nodejs")
    if not (NODE_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        pytest.fail("playwright-core is not installed in tests/integration/node: run scripts/deps.sh")
    if not Path(os.environ.get("ERRINJ_CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.fail("chromium is missing: scripts/deps.sh installs Debian's chromium")
    return node


async def drive(*args, timeout=240):
    """Runs dashboard.mjs; returns its JSON result, or fails with what it printed."""
    proc = await asyncio.create_subprocess_exec(node_or_fail(), str(NODE_DIR / "dashboard.mjs"), *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"dashboard.mjs {args[0]} did not finish in {timeout} s")
    if proc.returncode != 0:
        pytest.fail(f"dashboard.mjs {args[0]} exited {proc.returncode}:\n{err.decode()[-4000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def request(node, method, path, headers=None):
    conn = http.client.HTTPConnection(node.ip, node.api_port, timeout=DEADLINE)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


async def test_the_page_is_served_with_its_headers_and_without_the_token(kvnodes):
    node = await kvnodes(token="page-needs-no-token")
    status, headers, body = request(node, "GET", UI)
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["cache-control"] == "no-cache" and headers["etag"].startswith('"')
    assert headers["x-content-type-options"] == "nosniff"
    assert body == (ROOT / "web" / "index.html").read_bytes()
    # HEAD: the same headers, no body.
    hstatus, hheaders, hbody = request(node, "HEAD", UI)
    assert hstatus == 200 and hbody == b""
    assert hheaders["content-length"] == str(len(body)) and hheaders["etag"] == headers["etag"]
    # Revalidation.
    status, _, body = request(node, "GET", UI + "/app.js", {"If-None-Match": headers["etag"]})
    assert status == 200 and body == (ROOT / "web" / "app.js").read_bytes()
    _, js_headers, _ = request(node, "GET", UI + "/app.js")
    status, _, body = request(node, "GET", UI + "/app.js", {"If-None-Match": js_headers["etag"]})
    assert status == 304 and body == b""
    # The API itself still wants the token; a foreign Origin is refused for the page too.
    status, _, body = request(node, "GET", "/v2/error_injection/points")
    assert status == 401 and json.loads(body)["code"] == 401
    status, _, body = request(node, "GET", UI, {"Origin": "http://evil.example"})
    assert status == 403 and json.loads(body)["code"] == 403


async def test_enable_fire_see_and_disable_from_the_page(kvnodes):
    node = await kvnodes()
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    result = await drive("functional", "--api", f"{node.ip}:{node.api_port}", "--kv", f"{node.ip}:{node.port}",
                         "--screenshot", str(shot))
    assert result["event_row"][2] == "kv_put_fail" and result["event_row"][4] == "hit"
    assert "400" in result["error_shown"]
    assert shot.stat().st_size > 10000
    assert "Enable one in the catalogue" in result["first_screen"]


async def test_the_page_asks_for_the_token_and_never_puts_it_in_a_url(kvnodes):
    token = "tok-3f9a-never-in-a-url"
    node = await kvnodes(token=token)
    SHOTS.mkdir(parents=True, exist_ok=True)
    result = await drive("functional", "--api", f"{node.ip}:{node.api_port}", "--kv", f"{node.ip}:{node.port}",
                         "--token", token, "--screenshot", str(SHOTS / "dashboard-token.png"))
    assert result["asked_for_token"] is True
    assert result["requests_with_bearer"] > 5


async def test_the_page_stays_bounded_at_1000_events_a_second(kvnodes):
    node = await kvnodes()
    r = await drive("load", "--api", f"{node.ip}:{node.api_port}", "--kv", f"{node.ip}:{node.port}",
                    "--rate", "1000", "--seconds", os.environ.get("ERRINJ_DASHBOARD_SECONDS", "4"))
    assert r["received"] >= r["sent"] > 2000       # every hit reached the page
    assert 0 < r["rows"] <= 40                      # the table: only the rows its box shows
    assert r["kept"] <= 1250 and r["listed"] <= 1250  # events kept to re-filter: bounded
    assert r["buckets"] <= 300000 // 250 + 2        # the timeline: counts per 250 ms bucket
    assert r["marks"] > 0
    for s in r["samples"]:
        assert s["rows"] <= 40 and s["kept"] <= 1250
