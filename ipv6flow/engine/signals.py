"""SIGINT/SIGTERM as a counter, for the long-running commands (live, watch).

Handlers are installed only in the main thread (``signal.signal`` refuses
elsewhere) and put back by ``restore``. A first signal only counts: the
caller stops at its next safe point. With ``interrupt_on_second`` a second
signal also raises KeyboardInterrupt, for callers whose safe point may be
far away (watch, in the middle of a long file).
"""

import signal
import threading


class Signals:
    def __init__(self, enabled: bool, interrupt_on_second: bool = False):
        self.count = 0
        self.old = {}
        self._interrupt = interrupt_on_second
        if enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.count += 1
        if self._interrupt and self.count > 1:
            raise KeyboardInterrupt

    def restore(self):
        for sig, old in self.old.items():
            signal.signal(sig, old)
        self.old = {}
