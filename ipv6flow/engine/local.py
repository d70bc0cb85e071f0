"""The in-process engine: read each path, decode each frame, fold into a Summary.

Nothing read is lost: an error part-way through a file keeps every frame
before it, and is recorded on that input's entry (``errors``); a file cut
off mid-record is a warning with ``truncated: true``.

NAT64 needs two passes (see analysis/nat64.py): the first pass makes the
whole Summary and counts the traffic of the NAT64 prefixes known from the
start; if evidence in the captures discovered other prefixes, a second
pass over the same inputs counts only their traffic. stdin cannot be read
twice, so it is first spooled to a temporary file (deleted afterwards).
"""

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager

from ..analysis.nat64 import inspect_frame
from ..analysis.services import ServiceIndex
from ..capture import open_capture
from ..decode import DecodeOptions, decode_frame
from ..errors import CaptureError
from ..fast import services_batch, summarize_batch
from ..summary import Summary

SPOOL_CHUNK = 1 << 20


def new_input(path: str) -> dict:
    return {"path": path, "format": None, "compression": None, "linktypes": [],
            "packets": 0, "bytes": 0, "truncated": False, "errors": [], "warnings": []}


def _frames(cap, opts, decoder, summary, prefixes, observe, on_frame, fallback):
    """Decode every frame of an open capture into ``summary`` (whole
    figures when ``observe``; else NAT64 traffic for ``prefixes`` only).
    ``fallback[0]`` counts the frames the reference decoder handled."""
    nat = summary.nat64
    if decoder == "fast":
        for batch in cap.iter_batches():
            fallback[0] += summarize_batch(summary, batch, opts, on_frame, prefixes, observe)
        return
    add = summary.add
    for ts, linktype, wirelen, data in cap:
        f = decode_frame(linktype, data, wirelen, opts)
        if observe:
            if f.problem is not None:
                on_frame(f, linktype)
            add(f, ts, wirelen)
        inspect_frame(nat, f, data, wirelen, prefixes, observe)
        fallback[0] += 1


def analyze_path(path: str, opts: DecodeOptions, interval: float, decoder: str = "fast",
                 stats: dict | None = None, nat64_prefixes=(), shown: str | None = None) -> Summary:
    """Summary of one capture (first pass); its single ``inputs`` entry says
    how reading went. ``decoder`` is "fast" (numpy kernel over batches,
    reference decoder for the rows it leaves) or "reference"; both give the
    same figures. ``stats``, if given, receives frame and fallback counts."""
    s = Summary(interval, nat64_prefixes)
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
        with open_capture(path) as cap:
            entry["format"], entry["compression"] = cap.format, cap.compression
            _frames(cap, opts, decoder, s, s.nat64.static_prefixes(), True, on_frame, fallback)
    except CaptureError as e:
        entry["errors"].append(e.message)
    # Every frame read (also before an error) is in the Summary.
    totals = s.counts()["totals"]
    packets, nbytes = totals["packets"], totals["bytes"]
    if cap is not None:
        entry["linktypes"] = list(cap.linktypes)
        entry["truncated"] = bool(cap.truncated)
        entry["warnings"][:0] = list(cap.warnings)
    entry["packets"], entry["bytes"] = packets, nbytes
    s.add_input(entry)
    if stats is not None:
        stats["frames"] = stats.get("frames", 0) + packets
        stats["fallback"] = stats.get("fallback", 0) + fallback[0]
    return s


def count_nat64(path: str, opts: DecodeOptions, decoder: str, summary: Summary, prefixes) -> None:
    """Second pass: add the traffic of ``prefixes`` in ``path`` to ``summary``."""
    scratch = Summary(summary.interval)
    try:
        with open_capture(path) as cap:
            _frames(cap, opts, decoder, scratch, prefixes, False, lambda f, lt: None, [0])
    except CaptureError:
        pass                            # reported by the first pass; frames before it counted
    summary.nat64 = summary.nat64.merge(scratch.nat64)


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


def count_services(path: str, opts: DecodeOptions, decoder: str, index: ServiceIndex) -> None:
    """A pass that counts the traffic to the addresses DNS gave for each name."""
    try:
        with open_capture(path) as cap:
            if decoder == "fast":
                for batch in cap.iter_batches():
                    services_batch(index, batch, opts)
            else:
                for ts, linktype, wirelen, data in cap:
                    index.add_frame(decode_frame(linktype, data, wirelen, opts), wirelen)
    except CaptureError:
        pass                            # reported by the first pass; frames before it counted


def analyze_paths(paths, opts: DecodeOptions, interval: float, decoder: str = "fast",
                  stats: dict | None = None, nat64_prefixes=(), services=None) -> Summary:
    """One Summary of all ``paths``. ``services``: None, or a tuple of
    domain suffixes (empty: every name) for the DNS service report."""
    with readable_twice(paths) as real:
        total = Summary(interval, nat64_prefixes)
        for shown, path in zip(paths, real):
            total = total.merge(analyze_path(path, opts, interval, decoder, stats,
                                             nat64_prefixes, shown))
        static = set(total.nat64.static_prefixes())
        later = sorted(set(total.nat64.discovered()) - static)
        if later:
            for path in real:
                count_nat64(path, opts, decoder, total, later)
        if services is not None:
            index = ServiceIndex(total.nat64.services(services))
            if index.v4 or index.v6:
                for path in real:
                    count_services(path, opts, decoder, index)
            total.services = index.report(services)
    return total
