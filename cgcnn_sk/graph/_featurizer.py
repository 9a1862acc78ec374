"""The scikit-learn transformer from crystal structures to CGCNN crystal graphs."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
from pymatgen.core.periodic_table import DummySpecies
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from .._utils import ItemErrors
from .._version import VersionedPickleMixin
from . import _crystal
from ._atoms import CGCNN_SEGMENTS, MAX_Z, load_atom_table
from ._crystal import CrystalGraph, CrystalGraphs, gaussian_centers
from ._frames import _GlobalColumns, _is_frame
from ._geometry import SuspiciousGeometryWarning, cell_problem, contact_problem
from ._neighbours import (
    _CACHE,
    MIN_STORED_NBR,
    SEARCH_BATCH,
    _cached_lists,
    _gc_paused,
    _readonly,
    _search_many,
    cache_info,
    clear_cache,
)
from ._structures import coerce_structures, structure_key

__all__ = ["CrystalGraphError", "CrystalGraphFeaturizer", "cache_info", "clear_cache"]


class CrystalGraphError(ItemErrors):
    """Some input items could not be featurized (a ``ValueError``).

    Raised once per ``transform`` after every item has been tried; the good items are cached,
    so a rerun after fixing the bad ones only searches the fixed ones.

    Attributes
    ----------
    errors : list of (int, str or None, str)
        ``(position, id, message)`` for every bad item, in input order.
    n_items : int
        Number of items in the input.
    """

    what = "structures could not be featurized"


class _BadItem(ValueError):
    """One item's problem, collected into the CrystalGraphError of its transform."""


# --------------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------------


class CrystalGraphFeaturizer(
    VersionedPickleMixin, _GlobalColumns, TransformerMixin, BaseEstimator
):
    """Crystal structures to CGCNN crystal graphs (Xie & Grossman, PRL 120, 145301, 2018).

    Every atom becomes a node whose features are its element's row of an atom table (by
    default the 92-dim one-hot CGCNN encoding). Every atom is joined to its ``max_num_nbr``
    nearest neighbours within ``radius``, sorted by distance, periodic images included (so an
    atom may be bonded several times to the same site, through different images). Bond
    lengths are stored as float32 and expanded on Gaussians ``exp(-(d - mu_k)^2 / step^2)``,
    ``mu_k = dmin, dmin + step, ..., radius``, at batch time by the collate step.

    The neighbour search is the whole cost. It is done once per structure and kept in an
    in-process cache keyed by structure content and ``radius`` (and optionally on disk with
    ``memory``), for at least 12 neighbours, so changing ``max_num_nbr``, ``dmin`` or
    ``step`` later -- also on a clone, as in ``GridSearchCV`` -- only slices stored lists.

    Parameters
    ----------
    radius : float, default=8.0
        Neighbour cutoff in Angstrom; also the last Gaussian centre.
    max_num_nbr : int, default=12
        ``M``, neighbours kept per atom. Atoms with fewer within ``radius`` are padded (index
        ``-1``), which the model masks out. An atom with none is an error.
    dmin : float, default=0.0
        First Gaussian centre in Angstrom, in ``[0, radius)``.
    step : float, default=0.2
        Spacing of the Gaussian centres and their width, in Angstrom (41 centres by default).
    atom_features : {"cgcnn", "onehot"}, path, dict or ndarray, default="cgcnn"
        The atom table, see :func:`cgcnn_sk.load_atom_table`. Structures containing an
        element the table does not define are errors.
    n_jobs : int, default=None
        Processes for the neighbour searches of uncached structures (joblib; ``-1`` all
        cores). Workers return their results to this process's cache. ``None`` searches in
        this process even inside a ``joblib.parallel_config`` context: a featurizer inside a
        dask or loky task (a grid search's fit) would otherwise send its searches on as nested
        tasks, which run concurrently, all miss the cache and search the same structures
        again.
    memory : str, path or joblib.Memory, default=None
        Also cache neighbour lists on disk (keyed by lattice, coordinates, radius and stored
        ``M``), to share them between processes (the workers of a parallel
        ``cross_validate``) and sessions; as ``Pipeline(memory=...)`` takes it.
    verbose : bool or int, default=False
        Show a tqdm progress bar over the searched structures.
    structure_column : str, default="structure"
        The column holding the structures when ``X`` is a pandas DataFrame.
    global_features : None, "all" or list of str, default=None
        Extra per-structure inputs (temperature, pressure, a composition descriptor) taken
        from the other columns of a DataFrame ``X`` and carried by each graph as
        ``CrystalGraph.global_features`` (raw values; the estimators scale them in ``fit``).
        ``None``: other columns are ignored (a DataFrame is read as its structure column
        alone). ``"all"``: every column but ``structure_column``, in frame order. A list:
        those columns, in that order. Opt-in on purpose: a frame such as
        ``load_jdft2d(as_frame=True)`` also holds the target, which must not become an input.
        The columns must be numeric (bool, int or float) and finite; anything else is a
        ``ValueError`` naming the column and the first bad row. With globals requested,
        ``X`` must be a DataFrame.

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
    global_feature_names_ : ndarray of str or None
        The global feature columns, in the order the graphs carry them: learned in ``fit``
        from a DataFrame ``X`` (or given as a list), ``None`` without globals or when ``fit``
        saw no DataFrame. When known, ``transform`` requires the same columns.

    See Also
    --------
    cgcnn_sk.CrystalGraph : one output graph.
    cgcnn_sk.graph.to_structure : the accepted input kinds.

    Notes
    -----
    ``transform`` accepts a list, tuple, 1-D array or pandas Series of pymatgen
    ``Structure`` objects, ASE ``Atoms``, ``Structure.as_dict()`` dicts, CIF file paths or CIF
    text, or a DataFrame with a ``structure`` column (``structure_column``; its other columns
    are ignored unless ``global_features`` names them). It returns a
    :class:`~cgcnn_sk.CrystalGraphs`, a sequence of graphs, not a feature matrix, so
    ``get_feature_names_out`` is not defined; :meth:`feature_labels` describes the atom and
    bond feature columns the model sees. Bad items are collected and reported together in one
    :class:`CrystalGraphError` (a ``ValueError``) after the rest has been featurized.

    ``transform`` also accepts graphs from an earlier ``transform`` (a ``CrystalGraphs`` or a
    list of ``CrystalGraph``) and re-cuts them: fewer neighbours, a smaller radius, other
    Gaussians or another atom table, without touching a structure (at a smaller radius,
    neighbours tied at the ``M``-th distance may be chosen differently from a fresh search).
    Featurizing once with the largest ``max_num_nbr`` and passing the graphs as ``X`` to a
    ``GridSearchCV`` over ``graph__max_num_nbr`` makes every refit nearly free.

    The neighbour arrays of the output graphs are read-only views shared with the neighbour
    cache; copy them before modifying. The neighbour lists agree with pymatgen's
    ``Structure.get_all_neighbors`` sorted by distance (the test suite checks this on
    pymatgen's bundled structures); neighbours at exactly equal distances keep the search's
    (deterministic) order.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk import CrystalGraphFeaturizer
    >>> nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"] * 4,
    ...     [[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0],
    ...      [0.5, 0, 0.5], [0, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    >>> graphs = CrystalGraphFeaturizer().fit_transform([nacl])
    >>> graphs[0]
    CrystalGraph(n_atoms=8, max_num_nbr=12, n_bonds=96, atom_features=92, bond_features=41)
    >>> [round(float(d), 2) for d in graphs[0].nbr_dist[0, [0, 5, 6]]]
    [2.82, 2.82, 3.99]

    Per-structure inputs from the numeric columns of a DataFrame:

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"structure": [nacl, nacl], "temperature": [300.0, 600.0]})
    >>> graphs = CrystalGraphFeaturizer(global_features="all").fit_transform(frame)
    >>> graphs[1].global_names, graphs[1].global_features.tolist()
    (('temperature',), [600.0])
    """

    #: What a fitted featurizer needs to transform (a pickle lacking some of it cannot work).
    _required_state = ("atom_table_", "elements_", "n_atom_features_", "n_bond_features_")
    _parameter_constraints: dict = {
        "radius": [Interval(Real, 0, None, closed="neither")],
        "max_num_nbr": [Interval(Integral, 1, None, closed="left")],
        "dmin": [Interval(Real, 0, None, closed="left")],
        "step": [Interval(Real, 0, None, closed="neither")],
        "atom_features": [str, os.PathLike, Mapping, np.ndarray],
        "n_jobs": [Integral, None],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "verbose": ["verbose"],
        "structure_column": [str],
        "global_features": [None, StrOptions({"all"}), list, tuple],
    }

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
        structure_column: str = "structure",
        global_features: Any = None,
    ):
        self.radius = radius
        self.max_num_nbr = max_num_nbr
        self.dmin = dmin
        self.step = step
        self.atom_features = atom_features
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose
        self.structure_column = structure_column
        self.global_features = global_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        tags.transformer_tags.preserves_dtype = []
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any = None, y: Any = None) -> CrystalGraphFeaturizer:
        """Validate the parameters and load the atom table; ``X`` and ``y`` are not used.

        Parameters
        ----------
        X : DataFrame or ignored
            With ``global_features`` set, a DataFrame fixes the global columns
            (``global_feature_names_``) that ``transform`` then requires; otherwise unused.
        y : ignored

        Returns
        -------
        self : CrystalGraphFeaturizer
        """
        # what the constraints dict cannot say: relations between parameters, n_jobs != 0
        if self.dmin >= self.radius:
            raise ValueError(f"dmin must be smaller than radius={self.radius}, got {self.dmin}")
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be None or a non-zero integer, got 0")
        self.atom_table_, self.elements_ = load_atom_table(
            self.atom_features, return_elements=True
        )
        self.n_atom_features_ = int(self.atom_table_.shape[1])
        self.n_bond_features_ = len(gaussian_centers(self.dmin, self.step, self.radius))
        names = None
        if self.global_features is not None:
            if _is_frame(X):
                names = [name for name, _ in self._global_columns(X, fitted=False)]
            elif not isinstance(self.global_features, str):
                names = self._listed_columns()
        self.global_feature_names_ = None if names is None else np.asarray(names, dtype=object)
        return self

    # -- the work ----------------------------------------------------------------------------

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
            One :class:`~cgcnn_sk.CrystalGraph` per input item, in order.

        Raises
        ------
        CrystalGraphError
            Listing every item that could not be featurized, after all others were.
        ValueError
            For an empty input.
        """
        check_is_fitted(self)
        if isinstance(X, CrystalGraphs) or (
            isinstance(X, list | tuple) and X and isinstance(X[0], CrystalGraph)
        ):
            return self._recut(CrystalGraphs.checked(X, type(self).__name__, compatible=False))
        X, global_values, global_names = self._split_frame(X)
        structures, ids = coerce_structures(X)
        radius, m = float(self.radius), int(self.max_num_nbr)
        n = len(structures)
        errors: dict[int, str] = {}
        allowed = np.zeros(256, dtype=bool)  # by Z (pymatgen's go to 118): in the table
        allowed[self.elements_] = True
        with _gc_paused():
            items: dict[int, tuple] = {}  # position -> (key, numbers, lattice, cart, pbc)
            for pos, s in enumerate(structures):
                if isinstance(s, Exception):  # could not be read as a structure
                    errors[pos] = str(s)
                    continue
                try:
                    items[pos] = self._read(s, allowed)
                except _BadItem as exc:
                    errors[pos] = str(exc)
                except Exception as exc:  # a broken object that passed as a Structure
                    errors[pos] = f"invalid structure: {type(exc).__name__}: {exc}"
            lists = {pos: _cached_lists((item[0], radius), m) for pos, item in items.items()}
            todo = [pos for pos, hit in lists.items() if hit is None]
            found = self._run_searches([items[p][2:] for p in todo], radius, max(m, MIN_STORED_NBR))
            for pos, (idx, dist) in zip(todo, found, strict=True):
                idx, dist = _readonly(idx, dist)
                _CACHE.put((items[pos][0], radius), (idx, dist))
                lists[pos] = (idx[:, :m], dist[:, :m])
            gaussian = (float(self.dmin), float(self.step), radius)
            graphs = [None] * n
            warned: list[tuple[int, str | None, str]] = []
            for pos, (idx, dist) in lists.items():
                if idx.shape[0] and (idx[:, 0] < 0).any():
                    errors[pos] = self._isolated_message(structures[pos], items[pos], idx)
                    continue
                error, warning = contact_problem(idx, dist, items[pos][1])
                if error is not None:
                    errors[pos] = error
                    continue
                if warning is not None:
                    warned.append((pos, ids[pos], warning))
                graphs[pos] = CrystalGraph(
                    items[pos][1], idx, dist, self.atom_table_, gaussian, ids[pos],
                    None if global_values is None else global_values[pos], global_names,
                )
        if warned:
            _warn_geometry(warned, n)
        if errors:
            raise CrystalGraphError([(p, ids[p], errors[p]) for p in sorted(errors)], n)
        return CrystalGraphs(graphs)

    def _read(self, s, allowed: np.ndarray) -> tuple:
        """Read a Structure through pymatgen's public API: ``(content key, atomic numbers,
        lattice, Cartesian coordinates, pbc)``; a :class:`_BadItem` names what is wrong."""
        if len(s) == 0:
            raise _BadItem("empty structure (no sites)")
        try:
            species = s.species  # pymatgen raises AttributeError for a disordered site
        except AttributeError:
            bad = [i for i, site in enumerate(s) if not site.is_ordered]
            if not bad:
                raise
            desc = ", ".join(f"site {i} ({s[i].species})" for i in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise _BadItem(
                f"disordered (partially occupied) site(s): {desc}{more}; CGCNN needs exactly "
                "one element per site (order the structure first)"
            ) from None
        # int64 first: a placeholder species (pymatgen's DummySpecies) has a huge Z
        zs = np.array([sp.Z for sp in species], dtype=np.int64)
        known = (zs >= 0) & (zs < allowed.size)
        known[known] = allowed[zs[known]]
        unknown = np.unique(zs[~known])
        if unknown.size:
            raise _BadItem("; ".join(  # each unknown element named by its first site
                self._element_problem(int(z), species[int(np.argmax(zs == z))])
                for z in unknown
            ))
        numbers = zs.astype(np.int16)
        lattice = np.asarray(s.lattice.matrix, dtype=np.float64)
        # pymatgen's own Cartesian coordinates: bit for bit what get_neighbor_list searches
        cart = np.asarray(s.cart_coords, dtype=np.float64)
        pbc = tuple(bool(p) for p in s.lattice.pbc)
        problem = cell_problem(lattice, cart, numbers, pbc)
        if problem is not None:
            raise _BadItem(problem)
        key = structure_key(s, lattice=lattice, cart=cart, species=species)
        return key, numbers, lattice, cart, pbc

    def _element_problem(self, z: int, species) -> str:
        if isinstance(species, DummySpecies):
            return (f"species {species} is a placeholder (pymatgen DummySpecies), not a "
                    "chemical element: replace it by the element it stands for")
        if z < 1:
            return f"species {species} is not a chemical element"
        if z > MAX_Z:
            return (
                f"element {species.symbol} (Z={z}) is beyond Z={MAX_Z}, the largest the atom "
                "tables cover"
            )
        af = self.atom_features
        name = f"<{type(af).__name__}>"
        if isinstance(af, str | os.PathLike):
            name = repr(os.fspath(af))
        return (
            f"element {species.symbol} (Z={z}) is missing from the atom table "
            f"atom_features={name} ({len(self.elements_)} elements)"
        )

    def _isolated_message(self, s, item: tuple, idx: np.ndarray) -> str:
        _, _, lattice, cart, pbc = item
        lonely = np.flatnonzero(idx[:, 0] < 0).tolist()
        parts = []
        nearest_max = 0.0
        for i in lonely[:3]:
            d = _crystal.nearest_distance(lattice, cart, i, self.radius, pbc=pbc)
            nearest_max = max(nearest_max, d)
            where = f"nearest at {d:.3f} A" if np.isfinite(d) else "no neighbour at all"
            parts.append(f"site {i} ({s[i].specie}, {where})")
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

    def _run_searches(self, items: list, radius: float, m: int) -> list:
        """Neighbour lists for ``items``: serially in batches, or in joblib workers."""
        if not items:
            return []
        from joblib import Parallel, delayed, effective_n_jobs

        memory = check_memory(os.fspath(self.memory) if isinstance(self.memory, os.PathLike)
                              else self.memory)
        memory = None if memory.location is None else memory
        n_workers = 1 if self.n_jobs is None else effective_n_jobs(self.n_jobs)
        size = SEARCH_BATCH
        if n_workers > 1:  # about 4 chunks per worker
            size = min(size, -(-len(items) // (4 * n_workers)))
        chunks = [items[a : a + size] for a in range(0, len(items), size)]
        if n_workers == 1 or len(chunks) == 1:  # plain serial path
            results = (_search_many(chunk, radius, m, memory) for chunk in chunks)
        else:
            parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
            results = parallel(delayed(_search_many)(c, radius, m, memory) for c in chunks)
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc="neighbour search", unit="structure")
        out: list = []
        for res in results:
            out.extend(res)
            if bar is not None:
                bar.update(len(res))
        if bar is not None:
            bar.close()
        return out

    def _recut(self, graphs) -> CrystalGraphs:
        """Re-cut already featurized graphs: fewer neighbours, a smaller radius, new Gaussians.

        Possible when a graph holds at least ``M`` neighbours per atom (or all of them within
        its radius) and was built with a radius >= ``self.radius``: the ``M`` nearest within
        the smaller radius are then the first ``M`` of its sorted lists. At the same radius
        the result is identical to a fresh featurization. At a smaller one the distances are,
        but pymatgen's search orders equidistant pairs differently at another radius, so
        among neighbours tied at the ``M``-th distance another may be kept.
        """
        radius, m = float(self.radius), int(self.max_num_nbr)
        gaussian = (float(self.dmin), float(self.step), radius)
        errors, out = [], []
        for pos, g in enumerate(graphs):
            try:
                idx, dist = self._recut_lists(g, radius, m)
            except _BadItem as exc:
                errors.append((pos, g.id, str(exc)))
                continue
            out.append(CrystalGraph(g.numbers, idx, dist, self.atom_table_, gaussian, g.id,
                                    g.global_features, g.global_names))
        if errors:
            raise CrystalGraphError(errors, len(graphs))
        return CrystalGraphs(out)

    def _recut_lists(self, g: CrystalGraph, radius: float, m: int):
        g_radius, stored = float(g.gaussian[2]), g.max_num_nbr
        if radius > g_radius + 1e-9:
            raise _BadItem(
                f"graph built with radius={g_radius} cannot be re-cut at the larger "
                f"radius={radius}; featurize the structure again"
            )
        if m > stored and stored and not (g.nbr_index[:, -1] < 0).all():
            raise _BadItem(
                f"graph holds {stored} neighbours per atom, fewer than max_num_nbr={m}; "
                "featurize the structure again"
            )
        unknown = np.setdiff1d(g.numbers, self.elements_)
        if unknown.size:
            raise _BadItem(f"atomic number(s) {unknown.tolist()} missing from the atom table")
        idx, dist = g.nbr_index[:, :m], g.nbr_dist[:, :m]
        if radius < g_radius:
            drop = dist > radius + 1e-6  # distances are float32
            idx, dist = np.where(drop, -1, idx), np.where(drop, 0.0, dist)
            if idx.shape[0] and (idx[:, 0] < 0).any():
                site = int(np.flatnonzero(idx[:, 0] < 0)[0])
                raise _BadItem(
                    f"atom(s) without any neighbour within radius={radius}, e.g. site {site}"
                )
        if stored < m:
            idx = np.pad(idx, ((0, 0), (0, m - stored)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, m - stored)))
        if idx.flags.writeable or dist.flags.writeable:  # not views of read-only lists: copy
            idx = idx.astype(_crystal.INDEX_DTYPE)
            idx, dist = _readonly(idx, dist.astype(_crystal.DIST_DTYPE))
        return idx, dist

    # -- descriptions ------------------------------------------------------------------------

    def feature_labels(self) -> list[str]:
        """Names of the atom feature columns followed by the bond (Gaussian) feature columns.

        The output of ``transform`` is a sequence of graphs, not a matrix; these are the
        columns of the atom feature matrix (``atom:...``) and of the expanded bond features
        (``bond:gaussian_<centre>A``) that the collate step builds from it, then the global
        feature columns (``global:<name>``) when ``global_feature_names_`` is known.
        """
        check_is_fitted(self)
        if isinstance(self.atom_features, str) and self.atom_features == "cgcnn":
            atom = [f"atom:{name}_{k}" for name, size in CGCNN_SEGMENTS for k in range(size)]
        elif isinstance(self.atom_features, str) and self.atom_features == "onehot":
            from pymatgen.core.periodic_table import Element

            atom = [f"atom:is_{Element.from_Z(z).symbol}" for z in range(1, MAX_Z + 1)]
        else:
            atom = [f"atom:feature_{k}" for k in range(self.n_atom_features_)]
        bond = [
            f"bond:gaussian_{mu:.2f}A"
            for mu in gaussian_centers(self.dmin, self.step, self.radius).astype(float)
        ]
        names = getattr(self, "global_feature_names_", None)
        return atom + bond + ([] if names is None else [f"global:{n}" for n in names])

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


def _warn_geometry(warned: list, n: int) -> None:
    """One :class:`SuspiciousGeometryWarning` per ``transform``, listing the structures."""
    lines = [f"{len(warned)} of {n} structures have atoms closer than any real bond:"]
    for pos, ident, text in warned[:10]:
        lines.append(f"  item {pos}" + (f" ({ident})" if ident is not None else "") + f": {text}")
    if len(warned) > 10:
        lines.append(f"  ... and {len(warned) - 10} more")
    warnings.warn("\n".join(lines), SuspiciousGeometryWarning, stacklevel=4)
