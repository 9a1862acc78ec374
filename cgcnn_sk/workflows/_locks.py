"""One lock file per unit of work, so that two processes on one folder never do it twice.

Built on the ``filelock`` package (an OS lock on a ``.lock`` file: released when its process
ends, also on ``kill -9``, so a crash never leaves a folder locked). Two ways to use it:

* :func:`claim` -- try to take a unit without waiting; a process that gets ``False`` does
  something else (``cgcnn-sk matbench`` fits another member) and comes back later;
* :func:`unit_lock` -- wait for the unit: a second study on the same cache waits while the
  first fits a setting, then reads it from the cache instead of fitting it again::

      with unit_lock(cache_dir / "locks" / f"{setting_key}.lock"):
          result = cached_fit(setting)  # a cache hit when another process just fitted it

The lock files stay in place after use (removing them would race with a process about to
take them); they are empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["claim", "unit_lock"]


def unit_lock(path: str | os.PathLike, timeout: float = -1) -> FileLock:
    """The lock of one unit of work: a context manager that waits for it (``timeout`` s, -1 ever).

    Its folder is created. Re-entrant within a process; exclusive between processes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "locks" / "setting-1.lock"
    >>> with unit_lock(path):
    ...     pass  # fit and cache the setting
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, timeout=timeout)


@contextmanager
def claim(path: str | os.PathLike) -> Iterator[bool]:
    """Take the unit's lock if it is free: ``True`` inside the block if taken, else ``False``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fold0_member0.lock"
    >>> with claim(path) as mine:
    ...     mine
    True
    """
    lock = unit_lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
