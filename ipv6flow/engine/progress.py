"""A one-line progress display on stderr for long runs.

Only on a terminal (``enabled`` says so; ``--no-progress`` turns it off),
never in JSON or CSV output: it writes to stderr with carriage returns and
clears its line when done. Redrawn at most ``EVERY`` seconds.
"""

import sys
import time

from ..report.text import human_size as _size

EVERY = 0.25


class Progress:
    def __init__(self, total_bytes: int, enabled: bool, stream=None):
        self.total = total_bytes
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.bytes = 0
        self.frames = 0
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, nbytes: int, frames: int) -> None:
        """Add what was read since the last call."""
        self.bytes += nbytes
        self.frames += frames
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < EVERY:
            return
        self.last = now
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def line(self, now=None) -> str:
        took = max((now or time.monotonic()) - self.start, 1e-6)
        rate = self.frames / took
        parts = []
        if self.total:
            done = min(self.bytes / self.total, 1.0)
            left = took * (1 - done) / done if done > 0 else 0
            parts.append(f"{100 * done:5.1f}% {_size(self.bytes)} of {_size(self.total)}")
            parts.append(f"ETA {left:.0f} s")
        else:
            parts.append(_size(self.bytes))
        parts.insert(1, f"{self.frames:,} frames, {rate:,.0f} frames/s")
        return "ipv6flow: " + ", ".join(parts)

    def close(self) -> None:
        if self.enabled and self.last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
