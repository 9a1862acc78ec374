"""Tests of cgcnn_sk.report on hand-made tidy tables (no model is trained here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from cgcnn_sk import report
from cgcnn_sk.report.statistics import verdict

UNIT = "meV/atom"
FACTORS = {"pooling": ["max", "mean"], "batchnorm": [False, True]}
META = {"factors": FACTORS, "factor_params": {"pooling": "cgcnn__module__pooling",
                                              "batchnorm": "cgcnn__module__batchnorm"},
        "studies": ["pooling", "baseline"], "rope": 0.025, "unit": UNIT, "fraction": "full",
        "questions": {"neighbours": [["max_num_nbr"]], "pooling": [["pooling"]],
                      "activation_batchnorm": [["activation"], ["batchnorm"],
                                               ["activation", "batchnorm"]]},
        "n_settings": 4, "data": "hand-made", "target": "energy", "n_samples": 40}


def _design_rows(maes: dict) -> list[dict]:
    """A 2^2 design (pooling x batchnorm) on 3 folds; ``maes[(pooling, bn)]`` per fold."""
    rows = []
    for (pool, bn), values in maes.items():
        setting = f"batchnorm={bn}, pooling={pool}"
        params = json.dumps({"cgcnn__module__batchnorm": bn, "cgcnn__module__pooling": pool})
        for k, m in enumerate(values):
            rows.append({"study": "factorial", "model": "cgcnn", "setting": setting,
                         "params": params, "repeat": 0, "fold": k, "n_train": 30, "n_test": 10,
                         "test_mae": m, "status": "ok", "error": "", "epochs": 5,
                         "fit_time": 1.0, "pooling": pool, "batchnorm": bn})
    return rows


@pytest.fixture
def tidy():
    """Mean pooling better by 2 on every fold; batchnorm adds +1, -1, 0: no effect."""
    maes = {("mean", True): [10.0, 12.0, 11.0], ("max", True): [12.0, 14.0, 13.0],
            ("mean", False): [9.0, 13.0, 11.0], ("max", False): [11.0, 15.0, 13.0]}
    rows = _design_rows(maes)
    # the RF on 2 repeats of the 3 folds; repeat 1's CGCNN is a baseline-study fit
    for r, (cg, rf) in enumerate([([10.0, 12.0, 11.0], [20.0, 21.0, 19.0]),
                                  ([11.0, 11.0, 12.0], [19.0, 22.0, 20.0])]):
        for k in range(3):
            if r == 1:
                rows.append({"study": "baseline", "model": "cgcnn", "setting": "recipe",
                             "params": "{}", "repeat": r, "fold": k, "n_train": 30,
                             "n_test": 10, "test_mae": cg[k], "status": "ok", "error": ""})
            rows.append({"study": "baseline", "model": "rf", "setting": "RF magpie+scm",
                         "params": "{}", "repeat": r, "fold": k, "n_train": 30, "n_test": 10,
                         "test_mae": rf[k], "status": "ok", "error": ""})
    table = pd.DataFrame(rows)
    hist = pd.DataFrame([
        {"study": "factorial", "model": "cgcnn", "setting": s, "repeat": 0, "fold": k,
         "epoch": e, "train_loss": 1.0 / e}
        for s in table.loc[table["study"] == "factorial", "setting"].unique()
        for k in range(3) for e in range(1, 6)])
    preds = pd.DataFrame([
        {"study": st, "model": mo, "setting": se, "repeat": 0, "fold": k, "index": 4 * k + i,
         "y_true": 10.0 * i, "y_pred": 10.0 * i + 5.0}
        for st, mo, se in [("factorial", "cgcnn", "batchnorm=True, pooling=mean"),
                           ("baseline", "rf", "RF magpie+scm")]
        for k in range(3) for i in range(4)])
    return table, hist, preds


# --------------------------------------------------------------------------- the test itself
def test_correlated_ttest_hand_computed():
    # d = (-2, -1, -3, -2, -2): mean -2, s^2 = 0.5; 5 folds of one run: rho term 1/(k-1) = 1/4
    r = report.correlated_ttest([-2.0, -1.0, -3.0, -2.0, -2.0], rope=0.5)
    scale = math.sqrt((1 / 5 + 1 / 4) * 0.5)
    assert r["mean"] == -2.0 and r["df"] == 4
    assert r["scale"] == pytest.approx(scale)
    # P(true difference < -0.5) under t_4(-2, scale): the cdf at (-0.5 + 2) / scale
    assert r["p_a"] == pytest.approx(stats.t.cdf(1.5 / scale, 4), abs=1e-6)
    assert r["p_a"] == pytest.approx(0.98295, abs=1e-5)
    assert r["p_b"] == pytest.approx(stats.t.sf((0.5 + 2) / scale, 4), abs=1e-6)
    assert r["p_a"] + r["p_rope"] + r["p_b"] == pytest.approx(1.0)
    half = 2.7764451 * scale  # t_{0.975, 4}
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-2 - half, -2 + half), abs=1e-6)
    assert r["resolvable"] == pytest.approx(0.5 + 2.1318468 * scale, abs=1e-6)  # t_{0.95, 4}


def test_correlated_ttest_runs_shrink_only_the_first_term():
    d = [-2.0, -1.0, -3.0, -2.0, -2.0, -1.0]  # 2 runs of 3 folds: 1/6 + 1/2
    r = report.correlated_ttest(d, runs=2)
    assert r["scale"] == pytest.approx(math.sqrt((1 / 6 + 1 / 2) * np.var(d, ddof=1)))
    assert r["df"] == 5 and r["p_rope"] == 0.0


def test_correlated_ttest_degenerate_and_bad_input():
    r = report.correlated_ttest([1.0, 1.0, 1.0], rope=0.5)  # every fold agrees
    assert (r["p_a"], r["p_rope"], r["p_b"]) == (0.0, 0.0, 1.0) and r["scale"] == 0.0
    with pytest.raises(ValueError, match="5 differences cannot be 2 runs of the same folds"):
        report.correlated_ttest([1.0] * 5, runs=2)
    with pytest.raises(ValueError, match="at least 2 folds per run, got 1"):
        report.correlated_ttest([1.0, 2.0], runs=2)


def test_verdict_needs_the_level():
    assert verdict({"p_a": 0.95, "p_rope": 0.05, "p_b": 0.0}) == "a"
    assert verdict({"p_a": 0.0, "p_rope": 0.04, "p_b": 0.96}) == "b"
    assert verdict({"p_a": 0.02, "p_rope": 0.96, "p_b": 0.02}) == "equivalent"
    assert verdict({"p_a": 0.94, "p_rope": 0.06, "p_b": 0.0}) == "undecided"


def test_false_positive_rate_of_the_procedure_under_the_null():
    """Two settings that differ by nothing: 'better' at most at the nominal 5 % (3 SE)."""
    rng = np.random.default_rng(0)
    n_sim, k, calls = 2000, 5, 0
    for _ in range(n_sim):
        fold = rng.normal(0, 5, k)  # fold difficulty, shared by both settings
        a, b = fold + rng.normal(0, 1, k), fold + rng.normal(0, 1, k)
        r = report.correlated_ttest(a - b, rope=0.0)
        calls += verdict(r) in ("a", "b")
    rate = calls / n_sim
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_sim), rate


# --------------------------------------------------------------------------- effects
def test_factorial_effects_hand_computed(tidy):
    table, _, _ = tidy
    e = report.effects(table, META).set_index("term")
    # pooling: mean (+) minus max (-) = -2 on every fold
    assert e.loc["pooling", "contrasts"] == [-2.0, -2.0, -2.0]
    assert e.loc["pooling", "verdict"] == "+"  # every fold agrees: the posterior is a point
    # rope = 2.5 % of the design's mean MAE (12.0)
    assert e.loc["pooling", "rope"] == pytest.approx(0.3)
    assert "batchnorm" not in e.index  # the pooling question asks for pooling only
    both = report.effects(table, {**META, "studies": ["pooling", "activation_batchnorm"]})
    # activation is not a factor of this design: that question reads batchnorm only
    assert sorted(both["term"]) == ["batchnorm", "pooling"]


def test_interaction_contrast_hand_computed(tidy):
    table, _, _ = tidy
    levels = {"pooling": ("max", "mean"), "batchnorm": ("off", "on")}
    rows = report.statistics.factor_levels(table[table["study"] == "factorial"], META)
    e = report.factorial_effects(rows, levels, [("batchnorm",), ("pooling", "batchnorm")])
    # batchnorm on minus off, fold by fold: (10+12)/2-(9+11)/2 = 1, (12+14)/2-(13+15)/2 = -1, 0
    assert e.loc[0, "contrasts"] == [1.0, -1.0, 0.0]
    assert e.loc[1, "contrasts"] == [0.0, 0.0, 0.0]  # lines are parallel: no interaction
    assert e.loc[0, "verdict"] == "undecided"


def test_levels_come_from_the_setting_not_a_like_named_column(tidy):
    table, _, _ = tidy
    table = table.assign(pooling="mean")  # a misleading column: the params say otherwise
    e = report.effects(table, META).set_index("term")
    assert e.loc["pooling", "contrasts"] == [-2.0, -2.0, -2.0]


def test_baseline_uses_the_design_recipe_on_repeat_0(tidy):
    table, _, _ = tidy
    cmp = report.baseline_comparison(table, META)
    # repeat 0: the all-+ setting (mean, batchnorm on) of the design; repeat 1: baseline rows
    np.testing.assert_allclose(cmp["mae_a"], [10, 12, 11, 11, 11, 12])
    np.testing.assert_allclose(cmp["mae_b"], [20, 21, 19, 19, 22, 20])
    assert cmp["runs"] == 2 and cmp["wins_a"] == 6 and cmp["verdict"] == "a"
    d = cmp["mae_a"] - cmp["mae_b"]
    assert cmp["scale"] == pytest.approx(math.sqrt((1 / 6 + 1 / 2) * d.var(ddof=1)))


def test_compare_models_keeps_only_complete_runs():
    rows = [{"model": m, "repeat": r, "fold": k, "test_mae": v}
            for m, vals in (("a", [1, 2, 3, 1, np.nan, 3]), ("b", [2, 3, 4, 2, 3, 4]))
            for (r, k), v in zip([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], vals,
                                 strict=True)]
    cmp = report.compare_models(pd.DataFrame(rows), {"model": "a"}, {"model": "b"})
    assert cmp["runs"] == 1 and cmp["n_folds"] == 3  # repeat 1 lost a fold


# --------------------------------------------------------------------------- words and figures
def test_conclusions_lead_with_the_verdict(tidy):
    table, _, _ = tidy
    pooling = report.conclusion(table, "pooling", META)
    assert pooling.startswith("pooling=mean is better.")
    base = report.conclusion(table, "baseline", META)
    assert base.startswith("CGCNN is better than the RF.")
    assert "wins 6 of 6 folds (2 repeat(s) of 3-fold CV)" in base


def test_undecided_says_what_the_design_could_resolve(tidy):
    table, _, _ = tidy
    meta = {**META, "studies": ["pooling"]}
    noisy = table.copy()
    noisy.loc[(noisy["pooling"] == "max") & (noisy["fold"] == 1), "test_mae"] -= 5.0
    text = report.conclusion(noisy, "pooling", meta)
    assert "undecided; this design resolves differences larger than" in text


def test_failed_fits_are_listed_not_scored(tidy):
    table, _, _ = tidy
    t = table.copy()
    bad = (t["pooling"] == "max") & (t["batchnorm"] == False)  # noqa: E712
    t.loc[bad, ["test_mae", "status", "error"]] = [np.nan, "failed", "ValueError: boom"]
    text = report.conclusion(t, "pooling", META)
    assert text.endswith("Not scored: batchnorm=False, pooling=max failed on 3 fit(s) "
                         "(ValueError: boom).")


def test_make_figures_labels_units_titles(tidy):
    table, hist, preds = tidy
    figs = report.make_figures(table, hist, preds, meta=META, unit=UNIT, target="energy")
    assert set(figs) == {"effects", "loss", "baseline", "parity"}
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        assert fig._suptitle is not None and fig._suptitle.get_text(), name
        for ax in fig.axes:
            assert ax.get_xlabel(), (name, ax.get_title())
    eff = figs["effects"].axes
    assert [ax.get_xlabel() for ax in eff] == ["pooling", "batchnorm"]
    assert eff[0].get_ylabel() == f"test MAE ({UNIT})"
    assert eff[0].get_title().startswith("pooling: -2.00 (+)")


def test_every_title_stays_inside_its_figure(tidy):
    """The report's longest setting names (four factors) must not run past a figure's edge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    table, hist, preds = tidy
    long = "max_num_nbr=12, activation=softplus, batchnorm=True, pooling=mean"
    preds = preds.replace("batchnorm=True, pooling=mean", long)
    fig = report.plot_parity(preds, [("factorial", "cgcnn", long),
                                     ("baseline", "rf", "RF magpie+scm")], unit=UNIT)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    width = fig.bbox.width
    for ax in fig.axes:
        box = ax.title.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width, ax.get_title()
    assert long.split(", ")[-1] in fig.axes[0].get_title()  # wrapped, not cut


def test_write_report_opens_with_the_answers(tidy, tmp_path):
    table, hist, preds = tidy
    paths = report.write_report(table, hist, preds, tmp_path, meta=META,
                                formats=["md", "html"])
    md = paths["md"].read_text()
    assert md.startswith("# What the study found")
    assert "| Mean or max pooling? | pooling=mean is better. |" in md
    assert md.index("| question | verdict |") < md.index("## How these verdicts") \
        < md.index("## Run facts")
    html = paths["html"].read_text()
    assert html.count("<img ") == 4 and "data:image/png;base64," in html
    assert (tmp_path / "results.csv").exists() and (tmp_path / "effects.png").exists()


def test_write_report_rejects_unknown_format(tidy, tmp_path):
    table, _, _ = tidy
    with pytest.raises(ValueError, match=r"unknown report format\(s\) \['pdf'\]"):
        report.write_report(table, out_dir=tmp_path, meta=META, formats=["pdf"])


# --------------------------------------------------------------------------- kept tools
def test_summarize_mean_and_std_per_setting(tidy):
    table, _, _ = tidy
    s = report.summarize(table).set_index("setting")
    assert s.loc["batchnorm=True, pooling=mean", "mae_mean"] == pytest.approx(11.0)
    assert s.loc["batchnorm=True, pooling=mean", "mae_std"] == pytest.approx(1.0)


def test_corrected_ttest_hand_computed():
    r = report.corrected_ttest([1.0, 2.0, 3.0], test_train_ratio=0.5)
    se = math.sqrt((1 / 3 + 0.5) * 1.0)
    assert r["t"] == pytest.approx(2.0 / se)
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(2.0 / se, 2))


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['test_mae'\]"):
        report.summarize(pd.DataFrame({"study": [], "model": [], "setting": [], "fold": []}))
