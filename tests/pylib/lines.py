"""Line by line, with deadlines, the output of a program a synchronous test left running
(errinjctl's ``events`` and ``wait``, in cli/tests): a thread per pipe reads it into a queue.
"""
import queue
import re
import threading
import time
from typing import Optional

import pytest


class LineReader:
    """Reads a pipe (binary or text) on a thread, so a test can wait for the next line with a
    deadline; ``seen`` is every line returned so far, for failure messages."""

    def __init__(self, pipe):
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.seen = []
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        while True:
            raw = pipe.readline()
            if not raw:
                break
            line = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # end of output

    def next(self, timeout=10):
        """The next line, or None at end of output; fails the test at the deadline."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout} s; seen so far: {self.seen!r}")
        if line is not None:
            self.seen.append(line)
        return line

    def expect(self, pattern, timeout=10):
        """Skips lines until one matches the regular expression; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s: {self.seen!r}")
            line = self.next(left)
            if line is None:
                pytest.fail(f"output ended before a line matching {pattern!r}: {self.seen!r}")
            m = re.search(pattern, line)
            if m:
                return m

    def rest(self, timeout=10):
        """Every remaining line, up to the end of output."""
        out = []
        while True:
            line = self.next(timeout)
            if line is None:
                return out
            out.append(line)
