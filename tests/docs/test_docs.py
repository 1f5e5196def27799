"""Every code example of the documentation is checked, as jq runs its manual's examples.

The test extracts each fenced code block of README.md and docs/*.md and checks it by its info
string (the words after the opening fence):

  ```c              a whole translation unit: compiled with -Wall -Wextra -Werror against
                    include/ (also with -DERRINJ_DISABLE); linked with liberrinj and run when it
                    defines main(), and it must exit 0
  ```cpp            the same for C++17 (c++ -std=c++17 -pedantic, errinj.hpp usable)
  ```c fragment     statements: compiled inside a function, after PREAMBLE below
  ```c synopsis     declarations: each must be a declaration of include/errinj.h (comments and
                    spacing aside); a macro written as a prototype, `int ERRINJ_X(a, b);`, must
                    be a function-like macro of the header with the same parameter names
  ```python         compiled with compile() (top-level await allowed)
  ```python run     run with /usr/bin/python3 against a fresh kvnode
  ```sh             checked with bash -n
  ```sh run         run with bash -euo pipefail against a fresh kvnode
  ```json           parsed as JSON
  ```text output    the exact standard output of the block just before it (a run block, or a
                    ```c block with main()), ports put back to 10000 and 7000
  ```text, ```console, no info string: other text, not checked

A block with any other info string fails the test, so that every example is checked somehow.

Run blocks get a kvnode of their own (examples/kvnode on loopback port 0, 4 shards). The examples
are written for the defaults (errinj API on port 10000, kvnode's data port 7000); before running,
the whole words 10000 and 7000 are replaced by the real ports, ERRINJ_URL is set to the API's URL,
and the directories of errinjctl and kvnode are put first on PATH.

The test also pins the pages to the code they describe: errinj(3) must name every identifier
include/errinj.h declares, errinjctl(1) every command and option `errinjctl --help` lists, and
errinj-events(7) every endpoint, query parameter and status code of the REST API.

Paths come from the environment CTest sets (ERRINJ_BUILD_DIR, ERRINJ_ERRINJCTL, ERRINJ_KVNODE,
ERRINJ_LIB, ERRINJ_CC, ERRINJ_CFLAGS), with defaults for a build in build/.
"""
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "pylib"))
from kvdriver import SyncKVNode  # noqa: E402 (the kvnode driver, shared with tests/integration and cli/tests)

BUILD = Path(os.environ.get("ERRINJ_BUILD_DIR") or REPO / "build")
ERRINJCTL = Path(os.environ.get("ERRINJ_ERRINJCTL") or BUILD / "cli" / "errinjctl")
KVNODE = Path(os.environ.get("ERRINJ_KVNODE") or BUILD / "examples" / "kvnode")
ERRINJ_RUN = Path(os.environ.get("ERRINJ_RUN") or BUILD / "preload" / "errinj-run")
LIB = Path(os.environ.get("ERRINJ_LIB") or BUILD / "liberrinj.so")
CC = os.environ.get("ERRINJ_CC") or "cc"
EXTRA_CFLAGS = (os.environ.get("ERRINJ_CFLAGS") or "").split()  # the build's sanitizer flags
HEADER = REPO / "include" / "errinj.h"
PYTHON = "/usr/bin/python3"

DEADLINE = float(os.environ.get("ERRINJ_TEST_DEADLINE", "60"))

# What a ```c fragment may use without including it.
PREAMBLE = """\
#include <errinj.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
"""

CFLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"]
CXX = os.environ.get("ERRINJ_CXX") or "c++"
CXXFLAGS = ["-std=c++17", "-pedantic", "-Wall", "-Wextra", "-Werror", "-pthread"]
# A fragment is a piece of a function: values it computes for the reader may go unused.
FRAGMENT_CFLAGS = ["-Wno-unused-variable", "-Wno-unused-but-set-variable", "-Wno-unused-function",
                   "-Wno-unused-value"]

NOT_CODE = {"", "text", "console", "output"}


# ---- extracting the blocks ----------------------------------------------------------------------

@dataclass
class Block:
    path: Path
    line: int           # 1-based line of the block's first line of content
    lang: str
    flags: List[str] = field(default_factory=list)
    text: str = ""

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(REPO))

    @property
    def id(self) -> str:
        kind = " ".join([self.lang or "plain"] + self.flags)
        return f"{self.rel}:{self.line}:{kind.replace(' ', '-')}"


FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def extract_blocks(path: Path) -> List[Block]:
    """The fenced code blocks of a CommonMark file, indentation (inside list items) removed."""
    blocks = []
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        indent, fence = len(m.group("indent")), m.group("fence")
        words = m.group("info").split()
        body = []
        j = i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            if (close and close.group("fence")[0] == fence[0] and len(close.group("fence")) >= len(fence)
                    and not close.group("info").strip()):
                break
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            j += 1
        else:
            raise AssertionError(f"{path}:{i + 1}: code block never closed")
        blocks.append(Block(path, i + 2, words[0].lower() if words else "", words[1:], "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def doc_files() -> List[Path]:
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


ALL_BLOCKS = [b for path in doc_files() for b in extract_blocks(path)]


# ---- running things with deadlines (no fixed sleeps anywhere) ----------------------------------

def run_logged(argv, tmp: Path, name: str, env=None, cwd=None, stdin=None, timeout=DEADLINE):
    """Runs argv in a session of its own with output in files (a background child that keeps a
    pipe open cannot hang us), kills what it left running, and returns (rc, stdout, stderr)."""
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
    if rc is None:
        pytest.fail(f"{' '.join(map(str, argv))} did not finish within {timeout}s\n"
                    f"--- stdout\n{stdout}\n--- stderr\n{stderr}")
    return rc, stdout, stderr


class KVNode(SyncKVNode):
    """A kvnode on loopback port 0 (tests/pylib/kvdriver.py), for the blocks that run."""

    def __init__(self, tmp: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERRINJ_")}
        self.stderr = open(tmp / "kvnode.stderr", "wb")
        try:
            super().__init__(tmp, "kvnode", shards=4, stderr=self.stderr, env=env, deadline=DEADLINE)
        except BaseException:
            self.stderr.close()
            raise
        self.data_host, self.data_port = self.ip, self.port
        self.api_host = self.api_ip

    def substitute(self, text: str) -> str:
        text = re.sub(r"\b10000\b", str(self.api_port), text)
        return re.sub(r"\b7000\b", str(self.data_port), text)

    def stop(self) -> int:
        try:
            return super().stop()
        finally:
            self.stderr.close()

    def describe(self) -> str:
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- kvnode log (last lines)\n" + "\n".join(log.splitlines()[-30:])


@pytest.fixture
def kvnode(tmp_path):
    node = KVNode(tmp_path)
    yield node
    rc = node.stop()
    assert rc == 0, f"kvnode exited with {rc}\n{node.describe()}"



# ---- checking each kind of block --------------------------------------------------------------------

def compile_c(block: Block, source: str, tmp: Path, extra=(), link=False):
    cxx = block.lang == "cpp"
    src = tmp / ("example.cpp" if cxx else "example.c")
    src.write_text(source)
    target = tmp / ("example" if link else "example.o")
    flags = CXXFLAGS if cxx else CFLAGS
    argv = [CXX if cxx else CC, *flags, *EXTRA_CFLAGS, *extra, "-I", str(REPO / "include"), str(src)]
    if link:
        argv += ["-o", str(target), str(LIB), f"-Wl,-rpath,{LIB.parent}"]
    else:
        argv += ["-c", "-o", str(target)]
    rc, out, err = run_logged(argv, tmp, "cc")
    assert rc == 0, f"{block.id} does not compile:\n{err}{out}\n--- source\n{source}"
    return target


def check_c(block: Block, tmp: Path):
    fragment = "fragment" in block.flags
    if fragment:
        source = (PREAMBLE + "void errinj_docs_fragment(void);\nvoid errinj_docs_fragment(void)\n{\n"
                  f'#line {block.line} "{block.rel}"\n{block.text}}}\n')
        extra = FRAGMENT_CFLAGS
    else:
        source = f'#line {block.line} "{block.rel}"\n{block.text}'
        extra = []
    compile_c(block, source, tmp, extra)
    # Compiled out too: a point whose value is ignored must still draw no warning.
    compile_c(block, source, tmp, [*extra, "-DERRINJ_DISABLE"])
    if not fragment and re.search(r"\bint\s+main\s*\(", block.text):
        if not LIB.exists():
            pytest.fail(f"liberrinj not found at {LIB}: build it, or set ERRINJ_LIB")
        program = compile_c(block, source, tmp, link=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERRINJ_")}
        rc, out, err = run_logged([str(program)], tmp, "run", env=env, cwd=tmp)
        assert rc == 0, f"{block.id} exited with {rc}\n--- stdout\n{out}\n--- stderr\n{err}"
        check_output(block, out)


def strip_c_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def normalize_c(text: str) -> str:
    text = re.sub(r"\s+", " ", strip_c_comments(text)).strip()
    return re.sub(r"\s*([()\[\]{};,*=])\s*", r"\1", text)


def header_source() -> str:
    return HEADER.read_text()


def header_macros():
    """Function-like macros of the header: name -> parameter names."""
    macros = {}
    for m in re.finditer(r"^\s*#\s*define\s+(\w+)\(([^)]*)\)", header_source(), flags=re.M):
        macros.setdefault(m.group(1), [p.strip() for p in m.group(2).split(",") if p.strip()])
    return macros


def header_declarations() -> str:
    """The header's C text without preprocessor lines or comments, normalized."""
    text = strip_c_comments(header_source())
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text.replace("\\\n", " "), flags=re.M)
    text = text.replace('extern "C" {', " ")
    return normalize_c(text)


def header_defines():
    text = strip_c_comments(header_source()).replace("\\\n", " ")
    return {re.sub(r"\s+", " ", m.group(0)).strip() for m in re.finditer(r"^\s*#\s*define\b.*$", text, flags=re.M)}


def split_declarations(text: str) -> List[str]:
    """Top-level declarations (ending in ';' outside braces)."""
    decls, depth, current = [], 0, ""
    for ch in text:
        current += ch
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            decls.append(current.strip())
            current = ""
    assert not current.strip(), f"text after the last declaration: {current.strip()!r}"
    return decls


def check_c_synopsis(block: Block, tmp: Path):
    body = []
    defines = header_defines()
    for n, line in enumerate(block.text.split("\n"), block.line):
        stripped = line.strip()
        if stripped.startswith("#include"):
            assert "<errinj.h>" in stripped, f"{block.rel}:{n}: only <errinj.h> belongs in the synopsis"
        elif stripped.startswith("#"):
            assert re.sub(r"\s+", " ", strip_c_comments(stripped)).strip() in defines, \
                f"{block.rel}:{n}: {stripped!r} is not a #define of {HEADER.name}"
        else:
            body.append(line)
    header = header_declarations()
    macros = header_macros()
    for decl in split_declarations(strip_c_comments("\n".join(body))):
        norm = normalize_c(decl)
        m = re.fullmatch(r"(?:\w+ ?\**)?(ERRINJ_[A-Z_]+)\(([^()]*)\);", norm)
        if m and m.group(1) in macros:
            params = [p for p in m.group(2).split(",") if p]
            assert params == macros[m.group(1)], \
                f"{block.id}: {m.group(1)}({', '.join(params)}) but the header has ({', '.join(macros[m.group(1)])})"
            continue
        found = [i for i in (mm.start() for mm in re.finditer(re.escape(norm), header))
                 if i == 0 or header[i - 1] in ";{}"]
        assert found, f"{block.id}: this declaration is not in {HEADER.name}:\n  {decl}\n(normalized: {norm})"


def check_python(block: Block, tmp: Path):
    try:
        compile(block.text, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as e:
        pytest.fail(f"{block.rel}:{block.line + (e.lineno or 1) - 1}: {e.msg}\n{block.text}")


def check_sh(block: Block, tmp: Path):
    script = tmp / "example.sh"
    script.write_text(block.text)
    rc, out, err = run_logged(["bash", "-n", str(script)], tmp, "bash-n")
    assert rc == 0, f"{block.id} is not valid bash:\n{err}\n{block.text}"


def run_env(node: KVNode):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERRINJ_")}
    env["ERRINJ_URL"] = node.url
    env["PATH"] = os.pathsep.join([str(ERRINJCTL.parent), str(KVNODE.parent), str(ERRINJ_RUN.parent),
                                   env.get("PATH", "")])
    env["PYTHONPATH"] = str(REPO / "python")
    return env


def check_run(block: Block, tmp: Path, node: KVNode):
    text = node.substitute(block.text)
    if block.lang == "python":
        script = tmp / "example.py"
        argv = [PYTHON, str(script)]
    else:
        script = tmp / "example.sh"
        argv = ["bash", "-euo", "pipefail", str(script)]
    script.write_text(text)
    rc, out, err = run_logged(argv, tmp, "example", env=run_env(node), cwd=tmp)
    assert rc == 0, (f"{block.id} exited with {rc}\n--- script\n{text}--- stdout\n{out}\n--- stderr\n{err}\n"
                     f"{node.describe()}")
    check_output(block, out, node)


def check_json(block: Block, tmp: Path):
    try:
        json.loads(block.text)
    except ValueError as e:
        pytest.fail(f"{block.id} is not JSON: {e}\n{block.text}")


def expected_output(block: Block):
    """The ```text output block right after `block` in the same file, if there is one."""
    blocks = [b for b in ALL_BLOCKS if b.path == block.path]
    i = blocks.index(block)
    if i + 1 < len(blocks) and blocks[i + 1].lang == "text" and blocks[i + 1].flags == ["output"]:
        return blocks[i + 1]
    return None


def check_output(block: Block, stdout: str, node=None):
    want = expected_output(block)
    if want is None:
        return
    if node is not None:
        stdout = re.sub(rf"\b{node.api_port}\b", "10000", stdout)
        stdout = re.sub(rf"\b{node.data_port}\b", "7000", stdout)
    assert stdout == want.text, (f"{block.id} printed something else than {want.id} shows:\n"
                                 f"--- printed\n{stdout}--- shown\n{want.text}")


def is_run(block: Block) -> bool:
    return block.lang in ("python", "sh") and "run" in block.flags


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if not is_run(b)], ids=lambda b: getattr(b, "id", str(b)))
def test_block(block: Block, tmp_path: Path):
    if block.lang == "c" and "synopsis" in block.flags:
        check_c_synopsis(block, tmp_path)
    elif block.lang == "c" and set(block.flags) <= {"fragment"}:
        check_c(block, tmp_path)
    elif block.lang == "cpp" and not block.flags:
        check_c(block, tmp_path)
    elif block.lang == "python" and not block.flags:
        check_python(block, tmp_path)
    elif block.lang in ("sh", "bash") and not block.flags:
        check_sh(block, tmp_path)
    elif block.lang == "json" and not block.flags:
        check_json(block, tmp_path)
    elif block.lang in NOT_CODE and not block.flags:
        pass
    elif block.lang == "text" and block.flags == ["output"]:
        blocks = [b for b in ALL_BLOCKS if b.path == block.path]
        i = blocks.index(block)
        before = blocks[i - 1] if i > 0 else None
        assert before is not None and (is_run(before) or (before.lang in ("c", "cpp") and not before.flags
                                                           and re.search(r"\bint\s+main\s*\(", before.text))), \
            f"{block.id}: an output block must follow a run block or a ```c program"
    else:
        pytest.fail(f"{block.id}: unknown kind of block ```{' '.join([block.lang] + block.flags)}: "
                    f"see tests/docs/test_docs.py for the info strings the docs may use")


@pytest.mark.parametrize("block", [b for b in ALL_BLOCKS if is_run(b)], ids=lambda b: getattr(b, "id", str(b)))
def test_run_block(block: Block, tmp_path: Path, kvnode: KVNode):
    if block.lang == "python":
        check_python(block, tmp_path)
    else:
        check_sh(block, tmp_path)
    check_run(block, tmp_path, kvnode)


def test_the_docs_have_examples_of_every_kind():
    kinds = {(b.lang, tuple(b.flags)) for b in ALL_BLOCKS}
    for kind in [("c", ()), ("c", ("fragment",)), ("c", ("synopsis",)), ("python", ("run",)), ("sh", ("run",))]:
        assert kind in kinds, f"no ```{' '.join((kind[0],) + kind[1])} block in the docs: did extraction break?"


# ---- the pages against the code they describe ---------------------------------------------------------

def words_in(text: str):
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def code_words(markdown: str):
    """Words inside code spans and fenced blocks."""
    spans = re.findall(r"`([^`\n]+)`", markdown)
    return words_in(" ".join(spans))


def header_identifiers():
    """Every public identifier of the header: functions, types, macros, enum constants, error
    codes, and the fields of the public structs."""
    src = header_source()
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', strip_c_comments(src))
    names = {w for w in re.findall(r"\berrinj_[a-z0-9_]+", code) if not w.startswith("errinj__")}
    names |= {w for w in re.findall(r"\bERRINJ_[A-Z0-9_]+", code) if not w.startswith("ERRINJ__")}
    names -= {"ERRINJ_H"}
    names |= {"ERRINJ_" + m for m in re.findall(r"\bXX\((\w+),", code)}
    names |= set(re.findall(r"\b__(?:start|stop)_errinj_sites\b", code))
    fields = {}
    for m in re.finditer(r"typedef struct (errinj_\w+) \{(.*?)\}", strip_c_comments(src), flags=re.S):
        fields[m.group(1)] = re.findall(r"(\w+)\s*;", m.group(2))
    return names, fields


def test_errinj_3_names_every_identifier_of_the_header():
    page = (REPO / "docs" / "errinj.3.md").read_text()
    names, fields = header_identifiers()
    assert len(names) > 60, f"the header scan found too few names: {sorted(names)}"
    missing = sorted(n for n in names if n not in words_in(page))
    assert not missing, f"docs/errinj.3.md does not mention: {', '.join(missing)}"
    in_code = code_words(page)
    for struct, members in fields.items():
        absent = [f for f in members if f not in in_code]
        assert not absent, f"docs/errinj.3.md does not show the fields {absent} of {struct} in code"


def errinjctl_help(*args) -> str:
    if not ERRINJCTL.exists():
        pytest.fail(f"errinjctl not found at {ERRINJCTL}: build it, or set ERRINJ_ERRINJCTL")
    proc = subprocess.run([str(ERRINJCTL), *args, "--help"], capture_output=True, text=True, timeout=DEADLINE)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def options_in(help_text: str):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", help_text))


def test_errinjctl_1_names_every_command_and_option():
    page = (REPO / "docs" / "errinjctl.1.md").read_text()
    main = errinjctl_help()
    commands = re.findall(r"^  ([a-z]+)\b", main.split("Commands:")[1].split("Options:")[0], flags=re.M)
    assert len(commands) >= 10, main
    missing = []
    for opt in options_in(main.split("Options:")[1]):
        if opt not in page:
            missing.append(f"global option {opt}")
    for cmd in commands:
        if not re.search(rf"\b{cmd}\b", page):
            missing.append(f"command {cmd}")
        help_text = errinjctl_help(cmd)
        own = help_text.split("Global options")[0]
        for opt in options_in(own):
            if not re.search(rf"(?<![\w-]){re.escape(opt)}\b", page):
                missing.append(f"{cmd} {opt}")
    assert not missing, f"docs/errinjctl.1.md does not describe: {', '.join(missing)}"


def test_errinj_events_7_names_every_endpoint_parameter_and_status():
    page = (REPO / "docs" / "errinj-events.7.md").read_text()
    http = (REPO / "src" / "http.c").read_text()
    server = (REPO / "src" / "server.c").read_text()
    missing = []
    for status in sorted(set(re.findall(r"errinj__http_error\(reply, (\d{3})", http + server))):
        if status not in page:
            missing.append(f"status {status}")
    for key in sorted(set(re.findall(r'query_key_is\(\w+, "(\w+)"\)', http))):
        if f"`{key}" not in page:
            missing.append(f"query parameter {key}")
    for header in sorted(set(re.findall(r'header\(req->header_ctx, "([\w-]+)"\)', http))):
        if header not in page:
            missing.append(f"header {header}")
    for path in ["/injection", "/injection/{name}", "/injection/{name}/message", "/injection/{name}/enters",
                 "/injection/{name}/waiters", "/points", "/events", "/status", "/ui"]:
        if f"/v2/error_injection{path}`" not in page:
            missing.append(f"endpoint {path}")
    assert not missing, f"docs/errinj-events.7.md does not describe: {', '.join(missing)}"


def test_errinj_run_1_names_every_option_point_and_wrapped_function():
    page = (REPO / "docs" / "errinj-run.1.md").read_text()
    if not ERRINJ_RUN.exists():
        pytest.fail(f"errinj-run not found at {ERRINJ_RUN}: build it, or set ERRINJ_RUN")
    help_text = subprocess.run([str(ERRINJ_RUN), "--help"], capture_output=True, text=True, timeout=DEADLINE).stdout
    missing = [opt for opt in options_in(help_text) if opt not in page]
    faults = (REPO / "preload" / "faults.c").read_text()
    wrappers = (REPO / "preload" / "wrappers.c").read_text() + (REPO / "preload" / "variadic.c").read_text()
    points = re.findall(r'\{"(libc\.\w+)"', faults)
    assert len(points) >= 15, points
    missing += [f"point {p}" for p in points if f"`{p}`" not in page]
    # Written out (PRELOAD_EXPORT int open(...)) or made by the WRAP macro (WRAP(ssize_t, write, ...)).
    functions = set(re.findall(r"^PRELOAD_EXPORT [\w *]+?\b(\w+)\(", wrappers, re.M))
    functions |= set(re.findall(r"^WRAP\([\w *]+, (\w+),", wrappers, re.M))
    assert len(functions) > 60, functions
    tracked_only = {"dup", "dup2", "dup3", "fcntl", "fcntl64", "socket", "bind", "free"}
    for fn in functions:
        if fn.startswith("__") or fn in tracked_only:
            continue
        if not re.search(rf"\b{fn}\b", page):
            missing.append(f"function {fn}")
    assert not missing, f"docs/errinj-run.1.md does not describe: {', '.join(missing)}"
