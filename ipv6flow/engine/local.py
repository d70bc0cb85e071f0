"""The in-process engine: read each path, decode each frame, fold into a Summary.

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
"""

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager

from ..analysis.nat64 import inspect_frame, prefixes_at
from ..analysis.services import NameTraffic
from ..capture import open_capture
from ..capture.sflow import SampledCapture
from ..decode import DecodeOptions, decode_frame
from ..errors import CaptureError
from ..fold import services_batch, summarize_batch
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


def _frames(cap, opts, decoder, summary, live, path_i, on_frame, fallback, progress=None):
    """First pass over an open capture: every figure, and NAT64 traffic for
    the prefixes live at each point. ``fallback[0]`` counts the frames the
    reference decoder handled; ``progress(bytes, frames)`` hears how far."""
    nat = summary.nat64
    done = 0
    seen = 0
    if decoder == "fast":
        for batch in cap.iter_batches(reuse=True):
            fallback[0] += summarize_batch(summary, batch, opts, on_frame, list(live.order))
            done += len(batch)
            live.update(nat, path_i, done)
            if progress is not None:
                progress(cap.bytes_read - seen, len(batch))
                seen = cap.bytes_read
        return
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
            prefixes = list(live.order)
            if progress is not None:
                progress(cap.bytes_read - seen, REFERENCE_CHECK_EVERY)
                seen = cap.bytes_read
    fallback[0] += done
    live.update(nat, path_i, done)


def _catch_up(cap, opts, decoder, state, jobs):
    """Second pass: NAT64 traffic of ``jobs`` ({prefix: limit}) only."""
    prefixes = sorted(jobs)
    last = None if None in jobs.values() else max(jobs.values())
    done = 0
    if decoder == "fast":
        scratch = Summary()
        scratch.nat64 = state
        for batch in cap.iter_batches(reuse=True):
            summarize_batch(scratch, batch, opts, None, prefixes, False, done, jobs)
            done += len(batch)
            if last is not None and done >= last:
                return
        return
    for ts, linktype, wirelen, data in cap:
        if last is not None and done >= last:
            return
        f = decode_frame(linktype, data, wirelen, opts)
        inspect_frame(state, f, data, wirelen, prefixes_at(prefixes, jobs, done), False)
        done += 1


def analyze_path(path: str, opts: DecodeOptions, interval: float, decoder: str = "fast",
                 stats: dict | None = None, nat64_prefixes=(), shown: str | None = None,
                 live: LivePrefixes | None = None, path_i: int = 0, window=None,
                 progress=None, want_queries: bool = True, frames=None) -> Summary:
    """Summary of one capture (first pass); its single ``inputs`` entry says
    how reading went. ``decoder`` is "fast" (numpy kernel over batches,
    reference decoder for the rows it leaves) or "reference"; both give the
    same figures. ``stats``, if given, receives frame and fallback counts.
    ``frames`` replaces ``_frames`` (same arguments): engine/parallel.py
    hands the records to worker processes instead of decoding them here."""
    s = Summary(interval, nat64_prefixes, opts)
    s.nat64.want_queries = want_queries
    entry = new_input(shown or path)
    unsupported = set()

    def on_frame(f, linktype):
        if f.problem == "unsupported_linktype" and linktype not in unsupported:
            unsupported.add(linktype)
            entry["warnings"].append(
                f"link type {linktype} is not supported: its frames count as non_ip")

    fallback = [0]
    cap = None
    try:
        with open_input(path, opts, window, s) as cap:
            entry["format"], entry["compression"] = cap.format, cap.compression
            if live is None:
                live = LivePrefixes(s.nat64.static_prefixes())
            (frames or _frames)(cap, opts, decoder, s, live, path_i, on_frame, fallback, progress)
    except CaptureError as e:
        entry["errors"].append(e.message)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was read; the caller reports it as partial.
        s.interrupted = True
        entry["warnings"].append("interrupted: only the frames read before Ctrl-C are counted")
    # Every frame read (also before an error) is in the Summary.
    totals = s.counts()["totals"]
    packets, nbytes = totals["packets"], totals["bytes"]
    if cap is not None:
        s.landed = cap.landed
        entry["linktypes"] = list(cap.linktypes)
        entry["truncated"] = bool(cap.truncated)
        entry["warnings"][:0] = list(cap.warnings)
    entry["packets"], entry["bytes"] = packets, nbytes
    s.add_input(entry)
    if stats is not None:
        stats["frames"] = stats.get("frames", 0) + packets
        stats["fallback"] = stats.get("fallback", 0) + fallback[0]
    return s


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


def count_nat64(path: str, opts: DecodeOptions, decoder: str, state, jobs, window=None) -> None:
    """Second pass over one path: add the traffic of ``jobs`` to ``state``."""
    try:
        with open_input(path, opts, window, nat64=state) as cap:
            _catch_up(cap, opts, decoder, state, jobs)
    except CaptureError:
        pass                            # reported by the first pass; frames before it counted


@contextmanager
def readable_twice(paths):
    """The paths, with '-' replaced by a spooled copy of stdin."""
    spooled = None
    try:
        out = []
        for p in paths:
            if p == "-" and spooled is None:
                fd, spooled = tempfile.mkstemp(prefix="ipv6flow-stdin-")
                with os.fdopen(fd, "wb") as fh:
                    shutil.copyfileobj(sys.stdin.buffer, fh, SPOOL_CHUNK)
            out.append(spooled if p == "-" else p)
        yield out
    finally:
        if spooled is not None:
            os.unlink(spooled)


def count_services(path: str, opts: DecodeOptions, decoder: str, index: NameTraffic,
                   window=None) -> None:
    """A pass that counts the traffic to the addresses DNS gave for each name."""
    try:
        with open_capture(path, window) as cap:
            services_frames(cap, opts, decoder, index)
    except CaptureError:
        pass                            # reported by the first pass; frames before it counted


def services_frames(cap, opts: DecodeOptions, decoder: str, index: NameTraffic) -> None:
    """The traffic of an open capture to the addresses of ``index``."""
    if decoder == "fast":
        for batch in cap.iter_batches(reuse=True):
            services_batch(index, batch, opts)
    else:
        for ts, linktype, wirelen, data in cap:
            index.add_frame(decode_frame(linktype, data, wirelen, opts), wirelen)


def analyze_paths(paths, opts: DecodeOptions, interval: float, decoder: str = "fast",
                  stats: dict | None = None, nat64_prefixes=(), services=None,
                  progress=None) -> Summary:
    """One Summary of all ``paths``. ``services``: None, or a tuple of
    domain suffixes (empty: every name) for the DNS service report."""
    with readable_twice(paths) as real:
        total = Summary(interval, nat64_prefixes, opts)
        live = LivePrefixes(total.nat64.static_prefixes())
        for i, (shown, path) in enumerate(zip(paths, real)):
            part = analyze_path(path, opts, interval, decoder, stats, nat64_prefixes, shown,
                                live, i, None, progress, services is not None)
            total = total.merge(part)
            if part.interrupted:
                total.interrupted = True
                return total
            # evidence from all parts so far (an A in one file, its AAAA in another)
            live.update(total.nat64, i + 1, 0)
        for i, path in enumerate(real):
            jobs = live.catch_up(i)
            if jobs:
                scratch = type(total.nat64)()
                count_nat64(path, opts, decoder, scratch, jobs)
                total.nat64 = total.nat64.merge(scratch)
        if services is not None:
            index = NameTraffic(total.nat64.name_answers(services))
            if index.v4 or index.v6:
                for path in real:
                    count_services(path, opts, decoder, index)
            total.services = index.report(services)
    return total
