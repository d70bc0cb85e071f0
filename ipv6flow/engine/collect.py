"""``ipv6flow collect --sflow``: sFlow datagrams from a UDP socket, folded
into the same Summary as ``analyze --sflow`` folds them from a file.

Strategy: one non-blocking UDP socket, polled with a timeout of at most
``TIMEOUT_MS`` so that ``--duration``, a signal or ``stop`` end it on an idle
socket. Every received datagram becomes a raw IP frame (its sender as
source, the socket's address as destination: ``capture.sflow.udp_frame``)
stamped to the microsecond; every ``FLUSH_SECONDS`` (or ``BATCH_DATAGRAMS``)
the frames become one Batch that is written to the ``--write`` pcap first
(``live.PcapWriter``: complete after every write) and then handed to
``capture.sflow.SflowFrames`` exactly as ``analyze --sflow`` hands it the
records of that file, so the report of a run equals the report of its
``--write`` file (tests/test_collect.py).

The socket's receive buffer is asked for ``buffer_bytes`` (32 MiB: a burst
of a few thousand datagrams; SO_RCVBUFFORCE when privileged, past
net.core.rmem_max), and the kernel's count of datagrams dropped because it
was full comes with each datagram (SO_RXQ_OVFL); the report has both.

Ending is as ``live``: ``--count`` (datagrams), ``--duration``, SIGINT or
SIGTERM; what the socket holds at a stop is read first (up to
``DRAIN_SECONDS``), and the final Summary is returned in every case.
NAT64 prefixes discovered by evidence count from the batch after their
discovery, as in ``live`` (a socket cannot be read twice).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import select
import socket
import struct
import threading
import time

from ..capture.batch import Replay
from ..capture.sflow import SflowFrames, frames_batch, udp_frame
from ..decode import DecodeOptions
from ..errors import Ipv6flowError, UsageError
from ..summary import DEFAULT_INTERVAL, Summary
from .live import FLUSH_SECONDS, STATUS_EVERY, PcapWriter
from .local import LivePrefixes, _frames, new_input
from .signals import Signals

BUFFER_BYTES = 32 << 20
TIMEOUT_MS = 100
BATCH_DATAGRAMS = 4096
DRAIN_SECONDS = 0.5
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


def collect_sflow(listen: str, duration: float | None = None, count: int | None = None,
                  report_every: float | None = None, write: str | None = None,
                  interval: float = DEFAULT_INTERVAL, opts: DecodeOptions = DecodeOptions(),
                  on_status=None, on_report=None, *, status_every: float = STATUS_EVERY,
                  nat64_prefixes=(), decoder: str = "fast",
                  buffer_bytes: int = BUFFER_BYTES, stop: threading.Event | None = None,
                  handle_signals: bool = True, on_ready=None):
    """Collect sFlow on ``listen`` ([ADDR]:PORT) until a limit, a signal or
    ``stop``; returns ``(summary, stats)`` as ``live.capture_live`` does.

    ``count``: datagrams; ``write``: every datagram kept as a pcap of raw
    IP frames (``analyze --sflow-port PORT`` reads it back to the same
    report); ``on_ready(port)`` is called once the socket is bound (the
    port actually bound, for port 0). ``stats``: ``datagrams``,
    ``samples``, ``seconds``, ``stopped_by``, ``buffer`` (the socket's
    receive buffer in bytes) and ``dropped`` (datagrams the kernel dropped
    with the buffer full).
    """
    if count is not None and count < 1:
        raise UsageError("count must be at least 1")
    if decoder not in ("fast", "reference"):
        raise UsageError(f"unknown decoder {decoder!r}")
    host, port = parse_listen(listen)
    listener = UdpListener(host, port, buffer_bytes)
    writer = signals = None
    try:
        if write:
            writer = PcapWriter(write, 101, MAX_DATAGRAM + 48)
        signals = Signals(handle_signals)
        opts = dataclasses.replace(opts, sflow_port=listener.port)
        summary = Summary(interval, nat64_prefixes, opts)
        if on_ready is not None:
            on_ready(listener.port)
        return _run(listener, writer, summary, signals, opts, duration, count, report_every,
                    on_status or (lambda line: None), on_report, status_every, decoder, stop)
    finally:
        if signals is not None:
            signals.restore()
        if writer is not None:
            writer.close()
        listener.close()


def _run(listener, writer, summary, signals, opts, duration, count, report_every, say,
         on_report, status_every, decoder, stop):
    shown = (f"[{listener.address}]" if ":" in listener.address else listener.address) \
        + f":{listener.port}"
    entry = new_input(f"udp:{shown}")
    entry["format"] = "sflow"
    entry["linktypes"] = [101]
    live = LivePrefixes(summary.nat64.static_prefixes())
    frames = SflowFrames(listener.port, summary.sampling)
    info = {"listen": shown, "started": time.time(), "ended": None, "stopped_by": None,
            "socket": {"receive_buffer": listener.buffer, "dropped": 0,
                       "drops_counted": listener.counts_drops}}
    entry["capture"] = info
    totals = {"datagrams": 0, "fallback": 0}
    pending = []
    failed = []
    fallback = [0]

    def fold():
        batch, sec, usec = frames_batch(pending)
        pending.clear()
        if writer is not None and not failed:
            try:
                writer.write(batch, sec, usec)       # on disk before it is counted
            except Ipv6flowError as e:
                failed.append(f"{e}; collection stopped")
                entry["errors"].append(failed[-1])
        groups = list(frames.from_records(batch.records())) + list(frames.flush())
        for part, rate, cut in groups:
            summary.set_weight(rate, cut)
            _frames(Replay([part]), opts, decoder, summary, live, 0, lambda f, lt: None,
                    fallback)

    def finish(e, ended, reason):
        dropped = listener.drops()
        info_now = dict(info, ended=ended, stopped_by=reason,
                        socket=dict(info["socket"], dropped=dropped))
        e["capture"] = info_now
        if dropped:
            e["warnings"] = list(e["warnings"]) + [
                f"the kernel dropped {dropped:,} datagrams (socket buffer full): "
                "the figures miss them"]
        return e

    def snapshot():
        snap = Summary(summary.interval).merge(summary)
        snap.add_input(finish(dict(entry, warnings=list(entry["warnings"])), time.time(), None))
        return snap.to_report()

    say(f"listening for sFlow on udp {shown}, receive buffer {listener.buffer:,} bytes")
    poller = select.poll()
    poller.register(listener.sock.fileno(), select.POLLIN)
    t0 = time.monotonic()
    last_flush = t0
    next_status = t0 + status_every if status_every else math.inf
    next_report = t0 + report_every if report_every else math.inf
    status_count, status_t = 0, t0
    reason = None
    drain_until = math.inf
    dst = listener.address if listener.address not in ("::", "") else "::"
    while True:
        now = time.monotonic()
        if reason is None:
            if signals.count:
                reason = "signal"
            elif stop is not None and stop.is_set():
                reason = "stop"
            elif duration is not None and now - t0 >= duration:
                reason = "duration"
            if reason is not None:
                drain_until = now + DRAIN_SECONDS
        if failed:
            reason = "error"
            break
        if reason is not None and (now >= drain_until or signals.count > 1):
            break
        want = BATCH_DATAGRAMS
        if count is not None:
            want = min(want, count - totals["datagrams"])
        try:
            got = listener.receive(want)
        except Ipv6flowError as e:
            entry["errors"].append(str(e))
            reason = "error"
            break
        for data, sender, sport in got:
            t = time.time()
            sec = int(t)
            usec = min(int((t - sec) * 1e6), 999_999)
            pending.append((sec, usec, udp_frame(sender, sport, _same_family(dst, sender),
                                                 listener.port, data)))
        totals["datagrams"] += len(got)
        if count is not None and totals["datagrams"] >= count:
            reason = "count"
            break
        if pending and (len(pending) >= BATCH_DATAGRAMS or now - last_flush >= FLUSH_SECONDS):
            fold()
            last_flush = now
        if now >= next_status:
            secs = max(now - status_t, 1e-9)
            say(status_line(shown, summary, totals["datagrams"],
                            (totals["datagrams"] - status_count) / secs, listener.drops()))
            status_count, status_t = totals["datagrams"], now
            next_status = now + status_every
        if now >= next_report and on_report is not None:
            if pending:
                fold()
                last_flush = now
            on_report(snapshot())
            next_report = now + report_every
        if not got:
            if reason is not None:
                break                                # drained
            wait = min(TIMEOUT_MS / 1000, next_status - now, next_report - now)
            if duration is not None:
                wait = min(wait, t0 + duration - now)
            poller.poll(max(0, int(wait * 1000)) + 1)
    if pending:
        fold()
    finish(entry, time.time(), reason)
    entry["packets"], entry["bytes"] = (summary.counts()["totals"]["packets"],
                                        summary.counts()["totals"]["bytes"])
    summary.add_input(entry)
    stats = {"datagrams": totals["datagrams"], "samples": summary.sampling.samples,
             "seconds": time.monotonic() - t0, "stopped_by": reason,
             "buffer": listener.buffer, "dropped": entry["capture"]["socket"]["dropped"]}
    return summary, stats


def _same_family(dst: str, sender: str) -> str:
    """The destination written into a kept frame, of the sender's family."""
    if (":" in dst) == (":" in sender):
        return dst
    return "0.0.0.0" if ":" in dst else "::"
