"""Batches: many records at once, as numpy arrays over one buffer.

Strategy: a ``Batch`` is a buffer plus one row per record (offset of the
packet data in the buffer, captured length, wire length, timestamp, link
type), for numpy kernels that work on whole buffers instead of one Record
at a time.

* Classic pcap has a fast path (``PcapReader.batches``): the compiled walk
  (``_speedups.walk_pcap``), or without it a Python loop, walks the record
  headers to find where each record starts, checking each captured length
  exactly as the record loop does, and the header fields of every record
  come back as arrays. No per-record bytes or tuples are made.
* pcapng (``PcapngReader.batches``) yields whole batches for runs of packet
  blocks when the compiled walk (``_speedups.walk_pcapng``) is built, and
  copies its other records into batches (``batches_from_records``).
* Any other source (sFlow samples, live capture) builds its batches from
  its own records, with the same checks and errors.

Either way a batch holds only good records, and an error is raised after
the batch of records that precede it, as the record iterator does.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np

from ..errors import CaptureError
from .base import CHUNK, Record, Tally, make_record


class Batch(NamedTuple):
    """Records ``i`` of a batch: ``buffer[offsets[i]:offsets[i] + caplens[i]]``."""

    buffer: bytes
    offsets: np.ndarray    # int64: start of each packet's data in buffer
    caplens: np.ndarray    # int64
    wirelens: np.ndarray   # int64
    ts: np.ndarray         # float64: epoch seconds, as Record.ts
    linktypes: np.ndarray  # int32

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.offsets)

    def records(self) -> Iterator[Record]:
        """The batch as Records (for tests and per-packet fallbacks)."""
        buf = self.buffer
        for off, cap, wire, ts, lt in zip(self.offsets.tolist(), self.caplens.tolist(),
                                          self.wirelens.tolist(), self.ts.tolist(),
                                          self.linktypes.tolist()):
            yield make_record(Record, (ts, lt, wire, bytes(buf[off:off + cap])))


class _CountAtYield:
    """Forwards what a record reader reports, except its running count:
    in batch mode a record counts once its batch is handed out."""

    __slots__ = ("_tally", "packets")

    def __init__(self, tally: Tally):
        self._tally = tally
        self.packets = 0

    def linktype(self, linktype: int) -> None:
        self._tally.linktype(linktype)

    def cut_off(self, message: str) -> None:
        self._tally.cut_off(message)

    def warn(self, message: str) -> None:
        self._tally.warn(message)


def batches_from_records(reader, tally: Tally, target: int = CHUNK, **options) -> Iterator[Batch]:
    """Batch any reader's records, about ``target`` data bytes per batch.
    A reader may also yield whole Batches among its records (pcapng's
    runs of packet blocks): they are handed on as they are, in order."""
    records = reader.records(_CountAtYield(tally), **options)
    parts: list[bytes] = []
    caplens: list[int] = []
    wirelens: list[int] = []
    stamps: list[float] = []
    linktypes: list[int] = []
    size = 0

    def flush() -> Batch:
        nonlocal size
        lens = np.array(caplens, dtype=np.int64)
        offsets = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=offsets[1:])
        batch = Batch(b"".join(parts), offsets, lens, np.array(wirelens, dtype=np.int64),
                      np.array(stamps, dtype=np.float64), np.array(linktypes, dtype=np.int32))
        tally.packets += len(lens)
        for column in (parts, caplens, wirelens, stamps, linktypes):
            column.clear()
        size = 0
        return batch

    try:
        for item in records:
            if type(item) is Batch:
                if parts:
                    yield flush()
                tally.packets += len(item)
                yield item
                continue
            ts, linktype, wirelen, data = item
            parts.append(data)
            caplens.append(len(data))
            wirelens.append(wirelen)
            stamps.append(ts)
            linktypes.append(linktype)
            size += len(data)
            if size >= target:
                yield flush()
    except CaptureError:
        if parts:
            yield flush()
        raise
    if parts:
        yield flush()


def chunks(batches: Iterator[Batch], size: int) -> Iterator[list[Batch]]:
    """Consecutive batches grouped into lists of about ``size`` buffer bytes
    (engine/parallel.py hands one list to a worker). An error from
    ``batches`` is raised after the list of the batches before it."""
    group: list[Batch] = []
    have = 0
    try:
        for batch in batches:
            group.append(batch)
            have += len(batch.buffer)
            if have >= size:
                yield group
                group, have = [], 0
    except CaptureError:
        if group:
            yield group
        raise
    if group:
        yield group


class Replay:
    """A list of Batches read again as an open capture is read: by
    ``iter_batches`` or record by record. Records get their data as
    ``bytes``, as the record reader gives it (a batch buffer may be a
    bytearray)."""

    def __init__(self, batches: list[Batch]):
        self.batches = batches
        self.bytes_read = 0

    def iter_batches(self, reuse: bool = False) -> Iterator[Batch]:
        return iter(self.batches)           # buffers of their own: nothing to reuse

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches:
            # not _replace: it checks len(), which here counts the records
            yield from Batch(bytes(batch.buffer), *batch[1:]).records()
