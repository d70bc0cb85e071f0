#!/usr/bin/env python3
"""Where the time of one complete ipv6flow run goes, by stage.

    python benchmarks/stages.py FILE [analyze options ...]
    taskset -c 0 python benchmarks/stages.py benchmarks/data/realmix-16.pcap

Runs ``ipv6flow analyze FILE --workers 1 --format json -o /dev/null`` (plus
the options given) in this process with a wall-clock timer around each
stage's function, and prints a Markdown table: seconds and share of the
run. The stages do not overlap (each timed function is called outside the
others), so they add up to the run; what no timer covers is shown as the
glue of its pass. Timers cost about a microsecond a call, and the stages
are called per batch (or per fallback frame), so the run is barely slower
than a plain one. Start-up is the time from this script's first line to
the first pass (imports, options, opening the file), so it leaves out the
interpreter's own start (about 20 ms; see benchmarks/floor.py ``startup``).
With ``IPV6FLOW_PURE_PYTHON=1`` in the environment the same stages run
without any compiled helper (what an install without a compiler runs);
``run.py --profile`` shows both side by side.
"""

import functools
import os
import resource
import sys
import time

T0 = time.perf_counter()

# (stage, "module:attribute" of each function timed for it); a function is
# patched where its callers look it up (fold imports its helpers by name)
STAGES = (
    ("decoder pass (compiled single pass, or numpy kernel)", ("ipv6flow.fold:decode_batch",)),
    ("reference route (fallback frames, one at a time)",
     ("ipv6flow.fold:record", "ipv6flow.fold:decode_frame", "ipv6flow.fold:frame_columns",
      "ipv6flow.summary:Summary.add", "ipv6flow.analysis.nat64:inspect_frame")),
    ("frame keys and time bins", ("ipv6flow.fold:_add_figures",)),
    ("NAT64 traffic to known prefixes", ("ipv6flow.fold:_nat64_rows",)),
    ("DNS and RA: finding the messages",
     ("ipv6flow.fold:message_spans",
      "ipv6flow.analysis.nat64:Nat64State.observe_dns_segments",
      "ipv6flow.analysis.nat64:Nat64State.observe_icmpv6")),
    ("DNS: parsing and applying the answers (per batch)",
     ("ipv6flow.engine.local:LivePrefixes.update",)),
    ("columns for the analyses", ("ipv6flow.fold:_columns",)),
    ("clients, flows, interface ids", ("ipv6flow.analysis.population:Population.observe",)),
    ("translation (NAT64, DS-Lite, MAP, lw4o6)",
     ("ipv6flow.analysis.translation:TranslationState.observe",)),
    ("scorecard (--org-map)", ("ipv6flow.analysis.scorecard:Scorecard.observe",)),
    ("second pass (NAT64 prefixes found late)", ("ipv6flow.engine.local:catch_up",)),
    ("report (figures from the state)", ("ipv6flow.options:RunResult.report",)),
    ("rendering and writing", ("ipv6flow.cli:render", "ipv6flow.cli:write_output")),
)
OUTER = ("ipv6flow.engine.local:first_pass", "ipv6flow.engine.local:summarize_batch")

spent = {}
calls = {}


def _resolve(spec):
    import importlib
    mod, name = spec.split(":")
    owner = importlib.import_module(mod)
    parts = name.split(".")
    for p in parts[:-1]:
        owner = getattr(owner, p)
    return owner, parts[-1]


_depth = [0]


def _wrap(fn, key, nested=False):
    """``fn`` timed under ``key``; a stage's function called inside another
    stage's (the second pass decodes batches too) counts for the outer one."""
    @functools.wraps(fn)
    def timed(*a, **k):
        if not nested and _depth[0]:
            return fn(*a, **k)
        _depth[0] += not nested
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            _depth[0] -= not nested
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
            calls[key] = calls.get(key, 0) + 1
    return timed


def install():
    for stage, specs in STAGES:
        for spec in specs:
            owner, name = _resolve(spec)
            setattr(owner, name, _wrap(getattr(owner, name), spec))
    for spec in OUTER:
        owner, name = _resolve(spec)
        fn = getattr(owner, name)

        def first(fn=fn, spec=spec):
            inner = _wrap(fn, spec, nested=True)

            @functools.wraps(fn)
            def timed(*a, **k):
                spent.setdefault("start:" + spec, time.perf_counter())
                return inner(*a, **k)
            return timed
        wrapped = first()
        setattr(owner, name, wrapped)
        # analyze_path takes first_pass as a default argument
        for f in vars(owner).values():
            d = getattr(f, "__defaults__", None)
            if d and fn in d:
                f.__defaults__ = tuple(wrapped if x is fn else x for x in d)


def table(total):
    def s(spec):
        return spent.get(spec, 0.0)

    rows = []
    startup = spent.get("start:" + OUTER[0], T0) - T0
    rows.append(("start-up: imports, options, opening the file", startup, ""))
    inner = 0.0
    for stage, specs in STAGES:
        t = sum(s(x) for x in specs)
        n = sum(calls.get(x, 0) for x in specs)
        if n:
            rows.append((stage, t, f"{n:,} call{'s' if n != 1 else ''}"))
        inner += t
    in_batch = sum(sum(s(x) for x in specs) for stage, specs in STAGES
                   if specs[0].startswith(("ipv6flow.fold:", "ipv6flow.summary:",
                                           "ipv6flow.analysis.")))
    rows.append(("glue of the batch path (summarize_batch outside the above)",
                 s(OUTER[1]) - in_batch, ""))
    outside = s(OUTER[0]) - s(OUTER[1]) - s("ipv6flow.engine.local:LivePrefixes.update")
    rows.append(("reading: records into batches (first pass outside the batch path)",
                 outside, ""))
    covered = startup + inner + (s(OUTER[1]) - in_batch) + outside
    rows.append(("everything else (engine, exit)", total - covered, ""))
    out = ["| stage | s | share | |", "| --- | ---: | ---: | --- |"]
    for name, t, note in rows:
        out.append(f"| {name} | {t:.3f} | {100 * t / total:.1f}% | {note} |")
    out.append(f"| **the run** (this script's start to exit) | **{total:.3f}** | 100% | |")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out += ["", f"CPU of the run: user {ru.ru_utime:.3f} s, system {ru.ru_stime:.3f} s (the "
                f"operating system's share: mostly the page faults of the file's maps, "
                f"{ru.ru_minflt:,} minor faults); peak RSS {ru.ru_maxrss / 1024:.0f} MB"]
    return "\n".join(out)


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    install()
    from ipv6flow.cli import main as cli
    args = ["analyze", argv[0], "--workers", "1", "--format", "json", "-o", os.devnull]
    try:
        cli(args + argv[1:], standalone_mode=False)
    finally:
        print(table(time.perf_counter() - T0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
