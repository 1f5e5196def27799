#!/usr/bin/python3
"""test_include_graph.py - the include-graph check passes on the repository's src/ and fails, naming
the edge, on a copy of it with one include against the layer order."""
import contextlib
import io
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import include_graph  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def run_main(src: Path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = include_graph.main(["include_graph.py", str(src)])
    return rc, out.getvalue()


class IncludeGraph(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="include_graph."))
        self.src = self.tmp / "src"
        shutil.copytree(SRC, self.src)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def add_line(self, name, line):
        path = self.src / name
        text = path.read_text()
        # After the file's opening comment, where includes go.
        at = text.index("*/") + 2
        path.write_text(text[:at] + "\n" + line + "\n" + text[at:])

    def test_the_repository_passes(self):
        rc, out = run_main(SRC)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("include_graph: src/", out)

    def test_an_include_of_a_layer_above_fails_and_names_the_edge(self):
        self.add_line("names.c", '#include "registry.h"')
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("include_graph: src/names.c (names) includes registry.h (registry, above)", out)

    def test_a_header_including_upward_fails_too(self):
        self.add_line("ring.h", '#include "points.h"')
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("src/ring.h (ring) includes points.h (points, above)", out)

    def test_the_top_of_the_library_reached_from_the_bottom_fails(self):
        self.add_line("util.c", '#include "server.h"')
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("src/util.c (util) includes server.h (server, above)", out)

    def test_includes_of_the_same_or_lower_layers_pass(self):
        self.add_line("points.c", '#include "ring.h"')    # lower
        self.add_line("events.c", '#include "events.h"')  # its own
        self.add_line("http_ui.c", '#include "history.h"')  # same layer, other module
        rc, out = run_main(self.src)
        self.assertEqual(rc, 0, out)

    def test_a_file_of_no_layer_fails(self):
        (self.src / "newthing.c").write_text('#include "util.h"\n')
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("src/newthing.c belongs to no layer", out)

    def test_jansson_outside_json_fails(self):
        self.add_line("http.c", "#include <jansson.h>")
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("src/http.c (http) includes <jansson.h>, which only json may include", out)

    def test_jansson_through_json_h_outside_json_fails(self):
        self.add_line("ws_commands.c", "#define ERRINJ__JSON_JANSSON")
        rc, out = run_main(self.src)
        self.assertEqual(rc, 1, out)
        self.assertIn("src/ws_commands.c (stream) defines ERRINJ__JSON_JANSSON, which only json.c may define", out)

    def test_an_include_inside_a_comment_is_not_an_edge(self):
        self.add_line("names.c", '/*\n#include "server.h"\n */')
        rc, out = run_main(self.src)
        self.assertEqual(rc, 0, out)

    def test_an_allowed_edge_is_a_note_not_a_failure(self):
        self.add_line("names.c", '#include "registry.h"')
        saved = dict(include_graph.ALLOWED)
        include_graph.ALLOWED[("names.c", "registry.h")] = "a reason"
        try:
            rc, out = run_main(self.src)
        finally:
            include_graph.ALLOWED.clear()
            include_graph.ALLOWED.update(saved)
        self.assertEqual(rc, 0, out)
        self.assertIn("note: src/names.c (names) includes registry.h (registry, above): allowed for now: a reason", out)

if __name__ == "__main__":
    unittest.main()
