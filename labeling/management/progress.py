"""Progress for commands, fed by progress(done, total, phase): one tqdm bar at a time on a terminal, plain lines in
a log.

A bar redraws itself with carriage returns and cursor moves, which a log file keeps as hundreds of "ESC[A" lines;
so when the stream is not a terminal the same calls write a line when a phase starts, at every tenth of it, at
least every ``every`` seconds, and when it ends, without a control character.
"""

import sys
import time
from typing import TextIO

from tqdm import tqdm


class PhaseBars:
    """A progress callback for ``progress(done, total, phase)``: one phase ("checking", then "writing") at a time.

    A total of 0 means the total is not known yet. A phase such as "training: epoch 2/5, loss 0.41" is the phase
    "training" with a changing detail, shown after the bar or at the end of the line. When ``done`` goes back
    below what a phase reached, the same phase has started over (the next dataset's "writing") and gets a new bar.
    Use it as a context manager, or call close() when the work ends, also when it fails.

    Args:
        unit: what is counted ("img", "row", "%").
        stream: where to write; sys.stderr by default. A Django command's ``self.stderr`` works too.
        every: in a log, the longest wait in seconds between two lines of a phase.
    """

    def __init__(self, unit: str = "row", *, stream: TextIO | None = None, every: float = 30.0):
        self.unit = unit
        # Django's OutputWrapper appends a newline to every write, which would break a bar's redraws: use the
        # stream it wraps.
        self.stream = getattr(stream, "_out", stream) or sys.stderr
        self.every = every
        self.tty = _is_tty(self.stream)
        self.phase = None
        self.bar = None
        self._line = None

    def __call__(self, done: int, total: int, phase: str = "") -> None:
        phase, _, detail = phase.partition(": ")
        current = self.bar if self.tty else self._line
        if phase != self.phase or current is None or done < current.n:
            self.close()
            self.phase = phase
            if self.tty:
                self.bar = tqdm(total=total or None, desc=phase, unit=self.unit, file=self.stream,
                                mininterval=0.5, dynamic_ncols=True)
            else:
                self._line = _LogLines(phase, self.unit, self.stream, every=self.every)
        if self.tty:
            if detail:
                self.bar.set_postfix_str(detail, refresh=False)
            if total and self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        else:
            self._line.update(done, total, detail)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._line is not None:
            self._line.close()
            self._line = None
        self.phase = None

    def __enter__(self) -> "PhaseBars":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _LogLines:
    """One phase written as plain lines: "writing: 300/1000 row (30%)"."""

    def __init__(self, phase: str, unit: str, stream: TextIO, *, every: float):
        self.phase, self.unit, self.stream, self.every = phase or "working", unit, stream, every
        self.n, self.total, self.detail = 0, 0, ""
        self.started = self.last_time = time.monotonic()
        self.last_tenth = None
        self.written = None  # the (n, total) of the last line, so that close() does not repeat it

    def update(self, done: int, total: int, detail: str) -> None:
        self.n, self.total, self.detail = done, total, detail or self.detail
        now = time.monotonic()
        tenth = 10 * done // total if total else None
        since = now - self.last_time
        # Every phase gets its first and last line; a long one also a line per tenth (at most one a second) and one
        # at least every `every` seconds.
        if self.written is None or self.ended or since >= self.every or (tenth != self.last_tenth and since >= 1.0):
            self.last_tenth = tenth
            self._write(now)

    @property
    def ended(self) -> bool:
        return bool(self.total) and self.n >= self.total

    def close(self) -> None:
        if self.written != (self.n, self.total):
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        if self.written == (self.n, self.total) and self.ended:
            return  # the last line is out already
        count = f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)" if self.total \
            else f"{self.n} {self.unit}"
        text = f"{self.phase}: {count}"
        if self.detail:
            text += f", {self.detail}"
        if self.ended:
            text += f", done in {now - self.started:.1f} s"
        self.stream.write(_plain(text) + "\n")
        self.stream.flush()
        self.last_time, self.written = now, (self.n, self.total)


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _plain(text: str) -> str:
    """The text without control characters, which a message from elsewhere (a file name, an error) could carry."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
