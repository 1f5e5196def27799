#!/usr/bin/python3
"""check_stubs.py - every function include/errinj.h declares has its -DERRINJ_DISABLE stub.

Reads the declarations from the preprocessed header (as the compiler sees it without
ERRINJ_DISABLE), then writes a program that calls each of them with zero arguments and builds it
with -DERRINJ_DISABLE, as C and as C++, -Wall -Wextra -Werror -pedantic, without liberrinj: a
function without a stub is an undefined reference, and is also named here.
Usage: check_stubs.py SOURCE_DIR
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

src = Path(sys.argv[1])
header = src / "include" / "errinj.h"
pre = subprocess.run(["gcc", "-E", "-P", "-I", str(src / "include"), str(header)],
                     capture_output=True, text=True, check=True).stdout
text = re.sub(r"\s+", " ", pre)
functions = {}
for stmt in text.split(";"):
    stmt = stmt.strip()
    m = re.search(r"\b(errinj_[a-z0-9_]+)\s*\((.*)\)\s*$", stmt)
    if not m or m.group(1).startswith("errinj__") or stmt.startswith("typedef") or "{" in stmt or "(*" + m.group(1) in stmt:
        continue
    params, depth, count = m.group(2).strip(), 0, 1
    if params in ("", "void"):
        count = 0
    for ch in params:
        depth += ch == "("
        depth -= ch == ")"
        count += ch == "," and depth == 0
    functions[m.group(1)] = count
assert len(functions) > 30, f"found too few declarations: {sorted(functions)}"
stubs = set(re.findall(r"^#define (errinj_[a-z0-9_]+)\(", header.read_text(), flags=re.M))
missing = sorted(set(functions) - stubs)
if missing:
    print("no ERRINJ_DISABLE stub for: " + ", ".join(missing))
    sys.exit(1)

calls = "\n".join(f"    (void)({name}({', '.join(['0'] * n)}));" if name not in ("errinj_disable_all", "errinj_unsubscribe",
                  "errinj_server_stop", "errinj_shard_set", "errinj_set_log", "errinj_list_points", "errinj_list_enabled",
                  "errinj_inject_sleep", "errinj_inject_lambda") else f"    {name}({', '.join(['0'] * n)});"
                  for name, n in sorted(functions.items()))
program = f"#include <errinj.h>\n#include <stddef.h>\nint main(void)\n{{\n{calls}\n    return 0;\n}}\n"
with tempfile.TemporaryDirectory() as tmp:
    for lang, compiler, std in (("c", "cc", "-std=c11"), ("c++", "c++", "-std=c++11")):
        path = Path(tmp) / ("stubs." + ("c" if lang == "c" else "cpp"))
        path.write_text(program)
        exe = Path(tmp) / ("stubs-" + lang)
        build = subprocess.run([compiler, std, "-DERRINJ_DISABLE", "-Wall", "-Wextra", "-Werror", "-pedantic",
                                "-I", str(src / "include"), str(path), "-o", str(exe)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            print(f"{lang}: calling every API function with ERRINJ_DISABLE and no liberrinj failed:\n{build.stderr}")
            sys.exit(1)
        subprocess.run([str(exe)], check=True)
print(f"ok: {len(functions)} API functions, each a no-op stub under ERRINJ_DISABLE (C and C++, no liberrinj)")
