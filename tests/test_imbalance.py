"""Tests of the classifier's class weights and its early-stopping metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_small_structures
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from skorch.helper import predefined_split

from cgcnn_sk import CGCNNClassifier, CrystalGraphFeaturizer
from cgcnn_sk.estimators._imbalance import class_weights
from cgcnn_sk.graph._collate import GraphDataset

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1)


@pytest.fixture(scope="module")
def data():
    """20 crystals; label "big" for the 5 largest volumes per atom (15 "small", 5 "big")."""
    structures, volume = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    labels = np.where(volume >= np.sort(volume)[-5], "big", "small")
    assert (labels == "big").sum() == 5
    return graphs, labels


def test_balanced_weights_by_hand():
    # n / (k * count): 20 / (2 * 15) and 20 / (2 * 5)
    y = ["small"] * 15 + ["big"] * 5
    np.testing.assert_allclose(class_weights("balanced", y), [20 / 10, 20 / 30])  # big, small
    np.testing.assert_allclose(class_weights({"big": 4.0}, y), [4.0, 1.0])
    assert class_weights(None, y) is None


@pytest.mark.parametrize(
    "class_weight, match",
    [
        ("balance", "class_weight must be 'balanced', a dict"),
        ({"huge": 2.0}, r"class_weight has labels \['huge'\] that are not in y's classes"),
        ({"big": -1.0}, "class_weight values must be finite and >= 0"),
    ],
)
def test_bad_class_weight(class_weight, match):
    with pytest.raises(ValueError, match=match):
        class_weights(class_weight, ["big", "small"])


def test_balanced_weights_reach_the_criterion(data):
    """criterion_.weight is n/(k*count), and the recorded validation loss is weighted with it.

    lr=1e-12 (the constraints ask for lr > 0) and one epoch: the module at the end equals the
    one that was validated, so the weighted cross-entropy of its logits on the validation
    crystals is the valid_loss.
    """
    graphs, labels = data
    valid = np.arange(0, 20, 2)
    train = np.setdiff1d(np.arange(20), valid)
    clf = CGCNNClassifier(
        max_epochs=1, lr=1e-12, patience=None, random_state=0, class_weight="balanced",
        train_split=predefined_split(GraphDataset(graphs[valid], (labels[valid] == "small")
                                                  .astype(np.int64))),
        batch_size=64, **SMALL,
    ).fit(graphs[train], labels[train])
    n_big = int((labels[train] == "big").sum())
    expected = [10 / (2 * n_big), 10 / (2 * (10 - n_big))]
    np.testing.assert_allclose(clf.criterion_.weight.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(clf.class_weight_, expected)
    logits = clf.forward(graphs[valid], training=False)
    codes = torch.as_tensor((labels[valid] == "small").astype(np.int64))
    weighted = torch.nn.functional.cross_entropy(
        logits, codes, weight=torch.tensor(expected, dtype=torch.float32))
    plain = torch.nn.functional.cross_entropy(logits, codes)
    assert clf.history[-1, "valid_loss"] == pytest.approx(float(weighted), rel=1e-5)
    assert abs(float(weighted) - float(plain)) > 1e-3  # the weights change the number


def test_criterion_weight_and_class_weight_conflict(data):
    graphs, labels = data
    clf = CGCNNClassifier(max_epochs=1, train_split=None, class_weight="balanced",
                          criterion__weight=torch.ones(2), **SMALL)
    with pytest.raises(ValueError, match="class_weight and criterion__weight both set"):
        clf.fit(graphs, labels)


@pytest.mark.parametrize("monitor", ["roc_auc", "balanced_accuracy", "loss"])
def test_monitored_metric_picks_the_restored_epoch(data, monitor):
    """Early stopping stops `patience` epochs after the best monitored epoch, and restores it.

    The restored module scores, on the validation crystals, what the history recorded for
    the best epoch (the loss, or the score recomputed with sklearn).
    """
    graphs, labels = data
    valid = np.array([0, 3, 6, 9, 12, 15, 16, 18, 19, 5])
    train = np.setdiff1d(np.arange(20), valid)
    codes = np.searchsorted(["big", "small"], labels[valid])
    clf = CGCNNClassifier(
        max_epochs=40, patience=3, lr=0.02, random_state=1, early_stopping_monitor=monitor,
        train_split=predefined_split(GraphDataset(graphs[valid], codes)), **SMALL,
    ).fit(graphs[train], labels[train])
    key = "valid_loss" if monitor == "loss" else f"valid_{monitor}"
    values = np.asarray(clf.history[:, key])
    best = int(np.argmin(values)) if monitor == "loss" else int(np.argmax(values))
    assert len(values) < 40, "early stopping should have stopped this run"
    assert len(values) == best + 1 + 3  # three epochs without improvement after the best
    proba = clf.predict_proba(graphs[valid])
    if monitor == "roc_auc":
        restored = roc_auc_score(codes, proba[:, 1])
    elif monitor == "balanced_accuracy":
        restored = balanced_accuracy_score(codes, proba.argmax(axis=1))
    else:
        restored = float(torch.nn.functional.cross_entropy(
            torch.log(torch.as_tensor(proba)), torch.as_tensor(codes)))
    assert restored == pytest.approx(values[best], rel=1e-5)


def test_monitor_errors_and_clone(data):
    graphs, labels = data
    with pytest.raises(ValueError, match=r"early_stopping_monitor='f1' is not one of \['loss'"):
        CGCNNClassifier(early_stopping_monitor="f1", **SMALL).fit(graphs, labels)
    with pytest.raises(ValueError, match="scores the validation split, but train_split=None"):
        CGCNNClassifier(early_stopping_monitor="roc_auc", train_split=None, max_epochs=1,
                        **SMALL).fit(graphs, labels)
    clf = clone(CGCNNClassifier(class_weight={"big": 3.0}, early_stopping_monitor="roc_auc"))
    assert clf.get_params()["class_weight"] == {"big": 3.0}
    assert clf.get_params()["early_stopping_monitor"] == "roc_auc"
