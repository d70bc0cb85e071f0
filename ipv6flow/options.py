"""The options of a run, and what a run gives back beside its figures.

``Options`` is the one frozen object every command builds from its command
line (cli.py) and hands to the engines, which hand it on to their workers
(local processes, Dask, live capture, sFlow collection, watch) unchanged:
no engine function takes the options as a row of positional flags. It is
checked once, when it is made (``__post_init__``): a value no command may
run with raises ``UsageError`` there, and nowhere else; cli.py turns that
into the usual ``Usage: ... Error: ...`` (exit code 2). The command line's
own types (``Interval`` and Click's ranges) check the syntax of each value
first, with their own messages.

``RunResult`` is what a run returns: the ``Summary`` (figures only) and
beside it how the run went, which is not a figure and does not merge as
one: whether it was interrupted (the report is then ``partial``), whether
a part of a file ended its walk on its boundary (``landed``), how many
frames the decoders handled, and, for live and collect, the counters of the
capture and why it stopped.

This module imports no numpy and no engine: ``ipv6flow --version`` and the
help pages load it with Click alone (tests/test_cli.py checks).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .errors import UsageError

DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 1e-6         # seconds; bins narrower than a microsecond mean nothing
DECODERS = ("fast", "reference")
CLIENT_KEYS = ("auto", "mac", "ipv4", "ipv6-64")   # what identifies a client
OFF = "off"                 # --no-clients: no clients, flows or interface ids
ENGINES = ("local", "dask")
STATUS_EVERY = 2.0          # live and collect: seconds between status lines
SETTLE_SECONDS = 10.0       # watch: a file is complete once unchanged this long ...
POLL_SECONDS = 5.0          # ... looked at this often
SNAPLEN = 262144            # live: libpcap's MAXIMUM_SNAPLEN, tcpdump's default
BUFFER_BYTES = 32 << 20     # live: the kernel ring (tcpdump -B); collect: the socket buffer
MIN_PART_BYTES = 32 << 20   # analyze: the smallest part a pcap file is cut into for workers


def default_workers() -> int:
    """``--workers`` when not given: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                       # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Options:
    """Everything a command was asked for, checked. Each engine reads the
    fields it needs; the others keep their defaults."""

    # What to analyse, every command and every worker (decode.DecodeOptions;
    # None: its defaults).
    decode: object = None
    interval: float = DEFAULT_INTERVAL
    decoder: str = "fast"
    nat64_prefixes: tuple = ()
    dns_suffixes: tuple | None = None    # the DNS service report: None, none; (): every
                                         # name; else the names under these suffixes
    # Where analyze runs.
    workers: int | None = None       # None: the machine's cores
    engine: str = "local"
    scheduler: str | None = None     # Dask scheduler address
    # How long live and collect run, and what they write meanwhile.
    duration: float | None = None
    count: int | None = None         # frames (live) or datagrams (collect)
    report_every: float | None = None
    write: str | None = None         # keep what was captured in this pcap
    status_every: float = STATUS_EVERY
    # The capture (live) or the socket (collect).
    bpf: str | None = None
    snaplen: int = SNAPLEN
    promisc: bool = True
    buffer_bytes: int = BUFFER_BYTES
    # watch: when a file is complete, and where reports go.
    pattern: str = "*.pcap*"
    state_file: str | None = None
    out_dir: str | None = None
    merged_file: str | None = None
    settle: float = SETTLE_SECONDS
    newest_settle: float | None = None
    poll: float = POLL_SECONDS
    once: bool = False

    def __post_init__(self):
        if self.decode is None:
            from .decode.frame import DecodeOptions
            object.__setattr__(self, "decode", DecodeOptions())
        if not (isinstance(self.interval, (int, float)) and math.isfinite(self.interval)
                and self.interval >= MIN_INTERVAL):
            raise UsageError(f"{self.interval} is not a number of seconds of at least "
                             f"{MIN_INTERVAL:g}")
        if self.decoder not in DECODERS:
            raise UsageError(f"unknown decoder {self.decoder!r}")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}")
        if self.workers is not None and self.workers < 1:
            raise UsageError("workers must be at least 1")
        if self.count is not None and self.count < 1:
            raise UsageError("count must be at least 1")
        if self.duration is not None and not self.duration >= 0:
            raise UsageError("duration must be a number of seconds (0 or more)")
        if self.report_every is not None and not self.report_every > 0:
            raise UsageError("report-every must be a positive number of seconds")
        if not self.status_every >= 0:
            raise UsageError("status-every must be a number of seconds (0 or more)")
        if not self.settle >= 0 or not self.poll > 0 or not (
                self.newest_settle is None or self.newest_settle >= 0):
            raise UsageError("settle and poll times must be positive numbers of seconds")
        if self.decode.sflow_port:
            # samples are not a population (docs/DECISIONS.md, "Sampled traffic")
            if self.dns_suffixes is not None:
                raise UsageError("--dns-report and --domain-suffix do not work on sampled "
                                 "headers (--sflow): DNS answers are cut by the exporter")
            if self.decode.org_map is not None:
                raise UsageError("--org-map does not work on sampled headers (--sflow): "
                                 "its clients, flows and DNS names need every packet")

    @property
    def want_queries(self) -> bool:
        """Whether DNS queries are kept for the service report."""
        return self.dns_suffixes is not None


@dataclass
class RunResult:
    """A run's figures (``summary``) and, beside them, how the run went."""

    summary: object                   # summary.Summary
    interrupted: bool = False         # Ctrl-C or SIGTERM: the figures cover what was read
    landed: bool | None = None        # a part of a file: its walk ended on its boundary
    frames: int = 0                   # frames decoded
    fallback: int = 0                 # ... of which by the reference decoder
    stopped_by: str | None = None     # live, collect: count, duration, signal, stop, error
    capture: dict = field(default_factory=dict)   # live, collect: the source's counters

    def report(self) -> dict:
        """The JSON report (``Summary.to_report``), ``partial`` when interrupted."""
        return self.summary.to_report(partial=self.interrupted)

    def adopt(self, other: "RunResult") -> "RunResult":
        """``merge`` into a run that has read nothing yet: ``other``'s
        figures as they are, without the copy (``landed`` is not carried)."""
        return RunResult(other.summary, self.interrupted or other.interrupted, None,
                         self.frames + other.frames, self.fallback + other.fallback)

    def merge(self, other: "RunResult") -> "RunResult":
        """Both runs' figures and counts, in this order (``landed`` is a
        part's own and is not carried)."""
        return RunResult(self.summary.merge(other.summary),
                         self.interrupted or other.interrupted, None,
                         self.frames + other.frames, self.fallback + other.fallback)
