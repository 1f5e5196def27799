#!/usr/bin/python3
"""The errinj demo: a 4-shard kvnode, a write parked by an injection, the event that says so the
moment it happens, the message that releases it, and the same hit found again by log parsing,
the way tests find it today, to show how much later that is.

Usage: /usr/bin/python3 examples/demo.py [path/to/kvnode]    (run by `make demo`)
"""

import asyncio
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from errinj import RESTClient, injection_event_stream  # noqa: E402

READY = re.compile(r"kvnode ready listen=(\S+):(\d+) api=(\S+):(\d+) shards=(\d+)")
TIMEOUT = 20


def say(step: str, text: str = "") -> None:
    print(f"{step:>9}  {text}", flush=True)


def shard_of(key: str, shards: int) -> int:
    h = 14695981039346656037
    for b in key.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % shards


def find_in_log(log: Path, pattern: str, deadline: float):
    """Log parsing as ScyllaDB's test/pylib/log_browsing.py does it: read the new lines, sleep
    10 ms at the end of the file, match a regex."""
    rx = re.compile(pattern)
    with open(log, errors="replace") as f:
        while time.monotonic() < deadline:
            at = f.tell()
            line = f.readline()
            if line.endswith("\n"):
                if rx.search(line):
                    return line.rstrip("\n")
                continue
            f.seek(at)
            time.sleep(0.01)  # allow-sleep: the method being shown
    raise TimeoutError(f"{pattern!r} never appeared in {log}")


async def main(kvnode: str) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="errinj-demo-"))
    log = tmp / "kvnode.log"
    proc = await asyncio.create_subprocess_exec(
        kvnode, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--shards", "4", "--log", str(log),
        stdout=asyncio.subprocess.PIPE)
    try:
        ready = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        m = READY.search(ready)
        if not m:
            raise RuntimeError(f"kvnode did not start: {ready!r}")
        ip, port, api_port, shards = m.group(1), int(m.group(2)), int(m.group(4)), int(m.group(5))
        node = (ip, api_port)
        say("start", f"kvnode with {shards} shards: data on {ip}:{port}, errinj API on {ip}:{api_port}")
        api = RESTClient()
        reader, writer = await asyncio.open_connection(ip, port)

        async def call(line: str) -> str:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode().strip()

        key = "user:42"
        points = await api.get_points(node)
        say("points", ", ".join(f"{p['name']} ({p['type']})" for p in points))

        async with injection_event_stream(ip, port=api_port, injection="kv_put_before_apply",
                                          phase="all") as stream:
            say("stream", "subscribed to the event stream (the server said ': connected')")
            await api.enable_injection(node, "kv_put_before_apply", one_shot=False, parameters={"key": key})
            say("enable", f"kv_put_before_apply, parameters key={key}: writes to {key} park before they apply")

            log_start = log.stat().st_size
            sent = time.monotonic()
            writer.write(f"PUT {key} alice\n".encode())
            await writer.drain()
            say("PUT", f"{key} = alice sent (it belongs to shard {shard_of(key, shards)})")

            waiting = await stream.wait_for_injection("kv_put_before_apply", phase="waiting", timeout=TIMEOUT)
            event_after = time.monotonic() - sent
            lag_us = (time.time_ns() - waiting["ts_ns"]) / 1e3
            say("event", f"#{waiting['seq']} {waiting['injection']} {waiting['phase']} on shard {waiting['shard']} "
                         f"at {waiting['file'].rsplit('/', 1)[-1]}:{waiting['line']}, {event_after * 1e3:.2f} ms after "
                         f"the PUT was sent ({lag_us:.0f} us after the server published it)")
            say("waiters", f"{await api.get_injection_waiters(node, 'kv_put_before_apply')} write parked")
            other_reader, other_writer = await asyncio.open_connection(ip, port)
            other_key = next(f"other{i}" for i in range(100) if shard_of(f"other{i}", shards) != waiting["shard"])
            other_writer.write(f"PUT {other_key} x\n".encode())
            await other_writer.drain()
            reply = (await asyncio.wait_for(other_reader.readline(), TIMEOUT)).decode().strip()
            say("PUT", f"{other_key} = x on shard {shard_of(other_key, shards)} -> {reply}")
            other_writer.close()

            line = await asyncio.to_thread(find_in_log, log, r"kv_put_before_apply: waiting for message",
                                           time.monotonic() + TIMEOUT)
            log_after = time.monotonic() - sent
            say("log", f"the same hit by log parsing: {log_after * 1e3:.2f} ms after the PUT")
            say("", f"  {line}")
            say("compare", f"the event came {max(log_after - event_after, 0) * 1e3:.2f} ms before the log line "
                           f"was found ({log_after / max(event_after, 1e-9):.1f}x sooner)")

            await api.message_injection(node, "kv_put_before_apply")
            say("message", "sent to kv_put_before_apply")
            released = await stream.wait_for_injection("kv_put_before_apply", phase="released", timeout=TIMEOUT)
            say("event", f"#{released['seq']} {released['injection']} {released['phase']} on shard {released['shard']}")
            reply = (await asyncio.wait_for(reader.readline(), TIMEOUT)).decode().strip()
            say("PUT", f"{key} answered {reply}; GET {key} -> {await call(f'GET {key}')}")
            await api.disable_injection(node, "kv_put_before_apply")
            enters = await api.get_injection_enter_count(node, "kv_put_before_apply")
            say("disable", f"kv_put_before_apply; enters={enters} (every PUT hits the point; the handler "
                           f"parked only {key})")

        writer.close()
        await api.close()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), TIMEOUT)
        say("stop", f"kvnode exited with {rc}")
        return rc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


if __name__ == "__main__":
    default = ROOT / "build" / "examples" / "kvnode"
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KVNODE", str(default)))))
