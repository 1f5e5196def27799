"""test_multinode.py - errinjctl with --url given more than once, against three real kvnodes.

events, wait, list, coverage, enable, disable and message act on every node; each output line is
tagged with its node ([HOST:PORT] line, or "node" as the first member of a JSON line); wait --all
returns once every node saw the event; a node that goes down is reported and the others go on
(exit 3 only when every node is down, or with --strict). One kvnode is killed mid-stream.

Run by CTest with ERRINJCTL and ERRINJ_KVNODE set to the built binaries. Nothing sleeps to
synchronise: the tests wait for lines with deadlines, and streams start from --since 0 on fresh
nodes, so no hit can be missed whenever a stream connects.
"""

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "pylib"))
from kvdriver import SyncKVNode  # noqa: E402 (the kvnode driver, shared with tests/integration)
from lines import LineReader  # noqa: E402 (shared with test_errinjctl.py)

ERRINJCTL = os.environ.get("ERRINJCTL", "")
KVNODE = os.environ.get("ERRINJ_KVNODE", "")
DEADLINE = 20


def setup_module(module):
    for var, path in (("ERRINJCTL", ERRINJCTL), ("ERRINJ_KVNODE", KVNODE)):
        if not path or not os.access(path, os.X_OK):
            pytest.fail(f"set {var} to the built binary (got {path!r})")


class Node(SyncKVNode):
    """A kvnode (tests/pylib/kvdriver.py) with two shards, and the calls these tests make to it."""

    def __init__(self, tmp_path, i):
        super().__init__(tmp_path, f"node{i}", shards=2)
        self.kv = (self.ip, self.port)

    def put(self, key):
        with socket.create_connection(self.kv, timeout=DEADLINE) as s:
            s.sendall(f"PUT {key} v\n".encode())
            return s.makefile().readline().strip()

    def enabled(self):
        with urllib.request.urlopen(self.url + "/v2/error_injection/injection", timeout=DEADLINE) as r:
            return json.loads(r.read())


@pytest.fixture
def nodes(tmp_path):
    started = [Node(tmp_path, i) for i in range(3)]
    yield started
    for n in started:
        if n.proc.poll() is None:   # not killed by the test: it must exit 0 on SIGTERM
            assert n.stop() == 0


def urls(nodes):
    out = []
    for n in nodes:
        out += ["--url", n.url]
    return out


def ctl(*args, timeout=DEADLINE):
    return subprocess.run([ERRINJCTL, *args], capture_output=True, text=True, timeout=timeout)


class Lines:
    """A running errinjctl whose stdout and stderr lines a test waits for, with deadlines."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([ERRINJCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = LineReader(self.proc.stdout), LineReader(self.proc.stderr)

    def next_out(self):
        line = self.out.next(DEADLINE)
        if line is None:
            pytest.fail("errinjctl ended its output; stderr: " + " | ".join(self.err.seen))
        return line

    def wait_err(self, pattern):
        return self.err.expect(pattern, DEADLINE).string

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_list_enable_disable_message_act_on_every_node_and_tag_each_line(nodes):
    r = ctl(*urls(nodes), "enable", "kv_put_fail", "-p", "k=v")
    assert r.returncode == 0, r.stderr
    assert all(n.enabled() == ["kv_put_fail"] for n in nodes)
    r = ctl(*urls(nodes), "list")
    assert r.returncode == 0, r.stderr
    # In --url order, each line tagged with its node.
    assert r.stdout.splitlines() == [f"[{n.label}] kv_put_fail" for n in nodes]
    assert ctl(*urls(nodes), "message", "kv_put_fail").returncode == 0
    r = ctl(*urls(nodes), "disable", "kv_put_fail")
    assert r.returncode == 0, r.stderr
    assert all(n.enabled() == [] for n in nodes)
    # disable's own --all (every injection) still means that, on every node.
    ctl(*urls(nodes), "enable", "kv_accept")
    assert ctl(*urls(nodes), "disable", "--all").returncode == 0
    assert all(n.enabled() == [] for n in nodes)


def test_one_node_down_is_reported_and_the_others_go_on(nodes):
    nodes[1].kill()
    r = ctl(*urls(nodes), "enable", "kv_put_fail")
    assert r.returncode == 0
    assert nodes[0].enabled() == ["kv_put_fail"] and nodes[2].enabled() == ["kv_put_fail"]
    assert f"[{nodes[1].label}] errinjctl: enable:" in r.stderr
    assert f"1 of 3 nodes failed: {nodes[1].label}" in r.stderr
    r = ctl(*urls(nodes), "list")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [f"[{nodes[0].label}] kv_put_fail", f"[{nodes[2].label}] kv_put_fail"]
    # --strict: any node down is a failure.
    assert ctl(*urls(nodes), "--strict", "list").returncode == 3
    # Every node down: 3.
    nodes[0].kill()
    nodes[2].kill()
    r = ctl(*urls(nodes), "list")
    assert r.returncode == 3 and "3 of 3 nodes failed" in r.stderr


def test_commands_for_one_node_refuse_several_urls(nodes):
    r = ctl(*urls(nodes), "enters", "kv_put_fail")
    assert r.returncode == 2 and "takes one --url" in r.stderr


def test_events_from_three_nodes_one_killed_mid_stream(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    with Lines(*urls(nodes), "events", "--json", "--since", "0") as ev:
        for i, n in enumerate(nodes):
            assert n.put(f"a{i}") == "ERR injected"
        got = {}
        for _ in nodes:
            raw = ev.next_out()
            assert raw.startswith('{"node":"')  # the node first, then the event as the server sent it
            e = json.loads(raw)
            got[e["node"]] = e
        assert set(got) == {n.label for n in nodes}
        assert all(e["injection"] == "kv_put_fail" and e["phase"] == "hit" for e in got.values())

        # Node 2 dies mid-stream: reported, and the other two streams go on.
        nodes[1].kill()
        ev.wait_err(re.escape(f"[{nodes[1].label}] errinjctl: events:"))
        assert nodes[0].put("b0") == "ERR injected" and nodes[2].put("b2") == "ERR injected"
        later = {json.loads(ev.next_out())["node"] for _ in range(2)}
        assert later == {nodes[0].label, nodes[2].label}
        assert ev.proc.poll() is None

        # All down: exit 3.
        nodes[0].kill()
        nodes[2].kill()
        assert ev.proc.wait(timeout=DEADLINE) == 3
        ev.wait_err("3 of 3 nodes failed")


def test_text_lines_are_prefixed_with_the_node(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    assert nodes[2].put("t") == "ERR injected"
    r = ctl(*urls(nodes), "wait", "kv_put_fail", "--since", "0", "--timeout", str(DEADLINE))
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[0]
    assert line.startswith(f"[{nodes[2].label}] ") and "kv_put_fail" in line


def test_wait_all_returns_when_every_node_saw_the_event(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    with Lines(*urls(nodes), "wait", "kv_put_fail", "--all", "--json", "--since", "0", "--timeout", "60") as w:
        assert nodes[0].put("w0") == "ERR injected"
        assert nodes[1].put("w1") == "ERR injected"
        seen = {json.loads(w.next_out())["node"] for _ in range(2)}
        assert seen == {nodes[0].label, nodes[1].label}
        assert w.proc.poll() is None  # two of three: still waiting
        assert nodes[2].put("w2") == "ERR injected"
        assert json.loads(w.next_out())["node"] == nodes[2].label
        assert w.proc.wait(timeout=DEADLINE) == 0


def test_wait_without_all_returns_when_one_node_saw_it(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    with Lines(*urls(nodes), "wait", "kv_put_fail", "--json", "--since", "0", "--timeout", "60") as w:
        assert nodes[1].put("x") == "ERR injected"
        assert json.loads(w.next_out())["node"] == nodes[1].label
        assert w.proc.wait(timeout=DEADLINE) == 0


def test_wait_all_with_a_node_down_waits_for_the_others(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    nodes[1].kill()
    for strict, want in ((False, 0), (True, 3)):
        args = [*urls(nodes), "wait", "kv_put_fail", "--all", "--since", "0", "--timeout", "60"]
        if strict:
            args.append("--strict")
        with Lines(*args) as w:
            if not strict:
                w.wait_err(re.escape(f"[{nodes[1].label}] errinjctl: wait:"))
                assert nodes[0].put("d0") == "ERR injected" and nodes[2].put("d2") == "ERR injected"
            assert w.proc.wait(timeout=DEADLINE) == want


def test_wait_all_times_out_when_a_node_never_sees_it(nodes):
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    assert nodes[0].put("only") == "ERR injected"
    r = ctl(*urls(nodes), "wait", "kv_put_fail", "--all", "--since", "0", "--timeout", "1")
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].startswith(f"[{nodes[0].label}] ")


def test_wait_all_on_the_server_counts_hits_since_the_enable(nodes):
    """Without --since each node's server waits (GET .../wait): hits between the enable and the
    wait count, on every node."""
    assert ctl(*urls(nodes), "enable", "kv_put_fail").returncode == 0
    for i, n in enumerate(nodes):
        assert n.put(f"s{i}") == "ERR injected"
    r = ctl(*urls(nodes), "wait", "kv_put_fail", "--all", "--json", "--timeout", str(DEADLINE))
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(line)["node"] for line in r.stdout.splitlines()) == sorted(n.label for n in nodes)


def test_coverage_json_from_every_node_one_object_a_line(nodes):
    assert ctl(*urls(nodes[:2]), "enable", "kv_get_delay").returncode == 0
    r = ctl(*urls(nodes), "coverage", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all(line.startswith('{"node":"') for line in r.stdout.splitlines())
    armed = {(row["node"], row["name"]): row["armed"] for row in rows}
    assert [armed[(n.label, "kv_get_delay")] for n in nodes] == [1, 1, 0]
    assert {row["node"] for row in rows} == {n.label for n in nodes}
    r = ctl(*urls(nodes), "coverage")
    assert r.returncode == 0 and all(line.startswith("[") for line in r.stdout.splitlines())
