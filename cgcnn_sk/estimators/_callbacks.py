"""The callbacks and epoch scorers that the CGCNN estimators build by default."""


from __future__ import annotations

import warnings

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler


def _mae(net, X, y) -> float:
    """Mean absolute error in the original target units (``y`` arrives standardised)."""
    y = net.target_scaler_.inverse_transform(np.asarray(y, dtype=np.float64).reshape(len(y), -1))
    return float(np.mean(np.abs(net.predict(X).reshape(y.shape) - y)))


def _accuracy(net, X, y) -> float:
    """Accuracy against the class codes ``y`` (``predict`` returns labels)."""
    return float(np.mean(net.predict(X) == net.classes_[np.asarray(y, dtype=np.int64)]))


class _CosineLR(LRScheduler):
    """skorch's ``LRScheduler`` with a cosine from ``lr`` to 0 over each ``fit``.

    skorch continues a schedule from the history's length, so a warm-started ``fit`` would
    start at the cosine's far end and climb back to ``lr``; here every ``fit`` starts its own
    schedule from the optimizer's initial learning rates, and :meth:`resume` moves it to
    the epoch an interrupted run had reached.
    """

    def on_train_begin(self, net, **kwargs):
        for group in net.optimizer_.param_groups:
            group["lr"] = group.pop("initial_lr", group["lr"])
        super().on_train_begin(net, **kwargs)

    def resume(self, net, done: int) -> None:
        """Continue at epoch ``done`` of the schedule (the optimizer was restored)."""
        for group in net.optimizer_.param_groups:
            group["lr"] = group["initial_lr"]
        self.lr_scheduler_ = self._get_scheduler(net, self.policy_, **self.kwargs)
        with warnings.catch_warnings():  # stepping the schedule alone is the point here
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for _ in range(done):
                self.lr_scheduler_.step()


class _FiniteLoss(Callback):
    """Stop at the first non-finite loss with an error that says where and what to try."""

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if loss is None or bool(torch.isfinite(loss).all()):
            return
        epoch = len(net.history)
        which = "training" if training else "validation"
        value = float(loss.detach())
        raise FloatingPointError(
            f"{type(net).__name__}: the {which} loss became {value} in epoch {epoch} "
            f"(batch {len(net.history[-1]['batches'])}): training diverged. Try a lower lr "
            f"(now {net.lr:g}) or module__batchnorm=True"
        )


class _Resume(Callback):
    """Number each epoch by its place in its fit's schedule; resume an interrupted fit.

    The history column ``fit_epoch`` counts the epochs of one ``fit`` from 1. A callback
    after this one in the list (skorch's ``LoadInitState`` with a ``Checkpoint``) may replace
    the history in ``on_train_begin``; the last row of that history says how far the
    interrupted fit had got, and :meth:`epochs_left` (asked by the net's ``fit_loop``) moves
    the cosine schedule there and returns the epochs that fit had left.
    """

    def on_train_begin(self, net, **kwargs):
        self.history_at_start_ = net.history_
        self.offset_ = -len(net.history_)

    def epochs_left(self, net, epochs: int) -> int:
        done = 0
        if net.history_ is not self.history_at_start_ and len(net.history_):
            done = int(net.history_[-1].get("fit_epoch", 0))
            scheduler = dict(net.callbacks_).get("lr_scheduler")
            if done and isinstance(scheduler, _CosineLR):
                scheduler.resume(net, done)
        self.offset_ = done - len(net.history_)
        return max(epochs - done, 0)

    def on_epoch_begin(self, net, **kwargs):
        net.history_.record("fit_epoch", self.offset_ + len(net.history_))

    def on_train_end(self, net, **kwargs):
        self.history_at_start_ = None  # not pickled with the net
