"""The compiled helpers of the translation, NAT64-traffic and columns
stages (ipv6flow/_core.c ``prefix_any``, ``prefix_rows``,
``xlat_candidates``, ``compact``) against their numpy specifications, and
both against oracles of plain Python:

* which prefixes hold an address (``addresses.words_in_prefixes``,
  ``addresses.prefix_rows``): compiled, numpy and ``in_prefix`` over
  Python integers agree on hypothesis-made addresses and prefixes of every
  length, past 64 prefixes, with a keep mask and per-prefix row limits;
* translation's candidate rows: compiled and numpy agree on
  hypothesis-made columns and on the columns of every real capture;
* the in-place gather of the compiled rows gives what ``np.take`` gives on
  every real capture and sample (with the reference decoder's rows merged
  in), and refuses an index that does not rise or lies outside the rows;
* NAT64 traffic hashed from address words (``Traffic.add_words``) counts
  what the reference path's ``add_frame`` counts from bytes;
* a NAT64 client's destinations and flows listed only up to its table's
  cap leave its tables as the full lists do.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ipv6flow import fold
from ipv6flow.analysis import rfc6052, translation
from ipv6flow.analysis.nat64 import Traffic
from ipv6flow.analysis.translation import Client64
from ipv6flow.capture import open_capture
from ipv6flow.decode import addresses, decode_frame
from ipv6flow.decode.addresses import in_prefix, prefix_mask, prefix_rows, words_in_prefixes
from ipv6flow.decode.columns import frame_columns
from ipv6flow.decode.registry import FAM_IPV4, FAM_IPV6, TUNNEL_CODE
from ipv6flow.errors import CaptureError
from ipv6flow.fast import Decoded, core, decode_batch, record

from conftest import CAPTURES, SAMPLES, need_core

EXAMPLES = int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 200))
REAL = sorted(p for p in CAPTURES.rglob("*") if p.is_file()
              and p.name not in ("MANIFEST.tsv", "README.md")) if CAPTURES.is_dir() else []
SAMPLE_FILES = [SAMPLES / n for n in ("mixed.pcap", "mixed.pcapng", "nat64/nsp-dns64-64.pcap")]
_M64 = (1 << 64) - 1


def _compiled(built):
    if built is None:
        need_core()
        pytest.skip("this compiled helper is not built")
    return built


def _words(addrs):
    return (np.array([a >> 64 for a in addrs], dtype=np.uint64),
            np.array([a & _M64 for a in addrs], dtype=np.uint64))


@st.composite
def _prefixes_and_addresses(draw, max_prefixes=70, max_rows=60):
    """Prefixes of any length, and addresses half of which lie in one."""
    prefixes = draw(st.lists(st.tuples(st.integers(0, (1 << 128) - 1), st.integers(0, 128)),
                             max_size=max_prefixes))
    addrs = []
    for _ in range(draw(st.integers(0, max_rows))):
        a = draw(st.integers(0, (1 << 128) - 1))
        if prefixes and draw(st.booleans()):
            value, length = draw(st.sampled_from(prefixes))
            a = (value & prefix_mask(length)) | (a & ~prefix_mask(length) & ((1 << 128) - 1))
        addrs.append(a)
    return prefixes, addrs


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_prefixes_and_addresses())
def test_words_in_prefixes_compiled_numpy_and_integers_agree(case, monkeypatch):
    prefixes, addrs = case
    built = _compiled(addresses.BUILT_PREFIX_ANY)
    hi, lo = _words(addrs)
    want = [any(in_prefix(a, v, n) for v, n in prefixes) for a in addrs]
    for fn in (built, None):
        monkeypatch.setattr(addresses, "_prefix_any", fn)
        got = words_in_prefixes(hi, lo, prefixes)
        assert got.dtype == bool and got.tolist() == want, (fn, len(prefixes))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_prefixes_and_addresses(max_prefixes=64), data=st.data())
def test_prefix_rows_compiled_numpy_and_integers_agree(case, data, monkeypatch):
    prefixes, addrs = case
    built = _compiled(addresses.BUILT_PREFIX_ROWS)
    n = len(addrs) // 2
    src, dst = addrs[:n], addrs[n:2 * n]
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    limits = data.draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-3, n + 3)),
                                                     min_size=len(prefixes),
                                                     max_size=len(prefixes))))
    want_rows, want_s, want_d = [], [], []
    for i in range(n):
        s = d = 0
        for p, (v, length) in enumerate(prefixes):
            lim = None if limits is None else limits[p]
            if lim is not None and i >= lim:
                continue
            s |= in_prefix(src[i], v, length) << p
            d |= in_prefix(dst[i], v, length) << p
        if keep[i] and s | d:
            want_rows.append(i)
            want_s.append(s)
            want_d.append(d)
    (sh, sl), (dh, dl) = _words(src), _words(dst)
    for fn in (built, None):
        monkeypatch.setattr(addresses, "_prefix_rows", fn)
        rows, s_bits, d_bits = prefix_rows(sh, sl, dh, dl, keep, prefixes, limits)
        assert rows.tolist() == want_rows, fn
        assert s_bits.tolist() == want_s and d_bits.tolist() == want_d, fn


def test_prefix_rows_takes_at_most_64_prefixes():
    with pytest.raises(ValueError):
        prefix_rows(*_words([0]), *_words([0]), np.ones(1, dtype=bool), [(0, 0)] * 65)


# -- translation's candidates -------------------------------------------------

_WKP = int(rfc6052.WKP.value)
_COLUMNS = {
    "fam": st.sampled_from([0, FAM_IPV4, FAM_IPV6]),
    "has6": st.booleans(),
    "tunnel": st.one_of(st.sampled_from([TUNNEL_CODE["4in6"], TUNNEL_CODE["none"]]),
                        st.integers(0, 14)),
    "ntun": st.integers(0, 3),
    "v4s": st.one_of(st.sampled_from([-1, 0xC0000001, 0xC0000007, 0xC0000008, 0]),
                     st.integers(-1, (1 << 32) - 1)),
    "v4d": st.one_of(st.sampled_from([-1, 0xC0000002, 0xBFFFFFFF]),
                     st.integers(-1, (1 << 32) - 1)),
    # NAT64 (well-known, local-use, a found /96), MAP interface identifiers
    # (first octet 0, 1, 255, 256 after 16 zero bits), anything
    "v6s": st.one_of(st.sampled_from([_WKP | 0xC0000201, int(rfc6052.LOCAL_USE.value) | 5,
                                      0x20010db8006400000000000000000001,
                                      0x20010db8000000000000C00002010001,
                                      0x20010db80000000000FFC00002010001,
                                      0x20010db8000000000100C00002010001,
                                      0x20010db8000000000000000002010001]),
                     st.integers(0, (1 << 128) - 1)),
    "v6d": st.one_of(st.sampled_from([_WKP | 0x08080808, 0x2a001450000000000000000000000001]),
                     st.integers(0, (1 << 128) - 1)),
}
_PREFIX_SETS = [(), ((0x20010db8006400000000000000000000, 96),),
                ((0x20010db8000000000000000000000000, 32), (0x64ff9b00000000000000000000000000, 64))]


def _candidate_columns(rows):
    c = {k: np.array([r[k] for r in rows], dtype=bool if k == "has6" else np.int64)
         for k in ("fam", "has6", "tunnel", "ntun", "v4s", "v4d")}
    for side in ("s", "d"):
        c[f"v6{side}_hi"], c[f"v6{side}_lo"] = _words([r[f"v6{side}"] for r in rows])
    return c


def _candidates_agree(c, found, monkeypatch):
    built = _compiled(translation.BUILT_CANDIDATES)
    state = translation.TranslationState(found)
    monkeypatch.setattr(translation, "_xlat_candidates", built)
    got = state.candidates(c)
    monkeypatch.setattr(translation, "_xlat_candidates", None)
    want = state.candidates(c)
    assert got.dtype == want.dtype == bool
    bad = np.flatnonzero(got != want)
    assert not len(bad), {k: v[bad[0]] for k, v in c.items()}
    return want


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(_COLUMNS), min_size=1, max_size=40),
       found=st.sampled_from(_PREFIX_SETS))
def test_candidates_compiled_equal_numpy_on_any_columns(rows, found, monkeypatch):
    _candidates_agree(_candidate_columns(rows), found, monkeypatch)


def _batches(paths):
    for path in paths:
        try:
            with open_capture(str(path)) as cap:
                yield from cap.iter_batches()
        except CaptureError:
            continue


def test_candidates_compiled_equal_numpy_on_real_captures(monkeypatch):
    need_core()
    if not REAL:
        pytest.skip("no real captures")
    seen = 0
    for batch in _batches(REAL + SAMPLE_FILES):
        d = decode_batch(batch, fold_opts())
        c, _ = fold._columns(d, [])
        for found in _PREFIX_SETS:
            seen += int(_candidates_agree(c, found, monkeypatch).sum())
    assert seen > 100          # candidate rows were among them (4in6, NAT64, MAP)


def fold_opts():
    from ipv6flow.decode import DecodeOptions
    return DecodeOptions()


# -- the columns gathered in place ----------------------------------------------

def _fresh(d, out):
    """A Decoded like ``d`` over its own copy of the compiled output."""
    return Decoded(d.batch, d.keys, d.fallback, core.CompiledRows(d.rows.buf, out.copy()))


def test_columns_in_place_equal_a_gather_on_real_captures(monkeypatch):
    _compiled(core.BUILT_COMPACT)
    need_core()
    opts = fold_opts()
    batches = 0
    for batch in _batches(REAL + SAMPLE_FILES):
        d = decode_batch(batch, opts)
        out = d.rows.out.copy()
        extra = []
        for i in d.fallback.tolist():
            ts, lt, wire, data = record(batch, i)
            row = frame_columns(decode_frame(lt, data, wire, opts), lt, data, ts, wire)
            if row is not None:
                extra.append((i, row))
        monkeypatch.setattr(core, "compact", None)
        want, want_rows = fold._columns(_fresh(d, out), extra)
        monkeypatch.setattr(core, "compact", core.BUILT_COMPACT)
        moved = _fresh(d, out)
        got, got_rows = fold._columns(moved, extra)
        assert moved.rows is None                 # used up: nothing may read it again
        assert np.array_equal(got_rows, want_rows)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
        batches += 1
    assert batches > 100


def test_compact_refuses_what_would_read_a_moved_item():
    fn = _compiled(core.BUILT_COMPACT)
    out = np.arange(12, dtype=np.int64)             # 3 rows of 4
    which = np.array([0, 2], dtype=np.int64)
    fn(out, 4, which, np.array([1, 3], dtype=np.int64))
    assert out.tolist() == [1, 3, 2, 3, 4, 5, 6, 7, 9, 11, 10, 11]
    for idx in ([1, 1], [2, 1], [0, 4], [-1, 2], [0, 1, 2, 3, 3]):
        with pytest.raises(ValueError):
            fn(np.arange(12, dtype=np.int64), 4, which, np.array(idx, dtype=np.int64))
    for bad in ([3], [-1]):
        with pytest.raises(ValueError):
            fn(np.arange(12, dtype=np.int64), 4, np.array(bad, dtype=np.int64),
               np.array([0], dtype=np.int64))
    with pytest.raises(ValueError):                  # not rows of n
        fn(np.arange(10, dtype=np.int64), 4, which, np.array([0], dtype=np.int64))


# -- NAT64 traffic from address words -----------------------------------------------

@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, (1 << 128) - 1), st.integers(0, (1 << 128) - 1),
                               st.sampled_from([(True, False), (False, True), (True, True)])),
                     max_size=50),
       length=st.sampled_from(sorted(rfc6052.POSITIONS)), block=st.integers(1, 64))
def test_traffic_from_words_counts_what_the_reference_path_counts(rows, length, block,
                                                                  monkeypatch):
    monkeypatch.setattr(Traffic, "BLOCK", block)   # settled in blocks of any size
    words, ref = Traffic(), Traffic()
    for at in range(0, len(rows), 7):              # batches of up to 7 rows
        part = rows[at:at + 7]
        (sh, sl), (dh, dl) = _words([s for s, _, _ in part]), _words([d for _, d, _ in part])
        s_in = np.array([f[0] for _, _, f in part], dtype=bool)
        d_in = np.array([f[1] for _, _, f in part], dtype=bool)
        words.add_words(length, sh, sl, dh, dl, s_in, d_in)
    for s, d, (s_in, d_in) in rows:
        src, dst = s.to_bytes(16, "big"), d.to_bytes(16, "big")
        ref.add_frame(None if s_in == d_in else (dst if s_in else src),
                      [rfc6052.extract(a, length) for a, inside in ((src, s_in), (dst, d_in))
                       if inside])
    assert words.distinct() == ref.distinct()


# -- a client's destinations and flows, listed up to its cap --------------------------

@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12)), max_size=120),
       held=st.lists(st.integers(0, 12), max_size=6), cap=st.integers(1, 8))
def test_pairs_capped_per_group_fill_the_tables_as_all_pairs_do(pairs, held, cap, monkeypatch):
    monkeypatch.setattr(translation, "MAX_CLIENT_DESTS", cap)
    group = np.array([g for g, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    tables = {}
    for capped in (None, cap):
        out = {}
        for g, v in translation._pairs_in_order(group, values, capped):
            out.setdefault(g, []).append(v)
        result = {}
        for g in range(4):
            e = Client64()
            e.add_dests(held[:cap])                 # what it held before
            e.add_dests(out.get(g, ()))
            result[g] = list(e.dests)
        tables[capped] = result
    assert tables[None] == tables[cap]
