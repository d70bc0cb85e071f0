"""Tests of ipv6flow.capture: real captures, synthetic round trips, bad input.

The synthetic captures are written here with plain ``struct`` code, field by
field from pcap-savefile(5) and draft-ietf-opsawg-pcapng, independently of
the reader under test.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import random
import re
import struct
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipv6flow.capture import Batch, Capture, Record, open_capture
from ipv6flow.capture import gzipstream as gzip_impl
from ipv6flow.capture import pcap as pcap_mod
from ipv6flow.capture import source
from ipv6flow.capture.source import _ZstdFrames
from ipv6flow.errors import CaptureError

from conftest import CAPTURES, need_module, need_speedups

MANIFEST = CAPTURES / "MANIFEST.tsv"
REPO = Path(__file__).resolve().parents[1]

# capinfos encapsulation names (MANIFEST link_types) -> LINKTYPE_* values.
LINKTYPE_BY_NAME = {
    "null": 0, "ether": 1, "ppp": 9, "rawip": 101, "chdlc": 104, "frelay": 107,
    "linux-sll": 113, "ieee-802-11-radiotap": 127, "rawip4": 228, "rawip6": 229,
    "linux-sll2": 276,
}

needs_corpus = pytest.mark.usefixtures("corpus")


def manifest_rows() -> list[dict]:
    if not MANIFEST.exists():
        return []
    with open(MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = manifest_rows()
READABLE = [r for r in ROWS if r["packets"].isdigit()]
UNREADABLE = [r for r in ROWS if r["link_types"] == "unreadable"]
CUT_SHORT = [r for r in ROWS if "read error" in r["link_types"]]


def read_all(path) -> tuple[Capture, list[Record]]:
    with open_capture(path) as cap:
        return cap, list(cap)


# ---------------------------------------------------------------------------
# Writers for synthetic captures
# ---------------------------------------------------------------------------

def pcap_header(order="<", nsec=False, linktype=1, snaplen=65535, version=(2, 4),
                magic=None) -> bytes:
    if magic is None:
        magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    return struct.pack(order + "IHHiIII", magic, version[0], version[1], 0, 0,
                       snaplen, linktype)


def pcap_record(order, sec, frac, data, wirelen=None) -> bytes:
    wirelen = len(data) if wirelen is None else wirelen
    return struct.pack(order + "IIII", sec, frac, len(data), wirelen) + data


def pcap_file(records, order="<", nsec=False, **header) -> bytes:
    """records: (sec, frac, data, wirelen) tuples."""
    return pcap_header(order, nsec, **header) + b"".join(
        pcap_record(order, s, f, d, w) for s, f, d, w in records)


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(order, btype, body) -> bytes:
    body = pad4(body)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def option(order, code, value) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + pad4(value)


def options(order, *opts) -> bytes:
    if not opts:
        return b""
    return b"".join(opts) + struct.pack(order + "HH", 0, 0)


def shb(order, *opts, version=(1, 0)) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, version[0], version[1], -1)
    return block(order, 0x0A0D0D0A, body + options(order, *opts))


def idb(order, linktype, snaplen=0, tsresol=None, tsoffset=None) -> bytes:
    opts = []
    if tsresol is not None:
        opts.append(option(order, 9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append(option(order, 14, struct.pack(order + "q", tsoffset)))
    body = struct.pack(order + "HHI", linktype, 0, snaplen)
    return block(order, 1, body + options(order, *opts))


def epb(order, iface, units, data, wirelen=None, *opts) -> bytes:
    wirelen = len(data) if wirelen is None else wirelen
    body = struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF,
                       len(data), wirelen) + pad4(data)
    return block(order, 6, body + options(order, *opts))


def pb(order, iface, units, data, wirelen=None) -> bytes:
    wirelen = len(data) if wirelen is None else wirelen
    body = struct.pack(order + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF,
                       len(data), wirelen) + pad4(data)
    return block(order, 2, body)


def spb(order, data, wirelen=None) -> bytes:
    wirelen = len(data) if wirelen is None else wirelen
    return block(order, 3, struct.pack(order + "I", wirelen) + data)


def write(tmp_path, name, data) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def payload(i: int, size: int) -> bytes:
    return bytes((i + k) & 0xFF for k in range(size))


# ---------------------------------------------------------------------------
# The real captures of the corpus
# ---------------------------------------------------------------------------

@needs_corpus
@pytest.mark.parametrize("row", READABLE, ids=[r["file"] for r in READABLE])
def test_manifest_capture_reads(row):
    path = CAPTURES / row["file"]
    cap, records = read_all(path)
    assert len(records) == int(row["packets"])
    names = row["link_types"].split(" (")[0].removeprefix("per-packet:").split(",")
    assert cap.linktypes == [LINKTYPE_BY_NAME[n] for n in names]
    assert {r.linktype for r in records} <= set(cap.linktypes)
    assert cap.packets == len(records)
    suffix = Path(row["file"]).suffix
    assert cap.compression == {".gz": "gzip", ".zst": "zstd"}.get(suffix)
    raw = path.read_bytes()
    if suffix == ".gz":
        raw = gzip.decompress(raw)
    elif suffix == ".zst":
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    # some pcapng files are named .pcap upstream
    assert cap.format == ("pcapng" if raw[:4] == b"\n\r\r\n" else "pcap")
    cut_short = "read error" in row["link_types"]
    assert cap.truncated == cut_short
    assert len(cap.warnings) == int(cut_short)
    assert cap.bytes_read == int(row["bytes"])


@needs_corpus
@pytest.mark.parametrize("row", UNREADABLE, ids=[r["file"] for r in UNREADABLE])
def test_manifest_unreadable(row):
    path = CAPTURES / row["file"]
    with pytest.raises(CaptureError) as info:
        read_all(path)
    assert info.value.path == str(path)
    assert "\n" not in info.value.message


@needs_corpus
def test_unreadable_messages():
    with pytest.raises(CaptureError, match=r"unsupported pcap version 1\.4"):
        open_capture(CAPTURES / "libpcap/pcap-invalid-version-1.pcap")
    # The SHB says 52 bytes; its trailing copy (and its first option
    # length) are 0x3030..., ASCII "0000".
    with pytest.raises(CaptureError, match="section header block at byte offset 0: "
                                           "trailing total length 808464432"):
        open_capture(CAPTURES / "libpcap/shb-option-too-long.pcapng")


@needs_corpus
@pytest.mark.parametrize("row", CUT_SHORT, ids=[r["file"] for r in CUT_SHORT])
def test_manifest_cut_short(row):
    # Both end inside the header of record 2 (hexdump: 7 and 2 bytes left
    # after record 1), so they are truncations, not errors.
    cap, records = read_all(CAPTURES / row["file"])
    assert len(records) == 1
    assert cap.truncated
    assert len(cap.warnings) == 1
    assert "record 2" in cap.warnings[0]
    assert "file ends inside the record header" in cap.warnings[0]


@needs_corpus
def test_old_version_lengths_swapped():
    # fuzz-2021-10-13.pcap is pcap 2.0: caplen and len are stored the other
    # way round (libpcap's "lengths_swapped"); tshark reads 197 / 524501.
    cap, records = read_all(CAPTURES / "nDPI/fuzz-2021-10-13.pcap")
    assert (len(records[0].data), records[0].wirelen) == (197, 524501)
    assert records[0].linktype == 0  # header field 0x40000000: FCS bits masked


@needs_corpus
def test_caplen_above_snaplen_is_accepted():
    # Real captures whose records are longer than the header's snaplen;
    # libpcap and Wireshark read them (see capture/pcap.py).
    _, records = read_all(CAPTURES / "zeek/trunc-hdr.pcap")
    assert [(len(r.data), r.wirelen) for r in records] == [(8, 78)]
    _, records = read_all(CAPTURES / "tcpdump/ipv6_missing_jumbo_payload_option.pcap")
    assert [(len(r.data), r.wirelen) for r in records] == [(198, 262144)]


@needs_corpus
@pytest.mark.usefixtures("capinfos")
def test_against_capinfos():
    files = [r["file"] for r in READABLE]
    out = subprocess.run(["capinfos", "-T", "-m", "-r", "-c", "-d", *files], cwd=CAPTURES,
                         capture_output=True, text=True).stdout
    seen = 0
    for line in out.splitlines():
        name, packets, data_size = line.rsplit(",", 2)
        _, records = read_all(CAPTURES / name)
        assert (len(records), sum(r.wirelen for r in records)) == \
            (int(packets), int(data_size)), name
        seen += 1
    assert seen == len(files)


TSHARK_FILES = [r["file"] for r in READABLE if ".pcapng" in r["file"]] + [
    "zeek/linux_dlt_sll2.pcap", "PcapPlusPlus/tls2.pcap", "dpkt/truncated_dns_2.pcap",
    "tcpdump/ipv6_mobility_1.pcap", "zeek/mpls-6in6-broken.pcap.gz"]


@needs_corpus
@pytest.mark.usefixtures("tshark")
@pytest.mark.parametrize("name", TSHARK_FILES)
def test_against_tshark(name):
    out = subprocess.run(
        ["tshark", "-r", name, "-T", "fields", "-e", "frame.encap_type",
         "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len"],
        cwd=CAPTURES, capture_output=True, text=True).stdout
    # tshark also shows some non-packet pcapng blocks as frames without an
    # encapsulation; those are not records.
    rows = [line.split("\t") for line in out.splitlines()]
    rows = [row for row in rows if row[0]]
    _, records = read_all(CAPTURES / name)
    assert len(records) == len(rows)
    for record, (_encap, ts, caplen, wirelen) in zip(records, rows):
        assert (len(record.data), record.wirelen) == (int(caplen), int(wirelen))
        if not ts:  # simple packet block: no timestamp
            assert record.ts == 0.0
            continue
        # A double holds present-day epoch seconds to about 0.2 µs.
        tolerance = max(Decimal("1e-6"), Decimal(abs(record.ts)) * Decimal(2.0 ** -51))
        assert abs(Decimal(ts) - Decimal(record.ts)) <= tolerance


# ---------------------------------------------------------------------------
# Round trips through synthetic captures
# ---------------------------------------------------------------------------

EPOCH = 1_700_000_000


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_pcap_round_trip(tmp_path, order, nsec):
    units = 10 ** 9 if nsec else 10 ** 6
    # nanoseconds only survive a double for small second counts
    sec0 = 1_000 if nsec else EPOCH
    recs = [(sec0, 0, b"", 0), (sec0 + 1, units - 1, payload(1, 60), 1514),
            (sec0 + 2, 123_456, payload(2, 1500), 1500)]
    path = write(tmp_path, "x.pcap", pcap_file(recs, order, nsec, linktype=229))
    cap, records = read_all(path)
    assert (cap.format, cap.compression, cap.linktypes) == ("pcap", None, [229])
    assert not cap.truncated and cap.warnings == []
    assert [(r.linktype, r.wirelen, r.data) for r in records] == \
        [(229, w, d) for _, _, d, w in recs]
    assert [round(r.ts * units) for r in records] == [s * units + f for s, f, _, _ in recs]
    assert all(type(r) is Record for r in records)


def test_pcap_epoch_nanoseconds_to_a_microsecond(tmp_path):
    path = write(tmp_path, "x.pcap", pcap_file([(EPOCH, 999_999_999, b"x", 1)], nsec=True))
    _, (record,) = read_all(path)
    assert abs(record.ts - (EPOCH + 0.999999999)) < 1e-6


def test_pcap_linktype_fcs_bits_masked(tmp_path):
    # Upper bits of the link-type field: FCS length present/length (pcap
    # draft section 4); the link type is the low 16 bits.
    path = write(tmp_path, "x.pcap", pcap_file([(1, 0, b"ab", 2)], linktype=0x34000000 | 127))
    cap, records = read_all(path)
    assert cap.linktypes == [127] and records[0].linktype == 127


@pytest.mark.parametrize("minor, stored, expected", [
    (2, (60, 100), (100, 60)),    # 2.0-2.2: always swapped
    (3, (100, 60), (60, 100)),    # 2.3: swapped when caplen > len ...
    (3, (60, 100), (60, 100)),    # ... else as is
    (4, (60, 100), (60, 100)),
])
def test_pcap_old_minor_versions(tmp_path, minor, stored, expected):
    caplen, wirelen = expected
    header = struct.pack("<IIII", 5, 0, *stored)
    data = pcap_header(version=(2, minor)) + header + payload(0, caplen)
    _, records = read_all(write(tmp_path, "x.pcap", data))
    assert [(len(r.data), r.wirelen) for r in records] == [(caplen, wirelen)]


def two_section_pcapng(first="<", second=">") -> tuple[bytes, list[tuple]]:
    parts, expected = two_section_blocks(first, second)
    return b"".join(parts), expected


def two_section_blocks(first="<", second=">") -> tuple[list[bytes], list[tuple]]:
    """Two sections of different byte order, two interfaces each, every
    packet block type, skipped blocks between them. Returns the blocks and
    the expected (ts, linktype, wirelen, data) records."""
    a, b = first, second
    parts, expected = [], []
    parts.append(shb(a, option(a, 2, b"test hardware")))
    parts.append(idb(a, 1, 65535))                                   # µs (default)
    parts.append(idb(a, 229, 0, tsresol=9))                          # ns
    parts.append(block(a, 4, struct.pack(a + "HH", 0, 0)))           # NRB, skipped
    parts.append(epb(a, 0, EPOCH * 10**6 + 250_000, payload(1, 60), 60))
    expected.append((EPOCH + 0.25, 1, 60, payload(1, 60)))
    parts.append(epb(a, 1, 1_234 * 10**9 + 5, payload(2, 41), 1280,
                     option(a, 2, struct.pack(a + "I", 1))))         # epb_flags
    expected.append((1_234 + 5e-9, 229, 1280, payload(2, 41)))
    parts.append(block(a, 5, struct.pack(a + "III", 0, 0, 0)))        # ISB, skipped
    parts.append(block(a, 0x00000BAD, struct.pack(a + "I", 32473) + b"custom"))
    parts.append(pb(a, 0, EPOCH * 10**6 + 1, payload(3, 20), 20))     # obsolete PB
    expected.append((EPOCH + 1e-6, 1, 20, payload(3, 20)))

    parts.append(shb(b))
    parts.append(idb(b, 113, 64, tsresol=0x80 | 20, tsoffset=100))   # 2^-20 s, +100 s
    parts.append(idb(b, 0, 0, tsresol=3))                            # ms
    parts.append(epb(b, 1, 42_123, payload(4, 16), 16))
    expected.append((42.123, 0, 16, payload(4, 16)))
    parts.append(epb(b, 0, 3 * 2**20 + 2**19, payload(5, 64), 100))
    expected.append((100 + 3.5, 113, 100, payload(5, 64)))
    # SPB on interface 0 (snaplen 64): caplen = min(original 100, snaplen 64)
    parts.append(spb(b, payload(6, 100), 100))
    expected.append((0.0, 113, 100, payload(6, 64)))
    parts.append(block(b, 0x0000000A, struct.pack(b + "II", 0x544c534b, 4) + b"keys"))  # DSB
    parts.append(block(b, 0x12345678, b"unknown block type"))
    return parts, expected


@pytest.mark.parametrize("orders", [("<", ">"), (">", "<"), ("<", "<"), (">", ">")])
def test_pcapng_round_trip(tmp_path, orders):
    data, expected = two_section_pcapng(*orders)
    cap, records = read_all(write(tmp_path, "x.pcapng", data))
    assert (cap.format, cap.compression) == ("pcapng", None)
    assert cap.linktypes == [1, 229, 113, 0]
    assert not cap.truncated and cap.warnings == []
    assert [(r.linktype, r.wirelen, r.data) for r in records] == \
        [(lt, w, d) for _, lt, w, d in expected]
    assert [r.ts for r in records] == [ts for ts, _, _, _ in expected]


def test_pcapng_spb_caplen_limited_by_block(tmp_path):
    # SPB whose original length exceeds both the block and snaplen 0 (none).
    data = shb("<") + idb("<", 1, 0) + spb("<", payload(0, 40), 1500)
    _, records = read_all(write(tmp_path, "x.pcapng", data))
    assert [(len(r.data), r.wirelen) for r in records] == [(40, 1500)]


def test_pcapng_header_only(tmp_path):
    cap, records = read_all(write(tmp_path, "a.pcapng", shb("<")))
    assert records == [] and cap.linktypes == [] and not cap.truncated
    cap, records = read_all(write(tmp_path, "b.pcapng", shb(">") + idb(">", 1)))
    assert records == [] and cap.linktypes == [1] and not cap.truncated


def test_pcap_header_only(tmp_path):
    cap, records = read_all(write(tmp_path, "x.pcap", pcap_header(linktype=113)))
    assert records == [] and cap.linktypes == [113] and not cap.truncated


def big_pcap(count=3000) -> tuple[bytes, list[bytes]]:
    """A few MiB, so records straddle the reader's 1 MiB buffers."""
    datas = [payload(i, (i * 7919) % 2000) for i in range(count)]
    recs = [(EPOCH + i, i, d, len(d) + 4) for i, d in enumerate(datas)]
    return pcap_file(recs), datas


def test_records_across_buffer_boundaries(tmp_path):
    data, datas = big_pcap()
    assert len(data) > 2 * (1 << 20)
    cap, records = read_all(write(tmp_path, "x.pcap", data))
    assert [r.data for r in records] == datas
    assert [r.wirelen for r in records] == [len(d) + 4 for d in datas]
    assert cap.bytes_read == len(data)


def test_pcapng_across_buffer_boundaries_and_big_blocks(tmp_path):
    o = "<"
    parts, datas = [shb(o), idb(o, 1)], []
    for i in range(2500):
        d = payload(i, (i * 7919) % 2000)
        datas.append(d)
        parts.append(epb(o, 0, i, d))
        if i == 1000:
            # a 3 MiB custom block is streamed past, not buffered
            parts.append(block(o, 0x40000BAD, struct.pack(o + "I", 1) + bytes(3 << 20)))
        if i == 2000:
            big = payload(7, 200_000)  # one packet bigger than a chunk's tail
            datas.append(big)
            parts.append(epb(o, 0, 7, big))
    cap, records = read_all(write(tmp_path, "x.pcapng", b"".join(parts)))
    assert [r.data for r in records] == datas
    assert not cap.truncated


COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_compressed_round_trip(tmp_path, kind, fmt):
    if fmt == "pcap":
        data, datas = big_pcap(1200)
    else:
        data, expected = two_section_pcapng()
        datas = [d for _, _, _, d in expected]
    packed = COMPRESSORS[kind](data)
    # the name says nothing: detection is by magic bytes
    cap, records = read_all(write(tmp_path, "capture.bin", packed))
    assert (cap.format, cap.compression) == (fmt, kind)
    assert [r.data for r in records] == datas
    assert not cap.truncated and cap.warnings == []
    assert cap.bytes_read == len(packed)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_concatenated_streams(tmp_path, kind):
    data, datas = big_pcap(600)
    half = 24 + sum(16 + len(d) for d in datas[:300])
    packed = COMPRESSORS[kind](data[:half]) + COMPRESSORS[kind](data[half:])
    cap, records = read_all(write(tmp_path, "x", packed))
    assert [r.data for r in records] == datas
    assert not cap.truncated


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_cut_off_keeps_what_was_read(tmp_path, kind):
    data, datas = big_pcap(1500)
    packed = COMPRESSORS[kind](data)
    cut = packed[: len(packed) * 2 // 3]
    cap, records = read_all(write(tmp_path, "x", cut))
    assert cap.truncated
    assert any(f"{kind} data is cut off" in w for w in cap.warnings)
    assert 0 < len(records) < len(datas)
    assert [r.data for r in records] == datas[:len(records)]


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compressed_cut_anywhere_is_never_silent(tmp_path, kind):
    packed = COMPRESSORS[kind](pcapng_with(epb("<", 0, 1, b"abcd"), epb("<", 0, 2, b"efgh")))
    for cut in range(1, len(packed)):
        try:
            cap, records = read_all(write(tmp_path, "x", packed[:cut]))
        except CaptureError as exc:
            if cut > 6:  # once the compression is recognised
                assert f"{kind} data is cut off" in exc.message, (cut, exc.message)
            continue
        assert cap.truncated, cut
        assert any(f"{kind} data is cut off" in w for w in cap.warnings), cut


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_corrupt_never_crashes(tmp_path, kind):
    data, datas = big_pcap(800)
    packed = bytearray(COMPRESSORS[kind](data))
    for where in (len(packed) // 3, len(packed) // 2, len(packed) - 10):
        bad = bytearray(packed)
        bad[where] ^= 0x55
        path = write(tmp_path, "x", bytes(bad))
        try:
            cap, records = read_all(path)
        except CaptureError as exc:
            # one line naming the file and what is wrong: the decompressor
            # noticed, or the flipped bits broke the framing of a record
            msg = str(exc)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
            assert re.search(rf"{kind} data is corrupt \(.+, after \d+ compressed bytes\)$"
                             rf"|: record \d+ at byte offset \d+: captured length \d+ exceeds"
                             rf"|: not a pcap or pcapng file inside the {kind} data", msg), msg
            continue
        # No checksum caught it (zstd frames carry none by default): the
        # flipped bits fell in packet data, so the framing still holds.
        if cap.truncated:
            assert any(kind in w for w in cap.warnings), cap.warnings
        else:
            assert [len(r.data) for r in records] == [len(d) for d in datas]


def _read_both_ways(path):
    """(records, error, truncated, warnings) reading record by record, then
    in batches: the batch reader reads 8 MiB ahead, the record reader 1 MiB."""
    seen = []
    for batches in (False, True):
        n, error, cap = 0, None, None
        try:
            with open_capture(path) as cap:
                for item in (cap.iter_batches() if batches else cap):
                    n += len(item) if batches else 1
        except CaptureError as exc:
            error = exc.message
        seen.append((n, error) + ((cap.truncated, list(cap.warnings)) if cap else (None, None)))
    return seen


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("bad_record", [False, True])
def test_compressed_failure_past_the_end_is_met_alike(tmp_path, kind, bad_record):
    # a stream whose last bytes are corrupt, after a bad record or not: the
    # batch reader's read-ahead reaches the corruption first, and must not
    # report it unless the records before it are all read
    data, datas = big_pcap(1500)                       # 1.5 MB
    if bad_record:                                     # then 2 MiB the records never reach
        data += struct.pack("<IIII", 1, 0, 1 << 24, 1 << 24) + random.Random(7).randbytes(2 << 20)
    packed = bytearray(COMPRESSORS[kind](data))
    packed[-6] ^= 0x55                                 # the checksum or last block
    (records, error, truncated, warnings), batched = _read_both_ways(
        write(tmp_path, "x", bytes(packed)))
    assert batched == (records, error, truncated, warnings)
    if bad_record and records == len(datas):
        assert "captured length 16777216 exceeds" in error and not truncated


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_decompression_bomb_stops_alike(tmp_path, monkeypatch, kind):
    # bounds scaled down (past 1 MiB, a ratio above 100) so that 6 MiB of
    # zero frames is a bomb in every format, gzip included
    monkeypatch.setattr(source, "RATIO_AFTER", 1 << 20)
    monkeypatch.setattr(source, "MAX_RATIO", 100)
    frame = bytes(60000)
    data = pcap_file([(EPOCH, 0, frame, len(frame))] * 100)
    seen = _read_both_ways(write(tmp_path, "x", COMPRESSORS[kind](data)))
    records, error, truncated, warnings = seen[0]
    assert seen[1] == seen[0]
    assert re.fullmatch(rf"{kind} data expands more than 100 times \(\d+ bytes from \d+ "
                        r"compressed bytes\): refused as a decompression bomb", error), error
    assert 17 <= records < 100 and truncated is False and warnings == []
    # below the bound it is just a capture
    monkeypatch.setattr(source, "RATIO_AFTER", len(data))
    assert _read_both_ways(write(tmp_path, "x", COMPRESSORS[kind](data)))[1] == (
        100, None, False, [])


def test_compressed_not_a_capture(tmp_path):
    path = write(tmp_path, "x.gz", gzip.compress(b'{"a": 1}'))
    with pytest.raises(CaptureError, match=r"not a pcap or pcapng file inside the gzip "
                                           r"data \(first bytes 7b 22 61 22 3a 20 31 7d\)"):
        open_capture(path)
    path = write(tmp_path, "y.gz", gzip.compress(b""))
    with pytest.raises(CaptureError, match=r"empty file \(no capture header inside the gzip"):
        open_capture(path)
    path = write(tmp_path, "z.gz", b"\x1f\x8b\x08garbage garbage")
    with pytest.raises(CaptureError, match="gzip data is"):
        open_capture(path)


def test_zstd_frame_walker():
    data = os.urandom(50_000) + bytes(300_000)
    frames = [
        zstandard.ZstdCompressor(write_checksum=True).compress(data),
        zstandard.ZstdCompressor(write_content_size=False).compress(b"small"),
        struct.pack("<II", 0x184D2A53, 5) + b"skip!",  # skippable frame
    ]
    stream = b"".join(frames)
    boundaries = {0}
    for frame in frames:
        boundaries.add(max(boundaries) + len(frame))
    for cut in range(0, len(stream) + 1, 97):
        walker = _ZstdFrames()
        walker.feed(stream[:cut])
        assert walker.at_boundary == (cut in boundaries), cut
    for cut in sorted(boundaries):
        walker = _ZstdFrames()
        for i in range(0, cut, 1000):  # fed in pieces, as read
            walker.feed(stream[i:min(cut, i + 1000)])
        assert walker.at_boundary


def test_xz_memory_limit(tmp_path):
    # a small file still declares its preset's dictionary: xz -9's 64 MiB
    # is read, the next size LZMA2 can declare (96 MiB) is refused
    data, datas = big_pcap(200)
    cap, records = read_all(write(tmp_path, "nine.xz", lzma.compress(data, preset=9)))
    assert [r.data for r in records] == datas and not cap.warnings
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 96 << 20}]
    path = write(tmp_path, "big.xz", lzma.compress(data, filters=filters))
    with pytest.raises(CaptureError, match=r": xz dictionary needs more than 66 MiB of memory "
                                           r"\(the limit; xz -9 needs 65 MiB\), after \d+ "
                                           r"compressed bytes$"):
        read_all(path)
    # in a later stream: the first stream's records are kept, then the error
    path = write(tmp_path, "later.xz", lzma.compress(data) + lzma.compress(b"x", filters=filters))
    with open_capture(path) as cap:
        got = []
        with pytest.raises(CaptureError, match="xz dictionary needs more than"):
            for record in cap:
                got.append(record.data)
    assert got == datas


@pytest.mark.parametrize("window_log, readable", [(26, True), (27, False)])
def test_zstd_window_limit(tmp_path, window_log, readable):
    # streamed, so the frame has no content size and declares the window
    data, datas = big_pcap(200)
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=window_log)
    packer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    path = write(tmp_path, "x.zst", packer.compress(data) + packer.flush())
    if readable:
        cap, records = read_all(path)
        assert [r.data for r in records] == datas and not cap.warnings
    else:
        with pytest.raises(CaptureError, match=r": zstd window of 128 MiB is over the limit of "
                                               r"64 MiB \(zstd --long and --ultra -22 make such "
                                               r"files\), after 6 compressed bytes$"):
            read_all(path)


# ---------------------------------------------------------------------------
# stdin
# ---------------------------------------------------------------------------

class _Pipe(io.RawIOBase):
    """A non-seekable raw stream handing out small pieces, like a pipe."""

    def __init__(self, data: bytes, piece: int = 5000):
        self._data, self._pos, self._piece = data, 0, piece

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, b):
        n = min(len(b), self._piece, len(self._data) - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


class _FakeStdin:
    def __init__(self, data: bytes):
        self.buffer = io.BufferedReader(_Pipe(data), buffer_size=3)


@pytest.mark.parametrize("kind", [None, "gzip", "zstd"])
def test_stdin_monkeypatched(monkeypatch, kind):
    data, datas = big_pcap(400)
    if kind:
        data = COMPRESSORS[kind](data)
    monkeypatch.setattr(sys, "stdin", _FakeStdin(data))
    with open_capture("-") as cap:
        assert cap.name == "<stdin>" and cap.path == "-"
        records = list(cap)
    assert cap.compression == kind
    assert [r.data for r in records] == datas
    assert cap.bytes_read == len(data)


def test_stdin_errors_name_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _FakeStdin(b'{"a": 1}'))
    with pytest.raises(CaptureError) as info:
        open_capture("-")
    assert str(info.value) == "<stdin>: not a pcap or pcapng file (first bytes 7b 22 61 22 3a 20 31 7d)"


def test_stdin_subprocess(tmp_path):
    data, expected = two_section_pcapng()
    script = ("from ipv6flow.capture import open_capture\n"
              "with open_capture('-') as cap:\n"
              "    n = sum(1 for _ in cap)\n"
              "print(cap.format, cap.compression, n, cap.linktypes, cap.truncated)\n")
    out = subprocess.run([sys.executable, "-c", script], input=bz2.compress(data),
                         capture_output=True, cwd=REPO, check=True).stdout
    assert out.decode().split(None, 3) == ["pcapng", "bzip2", str(len(expected)),
                                           "[1, 229, 113, 0] False\n"]


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

def test_not_a_capture(tmp_path):
    path = write(tmp_path, "x.json", b'{"a": [1, 2, 3], "b": "pcap"}')
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert info.value.message == "not a pcap or pcapng file (first bytes 7b 22 61 22 3a 20 5b 31 ...)"
    assert info.value.path == str(path)


def test_short_non_capture_lists_all_bytes(tmp_path):
    with pytest.raises(CaptureError, match=r"\(first bytes 68 69\)$"):
        open_capture(write(tmp_path, "x", b"hi"))


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert (info.value.path, info.value.message) == (path, "no such file")
    assert str(info.value) == f"{path}: no such file"


def test_directory(tmp_path):
    with pytest.raises(CaptureError, match="is a directory$"):
        open_capture(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads files whatever their mode; see the monkeypatched test")
def test_permission_denied_chmod(tmp_path):
    path = write(tmp_path, "x.pcap", pcap_header())
    path.chmod(0)
    with pytest.raises(CaptureError, match="permission denied$"):
        open_capture(path)


def test_permission_denied(tmp_path, monkeypatch):
    # Running as root, chmod 000 does not stop us: make open() fail the way
    # the OS would.
    from ipv6flow.capture import source

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(source, "open", denied, raising=False)
    with pytest.raises(CaptureError, match="permission denied$"):
        open_capture(tmp_path / "x.pcap")


def test_empty_file(tmp_path):
    with pytest.raises(CaptureError) as info:
        open_capture(write(tmp_path, "x.pcap", b""))
    assert info.value.message == "empty file (no capture header)"


@pytest.mark.parametrize("size", [1, 3, 4, 10, 23])
def test_cut_inside_pcap_file_header(tmp_path, size):
    with pytest.raises(CaptureError):
        open_capture(write(tmp_path, "x.pcap", pcap_header()[:size]))


def test_pcap_unsupported_versions(tmp_path):
    with pytest.raises(CaptureError, match=r"unsupported pcap version 3\.0"):
        open_capture(write(tmp_path, "a", pcap_header(version=(3, 0))))
    with pytest.raises(CaptureError, match="Kuznetzov"):
        open_capture(write(tmp_path, "b", pcap_header(magic=0xA1B2CD34)))


def three_records() -> tuple[bytes, list[int]]:
    recs = [(EPOCH, 0, payload(0, 50), 50), (EPOCH, 1, payload(1, 3), 3),
            (EPOCH, 2, payload(2, 70), 70)]
    data = pcap_file(recs)
    ends = [24]
    for _, _, d, _ in recs:
        ends.append(ends[-1] + 16 + len(d))
    return data, ends


def test_pcap_cut_at_every_offset(tmp_path):
    data, ends = three_records()
    path = tmp_path / "x.pcap"
    for cut in range(24, len(data) + 1):
        path.write_bytes(data[:cut])
        cap, records = read_all(path)
        complete = sum(1 for end in ends[1:] if end <= cut)
        assert len(records) == complete, cut
        assert cap.truncated == (cut not in ends), cut
        assert len(cap.warnings) == int(cap.truncated)
        if cap.truncated:
            assert cap.warnings[0].startswith(f"record {complete + 1} at byte offset "
                                              f"{ends[complete]}: file ends inside")


def test_pcapng_cut_at_every_offset(tmp_path):
    parts, expected = two_section_blocks()
    data = b"".join(parts)
    ends = [sum(map(len, parts[:k])) for k in range(1, len(parts) + 1)]
    path = tmp_path / "x.pcapng"
    for cut in range(ends[0], len(data) + 1):
        path.write_bytes(data[:cut])
        cap, records = read_all(path)
        assert [r.data for r in records] == [d for _, _, _, d in expected[:len(records)]]
        assert cap.truncated == (cut not in ends), cut
        assert len(cap.warnings) == int(cap.truncated)


def test_caplen_over_limit_is_an_error_after_good_records(tmp_path):
    data, ends = three_records()
    bad = struct.pack("<IIII", EPOCH, 0, 300_000, 300_000) + bytes(100)
    path = write(tmp_path, "x.pcap", data + bad)
    got = []
    with open_capture(path) as cap:
        with pytest.raises(CaptureError) as info:
            for record in cap:
                got.append(record)
    assert len(got) == 3 and cap.packets == 3
    assert info.value.message == (
        f"record 4 at byte offset {ends[3]}: captured length 300000 exceeds the "
        "maximum snapshot length 262144 (file snapshot length 65535)")


def test_caplen_over_snaplen_within_limit_is_read(tmp_path):
    data = pcap_file([(1, 0, payload(0, 200), 300)], snaplen=100)
    _, records = read_all(write(tmp_path, "x.pcap", data))
    assert len(records[0].data) == 200


def test_caplen_limit_per_linktype(tmp_path):
    # LINKTYPE_USBPCAP (249) may carry up to 1 MiB (libpcap max_snaplen_for_dlt)
    data = pcap_file([(1, 0, payload(0, 300_000), 300_000)], linktype=249, snaplen=0)
    _, records = read_all(write(tmp_path, "x.pcap", data))
    assert len(records[0].data) == 300_000


def test_huge_caplen_no_huge_allocation(tmp_path):
    # caplen 0xffffffff with a short file: an error, found before any read
    data = pcap_header() + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 60) + bytes(60)
    tracemalloc.start()
    try:
        with pytest.raises(CaptureError, match="captured length 4294967295"):
            read_all(write(tmp_path, "x.pcap", data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def pcapng_with(*blocks, order="<") -> bytes:
    return shb(order) + idb(order, 1) + b"".join(blocks)


def test_pcapng_bad_trailer(tmp_path):
    good = epb("<", 0, 1, b"abcd")
    bad = bytearray(epb("<", 0, 2, b"efgh"))
    bad[-4:] = struct.pack("<I", len(bad) + 4)
    path = write(tmp_path, "x.pcapng", pcapng_with(good, bytes(bad)))
    got = []
    with pytest.raises(CaptureError, match=r"enhanced packet block at byte offset \d+: trailing "
                                           r"total length 40 does not match the leading 36"):
        with open_capture(path) as cap:
            got.extend(cap)
    assert [r.data for r in got] == [b"abcd"]


@pytest.mark.parametrize("length, problem", [
    (34, "not a multiple of 4"),
    (8, "below the minimum of 12"),
    (0x7FFFFFFC, "exceeds the limit"),
    (0x7FFFFFFF, "not a multiple of 4"),
    (0xFFFFFFFC, "exceeds the limit"),
])
def test_pcapng_bad_block_length(tmp_path, length, problem):
    blk = struct.pack("<II", 6, length) + bytes(40)
    path = write(tmp_path, "x.pcapng", pcapng_with(epb("<", 0, 1, b"ok"), blk))
    tracemalloc.start()
    try:
        got = []
        with pytest.raises(CaptureError, match=problem):
            with open_capture(path) as cap:
                got.extend(cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(got) == 1
    assert peak < 4 << 20


def test_pcapng_big_skipped_block(tmp_path):
    big = bytearray(block("<", 0xBAD, struct.pack("<I", 1) + bytes(3 << 20)))
    after = epb("<", 0, 2, b"after")
    cap, records = read_all(write(tmp_path, "a", pcapng_with(bytes(big), after)))
    assert [r.data for r in records] == [b"after"] and not cap.truncated
    # cut inside it: truncation
    cap, records = read_all(write(tmp_path, "b", pcapng_with(bytes(big[:2 << 20]))))
    assert records == [] and cap.truncated
    # its trailer is checked although it was never buffered whole
    big[-4:] = b"\xff\xff\xff\xff"
    with pytest.raises(CaptureError, match="custom|type 0x00000bad.*trailing total length"):
        read_all(write(tmp_path, "c", pcapng_with(bytes(big), after)))


def test_pcapng_block_runs_past_end_is_truncation(tmp_path):
    # a plausible length (1 MiB) in a short file: cut off, not an error
    blk = struct.pack("<II", 6, 1 << 20) + bytes(40)
    cap, records = read_all(write(tmp_path, "x.pcapng", pcapng_with(epb("<", 0, 1, b"ok"), blk)))
    assert len(records) == 1 and cap.truncated
    assert "file ends inside the block" in cap.warnings[0]


def test_pcapng_interface_out_of_range(tmp_path):
    path = write(tmp_path, "x.pcapng", pcapng_with(epb("<", 0, 1, b"a"), epb("<", 1, 1, b"b")))
    with pytest.raises(CaptureError, match=r"record 2 \(enhanced packet block at byte offset "
                                           r"\d+\): interface id 1 but the section has 1"):
        read_all(path)


def test_pcapng_interfaces_reset_by_new_section(tmp_path):
    data = pcapng_with(epb("<", 0, 1, b"a")) + shb(">") + epb(">", 0, 1, b"b")
    with pytest.raises(CaptureError, match="interface id 0 but the section has 0"):
        read_all(write(tmp_path, "x.pcapng", data))


def test_pcapng_interfaces_past_the_cap(tmp_path, monkeypatch):
    # the cap scaled down to 3: a fourth and fifth IDB are counted, not
    # kept; packets on them are skipped (one warning each, per file); an id
    # past every IDB is still an error; a new section starts over
    from ipv6flow.capture import pcapng
    monkeypatch.setattr(pcapng, "MAX_INTERFACES", 3)
    section = (shb("<") + b"".join(idb("<", lt) for lt in (1, 101, 228, 229, 113))
               + epb("<", 2, 1, b"kept") + epb("<", 4, 1, b"skipped")
               + epb("<", 3, 1, b"skipped too"))
    cap, records = read_all(write(tmp_path, "x.pcapng", section + section))
    assert [(r.linktype, r.data) for r in records] == [(228, b"kept")] * 2
    assert cap.linktypes == [1, 101, 228] and not cap.truncated
    assert cap.warnings == [
        "interface description block at byte offset 88: more than 3 interfaces in a "
        "section: the ones past that are not kept",
        "enhanced packet block at byte offset 164: interface 4 is past the 3 kept: "
        "packets on such interfaces are skipped"]
    with pytest.raises(CaptureError, match="interface id 5 but the section has 5"):
        read_all(write(tmp_path, "y.pcapng", section + epb("<", 5, 1, b"no")))


def test_pcapng_caplen_past_block(tmp_path):
    blk = bytearray(epb("<", 0, 1, b"abcdefgh"))
    struct.pack_into("<I", blk, 20, 9)  # caplen 9 in a block with room for 8
    with pytest.raises(CaptureError, match="captured length 9 runs past the end"):
        read_all(write(tmp_path, "x.pcapng", pcapng_with(bytes(blk))))


def test_pcapng_option_too_long(tmp_path):
    bad_idb = block("<", 1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 200) + b"\x06")
    with pytest.raises(CaptureError, match="option 9 has length 200"):
        read_all(write(tmp_path, "x.pcapng", shb("<") + bad_idb))
    bad_epb = block("<", 6, struct.pack("<IIIII", 0, 0, 1, 4, 4) + b"abcd"
                    + struct.pack("<HH", 1, 100))
    with pytest.raises(CaptureError, match=r"record 1 .*option 1 has length 100"):
        read_all(write(tmp_path, "y.pcapng", pcapng_with(bad_epb)))
    bad_shb = block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                    + struct.pack("<HH", 3, 99))
    with pytest.raises(CaptureError, match="section header block at byte offset 0: option 3"):
        open_capture(write(tmp_path, "z.pcapng", bad_shb))


def test_pcapng_bad_option_value_length(tmp_path):
    bad_idb = block("<", 1, struct.pack("<HHI", 1, 0, 0) + option("<", 9, b"\x06\x06"))
    with pytest.raises(CaptureError, match="if_tsresol has length 2"):
        read_all(write(tmp_path, "x.pcapng", shb("<") + bad_idb))


def test_pcapng_spb_without_interface(tmp_path):
    with pytest.raises(CaptureError, match="no interface description block"):
        read_all(write(tmp_path, "x.pcapng", shb("<") + spb("<", b"abcd")))


def test_pcapng_bad_section_header(tmp_path):
    bad_bom = bytearray(shb("<"))
    bad_bom[8:12] = b"\x01\x02\x03\x04"
    with pytest.raises(CaptureError, match="unknown byte-order magic 01020304"):
        open_capture(write(tmp_path, "a", bytes(bad_bom)))
    with pytest.raises(CaptureError, match=r"unsupported pcapng version 2\.0"):
        open_capture(write(tmp_path, "b", shb("<", version=(2, 0))))
    with pytest.raises(CaptureError, match="file ends inside the pcapng section header"):
        open_capture(write(tmp_path, "c", shb("<")[:20]))
    # a bad section header later in the file is an iteration error
    data = pcapng_with(epb("<", 0, 1, b"a")) + bytes(bad_bom)
    with pytest.raises(CaptureError, match="unknown byte-order magic"):
        read_all(write(tmp_path, "d", data))


def test_memory_stays_flat_with_gzip(tmp_path):
    data, datas = big_pcap(6000)  # ~6 MiB uncompressed
    path = write(tmp_path, "x.gz", gzip.compress(data, compresslevel=1))
    tracemalloc.start()
    try:
        with open_capture(path) as cap:
            count = sum(1 for _ in cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == len(datas)
    assert peak < 5 << 20, peak


# ---------------------------------------------------------------------------
# The Capture object
# ---------------------------------------------------------------------------

def test_progress_attributes(tmp_path):
    data, datas = big_pcap(3000)
    path = write(tmp_path, "x.pcap", data)
    with open_capture(path) as cap:
        assert cap.path == path and cap.packets == 0
        assert 0 < cap.bytes_read <= len(data)
        seen = []
        for i, _ in enumerate(cap, 1):
            assert cap.packets == i
            seen.append(cap.bytes_read)
        assert seen == sorted(seen) and seen[-1] == len(data)
    assert "x.pcap" in repr(cap)


def test_close_releases_the_file(tmp_path):
    data, _ = three_records()
    path = write(tmp_path, "x.pcap", data)
    cap = open_capture(path)
    next(iter(cap))
    raw_close = cap._source._close_raw
    cap.close()
    assert raw_close.__self__.closed


def test_error_messages_are_one_line(tmp_path):
    for blob in [b"\n\r\r\n\nnot\npcapng\n\n\n\n\n\n", b"\x00" * 30, b"BZh9" + b"\n" * 40]:
        try:
            read_all(write(tmp_path, "x", blob))
        except CaptureError as exc:
            assert "\n" not in str(exc), str(exc)


# ---------------------------------------------------------------------------
# Batches: the same records, errors and warnings as plain iteration
# ---------------------------------------------------------------------------

def outcome(path, batched: bool, reuse: bool = False):
    """Records, then the error message or None, truncated and warnings."""
    records, error = [], None
    try:
        with open_capture(path) as cap:
            if batched:
                for batch in cap.iter_batches(reuse=reuse):
                    assert isinstance(batch, Batch)
                    assert batch.offsets.dtype == batch.caplens.dtype == np.int64
                    assert batch.ts.dtype == np.float64
                    assert cap.packets == len(records) + len(batch)
                    records.extend(batch.records())
            else:
                records.extend(cap)
    except CaptureError as exc:
        error = exc.message
    else:
        assert cap.packets == len(records)
    return records, error, cap.truncated if error is None else None, \
        cap.warnings if error is None else None


@pytest.fixture(params=["compiled", "python"])
def walker(request, monkeypatch):
    """Batches with the compiled record walks (skipped where the helper is
    not built) and with the pure-Python ones that stand in for them."""
    from ipv6flow.capture import pcapng as pcapng_mod
    if request.param == "compiled":
        if pcap_mod._walk_pcap is None or pcapng_mod._walk_pcapng is None:
            need_speedups()
    else:
        monkeypatch.setattr(pcap_mod, "_walk_pcap", None)
        monkeypatch.setattr(pcapng_mod, "_walk_pcapng", None)
    return request.param


@needs_corpus
@pytest.mark.parametrize("row", READABLE, ids=[r["file"] for r in READABLE])
def test_batches_match_records_on_corpus(row, walker):
    path = CAPTURES / row["file"]
    assert outcome(path, True) == outcome(path, False)


@pytest.mark.parametrize("minor", [2, 3, 4])
def test_batches_match_records_on_bad_input(tmp_path, minor, walker):
    data, ends = three_records()
    data = pcap_header(version=(2, minor)) + data[24:]
    big, _ = big_pcap(1500)
    too_long = struct.pack("<IIII", EPOCH, 0, 300_000, 300_000) + bytes(100)
    cases = [data[:cut] for cut in range(24, len(data) + 1)]
    cases += [data + too_long, big, big[:len(big) - 7], big[:len(big) // 2]]
    cases.append(two_section_pcapng()[0][:-50])
    for k, blob in enumerate(cases):
        path = write(tmp_path, f"c{k}", blob)
        assert outcome(path, True) == outcome(path, False), k


@pytest.mark.parametrize("cut", [0, 7, 3001])
def test_reused_batch_buffers_give_the_same_records(tmp_path, monkeypatch, cut):
    # reuse=True: two buffers take turns (the engine consumes each batch
    # before asking for the one after next); the records, truncation and
    # counts are those of fresh buffers, on a file of many small batches
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(source, "MAP_FILES", False)   # the buffers, not the file map
    data, datas = big_pcap()
    path = write(tmp_path, "x.pcap", data[:len(data) - cut])
    seen = {}
    for reuse in (False, True):
        records, buffers = [], []
        with open_capture(path) as cap:
            for batch in cap.iter_batches(reuse=reuse):
                buffers.append(batch.buffer)
                records.extend(batch.records())
            seen[reuse] = (records, cap.packets, cap.truncated)
        distinct = len({id(b) for b in buffers})
        assert distinct == len(buffers) if not reuse else distinct <= 4, reuse
    assert len(buffers) > 20
    assert seen[True] == seen[False]
    assert [r.data for r in seen[True][0]] == datas[:len(seen[True][0])]


def test_batch_and_record_iteration_do_not_mix(tmp_path):
    data, _ = three_records()
    with open_capture(write(tmp_path, "x.pcap", data)) as cap:
        next(iter(cap))
        with pytest.raises(RuntimeError):
            cap.iter_batches()


# ---------------------------------------------------------------------------
# Fuzz: bytes after a valid header give records or CaptureError, nothing else
# ---------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=2000,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_fuzz(path) -> None:
    try:
        with open_capture(path) as cap:
            for record in cap:
                assert len(record.data) <= 256 << 20
    except CaptureError as exc:
        assert "\n" not in str(exc)
    assert outcome(path, True) == outcome(path, False)


@FUZZ
@given(order=st.sampled_from("<>"), nsec=st.booleans(), minor=st.integers(0, 6),
       tail=st.binary(max_size=400))
def test_fuzz_after_pcap_header(tmp_path, order, nsec, minor, tail):
    read_fuzz(write(tmp_path, "f.pcap", pcap_header(order, nsec, version=(2, minor)) + tail))


@FUZZ
@given(order=st.sampled_from("<>"), with_idb=st.booleans(), tail=st.binary(max_size=400))
def test_fuzz_after_pcapng_section_header(tmp_path, order, with_idb, tail):
    head = shb(order) + (idb(order, 1, tsresol=9) if with_idb else b"")
    read_fuzz(write(tmp_path, "f.pcapng", head + tail))


@FUZZ
@given(order=st.sampled_from("<>"),
       blocks=st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6, 0x0A0D0D0A, 0xBAD]),
                                 st.binary(max_size=80)), max_size=6))
def test_fuzz_pcapng_blocks_with_good_framing(tmp_path, order, blocks):
    # Random bodies inside correct block framing, to reach the block parsers.
    parts = [shb(order), idb(order, 1)]
    for btype, body in blocks:
        if btype == 0x0A0D0D0A:  # keep the byte-order magic, fuzz the rest
            body = struct.pack(order + "I", 0x1A2B3C4D) + body
        parts.append(block(order, btype, body))
    read_fuzz(write(tmp_path, "f.pcapng", b"".join(parts)))


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_any_bytes(tmp_path, data):
    read_fuzz(write(tmp_path, "f", data))


@FUZZ
@given(kind=st.sampled_from(sorted(COMPRESSORS)), cut=st.integers(0, 2000),
       flip=st.integers(0, 2000))
def test_fuzz_damaged_compressed(tmp_path, kind, cut, flip):
    data, _ = three_records()
    packed = bytearray(COMPRESSORS[kind](data * 20))
    if flip < len(packed):
        packed[flip] ^= 0xA5
    read_fuzz(write(tmp_path, "f", bytes(packed[:max(cut, 1)])))


# ---------------------------------------------------------------------------
# gzip: GzipStream decodes as CPython's gzip module does
# ---------------------------------------------------------------------------

def _gzip_member(data: bytes, flags: int = 0, level: int = 6) -> bytes:
    """One gzip member with the optional header fields of ``flags``."""
    import zlib
    extra = b""
    if flags & 4:
        extra += struct.pack("<H", 5) + b"extra"
    if flags & 8:
        extra += b"name.pcap\0"
    if flags & 16:
        extra += b"a comment\0"
    if flags & 2:
        extra += b"\x12\x34"
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return (b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 0) + b"\x00\xff" + extra
            + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


def _drain(f, size):
    out, err = [], None
    try:
        while True:
            d = f.read1(size)
            if not d:
                break
            out.append(d)
    except (EOFError, OSError) + tuple({__import__("zlib").error,
                                        gzip_impl.ERRORS[-1]}) as exc:
        err = (type(exc).__name__, str(exc))
    return b"".join(out), err


def _gzip_cases():
    rng = random.Random(5)
    data, _ = big_pcap(400)
    one = _gzip_member(data, level=1)
    cases = {"plain": gzip.compress(data), "flags": _gzip_member(data, 2 | 4 | 8 | 16),
             "members": one + _gzip_member(data[:999], 8) + _gzip_member(b""),
             "padded": one + bytes(40) + _gzip_member(data[:5000]) + bytes(3),
             "garbage-after": one + b"\x1f\x8c rest", "one-byte-after": one + b"\x1f",
             "bad-method": one[:2] + b"\x07" + one[3:], "empty": b""}
    for k in (3, 10, 11, 17, len(one) // 3, len(one) - 9, len(one) - 8, len(one) - 1):
        cases[f"cut-{k}"] = one[:k]
    for where in (len(one) // 4, len(one) // 2, len(one) - 8, len(one) - 4, len(one) - 2):
        bad = bytearray(one)
        bad[where] ^= 0x5A
        cases[f"flip-{where}"] = bytes(bad)
    for n in range(6):
        bad = bytearray(one)
        for _ in range(3):
            bad[rng.randrange(10, len(bad))] = rng.randrange(256)
        cases[f"random-{n}"] = bytes(bad)
    return cases


@pytest.mark.parametrize("library", ["zlib", "zlib-ng"])
@pytest.mark.parametrize("size", [1000, 1 << 20])
def test_gzip_stream_decodes_as_the_gzip_module(library, size):
    # every byte the gzip module decodes, and then its error, type and
    # message alike; where the data is corrupt mid-stream, inflate may stop
    # a step earlier or later (the steps differ), so there it is a prefix
    # of the true data, within 64 KiB of the module's
    import zlib
    lib = zlib if library == "zlib" else need_module("zlib_ng.zlib_ng")
    for name, blob in _gzip_cases().items():
        want, want_err = _drain(gzip.GzipFile(fileobj=io.BytesIO(blob), mode="rb"), size)
        got, got_err = _drain(gzip_impl.GzipStream(io.BytesIO(blob), lib), size)
        assert (got_err is None) == (want_err is None), (name, got_err, want_err)
        if want_err is None or want_err[0] in ("EOFError", "BadGzipFile"):
            assert got == want and got_err == want_err, (name, got_err, want_err)
        else:
            assert got_err[0] == "error" and got_err[1].split(":")[0] == want_err[1].split(":")[0]
            assert abs(len(got) - len(want)) <= 64 << 10, name
            assert got[:min(len(got), len(want))] == want[:min(len(got), len(want))], name


def _runs_pcapng(order="<", count=1200):
    """Long runs of enhanced packet blocks (options on some) between the
    blocks the compiled walk leaves to the Python loop: interface blocks in
    the middle, statistics and simple packet blocks, nanosecond and 2^-k
    timestamps past 2**53 ticks, a second section in the other order."""
    other = ">" if order == "<" else "<"
    rng = random.Random(11)
    parts = [shb(order), idb(order, 1, 0, tsresol=9), idb(order, 101, 0, tsresol=0x80 | 30,
                                                          tsoffset=-7)]
    for i in range(count):
        if i == count // 3:
            parts.append(idb(order, 229, 0, tsresol=6))
        if i % 250 == 0:
            parts.append(block(order, 5, struct.pack(order + "III", 0, 0, 0)))
        if i % 400 == 7:
            parts.append(spb(order, payload(i, 30), 30))
        iface = i % (3 if i > count // 3 else 2)
        ticks = (EPOCH + i) * 10**9 + rng.randrange(10**9) if iface == 0 else \
            rng.randrange(1 << 63)
        opts = [option(order, 2, struct.pack(order + "I", i))] if i % 3 == 0 else []
        parts.append(epb(order, iface, ticks, payload(i, rng.randrange(1, 300)), None, *opts))
    parts.append(shb(other))
    parts.append(idb(other, 1))
    parts += [epb(other, 0, (EPOCH + i) * 10**6, payload(i, 64)) for i in range(50)]
    return b"".join(parts)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_runs_equal_records(tmp_path, monkeypatch, order):
    # runs of packet blocks taken by the compiled walk give the records,
    # timestamps, truncation and errors of the record loop and of batches
    # built from records (the fallback), on whole and cut files, with
    # fresh or reused (two taking turns) buffers
    need_speedups()
    from ipv6flow.capture import pcapng as pcapng_mod
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 64 << 10)     # pcapng's batches too
    monkeypatch.setattr(source, "CHUNK", 16 << 10)
    data = _runs_pcapng(order)
    calls = []
    walk = pcapng_mod._walk_pcapng

    def spy(*args):
        out = walk(*args)
        calls.append(len(out[0]) // 48)
        return out
    for cut in [len(data)] + list(range(100, len(data), len(data) // 23)):
        path = write(tmp_path, "x.pcapng", data[:cut])
        monkeypatch.setattr(pcapng_mod, "_walk_pcapng", spy)
        fast = outcome(path, True)
        assert outcome(path, True, reuse=True) == fast, cut
        monkeypatch.setattr(pcapng_mod, "_walk_pcapng", None)
        assert fast == outcome(path, True) == outcome(path, False), cut
    assert sum(calls) > 0.9 * 1250 * 24 / 2 and max(calls) > 50


CLASSIC_PCAPS = [r["file"] for r in READABLE if r["file"].endswith(".pcap")
                 and "read error" not in r["link_types"]]


@needs_corpus
def test_classic_pcaps_read_as_dpkt_reads_them():
    # dpkt's pcap.Reader, an independent reader where dpkt is right:
    # every record's timestamp, captured bytes and wire length, on every
    # readable classic pcap of the corpus that dpkt opens (pcapng files
    # named .pcap and the versions dpkt refuses are left to the other tests)
    dpkt = need_module("dpkt", "pip install 'ipv6flow[test]'")
    compared = frames = 0
    for name in CLASSIC_PCAPS:
        path = CAPTURES / name
        try:
            with open(path, "rb") as fh:
                theirs = [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]
        except (ValueError, dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError):
            continue
        _, ours = read_all(path)
        assert [r.data for r in ours] == [buf for _, buf in theirs], name
        assert [round(float(r.ts), 6) for r in ours] == \
            [round(float(ts), 6) for ts, _ in theirs], name
        compared += 1
        frames += len(ours)
    assert compared >= 140 and frames >= 60000, (compared, frames)
