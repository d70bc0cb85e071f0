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
when one is given. Memory: at most ``MAX_PENDING`` samples and
``MAX_PENDING_BYTES`` of headers held in the open groups together, the
sequence tables capped by entries.

Two walks give the same frames, groups and bookkeeping. The Python one
(``from_records``: ``udp_payload`` and ``parse_datagram`` per frame, then
``add``) is the definition. With the compiled helper built, a capture is
read in batches (``from_batches``): ``_speedups.walk_sflow`` takes the
clean datagrams of plain carriers whole, their bookkeeping and grouping is
done with numpy per run of them, and every frame it is not sure of goes
through the Python walk in its place (docs/DECISIONS.md, "The compiled
walk"; tests/test_sflow_walk.py holds one to the other).
"""
from __future__ import annotations

import ipaddress
import os
import struct
from typing import Iterator, NamedTuple

import numpy as np

from ..decode import DecodeOptions, decode_frame
from ..decode.registry import UDP_TUNNELS
from ..decode.sflow import HEADER_LINKTYPES, SKIP_NAMES, _address, parse_datagram
from .base import Record
from .batch import Batch

try:                                   # optional compiled walk of the datagrams (setup.py)
    if os.environ.get("IPV6FLOW_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    from .._speedups import gather as _gather
    from .._speedups import walk_sflow as _walk_sflow
except ImportError:
    _gather = _walk_sflow = None

GROUP_ROWS = 32768           # samples per batch handed out
# samples held in all groups: past it every group is handed out. Equal to
# GROUP_ROWS, so a group fills only when it holds every pending sample
# (SflowFrames._group relies on it).
MAX_PENDING = GROUP_ROWS
# header bytes held in all groups: past it every group is handed out too
# (32,768 samples of 128 bytes are 4 MiB; of 64 KiB, 2 GiB without it)
MAX_PENDING_BYTES = 16 << 20
MAX_SEQUENCES = 65536        # (agent, source) sequence numbers followed
SEQUENCE_JUMP = 1 << 20      # a forward jump larger than this is a restart, not a loss
_CARRIER_OPTS = DecodeOptions()

# What the compiled walk needs of the registry: the UDP ports whose
# tunnels the decoder follows (a frame to or from one is left to
# udp_payload), and the link type of each raw-header protocol (-1: none).
_TUNNEL_PORTS = np.zeros(65536, dtype=np.uint8)      # built without a 65,536-step loop
_TUNNEL_PORTS[sorted(UDP_TUNNELS)] = 1                # (it ran at every start-up)
_TUNNEL_PORTS = _TUNNEL_PORTS.tobytes()
_HEADER_LTS = np.full(32, -1, dtype=np.int64)
_HEADER_LTS[list(HEADER_LINKTYPES)] = list(HEADER_LINKTYPES.values())
_HEADER_LTS = _HEADER_LTS.tobytes()
# The columns of the walk's rows (_speedups.c, walk_sflow).
_D_FRAME, _D_KIND, _D_SUB, _D_SEQ, _D_SAMPLES, _D_SKIPS = 0, 1, 2, 3, 4, 5
_DGRAM_COLS = _D_SKIPS + len(SKIP_NAMES)
(_S_DGRAM, _S_TYPE, _S_INDEX, _S_SEQ, _S_RATE, _S_LT, _S_WIRE, _S_CAP,
 _S_OFF) = range(9)
_SAMPLE_COLS = 9
_OTHER, _CLEAN, _UNSURE, _PYTHON_WALK = 0, 1, 2, 3     # walk statuses


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
    """The samples of one (rate, cut) not yet handed out: single samples
    (the Python walk) and whole runs of them (the compiled walk's), in
    order."""

    __slots__ = ("parts", "caplens", "wirelens", "stamps", "linktypes", "pieces", "rows",
                 "nbytes")

    def __init__(self):
        self.parts, self.caplens, self.wirelens, self.stamps, self.linktypes = [], [], [], [], []
        self.pieces = []         # (headers, caplens, wirelens, stamps, linktypes) of runs
        self.rows = 0
        self.nbytes = 0          # of headers

    def append(self, head, caplen: int, wirelen: int, ts: float, linktype: int) -> None:
        self.parts.append(head)
        self.caplens.append(caplen)
        self.wirelens.append(wirelen)
        self.stamps.append(ts)
        self.linktypes.append(linktype)
        self.rows += 1
        self.nbytes += caplen

    def add_piece(self, heads, caplens, wirelens, stamps, linktypes) -> None:
        self._seal()
        self.pieces.append((heads, caplens, wirelens, stamps, linktypes))
        self.rows += len(caplens)
        self.nbytes += len(heads)

    def _seal(self) -> None:
        if self.caplens:
            self.pieces.append((b"".join(self.parts), np.array(self.caplens, dtype=np.int64),
                                np.array(self.wirelens, dtype=np.int64),
                                np.array(self.stamps, dtype=np.float64),
                                np.array(self.linktypes, dtype=np.int32)))
            self.parts, self.caplens, self.wirelens, self.stamps, self.linktypes = \
                [], [], [], [], []

    def batch(self) -> Batch:
        self._seal()
        pieces = self.pieces
        if len(pieces) == 1:
            heads, lens, wirelens, stamps, linktypes = pieces[0]
            heads = bytes(heads)
        else:
            heads = b"".join(p[0] for p in pieces)
            lens, wirelens, stamps, linktypes = (np.concatenate([p[i] for p in pieces])
                                                 for i in range(1, 5))
        offsets = np.zeros(len(lens), dtype=np.int64)
        np.cumsum(lens[:-1], out=offsets[1:])
        self.__init__()
        return Batch(heads, offsets, lens, wirelens, stamps, linktypes)


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
        if _walk_sflow is not None:
            yield from frames.from_batches(self._cap.iter_batches(reuse=True))
        else:
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
        self._pending = 0            # samples in the groups
        self._pending_bytes = 0      # and their header bytes

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
        seqs = self._seqs
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
            # self._groups, not a copy of it from before the loop: a flush()
            # below starts a new one, which the next samples must go to
            g = self._groups.get((rate, cut))
            if g is None:
                g = self._groups[(rate, cut)] = _Group()
            g.append(data[hstart:hstop], caplen, wire, ts, lt)
            self._pending += 1
            self._pending_bytes += caplen
            if g.rows >= GROUP_ROWS:
                self._pending -= g.rows
                self._pending_bytes -= g.nbytes
                yield g.batch(), rate, cut
            elif self._pending >= MAX_PENDING or self._pending_bytes >= MAX_PENDING_BYTES:
                # many rates at once (or an attacker's 2**32 of them): the
                # groups together stay bounded
                yield from self.flush()

    def flush(self) -> Iterator[tuple]:
        """Every group not yet handed out, in the order they were opened."""
        groups, self._groups, self._pending, self._pending_bytes = self._groups, {}, 0, 0
        for (rate, cut), g in groups.items():
            if g.rows:
                yield g.batch(), rate, cut

    # -- the compiled walk: a batch of captured frames at a time ---------------
    def from_batch(self, batch: Batch) -> Iterator[tuple]:
        """One batch of captured frames: by the compiled walk when it is
        built, else record by record (engine/collect.py)."""
        if _walk_sflow is not None:
            return self.add_batch(batch)
        return self.from_records(batch.records())

    def from_batches(self, batches) -> Iterator[tuple]:
        """As ``from_records``, over the batches of a capture, with the
        compiled walk (``_walk_sflow`` must be built)."""
        for batch in batches:
            yield from self.add_batch(batch)

    def add_batch(self, batch: Batch) -> Iterator[tuple]:
        """The datagrams in a batch of captured frames, exactly as
        ``from_records`` would add them one by one: the compiled walk takes
        the clean ones, whose bookkeeping and grouping is done per run of
        them with numpy; every other frame goes through ``udp_payload`` and
        ``add``, in its place in the order."""
        buf = batch.buffer
        status, bounds, drows, agents, srows = _walk_sflow(
            buf, np.ascontiguousarray(batch.offsets, np.int64),
            np.ascontiguousarray(batch.caplens, np.int64),
            np.ascontiguousarray(batch.linktypes, np.int32),
            self.port, _TUNNEL_PORTS, _HEADER_LTS)
        status = np.frombuffer(status, dtype=np.uint8)
        drows = np.frombuffer(drows, dtype=np.int64).reshape(-1, _DGRAM_COLS)
        srows = np.frombuffer(srows, dtype=np.int64).reshape(-1, _SAMPLE_COLS)
        self.other_frames += int(np.count_nonzero(status == _OTHER))
        # the first sample row of each datagram row, and of the end
        firsts = np.zeros(len(drows) + 1, dtype=np.int64)
        np.cumsum(drows[:, _D_SAMPLES], out=firsts[1:])
        run = _Run(batch, drows, agents, srows, firsts)
        d_at = 0
        for j in np.flatnonzero(status >= _UNSURE).tolist():
            d_to = int(np.searchsorted(drows[:, _D_FRAME], j))
            yield from self._clean(run, d_at, d_to)
            d_at = d_to
            yield from self._odd_frame(batch, j, int(status[j]), bounds)
        yield from self._clean(run, d_at, len(drows))

    def _odd_frame(self, batch: Batch, j: int, status: int, bounds: bytes) -> Iterator[tuple]:
        """Frame ``j`` of a batch, which the compiled walk left to Python."""
        off, cap = int(batch.offsets[j]), int(batch.caplens[j])
        data = bytes(batch.buffer[off:off + cap])
        wirelen = int(batch.wirelens[j])
        if status == _UNSURE:
            where = udp_payload(int(batch.linktypes[j]), data, wirelen, self.port)
            if where is None:
                self.other_frames += 1
                return
        else:
            where = np.frombuffer(bounds, dtype=np.int64, count=2, offset=16 * j).tolist()
        cut = where[1] == len(data) < wirelen
        yield from self.add(float(batch.ts[j]), data, where[0], where[1], cut)

    def _clean(self, run: "_Run", d0: int, d1: int) -> Iterator[tuple]:
        """Datagram rows ``d0:d1`` of a walk (clean ones of consecutive
        frames): their bookkeeping, then their samples into the groups."""
        if d1 <= d0:
            return
        s0, s1 = int(run.firsts[d0]), int(run.firsts[d1])
        dg, samples = run.drows[d0:d1], run.srows[s0:s1]
        where = samples[:, _S_DGRAM] - d0            # each sample's row in dg
        if self.sampling is not None and not self._book(dg, run.agents[16 * d0:16 * d1],
                                                         samples, where):
            # near the cap of the sequence table: one datagram at a time, as
            # from_records would (exact whatever the cap keeps)
            for frame in dg[:, _D_FRAME].tolist():
                yield from self._odd_frame(run.batch, frame, _UNSURE, b"")
            return
        if s1 > s0:
            stamps = run.batch.ts[dg[where, _D_FRAME]]
            yield from self._group(samples, run.batch.buffer, stamps)

    def _book(self, dg, agent_bytes: bytes, samples, where) -> bool:
        """The sampling state's bookkeeping of a run of clean datagrams
        ``dg`` and their ``samples`` (``where``: each sample's datagram
        row), as ``add`` does it one at a time: agents, sources and rates
        are met in the order they first appear, so the caps keep the same
        ones, and sequence gaps per agent and per source come from numpy
        differences. False (nothing done) when the sequence table could
        fill up within the run: the caller then adds one by one."""
        state, seqs = self.sampling, self._seqs
        address = np.frombuffer(agent_bytes, dtype=np.uint64).reshape(-1, 2)
        agent_of, agent_rows = _rows_seen([dg[:, _D_KIND], dg[:, _D_SUB], address[:, 0],
                                           address[:, 1]])
        source_of, source_rows = _rows_seen([agent_of[where], samples[:, _S_TYPE],
                                             samples[:, _S_INDEX]])
        if len(seqs) + len(agent_rows) + len(source_rows) > MAX_SEQUENCES:
            return False
        keys, entries = [], []
        skipped = dg[:, _D_SKIPS:]
        for k, (row, mine) in enumerate(zip(agent_rows.tolist(),
                                            _split(agent_of, len(agent_rows)))):
            kind, sub = int(dg[row, _D_KIND]), int(dg[row, _D_SUB])
            agent = _address(kind, agent_bytes, 16 * row, 16 * row + 16)[0]
            key = (agent, sub)
            seq = dg[mine, _D_SEQ]
            lost, resets = _gaps(seqs, key, seq)
            entry = state.agent(agent, sub)
            state.add_datagrams(entry, len(seq), lost, resets,
                                zip(SKIP_NAMES, skipped[mine].sum(axis=0).tolist()))
            keys.append(key)
            entries.append(entry)
        if not len(samples):
            return True
        sources = []
        for row, mine in zip(source_rows.tolist(), _split(source_of, len(source_rows))):
            k = int(agent_of[where[row]])
            st, si = int(samples[row, _S_TYPE]), int(samples[row, _S_INDEX])
            seq = samples[mine, _S_SEQ]
            lost, _ = _gaps(seqs, (keys[k], (st, si)), seq)
            s = state.source(entries[k], (st, si))
            state.add_samples(s, len(seq), lost)
            sources.append(s)
        rates = samples[:, _S_RATE]
        pair_of, pair_rows = _rows_seen([source_of, rates])
        counts = np.bincount(pair_of, minlength=len(pair_rows)).tolist()
        for row, n in zip(pair_rows.tolist(), counts):
            state.add_rate(sources[int(source_of[row])], int(rates[row]), n)
        cut = samples[:, _S_CAP] < samples[:, _S_WIRE]
        if cut.any():
            state.add_cut(int(np.count_nonzero(cut)), int(rates[cut].sum()))
        return True

    def _group(self, samples, buffer, stamps) -> Iterator[tuple]:
        """The samples of a run into the (rate, cut) groups, handing out
        what fills, exactly as ``add`` does one sample at a time: the run
        is cut where the pending samples reach ``MAX_PENDING`` or their
        bytes ``MAX_PENDING_BYTES``; there the group of the last sample is
        handed out alone if it holds ``GROUP_ROWS``, else every group is
        (``flush``). Each group's part of a stretch is one piece, its
        headers copied out of the carrier ``buffer``."""
        rates = samples[:, _S_RATE]
        caplens = np.ascontiguousarray(samples[:, _S_CAP])
        wirelens = np.ascontiguousarray(samples[:, _S_WIRE])
        offsets = np.ascontiguousarray(samples[:, _S_OFF])
        linktypes = samples[:, _S_LT].astype(np.int32)
        cut = caplens < wirelens
        which, firsts = _first_seen(rates * 2 + cut)        # group of each sample
        kinds = [(int(rates[f]), bool(cut[f])) for f in firsts.tolist()]
        ends = np.cumsum(caplens)                           # header bytes to each sample
        n, pos = len(which), 0
        while pos < n:
            stop = min(n, pos + MAX_PENDING - self._pending)
            base = int(ends[pos - 1]) if pos else 0
            full = int(np.searchsorted(ends, base + MAX_PENDING_BYTES - self._pending_bytes))
            stop = min(stop, full + 1)
            if len(kinds) == 1:
                parts = [(0, slice(pos, stop))]
            else:
                parts = _stretch(which[pos:stop], pos, len(kinds))
            groups = self._groups              # flush() starts a new one
            for kind, sel in parts:
                g = groups.get(kinds[kind])
                if g is None:
                    g = groups[kinds[kind]] = _Group()
                g.add_piece(_gather(buffer, offsets[sel], caplens[sel]), caplens[sel],
                            wirelens[sel], stamps[sel], linktypes[sel])
            self._pending += stop - pos
            self._pending_bytes += int(ends[stop - 1]) - base
            pos = stop
            if self._pending >= MAX_PENDING or self._pending_bytes >= MAX_PENDING_BYTES:
                rc = kinds[int(which[stop - 1])]
                g = groups[rc]
                if g.rows >= GROUP_ROWS:
                    self._pending -= g.rows
                    self._pending_bytes -= g.nbytes
                    yield g.batch(), rc[0], rc[1]
                else:
                    yield from self.flush()


def _stretch(which, pos: int, kinds: int) -> list:
    """[(group, sample indices)] of a stretch of samples (``which``: the
    group of each, ``pos``: index of the first), the groups in the order
    they first appear in the stretch."""
    if kinds <= 4:
        parts = [(k, np.flatnonzero(which == k)) for k in range(kinds)]
        parts = [(k, idx) for k, idx in parts if len(idx)]
    else:
        order = np.argsort(which, kind="stable")
        ordered = which[order]
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        parts = [(int(ordered[a]), order[a:b]) for a, b in
                 zip([0, *cuts.tolist()], [*cuts.tolist(), len(order)])]
    parts.sort(key=lambda p: p[1][0])
    return [(k, idx + pos) for k, idx in parts]


class _Run(NamedTuple):
    """What one compiled walk of a batch gave (SflowFrames.add_batch)."""

    batch: Batch
    drows: np.ndarray         # datagram rows
    agents: bytes             # 16 bytes of agent address per datagram row
    srows: np.ndarray         # sample rows
    firsts: np.ndarray        # first sample row of each datagram row, and the end


FEW = 8           # values told apart by comparisons, more by sorting (_first_seen)


def _first_seen(values):
    """(number of each value, index of its first appearance) for a 1-D
    array, the values numbered in the order they first appear."""
    n = len(values)
    lo, hi = (values.min(), values.max()) if n else (0, 0)
    if lo == hi:
        return np.zeros(n, dtype=np.int64), np.zeros(min(n, 1), dtype=np.int64)
    high = values == hi
    highs = int(np.count_nonzero(high))
    if highs + int(np.count_nonzero(values == lo)) == n:
        # two values (one rate, headers cut or not): the first is 0
        if values[0] == hi:
            high = ~high
        return high.view(np.int8), np.array([0, int(np.argmax(high))], dtype=np.int64)
    # a few values: one comparison each
    which = np.zeros(n, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    firsts, at = [], 0
    while len(firsts) < FEW:
        mine = values == values[at]
        which[mine] = len(firsts)
        firsts.append(at)
        seen |= mine
        at = int(np.argmin(seen))
        if seen[at]:
            return which, np.array(firsts, dtype=np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return _numbered(first, inverse)


def _numbered(first, inverse):
    """np.unique's (first index, inverse) renumbered in the order the
    values first appear (``_first_seen``)."""
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def _split(of, count: int) -> list:
    """The indices of each of ``count`` values in ``of`` (ascending), in
    the order of the values; all of them (a slice) when there is one."""
    if count == 1:
        return [slice(None)]
    order = np.argsort(of, kind="stable")
    bounds = np.searchsorted(of[order], np.arange(count + 1)).tolist()
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _combined(columns, widths):
    """One int64 per row of ``columns`` (non-negative ints, each below
    2**width), equal where the rows are equal; None when they do not fit."""
    if sum(widths) > 63:
        return None
    out = np.zeros(len(columns[0]), dtype=np.int64)
    for col, width in zip(columns, widths):
        if len(col) and (col.min() < 0 or col.max() >= 1 << width):
            return None
        out <<= width
        out |= col.astype(np.int64)
    return out


def _rows_seen(columns):
    """``_first_seen`` of rows made of ``columns`` compared whole."""
    if all(not len(c) or c.min() == c.max() for c in columns):
        n = len(columns[0])
        return np.zeros(n, dtype=np.int64), np.zeros(min(n, 1), dtype=np.int64)
    widths = [max(1, int(c.max()).bit_length()) if len(c) else 1 for c in columns]
    key = _combined(columns, widths)
    if key is not None:
        return _first_seen(key)
    rows = np.column_stack([c.view(np.int64) if c.dtype == np.uint64 else c.astype(np.int64)
                            for c in columns])
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return _numbered(first, inverse)


def _gaps(seqs: dict, key, sequence) -> tuple[int, int]:
    """(lost, restarts) of the sequence numbers ``sequence`` (in order) of
    ``key``, as ``_gap`` one at a time would sum them; the last is kept
    (the caller made sure the table has room)."""
    sequence = sequence.astype(np.int64)
    last = seqs.get(key)
    seqs[key] = int(sequence[-1])
    if last is None:
        prev, cur = sequence[:-1], sequence[1:]
    else:
        prev, cur = np.concatenate(([last], sequence[:-1])), sequence
    step = (cur - prev) & 0xFFFFFFFF
    gap = (step > 1) & (step <= SEQUENCE_JUMP)
    lost = int((step[gap] - 1).sum())
    restarts = int(np.count_nonzero((step == 0) | (step > SEQUENCE_JUMP)))
    return lost, restarts


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
