"""NAT64/DNS64 detection against scenarios whose truth was written by
construction (samples/nat64/generate.py), and against the real captures."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ipv6flow.options import Options
from ipv6flow.analysis import dnsmsg, rfc6052
from ipv6flow.analysis.rfc6052 import parse_nat64_prefix
from ipv6flow.engine.local import analyze_paths

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "samples" / "nat64"
from conftest import CAPTURES, SAMPLES, need_tool  # noqa: E402  (../shared/captures)
SCENARIOS = sorted(p.name[:-len(".truth.json")] for p in SCEN.glob("*.truth.json"))
# Real captures that do carry NAT64 (IPv6-only clients through 64:ff9b::/96,
# a PREF64 Router Advertisement); every other one must show no suspect.
REAL_NAT64 = {"nDPI/reddit.pcap", "nDPI/tumblr.pcap", "nDPI/pinterest.pcap",
              "tcpdump/icmpv6-ra-pref64.pcap"}


def suspects(rep):
    """The contract's fields of each suspect (the mergeable sketches aside)."""
    return [{k: v for k, v in sp.items() if k != "distinct"} for sp in rep["nat64"]["suspects"]]


def run(path, decoder, configured=(), services=False):
    s = analyze_paths([str(path)], Options(
        decoder=decoder, nat64_prefixes=tuple(parse_nat64_prefix(p) for p in configured),
        dns_suffixes=() if services else None)).summary
    rep = s.to_report()
    return rep, (s.nat64.name_answers() if services else None)


@pytest.mark.parametrize("decoder", ["fast", "reference"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_suspects_match_truth(name, decoder):
    truth = json.loads((SCEN / f"{name}.truth.json").read_text())
    rep, _ = run(SCEN / f"{name}.pcap", decoder, truth["options"]["nat64_prefix"])
    assert suspects(rep) == truth["nat64"]["suspects"]
    assert rep["nat64"]["dns64"] == truth["nat64"]["dns64"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_services_match_truth(name):
    truth = json.loads((SCEN / f"{name}.truth.json").read_text())
    _, services = run(SCEN / f"{name}.pcap", "fast", truth["options"]["nat64_prefix"], True)
    assert services == truth["services"]


def test_fixture_scenarios_cover_every_rfc6052_length():
    # checks the scenarios' truth files (fixture data), not the analyzer

    lengths = set()
    for name in SCENARIOS:
        truth = json.loads((SCEN / f"{name}.truth.json").read_text())
        for sp in truth["nat64"]["suspects"]:
            ev = set(sp["evidence"])
            if ev & {"rfc7050", "dns64"}:
                lengths.add((sp["prefix"].split("/")[1], tuple(sorted(ev & {"rfc7050", "dns64"}))))
    for L in ("32", "40", "48", "56", "64", "96"):
        assert (L, ("rfc7050",)) in lengths and (L, ("dns64",)) in lengths


CAPTURE_FILES = sorted(str(p.relative_to(CAPTURES)) for p in CAPTURES.rglob("*")
                       if p.is_file() and p.suffix not in (".tsv", ".md"))


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_no_suspect_on_real_captures_without_nat64(name):
    rep, _ = run(CAPTURES / name, "fast")
    prefixes = [(s["prefix"], s["evidence"]) for s in rep["nat64"]["suspects"]]
    if name in REAL_NAT64:
        assert prefixes
    else:
        assert prefixes == [] and rep["nat64"]["dns64"]["synthesized_answers"] == 0


PLC_LENGTH = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}        # RFC 8781 section 4


def _tshark_nat64_truth(path):
    """What tshark sees of NAT64 in a capture, independently of ipv6flow:
    the traffic to or from 64:ff9b::/96 (frames, bytes, the IPv6 peers as
    clients, the embedded IPv4 addresses as destinations) and the PREF64
    prefixes of Router Advertisements."""
    import ipaddress
    import subprocess
    tshark = need_tool("tshark", "Debian package tshark")
    fields = subprocess.run(
        [tshark, "-r", str(path), "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
         "-Y", "ipv6.addr == 64:ff9b::/96", "-T", "fields", "-e", "frame.len",
         "-e", "ipv6.src", "-e", "ipv6.dst"], capture_output=True, text=True, check=True).stdout
    wkp = ipaddress.ip_network("64:ff9b::/96")
    packets = nbytes = 0
    clients, dests = set(), set()
    for line in fields.splitlines():
        length, src, dst = line.split("\t")
        src, dst = (ipaddress.ip_address(a.split(",")[-1]) for a in (src, dst))
        packets += 1
        nbytes += int(length)
        for a, other in ((src, dst), (dst, src)):
            if a in wkp:
                dests.add(int(a) & 0xFFFFFFFF)
                clients.add(other)
    pref64 = subprocess.run(
        [tshark, "-r", str(path), "-Y", "icmpv6.opt.pref64.prefix", "-T", "fields",
         "-e", "icmpv6.opt.pref64.prefix", "-e", "icmpv6.opt.pref64.plc"],
        capture_output=True, text=True, check=True).stdout
    prefixes = set()
    for line in pref64.splitlines():
        prefix, plc = line.split("\t")
        if prefix:
            prefixes.add(f"{prefix}/{PLC_LENGTH[int(plc, 16)]}")
    return packets, nbytes, len(clients), len(dests), prefixes


@pytest.mark.usefixtures("corpus")
@pytest.mark.parametrize("name", sorted(REAL_NAT64))
def test_real_nat64_captures_against_tshark(name):
    # every figure of every suspect on the four real NAT64 captures, from
    # tshark's dissection: the well-known prefix's traffic, and the PREF64
    # prefixes an RA announced (with no traffic)
    packets, nbytes, clients, dests, prefixes = _tshark_nat64_truth(CAPTURES / name)
    for decoder in ("fast", "reference"):
        rep, _ = run(CAPTURES / name, decoder)
        want = []
        if packets:
            want.append({"prefix": "64:ff9b::/96", "kind": "well-known", "evidence": ["traffic"],
                         "packets": packets, "bytes": nbytes, "ipv6_clients": clients,
                         "ipv4_destinations": dests})
        want += [{"prefix": p, "kind": "network-specific", "evidence": ["pref64"],
                  "packets": 0, "bytes": 0, "ipv6_clients": 0, "ipv4_destinations": 0}
                 for p in sorted(prefixes)]
        assert suspects(rep) == want and want, decoder


def test_real_nat64_client_capture_figures():
    rep, _ = run(CAPTURES / "nDPI/reddit.pcap", "fast")
    (sp,) = suspects(rep)
    assert sp == {"prefix": "64:ff9b::/96", "kind": "well-known", "evidence": ["traffic"],
                  "packets": 903, "bytes": 328228, "ipv6_clients": 1, "ipv4_destinations": 12}


def test_rfc6052_positions_round_trip():
    v4 = bytes([192, 0, 2, 33])
    # RFC 6052 section 2.4 examples, prefix 2001:db8::/L (L = 32 ... 96)
    examples = {32: "2001:db8:c000:221::", 40: "2001:db8:1c0:2:21::", 48: "2001:db8:122:c000:2:2100::",
                56: "2001:db8:122:3c0:0:221::", 64: "2001:db8:122:344:c0:2:2100:0",
                96: "2001:db8:122:344::192.0.2.33"}
    import ipaddress
    for L, text in examples.items():
        a = ipaddress.IPv6Address(text).packed
        assert rfc6052.extract(a, L) == v4
        assert rfc6052.embedding_length(a, v4) == L


def test_bad_nat64_prefix_length_is_refused():
    with pytest.raises(ValueError, match="/32, /40, /48, /56, /64 or /96"):
        parse_nat64_prefix("2001:db8::/80")


@pytest.mark.parametrize("msg", [
    b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\xc0\x0c" + b"\x00\x01\x00\x01",  # pointer to itself
    b"\x00\x01\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00" + b"\x01a\x00\x00\x01\x00\x01",          # lying ancount
    b"\x00\x01\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3fab",                           # label past the end
])
def test_malformed_dns_raises_only_dns_error(msg):
    with pytest.raises(dnsmsg.DnsError):
        dnsmsg.parse(msg)


@pytest.mark.parametrize("name", ["nsp-dns64-48", "wkp", "not-nat64", "malformed-dns"])
def test_service_traffic_fast_equals_reference(name):
    out = {}
    for d in ("fast", "reference"):
        s = analyze_paths([str(SCEN / f"{name}.pcap")], Options(decoder=d, dns_suffixes=())).summary
        out[d] = s.to_report()["services"]
    assert out["fast"] == out["reference"]
    assert sum(n["traffic"][r]["packets"] for n in out["fast"]["names"]
               for r in ("ipv4", "ipv6_native", "nat64")) > 0


def test_service_traffic_figures():
    s = analyze_paths([str(SCEN / "nsp-dns64-48.pcap")], Options(dns_suffixes=())).summary
    names = {n["name"]: n for n in s.to_report()["services"]["names"]}
    # synthesized names are reached through the NAT64 prefix, by construction
    nat64_total = sum(n["traffic"]["nat64"]["packets"] for n in names.values())
    truth = json.loads((SCEN / "nsp-dns64-48.truth.json").read_text())
    assert nat64_total <= truth["nat64"]["suspects"][0]["packets"]
    assert names["api.example.com"]["traffic"]["nat64"]["packets"] > 0
    assert names["legacy.example.org"]["verdict"] == "ipv4-only"


def test_dns_command_json_csv_and_schema(tmp_path):
    import subprocess
    import sys
    import jsonschema
    p = str(SCEN / "nsp-dns64-48.pcap")
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "dns", "--format", "csv",
                        "--domain-suffix", "example.org", p], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("name,verdict,a,")
    assert all(line.split(",")[0].endswith("example.org") for line in lines[1:]) and len(lines) > 2
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                        "--dns-report", p], capture_output=True, text=True)
    rep = json.loads(r.stdout)
    schema = json.loads((ROOT / "ipv6flow" / "schema" / "report.schema.json").read_text())
    jsonschema.validate(rep, schema)
    assert rep["services"]["summary"]["names"] == len(rep["services"]["names"]) > 0


def test_csv_cells_cannot_be_formulas():
    from ipv6flow.report.services import cell
    assert cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert cell("+1") == "'+1" and cell("-1") == "'-1" and cell("@x") == "'@x"
    assert cell("www.example.org") == "www.example.org"


def _split_pcap(src: Path, at: int, out_a: Path, out_b: Path):
    """Write records [0, at) and [at, end) of a classic pcap to two files."""
    raw = src.read_bytes()
    head, off, n = raw[:24], 24, 0
    parts = [bytearray(head), bytearray(head)]
    while off + 16 <= len(raw):
        caplen = int.from_bytes(raw[off + 8:off + 12], "little")
        parts[n >= at] += raw[off:off + 16 + caplen]
        off += 16 + caplen
        n += 1
    out_a.write_bytes(parts[0])
    out_b.write_bytes(parts[1])
    return n


@pytest.mark.parametrize("decoder", ["fast", "reference"])
@pytest.mark.parametrize("name", ["nsp-rfc7050-56", "nsp-dns64-40", "pref64"])
def test_discovery_in_a_later_file_counts_earlier_files(tmp_path, name, decoder):
    """Traffic in file A, the evidence in file B: the combined report equals
    the report of the whole capture."""
    truth = json.loads((SCEN / f"{name}.truth.json").read_text())
    src = SCEN / f"{name}.pcap"
    total = len(truth["frames"])
    for at in (total // 4, total // 2, 3 * total // 4):
        a, b = tmp_path / f"a{at}.pcap", tmp_path / f"b{at}.pcap"
        assert _split_pcap(src, at, a, b) == total
        s = analyze_paths([str(a), str(b)], Options(decoder=decoder)).summary
        assert suspects(s.to_report()) == truth["nat64"]["suspects"], at


def test_stdin_is_read_twice_through_a_spool():
    import subprocess
    import sys
    truth = json.loads((SCEN / "nsp-rfc7050-48.truth.json").read_text())
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json", "-"],
                       input=(SCEN / "nsp-rfc7050-48.pcap").read_bytes(), capture_output=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["inputs"][0]["path"] == "-"
    assert suspects(rep) == truth["nat64"]["suspects"]


@pytest.mark.parametrize("count,block", [(100, 4096), (4096, 4096), (4097, 4096),
                                         (9000, 4096), (9000, 64)])
def test_traffic_batch_equals_frame_by_frame(count, block, monkeypatch):
    # the fast path hands a batch's address rows to add(); the reference
    # adds one frame at a time (held, hashed in blocks): same set below the
    # threshold, same registers past it, whatever the chunking
    import numpy as np
    from ipv6flow.analysis.nat64 import Traffic
    monkeypatch.setattr(Traffic, "BLOCK", block)
    six = [(0x2001_0db8 << 96 | i).to_bytes(16, "big") for i in range(count)]
    four = [(0x0a00_0000 + i).to_bytes(4, "big") for i in range(count)]
    six += six[: count // 3]                          # repeats
    four += four[: count // 3]
    one, bulk = Traffic(), Traffic()
    for a, b in zip(six, four):
        one.add_frame(a, [b])
    for k in range(0, len(six), 777):
        bulk.add(np.frombuffer(b"".join(six[k:k + 777]), np.uint8).reshape(-1, 16),
                 np.frombuffer(b"".join(four[k:k + 777]), np.uint8).reshape(-1, 4))
    one.settle()
    assert one.clients.exact == bulk.clients.exact == (count <= 4096)
    assert one.distinct() == bulk.distinct()
    for s in (bulk.clients, bulk.v4):
        assert len(s) == count if s.exact else abs(len(s) - count) < 0.05 * count


# -- DNS messages grouped in C (_core.dns_groups) ---------------------------

def _need_dns_groups():
    from ipv6flow.analysis import nat64
    from conftest import need_core
    if nat64.BUILT_DNS_GROUPS is None:
        need_core()
        pytest.skip("the compiled DNS grouping is not built")
    return nat64.BUILT_DNS_GROUPS


def _python_groups(buf, spans):
    """The groups of messages ``spans`` ((start, stop, src, src_end)) alike
    but for their ID, as dns_groups gives them: the first of each, in
    order, with its count."""
    seen = {}
    for a, b, c, d in spans:
        key = (bytes(buf[min(a + 2, b):b]), bytes(buf[c:d]))
        if key in seen:
            seen[key][4] += 1
        else:
            seen[key] = [a, b, c, d, 1]
    return [tuple(g) for g in seen.values()]


def _spans_arrays(spans):
    return [np.array([s[k] for s in spans], dtype=np.int64) for k in range(4)]


def _group(groups, buf, spans, tcp=None, keep_all=True, answerless=False, room=None):
    """_core.dns_groups over segments ``spans`` ((start, stop, src,
    src_end), UDP unless ``tcp``): its groups as _python_groups, or -1."""
    start, stop, src, src_end = _spans_arrays(spans) if spans else [np.zeros(0, np.int64)] * 4
    tcp = np.zeros(len(spans), np.uint8) if tcp is None else np.array(tcp, np.uint8)
    out = np.empty((5, 2 * len(spans) + 64 if room is None else room), dtype=np.int64)
    g = groups(buf, start, stop, tcp, src, src_end, keep_all, answerless, dnsmsg.MAX_RECORDS,
               out.reshape(-1))
    return g if g < 0 else [tuple(r) for r in out[:, :g].T.tolist()]


def test_dns_groups_match_by_bytes_not_by_id():
    groups = _need_dns_groups()
    msg = bytes.fromhex("1234818000010001000000000377777706676f6f676c6503636f6d0000010001")
    other_id = b"\xab\xcd" + msg[2:]
    one_bit = msg[:-1] + b"\x02"
    buf = msg + other_id + one_bit + msg + b"\x20\x01\x0d\xb8" + b"\x20\x01\x0d\xb9" + b"\x00"
    n = len(msg)
    r1, r2 = 4 * n, 4 * n + 4
    spans = [(0, n, r1, r1 + 4), (n, 2 * n, r1, r1 + 4), (2 * n, 3 * n, r1, r1 + 4),
             (3 * n, 4 * n, r2, r2 + 4), (0, n, r1, r1 + 4), (0, 1, r1, r1 + 4),
             (n, n + 1, r1, r1 + 4), (5, 5, r1, r1)]
    got = _group(groups, buf, spans)
    assert got == _python_groups(buf, spans) == [
        spans[0] + (3,), spans[2] + (1,), spans[3] + (1,), spans[5] + (2,), spans[7] + (1,)]
    # only the responses with answers (the QR bit, ANCOUNT): the first five
    # spans; answerless ones too with ``answerless``
    noans = msg[:6] + b"\0\0" + msg[8:]
    query = msg[:2] + b"\x01" + msg[3:]
    buf2 = buf + noans + query
    extra = [(len(buf), len(buf) + n, r1, r1 + 4), (len(buf) + n, len(buf) + 2 * n, r1, r1 + 4)]
    assert _group(groups, buf2, spans + extra, keep_all=False) == [
        spans[0] + (3,), spans[2] + (1,), spans[3] + (1,)]
    assert _group(groups, buf2, spans + extra, keep_all=False, answerless=True) == [
        spans[0] + (3,), spans[2] + (1,), spans[3] + (1,), extra[0] + (1,)]
    # a TCP segment: its length-prefixed messages, each a message of its own
    tcp_buf = buf + len(msg).to_bytes(2, "big") + other_id + len(msg).to_bytes(2, "big") + msg
    seg = (len(buf), len(tcp_buf), r1, r1 + 4)
    assert _group(groups, tcp_buf, [spans[0], seg], tcp=[0, 1]) == [spans[0] + (3,)]
    assert _group(groups, tcp_buf, [seg, spans[0]], tcp=[1, 0]) == [
        (len(buf) + 2, len(buf) + 2 + n, r1, r1 + 4, 3)]
    # more messages than room: -1, the caller's per-message path
    assert _group(groups, tcp_buf, [spans[0], seg], tcp=[0, 1], room=2) == -1
    # a span outside the buffer: -1
    for bad in [(0, len(buf) + 1, r1, r1 + 4), (-1, 4, r1, r1 + 4), (4, 3, r1, r1 + 4),
                (0, n, r1, len(buf) + 2)]:
        assert _group(groups, buf, [bad]) == -1


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_dns_groups_equal_python_grouping(data):
    groups = _need_dns_groups()
    # a small alphabet: many spans are equal, many differ in one byte
    buf = data.draw(st.binary(min_size=1, max_size=200).map(lambda b: bytes(x & 3 for x in b)))
    span = st.tuples(st.integers(0, len(buf)), st.integers(0, 40)).map(
        lambda t: (t[0], min(len(buf), t[0] + t[1])))
    spans = [a + b for a, b in data.draw(st.lists(st.tuples(span, span), max_size=60))]
    assert _group(groups, buf, spans) == _python_groups(buf, spans)


# DNS-like messages: few IDs and bodies (many alike), responses with and
# without answers, queries, and shorter than a header
_MESSAGE = st.one_of(
    st.tuples(st.sampled_from([b"\x00\x01", b"\x99\x98"]), st.sampled_from([0x81, 0x01]),
              st.sampled_from([b"\0\0", b"\0\1", b"\1\0"]),
              st.binary(max_size=6).map(lambda b: bytes(x & 1 for x in b))).map(
        lambda t: t[0] + bytes([t[1], 0x80, 0, 1]) + t[2] + b"\0\0\0\0" + t[3]),
    st.binary(max_size=11))


@st.composite
def _dns_segments(draw):
    """A buffer of UDP payloads and TCP segments (length-prefixed messages,
    a wrong or zero length now and then) and their senders: what
    ``observe_dns_segments`` takes."""
    buf, segs = bytearray(), []
    senders = [bytes([10, 0, 0, 1]), bytes(15) + b"\x01", bytes([10, 0, 0, 2])]
    for _ in range(draw(st.integers(0, 12))):
        src = len(buf)
        sender = draw(st.sampled_from(senders))
        buf += sender
        tcp = draw(st.booleans())
        start = len(buf)
        if tcp:
            for msg in draw(st.lists(_MESSAGE, max_size=4)):
                ln = draw(st.sampled_from([len(msg)] * 4 + [0, len(msg) + 1]))
                buf += ln.to_bytes(2, "big") + msg
            buf += draw(st.binary(max_size=2))
        else:
            buf += draw(_MESSAGE)
        segs.append((start, len(buf), tcp, src, src + len(sender)))
    return bytes(buf), segs


@settings(max_examples=300, deadline=None)
@given(seg=_dns_segments(), want_queries=st.booleans(), want_answerless=st.booleans(),
       repeat=st.integers(1, 3))
def test_dns_groups_split_and_filter_as_message_by_message(seg, want_queries, want_answerless,
                                                           repeat):
    """The grouped path (TCP segments split and every message filtered in
    C) leaves ``_pending`` as the per-message path: the same messages, in
    the same order, with the same counts."""
    from ipv6flow.analysis import nat64
    _need_dns_groups()
    buf, segs = seg
    segs = segs * repeat
    arrays = [np.array([s[k] for s in segs], dtype=bool if k == 2 else np.int64)
              for k in range(5)]
    pendings = []
    for grouped in (nat64.BUILT_DNS_GROUPS, None):
        saved, nat64._dns_groups = nat64._dns_groups, grouped
        try:
            st_ = nat64.Nat64State()
            st_.want_queries, st_.want_answerless = want_queries, want_answerless
            st_.observe_dns_segments(buf, *arrays)
            pendings.append((list(st_._pending.items()), st_._pending_bytes))
        finally:
            nat64._dns_groups = saved
    assert pendings[0] == pendings[1]


@pytest.mark.parametrize("max_pending", [3, 50000])
def test_grouped_dns_evidence_equals_message_by_message(max_pending, monkeypatch):
    """The grouped path leaves the DNS state exactly as the per-message path
    (the pending messages, their order and counts, and after the flushes
    every answer), also when the pending table would fill within a batch
    (it then takes the per-message path)."""
    import numpy as np
    from ipv6flow.analysis import nat64
    from ipv6flow.capture import open_capture
    from ipv6flow.decode import DecodeOptions
    from ipv6flow.fast import decode_batch, dns_segments
    _need_dns_groups()
    monkeypatch.setattr(nat64, "MAX_PENDING", max_pending)
    states = {}
    for grouped in (True, False):
        monkeypatch.setattr(nat64, "_dns_groups", nat64.BUILT_DNS_GROUPS if grouped else None)
        st_ = nat64.Nat64State()
        st_.want_answerless = True
        pendings = []
        for name in ("nat64/nsp-dns64-64.pcap", "mixed.pcap"):
            with open_capture(str(SAMPLES / name)) as cap:
                for batch in cap.iter_batches():
                    d = decode_batch(batch, DecodeOptions())
                    segs = dns_segments(d, d.ip_rows())
                    # the same messages several times over, as a busy resolver's
                    segs = tuple(np.concatenate((a, a, a)) for a in segs)
                    st_.observe_dns_segments(batch.buffer, *segs)
                    pendings.append(list(st_._pending.items()))
        st_._flush()
        states[grouped] = (pendings, st_.a, st_.aaaa, st_.queried, st_.responded,
                           st_.malformed, st_.discovered())
    assert states[True] == states[False]
    assert any(states[True][0]) or max_pending == 3
    assert states[True][1] and states[True][2]       # answers were seen


# -- DNS messages parsed in C (_core.dns_parse) ------------------------------

def _need_dns_parse():
    from conftest import need_core
    if dnsmsg.BUILT_PARSE is None:
        need_core()
        pytest.skip("the compiled DNS parser is not built")
    return dnsmsg.BUILT_PARSE


def _python_parse(msg):
    try:
        return dnsmsg.parse(msg)
    except dnsmsg.DnsError:
        return None


def test_dns_parse_lowers_and_escapes_every_byte_as_python():
    """Every byte value in a label (ASCII and latin-1 capitals lowered as
    str.lower lowers them, dots and backslashes escaped), in the question,
    an owner reached by a pointer and a CNAME target: the compiled parser
    gives what dnsmsg.parse gives, and that is the expected text."""
    parse = _need_dns_parse()
    for first in range(1, 256, 8):
        label = bytes(range(first, min(first + 8, 256)))
        name = bytes([len(label)]) + label + b"\x03Ab\xc9\0"
        msg = (b"\x00\x01\x81\x80\x00\x01\x00\x02\0\0\0\0" + name + b"\x00\x05\x00\x01"
               + b"\xc0\x0c\x00\x05\x00\x01\0\0\0\x3c" + len(name).to_bytes(2, "big") + name
               + b"\xc0\x0c\x00\x01\x00\x01\0\0\0\x3c\x00\x04\xc0\x00\x02\x01")
        got = parse(msg)
        assert got == _python_parse(msg)
        text = label.decode("latin-1").lower().replace("\\", "\\\\").replace(".", "\\.") + ".ab\xe9"
        assert got == (True, text, 5, 0, [(text, 5, text), (text, 1, b"\xc0\x00\x02\x01")])
    # names of 255 octets and of 256 (malformed), and as many records as
    # parse reads and one more
    for last in (62, 63):
        name = (b"\x3f" + b"a" * 63) * 3 + bytes([last]) + b"b" * last + b"\0"
        msg = b"\x00\x01\x81\x80\x00\x01\0\0\0\0\0\0" + name + b"\x00\x01\x00\x01"
        assert parse(msg) == _python_parse(msg) and (parse(msg) is None) == (last == 63)
    for count in (dnsmsg.MAX_RECORDS, dnsmsg.MAX_RECORDS + 1):
        msg = (b"\x00\x01\x81\x80\x00\x00" + count.to_bytes(2, "big") + b"\0\0\0\0"
               + b"\x01a\0\x00\x01\x00\x01\0\0\0\x3c\x00\x04abcd" * dnsmsg.MAX_RECORDS)
        assert parse(msg) == _python_parse(msg) and len(parse(msg)[4]) == dnsmsg.MAX_RECORDS


# DNS messages made up: names of labels of any bytes (capitals, dots,
# backslashes, latin-1) or pointers, well-formed records of the types and
# classes parse reads, then cut anywhere or one byte changed to a length,
# pointer or type byte
_LABEL = st.binary(min_size=1, max_size=6).map(lambda b: bytes([len(b)]) + b)
_NAME = st.tuples(st.lists(_LABEL, max_size=3), st.sampled_from([b"\0", b"\xc0\x0c", b"\xc0\x0d",
                                                                 b"\xc0\xff", b""])).map(
    lambda t: b"".join(t[0]) + t[1])
_RECORD = st.tuples(st.sampled_from([b"\xc0\x0c", b"\x01a\0", b"\xc0"]),
                    st.sampled_from([1, 5, 28, 2]), st.sampled_from([1, 3]),
                    st.one_of(st.sampled_from([b"", b"\x01\x02\x03\x04", bytes(16), b"\x01a\0",
                                               b"\xc0\x0c", b"\x05ab"]), _NAME)).map(
    lambda t: t[0] + t[1].to_bytes(2, "big") + t[2].to_bytes(2, "big") + b"\0\0\0\x3c"
    + len(t[3]).to_bytes(2, "big") + t[3])


@settings(max_examples=int(os.environ.get("IPV6FLOW_HYPOTHESIS_EXAMPLES", 300)), deadline=None)
@given(flags=st.sampled_from([0x81, 0x01, 0x80]), names=st.lists(_NAME, max_size=2),
       qd=st.sampled_from([0, 0, 0, 1, -1]), an=st.sampled_from([0, 0, 0, 1, -1, -2]),
       records=st.lists(_RECORD, max_size=4),
       tail=st.sampled_from([b"", b"\0", b"\xc0"]), cut=st.integers(0, 200),
       change=st.tuples(st.integers(0, 200), st.sampled_from([0, 1, 4, 0x3F, 0x40, 0xC0, 0x0C,
                                                              0x1C, 0x2E, 0x5C])))
def test_dns_parse_compiled_equals_python_on_any_bytes(flags, names, qd, an, records, tail, cut,
                                                       change):
    """The compiled parser and dnsmsg.parse agree on any message."""
    parse = _need_dns_parse()
    # the counts mostly those of the sections (off by one or two now and then)
    qd, an = max(0, len(names) + qd), max(0, len(records) + an)
    msg = bytes([0x12, 0x34, flags, 0x80, 0, qd, 0, an, 0, 0, 0, 0])
    msg += b"".join(name + b"\x00\x01\x00\x01" for name in names) + b"".join(records) + tail
    at, value = change
    changed = msg[:at] + bytes([value]) + msg[at + 1:] if at < len(msg) else msg
    for m in (msg, msg[:cut], changed):
        assert parse(m) == _python_parse(m)


def _dns_answer(name: str, answers) -> bytes:
    """A DNS response to ``name`` (A) whose answers are ``(type, rdata)``
    records owned by the question's name."""
    qname = b"".join(bytes([len(x)]) + x for x in name.encode().split(b".")) + b"\0"
    out = b"\x00\x01\x81\x80\x00\x01" + len(answers).to_bytes(2, "big") + b"\0\0\0\0"
    out += qname + b"\x00\x01\x00\x01"
    for rtype, rdata in answers:
        out += b"\xc0\x0c" + rtype.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x3c"
        out += len(rdata).to_bytes(2, "big") + rdata
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_repeated_responses_equal_applying_each_in_full(data):
    """A response applied in full once is applied again by adding to the
    counters it touched (``Nat64State._applied``), and those additions may
    wait (``_deferred``) until a count is read: the state equals
    applying every response from scratch, across flushes, at every cap
    (names, addresses per name, resolvers per address) and with DNS64
    and RFC 7050 evidence."""
    from ipv6flow.analysis import nat64
    names = ["a.example", "b.example", "c.example", nat64.IPV4ONLY]
    v4 = [bytes([192, 0, 2, i]) for i in (1, 2, 3)] + list(nat64.WELL_KNOWN_V4)
    prefix = bytes.fromhex("0064ff9b0000000000000000")
    v6 = [prefix + a for a in v4] + [bytes.fromhex("20010db8") + bytes(11) + b"\x07"]
    record = st.one_of(st.sampled_from(v4).map(lambda r: (1, r)),
                       st.sampled_from(v6).map(lambda r: (28, r)))
    pool = [_dns_answer(data.draw(st.sampled_from(names)), data.draw(st.lists(record, max_size=4)))
            for _ in range(data.draw(st.integers(1, 6)))]
    steps = data.draw(st.lists(st.tuples(st.integers(0, len(pool) - 1), st.integers(0, 2),
                                         st.sampled_from([None, "flush", "discovered"])),
                               min_size=1, max_size=40))
    # (MAX_PENDING also caps the counts waiting in _deferred)
    caps = {"MAX_NAMES": data.draw(st.integers(1, 5)), "MAX_PER_NAME": data.draw(st.integers(1, 4)),
            "MAX_PENDING": data.draw(st.sampled_from([1, 2, 3, 50000]))}

    class Forget(dict):
        def __setitem__(self, key, value):
            pass

    states = []
    for memo in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            for k, v in caps.items():
                mp.setattr(nat64, k, v)
            s = nat64.Nat64State()
            if not memo:
                s._applied = Forget()
            for i, resolver, flush in steps:
                s.observe_dns(pool[i], bytes([10, 0, 0, resolver]))
                if flush == "flush":
                    s._flush()
                elif flush == "discovered":       # the engine's, after every batch
                    s.discovered()
            found = s.discovered()
            dns64 = s.dns64()             # a reader of counts: what waits is added first
            states.append((s.a, s.aaaa, s.names_dropped, s.queried, s.responded,
                           s.dns64_prefixes, s.rfc7050, found, dns64))
    assert states[0] == states[1]


def test_waiting_counts_past_their_cap_are_added(monkeypatch):
    """Counts of repeated responses wait (``_deferred``) up to MAX_PENDING
    messages; one more adds those and waits itself: every response seen is
    counted, by construction."""
    from ipv6flow.analysis import nat64
    monkeypatch.setattr(nat64, "MAX_PENDING", 2)
    s = nat64.Nat64State()
    seen = {}
    for rounds in ([1, 2], [1, 2], [3], [3], [1, 2, 3], [3]):
        for i in rounds:
            s.observe_dns(_dns_answer(f"n{i}.example", [(1, bytes([192, 0, 2, i]))]),
                          bytes([10, 0, 0, 1]))
            seen[i] = seen.get(i, 0) + 1
        s.discovered()                    # the engine's flush after a batch
    assert s._deferred                    # some wait
    s.dns64()
    assert not s._deferred
    assert s.a == {f"n{i}.example": {bytes([192, 0, 2, i]): n} for i, n in seen.items()}


def test_a_repeated_response_is_applied_from_its_counters():
    from ipv6flow.analysis import nat64
    msg = _dns_answer("a.example", [(1, bytes([192, 0, 2, 1])),
                                    (28, bytes.fromhex("0064ff9b0000000000000000c0000201"))])
    s = nat64.Nat64State()
    for _ in range(3):
        s.observe_dns(msg, b"\x0a\x00\x00\x01")
        s.observe_dns(msg, b"\x0a\x00\x00\x01")
        s._flush()
    assert len(s._applied) == 1 and len(next(iter(s._applied.values()))) == 2
    assert s.a["a.example"] == {bytes([192, 0, 2, 1]): 6}
    assert s.aaaa["a.example"] == {bytes.fromhex("0064ff9b0000000000000000c0000201"):
                                   {b"\x0a\x00\x00\x01": 6}}
    assert s.discovered() == {(rfc6052.WKP[0], 96): {"dns64"}}
