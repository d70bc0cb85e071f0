"""Plain pcap files mapped instead of read (ipv6flow/_filemap.c,
``Source.map_view``): the same batches as the buffered reads on every real
capture, cut or whole, and on windows; a file that shrinks while it is
mapped ends in a one-line error instead of a SIGBUS."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ipv6flow.capture import base as base_mod
from ipv6flow.capture import open_capture
from ipv6flow.capture import pcap as pcap_mod
from ipv6flow.capture import source
from ipv6flow.errors import CaptureError

from conftest import CAPTURES, ROOT, need_module

EPOCH = 1_700_000_000


def setup_module(module):
    need_module("ipv6flow._filemap", "build it with `python setup.py build_ext --inplace`")


def pcap_bytes(datas, ts=EPOCH):
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    recs = [struct.pack("<IIII", ts + i, i, len(d), len(d) + 4) + d for i, d in enumerate(datas)]
    return head + b"".join(recs)


def frames(count, size=1400):
    return [bytes([i & 0xFF]) * 6 + bytes(6) + b"\x86\xdd" + os.urandom(size - 14)
            for i in range(count)]


def outcome(path, mapped, window=None):
    """Everything a batch reader gives for ``path``: records, counts,
    truncation, warnings and the error, and whether the file was mapped."""
    old = source.MAP_FILES
    source.MAP_FILES = mapped
    try:
        rows, kinds, error = [], set(), None
        try:
            with open_capture(path, window) as cap:
                try:
                    for batch in cap.iter_batches(reuse=True):
                        kinds.add(type(batch.buffer).__name__)
                        rows.append((batch.offsets.tolist(), batch.caplens.tolist(),
                                     batch.wirelens.tolist(), batch.ts.tolist(),
                                     [r.data for r in batch.records()]))
                except CaptureError as exc:
                    error = str(exc)
                return rows, cap.packets, cap.truncated, cap.warnings, error, kinds
        except CaptureError as exc:
            return str(exc)
    finally:
        source.MAP_FILES = old


MAGICS = {b"\xd4\xc3\xb2\xa1": "pcap", b"\xa1\xb2\xc3\xd4": "pcap",
          b"\x4d\x3c\xb2\xa1": "pcap", b"\xa1\xb2\x3c\x4d": "pcap",
          b"\x0a\x0d\x0d\x0a": "pcapng"}


def plain_captures():
    """(path, format) of every uncompressed real capture."""
    out = []
    for path in sorted(CAPTURES.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                kind = MAGICS.get(fh.read(4))
            if kind:
                out.append((path, kind))
    return out


def test_mapped_batches_equal_read_batches_on_every_real_capture_and_its_cuts(tmp_path,
                                                                          monkeypatch):
    # small batches, so records straddle many maps, and a small first read
    # (the file header's; 1 MiB otherwise), so that small files are mapped too
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 4 << 10)
    monkeypatch.setattr(base_mod, "CHUNK", 256)
    paths = plain_captures()
    if not paths:
        pytest.skip(f"no pcap files under {CAPTURES}")
    assert len(paths) > 50
    mapped_files = {"pcap": 0, "pcapng": 0}
    for path, kind in paths:
        data = path.read_bytes()
        cuts = sorted({len(data), len(data) - 1, len(data) // 2, 24, 30, 40}
                      | {len(data) * k // 7 for k in range(1, 7)})
        for cut in cuts:
            if cut < 0 or cut > len(data):
                continue
            cut_path = tmp_path / "cut.pcap"
            cut_path.write_bytes(data[:cut])
            read, mapped = outcome(cut_path, False), outcome(cut_path, True)
            if isinstance(read, tuple):
                assert read[:5] == mapped[:5], (path, cut)
                assert read[5] <= {"bytes", "bytearray"}, (path, cut)
                if "memoryview" in mapped[5]:
                    mapped_files[kind] += 1
            else:
                assert read == mapped, (path, cut)
    assert mapped_files["pcap"] > 500 and mapped_files["pcapng"] > 50, mapped_files


def pcapng_bytes(datas, big_at=None):
    """A pcapng file of ``datas`` (one interface), with a 3 MiB custom block
    (one the reader skips) before packet ``big_at``."""
    def block(btype, body):
        body += bytes(-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)
    parts = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
             block(1, struct.pack("<HHI", 1, 0, 0))]
    for i, d in enumerate(datas):
        if i == big_at:
            parts.append(block(0x40000BAD, struct.pack("<I", 1) + bytes(3 << 20)))
        parts.append(block(6, struct.pack("<IIIII", 0, 0, i, len(d), len(d) + 4) + d))
    return b"".join(parts)


def test_pcapng_skips_a_big_block_in_the_map_and_cuts_equal_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 256 << 10)
    monkeypatch.setattr(base_mod, "CHUNK", 4096)
    datas = frames(3000, 900)
    blob = pcapng_bytes(datas, big_at=1500)
    path = tmp_path / "b.pcapng"
    big = blob.index(struct.pack("<I", 0x40000BAD))
    for cut in (len(blob), big + 100, big + (3 << 20), big + (3 << 20) + 15, len(blob) - 7,
                len(blob) // 3):
        path.write_bytes(blob[:cut])
        read, mapped = outcome(path, False), outcome(path, True)
        assert read[:5] == mapped[:5], cut
        assert "memoryview" in mapped[5]
        got = [d for row in mapped[0] for d in row[4]]
        assert got == datas[:len(got)]
        if cut == len(blob):
            assert len(got) == 3000 and not mapped[2]
        else:
            assert mapped[2] or mapped[4], cut       # truncated, or an error
    # a wrong trailer after the big block is the same error either way
    bad = bytearray(blob)
    end = big + 16 + (3 << 20)
    assert bad[end - 4:end] == struct.pack("<I", 12 + 4 + (3 << 20))
    bad[end - 4:end] = struct.pack("<I", 12)
    path.write_bytes(bytes(bad))
    read, mapped = outcome(path, False), outcome(path, True)
    assert read[:5] == mapped[:5]
    assert mapped[1] == 1500 and mapped[4].endswith(
        f"at byte offset {big}: trailing total length 12 does not match the leading "
        f"{16 + (3 << 20)}")


def test_windows_are_mapped_with_the_file_offsets(tmp_path, monkeypatch):
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(base_mod, "CHUNK", 4096)
    datas = frames(3000, 700)
    blob = pcap_bytes(datas)
    path = tmp_path / "w.pcap"
    path.write_bytes(blob)
    starts = [24]
    for d in datas:
        starts.append(starts[-1] + 16 + len(d))
    cut = starts[1234]
    for window in ((24, cut, 0), (cut, None, 1234), (cut, starts[2500], 1234)):
        read, mapped = outcome(path, False, window), outcome(path, True, window)
        assert read[:5] == mapped[:5]
        assert "memoryview" in mapped[5]    # all but the first few kB
        got = [d for row in mapped[0] for d in row[4]]
        end = None if window[1] is None else starts.index(window[1])
        assert got == datas[window[2]:end]


def test_a_file_that_grows_is_read_on(tmp_path, monkeypatch):
    monkeypatch.setattr(pcap_mod, "BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(base_mod, "CHUNK", 4096)
    datas = frames(400, 1000)
    path = tmp_path / "g.pcap"
    blob = pcap_bytes(datas)
    path.write_bytes(blob[:200_000])
    seen = []
    with open_capture(path) as cap:
        for i, batch in enumerate(cap.iter_batches(reuse=True)):
            assert i == 0 or isinstance(batch.buffer, memoryview)
            seen.extend(r.data for r in batch.records())
            if i == 0:
                path.write_bytes(blob)      # same inode, longer
    assert seen == datas


SHRINK = textwrap.dedent("""
    import os, sys
    import numpy as np
    from ipv6flow.capture import open_capture
    from ipv6flow.capture import base, pcap as pcap_mod, pcapng as pcapng_mod
    from ipv6flow.errors import CaptureError
    pcap_mod.BATCH_BYTES = 1 << 20
    base.CHUNK = 4096
    path = sys.argv[1]
    total = 0
    if sys.argv[2] == "walk":            # cut between the third map and its walk
        mod, name = ((pcapng_mod, "_walk_pcapng") if path.endswith("ng")
                     else (pcap_mod, "_walk_pcap"))
        walk, calls = getattr(mod, name), []
        def cut_then_walk(*args):
            calls.append(1)
            if len(calls) == 3:
                os.truncate(path, 100_000)
            return walk(*args)
        setattr(mod, name, cut_then_walk)
    try:
        with open_capture(path) as cap:
            for i, batch in enumerate(cap.iter_batches(reuse=True)):
                if i == 2 and sys.argv[2] != "walk":
                    os.truncate(path, 100_000)   # another program cuts the file
                if sys.argv[2] != "skip" or i != 2:
                    # every byte of the batch, past the new end too
                    total += int(np.frombuffer(batch.buffer, dtype=np.uint8).sum(dtype=np.int64))
                print("batch", i, len(batch), isinstance(batch.buffer, memoryview), flush=True)
    except CaptureError as exc:
        print("error", exc)
""")


@pytest.mark.parametrize("mode, detail", [
    # the third batch's bytes read after the cut: the guard's zeros, then the error
    ("read", "the last batch read zeros where its bytes were"),
    # not read: the next map finds the file shorter than what it handed out
    ("skip", "every record read before is counted"),
    # cut before the third map's walk: the walk meets the zeros, and its
    # batch is not handed out
    ("walk", "the records before the batch it cut are counted")])
@pytest.mark.parametrize("form", ["pcap", "pcapng"])
def test_a_file_that_shrinks_under_the_map_is_an_error_not_a_sigbus(tmp_path, mode, detail,
                                                                   form):
    datas = frames(6000, 1400)           # 8.5 MB: several 1 MiB batches
    path = tmp_path / f"s.{form}"
    path.write_bytes(pcap_bytes(datas) if form == "pcap" else pcapng_bytes(datas))
    run = subprocess.run([sys.executable, "-c", SHRINK, str(path), mode], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, (run.returncode, run.stderr)
    lines = run.stdout.splitlines()
    # the first 4 kB are read (the file header's read), then 1 MiB maps;
    # the file is cut to 100 kB while the third batch is mapped
    error = (f"error {path}: the file shrank while it was read (truncated or overwritten "
             "by another program); ")
    if form == "pcap":
        batches = ["batch 0 2 False", "batch 1 740 True", "batch 2 740 True"]
        assert lines == batches[:2 if mode == "walk" else 3] + [error + detail]
    else:
        # pcapng: runs of packet blocks, and the walk goes back over a
        # buffer's last block, so which step meets the zeros first differs;
        # the batches before are whole, and the error is one of the three
        assert lines[0] == "batch 0 2 False"
        assert all(line.startswith("batch ") and line.endswith(" True")
                   for line in lines[1:-1]) and len(lines) >= 3
        assert lines[-1] in [error + d for d in (
            "the last batch read zeros where its bytes were",
            "every record read before is counted",
            "the records before the batch it cut are counted")]


def test_filemap_arguments_and_slots(tmp_path):
    from ipv6flow._filemap import FileMap
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 64)
    with open(path, "rb") as fh:
        fd = fh.fileno()
        for bad in ((-1, 10), (0, 0), (0, -5)):
            with pytest.raises(ValueError):
                FileMap(fd, *bad)
        with pytest.raises(OSError):
            FileMap(10_000, 0, 10)
        # more maps than the guard's 64 slots, each freed with its last view
        for k in range(300):
            view = memoryview(FileMap(fd, 4097 + k, 300))
            assert len(view) == 300 and view.readonly
            assert bytes(view[:3]) == bytes((4097 + k + j) & 0xFF for j in range(3))
            assert np.frombuffer(view, dtype=np.uint8)[-1] == (4097 + k + 299) & 0xFF
            view.release()
        alive = [FileMap(fd, 0, 10) for _ in range(64)]
        with pytest.raises(OSError, match="too many maps"):
            FileMap(fd, 0, 10)
        del alive
        assert len(FileMap(fd, 0, 10)) == 10
