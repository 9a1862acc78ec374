"""Tests of cgcnn_sk.report on hand-made tidy tables (no model is trained here)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cgcnn_sk import report

UNIT = "meV/atom"


def _rows(study, setting, maes, model="cgcnn", **params):
    return [
        {"study": study, "model": model, "setting": setting, "fold": k, "test_mae": m,
         "fit_time": 1.0, "epochs": 5, **params}
        for k, m in enumerate(maes)
    ]


@pytest.fixture
def tidy():
    """A complete tidy table, loss histories and predictions with hand-chosen numbers."""
    base = {"max_num_nbr": 12, "activation": "softplus", "batchnorm": True, "pooling": "mean"}
    rows = []
    rows += _rows("hyperparameters", "lr=0.001", [60.0, 62.0, 61.0], **base)
    rows += _rows("hyperparameters", "lr=0.003", [50.0, 52.0, 51.0], **base)
    for m, maes in [(1, [70.0, 71.0, 72.0]), (4, [55.0, 56.0, 57.0]), (12, [50.0, 52.0, 51.0])]:
        rows += _rows("neighbours", f"max_num_nbr={m}", maes, **{**base, "max_num_nbr": m})
    for act in ("softplus", "relu"):
        for bn in (True, False):
            level = 50.0 + 3 * (act == "relu") + 5 * (not bn)
            rows += _rows("activation_batchnorm", f"activation={act}, batchnorm={bn}",
                          [level, level + 2, level + 1],
                          **{**base, "activation": act, "batchnorm": bn})
    # mean and max differ by 1 on average, per-fold differences (-3, +1, -1): std 2 > 1
    rows += _rows("pooling", "pooling=mean", [50.0, 52.0, 51.0], **base)
    rows += _rows("pooling", "pooling=max", [53.0, 51.0, 52.0], **{**base, "pooling": "max"})
    rows += _rows("baseline", "lr=0.003", [50.0, 52.0, 51.0], **base)
    rows += _rows("baseline", "RF magpie+scm", [49.0, 55.0, 54.0], model="rf")
    table = pd.DataFrame(rows)
    hist = []
    for (study, model, setting), _ in table.groupby(["study", "model", "setting"], sort=False):
        if model != "cgcnn" or study == "baseline":
            continue
        for fold in range(3):
            for epoch in range(1, 6 - fold):  # fold 1 and 2 "stopped early"
                hist.append({"study": study, "model": model, "setting": setting, "fold": fold,
                             "epoch": epoch, "train_loss": 1.0 / epoch,
                             "valid_loss": 1.2 / epoch})
    preds = []
    for setting, model in [("lr=0.003", "cgcnn"), ("RF magpie+scm", "rf")]:
        for fold in range(3):
            for i in range(4):
                preds.append({"study": "baseline", "model": model, "setting": setting,
                              "fold": fold, "index": 4 * fold + i, "y_true": 10.0 * i,
                              "y_pred": 10.0 * i + 5.0})
    return table, pd.DataFrame(hist), pd.DataFrame(preds)


def test_summarize_mean_and_std_per_setting(tidy):
    table, _, _ = tidy
    s = report.summarize(table)
    row = s[(s["study"] == "pooling") & (s["setting"] == "pooling=max")].iloc[0]
    assert row["n_folds"] == 3
    assert row["mae_mean"] == pytest.approx(52.0)
    assert row["mae_std"] == pytest.approx(1.0)  # std of 53, 51, 52 (ddof=1)
    assert (row["mae_min"], row["mae_max"]) == (51.0, 53.0)
    nb = s[s["study"] == "neighbours"]
    assert list(nb["setting"]) == ["max_num_nbr=1", "max_num_nbr=4", "max_num_nbr=12"]
    assert (s["n_failed"] == 0).all()


def test_summarize_counts_failed_folds_apart():
    t = pd.DataFrame(_rows("pooling", "pooling=sum", [50.0, np.nan, 52.0]))
    t["status"] = ["ok", "failed", "ok"]
    row = report.summarize(t).iloc[0]
    assert (row["n_folds"], row["n_failed"], row["mae_mean"]) == (2, 1, 51.0)


def test_corrected_ttest_hand_computed():
    # differences 1, 2, 3: mean 2, s^2 = 1; k = 3 and n_test/n_train = 1/2 give
    # se = sqrt((1/3 + 1/2) * 1) = 0.912871, t = 2.190890 on 2 degrees of freedom; the t(2)
    # CDF is 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2) = 0.159832, and the
    # 95% interval is 2 -+ 4.302653 * se (t(2) quantile 0.975 from the tables)
    r = report.corrected_ttest([1.0, 2.0, 3.0], test_train_ratio=0.5)
    assert r["se"] == pytest.approx(0.912871, abs=1e-6)
    assert r["t"] == pytest.approx(2.190890, abs=1e-6)
    assert r["df"] == 2
    assert r["p_value"] == pytest.approx(0.159832, abs=1e-6)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((2 - 3.927767, 2 + 3.927767), abs=1e-5)
    # the uncorrected paired t-test (factor 1/k only) would claim more: t = 3.464, p = 0.074
    assert r["p_value"] > 0.074


def test_corrected_ttest_edge_cases():
    one = report.corrected_ttest([2.0], test_train_ratio=0.5)
    assert one["mean"] == 2.0 and np.isnan(one["p_value"]) and np.isnan(one["ci_low"])
    same = report.corrected_ttest([1.0, 1.0, 1.0], test_train_ratio=0.5)
    assert same["t"] == np.inf and same["p_value"] == 0.0
    zero = report.corrected_ttest([0.0, 0.0], test_train_ratio=1.0)
    assert zero["t"] == 0.0 and zero["p_value"] == 1.0


def test_paired_comparison_uses_the_fold_sizes_of_the_table():
    t = pd.DataFrame(_rows("s", "a", [3.0, 4.0, 5.0]) + _rows("s", "b", [2.0, 2.0, 2.0]))
    t["n_train"], t["n_test"] = 8, 2
    c = report.paired_comparison(t, ("s", "cgcnn", "a"), ("s", "cgcnn", "b"))
    # differences 1, 2, 3 with n_test/n_train = 1/4: se = sqrt(1/3 + 1/4) = 0.763763,
    # t = 2.618615, p = 1 - t / sqrt(2 + t^2) = 0.120118
    assert c["t"] == pytest.approx(2.618615, abs=1e-6)
    assert c["p_value"] == pytest.approx(0.120118, abs=1e-6)


def test_paired_comparison_hand_computed(tidy):
    table, _, _ = tidy
    c = report.paired_comparison(
        table, ("pooling", "cgcnn", "pooling=mean"), ("pooling", "cgcnn", "pooling=max")
    )
    np.testing.assert_allclose(c["diff"], [-3.0, 1.0, -1.0])
    assert (c["wins_a"], c["wins_b"], c["ties"]) == (2, 1, 0)
    assert c["mean_diff"] == pytest.approx(-1.0)
    assert c["std_diff"] == pytest.approx(2.0)
    # s^2 = 4, no fold sizes in the table: n_test/n_train = 1/(k-1) = 1/2, se = 1.825742,
    # t = -0.547723, p = 1 - |t| / sqrt(2 + t^2) = 0.638842
    assert c["p_value"] == pytest.approx(0.638842, abs=1e-6)
    assert c["resolved"] is False


def test_paired_comparison_unknown_setting_names_it(tidy):
    table, _, _ = tidy
    with pytest.raises(ValueError, match="setting='nope'"):
        report.paired_comparison(
            table, ("pooling", "cgcnn", "nope"), ("pooling", "cgcnn", "pooling=max")
        )


def test_conclusion_resolved_difference(tidy):
    table, _, _ = tidy
    text = report.conclusion(table, "hyperparameters", UNIT)
    # lr=0.003 beats lr=0.001 by exactly 10 on every fold: std of differences 0 < 10
    assert text.startswith("lr=0.003 is best (mean test MAE 51.0 meV/atom over 3 folds)")
    assert "runner-up lr=0.001 (61.0 meV/atom) it wins on 3 of 3 folds" in text
    assert "mean difference -10.0 meV/atom, 95% CI [-10.0, -10.0] meV/atom" in text
    assert "corrected resampled t-test p = 0.000, so the difference is resolved." in text


def test_conclusion_difference_within_spread(tidy):
    table, _, _ = tidy
    text = report.conclusion(table, "pooling", UNIT)
    assert text.startswith("pooling=mean is best")
    assert "it wins on 2 of 3 folds, mean difference -1.00 meV/atom" in text
    assert text.endswith("p = 0.639, so these folds do not separate the two.")


def test_failed_setting_is_listed_not_scored(tidy):
    table, _, _ = tidy
    bad = pd.DataFrame(_rows("pooling", "pooling=sum", [np.nan] * 3))
    bad["status"], bad["error"] = "failed", "ValueError: non-finite loss at epoch 3"
    table = pd.concat([table.assign(status="ok", error=""), bad], ignore_index=True)
    text = report.conclusion(table, "pooling", UNIT)
    assert text.startswith("pooling=mean is best")  # NaN is not scored as a low MAE
    assert text.endswith(
        "Not scored: pooling=sum failed on 3 fold(s) (ValueError: non-finite loss at epoch 3).")
    figs = report.make_figures(table, unit=UNIT)
    assert [t.get_text() for t in figs["study_pooling"].axes[0].get_xticklabels()] == [
        "pooling=mean", "pooling=max"]


def test_conclusion_neighbours_reports_cached_featurization(tidy):
    table, _, _ = tidy
    text = report.conclusion(table, "neighbours", UNIT)
    assert text.startswith("max_num_nbr=12 is best")
    meta = {"featurize_first_time": 3.0, "featurize_widest": {"max_num_nbr": 12}}
    text = report.conclusion(table, "neighbours", UNIT, meta=meta)
    assert text.endswith("The neighbour search of all structures ran once (M=12), in 3.00 s; "
                         "each setting re-cut those graphs inside its fit.")


def test_conclusion_baseline_counts_wins(tidy):
    table, _, _ = tidy
    text = report.conclusion(table, "baseline", UNIT)
    # CGCNN 50, 52, 51 vs RF 49, 55, 54: differences 1, -3, -3 -> mean -5/3, s^2 = 16/3,
    # se = sqrt(5/6 * 16/3) = 2.108185, t = -0.790569, p = 1 - |t| / sqrt(2 + t^2) = 0.512
    assert text.startswith("CGCNN (lr=0.003: the preset's fixed default, set before any fold")
    assert "RF magpie+scm baseline (52.7 meV/atom): CGCNN wins on 2 of 3 folds" in text
    assert "CGCNN - RF mean difference -1.67 meV/atom" in text
    assert text.endswith("p = 0.512, so these folds do not separate the two models.")
    nested = report.conclusion(table, "baseline", UNIT,
                               meta={"baseline_cgcnn": "nested", "inner_cv": 4})
    assert "chosen per outer fold by an inner 4-fold cross-validation" in nested


def test_conclusion_baseline_resolved_in_favour_of_rf():
    t = pd.DataFrame(_rows("baseline", "pooling=max", [60.0, 63.0, 61.0])
                     + _rows("baseline", "RF magpie+scm", [50.0, 52.0, 51.0], model="rf"))
    text = report.conclusion(t, "baseline", UNIT)
    # differences 10, 11, 10: s^2 = 1/3, se = 0.527046, t = 19.61, p = 0.0026
    assert "CGCNN wins on 0 of 3 folds, CGCNN - RF mean difference 10.3 meV/atom" in text
    assert text.endswith("p = 0.003, so the RF baseline is better on this data.")


def test_conclusion_single_setting():
    t = pd.DataFrame(_rows("pooling", "pooling=mean", [1.0, 2.0]))
    assert report.conclusion(t, "pooling").endswith("it is the only scored setting of this study.")


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"missing the column\(s\) \['test_mae'\]"):
        report.summarize(pd.DataFrame({"study": [], "model": [], "setting": [], "fold": []}))


def test_unknown_study_is_named(tidy):
    table, _, _ = tidy
    with pytest.raises(ValueError, match="no rows for study 'typo'"):
        report.conclusion(table, "typo")


def _texts(fig: Figure) -> tuple[list[str], list[str], str]:
    xl = [ax.get_xlabel() for ax in fig.axes]
    yl = [ax.get_ylabel() for ax in fig.axes]
    title = (fig._suptitle.get_text() if fig._suptitle else "") + " ".join(
        ax.get_title() for ax in fig.axes
    )
    return xl, yl, title


def test_make_figures_labels_units_titles_legends(tidy):
    table, hist, preds = tidy
    figs = report.make_figures(table, hist, preds, target="exfoliation energy", unit=UNIT)
    assert set(figs) == {
        "loss_hyperparameters", "loss_neighbours", "loss_activation_batchnorm", "loss_pooling",
        "study_hyperparameters", "study_neighbours", "study_activation_batchnorm",
        "study_pooling", "study_baseline", "parity",
    }
    for name, fig in figs.items():
        xl, yl, title = _texts(fig)
        assert title.strip(), name
        main = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert main[0].get_xlabel(), name  # a twin axis shares the first axis' x label
        if name.startswith("loss_"):  # panels of a row share the y axis and its label
            assert main[0].get_ylabel() == "training criterion on the standardised target"
        else:
            assert all(ax.get_ylabel() for ax in main), name
        if name.startswith("study_") or name == "parity":
            assert any(UNIT in label for label in xl + yl), name
        if name != "study_activation_batchnorm":
            assert fig.legends or any(ax.get_legend() is not None for ax in main), name
    # the heatmap's colour bar carries the unit; cells are annotated mean ± std
    heat = figs["study_activation_batchnorm"]
    assert any(UNIT in ax.get_ylabel() for ax in heat.axes)
    cells = [t.get_text() for t in heat.axes[0].texts]
    assert cells == ["51.0 ± 1.00", "56.0 ± 1.00", "54.0 ± 1.00", "59.0 ± 1.00"]
    # neighbour curve: error bars at M = 1, 4, 12
    assert list(figs["study_neighbours"].axes[0].get_xticks()) == [1, 4, 12]
    # loss curves are on a log scale and, for activation x batchnorm, split by batchnorm
    ab = figs["loss_activation_batchnorm"]
    assert [ax.get_title() for ax in ab.axes] == ["batchnorm on", "batchnorm off"]
    assert ab.axes[0].get_yscale() == "log"


def test_loss_curve_holds_early_stopped_folds_at_their_last_value(tidy):
    _, hist, _ = tidy
    fig = report.plot_loss_curves(hist, "pooling")
    line = fig.axes[0].get_lines()[0]  # pooling=mean, validation
    # folds ran 5, 4 and 3 epochs of valid_loss 1.2/epoch; stopped folds keep their last value
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(
        line.get_ydata(), [1.2, 0.6, 0.4, (0.3 + 0.3 + 0.4) / 3, (0.24 + 0.3 + 0.4) / 3]
    )
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "pooling=mean", "pooling=max", "validation", "train"]


def test_parity_title_shows_out_of_fold_mae(tidy):
    _, _, preds = tidy
    fig = report.plot_parity(preds, [("baseline", "cgcnn", "lr=0.003")], unit=UNIT)
    assert "out-of-fold MAE 5.00 meV/atom" in fig.axes[0].get_title()


def test_write_report_markdown_and_html(tidy, tmp_path):
    table, hist, preds = tidy
    meta = {"data": "synthetic", "target": "exfoliation energy", "unit": UNIT, "preset": "quick"}
    paths = report.write_report(table, hist, preds, tmp_path, meta=meta)
    md = paths["md"].read_text()
    for title in report.STUDY_TITLES.values():
        assert f"## {title}" in md
    for study in table["study"].unique():
        assert report.conclusion(table, study, UNIT, meta=meta) in md
    assert "| cgcnn   | pooling=max  |         3 |          0 |         52 |         1 |" in md
    assert md.count("**Conclusion.**") == 5
    assert "![study_neighbours](study_neighbours.png)" in md
    assert "- **data**: synthetic" in md
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 10  # every figure embedded
    assert not re.search(r"src=[\"'](?!data:)", html)  # nothing linked from outside
    assert "<td>pooling=max</td>" in html and "&lt;" not in md
    for name in ("study_neighbours", "parity", "loss_pooling"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_csv(paths["csv"])
    pd.testing.assert_series_equal(back["test_mae"], table["test_mae"])
    assert (tmp_path / "histories.csv").exists() and (tmp_path / "predictions.csv").exists()


def test_write_report_rejects_unknown_format(tidy, tmp_path):
    table, _, _ = tidy
    with pytest.raises(ValueError, match=r"unknown report format\(s\) \['pdf'\]"):
        report.write_report(table, out_dir=tmp_path, formats=["pdf"])
