"""Capture readers: where the bytes come from, nothing about what they mean.

Interface (the rest of ipv6flow relies on exactly this):

    from ipv6flow.capture import open_capture, Record

    with open_capture(path) as cap:      # path "-" reads stdin (binary)
        cap.format        # "pcap" | "pcapng"
        cap.compression   # None | "gzip" | "bzip2" | "xz" | "zstd"
        for rec in cap:   # Record(ts, linktype, wirelen, data)
            ...
        cap.linktypes     # list[int], link types in the order first seen
        cap.truncated     # True when the file was cut off mid-record/block
        cap.warnings      # list[str], one line each (e.g. the cut-off)

Opening raises ipv6flow.errors.CaptureError for a missing, unreadable or
non-capture file. Iteration raises CaptureError for a record whose length
fields lie or a malformed pcapng block, after yielding every good record
before it. A file cut off mid-record is not an error: iteration ends,
``truncated`` is set and a warning is added.
"""

from .base import Record
from .batch import Batch
from .reader import Capture, open_capture

__all__ = ["Batch", "Capture", "Record", "open_capture"]
