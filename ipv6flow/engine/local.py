"""The in-process engine: read each path, decode each frame, fold into a Summary.

``analyze_paths(paths, options)`` returns an ``options.RunResult``: the
Summary and, beside it, whether Ctrl-C cut the run short and how many
frames each decoder took. A pass over an open capture (``first_pass``,
``catch_up``, ``services_frames``) returns what it counted.

Nothing read is lost: an error part-way through a file keeps every frame
before it, and is recorded on that input's entry (``errors``); a file cut
off mid-record is a warning with ``truncated: true``.

NAT64 traffic (see analysis/nat64.py) is counted for a prefix from the
moment it is known: from the first frame for the well-known, local-use and
configured prefixes; for a prefix that evidence in the captures discovers
(DNS64, RFC 7050, PREF64), from the batch after its discovery on. The
frames before that point are counted by a second pass that reads only as
far as needed: the start of a file up to the discovery point, and whole
files that came before the file of the discovery. stdin cannot be read
twice, so it is first spooled to a temporary file (deleted afterwards).
The translation section sizes those prefixes the same way: the first pass
from the discovery on (``Summary.count_nat64``), the same second pass the
frames before it (analysis/translation.py ``Late``, joined by ``prepend``).
"""

import os
import sys
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ..analysis.nat64 import Nat64State, inspect_frame, prefixes_at
from ..analysis.services import NameTraffic
from ..analysis.translation import Late, prepend
from ..capture import open_capture
from ..capture.sflow import SampledCapture
from ..decode import DecodeOptions, decode_frame
from ..decode.columns import columns_of, frame_columns
from ..errors import CaptureError
from ..fold import nat64_batch, services_batch, summarize_batch
from ..options import Options, RunResult
from ..summary import Summary

SPOOL_CHUNK = 1 << 20


def new_input(path: str) -> dict:
    return {"path": path, "format": None, "compression": None, "linktypes": [],
            "packets": 0, "bytes": 0, "truncated": False, "errors": [], "warnings": []}


REFERENCE_CHECK_EVERY = 4096     # frames between discovery checks, reference decoder


class LivePrefixes:
    """NAT64 prefixes counted in the first pass, and where each began."""

    def __init__(self, static):
        self.static = set(static)
        self.order = sorted(static)
        self.start = {}                 # discovered prefix -> (path index, frame index)

    def update(self, state, path_i, frame_i):
        for p in sorted(state.discovered()):
            if p not in self.static and p not in self.start:
                self.order.append(p)
                self.start[p] = (path_i, frame_i)

    def catch_up(self, path_i):
        """{prefix: frame limit or None (whole file)} for the second pass."""
        jobs = {}
        for p, (j, k) in self.start.items():
            if j > path_i:
                jobs[p] = None
            elif j == path_i and k > 0:
                jobs[p] = k
        return jobs

    def recounted(self):
        """The prefixes whose translation figures the second pass counts
        over every file (``recounted``)."""
        return recounted(self.static | set(self.start),
                         lambda p: (-1, -1) if p in self.static else self.start[p])


def recounted(prefixes, start):
    """Prefixes whose first-pass translation figures do not stand: a frame
    goes to the first prefix in sorted order that holds one side (not
    both), so a prefix found later that sorts before X (one holding X,
    say) would have taken frames X counted before it was known. Their
    figures are dropped and the second pass counts them over the whole
    input. ``start(p)``: where the first pass began counting p (None:
    never). Found prefixes sort after the well-known and local-use ones
    in practice (2000::/3), so this is empty but for odd input."""
    out = set()
    order = sorted(prefixes)
    for i, x in enumerate(order):
        sx = start(x)
        if sx is not None and any(start(y) is None or start(y) > sx for y in order[:i]):
            out.add(x)
    return out


def translation_jobs(jobs, again):
    """The translation section's second-pass jobs: the NAT64 ones, and
    the whole input for the prefixes counted ``again``."""
    out = {p: k for p, k in jobs.items() if p not in again}
    out.update((p, None) for p in again)
    return out


def translating(options: Options) -> bool:
    """Whether the translation section counts (not for sampled input)."""
    return not options.decode.sflow_port


def late_state(summary: Summary, options: Options, found, jobs):
    """A ``Late`` translation state for ``jobs`` (None when there is none
    or translation is off)."""
    if not jobs or not translating(options):
        return None
    static = summary.nat64.static_prefixes()
    return Late(set(static) | set(found), jobs, options.decode.aftr, options.decode.map_rules)


class Read(NamedTuple):
    """What a pass over an open capture counted: its Summary, the frames
    the reference decoder handled, and what stopped it early (a
    CaptureError or KeyboardInterrupt), or None when it read to the end."""
    summary: Summary
    fallback: int
    stopped: BaseException | None = None


def first_pass(cap, options: Options, summary: Summary, live: LivePrefixes, path_i: int,
               on_frame, progress=None) -> Read:
    """First pass over an open capture, folded into ``summary``: every
    figure, and NAT64 traffic for the prefixes live at each point.
    ``progress(bytes, frames)`` hears how far it got."""
    nat = summary.nat64
    opts = options.decode
    fallback = done = seen = 0
    summary.count_nat64(live.start)
    try:
        if options.decoder == "fast":
            for batch in cap.iter_batches(reuse=True):
                fallback += summarize_batch(summary, batch, opts, on_frame, list(live.order))
                done += len(batch)
                live.update(nat, path_i, done)
                summary.count_nat64(live.start)
                if progress is not None:
                    progress(cap.bytes_read - seen, len(batch))
                    seen = cap.bytes_read
            return Read(summary, fallback)
        add = summary.add
        prefixes = list(live.order)
        for ts, linktype, wirelen, data in cap:
            f = decode_frame(linktype, data, wirelen, opts)
            if f.problem is not None:
                on_frame(f, linktype)
            add(f, ts, wirelen, linktype, data)
            inspect_frame(nat, f, data, wirelen, prefixes, True)
            done += 1
            if done % REFERENCE_CHECK_EVERY == 0:
                live.update(nat, path_i, done)
                summary.count_nat64(live.start)
                prefixes = list(live.order)
                if progress is not None:
                    progress(cap.bytes_read - seen, REFERENCE_CHECK_EVERY)
                    seen = cap.bytes_read
    except (CaptureError, KeyboardInterrupt) as e:
        return Read(summary, fallback + (0 if options.decoder == "fast" else done), e)
    live.update(nat, path_i, done)
    summary.count_nat64(live.start)
    return Read(summary, done)


def catch_up(cap, options: Options, jobs, state: Nat64State | None = None,
             late: Late | None = None) -> Nat64State:
    """Second pass: the NAT64 traffic of ``jobs`` ({prefix: limit}) only,
    counted into a new Nat64State (or ``state``: the one a sampled
    capture weights, ``open_input``); returns it. ``late`` (its own jobs)
    takes the translation section's share of the same frames."""
    state = Nat64State() if state is None else state
    prefixes = sorted(jobs)
    ends = list(jobs.values()) + ([late.last] if late is not None else [])
    last = None if None in ends else max(ends, default=0)
    done = 0
    opts = options.decode
    interval = options.interval
    if options.decoder == "fast":
        for batch in cap.iter_batches(reuse=True):
            nat64_batch(state, batch, opts, prefixes, done, jobs, late, interval)
            done += len(batch)
            if last is not None and done >= last:
                break
        return state
    rows, at = [], []
    for ts, linktype, wirelen, data in cap:
        if last is not None and done >= last:
            break
        f = decode_frame(linktype, data, wirelen, opts)
        inspect_frame(state, f, data, wirelen, prefixes_at(prefixes, jobs, done), False)
        if late is not None:
            row = frame_columns(f, linktype, data, ts, wirelen)
            if row is not None:
                rows.append(row)
                at.append(done)
                if len(rows) >= REFERENCE_CHECK_EVERY:
                    _late_rows(late, rows, at, interval)
                    rows, at = [], []
        done += 1
    if rows:
        _late_rows(late, rows, at, interval)
    return state


def _late_rows(late, rows, at, interval):
    cols = columns_of(rows)
    late.observe_at(cols, cols["wire"], np.array(at, dtype=np.int64), interval)


def analyze_path(path: str, options: Options, shown: str | None = None,
                 live: LivePrefixes | None = None, path_i: int = 0, window=None,
                 progress=None, read=first_pass) -> RunResult:
    """The first pass over one capture; the Summary's single ``inputs``
    entry says how reading went. ``options.decoder`` is "fast" (numpy
    kernel over batches, reference decoder for the rows it leaves) or
    "reference"; both give the same figures. ``read`` replaces
    ``first_pass`` (same arguments, returns a ``Read``): engine/parallel.py
    hands the records to worker processes instead of decoding them here."""
    s = Summary(options.interval, options.nat64_prefixes, options.decode)
    s.nat64.want_queries = options.want_queries
    result = RunResult(s)
    entry = new_input(shown or path)
    unsupported = set()

    def on_frame(f, linktype):
        if f.problem == "unsupported_linktype" and linktype not in unsupported:
            unsupported.add(linktype)
            entry["warnings"].append(
                f"link type {linktype} is not supported: its frames count as non_ip")

    cap = None
    stopped = None
    try:
        with open_input(path, options.decode, window, s) as cap:
            entry["format"], entry["compression"] = cap.format, cap.compression
            if live is None:
                live = LivePrefixes(s.nat64.static_prefixes())
            s, result.fallback, stopped = read(cap, options, s, live, path_i, on_frame, progress)
    except (CaptureError, KeyboardInterrupt) as e:
        stopped = e
    if isinstance(stopped, CaptureError):
        entry["errors"].append(stopped.message)
    elif isinstance(stopped, KeyboardInterrupt):
        # Ctrl-C: keep what was read; the caller reports it as partial.
        result.interrupted = True
        entry["warnings"].append("interrupted: only the frames read before Ctrl-C are counted")
    # Every frame read (also before an error) is in the Summary.
    totals = s.counts()["totals"]
    packets, nbytes = totals["packets"], totals["bytes"]
    if cap is not None:
        result.landed = cap.landed
        entry["linktypes"] = list(cap.linktypes)
        entry["truncated"] = bool(cap.truncated)
        entry["warnings"][:0] = list(cap.warnings)
    entry["packets"], entry["bytes"] = packets, nbytes
    s.add_input(entry)
    result.summary, result.frames = s, packets
    return result


def open_input(path: str, opts: DecodeOptions, window=None, summary=None, nat64=None):
    """The capture at ``path``; with ``opts.sflow_port`` the frames sampled
    in its sFlow datagrams (capture/sflow.py), weighted into ``summary``
    (first pass: its ``sampling`` section too) or ``nat64`` (second pass)."""
    cap = open_capture(path, window)
    if not opts.sflow_port:
        return cap
    if summary is not None:
        return SampledCapture(cap, opts.sflow_port, summary.sampling, summary.set_weight)

    def weight(rate, cut):
        nat64.weight = rate
    return SampledCapture(cap, opts.sflow_port, None, weight)


def count_nat64(path: str, options: Options, jobs, window=None, late=None) -> Nat64State:
    """Second pass over one path: the NAT64 traffic of ``jobs`` (and
    translation's share, into ``late``)."""
    state = Nat64State()
    try:
        with open_input(path, options.decode, window, nat64=state) as cap:
            catch_up(cap, options, jobs, state, late)   # the state the sampled reader weights
    except CaptureError:
        pass                            # reported by the first pass; frames before it counted
    return state


@contextmanager
def readable_twice(paths):
    """The paths, with '-' replaced by a spooled copy of stdin."""
    spooled = None
    try:
        out = []
        for p in paths:
            if p == "-" and spooled is None:
                import shutil
                import tempfile         # only for stdin (start-up: issue 14)
                fd, spooled = tempfile.mkstemp(prefix="ipv6flow-stdin-")
                with os.fdopen(fd, "wb") as fh:
                    shutil.copyfileobj(sys.stdin.buffer, fh, SPOOL_CHUNK)
            out.append(spooled if p == "-" else p)
        yield out
    finally:
        if spooled is not None:
            os.unlink(spooled)


def count_services(path: str, options: Options, services, window=None) -> NameTraffic:
    """A pass that counts the traffic to the addresses DNS gave for each
    name of ``services`` (``Nat64State.name_answers``)."""
    try:
        with open_capture(path, window) as cap:
            return services_frames(cap, options, services)
    except CaptureError:
        return NameTraffic(services)     # reported by the first pass


def services_frames(cap, options: Options, services) -> NameTraffic:
    """The traffic of an open capture to the addresses of ``services``; a
    read error ends it, the frames before it counted (the first pass
    reports the error)."""
    index = NameTraffic(services)
    try:
        if options.decoder == "fast":
            for batch in cap.iter_batches(reuse=True):
                services_batch(index, batch, options.decode)
        else:
            for ts, linktype, wirelen, data in cap:
                index.add_frame(decode_frame(linktype, data, wirelen, options.decode), wirelen)
    except CaptureError:
        pass
    return index


def analyze_paths(paths, options: Options, progress=None) -> RunResult:
    """All ``paths`` in this process: one Summary, with the DNS service
    report when ``options.dns_suffixes`` is set (a tuple of domain suffixes;
    empty: every name)."""
    suffixes = options.dns_suffixes
    with readable_twice(paths) as real:
        total = RunResult(Summary(options.interval, options.nat64_prefixes, options.decode))
        live = LivePrefixes(total.summary.nat64.static_prefixes())
        for i, (shown, path) in enumerate(zip(paths, real)):
            part = analyze_path(path, options, shown, live, i, None, progress)
            total = total.merge(part) if i else total.adopt(part)
            if part.interrupted:
                return total
            # evidence from all parts so far (an A in one file, its AAAA in another)
            live.update(total.summary.nat64, i + 1, 0)
        summary = total.summary
        found = list(live.start)
        again = live.recounted() if translating(options) else set()
        lates = None
        for i, path in enumerate(real):
            jobs = live.catch_up(i)
            late = late_state(summary, options, found, translation_jobs(jobs, again))
            if jobs or late is not None:
                summary.nat64 = summary.nat64.merge(count_nat64(path, options, jobs, late=late))
            if late is not None:
                lates = late if lates is None else lates.merge(late, options.interval)
        if found and translating(options):
            prepend(summary.translation, lates, options.interval, again, found)
        if suffixes is not None:
            names = summary.nat64.name_answers(suffixes)
            index = NameTraffic(names)
            if index.v4 or index.v6:
                for path in real:
                    index.merge_traffic(count_services(path, options, names))
            summary.services = index.report(suffixes)
    return total
