#!/usr/bin/env python3
"""What parts of a complete ipv6flow report cost on their own: the floors
the complete report is measured against (benchmarks/run.py rows
``floor-read`` and ``floor-pass``).

    python benchmarks/floor.py FILE read    # ipv6flow's reader: every batch of records
    python benchmarks/floor.py FILE pass    # the reader and the decoder's single pass
                                            # (compiled where built), no figure folded
    python benchmarks/floor.py - startup    # the imports an analyze run makes, no file

Prints one JSON line: {"frames": N, "fallback": N}. Start-up (Python,
numpy, click, the package) is inside every figure, as in an analyze run.
"""

import importlib
import json
import sys


def main(argv=None):
    path, mode = (argv or sys.argv[1:])[:2]
    importlib.import_module("ipv6flow.cli")     # what analyze imports before reading
    from ipv6flow.capture import open_capture
    from ipv6flow.decode import DecodeOptions
    from ipv6flow.fast import decode_batch
    frames = fallback = 0
    if mode != "startup":
        opts = DecodeOptions()
        with open_capture(path) as cap:
            for batch in cap.iter_batches(reuse=True):
                frames += len(batch)
                if mode == "pass":
                    fallback += len(decode_batch(batch, opts).fallback)
    print(json.dumps({"frames": frames, "fallback": fallback}))


if __name__ == "__main__":
    main()
