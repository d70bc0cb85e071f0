"""The in-process engine: read each path, decode each frame, fold into a Summary.

Nothing read is lost: an error part-way through a file keeps every frame
before it, and is recorded on that input's entry (``errors``); a file cut
off mid-record is a warning with ``truncated: true``.
"""

from ..capture import open_capture
from ..decode import DecodeOptions, decode_frame
from ..errors import CaptureError
from ..fast import summarize_batch
from ..summary import Summary


def new_input(path: str) -> dict:
    return {"path": path, "format": None, "compression": None, "linktypes": [],
            "packets": 0, "bytes": 0, "truncated": False, "errors": [], "warnings": []}


def analyze_path(path: str, opts: DecodeOptions, interval: float,
                 decoder: str = "fast", stats: dict | None = None) -> Summary:
    """Summary of one capture; its single ``inputs`` entry says how reading went.

    ``decoder`` is "fast" (numpy kernel over batches, reference decoder for
    the rows it leaves) or "reference" (every frame decoded one by one); both
    give the same figures. ``stats``, if given, receives frame and fallback
    counts.
    """
    s = Summary(interval)
    entry = new_input(path)
    unsupported = set()

    def check(f, linktype):
        if f.problem == "unsupported_linktype" and linktype not in unsupported:
            unsupported.add(linktype)
            entry["warnings"].append(
                f"link type {linktype} is not supported: its frames count as non_ip")

    packets = nbytes = fallback = 0
    cap = None
    try:
        with open_capture(path) as cap:
            entry["format"], entry["compression"] = cap.format, cap.compression
            if decoder == "fast":
                for batch in cap.iter_batches():
                    fallback += summarize_batch(s, batch, opts, check)
                    packets += len(batch)
                    nbytes += int(batch.wirelens.sum())
            else:
                add = s.add
                for ts, linktype, wirelen, data in cap:
                    f = decode_frame(linktype, data, wirelen, opts)
                    if f.problem is not None:
                        check(f, linktype)
                    add(f, ts, wirelen)
                    packets += 1
                    nbytes += wirelen
    except CaptureError as e:
        entry["errors"].append(e.message)
    if cap is not None:
        entry["linktypes"] = list(cap.linktypes)
        entry["truncated"] = bool(cap.truncated)
        entry["warnings"][:0] = list(cap.warnings)
    entry["packets"], entry["bytes"] = packets, nbytes
    s.add_input(entry)
    if stats is not None:
        stats["frames"] = stats.get("frames", 0) + packets
        stats["fallback"] = stats.get("fallback", 0) + (fallback if decoder == "fast" else packets)
    return s


def analyze_paths(paths, opts: DecodeOptions, interval: float, decoder: str = "fast",
                  stats: dict | None = None) -> Summary:
    total = Summary(interval)
    for path in paths:
        total = total.merge(analyze_path(path, opts, interval, decoder, stats))
    return total
