"""Same figures however the work is spread: one process, worker processes
over record-aligned parts, a Dask LocalCluster, or reports merged later."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ipv6flow.options import Options
from ipv6flow.decode import DecodeOptions, parse_prefix
from ipv6flow.engine import parallel
from ipv6flow.engine.local import analyze_paths
from ipv6flow.engine.parallel import Part, analyze_parallel
from ipv6flow.report.jsonout import dumps
from ipv6flow.summary import Summary

from conftest import CAPTURES, ROOT, SAMPLES, need_module, sigint_default

OPTS = DecodeOptions(sixrd_prefixes=(parse_prefix("2a01:e30::/28"),))
INPUTS = [
    [str(SAMPLES / "mixed.pcap")],
    [str(SAMPLES / "nat64" / "nsp-rfc7050-56.pcap"), str(SAMPLES / "mixed.pcap.gz"),
     str(SAMPLES / "nat64" / "nsp-dns64-48.pcap"), str(SAMPLES / "nat64" / "pref64.pcap")],
    [str(CAPTURES / "PcapPlusPlus/tls2.pcap"), str(CAPTURES / "nDPI/reddit.pcap"),
     str(CAPTURES / "dpkt/truncated_dns_2.pcap"), str(CAPTURES / "gopacket/test202.pcapng")],
]


def serial(paths, decoder="fast"):
    return dumps(analyze_paths(paths, Options(OPTS, 1.0, decoder, dns_suffixes=())).report())


def record_offsets(path):
    raw = Path(path).read_bytes()
    offs, o = [], 24
    while o + 16 <= len(raw):
        offs.append(o)
        o += 16 + int.from_bytes(raw[o + 8:o + 12], "little")
    return offs


@pytest.mark.parametrize("paths", INPUTS, ids=["mixed", "nat64-mix", "real-mix"])
@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_workers_give_the_serial_report(paths, decoder):
    # min_part small, so that even the small files are cut into parts
    par = analyze_parallel(paths, Options(OPTS, 1.0, decoder, dns_suffixes=(), workers=2),
                           min_part=20000)
    assert dumps(par.report()) == serial(paths, decoder)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 2947), min_size=1, max_size=5, unique=True))
def test_any_record_boundary_split_gives_the_whole(cuts):
    path = str(SAMPLES / "nat64" / "nsp-dns64-32.pcap")
    offs = record_offsets(path)
    cuts = sorted(c % len(offs) for c in cuts if c % len(offs))
    bounds = [24] + [offs[c] for c in sorted(set(cuts))]
    parts = [Part(0, path, path, (a, b, 0)) for a, b in zip(bounds, bounds[1:] + [None])]
    orig = parallel.plan
    try:
        parallel.plan = lambda paths, real, workers, min_part: parts
        par = analyze_parallel([path], Options(OPTS, 1.0, dns_suffixes=(), workers=2))
    finally:
        parallel.plan = orig
    assert dumps(par.report()) == serial([path])


def test_a_wrong_cut_is_caught_and_the_file_read_whole():
    path = str(SAMPLES / "mixed.pcap")
    offs = record_offsets(path)
    bad = offs[1000] + 7                    # not a record boundary
    parts = [Part(0, path, path, (24, bad, 0)), Part(0, path, path, (bad, None, 0))]
    orig = parallel.plan
    try:
        parallel.plan = lambda paths, real, workers, min_part: parts
        par = analyze_parallel([path], Options(OPTS, 1.0, dns_suffixes=(), workers=2))
    finally:
        parallel.plan = orig
    assert dumps(par.report()) == serial([path])


def test_merged_reports_equal_one_run(tmp_path):
    paths = INPUTS[1]
    reports = []
    for i, p in enumerate(paths):
        out = tmp_path / f"r{i}.json"
        r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                            "--interval", "1", "--workers", "1", "-o", str(out), p],
                           capture_output=True)
        assert r.returncode == 0, r.stderr
        reports.append(str(out))
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "merge", *reports],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    merged = json.loads(r.stdout)
    whole = json.loads(dumps(analyze_paths(paths, Options(interval=1.0)).report()))
    for key in whole:
        if key == "nat64":
            # evidence that pairs an A in one file with its AAAA in another is
            # only seen by one run over both; here each file carries its own
            assert merged[key]["suspects"] == whole[key]["suspects"]
        else:
            assert merged[key] == whole[key], key


def test_merge_is_associative_on_reports(tmp_path):
    parts = [Summary.from_report(json.loads(dumps(analyze_paths([p], Options(OPTS, 1.0)).report())))
             for p in INPUTS[1]]
    a = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]))
    b = parts[0].merge(parts[1].merge(parts[2])).merge(parts[3])
    c = parts[3].merge(parts[1]).merge(parts[0]).merge(parts[2])
    ra, rb, rc = (json.loads(dumps(x.to_report())) for x in (a, b, c))
    assert ra == rb
    for r in (ra, rc):
        r.pop("inputs")
    assert ra == rc


def test_merge_refuses_what_is_not_a_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"a": 1}')
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "merge", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith(f"Error: {bad}: not an ipv6flow report")


def test_dask_local_cluster_gives_the_serial_report():
    need_module("distributed", "pip install 'ipv6flow[dask]'")
    from ipv6flow.engine.daskengine import analyze_dask
    paths = INPUTS[1]
    got = analyze_dask(paths, Options(OPTS, 1.0, dns_suffixes=(), workers=2), min_part=20000)
    assert dumps(got.report()) == serial(paths)


def _big_capture(tmp_path, frames=400_000):
    out = tmp_path / "big.pcap"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"),
                        "--frames", str(frames), "--out", str(out)], capture_output=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_prints_a_partial_report_and_leaves_no_process(tmp_path, workers):
    # big enough that the reference decoder is still busy when Ctrl-C comes
    # (about 80k frames/s per worker here)
    big = _big_capture(tmp_path, frames=900_000)
    proc = subprocess.Popen([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                             "--decoder", "reference", "--workers", workers, str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=sigint_default)
    time.sleep(2.5)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rep = json.loads(out)
    assert rep["partial"] is True
    # what was read before the signal is kept: some, not all, frames
    assert 0 < rep["totals"]["packets"] < 900_000
    assert b"interrupted" in err and b"Traceback" not in err
    time.sleep(0.5)
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or \
            "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), pid


def test_progress_line_only_on_a_terminal():
    import io
    from ipv6flow.engine.progress import Progress
    buf = io.StringIO()
    p = Progress(1000, True, buf)
    p.last = -1e9
    p(500, 10)
    p.close()
    out = buf.getvalue()
    assert "50.0% 500 B of 1.0 kB" in out and "10 frames" in out and out.endswith("\r\x1b[K")
    buf = io.StringIO()
    q = Progress(1000, False, buf)
    q(500, 10)
    q.close()
    assert buf.getvalue() == ""
    # through a pipe (not a terminal) the CLI writes no progress at all
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", str(SAMPLES / "mixed.pcap")],
                       capture_output=True)
    assert b"\r" not in r.stderr and b"\x1b" not in r.stdout


def test_workers_on_every_real_capture():
    """Every real capture, cut into parts where large enough, in one run."""
    paths = sorted(str(p) for p in CAPTURES.rglob("*")
                   if p.is_file() and p.suffix not in (".tsv", ".md"))
    par = analyze_parallel(paths, Options(OPTS, 1.0, workers=2), min_part=200_000)
    ser = analyze_paths(paths, Options(OPTS, 1.0))
    assert dumps(par.report()) == dumps(ser.report())
    assert len(par.report()["inputs"]) == len(paths)


def test_the_default_engine_for_one_file(tmp_path, monkeypatch):
    # without --workers: one process below SERIAL_BYTES / workers and for a
    # file that cannot be cut when too few workers stream it; the workers
    # otherwise, and always with an explicit --workers
    from ipv6flow import cli
    from ipv6flow.engine import local
    ran = []
    monkeypatch.setattr(local, "analyze_paths", lambda *a, **k: ran.append("one") or "one")
    monkeypatch.setattr(parallel, "analyze_parallel", lambda *a, **k: ran.append("pool") or "pool")
    monkeypatch.setattr(cli, "MIN_PART_BYTES", 1000)
    pcap = str(SAMPLES / "mixed.pcap")
    pcapng = str(SAMPLES / "mixed.pcapng")
    gz = str(SAMPLES / "mixed.pcap.gz")
    size = os.path.getsize(pcap)
    cases = [
        # (file, --workers, default workers, SERIAL_BYTES, expected)
        (pcap, None, 2, 2 * size + 2, "one"),      # under SERIAL_BYTES / 2
        (pcap, None, 2, 2 * size, "pool"),
        (pcap, 2, 2, 1 << 40, "pool"),             # an explicit --workers
        (pcap, None, 1, 1, "one"),                 # one core
        (pcapng, None, 2, 1, "one"),               # cannot be cut, 2 workers
        (gz, None, 2, 1, "one"),
        (pcapng, None, 4, 1, "pool"),              # 4 workers stream it
        (pcapng, 2, 2, 1, "pool"),
    ]
    for path, workers, cores, serial, want in cases:
        monkeypatch.setattr(cli, "SERIAL_BYTES", serial)
        monkeypatch.setattr(cli, "default_workers", lambda: cores)
        ran.clear()
        assert cli.run_engine([path], Options(workers=workers)) == want, (path, workers, cores)
        assert ran == [want]
