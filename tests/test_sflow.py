"""analyze --sflow: sampled headers from sFlow v5 datagrams, scaled by the
sampling rate, with the sampling section and its intervals.

Truth comes from three places:
* by construction: datagrams built here (tests/hostile/generate.py's sFlow
  builders) with known rates, lengths and lies;
* tshark: every sample of the real datagrams in ../shared/sampled (and of
  pmacctd's) decoded by tshark's sFlow dissector, field by field;
* a real agent, pmacct's pmacctd (tests/sflow_agent.py): at rate 1 the
  report from its samples equals the exact report of the frames it
  exported, cut as its headers are; at rates 16 and 256 the true shares
  lie inside the stated 95% intervals in at least 90% of 40 inputs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, SAMPLES, SHARED, missing, need_tool
from ipv6flow.options import Options
from ipv6flow.analysis.sampling import MAX_AGENTS, MAX_RATES, MAX_SOURCES, Z95
from ipv6flow.capture import open_capture
from ipv6flow.capture.sflow import udp_payload
from ipv6flow.decode import DecodeOptions
from ipv6flow.decode.sflow import parse_datagram
from ipv6flow.engine.local import analyze_paths
from ipv6flow.engine.parallel import analyze_parallel
from ipv6flow.cli import sampled_options
from ipv6flow.summary import Summary

TESTS = Path(__file__).resolve().parent
SCHEMA = json.loads((ROOT / "ipv6flow" / "schema" / "report.schema.json").read_text())
AKVORADO = SHARED / "sampled" / "akvorado"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load("hostile_generate_sflow", TESTS / "hostile" / "generate.py")
OPTS = sampled_options(DecodeOptions(), gen.SFLOW_PORT)


def report(paths, port=gen.SFLOW_PORT, decoder="fast", workers=1):
    opts = dataclasses.replace(OPTS, sflow_port=port)
    paths = [str(p) for p in paths]
    if workers == 1:
        return analyze_paths(paths, Options(opts, decoder=decoder)).report()
    return analyze_parallel(paths, Options(opts, decoder=decoder, workers=workers)).report()


def reports(paths, port=gen.SFLOW_PORT):
    """The report by both decoders, in one process and on two workers:
    all four must be the same; returns it."""
    fast = report(paths, port)
    jsonschema.validate(fast, SCHEMA)
    for decoder, workers in (("reference", 1), ("fast", 2), ("reference", 2)):
        assert report(paths, port, decoder, workers) == fast, (decoder, workers)
    return fast


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                          capture_output=True, timeout=timeout, cwd=str(ROOT), text=True)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- by construction ------------------------------------------------------------

S6 = gen.SAMPLED                                # Ethernet + IPv6 + ICMPv6 echo
S4 = gen.SAMPLED4                               # Ethernet + IPv4 + UDP
L6, L4 = len(S6), len(S4)
rec = gen.sflow_header_record


def test_counts_are_scaled_by_the_rate(tmp_path):
    """3 IPv6 samples at 1 in 10 and 2 IPv4 samples at 1 in 100 (one of
    them from a 1000-byte frame): packets and bytes are the samples times
    their rate, bytes from frame_length less stripped."""
    d = gen.sflow_datagram([
        gen.sflow_flow_sample([rec(S6)], seq=1, rate=10),
        gen.sflow_flow_sample([rec(S6)], seq=2, rate=10, expanded=True),
        gen.sflow_flow_sample([rec(S6, frame_length=200, stripped=4)], seq=3, rate=10),
        gen.sflow_flow_sample([rec(S4)], seq=4, rate=100),
        gen.sflow_flow_sample([rec(S4, frame_length=1004)], seq=5, rate=100)])
    r = reports([write(tmp_path, "a.pcap", gen.sflow_capture([d]))])
    assert r["payload"]["ipv6"] == {"packets": 30, "bytes": 10 * (L6 + L6 + 196)}
    assert r["payload"]["ipv4"] == {"packets": 200, "bytes": 100 * (L4 + 1000)}
    assert r["totals"]["packets"] == r["inputs"][0]["packets"] == 230
    assert r["transport"]["ipv6"]["icmpv6"] == 30 and r["transport"]["ipv4"]["udp"] == 200
    s = r["sampling"]
    assert (s["datagrams"], s["samples"], s["rates"]) == (1, 5, {"10": 3, "100": 2})
    assert s["cut"]["samples"] == 2 and s["cut"]["packets"] == 110     # 196- and 1000-byte frames
    assert "clients" not in r and "flows" not in r
    # the interval of the IPv6 share of packets, by hand (docs/DECISIONS.md):
    # the wider of the linearised one and sFlow's 196 * sqrt(1 / c) percent
    p = 30 / 230
    var = ((1 - p) ** 2 * 3 * 10 * 9 + p * p * 2 * 100 * 99) / 230 ** 2
    iv = s["intervals"]["ipv6_packets"]
    assert iv["share"] == pytest.approx(p) == r["share"]["ipv6_packets"]
    assert iv["half_width"] == pytest.approx(max(Z95 * math.sqrt(var), p * Z95 / math.sqrt(3)))
    # bytes: each sample weighs R(R-1) L**2
    b6, b4 = 10 * (L6 + L6 + 196), 100 * (L4 + 1000)
    pb = b6 / (b6 + b4)
    vb = ((1 - pb) ** 2 * 90 * (L6 ** 2 + L6 ** 2 + 196 ** 2)
          + pb * pb * 9900 * (L4 ** 2 + 1000 ** 2)) / (b6 + b4) ** 2
    assert s["intervals"]["ipv6_bytes"]["half_width"] == pytest.approx(
        max(Z95 * math.sqrt(vb), pb * Z95 / math.sqrt(3)))
    # a share of 1 from 5 samples at 1 in 10 or 100 is not certain: sFlow's
    # bound keeps its interval open where the linearised one is 0 wide
    tun = s["intervals"]["tunnels"]["none"]["packets"]
    assert tun["share"] == 1.0 and tun["half_width"] == pytest.approx(Z95 / math.sqrt(5))


def test_rate_one_is_exact(tmp_path):
    """At 1 in 1 the samples are the traffic: the report equals the exact
    report of the same frames, and every interval has zero width."""
    frames = [S6, S4, S4, gen.eth(gen.ip4(gen.ip6(gen.icmp6_echo(), 58), 41), 0x0800)]
    d = gen.sflow_datagram([gen.sflow_flow_sample([rec(f)], seq=i + 1)
                            for i, f in enumerate(frames)])
    r = reports([write(tmp_path, "s.pcap", gen.sflow_capture([d]))])
    exact = analyze_paths([str(write(tmp_path, "e.pcap", gen.pcap(frames)))],
                          Options(DecodeOptions(client_key="off"))).report()
    for k in ("totals", "carrier", "payload", "ipv6", "tunnels", "share", "transport",
              "extension_headers", "addresses", "decode"):
        assert r[k] == exact[k], k
    assert r["tunnels"]["6in4"]["packets"] == 1
    ivs = r["sampling"]["intervals"]
    assert all(iv["half_width"] == 0 for k, iv in ivs.items() if k != "tunnels" and iv)
    assert all(e[u]["half_width"] == 0 for e in ivs["tunnels"].values() for u in e)


def test_cut_chain_is_not_an_anomaly(tmp_path):
    """A header cut inside an IPv6 extension-header chain: the chain cut
    by the exporter is counted in sampling.cut, not as truncated_chain;
    the same chain cut short in a frame sent whole stays an anomaly."""
    nh, body = gen.chain([0, 60, 60], 17, gen.udp(b"z" * 100, 1, 2))
    frame = gen.eth(gen.ip6(body, nh))
    cut = rec(frame[:70], frame_length=len(frame) + 4)
    d = gen.sflow_datagram([gen.sflow_flow_sample([cut], rate=8),
                            gen.sflow_flow_sample([rec(frame[:70])], seq=2, rate=2)])
    r = reports([write(tmp_path, "c.pcap", gen.sflow_capture([d]))])
    assert r["sampling"]["cut"] == {"samples": 1, "packets": 8, "chains_cut": 8,
                                    "decode_stopped": 8}
    assert r["extension_headers"]["anomalies"]["truncated_chain"] == 2
    assert r["decode"]["truncated"] == 10
    assert r["sampling"]["unreliable"] == ["addresses", "extension_headers", "nat64",
                                           "transport", "tunnels"]


def test_sequence_gaps_sources_and_merge(tmp_path):
    """Lost datagrams and samples from sequence numbers, per agent and
    source; the sampling section merges (files together = reports merged,
    in-process and through `ipv6flow merge`)."""
    a = [gen.sflow_datagram([gen.sflow_flow_sample([rec(S6)], seq=s, rate=4,
                                                   source=(0, 3))], seq=s)
         for s in (1, 2, 5, 9)]
    agent6 = bytes.fromhex("20010db8000000000000000000000099")
    b = [gen.sflow_datagram([gen.sflow_flow_sample([rec(S4)], seq=s * 2, rate=16,
                                                   source=(1, 7), expanded=True)],
                            seq=s, agent=agent6, sub_agent=3) for s in (10, 11)]
    pa = write(tmp_path, "a.pcap", gen.sflow_capture(a))
    pb = write(tmp_path, "b.pcap", gen.sflow_capture(b))
    both = reports([pa, pb])
    s = both["sampling"]
    agent = s["agents"]["192.0.2.9/0"]
    assert (agent["datagrams"], agent["lost_datagrams"]) == (4, 5)
    assert agent["sources"] == {"0:3": {"samples": 4, "rates": {"4": 4}, "lost_samples": 5}}
    other = s["agents"]["2001:db8::99/3"]
    assert other["sources"] == {"1:7": {"samples": 2, "rates": {"16": 2}, "lost_samples": 1}}
    assert s["lost_datagrams"] == 5 and s["rates"] == {"4": 4, "16": 2}
    ra, rb = report([pa]), report([pb])
    merged = Summary.from_report(ra).merge(Summary.from_report(rb)).to_report()
    assert merged == both
    out = [write(tmp_path, f"{n}.json", json.dumps(x).encode()) for n, x in (("ra", ra),
                                                                            ("rb", rb))]
    res = run_cli("merge", *out)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == json.loads(json.dumps(both))
    for fmt in ("text", "csv", "prometheus"):
        assert run_cli("merge", "--format", fmt, *out).returncode == 0
    prom = run_cli("merge", "--format", "prometheus", *out).stdout
    assert "ipv6flow_sflow_samples_total 6\n" in prom
    assert "ipv6flow_sflow_lost_datagrams_total 5\n" in prom
    assert 'ipv6flow_sflow_samples_by_rate_total{rate="16"} 2\n' in prom
    low = both["sampling"]["intervals"]["ipv6_packets"]["low"]
    assert (f'ipv6flow_ipv6_share_interval_ratio{{view="payload",measure="packets",'
            f'bound="low"}} {low!r}') in prom


def test_text_report_leads_with_the_estimate(tmp_path):
    d = gen.sflow_datagram([gen.sflow_flow_sample([rec(S6)], seq=i, rate=256)
                            for i in range(1, 4)] + [gen.sflow_flow_sample([rec(S4)], seq=9,
                                                                           rate=256)])
    p = write(tmp_path, "t.pcap", gen.sflow_capture([d]))
    res = run_cli("analyze", "--sflow", "--workers", "1", p)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1].startswith("estimated from 4 samples (1 in 256) in 1 sFlow datagrams")
    assert "IPv6 share of IP traffic: 75.0% ±" in res.stdout
    assert "clients and flows: left out" in res.stdout
    bad = run_cli("analyze", "--sflow", "--dns-report", p)
    assert bad.returncode == 2 and "do not work on sampled" in bad.stderr


def test_other_port_and_other_frames(tmp_path):
    """--sflow-port picks the port; frames that are not sFlow to it are
    skipped and said so; a sample with an MPLS header is decoded."""
    mpls = bytes.fromhex("000641ff") + gen.ip6(gen.icmp6_echo(), 58)
    d = gen.sflow_datagram([gen.sflow_flow_sample([rec(mpls, proto=13)], rate=3)])
    f = gen.eth(gen.ip4(gen.udp(d, 1, 9999), 17), 0x0800)
    p = write(tmp_path, "p.pcap", gen.pcap([f, S4]))
    r = reports([p], port=9999)
    assert r["payload"]["ipv6"]["packets"] == 3
    assert any("1 frames were not sFlow datagrams to UDP port 9999" in w
               for w in r["inputs"][0]["warnings"])
    assert report([p])["sampling"]["datagrams"] == 0


# -- the hostile corpus's sFlow files ---------------------------------------------

SFLOW_CASES = sorted(gen.SFLOW_EXPECT)


@pytest.fixture(scope="module")
def sflow_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-sflow")
    gen.build(out, only=set(SFLOW_CASES))
    return out


@pytest.mark.parametrize("name", SFLOW_CASES)
def test_hostile_sflow(sflow_corpus, name):
    """Lying datagrams are counted per agent, never fatal; what is known
    by construction is what the report says."""
    want = gen.SFLOW_EXPECT[name]
    r = reports([sflow_corpus / name])
    s = r["sampling"]
    assert r["inputs"][0]["errors"] == []
    if "samples" in want:
        assert s["samples"] == want["samples"]
    bad = Counter()
    for a in s["agents"].values():
        bad.update(a["bad_datagrams"])
    assert dict(bad) == want.get("bad", dict(bad) if not want else {})
    assert s["bad_samples"] == want.get("bad_samples", 0 if want else s["bad_samples"])
    if "skipped" in want:
        assert s["skipped"] == want["skipped"]
    if "lost_datagrams" in want:
        assert s["lost_datagrams"] == want["lost_datagrams"]
        assert sum(a["sequence_resets"] for a in s["agents"].values()) == \
            want["sequence_resets"]
    if "agents" in want:
        assert len(s["agents"]) == want["agents"] == MAX_AGENTS + 1
    for a in s["agents"].values():
        assert len(a["sources"]) <= MAX_SOURCES + 1
        for src in a["sources"].values():
            assert len(src["rates"]) <= MAX_RATES + 1
    assert sum(n for a in s["agents"].values() for src in a["sources"].values()
               for n in src["rates"].values()) == s["samples"]
    res = run_cli("analyze", "--sflow", "--workers", "1", sflow_corpus / name)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr


def test_hostile_sflow_distinct_rates(sflow_corpus):
    """Every sample at its own rate: counted right, with the groups held
    at once bounded (capture/sflow.py MAX_PENDING)."""
    r = report([sflow_corpus / "sflow-distinct-rates.pcap"])
    assert r["totals"]["packets"] == sum(range(1, 8801))
    assert r["totals"]["bytes"] == sum(range(1, 8801)) * L6
    assert r["sampling"]["rates"]["other"] == 8800 - MAX_RATES


def test_hostile_sflow_caps(sflow_corpus):
    r = report([sflow_corpus / "sflow-many-sources-rates.pcap"])
    a = r["sampling"]["agents"]["192.0.2.9/0"]
    assert len(a["sources"]) == MAX_SOURCES + 1 and "other" in a["sources"]
    assert len(a["sources"]["0:1"]["rates"]) == MAX_RATES + 1
    assert r["totals"]["packets"] == 1999 + sum(range(1, 101)) + 1


# -- tshark's decode of every sample --------------------------------------------

TSHARK_FIELDS = ("sflow_245.agent", "sflow_245.agent.v6", "sflow_245.sub_agent_id",
                 "sflow_245.sequence_number", "sflow.flow_sample.sampling_rate",
                 "sflow_245.header_protocol", "sflow_245.header.frame_length",
                 "sflow_245.header.payload_stripped", "sflow_245.header.sampled_header_length",
                 "sflow_245.header")


def tshark_samples(path, port):
    """Per datagram: (agent, sub agent, sequence, [(rate, protocol,
    frame_length, stripped, header bytes)]) as tshark decodes it."""
    cmd = [need_tool("tshark"), "-r", str(path), "-n", "-d", f"udp.port=={port},sflow",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    datagrams = []
    for line in out.splitlines():
        agent, agent6, sub, seq, rates, protos, fls, stripped, hls, heads = line.split("\t")
        cols = [c.split("|") if c else [] for c in (rates, protos, fls, stripped, hls, heads)]
        assert len({len(c) for c in cols}) == 1, line[:200]
        samples = [(int(r), int(p), int(fl), int(st), bytes.fromhex(h)[:int(hl)])
                   for r, p, fl, st, hl, h in zip(*cols)]
        datagrams.append((agent or agent6, int(sub), int(seq), samples))
    return datagrams


def our_samples(path, port):
    out = []
    with open_capture(str(path)) as cap:
        for ts, lt, wire, data in cap:
            where = udp_payload(lt, data, wire, port)
            d = parse_datagram(data, *where)
            assert d.problem is None and d.bad_samples == 0
            out.append((d.agent, d.sub_agent, d.sequence,
                        [(rate, {1: 1, 228: 11, 229: 12}[lt], None, None,
                          bytes(data[a:b])) for _, _, rate, _, _, lt, w, a, b in d.samples],
                        [w for *_, w, a, b in d.samples]))
    return out


def compare_with_tshark(path, port):
    """Every sample: agent, sub-agent, sequence, rate, header protocol,
    header bytes and wire length equal tshark's; returns tshark's list."""
    theirs = tshark_samples(path, port)
    ours = our_samples(path, port)
    assert len(ours) == len(theirs)
    for (a, sub, seq, mine, wires), (ta, tsub, tseq, tsamples) in zip(ours, theirs):
        assert (a, sub, seq) == (ta, tsub, tseq)
        # tshark lists samples of header protocols we do not decode too
        kept = [t for t in tsamples if t[1] in (1, 11, 12)]
        assert [(r, p, h) for r, p, _, _, h in mine] == [(r, p, h) for r, p, _, _, h in kept]
        assert wires == [max(fl - st, len(h)) for _, _, fl, st, h in kept]
    return theirs


def akvorado_files():
    files = sorted(AKVORADO.glob("sflow-*.pcap"))
    if not files:
        missing(f"the sampled exports are not at {AKVORADO}")
    return files


def test_akvorado_samples_match_tshark():
    need_tool("tshark")
    total = Counter()
    for path in akvorado_files():
        theirs = compare_with_tshark(path, gen.SFLOW_PORT)
        r = reports([path])
        packets = sum(t[0] for _, _, _, s in theirs for t in s if t[1] in (1, 11, 12))
        nbytes = sum(t[0] * max(t[2] - t[3], len(t[4]))
                     for _, _, _, s in theirs for t in s if t[1] in (1, 11, 12))
        assert (r["totals"]["packets"], r["totals"]["bytes"]) == (packets, nbytes), path.name
        total["samples"] += r["sampling"]["samples"]
        total["files"] += 1
    assert total["files"] == 11 and total["samples"] == 16


def test_akvorado_decodes():
    """What the real devices' samples hold, as tshark shows them: QinQ,
    VXLAN (a tunnel here), ICMPv6, IPv4 and IPv6 headers."""
    r = {p.name: report([p]) for p in akvorado_files()}
    assert r["sflow-data-encap-vxlan.pcap"]["tunnels"]["vxlan"]["packets"] == 1
    assert r["sflow-data-icmpv6.pcap"]["transport"]["ipv6"]["icmpv6"] == 1
    assert r["sflow-data-qinq.pcap"]["payload"]["ipv4"]["packets"] == 4096
    assert r["sflow-data-sflow-raw-ipv4.pcap"]["payload"]["ipv4"]["packets"] == 2
    assert r["sflow-data-1140.pcap"]["payload"]["ipv6"]["packets"] == 3072


# -- a real agent: pmacctd -----------------------------------------------------------

agent = _load("sflow_agent", TESTS / "sflow_agent.py")


def need_pmacctd():
    need_tool("pmacctd", "Debian package pmacct")
    need_tool("tshark")
    need_tool("editcap")


def exported_subset(original, sflow_pcap, port, out, snaplen=128):
    """The frames of ``original`` that pmacctd exported, found by matching
    tshark's decode of every sample (header bytes and frame_length) with
    each frame's first bytes, cut to the header length as the agent cut
    them, written to ``out``. Returns (exported, not exported) counts."""
    want = Counter()
    for _, _, _, samples in tshark_samples(sflow_pcap, port):
        for _, _, fl, _, h in samples:
            want[(h, fl)] += 1
    frames, skipped = [], 0
    with open_capture(str(original)) as cap:
        for ts, lt, wire, data in cap:
            key = (data[:snaplen], wire + 4)        # frame_length counts the FCS
            if want[key]:
                want[key] -= 1
                frames.append((ts, data[:snaplen], wire))
            else:
                skipped += 1
    assert +want == Counter(), "samples that match no frame"
    agent.write_pcap(out, frames)
    return frames, skipped


def pmacct_exact_check(tmp_path, original):
    """pmacctd at 1 in 1 over ``original`` + filler: the report of its
    samples equals the exact report of the frames it exported, cut to 128
    bytes, figure by figure (truncated_chain moves to sampling.cut)."""
    src = tmp_path / "in.pcap"
    agent.with_filler(str(original), str(src))
    sflow = tmp_path / "sflow.pcap"
    assert agent.export(str(src), 1, str(sflow), str(tmp_path)) > 0
    port = tshark_port(sflow)
    compare_with_tshark(sflow, port)
    subset = tmp_path / "subset.pcap"
    frames, skipped = exported_subset(src, sflow, port, subset)
    exported = len(frames)
    got = reports([sflow], port)
    exact = analyze_paths([str(subset)], Options(DecodeOptions(client_key="off"))).report()
    for k in ("totals", "carrier", "payload", "ipv6", "tunnels", "share", "transport",
              "addresses", "decode"):
        assert got[k] == exact[k], k
    eh, xh = dict(got["extension_headers"]), dict(exact["extension_headers"])
    ga, xa = dict(eh.pop("anomalies")), dict(xh.pop("anomalies"))
    assert eh == xh
    assert ga.pop("truncated_chain") + got["sampling"]["cut"]["chains_cut"] == \
        xa.pop("truncated_chain")
    assert ga == xa
    assert got["sampling"]["rates"] == {"1": exported}
    assert all(iv["half_width"] == 0 for k, iv in got["sampling"]["intervals"].items()
               if k != "tunnels" and iv)
    real = [f for f in frames if f[1] != agent.FILLER_FRAME]
    return got, real, skipped


def tshark_port(path):
    out = subprocess.run([need_tool("tshark"), "-r", str(path), "-c", "1", "-T", "fields",
                          "-e", "udp.dstport"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_pmacct_rate_one_equals_exact_on_the_sample(tmp_path):
    need_pmacctd()
    got, real, skipped = pmacct_exact_check(tmp_path, SAMPLES / "mixed.pcap")
    # pmacctd exports IP frames only, and not all of them (none in QinQ)
    assert 2800 < len(real) < 2868
    assert got["tunnels"]["6in4"]["packets"] > 0 and got["tunnels"]["teredo"]["packets"] > 0


REAL = ["nDPI/6in4tunnel.pcap", "zeek/ping6-in-ipv4.pcap"]


@pytest.mark.parametrize("rel", REAL)
def test_pmacct_rate_one_equals_exact_on_real_captures(tmp_path, rel):
    need_pmacctd()
    path = SHARED / "captures" / rel
    if not path.is_file():
        missing(f"{path} is missing (the capture corpus of ../shared)")
    got, real, _ = pmacct_exact_check(tmp_path, path)
    assert len(real) == len(agent.read_frames(path, agent.exportable))
    assert got["ipv6"]["tunnelled"]["packets"] > 0


RUNS = 40
RUN_FRAMES = 25_000
COVERED = ("ipv6_packets", "ipv6_bytes", "carrier_ipv6_packets", "carrier_ipv6_bytes",
           "native_packets", "native_bytes")


@pytest.fixture(scope="module")
def bench_parts(tmp_path_factory):
    """40 different inputs of the benchmark mix (benchmarks/generate.py),
    25,000 frames each, cut to the 128 bytes pmacctd exports."""
    need_pmacctd()
    out = tmp_path_factory.mktemp("bench-sflow")
    big = out / "bench.pcap"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--frames",
                    str(RUNS * RUN_FRAMES), "--seed", "6", "--out", str(big), "-q"],
                   check=True)
    subprocess.run([need_tool("editcap"), "-s", "128", "-c", str(RUN_FRAMES), str(big),
                    str(out / "part.pcap")], check=True)
    big.unlink()
    os.unlink(str(big) + ".json") if os.path.exists(str(big) + ".json") else None
    parts = sorted(p for p in out.glob("part_*.pcap"))
    assert len(parts) == RUNS
    return parts


def test_pmacct_exportable_rule(bench_parts, tmp_path):
    """The rule `exportable` uses is what pmacctd does, on the benchmark mix."""
    src = tmp_path / "in.pcap"
    agent.with_filler(str(bench_parts[0]), str(src))
    sflow = tmp_path / "s.pcap"
    agent.export(str(src), 1, str(sflow), str(tmp_path))
    frames, _ = exported_subset(src, sflow, tshark_port(sflow), tmp_path / "sub.pcap")
    real = [f for f in frames if f[1] != agent.FILLER_FRAME]
    rule = agent.read_frames(bench_parts[0], agent.exportable)
    assert [(d, w) for _, d, w in real] == [(d, w) for _, d, w in rule]
    assert len(real) > 20_000


@pytest.mark.parametrize("rate", [16, 256])
def test_pmacct_intervals_cover_the_truth(bench_parts, tmp_path, rate):
    """At 1 in ``rate`` the true share lies inside the stated 95% interval
    for each headline share in at least 90% of the 40 inputs."""
    def one(i):
        part = bench_parts[i]
        work = tmp_path / f"r{i}"
        work.mkdir()
        sflow = work / "s.pcap"
        agent.export(str(part), rate, str(sflow), str(work))
        return sflow
    with ThreadPoolExecutor(8) as ex:
        exported = list(ex.map(one, range(RUNS)))
    inside = Counter()
    samples = []
    for i, sflow in enumerate(exported):
        agent.write_pcap(tmp_path / f"t{i}.pcap", agent.read_frames(bench_parts[i],
                                                                    agent.exportable))
        truth = analyze_paths([str(tmp_path / f"t{i}.pcap")],
                              Options(DecodeOptions(client_key="off"))).report()
        got = report([sflow], tshark_port(sflow))
        s = got["sampling"]
        assert set(s["rates"]) == {str(rate)}
        samples.append(s["samples"])
        ivs = s["intervals"]
        true = {"ipv6_packets": truth["share"]["ipv6_packets"],
                "ipv6_bytes": truth["share"]["ipv6_bytes"],
                "carrier_ipv6_packets": truth["share"]["carrier_ipv6_packets"],
                "carrier_ipv6_bytes": truth["share"]["carrier_ipv6_bytes"],
                "native_packets": truth["ipv6"]["native"]["packets"]
                / truth["payload"]["ipv6"]["packets"],
                "native_bytes": truth["ipv6"]["native"]["bytes"]
                / truth["payload"]["ipv6"]["bytes"]}
        for name in COVERED:
            iv = ivs[name]
            inside[name] += iv["low"] <= true[name] <= iv["high"]
            assert 0 < iv["half_width"] < 0.5
    print(f"rate {rate}: samples per run {min(samples)}..{max(samples)}; inside {dict(inside)}")
    for name in COVERED:
        assert inside[name] >= 0.9 * RUNS, (name, inside[name])
