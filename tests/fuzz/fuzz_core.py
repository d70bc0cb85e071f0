#!/usr/bin/env python3
"""atheris harness for the compiled classifier (ipv6flow/_core.c): one
frame in ``fuzz_decoder.py``'s input layout (link type, options, snap-length
cut, wire length, then the frame), against the reference decoder and the
numpy kernel.

One batch is made of the frame: three rows in fuzz_decoder's three buffer
layouts (between filler; followed by the bytes the snap length cut; ending
the buffer), then one row per snap length (from the whole frame down to 0
in steps, over the bytes of the last copy), so a read past a row's
captured length or past the buffer shows up as a difference.

Properties, on every row: the compiled pass's ``frame_key`` and client and
flow columns (``ipv6flow.fast.frame_keys``/``frame_columns`` with the
compiled classifier) equal the reference decoder's; and the compiled pass
decides no row that the numpy kernel sends to the reference, nor any row
differently (``conftest.core_disagreements``). A sanitizer report (the C
built by ``tests/sanitize.sh --fuzz``) aborts the run.

Coverage comes from the C code only (clang's sancov, through atheris's
libFuzzer); the Python code is not instrumented (that grows the process by
tens of kB per execution, see README.md). Run it from the sanitized copy:

    tests/sanitize.sh --fuzz /tmp/ipv6flow-fuzz
    cd /tmp/ipv6flow-fuzz && PYTHONPATH=$PWD LD_PRELOAD=$(python -c 'import atheris, os; \\
        print(os.path.join(atheris.path(), "asan_with_fuzzer.so"))') \\
        ASAN_OPTIONS=detect_leaks=0 python tests/fuzz/fuzz_core.py CORPUS SEEDS... \\
        -max_len=4096

(PYTHONPATH: a script's own folder comes first on sys.path, not the
current one, and an editable install would otherwise supply the
uninstrumented ipv6flow; the harness prints which ``_core`` it loaded.)
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts tests/ on sys.path)

import numpy as np  # noqa: E402

from conftest import core_disagreements, fast_path  # noqa: E402
from ipv6flow.decode import columns as dcols  # noqa: E402
from ipv6flow.capture.batch import Batch  # noqa: E402
from ipv6flow.decode import decode_frame  # noqa: E402
from ipv6flow.fast import core, frame_columns, frame_keys  # noqa: E402
from ipv6flow.decode.frame import frame_key  # noqa: E402

# after ipv6flow is imported: fuzz_decoder instruments what it imports first
import fuzz_decoder as fd  # noqa: E402  (its input layout and one-row batches)

if core.BUILT is None:
    sys.exit("fuzz_core.py: the compiled classifier is not built (or switched off)")
# the sanitized copy must be the one imported (PYTHONPATH, see above)
print("fuzz_core.py: compiled classifier", sys.modules["ipv6flow._core"].__file__,
      file=sys.stderr)

TS = 1.7e9


def batch_of(frame: bytes, tail: bytes, wirelen: int, lt: int):
    """One batch: the frame between filler, followed by its cut bytes, and
    ending the buffer (fuzz_decoder's three layouts), then one row per snap
    length over that last copy. Returns the batch and each row's bytes."""
    n = len(frame)
    gap = b"\x60\x00\x45" + frame + b"\x86\xdd" + tail + b"\xff" * 8
    buf = gap + frame + tail + frame
    last = len(gap) + n + len(tail)
    offs = [3, len(gap), last]
    lengths = [n, n, n]
    cuts = sorted({n - 1, n - 2, n - 7, n // 2, 54, 40, 34, 20, 14, 1, 0}
                  | set(range(0, n, max(1, n // 24))))
    for k in cuts:
        if 0 <= k < n:
            offs.append(last)
            lengths.append(k)
    m = len(offs)
    batch = Batch(buf, np.array(offs, dtype=np.int64), np.array(lengths, dtype=np.int64),
                  np.full(m, wirelen, dtype=np.int64), np.full(m, TS),
                  np.full(m, lt, dtype=np.int32))
    return batch, [frame[:k] for k in lengths]


def TestOneInput(data: bytes) -> None:
    lt, opts, frame, tail, wirelen = fd.parse(data)
    batch, datas = batch_of(frame, tail, wirelen, lt)
    with fast_path("compiled"):
        keys, _ = frame_keys(batch, opts)
        cols = frame_columns(batch, opts)
    for i, row in enumerate(datas):
        f = decode_frame(lt, row, wirelen, opts)
        want = frame_key(f)
        assert keys[i] == want, f"row {i} ({len(row)} bytes): compiled {keys[i]} != {want}"
        want_cols = dcols.frame_columns(f, lt, row, TS, wirelen)
        assert cols[i] == want_cols, f"row {i}: columns {cols[i]} != {want_cols}"
    bad = core_disagreements(batch, opts)
    assert not bad, bad[:5]


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
