"""Defaults that learn: the estimators with no arguments on held-out real data.

* ``CGCNNRegressor()`` on a held-out 20 % of jdft2d;
* ``CGCNNClassifier()`` on metal vs non-metal perovskites (``../shared/data``).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNClassifier, CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d, load_perovskites


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


@pytest.fixture
def perovskite_metals(shared_data):
    """Metal (0) vs non-metal (1, band gap > 0) on 2,000 perovskites, split 80/20.

    As ``benchmarks/bench_defaults.py``: a stratified subsample of ``perov5/val.csv.gz``
    (3.8 % non-metals), then a stratified 80/20 split, both with ``random_state=0``.
    """
    structures, gap = load_perovskites(shared_data / "perov5" / "val.csv.gz", target="ind_gap")
    labels = (gap > 0).astype(int)
    keep, _ = train_test_split(np.arange(len(labels)), train_size=2000, stratify=labels,
                               random_state=0)
    labels = labels[keep]
    tr, te = train_test_split(np.arange(2000), test_size=0.2, stratify=labels, random_state=0)
    return ([structures[keep[i]] for i in tr], labels[tr],
            [structures[keep[i]] for i in te], labels[te])


def _held_out_proba(data):
    s_train, y_train, s_test, _ = data
    model = Pipeline([("graph", CrystalGraphFeaturizer()),
                      ("cgcnn", CGCNNClassifier(random_state=0))])
    return model.fit(s_train, y_train).predict_proba(s_test)[:, 1]


@pytest.mark.slow
def test_default_classifier_ranks_non_metals_above_metals_on_held_out_perovskites(
        perovskite_metals):
    # CGCNNClassifier() on a 3.8 %-minority task. Measured (benchmarks/bench_defaults.py):
    # held-out ROC AUC 0.677, and 0.80-0.86 in a 3-fold CV over the training rows. The bound
    # is "better than chance": 0.60 against the 0.5 of any constant predictor, 0.077 below
    # the measurement, about one standard error of an AUC from 15 positives and 385 negatives
    # (Hanley & McNeil: 0.078 at 0.677).
    # Balanced accuracy is no criterion for the defaults: unweighted cross-entropy leaves
    # them at the majority class (0.5); class_weight="balanced" is the lever for that.
    _, _, _, y_test = perovskite_metals
    auc = roc_auc_score(y_test, _held_out_proba(perovskite_metals))
    assert auc >= 0.60, f"held-out ROC AUC {auc:.3f}"
