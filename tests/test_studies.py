"""Tests of cgcnn_sk.studies: the tidy table, shared folds and featurization, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cgcnn_sk import _featurizer
from cgcnn_sk.baselines import make_rf_baseline
from cgcnn_sk.studies import (
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
    _featurizer.clear_cache()
    res = run_study(
        structures, y, ["neighbours", "pooling", "baseline"], cv=2, params=TINY, grids=GRIDS,
        baseline=make_rf_baseline(n_estimators=10, random_state=0),
        ids=[s.composition.reduced_formula for s in structures],
        meta={"unit": "A^3/atom"},
    )
    res.meta["cache_misses"] = _featurizer.cache_info()["misses"]
    return res


def test_tidy_table_one_row_per_setting_and_fold(result):
    t = result.table
    assert list(t.columns) == TIDY_COLUMNS
    # neighbours 3 settings + pooling 2 settings + baseline (best CGCNN + RF), 2 folds each
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
    assert t[t["model"] == "rf"]["epochs"].isna().all()
    assert (t["test_mae"] > 0).all() and (t["fit_time"] > 0).all()


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


def test_neighbour_search_runs_once_per_structure(result):
    # the warm-up searched every crystal at M=16; all later settings were cache hits
    assert result.meta["cache_misses"] == 20
    assert result.meta["featurize_first_time"] >= 0
    assert result.table.loc[result.table["model"] == "cgcnn", "featurize_time"].notna().all()


def test_shared_setting_is_fitted_once(result):
    t = result.table
    m12 = t[(t["study"] == "neighbours") & (t["setting"] == "max_num_nbr=12")]
    mean = t[(t["study"] == "pooling") & (t["setting"] == "pooling=mean")]
    # the same pipeline parameters on the same folds: rows reused, not refitted
    np.testing.assert_array_equal(m12["test_mae"], mean["test_mae"])
    np.testing.assert_array_equal(m12["fit_time"], mean["fit_time"])


def test_baseline_reuses_best_cgcnn_setting(result):
    t = result.table
    cg = t[t["model"] == "cgcnn"]
    means = cg[cg["study"] != "baseline"].groupby(["study", "setting"])["test_mae"].mean()
    best_study, best_setting = means.idxmin()
    base = t[(t["study"] == "baseline") & (t["model"] == "cgcnn")]
    assert set(base["setting"]) == {best_setting}
    src = t[(t["study"] == best_study) & (t["setting"] == best_setting)]
    np.testing.assert_array_equal(base["test_mae"], src["test_mae"])
    rf = t[(t["study"] == "baseline") & (t["model"] == "rf")]
    assert set(rf["setting"]) == {"RF magpie+scm"}
    assert result.best()[
        "graph__max_num_nbr" if best_study == "neighbours" else "cgcnn__module__pooling"
    ] == src[("max_num_nbr" if best_study == "neighbours" else "pooling")].iloc[0]


def test_baseline_alone_uses_the_preset_base_setting(small):
    structures, y = small
    res = run_study(structures, y, "baseline", cv=2, params=TINY,
                    baseline=make_rf_baseline(n_estimators=10, random_state=0))
    t = res.table
    assert list(zip(t["model"], t["setting"], t["fold"], strict=True)) == [
        ("cgcnn", "preset base", 0), ("cgcnn", "preset base", 1),
        ("rf", "RF magpie+scm", 0), ("rf", "RF magpie+scm", 1)]
    assert set(res.histories["study"]) == set(res.predictions["study"]) == {"baseline"}
    assert "The best CGCNN setting (preset base, mean test MAE" in res.conclusions()["baseline"]


def test_custom_grid_over_another_parameter_is_not_merged(small):
    structures, y = small
    res = run_study(structures, y, "hyperparameters", cv=2, params=TINY,
                    grids={"hyperparameters": {"cgcnn__module__dropout": [0.0, 0.5]}})
    t = res.table
    assert list(t["setting"].unique()) == ["dropout=0.0", "dropout=0.5"]
    assert json.loads(t["params"].iloc[-1]) == {"cgcnn__module__dropout": 0.5}
    # different parameters: fitted separately, so the fold results differ
    assert not np.array_equal(t["test_mae"].iloc[:2], t["test_mae"].iloc[2:])


def test_best_params_build_a_pipeline(result):
    best = result.best("pooling")
    assert best["cgcnn__module__pooling"] in {"mean", "max"}
    assert isinstance(best["graph__max_num_nbr"], int)
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
    assert "The neighbour search of all structures took" in md
    back = StudyResult.load(tmp_path)
    np.testing.assert_allclose(back.table["test_mae"], result.table["test_mae"])
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
    assert quick["pooling"] == [{"cgcnn__module__pooling": ["mean", "max", "sum"]}]
    assert quick["activation_batchnorm"][0]["cgcnn__module__batchnorm"] == [True, False]
