"""The libc points as the API shows them: catalogued with file "libc" and type exception, listed by
errinjctl, and every bad parameter refused at enable with 400 and a message, changing nothing."""
import asyncio
import json

import pytest

from conftest import DRIVER, ERRINJCTL, DEADLINE

LIBC_POINTS = ["libc.accept", "libc.close", "libc.connect", "libc.fallocate", "libc.fsync", "libc.ftruncate",
               "libc.malloc", "libc.mkdir", "libc.open", "libc.read", "libc.recv", "libc.rename", "libc.send",
               "libc.unlink", "libc.write"]


async def test_every_libc_point_is_catalogued_as_an_exception_of_file_libc(started):
    prog = await started([DRIVER])
    status, body = await prog.request("GET", "/points")
    assert status == 200
    points = {p["name"]: p for p in json.loads(body) if p["name"].startswith("libc.")}
    assert sorted(points) == LIBC_POINTS
    for p in points.values():
        assert (p["type"], p["file"], p["line"], p["enabled"]) == ("exception", "libc", 0, False), p


async def test_errinjctl_points_lists_the_libc_points(started):
    prog = await started([DRIVER])
    proc = await asyncio.create_subprocess_exec(str(ERRINJCTL), "--url", prog.url, "points",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 0, err
    text = out.decode()
    for name in LIBC_POINTS:
        assert name in text, f"{name} missing from errinjctl points:\n{text}"
    assert "libc" in text


BAD = [
    ("libc.write", {"errno": "ENOSPACE"}, "errno must be an errno name"),
    ("libc.write", {"errno": "0"}, "errno must be"),
    ("libc.write", {"errno": "-5"}, "errno must be"),
    ("libc.write", {"path": "*.db["}, "not a valid glob"),
    ("libc.write", {"path": "journal\\"}, "not a valid glob"),
    ("libc.write", {"path": ""}, "not a valid glob"),
    ("libc.write", {"fd": "-1"}, "fd must be a descriptor number"),
    ("libc.read", {"fd": "three"}, "fd must be a descriptor number"),
    ("libc.open", {"short": "10"}, "short applies only to calls that move bytes"),
    ("libc.fsync", {"short": "10"}, "short applies only"),
    ("libc.malloc", {"short": "1"}, "short applies only"),
    ("libc.write", {"short": "-1"}, "short must be a byte count"),
    ("libc.open", {"fd": "3"}, "fd does not apply"),
    ("libc.malloc", {"path": "*"}, "path does not apply"),
    ("libc.write", {"size": "3"}, "unknown parameter \\\"size\\\""),
    ("libc.wirte", {}, "no such libc point"),
]


@pytest.mark.parametrize("name,params,message", BAD, ids=[f"{n}-{'-'.join(p) or 'none'}-{i}" for i, (n, p, _) in enumerate(BAD)])
async def test_bad_parameters_are_400_with_a_message_and_change_nothing(started, name, params, message):
    prog = await started([DRIVER])
    # Enabled before with good parameters: a refused enable must leave exactly that.
    good_name = name if name != "libc.wirte" else "libc.write"
    await prog.enable(good_name, one_shot=False, errno="EIO")
    status, before = await prog.request("GET", f"/injection/{good_name}")
    assert json.loads(before)[0]["parameters"] == [{"key": "errno", "value": "EIO"}], before
    status, body = await prog.request("POST", f"/injection/{name}", params={"one_shot": "true"},
                                      json=params)
    assert status == 400, body
    assert message in body, body
    assert json.loads(body)["code"] == 400
    status, state = await prog.request("GET", f"/injection/{good_name}")
    assert json.loads(state) == json.loads(before)
    if name == "libc.wirte":
        status, state = await prog.request("GET", f"/injection/{name}")
        assert json.loads(state) == [{"enabled": False}]


async def test_good_parameters_are_accepted(started):
    prog = await started([DRIVER])
    for params in ({"errno": "ENOSPC"}, {"errno": "28"}, {"path": "*.db-journal"}, {"path": "[a-z]*.log"},
                   {"fd": "0"}, {"short": "0"}, {"errno": "ECONNRESET", "short": "5", "fd": "7", "path": "tcp:*"}):
        status, body = await prog.request("POST", "/injection/libc.write", json=params)
        assert status == 200, (params, body)
