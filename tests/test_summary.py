"""The Summary merges: associative, commutative, and a capture split at any
record boundary gives the same figures as the whole."""

from pathlib import Path

from hypothesis import given, settings, strategies as st

from ipv6flow.capture import open_capture
from ipv6flow.decode import decode_frame
from ipv6flow.summary import Summary

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"


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
