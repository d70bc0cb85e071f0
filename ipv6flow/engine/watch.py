"""Watch a folder of rotated captures (``tcpdump -G``/``-C``): analyse each once.

Serves ``ipv6flow watch`` (see ``watch`` for the options).

When a file is complete (the rule):

1. Candidates are the regular files directly in the folder whose name
   matches the pattern (shell-style, case-sensitive), except hidden names
   (a leading dot: our own temporary files, rsync's partial files) and our
   own outputs (``*.ipv6flow.json``, the state file and its lock).
2. The newest candidate (greatest mtime, then name; among the uncompressed
   ones when there are any, since the capture writes those) is the one the
   capture is still writing, and is never taken, however quiet: ``tcpdump
   -G`` keeps it open and buffered until the next rotation, and a quiet link
   would make it look finished. It is taken only with
   ``options.newest_settle`` (``--newest-settle``, for a capture that has
   ended), once unchanged that long.
3. Any other candidate is complete when its mtime is at least
   ``options.settle`` old: size and mtime unchanged that long, since every
   write moves the mtime. (An mtime in the future, from a skewed clock on a
   network file system, falls back to our own observation: same size and
   mtime for ``options.settle`` of polling.)
4. The file is stat'ed again after it was analysed; if its size or mtime
   moved meanwhile the result is thrown away and the file is tried again.
5. Compression after rotation (``tcpdump -z gzip``; ``.gz``, ``.bz2``,
   ``.xz``, ``.zst``): ``x.pcap.gz`` is not taken while ``x.pcap`` exists
   (gzip is still writing it; gzip removes the original when done). When
   ``x.pcap`` was done, ``x.pcap.gz`` is the same capture and is recorded as
   done without analysis, so a capture is never counted twice.

A file is identified by (name, size, mtime in ns): one that was analysed and
later has another size or mtime is new content under an old name (``tcpdump
-W`` reuses names) and is analysed again; a warning says so.

Exactly once, across restarts and crashes: for each complete file, in
order of mtime, (a) its report is written (``<name>.ipv6flow.json`` next to
it or in ``out_dir``), (b) the state file records it as done, (c) the
merged report adds it. Every write is atomic (temporary file, fsync,
rename), and (b) is the commit point: a crash before (b) analyses the file
again (its report is overwritten, nothing is counted twice); a crash
between (b) and (c) is repaired at the next start, when the merged report
holds one input fewer than the state says it should (the last committed
report is merged then). The merged report is the merge of the per-file
reports read back with ``Summary.from_report``, as ``ipv6flow merge``
would make it; NAT64 traffic of a prefix discovered in one file is not
counted in the others (``analyze`` over all files at once would).

The state file is small: per done file its name, size, mtime and report;
entries whose file is gone are dropped (rotation deletes old files). A lock
file next to it keeps two watchers (an overlapping cron run) apart.
SIGINT/SIGTERM (in the main thread) finish the file being analysed and
return; a second signal abandons it (it is analysed again next time).
"""

import dataclasses
import fcntl
import fnmatch
import json
import os
import threading
import time
from typing import NamedTuple

from ..atomic import atomic_file
from ..errors import Ipv6flowError, UsageError
from ..analysis.population import Population
from ..options import Options
from ..report import jsonout
from ..summary import Summary
from .local import analyze_paths
from .signals import Signals

STATE_SCHEMA = "ipv6flow/watch-state/1"
REPORT_SUFFIX = ".ipv6flow.json"
STATE_NAME = "ipv6flow-watch.state.json"
MERGED_NAME = "merged" + REPORT_SUFFIX
NAP_SECONDS = 0.2


COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")    # what capture/source.py undoes


def uncompressed_name(name: str) -> str:
    """``x.pcap.gz`` -> ``x.pcap``; other names unchanged."""
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


class WatchResult(NamedTuple):
    processed: list        # paths analysed in this run, in order
    merged: dict | None    # the merged report (None while no file is done)


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new
    content, never a part (temporary file in the same folder, fsync, rename)."""
    try:
        with atomic_file(path) as fh:
            fh.write(text)
    except OSError as e:
        raise Ipv6flowError(f"{path}: cannot write: {e.strerror or e}") from e

def _load_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


class Watcher:
    """The state of one watched folder; ``watch`` drives it."""

    def __init__(self, directory, options: Options, on_report=None, on_merged=None,
                 on_warning=None, clock=time.time):
        if not os.path.isdir(directory):
            raise Ipv6flowError(f"{directory}: not a folder")
        out_dir, state_file, merged_file = options.out_dir, options.state_file, options.merged_file
        self.directory = directory
        self.pattern = options.pattern
        self.out_dir = out_dir
        if out_dir is not None:
            try:
                os.makedirs(out_dir, exist_ok=True)
            except OSError as e:
                raise Ipv6flowError(f"{out_dir}: cannot create: {e.strerror or e}") from e
        base = out_dir if out_dir is not None else directory
        self.state_file = state_file or os.path.join(base, STATE_NAME)
        self.merged_file = merged_file or os.path.join(base, MERGED_NAME)
        self.interval = float(options.interval)
        # each file on its own, in this process; no DNS service report
        self.options = dataclasses.replace(options, dns_suffixes=None)
        self.opts = options.decode
        self.settle = options.settle
        self.newest_settle = options.newest_settle
        self.on_report = on_report
        self.on_merged = on_merged
        self.warn = on_warning or (lambda message: None)
        self.clock = clock
        self.seen = {}                   # name -> ((size, mtime_ns), monotonic first seen)
        self._own = {os.path.abspath(p) for p in
                     (self.state_file, self.state_file + ".lock", self.merged_file)}
        self._lock_fh = None
        self.state = None
        self.merged = None

    # -- state ----------------------------------------------------------------
    def lock(self):
        path = self.state_file + ".lock"
        try:
            fh = open(path, "a")
        except OSError as e:
            raise Ipv6flowError(f"{path}: cannot open: {e.strerror or e}") from e
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise Ipv6flowError(f"{self.state_file}: in use by another ipv6flow watch "
                                f"(lock {path})")
        self._lock_fh = fh

    def unlock(self):
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def load(self):
        try:
            state = _load_json(self.state_file)
        except (OSError, ValueError) as e:
            raise Ipv6flowError(f"{self.state_file}: not a readable watch state file ({e})")
        # reports made with other client options do not merge
        clients = Population(self.opts.client_key, self.opts.client_prefixes).describe()
        # nor do reports whose frames went to the organisations of another map
        org_map = getattr(self.opts.org_map, "digest", None)
        if state is None:
            state = {"schema": STATE_SCHEMA, "interval_s": self.interval, "clients": clients,
                     "commits": 0, "merged_inputs": 0, "last": None, "done": {}}
            if org_map is not None:
                state["org_map"] = org_map
        elif state.get("schema") != STATE_SCHEMA:
            raise Ipv6flowError(f"{self.state_file}: not an ipv6flow watch state file")
        elif state["interval_s"] != self.interval:
            raise UsageError(f"{self.state_file}: made with an interval of "
                             f"{state['interval_s']} s, not {self.interval} s; "
                             "use the same interval or another state file")
        elif state.setdefault("clients", clients) != clients:
            raise UsageError(f"{self.state_file}: made with client key {state['clients']}, "
                             f"not {clients}; use the same client options (--client-key, "
                             "--client-prefix, --no-clients) or another state file")
        elif state.get("org_map") != org_map:
            raise UsageError(f"{self.state_file}: made with "
                             + ("another --org-map" if state.get("org_map") else "no --org-map")
                             + ("" if org_map else ", run without one")
                             + "; use the same organisation map or another state file")
        self.state = state
        self._load_merged()

    def _load_merged(self):
        st = self.state
        merged = None
        try:
            data = _load_json(self.merged_file)
            if data is not None:
                merged = Summary.from_report(data)
        except (OSError, ValueError, KeyError, TypeError):
            self.warn(f"{self.merged_file}: unreadable, rebuilt from the per-file reports")
            merged = None
        have = len(merged.inputs) if merged is not None else 0
        if merged is not None and have == st["merged_inputs"]:
            self.merged = merged
            return
        last = st.get("last")
        if merged is not None and have == st["merged_inputs"] - 1 and last is not None:
            # Stopped between the commit of the last file and the merged report.
            part = self._read_report(last["report"])
            if part is not None:
                self.merged = self._merge(merged, part, last["report"])
                self._write_merged()
                return
        if st["merged_inputs"] == 0:
            self.merged = Summary(self.interval)
            return
        if merged is not None:
            self.warn(f"{self.merged_file}: holds {have} inputs, the state "
                      f"{st['merged_inputs']}; "
                      "rebuilt from the per-file reports")
        total = Summary(self.interval)
        reports = []                     # a compressed copy shares its original's report
        for e in sorted(st["done"].values(), key=lambda e: e["seq"]):     # commit order
            if e["report"] not in reports:
                reports.append(e["report"])
        for path in reports:
            part = self._read_report(path)
            if part is not None:
                total = self._merge(total, part, path)
        self.merged = total
        st["merged_inputs"] = len(total.inputs)
        self._write_state()
        self._write_merged()

    def _merge(self, merged, part, path):
        try:
            return merged.merge(part)
        except ValueError as e:           # another interval or other client options
            raise Ipv6flowError(f"{path}: does not merge with the reports before it ({e}); "
                                "use another state file") from None

    def _read_report(self, path):
        try:
            data = _load_json(path)
            if data is None:
                self.warn(f"{path}: per-file report missing; its file is not in the merged report")
                return None
            return Summary.from_report(data)
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.warn(f"{path}: unreadable per-file report ({e}); not in the merged report")
            return None

    def _write_state(self):
        write_atomic(self.state_file, json.dumps(self.state, indent=1, sort_keys=True) + "\n")

    def _write_merged(self):
        write_atomic(self.merged_file, jsonout.dumps(self.merged.to_report()))

    # -- scanning -------------------------------------------------------------
    def _candidates(self):
        """{name: (size, mtime_ns)} of the files the pattern selects."""
        out = {}
        try:
            entries = list(os.scandir(self.directory))
        except OSError as e:
            raise Ipv6flowError(f"{self.directory}: cannot list: {e.strerror or e}")
        for de in entries:
            name = de.name
            if name.startswith(".") or name.endswith(REPORT_SUFFIX):
                continue
            if not fnmatch.fnmatchcase(name, self.pattern):
                continue
            try:
                if not de.is_file():
                    continue
                st = de.stat()
            except OSError:
                continue                 # vanished meanwhile
            if os.path.abspath(de.path) in self._own:
                continue
            out[name] = (st.st_size, st.st_mtime_ns)
        return out

    def complete(self):
        """Names of the complete files not yet done, oldest first (the rule is
        in the module docstring). Compressed copies of done files are recorded
        as done here, without analysis."""
        files = self._candidates()
        now, mono = self.clock(), time.monotonic()
        done = self.state["done"]
        for name in [n for n in self.seen if n not in files]:
            del self.seen[name]
        for name, sig in files.items():
            if name not in self.seen or self.seen[name][0] != sig:
                self.seen[name] = (sig, mono)
        order = sorted(files, key=lambda n: (files[n][1], n))
        changed = False
        for name in order:
            base = uncompressed_name(name)
            d = done.get(name)
            if base == name or (d is not None and (d["size"], d["mtime_ns"]) == files[name]):
                continue
            b = done.get(base)
            if b is not None and (base not in files or files[base] == (b["size"], b["mtime_ns"])):
                # `tcpdump -z gzip` (or gzip -k): a done capture, compressed
                done[name] = {"size": files[name][0], "mtime_ns": files[name][1],
                              "report": b["report"], "seq": b["seq"], "same_as": base}
                changed = True
        for name in [n for n in done if n not in files]:
            del done[name]               # rotated away: nothing left to repeat
            changed = True
        if changed:
            self._write_state()
        plain = [n for n in order if uncompressed_name(n) == n]
        newest = (plain or order)[-1] if order else None
        ready = []
        for name in order:
            size, mtime_ns = files[name]
            d = done.get(name)
            if d is not None and (d["size"], d["mtime_ns"]) == (size, mtime_ns):
                continue
            base = uncompressed_name(name)
            if base != name and base in files:
                continue                 # still being compressed: the original goes first
            age = now - mtime_ns / 1e9
            settle = self.settle
            if name == newest:
                if self.newest_settle is None:
                    continue
                settle = max(settle, self.newest_settle)
            if age < 0:                  # future mtime: trust our own observation
                age = mono - self.seen[name][1]
            if age >= settle:
                ready.append((name, (size, mtime_ns)))
        return ready

    # -- one file -------------------------------------------------------------
    def report_path(self, name):
        return os.path.join(self.out_dir if self.out_dir is not None else self.directory,
                            name + REPORT_SUFFIX)

    def process(self, name, sig):
        """Analyse one complete file; True when it was committed."""
        path = os.path.join(self.directory, name)
        previous = self.state["done"].get(name)
        result = analyze_paths([path], self.options)
        if result.interrupted:
            raise KeyboardInterrupt
        try:
            st = os.stat(path)
            now_sig = (st.st_size, st.st_mtime_ns)
        except OSError:
            now_sig = None
        if now_sig != sig:
            self.warn(f"{path}: changed while it was analysed; it will be analysed again")
            return False
        if previous is not None:
            self.warn(f"{path}: analysed before with another size or mtime; analysed again "
                      "as new content (its earlier figures stay in the merged report)")
        report = result.report()
        rpath = self.report_path(name)
        write_atomic(rpath, jsonout.dumps(report))
        part = Summary.from_report(report)          # as a restart would read it back
        st_ = self.state
        st_["done"][name] = {"size": sig[0], "mtime_ns": sig[1], "report": rpath,
                             "seq": st_["commits"]}
        st_["commits"] += 1
        st_["merged_inputs"] += 1
        st_["last"] = {"name": name, "report": rpath}
        self._write_state()                          # the commit point
        self.merged = self.merged.merge(part)
        self._write_merged()
        if self.on_report is not None:
            self.on_report(path, report)
        if self.on_merged is not None:
            self.on_merged(self.merged.to_report())
        return True


def watch(directory: str, options: Options = Options(), on_report=None, on_merged=None,
          stop: threading.Event | None = None, *, on_warning=None,
          handle_signals: bool = True, clock=time.time) -> WatchResult:
    """Analyse each complete capture in ``directory`` once (see the module
    docstring for the rule), keeping a per-file report and a merged report.

    CLI (``ipv6flow watch DIR``): ``DIR`` -> ``directory``; the other
    options are fields of ``options``: ``pattern`` (``--pattern``, default
    ``*.pcap*``, shell-style on the file name); ``state_file`` (``--state``,
    default ``ipv6flow-watch.state.json`` in the output folder);
    ``out_dir`` (``--out-dir``: per-file reports ``NAME.ipv6flow.json``,
    the merged report and the state go there; default: next to the
    captures); ``merged_file`` (``--merged``, default
    ``merged.ipv6flow.json`` in the output folder); ``interval``;
    ``settle`` (``--settle``); ``newest_settle`` (``--newest-settle``: also
    take the newest file once it has been unchanged S seconds, for a
    capture that has stopped); ``poll`` (``--poll``); ``once`` (``--once``:
    process what is complete, then return, for cron); ``decode``,
    ``nat64_prefixes`` and ``decoder`` as for analyze. ``--prometheus
    FILE`` is an ``on_merged`` that writes the metrics of the merged report.

    ``on_report(path, report)`` hears each file's report once it is
    committed; ``on_merged(report)`` the merged report after each file;
    ``on_warning(line)`` one-line warnings (a file changed while analysed,
    a missing per-file report). ``stop`` (a threading.Event) ends the watch
    between files, as SIGINT/SIGTERM do in the main thread.

    Returns ``WatchResult(processed, merged)``: the paths analysed in this
    run and the merged report so far. Raises Ipv6flowError for an unusable
    folder or state file, or when another watcher holds the state's lock;
    UsageError when the state was made with another interval.
    """
    once, poll_seconds = options.once, options.poll
    w = Watcher(directory, options, on_report, on_merged, on_warning, clock)
    w.lock()
    signals = Signals(handle_signals, interrupt_on_second=True)
    processed = []

    def stopping():
        return signals.count > 0 or (stop is not None and stop.is_set())

    try:
        w.load()
        try:
            while not stopping():
                for name, sig in w.complete():
                    if stopping():
                        break
                    if w.process(name, sig):
                        processed.append(os.path.join(directory, name))
                if once or stopping():
                    break
                # Short naps: a signal handler that only sets a flag does not
                # cut a sleep short (PEP 475 resumes it).
                until = time.monotonic() + poll_seconds
                while not stopping() and (left := until - time.monotonic()) > 0:
                    if stop is not None:
                        stop.wait(min(NAP_SECONDS, left))
                    else:
                        time.sleep(min(NAP_SECONDS, left))
        except KeyboardInterrupt:
            pass                         # the file being analysed was not committed
        return WatchResult(processed,
                           w.merged.to_report() if w.state["merged_inputs"] else None)
    finally:
        signals.restore()
        w.unlock()
