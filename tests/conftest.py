"""What every test module shares: where the project and ../shared are, and
one rule for a missing part.

A test whose part (a tool such as tshark or chromium, an optional Python
package, the capture corpus of ../shared, the compiled helper) is missing
skips with a reason that names the part and how to get it. Under CI
(``CI`` set to anything but empty, "0" or "false") a missing part fails the
test instead: CI installs every part (.ci/run), so a skip there would hide a
test that never ran.
"""

import contextlib
import importlib
import inspect
import os
import queue
import shutil
import signal
import threading
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis under CI: derandomized (a fixed seed per test) and no example
# database, so a run is the same run every time and a rare disagreement
# cannot turn CI red now and then; tests/hypothesis_long.sh runs the same
# tests on fresh random seeds, for as long as one likes.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IPV6FLOW_SHARED") or ROOT.parent / "shared")
CAPTURES = SHARED / "captures"
SAMPLES = ROOT / "samples"


def under_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


if under_ci():
    settings.load_profile("ci")


def missing(reason):
    """Skip with the reason, or fail under CI."""
    if under_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def missing_module(reason):
    """At a module's top: skip the whole module, or fail its collection
    under CI."""
    if under_ci():
        raise RuntimeError(f"CI is set but {reason}")
    pytest.skip(reason, allow_module_level=True)


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


def need_core():
    """The compiled classifier (ipv6flow/_core.c) in use, or a skip (a
    failure under CI, which builds it)."""
    from ipv6flow.fast import core
    if core.BUILT is None:
        need_module("ipv6flow._core", "build it with `python setup.py build_ext --inplace`")
        missing(f"the compiled classifier is not in use: {core.UNAVAILABLE}")
    return core.BUILT


# The fast decoder's classifiers: the compiled single pass and the numpy
# kernel (the reference decoder is the third path every test compares with).
# ``fast_paths()`` lists those present: "compiled" only where it is built and
# switched on (test_core.py fails under CI where it is not).
# IPV6FLOW_FAST_PATHS=compiled leaves the numpy kernel out (tests/sanitize.sh:
# only the compiled code is under the sanitizers there).
def fast_paths():
    from ipv6flow.fast import core
    paths = ("compiled", "numpy") if core.BUILT is not None else ("numpy",)
    only = os.environ.get("IPV6FLOW_FAST_PATHS")
    if only:
        paths = tuple(p for p in paths if p in only.split(",")) or paths
    return paths


@contextlib.contextmanager
def fast_path(name):
    """Run the fast decoder with classifier ``name`` ("compiled" or
    "numpy") inside the block (``ipv6flow.fast.core.compiled`` is the switch,
    and those of the compiled helpers of the analyses: the clients' rules,
    the HyperLogLog registers, the DNS and ICMPv6 spans, the grouping and
    parsing of DNS messages, the prefix tests, the in-place columns,
    translation's candidates, the sums and flows by time bin)."""
    from ipv6flow import arrays, compiled, fold
    from ipv6flow.analysis import dnsmsg, nat64, population, sketch, translation
    from ipv6flow.decode import addresses
    from ipv6flow import fast
    from ipv6flow.fast import core
    saved = (core.compiled, population.compiled, sketch.compiled, nat64._dns_groups,
             arrays._unique_u64, arrays._group_sum, arrays._code_groups, fast._spans,
             dnsmsg._compiled)
    saved_xlat = (addresses._prefix_any, addresses._prefix_rows, core.compact,
                  translation._xlat_candidates, fold.bin_sums, population.bin_flows)
    numpy = name == "numpy"
    addresses._prefix_any = None if numpy else addresses.BUILT_PREFIX_ANY
    addresses._prefix_rows = None if numpy else addresses.BUILT_PREFIX_ROWS
    core.compact = None if numpy else core.BUILT_COMPACT
    translation._xlat_candidates = None if numpy else translation.BUILT_CANDIDATES
    fold.bin_sums = None if numpy else fold.BUILT_BIN_SUMS
    population.bin_flows = None if numpy else population.BUILT_BIN_FLOWS
    core.compiled = None if numpy else core.BUILT or need_core()
    population.compiled = None if numpy else population.BUILT
    sketch.compiled = None if numpy else sketch.BUILT
    nat64._dns_groups = None if numpy else nat64.BUILT_DNS_GROUPS
    arrays._unique_u64 = None if numpy else compiled.core_function("unique_u64")
    arrays._group_sum = None if numpy else compiled.core_function("group_sum")
    arrays._code_groups = None if numpy else compiled.core_function("code_groups")
    fast._spans = None if numpy else fast.BUILT_SPANS
    dnsmsg._compiled = None if numpy else dnsmsg.BUILT_PARSE
    try:
        yield
    finally:
        (core.compiled, population.compiled, sketch.compiled, nat64._dns_groups,
         arrays._unique_u64, arrays._group_sum, arrays._code_groups, fast._spans,
         dnsmsg._compiled) = saved
        (addresses._prefix_any, addresses._prefix_rows, core.compact,
         translation._xlat_candidates, fold.bin_sums, population.bin_flows) = saved_xlat


ROW_ATTRS = ("carrier", "payload", "tunnel", "ntun", "proto", "v6", "ip", "v4", "l4", "l4end")


def core_disagreements(batch, opts):
    """Where the compiled pass and the numpy kernel differ on a batch: a
    row the compiled pass decides and the kernel sends to the reference
    decoder, or a row both decide with a different key, row state
    (``ROW_ATTRS``) or innermost IPv6 address. The compiled pass may send
    more rows to the reference, never decide one differently. A list of
    messages, empty when they agree (or the compiled pass is not in use)."""
    import numpy as np
    from ipv6flow.fast import core, kernel
    if core.BUILT is None:
        return []
    saved, core.compiled = core.compiled, core.BUILT
    try:
        kc, fc, rc = core.classify(batch, opts)
    finally:
        core.compiled = saved
    kn, fn_rows, rn = kernel.classify(batch, opts)
    n = len(batch)
    dc = np.ones(n, dtype=bool)
    dc[fc] = False
    dn = np.ones(n, dtype=bool)
    dn[fn_rows] = False
    out = [f"row {i}: the compiled pass decides it, the numpy kernel falls back"
           for i in np.flatnonzero(dc & ~dn).tolist()]
    both = dc & dn
    pairs = [("key", kc, kn)] + [(a, getattr(rc, a), getattr(rn, a)) for a in ROW_ATTRS]
    pairs += [(f"addr({k})", rc.addr(k), rn.addr(k)) for k in range(4)]
    for name, a, b in pairs:
        for i in np.flatnonzero(both & (a != b)).tolist()[:5]:
            out.append(f"row {i}: {name} compiled {a[i]} numpy {b[i]}")
    return out


@pytest.fixture
def corpus():
    return need_corpus()


@pytest.fixture
def tshark():
    return need_tool("tshark", "Debian package tshark")


@pytest.fixture
def capinfos():
    return need_tool("capinfos", "Debian package tshark")


def sigint_default():
    """``preexec_fn`` for a child that a test stops with SIGINT: Python
    turns SIGINT into KeyboardInterrupt only if it is not ignored when the
    interpreter starts, and a pytest started in the background (``nohup
    ... &``) passes SIGINT on ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Lines:
    """A child's stdout, line by line, with timeouts (a thread reads it)."""

    def __init__(self, proc):
        self.proc = proc
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def get(self, timeout):
        """The next line; "" at the end or after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout) or ""
        except queue.Empty:
            return ""

    def rest(self):
        """Every line not read yet, once the child has ended (for reports
        and assertion messages)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(10)
        out = []
        while not self.queue.empty():
            line = self.queue.get()
            if line is not None:
                out.append(line)
        return "\n".join(out)


def pytest_configure(config):
    # Many tests are parametrized over the corpus's files: without the
    # corpus they would collect as empty parameter sets. Under CI that is a
    # failed run, not 600 quiet skips.
    if under_ci() and not (CAPTURES / "MANIFEST.tsv").is_file():
        raise pytest.UsageError(f"CI is set but the capture corpus is not at {CAPTURES} "
                                "(set IPV6FLOW_SHARED to ../shared)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # A parametrized test whose list came out empty is skipped by pytest:
    # under CI it fails instead, since a list that should hold cases holds none.
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped and "empty parameter set" in str(report.longrepr):
        report.outcome = "failed"


def _uses_the_corpus(item):
    """Does the test name the corpus (in its code or in its parameters)?"""
    fn = getattr(item, "function", None)
    try:
        if fn is not None and "CAPTURES" in inspect.getsource(fn):
            return True
    except (OSError, TypeError):
        pass
    spec = getattr(item, "callspec", None)
    return spec is not None and any(str(CAPTURES) in str(v) for v in spec.params.values())


def pytest_runtest_setup(item):
    # A test that reads the corpus skips without it (fails under CI), as if
    # it had asked for the `corpus` fixture.
    if not (CAPTURES / "MANIFEST.tsv").is_file() and _uses_the_corpus(item):
        need_corpus()


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib Figures that plot.render saves, in order (so a test
    can read back what a PNG shows)."""
    need_module("matplotlib", "pip install 'ipv6flow[plot]'")
    from matplotlib.figure import Figure
    figs = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        figs.append(self)
        return save(self, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", keep)
    return figs
