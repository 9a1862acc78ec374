"""Coverage of calibrated intervals on out-of-fold predictions (cgcnn_sk.workflows._coverage)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from cgcnn_sk import CGCNNRegressor
from cgcnn_sk.cli import main
from cgcnn_sk.workflows.matbench import interval_coverage, summarize_matbench

REPO = Path(__file__).resolve().parents[1]
LONG = REPO / "benchmarks" / "results" / "matbench" / "jdft2d" / "long"


def test_interval_coverage_against_hand_counts():
    # fold 0 is calibrated on fold 1's |errors| 6..10 and fold 1 on 1..5: at 50 % the
    # conformal quantile is the ceil(0.5 * 6) = 3rd smallest, 8 and 3
    y = np.array([1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 9.0, -10.0])
    preds = pd.DataFrame({"id": list("abcdefghij"), "fold": np.repeat([0, 1], 5),
                          "target": y, "prediction": 0.0, "member_std": 1.0})
    table, intervals = interval_coverage(preds, confidence_level=[0.5])
    got = table.set_index("rows")
    assert got.loc["fold 0", ["coverage", "mean_width", "scale"]].tolist() == [1.0, 16.0, 8.0]
    assert got.loc["fold 1", ["coverage", "mean_width", "scale"]].tolist() == [0.0, 6.0, 3.0]
    assert got.loc["all", ["n", "coverage", "mean_width"]].tolist() == [10, 0.5, 11.0]
    assert np.isnan(got.loc["all", "scale"])
    # raw: mean -/+ norm.ppf(0.75) = 0.674 std covers none of these targets
    assert got.loc["all", "raw_z"] == pytest.approx(norm.ppf(0.75))
    assert got.loc["all", ["raw_coverage", "raw_mean_width"]].tolist() == pytest.approx(
        [0.0, 2 * norm.ppf(0.75)])
    assert list(intervals.columns) == ["id", "fold", "lower_50", "upper_50"]
    assert intervals["upper_50"].tolist() == [8.0] * 5 + [3.0] * 5
    # the spread thirds split the rows by the rank of member_std (ties: by position)
    assert got.loc[got.index.str.contains("third"), "n"].tolist() == [4, 3, 3]
    assert got.loc["lowest third of std", "coverage"] == 1.0  # rows a-d, from fold 0


@pytest.fixture
def long_copy(tmp_path) -> Path:
    """The committed jdft2d `long` fold files, without the summaries made from them."""
    if not (LONG / "folds").is_dir():
        pytest.skip("committed jdft2d long results not found")
    root = tmp_path / "jdft2d" / "long"
    shutil.copytree(LONG / "folds", root / "folds")
    shutil.copy(LONG / "settings.json", root / "settings.json")
    return tmp_path


def test_summarize_writes_coverage_from_the_files_and_fits_nothing(long_copy, monkeypatch,
                                                                   capsys):
    def no_fit(*args, **kwargs):
        raise AssertionError("--summarize fitted a model")

    monkeypatch.setattr(CGCNNRegressor, "fit", no_fit)
    assert main(["matbench", "--task", "jdft2d", "--preset", "long", "--out",
                 str(long_copy), "--summarize"]) == 0
    root = long_copy / "jdft2d" / "long"
    assert "coverage.csv" in capsys.readouterr().out
    preds = pd.read_csv(root / "predictions.csv").set_index("id")
    intervals = pd.read_csv(root / "intervals.csv").set_index("id").loc[preds.index]
    coverage = pd.read_csv(root / "coverage.csv")
    # the table's coverage and width are those of the per-structure intervals it sits beside
    for level in (68, 95):
        inside = ((intervals[f"lower_{level}"] <= preds["target"])
                  & (preds["target"] <= intervals[f"upper_{level}"]))
        width = intervals[f"upper_{level}"] - intervals[f"lower_{level}"]
        for k in range(5):
            row = coverage[(coverage["rows"] == f"fold {k}") & (coverage["level"] == level / 100)]
            fold = (preds["fold"] == k).to_numpy()
            assert row["coverage"].item() == pytest.approx(inside[fold].mean())
            assert row["mean_width"].item() == pytest.approx(width[fold].mean())
    summary = (root / "summary.md").read_text()
    assert "Calibrated intervals" in summary and "| fold 4" in summary
    assert (root / "calibration.png").stat().st_size > 10_000


def test_summarize_says_why_a_single_fold_gets_no_intervals(long_copy):
    folds = long_copy / "jdft2d" / "long" / "folds"
    for k in range(1, 5):
        (folds / f"fold{k}.json").unlink()
    summarize_matbench("jdft2d", preset="long", out=long_copy)
    root = long_copy / "jdft2d" / "long"
    assert "Calibrated intervals: none yet (one fold is finished)" in (
        root / "summary.md").read_text()
    assert not (root / "coverage.csv").exists() and (root / "calibration.png").exists()


def test_summarize_names_an_empty_folder(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="holds no finished fold"):
        summarize_matbench("jdft2d", preset="long", out=tmp_path)
    assert main(["matbench", "--task", "jdft2d", "--preset", "long", "--out", str(tmp_path),
                 "--summarize"]) != 0
    assert "holds no finished fold" in capsys.readouterr().err
