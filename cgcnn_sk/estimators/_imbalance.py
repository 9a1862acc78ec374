"""Classification with imbalanced classes: class weights and the early-stopping metric.

:func:`class_weights` turns a scikit-learn style ``class_weight`` (``"balanced"`` or a dict)
into one weight per class, which :class:`~cgcnn_sk.CGCNNClassifier` hands to its criterion
(``CrossEntropyLoss(weight=...)``). :func:`monitored_callbacks` adds a skorch ``EpochScoring``
of the validation split (ROC-AUC, balanced accuracy, accuracy) before early stopping and makes
early stopping watch it, so that the restored epoch is the one with the best score instead of
the lowest validation loss.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import EarlyStopping, EpochScoring

__all__ = ["MONITORS", "class_weights", "monitored_callbacks"]

#: What early stopping may watch on the validation split.
MONITORS = ("loss", "roc_auc", "balanced_accuracy", "accuracy")


def class_weights(class_weight, y) -> np.ndarray | None:
    """One weight per class of ``np.unique(y)``, as scikit-learn's classifiers compute them.

    Parameters
    ----------
    class_weight : "balanced", dict or None
        ``"balanced"``: ``n_samples / (n_classes * count(class))``. A dict maps a label to
        its weight; labels not in it weigh 1. ``None``: no weights.
    y : array-like of shape (n_samples,)
        The training labels.

    Returns
    -------
    ndarray of shape (n_classes,) or None

    Examples
    --------
    >>> class_weights("balanced", ["a", "a", "a", "b"]).tolist()
    [0.6666666666666666, 2.0]
    >>> class_weights({"b": 5.0}, ["a", "a", "a", "b"]).tolist()
    [1.0, 5.0]
    """
    if class_weight is None or y is None:
        return None
    if not (isinstance(class_weight, dict) or class_weight == "balanced"):
        raise ValueError(
            f"class_weight must be 'balanced', a dict {{label: weight}} or None, got "
            f"{class_weight!r}"
        )
    y = np.asarray(y)
    classes = np.unique(y)
    if isinstance(class_weight, dict):
        unknown = [k for k in class_weight if k not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight has labels {unknown} that are not in y's classes "
                f"{classes.tolist()}"
            )
        bad = {k: v for k, v in class_weight.items() if not (np.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"class_weight values must be finite and >= 0, got {bad}")
    return compute_class_weight(class_weight, classes=classes, y=y)


def _probabilities(net, X) -> np.ndarray:
    # the net's own (cached) validation logits, in class-code order
    return torch.softmax(net.forward(X, training=False), dim=1).numpy()


def _roc_auc(net, X, y) -> float:
    proba = _probabilities(net, X)
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(proba.shape[1])))


def _balanced_accuracy(net, X, y) -> float:
    return float(balanced_accuracy_score(y, _probabilities(net, X).argmax(axis=1)))


def _accuracy(net, X, y) -> float:
    return float(accuracy_score(y, _probabilities(net, X).argmax(axis=1)))


_SCORERS = {"roc_auc": _roc_auc, "balanced_accuracy": _balanced_accuracy, "accuracy": _accuracy}


def check_monitor(monitor, has_valid: bool) -> str:
    """The monitor, or a clear error (unknown name; a score without a validation split)."""
    if not isinstance(monitor, str) or monitor not in MONITORS:
        raise ValueError(
            f"early_stopping_monitor={monitor!r} is not one of {list(MONITORS)}"
        )
    if monitor != "loss" and not has_valid:
        raise ValueError(
            f"early_stopping_monitor={monitor!r} scores the validation split, but "
            "train_split=None has none: use train_split='auto' (or a skorch split), or "
            "early_stopping_monitor='loss'"
        )
    return monitor


def monitored_callbacks(callbacks: list, monitor: str, has_valid: bool) -> list:
    """The default ``(name, callback)`` list with ``valid_<monitor>`` scored and watched.

    ``monitor="loss"`` leaves the list as it is (early stopping on the validation loss). A
    score adds ``EpochScoring`` named ``valid_<monitor>`` just before ``early_stopping``
    (callbacks run in list order, so the score of an epoch exists when early stopping looks
    at it), and sets early stopping to watch it, higher being better.
    """
    check_monitor(monitor, has_valid)
    if monitor == "loss":
        return callbacks
    name = f"valid_{monitor}"
    scoring = EpochScoring(
        _SCORERS[monitor], lower_is_better=False, on_train=False, name=name, use_caching=True
    )
    out, placed = [], False
    for key, callback in callbacks:
        if key == "early_stopping" and isinstance(callback, EarlyStopping):
            out.append((name, scoring))
            callback.set_params(monitor=name, lower_is_better=False)
            placed = True
        elif key == "print_log" and not placed:
            out.append((name, scoring))
            placed = True
        out.append((key, callback))
    if not placed:
        out.append((name, scoring))
    return out
