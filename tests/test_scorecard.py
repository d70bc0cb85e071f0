"""The scorecard (--org-map): organisations, adoption, blocking, against the
truth samples/programme/generate.py writes by construction, under both
decoders, with workers, and through merge of the capture cut in two; and
org maps, well-formed and hostile."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLES, need_module

from ipv6flow.analysis import orgmap

PROG = SAMPLES / "programme"
_spec = importlib.util.spec_from_file_location("programme_gen", PROG / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
TRUTH = json.loads((PROG / "programme.truth.json").read_text())
SECTIONS = ("organisations", "adoption", "blocking")


def run(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", *map(str, args)],
                       capture_output=True, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


def analyze(*extra, path=PROG / "programme.pcap"):
    r = run("analyze", "--format", "json", "--org-map", PROG / "orgs.csv", path, *extra)
    return r.stdout


def _subset(truth, mine, where, problems):
    if isinstance(truth, dict):
        for k in truth:
            if k not in mine:
                problems.append(f"{where}.{k}: missing")
            else:
                _subset(truth[k], mine[k], f"{where}.{k}", problems)
    elif isinstance(truth, list):
        if len(truth) != len(mine):
            problems.append(f"{where}: {len(truth)} entries in the truth, {len(mine)} here")
        for i, (t, m) in enumerate(zip(truth, mine)):
            _subset(t, m, f"{where}[{i}]", problems)
    elif isinstance(truth, float) and isinstance(mine, float):
        if abs(truth - mine) > 1e-12:
            problems.append(f"{where}: truth {truth}, ipv6flow {mine}")
    elif truth != mine:
        problems.append(f"{where}: truth {truth!r}, ipv6flow {mine!r}")


def check_truth(rep):
    problems = []
    for k in SECTIONS:
        _subset(TRUTH[k], rep[k], k, problems)
    assert not problems, "\n".join(problems[:40])


def test_generator_is_deterministic_and_committed(tmp_path):
    subprocess.run([sys.executable, str(PROG / "generate.py"), "--out", str(tmp_path)],
                   check=True, timeout=120)
    for name in ("programme.pcap", "orgs.csv", "programme.truth.json"):
        assert (tmp_path / name).read_bytes() == (PROG / name).read_bytes(), name


def test_truth_is_not_trivial():
    rows = {r["organisation"]: r for r in TRUTH["organisations"]["rows"]}
    assert rows["Ministry of Health"]["nat64"]["packets"] > 0
    assert rows["Province A"]["ipv6"]["tunnelled"]["packets"] > 0
    assert rows["Province A Hospital"]["clients"]["total"] == 1      # longest prefix
    assert rows["Province B"]["names"] == {"ipv6_ready": 0, "dns64_only": 0, "ipv4_only": 1,
                                           "no_answer": 1}
    assert rows["Ministry of Health"]["names"]["dns64_only"] == 1
    assert rows[None]["payload"]["ipv4"]["packets"] > 0
    ov = TRUTH["adoption"]["overall"]
    assert ov["traffic_packets"]["on_the_wire"] > ov["traffic_packets"]["end_to_end"] > 0
    assert 0 < ov["ipv6_preferred"]["end_to_end"] < ov["ipv6_preferred"]["on_the_wire"] < 1
    names = [d["names"] for d in TRUTH["blocking"]["overall"]["destinations"]]
    assert [] in names and ["alias.old.example", "old.example"] in names


@pytest.fixture(scope="module")
def fast_report():
    return analyze("--decoder", "fast", "--workers", "1")


def test_fast_matches_truth(fast_report):
    rep = json.loads(fast_report)
    check_truth(rep)
    import jsonschema
    schema = json.loads((PROG.parents[1] / "ipv6flow" / "schema" / "report.schema.json")
                        .read_text())
    jsonschema.validate(rep, schema)


def test_reference_and_workers_are_byte_identical(fast_report):
    assert analyze("--decoder", "reference", "--workers", "1") == fast_report
    assert analyze("--decoder", "fast", "--workers", "2") == fast_report


def test_no_clients_keeps_the_scorecard(fast_report):
    rep = json.loads(analyze("--no-clients"))
    assert "clients" not in rep
    for k in SECTIONS:
        assert rep[k] == json.loads(fast_report)[k]


def _cut(tmp_path, at):
    cap = gen.build()
    paths = []
    for i, frames in enumerate((cap.frames[:at], cap.frames[at:])):
        part = gen.Capture()
        part.frames = frames
        p = tmp_path / f"part{i}.pcap"
        p.write_bytes(part.pcap())
        paths.append(p)
    return paths


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_merge_of_a_capture_cut_in_two(tmp_path, decoder):
    # the DNS answers are all in the first part: names reach the second
    # part's traffic only through the merge
    at = 40
    paths = _cut(tmp_path, at)
    reps = []
    for p in paths:
        out = tmp_path / (p.stem + ".json")
        out.write_bytes(analyze("--decoder", decoder, path=p))
        reps.append(out)
    merged = json.loads(run("merge", *reps).stdout)
    check_truth(merged)
    # and merge with the map lists its organisations and their groups too
    again = json.loads(run("merge", "--org-map", PROG / "orgs.csv", *reps).stdout)
    for k in SECTIONS:
        assert again[k] == merged[k]


def test_text_and_csv(fast_report, tmp_path):
    rep = tmp_path / "r.json"
    rep.write_bytes(fast_report)
    text = run("merge", "--format", "text", rep).stdout.decode()
    assert "Scorecard: 5 organisations (9 prefixes)" in text
    assert "moving these would move" in text
    csv_text = run("merge", "--format", "csv", "--by", "organisation", rep).stdout.decode()
    import csv
    rows = list(csv.DictReader(csv_text.splitlines()))
    assert [r["organisation"] for r in rows] == [
        r["organisation"] or "(no organisation)" for r in TRUTH["organisations"]["rows"]]
    for r, t in zip(rows, TRUTH["organisations"]["rows"]):
        assert int(r["ipv6_bytes"]) == t["payload"]["ipv6"]["bytes"]
        assert int(r["nat64_packets"]) == t["nat64"]["packets"]
        assert int(r["clients_ipv4_only"]) == t["clients"]["ipv4_only"]
    r = run("analyze", "--format", "csv", "--by", "organisation", PROG / "programme.pcap",
            check=False)
    assert r.returncode != 0 and b"--org-map" in r.stderr


def test_organisations_not_seen_are_named_not_listed(tmp_path):
    """An organisation with no frame and no name in the capture has no row
    and is named in ``not_seen``; one with names only (its domain's names
    in the DNS, no frame) keeps its row; the same under both decoders,
    two workers, and a merge of the capture cut where the names are all in
    the first part (the second part alone does not see them)."""
    omap = tmp_path / "orgs.csv"
    omap.write_text((PROG / "orgs.csv").read_text()
                    + "172.31.0.0/16,Silent Agency,agency,silent.example\n"
                    + "2001:db8:7777::/48,Names Only,agency,mof.gov.example\n"
                    + "2001:db8:eeee::/48,\x1b[31mQuiet <b>,agency,\n")
    reports = [run("analyze", "--format", "json", "--org-map", omap, "--decoder", d,
                   "--workers", w, PROG / "programme.pcap").stdout
               for d, w in (("fast", "1"), ("reference", "1"), ("fast", "2"))]
    assert reports[1] == reports[0] == reports[2]
    rep = json.loads(reports[0])
    truth_rows = {r["organisation"]: r for r in TRUTH["organisations"]["rows"]}
    rows = {r["organisation"]: r for r in rep["organisations"]["rows"]}
    assert set(rows) == set(truth_rows) | {"Names Only"}
    assert rep["organisations"]["not_seen"] == ["\x1b[31mQuiet <b>", "Silent Agency"]
    quiet = rows["Names Only"]
    assert quiet["payload"] == {"ipv4": {"packets": 0, "bytes": 0},
                                "ipv6": {"packets": 0, "bytes": 0}}
    assert quiet["names"] == truth_rows["Ministry of Finance"]["names"]
    assert sum(quiet["names"].values()) > 0
    for k in ("adoption", "blocking"):
        assert [a["organisation"] for a in rep[k]["by_organisation"]] == \
            [r["organisation"] for r in rep["organisations"]["rows"]]
    # the other figures are those of the map without the three
    for name, t in truth_rows.items():
        _subset_ok = []
        _subset(t, rows[name], name, _subset_ok)
        assert not _subset_ok, _subset_ok[:5]
    # merge: the state keeps every organisation, the report is made again
    parts = []
    for i, p in enumerate(_cut(tmp_path, 40)):
        out = tmp_path / f"part{i}.json"
        out.write_bytes(run("analyze", "--format", "json", "--org-map", omap, p).stdout)
        parts.append(out)
    second = json.loads(parts[1].read_text())
    assert "Names Only" in second["organisations"]["not_seen"]
    merged = json.loads(run("merge", *parts).stdout)
    for k in SECTIONS:
        assert merged[k] == rep[k], k
    # shown, escaped, in the text and the page
    text = run("merge", "--format", "text", *parts).stdout.decode()
    assert "not seen (no frame, no name; not listed): 2: " in text and "Silent Agency" in text
    assert "\x1b" not in text
    page = run("merge", "--format", "html", *parts).stdout.decode()
    assert "Silent Agency" in page and "&lt;b&gt;" in page and "\x1b" not in page


def test_without_org_map_the_report_has_no_scorecard():
    rep = json.loads(run("analyze", "--format", "json", PROG / "programme.pcap").stdout)
    assert not set(SECTIONS) & set(rep) and "scorecard_state" not in rep


# -- org maps -----------------------------------------------------------------

def _load(tmp_path, text, mode="w"):
    p = tmp_path / "map.csv"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, newline="")
    return orgmap.load(str(p))


@pytest.mark.parametrize("text,where,what", [
    ("10.0.0.0/8,A\n10.0.0.0/33,B\n", "line 2", "not an IPv4 or IPv6 CIDR"),
    ("10.0.0.1/8,A\n", "line 1", "host bits set"),
    ("# comment\n\n10.0.0.0/8\n", "line 3", "found 1 field"),
    ("10.0.0.0/8,A,g,d,extra\n", "line 1", "found 5 fields"),
    ("10.0.0.0/8, \n", "line 1", "organisation is empty"),
    ("10.0.0.0/8,A\n10.0.0.0/8,B\n", "line 2", "already given to 'A' on line 1"),
    ('10.0.0.0/8,"A\n', "line 1", "not valid CSV"),
    ("10.0.0.0/8,A,g,bad domain!\n", "line 1", "not a domain name"),
    ("10.0.0.0/8," + "x" * 300 + "\n", "line 1", "longer than 200"),
])
def test_bad_maps_name_the_line(tmp_path, text, where, what):
    with pytest.raises(ValueError) as e:
        _load(tmp_path, text)
    assert str(e.value).startswith(where + ":") and what in str(e.value)


def test_bad_map_on_the_command_line_is_one_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"\xef\xbb\xbfprefix,organisation\r\n10.0.0.0/8,A\r\n\xff\xfe,B\r\n")
    r = run("analyze", "--org-map", p, PROG / "programme.pcap", check=False)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "line 3: not UTF-8 text" in err


def test_bom_crlf_quotes_escapes_and_overlaps(tmp_path):
    text = ("\ufeffprefix,organisation,group,domain\r\n"
            '"10.0.0.0/8","Evil \x1b[31mRed\x1b[0m, Inc.",grp,"a.example; b.example"\r\n'
            "10.1.0.0/16,Inner,,\r\n"
            "10.1.2.0/24,Innermost\r\n"
            '2001:db8::/32,"Evil \x1b[31mRed\x1b[0m, Inc."\r\n'
            "2001:db8:1::/48,Inner\r\n"
            "2001:db8:1:2:3::/80,Deep\r\n")
    m = _load(tmp_path, text)
    assert m.names == ["Evil \x1b[31mRed\x1b[0m, Inc.", "Inner", "Innermost", "Deep"]
    assert m.domains[0] == ["a.example", "b.example"] and m.groups[0] == "grp"
    v4 = np.array([0x0A000001, 0x0A010001, 0x0A010201, 0x0B000000, -1], dtype=np.int64)
    assert m.lookup4(v4).tolist() == [0, 1, 2, -1, -1]
    addrs = ["2001:db8::1", "2001:db8:1::1", "2001:db8:1:2:3::9", "2001:db8:1:2:4::9",
             "2001:db9::1"]
    import ipaddress
    ints = [int(ipaddress.IPv6Address(a)) for a in addrs]
    hi = np.array([x >> 64 for x in ints], dtype=np.uint64)
    lo = np.array([x & (2 ** 64 - 1) for x in ints], dtype=np.uint64)
    assert m.lookup6(hi, lo, np.ones(5, dtype=bool)).tolist() == [0, 1, 3, 1, -1]


def test_lookup_matches_a_plain_longest_prefix_match(tmp_path):
    import ipaddress
    import random
    rng = random.Random(5)
    rows, nets = [], []
    for i in range(3000):
        if rng.random() < 0.5:
            ln = rng.choice([8, 12, 16, 20, 24, 28, 32])
            net = ipaddress.ip_network((rng.getrandbits(32) >> (32 - ln) << (32 - ln), ln))
        else:
            ln = rng.choice([16, 32, 40, 48, 56, 64, 72, 96, 112, 128])
            base = (0x20010DB8 << 96) | (rng.getrandbits(64) << 32)
            base = base if ln > 32 else 0x20010DB8 << 96
            net = ipaddress.ip_network((base >> (128 - ln) << (128 - ln), ln))
        if any(n == net for n, _ in nets):
            continue
        nets.append((net, f"org{i % 97}"))
        rows.append(f"{net},org{i % 97}")
    m = _load(tmp_path, "\n".join(rows) + "\n")
    probes4 = [int(n.network_address) + rng.randrange(n.num_addresses) for n, _ in nets
               if n.version == 4] + [rng.getrandbits(32) for _ in range(500)]
    probes6 = [int(n.network_address) + rng.randrange(n.num_addresses) for n, _ in nets
               if n.version == 6] + [(0x20010DB8 << 96) | rng.getrandbits(96) for _ in range(500)]

    def expect(x, version):
        best = None
        for n, name in nets:
            if n.version == version and (x >> (n.max_prefixlen - n.prefixlen)) == \
                    (int(n.network_address) >> (n.max_prefixlen - n.prefixlen)):
                if best is None or n.prefixlen > best[0]:
                    best = (n.prefixlen, name)
        return m.names.index(best[1]) if best else -1

    got4 = m.lookup4(np.array(probes4, dtype=np.int64)).tolist()
    assert got4 == [expect(x, 4) for x in probes4]
    hi = np.array([x >> 64 for x in probes6], dtype=np.uint64)
    lo = np.array([x & (2 ** 64 - 1) for x in probes6], dtype=np.uint64)
    got6 = m.lookup6(hi, lo, np.ones(len(probes6), dtype=bool)).tolist()
    assert got6 == [expect(x, 6) for x in probes6]


def test_terminal_escapes_in_names_never_reach_the_terminal(tmp_path):
    p = tmp_path / "evil.csv"
    p.write_text('10.1.0.0/16,"Evil\x1b]0;pwned\x07 \x1b[2J"\n', newline="")
    r = run("analyze", "--org-map", p, PROG / "programme.pcap")
    out = r.stdout.decode()
    assert "\x1b" not in out and "\x07" not in out and "Evil\\x1b]0;pwned\\x07" in out


def test_too_many_organisations_is_refused_early(tmp_path, monkeypatch):
    monkeypatch.setattr(orgmap, "MAX_ORGS", 100)
    text = "".join(f"10.{i >> 8}.{i & 255}.0/24,org{i}\n" for i in range(1000))
    with pytest.raises(ValueError, match="line 101: more than 100 organisations"):
        _load(tmp_path, text)
    monkeypatch.setattr(orgmap, "MAX_ROWS", 500)
    text = "".join(f"10.{i >> 8}.{i & 255}.0/24,org{i % 7}\n" for i in range(1000))
    with pytest.raises(ValueError, match="line 501: more than 500 rows"):
        _load(tmp_path, text)


def test_prometheus_org_metrics(fast_report):
    need_module("prometheus_client", "pip install 'ipv6flow[test]'")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from ipv6flow.report import prometheus
    rep = json.loads(fast_report)
    fams = {f.name: f for f in text_string_to_metric_families(prometheus.render(rep, now=1.0))}
    got = {(s.labels["organisation"], s.labels["definition"], s.labels["view"]): s.value
           for s in fams["ipv6flow_org_adoption_ratio"].samples}
    for a in TRUTH["adoption"]["by_organisation"]:
        org = a["organisation"] or ""
        for k in ("traffic_packets", "flows", "clients", "ipv6_preferred"):
            for v in ("on_the_wire", "end_to_end"):
                if a[k][v] is None:
                    assert (org, k, v) not in got
                else:
                    assert got[(org, k, v)] == pytest.approx(a[k][v], abs=1e-12)
    bytes6 = {s.labels["organisation"]: s.value for s in fams["ipv6flow_org_bytes"].samples
              if s.labels["family"] == "ipv6"}
    for r in TRUTH["organisations"]["rows"]:
        assert bytes6[r["organisation"] or ""] == r["payload"]["ipv6"]["bytes"]


def test_watch_with_org_map(tmp_path):
    d = tmp_path / "caps"
    d.mkdir()
    for i, p in enumerate(_cut(tmp_path, 40)):
        (d / f"cap{i}.pcap").write_bytes(p.read_bytes())
    out = tmp_path / "out"
    args = ["watch", d, "--once", "--newest-settle", "0", "--settle", "0", "--out-dir", out]
    run(*args, "--org-map", PROG / "orgs.csv")
    merged = json.loads((out / "merged.ipv6flow.json").read_text())
    check_truth(merged)
    other = tmp_path / "other.csv"
    other.write_text("10.0.0.0/8,Everyone\n")
    r = run(*args, "--org-map", other, check=False)
    assert r.returncode != 0 and b"another --org-map" in r.stderr


def test_a_large_map_loads_and_finds(tmp_path):
    n = 60_000
    rows = ["prefix,organisation"]
    for i in range(n):
        if i % 2:
            rows.append(f"{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}.0/24,Org {i % 997}")
        else:
            rows.append(f"2001:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::/48,Org {i % 997}")
    rows.append("0.0.0.0/0,Everyone")
    rows.append("2001::/16,Everyone")
    m = _load(tmp_path, "\n".join(rows) + "\n")
    assert m.prefixes == n + 2 and len(m.names) == 998
    probes = [(i, f"{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}.77") for i in range(1, n, 2)]
    import ipaddress
    addr = np.array([int(ipaddress.IPv4Address(a)) for _, a in probes] + [0x7F000001],
                    dtype=np.int64)
    got = m.lookup4(addr).tolist()
    assert [m.names[g] for g in got[:-1]] == [f"Org {i % 997}" for i, _ in probes]
    assert m.names[got[-1]] == "Everyone"
    v6 = [int(ipaddress.IPv6Address(f"2001:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::9"))
          for i in range(0, n, 2)] + [int(ipaddress.IPv6Address("2001:ffff:ffff::1"))]
    hi = np.array([x >> 64 for x in v6], dtype=np.uint64)
    lo = np.array([x & (2 ** 64 - 1) for x in v6], dtype=np.uint64)
    got = m.lookup6(hi, lo, np.ones(len(v6), dtype=bool)).tolist()
    assert [m.names[g] for g in got[:-1]] == [f"Org {i % 997}" for i in range(0, n, 2)]
    assert m.names[got[-1]] == "Everyone"


def test_merge_refuses_a_report_made_without_the_map(tmp_path, fast_report):
    a = tmp_path / "with.json"
    a.write_bytes(fast_report)
    b = tmp_path / "without.json"
    b.write_bytes(run("analyze", "--format", "json", PROG / "programme.pcap").stdout)
    for args in ((a, b), (b, a), ("--org-map", PROG / "orgs.csv", b)):
        r = run("merge", *args, check=False)
        assert r.returncode == 1 and b"made with --org-map and without one" in r.stderr
        assert b"Traceback" not in r.stderr
