"""What graphs a net was fitted on, beyond their widths: ``M`` and the atom table's values.

The module takes graphs of any ``max_num_nbr`` (``M``, it masks padding) and any atom table of
the right width, so graphs featurized with other settings than the training graphs would be
predicted without a word, and wrongly: the convolutions sum over other neighbours, or read
other atom vectors. A fitted estimator therefore records

* ``max_num_nbr_`` -- the ``M`` of its training graphs;
* ``atom_table_digest_`` -- a digest of the values of their atom table;

(the radius and the Gaussians are ``gaussian_``, checked with the widths) and checks the
graphs given to ``predict``, ``score``, ``transform`` and ``partial_fit`` against them, as
scikit-learn checks ``n_features_in_``. Graphs with a larger ``M`` are re-cut to the fitted
one, which is exact: their neighbour lists are sorted by distance, so the first ``M`` columns
are what the featurizer gives with ``max_num_nbr=M``. So are graphs with a smaller ``M`` whose
lists hold every neighbour within the radius (every atom padded). Anything else is a
``ValueError`` naming both values. An estimator that does not know them (fitted by an earlier
version, or built with ``initialize_for``) checks nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..graph._crystal import CrystalGraph

__all__ = ["atom_table_digest", "check_fitted_on", "learn_fitted_on"]


def atom_table_digest(table: np.ndarray) -> str:
    """A short digest of an atom table's float32 values (equal tables, equal digests).

    Examples
    --------
    >>> from cgcnn_sk import load_atom_table
    >>> atom_table_digest(load_atom_table("cgcnn")) == atom_table_digest(load_atom_table("cgcnn"))
    True
    >>> atom_table_digest(load_atom_table("cgcnn")) == atom_table_digest(load_atom_table("onehot"))
    False
    """
    values = np.ascontiguousarray(table, dtype=np.float32)
    head = f"{values.shape}".encode()
    return hashlib.sha256(head + values.tobytes()).hexdigest()[:16]


class _Digests:
    """Digests by table object: the graphs of one featurization share one table."""

    def __init__(self):
        self._seen: dict[int, tuple[np.ndarray, str]] = {}

    def __call__(self, table: np.ndarray) -> str:
        hit = self._seen.get(id(table))
        if hit is None or hit[0] is not table:
            hit = (table, atom_table_digest(table))
            self._seen[id(table)] = hit
        return hit[1]


def _name(i: int, g: CrystalGraph) -> str:
    return f"X[{i}]" + (f" ({g.id!r})" if g.id is not None else "")


def learn_fitted_on(graphs: Sequence[CrystalGraph], who: str) -> tuple[int, str]:
    """``(max_num_nbr, atom table digest)`` of the training graphs, or a ValueError.

    ``CrystalGraphs.check_compatible`` has checked that they share one atom table; a mix of
    ``max_num_nbr`` values batches fine but is refused here, since predict checks against one.
    """
    first = graphs[0]
    m = first.max_num_nbr
    for i, g in enumerate(graphs):
        if g.max_num_nbr != m:
            raise ValueError(
                f"{_name(i, g)} has max_num_nbr={g.max_num_nbr}, X[0] has max_num_nbr={m}: "
                f"{who} is fitted on graphs of one featurization (featurize them together)"
            )
    return m, atom_table_digest(first.atom_table)


def _recut(g: CrystalGraph, m: int) -> CrystalGraph | None:
    """``g`` with ``m`` neighbours per atom when that is exact, else None."""
    stored = g.max_num_nbr
    if stored > m:
        idx, dist = g.nbr_index[:, :m], g.nbr_dist[:, :m]
    elif g.n_atoms and not (g.nbr_index[:, -1] < 0).all():
        return None  # some atom may have more neighbours within the radius than were kept
    else:
        idx = np.pad(g.nbr_index, ((0, 0), (0, m - stored)), constant_values=-1)
        dist = np.pad(g.nbr_dist, ((0, 0), (0, m - stored)))
    return CrystalGraph(g.numbers, idx, dist, g.atom_table, g.gaussian, g.id,
                        g.global_features, g.global_names)


def check_fitted_on(est, graphs: Sequence[CrystalGraph]) -> Sequence[CrystalGraph]:
    """``graphs`` checked against what ``est`` was fitted on, re-cut to its ``M`` if needed.

    Raises
    ------
    ValueError
        Naming the first graph whose atom table differs, or whose ``max_num_nbr`` cannot be
        brought to the fitted one exactly, with both values.
    """
    m = getattr(est, "max_num_nbr_", None)
    table = getattr(est, "atom_table_digest_", None)
    if m is None and table is None:
        return graphs
    who = type(est).__name__
    digest = _Digests()
    out = None
    for i, g in enumerate(graphs):
        if table is not None and digest(g.atom_table) != table:
            raise ValueError(
                f"{_name(i, g)} was featurized with another atom table than the graphs "
                f"{who} was fitted on (same width {g.n_atom_features}, other values): "
                "featurize with the atom_features used for fit"
            )
        if m is None or g.max_num_nbr == m:
            if out is not None:
                out.append(g)
            continue
        cut = _recut(g, m)
        if cut is None:
            raise ValueError(
                f"{_name(i, g)} has max_num_nbr={g.max_num_nbr}, but {who} was fitted on "
                f"graphs with max_num_nbr={m}: featurize with max_num_nbr={m} (the same "
                "CrystalGraphFeaturizer settings as for fit)"
            )
        if out is None:
            out = list(graphs[:i])
        out.append(cut)
    return graphs if out is None else out
