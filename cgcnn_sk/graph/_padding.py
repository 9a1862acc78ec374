"""The reference CGCNN's fake neighbours, as a step between the featurizer and a model."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._crystal import CrystalGraph, CrystalGraphs

__all__ = ["ReferencePadding"]


class ReferencePadding(TransformerMixin, BaseEstimator):
    """Fill empty neighbour slots with the reference CGCNN's fake neighbours.

    cgcnn_sk's graphs mark the missing neighbours of an atom with fewer than ``max_num_nbr``
    neighbours within ``radius`` as padding (index ``-1``), and the model ignores them. The
    reference implementation instead fills each missing slot with a fake bond to the
    crystal's atom 0 at distance ``radius + 1``. Its Gaussian features are almost zero, but
    the gated message of that bond is not, and the batch norm after the neighbour sum was
    trained on sums of ``max_num_nbr`` messages. The published checkpoints learned with fake
    neighbours, so this step, placed between the featurizer and the estimator, reproduces
    their predictions for such atoms (molecular crystals, slabs with vacuum, sparse cells).
    Graphs without padding pass through unchanged (the same objects).

    The step is stateless: ``fit`` does nothing.

    See Also
    --------
    load : puts this step in the pipeline by default (``padding="reference"``).

    Examples
    --------
    >>> import numpy as np
    >>> from cgcnn_sk import CrystalGraph
    >>> from cgcnn_sk.pretrained import ReferencePadding
    >>> g = CrystalGraph(numbers=np.array([7, 7], dtype=np.int16),
    ...                  nbr_index=np.array([[1, -1], [0, -1]], dtype=np.int32),
    ...                  nbr_dist=np.array([[1.1, 0.0], [1.1, 0.0]], dtype=np.float32),
    ...                  atom_table=np.eye(8, dtype=np.float32), gaussian=(0.0, 0.2, 8.0))
    >>> padded = ReferencePadding().fit_transform([g])[0]
    >>> padded.nbr_index.tolist(), padded.nbr_dist[:, 1].tolist()
    ([[1, 0], [0, 0]], [9.0, 9.0])
    """

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any = None, y: Any = None) -> ReferencePadding:
        """Do nothing (stateless); ``X`` and ``y`` are ignored.

        Returns
        -------
        self : ReferencePadding
        """
        return self

    def transform(self, X: Any) -> CrystalGraphs:
        """Graphs with every ``-1`` neighbour replaced by atom 0 at ``radius + 1``.

        Parameters
        ----------
        X : CrystalGraphs or sequence of CrystalGraph

        Returns
        -------
        graphs : CrystalGraphs
        """
        out = []
        for g in CrystalGraphs.checked(X, type(self).__name__, compatible=False):
            pad = g.nbr_index < 0
            if not pad.any():
                out.append(g)
                continue
            index = np.where(pad, 0, g.nbr_index).astype(g.nbr_index.dtype)
            fake = np.float32(float(g.gaussian[2]) + 1.0)
            dist = np.where(pad, fake, g.nbr_dist).astype(g.nbr_dist.dtype)
            out.append(
                CrystalGraph(
                    numbers=g.numbers,
                    nbr_index=index,
                    nbr_dist=dist,
                    atom_table=g.atom_table,
                    gaussian=g.gaussian,
                    id=g.id,
                )
            )
        return CrystalGraphs(out)
