"""Weight averaging for the CGCNN estimators: a skorch callback around ``torch.optim.swa_utils``.

:class:`WeightAveraging` keeps a running average of the network's weights while it trains --
an exponential moving average updated after every training batch, or the equal-weight
average of stochastic weight averaging taken at the end of each epoch of the last part of
the schedule -- and puts the averaged weights into the network when training ends, so that
``predict`` (and ``save_params``, pickling, ``score``) use them.

The batch-normalisation statistics of the averaged weights are not an average of the
running statistics of the weights along the way: after the swap, they are recomputed with
:func:`torch.optim.swa_utils.update_bn`, one forward pass in training mode over the training
rows without gradients (the cost of about a third of an epoch).
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from skorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

__all__ = ["WeightAveraging"]


class _Forward(torch.nn.Module):
    """``net.infer`` as a module whose children are the net's module (for ``update_bn``)."""

    def __init__(self, net):
        super().__init__()
        self.module = net.module_
        self._infer = net.infer

    def forward(self, batch):
        return self._infer(batch)


class WeightAveraging(Callback):
    """Average the weights along training and predict with the average.

    A skorch callback for :class:`~cgcnn_sk.CGCNNRegressor` and
    :class:`~cgcnn_sk.CGCNNClassifier`: ``callbacks=[("averaging", WeightAveraging())]``.
    Averaging starts once the epoch's place in the fit's schedule exceeds
    ``start * max_epochs``; at the end of training the averaged weights replace the
    network's and the batch-norm statistics are recomputed for them on the training rows.

    Parameters
    ----------
    kind : {"ema", "swa"}, default="ema"
        ``"ema"``: an exponential moving average updated after every training batch,
        ``w_avg <- decay * w_avg + (1 - decay) * w`` (the first update copies ``w``;
        :func:`torch.optim.swa_utils.get_ema_multi_avg_fn`). ``"swa"``: the equal-weight
        average of the weights at the end of each averaged epoch (stochastic weight
        averaging, Izmailov et al., UAI 2018; :class:`torch.optim.swa_utils.AveragedModel`'s
        default).
    decay : float, default=0.99
        EMA decay per batch, in ``[0, 1)``; unused by ``"swa"``. The average spans about
        ``1 / (1 - decay)`` batches (100 by default: 12 epochs of 500 rows in batches of 64).
    start : float, default=0.0
        Fraction of ``max_epochs`` trained before averaging begins, in ``[0, 1)``. With the
        default cosine schedule, ``kind="swa", start=0.75`` averages the last quarter.
    update_bn : bool, default=True
        Recompute the batch-norm running statistics for the averaged weights (a no-op
        without batch norm). ``False`` keeps the statistics of the last trained weights.

    Attributes
    ----------
    n_averaged_ : int
        Weight snapshots in the average of the last fit (batches for ``"ema"``, epochs for
        ``"swa"``); ``0`` if no epoch reached ``start``, and then the weights are not swapped.

    Notes
    -----
    Averaging replaces the weights an early stopping's ``load_best`` restored, since its
    callbacks run first. The running average is not part of a skorch ``Checkpoint``: a run
    resumed from one averages from the resumed epoch on (the ``start`` epoch is counted on the
    fit's schedule, so it stays where it was).

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from sklearn.pipeline import Pipeline
    >>> from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
    >>> from cgcnn_sk.estimators import WeightAveraging
    >>> crystals = [Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    ...             for a in (2.8, 3.0, 3.2, 3.4)]
    >>> net = CGCNNRegressor(max_epochs=4, batch_size=2, random_state=0,
    ...                      module__atom_fea_len=8, module__h_fea_len=8,
    ...                      callbacks=[("ema", WeightAveraging(decay=0.9))])
    >>> model = Pipeline([("graph", CrystalGraphFeaturizer(radius=5.0)), ("cgcnn", net)])
    >>> model = model.fit(crystals, [1.0, 2.0, 3.0, 4.0])
    >>> dict(model[-1].callbacks_)["ema"].n_averaged_  # 4 epochs of 2 batches
    8
    """

    _parameter_constraints = {
        "kind": [StrOptions({"ema", "swa"})],
        "decay": [Interval(Real, 0, 1, closed="left")],
        "start": [Interval(Real, 0, 1, closed="left")],
        "update_bn": ["boolean"],
    }

    def __init__(self, kind: str = "ema", *, decay: float = 0.99, start: float = 0.0,
                 update_bn: bool = True):
        self.kind = kind
        self.decay = decay
        self.start = start
        self.update_bn = update_bn

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # -- the average -----------------------------------------------------------------------
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        validate_parameter_constraints(self._parameter_constraints, self.get_params(),
                                       caller_name=type(self).__name__)
        avg = get_ema_multi_avg_fn(self.decay) if self.kind == "ema" else None
        self.average_ = AveragedModel(net.module_, multi_avg_fn=avg)
        self.n_averaged_ = 0

    def _averaging(self, net) -> bool:
        history = net.history
        epoch = history[-1].get("fit_epoch", len(history)) if len(history) else 0
        return epoch > math.floor(self.start * net.max_epochs)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training and self.kind == "ema" and self._averaging(net):
            self._update(net)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self.kind == "swa" and self._averaging(net):
            self._update(net)

    def _update(self, net) -> None:
        self.average_.update_parameters(net.module_)
        self.n_averaged_ += 1

    def on_train_end(self, net, X=None, y=None, **kwargs):
        average = self.__dict__.pop("average_", None)  # no second copy of the net kept
        if average is None or not self.n_averaged_:
            return
        with torch.no_grad():
            for mine, averaged in zip(net.module_.parameters(), average.module.parameters(),
                                      strict=True):
                mine.copy_(averaged)
        if self.update_bn and X is not None:
            dataset, _ = net.get_split_datasets(X, y)
            loader = net.get_iterator(dataset, training=True)
            update_bn(loader, _Forward(net))
