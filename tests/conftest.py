"""What every test module shares: where the project and ../shared are, and
one rule for a missing part.

A test whose part (a tool such as tshark or chromium, an optional Python
package, the capture corpus of ../shared, the compiled helper) is missing
skips with a reason that names the part and how to get it. Under CI
(``CI`` set to anything but empty, "0" or "false") a missing part fails the
test instead: CI installs every part (.ci/run), so a skip there would hide a
test that never ran.
"""

import importlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IPV6FLOW_SHARED") or ROOT.parent / "shared")
CAPTURES = SHARED / "captures"
SAMPLES = ROOT / "samples"


def under_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason):
    """Skip with the reason, or fail under CI."""
    if under_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def need_tool(name, hint=None):
    """The path of the command NAME, or a skip (a failure under CI)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed" + (f" ({hint})" if hint else ""))
    return path


def need_module(name, hint=None):
    """The imported module NAME, or a skip (a failure under CI)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing(f"Python module {name} is missing: {e}" + (f" ({hint})" if hint else ""))


def need_corpus():
    """The capture corpus of ../shared, or a skip (a failure under CI)."""
    if not (CAPTURES / "MANIFEST.tsv").is_file():
        missing(f"the capture corpus is not at {CAPTURES} (set IPV6FLOW_SHARED to ../shared)")
    return CAPTURES


def need_speedups():
    """The compiled helper, or a skip (a failure under CI, which builds it)."""
    return need_module("ipv6flow._speedups",
                       "build it with `python setup.py build_ext --inplace`")
