"""The driver of errinj-testhost (tests/host/testhost.c), shared by the integration suite
(tests/integration) and errinjctl's tests (cli/tests).

errinj-testhost links the library, starts the HTTP server on a free loopback port, prints
``port N`` and then fires points on command: one command a line on stdin, one answer line each,
in order (``ok N``, ``started ID``, ``error ...``); a thread parked by ``wait`` prints
``done ID RC`` whenever it ends. ``Host`` speaks that protocol with asyncio; ``SyncHost`` is the
same driver for tests written without asyncio (it runs the asyncio one on a loop in a thread of
its own). ``start_host(...)`` starts one with the server options a test asks for, under the
sanitizer settings the suites use; ``exit_problems(h)`` says what is wrong with how it ended.

Nothing here sleeps to synchronise: every wait is on output, with a deadline.
"""
import asyncio
import os
import re
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable, List, Optional, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/v2/error_injection"

# Deadlines are upper bounds for things that normally take milliseconds; they are generous so
# that sanitizer builds (TSan runs several times slower) pass without making passing runs slower.
DEADLINE = float(os.environ.get("ERRINJ_TEST_DEADLINE", "20"))
EXIT_DEADLINE = 30.0

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "runtime error", "ERROR: ThreadSanitizer")
HOST_SEED = "7"   # ERRINJ_SEED of every test host (the seed of enables that give none)

T = TypeVar("T")


def find_testhost() -> Path:
    env = os.environ.get("ERRINJ_TESTHOST")
    if env:
        return Path(env)
    build = os.environ.get("ERRINJ_BUILD_DIR")
    candidates = [Path(build) / "tests" / "errinj-testhost"] if build else []
    candidates.append(REPO / "build" / "tests" / "errinj-testhost")
    for c in candidates:
        if c.exists():
            return c
    pytest.fail("errinj-testhost not found: set ERRINJ_TESTHOST to its path (cmake --build builds it)")


class Host:
    """One errinj-testhost process. Commands are answered one line each, in order; `done ID RC`
    lines come from parked threads at any time and are routed to their own futures."""

    def __init__(self, proc: asyncio.subprocess.Process, argv):
        self.proc = proc
        self.argv = argv
        self.port: Optional[int] = None
        self.stderr = bytearray()
        self.stdout_log = []
        self._answers: asyncio.Queue = asyncio.Queue()
        self._done = {}
        self._port_future = asyncio.get_running_loop().create_future()
        self._lock = asyncio.Lock()
        self._quit_sent = False
        self.returncode: Optional[int] = None
        self._stdout_task = asyncio.create_task(self._read_stdout())
        self._stderr_task = asyncio.create_task(self._read_stderr())

    # -- output demultiplexing
    def _done_future(self, wid: int) -> asyncio.Future:
        if wid not in self._done:
            self._done[wid] = asyncio.get_running_loop().create_future()
        return self._done[wid]

    async def _read_stdout(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_log.append(line)
            m = re.fullmatch(r"done (\d+) (-?\d+)", line)
            if m:
                fut = self._done_future(int(m.group(1)))
                if not fut.done():
                    fut.set_result(int(m.group(2)))
            elif line.startswith("port ") and not self._port_future.done():
                self._port_future.set_result(int(line.split()[1]))
            else:
                self._answers.put_nowait(line)
        if not self._port_future.done():
            self._port_future.set_exception(RuntimeError("test host closed stdout before printing its port"))

    async def _read_stderr(self):
        while True:
            chunk = await self.proc.stderr.read(65536)
            if not chunk:
                break
            self.stderr += chunk

    # -- commands
    async def wait_port(self, timeout: float = DEADLINE) -> int:
        try:
            self.port = await asyncio.wait_for(asyncio.shield(self._port_future), timeout)
        except (asyncio.TimeoutError, RuntimeError) as e:
            pytest.fail(f"test host {self.argv} did not print its port ({e!r}); stderr: {self.stderr_text()}")
        return self.port

    async def cmd(self, line: str, timeout: float = DEADLINE) -> str:
        """Sends one command and returns its answer line (e.g. 'ok 0')."""
        async with self._lock:
            self.proc.stdin.write((line + "\n").encode())
            await self.proc.stdin.drain()
            try:
                answer = await asyncio.wait_for(self._answers.get(), timeout)
            except asyncio.TimeoutError:
                pytest.fail(f"test host did not answer {line!r} within {timeout}s; stderr: {self.stderr_text()}")
        if answer.startswith("error"):
            pytest.fail(f"test host refused {line!r}: {answer}")
        return answer

    async def ok(self, line: str, timeout: float = DEADLINE) -> int:
        """Sends a command answered `ok N` and returns N."""
        answer = await self.cmd(line, timeout)
        parts = answer.split()
        assert parts[0] == "ok", f"{line!r} answered {answer!r}"
        return int(parts[1]) if len(parts) > 1 else 0

    async def fire(self, name: str, type_: str = "enter", times: int = 1) -> int:
        return await self.ok(f"fire {type_} {name} {times}")

    async def start_wait(self, name: str, timeout_ms: int) -> int:
        """Parks a new thread at wait_for_message(name); returns its id (see done())."""
        answer = await self.cmd(f"wait {name} {timeout_ms}")
        m = re.fullmatch(r"started (\d+)", answer)
        assert m, f"wait answered {answer!r}"
        return int(m.group(1))

    async def start_site_wait(self, timeout_ms: int) -> int:
        answer = await self.cmd(f"site-wait {timeout_ms}")
        m = re.fullmatch(r"started (\d+)", answer)
        assert m, f"site-wait answered {answer!r}"
        return int(m.group(1))

    async def done(self, wid: int, timeout: float = DEADLINE) -> int:
        """The result a parked thread printed as `done ID RC`."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._done_future(wid)), timeout)
        except asyncio.TimeoutError:
            pytest.fail(f"parked thread {wid} did not finish within {timeout}s")

    def done_already(self, wid: int) -> bool:
        return wid in self._done and self._done[wid].done()

    # -- shutdown
    async def send_quit(self):
        if not self._quit_sent and self.proc.returncode is None:
            self._quit_sent = True
            try:
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
                self.proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def wait_gone(self, timeout: float = EXIT_DEADLINE) -> bool:
        """Waits for the process to exit, killing it if it has not within ``timeout``, and for
        its output to be read. True if it exited by itself."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
            exited = True
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            exited = False
        await asyncio.wait_for(asyncio.gather(self._stdout_task, self._stderr_task), DEADLINE)
        self.returncode = self.proc.returncode
        return exited

    async def wait_exit(self, timeout: float = EXIT_DEADLINE) -> int:
        if not await self.wait_gone(timeout):
            pytest.fail(f"test host did not exit within {timeout}s of quit; killed it; stderr: {self.stderr_text()}")
        return self.returncode

    async def kill(self) -> int:
        """Kills the process at once (SIGKILL) and returns its exit status."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.wait_gone()
        return self.returncode

    async def quit(self, timeout: float = EXIT_DEADLINE) -> int:
        await self.send_quit()
        return await self.wait_exit(timeout)

    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    def sanitizer_report(self) -> Optional[str]:
        text = self.stderr_text()
        return text if any(m in text for m in SANITIZER_MARKERS) else None

    # -- URLs
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + PREFIX + path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _sanitizer_env() -> dict:
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if "TSAN_OPTIONS" not in env:
        opts = "second_deadlock_stack=1"
        supp = REPO / "tests" / "tsan.supp"
        if supp.exists() and supp.stat().st_size > 0:
            opts += f" suppressions={supp}"
        env["TSAN_OPTIONS"] = opts
    # The server's own ERRINJ_* variables would change what a test sees.
    for var in ("ERRINJ_HTTP", "ERRINJ_TOKEN", "ERRINJ_AT_STARTUP"):
        env.pop(var, None)
    return env


def host_argv(*, token=None, heartbeat_ms=None, history=None, max_subscribers=None,
              allow_remote=False, listen=None) -> List[str]:
    """The command line of a test host with these server options (None: the server's default)."""
    argv = [str(find_testhost())]
    if listen is not None:
        argv += ["--listen", listen]
    if token is not None:
        argv += ["--token", token]
    if heartbeat_ms is not None:
        argv += ["--heartbeat-ms", str(heartbeat_ms)]
    if history is not None:
        argv += ["--history", str(history)]
    if max_subscribers is not None:
        argv += ["--max-subscribers", str(max_subscribers)]
    if allow_remote:
        argv += ["--allow-remote"]
    return argv


async def start_host(*, extra_env=None, **options) -> Host:
    """Starts a test host (options as for ``host_argv``) and waits for its port."""
    argv = host_argv(**options)
    env = _sanitizer_env()
    # A known process seed, so the seed that GET .../injection/{name} shows is known too.
    env["ERRINJ_SEED"] = HOST_SEED
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    h = Host(proc, argv)
    await h.wait_port()
    return h


async def exit_problems(h: Host) -> List[str]:
    """Quits ``h`` if it still runs and returns what was wrong with its end: not exiting within
    EXIT_DEADLINE of quit (it is killed), an exit status other than 0, a sanitizer report."""
    problems = []
    if h.returncode is None:
        await h.send_quit()
        if not await h.wait_gone(EXIT_DEADLINE):
            problems.append(f"test host did not exit within {EXIT_DEADLINE}s of quit (killed)")
    if h.returncode != 0:
        problems.append(f"test host exited with {h.returncode}, expected 0")
    if h.sanitizer_report():
        problems.append("sanitizer report on the test host's stderr")
    return problems


async def run_host_expecting_failure(*args, extra_env=None):
    """Runs the test host with args; it must exit non-zero without printing a port."""
    env = _sanitizer_env()
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        str(find_testhost()), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(b"quit\n"), EXIT_DEADLINE)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"test host {args} neither started nor failed within {EXIT_DEADLINE}s")
    err_text = err.decode(errors="replace")
    assert not any(m in err_text for m in SANITIZER_MARKERS), f"sanitizer report:\n{err_text}"
    return proc.returncode, out.decode(), err_text


class SyncHost:
    """A test host for synchronous tests: the same ``Host`` on an event loop in its own thread,
    each method waiting for the answer. ``SyncHost(history=4)`` takes ``start_host``'s options;
    ``quit()`` returns the exit status and fails the test on a sanitizer report."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="testhost-loop", daemon=True)
        self._thread.start()
        try:
            self.host: Host = self._call(lambda: start_host(**options))
        except BaseException:
            self._stop_loop()
            raise
        self.port = self.host.port
        self.url = self.host.base

    def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        # pytest.fail raises a BaseException, which an asyncio task must not let out into the loop:
        # it is caught there and raised again here, in the test's thread.
        async def run():
            try:
                return True, await make()
            except BaseException as exc:  # noqa: B902
                return False, exc
        done, value = asyncio.run_coroutine_threadsafe(run(), self._loop).result()
        if not done:
            raise value
        return value

    def command(self, line: str, timeout: float = DEADLINE) -> str:
        return self._call(lambda: self.host.cmd(line, timeout))

    def ok(self, line: str, timeout: float = DEADLINE) -> int:
        return self._call(lambda: self.host.ok(line, timeout))

    def fire(self, name: str, type_: str = "enter", times: int = 1) -> int:
        return self._call(lambda: self.host.fire(name, type_, times))

    def start_wait(self, name: str, timeout_ms: int) -> int:
        return self._call(lambda: self.host.start_wait(name, timeout_ms))

    def done(self, wid: int, timeout: float = DEADLINE) -> int:
        return self._call(lambda: self.host.done(wid, timeout))

    def kill(self) -> int:
        """Kills the host at once (SIGKILL, so no exit checks) and returns its exit status."""
        try:
            return self._call(self.host.kill)
        finally:
            self._stop_loop()

    @property
    def pid(self) -> int:
        return self.host.proc.pid

    def stderr_text(self) -> str:
        return self.host.stderr_text()

    def quit(self) -> Optional[int]:
        """Quits the host (if it still runs) and returns its exit status; fails the test if it did
        not exit in time or left a sanitizer report."""
        try:
            problems = self._call(lambda: exit_problems(self.host))
        finally:
            self._stop_loop()
        problems = [p for p in problems if not p.startswith("test host exited with")]
        if problems:
            pytest.fail("; ".join(problems) + f"\n--- test host stderr ---\n{self.host.stderr_text()}")
        return self.host.returncode

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(EXIT_DEADLINE)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
