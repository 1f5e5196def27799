"""errinj-run's promises to the program it runs, checked from the program's side (driver.c):
faults with their detail, parameters that do not match passing through uncounted, errno kept on
pass-through, the library's own allocations and the server thread never faulted, before main,
threads, fork (the child keeps the points' state and has no server), exec (a child that cannot
bind runs unharmed; the same pid exec'd gets the server back), and malloc faults that never
deadlock while events flow."""
import asyncio
import json
import os

from errinj import injection_event_stream

from conftest import DRIVER, DEADLINE, detail_of

EIO, ENOSPC, ENOMEM = 5, 28, 12


async def driver(started, tmp_path, **env):
    prog = await started([DRIVER], env=env, lines=True)
    return prog


async def test_a_write_fault_fails_with_errno_and_publishes_its_detail(started, tmp_path):
    prog = await driver(started, tmp_path)
    target = tmp_path / "data.bin"
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.write", one_shot=True, errno="ENOSPC", path="*/data.bin")
        await prog.send(f"write {target}")
        assert await prog.line("write ") == f"write -1 {ENOSPC}"
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    d = detail_of(event)
    assert d["function"] == "write" and d["path"] == str(target) and d["size"] == 1, d
    assert isinstance(d["fd"], int) and d["fd"] >= 0
    assert event["type"] == "exception" and event["file"] == "libc" and event["enters"] == 1
    # One-shot: the next write goes through, with errno untouched.
    await prog.send(f"write {target}")
    assert await prog.line("write ") == "write 1 77"


async def test_calls_the_parameters_do_not_match_pass_through_and_are_not_counted(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.enable("libc.write", one_shot=True, path="*.journal")
    for _ in range(3):
        await prog.send(f"write {tmp_path / 'other.db'}")
        # errno 77: the matching work (lookups, fnmatch, /proc) restored errno.
        assert await prog.line("write ") == "write 1 77"
    status, enters = await prog.request("GET", "/injection/libc.write/enters")
    assert enters.strip() == "0"
    status, state = await prog.request("GET", "/injection/libc.write")
    assert json.loads(state)[0]["enabled"] is True  # the one-shot is still there for a journal write
    await prog.send(f"write {tmp_path / 'x.journal'}")
    assert await prog.line("write ") == f"write -1 {EIO}"  # EIO: the default of file calls


async def test_fd_parameter_selects_one_descriptor(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.send(f"open {tmp_path / 'a'}")
    a = int((await prog.line("opened ")).split()[1])
    await prog.send(f"open {tmp_path / 'b'}")
    b = int((await prog.line("opened ")).split()[1])
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.write", errno="ENOSPC", fd=b)
        await prog.send(f"writefd {a}")
        assert await prog.line("writefd ") == "writefd 1 77"
        await prog.send(f"writefd {b}")
        assert await prog.line("writefd ") == f"writefd -1 {ENOSPC}"
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    assert detail_of(event) == {"function": "write", "fd": b, "path": str(tmp_path / "b"), "size": 1}


async def test_malloc_fault_leaves_the_server_and_library_allocating(started, tmp_path):
    prog = await driver(started, tmp_path)
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.enable("libc.malloc", errno="ENOMEM")
        await prog.send("malloc 4096")
        assert await prog.line("malloc ") == f"malloc null {ENOMEM}"
        # While every application malloc fails, the server thread allocates for each request,
        # event frame and stream: all of that must pass.
        for _ in range(20):
            status, body = await prog.request("GET", "/points")
            assert status == 200 and "libc.malloc" in body
        event = await stream.wait_for_injection("libc.malloc", timeout=DEADLINE)
        assert detail_of(event) == {"function": "malloc", "fd": None, "path": None, "size": 4096}
        await prog.request("DELETE", "/injection/libc.malloc")
    await prog.send("malloc 4096")
    assert await prog.line("malloc ") == "malloc ok 77"


async def test_malloc_faults_in_threads_never_deadlock_while_events_flow(started, tmp_path):
    prog = await driver(started, tmp_path)
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        await prog.send("mallocs 4 5000")
        await prog.line("mallocs-ready")
        await prog.enable("libc.malloc")
        await prog.send("go")
        line = await prog.line("mallocs ", timeout=120)
        assert line == "mallocs 20000", line  # every one failed, none hung
        await stream.wait_for_injection("libc.malloc", timeout=DEADLINE)
        await prog.request("DELETE", "/injection/libc.malloc")
    status, enters = await prog.request("GET", "/injection/libc.malloc/enters")
    assert int(enters) >= 20000


async def test_threads_each_fault_and_every_fault_is_counted(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.enable("libc.write", path="*/threads.out", errno="EIO")
    await prog.send(f"threads 4 500 {tmp_path / 'threads.out'}")
    assert await prog.line("threads ", timeout=60) == "threads 2000"
    status, enters = await prog.request("GET", "/injection/libc.write/enters")
    assert int(enters) == 2000


async def test_a_fault_before_main(started, tmp_path):
    target = tmp_path / "early.out"
    startup = json.dumps([{"name": "libc.write", "one_shot": True,
                           "parameters": {"path": "*/early.out", "errno": "ENOSPC"}}])
    prog = await started([DRIVER], env={"DRIVER_BEFORE_MAIN": str(target), "ERRINJ_AT_STARTUP": startup},
                         lines=True)
    assert await prog.line("before-main ") == f"before-main -1 {ENOSPC}"
    status, enters = await prog.request("GET", "/injection/libc.write/enters")
    assert enters.strip() == "1"


async def test_a_forked_child_keeps_the_points_and_has_no_server(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.enable("libc.write", path="*/forked.out", errno="ENOSPC")
    await prog.send(f"fork {tmp_path / 'forked.out'}")
    assert await prog.line("child write ") == f"child write -1 {ENOSPC}"
    assert await prog.line("forked ") == "forked 0"
    # The parent's server is still the one answering, and still has the point enabled.
    status, state = await prog.request("GET", "/injection/libc.write")
    assert status == 200 and json.loads(state)[0]["enabled"] is True


async def test_an_exec_child_that_cannot_bind_runs_unharmed(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.send("spawn")
    assert await prog.line("exec-child ") == "exec-child ok"
    assert await prog.line("spawned ") == "spawned 0"
    assert b"errinj" not in bytes(prog.stderr), bytes(prog.stderr)
    status, _ = await prog.request("GET", "/status")
    assert status == 200


async def test_exec_in_place_gets_its_own_server_on_the_same_address(started, tmp_path):
    prog = await driver(started, tmp_path)
    status, before = await prog.request("GET", "/status")
    await prog.send("exec")
    await prog.line("ready ")
    # The listener was close-on-exec, so the new image could bind the same port.
    for _ in range(int(DEADLINE / 0.05)):
        try:
            status, after = await prog.request("GET", "/status")
            if status == 200 and json.loads(after)["instance"] != json.loads(before)["instance"]:
                break
        except Exception:  # noqa: BLE001 (the port is briefly closed across the exec)
            pass
        await asyncio.sleep(0.05)  # allow-sleep: the interval of a bounded poll
    else:
        raise AssertionError("the exec'd image never answered on the same port")
    await prog.enable("libc.write", one_shot=True, path="*/after-exec")
    await prog.send(f"write {tmp_path / 'after-exec'}")
    assert await prog.line("write ") == f"write -1 {EIO}"


async def test_a_server_that_cannot_listen_stops_the_program_errinj_run_started(started, tmp_path):
    first = await driver(started, tmp_path)
    second = await started([DRIVER], port=first.port, wait_api=False)
    rc = await second.wait_exit()
    assert rc == 127
    assert b"errinj-run: cannot listen on" in bytes(second.stderr), bytes(second.stderr)


async def test_a_seeded_probability_term_decides_only_the_matching_calls_the_same_way_each_time(started, tmp_path):
    prog = await driver(started, tmp_path)
    hit, miss = tmp_path / "hit.journal", tmp_path / "miss.db"
    patterns = []
    for _ in range(2):
        status, body = await prog.request("POST", "/injection/libc.write", params={"term": "50%on", "seed": "42"},
                                          json={"path": "*.journal", "errno": "ENOSPC"})
        assert status == 200, body
        await prog.send(f"writes 200 {miss}")
        assert await prog.line("writes ") == "writes " + "0" * 200  # not matched: never faulted
        await prog.send(f"writes 200 {hit}")
        patterns.append((await prog.line("writes ")).split()[1])
        status, evals = await prog.request("GET", "/injection/libc.write/evaluations")
        assert int(evals) == 200, evals  # only the matching calls were evaluations
        status, enters = await prog.request("GET", "/injection/libc.write/enters")
        assert int(enters) == patterns[-1].count("1")
        await prog.request("DELETE", "/injection/libc.write")
    assert patterns[0] == patterns[1], patterns
    assert 60 < patterns[0].count("1") < 140, patterns[0]


async def test_a_count_term_counts_only_matching_calls(started, tmp_path):
    prog = await driver(started, tmp_path)
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        status, body = await prog.request("POST", "/injection/libc.write", params={"term": "3*off->1*on"},
                                          json={"path": "*.journal"})
        assert status == 200, body
        for i in range(3):
            await prog.send(f"write {tmp_path / 'x.journal'}")
            assert await prog.line("write ") == "write 1 77"
            await prog.send(f"write {tmp_path / 'other.db'}")  # between them: not an evaluation
            assert await prog.line("write ") == "write 1 77"
        await prog.send(f"write {tmp_path / 'x.journal'}")
        assert await prog.line("write ") == f"write -1 {EIO}"
        event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
    assert (event["eval"], event["action"], event["enters"]) == (4, "on", 1), event
    # The term ran out: the injection disabled itself and later calls pass.
    await prog.send(f"write {tmp_path / 'x.journal'}")
    assert await prog.line("write ") == "write 1 77"
    status, evals = await prog.request("GET", "/injection/libc.write/evaluations")
    assert int(evals) == 4


async def test_variadic_arguments_reach_libc_with_nothing_enabled_and_with_a_point_enabled(started, tmp_path):
    # open's mode and fcntl's argument are passed on as the caller's register held them while
    # nothing is enabled (the fast path), and read and passed explicitly once a point is.
    prog = await driver(started, tmp_path)
    for phase in ("quiet", "armed"):
        d = tmp_path / phase
        d.mkdir()
        if phase == "armed":
            await prog.enable("libc.open", path="/no/such/dir/*")  # open's own point, not matching
        await prog.send(f"variadic {d}")
        assert await prog.line("variadic ") == "variadic 640 604 611 660", phase
        assert await prog.line("fcntl ") == "fcntl 1 1 1", phase


async def test_descriptor_paths_follow_open_dup_and_close(started, tmp_path):
    prog = await driver(started, tmp_path)
    await prog.send("open early.txt")  # before any libc point was enabled: looked up in /proc
    early = int((await prog.line("opened ")).split()[1])
    await prog.enable("libc.fsync")    # any libc point turns tracking on
    await prog.send("open late.txt")   # relative, as the program gave it
    late = int((await prog.line("opened ")).split()[1])
    await prog.send(f"dup {late}")
    copies = [int((await prog.line(p)).split()[1]) for p in ("duped ", "duped2 ", "dupedfd ")]
    assert copies[1] == 100 and copies[2] >= 200, copies
    async with injection_event_stream("127.0.0.1", port=prog.port) as stream:
        for fd, want in [(early, str(tmp_path / "early.txt")), (late, "late.txt")] + [(c, "late.txt") for c in copies]:
            await prog.enable("libc.write", one_shot=True, fd=fd)
            await prog.send(f"writefd {fd}")
            assert await prog.line("writefd ") == f"writefd -1 {EIO}"
            event = await stream.wait_for_injection("libc.write", timeout=DEADLINE)
            assert detail_of(event)["path"] == want, (fd, event)
        # Closed, the number forgets its path: a new descriptor that reuses it has its own.
        await prog.send(f"closefd {late}")
        assert await prog.line("closed ") == "closed 0"
        await prog.send("open other.txt")
        again = int((await prog.line("opened ")).split()[1])
        assert again == late
        await prog.enable("libc.write", one_shot=True, path="late.txt")
        await prog.send(f"writefd {again}")
        assert await prog.line("writefd ") == "writefd 1 77"  # other.txt: not matched
        await prog.enable("libc.write", one_shot=True, path="other.txt")
        await prog.send(f"writefd {again}")
        assert await prog.line("writefd ") == f"writefd -1 {EIO}"
