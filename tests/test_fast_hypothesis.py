"""Property-based differential tests: the fast decoder (``ipv6flow.fast``,
with each of its classifiers: the compiled pass where it is built and the
numpy kernel) against the reference decoder (``ipv6flow.decode``), frame
for frame, and the compiled pass against the numpy kernel row for row
(``conftest.core_disagreements``).

Frames come from ``tests/strategies.py``: built layer by layer (link layer,
IPv4/IPv6 with extension-header chains, tunnels nested to a depth budget,
transports), then maybe cut by a snap length, byte-flipped, or with length
fields set to 0 / 1 / all ones; plus garbage behind every link type. Rows
are packed into batches with gaps between them, the bytes a snap length
dropped right after a cut row, and a row ending the buffer, so that a read
past a row's captured bytes shows up as a disagreement.

Properties:

1. ``frame_keys(batch)`` equals ``frame_key(decode_frame(...))`` on every
   row (batches, single frames in three buffer layouts, deep tunnel stacks
   against small tunnel caps, and bulk random batches);
2. neither decoder raises, whatever the bytes and link type;
3. the classification invariants of REPORT.md hold (families, tunnel kinds,
   a change of family between carrier and payload needs a tunnel, ...).

Bugs found by these properties are pinned below as regression tests (they
were ``xfail(strict=True)`` while open; all six are fixed, and the
strategies build their triggers again).

Run time: the default example counts keep this module well under a minute.
For a long hunt set ``IPV6FLOW_HYPOTHESIS_EXAMPLES`` (examples per
property, e.g. 20000).
"""

import os
import random
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import strategies as S
from conftest import core_disagreements, fast_path, fast_paths
from ipv6flow.capture.batch import Batch
from ipv6flow.decode import DecodeOptions, decode_frame
from ipv6flow.decode.addresses import ADDRESS_CLASSES
from ipv6flow.decode.registry import ANOMALIES, EXT_TYPES, TUNNEL_KINDS
from ipv6flow.decode.link import LINKTYPES
from ipv6flow.analysis.nat64 import inspect_frame
from ipv6flow.decode import columns as dcols
from ipv6flow.fast import frame_columns, frame_keys
from ipv6flow.fold import nat64_batch, summarize_batch
from ipv6flow.decode.frame import frame_key
from ipv6flow.decode.registry import FAMILIES, TRANSPORT_KEYS
from ipv6flow.summary import DECODE_KEYS, Summary

EXAMPLES = int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", "0") or 0)
DEFAULT = DecodeOptions()
OPTS_6RD = DecodeOptions(sixrd_prefixes=(S.SIXRD_28,))
KEY_FIELDS = ("carrier", "payload", "tunnel", "transport", "ext_types", "routing_types",
              "chain_len", "anomalies", "address_classes", "problem")


def fuzz(default):
    """``default`` examples per property, or IPV6FLOW_HYPOTHESIS_EXAMPLES."""
    return settings(max_examples=EXAMPLES or default, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- helpers -----------------------------------------------------------------------

def reference_key(row, opts):
    return frame_key(decode_frame(row.linktype, row.data, row.wirelen, opts))


def reference_columns(row, opts, ts):
    f = decode_frame(row.linktype, row.data, row.wirelen, opts)
    return dcols.frame_columns(f, row.linktype, row.data, ts, row.wirelen)


def describe(row, opts, fast, ref):
    fields = [n for n, a, b in zip(KEY_FIELDS, fast, ref) if a != b]
    return (f"linktype {row.linktype} caplen {len(row.data)} wirelen {row.wirelen}\n"
            f"  hex  {row.data.hex()}\n  opts {opts}\n  differs in {fields}\n"
            f"  fast {fast}\n  ref  {ref}")


def open_bug1(fast, ref):
    """The disagreement open bug 1 explains: the kernel adds
    ``repeated_header`` to a frame with experimental headers (253 then
    254), nothing else differs. Byte flips make such chains now and then
    (about 3 rows in a million), so the general properties let it pass
    while the bug is open; the regression tests below are strict."""
    return (S.AVOID_OPEN_BUGS and "experimental" in ref[4]
            and fast[:7] == ref[:7] and fast[8:] == ref[8:]
            and set(fast[7]) - set(ref[7]) == {"repeated_header"}
            and set(ref[7]) <= set(fast[7]))


def assert_agree(batch, rows, opts, strict=False):
    # every fast path (the compiled pass where built, the numpy kernel)
    # against the reference decoder, and the compiled pass against the kernel
    want = [reference_key(r, opts) for r in rows]
    want_cols = [reference_columns(r, opts, ts) for r, ts in zip(rows, batch.ts.tolist())]
    for path in fast_paths():
        with fast_path(path):
            fast, fallback = frame_keys(batch, opts)
            cols = frame_columns(batch, opts)
        assert len(fast) == len(rows) and 0 <= fallback <= len(rows)
        bad = [describe(r, opts, a, b) for r, a, b in zip(rows, fast, want)
               if a != b and (strict or not open_bug1(a, b))]
        assert not bad, f"{path}: {len(bad)} of {len(rows)} rows disagree:\n" + "\n".join(bad[:5])
        # the client and flow columns (analysis.population) of every row
        bad = [(r.data.hex(), a, b) for r, a, b in zip(rows, cols, want_cols) if a != b]
        assert not bad, f"{path}: {len(bad)} of {len(rows)} rows' columns disagree: {bad[:3]}"
    bad = core_disagreements(batch, opts)
    assert not bad, "compiled pass vs numpy kernel:\n" + "\n".join(bad[:5])


def single(row, layout="end"):
    """A one-row batch: the row ends the buffer ('end'), is followed by the
    bytes its snap length cut off ('tail'), or sits between filler ('gap')."""
    before, after = {"end": (b"", b""), "tail": (b"", row.tail),
                     "gap": (b"\x60\x00\x45", b"\x86\xdd" + row.tail + b"\xff" * 8)}[layout]
    if S.AVOID_OPEN_BUGS and not (before + row.data + after):
        before = b"\x00"                 # open bug 2: an empty buffer crashes the kernel
    return Batch(before + row.data + after, np.array([len(before)], dtype=np.int64),
                 np.array([len(row.data)], dtype=np.int64),
                 np.array([row.wirelen], dtype=np.int64), np.array([1.7e9]),
                 np.array([row.linktype], dtype=np.int32))


def raw6(nh, body, src=bytes(15) + b"\x01", dst=bytes.fromhex("2a001450") + bytes(11) + b"\x02",
         plen=None):
    return (b"\x60\x00\x00\x00" + struct.pack("!H", len(body) if plen is None else plen)
            + bytes([nh, 64]) + src + dst + body)


def raw4(proto, body, tot=None, frag=0):
    return (b"\x45\x00" + struct.pack("!H", 20 + len(body) if tot is None else tot)
            + b"\x12\x34" + struct.pack("!H", frag) + bytes([64, proto]) + b"\x00\x00"
            + bytes([192, 0, 2, 1, 198, 51, 100, 2]) + body)


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def eth(et, payload, tags=(), pppoe=False):
    if pppoe:
        proto = 0x0057 if et == 0x86DD else 0x0021
        payload = b"\x11\x00\x12\x34" + struct.pack("!HH", len(payload) + 2, proto) + payload
        et = 0x8864
    for tpid in reversed(tags):
        payload = b"\x20\x2a" + struct.pack("!H", et) + payload
        et = tpid
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02" + struct.pack("!H", et) + payload


TCP = b"\xc0\x01\x01\xbb" + b"\x00\x00\x00\x01" * 2 + b"\x50\x18\x20\x00" + b"\x00" * 4


def vxlan_stack(levels, inner):
    """``levels`` VXLAN tunnels, each level an Ethernet frame with three VLAN
    tags and PPPoE (7 reference layers a level, all on the kernel's path)."""
    frame = eth(0x0800, inner, tags=(0x88A8, 0x8100, 0x8100), pppoe=True)
    for _ in range(levels):
        frame = eth(0x0800, raw4(17, udp(50000, 4789, b"\x08\x00\x00\x00\x00\x00\x2a\x00" + frame)),
                    tags=(0x88A8, 0x8100, 0x8100), pppoe=True)
    return frame


# Hand-built frames worth checking on every run (all agree today).
TEREDO_FRAME = raw4(17, udp(51234, 51235, b"\x00\x00\x12\x34\xc0\x00\x02\x01"
                            + raw6(59, b"", src=bytes.fromhex("20010000") + bytes(12))
                            + b"\x01\x04" + bytes(8)))
SIXRD_72_FRAME = raw4(41, raw6(6, TCP, src=bytes.fromhex("2a02123456789abcde") + bytes(7)))
GTP_EXT_FRAME = raw4(17, udp(50000, 2152, b"\x34\xff\x00\x20\x00\x00\x00\x2a\x00\x01\x00\x85"
                             + b"\x01\x00\x00\x00" + raw4(6, TCP)))
DEEP_EXT_FRAME = raw6(60, b"".join(bytes([60 if i < 6 else 6, 0]) + bytes(6) for i in range(7))
                      + TCP)


# -- 1. the kernel agrees with the reference decoder ----------------------------------

@fuzz(220)
@given(S.batches(S.rows(), max_rows=50), S.options())
def test_fast_equals_reference_on_batches(batch_rows, opts):
    batch, rows = batch_rows
    assert_agree(batch, rows, opts)


@fuzz(450)
@given(S.rows(), S.options(), st.sampled_from(("end", "tail", "gap")))
@example(S.Row(101, TEREDO_FRAME, len(TEREDO_FRAME)), DEFAULT, "end")
@example(S.Row(101, SIXRD_72_FRAME, len(SIXRD_72_FRAME)),
         DecodeOptions(sixrd_prefixes=(S.SIXRD_72,)), "end")
@example(S.Row(101, GTP_EXT_FRAME, len(GTP_EXT_FRAME)), DEFAULT, "gap")
@example(S.Row(101, DEEP_EXT_FRAME, len(DEEP_EXT_FRAME)), DEFAULT, "end")
@example(S.Row(101, DEEP_EXT_FRAME[:70], len(DEEP_EXT_FRAME), DEEP_EXT_FRAME[70:]), DEFAULT, "tail")
def test_fast_equals_reference_per_frame(row, opts, layout):
    assert_agree(single(row, layout), [row], opts)


@fuzz(300)
@given(S.frames(linktypes=S.KERNEL_LINKTYPES, clean=True, depths=(2, 3, 4, 6, 8, 9, 10)),
       st.sampled_from((8, 0, 1, 2, 3, 7, 9)), st.sampled_from(((), (S.SIXRD_28,), (S.SIXRD_72,))))
def test_fast_equals_reference_on_deep_tunnels(row, depth, prefixes):
    opts = DecodeOptions(sixrd_prefixes=prefixes, max_tunnel_depth=depth)
    assert_agree(single(row), [row], opts)


@fuzz(150)
@given(st.integers(0, 2**32 - 1), S.options())
def test_fast_equals_reference_on_bulk_random_batches(seed, opts):
    # many rows per example, built from random.Random: no shrinking, but the
    # message names the row, and the seed reproduces the batch
    rng = random.Random(seed)
    rows = S.random_rows(rng, 50)
    order, gaps = S.random_layout(S.RandomChooser(rng), len(rows))
    if S.AVOID_OPEN_BUGS:
        gaps[0] = gaps[0] or b"\x00"
    assert_agree(S.pack_batch(rows, order, gaps), rows, opts)


@fuzz(300)
@given(S.rows(), S.options(caps=True), st.sampled_from(("end", "tail", "gap")))
def test_fast_equals_reference_under_chain_and_layer_caps(row, opts, layout):
    assert_agree(single(row, layout), [row], opts)


def test_fast_equals_reference_at_the_default_layer_cap():
    # 8 tunnels of 7 layers each (Ethernet, 3 VLAN tags, PPPoE, IPv4, UDP)
    # under an Ethernet/VLAN/PPPoE/IPv4/TCP innermost level: 63 layers, one
    # under the reference's default cap of 64, all on the kernel's path
    frame = vxlan_stack(8, raw4(6, TCP))
    row = S.Row(1, frame, len(frame))
    assert reference_key(row, DEFAULT)[2] == "vxlan"
    assert_agree(single(row), [row], DEFAULT)
    keys, fallback = frame_keys(single(row), DEFAULT)
    assert fallback == 0


def two_pass_reports(batch, rows, opts, configured):
    """The engine's two passes (engine/local.py), fast and reference: the
    figures plus NAT64 traffic for the static prefixes, DNS and RA
    evidence; then NAT64 traffic for the prefixes discovered. Returns the
    (fast, reference) reports after each pass."""
    fast, ref = Summary(60.0, configured), Summary(60.0, configured)
    static = ref.nat64.static_prefixes()
    frames = [decode_frame(r.linktype, r.data, r.wirelen, opts) for r in rows]
    summarize_batch(fast, batch, opts, None, static)
    for r, f, ts in zip(rows, frames, batch.ts.tolist()):
        ref.add(f, ts, r.wirelen, r.linktype, r.data)
        inspect_frame(ref.nat64, f, r.data, r.wirelen, static, True)
    first = fast.to_report(), ref.to_report()
    later = sorted(set(ref.nat64.discovered()) - set(static))
    nat64_batch(fast.nat64, batch, opts, later)
    for r, f in zip(rows, frames):
        inspect_frame(ref.nat64, f, r.data, r.wirelen, later, False)
    return first, (fast.to_report(), ref.to_report())


def _on_path(path, fn, *args):
    with fast_path(path):
        return fn(*args)


@fuzz(120)
@given(S.batches(S.rows(), max_rows=50), S.options(),
       st.sampled_from(((), (S.NSP_96,), (S.NSP_48,), (S.NSP_96, S.NSP_48))))
def test_fast_summary_equals_reference_summary(batch_rows, opts, configured):
    # beyond frame_key: bytes, time bins, and the NAT64 / DNS64 state that
    # the fast path gathers with array operations (fast/__init__.py)
    batch, rows = batch_rows
    for fast, ref in (p for path in fast_paths() for p in _on_path(path, two_pass_reports, batch,
                                                                     rows, opts, configured)):
        if fast != ref and S.AVOID_OPEN_BUGS:
            keys, _ = frame_keys(batch, opts)
            if any(open_bug1(k, reference_key(r, opts)) for k, r in zip(keys, rows)):
                return                   # open bug 1 (see its regression test)
        diff = {k: (fast[k], ref[k]) for k in ref if fast.get(k) != ref[k]}
        assert fast == ref, f"fast vs reference report differ: {diff}"


TIMES = st.one_of(
    st.floats(1.7e9, 1.7e9 + 300),                           # a few bins of 60 s
    st.sampled_from([1.7e9 + 19.999999, 1.7e9 + 20.0, 1.7e9 + 80.0, 0.0, -0.0, -1e-9,
                     -60.0, 2.0 ** 64, -(2.0 ** 64), 1e300]))     # (readers give finite clocks)


@fuzz(150)
@given(S.batches(S.rows(), max_rows=30), st.data())
def test_time_bins_of_any_clock_equal_reference(batch_rows, data):
    # the batch's time bins by the fast path's shortcut (every frame in one
    # bin: the keys' sums) and by its per-row path (several bins, odd
    # clocks), against the reference; clocks drawn around bin edges, far
    # off and not finite, and all equal so that one bin is common
    batch, rows = batch_rows
    n = len(batch)
    same = data.draw(st.booleans())
    ts = [data.draw(TIMES)] * n if same else data.draw(st.lists(TIMES, min_size=n, max_size=n))
    batch = Batch(batch.buffer, batch.offsets, batch.caplens, batch.wirelens,
                  np.array(ts, dtype=np.float64), batch.linktypes)
    for path in fast_paths():
        (fast, ref), _ = _on_path(path, two_pass_reports, batch, rows, DEFAULT, ())
        assert fast["timeseries"] == ref["timeseries"]
        assert fast == ref


# -- 2. nothing raises ---------------------------------------------------------------

ANY_LINKTYPE = st.one_of(st.sampled_from(S.SUPPORTED_LINKTYPES + S.UNSUPPORTED_LINKTYPES),
                         st.integers(-2**31, 2**31 - 1))


@fuzz(600)
@given(ANY_LINKTYPE, st.binary(max_size=200), S.options(caps=True))
def test_reference_never_raises_on_random_bytes(linktype, data, opts):
    check_invariants(decode_frame(linktype, data, len(data), opts), linktype, opts)


@fuzz(400)
@given(st.one_of(S.mutated(linktypes=S.SUPPORTED_LINKTYPES + S.UNSUPPORTED_LINKTYPES),
                 S.garbage()), S.options(caps=True))
def test_reference_never_raises_on_mutated_frames(row, opts):
    check_invariants(decode_frame(row.linktype, row.data, row.wirelen, opts), row.linktype, opts)


@fuzz(300)
@given(st.lists(st.tuples(ANY_LINKTYPE, st.binary(max_size=64)), min_size=1, max_size=20),
       S.options())
def test_kernel_never_raises_on_random_bytes(items, opts):
    rows = [S.Row(lt, data, len(data)) for lt, data in items]
    gaps = [b"\x00"] + [b""] * (len(rows) - 1) if S.AVOID_OPEN_BUGS else None
    assert_agree(S.pack_batch(rows, None, gaps), rows, opts)


# -- 3. classification invariants --------------------------------------------------------

def check_invariants(f, linktype, opts):
    (carrier, payload, tunnel, transport, ext, rtypes, chain, anomalies, classes,
     problem) = frame_key(f)
    assert carrier in FAMILIES and payload in FAMILIES
    assert tunnel in TUNNEL_KINDS and all(t in TUNNEL_KINDS for t in f.tunnels)
    assert len(f.tunnels) <= max(opts.max_tunnel_depth, 0)
    # a frame is IP in both views or in neither
    assert (carrier == "non_ip") == (payload == "non_ip")
    # the family changes from carrier to payload only through a tunnel
    if carrier != payload:
        assert tunnel != "none", (carrier, payload)
    if tunnel != "none":
        assert carrier != "non_ip"
    if tunnel in ("6in4", "6to4", "isatap", "6rd", "teredo", "ipip"):
        assert carrier == "ipv4"
    if tunnel in ("4in6", "6in6"):
        assert carrier == "ipv6"
    if tunnel == "6rd":
        assert opts.sixrd_prefixes
    assert (transport is None) == (payload == "non_ip")
    if transport is not None:
        assert transport in TRANSPORT_KEYS[payload]
    assert set(ext) <= set(EXT_TYPES) and set(anomalies) <= set(ANOMALIES)
    assert all(0 <= t <= 255 for t in rtypes)
    if rtypes:
        assert "routing" in ext
    assert ("rh0" in anomalies) == (0 in rtypes)
    for anomaly, name in (("atomic_fragment", "fragment"),
                          ("chain_not_in_first_fragment", "fragment"),
                          ("hbh_not_first", "hop_by_hop")):
        if anomaly in anomalies:
            assert name in ext
    if "repeated_header" in anomalies or chain:
        assert ext
    if "truncated_chain" in anomalies:
        assert problem == "truncated"
    if "ipv6" in (carrier, payload):
        assert chain is not None
    if chain is not None:
        assert carrier != "non_ip" and 0 <= chain <= max(opts.max_chain, 0) + 1
    assert (len(classes) == 2) == (payload == "ipv6")
    assert set(classes) <= set(ADDRESS_CLASSES)
    assert problem is None or problem in DECODE_KEYS
    assert (problem == "unsupported_linktype") == (linktype not in LINKTYPES)


@fuzz(500)
@given(S.rows(), S.options())
def test_classification_invariants(row, opts):
    check_invariants(decode_frame(row.linktype, row.data, row.wirelen, opts), row.linktype, opts)


# -- regression tests for the bugs these properties found ------------------------------------

# Bug 1. RFC 3692 experimental headers 253 and 254 are two header types
# (REPORT.md: `repeated_header` is "a header type more often than RFC 8200
# allows"); the reference counts repeats per next-header value
# (decode/ip.py walk_chain: seen[nh]). The kernel counts them per by_type
# bit (fast/kernel.py step_ipv6: `rep = ... (seen[a] & bit) != 0` with
# EXT_BIT[253] == EXT_BIT[254], both "experimental"), so 253 then 254 is
# flagged `repeated_header` on the fast path only.
EXP_253_254 = raw6(253, b"\xfe\x00" + bytes(6) + b"\x06\x00" + bytes(6) + TCP)
EXP_254_253 = raw6(254, b"\xfd\x00" + bytes(6) + b"\x3b\x00" + bytes(6))
EXP_253_253 = raw6(253, b"\xfd\x00" + bytes(6) + b"\x06\x00" + bytes(6) + TCP)


@pytest.mark.parametrize("frame", [EXP_253_254, EXP_254_253], ids=["253-254", "254-253"])
def test_bug1_experimental_253_then_254_is_no_repeat(frame):
    row = S.Row(101, frame, len(frame))
    assert "repeated_header" not in reference_key(row, DEFAULT)[7]
    assert_agree(single(row), [row], DEFAULT, strict=True)


def test_experimental_253_twice_is_a_repeat_on_both_paths():
    row = S.Row(101, EXP_253_253, len(EXP_253_253))
    assert "repeated_header" in reference_key(row, DEFAULT)[7]
    assert_agree(single(row), [row], DEFAULT)


# Bug 2. The kernel gathers bytes with np.take(..., mode="clip"), which
# raises IndexError on a zero-length buffer; start() reads the version
# nibble of raw rows (fast/kernel.py start: `v = rows.u8(rows.pos[ri])`)
# and the SLL/SLL2 protocol (`et = rows.u16(p + at)`) before their length
# checks, and step_ipv4/step_ipv6 read the version byte before theirs (for
# 228/229). A batch whose rows are all empty (pcapng records with caplen 0:
# capture.batch.batches_from_records joins them to b"") crashes
# `ipv6flow analyze` with the default --decoder fast (traceback, exit 1);
# the reference decoder counts such frames as non_ip / truncated.
@pytest.mark.parametrize("linktype", [12, 14, 101, 113, 228, 229, 276])
def test_bug2_empty_buffer(linktype):
    rows = [S.Row(linktype, b"", 40), S.Row(linktype, b"", 0)]
    assert_agree(S.pack_batch(rows), rows, DEFAULT, strict=True)


def test_empty_rows_in_a_non_empty_buffer():
    rows = [S.Row(101, b"", 40), S.Row(229, b"", 0), S.Row(276, b"", 0), S.Row(1, b"", 0),
            S.Row(101, b"\x60", 1)]
    assert_agree(S.pack_batch(rows), rows, DEFAULT)


def _pcapng(linktype, packets):
    def block(t, body):
        body += bytes(-len(body) % 4)
        return struct.pack("<II", t, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for data, wire in packets:
        out += block(6, struct.pack("<IIIII", 0, 0, 0, len(data), wire) + data)
    return out


def test_bug2_cli_fast_decoder_on_empty_packets(tmp_path):
    path = tmp_path / "empty.pcapng"
    path.write_bytes(_pcapng(101, [(b"", 40), (b"", 60)]))
    out = {}
    for decoder in ("fast", "reference"):
        r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                            "--decoder", decoder, str(path)], capture_output=True, timeout=120)
        out[decoder] = (r.returncode, r.stdout)
    assert out["fast"] == out["reference"]


# Bug 3. DecodeOptions.max_chain is ignored by the kernel: the reference
# stops a chain after max_chain headers with the `chain_too_long` anomaly
# (decode/ip.py walk_chain: `if n > opts.max_chain`), the kernel walks up to
# its own MAX_DEPTH = 8 (fast/kernel.py step_ipv6) and never looks at
# opts.max_chain. Not reachable from the CLI today (the default 64 is above
# MAX_DEPTH), but frame_keys/summarize_batch promise the reference's answer
# for any DecodeOptions.
DSTOPTS_2 = raw6(60, b"\x3c\x00" + bytes(6) + b"\x06\x00" + bytes(6) + TCP)


@pytest.mark.parametrize("max_chain", [0, 1])
def test_bug3_max_chain_is_honoured(max_chain):
    opts = DecodeOptions(max_chain=max_chain)
    row = S.Row(101, DSTOPTS_2, len(DSTOPTS_2))
    assert "chain_too_long" in reference_key(row, opts)[7]
    assert_agree(single(row), [row], opts, strict=True)


# Bug 4. DecodeOptions.max_layers is ignored by the kernel: the reference
# stops after max_layers parser steps with `depth_exceeded`
# (decode/__init__.py decode_frame: `if steps > opts.max_layers`); the
# kernel has no layer count (only MAX_ROUNDS = 24 rounds, each of which can
# take a row through several layers). With the default max_layers = 64 the
# kernel can only disagree when max_tunnel_depth is raised above 8: ten
# VXLAN levels of 7 layers (Ethernet, 3 VLAN tags, PPPoE, IPv4, UDP) are
# 70 layers, all on the kernel's path.
@pytest.mark.parametrize("case", ["max_layers=2", "max_tunnel_depth=10"])
def test_bug4_max_layers_is_honoured(case):
    if case == "max_layers=2":
        frame, opts = eth(0x0800, raw4(6, TCP), tags=(0x8100,)), DecodeOptions(max_layers=2)
    else:
        frame, opts = vxlan_stack(10, raw4(6, TCP)), DecodeOptions(max_tunnel_depth=10)
    row = S.Row(1, frame, len(frame))
    assert reference_key(row, opts)[9] == "depth_exceeded"
    assert_agree(single(row), [row], opts, strict=True)


# Bug 5 (open; left by the fix of bug 4). fast/kernel.py classify() sends
# every row to the reference when
#     MAX_LAYERS_PER_TUNNEL * max_tunnel_depth + MAX_LAYERS_PER_TUNNEL - 1 > max_layers
# but a frame on the kernel's path can take 7 reference steps on every
# level, the innermost included when it ends in a UDP (or GRE) step:
# Ethernet, 3 VLAN tags, PPPoE, IPv4, UDP. That is 7 * (max_tunnel_depth +
# 1) steps, one more than the guard allows for, so with max_layers equal to
# 7 * max_tunnel_depth + 6 the reference stops such a frame with
# depth_exceeded while the kernel classifies it. The guard should read
# ``MAX_LAYERS_PER_TUNNEL * (opts.max_tunnel_depth + 1) > opts.max_layers``.
# Not reachable from the CLI (the defaults 8 and 64 have room: 63 <= 64).
@pytest.mark.parametrize("depth", [0, 1, 8])
def test_bug5_layer_guard_counts_the_innermost_udp(depth):
    frame = vxlan_stack(depth, raw4(17, udp(53, 53, bytes(12))))
    opts = DecodeOptions(max_tunnel_depth=depth, max_layers=7 * depth + 6)
    row = S.Row(1, frame, len(frame))
    assert reference_key(row, opts)[9] == "depth_exceeded"
    assert_agree(single(row), [row], opts, strict=True)


def test_layer_cap_with_one_layer_to_spare():
    for depth in (0, 1, 8):
        frame = vxlan_stack(depth, raw4(17, udp(53, 53, bytes(12))))
        opts = DecodeOptions(max_tunnel_depth=depth, max_layers=7 * depth + 7)
        row = S.Row(1, frame, len(frame))
        assert reference_key(row, opts)[9] is None
        assert_agree(single(row), [row], opts, strict=True)


# Bug 6 (open; left by the fix of bug 3). With a negative max_chain the
# reference flags the first extension header chain_too_long (decode/ip.py
# walk_chain: n > max_chain), but fast/kernel.py step_ipv6 loops over
# ``range(min(MAX_DEPTH, opts.max_chain) + 1)``, which is empty, so the
# kernel does not walk the chain at all (no ext types, chain_len 0, the
# extension header taken as the transport). Clamp the cap at 0 (or reject
# negative caps in DecodeOptions; this test then fails and should change).
def test_bug6_negative_max_chain():
    frame = raw6(0, b"\x06\x00" + bytes(6) + TCP)
    opts = DecodeOptions(max_chain=-1)
    row = S.Row(101, frame, len(frame))
    assert "chain_too_long" in reference_key(row, opts)[7]
    assert_agree(single(row), [row], opts, strict=True)
