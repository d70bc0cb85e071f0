"""Where the bytes come from: a file or stdin, decompressed if need be.

Strategy: open the file (or take ``sys.stdin.buffer`` for ``-``), read its
first bytes and push them back in front of the stream (``_Raw``), so the
compression can be recognised by its magic bytes on a pipe too: nothing here
ever seeks. A compressed stream is wrapped in the matching streaming
decompressor, which is read one step of at most ``CHUNK`` decompressed
bytes at a time, so memory stays flat whatever the file size.

What a compressed input may cost is bounded (constants below, documented in
docs/DECISIONS.md): xz decoder memory, the zstd window, and the expansion
ratio (decompression bombs). Exceeding a bound is a ``CaptureError`` on
that input; every record before it is kept.

A decompressor that fails part-way (data cut off, or corrupt) ends the
stream as if the file ended there and reports the failure through
``on_failure``: the capture keeps every record read so far and is marked
truncated. Both kinds of early end are reported only when a reader needs
the bytes past them, never from read-ahead (see ``Source``). Errors of the
file itself (cannot open, read error) are ``CaptureError`` at once.

python-zstandard's ``stream_reader`` returns a clean end of stream when its
input stops in the middle of a frame, so ``_ZstdFrames`` follows the frame
layout of RFC 8878 in the compressed bytes to notice that case.
"""
from __future__ import annotations

import bz2
import lzma
import os
import stat
import sys
from typing import Callable, Optional

import zstandard

from ..errors import CaptureError
from . import gzipstream
from .base import CHUNK

try:  # the guarded file map (ipv6flow/_filemap.c); without it, files are read
    if os.environ.get("IPV6FLOW_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    from .._filemap import FileMap as _FileMap, torn as _torn
except ImportError:  # pragma: no cover - built by setup.py where a compiler is at hand
    _FileMap = _torn = None

# Plain (uncompressed, regular) files are mapped rather than read when the
# helper is built (``Source.map_view``); tests switch this off to compare.
MAP_FILES = True

# Bounds on what a compressed input may cost (docs/DECISIONS.md, "Bounds on
# hostile input"). xz: decoder memory, which is mostly the LZMA2
# dictionary the file declares (up to 1.5 GiB, and liblzma fills it as it
# decodes). 66 MiB admits every xz preset: -9 and -9e use a 64 MiB
# dictionary and 65 MiB of decoder memory (xz(1)); the next dictionary size
# LZMA2 can declare is 96 MiB.
XZ_MEMLIMIT = 66 << 20
# Compressed bytes the xz reader takes per read (LZMAFile takes 8 KiB).
XZ_READ = 64 << 10
# zstd: the window (the history a frame may refer back to) is held in
# memory. 64 MiB admits every level up to --ultra -21; --long and
# --ultra -22 use 128 MiB, which would take peak memory past our bound.
ZSTD_MAX_WINDOW = 64 << 20
# Decompression bombs: once RATIO_AFTER bytes have come out, the output may
# not exceed MAX_RATIO times the compressed bytes read so far. Captures
# compress 2 to 20 times, and deflate cannot pass 1032 (so no gzip file
# but one of zeros meets this); bzip2, xz and zstd turn a few kB of zeros
# into gigabytes. Checked after each decoded step, so the point where a
# stream is stopped does not depend on who reads it.
MAX_RATIO = 1000
RATIO_AFTER = 16 << 20

# Magic bytes of the compressed formats we undo (RFC 1952 section 2.3.1
# for gzip; the bzip2 "BZh" stream header followed by the block-size digit;
# the xz file format spec section 2.1.1.1; RFC 8878 section 3.1.1 for zstd).
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Enough bytes to tell every format above apart (xz needs six, bzip2 four).
SNIFF_LEN = 6


def detect_compression(head: bytes) -> Optional[str]:
    """Name the compression of a stream from its first bytes, or None."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(BZIP2_MAGIC) and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


class _Raw:
    """The undecompressed byte stream: counts what it reads, replays the
    bytes sniffed at open, and turns OS read errors into ``CaptureError``.

    Decompressors call ``read`` on it, so it must look enough like a binary
    file object for ``gzipstream.GzipStream``, ``bz2.BZ2File``, ``_XzReader``
    and ``zstandard``'s ``stream_reader``.
    """

    def __init__(self, name: str, read: Callable[[int], bytes], readinto=None):
        self._name = name
        self._read = read
        self._readinto = readinto
        self._prefix = b""
        self.count = 0
        self.observe: Optional[Callable[[bytes], None]] = None

    def sniff(self, count: int) -> bytes:
        """Read up to ``count`` bytes now and keep them for the next read.

        Loops because a pipe may hand over fewer bytes than asked.
        """
        parts = []
        have = 0
        while have < count:
            chunk = self._read_raw(count - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._prefix = b"".join(parts)
        return self._prefix

    def _read_raw(self, size: int) -> bytes:
        try:
            data = self._read(size)
        except OSError as exc:
            raise CaptureError(self._name, f"read error: {exc.strerror or exc}") from exc
        self.count += len(data)
        if self.observe is not None:
            self.observe(data)
        return data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._read_raw(size)

    def readinto(self, view) -> int:
        """Fill ``view`` (as much as one read gives); 0 at the end."""
        if self._prefix or self._readinto is None:
            data = self.read(len(view))
            view[:len(data)] = data
            return len(data)
        try:
            n = self._readinto(view) or 0
        except OSError as exc:
            raise CaptureError(self._name, f"read error: {exc.strerror or exc}") from exc
        self.count += n
        if self.observe is not None and n:
            self.observe(bytes(view[:n]))
        return n

    @property
    def pending(self) -> bytes:
        """Sniffed bytes not yet handed to a reader."""
        return self._prefix

    # What the decompressors' file wrappers look for on a file object.
    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _OverLimit(Exception):
    """A compressed stream needs more than a bound allows: an error, not a
    truncation (the file is fine; we refuse to spend that much on it)."""


class _XzReader:
    """xz streams decoded with ``XZ_MEMLIMIT`` (``lzma.LZMAFile`` takes no
    memory limit), read as ``LZMAFile`` reads them: concatenated streams
    follow one another, and bytes after a stream that do not start another
    one are ignored. Exceeding the limit is an error wherever it happens,
    in the first stream or a later one.
    """

    def __init__(self, raw: "_Raw"):
        self._raw = raw
        self._decoder = self._new()
        self._done = False

    @staticmethod
    def _new() -> lzma.LZMADecompressor:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)

    def read1(self, size: int) -> bytes:
        """Up to ``size`` bytes, as soon as a step gives some; b"" at the end."""
        while not self._done:
            decoder = self._decoder
            try:
                if decoder.eof:
                    block = decoder.unused_data or self._raw.read(XZ_READ)
                    if not block:
                        self._done = True
                        break
                    self._decoder = decoder = self._new()
                    try:
                        data = decoder.decompress(block, size)
                    except lzma.LZMAError as exc:
                        if _xz_over_limit(exc):
                            raise
                        self._done = True        # trailing bytes that are not xz
                        break
                else:
                    block = b""
                    if decoder.needs_input:
                        block = self._raw.read(XZ_READ)
                        if not block:
                            raise EOFError("xz data ended inside a stream")
                    data = decoder.decompress(block, size)
            except lzma.LZMAError as exc:
                if _xz_over_limit(exc):
                    raise _OverLimit(f"xz dictionary needs more than {XZ_MEMLIMIT >> 20} MiB "
                                     "of memory (the limit; xz -9 needs 65 MiB)") from None
                raise
            if data:
                return data
        return b""

    def close(self) -> None:
        pass


def _xz_over_limit(exc: lzma.LZMAError) -> bool:
    # liblzma's LZMA_MEMLIMIT_ERROR, as _lzma words it.
    return "Memory usage limit" in str(exc)


class _ZstdFrames:
    """Follow zstd frame boundaries in the compressed bytes (RFC 8878 §3.1).

    Only to tell a stream that ends between frames from one cut off inside
    a frame. It walks headers and skips block contents without decoding
    them, so it costs a few operations per 128 KiB block. If the bytes stop
    looking like zstd it gives up (``at_boundary`` is then True) and leaves
    the complaint to the decompressor.
    """

    _MAGIC, _FHD, _FH_REST, _BLOCK, _CHECKSUM, _SKIPPABLE_SIZE = range(6)

    def __init__(self) -> None:
        self._state = self._MAGIC
        self._want = 4          # size of the header field being collected
        self._field = b""       # the part of that field seen so far
        self._skip = 0          # content bytes to pass over before the next field
        self._checksum = False  # current frame ends with a 4-byte checksum
        self._lost = False
        self._fhd = 0           # the current frame's header descriptor
        self.window = 0         # the window size the current frame declares

    @property
    def at_boundary(self) -> bool:
        return self._lost or (
            self._state == self._MAGIC and not self._field and not self._skip)

    def feed(self, data: bytes) -> None:
        i, end = 0, len(data)
        while i < end and not self._lost:
            if self._skip:
                step = min(self._skip, end - i)
                self._skip -= step
                i += step
                continue
            take = min(self._want - len(self._field), end - i)
            self._field += data[i:i + take]
            i += take
            if len(self._field) == self._want:
                field, self._field = self._field, b""
                self._step(field)

    def _expect(self, state: int, want: int) -> None:
        self._state, self._want = state, want

    def _step(self, field: bytes) -> None:
        state = self._state
        if state == self._MAGIC:
            magic = int.from_bytes(field, "little")
            if field == ZSTD_MAGIC:
                self._expect(self._FHD, 1)
            elif magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame, §3.1.2
                self._expect(self._SKIPPABLE_SIZE, 4)
            else:
                self._lost = True
        elif state == self._FHD:
            # Frame_Header_Descriptor, §3.1.1.1.1: the sizes of the optional
            # header fields that follow it.
            fhd = self._fhd = field[0]
            single_segment = (fhd >> 5) & 1
            fcs_flag = fhd >> 6
            fcs_size = (single_segment, 2, 4, 8)[fcs_flag]
            did_size = (0, 1, 2, 4)[fhd & 3]
            self._checksum = bool(fhd & 4)
            rest = (0 if single_segment else 1) + did_size + fcs_size
            if rest:
                self._expect(self._FH_REST, rest)
            else:
                self._expect(self._BLOCK, 3)
        elif state == self._FH_REST:
            self.window = _window_size(self._fhd, field)
            self._expect(self._BLOCK, 3)
        elif state == self._BLOCK:
            # Block_Header, §3.1.1.2: Last_Block bit, Block_Type, Block_Size.
            header = int.from_bytes(field, "little")
            block_type = (header >> 1) & 3
            if block_type == 3:  # reserved: not zstd after all
                self._lost = True
                return
            self._skip = 1 if block_type == 1 else header >> 3  # RLE holds one byte
            if not header & 1:
                self._expect(self._BLOCK, 3)
            elif self._checksum:
                self._expect(self._CHECKSUM, 4)
            else:
                self._expect(self._MAGIC, 4)
        elif state == self._CHECKSUM:
            self._expect(self._MAGIC, 4)
        elif state == self._SKIPPABLE_SIZE:
            self._skip = int.from_bytes(field, "little")
            self._expect(self._MAGIC, 4)


def _window_size(fhd: int, rest: bytes) -> int:
    """Window_Size of a frame (RFC 8878 §3.1.1.1.2) from its header
    descriptor and the header fields after it."""
    if not (fhd >> 5) & 1:
        # Window_Descriptor: exponent and mantissa.
        base = 1 << (10 + (rest[0] >> 3))
        return base + (base >> 3) * (rest[0] & 7)
    # Single_Segment: the window is the frame content size.
    fcs = rest[(0, 1, 2, 4)[fhd & 3]:]
    return int.from_bytes(fcs, "little") + (256 if len(fcs) == 2 else 0)


# What each decompressor raises on bad or cut-off input. EOFError is the
# stdlib's "compressed file ended before the end-of-stream marker".
_GZIP_ERRORS = gzipstream.ERRORS
_BZIP2_ERRORS = (EOFError, OSError, ValueError)
_XZ_ERRORS = (EOFError, lzma.LZMAError)
_ZSTD_ERRORS = (zstandard.ZstdError,)


class Source:
    """A readable byte stream, decompressed if the file was compressed.

    ``read(n)`` returns at most ``n`` bytes and ``b""`` only at the end;
    ``readinto(view)`` likewise. A compressed stream is decoded one step of
    at most ``CHUNK`` bytes at a time, whatever size the caller asks for:
    the decompressor then sees the same calls, and fails at the same point,
    for the record reader's 1 MiB reads and the batch reader's 8 MiB
    read-ahead.

    A compressed stream can stop early in two ways, and either is reported
    only when a reader needs bytes past that point:

    * the decompressor fails (data cut off or corrupt): ``on_failure`` (set
      by the capture) is told once, ``failure`` keeps the message, and the
      stream ends there, as a truncated file does;
    * a bound is exceeded (``_OverLimit``): that read, and any later one,
      raises CaptureError.

    ``readinto_ahead`` reads the same stream, but at such a point it ends
    without reporting anything: it is for read-ahead, whose bytes the
    reader may never need (a bad record may stop it first). The reader's
    next ``readinto``, if it needs more, reports the failure (issue 7: the
    batch reader reported a gzip CRC failure that the record reader, which
    stops at a bad record before it, never reached).
    """

    def __init__(self, name: str, read: Callable[[int], bytes],
                 close: Optional[Callable[[], None]], readinto=None):
        self.name = name
        self._raw = _Raw(name, read, readinto)
        self._close_raw = close
        self.compression: Optional[str] = None
        self.failure: Optional[str] = None
        self.on_failure: Callable[[str], None] = lambda message: None
        self._decoder = None
        self._errors: tuple = ()
        self._frames: Optional[_ZstdFrames] = None
        self._produced = 0     # decompressed bytes so far
        self._out = b""        # the last decoded step
        self._at = 0           # how much of it was handed out
        self._done = False     # the decompressor reached the end of the data
        self._end: Optional[tuple[bool, str]] = None  # (over a bound?, message)
        self.read = self._raw.read
        self._map: Optional[tuple[int, int]] = None   # (fd, file offset - stream offset)
        self._torn = 0
        compression = detect_compression(self._raw.sniff(SNIFF_LEN))
        if compression is not None:
            self._wrap(compression)

    def allow_map(self, fd: int, delta: int = 0) -> None:
        """Let readers map this stream (``map_view``): it is the file ``fd``
        from ``delta`` on (byte ``n`` of the stream is byte ``n + delta`` of
        the file, for ``n`` past what was read already). Only a plain
        regular file, and only where the guarded map is built."""
        if (MAP_FILES and _FileMap is not None and self.compression is None
                and stat.S_ISREG(os.fstat(fd).st_mode)):
            self._map = (fd, delta)
            self._torn = _torn()

    # what a file that shrank under its maps cost (``check_torn``)
    CUT_WALK = "the records before the batch it cut are counted"
    CUT_READ = "the last batch read zeros where its bytes were"
    CUT_SIZE = "every record read before is counted"

    def check_torn(self, detail: str) -> None:
        """CaptureError if a page of a map was lost since the file was
        opened (a SIGBUS turned into zeros, ``_filemap.c``): asked after
        each walk, before its batch is handed out (``CUT_WALK``), and at
        the next map, for what the batch's readers met (``CUT_READ``)."""
        if self._map is not None and _torn() != self._torn:
            raise self._shrank(detail)

    def _shrank(self, detail: str) -> CaptureError:
        self._map = None
        return CaptureError(self.name, "the file shrank while it was read (truncated or "
                                       f"overwritten by another program); {detail}")

    @staticmethod
    def reading() -> str:
        """How plain files are read (``--stats``)."""
        if _FileMap is None:
            return "buffered reads (the file map helper is not built)"
        return "file maps (plain pcap and pcapng)" if MAP_FILES else "buffered reads"

    @property
    def mappable(self) -> bool:
        return self._map is not None

    def map_size(self) -> int:
        """The stream's length now (the file's size, read again)."""
        fd, delta = self._map
        try:
            return os.fstat(fd).st_size - delta
        except OSError as exc:
            raise CaptureError(self.name, f"read error: {exc.strerror or exc}") from exc

    def map_view(self, offset: int, length: int):
        """Bytes ``[offset, offset + length)`` of the stream (fewer at the end
        of the file, ``b""`` past it) as a read-only view of the file's own
        pages: no copy. The file's size is read again at every call: a
        file that grows is read on; one now shorter than the bytes already
        handed out was cut or overwritten by another program, a
        CaptureError (``CUT_SIZE``). If it shrinks while a view is being
        read, the guard (``_filemap.c``) turns the lost pages into zeros
        and the reader's next step raises CaptureError. Either way the
        records before are kept, as for a read error."""
        fd, delta = self._map
        self.check_torn(self.CUT_READ)
        end = self.map_size()
        if end < self._raw.count:
            # shorter than the bytes already handed out: cut or overwritten
            raise self._shrank(self.CUT_SIZE)
        length = min(length, end - offset)
        try:
            view = memoryview(_FileMap(fd, offset + delta, length)) if length > 0 else b""
        except OSError as exc:
            raise CaptureError(self.name, f"read error: {exc.strerror or exc}") from exc
        self._raw.count = max(self._raw.count, offset + len(view))
        return view

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file itself (compressed bytes if compressed)."""
        return self._raw.count

    def _wrap(self, compression: str) -> None:
        raw = self._raw
        self.compression = compression
        if compression == "gzip":
            decoder = gzipstream.GzipStream(raw)
            self._errors = _GZIP_ERRORS
        elif compression == "bzip2":
            decoder = bz2.BZ2File(raw, mode="rb")
            self._errors = _BZIP2_ERRORS
        elif compression == "xz":
            decoder = _XzReader(raw)
            self._errors = _XZ_ERRORS
        else:
            frames = self._frames = _ZstdFrames()
            frames.feed(raw.pending)  # the sniffed bytes come first
            raw.observe = frames.feed
            decoder = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
                raw, read_size=CHUNK, read_across_frames=True, closefd=False)
            self._errors = _ZSTD_ERRORS
        self._decoder = decoder
        # read1 does at most one decompression step, so a pipe being
        # written live is not held back waiting for a full chunk; the
        # zstandard reader's read1 may return b"" before the end, so it
        # gets read, which is bounded by ``size`` all the same.
        self._decode = decoder.read if compression == "zstd" else decoder.read1
        self.read = self._read_decoded

    def readinto(self, view) -> int:
        """Fill ``view`` from the (decompressed) stream; 0 at the end.
        Uncompressed files read straight into ``view``: no extra copy."""
        if self.compression is None:
            return self._raw.readinto(view)
        return self._decoded_into(view, True)

    def readinto_ahead(self, view) -> int:
        """``readinto`` for read-ahead: a failure ends it quietly (above)."""
        if self.compression is None:
            return self._raw.readinto(view)
        return self._decoded_into(view, False)

    def _read_decoded(self, size: int) -> bytes:
        out, at = self._out, self._at
        if at == len(out):
            if not self._step(True):
                return b""
            out, at = self._out, 0
        if at == 0 and size >= len(out):
            self._at = len(out)
            return out
        data = out[at:at + size]
        self._at = at + len(data)
        return data

    def _decoded_into(self, view, report: bool) -> int:
        if self._at == len(self._out) and not self._step(report):
            return 0
        n = min(len(view), len(self._out) - self._at)
        with memoryview(self._out) as out:
            view[:n] = out[self._at:self._at + n]
        self._at += n
        return n

    def _step(self, report: bool) -> bool:
        """Decode the next step into ``_out`` (all of the last one is
        handed out); False at the end of the stream, which is reported
        if ``report`` and the stream stopped early."""
        if self._end is None and not self._done:
            try:
                data = self._decode(CHUNK)
            except _OverLimit as exc:
                self._end = (True, f"{exc}, after {self._raw.count} compressed bytes")
            except self._errors as exc:
                self._end = self._failed(exc)
            else:
                if data:
                    self._out, self._at = data, 0
                    self._produced += len(data)
                    self._check_ratio()
                    return True
                if self._frames is not None and not self._frames.at_boundary:
                    self._end = self._failed(None)
                else:
                    self._done = True
        if report and self._end is not None:
            over, message = self._end
            if over:
                raise CaptureError(self.name, message)
            if self.failure is None:
                self.failure = message
                self.on_failure(message)
        return False

    def _check_ratio(self) -> None:
        """Stop a decompression bomb after the step just decoded (it is
        still handed out, like every byte before it)."""
        produced, used = self._produced, self._raw.count
        if produced > RATIO_AFTER and produced > MAX_RATIO * used:
            self._end = (True, f"{self.compression} data expands more than {MAX_RATIO} times "
                               f"({produced} bytes from {used} compressed bytes): "
                               "refused as a decompression bomb")

    def _failed(self, exc: Optional[BaseException]) -> tuple[bool, str]:
        """What stopped the decompressor, as ``_end`` holds it."""
        offset = self._raw.count
        if self._frames is not None and exc is not None and "too much memory" in str(exc):
            # python-zstandard's words for ZSTD_error_frameParameter_windowTooLarge
            mib = -(-self._frames.window >> 20)
            return True, (f"zstd window of {mib} MiB is over the limit of "
                          f"{ZSTD_MAX_WINDOW >> 20} MiB (zstd --long and --ultra -22 make "
                          f"such files), after {offset} compressed bytes")
        if exc is None or isinstance(exc, EOFError):
            what = f"{self.compression} data is cut off (ends inside a compressed stream"
        else:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            what = f"{self.compression} data is corrupt ({detail}"
        return False, f"{what}, after {offset} compressed bytes)"

    def close(self) -> None:
        if self._decoder is not None:
            try:
                self._decoder.close()
            except Exception:  # closing a failed decoder may complain again
                pass
        if self._close_raw is not None:
            self._close_raw()


def open_source(path, name: str) -> Source:
    """Open ``path`` ("-" for stdin) and detect its compression.

    Raises CaptureError with a short reason a user can act on.
    """
    if isinstance(path, str) and path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise CaptureError(name, "standard input is not available")
        # read1: return what the pipe has instead of waiting for a full chunk.
        read = getattr(stdin, "read1", None) or stdin.read
        return Source(name, read, None)  # stdin is not ours to close
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by Source.close
    except FileNotFoundError:
        raise CaptureError(name, "no such file") from None
    except IsADirectoryError:
        raise CaptureError(name, "is a directory") from None
    except PermissionError:
        raise CaptureError(name, "permission denied") from None
    except OSError as exc:
        raise CaptureError(name, f"cannot open ({exc.strerror or exc})") from None
    try:
        source = Source(name, raw.read, raw.close, raw.readinto)
        source.allow_map(raw.fileno())
        return source
    except BaseException:
        raw.close()
        raise

