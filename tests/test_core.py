"""The compiled single pass (ipv6flow/_core.c, dispatched by
ipv6flow/fast/core.py) against the numpy kernel and the reference decoder.

* it is built and in use (CI builds it: a failure there, a skip elsewhere);
* on every real capture and sample it decides no row that the numpy kernel
  sends to the reference decoder, and every row it decides has the
  kernel's key, row state and innermost IPv6 address; it sends no more
  rows to the reference than the kernel; no read was refused by its
  bounds checks (``guard_hits``);
* the same with each frame cut at many snap lengths (rows over the same
  bytes: a read past a row's captured length would show);
* its tables are the kernel's: handed in at import, checked there, and a
  changed kernel table changes its answers the same way;
* rows that do not lie in the buffer fall back, nothing is read;
* ``--stats`` names the classifier that ran, and the reports of the three
  paths are byte-identical (also tests/test_fast.py).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from ipv6flow.decode import columns as dcols
from ipv6flow.capture import open_capture
from ipv6flow.capture.batch import Batch
from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix
from ipv6flow.errors import CaptureError
from ipv6flow.fast import Decoded, core, decode_batch, frame_columns, frame_keys, gather_columns, kernel
from ipv6flow.fast import message_spans as fast_message_spans
from ipv6flow.decode.frame import frame_key

from conftest import CAPTURES, SAMPLES, core_disagreements, fast_path, need_core

OPTS = DecodeOptions(sixrd_prefixes=(parse_prefix("2a01:e30::/28"),))
ALL = sorted(str(p.relative_to(CAPTURES)) for p in CAPTURES.rglob("*")
             if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md"))
SAMPLE_FILES = ["mixed.pcap", "mixed.pcapng", "nat64/nsp-dns64-64.pcap",
                "nat64/malformed-dns.pcap"]


def _batches(path):
    try:
        with open_capture(path) as cap:
            yield from cap.iter_batches()
    except CaptureError:
        return


def test_compiled_core_is_built_and_used():
    fn = need_core()
    assert core.compiled is fn and core.path_name() == "compiled core"
    with fast_path("numpy"):
        assert core.compiled is None and core.path_name() == "numpy kernel"
    assert core.compiled is fn


@pytest.mark.parametrize("path", [str(CAPTURES / n) for n in ALL]
                         + [str(SAMPLES / n) for n in SAMPLE_FILES])
def test_compiled_equals_numpy_on_real_captures(path):
    from ipv6flow import _core
    need_core()
    guards = _core.guard_hits()
    rows = 0
    for batch in _batches(path):
        bad = core_disagreements(batch, OPTS)
        assert not bad, bad[:10]
        _, fc, crows = core.classify(batch, OPTS)
        _, fn, _ = kernel.classify(batch, OPTS)
        assert len(fc) == len(fn), "the compiled pass sends more rows to the reference"
        _assert_columns_as_gathered(batch, crows)
        _assert_spans_as_gathered(batch, crows)
        rows += len(batch)
    assert _core.guard_hits() == guards
    assert rows > 0 or "fuzz" in path or os.path.getsize(path) < 2048 or _unreadable(path)


def _assert_columns_as_gathered(batch, crows):
    """_core.columns equals fast.gather_columns on every row of the batch
    (fallback rows too: whatever the row state, the reads clip alike)."""
    d = Decoded(batch, np.zeros(len(batch), dtype=np.int64), np.zeros(0, dtype=np.int64), crows)
    idx = np.arange(len(batch))
    got, want = core.compiled_columns(crows, batch, idx), gather_columns(d, idx)
    assert got is not None and set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        bad = np.flatnonzero(got[k] != want[k])
        assert not len(bad), (k, bad[:5], got[k][bad[:5]], want[k][bad[:5]])


def _spans_both(d, idx, icmp_type):
    """fast.message_spans of compiled rows by _core.c ``spans`` and by the
    numpy forms, as lists."""
    import ipv6flow.fast as fast
    assert fast.BUILT_SPANS is not None
    got = fast.message_spans(d, idx, icmp_type)
    saved, fast._spans = fast._spans, None
    try:
        want = fast.message_spans(d, idx, icmp_type)
    finally:
        fast._spans = saved
    return ([[a.tolist() for a in part] for part in got],
            [[a.tolist() for a in part] for part in want])


def _assert_spans_as_gathered(batch, crows):
    """_core.c ``spans`` equals fast.dns_segments and fast.icmpv6_spans on
    every row of the batch (fallback rows too, as the columns), of every
    ICMPv6 type and of Router Advertisements only; and on the IP rows, the
    compiled pass's spans equal the numpy kernel's."""
    d = Decoded(batch, np.zeros(len(batch), dtype=np.int64), np.zeros(0, dtype=np.int64), crows)
    for icmp_type in (None, 134):
        got, want = _spans_both(d, np.arange(len(batch)), icmp_type)
        assert got == want, icmp_type
    with fast_path("compiled"):
        dc = decode_batch(batch, OPTS)
        got = fast_message_spans(dc, dc.ip_rows(), 134)
    with fast_path("numpy"):
        dn = decode_batch(batch, OPTS)
        want = fast_message_spans(dn, dn.ip_rows(), 134)
    if len(dc.fallback) == len(dn.fallback):
        assert [[a.tolist() for a in part] for part in got] \
            == [[a.tolist() for a in part] for part in want]


def _unreadable(path):
    try:
        with open_capture(path) as cap:
            for _ in cap:
                pass
    except CaptureError:
        return True
    return False


# Snap lengths every frame is cut at (and the whole frame): the header
# boundaries of Ethernet, VLAN, IPv4, IPv6 and their transports.
CUT_AT = (0, 1, 13, 14, 17, 18, 20, 33, 34, 38, 40, 41, 42, 53, 54, 58, 62, 74, 94)


def _cut_batch(batch, limit=48):
    """Up to ``limit`` frames of a batch, each as rows cut at CUT_AT and
    half its length, all rows over the batch's own buffer."""
    offs, caps, lts, wires, datas = [], [], [], [], []
    buf = batch.buffer
    for i in range(min(limit, len(batch))):
        off, cap = int(batch.offsets[i]), int(batch.caplens[i])
        for k in sorted({c for c in CUT_AT if c < cap} | {cap, cap // 2, max(cap - 1, 0)}):
            offs.append(off)
            caps.append(k)
            lts.append(int(batch.linktypes[i]))
            wires.append(int(batch.wirelens[i]))
            datas.append(bytes(buf[off:off + k]))
    n = len(offs)
    cut = Batch(buf, np.array(offs, dtype=np.int64), np.array(caps, dtype=np.int64),
                np.array(wires, dtype=np.int64), np.full(n, 1.7e9),
                np.array(lts, dtype=np.int32))
    return cut, list(zip(lts, datas, wires))


@pytest.mark.parametrize("path", [str(CAPTURES / n) for n in ALL]
                         + [str(SAMPLES / "mixed.pcap")])
def test_compiled_equals_reference_on_frames_cut_at_every_header(path):
    need_core()
    for batch in _batches(path):
        cut, rows = _cut_batch(batch)
        if not rows:
            continue
        with fast_path("compiled"):
            keys, _ = frame_keys(cut, OPTS)
            cols = frame_columns(cut, OPTS)
        for (lt, data, wire), key, col in zip(rows, keys, cols):
            f = decode_frame(lt, data, wire, OPTS)
            assert key == frame_key(f), (lt, data.hex())
            assert col == dcols.frame_columns(f, lt, data, 1.7e9, wire), (lt, data.hex())
        bad = core_disagreements(cut, OPTS)
        assert not bad, bad[:10]
        break                           # the first batch of each file


def test_tables_reach_the_compiled_code(monkeypatch):
    # The C code holds no table of its own: with VXLAN's port taken out of
    # the kernel's IS_TUNNEL_PORT, both classifiers read a VXLAN frame as
    # plain UDP to port 4789 (the reference, whose port table is not
    # changed, still sees the tunnel).
    from ipv6flow import _core
    need_core()
    inner = (b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + b"\x45\x00\x00\x1c" + bytes(4)
             + b"\x40\x11\x00\x00" + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(8))
    vx = b"\x08\x00\x00\x00\x00\x00\x2a\x00" + inner
    udp = (50000).to_bytes(2, "big") + (4789).to_bytes(2, "big") \
        + (8 + len(vx)).to_bytes(2, "big") + b"\x00\x00" + vx
    ip = b"\x45\x00" + (20 + len(udp)).to_bytes(2, "big") + bytes(4) + b"\x40\x11\x00\x00" \
        + bytes([192, 0, 2, 1, 198, 51, 100, 2]) + udp
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
    batch = Batch(frame, np.array([0]), np.array([len(frame)]), np.array([len(frame)]),
                  np.array([1.7e9]), np.array([1], dtype=np.int32))
    with fast_path("compiled"):
        keys, _ = frame_keys(batch, OPTS)
    assert keys[0][2] == "vxlan"
    table = kernel.IS_TUNNEL_PORT.copy()
    table[4789] = False
    monkeypatch.setattr(kernel, "IS_TUNNEL_PORT", table)
    try:
        _core.configure(core._config())
        got = {}
        for name in ("compiled", "numpy"):
            with fast_path(name):
                got[name] = frame_keys(batch, OPTS)[0][0]
        assert got["compiled"] == got["numpy"]
        assert got["compiled"][2] == "none" and got["compiled"][3] == "udp"
    finally:
        monkeypatch.undo()
        _core.configure(core._config())
    with fast_path("compiled"):
        assert frame_keys(batch, OPTS)[0][0][2] == "vxlan"


@pytest.mark.parametrize("change", ["TOKENS", "STEPS", "ET_TOKEN", "SHIFTS", "CLASS16",
                                    "ET_TOKEN as int32", "IS_VLAN out of range"])
def test_configure_checks_what_it_is_given(change):
    from ipv6flow import _core
    need_core()
    cfg = core._config()
    if change in ("TOKENS", "STEPS"):
        cfg[change] = list(cfg[change])[::-1]
    elif change == "SHIFTS":
        cfg[change] = cfg[change] + [70]
    elif change == "ET_TOKEN as int32":
        cfg["ET_TOKEN"] = cfg["ET_TOKEN"].astype(np.int32)       # 4-byte items: refused
    elif change == "IS_VLAN out of range":
        cfg["IS_VLAN"] = cfg["IS_VLAN"].astype(np.int64) + 300
    else:
        cfg[change] = cfg[change][:-1]            # one item short
    try:
        with pytest.raises(ValueError):
            _core.configure(cfg)
        with pytest.raises(RuntimeError):         # not configured: refuses to run
            core.BUILT(b"", np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                       np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                       np.zeros(0, dtype=np.int64), 8, 8, [], False)
    finally:
        _core.configure(core._config())


def test_rows_outside_the_buffer_fall_back():
    from ipv6flow import _core
    need_core()
    data = bytes.fromhex("600000000000063b") + bytes(32)
    offs = np.array([0, 30, -1, 0, 1 << 40], dtype=np.int64)
    caps = np.array([40, 20, 10, 41, 5], dtype=np.int64)
    n = len(offs)
    out = np.zeros((len(core.COLUMNS), n), dtype=np.int64)
    fb = np.zeros(n, dtype=np.int64)
    guards = _core.guard_hits()
    nfb = core.BUILT(data, offs, caps, np.full(n, 101, dtype=np.int64), out.reshape(-1), fb,
                     8, 8, [], False)
    # row 0 lies in the buffer and is decided; rows 1-4 run past it or start before it
    assert nfb == 4 and fb[:4].tolist() == [1, 2, 3, 4]
    assert out[core.COLUMNS.index("payload"), 0] == kernel.FAM_IPV6
    assert _core.guard_hits() == guards
    # wrong array sizes or types are refused, not read
    with pytest.raises(ValueError):
        core.BUILT(data, offs, caps[:3], np.full(n, 101, dtype=np.int64), out.reshape(-1), fb,
                   8, 8, [], False)
    with pytest.raises(ValueError):
        core.BUILT(data, offs, caps, np.full(n, 101, dtype=np.int32), out.reshape(-1), fb,
                   8, 8, [], False)
    with pytest.raises(ValueError):
        core.BUILT(data, offs, caps, np.full(n, 101, dtype=np.int64), out.reshape(-1)[:-1], fb,
                   8, 8, [], False)


@pytest.mark.parametrize("env, path", [({}, "compiled core"),
                                       ({"IPV6FLOW_NUMPY_KERNEL": "1"}, "numpy kernel"),
                                       ({"IPV6FLOW_PURE_PYTHON": "1"}, "numpy kernel")])
def test_stats_names_the_classifier(env, path):
    if not env:
        need_core()
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--stats",
                        "--format", "json", str(SAMPLES / "mixed.pcap")],
                       env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"decoder fast ({path}): 2,948 frames" in r.stderr, r.stderr
    # and how plain files were read: IPV6FLOW_PURE_PYTHON, as without a
    # compiler, leaves the file map out too
    assert r.stderr.splitlines()[-1] == (
        "reading: buffered reads (the file map helper is not built)"
        if "IPV6FLOW_PURE_PYTHON" in env else "reading: file maps (plain pcap and pcapng)"), r.stderr
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--stats",
                        "--decoder", "reference", "--format", "json",
                        str(SAMPLES / "mixed.pcap")],
                       env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    assert "decoder reference: 2,948 frames" in r.stderr, r.stderr


def test_a_build_from_other_sources_leaves_the_numpy_kernel(monkeypatch):
    # an extension whose configure refuses these tables (built from other
    # sources): the import still works and the numpy kernel classifies
    from ipv6flow import _core
    need_core()
    monkeypatch.setattr(core, "_config", lambda: {"TOKENS": [0] * 8})
    try:
        fn, why = core._load()
        assert fn is None and why.startswith("built from other sources: ")
    finally:
        monkeypatch.undo()
        _core.configure(core._config())


# -- the clients' rules (_core.c population) against population.py's numpy --

from hypothesis import given, settings, strategies as st  # noqa: E402

from ipv6flow.analysis import population as pop  # noqa: E402
from ipv6flow.options import CLIENT_KEYS  # noqa: E402

CLIENT_PREFIX_SETS = ((), ("10.0.0.0/8", "2001:db8::/32"),
                      ("192.0.2.0/24", "100.64.0.0/10", "2001:db8:1:2::/64",
                       "2001:db8::1:0:0:5/126"), ("::/0", "0.0.0.0/0"))


def _both_derives(c, mode, prefixes):
    """(compiled, numpy) derive of columns ``c``, with the stream hashes."""
    p = pop.Population(mode, prefixes)
    saved = pop.compiled
    pop.compiled = pop.BUILT
    try:
        got = p.derive(c)
        pop.compiled = None
        want = p.derive(c)
        want.update(pop.stream_hashes(c, want))
    finally:
        pop.compiled = saved
    return got, want


def _assert_same_derive(c, mode, prefixes):
    got, want = _both_derives(c, mode, prefixes)
    assert set(got) == set(want) == set(pop.COMPILED_OUTPUTS)
    for k in pop.COMPILED_OUTPUTS:
        assert got[k].dtype == want[k].dtype, k
        bad = np.flatnonzero(got[k] != want[k])
        assert not len(bad), (k, mode, prefixes, {n: c[n][bad[0]] for n in c})


def _real_columns():
    rows = []
    for path in [CAPTURES / n for n in ALL] + [SAMPLES / n for n in SAMPLE_FILES]:
        for batch in _batches(str(path)):
            rows.extend(r for r in frame_columns(batch, OPTS) if r is not None)
    return dcols.columns_of(rows)


def test_population_rules_compiled_equal_numpy_on_real_captures():
    if pop.BUILT is None:
        need_core()
        pytest.skip("the compiled clients' rules are not built")
    c = _real_columns()
    assert len(c["fam"]) > 50_000         # every capture's IP rows
    for mode in CLIENT_KEYS:
        for prefixes in CLIENT_PREFIX_SETS:
            _assert_same_derive(c, mode, prefixes)


_U64 = st.integers(0, (1 << 64) - 1)
_COLUMN = {
    "fam": st.integers(0, 2), "tunnel": st.integers(0, 14), "proto": st.integers(0, 255),
    "sport": st.integers(-1, 65535), "dport": st.integers(-1, 65535),
    "icmp": st.integers(-1, 255), "v4s": st.integers(-1, (1 << 32) - 1),
    "v4d": st.integers(-1, (1 << 32) - 1), "has6": st.booleans(),
    "v6s_hi": _U64, "v6s_lo": _U64, "v6d_hi": _U64, "v6d_lo": _U64,
    "mac_s": st.integers(-1, (1 << 48) - 1), "mac_d": st.integers(-1, (1 << 48) - 1),
}
# values the rules single out: multicast, link-local, global, Teredo,
# ISATAP and EUI-64 interface identifiers, decimal-looking words, ports
_SPECIAL = {
    "v6s_hi": st.sampled_from([0x20010000_12345678, 0xFE800000_00000000, 0x2001_0db8_0000_0001,
                               0x2001_0db8_0000_0000, 0, 0x3FFF_FFFF_FFFF_FFFF]),
    "v6d_hi": st.sampled_from([0xFF02_0000_0000_0000, 0xFE80_0000_0000_0000, 0x2A00_1450_0000_0000,
                               0x2001_0db8_0000_0000]),
    "v6d_lo": st.sampled_from([0x0001_0000_0000_0004, 0x0001_0000_0000_0009, 0]),
    "v6s_lo": st.sampled_from([0x0211_22FF_FE33_4455, 0x0000_5EFE_C000_0201, 0x0200_5EFE_0A00_0001,
                               0x0000_0000_C000_0201, 0x0000_0000_0000_0443,
                               0x0000_0000_0443_0000, 0x0000_0000_0000_0001,
                               0x0192_0168_0000_0001, 0x1000_0000_0000_0001,
                               0x0001_0000_0000_0007, 0x0001_0000_0000_0008, 0]),
    "v4d": st.sampled_from([0xE0000001, 0xFFFFFFFF, 0, 0x0A000001]),
    "sport": st.sampled_from([-1, 0, 53, 443, 1023, 1024, 65535]),
    "dport": st.sampled_from([-1, 0, 53, 443, 1023, 1024, 65535]),
    "icmp": st.sampled_from([-1, 0, 8, 128, 129, 133, 255]),
    "proto": st.sampled_from([1, 6, 17, 58]),
    "fam": st.sampled_from([1, 2]),
}


def _value(name):
    return st.one_of(_COLUMN[name], _SPECIAL[name]) if name in _SPECIAL else _COLUMN[name]


_ROW = st.fixed_dictionaries({name: _value(name) for name in _COLUMN})


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(rows=st.lists(_ROW, min_size=1, max_size=40), mode=st.sampled_from(CLIENT_KEYS),
       prefixes=st.sampled_from(CLIENT_PREFIX_SETS))
def test_population_rules_compiled_equal_numpy_on_any_columns(rows, mode, prefixes):
    if pop.BUILT is None:
        need_core()
        pytest.skip("the compiled clients' rules are not built")
    c = {name: np.array([r[name] for r in rows], dtype=dcols.DTYPES.get(name, np.int64))
         for name in _COLUMN}
    _assert_same_derive(c, mode, prefixes)


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(hashes=st.lists(st.one_of(_U64, st.sampled_from([0, 1, (1 << 64) - 1, 1 << 63,
                                                         (1 << 52) - 1, 1 << 52])),
                       max_size=200),
       p=st.sampled_from([11, 12, 14, 16]), seed=st.integers(0, 2**32 - 1))
def test_hll_registers_compiled_equal_numpy(hashes, p, seed):
    from ipv6flow.analysis import sketch
    if sketch.BUILT is None:
        need_core()
        pytest.skip("the compiled register update is not built")
    h = np.array(hashes, dtype=np.uint64)
    start = np.random.default_rng(seed).integers(0, 6, 1 << p, dtype=np.uint8)
    got, want = start.copy(), start.copy()
    sketch.BUILT(got, h, p)
    idx, rank = sketch.hll_parts(h, p)
    np.maximum.at(want, idx, rank)
    assert np.array_equal(got, want)


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(values=st.lists(st.one_of(st.integers(0, 40), _U64,
                                 st.integers(0, 40).map(lambda v: v << 58)), max_size=400))
def test_unique_u64_gives_each_value_once_in_order_of_first_appearance(values):
    from ipv6flow import arrays
    fn = arrays.core_function("unique_u64")
    if fn is None:
        need_core()
        pytest.skip("the compiled distinct is not built")
    x = np.array(values, dtype=np.uint64)
    out = np.empty(len(x), dtype=np.uint64)
    k = fn(x, out)
    assert out[:k].tolist() == list(dict.fromkeys(values))
    assert np.array_equal(np.sort(arrays.distinct_set(x)), np.unique(x))
    # unique_first: the compiled hash table and the stable sort agree
    got = arrays.unique_first(x)
    saved, arrays._unique_u64 = arrays._unique_u64, None
    try:
        want = arrays.unique_first(x)
    finally:
        arrays._unique_u64 = saved
    assert got[0].tolist() == want[0].tolist() == list(dict.fromkeys(values))
    assert got[1].tolist() == want[1].tolist()
    assert np.array_equal(got[0][got[1]], x)


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(values=st.lists(st.one_of(st.integers(0, 40), _U64), max_size=300),
       picks=st.lists(st.booleans(), min_size=300, max_size=300),
       bits=st.integers(1, 5), perm_seed=st.integers(0, 1000), select=st.booleans())
def test_code_groups_are_the_distinct_values_of_each_code(values, picks, bits, perm_seed,
                                                          select):
    """The compiled grouping and the sort give each group exactly the
    distinct picked values whose low bits map to it, the bits cleared."""
    from ipv6flow import arrays
    if arrays.core_function("code_groups") is None:
        need_core()
        pytest.skip("the compiled grouping is not built")
    ncodes = 1 << bits
    order = np.random.default_rng(perm_seed).integers(0, ncodes, ncodes).astype(np.int64)
    x = np.array(values, dtype=np.uint64)
    sel = np.array(picks[:len(values)], dtype=bool) if select else None
    picked = [v for i, v in enumerate(values) if sel is None or sel[i]]
    low = ncodes - 1
    truth = [sorted({v & ~low for v in set(picked) if order[v & low] == g})
             for g in range(ncodes)]
    # every distinct picked value counts once, though two may clear alike
    sizes = [sum(1 for v in set(picked) if order[v & low] == g) for g in range(ncodes)]
    for compiled in (True, False):
        saved = arrays._code_groups
        arrays._code_groups = saved if compiled else None
        try:
            out, bounds = arrays.code_groups(np.concatenate([x] * (1 + 64 // max(len(x), 1))),
                                             order, None if sel is None else
                                             np.concatenate([sel] * (1 + 64 // max(len(x), 1))))
        finally:
            arrays._code_groups = saved
        assert bounds[0] == 0 and bounds[-1] == len(out)
        for g in range(ncodes):
            got = out[bounds[g]:bounds[g + 1]].tolist()
            assert len(got) == sizes[g]
            assert sorted(set(got)) == truth[g]


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.integers(-5, 40), st.integers(-2**63, 2**63 - 1)),
                               st.integers(0, 1 << 18)), max_size=300))
def test_group_sums_compiled_equal_numpy(rows):
    from ipv6flow import arrays
    if arrays.core_function("group_sum") is None:
        need_core()
        pytest.skip("the compiled group sums are not built")
    keys = np.array([k for k, _ in rows], dtype=np.int64)
    w = np.array([x for _, x in rows], dtype=np.int64)
    got = arrays.group_sums(keys, w)
    saved, arrays._group_sum = arrays._group_sum, None
    try:
        want = arrays.group_sums(keys, w)
    finally:
        arrays._group_sum = saved
    for g, x in zip(got, want):
        assert g.tolist() == x.tolist()
    truth = {}
    for k, x in rows:
        c, s = truth.get(k, (0, 0))
        truth[k] = (c + 1, s + x)
    assert got[0].tolist() == sorted(truth)
    assert [(c, s) for c, s in zip(got[1].tolist(), got[2].tolist())] == \
        [truth[k] for k in sorted(truth)]


def test_compiled_address_classes_in_split_slash16s_equal_the_reference():
    """The compiled pass keeps the classes of split /16s by their first 32
    bits for a batch; addresses sharing those bits with a prefix longer than
    /32 (::ffff:0:0/96 and ::1 under ::/32, 64:ff9b::/96 and 64:ff9b:1::/48)
    must still be told apart, in any order, in one batch."""
    import ipaddress
    from ipv6flow.decode.addresses import address_class
    from ipv6flow.decode import registry as R
    need_core()
    rng = np.random.default_rng(11)
    texts = ["::", "::1", "::2", "::ffff:1.2.3.4", "::fffe:1.2.3.4", "::1:0:0:0",
             "64:ff9b::1.2.3.4", "64:ff9b::1:0:0", "64:ff9b:1::", "64:ff9b:1:ffff::1",
             "64:ff9b:2::", "2001::", "2001:0:ffff::", "2001:1::", "2001:2::", "2001:2:0:1::",
             "2001:3::", "2001:10::", "2001:20::", "2001:db8::", "2001:db8:ffff::1",
             "2001:db9::", "2002::", "3fff::", "3fff:fff:ffff::", "3fff:1000::", "fe80::"]
    words = [ipaddress.IPv6Address(t).packed for t in texts]
    # each prefix's first 32 bits with random low bits: the cache's keys
    words += [w[:4] + rng.bytes(12) for w in words for _ in range(3)]
    words += [w[:6] + rng.bytes(10) for w in words[:len(texts)] for _ in range(2)]
    order = rng.permutation(len(words))
    frames = []
    for i in range(0, len(order) - 1):
        src, dst = words[order[i]], words[order[(i + 7) % len(order)]]
        ip6 = (b"\x60\x00\x00\x00\x00\x00\x3b\x40" + src + dst)
        frames.append(b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip6)
    frames = frames * 2                     # seen again once cached
    buf, offs = b"", []
    for f in frames:
        offs.append(len(buf))
        buf += f
    caps = np.array([len(f) for f in frames], dtype=np.int64)
    batch = Batch(buf, np.array(offs, dtype=np.int64), caps, caps, np.full(len(frames), 1.7e9),
                  np.full(len(frames), R.LINKTYPE_ETHERNET, dtype=np.int32))
    with fast_path("compiled"):
        keys, _ = frame_keys(batch, OPTS)
    want = [frame_key(decode_frame(R.LINKTYPE_ETHERNET, f, 0, OPTS)) for f in frames]
    assert keys == want
    classes = {(address_class(f[22:38]), address_class(f[38:54])) for f in frames}
    assert len({c for pair in classes for c in pair}) >= 6   # the batch holds many classes


def _spans_rows(states, buf):
    """A Decoded over made-up compiled row states (dicts of COLUMNS names;
    ``span``: l4end - l4) and ``buf``."""
    n = len(states)
    out = np.zeros((len(core.COLUMNS), n), dtype=np.int64)
    for i, r in enumerate(states):
        for name, v in r.items():
            if name != "span":
                out[core._AT[name], i] = v
        out[core._AT["l4end"], i] = r["l4"] + r["span"]
        # the ICMP type column as the compiled pass fills it (_core.c row_columns)
        l4, proto = r["l4"], r["proto"]
        icmp = proto == (58 if r["payload"] == 2 else 1) and 0 <= l4 < l4 + r["span"]
        out[core._AT["icmp"], i] = buf[min(max(l4, 0), len(buf) - 1)] if icmp and buf else -1
    crows = core.CompiledRows(np.frombuffer(buf, dtype=np.uint8), out)
    batch = Batch(buf, np.zeros(n, dtype=np.int64), np.full(n, len(buf), dtype=np.int64),
                  np.full(n, len(buf), dtype=np.int64), np.zeros(n), np.ones(n, dtype=np.int32))
    return Decoded(batch, out[0], np.zeros(0, dtype=np.int64), crows), out


def test_spans_compiled_equal_numpy_at_every_header_boundary():
    """Every transport end from before the header to past the longest one,
    for UDP lengths and TCP data offsets around each bound, every family,
    both ports, ICMPv6 of two types and ICMP: the same spans by _core.c and
    by numpy (each row's header in its own 64 bytes of the buffer), and as
    many as the rules give."""
    need_core()
    heads, states, fields = [], [], []
    for fam in (0, 1, 2):                      # non-IP rows too: any row state
        for proto, ports in ((17, ((53, 80), (80, 53), (80, 80))), (6, ((53, 80), (80, 443))),
                             (58, ((-1, -1),)), (1, ((-1, -1),))):
            for field in (0, 7, 8, 9, 20, 0x40, 0x50, 0x60, 0xF0):
                for span in range(-1, 66):
                    for sport, dport in ports:
                        head = bytearray(64)
                        head[0] = 134 if field == 8 else 135    # ICMPv6 type
                        head[4:6] = field.to_bytes(2, "big")    # UDP length
                        head[12] = field                        # TCP data offset << 4
                        at = 64 * len(heads)
                        heads.append(bytes(head))
                        fields.append(field)
                        states.append({"payload": fam, "proto": proto, "ip": at, "l4": at,
                                       "span": span, "sport": sport, "dport": dport})
    d, _ = _spans_rows(states, b"".join(heads))
    idx = np.arange(len(states))
    for icmp_type in (None, 134):
        got, want = _spans_both(d, idx, icmp_type)
        assert got == want
    (_, _, tcp, _, _), (icmp_start, _) = got          # Router Advertisements only
    rows = list(zip(states, fields))
    # by the rules: UDP to or from 53 with 8 <= length <= l4end - l4; TCP
    # with its header whole and 20 <= data offset <= l4end - l4
    dns = [(st, f) for st, f in rows if 53 in (st["sport"], st["dport"])]
    udp = sum(1 for st, f in dns if st["proto"] == 17 and 8 <= f <= st["span"])
    tcp_ = sum(1 for st, f in dns if st["proto"] == 6 and st["span"] >= 20
               and 20 <= (f >> 4) * 4 <= st["span"])
    ras = sum(1 for st, f in rows if st["proto"] == 58 and st["payload"] == 2
              and st["span"] > 0 and f == 8)
    assert tcp.count(True) == tcp_ > 0 and tcp.count(False) == udp > 0
    assert len(icmp_start) == ras > 0


# Row states as the compiled pass could leave them, the odd ones too (a
# transport header past the buffer, ends before starts, negative offsets):
# _core.c spans must read them as the numpy forms' clipped gathers do.
_OFFSET = st.integers(-2, 50).map(lambda x: 2 * x)   # even: the buffer is drawn as words


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200)),
          deadline=None)
@given(buf=st.lists(st.sampled_from([0x0008, 0x0000, 0x0009, 0x0014, 0x5000, 0x6000, 0x8600,
                                     0xFFFF]), min_size=1, max_size=50).map(
    lambda words: b"".join(w.to_bytes(2, "big") for w in words)),
    # UDP lengths at l4 + 4 (8, 9, 20), TCP data offsets at l4 + 12 (20, 24), ICMPv6 type 134
       rows=st.lists(st.fixed_dictionaries({
           "payload": st.sampled_from([0, 1, 2]), "proto": st.sampled_from([1, 6, 17, 17, 58, 0]),
           "ip": _OFFSET, "l4": _OFFSET, "span": st.sampled_from([-1, 0, 7, 8, 9, 19, 20, 21, 24, 40]),
           "sport": st.sampled_from([-1, 53, 80]), "dport": st.sampled_from([-1, 53, 443])}),
           max_size=30),
       icmp_type=st.sampled_from([None, 134, 0]), data=st.data())
def test_spans_compiled_equal_numpy_on_any_row_state(buf, rows, icmp_type, data):
    """fast.message_spans by _core.c and by numpy over made-up row states:
    the same spans, whatever the offsets (the bytes read clip into the
    buffer alike)."""
    import ipv6flow.fast as fast
    need_core()
    n = len(rows)
    d, out = _spans_rows(rows, buf)
    # every row, then some again in any order (the callers pass ascending
    # indices; the C takes any)
    idx = np.array(list(range(n)) + data.draw(st.lists(st.integers(0, max(n - 1, 0)),
                                                        max_size=n)), dtype=np.int64)
    got, want = _spans_both(d, idx, icmp_type)
    assert got == want
    if n:
        # a row index outside the batch: an error, nothing read
        with pytest.raises(ValueError):
            fast._spans(buf, out.reshape(-1), np.array([n], dtype=np.int64),
                        np.empty(5, dtype=np.int64), np.empty(2, dtype=np.int64), -1)
