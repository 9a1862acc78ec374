"""CGCNNEnsembleRegressor: seeded members, their mean and spread, inside a Pipeline."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNEnsembleRegressor, CGCNNRegressor, CrystalGraphFeaturizer


def test_ensemble_seeds_members_and_returns_their_spread():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=40)
    ens = CGCNNEnsembleRegressor(SGDRegressor(max_iter=5, tol=None), n_estimators=3,
                                 random_state=7).fit(X, y)
    assert ens.seeds_ == [7, 8, 9]
    assert [m.random_state for m in ens.ensemble_.estimators_] == [7, 8, 9]
    each = np.column_stack([m.predict(X) for m in ens.ensemble_.estimators_])
    mean, std = ens.predict(X, return_std=True)
    np.testing.assert_allclose(mean, each.mean(axis=1))
    np.testing.assert_allclose(std, each.std(axis=1))
    assert std.min() > 0  # differently seeded SGD runs differ


def test_ensemble_seeds_a_wrapped_cgcnn(nacl_primitive):
    wrapped = TransformedTargetRegressor(CGCNNRegressor(max_epochs=1), func=np.log,
                                         inverse_func=np.exp)
    ens = CGCNNEnsembleRegressor(wrapped, n_estimators=2, random_state=3)
    assert [m.regressor.random_state for _, m in ens.members()] == [3, 4]


def test_ensemble_members_draw_seeds_from_a_random_state_object():
    ens = CGCNNEnsembleRegressor(SGDRegressor(), n_estimators=3,
                                 random_state=np.random.RandomState(0))
    expected = np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=3).tolist()
    assert ens.member_seeds() == expected
    assert CGCNNEnsembleRegressor(SGDRegressor(), random_state=None).member_seeds() == [None] * 5


def test_ensemble_rejects_a_bad_member_count():
    with pytest.raises(ValueError, match="'n_estimators' parameter"):
        CGCNNEnsembleRegressor(SGDRegressor(), n_estimators=0).fit([[0.0], [1.0]], [0.0, 1.0])


def test_cgcnn_ensemble_in_a_pipeline_is_reproducible_and_pickles(small_structures):
    small_structures, y = small_structures
    net = CGCNNRegressor(max_epochs=2, train_split=None, module__atom_fea_len=8,
                         module__n_conv=1, module__h_fea_len=8)

    def fit():
        return Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
                         ("ens", CGCNNEnsembleRegressor(net, n_estimators=2, n_jobs=2))]
                        ).fit(small_structures, y)

    pipe = fit()
    mean, std = pipe.predict(small_structures, return_std=True)
    members = pipe["ens"].member_predictions(pipe["graph"].transform(small_structures))
    assert members.shape == (len(y), 2)
    np.testing.assert_allclose(mean, members.mean(axis=1))
    np.testing.assert_allclose(std, members.std(axis=1))
    assert not np.allclose(members[:, 0], members[:, 1])  # seeds 0 and 1 differ
    np.testing.assert_array_equal(fit().predict(small_structures), mean)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict(small_structures), mean)
