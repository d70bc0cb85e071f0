"""gzip decoding as CPython's ``gzip`` module does it, on a faster inflate.

``GzipStream(raw).read1(size)`` decodes the members of a gzip file one
after another exactly as ``gzip.GzipFile.read1`` does: the same header
parsing (FEXTRA, FNAME, FCOMMENT, FHCRC), zero padding between members
skipped, the CRC-32 and length of each member checked, the input read
8 KiB at a time, and the same exceptions with the same messages. Two
things differ:

* the inflate and CRC-32 are zlib-ng's when the ``zlib-ng`` package is
  installed (a dependency; the standard ``zlib`` otherwise): on the
  benchmark capture (``gzip -1``, 406 MB into 1.32 GB) that decodes in
  about half the time (docs/DECISIONS.md, "Reading captures");
* one call decodes until it has ``size`` bytes (or a member ends, or the
  input does), where ``GzipFile`` returns after each 8 KiB of input: fewer
  Python steps per MiB. An error met after some bytes were decoded in the
  call is raised by the next call, so those bytes are handed out first,
  as ``GzipFile`` would have handed them out in earlier calls.

zlib-ng's own ``gzip_ng.GzipFile`` is not used: on a file cut off in the
middle it raises before handing out what it had decoded from the part
that is there, and ipv6flow keeps every frame read before a failure.
"""

from __future__ import annotations

import struct
import zlib
from gzip import BadGzipFile

try:
    from zlib_ng import zlib_ng as _zlib
except ImportError:                       # installed without its dependencies
    _zlib = zlib

ERRORS = (EOFError, OSError, zlib.error, _zlib.error)
READ = 8192                               # input per step, as io.DEFAULT_BUFFER_SIZE
FHCRC, FEXTRA, FNAME, FCOMMENT = 2, 4, 8, 16
_ENDED = "Compressed file ended before the end-of-stream marker was reached"


class GzipStream:
    """The decoded bytes of a gzip file read through ``raw.read(n)``."""

    def __init__(self, raw, zlib_module=None):
        self._raw = raw
        self._z = zlib_module or _zlib
        self._in = b""          # input read and not yet consumed
        self._d = None          # the current member's decompressor (None: between members)
        self._crc = 0
        self._size = 0
        self._error = None      # met after bytes that were handed out first

    # -- input ------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes of input (fewer only at its end)."""
        if self._in:
            data, self._in = self._in[:n], self._in[n:]
            return data
        return self._raw.read(n)

    def _exact(self, n: int) -> bytes:
        data = self._read(n)
        while len(data) < n:
            more = self._read(n - len(data))
            if not more:
                raise EOFError(_ENDED)
            data += more
        return data

    # -- members ----------------------------------------------------------
    def _header(self) -> bool:
        """Read a member's header; False at the end of the input."""
        magic = self._read(2)
        if magic == b"":
            return False
        if magic != b"\037\213":
            raise BadGzipFile("Not a gzipped file (%r)" % magic)
        method, flag = struct.unpack("<BBIxx", self._exact(8))[:2]
        if method != 8:
            raise BadGzipFile("Unknown compression method")
        if flag & FEXTRA:
            extra_len, = struct.unpack("<H", self._exact(2))
            self._exact(extra_len)
        for bit in (FNAME, FCOMMENT):
            if flag & bit:
                while True:
                    s = self._read(1)
                    if not s or s == b"\000":
                        break
        if flag & FHCRC:
            self._exact(2)
        self._d = self._z.decompressobj(-zlib.MAX_WBITS)
        self._crc = self._z.crc32(b"")
        self._size = 0
        return True

    def _trailer(self) -> None:
        crc32, isize = struct.unpack("<II", self._exact(8))
        if crc32 != self._crc:
            raise BadGzipFile("CRC check failed %s != %s" % (hex(crc32), hex(self._crc)))
        if isize != (self._size & 0xffffffff):
            raise BadGzipFile("Incorrect length of data produced")
        c = b"\x00"                       # zero padding between members
        while c == b"\x00":
            c = self._read(1)
        if c:
            self._in = c + self._in
        self._d = None

    # -- output -----------------------------------------------------------
    def read1(self, size: int) -> bytes:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        parts, want = [], size
        try:
            while want > 0:
                if self._d is not None and self._d.eof:
                    self._trailer()
                    if parts:
                        break             # one member per call, as GzipFile
                if self._d is None and not self._header():
                    break
                buf = self._read(READ)
                out = self._d.decompress(buf, want)
                rest = self._d.unconsumed_tail or self._d.unused_data
                if rest:
                    self._in = rest + self._in
                if out:
                    self._crc = self._z.crc32(out, self._crc)
                    self._size += len(out)
                    parts.append(out)
                    want -= len(out)
                elif buf == b"":
                    raise EOFError(_ENDED)
        except ERRORS as exc:
            if not parts:
                raise
            self._error = exc
        return b"".join(parts)

    def close(self) -> None:
        self._d = None
