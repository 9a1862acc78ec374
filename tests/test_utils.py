"""The shared machinery: atomic writes, the failed-items error, the byte-bounded LRU cache."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from cgcnn_sk._utils import ItemErrors, LRUCache, write_atomic


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    write_atomic(path, "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new"

    def fails(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fails)
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left
    write_atomic(tmp_path / "x.npy", lambda f: np.save(f, np.arange(3)))
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2]


def test_item_errors_count_items_once_and_pickle():
    err = ItemErrors([(1, "a", "bad"), (1, "a", "worse"), (4, None, "odd")], 5, "things failed")
    lines = str(err).splitlines()
    assert lines == ["2 of 5 things failed:", "  item 1 (a): bad", "  item 1 (a): worse",
                     "  item 4: odd"]
    again = pickle.loads(pickle.dumps(err))
    assert (again.errors, again.n_items, str(again)) == (err.errors, 5, str(err))


def test_lru_cache_drops_least_recently_used_by_bytes():
    cache = LRUCache(max_bytes=2 * 80)  # two arrays of 10 float64
    a, b, c = (np.full(10, v, dtype=np.float64) for v in (1.0, 2.0, 3.0))
    cache.put("a", a)
    cache.put("b", (b,))
    assert cache.get("a") is a  # now the most recently used
    cache.put("c", c)
    assert list(cache) == ["a", "c"]
    assert cache.get("b") is None
    assert cache.get("c", usable=lambda v: v.size > 10) is None  # present, not usable: a miss
    assert cache.info() == {"n_entries": 2, "nbytes": 160, "max_bytes": 160, "hits": 1,
                            "misses": 2}
    cache.put("big", np.zeros(100))  # larger than the bound: not kept
    assert "big" not in cache and len(cache) == 2
    assert cache.info(max_bytes=80)["n_entries"] == 1
