"""Set operations on numpy arrays, by sorting.

numpy 2's ``np.unique`` takes a hash-based path for 1-d integers that is
several times slower than one sort on the batch sizes here, and its
``axis=0`` form over byte rows is slower still (tens of times: it builds a
structured view and compares field by field). The fast path calls these
on every batch, so they are written once here by ``np.sort`` / ``np.lexsort``.
Results equal ``np.unique``'s (sorted, lexicographic for rows).
"""

import numpy as np

from .compiled import core_function

_U64 = np.uint64


def _firsts(*sorted_cols):
    """True where a row of the sorted columns differs from the one before."""
    n = len(sorted_cols[0])
    keep = np.empty(n, dtype=bool)
    if n:
        keep[0] = True
        np.not_equal(sorted_cols[0][1:], sorted_cols[0][:-1], out=keep[1:])
        for col in sorted_cols[1:]:
            keep[1:] |= col[1:] != col[:-1]
    return keep


def distinct(x: np.ndarray) -> np.ndarray:
    """``np.unique(x)`` of a 1-d array."""
    s = np.sort(x)
    return s[_firsts(s)]


_unique_u64 = core_function("unique_u64")   # tests set None: the sort


def unique_first(x: np.ndarray):
    """(the distinct values of a 1-d 64-bit integer array in order of first
    appearance, each row's index into them): by the compiled hash table,
    else by one stable sort."""
    if _unique_u64 is not None and len(x) >= 64:
        u = np.ascontiguousarray(x).view(np.uint64)
        out = np.empty(len(u), dtype=np.uint64)
        inv = np.empty(len(u), dtype=np.int64)
        k = _unique_u64(u, out, inv)
        return out[:k].view(x.dtype), inv
    uniq, inv, first = _unique_inverse_sorted(x, True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[inv]


_group_sum = core_function("group_sum")     # tests set None: sort and bincounts


def group_sums(keys: np.ndarray, weights: np.ndarray):
    """(the distinct int64 keys, sorted; how many rows each has; the sum of
    their int64 ``weights``): by the compiled hash table (then the few keys
    sorted), else ``unique_inverse`` and two bincounts."""
    if _group_sum is not None and len(keys) >= 64:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        n = len(keys)
        out = np.empty((3, n), dtype=np.int64)
        k = _group_sum(keys, np.ascontiguousarray(weights, dtype=np.int64), out[0], out[1],
                       out[2])
        order = np.argsort(out[0, :k])
        return out[0, :k][order], out[1, :k][order], out[2, :k][order]
    uniq, inv = unique_inverse(keys)
    counts = np.bincount(inv, minlength=len(uniq))
    sums = np.bincount(inv, weights=weights, minlength=len(uniq)).astype(np.int64)
    return uniq, counts, sums


def distinct_set(x: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-d uint64 array in no promised order (in
    order of first appearance by the compiled hash table, sorted by
    ``distinct`` without it): for sets whose order nothing reads."""
    if _unique_u64 is None or len(x) < 64:
        return distinct(x)
    x = np.ascontiguousarray(x, dtype=np.uint64)
    out = np.empty(len(x), dtype=np.uint64)
    return out[:_unique_u64(x, out)]


_code_groups = core_function("code_groups")   # tests set None: a sort


def code_groups(values: np.ndarray, order: np.ndarray, select=None):
    """(the distinct uint64 ``values``, of the rows ``select`` picks when
    given, each with its low bits cleared; the bounds of their groups, a
    list): ``order`` (int64, 2**bits entries, 1 <= bits <= 8) gives the
    group of each low-bits code, and group ``g`` is ``out[b[g]:b[g + 1]]``.
    Values are distinct by all their bits, so a value seen with two codes is
    in two groups. Order within a group is not promised (first appearance
    by the compiled hash table, sorted without it): for the sets of
    population.py, where a few low bits of each hash say what it is
    counted under."""
    ncodes = len(order)
    low = _U64(ncodes - 1)
    if _code_groups is not None and len(values) >= 64:
        x = np.ascontiguousarray(values, dtype=np.uint64)
        out = np.empty(len(x), dtype=np.uint64)
        bounds = np.empty(ncodes + 1, dtype=np.int64)
        sel = None if select is None else np.ascontiguousarray(select, dtype=bool).view(np.uint8)
        k = _code_groups(x, sel, order, out, bounds)
        return out[:k], bounds.tolist()
    x = values if select is None else values[select]
    u = distinct(np.asarray(x, dtype=np.uint64))
    g = order[(u & low).astype(np.intp)]
    out = (u & ~low)[np.argsort(g, kind="stable")]
    bounds = np.zeros(ncodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(g, minlength=ncodes), out=bounds[1:])
    return out, bounds.tolist()


# unique_inverse: values spanning at most _SPAN_PER_ROW times the row count
# are counted with np.bincount (no sort at all); otherwise one np.sort finds
# the distinct values, and up to _FEW of them get their inverse from a
# multiply-shift hash table (one gather) rather than a stable argsort of
# the whole batch, several times slower. A table with a collision is
# retried with the next multiplier, then left to np.searchsorted.
_SPAN_PER_ROW = 4
_FEW = 1024
_TABLE_BITS = 20
_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9,
                                            0x94D049BB133111EB))


def unique_inverse(x: np.ndarray, return_first: bool = False):
    """``np.unique(x, return_inverse=True)`` of a 1-d array; with
    ``return_first`` also the index of each value's first occurrence
    (``np.unique``'s ``return_index``)."""
    if return_first or x.dtype.kind not in "iu" or not len(x):
        return _unique_inverse_sorted(x, return_first)
    lo = x.min()
    span = int(x.max()) - int(lo)
    if span < _SPAN_PER_ROW * len(x):
        d = (x - lo).astype(np.intp)
        present = np.bincount(d, minlength=span + 1) != 0
        code = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(x.dtype) + lo, code[d]
    s = np.sort(x)
    uniq = s[_firsts(s)]
    if len(uniq) <= _FEW:
        xu, uu = x.view(np.uint64), uniq.view(np.uint64)
        shift = np.uint64(64 - _TABLE_BITS)
        with np.errstate(over="ignore"):
            for m in _MULTIPLIERS:
                hu = (uu * m) >> shift
                if len(distinct(hu)) == len(uniq):
                    table = np.empty(1 << _TABLE_BITS, dtype=np.intp)
                    table[hu] = np.arange(len(uniq))
                    return uniq, table[(xu * m) >> shift]
    return uniq, np.searchsorted(uniq, x)


def _unique_inverse_sorted(x, return_first):
    order = np.argsort(x, kind="stable")
    s = x[order]
    keep = _firsts(s)
    inv = np.empty(len(x), dtype=np.intp)
    inv[order] = np.cumsum(keep) - 1
    if return_first:
        return s[keep], inv, order[keep]    # stable: each group's first row comes first
    return s[keep], inv


def unique_any(x: np.ndarray):
    """Sorted distinct values of a 1-d array, the inverse, and the index
    of *some* row of each value (not the first: one unstable sort, for
    keys whose equal rows are equal in every other column too)."""
    order = np.argsort(x)
    s = x[order]
    keep = _firsts(s)
    inv = np.empty(len(x), dtype=np.intp)
    inv[order] = np.cumsum(keep) - 1
    return s[keep], inv, order[keep]


def _words(rows: np.ndarray):
    """Big-endian 64-bit words of each row of an (n, k) uint8 array (rows
    padded with zero bytes to a multiple of 8), most significant first."""
    n, k = rows.shape
    if k % 8:
        rows = np.concatenate((rows, np.zeros((n, 8 - k % 8), dtype=np.uint8)), axis=1)
    w = np.ascontiguousarray(rows).view(">u8")
    return [w[:, i] for i in range(w.shape[1])]


def distinct_rows(rows: np.ndarray, return_inverse: bool = False):
    """``np.unique(rows, axis=0)`` of an (n, k) uint8 array (with the
    inverse when asked)."""
    words = _words(rows)
    order = np.lexsort(words[::-1])
    sw = [w[order] for w in words]
    keep = _firsts(*sw)
    uniq = rows[order][keep]
    if not return_inverse:
        return uniq
    inv = np.empty(len(rows), dtype=np.intp)
    inv[order] = np.cumsum(keep) - 1
    return uniq, inv

