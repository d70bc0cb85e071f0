"""A large compressed (or pcapng) capture streamed by one reader to the
workers gives the report of ``--workers 1``, byte for byte."""

import gzip
import io
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipv6flow.options import Options
from ipv6flow.capture import Batch, pcap, source
from ipv6flow.capture.batch import Replay
from ipv6flow.decode import DecodeOptions, parse_prefix
from ipv6flow.engine import parallel
from ipv6flow.engine.local import analyze_paths
from ipv6flow.engine.parallel import Part, analyze_parallel, mark_streams
from ipv6flow.report.jsonout import dumps

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
OPTS = DecodeOptions(sixrd_prefixes=(parse_prefix("2a01:e30::/28"),))
MIB = 1 << 20


@pytest.fixture(autouse=True)
def four_mib_batches(monkeypatch):
    """The chunk counts below are for 4 MiB batches (not the default)."""
    monkeypatch.setattr(pcap, "BATCH_BYTES", 4 * MIB)


@pytest.fixture(scope="module")
def big_gz(tmp_path_factory):
    """30,000 generated frames (20 MB, five 4 MiB batches), gzip'ed."""
    d = tmp_path_factory.mktemp("stream")
    raw = d / "big.pcap"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--frames",
                        "30000", "--out", str(raw), "-q"], capture_output=True)
    assert r.returncode == 0, r.stderr
    out = d / "big.pcap.gz"
    out.write_bytes(gzip.compress(raw.read_bytes(), 1))
    return out


@pytest.fixture(autouse=True)
def stream_with_two_workers(monkeypatch):
    """These tests stream to two workers (the default needs three)."""
    monkeypatch.setattr(parallel, "STREAM_MIN_WORKERS", 2)


@pytest.fixture
def chunk_counts(monkeypatch):
    """How many chunks each streamed file's first pass handed over."""
    seen = []
    orig = parallel._stream_first_pass

    def spy(part, *args):
        res = orig(part, *args)
        seen.append(len(res[1]))
        return res
    monkeypatch.setattr(parallel, "_stream_first_pass", spy)
    return seen


@pytest.fixture
def small_steps(monkeypatch):
    """Decoded steps of 4 KiB (1 MiB by default): the first batch of a
    gzip file, what its first step leaves after the file header, is short,
    so a small file still makes several chunks."""
    monkeypatch.setattr(source, "CHUNK", 4 << 10)


def serial(paths, decoder="fast", services=()):
    return dumps(analyze_paths(paths, Options(OPTS, 1.0, decoder, dns_suffixes=services)).report())


def streamed(paths, decoder="fast", services=(), chunk=1, **kw):
    return dumps(analyze_parallel(paths, Options(OPTS, 1.0, decoder, dns_suffixes=services,
                                                 workers=2),
                                  min_part=kw.pop("min_part", 1), chunk=chunk,
                                  **kw).report())


def test_a_gzip_file_in_many_chunks_gives_the_serial_report(big_gz, chunk_counts):
    assert streamed([str(big_gz)], chunk=4 * MIB) == serial([str(big_gz)])
    assert chunk_counts == [5]


def test_without_the_dns_report_too(big_gz, chunk_counts):
    assert streamed([str(big_gz)], services=None) == serial([str(big_gz)], services=None)
    assert chunk_counts == [6]                # one batch each; the first is short


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_a_truncated_gzip_file(big_gz, tmp_path, chunk_counts, small_steps, decoder):
    cut = tmp_path / "cut.pcap.gz"
    data = big_gz.read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    got = streamed([str(cut)], decoder)
    assert got == serial([str(cut)], decoder)
    assert '"truncated": true' in got and "gzip data is cut off" in got
    assert chunk_counts == [5]


@pytest.mark.parametrize("where, message, chunks", [
    ("middle", "exceeds the maximum snapshot length", 4),
    ("crc", "gzip data is corrupt (CRC check failed", 6)])
def test_a_corrupt_gzip_file(big_gz, tmp_path, chunk_counts, where, message, chunks):
    bad = tmp_path / "bad.pcap.gz"
    data = bytearray(big_gz.read_bytes())
    if where == "middle":                     # inflates to garbage: a bad record
        data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    else:                                     # the CRC-32 of the gzip trailer
        data[-8] ^= 0xFF
    bad.write_bytes(bytes(data))
    got = streamed([str(bad)])
    assert got == serial([str(bad)])
    assert message in got and chunk_counts == [chunks]


def test_an_unreadable_record_inside_a_gzip_file(tmp_path, chunk_counts, small_steps):
    # a captured length over the limit in record 2001: an error, frames before it kept
    raw = bytearray((SAMPLES / "mixed.pcap").read_bytes())
    at = parallel_record_offset(raw, 2000)
    raw[at + 8:at + 12] = (1 << 30).to_bytes(4, "little")
    bad = tmp_path / "bad-record.pcap.gz"
    bad.write_bytes(gzip.compress(bytes(raw)))
    got = streamed([str(bad)])
    assert got == serial([str(bad)]) and "record 2001 at byte offset" in got
    assert chunk_counts == [2]


def parallel_record_offset(raw, k):
    o = 24
    for _ in range(k):
        o += 16 + int.from_bytes(raw[o + 8:o + 12], "little")
    return o


NAT64 = ["nsp-dns64-48.pcap", "nsp-rfc7050-56.pcap", "pref64.pcap", "nsp-dns64-96.pcap"]


@pytest.mark.parametrize("name", NAT64)
@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_nat64_evidence_in_a_later_chunk(tmp_path, monkeypatch, chunk_counts, small_steps, name,
                                        decoder):
    """Small batches, one per chunk: the evidence for a prefix comes in a
    later chunk than traffic to it, and in a later file than mixed.pcap
    (cut into parts); every frame is counted once, as in a serial run."""
    monkeypatch.setattr(pcap, "BATCH_BYTES", 2048)
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress((SAMPLES / "nat64" / name).read_bytes()))
    paths = [str(SAMPLES / "mixed.pcap"), str(gz)]
    got = streamed(paths, decoder)
    assert got == serial(paths, decoder)
    assert chunk_counts[0] > 5


def test_pcapng_and_stdin_are_streamed_too(tmp_path, monkeypatch, chunk_counts):
    path = str(SAMPLES / "mixed.pcapng")
    assert streamed([path]) == serial([path])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        (SAMPLES / "mixed.pcap.gz").read_bytes())))
    got = streamed(["-"])
    assert got == serial([str(SAMPLES / "mixed.pcap.gz")]).replace(
        str(SAMPLES / "mixed.pcap.gz"), "-")
    assert len(chunk_counts) == 2


def test_only_large_uncuttable_files_fewer_than_the_workers_are_streamed():
    gz, ng, pc = (str(SAMPLES / n) for n in ("mixed.pcap.gz", "mixed.pcapng", "mixed.pcap"))

    def marked(paths, workers, min_part):
        parts = [Part(i, p, p) for i, p in enumerate(paths)]
        mark_streams(parts, workers, min_part)
        return [p.stream for p in parts]
    assert marked([gz, pc], 2, 1000) == [True, False]          # not a plain pcap
    assert marked([gz, pc], 2, 400_000) == [False, False]      # too small
    assert marked([gz, ng], 2, 1000) == [False, False]         # one worker per file
    assert marked([gz, ng], 4, 1000) == [True, True]


def test_two_workers_stream_nothing_by_default(monkeypatch):
    # the default: one reader plus two workers on two cores lost to a
    # serial run (docs/DECISIONS.md, Scale)
    monkeypatch.setattr(parallel, "STREAM_MIN_WORKERS", 3)
    gz = str(SAMPLES / "mixed.pcap.gz")
    for workers, want in ((2, False), (3, True)):
        parts = [Part(0, gz, gz)]
        mark_streams(parts, workers, 1000)
        assert parts[0].stream is want


def test_ctrl_c_while_streaming(big_gz, monkeypatch):
    def slow(replay):                 # half a second per batch, in the workers too
        for b in replay.batches:
            yield from Batch(bytes(b.buffer), *b[1:]).records()
            time.sleep(0.5)
    monkeypatch.setattr(Replay, "__iter__", slow)
    # Python's own Ctrl-C handler, even where pytest was started with SIGINT
    # ignored (nohup ... &), where raising it would do nothing
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.8, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    try:
        got = analyze_parallel([str(big_gz)], Options(OPTS, 1.0, "reference", workers=2),
                               min_part=1, chunk=1)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    rep = got.report()
    assert got.interrupted and rep["partial"] is True
    assert 0 < rep["totals"]["packets"] < 30000
    assert multiprocessing.active_children() == []
