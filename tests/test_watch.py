"""``watch``: rotated captures analysed once each, across restarts and crashes.

The captures are written the way ``tcpdump -G`` writes them: one file at a
time, growing in steps, the next file created once the previous one is
closed; the merged report must equal ``analyze_paths`` over all the files,
and each file must be reported exactly once.
"""

import collections
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipv6flow.decode import DecodeOptions
from ipv6flow.engine import watch as watch_mod
from ipv6flow.engine.local import analyze_paths
from ipv6flow.engine.watch import REPORT_SUFFIX, watch
from ipv6flow.options import Options
from ipv6flow.errors import Ipv6flowError, UsageError
from ipv6flow.report.jsonout import dumps

from conftest import Lines

ROOT = Path(__file__).resolve().parents[1]
OPTS = DecodeOptions()
INTERVAL = 1.0
SETTLE = 0.3
POLL = 0.05


def traffic(seed: int, n: int = 40):
    """``n`` frames of a varied mix (IPv4, native IPv6 with extension
    headers, 6in4, 6to4, Teredo, NAT64 well-known prefix, ARP), no NAT64
    evidence to discover: so per-file analysis merged equals one analysis."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    kinds = [
        lambda i: eth / IP(src="192.0.2.1", dst="198.51.100.2") / TCP(sport=1000 + i, dport=443),
        lambda i: eth / IP(src="192.0.2.1", dst="198.51.100.3") / UDP(sport=1000 + i, dport=9)
        / Raw(b"x" * i),
        lambda i: eth / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1000 + i, dport=80),
        lambda i: eth / IPv6(src="2001:db8::1", dst="2001:db8::3") / IPv6ExtHdrHopByHop()
        / UDP(sport=1000 + i, dport=9),
        lambda i: eth / IPv6(src="2001:db8::1", dst="2001:db8::4") / IPv6ExtHdrFragment(id=i)
        / UDP(sport=1000 + i, dport=9),
        lambda i: eth / IP(src="192.0.2.1", dst="192.0.2.9", proto=41)
        / IPv6(src="2001:db8:1::1", dst="2001:db8:2::2") / UDP(sport=1000 + i, dport=9),
        lambda i: eth / IP(src="192.0.2.1", dst="192.88.99.1", proto=41)
        / IPv6(src="2002:c000:201::1", dst="2001:db8::9") / UDP(sport=1000 + i, dport=9),
        lambda i: eth / IP(src="192.0.2.1", dst="203.0.113.5") / UDP(sport=3544, dport=3544)
        / IPv6(src="2001:0:4136:e378:8000:63bf:3fff:fdd2", dst="2001:db8::5") / UDP(),
        lambda i: eth / IPv6(src="2001:db8::7", dst="64:ff9b::c633:6407") / TCP(dport=443),
        lambda i: eth / ARP(psrc="192.0.2.1", pdst="192.0.2.2"),
    ]
    out = []
    for i in range(n):
        frame = bytes(kinds[(i * 7 + seed) % len(kinds)](i))
        out.append((1700000000 + seed * 3 + i * 0.07, frame))
    return out


def pcap_header():
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def pcap_records(rows):
    out = []
    for ts, frame in rows:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return b"".join(out)


def write_file(path, rows, mtime=None):
    path.write_bytes(pcap_header() + pcap_records(rows))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


class SlowWriter(threading.Thread):
    """Writes ``files`` one after the other like ``tcpdump -G``: header,
    then the records in steps; half way through each file a pause longer
    than the settle time (a quiet link), which only the newest-file rule
    keeps the watcher from mistaking for the end."""

    def __init__(self, folder, files, step=0.03, pause=2.5 * SETTLE):
        super().__init__(daemon=True)
        self.folder, self.files, self.step, self.pause = folder, files, step, pause
        self.started_file = collections.defaultdict(threading.Event)
        self.error = None

    def run(self):
        try:
            for k, (name, rows) in enumerate(self.files):
                with open(self.folder / name, "wb", buffering=0) as fh:
                    self.started_file[k].set()
                    fh.write(pcap_header())
                    half = len(rows) // 2
                    for j in range(0, len(rows), 5):
                        fh.write(pcap_records(rows[j:j + 5]))
                        time.sleep(self.pause if j <= half < j + 5 else self.step)
        except BaseException as e:      # pragma: no cover - shown by the test
            self.error = e


class Run(threading.Thread):
    """One watch run in a thread, with its own stop event."""

    def __init__(self, folder, state, log, **kw):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.folder, self.state, self.log, self.kw = folder, state, log, kw
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = watch(str(self.folder),
                                Options(OPTS, INTERVAL, state_file=str(self.state),
                                        settle=SETTLE, poll=POLL, **self.kw),
                                on_report=lambda p, r: self.log.append((p, r)),
                                stop=self.stop)
        except BaseException as e:
            self.error = e

    def end(self):
        self.stop.set()
        self.join(30)
        assert not self.is_alive()
        if self.error:
            raise self.error


def wait_for(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def expected_merged(folder, names):
    return dumps(analyze_paths([os.path.join(str(folder), n) for n in names],
                               Options(OPTS, INTERVAL)).report())


def check_per_file_reports(folder, names, log):
    """Each file reported once, and its report is that of the whole file."""
    counted = collections.Counter(os.path.basename(p) for p, _ in log)
    assert counted == collections.Counter(names), counted
    for path, report in log:
        whole = analyze_paths([path], Options(OPTS, INTERVAL)).report()
        assert dumps(report) == dumps(whole), path
        on_disk = json.loads(Path(path + REPORT_SUFFIX).read_text())
        assert dumps(on_disk) == dumps(whole), path


def test_growing_files_and_a_restart(tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir()
    state = tmp_path / "state.json"
    names = [f"cap-{k:02d}.pcap" for k in range(5)]
    writer = SlowWriter(folder, [(n, traffic(k)) for k, n in enumerate(names)])
    log = []
    run1 = Run(folder, state, log)
    run1.start()
    writer.start()
    # The first run takes the first two files, then stops (restart in the middle).
    assert wait_for(lambda: len(log) >= 2 or run1.error), "first run processed nothing"
    run1.end()
    assert run1.result.processed and len(log) == len(run1.result.processed)
    # While it is down, the writer goes on; a new run picks up from the state.
    assert wait_for(lambda: writer.started_file[3].is_set())
    run2 = Run(folder, state, log)
    run2.start()
    writer.join(60)
    assert writer.error is None
    # Everything but the newest file, which a running capture still owns.
    assert wait_for(lambda: len(log) >= len(names) - 1 or run2.error)
    time.sleep(3 * SETTLE)
    run2.end()
    assert len(log) == len(names) - 1
    assert sorted(os.path.basename(p) for p, _ in log) == names[:-1]
    # The capture has ended: a cron-style run takes the last file too.
    time.sleep(SETTLE)
    merged_seen = []
    result = watch(str(folder), Options(OPTS, INTERVAL, state_file=str(state), settle=SETTLE,
                                        once=True, newest_settle=SETTLE),
                   on_report=lambda p, r: log.append((p, r)), on_merged=merged_seen.append)
    assert [os.path.basename(p) for p in result.processed] == names[-1:]
    check_per_file_reports(folder, names, log)
    want = expected_merged(folder, names)
    assert dumps(result.merged) == want
    assert dumps(merged_seen[-1]) == want
    assert (folder / "merged.ipv6flow.json").read_text() == want
    # And once more: nothing left to do, nothing repeated.
    again = watch(str(folder), Options(OPTS, INTERVAL, state_file=str(state), settle=0,
                                       once=True, newest_settle=0),
                  on_report=lambda p, r: log.append((p, r)))
    assert again.processed == [] and dumps(again.merged) == want
    saved = json.loads(state.read_text())
    assert sorted(saved["done"]) == names and saved["commits"] == len(names)


def complete_files(folder, count, start=0):
    """``count`` finished captures with mtimes in the past, oldest first."""
    names = []
    now = time.time()
    for k in range(start, start + count):
        name = f"rot-{k:02d}.pcap"
        write_file(folder / name, traffic(k, 12), mtime=now - 100 + k)
        names.append(name)
    return names


def once(folder, on_merged=None, on_warning=None, **kw):
    """One ``--once`` run; ``kw``: Options fields."""
    log = []
    kw.setdefault("settle", 1.0)
    kw.setdefault("newest_settle", 1.0)
    res = watch(str(folder), Options(OPTS, INTERVAL, once=True, **kw),
                on_report=lambda p, r: log.append(os.path.basename(p)), on_merged=on_merged,
                on_warning=on_warning)
    return res, log


def test_newest_file_waits_for_the_next_rotation(tmp_path):
    names = complete_files(tmp_path, 3)
    res, log = once(tmp_path, newest_settle=None)
    assert log == names[:2]
    names += complete_files(tmp_path, 1, start=3)
    res, log = once(tmp_path, newest_settle=None)
    assert log == names[2:3]
    # A file written just now is not settled, even when not the newest.
    fresh = tmp_path / "rot-09.pcap"
    write_file(fresh, traffic(9, 5))
    os.utime(tmp_path / names[3], (time.time() - 200,) * 2)   # make it older than fresh
    write_file(tmp_path / "rot-10.pcap", traffic(10, 5))
    res, log = once(tmp_path, newest_settle=None)
    assert "rot-09.pcap" not in log and log == [names[3]]


def test_crash_between_commit_and_merged_report_is_repaired(tmp_path):
    names = complete_files(tmp_path, 3)
    snaps = []
    once(tmp_path, on_merged=lambda r: snaps.append(dumps(r)))
    merged = tmp_path / "merged.ipv6flow.json"
    want = expected_merged(tmp_path, names)
    assert merged.read_text() == want
    # As if the process died after committing file 3 to the state, before
    # the merged report took it in.
    merged.write_text(snaps[1])
    res, log = once(tmp_path)
    assert log == [] and merged.read_text() == want and dumps(res.merged) == want
    # A lost merged report is rebuilt from the per-file reports.
    merged.unlink()
    warnings = []
    res, log = once(tmp_path, on_warning=warnings.append)
    assert log == [] and merged.read_text() == want


def test_crash_before_commit_analyses_the_file_again(tmp_path, monkeypatch):
    names = complete_files(tmp_path, 3)
    real = watch_mod.Watcher._write_state
    calls = []

    def dying(self):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real(self)

    monkeypatch.setattr(watch_mod.Watcher, "_write_state", dying)
    first = []
    with pytest.raises(RuntimeError):
        watch(str(tmp_path), Options(OPTS, INTERVAL, once=True, settle=1.0, newest_settle=1.0),
              on_report=lambda p, r: first.append(os.path.basename(p)))
    monkeypatch.setattr(watch_mod.Watcher, "_write_state", real)
    assert first == names[:1]
    res, log = once(tmp_path)
    assert first + log == names
    assert (tmp_path / "merged.ipv6flow.json").read_text() == expected_merged(tmp_path, names)


def test_reused_name_is_new_content(tmp_path):
    """tcpdump -W: the same name later holds another capture."""
    (name,) = complete_files(tmp_path, 1)
    once(tmp_path)
    write_file(tmp_path / name, traffic(7, 9), mtime=time.time() - 50)
    warnings = []
    res, log = once(tmp_path, on_warning=warnings.append)
    assert log == [name]
    assert any("new content" in w for w in warnings)
    assert res.merged["totals"]["packets"] == 12 + 9


def test_compressed_after_rotation_is_counted_once(tmp_path):
    """tcpdump -z gzip: x.pcap, then x.pcap.gz while gzip runs, then x.pcap
    removed; the capture counts once whichever moment the watcher looks."""
    import gzip

    a, b, c = complete_files(tmp_path, 3)
    res, log = once(tmp_path, newest_settle=None)
    assert log == [a, b]
    # a: compressed after it was analysed (gzip -k: both stay, then the original goes)
    (tmp_path / (a + ".gz")).write_bytes(gzip.compress((tmp_path / a).read_bytes()))
    os.utime(tmp_path / (a + ".gz"), (time.time() - 30,) * 2)
    res, log = once(tmp_path, newest_settle=None)
    assert log == []
    (tmp_path / a).unlink()
    # c: rotated away by a newer file, and being compressed before it was analysed
    names = complete_files(tmp_path, 1, start=3)
    half = gzip.compress((tmp_path / c).read_bytes())[:100]
    (tmp_path / (c + ".gz")).write_bytes(half)
    os.utime(tmp_path / (c + ".gz"), (time.time() - 30,) * 2)
    res, log = once(tmp_path, newest_settle=None)
    assert log == [c]                    # the original, never the half-written .gz
    (tmp_path / (c + ".gz")).write_bytes(gzip.compress((tmp_path / c).read_bytes()))
    (tmp_path / c).unlink()
    res, log = once(tmp_path, newest_settle=1.0)
    assert log == names                  # only the newest, now settled
    everything = [a, b, c] + names
    want = expected_merged_of(tmp_path, everything)
    assert dumps(res.merged) == want
    # Rebuilt from the per-file reports, a capture and its copy count once.
    (tmp_path / "merged.ipv6flow.json").unlink()
    res, log = once(tmp_path)
    assert log == [] and dumps(res.merged) == want


def expected_merged_of(folder, names):
    """analyze over the captures, whichever of x / x.gz is still there."""
    paths = []
    for n in names:
        p = os.path.join(str(folder), n)
        paths.append(p if os.path.exists(p) else p + ".gz")
    merged = analyze_paths(paths, Options(OPTS, INTERVAL)).report()
    # The watcher's inputs name the file it analysed (the original).
    for inp, n in zip(merged["inputs"], names):
        inp["path"] = os.path.join(str(folder), n)
        inp["compression"] = None
    return dumps(merged)


def test_outputs_and_hidden_files_are_not_captures(tmp_path):
    out = tmp_path / "out"
    names = complete_files(tmp_path, 2)
    (tmp_path / ".rot-05.pcap.partial").write_bytes(b"rsync in progress")
    res, log = once(tmp_path, out_dir=str(out))
    assert log == names
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [n + REPORT_SUFFIX for n in names] + ["merged.ipv6flow.json",
                                              "ipv6flow-watch.state.json",
                                              "ipv6flow-watch.state.json.lock"])
    # Readable by others (node-exporter runs as its own user).
    assert (out / "merged.ipv6flow.json").stat().st_mode & 0o777 == 0o644
    # With pattern '*' and the reports next to the captures, still only captures.
    res, log = once(tmp_path, pattern="*", state_file=str(tmp_path / "s.json"))
    assert log == names


def test_a_second_watcher_is_refused(tmp_path):
    complete_files(tmp_path, 1)
    run = Run(tmp_path, tmp_path / "state.json", [])
    run.start()
    try:
        assert wait_for(lambda: (tmp_path / "state.json.lock").exists())
        time.sleep(0.1)
        with pytest.raises(Ipv6flowError, match="in use by another ipv6flow watch"):
            watch(str(tmp_path), Options(interval=INTERVAL, state_file=str(tmp_path / "state.json"),
                                         once=True))
    finally:
        run.end()


def test_interval_must_match_the_state(tmp_path):
    complete_files(tmp_path, 2)
    once(tmp_path)
    with pytest.raises(UsageError, match="interval"):
        watch(str(tmp_path), Options(interval=60.0, once=True))


def test_client_options_must_match_the_state(tmp_path):
    # reports made with other client options do not merge: a clear error
    complete_files(tmp_path, 2)
    once(tmp_path)
    for opts, text in ((DecodeOptions(client_key="mac"), "client key auto, not mac"),
                       (DecodeOptions(client_key="off"), "client key auto, not off")):
        with pytest.raises(UsageError, match=text):
            watch(str(tmp_path), Options(opts, INTERVAL, once=True))


def test_sigterm_ends_a_running_watch(tmp_path):
    names = complete_files(tmp_path, 2)
    script = ("import sys\n"
              "from ipv6flow.engine.watch import watch\n"
              "from ipv6flow.options import Options\n"
              "r = watch(sys.argv[1], Options(interval=1.0, settle=0, poll=30, newest_settle=0),\n"
              "          on_report=lambda p, rep: print('DONE', p, flush=True))\n"
              "print('END', len(r.processed), flush=True)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out_lines = Lines(proc)
    try:
        lines = [out_lines.get(60) for _ in names]
        assert all(ln.startswith("DONE") for ln in lines), (lines, out_lines.rest())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)     # during its 30 s poll sleep
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = out_lines.rest(), proc.stderr.read()
    assert proc.returncode == 0, err
    assert out.strip() == "END 2"
    assert time.monotonic() - t0 < 5
