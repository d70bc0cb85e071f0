"""The fast decoder against the reference decoder, frame for frame, and the
two reports byte for byte (``--decoder fast`` vs ``--decoder reference``)."""

import csv
import subprocess
import sys

import pytest

from ipv6flow.capture import open_capture
from ipv6flow.decode import DecodeOptions, decode_frame, parse_prefix
from ipv6flow.errors import CaptureError
from ipv6flow.decode import columns as dcols
from ipv6flow.fast import frame_columns, frame_keys
from ipv6flow.decode.frame import frame_key

from conftest import CAPTURES, SAMPLES, fast_path, fast_paths, need_speedups

ALL = sorted(str(p.relative_to(CAPTURES)) for p in CAPTURES.rglob("*")
             if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md"))
OPTS = DecodeOptions(sixrd_prefixes=(parse_prefix("2a01:e30::/28"),))


def _read_side(path, each):
    """Run EACH over the capture; (its items, the CaptureError's text or None)."""
    out = []
    try:
        with open_capture(path) as cap:
            each(cap, out)
    except CaptureError as e:
        return out, str(e)
    return out, None


def compare(path, opts=OPTS):
    """Mismatching frames (1-based numbers, after the fast path's name),
    frames compared, fallback count (the most of the fast paths) and the
    capture's error (None when it read to the end). A frame's figures are
    its ``frame_key`` and its client and flow columns
    (``analysis.population``). Every fast path (the compiled pass where it
    is built, and the numpy kernel) and the reference decoder must read the
    same frames, give the same figures and end with the same error, if any."""
    fallback = dict.fromkeys(fast_paths(), 0)
    name = [None]

    def fast_side(cap, out):
        for batch in cap.iter_batches():
            keys, fb = frame_keys(batch, opts)
            out.extend(zip(keys, frame_columns(batch, opts)))
            fallback[name[0]] += fb

    def ref_side(cap, out):
        for rec in cap:
            f = decode_frame(rec.linktype, rec.data, rec.wirelen, opts)
            out.append((frame_key(f),
                        dcols.frame_columns(f, rec.linktype, rec.data, rec.ts,
                                                 rec.wirelen)))

    ref, ref_err = _read_side(path, ref_side)
    bad = []
    for name[0] in fallback:
        with fast_path(name[0]):
            fast, fast_err = _read_side(path, fast_side)
        assert fast_err == ref_err, name[0]
        assert len(fast) == len(ref), name[0]
        bad += [(f"{name[0]} {i + 1}", a, b) for i, (a, b) in enumerate(zip(fast, ref))
                if a != b]
    return bad, len(ref), max(fallback.values()), ref_err


def _manifest_packets():
    with open(CAPTURES / "MANIFEST.tsv", newline="") as fh:
        return {r["file"]: r["packets"] for r in csv.DictReader(fh, delimiter="\t")}


@pytest.mark.usefixtures("corpus")
@pytest.mark.parametrize("name", ALL)
def test_fast_equals_reference_on_real_captures(name):
    bad, n, fb, err = compare(str(CAPTURES / name))
    assert not bad, "\n".join(f"frame {i}: fast {a} reference {b}" for i, a, b in bad[:20])
    packets = _manifest_packets()[name]
    if packets.isdigit():
        # every frame the MANIFEST counts was compared (a reader that failed
        # early would compare none), and a readable file raised nothing
        assert (n, err) == (int(packets), None)
    else:
        assert n == 0 and err and name in err, err


@pytest.mark.parametrize("name", ["mixed.pcap", "mixed.pcapng", "mixed.pcap.gz"])
def test_fast_equals_reference_on_samples(name):
    bad, n, fb, err = compare(str(SAMPLES / name))
    assert n == 2948 and not bad and err is None, bad[:5]
    # the kernel must carry the bulk: the sample is built of odd cases, yet
    # most of it stays on the fast path
    assert fb < 0.15 * n


def test_large_real_captures_stay_on_the_fast_path():
    for name in ("PcapPlusPlus/tls2.pcap", "suricata-verify/denial6-6.pcap",
                 "nDPI/1kxun.pcap"):
        bad, n, fb, err = compare(str(CAPTURES / name))
        assert not bad and n > 1000 and err is None and fb <= n // 500, (name, fb, n)


@pytest.mark.parametrize("path", [SAMPLES / "mixed.pcap", CAPTURES / "arkime/arkime_synthetic.pcap",
                                  CAPTURES / "PcapPlusPlus/pcapng-example.pcapng.zst",
                                  SAMPLES / "nat64" / "malformed-dns.pcap",
                                  SAMPLES / "nat64" / "nsp-dns64-64.pcap",
                                  CAPTURES / "nDPI/fuzz-2006-06-26-2594.pcap",
                                  CAPTURES / "zeek/dns-edns-ecs.pcap"])
def test_reports_are_byte_identical(path):
    # the fast decoder with the compiled pass (where built) and with the
    # numpy kernel (IPV6FLOW_NUMPY_KERNEL), and the reference decoder
    import os
    out = {}
    for d, env in (("fast", {}), ("fast", {"IPV6FLOW_NUMPY_KERNEL": "1"}), ("reference", {})):
        r = subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", "--format", "json",
                            "--stats", "--6rd-prefix", "2a01:e30::/28", "--decoder", d, str(path)],
                           capture_output=True, timeout=300, env=dict(os.environ, **env))
        assert r.returncode == 0, r.stderr
        said = [line for line in r.stderr.splitlines() if line.startswith(b"decoder ")]
        out[said[0].split(b":")[0]] = r.stdout           # "decoder fast (compiled core)"
    assert len(out) == len(fast_paths()) + 1, list(out)
    assert len(set(out.values())) == 1, list(out)


_BATCH_DIGEST = """
import hashlib, sys
from ipv6flow.capture import open_capture
from ipv6flow.capture import pcap
h = hashlib.sha256()
for path in sys.argv[1:]:
    with open_capture(path) as cap:
        for b in cap.iter_batches():
            for a in (b.offsets, b.caplens, b.wirelens, b.ts, b.linktypes):
                h.update(a.tobytes())
print(pcap._walk_pcap is None, h.hexdigest())
"""


def test_compiled_record_walk_equals_pure_python():
    import os
    paths = [str(SAMPLES / "mixed.pcap"), str(CAPTURES / "nDPI/fuzz-2021-10-13.pcap"),
             str(CAPTURES / "PcapPlusPlus/tls2.pcap"), str(CAPTURES / "dpkt/truncated_dns_2.pcap")]
    out = {}
    for pure in ("", "1"):
        env = dict(os.environ, IPV6FLOW_PURE_PYTHON=pure)
        r = subprocess.run([sys.executable, "-c", _BATCH_DIGEST, *paths], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out[pure] = r.stdout.split()
    assert out["1"][0] == "True"                     # the fallback really ran
    if out[""][0] == "True":
        need_speedups()
    assert out[""][1] == out["1"][1]


def test_address_class_kernel_equals_reference():
    import ipaddress
    import numpy as np
    from ipv6flow.decode.addresses import ADDRESS_CLASSES, address_class
    from ipv6flow.fast.kernel import classes_of
    rng = np.random.default_rng(7)
    addrs = [rng.bytes(16) for _ in range(3000)]
    # every /16 once, and the edges of every class prefix
    addrs += [t.to_bytes(2, "big") + rng.bytes(14) for t in range(0, 65536, 7)]
    for text in ("::", "::1", "::2", "::ffff:1.2.3.4", "::fffe:1.2.3.4", "64:ff9b::1.2.3.4",
                 "64:ff9b::1:0:0", "64:ff9b:1::", "64:ff9b:1:ffff::1", "64:ff9b:2::",
                 "2001::", "2001:0:ffff::", "2001:1::", "2001:db8::", "2001:db9::",
                 "3fff::", "3fff:fff:ffff::", "3fff:1000::", "fe80::", "febf::", "fec0::",
                 "fc00::", "fdff::", "fe00::", "ff00::", "1fff::", "2000::", "4000::"):
        addrs.append(ipaddress.IPv6Address(text).packed)
    words = np.frombuffer(b"".join(addrs), dtype=">u8").astype(np.uint64).reshape(-1, 2)
    low = words[:, 1].copy()
    got = [ADDRESS_CLASSES[c] for c in classes_of(words[:, 0].copy(), lambda i: low[i])]
    assert got == [address_class(a) for a in addrs]


def test_teredo_by_port_alone_on_both_decoders(tmp_path):
    # Teredo qualification (RFC 4380 5.2.1): a router solicitation from a
    # link-local address to the server's port 3544 and the advertisement
    # back, and a bubble between link-local addresses; no 2001::/32 address
    # inside, so only the port says Teredo, on either side of the datagram.
    # A datagram to port 3544 that holds no IPv6 packet is plain UDP.
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6ND_RS, IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    from ipv6flow.capture import open_capture
    frames = [
        Ether() / IP(src="192.0.2.9", dst="198.51.100.1") / UDP(sport=51000, dport=3544)
        / IPv6(src="fe80::8000:ffff:ffff:fffd", dst="ff02::2") / ICMPv6ND_RS(),
        Ether() / IP(src="198.51.100.1", dst="192.0.2.9") / UDP(sport=3544, dport=51000)
        / IPv6(src="fe80::8000:f227:bec4:4c30", dst="fe80::8000:ffff:ffff:fffd") / ICMPv6ND_RA(),
        Ether() / IP(src="192.0.2.9", dst="203.0.113.7") / UDP(sport=51000, dport=3544)
        / IPv6(src="fe80::1", dst="fe80::2", nh=59),
        Ether() / IP(src="192.0.2.9", dst="198.51.100.1") / UDP(sport=51000, dport=3544)
        / (b"\x45" + bytes(39)),
    ]
    path = tmp_path / "teredo-port.pcap"
    wrpcap(str(path), frames)
    want = [("ipv4", "ipv6", "teredo")] * 3 + [("ipv4", "ipv4", "none")]
    with open_capture(str(path)) as cap:
        batch = next(cap.iter_batches())
        keys, fallback = frame_keys(batch, OPTS)
    assert [k[:3] for k in keys] == want
    # the kernel decided them all, no frame went to the reference decoder
    assert fallback == 0
    with open_capture(str(path)) as cap:
        ref = [decode_frame(r.linktype, r.data, r.wirelen, OPTS) for r in cap]
    assert [(f.carrier, f.payload, f.tunnel) for f in ref] == want
