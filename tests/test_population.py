"""Clients, flows and interface identifiers (issue 8; analysis/population.py).

Truth by construction: ``samples/clients/generate.py`` builds populations
of IPv4-only, IPv6-only, dual-stack, Teredo and link-local-only clients
behind known MACs (privacy addresses rotating within a /64, EUI-64 hosts,
known flows) and writes what each figure must be for each client key. Below
the exact threshold every figure must match exactly, under both decoders;
above it, within the stated bound (3 relative standard errors); and the
figures must not depend on --workers or on merging reports of parts.

The interface-identifier classifier is checked against an independent
one-address-at-a-time oracle written here from addr6's rules; the sketches
for order independence; the sort-based set helpers against np.unique.
"""

import importlib.util
import ipaddress
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipv6flow.options import Options
from ipv6flow.analysis import population
from ipv6flow.decode import columns as dcols
from ipv6flow.analysis.sketch import HashSketch, hash_words, relative_error
from ipv6flow import arrays
from ipv6flow.arrays import distinct, distinct_rows, unique_inverse
from ipv6flow.decode import DecodeOptions
from ipv6flow.engine.local import analyze_paths
from ipv6flow.engine.parallel import analyze_parallel
from ipv6flow.summary import Summary

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("popgen", ROOT / "samples/clients/generate.py")
popgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(popgen)

MODES = ("auto", "mac", "ipv4", "ipv6-64")
CATEGORIES = ("total", "ipv4_only", "ipv6_only", "dual_stack", "link_local_only", "ipv6_capable")


def write(tmp_path, name, raw=False, **kw):
    data, truth = popgen.build(raw=raw, **kw)
    path = tmp_path / name
    path.write_bytes(data)
    return path, truth


def report(path, mode="auto", decoder="fast", interval=1.0, prefixes=()):
    opts = DecodeOptions(client_key=mode, client_prefixes=tuple(prefixes))
    return analyze_paths([str(path)], Options(opts, interval, decoder)).report()


def check_exact(rep, truth, mode):
    c, t = rep["clients"], truth["clients"][mode]
    assert {k: c[k] for k in t} == t
    assert c["exact"] and c["relative_standard_error"] == 0.0
    assert c["share_ipv6_capable"] == t["ipv6_capable"] / t["total"]
    ii = c["interface_ids"]
    assert {k: ii[k] for k in truth["interface_ids"]} == truth["interface_ids"]
    f = rep["flows"]
    assert (f["ipv4"], f["ipv6"], f["total"]) == (truth["flows"]["ipv4"], truth["flows"]["ipv6"],
                                                  truth["flows"]["ipv4"] + truth["flows"]["ipv6"])
    assert {k: v for k, v in f["by_tunnel"].items() if v} == truth["flows"]["by_tunnel"]
    assert f["exact"] and f["unkeyed_frames"] == 0
    assert {str(b["start"]): b["flows"] for b in rep["timeseries"]["bins"]} == truth["bins"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("pop")
    return {"eth": write(d, "eth.pcap"), "raw": write(d, "raw.pcap", raw=True)}


@pytest.mark.parametrize("decoder", ["fast", "reference"])
@pytest.mark.parametrize("link", ["eth", "raw"])
@pytest.mark.parametrize("mode", MODES)
def test_figures_match_the_truth_exactly(small, link, mode, decoder):
    path, truth = small[link]
    if mode not in truth["clients"]:          # no MAC on a raw link: no client at all
        rep = report(path, mode, decoder)
        assert rep["clients"]["total"] == 0
        assert rep["clients"]["frames"]["attributed"] == 0
        return
    check_exact(report(path, mode, decoder), truth, mode)


def test_fixture_truth_is_the_population_we_meant(small):
    # guard against a generator that drifts into testing nothing
    _, t = small["eth"]
    mac = t["clients"]["mac"]
    assert (mac["ipv4_only"], mac["ipv6_only"], mac["dual_stack"], mac["link_local_only"]) \
        == (6, 5, 7 + 3, 2)
    assert t["clients"]["ipv6-64"]["total"] == 5 + 7 + 1      # Teredo clients share a /64
    assert t["interface_ids"]["addresses"]["eui64"] == 3       # clients 0, 4, 8 of 12 in /64s
    assert t["interface_ids"]["addresses"]["random"] == 9 * 3  # three privacy addresses each


def test_client_prefixes_decide_the_side(small):
    path, truth = small["eth"]
    inside = ("10.0.0.0/8", "100.64.0.0/10", "2001:db8:1000::/36", "fe80::/10")
    rep = report(path, prefixes=inside)
    c = rep["clients"]
    assert {k: c[k] for k in CATEGORIES} == {k: truth["clients"]["mac"][k] for k in CATEGORIES}
    assert c["client_prefixes"] == list(inside)
    # with only the IPv4 clients' network, their IPv6 traffic has no client side
    rep = report(path, prefixes=("10.0.0.0/8",))
    c = rep["clients"]
    assert (c["total"], c["ipv4_only"], c["ipv6_capable"]) == (6 + 7, 6 + 7, 0)


def test_cli_text_headline_and_options(small):
    path, truth = small["eth"]
    t = truth["clients"]["mac"]
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--no-progress",
                        "--client-key", "mac", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pct = f"{100 * t['ipv6_capable'] / t['total']:.1f}%"
    assert f"IPv6-capable clients: {t['ipv6_capable']} of {t['total']} ({pct})" in r.stdout
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--client-prefix",
                        "10.0.0.300/8", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "--client-prefix" in r.stderr and "Traceback" not in r.stderr


# -- above the exact threshold ---------------------------------------------------------

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("popbig")
    return write(d, "big.pcap", v4=3000, v6=3000, dual=4000, teredo=100, ll=100, flows=3)


@pytest.mark.parametrize("decoder", ["fast", "reference"])
def test_sketched_figures_are_within_the_stated_bound(big, decoder):
    path, truth = big
    rep = report(path, "mac", decoder, interval=60.0)
    c, t = rep["clients"], truth["clients"]["mac"]
    assert t["total"] > population.THRESHOLD
    assert not c["exact"] and c["relative_standard_error"] == relative_error(population.P)
    bound = 3 * c["relative_standard_error"] * t["total"]
    for k in CATEGORIES:
        assert abs(c[k] - t[k]) <= bound, (k, c[k], t[k])
    f = rep["flows"]
    for fam in ("ipv4", "ipv6"):
        assert abs(f[fam] - truth["flows"][fam]) <= 3 * f["relative_standard_error"] \
            * truth["flows"][fam], fam
    ii = c["interface_ids"]
    want = truth["interface_ids"]["addresses"]["random"]
    assert abs(ii["addresses"]["random"] - want) <= 3 * ii["relative_standard_error"] * want
    assert ii["addresses"]["eui64"] == truth["interface_ids"]["addresses"]["eui64"]  # exact still


def test_workers_and_merge_give_the_same_figures(big, tmp_path):
    path, _ = big
    opts = DecodeOptions(client_key="mac")
    whole = analyze_paths([str(path)], Options(opts)).report()
    # record-aligned parts over two processes
    parts = analyze_parallel([str(path)], Options(opts, workers=2),
                             min_part=1 << 20).report()
    for k in ("clients", "flows", "sketches"):
        assert parts[k] == whole[k], k
    # the capture cut in two files, reported separately, then merged (JSON round trip)
    data = path.read_bytes()
    cut = _record_boundary(data, len(data) // 3)
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(data[:cut])
    b.write_bytes(data[:24] + data[cut:])
    ra = analyze_paths([str(a)], Options(opts)).report()
    rb = analyze_paths([str(b)], Options(opts, decoder="reference")).report()
    merged = Summary.from_report(json.loads(json.dumps(ra))).merge(
        Summary.from_report(json.loads(json.dumps(rb)))).to_report()
    for k in ("clients", "flows", "sketches"):
        assert merged[k] == whole[k], k
    assert merged["timeseries"]["bins"] == whole["timeseries"]["bins"]


def _record_boundary(data, near):
    off = 24
    while off < near:
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    return off


def test_merge_refuses_different_client_keys(small):
    path, _ = small["eth"]
    a = Summary.from_report(report(path, "mac"))
    b = Summary.from_report(report(path, "ipv4"))
    with pytest.raises(ValueError, match="client keys"):
        a.merge(b)
    assert Summary(1.0).merge(a).to_report()["clients"] == a.to_report()["clients"]


# -- interface identifiers against an oracle ------------------------------------------

SERVER_PORTS = {21, 22, 23, 25, 49, 53, 80, 110, 123, 179, 220, 389, 443, 547, 993, 995, 1194,
           3306, 5060, 5061, 5432, 6446, 8080}
SERVER_PORTS |= {int(str(p), 16) for p in SERVER_PORTS}


def oracle_iid_class(iid: bytes) -> str:
    """addr6's decision list, one address at a time."""
    w = struct.unpack("!4H", iid)
    hi32, lo32 = int.from_bytes(iid[:4], "big"), int.from_bytes(iid[4:], "big")
    if iid[3] == 0xFF and iid[4] == 0xFE:
        return "eui64"
    if hi32 & 0xFDFFFFFF == 0x00005EFE:
        return "isatap"
    if hi32 == 0:
        if lo32 >> 24 and lo32 & 0xFFFF:
            return "embedded_ipv4"
        if not lo32 >> 24 and (lo32 & 0xFFFF) in SERVER_PORTS:
            return "embedded_port"
        if not lo32 & 0xFF00 and lo32 >> 16 in SERVER_PORTS:
            return "embedded_port"
        if not lo32 >> 24 and lo32 & 0xFFFF:
            return "low_byte"
    if all(x <= 0x255 for x in w):
        return "embedded_ipv4"
    if iid.count(0) > 2:
        return "pattern_bytes"
    return "random"


EXAMPLES = {
    "2001:db8::211:22ff:fe33:4455": "eui64",
    "2001:db8::200:5efe:c000:201": "isatap",
    "2001:db8::5efe:c000:201": "isatap",
    "2001:db8::c000:201": "embedded_ipv4",
    "2001:db8::192:0:2:1": "embedded_ipv4",
    "2001:db8::443": "embedded_port",
    "2001:db8::80": "embedded_port",
    "2001:db8::1bb": "embedded_port",              # 443 as a number
    "2001:db8::1bc": "low_byte",
    "2001:db8::50:0": "embedded_port",             # reversed: port in the second-lowest word
    "2001:db8::1": "low_byte",
    "2001:db8::1:2": "low_byte",
    "2001:db8::1:0:0:1": "embedded_ipv4",   # four words that read as decimal bytes
    "2001:db8::a00:1:0:1234": "pattern_bytes",
    "2001:db8::3c1f:92a7:d4e8:6b05": "random",
}


@pytest.mark.parametrize("addr,cls", EXAMPLES.items())
def test_iid_examples(addr, cls):
    iid = ipaddress.IPv6Address(addr).packed[8:]
    assert oracle_iid_class(iid) == cls
    got = population.iid_classes(np.array([int.from_bytes(iid, "big")], dtype=np.uint64))
    assert population.IID_CLASSES[int(got[0])] == cls


IIDS = st.one_of(
    st.binary(min_size=8, max_size=8),
    st.tuples(st.sampled_from([0, 0x00005EFE, 0x02005EFE, 1, 0x255]),
              st.integers(0, 2**32 - 1)).map(lambda t: struct.pack("!II", *t)),
    st.tuples(st.integers(0, 0x300), st.integers(0, 0x300), st.integers(0, 0x300),
              st.integers(0, 0x300)).map(lambda t: struct.pack("!4H", *t)),
    st.tuples(st.binary(min_size=3, max_size=3), st.binary(min_size=3, max_size=3))
      .map(lambda t: t[0] + b"\xff\xfe" + t[1]),
    st.sampled_from(sorted(SERVER_PORTS)).map(lambda p: struct.pack("!QH", 0, p)[2:]),
    # zero bytes anywhere, next to the byte values where a carry would show
    st.lists(st.sampled_from([0, 0, 1, 0x7F, 0x80, 0xFE, 0xFF]), min_size=8, max_size=8)
      .map(bytes),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(IIDS, min_size=1, max_size=40))
def test_iid_classes_equal_the_oracle(iids):
    got = population.iid_classes(np.array([int.from_bytes(i, "big") for i in iids],
                                          dtype=np.uint64))
    assert [population.IID_CLASSES[int(k)] for k in got] == [oracle_iid_class(i) for i in iids]


# -- sketches and set helpers ------------------------------------------------------------

def test_sketch_is_order_and_split_independent():
    rng = np.random.default_rng(7)
    items = hash_words(rng.integers(0, 2**62, 30_000, dtype=np.int64))
    whole = HashSketch(4096, 12)
    whole.add(items)
    parts = [HashSketch(4096, 12) for _ in range(5)]
    for i, chunk in enumerate(np.array_split(rng.permutation(items), 17)):
        parts[i % 5].add(chunk)
    merged = HashSketch(4096, 12)
    for p in reversed(parts):
        merged.merge(p)
    assert not whole.exact and np.array_equal(merged.registers, whole.registers)
    assert abs(len(whole) - 30_000) <= 3 * relative_error(12) * 30_000
    again = HashSketch(4096, 12).load(json.loads(json.dumps(whole.to_json())))
    assert np.array_equal(again.registers, whole.registers)
    small = HashSketch(4096, 12)
    small.add(items[:1000])
    small.add(items[:500])
    assert small.exact and len(small) == 1000
    assert len(HashSketch(4096, 12).load(small.to_json())) == 1000


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60), st.integers(1, 5))
def test_set_helpers_equal_np_unique(values, width):
    x = np.array(values, dtype=np.int64)
    assert np.array_equal(distinct(x), np.unique(x))
    u, inv = unique_inverse(x)
    nu, nidx, ninv = np.unique(x, return_index=True, return_inverse=True)
    assert np.array_equal(u, nu) and np.array_equal(inv, ninv.reshape(-1))
    u, inv, first = unique_inverse(x, return_first=True)
    assert np.array_equal(first, nidx) and np.array_equal(inv, ninv.reshape(-1))
    rows = np.array([[v % 7 * (j + 1) % 256 for j in range(width)] for v in values],
                    dtype=np.uint8).reshape(-1, width)
    ur, rinv = distinct_rows(rows, return_inverse=True)
    nr, nrinv = np.unique(rows, axis=0, return_inverse=True)
    assert np.array_equal(ur, nr) and np.array_equal(rinv, nrinv.reshape(-1))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["int64", "uint64"]), st.integers(1, 1500),
       st.sampled_from([1, 8, 40, 1 << 20, 1 << 62]), st.integers(0, 2**32), st.booleans())
def test_unique_inverse_paths_equal_np_unique(dtype, pool, scale, seed, tiny_table):
    # every path of unique_inverse: a small span (bincount), few distinct
    # values over a wide span (hash table, or searchsorted when the table
    # collides: forced by a two-slot table), many distinct (searchsorted);
    # negative int64 and uint64 past 2**63 included
    rng = np.random.default_rng(seed)
    values = rng.integers(0, scale, pool, dtype=np.uint64) * np.uint64(3)
    if dtype == "uint64":
        values = values + np.uint64(2**63 if scale > 2**40 else 0)
    x = rng.choice(values, size=int(rng.integers(1, 5000)))
    x = x.astype(np.uint64).view(np.int64) if dtype == "int64" else x.astype(np.uint64)
    saved = arrays._TABLE_BITS
    arrays._TABLE_BITS = 1 if tiny_table else saved
    try:
        u, inv = unique_inverse(x)
    finally:
        arrays._TABLE_BITS = saved
    nu, ninv = np.unique(x, return_inverse=True)
    assert u.dtype == x.dtype
    assert np.array_equal(u, nu) and np.array_equal(inv, ninv.reshape(-1))


def test_random_addresses_keep_memory_bounded():
    # a batch of a million random clients and flows: every sketch is past
    # its threshold and holds 4 KiB of registers, whatever comes next
    rng = np.random.default_rng(3)
    n = 1_000_000
    cols = dcols.empty_columns()
    cols = {k: np.zeros(n, dtype=v.dtype) for k, v in cols.items()}
    cols["fam"][:] = 2
    cols["has6"][:] = True
    cols["v6s_hi"][:] = (rng.integers(0, 2**61, n, dtype=np.int64).astype(np.uint64)
                         | np.uint64(1 << 61))
    cols["v6s_lo"][:] = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    cols["v6d_hi"][:] = np.uint64(0x20010DB8FFFF0000)
    cols["v6d_lo"][:] = np.uint64(0x443)
    cols["proto"][:] = 6
    cols["sport"][:] = rng.integers(1024, 65536, n)
    cols["dport"][:] = 443
    cols["icmp"][:] = -1
    cols["v4s"][:] = cols["v4d"][:] = cols["mac_s"][:] = cols["mac_d"][:] = -1
    cols["ts"][:] = 1.7e9 + np.arange(n) * 1e-4
    pop = population.Population("ipv6-64")
    for i in range(0, n, 100_000):
        pop.observe({k: v[i:i + 100_000] for k, v in cols.items()}, 60.0)
    clients, flows = pop.report()
    assert abs(clients["total"] - n) <= 3 * relative_error(population.P) * n
    assert abs(flows["ipv6"] - n) <= 3 * relative_error(population.P) * n
    sketches = [pop.clients.all, pop.clients.v4, pop.clients.v6, *pop.flows.values(),
                *pop.by_tunnel.values(), *pop.iid_total,
                *(s for pair in pop.iid.values() for s in pair),
                *(s for pair in pop.bins.values() for s in pair)]
    held = sum(s.registers.nbytes if s.registers is not None else s.hashes.nbytes
               for s in sketches)
    assert held <= len(sketches) * max(4096, population.THRESHOLD * 8)
    assert sum(1 for s in sketches if not s.exact) >= 6


def test_no_clients_leaves_the_rest_unchanged(small):
    path, _ = small["eth"]
    with_ = report(path)
    without = report(path, mode=population.OFF)
    for k in ("clients", "flows", "sketches"):
        assert k in with_ and k not in without
    for b in with_["timeseries"]["bins"]:
        del b["flows"]
    assert {k: v for k, v in with_.items() if k not in ("clients", "flows", "sketches", "tool")} \
        == {k: v for k, v in without.items() if k != "tool"}
    with pytest.raises(ValueError, match="client keys"):
        Summary.from_report(with_).merge(Summary.from_report(without))
    r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--no-progress",
                        "--no-clients", str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "IPv6 share of IP traffic" in r.stdout
    assert "clients" not in r.stdout


def _echo_pairs(path):
    """One ICMPv6 and one ICMP echo request/reply pair, with the replies
    first in time for neither; and a router solicitation."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_RS, IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    a6, b6 = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
    a4, b4 = "02:00:00:00:00:1a", "02:00:00:00:00:1b"
    rs = "02:00:00:00:00:2a"
    frames = [
        Ether(src=a6, dst=b6) / IPv6(src="2001:db8:a::1", dst="2001:db8:b::1")
        / ICMPv6EchoRequest(id=7, seq=1),
        Ether(src=b6, dst=a6) / IPv6(src="2001:db8:b::1", dst="2001:db8:a::1")
        / ICMPv6EchoReply(id=7, seq=1),
        Ether(src=a4, dst=b4) / IP(src="192.0.2.1", dst="198.51.100.1") / ICMP(type=8),
        Ether(src=b4, dst=a4) / IP(src="198.51.100.1", dst="192.0.2.1") / ICMP(type=0),
        Ether(src=rs, dst="33:33:00:00:00:02") / IPv6(src="2001:db8:c::5", dst="ff02::2")
        / ICMPv6ND_RS(),
    ]
    for i, f in enumerate(frames):
        f.time = 1700000000 + i
    wrpcap(str(path), frames)


@pytest.mark.parametrize("decoder", ["fast", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_echo_pairs_count_the_requester_only(tmp_path, decoder, mode):
    # the side that asks (echo request, router solicitation) is the client,
    # the side that answers an echo is not: two echo pairs and an RS give 3
    # clients, one IPv6-only and one IPv4-only requester and the soliciting host
    path = tmp_path / "echo.pcap"
    _echo_pairs(path)
    # (the ipv4 key counts IPv4 clients only, the ipv6-64 key IPv6 ones)
    want = {"auto": (3, 2, 1, 0), "mac": (3, 2, 1, 0), "ipv4": (1, 0, 1, 0),
            "ipv6-64": (2, 2, 0, 0)}[mode]
    c = report(path, mode, decoder)["clients"]
    assert (c["total"], c["ipv6_only"], c["ipv4_only"], c["dual_stack"]) == want
    attributed = {"auto": 5, "mac": 5, "ipv4": 2, "ipv6-64": 3}[mode]
    assert c["frames"] == {"attributed": attributed, "unattributed": 5 - attributed}


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("block", [7, 64, 1000])
@pytest.mark.parametrize("pending", [5, 1 << 19])
def test_flow_bins_admitted_in_order_of_first_appearance(path, block, pending, monkeypatch):
    """Past MAX_FLOW_BINS, the bins that get a flow count are the first
    ones to appear, and the frames of the others are counted untracked,
    however the rows come in batches (and with or without the compiled
    hash tables, and however often waiting flows are added to the bins)."""
    from conftest import fast_path
    monkeypatch.setattr(population, "MAX_FLOW_BINS", 3)
    monkeypatch.setattr(population, "BIN_PENDING", pending)
    rng = np.random.default_rng(5)
    n = 1000
    bins = rng.choice([9, 4, 7, 1, 8, 2], n)          # first appearances decide
    order = list(dict.fromkeys(bins.tolist()))
    c = {"fam": np.full(n, 2), "tunnel": np.zeros(n, dtype=np.int64),
         "ts": bins * 60.0 + 1.5, "proto": np.full(n, 17),
         "sport": rng.integers(1024, 1100, n), "dport": np.full(n, 53),
         "icmp": np.full(n, -1), "v4s": np.full(n, -1), "v4d": np.full(n, -1),
         "has6": np.ones(n, dtype=bool),
         "v6s_hi": np.full(n, 0x20010DB8 << 32, dtype=np.uint64),
         "v6s_lo": rng.integers(1, 5, n).astype(np.uint64),
         "v6d_hi": np.full(n, 0x20010DB9 << 32, dtype=np.uint64),
         "v6d_lo": np.ones(n, dtype=np.uint64),
         "mac_s": np.full(n, -1), "mac_d": np.full(n, -1)}
    with fast_path(path):
        p = population.Population("auto")
        for k in range(0, n, block):
            p.observe({name: col[k:k + block] for name, col in c.items()}, 60.0)
    assert sorted(p.bins) == sorted(order[:3])
    kept = np.isin(bins, order[:3])
    assert p.untracked == int(np.count_nonzero(~kept))
    for b in order[:3]:
        rows = bins == b
        flows = {(int(s), int(lo)) for s, lo in zip(c["sport"][rows], c["v6s_lo"][rows])}
        assert p.bin_flows(b) == {"ipv4": 0, "ipv6": len(flows)}


def test_bin_flows_waiting_or_not_give_the_same_sketches(monkeypatch):
    """Flows of batches spread over many bins wait to be added to their
    bins' sketches; how many wait before they are added (every batch,
    or once at the end) changes no sketch, exact or past BIN_THRESHOLD."""
    rng = np.random.default_rng(8)
    n = 80_000
    bins = rng.choice(np.arange(40), n) * 60.0 + 3.0
    fam6 = rng.random(n) < 0.8
    c = {"fam": np.where(fam6, 2, 1), "tunnel": rng.choice([0, 0, 0, 5, 7], n),
         "ts": bins, "proto": np.full(n, 6),
         "sport": rng.integers(1024, 1024 + 3000, n), "dport": np.full(n, 443),
         "icmp": np.full(n, -1),
         "v4s": np.where(fam6, -1, rng.integers(1, 40, n)),
         "v4d": np.where(fam6, -1, 0x0A000001), "has6": fam6,
         "v6s_hi": np.where(fam6, 0x20010DB8 << 32, 0).astype(np.uint64),
         "v6s_lo": np.where(fam6, rng.integers(1, 40, n), 0).astype(np.uint64),
         "v6d_hi": np.where(fam6, 0x20010DB9 << 32, 0).astype(np.uint64),
         "v6d_lo": np.where(fam6, 1, 0).astype(np.uint64),
         "mac_s": np.full(n, -1), "mac_d": np.full(n, -1)}
    got = {}
    for pending in (3, 1 << 19):
        monkeypatch.setattr(population, "BIN_PENDING", pending)
        p = population.Population("auto")
        for k in range(0, n, 4096):
            p.observe({name: col[k:k + 4096] for name, col in c.items()}, 60.0)
        p.flush(60.0)
        got[pending] = p.sketches(60.0)["bins"]
    assert got[3] == got[1 << 19]
    assert len(got[3]) == 40
    # some bins past the exact stage, some exact (the IPv4 side is smaller)
    assert any("hll" in b["ipv6"] for b in got[3]) and any("exact" in b["ipv4"] for b in got[3])


def _flows_per_bin(rows, interval, compiled, seed_bins=()):
    """A Population's flows per time bin after ``_bin_flows`` of the rows
    (ts, keyed, coded), by _core.c ``bin_flows`` or by the numpy form:
    every bin's two sketches, the order of the bins, untracked rows."""
    p = population.Population("auto")
    for idx in seed_bins:
        p.bins[idx] = population._bin_sketches()
    saved = population.bin_flows
    population.bin_flows = population.BUILT_BIN_FLOWS if compiled else None
    try:
        for ts, keyed, coded in rows:
            p._bin_flows(ts, keyed, coded, interval, None, None)
        p._flush_bins()
    finally:
        population.bin_flows = saved
    return ({idx: [sk.hashes.tolist() if sk.exact else sk.registers.tolist() for sk in pair]
             for idx, pair in p.bins.items()}, list(p.bins), list(p._slots), p.untracked)


@pytest.mark.parametrize("interval", [60.0, 1.0, 0.001])
def test_flows_per_bin_compiled_as_numpy(interval, monkeypatch):
    """_core.c bin_flows (a batch over several time bins) leaves the flows
    per bin, the bins admitted and their order, and the rows counted
    untracked as the numpy form does: runs of bins and scattered ones,
    repeated flows, both families, clocks past int64 once scaled, and the
    cap on bins reached in the middle of a batch."""
    if population.BUILT_BIN_FLOWS is None:
        pytest.skip("the compiled core is not built")
    rng = np.random.default_rng(int(interval * 1000))
    batches = []
    for n, spread in ((64, 10.0), (3000, 600.0), (20000, 7200.0), (5000, 3.0)):
        ts = 1.7e9 + np.sort(rng.random(n)) * spread
        ts[rng.random(n) < 0.2] += rng.integers(-10**6, 10**6, 1)[0]   # another capture's clock
        coded = rng.integers(0, 500, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        batches.append((ts, rng.random(n) < 0.9, coded))
    odd = batches[1][0].copy()
    odd[::97] = 1e300
    batches.append((odd, np.ones(len(odd), dtype=bool), batches[1][2]))
    assert _flows_per_bin(batches, interval, True) == _flows_per_bin(batches, interval, False)
    monkeypatch.setattr(population, "MAX_FLOW_BINS", 40)
    got = _flows_per_bin(batches, interval, True, seed_bins=(-5,))
    assert len(got[1]) == 40 and got[3] > 0
    assert got == _flows_per_bin(batches, interval, False, seed_bins=(-5,))
