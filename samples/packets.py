"""Packet builders the sample generators share (clients, programme,
translation): plain struct code, field by field from the RFCs, so the
samples do not depend on the decoders they test. Imported by each
generator from this folder; ``python samples/X/generate.py`` runs as before.
"""

import struct


def csum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    """An IPv4 packet: 20-byte header (DF, TTL 64, valid checksum) + payload."""
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                    src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def ipv6(src, dst, nh, payload):
    """An IPv6 packet: fixed header (hop limit 64) + payload."""
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + src + dst + payload


def udp(sport, dport, payload):
    """A UDP datagram with no checksum."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def pcap(frames, linktype=1):
    """A classic little-endian microsecond pcap of (timestamp, bytes) frames."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for ts, data in frames:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    return b"".join(out)
