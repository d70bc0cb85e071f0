"""Output files written atomically: a scheduled job (or node_exporter's
textfile collector) reading a report sees the old file or the new one,
never a half-written one, even if ipv6flow is killed mid-write.

The data goes to a temporary file in the same folder, is flushed to disk,
gets the mode an ordinary file would get (``mkstemp`` makes 0600 files,
which another user, such as node_exporter, could not read), and is renamed
over the target. On any failure the temporary file is removed.
"""

import os
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path, binary: bool = False, suffix: str = ""):
    """``with atomic_file(path) as fh: fh.write(...)``; OSError propagates."""
    import tempfile             # here, not at start-up: issue 14
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ipv6flow-", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
