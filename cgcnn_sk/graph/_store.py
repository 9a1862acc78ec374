"""An on-disk store of crystal graphs: featurize in chunks to shards, read lazily.

Format (version 1): a directory holding

* ``header.json`` -- written last, so a directory without it is an unfinished write::

      {"format": "cgcnn_sk.graph_store", "version": 1, "n_graphs": ..., "n_atoms": ...,
       "max_num_nbr": M, "gaussian": [dmin, step, radius],
       "featurizer": {radius, max_num_nbr, dmin, step, atom_features},
       "shards": [{"name": "shard-00000", "n_graphs": ..., "n_atoms": ...}, ...],
       "cgcnn_sk_version": "0.1.0"}

  (opening a store written by another cgcnn_sk version warns with
  :class:`~cgcnn_sk.InconsistentVersionWarning`);

* ``atom_table.npy`` -- the atom feature table shared by every graph (float32, row Z = element Z);
* per shard ``<name>.numbers.npy`` (int16, ``(n_atoms,)``), ``<name>.nbr_index.npy`` (int32,
  ``(n_atoms, M)``, ``-1`` = padding), ``<name>.nbr_dist.npy`` (float32, ``(n_atoms, M)``):
  the atoms of the shard's graphs concatenated in order; ``<name>.offsets.npy`` (int64,
  ``(n_graphs + 1,)``): graph ``k`` owns atoms ``offsets[k]:offsets[k + 1]``; ``<name>.ids.json``:
  the graphs' ids (a JSON list of strings or nulls).

Plain ``.npy`` files, so ``numpy.load(..., mmap_mode="r")`` reads them without a copy: a graph
costs ``2 + 8 * M`` bytes per atom on disk, as in memory. :class:`GraphStore` opens them
memory-mapped and builds each :class:`~cgcnn_sk.CrystalGraph` on access from views of the
files, so a store larger than memory can be trained on; the operating system pages the arrays
in and out.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import write_atomic
from .._version import __version__, check_saved_version
from ._crystal import DIST_DTYPE, INDEX_DTYPE, CrystalGraph, CrystalGraphs
from ._featurizer import CrystalGraphError, CrystalGraphFeaturizer

__all__ = ["GraphStore", "write_graph_store"]

FORMAT = "cgcnn_sk.graph_store"
VERSION = 1
HEADER = "header.json"
TABLE = "atom_table.npy"
#: Marker of a write in progress (removed when the header is written).
WRITING = ".writing"
#: The per-shard arrays: suffix -> (dtype, shape given n_graphs, n_atoms, M).
_ARRAYS = {
    "numbers": (np.int16, lambda g, a, m: (a,)),
    "nbr_index": (INDEX_DTYPE, lambda g, a, m: (a, m)),
    "nbr_dist": (DIST_DTYPE, lambda g, a, m: (a, m)),
    "offsets": (np.int64, lambda g, a, m: (g + 1,)),
}


class GraphStoreError(ValueError):
    """A graph store on disk is missing a file or holds a file that does not match its header."""


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _save(path: Path, array: np.ndarray) -> None:
    write_atomic(path, lambda f: np.save(f, array, allow_pickle=False))


def _check_no_globals(graphs: CrystalGraphs, start: int) -> None:
    """Format 1 has no place for per-structure inputs: refuse rather than drop them."""
    for pos, g in enumerate(graphs):
        if g.global_features is not None:
            name = f" ({g.id!r})" if g.id is not None else ""
            raise ValueError(
                f"item {start + pos}{name} carries {g.n_global} global features "
                f"{list(g.global_names or ())}: the graph store (format {VERSION}) does not hold "
                "global features; store the graphs without them and keep the global columns "
                "in memory, or featurize the DataFrame in memory"
            )


def _write_shard(root: Path, name: str, graphs: CrystalGraphs, m: int) -> dict:
    sizes = np.fromiter((g.n_atoms for g in graphs), dtype=np.int64, count=len(graphs))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    _save(root / f"{name}.numbers.npy",
          np.concatenate([g.numbers for g in graphs]).astype(np.int16))
    _save(root / f"{name}.nbr_index.npy",
          np.concatenate([g.nbr_index for g in graphs]).astype(INDEX_DTYPE).reshape(-1, m))
    _save(root / f"{name}.nbr_dist.npy",
          np.concatenate([g.nbr_dist for g in graphs]).astype(DIST_DTYPE).reshape(-1, m))
    _save(root / f"{name}.offsets.npy", offsets)
    write_atomic(root / f"{name}.ids.json", json.dumps([g.id for g in graphs]))
    return {"name": name, "n_graphs": len(graphs), "n_atoms": int(offsets[-1])}


def _prepare_dir(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        unfinished = (root / WRITING).exists()
        if not (overwrite or unfinished):
            raise FileExistsError(
                f"{root} is not empty; pass overwrite=True to replace it"
                + (" (it holds a graph store)" if (root / HEADER).exists() else "")
            )
        if not (unfinished or (root / HEADER).exists()):
            raise FileExistsError(
                f"{root} is not empty and not a graph store: refusing to delete it"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / WRITING).touch()


def _settings(featurizer: CrystalGraphFeaturizer) -> dict:
    af = featurizer.atom_features
    return {
        "radius": float(featurizer.radius),
        "max_num_nbr": int(featurizer.max_num_nbr),
        "dmin": float(featurizer.dmin),
        "step": float(featurizer.step),
        # a table given as an array or dict is saved in atom_table.npy, not described here
        "atom_features": af if isinstance(af, str) else (
            os.fspath(af) if isinstance(af, os.PathLike) else type(af).__name__
        ),
    }


def write_graph_store(
    path: str | os.PathLike,
    X: Iterable[Any],
    featurizer: CrystalGraphFeaturizer | None = None,
    *,
    shard_size: int = 5000,
    overwrite: bool = False,
) -> GraphStore:
    """Featurize ``X`` chunk by chunk into a graph store on disk and open it.

    ``X`` is consumed ``shard_size`` items at a time (a generator works, so the structures
    need never be in memory together); each chunk goes through ``featurizer.transform`` and
    becomes one shard. Only one chunk of structures and graphs is held at a time, plus the
    featurizer's in-process neighbour cache (bounded, 1 GB by default; see
    ``cgcnn_sk.graph._neighbours.cache_info``).

    Parameters
    ----------
    path : str or path-like
        Directory to create (see the module docstring for the format).
    X : iterable
        Anything ``CrystalGraphFeaturizer.transform`` takes item by item: Structures, ASE
        Atoms, CIF paths or text, or CrystalGraphs (re-cut to the featurizer's settings).
        Graphs with global (per-structure) features are refused with a ``ValueError``: the
        format does not store them.
    featurizer : CrystalGraphFeaturizer, default=None
        Its settings are recorded in the header; ``None`` means ``CrystalGraphFeaturizer()``.
    shard_size : int, default=5000
        Items per shard (and per ``transform`` call).
    overwrite : bool, default=False
        Replace an existing store at ``path``. An unfinished write (a directory left by an
        interrupted call) is always replaced.

    Returns
    -------
    store : GraphStore

    Raises
    ------
    CrystalGraphError
        After all items were tried, listing every bad item by its position in ``X``; the
        header is then not written, so no half store can be opened.

    Examples
    --------
    >>> import tempfile
    >>> from pymatgen.core import Lattice, Structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> store = write_graph_store(tempfile.mkdtemp() + "/cscl", [cscl] * 3, shard_size=2)
    >>> store
    GraphStore(n_graphs=3, n_atoms=6, n_shards=2, max_num_nbr=12)
    >>> [round(float(d), 3) for d in store[2].nbr_dist[0, [0, 8]]]  # 8 Cl, then 6 Cs
    [3.568, 4.12]
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    featurizer = CrystalGraphFeaturizer() if featurizer is None else featurizer
    featurizer.fit()
    m = int(featurizer.max_num_nbr)
    root = Path(path)
    _prepare_dir(root, overwrite)
    _save(root / TABLE, np.asarray(featurizer.atom_table_, dtype=np.float32))

    shards: list[dict] = []
    errors: list[tuple[int, str | None, str]] = []
    items = iter(X)
    start = 0
    while True:
        chunk = list(islice(items, shard_size))
        if not chunk:
            break
        try:
            graphs = featurizer.transform(chunk)
        except CrystalGraphError as exc:  # keep going: report every bad item at the end
            errors.extend((start + pos, ident, msg) for pos, ident, msg in exc.errors)
        else:
            _check_no_globals(graphs, start)
            if not errors:  # after a bad chunk, shards would no longer match positions
                shards.append(_write_shard(root, f"shard-{len(shards):05d}", graphs, m))
        start += len(chunk)
    if errors:
        raise CrystalGraphError(errors, start)
    if start == 0:
        raise ValueError("empty input: no structures to featurize")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "n_graphs": start,
        "n_atoms": sum(s["n_atoms"] for s in shards),
        "max_num_nbr": m,
        "gaussian": [float(featurizer.dmin), float(featurizer.step), float(featurizer.radius)],
        "featurizer": _settings(featurizer),
        "shards": shards,
        "cgcnn_sk_version": __version__,
    }
    write_atomic(root / HEADER, json.dumps(header, indent=1))
    (root / WRITING).unlink()
    return GraphStore(root)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _check_npy(path: Path, dtype, shape: tuple) -> None:
    """The file exists, is a .npy of ``dtype`` and ``shape``, and is not truncated."""
    if not path.is_file():
        raise GraphStoreError(f"graph store file missing: {path}")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            file_shape, fortran, file_dtype = read(f)
            data_start = f.tell()
    except (ValueError, OSError) as exc:
        raise GraphStoreError(f"{path} is not a valid .npy file: {exc}") from None
    if file_dtype != np.dtype(dtype) or tuple(file_shape) != tuple(shape) or fortran:
        raise GraphStoreError(
            f"{path} holds {file_dtype}{tuple(file_shape)}, the header expects "
            f"{np.dtype(dtype)}{tuple(shape)}"
        )
    expected = data_start + int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        raise GraphStoreError(
            f"{path} is {size} bytes, expected {expected} from its header: truncated or corrupt"
        )


class _Files:
    """The opened store: header, atom table, and shard arrays memory-mapped on first use."""

    def __init__(self, root: Path):
        self.root = root
        head = root / HEADER
        if not head.is_file():
            hint = (" (an unfinished write_graph_store: run it again)"
                    if (root / WRITING).exists() else "")
            raise GraphStoreError(f"not a graph store: {head} is missing{hint}")
        try:
            header = json.loads(head.read_text())
        except (ValueError, OSError) as exc:
            raise GraphStoreError(f"{head} is not valid JSON: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise GraphStoreError(f"{head} is not a cgcnn_sk graph store header")
        if header.get("version") != VERSION:
            raise GraphStoreError(
                f"{head} has format version {header.get('version')!r}; this cgcnn_sk reads "
                f"version {VERSION}"
            )
        check_saved_version(str(head), header.get("cgcnn_sk_version"), stacklevel=4)
        self.header = header
        try:
            self.m = int(header["max_num_nbr"])
            self.gaussian = tuple(float(v) for v in header["gaussian"])
            shards = header["shards"]
            [(str(s["name"]), int(s["n_graphs"]), int(s["n_atoms"])) for s in shards]
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphStoreError(
                f"{head} lacks {exc} or holds a bad value there (a header from another "
                "version, or edited?): write the store again with write_graph_store"
            ) from None
        table_path = root / TABLE
        if not table_path.is_file():
            raise GraphStoreError(f"graph store file missing: {table_path}")
        try:
            table = np.load(table_path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise GraphStoreError(
                f"{table_path} is not a readable .npy file ({exc}): write the store again"
            ) from None
        table.flags.writeable = False
        self.atom_table = table
        for s in shards:  # cheap checks of every file now, so a bad shard fails at open
            for suffix, (dtype, shape) in _ARRAYS.items():
                _check_npy(root / f"{s['name']}.{suffix}.npy", dtype,
                           shape(s["n_graphs"], s["n_atoms"], self.m))
            ids = root / f"{s['name']}.ids.json"
            if not ids.is_file():
                raise GraphStoreError(f"graph store file missing: {ids}")
        sizes = np.array([s["n_graphs"] for s in shards], dtype=np.int64)
        if int(sizes.sum()) != int(header["n_graphs"]):
            raise GraphStoreError(
                f"{head}: the shards hold {int(sizes.sum())} graphs, n_graphs says "
                f"{header['n_graphs']}"
            )
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._open: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def shard(self, k: int) -> tuple:
        """(numbers, nbr_index, nbr_dist, offsets, ids) of shard ``k``, memory-mapped."""
        arrays = self._open.get(k)
        if arrays is not None:
            return arrays
        with self._lock:
            arrays = self._open.get(k)
            if arrays is None:
                arrays = self._load(k)
                self._open[k] = arrays
        return arrays

    def _load(self, k: int) -> tuple:
        s = self.header["shards"][k]
        name = s["name"]
        arrays = {}
        for suffix, (dtype, shape) in _ARRAYS.items():
            path = self.root / f"{name}.{suffix}.npy"
            try:  # checked at open; a file replaced or cut short since is named here
                _check_npy(path, dtype, shape(s["n_graphs"], s["n_atoms"], self.m))
                # np.asarray: plain read-only ndarray views of the maps, not np.memmap objects
                arrays[suffix] = np.asarray(np.load(path, mmap_mode="r" if suffix != "offsets"
                                                    else None))
            except (GraphStoreError, ValueError, OSError) as exc:
                raise GraphStoreError(
                    f"{path} changed after the graph store {self.root} was opened: {exc}; "
                    "a graph store must not be rewritten while it is read (write it again, "
                    "then reopen it)"
                ) from None
        out = [arrays[suffix] for suffix in ("numbers", "nbr_index", "nbr_dist")]
        offsets = arrays["offsets"]
        if offsets[0] != 0 or offsets[-1] != s["n_atoms"] or (np.diff(offsets) < 1).any():
            raise GraphStoreError(
                f"{self.root / (name + '.offsets.npy')}: offsets must start at 0, increase "
                f"and end at n_atoms={s['n_atoms']}"
            )
        ids_path = self.root / f"{name}.ids.json"
        try:
            ids = json.loads(ids_path.read_text())
        except (ValueError, OSError) as exc:
            raise GraphStoreError(f"{ids_path} is not valid JSON: {exc}") from None
        if not isinstance(ids, list) or len(ids) != s["n_graphs"]:
            raise GraphStoreError(f"{ids_path} must be a list of {s['n_graphs']} ids")
        return (*out, offsets.tolist(), ids)

    def graph(self, i: int) -> CrystalGraph:
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        numbers, idx, dist, offsets, ids = self.shard(k)
        j = i - int(self.starts[k])
        a, b = offsets[j], offsets[j + 1]
        return CrystalGraph(numbers[a:b], idx[a:b], dist[a:b], self.atom_table, self.gaussian,
                            ids[j])


class GraphStore(CrystalGraphs):
    """A graph store on disk (see :func:`write_graph_store`), read as a sequence of graphs.

    Behaves as :class:`~cgcnn_sk.CrystalGraphs` -- ``len``, integer indexing, slices,
    integer arrays and boolean masks, iteration -- but each graph is built on access from
    read-only memory-mapped views of the shard files, so ``CGCNNRegressor.fit`` / ``predict``
    and a Pipeline's ``CrystalGraphFeaturizer`` (which re-cuts graphs) take it unchanged, and
    only the batches in use are in memory. Slicing returns another ``GraphStore`` over the same
    files. Pickling keeps only the path and the selected positions, so worker processes
    (joblib, dask) reopen the files instead of receiving the graphs.

    Parameters
    ----------
    path : str or path-like
        The directory written by :func:`write_graph_store`. Every file listed in its header is
        checked (present, dtype, shape, size) when the store is opened.

    Attributes
    ----------
    path : pathlib.Path
    header : dict
        The parsed ``header.json``: settings, counts, shards.
    atom_table : ndarray of shape (n_z, n_atom_features), float32

    Raises
    ------
    GraphStoreError
        A ``ValueError`` naming the missing, truncated or mismatching file.
    """

    def __init__(self, path: str | os.PathLike):
        self._files = _Files(Path(path))
        self._index: np.ndarray | None = None  # None: every graph, in order

    @classmethod
    def _view(cls, files: _Files, index: np.ndarray) -> GraphStore:
        view = object.__new__(cls)
        view._files = files
        view._index = index
        return view

    @property
    def path(self) -> Path:
        return self._files.root

    @property
    def header(self) -> dict:
        return self._files.header

    @property
    def atom_table(self) -> np.ndarray:
        return self._files.atom_table

    @property
    def graphs(self) -> list[CrystalGraph]:
        """All selected graphs as a list (each still a view of the files)."""
        return list(self)

    def _positions(self) -> np.ndarray:
        if self._index is None:
            return np.arange(int(self._files.starts[-1]))
        return self._index

    def __len__(self) -> int:
        return int(self._files.starts[-1]) if self._index is None else len(self._index)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # numpy-style ``X[idx, ...]``
            key = key[0]
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"graph index {i} out of range for a store of {n} graphs")
            i %= n
            return self._files.graph(i if self._index is None else int(self._index[i]))
        if isinstance(key, slice):
            return self._view(self._files, self._positions()[key])
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(f"boolean index of length {key.shape[0]} for {n} graphs")
            key = np.flatnonzero(key)
        if key.size and key.dtype.kind not in "iu":
            raise IndexError(f"graph indices must be integers, got dtype {key.dtype}")
        key = key.ravel().astype(np.int64)
        if key.size and (key.max() >= n or key.min() < -n):
            raise IndexError(f"graph index out of range for a store of {n} graphs")
        return self._view(self._files, self._positions()[key % n if n else key])

    def __iter__(self) -> Iterator[CrystalGraph]:
        graph = self._files.graph
        return (graph(int(i)) for i in self._positions())

    @property
    def nbytes(self) -> int:
        """Bytes of the selected graphs' arrays (on disk; the atom table not counted)."""
        per_atom = 2 + self._files.m * (np.dtype(INDEX_DTYPE).itemsize
                                        + np.dtype(DIST_DTYPE).itemsize)
        return per_atom * self.n_atoms

    @property
    def n_atoms(self) -> int:
        if self._index is None:
            return int(self._files.header["n_atoms"])
        return sum(g.n_atoms for g in self)

    def __reduce__(self):
        return (_reopen, (os.fspath(self._files.root), self._index))

    def __repr__(self) -> str:
        h = self._files.header
        return (
            f"GraphStore(n_graphs={len(self)}, n_atoms={self.n_atoms}, "
            f"n_shards={len(h['shards'])}, max_num_nbr={h['max_num_nbr']})"
        )


def _reopen(path: str, index: np.ndarray | None) -> GraphStore:
    store = GraphStore(path)
    return store if index is None else GraphStore._view(store._files, index)
