"""The seed's studies: a factorial design over the CGCNN's settings, and the RF beside it.

The questions, and the numbers that answer them:

==========================  =================================================================
``"neighbours"``            main effect of ``graph__max_num_nbr`` (M = 4 against 12)
``"activation_batchnorm"``  main effects of ``cgcnn__module__activation`` (relu against
                            softplus) and ``cgcnn__module__batchnorm`` (off against on), and
                            their interaction
``"pooling"``               main effect of ``cgcnn__module__pooling`` (max against mean)
``"baseline"``              a CGCNN against the matminer RF
                            (:func:`cgcnn_sk.baselines.make_rf_baseline`), on the design's folds
                            and on further repeats of the cross-validation: the recipe's, one
                            chosen by nested CV, or the recipe with given settings (e.g. a
                            task's tuned ones, :data:`cgcnn_sk.recipes.TUNED`)
==========================  =================================================================

**Design.** The factors of the questions asked form a two-level factorial design
(:data:`FACTORS`; the ``+`` level of each is the recipe's). With four factors the quick preset
runs the half fraction with defining relation ``I = ABCD`` (8 settings, resolution IV: main
effects are free of two-factor interactions; each two-factor interaction is aliased with
another, activation x batchnorm with M x pooling), the full preset all 16 settings. Every
setting is fitted on the same folds with the same seed (common random numbers), so each main
effect is a contrast of half of all fits against the other half, fold by fold.

**Decisions.** Per fold, an effect's contrast is the mean test MAE at its ``+`` side minus
that at its ``-`` side; the folds' contrasts go to the Bayesian correlated t-test
(:func:`cgcnn_sk.report.statistics.correlated_ttest`), whose correction for the training rows
the folds share keeps the verdict honest. A verdict is "better" when the posterior puts 95 %
on one side beyond the region of practical equivalence (``rope``, a fraction of the mean test
MAE), "equivalent" when it puts 95 % inside it, and otherwise "undecided", with the smallest
difference this design could have resolved. A linear model with folds as blocks would treat the
fits as independent and overstate the evidence, so it is not used.

**Engine.** Each fit is one :func:`sklearn.model_selection.cross_validate` call on one
(train, test) split, so a run is a flat list of fits spread over ``n_jobs`` processes, and with
``memory=`` every finished fit is cached on disk: a rerun after Ctrl-C or a kill fits only what
is missing. Structures are featurized once, at the largest M, and each setting's featurizer
re-cuts the graphs (exact, and cheap next to a fit).

:func:`run_study` returns a :class:`StudyResult` with the tidy table (one row per fit,
:data:`TIDY_COLUMNS`), the loss curves and the out-of-fold predictions; :mod:`cgcnn_sk.report`
draws the figures and writes the report from them.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, KFold, check_cv, cross_validate
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_memory

from ..recipes import get_recipe
from ._build import recipe_pipeline
from ._design import FACTORS, QUESTIONS, STUDIES, _resolve_studies, design_settings
from ._interrupt import RunInterrupted, SigintWatch, watch_sigint
from ._locks import unit_lock
from ._study_result import PARAM_COLUMNS, TIDY_COLUMNS, StudyResult

__all__ = [
    "FACTORS",
    "PARAM_COLUMNS",
    "PRESETS",
    "QUESTIONS",
    "STUDIES",
    "TIDY_COLUMNS",
    "StudyResult",
    "design_settings",
    "make_cgcnn_pipeline",
    "run_study",
]

_SHORT = {v: k for k, v in PARAM_COLUMNS.items()}

#: Study presets. ``recipe`` names the network and schedule (:data:`cgcnn_sk.recipes.RECIPES`);
#: ``cv`` folds (the official Matbench folds on Matbench data); ``fraction`` of the 2^k design
#: (``"half"`` applies from four factors on, where it has resolution IV); ``repeats`` of the
#: cross-validation for the RF comparison (the extra repeats fit only the recipe's CGCNN and the
#: RF); ``rope``: region of practical equivalence, a fraction of the mean test MAE.
PRESETS: dict[str, dict[str, Any]] = {
    # The README's main job: at most 15 minutes on 2 cores. The 60-epoch fit is the "study"
    # recipe (its accuracy against the 300-epoch recipe is measured in cgcnn_sk.recipes).
    "quick": {"recipe": "study", "cv": 5, "fraction": "half", "repeats": 3,
              "rf": {"n_estimators": 500}, "rope": 0.025},
    # The recipe's own fit (300 epochs). The half fraction keeps it within 2 hours on 2 cores
    # (50 fits of 65-180 s of CPU); the 16-setting design (fraction="full") takes twice that.
    "full": {"recipe": "default", "cv": 5, "fraction": "half", "repeats": 3,
             "rf": {"n_estimators": 500}, "rope": 0.025},
}

_INT_COLUMNS = ("max_num_nbr", "max_epochs", "epochs", "repeat", "fold")
_SCORING = {"mae": "neg_mean_absolute_error", "rmse": "neg_root_mean_squared_error"}


class _UnlessInterrupted:
    """A scorer that first raises ``KeyboardInterrupt`` if Ctrl-C came during the fit.

    skorch ends its epoch loop on Ctrl-C and returns normally, so without this
    ``cross_validate`` would score the half-trained net as if it were finished.
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


# --------------------------------------------------------------------------- pipeline
def make_cgcnn_pipeline(preset: str = "quick", random_state: int | None = 0, **params):
    """The CGCNN pipeline of a study preset or a recipe, ``graph`` then ``cgcnn`` steps.

    Parameters
    ----------
    preset : str, default="quick"
        A study preset (:data:`PRESETS`: its recipe) or a recipe name
        (:data:`cgcnn_sk.recipes.RECIPES`).
    random_state : int or None, default=0
        Seed of the network (weights, batches).
    **params
        Further ``set_params`` values, e.g. ``cgcnn__module__pooling="max"``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline

    Examples
    --------
    >>> pipe = make_cgcnn_pipeline("quick", cgcnn__module__pooling="max")
    >>> pipe.get_params()["cgcnn__module__pooling"], pipe.get_params()["cgcnn__max_epochs"]
    ('max', 60)
    >>> make_cgcnn_pipeline("default").get_params()["cgcnn__max_epochs"]
    300
    """
    recipe = get_recipe(PRESETS[preset]["recipe"] if preset in PRESETS else preset)
    return recipe_pipeline(recipe, random_state, **params)


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")


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


def _repeat_folds(k: int, n: int, repeat: int, random_state) -> list:
    """Folds of repeat ``repeat`` >= 1: a fresh shuffle, reproducible from ``random_state``."""
    seed = np.random.SeedSequence([0 if random_state is None else int(random_state), repeat])
    kf = KFold(k, shuffle=True, random_state=int(seed.generate_state(1)[0]))
    return [(tr, te) for tr, te in kf.split(np.zeros(n))]


# --------------------------------------------------------------------------- one fit
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt): .*$", re.MULTILINE)


def _reasons(messages: Iterable[str]) -> str:
    """The final ``SomeError: message`` lines of the tracebacks scikit-learn reports."""
    return "; ".join(dict.fromkeys(m for text in messages for m in _ERROR_LINE.findall(text)))


def _fit(est, X, y, train, test, ids, scoring, key=None) -> dict:
    """One fit and its score through ``cross_validate`` on one split; ``key`` names it in a cache.

    Returns the row values, the history records and the predictions. scikit-learn reports a
    failed fit or score as a warning; its reason becomes the row's ``error``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = cross_validate(est, X, y, cv=[(train, test)], scoring=scoring,
                                 return_estimator=True, error_score=np.nan)
        except ValueError as exc:
            if "fits failed" not in str(exc):
                raise
            res = {"test_mae": [np.nan], "test_rmse": [np.nan], "fit_time": [np.nan],
                   "score_time": [np.nan], "estimator": [None], "error": _reasons([str(exc)])}
    failures = []
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, FitFailedWarning) or text.startswith("Scoring failed"):
            failures.append(text)
        else:  # not ours to swallow
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    failed = not np.isfinite(res["test_mae"][0])
    fitted = res["estimator"][0]
    row = {"n_train": len(train), "n_test": len(test), "test_mae": -res["test_mae"][0],
           "test_rmse": -res["test_rmse"][0], "fit_time": res["fit_time"][0],
           "score_time": res["score_time"][0], "epochs": np.nan,
           "status": "failed" if failed else "ok",
           "error": (res.get("error") or _reasons(failures) or "fit or scoring failed")
           if failed else "", "chosen": None}
    hist, pred = [], None
    if not failed:
        net = getattr(fitted, "best_estimator_", fitted)[-1]
        if hasattr(fitted, "best_params_"):
            row["chosen"] = fitted.best_params_
        history = getattr(net, "history", None)
        if history is not None:
            row["epochs"] = len(history)
            names = ("train_loss", "train_mae")
            hist = [{"epoch": e, **{c: h[c] for c in names if c in h}}
                    for e, h in enumerate(history, start=1)]
        y_pred = np.asarray(fitted.predict(_safe_indexing(X, test)), float).ravel()
        pred = pd.DataFrame({"index": test, "id": None if ids is None else [ids[i] for i in test],
                             "y_true": y[test], "y_pred": y_pred})
    return {"row": row, "hist": hist, "pred": pred}


def _locked_fit(location, est, X, y, train, test, ids, scoring, key) -> dict:
    """:func:`_fit` through the disk cache at ``location``, one process at a time per fit.

    A second study on the same cache waits while the first fits, then reads the result:
    no fit runs twice and no cache entry is written by two processes. The lock is the OS's,
    so a killed process releases it.
    """
    cached = joblib.Memory(location, verbose=0).cache(_fit, ignore=["est", "X", "scoring"])
    with unit_lock(Path(location) / "locks" / f"{joblib.hash(key)}.lock"):
        return cached(est, X, y, train, test, ids, scoring, key=key)


def _fit_key(est) -> str:
    """Hash of every parameter value (classes, dicts and callbacks included)."""
    params = est.get_params(deep=True)
    return joblib.hash({k: v for k, v in params.items()
                        if k != "steps" and not hasattr(v, "get_params")})


@dataclass
class _Job:
    study: str
    model: str
    setting: str
    swept: dict
    repeat: int
    fold: int
    est: Any
    X: Any
    train: np.ndarray
    test: np.ndarray


def _param_columns(est) -> dict:
    params = est.get_params()
    return {c: _describe(params.get(p)) for c, p in PARAM_COLUMNS.items()}


def _neighbour_shells(graphs, ms: Iterable[int]) -> dict[str, float]:
    """Median distance (A) of the M-th nearest neighbour over all atoms, for each M."""
    out = {}
    dists = [np.asarray(g.nbr_dist) for g in graphs]
    for m in sorted(set(int(v) for v in ms)):
        col = np.concatenate([d[:, m - 1] for d in dists if d.shape[1] >= m])
        col = col[np.isfinite(col) & (col > 0)]
        if col.size:
            out[str(m)] = round(float(np.median(col)), 3)
    return out


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
    levels: Mapping[str, tuple] | None = None,
    fraction: str | None = None,
    repeats: int | None = None,
    rope: float | None = None,
    estimator: Any = None,
    baseline: Any = None,
    baseline_cgcnn: str | Mapping[str, Any] = "default",
    inner_cv: int = 3,
    memory: Any = None,
    ids: Sequence[Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    verbose: bool = False,
) -> StudyResult:
    """Run the factorial design of the questions asked, and the RF comparison.

    Parameters
    ----------
    structures : sequence or DataFrame
        Anything the crystal-graph featurizer accepts (pymatgen Structures, ASE Atoms,
        CIF paths or strings), or a DataFrame with a ``structure`` column.
    y : array-like of shape (n_samples,)
        Numeric target, one per structure.
    study : str or list of str, default="all"
        ``"all"`` or any of :data:`STUDIES`. The factors of the sweeps asked for
        (:data:`QUESTIONS`) form the design.
    cv : int, CV splitter or iterable of (train, test), optional
        Folds of the design (repeat 0). An int means ``KFold(cv, shuffle=True,
        random_state=random_state)``; default: the preset's ``cv``.
    preset : {"quick", "full"}, default="quick"
        Recipe, design fraction, repeats, RF size and ROPE (:data:`PRESETS`).
    random_state : int or None, default=0
        Seed of the folds, the networks (the same for every setting: common random numbers)
        and the forest. The same seed gives the same table (apart from the timing columns).
    n_jobs : int, optional
        Fits run in parallel processes (joblib).
    params : mapping, optional
        ``set_params`` values applied to the base pipeline, e.g. ``{"cgcnn__max_epochs": 5}``.
    levels : mapping, optional
        Factor -> ``(parameter, low, high)`` replacing entries of :data:`FACTORS`.
    fraction : {"full", "half"}, optional
        Overrides the preset's design fraction.
    repeats : int, optional
        Repetitions of the cross-validation for the RF comparison (default: the preset's).
    rope : float, optional
        Region of practical equivalence as a fraction of the mean test MAE (default: the
        preset's, 0.025).
    estimator : Pipeline, optional
        Base pipeline with steps ``"graph"`` and ``"cgcnn"``; default
        :func:`make_cgcnn_pipeline` of the preset.
    baseline : estimator, optional
        Baseline pipeline on the structures; default
        ``make_rf_baseline(random_state=random_state, **preset["rf"])``.
    baseline_cgcnn : {"default", "nested"} or mapping, default="default"
        The CGCNN of the RF comparison. ``"default"``: the base pipeline (the recipe), fixed
        before any fold is seen. ``"nested"``: ``GridSearchCV`` over the design's settings
        with ``inner_cv`` folds inside each outer training fold. A mapping: ``set_params``
        values applied to the base pipeline, e.g. the settings chosen for a Matbench task
        (:data:`cgcnn_sk.recipes.TUNED`); ``meta["baseline_note"]`` can say how they were
        chosen. The report then also compares the design's recipe setting with the RF on the
        design's folds.
    inner_cv : int, default=3
        Inner folds of ``baseline_cgcnn="nested"``.
    memory : str, path or joblib.Memory, default=None
        Cache every finished fit on disk, so that the same call after an interruption (Ctrl-C
        or a killed process) fits only what is missing. Keyed by the package version, every
        parameter value and hashes of the data, the split and the ids.
    ids : sequence, optional
        Identifiers of the structures, kept in the predictions table.
    meta : mapping, optional
        Extra facts for the report (``data``, ``target``, ``unit``).
    verbose : bool, default=False
        Show a tqdm progress bar over fits.

    Returns
    -------
    result : StudyResult

    Raises
    ------
    RunInterrupted
        On Ctrl-C: the fit being run is dropped rather than scored half-trained;
        ``exc.result`` holds the finished fits (``None`` if none finished), marked partial in
        ``meta["interrupted"]`` and in its report.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_jdft2d  # doctest: +SKIP
    >>> structures, y = load_jdft2d()  # doctest: +SKIP
    >>> result = run_study(structures, y, study="pooling", cv=3)  # doctest: +SKIP
    >>> result.conclusions()["pooling"]  # doctest: +SKIP
    """
    from .._version import __version__

    t_start = time.perf_counter()
    names = _resolve_studies(study)
    memory = check_memory(os.fspath(memory) if isinstance(memory, os.PathLike) else memory)
    _check_preset(preset)
    tuned = dict(baseline_cgcnn) if isinstance(baseline_cgcnn, Mapping) else None
    if tuned is None and baseline_cgcnn not in ("default", "nested"):
        raise ValueError("baseline_cgcnn must be 'default', 'nested' or a mapping of "
                         f"parameters, got {baseline_cgcnn!r}")
    spec = PRESETS[preset]
    fraction = spec["fraction"] if fraction is None else fraction
    repeats = spec["repeats"] if repeats is None else int(repeats)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rope = spec["rope"] if rope is None else float(rope)
    if not 0 <= rope < 1:
        raise ValueError(f"rope is a fraction of the MAE in [0, 1), got {rope}")
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
    ids = None if ids is None else list(ids)
    folds = _resolve_folds(spec["cv"] if cv is None else cv, y, random_state)
    factors = list(dict.fromkeys(f for n in names if n in QUESTIONS
                                 for term in QUESTIONS[n] for f in term))
    table_levels = {**FACTORS, **(levels or {})}
    settings = design_settings(factors, fraction, levels) if factors else []
    base = make_cgcnn_pipeline(preset, random_state) if estimator is None else clone(estimator)
    base.set_params(**(params or {}))
    base_params = base.get_params()
    if tuned is not None:
        unknown = sorted(set(tuned) - set(base_params))
        if unknown:
            raise ValueError(f"baseline_cgcnn: {', '.join(unknown)} is not a parameter of the "
                             "pipeline (steps 'graph' and 'cgcnn')")

    # one neighbour search, at the largest M and radius any setting asks for
    asked = settings + ([tuned] if tuned is not None and "baseline" in names else [])
    widest = {p: max([s.get(f"graph__{p}", base_params[f"graph__{p}"]) for s in asked]
                     + [base_params[f"graph__{p}"]])
              for p in ("max_num_nbr", "radius")}
    t0 = time.perf_counter()
    graphs = clone(base.named_steps["graph"]).set_params(**widest).fit_transform(X)
    featurize_first = time.perf_counter() - t0
    ms = [s.get("graph__max_num_nbr", base_params["graph__max_num_nbr"]) for s in settings]
    shells = _neighbour_shells(graphs, ms or [base_params["graph__max_num_nbr"]])

    jobs: list[_Job] = []
    labels: dict[str, dict] = {}
    default_key = _fit_key(base)
    design_has_default = False
    for s in settings:
        est = clone(base).set_params(**s)
        label = _label(s)
        labels[label] = s
        design_has_default |= _fit_key(est) == default_key
        jobs += [_Job("factorial", "cgcnn", label, s, 0, k, est, graphs, tr, te)
                 for k, (tr, te) in enumerate(folds)]
    if "baseline" in names:
        all_folds = [folds] + [_repeat_folds(len(folds), len(y), r, random_state)
                               for r in range(1, repeats)]
        if baseline_cgcnn == "nested":
            grid = [{k: [v] for k, v in s.items()} for s in settings] or [{}]
            inner = KFold(inner_cv, shuffle=True, random_state=random_state)
            cg = GridSearchCV(clone(base), grid, cv=inner, error_score=np.nan,
                              scoring=_SCORING["mae"])
            cg_label = f"nested CV over {len(settings) or 1} settings"
        elif tuned is not None:
            cg, cg_label = clone(base).set_params(**tuned), f"tuned: {_label(tuned)}"
        else:
            cg, cg_label = clone(base), "recipe"
        if baseline is None:
            from ..baselines import make_rf_baseline

            baseline = make_rf_baseline(random_state=random_state, n_jobs=n_jobs, **spec["rf"])
        kind = baseline.get_params().get("matminer__kind")
        rf_label = f"RF {kind}" if kind else "RF"
        for r, rfolds in enumerate(all_folds):
            for k, (tr, te) in enumerate(rfolds):
                if not (r == 0 and design_has_default and tuned is None
                        and baseline_cgcnn == "default"):
                    jobs.append(_Job("baseline", "cgcnn", cg_label, {}, r, k, cg, graphs, tr, te))
                jobs.append(_Job("baseline", "rf", rf_label, {}, r, k, clone(baseline), X,
                                 tr, te))
    # The baseline's fits run here, one after the other, so that its featurizer's in-process
    # cache computes each structure's descriptors once; the CGCNN fits go to the pool, the
    # costliest first so that the last ones do not leave a worker idle.
    local = [j for j in jobs if j.model != "cgcnn"]
    pooled = sorted((j for j in jobs if j.model == "cgcnn"),
                    key=lambda j: -int(j.est.get_params().get("graph__max_num_nbr", 0) or 0))

    cached = memory is not None and memory.location is not None
    fit = (partial(_locked_fit, memory.location) if cached else _fit)
    check = memory.cache(_fit, ignore=["est", "X", "scoring"]) if cached else None
    x_hash = {}

    def key(job: _Job):
        if id(job.X) not in x_hash:
            x_hash[id(job.X)] = joblib.hash(job.X)
        return (__version__, job.model, _fit_key(job.est), x_hash[id(job.X)],
                joblib.hash((y, job.train, job.test, ids)))

    rows, hist, preds = [], [], []
    from_cache = 0
    stopped = None
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="fits", unit="fit")

    def collect(j: _Job, out: dict) -> None:
        names_ = {"study": j.study, "model": j.model, "setting": j.setting,
                  "repeat": j.repeat, "fold": j.fold}
        row = dict(out["row"])
        chosen = row.pop("chosen")
        extra = _param_columns(j.est) if j.model == "cgcnn" else dict.fromkeys(PARAM_COLUMNS)
        rows.append({**row, **names_, **extra, "params": json.dumps(
            {p: _describe(v) for p, v in (chosen or j.swept).items()})})
        hist.extend({**h, **names_} for h in out["hist"])
        if out["pred"] is not None:
            preds.append(out["pred"].assign(**names_))
        if bar is not None:
            bar.set_postfix_str(f"{j.model}: {j.setting}"[:60], refresh=False)
            bar.update(1)

    with watch_sigint() as watch:
        scoring = _scoring(watch)
        calls = []
        for j in local + pooled:
            args = (j.est, j.X, y, j.train, j.test, ids, scoring)
            kw = {"key": key(j)} if cached else {}
            if cached and check.check_call_in_cache(*args, **kw):
                from_cache += 1
            calls.append((j, args, kw))
        try:
            for j, args, kw in calls[:len(local)]:
                collect(j, fit(*args, **kw))
            results = joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
                joblib.delayed(fit)(*args, **kw) for _, args, kw in calls[len(local):])
            for (j, _, _), out in zip(calls[len(local):], results, strict=True):
                collect(j, out)
        except KeyboardInterrupt:  # keep what finished; the fit being run is dropped
            stopped = len(rows)
        finally:
            if bar is not None:
                bar.close()
    table = pd.DataFrame(rows).reindex(columns=TIDY_COLUMNS)
    for c in _INT_COLUMNS:
        table[c] = table[c].astype("Int64")
    table["batchnorm"] = table["batchnorm"].astype("boolean")
    keys = ["study", "model", "setting", "repeat", "fold"]
    hist = pd.DataFrame(hist)
    hist = hist.reindex(columns=keys + [c for c in hist if c not in keys])
    preds = (pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()).reindex(
        columns=keys + ["index", "id", "y_true", "y_pred"])
    info = {
        "preset": preset,
        "recipe": spec["recipe"] if estimator is None else "custom estimator",
        "studies": names,
        "factors": {f: [_describe(table_levels[f][1]), _describe(table_levels[f][2])]
                    for f in factors},
        "factor_params": {f: table_levels[f][0] for f in factors},
        "questions": {q: [list(term) for term in QUESTIONS[q]] for q in names if q in QUESTIONS},
        "fraction": "half" if fraction == "half" and len(factors) >= 4 else "full",
        "n_settings": len(settings),
        "n_samples": len(X),
        "cv": len(folds),
        "repeats": repeats if "baseline" in names else 1,
        "rope": rope,
        "random_state": random_state,
        "n_jobs": n_jobs,
        "baseline_cgcnn": "tuned" if tuned is not None else baseline_cgcnn,
        **({"baseline_params": {k: _describe(v) for k, v in tuned.items()}}
           if tuned is not None else {}),
        "inner_cv": inner_cv if baseline_cgcnn == "nested" else None,
        "n_fits": len(jobs),
        "featurize_first_time": round(featurize_first, 3),
        "neighbour_shells": shells,
        **({"fits_from_cache": from_cache} if cached else {}),
        "params": {k: _describe(v) for k, v in (params or {}).items()},
        "wall_time": round(time.perf_counter() - t_start, 1),
        **(meta or {}),
    }
    if stopped is not None:
        where = f"PARTIAL: interrupted (Ctrl-C) after {stopped} of {len(jobs)} fits; "
        if not stopped:
            info["interrupted"] = where + "no fit had finished, nothing is kept"
        elif cached:
            info["interrupted"] = where + (
                f"they are reported and cached in {memory.location}, so the same call resumes "
                "from there")
        else:
            info["interrupted"] = where + (
                "they are reported; the others were not run (without memory= the study does "
                "not resume: run it again for the full report)")
        raise RunInterrupted(info["interrupted"],
                             StudyResult(table, hist, preds, info, labels) if stopped else None)
    return StudyResult(table, hist, preds, info, labels)
