"""Numbers of a report: per-setting summaries, paired tests and one-sentence conclusions."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "baseline_comparison", "compare_models", "conclusion", "correlated_ttest", "corrected_ttest",
    "effects", "factorial_effects", "paired_comparison", "summarize", "verdict",
]

_REQUIRED = ("study", "model", "setting", "fold", "test_mae")
#: two-sided level of the corrected resampled t-test's confidence interval
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


# --------------------------------------------------------------------------- decisions
#: posterior probability a verdict needs ("better", "equivalent")
LEVEL = 0.95
#: default region of practical equivalence, as a fraction of the reference MAE
ROPE = 0.025


def correlated_ttest(diff, runs: int = 1, rope: float = 0.0) -> dict[str, float]:
    """Bayesian correlated t-test of per-fold differences (Benavoli et al. 2017).

    The folds of a cross-validation share training rows, so their differences are
    correlated. With ``n = runs * k`` differences of mean ``m`` and variance ``s^2``, the
    posterior of the true difference is Student's t with ``n - 1`` degrees of freedom,
    location ``m`` and scale ``s * sqrt(1/n + 1/(k - 1))`` (the correlation ``1/k`` of k-fold
    CV: Nadeau & Bengio's correction). The probabilities come from ``baycomp``.

    Parameters
    ----------
    diff : array-like of shape (runs * k,)
        Per-fold differences ``score_a - score_b`` of a loss (lower is better), run by run.
    runs : int, default=1
        Repetitions of the k-fold cross-validation in ``diff``.
    rope : float, default=0.0
        Half-width of the region of practical equivalence, in the units of ``diff``.

    Returns
    -------
    posterior : dict
        ``mean``, ``scale``, ``df``, ``p_a`` (probability that ``a`` is better by more than
        ``rope``), ``p_rope`` (that ``|difference| < rope``), ``p_b``, ``ci_low``, ``ci_high``
        (95 % credible interval) and ``resolvable``: the smallest ``|mean|`` that this design,
        with this spread, would have called a difference (``p_a`` or ``p_b`` at 0.95).

    Examples
    --------
    >>> r = correlated_ttest([-2.0, -1.0, -3.0, -2.0, -2.0], rope=0.5)
    >>> round(r["scale"], 4), r["df"], round(r["p_a"], 4)
    (0.4743, 4, 0.9829)
    """
    from baycomp import CorrelatedTTest

    d = np.asarray(diff, dtype=float)
    n = d.size
    if runs < 1 or n % runs:
        raise ValueError(f"{n} differences cannot be {runs} runs of the same folds")
    k = n // runs
    if k < 2:
        raise ValueError(f"the correlated t-test needs at least 2 folds per run, got {k}")
    mean = float(d.mean())
    scale = math.sqrt((1.0 / n + 1.0 / (k - 1)) * float(d.var(ddof=1))) if n > 1 else 0.0
    df = n - 1
    if scale == 0.0:  # every fold agrees: the posterior is a point
        p_a, p_b = float(mean < -rope), float(mean > rope)
        p_rope, half = 1.0 - p_a - p_b, 0.0
    else:
        # baycomp's difference is y - x, here d itself; its left tail is a's side
        probs = CorrelatedTTest.probs(-d, np.zeros(n), rope=rope, runs=runs)
        if rope > 0:
            p_a, p_rope, p_b = (float(p) for p in probs)
        else:
            (p_a, p_b), p_rope = (float(p) for p in probs), 0.0
        half = float(stats.t.ppf(0.975, df)) * scale
    return dict(mean=mean, scale=scale, df=df, p_a=p_a, p_rope=p_rope, p_b=p_b,
                ci_low=mean - half, ci_high=mean + half,
                resolvable=rope + float(stats.t.ppf(LEVEL, df)) * scale)


def verdict(posterior: Mapping, level: float = LEVEL) -> str:
    """``"a"``, ``"b"`` (that one is better), ``"equivalent"`` or ``"undecided"``.

    Examples
    --------
    >>> verdict({"p_a": 0.97, "p_rope": 0.02, "p_b": 0.01})
    'a'
    >>> verdict({"p_a": 0.60, "p_rope": 0.30, "p_b": 0.10})
    'undecided'
    """
    for name, key in (("a", "p_a"), ("b", "p_b"), ("equivalent", "p_rope")):
        if posterior[key] >= level:
            return name
    return "undecided"


def _sign(values: pd.Series, high) -> np.ndarray:
    return np.where(values.astype(object).to_numpy() == high, 1.0, -1.0)


def factorial_effects(
    table: pd.DataFrame, factors: Mapping[str, tuple], terms, rope: float = ROPE
) -> pd.DataFrame:
    """Effects of a two-level factorial design, each decided by the correlated t-test.

    For every term (one factor: a main effect; two: their interaction) and every fold, the
    contrast is the mean test MAE of the fits at the term's ``+`` sign minus that at its ``-``
    sign, over all settings of the design (each main effect rests on every fit). The folds'
    contrasts go to :func:`correlated_ttest`.

    Parameters
    ----------
    table : DataFrame
        Tidy rows of the design: ``fold``, ``test_mae``, optionally ``repeat`` and one column
        per factor holding its level.
    factors : mapping
        Factor column -> ``(low, high)`` levels.
    terms : iterable of tuple of str
        E.g. ``[("pooling",), ("activation", "batchnorm")]``.
    rope : float, default=0.025
        Region of practical equivalence as a fraction of the design's mean test MAE.

    Returns
    -------
    effects : DataFrame
        One row per term: ``term``, ``effect`` (mean contrast: ``+`` minus ``-``), the
        posterior of :func:`correlated_ttest` (``p_a`` is the ``+`` side better), ``rope``
        (absolute), ``verdict`` (``"+"``, ``"-"``, ``"equivalent"``, ``"undecided"``),
        ``contrasts`` (per fold) and ``n_folds``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"fold": [0, 0, 1, 1, 2, 2], "pooling": ["max", "mean"] * 3,
    ...                   "test_mae": [12.0, 10.0, 13.0, 10.0, 12.5, 10.5]})
    >>> e = factorial_effects(t, {"pooling": ("max", "mean")}, [("pooling",)], rope=0.0)
    >>> round(float(e.loc[0, "effect"]), 4), e.loc[0, "contrasts"]
    (-2.3333, [-2.0, -3.0, -2.0])
    """
    ok = table[table["test_mae"].notna()].copy()
    if "repeat" not in ok:
        ok["repeat"] = 0
    absolute = rope * float(ok["test_mae"].mean())
    rows = []
    for term in terms:
        term = tuple(term)
        sign = np.ones(len(ok))
        for f in term:
            sign = sign * _sign(ok[f], factors[f][1])
        ok["sign_"] = sign
        cell = ok.groupby(["repeat", "fold", "sign_"])["test_mae"].mean().unstack("sign_")
        cell = cell.reindex(columns=[-1.0, 1.0]).dropna()
        if len(cell) < 2:  # one side failed everywhere: nothing to decide
            rows.append({"term": " x ".join(term), "effect": np.nan, "rope": absolute,
                         "verdict": "not scored", "contrasts": [], "n_folds": len(cell)})
            continue
        contrasts = (cell[1.0] - cell[-1.0]).to_numpy(float)
        runs = cell.index.get_level_values("repeat").nunique()
        post = correlated_ttest(contrasts, runs=runs, rope=absolute)
        v = {"a": "+", "b": "-"}.get(verdict(post), verdict(post))
        rows.append({"term": " x ".join(term), "effect": float(contrasts.mean()), **post,
                     "rope": absolute, "verdict": v, "contrasts": contrasts.tolist(),
                     "n_folds": len(contrasts)})
    return pd.DataFrame(rows)


def compare_models(table: pd.DataFrame, a: Mapping, b: Mapping, rope: float = ROPE) -> dict:
    """Two models on the same folds (and repeats), decided by the correlated t-test.

    Parameters
    ----------
    table : DataFrame
        Tidy rows with ``fold``, ``test_mae``, optionally ``repeat``.
    a, b : mapping
        Column -> value selecting each model's rows, e.g. ``{"model": "rf"}``.
    rope : float, default=0.025
        Region of practical equivalence as a fraction of ``b``'s mean test MAE.

    Returns
    -------
    comparison : dict
        ``mae_a``, ``mae_b`` (per fold, matched), ``wins_a``, ``n_folds``, ``runs``, ``rope``
        (absolute), the posterior of :func:`correlated_ttest` and ``verdict``.
    """
    def pick(sel):
        rows = table
        for col, val in sel.items():
            rows = rows[rows[col] == val]
        rows = rows.assign(repeat=rows["repeat"] if "repeat" in rows else 0)
        return rows.set_index(["repeat", "fold"])["test_mae"]

    both = pd.concat([pick(a), pick(b)], axis=1, keys=["a", "b"]).dropna().sort_index()
    # a run counts only when every one of its folds scored both models
    sizes = both.groupby(level="repeat").size()
    full = sizes[sizes == sizes.max()].index
    both = both[both.index.get_level_values("repeat").isin(full)]
    if len(both) < 2:
        raise ValueError(f"models {dict(a)} and {dict(b)} share fewer than 2 scored folds")
    absolute = rope * float(both["b"].mean())
    post = correlated_ttest(both["a"] - both["b"], runs=len(full), rope=absolute)
    return {"mae_a": both["a"].to_numpy(float), "mae_b": both["b"].to_numpy(float),
            "folds": list(both.index), "wins_a": int((both["a"] < both["b"]).sum()),
            "n_folds": len(both), "runs": len(full), "rope": absolute, **post,
            "verdict": verdict(post)}


# --------------------------------------------------------------------------- a study's answers
#: the seed's words for each question's factors
_WORDS = {
    "max_num_nbr": "the neighbour count M",
    "activation": "the ConvLayer activation",
    "batchnorm": "batch normalisation",
    "pooling": "the pooling",
}


def effects(table: pd.DataFrame, meta: Mapping) -> pd.DataFrame:
    """Every effect of the questions a study asked, decided on the design's rows.

    Parameters
    ----------
    table : DataFrame
        The tidy table of :class:`~cgcnn_sk.workflows.studies.StudyResult`.
    meta : mapping
        Its ``meta``: ``factors`` (factor -> ``[low, high]``), ``questions`` (question -> its
        terms, each a list of factors), ``studies``, ``rope``.

    Returns
    -------
    effects : DataFrame
        :func:`factorial_effects` with a ``question`` column, or an empty frame when the
        study ran no design.
    """
    check_table(table)
    factors = {f: tuple(v) for f, v in (meta.get("factors") or {}).items()}
    rows = table[(table["study"] == "factorial") & (table["model"] == "cgcnn")]
    if not factors or rows.empty:
        return pd.DataFrame()
    rows = factor_levels(rows, meta)
    levels = {f: (_describe_level(lo), _describe_level(hi)) for f, (lo, hi) in factors.items()}
    out = []
    for q, terms in (meta.get("questions") or {}).items():
        terms = [tuple(t) for t in terms]
        terms = [t for t in terms if all(f in levels for f in t)]  # factors of this design
        if q not in meta.get("studies", []) or not terms:
            continue
        e = factorial_effects(rows, levels, terms, rope=meta.get("rope", ROPE))
        out.append(e.assign(question=q))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def factor_levels(rows: pd.DataFrame, meta: Mapping) -> pd.DataFrame:
    """``rows`` with one column per factor of ``meta["factors"]`` holding its level as text.

    The level is read from the row's ``params`` (the setting it was fitted with) through
    ``meta["factor_params"]`` (factor -> pipeline parameter), so factors whose levels were
    replaced still read right; without them, from the factor's own column.
    """
    import json

    params = meta.get("factor_params") or {}
    out = {}
    for f in meta.get("factors") or {}:
        if f in params and "params" in rows:
            out[f] = rows["params"].map(
                lambda s, p=params[f]: _describe_level(json.loads(s).get(p)))
        else:
            out[f] = rows[f].map(_describe_level)
    return rows.assign(**out)


def _describe_level(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "on" if v else "off"
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return "on" if v.lower() == "true" else "off"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _design_recipe(table: pd.DataFrame, meta: Mapping) -> pd.DataFrame:
    """The design's fits of its all-``+`` setting (the recipe)."""
    factors = meta.get("factors") or {}
    if not factors:
        return table.iloc[:0]
    design = factor_levels(
        table[(table["study"] == "factorial") & (table["model"] == "cgcnn")], meta)
    for f, (_, hi) in factors.items():
        design = design[design[f].map(_describe_level) == _describe_level(hi)]
    return design


def baseline_comparison(table: pd.DataFrame, meta: Mapping,
                        cgcnn: str = "baseline") -> dict | None:
    """The CGCNN of the baseline study against the RF, over every repeat; None without RF rows.

    With ``cgcnn="baseline"`` the CGCNN's rows are the baseline study's and, on repeat 0, the
    design's all-``+`` setting (the recipe) when the baseline study did not fit it again.
    With ``cgcnn="design"``: the design's all-``+`` setting against the RF on the design's
    folds (repeat 0) only.
    """
    check_table(table)
    rf = table[(table["study"] == "baseline") & (table["model"] != "cgcnn")]
    if cgcnn == "design":
        rf = rf[rf["repeat"].fillna(0) == 0]
        cg = _design_recipe(table, meta)
    else:
        cg = table[(table["study"] == "baseline") & (table["model"] == "cgcnn")]
        if not (cg.assign(r=cg.get("repeat", 0))["r"] == 0).any():
            cg = pd.concat([cg, _design_recipe(table, meta)])
    if rf.empty or cg.empty:
        return None
    both = pd.concat([cg.assign(model="cgcnn"), rf.assign(model="rf")])
    cmp = compare_models(both, {"model": "cgcnn"}, {"model": "rf"},
                         rope=meta.get("rope", ROPE))
    cmp["rf_label"] = str(rf["setting"].iloc[0])
    return cmp


def _tuned_settings(meta: Mapping) -> str:
    """``{"graph__max_num_nbr": 48}`` in ``meta["baseline_params"]`` -> ``"max_num_nbr=48"``."""
    return ", ".join(f"{k.rsplit('__', 1)[-1]}={v}"
                     for k, v in (meta.get("baseline_params") or {}).items())


def selection_text(meta: Mapping) -> str:
    """How the CGCNN of the baseline study was chosen, for the report."""
    if meta.get("baseline_cgcnn") == "nested":
        return (f"chosen per outer fold by an inner {meta.get('inner_cv', 3)}-fold "
                "cross-validation over the design's settings on that fold's training rows")
    if meta.get("baseline_cgcnn") == "tuned":
        note = meta.get("baseline_note")
        return (f"the recipe's network with {_tuned_settings(meta)}"
                + (f", {note}" if note else ""))
    return "the recipe's network, fixed before any fold was seen"


def _post_text(post: Mapping, u: str) -> str:
    return (f"95 % credible interval [{fmt(post['ci_low'])}, {fmt(post['ci_high'])}]{u}, "
            f"P(better) = {post['p_a']:.2f} / P(equivalent) = {post['p_rope']:.2f} / "
            f"P(worse) = {post['p_b']:.2f} (ROPE +-{fmt(post['rope'])}{u})")


def _effect_sentence(e: Mapping, levels: Mapping, u: str) -> str:
    term = e["term"].split(" x ")
    if len(term) == 1:
        f = term[0]
        lo, hi = (_describe_level(v) for v in levels[f])
        name = f"{f}={hi} against {f}={lo}"
        what = {"+": f"{f}={hi} is better", "-": f"{f}={lo} is better"}
    else:
        name = f"The interaction {e['term']}"
        what = {"+": "the interaction is real (like levels do better together)",
                "-": "the interaction is real (unlike levels do better together)"}
    v = e["verdict"]
    if v == "not scored":
        return f"{name}: not scored (fewer than 2 folds scored both sides)."
    if v in what:
        head = f"{what[v]}"
    elif v == "equivalent":
        head = f"{name}: equivalent (the difference lies inside the ROPE)"
    else:
        head = (f"{name}: undecided; this design resolves differences larger than "
                f"{fmt(e['resolvable'])}{u}")
    return (f"{head}. Effect ({'+' if len(term) == 1 else 'interaction contrast'} minus "
            f"{'-' if len(term) == 1 else 'its opposite'}) {fmt(e['effect'])}{u} over "
            f"{e['n_folds']} folds, {_post_text(e, u)}.")


def _design_vs_rf(table: pd.DataFrame, meta: Mapping, u: str) -> str:
    """With a tuned baseline CGCNN: the recipe's own setting against the RF, in one sentence."""
    if meta.get("baseline_cgcnn") != "tuned":
        return ""
    cmp = baseline_comparison(table, meta, cgcnn="design")
    if cmp is None:
        return ""
    v = {"a": "better than the RF", "b": "worse than the RF",
         "equivalent": "equivalent to the RF", "undecided": "undecided against the RF"}
    return (f" The design's recipe setting (the untuned network) on the design's "
            f"{cmp['n_folds']} folds: {v[cmp['verdict']]}, difference {fmt(cmp['mean'])}{u}, "
            f"P(better) = {cmp['p_a']:.2f}, wins {cmp['wins_a']} of {cmp['n_folds']} folds.")


def conclusion(table: pd.DataFrame, study: str, meta: Mapping | None = None) -> str:
    """What the numbers say about one question, in words, with the verdict first.

    Parameters
    ----------
    table : DataFrame
        The tidy table.
    study : str
        A question of :data:`cgcnn_sk.workflows.studies.STUDIES`.
    meta : mapping, optional
        The result's ``meta`` (``factors``, ``studies``, ``rope``, ``unit``,
        ``neighbour_shells``, ``baseline_cgcnn``).

    Returns
    -------
    paragraph : str
    """
    check_table(table)
    meta = dict(meta or {})
    meta.setdefault("studies", [study])
    u = f" {meta['unit']}" if meta.get("unit") else ""
    failed = _failed_text(table)
    if study == "baseline":
        cmp = baseline_comparison(table, meta)
        if cmp is None:
            return "No fold scored both the CGCNN and the RF." + failed
        v = {"a": "CGCNN is better than the RF", "b": "the RF is better than the CGCNN",
             "equivalent": "CGCNN and the RF are equivalent",
             "undecided": "undecided between CGCNN and the RF; this design resolves "
                          f"differences larger than {fmt(cmp['resolvable'])}{u}"}[cmp["verdict"]]
        return (f"{v[0].upper() + v[1:]}. CGCNN ({selection_text(meta)}) mean test MAE "
                f"{fmt(cmp['mae_a'].mean())}{u}, {cmp['rf_label']} {fmt(cmp['mae_b'].mean())}"
                f"{u}; CGCNN wins {cmp['wins_a']} of {cmp['n_folds']} folds ({cmp['runs']} "
                f"repeat(s) of {cmp['n_folds'] // cmp['runs']}-fold CV); difference "
                f"{fmt(cmp['mean'])}{u}, {_post_text(cmp, u)}." + _design_vs_rf(table, meta, u)
                + failed)
    eff = effects(table, meta)
    if eff.empty or not (eff["question"] == study).any():
        return "No scored fit of the design answers this question." + failed
    levels = {f: tuple(v) for f, v in meta["factors"].items()}
    parts = [_effect_sentence(e, levels, u)
             for e in eff[eff["question"] == study].to_dict("records")]
    if study == "neighbours" and meta.get("neighbour_shells"):
        shells = meta["neighbour_shells"]
        parts.append("Median distance of the M-th nearest neighbour over all atoms: " + ", ".join(
            f"M={m}: {fmt(d)} A" for m, d in shells.items()) + ".")
    if study == "activation_batchnorm" and meta.get("fraction") == "half":
        parts.append("In the half fraction the activation x batchnorm interaction is aliased "
                     "with max_num_nbr x pooling: the contrast measures their sum.")
    return " ".join(parts) + failed


def _failed_text(table: pd.DataFrame) -> str:
    rows = table[_failed(table)]
    parts = [
        f"{setting} failed on {len(g)} fit(s) ({g['error'].iloc[0] if 'error' in g else ''})"
        for setting, g in rows.groupby("setting", sort=False)
    ]
    return (" Not scored: " + "; ".join(parts) + ".") if parts else ""
