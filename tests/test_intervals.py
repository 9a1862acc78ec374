"""Conformal intervals (cgcnn_sk.estimators._intervals), MAPIE and CalibratedClassifierCV."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from mapie.regression import CrossConformalRegressor, SplitConformalRegressor
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from cgcnn_sk import (
    CGCNNClassifier,
    CGCNNEnsembleRegressor,
    CGCNNRegressor,
    ConformalRegressor,
    CrystalGraphFeaturizer,
    cross_fold_intervals,
)

TINY = {"max_epochs": 2, "train_split": None, "module__atom_fea_len": 8, "module__n_conv": 1,
        "module__h_fea_len": 8}


class _TooNarrow(RegressorMixin, BaseEstimator):
    """A fitted 'ensemble' on 1-column X: mean 2x and spread 0.3 * sigma(x), sigma = 0.1 + x.

    With y = 2x + sigma(x) * N(0, 1) its spread has the right shape and a third of the right
    size, like a deep ensemble's; the normalised score |y - 2x| / (0.3 sigma) is |N(0, 1)| / 0.3.
    """

    def fit(self, X, y):
        self.fitted_ = True
        return self

    def predict(self, X, return_std=False):
        x = np.asarray(X, dtype=float)[:, 0]
        return (2 * x, 0.3 * (0.1 + x)) if return_std else 2 * x


def _noisy(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    return x[:, None], 2 * x + (0.1 + x) * rng.normal(size=n)


def _covered(y, interval):
    return (interval[:, 0] <= y) & (y <= interval[:, 1])


# Coverage conditional on 2000 calibration rows varies with sd sqrt(c (1 - c) / 2002)
# (0.0104 at 68 %, 0.0049 at 95 %); 20000 test rows add sd 0.0033 / 0.0015. The tolerances
# are 3 sd of the sum.
TOLERANCE = {0.68: 0.033, 0.95: 0.016}


def test_normalised_intervals_cover_as_promised_on_a_known_noise():
    X_cal, y_cal = _noisy(2000, seed=1)
    X_new, y_new = _noisy(20000, seed=2)
    model = ConformalRegressor(_TooNarrow().fit(None, None), confidence_level=[0.68, 0.95],
                               conformity_score="std_normalized", prefit=True).fit(X_cal, y_cal)
    pred, interval = model.predict_interval(X_new)
    assert interval.shape == (20000, 2, 2)
    np.testing.assert_allclose(pred, 2 * X_new[:, 0])
    _, std = model.estimator_.predict(X_new, return_std=True)
    for j, level in enumerate([0.68, 0.95]):
        assert _covered(y_new, interval[:, :, j]).mean() == pytest.approx(
            level, abs=TOLERANCE[level])
        # the half-width is the known quantile of |N(0, 1)| / 0.3 times the spread, within
        # the quantile's sampling error on 2000 rows (under 4 %)
        scale = (interval[:, 1, j] - pred) / std
        np.testing.assert_allclose(scale, norm.ppf((1 + level) / 2) / 0.3, rtol=0.04)
    # the raw spread read as a Gaussian covers about a third as much (|N| <= 0.3 z)
    assert np.mean(np.abs(y_new - pred) <= std) == pytest.approx(2 * norm.cdf(0.3) - 1,
                                                                  abs=0.01)


def test_the_promise_is_marginal_a_constant_width_misses_the_noisy_rows():
    # Both scores keep 90 % over all rows; only the normalised one keeps it where the noise
    # is large (x > 0.8, sigma 0.9-1.1), which a constant width covers far less often.
    X_cal, y_cal = _noisy(2000, seed=3)
    X_new, y_new = _noisy(20000, seed=4)
    noisy = X_new[:, 0] > 0.8
    got = {}
    for score in ("absolute", "std_normalized"):
        model = ConformalRegressor(_TooNarrow().fit(None, None), conformity_score=score,
                                   prefit=True).fit(X_cal, y_cal)
        inside = _covered(y_new, model.predict_interval(X_new)[1])
        assert inside.mean() == pytest.approx(0.9, abs=0.025)
        got[score] = inside[noisy].mean()
    assert got["std_normalized"] == pytest.approx(0.9, abs=0.03)
    assert got["absolute"] < 0.8


def test_split_holds_out_the_calibration_rows_and_clones():
    X, y = _noisy(500, seed=5)
    model = ConformalRegressor(LinearRegression(), calibration_size=0.3, random_state=0)
    pred, interval = model.fit(X, y).predict_interval(X[:5])
    assert model.n_calibration_ == 150 and model.conformity_score_ == "absolute"
    assert model.estimator_ is not model.estimator
    assert interval.shape == (5, 2)  # one level: no level axis
    width = interval[:, 1] - interval[:, 0]
    np.testing.assert_allclose(width, width[0])  # absolute score: one width for all rows
    # the half-width is MAPIE's conformal quantile of the held-out absolute errors: the
    # ceil(0.9 * 151)-th = 136th smallest of the 150 scores
    assert width[0] / 2 == pytest.approx(np.sort(model.conformity_scores_)[135])
    np.testing.assert_allclose(pred, model.predict(X[:5]))
    assert pickle.loads(pickle.dumps(model)).predict_interval(X[:5])[1] == pytest.approx(
        interval)
    assert clone(model).get_params()["calibration_size"] == 0.3


def test_bad_settings_and_inputs_are_named():
    X, y = _noisy(40, seed=6)
    with pytest.raises(ValueError, match="8 calibration rows are too few for confidence_level"):
        ConformalRegressor(LinearRegression(), calibration_size=0.2).fit(X, y)
    with pytest.raises(ValueError, match=r"confidence_level must be one or more numbers in "
                                         r"\(0, 1\), got \[0.5, 1.2\]"):
        ConformalRegressor(LinearRegression(), confidence_level=[0.5, 1.2]).fit(X, y)
    with pytest.raises(NotFittedError):
        ConformalRegressor(LinearRegression(), prefit=True).fit(X, y)
    with pytest.raises(ValueError, match="'conformity_score' parameter"):
        ConformalRegressor(LinearRegression(), conformity_score="gamma").fit(X, y)
    one = CGCNNEnsembleRegressor(LinearRegression(), n_estimators=1).fit(X, y)
    with pytest.raises(ValueError, match="40 of 40 have none .*one-member ensemble"):
        ConformalRegressor(one, prefit=True, confidence_level=0.5).fit(X, y)


def test_cross_fold_intervals_never_use_a_folds_own_targets():
    rng = np.random.default_rng(7)
    y, pred, std = rng.normal(size=100), rng.normal(size=100), rng.uniform(0.5, 1, 100)
    groups = np.arange(100) % 4
    before = cross_fold_intervals(y, pred, std, groups)
    changed = y.copy()
    changed[groups == 0] += 100.0  # fold 0's targets, far off
    after = cross_fold_intervals(changed, pred, std, groups)
    np.testing.assert_array_equal(before[groups == 0], after[groups == 0])
    assert (after[groups != 0, 1] > before[groups != 0, 1]).all()  # the others widen
    # by hand: fold 1 at 68 % from the 75 scores of folds 0, 2, 3: the conformal quantile is
    # the ceil(0.68 * 76) = 52nd smallest, times each row's std
    scores = np.sort(np.abs(y - pred)[groups != 1] / std[groups != 1])
    np.testing.assert_allclose(before[groups == 1, 1, 0] - pred[groups == 1],
                               scores[51] * std[groups == 1])
    np.testing.assert_allclose(pred[groups == 1] - before[groups == 1, 0, 0],
                               scores[51] * std[groups == 1])


def test_cross_fold_intervals_name_bad_input():
    y = np.arange(10.0)
    with pytest.raises(ValueError, match="differ in length"):
        cross_fold_intervals(y, y[:9], np.ones(10), np.zeros(10))
    with pytest.raises(ValueError, match="1 distinct value"):
        cross_fold_intervals(y, y, np.ones(10), np.zeros(10), confidence_level=0.5)
    std = np.ones(10)
    std[3] = 0.0
    with pytest.raises(ValueError, match="1 of 10 have none .first at position 3"):
        cross_fold_intervals(y, y, std, np.arange(10) % 2, confidence_level=0.5)


# ---- our estimators inside MAPIE and scikit-learn's calibration, on tiny nets -------------

def test_conformal_regressor_around_a_cgcnn_ensemble_pipeline(small):
    structures, y = small
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
                     ("ens", CGCNNEnsembleRegressor(CGCNNRegressor(**TINY), n_estimators=2))])
    model = ConformalRegressor(pipe, confidence_level=0.5, calibration_size=6,
                               random_state=0).fit(structures, y)
    assert (model.conformity_score_, model.n_calibration_) == ("std_normalized", 6)
    pred, interval = model.predict_interval(structures[:4])
    _, std = model.estimator_.predict(structures[:4], return_std=True)
    # wider where the members disagree: one scale times each row's spread
    scale = (interval[:, 1] - pred) / std
    np.testing.assert_allclose(scale, scale[0], rtol=1e-6)
    np.testing.assert_allclose(pred - interval[:, 0], interval[:, 1] - pred, rtol=1e-6)


def test_conformal_regressor_takes_graphs_and_a_prefit_net(small):
    structures, y = small
    graphs = CrystalGraphFeaturizer(radius=6.0).fit_transform(structures)
    net = CGCNNRegressor(random_state=0, **TINY).fit(graphs[:12], y[:12])
    model = ConformalRegressor(net, confidence_level=0.5, prefit=True).fit(graphs[12:], y[12:])
    assert (model.conformity_score_, model.n_calibration_) == ("absolute", 8)
    pred, interval = model.predict_interval(graphs[:3])
    np.testing.assert_allclose(pred, net.predict(graphs[:3]).ravel(), rtol=1e-6)
    # 50 % of 8 scores: the ceil(0.5 * 9) = 5th smallest absolute error
    errors = np.sort(np.abs(y[12:] - net.predict(graphs[12:]).ravel()))
    np.testing.assert_allclose(interval[:, 1] - pred, errors[4], rtol=1e-5)


def test_mapie_split_conformal_takes_a_fitted_pipeline_of_structures(small):
    structures, y = small
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
                     ("ens", CGCNNEnsembleRegressor(CGCNNRegressor(**TINY), n_estimators=2))]
                    ).fit(structures[:12], y[:12])
    with pytest.warns(UserWarning, match="does not appear fitted"):  # MAPIE's attribute probe
        mapie = SplitConformalRegressor(pipe, confidence_level=0.5,
                                        conformity_score="std_normalized", prefit=True)
        mapie.conformalize(structures[12:], y[12:])
    mean, std = pipe.predict(structures[12:], return_std=True)
    np.testing.assert_allclose(mapie.conformity_scores, np.abs(y[12:] - mean) / std, rtol=1e-6)
    pred, interval = mapie.predict_interval(structures[:3])
    assert interval.shape == (3, 2, 1)
    assert (interval[:, 0, 0] < pred).all() and (pred < interval[:, 1, 0]).all()


def test_mapie_cross_conformal_refits_a_pipeline_per_fold(small):
    structures, y = small
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
                     ("net", CGCNNRegressor(random_state=0, **TINY))])
    mapie = CrossConformalRegressor(pipe, confidence_level=0.5, cv=KFold(3)).fit_conformalize(
        structures, y)
    # CV+ scores are the out-of-fold absolute errors of the same three (seeded) fits
    oof = cross_val_predict(pipe, structures, y, cv=KFold(3)).ravel()
    np.testing.assert_allclose(mapie.conformity_scores, np.abs(y - oof), rtol=1e-4)
    pred, interval = mapie.predict_interval(structures[:3])
    assert interval.shape == (3, 2, 1) and (interval[:, 0] <= interval[:, 1]).all()


def test_calibrated_classifier_cv_calibrates_a_cgcnn_classifier(small):
    structures, y = small
    labels = np.where(y > np.median(y), "large", "small")
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
                     ("clf", CGCNNClassifier(random_state=0, **TINY))])
    cal = CalibratedClassifierCV(pipe, cv=2, method="sigmoid").fit(structures, labels)
    proba = cal.predict_proba(structures)
    assert list(cal.classes_) == ["large", "small"] and len(cal.calibrated_classifiers_) == 2
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # a fitted classifier calibrated on other rows (FrozenEstimator: scikit-learn's prefit)
    train, held_out = np.arange(20) % 2 == 0, np.arange(20) % 2 == 1
    fitted = clone(pipe).fit(structures_at(structures, train), labels[train])
    frozen = CalibratedClassifierCV(FrozenEstimator(fitted), method="isotonic", cv=2)
    frozen.fit(structures_at(structures, held_out), labels[held_out])
    raw = fitted.predict_proba(structures_at(structures, held_out))[:, 1]
    calibrated = frozen.predict_proba(structures_at(structures, held_out))[:, 1]
    # isotonic calibration is a monotone map of the classifier's score
    order = np.argsort(raw)
    assert (np.diff(calibrated[order]) >= -1e-12).all()


def structures_at(structures, mask):
    return [s for s, keep in zip(structures, mask, strict=True) if keep]
