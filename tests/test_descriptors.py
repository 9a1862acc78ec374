"""MatminerDescriptors: descriptor columns for the CGCNN's global inputs, fitted on train rows."""

from __future__ import annotations

import doctest
import pickle

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer, baselines, descriptors
from cgcnn_sk._utils import LRUCache
from cgcnn_sk.descriptors import MatminerDescriptors

MEAN_EN = "MagpieData mean Electronegativity"
MEAN_ROW = "MagpieData mean Row"


def _salt(a: str, b: str, c: float) -> Structure:
    """A CsCl-type cell: two sites, lattice constant ``c``."""
    return Structure(Lattice.cubic(c), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


# all of the third row (Na Mg Al / Cl S P): Magpie's Row statistics are constant over them
ROW3 = [_salt("Na", "Cl", 3.3), _salt("Mg", "S", 3.0), _salt("Al", "P", 2.9)]
OTHERS = [_salt("K", "Br", 3.9), _salt("Li", "F", 2.3)]


def _net(**kw) -> CGCNNRegressor:
    return CGCNNRegressor(max_epochs=1, batch_size=4, random_state=0, train_split=None,
                          module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, **kw)


def test_nacl_mean_electronegativity_by_hand():
    frame = MatminerDescriptors("magpie").fit_transform(ROW3 + OTHERS)
    # Pauling electronegativities Na 0.93, Cl 3.16; NaCl is 1:1
    assert frame.loc[0, MEAN_EN] == pytest.approx((0.93 + 3.16) / 2)
    assert frame.loc[0, "MagpieData range Number"] == 17 - 11
    assert frame.columns[0] == "structure" and frame.loc[0, "structure"] is ROW3[0]


def test_columns_are_chosen_on_the_training_rows_only():
    desc = MatminerDescriptors("magpie").fit(ROW3)
    assert MEAN_ROW not in set(desc.columns_)  # constant over the training rows: dropped
    assert MEAN_EN in set(desc.columns_)
    frame = desc.transform(OTHERS)  # K and Br are in row 4: the column stays dropped
    assert MEAN_ROW not in frame.columns
    assert list(frame.columns) == ["structure", *desc.columns_]
    full = MatminerDescriptors("magpie").fit(ROW3 + OTHERS)
    assert MEAN_ROW in set(full.columns_)
    assert frame.loc[0, MEAN_EN] == pytest.approx((0.82 + 2.96) / 2)  # K 0.82, Br 2.96


@pytest.fixture
def nan_features(monkeypatch):
    """Magpie values with NaN put in: column 0 missing for MgS and LiF, column 1 for all."""
    real = baselines._raw_features
    missing = {"MgS": [0, 1], "LiF": [0, 1], "NaCl": [1], "AlP": [1], "KBr": [1]}

    def fake(part, key, structure, version):
        values = real(part, key, structure, version).copy()
        values[missing.get(structure.composition.reduced_formula, [])] = np.nan
        return values

    labels = baselines.MatminerFeaturizer("magpie").fit(ROW3[:1]).feature_names_out_
    monkeypatch.setattr(baselines, "_raw_features", fake)
    monkeypatch.setattr(baselines, "_RAW_CACHE", LRUCache(1 << 20))  # no clean values cached
    return real, labels


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_missing_values_are_filled_with_the_training_median(nan_features):
    real, labels = nan_features
    train = ROW3 + OTHERS[:1]  # column 0 known for NaCl, AlP and KBr, missing for MgS
    with pytest.warns(UserWarning, match=r"Skipping features without any observed values: \[1\]"):
        desc = MatminerDescriptors("magpie").fit(train)
    assert labels[1] not in set(desc.columns_)  # missing in every training row: dropped
    known = [real("magpie", None, s, None)[0] for s in (ROW3[0], ROW3[2], OTHERS[0])]
    assert np.median(known) != pytest.approx(np.mean(known))  # the test tells them apart
    frame = desc.transform(ROW3 + OTHERS)
    # MgS in training, LiF at transform time: both get the training rows' median
    assert frame.loc[1, labels[0]] == pytest.approx(np.median(known))
    assert frame.loc[4, labels[0]] == pytest.approx(np.median(known))
    assert frame.loc[3, labels[0]] == pytest.approx(known[2])
    assert not frame[list(desc.columns_)].isna().any().any()


def test_infinite_descriptors_are_errors_naming_the_structure(monkeypatch):
    real = baselines._raw_features

    def fake(part, key, structure, version):
        values = real(part, key, structure, version).copy()
        if structure.composition.reduced_formula == "MgS":
            values[3] = np.inf
        return values

    monkeypatch.setattr(baselines, "_raw_features", fake)
    monkeypatch.setattr(baselines, "_RAW_CACHE", LRUCache(1 << 20))
    with pytest.raises(ValueError, match=r"item 1: \[MgS\] ElementProperty gave NaN/inf"):
        MatminerDescriptors("magpie").fit(ROW3)


def test_a_frame_keeps_its_columns_and_index():
    frame = pd.DataFrame({"structure": ROW3, "temperature": [300.0, 400.0, 500.0]},
                         index=["a", "b", "c"])
    out = MatminerDescriptors("magpie").fit_transform(frame)
    assert list(out.index) == ["a", "b", "c"]
    assert list(out.columns[:2]) == ["structure", "temperature"]
    assert out.loc["a", MEAN_EN] == pytest.approx(2.045)
    with pytest.raises(ValueError, match="already has the descriptor column"):
        MatminerDescriptors("magpie").fit(ROW3).transform(out)
    with pytest.raises(ValueError, match="needs a 'cif' column"):
        MatminerDescriptors("magpie", structure_column="cif").fit(frame)


def test_kind_none_passes_through_and_bad_settings_are_named():
    passthrough = MatminerDescriptors(None).fit(ROW3)
    assert passthrough.transform(ROW3) is ROW3 and passthrough.n_features_out_ == 0
    with pytest.raises(ValueError, match="unknown feature set"):
        MatminerDescriptors("magpie+nonsense").fit(ROW3)
    with pytest.raises(ValueError, match="n_components=5, but the training rows give 3 rows"):
        MatminerDescriptors("magpie", n_components=5).fit(ROW3)
    one = [ROW3[0], ROW3[0]]
    with pytest.raises(ValueError, match="missing or constant over the 2 training rows"):
        MatminerDescriptors("magpie").fit(one)


def test_n_components_compresses_the_kept_columns():
    desc = MatminerDescriptors("magpie", n_components=2).fit(ROW3 + OTHERS)
    frame = desc.transform(ROW3 + OTHERS)
    assert list(desc.columns_) == ["magpie pc0", "magpie pc1"]
    values = frame[list(desc.columns_)].to_numpy()
    # principal components of the training rows: centred, uncorrelated
    np.testing.assert_allclose(values.mean(axis=0), 0, atol=1e-9)
    assert abs(np.corrcoef(values.T)[0, 1]) < 1e-9


def test_pipeline_hands_the_fitted_descriptors_to_the_net():
    train, test = ROW3 + OTHERS[:1], OTHERS[1:]
    model = Pipeline([("descriptors", MatminerDescriptors("magpie")),
                      ("graph", CrystalGraphFeaturizer(radius=5.0, global_features="all")),
                      ("cgcnn", _net())])
    model.fit(train, np.arange(4.0))
    desc, net = model[0], model[-1]
    assert net.n_global_ == desc.n_features_out_
    assert list(net.global_feature_names_) == list(desc.columns_)
    train_values = desc.transform(train)[list(desc.columns_)].to_numpy()
    np.testing.assert_allclose(net.global_scaler_.mean_, train_values.mean(axis=0))
    graphs = model[:-1].transform(test)  # predict-time globals: the fitted step's transform
    expected = desc.transform(test)[list(desc.columns_)].to_numpy()
    np.testing.assert_allclose(graphs[0].global_features, expected[0])
    assert model.predict(test).shape == (1,)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(test), model.predict(test))


def test_grid_search_switches_the_descriptors_on_and_off():
    structures = ROW3 + OTHERS + [_salt("Cs", "I", 4.5), _salt("Rb", "Cl", 3.8),
                                  _salt("Ca", "O", 2.6)]
    y = np.arange(len(structures), dtype=float)
    model = Pipeline([("descriptors", MatminerDescriptors("magpie")),
                      ("graph", CrystalGraphFeaturizer(radius=5.0)),
                      ("cgcnn", _net())])
    grid = [{"descriptors__kind": [None], "graph__global_features": [None]},
            {"descriptors__kind": ["magpie"], "graph__global_features": ["all"],
             "descriptors__n_components": [None, 2]}]
    search = GridSearchCV(model, grid, cv=KFold(2), scoring="neg_mean_absolute_error",
                          error_score="raise").fit(structures, y)
    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_  # refitted on all rows; no descriptors: no globals
    assert best[-1].n_global_ == best[0].n_features_out_


def test_clone_keeps_the_parameters():
    desc = MatminerDescriptors("magpie+density", n_components=3, structure_column="s")
    assert clone(desc).get_params() == desc.get_params()


@pytest.mark.parametrize("check", [
    "check_estimator_cloneable", "check_estimator_repr", "check_parameters_default_constructible",
    "check_get_params_invariance", "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimators_unfitted", "check_mixin_order", "check_valid_tag_types",
])
def test_sklearn_checks_that_apply(check):
    getattr(estimator_checks, check)("MatminerDescriptors", MatminerDescriptors())


def test_docstring_examples_run():
    assert doctest.testmod(descriptors, raise_on_error=True).attempted > 0
