"""Vectorized mergeable distinct counts over 64-bit hashes: the one
distinct-count implementation of ipv6flow.

Every distinct count of a report is a ``HashSketch`` here: clients, flows
and interface identifiers (population.py), the gateways of IPv4 as a
service (translation.py) and the NAT64 suspects' clients and IPv4
destinations (nat64.py). They are counted from whole batches of rows, so
the sets take numpy arrays of 64-bit hashes, never one Python object per
item. A ``HashSketch`` keeps the exact sorted set of hashes up to a
threshold, then becomes a HyperLogLog sketch (Flajolet et al. 2007,
estimated by Ertl's method, ``hll_estimate``) of ``2**p`` one-byte
registers, whose relative standard error is ``1.04 / sqrt(2**p)``.

Exactness below the threshold is exact counting of 64-bit hashes: two
distinct items collide with probability about n**2 / 2**65, under 2e-12
for n = 8192.

The registers of a set are the maximum rank per register over its items,
so they do not depend on the order items came in, on how a capture was
split, or on whether a part went through the exact stage first: merging is
associative and commutative, and a merged figure equals one pass over the
whole.

``hash_words`` is a fixed, unsalted mix (the splitmix64 finalizer applied
word by word), so the same item hashes the same in every process.
"""

import base64
import math

import numpy as np

from ..arrays import distinct
from ..compiled import core_function

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_words(*columns) -> np.ndarray:
    """One 64-bit hash per row of equal-length integer columns (each
    column's values are taken modulo 2**64)."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(columns[0]), dtype=np.uint64)
        for col in columns:
            h = _mix(h ^ np.asarray(col).astype(np.uint64, copy=False))
    return h


def hash_rows(rows: np.ndarray) -> np.ndarray:
    """One ``hash_words`` hash per row of an (n, 4) or (n, 16) uint8 array
    of addresses, read as big-endian words: an IPv4 address hashes as
    ``hash_words(address)``, an IPv6 address as ``hash_words(hi, lo)``."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    if rows.shape[1] == 4:
        return hash_words(rows.view(">u4")[:, 0])
    if rows.shape[1] == 16:
        words = rows.view(">u8")
        return hash_words(words[:, 0], words[:, 1])
    raise ValueError(f"rows of {rows.shape[1]} bytes are not addresses")


def hll_parts(h: np.ndarray, p: int):
    """Register index and rank of each hash: the top ``p`` bits choose the
    register, the rank is one plus the leading zeros of the other 64 - p
    bits. Those bits (at most 53 for p >= 11) convert to float64 exactly,
    so ``frexp`` gives their bit length."""
    idx = (h >> np.uint64(64 - p)).astype(np.intp)
    rest = (h & np.uint64((1 << (64 - p)) - 1)).astype(np.float64)
    rank = (64 - p + 1 - np.frexp(rest)[1]).astype(np.uint8)
    return idx, rank


def registers_of(h: np.ndarray, p: int) -> np.ndarray:
    """HyperLogLog registers (2**p bytes) of the hashes ``h``."""
    regs = np.zeros(1 << p, dtype=np.uint8)
    update_registers(regs, h, p)
    return regs


BUILT = core_function("hll_update")        # update_registers' loop in C, or None
compiled = BUILT            # tests set None: the numpy form below


def update_registers(regs, h, p, parts=None):
    if not len(h):
        return
    if compiled is not None and parts is None:
        compiled(regs, np.ascontiguousarray(h, dtype=np.uint64), p)
        return
    idx, rank = hll_parts(h, p) if parts is None else parts
    np.maximum.at(regs, idx, rank)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_old = z
        z += x * y
        y += y
        if z == z_old:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        z_old = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3.0


def hll_estimate(regs: np.ndarray) -> int:
    """Cardinality from HyperLogLog registers by Ertl's improved estimator
    (O. Ertl, "New cardinality estimation algorithms for HyperLogLog
    sketches", 2017, algorithm 6): unbiased from a handful of items to
    far past 2**p, without the empirical bias tables of HLL++ and without
    the raw estimator's bias between 2.5 and 5 times 2**p."""
    m = len(regs)
    q = 64 - (m.bit_length() - 1)             # rank bits; registers hold 0 .. q + 1
    counts = np.bincount(regs, minlength=q + 2).tolist()
    z = m * _tau(1.0 - counts[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + counts[k])
    z += m * _sigma(counts[0] / m)
    return int(round(m * m / (2.0 * math.log(2.0)) / z))


def relative_error(p: int) -> float:
    return 1.04 / math.sqrt(1 << p)


def pack_hashes(h: np.ndarray) -> str:
    return base64.b64encode(h.astype(">u8").tobytes()).decode("ascii")


def unpack_hashes(text: str) -> np.ndarray:
    raw = base64.b64decode(text)
    if len(raw) % 8:
        raise ValueError("exact hash set of the wrong size")
    return distinct(np.frombuffer(raw, dtype=">u8").astype(np.uint64))


def unpack_registers(text: str, p: int) -> np.ndarray:
    regs = np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()
    if len(regs) != 1 << p:
        raise ValueError("HyperLogLog registers of the wrong size")
    return regs


class HashSketch:
    """Distinct count of 64-bit hashes: exact up to ``threshold``, then a
    HyperLogLog of precision ``p`` (p >= 11).

    In the exact stage, added hashes wait in a pending list and are folded
    into the sorted set once they reach ``threshold`` (or when the set is
    read): one sort per few batches instead of one per batch. Memory is at
    most twice the threshold's worth of hashes, then ``2**p`` bytes.
    """

    __slots__ = ("threshold", "p", "_hashes", "_pending", "_npending", "registers")

    def __init__(self, threshold: int, p: int):
        if p < 11:
            raise ValueError("HyperLogLog precision below 11 is not supported")
        self.threshold = threshold
        self.p = p
        self._hashes = np.zeros(0, dtype=np.uint64)   # sorted, unique
        self._pending = []
        self._npending = 0
        self.registers = None

    @property
    def hashes(self) -> np.ndarray:
        self._fold()
        return self._hashes

    @property
    def exact(self) -> bool:
        self._fold()
        return self.registers is None

    def _fold(self) -> None:
        if not self._pending:
            return
        self._hashes = distinct(np.concatenate([self._hashes] + self._pending))
        self._pending, self._npending = [], 0
        if len(self._hashes) > self.threshold:
            self.registers = registers_of(self._hashes, self.p)
            self._hashes = np.zeros(0, dtype=np.uint64)

    def add(self, h: np.ndarray, parts=None) -> None:
        """Add hashes; ``parts`` are their ``hll_parts`` when the caller
        already has them (several sketches over subsets of one array)."""
        if not len(h):
            return
        if self.registers is None:
            # a slice of a batch's array is copied: it would keep the whole
            # batch's array alive while it waits
            self._pending.append(h if h.base is None else h.copy())
            self._npending += len(h)
            if self._npending >= self.threshold:
                self._fold()
        else:
            update_registers(self.registers, h, self.p, parts)

    def merge(self, other: "HashSketch") -> None:
        if other.exact:
            self.add(other.hashes)
        else:
            self._fold()
            if self.registers is None:
                self.registers = registers_of(self._hashes, self.p)
                self._hashes = np.zeros(0, dtype=np.uint64)
            np.maximum(self.registers, other.registers, out=self.registers)

    def __len__(self) -> int:
        self._fold()
        if self.registers is None:
            return len(self._hashes)
        return hll_estimate(self.registers)

    def to_json(self) -> dict:
        self._fold()
        if self.registers is None:
            return {"exact": pack_hashes(self._hashes)}
        return {"hll": base64.b64encode(self.registers.tobytes()).decode("ascii"), "p": self.p}

    def load(self, data: dict) -> "HashSketch":
        """Merge in a sketch written by ``to_json``."""
        other = HashSketch(self.threshold, self.p)
        if "hll" in data:
            if data.get("p") != self.p:
                raise ValueError(f"HyperLogLog precision {data.get('p')} is not {self.p}")
            other.registers = unpack_registers(data["hll"], self.p)
        else:
            other.add(unpack_hashes(data["exact"]))
        self.merge(other)
        return self
