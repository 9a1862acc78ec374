"""A fitted CGCNN as a featurizer: its learned crystal vectors as a numeric array.

:func:`crystal_embedding` runs a fitted :class:`~cgcnn_sk.CGCNNRegressor` or
:class:`~cgcnn_sk.CGCNNClassifier` in evaluation mode and returns, per crystal, either the
pooled atom vectors (the input of the hidden layers) or the output of the last hidden layer
(the input of ``fc_out``). The estimators' ``transform`` calls it; :class:`~cgcnn_sk.CGCNNEmbedder`
(``_embedder.py``, above the estimators) wraps it as a scikit-learn transformer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from ..nn._model import EMBEDDING_LAYERS

__all__ = ["crystal_embedding", "embedding_feature_names", "map_batches"]


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    """Evaluation mode and no gradients inside the block; the previous mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


def map_batches(net, X, fn: Callable[[torch.nn.Module, dict], torch.Tensor]) -> list:
    """``fn(module, inputs)`` on every evaluation batch of X, as numpy arrays in X's order.

    ``inputs`` are the keyword arguments of ``CGCNN.forward`` for one batch of
    ``net.batch_size`` crystals (the net's own dataset and iterator, not shuffled).
    """
    net.check_is_fitted()
    graphs = net._validate_X(X, reset=False)
    out = []
    with _eval_mode(net.module_) as module:
        for batch, _ in net.get_iterator(net.get_dataset(graphs), training=False):
            inputs = net._module_inputs(batch) if hasattr(net, "_module_inputs") else (
                batch.to(net.device))
            out.append(fn(module, inputs).detach().cpu().numpy())
    return out


def _check_layer(layer) -> str:
    if not isinstance(layer, str) or layer not in EMBEDDING_LAYERS:
        raise ValueError(f"layer={layer!r} is not one of {list(EMBEDDING_LAYERS)}")
    return layer


def _require_embed(net) -> None:
    if not callable(getattr(net.module_, "embed", None)):
        raise TypeError(
            f"{type(net.module_).__name__} has no embed() method: crystal vectors need a "
            "cgcnn_sk CGCNN module (or a module with CGCNN.embed's signature)"
        )


def crystal_embedding(net, X, layer: str = "pooled") -> np.ndarray:
    """The learned crystal vectors of a fitted CGCNN estimator, one row per crystal.

    Evaluation mode (batchnorm running statistics, no dropout), so a crystal's row does not
    depend on the other crystals of its batch.

    Parameters
    ----------
    net : CGCNNRegressor or CGCNNClassifier
        Fitted (or initialised with :meth:`~cgcnn_sk.CGCNNRegressor.initialize_for` and
        loaded weights).
    X : CrystalGraphs or sequence of CrystalGraph
    layer : {"pooled", "hidden"}, default="pooled"
        ``"pooled"``: the pooled atom vectors (width ``module__atom_fea_len``), which do not
        include global (per-structure) features: a crystal's row is the same at any
        temperature. ``"hidden"``: the last hidden layer, the input of ``fc_out`` (width
        ``module__h_fea_len``), computed with the global features.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    _check_layer(layer)
    net.check_is_fitted()
    _require_embed(net)
    parts = map_batches(net, X, lambda module, inputs: module.embed(**inputs, layer=layer))
    return np.concatenate(parts, axis=0)


def embedding_feature_names(net, layer: str = "pooled") -> np.ndarray:
    """``cgcnn_<layer>_<i>`` for every column of :func:`crystal_embedding`."""
    _check_layer(layer)
    net.check_is_fitted()
    module = net.module_
    if layer == "pooled":  # the pooled atom vectors only: global inputs are not part of it
        width = module.conv_to_fc.in_features - int(getattr(module, "n_global", 0))
    else:
        width = module.fc_out.in_features
    return np.asarray([f"cgcnn_{layer}_{i}" for i in range(width)], dtype=object)
