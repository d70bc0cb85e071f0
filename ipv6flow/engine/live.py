"""Live capture: frames from a network interface, folded into the same Summary as files.

Serves ``ipv6flow live`` (see ``capture_live`` for the options).

Which capture path, and why: **libpcap, through scapy's ctypes binding
(``scapy.libs.winpcapy``)**, not scapy's native ``L2ListenSocket`` and not
``sniff()``:

* libpcap on Linux reads a TPACKET_V3 memory-mapped ring (its size set
  with ``pcap_set_buffer_size``, 32 MiB here): the kernel fills whole blocks
  while Python decodes a batch, so a burst is absorbed by the ring instead of
  being dropped; the native socket costs one ``recvmsg`` per frame.
* ``pcap_compile`` turns ``--bpf`` into an in-kernel filter (scapy's native
  path would shell out to ``tcpdump -ddd`` for that).
* ``pcap_stats`` gives the kernel drop counts (on Linux it accumulates the
  ``PACKET_STATISTICS`` getsockopt of the AF_PACKET socket) and the
  interface drops.
* The per-frame cost stays small: the compiled helper ``ipv6flow._livecap``
  (``CompiledPending``, an optional C extension: setup.py) runs
  ``pcap_dispatch`` on our handle with a C callback that copies each frame
  into the batch buffer, the GIL released, and Python takes the batch
  whole; where it is not built we call ``pcap_next_ex`` ourselves and copy
  each frame with ``memmove`` (``Pending``, below). Scapy's own wrapper
  (``L2pcapListenSocket``) slices the ctypes pointer into a list of ints
  and drops the wire length, and ``sniff()`` would dissect every frame into
  scapy layers.
* scapy's binding changes no global scapy setting (``conf.use_pcap`` stays
  as it is) and is already a dependency; a separate libpcap binding
  (pcapy-ng, python-libpcap) would add a compiled package for no gain here.

libpcap itself is a system library (Debian/Ubuntu: ``libpcap0.8``, which
tcpdump and tshark pull in); without it ``capture_live`` raises a one-line
Ipv6flowError saying so.

Strategy of the loop (engine/running.py, shared with ``collect``): the
handle is non-blocking and the loop ``poll``s its selectable fd with a
timeout of at most ``TIMEOUT_MS``: with TPACKET_V3 a blocking
``pcap_next_ex`` can wait forever on an idle link, and neither a signal
nor ``--duration`` could end it. ``fill`` pulls frames from libpcap into
preallocated buffers: the compiled helper's (``CompiledPending``), or two
``memmove``s a frame (``Pending``: libpcap's packet headers side by side,
the packet bytes back to back); every ``FLUSH_SECONDS``, when the buffers
are full (``FLUSH_BYTES`` or ``FLUSH_FRAMES``; the compiled helper's
``COMPILED_BATCH_BYTES``) or when the ring is empty (the compiled helper
first lingers up to ``LINGER_MS`` for its next block) ``take`` turns them
into a ``capture.batch.Batch``, which is written to the ``--write`` pcap
first (one write of whole records) and then folded into the Summary with
``fold.summarize_batch`` exactly as a file's batches are (or one frame at a
time with the reference decoder: the figures are the same). The ctypes
copy costs about 3 us a frame (7-10 us of CPU a frame with the fast decoder
on the benchmark mix: 100,000 to 250,000 frames/s on one core); the
compiled one a few tens of ns, and its big batches spread the decoder's
fixed cost a batch, so the fast decoder's 1 to 2 us a frame is most of
what is left (benchmarks/live_rate.py, RESULTS.md). Past one core's rate the
ring fills, the kernel drops, and the report says how many.

Ending: ``--count`` ends at exactly that many frames. ``--duration``,
SIGINT/SIGTERM (only when running in the main thread) or the ``stop``
event end the capture, and the ring is drained first: a TPACKET_V3 block
reaches user space only when full or after the block timeout, so reading
goes on until the ring is empty at least ``DRAIN_IDLE_SECONDS`` after the
stop (at most ``DRAIN_SECONDS`` on a busy link): nothing the kernel
captured before the stop is lost. A second signal skips the drain. Either
way the final RunResult is returned, and the ``--write`` file is closed
complete.

NAT64: a live capture cannot be read twice, so traffic through a prefix
that evidence discovers (DNS64, RFC 7050, PREF64) is counted from the batch
after its discovery on (engine/local.py explains the second pass that files
get); well-known, local-use and configured prefixes are counted from the
first frame. The translation section sizes a found prefix likewise.
"""

import ctypes
import os
import select
import struct
import threading
import time
from contextlib import ExitStack

import numpy as np

from ..analysis.nat64 import inspect_frame
from ..capture import pcap
from ..capture.batch import Batch
from ..decode import decode_frame
from ..decode.link import LINKTYPES
from ..errors import Ipv6flowError, UsageError
from ..fold import summarize_batch
from ..options import BUFFER_BYTES, SNAPLEN, Options, RunResult
from ..summary import Summary
from . import running
from .local import LivePrefixes, new_input
from .parallel import _keep_large_buffers
from .running import TIMEOUT_MS
from .signals import Signals

# Pending frames become a batch every running.FLUSH_SECONDS, when the ring
# is empty, or once they hold FLUSH_BYTES of packets (as a file's batches,
# capture/base.CHUNK) or FLUSH_FRAMES frames.
FLUSH_BYTES = 1 << 20
FLUSH_FRAMES = 65536
COMPILED_BATCH_BYTES = 8 << 20  # the compiled reader's batches: as a pcap file's (BATCH_BYTES there)
LINGER_MS = 50                # ... and how long it waits for the ring's next block to add to one
DRAIN_IDLE_SECONDS = 1.5 * TIMEOUT_MS / 1000   # after a stop: past the block timeout, ...
DRAIN_SECONDS = 1.0                            # ... until the ring is empty, at most this

# libpcap's dlt_to_linktype() for the DLT values that differ from the
# LINKTYPE written in files (DLT_RAW is 12 on Linux, 14 on OpenBSD).
DLT_TO_LINKTYPE = {12: 101, 14: 101}

# pcap_activate() error codes (pcap/pcap.h).
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_PERM_DENIED = -8
PCAP_ERROR_IFACE_NOT_UP = -9
PCAP_ERROR_PROMISC_PERM_DENIED = -11
PCAP_ERROR_BREAK = -2         # pcap_next_ex at the end of a saved file (PcapHandle.offline)
PCAP_NETMASK_UNKNOWN = -1     # 0xffffffff, as the binding's signed bpf_u_int32

NEED_CAP = ("live capture needs the CAP_NET_RAW capability: run as root, or grant it "
            "with 'setcap cap_net_raw,cap_net_admin=eip' on the Python interpreter")



def _libpcap():
    """scapy's ctypes binding of libpcap, or a clear error without libpcap."""
    try:
        from scapy.libs import winpcapy
    except OSError as e:        # the binding raises OSError when libpcap is absent
        raise Ipv6flowError("live capture needs libpcap, which was not found "
                            f"({e}); on Debian/Ubuntu: apt-get install libpcap0.8")
    return winpcapy


def _text(raw) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


class PcapHandle:
    """One activated libpcap capture handle, non-blocking."""

    def __init__(self, iface: str, snaplen: int = SNAPLEN, promisc: bool = True,
                 buffer_bytes: int = BUFFER_BYTES, bpf: str | None = None):
        self.wp = wp = _libpcap()
        self.iface = iface
        self.errbuf = ctypes.create_string_buffer(256)      # PCAP_ERRBUF_SIZE
        self.p = wp.pcap_create(iface.encode(), self.errbuf)
        if not self.p:
            raise Ipv6flowError(f"{iface}: cannot capture: {_text(self.errbuf.raw)}")
        try:
            self._activate(snaplen, promisc, buffer_bytes)
            if bpf:
                self._filter(bpf)
            if wp.pcap_setnonblock(self.p, 1, self.errbuf) < 0:
                raise Ipv6flowError(f"{iface}: cannot capture: {_text(self.errbuf.raw)}")
            self.fd = wp.pcap_get_selectable_fd(self.p)
            if self.fd < 0:
                raise Ipv6flowError(f"{iface}: cannot capture: no selectable descriptor")
            self._opened()
        except BaseException:
            wp.pcap_close(self.p)
            raise

    def _opened(self):
        wp = self.wp
        dlt = wp.pcap_datalink(self.p)
        self.linktype = DLT_TO_LINKTYPE.get(dlt, dlt)
        self.snaplen = wp.pcap_snapshot(self.p)
        # pcap_next_ex seen through plain addresses: the header and data
        # pointers come back as ints, for memmove (no ctypes objects per frame).
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.POINTER(ctypes.c_void_p))
        self.next_ex = ctypes.cast(wp.pcap_next_ex, proto)
        self.address = ctypes.cast(self.p, ctypes.c_void_p).value
        self._stat = wp.pcap_stat()

    @classmethod
    def offline(cls, path: str):
        """A saved capture read through libpcap (``pcap_open_offline``): the
        live reading loops (``Pending``, ``CompiledPending``) without an
        interface, for tests and benchmarks."""
        self = cls.__new__(cls)
        self.wp = wp = _libpcap()
        self.iface = path
        self.errbuf = ctypes.create_string_buffer(256)
        self.p = wp.pcap_open_offline(path.encode(), self.errbuf)
        if not self.p:
            raise Ipv6flowError(f"{path}: cannot read: {_text(self.errbuf.raw)}")
        self.fd = -1
        self._opened()
        return self

    def _activate(self, snaplen, promisc, buffer_bytes):
        wp, p = self.wp, self.p
        wp.pcap_set_snaplen(p, snaplen)
        wp.pcap_set_promisc(p, 1 if promisc else 0)
        wp.pcap_set_timeout(p, TIMEOUT_MS)
        wp.pcap_set_buffer_size(p, buffer_bytes)
        status = wp.pcap_activate(p)
        if status >= 0:                  # > 0: a warning (e.g. promisc not supported)
            return
        detail = _text(wp.pcap_geterr(p)) or _text(wp.pcap_statustostr(status))
        iface = self.iface
        if status == PCAP_ERROR_PERM_DENIED:
            raise Ipv6flowError(f"{iface}: permission denied: {NEED_CAP}")
        if status == PCAP_ERROR_PROMISC_PERM_DENIED:
            raise Ipv6flowError(f"{iface}: promiscuous mode not permitted: {NEED_CAP}")
        if status == PCAP_ERROR_NO_SUCH_DEVICE:
            raise Ipv6flowError(f"{iface}: no such network interface")
        if status == PCAP_ERROR_IFACE_NOT_UP:
            raise Ipv6flowError(f"{iface}: the interface is down")
        raise Ipv6flowError(f"{iface}: cannot capture: {detail}")

    def _filter(self, expr):
        wp = self.wp
        prog = wp.bpf_program()
        if wp.pcap_compile(self.p, ctypes.byref(prog), expr.encode(), 1,
                           PCAP_NETMASK_UNKNOWN) < 0:
            raise UsageError(f"bad capture filter {expr!r}: {_text(wp.pcap_geterr(self.p))}")
        try:
            if wp.pcap_setfilter(self.p, ctypes.byref(prog)) < 0:
                raise Ipv6flowError(f"{self.iface}: cannot set the capture filter: "
                                    f"{_text(wp.pcap_geterr(self.p))}")
        finally:
            wp.pcap_freecode(ctypes.byref(prog))

    def error(self) -> str:
        return _text(self.wp.pcap_geterr(self.p))

    def stats(self) -> dict:
        """Kernel counters since the handle opened (pcap_stats)."""
        st = self._stat
        if self.wp.pcap_stats(self.p, ctypes.byref(st)) < 0:
            return {"received": None, "dropped": None, "interface_dropped": None}
        return {"received": st.ps_recv & 0xFFFFFFFF, "dropped": st.ps_drop & 0xFFFFFFFF,
                "interface_dropped": st.ps_ifdrop & 0xFFFFFFFF}

    def close(self):
        if self.p:
            self.wp.pcap_close(self.p)
            self.p = None


def _header_dtype(wp):
    """numpy's view of libpcap's ``struct pcap_pkthdr`` as this binding
    declares it (timeval widths differ between platforms)."""
    hdr, tv = wp.pcap_pkthdr, wp.timeval
    return np.dtype({"names": ["sec", "usec", "caplen", "wirelen"],
                     "formats": [f"i{tv.tv_sec.size}", f"i{tv.tv_usec.size}", "u4", "u4"],
                     "offsets": [hdr.ts.offset + tv.tv_sec.offset,
                                 hdr.ts.offset + tv.tv_usec.offset,
                                 hdr.caplen.offset, hdr.len.offset],
                     "itemsize": ctypes.sizeof(hdr)})


class Pending:
    """Frames read but not yet folded, in two preallocated buffers: libpcap's
    packet headers side by side, and the packet bytes back to back. Reading a
    frame is two ``memmove``s (the ring slot is reused once the next frame is
    read); numpy reads the headers of the whole batch at once in ``take``."""

    reader = "ctypes"

    def __init__(self, handle: PcapHandle, max_bytes: int = FLUSH_BYTES,
                 max_frames: int = FLUSH_FRAMES):
        self.handle = handle
        self.dtype = _header_dtype(handle.wp)
        self.hsize = self.dtype.itemsize
        self.max_bytes, self.max_frames = max_bytes, max_frames
        self.headers = (ctypes.c_char * (self.hsize * max_frames))()
        # Room for one more frame of the largest size once max_bytes is reached.
        self.data = (ctypes.c_char * (max_bytes + max(handle.snaplen, SNAPLEN)))()
        self.n = 0
        self.size = 0

    def __len__(self):
        return self.n

    def fill(self, limit: int):
        """Read up to ``limit`` frames. Returns "empty" when none was waiting,
        "full" when the buffers are, else None."""
        h = self.handle
        next_ex, p = h.next_ex, h.address
        hp, dp = ctypes.c_void_p(), ctypes.c_void_p()
        href, dref = ctypes.byref(hp), ctypes.byref(dp)
        memmove = ctypes.memmove
        hsize, hbase = self.hsize, ctypes.addressof(self.headers)
        dbase = ctypes.addressof(self.data)
        caplen_at = self.dtype.fields["caplen"][1]
        caplen_of = struct.Struct("=I").unpack_from
        hview = memoryview(self.headers).cast("B")
        n, size = self.n, self.size
        max_frames, max_bytes = self.max_frames, self.max_bytes
        status = None
        try:
            for _ in range(limit):
                if n >= max_frames or size >= max_bytes:
                    status = "full"
                    break
                r = next_ex(p, href, dref)
                if r == 0 or r == PCAP_ERROR_BREAK:     # -2: the end of a saved file
                    status = "empty"
                    break
                if r != 1:
                    raise Ipv6flowError(f"{h.iface}: capture failed: {h.error()}")
                at = n * hsize
                memmove(hbase + at, hp.value, hsize)
                (cap,) = caplen_of(hview, at + caplen_at)
                memmove(dbase + size, dp.value, cap)
                n += 1
                size += cap
        finally:
            self.n, self.size = n, size
        return status

    def take(self, linktype: int):
        """The pending frames as ``(batch, sec, usec)`` (a capture.batch.Batch
        plus the exact timestamp fields for the pcap file); empties the buffers."""
        n = self.n
        hdr = np.frombuffer(self.headers, dtype=self.dtype, count=n)
        sec = hdr["sec"].astype(np.int64)
        usec = hdr["usec"].astype(np.int64)
        caplens = hdr["caplen"].astype(np.int64)
        offsets = np.zeros(n, dtype=np.int64)
        if n:
            np.cumsum(caplens[:-1], out=offsets[1:])
        # The same IEEE operations as the pcap reader's ``sec + frac / units``.
        ts = sec.astype(np.float64) + usec / 1_000_000
        batch = Batch(ctypes.string_at(self.data, self.size), offsets, caplens,
                      hdr["wirelen"].astype(np.int64), ts, np.full(n, linktype, dtype=np.int32))
        self.n = self.size = 0
        return batch, sec, usec


try:                                   # optional compiled frame copy (setup.py)
    if os.environ.get("IPV6FLOW_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    from .. import _livecap
except ImportError:
    _livecap = None


class CompiledPending:
    """``Pending`` with the copying done in C (``ipv6flow/_livecap.c``): one
    call reads up to ``limit`` frames through ``pcap_dispatch`` with the GIL
    released, and ``take`` gets the batch's bytes and header columns whole.
    Same interface and errors as ``Pending``; its batches are bigger (up to
    ``COMPILED_BATCH_BYTES``), and when the ring runs empty with frames
    pending it waits up to ``LINGER_MS`` for the kernel's next block before
    it says "empty" (which folds the batch): the decoder costs a fixed 2-3
    ms a batch besides its frames, so one small batch per ring block would
    cost more than the copying saved."""

    reader = "compiled"

    def __init__(self, handle: PcapHandle, max_bytes: int = COMPILED_BATCH_BYTES,
                 max_frames: int = FLUSH_FRAMES, linger_ms: int = LINGER_MS):
        self.handle = handle
        self.room = max(handle.snaplen, SNAPLEN)
        # An 8 MiB batch every few ms: keep such buffers in the heap for
        # reuse instead of fresh pages from the kernel for each (as the
        # workers do; about 12% less CPU a frame, take and decoder).
        _keep_large_buffers()
        dispatch = ctypes.cast(handle.wp.pcap_dispatch, ctypes.c_void_p).value
        self.batcher = _livecap.Batcher(handle.address, dispatch, max_bytes, max_frames,
                                        self.room, handle.fd, linger_ms)

    def __len__(self):
        return len(self.batcher)

    def fill(self, limit: int):
        """As ``Pending.fill``."""
        status = self.batcher.fill(limit)
        if status == 1:
            return "empty"
        if status == 2:
            return "full"
        h = self.handle
        if status == -1:
            raise Ipv6flowError(f"{h.iface}: capture failed: {h.error()}")
        if status == -2:
            raise Ipv6flowError(f"{h.iface}: capture failed: libpcap handed over a frame of "
                                f"{self.batcher.oversize:,} bytes, more than the batch buffer "
                                "has room for")
        return None

    def take(self, linktype: int):
        """As ``Pending.take``."""
        data, meta = self.batcher.take()
        n = len(meta) // 32
        sec, usec, caplens, wirelens = np.frombuffer(meta, dtype=np.int64).reshape(4, n)
        offsets = np.zeros(n, dtype=np.int64)
        if n:
            np.cumsum(caplens[:-1], out=offsets[1:])
        ts = sec.astype(np.float64) + usec / 1_000_000
        batch = Batch(data, offsets, caplens, wirelens, ts, np.full(n, linktype, dtype=np.int32))
        return batch, sec, usec


def new_pending(handle: PcapHandle):
    """The compiled ``CompiledPending`` where the helper is built and
    declares libpcap's packet header as the binding does, else ``Pending``."""
    if _livecap is not None and _livecap.PKTHDR_SIZE == ctypes.sizeof(handle.wp.pcap_pkthdr):
        return CompiledPending(handle)
    return Pending(handle)


# Classic pcap, microsecond timestamps, little-endian (what tcpdump writes).
_RECORD = pcap.RECORD_DTYPE["<"]


def pcap_records(batch, sec, usec) -> bytes:
    """The classic pcap records (little-endian, microseconds) of a batch,
    assembled with numpy: a record header before each packet's bytes."""
    n = len(batch)
    rec = np.empty(n, dtype=_RECORD)
    rec["sec"], rec["frac"] = sec, usec
    rec["caplen"], rec["wirelen"] = batch.caplens, batch.wirelens
    data = np.frombuffer(batch.buffer, dtype=np.uint8)
    out = np.empty(len(data) + _RECORD.itemsize * n, dtype=np.uint8)
    starts = batch.offsets + _RECORD.itemsize * np.arange(n, dtype=np.int64)
    out[(starts[:, None] + np.arange(_RECORD.itemsize)).ravel()] = rec.view(np.uint8)
    keep = np.ones(len(out), dtype=bool)
    keep[(starts[:, None] + np.arange(_RECORD.itemsize)).ravel()] = False
    out[keep] = data
    return out.tobytes()


class PcapWriter:
    """A classic pcap file that is complete after every ``write``: the file
    header is written at once, then each batch as whole records in one
    unbuffered write (a crash can lose at most the batch being written)."""

    def __init__(self, path: str, linktype: int, snaplen: int):
        self.path = path
        try:
            self.fh = open(path, "wb", buffering=0)
        except OSError as e:
            raise Ipv6flowError(f"{path}: cannot write: {e.strerror or e}")
        self._write(pcap.file_header(linktype, snaplen))

    def _write(self, data):
        view = memoryview(data)
        try:
            while view:                  # a raw write may be short
                view = view[self.fh.write(view):]
        except OSError as e:
            raise Ipv6flowError(f"{self.path}: cannot write: {e.strerror or e}")

    def write(self, batch, sec, usec):
        if len(batch):
            self._write(pcap_records(batch, sec, usec))

    def close(self):
        if self.fh is not None:
            try:
                os.fsync(self.fh.fileno())
            except OSError:
                pass
            self.fh.close()
            self.fh = None


def _pct(part, whole):
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def status_line(iface, summary, frames, fps, bps, kernel) -> str:
    """``eth0: 1,234 frames, 410 frames/s, 3.2 Mbit/s; IPv6 41.0% of IP
    packets (carrier 35.2%), 38.9% of IP bytes; kernel drops 0``: totals so
    far, rates over the last period."""
    c = summary.counts()
    pay, car = c["payload"], c["carrier"]
    ip = pay["ipv4"]["packets"] + pay["ipv6"]["packets"]
    ipb = pay["ipv4"]["bytes"] + pay["ipv6"]["bytes"]
    cip = car["ipv4"]["packets"] + car["ipv6"]["packets"]
    drops = kernel.get("dropped")
    return (f"{iface}: {frames:,} frames, {fps:,.0f} frames/s, {bps / 1e6:,.1f} Mbit/s; "
            f"IPv6 {_pct(pay['ipv6']['packets'], ip)} of IP packets "
            f"(carrier {_pct(car['ipv6']['packets'], cip)}), "
            f"{_pct(pay['ipv6']['bytes'], ipb)} of IP bytes; "
            f"kernel drops {'?' if drops is None else f'{drops:,}'}")


def capture_live(iface: str, options: Options = Options(), on_status=None, on_report=None, *,
                 stop: threading.Event | None = None, handle_signals: bool = True) -> RunResult:
    """Capture on ``iface`` until a limit, a signal or ``stop``.

    CLI (``ipv6flow live``): ``-i/--interface IFACE`` -> ``iface``; every
    other option is a field of ``options``: ``bpf`` (pcap-filter syntax,
    applied in the kernel), ``duration``, ``count`` (exactly N frames, those
    that pass the filter), ``report_every`` with ``on_report(report)``
    receiving the report so far (a plain dict as ``Summary.to_report``, its
    ``inputs`` entry included), ``write`` (every captured frame, classic
    pcap, complete after SIGINT/SIGTERM), ``interval``, ``decode``,
    ``nat64_prefixes``, ``decoder``, ``status_every`` with
    ``on_status(line)`` receiving one line per period (also a first
    "listening on ..." line once the capture is active), ``snaplen``,
    ``promisc`` and ``buffer_bytes``. The loop is engine/running.py's.

    Returns a RunResult: ``summary`` has a single ``inputs`` entry with
    ``format: "live"``, ``path``: the interface, and a ``capture`` object
    (interface, filter, snaplen, start and end time, ``stopped_by``, and the
    ``kernel`` counters); a read error part-way (the interface went away)
    is recorded in the entry's ``errors``, everything read before it is
    kept. ``frames`` and ``fallback`` (frames the reference decoder
    handled), ``stopped_by`` ("count", "duration", "signal", "stop" or
    "error"; a signal is how a capture normally ends, so ``interrupted``
    stays False and the report is not partial) and ``capture``: ``bytes``,
    ``seconds``, ``linktype``, ``reader`` ("compiled" or "ctypes": which
    copied the frames out of libpcap) and the kernel counters from
    pcap_stats: ``received`` (frames that passed the filter, dropped or
    not), ``dropped`` (no room in the ring: the figures miss them) and
    ``interface_dropped`` (dropped by the interface or its driver).

    Raises Ipv6flowError before capturing: no libpcap, missing privileges
    (the message names CAP_NET_RAW), no such interface, a bad filter
    (UsageError), an unwritable ``write`` file.
    """
    summary = Summary(options.interval, options.nat64_prefixes, options.decode)
    handle = PcapHandle(iface, options.snaplen, options.promisc, options.buffer_bytes,
                        options.bpf)
    with ExitStack() as held:               # closed last to first
        held.callback(handle.close)
        writer = None
        if options.write:
            writer = PcapWriter(options.write, handle.linktype, handle.snaplen)
            held.callback(writer.close)
        signals = Signals(handle_signals)
        held.callback(signals.restore)
        source = LiveSource(handle, writer, summary, options)
        return running.run_to_end(
            source, options, signals, stop, on_status, on_report,
            f"listening on {iface}, link type {handle.linktype}, snapshot length "
            f"{handle.snaplen} bytes" + (f", filter {options.bpf!r}" if options.bpf else ""))


class LiveSource(running.Source):
    """A libpcap handle as engine/running.py's source: frames pulled into
    ``Pending`` (``Pending.fill``), folded a batch at a time."""

    drain_idle = DRAIN_IDLE_SECONDS
    drain_max = DRAIN_SECONDS
    flush_when_idle = True        # the ring is empty: fold what came

    def __init__(self, handle, writer, summary, options):
        super().__init__()
        self.handle, self.writer, self.summary, self.options = handle, writer, summary, options
        self.fd = handle.fd
        self.events = select.POLLIN | select.POLLPRI
        lt = self.linktype = handle.linktype
        entry = self.entry = new_input(handle.iface)
        entry["format"] = "live"
        entry["linktypes"] = [lt]
        if lt not in LINKTYPES:
            entry["warnings"].append(
                f"link type {lt} is not supported: its frames count as non_ip")
        self.info = {"interface": handle.iface, "filter": options.bpf,
                     "snaplen": handle.snaplen, "started": time.time(), "ended": None,
                     "stopped_by": None, "kernel": handle.stats()}
        entry["capture"] = self.info
        self.live = LivePrefixes(summary.nat64.static_prefixes())
        self.frames = self.bytes = self.fallback = 0
        self.shown_frames = self.shown_bytes = 0      # at the last status line
        self.buffers = new_pending(handle)

    @property
    def received(self):
        return self.frames + len(self.buffers)

    @property
    def pending(self):
        return len(self.buffers)

    def read(self, limit):
        return self.buffers.fill(limit)

    def fold(self):
        batch, sec, usec = self.buffers.take(self.linktype)
        if self.writer is not None and not self.failed:
            try:
                self.writer.write(batch, sec, usec)   # on disk before it is counted
            except Ipv6flowError as e:
                self.failed = True
                self.entry["errors"].append(f"{e}; capture stopped")
        summary, opts, lt = self.summary, self.options.decode, self.linktype
        if self.options.decoder == "fast":
            self.fallback += summarize_batch(summary, batch, opts, None, list(self.live.order))
        else:
            prefixes = list(self.live.order)
            for ts, _, wire, data in batch.records():
                f = decode_frame(lt, data, wire, opts)
                summary.add(f, ts, wire, lt, data)
                inspect_frame(summary.nat64, f, data, wire, prefixes, True)
            self.fallback += len(batch)
        self.frames += len(batch)
        self.bytes += int(batch.wirelens.sum())
        self.live.update(summary.nat64, 0, self.frames)
        summary.count_nat64(self.live.start)     # translation too, from here on

    def status(self, seconds):
        line = status_line(self.handle.iface, self.summary, self.frames,
                           (self.frames - self.shown_frames) / seconds,
                           (self.bytes - self.shown_bytes) * 8 / seconds, self.handle.stats())
        self.shown_frames, self.shown_bytes = self.frames, self.bytes
        return line

    def _entry(self, e, kernel, ended, reason):
        e["packets"], e["bytes"] = self.frames, self.bytes
        e["capture"] = dict(self.info, kernel=kernel, ended=ended, stopped_by=reason)
        drops = kernel.get("dropped")
        if drops:
            e["warnings"] = list(e["warnings"]) + [
                f"the kernel dropped {drops:,} frames (capture buffer full): "
                "the figures miss them"]
        return e

    def snapshot(self):
        snap = Summary(self.summary.interval).merge(self.summary)
        snap.add_input(self._entry(dict(self.entry, warnings=list(self.entry["warnings"])),
                                   self.handle.stats(), time.time(), None))
        return snap.to_report()

    def finish(self, reason, seconds) -> RunResult:
        kernel = self.handle.stats()
        self.summary.add_input(self._entry(self.entry, kernel, time.time(), reason))
        return RunResult(self.summary, interrupted=False, frames=self.frames,
                         fallback=self.fallback, stopped_by=reason,
                         capture={"bytes": self.bytes, "seconds": seconds,
                                  "linktype": self.linktype,
                                  "reader": self.buffers.reader, **kernel})
