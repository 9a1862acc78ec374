"""Tests for cgcnn_sk.baselines: the matminer adapter and the random-forest pipeline."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Structure
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

import cgcnn_sk.baselines as baselines
from cgcnn_sk.baselines import MatminerFeaturizer, make_rf_baseline, structure_key
from cgcnn_sk.datasets import load_jdft2d, matbench_folds

ANG_TO_BOHR = 1.8897543773133647  # matminer's conversion factor


@pytest.fixture(scope="module")
def jdft2d_subset():
    structures, y = load_jdft2d()
    return structures[:80], y[:80]


@pytest.fixture
def empty_cache(monkeypatch):
    monkeypatch.setattr(baselines, "_RAW_CACHE", type(baselines._RAW_CACHE)())
    return baselines._RAW_CACHE


def _nacl(a: float = 5.64) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _po() -> Structure:
    return Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])


# -- the adapter --------------------------------------------------------------------------
def test_sine_coulomb_eigenvalues_match_hand_computation():
    a = 5.64
    features = MatminerFeaturizer(kind="scm").fit([_nacl(a)])
    eig = features.transform([_nacl(a)])[0]
    # diagonal 0.5 Z^2.4; off-diagonal Z_i Z_j / |sin^2(pi * (0.5, 0.5, 0.5)) . L| in Bohr
    d_na, d_cl = 0.5 * 11**2.4, 0.5 * 17**2.4
    off = 11 * 17 / (a * np.sqrt(3) * ANG_TO_BOHR)
    expected = np.linalg.eigvalsh([[d_na, off], [off, d_cl]])
    np.testing.assert_allclose(np.sort(eig), expected, rtol=1e-10)
    assert features.width_ == 2
    assert list(features.get_feature_names_out()) == [
        "sine coulomb matrix eig 0",
        "sine coulomb matrix eig 1",
    ]


def test_magpie_block_and_padding_to_the_training_width():
    features = MatminerFeaturizer().fit([_po(), _nacl()])
    assert features.parts_ == ["magpie", "scm"] and features.width_ == 2
    X = features.transform([_po(), _nacl()])
    assert X.shape == (2, 132 + 2) == (2, features.n_features_out_)
    names = features.get_feature_names_out()
    assert names[0] == "MagpieData minimum Number"
    assert names[131] == "MagpieData mode SpaceGroupNumber"
    assert X[0, 0] == 84 and X[1, 0] == 11 and X[1, 1] == 17  # min / max atomic number
    assert X[0, 132] == pytest.approx(0.5 * 84**2.4) and X[0, 133] == 0.0  # padded


def test_larger_test_structure_keeps_its_largest_eigenvalues():
    features = MatminerFeaturizer(kind="scm").fit([_po()])
    full = MatminerFeaturizer(kind="scm").fit([_nacl()]).transform([_nacl()])[0]
    cut = features.transform([_nacl()])
    assert cut.shape == (1, 1)
    assert cut[0, 0] == full[np.argmax(np.abs(full))]


def test_density_and_symmetry_sets(jdft2d_subset):
    structures, _ = jdft2d_subset
    features = MatminerFeaturizer(kind="density+symmetry").fit(structures[:5])
    X = features.transform(structures[:5])
    assert X.shape == (5, 7)
    assert list(features.get_feature_names_out()) == [
        "density", "vpa", "packing fraction",
        "spacegroup_num", "crystal_system_int", "is_centrosymmetric", "n_symmetry_ops",
    ]
    rho = structures[0].density
    assert X[0, 0] == pytest.approx(rho)


def test_accepts_dicts_and_cif_text_like_the_cgcnn_pipeline():
    features = MatminerFeaturizer().fit([_nacl()])
    as_dict = features.transform([_nacl().as_dict()])
    as_cif = features.transform([_nacl().to(fmt="cif")])
    np.testing.assert_allclose(as_dict, features.transform([_nacl()]))
    np.testing.assert_allclose(as_cif, as_dict, rtol=1e-6)


def test_features_are_cached_by_structure_content(empty_cache, monkeypatch):
    features = MatminerFeaturizer().fit([_nacl()])
    assert ("magpie", structure_key(_nacl())) in empty_cache
    assert structure_key(_nacl()) != structure_key(_nacl(5.65))

    def fail(*args, **kwargs):
        raise AssertionError("featurized again")

    monkeypatch.setattr(baselines, "_raw_features", fail)
    clone(features).fit([_nacl()])  # a fresh copy of the same structure: cache hit
    with pytest.raises(ValueError, match="AssertionError: featurized again"):
        features.transform([_nacl(5.65)])


def test_cache_drops_the_least_recently_used_entry(empty_cache, monkeypatch):
    monkeypatch.setattr(empty_cache, "max_bytes", 2 * 3 * 8)  # two rows of 3 density features
    a, b, c = _nacl(5.6), _nacl(5.7), _nacl(5.8)
    features = MatminerFeaturizer(kind="density")
    features.fit([a, b])
    features.transform([a])  # a is now the most recently used
    features.transform([c])  # over the bound: b goes (first-in-first-out would drop a)
    assert list(empty_cache) == [("density", structure_key(a)), ("density", structure_key(c))]


def test_disk_cache_serves_a_new_process_cache(tmp_path, empty_cache):
    first = MatminerFeaturizer(memory=tmp_path).fit_transform([_nacl(), _po()])
    assert any(tmp_path.rglob("output.pkl"))
    empty_cache.clear()
    again = MatminerFeaturizer(memory=str(tmp_path)).fit_transform([_nacl(), _po()])
    np.testing.assert_array_equal(first, again)


def test_parallel_featurization_matches_serial(jdft2d_subset, empty_cache):
    structures, _ = jdft2d_subset
    parallel = MatminerFeaturizer(n_jobs=2).fit_transform(structures[:6])
    empty_cache.clear()
    serial = MatminerFeaturizer().fit_transform(structures[:6])
    np.testing.assert_array_equal(parallel, serial)


# -- bad input ----------------------------------------------------------------------------
def test_unfeaturizable_structures_are_reported_by_position(empty_cache):
    disordered = Structure(Lattice.cubic(4), [{"Na": 0.5, "K": 0.5}, "Cl"],
                           [[0, 0, 0], [0.5, 0.5, 0.5]])
    dummy = Structure(Lattice.cubic(4), [DummySpecies("X"), "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="2 of 4 structures could not be featurized") as info:
        MatminerFeaturizer().fit([_nacl(), disordered, _po(), dummy])
    message = str(info.value)
    assert "item 1: [Na(KCl2)]" not in message  # formula is the pymatgen reduced formula
    assert "item 1: " in message and "SineCoulombMatrix: AttributeError" in message
    assert "item 3: [XCl] ElementProperty: KeyError: 'X'" in message
    assert "item 0" not in message and "item 2" not in message


def test_overlapping_atoms_give_the_linear_algebra_reason(empty_cache):
    overlap = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0]],
                        validate_proximity=False)
    with pytest.raises(ValueError, match=r"item 0: \[NaCl\] SineCoulombMatrix: LinAlgError"):
        MatminerFeaturizer(kind="scm").fit([overlap])


def test_nan_features_are_reported_not_kept(monkeypatch, empty_cache):
    real = baselines._raw_features

    def with_nan(part, key, structure, version):
        values = real(part, key, structure, version)
        if part == "magpie" and len(structure) == 1:
            values = values.copy()
            values[0] = np.nan
        return values

    monkeypatch.setattr(baselines, "_raw_features", with_nan)
    with pytest.raises(ValueError, match=r"item 1: \[Po\] ElementProperty gave NaN/inf for "
                                         r"\['MagpieData minimum Number'\]"):
        MatminerFeaturizer().fit([_nacl(), _po()])


def test_unreadable_items_are_reported_by_position():
    pattern = r"(?s)1 of 2 items could not be read as structures.*item 1 \(no_such_file"
    with pytest.raises(ValueError, match=pattern):
        MatminerFeaturizer().fit([_nacl(), "no_such_file.cif"])


def test_length_mismatch_fails_before_featurizing(monkeypatch):
    def fail(X):
        raise AssertionError("featurization started")

    monkeypatch.setattr(baselines, "coerce_structures", fail)
    with pytest.raises(ValueError, match="different lengths: 3 structures, 2 targets"):
        MatminerFeaturizer().fit([_nacl()] * 3, [1.0, 2.0])
    with pytest.raises(ValueError, match="different lengths: 3 structures, 2 targets"):
        make_rf_baseline(n_estimators=5).fit([_nacl()] * 3, [1.0, 2.0])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"kind": "magpie+foo"}, r"unknown feature set\(s\) \['foo'\]"),
        ({"kind": "scm+scm"}, "names a feature set twice"),
        ({"kind": ""}, r"unknown feature set\(s\) \[''\]"),
        ({"kind": 3}, "The 'kind' parameter of MatminerFeaturizer must be an instance of 'str'"),
        ({"n_jobs": 0}, r"The 'n_jobs' parameter of MatminerFeaturizer must be an int in the "
                        r"range \(-inf, -1\], an int in the range \[1, inf\) or None. Got 0"),
        ({"memory": 3}, "The 'memory' parameter of MatminerFeaturizer must be None, an instance "
                        "of 'str', an instance of 'os.PathLike' or an object implementing 'cache'"),
    ],
)
def test_bad_parameters_are_checked_in_fit(params, message):
    features = MatminerFeaturizer().set_params(**params)  # __init__ / set_params accept anything
    for call in (features.fit, features.fit_transform):
        with pytest.raises(ValueError, match=message):
            call([_nacl()])


def test_parameter_constraints_validate_the_defaults():
    # the constraints are scikit-learn's own (they used to be prose and crashed here)
    MatminerFeaturizer()._validate_params()
    MatminerFeaturizer(n_jobs=-1, memory="/tmp/x")._validate_params()


def test_factory_rejects_bad_kind_and_task():
    with pytest.raises(ValueError, match="unknown feature set"):
        make_rf_baseline(kind="cgcnn")
    with pytest.raises(ValueError, match="task must be 'regression' or 'classification'"):
        make_rf_baseline(task="clustering")


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError, match="MatminerFeaturizer"):
        MatminerFeaturizer().transform([_nacl()])


# -- the pipeline -------------------------------------------------------------------------
def test_pipeline_structure_and_parameters():
    pipe = make_rf_baseline(n_estimators=7, random_state=3, n_jobs=2, memory=None)
    assert [name for name, _ in pipe.steps] == ["matminer", "rf"]
    assert isinstance(pipe.named_steps["rf"], RandomForestRegressor)
    params = pipe.get_params()
    assert params["rf__n_estimators"] == 7 and params["rf__random_state"] == 3
    assert params["matminer__kind"] == "magpie+scm" and params["rf__max_features"] == 1.0
    assert clone(pipe).get_params()["matminer__n_jobs"] == 2
    assert isinstance(make_rf_baseline(task="classification").named_steps["rf"],
                      RandomForestClassifier)


def test_rf_learns_on_a_jdft2d_subset_and_is_reproducible(jdft2d_subset):
    structures, y = jdft2d_subset
    cv = KFold(2, shuffle=True, random_state=0)
    rf = cross_val_score(make_rf_baseline(n_estimators=60, random_state=0), structures, y,
                         cv=cv, scoring="neg_mean_absolute_error")
    dummy = cross_val_score(DummyRegressor(), np.zeros((len(y), 1)), y, cv=cv,
                            scoring="neg_mean_absolute_error")
    assert -rf.mean() < 0.85 * -dummy.mean()
    again = cross_val_score(make_rf_baseline(n_estimators=60, random_state=0), structures, y,
                            cv=cv, scoring="neg_mean_absolute_error")
    np.testing.assert_array_equal(rf, again)


def test_fitted_pipeline_pickles(jdft2d_subset):
    structures, y = jdft2d_subset
    pipe = make_rf_baseline(n_estimators=10, random_state=0).fit(structures[:40], y[:40])
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict(structures[40:50]),
                                  pipe.predict(structures[40:50]))


def test_classification_baseline(jdft2d_subset):
    structures, y = jdft2d_subset
    labels = (y > np.median(y)).astype(int)
    pipe = make_rf_baseline(n_estimators=20, random_state=0, task="classification")
    pipe.fit(structures[:60], labels[:60])
    assert set(pipe.predict(structures[60:])) <= {0, 1}
    assert pipe.predict_proba(structures[60:]).shape == (20, 2)


def test_grid_search_over_feature_sets_with_matbench_style_folds(jdft2d_subset):
    structures, y = jdft2d_subset
    folds = matbench_folds(len(y))[:2]
    search = GridSearchCV(
        make_rf_baseline(n_estimators=15, random_state=0),
        {"matminer__kind": ["magpie", "magpie+scm"]},
        cv=folds,
        scoring="neg_mean_absolute_error",
    ).fit(structures, y)
    # each candidate scores what a plain cross_val_score of that pipeline scores
    results = search.cv_results_
    for kind, score in zip(results["param_matminer__kind"], results["mean_test_score"],
                           strict=True):
        by_hand = cross_val_score(make_rf_baseline(kind=kind, n_estimators=15, random_state=0),
                                  structures, y, cv=folds, scoring="neg_mean_absolute_error")
        assert score == pytest.approx(by_hand.mean())
    best = search.best_estimator_.named_steps["matminer"]
    assert best.kind == search.best_params_["matminer__kind"]
    assert best.n_features_out_ == 132 + best.width_  # Magpie's 132, then the eigenvalues


def test_citations_come_from_matminer():
    citations = " ".join(MatminerFeaturizer().citations())
    assert "Ward" in citations and "Faber" in citations


@pytest.mark.slow
def test_reproduces_matbench_jdft2d_within_five_percent():
    structures, y = load_jdft2d()
    scores = cross_val_score(make_rf_baseline(random_state=0, n_jobs=2), structures, y,
                             cv=matbench_folds(len(y)), scoring="neg_mean_absolute_error")
    assert abs(-scores.mean() / 50.04 - 1) <= 0.05
