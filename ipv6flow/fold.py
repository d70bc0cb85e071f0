"""Folding a capture Batch into a Summary: the batch path of every engine.

The numpy kernel (``fast.decode_batch``) decodes the rows it can, the
reference decoder the rest, and the figures are identical to decoding every
frame with the reference decoder. This module only wires the decoded
arrays to their owners: the frame keys and time bins to the Summary, the
decoded columns to the analyses (NAT64 traffic, DNS and Router
Advertisements, clients and flows, the scorecard, translation, service
traffic), each of which takes the columns of a batch whichever decoder
made them. The fallback rows take the per-frame path (``Summary.add``,
``nat64.inspect_frame``).
"""

import math

import numpy as np

from .analysis import nat64 as nat64_mod
from .analysis.population import ODD_BIN, one_bin
from .arrays import group_sums, unique_inverse
from .decode import decode_frame
from .decode.columns import columns_of, frame_columns
from .decode.addresses import MAX_PREFIX_BITS, prefix_rows
from .compiled import core_function
from .decode.registry import FAM_IPV4, FAM_NON_IP, FAMILY_NAMES
from .fast import (KEY_FIELDS, address_columns, batch_columns, decode_batch, message_spans,
                   record, unpack_key)

_PAYLOAD_SHIFT, _PAYLOAD_MASK = KEY_FIELDS["payload"]
_CARRIER_SHIFT, _CARRIER_MASK = KEY_FIELDS["carrier"]
# _core.c's sums by time bin for a batch over many bins, or None (tests set
# None: the numpy form in _add_figures, its specification)
BUILT_BIN_SUMS = core_function("bin_sums")
bin_sums = BUILT_BIN_SUMS
_BIN_FIELDS = (_PAYLOAD_SHIFT, _PAYLOAD_MASK, _CARRIER_SHIFT, _CARRIER_MASK, FAM_NON_IP, FAM_IPV4)


def _add_figures(summary, d):
    """The kernel's rows into the Summary's key table and time bins."""
    fast, batch = d.fast, d.batch
    if len(d.fallback):
        k, w, ts = d.keys[fast], batch.wirelens[fast], batch.ts[fast]
    else:
        k, w, ts = d.keys, batch.wirelens, batch.ts
    if not len(k):
        return
    by_family = None            # payload * 4 + carrier -> [packets, bytes] of IP frames
    if summary.sampling is None:
        uniq, packets, nbytes = group_sums(k, w)
        by_family = {}
        for key, p, b in zip(uniq.tolist(), packets.tolist(), nbytes.tolist()):
            summary.add_key(unpack_key(key), p, b)
            fam = (key >> _PAYLOAD_SHIFT) & _PAYLOAD_MASK
            if fam != FAM_NON_IP:
                e = by_family.setdefault(fam * 4 + ((key >> _CARRIER_SHIFT) & _CARRIER_MASK),
                                         [0, 0])
                e[0] += p
                e[1] += b
    else:
        uniq, inv = unique_inverse(k)
        packets = np.bincount(inv, minlength=len(uniq))
        nbytes = np.bincount(inv, weights=w, minlength=len(uniq))
        # sampled input: the interval sums need each key's sum of squared
        # lengths, exact (int64: lengths are capped at 2**18, decode/sflow.py)
        w64 = w.astype(np.int64)
        squares = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(squares, inv, w64 * w64)
        for key, p, b, sq in zip(uniq.tolist(), packets.tolist(), nbytes.tolist(),
                                 squares.tolist()):
            summary.add_key(unpack_key(key), p, int(b), sq)
    lo, hi = float(ts.min()), float(ts.max())
    summary.add_span(lo, hi)
    first = one_bin(lo, hi, summary.interval) if by_family is not None else None
    if first is not None:
        # The usual batch: every frame in one time bin, so its sums by
        # family are the keys' sums, added in the order of the per-row path
        # below.
        for c in sorted(by_family):
            p, b = by_family[c]
            summary.add_bin(first, FAMILY_NAMES[c >> 2], FAMILY_NAMES[c & 3], p, b)
        return
    if bin_sums is not None and _bins_compiled(summary, k, ts, w):
        return
    fam = (k >> _PAYLOAD_SHIFT) & _PAYLOAD_MASK
    ip = fam != FAM_NON_IP
    if ip.any():
        carrier = (k[ip] >> _CARRIER_SHIFT) & _CARRIER_MASK
        fb = np.floor(ts[ip] / summary.interval)
        odd = ~(np.abs(fb) < ODD_BIN)            # past int64 once scaled (or NaN)
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
        uc, packets, nbytes = group_sums(combo, w_ip)
        for c, p, b in zip(uc.tolist(), packets.tolist(), nbytes.tolist()):
            summary.add_bin(c >> 4, FAMILY_NAMES[(c >> 2) & 3], FAMILY_NAMES[c & 3], p, b)


def _bins_compiled(summary, k, ts, w) -> bool:
    """A batch over many time bins: its IP frames' sums per bin by one
    compiled pass, added bin by bin in ascending order (the order the numpy
    form below adds them in: its (bin, family, carrier) groups sorted), or
    False, nothing added, when a bin is odd (the numpy form takes those)."""
    n = len(k)
    bins = np.empty(n, dtype=np.int64)
    sums = np.empty(8 * n, dtype=np.int64)
    nb = bin_sums(np.ascontiguousarray(k, dtype=np.int64),
                  np.ascontiguousarray(ts, dtype=np.float64).view(np.int64),
                  np.ascontiguousarray(w, dtype=np.int64), float(summary.interval), ODD_BIN,
                  _BIN_FIELDS, bins, sums)
    if nb < 0:
        return False
    order = np.argsort(bins[:nb])
    add = summary.add_bin_sums
    for idx, row in zip(bins[:nb][order].tolist(), sums[:8 * nb].reshape(nb, 8)[order].tolist()):
        add(idx, row)
    return True


def _observe_columns(summary, d, extra):
    """Clients, flows, the scorecard and translation of a batch: the
    kernel's IP rows and the fallback rows' columns (``extra``: (row,
    columns) pairs), in frame order."""
    # only translation wants columns: read them for its candidates alone
    pick = None if summary.wants_all_columns else summary.translation.candidates
    summary.observe_columns(_columns(d, extra, pick)[0])


def _columns(d, extra, pick=None, only=None):
    """(columns, batch row of each) of the kernel's IP rows (those
    ``pick(address columns)`` selects, when given, or those of the mask
    ``only`` over the batch's rows) and the fallback rows' columns
    ``extra``, in frame order. The last use of ``d``: its rows are
    gathered in place (``batch_columns``)."""
    mask = d.ip_mask()
    if only is not None:
        mask &= only
    elif pick is not None:
        idx = np.flatnonzero(mask)
        mask[idx[~pick(address_columns(d, idx))]] = False
    if not extra:
        idx = np.flatnonzero(mask)
        return batch_columns(d, idx, last=True), idx
    # The fallback rows take their places among the kernel's rows (one
    # mask of both, never both at once: a fallback row is not the
    # kernel's). The columns are gathered for all the rows at once (what
    # the kernel left in a fallback row's state is read, harmlessly:
    # gathers clip into the buffer) and the fallback rows' own columns
    # written over theirs: a few values per column, not the batch moved.
    more = columns_of([c for _, c in extra])
    at = np.array([i for i, _ in extra], dtype=np.int64)
    mask[at] = True
    rows = np.flatnonzero(mask)
    theirs = np.searchsorted(rows, at)
    cols = batch_columns(d, rows, last=True)
    for k, col in cols.items():
        kind = np.result_type(col, more[k])
        if col.dtype != kind:
            col = cols[k] = col.astype(kind)
        col[theirs] = more[k]
    return cols, rows


def summarize_batch(summary, batch, opts, on_frame=None, prefixes=()) -> int:
    """Add a batch to ``summary`` (every figure, the DNS and RA evidence,
    and the NAT64 traffic to ``prefixes``); returns the number of fallback
    rows. ``on_frame(frame, linktype)`` is called for each fallback frame
    (the engine uses it to warn about unsupported link types)."""
    if len(batch) == 0:
        return 0
    d = decode_batch(batch, opts)
    _add_figures(summary, d)
    state = summary.nat64
    _nat64_rows(state, d, prefixes)
    ip = d.ip_rows()
    dns, ras = message_spans(d, ip, nat64_mod.ICMPV6_RA)
    state.observe_dns_segments(batch.buffer, *dns)
    state.observe_icmpv6(batch.buffer, *ras)
    extra = []
    want_clients = summary.wants_columns
    for i in d.fallback.tolist():
        ts_i, lt, wire, data = record(batch, i)
        f = decode_frame(lt, data, wire, opts)
        if on_frame is not None:
            on_frame(f, lt)
        summary.add(f, ts_i, wire)
        row = frame_columns(f, lt, data, ts_i, wire) if want_clients else None
        if row is not None:
            extra.append((i, row))
        nat64_mod.inspect_frame(state, f, data, wire, prefixes)
    if want_clients:
        _observe_columns(summary, d, extra)
    return len(d.fallback)


def nat64_batch(state, batch, opts, prefixes, base=0, limits=None, late=None,
                interval=None) -> None:
    """The engine's second pass over a batch: only the traffic to
    ``prefixes`` (NAT64 prefixes found late), into the Nat64State
    ``state``. ``limits`` may cap a prefix to the frames before a given
    index of the file (``base`` is the index of the batch's first frame).
    ``late``: the translation section's share (analysis/translation.py
    ``Late``, which holds its own limits), or None."""
    if len(batch) == 0:
        return
    d = decode_batch(batch, opts)
    _nat64_rows(state, d, prefixes, base, limits)
    extra = []
    for i in d.fallback.tolist():
        ts_i, lt, wire, data = record(batch, i)
        f = decode_frame(lt, data, wire, opts)
        nat64_mod.inspect_frame(state, f, data, wire,
                                nat64_mod.prefixes_at(prefixes, limits, base + i), False)
        if late is not None:
            row = frame_columns(f, lt, data, ts_i, wire)
            if row is not None:
                extra.append((i, row))
    if late is not None:
        # the rows it wants (Late.wants) found over the batch's address
        # words, before any column is gathered
        r = d.rows
        only = d.v6_mask() & late.in_jobs(r.addr(0), r.addr(1), r.addr(2), r.addr(3))
        cols, rows = _columns(d, extra, only=only)
        late.observe_at(cols, cols["wire"], rows + base, interval)


def _nat64_rows(state, d, prefixes, base=0, limits=None) -> None:
    """The traffic of the batch's classified IPv6 rows to ``prefixes``
    (each capped by ``limits``, as in ``nat64_batch``)."""
    if not prefixes:
        return
    rows = d.rows
    v6 = d.v6_mask()
    prefixes = list(prefixes)
    for at in range(0, len(prefixes), MAX_PREFIX_BITS):
        part = prefixes[at:at + MAX_PREFIX_BITS]
        # one pass over the batch's address words finds the rows in a
        # prefix (no gather first); only those are gathered
        cut = [None if not limits or limits.get(p) is None else limits[p] - base for p in part]
        sel, s_bits, d_bits = prefix_rows(rows.addr(0), rows.addr(1), rows.addr(2),
                                          rows.addr(3), v6, part, cut)
        if len(sel):
            cols = {"v6s_hi": rows.addr(0)[sel], "v6s_lo": rows.addr(1)[sel],
                    "v6d_hi": rows.addr(2)[sel], "v6d_lo": rows.addr(3)[sel],
                    "wire": d.batch.wirelens[sel]}
            state.add_traffic(part, cols, (s_bits, d_bits))


def services_batch(index, batch, opts):
    """Count the traffic of a batch to the addresses of ``index`` (a
    NameTraffic)."""
    if len(batch) == 0:
        return
    d = decode_batch(batch, opts)
    idx = d.ip_rows()
    cols = address_columns(d, idx)
    cols["wire"] = batch.wirelens[idx]
    index.add_columns(cols)
    for i in d.fallback.tolist():
        _, lt, wire, data = record(batch, i)
        index.add_frame(decode_frame(lt, data, wire, opts), wire)
