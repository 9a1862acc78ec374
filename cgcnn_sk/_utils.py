"""Small machinery shared across the package: an atomic file writer, the error for failed
items of an input, and a least-recently-used cache bounded in bytes.

Nothing here imports the rest of cgcnn_sk, so every layer (graphs, estimators, workflows,
command line) may use it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` whole or not at all: into a temporary file beside it, then rename.

    The rename replaces the file in one step, so a reader, or a rerun after an interruption,
    finds the previous file or the complete new one, never a part; on an error the temporary
    file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The file to write; its folder must exist.
    data : str, bytes or callable
        Text (written as UTF-8), bytes, or a function that writes to the binary file object
        it is given (``lambda f: np.save(f, array)``).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ItemErrors(ValueError):
    """Some items of an input failed; raised once, after every item was tried.

    Parameters
    ----------
    errors : list of (int, str or None, str)
        ``(position, id, message)`` for every failure, in input order; an item may fail in
        several ways (several entries with its position).
    n_items : int
        Number of items in the input.
    what : str, optional
        Completes ``"<k> of <n> ..."``; defaults to the class's ``what``.

    Attributes
    ----------
    errors, n_items, what
        As given.
    """

    what = "items failed"
    shown = 25

    def __init__(self, errors: list[tuple[int, Any, str]], n_items: int,
                 what: str | None = None):
        self.errors = list(errors)
        self.n_items = n_items
        if what is not None:
            self.what = what
        n_bad = len({pos for pos, _, _ in self.errors})
        lines = [f"{n_bad} of {n_items} {self.what}:"]
        for pos, ident, msg in self.errors[: self.shown]:
            name = f" ({ident})" if ident is not None else ""
            lines.append(f"  item {pos}{name}: {msg}")
        if len(self.errors) > self.shown:
            lines.append(f"  ... and {len(self.errors) - self.shown} more (see the .errors "
                         "attribute)")
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), (self.errors, self.n_items, self.what))


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 0


class LRUCache:
    """A thread-safe map that drops its least recently used entries beyond ``max_bytes``.

    An entry's size is the bytes of the arrays it holds (in a tuple or list); an entry larger
    than the bound is not kept. Iterating gives the keys, least recently used first.

    Parameters
    ----------
    max_bytes : int
        The bound; ``0`` keeps nothing.
    """

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()  # joblib's threading backend, threaded callers
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, usable: Callable[[Any], bool] | None = None) -> Any:
        """The value under ``key`` (now the most recently used), or ``None``.

        ``usable``, when given, decides whether a stored value serves this request; one that
        does not counts as a miss.
        """
        with self._lock:
            value = self._data.get(key)
            if value is None or (usable is not None and not usable(value)):
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= _nbytes(old)
            size = _nbytes(value)
            if size <= self.max_bytes:
                self._data[key] = value
                self._nbytes += size
            self._evict()

    def _evict(self) -> None:
        while self._nbytes > self.max_bytes and self._data:
            _, value = self._data.popitem(last=False)
            self._nbytes -= _nbytes(value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._nbytes = self.hits = self.misses = 0

    def info(self, max_bytes: int | None = None) -> dict:
        """Counts ``n_entries``, ``nbytes``, ``max_bytes``, ``hits``, ``misses``; a new bound."""
        with self._lock:
            if max_bytes is not None:
                self.max_bytes = int(max_bytes)
                self._evict()
            return {"n_entries": len(self._data), "nbytes": self._nbytes,
                    "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Hashable]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)
