"""Mergeable distinct counts: exact below a threshold, HyperLogLog above.

Distinct addresses (NAT64 clients, embedded IPv4 destinations) must merge
across parts of a capture and across reports, and must not grow without
bound on a capture of random addresses. A ``Distinct`` keeps the exact set
up to ``THRESHOLD`` items; past it, it becomes a HyperLogLog sketch
(Flajolet et al. 2007, with the small-range correction) of 2**P registers,
whose relative standard error is 1.04 / sqrt(2**P), about 1.6 % for P=12.

The hash is BLAKE2b (not Python's salted ``hash``), so the registers, and
therefore the estimate, are the same whichever process or order added the
items: merging parts gives the same figure as one pass over the whole.
"""

import base64
import hashlib
import math

import numpy as np

from .sketch import hll_estimate

THRESHOLD = 4096
P = 12
M = 1 << P
RELATIVE_ERROR = 1.04 / math.sqrt(M)


def _hash64(item: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(item, digest_size=8).digest(), "big")


RECENT = 1 << 14      # items remembered past the threshold (bounded memory)


class Distinct:
    __slots__ = ("items", "registers", "_recent")

    def __init__(self):
        self.items = set()
        self.registers = None          # np.uint8[M] once past THRESHOLD
        # Past the threshold, items already in the registers change nothing
        # (a register keeps its maximum): the last RECENT distinct ones are
        # remembered so that a batch's usual clients are not hashed again.
        self._recent = set()

    def add(self, item: bytes) -> None:
        if self.registers is None:
            self.items.add(bytes(item))
            if len(self.items) > THRESHOLD:
                self._to_sketch()
        else:
            self._add_hll(item)

    def update(self, items) -> None:
        """Add many ``bytes`` items at once (repeats are cheap: a set takes
        them, and past the threshold each distinct item is hashed once)."""
        if self.registers is None:
            self.items.update(items)
            if len(self.items) > THRESHOLD:
                self._to_sketch()
        else:
            new = set(items) - self._recent
            if len(self._recent) + len(new) > RECENT:
                self._recent = set()
            self._recent |= new
            for item in new:
                self._add_hll(item)

    def _add_hll(self, item: bytes) -> None:
        h = _hash64(item)
        idx = h >> (64 - P)
        rest = (h << P) & ((1 << 64) - 1)
        rank = (64 - P + 1) if rest == 0 else (65 - rest.bit_length())
        rank = min(rank, 64 - P + 1)
        if rank > self.registers[idx]:
            self.registers[idx] = rank

    def _to_sketch(self) -> None:
        self.registers = np.zeros(M, dtype=np.uint8)
        items, self.items = self.items, set()
        for item in items:
            self._add_hll(item)

    def merge(self, other: "Distinct") -> None:
        if other.registers is None:
            self.update(other.items)
            return
        if self.registers is None:
            self._to_sketch()
        np.maximum(self.registers, other.registers, out=self.registers)

    def __len__(self) -> int:
        if self.registers is None:
            return len(self.items)
        return hll_estimate(self.registers)

    @property
    def exact(self) -> bool:
        return self.registers is None

    def to_json(self) -> dict:
        if self.registers is None:
            return {"exact": sorted(x.hex() for x in self.items)}
        return {"hll": base64.b64encode(self.registers.tobytes()).decode("ascii"), "p": P}

    @classmethod
    def from_json(cls, data: dict) -> "Distinct":
        d = cls()
        if "hll" in data:
            if data.get("p") != P:
                raise ValueError(f"HyperLogLog precision {data.get('p')} is not {P}")
            d.registers = np.frombuffer(base64.b64decode(data["hll"]), dtype=np.uint8).copy()
            if len(d.registers) != M:
                raise ValueError("HyperLogLog registers of the wrong size")
        else:
            d.update(bytes.fromhex(x) for x in data["exact"])
        return d
