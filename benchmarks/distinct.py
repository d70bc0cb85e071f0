#!/usr/bin/env python3
"""Error and speed of the distinct counts (docs/DECISIONS.md, "One
distinct count").

    python benchmarks/distinct.py [--earlier DIR] [--trials N]

Counts sets of IPv6 addresses (random, and sequential: one /64
counted up from a random start) added in batches of 65,536 rows of an (n, 16)
uint8 array, as the fast path hands them over, with
``analysis.nat64.Traffic.add`` (sketch.HashSketch of splitmix64 hashes).
``--earlier DIR``: also the BLAKE2b ``Distinct`` of an older checkout (its
``ipv6flow/analysis/distinct.py``, at commit 98f43c7 and before), fed as
that version's fast path fed it (one bytes object per row, a set update).
Prints, per set size, the mean, root-mean-square and largest relative
error over the trials, and the seconds per million rows (best trial).
"""

import argparse
import importlib.util
import statistics
import sys
import time

import numpy as np

from ipv6flow.analysis.nat64 import Traffic

SIZES = (1_000, 4_096, 10_000, 100_000, 1_000_000)
BATCH = 65_536


def addresses(n, kind, rng):
    if kind == "random":
        return rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    out = np.zeros((n, 16), dtype=np.uint8)
    out[:, :8] = rng.integers(0, 256, size=8, dtype=np.uint8)       # one /64 ...
    start = int(rng.integers(0, 1 << 40))                          # ... counted up in
    out[:, 8:] = np.arange(start, start + n, dtype=">u8").view(np.uint8).reshape(n, 8)
    return out


def new_count(rows):
    t = Traffic()
    empty = np.zeros((0, 4), np.uint8)
    for k in range(0, len(rows), BATCH):
        t.add(rows[k:k + BATCH], empty)
    return len(t.clients)


def earlier_counter(path):
    spec = importlib.util.spec_from_file_location(
        "earlier_distinct", f"{path}/ipv6flow/analysis/distinct.py",
        submodule_search_locations=None)
    sys.path.insert(0, path)
    import ipv6flow.analysis.sketch  # noqa: F401  (distinct.py imports hll_estimate from it)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "ipv6flow.analysis"
    spec.loader.exec_module(mod)

    def count(rows):
        d = mod.Distinct()
        for k in range(0, len(rows), BATCH):
            part = rows[k:k + BATCH]
            raw, w = part.tobytes(), part.shape[1]
            d.update([raw[i:i + w] for i in range(0, len(raw), w)])
        return len(d)
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--earlier")
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    counters = [("splitmix64 HashSketch", new_count)]
    if args.earlier:
        counters.append(("BLAKE2b Distinct", earlier_counter(args.earlier)))
    for kind in ("random", "sequential"):
        for n in SIZES:
            trials = args.trials if n <= 100_000 else 3
            sets = [addresses(n, kind, np.random.default_rng(seed)) for seed in range(trials)]
            for name, count in counters:
                errs, secs = [], []
                for rows in sets:
                    t0 = time.perf_counter()
                    est = count(rows)
                    secs.append(time.perf_counter() - t0)
                    errs.append((est - n) / n)
                print(f"{kind:10} n={n:>9,} {name:22} mean error {statistics.mean(errs):+.4f} "
                      f"rms {statistics.mean(e * e for e in errs) ** 0.5:.4f} "
                      f"largest {max(errs, key=abs):+.4f}  "
                      f"{min(secs) / n * 1e6:.3f} s per million rows")


if __name__ == "__main__":
    main()
