"""Where a prediction comes from: per-site contributions of a CGCNN regressor.

With ``module__readout="atom"`` the network applies its hidden layers and ``fc_out`` to every
atom and pools the per-atom outputs, so each prediction is exactly the mean (``"mean"``
pooling) or the sum (``"sum"``) of per-site values: the site-energy analysis of the CGCNN
paper (Xie & Grossman 2018, Fig. 4). :func:`site_contributions` returns them in the target's
units. The regressor predicts ``mean + scale * out`` from the standardised output ``out``, so
the per-site values are ``mean + scale * out_i`` for mean pooling and ``mean / n + scale *
out_i`` for sum pooling (``n`` atoms), which average (add up) to the prediction.

There is no exact decomposition for the reference head (``readout="crystal"``: non-linear
layers after pooling) or for ``"max"`` pooling (one atom decides each output); both raise.
"""

from __future__ import annotations

import numpy as np

from ._readout import map_batches

__all__ = ["site_contributions"]


def _target_affine(net) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` with prediction = ``mean + scale * module output``, per target."""
    scaler = getattr(net, "target_scaler_", None)  # a fitted StandardScaler, if there is one
    if scaler is not None:
        mean = getattr(scaler, "mean_", None)
        scale = getattr(scaler, "scale_", None)
        n = net.n_outputs_
        mean = np.zeros(n) if mean is None else np.asarray(mean, dtype=np.float64)
        scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
        return mean, scale
    return (
        np.asarray(net.target_mean_, dtype=np.float64),
        np.asarray(net.target_scale_, dtype=np.float64),
    )


def _check_decomposable(module) -> str:
    readout = getattr(module, "readout", None)
    pooling = getattr(module, "pooling", None)
    if readout != "atom":
        raise ValueError(
            f"predict_contributions needs module__readout='atom' (the head applied to every "
            f"atom, then pooled); this model has readout={readout!r}: its head acts on the "
            "pooled crystal vector through non-linear layers, so a prediction is not a sum of "
            "per-site terms. Refit with module__readout='atom'"
        )
    if pooling not in ("mean", "sum"):
        raise ValueError(
            f"predict_contributions needs module__pooling='mean' or 'sum'; with "
            f"pooling={pooling!r} each output is decided by one atom and the others "
            "contribute nothing, so there is no per-site decomposition"
        )
    return pooling


def site_contributions(net, X) -> list[np.ndarray]:
    """Per-site contributions of a fitted regressor; they average / add up to ``predict``.

    Parameters
    ----------
    net : CGCNNRegressor
        Fitted with ``module__readout="atom"`` and ``module__pooling`` ``"mean"`` or
        ``"sum"``.
    X : CrystalGraphs or sequence of CrystalGraph

    Returns
    -------
    list of ndarray, one per crystal
        Shape ``(n_atoms,)`` (``(n_atoms, n_targets)`` for a 2-D ``y``), in the target's units,
        in the order of the structure's sites. Their mean (``"mean"`` pooling) or sum
        (``"sum"``) is ``net.predict(X)`` up to float rounding.
    """
    net.check_is_fitted()
    pooling = _check_decomposable(net.module_)
    graphs = net._validate_X(X, reset=False)
    per_atom = np.concatenate(
        map_batches(net, graphs, lambda module, inputs: module.site_outputs(**inputs)), axis=0
    ).astype(np.float64)
    mean, scale = _target_affine(net)
    sizes = np.fromiter((g.n_atoms for g in graphs), dtype=np.int64, count=len(graphs))
    values = per_atom * scale
    if pooling == "mean":
        values += mean
    else:  # the offset is shared out equally among the sites
        values += mean / np.repeat(sizes, sizes)[:, None]
    parts = np.split(values, np.cumsum(sizes)[:-1])
    if net.target_ndim_ == 1:
        parts = [p[:, 0] for p in parts]
    return parts
