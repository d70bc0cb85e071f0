"""Classic pcap savefiles (pcap-savefile(5); draft-ietf-opsawg-pcap).

Strategy: the 24-byte file header fixes everything for the whole file (byte
order, timestamp unit, link type), so the record loop is one tight
generator over a ~1 MiB buffer: unpack the 16-byte record header in place,
check the captured length, slice the packet out, yield. See ``base`` for
the buffering.

What we accept, and why (libpcap 1.10 ``sf-pcap.c`` and Wireshark 4.0
``wiretap/libpcap.c`` are the references; where they differ we say so):

* Version: major 2 only (1.x is pre-1990s "archaic" and refused by libpcap
  and Wireshark alike), any minor. In versions 2.0 to 2.2 the ``caplen`` and
  ``len`` fields are stored the other way round, and in 2.3 files they may
  be; both readers swap them back and so do we. A real capture needs it:
  nDPI's ``fuzz-2021-10-13.pcap`` is version 2.0.
* Captured length: an error only above libpcap's per-link-type maximum
  (262144 bytes, more for D-Bus, EBHSCR and USBPcap). A captured length
  above the file header's snapshot length is accepted: libpcap and
  Wireshark both accept it (libpcap clips the data to the snapshot length,
  Wireshark keeps it all, as we do since the bytes are in the file), and
  real captures need it (zeek ``trunc-hdr.pcap``: snaplen 1, caplen 8;
  tcpdump ``ipv6_missing_jumbo_payload_option.pcap``: snaplen 119, caplen
  198).
* ``caplen > len`` is passed through untouched, as both readers do.
* Link type: the low 16 bits of the header field; the upper bits may carry
  FCS-length flags (pcap draft section 4) and are ignored.
* A record cut off by the end of the file is a truncation, not an error.
"""
from __future__ import annotations

import os
import struct
from typing import Iterator

import numpy as np

from ..errors import CaptureError
from .base import BufferTurns, Read, Record, Tally, make_record, refill
from .batch import Batch

try:                                   # optional compiled record walk (setup.py)
    if os.environ.get("IPV6FLOW_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    from .._speedups import walk_pcap as _walk_pcap
except ImportError:
    _walk_pcap = None

# -- the classic pcap layout, declared once (the reader, split.py and the
# live writer in engine/live.py use it) -----------------------------------
# File header: magic, version major, minor, thiszone, sigfigs, snaplen,
# link type. Record header: ts seconds, ts fraction, caplen, len.
MAGIC_US = 0xA1B2C3D4            # microsecond timestamp fractions
MAGIC_NS = 0xA1B23C4D            # nanosecond
VERSION = (2, 4)                 # what libpcap writes
FILE_HEADER = {order: struct.Struct(order + "4sHHiIII") for order in "<>"}
FILE_HEADER_LEN = FILE_HEADER["<"].size                      # 24
FILE_VERSION_AT, FILE_SNAPLEN_AT, FILE_LINKTYPE_AT = 4, 16, 20
RECORD_FIELDS = ("sec", "frac", "caplen", "wirelen")
RECORD_HEADER = {order: struct.Struct(order + "IIII") for order in "<>"}
RECORD_DTYPE = {order: np.dtype([(f, order + "u4") for f in RECORD_FIELDS]) for order in "<>"}
RECORD_HEADER_LEN = RECORD_HEADER["<"].size                  # 16
RECORD_CAPLEN_AT = 8             # caplen, then len

# Magic number (as stored) -> (struct byte order, timestamp fraction units
# per second).
MAGICS = {
    MAGIC_US.to_bytes(4, "little"): ("<", 1_000_000),
    MAGIC_US.to_bytes(4, "big"): (">", 1_000_000),
    MAGIC_NS.to_bytes(4, "little"): ("<", 1_000_000_000),
    MAGIC_NS.to_bytes(4, "big"): (">", 1_000_000_000),
}


def file_header(linktype: int, snaplen: int, order: str = "<", magic: int = MAGIC_US) -> bytes:
    """The file header of a classic pcap file (version 2.4, no time zone)."""
    return FILE_HEADER[order].pack(magic.to_bytes(4, "little" if order == "<" else "big"),
                                   *VERSION, 0, 0, snaplen, linktype)


# Variants we know but do not read, so the error can name them.
# Kuznetzov's patched libpcap added 8 bytes to every record header.
OTHER_MAGICS = {
    b"\x34\xcd\xb2\xa1": "Kuznetzov-patched pcap (magic a1b2cd34)",
    b"\xa1\xb2\xcd\x34": "Kuznetzov-patched pcap (magic a1b2cd34)",
}

# Only the two length fields (caplen, len as stored), for the batch walk.
_RECORD_LENGTHS = {order: struct.Struct(order + "II") for order in "<>"}
_HEADER_INDEX = np.arange(RECORD_HEADER_LEN, dtype=np.int64)
# Read-ahead per batch: numpy work per batch has a fixed cost, so batches
# of a few thousand frames would spend it thousands of times per GB. 8 MiB
# (about 13,000 frames of 650 bytes) measured best on the benchmark
# capture: 3.28 s against 3.66 s at 4 MiB and 4.31 s at 2 MiB; 16 MiB lost
# again (the batch's arrays stop fitting in the caches).
BATCH_BYTES = 8 << 20

# libpcap's max_snaplen_for_dlt(): LINKTYPE_DBUS (231), LINKTYPE_EBHSCR
# (279) and LINKTYPE_USBPCAP (249) may carry bigger packets than the 262144
# bytes (MAXIMUM_SNAPLEN) allowed for everything else.
MAXIMUM_SNAPLEN = 262144
_MAX_SNAPLEN_FOR = {231: 128 * 1024 * 1024, 279: 8 * 1024 * 1024, 249: 1024 * 1024}

LINKTYPE_MASK = 0xFFFF

# How caplen and len are stored (libpcap's lengths_swapped).
NOT_SWAPPED, SWAPPED, MAYBE_SWAPPED = 0, 1, 2


def _readinto_from(read):
    def readinto(view):
        data = read(len(view))
        view[:len(data)] = data
        return len(data)
    return readinto


def max_caplen(linktype: int) -> int:
    """The largest captured length libpcap accepts for a link type."""
    return _MAX_SNAPLEN_FOR.get(linktype, MAXIMUM_SNAPLEN)


class PcapReader:
    """Reads a classic pcap stream whose first bytes are ``head``.

    Construction parses and checks the file header (CaptureError if it is
    bad); ``records(tally)`` then yields the records.
    """

    format = "pcap"

    def __init__(self, name: str, head: bytes, read: Read, readinto=None, readahead=None,
                 mapped=None):
        self.name = name
        # a Source whose batches are maps of the file (Source.map_view: the
        # stream's bytes as a view of the file's pages, no copy), checked
        # after each walk for a file that shrank under its map
        self._mapped = mapped
        self._read = read
        self._readinto = readinto or _readinto_from(read)
        self._readahead = readahead or self._readinto   # see refill_into
        buf = refill(head, 0, FILE_HEADER_LEN, read)
        if len(buf) < FILE_HEADER_LEN:
            raise CaptureError(name, "file ends inside the pcap file header "
                                     f"({len(buf)} of {FILE_HEADER_LEN} bytes)")
        order, units = MAGICS[buf[:4]]
        (_magic, major, minor, _thiszone, _sigfigs, snaplen,
         linktype_field) = FILE_HEADER[order].unpack_from(buf, 0)
        if major != 2:
            raise CaptureError(name, f"unsupported pcap version {major}.{minor} "
                                     "(only version 2.x is readable)")
        self.byteorder = "little" if order == "<" else "big"
        self.version = (major, minor)
        self.units = units
        self.snaplen = snaplen
        self.linktype = linktype_field & LINKTYPE_MASK
        self.max_caplen = max_caplen(self.linktype)
        if minor < 3:
            self.lengths_swapped = SWAPPED
        elif minor == 3:
            self.lengths_swapped = MAYBE_SWAPPED
        else:
            self.lengths_swapped = NOT_SWAPPED
        self._order = order
        self._record_header = RECORD_HEADER[order]
        self._buf = buf
        self._pos = FILE_HEADER_LEN
        # A window (engine/parallel.py): the stream is the file header then
        # the file from some record boundary on; records are numbered and
        # offsets given as in the whole file, and no record starting at or
        # after ``stop_at`` (a stream offset) is read. ``landed`` tells
        # whether the walk stopped exactly on ``stop_at``.
        self.record_base = 0
        self.offset_base = 0
        self.stop_at = None
        self.landed = None

    def records(self, tally: Tally) -> Iterator[Record]:
        read = self._read
        buf, pos = self._buf, self._pos
        self._buf = b""
        base = 0                      # stream offset of buf[0]
        size = len(buf)
        unpack = self._record_header.unpack_from
        units, linktype, limit = self.units, self.linktype, self.max_caplen
        swapped = self.lengths_swapped
        new, record = make_record, Record
        count = self.record_base
        stop_at = self.stop_at
        while True:
            if stop_at is not None and base + pos >= stop_at:
                self.landed = base + pos == stop_at
                return
            if size - pos < RECORD_HEADER_LEN:
                base += pos
                buf = refill(buf, pos, RECORD_HEADER_LEN, read)
                pos, size = 0, len(buf)
                if size < RECORD_HEADER_LEN:
                    if size:
                        tally.cut_off(
                            f"record {count + 1} at byte offset {base + self.offset_base}: "
                            f"file ends inside the record header ({size} of "
                            f"{RECORD_HEADER_LEN} bytes)")
                    return
            sec, frac, caplen, wirelen = unpack(buf, pos)
            if swapped and (swapped == SWAPPED or caplen > wirelen):
                caplen, wirelen = wirelen, caplen
            if caplen > limit:
                raise self._too_long(count + 1, base + pos + self.offset_base, caplen)
            start = pos + RECORD_HEADER_LEN
            stop = start + caplen
            if stop > size:
                # caplen was checked against ``limit`` above, so what we
                # wait for here is bounded whatever the header claimed.
                base += pos
                buf = refill(buf, pos, RECORD_HEADER_LEN + caplen, read)
                pos, size = 0, len(buf)
                start, stop = RECORD_HEADER_LEN, RECORD_HEADER_LEN + caplen
                if stop > size:
                    tally.cut_off(
                        f"record {count + 1} at byte offset {base + self.offset_base}: "
                        f"file ends inside the packet data ({size - RECORD_HEADER_LEN} of "
                        f"{caplen} captured bytes)")
                    return
            count += 1
            tally.packets = count - self.record_base
            yield new(record, (sec + frac / units, linktype, wirelen, buf[start:stop]))
            pos = stop

    def _too_long(self, number: int, offset: int, caplen: int) -> CaptureError:
        return CaptureError(
            self.name, f"record {number} at byte offset {offset}: captured length "
                       f"{caplen} exceeds the maximum snapshot length {self.max_caplen} "
                       f"(file snapshot length {self.snaplen})")

    # -- batches (see batch.py) --

    def batches(self, tally: Tally, reuse: bool = False) -> Iterator[Batch]:
        """One Batch per buffer; same checks and messages as ``records``.
        With ``reuse`` two buffers take turns: a batch's buffer is
        overwritten once the batch after next is asked for."""
        fill = BufferTurns(self._readinto, self._readahead, reuse)
        mapped = self._mapped
        buf, pos = self._buf, self._pos
        self._buf = b""
        base = 0
        lengths = _RECORD_LENGTHS[self._order].unpack_from
        swapped, limit = self.lengths_swapped, self.max_caplen
        count = self.record_base
        stop_at = self.stop_at
        while True:
            size = len(buf)
            offsets: list[int] = []
            append = offsets.append
            caplen = 0
            too_long = False
            if _walk_pcap is not None:
                # The compiled walk: same checks, and the header fields too.
                blob, pos, too_long, caplen = _walk_pcap(buf, pos, self._order == ">",
                                                         swapped, limit)
                if mapped is not None:
                    mapped.check_torn(mapped.CUT_WALK)
                rows = np.frombuffer(blob, dtype=np.int64).reshape(-1, 5)
                if stop_at is not None and len(rows) and base + rows[-1, 0] >= stop_at:
                    keep = int(np.searchsorted(rows[:, 0], stop_at - base))
                    self.landed = keep < len(rows) and base + rows[keep, 0] == stop_at
                    rows = rows[:keep]
                    if len(rows):
                        count += len(rows)
                        tally.packets = count - self.record_base
                        yield self._batch_from_fields(buf, rows[:, 0], rows[:, 1], rows[:, 2],
                                                      rows[:, 3], rows[:, 4])
                    return
                if stop_at is not None and base + pos >= stop_at:
                    self.landed = base + pos == stop_at
                    stop_now = True
                else:
                    stop_now = False
                if len(rows):
                    count += len(rows)
                    tally.packets = count - self.record_base
                    yield self._batch_from_fields(buf, rows[:, 0], rows[:, 1], rows[:, 2],
                                                  rows[:, 3], rows[:, 4])
                if stop_now:
                    return
            else:
                # Walk the headers only, applying the checks of ``records``.
                stop_now = False
                while size - pos >= RECORD_HEADER_LEN:
                    if stop_at is not None and base + pos >= stop_at:
                        self.landed = base + pos == stop_at
                        stop_now = True
                        break
                    caplen, wirelen = lengths(buf, pos + RECORD_CAPLEN_AT)
                    if swapped and (swapped == SWAPPED or caplen > wirelen):
                        caplen = wirelen
                    if caplen > limit:
                        too_long = True
                        break
                    stop = pos + RECORD_HEADER_LEN + caplen
                    if stop > size:
                        break
                    append(pos)
                    pos = stop
                if mapped is not None:
                    mapped.check_torn(mapped.CUT_WALK)
                if offsets:
                    count += len(offsets)
                    tally.packets = count - self.record_base
                    yield self._batch(buf, offsets)
                if stop_now:
                    return
            if too_long:
                raise self._too_long(count + 1, base + pos + self.offset_base, caplen)
            # The next record runs past the buffer: start a new one with it.
            whole_header = size - pos >= RECORD_HEADER_LEN
            need = RECORD_HEADER_LEN + (caplen if whole_header else 0)
            if stop_at is not None and base + pos >= stop_at:
                self.landed = base + pos == stop_at
                return
            base += pos
            # Batches are worth their numpy overhead only when large: read
            # ahead BATCH_BYTES at a time (bounded, whatever caplen says).
            if mapped is None:
                buf = fill(buf, pos, need, max(need, BATCH_BYTES))
            else:
                buf = mapped.map_view(base, max(need, BATCH_BYTES))
            pos = 0
            got = len(buf)
            if got < need:
                if whole_header:
                    tally.cut_off(f"record {count + 1} at byte offset "
                                  f"{base + self.offset_base}: file ends "
                                  f"inside the packet data ({got - RECORD_HEADER_LEN} of "
                                  f"{caplen} captured bytes)")
                elif got:
                    tally.cut_off(f"record {count + 1} at byte offset "
                                  f"{base + self.offset_base}: file ends "
                                  f"inside the record header ({got} of "
                                  f"{RECORD_HEADER_LEN} bytes)")
                return

    def _batch(self, buf: bytes, offsets: list[int]) -> Batch:
        starts = np.array(offsets, dtype=np.int64)
        raw = np.frombuffer(buf, dtype=np.uint8)
        fields = raw[starts[:, None] + _HEADER_INDEX].view(RECORD_DTYPE[self._order])[:, 0]
        sec, frac, caplen, wirelen = (fields[f].astype(np.int64) for f in RECORD_FIELDS)
        return self._batch_from_fields(buf, starts, sec, frac, caplen, wirelen)

    def _batch_from_fields(self, buf, starts, sec, frac, caplen, wirelen) -> Batch:
        if self.lengths_swapped == SWAPPED:
            caplen, wirelen = wirelen, caplen
        elif self.lengths_swapped == MAYBE_SWAPPED:
            caplen, wirelen = np.minimum(caplen, wirelen), np.maximum(caplen, wirelen)
        # The same two IEEE operations as ``sec + frac / units`` in
        # ``records``, so both paths give bit-identical timestamps.
        ts = sec.astype(np.float64) + frac.astype(np.float64) / float(self.units)
        linktypes = np.full(len(starts), self.linktype, dtype=np.int32)
        return Batch(buf, starts + RECORD_HEADER_LEN, caplen, wirelen, ts, linktypes)
