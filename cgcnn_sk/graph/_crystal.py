"""Crystal graph containers.

A :class:`CrystalGraph` is what the featurizer produces for one structure and what the
collate step consumes. It stores only what cannot be derived cheaply, compactly:

* ``numbers`` -- atomic numbers, shape ``(n_atoms,)``, int16;
* ``nbr_index`` -- for each atom, the site index of its ``M`` nearest neighbours sorted by
  distance, shape ``(n_atoms, M)``, int32, ``-1`` marks padding (fewer than ``M`` neighbours
  within the radius). Periodic images make repeated indices legitimate.
* ``nbr_dist`` -- the matching distances in Angstrom, float32, ``0.0`` where padded.

Atom feature vectors are looked up in ``atom_table`` (row ``Z`` is element ``Z``'s vector),
a single array shared by every graph of one featurization, so a graph costs
``2 + 8 * M`` bytes per atom (98 at ``M = 12``). The Gaussian expansion of the distances is
done at batch time from ``gaussian = (dmin, step, radius)``.

The neighbour search (:func:`find_neighbors`) also lives here: one vectorised periodic search per
structure, all pairs sorted at once, the ``M`` nearest kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.optimization.neighbors import find_points_in_spheres as _find_points_in_spheres

__all__ = [
    "CrystalGraph",
    "CrystalGraphs",
    "find_neighbors",
    "find_neighbors_batch",
    "gaussian_centers",
    "nearest_distance",
]


# slots: one small object per graph (no __dict__ for the garbage collector to traverse)
@dataclass(frozen=True, eq=False, repr=False, slots=True)
class CrystalGraph:
    """One crystal as a graph: atoms, their M nearest neighbours and the bond lengths.

    Parameters
    ----------
    numbers : ndarray of shape (n_atoms,), int16
        Atomic numbers of the sites.
    nbr_index : ndarray of shape (n_atoms, M), int32
        Neighbour site indices sorted by distance; ``-1`` marks padding.
    nbr_dist : ndarray of shape (n_atoms, M), float32
        Neighbour distances in Angstrom; ``0.0`` where padded.
    atom_table : ndarray of shape (n_z, n_atom_features), float32
        Shared atom feature table; row ``Z`` is the vector of element ``Z``.
    gaussian : tuple of float
        ``(dmin, step, radius)`` of the Gaussian bond expansion done at batch time.
    id : str or None
        Identifier of the source structure (file name, material id), for messages.
    global_features : ndarray of shape (n_global,), float64, or None
        Extra per-structure inputs (temperature, pressure, a composition descriptor), raw
        (unscaled), from the numeric columns of a DataFrame input; ``None`` (the default) for
        a graph without them.
    global_names : tuple of str or None
        The names of those columns, in order (``None`` exactly when ``global_features`` is).
    """

    numbers: np.ndarray
    nbr_index: np.ndarray
    nbr_dist: np.ndarray
    atom_table: np.ndarray
    gaussian: tuple[float, float, float]
    id: str | None = None
    global_features: np.ndarray | None = None
    global_names: tuple[str, ...] | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def max_num_nbr(self) -> int:
        return int(self.nbr_index.shape[1])

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``(n_atoms, M)``: True for real bonds, False for padding."""
        return self.nbr_index >= 0

    @property
    def n_bonds(self) -> int:
        return int(self.mask.sum())

    @property
    def atom_fea(self) -> np.ndarray:
        """Atom feature matrix ``(n_atoms, n_atom_features)``, gathered from the table."""
        return self.atom_table[self.numbers]

    @property
    def n_atom_features(self) -> int:
        return int(self.atom_table.shape[1])

    @property
    def n_bond_features(self) -> int:
        dmin, step, radius = self.gaussian
        return len(gaussian_centers(dmin, step, radius))

    @property
    def n_global(self) -> int:
        """Number of global (per-structure) features, 0 without them."""
        return 0 if self.global_features is None else int(self.global_features.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes stored for this graph (the shared atom table is not counted)."""
        extra = 0 if self.global_features is None else self.global_features.nbytes
        return int(self.numbers.nbytes + self.nbr_index.nbytes + self.nbr_dist.nbytes + extra)

    def __repr__(self) -> str:
        name = f"{self.id!r}, " if self.id is not None else ""
        extra = f", global_features={self.n_global}" if self.global_features is not None else ""
        return (
            f"CrystalGraph({name}n_atoms={self.n_atoms}, max_num_nbr={self.max_num_nbr}, "
            f"n_bonds={self.n_bonds}, atom_features={self.n_atom_features}, "
            f"bond_features={self.n_bond_features}{extra})"
        )


def gaussian_centers(dmin: float, step: float, radius: float) -> np.ndarray:
    """Centres of the Gaussian bond basis: ``dmin, dmin + step, ..., radius`` (inclusive).

    As in the reference CGCNN (``np.arange(dmin, dmax + step, step)``): 41 centres for
    ``dmin=0, step=0.2, radius=8``.
    """
    n = int(np.floor((radius - dmin) / step + 1e-6)) + 1
    return (dmin + step * np.arange(n)).astype(np.float32)


class CrystalGraphs(Sequence):
    """A sequence of :class:`CrystalGraph`, the output of ``CrystalGraphFeaturizer.transform``.

    Integer indexing returns one graph; slices, integer arrays and boolean masks return a
    new ``CrystalGraphs`` sharing the same graph objects (no copy). scikit-learn's
    cross-validation may instead hand a plain ``list`` of graphs downstream; every consumer in
    cgcnn_sk accepts either.

    Parameters
    ----------
    graphs : iterable of CrystalGraph
    """

    def __init__(self, graphs: Iterable[CrystalGraph]):
        self.graphs = list(graphs)

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # numpy-style ``X[idx, ...]``
            key = key[0]
        if isinstance(key, (int, np.integer)):
            return self.graphs[key]
        if isinstance(key, slice):
            return CrystalGraphs(self.graphs[key])
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(
                    f"boolean index of length {key.shape[0]} for {len(self)} graphs"
                )
            key = np.flatnonzero(key)
        return CrystalGraphs([self.graphs[int(i)] for i in key.ravel()])

    def __iter__(self):
        return iter(self.graphs)

    @classmethod
    def checked(cls, X: Any, who: str, *, name: str = "X",
                compatible: bool = True) -> CrystalGraphs:
        """``X`` as ``CrystalGraphs``, after the checks every consumer of graphs makes.

        ``X`` must be a non-empty ``CrystalGraphs``, list, tuple or object array of
        :class:`CrystalGraph` (scikit-learn's cross-validation hands lists downstream);
        with ``compatible``, also graphs of one featurization (:meth:`check_compatible`).

        Parameters
        ----------
        X : object
            What ``who`` was given.
        who : str
            The consumer, named in the errors (``"CGCNNRegressor"``).
        name : str, default="X"
            How the errors name ``X``'s items (``"X[3]"``).
        compatible : bool, default=True
            Also require graphs that fit in one batch.

        Returns
        -------
        graphs : CrystalGraphs
            ``X`` itself when it is one, else a new one holding its graphs.

        Raises
        ------
        TypeError
            ``X`` is not a sequence of graphs; the message names the first bad item.
        ValueError
            ``X`` is empty, or (``compatible``) its graphs do not fit together.
        """
        if isinstance(X, CrystalGraph):
            raise TypeError(f"{who} expects a sequence of CrystalGraph, got a single CrystalGraph")
        hint = f"put a CrystalGraphFeaturizer before {who}"
        if isinstance(X, np.ndarray) and X.dtype == object:
            X = list(X.ravel())
        if not isinstance(X, CrystalGraphs | list | tuple):
            what = type(X).__name__
            if isinstance(X, np.ndarray):
                what = f"a {X.dtype} array of shape {X.shape}"
            raise TypeError(
                f"{who} expects CrystalGraphs or a list of CrystalGraph, got {what}; {hint}"
            )
        if len(X) == 0:
            raise ValueError(f"{who} got 0 graphs")
        for i, g in enumerate(X):
            if not isinstance(g, CrystalGraph):
                raise TypeError(
                    f"{name}[{i}] is a {type(g).__name__}, not a CrystalGraph: {who} takes "
                    f"crystal graphs; {hint}"
                )
        graphs = X if isinstance(X, CrystalGraphs) else cls(X)
        if compatible:
            graphs.check_compatible(name)
        return graphs

    def check_compatible(self, name: str = "X") -> None:
        """Raise a ``ValueError`` unless all graphs can share one batch and one model.

        They must have the same Gaussian basis, the same atom table (the same object or equal
        arrays) and the same global feature columns, as graphs of one featurization do. The
        message names the first graph that differs from graph 0, as ``name[i]``.
        """
        if not self.graphs:
            return
        first = self.graphs[0]
        gaussian = tuple(float(v) for v in first.gaussian)
        table = first.atom_table
        for i, g in enumerate(self.graphs):
            label = f"{name}[{i}]" + (f" ({g.id!r})" if g.id is not None else "")
            problem = None
            if tuple(float(v) for v in g.gaussian) != gaussian:
                problem = f"gaussian={tuple(g.gaussian)}, {name}[0] has gaussian={gaussian}"
            elif g.atom_table is not table and (
                g.atom_table.shape != table.shape or not np.array_equal(g.atom_table, table)
            ):
                problem = (f"an atom feature table of shape {g.atom_table.shape} different "
                           f"from {name}[0]'s {table.shape}")
            elif g.global_names != first.global_names or g.n_global != first.n_global:
                problem = f"{_globals_text(g)}, {name}[0] has {_globals_text(first)}"
            if problem is not None:
                raise ValueError(
                    f"{label} has {problem}: all graphs must come from one featurizer (and "
                    "one DataFrame layout of global feature columns)"
                )

    @property
    def nbytes(self) -> int:
        """Bytes stored by all graphs (shared atom tables not counted)."""
        return sum(g.nbytes for g in self.graphs)

    @property
    def n_atoms(self) -> int:
        return sum(g.n_atoms for g in self.graphs)

    def __repr__(self) -> str:
        if not self.graphs:
            return "CrystalGraphs(n_graphs=0)"
        g = self.graphs[0]
        extra = f", global_features={g.n_global}" if g.global_features is not None else ""
        return (
            f"CrystalGraphs(n_graphs={len(self)}, n_atoms={self.n_atoms}, "
            f"max_num_nbr={g.max_num_nbr}, atom_features={g.n_atom_features}, "
            f"bond_features={g.n_bond_features}{extra})"
        )


def _globals_text(g: CrystalGraph) -> str:
    if g.global_features is None:
        return "no global features"
    return f"{g.n_global} global features {list(g.global_names or ())}"


# --------------------------------------------------------------------------------------------
# Neighbour search
# --------------------------------------------------------------------------------------------

#: dtypes of the stored neighbour lists
INDEX_DTYPE = np.int32
DIST_DTYPE = np.float32

_PBC_3D = np.ones(3, dtype=np.int64)
_PBC_3D.flags.writeable = False


def _pbc_array(pbc) -> np.ndarray:
    if pbc is None or (type(pbc) is tuple and pbc == (True, True, True)):
        return _PBC_3D
    flags = tuple(bool(x) for x in np.asarray(pbc).ravel())
    if flags == (True, True, True):
        return _PBC_3D
    return np.array(flags, dtype=np.int64)


#: Safety factor on the inner radius estimated from the mean atomic density.
_INNER_FACTOR = 1.15


def _pair_search(
    lattice: np.ndarray,
    cart_coords: np.ndarray,
    centers: np.ndarray | None,
    r: float,
    pbc: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within ``r`` of the sites ``centers`` (all sites if None), self-pairs removed.

    The kernel of pymatgen's ``Structure.get_neighbor_list`` (the same cython
    ``find_points_in_spheres`` call and the same self-pair rule), on arrays. Used to explain
    isolated atoms. Returns (centre site index, neighbour site index, distance).
    """
    if centers is None:
        center_coords = cart_coords
    else:
        center_coords = np.ascontiguousarray(cart_coords[centers])
    c, p, _images, d = _find_points_in_spheres(
        cart_coords, center_coords, r=float(r), pbc=pbc, lattice=lattice, tol=tol
    )
    if centers is not None:
        c = centers[c]
    # the centre's own site (not its periodic images) is not a neighbour
    keep = (c != p) | (d > tol)
    return c[keep], p[keep], d[keep]


def _inner_radius(lattice: np.ndarray, n_atoms: int, radius: float, m: int) -> float:
    """A radius expected to hold a little over ``m`` neighbours per atom at the mean density.

    Any value is exact (an atom with fewer than ``m`` pairs inside keeps all its pairs); a
    good one keeps the sort small. For slabs with vacuum (2-D materials) it overestimates,
    which costs time only.
    """
    (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = lattice.tolist()  # plain floats: 3x3 is tiny
    volume = abs(a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0))
    if volume <= 0 or n_atoms == 0:
        return radius
    r_est = (3.0 * (m + 1) * volume / (4.0 * math.pi * n_atoms)) ** (1.0 / 3.0)
    return min(radius, _INNER_FACTOR * r_est + 0.5)


def find_neighbors(
    lattice: np.ndarray,
    cart_coords: np.ndarray,
    radius: float,
    max_num_nbr: int,
    pbc: np.ndarray | tuple = (True, True, True),
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``max_num_nbr`` nearest neighbours within ``radius`` of every site, periodic images kept.

    One vectorised periodic search (pymatgen's ``find_points_in_spheres``, the kernel of
    ``Structure.get_neighbor_list``) with every site as a centre, then one stable sort of the
    pairs by (centre, distance), restricted to the pairs within a smaller density-based
    radius for atoms that have ``M`` there (exact, see :func:`find_neighbors_batch`). Pairs at
    exactly equal distances keep the order of the search, so the result, ties at the cut
    included, is what sorting pymatgen's ``get_all_neighbors`` by distance gives (as the
    reference CGCNN does).

    Parameters
    ----------
    lattice : ndarray of shape (3, 3)
        Lattice vectors as rows, in Angstrom.
    cart_coords : ndarray of shape (n_atoms, 3)
        Cartesian coordinates of the sites.
    radius : float
        Cutoff radius in Angstrom (pairs at ``radius + tol`` count).
    max_num_nbr : int
        ``M``, the number of neighbours kept per atom.
    pbc : array-like of 3 bool, default=(True, True, True)
        Periodicity along each lattice vector.
    tol : float, default=1e-8
        Distances below ``tol`` to the site itself are the site, not a neighbour.

    Returns
    -------
    nbr_index : ndarray of shape (n_atoms, M), int32
        Neighbour site indices sorted by distance; ``-1`` pads atoms with fewer than ``M``
        neighbours within ``radius``. Repeated indices are different periodic images.
    nbr_dist : ndarray of shape (n_atoms, M), float32
        Matching distances; ``0.0`` where padded.

    Examples
    --------
    >>> import numpy as np
    >>> from cgcnn_sk.graph import find_neighbors
    >>> idx, dist = find_neighbors(np.eye(3) * 3.0, np.zeros((1, 3)), radius=5.0, max_num_nbr=8)
    >>> idx[0].tolist(), [round(float(x), 3) for x in dist[0][:7]]
    ([0, 0, 0, 0, 0, 0, 0, 0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.243])
    """
    return find_neighbors_batch([(lattice, cart_coords, pbc)], radius, max_num_nbr, tol=tol)[0]


def find_neighbors_batch(
    items: Sequence[tuple[np.ndarray, np.ndarray, Any]],
    radius: float,
    max_num_nbr: int,
    tol: float = 1e-8,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`find_neighbors` for many structures, with the array work done once for all.

    Each structure gets one periodic search at the full radius with every site as a centre
    (the call pymatgen's ``get_neighbor_list``/``get_all_neighbors`` make, hence the same
    pairs in the same order as the reference CGCNN sees them). The pairs of all structures
    are then filtered, sorted (one stable ``np.lexsort`` on centre and distance) and
    scattered into the outputs together.

    Sorting is the costly part at 8 A (50-120 pairs per atom), so only the pairs within a
    smaller radius ``r0`` (from the atomic density) are sorted for every atom that has at
    least ``M`` of them; an atom with fewer keeps all its pairs. This is exact, ties
    included: the ``M`` nearest then lie within ``r0``, and a stable sort of a subset keeps
    the subset's order.

    Parameters
    ----------
    items : sequence of (lattice, cart_coords, pbc)
        As the arguments of :func:`find_neighbors`.
    radius, max_num_nbr, tol
        As for :func:`find_neighbors`.

    Returns
    -------
    lists : list of (nbr_index, nbr_dist)
        One pair of arrays per item, as :func:`find_neighbors` returns them.
    """
    radius = float(radius)
    m = int(max_num_nbr)
    sizes: list[int] = []
    cs: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    ds: list[np.ndarray] = []
    offset = 0
    for lattice, cart_coords, pbc in items:
        lattice = np.ascontiguousarray(lattice, dtype=np.float64)
        cart = np.ascontiguousarray(cart_coords, dtype=np.float64).reshape(-1, 3)
        pbc_arr = _pbc_array(pbc)
        n = cart.shape[0]
        if n:
            c, p, _images, d = _find_points_in_spheres(
                cart, cart, r=radius, pbc=pbc_arr, lattice=lattice, tol=tol
            )
            # a site's own position is not its neighbour (its periodic images are)
            keep = (c != p) | (d > tol)
            r0 = _inner_radius(lattice, n, radius, m)
            if r0 < radius:
                inner = keep & (d <= r0)
                enough = np.bincount(c[inner], minlength=n) >= m
                keep = inner if enough.all() else keep & (inner | ~enough[c])
            cs.append(c[keep] + offset)
            ps.append(p[keep] + offset)
            ds.append(d[keep])
        sizes.append(n)
        offset += n
    total = offset
    sizes_arr = np.array(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes_arr)[:-1]]) if sizes else sizes_arr
    nbr_index = np.full((total, m), -1, dtype=INDEX_DTYPE)
    nbr_dist = np.zeros((total, m), dtype=DIST_DTYPE)

    if cs:
        c = np.concatenate(cs)
        p = np.concatenate(ps)
        d = np.concatenate(ds)
        order = np.lexsort((d, c))  # stable: equal distances keep the search's order
        c, p, d = c[order], p[order], d[order]
        _fill(nbr_index, nbr_dist, c, p, d, m, np.repeat(starts, sizes_arr))

    return [
        (nbr_index[a : a + n].copy(), nbr_dist[a : a + n].copy())
        for a, n in zip(starts.tolist(), sizes, strict=True)
    ]


def _fill(nbr_index, nbr_dist, c, p, d, m, atom_start) -> None:
    """Scatter sorted pairs into the (atoms, M) outputs: the first M of each centre."""
    rank = np.arange(c.shape[0]) - np.searchsorted(c, c)  # position in the centre's block
    sel = np.flatnonzero(rank < m)
    c_sel = c[sel]
    flat = c_sel * m + rank[sel]
    nbr_index.ravel()[flat] = p[sel] - atom_start[c_sel]  # global back to site indices
    nbr_dist.ravel()[flat] = d[sel]


def nearest_distance(
    lattice: np.ndarray,
    cart_coords: np.ndarray,
    site: int,
    start: float,
    pbc: np.ndarray | tuple = (True, True, True),
    tol: float = 1e-8,
) -> float:
    """Distance from ``site`` to its nearest neighbour (any image), searching from ``start`` up.

    Used to explain an isolated atom; returns ``inf`` when nothing is found within
    ``64 * start`` (for example a single atom without periodicity).
    """
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    cart = np.ascontiguousarray(cart_coords, dtype=np.float64).reshape(-1, 3)
    pbc_arr = _pbc_array(pbc)
    r = max(float(start), 1.0)
    for _ in range(7):
        r *= 2.0
        _, _, d = _pair_search(lattice, cart, np.array([site]), r, pbc_arr, tol)
        if d.size:
            return float(d.min())
    return float("inf")
