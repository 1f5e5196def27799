"""errinj-run with programs nobody here wrote, from Debian packages: sqlite3 (a journal write that
fails with ENOSPC), redis-server (a failed accept, a reset read, a short write) and coreutils cp (a
short write, and a write that fails). Each test enables the fault over REST with the event stream
open, makes the program act, waits for the event and then checks what the program did."""
import asyncio
import os
import shutil
import socket
import subprocess

import pytest
from errinj import injection_event_stream

from conftest import DEADLINE, detail_of, free_port


def need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None)
    if path is None:
        pytest.fail(f"{program} is not installed (scripts/deps.sh check installs it)")
    return path


# ---- sqlite3 ------------------------------------------------------------------------------

def make_db(path):
    subprocess.run([need("sqlite3"), str(path),
                    "create table t(k integer primary key, v text);"
                    "insert into t select value, 'row' || value from generate_series(1, 200);"],
                   check=True, timeout=DEADLINE)


def db_state(path):
    out = subprocess.run([need("sqlite3"), str(path), "pragma integrity_check; select count(*), sum(k) from t;"],
                         capture_output=True, text=True, check=True, timeout=DEADLINE).stdout
    return out.split()


async def test_sqlite3_journal_write_enospc_reports_disk_full_and_keeps_the_database(started, tmp_path):
    db = tmp_path / "db.sqlite"
    make_db(db)
    before = db_state(db)
    assert before == ["ok", "200|20100"]
    prog = await started([need("sqlite3"), db])
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.write", one_shot=True, path="*-journal", errno="ENOSPC")
        await prog.send("update t set v = v || '-changed';")
        prog.proc.stdin.close()
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    rc = await prog.wait_exit()
    d = detail_of(event)
    assert d["path"].endswith("db.sqlite-journal"), d
    assert d["function"] in ("write", "pwrite64", "pwrite") and d["size"] > 0 and d["fd"] >= 0, d
    assert "database or disk is full" in prog.stderr.decode(), prog.stderr
    assert rc != 0
    assert db_state(db) == before
    assert not (tmp_path / "db.sqlite-journal").exists()


async def test_sqlite3_fourth_journal_write_fails_with_the_term_3_off_1_on(started, tmp_path):
    db = tmp_path / "db.sqlite"
    subprocess.run([need("sqlite3"), str(db),
                    "create table t(k integer primary key, v text);"
                    "insert into t select value, printf('%0200d', value) from generate_series(1, 3000);"],
                   check=True, timeout=DEADLINE)
    before = db_state(db)
    prog = await started([need("sqlite3"), db])
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        status, body = await prog.request("POST", "/injection/libc.write", params={"term": "3*off->1*on"},
                                          json={"path": "*-journal", "errno": "ENOSPC"})
        assert status == 200, body
        await prog.send("update t set v = v || 'x';")
        prog.proc.stdin.close()
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    rc = await prog.wait_exit()
    assert (event["eval"], event["action"]) == (4, "on"), event
    assert detail_of(event)["path"].endswith("db.sqlite-journal")
    assert "database or disk is full" in prog.stderr.decode(), prog.stderr
    assert rc != 0
    assert db_state(db) == before


async def test_sqlite3_with_the_journal_fault_off_changes_the_database(started, tmp_path):
    """The control: the same session without the fault commits (so the test above is the fault)."""
    db = tmp_path / "db.sqlite"
    make_db(db)
    prog = await started([need("sqlite3"), db])
    await prog.enable("libc.write", one_shot=True, path="*.nothing-matches", errno="ENOSPC")
    await prog.send("update t set k = k + 1000;")
    prog.proc.stdin.close()
    assert await prog.wait_exit() == 0, prog.stderr
    assert db_state(db) == ["ok", "200|220100"]


# ---- redis-server -----------------------------------------------------------------------------

class Redis:
    def __init__(self, port):
        self.port = port

    async def connect(self):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), DEADLINE)
        return reader, writer

    @staticmethod
    async def command(reader, writer, *args) -> bytes:
        parts = [f"*{len(args)}\r\n".encode()]
        for a in args:
            a = str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        writer.write(b"".join(parts))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), DEADLINE)
        if line.startswith(b"$") and line != b"$-1\r\n":
            body = await asyncio.wait_for(reader.readexactly(int(line[1:]) + 2), DEADLINE)
            return body[:-2]
        return line.rstrip(b"\r\n")


async def start_redis(started, tmp_path):
    port = free_port()
    prog = await started([need("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp_path, "--loglevel", "verbose"], stdin=False)
    redis = Redis(port)
    for _ in range(int(DEADLINE / 0.05)):
        try:
            r, w = await redis.connect()
            if await Redis.command(r, w, "PING") == b"+PONG":
                w.close()
                return prog, redis
        except OSError:
            pass
        await asyncio.sleep(0.05)  # allow-sleep: the interval of a bounded poll
    pytest.fail(f"redis-server never answered PING; stderr {bytes(prog.stderr)!r}")


async def test_redis_failed_accept_is_logged_and_the_server_keeps_serving(started, tmp_path):
    prog, redis = await start_redis(started, tmp_path)
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.accept", one_shot=True, errno="EMFILE")
        r, w = await redis.connect()
        event = await stream.wait_for_injection("libc.accept", timeout=DEADLINE)
        d = detail_of(event)
        assert d["function"] == "accept4" and d["path"] == f"tcp:127.0.0.1:{redis.port}", d
        # The connection stayed in the listen queue; the next accept takes it.
        assert await Redis.command(r, w, "SET", "k", "v") == b"+OK"
        assert await Redis.command(r, w, "GET", "k") == b"v"
        w.close()
    assert b"Accepting client connection: accept: Too many open files" in bytes(prog.stdout), bytes(prog.stdout)[-2000:]


async def test_redis_reset_read_drops_that_client_and_serves_the_others(started, tmp_path):
    prog, redis = await start_redis(started, tmp_path)
    r1, w1 = await redis.connect()
    r2, w2 = await redis.connect()
    assert await Redis.command(r1, w1, "PING") == b"+PONG"
    assert await Redis.command(r2, w2, "PING") == b"+PONG"
    victim_port = w1.get_extra_info("sockname")[1]
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        # Redis reads its clients with read(2): the point is libc.read, on that client's socket.
        await prog.enable("libc.read", one_shot=True, errno="ECONNRESET", path=f"tcp:127.0.0.1:{victim_port}")
        w1.write(b"*1\r\n$4\r\nPING\r\n")
        await w1.drain()
        event = await stream.wait_for_injection("libc.read", timeout=DEADLINE)
        assert detail_of(event)["path"] == f"tcp:127.0.0.1:{victim_port}"
        # Redis closes the client it could not read (a reset, as it left a request unread); the
        # other is served as before.
        try:
            assert await asyncio.wait_for(r1.read(), DEADLINE) == b""
        except ConnectionResetError:
            pass
        assert await Redis.command(r2, w2, "SET", "a", "1") == b"+OK"
        r3, w3 = await redis.connect()
        assert await Redis.command(r3, w3, "GET", "a") == b"1"
    for w in (w1, w2, w3):
        w.close()
    assert b"Connection reset by peer" in bytes(prog.stdout), bytes(prog.stdout)[-2000:]


async def test_redis_short_write_still_delivers_the_whole_reply(started, tmp_path):
    prog, redis = await start_redis(started, tmp_path)
    r, w = await redis.connect()
    value = "x" * 100000
    assert await Redis.command(r, w, "SET", "big", value) == b"+OK"
    client_port = w.get_extra_info("sockname")[1]
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.write", one_shot=True, short=1000, path=f"tcp:127.0.0.1:{client_port}")
        got = await Redis.command(r, w, "GET", "big")
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    d = detail_of(event)
    assert d["function"] in ("write", "writev") and d["size"] > 1000, d
    assert got == value.encode()
    assert await Redis.command(r, w, "PING") == b"+PONG"
    w.close()


# ---- coreutils cp -----------------------------------------------------------------------------

async def cp_from_fifo(started, tmp_path, data: bytes, **params):
    """cp from a FIFO: cp blocks in open() until the test writes, so the fault is enabled first."""
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    dst = tmp_path / "copy.out"
    prog = await started([need("cp"), fifo, dst], stdin=False)
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.write", **params)
        loop = asyncio.get_running_loop()

        def feed():
            # cp stops reading when its write fails: the FIFO's reader may go away before all of
            # the data is in. Tests that need the whole copy compare it byte for byte.
            try:
                with open(fifo, "wb") as f:
                    f.write(data)
            except BrokenPipeError:
                pass
        await loop.run_in_executor(None, feed)
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    rc = await prog.wait_exit()
    return prog, rc, event, dst


async def test_cp_copes_with_short_writes_and_the_copy_is_complete(started, tmp_path):
    data = os.urandom(300000)
    prog, rc, event, dst = await cp_from_fifo(started, tmp_path, data, short=1000, path="*/copy.out")
    d = detail_of(event)
    assert d["path"].endswith("copy.out") and d["function"] in ("write", "copy_file_range"), d
    assert rc == 0, prog.stderr
    assert dst.read_bytes() == data


async def test_cp_reports_a_failing_write(started, tmp_path):
    data = os.urandom(50000)
    prog, rc, event, dst = await cp_from_fifo(started, tmp_path, data, one_shot=True, errno="ENOSPC",
                                              path="*/copy.out")
    assert detail_of(event)["path"].endswith("copy.out")
    assert rc == 1
    assert "No space left on device" in prog.stderr.decode(), prog.stderr
