"""What the skorch estimators around :class:`cgcnn_sk._module.CGCNN` share: ``_CGCNNMixin``.

:class:`~cgcnn_sk.CGCNNRegressor` (``_regressor.py``) and :class:`~cgcnn_sk.CGCNNClassifier`
(``_classifier.py``) are skorch nets with a few small overrides and no training loop of their own:

* ``get_dataset`` wraps graphs (``CrystalGraphs`` or any sequence of ``CrystalGraph``, as
  scikit-learn's CV slicing hands them over) in a :class:`~cgcnn_sk._collate.GraphDataset`;
  batches are built by :func:`~cgcnn_sk._collate.collate_fn` and ``infer`` turns a
  :class:`~cgcnn_sk._collate.GraphBatch` into ``CGCNN.forward``'s keyword arguments;
* ``fit`` validates X and y, learns the data dimensions (atom features, Gaussians, outputs,
  global features), the target standardisation and the standardisation of the global
  features (a ``StandardScaler`` on the graphs given to ``fit``, so under cross-validation on
  the training fold only; ``infer`` applies it to every batch), seeds torch from
  ``random_state``, then calls skorch;
* ``initialize_module`` passes the learned dimensions to the module (``module__...`` sets
  everything else);
* ``initialize_for`` sets those learned values without data (a fitted estimator whose
  weights can then be loaded); ``save_params``/``load_params`` keep them in the ``f_params``
  file, so a fresh estimator can load it without seeing data;
* the default callbacks (skorch ``EpochScoring`` for MAE / accuracy, a cosine schedule that
  each ``fit`` runs from ``lr`` down, a stop at the first non-finite loss, early stopping)
  are derived from ``train_split``, ``patience``, ``max_epochs`` and ``verbose``; a
  warm-started ``fit`` and ``partial_fit`` rebuild them when those (or ``callbacks``)
  changed since they were built;
* a ``fit`` whose history was restored by skorch's ``LoadInitState`` (an interrupted run)
  resumes: it trains only the epochs that run had left, on the same schedule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
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
from skorch.history import History
from skorch.utils import is_dataset

from ..graph._collate import GraphBatch, GraphDataset, collate_fn
from ..graph._crystal import CrystalGraph, gaussian_centers
from ._callbacks import _CosineLR, _FiniteLoss, _mae
from ._readout import crystal_embedding

_META_KEY = "_cgcnn_sk_meta"


def _silent(*args, **kwargs) -> None:
    """A sink that prints nothing (picklable, unlike a lambda)."""


def _check_graphs(X, who: str) -> Sequence[CrystalGraph]:
    """X must be CrystalGraphs or a sequence of CrystalGraph; name the first bad item."""
    if isinstance(X, CrystalGraph):
        raise TypeError(f"{who} expects a sequence of CrystalGraph, got a single CrystalGraph")
    if isinstance(X, (str, bytes)) or not isinstance(X, (Sequence, np.ndarray)):
        raise TypeError(
            f"{who} expects CrystalGraphs or a list of CrystalGraph, got {type(X).__name__}; "
            f"put a CrystalGraphFeaturizer before {who}"
        )
    if isinstance(X, np.ndarray):
        X = list(X.ravel())
    if len(X) == 0:
        raise ValueError(f"{who} got 0 graphs")
    for i, g in enumerate(X):
        if not isinstance(g, CrystalGraph):
            raise TypeError(
                f"X[{i}] is a {type(g).__name__}, not a CrystalGraph: {who} takes crystal "
                f"graphs; put a CrystalGraphFeaturizer before {who}, e.g. "
                f"Pipeline([('graph', CrystalGraphFeaturizer()), ('cgcnn', {who}())])"
            )
    return X


def _check_finite(y: np.ndarray) -> None:
    """Name the first row of y holding NaN or infinity."""
    bad = ~np.isfinite(y.reshape(len(y), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Input y contains NaN or infinity: y[{i}] = {y[i].tolist()} ({int(bad.sum())} such "
            "rows); drop or fill them before fit"
        )


def _graph_dims(graphs: Sequence[CrystalGraph]) -> tuple[int, int, tuple]:
    """(n_atom_features, n_bond_features, gaussian) shared by all graphs, or a clear error."""
    first = graphs[0]
    gaussian = tuple(float(v) for v in first.gaussian)
    width = first.n_atom_features
    for i, g in enumerate(graphs):
        if tuple(float(v) for v in g.gaussian) != gaussian or g.n_atom_features != width:
            name = f" ({g.id!r})" if g.id is not None else ""
            raise ValueError(
                f"X[{i}]{name} has gaussian={tuple(g.gaussian)} and {g.n_atom_features} atom "
                f"features, X[0] has gaussian={gaussian} and {width}: all graphs must come "
                "from one featurizer"
            )
    return width, first.n_bond_features, gaussian


def _globals_text(g: CrystalGraph) -> str:
    if g.global_features is None:
        return "no global features"
    return f"{g.n_global} global features {list(g.global_names or ())}"


def _global_dims(graphs: Sequence[CrystalGraph]) -> tuple[int, tuple[str, ...] | None]:
    """(n_global, global feature names) shared by all graphs, or a clear error."""
    first = graphs[0]
    for i, g in enumerate(graphs):
        if g.global_names != first.global_names or g.n_global != first.n_global:
            name = f" ({g.id!r})" if g.id is not None else ""
            raise ValueError(
                f"X[{i}]{name} has {_globals_text(g)}, X[0] has {_globals_text(first)}: all "
                "graphs must carry the same global feature columns"
            )
    return first.n_global, first.global_names


def _fixed_scaler(mean: np.ndarray, scale: np.ndarray) -> StandardScaler:
    """A StandardScaler as ``fit`` would leave it, from its documented fitted attributes."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean.copy(), scale.copy(), scale**2
    scaler.n_features_in_, scaler.n_samples_seen_ = int(mean.size), 0
    return scaler


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


class _CGCNNMixin:
    """What CGCNNRegressor and CGCNNClassifier share (data handling, seeding, persistence)."""

    _metric = "mae"
    _scoring = staticmethod(_mae)

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
        # skorch >= 1.3 defines this; on skorch 1.2 (the floor) scikit-learn's fallback (any
        # attribute ending in "_") called an unfitted net fitted, as history_ and
        # initialized_ exist from __init__ (the floor run of tests/test_bad_input.py found it).
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
        callbacks = [(n, defaults[n]) for n in ("epoch_timer", "train_loss", "valid_loss")]
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
        if built is not None and built[0] == settings and built[1] is self.callbacks:
            return
        if isinstance(self.callbacks, str) and self.callbacks == "disable":
            self.callbacks_ = []
            self._callbacks_built_for_ = (settings, self.callbacks)
        else:
            self.initialize_callbacks()

    def get_params_for_optimizer(self, prefix, named_parameters):
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        # Adam(W)'s fused kernel updates every parameter in one call instead of a Python loop
        # over them (see the README's training benchmark); an explicit fused/foreach wins.
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
        return GraphDataset(_check_graphs(X, type(self).__name__), y)

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
    def _validate_X(self, X, reset: bool) -> Sequence[CrystalGraph]:
        graphs = _check_graphs(X, type(self).__name__)
        width, n_bond, gaussian = _graph_dims(graphs)
        n_global, names = _global_dims(graphs)
        if reset:
            self.n_atom_features_ = width
            self.n_bond_features_ = n_bond
            self.gaussian_ = gaussian
            self._learn_globals(graphs, n_global, names)
        elif hasattr(self, "gaussian_"):
            if width != self.n_atom_features_ or gaussian != tuple(self.gaussian_):
                raise ValueError(
                    f"X has {width} atom features and gaussian={gaussian}, but "
                    f"{type(self).__name__} was fitted with {self.n_atom_features_} and "
                    f"gaussian={tuple(self.gaussian_)}: use the same featurizer settings"
                )
            self._check_global_columns(n_global, names)
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
            self._history_at_start = self.history_
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
        self._history_at_start = self.history_
        super().partial_fit(graphs, self._encode_targets(y), **fit_params)
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; resumes a run whose history ``on_train_begin`` restored.

        ``LoadInitState`` replaces the history (and module, optimizer) from a checkpoint in
        ``on_train_begin``; its last row says how far that run's schedule had got.
        """
        epochs = self.max_epochs if epochs is None else epochs
        done = 0
        if self.history_ is not getattr(self, "_history_at_start", self.history_):
            done = int(self.history_[-1].get("fit_epoch", 0)) if len(self.history_) else 0
            scheduler = dict(self.callbacks_).get("lr_scheduler")
            if done and isinstance(scheduler, _CosineLR):
                scheduler.resume(self, done)
        self._fit_epoch_offset = done - len(self.history_)
        return super().fit_loop(X, y, epochs=max(epochs - done, 0), **fit_params)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid,
                               **kwargs)
        # the epoch's place in its fit's schedule, which a resumed run continues from
        self.history_.record("fit_epoch", self._fit_epoch_offset + len(self.history_))

    def _check_y(self, y) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        return np.asarray(y)

    def _fit_meta(self) -> dict:
        meta = {
            "n_atom_features": int(self.n_atom_features_),
            "n_bond_features": int(self.n_bond_features_),
            "gaussian": [float(v) for v in self.gaussian_],
            "n_outputs": int(self.n_outputs_),
        }
        if getattr(self, "n_global_", 0):  # absent without globals: files as before
            names = self.global_feature_names_
            meta["n_global"] = int(self.n_global_)
            meta["global_names"] = None if names is None else [str(n) for n in names]
            meta["global_mean"] = [float(v) for v in self.global_scaler_.mean_]
            meta["global_scale"] = [float(v) for v in self.global_scaler_.scale_]
        return meta

    def _set_globals(self, mean, scale, names) -> None:
        """Validate and store the global features' width, names and scaler (``initialize_for``)."""
        if mean is None and scale is None:
            if names is not None:
                raise ValueError("global_names needs global_mean and global_scale too")
            self.n_global_ = 0
            self.global_feature_names_ = self.global_scaler_ = None
            return
        if mean is None or scale is None:
            raise ValueError("give both global_mean and global_scale, or neither")
        mean = np.asarray(mean, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or mean.size == 0:
            raise ValueError(
                f"global_mean (shape {mean.shape}) and global_scale (shape {scale.shape}) must "
                "be two non-empty 1-D arrays of the same length, one value per global feature"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(
                f"global_mean must be finite and global_scale finite and > 0, got "
                f"global_mean={mean.tolist()}, global_scale={scale.tolist()}"
            )
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != mean.size:
                raise ValueError(
                    f"global_names has {len(names)} names for {mean.size} global features"
                )
        self.n_global_ = int(mean.size)
        self.global_feature_names_ = None if names is None else np.asarray(names, dtype=object)
        self.global_scaler_ = _fixed_scaler(mean, scale)

    @staticmethod
    def _globals_from_meta(meta: dict) -> dict:
        if not meta.get("n_global"):
            return {}
        return {"global_mean": meta["global_mean"], "global_scale": meta["global_scale"],
                "global_names": meta.get("global_names")}

    def _set_graph_dims(self, n_atom_features, gaussian) -> None:
        """Validate and store what ``fit`` learns from the graphs (``initialize_for``)."""
        if (
            not isinstance(n_atom_features, (int, np.integer))
            or isinstance(n_atom_features, bool)
            or n_atom_features < 1
        ):
            raise ValueError(
                f"n_atom_features must be a positive integer, got {n_atom_features!r}"
            )
        try:
            dmin, step, radius = (float(v) for v in gaussian)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"gaussian must be (dmin, step, radius), three numbers, got {gaussian!r}"
            ) from exc
        if not (np.isfinite([dmin, step, radius]).all() and step > 0 and radius > dmin):
            raise ValueError(
                f"gaussian=(dmin, step, radius)={(dmin, step, radius)} needs finite values, "
                "step > 0 and radius > dmin"
            )
        self.n_atom_features_ = int(n_atom_features)
        self.gaussian_ = (dmin, step, radius)
        self.n_bond_features_ = len(gaussian_centers(dmin, step, radius))

    def _initialize_seeded(self):
        with _torch_seed(self._seed()):
            self.initialize()
        return self

    def _initialize_from_meta(self, meta: dict) -> None:
        """Become fitted from the ``"_cgcnn_sk_meta"`` entry that ``save_params`` writes."""
        self.initialize_for(
            n_atom_features=meta["n_atom_features"],
            gaussian=meta["gaussian"],
            **self._targets_from_meta(meta),
            **self._globals_from_meta(meta),
        )

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

    # ---- persistence ----------------------------------------------------------------------
    def save_params(self, f_params=None, use_safetensors=False, **kwargs):
        """skorch's ``save_params``; ``f_params`` also stores what ``fit`` learned.

        Besides the module's ``state_dict`` the ``f_params`` file holds one extra entry
        (``"_cgcnn_sk_meta"``: data dimensions, target standardisation, classes), so
        ``Estimator(**same_params).load_params(f_params=...)`` works without calling ``fit``
        or ``initialize`` first. With ``use_safetensors=True`` only the tensors are saved.
        """
        if f_params is None or use_safetensors:
            return super().save_params(
                f_params=f_params, use_safetensors=use_safetensors, **kwargs
            )
        self.check_is_fitted()
        if any(v is not None for v in kwargs.values()):
            super().save_params(use_safetensors=use_safetensors, **kwargs)
        state = dict(self.module_.state_dict())
        state[_META_KEY] = self._fit_meta()
        torch.save(state, f_params)
        return None

    def load_params(self, f_params=None, use_safetensors=False, checkpoint=None, **kwargs):
        """skorch's ``load_params``; a file from :meth:`save_params` restores ``fit``'s state.

        ``checkpoint`` (a skorch ``Checkpoint``, as ``LoadInitState`` passes it) is expanded
        into its files, so its ``f_params`` file is read like any other. A file that is
        truncated, not a torch file, or holds weights of another architecture raises a
        ``ValueError`` naming the file and what is wrong with it.
        """
        if checkpoint is not None:
            # as skorch does: the history first, its rows name the files (FileNotFoundError
            # on a first run, which LoadInitState ignores)
            if kwargs.get("f_history") is None and checkpoint.f_history is not None:
                self.history = History.from_file(checkpoint.f_history_)
            files = checkpoint.get_formatted_files(self)
            files.pop("f_pickle", None)
            files.update({k: v for k, v in kwargs.items() if v is not None})
            kwargs = files
            f_params = f_params if f_params is not None else kwargs.pop("f_params", None)
        if f_params is not None and not use_safetensors:
            self._load_module_file(f_params)
        else:
            kwargs["f_params"] = f_params
        # skorch loads the other files; one at a time, so an error can name the bad one
        for key, value in kwargs.items():
            if value is None:
                continue
            try:
                super().load_params(use_safetensors=use_safetensors, **{key: value})
            except FileNotFoundError:
                raise
            except Exception as exc:
                name = getattr(value, "name", value)
                raise ValueError(
                    f"{key}={name}: cannot be loaded (truncated, or a file of another kind or "
                    f"another model?): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                ) from exc
            if key == "f_params":
                self._fresh_module = False
        return None

    def _load_module_file(self, f_params) -> None:
        """Read a ``save_params`` file: module weights and, when present, what fit learned."""
        name = getattr(f_params, "name", f_params)
        load_kwargs = self.torch_load_kwargs or {"weights_only": True}
        try:
            state = torch.load(f_params, map_location=self.device, **load_kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError...
            raise ValueError(
                f"{name} is not a readable save_params file (truncated or not written by "
                f"torch.save?): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        meta = state.pop(_META_KEY, None) if isinstance(state, dict) else None
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            keys = sorted(map(str, state))[:4] if isinstance(state, dict) else []
            raise ValueError(
                f"{name} holds a {type(state).__name__} (keys {keys}), not the module "
                "state_dict that save_params(f_params=...) writes"
            )
        # (re)build only when needed: inside fit (LoadInitState) a rebuild would replace the
        # optimizer and callbacks that training is using
        same = self.initialized_ and hasattr(self, "n_outputs_") and self._fit_meta() == meta
        if meta is not None and not same:
            self._initialize_from_meta(meta)
        elif not self.initialized_:
            self.initialize()
        try:
            self.module_.load_state_dict(state)
        except RuntimeError as exc:
            lines = " ".join(ln.strip() for ln in str(exc).splitlines())
            raise ValueError(
                f"{name} does not fit {type(self).__name__}'s module (other module__ "
                f"parameters than when it was saved?): {lines[:400]}"
            ) from exc
        self._fresh_module = False

    # ---- the network as a featurizer (cgcnn_sk._embedding) --------------------------------
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


