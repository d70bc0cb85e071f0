#!/usr/bin/env python3
"""SHA-256 of every report ipv6flow makes on the bundled and shared inputs.

    python tests/report_hashes.py OUT.tsv [--bench FILE.pcap]

A refactoring that must not change a report by a byte (issue 13) is
checked by running this before and after and diffing the two files:
``diff before.tsv after.tsv`` prints the reports that changed.

Inputs: every capture of ``samples/`` (every ``--format``, both decoders,
with ``--dns-report``, and the programme sample with its ``--org-map``),
every real capture of ``../shared/captures`` (MANIFEST order), the sFlow
and 4over6 captures of ``../shared`` (``--sflow``, ``--aftr``), the hostile
corpus (written into a temporary folder by ``tests/hostile/generate.py``)
and ``merge`` of two sample reports. ``--bench`` adds the JSON report of a
benchmark capture (run as a separate process, as the benchmark runs it).

Everything runs in this process through Click's test runner with
``--workers 1``, so the whole table takes a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IPV6FLOW_SHARED", ROOT.parent / "shared"))
FORMATS = ("text", "json", "csv", "prometheus", "html", "translation-csv")


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def _stable(data):
    """The report without the one line that is the run's own clock
    (Prometheus ``ipv6flow_last_run_timestamp_seconds``)."""
    return b"".join(line for line in data.splitlines(keepends=True)
                    if not line.startswith(b"ipv6flow_last_run_timestamp_seconds"))


class Table:
    """Runs ``ipv6flow`` in-process and keeps one row per report."""

    def __init__(self):
        from ipv6flow.cli import main
        self.main = main
        self.runner = CliRunner()
        self.rows = []

    def run(self, label, args):
        args = [_rel(a) if isinstance(a, Path) else str(a) for a in args]
        res = self.runner.invoke(self.main, args, catch_exceptions=True)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            out = f"EXCEPTION {type(res.exception).__name__}: {res.exception}".encode()
        else:
            # the report, and the one-line error of an unreadable input
            out = _stable(res.stdout_bytes) + b"\0" + (res.stderr_bytes or b"")
        opts = re.sub(re.escape(tempfile.gettempdir()) + r"/[^/ ]+", "TMP", " ".join(args))
        self.rows.append((label, opts, res.exit_code, _digest(out)))
        return res

    def analyze(self, label, path, *opts, formats=("text", "json")):
        for fmt in formats:
            self.run(label, ["analyze", path, "--workers", 1, "--format", fmt, *opts])


def _rel(path):
    """``path`` relative to the project root (the reports hold the paths
    they were given, so that two checkouts give the same bytes)."""
    return os.path.relpath(path, ROOT)


def samples(table):
    for path in sorted((ROOT / "samples").rglob("*")):
        if path.suffix not in (".pcap", ".pcapng", ".gz"):
            continue
        label = _rel(path)
        table.analyze(label, path, formats=FORMATS)
        table.analyze(label, path, "--decoder", "reference", formats=("json",))
        table.analyze(label, path, "--dns-report", formats=("text", "json"))
    programme = ROOT / "samples" / "programme"
    table.analyze("samples/programme/programme.pcap", programme / "programme.pcap",
                  "--org-map", programme / "orgs.csv", formats=("text", "json", "html"))


def shared(table):
    manifest = SHARED / "captures" / "MANIFEST.tsv"
    with open(manifest, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = SHARED / "captures" / row["file"]
            table.analyze(_rel(path), path)
    for sub, opts in (("sampled", ("--sflow",)), ("translation", ())):
        for path in sorted((SHARED / sub).rglob("*")):
            if path.suffix in (".pcap", ".pcapng"):
                table.analyze(_rel(path), path, *opts)


def hostile(table):
    # The reports name their inputs as given: run inside the temporary
    # folder with bare names, so that the bytes do not depend on its path.
    with tempfile.TemporaryDirectory() as tmp, _cwd(tmp):
        subprocess.run([sys.executable, str(ROOT / "tests" / "hostile" / "generate.py"),
                        "--out", tmp], check=True, stdout=subprocess.DEVNULL)
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
        for name, entry in sorted(manifest.items()):
            if not entry.get("big"):
                table.analyze("hostile/" + name, name, formats=("json",))


def merged(table):
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
        table.run("merge-input", ["analyze", "samples/mixed.pcap", "--workers", 1,
                                  "--format", "json", "-o", a])
        table.run("merge-input", ["analyze", "samples/nat64/wkp.pcap", "--workers", 1,
                                  "--format", "json", "-o", b])
        for fmt in ("text", "json", "csv", "prometheus"):
            table.run("merge", ["merge", a, b, "--format", fmt])


@contextlib.contextmanager
def _cwd(path):
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def bench(path):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        subprocess.run([sys.executable, "-m", "ipv6flow.cli", "analyze", str(path),
                        "--format", "json", "-o", str(out)], check=True)
        return ("bench", Path(path).name + " --format json", 0, _digest(out.read_bytes()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--bench", action="append", default=[])
    args = ap.parse_args()
    os.chdir(ROOT)
    table = Table()
    samples(table)
    merged(table)
    if (SHARED / "captures" / "MANIFEST.tsv").exists():
        shared(table)
    hostile(table)
    rows = table.rows + [bench(p) for p in args.bench]
    with open(args.out, "w") as fh:
        for label, opts, code, digest in rows:
            fh.write(f"{label}\t{opts}\t{code}\t{digest}\n")
    print(f"{len(rows)} reports hashed into {args.out}")


if __name__ == "__main__":
    main()
