"""Tests of the studies: the factorial design, the fits it runs, the tidy table, reproducibility."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from cgcnn_sk import CGCNNRegressor, CrystalGraph, CrystalGraphFeaturizer
from cgcnn_sk.baselines import make_rf_baseline
from cgcnn_sk.recipes import get_recipe
from cgcnn_sk.report.statistics import fmt
from cgcnn_sk.workflows.matbench import MATBENCH_PRESETS
from cgcnn_sk.workflows.studies import (
    FACTORS,
    PRESETS,
    QUESTIONS,
    STUDIES,
    TIDY_COLUMNS,
    StudyResult,
    design_settings,
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
ALL4 = ["max_num_nbr", "activation", "batchnorm", "pooling"]


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
            repeats=2, baseline=make_rf_baseline(n_estimators=10, random_state=0),
            ids=[s.composition.reduced_formula for s in structures],
            meta={"unit": "A^3/atom"},
        )
    res.meta["transform_inputs"] = inputs
    return res


# --------------------------------------------------------------------------- the design
def _signs(settings, factors):
    return np.array([[1 if s[FACTORS[f][0]] == FACTORS[f][2] else -1 for f in factors]
                     for s in settings])


def test_half_fraction_is_resolution_iv():
    settings = design_settings(ALL4, "half")
    signs = _signs(settings, ALL4)
    assert len(settings) == 8 and len({json.dumps(s) for s in settings}) == 8
    assert (signs.prod(axis=1) == 1).all()  # defining relation I = ABCD
    assert (signs[0] == 1).all()  # the recipe's setting comes first
    # every main effect is balanced and orthogonal to every two-factor interaction
    assert (signs.sum(axis=0) == 0).all()
    for i, (j, k) in itertools.product(range(4), itertools.combinations(range(4), 2)):
        assert signs[:, i] @ (signs[:, j] * signs[:, k]) == 0, (i, j, k)
    # but two-factor interactions are aliased in pairs: activation x batchnorm = M x pooling
    assert (signs[:, 1] * signs[:, 2] == signs[:, 0] * signs[:, 3]).all()


def test_full_design_and_small_fractions():
    full = design_settings(ALL4, "full")
    assert len(full) == 16 and len({json.dumps(s) for s in full}) == 16
    # a half fraction of fewer than four factors would alias main effects: the full design
    assert design_settings(["pooling", "batchnorm", "activation"], "half") == \
        design_settings(["pooling", "batchnorm", "activation"], "full")
    assert design_settings(["pooling"]) == [{"cgcnn__module__pooling": "mean"},
                                            {"cgcnn__module__pooling": "max"}]


def test_design_levels_can_be_replaced_and_are_checked():
    s = design_settings(["max_num_nbr"], levels={"max_num_nbr": ("graph__max_num_nbr", 8, 16)})
    assert s == [{"graph__max_num_nbr": 16}, {"graph__max_num_nbr": 8}]
    with pytest.raises(ValueError, match=r"unknown factor\(s\) \['depth'\]"):
        design_settings(["depth"])
    with pytest.raises(ValueError, match="fraction must be 'full' or 'half', got 'third'"):
        design_settings(ALL4, "third")


# --------------------------------------------------------------------------- the fits
def test_tidy_table_one_row_per_fit(result, small):
    t = result.table
    assert list(t.columns) == TIDY_COLUMNS
    design = t[t["study"] == "factorial"]
    assert len(design) == 4 * 2  # 2^2 settings (M x pooling) x 2 folds
    assert set(design["max_num_nbr"]) == {4, 12} and set(design["pooling"]) == {"mean", "max"}
    base = t[t["study"] == "baseline"]
    # repeat 0's CGCNN is the design's recipe setting, not fitted twice
    assert len(base[base["model"] == "cgcnn"]) == 2 and set(base.loc[
        base["model"] == "cgcnn", "repeat"]) == {1}
    assert len(base[base["model"] == "rf"]) == 4 and set(base["repeat"]) == {0, 1}
    assert (t["status"] == "ok").all() and (t["n_train"] + t["n_test"] == len(small[0])).all()
    assert (t.loc[t["model"] == "cgcnn", "epochs"] == 2).all()


def test_repeats_use_other_folds(result):
    t = result.table[result.table["model"] == "rf"]
    tests = {r: set(map(frozenset, result.predictions.query(
        "model == 'rf' and repeat == @r").groupby("fold")["index"].apply(list)))
        for r in (0, 1)}
    assert tests[0] != tests[1] and len(t) == 4


def test_test_mae_matches_out_of_fold_predictions(result, small):
    p = result.predictions
    keys = ["study", "model", "setting", "repeat", "fold"]
    for key, g in p.groupby(keys):
        row = result.table[(result.table[keys] == pd.Series(key, index=keys)).all(axis=1)]
        assert len(row) == 1
        np.testing.assert_allclose(np.mean(np.abs(g["y_true"] - g["y_pred"])),
                                   row["test_mae"].iloc[0], rtol=1e-6)
        np.testing.assert_allclose(g["y_true"], small[1][g["index"]])


def test_histories_have_one_row_per_epoch(result):
    h = result.histories
    assert set(h["epoch"]) == {1, 2}
    assert len(h) == 2 * (result.table["model"] == "cgcnn").sum()
    assert h["train_loss"].notna().all()


def test_structures_are_featurized_once_and_graphs_are_passed(result):
    calls = result.meta["transform_inputs"]
    assert calls[0] is False  # the one neighbour search, on the structures
    assert all(calls[1:]) and len(calls) > 1  # every fit re-cut the graphs
    assert set(result.meta["neighbour_shells"]) == {"4", "12"}
    assert result.meta["neighbour_shells"]["4"] < result.meta["neighbour_shells"]["12"]


def test_every_setting_shares_the_seed_and_the_folds(result):
    """Common random numbers: settings differ only in the factor values."""
    t = result.table[result.table["study"] == "factorial"]
    assert t.groupby("fold")["n_train"].nunique().eq(1).all()
    pipe = make_cgcnn_pipeline("quick", 0)
    assert pipe.get_params()["cgcnn__random_state"] == 0


def test_effects_and_conclusions_answer_every_question(result):
    e = result.effects()
    assert list(e["term"]) == ["max_num_nbr", "pooling"]
    assert set(e["verdict"]) <= {"+", "-", "equivalent", "undecided"}
    text = result.conclusions()
    assert set(text) == {"neighbours", "pooling", "baseline"}
    assert "Median distance of the M-th nearest neighbour" in text["neighbours"]
    assert "2 repeat(s) of 2-fold CV" in text["baseline"]


def test_seed_only_difference_is_never_called_better(small):
    """Two settings that differ only in their seed: no 'better' verdict, for three seed pairs."""
    structures, y = small
    for a, b in [(1, 2), (3, 4), (5, 6)]:
        res = run_study(structures, y, "pooling", cv=4, params=TINY, n_jobs=1,
                        levels={"pooling": ("cgcnn__random_state", a, b)})
        assert set(res.table["setting"]) == {f"random_state={a}", f"random_state={b}"}
        assert res.effects()["verdict"].iloc[0] in ("undecided", "equivalent"), res.effects()


def test_tuned_baseline_cgcnn_is_fitted_on_every_repeat(small):
    """A tuned CGCNN against the RF: its own fits on every repeat, the recipe's beside it."""
    structures, y = small
    res = run_study(structures, y, ["neighbours", "baseline"], cv=2, params=TINY, repeats=2,
                    baseline=make_rf_baseline(n_estimators=10, random_state=0),
                    baseline_cgcnn={"graph__max_num_nbr": 16},
                    meta={"baseline_note": "chosen by hand"})
    t = res.table
    cg = t[(t["study"] == "baseline") & (t["model"] == "cgcnn")]
    assert sorted(zip(cg["repeat"], cg["fold"], strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert set(cg["setting"]) == {"tuned: max_num_nbr=16"} and set(cg["max_num_nbr"]) == {16}
    # the graphs were featurized at M = 16, more than the design's largest level (12): the
    # tuned fits score differently from the design's M = 12 recipe fits on the same folds
    recipe = t[(t["study"] == "factorial") & (t["max_num_nbr"] == 12)].set_index("fold")
    tuned0 = cg[cg["repeat"] == 0].set_index("fold")
    assert not np.allclose(tuned0["test_mae"], recipe.loc[tuned0.index, "test_mae"])
    assert res.meta["baseline_cgcnn"] == "tuned"
    assert res.meta["baseline_params"] == {"graph__max_num_nbr": 16}
    text = res.conclusions()["baseline"]
    assert "CGCNN (the recipe's network with max_num_nbr=16, chosen by hand) mean" in text
    assert "2 repeat(s) of 2-fold CV" in text
    # the recipe's own setting against the RF, on the design's 2 folds
    design = res.table[res.table["max_num_nbr"] == 12]["test_mae"].to_numpy()
    rf0 = t[(t["model"] == "rf") & (t["repeat"] == 0)].sort_values("fold")["test_mae"]
    diff = float(np.mean(design) - rf0.mean())
    assert "The design's recipe setting (the untuned network) on the design's 2 folds" in text
    assert f"difference {fmt(diff)}" in text, (diff, text)
    from cgcnn_sk.report.figures import plot_baseline

    legend = plot_baseline(res.table, res.meta).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][0] == "CGCNN (max_num_nbr=16)"


@pytest.mark.parametrize("how", ["fit raises", "predict gives NaN"])
def test_failed_setting_is_reported_not_scored(small, monkeypatch, how, tmp_path):
    structures, y = small
    original = getattr(CGCNNRegressor, "fit" if how == "fit raises" else "predict")

    def patched(self, *args, **kwargs):
        if self.module__pooling == "max":
            if how == "fit raises":
                raise FloatingPointError("epoch 3: train_loss is nan; try a lower lr")
            return np.full(len(args[0]), np.nan)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CGCNNRegressor, "fit" if how == "fit raises" else "predict", patched)
    reason = ("FloatingPointError: epoch 3: train_loss is nan; try a lower lr"
              if how == "fit raises" else "ValueError: Input contains NaN.")
    res = run_study(structures, y, "pooling", cv=2, params=TINY, n_jobs=1)
    t = res.table
    bad = t[t["pooling"] == "max"]
    assert list(bad["status"]) == ["failed", "failed"] and bad["test_mae"].isna().all()
    assert (bad["error"] == reason).all(), bad["error"].iloc[0]
    assert set(res.predictions["setting"]) == {"pooling=mean"}  # no NaN predictions kept
    assert not res.failed()
    text = res.conclusions()["pooling"]
    assert text.endswith(f"Not scored: pooling=max failed on 2 fit(s) ({reason}).")
    assert "pooling=max failed on 2 fit(s)" in res.write_report(tmp_path, ["md"])["md"].read_text()


def test_every_fit_failing_is_a_failed_run(small, monkeypatch):
    structures, y = small

    def boom(self, *a, **k):
        raise ValueError("lr must be a float, got 'fast'")

    monkeypatch.setattr(CGCNNRegressor, "fit", boom)
    res = run_study(structures, y, "pooling", cv=2, params=TINY, n_jobs=1)
    assert res.failed()
    assert set(res.table["error"]) == {"ValueError: lr must be a float, got 'fast'"}


def test_same_random_state_same_table(result, small):
    structures, y = small
    again = run_study(structures, y, ["neighbours", "pooling"], cv=2, params=TINY)
    first = result.table[result.table["study"] == "factorial"].reset_index(drop=True)
    cols = ["setting", "fold", "n_train", "test_mae", "test_rmse", "epochs"]
    pd.testing.assert_frame_equal(again.table[cols], first[cols])


def test_write_report_and_load_round_trip(result, tmp_path):
    paths = result.write_report(tmp_path, formats=["md", "html"])
    assert {"csv", "md", "html", "meta", "effects", "loss", "baseline", "parity"} <= set(paths)
    md = paths["md"].read_text()
    # the answers first, the run's facts last
    assert md.index("| question | verdict |") < md.index("## Run facts")
    assert md.startswith("# What the study found")
    assert "params: {}" not in md and "featurize_widest" not in md
    back = StudyResult.load(tmp_path)
    np.testing.assert_allclose(back.table["test_mae"], result.table["test_mae"])
    assert list(back.table["error"]) == list(result.table["error"])
    assert back.meta["unit"] == "A^3/atom" and back.meta["cv"] == 2
    assert len(back.histories) == len(result.histories)
    assert back.conclusions() == result.conclusions()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"study": "poolng"}, r"unknown study 'poolng'; choose from 'all', 'neighbours'"),
        ({"study": []}, "no study given"),
        ({"preset": "huge"}, r"unknown preset 'huge'; choose from \['full', 'quick'\]"),
        ({"cv": 1}, "cv must be at least 2 folds, got 1"),
        ({"cv": 50}, "cv=50 folds but only 20 structures"),
        ({"repeats": 0}, "repeats must be at least 1, got 0"),
        ({"rope": 1.5}, r"rope is a fraction of the MAE in \[0, 1\), got 1.5"),
        ({"baseline_cgcnn": "best"},
         "baseline_cgcnn must be 'default', 'nested' or a mapping of parameters, got 'best'"),
        ({"study": "baseline", "baseline_cgcnn": {"graph__max_nbr": 48}},
         "baseline_cgcnn: graph__max_nbr is not a parameter of the pipeline"),
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


# --------------------------------------------------------------------------- one recipe
def test_presets_take_their_network_from_the_recipe_registry():
    assert set(QUESTIONS) == set(STUDIES) - {"baseline"}
    for name, spec in PRESETS.items():
        recipe = get_recipe(spec["recipe"])
        params = make_cgcnn_pipeline(name).get_params()
        for key, value in recipe.pipeline_params().items():
            assert params[key] == value, (name, key)
    # the quick preset's cheaper fit is the registry's "study" recipe, the full one the default
    assert make_cgcnn_pipeline("quick").get_params()["cgcnn__max_epochs"] == 60
    assert make_cgcnn_pipeline("full").get_params()["cgcnn__max_epochs"] == 300
    # the Matbench presets read the same registry
    assert MATBENCH_PRESETS["defaults"] is get_recipe("default")
    assert MATBENCH_PRESETS["long"].cgcnn["max_epochs"] == 600


def test_recipes_examples_run():
    import doctest

    from cgcnn_sk import recipes

    assert doctest.testmod(recipes, raise_on_error=True).attempted >= 6


def test_tuned_settings_are_what_their_recipe_trains():
    """jdft2d's tuned setting is the m48 recipe's change from the default."""
    from cgcnn_sk.recipes import TUNED

    default, m48 = get_recipe("default").pipeline_params(), get_recipe("m48").pipeline_params()
    assert {k: v for k, v in m48.items() if default[k] != v} == dict(TUNED["jdft2d"])


def test_the_tuned_recipe_trains_each_tasks_tuned_settings():
    """The "tuned" Matbench recipe is the recipe plus TUNED[task] (and phonons' schedule)."""
    from cgcnn_sk.recipes import TUNED

    recipe = get_recipe("recipe").pipeline_params()
    for task, schedule in [("jdft2d", {}), ("phonons", {"cgcnn__max_epochs": 600})]:
        tuned = get_recipe("tuned", task=task)
        changed = {k: v for k, v in tuned.pipeline_params().items() if recipe[k] != v}
        assert changed == {**TUNED[task], **schedule}, task
        assert tuned.n_members == 5 and not tuned.log_target
    m48 = get_recipe("m48").pipeline_params()
    assert get_recipe("tuned", task="jdft2d").pipeline_params() == m48
    dielectric = get_recipe("tuned", task="dielectric")  # no entry: the recipe, log target kept
    assert dielectric.log_target and dielectric.pipeline_params() == recipe


def test_default_estimator_is_the_default_recipe():
    """CGCNNRegressor() and CrystalGraphFeaturizer() train what the "default" recipe names."""
    recipe = get_recipe("default")
    net, feat = CGCNNRegressor(), CrystalGraphFeaturizer()
    net_params = net.get_params()
    import inspect

    from cgcnn_sk import CGCNN

    module_defaults = {f"module__{k}": p.default
                       for k, p in inspect.signature(CGCNN).parameters.items()
                       if p.default is not inspect.Parameter.empty}
    for key, value in recipe.cgcnn.items():
        assert net_params.get(key, module_defaults.get(key)) == value, key
    for key, value in recipe.featurizer.items():
        assert feat.get_params()[key] == value, key
    assert recipe.cgcnn["criterion"] is torch.nn.L1Loss
