#!/usr/bin/python3
"""latency.py - a test written in Python that makes kvnode fire a point and waits to know it did.

    /usr/bin/python3 bench/latency.py --mode python|ws|wait|log|poll --kv HOST:PORT --api HOST:PORT
                                      [--log FILE] [--point NAME] [--hits N] [--warmup N]
                                      [--max-delay-ms MS] --out FILE

Each hit is what a test does: it starts waiting, the server reaches the point a random delay later
(uniform in [0, max-delay) ms, the same schedule as bench_latency), and the test learns that it
did. The fire is a PUT on kvnode's line protocol with the point enabled (kv_put_fail fires once per
PUT). t_send is time.time_ns() (CLOCK_REALTIME) just before the PUT is written; t_known is
time.time_ns() when the waiting call returned. One line per hit goes to FILE: "t_send t_known
ts_ns" (ts_ns, the event's publication time, is 0 where the method cannot know it).

Modes:
  python  errinj's own client: injection_event_stream() and stream.wait_for_injection()
          (python/errinj; exits 77 when it cannot be imported).
  ws      errinj's WebSocket session: injection_session() and session.wait_for_injection().
  wait    the server-side long-poll wait: RESTClient.wait_for_injection() (GET .../wait) with
          `after` the seq of the previous hit's event, so a wait that reaches the server after its
          fire still sees it; no stream.
  log     ScyllaDB's log browsing, test/pylib/log_browsing.py ScyllaLogFile as of 2026: mark() is
          the file's size, wait_for() opens the file, seeks to the mark and reads lines with
          readline() in a thread-pool executor, sleeps 10 ms (asyncio.sleep(0.01)) whenever it
          reads nothing, and matches each line with re.search. Re-implemented here with the same
          steps; kvnode writes each log line with one write(), so nothing waits in a buffer.
  poll    ScyllaDB's enter-count polling: test/pylib/util.py wait_for(pred, deadline, period=0.1,
          backoff_factor=1.5, max_period=1.0) around GET /v2/error_injection/injection/NAME/enters
          over one aiohttp session, as its REST client does; pred returns True once the count
          reaches the hit's number. Re-implemented with the same schedule.
"""

import argparse
import asyncio
import concurrent.futures
import random
import re
import sys
import time
from pathlib import Path


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


# ---- ScyllaDB's ways, re-implemented step for step ---------------------------------------------

class LogFile:
    """ScyllaLogFile's mark() and wait_for(): readline in an executor, 10 ms sleep at end of file."""

    def __init__(self, pool, path):
        self.pool = pool
        self.file = Path(path)

    async def _run(self, func, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, func, *args)

    async def mark(self):
        return (await self._run(self.file.stat)).st_size

    async def wait_for(self, *exprs, from_mark=None, timeout=600):
        patterns = [re.compile(e) for e in exprs]
        matches = []
        with self.file.open(encoding="utf-8") as log_file:
            if from_mark is not None:
                await self._run(log_file.seek, from_mark)
            async with asyncio.timeout(timeout):
                line = ""
                while patterns:
                    line += await self._run(log_file.readline)
                    if line:
                        for pattern in patterns.copy():
                            if match := pattern.search(line):
                                matches.append((line, match))
                                patterns.remove(pattern)
                        if line[-1] == "\n":
                            line = ""
                    else:
                        await asyncio.sleep(0.01)  # allow-sleep: log_browsing.py's poll, the method measured
            return await self._run(log_file.tell), matches


async def wait_for(pred, deadline, period=0.1, backoff_factor=1.5, max_period=1.0):
    """util.py's wait_for: call pred, sleep period, grow it by backoff_factor up to max_period."""
    while True:
        if time.time() >= deadline:
            raise AssertionError("wait_for timed out")
        try:
            res = await pred()
        except Exception:  # noqa: BLE001 (as util.py: an exception counts as "not yet")
            res = None
        if res is not None:
            return res
        await asyncio.sleep(period)  # allow-sleep: util.py's wait_for backoff, the method measured
        period *= backoff_factor
        if max_period is not None:
            period = min(period, max_period)


# ---- the bench -------------------------------------------------------------------------------

class KV:
    """kvnode's line protocol on one connection."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.key = 0

    @classmethod
    async def connect(cls, addr):
        host, port = split_addr(addr)
        return cls(*await asyncio.open_connection(host, port))

    async def put(self):
        """Writes a PUT and returns t_send; the reply is read by reply()."""
        self.key += 1
        data = f"PUT bench_py_{self.key} v\n".encode()
        t_send = time.time_ns()
        self.writer.write(data)
        return t_send

    async def reply(self):
        return await self.reader.readline()


async def run(args):
    rng = random.Random(args.seed)
    kv = await KV.connect(args.kv)
    api_host, api_port = split_addr(args.api)
    samples = []

    async def hit(start_wait, recorded):
        """One hit: start_wait() begins the wait and returns an awaitable of (ts_ns or 0)."""
        waiter = await start_wait()
        await asyncio.sleep(rng.random() * args.max_delay_ms / 1000.0)  # allow-sleep: random gap between hits
        t_send = await kv.put()
        ts_ns = await waiter
        t_known = time.time_ns()
        await kv.reply()
        if recorded:
            samples.append((t_send, t_known, ts_ns))

    total = args.warmup + args.hits
    if args.mode == "python":
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
            from errinj import injection_event_stream  # noqa: PLC0415
        except ImportError as exc:
            print(f"latency.py: the Python client cannot be imported ({exc}); skipped", file=sys.stderr)
            return 77
        async with injection_event_stream(api_host, port=api_port, injection=args.point) as stream:
            async def start_wait():
                task = asyncio.ensure_future(stream.wait_for_injection(args.point, timeout=10))

                async def done():
                    return int((await task).get("ts_ns", 0))
                return done()

            for i in range(total):
                await hit(start_wait, i >= args.warmup)
    elif args.mode == "ws":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
        from errinj import injection_session  # noqa: PLC0415
        async with injection_session(api_host, port=api_port, injection=args.point) as session:
            async def start_wait():
                task = asyncio.ensure_future(session.wait_for_injection(args.point, timeout=10))

                async def done():
                    return int((await task).get("ts_ns", 0))
                return done()
            for i in range(total):
                await hit(start_wait, i >= args.warmup)
    elif args.mode == "wait":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
        from errinj import RESTClient  # noqa: PLC0415
        import aiohttp  # noqa: PLC0415
        api = RESTClient(port=api_port)
        async with aiohttp.ClientSession() as status_session:
            async with status_session.get(f"http://{api_host}:{api_port}/v2/error_injection/status") as resp:
                last = [int((await resp.json())["seq"])]

        async def start_wait():
            task = asyncio.ensure_future(api.wait_for_injection(api_host, args.point, timeout=10, after=last[0]))

            async def done():
                event = (await task)[0]
                last[0] = int(event["seq"])
                return int(event.get("ts_ns", 0))
            return done()
        for i in range(total):
            await hit(start_wait, i >= args.warmup)
        close = getattr(api, "close", None)
        if close is not None:
            await close()
    elif args.mode == "log":
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        log = LogFile(pool, args.log)
        pattern = f'Triggering injection "{re.escape(args.point)}"'

        async def start_wait():
            mark = await log.mark()
            task = asyncio.ensure_future(log.wait_for(pattern, from_mark=mark, timeout=30))

            async def done():
                await task
                return 0
            return done()

        for i in range(total):
            await hit(start_wait, i >= args.warmup)
        pool.shutdown()
    elif args.mode == "poll":
        import aiohttp  # noqa: PLC0415 (Debian's python3-aiohttp)
        url = f"http://{api_host}:{api_port}/v2/error_injection/injection/{args.point}/enters"
        async with aiohttp.ClientSession() as session:
            async def enters():
                async with session.get(url) as resp:
                    resp.raise_for_status()
                    return int(await resp.text())

            base = await enters()
            fired = 0

            async def start_wait():
                want = base + fired + 1

                async def reached():
                    return True if await enters() >= want else None
                task = asyncio.ensure_future(wait_for(reached, time.time() + 30))

                async def done():
                    await task
                    return 0
                return done()

            for i in range(total):
                await hit(start_wait, i >= args.warmup)
                fired += 1
    else:
        print(f"latency.py: unknown mode {args.mode}", file=sys.stderr)
        return 2

    with open(args.out, "w", encoding="ascii") as out:
        for t_send, t_known, ts_ns in samples:
            out.write(f"{t_send} {t_known} {ts_ns}\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", required=True, choices=["python", "ws", "wait", "log", "poll"])
    ap.add_argument("--kv", required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--log")
    ap.add_argument("--point", default="kv_put_fail")
    ap.add_argument("--hits", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-delay-ms", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.mode == "log" and not args.log:
        ap.error("--mode log needs --log FILE")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
