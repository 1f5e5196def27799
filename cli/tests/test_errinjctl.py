"""test_errinjctl.py - errinjctl against a real errinj server (the lead's errinj-testhost).

Every command, every exit status (0 success, 1 wait timed out, 2 usage error, 3 server
unreachable, server error or broken stream) and the server's error answers are driven through
the real binary. The test host fires points on command (stdin), so a test decides exactly when
a point fires. Nothing here sleeps to synchronise: tests wait for output lines (the stream's
"connected" notice of --verbose, the host's answers) with deadlines.

Run by CTest with ERRINJCTL and ERRINJ_TESTHOST set to the built binaries. One command per
section; the many-node tests are in test_multinode.py, and the forms the command line accepts
and refuses (getopt_long's edge cases) in test_options.py.

It stays one file (about 900 lines): its sections share the test host and the fake server
fixtures defined at the top, and each section is one command, read in the man page's order.
"""

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "pylib"))
from lines import LineReader  # noqa: E402 (shared with test_multinode.py)
from testhost import SyncHost  # noqa: E402 (the test host's driver, shared with tests/integration)

ERRINJCTL = os.environ.get("ERRINJCTL", "")
TESTHOST = os.environ.get("ERRINJ_TESTHOST", "")

# A safety net against a hung binary, not a synchronisation: every wait below ends far sooner.
HARD_TIMEOUT = 30


def setup_module(module):
    for var, path in (("ERRINJCTL", ERRINJCTL), ("ERRINJ_TESTHOST", TESTHOST)):
        if not path or not os.access(path, os.X_OK):
            pytest.fail(f"set {var} to the built binary (got {path!r})")


@pytest.fixture
def host():
    h = SyncHost()
    yield h
    assert h.quit() == 0


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("ERRINJ_URL", "ERRINJ_TOKEN")}
    env.update(extra)
    return env


def ctl(url, *args, env=None, timeout=HARD_TIMEOUT):
    """Runs errinjctl to completion; returns the CompletedProcess (text)."""
    argv = [ERRINJCTL] + (["--url", url] if url else []) + list(args)
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
    )


def ok(url, *args, **kw):
    """Runs errinjctl, insists on exit 0 and returns its stdout."""
    r = ctl(url, *args, **kw)
    assert r.returncode == 0, f"errinjctl {args}: exit {r.returncode}, stderr {r.stderr!r}"
    return r.stdout


class Background:
    """An errinjctl left running (events, wait), its stdout and stderr read line by line."""

    def __init__(self, url, *args, env=None):
        argv = [ERRINJCTL, "--url", url, *args]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else clean_env(),
        )
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)

    def connected(self, timeout=10):
        """Waits for --verbose's notice that the server said ': connected'."""
        self.err.expect(r"connected to ", timeout)

    def wait(self, timeout=10):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"errinjctl still running after {timeout} s: {self.err.seen!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def background():
    started = []

    def start(*args, **kw):
        b = Background(*args, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def status_seq(url):
    return json.loads(ok(url, "status"))["seq"]


def free_port():
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EVENT_LINE = re.compile(
    r"^(?P<seq>\d+) (?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d\.\d{6}) "
    r"shard=(?P<shard>\d+) (?P<type>\S+) (?P<phase>\S+) (?P<name>\S+) (?P<where>\S+)"
    r"(?: action=(?P<action>\S+) eval=(?P<eval>\d+))?"
    r"(?P<params>( \S+=\S+)*)$"
)


# --------------------------------------------------------------------------------------------
# Help and usage errors (exit 2), no server needed
# --------------------------------------------------------------------------------------------


def test_help_lists_every_command_and_exit_codes():
    r = ctl(None, "--help")
    assert r.returncode == 0
    for command in ("list", "points", "enable", "disable", "message", "enters", "events",
                    "wait", "status"):
        assert re.search(rf"^  {command}\b", r.stdout, re.M), command
    assert "Exit status" in r.stdout


@pytest.mark.parametrize("command", ["list", "points", "enable", "disable", "message", "enters",
                                     "waiters", "get", "events", "wait", "status"])
def test_each_command_has_help(command):
    r = ctl(None, command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: errinjctl"), r.stdout
    assert f" {command} " in r.stdout.splitlines()[0]
    assert ctl(None, "help", command).stdout == r.stdout


def test_enable_help_names_its_options():
    out = ok(None, "enable", "--help")
    assert "--one-shot" in out and "KEY=VALUE" in out and "--term T" in out and "--seed S" in out


def test_version():
    assert re.fullmatch(r"errinjctl \d+\.\d+\.\d+\n", ok(None, "--version"))


@pytest.mark.parametrize(
    "args, message",
    [
        ([], r"missing COMMAND"),
        (["frobnicate"], r"unknown command 'frobnicate'"),
        (["--bogus", "list"], r"unknown option '--bogus'"),
        (["list", "--bogus"], r"list: unknown option '--bogus'"),
        (["list", "extra"], r"list: unexpected argument 'extra'"),
        (["enable"], r"enable: missing NAME"),
        (["enable", ""], r"enable: NAME is empty"),
        (["enable", "a", "b"], r"enable: unexpected argument 'b'"),
        (["enable", "a", "-p", "novalue"], r"bad parameter 'novalue': expected KEY=VALUE"),
        (["enable", "a", "-p", "=v"], r"bad parameter '=v': expected KEY=VALUE"),
        (["enable", "a", "-p"], r"option -p needs a value"),
        (["enable", "a", "--one-shot=yes"], r"option --one-shot takes no value"),
        (["enable", "a", "--one-shot", "--term", "3*on"], r"--one-shot and --term do not go together"),
        (["enable", "a", "--term", ""], r"--term needs a term"),
        (["enable", "a", "--term"], r"option --term needs a value"),
        (["enable", "a", "--seed", "x"], r"bad seed 'x'"),
        (["enable", "a", "--seed", "-1"], r"bad seed '-1'"),
        (["enable", "a", "--seed", "18446744073709551616"], r"bad seed"),
        (["disable"], r"disable: missing NAME \(or --all\)"),
        (["disable", "a", "--all"], r"NAME or --all, not both"),
        (["message"], r"message: missing NAME"),
        (["enters"], r"enters: missing NAME"),
        (["wait"], r"wait: missing NAME"),
        (["wait", "a", "--count", "0"], r"bad --count '0'"),
        (["wait", "a", "--count", "-1"], r"bad --count '-1'"),
        (["wait", "a", "--count", "two"], r"bad --count 'two'"),
        (["wait", "a", "--count", "99999999999999999999999"], r"bad --count"),
        (["wait", "a", "--timeout", "soon"], r"bad --timeout 'soon'"),
        (["wait", "a", "--timeout", "-1"], r"bad --timeout '-1'"),
        (["wait", "a", "--timeout", "nan"], r"bad --timeout 'nan'"),
        (["wait", "a", "--timeout", "inf"], r"bad --timeout 'inf'"),
        (["wait", "a", "--timeout", "1s"], r"bad --timeout '1s'"),
        (["wait", "a", "--since", "x"], r"bad --since 'x'"),
        (["events", "--since", "-3"], r"bad --since '-3'"),
        (["events", "--shard", "x"], r"bad --shard 'x'"),
        (["events", "stray"], r"unexpected argument 'stray'"),
        (["help", "nope"], r"unknown command 'nope'"),
        (["--url"], r"option --url needs a value"),
        (["--url", "", "list"], r"URL is empty"),
        (["--token", "a\nb", "list"], r"control character"),
    ],
)
def test_usage_errors_exit_2_and_say_what_was_wrong(args, message):
    # The URL points nowhere: a usage error must be found before any request is tried.
    r = ctl(None, *args, env=clean_env(ERRINJ_URL=f"http://127.0.0.1:{free_port()}"))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert re.search(message, r.stderr), r.stderr
    assert r.stdout == ""


# --------------------------------------------------------------------------------------------
# REST commands
# --------------------------------------------------------------------------------------------


def test_list_is_empty_then_names_enabled_injections(host):
    assert ok(host.url, "list") == ""
    ok(host.url, "enable", "alpha")
    ok(host.url, "enable", "beta", "--one-shot")
    assert sorted(ok(host.url, "list").splitlines()) == ["alpha", "beta"]


def test_enable_sends_parameters_and_one_shot(host):
    ok(host.url, "enable", "h1", "-p", "rc=42", "--param", "note=two words", "-pempty=",
       "--param=eq=a=b")
    state = json.loads(ok(host.url, "get", "h1"))
    assert state[0]["enabled"] is True and state[0]["one_shot"] is False
    params = {p["key"]: p["value"] for p in state[0]["parameters"]}
    assert params == {"rc": "42", "note": "two words", "empty": "", "eq": "a=b"}
    # The handler of the test host returns its "rc" parameter.
    assert host.fire("h1", "handler") == 42

    ok(host.url, "enable", "once", "--one-shot")
    assert json.loads(ok(host.url, "get", "once"))[0]["one_shot"] is True
    assert host.fire("once", "enter") == 1
    assert host.fire("once", "enter") == 0  # fired once, disabled itself
    assert "once" not in ok(host.url, "list").splitlines()


def test_enable_prints_the_servers_warning_for_a_name_without_a_point(host):
    r = ctl(host.url, "enable", "typo_point")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "errinjctl: enable: warning: no compiled-in point named typo_point", r.stderr
    assert "typo_point" in ok(host.url, "list").splitlines()  # still enabled
    r = ctl(host.url, "enable", "site_enter")
    assert (r.returncode, r.stderr) == (0, "")


def test_enable_twice_replaces_parameters(host):
    ok(host.url, "enable", "h2", "-p", "rc=1")
    ok(host.url, "enable", "h2", "-p", "rc=2")
    assert host.fire("h2", "handler") == 2


def test_names_are_percent_encoded(host):
    name = "odd/name?x=1&y=%41#frag+é"
    ok(host.url, "enable", name)
    assert ok(host.url, "list").splitlines() == [name]
    assert host.fire(name, "enter") == 1
    assert ok(host.url, "enters", name) == "1\n"
    ok(host.url, "disable", name)
    assert ok(host.url, "list") == ""


def test_options_after_names_and_double_dash(host):
    ok(host.url, "enable", "--one-shot", "--", "-dash")
    assert ok(host.url, "list").splitlines() == ["-dash"]
    ok(host.url, "disable", "--", "-dash")
    assert ok(host.url, "list") == ""


def test_disable_one_all_and_unknown(host):
    for name in ("a", "b", "c"):
        ok(host.url, "enable", name)
    ok(host.url, "disable", "b")
    assert sorted(ok(host.url, "list").splitlines()) == ["a", "c"]
    ok(host.url, "disable", "never-enabled")
    ok(host.url, "disable", "--all")
    assert ok(host.url, "list") == ""
    assert host.fire("a", "enter") == 0


def test_enters_prints_a_bare_integer(host):
    assert ok(host.url, "enters", "e") == "0\n"
    ok(host.url, "enable", "e")
    host.fire("e", "enter", 3)
    assert ok(host.url, "enters", "e") == "3\n"


def test_message_releases_a_parked_handler(host):
    ok(host.url, "enable", "parked")
    since = status_seq(host.url)
    waiter = int(host.command("wait parked 20000").split()[1])
    # Know it is parked from its "waiting" event, not from a sleep.
    ok(host.url, "wait", "parked", "--phase", "waiting", "--since", str(since), "--timeout", "10")
    assert ok(host.url, "waiters", "parked") == "1\n"
    ok(host.url, "message", "parked")
    assert host.done(waiter) == 0
    assert ok(host.url, "waiters", "parked") == "0\n"


def test_points_prints_the_catalogue_table(host):
    ok(host.url, "enable", "site_enter")
    assert host.command("site enter 2") == "ok 1"
    out = ok(host.url, "points").splitlines()
    assert out[0].split() == ["NAME", "TYPE", "LOCATION", "ENABLED", "ENTERS", "WAITERS"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["site_enter"][1] == "enter"
    assert re.fullmatch(r".*testhost\.c:\d+", rows["site_enter"][2])
    assert rows["site_enter"][3:] == ["yes", "2", "0"]
    assert rows["site_sleep"][1:2] == ["sleep"] and rows["site_sleep"][3] == "no"


def test_status_prints_the_status_json(host):
    status = json.loads(ok(host.url, "status"))
    assert {"version", "seq", "subscribers", "dropped", "shards"} <= status.keys()
    ok(host.url, "enable", "s")
    host.fire("s", "enter", 2)
    assert json.loads(ok(host.url, "status"))["seq"] == status["seq"] + 2


def test_url_from_environment_and_trailing_slash(host):
    assert ok(None, "list", env=clean_env(ERRINJ_URL=host.url + "/")) == ""
    assert ok(host.url + "//", "status")


def test_global_options_after_the_command(host):
    r = ctl(None, "list", "--url", host.url)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def test_events_prints_readable_lines_as_points_fire(host, background):
    ok(host.url, "enable", "ev", "-p", "k=v", "-p", "spaced=a b")
    events = background(host.url, "-v", "events", "--injection", "ev")
    events.connected()
    assert host.command("shard 2") == "ok"
    before = time.time()
    host.fire("ev", "enter")
    line = events.out.next()
    m = EVENT_LINE.match(line.replace('"a b"', "a_b"))
    assert m, line
    assert (m["shard"], m["type"], m["phase"], m["name"], m["where"]) == \
        ("2", "enter", "hit", "ev", "-")
    assert line.endswith(' k=v spaced="a b"'), line
    stamp = time.mktime(time.strptime(f"{m['date']} {m['time'][:8]}", "%Y-%m-%d %H:%M:%S"))
    assert abs(stamp - before) < 5, (line, before)

    ok(host.url, "enable", "site_lambda")
    events2 = background(host.url, "-v", "events", "--type", "lambda")
    events2.connected()
    host.command("site lambda")
    m = EVENT_LINE.match(events2.out.next())
    assert m and m["name"] == "site_lambda" and re.fullmatch(r".*testhost\.c:\d+", m["where"])


def test_events_json_prints_one_event_object_per_line(host, background):
    ok(host.url, "enable", "js")
    events = background(host.url, "-v", "events", "--json")
    events.connected()
    host.fire("js", "exception", 2)
    first, second = json.loads(events.out.next()), json.loads(events.out.next())
    assert first["injection"] == "js" and first["type"] == "exception"
    assert first["phase"] == "hit" and second["seq"] == first["seq"] + 1
    assert second["enters"] == 2


def test_events_filters_by_injection(host, background):
    ok(host.url, "enable", "wanted")
    ok(host.url, "enable", "other")
    events = background(host.url, "-v", "events", "--injection", "wanted", "--json")
    events.connected()
    host.fire("other", "enter")
    host.fire("wanted", "enter")
    # Events arrive in order, so "other" would have come first had the filter let it through.
    assert json.loads(events.out.next())["injection"] == "wanted"


def test_events_since_replays_kept_events(host, background):
    ok(host.url, "enable", "past")
    since = status_seq(host.url)
    host.fire("past", "enter", 3)
    events = background(host.url, "events", "--since", str(since), "--json")
    seqs = [json.loads(events.out.next())["seq"] for _ in range(3)]
    assert seqs == [since + 1, since + 2, since + 3]


def test_events_reports_overflow_on_stderr_and_goes_on(background):
    host = SyncHost(history=4)
    try:
        ok(host.url, "enable", "flood")
        host.fire("flood", "enter", 10)
        events = background(host.url, "events", "--since", "0", "--json")
        m = events.err.expect(r"overflow: (\d+) events dropped, the stream goes on at seq (\d+)")
        assert int(m[1]) > 0
        # The stream goes on: the kept events follow, then live ones.
        first = json.loads(events.out.next())
        assert first["seq"] >= int(m[2])
        host.fire("flood", "enter")
        seqs = [first["seq"]]
        while seqs[-1] < 11:
            seqs.append(json.loads(events.out.next())["seq"])
        assert seqs == sorted(set(seqs))
        assert events.proc.poll() is None
    finally:
        assert host.quit() == 0


def test_events_exits_3_when_the_server_goes_away(background):
    host = SyncHost()
    events = background(host.url, "-v", "events")
    events.connected()
    assert host.quit() == 0
    assert events.wait() == 3
    events.err.expect(r"events: .*(closed|broke).*" + re.escape(host.url))


# --------------------------------------------------------------------------------------------
# wait: exit 0 when seen, 1 at timeout
# --------------------------------------------------------------------------------------------


def test_wait_exits_0_on_the_nth_live_hit(host, background):
    ok(host.url, "enable", "w")
    waiter = background(host.url, "-v", "wait", "w", "--count", "2", "--timeout", "20")
    host.fire("w", "enter")
    host.fire("w", "enter")
    assert waiter.wait() == 0
    lines = waiter.out.rest()
    assert len(lines) == 2 and all(EVENT_LINE.match(line) and re.search(r" enter hit w - action=on eval=\d+$", line) for line in lines), lines


def test_wait_without_since_sees_a_hit_between_enable_and_wait(host):
    # The server waits from the injection's latest enable: enable, act, wait cannot miss the act.
    ok(host.url, "enable", "raced")
    host.fire("raced", "enter", 2)
    r = ctl(host.url, "wait", "raced", "--count", "2", "--timeout", "10", "--json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["enters"] for e in events] == [1, 2] and all(e["injection"] == "raced" for e in events)
    # A new enable starts a new count: the old hits are not seen again.
    ok(host.url, "enable", "raced")
    r = ctl(host.url, "wait", "raced", "--timeout", "0.3")
    assert r.returncode == 1, r.stderr


def test_wait_without_since_reports_events_no_longer_kept():
    host = SyncHost(history=2)
    try:
        ok(host.url, "enable", "old")
        host.fire("old", "enter", 5)
        r = ctl(host.url, "wait", "old", "--timeout", "5")
        assert r.returncode == 3, r.stderr
        assert "HTTP 410" in r.stderr and "no longer kept" in r.stderr, r.stderr
    finally:
        assert host.quit() == 0


def test_wait_since_counts_hits_before_connecting(host):
    ok(host.url, "enable", "early")
    since = status_seq(host.url)
    host.fire("early", "enter", 2)
    r = ctl(host.url, "wait", "early", "--since", str(since), "--count", "2", "--timeout", "10",
            "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["seq"] for line in r.stdout.splitlines()] == [since + 1, since + 2]


def test_wait_quiet_prints_nothing(host):
    ok(host.url, "enable", "q")
    since = status_seq(host.url)
    host.fire("q", "enter")
    r = ctl(host.url, "wait", "q", "-q", "--since", str(since), "--timeout", "10")
    assert (r.returncode, r.stdout) == (0, "")


def test_wait_phase_waiting_sees_a_parked_handler(host):
    ok(host.url, "enable", "park")
    since = status_seq(host.url)
    waiter = int(host.command("wait park 20000").split()[1])
    r = ctl(host.url, "wait", "park", "--phase", "waiting", "--since", str(since), "--json",
            "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["phase"] == "waiting"
    ok(host.url, "disable", "park")
    assert host.done(waiter) == 0


def test_wait_times_out_with_exit_1_even_without_heartbeats():
    # No heartbeat for a minute: the deadline must not depend on bytes arriving.
    host = SyncHost(heartbeat_ms=60000)
    try:
        ok(host.url, "enable", "never")
        start = time.monotonic()
        r = ctl(host.url, "wait", "never", "--timeout", "0.5")
        took = time.monotonic() - start
        assert r.returncode == 1, r.stderr
        assert re.search(r"timed out after 0\.5 s waiting for never .*0 arrived", r.stderr), r.stderr
        assert 0.45 <= took < 5, took
    finally:
        assert host.quit() == 0


def test_wait_times_out_after_fewer_hits_than_count(host):
    ok(host.url, "enable", "some")
    since = status_seq(host.url)
    host.fire("some", "enter")
    r = ctl(host.url, "wait", "some", "--count", "3", "--since", str(since), "--timeout", "0.3")
    assert r.returncode == 1
    assert "seen 1 of 3" in r.stderr
    assert len(r.stdout.splitlines()) == 1


def test_streams_exit_3_when_the_server_is_killed(background):
    host = SyncHost()
    events = background(host.url, "-v", "events")
    waiter = background(host.url, "-v", "wait", "x", "--since", "0", "--timeout", "60")
    events.connected()
    waiter.connected()
    host.kill()
    assert events.wait() == 3
    assert waiter.wait() == 3
    events.err.expect(r"events: .*(closed|broke)")
    waiter.err.expect(r"wait: .*(closed|broke)")


def test_wait_exits_3_when_the_server_goes_away(background):
    host = SyncHost()
    waiter = background(host.url, "-v", "wait", "gone", "--since", "0", "--timeout", "60")
    waiter.connected()
    assert host.quit() == 0
    assert waiter.wait() == 3
    waiter.err.expect(r"wait: .*(closed|broke)")


def test_wait_on_the_server_exits_3_when_the_server_stops(background):
    host = SyncHost()
    ok(host.url, "enable", "gone")
    fds = f"/proc/{host.pid}/fd"

    def sockets():
        return sum(1 for fd in os.listdir(fds) if os.readlink(f"{fds}/{fd}").startswith("socket:"))
    before = sockets()
    waiter = background(host.url, "wait", "gone", "--timeout", "60")
    deadline = time.monotonic() + 10
    while sockets() == before and time.monotonic() < deadline:
        time.sleep(0.01)  # allow-sleep: the interval of a bounded poll for the accepted connection
    # One more wait: answered only after the server thread has taken the first request too.
    assert ctl(host.url, "wait", "other", "--timeout", "0.001").returncode == 1
    assert host.quit() == 0
    assert waiter.wait() == 3
    waiter.err.expect(r"wait: .*503.*server is stopping")


# --------------------------------------------------------------------------------------------
# Exit 3: unreachable server and server errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["list"], ["points"], ["enable", "x"], ["disable", "x"],
                                  ["disable", "--all"], ["message", "x"], ["enters", "x"],
                                  ["waiters", "x"], ["get", "x"], ["status"], ["events"],
                                  ["wait", "x", "--timeout", "5"]])
def test_unreachable_server_exits_3(args):
    url = f"http://127.0.0.1:{free_port()}"
    r = ctl(url, *args, timeout=15)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert f"cannot reach the server at {url}" in r.stderr, r.stderr


@pytest.fixture
def token_host():
    h = SyncHost(token="s3cret")
    yield h
    assert h.quit() == 0


def test_missing_or_wrong_token_is_a_server_error(token_host):
    url = token_host.url
    for extra in ([], ["--token", "wrong"]):
        r = ctl(url, *extra, "list")
        assert r.returncode == 3
        assert re.search(r"list: server error: HTTP 401(: .+)?$", r.stderr.strip()), r.stderr
    r = ctl(url, "events")
    assert r.returncode == 3 and "HTTP 401" in r.stderr
    r = ctl(url, "wait", "x", "--timeout", "5")
    assert r.returncode == 3 and "HTTP 401" in r.stderr


def test_token_from_option_or_environment(token_host, background):
    url = token_host.url
    ok(url, "--token", "s3cret", "enable", "t")
    assert ok(url, "list", env=clean_env(ERRINJ_TOKEN="s3cret")) == "t\n"
    events = background(url, "-v", "events", "--json", env=clean_env(ERRINJ_TOKEN="s3cret"))
    events.connected()
    token_host.fire("t", "enter")
    assert json.loads(events.out.next())["injection"] == "t"


def test_enable_with_a_term_and_a_seed_fires_as_the_term_says(host, background):
    ok(host.url, "enable", "tm", "--term", "2*off->1*on", "--seed", "18446744073709551615")
    state = json.loads(ok(host.url, "get", "tm"))[0]
    assert (state["term"], state["seed"]) == ("2*off->1*on", "18446744073709551615"), state
    events = background(host.url, "-v", "events", "--injection", "tm")
    events.connected()
    assert [host.fire("tm", "enter") for _ in range(4)] == [0, 0, 1, 0]
    line = events.out.next()
    m = EVENT_LINE.match(line)
    assert m and (m["name"], m["action"], m["eval"]) == ("tm", "on", "3"), line
    assert "tm" not in ok(host.url, "list").splitlines()  # its last step ran out
    ok(host.url, "enable", "tm2", "--term", "return(-7)")
    assert host.fire("tm2", "exception") == -7
    ok(host.url, "enable", "plain")
    assert json.loads(ok(host.url, "get", "plain"))[0]["term"] == "on"
    status = json.loads(ok(host.url, "status"))
    assert isinstance(status["seed"], int)
    assert json.loads(ok(host.url, "get", "plain"))[0]["seed"] == status["seed"]


def test_a_bad_term_is_the_servers_400_with_its_offset(host):
    r = ctl(host.url, "enable", "bad", "--term", "1*on->0%off")
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert re.search(r"enable: server error: HTTP 400: bad term at offset 6: percentage must be more than 0",
                     r.stderr), r.stderr
    assert ok(host.url, "list") == ""


def test_bad_names_are_refused_by_the_server_with_its_message(host):
    for name in ("ctl\x01char", "n" * 300):
        r = ctl(host.url, "enable", name)
        assert r.returncode == 3
        m = re.search(r"enable: server error: HTTP 400: (.+)$", r.stderr.strip())
        assert m and m[1], r.stderr


def test_unknown_path_is_a_server_error(host):
    r = ctl(host.url + "/not-errinj", "list")
    assert r.returncode == 3
    assert "server error: HTTP 404" in r.stderr


def test_too_many_subscribers_is_a_server_error(background):
    host = SyncHost(max_subscribers=1)
    try:
        first = background(host.url, "-v", "events")
        first.connected()
        r = ctl(host.url, "events")
        assert r.returncode == 3
        assert "server error: HTTP 503" in r.stderr, r.stderr
        r = ctl(host.url, "wait", "x", "--since", "0", "--timeout", "5")  # --since reads the stream
        assert r.returncode == 3 and "HTTP 503" in r.stderr
    finally:
        first.stop()
        assert host.quit() == 0


# --------------------------------------------------------------------------------------------
# A scripted fake server: exact request bytes, and answers errinj would never send
# --------------------------------------------------------------------------------------------


class FakeServer:
    """Accepts connections on a thread and answers each with scripted raw bytes.

    `script(request)` returns a list of byte chunks to send (each sent separately), or None to
    keep the connection open and silent until the server is closed.
    """

    def __init__(self, script):
        self.script = script
        self.requests = queue.Queue()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closing = threading.Event()
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            want = int(headers.get("content-length", "0"))
            while len(body) < want:
                body += conn.recv(65536)
            request = {"line": lines[0], "headers": headers, "body": body}
            self.requests.put(request)
            chunks = self.script(request)
            if chunks is None:
                self.held.append(conn)
                continue
            try:
                for chunk in chunks:
                    conn.sendall(chunk)
            except OSError:
                pass
            conn.close()

    def request(self, timeout=10):
        return self.requests.get(timeout=timeout)

    def close(self):
        self.closing.set()
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def fake():
    servers = []

    def start(script):
        server = FakeServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def reply(status, body=b"", content_type="application/json"):
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "X")
    return [f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body]


def sse_head():
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def test_enable_request_on_the_wire(fake):
    server = fake(lambda req: reply(200))
    ok(server.url, "--token", "tok", "enable", "a b/é", "--one-shot", "-p", "k=v", "-p", "n=1")
    req = server.request()
    assert req["line"] == "POST /v2/error_injection/injection/a%20b%2F%C3%A9?one_shot=true HTTP/1.1"
    assert req["headers"]["authorization"] == "Bearer tok"
    assert req["headers"]["content-type"] == "application/json"
    assert json.loads(req["body"]) == {"k": "v", "n": "1"}

    ok(server.url, "enable", "plain")
    req = server.request()
    assert req["line"].endswith("/injection/plain?one_shot=false HTTP/1.1")

    ok(server.url, "enable", "t", "--term", "50%2*return(-5)->off", "--seed", "42")
    req = server.request()
    assert req["line"].endswith("/injection/t?one_shot=false&term=50%252%2Areturn%28-5%29-%3Eoff&seed=42 HTTP/1.1"), \
        req["line"]
    assert json.loads(req["body"]) == {}
    assert "authorization" not in req["headers"]


def test_other_requests_on_the_wire(fake):
    server = fake(lambda req: reply(200, b"[]" if req["line"].startswith("GET") else b""))
    cases = [
        (["disable", "x"], "DELETE /v2/error_injection/injection/x"),
        (["disable", "--all"], "DELETE /v2/error_injection/injection"),
        (["message", "x"], "POST /v2/error_injection/injection/x/message"),
        (["list"], "GET /v2/error_injection/injection"),
        (["points"], "GET /v2/error_injection/points"),
    ]
    for args, line in cases:
        ok(server.url, *args)
        assert server.request()["line"] == line + " HTTP/1.1"


def test_event_filters_on_the_wire(fake):
    server = fake(lambda req: reply(500, b'{"message":"stop here","code":500}'))
    r = ctl(server.url, "events", "--injection", "a&b", "--injection", "c", "--type", "sleep",
            "--phase", "all", "--shard", "3", "--since", "17")
    assert r.returncode == 3
    assert "server error: HTTP 500: stop here" in r.stderr
    assert server.request()["line"] == ("GET /v2/error_injection/events?injection=a%26b&injection=c"
                                        "&type=sleep&phase=all&shard=3&since=17 HTTP/1.1")
    r = ctl(server.url, "wait", "w x", "--since", "5", "--timeout", "5")
    assert r.returncode == 3
    assert server.request()["line"] == \
        "GET /v2/error_injection/events?injection=w%20x&since=5 HTTP/1.1"


def test_stream_parsed_across_odd_chunks_and_line_ends(fake):
    event = json.dumps({"seq": 7, "injection": "n", "type": "sleep", "phase": "hit", "shard": 1,
                        "ts_ns": 1_700_000_000_123_456_789, "parameters": {"k": "v"}})
    stream = (b": connected\r\n\r\nid: 7\r\ndata: " + event.encode() + b"\r\n\r"
              b"\nevent: overflow\rdata: {\"dropped\":5,\"next_seq\":13}\r\r: ping\n\n"
              b"data: not json\n\n")
    # One byte per send: every line end split from its line, CR from LF.
    server = fake(lambda req: [sse_head()] + [stream[i:i + 1] for i in range(len(stream))])
    r = ctl(server.url, "events")
    assert r.returncode == 3  # the fake ends the stream: the server went away
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    m = EVENT_LINE.match(lines[0])
    assert m and (m["seq"], m["shard"], m["type"], m["name"], m["params"]) == \
        ("7", "1", "sleep", "n", " k=v")
    assert m["time"].endswith(".123456")
    assert "overflow: 5 events dropped, the stream goes on at seq 13" in r.stderr
    assert "not a JSON object: not json" in r.stderr
    assert "server closed the event stream" in r.stderr


def test_stream_line_over_the_cap_exits_3(fake):
    server = fake(lambda req: [sse_head(), b"data: " + b"x" * (5 << 20) + b"\n\n"])
    r = ctl(server.url, "events")
    assert r.returncode == 3
    assert "over 4194304 bytes" in r.stderr


def test_stream_answer_that_is_not_an_event_stream_exits_3(fake):
    server = fake(lambda req: reply(200, b"<html>hello</html>", "text/html"))
    r = ctl(server.url, "events")
    assert r.returncode == 3
    assert "did not answer with an event stream" in r.stderr


def test_error_answer_that_is_not_json_is_shown(fake):
    server = fake(lambda req: reply(500, b"<h1>proxy\nerror</h1>", "text/html"))
    r = ctl(server.url, "list")
    assert r.returncode == 3
    assert "list: server error: HTTP 500: <h1>proxy error</h1>" in r.stderr


def test_answer_of_the_wrong_shape_exits_3(fake):
    server = fake(lambda req: reply(200, b"{\"not\": \"a list\"}"))
    r = ctl(server.url, "list")
    assert r.returncode == 3 and "not a JSON array" in r.stderr
    r = ctl(server.url, "enters", "x")
    assert r.returncode == 3 and "not an integer" in r.stderr


def test_wait_on_a_silent_server_ends_at_the_deadline_with_exit_3(fake):
    server = fake(lambda req: None)  # accepts, reads the request, never answers
    start = time.monotonic()
    r = ctl(server.url, "wait", "x", "--timeout", "0.5")
    took = time.monotonic() - start
    assert r.returncode == 3, r.stderr
    assert "no answer from" in r.stderr
    assert 0.45 <= took < 5, took


# --------------------------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------------------------


def test_coverage_prints_armed_reached_and_fired_per_point(host):
    ok(host.url, "enable", "site_enter")
    host.command("site enter 2")
    lines = ok(host.url, "coverage").splitlines()
    assert lines[0].split() == ["POINT", "LOCATION", "ARMED", "REACHED", "FIRED"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert re.search(r"testhost\.c:\d+$", rows["site_enter"][0]), rows["site_enter"]
    assert rows["site_enter"][1:] == ["1", "2", "2"]
    assert rows["site_sleep"][1:] == ["0", "0", "0"]
    doc = json.loads(ok(host.url, "coverage", "--json"))
    entry = next(r for r in doc if r["name"] == "site_enter")
    assert (entry["armed"], entry["evaluations"], entry["enters"]) == (1, 2, 2)
    r = ctl(host.url, "coverage", "extra")
    assert r.returncode == 2 and "unexpected argument 'extra'" in r.stderr
