"""What the pcap and pcapng readers share: the Record type, the tally they
report into, and the chunked-buffer helpers.

Strategy: a reader never calls ``read`` per record. It holds one buffer of
about ``CHUNK`` bytes, slices records out of it with ``Struct.unpack_from``
and, only when a header or a packet runs past the end of the buffer, asks
``refill`` for a new buffer that starts at the unread tail. Every read is at
most ``CHUNK`` bytes, so no allocation is ever sized by a length field read
from the file: a lying length can make us read to the end of the file, never
make us reserve memory for bytes that are not there.

``read`` is any callable ``read(n) -> bytes`` returning at most ``n`` bytes,
and ``b""`` only at the end of the stream (``source.Source.read``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

# 1 MiB: large enough that the per-read cost vanishes next to the per-record
# cost, small enough that memory stays flat (one buffer plus one record).
CHUNK = 1 << 20

Read = Callable[[int], bytes]


class Record(NamedTuple):
    """One captured packet.

    ``ts`` is seconds since the Unix epoch as a float (exact to the
    microsecond for present-day dates; a double cannot hold nanoseconds at
    that magnitude). ``data`` is the captured bytes (``len(data)`` is the
    captured length), ``wirelen`` the length the packet had on the wire.
    """

    ts: float
    linktype: int
    wirelen: int
    data: bytes


# Speed: ``Record(...)`` runs the Python-level ``__new__`` that NamedTuple
# generates; building the tuple with ``tuple.__new__(Record, (...))`` gives
# the same object without that extra frame (about a fifth of the per-record
# cost of the reader loops).
make_record = tuple.__new__


class Tally:
    """What a reader reports while it runs; ``Capture`` exposes it."""

    __slots__ = ("packets", "linktypes", "truncated", "warnings", "_seen")

    def __init__(self) -> None:
        self.packets = 0
        self.linktypes: list[int] = []
        self._seen: set[int] = set()
        self.truncated = False
        self.warnings: list[str] = []

    def linktype(self, linktype: int) -> None:
        if linktype not in self._seen:    # a set: thousands of IDBs stay linear
            self._seen.add(linktype)
            self.linktypes.append(linktype)

    def cut_off(self, message: str) -> None:
        """The stream ended (or broke) where more data was expected."""
        self.truncated = True
        self.warnings.append(message)

    def warn(self, message: str) -> None:
        """Something survivable that the report should mention."""
        self.warnings.append(message)


def refill(buf: bytes, pos: int, need: int, read: Read) -> bytes:
    """Return ``buf[pos:]`` extended by reads until it holds ``need`` bytes.

    The result is shorter than ``need`` only when the stream has ended.
    Reads are ``CHUNK`` bytes each whatever ``need`` is, so a huge ``need``
    taken from a corrupt length field costs at most the rest of the file.
    """
    tail = buf[pos:]
    have = len(tail)
    if have >= need:
        return tail
    parts = [tail]
    while have < need:
        chunk = read(CHUNK)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def refill_into(buf, pos: int, need: int, size: int, readinto, ahead=None,
                spare=None) -> bytearray:
    """``buf[pos:]`` then the stream's next bytes, ``size`` in all (fewer
    only at the end of the stream), in one new bytearray: the stream reads
    straight into it, so a batch costs one copy, not two.

    Only the first ``need`` bytes are needed now; the rest is read-ahead,
    read with ``ahead`` (default ``readinto``), which ends quietly where
    the stream would report a failure (``Source.readinto_ahead``): the
    failure is the reader's business only if it gets that far, and its
    next call, needing those bytes, then meets it.

    ``size`` is bounded by the caller (a batch size, or a caplen already
    checked against the snapshot limit). ``spare``, a bytearray of the
    same size that nobody reads any more, is filled instead of a new one
    (a fresh 8 MiB buffer costs its page faults again on every batch)."""
    ahead = ahead or readinto
    tail = memoryview(buf)[pos:]
    have = len(tail)
    want = max(size, have)
    if spare is not None and len(spare) == want and spare is not buf:
        out = spare
    else:
        out = bytearray(want)
    out[:have] = tail
    view = memoryview(out)
    while have < len(out):
        n = (readinto if have < need else ahead)(view[have:])
        if not n:
            break
        have += n
    view.release()
    if have < len(out):
        # the end of the stream: a copy, not a resize (a resize fails while
        # any view of the buffer is still alive somewhere)
        return out[:have]
    return out


class BufferTurns:
    """``refill_into`` for a batch reader. With ``reuse`` two buffers take
    turns: a batch's buffer is filled again once the batch after next is
    asked for (the caller keeps no batch longer); otherwise each fill gets
    a new one."""

    def __init__(self, readinto, ahead, reuse: bool):
        self._readinto, self._ahead, self._reuse = readinto, ahead, reuse
        self._spare = None

    def __call__(self, buf, pos: int, need: int, size: int) -> bytearray:
        out = refill_into(buf, pos, need, size, self._readinto, self._ahead, self._spare)
        if self._reuse and isinstance(buf, bytearray):
            self._spare = buf
        return out


def skip(buf: bytes, pos: int, count: int, read: Read) -> tuple[int, bytes]:
    """Consume ``count`` bytes from ``buf[pos:]`` onwards without keeping them.

    For large blocks we do not interpret (pcapng custom or decryption-secret
    blocks): memory stays at one chunk however big the block says it is.
    Returns ``(consumed, last4)``: how many bytes were consumed (less than
    ``count`` if the stream ended) and the last four of them, for the
    caller's check of the block's trailing length.
    """
    tail = buf[pos:pos + count]
    consumed = len(tail)
    last = tail[-4:]
    while consumed < count:
        chunk = read(min(CHUNK, count - consumed))
        if not chunk:
            break
        consumed += len(chunk)
        last = (last + chunk)[-4:]
    return consumed, last


def hex_prefix(data: bytes, count: int = 8) -> str:
    """``7b 22 61 ...``: how error messages show the start of a file."""
    text = " ".join(f"{b:02x}" for b in data[:count])
    return text + " ..." if len(data) > count else text
