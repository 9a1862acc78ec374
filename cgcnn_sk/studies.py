"""The seed's studies: cross-validated sweeps of a CGCNN pipeline, and the RF baseline beside it.

Each study is a small parameter grid over ``Pipeline([("graph", CrystalGraphFeaturizer()),
("cgcnn", CGCNNRegressor())])`` scored by :func:`sklearn.model_selection.cross_validate` on
folds shared by every study of a run:

==========================  =================================================================
``"hyperparameters"``       learning rate and model sizes (``cgcnn__lr``,
                            ``cgcnn__module__atom_fea_len``, ``n_conv``, ``h_fea_len``)
``"neighbours"``            ``graph__max_num_nbr``
``"activation_batchnorm"``  ``cgcnn__module__activation`` x ``cgcnn__module__batchnorm``
``"pooling"``               ``cgcnn__module__pooling``
``"baseline"``              the best CGCNN setting of the run against the matminer RF
                            baseline (:func:`cgcnn_sk.baselines.make_rf_baseline`), fold by fold
==========================  =================================================================

:func:`run_study` returns a :class:`StudyResult` holding three tidy tables -- one row per
setting x fold (:data:`TIDY_COLUMNS`), the loss curves of every fit (skorch's
``net.history``) and the out-of-fold predictions -- from which :mod:`cgcnn_sk.report` draws
the figures and writes the report.

Featurization is shared by all candidates of all studies: the crystal-graph featurizer
caches neighbour lists in-process by structure content, the run first featurizes every
structure once at the largest ``max_num_nbr`` of its grids, and later settings slice those
lists. The ``featurize_time`` column records, per setting, the time to re-featurize all
structures with that setting (it is near zero when the cache works) and
``meta["featurize_first_time"]`` the first, real neighbour search.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, ParameterGrid, check_cv, cross_validate
from sklearn.utils import _safe_indexing

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
    "params",  # JSON of the swept set_params values
    "fold",  # fold number, 0-based
    "n_train",
    "n_test",
    "test_mae",  # mean absolute error on the held-out fold, target units
    "test_rmse",
    "fit_time",  # s, fit of the whole pipeline on the training part (incl. featurization)
    "score_time",  # s
    "featurize_time",  # s, re-featurizing all structures with this setting (cache warm)
    "epochs",  # epochs trained (early stopping may end before max_epochs)
    *PARAM_COLUMNS,
]

_QUICK_BASE = {
    "graph__max_num_nbr": 12,
    "cgcnn__module__activation": "softplus",
    "cgcnn__module__batchnorm": True,
    "cgcnn__module__pooling": "mean",
    "cgcnn__module__atom_fea_len": 32,
    "cgcnn__module__n_conv": 2,
    "cgcnn__module__h_fea_len": 64,
    "cgcnn__lr": 3e-3,
    "cgcnn__max_epochs": 20,
    "cgcnn__patience": 10,
    "cgcnn__batch_size": 64,
}
_FULL_BASE = {
    "graph__max_num_nbr": 12,
    "cgcnn__module__activation": "softplus",
    "cgcnn__module__batchnorm": True,
    "cgcnn__module__pooling": "mean",
    "cgcnn__module__atom_fea_len": 64,
    "cgcnn__module__n_conv": 3,
    "cgcnn__module__h_fea_len": 128,
    "cgcnn__lr": 3e-3,
    "cgcnn__max_epochs": 200,
    "cgcnn__patience": 30,
    "cgcnn__batch_size": 64,
}

#: Study presets: folds, base pipeline parameters, the grid of every study and the RF size.
#: ``"quick"`` (14 distinct CGCNN settings x 4 folds, small network, 20 epochs) ran all
#: studies on jdft2d (636 structures) in 217-446 s with ``cgcnn-sk study`` on 2 CPU cores
#: shared with other jobs. ``"full"`` (5 folds -- the official Matbench folds on Matbench
#: data --, the reference network size, up to 200 epochs, 32 distinct settings) took 542 s
#: for the pooling study alone (3 settings) on the same machine, so about 1.5-2 hours for
#: all studies (an extrapolation, not a measurement).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "cv": 4,
        "base": _QUICK_BASE,
        "rf": {"n_estimators": 100},
        "grids": {
            "hyperparameters": [
                {"cgcnn__lr": [1e-3, 3e-3, 1e-2]},
                {"cgcnn__module__n_conv": [1, 3]},
            ],
            "neighbours": [{"graph__max_num_nbr": [1, 4, 8, 12]}],
            "activation_batchnorm": [
                {
                    "cgcnn__module__activation": ["softplus", "relu", "silu"],
                    "cgcnn__module__batchnorm": [True, False],
                }
            ],
            "pooling": [{"cgcnn__module__pooling": ["mean", "max", "sum"]}],
        },
    },
    "full": {
        "cv": 5,
        "base": _FULL_BASE,
        "rf": {"n_estimators": 500},
        "grids": {
            "hyperparameters": [
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


# --------------------------------------------------------------------------- result
@dataclass
class StudyResult:
    """What :func:`run_study` returns: tidy tables a report is drawn from.

    Attributes
    ----------
    table : DataFrame
        One row per (study, model, setting, fold); columns :data:`TIDY_COLUMNS`.
    histories : DataFrame
        Loss curves: ``study, model, setting, fold, epoch, train_loss, valid_loss``
        (plus ``train_mae``, ``valid_mae`` in target units when the estimator records them).
    predictions : DataFrame
        Out-of-fold predictions: ``study, model, setting, fold, index, id, y_true, y_pred``.
    meta : dict
        Run facts: ``preset``, ``cv``, ``random_state``, ``n_samples``, ``studies``,
        ``featurize_first_time``, ``wall_time`` and what the caller adds (``data``,
        ``target``, ``unit``).

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

    def summary(self) -> pd.DataFrame:
        """Mean and std of the fold MAEs per setting (:func:`cgcnn_sk.report.summarize`)."""
        from .report import summarize

        return summarize(self.table)

    def best(self, study: str | None = None) -> dict:
        """``set_params`` values of the CGCNN setting with the lowest mean test MAE.

        Parameters
        ----------
        study : str, optional
            Restrict to one study; all CGCNN rows otherwise.
        """
        rows = self.table[self.table["model"] == "cgcnn"]
        if study is not None:
            rows = rows[rows["study"] == study]
        if rows.empty:
            raise ValueError(f"no CGCNN rows{'' if study is None else f' for study {study!r}'}")
        mean = rows.groupby(["study", "setting"], sort=False)["test_mae"].mean()
        s, setting = mean.idxmin()
        row = rows[(rows["study"] == s) & (rows["setting"] == setting)].iloc[0]
        out = {}
        for c, name in PARAM_COLUMNS.items():
            if pd.notna(row[c]):
                v = _plain(row[c])
                out[name] = int(v) if c in _INT_COLUMNS else v
        return out

    def conclusions(self) -> dict[str, str]:
        """One sentence per study (:func:`cgcnn_sk.report.conclusion`)."""
        from .report import conclusion

        return {
            s: conclusion(self.table, s, self.meta.get("unit"),
                          featurize_first_time=self.meta.get("featurize_first_time"))
            for s in dict.fromkeys(self.table["study"])
        }

    def make_figures(self, out_dir: str | Path | None = None) -> dict:
        """All figures (:func:`cgcnn_sk.report.make_figures`)."""
        from .report import make_figures

        return make_figures(
            self.table, self.histories, self.predictions, out_dir,
            target=self.meta.get("target", "target"), unit=self.meta.get("unit"),
        )

    def write_report(
        self, out_dir: str | Path, formats: Iterable[str] = ("md", "html")
    ) -> dict[str, Path]:
        """Write figures, CSV tables, ``meta.json`` and the report into ``out_dir``."""
        from .report import write_report

        out_dir = Path(out_dir)
        paths = write_report(
            self.table, self.histories, self.predictions, out_dir, meta=self.meta,
            formats=formats,
        )
        (out_dir / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        paths["meta"] = out_dir / "meta.json"
        return paths

    @classmethod
    def load(cls, out_dir: str | Path) -> StudyResult:
        """Read back the tables written by :meth:`write_report`."""
        out_dir = Path(out_dir)

        def read(name):
            path = out_dir / name
            return pd.read_csv(path) if path.exists() else pd.DataFrame()

        meta_path = out_dir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(read("results.csv"), read("histories.csv"), read("predictions.csv"), meta)


def _module_default(module, name: str):
    try:
        return inspect.signature(module).parameters[name].default
    except (TypeError, ValueError, KeyError):
        return inspect.Parameter.empty


_INT_COLUMNS = ("max_num_nbr", "atom_fea_len", "n_conv", "h_fea_len", "max_epochs", "epochs")


def _plain(v):
    """numpy scalar -> Python scalar (for set_params and JSON)."""
    return v.item() if isinstance(v, np.generic) else v


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
    >>> pipe = make_cgcnn_pipeline("quick", cgcnn__module__pooling="max")  # doctest: +SKIP
    >>> pipe.get_params()["cgcnn__module__pooling"]  # doctest: +SKIP
    'max'
    """
    from sklearn.pipeline import Pipeline

    from ._estimators import CGCNNRegressor
    from ._featurizer import CrystalGraphFeaturizer

    _check_preset(preset)
    pipe = Pipeline(
        [
            ("graph", CrystalGraphFeaturizer()),
            ("cgcnn", CGCNNRegressor(random_state=random_state, verbose=0)),
        ]
    )
    pipe.set_params(**PRESETS[preset]["base"])
    if params:
        pipe.set_params(**params)
    return pipe


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")


def _resolve_studies(study: str | Sequence[str]) -> list[str]:
    names = [study] if isinstance(study, str) else list(study)
    if not names:
        raise ValueError("no study given; choose from 'all', " + ", ".join(map(repr, STUDIES)))
    out: list[str] = []
    for name in names:
        if name == "all":
            out.extend(STUDIES)
        elif name in STUDIES:
            out.append(name)
        else:
            raise ValueError(
                f"unknown study {name!r}; choose from 'all', " + ", ".join(map(repr, STUDIES))
            )
    return list(dict.fromkeys(out))


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


def _label(params: Mapping[str, Any]) -> str:
    """``{"cgcnn__module__pooling": "max"}`` -> ``"pooling=max"``."""
    return ", ".join(
        f"{_SHORT.get(k, k.rsplit('__', 1)[-1])}={_plain(v)}" for k, v in params.items()
    )


def _grid_keys(grid: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for g in grid for k in g))


# --------------------------------------------------------------------------- runner
class _Runner:
    """Evaluates settings on shared folds, remembering fits shared by several studies."""

    def __init__(self, X, y, folds, ids, base, n_jobs, bar):
        self.X, self.y, self.folds, self.ids = X, y, folds, ids
        self.base, self.n_jobs, self.bar = base, n_jobs, bar
        self.rows: list[dict] = []
        self.hist: list[dict] = []
        self.preds: list[pd.DataFrame] = []
        self._done: dict[str, tuple[list, list, list]] = {}
        self.all_keys = list(PARAM_COLUMNS.values())

    def _effective(self, est) -> dict:
        params = est.get_params()
        out = {}
        for k in self.all_keys:
            if k in params:
                out[k] = _plain(params[k])
            elif k.startswith("cgcnn__module__"):  # not set: the module's own default
                default = _module_default(params.get("cgcnn__module"), k[15:])
                if default is not inspect.Parameter.empty:
                    out[k] = default
        return out

    def _featurize_time(self, est) -> float:
        graph = clone(est.named_steps["graph"])
        t0 = time.perf_counter()
        graph.fit_transform(self.X)
        return time.perf_counter() - t0

    def evaluate(self, study: str, setting: dict, label_keys: list[str]) -> None:
        est = clone(self.base).set_params(**setting)
        eff = self._effective(est)
        scalars = {
            k: _plain(v) for k, v in est.get_params().items()
            if isinstance(v, (str, bool, int, float, np.generic, type(None)))
        }
        swept = {k: eff.get(k, scalars.get(k)) for k in label_keys}
        label = _label(swept) or "preset base"
        # every scalar parameter, so settings differing in anything are fitted separately
        key = json.dumps({**scalars, **eff}, sort_keys=True, default=str)
        extra = {
            "study": study, "model": "cgcnn", "setting": label,
            "params": json.dumps(swept, default=str),
        }
        if key not in self._done:
            ft = self._featurize_time(est)
            rows, hist, preds = self._cross_validate(est)
            for r in rows:
                r["featurize_time"] = ft
                r.update({c: eff.get(p) for c, p in PARAM_COLUMNS.items()})
            self._done[key] = (rows, hist, preds)
        self._record(*self._done[key], extra)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{study}: {label}", refresh=False)
            self.bar.update(1)

    def evaluate_baseline(self, est, model: str, label: str) -> None:
        rows, hist, preds = self._cross_validate(est)
        for r in rows:
            r.update({c: None for c in PARAM_COLUMNS})
            r["featurize_time"] = np.nan
        extra = {"study": "baseline", "model": model, "setting": label, "params": "{}"}
        self._record(rows, hist, preds, extra)
        if self.bar is not None:
            self.bar.set_postfix_str(f"baseline: {label}", refresh=False)
            self.bar.update(1)

    def copy_setting(self, from_study: str, setting: str, to_study: str) -> None:
        """Reuse already scored CGCNN rows (same folds, same seed) under another study."""
        sel = [r for r in self.rows if r["study"] == from_study and r["setting"] == setting
               and r["model"] == "cgcnn"]
        for r in sel:
            self.rows.append({**r, "study": to_study})
        self.hist += [
            {**h, "study": to_study} for h in self.hist
            if h["study"] == from_study and h["setting"] == setting and h["model"] == "cgcnn"
        ]
        self.preds += [
            p.assign(study=to_study) for p in self.preds
            if (p["study"].iat[0], p["setting"].iat[0], p["model"].iat[0])
            == (from_study, setting, "cgcnn")
        ]

    def _record(self, rows, hist, preds, extra) -> None:
        self.rows += [{**r, **extra} for r in rows]
        self.hist += [{**h, **{k: extra[k] for k in ("study", "model", "setting")}} for h in hist]
        self.preds += [
            p.assign(**{k: extra[k] for k in ("study", "model", "setting")}) for p in preds
        ]

    def _cross_validate(self, est):
        res = cross_validate(
            est, self.X, self.y, cv=self.folds, scoring="neg_mean_absolute_error",
            return_estimator=True, return_indices=True, n_jobs=self.n_jobs, error_score="raise",
        )
        rows, hist, preds = [], [], []
        for k, fitted in enumerate(res["estimator"]):
            train_idx, test_idx = res["indices"]["train"][k], res["indices"]["test"][k]
            y_pred = np.asarray(fitted.predict(_safe_indexing(self.X, test_idx)), float).ravel()
            y_true = self.y[test_idx]
            err = y_pred - y_true
            net = fitted[-1]
            history = getattr(net, "history", None)
            epochs = len(history) if history is not None else np.nan
            rows.append(
                {
                    "fold": k, "n_train": len(train_idx), "n_test": len(test_idx),
                    "test_mae": float(np.mean(np.abs(err))),
                    "test_rmse": float(np.sqrt(np.mean(err**2))),
                    "fit_time": float(res["fit_time"][k]),
                    "score_time": float(res["score_time"][k]),
                    "epochs": epochs,
                }
            )
            if history is not None:
                for e, h in enumerate(history, start=1):
                    rec = {"fold": k, "epoch": e}
                    for name in ("train_loss", "valid_loss", "train_mae", "valid_mae"):
                        rec[name] = float(h[name]) if name in h else np.nan
                    hist.append(rec)
            preds.append(
                pd.DataFrame(
                    {
                        "fold": k, "index": test_idx,
                        "id": [self.ids[i] for i in test_idx] if self.ids is not None else None,
                        "y_true": y_true, "y_pred": y_pred,
                    }
                )
            )
        return rows, hist, preds

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        table = pd.DataFrame(self.rows)
        table = table.reindex(columns=TIDY_COLUMNS + [c for c in table if c not in TIDY_COLUMNS])
        for c in _INT_COLUMNS:
            table[c] = pd.array(
                [None if v is None or pd.isna(v) else int(v) for v in table[c]], dtype="Int64"
            )
        table["batchnorm"] = pd.array(
            [None if v is None or pd.isna(v) else bool(v) for v in table["batchnorm"]],
            dtype="boolean",
        )
        hist_cols = ["study", "model", "setting", "fold", "epoch", "train_loss", "valid_loss",
                     "train_mae", "valid_mae"]
        hist = pd.DataFrame(self.hist).reindex(columns=hist_cols)
        hist = hist.drop(columns=[c for c in ("train_mae", "valid_mae") if hist[c].isna().all()])
        pred_cols = ["study", "model", "setting", "fold", "index", "id", "y_true", "y_pred"]
        preds = (
            pd.concat(self.preds, ignore_index=True).reindex(columns=pred_cols)
            if self.preds else pd.DataFrame(columns=pred_cols)
        )
        return table, hist, preds


def _resolve_folds(cv, X, y, random_state) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got {cv}")
        if cv > len(y):
            raise ValueError(f"cv={cv} folds but only {len(y)} structures")
        cv = KFold(int(cv), shuffle=True, random_state=random_state)
    splitter = check_cv(cv)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(np.zeros(len(y)), y)]


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
        ``"all"`` or any of :data:`STUDIES`. ``"baseline"`` compares the best CGCNN setting
        of the studies run in the same call (the preset's base setting if none) with the RF
        baseline, reusing that setting's fold results.
    cv : int, CV splitter or iterable of (train, test), optional
        Folds shared by every study. An int means ``KFold(cv, shuffle=True,
        random_state=random_state)``; default: the preset's ``cv``.
    preset : {"quick", "full"}, default="quick"
        Model size, epochs, grids and RF size (:data:`PRESETS`).
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
        Baseline pipeline on the same structures; default
        ``make_rf_baseline(random_state=random_state, **preset["rf"])``.
    ids : sequence, optional
        Identifiers of the structures, kept in the predictions table.
    meta : mapping, optional
        Extra facts for the report (``data``, ``target``, ``unit``).
    verbose : bool, default=False
        Show a tqdm progress bar over settings.

    Returns
    -------
    result : StudyResult

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_jdft2d  # doctest: +SKIP
    >>> structures, y = load_jdft2d()  # doctest: +SKIP
    >>> result = run_study(structures, y, study="pooling", cv=3)  # doctest: +SKIP
    >>> result.conclusions()["pooling"]  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    names = _resolve_studies(study)
    _check_preset(preset)
    spec = PRESETS[preset]
    if isinstance(structures, pd.DataFrame):
        if "structure" not in structures:
            raise ValueError("a DataFrame of structures needs a 'structure' column")
        structures = structures["structure"]
    X = structures if isinstance(structures, list) else list(structures)
    if len(X) == 0:
        raise ValueError("no structures given")
    y = _check_y(y, len(X))
    if ids is not None and len(ids) != len(X):
        raise ValueError(f"got {len(X)} structures but {len(ids)} ids")
    folds = _resolve_folds(spec["cv"] if cv is None else cv, X, y, random_state)

    study_grids = dict(spec["grids"])
    for name, grid in (grids or {}).items():
        if name not in STUDIES or name == "baseline":
            raise ValueError(f"grids: unknown study {name!r}")
        study_grids[name] = [grid] if isinstance(grid, Mapping) else list(grid)

    base = (
        make_cgcnn_pipeline(preset, random_state)
        if estimator is None
        else clone(estimator)
    )
    if params:
        base.set_params(**params)
    sweeps = [n for n in names if n != "baseline"]
    settings = {n: list(ParameterGrid(study_grids[n])) for n in sweeps}
    n_steps = sum(len(s) for s in settings.values()) + ("baseline" in names) * (1 + (not sweeps))

    # one real neighbour search, at the largest M any setting asks for
    max_m = max(
        [base.get_params()["graph__max_num_nbr"]]
        + [s.get("graph__max_num_nbr", 0) for v in settings.values() for s in v]
    )
    warm = clone(base.named_steps["graph"]).set_params(max_num_nbr=max_m)
    t0 = time.perf_counter()
    warm.fit_transform(X)
    featurize_first = time.perf_counter() - t0

    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="settings", unit="setting")
    runner = _Runner(X, y, folds, None if ids is None else list(ids), base, n_jobs, bar)
    try:
        for name in sweeps:
            keys = _grid_keys(study_grids[name])
            for setting in settings[name]:
                runner.evaluate(name, setting, keys)
        if "baseline" in names:
            table, _, _ = runner.frames() if runner.rows else (pd.DataFrame(), None, None)
            cg = table[table["model"] == "cgcnn"] if not table.empty else table
            if cg.empty:
                runner.evaluate("_base", {}, [])
                src_study, src_setting = "_base", "preset base"
            else:
                means = cg.groupby(["study", "setting"], sort=False)["test_mae"].mean()
                src_study, src_setting = means.idxmin()
            runner.copy_setting(src_study, src_setting, "baseline")
            if baseline is None:
                from .baselines import make_rf_baseline

                baseline = make_rf_baseline(random_state=random_state, **spec["rf"])
            kind = getattr(baseline, "kind", None) or _baseline_kind(baseline)
            runner.evaluate_baseline(clone(baseline), "rf", kind)
    finally:
        if bar is not None:
            bar.close()
    table, hist, preds = runner.frames()
    keep = table["study"] != "_base"
    table = table[keep].reset_index(drop=True)
    hist = hist[hist["study"] != "_base"].reset_index(drop=True)
    preds = preds[preds["study"] != "_base"].reset_index(drop=True)
    info = {
        "preset": preset,
        "studies": names,
        "n_samples": len(X),
        "cv": len(folds),
        "random_state": random_state,
        "n_jobs": n_jobs,
        "featurize_first_time": round(featurize_first, 3),
        "params": {k: _plain(v) for k, v in (params or {}).items()},
        "wall_time": round(time.perf_counter() - t_start, 1),
    }
    info.update(meta or {})
    return StudyResult(table, hist, preds, info)


def _baseline_kind(est) -> str:
    params = est.get_params() if hasattr(est, "get_params") else {}
    for k, v in params.items():
        if k.endswith("kind") and isinstance(v, str):
            return f"RF {v}"
    return "RF"
