"""The Summary merges: associative, commutative, and a capture split at any
record boundary gives the same figures as the whole."""

import json

import numpy as np
import pytest

from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ipv6flow.capture import open_capture
from ipv6flow.cli import main
from ipv6flow.decode import decode_frame
from ipv6flow.options import RunResult
from ipv6flow.summary import Summary

from conftest import CAPTURES, missing_module, need_core

if not (CAPTURES / "MANIFEST.tsv").is_file():
    missing_module(f"the capture corpus is not at {CAPTURES} (set IPV6FLOW_SHARED to ../shared)")


def _frames(name):
    with open_capture(str(CAPTURES / name)) as cap:
        return [(decode_frame(r.linktype, r.data, r.wirelen), r.ts, r.wirelen) for r in cap]


FRAMES = _frames("arkime/arkime_synthetic.pcap") + _frames("zeek/Teredo.pcap")


def summary_of(frames, interval=1.0):
    s = Summary(interval)
    for f, ts, n in frames:
        s.add(f, ts, n)
    return s


def figures(s):
    r = s.to_report()
    r.pop("inputs")
    return r


WHOLE = figures(summary_of(FRAMES))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, len(FRAMES)), min_size=2, max_size=2))
def test_split_anywhere_then_merge_is_the_whole(cuts):
    a, b = sorted(cuts)
    parts = [summary_of(FRAMES[:a]), summary_of(FRAMES[a:b]), summary_of(FRAMES[b:])]
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[0].merge(parts[1].merge(parts[2]))
    swapped = parts[2].merge(parts[0]).merge(parts[1])
    assert figures(left) == figures(right) == figures(swapped) == WHOLE


@settings(max_examples=20, deadline=None)
@given(st.integers(0, len(FRAMES)))
def test_reports_round_trip_and_merge_as_reports(cut):
    a, b = summary_of(FRAMES[:cut]), summary_of(FRAMES[cut:])
    ra, rb = Summary.from_report(a.to_report()), Summary.from_report(b.to_report())
    assert figures(ra.merge(rb)) == WHOLE


def test_empty_is_identity():
    s = summary_of(FRAMES)
    assert figures(Summary(1.0).merge(s)) == figures(s) == figures(s.merge(Summary(1.0)))
    assert WHOLE["totals"]["packets"] == len(FRAMES) == 918 + 78


def test_time_bins_are_bounded_and_overflow_is_counted(monkeypatch):
    from ipv6flow import summary as summary_mod
    monkeypatch.setattr(summary_mod, "MAX_BINS", 3)
    s = summary_of(FRAMES, interval=0.001)
    r = s.to_report()
    bins = r["timeseries"]["bins"]
    assert len(bins) == 3 and r["timeseries"]["overflow"]["packets"] > 0
    ip = r["payload"]["ipv4"]["packets"] + r["payload"]["ipv6"]["packets"]
    assert sum(b["ipv4"]["packets"] + b["ipv6"]["packets"] for b in bins) \
        + r["timeseries"]["overflow"]["packets"] == ip


def test_dns_names_are_bounded(monkeypatch):
    from ipv6flow.analysis import nat64
    monkeypatch.setattr(nat64, "MAX_NAMES", 5)
    st = nat64.Nat64State()

    def answer(i):
        name = b"".join(bytes([len(x)]) + x for x in (b"n%d" % i, b"example", b"org")) + b"\0"
        return (b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
                + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, i % 250]))
    for i in range(50):
        st.observe_dns(answer(i), b"\x01\x02\x03\x04")
    st._flush()
    assert len(st.a) <= 5 and len(st.queried) <= 5 and st.names_dropped > 0
    assert st.report()["dns_names_dropped"] == st.names_dropped


def test_a_partial_report_makes_every_merge_partial(tmp_path):
    # a run cut short by Ctrl-C stays marked partial through any merge, in
    # process (RunResult: the Summary holds figures only) and read back from
    # JSON by `ipv6flow merge`, on either side
    whole = RunResult(summary_of(FRAMES[:500]))
    cut = RunResult(summary_of(FRAMES[500:]), interrupted=True)
    assert "partial" not in cut.summary.to_report() and cut.report()["partial"] is True
    for merged in (whole.merge(cut), cut.merge(whole)):
        rep = merged.report()
        assert merged.interrupted and rep["partial"] is True
        assert rep["totals"]["packets"] == len(FRAMES)
    assert "partial" not in whole.merge(RunResult(summary_of(FRAMES[500:]))).report()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(whole.report()))
    b.write_text(json.dumps(cut.report()))
    for order, partial in (((a, b), True), ((b, a), True), ((a, a), None)):
        r = CliRunner().invoke(main, ["merge", *map(str, order)])
        assert r.exit_code == 0, r.output
        rep = json.loads(r.output)
        assert rep.get("partial") is partial
        assert rep["totals"]["packets"] == (2 * 500 if order == (a, a) else len(FRAMES))


def _bin_batch(rng, n, spread):
    """A decoded batch's parts _add_figures reads: keys with a payload and a
    carrier family (non-IP rows among them), timestamps over ``spread``
    seconds, wire lengths."""
    from types import SimpleNamespace
    from ipv6flow.fast import KEY_FIELDS
    ps, pm = KEY_FIELDS["payload"]
    cs, cm = KEY_FIELDS["carrier"]
    fam = rng.integers(0, 3, n)
    carrier = np.where(fam == 0, 0, rng.integers(1, 3, n))
    keys = (fam.astype(np.int64) << ps) | (carrier.astype(np.int64) << cs)
    ts = 1.7e9 + rng.random(n) * spread
    batch = SimpleNamespace(wirelens=rng.integers(60, 1515, n).astype(np.int64), ts=ts)
    return SimpleNamespace(fast=np.arange(n), batch=batch, fallback=np.zeros(0, dtype=np.int64),
                           keys=keys)


def _figures_of(d, interval, compiled, max_bins=None, monkeypatch=None):
    import ipv6flow.fold as fold
    import ipv6flow.summary as summary_mod
    s = Summary(interval)
    saved = fold.bin_sums
    fold.bin_sums = fold.BUILT_BIN_SUMS if compiled else None
    try:
        if max_bins is not None:
            monkeypatch.setattr(summary_mod, "MAX_BINS", max_bins)
        fold._add_figures(s, d)
    finally:
        fold.bin_sums = saved
    return s._bins, list(s._bins), s.bin_overflow, s.counts(), s.first, s.last


@pytest.mark.parametrize("spread, interval", [(3600.0, 60.0), (5.0, 1.0), (1e6, 0.001),
                                              (30.0, 60.0)])
def test_bins_of_a_batch_over_many_bins_compiled_as_numpy(spread, interval):
    """_core.c bin_sums (a batch whose frames fall in several time bins)
    gives the Summary the numpy form's bins, in the same order, the same
    frame keys and span; with a timestamp past int64 once scaled (no capture
    format gives a NaN) it hands the batch to the numpy form."""
    import ipv6flow.fold as fold
    if fold.BUILT_BIN_SUMS is None:
        need_core()
    rng = np.random.default_rng(int(spread * 7 + interval))
    for n in (1, 63, 64, 2000, 20000):
        d = _bin_batch(rng, n, spread)
        assert _figures_of(d, interval, True) == _figures_of(d, interval, False)
    d = _bin_batch(rng, 500, spread)
    for odd in (1e300, -1e300, 2.0 ** 70):
        d.batch.ts[rng.integers(0, 500)] = odd
        assert _figures_of(d, interval, True) == _figures_of(d, interval, False)


def test_bins_past_the_cap_compiled_as_numpy(monkeypatch):
    """Bins past MAX_BINS overflow alike, the same bins admitted (in
    ascending order of the batch's bins)."""
    import ipv6flow.fold as fold
    if fold.BUILT_BIN_SUMS is None:
        need_core()
    d = _bin_batch(np.random.default_rng(3), 5000, 600.0)
    got = _figures_of(d, 1.0, True, 100, monkeypatch)
    assert len(got[0]) == 100 and got[2][0] > 0
    assert got == _figures_of(d, 1.0, False, 100, monkeypatch)
