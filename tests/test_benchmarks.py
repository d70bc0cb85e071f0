"""The benchmark scripts' own checks: the stage profile that RESULTS.md
quotes (benchmarks/stages.py, read back by run.py) names functions that
exist and accounts for the whole run."""

import re
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import run  # noqa: E402

ROW = re.compile(r"^\| (?P<stage>[^|*]+?) \| (?P<s>[0-9.]+) \| (?P<share>[0-9.]+)% \| (?P<note>[^|]*)\|$")


def test_stage_table_covers_the_run_with_live_function_names():
    # stages.py patches every function it names: a stale name (a function
    # renamed or moved) fails the script before the run
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stages.py"),
                        str(ROOT / "samples" / "mixed.pcap"), "--6rd-prefix", "2a01:e30::/28"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {m["stage"]: (float(m["s"]), m["note"].strip())
            for m in map(ROW.match, r.stdout.splitlines()) if m}
    total = run.stages_total(r.stdout)
    assert total is not None and total > 0
    # the sample's 3,000 frames fit one batch: one call of the decoder pass
    assert rows["decoder pass (compiled single pass, or numpy kernel)"][1] == "1 calls"
    assert rows["clients, flows, interface ids"][1] == "1 calls"
    assert rows["start-up: imports, options, opening the file"][0] > 0
    # the rows (each rounded to a millisecond) add up to the run
    assert abs(sum(s for s, _ in rows.values()) - total) <= 0.0005 * len(rows) + 1e-9
    assert "CPU of the run: user" in r.stdout


def test_stages_total_reads_the_runs_line():
    table = "| stage | s | share | |\n| **the run** (this script's start to exit) | **0.385** | 100% | |"
    assert run.stages_total(table) == 0.385
    assert run.stages_total("no table") is None
