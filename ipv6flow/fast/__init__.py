"""The vectorized fast path (see kernel.py for the strategy).

``summarize_batch`` folds one capture Batch into a Summary: the numpy
kernel classifies the rows it can, the reference decoder the rest, and the
figures are identical to decoding every frame with the reference decoder.
"""

from functools import lru_cache

import numpy as np

from ..decode import decode_frame
from ..summary import frame_key
from .kernel import FAMILY_NAMES, _SHIFT, classify, unpack

_PAYLOAD_SHIFT, _PAYLOAD_MASK = _SHIFT["payload"]
_unpack = lru_cache(maxsize=4096)(unpack)


def frame_keys(batch, opts):
    """Per-row ``summary.frame_key`` tuples, and how many rows fell back
    (for differential tests; the analysis path never builds these)."""
    keys, fallback = classify(batch, opts)
    out = [_unpack(k) for k in keys.tolist()]
    for i in fallback.tolist():
        rec = _record(batch, i)
        out[i] = frame_key(decode_frame(rec[1], rec[3], rec[2], opts))
    return out, len(fallback)


def _record(batch, i):
    off, cap = int(batch.offsets[i]), int(batch.caplens[i])
    return (float(batch.ts[i]), int(batch.linktypes[i]), int(batch.wirelens[i]),
            batch.buffer[off:off + cap])


def summarize_batch(summary, batch, opts, on_frame=None):
    """Add a batch to ``summary``; returns the number of fallback rows.

    ``on_frame(frame, linktype)`` is called for each fallback frame (the
    engine uses it to warn about unsupported link types).
    """
    n = len(batch)
    if n == 0:
        return 0
    keys, fallback = classify(batch, opts)
    fast = np.ones(n, dtype=bool)
    fast[fallback] = False
    k, w, ts = keys[fast], batch.wirelens[fast], batch.ts[fast]
    if len(k):
        uniq, inv = np.unique(k, return_inverse=True)
        packets = np.bincount(inv, minlength=len(uniq))
        nbytes = np.bincount(inv, weights=w, minlength=len(uniq))
        for key, p, b in zip(uniq.tolist(), packets.tolist(), nbytes.tolist()):
            summary.add_key(_unpack(key), p, int(b))
        summary.add_span(float(ts.min()), float(ts.max()))
        fam = (k >> _PAYLOAD_SHIFT) & _PAYLOAD_MASK
        ip = fam != 0
        if ip.any():
            bins = np.floor(ts[ip] / summary.interval).astype(np.int64)
            combo = bins * 4 + fam[ip]
            uc, inv = np.unique(combo, return_inverse=True)
            packets = np.bincount(inv, minlength=len(uc))
            nbytes = np.bincount(inv, weights=w[ip], minlength=len(uc))
            for c, p, b in zip(uc.tolist(), packets.tolist(), nbytes.tolist()):
                summary.add_bin(c >> 2, FAMILY_NAMES[c & 3], p, int(b))
    for i in fallback.tolist():
        ts_i, lt, wire, data = _record(batch, i)
        f = decode_frame(lt, data, wire, opts)
        if on_frame is not None:
            on_frame(f, lt)
        summary.add(f, ts_i, wire)
    return len(fallback)
