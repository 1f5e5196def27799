"""test_options.py - the command lines errinjctl accepts, and those it refuses, as getopt_long reads them.

errinjctl reads its command line with getopt_long, which on its own would also take
abbreviations ("--cou"), grouped short options ("-qv") and, under POSIXLY_CORRECT, stop at
the first argument. errinjctl(1) promises none of that: these tests pin what the man page
says. Every form of a value ("--name VALUE", "--name=VALUE", "-x VALUE", "-xVALUE") sends
the same request; "--" ends the options; an unknown, abbreviated, grouped or misused option
is a usage error (exit 2) that names the argument, points at the command's help and sends
nothing. Requests are read on the wire from the scripted fake server of test_errinjctl.py.
"""

import json
import os
import re

import pytest

from test_errinjctl import ERRINJCTL, FakeServer, clean_env, ctl, reply

HELP_HINT = re.compile(r"^Try 'errinjctl( [a-z]+)? --help'\.$", re.M)


def setup_module(module):
    if not ERRINJCTL or not os.access(ERRINJCTL, os.X_OK):
        pytest.fail(f"set ERRINJCTL to the built binary (got {ERRINJCTL!r})")


@pytest.fixture
def server():
    """A fake errinj that answers 200 (an empty JSON array to a GET) and records each request."""
    s = fake_errinj()
    yield s
    s.close()


def fake_errinj():
    return FakeServer(lambda req: reply(200, b"[]" if req["line"].startswith("GET") else b""))


def requests_of(server):
    out = []
    while not server.requests.empty():
        out.append(server.requests.get_nowait())
    return out


def sent(server, *args, env=None):
    """Runs errinjctl against the fake, insists on exit 0, returns (request line, body) of each request."""
    r = ctl(server.url, *args, env=env)
    assert r.returncode == 0, (args, r.returncode, r.stderr)
    return [(req["line"], req["body"]) for req in requests_of(server)]


@pytest.mark.parametrize("separate, joined", [
    (["enable", "a", "--term", "2*off->1*on", "--seed", "7", "--param", "k=v", "-p", "k2=v2"],
     ["enable", "a", "--term=2*off->1*on", "--seed=7", "--param=k=v", "-pk2=v2"]),
    (["enable", "a", "-p", "e=", "--param", "x=a=b"], ["enable", "a", "-pe=", "--param=x=a=b"]),
    (["--token", "tok", "disable", "--all"], ["--token=tok", "disable", "--all"]),
    (["list", "--token", "tok"], ["list", "--token=tok"]),
])
def test_every_form_of_a_value_sends_the_same_request(server, separate, joined):
    first = sent(server, *separate)
    assert first and sent(server, *joined) == first


def test_event_filters_in_any_form_keep_their_order():
    stream = FakeServer(lambda req: reply(500, b'{"message":"stop","code":500}'))
    try:
        lines = []
        for args in (["--injection", "a", "-i", "b", "--type", "sleep", "--shard", "2", "--since", "5"],
                     ["--injection=a", "-ib", "--type=sleep", "--shard=2", "--since=5"]):
            r = ctl(stream.url, "events", *args)
            assert r.returncode == 3 and "stop" in r.stderr, r.stderr
            lines.append(stream.request()["line"])
        assert lines[0] == lines[1] == \
            "GET /v2/error_injection/events?injection=a&injection=b&type=sleep&shard=2&since=5 HTTP/1.1"
        r = ctl(stream.url, "wait", "w", "-n2", "-t5", "--since=3", "--phase=all")
        assert r.returncode == 3
        assert stream.request()["line"] == "GET /v2/error_injection/events?injection=w&phase=all&since=3 HTTP/1.1"
    finally:
        stream.close()


def test_options_go_before_between_and_after_arguments(server):
    want = sent(server, "enable", "a", "--one-shot", "-p", "k=v")
    assert sent(server, "enable", "--one-shot", "a", "-p", "k=v") == want
    assert sent(server, "enable", "-p", "k=v", "--one-shot", "a") == want
    assert sent(server, "-v", "enable", "a", "--strict", "--one-shot", "-p", "k=v", "-v") == want


def test_double_dash_ends_the_options(server):
    # After "--" everything is an argument, however it looks.
    assert sent(server, "enable", "--one-shot", "--", "--term") == \
        [("POST /v2/error_injection/injection/--term?one_shot=true HTTP/1.1", b"{}")]
    assert sent(server, "disable", "--", "-a") == [("DELETE /v2/error_injection/injection/-a HTTP/1.1", b"")]
    assert sent(server, "--", "list") == [("GET /v2/error_injection/injection HTTP/1.1", b"")]
    for args, message in ((["enable", "a", "--", "--bogus"], r"enable: unexpected argument '--bogus' \(one NAME only\)"),
                          (["events", "--", "--json"], r"events: unexpected argument '--json'"),
                          (["enable", "--", "--help"], None)):
        r = ctl(server.url, *args)
        if message is None:  # "--help" after "--" is a NAME, not a request for help
            assert r.returncode == 0 and r.stdout == "", (r.returncode, r.stdout)
            assert requests_of(server)[0]["line"].startswith("POST /v2/error_injection/injection/--help?")
            continue
        assert r.returncode == 2 and re.search(message, r.stderr), r.stderr
    r = ctl(server.url, "help", "--", "enable")
    assert r.returncode == 0 and r.stdout.startswith("Usage: errinjctl [GLOBAL OPTIONS] enable ")


def test_a_value_may_start_with_a_dash(server):
    assert sent(server, "enable", "a", "-p", "-k=v", "--term", "-5%on")[0] == \
        ("POST /v2/error_injection/injection/a?one_shot=false&term=-5%25on HTTP/1.1", b'{"-k":"v"}')
    r = ctl(server.url, "wait", "a", "-t", "-1")
    assert r.returncode == 2 and "bad --timeout '-1'" in r.stderr


@pytest.mark.parametrize("args, message", [
    # Unknown options, before and after the command.
    (["--bogus", "list"], r"^errinjctl: unknown option '--bogus'$"),
    (["-x", "list"], r"^errinjctl: unknown option '-x'$"),
    (["list", "--bogus=1"], r"^errinjctl: list: unknown option '--bogus=1'$"),
    (["list", "-x"], r"^errinjctl: list: unknown option '-x'$"),
    (["list", "--version"], r"^errinjctl: list: unknown option '--version'$"),
    (["disable", "--json"], r"^errinjctl: disable: unknown option '--json'$"),
    (["events", "-q"], r"^errinjctl: events: unknown option '-q'$"),
    # Abbreviations, which getopt_long alone would take.
    (["--ur", "http://x", "list"], r"^errinjctl: unknown option '--ur'$"),
    (["--verb", "list"], r"^errinjctl: unknown option '--verb'$"),
    (["enable", "a", "--one"], r"^errinjctl: enable: unknown option '--one'$"),
    (["enable", "a", "--par=k=v"], r"^errinjctl: enable: unknown option '--par=k=v'$"),
    (["wait", "a", "--cou", "2"], r"^errinjctl: wait: unknown option '--cou'$"),
    (["coverage", "--jso"], r"^errinjctl: coverage: unknown option '--jso'$"),
    # Grouped short options.
    (["wait", "a", "-qv"], r"^errinjctl: wait: unknown option '-qv'$"),
    (["-vh"], r"^errinjctl: unknown option '-vh'$"),
    (["disable", "-av"], r"^errinjctl: disable: unknown option '-av'$"),
    (["wait", "a", "-qn2"], r"^errinjctl: wait: unknown option '-qn2'$"),
    # A value where none goes, or none where one must.
    (["coverage", "--json=1"], r"^errinjctl: coverage: option --json takes no value$"),
    (["wait", "a", "--all=yes"], r"^errinjctl: wait: option --all takes no value$"),
    (["--strict=1", "list"], r"^errinjctl: option --strict takes no value$"),
    (["--help=x"], r"^errinjctl: option --help takes no value$"),
    (["--version=1"], r"^errinjctl: option --version takes no value$"),
    (["wait", "a", "-n"], r"^errinjctl: wait: option -n needs a value$"),
    (["wait", "a", "--count"], r"^errinjctl: wait: option --count needs a value$"),
    (["list", "--url"], r"^errinjctl: list: option --url needs a value$"),
    (["--token"], r"^errinjctl: option --token needs a value$"),
    (["events", "-i"], r"^errinjctl: events: option -i needs a value$"),
])
def test_unknown_and_misused_options_exit_2_and_send_nothing(server, args, message):
    r = ctl(server.url, *args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert re.search(message, r.stderr, re.M), r.stderr
    assert HELP_HINT.search(r.stderr), r.stderr
    assert r.stdout == ""
    assert requests_of(server) == []


def test_posixly_correct_changes_nothing(server):
    # Under POSIXLY_CORRECT getopt would stop at NAME and take --one-shot for a second NAME.
    env = clean_env(POSIXLY_CORRECT="1")
    assert sent(server, "enable", "a", "--one-shot", "-p", "k=v", env=env) == \
        [("POST /v2/error_injection/injection/a?one_shot=true HTTP/1.1", b'{"k":"v"}')]


@pytest.mark.parametrize("args", [["enable", "a", "--help"], ["enable", "--help", "a", "b"], ["enable", "-h"],
                                  ["help", "enable"], ["-v", "enable", "--one-shot", "-h"]])
def test_help_anywhere_before_a_mistake_prints_the_commands_help(server, args):
    r = ctl(server.url, *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: errinjctl [GLOBAL OPTIONS] enable NAME ")
    assert requests_of(server) == []


def test_a_usage_error_with_several_nodes_is_reported_once_and_sends_nothing(server):
    other = fake_errinj()
    try:
        r = ctl(None, "--url", server.url, "--url", other.url, "enable", "a", "--seed", "x")
        assert r.returncode == 2
        assert r.stderr.splitlines() == ["errinjctl: enable: bad seed 'x': expected an unsigned 64-bit decimal integer",
                                         "Try 'errinjctl enable --help'."]
        assert requests_of(server) == [] and requests_of(other) == []
        r = ctl(None, "--url", server.url, "--url", other.url, "enters", "a")
        assert r.returncode == 2 and "enters: takes one --url" in r.stderr
        assert requests_of(server) == [] and requests_of(other) == []
        # --strict and every --url count wherever they stand before "--".
        r = ctl(None, "--url", server.url, "list", "--strict", "--url", other.url, "-v")
        assert r.returncode == 0, r.stderr
        assert len(requests_of(server)) == 1 and len(requests_of(other)) == 1
    finally:
        other.close()


def test_a_usage_error_in_the_environment_is_reported(server):
    r = ctl(None, "list", env=clean_env(ERRINJ_URL="///"))
    assert r.returncode == 2 and "the server URL is empty" in r.stderr
    r = ctl(server.url, "list", env=clean_env(ERRINJ_TOKEN="a\x01b"))
    assert r.returncode == 2 and "control character" in r.stderr
    assert requests_of(server) == []
    body = json.dumps({"k": "v"}).replace(" ", "").encode()
    assert sent(server, "enable", "a", "-p", "k=v", env=clean_env(ERRINJ_TOKEN=""))[0][1] == body
