"""The Summary merges: associative, commutative, and a capture split at any
record boundary gives the same figures as the whole."""

import json

from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from ipv6flow.capture import open_capture
from ipv6flow.cli import main
from ipv6flow.decode import decode_frame
from ipv6flow.options import RunResult
from ipv6flow.summary import Summary

from conftest import CAPTURES, missing_module

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
