"""Graphs to batch tensors: offsets, padding mask, Gaussian bond expansion.

A batch is the disjoint union of its crystals (as in PyTorch Geometric): the atoms of all
crystals are stacked, every *real* bond becomes one row of a flat edge list whose two atom
indices are shifted by the number of atoms of the crystals before it, and ``crystal_idx`` says
which crystal each atom belongs to. Padded neighbour slots (``nbr_index == -1``) are dropped
here, so the model never sees them: no fake neighbours, no masks inside the network.

The keys of :func:`collate_graphs`'s dict are the argument names of
:meth:`cgcnn_sk.CGCNN.forward`, so ``model(**collate_graphs(graphs))`` runs a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._crystal import CrystalGraph, CrystalGraphs, gaussian_centers

__all__ = ["GraphBatch", "GraphDataset", "collate_fn", "collate_graphs", "gaussian_expand"]


def gaussian_expand(dist: np.ndarray, gaussian: tuple[float, float, float]) -> np.ndarray:
    """Expand distances on the Gaussian basis of the reference CGCNN.

    ``exp(-(d - mu_k)^2 / step^2)`` for the centres ``mu_k`` of
    :func:`cgcnn_sk.graph.gaussian_centers` (width = step, as the reference).

    Parameters
    ----------
    dist : ndarray of shape (n_bonds,)
        Bond lengths in Angstrom.
    gaussian : tuple of float
        ``(dmin, step, radius)``.

    Returns
    -------
    ndarray of shape (n_bonds, n_centres), float32
    """
    dmin, step, radius = gaussian
    centres = gaussian_centers(dmin, step, radius)
    diff = (np.asarray(dist, dtype=np.float32)[:, None] - centres[None, :]) / np.float32(step)
    return np.exp(-(diff * diff))


def collate_graphs(graphs: Sequence[CrystalGraph]) -> dict:
    """Turn a list of :class:`~cgcnn_sk.CrystalGraph` into the inputs of ``CGCNN.forward``.

    Parameters
    ----------
    graphs : sequence of CrystalGraph
        Graphs of one featurization (same Gaussian parameters and atom table).

    Returns
    -------
    batch : dict
        ``atom_fea`` float32 ``(n_atoms, n_atom_fea)``; ``bond_fea`` float32
        ``(n_bonds, n_gaussians)`` for the real bonds only; ``self_idx`` and ``nbr_idx`` int64
        ``(n_bonds,)``, the centre and neighbour atom of each bond, offset into the stacked
        atoms; ``crystal_idx`` int64 ``(n_atoms,)``; ``n_crystals`` int. When the graphs carry
        global features, also ``global_fea`` float64 ``(n_crystals, n_global)``, the raw
        values stacked (the estimators scale them); without them the key is absent.

    Examples
    --------
    >>> import numpy as np
    >>> from cgcnn_sk.graph import CrystalGraph, collate_graphs
    >>> g = CrystalGraph(numbers=np.array([1, 1], dtype=np.int16),
    ...                  nbr_index=np.array([[1, -1], [0, -1]], dtype=np.int32),
    ...                  nbr_dist=np.array([[0.74, 0.0], [0.74, 0.0]], dtype=np.float32),
    ...                  atom_table=np.eye(3, dtype=np.float32), gaussian=(0.0, 0.2, 1.0))
    >>> batch = collate_graphs([g, g])
    >>> batch["nbr_idx"].tolist(), batch["crystal_idx"].tolist()
    ([1, 0, 3, 2], [0, 0, 1, 1])
    >>> tuple(batch["bond_fea"].shape)
    (4, 6)
    """
    graphs = list(graphs)
    if not graphs:
        raise ValueError("cannot collate an empty list of graphs")
    graphs = CrystalGraphs.checked(graphs, "collate_graphs", name="graphs")
    first = graphs[0]

    n_atoms = np.fromiter((g.n_atoms for g in graphs), dtype=np.int64, count=len(graphs))
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    widths = {g.nbr_index.shape[1] for g in graphs}
    m = max(widths)
    if len(widths) == 1:
        nbr_index = np.concatenate([g.nbr_index for g in graphs])
        nbr_dist = np.concatenate([g.nbr_dist for g in graphs])
    else:  # graphs sliced at different M: pad to the widest (padding is dropped below)
        nbr_index = np.full((int(n_atoms.sum()), m), -1, dtype=np.int32)
        nbr_dist = np.zeros((int(n_atoms.sum()), m), dtype=np.float32)
        for g, s in zip(graphs, starts, strict=True):
            k = g.nbr_index.shape[1]
            nbr_index[s : s + g.n_atoms, :k] = g.nbr_index
            nbr_dist[s : s + g.n_atoms, :k] = g.nbr_dist
    numbers = np.concatenate([g.numbers for g in graphs]).astype(np.int64)

    crystal_idx = np.repeat(np.arange(len(graphs), dtype=np.int64), n_atoms)
    rows, cols = np.nonzero(nbr_index >= 0)
    nbr_idx = nbr_index[rows, cols].astype(np.int64) + starts[crystal_idx[rows]]
    bond_fea = gaussian_expand(nbr_dist[rows, cols], first.gaussian)

    batch = {
        "atom_fea": torch.from_numpy(np.ascontiguousarray(first.atom_table[numbers])),
        "bond_fea": torch.from_numpy(bond_fea),
        "self_idx": torch.from_numpy(rows.astype(np.int64)),
        "nbr_idx": torch.from_numpy(nbr_idx),
        "crystal_idx": torch.from_numpy(crystal_idx),
        "n_crystals": len(graphs),
    }
    if first.global_features is not None:
        batch["global_fea"] = torch.from_numpy(
            np.stack([g.global_features for g in graphs]).astype(np.float64)
        )
    return batch


class GraphBatch:
    """The collated inputs of one mini-batch, as skorch's iterator hands them to the net.

    A thin holder around the dict of :func:`collate_graphs`. It is deliberately not a
    ``Mapping``: skorch measures a batch with ``len`` and would otherwise take the length of
    each tensor (atoms and bonds differ); ``len(batch)`` is the number of crystals. The
    estimators turn it back into keyword arguments in ``infer``.

    Parameters
    ----------
    inputs : dict
        Output of :func:`collate_graphs`.
    """

    def __init__(self, inputs: dict):
        self.inputs = inputs

    def __len__(self) -> int:
        return int(self.inputs["n_crystals"])

    def to(self, device) -> dict:
        """The keyword arguments of ``CGCNN.forward``, tensors moved to ``device``."""
        return {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()
        }

    def __repr__(self) -> str:
        return (
            f"GraphBatch(n_crystals={len(self)}, n_atoms={self.inputs['atom_fea'].shape[0]}, "
            f"n_bonds={self.inputs['bond_fea'].shape[0]})"
        )


class GraphDataset(Dataset):
    """A torch ``Dataset`` of ``(graph, target)`` pairs, for :func:`collate_fn`.

    Parameters
    ----------
    graphs : CrystalGraphs or sequence of CrystalGraph
    y : array-like of shape (n_graphs,) or (n_graphs, n_targets), default=None
        Targets; ``None`` (prediction) yields a placeholder ``0``.
    """

    def __init__(self, graphs: Sequence[CrystalGraph], y=None):
        self.graphs = graphs
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(graphs):
            raise ValueError(f"{len(graphs)} graphs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i):
        return self.graphs[i], (0 if self.y is None else self.y[i])


def collate_fn(items: Sequence[tuple[CrystalGraph, object]]) -> tuple[GraphBatch, torch.Tensor]:
    """skorch/DataLoader collate function for ``(graph, target)`` items.

    Returns a :class:`GraphBatch` and the stacked targets as a tensor (float targets keep
    float32, integer class labels become int64).
    """
    graphs = [g for g, _ in items]
    y = np.asarray([t for _, t in items])
    if y.dtype.kind in "iub":
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(y.astype(np.float32))
    return GraphBatch(collate_graphs(graphs)), yt
