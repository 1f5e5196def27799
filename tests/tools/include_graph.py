#!/usr/bin/python3
"""include_graph.py - checks that the library's layers depend one way: no file of src/ includes a
header of a layer above its own.

The layers, bottom first, are the table LAYERS below: each names the modules (a module is foo.c
with its foo.h) it holds. A file may include the headers of its own layer and of every layer
under it, and the public headers of include/. The check fails, printing each offending edge as
"src/FILE (layer) includes HEADER (layer above)", when

  - a file includes a header of a layer above its own,
  - a file of src/ belongs to no layer (a new module must be given its place here),
  - a third-party header that only one module may use (jansson: json) is included elsewhere,
  - a file other than the owner defines the macro that opens an owned header through another
    (ERRINJ__JSON_JANSSON, which makes json.h declare jansson's types: json.c only).

Edges the table tolerates for a stated reason are in ALLOWED; each one is printed as a note, so
that it stays in sight until it is gone. Usage: include_graph.py [SRC_DIR] (default: the repository's
src/).
"""
import re
import sys
from pathlib import Path

# Bottom first. Keep in step with docs/HACKING.md's diagram.
LAYERS = [
    ("util", ["util", "log", "lifecycle", "readers", "hooks", "disconnect", "loop"]),
    ("names", ["names"]),
    ("params", ["params", "term"]),
    ("registry", ["registry", "entry", "coverage"]),
    ("ring", ["ring"]),
    ("events", ["events"]),
    ("control", ["control"]),
    ("points", ["points"]),
    ("json", ["json"]),
    ("http", ["http", "http_routes", "http_access", "http_query", "http_ui", "history", "framing", "web"]),
    ("stream", ["stream", "wait", "ws", "ws_session", "ws_events", "ws_commands"]),
    ("server", ["server", "server_loop", "mhd_request", "mhd_dispatch", "mhd_sse", "mhd_ws", "conns"]),
    ("env", ["env"]),
]

# (including file, included header): why the edge is tolerated for now.
ALLOWED = {}

# Third-party headers only one module may include: header -> the module.
OWNED_SYSTEM_HEADERS = {"jansson.h": "json"}
# Macros that make a header include an owned one: macro -> the only file of src/ that may define it.
OWNED_MACROS = {"ERRINJ__JSON_JANSSON": "json.c"}
DEFINE = re.compile(r'^\s*#\s*define\s+(\w+)', re.M)

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)


def layer_of_module():
    index = {}
    for rank, (name, modules) in enumerate(LAYERS):
        for module in modules:
            if module in index:
                raise SystemExit(f"include_graph.py: module {module} is listed in two layers")
            index[module] = (rank, name)
    return index


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def check(src: Path):
    """The list of problems found in src (empty when the graph is one way)."""
    layers = layer_of_module()
    problems, notes = [], []
    files = sorted(p for p in src.iterdir() if p.suffix in (".c", ".h"))
    if not files:
        return [f"{src}: no C files"], notes
    for path in files:
        module = path.stem
        if module not in layers:
            problems.append(f"src/{path.name} belongs to no layer: add module {module!r} to LAYERS in "
                            f"tests/tools/include_graph.py (and to the diagram in docs/HACKING.md)")
            continue
        rank, layer = layers[module]
        text = strip_comments(path.read_text(errors="replace"))
        for macro in DEFINE.findall(text):
            owner = OWNED_MACROS.get(macro)
            if owner is not None and path.name != owner:
                problems.append(f"src/{path.name} ({layer}) defines {macro}, which only {owner} may define")
        for kind, header in INCLUDE.findall(text):
            name = Path(header).name
            if kind == "<":
                owner = OWNED_SYSTEM_HEADERS.get(name)
                if owner is not None and module != owner:
                    problems.append(f"src/{path.name} ({layer}) includes <{name}>, which only {owner} may include")
                continue
            target = Path(name).stem
            if target not in layers:
                if (src / name).exists():
                    problems.append(f"src/{path.name} ({layer}) includes {name}, which belongs to no layer")
                continue  # a public header of include/ (errinj.h) or a generated file
            target_rank, target_layer = layers[target]
            if target_rank <= rank:
                continue
            edge = f"src/{path.name} ({layer}) includes {name} ({target_layer}, above)"
            reason = ALLOWED.get((path.name, name))
            if reason is not None:
                notes.append(f"{edge}: allowed for now: {reason}")
            else:
                problems.append(edge)
    return problems, notes


def main(argv):
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "src"
    problems, notes = check(src)
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"include_graph: {problem}")
    if problems:
        print(f"include_graph: {len(problems)} include(s) against the layer order "
              f"({' -> '.join(name for name, _ in LAYERS)})")
        return 1
    print(f"include_graph: {len(files_in(src))} files of src/ include only their own layer or lower ones")
    return 0


def files_in(src: Path):
    return [p for p in src.iterdir() if p.suffix in (".c", ".h")]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
