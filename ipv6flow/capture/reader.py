"""``open_capture``: pick the source and the format reader, expose the result.

Strategy: ``source`` hands over a (decompressed) byte stream; its first
bytes name the format, pcap or pcapng, by their magic number (never by the
file name). The chosen reader checks the file header at once, so a file
that is not a capture fails at open, and then yields records lazily. What
the readers learn while they run (packets, link types, truncation,
warnings) lands in a ``Tally`` that ``Capture`` shows as attributes.
"""
from __future__ import annotations

import os
from typing import Iterator, Optional, Union

from ..errors import CaptureError
from .base import Record, Tally, hex_prefix, refill
from .batch import Batch
from .pcap import MAGICS as PCAP_MAGICS
from .pcap import OTHER_MAGICS as OTHER_PCAP_MAGICS
from .pcap import FILE_HEADER_LEN, PcapReader
from .pcapng import SHB_MAGIC, PcapngReader
from .source import Source, open_source

PathArg = Union[str, "os.PathLike[str]"]

# Bytes to read before choosing a format: a pcap file header is 24, the
# smallest pcapng section header 28; the readers fetch more themselves.
_HEAD_LEN = 32


def _display_name(path: PathArg) -> str:
    if isinstance(path, str) and path == "-":
        return "<stdin>"
    return os.fspath(path)


class Capture:
    """An open capture: iterate it for ``Record``s; see the package docstring.

    ``packets`` counts the records yielded so far and ``bytes_read`` the
    bytes consumed from the file (compressed bytes for a compressed file),
    for progress reporting.
    """

    def __init__(self, path: PathArg, window=None):
        self.path = path
        self.name = _display_name(path)
        self._tally = Tally()
        self._records: Optional[Iterator] = None
        self._mode = ""
        self._source: Source = (open_source(path, self.name) if window is None
                                else _window_source(path, self.name, window[0]))
        try:
            self._source.on_failure = self._tally.cut_off
            self._reader = self._open_reader()
            if window is not None:
                self._set_window(*window)
        except BaseException:
            self._source.close()
            raise
        self.format: str = self._reader.format
        self.compression: Optional[str] = self._source.compression
        if isinstance(self._reader, PcapReader):
            # A pcap file has one link type, known from its header; pcapng
            # link types appear as interface blocks are read.
            self._tally.linktype(self._reader.linktype)

    def _set_window(self, start: int, end, record_base: int) -> None:
        reader = self._reader
        if not isinstance(reader, PcapReader) or self._source.compression:
            raise CaptureError(self.name, "only an uncompressed pcap file can be read in parts")
        reader.record_base = record_base
        reader.offset_base = start - FILE_HEADER_LEN
        reader.stop_at = None if end is None else end - start + FILE_HEADER_LEN

    @property
    def landed(self):
        """For a window: did the walk end exactly on its end offset?"""
        return getattr(self._reader, "landed", None)

    def _open_reader(self):
        source, name = self._source, self.name
        head = refill(b"", 0, _HEAD_LEN, source.read)
        inside = f" inside the {source.compression} data" if source.compression else ""
        if source.failure and len(head) < 4:
            raise CaptureError(name, source.failure)
        if not head:
            raise CaptureError(name, f"empty file (no capture header{inside})")
        magic = head[:4]
        reader_class = (PcapReader if magic in PCAP_MAGICS else
                        PcapngReader if magic == SHB_MAGIC else None)
        if reader_class is not None:
            try:
                return (PcapReader(name, head, source.read, source.readinto,
                                   source.readinto_ahead,
                                   source if source.mappable else None)
                        if reader_class is PcapReader
                        else reader_class(name, head, source.read, source.readinto,
                                          source.readinto_ahead,
                                          source if source.mappable else None))
            except CaptureError as exc:
                if source.failure is None:
                    raise
                # the header was cut short by the decompressor: say so
                raise CaptureError(name, f"{exc.message}: {source.failure}") from None
        if magic in OTHER_PCAP_MAGICS:
            raise CaptureError(name, f"{OTHER_PCAP_MAGICS[magic]} is not supported")
        raise CaptureError(name, f"not a pcap or pcapng file{inside} "
                                 f"(first bytes {hex_prefix(head)})")

    # -- what the readers report --

    @property
    def linktypes(self) -> list[int]:
        return self._tally.linktypes

    @property
    def truncated(self) -> bool:
        return self._tally.truncated

    @property
    def warnings(self) -> list[str]:
        return self._tally.warnings

    @property
    def packets(self) -> int:
        return self._tally.packets

    @property
    def bytes_read(self) -> int:
        return self._source.bytes_read

    # -- iteration and lifetime --

    def __iter__(self) -> Iterator[Record]:
        # One pass only: a second ``for`` continues where the first stopped.
        if self._records is None:
            self._records = self._reader.records(self._tally)
            self._mode = "records"
        elif self._mode != "records":
            raise RuntimeError("this capture is already being read in batches")
        return self._records

    def iter_batches(self, reuse: bool = False) -> Iterator[Batch]:
        """Yield ``Batch(buffer, offsets, caplens, wirelens, ts, linktypes)``:
        the same records as iterating, as numpy arrays over a buffer.

        ``reuse``: the caller is done with each batch before it asks for
        the one after next, so the reader may refill an old buffer (no
        batch may be kept, e.g. in a list, past that point).

        Use either this or plain iteration on one Capture, not both.
        Errors, truncation and warnings are as for plain iteration.
        """
        if self._records is None:
            self._records = self._reader.batches(self._tally, reuse)
            self._mode = "batches"
        elif self._mode != "batches":
            raise RuntimeError("this capture is already being read record by record")
        return self._records

    def close(self) -> None:
        if self._records is not None:
            self._records.close()
        self._source.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Capture {self.name!r} format={self.format} "
                f"compression={self.compression} packets={self.packets}>")


def open_capture(path: PathArg, window=None) -> Capture:
    """Open a pcap or pcapng file, possibly compressed; "-" reads stdin.

    ``window`` = (start, end, record_base) reads only the records of an
    uncompressed classic pcap file that start in [start, end) (end None:
    to the end of the file); ``start`` must be a record boundary, and
    ``record_base`` the number of records before it. Records are numbered
    and offsets reported as in the whole file; ``Capture.landed`` then says
    whether the walk ended exactly on ``end`` (a check of the boundary).

    Raises CaptureError if the file cannot be opened or is not a capture.
    """
    return Capture(path, window)


def _window_source(path: PathArg, name: str, start: int) -> Source:
    """The file header, then the file from ``start`` on: a pcap stream."""
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by Source.close
    except OSError as exc:
        raise CaptureError(name, f"cannot open ({exc.strerror or exc})") from None
    head = raw.read(FILE_HEADER_LEN)
    raw.seek(start)
    pending = [head]

    def read(size: int) -> bytes:
        if pending:
            first = pending.pop()
            if len(first) > size:
                pending.append(first[size:])
                return first[:size]
            return first
        return raw.read(size)

    source = Source(name, read, raw.close)
    source.allow_map(raw.fileno(), start - FILE_HEADER_LEN)
    return source
