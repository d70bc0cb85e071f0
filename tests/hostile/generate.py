#!/usr/bin/env python3
"""Write a corpus of hostile captures for ipv6flow, deterministically.

    python tests/hostile/generate.py [--out DIR] [--bomb-mb N] [--list]

Every file is crafted to break a reader or a decoder: length fields that
lie (a pcap record claiming 2**32-1 bytes, a pcapng block claiming 2 GB,
block lengths that are not a multiple of 4), thousands of interface
blocks, decompression bombs and compressed streams cut mid-stream,
extension-header chains of hundreds of headers, tunnels nested past the
depth cap, VLAN and MPLS stacks, DNS built to loop, lie and inject
(pointer loops, ANSI escapes, spreadsheet formulas), Router Advertisements
with zero-length options, frames of every length from 0 on every link
type, random bytes on every link type, and a capture of random addresses.

``DIR/manifest.json`` lists each file with what it shows and what a
correct reader must say about it, known by construction:

* ``packets``: frames the reader yields (every record before an error or
  a cut-off), or null when not fixed by construction;
* ``error``: a substring of the one whole-file error expected, or null
  when the file must read without an error ("*": either);
* ``truncated``: whether the file ends mid-record (null: not checked);
* ``big``: the file expands to many megabytes (tests run it once).

Nothing depends on the clock, hash seeds or set order: the same arguments
give the same bytes. The default corpus is about 8 MB on disk and is
written in a few seconds, so tests/test_hostile.py writes it into a
temporary folder at test time (nothing to commit but this script).
``--bomb-mb 1024`` makes the decompression bombs expand to 1 GiB (about
1 MB compressed for gzip) for memory measurements by hand.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import random
import struct
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import zstandard

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "corpus"
SEED = 7_2026

# Link types ipv6flow decodes (decode/link.py LINKTYPES) and one it does not.
SUPPORTED_LINKTYPES = (0, 1, 9, 12, 14, 50, 101, 104, 105, 107, 108, 113, 127, 228, 229, 276)
UNSUPPORTED_LINKTYPE = 147      # LINKTYPE_USER0
ALL_LINKTYPES = SUPPORTED_LINKTYPES + (UNSUPPORTED_LINKTYPE,)

T0 = 1_700_000_000


# ---------------------------------------------------------------------------
# Bytes of headers (RFC layouts, packed by hand: nothing here may validate)

def u8(x):
    return struct.pack("!B", x & 0xFF)


def u16(x):
    return struct.pack("!H", x & 0xFFFF)


def u32(x):
    return struct.pack("!I", x & 0xFFFFFFFF)


MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
V4_A, V4_B = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("2a001450400100000000000000000002")
V6_LL = bytes.fromhex("fe800000000000000000000000000001")
V6_ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
RESOLVER6 = bytes.fromhex("20010db8005300000000000000000053")
RESOLVER4 = bytes([192, 0, 2, 53])


def eth(payload, ethertype=0x86DD, dst=MAC_B, src=MAC_A):
    return dst + src + u16(ethertype) + payload


def ip4(payload, proto, src=V4_A, dst=V4_B, tot=None, ihl=5, frag=0, ttl=64):
    options = b"\x01" * (4 * max(0, ihl - 5))
    total = 20 + len(options) + len(payload) if tot is None else tot
    return (u8(0x40 | (ihl & 0xF)) + b"\x00" + u16(total) + b"\x12\x34" + u16(frag)
            + u8(ttl) + u8(proto) + b"\x00\x00" + src + dst + options + payload)


def ip6(payload, nh, src=V6_A, dst=V6_B, plen=None, hlim=64):
    n = len(payload) if plen is None else plen
    return u32(0x60000000) + u16(n) + u8(nh) + u8(hlim) + src + dst + payload


def udp(payload, sport, dport, ulen=None):
    n = 8 + len(payload) if ulen is None else ulen
    return u16(sport) + u16(dport) + u16(n) + b"\x00\x00" + payload


def tcp(payload, sport, dport):
    return u16(sport) + u16(dport) + u32(1) + u32(0) + b"\x50\x18\x20\x00" + b"\x00" * 4 + payload


def ext(nh, body_len_units=0, kind=60, fill=b"\x00"):
    """One Hop-by-Hop / Routing / Destination Options style header."""
    size = (body_len_units + 1) * 8
    if kind == 43:
        return u8(nh) + u8(body_len_units) + b"\x04\x00" + fill * (size - 4)
    return u8(nh) + u8(body_len_units) + b"\x01\x04\x00\x00\x00\x00" + fill * (size - 8)


def frag_hdr(nh, offset=0, more=0, ident=0x1234):
    return u8(nh) + b"\x00" + u16((offset << 3) | more) + u32(ident)


def ah_hdr(nh, length=4):
    size = (length + 2) * 4
    return (u8(nh) + u8(length) + b"\x00\x00" + u32(0x100) + u32(1) + bytes(size - 12))


def chain(types, final_nh, payload):
    """IPv6 extension headers of ``types`` (outermost first) in front of
    ``payload``; returns (first next header, bytes)."""
    nh, body = final_nh, payload
    for t in reversed(types):
        if t == 44:
            body = frag_hdr(nh) + body
        elif t == 51:
            body = ah_hdr(nh) + body
        elif t == 50:
            body = b"\x00\x00\x10\x01\x00\x00\x00\x07" + body
        else:
            body = ext(nh, 0, t) + body
        nh = t
    return nh, body


def icmp6_echo(data=b"ping"):
    return b"\x80\x00\x00\x00\x00\x01\x00\x01" + data


# ---------------------------------------------------------------------------
# Capture files

PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")


def pcap_header(linktype=1, snaplen=262144, magic=0xA1B2C3D4, version=(2, 4)):
    return PCAP_HEADER.pack(magic, version[0], version[1], 0, 0, snaplen, linktype)


def pcap_record(data, ts=0, wirelen=None, caplen=None, frac=0):
    return PCAP_RECORD.pack(T0 + ts if ts >= 0 else 0, frac,
                            len(data) if caplen is None else caplen,
                            len(data) if wirelen is None else wirelen) + data


def pcap(frames, linktype=1, snaplen=262144):
    """A classic pcap of ``frames`` (bytes, or (bytes, wirelen))."""
    out = [pcap_header(linktype, snaplen)]
    for i, f in enumerate(frames):
        data, wire = (f, None) if isinstance(f, (bytes, bytearray)) else f
        out.append(pcap_record(bytes(data), ts=i, wirelen=wire))
    return b"".join(out)


def pad4(b):
    return b + bytes(-len(b) % 4)


def block(btype, body, order="<", length=None, trailer=None):
    body = pad4(body)
    n = len(body) + 12
    head = n if length is None else length
    tail = head if trailer is None else trailer
    return struct.pack(order + "II", btype, head) + body + struct.pack(order + "I", tail)


def ng_option(code, value, order="<"):
    return struct.pack(order + "HH", code, len(value)) + pad4(value)


def shb(order="<", version=(1, 0)):
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, version[0], version[1], -1),
                 order)


def idb(linktype, snaplen=0, options=b"", order="<"):
    body = struct.pack(order + "HHI", linktype, 0, snaplen)
    if options:
        body += options + ng_option(0, b"", order)
    return block(1, body, order)


def epb(iface, data, ts=0, wirelen=None, order="<", caplen=None):
    stamp = (T0 + ts) * 1_000_000 if ts >= 0 else 0
    return block(6, struct.pack(order + "IIIII", iface, stamp >> 32, stamp & 0xFFFFFFFF,
                                len(data) if caplen is None else caplen,
                                len(data) if wirelen is None else wirelen) + data, order)


def spb(data, wirelen=None, order="<"):
    return block(3, struct.pack(order + "I", len(data) if wirelen is None else wirelen) + data,
                 order)


# ---------------------------------------------------------------------------
# The registry

class Case(NamedTuple):
    name: str
    what: str
    build: Callable[[dict], bytes]
    packets: int | None
    error: str | None
    truncated: bool | None
    big: bool


CASES: list[Case] = []
ANY = "*"           # ``error``: an error or none, either is right


def case(name, what, packets=None, error=None, truncated=False, big=False):
    def register(fn):
        CASES.append(Case(name, what, fn, packets, error, truncated, big))
        return fn
    return register


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


GOOD = [eth(ip6(icmp6_echo(), 58)), eth(ip4(udp(b"x" * 20, 5000, 53), 17), 0x0800),
        eth(ip6(udp(b"y" * 10, 5000, 443), 17))]


# -- classic pcap: lying length fields ----------------------------------------

def _three_then(record: bytes) -> bytes:
    return pcap(GOOD)[:] + record


@case("pcap-caplen-2pow32-1.pcap", "record claiming caplen 2**32-1 after three good records",
      packets=3, error="captured length 4294967295 exceeds")
def _(p):
    return _three_then(PCAP_RECORD.pack(T0, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"\x00" * 64)


@case("pcap-caplen-2g.pcap", "record claiming caplen 2 GiB", packets=3,
      error="captured length 2147483648 exceeds")
def _(p):
    return _three_then(PCAP_RECORD.pack(T0, 0, 1 << 31, 1 << 31) + b"\x00" * 64)


@case("pcap-caplen-limit-plus-1.pcap", "caplen one above libpcap's 262144 maximum", packets=3,
      error="captured length 262145 exceeds")
def _(p):
    return _three_then(PCAP_RECORD.pack(T0, 0, 262145, 262145) + b"\x00" * 64)


@case("pcap-caplen-limit-lie.pcap", "caplen 262144 (allowed) but only 100 bytes follow",
      packets=3, truncated=True)
def _(p):
    return _three_then(PCAP_RECORD.pack(T0, 0, 262144, 262144) + b"\x00" * 100)


@case("pcap-caplen-0.pcap", "1000 records of caplen 0 claiming 1500 bytes on the wire",
      packets=1000)
def _(p):
    return pcap_header() + b"".join(PCAP_RECORD.pack(T0 + i, 0, 0, 1500) for i in range(1000))


@case("pcap-caplen-1.pcap", "1000 records of caplen 1", packets=1000)
def _(p):
    return pcap_header() + b"".join(PCAP_RECORD.pack(T0 + i, 0, 1, 1500) + bytes([i & 0xFF])
                                    for i in range(1000))


@case("pcap-v2.2-swapped-lie.pcap", "version 2.2 (caplen and len stored swapped); the "
      "stored len field claims 2**32-1", packets=3, error="captured length 4294967295 exceeds")
def _(p):
    out = [pcap_header(version=(2, 2))]
    for f in GOOD:
        out.append(PCAP_RECORD.pack(T0, 0, len(f), len(f)) + f)
    out.append(PCAP_RECORD.pack(T0, 0, 60, 0xFFFFFFFF) + b"\x00" * 60)
    return b"".join(out)


@case("pcap-v2.3-caplen-over-len.pcap", "version 2.3: caplen > len is swapped back; "
      "len 0 records", packets=4)
def _(p):
    out = [pcap_header(version=(2, 3))]
    for f in GOOD:
        out.append(PCAP_RECORD.pack(T0, 0, len(f) + 1000, len(f)) + f)
    out.append(PCAP_RECORD.pack(T0, 0, 0, 0))
    return b"".join(out)


@case("pcap-wirelen-0.pcap", "IP frames whose original (wire) length is 0", packets=3)
def _(p):
    return pcap_header() + b"".join(PCAP_RECORD.pack(T0, 0, len(f), 0) + f for f in GOOD)


@case("pcap-header-fields-extreme.pcap", "snaplen 0, link type field with FCS bits "
      "(0xffff0001), timestamps 2**32-1 s and fraction 2**32-1 (nanosecond magic)", packets=3)
def _(p):
    out = [PCAP_HEADER.pack(0xA1B23C4D, 2, 4, -(2 ** 31), 0xFFFFFFFF, 0, 0xFFFF0001)]
    for f in GOOD:
        out.append(PCAP_RECORD.pack(0xFFFFFFFF, 0xFFFFFFFF, len(f), 0xFFFFFFFF) + f)
    return b"".join(out)


@case("pcap-file-header-cut.pcap", "20 bytes of a pcap file header", packets=0,
      error="file ends inside the pcap file header")
def _(p):
    return pcap_header()[:20]


@case("pcap-record-header-cut.pcap", "three records, then 9 bytes of a record header",
      packets=3, truncated=True)
def _(p):
    return pcap(GOOD) + b"\x00" * 9


@case("pcap-version-1.pcap", "major version 1", packets=0, error="unsupported pcap version")
def _(p):
    return pcap_header(version=(1, 0)) + pcap_record(GOOD[0])


@case("pcap-kuznetzov.pcap", "Kuznetzov-patched magic", packets=0, error="is not supported")
def _(p):
    return PCAP_HEADER.pack(0xA1B2CD34, 2, 4, 0, 0, 65535, 1) + b"\x00" * 40


# -- pcapng: lying blocks ----------------------------------------------------

NG_GOOD = shb() + idb(1) + b"".join(epb(0, f, i) for i, f in enumerate(GOOD))


@case("pcapng-block-2g.pcapng", "enhanced packet block claiming 2 GiB", packets=3,
      error="exceeds the limit")
def _(p):
    return NG_GOOD + struct.pack("<II", 6, 1 << 31) + b"\x00" * 64


@case("pcapng-block-4g.pcapng", "block claiming 0xfffffffc bytes", packets=3,
      error="exceeds the limit")
def _(p):
    return NG_GOOD + struct.pack("<II", 6, 0xFFFFFFFC) + b"\x00" * 64


@case("pcapng-block-200m-lie.pcapng", "block claiming 200 MB (under the limit) at the end of "
      "a small file", packets=3, truncated=True)
def _(p):
    return NG_GOOD + struct.pack("<II", 6, 200 << 20) + b"\x00" * 64


@case("pcapng-shb-2g.pcapng", "section header claiming 2 GiB", packets=0,
      error="exceeds the limit")
def _(p):
    return struct.pack("<II", 0x0A0D0D0A, 1 << 31) + struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)


@case("pcapng-blen-not-multiple-of-4.pcapng", "block length 33", packets=3,
      error="not a multiple of 4")
def _(p):
    return NG_GOOD + struct.pack("<II", 6, 33) + b"\x00" * 40


@case("pcapng-blen-8.pcapng", "block length 8 (below the 12-byte minimum)", packets=3,
      error="below the minimum")
def _(p):
    return NG_GOOD + struct.pack("<II", 6, 8) + b"\x00" * 40


@case("pcapng-trailer-mismatch.pcapng", "trailing length differs from the leading one",
      packets=3, error="does not match")
def _(p):
    return NG_GOOD + block(6, struct.pack("<IIIII", 0, 0, 0, 4, 4) + b"abcd", trailer=40)


@case("pcapng-5000-idbs.pcapng", "5000 interface blocks over every link type (and unknown "
      "ones), one packet on each interface", packets=5000)
def _(p):
    lts = ALL_LINKTYPES + (2, 6, 192, 220, 263, 0xFFFF)
    rng = rng_for("idbs")
    out = [shb()]
    out += [idb(lts[i % len(lts)], snaplen=rng.choice((0, 1, 14, 65535))) for i in range(5000)]
    for i in range(5000):
        out.append(epb(i, rng.randbytes(rng.randint(0, 80)), i % 7))
    return b"".join(out)


@case("pcapng-iface-out-of-range.pcapng", "packet on interface 1 of a one-interface section",
      packets=3, error="interface id 1")
def _(p):
    return NG_GOOD + epb(1, GOOD[0])


@case("pcapng-iface-max.pcapng", "packet on interface 2**32-1", packets=3,
      error="interface id 4294967295")
def _(p):
    return NG_GOOD + epb(0xFFFFFFFF, GOOD[0])


@case("pcapng-spb-without-idb.pcapng", "simple packet block before any interface", packets=0,
      error="no interface description block")
def _(p):
    return shb() + spb(GOOD[0])


@case("pcapng-spb-lying-wirelen.pcapng", "simple packet blocks claiming 2**32-1 bytes on the "
      "wire, snaplen 20", packets=3)
def _(p):
    return shb() + idb(1, snaplen=20) + b"".join(spb(f, 0xFFFFFFFF) for f in GOOD)


@case("pcapng-option-lie.pcapng", "interface option claiming 65535 bytes", packets=0,
      error="option 2 has length 65535")
def _(p):
    body = struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 2, 0xFFFF) + b"abcd"
    return shb() + block(1, body) + epb(0, GOOD[0])


@case("pcapng-epb-caplen-past-block.pcapng", "packet caplen runs past its block", packets=3,
      error="runs past the end")
def _(p):
    return NG_GOOD + epb(0, GOOD[0], caplen=5000)


@case("pcapng-shb-version-2.pcapng", "section header of version 2.0", packets=0,
      error="unsupported pcapng version")
def _(p):
    return shb(version=(2, 0)) + idb(1) + epb(0, GOOD[0])


@case("pcapng-timestamps-extreme.pcapng", "if_tsresol 2**-127 and 10**-127, if_tsoffset "
      "-2**63 and 2**63-1, timestamps 2**64-1 units at resolution 1 s", packets=8)
def _(p):
    v6 = ip6(b"", 59)
    o = "<"
    out = [shb()]
    out.append(idb(101, 0, ng_option(9, b"\x00")))                          # 1 s units
    out.append(idb(101, 0, ng_option(9, b"\xff")))                          # 2**-127 s
    out.append(idb(101, 0, ng_option(9, b"\x7f")))                          # 10**-127 s
    out.append(idb(101, 0, ng_option(9, b"\x00") + ng_option(14, struct.pack("<q", -2 ** 63))))
    out.append(idb(101, 0, ng_option(9, b"\x00") + ng_option(14, struct.pack("<q", 2 ** 63 - 1))))
    for iface in range(5):
        out.append(block(6, struct.pack(o + "IIIII", iface, 0xFFFFFFFF, 0xFFFFFFFF, len(v6),
                                        len(v6)) + v6))
    for iface in (0, 3, 4):
        out.append(block(6, struct.pack(o + "IIIII", iface, 0, 0, len(v6), len(v6)) + v6))
    return b"".join(out)


@case("pcapng-big-custom-block.pcapng", "a 3 MB custom block between packets (streamed past)",
      packets=6)
def _(p):
    custom = block(0x00000BAD, struct.pack("<I", 32473) + b"\xee" * (3 << 20))
    return NG_GOOD + custom + b"".join(epb(0, f) for f in GOOD)


@case("pcapng-1000-sections.pcapng", "1000 sections alternating byte order, one interface "
      "and one packet each", packets=1000)
def _(p):
    out = []
    for i in range(1000):
        o = "<" if i % 2 else ">"
        out.append(shb(o) + idb(1, order=o) + epb(0, GOOD[i % 3], i, order=o))
    return b"".join(out)


@case("pcapng-1m-idbs.pcapng", "one million interface blocks of one link type, then one "
      "packet on the last interface (memory grows with IDBs)", packets=1, big=True)
def _(p):
    return shb() + idb(1) * 1_000_000 + epb(999_999, GOOD[0])


@case("pcapng-70000-idbs.pcapng", "70000 interface blocks, past the 65536 kept per section: "
      "a packet on interface 0, one on 69999 (skipped), one on 1", packets=2)
def _(p):
    return shb() + idb(1) * 70000 + epb(0, GOOD[0]) + epb(69999, GOOD[1]) + epb(1, GOOD[2])


@case("pcapng-16384-linktype-idbs.pcapng", "32768 interface blocks: 16384 link types, twice "
      "over (the list of link types seen is searched once per block)", packets=1, big=True)
def _(p):
    one = b"".join(idb(i) for i in range(16384))
    return shb() + one + one + epb(1, GOOD[0])


# -- compression ----------------------------------------------------------------

def _zero_records(total_bytes: int):
    """A pcap of 65535-byte all-zero Ethernet frames, about ``total_bytes``."""
    rec = PCAP_RECORD.pack(0, 0, 65535, 65535) + bytes(65535)
    per_chunk = 16
    chunks = max(1, total_bytes // (len(rec) * per_chunk))
    return rec * per_chunk, chunks, chunks * per_chunk


_COMPRESSORS = {
    "gz": lambda b: gzip.compress(b, 9, mtime=0),
    "bz2": lambda b: bz2.compress(b, 9),
    "xz": lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=6),
    "zst": lambda b: zstandard.ZstdCompressor(level=19).compress(b),
}


def bomb(kind: str, total_bytes: int) -> bytes:
    """pcap header + ``total_bytes`` of zero frames, as concatenated
    members/streams/frames of one compressed chunk (all four formats allow
    concatenation), so a 1 GiB bomb is made in milliseconds."""
    chunk, reps, _ = _zero_records(total_bytes)
    comp = _COMPRESSORS[kind]
    first, rest = comp(pcap_header(1, 65535) + chunk), comp(chunk)
    return first + rest * (reps - 1)


def _bomb_packets(p):
    return _zero_records(p["bomb_mb"] << 20)[2]


# Past 16 MiB of output a ratio above 1000 is refused (capture/source.py
# MAX_RATIO): these bzip2, xz and zstd bombs stop there with an error;
# deflate cannot reach it (this gzip bomb expands 987 times) and is read
# to its end.
for _kind in _COMPRESSORS:
    CASES.append(Case(f"bomb.pcap.{_kind}",
                      f"{_kind} bomb: zero-filled 65535-byte frames (--bomb-mb MiB expanded)",
                      (lambda k: lambda p: bomb(k, p["bomb_mb"] << 20))(_kind),
                      -1 if _kind == "gz" else None,
                      None if _kind == "gz" else "refused as a decompression bomb", False, True))


def xz_big_dictionary(total_bytes: int, dict_code: int = 37) -> bytes:
    """An xz stream whose LZMA2 filter declares a 1.5 GiB dictionary
    (property code 37), patched into a stream compressed with a small one:
    still valid, and liblzma fills that dictionary as it decodes."""
    chunk, reps, _ = _zero_records(total_bytes)
    c = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE,
                            filters=[{"id": lzma.FILTER_LZMA2, "preset": 0}])
    parts = [c.compress(pcap_header(1, 65535))]
    parts += [c.compress(chunk) for _ in range(reps)]
    parts.append(c.flush())
    data = bytearray(b"".join(parts))
    bh = 12                                      # stream header, then the block header
    size = (data[bh] + 1) * 4
    assert data[bh + 1] & 0xC0 == 0 and data[bh + 2] == 0x21 and data[bh + 3] == 1
    data[bh + 4] = dict_code
    data[bh + size - 4:bh + size] = struct.pack("<I", zlib.crc32(bytes(data[bh:bh + size - 4])))
    return bytes(data)


CASES.append(Case("bomb-1.5g-dictionary.pcap.xz", "xz declaring a 1.5 GiB LZMA2 dictionary "
                  "over --bomb-mb MiB of zero frames (memory follows the dictionary)",
                  lambda p: xz_big_dictionary(p["bomb_mb"] << 20), 0,
                  "xz dictionary needs more than 66 MiB", False, True))


def zstd_big_window(total_bytes: int) -> bytes:
    """A zstd frame with a 128 MiB window (the decoder's default limit)."""
    chunk, reps, _ = _zero_records(total_bytes)
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=27)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    parts = [c.compress(pcap_header(1, 65535))]
    parts += [c.compress(chunk) for _ in range(reps)]
    parts.append(c.flush())
    return b"".join(parts)


CASES.append(Case("bomb-128m-window.pcap.zst", "zstd frame with a 128 MiB window over "
                  "--bomb-mb MiB of zero frames", lambda p: zstd_big_window(p["bomb_mb"] << 20),
                  0, "zstd window of 128 MiB is over the limit", False, True))


@case("bomb-2g-window.pcap.zst", "zstd frame header declaring a 2 GiB window", packets=0,
      error="zstd window of 2048 MiB is over the limit of 64 MiB")
def _(p):
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=31)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()   # no content size
    return c.compress(pcap(GOOD)) + c.flush()


@case("bomb-empty-records.pcap.bz2", "bzip2 of a pcap header and 16384 all-zero record "
      "headers: 16384 empty frames from 200 bytes", packets=16384)
def _(p):
    return bz2.compress(pcap_header() + bytes(16 * 16384), 9)


@case("bomb-zeros.pcapng.gz", "gzip of a section header followed by 64 MiB of zeros",
      packets=0, error="below the minimum")
def _(p):
    zeros = gzip.compress(bytes(1 << 20), 9, mtime=0)           # members concatenate
    return gzip.compress(shb() + bytes(1 << 20), 9, mtime=0) + zeros * 63


def _mixed_frames(n=400):
    """``n`` ordinary frames with random tails."""
    rng = rng_for("mixed")
    out = []
    for i in range(n):
        out.append(GOOD[i % 3] + rng.randbytes(rng.randint(0, 40)))
    return out


_FAST_COMPRESSORS = {
    "gz": lambda b: gzip.compress(b, 6, mtime=0),
    "bz2": lambda b: bz2.compress(b, 9),
    "xz": lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=1),
    "zst": lambda b: zstandard.ZstdCompressor(level=3).compress(b),
}

for _kind in _COMPRESSORS:
    CASES.append(Case(f"cut-mid-stream.pcap.{_kind}",
                      f"{_kind} stream of a 20000-frame capture (2 MB) cut in the middle",
                      (lambda k: lambda p: (lambda c: c[:len(c) // 2])(
                          _FAST_COMPRESSORS[k](pcap(_mixed_frames(20000)))))(_kind),
                      None, None, True, False))


@case("corrupt-middle.pcap.gz", "gzip stream with bytes flipped in the middle (what the "
      "reader sees then is not fixed: a cut-off, or a record error)", packets=None,
      error=ANY, truncated=None)
def _(p):
    data = bytearray(gzip.compress(pcap(_mixed_frames()), 9, mtime=0))
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xA5
    return bytes(data)


@case("gzip-bad-crc-after-bad-record.pcap.gz", "gzip of 1000 good records, a record "
      "claiming 16 MiB, 256 KiB of random bytes; the gzip CRC at the end is wrong", packets=1000,
      error="captured length 16777216 exceeds", truncated=None)
def _(p):
    rng = rng_for("crc")                                    # incompressible bytes
    frames = [GOOD[i % 3] + rng.randbytes(200) for i in range(1000)]
    tail = rng.randbytes(256 << 10)
    body = pcap(frames) + PCAP_RECORD.pack(T0, 0, 1 << 24, 1 << 24) + tail
    data = bytearray(gzip.compress(body, 6, mtime=0))
    data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])
    return bytes(data)


@case("zstd-skippable-4g.pcap.zst", "zstd data, then a skippable frame claiming 4 GiB that "
      "the file does not hold", packets=400, truncated=True)
def _(p):
    return (zstandard.ZstdCompressor().compress(pcap(_mixed_frames()))
            + struct.pack("<II", 0x184D2A50, 0xFFFFFFFF) + b"\x00" * 100)


@case("gzip-of-gzip.pcap.gz.gz", "a compressed capture compressed again", packets=0,
      error="not a pcap or pcapng file inside the gzip data")
def _(p):
    return gzip.compress(gzip.compress(pcap(GOOD), mtime=0), mtime=0)


# -- extension headers, tunnels, stacks ------------------------------------------

@case("ext-chains-hundreds.pcap", "IPv6 chains of hundreds of headers: 300 Destination "
      "Options, 300 Hop-by-Hop, 500 Fragment, 200 AH, random mixes of 60..1000, and 63/64/65 "
      "(the cap)", packets=14)
def _(p):
    rng = rng_for("chains")
    frames = []
    for types in ([60] * 300, [0] * 300, [44] * 500, [51] * 200, [43] * 100,
                  [60] * 63, [60] * 64, [60] * 65, [0, 60, 43, 44, 51] * 60):
        nh, body = chain(types, 58, icmp6_echo())
        frames.append(eth(ip6(body, nh)))
    for n in (60, 200, 1000):
        types = [rng.choice((0, 43, 44, 51, 60, 135, 139, 140, 253, 254)) for _ in range(n)]
        nh, body = chain(types, 6, tcp(b"", 1, 2))
        frames.append(eth(ip6(body, nh)))
    # a 300-header chain behind a declared payload length that ends early
    nh, body = chain([60] * 300, 17, udp(b"", 1, 2))
    frames.append(eth(ip6(body, nh, plen=800)))
    # and one cut by the snap length in the middle
    nh, body = chain([60] * 300, 17, udp(b"", 1, 2))
    frames.append((eth(ip6(body, nh))[:1500], 14 + 40 + len(body)))
    return pcap(frames)


def _nest(levels: int, rng: random.Random) -> bytes:
    """An Ethernet frame nesting ``levels`` encapsulations, cycling 6in4,
    GRE, VXLAN, 4in6, GTP-U, 6in6, Geneve, Teredo."""
    inner = ip6(icmp6_echo(), 58)
    fam = 6
    kinds = ("6in4", "gre", "vxlan", "4in6", "gtpu", "6in6", "geneve", "ipip")
    pkt = inner
    for i in range(levels):
        k = kinds[i % len(kinds)]
        if k == "6in4":
            pkt = ip4(pkt, 41) if fam == 6 else ip4(pkt, 4)
            fam = 4
        elif k == "gre":
            proto = 0x86DD if fam == 6 else 0x0800
            pkt = ip6(b"\x00\x00" + u16(proto) + pkt, 47)
            fam = 6
        elif k == "vxlan":
            et = 0x86DD if fam == 6 else 0x0800
            pkt = ip4(udp(b"\x08\x00\x00\x00\x00\x00\x01\x00" + eth(pkt, et), 40000, 4789), 17)
            fam = 4
        elif k == "4in6":
            pkt = ip6(pkt, 4 if fam == 4 else 41)
            fam = 6
        elif k == "gtpu":
            gtp = b"\x30\xff" + u16(len(pkt)) + u32(rng.getrandbits(32)) + pkt
            pkt = ip4(udp(gtp, 2152, 2152), 17)
            fam = 4
        elif k == "6in6":
            pkt = ip6(pkt, 41 if fam == 6 else 4)
            fam = 6
        elif k == "geneve":
            et = 0x86DD if fam == 6 else 0x0800
            pkt = ip6(udp(b"\x00\x00" + u16(et) + b"\x00\x00\x01\x00" + pkt, 40000, 6081), 17)
            fam = 6
        else:
            pkt = ip4(pkt, 41 if fam == 6 else 4)
            fam = 4
    return eth(pkt, 0x86DD if fam == 6 else 0x0800)


@case("tunnel-nesting.pcap", "encapsulations nested 0..24 deep (6in4, GRE, VXLAN, 4in6, "
      "GTP-U, 6in6, Geneve, IPIP), past the cap of 8", packets=25)
def _(p):
    rng = rng_for("nest")
    return pcap([_nest(n, rng) for n in range(25)])


@case("vlan-stacks.pcap", "802.1Q stacks of 1..5, 63, 64, 65, 100 and 1000 tags", packets=10)
def _(p):
    frames = []
    for n in (1, 2, 3, 4, 5, 63, 64, 65, 100, 1000):
        tags = b"".join(u16(0x8100 if i % 2 else 0x88A8) + u16(i) for i in range(n))
        # the ethertype after the last tag is the frame's: eth() puts the
        # first tag's TPID in the Ethernet header
        body = tags[2:] + u16(0x86DD) + ip6(icmp6_echo(), 58)
        frames.append(MAC_B + MAC_A + tags[:2] + body)
    return pcap(frames)


@case("mpls-stacks.pcap", "MPLS stacks of 1000 labels (bottom last), 1000 labels with no "
      "bottom of stack, 60000 labels", packets=3)
def _(p):
    frames = []
    label = lambda i, s: u32((i << 12) | (s << 8) | 64)            # noqa: E731
    stack = b"".join(label(i, 0) for i in range(999)) + label(999, 1)
    frames.append(eth(stack + ip6(icmp6_echo(), 58), 0x8847))
    frames.append(eth(b"".join(label(i, 0) for i in range(1000)), 0x8847))
    frames.append(eth(b"".join(label(i, 0) for i in range(60000)) + label(1, 1)
                      + ip4(b"", 59), 0x8847)[:262144])
    return pcap(frames)


# -- DNS built to loop, lie and inject ----------------------------------------------

def dns_name(name: bytes) -> bytes:
    out = b""
    for label in name.split(b"."):
        out += u8(len(label)) + label
    return out + b"\x00"


def dns_msg(ident, flags, questions=(), answers=(), qd=None, an=None, tail=b""):
    """questions: encoded names (type/class added); answers: (name bytes
    already encoded, type, rdata)."""
    body = b""
    for q, qtype in questions:
        body += q + u16(qtype) + u16(1)
    for owner, rtype, rdata in answers:
        body += owner + u16(rtype) + u16(1) + u32(60) + u16(len(rdata)) + rdata
    return (u16(ident) + u16(flags) + u16(len(questions) if qd is None else qd)
            + u16(len(answers) if an is None else an) + u16(0) + u16(0) + body + tail)


HOSTILE_NAMES = [
    b"\x1b[31mred\x1b[0m.example",
    b"\x1b]0;pwned\x07.example",
    b"\x1b[2J\x1b[H.clear.example",
    b"bell\x07\x08\x08back.example",
    b"cr\rlf\nline.example",
    b"nul\x00byte.example",
    b"tab\there.example",
    b"c1\x9b31mcsi.example",
    b"\xc3\xa9t\xc3\xa9.latin1.example",
    b"high\xff\xfe\x80.example",
    b"=cmd|' /C calc'!A0.example",
    b"+1+1.example",
    b"-2+3.example",
    b"@SUM(1+1).example",
    b"=HYPERLINK(\"http://evil\").example",
    b"\t=1+1.example",
    b"\r=1+1.example",
    b" =1+1.example",
    b"x" * 63 + b"." + b"y" * 63 + b"." + b"z" * 63 + b"." + b"w" * 61,   # 255 octets
]


def dns_frames(v6: bool, msg: bytes, to_resolver=False, over_tcp=False):
    resolver, client = (RESOLVER6, V6_A) if v6 else (RESOLVER4, V4_A)
    src, dst = (client, resolver) if to_resolver else (resolver, client)
    sport, dport = (40000, 53) if to_resolver else (53, 40000)
    l4 = tcp(msg, sport, dport) if over_tcp else udp(msg, sport, dport)
    proto = 6 if over_tcp else 17
    if v6:
        return eth(ip6(l4, proto, src, dst))
    return eth(ip4(l4, proto, src, dst), 0x0800)


@case("dns-hostile.pcap", "DNS with pointer loops, lying counts, names with ANSI escapes, "
      "control characters, bytes above 0x7f and spreadsheet formulas, CNAME loops, TCP "
      "segments of 600 messages", packets=79)
def _(p):
    frames = []
    a4 = bytes([203, 0, 113, 9])
    for i, name in enumerate(HOSTILE_NAMES):
        q = dns_name(name)
        qp = u16(0xC00C)                                       # pointer to the question
        frames.append(dns_frames(i % 2 == 0, dns_msg(i, 0x0100, [(q, 1)]), to_resolver=True))
        frames.append(dns_frames(i % 2 == 0, dns_msg(i, 0x8180, [(q, 1)], [(qp, 1, a4)])))
        frames.append(dns_frames(i % 2 == 1, dns_msg(i, 0x8180, [(q, 28)],
                                                     [(qp, 28, V6_B[:15] + u8(i))])))
    # pointer loops: to itself, forward, ping-pong, a chain of 40 backward pointers
    loops = [
        dns_msg(1, 0x8180, qd=1, tail=u16(0xC00C) + u16(1) + u16(1)),
        dns_msg(2, 0x8180, qd=1, tail=u16(0xC00E) + u16(0xC00C) + u16(1) + u16(1)),
        dns_msg(3, 0x8180, qd=1, tail=b"\x01a" + u16(0xC00C) + u16(1) + u16(1)),
        # 40 questions, each name a pointer to the one before: 40 jumps
        dns_msg(4, 0x8180, qd=41, tail=b"\x00" + u16(1) + u16(1) + b"".join(
            u16(0xC000 | (12 if k == 0 else 17 + 6 * (k - 1))) + u16(1) + u16(1)
            for k in range(40))),
        dns_msg(5, 0x8180, qd=1, tail=u16(0xFFFF) + u16(1) + u16(1)),
    ]
    # lying counts and lengths
    q = dns_name(b"liar.example")
    lies = [
        dns_msg(6, 0x8180, [(q, 1)], qd=0xFFFF),
        dns_msg(7, 0x8180, [(q, 1)], [(u16(0xC00C), 1, a4)], an=0xFFFF),
        dns_msg(8, 0x8180, [(q, 1)], an=1,
                tail=u16(0xC00C) + u16(1) + u16(1) + u32(1) + u16(0xFFFF)),
        dns_msg(9, 0x8180, qd=1, tail=b"\x3f" + b"a" * 10),
        dns_msg(10, 0x8180, qd=1, tail=b"\x40abc\x00" + u16(1) + u16(1)),
        dns_msg(11, 0x8180, qd=1, tail=b"\x80abc\x00" + u16(1) + u16(1)),
        dns_msg(12, 0x8180, qd=1, tail=(b"\x3f" + b"a" * 63) * 5 + b"\x00" + u16(1) + u16(1)),
        dns_msg(13, 0x8180, [(q, 1)], [(u16(0xC00C), 1, b"\x01\x02")]),
        dns_msg(14, 0x8180, [(q, 28)], [(u16(0xC00C), 28, b"\x01" * 4)]),
        dns_msg(15, 0x8180, [(q, 5)], [(u16(0xC00C), 5, u16(0xC00C))]),      # CNAME to itself
        b"",
        b"\x00" * 11,
        dns_msg(18, 0x8180, qd=1, tail=b"\x06dot.in\x05label\x00" + u16(1) + u16(1)),
    ]
    # CNAME loop a -> b -> a with an A at the end
    qa, qb = dns_name(b"a.loop.example"), dns_name(b"b.loop.example")
    lies.append(dns_msg(16, 0x8180, [(qa, 1)], [(qa, 5, qb), (qb, 5, qa), (qb, 1, a4)]))
    for i, m in enumerate(loops + lies):
        frames.append(dns_frames(i % 2 == 0, m))
    # TCP: a segment of 600 tiny length-prefixed messages, and length 0
    tiny = dns_msg(1, 0x8180, [(dns_name(b"t.example"), 1)])
    frames.append(dns_frames(True, (u16(len(tiny)) + tiny) * 600, over_tcp=True))
    frames.append(dns_frames(False, u16(0) + tiny, over_tcp=True))
    # and a 65000-byte DNS message in one datagram
    big = dns_msg(17, 0x8180, [(q, 1)], [(u16(0xC00C), 1, a4)] * 4000)
    frames.append(dns_frames(True, big[:65000]))
    return pcap(frames)


@case("dns-tcp-pipelined.pcap", "a TCP segment from a resolver holding an answerless "
      "response, then a AAAA answer that a DNS64 synthesized from an A seen over UDP",
      packets=2)
def _(p):
    name = dns_name(b"pipe.example")
    a = dns_msg(1, 0x8180, [(name, 1)], [(u16(0xC00C), 1, bytes([192, 0, 2, 1]))])
    nodata = dns_msg(2, 0x8180, [(dns_name(b"other.example"), 28)])
    aaaa = dns_msg(3, 0x8180, [(name, 28)],
                   [(u16(0xC00C), 28, bytes.fromhex("0064ff9b0000000000000000c0000201"))])
    segment = u16(len(nodata)) + nodata + u16(len(aaaa)) + aaaa
    return pcap([dns_frames(False, a), dns_frames(True, segment, over_tcp=True)])


@case("dns-random-names.pcap", "5000 DNS responses, each for a different random name "
      "(state keyed by attacker-chosen names)", packets=5000)
def _(p):
    rng = rng_for("names")
    frames = []
    for i in range(5000):
        name = rng.randbytes(rng.randint(1, 30)).replace(b".", b"_") + b".example"
        q = dns_name(name)
        m = dns_msg(i, 0x8180, [(q, 28)], [(u16(0xC00C), 28, rng.randbytes(16))])
        frames.append(dns_frames(True, m))
    return pcap(frames)


# -- ND, header lengths -----------------------------------------------------------

def ra(options: bytes) -> bytes:
    return b"\x86\x00\x00\x00\x40\x00\x07\x08" + bytes(8) + options


def pref64(plc: int, prefix: bytes, lifetime=1800 // 8):
    """RFC 8781 PREF64 option: type 38, length 2 (16 bytes), scaled
    lifetime (13 bits) and prefix length code (3 bits), 96 prefix bits."""
    return u8(38) + u8(2) + u16((lifetime << 3) | plc) + prefix[:12]


@case("ra-pref64-hostile.pcap", "Router Advertisements with zero-length options, PREF64 of "
      "length 0 and 1 (8 bytes), prefix length codes 6 and 7, 4000 valid PREF64 options in one "
      "RA is left to the memory script", packets=7)
def _(p):
    nat = bytes.fromhex("20010db8006400000000000000000000")
    frames = []
    for options in (
        u8(1) + u8(0) + bytes(6),                            # source link-layer, length 0
        u8(38) + u8(0) + bytes(14),                          # PREF64, length 0
        u8(38) + u8(1) + bytes(6),                           # PREF64, length 1 (8 bytes)
        pref64(6, nat) + pref64(7, nat),                     # reserved length codes
        pref64(0, nat) + pref64(1, nat) + pref64(5, nat),    # three valid ones
        pref64(0, nat)[:10],                                 # cut inside the option
        u8(38) + u8(255) + bytes(30),                        # length past the packet
    ):
        frames.append(eth(ip6(ra(options), 58, V6_LL, V6_ALL_NODES, hlim=255)))
    return pcap(frames)


@case("ipv6-plen-ffff-tiny.pcap", "IPv6 payload length 0xffff on 54- and 62-byte Ethernet "
      "frames, for seven next headers", packets=14)
def _(p):
    frames = []
    for nh in (58, 6, 17, 0, 44, 41, 59):
        pkt = ip6(b"\x00" * 8, nh, plen=0xFFFF)
        frames += [eth(pkt), eth(pkt[:40])]
    return pcap(frames)


@case("ipv6-plen-ffff-raw.pcap", "IPv6 payload length 0xffff, raw link type", packets=7)
def _(p):
    return pcap([ip6(b"\x00" * k, 0, plen=0xFFFF) for k in range(7)], linktype=101)


@case("ipv6-plen-ffff-229.pcap", "IPv6 payload length 0xffff, LINKTYPE_IPV6", packets=7)
def _(p):
    return pcap([ip6(b"\x11" * k, 17, plen=0xFFFF) for k in range(7)], linktype=229)


@case("ipv4-ihl-lies.pcap", "IPv4 IHL 15 on a 20-byte frame, IHL 0..4, total length 0..19 and "
      "0xffff", packets=29)
def _(p):
    frames = []
    base = ip4(b"", 6)
    for ihl in (15, 0, 1, 2, 3, 4, 6):
        hdr = bytearray(base)
        hdr[0] = 0x40 | ihl
        frames.append(eth(bytes(hdr), 0x0800))
    for tot in list(range(20)) + [0xFFFF]:
        frames.append(eth(ip4(b"\x00" * 8, 17, tot=tot), 0x0800))
    frames.append(eth(ip4(b"", 41, ihl=15)[:24], 0x0800))
    return pcap(frames)


# -- every link type: tiny frames and random bytes --------------------------------------

def _valid_frame(lt: int) -> bytes:
    """A plausible IPv6 (or IPv4 for 228) frame of link type ``lt``."""
    v6 = ip6(udp(b"hello", 1234, 53), 17)
    v4 = ip4(udp(b"hello", 1234, 53), 17)
    if lt == 0:
        return struct.pack("<I", 30) + v6
    if lt == 108:
        return struct.pack(">I", 24) + v6
    if lt == 1:
        return eth(v6)
    if lt in (9, 50):
        return b"\xff\x03\x00\x57" + v6
    if lt in (12, 14, 101, 229):
        return v6
    if lt == 228:
        return v4
    if lt == 104:
        return b"\x0f\x00\x86\xdd" + v6
    if lt == 107:
        return b"\x18\x41\x03\x8e" + v6
    if lt == 113:
        return b"\x00\x00\x00\x01\x00\x06" + MAC_A + b"\x00\x00\x86\xdd" + v6
    if lt == 276:
        return b"\x86\xdd\x00\x00\x00\x00\x00\x02\x00\x01\x06" + b"\x00" + MAC_A + b"\x00\x00" + v6
    wifi = b"\x08\x01" + bytes(22) + b"\xaa\xaa\x03\x00\x00\x00\x86\xdd" + v6
    if lt == 105:
        return wifi
    if lt == 127:
        return b"\x00\x00\x08\x00\x00\x00\x00\x00" + wifi
    return v6


for _lt in ALL_LINKTYPES:
    CASES.append(Case(
        f"tiny-frames-lt{_lt}.pcap",
        f"link type {_lt}: frames of length 0..80 bytes (every prefix of a valid frame), and "
        f"length-0 and -1 frames claiming 1500 bytes on the wire",
        (lambda lt: lambda p: pcap([_valid_frame(lt)[:k] for k in range(81)]
                                   + [(b"", 1500), (b"\x60", 1500)], linktype=lt))(_lt),
        83, None, False, False))
    CASES.append(Case(
        f"random-bytes-lt{_lt}.pcap",
        f"link type {_lt}: 600 frames of random bytes, half behind a valid link header and a "
        f"first byte 0x45/0x60",
        (lambda lt: lambda p: _random_frames(lt))(_lt),
        600, None, False, False))


def _random_frames(lt: int) -> bytes:
    rng = rng_for(f"random-{lt}")
    valid = _valid_frame(lt)
    head = len(valid) - 53 if lt != 228 else 0     # where the IP header starts
    frames = []
    for i in range(600):
        body = rng.randbytes(rng.choice((0, 1, 2, 7, 20, 39, 40, 41, 60, 200, 1500)))
        if i % 2:
            if body:
                body = bytes([rng.choice((0x45, 0x4F, 0x60, 0x6F, 0x46))]) + body[1:]
            body = valid[:max(head, 0)] + body
        frames.append(body)
    return pcap(frames, linktype=lt)


@case("every-linktype.pcapng", "one interface per link type (and an unknown one) with tiny "
      "and random frames on each", packets=len(ALL_LINKTYPES) * 40)
def _(p):
    rng = rng_for("every")
    out = [shb()] + [idb(lt) for lt in ALL_LINKTYPES]
    for i, lt in enumerate(ALL_LINKTYPES):
        valid = _valid_frame(lt)
        for k in range(20):
            out.append(epb(i, valid[:k]))
        for k in range(20):
            out.append(epb(i, rng.randbytes(rng.randint(0, 100))))
    return b"".join(out)


# -- encapsulation oddities ---------------------------------------------------------------

@case("tunnel-header-lies.pcap", "tunnel headers whose length fields point far away: AYIYA "
      "identity 2**15, L2TP offset 0xffff, GTP-U with 16 and 17 extension headers, Geneve "
      "options 252 bytes, GRE with every flag, ERSPAN III cut, Teredo authentication lengths "
      "255, Teredo origin indication and a bare IPv6 header in UDP", packets=11)
def _(p):
    v6 = ip6(icmp6_echo(), 58)
    frames = []
    frames.append(eth(ip4(udp(b"\xf0\x00\x00\x29" + bytes(4) + v6, 5072, 5072), 17), 0x0800))
    frames.append(eth(ip4(udp(b"\x02\x02" + bytes(4) + b"\xff\xff" + b"\xff\x03\x00\x57" + v6,
                              1701, 1701), 17), 0x0800))
    gtp_ext = b"".join(b"\x01" + b"\x00\x00" + (b"\x85" if k < 15 else b"\x00") for k in range(16))
    frames.append(eth(ip4(udp(b"\x34\xff" + u16(0) + u32(1) + b"\x00\x00\x00\x85" + gtp_ext + v6,
                              2152, 2152), 17), 0x0800))
    gtp_ext17 = b"".join(b"\x01\x00\x00\x85" for _ in range(17))
    frames.append(eth(ip4(udp(b"\x34\xff" + u16(0) + u32(1) + b"\x00\x00\x00\x85" + gtp_ext17
                              + v6, 2152, 2152), 17), 0x0800))
    frames.append(eth(ip6(udp(b"\x3f\x00\x86\xdd" + bytes(4) + v6, 1, 6081), 17)))
    frames.append(eth(ip4(b"\xb0\x00\x86\xdd" + bytes(12) + v6, 47), 0x0800))
    frames.append(eth(ip4(b"\x10\x00\x22\xeb" + bytes(4) + bytes(5), 47), 0x0800))
    frames.append(eth(ip4(b"\x30\x81\x88\x0b" + b"\x00\x10\x00\x01" + u32(1) + u32(2)
                          + b"\xff\x03\x00\x57" + v6, 47), 0x0800))
    frames.append(eth(ip4(udp(b"\x00\x01\xff\xff" + bytes(40) + v6, 3544, 3544), 17), 0x0800))
    frames.append(eth(ip4(udp(b"\x00\x00" + bytes(6) + v6, 3544, 40000), 17), 0x0800))
    frames.append(eth(ip4(udp(v6[:40] + bytes(3), 40000, 40000), 17), 0x0800))
    return pcap(frames)


@case("radiotap-lies.pcap", "radiotap header lengths 0xffff, 7, 0, 8; 802.11 QoS+HTC data "
      "frames cut short", packets=6)
def _(p):
    v6 = ip6(icmp6_echo(), 58)
    wifi = b"\x88\x83" + bytes(28) + b"\x00\x00" + b"\x00\x00\x00\x00" + \
        b"\xaa\xaa\x03\x00\x00\x00\x86\xdd" + v6
    frames = [b"\x00\x00\xff\xff" + bytes(20), b"\x00\x00\x07\x00" + bytes(20),
              b"\x00\x00\x00\x00" + bytes(20), b"\x00\x00\x08\x00" + bytes(4) + wifi,
              b"\x00\x00\x08\x00" + bytes(4) + wifi[:30],
              b"\x00\x00\x08\x00" + bytes(4) + wifi[:37]]
    return pcap(frames, linktype=127)


@case("fragments-hostile.pcap", "first fragments whose chain runs past the declared length, "
      "atomic fragments, fragment offset 8191 with M set, 200 fragment headers", packets=5)
def _(p):
    frames = []
    nh, body = chain([0, 44, 60], 6, tcp(b"", 1, 2))
    frames.append(eth(ip6(body, nh, plen=20)))
    frames.append(eth(ip6(frag_hdr(17, 0, 0) + udp(b"x", 1, 2), 44)))
    frames.append(eth(ip6(frag_hdr(6, 8191, 1) + b"\x00" * 16, 44)))
    frames.append(eth(ip6(b"".join(frag_hdr(44, 0, 1) for _ in range(199)) + frag_hdr(59), 44)))
    frames.append(eth(ip4(b"\x00" * 30, 17, frag=0x1FFF), 0x0800))
    return pcap(frames)


@case("random-addresses.pcap", "20000 frames with random IPv6 source and destination (a tenth "
      "through 64:ff9b::/96 with random clients and IPv4 destinations), random extension "
      "chains of 0..12 headers", packets=20000)
def _(p):
    return random_address_capture(20000, seed=1)


def random_address_capture(n: int, seed: int = 1, ts_spread: bool = False):
    """A pcap of ``n`` IPv6 frames of random addresses and random chains;
    ``ts_spread``: every frame in a time bin of its own."""
    rng = random.Random(seed)
    wkp = bytes.fromhex("0064ff9b0000000000000000")
    out = [pcap_header()]
    for i in range(n):
        src = rng.randbytes(16)
        dst = rng.randbytes(16) if i % 10 else wkp + rng.randbytes(4)
        types = [rng.choice((0, 43, 44, 51, 60, 135, 139, 140, 253, 254))
                 for _ in range(rng.choice((0, 0, 0, 1, 2, 3, 5, 8, 12)))]
        nh, body = chain(types, rng.choice((6, 17, 58, 59)), rng.randbytes(rng.randint(0, 24)))
        frame = eth(ip6(body, nh, src, dst))
        ts = i * 61 if ts_spread else i // 100
        out.append(PCAP_RECORD.pack(T0 + ts, 0, len(frame), len(frame)) + frame)
    return b"".join(out)


# -- sFlow v5 datagrams (analyze --sflow) -----------------------------------------
# Each file is a valid pcap of UDP datagrams to port 6343; what lies is the
# sFlow inside. SFLOW_EXPECT says what `analyze --sflow` must count, known by
# construction: samples kept, bad datagrams by reason, bad samples, skipped.

SFLOW_PORT = 6343
AGENT = bytes([192, 0, 2, 9])
SFLOW_EXPECT: dict = {}


def sflow_header_record(frame, proto=1, frame_length=None, stripped=4, hlen=None, length=None):
    """A raw packet header flow record (format 1) holding ``frame``."""
    fl = len(frame) + stripped if frame_length is None else frame_length
    body = u32(proto) + u32(fl) + u32(stripped) + u32(len(frame) if hlen is None else hlen) \
        + pad4(frame)
    return u32(1) + u32(len(body) if length is None else length) + body


def sflow_flow_sample(records, seq=1, source=(0, 1), rate=1, pool=0, expanded=False,
                      nrec=None, length=None, fmt=None):
    """A flow sample (format 1) or an expanded flow sample (format 3)."""
    n = len(records) if nrec is None else nrec
    if expanded:
        head = (u32(seq) + u32(source[0]) + u32(source[1]) + u32(rate) + u32(pool) + u32(0)
                + u32(0) + u32(1) + u32(0) + u32(2) + u32(n))
    else:
        head = (u32(seq) + u32((source[0] << 24) | source[1]) + u32(rate) + u32(pool) + u32(0)
                + u32(1) + u32(2) + u32(n))
    body = head + b"".join(records)
    return u32(fmt if fmt is not None else 3 if expanded else 1) \
        + u32(len(body) if length is None else length) + body


def sflow_datagram(samples, seq=1, agent=AGENT, sub_agent=0, count=None, version=5):
    kind = 1 if len(agent) == 4 else 2
    return (u32(version) + u32(kind) + agent + u32(sub_agent) + u32(seq) + u32(1000)
            + u32(len(samples) if count is None else count) + b"".join(samples))


def sflow_capture(datagrams, caplen=None):
    """A pcap of ``datagrams`` sent over IPv4/UDP to port 6343."""
    frames = []
    for d in datagrams:
        f = eth(ip4(udp(d, 50000, SFLOW_PORT), 17), 0x0800)
        frames.append((f[:caplen], len(f)) if caplen else f)
    return pcap(frames)


SAMPLED = eth(ip6(icmp6_echo(), 58))                      # 62 bytes: never cut
SAMPLED4 = eth(ip4(udp(b"x" * 20, 5000, 53), 17), 0x0800)


def _good(seq=1, rate=10):
    return sflow_datagram([sflow_flow_sample([sflow_header_record(SAMPLED)], seq=seq,
                                             rate=rate)], seq=seq)


def sflow_case(name, what, expect):
    SFLOW_EXPECT[name] = expect
    return case(name, what, packets=None)


@sflow_case("sflow-bad-version.pcap", "a version 4 datagram between good ones",
            {"samples": 2, "bad": {"bad_version": 1}})
def _(p):
    return sflow_capture([_good(1), sflow_datagram([], version=4), _good(2)])


@sflow_case("sflow-sample-count-2pow32.pcap", "a datagram claiming 2**32-1 samples",
            {"samples": 1, "bad": {"bad_sample_count": 1}})
def _(p):
    return sflow_capture([_good(1), sflow_datagram([], seq=2, count=0xFFFFFFFF)])


@sflow_case("sflow-sample-length-lie.pcap", "a sample whose length runs 2 GiB past the end "
            "after a good sample", {"samples": 1, "bad": {"bad_sample_length": 1}})
def _(p):
    good = sflow_flow_sample([sflow_header_record(SAMPLED)], rate=10)
    bad = sflow_flow_sample([sflow_header_record(SAMPLED)], seq=2, length=1 << 31)
    return sflow_capture([sflow_datagram([good, bad])])


@sflow_case("sflow-records-past-end.pcap", "a flow sample whose record count and record "
            "length run past the sample", {"samples": 1, "bad_samples": 2})
def _(p):
    rec = sflow_header_record(SAMPLED)
    return sflow_capture([sflow_datagram([
        sflow_flow_sample([rec], nrec=1000),
        sflow_flow_sample([rec[:4] + u32(0x7FFFFFF0) + rec[8:]], seq=2),
        sflow_flow_sample([rec], seq=3, rate=10)])])


@sflow_case("sflow-header-length-lie.pcap", "header records whose header length, "
            "frame_length or stripped lie", {"samples": 1, "bad_samples": 4})
def _(p):
    return sflow_capture([sflow_datagram([
        sflow_flow_sample([sflow_header_record(SAMPLED, hlen=4000)]),
        sflow_flow_sample([sflow_header_record(SAMPLED, frame_length=0xFFFFFFFF)], seq=2),
        sflow_flow_sample([sflow_header_record(SAMPLED, frame_length=10, stripped=20)], seq=3),
        sflow_flow_sample([sflow_header_record(SAMPLED)], seq=4, rate=0),
        sflow_flow_sample([sflow_header_record(SAMPLED)], seq=5, rate=7)])])


@sflow_case("sflow-skipped.pcap", "counter samples, enterprise samples and records, "
            "discard samples, an unknown header protocol, a second header record",
            {"samples": 2, "skipped": {"counter_samples": 2, "discard_samples": 1,
                                       "enterprise_samples": 1, "enterprise_records": 1,
                                       "other_header_protocols": 1, "other_records": 1,
                                       "extra_header_records": 1,
                                       "samples_without_header": 1}})
def _(p):
    rec = sflow_header_record(SAMPLED)
    other = u32(1001) + u32(16) + b"\x00" * 16                # extended switch data
    ent = u32((4300 << 12) | 7) + u32(8) + b"\x00" * 8
    return sflow_capture([sflow_datagram([
        u32(2) + u32(8) + b"\x00" * 8,                        # counter sample
        u32(4) + u32(4) + b"\x00" * 4,                        # expanded counter sample
        u32(5) + u32(4) + b"\x00" * 4,                        # discard
        u32((4300 << 12) | 1) + u32(4) + b"\x00" * 4,         # enterprise sample
        sflow_flow_sample([other, ent, rec, rec], rate=3),
        sflow_flow_sample([sflow_header_record(SAMPLED, proto=4)], seq=2),
        sflow_flow_sample([rec], seq=3, rate=5, expanded=True)])])


@sflow_case("sflow-carrier-cut.pcap", "datagrams cut by the capture's snap length in "
            "their second sample", {"samples": 2, "bad": {"cut_by_capture": 2}})
def _(p):
    two = [sflow_datagram([sflow_flow_sample([sflow_header_record(SAMPLED)], rate=2),
                           sflow_flow_sample([sflow_header_record(SAMPLED)], seq=2)], seq=s)
           for s in (1, 2)]
    return sflow_capture(two, caplen=14 + 20 + 8 + 28 + 100 + 40)


@sflow_case("sflow-sequence-gaps.pcap", "datagram sequence 1, 2, 6, 3 (3 lost, 1 reset)",
            {"samples": 4, "lost_datagrams": 3, "sequence_resets": 1})
def _(p):
    return sflow_capture([_good(s) for s in (1, 2, 6, 3)])


@sflow_case("sflow-many-agents.pcap", "5000 agents, one datagram each",
            {"samples": 5000, "agents": 1025})
def _(p):
    return sflow_capture([sflow_datagram([sflow_flow_sample([sflow_header_record(SAMPLED)])],
                                         agent=u32(0x0A000000 + i)) for i in range(5000)])


@sflow_case("sflow-many-sources-rates.pcap", "one agent, 2000 sources and 100 rates",
            {"samples": 2100})
def _(p):
    rec = sflow_header_record(SAMPLED)
    out = [sflow_datagram([sflow_flow_sample([rec], source=(0, i), seq=1)], seq=i + 1)
           for i in range(2000)]
    out += [sflow_datagram([sflow_flow_sample([rec], source=(0, 1), seq=2 + i, rate=i + 1)],
                           seq=2001 + i) for i in range(100)]
    return sflow_capture(out)


@sflow_case("sflow-distinct-rates.pcap", "8,800 samples, each at a rate of its own",
            {"samples": 8800})
def _(p):
    rec = sflow_header_record(SAMPLED)
    return sflow_capture([sflow_datagram([sflow_flow_sample([rec], seq=8 * i + j + 1,
                                                            rate=8 * i + j + 1)
                                          for j in range(8)], seq=i + 1)
                          for i in range(1100)])


@sflow_case("sflow-random.pcap", "500 datagrams of random bytes after a version 5 header", {})
def _(p):
    rng = rng_for("sflow-random")
    return sflow_capture([u32(5) + u32(rng.choice((1, 2, 3))) + rng.randbytes(rng.randint(0, 300))
                          for _ in range(500)])


# ---------------------------------------------------------------------------

def names(include_big: bool = True) -> list[str]:
    return [c.name for c in CASES if include_big or not c.big]


def build(out: Path, bomb_mb: int = 64, only=None, include_big: bool = True) -> dict:
    """Write the corpus into ``out``; return the manifest {name: entry}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = {"bomb_mb": bomb_mb}
    manifest = {}
    for c in CASES:
        if (only is not None and c.name not in only) or (c.big and not include_big):
            continue
        data = c.build(params)
        (out / c.name).write_bytes(data)
        packets = c.packets
        if packets == -1:                        # the bombs: known from --bomb-mb
            packets = _bomb_packets(params)
        manifest[c.name] = {"what": c.what, "packets": packets, "error": c.error,
                            "truncated": c.truncated, "big": c.big, "bytes": len(data)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--bomb-mb", type=int, default=64,
                    help="MiB each decompression bomb expands to (default 64)")
    ap.add_argument("--only", action="append", help="only this file (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the files and what they show")
    args = ap.parse_args(argv)
    if args.list:
        for c in CASES:
            print(f"{c.name}\n    {c.what}")
        return
    manifest = build(args.out, args.bomb_mb, args.only)
    total = sum(e["bytes"] for e in manifest.values())
    print(f"{len(manifest)} files, {total / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
