"""The Matbench protocol (cgcnn_sk.workflows.matbench): per-fold files, metrics, resume, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.cli import main
from cgcnn_sk.datasets import load_jdft2d, matbench_folds
from cgcnn_sk.descriptors import MatminerDescriptors
from cgcnn_sk.estimators import WeightAveraging
from cgcnn_sk.recipes import Recipe
from cgcnn_sk.workflows.matbench import MATBENCH_PRESETS, calibration, matbench_ids, run_matbench

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "benchmarks" / "results" / "matbench" / "jdft2d" / "recipe" / "folds"

# One epoch of a very small net: the protocol, not the accuracy, is under test.
MICRO = {
    "featurizer": {"max_num_nbr": 4, "radius": 5.0},
    "cgcnn": {"criterion": torch.nn.L1Loss, "train_split": None, "patience": None,
              "max_epochs": 1, "module__atom_fea_len": 4, "module__n_conv": 1,
              "module__h_fea_len": 4},
    "n_members": 2,
}


def test_matbench_ids_are_one_based_and_padded_to_the_row_count():
    ids = matbench_ids("jdft2d", 636)
    assert (ids[0], ids[9], ids[635], len(ids)) == (
        "mb-jdft2d-001", "mb-jdft2d-010", "mb-jdft2d-636", 636)
    assert matbench_ids("dielectric", 4764)[0] == "mb-dielectric-0001"


def test_fold_files_hold_the_test_rows_and_the_metrics_match_them(tmp_path):
    table = run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    _, y = load_jdft2d()
    test = matbench_folds(len(y))[0][1]
    root = tmp_path / "jdft2d" / "custom"
    pred = pd.read_csv(root / "predictions.csv")
    assert sorted(pred["id"]) == sorted(np.asarray(matbench_ids("jdft2d", 636))[test])
    assert (pred["fold"] == 0).all()
    by_id = dict(zip(matbench_ids("jdft2d", 636), y, strict=True))
    np.testing.assert_allclose(pred["target"], pred["id"].map(by_id))
    # the fold's MAE is the MAE of the mean of its members, recomputed here from the files
    members = [pd.read_csv(root / "folds" / f"fold0_member{m}.csv").set_index("id")
               for m in range(2)]
    mean = (members[0]["prediction"] + members[1]["prediction"]) / 2
    np.testing.assert_allclose(pred.set_index("id")["prediction"], mean.loc[pred["id"]])
    errors = pred["prediction"] - pred["target"]
    record = json.loads((root / "folds" / "fold0.json").read_text())
    assert record["mae"] == pytest.approx(errors.abs().mean())
    assert record["rmse"] == pytest.approx(np.sqrt((errors**2).mean()))
    assert record["max_error"] == pytest.approx(errors.abs().max())
    assert record["settings"]["cgcnn"]["criterion"] == "L1Loss"
    assert table["mae"].tolist() == [record["mae"]]
    assert "(1 of 5 folds, 2 member(s))" in (root / "summary.md").read_text()


def count_fits(monkeypatch) -> list[int]:
    """From now on, each ``CGCNNRegressor.fit`` appends its row count to the returned list."""
    fits = []
    original = CGCNNRegressor.fit

    def counting_fit(self, X, y, **kw):
        fits.append(len(y))
        return original(self, X, y, **kw)

    monkeypatch.setattr(CGCNNRegressor, "fit", counting_fit)
    return fits


def test_a_rerun_resumes_only_what_is_missing(tmp_path, monkeypatch):
    run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    folds = tmp_path / "jdft2d" / "custom" / "folds"
    before = json.loads((folds / "fold0.json").read_text())["mae"]
    (folds / "fold0_member1.csv").unlink()
    fits = count_fits(monkeypatch)
    table = run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    assert len(fits) == 1  # member 0 was kept, member 1 refitted
    assert table["mae"].iloc[0] == pytest.approx(before)  # seeded: the same member again
    run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    assert len(fits) == 1  # nothing left to do


def test_a_first_member_run_gains_its_other_members_later(tmp_path, monkeypatch):
    one = run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False,
                       n_members=1)
    folds = tmp_path / "jdft2d" / "custom" / "folds"
    assert sorted(f.name for f in folds.glob("fold0_member*.csv")) == ["fold0_member0.csv"]
    assert one["n_members"].tolist() == [1]
    fits = count_fits(monkeypatch)
    both = run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    assert len(fits) == 1 and both["n_members"].tolist() == [2]  # member 0 kept
    fresh = run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path / "fresh",
                         progress=False)
    assert both["mae"].iloc[0] == pytest.approx(fresh["mae"].iloc[0])  # the same two members


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_a_bad_member_count_is_named(tmp_path, bad):
    with pytest.raises(ValueError, match=f"n_members={bad!r}: give a whole number >= 1"):
        run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False,
                     n_members=bad)


def test_changed_settings_do_not_mix_with_finished_folds(tmp_path):
    run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    other = {**MICRO, "cgcnn": {**MICRO["cgcnn"], "lr": 0.1}}
    with pytest.raises(ValueError, match="settings.json holds other settings"):
        run_matbench("jdft2d", preset=other, folds=[0], out=tmp_path, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"task": "gaps"}, "task='gaps' is not one of"),
     ({"task": "jdft2d", "folds": [5]}, r"folds \[5\] out of range"),
     ({"task": "jdft2d", "preset": "best"}, "preset='best' is not one of")],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_matbench(out=tmp_path, progress=False, **kwargs)


def test_cli_runs_one_fold_with_the_tiny_preset(tmp_path, capsys):
    # The CI smoke test of the protocol: one jdft2d fold, seconds.
    assert main(["matbench", "--task", "jdft2d", "--preset", "tiny", "--folds", "0",
                 "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "jdft2d" / "tiny" / "folds" / "fold0.json").read_text())
    assert f"mean MAE over 1 fold(s): {record['mae']:.4g}" in out
    assert record["n_test"] == 128 and record["n_train"] == 508


def test_cli_names_a_bad_fold_list(tmp_path, capsys):
    assert main(["matbench", "--task", "jdft2d", "--folds", "0,x", "--out", str(tmp_path)]) != 0
    assert "--folds '0,x'" in capsys.readouterr().err


@pytest.mark.slow
def test_recipe_fold0_reproduces_the_committed_mae(tmp_path):
    # Acceptance of the accuracy issue: a seeded rerun of fold 0 lands within 5 % of the
    # committed figure (torch on another CPU may round differently, hence the margin rather
    # than equality). Members are seeded 0, 1, ...; the first two are rerun (300 s of CI
    # instead of 750 for all five) and compared with the mean of the same two committed
    # members' predictions, each committed per structure.
    files = [COMMITTED / f"fold0_member{m}.csv" for m in (0, 1)]
    if not all(f.exists() for f in files):
        pytest.skip("fold 0 of the jdft2d recipe is not committed yet")
    truth = pd.read_csv(COMMITTED.parent / "predictions.csv").set_index("id")
    pred = pd.concat([pd.read_csv(f).set_index("id")["prediction"] for f in files], axis=1)
    target = truth.loc[pred.index, "target"]
    committed_mae = float((pred.mean(axis=1) - target).abs().mean())
    preset = dataclasses.replace(MATBENCH_PRESETS["recipe"], n_members=2)
    table = run_matbench("jdft2d", preset=preset, folds=[0], out=tmp_path, progress=False)
    assert table["mae"].iloc[0] == pytest.approx(committed_mae, rel=0.05)


def test_presets_are_complete():
    for name, spec in MATBENCH_PRESETS.items():
        assert isinstance(spec, Recipe) and spec.summary, name
        CrystalGraphFeaturizer(**spec.featurizer)
        CGCNNRegressor(**spec.cgcnn)
        if spec.descriptors is not None:
            MatminerDescriptors(**spec.descriptors)
            assert spec.featurizer["global_features"] == "all", name


def _one_member(**over):
    return {**MICRO, "n_members": 1, **over}


def test_descriptors_are_fitted_on_each_folds_training_rows(tmp_path, monkeypatch):
    preset = _one_member(featurizer={**MICRO["featurizer"], "global_features": "all"},
                         descriptors={"kind": "magpie", "n_components": 2})
    seen = []
    original = CGCNNRegressor.fit

    def recording_fit(self, X, y, **kw):
        seen.append(np.stack([g.global_features for g in X]))
        return original(self, X, y, **kw)

    monkeypatch.setattr(CGCNNRegressor, "fit", recording_fit)
    run_matbench("jdft2d", preset=preset, folds=[1], out=tmp_path, progress=False)
    structures, y = load_jdft2d()
    train = matbench_folds(len(y))[1][0]
    rows = [structures[i] for i in train]
    expected = MatminerDescriptors("magpie", n_components=2).fit(rows).transform(rows)
    (values,) = seen
    # the graphs hold the globals as float32: agreement to its precision
    np.testing.assert_allclose(values, expected[["magpie pc0", "magpie pc1"]].to_numpy(),
                               rtol=1e-6, atol=1e-5)
    # principal components of the training rows: centred on them
    np.testing.assert_allclose(values.mean(axis=0), 0, atol=1e-5)
    settings = json.loads((tmp_path / "jdft2d" / "custom" / "settings.json").read_text())
    assert settings["descriptors"]["n_components"] == 2
    other = {**preset, "descriptors": {"kind": "magpie", "n_components": 3}}
    with pytest.raises(ValueError, match="settings.json holds other settings"):
        run_matbench("jdft2d", preset=other, folds=[1], out=tmp_path, progress=False)


def test_descriptors_without_global_features_are_named(tmp_path):
    with pytest.raises(ValueError, match="adds descriptors but its featurizer has no "
                                         "global_features"):
        run_matbench("jdft2d", preset=_one_member(descriptors={"kind": "magpie"}),
                     folds=[0], out=tmp_path, progress=False)


def test_a_weight_averaging_preset_runs_and_resumes(tmp_path):
    def preset(decay):
        callbacks = [("averaging", WeightAveraging(decay=decay))]
        return _one_member(cgcnn={**MICRO["cgcnn"], "callbacks": callbacks})

    run_matbench("jdft2d", preset=preset(0.9), folds=[0], out=tmp_path, progress=False)
    root = tmp_path / "jdft2d" / "custom"
    text = (root / "settings.json").read_text()
    assert "WeightAveraging(kind='ema', decay=0.9, start=0.0, update_bn=True)" in text
    # the same preset again (new callback objects): nothing to refit, no settings clash
    run_matbench("jdft2d", preset=preset(0.9), folds=[0], out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="settings.json holds other settings"):
        run_matbench("jdft2d", preset=preset(0.5), folds=[0], out=tmp_path, progress=False)


def test_calibration_against_hand_counts():
    # |errors| 0.5, 1.5, 3.0, 0.1 against std 1, 2, 1.6, 0.5: rows 0, 1, 3 within 1 std, all
    # within 2 std; ranks of |error| 2, 3, 4, 1 and of std 2, 4, 3, 1: rho = 1 - 6 * 2 / 60.
    got = calibration([0.0] * 4, [0.5, -1.5, 3.0, 0.1], [1.0, 2.0, 1.6, 0.5])
    assert got == {"within_1_std": 0.75, "within_2_std": 1.0,
                   "spearman_abs_error_std": pytest.approx(0.8)}


def test_summary_reports_the_calibration_of_the_members(tmp_path):
    run_matbench("jdft2d", preset=MICRO, folds=[0], out=tmp_path, progress=False)
    root = tmp_path / "jdft2d" / "custom"
    pred = pd.read_csv(root / "predictions.csv")
    cal = calibration(pred["target"], pred["prediction"], pred["member_std"])
    assert f"{cal['within_1_std']:.3f} of the targets within 1 std" in (
        root / "summary.md").read_text()
    assert (root / "calibration.png").stat().st_size > 1000
