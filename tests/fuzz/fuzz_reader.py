#!/usr/bin/env python3
"""atheris harness: whole capture files, both decoders, every property.

Input bytes are written to a temporary file and analysed with
``analyze_paths`` by the fast and the reference decoders (with the DNS
service report); see common.py for the properties checked. The first
byte picks a wrapper so that the compressed readers are fuzzed too:
0-191 the bytes as they are, then gzip, bzip2, xz, zstd of the rest (a
mutation of the compressed bytes is not worth much: it mostly breaks the
checksum).

    python tests/fuzz/fuzz_reader.py CORPUS_DIR [SEED_DIRS...] -max_len=65536

See README.md for the seed corpus and long runs.
"""

import bz2
import gzip
import lzma
import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["ipv6flow"]):
    import ipv6flow.capture  # noqa: F401
    import ipv6flow.decode  # noqa: F401
    import ipv6flow.engine.local  # noqa: F401
    import ipv6flow.fast  # noqa: F401
    import ipv6flow.analysis.nat64  # noqa: F401
    import ipv6flow.report.text  # noqa: F401
    import ipv6flow.report.services  # noqa: F401

import zstandard  # noqa: E402

from common import check_partitions, check_safe_output, differential  # noqa: E402

# one file per process, present only while an input is analysed
_PATH = os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
                     f"ipv6flow-fuzz-{os.getpid()}.cap")

_WRAP = (
    lambda b: gzip.compress(b, 1, mtime=0),
    lambda b: bz2.compress(b, 1),
    lambda b: lzma.compress(b, preset=0),
    lambda b: zstandard.ZstdCompressor(level=1).compress(b),
)


def encode(data: bytes) -> bytes:
    """The file the harness analyses for a fuzzer input."""
    if not data or data[0] < 192:
        return data
    return _WRAP[data[0] % 4](data[1:])


def TestOneInput(data: bytes) -> None:
    with open(_PATH, "wb") as fh:
        fh.write(encode(data))
    try:
        # odd lengths with the DNS service report, even ones without (the
        # default of `analyze`): the DNS paths differ between the two
        rep = differential(_PATH, services=() if len(data) % 2 else None)
    finally:
        os.unlink(_PATH)
    check_partitions(rep)
    check_safe_output(rep)


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
