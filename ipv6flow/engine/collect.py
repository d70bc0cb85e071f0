"""``ipv6flow collect --sflow``: sFlow datagrams from a UDP socket, folded
into the same Summary as ``analyze --sflow`` folds them from a file.

Strategy: one non-blocking UDP socket read by engine/running.py's loop
(the one ``live`` uses: polls of at most ``TIMEOUT_MS``, so that
``--duration``, a signal or ``stop`` end it on an idle socket). Every
received datagram becomes a raw IP frame (its sender as source, the
socket's address as destination: ``capture.sflow.udp_frame``) stamped to
the microsecond; every ``FLUSH_SECONDS`` (or ``BATCH_DATAGRAMS``) the
frames become one Batch that is written to the ``--write`` pcap first
(``live.PcapWriter``: complete after every write) and then handed to
``capture.sflow.SflowFrames`` exactly as ``analyze --sflow`` hands it the
records of that file, so the report of a run equals the report of its
``--write`` file (tests/test_collect.py).

The socket's receive buffer is asked for ``options.buffer_bytes`` (32 MiB: a burst
of a few thousand datagrams; SO_RCVBUFFORCE when privileged, past
net.core.rmem_max), and the kernel's count of datagrams dropped because it
was full comes with each datagram (SO_RXQ_OVFL); the report has both.

Ending is as ``live``: ``--count`` (datagrams), ``--duration``, SIGINT or
SIGTERM; what the socket holds at a stop is read first (up to
``DRAIN_SECONDS``), and the final RunResult is returned in every case.
NAT64 prefixes discovered by evidence count from the batch after their
discovery, as in ``live`` (a socket cannot be read twice).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import struct
import threading
import time
from contextlib import ExitStack

from ..capture.batch import Replay
from ..capture.sflow import SflowFrames, frames_batch, udp_frame
from ..errors import Ipv6flowError, UsageError
from ..options import BUFFER_BYTES, Options, RunResult
from ..summary import Summary
from . import running
from .live import PcapWriter
from .local import LivePrefixes, first_pass, new_input
from .signals import Signals

BATCH_DATAGRAMS = 4096        # datagrams read at once, and a batch once they are this many
DRAIN_SECONDS = 0.5           # after a stop: what the socket holds, read for at most this
MAX_DATAGRAM = 65535
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)          # Linux socket(7)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_U32 = struct.Struct("=I")
_CMSG_SPACE = socket.CMSG_SPACE(4)


def parse_listen(text: str) -> tuple[str, int]:
    """``[ADDR]:PORT``, ``ADDR:PORT``, ``:PORT`` or ``PORT`` -> (address,
    port); no address: every address, IPv4 and IPv6."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
        if not 0 <= number < 65536:           # 0: a free port, said on stderr
            raise ValueError
        if host:
            ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"{text!r} is not [ADDRESS]:PORT (e.g. :6343, 127.0.0.1:6343, "
                         "[::1]:6343)") from None
    return host, number


class UdpListener:
    """A bound, non-blocking UDP socket that reports kernel drops."""

    def __init__(self, host: str, port: int, buffer_bytes: int = BUFFER_BYTES):
        v6 = not host or ":" in host
        try:
            self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                                      socket.SOCK_DGRAM)
        except OSError as e:
            raise Ipv6flowError(f"cannot open a UDP socket: {e.strerror or e}") from None
        try:
            if v6 and not host:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, opt, buffer_bytes)
                    break
                except OSError:
                    continue                 # not privileged: rmem_max bounds it
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self.counts_drops = True
            except OSError:
                self.counts_drops = False
            self.sock.bind((host or "::", port) if v6 else (host, port))
        except OSError as e:
            self.sock.close()
            shown = f"[{host}]" if ":" in host else host
            raise Ipv6flowError(f"{shown}:{port}: cannot listen ({e.strerror or e})") from None
        self.sock.setblocking(False)
        self.buffer = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.address, self.port = self.sock.getsockname()[:2]
        self.dropped = 0

    def receive(self, limit: int) -> list:
        """Up to ``limit`` datagrams waiting now: [(data, sender, port)]."""
        out = []
        recvmsg = self.sock.recvmsg
        for _ in range(limit):
            try:
                data, ancdata, _, sender = recvmsg(MAX_DATAGRAM, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                raise Ipv6flowError(f"receive error: {e.strerror or e}") from None
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                    self.dropped = _U32.unpack_from(value)[0]
            host = sender[0]
            if host.startswith("::ffff:") and "." in host:
                host = host[7:]                       # an IPv4 sender on a dual-stack socket
            out.append((data, host, sender[1]))
        return out

    def drops(self) -> int:
        """Datagrams dropped so far: the SO_RXQ_OVFL count that came with
        the last datagram, or the socket's line of /proc/net/udp (which
        also knows drops after the last datagram read), the larger."""
        return max(self.dropped, _proc_drops(self.sock))

    def close(self):
        self.sock.close()


def _proc_drops(sock) -> int:
    """The ``drops`` column of this socket in /proc/net/udp or udp6 (0 when
    that cannot be read: not Linux, or no /proc)."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        for name in ("/proc/net/udp", "/proc/net/udp6"):
            with open(name, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == inode:
                        return int(cols[12])
    except (OSError, ValueError):
        pass
    return 0


def status_line(where, summary, datagrams, rate, dropped) -> str:
    c = summary.counts()
    pay = c["payload"]
    ip = pay["ipv4"]["packets"] + pay["ipv6"]["packets"]
    share = f"{100.0 * pay['ipv6']['packets'] / ip:.1f}%" if ip else "-"
    samples = summary.sampling.samples
    return (f"{where}: {datagrams:,} datagrams, {samples:,} samples, {rate:,.0f} datagrams/s; "
            f"IPv6 {share} of IP packets (estimated); kernel drops {dropped:,}")


def collect_sflow(listen: str, options: Options = Options(), on_status=None, on_report=None, *,
                  stop: threading.Event | None = None, handle_signals: bool = True,
                  on_ready=None) -> RunResult:
    """Collect sFlow on ``listen`` ([ADDR]:PORT) until a limit, a signal or
    ``stop``, as ``live.capture_live`` captures (the same loop,
    engine/running.py).

    ``options.count``: datagrams; ``options.write``: every datagram kept as
    a pcap of raw IP frames (``analyze --sflow-port PORT`` reads it back to
    the same report); ``options.buffer_bytes``: the socket's receive buffer
    asked for; ``on_ready(port)`` is called once the socket is bound (the
    port actually bound, for port 0). The RunResult's ``capture``:
    ``datagrams``, ``samples``, ``seconds``, ``buffer`` (the socket's
    receive buffer in bytes) and ``dropped`` (datagrams the kernel dropped
    with the buffer full).
    """
    host, port = parse_listen(listen)
    listener = UdpListener(host, port, options.buffer_bytes)
    with ExitStack() as held:               # closed last to first
        held.callback(listener.close)
        writer = None
        if options.write:
            writer = PcapWriter(options.write, 101, MAX_DATAGRAM + 48)
            held.callback(writer.close)
        signals = Signals(handle_signals)
        held.callback(signals.restore)
        options = dataclasses.replace(
            options, decode=dataclasses.replace(options.decode, sflow_port=listener.port))
        summary = Summary(options.interval, options.nat64_prefixes, options.decode)
        if on_ready is not None:
            on_ready(listener.port)
        source = SflowSource(listener, writer, summary, options)
        return running.run_to_end(source, options, signals, stop, on_status, on_report,
                                  f"listening for sFlow on udp {source.shown}, receive "
                                  f"buffer {listener.buffer:,} bytes")


class SflowSource(running.Source):
    """A UDP socket of sFlow datagrams as engine/running.py's source: each
    datagram kept as a raw IP frame, a batch of them handed to
    ``capture.sflow.SflowFrames`` as ``analyze --sflow`` hands it a file's."""

    read_at_once = BATCH_DATAGRAMS
    drain_max = DRAIN_SECONDS

    def __init__(self, listener, writer, summary, options):
        super().__init__()
        self.listener, self.writer, self.summary, self.options = (listener, writer, summary,
                                                                  options)
        self.fd = listener.sock.fileno()
        addr = listener.address
        self.shown = (f"[{addr}]" if ":" in addr else addr) + f":{listener.port}"
        self.dst = addr if addr not in ("::", "") else "::"
        entry = self.entry = new_input(f"udp:{self.shown}")
        entry["format"] = "sflow"
        entry["linktypes"] = [101]
        self.info = {"listen": self.shown, "started": time.time(), "ended": None,
                     "stopped_by": None,
                     "socket": {"receive_buffer": listener.buffer, "dropped": 0,
                                "drops_counted": listener.counts_drops}}
        entry["capture"] = self.info
        self.live = LivePrefixes(summary.nat64.static_prefixes())
        self.frames = SflowFrames(listener.port, summary.sampling)
        self.waiting = []             # (sec, usec, frame) not folded yet
        self.received = self.shown_count = self.fallback = 0

    @property
    def pending(self):
        return len(self.waiting)

    def read(self, limit):
        got = self.listener.receive(limit)
        port, dst = self.listener.port, self.dst
        for data, sender, sport in got:
            t = time.time()
            sec = int(t)
            usec = min(int((t - sec) * 1e6), 999_999)
            self.waiting.append((sec, usec, udp_frame(sender, sport, _same_family(dst, sender),
                                                      port, data)))
        self.received += len(got)
        if not got:
            return "empty"
        return "full" if len(self.waiting) >= BATCH_DATAGRAMS else None

    def fold(self):
        batch, sec, usec = frames_batch(self.waiting)
        self.waiting = []
        if self.writer is not None and not self.failed:
            try:
                self.writer.write(batch, sec, usec)       # on disk before it is counted
            except Ipv6flowError as e:
                self.failed = True
                self.entry["errors"].append(f"{e}; collection stopped")
        summary = self.summary
        for part, rate, cut in (list(self.frames.from_batch(batch))
                                + list(self.frames.flush())):
            summary.set_weight(rate, cut)
            read = first_pass(Replay([part]), self.options, summary, self.live, 0,
                              lambda f, lt: None)
            self.fallback += read.fallback

    def status(self, seconds):
        line = status_line(self.shown, self.summary, self.received,
                           (self.received - self.shown_count) / seconds, self.listener.drops())
        self.shown_count = self.received
        return line

    def _entry(self, e, ended, reason):
        dropped = self.listener.drops()
        e["capture"] = dict(self.info, ended=ended, stopped_by=reason,
                            socket=dict(self.info["socket"], dropped=dropped))
        if dropped:
            e["warnings"] = list(e["warnings"]) + [
                f"the kernel dropped {dropped:,} datagrams (socket buffer full): "
                "the figures miss them"]
        return e

    def snapshot(self):
        snap = Summary(self.summary.interval).merge(self.summary)
        snap.add_input(self._entry(dict(self.entry, warnings=list(self.entry["warnings"])),
                                   time.time(), None))
        return snap.to_report()

    def finish(self, reason, seconds) -> RunResult:
        entry = self._entry(self.entry, time.time(), reason)
        totals = self.summary.counts()["totals"]
        entry["packets"], entry["bytes"] = totals["packets"], totals["bytes"]
        self.summary.add_input(entry)
        return RunResult(self.summary, frames=totals["packets"], fallback=self.fallback,
                         stopped_by=reason,
                         capture={"datagrams": self.received,
                                  "samples": self.summary.sampling.samples, "seconds": seconds,
                                  "buffer": self.listener.buffer,
                                  "dropped": entry["capture"]["socket"]["dropped"]})


def _same_family(dst: str, sender: str) -> str:
    """The destination written into a kept frame, of the sender's family."""
    if (":" in dst) == (":" in sender):
        return dst
    return "0.0.0.0" if ":" in dst else "::"
