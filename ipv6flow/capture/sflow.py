"""Captures of sFlow datagrams read as the traffic they sample.

Strategy: ``SampledCapture`` wraps an open capture of sFlow export
datagrams (any link type, IPv4 or IPv6, UDP to the sFlow port) and hands
out, instead of the datagrams, the packet headers they sample: each
sampled header is a frame whose captured bytes are the header and whose
wire length is the sample's ``frame_length`` less ``stripped`` (the FCS
and any tags the exporter removed: what a capture of that frame would
say), with the link type of its header protocol (decode/sflow.py). So the
same decoders, fast and reference, count them.

Frames are grouped into batches of one sampling rate and one cut state
(header shorter than the frame or not) so that, before each batch, the
consumer's weight can be set (``set_weight(rate, cut)``: Summary.set_weight)
and every count is scaled as it is made. The grouping depends only on the
input, so a second pass (NAT64 catch-up) sees the same frames in the same
order. Within a group frames keep their order; groups are handed out when
full and at the end, in the order they were opened.

The datagrams' bookkeeping (agents, sequence gaps, bad datagrams, skipped
samples and records) goes to a ``SamplingState`` (analysis/sampling.py),
when one is given. Memory: at most ``MAX_PENDING`` samples held
in the open groups together, the sequence tables capped by entries.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Iterator

import numpy as np

from ..decode import DecodeOptions, decode_frame
from ..decode.sflow import parse_datagram
from .base import Record
from .batch import Batch

GROUP_ROWS = 8192            # samples per batch handed out
MAX_PENDING = GROUP_ROWS     # samples held in all groups: past it every group is handed out
MAX_SEQUENCES = 65536        # (agent, source) sequence numbers followed
SEQUENCE_JUMP = 1 << 20      # a forward jump larger than this is a restart, not a loss
_CARRIER_OPTS = DecodeOptions()


def udp_payload(linktype: int, data: bytes, wirelen: int, port: int):
    """(start, stop) of the payload of a UDP datagram to ``port`` in a
    captured frame, or None. ``stop`` is where the datagram ends by its
    UDP length, or where the capture does if that is sooner."""
    f = decode_frame(linktype, data, wirelen, _CARRIER_OPTS)
    at = f.l4_off
    if f.proto != 17 or at is None or at + 8 > len(data):
        return None
    if ((data[at + 2] << 8) | data[at + 3]) != port:
        return None
    ulen = (data[at + 4] << 8) | data[at + 5]
    stop = min(at + max(ulen, 8), f.l4_end or len(data), len(data))
    return at + 8, stop


class _Group:
    __slots__ = ("parts", "caplens", "wirelens", "stamps", "linktypes")

    def __init__(self):
        self.parts, self.caplens, self.wirelens, self.stamps, self.linktypes = [], [], [], [], []

    def batch(self) -> Batch:
        lens = np.array(self.caplens, dtype=np.int64)
        offsets = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=offsets[1:])
        out = Batch(b"".join(self.parts), offsets, lens,
                    np.array(self.wirelens, dtype=np.int64),
                    np.array(self.stamps, dtype=np.float64),
                    np.array(self.linktypes, dtype=np.int32))
        self.__init__()
        return out


class SampledCapture:
    """An open capture of sFlow datagrams, read as the sampled frames (see
    the module docstring). Looks like ``capture.Capture`` to the engines."""

    def __init__(self, cap, port: int, sampling, set_weight):
        self._cap = cap
        self._port = port
        self._sampling = sampling
        self._set_weight = set_weight
        self._mode = ""
        self.packets = 0             # samples handed out
        self.other_frames = 0        # frames that were not sFlow to the port
        self.format = cap.format
        self.compression = cap.compression

    # -- what the carrier reader reports -----------------------------------
    @property
    def linktypes(self):
        return self._cap.linktypes

    @property
    def truncated(self):
        return self._cap.truncated

    @property
    def warnings(self):
        extra = []
        if self.other_frames:
            extra.append(f"{self.other_frames} frames were not sFlow datagrams to UDP port "
                         f"{self._port}: skipped")
        return list(self._cap.warnings) + extra

    @property
    def bytes_read(self):
        return self._cap.bytes_read

    landed = None

    # -- the sampled frames ------------------------------------------------------
    def _batches(self) -> Iterator[tuple]:
        """(batch, rate, cut) in the order described in the module."""
        frames = SflowFrames(self._port, self._sampling)
        yield from frames.from_records(self._cap)
        self.other_frames = frames.other_frames
        yield from frames.flush()

    def iter_batches(self, reuse: bool = False) -> Iterator[Batch]:
        if self._mode:
            raise RuntimeError("this capture is already being read")
        self._mode = "batches"
        for batch, rate, cut in self._batches():
            self._set_weight(rate, cut)
            self.packets += len(batch)
            yield batch

    def __iter__(self) -> Iterator[Record]:
        if self._mode:
            raise RuntimeError("this capture is already being read")
        self._mode = "records"
        for batch, rate, cut in self._batches():
            self._set_weight(rate, cut)
            for rec in batch.records():
                self.packets += 1
                yield rec

    def close(self) -> None:
        self._cap.close()

    def __enter__(self) -> "SampledCapture":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class SflowFrames:
    """The sampled frames of a stream of sFlow datagrams, grouped by
    (rate, cut): ``add`` one datagram at a time (or ``from_records`` for
    captured frames), take full groups as they fill, ``flush`` the rest.
    Sequence numbers are followed across calls (capture/sflow.py's module
    docstring; engine/collect.py feeds it from a socket)."""

    def __init__(self, port: int, sampling=None):
        self.port = port
        self.sampling = sampling
        self.other_frames = 0
        self._groups: dict = {}
        self._seqs: dict = {}
        self._pending = 0

    def from_records(self, records) -> Iterator[tuple]:
        port = self.port
        for ts, linktype, wirelen, data in records:
            where = udp_payload(linktype, data, wirelen, port)
            if where is None:
                self.other_frames += 1
                continue
            # a datagram that the capture's snap length cut short
            cut = where[1] == len(data) < wirelen
            yield from self.add(ts, data, where[0], where[1], cut)

    def add(self, ts: float, data, start: int, stop: int, cut: bool = False) -> Iterator[tuple]:
        """The datagram in ``data[start:stop]``, received at ``ts``
        (``cut``: the capture kept only that much of it); yields the
        groups it fills."""
        state = self.sampling
        d = parse_datagram(data, start, stop)
        if cut and d.problem is not None:
            d.problem = "cut_by_capture"
        if d.agent is None:
            if state is not None:
                state.add_bad(d.problem)
            return
        agent_key = (d.agent, d.sub_agent)
        seqs, groups = self._seqs, self._groups
        lost, reset = _gap(seqs, agent_key, d.sequence)
        entry = None
        if state is not None:
            entry = state.agent(d.agent, d.sub_agent)
            state.add_datagram(entry, d, lost, reset)
        for src, seq, rate, _pool, _drops, lt, wire, hstart, hstop in d.samples:
            caplen = hstop - hstart
            cut = caplen < wire
            if state is not None:
                lost_samples, _ = _gap(seqs, (agent_key, src), seq)
                state.add_sample(entry, src, rate, lost_samples, cut, wire)
            g = groups.get((rate, cut))
            if g is None:
                g = groups[(rate, cut)] = _Group()
            g.parts.append(data[hstart:hstop])
            g.caplens.append(caplen)
            g.wirelens.append(wire)
            g.stamps.append(ts)
            g.linktypes.append(lt)
            self._pending += 1
            if len(g.caplens) >= GROUP_ROWS:
                self._pending -= len(g.caplens)
                yield g.batch(), rate, cut
            elif self._pending >= MAX_PENDING:
                # many rates at once (or an attacker's 2**32 of them): the
                # groups together stay bounded
                yield from self.flush()

    def flush(self) -> Iterator[tuple]:
        """Every group not yet handed out, in the order they were opened."""
        groups, self._groups, self._pending = self._groups, {}, 0
        for (rate, cut), g in groups.items():
            if g.caplens:
                yield g.batch(), rate, cut


def _gap(seqs: dict, key, seq: int) -> tuple[int, bool]:
    """(lost, restarted) for sequence number ``seq`` of ``key``."""
    last = seqs.get(key)
    if last is None:
        if len(seqs) < MAX_SEQUENCES:
            seqs[key] = seq
        return 0, False
    seqs[key] = seq
    step = (seq - last) & 0xFFFFFFFF           # sequence numbers wrap at 2**32
    if step == 1:
        return 0, False
    if 1 < step <= SEQUENCE_JUMP:
        return step - 1, False
    return 0, True                              # repeated, backwards or far ahead


# -- received datagrams as captured frames (collect --write, tests) --------------

LINKTYPE_RAW = 101               # raw IP: the version nibble says which
_IP4 = struct.Struct(">BBHHHBBH4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
_UDP = struct.Struct(">HHHH")


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    """A raw IPv4 or IPv6 packet (by the addresses) holding one UDP
    datagram: how a received sFlow datagram is kept in a pcap. The UDP
    checksum is left 0 (none, for IPv4; a reader of the IPv6 frames must
    not check it)."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        a = a.ipv4_mapped or a if a.version == 6 else ipaddress.IPv6Address(f"::ffff:{a}")
        b = b.ipv4_mapped or b if b.version == 6 else ipaddress.IPv6Address(f"::ffff:{b}")
    udp = _UDP.pack(sport, dport, 8 + len(payload), 0)
    if a.version == 4:
        head = _IP4.pack(0x45, 0, 20 + len(udp) + len(payload), 0, 0x4000, 64, 17, 0,
                         a.packed, b.packed)
        head = head[:10] + _checksum(head).to_bytes(2, "big") + head[12:]
        return head + udp + payload
    return _IP6.pack(6 << 28, len(udp) + len(payload), 17, 64, a.packed, b.packed) + udp + payload


def frames_batch(frames) -> tuple:
    """``(batch, sec, usec)`` of ``frames`` [(sec, usec, frame bytes)], raw
    IP link type, for ``engine.live.PcapWriter``; each frame's time is
    ``sec + usec / 1e6`` as a pcap reader computes it."""
    lens = np.array([len(f) for _, _, f in frames], dtype=np.int64)
    offsets = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=offsets[1:])
    sec = np.array([s for s, _, _ in frames], dtype=np.int64)
    usec = np.array([u for _, u, _ in frames], dtype=np.int64)
    ts = np.array([s + u / 1_000_000 for s, u, _ in frames], dtype=np.float64)
    batch = Batch(b"".join(f for _, _, f in frames), offsets, lens, lens.copy(), ts,
                  np.full(len(lens), LINKTYPE_RAW, dtype=np.int32))
    return batch, sec, usec
