"""A real sFlow agent for the tests: pmacct's ``pmacctd`` with its
``sfprobe`` plugin reads a pcap and exports sampled headers over UDP on the
loopback (``sampled/README.md`` of ../shared says how it behaves).

``export(pcap, rate, out)`` runs it and writes the datagrams it sent into
``out``, a pcap of raw IPv4 frames (the library's own ``udp_frame``, as
``collect --write`` keeps them). pmacctd does not always send its last,
partly filled datagram when the file ends: ``with_filler`` writes a copy
of a pcap with ``FILLER`` frames of a fixed IPv4 packet after it, so that
what is lost is filler.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time

from ipv6flow.capture import open_capture
from ipv6flow.decode import DecodeOptions, decode_frame
from ipv6flow.capture.sflow import frames_batch, udp_frame
from ipv6flow.engine.live import PcapWriter

FILLER = 2000
# Ethernet, then IPv4 192.0.2.1 -> 192.0.2.2, UDP 9 -> 9 (discard)
FILLER_FRAME = (bytes.fromhex("020000000002020000000001" "0800")
                + udp_frame("192.0.2.1", 9, "192.0.2.2", 9, b"filler-filler-fill"))
PMACCTD = "pmacctd"


def write_pcap(path, frames, linktype: int = 1) -> None:
    """A classic pcap of ``frames`` [(ts, data, wirelen)]."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for ts, data, wire in frames:
            sec = int(ts)
            usec = min(round((ts - sec) * 1e6), 999_999)
            fh.write(struct.pack("<IIII", sec, usec, len(data), wire) + data)


def read_frames(path, keep=lambda data: True):
    """[(ts, data, wirelen)] of an Ethernet capture's frames that ``keep``."""
    out = []
    with open_capture(str(path)) as cap:
        for ts, lt, wire, data in cap:
            if lt != 1:
                raise ValueError(f"{path}: an Ethernet capture is expected")
            if keep(data):
                out.append((ts, data, wire))
    return out


def with_filler(src: str, dst: str, count: int = FILLER) -> None:
    """``src`` (an Ethernet capture) then ``count`` filler frames."""
    frames = read_frames(src)
    sec = int(max((ts for ts, _, _ in frames), default=0)) + 1
    frames += [(sec + i / 1e6, FILLER_FRAME, len(FILLER_FRAME)) for i in range(count)]
    write_pcap(dst, frames)


def exportable(data) -> bool:
    """Does pmacctd sample this Ethernet frame? As observed (and checked by
    tests/test_sflow.py on the sample and the benchmark mix): IPv4 and IPv6
    by their ethertype (malformed or not), also in one 802.1Q tag, below
    one MPLS label, in PPPoE; not in QinQ, not below two MPLS labels."""
    at = 12
    et = data[at:at + 2]
    if et == b"\x81\x00":
        at += 4
        et = data[at:at + 2]
    if et in (b"\x08\x00", b"\x86\xdd"):
        return True
    if et in (b"\x88\x47", b"\x88\x48"):
        return len(data) > at + 4 and bool(data[at + 4] & 1)
    if et in (b"\x88\xa8", b"\x91\x00"):
        return False
    return decode_frame(1, data, len(data), DecodeOptions()).carrier != "non_ip"


def export(pcap: str, rate: int, out: str, workdir: str, agent: str = "127.0.0.1",
           timeout: float = 120.0) -> int:
    """Run pmacctd over ``pcap`` at 1 in ``rate``; write what it sent to
    ``out``. Returns the number of datagrams."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    conf = os.path.join(workdir, f"pmacctd-{port}.conf")
    with open(conf, "w") as fh:
        fh.write(f"daemonize: false\npcap_savefile: {pcap}\npcap_savefile_wait: false\n"
                 f"plugins: sfprobe\nsfprobe_receiver: 127.0.0.1:{port}\n"
                 f"sfprobe_agentip: {agent}\npidfile: {workdir}/pmacctd-{port}.pid\n"
                 + (f"sampling_rate: {rate}\n" if rate > 1 else ""))
    proc = subprocess.Popen([PMACCTD, "-f", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    frames = []
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data, (src, sport) = sock.recvfrom(65535)
            except socket.timeout:
                if proc.poll() is not None:
                    break                 # ended, and half a second quiet since
                continue
            now = time.time()
            frames.append((int(now), int((now % 1) * 1e6), udp_frame(src, sport, "127.0.0.1",
                                                                     port, data)))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        sock.close()
    writer = PcapWriter(out, 101, 65535)
    try:
        if frames:
            writer.write(*frames_batch(frames))
    finally:
        writer.close()
    return len(frames)
