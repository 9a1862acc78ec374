"""The seed's studies: cross-validated sweeps of a CGCNN pipeline, and the RF baseline beside it.

Each study is a small parameter grid over ``Pipeline([("graph", CrystalGraphFeaturizer()),
("cgcnn", CGCNNRegressor())])``; every setting is scored by
:func:`sklearn.model_selection.cross_validate` on folds shared by every study of a run:

==========================  =================================================================
``"hyperparameters"``       loss function (``cgcnn__criterion``), learning rate, depth
``"neighbours"``            ``graph__max_num_nbr``
``"activation_batchnorm"``  ``cgcnn__module__activation`` x ``cgcnn__module__batchnorm``
``"pooling"``               ``cgcnn__module__pooling``
``"baseline"``              CGCNN against the matminer RF baseline
                            (:func:`cgcnn_sk.baselines.make_rf_baseline`), fold by fold; the
                            CGCNN is the preset's fixed default or, with
                            ``baseline_cgcnn="nested"``, a setting chosen per outer fold by an
                            inner cross-validation on that fold's training rows only
==========================  =================================================================

:func:`run_study` returns a :class:`StudyResult` holding three tidy tables -- one row per
setting x fold (:data:`TIDY_COLUMNS`), the loss curves of every fit (skorch's
``net.history``) and the out-of-fold predictions -- from which :mod:`cgcnn_sk.report` draws
the figures and writes the report. A fit that raises (a diverging loss, a bad parameter) is
scored as ``error_score=np.nan`` does in scikit-learn: its rows say ``status="failed"`` with the
reason, and the report lists the setting as failed instead of scoring it.

On Ctrl-C the setting being cross-validated is dropped, not scored half-trained (skorch ends
its epoch loop on ``KeyboardInterrupt`` and returns as if done), and :func:`run_study` raises
:class:`~cgcnn_sk._interrupt.RunInterrupted` holding the finished settings, marked partial.

Structures are featurized once, at the largest ``max_num_nbr`` of the run, and the graphs are
passed as ``X``: the pipeline's featurizer re-cuts them to each setting's neighbour count
(exact, and cheap next to a fit).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, check_cv, cross_validate
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_memory

from ._interrupt import RunInterrupted, SigintWatch, watch_sigint

__all__ = [
    "STUDIES",
    "PRESETS",
    "PARAM_COLUMNS",
    "TIDY_COLUMNS",
    "StudyResult",
    "make_cgcnn_pipeline",
    "run_study",
]

STUDIES = ("hyperparameters", "neighbours", "activation_batchnorm", "pooling", "baseline")

#: tidy column -> pipeline parameter (``set_params`` name) recorded for every CGCNN row
PARAM_COLUMNS = {
    "max_num_nbr": "graph__max_num_nbr",
    "radius": "graph__radius",
    "criterion": "cgcnn__criterion",
    "activation": "cgcnn__module__activation",
    "batchnorm": "cgcnn__module__batchnorm",
    "pooling": "cgcnn__module__pooling",
    "lr": "cgcnn__lr",
    "atom_fea_len": "cgcnn__module__atom_fea_len",
    "n_conv": "cgcnn__module__n_conv",
    "h_fea_len": "cgcnn__module__h_fea_len",
    "max_epochs": "cgcnn__max_epochs",
}
_SHORT = {v: k for k, v in PARAM_COLUMNS.items()}

#: columns of ``StudyResult.table``, one row per (study, model, setting, fold)
TIDY_COLUMNS = [
    "study",  # study name
    "model",  # "cgcnn" or the baseline's name ("rf")
    "setting",  # label of the swept values, e.g. "max_num_nbr=4"
    "params",  # JSON of the swept values (for nested CV: the setting the inner CV chose)
    "fold",  # fold number, 0-based
    "n_train",
    "n_test",
    "test_mae",  # mean absolute error on the held-out fold, target units; NaN if failed
    "test_rmse",
    "fit_time",  # s, fit of the whole pipeline on the training part (incl. graph re-cut)
    "score_time",  # s
    "epochs",  # epochs trained (early stopping may end before max_epochs)
    "status",  # "ok" or "failed"
    "error",  # why the fit or its scoring failed ("" when ok)
    *PARAM_COLUMNS,
]

# The training recipe, set explicitly so the preset does not follow CGCNNRegressor's
# defaults: L1 loss on the standardised target (jdft2d, official folds: 44.9 against 56.0
# meV/atom with MSE) and up to 300 epochs with patience 60 (issue 11).
_RECIPE = {
    "graph__max_num_nbr": 12,
    "cgcnn__criterion": torch.nn.L1Loss,
    "cgcnn__module__activation": "softplus",
    "cgcnn__module__batchnorm": True,
    "cgcnn__module__pooling": "mean",
    "cgcnn__module__atom_fea_len": 64,
    "cgcnn__module__n_conv": 3,
    "cgcnn__module__h_fea_len": 128,
    "cgcnn__lr": 3e-3,
    "cgcnn__max_epochs": 300,
    # the studies compare validation curves and stop early on them (the Matbench recipe
    # trains the whole fold instead: cgcnn_sk.matbench)
    "cgcnn__train_split": "auto",
    "cgcnn__patience": 60,
    "cgcnn__batch_size": 64,
}
_CRITERIA = [torch.nn.MSELoss, torch.nn.L1Loss, torch.nn.HuberLoss]

#: Study presets: folds, base pipeline parameters, the grid of every study and the RF size.
#: Both train the recipe's network (``_RECIPE``); ``"quick"`` sweeps fewer values on 4
#: folds, ``"full"`` more on 5 (the official Matbench folds on Matbench data). Wall times:
#: docs/notes/study.md.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "cv": 4,
        "base": _RECIPE,
        "rf": {"n_estimators": 100},
        "grids": {  # 9 distinct settings (the base one is shared): 36 fits of the recipe
            "hyperparameters": [{"cgcnn__criterion": _CRITERIA}],
            "neighbours": [{"graph__max_num_nbr": [4, 12]}],
            "activation_batchnorm": [
                {
                    "cgcnn__module__activation": ["softplus", "relu"],
                    "cgcnn__module__batchnorm": [True, False],
                }
            ],
            "pooling": [{"cgcnn__module__pooling": ["mean", "max"]}],
        },
    },
    "full": {
        "cv": 5,
        "base": _RECIPE,
        "rf": {"n_estimators": 500},
        "grids": {
            "hyperparameters": [
                {"cgcnn__criterion": _CRITERIA},
                {"cgcnn__lr": [3e-4, 1e-3, 3e-3, 1e-2]},
                {"cgcnn__module__atom_fea_len": [32, 128]},
                {"cgcnn__module__n_conv": [1, 2, 4, 5]},
                {"cgcnn__module__h_fea_len": [32, 64, 256]},
            ],
            "neighbours": [{"graph__max_num_nbr": [1, 2, 4, 6, 8, 12, 16]}],
            "activation_batchnorm": [
                {
                    "cgcnn__module__activation": [
                        "softplus", "relu", "silu", "gelu", "elu", "leaky_relu"
                    ],
                    "cgcnn__module__batchnorm": [True, False],
                }
            ],
            "pooling": [{"cgcnn__module__pooling": ["mean", "max", "sum"]}],
        },
    },
}

_INT_COLUMNS = ("max_num_nbr", "atom_fea_len", "n_conv", "h_fea_len", "max_epochs", "epochs")
_SCORING = {"mae": "neg_mean_absolute_error", "rmse": "neg_root_mean_squared_error"}


class _UnlessInterrupted:
    """A scorer that first raises ``KeyboardInterrupt`` if Ctrl-C came during the fit.

    skorch ends its epoch loop on Ctrl-C and returns normally, so without this
    ``cross_validate`` would score the half-trained net and go on to the next fold.
    """

    def __init__(self, scorer, watch: SigintWatch):
        self.scorer, self.watch = scorer, watch

    def __call__(self, estimator, X, y=None, **kwargs):
        self.watch.check()
        return self.scorer(estimator, X, y, **kwargs)


def _scoring(watch: SigintWatch, names: Mapping[str, str] = _SCORING) -> dict:
    return {k: _UnlessInterrupted(get_scorer(v), watch) for k, v in names.items()}


def _describe(v):
    """A printable, JSON-able stand-in for a parameter value: classes and callables by name."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, bool, int, float, type(None))):
        return v
    return getattr(v, "__name__", repr(v)) if callable(v) else repr(v)


def _label(params: Mapping[str, Any]) -> str:
    """``{"cgcnn__module__pooling": "max"}`` -> ``"pooling=max"``; every value, any type."""
    return ", ".join(
        f"{_SHORT.get(k, k.rsplit('__', 1)[-1])}={_describe(v)}" for k, v in params.items()
    )


# --------------------------------------------------------------------------- result
@dataclass
class StudyResult:
    """What :func:`run_study` returns: tidy tables a report is drawn from.

    Attributes
    ----------
    table : DataFrame
        One row per (study, model, setting, fold); columns :data:`TIDY_COLUMNS`.
    histories : DataFrame
        Loss curves: ``study, model, setting, fold, epoch, train_loss, valid_loss`` (plus
        ``train_mae``, ``valid_mae`` in target units when the estimator records them).
    predictions : DataFrame
        Out-of-fold predictions: ``study, model, setting, fold, index, id, y_true, y_pred``.
    meta : dict
        Run facts: ``preset``, ``cv``, ``random_state``, ``n_samples``, ``studies``,
        ``baseline_cgcnn``, ``featurize_first_time``, ``wall_time`` and what the caller adds
        (``data``, ``target``, ``unit``).
    settings : dict
        ``(study, setting label) -> set_params dict`` of every swept setting (in memory only).

    Examples
    --------
    >>> result = run_study(structures, y, study="pooling")  # doctest: +SKIP
    >>> result.summary()[["setting", "mae_mean", "mae_std"]]  # doctest: +SKIP
    >>> result.write_report("report/")  # doctest: +SKIP
    """

    table: pd.DataFrame
    histories: pd.DataFrame
    predictions: pd.DataFrame
    meta: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean and std of the fold MAEs per setting (:func:`cgcnn_sk.report.summarize`)."""
        from ..report import summarize

        return summarize(self.table)

    def best(self, study: str) -> dict:
        """``set_params`` values of the study's setting with the lowest mean test MAE.

        Failed settings are not candidates. Picked on the folds it is scored on, so its MAE
        is optimistic; the baseline study does not use it.
        """
        from ..report import summarize

        rows = self.table[(self.table["model"] == "cgcnn") & (self.table["study"] == study)]
        s = summarize(rows)
        s = s[s["n_failed"] == 0]
        if s.empty:
            raise ValueError(f"no successful CGCNN setting for study {study!r}")
        label = s.sort_values("mae_mean", kind="stable")["setting"].iloc[0]
        return self.settings.get((study, label)) or json.loads(
            rows.loc[rows["setting"] == label, "params"].iloc[0]
        )

    def conclusions(self) -> dict[str, str]:
        """One sentence per study (:func:`cgcnn_sk.report.conclusion`)."""
        from ..report import conclusion

        return {
            s: conclusion(self.table, s, self.meta.get("unit"), meta=self.meta)
            for s in dict.fromkeys(self.table["study"])
        }

    def write_report(
        self, out_dir: str | Path, formats: Iterable[str] = ("md", "html")
    ) -> dict[str, Path]:
        """Write figures, CSV tables, ``meta.json`` and the report into ``out_dir``.

        A partial result (``meta["interrupted"]``, see :func:`run_study`) says so at the top.
        """
        from ..report import write_report

        out_dir = Path(out_dir)
        paths = write_report(self.table, self.histories, self.predictions, out_dir,
                             meta=self.meta, formats=formats)
        note = self.meta.get("interrupted")
        if note:  # a partial result says so before anything else
            for fmt, (after, banner) in {"md": ("\n", f"\n> **{note}**\n"),
                                         "html": ("</h1>", f"\n<p><b>{note}</b></p>")}.items():
                if fmt in paths:
                    text = paths[fmt].read_text()
                    i = text.index(after) + len(after)
                    paths[fmt].write_text(text[:i] + banner + text[i:])
        paths["meta"] = out_dir / "meta.json"
        paths["meta"].write_text(json.dumps(self.meta, indent=2, default=str))
        return paths

    @classmethod
    def load(cls, out_dir: str | Path) -> StudyResult:
        """Read back the tables written by :meth:`write_report`."""
        out_dir = Path(out_dir)
        table, hist, preds = (
            pd.read_csv(out_dir / name, keep_default_na=False, na_values=[""])
            if (out_dir / name).exists() else pd.DataFrame()
            for name in ("results.csv", "histories.csv", "predictions.csv")
        )
        if "error" in table:
            table["error"] = table["error"].fillna("")
        meta_path = out_dir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(table, hist, preds, meta)


# --------------------------------------------------------------------------- pipeline
def make_cgcnn_pipeline(preset: str = "quick", random_state: int | None = 0, **params):
    """The CGCNN pipeline of a preset: ``Pipeline([("graph", ...), ("cgcnn", ...)])``.

    Parameters
    ----------
    preset : {"quick", "full"}, default="quick"
        Whose base parameters to use (:data:`PRESETS`).
    random_state : int or None, default=0
        Seed of the network (weights, batches, validation split).
    **params
        Further ``set_params`` values, e.g. ``cgcnn__module__pooling="max"``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline

    Examples
    --------
    >>> pipe = make_cgcnn_pipeline("quick", cgcnn__module__pooling="max")
    >>> pipe.get_params()["cgcnn__module__pooling"], pipe.get_params()["cgcnn__criterion"]
    ('max', <class 'torch.nn.modules.loss.L1Loss'>)
    """
    from sklearn.pipeline import Pipeline

    from ..estimators._regressor import CGCNNRegressor
    from ..graph._featurizer import CrystalGraphFeaturizer

    _check_preset(preset)
    pipe = Pipeline([("graph", CrystalGraphFeaturizer()),
                     ("cgcnn", CGCNNRegressor(random_state=random_state, verbose=0))])
    return pipe.set_params(**{**PRESETS[preset]["base"], **params})


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")


def _resolve_studies(study: str | Sequence[str]) -> list[str]:
    names = [study] if isinstance(study, str) else list(study)
    choices = "choose from 'all', " + ", ".join(map(repr, STUDIES))
    if not names:
        raise ValueError("no study given; " + choices)
    for name in names:
        if name != "all" and name not in STUDIES:
            raise ValueError(f"unknown study {name!r}; " + choices)
    return list(dict.fromkeys(s for n in names for s in (STUDIES if n == "all" else [n])))


def _check_y(y, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must be one target per structure, got shape {arr.shape}")
    num = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(num))
    if bad.size:
        i = int(bad[0])
        more = f" ({bad.size} bad items)" if bad.size > 1 else ""
        raise ValueError(f"y must be finite numbers: item {i} is {arr[i]!r}{more}")
    if len(num) != n:
        raise ValueError(f"got {n} structures but {len(num)} targets")
    return num


def _resolve_folds(cv, y, random_state) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got {cv}")
        if cv > len(y):
            raise ValueError(f"cv={cv} folds but only {len(y)} structures")
        cv = KFold(int(cv), shuffle=True, random_state=random_state)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in check_cv(cv).split(np.zeros(len(y)))]


# --------------------------------------------------------------------------- scoring
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt): .*$", re.MULTILINE)


def _reasons(messages: Iterable[str]) -> str:
    """The final ``SomeError: message`` lines of the tracebacks scikit-learn reports."""
    return "; ".join(dict.fromkeys(m for text in messages for m in _ERROR_LINE.findall(text)))


def _cross_validate(est, X, y, folds, n_jobs, scoring) -> dict:
    """``cross_validate`` with ``error_score=np.nan``, keeping why a fold failed.

    scikit-learn reports fit and scoring failures as warnings (and raises when every fit
    failed); their tracebacks become the ``error`` of the failed folds.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = cross_validate(
                est, X, y, cv=folds, scoring=scoring, return_estimator=True,
                return_indices=True, n_jobs=n_jobs, error_score=np.nan,
            )
        except ValueError as exc:
            if "fits failed" not in str(exc):
                raise
            nan = np.full(len(folds), np.nan)
            res = {"test_mae": nan, "test_rmse": nan, "fit_time": nan, "score_time": nan,
                   "estimator": [None] * len(folds), "error": _reasons([str(exc)])}
    failures = []
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, FitFailedWarning) or text.startswith("Scoring failed"):
            failures.append(text)
        else:  # not ours to swallow
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    res.setdefault("error", _reasons(failures) or "fit or scoring failed")
    return res


def _tables(res, X, y, folds, ids) -> tuple[list[dict], list[dict], list[pd.DataFrame]]:
    """Rows of the tidy table, history records and prediction frames of one CV result."""
    rows, hist, preds = [], [], []
    for k, (train_idx, test_idx) in enumerate(folds):
        failed = not np.isfinite(res["test_mae"][k])
        fitted = res["estimator"][k]
        net = None if failed else getattr(fitted, "best_estimator_", fitted)[-1]
        history = getattr(net, "history", None)
        rows.append({
            "fold": k, "n_train": len(train_idx), "n_test": len(test_idx),
            "test_mae": -res["test_mae"][k], "test_rmse": -res["test_rmse"][k],
            "fit_time": res["fit_time"][k], "score_time": res["score_time"][k],
            "epochs": len(history) if history is not None else np.nan,
            "status": "failed" if failed else "ok", "error": res["error"] if failed else "",
        })
        if failed:
            continue
        if history is not None:
            names = ("train_loss", "valid_loss", "train_mae", "valid_mae")
            hist += [{"fold": k, "epoch": e, **{c: h[c] for c in names if c in h}}
                     for e, h in enumerate(history, start=1)]
        # the scorer's predictions are not returned by cross_validate: predict once more
        y_pred = np.asarray(fitted.predict(_safe_indexing(X, test_idx)), float).ravel()
        preds.append(pd.DataFrame({
            "fold": k, "index": test_idx,
            "id": None if ids is None else [ids[i] for i in test_idx],
            "y_true": y[test_idx], "y_pred": y_pred,
        }))
    return rows, hist, preds


def _fit_key(est) -> str:
    """Hash of every parameter value (classes, dicts and callbacks included)."""
    params = est.get_params(deep=True)
    return joblib.hash({k: v for k, v in params.items()
                        if k != "steps" and not hasattr(v, "get_params")})


def _param_columns(est) -> dict:
    params = est.get_params()
    return {c: _describe(params.get(p)) for c, p in PARAM_COLUMNS.items()}


def _cv_tables(est, X, y, folds, ids, n_jobs, scoring, key):
    """One setting's cross-validation and its tables; ``key`` names it in a disk cache."""
    res = _cross_validate(est, X, y, folds, n_jobs, scoring)
    return _tables(res, X, y, folds, ids), res


class _Collector:
    """Accumulates the three tidy tables; remembers fits that several studies share.

    With a ``memory`` location every finished setting is also cached on disk (joblib.Memory),
    keyed by the package version, the model, every parameter value and a hash of ``X``,
    ``y``, the folds and the ids, so a rerun of an interrupted study resumes. A setting that
    is interrupted raises out of the cached call, and joblib stores nothing for it.
    """

    def __init__(self, X, y, folds, ids, n_jobs, bar, scoring, memory=None):
        self.X, self.y, self.folds, self.ids, self.n_jobs, self.bar = X, y, folds, ids, n_jobs, bar
        self.scoring = scoring
        self.rows, self.hist, self.preds = [], [], []
        self._done: dict[str, tuple] = {}
        self.cached = memory is not None and memory.location is not None
        self._cv = memory.cache(_cv_tables, ignore=["est", "X", "n_jobs", "scoring"]) \
            if self.cached else _cv_tables
        self._x_hashes: dict[int, str] = {}
        self.from_cache = 0

    def _cache_key(self, model, est, X) -> tuple:
        from .. import __version__

        if id(X) not in self._x_hashes:  # the graphs (or the RF's structures), hashed once
            self._x_hashes[id(X)] = joblib.hash(X)
        return (__version__, model, _fit_key(est), self._x_hashes[id(X)])

    def run(self, study, model, label, est, swept: Mapping | None = None, X=None) -> None:
        key = _fit_key(est) if model == "cgcnn" else None
        if key is None or key not in self._done:
            X = self.X if X is None else X
            args = (est, X, self.y, self.folds, self.ids, self.n_jobs, self.scoring)
            kwargs = {"key": self._cache_key(model, est, X) if self.cached else None}
            if self.cached and self._cv.check_call_in_cache(*args, **kwargs):
                self.from_cache += 1
            self._done[key] = self._cv(*args, **kwargs)
        (rows, hist, preds), res = self._done[key]
        names = {"study": study, "model": model, "setting": label}
        extra = _param_columns(est) if model == "cgcnn" else dict.fromkeys(PARAM_COLUMNS)
        for k, r in enumerate(rows):
            params = swept
            if swept is None and res["estimator"][k] is not None:  # nested: what was chosen
                params = getattr(res["estimator"][k], "best_params_", {})
            self.rows.append({**r, **names, **extra,
                              "params": json.dumps({p: _describe(v) for p, v in
                                                    (params or {}).items()})})
        self.hist += [{**h, **names} for h in hist]
        self.preds += [p.assign(**names) for p in preds]
        if self.bar is not None:
            self.bar.set_postfix_str(f"{study}: {label}", refresh=False)
            self.bar.update(1)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        table = pd.DataFrame(self.rows).reindex(columns=TIDY_COLUMNS)
        for c in _INT_COLUMNS:
            table[c] = table[c].astype("Int64")
        table["batchnorm"] = table["batchnorm"].astype("boolean")
        keys = ["study", "model", "setting", "fold"]
        hist = pd.DataFrame(self.hist)
        hist = hist.reindex(columns=keys + [c for c in hist if c not in keys])
        pred_cols = keys + ["index", "id", "y_true", "y_pred"]
        preds = (pd.concat(self.preds, ignore_index=True) if self.preds
                 else pd.DataFrame()).reindex(columns=pred_cols)
        return table, hist, preds


def run_study(
    structures: Sequence[Any],
    y: Any,
    study: str | Sequence[str] = "all",
    *,
    cv: Any = None,
    preset: str = "quick",
    random_state: int | None = 0,
    n_jobs: int | None = None,
    params: Mapping[str, Any] | None = None,
    grids: Mapping[str, Any] | None = None,
    estimator: Any = None,
    baseline: Any = None,
    baseline_cgcnn: str = "default",
    inner_cv: int = 3,
    memory: Any = None,
    ids: Sequence[Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    verbose: bool = False,
) -> StudyResult:
    """Run one or several studies with cross-validation on the same folds.

    Parameters
    ----------
    structures : sequence or DataFrame
        Anything the crystal-graph featurizer accepts (pymatgen Structures, ASE Atoms,
        CIF paths or strings), or a DataFrame with a ``structure`` column.
    y : array-like of shape (n_samples,)
        Numeric target, one per structure.
    study : str or list of str, default="all"
        ``"all"`` or any of :data:`STUDIES`.
    cv : int, CV splitter or iterable of (train, test), optional
        Folds shared by every study. An int means ``KFold(cv, shuffle=True,
        random_state=random_state)``; default: the preset's ``cv``.
    preset : {"quick", "full"}, default="quick"
        Model, epochs, grids and RF size (:data:`PRESETS`).
    random_state : int or None, default=0
        Seed of the folds, the networks and the forest. The same seed gives the same table
        (apart from the timing columns).
    n_jobs : int, optional
        Passed to :func:`~sklearn.model_selection.cross_validate` (folds in parallel).
    params : mapping, optional
        ``set_params`` values applied to the base pipeline before the grids, e.g.
        ``{"cgcnn__max_epochs": 5}``.
    grids : mapping, optional
        Replace the preset's grid of some studies: ``{"pooling": [{"cgcnn__module__pooling":
        ["mean", "max"]}]}`` (a dict or list of dicts, as for ``ParameterGrid``).
    estimator : Pipeline, optional
        Base pipeline with steps ``"graph"`` and ``"cgcnn"``; default
        :func:`make_cgcnn_pipeline` of the preset.
    baseline : estimator, optional
        Baseline pipeline on the structures; default
        ``make_rf_baseline(random_state=random_state, **preset["rf"])``.
    baseline_cgcnn : {"default", "nested"}, default="default"
        The CGCNN of the baseline study. ``"default"``: the base pipeline, fixed before any
        fold is seen. ``"nested"``: ``GridSearchCV`` over the grids of the sweeps run in the
        same call (the preset's grids when none ran) with ``inner_cv`` folds inside each
        outer training fold, so no test fold chooses the setting it is scored with.
    inner_cv : int, default=3
        Inner folds of ``baseline_cgcnn="nested"``.
    memory : str, path or joblib.Memory, default=None
        Cache every finished setting's cross-validation (tables and fitted estimators) on
        disk, so that the same call after an interruption resumes and reruns are free. Keyed
        by the package version, every parameter value and hashes of the graphs, ``y``, folds
        and ids; the timing columns of a cached setting are those of the run that fitted it
        (``meta["settings_from_cache"]`` counts them).
    ids : sequence, optional
        Identifiers of the structures, kept in the predictions table.
    meta : mapping, optional
        Extra facts for the report (``data``, ``target``, ``unit``).
    verbose : bool, default=False
        Show a tqdm progress bar over settings.

    Returns
    -------
    result : StudyResult

    Raises
    ------
    RunInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``): the setting being cross-validated is dropped
        rather than scored half-trained; ``exc.result`` holds the finished settings (``None``
        if none finished), marked partial in ``meta["interrupted"]`` and in its report.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_jdft2d  # doctest: +SKIP
    >>> structures, y = load_jdft2d()  # doctest: +SKIP
    >>> result = run_study(structures, y, study="pooling", cv=3)  # doctest: +SKIP
    >>> result.conclusions()["pooling"]  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    names = _resolve_studies(study)
    memory = check_memory(os.fspath(memory) if isinstance(memory, os.PathLike) else memory)
    _check_preset(preset)
    if baseline_cgcnn not in ("default", "nested"):
        raise ValueError(f"baseline_cgcnn must be 'default' or 'nested', got {baseline_cgcnn!r}")
    spec = PRESETS[preset]
    if isinstance(structures, pd.DataFrame):
        if "structure" not in structures:
            raise ValueError("a DataFrame of structures needs a 'structure' column")
        structures = structures["structure"]
    X = list(structures)
    if not X:
        raise ValueError("no structures given")
    y = _check_y(y, len(X))
    if ids is not None and len(ids) != len(X):
        raise ValueError(f"got {len(X)} structures but {len(ids)} ids")
    folds = _resolve_folds(spec["cv"] if cv is None else cv, y, random_state)
    study_grids = dict(spec["grids"])
    for name, grid in (grids or {}).items():
        if name not in STUDIES or name == "baseline":
            raise ValueError(f"grids: unknown study {name!r}")
        study_grids[name] = [grid] if isinstance(grid, Mapping) else list(grid)
    base = make_cgcnn_pipeline(preset, random_state) if estimator is None else clone(estimator)
    base.set_params(**(params or {}))
    sweeps = [n for n in names if n != "baseline"]
    settings = {n: list(ParameterGrid(study_grids[n])) for n in sweeps}

    # one neighbour search, at the largest M and radius any setting asks for
    searched = [base.get_params()] + [s for v in settings.values() for s in v]
    if "baseline" in names and baseline_cgcnn == "nested":
        searched += list(ParameterGrid([g for n in (sweeps or spec["grids"])
                                        for g in study_grids[n]]))
    widest = {p: max(s.get(f"graph__{p}", base.get_params()[f"graph__{p}"]) for s in searched)
              for p in ("max_num_nbr", "radius")}
    t0 = time.perf_counter()
    graphs = clone(base.named_steps["graph"]).set_params(**widest).fit_transform(X)
    featurize_first = time.perf_counter() - t0

    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(map(len, settings.values())) + 2 * ("baseline" in names),
                   desc="settings", unit="setting")
    labels = {}
    current = stopped = None  # (study, setting) being cross-validated / interrupted
    with watch_sigint() as watch:
        runs = _Collector(graphs, y, folds, None if ids is None else list(ids), n_jobs, bar,
                          _scoring(watch), memory)
        try:
            for name in sweeps:
                for setting in settings[name]:
                    label = _label(setting) or "preset base"
                    labels[(name, label)] = setting
                    current = (name, label)
                    runs.run(name, "cgcnn", label, clone(base).set_params(**setting), setting)
            if "baseline" in names:
                if baseline_cgcnn == "default":
                    current = ("baseline", "preset default")
                    runs.run("baseline", "cgcnn", "preset default", clone(base), {})
                else:
                    grid = [g for n in (sweeps or spec["grids"]) for g in study_grids[n]]
                    inner = KFold(inner_cv, shuffle=True, random_state=random_state)
                    search = GridSearchCV(clone(base), grid, cv=inner, error_score=np.nan,
                                          scoring=_scoring(watch, {"mae": _SCORING["mae"]})["mae"])
                    n = len(ParameterGrid(grid))
                    current = ("baseline", f"nested CV over {n} settings")
                    runs.run("baseline", "cgcnn", current[1], search)
                if baseline is None:
                    from ..baselines import make_rf_baseline

                    baseline = make_rf_baseline(random_state=random_state, **spec["rf"])
                kind = baseline.get_params().get("matminer__kind")
                current = ("baseline", f"RF {kind}" if kind else "RF")
                runs.run("baseline", "rf", current[1], clone(baseline), {}, X)
        except KeyboardInterrupt:  # keep what finished; the setting being run is dropped
            stopped = current or ("featurizing", "")
        finally:
            if bar is not None:
                bar.close()
    table, hist, preds = runs.frames()
    info = {
        "preset": preset,
        "studies": names,
        "n_samples": len(X),
        "cv": len(folds),
        "random_state": random_state,
        "n_jobs": n_jobs,
        "baseline_cgcnn": baseline_cgcnn,
        "inner_cv": inner_cv if baseline_cgcnn == "nested" else None,
        "featurize_first_time": round(featurize_first, 3),
        **({"settings_from_cache": runs.from_cache} if runs.cached else {}),
        "featurize_widest": widest,
        "params": {k: _describe(v) for k, v in (params or {}).items()},
        "wall_time": round(time.perf_counter() - t_start, 1),
        **(meta or {}),
    }
    if stopped is not None:
        done = len({(r["study"], r["setting"]) for r in runs.rows})
        total = sum(map(len, settings.values())) + 2 * ("baseline" in names)
        where = f"PARTIAL: interrupted (Ctrl-C) in {stopped[0]}: {stopped[1]}; "
        if not done:
            info["interrupted"] = where + "no setting had finished, nothing is kept"
        elif runs.cached:
            info["interrupted"] = where + (
                f"{done} of {total} settings finished: they are reported and cached in "
                f"{memory.location}, so the same call resumes from there")
        else:
            info["interrupted"] = where + (
                f"{done} of {total} settings finished and are reported; that one and the ones "
                "after it were not run (without memory= the study does not resume: run it "
                "again for the full report)")
        raise RunInterrupted(info["interrupted"],
                             StudyResult(table, hist, preds, info, labels) if done else None)
    return StudyResult(table, hist, preds, info, labels)
