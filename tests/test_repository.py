"""Checks of the repository itself, not of the analyzer."""

import re
import subprocess

from conftest import ROOT

# Absolute paths of one machine (home and work folders of this workplace and
# of the usual systems); written split so this file does not match itself.
MACHINE_PATH = re.compile("(?<![\\w.])(/" "work/|/" "root/|/" "home/|/" "Users/|[A-Z]:\\\\" "Users)")


def test_no_absolute_machine_path_in_the_repository():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    files = [f for f in files if f and (ROOT / f).is_file()]
    assert len(files) > 100
    found = []
    for name in files:
        data = (ROOT / name).read_bytes()
        if b"\0" in data[:8192]:
            continue                                   # a capture, not text
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{n}: {line.strip()[:120]}")
    assert not found, "machine paths:\n" + "\n".join(found)
