"""The scikit-learn transformer from crystal structures to CGCNN crystal graphs."""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_memory

from . import _graph
from ._atoms import CGCNN_SEGMENTS, MAX_Z, load_atom_table
from ._graph import CrystalGraph, CrystalGraphs, gaussian_centers
from ._structures import coerce_structures

__all__ = ["CrystalGraphError", "CrystalGraphFeaturizer", "cache_info", "clear_cache"]

#: The neighbour lists of a structure are searched and cached for at least this many neighbours,
#: so that a sweep over smaller ``max_num_nbr`` values (4, 8, 12) needs one search.
MIN_STORED_NBR = 12
#: Default bound of the in-process neighbour cache, in bytes of stored arrays.
DEFAULT_CACHE_BYTES = 1 << 30


class CrystalGraphError(ValueError):
    """Some input items could not be featurized.

    Raised once per ``transform`` after every item has been tried; the good items are cached,
    so a rerun after fixing the bad ones only searches the fixed ones.

    Attributes
    ----------
    errors : list of (int, str or None, str)
        ``(position, id, message)`` for every bad item, in input order.
    n_items : int
        Number of items in the input.
    """

    def __init__(self, errors: list[tuple[int, str | None, str]], n_items: int):
        self.errors = list(errors)
        self.n_items = n_items
        lines = [f"{len(errors)} of {n_items} structures could not be featurized:"]
        shown = 25
        for pos, ident, msg in errors[:shown]:
            name = f" ({ident})" if ident is not None else ""
            lines.append(f"  item {pos}{name}: {msg}")
        if len(errors) > shown:
            lines.append(f"  ... and {len(errors) - shown} more (see the .errors attribute)")
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), (self.errors, self.n_items))


# --------------------------------------------------------------------------------------------
# In-process neighbour cache
# --------------------------------------------------------------------------------------------


class _NeighborCache:
    """LRU map ``(structure key, radius) -> sorted neighbour lists``, bounded in bytes.

    Each entry keeps the lists for the largest ``M`` searched so far; smaller ``M`` are
    slices. An entry whose every atom has padding is complete and serves any larger ``M`` too.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[tuple, tuple] = OrderedDict()  # (idx, dist, complete, isolated)
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[tuple], m: int) -> list:
        """``get`` for many keys under one lock (the featurizer's hot path).

        Hits for a smaller ``m`` are read-only views of the stored lists, not copies.
        """
        entries: list = []
        append = entries.append
        with self._lock:
            data, move = self._data, self._data.move_to_end
            for key in keys:
                entry = data.get(key)
                if entry is not None and (entry[0].shape[1] >= m or entry[2]):
                    move(key)
                    append(entry)
                else:
                    append(None)
            misses = entries.count(None)
            self.misses += misses
            self.hits += len(entries) - misses
        out: list = []
        for entry in entries:
            if entry is None:
                out.append(None)
                continue
            idx, dist, _, isolated = entry
            stored = idx.shape[1]
            if stored > m:
                idx, dist = idx[:, :m], dist[:, :m]
            elif stored < m:  # complete lists: pad
                idx = np.pad(idx, ((0, 0), (0, m - stored)), constant_values=-1)
                dist = np.pad(dist, ((0, 0), (0, m - stored)), constant_values=0.0)
                idx.flags.writeable = False
                dist.flags.writeable = False
            out.append((idx, dist, isolated))
        return out

    def put(self, key: tuple, idx: np.ndarray, dist: np.ndarray) -> bool:
        """Store fresh search results (kept read-only, not copied); return ``isolated``."""
        idx = np.asarray(idx, dtype=_graph.INDEX_DTYPE)
        dist = np.asarray(dist, dtype=_graph.DIST_DTYPE)
        idx.flags.writeable = False
        dist.flags.writeable = False
        size = idx.nbytes + dist.nbytes + len(key[0])
        # every atom padded: the lists hold all neighbours within the radius, any M is served
        complete = idx.shape[1] > 0 and bool((idx[:, -1] < 0).all())
        isolated = bool(idx.shape[0]) and bool((idx[:, 0] < 0).any())  # an atom w/o neighbour
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._nbytes -= old[0].nbytes + old[1].nbytes + len(key[0])
            if size <= self.max_bytes:
                self._data[key] = (idx, dist, complete, isolated)
                self._nbytes += size
                self._evict()
        return isolated

    def _evict(self) -> None:
        while self._nbytes > self.max_bytes and self._data:
            key, (i, d, _, _) = self._data.popitem(last=False)
            self._nbytes -= i.nbytes + d.nbytes + len(key[0])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._nbytes = 0
            self.hits = 0
            self.misses = 0

    def info(self) -> dict:
        with self._lock:
            return {
                "n_entries": len(self._data),
                "nbytes": self._nbytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
            }


_CACHE = _NeighborCache()


# --------------------------------------------------------------------------------------------
# What was read from each live Structure, to skip re-reading it on the next transform
# --------------------------------------------------------------------------------------------

#: Reading a Structure to build its content key costs about a sixth of featurizing it, and a
#: ``max_num_nbr`` sweep reads every structure once per value; _ReadMemo skips that read for a
#: Structure seen before whose pymatgen state is untouched.


def _site_state(sites) -> list:
    """The objects pymatgen replaces whenever a site changes through its API, flattened.

    Setting ``frac_coords``/``coords``/``x``/``a``/``species``/``lattice`` on a site assigns a
    new array or Composition to at least one of these (``site.a = v`` writes the fractional
    array in place but replaces the Cartesian one), and ``structure[i] = ...`` brings a new
    site. One flat list keeps the number of long-lived objects (and so the garbage
    collector's work) small.
    """
    return [o for x in sites for o in (x._frac_coords, x._coords, x._species)]


class _PerObject:
    """``id(obj) -> entry`` for live objects only: each entry starts with a weak reference to
    its object and leaves when the object is freed (so an id is never matched to a newer
    object that happens to reuse it)."""

    def __init__(self):
        self._data: dict[int, tuple] = {}

    def _drop(self, ref: weakref.KeyedRef) -> None:
        self._data.pop(ref.key, None)

    def _entry(self, obj) -> tuple | None:
        entry = self._data.get(id(obj))
        return entry if entry is not None and entry[0]() is obj else None

    def _add(self, obj, *payload) -> tuple:
        """Store ``(weakref, *payload)`` for ``obj``; TypeError if it has no weak references."""
        entry = (weakref.KeyedRef(obj, self._drop, id(obj)), *payload)
        self._data[id(obj)] = entry
        return entry

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class _ReadMemo(_PerObject):
    """``id(structure) -> (weakref, lattice, pbc, site state, read result, graphs)``.

    A Structure seen before is not read again when its lattice object, its number of sites and
    each site's coordinate arrays and Composition are the very objects recorded then
    (compared with ``is``; the record keeps them alive, so no id is reused). Entries leave
    with their Structure. Writing into a site's coordinate array in place
    (``site.frac_coords[0] = x``) bypasses this, as it also leaves pymatgen's own cached
    Cartesian coordinates stale; :func:`clear_cache` forgets every record.

    ``graphs`` maps featurizer settings to the graph last built for them, so that refits on
    the same structures (the folds of a cross-validation) return the same graph objects.
    """

    def get(self, s) -> tuple | None:
        """``(read result, graphs)`` if ``s`` is unchanged since recorded, else None."""
        entry = self._entry(s)
        if entry is None:
            return None
        try:
            lattice, sites, old = s._lattice, s._sites, entry[3]
            if lattice is not entry[1] or lattice.pbc != entry[2] or 3 * len(sites) != len(old):
                return None
            i = 0
            for x in sites:  # a plain loop: no list built on this hot path
                if (x._frac_coords is not old[i] or x._coords is not old[i + 1]
                        or x._species is not old[i + 2]):
                    return None
                i += 3
        except (AttributeError, TypeError):
            return None
        return entry[4], entry[5]

    def put(self, s, read: tuple) -> dict | None:
        """Record ``read`` (the result of reading ``s``) against the current state of ``s``;
        return its (empty) dict of graphs, or None if ``s`` cannot be recorded."""
        try:
            state = (s._lattice, s._lattice.pbc, _site_state(s._sites))
            return self._add(s, *state, read, {})[5]
        except (AttributeError, TypeError):  # not a pymatgen Structure: nothing to record
            return None


_MEMO = _ReadMemo()


#: Graphs kept per Structure or per graph: the most recent settings only (a sweep over M
#: uses three; the graphs hold views of cached arrays, so the bound also bounds the memory
#: they keep beyond the neighbour cache's own byte bound).
KEPT_SETTINGS = 4


def _remember(kept: dict, key: tuple, graph) -> None:
    kept.pop(key, None)
    kept[key] = graph  # most recent last
    while len(kept) > KEPT_SETTINGS:
        try:
            del kept[next(iter(kept))]
        except (KeyError, RuntimeError, StopIteration):  # another thread trimmed it first
            break


class _Recuts(_PerObject):
    """``id(graph) -> (weakref, {settings: re-cut graph})``: graphs are immutable, so a re-cut
    made once serves every later ``transform`` of the same graph with the same settings (the
    folds of a cross-validation over precomputed graphs)."""

    def get(self, g, key: tuple):
        entry = self._entry(g)
        return None if entry is None else entry[1].get(key)

    def put(self, g, key: tuple, cut) -> None:
        entry = self._entry(g)
        if entry is None:
            try:
                entry = self._add(g, {})
            except TypeError:  # not weak-referenceable (Python 3.10 slots): no record
                return
        _remember(entry[1], key, cut)


_RECUTS = _Recuts()


def clear_cache() -> None:
    """Empty the in-process caches shared by all ``CrystalGraphFeaturizer`` objects: the
    neighbour lists, the record of Structures already read and the graphs kept for refits.

    Call it after writing into a Structure's arrays in place (``site.frac_coords[0] = x``),
    a change that the record cannot see (pymatgen's setters and the Structure methods
    checked in the tests replace the arrays instead).
    """
    _CACHE.clear()
    _MEMO.clear()
    _RECUTS.clear()


def cache_info(max_bytes: int | None = None) -> dict:
    """Size and hit counts of the in-process neighbour cache; optionally set its byte bound.

    Parameters
    ----------
    max_bytes : int, optional
        New bound on the bytes of cached neighbour arrays (least recently used entries are
        dropped first). ``0`` disables caching.

    Returns
    -------
    info : dict
        ``n_entries``, ``nbytes``, ``max_bytes``, ``hits``, ``misses``.
    """
    if max_bytes is not None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        with _CACHE._lock:
            _CACHE.max_bytes = int(max_bytes)
            _CACHE._evict()
    return _CACHE.info()


def _cart(structure, item: tuple) -> np.ndarray:
    """Cartesian coordinates for the search: pymatgen's own ``site.coords`` (bit for bit what
    ``get_neighbor_list`` uses, so near-ties break as in the reference), else frac @ lattice."""
    try:
        cart = np.array([site.coords for site in structure.sites], dtype=np.float64)
        if cart.shape == (len(item[1]), 3):
            return cart
    except (AttributeError, TypeError, ValueError):
        pass
    frac = np.frombuffer(item[3], dtype=np.float64).reshape(-1, 3)
    return frac @ item[2]


def _is_graphs(X) -> bool:
    if isinstance(X, CrystalGraphs):
        return True
    if isinstance(X, list | tuple) and X:
        return all(isinstance(g, CrystalGraph) for g in X)
    return False


def _memory(memory):
    """``None`` or a ``joblib.Memory`` with a location (a str/path becomes ``Memory(path)``)."""
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    memory = check_memory(memory)
    return None if getattr(memory, "location", None) is None else memory


#: Structures searched together by one find_neighbors_batch call (bounds its pair arrays).
SEARCH_BATCH = 256


def _search(lattice, cart, pbc, radius, m):
    """One structure's search (module level so that joblib.Memory can cache it on disk)."""
    return _graph.find_neighbors_batch([(lattice, cart, pbc)], radius, m)[0]


def _search_many(jobs: list, memory) -> list:
    """Searches for ``jobs`` of ``(lattice, cart, pbc, radius, m)``: batched, or one by one
    through ``memory`` (each structure is its own disk-cache entry)."""
    if memory is not None:
        search = memory.cache(_search)
        return [search(*job) for job in jobs]
    out = []
    for a in range(0, len(jobs), SEARCH_BATCH):
        chunk = jobs[a : a + SEARCH_BATCH]
        radius, m = chunk[0][3], chunk[0][4]
        out.extend(_graph.find_neighbors_batch([job[:3] for job in chunk], radius, m))
    return out


#: Atom tables by content: one shared read-only array per distinct table, so that graphs of
#: different transform calls share it and remembered graphs can be keyed by its digest.
_TABLES: dict[bytes, np.ndarray] = {}


def _intern_table(table: np.ndarray) -> tuple[np.ndarray, bytes]:
    """The shared array equal to ``table`` and its content digest."""
    key = hashlib.blake2b(
        table.tobytes() + str((table.shape, table.dtype.str)).encode(), digest_size=16
    ).digest()
    shared = _TABLES.get(key)
    if shared is None:
        shared = table if not table.flags.writeable else table.copy()
        shared.flags.writeable = False
        shared = _TABLES.setdefault(key, shared)
    return shared, key


# --------------------------------------------------------------------------------------------
# Parameter validation (one dict, checked in fit and transform)
# --------------------------------------------------------------------------------------------


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _check_params(est: CrystalGraphFeaturizer) -> None:
    p = est.get_params(deep=False)
    if not _is_real(p["radius"]) or p["radius"] <= 0:
        raise ValueError(f"radius must be a finite number > 0 (Angstrom), got {p['radius']!r}")
    m = p["max_num_nbr"]
    if not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 1:
        raise ValueError(f"max_num_nbr must be an integer >= 1, got {m!r}")
    if not _is_real(p["step"]) or p["step"] <= 0:
        raise ValueError(f"step must be a finite number > 0 (Angstrom), got {p['step']!r}")
    if not _is_real(p["dmin"]) or p["dmin"] < 0 or p["dmin"] >= p["radius"]:
        raise ValueError(f"dmin must be a number in [0, radius), got {p['dmin']!r}")
    af = p["atom_features"]
    if not isinstance(af, str | os.PathLike | Mapping | np.ndarray):
        raise ValueError(
            "atom_features must be 'cgcnn', 'onehot', a path to an atom_init.json-style file, "
            f"a dict {{Z: vector}} or an array; got {type(af).__name__}"
        )
    nj = p["n_jobs"]
    if nj is not None and (not isinstance(nj, numbers.Integral) or isinstance(nj, bool) or nj == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {nj!r}")
    if not isinstance(p["verbose"], numbers.Integral):
        raise ValueError(f"verbose must be a bool or int, got {p['verbose']!r}")
    try:
        _memory(p["memory"])
    except ValueError as exc:
        raise ValueError(f"memory: {exc}") from None


# --------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------


class CrystalGraphFeaturizer(TransformerMixin, BaseEstimator):
    """Crystal structures to CGCNN crystal graphs (Xie & Grossman, PRL 120, 145301, 2018).

    Every atom becomes a node whose features are its element's row of an atom table (by
    default the 92-dim one-hot CGCNN encoding). Every atom is joined to its ``max_num_nbr``
    nearest neighbours within ``radius``, sorted by distance, periodic images included (so an
    atom may be bonded several times to the same site, through different images). Bond
    lengths are stored as float32 and expanded on Gaussians ``exp(-(d - mu_k)^2 / step^2)``,
    ``mu_k = dmin, dmin + step, ..., radius``, at batch time by the collate step.

    The neighbour search is the whole cost. It is done once per structure and kept in an
    in-process cache keyed by structure content and ``radius`` (and optionally on disk with
    ``memory``), for at least ``MIN_STORED_NBR = 12`` neighbours, so changing
    ``max_num_nbr``, ``dmin`` or ``step`` later -- also on a clone, as in ``GridSearchCV`` --
    only slices stored lists. The transformer is stateless with respect to data: ``fit`` only
    validates the parameters and loads the atom table.

    Parameters
    ----------
    radius : float, default=8.0
        Neighbour cutoff in Angstrom; also the last Gaussian centre.
    max_num_nbr : int, default=12
        ``M``, neighbours kept per atom. Atoms with fewer within ``radius`` are padded (index
        ``-1``), which the model masks out. An atom with none is an error.
    dmin : float, default=0.0
        First Gaussian centre in Angstrom.
    step : float, default=0.2
        Spacing of the Gaussian centres and their width, in Angstrom (41 centres by default).
    atom_features : {"cgcnn", "onehot"}, path, dict or ndarray, default="cgcnn"
        The atom table, see :func:`cgcnn_sk._atoms.load_atom_table`. Structures containing an
        element the table does not define are errors.
    n_jobs : int, default=None
        Processes for the neighbour searches of uncached structures (joblib; ``None`` means 1
        unless in a ``joblib.parallel_config`` context, ``-1`` all cores). Workers return
        their results to this process's cache.
    memory : str, path or joblib.Memory, default=None
        Also cache neighbour lists on disk (keyed by lattice, coordinates, radius and stored
        ``M``), e.g. to share them between processes or sessions.
    verbose : bool or int, default=False
        Show a tqdm progress bar over the structures.

    Attributes
    ----------
    atom_table_ : ndarray of shape (101, n_atom_features), float32
        The atom table loaded in ``fit``; row Z is element Z.
    elements_ : ndarray of int16
        Atomic numbers the table defines.
    n_atom_features_ : int
        Width of the atom table.
    n_bond_features_ : int
        Number of Gaussian centres.

    See Also
    --------
    cgcnn_sk._graph.CrystalGraph : one output graph.
    cgcnn_sk._structures.to_structure : the accepted input kinds.

    Notes
    -----
    ``transform`` accepts a list, tuple, 1-D array or pandas Series of pymatgen
    ``Structure`` objects, ASE ``Atoms``, ``Structure.as_dict()`` dicts, CIF file paths or CIF
    text, or a DataFrame with a ``structure`` column. It returns a
    :class:`~cgcnn_sk._graph.CrystalGraphs`, a sequence of graphs, not a feature matrix, so
    ``get_feature_names_out`` is not defined; :meth:`feature_labels` describes the atom and
    bond feature columns the model sees. Bad items are collected and reported together in one
    :class:`CrystalGraphError` (a ``ValueError``) after the rest has been featurized.

    ``transform`` also accepts graphs from an earlier ``transform`` (a ``CrystalGraphs`` or a
    list of ``CrystalGraph``) and re-cuts them: fewer neighbours, a smaller radius, other
    Gaussians or another atom table, without touching a structure. Featurizing once with the
    largest ``max_num_nbr`` and passing the graphs as ``X`` to a ``GridSearchCV`` over
    ``graph__max_num_nbr`` makes every refit nearly free. Structures as ``X`` come close: the
    neighbour lists are cached by structure content, and a pymatgen ``Structure`` seen
    before is not even read again while its lattice and each site's coordinate arrays and
    species are the objects recorded then (pymatgen replaces at least one of them on every
    change made through its API). Writing into a site's coordinate array in place
    (``site.frac_coords[0] = x``) is not seen; call :func:`clear_cache` after doing so.

    The neighbour arrays of the output graphs are read-only views shared with the neighbour
    cache; copy them before modifying.

    The neighbour lists agree with pymatgen's ``Structure.get_all_neighbors`` sorted by
    distance (the test suite checks this on pymatgen's bundled structures); neighbours at
    exactly equal distances keep the search's (deterministic) order.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk._featurizer import CrystalGraphFeaturizer
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"] * 4,
    ...     [[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0],
    ...      [0.5, 0, 0.5], [0, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    >>> graphs = CrystalGraphFeaturizer().fit_transform([nacl])
    >>> graphs[0]
    CrystalGraph(n_atoms=8, max_num_nbr=12, n_bonds=96, atom_features=92, bond_features=41)
    >>> [round(float(d), 2) for d in graphs[0].nbr_dist[0, [0, 5, 6]]]
    [2.82, 2.82, 3.99]
    """

    def __init__(
        self,
        radius: float = 8.0,
        max_num_nbr: int = 12,
        dmin: float = 0.0,
        step: float = 0.2,
        atom_features: Any = "cgcnn",
        n_jobs: int | None = None,
        memory: Any = None,
        verbose: bool = False,
    ):
        self.radius = radius
        self.max_num_nbr = max_num_nbr
        self.dmin = dmin
        self.step = step
        self.atom_features = atom_features
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose

    # -- scikit-learn plumbing ---------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return True  # stateless: fit only validates

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    def fit(self, X: Any = None, y: Any = None) -> CrystalGraphFeaturizer:
        """Validate the parameters and load the atom table; ``X`` and ``y`` are not used.

        Parameters
        ----------
        X : ignored
        y : ignored

        Returns
        -------
        self : CrystalGraphFeaturizer
        """
        _check_params(self)
        self.atom_table_, self.elements_ = load_atom_table(
            self.atom_features, return_elements=True
        )
        self.n_atom_features_ = int(self.atom_table_.shape[1])
        self.n_bond_features_ = len(gaussian_centers(self.dmin, self.step, self.radius))
        return self

    # -- the work ----------------------------------------------------------------------------

    def _read_item(self, s, elements: set[int]):
        """One pass over the sites: ``(key, numbers, lattice, frac)`` or a list of problems.

        This runs for every structure not recorded in ``_MEMO`` (new or changed), so it
        touches each site once and builds the cache key from raw bytes.
        """
        sites = s.sites
        n = len(sites)
        if n == 0:
            return None, ["empty structure (no sites)"]
        zs: list[int] = []
        disordered: list[int] = []
        frac = b""
        try:
            # fast path through pymatgen internals (a site's Composition and its {species:
            # amount} dict, its float64 fractional coordinates); any surprise falls back to
            # the public API below, which gives the same result
            for site in sites:
                ((sp, occ),) = site._species._data.items()  # ValueError unless one species
                if occ != 1:
                    raise ValueError("partial occupancy")
                zs.append(sp.Z)
            frac = b"".join([site._frac_coords.tobytes() for site in sites])
        except (AttributeError, TypeError, ValueError):
            zs = []
        if len(zs) != n or len(frac) != 24 * n:  # slow path: public API, finds the bad sites
            zs, parts = [], []
            for i, site in enumerate(sites):
                comp = site.species
                if len(comp) != 1:
                    disordered.append(i)
                    continue
                ((sp, occ),) = comp.items()
                if abs(occ - 1.0) > 1e-8:
                    disordered.append(i)
                    continue
                zs.append(int(getattr(sp, "Z", 0) or 0))
                parts.append(np.asarray(site.frac_coords, dtype=np.float64).tobytes())
            frac = b"".join(parts)
        if disordered:
            desc = ", ".join(f"site {i} ({sites[i].species})" for i in disordered[:3])
            more = f" and {len(disordered) - 3} more" if len(disordered) > 3 else ""
            return None, [
                f"disordered (partially occupied) site(s): {desc}{more}; CGCNN needs exactly "
                "one element per site (order the structure first)"
            ]
        unknown = set(zs) - elements
        if unknown:
            return None, [self._element_problem(z, sites[zs.index(z)].specie, elements)
                          for z in sorted(unknown)]
        lattice = s.lattice
        matrix = np.asarray(lattice.matrix, dtype=np.float64)
        numbers_ = np.array(zs, dtype=np.int16)
        pbc = tuple(bool(p) for p in lattice.pbc)
        key = b"".join((matrix.tobytes(), frac, numbers_.tobytes(), bytes(pbc)))
        zmask = 0  # the elements present, as bits of a (GC-untracked) int
        for z in set(zs):
            zmask |= 1 << z
        return (key, numbers_, matrix, frac, pbc, zmask), []

    def _element_problem(self, z: int, el, elements: set[int]) -> str:
        if z < 1:
            return f"species {el} is not a chemical element"
        if z > MAX_Z:
            return (
                f"element {el.symbol} (Z={z}) is beyond Z={MAX_Z}, the largest the atom "
                "tables cover"
            )
        return (
            f"element {el.symbol} (Z={z}) is missing from the atom table "
            f"atom_features={self._table_name()} ({len(elements)} elements)"
        )

    def _table_name(self) -> str:
        af = self.atom_features
        if isinstance(af, str | os.PathLike):
            return repr(os.fspath(af))
        return f"<{type(af).__name__}>"

    def _isolated_message(self, lattice, cart, pbc, idx, species) -> str:
        lonely = np.flatnonzero(idx[:, 0] < 0)
        parts = []
        nearest_max = 0.0
        for i in lonely[:3]:
            d = _graph.nearest_distance(lattice, cart, int(i), self.radius, pbc=pbc)
            nearest_max = max(nearest_max, d)
            where = f"nearest at {d:.3f} A" if np.isfinite(d) else "no neighbour at all"
            parts.append(f"site {int(i)} ({species[int(i)]}, {where})")
        more = f" and {len(lonely) - 3} more" if len(lonely) > 3 else ""
        hint = (
            f"; use radius >= {math.ceil(nearest_max * 10 + 1e-9) / 10:.1f}"
            if np.isfinite(nearest_max)
            else "; the structure has no periodic neighbour for this atom"
        )
        return (
            f"atom(s) without any neighbour within radius={self.radius}: "
            f"{', '.join(parts)}{more}{hint}"
        )

    def transform(self, X: Any) -> CrystalGraphs:
        """Featurize structures into crystal graphs.

        Parameters
        ----------
        X : list, tuple, ndarray, pandas Series or DataFrame, or CrystalGraphs
            Structures (pymatgen ``Structure``, ASE ``Atoms``, dict, CIF path or CIF text);
            a DataFrame needs a ``structure`` column. Graphs from an earlier ``transform``
            are re-cut (see Notes of the class).

        Returns
        -------
        graphs : CrystalGraphs
            One :class:`~cgcnn_sk._graph.CrystalGraph` per input item, in order.

        Raises
        ------
        CrystalGraphError
            Listing every item that could not be featurized, after all others were.
        ValueError
            For an empty input or invalid parameters.
        """
        _check_params(self)
        table, elements_arr = load_atom_table(self.atom_features, return_elements=True)
        table, table_key = _intern_table(table)
        elements = {int(z) for z in elements_arr}
        memory = _memory(self.memory)
        radius = float(self.radius)
        m = int(self.max_num_nbr)
        m_store = max(m, MIN_STORED_NBR)
        gaussian = (float(self.dmin), float(self.step), radius)

        if _is_graphs(X):
            return self._regraph(X, table, table_key, elements, m, gaussian)
        structures, ids = coerce_structures(X)
        n = len(structures)
        errors: dict[int, str] = {}
        allowed = sum(1 << z for z in elements)
        gkey = (m, gaussian, table_key)  # graphs built for these settings are kept in _MEMO
        keep = _CACHE.max_bytes > 0  # a cache bound of 0 asks for no caching at all
        graphs: list[CrystalGraph | None] = [None] * n
        derived: list = [None] * n  # per position: the graphs dict of its _MEMO record
        fresh: list[int] = []  # read now (not recorded in _MEMO): record them at the end
        arrays: list = [None] * n  # per position: (key, numbers, lattice, frac, pbc, zmask)
        read, memo_get = self._read_item, _MEMO.get  # the per-structure hot loop
        for pos, s in enumerate(structures):
            if isinstance(s, Exception):
                errors[pos] = str(s)
                continue
            hit = memo_get(s)
            if hit is None or hit[0][5] & ~allowed:  # unseen, changed, or other atom table
                try:
                    arr, problems = read(s, elements)
                except Exception as exc:  # a broken object that passed as a Structure
                    arr, problems = None, [f"invalid structure: {type(exc).__name__}: {exc}"]
                if problems:
                    errors[pos] = "; ".join(problems)
                    continue
                fresh.append(pos)
            else:
                arr, derived[pos] = hit
                g = derived[pos].get(gkey)
                if g is not None and g.id == ids[pos]:
                    graphs[pos] = g  # built before for these settings: done
                    continue
            arrays[pos] = arr
        good = [pos for pos in range(n) if arrays[pos] is not None]
        lists: list = [None] * n  # per position: (idx, dist, isolated)
        hits = _CACHE.get_many([(arrays[pos][0], radius) for pos in good], m)
        todo: list[int] = []
        for pos, hit in zip(good, hits, strict=True):
            if hit is None:
                todo.append(pos)
            else:
                lists[pos] = hit

        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="neighbour search", unit="structure")
            bar.update(n - len(todo))

        jobs = [
            (arrays[p][2], _cart(structures[p], arrays[p]), arrays[p][4], radius, m_store)
            for p in todo
        ]
        results = self._run_searches(jobs, memory, bar)
        for pos, (idx, dist) in zip(todo, results, strict=True):
            isolated = _CACHE.put((arrays[pos][0], radius), idx, dist)
            lists[pos] = (idx[:, :m], dist[:, :m], isolated)
        if bar is not None:
            bar.close()

        make = CrystalGraph
        for pos in good:
            idx, dist, isolated = lists[pos]
            arr = arrays[pos]
            if isolated:
                species = [str(structures[pos][i].specie) for i in range(len(arr[1]))]
                cart = _cart(structures[pos], arr)
                errors[pos] = self._isolated_message(arr[2], cart, arr[4], idx, species)
                continue
            graphs[pos] = make(arr[1], idx, dist, table, gaussian, ids[pos])
        for pos in fresh:  # after the search, which fills pymatgen's lazy Cartesian coords
            if pos not in errors:
                derived[pos] = _MEMO.put(structures[pos], arrays[pos])
        if keep:
            for pos in good:
                if derived[pos] is not None and graphs[pos] is not None:
                    _remember(derived[pos], gkey, graphs[pos])
        if errors:
            raise CrystalGraphError([(p, ids[p], errors[p]) for p in sorted(errors)], n)
        return CrystalGraphs(graphs)

    def _regraph(
        self, graphs, table, table_key: bytes, elements: set[int], m: int, gaussian
    ) -> CrystalGraphs:
        """Re-cut already featurized graphs: fewer neighbours, a smaller radius, new Gaussians.

        Exact whenever each graph holds at least ``m`` neighbours per atom (or all of them
        within its radius) and was built with a radius >= ``self.radius``: the ``m`` nearest
        within the smaller radius are then the first ``m`` of its sorted lists.
        """
        radius = gaussian[2]
        n = len(graphs)
        if n == 0:
            raise ValueError("empty input: no structures to featurize")
        errors: list[tuple[int, str | None, str]] = []
        out: list[CrystalGraph] = []
        make = CrystalGraph
        key = (m, gaussian, table_key)
        recut_get = _RECUTS.get
        keep = _CACHE.max_bytes > 0
        for pos, g in enumerate(graphs):
            cut = recut_get(g, key)
            if cut is not None:
                out.append(cut)
                continue
            g_radius = float(g.gaussian[2])
            stored = g.nbr_index.shape[1]
            problem = None
            if (  # the common case of a sweep: the same radius, at most the stored M
                radius == g_radius
                and m <= stored
                and not g.nbr_index.flags.writeable  # views cannot be changed behind us
                and not g.nbr_dist.flags.writeable
                and elements.issuperset(g.numbers.tolist())
            ):
                if m == stored and gaussian == g.gaussian and table is g.atom_table:
                    cut = g  # nothing to change
                else:
                    cut = make(g.numbers, g.nbr_index[:, :m], g.nbr_dist[:, :m], table,
                               gaussian, g.id)
                if keep:
                    _RECUTS.put(g, key, cut)
                out.append(cut)
                continue
            if radius > g_radius + 1e-9:
                problem = (
                    f"graph built with radius={g_radius} cannot be re-cut at the larger "
                    f"radius={radius}; featurize the structure again"
                )
            elif m > stored and stored and not (g.nbr_index[:, -1] < 0).all():
                problem = (
                    f"graph holds {stored} neighbours per atom, fewer than max_num_nbr={m}; "
                    "featurize the structure again"
                )
            elif not elements.issuperset(g.numbers.tolist()):
                unknown = sorted(set(g.numbers.tolist()) - elements)
                problem = f"atomic number(s) {unknown} missing from the atom table"
            else:
                idx = g.nbr_index[:, :m]
                dist = g.nbr_dist[:, :m]
                if radius < g_radius:
                    drop = dist > radius + 1e-6
                    idx = np.where(drop, -1, idx)
                    dist = np.where(drop, 0.0, dist)
                    if idx.shape[0] and (idx[:, 0] < 0).any():
                        site = int(np.flatnonzero(idx[:, 0] < 0)[0])
                        problem = (
                            f"atom(s) without any neighbour within radius={radius}, "
                            f"e.g. site {site}"
                        )
                if stored < m:
                    idx = np.pad(idx, ((0, 0), (0, m - stored)), constant_values=-1)
                    dist = np.pad(dist, ((0, 0), (0, m - stored)), constant_values=0.0)
            if problem is not None:
                errors.append((pos, g.id, problem))
                continue
            idx = np.array(idx, dtype=_graph.INDEX_DTYPE)
            dist = np.array(dist, dtype=_graph.DIST_DTYPE)
            idx.flags.writeable = False
            dist.flags.writeable = False
            out.append(
                CrystalGraph(
                    numbers=g.numbers,
                    nbr_index=idx,
                    nbr_dist=dist,
                    atom_table=table,
                    gaussian=gaussian,
                    id=g.id,
                )
            )
        if errors:
            raise CrystalGraphError(errors, n)
        return CrystalGraphs(out)

    def _run_searches(self, jobs: list, memory, bar) -> list:
        if not jobs:
            return []
        from joblib import Parallel, delayed, effective_n_jobs

        n_workers = effective_n_jobs(self.n_jobs)
        step = SEARCH_BATCH if memory is None else 16
        if n_workers == 1 or len(jobs) < 2:  # plain serial path
            out = []
            for a in range(0, len(jobs), step):
                res = _search_many(jobs[a : a + step], memory)
                out.extend(res)
                if bar is not None:
                    bar.update(len(res))
            return out
        n_chunks = max(min(len(jobs), 4 * n_workers), -(-len(jobs) // SEARCH_BATCH))
        bounds = np.linspace(0, len(jobs), n_chunks + 1).astype(int)
        chunks = [jobs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        out = []
        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
        for res in parallel(delayed(_search_many)(chunk, memory) for chunk in chunks):
            out.extend(res)
            if bar is not None:
                bar.update(len(res))
        return out

    # -- descriptions ------------------------------------------------------------------------

    def feature_labels(self) -> list[str]:
        """Names of the atom feature columns followed by the bond (Gaussian) feature columns.

        The output of ``transform`` is a sequence of graphs, not a matrix; these are the
        columns of the atom feature matrix (``atom:...``) and of the expanded bond features
        (``bond:gaussian_<centre>A``) that the collate step builds from it.
        """
        _check_params(self)
        table = load_atom_table(self.atom_features)
        width = table.shape[1]
        if isinstance(self.atom_features, str) and self.atom_features == "cgcnn":
            atom = [f"atom:{name}_{k}" for name, size in CGCNN_SEGMENTS for k in range(size)]
        elif isinstance(self.atom_features, str) and self.atom_features == "onehot":
            from pymatgen.core.periodic_table import Element

            atom = [f"atom:is_{Element.from_Z(z).symbol}" for z in range(1, MAX_Z + 1)]
        else:
            atom = [f"atom:feature_{k}" for k in range(width)]
        bond = [
            f"bond:gaussian_{mu:.2f}A"
            for mu in gaussian_centers(self.dmin, self.step, self.radius).astype(float)
        ]
        return atom + bond

    def citations(self) -> list[str]:
        """BibTeX entries to cite when using this featurizer."""
        return [
            "@article{xie2018cgcnn,\n"
            "  title = {Crystal Graph Convolutional Neural Networks for an Accurate and\n"
            "           Interpretable Prediction of Material Properties},\n"
            "  author = {Xie, Tian and Grossman, Jeffrey C.},\n"
            "  journal = {Physical Review Letters},\n"
            "  volume = {120}, number = {14}, pages = {145301}, year = {2018},\n"
            "  doi = {10.1103/PhysRevLett.120.145301}\n}",
            "@article{ong2013pymatgen,\n"
            "  title = {Python Materials Genomics (pymatgen): A robust, open-source python\n"
            "           library for materials analysis},\n"
            "  author = {Ong, Shyue Ping and Richards, William Davidson and Jain, Anubhav and\n"
            "            Hautier, Geoffroy and Kocher, Michael and Cholia, Shreyas and\n"
            "            Gunter, Dan and Chevrier, Vincent L. and Persson, Kristin A. and\n"
            "            Ceder, Gerbrand},\n"
            "  journal = {Computational Materials Science},\n"
            "  volume = {68}, pages = {314--319}, year = {2013},\n"
            "  doi = {10.1016/j.commatsci.2012.10.028}\n}",
        ]

    def implementors(self) -> list[str]:
        """Who wrote this featurizer, and whose design and data it follows."""
        return [
            "cgcnn_sk developers (this implementation)",
            "Tian Xie and Jeffrey C. Grossman (CGCNN method and the atom_init.json encoding, MIT)",
        ]
