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
be found without reading from the start). When there are fewer large ones
than workers, each is *streamed*: the parent alone opens it, decompresses
it once and hands consecutive batches of records (``STREAM_CHUNK`` bytes,
capture/batch.py ``chunks``) to the workers, at most ``STREAM_QUEUE`` per
worker in flight, so memory stays flat whatever the file size. Workers
decode and summarise a chunk with the code of a serial run
(local.py ``first_pass`` over capture/batch.py ``Replay``); the parent
merges the chunks' Summaries in file order. The parent reads the file with
the serial run's Capture (analyze_path with ``read`` = the hand-over, which
returns the merged Summary), so the ``inputs`` entry,
errors, truncation and decompression failures are the serial run's, word
for word. A chunk is a part for NAT64 and the DNS service report: their
second passes read the file again and get the same chunks.

On Ctrl-C the parent cancels the parts not started, tells the running
workers to stop (they hand back what they read, as a serial run does),
merges that and marks the report partial; no worker outlives the run.
"""

import ctypes
import os
import signal
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace

from ..analysis.nat64 import Nat64State
from ..analysis.services import NameTraffic
from ..analysis.translation import prepend
from ..capture import open_capture
from ..capture.batch import Replay, chunks
from ..capture.split import split_points
from ..errors import CaptureError
from ..options import MIN_PART_BYTES, Options, RunResult, default_workers
from ..summary import Summary
from .local import (LivePrefixes, Read, analyze_path, catch_up, count_nat64, count_services,
                    first_pass, late_state, readable_twice, recounted, services_frames,
                    translating, translation_jobs)

PARTS_PER_WORKER = 2       # more parts than workers evens out uneven parts,
BALANCED_PARTS = 8         # once each would be this many times min_part: below,
                           # each part's fixed costs (its end, the merge) weigh more
STOP_WAIT = 30             # seconds a stopped worker gets to hand back its part
# A streamed file's chunks: large enough that a chunk's hand-over (pickled
# through a pipe, about 1 ms per MiB) and its Summary's merge are small next
# to its decoding; few enough in flight that memory stays flat.
STREAM_CHUNK = 16 << 20
STREAM_QUEUE = 2           # chunks in flight per worker (one running, one waiting)
# Workers from which one file is streamed: with two, the reader takes one
# core and the hand-over costs more than the second worker saves
# (docs/DECISIONS.md, Scale: bench-2M.pcapng 2.55 s with one worker, 3.20 s
# streamed to two; gzip 4.88 s and 4.95 s).
STREAM_MIN_WORKERS = 3
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # glibc malloc.h mallopt() parameters


class Part:
    """One unit of work: a file or a record-aligned range of one."""

    def __init__(self, index, path, shown, window=None):
        self.index = index            # input number
        self.path = path
        self.shown = shown
        self.window = window          # (start, end, records before) or None
        self.stream = False           # read by the parent, chunks to the workers


def _reporter(progress, part):
    """Progress of a finished first-pass part: its bytes and frames."""
    def report(future):
        if future.cancelled() or future.exception() is not None:
            return
        s = future.result()[0].summary
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


def _first_pass(part, options):
    """A part's first pass: its RunResult, and where it learnt of each
    NAT64 prefix it discovered ({prefix: frames before})."""
    live = LivePrefixes(Nat64State(options.nat64_prefixes).static_prefixes())
    res = analyze_path(part.path, options, part.shown, live, 0, part.window)
    return res, {p: k for p, (_, k) in live.start.items()}


def _services_pass(part, options, services):
    return count_services(part.path, options, services, part.window)


def plan(paths, real, workers, min_part):
    parts = []
    for i, (shown, path) in enumerate(zip(paths, real)):
        cuts = None
        if workers > 1:
            n = workers * PARTS_PER_WORKER
            if _file_size(path) < n * BALANCED_PARTS * min_part:
                n = workers
            cuts = split_points(path, n, min_part)
        if cuts is None:
            parts.append(Part(i, path, shown))
        else:
            parts.extend(Part(i, path, shown, (a, b, 0)) for a, b in cuts)
    return parts


def mark_streams(parts, workers, min_part):
    """Stream the large files that cannot be cut (compressed, pcapng), when
    they are fewer than the workers: with as many, each worker reading one
    whole file keeps every core busy and hands nothing over. Not below
    ``STREAM_MIN_WORKERS`` workers."""
    if workers < STREAM_MIN_WORKERS:
        return
    big = [p for p in parts if p.window is None and _file_size(p.path) >= min_part
           and uncuttable(p.path)]
    if len(big) < workers:
        for p in big:
            p.stream = True


def uncuttable(path):
    """Compressed or pcapng: no part of it can be read alone."""
    try:
        with open_capture(path) as cap:
            return cap.compression is not None or cap.format != "pcap"
    except CaptureError:
        return False                  # the first pass reports it


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


def analyze_parallel(paths, options: Options, progress=None, *, min_part=MIN_PART_BYTES,
                     engine_map=None, chunk=STREAM_CHUNK) -> RunResult:
    """As local.analyze_paths, on ``options.workers`` processes (or through
    ``engine_map(fn, items)`` when given: the Dask engine, which streams
    nothing). ``min_part``: the smallest part a pcap file is cut into;
    ``chunk``: bytes per chunk of a streamed file."""
    workers = options.workers or default_workers()
    if options.decode.sflow_port:
        # sFlow files are read whole by one worker each: the sequence
        # numbers of an agent run through the whole file
        min_part = 1 << 62
    with readable_twice(paths) as real:
        parts = plan(paths, real, workers, min_part)
        executor = pool = None
        if engine_map is None:
            executor = ProcessPoolExecutor(workers, initializer=_worker_init)
            pool = SimpleNamespace(executor=executor, limit=STREAM_QUEUE * workers, chunk=chunk,
                                   progress=progress)
            if workers > 1:
                mark_streams(parts, workers, min_part)
                if any(p.stream for p in parts):
                    _keep_large_buffers()

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
            return _map_parts(parts, engine_map, options, pool)
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
        if not _worker["pool"]:
            return self.fn(part, *self.args)
        if _worker["stopped"]:
            raise KeyboardInterrupt("stopped before it began")
        _worker["busy"] = True
        try:
            return self.fn(part, *self.args)
        finally:
            _worker["busy"] = False


# A pool worker's state (set up by _worker_init): Ctrl-C stops the task it
# is running, which hands back what it read; an idle worker only notes it
# (no traceback from the pool's loop) and refuses the tasks queued behind.
_worker = {"pool": False, "busy": False, "stopped": False}


def _worker_init():
    _worker["pool"] = True
    signal.signal(signal.SIGINT, _on_sigint)
    _keep_large_buffers()


def _keep_large_buffers():
    """Speed: a streamed file moves a few large buffers per chunk between
    processes (batches, pickles). glibc gives each one above its mmap
    threshold fresh pages from the kernel and returns them when freed, so
    every byte costs a page fault; keeping such buffers in the heap for
    reuse took a third off the CPU time of a stream (docs/DECISIONS.md,
    Scale). Not glibc: nothing to do."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 512 << 20)
    except (OSError, AttributeError):
        pass


def _on_sigint(signum, frame):
    _worker["stopped"] = True
    if _worker["busy"]:
        raise KeyboardInterrupt


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a map: the results of the items that finished."""

    def __init__(self, done):
        super().__init__()
        self.done = done


def _map_parts(parts, engine_map, options, pool=None) -> RunResult:
    """The passes over ``parts`` through ``engine_map``, merged in order."""
    cut = [p for p in parts if not p.stream]
    results = {}
    try:
        for part, res in zip(cut, _map(engine_map, _first_pass, cut, options)):
            results[id(part)] = res
    except Interrupted as stop:
        # The parts that finished, in order; nothing more is read.
        for part, res in zip(cut, stop.done):
            results[id(part)] = res
        return _partial(parts, results, options)
    for part in parts:
        if part.stream:
            results[id(part)] = res = _stream_first_pass(part, pool, options)
            if res[0].interrupted:
                return _partial(parts, results, options)
    results = _check_parts(parts, [results[id(p)] for p in parts], options)
    kept = []
    total = RunResult(Summary(options.interval, options.nat64_prefixes, options.decode))
    for part, (res, starts) in results:
        for e in res.summary.inputs:
            e["_input"] = part.index
        total = total.merge(res) if kept else total.adopt(res)
        kept.append((part, starts, res.summary.translation))
    summary = total.summary
    summary.inputs = _fold_inputs(summary.inputs)
    static = set(summary.nat64.static_prefixes())
    found = sorted(set(summary.nat64.discovered()) - static)
    if found:
        # Per part (a streamed file: per chunk, its starts one dict per
        # chunk): the NAT64 jobs, and translation's (local.translation_jobs).
        def jobs_of(starts):
            again = (recounted(static | set(found),
                               lambda p: -1 if p in static else starts.get(p))
                     if translating(options) else set())
            jobs = _nat64_jobs(found, starts)
            return (jobs, late_state(summary, options, found, translation_jobs(jobs, again)),
                    again)

        def work(j):
            return j if j[0] or j[1] is not None else None
        todo = [(part, jobs_of(starts)) for part, starts, _ in kept if not part.stream]
        todo = [(part, j) for part, j in todo if work(j)]
        done = iter(engine_map(_Call(_nat64_job, (options,)), todo))
        translation = None
        for part, starts, tr in kept:
            lates, again = None, set()
            if part.stream:
                jobs = [jobs_of(st) for st in starts]
                again = set().union(*(j[2] for j in jobs))
                if again:       # counted again in every chunk
                    jobs = [(j, late_state(summary, options, found, translation_jobs(j, again)),
                             again) for j, _, _ in jobs]
                jobs = [work(j) for j in jobs]
                for state, late in _stream_pass(pool, part, _chunk_nat64, (options,), jobs):
                    summary.nat64 = summary.nat64.merge(state)
                    if late is not None:
                        lates = late if lates is None else lates.merge(late, options.interval)
            else:
                jobs, late, again = jobs_of(starts)
                if work((jobs, late)):
                    state, lates = next(done)
                    summary.nat64 = summary.nat64.merge(state)
            if translating(options):
                # the part's frames before it counted a prefix come first
                tr = prepend(tr, lates, options.interval, again, found)
                translation = tr if translation is None else translation.merge(tr,
                                                                                options.interval)
        if translation is not None:
            summary.translation = prepend(translation, None, options.interval, (), found)
    suffixes = options.dns_suffixes
    if suffixes is not None:
        names = summary.nat64.name_answers(suffixes)
        index = NameTraffic(names)
        if index.v4 or index.v6:
            whole = [p for p, _, _ in kept if not p.stream]
            counted = iter(_map(engine_map, _services_pass, whole, options, names))
            for part, starts, _ in kept:
                each = (_stream_pass(pool, part, _chunk_services, (options, names),
                                     [True] * len(starts))
                        if part.stream else [next(counted)])
                for part_index in each:
                    index.merge_traffic(part_index)
        summary.services = index.report(suffixes)
    return total


def _nat64_jobs(found, starts):
    """{prefix: frames before its start, or None for all} that the second
    pass counts for a part (or chunk) that learnt of prefixes at ``starts``."""
    return {p: (starts[p] if p in starts else None) for p in found if starts.get(p, None) != 0}


def _partial(parts, results, options) -> RunResult:
    """After Ctrl-C: the parts that finished (or stopped), merged in order."""
    total = RunResult(Summary(options.interval, options.nat64_prefixes, options.decode))
    for part in parts:
        res = results.get(id(part))
        if res is not None:
            for e in res[0].summary.inputs:
                e["_input"] = part.index
            total = total.merge(res[0])
    total.summary.inputs = _fold_inputs(total.summary.inputs)
    total.interrupted = True
    return total


# -- streamed files: the parent reads, the workers decode ------------------

_UNSUPPORTED = SimpleNamespace(problem="unsupported_linktype")


def _stream_first_pass(part, pool, options):
    """As ``_first_pass``, the records decoded by the workers; the starts
    are one dict per chunk."""
    starts = []

    def hand_over(cap, options, summary, live, path_i, on_frame, progress) -> Read:
        """analyze_path's ``read``: the chunks' Summaries, merged after
        ``summary`` (which holds nothing yet), whatever stopped the reading."""
        merged = _Merges(pool.executor)
        fallback, stopped = 0, None
        try:
            for s, st, fb, linktypes, stopped_early in _on_pool(
                    pool, cap, _chunk_first_pass, (options,), progress):
                merged.add(s)
                starts.append(st)
                fallback += fb
                for lt in linktypes:
                    on_frame(_UNSUPPORTED, lt)
                if stopped_early:         # a worker told to stop: the report is partial
                    stopped = KeyboardInterrupt()
        except (CaptureError, KeyboardInterrupt) as e:
            stopped = e
        chunks = merged.total()
        return Read(summary if chunks is None else summary.merge(chunks), fallback, stopped)

    res = analyze_path(part.path, options, part.shown, None, 0, None, pool.progress, hand_over)
    return res, starts


class _Merges:
    """The chunks' Summaries merged in file order, the merging done by the
    workers: a merge costs tens of ms whatever the chunk size (sketches,
    DNS names), which would make the reader the bottleneck. Neighbours of
    equal weight are merged, as a binary counter carries, so at most
    log2(chunks) Summaries wait (merge is associative, tests/test_summary).
    Merges are not stopped by Ctrl-C: they hold chunks already counted."""

    def __init__(self, executor):
        self.executor = executor
        self.stack = []               # [weight, Summary or its future]

    def add(self, summary):
        stack = self.stack
        stack.append([1, summary])
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (w, b), (_, a) = stack.pop(), stack.pop()
            stack.append([2 * w, self.executor.submit(_merge, _value(a), _value(b))])

    def total(self):
        """All merged (here, the few left); a merge that failed is left out."""
        out = None
        for _, x in self.stack:
            try:
                x = _value(x)
            except Exception:         # a worker gone after Ctrl-C
                continue
            out = x if out is None else out.merge(x)
        self.stack = []
        return out


def _value(x):
    return x.result() if hasattr(x, "result") else x


def _merge(a, b):
    return a.merge(b)


def _stream_pass(pool, part, fn, args, todo):
    """A second reading of a streamed file: ``fn(chunk, *args, todo[i])``
    for the chunks i where ``todo[i]``, results in order. The chunks are
    those of the first pass: the same reader cuts the same stream."""
    last = max((i for i, t in enumerate(todo) if t), default=-1)
    if last < 0:
        return
    try:
        with open_capture(part.path) as cap:
            yield from _on_pool(pool, cap, fn, args, None, todo[:last + 1])
    except CaptureError:
        pass                          # reported by the first pass


def _on_pool(pool, cap, fn, args, progress=None, todo=None):
    """``fn(chunk, *args)`` (``*args, todo[i]`` with ``todo``: only where
    it is set, and no further than it goes) for the chunks of ``cap`` on
    the workers; the results in order. At most ``pool.limit`` chunks are
    in flight. A read error comes after the results of the chunks before
    it; on Ctrl-C the workers are stopped and what they hand back comes
    before the KeyboardInterrupt."""
    flight = deque()                  # (future, bytes read, frames)
    seen = 0
    try:
        error = None
        try:
            for i, group in enumerate(chunks(cap.iter_batches(), pool.chunk)):
                if todo is None or todo[i]:
                    extra = () if todo is None else (todo[i],)
                    flight.append((pool.executor.submit(_Call(fn, args + extra), group),
                                   cap.bytes_read - seen, sum(len(b) for b in group)))
                    seen = cap.bytes_read
                    while len(flight) >= pool.limit:
                        yield _oldest(flight, progress)
                if todo is not None and i + 1 >= len(todo):
                    break
        except CaptureError as e:
            error = e
        while flight:
            yield _oldest(flight, progress)
        if error is not None:
            raise error
    except KeyboardInterrupt:
        for res in _stop(pool.executor, [f for f, _, _ in flight]):
            if res is not None:
                yield res
        raise


def _oldest(flight, progress):
    future, nbytes, frames = flight[0]
    res = future.result()
    flight.popleft()                  # only now: Ctrl-C while waiting keeps it
    if progress is not None:
        progress(nbytes, frames)
    return res


def _chunk_first_pass(group, options):
    """A worker's share of a streamed file: the first pass over one chunk.
    Returns its Summary, the NAT64 prefixes it learnt of (and after how
    many of its frames), its fallback count, its unsupported link types,
    and whether it was told to stop (Ctrl-C: it hands back what it counted)."""
    s = Summary(options.interval, options.nat64_prefixes, options.decode)
    s.nat64.want_queries = options.want_queries
    live = LivePrefixes(s.nat64.static_prefixes())
    linktypes = []

    def on_frame(f, linktype):
        if f.problem == "unsupported_linktype" and linktype not in linktypes:
            linktypes.append(linktype)

    read = first_pass(Replay(group), options, s, live, 0, on_frame)
    return (read.summary, {p: k for p, (_, k) in live.start.items()}, read.fallback, linktypes,
            isinstance(read.stopped, KeyboardInterrupt))


def _chunk_nat64(group, options, jobs):
    jobs, late, _ = jobs
    return catch_up(Replay(group), options, jobs, None, late), late


def _chunk_services(group, options, services, _todo=True):
    return services_frames(Replay(group), options, services)


def _nat64_job(item, options):
    part, (jobs, late, _) = item
    return count_nat64(part.path, options, jobs, part.window, late), late


def _check_parts(parts, results, options):
    """Keep the parts a serial run would have read, redo the doubtful ones."""
    out = []
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j].index == parts[i].index:
            j += 1
        group = list(zip(parts[i:j], results[i:j]))
        if len(group) > 1:
            group = _check_file(group, options)
        out.extend(group)
        i = j
    return out


def _check_file(group, options):
    first = group[0][0]
    # every cut must be where the previous part's walk ended
    for (part, (res, _)), (nxt, _) in zip(group, group[1:]):
        if not res.landed and not res.summary.inputs[0]["errors"]:
            whole = Part(first.index, first.path, first.shown)
            return [(whole, _first_pass(whole, options))]
    kept, before = [], 0
    for part, res in group:
        entry = res[0].summary.inputs[0]
        if part.window[0] != group[0][0].window[0] and (entry["errors"] or entry["warnings"]):
            # messages number records: analyse again knowing how many came before
            part = Part(part.index, part.path, part.shown, (part.window[0], part.window[1], before))
            res = _first_pass(part, options)
            entry = res[0].summary.inputs[0]
        kept.append((part, res))
        before += entry["packets"]
        if entry["errors"]:
            break                     # a serial run stops at the bad record
    return kept
