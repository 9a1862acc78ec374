"""Defaults that learn: CGCNNRegressor() with no arguments on a held-out part of jdft2d."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d


@pytest.mark.slow
def test_default_regressor_beats_the_mean_by_30_percent_on_held_out_jdft2d():
    # The accuracy issue's criterion: on a held-out 20 % of jdft2d the default pipeline's MAE
    # is at most 0.70x that of predicting the training mean (69.1 meV/atom on this split).
    # Before the new defaults (MSE loss, 100 epochs, early stopping on 10 %) it was 0.79x.
    structures, y = load_jdft2d()
    s_train, s_test, y_train, y_test = train_test_split(
        structures, y, test_size=0.2, random_state=0)
    model = Pipeline([("graph", CrystalGraphFeaturizer()),
                      ("cgcnn", CGCNNRegressor(random_state=0))]).fit(s_train, y_train)
    mae = np.mean(np.abs(model.predict(s_test) - y_test))
    dummy = np.mean(np.abs(np.mean(y_train) - y_test))
    assert dummy == pytest.approx(69.1, abs=0.05)
    assert mae <= 0.70 * dummy, f"MAE {mae:.2f} vs {0.70 * dummy:.2f} allowed"
