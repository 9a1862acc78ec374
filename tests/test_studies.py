"""Tests of the studies: the tidy table, shared folds and featurization, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold

from cgcnn_sk import CGCNNRegressor, CrystalGraph, CrystalGraphFeaturizer
from cgcnn_sk.baselines import make_rf_baseline
from cgcnn_sk.workflows.studies import (
    PRESETS,
    STUDIES,
    TIDY_COLUMNS,
    StudyResult,
    make_cgcnn_pipeline,
    run_study,
)

TINY = {  # a network small enough that 2 epochs on 20 crystals take a fraction of a second
    "cgcnn__max_epochs": 2,
    "cgcnn__module__atom_fea_len": 8,
    "cgcnn__module__h_fea_len": 8,
    "cgcnn__module__n_conv": 1,
    "cgcnn__batch_size": 8,
}
GRIDS = {
    "neighbours": {"graph__max_num_nbr": [2, 12, 16]},
    "pooling": {"cgcnn__module__pooling": ["mean", "max"]},
}


@pytest.fixture(scope="module")
def small():
    from conftest import make_small_structures

    return make_small_structures()


@pytest.fixture(scope="module")
def result(small):
    structures, y = small
    inputs = []  # what the featurizer's transform was given, call by call
    transform = CrystalGraphFeaturizer.transform

    def spy(self, X):
        inputs.append(all(isinstance(g, CrystalGraph) for g in X))
        return transform(self, X)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CrystalGraphFeaturizer, "transform", spy)
        res = run_study(
            structures, y, ["neighbours", "pooling", "baseline"], cv=2, params=TINY,
            grids=GRIDS, baseline=make_rf_baseline(n_estimators=10, random_state=0),
            ids=[s.composition.reduced_formula for s in structures],
            meta={"unit": "A^3/atom"},
        )
    res.meta["transform_inputs"] = inputs
    return res


def test_tidy_table_one_row_per_setting_and_fold(result):
    t = result.table
    assert list(t.columns) == TIDY_COLUMNS
    # neighbours 3 settings + pooling 2 settings + baseline (default CGCNN + RF), 2 folds each
    assert len(t) == (3 + 2 + 2) * 2
    counts = t.groupby(["study", "model"]).size().to_dict()
    assert counts == {("neighbours", "cgcnn"): 6, ("pooling", "cgcnn"): 4,
                      ("baseline", "cgcnn"): 2, ("baseline", "rf"): 2}
    assert set(t["fold"]) == {0, 1}
    assert (t["n_train"] + t["n_test"] == 20).all()
    nb = t[t["study"] == "neighbours"]
    assert list(nb["setting"].unique()) == ["max_num_nbr=2", "max_num_nbr=12", "max_num_nbr=16"]
    assert list(nb["max_num_nbr"].unique()) == [2, 12, 16]
    assert json.loads(nb["params"].iloc[0]) == {"graph__max_num_nbr": 2}
    cg = t[t["model"] == "cgcnn"]
    assert (cg["epochs"] == 2).all() and (cg["max_epochs"] == 2).all()
    assert (cg["n_conv"] == 1).all() and (cg["atom_fea_len"] == 8).all()
    assert (cg["criterion"] == "L1Loss").all()  # the preset recipe's loss
    assert t[t["model"] == "rf"]["epochs"].isna().all()
    assert (t["status"] == "ok").all() and (t["error"] == "").all()


def test_test_mae_matches_out_of_fold_predictions(result, small):
    _, y = small
    p = result.predictions
    assert len(p) == len(result.table) // 2 * 20  # every structure once per setting
    for (study, model, setting, fold), g in p.groupby(["study", "model", "setting", "fold"]):
        np.testing.assert_allclose(g["y_true"], y[g["index"]])
        row = result.table[(result.table["study"] == study) & (result.table["model"] == model)
                           & (result.table["setting"] == setting)
                           & (result.table["fold"] == fold)]
        assert row["test_mae"].item() == pytest.approx(np.mean(np.abs(g["y_pred"] - g["y_true"])))
    assert p["id"].iloc[0] in {"NaCl", "KBr", "MgO", "LiF", "CaS", "CsCl", "CsI", "TlBr", "GaAs",
                               "ZnS", "InP", "Si", "Cu", "Al", "Ni", "Fe", "W", "SrTiO3",
                               "BaTiO3", "CaZrO3"}


def test_histories_have_one_row_per_epoch(result):
    h = result.histories
    cg = result.table[result.table["model"] == "cgcnn"]
    assert len(h) == int(cg["epochs"].sum())
    assert h["train_loss"].notna().all() and h["valid_loss"].notna().all()
    assert set(h["epoch"]) == {1, 2}


def test_structures_are_featurized_once_and_graphs_are_passed(result):
    # one transform of the 20 structures (at the largest M of the run); every fit and
    # predict after it received graphs, which the pipeline's featurizer re-cuts
    inputs = result.meta["transform_inputs"]
    assert inputs[0] is False
    assert len(inputs) > 20 and all(inputs[1:])
    assert result.meta["featurize_widest"] == {"max_num_nbr": 16, "radius": 8.0}


def test_shared_setting_is_fitted_once(result):
    t = result.table
    m12 = t[(t["study"] == "neighbours") & (t["setting"] == "max_num_nbr=12")]
    mean = t[(t["study"] == "pooling") & (t["setting"] == "pooling=mean")]
    # the same pipeline parameters on the same folds: rows reused, not refitted
    np.testing.assert_array_equal(m12["test_mae"], mean["test_mae"])
    np.testing.assert_array_equal(m12["fit_time"], mean["fit_time"])


def test_baseline_scores_the_fixed_default_not_the_best_of_the_test_folds(result):
    t = result.table
    base = t[(t["study"] == "baseline") & (t["model"] == "cgcnn")]
    assert set(base["setting"]) == {"preset default"}
    # the base pipeline (M=12, mean pooling) is what it scores, whatever setting won a sweep
    src = t[(t["study"] == "neighbours") & (t["setting"] == "max_num_nbr=12")]
    np.testing.assert_array_equal(base["test_mae"], src["test_mae"])
    rf = t[(t["study"] == "baseline") & (t["model"] == "rf")]
    assert set(rf["setting"]) == {"RF magpie+scm"}
    assert result.meta["baseline_cgcnn"] == "default"
    assert "the preset's fixed default" in result.conclusions()["baseline"]


def test_nested_baseline_chooses_on_the_outer_training_rows_only(small):
    structures, y = small
    grid = {"cgcnn__module__pooling": ["mean", "max"]}
    res = run_study(structures, y, ["pooling", "baseline"], cv=2, params=TINY,
                    grids={"pooling": grid}, baseline_cgcnn="nested", inner_cv=2,
                    baseline=make_rf_baseline(n_estimators=10, random_state=0))
    t = res.table
    nested = t[(t["study"] == "baseline") & (t["model"] == "cgcnn")]
    assert set(nested["setting"]) == {"nested CV over 2 settings"}
    # each outer fold records the setting its inner CV chose; redo fold 0's by hand
    train = KFold(2, shuffle=True, random_state=0).split(np.zeros(20)).__next__()[0]
    graphs = CrystalGraphFeaturizer(max_num_nbr=12).fit_transform(structures)
    by_hand = GridSearchCV(make_cgcnn_pipeline("quick", 0, **TINY), grid,
                           cv=KFold(2, shuffle=True, random_state=0),
                           scoring="neg_mean_absolute_error").fit(graphs[train], y[train])
    assert json.loads(nested["params"].iloc[0]) == by_hand.best_params_
    assert "(nested CV)" in res.conclusions()["baseline"]


def test_grid_over_classes_is_not_merged(small):
    # criterion and optimizer values are classes: each must be its own setting, fitted apart
    structures, y = small
    grid = [{"cgcnn__criterion": [torch.nn.MSELoss, torch.nn.L1Loss]},
            {"cgcnn__optimizer": [torch.optim.SGD]}]
    res = run_study(structures, y, "hyperparameters", cv=2, params=TINY,
                    grids={"hyperparameters": grid})
    t = res.table
    assert list(t["setting"].unique()) == [
        "criterion=MSELoss", "criterion=L1Loss", "optimizer=SGD"]
    assert list(t["criterion"]) == ["MSELoss"] * 2 + ["L1Loss"] * 4
    assert json.loads(t["params"].iloc[2]) == {"cgcnn__criterion": "L1Loss"}
    maes = t["test_mae"].to_numpy().reshape(3, 2)
    assert not np.array_equal(maes[0], maes[1]) and not np.array_equal(maes[0], maes[2])
    assert res.best("hyperparameters")["cgcnn__criterion"] in (torch.nn.MSELoss, torch.nn.L1Loss)


def test_custom_grid_over_another_parameter_is_not_merged(small):
    structures, y = small
    res = run_study(structures, y, "hyperparameters", cv=2, params=TINY,
                    grids={"hyperparameters": {"cgcnn__module__dropout": [0.0, 0.5]}})
    t = res.table
    assert list(t["setting"].unique()) == ["dropout=0.0", "dropout=0.5"]
    assert json.loads(t["params"].iloc[-1]) == {"cgcnn__module__dropout": 0.5}
    assert not np.array_equal(t["test_mae"].iloc[:2], t["test_mae"].iloc[2:])


def _fail_when(monkeypatch, method, condition, result=None):
    original = getattr(CGCNNRegressor, method)

    def patched(self, *args, **kwargs):
        if condition(self):
            if result is None:
                raise FloatingPointError("epoch 3: train_loss is nan; try a lower lr")
            return result(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CGCNNRegressor, method, patched)


@pytest.mark.parametrize("how", ["fit raises", "predict gives NaN"])
def test_failed_candidate_is_reported_not_scored(small, monkeypatch, how, tmp_path):
    # the failing setting is a sane lr: its fit does not diverge by itself
    structures, y = small
    if how == "fit raises":
        _fail_when(monkeypatch, "fit", lambda net: net.lr < 2e-3)
        reason = "FloatingPointError: epoch 3: train_loss is nan; try a lower lr"
    else:
        _fail_when(monkeypatch, "predict", lambda net: net.lr < 2e-3,
                   lambda X: np.full(len(X), np.nan))
        reason = "ValueError: Input contains NaN."
    res = run_study(structures, y, "hyperparameters", cv=2, params=TINY,
                    grids={"hyperparameters": {"cgcnn__lr": [3e-3, 1e-3]}})
    t = res.table
    bad = t[t["setting"] == "lr=0.001"]
    assert list(bad["status"]) == ["failed", "failed"]
    assert bad["test_mae"].isna().all()
    assert (bad["error"] == reason).all(), bad["error"].iloc[0]
    assert (t.loc[t["setting"] == "lr=0.003", "status"] == "ok").all()
    assert set(res.predictions["setting"]) == {"lr=0.003"}  # no NaN predictions kept
    text = res.conclusions()["hyperparameters"]
    assert text.startswith("lr=0.003 is best")
    assert text.endswith(f"Not scored: lr=0.001 failed on 2 fold(s) ({reason}).")
    assert "lr=0.001 failed on 2 fold(s)" in res.write_report(tmp_path, ["md"])["md"].read_text()


def test_one_failed_fold_keeps_the_others(small, monkeypatch):
    structures, y = small
    calls = []
    original = CGCNNRegressor.fit

    def second_fit_fails(self, X, y=None, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return original(self, X, y, **kw)

    monkeypatch.setattr(CGCNNRegressor, "fit", second_fit_fails)
    res = run_study(structures, y, "pooling", cv=2, params=TINY,
                    grids={"pooling": {"cgcnn__module__pooling": ["mean"]}})
    t = res.table
    assert list(t["status"]) == ["ok", "failed"]
    assert list(t["error"]) == ["", "RuntimeError: out of memory"]
    assert np.isfinite(t["test_mae"].iloc[0]) and list(res.predictions["fold"].unique()) == [0]


def test_best_params_build_a_pipeline(result):
    best = result.best("pooling")
    summary = result.summary().query("study == 'pooling'").sort_values("mae_mean")
    assert best == {"cgcnn__module__pooling": summary["setting"].iloc[0].split("=")[1]}
    pipe = make_cgcnn_pipeline("quick", 0, **best)
    assert pipe.get_params()["cgcnn__module__pooling"] == best["cgcnn__module__pooling"]


def test_same_random_state_same_table(result, small):
    structures, y = small
    again = run_study(structures, y, "pooling", cv=2, params=TINY, grids=GRIDS)
    first = result.table[result.table["study"] == "pooling"].reset_index(drop=True)
    cols = ["setting", "fold", "n_train", "test_mae", "test_rmse", "epochs"]
    pd.testing.assert_frame_equal(again.table[cols], first[cols])


def test_write_report_and_load_round_trip(result, tmp_path):
    paths = result.write_report(tmp_path, formats=["md"])
    assert {"csv", "md", "meta", "study_neighbours", "study_pooling", "study_baseline",
            "parity", "loss_neighbours"} <= set(paths)
    md = paths["md"].read_text()
    assert md.count("**Conclusion.**") == 3
    assert "The neighbour search of all structures ran once (M=16)" in md
    back = StudyResult.load(tmp_path)
    np.testing.assert_allclose(back.table["test_mae"], result.table["test_mae"])
    assert list(back.table["error"]) == list(result.table["error"])
    assert back.meta["unit"] == "A^3/atom" and back.meta["cv"] == 2
    assert len(back.histories) == len(result.histories)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"study": "poolng"}, r"unknown study 'poolng'; choose from 'all', 'hyperparameters'"),
        ({"study": []}, "no study given"),
        ({"preset": "huge"}, r"unknown preset 'huge'; choose from \['full', 'quick'\]"),
        ({"cv": 1}, "cv must be at least 2 folds, got 1"),
        ({"cv": 50}, "cv=50 folds but only 20 structures"),
        ({"grids": {"baseline": {}}}, "grids: unknown study 'baseline'"),
        ({"baseline_cgcnn": "best"}, "baseline_cgcnn must be 'default' or 'nested', got 'best'"),
    ],
)
def test_bad_arguments_fail_before_any_fit(small, kwargs, match):
    structures, y = small
    kwargs = {"study": "pooling", **kwargs}
    with pytest.raises(ValueError, match=match):
        run_study(structures, y, **kwargs)


def test_non_numeric_target_is_named(small):
    structures, y = small
    bad = list(y)
    bad[3] = "n/a"
    with pytest.raises(ValueError, match=r"y must be finite numbers: item 3 is 'n/a'"):
        run_study(structures, bad, "pooling")
    with pytest.raises(ValueError, match="got 20 structures but 19 targets"):
        run_study(structures, y[:19], "pooling")


def test_presets_cover_every_sweep():
    for name, spec in PRESETS.items():
        assert set(spec["grids"]) == set(STUDIES) - {"baseline"}, name
        assert spec["cv"] >= 2
    quick = PRESETS["quick"]["grids"]
    assert quick["hyperparameters"][0] == {
        "cgcnn__criterion": [torch.nn.MSELoss, torch.nn.L1Loss, torch.nn.HuberLoss]}
    assert quick["pooling"] == [{"cgcnn__module__pooling": ["mean", "max"]}]
    assert quick["activation_batchnorm"][0]["cgcnn__module__batchnorm"] == [True, False]


def test_quick_preset_trains_the_recipe_whatever_the_estimator_defaults():
    # set explicitly, so a change of CGCNNRegressor's defaults does not change the study
    params = make_cgcnn_pipeline("quick").get_params()
    assert params["cgcnn__criterion"] is torch.nn.L1Loss
    assert (params["cgcnn__max_epochs"], params["cgcnn__patience"]) == (300, 60)
    assert (params["cgcnn__module__atom_fea_len"], params["cgcnn__module__n_conv"]) == (64, 3)
