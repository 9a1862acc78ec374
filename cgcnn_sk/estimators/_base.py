"""What the skorch estimators around :class:`cgcnn_sk.nn.CGCNN` share: ``_CGCNNMixin``.

:class:`~cgcnn_sk.CGCNNRegressor` (``_regressor.py``) and :class:`~cgcnn_sk.CGCNNClassifier`
(``_classifier.py``) are skorch nets with a few small overrides and no training loop of their own:

* ``get_dataset`` wraps graphs (``CrystalGraphs`` or any sequence of ``CrystalGraph``, as
  scikit-learn's CV slicing hands them over) in a :class:`~cgcnn_sk.graph.GraphDataset`;
  batches are built by :func:`~cgcnn_sk.graph.collate_fn` and ``infer`` turns a
  :class:`~cgcnn_sk.graph.GraphBatch` into ``CGCNN.forward``'s keyword arguments;
* ``fit`` validates X and y, learns the data dimensions (atom features, Gaussians, outputs,
  global features), the target standardisation and the standardisation of the global
  features (a ``StandardScaler`` on the graphs given to ``fit``, so under cross-validation on
  the training fold only; ``infer`` applies it to every batch), seeds torch from
  ``random_state``, then calls skorch;
* ``initialize_module`` passes the learned dimensions to the module (``module__...`` sets
  everything else);
* ``initialize_for`` and ``save_params``/``load_params`` (``_persistence._SavedState``) set
  and keep those learned values without data;
* the default callbacks (skorch ``EpochScoring`` for MAE / accuracy, a cosine schedule that
  each ``fit`` runs from ``lr`` down, a stop at the first non-finite loss, early stopping)
  are derived from ``train_split``, ``patience``, ``max_epochs`` and ``verbose``; a
  warm-started ``fit`` and ``partial_fit`` rebuild them when those (or ``callbacks``)
  changed since they were built;
* a ``fit`` whose history was restored by skorch's ``LoadInitState`` (an interrupted run)
  resumes (``_callbacks._Resume``): it trains only the epochs that run had left, on the
  same schedule.
"""

from __future__ import annotations

import contextlib
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
)
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit
from skorch.utils import is_dataset

from .._version import VersionedPickleMixin
from ..graph._collate import GraphBatch, GraphDataset, collate_fn
from ..graph._crystal import CrystalGraphs
from ._callbacks import _CosineLR, _FiniteLoss, _mae, _Resume
from ._device import check_device
from ._fitted_on import check_fitted_on, learn_fitted_on
from ._persistence import _SavedState
from ._readout import crystal_embedding


def _silent(*args, **kwargs) -> None:
    """A sink that prints nothing (picklable, unlike a lambda)."""


def _check_finite(y: np.ndarray) -> None:
    """Name the first row of y holding NaN or infinity."""
    bad = ~np.isfinite(y.reshape(len(y), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Input y contains NaN or infinity: y[{i}] = {y[i].tolist()} ({int(bad.sum())} such "
            "rows); drop or fill them before fit"
        )


@contextlib.contextmanager
def _fork_rng():
    """Restore torch's CPU generator and those of all CUDA devices when the block ends.

    ``torch.manual_seed`` seeds every device, so forking only the CPU generator
    (``devices=[]``) would leave the global CUDA seed changed.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextlib.contextmanager
def _torch_seed(seed: int | None):
    """Seed torch inside the block and restore every generator afterwards."""
    if seed is None:
        yield
        return
    with _fork_rng():
        torch.manual_seed(seed)
        yield


class _CGCNNMixin(VersionedPickleMixin, _SavedState):
    """What CGCNNRegressor and CGCNNClassifier share (data handling, seeding, callbacks)."""

    _metric = "mae"
    _scoring = staticmethod(_mae)
    #: What a fitted estimator needs to predict (a pickle lacking some of it cannot work).
    _required_state: tuple = ("module_", "n_atom_features_", "n_bond_features_", "gaussian_",
                              "n_outputs_")

    _parameter_constraints: dict = {
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "train_split": [StrOptions({"auto"}), None, callable],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str, torch.device, None],
    }

    def __sklearn_is_fitted__(self) -> bool:
        # skorch >= 1.3 defines this; for skorch 1.2 (the lowest supported) scikit-learn's
        # fallback (any attribute ending in "_") would call an unfitted net fitted, as
        # history_ and initialized_ exist from __init__.
        try:
            self.check_is_fitted()
        except NotFittedError:  # skorch's NotInitializedError is one
            return False
        return True

    # ---- construction helpers -------------------------------------------------------------
    @staticmethod
    def _iterator_defaults(kwargs: dict) -> dict:
        kwargs.setdefault("iterator_train__collate_fn", collate_fn)
        kwargs.setdefault("iterator_valid__collate_fn", collate_fn)
        kwargs.setdefault("iterator_train__shuffle", True)
        return kwargs

    def _seed(self) -> int | None:
        if self.random_state is None:
            return None
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _validate_constraints(self) -> None:
        """Check ``_parameter_constraints`` (scikit-learn's validation), at the start of fit.

        Not through ``_fit_context``: it calls ``_validate_params``, which skorch overrides
        with its own check of ``prefix__name`` arguments, valid only once the module exists.
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )
        check_device(self.device, type(self).__name__)  # what a type constraint cannot say

    # ---- skorch hooks ---------------------------------------------------------------------
    def _callback_settings(self) -> tuple:
        """The parameters the default callbacks are derived from (compared to detect changes)."""
        return (
            ("has_valid", self.train_split is not None),
            ("patience", self.patience),
            ("max_epochs", self.max_epochs),
            ("verbose", bool(self.verbose)),
        )

    def get_default_callbacks(self):
        settings = dict(self._callback_settings())
        defaults = dict(super().get_default_callbacks())
        callbacks = [("fit_epoch", _Resume())]
        callbacks += [(n, defaults[n]) for n in ("epoch_timer", "train_loss", "valid_loss")]
        callbacks.append(("finite_loss", _FiniteLoss()))
        # scored on the predictions cached while training (no second forward pass); the
        # training side, like train_loss, in train mode
        for on_train, prefix in [(True, "train"), (False, "valid")]:
            name = f"{prefix}_{self._metric}"
            scoring = EpochScoring(
                self._scoring, lower_is_better=self._metric == "mae", on_train=on_train,
                name=name,
            )
            callbacks.append((name, scoring))
        cosine = _CosineLR(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR,
            T_max=max(settings["max_epochs"], 1),
            last_epoch=-1,
        )
        callbacks.append(("lr_scheduler", cosine))
        # max_epochs=0 trains nothing, so there is nothing to stop (nor a best epoch to restore)
        if settings["patience"] is not None and settings["max_epochs"] > 0:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="valid_loss" if settings["has_valid"] else "train_loss",
                        patience=settings["patience"],
                        load_best=True,
                        sink=print if settings["verbose"] else _silent,
                    ),
                )
            )
        callbacks.append(("print_log", defaults["print_log"]))
        return callbacks

    def initialize_callbacks(self):
        super().initialize_callbacks()
        self._callbacks_built_for_ = (self._callback_settings(), self.callbacks)
        return self

    def _sync_callbacks(self) -> None:
        """Rebuild ``callbacks_`` if they no longer match the current parameters.

        ``initialize`` (every cold ``fit``) builds them; a warm-started ``fit`` and
        ``partial_fit`` do not re-initialize, so a ``train_split``, ``patience``,
        ``max_epochs`` or ``verbose`` changed since (by ``set_params`` or assignment) would
        leave stale defaults, e.g. early stopping on a ``valid_loss`` that no longer exists.
        A new ``callbacks`` list is picked up too (skorch's ``set_params(callbacks=...)``
        rebuilds ``callbacks_`` from the previous list).
        """
        built = getattr(self, "_callbacks_built_for_", None)
        settings = self._callback_settings()
        resumable = "fit_epoch" in dict(getattr(self, "callbacks_", []))  # absent in old pickles
        if built is not None and built[0] == settings and built[1] is self.callbacks and (
            resumable or self.callbacks == "disable"
        ):
            return
        if isinstance(self.callbacks, str) and self.callbacks == "disable":
            self.callbacks_ = []
            self._callbacks_built_for_ = (settings, self.callbacks)
        else:
            self.initialize_callbacks()

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        # Adam(W)'s fused kernel updates every parameter in one call instead of a loop over
        # them; an explicit fused/foreach wins. Gain on CPU, 1 thread: 3 epochs on 200 JDFT2D
        # graphs, default module, 1.90 s fused against 1.92 s with fused=False (about 1 %).
        if (
            prefix == "optimizer"
            and self.optimizer in (torch.optim.Adam, torch.optim.AdamW)
            and "fused" not in kwargs
            and "foreach" not in kwargs
            and str(self.device).split(":")[0] in ("cpu", "cuda")
        ):
            kwargs["fused"] = True
        return args, kwargs

    def get_dataset(self, X, y=None):
        if is_dataset(X):
            return X
        return GraphDataset(CrystalGraphs.checked(X, type(self).__name__, compatible=False), y)

    def get_split_datasets(self, X, y=None, **fit_params):
        if isinstance(self.train_split, str):
            if self.train_split != "auto":
                raise ValueError(
                    f"train_split={self.train_split!r}: use 'auto', None, or a skorch split"
                )
            dataset = self.get_dataset(X, y)
            fraction = 0.1
            if self._stratified():  # at least one validation sample per class
                fraction = max(fraction, len(np.unique(y)) / max(len(dataset), 1))
            split = ValidSplit(
                fraction, stratified=self._stratified(), random_state=self._split_seed_
            )
            return split(dataset, y, **fit_params)
        return super().get_split_datasets(X, y, **fit_params)

    def _stratified(self) -> bool:
        return False

    def infer(self, x, **fit_params):
        if isinstance(x, GraphBatch):
            return self.module_(**self._module_inputs(x), **fit_params)
        return super().infer(x, **fit_params)

    def _module_inputs(self, batch: GraphBatch) -> dict:
        """The module's keyword arguments for a batch, global features standardised."""
        inputs = batch.to(self.device)
        values = inputs.get("global_fea")
        scaler = getattr(self, "global_scaler_", None)
        if values is not None and scaler is not None:
            mean = torch.as_tensor(scaler.mean_, dtype=values.dtype, device=values.device)
            scale = torch.as_tensor(scaler.scale_, dtype=values.dtype, device=values.device)
            inputs["global_fea"] = ((values - mean) / scale).to(torch.float32)
        return inputs

    def initialize_module(self):
        kwargs = self.get_params_for("module")
        if isinstance(self.module, torch.nn.Module):  # a built module is used as given
            self.module_ = self.initialized_instance(self.module, kwargs)
            self._fresh_module = False
            return self
        inferred = self._module_dims()
        if inferred is None:
            missing = [k for k in ("n_atom_fea", "n_bond_fea") if k not in kwargs]
            if missing:
                raise NotFittedError(
                    f"{type(self).__name__} cannot build its module before seeing data "
                    f"({', '.join('module__' + k for k in missing)} unknown): call fit, "
                    "initialize_for(n_atom_features=..., gaussian=..., ...), or "
                    "load_params(f_params=...) with a file written by save_params"
                )
        else:
            if "n_global" not in inferred and kwargs.get("n_global", 0):
                inferred["n_global"] = 0  # so that a module__n_global without globals is caught
            for key, value in inferred.items():
                if key in kwargs and kwargs[key] != value:
                    raise ValueError(
                        f"module__{key}={kwargs[key]} but the data gives {key}={value}"
                    )
                kwargs[key] = value
        self.module_ = self.initialized_instance(self.module, kwargs)
        # random weights until a callback or load_params gives it others (PretrainedInit asks)
        self._fresh_module = True
        return self

    def _module_dims(self) -> dict | None:
        if not hasattr(self, "n_atom_features_"):
            return None
        dims = {
            "n_atom_fea": int(self.n_atom_features_),
            "n_bond_fea": int(self.n_bond_features_),
            "n_out": int(self.n_outputs_),
        }
        if getattr(self, "n_global_", 0):  # only then: a custom module need not know n_global
            dims["n_global"] = int(self.n_global_)
        return dims

    # ---- fit / predict helpers ------------------------------------------------------------
    def _validate_X(self, X, reset: bool) -> CrystalGraphs:
        graphs = CrystalGraphs.checked(X, type(self).__name__)
        first = graphs[0]
        width, n_bond = first.n_atom_features, first.n_bond_features
        gaussian = tuple(float(v) for v in first.gaussian)
        n_global, names = first.n_global, first.global_names
        if reset:
            self.n_atom_features_ = width
            self.n_bond_features_ = n_bond
            self.gaussian_ = gaussian
            self.max_num_nbr_, self.atom_table_digest_ = learn_fitted_on(
                graphs, type(self).__name__)
            self._learn_globals(graphs, n_global, names)
        elif hasattr(self, "gaussian_"):
            if width != self.n_atom_features_ or gaussian != tuple(self.gaussian_):
                raise ValueError(
                    f"X has {width} atom features and gaussian={gaussian}, but "
                    f"{type(self).__name__} was fitted with {self.n_atom_features_} and "
                    f"gaussian={tuple(self.gaussian_)}: use the same featurizer settings"
                )
            self._check_global_columns(n_global, names)
            recut = check_fitted_on(self, graphs)
            graphs = graphs if recut is graphs else CrystalGraphs(recut)
        return graphs

    def _learn_globals(self, graphs, n_global: int, names) -> None:
        """Width, names and standardisation of the global features, from the fit graphs."""
        self.n_global_ = int(n_global)
        if not n_global:
            self.global_feature_names_ = self.global_scaler_ = None
            return
        self.global_feature_names_ = np.asarray(names, dtype=object)
        # a constant column gets scale 1 (StandardScaler's rule): it becomes 0, not NaN
        self.global_scaler_ = StandardScaler().fit(np.stack([g.global_features for g in graphs]))

    def _check_global_columns(self, n_global: int, names) -> None:
        fitted = getattr(self, "n_global_", 0)
        known = getattr(self, "global_feature_names_", None)

        def text(k, cols):
            return f"{k} global feature(s)" + (f" {list(cols)}" if k and cols is not None else "")

        if n_global != fitted or (
            n_global and known is not None and names is not None and list(names) != list(known)
        ):
            raise ValueError(
                f"X has {text(n_global, names)}, but {type(self).__name__} was fitted with "
                f"{text(fitted, known)}: give the same global feature columns in the same order "
                "(a DataFrame through the same CrystalGraphFeaturizer(global_features=...))"
            )

    def _check_len(self, graphs, y) -> None:
        if len(y) != len(graphs):
            raise ValueError(
                f"X has {len(graphs)} graphs but y has {len(y)} rows: they must match"
            )

    def fit(self, X, y, **fit_params):
        """Fit on crystal graphs.

        Parameters
        ----------
        X : CrystalGraphs or sequence of CrystalGraph
            The featurizer's output, or any list of its graphs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets (regressor) or class labels (classifier, 1-D).
        **fit_params
            Passed on to skorch's ``partial_fit``.

        Returns
        -------
        self

        Notes
        -----
        With ``warm_start=True`` a second ``fit`` keeps the module, optimizer, target
        standardisation / classes and history, and trains ``max_epochs`` more epochs. The
        callbacks are rebuilt from the current ``train_split``, ``patience``, ``max_epochs``,
        ``verbose`` and ``callbacks`` when any of them changed since the previous fit.
        ``max_epochs=0`` trains nothing: the estimator is fitted (module built, targets
        learned, callbacks' ``on_train_begin``/``on_train_end`` run) with untouched weights.

        Each ``fit`` runs its own cosine schedule from ``lr`` down to 0 over ``max_epochs``.
        When a callback restores the history of an interrupted run at the start of training
        (skorch's ``LoadInitState`` with a ``Checkpoint``), the fit resumes it instead: it
        trains the epochs that run had left, at the learning rates it would have used.
        """
        self._validate_constraints()
        y = self._check_y(y)
        keep = bool(self.warm_start and self.initialized_ and hasattr(self, "n_outputs_"))
        graphs = self._validate_X(X, reset=not keep)
        self._check_len(graphs, y)
        if not keep:
            self._learn_targets(y)
        y_internal = self._encode_targets(y)
        seed = self._seed()
        # ValidSplit draws from numpy; torch (init, dropout, batch order) is seeded here.
        self._split_seed_ = seed
        with _torch_seed(seed):
            if not self.warm_start or not self.initialized_:
                self.initialize()
            else:
                self._sync_callbacks()
            super().partial_fit(graphs, y_internal, **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train further on (X, y), keeping the module and what ``fit`` learned.

        The target standardisation / classes come from the first ``fit``; a first call on an
        unfitted estimator is a ``fit``. Callbacks are rebuilt as in a warm-started ``fit``
        when the parameters they derive from changed.
        """
        if not self.initialized_ or not hasattr(self, "n_outputs_"):
            return self.fit(X, y, **fit_params)
        self._validate_constraints()
        self._sync_callbacks()
        y = self._check_y(y)
        graphs = self._validate_X(X, reset=False)
        self._check_len(graphs, y)
        self._split_seed_ = self._seed()
        super().partial_fit(graphs, self._encode_targets(y), **fit_params)
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop over the epochs left: all, or what an interrupted run had left."""
        epochs = self.max_epochs if epochs is None else epochs
        resume = dict(self.callbacks_).get("fit_epoch")
        if isinstance(resume, _Resume):
            epochs = resume.epochs_left(self, epochs)
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def _check_y(self, y) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        return np.asarray(y)

    def _initialize_seeded(self):
        with _torch_seed(self._seed()):
            self.initialize()
        return self

    def _raw_outputs(self, X) -> np.ndarray:
        """skorch's ``predict_proba`` (``predict_nonlinearity`` applied); finite, or an error.

        ``X`` may also be a dataset: skorch's scoring callbacks pass the training split.
        """
        self.check_is_fitted()
        if not is_dataset(X):
            X = self._validate_X(X, reset=False)
        out = super().predict_proba(X)
        bad = ~np.isfinite(out.reshape(len(out), -1)).all(axis=1)
        if bad.any():
            weights = all(bool(torch.isfinite(w).all()) for w in self.module_.parameters())
            raise FloatingPointError(
                f"{type(self).__name__}: non-finite outputs for {int(bad.sum())} of {len(out)} "
                f"crystals (first X[{int(np.flatnonzero(bad)[0])}]); "
                + ("the weights are finite: check those crystals' graphs" if weights else
                   "the weights are not finite (training diverged): refit with a lower lr")
            )
        return out

    # ---- the network as a featurizer (CGCNNEmbedder) --------------------------------
    def transform(self, X, layer: str = "pooled") -> np.ndarray:
        """The learned crystal vectors, one row per crystal (evaluation mode).

        Parameters
        ----------
        X : CrystalGraphs or sequence of CrystalGraph
        layer : {"pooled", "hidden"}, default="pooled"
            ``"pooled"``: the pooled atom vectors, the input of the hidden layers (width
            ``module__atom_fea_len``, global features not included); ``"hidden"``: the last
            hidden layer, the input of ``fc_out`` (width ``module__h_fea_len``), which
            depends on the global features.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float32

        See Also
        --------
        cgcnn_sk.CGCNNEmbedder : the same as a transformer step of a Pipeline.
        """
        return crystal_embedding(self, X, layer)


