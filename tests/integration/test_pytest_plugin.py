"""errinj's pytest plugin on a made-up suite run against a real kvnode (pytester): the per-test
UnreachedInjectionWarning, --errinj-strict, and the end-of-session summary of never-armed and
armed-but-never-reached points, also in the JUnit XML report's properties."""
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "kvnode"))

from kvfixtures import kvnode, kvnodes  # noqa: E402,F401  (fixtures)

SUITE = '''
import asyncio
import os

NODE = ("127.0.0.1", int(os.environ["KV_API_PORT"]))
DATA = int(os.environ["KV_DATA_PORT"])


async def request(line):
    reader, writer = await asyncio.open_connection("127.0.0.1", DATA)
    writer.write(line.encode() + b"\\n")
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    return reply.decode().strip()


async def test_reaches_the_point(errinj_api):
    api = errinj_api()
    await api.enable_injection(NODE, "kv_get_delay", one_shot=False, parameters={"duration_ms": 1})
    assert await request("GET a") == "NOTFOUND"
    await api.disable_injection(NODE, "kv_get_delay")


async def test_arms_a_fault_nothing_hits(errinj_api):
    api = errinj_api()
    await api.enable_injection(NODE, "kv_put_fail", one_shot=True)
    assert await request("GET b") == "NOTFOUND"   # a GET never reaches the PUT's point
    await api.disable_injection(NODE, "kv_put_fail")
'''


def run_suite(pytester, monkeypatch, kvnode, *args):
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_suite=SUITE)
    env = {"KV_API_PORT": str(kvnode.api_port), "KV_DATA_PORT": str(kvnode.port),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "python")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return pytester.runpytest_subprocess("-p", "errinj.pytest_plugin", "-p", "no:cacheprovider", *args)


async def test_unreached_injection_warns_and_the_summary_names_the_points(pytester, monkeypatch, kvnode):
    xml_path = pytester.path / "report.xml"
    result = run_suite(pytester, monkeypatch, kvnode, f"--junitxml={xml_path}")
    result.assert_outcomes(passed=2, warnings=1)
    out = result.stdout.str()
    assert "UnreachedInjectionWarning: injection(s) enabled by this test but never reached: kv_put_fail" in out
    assert "test_arms_a_fault_nothing_hits" in out.split("warnings summary")[1].split("errinj coverage")[0]
    summary = out.split("errinj coverage")[1]
    armed_part, reached_part = summary.split("points armed but never reached")
    for point in ("kv_accept", "kv_flush", "kv_put_before_apply"):
        assert f"  {point} (" in armed_part, summary
    assert "kv_get_delay" not in summary and "kv_put_fail" not in armed_part
    assert "  kv_put_fail (" in reached_part and "store.c:" in reached_part
    props = {p.get("name"): p.get("value") for p in ET.parse(xml_path).getroot().iter("property")}
    assert "kv_put_fail (" in props["errinj_never_reached"]
    assert "kv_accept (" in props["errinj_never_armed"] and "kv_get_delay" not in props["errinj_never_armed"]


async def test_strict_makes_an_unreached_injection_a_failure(pytester, monkeypatch, kvnode):
    result = run_suite(pytester, monkeypatch, kvnode, "--errinj-strict")
    result.assert_outcomes(passed=2, errors=1)
    assert "never reached: kv_put_fail" in result.stdout.str()
