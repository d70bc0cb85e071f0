"""The run loop of the long-running sources: ``live`` (a libpcap handle,
engine/live.py) and ``collect`` (a UDP socket of sFlow datagrams,
engine/collect.py).

Both read a source that never ends by itself, fold what they read into
one Summary in batches, and share every rule of a run, written here once:

* a batch is folded when the source says one is due (full, or idle when
  ``flush_when_idle``), and at least every ``FLUSH_SECONDS``;
* ``--status-every S``: a status line (the source's ``status``) every S
  seconds; ``--report-every S``: the report so far (``snapshot``, pending
  frames folded first) to ``on_report`` every S seconds (cli.py writes it
  to ``-o`` atomically);
* ``--count N`` ends at exactly N items (frames, datagrams) read;
  ``--duration``, SIGINT/SIGTERM (in the main thread) or the ``stop``
  event end the run after a drain: reading goes on until the source is
  empty at least ``drain_idle`` seconds after the stop, at most
  ``drain_max`` seconds; a second signal skips the drain;
* a read error (the interface went away) or a ``--write`` error ends the
  run, and what was read before it is kept.

The loop never blocks longer than ``TIMEOUT_MS``: it ``poll``s the
source's descriptor, so a signal or ``--duration`` ends an idle run.
"""

import math
import select
import time

from ..errors import Ipv6flowError

TIMEOUT_MS = 100              # the longest poll (and live's TPACKET_V3 block timeout)
FLUSH_SECONDS = 0.25          # pending items become a batch at least this often


class Source:
    """What the loop needs of a source; engine/live.py and collect.py
    subclass it. ``received``: items read so far (folded or pending);
    ``pending``: items read and not folded; ``failed``: a ``--write`` error
    happened (the entry's ``errors`` say which)."""

    fd = -1
    events = select.POLLIN
    read_at_once = 4096           # items read between looks at the clock
    drain_idle = 0.0              # after a stop: read until empty this long after it ...
    drain_max = 0.5               # ... at most this long
    flush_when_idle = False       # fold as soon as the source is empty
    received = 0
    pending = 0
    failed = False

    def __init__(self):
        self.entry = None         # the run's ``inputs`` entry, set by the subclass

    def read(self, limit: int):
        """Read up to ``limit`` items: "empty" when none was waiting,
        "full" when a batch is due, else None. Raises Ipv6flowError when
        the source fails."""
        raise NotImplementedError

    def fold(self) -> None:
        """Fold the pending items into the Summary."""
        raise NotImplementedError

    def status(self, seconds: float) -> str:
        """The status line; ``seconds`` since the last one."""
        raise NotImplementedError

    def snapshot(self) -> dict:
        """The report so far."""
        raise NotImplementedError


def run_to_end(source: Source, options, signals, stop, on_status, on_report, greeting: str):
    """``live`` and ``collect``: ``greeting`` to ``on_status``, then ``run``
    until it stops; returns ``source.finish(why, seconds)`` (the RunResult)."""
    say = on_status or (lambda line: None)
    say(greeting)
    t0 = time.monotonic()
    reason = run(source, options, signals, stop, say, on_report)
    return source.finish(reason, time.monotonic() - t0)


def run(source: Source, options, signals, stop=None, say=None, on_report=None) -> str:
    """Read ``source`` until ``options.count``, ``options.duration``, a
    signal, ``stop`` or an error; returns why it stopped: "count",
    "duration", "signal", "stop" or "error"."""
    say = say or (lambda line: None)
    duration, count = options.duration, options.count
    status_every, report_every = options.status_every, options.report_every
    poller = select.poll()
    poller.register(source.fd, source.events)
    t0 = time.monotonic()
    last_flush = status_t = t0
    next_status = t0 + status_every if status_every else math.inf
    next_report = t0 + report_every if report_every else math.inf
    reason = None
    drain_from = drain_until = math.inf
    while True:
        now = time.monotonic()
        if reason is None:
            if signals.count:
                reason = "signal"
            elif stop is not None and stop.is_set():
                reason = "stop"
            elif duration is not None and now - t0 >= duration:
                reason = "duration"
            if reason is not None:
                drain_from = now + source.drain_idle
                drain_until = now + source.drain_max
        if source.failed:
            reason = "error"
            break
        if reason is not None and (now >= drain_until or signals.count > 1):
            break
        want = source.read_at_once
        if count is not None:
            want = min(want, count - source.received)
        try:
            got = source.read(want)
        except Ipv6flowError as e:
            source.entry["errors"].append(str(e))
            reason = "error"
            break
        if count is not None and source.received >= count:
            reason = "count"
            break
        if source.pending and (got == "full" or (got == "empty" and source.flush_when_idle)
                               or now - last_flush >= FLUSH_SECONDS):
            source.fold()
            last_flush = now
        if now >= next_status:
            say(source.status(max(now - status_t, 1e-9)))
            status_t = now
            next_status = now + status_every
        if now >= next_report and on_report is not None:
            if source.pending:
                source.fold()
                last_flush = now
            on_report(source.snapshot())
            next_report = now + report_every
        if got == "empty":
            if now >= drain_from:
                break                     # drained: what was captured before the stop is read
            wait = min(TIMEOUT_MS / 1000, next_status - now, next_report - now, drain_from - now)
            if duration is not None and reason is None:
                wait = min(wait, t0 + duration - now)
            poller.poll(max(0, int(wait * 1000)) + 1)
    if source.pending:
        source.fold()
    return reason
