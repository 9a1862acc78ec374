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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CrystalGraph", "CrystalGraphs"]


@dataclass(frozen=True, eq=False, repr=False)
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
    """

    numbers: np.ndarray
    nbr_index: np.ndarray
    nbr_dist: np.ndarray
    atom_table: np.ndarray
    gaussian: tuple[float, float, float]
    id: str | None = None

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
    def nbytes(self) -> int:
        """Bytes stored for this graph (the shared atom table is not counted)."""
        return int(self.numbers.nbytes + self.nbr_index.nbytes + self.nbr_dist.nbytes)

    def __repr__(self) -> str:
        name = f"{self.id!r}, " if self.id is not None else ""
        return (
            f"CrystalGraph({name}n_atoms={self.n_atoms}, max_num_nbr={self.max_num_nbr}, "
            f"n_bonds={self.n_bonds}, atom_features={self.n_atom_features}, "
            f"bond_features={self.n_bond_features})"
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
        return (
            f"CrystalGraphs(n_graphs={len(self)}, n_atoms={self.n_atoms}, "
            f"max_num_nbr={g.max_num_nbr}, atom_features={g.n_atom_features}, "
            f"bond_features={g.n_bond_features})"
        )
