"""The vectorized fast path (see kernel.py for the strategy).

``summarize_batch`` folds one capture Batch into a Summary: the numpy
kernel classifies the rows it can, the reference decoder the rest, and the
figures are identical to decoding every frame with the reference decoder.

NAT64 and DNS: the rows that matter are picked out with array operations
(innermost IPv6 address in a suspect prefix; UDP/TCP port 53 responses
with answers; ICMPv6 Router Advertisements) and only those few are
handled one by one in Python, by the same code as the reference path.
"""

import math
from functools import lru_cache

import numpy as np

from ..arrays import distinct_rows, unique_inverse
from ..analysis import nat64 as nat64_mod
from ..analysis import population
from ..analysis import rfc6052
from ..decode import decode_frame
from ..summary import frame_key
from .kernel import FAM_IPV4, FAM_IPV6, FAMILY_NAMES, _SHIFT, classify, unpack

_PAYLOAD_SHIFT, _PAYLOAD_MASK = _SHIFT["payload"]
_CARRIER_SHIFT, _CARRIER_MASK = _SHIFT["carrier"]
_unpack = lru_cache(maxsize=4096)(unpack)
_V4_INDEX = {length: np.array(pos, dtype=np.int64) for length, pos in rfc6052.POSITIONS.items()}


def frame_keys(batch, opts):
    """Per-row ``summary.frame_key`` tuples, and how many rows fell back
    (for differential tests; the analysis path never builds these)."""
    keys, fallback, _ = classify(batch, opts)
    out = [_unpack(k) for k in keys.tolist()]
    for i in fallback.tolist():
        rec = _record(batch, i)
        out[i] = frame_key(decode_frame(rec[1], rec[3], rec[2], opts))
    return out, len(fallback)


def population_columns(rows, batch, idx):
    """The ``analysis.population`` columns of IP rows ``idx``, read with
    array gathers (as ``population.frame_columns`` reads one frame)."""
    fam, proto = rows.payload[idx], rows.proto[idx]
    l4, l4end = rows.l4[idx], rows.l4end[idx]
    n = len(idx)
    sport = np.full(n, -1, dtype=np.int64)
    dport = np.full(n, -1, dtype=np.int64)
    icmp = np.full(n, -1, dtype=np.int64)
    has_l4 = l4 >= 0
    tcp_udp = (proto == 6) | (proto == 17)
    t = np.flatnonzero(has_l4 & tcp_udp & (l4 + 4 <= l4end))
    if len(t):
        ports = rows.u32(l4[t])
        sport[t], dport[t] = ports >> 16, ports & 0xFFFF
    ic = np.flatnonzero(has_l4 & ~tcp_udp & (proto == np.where(fam == FAM_IPV6, 58, 1))
                        & (l4 < l4end))
    icmp[ic] = rows.u8(l4[ic])
    v4 = rows.v4[idx]
    v4s = np.full(n, -1, dtype=np.int64)
    v4d = np.full(n, -1, dtype=np.int64)
    h4 = np.flatnonzero(v4 >= 0)
    if len(h4):
        a = rows.word(v4[h4] + 12, 8).astype(np.int64)     # source then destination
        v4s[h4], v4d[h4] = (a >> 32) & 0xFFFFFFFF, a & 0xFFFFFFFF
    has6 = rows.v6[idx] >= 0
    a6 = [rows.addr(k)[idx] for k in range(4)]
    mac_s = np.full(n, -1, dtype=np.int64)
    mac_d = np.full(n, -1, dtype=np.int64)
    eth = np.flatnonzero((batch.linktypes[idx] == 1) & (batch.caplens[idx] >= 12))
    if len(eth):
        at = batch.offsets[idx[eth]].astype(np.int64)
        w0 = rows.u64(at)                                  # bytes 0-7
        mac_d[eth] = (w0 >> np.uint64(16)).astype(np.int64)
        mac_s[eth] = ((w0 & np.uint64(0xFFFF)).astype(np.int64) << 32) | rows.u32(at + 8)
    flags = np.full(n, -1, dtype=np.int64)
    tf = np.flatnonzero(has_l4 & (proto == 6) & (l4 + 14 <= l4end))
    if len(tf):
        flags[tf] = rows.u8(l4[tf] + 13)
    return {"fam": fam, "tunnel": rows.tunnel[idx], "ts": batch.ts[idx].astype(np.float64),
            "proto": proto, "sport": sport, "dport": dport, "icmp": icmp, "v4s": v4s,
            "v4d": v4d, "has6": has6, "v6s_hi": a6[0], "v6s_lo": a6[1],
            "v6d_hi": a6[2], "v6d_lo": a6[3], "mac_s": mac_s, "mac_d": mac_d,
            "wire": batch.wirelens[idx].astype(np.int64),
            "carrier": np.where(rows.carrier[idx] == FAM_IPV6, FAM_IPV6, FAM_IPV4),
            "flags": flags, "ntun": rows.ntun[idx]}


def _candidate_columns(rows, idx):
    """The few columns ``TranslationState.candidates`` reads, for rows
    ``idx`` (without --no-clients the full columns are read anyway)."""
    fam = rows.payload[idx]
    v4 = rows.v4[idx]
    n = len(idx)
    v4s = np.full(n, -1, dtype=np.int64)
    v4d = np.full(n, -1, dtype=np.int64)
    h4 = np.flatnonzero(v4 >= 0)
    if len(h4):
        a = rows.word(v4[h4] + 12, 8).astype(np.int64)
        v4s[h4], v4d[h4] = (a >> 32) & 0xFFFFFFFF, a & 0xFFFFFFFF
    a6 = [rows.addr(k)[idx] for k in range(4)]
    return {"fam": fam, "tunnel": rows.tunnel[idx], "ntun": rows.ntun[idx],
            "has6": rows.v6[idx] >= 0,
            "v4s": v4s, "v4d": v4d, "v6s_hi": a6[0], "v6s_lo": a6[1], "v6d_hi": a6[2],
            "v6d_lo": a6[3]}


def _observe_columns(summary, rows, batch, fast, extra):
    """Clients, flows, the scorecard and translation of a batch: the
    kernel's IP rows and the fallback rows' columns (``extra``: (row,
    columns) pairs), in frame order."""
    idx = np.flatnonzero(fast & (rows.payload != 0))
    if not summary.wants_all_columns:
        # only translation wants columns: read them for its candidates alone
        idx = idx[summary.translation.candidates(_candidate_columns(rows, idx))]
    cols = population_columns(rows, batch, idx)
    if extra:
        more = population.columns_of([c for _, c in extra])
        order = np.argsort(np.concatenate((idx, np.array([i for i, _ in extra]))),
                           kind="stable")
        cols = {k: np.concatenate((cols[k], more[k]))[order] for k in cols}
    summary.observe_columns(cols)


def frame_columns(batch, opts):
    """Per-row ``population.frame_columns`` tuples (None for non-IP rows),
    for differential tests as ``frame_keys``."""
    _, fallback, rows = classify(batch, opts)
    n = len(batch)
    fast = np.ones(n, dtype=bool)
    fast[fallback] = False
    idx = np.flatnonzero(fast & (rows.payload != 0))
    cols = population_columns(rows, batch, idx)
    out = [None] * n
    for i, row in zip(idx.tolist(), zip(*(cols[c].tolist() for c in population.COLUMNS))):
        out[i] = row
    for i in fallback.tolist():
        ts_i, lt, wire, data = _record(batch, i)
        out[i] = population.frame_columns(decode_frame(lt, data, wire, opts), lt, data, ts_i,
                                          wire)
    return out


def _record(batch, i):
    off, cap = int(batch.offsets[i]), int(batch.caplens[i])
    return (float(batch.ts[i]), int(batch.linktypes[i]), int(batch.wirelens[i]),
            batch.buffer[off:off + cap])


def _add_figures(summary, keys, fast, batch):
    k, w, ts = keys[fast], batch.wirelens[fast], batch.ts[fast]
    if not len(k):
        return
    uniq, inv = unique_inverse(k)
    packets = np.bincount(inv, minlength=len(uniq))
    nbytes = np.bincount(inv, weights=w, minlength=len(uniq))
    if summary.sampling is None:
        for key, p, b in zip(uniq.tolist(), packets.tolist(), nbytes.tolist()):
            summary.add_key(_unpack(key), p, int(b))
    else:
        # sampled input: the interval sums need each key's sum of squared
        # lengths, exact (int64: lengths are capped at 2**18, decode/sflow.py)
        w64 = w.astype(np.int64)
        squares = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(squares, inv, w64 * w64)
        for key, p, b, sq in zip(uniq.tolist(), packets.tolist(), nbytes.tolist(),
                                 squares.tolist()):
            summary.add_key(_unpack(key), p, int(b), sq)
    summary.add_span(float(ts.min()), float(ts.max()))
    fam = (k >> _PAYLOAD_SHIFT) & _PAYLOAD_MASK
    ip = fam != 0
    if ip.any():
        carrier = (k[ip] >> _CARRIER_SHIFT) & _CARRIER_MASK
        fb = np.floor(ts[ip] / summary.interval)
        odd = ~(np.abs(fb) < 2.0 ** 58)          # past int64 once scaled (or NaN)
        if odd.any():
            # a clock far from now: Python integers, as the reference does
            for t, f, c, wb in zip(ts[ip][odd].tolist(), fam[ip][odd].tolist(),
                                   carrier[odd].tolist(), w[ip][odd].tolist()):
                summary.add_bin(math.floor(t / summary.interval), FAMILY_NAMES[f],
                                FAMILY_NAMES[c], 1, int(wb))
            keep = ~odd
            fb, carrier = fb[keep], carrier[keep]
            fam_ip, w_ip = fam[ip][keep], w[ip][keep]
        else:
            fam_ip, w_ip = fam[ip], w[ip]
        bins = fb.astype(np.int64)
        combo = bins * 16 + fam_ip * 4 + carrier
        uc, inv = unique_inverse(combo)
        packets = np.bincount(inv, minlength=len(uc))
        nbytes = np.bincount(inv, weights=w_ip, minlength=len(uc))
        for c, p, b in zip(uc.tolist(), packets.tolist(), nbytes.tolist()):
            summary.add_bin(c >> 4, FAMILY_NAMES[(c >> 2) & 3], FAMILY_NAMES[c & 3], p, int(b))


def _nat64_traffic(state, rows, sel, wirelens, prefixes):
    """Count rows ``sel`` (IPv6 payload) whose innermost source or
    destination lies in one of ``prefixes`` (as Nat64State.add_frame)."""
    at = rows.v6[sel]
    src32 = (rows.addr(0)[sel] >> np.uint64(32)).astype(np.int64)
    dst32 = (rows.addr(2)[sel] >> np.uint64(32)).astype(np.int64)
    for value, length in prefixes:
        top = value >> 96
        cand = np.flatnonzero((src32 == top) | (dst32 == top))     # every prefix is >= /32
        if not len(cand):
            continue
        a = at[cand]
        src, dst = rows.block(a + 8, 16), rows.block(a + 24, 16)
        s_in = _in_prefix(src, value, length)
        d_in = _in_prefix(dst, value, length)
        hit = s_in | d_in
        if not hit.any():
            continue
        s_in, d_in, src, dst = s_in[hit], d_in[hit], src[hit], dst[hit]
        t = state.traffic.get((value, length))
        if t is None:
            t = state.traffic[(value, length)] = nat64_mod.Traffic()
        t.packets += int(hit.sum()) * state.weight
        t.bytes += int(wirelens[sel[cand[hit]]].sum()) * state.weight
        one = s_in != d_in
        clients = np.where(s_in[one, None], dst[one], src[one])
        t.clients.update(_row_bytes(clients))
        pos = _V4_INDEX[length]
        inside = np.concatenate((src[s_in][:, pos], dst[d_in][:, pos]))
        t.v4.update(_row_bytes(inside))


def _row_bytes(rows):
    """The rows of an (n, k) uint8 array as n bytes objects (sliced from
    one ``tobytes``: a set dedups them faster than a sort would first)."""
    raw, k = rows.tobytes(), rows.shape[1]
    return [raw[i:i + k] for i in range(0, len(raw), k)]


def _in_prefix(addrs, value, length):
    """Rows of an (n, 16) uint8 array whose first ``length`` bits equal
    those of ``value``."""
    pfx = np.frombuffer(value.to_bytes(16, "big"), dtype=np.uint8)
    full, rest = divmod(length, 8)
    ok = (addrs[:, :full] == pfx[:full]).all(axis=1)
    if rest:
        mask = (0xFF << (8 - rest)) & 0xFF
        ok &= (addrs[:, full] & mask) == (pfx[full] & mask)
    return ok


def _observe(state, rows, idx, batch):
    """DNS messages and Router Advertisements among rows ``idx``: where each
    payload lies is worked out with arrays (as nat64.dns_payload does one
    frame at a time); Python only slices and counts them."""
    buf = batch.buffer
    fam, proto, l4, l4end = rows.payload[idx], rows.proto[idx], rows.l4[idx], rows.l4end[idx]
    tp = (l4 >= 0) & ((proto == 17) | (proto == 6)) & (l4 + 8 <= l4end)
    cand = idx[tp]
    if len(cand):
        at = rows.l4[cand]
        port53 = (rows.u16(at) == nat64_mod.DNS_PORT) | (rows.u16(at + 2) == nat64_mod.DNS_PORT)
        cand, at = cand[port53], at[port53]
        end = rows.l4end[cand]
        tcp = rows.proto[cand] == 6
        ulen = rows.u16(at + 4)
        doff = (rows.u8(at + 12) >> 4) * 4
        start = np.where(tcp, at + doff, at + 8)
        stop = np.where(tcp, end, at + ulen)
        ok = np.where(tcp, (at + 20 <= end) & (doff >= 20) & (at + doff <= end),
                      (ulen >= 8) & (at + ulen <= end))
        cand, start, stop, tcp = cand[ok], start[ok], stop[ok], tcp[ok]
        if not state.want_queries:
            # Without the service report only responses with answers carry
            # evidence (and answerless ones for the scorecard's "no answer"):
            # the QR bit and the answer count pick them out.
            # (TCP segments may hold several messages: they are all kept and
            # filtered message by message in observe_dns.)
            resp = tcp | ((start + 12 <= stop) & ((rows.u8(start + 2) & 0x80) != 0)
                          & ((rows.u16(start + 6) > 0) | state.want_answerless))
            cand, start, stop, tcp = cand[resp], start[resp], stop[resp], tcp[resp]
        ip = rows.ip[cand]
        v6 = rows.payload[cand] == FAM_IPV6
        rs = np.where(v6, ip + 8, ip + 12)
        re = np.where(v6, ip + 24, ip + 16)
        view = memoryview(buf)
        state.observe_dns_many((view[a:b], view[c:d], t) for a, b, c, d, t in zip(
            start.tolist(), stop.tolist(), rs.tolist(), re.tolist(), tcp.tolist()))
    ra = (fam == FAM_IPV6) & (proto == 58) & (l4 >= 0) & (l4 < l4end)
    cand = idx[ra]
    if len(cand):
        for i in cand[rows.u8(rows.l4[cand]) == nat64_mod.ICMPV6_RA].tolist():
            state.observe_ra(bytes(buf[int(rows.l4[i]):int(rows.l4end[i])]))


def summarize_batch(summary, batch, opts, on_frame=None, prefixes=(), observe=True,
                    base=0, limits=None):
    """Add a batch to ``summary``; returns the number of fallback rows.

    ``prefixes``: NAT64 prefixes whose traffic to count. With ``observe``
    False only that traffic is counted (the engine's second pass), and
    ``limits`` may cap a prefix to the frames before a given index of the
    file (``base`` is the index of the batch's first frame).
    ``on_frame(frame, linktype)`` is called for each fallback frame (the
    engine uses it to warn about unsupported link types).
    """
    n = len(batch)
    if n == 0:
        return 0
    keys, fallback, rows = classify(batch, opts)
    fast = np.ones(n, dtype=bool)
    fast[fallback] = False
    if observe:
        _add_figures(summary, keys, fast, batch)
    state = summary.nat64
    if prefixes:
        sel = np.flatnonzero(fast & (rows.payload == FAM_IPV6) & (rows.v6 >= 0))
        if len(sel):
            if not limits:
                _nat64_traffic(state, rows, sel, batch.wirelens, prefixes)
            else:
                for p in prefixes:
                    lim = limits.get(p)
                    part = sel if lim is None else sel[sel + base < lim]
                    if len(part):
                        _nat64_traffic(state, rows, part, batch.wirelens, [p])
    if observe:
        _observe(state, rows, np.flatnonzero(fast & (rows.payload != 0)), batch)
    extra = []
    want_clients = observe and summary.wants_columns
    for i in fallback.tolist():
        ts_i, lt, wire, data = _record(batch, i)
        f = decode_frame(lt, data, wire, opts)
        if observe:
            if on_frame is not None:
                on_frame(f, lt)
            summary.add(f, ts_i, wire)
            row = population.frame_columns(f, lt, data, ts_i, wire) if want_clients else None
            if row is not None:
                extra.append((i, row))
        nat64_mod.inspect_frame(state, f, data, wire,
                                nat64_mod.prefixes_at(prefixes, limits, base + i), observe)
    if want_clients:
        _observe_columns(summary, rows, batch, fast, extra)
    return len(fallback)


def services_batch(index, batch, opts):
    """Count the traffic of a batch to the addresses of ``index`` (a
    ServiceIndex): vectorized pre-selection, then one Python call per
    distinct address pair."""
    n = len(batch)
    if n == 0:
        return
    _, fallback, rows = classify(batch, opts)
    fast = np.ones(n, dtype=bool)
    fast[fallback] = False
    w = batch.wirelens
    for fam, table, at_field, width, first in ((FAM_IPV4, index.v4, rows.ip, 4, 12),
                                               (FAM_IPV6, index.v6, rows.v6, 16, 8)):
        if not table:
            continue
        sel = np.flatnonzero(fast & (rows.payload == fam) & (at_field >= 0))
        if not len(sel):
            continue
        at = at_field[sel]
        src = rows.block(at + first, width)
        dst = rows.block(at + first + width, width)
        # Pre-select on the first 4 address bytes, then check whole pairs.
        heads = np.array(sorted({int.from_bytes(k[:4], "big") for k in table}), dtype=np.int64)
        sh = src[:, :4].copy().view(">u4")[:, 0].astype(np.int64)
        dh = dst[:, :4].copy().view(">u4")[:, 0].astype(np.int64)
        hit = np.isin(sh, heads) | np.isin(dh, heads)
        if not hit.any():
            continue
        pairs = np.concatenate((src[hit], dst[hit]), axis=1)
        uniq, inv = distinct_rows(pairs, return_inverse=True)
        packets = np.bincount(inv, minlength=len(uniq))
        nbytes = np.bincount(inv, weights=w[sel[hit]], minlength=len(uniq))
        for row, p, b in zip(uniq, packets.tolist(), nbytes.tolist()):
            raw = row.tobytes()
            index.add(table, raw[:width], raw[width:], p, int(b))
    for i in fallback.tolist():
        _, lt, wire, data = _record(batch, i)
        index.add_frame(decode_frame(lt, data, wire, opts), wire)
