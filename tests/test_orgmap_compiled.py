"""The scorecard's compiled per-batch part (ipv6flow/_orgmap.c) against its
numpy specification (analysis/scorecard.py): the same rows, fed to a
Scorecard with each, must leave the same state -- counters, the packed
items, the destination table -- to the byte, and the same report.

Rows come from the programme sample and from every capture of the corpus
(the columns both decoders hand over), and from random columns with the
edge cases (undecided sides, no client key, no IPv6 address, no IPv4
address); maps are random, built from the rows' own addresses at every
prefix length (so most rows find an organisation, often several nested
ones, and prefixes longer than /64 are exercised), with NAT64 prefixes."""

import ipaddress
import json
import random

import numpy as np
import pytest

from conftest import CAPTURES, SAMPLES, missing, need_corpus

from ipv6flow import cli
from ipv6flow.analysis import orgmap
from ipv6flow.analysis import scorecard as S
from ipv6flow.analysis.population import flow_hashes
from ipv6flow.engine.local import analyze_paths

PROG = SAMPLES / "programme"


def need_compiled():
    """The compiled part in use, or a skip (a failure under CI, which
    builds it)."""
    if S.compiled is None:
        try:
            import ipv6flow._orgmap  # noqa: F401
        except ImportError:
            missing("ipv6flow._orgmap is not built (python setup.py build_ext --inplace)")
        missing("ipv6flow._orgmap is built but not in use (IPV6FLOW_PURE_PYTHON is set)")
    return S.compiled


def _options(map_path, nat64=()):
    opts = cli.decode_options((), "auto", (), False, str(map_path), (), ())
    return cli._options(decode=opts, interval=60.0, decoder="fast",
                        nat64_prefixes=cli._nat64_prefixes(nat64), dns_suffixes=None,
                        workers=1, engine="local", scheduler=None)


def _rows_of(paths, map_path, monkeypatch):
    """The (columns, side, tag, value, flow_h, flow_keyed) batches the
    scorecard is given while ``paths`` are read."""
    got = []
    real = S.Scorecard.observe

    def grab(self, *args):
        got.append(args)
        return real(self, *args)
    monkeypatch.setattr(S.Scorecard, "observe", grab)
    analyze_paths([str(p) for p in paths], _options(map_path), None)
    monkeypatch.setattr(S.Scorecard, "observe", real)
    return got


def _random_map(batches, rng, path, rows=400):
    """A map of prefixes around the rows' addresses, every length."""
    v4, v6 = set(), set()
    for c, *_ in batches:
        for k in ("v4s", "v4d"):
            v4.update(int(x) for x in c[k][c[k] >= 0][:2000])
        six = np.flatnonzero(c["has6"])[:2000]
        for a, b in (("v6s_hi", "v6s_lo"), ("v6d_hi", "v6d_lo")):
            v6.update(int(h) << 64 | int(lo) for h, lo in zip(c[a][six], c[b][six]))
    v4 = sorted(v4) or [0x0A000001]
    v6 = sorted(v6) or [0x20010DB8 << 96 | 1]
    out, seen = ["prefix,organisation,group,domain"], set()
    for i in range(rows):
        if i % 2:
            ln = rng.choice(range(0, 33))
            a = rng.choice(v4)
            net = (4, a >> (32 - ln) << (32 - ln) if ln else 0, ln)
        else:
            ln = rng.choice([0, 16, 32, 48, 56, 60, 63, 64, 65, 72, 96, 112, 127, 128])
            a = rng.choice(v6)
            net = (6, a >> (128 - ln) << (128 - ln) if ln else 0, ln)
        if net in seen:
            continue
        seen.add(net)
        text = (ipaddress.IPv4Network((net[1], ln)) if net[0] == 4 else
                ipaddress.IPv6Network((net[1], ln)))
        org = rng.randrange(max(rows // 6, 1))
        out.append(f"{text},Org {org},G{org % 5},org{org}.example")
    path.write_text("\n".join(out) + "\n")
    return orgmap.load(str(path))


def _state(batches, omap, nat64, compiled):
    saved = S.compiled
    S.compiled = compiled
    try:
        sc = S.Scorecard(omap, nat64)
        for b in batches:
            sc.observe(*b)
        state = sc.state({})
        return json.dumps(state, sort_keys=True), sc
    finally:
        S.compiled = saved


NAT64 = [(0x64FF9B << 96, 96), (0x20010DB8_00640000 << 64, 64)]


def _compare(batches, omap, nat64=NAT64):
    comp = need_compiled()
    a, sa = _state(batches, omap, nat64, comp)
    b, sb = _state(batches, omap, nat64, None)
    assert a == b
    # not a vacuous comparison: rows were counted, organisations found
    assert sa.counts.sum() > 0
    return sa


def test_programme_sample_report_is_identical(monkeypatch):
    """The whole report of the programme sample, compiled and numpy."""
    comp = need_compiled()
    out = {}
    for name, c in (("compiled", comp), ("numpy", None)):
        monkeypatch.setattr(S, "compiled", c)
        res = analyze_paths([str(PROG / "programme.pcap")], _options(PROG / "orgs.csv"), None)
        rep = res.report()
        for k in ("time",):
            rep.pop(k, None)
        for inp in rep["inputs"]:
            inp.pop("read_seconds", None)
        out[name] = json.dumps(rep, sort_keys=True)
    assert out["compiled"] == out["numpy"]
    rows = json.loads(out["compiled"])["organisations"]["rows"]
    assert sum(r["payload"]["ipv6"]["packets"] for r in rows if r["organisation"]) > 0


@pytest.mark.parametrize("seed", range(3))
def test_programme_rows_random_maps(tmp_path, monkeypatch, seed):
    batches = _rows_of([PROG / "programme.pcap"], PROG / "orgs.csv", monkeypatch)
    omap = _random_map(batches, random.Random(seed), tmp_path / "map.csv")
    sc = _compare(batches, omap)
    assert sc.counts[1:].sum() > 0          # some frames found an organisation


def test_corpus_rows_random_maps(tmp_path, monkeypatch):
    need_corpus()
    paths = sorted(p for p in CAPTURES.rglob("*") if p.is_file()
                   and p.suffix in (".pcap", ".pcapng", ".cap") and p.stat().st_size < 4 << 20)
    assert len(paths) > 50
    batches = _rows_of(paths, PROG / "orgs.csv", monkeypatch)
    assert sum(len(b[1]) for b in batches) > 10_000
    rng = random.Random(16)
    decided_long = 0
    for _ in range(3):
        omap = _random_map(batches, rng, tmp_path / "map.csv", rows=2000)
        sc = _compare(batches, omap)
        assert sc.counts[1:].sum() > 0
        # prefixes longer than /64 decide some addresses (not only the ranges)
        for c, *_ in batches:
            six = c["has6"]
            full = omap.lookup6(c["v6s_hi"], c["v6s_lo"], six)
            decided_long += int((full != omap.v6.find(c["v6s_hi"]))[six].sum())
    assert decided_long > 0
    # and with no map at all (merge of reports made without one)
    a, _ = _state(batches, None, (), S.compiled)
    b, _ = _state(batches, None, (), None)
    assert a == b


def _random_columns(rng, n):
    """Columns with every edge the scorecard meets (undecided sides, no
    client key, no IPv4 or no IPv6 address, IPv4 in IPv6 and back, NAT64
    servers), few distinct addresses so that flows, clients and servers
    repeat; the flow hash is population's, so that the rows of a flow
    agree on what the scorecard looks up, as decoded rows do."""
    r = np.random.default_rng(rng.randrange(1 << 30))
    six = r.random(n) < 0.5
    has6 = six | (r.random(n) < 0.1)
    pick = lambda hi: r.integers(0, hi, n)  # noqa: E731
    v4 = np.array([0x0A000001, 0x0A000002, 0x0B000001, 0xC0A80001, 0x08080808], dtype=np.int64)
    v6h = np.array([0x20010DB800000000, 0x20010DB800000001, 0xFE80000000000000,
                    0x0064FF9B00000000, 0x2A01CB0000000000], dtype=np.uint64)
    v6l = np.array([1, 2, 0x0000000008080808, 0xFFFFFFFFFFFFFFFF, 0], dtype=np.uint64)
    zero = np.uint64(0)
    proto = r.choice(np.array([6, 17, 1, 58]), n).astype(np.int64)
    tp = (proto == 6) | (proto == 17)
    c = {
        "v4s": np.where(six & (r.random(n) < 0.7), -1, v4[pick(5)]),
        "v4d": np.where(six & (r.random(n) < 0.7), -1, v4[pick(5)]),
        "v6s_hi": np.where(has6, v6h[pick(5)], zero), "v6s_lo": np.where(has6, v6l[pick(5)], zero),
        "v6d_hi": np.where(has6, v6h[pick(5)], zero), "v6d_lo": np.where(has6, v6l[pick(5)], zero),
        "fam": np.where(six, 2, 1).astype(np.int64),
        "has6": has6,
        "carrier": np.where(r.random(n) < 0.7, 1, 2).astype(np.int64),
        "proto": proto,
        "sport": np.where(tp, r.choice(np.array([-1, 53, 443, 50000]), n), -1),
        "dport": np.where(tp, r.choice(np.array([53, 443, 50000]), n), -1),
        "flags": r.integers(0, 256, n).astype(np.int64),
        "wire": r.integers(40, 1600, n).astype(np.int64),
    }
    side = r.integers(0, 3, n).astype(np.int64)
    tag = np.where(r.random(n) < 0.2, 0, r.integers(1, 4, n)).astype(np.int64)
    value = r.integers(0, 6, n).astype(np.uint64)
    flow_h, flow_keyed = flow_hashes(c)
    return c, side, tag, value, flow_h, flow_keyed


@pytest.mark.parametrize("seed", range(6))
def test_random_columns(tmp_path, seed):
    rng = random.Random(seed)
    batches = [_random_columns(rng, rng.choice([1, 2, 7, 100, 3000])) for _ in range(8)]
    omap = _random_map(batches, rng, tmp_path / "map.csv", rows=60)
    _compare(batches, omap)


def test_the_table_seed_changes_nothing(tmp_path, monkeypatch):
    """The group table's slots come from a random seed (so that no capture
    can be made to crowd them); the state must not depend on it."""
    comp = need_compiled()
    batches = _rows_of([PROG / "programme.pcap"], PROG / "orgs.csv", monkeypatch)
    rng = random.Random(5)
    batches += [_random_columns(rng, 2000) for _ in range(3)]
    omap = _random_map(batches, rng, tmp_path / "map.csv")
    states = []
    try:
        for seed in (0, 1, 0xFFFFFFFFFFFFFFFF):
            comp.configure(dict(S._config(), SEED=seed))
            states.append(_state(batches, omap, NAT64, comp)[0])
    finally:
        comp.configure(S._config())
    assert states[0] == states[1] == states[2]
    assert states[0] == _state(batches, omap, NAT64, None)[0]


def test_bad_arrays_are_refused():
    comp = need_compiled()
    sc = S.Scorecard(None, ())
    rng = random.Random(1)
    c, side, tag, value, flow_h, flow_keyed = _random_columns(rng, 10)
    c["wire"] = c["wire"][:5]                        # a column of another length
    with pytest.raises(ValueError):
        sc.observe(c, side, tag, value, flow_h, flow_keyed)
    # an organisation index past the counter rows
    args = [np.zeros(1, dtype=np.int64)] * 17
    bad = list(S._NO_MAP)
    bad[1] = np.array([5], dtype=np.int64)
    out = S._buffers(1)
    with pytest.raises(ValueError):
        comp.observe(args[:2] + [np.zeros(1, dtype=np.uint64)] * 4 + [args[0]]
                     + [np.zeros(1, dtype=np.uint8)] + args[:5]
                     + [np.zeros(1, dtype=np.uint64)] * 2 + [np.zeros(1, dtype=np.uint8)]
                     + bad + [sc.gkeys, sc.counts.reshape(-1), S._nat64_words(())] + out,
                     True, 1)


def test_union_is_the_sorted_distinct_union():
    comp = need_compiled()
    r = np.random.default_rng(3)
    for nruns in (0, 1, 2, 3, 7, 30):
        runs = [np.unique(r.integers(0, 1 << 63, r.integers(0, 3000), dtype=np.uint64))
                for _ in range(nruns)]
        if nruns > 2:
            runs[1] = np.sort(np.concatenate([runs[0][::3], runs[1]]))   # shared items
            runs.append(np.full(5, 42, dtype=np.uint64))                 # repeats in a run
        want = np.unique(np.concatenate(runs)) if runs else np.zeros(0, dtype=np.uint64)
        out = np.empty(sum(len(x) for x in runs), dtype=np.uint64)
        k = comp.union(runs, out)
        assert np.array_equal(out[:k], want)
    with pytest.raises(ValueError):
        comp.union([np.array([3, 1], dtype=np.uint64)], np.empty(2, dtype=np.uint64))
    with pytest.raises(ValueError):
        comp.union([np.array([1, 3], dtype=np.uint64)], np.empty(1, dtype=np.uint64))


def test_the_lookup_memo_is_kept_per_map(tmp_path, monkeypatch):
    """The compiled lookups are remembered across batches for one map
    (``_orgmap.c``'s memo, emptied when the map's token changes): two
    scorecards with different maps over the same addresses, fed batch by
    batch in turn, must each leave the numpy path's state (a memo kept
    across the change of map would give one map's organisations to the
    other's rows)."""
    comp = need_compiled()
    batches = _rows_of([PROG / "programme.pcap"], PROG / "orgs.csv", monkeypatch)
    rng = random.Random(7)
    batches += [_random_columns(rng, 2000) for _ in range(3)]
    maps = [_random_map(batches, random.Random(seed), tmp_path / f"map{seed}.csv")
            for seed in (1, 2)]
    assert maps[0].token != maps[1].token
    monkeypatch.setattr(S, "compiled", comp)
    cards = [S.Scorecard(m, NAT64) for m in maps]
    for b in batches:
        for sc in cards:
            sc.observe(*b)
    for sc, m in zip(cards, maps):
        want, _ = _state(batches, m, NAT64, None)
        assert json.dumps(sc.state({}), sort_keys=True) == want
    # the two maps do place rows differently (so that the test can fail)
    rows = [{n: r for n, r in zip(sc.names, sc.counts.tolist()) if any(r)} for sc in cards]
    assert rows[0] != rows[1]
