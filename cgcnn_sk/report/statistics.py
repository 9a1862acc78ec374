"""Numbers of a report: per-setting summaries, paired tests and one-sentence conclusions."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["summarize", "corrected_ttest", "paired_comparison", "conclusion"]

_REQUIRED = ("study", "model", "setting", "fold", "test_mae")
#: two-sided level below which a paired difference is called resolved
ALPHA = 0.05


def check_table(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"tidy table is missing the column(s) {missing}")


def fmt(x) -> str:
    """Three significant digits, no scientific notation for everyday magnitudes."""
    if x is None or not np.isfinite(x):
        return "nan"
    if x == 0:
        return "0"
    return f"{x:.{max(0, 2 - int(math.floor(math.log10(abs(x)))))}f}"


def _failed(rows: pd.DataFrame) -> pd.Series:
    if "status" in rows:
        return rows["status"].eq("failed")
    return rows["test_mae"].isna()


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per ``(study, model, setting)``: mean and spread of the fold test MAEs.

    Parameters
    ----------
    table : DataFrame
        The tidy table (one row per setting x fold).

    Returns
    -------
    summary : DataFrame
        Columns ``study, model, setting, n_folds, n_failed, mae_mean, mae_std`` (std over
        folds, ``ddof=1``), ``mae_min, mae_max`` and, when present in ``table``, the mean
        ``fit_time`` and ``epochs``. Failed folds count in ``n_failed`` only. Settings keep
        their order of first appearance.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "pooling", "model": "cgcnn", "setting": ["a", "a", "b", "b"],
    ...                   "fold": [0, 1, 0, 1], "test_mae": [1.0, 3.0, 2.0, 2.0]})
    >>> summarize(t)[["setting", "mae_mean", "mae_std"]].round(3).values.tolist()
    [['a', 2.0, 1.414], ['b', 2.0, 0.0]]
    """
    check_table(table)
    grouped = table.assign(failed_=_failed(table)).groupby(
        ["study", "model", "setting"], sort=False)
    out = grouped["test_mae"].agg(
        n_folds="count", mae_mean="mean", mae_std="std", mae_min="min", mae_max="max"
    )
    out.insert(1, "n_failed", grouped["failed_"].sum().astype(int))
    out["mae_std"] = out["mae_std"].fillna(0.0)
    for c in ("fit_time", "epochs"):
        if c in table:
            out[c] = grouped[c].mean()
    return out.reset_index()


def corrected_ttest(
    diff, test_train_ratio: float, confidence: float = 1 - ALPHA
) -> dict[str, float]:
    """Corrected resampled t-test of paired per-fold differences (Nadeau & Bengio 2003).

    The folds of a cross-validation share training rows, so their scores are correlated and
    the plain paired t-test is overconfident. Nadeau and Bengio (Machine Learning 52, 239
    (2003)) replace the variance of the mean difference ``s^2 / k`` by
    ``(1/k + n_test/n_train) s^2``; ``t`` then has ``k - 1`` degrees of freedom.

    Parameters
    ----------
    diff : array-like of shape (k,)
        Per-fold score differences of two models on the same folds.
    test_train_ratio : float
        ``n_test / n_train`` of a fold (``1 / (k - 1)`` for k-fold CV).
    confidence : float, default=0.95
        Level of the confidence interval of the mean difference.

    Returns
    -------
    result : dict
        ``mean``, ``se`` (corrected standard error), ``t``, ``df``, ``p_value`` (two-sided),
        ``ci_low``, ``ci_high``. With a single fold every entry but ``mean`` is NaN.

    Examples
    --------
    >>> r = corrected_ttest([1.0, 2.0, 3.0], test_train_ratio=0.5)
    >>> round(r["t"], 4), round(r["p_value"], 4), round(r["ci_low"], 3), round(r["ci_high"], 3)
    (2.1909, 0.1598, -1.928, 5.928)
    """
    d = np.asarray(diff, dtype=float)
    k = d.size
    mean = float(d.mean())
    if k < 2:
        return dict(mean=mean, se=np.nan, t=np.nan, df=np.nan, p_value=np.nan,
                    ci_low=np.nan, ci_high=np.nan)
    se = math.sqrt((1.0 / k + test_train_ratio) * float(d.var(ddof=1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(np.inf, mean))
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) * se
    return dict(mean=mean, se=se, t=t, df=k - 1, p_value=float(2 * stats.t.sf(abs(t), k - 1)),
                ci_low=mean - half, ci_high=mean + half)


def _fold_mae(table, key) -> pd.Series:
    study, model, setting = key
    rows = table[(table["study"] == study) & (table["model"] == model)
                 & (table["setting"] == setting)]
    if rows.empty:
        raise ValueError(f"no rows for study={study!r}, model={model!r}, setting={setting!r}")
    return rows.set_index("fold")["test_mae"]


def paired_comparison(table: pd.DataFrame, a: tuple, b: tuple) -> dict:
    """Compare two settings fold by fold with the corrected resampled t-test.

    Parameters
    ----------
    table : DataFrame
        The tidy table; ``n_train`` and ``n_test`` columns give the test/train ratio of the
        correction (``1 / (k - 1)`` of k-fold CV without them).
    a, b : tuple of (study, model, setting)
        The two settings; their rows are matched on ``fold`` (failed folds left out).

    Returns
    -------
    comparison : dict
        ``folds``, ``mae_a``, ``mae_b``, ``diff`` (``mae_a - mae_b`` per fold), ``wins_a``,
        ``wins_b``, ``ties``, ``mean_diff``, ``std_diff`` (``ddof=1``), the entries of
        :func:`corrected_ttest` (``t``, ``p_value``, ``ci_low``, ``ci_high``, ...) and
        ``resolved`` (``p_value < 0.05``).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "s", "model": "m", "setting": ["a"] * 3 + ["b"] * 3,
    ...                   "fold": [0, 1, 2] * 2, "test_mae": [1.0, 2.0, 3.0, 2.0, 2.5, 3.0]})
    >>> c = paired_comparison(t, ("s", "m", "a"), ("s", "m", "b"))
    >>> c["wins_a"], c["ties"], round(c["mean_diff"], 3), round(c["p_value"], 3)
    (2, 1, -0.5, 0.388)
    """
    check_table(table)
    both = pd.concat([_fold_mae(table, a), _fold_mae(table, b)], axis=1).dropna()
    if both.empty:
        raise ValueError(f"settings {a} and {b} share no successful fold")
    va, vb = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    diff = va - vb
    k = len(diff)
    rows = table[(table["study"] == a[0]) & (table["fold"].isin(both.index))]
    if {"n_train", "n_test"} <= set(rows) and rows["n_train"].notna().all():
        ratio = float(rows["n_test"].mean() / rows["n_train"].mean())
    else:
        ratio = 1.0 / max(k - 1, 1)
    test = corrected_ttest(diff, ratio)
    return {
        "folds": list(both.index), "mae_a": va, "mae_b": vb, "diff": diff,
        "wins_a": int(np.sum(va < vb)), "wins_b": int(np.sum(vb < va)),
        "ties": int(np.sum(va == vb)), "mean_diff": test["mean"],
        "std_diff": float(np.std(diff, ddof=1)) if k > 1 else 0.0,
        **test, "resolved": bool(test["p_value"] < ALPHA),
    }


def _test_text(cmp: dict, u: str) -> str:
    return (f"mean difference {fmt(cmp['mean_diff'])}{u}, 95% CI [{fmt(cmp['ci_low'])}, "
            f"{fmt(cmp['ci_high'])}]{u}, corrected resampled t-test p = {cmp['p_value']:.3f}")


def _failed_text(table: pd.DataFrame, study: str) -> str:
    rows = table[(table["study"] == study) & _failed(table)]
    parts = [
        f"{setting} failed on {len(g)} fold(s) ({g['error'].iloc[0] if 'error' in g else ''})"
        for setting, g in rows.groupby("setting", sort=False)
    ]
    return (" Not scored: " + "; ".join(parts) + ".") if parts else ""


def conclusion(
    table: pd.DataFrame, study: str, unit: str | None = None, *, meta: Mapping | None = None
) -> str:
    """One sentence stating what a study's numbers say.

    For a sweep: the best setting (lowest mean test MAE over its folds), the corrected
    resampled t-test against the runner-up (p-value and 95% confidence interval of the mean
    difference) and the failed settings with their reason. For ``"baseline"``: the same test
    of CGCNN against the baseline, saying how the CGCNN was chosen (``meta["baseline_cgcnn"]``).

    Parameters
    ----------
    table : DataFrame
        The tidy table.
    study : str
        Study name as in the ``study`` column.
    unit : str, optional
        Unit of the target, e.g. ``"meV/atom"``.
    meta : mapping, optional
        Run facts: ``featurize_first_time`` and ``featurize_widest`` (quoted by the neighbours
        sentence), ``baseline_cgcnn`` and ``inner_cv`` (quoted by the baseline sentence).

    Returns
    -------
    sentence : str

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "pooling", "model": "cgcnn",
    ...                   "setting": ["pooling=mean"] * 3 + ["pooling=max"] * 3,
    ...                   "fold": [0, 1, 2] * 2, "test_mae": [10.0, 12.0, 11.0, 20.0, 21.0, 23.0]})
    >>> conclusion(t, "pooling", "eV")  # doctest: +NORMALIZE_WHITESPACE
    'pooling=mean is best (mean test MAE 11.0 eV over 3 folds); against the runner-up
    pooling=max (21.3 eV) it wins on 3 of 3 folds, mean difference -10.3 eV, 95% CI
    [-16.3, -4.33] eV, corrected resampled t-test p = 0.018, so the difference is resolved.'
    """
    check_table(table)
    meta = meta or {}
    u = f" {unit}" if unit else ""
    rows = table[table["study"] == study]
    if rows.empty:
        raise ValueError(f"the tidy table has no rows for study {study!r}")
    if study == "baseline":
        return _baseline_conclusion(rows, u, meta)
    summary = summarize(rows[rows["model"] == "cgcnn"])
    summary = summary[summary["n_failed"] == 0].sort_values("mae_mean", kind="stable")
    failed = _failed_text(table, study)
    if summary.empty:
        return "Every setting failed." + failed
    best = summary.iloc[0]
    head = (f"{best['setting']} is best (mean test MAE {fmt(best['mae_mean'])}{u} over "
            f"{int(best['n_folds'])} folds)")
    if len(summary) == 1:
        return head + "; it is the only scored setting of this study." + failed
    runner = summary.iloc[1]
    cmp = paired_comparison(
        table, (study, "cgcnn", best["setting"]), (study, "cgcnn", runner["setting"])
    )
    verdict = ("so the difference is resolved." if cmp["resolved"]
               else "so these folds do not separate the two.")
    sentence = (
        f"{head}; against the runner-up {runner['setting']} ({fmt(runner['mae_mean'])}{u}) it "
        f"wins on {cmp['wins_a']} of {len(cmp['folds'])} folds, {_test_text(cmp, u)}, {verdict}"
    )
    if study == "neighbours" and meta.get("featurize_first_time") is not None:
        m = (meta.get("featurize_widest") or {}).get("max_num_nbr")
        sentence += (
            f" The neighbour search of all structures ran once"
            f"{f' (M={m})' if m else ''}, in {fmt(meta['featurize_first_time'])} s; each "
            "setting re-cut those graphs inside its fit."
        )
    return sentence + failed


def baseline_pair(table: pd.DataFrame) -> tuple[tuple, tuple] | None:
    """``(("baseline", "cgcnn", setting), ("baseline", model, setting))`` or None."""
    rows = table[table["study"] == "baseline"]
    cg, other = rows[rows["model"] == "cgcnn"], rows[rows["model"] != "cgcnn"]
    if cg.empty or other.empty:
        return None
    return (("baseline", "cgcnn", cg["setting"].iloc[0]),
            ("baseline", other["model"].iloc[0], other["setting"].iloc[0]))


def selection_text(meta: Mapping) -> str:
    """How the CGCNN of the baseline study was chosen, for the report."""
    if meta.get("baseline_cgcnn") == "nested":
        return (f"chosen per outer fold by an inner {meta.get('inner_cv', 3)}-fold "
                "cross-validation on that fold's training rows (nested CV)")
    return "the preset's fixed default, set before any fold was seen"


def _baseline_conclusion(rows: pd.DataFrame, u: str, meta: Mapping) -> str:
    pair = baseline_pair(rows)
    if pair is None:
        raise ValueError("the baseline study needs rows of model 'cgcnn' and of a baseline model")
    failed = _failed_text(rows, "baseline")
    try:
        cmp = paired_comparison(rows, *pair)
    except ValueError:
        return "No fold scored both models." + failed
    if cmp["resolved"]:
        better = "CGCNN" if cmp["mean_diff"] < 0 else "the RF baseline"
        verdict = f"so {better} is better on this data."
    else:
        verdict = "so these folds do not separate the two models."
    return (
        f"CGCNN ({pair[0][2]}: {selection_text(meta)}; mean test MAE "
        f"{fmt(cmp['mae_a'].mean())}{u}) against the {pair[1][2]} baseline "
        f"({fmt(cmp['mae_b'].mean())}{u}): CGCNN wins on {cmp['wins_a']} of "
        f"{len(cmp['folds'])} folds, CGCNN - RF {_test_text(cmp, u)}, {verdict}" + failed
    )
