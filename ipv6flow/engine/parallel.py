"""All cores of one machine: the same map and merge as engine/local.py,
with the parts spread over worker processes.

Parts: every input is one part, except a large uncompressed classic pcap,
which is cut into record-aligned byte ranges (capture/split.py). Each
part is analysed on its own (first pass), and the parts' Summaries merge
in input order, so the report is the one ``--workers 1`` gives:

* a cut is checked: the part before it must end its walk exactly on it;
  otherwise the file is analysed again in one piece;
* a part after an unreadable record is dropped, as a serial run stops at
  that record; parts with a warning or an error are analysed again with
  the number of records before them, so messages name the same records;
* the parts of one file fold into one ``inputs`` entry;
* NAT64: each part counts a prefix live from where *it* learnt of it; a
  second pass counts, per part, what came before that (or the whole part
  when it never learnt of it), so every frame is counted once;
* the DNS service report's traffic pass runs per part too.

Compressed files and pcapng files are one part each (their records cannot
be found without reading from the start). On Ctrl-C the parent cancels the
parts not started, tells the running workers to stop (they hand back what
they read, as a serial run does), merges that and marks the report
partial; no worker outlives the run.
"""

import os
import signal
from concurrent.futures import ProcessPoolExecutor

from ..analysis.nat64 import Nat64State
from ..analysis.services import ServiceIndex
from ..capture.split import split_points
from ..summary import Summary
from .local import (LivePrefixes, analyze_path, count_nat64, count_services,
                    readable_twice)

PARTS_PER_WORKER = 2       # more parts than workers evens out uneven parts
STOP_WAIT = 30             # seconds a stopped worker gets to hand back its part


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                       # not on Linux
        return max(1, os.cpu_count() or 1)


class Part:
    """One unit of work: a file or a record-aligned range of one."""

    def __init__(self, index, path, shown, window=None):
        self.index = index            # input number
        self.path = path
        self.shown = shown
        self.window = window          # (start, end, records before) or None


def _reporter(progress, part):
    """Progress of a finished first-pass part: its bytes and frames."""
    def report(future):
        if future.cancelled() or future.exception() is not None:
            return
        s = future.result()[0]
        end = part.window[1] if part.window and part.window[1] else _file_size(part.path)
        start = part.window[0] if part.window else 0
        progress(max(end - start, 0), s.inputs[0]["packets"])
    return report


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _stop(executor, futures):
    """Ctrl-C: parts not started are cancelled; running ones are told to
    stop (SIGINT, also when only the parent got it) and hand back what they
    read. Returns each part's result, or None."""
    for f in futures:
        f.cancel()
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        try:
            os.kill(proc.pid, signal.SIGINT)
        except OSError:
            pass
    done = []
    for f in futures:
        try:
            done.append(f.result(timeout=STOP_WAIT))
        except BaseException:         # cancelled, stopped while idle, too slow
            done.append(None)
    return done


def _first_pass(part, opts, interval, decoder, nat64_prefixes, want_queries=True):
    stats = {}
    live = LivePrefixes(Nat64State(nat64_prefixes).static_prefixes())
    s = analyze_path(part.path, opts, interval, decoder, stats, nat64_prefixes, part.shown,
                     live, 0, part.window, None, want_queries)
    starts = {p: k for p, (_, k) in live.start.items()}
    return s, starts, stats


def _nat64_pass(part, opts, decoder, jobs):
    state = Nat64State()
    count_nat64(part.path, opts, decoder, state, jobs, part.window)
    return state


def _services_pass(part, opts, decoder, services):
    index = ServiceIndex(services)
    count_services(part.path, opts, decoder, index, part.window)
    return index


def plan(paths, real, workers, min_part):
    parts = []
    for i, (shown, path) in enumerate(zip(paths, real)):
        cuts = split_points(path, workers * PARTS_PER_WORKER, min_part) if workers > 1 else None
        if cuts is None:
            parts.append(Part(i, path, shown))
        else:
            parts.extend(Part(i, path, shown, (a, b, 0)) for a, b in cuts)
    return parts


def _fold_inputs(entries):
    """One ``inputs`` entry per input from the entries of its parts."""
    out = []
    for e in entries:
        if out and e.get("_input") == out[-1].get("_input"):
            o = out[-1]
            o["packets"] += e["packets"]
            o["bytes"] += e["bytes"]
            o["linktypes"] += [lt for lt in e["linktypes"] if lt not in o["linktypes"]]
            o["truncated"] = o["truncated"] or e["truncated"]
            o["errors"] += e["errors"]
            o["warnings"] += [w for w in e["warnings"] if w not in o["warnings"]]
        else:
            out.append(dict(e, linktypes=list(e["linktypes"]), errors=list(e["errors"]),
                            warnings=list(e["warnings"])))
    for o in out:
        o.pop("_input", None)
    return out


def analyze_parallel(paths, opts, interval, decoder="fast", stats=None, nat64_prefixes=(),
                     services=None, workers=None, min_part=32 << 20, engine_map=None,
                     progress=None):
    """As local.analyze_paths, on ``workers`` processes (or through
    ``engine_map(fn, items)`` when given: the Dask engine)."""
    workers = workers or default_workers()
    with readable_twice(paths) as real:
        parts = plan(paths, real, workers, min_part)
        executor = None
        if engine_map is None:
            executor = ProcessPoolExecutor(workers)

            def engine_map(fn, items):
                futures = [executor.submit(fn, item) for item in items]
                if progress is not None and fn.fn is _first_pass:
                    for f, part in zip(futures, items):
                        f.add_done_callback(_reporter(progress, part))
                try:
                    return [f.result() for f in futures]
                except KeyboardInterrupt:
                    raise Interrupted(_stop(executor, futures)) from None
        try:
            return _run(parts, engine_map, opts, interval, decoder, stats, nat64_prefixes,
                        services)
        finally:
            if executor is not None:
                # after Ctrl-C the workers may still be busy: stop them, leave
                # no orphan behind
                for proc in list((getattr(executor, "_processes", None) or {}).values()):
                    if proc.is_alive():
                        proc.terminate()
                executor.shutdown(wait=True, cancel_futures=True)


def _map(engine_map, fn, parts, *args):
    return engine_map(_Call(fn, args), parts)


class _Call:
    """A picklable ``fn(part, *args)``."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __call__(self, part):
        return self.fn(part, *self.args)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a map: the results of the items that finished."""

    def __init__(self, done):
        super().__init__()
        self.done = done


def _run(parts, engine_map, opts, interval, decoder, stats, nat64_prefixes, services):
    try:
        results = _map(engine_map, _first_pass, parts, opts, interval, decoder, nat64_prefixes,
                       services is not None)
    except Interrupted as stop:
        # The parts that finished, in order; nothing more is read.
        total = Summary(interval, nat64_prefixes, opts)
        for part, res in zip(parts, stop.done):
            if res is not None:
                for e in res[0].inputs:
                    e["_input"] = part.index
                total = total.merge(res[0])
        total.inputs = _fold_inputs(total.inputs)
        total.interrupted = True
        return total
    results = _check_parts(parts, results, opts, interval, decoder,
                           (nat64_prefixes, services is not None))
    kept = []
    total = Summary(interval, nat64_prefixes, opts)
    for part, (s, starts, st) in results:
        for e in s.inputs:
            e["_input"] = part.index
        total = total.merge(s)
        kept.append((part, starts))
        if stats is not None:
            for k, v in st.items():
                stats[k] = stats.get(k, 0) + v
    total.inputs = _fold_inputs(total.inputs)
    static = set(total.nat64.static_prefixes())
    found = sorted(set(total.nat64.discovered()) - static)
    if found:
        todo, jobs = [], []
        for part, starts in kept:
            j = {p: (starts[p] if p in starts else None) for p in found
                 if starts.get(p, None) != 0}
            if j:
                todo.append(part)
                jobs.append(j)
        states = engine_map(_Call(_nat64_job, (opts, decoder)), list(zip(todo, jobs)))
        for st in states:
            total.nat64 = total.nat64.merge(st)
    if services is not None:
        svc = total.nat64.services(services)
        index = ServiceIndex(svc)
        if index.v4 or index.v6:
            for part_index in _map(engine_map, _services_pass, [p for p, _ in kept], opts,
                                   decoder, svc):
                index.merge_traffic(part_index)
        total.services = index.report(services)
    return total


def _nat64_job(item, opts, decoder):
    part, jobs = item
    return _nat64_pass(part, opts, decoder, jobs)


def _check_parts(parts, results, opts, interval, decoder, first_args):
    """Keep the parts a serial run would have read, redo the doubtful ones."""
    out = []
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j].index == parts[i].index:
            j += 1
        group = list(zip(parts[i:j], results[i:j]))
        if len(group) > 1:
            group = _check_file(group, opts, interval, decoder, first_args)
        out.extend(group)
        i = j
    return out


def _check_file(group, opts, interval, decoder, first_args):
    first = group[0][0]
    # every cut must be where the previous part's walk ended
    for (part, (s, _, _)), (nxt, _) in zip(group, group[1:]):
        if not s.landed and not s.inputs[0]["errors"]:
            whole = Part(first.index, first.path, first.shown)
            return [(whole, _first_pass(whole, opts, interval, decoder, *first_args))]
    kept, before = [], 0
    for part, res in group:
        s = res[0]
        entry = s.inputs[0]
        if part.window[0] != group[0][0].window[0] and (entry["errors"] or entry["warnings"]):
            # messages number records: analyse again knowing how many came before
            part = Part(part.index, part.path, part.shown, (part.window[0], part.window[1], before))
            res = _first_pass(part, opts, interval, decoder, *first_args)
            s, entry = res[0], res[0].inputs[0]
        kept.append((part, res))
        before += entry["packets"]
        if entry["errors"]:
            break                     # a serial run stops at the bad record
    return kept
