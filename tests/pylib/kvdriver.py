"""The driver of kvnode (examples/kvnode), the sharded demo server, shared by the end-to-end suites
(tests/integration/kvnode, tests/dashboard) and errinjctl's many-node tests (cli/tests).

kvnode listens for its line protocol and for errinj's API on loopback port 0 and prints one line
``kvnode ready listen=IP:PORT api=IP:PORT shards=N`` once both listen. ``start_kvnode`` (asyncio)
and ``SyncKVNode`` (for tests written without asyncio) start one, read that line with a deadline
and give its addresses, its log file, and kvnode's key-to-shard mapping; ``stop()`` ends it with
SIGTERM (it must exit 0), ``kill()`` with SIGKILL.
"""
import asyncio
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(rb"kvnode ready listen=(\S+):(\d+) api=(\S+):(\d+) shards=(\d+)")
DEADLINE = 20.0


def kvnode_path() -> Path:
    env = os.environ.get("ERRINJ_KVNODE")
    if env:
        return Path(env)
    build = Path(os.environ.get("ERRINJ_BUILD_DIR") or ROOT / "build")
    return build / "examples" / "kvnode"


def kvnode_argv(log: Path, shards: int = 4, token: Optional[str] = None) -> List[str]:
    path = kvnode_path()
    if not path.exists():
        pytest.fail(f"kvnode not found at {path}: build it, or set ERRINJ_KVNODE")
    argv = [str(path), "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--shards", str(shards),
            "--log", str(log)]
    if token:
        argv += ["--token", token]
    return argv


def parse_ready(line: bytes) -> Tuple[str, int, str, int, int]:
    """(data ip, data port, api ip, api port, shards) from kvnode's ready line."""
    m = READY.search(line)
    assert m, f"kvnode did not say it was ready: {line!r}"
    return m.group(1).decode(), int(m.group(2)), m.group(3).decode(), int(m.group(4)), int(m.group(5))


class KVNodeAddress:
    """Where a started kvnode listens, and how it shards keys."""

    def __init__(self, ready: Tuple[str, int, str, int, int], log: Path) -> None:
        self.ip, self.port, self.api_ip, self.api_port, self.shards = ready
        self.log = log

    @property
    def node(self) -> Tuple[str, int]:
        """The errinj API as the Python client names a node: ``(ip, port)``."""
        return (self.api_ip, self.api_port)

    @property
    def label(self) -> str:
        """The API's ``ip:port``, as errinjctl and the event stream tag the node."""
        return f"{self.api_ip}:{self.api_port}"

    @property
    def url(self) -> str:
        return f"http://{self.label}"

    def shard_of(self, key: str) -> int:
        """kvnode's key-to-shard mapping: FNV-1a 64 of the key, modulo the shard count."""
        h = 14695981039346656037
        for b in key.encode():
            h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        return h % self.shards

    def key_on_shard(self, shard: int, prefix: str = "k") -> str:
        for i in range(10000):
            if self.shard_of(f"{prefix}{i}") == shard:
                return f"{prefix}{i}"
        raise AssertionError(f"no key for shard {shard}")


class KVNode(KVNodeAddress):
    """A kvnode started by ``start_kvnode`` (an asyncio process)."""

    def __init__(self, proc: asyncio.subprocess.Process, ready, log: Path) -> None:
        super().__init__(ready, log)
        self.proc = proc

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), DEADLINE)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def start_kvnode(tmp_path: Path, name: str = "node", shards: int = 4, token: Optional[str] = None) -> KVNode:
    """Starts a kvnode logging to ``tmp_path/name.log`` and returns once it is ready."""
    log = tmp_path / f"{name}.log"
    proc = await asyncio.create_subprocess_exec(*kvnode_argv(log, shards, token), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        return KVNode(proc, parse_ready(line), log)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


class SyncKVNode(KVNodeAddress):
    """A kvnode for synchronous tests: ``SyncKVNode(tmp_path, "n1", shards=2)`` returns once it is
    ready. ``stderr`` is where its standard error goes (default: discarded); ``env`` its
    environment (default: this process's); ``deadline`` bounds its start and its stop."""

    def __init__(self, tmp_path: Path, name: str = "node", shards: int = 4, token: Optional[str] = None, *,
                 stderr=subprocess.DEVNULL, env=None, deadline: float = DEADLINE) -> None:
        log = tmp_path / f"{name}.log"
        self.deadline = deadline
        self.proc = subprocess.Popen(kvnode_argv(log, shards, token), stdout=subprocess.PIPE, stderr=stderr, env=env)
        try:
            super().__init__(parse_ready(self._read_line(deadline)), log)
        except BaseException:
            self.kill()
            raise

    def _read_line(self, timeout: float) -> bytes:
        """The first line of its output, or what came of it by the deadline."""
        assert self.proc.stdout is not None
        data = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not data.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    break
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                data += chunk
        return data

    def stop(self) -> Optional[int]:
        """SIGTERM, then its exit status; fails the test if it is still running after the deadline."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.deadline)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail("kvnode did not exit within the deadline after SIGTERM")
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()
