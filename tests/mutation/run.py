"""The mutation check of issue 18: plant one-line defects, one at a time,
and see which tests kill each.

Each mutant is a (file, line as written, the defect) triple: the line must
occur exactly once in the file. The check works on a copy of the tree (the
working tree is never touched, so other work and test runs can go on): for
each mutant the copy's file is changed, the test files named for it run
(pytest -x, in a fresh process), the file is restored, and the first failing
test is recorded. A mutant that no test kills is a hole in the suite.

    python tests/mutation/run.py [NAME...]     (default: every mutant)

Prints one line per mutant and exits 1 if any survived. """

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("IPV6FLOW_SHARED") or SOURCE.parent / "shared")

# name: (file, original line, mutated line, test files)
MUTANTS = {
    # -- the three that survived the audit --------------------------------
    "merge-partial-and": (
        "ipv6flow/options.py",
        "self.interrupted or other.interrupted, None,",
        "self.interrupted and other.interrupted, None,",
        ["tests/test_summary.py", "tests/test_engines.py"]),
    "echo-reply-source-is-client": (
        "ipv6flow/analysis/population.py",
        "ICMP_SIDE[257 + 129 + 1] = _SIDE_DST",
        "ICMP_SIDE[257 + 129 + 1] = _SIDE_SRC",
        ["tests/test_population.py"]),
    "text-percent-truncated": (
        "ipv6flow/report/text.py",
        'return f"{100.0 * part / whole:6.1f}%"',
        'return f"{int(1000.0 * part / whole) / 10:6.1f}%"',
        ["tests/test_golden.py"]),
    "text-packet-percent-of-bytes": (
        "ipv6flow/report/text.py",
        'line = f"{label:<{w}}{_n(p):>13} {_pct(p, self.tp)}"',
        'line = f"{label:<{w}}{_n(p):>13} {_pct(p, self.tb)}"',
        ["tests/test_golden.py"]),
    # -- capture --------------------------------------------------------------
    "pcap-nanosecond-as-micro": (
        "ipv6flow/capture/pcap.py",
        'b"\\x4d\\x3c\\xb2\\xa1": ("<", 1_000_000_000),',
        'b"\\x4d\\x3c\\xb2\\xa1": ("<", 1_000_000),',
        ["tests/test_capture.py"]),
    "pcap-record-reader-raises-at-once": (
        "ipv6flow/capture/pcap.py",
        "            sec, frac, caplen, wirelen = unpack(buf, pos)\n",
        "            sec, frac, caplen, wirelen = unpack(buf, pos)\n"
        "            raise self._too_long(count + 1, base + pos + self.offset_base, caplen)\n",
        ["tests/test_fast.py"]),
    "pcapng-tsresol-power-of-two-as-ten": (
        "ipv6flow/capture/pcapng.py",
        "units = 1 << (resol & 0x7F) if resol & 0x80 else 10 ** resol",
        "units = 10 ** (resol & 0x7F) if resol & 0x80 else 10 ** resol",
        ["tests/test_capture.py"]),
    # -- decode ---------------------------------------------------------------
    "qinq-ethertype-wrong": (
        "ipv6flow/decode/registry.py",
        "ETHERTYPE_QINQ = 0x88A8",
        "ETHERTYPE_QINQ = 0x88A9",
        ["tests/test_decode.py", "tests/test_samples.py", "tests/test_tshark.py"]),
    "gre-sequence-flag-ignored": (
        "ipv6flow/decode/encap.py",
        "hlen += 4 * (bool(flags & GRE.CHECKSUM) + bool(flags & GRE.KEY) + bool(flags & GRE.SEQ))",
        "hlen += 4 * (bool(flags & GRE.CHECKSUM) + bool(flags & GRE.KEY))",
        ["tests/test_decode.py", "tests/test_samples.py", "tests/test_tshark.py"]),
    "unique-local-is-fd00-only": (
        "ipv6flow/decode/addresses.py",
        '("unique_local", "fc00::/7"),           # RFC 4193',
        '("unique_local", "fd00::/8"),           # RFC 4193',
        ["tests/test_decode.py", "tests/test_samples.py", "tests/test_tshark.py"]),
    # -- fast -------------------------------------------------------------------
    "teredo-needs-both-ports": (
        "ipv6flow/fast/kernel.py",
        "on_port = (sport[t] == UDP_PORT_TEREDO) | (dport[t] == UDP_PORT_TEREDO)",
        "on_port = (sport[t] == UDP_PORT_TEREDO) & (dport[t] == UDP_PORT_TEREDO)",
        ["tests/test_fast.py", "tests/test_samples.py"]),
    # -- analysis ---------------------------------------------------------------
    "nat64-destinations-are-clients": (
        "ipv6flow/analysis/nat64.py",
        '"ipv4_destinations": len(tr.v4),',
        '"ipv4_destinations": len(tr.clients),',
        ["tests/test_nat64.py"]),
    "sketch-merge-minimum": (
        "ipv6flow/analysis/sketch.py",
        "np.maximum(self.registers, other.registers, out=self.registers)",
        "np.minimum(self.registers, other.registers, out=self.registers)",
        ["tests/test_population.py"]),
    # -- summary and reports ------------------------------------------------------
    "carrier-byte-share-from-payload": (
        "ipv6flow/summary.py",
        '"carrier_ipv6_bytes": _share(c["carrier"]["ipv6"]["bytes"], cip_b),',
        '"carrier_ipv6_bytes": _share(c["payload"]["ipv6"]["bytes"], cip_b),',
        ["tests/test_samples.py", "tests/test_cli.py"]),
    "csv-byte-share-of-packets": (
        "ipv6flow/report/csvout.py",
        '_share(v6["bytes"], v4["bytes"] + v6["bytes"]),',
        '_share(v6["bytes"], v4["packets"] + v6["packets"]),',
        ["tests/test_outputs.py"]),
}


def run(name, root):
    rel, old, new, tests = MUTANTS[name]
    path = root / rel
    text = path.read_text()
    if text.count(old) != 1:
        return f"{name}: the line is not in {rel} exactly once (update the mutant)", None
    try:
        path.write_text(text.replace(old, new))
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                            "-o", "addopts=", *tests], cwd=root, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                                    IPV6FLOW_SHARED=str(SHARED)))
        took = time.monotonic() - t0
    finally:
        path.write_text(text)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", r.stdout, re.M)
    if r.returncode == 0:
        return f"{name}: SURVIVED ({rel}; ran {' '.join(tests)}, {took:.0f} s)", False
    return f"{name}: killed by {failed[0] if failed else 'rc ' + str(r.returncode)} " \
           f"({took:.0f} s)", True


def main(names):
    survived = 0
    with tempfile.TemporaryDirectory(prefix="ipv6flow-mutants-") as tmp:
        root = Path(tmp) / "tree"
        # the tree as it is, with the compiled helper built in place
        shutil.copytree(SOURCE, root, ignore=shutil.ignore_patterns(
            ".git", "__pycache__", ".hypothesis", ".pytest_cache", "*.egg-info", "build"))
        for name in names or MUTANTS:
            line, killed = run(name, root)
            print(line, flush=True)
            survived += killed is False
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
