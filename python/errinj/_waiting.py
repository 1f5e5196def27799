"""The events an event stream received, and the waits and cursors that read them.

``Mailbox`` keeps every received event in arrival order (``events``) and, apart, those no wait
has taken yet, by injection name. A wait takes the earliest untaken event its ``Spec`` matches,
whether it arrived before or after the call; events of other names stay for other waits, and
concurrent waits are served in call order. A wait for several events is all or nothing: if it
fails, what it had taken is put back. Iteration (``Cursor``) walks ``events`` and takes nothing.

An overflow notice (events lost) is kept at its place among the events: in "raise" mode every
wait that may concern that node and cannot be answered from events before the loss raises
``EventsLostError`` until the loss is cleared, and a cursor raises it once at that place.

The mailbox knows nothing of connections: the stream in stream.py feeds it (``add``,
``add_overflow``, ``close``) from its node connections' callbacks.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import EventsLostError, StreamClosedError

Event = Dict[str, Any]
Matcher = Callable[[Event], bool]


class Spec:
    """What one wait is for: a matcher, the node it is restricted to (its ``"ip:port"``, or None for
    any), the injection name when the matcher needs that name (it narrows the search), and words
    for messages."""

    __slots__ = ("match", "node", "name", "description")

    def __init__(self, match: Matcher, node: Optional[str], name: Optional[str], description: str) -> None:
        self.match = match
        self.node = node
        self.name = name
        self.description = description

    def matches(self, event: Event) -> bool:
        return (self.node is None or event.get("node") == self.node) and self.match(event)


def injection_spec(name: str, phase: Optional[str], node: Optional[str]) -> Spec:
    """A wait for an event of injection ``name`` in ``phase`` (None: any phase) on ``node``."""
    def match(event: Event) -> bool:
        return event.get("injection") == name and (phase is None or event.get("phase") == phase)

    words = f"injection {name!r}" + (f" phase {phase!r}" if phase else " (any phase)")
    return Spec(match, node, name, words + (f" on {node}" if node else ""))


class _Waiter:
    __slots__ = ("spec", "future")

    def __init__(self, spec: Spec, future: "asyncio.Future[Tuple[int, Event]]") -> None:
        self.spec = spec
        self.future = future


class Overflow:
    """An ``event: overflow`` notice, at its place among the events."""

    __slots__ = ("node", "dropped", "next_seq", "position")

    def __init__(self, node: str, dropped: Optional[int], next_seq: Optional[int], position: int) -> None:
        self.node = node
        self.dropped = dropped
        self.next_seq = next_seq
        self.position = position  # len(events) when it arrived: it sits before that event

    def error(self) -> EventsLostError:
        return EventsLostError(self.node, self.dropped, self.next_seq)


class Mailbox:
    """Received events, untaken events, pending waits and overflow marks of one stream.

    ``nodes`` are the stream's node tags (for messages); ``raise_on_overflow`` is the "raise"
    mode; ``reconnects`` says how often the connections were re-opened (for timeout messages).
    """

    def __init__(self, nodes: List[str], raise_on_overflow: bool, reconnects: Callable[[], int]) -> None:
        self.nodes = nodes
        self.raise_on_overflow = raise_on_overflow
        self._reconnects = reconnects
        self.events: List[Event] = []
        self.overflows: List[Dict[str, Any]] = []
        self.marks: List[Overflow] = []
        self._unacked: List[Overflow] = []
        # Untaken events by injection name, each dict ordered by arrival index.
        self._pending: Dict[Any, Dict[int, Event]] = {}
        self._waiters: List[_Waiter] = []
        self._arrived: Optional[asyncio.Event] = None
        self.closed: Optional[Tuple[Optional[str], str]] = None   # (node, reason) once closed
        self.closed_by_client = False

    def start(self) -> None:
        """Called in the running loop before anything arrives."""
        self._arrived = asyncio.Event()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
            self._arrived.clear()

    # -- arrivals -----------------------------------------------------------------------------

    def add(self, node: str, event: Event) -> None:
        event["node"] = node
        index = len(self.events)
        self.events.append(event)
        if not self._deliver(index, event):
            self._pending.setdefault(event.get("injection"), {})[index] = event
        self._wake()

    def _deliver(self, index: int, event: Event) -> bool:
        """Hand the event to the earliest registered waiter it matches."""
        for waiter in self._waiters:
            if not waiter.future.done() and waiter.spec.matches(event):
                self._waiters.remove(waiter)
                waiter.future.set_result((index, event))
                return True
        return False

    def add_overflow(self, node: str, dropped: Any, next_seq: Any) -> Overflow:
        mark = Overflow(node, dropped, next_seq, len(self.events))
        self.overflows.append({"node": node, "dropped": dropped, "next_seq": next_seq})
        self.marks.append(mark)
        if self.raise_on_overflow:
            self._unacked.append(mark)
            for waiter in list(self._waiters):
                if waiter.spec.node in (None, node) and not waiter.future.done():
                    self._waiters.remove(waiter)
                    waiter.future.set_exception(mark.error())
        self._wake()
        return mark

    def clear_overflow(self) -> None:
        self._unacked.clear()

    def close(self, node: Optional[str], reason: str, by_client: bool = False) -> None:
        """No more events: every pending wait, and every later one nothing received matches, raises
        ``StreamClosedError`` (naming ``node`` when one node's loss closed the stream)."""
        if self.closed is None:
            self.closed = (node, reason)
        if by_client:
            self.closed_by_client = True   # iteration then ends instead of raising
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(self.closed_error())
        self._wake()

    def closed_error(self) -> StreamClosedError:
        assert self.closed is not None
        node, reason = self.closed
        if node is None and len(self.nodes) == 1:
            node = self.nodes[0]
        return StreamClosedError(node, reason)

    # -- waiting ------------------------------------------------------------------------------

    def _take_pending(self, spec: Spec) -> Optional[Tuple[int, Event]]:
        """Remove and return the earliest untaken event the spec matches. Raise
        ``EventsLostError`` if that would mean looking past an unacknowledged overflow."""
        block = next((m for m in self._unacked if spec.node in (None, m.node)), None)
        limit = block.position if block is not None else None
        buckets = [self._pending.get(spec.name, {})] if spec.name is not None else list(self._pending.values())
        best: Optional[Tuple[int, Event]] = None
        for bucket in buckets:
            for index, event in bucket.items():
                if best is not None and index >= best[0]:
                    break
                if spec.matches(event):
                    best = (index, event)
                    break
        if best is not None and (limit is None or best[0] < limit):
            bucket = self._pending[best[1].get("injection")]
            del bucket[best[0]]
            return best
        if block is not None:
            raise block.error()
        return None

    def _put_back(self, taken: List[Tuple[int, Event]]) -> None:
        """Return events that a failed wait had taken, as if it had never taken them."""
        for index, event in sorted(taken, key=lambda item: item[0]):
            if self._deliver(index, event):
                continue
            name = event.get("injection")
            bucket = self._pending.setdefault(name, {})
            bucket[index] = event
            if any(i > index for i in bucket):  # keep each bucket in arrival order
                self._pending[name] = dict(sorted(bucket.items()))

    async def wait_many(self, specs: Sequence[Spec], timeout: Optional[float]) -> List[Event]:
        """One event for each spec, in the order of ``specs``; all or nothing."""
        loop = asyncio.get_running_loop()
        results: List[Optional[Tuple[int, Event]]] = [None] * len(specs)
        taken: List[Tuple[int, Event]] = []
        waiters: List[Tuple[int, _Waiter]] = []
        try:
            for i, spec in enumerate(specs):
                hit = self._take_pending(spec)
                if hit is not None:
                    results[i] = hit
                    taken.append(hit)
                    continue
                if self.closed is not None:
                    raise self.closed_error()
                waiter = _Waiter(spec, loop.create_future())
                self._waiters.append(waiter)
                waiters.append((i, waiter))
            if waiters:
                futures = {w.future for _, w in waiters}
                _, not_done = await asyncio.wait(futures, timeout=timeout,
                                                 return_when=asyncio.FIRST_EXCEPTION)
                failed = [f for f in futures if f.done() and f.exception() is not None]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
                if not_done:
                    missing = [w.spec for _, w in waiters if not w.future.done()]
                    raise asyncio.TimeoutError(self._timeout_message(specs, missing, timeout))
                for i, waiter in waiters:
                    results[i] = waiter.future.result()
            return [r[1] for r in results if r is not None]
        except BaseException:
            for _, waiter in waiters:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                future = waiter.future
                if not future.done():
                    future.cancel()
                elif not future.cancelled() and future.exception() is None:
                    taken.append(future.result())
            self._put_back(taken)
            raise

    def _timeout_message(self, specs: Sequence[Spec], missing: List[Spec], timeout: Optional[float]) -> str:
        awaited = ", ".join(s.description for s in missing)
        where = ", ".join(self.nodes)
        text = f"timed out after {timeout}s waiting for {awaited} on {where}"
        if len(specs) > len(missing):
            text += f" ({len(specs) - len(missing)} of {len(specs)} awaited events did arrive)"
        if not self.events:
            text += "; no event arrived at all"
        else:
            recent = []
            for event in self.events[-5:]:
                word = f"{event.get('injection')}/{event.get('phase')}"
                if event.get("action") not in (None, "on"):
                    word += f"[{event.get('action')}]"
                if event.get("eval") is not None:
                    word += f"@eval{event.get('eval')}"
                if len(self.nodes) > 1:
                    word += f"@{event.get('node')}"
                recent.append(f"{word}#{event.get('seq')}")
            text += f"; {len(self.events)} event(s) arrived, the last: {', '.join(recent)}"
            for spec in missing:
                seen = sum(1 for e in self.events if spec.matches(e))
                if seen:
                    text += f"; {seen} event(s) matching {spec.description} arrived but earlier waits took them"
        reconnects = self._reconnects()
        if reconnects:
            text += f"; the stream reconnected {reconnects} time(s)"
        return text

    # -- iteration ----------------------------------------------------------------------------

    async def next(self, cursor: "Cursor") -> Event:
        """The event at the cursor (waiting for it), taking nothing."""
        while True:
            marks = self.marks
            if cursor.overflow < len(marks) and marks[cursor.overflow].position <= cursor.pos:
                mark = marks[cursor.overflow]
                cursor.overflow += 1
                if self.raise_on_overflow:
                    raise mark.error()
                continue
            if cursor.pos < len(self.events):
                cursor.pos += 1
                return self.events[cursor.pos - 1]
            if self.closed is not None:
                if self.closed_by_client:
                    raise StopAsyncIteration
                raise self.closed_error()
            assert self._arrived is not None
            await self._arrived.wait()


class Cursor:
    """A position among a mailbox's events (and its overflow marks), for ``async for``.
    ``check`` runs before each step (the stream's "is it open" test)."""

    def __init__(self, mailbox: Mailbox, start: int, check: Callable[[], None]) -> None:
        self.mailbox = mailbox
        self.check = check
        self.pos = start
        self.overflow = next((i for i, m in enumerate(mailbox.marks) if m.position >= start), len(mailbox.marks))

    def __aiter__(self) -> "Cursor":
        return self

    async def __anext__(self) -> Event:
        self.check()
        return await self.mailbox.next(self)
