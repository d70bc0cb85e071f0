"""The compiled walk of sFlow datagrams (``_speedups.walk_sflow``, read by
``capture/sflow.py`` ``SflowFrames.add_batch``) against the Python walk it
stands in for (``udp_payload`` + ``parse_datagram``, ``SflowFrames.add``).

Two levels, on the real sFlow captures of ../shared/sampled, the hostile
corpus's sFlow cases, datagrams cut at every byte and hypothesis-generated
datagrams in many carriers:

* per frame: what the walk says of each frame is what the Python pair
  finds -- not a datagram to the port; a clean datagram with the same
  place in the frame, agent, sub-agent, sequence number, skipped records
  and, sample by sample, source, sequence number, rate, link type, wire
  length and header bytes; or a datagram the walk left to Python, which
  then finds a problem or a bad sample in it. Only "not sure" (status 2)
  asserts nothing: those frames go through the Python pair;
* per stream: ``SflowFrames`` fed batch by batch (the compiled walk, with
  numpy bookkeeping and grouping) hands out the same batches with the
  same (rate, cut), frame for frame, and leaves the same sampling state,
  sequence table and count of other frames as fed record by record (the
  Python walk), also with the caps and the group size made tiny so that
  every cap and every hand-out rule is met.
"""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED, missing, need_speedups
from ipv6flow.analysis import sampling
from ipv6flow.analysis.sampling import SamplingState
from ipv6flow.capture import open_capture
from ipv6flow.capture import sflow as sf
from ipv6flow.capture.batch import Batch
from ipv6flow.decode.sflow import SKIP_NAMES, _address, parse_datagram

TESTS = Path(__file__).resolve().parent
AKVORADO = SHARED / "sampled" / "akvorado"
PORT = 6343


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load("hostile_generate_sflow_walk", TESTS / "hostile" / "generate.py")
u32 = gen.u32


@pytest.fixture(autouse=True)
def _walk():
    if sf._walk_sflow is None:
        need_speedups()
        missing("the compiled sFlow walk is not in use (IPV6FLOW_PURE_PYTHON set?)")


def make_batch(frames) -> Batch:
    """A Batch of frames [(ts, linktype, wirelen, data)], with a gap of
    junk between frames (as a pcap buffer has record headers)."""
    parts, offsets, at = [], [], 0
    for _, _, _, data in frames:
        parts.append(b"\xee" * 3)
        at += 3
        offsets.append(at)
        parts.append(data)
        at += len(data)
    return Batch(b"".join(parts) + b"\xee", np.array(offsets, dtype=np.int64),
                 np.array([len(f[3]) for f in frames], dtype=np.int64),
                 np.array([f[2] for f in frames], dtype=np.int64),
                 np.array([f[0] for f in frames], dtype=np.float64),
                 np.array([f[1] for f in frames], dtype=np.int32))


# -- per frame -------------------------------------------------------------------

def check_walk(frames, port=PORT) -> dict:
    """Assert the walk's word on every frame (module docstring); returns
    how many frames got each status."""
    batch = make_batch(frames)
    status, bounds, drows, agents, srows = sf._walk_sflow(
        batch.buffer, batch.offsets, batch.caplens, batch.linktypes, port, sf._TUNNEL_PORTS,
        sf._HEADER_LTS)
    status = list(status)
    bounds = np.frombuffer(bounds, dtype=np.int64).reshape(-1, 2).tolist()
    drows = np.frombuffer(drows, dtype=np.int64).reshape(-1, sf._DGRAM_COLS).tolist()
    srows = np.frombuffer(srows, dtype=np.int64).reshape(-1, sf._SAMPLE_COLS).tolist()
    assert len(status) == len(frames)
    counts = {s: status.count(s) for s in range(4)}
    d_at = s_at = 0
    for i, (ts, lt, wire, data) in enumerate(frames):
        where = sf.udp_payload(lt, data, wire, port)
        s = status[i]
        if s == sf._OTHER:
            assert where is None, (i, where)
            continue
        if s == sf._UNSURE:
            continue
        assert where is not None and tuple(where) == tuple(bounds[i]), (i, where, bounds[i])
        d = parse_datagram(data, *where)
        if s == sf._PYTHON_WALK:
            assert d.problem is not None or d.bad_samples, (i, "left to Python but clean")
            continue
        assert s == sf._CLEAN
        assert d.problem is None and d.bad_samples == 0, (i, d.problem, d.bad_samples)
        row = drows[d_at]
        assert row[sf._D_FRAME] == i
        kind = row[sf._D_KIND]
        assert _address(kind, agents, 16 * d_at, 16 * d_at + 16)[0] == d.agent
        assert (row[sf._D_SUB], row[sf._D_SEQ]) == (d.sub_agent, d.sequence)
        skipped = {name: n for name, n in zip(SKIP_NAMES, row[sf._D_SKIPS:]) if n}
        assert skipped == d.skipped, i
        assert row[sf._D_SAMPLES] == len(d.samples)
        for smp in d.samples:
            (src, seq, rate, _pool, _drops, slt, swire, hstart, hstop) = smp
            r = srows[s_at]
            assert r[sf._S_DGRAM] == d_at
            assert (r[sf._S_TYPE], r[sf._S_INDEX]) == src
            assert (r[sf._S_SEQ], r[sf._S_RATE], r[sf._S_LT], r[sf._S_WIRE]) == \
                (seq, rate, slt, swire)
            assert r[sf._S_CAP] == hstop - hstart
            start = r[sf._S_OFF] - batch.offsets[i]                # the header's place in buf
            assert start == hstart, (i, start, hstart)
            assert batch.buffer[r[sf._S_OFF]:r[sf._S_OFF] + r[sf._S_CAP]] == data[hstart:hstop]
            s_at += 1
        d_at += 1
    assert (d_at, s_at) == (len(drows), len(srows))
    return counts


# -- per stream ------------------------------------------------------------------

def _collect(it, out):
    for batch, rate, cut in it:
        out.append((rate, cut, [tuple(r) for r in batch.records()]))


def stream(frames, compiled: bool, chunks=None, port=PORT):
    """What SflowFrames hands out and keeps, fed record by record (the
    Python walk) or in batches of ``chunks`` frames (the compiled walk)."""
    state = SamplingState()
    frames_ = sf.SflowFrames(port, state)
    out = []
    if compiled:
        at = 0
        for n in chunks or [len(frames)]:
            if at < len(frames):
                _collect(frames_.add_batch(make_batch(frames[at:at + n])), out)
            at += n
        if at < len(frames):
            _collect(frames_.add_batch(make_batch(frames[at:])), out)
    else:
        _collect(frames_.from_records(frames), out)
    _collect(frames_.flush(), out)
    return out, state.report(_no_counts()), state.agents, frames_._seqs, frames_.other_frames


def _no_counts():
    from ipv6flow.summary import Summary
    return Summary().counts()


def check_stream(frames, chunks=None, port=PORT):
    python = stream(frames, False, port=port)
    compiled = stream(frames, True, chunks, port=port)
    assert compiled[0] == python[0]        # the batches, their rate and cut, in order
    assert compiled[1:] == python[1:]      # sampling section, agents, sequences, others
    # every sample counted is handed out, once
    assert sum(len(rows) for _, _, rows in python[0]) == python[1]["samples"]
    return python


def set_tiny_caps(mp, rows, nbytes, sequences, agents):
    """Caps and group size small enough for a few datagrams to meet them
    (``mp``: a pytest MonkeyPatch)."""
    for name, value in (("GROUP_ROWS", rows), ("MAX_PENDING", rows),
                        ("MAX_PENDING_BYTES", nbytes), ("MAX_SEQUENCES", sequences)):
        mp.setattr(sf, name, value)
    for name, value in (("MAX_AGENTS", agents), ("MAX_SOURCES", 2), ("MAX_RATES", 2)):
        mp.setattr(sampling, name, value)


@pytest.fixture
def tiny_caps(monkeypatch):
    set_tiny_caps(monkeypatch, rows=5, nbytes=250, sequences=6, agents=3)


# -- inputs ----------------------------------------------------------------------

def read_frames(path):
    with open_capture(path) as cap:
        return [tuple(r) for r in cap]


def akvorado_files():
    files = sorted(AKVORADO.glob("sflow-*.pcap"))
    if not files:
        missing(f"the sampled exports are not at {AKVORADO} (set IPV6FLOW_SHARED)")
    return files


def hostile_sflow(tmp_path_factory):
    names = [n for n in gen.names() if n.startswith("sflow-")]
    out = tmp_path_factory.mktemp("hostile-sflow")
    gen.build(out, only=names)
    return {n: read_frames(out / n) for n in names}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_sflow(tmp_path_factory)


def bench_datagram(seq=1, n=8, rate=1):
    """A datagram as benchmarks/sflow.py writes them."""
    rng = random.Random(seq)
    samples = []
    for k in range(n):
        frame = gen.SAMPLED if k % 2 else gen.eth(gen.ip4(gen.udp(rng.randbytes(300), 5000, 53),
                                                           17), 0x0800)
        head = frame[:128]
        rec = u32(1) + u32(len(frame) + 4) + u32(4) + u32(len(head)) + gen.pad4(head)
        body = (u32(seq * n + k) + u32(3) + u32(rate) + u32(0) + u32(0) + u32(3) + u32(4)
                + u32(1) + u32(1) + u32(len(rec)) + rec)
        samples.append(u32(1) + u32(len(body)) + body)
    return (u32(5) + u32(1) + bytes([192, 0, 2, 1]) + u32(0) + u32(seq) + u32(0) + u32(n)
            + b"".join(samples))


def carrier4(d, sport=50000, dport=PORT):
    return gen.eth(gen.ip4(gen.udp(d, sport, dport), 17), 0x0800)


# -- the tests -----------------------------------------------------------------

def test_real_sflow_captures():
    total = {s: 0 for s in range(4)}
    for path in akvorado_files():
        frames = read_frames(path)
        counts = check_walk(frames)
        for s, n in counts.items():
            total[s] += n
        check_stream(frames)
        check_stream(frames, chunks=[1, 2, 3] * len(frames))
    # the real exports are clean datagrams in plain carriers: all compiled
    assert total[sf._CLEAN] > 0 and total[sf._UNSURE] == 0, total


def test_hostile_sflow_cases(hostile):
    seen = {s: 0 for s in range(4)}
    for name, frames in hostile.items():
        for s, n in check_walk(frames).items():
            seen[s] += n
        check_stream(frames, chunks=[7, 1, 64] * len(frames))
    # every case has bad datagrams: some were left to the Python walk
    assert seen[sf._PYTHON_WALK] > 0 and seen[sf._CLEAN] > 0, seen


def test_hostile_sflow_cases_tiny_caps(hostile, tiny_caps):
    for name, frames in hostile.items():
        check_stream(frames[:400], chunks=[3, 50] * len(frames))


def test_every_cut_of_a_carrier_frame():
    """A benchmark datagram and real ones, each frame cut at every byte."""
    sources = [carrier4(bench_datagram(1)), carrier4(bench_datagram(2, rate=100))]
    for path in akvorado_files()[:4]:
        sources += [data for _, _, _, data in read_frames(path)[:2]]
    for frame in sources:
        frames = [(float(k), 1, len(frame), frame[:k]) for k in range(len(frame) + 1)]
        counts = check_walk(frames)
        assert counts[sf._CLEAN] >= 1
        check_stream(frames, chunks=[5] * len(frames))


def test_every_cut_of_a_datagram_inside_its_frame():
    """The capture keeps the whole frame but the UDP and IP lengths stop
    the datagram at every byte: lengths that lie to the walk."""
    d = bench_datagram(3)
    frames = []
    for k in range(len(d) + 1):
        f = gen.eth(gen.ip4(gen.udp(d, 50000, PORT, ulen=8 + k), 17), 0x0800)
        frames.append((float(k), 1, len(f), f))
    check_walk(frames)
    check_stream(frames, chunks=[11] * len(frames))


def test_carriers_the_walk_reads_and_leaves():
    d = bench_datagram(4)
    ip6_udp = gen.ip6(gen.udp(d, 50000, PORT), 17)
    teredo_like = u32(5) + u32(1) + bytes([0x60, 0, 0, 1]) + d[12:]
    cases = {
        "eth ipv4": ((1, carrier4(d)), sf._CLEAN),
        "eth qinq ipv4": ((1, gen.MAC_B + gen.MAC_A + bytes.fromhex("88a80064810000c8")
                           + gen.u16(0x0800) + gen.ip4(gen.udp(d, 50000, PORT), 17)),
                          sf._CLEAN),
        "eth ipv6": ((1, gen.eth(ip6_udp)), sf._CLEAN),
        "raw ipv4": ((101, gen.ip4(gen.udp(d, 50000, PORT), 17)), sf._CLEAN),
        "raw ipv6": ((229, ip6_udp), sf._CLEAN),
        "ipv4 options": ((1, gen.eth(gen.ip4(gen.udp(d, 50000, PORT), 17, ihl=7), 0x0800)),
                         sf._CLEAN),
        "other port": ((1, carrier4(d, dport=6344)), sf._OTHER),
        "from the sFlow port": ((1, carrier4(d, sport=PORT, dport=9)), sf._OTHER),
        "tunnel source port": ((1, carrier4(d, sport=4789)), sf._UNSURE),
        "teredo-like payload": ((1, carrier4(teredo_like)), sf._UNSURE),
        "ipv6 hop-by-hop": ((1, gen.eth(gen.ip6(gen.ext(17) + gen.udp(d, 50000, PORT), 0))),
                            sf._UNSURE),
        "ipv4 later fragment": ((1, gen.eth(gen.ip4(gen.udp(d, 50000, PORT), 17, frag=20),
                                            0x0800)), sf._UNSURE),
        "ipv4 total length 0": ((1, gen.eth(gen.ip4(gen.udp(d, 50000, PORT), 17, tot=0),
                                           0x0800)), sf._UNSURE),
        "linux cooked": ((113, bytes(14) + gen.u16(0x0800) + gen.ip4(gen.udp(d, 50000, PORT),
                                                                      17)), sf._UNSURE),
        "tcp": ((1, gen.eth(gen.ip4(gen.tcp(d, 50000, PORT), 6), 0x0800)), sf._UNSURE),
        "bad version": ((1, carrier4(u32(4) + d[4:])), sf._PYTHON_WALK),
    }
    frames = [(float(i), lt, len(f), f) for i, ((lt, f), _) in enumerate(cases.values())]
    batch = make_batch(frames)
    status = sf._walk_sflow(batch.buffer, batch.offsets, batch.caplens, batch.linktypes, PORT,
                            sf._TUNNEL_PORTS, sf._HEADER_LTS)[0]
    assert dict(zip(cases, status)) == {k: want for k, (_, want) in cases.items()}
    check_walk(frames)
    check_stream(frames, chunks=[2] * len(frames))


def test_rows_outside_the_buffer_are_refused():
    batch = make_batch([(0.0, 1, 100, carrier4(bench_datagram(5)))])
    for offsets, caplens in (([len(batch.buffer)], [1]), ([-1], [10]), ([0], [1 << 40])):
        with pytest.raises(ValueError):
            sf._walk_sflow(batch.buffer, np.array(offsets, dtype=np.int64),
                           np.array(caplens, dtype=np.int64), batch.linktypes, PORT,
                           sf._TUNNEL_PORTS, sf._HEADER_LTS)
    with pytest.raises(ValueError):
        sf._walk_sflow(batch.buffer, batch.offsets, batch.caplens[:0], batch.linktypes, PORT,
                       sf._TUNNEL_PORTS, sf._HEADER_LTS)
    with pytest.raises(ValueError):
        sf._gather(b"abc", np.array([2], dtype=np.int64), np.array([2], dtype=np.int64))
    assert sf._gather(b"abcdef", np.array([4, 0], dtype=np.int64),
                      np.array([2, 1], dtype=np.int64)) == b"efa"


# -- hypothesis: datagrams of every shape, in every carrier ------------------------

AGENTS = (bytes([192, 0, 2, 9]), bytes([0x60, 1, 2, 3]), bytes.fromhex("20010db8" + "00" * 11 + "01"))
HEADERS = (gen.SAMPLED, gen.SAMPLED4, gen.eth(gen.ip4(gen.udp(b"y" * 200, 1, 53), 17), 0x0800)[:128],
           b"", b"\x45")


@st.composite
def header_records(draw):
    kind = draw(st.sampled_from(["raw", "raw", "raw", "other", "enterprise", "lie"]))
    if kind == "other":
        return u32(1001) + u32(8) + bytes(8)
    if kind == "enterprise":
        return u32((4300 << 12) | 1) + u32(4) + bytes(4)
    frame = draw(st.sampled_from(HEADERS))
    proto = draw(st.sampled_from([1, 1, 11, 12, 13, 4, 31, 99]))
    extra = draw(st.sampled_from([0, 0, 4, 100, 2000]))
    stripped = draw(st.sampled_from([0, 4, 4, 9000]))
    rec = gen.sflow_header_record(frame, proto, frame_length=len(frame) + extra + stripped,
                                  stripped=stripped)
    if kind == "lie":
        at = draw(st.sampled_from([4, 12, 16, 20, 24]))
        value = draw(st.sampled_from([0, 3, 0x7FFFFFFF, 0xFFFFFFFF, 262145]))
        rec = rec[:at] + u32(value) + rec[at + 4:]
    return rec


@st.composite
def samples_(draw):
    kind = draw(st.sampled_from(["flow", "flow", "flow", "expanded", "counter", "discard",
                                 "enterprise", "other", "lie"]))
    if kind in ("counter", "discard", "enterprise", "other"):
        fmt = {"counter": 2, "discard": 5, "enterprise": (4300 << 12) | 1, "other": 9}[kind]
        return u32(fmt) + u32(8) + bytes(8)
    records = draw(st.lists(header_records(), max_size=3))
    smp = gen.sflow_flow_sample(records, seq=draw(st.integers(0, 6)),
                                source=(draw(st.integers(0, 2)), draw(st.integers(0, 3))),
                                rate=draw(st.sampled_from([0, 1, 1, 2, 10, 1 << 31])),
                                expanded=kind == "expanded")
    if kind == "lie":
        at = draw(st.integers(0, max(0, len(smp) - 4)))
        smp = smp[:at] + u32(draw(st.sampled_from([0, 1, 0xFFFFFFFF, 1 << 20]))) + smp[at + 4:]
    return smp


@st.composite
def datagrams(draw):
    samples = draw(st.lists(samples_(), max_size=5))
    d = gen.sflow_datagram(samples, seq=draw(st.integers(0, 8)), agent=draw(st.sampled_from(AGENTS)),
                           sub_agent=draw(st.integers(0, 1)),
                           version=draw(st.sampled_from([5, 5, 5, 5, 4])))
    if draw(st.integers(0, 9)) == 0:
        d += b"\x00" * 4                                          # trailing bytes
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(d)))
        d = d[:at] + draw(st.binary(min_size=1, max_size=4)) + d[at + 1:]
    return d


@st.composite
def carried(draw):
    """(ts, linktype, wirelen, captured bytes) of a frame holding a datagram."""
    d = draw(datagrams())
    sport = draw(st.sampled_from([50000, 50000, 4789, 3544, PORT]))
    dport = draw(st.sampled_from([PORT, PORT, PORT, 6344]))
    u = gen.udp(d, sport, dport)
    how = draw(st.sampled_from(["eth4", "eth4", "vlan4", "eth6", "raw4", "raw6", "ext6"]))
    if how == "eth4":
        f, lt = gen.eth(gen.ip4(u, 17), 0x0800), 1
    elif how == "vlan4":
        f, lt = gen.MAC_B + gen.MAC_A + bytes.fromhex("81000064") + gen.u16(0x0800) \
            + gen.ip4(u, 17), 1
    elif how == "eth6":
        f, lt = gen.eth(gen.ip6(u, 17)), 1
    elif how == "raw4":
        f, lt = gen.ip4(u, 17), draw(st.sampled_from([12, 101, 228]))
    elif how == "raw6":
        f, lt = gen.ip6(u, 17), draw(st.sampled_from([14, 229]))
    else:
        f, lt = gen.eth(gen.ip6(gen.ext(17) + u, 0)), 1
    caplen = len(f)
    if draw(st.integers(0, 4)) == 0:
        caplen = draw(st.integers(0, len(f)))
    return (draw(st.floats(0, 1e6, allow_nan=False)), lt, len(f), f[:caplen])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(carried(), min_size=1, max_size=12), st.lists(st.integers(1, 5), max_size=12))
def test_generated_datagrams(frames, chunks):
    check_walk(frames)
    check_stream(frames, chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(carried(), min_size=1, max_size=30), st.lists(st.integers(1, 5), max_size=30))
def test_generated_datagrams_tiny_caps(frames, chunks):
    with pytest.MonkeyPatch.context() as mp:
        set_tiny_caps(mp, rows=3, nbytes=200, sequences=4, agents=2)
        check_stream(frames, chunks)


def test_no_sample_lost_when_a_flush_falls_inside_a_datagram():
    """Real group size: two groups (headers cut and whole), 7 samples a
    datagram, so the pending samples reach MAX_PENDING in the middle of a
    datagram. Every sample must be handed out (before the fix the Python
    walk put the rest of that datagram into groups already handed out:
    lost), by both walks, in the same batches."""
    rec_whole = gen.sflow_header_record(gen.SAMPLED)
    rec_cut = gen.sflow_header_record(gen.SAMPLED4, frame_length=1500)
    frames = []
    for i in range(1200):
        samples = [gen.sflow_flow_sample([rec_cut if (i + k) % 3 else rec_whole], seq=7 * i + k,
                                         rate=4) for k in range(7)]
        frames.append((float(i), 1, 0, carrier4(gen.sflow_datagram(samples, seq=i + 1))))
    frames = [(ts, lt, len(f), f) for ts, lt, _, f in frames]
    out, section, *_ = check_stream(frames, chunks=[500] * 3)
    assert section["samples"] == 8400
    assert sum(len(rows) for _, _, rows in out) == 8400
    assert sorted({(rate, cut) for rate, cut, _ in out}) == [(4, False), (4, True)]


def test_reports_with_and_without_the_compiled_walk(hostile, tmp_path, monkeypatch):
    """analyze --sflow end to end, both decoders: the report through the
    compiled walk is the report through the Python walk (the path of an
    install without the helper, or IPV6FLOW_PURE_PYTHON=1), on the real
    captures, the hostile cases and a file of benchmark datagrams."""
    import dataclasses
    from ipv6flow.cli import sampled_options
    from ipv6flow.decode import DecodeOptions
    from ipv6flow.engine.local import analyze_paths
    from ipv6flow.options import Options

    bench = tmp_path / "bench.pcap"
    bench.write_bytes(gen.pcap([carrier4(bench_datagram(s, rate=1 + s % 3)) for s in range(300)]))
    paths = [str(p) for p in akvorado_files()] + [str(bench)]
    hostile_dir = tmp_path / "hostile"
    gen.build(hostile_dir, only=list(hostile))
    paths += [str(hostile_dir / n) for n in hostile]
    opts = sampled_options(DecodeOptions(), PORT)
    for path in paths:
        for decoder in ("fast", "reference"):
            options = Options(dataclasses.replace(opts, sflow_port=PORT), decoder=decoder)
            compiled = analyze_paths([path], options).report()
            with monkeypatch.context() as mp:
                mp.setattr(sf, "_walk_sflow", None)
                python = analyze_paths([path], options).report()
            assert compiled == python, (path, decoder)
            assert compiled["sampling"]["samples"] > 0 or "random" in path or \
                "count" in path or "version" in path, path


def test_collect_batches_of_received_datagrams():
    """collect folds each batch of received datagrams (raw IPv4 or IPv6
    frames made by udp_frame) with from_batch: the compiled walk takes
    them all, and hands out what the Python walk does."""
    received = []
    for i in range(40):
        sender = "192.0.2.7" if i % 3 else "2001:db8::7"
        dst = "192.0.2.1" if i % 3 else "2001:db8::1"
        frame = sf.udp_frame(sender, 40000 + i, dst, PORT, bench_datagram(i + 1, n=1 + i % 8))
        received.append((1_700_000_000 + i, i * 1000, frame))
    batch, _, _ = sf.frames_batch(received)
    assert set(check_walk(list(batch.records())).items()) >= {(sf._CLEAN, 40)}
    out = {}
    for compiled in (True, False):
        frames = sf.SflowFrames(PORT, SamplingState())
        it = frames.from_batch(batch) if compiled else frames.from_records(batch.records())
        handed = []
        _collect(it, handed)
        _collect(frames.flush(), handed)
        out[compiled] = (handed, frames.sampling.report(_no_counts()))
    assert out[True] == out[False]
    assert out[True][1]["samples"] == sum(1 + i % 8 for i in range(40))
