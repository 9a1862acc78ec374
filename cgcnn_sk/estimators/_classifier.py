"""CGCNNClassifier: CGCNN classification on crystal graphs, a skorch ``NeuralNetClassifier``."""


from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.utils import column_or_1d
from skorch import NeuralNetClassifier

from ..nn._model import CGCNN
from ._base import (
    _CGCNNMixin,
    _check_finite,
)
from ._callbacks import _accuracy
from ._imbalance import class_weights, monitored_callbacks

__all__ = ["CGCNNClassifier"]


class CGCNNClassifier(_CGCNNMixin, NeuralNetClassifier):
    """CGCNN classification on crystal graphs, a skorch ``NeuralNetClassifier``.

    Binary or multi-class; labels may be any values (strings, ints), ``classes_`` holds them
    sorted. The module outputs one logit per class and is trained with
    ``CrossEntropyLoss``; ``predict_proba`` applies the softmax.

    Parameters
    ----------
    module : torch.nn.Module class, default=CGCNN
        Built with ``n_atom_fea``, ``n_bond_fea``, ``n_out = len(classes_)`` and
        ``classification=True`` plus every ``module__<name>`` parameter.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
    optimizer : torch optimizer class, default=torch.optim.AdamW
    lr : float, default=3e-3
    max_epochs : int, default=100
        ``0`` trains nothing (see :class:`CGCNNRegressor`).
    batch_size : int, default=64
    patience : int or None, default=20
        Early stopping on the validation loss, best weights restored; ``None`` disables it.
    train_split : "auto", None or callable, default="auto"
        ``"auto"``: a stratified random 10 % validation split drawn from ``random_state``.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, batch order and split; ``None``: random.
    classes : array-like of shape (n_classes,) or None, default=None
        skorch's parameter: the labels in module output order, for when a ``y`` may lack
        some of them (a small fold). ``None``: the sorted labels found in ``y``.
    verbose : int, default=0
    device : str, default="cpu"
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss, as scikit-learn's classifiers take them:
        ``"balanced"`` weighs class c by ``n_samples / (n_classes * count(c))`` in the ``y``
        of ``fit``; a dict maps labels to weights (others 1). Passed to the criterion as its
        ``weight`` (so the validation loss is weighted too); learned in a cold ``fit``.
    early_stopping_monitor : {"loss", "roc_auc", "balanced_accuracy", "accuracy"}, \
default="loss"
        What early stopping watches on the validation split and which epoch's weights it
        restores: the lowest ``valid_loss``, or the highest score (scored each epoch by a
        skorch ``EpochScoring`` recorded as ``valid_<name>``; ROC-AUC is one-vs-rest for
        more than two classes). A score needs a validation split.
    **kwargs
        Any other skorch ``NeuralNet`` parameter.

    Attributes
    ----------
    module_ : CGCNN
    classes_ : ndarray of shape (n_classes,)
        The class labels seen in ``fit``.
    class_weight_ : ndarray of shape (n_classes,) or None
        The criterion's class weights, in ``classes_`` order.
    n_atom_features_, n_bond_features_, gaussian_, n_outputs_
        As in :class:`CGCNNRegressor` (``n_outputs_`` is the number of classes).
    n_global_, global_feature_names_, global_scaler_
        The global (per-structure) features, as in :class:`CGCNNRegressor`.
    history_ : skorch.History
        Per epoch ``train_loss``, ``valid_loss``, ``train_acc``, ``valid_acc``.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from sklearn.pipeline import Pipeline
    >>> from cgcnn_sk import CGCNNClassifier, CrystalGraphFeaturizer
    >>> structures = [Structure(Lattice.cubic(a), [el, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ...               for a in (4.1, 4.3) for el in ("Cs", "Tl", "Rb")]
    >>> labels = ["Cs" in s.composition for s in structures]
    >>> clf = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
    ...                 ("cgcnn", CGCNNClassifier(max_epochs=3, train_split=None,
    ...                                           random_state=0))])
    >>> clf.fit(structures, labels).predict_proba(structures[:1]).shape
    (1, 2)
    >>> clf[-1].classes_.tolist()
    [False, True]
    """

    _metric = "acc"
    _required_state = (*_CGCNNMixin._required_state, "fitted_classes_")
    _scoring = staticmethod(_accuracy)
    _parameter_constraints: dict = {
        **_CGCNNMixin._parameter_constraints,
        "classes": ["array-like", None],
    }

    def __init__(
        self,
        module=CGCNN,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        lr: float = 3e-3,
        max_epochs: int = 100,
        batch_size: int = 64,
        patience: int | None = 20,
        train_split="auto",
        random_state=None,
        classes=None,
        verbose: int = 0,
        device: str = "cpu",
        class_weight=None,
        early_stopping_monitor: str = "loss",
        **kwargs,
    ):
        super().__init__(
            module,
            classes=classes,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            device=device,
            **self._iterator_defaults(kwargs),
        )
        self.patience = patience
        self.random_state = random_state
        self.class_weight = class_weight
        self.early_stopping_monitor = early_stopping_monitor

    @property
    def classes_(self):
        try:
            return self.fitted_classes_
        except AttributeError as exc:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'classes_' before fit"
            ) from exc

    def _stratified(self) -> bool:
        return True

    def check_data(self, X, y):
        """Data are checked in ``fit``; skorch's array checks do not apply to graphs."""

    def _module_dims(self) -> dict | None:
        dims = super()._module_dims()
        if dims is not None:
            dims["classification"] = True
        return dims

    def _check_y(self, y) -> np.ndarray:
        y = column_or_1d(super()._check_y(y), warn=True)
        if y.dtype.kind in "fc":
            _check_finite(y)
        return y

    def _learn_targets(self, y: np.ndarray) -> None:
        if self.classes is None:
            classes = np.unique(y)
        else:  # skorch's ``classes``: the labels in output order, also those y lacks
            classes = np.asarray(self.classes)
            if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
                raise ValueError(f"classes must be a list of unique labels, got {self.classes!r}")
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y, got {classes.tolist()}"
            )
        self.fitted_classes_ = classes
        self.n_outputs_ = len(classes)

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        classes = self.fitted_classes_
        order = np.argsort(classes, kind="stable")
        pos = np.minimum(np.searchsorted(classes[order], y), len(classes) - 1)
        codes = order[pos]
        unseen = classes[codes] != y
        if np.any(unseen):
            i = int(np.flatnonzero(unseen)[0])
            value = y[i].item() if isinstance(y[i], np.generic) else y[i]
            where = "seen in fit" if self.classes is None else "given in classes="
            raise ValueError(
                f"y[{i}] = {value!r} is not one of the classes {where} {classes.tolist()}"
            )
        return codes.astype(np.int64)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        skorch's ``predict_proba``: its ``predict_nonlinearity`` (the softmax for
        ``CrossEntropyLoss``) applied to the module's logits.
        """
        return self._raw_outputs(X)

    def predict(self, X) -> np.ndarray:
        """Most probable class label per crystal, shape (n_samples,)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def _fit_meta(self) -> dict:
        meta = super()._fit_meta()
        meta["classes"] = self.fitted_classes_.tolist()
        return meta

    def initialize_for(
        self,
        *,
        n_atom_features: int,
        gaussian: Sequence[float],
        classes: Sequence,
        global_mean: Sequence[float] | None = None,
        global_scale: Sequence[float] | None = None,
        global_names: Sequence[str] | None = None,
    ) -> CGCNNClassifier:
        """Become fitted without data: set what ``fit`` learns, then build the module.

        For weights trained elsewhere: afterwards ``module_`` exists with random weights
        (seeded by ``random_state``) and has to be given the real ones, e.g.
        ``net.module_.load_state_dict(state_dict)``. ``predict``/``predict_proba`` then
        work, and ``fit`` with ``warm_start=True`` trains on from those weights. (A file
        written by :meth:`save_params` needs none of this: ``load_params`` reads these
        values from it.)

        Parameters
        ----------
        n_atom_features : int
            Atom feature length of the graphs (92 for the CGCNN table).
        gaussian : (dmin, step, radius)
            The featurizer's Gaussian bond basis; it fixes the number of bond features.
        classes : array-like of shape (n_classes,)
            The labels, one per module output, in output order. At least two, sorted and
            unique, as ``fit`` would find them (``np.unique(y)``).

        global_mean, global_scale : array-like of shape (n_global,), default=None
            The standardisation of the global (per-structure) features, which the module
            sees as ``(value - global_mean) / global_scale``; ``None`` (both): no global
            features.
        global_names : sequence of str, default=None
            Their column names, checked against the graphs' at predict time.

        Returns
        -------
        self

        Examples
        --------
        >>> from cgcnn_sk import CGCNNClassifier
        >>> clf = CGCNNClassifier(module__n_conv=2).initialize_for(
        ...     n_atom_features=92, gaussian=(0.0, 0.2, 8.0), classes=[0, 1])
        >>> clf.classes_.tolist(), clf.module_.fc_out.out_features
        ([0, 1], 2)
        """
        labels = np.asarray(classes)
        if labels.ndim != 1 or len(labels) < 2:
            raise ValueError(
                f"classes must be a 1-D list of at least 2 labels, got {np.asarray(classes)!r}"
            )
        unique = np.unique(labels)
        if len(unique) != len(labels) or not np.array_equal(unique, labels):
            raise ValueError(
                f"classes must be sorted and unique (their order is the module's output "
                f"order, as fit gives it), got {labels.tolist()}; sorted: {unique.tolist()}"
            )
        self._set_graph_dims(n_atom_features, gaussian)
        self._set_globals(global_mean, global_scale, global_names)
        self.fitted_classes_ = labels.copy()
        self.n_outputs_ = len(labels)
        return self._initialize_seeded()

    @staticmethod
    def _targets_from_meta(meta: dict) -> dict:
        return {"classes": meta["classes"]}

    # ---- imbalanced classes (cgcnn_sk._imbalance) -----------------------------------------
    def fit(self, X, y, **fit_params):
        keep = bool(self.warm_start and self.initialized_ and hasattr(self, "class_weight_"))
        if not keep:  # before super().fit builds the criterion
            self.class_weight_ = class_weights(self.class_weight, y)
        return super().fit(X, y, **fit_params)

    fit.__doc__ = _CGCNNMixin.fit.__doc__

    def initialize_criterion(self):
        weight = getattr(self, "class_weight_", None)
        if weight is None:
            return super().initialize_criterion()
        kwargs = self.get_params_for("criterion")
        if "weight" in kwargs:
            raise ValueError(
                "class_weight and criterion__weight both set the criterion's class weights: "
                "give one of them"
            )
        kwargs["weight"] = torch.as_tensor(weight, dtype=torch.float32)
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def _callback_settings(self) -> tuple:
        return (*super()._callback_settings(), ("monitor", self.early_stopping_monitor))

    def get_default_callbacks(self):
        has_valid = self.train_split not in (None, False)
        return monitored_callbacks(
            list(super().get_default_callbacks()), self.early_stopping_monitor, has_valid
        )
