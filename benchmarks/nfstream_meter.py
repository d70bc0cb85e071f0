#!/usr/bin/env python3
"""The nfstream row: the Python tool with a C core that users pick to meter
traffic, with one meter and no dissection or statistics (its fastest
setting), iterating every flow. Prints one JSON line: flows and packets.

nfstream lives in its own venv (its pins differ from ours): see
benchmarks/README.md, or `benchmarks/run.py --nfstream-python PATH`.

    NFSTREAM_VENV/bin/python benchmarks/nfstream_meter.py FILE
"""

import json
import sys

from nfstream import NFStreamer


def main(path):
    flows = packets = 0
    streamer = NFStreamer(source=path, n_dissections=0, statistical_analysis=False,
                          n_meters=1)
    for flow in streamer:
        flows += 1
        packets += flow.bidirectional_packets
    print(json.dumps({"flows": flows, "packets": packets}))


if __name__ == "__main__":
    main(sys.argv[1])
