"""ipv6flow's reference decoder against tshark, frame by frame, on the
real captures in ../shared/captures (MANIFEST.tsv).

For every readable capture, every frame's ``carrier``, ``payload``,
``tunnel`` and extension-header set from ``ipv6flow.decode.decode_frame``,
and for its innermost IP header the ``transport`` key and address
``classes`` the report counts (``summary.frame_key``) and the TCP/UDP
``ports`` the client and flow analysis reads (``decode.columns.frame_columns``),
must equal what tshark's dissection says, read through REPORT.md sections
2-5 and 7 (tests/tshark_oracle.py) -- except where tshark and REPORT.md disagree:
those frames are listed in KNOWN_DIFFERENCES below with what REPORT.md
requires and why, and there the decoder must give REPORT.md's value.
REPORT.md always wins; the table keeps every exception visible and
reviewed, and a test keeps it from going stale.

A failing capture reports all of its mismatches at once, with frame
numbers and tshark's protocol stack for each.

Environment: ``TSHARK`` (binary), ``IPV6FLOW_CAPTURES`` (corpus folder),
``IPV6FLOW_TSHARK_CACHE`` (cache folder; default: pytest's cache dir).
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

import tshark_oracle as oracle

from conftest import CAPTURES as SHARED_CAPTURES
from conftest import missing_module

if not oracle.have_tshark():
    missing_module(f"tshark is not installed ({oracle.TSHARK!r} not on PATH): the "
                   "tshark differential tests need Wireshark's tshark (Debian package tshark)")

CAPTURES = Path(os.environ.get("IPV6FLOW_CAPTURES") or SHARED_CAPTURES)
MANIFEST = CAPTURES / "MANIFEST.tsv"

FIELDS = ("carrier", "payload", "tunnel", "ext_types", "transport", "ports", "classes")


# --------------------------------------------------------------------------
# Known differences between tshark and REPORT.md.
#
# Each entry: the capture, its frame numbers, the field, what tshark's
# dissection gives (as read by tshark_oracle), what REPORT.md requires, and
# why.  For these frames the decoder must give the REPORT.md value.  The
# entries are checked against the oracle on every run: an entry whose
# "tshark" value no longer matches is reported as stale.


@dataclass(frozen=True)
class KnownDifference:
    capture: str
    frames: tuple[int, ...]
    field: str            # one of FIELDS
    tshark: object        # str; frozenset (ext_types); (sport, dport) or
    report: object        # None (ports); (src, dst) classes or () (classes)
    why: str


_V6_IN_V4_LINK = (
    "the link layer says IPv4 (ethertype 0x0800 / LINKTYPE_IPV4 228) but the "
    "header has version 6. tshark's IPv4 dissector hands any version-6 "
    "header to its IPv6 dissector; for REPORT.md this is an IPv4 header "
    "that is malformed, so no IP header is reached (DECISIONS.md: 228/229 "
    "holding the other version are malformed, non_ip).")

_MPLS_PW = (
    "MPLS label stack whose payload starts with nibble 0 (a pseudowire "
    "control word). tshark's pwethheuristic decodes an Ethernet pseudowire "
    "behind it and finds IPv4; REPORT.md guesses only from the first nibble "
    "after the bottom of stack (4 IPv4, 6 IPv6, anything else non_ip).")


def _kd(capture, frames, why, **fields):
    """Shorthand: one KnownDifference per field=(tshark, report)."""
    return [KnownDifference(capture, tuple(frames), f, t, r, why)
            for f, (t, r) in fields.items()]


KNOWN_DIFFERENCES: list[KnownDifference] = [
    # --- Teredo: tshark's teredo_udp heuristic vs REPORT.md's rule
    *_kd("zeek/teredo_bubble_with_payload.pcap", (3, 6),
         "UDP 3797 -> 32900 over IPv4 (no port 3544) carrying an IPv6 bubble "
         "(next header 59, payload length 0, source 2001:0:4137:9e50:... in "
         "2001::/32) followed by 4 more bytes ('1234'). REPORT.md: the "
         "payload length fits the datagram (40 + 0 <= 44) and the source is "
         "in 2001::/32, and bubbles count: Teredo. tshark's teredo_udp "
         "heuristic demands that the IPv6 packet fill the UDP payload "
         "exactly (reported length remaining != payload length -> not "
         "Teredo), so it shows plain UDP data. Bytes after the IPv6 packet "
         "are legitimate: RFC 6081 trailers (see zeek/gtp8_teredo.pcap). "
         "So the innermost header is the bubble: no next header, no ports.",
         tunnel=("none", "teredo"), payload=("ipv4", "ipv6"),
         transport=("udp", "no_next_header"), ports=((3797, 32900), None)),
    *_kd("zeek/teredo_bubble_with_payload.pcap", (3,),
         "the bubble of frame 3 (see above) is from the Teredo address "
         "2001:0:4137:9e50:8000:f12a:b9c8:2815 to 2001:4860:0:2001::68",
         classes=((), ("teredo", "global_unicast"))),
    *_kd("zeek/teredo_bubble_with_payload.pcap", (6,),
         "the bubble of frame 6 (see above) is from the Teredo address "
         "2001:0:4137:9e50:8000:f12a:b9c8:2815 to fe80::708d:fe83:4114:a512",
         classes=((), ("teredo", "link_local"))),
    *_kd("zeek/teredo-udp-in-udp.pcap", (1,),
         "Teredo-looking IPv6 inside UDP over IPv6. REPORT.md's Teredo is "
         "IPv6 inside UDP over IPv4 (RFC 4380); tshark's heuristic does not "
         "look at the outer IP version.",
         tunnel=("teredo", "none")),
    # --- UDP tunnels on ports REPORT.md does not list
    *_kd("arkime/arkime_synthetic.pcap", (618, 619),
         "VXLAN-GPE on UDP 4790 carrying IPv4 directly. tshark dissects it "
         "with its VXLAN dissector; REPORT.md's vxlan is VXLAN on UDP 4789 "
         "with inner Ethernet, and VXLAN-GPE is not in the tunnel table, so "
         "the outer IPv4/UDP is the payload, and its ports are the ports.",
         tunnel=("vxlan", "none")),
    *_kd("arkime/arkime_synthetic.pcap", (618,), "VXLAN-GPE, see above",
         ports=((12345, 53), (40000, 4790))),
    *_kd("arkime/arkime_synthetic.pcap", (619,), "VXLAN-GPE, see above",
         ports=((12345, 53), (4790, 40000))),
    # --- link layers REPORT.md does not decode
    *_kd("arkime/arkime_synthetic.pcap", (307,),
         "Ethernet with ethertype 0x894F (NSH, RFC 8300). tshark decodes "
         "NSH and the IPv4 packet behind it; NSH is not among REPORT.md's "
         "link layers, so the frame never reaches an IP header.",
         carrier=("ipv4", "non_ip"), payload=("ipv4", "non_ip"),
         transport=("icmp", None)),
    *_kd("arkime/arkime_synthetic.pcap", (315,),
         "Ethernet with ethertype 0x8909 (Cisco MetaData). tshark decodes "
         "the CMD tag and the IPv4 packet behind it; CMD is not among "
         "REPORT.md's link layers (802.1Q/802.1ad/MPLS/PPPoE only).",
         carrier=("ipv4", "non_ip"), payload=("ipv4", "non_ip"),
         transport=("icmp", None)),
    *_kd("tcpreplay/test.pcap",
         (142, 150, 157, 170, 174, 175, 176, 177, 178, 179), _MPLS_PW,
         carrier=("ipv4", "non_ip"), payload=("ipv4", "non_ip"),
         transport=("icmp", None)),
    # --- IPv6 header behind an IPv4 link type
    *_kd("tcpdump/kday1.pcap", (1,), _V6_IN_V4_LINK,
         carrier=("ipv6", "non_ip"), payload=("ipv6", "non_ip"),
         transport=("other", None), classes=(("other", "other"), ())),
    *_kd("tcpdump/LINKTYPE_IPV4_invalid.pcap", (1,), _V6_IN_V4_LINK,
         carrier=("ipv6", "non_ip"), payload=("ipv6", "non_ip"),
         transport=("udp", None), ports=((12345, 53), None),
         classes=(("documentation", "global_unicast"), ())),
    *_kd("nDPI/fuzz-2006-06-26-2594.pcap", (669,), _V6_IN_V4_LINK,
         carrier=("ipv6", "non_ip"), payload=("ipv6", "non_ip"),
         ext_types=(frozenset({"hop_by_hop"}), frozenset()),
         transport=("other", None), classes=(("other", "other"), ())),
    # --- malformed frames tshark half-decodes
    *_kd("zeek/mpls-6in6-broken.pcap.gz", (417, 427),
         "MPLS, then 21 bytes starting 0x4b / 0x47: a complete 20-byte IPv4 "
         "fixed header (version 4) whose IHL (44 / 28 bytes) runs past the "
         "end of the frame, total length 0. tshark's IPv4 dissector throws "
         "after the source address, so no destination address is shown and "
         "the oracle cannot call it reached; by DECISIONS.md (fixed header "
         "fully captured, right version) it is an IPv4 header, malformed; "
         "its protocol field (255) makes the transport 'other'.",
         carrier=("non_ip", "ipv4"), payload=("non_ip", "ipv4"),
         transport=(None, "other")),
    # --- MPLS guessing
    *_kd("zeek/mpls-6in6-broken.pcap.gz", (1088,),
         "bottom MPLS label 14 (OAM Alert, RFC 3429): tshark hands the "
         "payload to its Y.1711 OAM dissector, which wants 44 bytes and "
         "shows data. REPORT.md guesses from the first nibble after the "
         "bottom of stack only: 0x4d, IPv4 (a 20-byte fixed header is "
         "there; IHL 13 runs past the frame end: malformed; protocol 46, "
         "RSVP: transport 'other').",
         carrier=("non_ip", "ipv4"), payload=("non_ip", "ipv4"),
         transport=(None, "other")),
    # --- DLT_NULL family field
    *_kd("PcapPlusPlus/null_loopback.pcap", (3,),
         "DLT_NULL header 0f 00 08 00: not an AF_ value in either byte "
         "order. tshark reads it as an Ethernet type 0x0800 in the low "
         "half (a Wireshark accommodation for odd loopback headers); "
         "REPORT.md's BSD null/loopback header is an AF_ value (2 IPv4; "
         "24, 28, 30 IPv6), so no IP header is reached. (If the project "
         "wants to accept this quirk, change the decoder and drop this "
         "entry.)",
         carrier=("ipv4", "non_ip"), payload=("ipv4", "non_ip"),
         transport=("udp", None), ports=((53, 58125), None)),
    # --- upper layers tshark does not reach
    *_kd("zeek/ipv6-mobility-dst-opts.pcap", (1,),
         "IPv6 (payload length 36) with a 24-byte Destination Options header "
         "naming UDP, then a complete UDP header 30000 -> 13000. An option "
         "inside the header (type 202) claims 144 bytes, past the header's "
         "end: tshark's option parser throws and UDP is never dissected. "
         "REPORT.md's walk reads only the header's length, which fits, so "
         "the UDP header is reached and its ports count.",
         ports=(None, (30000, 13000))),
]


def _known_index() -> dict:
    idx: dict = defaultdict(dict)
    for kd in KNOWN_DIFFERENCES:
        for n in kd.frames:
            idx[(kd.capture, n)][kd.field] = kd
    return idx


KNOWN = _known_index()


# --------------------------------------------------------------------------
# the corpus


@dataclass(frozen=True)
class Capture:
    file: str
    limit: int | None     # compare only the first N frames (read error)
    packets: int | None   # capinfos' packet count from the manifest


def _manifest() -> list[Capture]:
    if not MANIFEST.exists():
        return []
    out = []
    with open(MANIFEST, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lt = row["link_types"]
            if lt.strip() == "unreadable":
                continue
            m = re.search(r"read error after (\d+) packets?", lt)
            pk = row.get("packets", "").strip()
            out.append(Capture(row["file"], int(m.group(1)) if m else None,
                               int(pk) if pk.isdigit() else None))
    return out


CORPUS = _manifest()
if not CORPUS:
    missing_module(f"the capture corpus is not at {CAPTURES} (set IPV6FLOW_SHARED to ../shared)")


@pytest.fixture(scope="session")
def tshark_cache(request) -> str:
    """Cache folder for tshark's output; filled for the whole corpus on first
    use, in parallel (one tshark per capture)."""
    d = os.environ.get("IPV6FLOW_TSHARK_CACHE")
    if not d:
        cache = getattr(request.config, "cache", None)   # -p no:cacheprovider
        d = str(cache.mkdir("tshark-oracle")) if cache else oracle.default_cache_dir()
    oracle.prefetch([str(CAPTURES / c.file) for c in CORPUS], d)
    return d


_oracle_memo: dict = {}
_decoder_memo: dict = {}


def oracle_frames(cap: Capture, cache: str) -> list[dict]:
    if cap.file not in _oracle_memo:
        frames = oracle.tshark_frames(str(CAPTURES / cap.file), cache)
        _oracle_memo[cap.file] = frames[:cap.limit] if cap.limit else frames
    return _oracle_memo[cap.file]


def decode_capture(path: str, limit: int | None = None) -> list[dict]:
    """ipv6flow's reader and reference decoder on ``path``: the oracle's
    fields for each frame (the first ``limit`` when the capture has a read
    error after them)."""
    import ipv6flow.capture as cap_mod
    import ipv6flow.decode as dec_mod
    from ipv6flow.decode.columns import COLUMNS, frame_columns
    from ipv6flow.errors import Ipv6flowError
    from ipv6flow.decode.frame import frame_key

    sport_at, dport_at = COLUMNS.index("sport"), COLUMNS.index("dport")
    opts = dec_mod.DecodeOptions()
    out = []
    try:
        with cap_mod.open_capture(path) as c:
            for n, rec in enumerate(c, 1):
                if limit and n > limit:
                    break
                f = dec_mod.decode_frame(rec.linktype, rec.data, rec.wirelen, opts)
                # transport and address classes as the report counts them
                # (frame_key: ..., transport [3], ..., classes [8], ...),
                # ports as the client and flow analysis reads them
                key = frame_key(f)
                cols = frame_columns(f, rec.linktype, rec.data, 0.0, rec.wirelen)
                ports = None
                if cols is not None and cols[sport_at] >= 0:
                    ports = (cols[sport_at], cols[dport_at])
                out.append({"frame": n, "carrier": f.carrier,
                            "payload": f.payload, "tunnel": f.tunnel,
                            "ext_types": frozenset(f.ext_types),
                            "transport": key[3], "ports": ports,
                            "classes": key[8]})
    except Ipv6flowError:
        if not limit:
            raise
    return out


@pytest.fixture(scope="session")
def decoder():
    """decode_capture for a capture of the corpus (memoized)."""
    def decode(cap: Capture) -> list[dict]:
        if cap.file not in _decoder_memo:
            _decoder_memo[cap.file] = decode_capture(str(CAPTURES / cap.file), cap.limit)
        return _decoder_memo[cap.file]

    return decode


def expected_frames(cap: Capture, cache: str) -> list[dict]:
    """The oracle's frames with REPORT.md's values put in where tshark and
    REPORT.md are known to differ."""
    out = []
    for fr in oracle_frames(cap, cache):
        e = dict(fr)
        for field, kd in KNOWN.get((cap.file, fr["frame"]), {}).items():
            e[field] = kd.report
            e.setdefault("known", []).append(field)
        out.append(e)
    return out


def _fmt(v) -> str:
    if isinstance(v, frozenset):
        return "{" + ", ".join(sorted(v)) + "}"
    return str(v)


def _runs(nums: list[int]) -> str:
    """1,2,3,7 -> '1-3, 7'"""
    out, start, prev = [], None, None
    for n in sorted(nums):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(out)


# --------------------------------------------------------------------------
# the tests


def mismatches(exp: list[dict], got: list[dict]) -> tuple[int, list[str]]:
    """Where the decoder differs from the expected frames: (number of frame
    fields that differ, one line per kind of mismatch with its frames)."""
    problems = []
    if len(got) != len(exp):
        problems.append(f"frame count: tshark {len(exp)}, ipv6flow {len(got)}")
    # group identical mismatches so a capture with thousands of frames gives
    # one line per kind of mismatch, with every frame number
    groups: dict = defaultdict(list)
    renumbered: dict = {}
    for e, g in zip(exp, got):
        for field in FIELDS:
            if e[field] != g[field]:
                src = "REPORT.md (known tshark difference)" if field in e.get("known", ()) \
                    else "tshark"
                groups[(field, _fmt(e[field]), _fmt(g[field]), src,
                        e["protocols"])].append(e["frame"])
                if e["tshark_frame"] != e["frame"]:
                    renumbered[e["frame"]] = e["tshark_frame"]
    for (field, want, have, src, protos), frames in sorted(
            groups.items(), key=lambda kv: kv[1][0]):
        problems.append(f"frames {_runs(frames)}: {field}: expected {want} [{src}], "
                        f"ipv6flow {have}  (tshark: {protos})")
    if renumbered:
        problems.append("packet record -> tshark frame number: " + ", ".join(
            f"{a}->{b}" for a, b in sorted(renumbered.items())))
    return sum(len(v) for v in groups.values()), problems


@pytest.mark.parametrize("cap", CORPUS, ids=[c.file for c in CORPUS])
def test_capture_matches_tshark(cap, tshark_cache, decoder):
    count, problems = mismatches(expected_frames(cap, tshark_cache), decoder(cap))
    if problems:
        pytest.fail(f"{cap.file}: {count} mismatches\n  " + "\n  ".join(problems),
                    pytrace=False)


def test_aggregate_carrier_payload_tunnel(tshark_cache, decoder):
    """Frames per (carrier, payload, tunnel) over the whole corpus."""
    want: Counter = Counter()
    have: Counter = Counter()
    for cap in CORPUS:
        for e in expected_frames(cap, tshark_cache):
            want[(e["carrier"], e["payload"], e["tunnel"])] += 1
        for g in decoder(cap):
            have[(g["carrier"], g["payload"], g["tunnel"])] += 1
    diff = {k: (want[k], have[k]) for k in set(want) | set(have) if want[k] != have[k]}
    if diff:
        pytest.fail("frames per (carrier, payload, tunnel), expected vs ipv6flow:\n  "
                    + "\n  ".join(f"{k}: {a} vs {b}" for k, (a, b) in sorted(diff.items())),
                    pytrace=False)


def test_known_differences_are_current(tshark_cache):
    """Every entry still describes what tshark says (no stale entries), and
    names a capture of the corpus and real frames."""
    files = {c.file: c for c in CORPUS}
    problems = []
    for kd in KNOWN_DIFFERENCES:
        assert kd.field in FIELDS, kd
        if kd.capture not in files:
            problems.append(f"{kd.capture}: not in the corpus")
            continue
        frames = {f["frame"]: f for f in oracle_frames(files[kd.capture], tshark_cache)}
        for n in kd.frames:
            if n not in frames:
                problems.append(f"{kd.capture} frame {n}: no such frame")
            elif frames[n][kd.field] != kd.tshark:
                problems.append(f"{kd.capture} frame {n} {kd.field}: table says tshark "
                                f"gives {_fmt(kd.tshark)}, tshark gives "
                                f"{_fmt(frames[n][kd.field])}")
        if kd.tshark == kd.report:
            problems.append(f"{kd.capture} {kd.field}: tshark and REPORT.md agree")
    if problems:
        pytest.fail("stale known differences:\n  " + "\n  ".join(problems), pytrace=False)


def test_every_disagreement_is_a_known_difference(tshark_cache):
    """A frame where the oracle saw tshark decide something REPORT.md decides
    differently (see tshark_oracle.DISAGREEMENT_NOTES) must have an entry in
    KNOWN_DIFFERENCES: no exception goes unreviewed."""
    missing = []
    for cap in CORPUS:
        for fr in oracle_frames(cap, tshark_cache):
            notes = [n for n in fr["notes"] if oracle.is_disagreement(n)]
            if notes and (cap.file, fr["frame"]) not in KNOWN:
                missing.append(f"{cap.file} frame {fr['frame']}: {', '.join(notes)} "
                               f"(tshark: {fr['protocols']})")
    if missing:
        pytest.fail("tshark/REPORT.md disagreements not in KNOWN_DIFFERENCES:\n  "
                    + "\n  ".join(missing), pytrace=False)


def test_oracle_frame_counts_match_manifest(tshark_cache):
    """tshark reads as many packet records as capinfos counted (so frame
    numbers line up with ipv6flow's records)."""
    bad = []
    for cap in CORPUS:
        if cap.packets is None:
            continue
        n = len(oracle_frames(cap, tshark_cache))
        if n != (min(cap.packets, cap.limit) if cap.limit else cap.packets):
            bad.append(f"{cap.file}: tshark {n}, manifest {cap.packets}")
    if bad:
        pytest.fail("packet counts:\n  " + "\n  ".join(bad), pytrace=False)


ANCHORS = [
    # capture, frame (None: all), field, value -- hand-checked, so that a
    # broken oracle cannot silently agree with a broken decoder
    ("zeek/6in4.pcap", 1, {"carrier": "ipv4", "payload": "ipv6", "tunnel": "6in4"}),
    ("zeek/4in4.pcap", 1, {"carrier": "ipv4", "payload": "ipv4", "tunnel": "ipip"}),
    ("zeek/gtp3_false_gtp.pcap", 1, {"tunnel": "none", "payload": "ipv4"}),
    ("nDPI/4in6tunnel.pcap", None, {"carrier": "ipv6", "payload": "ipv4", "tunnel": "4in6"}),
    ("PcapPlusPlus/IPv4-encapsulated-IPv6.pcap", 1, {"tunnel": "6to4"}),
    ("packetnet/teredo.pcap", 1, {"carrier": "ipv4", "payload": "ipv6", "tunnel": "teredo",
                                  "transport": "icmpv6", "ports": None,
                                  "classes": ("teredo", "global_unicast")}),
    ("zeek/gtp8_teredo.pcap", None, {"carrier": "ipv4", "payload": "ipv6", "tunnel": "gtpu"}),
    ("zeek/6in6in6.pcap", 1, {"tunnel": "6in6", "payload": "ipv6"}),
    ("dpkt/nb6-http.pcap", 19, {"tunnel": "l2tp", "payload": "ipv6"}),
    # the ICMPv6 error quotes an IPv6 header with Hop-by-Hop: not counted
    ("zeek/icmp6-destunreach-ip6ext-udp.pcap", 1, {"ext_types": frozenset(),
                                                   "tunnel": "none"}),
    ("libpcap/ipv6_ah_modes.pcap", 2, {"ext_types": frozenset({"ah"}), "tunnel": "6in6"}),
    ("suricata-verify/ipv6-hdr-keyword-02__input.pcap", 1, {
        "ext_types": frozenset({"hop_by_hop", "routing", "destination_options"}),
        "transport": "udp", "ports": (53, 80), "classes": ("loopback", "loopback")}),
    ("zeek/ip6-ext-trunc.pcap", 1, {"carrier": "ipv6",
                                    "ext_types": frozenset({"hop_by_hop"})}),
    # innermost header: the inner UDP of 6in4, not the outer protocol 41
    ("zeek/6in4.pcap", 1, {"transport": "udp", "ports": (30000, 13000),
                           "classes": ("other", "other")}),     # dead::beef > cafe::babe
    # a Teredo bubble: no next header, and the outer UDP's ports are not its
    ("zeek/Teredo.pcap", 29, {"transport": "no_next_header", "ports": None,
                              "classes": ("teredo", "global_unicast")}),
    ("zeek/Teredo.pcap", 2, {"payload": "ipv4", "transport": "tcp", "ports": (80, 1576),
                             "classes": ()}),
    # the ICMPv6 error quotes a UDP datagram: its ports are not the frame's
    ("zeek/icmp6-destunreach-ip6ext-udp.pcap", 1, {
        "transport": "icmpv6", "ports": None, "classes": ("link_local", "link_local")}),
    ("nDPI/reddit.pcap", 3, {"transport": "tcp", "ports": (56558, 443),
                             "classes": ("global_unicast", "nat64_wkp")}),
    # an SRH cut by the snap length: the walk ends inside it (not at its
    # next header, 59), and an option running past a complete Hop-by-Hop
    # header does not cut the header (the Routing header it names is found)
    ("tcpdump/ipv6-srh-tlv-pad1-padn-5-trunc.pcap", 1, {"transport": "other",
                                                        "ext_types": frozenset({"routing"})}),
    ("tcpdump/ipv6-next-header-oobr-1.pcap", 1, {
        "transport": "other", "ext_types": frozenset({"hop_by_hop", "routing"})}),
]


@pytest.mark.parametrize("capture,frame,want", ANCHORS,
                         ids=[f"{a[0]}#{a[1] or '*'}" for a in ANCHORS])
def test_oracle_anchors(capture, frame, want, tshark_cache):
    frames = oracle.tshark_frames(str(CAPTURES / capture), tshark_cache)
    assert frames, capture
    for fr in frames:
        if frame is not None and fr["frame"] != frame:
            continue
        for field, value in want.items():
            assert fr[field] == value, (capture, fr["frame"], field, fr)


def test_aggregate_transport_and_address_classes(tshark_cache, decoder):
    """Frames per (payload, transport) and addresses per class over the
    whole corpus, and every transport key of REPORT.md section 7 seen at
    least once (so a wrong row of the transport mapping shows above)."""
    want: Counter = Counter()
    have: Counter = Counter()
    for cap in CORPUS:
        for e in expected_frames(cap, tshark_cache):
            want.update([(e["payload"], e["transport"])] + list(e["classes"]))
        for g in decoder(cap):
            have.update([(g["payload"], g["transport"])] + list(g["classes"]))
    diff = {k: (want[k], have[k]) for k in set(want) | set(have) if want[k] != have[k]}
    if diff:
        pytest.fail("frames per (payload, transport) / addresses per class, expected "
                    "vs ipv6flow:\n  " + "\n  ".join(
                        f"{k}: {a} vs {b}" for k, (a, b) in sorted(diff.items(), key=str)),
                    pytrace=False)
    unseen = set(ALL_TRANSPORTS) - set(want)
    assert not unseen, f"transport keys no frame of the corpus has: {sorted(unseen)}"


# --------------------------------------------------------------------------
# A capture built here, for what the corpus lacks: both ends of every
# prefix of REPORT.md section 5 and the addresses just outside them (the
# corpus has no ipv4_mapped, nat64_local or 3fff::/20 address), and each
# transport key behind extension headers, fragments, tunnels and ICMP
# errors. Every frame states what it is by construction; the oracle must
# say the same, and the decoder must agree with the oracle.

ALL_TRANSPORTS = tuple((fam, key) for fam, keys in oracle.TRANSPORT_KEYS.items()
                       for key in (*keys.values(), "other"))

#: (address, REPORT.md section 5 class), by hand: the ends of each prefix
#: and their neighbours outside it
CLASS_EDGES = (
    ("::", "unspecified"), ("::1", "loopback"), ("::2", "other"),
    ("::fffe:ffff:ffff", "other"), ("::ffff:0:0", "ipv4_mapped"),
    ("::ffff:255.255.255.255", "ipv4_mapped"), ("::1:0:0:0", "other"),
    ("64:ff9b::", "nat64_wkp"), ("64:ff9b::255.255.255.255", "nat64_wkp"),
    ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "other"), ("64:ff9b::1:0:0", "other"),
    ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "other"), ("64:ff9b:1::", "nat64_local"),
    ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "nat64_local"), ("64:ff9b:2::", "other"),
    ("2001::", "teredo"), ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "teredo"),
    ("2001:1::", "global_unicast"), ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "global_unicast"),
    ("2001:db8::", "documentation"), ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
    ("2001:db9::", "global_unicast"), ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "global_unicast"),
    ("3fff::", "documentation"), ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
    ("3fff:1000::", "global_unicast"),
    ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "global_unicast"),
    ("2002::", "6to4"), ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"),
    ("2003::", "global_unicast"), ("2000::", "global_unicast"),
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "other"), ("4000::", "other"),
    ("fe80::", "link_local"), ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link_local"),
    ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "other"), ("fec0::", "other"),
    ("fc00::", "unique_local"), ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique_local"),
    ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "other"), ("fe00::", "other"),
    ("ff00::", "multicast"), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
    ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "other"),
)

_A6, _B6 = "2001:db8::1", "2001:db8::2"


def _eth(ethertype: int, payload: bytes) -> bytes:
    return bytes.fromhex("020000000002" "020000000001") + struct.pack("!H", ethertype) + payload


def _ip6(nh: int, payload: bytes, src: str = _A6, dst: str = _B6) -> bytes:
    return (struct.pack("!IHBB", 0x60000000, len(payload), nh, 64)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload)


def _ip4(proto: int, payload: bytes, frag: int = 0) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0,
                       bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])) + payload


def _udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 8192, 0, 0)


def _ext(nh: int, body: bytes = b"\x01\x04\0\0\0\0") -> bytes:
    """Hop-by-Hop / Destination Options: next header, length, a PadN."""
    return bytes([nh, 0]) + body


def _frag(nh: int, offset: int, more: int) -> bytes:
    return struct.pack("!BBHI", nh, 0, (offset << 3) | more, 7)


def _built_frames() -> list[tuple[bytes, dict]]:
    """(Ethernet frame, what REPORT.md says of it) for the built capture."""
    v6, v4 = 0x86DD, 0x0800
    out = []
    edges = list(CLASS_EDGES)
    for (a, ca), (b, cb) in zip(edges[0::2], edges[1::2]):
        out.append((_eth(v6, _ip6(17, _udp(40000, 40001), a, b)),
                    {"transport": "udp", "ports": (40000, 40001), "classes": (ca, cb)}))
    six = {"payload": "ipv6", "classes": ("documentation", "documentation")}
    four = {"payload": "ipv4", "classes": ()}
    echo6 = bytes([128, 0, 0, 0, 0, 1, 0, 1])
    quote6 = _ip6(17, _udp(40002, 40003), _B6, _A6)
    frames6 = [
        (_ip6(6, _tcp(40010, 40011)), "tcp", (40010, 40011)),
        (_ip6(17, _udp(40012, 40013, b"x")), "udp", (40012, 40013)),
        (_ip6(58, echo6), "icmpv6", None),
        (_ip6(59, b""), "no_next_header", None),
        (_ip6(132, bytes(16)), "other", None),                      # SCTP
        (_ip6(0, _ext(60) + _ext(17) + _udp(40014, 40015)), "udp", (40014, 40015)),
        (_ip6(44, _frag(17, 0, 1) + _udp(40016, 40017, bytes(8))), "udp", (40016, 40017)),
        (_ip6(44, _frag(6, 8, 0) + bytes(16)), "tcp", None),        # non-first fragment
        (_ip6(50, struct.pack("!II", 0x1000, 1) + bytes(16)), "other", None),   # ESP
        (_ip6(6, _tcp(40018, 40019)[:2]), "tcp", None),             # 2 bytes of TCP
        # an ICMPv6 error quoting a UDP datagram: not the frame's ports
        (_ip6(58, bytes([1, 4, 0, 0, 0, 0, 0, 0]) + quote6), "icmpv6", None),
    ]
    for pkt, transport, ports in frames6:
        out.append((_eth(v6, pkt), {**six, "transport": transport, "ports": ports}))
    frames4 = [
        (_ip4(6, _tcp(40020, 40021)), "tcp", (40020, 40021)),
        (_ip4(17, _udp(40022, 40023)), "udp", (40022, 40023)),
        (_ip4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])), "icmp", None),
        (_ip4(132, bytes(16)), "other", None),
        (_ip4(17, bytes(16), frag=2), "udp", None),                 # non-first fragment
        (_ip4(1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + _ip4(17, _udp(40024, 40025))),
         "icmp", None),                                              # error quote
    ]
    for pkt, transport, ports in frames4:
        out.append((_eth(v4, pkt), {**four, "transport": transport, "ports": ports}))
    # the innermost header of a tunnel, not the outer one
    out += [
        (_eth(v4, _ip4(41, _ip6(6, _tcp(40030, 40031), "2001:db8::5", "64:ff9b::c000:201"))),
         {"tunnel": "6in4", "payload": "ipv6", "transport": "tcp", "ports": (40030, 40031),
          "classes": ("documentation", "nat64_wkp")}),
        (_eth(v6, _ip6(4, _ip4(17, _udp(40032, 40033)), "2002::1", "fe80::1")),
         {"tunnel": "4in6", "payload": "ipv4", "transport": "udp", "ports": (40032, 40033),
          "classes": ()}),
        (_eth(v4, _ip4(17, _udp(40034, 3544, _ip6(17, _udp(40035, 40036),
                                                  "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                                                  "ff02::1")))),
         {"tunnel": "teredo", "payload": "ipv6", "transport": "udp", "ports": (40035, 40036),
          "classes": ("teredo", "multicast")}),
        (_eth(v6, _ip6(41, _ip6(59, b"", "::ffff:192.0.2.1", "64:ff9b:1::1"),
                       "fe80::1", "fe80::2")),
         {"tunnel": "6in6", "payload": "ipv6", "transport": "no_next_header", "ports": None,
          "classes": ("ipv4_mapped", "nat64_local")}),
    ]
    return out


def _pcap(frames: list[bytes]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n, data in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + n, 0, len(data), len(data)) + data)
    return b"".join(out)


def test_built_capture_matches_tshark(tmp_path_factory, tshark_cache):
    """The built capture: each frame is what it was built to be in tshark's
    eyes (through the oracle), and the decoder agrees frame by frame. It
    covers every address class and transport key (else it proves less)."""
    built = _built_frames()
    path = tmp_path_factory.mktemp("built") / "classes-and-transports.pcap"
    path.write_bytes(_pcap([data for data, _ in built]))
    exp = oracle.tshark_frames(str(path), tshark_cache)
    assert len(exp) == len(built)
    assert {c for e in exp for c in e["classes"]} == set(oracle.ADDRESS_CLASS_NAMES)
    assert {(e["payload"], e["transport"]) for e in exp} == set(ALL_TRANSPORTS)
    wrong = [f"frame {e['frame']} {k}: built {v!r}, tshark {e[k]!r} ({e['protocols']})"
             for e, (_, want) in zip(exp, built) for k, v in want.items() if e[k] != v]
    wrong += [f"frame {e['frame']}: {n}" for e in exp for n in e["notes"]
              if oracle.is_disagreement(n)]
    assert not wrong, "the oracle does not read the built capture as built:\n  " + \
        "\n  ".join(wrong)
    count, problems = mismatches(exp, decode_capture(str(path)))
    if problems:
        pytest.fail(f"built capture: {count} mismatches\n  " + "\n  ".join(problems),
                    pytrace=False)
