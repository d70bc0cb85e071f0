"""pcapng files (draft-ietf-opsawg-pcapng, "PCAP Next Generation Dump File
Format"; section numbers below are that draft's).

Strategy: one generator walks the blocks of a ~1 MiB buffer (see ``base``).
Each block is framed and checked the same way (section 3.1: total length a
multiple of 4, at least 12, at most ``MAX_BLOCK_LEN``, trailing copy equal
to the leading one) before its body is looked at, so a lying length is
caught before it is used. Then:

* Section Header Block (4.1) starts a section: its byte-order magic sets the
  byte order of every block up to the next SHB, and the interface list
  starts empty. A file may hold several sections with different orders.
* Interface Description Block (4.2) appends an interface: link type,
  snapshot length, and from its options the timestamp unit (``if_tsresol``,
  a power of 10, or of 2 when the high bit is set) and ``if_tsoffset``
  (seconds added to every timestamp). At most ``MAX_INTERFACES`` are kept
  per section; packets on later ones are skipped, with a warning.
* Enhanced Packet Block (4.3) and the obsolete Packet Block (appendix A)
  give records with their interface's link type and timestamp unit.
* Simple Packet Block (4.4) gives a record on interface 0, with no
  timestamp (``ts`` is 0.0, as libpcap reports it) and a captured length
  of min(original length, interface snapshot length, space in the block).
* Every other block (name resolution, statistics, decryption secrets,
  custom, unknown) is skipped by its length; big ones are streamed past.

Options (3.5) are walked wherever a block has room for them, and an option
running past the end of its block is an error, as in libpcap and
Wireshark. A file that ends inside a block is a truncation, not an error.
"""
from __future__ import annotations

import os
import struct
from typing import Iterator, NamedTuple, NoReturn

import numpy as np

from ..errors import CaptureError
from . import pcap as _pcap
from .base import CHUNK, BufferTurns, Read, Record, Tally, make_record, refill, skip
from .batch import Batch, batches_from_records

try:                                   # optional compiled walk of packet-block runs
    if os.environ.get("IPV6FLOW_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    from .._speedups import walk_pcapng as _walk_pcapng
except ImportError:
    _walk_pcapng = None

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"

# Block types (section 10.1 registry).
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002   # obsolete Packet Block, appendix A
BT_SPB = 0x00000003
BT_EPB = 0x00000006

BYTE_ORDER_MAGIC = 0x1A2B3C4D

# Option codes (3.5, 4.2).
OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

# A block's own overhead: type, leading and trailing total length.
BLOCK_OVERHEAD = 12
# Smallest legal total length per block type we interpret: overhead plus
# the fixed part of the body.
MIN_SHB_LEN = 28   # + byte-order magic, versions, section length
MIN_IDB_LEN = 20   # + link type, reserved, snaplen
MIN_EPB_LEN = 32   # + interface id, timestamp (2x32), caplen, original length
MIN_PB_LEN = 32    # + interface id, drops count, timestamp, caplen, length
MIN_SPB_LEN = 16   # + original length

# Refuse blocks above 256 MiB: far above any real packet (libpcap and
# Wireshark cap packets at 256 KiB for most link types, 128 MiB for D-Bus)
# and it keeps a forged length from making us buffer a whole large file.
MAX_BLOCK_LEN = 256 * 1024 * 1024

# Interfaces kept per section: one Interface is held per IDB, and a file
# of 20-byte IDBs must not make memory grow with it. 65536 is all the
# obsolete Packet Block's 16-bit interface id (appendix A) can name; IDBs
# past it are checked and counted but not kept, and packets on them are
# skipped, with a warning (an id past every IDB stays an error).
MAX_INTERFACES = 65536

# Default timestamp unit: microseconds (if_tsresol absent, 4.2).
DEFAULT_UNITS = 1_000_000


class _Layout:
    """The struct formats of one byte order, built once at import."""

    def __init__(self, order: str):
        self.order = order
        self.block_head = struct.Struct(order + "II").unpack_from   # type, total length
        self.u32 = struct.Struct(order + "I").unpack_from
        self.shb = struct.Struct(order + "IHHq").unpack_from         # magic, major, minor, section len
        self.idb = struct.Struct(order + "HHI").unpack_from          # link type, reserved, snaplen
        self.epb = struct.Struct(order + "IIIII").unpack_from        # if id, ts hi, ts lo, caplen, len
        self.pb = struct.Struct(order + "HHIIII").unpack_from        # if id, drops, ts hi, ts lo, caplen, len
        self.option = struct.Struct(order + "HH").unpack_from        # code, length
        self.i64 = struct.Struct(order + "q").unpack_from


_LITTLE = _Layout("<")
_BIG = _Layout(">")
# The byte-order magic as it appears in the file -> layout to read with.
_LAYOUT_BY_BOM = {
    struct.pack("<I", BYTE_ORDER_MAGIC): _LITTLE,
    struct.pack(">I", BYTE_ORDER_MAGIC): _BIG,
}


class Interface(NamedTuple):
    linktype: int
    snaplen: int
    units: int      # timestamp units per second
    tsoffset: int   # seconds added to every timestamp


def _options(name: str, lay: _Layout, buf: bytes, start: int, end: int,
             where: str) -> Iterator[tuple[int, int, int]]:
    """Yield ``(code, value offset, value length)`` of the options in
    ``buf[start:end]``, stopping at opt_endofopt (3.5).

    A missing opt_endofopt is tolerated (libpcap and Wireshark do); an
    option whose length runs past ``end`` is a CaptureError.
    """
    unpack = lay.option
    while end - start >= 4:
        code, length = unpack(buf, start)
        if code == OPT_ENDOFOPT:
            return
        value = start + 4
        if length > end - value:
            raise CaptureError(
                name, f"{where}: option {code} has length {length} but only "
                      f"{end - value} bytes are left in the block")
        yield code, value, length
        start = value + ((length + 3) & ~3)  # values are padded to 32 bits


def _check_options(name: str, lay: _Layout, buf: bytes, start: int, end: int,
                   where: str) -> None:
    for _ in _options(name, lay, buf, start, end, where):
        pass


def _block_name(btype: int) -> str:
    return {BT_SHB: "section header block", BT_IDB: "interface description block",
            BT_EPB: "enhanced packet block", BT_SPB: "simple packet block",
            BT_PB: "packet block"}.get(btype, f"block of type 0x{btype:08x}")


class PcapngReader:
    """Reads a pcapng stream whose first bytes are ``head``.

    Construction reads and checks the first Section Header Block
    (CaptureError if it is bad); ``records(tally)`` yields the records.
    """

    format = "pcapng"

    def __init__(self, name: str, head: bytes, read: Read, readinto=None, readahead=None,
                 mapped=None):
        self.name = name
        self._read = read
        self._mapped = mapped            # batches over maps of the file (pcap.py says how)
        self._readinto = readinto        # for batches: reads straight into the buffer,
        self._readahead = readahead      # and quietly ahead (see refill_into)
        self._tables = None              # per-interface arrays of the current section (_run)
        buf = refill(head, 0, BLOCK_OVERHEAD, read)
        if len(buf) < BLOCK_OVERHEAD:
            raise CaptureError(name, "file ends inside the pcapng section header block "
                                     f"({len(buf)} bytes)")
        lay, blen = self._section_framing(buf, 0, 0)
        buf = refill(buf, 0, blen, read)
        if len(buf) < blen:
            raise CaptureError(name, "file ends inside the pcapng section header block "
                                     f"({len(buf)} of {blen} bytes)")
        trailer = lay.u32(buf, blen - 4)[0]
        if trailer != blen:
            self._trailer_error(BT_SHB, trailer, blen, 0)
        self._section_body(lay, buf, 0, blen, 0)
        self.byteorder = "little" if lay is _LITTLE else "big"
        self._layout = lay
        self._buf = buf
        self._pos = blen
        self._warned: set[str] = set()

    # -- checks shared by the first section header and the block loop --

    def _section_framing(self, buf: bytes, pos: int, offset: int) -> tuple[_Layout, int]:
        """Byte order and total length of the SHB at ``pos`` (12 bytes there)."""
        lay = _LAYOUT_BY_BOM.get(bytes(buf[pos + 8:pos + 12]))
        if lay is None:
            raise CaptureError(
                self.name, f"section header block at byte offset {offset}: unknown "
                           f"byte-order magic {buf[pos + 8:pos + 12].hex()}")
        blen = lay.u32(buf, pos + 4)[0]
        self._check_length(BT_SHB, blen, MIN_SHB_LEN, offset)
        return lay, blen

    def _check_length(self, btype: int, blen: int, minimum: int, offset: int) -> None:
        problem = None
        if blen < minimum:
            problem = f"total length {blen} is below the minimum of {minimum}"
        elif blen & 3:
            problem = f"total length {blen} is not a multiple of 4"
        elif blen > MAX_BLOCK_LEN:
            problem = f"total length {blen} exceeds the limit of {MAX_BLOCK_LEN}"
        if problem:
            raise CaptureError(self.name, f"{_block_name(btype)} at byte offset "
                                          f"{offset}: {problem}")

    def _trailer_error(self, btype: int, trailer: int, blen: int, offset: int) -> NoReturn:
        raise CaptureError(
            self.name, f"{_block_name(btype)} at byte offset {offset}: trailing "
                       f"total length {trailer} does not match the leading {blen}")

    def _section_body(self, lay: _Layout, buf: bytes, pos: int, blen: int,
                      offset: int) -> None:
        _bom, major, minor, _section_len = lay.shb(buf, pos + 8)
        if major != 1:
            raise CaptureError(
                self.name, f"section header block at byte offset {offset}: "
                           f"unsupported pcapng version {major}.{minor} (only 1.x is readable)")
        _check_options(self.name, lay, buf, pos + 24, pos + blen - 4,
                       f"section header block at byte offset {offset}")

    def _interface(self, lay: _Layout, buf: bytes, pos: int, blen: int,
                   offset: int) -> Interface:
        linktype, _reserved, snaplen = lay.idb(buf, pos + 8)
        units, tsoffset = DEFAULT_UNITS, 0
        where = f"interface description block at byte offset {offset}"
        for code, value, length in _options(self.name, lay, buf, pos + 16,
                                            pos + blen - 4, where):
            if code == OPT_IF_TSRESOL:
                if length != 1:
                    raise CaptureError(self.name, f"{where}: if_tsresol has length "
                                                  f"{length}, expected 1")
                resol = buf[value]
                # High bit set: a negative power of 2; else of 10 (4.2).
                units = 1 << (resol & 0x7F) if resol & 0x80 else 10 ** resol
            elif code == OPT_IF_TSOFFSET:
                if length != 8:
                    raise CaptureError(self.name, f"{where}: if_tsoffset has length "
                                                  f"{length}, expected 8")
                tsoffset = lay.i64(buf, value)[0]
        return Interface(linktype, snaplen, units, tsoffset)

    # -- the block loop --

    def records(self, tally: Tally, runs: bool = False, reuse: bool = False) -> Iterator[Record]:
        """The records, in order. With ``runs`` (batches, when the compiled
        walk is built) a run of plain Enhanced Packet Blocks comes as one
        Batch over the read buffer instead of one Record each, buffers are
        bytearrays read ahead to pcap's ``BATCH_BYTES`` (two taking turns
        with ``reuse``, as pcap's batches), and every other block goes through
        this loop as before; the walk takes only blocks this loop would
        take without a word (``walk_pcapng`` in _speedups.c)."""
        name, read = self.name, self._read
        walk = _walk_pcapng if runs and self._readinto is not None else None
        turns = BufferTurns(self._readinto, self._readahead, reuse)
        mapped = self._mapped if walk is not None else None

        def fill(buf, pos: int, need: int):
            if walk is None:
                return refill(buf, pos, need, read)
            if mapped is not None:      # the new buffer starts at stream offset ``base``
                return mapped.map_view(base, max(need, _pcap.BATCH_BYTES))
            return turns(buf, pos, need, max(need, _pcap.BATCH_BYTES))
        buf, pos = self._buf, self._pos
        self._buf = b""
        lay = self._layout
        block_head, u32, epb = lay.block_head, lay.u32, lay.epb
        interfaces: list[Interface] = []   # the first MAX_INTERFACES of the section
        # equal interfaces share one object: a section repeating one IDB
        # tens of thousands of times (hostile) holds references, not tuples
        same: dict[Interface, Interface] = {}
        seen = 0                   # IDBs in the section, kept or not
        base = 0                   # stream offset of buf[0]
        size = len(buf)
        new, record = make_record, Record
        count = 0
        while True:
            if size - pos < BLOCK_OVERHEAD:
                base += pos
                buf = fill(buf, pos, BLOCK_OVERHEAD)
                pos, size = 0, len(buf)
                if size < BLOCK_OVERHEAD:
                    if size:
                        tally.cut_off(f"block at byte offset {base}: file ends inside "
                                      f"the block header ({size} of {BLOCK_OVERHEAD} bytes)")
                    return
            # the walk takes runs of EPBs: tried where one starts (its row
            # table is sized from the buffer, so not once per other block)
            if walk is not None and interfaces and block_head(buf, pos)[0] == BT_EPB:
                if mapped is not None:      # the last run's readers, then this walk
                    mapped.check_torn(mapped.CUT_READ)
                blob, end = walk(buf, pos, lay is _BIG, len(interfaces), MAX_BLOCK_LEN)
                if mapped is not None:
                    mapped.check_torn(mapped.CUT_WALK)
                if end != pos:
                    rows = np.frombuffer(blob, dtype=np.int64).reshape(-1, 6)
                    count += len(rows)
                    tally.packets = count
                    yield self._run(buf, rows, interfaces)
                    pos = end
                    continue
            btype, blen = block_head(buf, pos)
            if btype == BT_SHB:
                lay, blen = self._section_framing(buf, pos, base + pos)
                block_head, u32, epb = lay.block_head, lay.u32, lay.epb
            elif blen < BLOCK_OVERHEAD or blen & 3 or blen > MAX_BLOCK_LEN:
                self._check_length(btype, blen, BLOCK_OVERHEAD, base + pos)
            if blen > size - pos:
                if blen > CHUNK and btype not in (BT_EPB, BT_PB, BT_SPB, BT_IDB, BT_SHB):
                    # A big block we would only skip: stream past it.
                    offset = base + pos
                    if mapped is None:
                        consumed, last = skip(buf, pos, blen, read)
                    else:               # past it in the map: only its last 4 bytes read
                        consumed = min(blen, mapped.map_size() - offset)
                        last = (bytes(mapped.map_view(offset + blen - 4, 4))
                                if consumed == blen else b"")
                    if consumed < blen:
                        tally.cut_off(f"{_block_name(btype)} at byte offset {offset}: "
                                      f"file ends inside the block ({consumed} of {blen} bytes)")
                        return
                    trailer = u32(last, 0)[0]
                    if trailer != blen:
                        self._trailer_error(btype, trailer, blen, offset)
                    base, buf, pos, size = offset + blen, b"", 0, 0
                    continue
                base += pos
                buf = fill(buf, pos, blen)
                pos, size = 0, len(buf)
                if blen > size:
                    tally.cut_off(f"{_block_name(btype)} at byte offset {base}: file "
                                  f"ends inside the block ({size} of {blen} bytes)")
                    return
                if walk is not None:
                    continue        # the block now starts a buffer: the walk may take it
            trailer = u32(buf, pos + blen - 4)[0]
            if trailer != blen:
                self._trailer_error(btype, trailer, blen, base + pos)

            if btype == BT_EPB or btype == BT_PB:
                if blen < MIN_EPB_LEN:  # MIN_PB_LEN is the same
                    self._check_length(btype, blen, MIN_EPB_LEN, base + pos)
                if btype == BT_EPB:
                    iface, ts_high, ts_low, caplen, wirelen = epb(buf, pos + 8)
                else:
                    iface, _drops, ts_high, ts_low, caplen, wirelen = lay.pb(buf, pos + 8)
                if iface >= len(interfaces) or caplen > blen - MIN_EPB_LEN:
                    if iface >= seen or caplen > blen - MIN_EPB_LEN:
                        self._packet_error(btype, iface, seen, caplen, blen,
                                           count + 1, base + pos)
                    self._warn_once(tally, "skipped", f"{_block_name(btype)} at byte offset "
                                    f"{base + pos}: interface {iface} is past the "
                                    f"{MAX_INTERFACES} kept: packets on such interfaces "
                                    "are skipped")
                    pos += blen
                    continue
                start = pos + 28
                stop = start + caplen
                options = start + ((caplen + 3) & ~3)
                if options < pos + blen - 4:
                    _check_options(name, lay, buf, options, pos + blen - 4,
                                   f"record {count + 1} ({_block_name(btype)} at byte "
                                   f"offset {base + pos})")
                linktype, _snaplen, units, tsoffset = interfaces[iface]
                count += 1
                tally.packets = count
                # float operations that numpy repeats for a run (``_run``)
                yield new(record, (float((ts_high << 32) | ts_low) / float(units)
                                   + float(tsoffset), linktype, wirelen, bytes(buf[start:stop])))
            elif btype == BT_SPB:
                if blen < MIN_SPB_LEN:
                    self._check_length(btype, blen, MIN_SPB_LEN, base + pos)
                if not interfaces:
                    raise CaptureError(name, f"record {count + 1} (simple packet block at "
                                             f"byte offset {base + pos}): no interface "
                                             "description block precedes it")
                linktype, snaplen, _units, _tsoffset = interfaces[0]
                wirelen = u32(buf, pos + 8)[0]
                caplen = min(wirelen, blen - MIN_SPB_LEN)
                if snaplen:
                    caplen = min(caplen, snaplen)
                count += 1
                tally.packets = count
                yield new(record, (0.0, linktype, wirelen,
                                   bytes(buf[pos + 12:pos + 12 + caplen])))
            elif btype == BT_IDB:
                if blen < MIN_IDB_LEN:
                    self._check_length(btype, blen, MIN_IDB_LEN, base + pos)
                interface = self._interface(lay, buf, pos, blen, base + pos)
                seen += 1
                if seen <= MAX_INTERFACES:
                    interfaces.append(same.setdefault(interface, interface))
                    tally.linktype(interface.linktype)
                else:
                    self._warn_once(tally, "not kept", f"{_block_name(btype)} at byte offset "
                                    f"{base + pos}: more than {MAX_INTERFACES} interfaces "
                                    "in a section: the ones past that are not kept")
            elif btype == BT_SHB:
                self._section_body(lay, buf, pos, blen, base + pos)
                interfaces = []
                same = {}
                seen = 0
            pos += blen

    def _warn_once(self, tally: Tally, key: str, message: str) -> None:
        """Warn of ``key`` the first time only (per file, not per section)."""
        if key not in self._warned:
            self._warned.add(key)
            tally.warn(message)

    def _run(self, buf: bytes, rows: np.ndarray, interfaces: list[Interface]) -> Batch:
        """A Batch of the packet blocks ``rows`` (walk_pcapng's columns) of
        ``buf``: timestamps by the float operations of ``records``."""
        key = (id(interfaces), len(interfaces))
        tables = self._tables
        if tables is None or tables[0] != key:
            tables = self._tables = (key, np.array([float(i.units) for i in interfaces]),
                                     np.array([float(i.tsoffset) for i in interfaces]),
                                     np.array([i.linktype for i in interfaces], dtype=np.int32))
        _, units, offsets, linktypes = tables
        iface = rows[:, 5]
        ticks = ((rows[:, 3].astype(np.uint64) << np.uint64(32))
                 | rows[:, 4].astype(np.uint64)).astype(np.float64)
        return Batch(buf, rows[:, 0], rows[:, 1], rows[:, 2],
                     ticks / units[iface] + offsets[iface], linktypes[iface])

    def batches(self, tally: Tally, reuse: bool = False) -> Iterator[Batch]:
        """Batches: runs of packet blocks straight over the read buffer when
        the compiled walk is built (their buffers reused as pcap's with
        ``reuse``), other records copied into batches of their own."""
        self._tables = None
        out = batches_from_records(self, tally, runs=_walk_pcapng is not None, reuse=reuse)
        return out if self._mapped is None else self._torn_first(out)

    def _torn_first(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """A file that shrank under its maps can make the block loop fail
        on the guard's zeros: say that, not what the zeros look like."""
        try:
            yield from batches
        except CaptureError:
            self._mapped.check_torn(self._mapped.CUT_WALK)
            raise

    def _packet_error(self, btype: int, iface: int, ninterfaces: int, caplen: int,
                      blen: int, number: int, offset: int) -> NoReturn:
        where = f"record {number} ({_block_name(btype)} at byte offset {offset})"
        if iface >= ninterfaces:
            raise CaptureError(self.name, f"{where}: interface id {iface} but the section "
                                          f"has {ninterfaces} interface(s)")
        raise CaptureError(self.name, f"{where}: captured length {caplen} runs past the "
                                      f"end of the {blen}-byte block")
