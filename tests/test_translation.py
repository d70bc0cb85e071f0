"""IPv4 as a service: NAT64/464XLAT, DS-Lite, lw4o6, MAP-E, MAP-T (issue 17;
analysis/translation.py).

Truth by construction: ``samples/translation/generate.py`` builds CLAT
handsets behind a NAT64 (with and without DNS64 lookups), DS-Lite B4s and an
AFTR, MAP-E CEs with port sets, a MAP-T CE and look-alikes, and writes every
gateway's figures, bins, peak and destinations from its own parameters.
The real captures are checked with tshark as the oracle (snabb's lwAFTR
captures) or against what each is known to hold (the corpus).
"""

import importlib.util
import json
import struct
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest

from conftest import ROOT, SHARED, missing, need_corpus, need_module, need_tool
from ipv6flow.analysis import translation
from ipv6flow.analysis.rfc6052 import parse_nat64_prefix
from ipv6flow.decode import columns as dcols
from ipv6flow.summary import Summary

_spec = importlib.util.spec_from_file_location(
    "xlatgen", ROOT / "samples/translation/generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

SAMPLE = ROOT / "samples/translation/translation.pcap"
TRUTH = json.loads((ROOT / "samples/translation/translation.truth.json").read_text())
SNABB = SHARED / "translation" / "snabb-lwaftr"
SNABB_BRS = ("8:9:a:b:c:d:e:f", "1e:1:1:1:1:1:1:af", "1e:2:2:2:2:2:2:af")
FIGURES = ("packets", "bytes", "flows", "clients", "ipv4_destinations")


def run(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                       capture_output=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr.decode()[-3000:]
    return r


def analyze(path, *opts):
    return json.loads(run("analyze", "--format", "json", path, *opts).stdout)


def _check_against_truth(tr, truth):
    """Every gateway, figure, bin, peak, destination and CLAT suspect."""
    mine = {(g["mechanism"], g["gateway"]): g for g in tr["gateways"]}
    assert set(mine) == {(g["mechanism"], g["gateway"]) for g in truth["gateways"]}
    for t in truth["gateways"]:
        g = mine[(t["mechanism"], t["gateway"])]
        assert {k: g[k] for k in FIGURES} == {k: t[k] for k in FIGURES}, t["gateway"]
        assert g["peak"] == t["peak"], t["gateway"]
        assert [{k: v for k, v in b.items() if k != "distinct"} for b in g["bins"]] == t["bins"]
        assert g["destinations"] == t["destinations"], t["gateway"]
        assert g["other_destinations"] == {"packets": 0, "bytes": 0}
    keys = ("client", "gateway", "evidence", "confidence", "packets", "bytes",
            "unexplained_destinations")
    assert [{k: s[k] for k in keys} for s in tr["clat_suspects"]] == truth["clat_suspects"]
    assert tr["unclassified_4in6"] == truth["unclassified_4in6"]
    assert tr["map_port_mismatch"] == truth["map_port_mismatch"]
    assert tr["exact"] is True


def test_the_sample_is_what_the_generator_makes(tmp_path):
    data, truth = gen.build()
    assert data == SAMPLE.read_bytes()
    assert truth == TRUTH
    # the truth says what we meant: three suspects, N1 (DNS64 only) not one
    assert [s["client"] for s in truth["clat_suspects"]] == [
        "2001:db8:100:1::/64", "2001:db8:100:2::/64", "2001:db8:100:3::/64"]
    by = {g["mechanism"]: g for g in truth["gateways"]}
    assert set(by) == {"nat64", "ds-lite", "map-e", "map-t"}
    assert by["ds-lite"]["clients"] == 3 and by["nat64"]["clients"] == 4
    assert by["ds-lite"]["peak"]["start"] == gen.START + 60


@pytest.mark.parametrize("decoder", ["fast", "reference"])
@pytest.mark.parametrize("workers", [1, 2])
def test_sample_matches_truth(decoder, workers):
    rep = analyze(SAMPLE, "--decoder", decoder, "--workers", workers)
    tr = rep["translation"]
    _check_against_truth(tr, TRUTH)
    ev = {g["mechanism"]: (g["evidence"], g["confidence"]) for g in tr["gateways"]}
    assert ev == {
        "nat64": (["clat-suspects", "dns64", "well-known"], "high"),
        "ds-lite": (["b4-range", "many-b4s", "private-inner", "shared-inner"], "high"),
        "map-e": (["map-iid", "psid-ports"], "medium"),
        "map-t": (["map-iid", "psid-ports", "rfc6052-peer"], "medium"),
    }


def test_both_decoders_and_workers_give_the_same_report():
    outs = {(d, w): run("analyze", "--format", "json", "--decoder", d, "--workers", w,
                        "--aftr", gen.AFTR, "--map-rule", gen.MAP_RULE, SAMPLE).stdout
            for d in ("fast", "reference") for w in (1, 2)}
    assert len(set(outs.values())) == 1


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_without_clients_translation_is_the_same(decoder):
    """--no-clients: the fast path reads the columns of the candidate rows
    only; the section is the one of the complete report."""
    tr = analyze(SAMPLE, "--no-clients", "--decoder", decoder, "--workers", 1)["translation"]
    _check_against_truth(tr, TRUTH)
    assert tr == analyze(SAMPLE, "--workers", 1)["translation"]


def test_stated_aftr_and_map_rule():
    """--aftr and --map-rule add their evidence and raise the confidence;
    the figures stay those of the truth."""
    rep = analyze(SAMPLE, "--aftr", gen.AFTR, "--map-rule", gen.MAP_RULE)
    tr = rep["translation"]
    _check_against_truth(tr, TRUTH)
    assert tr["aftr"] == [gen.AFTR] and tr["map_rules"] == [gen.MAP_RULE]
    ev = {g["mechanism"]: (g["evidence"], g["confidence"]) for g in tr["gateways"]}
    assert "configured" in ev["ds-lite"][0]
    assert ev["map-e"] == (["map-iid", "map-rule", "psid-ports"], "high")
    assert ev["map-t"] == (["map-iid", "map-rule", "psid-ports", "rfc6052-peer"], "high")


def test_a_rule_that_puts_the_ports_out_of_the_set_is_not_map():
    """The same CEs under a rule with another PSID offset: their ports fall
    outside the rule's sets, so they are counted as mismatches, not MAP."""
    rep = analyze(SAMPLE, "--map-rule", "2001:db8:e000::/40,192.0.2.0/24,16,2")
    tr = rep["translation"]
    mechs = {g["mechanism"] for g in tr["gateways"]}
    assert "map-e" not in mechs and "map-t" not in mechs
    by = {g["mechanism"]: g for g in TRUTH["gateways"]}
    assert tr["map_port_mismatch"]["packets"] == \
        TRUTH["map_port_mismatch"]["packets"] + by["map-e"]["packets"] + by["map-t"]["packets"]


def _write_pcap(path, frames):
    path.write_bytes(gen.pcap(frames))


def test_merge_of_a_capture_cut_in_two_equals_the_whole(tmp_path):
    """Cut at a bin boundary (where a rotating capture would be cut): the
    merged report is the whole one, translation section and all."""
    data, _ = gen.build()
    frames = []
    off = 24
    while off < len(data):
        sec, usec, cap, _ = struct.unpack_from("<IIII", data, off)
        frames.append((sec + usec / 1e6, data[off + 16:off + 16 + cap]))
        off += 16 + cap
    cut = next(i for i, (t, _) in enumerate(frames) if t >= gen.START + 60)
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _write_pcap(a, frames[:cut])
    _write_pcap(b, frames[cut:])
    ja, jb = tmp_path / "a.json", tmp_path / "b.json"
    run("analyze", "--format", "json", "-o", ja, a)
    run("analyze", "--format", "json", "-o", jb, b)
    merged = json.loads(run("merge", ja, jb).stdout)
    whole = analyze(SAMPLE)
    assert merged["translation"] == whole["translation"]
    _check_against_truth(merged["translation"], TRUTH)
    # and reports merge in any order, as every other figure
    again = json.loads(run("merge", jb, ja).stdout)
    assert again["translation"] == merged["translation"]


@pytest.mark.parametrize("field,value", [("mechanism", "teleport"), ("gateway", "x::y::z"),
                                         ("bins", [{"start": "noon"}]), ("packets", "12"),
                                         ("evidence_frames", {"map-iid": [1]})])
def test_a_bad_translation_section_is_a_one_line_error(tmp_path, field, value):
    rep = analyze(SAMPLE)
    rep["translation"]["gateways"][0][field] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rep))
    r = run("merge", bad, bad, check=False)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err
    assert err.startswith(f"Error: {bad}: not an ipv6flow report")


def test_text_csv_and_prometheus():
    out = run("analyze", SAMPLE).stdout.decode()
    block = out[out.index("IPv4 as a service"):out.index("IPv6 share over time")]
    assert block.index("NAT64 (incl. 464XLAT) via 64:ff9b::/96") < block.index("DS-Lite (RFC 6333)")
    assert out.index("NAT64 / DNS64") < out.index("IPv4 as a service")
    for g in TRUTH["gateways"]:
        assert f"{g['packets']:,} packets, {g['bytes']:,} bytes, {g['flows']} flow" in block
    assert "198.51.100.30" in block and "AAAA      dual.example" in block
    assert "IPv4-only legacy.example" in block
    assert "2001:db8:100:1::/64 via 64:ff9b::/96 (confidence high" in block
    csv_text = run("analyze", "--format", "translation-csv", SAMPLE).stdout.decode()
    lines = csv_text.splitlines()
    assert lines[0].split(",") == list(__import__("ipv6flow.report.csvout",
                                                  fromlist=["x"]).TRANSLATION_COLUMNS)
    rows = [line.split(",") for line in lines[1:]]
    want = [(b["start"], g["mechanism"], g["gateway"], b["packets"], b["bytes"],
             int(b["start"] == g["peak"]["start"]))
            for g in TRUTH["gateways"] for b in g["bins"]]
    assert [(float(r[0]), r[3], r[4], int(r[5]), int(r[6]), int(r[10])) for r in rows] == want
    prom = run("analyze", "--format", "prometheus", SAMPLE).stdout.decode()
    for g in TRUTH["gateways"]:
        lb = f'{{mechanism="{g["mechanism"]}",gateway="{g["gateway"]}"}}'
        assert f"ipv6flow_translation_bytes_total{lb} {g['bytes']}" in prom
        assert f"ipv6flow_translation_peak_bytes{lb} {g['peak']['bytes']}" in prom
    assert 'ipv6flow_translation_clat_suspects{gateway="64:ff9b::/96"} 3' in prom


def test_schema():
    jsonschema = need_module("jsonschema")
    schema = json.loads((ROOT / "ipv6flow/schema/report.schema.json").read_text())
    jsonschema.validate(analyze(SAMPLE), schema)
    jsonschema.validate(analyze(ROOT / "samples/clients/population.pcap"), schema)


def test_plot_draws_bytes_per_bin_by_mechanism(tmp_path, drawn):
    """The panel's lines read back: per mechanism, the truth's bytes per bin."""
    from ipv6flow.report import plot
    figs = drawn
    rep = analyze(SAMPLE)
    plot.render(rep, str(tmp_path / "r.png"))
    panel = next(ax for ax in figs[0].axes if ax.get_title(loc="left").startswith("IPv4 as a"))
    lines = {ln.get_label().split(" (")[0]: ln for ln in panel.get_lines()}
    assert set(lines) == {plot.MECH_LABELS[g["mechanism"]] for g in TRUTH["gateways"]}
    for g in TRUTH["gateways"]:
        ys = list(lines[plot.MECH_LABELS[g["mechanism"]]].get_ydata())
        # each bin is drawn as its two ends; gaps go down to zero between
        assert [y for y in ys if y] == [b["bytes"] for b in g["bins"] for _ in (0, 1)]
    # without the section the layout is the one it was (no such panel)
    figs.clear()
    plot.render(analyze(ROOT / "samples/clients/population.pcap"), str(tmp_path / "p.png"))
    assert not any(ax.get_title(loc="left").startswith("IPv4 as a") for ax in figs[0].axes)


def test_nothing_found_is_empty_and_stable():
    """A capture without any of it: an empty section, no text block, no
    Prometheus family, a CSV of just the header."""
    rep = analyze(ROOT / "samples/clients/population.pcap")
    tr = rep["translation"]
    assert tr["gateways"] == [] and tr["clat_suspects"] == []
    assert all(v == {"packets": 0, "bytes": 0, "gateways": 0} for v in tr["mechanisms"].values())
    assert "IPv4 as a service" not in run("analyze", ROOT / "samples/clients/population.pcap"
                                          ).stdout.decode()
    assert "translation" not in run("analyze", "--format", "prometheus",
                                    ROOT / "samples/clients/population.pcap").stdout.decode()


@pytest.mark.parametrize("option,value,message", [
    ("--aftr", "192.0.2.1", "is not an IPv6 address"),
    ("--map-rule", "2001:db8::/40,192.0.2.0/24,16", "a MAP rule is IPV6PREFIX,IPV4PREFIX"),
    ("--map-rule", "2001:db8::/40,192.0.2.0/24,30,6", "pass /64"),
    ("--map-rule", "2001:db8::/32,192.0.2.0/24,24,6", "does not fit after offset 6"),
    ("--map-rule", "2001:db8::/40,300.0.2.0/24,16,6", "2001:db8::/40,300.0.2.0/24,16,6"),
])
def test_bad_options_are_one_line_errors(option, value, message):
    r = run("analyze", SAMPLE, option, value, check=False)
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err
    assert message in err and option in err


# -- the rules on their own -------------------------------------------------

def test_port_sets_follow_rfc7597():
    """RFC 7597 5.1: offset 6, PSID length 8, PSID 0x34: ports A.PSID.j
    with A 1..63 and j 0..3; every other port is outside."""
    ports = np.arange(65536, dtype=np.int64)
    fit = translation._ports_fit(ports, np.full(65536, 0x34), 6, 8)
    want = {(a << 10) | (0x34 << 2) | j for a in range(1, 64) for j in range(4)}
    assert set(np.flatnonzero(fit).tolist()) == want
    # PSID length 0 (a rule without sharing): the whole address, every port
    assert translation._ports_fit(ports, np.zeros(65536, dtype=np.int64), 6, 0).all()
    assert not translation._ports_fit(ports, np.ones(65536, dtype=np.int64), 6, 0).any()
    # without a rule some PSID length must fit; 0xffff fits none
    assert not translation._ports_fit_any(ports, np.full(65536, 0xFFFF)).any()
    assert translation._ports_fit_any(np.array([1024 | 0x34 << 2]), np.array([0x34])).all()


def _columns(n, **over):
    c = dcols.empty_columns()
    c = {k: np.zeros(n, dtype=v.dtype) for k, v in c.items()}
    c.update(over)
    return c


def test_a_flood_of_client_64s_keeps_memory_bounded():
    """A million NAT64 frames from a million /64s to a million literal
    IPv4 addresses: the per-/64 table stops at its cap, the rest is
    counted, and the report says how much."""
    st = translation.TranslationState()
    n = 250_000
    rng = np.random.default_rng(7)
    for _ in range(4):
        hi = (np.uint64(0x2001_0db8) << np.uint64(32)) | rng.integers(0, 2**32, n,
                                                                       dtype=np.uint64)
        v4 = rng.integers(1 << 24, 0xDF000000, n, dtype=np.uint64)
        c = _columns(n, fam=np.full(n, 2), has6=np.ones(n, dtype=bool), proto=np.full(n, 6),
                     sport=rng.integers(1024, 65536, n), dport=np.full(n, 443),
                     v4s=np.full(n, -1), v4d=np.full(n, -1),
                     v6s_hi=hi, v6s_lo=np.ones(n, dtype=np.uint64),
                     v6d_hi=np.full(n, 0x0064_ff9b_0000_0000, dtype=np.uint64), v6d_lo=v4,
                     ts=np.linspace(0, 1e6, n))
        st.observe(c, np.full(n, 100, dtype=np.int64), 60.0)
    st.flush(60.0)
    assert len(st.clients64) == translation.MAX_CLIENTS64
    assert st.untracked["clients64"] == 4 * n - translation.MAX_CLIENTS64
    g = st.gateways[("nat64", 0x0064_ff9b << 96, 96)]
    assert g.packets == 4 * n and len(g.dests) == translation.TRACK_DESTS
    assert g.other[0] == 4 * n - translation.TRACK_DESTS
    assert st.nbins <= translation.MAX_GATEWAY_BINS
    rep = st.report(None, 60.0)
    assert rep["untracked"]["client64_frames"] == 4 * n - translation.MAX_CLIENTS64
    assert len(rep["clat_suspects"]) == translation.MAX_CLIENTS64
    (gr,) = rep["gateways"]
    assert len(gr["destinations"]) == translation.MAX_DESTS
    assert gr["other_destinations"]["packets"] == 4 * n - translation.MAX_DESTS
    assert not rep["exact"]
    json.dumps(rep)


def test_parts_list_the_destinations_one_pass_lists_past_the_cap():
    """NAT64 traffic to 1,000 IPv4 destinations, the first 300 in both
    halves of the capture, cut in two parts as --workers cuts a file: the
    merged parts list the same 256 destinations with the same figures as
    one pass (the second part met 700 new destinations before those the
    first part listed), and other_destinations holds the rest of the
    traffic. Before the parts counted more than they list, the second
    part's traffic to the listed ones went to other_destinations."""
    rng = np.random.default_rng(11)
    first = 0x0A00_0000 + np.arange(1000, dtype=np.uint64)          # 10.0.0.0 + i
    second = np.concatenate((first[300:], first[:300]))              # new ones first
    halves = []
    for dst, t0 in ((first, 0.0), (second, 3600.0)):
        n = len(dst)
        halves.append((_columns(
            n, fam=np.full(n, 2), has6=np.ones(n, dtype=bool), proto=np.full(n, 6),
            sport=rng.integers(1024, 65536, n), dport=np.full(n, 443),
            v4s=np.full(n, -1), v4d=np.full(n, -1),
            v6s_hi=np.full(n, 0x2001_0db8_0000_0001, dtype=np.uint64),
            v6s_lo=np.ones(n, dtype=np.uint64),
            v6d_hi=np.full(n, 0x0064_ff9b_0000_0000, dtype=np.uint64), v6d_lo=dst,
            ts=t0 + np.arange(n, dtype=float)), rng.integers(60, 1500, n)))
    one = translation.TranslationState()
    parts = [translation.TranslationState(), translation.TranslationState()]
    for part, (c, wire) in zip(parts, halves):
        for st in (one, part):
            st.observe(c, wire.astype(np.int64), 60.0)
            st.flush(60.0)
    merged = parts[0].merge(parts[1], 60.0)
    a, b = one.report(None, 60.0), merged.report(None, 60.0)
    (ga,), (gb,) = a["gateways"], b["gateways"]
    assert len(ga["destinations"]) == translation.MAX_DESTS
    assert ga["destinations"] == gb["destinations"]
    assert ga["other_destinations"] == gb["other_destinations"]
    wire_all = int(halves[0][1].sum() + halves[1][1].sum())
    listed = sum(d["bytes"] for d in ga["destinations"])
    assert listed + ga["other_destinations"]["bytes"] == ga["bytes"] == wire_all
    # every listed destination is one of the first 256 and carries both halves
    assert {d["address"] for d in ga["destinations"]} == {f"10.0.{i >> 8}.{i & 255}"
                                                         for i in range(256)}
    assert all(d["packets"] == 2 for d in ga["destinations"])


def _hostile_pcap(path, count):
    """4in6 whose outer source claims the inner IPv4 and a PSID its port
    cannot hold, from ``count`` distinct /64s, and NAT64 frames from as
    many /64s."""
    out = []
    for i in range(count):
        ip4 = struct.pack("!I", 0xC6336400 | (i & 0xFF))          # 198.51.100.x
        src6 = struct.pack("!QQ", 0x20010db800000000 | i,
                           int.from_bytes(b"\x00\x00" + ip4 + b"\xff\xf0", "big"))
        inner = gen.ipv4(ip4, bytes([203, 0, 113, 7]), 6, gen.tcp(5 + i % 100, 443, 0))
        out.append((gen.START + i * 0.01, gen.eth(0x86DD, gen.ipv6(src6, gen.a6(gen.BR), 4,
                                                                     inner))))
        cl = struct.pack("!QQ", 0x20010db8ff000000 | i, 1)
        out.append((gen.START + i * 0.01 + 0.005,
                    gen.eth(0x86DD, gen.ipv6(cl, gen.nat64_addr("192.0.2.9"), 6,
                                             gen.tcp(40000, 443, 0)))))
    path.write_bytes(gen.pcap(out))


def test_hostile_capture_no_traceback_and_bounded(tmp_path):
    p = tmp_path / "hostile.pcap"
    count = translation.MAX_CLIENTS64 + 1000
    _hostile_pcap(p, count)
    reps = [run("analyze", "--format", "json", "--decoder", d, "--workers", w, p).stdout
            for d, w in (("fast", 1), ("reference", 1), ("fast", 2))]
    assert len(set(reps)) == 1
    tr = json.loads(reps[0])["translation"]
    assert tr["map_port_mismatch"]["packets"] == count          # PSID 0xfff0: no set holds it
    assert not any(g["mechanism"] in ("map-e", "map-t") for g in tr["gateways"])
    assert tr["unclassified_4in6"]["packets"] == count
    assert len(tr["state"]["clients64"]) == translation.MAX_CLIENTS64
    assert tr["untracked"]["client64_frames"] == 1000
    nat = [g for g in tr["gateways"] if g["mechanism"] == "nat64"]
    assert nat[0]["packets"] == count and nat[0]["clients"] == pytest.approx(count, rel=0.05)


# -- real captures --------------------------------------------------------------

def _tshark_4in6(paths, brs):
    """Per BR: 4in6 frames and bytes (outer next header 4, or the first
    fragment of one) and the B4s on the other side; plus those with no BR."""
    packets, nbytes, b4s = Counter(), Counter(), defaultdict(set)
    other = [0, 0]
    for p in paths:
        out = subprocess.run(
            ["tshark", "-r", str(p), "-o", "ipv6.defragment:FALSE", "-T", "fields",
             "-E", "occurrence=f", "-e", "ipv6.nxt", "-e", "ipv6.fraghdr.nxt",
             "-e", "ipv6.fraghdr.offset", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "frame.len"],
            capture_output=True, text=True, timeout=120).stdout
        for line in out.splitlines():
            nxt, fnxt, foff, src, dst, ln = line.split("\t")
            if not (nxt == "4" or (nxt == "44" and fnxt == "4" and foff == "0")):
                continue
            br = src if src in brs else dst if dst in brs else None
            if br is None:
                other[0] += 1
                other[1] += int(ln)
                continue
            packets[br] += 1
            nbytes[br] += int(ln)
            b4s[br].add(dst if br == src else src)
    return packets, nbytes, b4s, other


def test_snabb_lwaftr_softwires_are_lw4o6():
    if not (SNABB / "icmp_on_fail.conf").is_file():
        missing(f"snabb's lwAFTR captures are not at {SNABB} (set IPV6FLOW_SHARED to ../shared)")
    need_tool("tshark")
    paths = sorted(SNABB.glob("*.pcap"))
    opts = [x for br in SNABB_BRS for x in ("--aftr", br)]
    rep = analyze(*paths, *opts, "--workers", 1)
    tr = rep["translation"]
    packets, nbytes, b4s, other = _tshark_4in6(paths, set(SNABB_BRS))
    assert {g["mechanism"] for g in tr["gateways"]} == {"lw4o6"}
    assert {g["gateway"]: (g["packets"], g["bytes"], g["clients"]) for g in tr["gateways"]} == \
        {br: (packets[br], nbytes[br], len(b4s[br])) for br in packets}
    assert all(g["evidence"] == ["configured", "public-inner"] and g["confidence"] == "high"
               for g in tr["gateways"])
    assert tr["clat_suspects"] == []
    # regressiontest-signedntohl-frags.pcap: first fragments of 4in6
    # between two addresses that are no BR of the binding table
    assert [tr["unclassified_4in6"]["packets"], tr["unclassified_4in6"]["bytes"]] == other
    assert tr["map_port_mismatch"]["packets"] == 0
    # the same through the reference decoder and two workers
    assert analyze(*paths, *opts, "--decoder", "reference", "--workers", 2)["translation"] == tr
    # without --aftr nothing there is called anything: public IPv4 on both sides
    bare = analyze(*paths, "--workers", 1)["translation"]
    assert bare["gateways"] == [] and bare["clat_suspects"] == []


# Real captures with 4in6 or NAT64, and what each gives:
# - the 4in6 samples hold public IPv4 on both sides and no MAP form: no
#   suspect, all 4in6 unclassified;
# - GrePackets/gre-pptp: the IPv4 inside the IPv6 carries GRE (PPTP): the
#   innermost IPv4 is not the softwire's, so nothing is classified;
# - nDPI's NAT64 client captures (reddit, tumblr, pinterest) hold no DNS at
#   all: their one client /64 reaches literal IPv4 destinations through
#   64:ff9b::/96, which is a CLAT suspect with confidence "low" (explained:
#   without DNS in the capture a DNS64 client cannot be told from a CLAT).
REAL = {
    "nDPI/4in6tunnel.pcap": ([], 4),
    "zeek/4in6.pcap": ([], 1),
    "suricata-verify/ipv4_over_ipv6.pcap": ([], 1),
    "arkime/arkime_synthetic.pcap": ([], 1),
    "PcapPlusPlus/GrePackets.pcap": ([], 0),
    "zeek/gre-pptp.pcap": ([], 0),
    "nDPI/reddit.pcap": (["nat64"], 0),
    "nDPI/tumblr.pcap": (["nat64"], 0),
    "nDPI/pinterest.pcap": (["nat64"], 0),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_captures_give_no_false_suspect(name):
    path = need_corpus() / name
    rep = analyze(path, "--workers", 1)
    tr = rep["translation"]
    mechs, unclassified = REAL[name]
    assert [g["mechanism"] for g in tr["gateways"]] == mechs
    assert tr["unclassified_4in6"]["packets"] == unclassified
    assert tr["map_port_mismatch"]["packets"] == 0
    if mechs:
        nat = rep["nat64"]["suspects"][0]
        g = tr["gateways"][0]
        assert (g["gateway"], g["packets"], g["bytes"]) == (nat["prefix"], nat["packets"],
                                                            nat["bytes"])
        assert [s["confidence"] for s in tr["clat_suspects"]] == ["low"]
        assert tr["clat_suspects"][0]["evidence"] == ["unexplained-ipv4"]
    else:
        assert tr["clat_suspects"] == []
    assert analyze(path, "--workers", 1, "--decoder", "reference")["translation"] == tr


def test_summary_merge_is_associative_on_translation():
    """Three parts of the sample merged in two orders give one report."""
    from ipv6flow.capture import open_capture
    from ipv6flow.decode import DecodeOptions, decode_frame
    opts = DecodeOptions()
    parts = [Summary(60.0, (), opts) for _ in range(3)]
    with open_capture(str(SAMPLE)) as cap:
        for i, rec in enumerate(cap):
            f = decode_frame(rec.linktype, rec.data, rec.wirelen, opts)
            parts[i % 3].add(f, rec.ts, rec.wirelen, rec.linktype, rec.data)
            from ipv6flow.analysis.nat64 import inspect_frame
            inspect_frame(parts[i % 3].nat64, f, rec.data, rec.wirelen, [], True)
    a = parts[0].merge(parts[1]).merge(parts[2]).to_report()["translation"]
    b = parts[0].merge(parts[1].merge(parts[2])).to_report()["translation"]
    assert a == b
    _check_against_truth(a, TRUTH)
    # and through a report and back
    back = Summary.from_report(parts[0].merge(parts[1]).to_report())
    c = back.merge(Summary.from_report(parts[2].to_report())).to_report()["translation"]
    assert c["gateways"] == a["gateways"]


# -- NAT64 prefixes the capture reveals (DNS64, PREF64) ----------------------

_dspec = importlib.util.spec_from_file_location(
    "xlatdisc", ROOT / "samples/translation/discovered.py")
disc = importlib.util.module_from_spec(_dspec)
_dspec.loader.exec_module(disc)
HOW_KNOWN = {"configured", "dns64", "rfc7050", "pref64"}


def _without_how_known(tr):
    """The translation section with what says how a prefix was known
    left out (the fields allowed to differ): its evidence, and the
    confidence it sets (medium when DNS64 answers alone found it)."""
    tr = json.loads(json.dumps(tr))
    for g in tr["gateways"]:
        g["evidence"] = [e for e in g["evidence"] if e not in HOW_KNOWN]
        del g["confidence"]
    return tr


def _check_discovered(tr, truth):
    """Every NAT64 gateway's figures, bins, peak and destinations."""
    got = {g["gateway"]: g for g in tr["gateways"]}
    assert set(got) == set(truth["gateways"])
    for gw, t in truth["gateways"].items():
        g = got[gw]
        assert g["mechanism"] == "nat64"
        assert {k: g[k] for k in FIGURES} == {k: t[k] for k in FIGURES}, gw
        assert [{k: v for k, v in b.items() if k != "distinct"} for b in g["bins"]] == t["bins"]
        assert g["peak"] == t["peak"], gw
        assert {d["address"]: {"packets": d["packets"], "bytes": d["bytes"]}
                for d in g["destinations"]} == t["destinations"], gw
        assert g["unbinned_frames"] == 0 and g["other_destinations"]["packets"] == 0
    mine = {s["client"]: s["unexplained_destinations"] for s in tr["clat_suspects"]
            if s["gateway"] == truth["prefix"]}
    assert mine == truth["clat_suspects"]


def _known(truth):
    return tuple(parse_nat64_prefix(p) for p in
                 ([truth["prefix"]] + ([disc.WIDE] if truth["wide"] else [])))


@pytest.fixture(params=[False, True], ids=["dns64", "dns64+pref64-wide"])
def discovered(request, tmp_path):
    data, truth = disc.build(wide=request.param, filler=150, pad=1400)   # 10 MiB: 2 batches
    path = tmp_path / "discovered.pcap"
    path.write_bytes(data)
    return path, truth


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_a_discovered_prefix_is_sized_as_if_configured(discovered, decoder, monkeypatch):
    """Two batches (the fast path learns of the prefix in the first and
    counts it from the second on) and frequent checks (the reference
    path likewise): the section equals the --nat64-prefix run's and the
    truth, serially and with two workers cutting the file in parts."""
    from ipv6flow.engine import local
    from ipv6flow.engine.local import analyze_paths
    from ipv6flow.engine.parallel import analyze_parallel
    from ipv6flow.options import Options
    path, truth = discovered
    monkeypatch.setattr(local, "REFERENCE_CHECK_EVERY", 16)
    found = analyze_paths([str(path)], Options(decoder=decoder))
    configured = analyze_paths([str(path)], Options(decoder=decoder,
                                                    nat64_prefixes=_known(truth)))
    a = found.summary.to_report()["translation"]
    b = configured.summary.to_report()["translation"]
    assert _without_how_known(a) == _without_how_known(b)
    _check_discovered(a, truth)
    mine = {g["gateway"]: g for g in a["gateways"]}
    assert "dns64" in mine[truth["prefix"]]["evidence"]
    assert mine[truth["prefix"]]["confidence"] == "medium"       # DNS64 answers alone
    assert mine[disc.WIDE if truth["wide"] else disc.WKP]["confidence"] == "high"   # PREF64, WKP
    assert {g["gateway"]: g["confidence"] for g in b["gateways"]} == {
        g: "high" for g in mine}                                  # all configured
    for min_part in (1 << 20, 3 << 20):
        par = analyze_parallel([str(path)], Options(decoder=decoder, workers=2),
                               min_part=min_part).summary.to_report()["translation"]
        assert par == a, min_part


def test_the_first_pass_counts_a_discovered_prefix_from_its_discovery(discovered, monkeypatch):
    """The design's two halves: the first pass alone counts the frames
    after the discovery, the second pass the ones before it."""
    from ipv6flow.engine import local
    from ipv6flow.options import Options
    path, truth = discovered
    s = Summary(60.0, (), Options().decode)
    live = local.LivePrefixes(s.nat64.static_prefixes())
    with local.open_input(str(path), Options().decode) as cap:
        local.first_pass(cap, Options(), s, live, 0, lambda f, lt: None)
    first = {g["gateway"]: g for g in s.to_report()["translation"]["gateways"]}
    gw = truth["gateways"][truth["prefix"]]
    assert 0 < first[truth["prefix"]]["packets"] < gw["packets"]
    assert live.start[parse_nat64_prefix(truth["prefix"])][1] > 0


def test_discovered_prefix_through_stdin_and_merge(discovered, tmp_path):
    """The CLI: stdin (spooled, read twice) and a capture cut in two
    between the two DNS64 answers, each half analysed and merged: the
    whole capture's section. (The RA of the wide variant is in one half
    only: a report cannot size what its own capture gave no evidence for,
    so the merge is checked without it.)"""
    path, truth = discovered
    whole = analyze(path)
    _check_discovered(whole["translation"], truth)
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                        "-"], input=path.read_bytes(), capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["translation"] == whole["translation"]
    if truth["wide"]:
        return
    raw = path.read_bytes()
    cut_time = disc.START + 110             # after the first answer, before the second
    halves = [bytearray(raw[:24]), bytearray(raw[:24])]
    off = 24
    while off + 16 <= len(raw):
        sec, usec, caplen = struct.unpack_from("<III", raw, off)
        halves[sec + usec / 1e6 >= cut_time] += raw[off:off + 16 + caplen]
        off += 16 + caplen
    reports = []
    for i, h in enumerate(halves):
        p = tmp_path / f"half{i}.pcap"
        p.write_bytes(bytes(h))
        j = tmp_path / f"half{i}.json"
        run("analyze", "--format", "json", "-o", j, p)
        reports.append(j)
    merged = json.loads(run("merge", *reports).stdout)
    assert merged["translation"] == whole["translation"]


def test_a_discovered_prefix_in_a_streamed_file(discovered, tmp_path, monkeypatch):
    """A gzip file streamed in chunks to the workers (each chunk learns
    of the prefix on its own): the serial run's section."""
    import gzip
    from ipv6flow.engine import parallel
    from ipv6flow.engine.local import analyze_paths
    from ipv6flow.options import Options
    path, truth = discovered
    gz = tmp_path / "discovered.pcap.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), 1))
    monkeypatch.setattr(parallel, "STREAM_MIN_WORKERS", 2)
    one = analyze_paths([str(gz)], Options()).summary.to_report()["translation"]
    _check_discovered(one, truth)
    par = parallel.analyze_parallel([str(gz)], Options(workers=2), min_part=1,
                                    chunk=2 << 20).summary.to_report()["translation"]
    assert par == one
