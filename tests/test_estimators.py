"""Tests of CGCNNRegressor and CGCNNClassifier (cgcnn_sk.estimators).

scikit-learn's estimator checks: the ones that do not need numeric ``X`` run in
``test_sklearn_checks``. Skipped, with the reason:

* every check that fits or predicts on a generated numeric array (``check_fit2d_*``,
  ``check_regressors_train``, ``check_estimators_dtypes``, ``check_estimators_pickle``,
  ``check_fit_idempotent``, ``check_n_features_in``, ``check_dict_unchanged``,
  ``check_estimators_nan_inf``, ``check_estimators_empty_data_messages``, ...): X here is a
  sequence of crystal graphs, and a numeric array is rejected with a TypeError that names the
  item and says to put a CrystalGraphFeaturizer first. The behaviours those checks protect
  are tested here on graphs instead: pickle, clone, fit returns self, reproducibility,
  NaN/inf targets, length mismatch, not-fitted errors.
* ``check_no_attributes_set_in_init``: skorch's ``NeuralNet.__init__`` itself sets
  ``history_``, ``initialized_``, ``virtual_params_`` and the ``iterator_*__*`` keyword
  parameters; that is skorch's design, not ours.
* ``check_set_params``: it sets parameters to floats such as ``-inf``, and skorch's own
  ``set_params`` fails on that (``_params_to_validate.add``) for a plain
  ``NeuralNetRegressor`` too.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import make_small_structures
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks
from skorch.callbacks import Callback

from cgcnn_sk import CGCNNClassifier, CGCNNRegressor
from cgcnn_sk.graph._crystal import CrystalGraphs
from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer
from cgcnn_sk.nn._model import CGCNN

SMALL = dict(module__atom_fea_len=16, module__h_fea_len=16, module__n_conv=2)


@pytest.fixture(scope="module")
def data():
    """20 small crystals as graphs (radius 6, M 8) and their volume per atom."""
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    return structures, graphs, y


@pytest.fixture(scope="module")
def fitted(data):
    """A small regressor fitted for 3 epochs with a validation split (don't refit)."""
    _, graphs, y = data
    return CGCNNRegressor(max_epochs=3, train_split="auto", random_state=0, **SMALL).fit(
        graphs, y)


def scaled_structures(n_scales=5, seed=0):
    """The 20 prototypes, each at ``n_scales`` random volumes: (structures, volume per atom)."""
    base, _ = make_small_structures()
    rng = np.random.default_rng(seed)
    out = []
    for s in base:
        for f in rng.uniform(0.9, 1.15, n_scales):
            t = s.copy()
            t.scale_lattice(s.volume * f**3)
            out.append(t)
    return out, np.array([s.volume / len(s) for s in out])


# ---- fit / predict ------------------------------------------------------------------------


def test_fit_returns_self_and_learned_attributes(data, fitted):
    _, graphs, y = data
    assert fitted.n_atom_features_ == 92
    assert fitted.n_bond_features_ == 31  # 0, 0.2, ..., 6.0
    assert fitted.gaussian_ == (0.0, 0.2, 6.0)
    assert fitted.n_outputs_ == 1
    np.testing.assert_allclose(fitted.target_mean_, [y.mean()])
    np.testing.assert_allclose(fitted.target_scale_, [y.std()])
    assert isinstance(fitted.module_, CGCNN)
    assert fitted.module_.embedding.in_features == 92
    assert fitted.module_.convs[0].nbr_fea_len == 31
    pred = fitted.predict(graphs)
    assert pred.shape == (20,)
    assert pred.dtype == np.float64


def test_history_has_losses_and_mae(fitted):
    assert len(fitted.history) == 3
    for key in ("train_loss", "valid_loss", "train_mae", "valid_mae", "event_lr"):
        values = fitted.history[:, key]
        assert len(values) == 3 and np.all(np.isfinite(values)), key
    # cosine schedule from lr down towards 0
    lrs = fitted.history[:, "event_lr"]
    assert lrs[0] == pytest.approx(3e-3) and lrs[2] < lrs[1] < lrs[0]


def test_list_and_crystalgraphs_give_same_predictions(data, fitted):
    _, graphs, _ = data
    np.testing.assert_array_equal(fitted.predict(list(graphs)), fitted.predict(graphs))
    # sklearn-style index arrays on CrystalGraphs
    # (another batch composition: equal up to float summation order)
    np.testing.assert_allclose(fitted.predict(graphs[[3, 1]]), fitted.predict(graphs)[[3, 1]],
                               rtol=1e-6)


def test_random_state_reproducible(data):
    _, graphs, y = data
    kw = dict(max_epochs=2, **SMALL)
    p1 = CGCNNRegressor(random_state=3, **kw).fit(graphs, y).predict(graphs)
    p2 = CGCNNRegressor(random_state=3, **kw).fit(list(graphs), y).predict(graphs)
    p3 = CGCNNRegressor(random_state=4, **kw).fit(graphs, y).predict(graphs)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_adam_defaults_to_the_fused_update_unless_told(data):
    _, graphs, y = data
    kw = dict(max_epochs=1, random_state=0, **SMALL)
    net = CGCNNRegressor(**kw).fit(graphs, y)
    assert net.optimizer_.defaults["fused"] is True
    # the fused kernel is the same AdamW update: a for-loop fit predicts (nearly) the same
    loop = CGCNNRegressor(optimizer__foreach=False, **kw).fit(graphs, y)
    assert not loop.optimizer_.defaults["fused"]
    np.testing.assert_allclose(net.predict(graphs), loop.predict(graphs), rtol=1e-4, atol=1e-4)
    sgd = CGCNNRegressor(optimizer=torch.optim.SGD, **kw).fit(graphs, y)
    assert "fused" not in sgd.optimizer_.defaults or not sgd.optimizer_.defaults["fused"]


def test_random_state_none_is_random(data):
    _, graphs, y = data
    kw = dict(max_epochs=1, **SMALL)
    p1 = CGCNNRegressor(**kw).fit(graphs, y).predict(graphs)
    p2 = CGCNNRegressor(**kw).fit(graphs, y).predict(graphs)
    assert not np.allclose(p1, p2)


def test_random_state_does_not_touch_global_torch_rng(data):
    _, graphs, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_target_standardisation_is_exact(data):
    """Fitting a * y + b gives a * predictions + b: the net only ever sees standardised y."""
    _, graphs, y = data
    kw = dict(max_epochs=2, random_state=0, **SMALL)
    p = CGCNNRegressor(**kw).fit(graphs, y).predict(graphs)
    p_scaled = CGCNNRegressor(**kw).fit(graphs, 1000.0 * y - 7.0).predict(graphs)
    np.testing.assert_allclose(p_scaled, 1000.0 * p - 7.0, rtol=1e-6)


def test_multi_target(data):
    _, graphs, y = data
    Y = np.column_stack([y, -2 * y + 1])
    net = CGCNNRegressor(max_epochs=2, random_state=0, **SMALL).fit(graphs, Y)
    assert net.n_outputs_ == 2
    assert net.module_.fc_out.out_features == 2
    assert net.predict(graphs).shape == (20, 2)
    # a (n, 1) column stays 2-D
    col = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, y[:, None])
    assert col.predict(graphs).shape == (20, 1)


def test_no_validation_split_and_no_early_stopping(data):
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=2, train_split=None, patience=None, **SMALL)
    net.fit(graphs, y)
    assert "valid_loss" not in net.history[-1]
    assert "early_stopping" not in dict(net.callbacks_)


class _WeightsPerEpoch(Callback):
    """Keep a copy of the module's weights at the end of every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states_ = []

    def on_epoch_end(self, net, **kwargs):
        self.states_.append({k: v.clone() for k, v in net.module_.state_dict().items()})


def test_early_stopping_stops_and_restores_the_best_weights(data):
    _, graphs, y = data
    keep = _WeightsPerEpoch()
    net = CGCNNRegressor(max_epochs=50, patience=2, lr=0.5, train_split="auto",
                         random_state=0, callbacks=[("keep", keep)], **SMALL)
    net.fit(graphs, y)
    losses = net.history[:, "valid_loss"]
    assert len(losses) < 50
    best = int(np.argmin(losses))
    assert best < len(losses) - 1  # the weights at the end are not the best ones
    for key, value in net.module_.state_dict().items():
        torch.testing.assert_close(value, keep.states_[best][key], rtol=0, atol=0)


class _FixedSplit:
    """A skorch train_split with known validation rows."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        train = [i for i in range(len(dataset)) if i not in self.valid]
        return (torch.utils.data.Subset(dataset, train),
                torch.utils.data.Subset(dataset, list(self.valid)))


def test_valid_mae_and_accuracy_are_in_original_units_and_labels(data):
    """The history's valid_mae / valid_acc equal what predict gives on the validation rows."""
    _, graphs, y = data
    valid = [1, 4, 7, 12, 18]
    net = CGCNNRegressor(max_epochs=2, patience=None, train_split=_FixedSplit(valid),
                         random_state=0, **SMALL).fit(graphs, 1000.0 * y)
    mae = np.mean(np.abs(net.predict(graphs[valid]) - 1000.0 * y[valid]))
    assert net.history[-1, "valid_mae"] == pytest.approx(mae, rel=1e-5)
    assert net.history[-1, "train_mae"] > 1.0  # original units (standardised: ~0.5-1)
    labels = np.where(y > np.median(y), "large", "small")
    clf = CGCNNClassifier(max_epochs=2, patience=None, train_split=_FixedSplit(valid),
                          random_state=0, **SMALL).fit(graphs, labels)
    acc = np.mean(clf.predict(graphs[valid]) == labels[valid])
    assert clf.history[-1, "valid_acc"] == pytest.approx(acc)


def test_each_warm_fit_runs_its_own_cosine_schedule(data):
    # The reported bug: skorch continues a schedule from the history's length, so the second
    # fit ran the cosine's second half-period, from 0 back up to lr.
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=4, lr=1e-3, patience=None, warm_start=True,
                         random_state=0, **SMALL)
    cosine = 1e-3 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2  # 1, .85, .5, .15 (x lr)
    net.fit(graphs, y)
    np.testing.assert_allclose(net.history[:, "event_lr"], cosine, rtol=1e-6)
    net.fit(graphs, y)
    np.testing.assert_allclose(net.history[4:, "event_lr"], cosine, rtol=1e-6)
    assert net.history[:, "fit_epoch"] == [1, 2, 3, 4, 1, 2, 3, 4]
    # a net whose callbacks lack the resume callback (pickled without it) gets it back
    net.callbacks_ = [(n, cb) for n, cb in net.callbacks_ if n != "fit_epoch"]
    net.fit(graphs, y)
    assert net.history[8:, "fit_epoch"] == [1, 2, 3, 4]


def test_seeding_forks_the_cuda_generators_too(monkeypatch):
    # torch.manual_seed seeds every CUDA device as well; fork_rng(devices=[]) restored only
    # the CPU generator, leaving the global CUDA seed changed. Without a GPU: check the
    # devices handed to fork_rng.
    from cgcnn_sk.estimators import _base as _estimators

    seen = []
    real = torch.random.fork_rng

    def spy(devices=None, **kwargs):
        seen.append(devices)
        return real(devices=[], **kwargs)

    monkeypatch.setattr(torch.random, "fork_rng", spy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with _estimators._fork_rng():
        pass
    assert seen == [[0, 1]]


def test_diverging_training_stops_with_one_clear_error(data):
    _, graphs, y = data
    # MSE: the squared error overflows at once (L1 grows only linearly, diverging later)
    net = CGCNNRegressor(lr=1e4, module__batchnorm=False, max_epochs=10, random_state=0,
                         criterion=torch.nn.MSELoss, train_split="auto", **SMALL)
    with pytest.raises(FloatingPointError,
                       match=r"CGCNNRegressor: the (training|validation) loss became (nan|inf) "
                             r"in epoch 1 \(batch \d+\): training diverged\. Try a lower lr "
                             r"\(now 10000\) or module__batchnorm=True"):
        net.fit(graphs, y)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_grid_search_records_a_diverging_candidate_as_failed(data):
    from sklearn.exceptions import FitFailedWarning

    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=2, module__batchnorm=False, random_state=0,
                         criterion=torch.nn.MSELoss, **SMALL)
    search = GridSearchCV(net, {"lr": [1e-3, 1e4]}, cv=KFold(2), error_score=np.nan,
                          scoring="neg_mean_absolute_error")
    with pytest.warns(FitFailedWarning, match=r"(?s)2 fits failed.*training diverged"):
        search.fit(graphs, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


def test_predict_with_non_finite_outputs_raises(data, fitted):
    _, graphs, _ = data
    net = pickle.loads(pickle.dumps(fitted))
    with torch.no_grad():
        net.module_.fc_out.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError,
                       match=r"non-finite outputs for 20 of 20 crystals \(first X\[0\]\); "
                             r"the weights are not finite"):
        net.predict(graphs)


def test_skorch_classes_parameter_fixes_the_outputs(data):
    # The reported bug: classes= was ignored and the labels found in y used instead.
    _, graphs, y = data
    labels = np.where(y > np.median(y), "large", "small")
    clf = CGCNNClassifier(classes=["small", "large", "huge"], max_epochs=1, random_state=0,
                          **SMALL).fit(graphs, labels)
    assert clf.classes_.tolist() == ["small", "large", "huge"]
    assert clf.module_.fc_out.out_features == 3
    proba = clf.predict_proba(graphs)
    assert proba.shape == (20, 3)
    np.testing.assert_array_equal(clf.predict(graphs), clf.classes_[proba.argmax(axis=1)])
    with pytest.raises(ValueError, match=r"y\[0\] = 'tiny' is not one of the classes given"):
        CGCNNClassifier(classes=["small", "large"], max_epochs=1).fit(graphs, ["tiny"] * 20)


def test_module_params_are_routed(data):
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL)
    net.set_params(module__pooling="max", module__batchnorm=False, module__n_h=2)
    assert net.get_params()["module__pooling"] == "max"
    net.fit(graphs, y)
    assert net.module_.pooling == "max"
    assert len(net.module_.fcs) == 1
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.module_.modules())


def test_changing_featurizer_settings_needs_no_module_params(data):
    structures, _, y = data
    graphs = CrystalGraphFeaturizer(radius=5.0, step=0.5, atom_features="onehot").fit_transform(
        structures
    )
    net = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, y)
    assert net.module_.convs[0].nbr_fea_len == 11
    assert net.n_atom_features_ == graphs[0].n_atom_features


# ---- clone, pickle, save/load ---------------------------------------------------------------


def test_clone(fitted):
    new = clone(fitted)
    assert new.get_params()["module__atom_fea_len"] == 16
    assert new.random_state == 0
    assert not hasattr(new, "target_mean_")
    with pytest.raises(NotFittedError):
        new.predict([])


def test_clone_refit_gives_identical_predictions(data, fitted):
    _, graphs, y = data
    np.testing.assert_array_equal(clone(fitted).fit(graphs, y).predict(graphs),
                                  fitted.predict(graphs))


def test_pickle_round_trip(data, fitted):
    _, graphs, _ = data
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(graphs), fitted.predict(graphs))


def test_save_load_params_round_trip(tmp_path, data, fitted):
    _, graphs, _ = data
    fitted.save_params(
        f_params=tmp_path / "params.pt", f_optimizer=tmp_path / "opt.pt",
        f_history=tmp_path / "history.json",
    )
    new = CGCNNRegressor(**SMALL)
    new.load_params(
        f_params=tmp_path / "params.pt", f_optimizer=tmp_path / "opt.pt",
        f_history=tmp_path / "history.json",
    )
    np.testing.assert_array_equal(new.predict(graphs), fitted.predict(graphs))
    np.testing.assert_allclose(new.target_mean_, fitted.target_mean_)
    assert len(new.history) == len(fitted.history)
    # the module part of the file is a plain CGCNN state_dict plus one metadata entry
    state = torch.load(tmp_path / "params.pt", weights_only=True)
    meta = state.pop("_cgcnn_sk_meta")
    assert meta["n_bond_features"] == 31
    CGCNN(92, 31, atom_fea_len=16, h_fea_len=16, n_conv=2).load_state_dict(state)


def test_initialize_without_data_explains(fitted):
    with pytest.raises(NotFittedError, match="cannot build its module before seeing data"):
        CGCNNRegressor().initialize()


# ---- errors -----------------------------------------------------------------------------------


def test_raw_structures_need_a_featurizer(data):
    structures, _, y = data
    with pytest.raises(TypeError, match=r"X\[0\] is a Structure, not a CrystalGraph.*put a "
                       r"CrystalGraphFeaturizer before CGCNNRegressor"):
        CGCNNRegressor().fit(structures, y)
    with pytest.raises(TypeError, match="put a CrystalGraphFeaturizer before CGCNNClassifier"):
        CGCNNClassifier().fit(structures, y > 20)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_targets(data, bad):
    _, graphs, y = data
    y = y.copy()
    y[4] = bad
    with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
        CGCNNRegressor().fit(graphs, y)


def test_length_mismatch(data):
    _, graphs, y = data
    with pytest.raises(ValueError, match="X has 20 graphs but y has 19 rows"):
        CGCNNRegressor().fit(graphs, y[:-1])
    with pytest.raises(ValueError, match="X has 20 graphs but y has 19 rows"):
        CGCNNClassifier().fit(graphs, (y > 20)[:-1])


def test_predict_before_fit(data):
    _, graphs, _ = data
    with pytest.raises(NotFittedError, match="This CGCNNRegressor instance is not initialized"):
        CGCNNRegressor().predict(graphs)
    with pytest.raises(NotFittedError, match="This CGCNNClassifier instance is not initialized"):
        CGCNNClassifier().predict_proba(graphs)


def test_bad_module_parameter_lists_choices(data):
    _, graphs, y = data
    net = CGCNNRegressor(module__activation="swish", max_epochs=1)
    with pytest.raises(ValueError, match=r"activation='swish' is not one of \['elu'"):
        net.fit(graphs, y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"max_epochs": -1}, r"'max_epochs' parameter of CGCNNRegressor must be an int in the "
                             r"range \[0, inf\)\. Got -1"),
        ({"max_epochs": 2.0}, r"'max_epochs' parameter .* Got 2\.0"),
        ({"batch_size": 0}, r"'batch_size' parameter .* int in the range \[1, inf\) or .*-1"),
        ({"patience": 0}, r"'patience' parameter .* range \[1, inf\) or None\. Got 0"),
        ({"lr": 0.0}, r"'lr' parameter .* range \(0\.0, inf\)\. Got 0\.0"),
        ({"train_split": "valid"}, r"'train_split' parameter .* \{'auto'\}, None or a callable"),
        ({"random_state": "seed"}, r"'random_state' parameter .* Got 'seed'"),
    ],
)
def test_bad_parameters_named_in_fit(data, params, message):
    """scikit-learn's constraint check names the estimator, the parameter and the value."""
    from sklearn.utils._param_validation import InvalidParameterError

    _, graphs, y = data
    net = CGCNNRegressor(**params)  # __init__ only stores
    with pytest.raises(InvalidParameterError, match=message):
        net.fit(graphs, y)
    # set_params then fit is checked again, in the classifier too
    clf = CGCNNClassifier(max_epochs=1).set_params(**params)
    with pytest.raises(InvalidParameterError, match=message.replace("Regressor", "Classifier")):
        clf.fit(graphs, y > np.median(y))


def test_other_featurizer_at_predict(data, fitted):
    structures, _, _ = data
    other = CrystalGraphFeaturizer(radius=6.0, step=0.5).fit_transform(structures)
    with pytest.raises(ValueError, match="was fitted with 92 and gaussian=.0.0, 0.2, 6.0."):
        fitted.predict(other)


def test_mixed_featurizations_in_fit(data):
    structures, graphs, y = data
    other = CrystalGraphFeaturizer(radius=5.0).fit_transform(structures[:1])
    mixed = list(graphs[:3]) + [other[0]]
    with pytest.raises(ValueError, match=r"X\[3\] has gaussian=\(0.0, 0.2, 5.0\)"):
        CGCNNRegressor().fit(mixed, y[:4])


# ---- classifier -----------------------------------------------------------------------------


def test_classifier_binary_string_labels(data):
    _, graphs, y = data
    labels = np.where(y > np.median(y), "large", "small")
    clf = CGCNNClassifier(max_epochs=2, random_state=0, **SMALL).fit(graphs, labels)
    assert clf.classes_.tolist() == ["large", "small"]
    assert clf.module_.fc_out.out_features == 2
    proba = clf.predict_proba(graphs)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = clf.predict(graphs)
    assert set(pred) <= {"large", "small"}
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    for key in ("train_loss", "valid_loss", "train_acc", "valid_acc"):
        assert key in clf.history[-1]
    assert clf.score(graphs, labels) == np.mean(pred == labels)


def test_classifier_multiclass_pickle_and_save(tmp_path, data):
    _, graphs, y = data
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))  # 0, 1, 2
    clf = CGCNNClassifier(max_epochs=2, random_state=0, **SMALL).fit(graphs, labels)
    assert clf.predict_proba(graphs).shape == (20, 3)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(graphs), clf.predict_proba(graphs))
    clf.save_params(f_params=tmp_path / "clf.pt")
    new = CGCNNClassifier(**SMALL)
    new.load_params(f_params=tmp_path / "clf.pt")
    np.testing.assert_array_equal(new.predict(graphs), clf.predict(graphs))
    assert new.classes_.tolist() == [0, 1, 2]


def test_classifier_errors(data):
    _, graphs, _ = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        CGCNNClassifier().fit(graphs, np.zeros(20))
    with pytest.raises(ValueError, match="NaN or infinity"):
        CGCNNClassifier().fit(graphs, np.r_[np.nan, np.ones(19)])
    with pytest.raises(AttributeError, match="no attribute 'classes_' before fit"):
        CGCNNClassifier().classes_  # noqa: B018


# ---- pipelines --------------------------------------------------------------------------------


def test_pipeline_learns():
    """Volume per atom of 100 scaled prototype crystals: the model beats the mean clearly."""
    structures, y = scaled_structures()
    rng = np.random.default_rng(1)
    idx = rng.permutation(len(y))
    train, test = idx[:80], idx[80:]
    model = Pipeline(
        [
            ("graph", CrystalGraphFeaturizer(radius=6.0)),
            ("cgcnn", CGCNNRegressor(max_epochs=30, batch_size=16, random_state=0)),
        ]
    )
    model.fit([structures[i] for i in train], y[train])
    mae = np.abs(model.predict([structures[i] for i in test]) - y[test]).mean()
    mae_mean = np.abs(y[train].mean() - y[test]).mean()
    assert mae < 0.4 * mae_mean, (mae, mae_mean)
    losses = model[-1].history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_grid_search_over_featurizer_and_module(data):
    structures, _, y = data
    pipe = Pipeline(
        [
            ("graph", CrystalGraphFeaturizer(radius=6.0)),
            ("cgcnn", CGCNNRegressor(max_epochs=2, random_state=0, **SMALL)),
        ]
    )
    grid = {"graph__max_num_nbr": [4, 8], "cgcnn__module__pooling": ["mean", "max"]}
    search = GridSearchCV(pipe, grid, cv=KFold(2, shuffle=True, random_state=0),
                          scoring="neg_mean_absolute_error")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no failed fits turned into warnings
        search.fit(structures, y)
    results = search.cv_results_
    assert len(results["params"]) == 4
    assert {(p["graph__max_num_nbr"], p["cgcnn__module__pooling"]) for p in results["params"]} == {
        (4, "mean"), (4, "max"), (8, "mean"), (8, "max")
    }
    assert np.all(np.isfinite(results["mean_test_score"]))
    # each split score is the negated MAE of that candidate refitted by hand on that split
    best = search.best_index_
    train, test = next(KFold(2, shuffle=True, random_state=0).split(structures))
    by_hand = clone(pipe).set_params(**results["params"][best]).fit(
        [structures[i] for i in train], y[train])
    mae = np.mean(np.abs(by_hand.predict([structures[i] for i in test]) - y[test]))
    assert results["split0_test_score"][best] == pytest.approx(-mae, rel=1e-6)
    assert results["mean_test_score"][best] == results["mean_test_score"].max()
    assert search.best_estimator_[-1].module_.pooling == search.best_params_[
        "cgcnn__module__pooling"
    ]


def test_graphs_survive_sklearn_slicing(data):
    """GridSearchCV hands a CrystalGraphs or a plain list downstream; both must work."""
    from sklearn.utils import _safe_indexing

    _, graphs, _ = data
    sliced = _safe_indexing(graphs, np.array([0, 5, 7]))
    assert all(hasattr(g, "nbr_index") for g in sliced)
    assert isinstance(graphs[np.array([0, 5])], CrystalGraphs)


# ---- scikit-learn's own checks that apply -----------------------------------------------------

APPLICABLE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimators_unfitted",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_supervised_y_no_nan",
    "check_requires_y_none",
]


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
@pytest.mark.parametrize("cls", [CGCNNRegressor, CGCNNClassifier])
def test_sklearn_checks(cls, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator_checks, check)(cls.__name__, cls(max_epochs=1))


def test_partial_fit_keeps_scaling_and_module(data):
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, y)
    module, mean = net.module_, net.target_mean_.copy()
    net.partial_fit(graphs[:10], y[:10])
    assert net.module_ is module
    np.testing.assert_array_equal(net.target_mean_, mean)
    assert len(net.history) == 2
    # a first partial_fit is a fit
    first = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).partial_fit(graphs, y)
    np.testing.assert_allclose(first.target_mean_, [y.mean()])


def test_classifier_partial_fit_unseen_label(data):
    _, graphs, y = data
    clf = CGCNNClassifier(max_epochs=1, random_state=0, **SMALL).fit(graphs, y > 20)
    with pytest.raises(ValueError, match=r"y\[0\] = 'big' is not one of the classes"):
        clf.partial_fit(graphs[:2], ["big", "small"])


# ---- warm start: callbacks follow the parameters ----------------------------------------------


class _Count(Callback):
    """Counts the epochs it sees."""

    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


def test_warm_start_rebuilds_callbacks_after_set_params(data):
    # The reported failure: a warm-started net keeps the early stopping built for the
    # validation split; after set_params(train_split=None) the next fit raised
    # KeyError 'valid_loss'.
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=1, warm_start=True, train_split="auto", patience=20,
                         random_state=0, **SMALL).fit(graphs, y)
    module = net.module_
    assert dict(net.callbacks_)["early_stopping"].monitor == "valid_loss"
    net.set_params(train_split=None)
    net.fit(graphs, y)
    assert net.module_ is module  # still a warm start
    assert len(net.history) == 2
    assert "valid_loss" in net.history[0] and "valid_loss" not in net.history[-1]
    assert dict(net.callbacks_)["early_stopping"].monitor == "train_loss"
    # patience=None drops early stopping; the cosine schedule follows max_epochs
    net.set_params(patience=None, max_epochs=2)
    net.fit(graphs, y)
    assert "early_stopping" not in dict(net.callbacks_)
    assert dict(net.callbacks_)["lr_scheduler"].kwargs["T_max"] == 2
    assert len(net.history) == 4
    # plain attribute assignment is followed too
    net.patience = 5
    net.train_split = "auto"
    net.fit(graphs, y)
    stopper = dict(net.callbacks_)["early_stopping"]
    assert (stopper.patience, stopper.monitor) == (5, "valid_loss")
    assert "valid_loss" in net.history[-1]


def test_partial_fit_rebuilds_changed_callbacks_and_keeps_unchanged_ones(data):
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=1, train_split="auto", random_state=0, **SMALL).fit(
        graphs, y)
    metric = dict(net.callbacks_)["train_mae"]
    net.partial_fit(graphs, y)  # nothing changed: the same callback objects
    assert dict(net.callbacks_)["train_mae"] is metric
    net.set_params(train_split=None)
    net.partial_fit(graphs, y)  # would raise KeyError 'valid_loss' with stale callbacks
    assert dict(net.callbacks_)["train_mae"] is not metric
    assert "valid_loss" not in net.history[-1] and len(net.history) == 3


def test_warm_start_picks_up_a_new_callbacks_list(data):
    # skorch's set_params(callbacks=[...]) rebuilds callbacks_ from the previous list;
    # the next fit uses the new one.
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=1, warm_start=True, random_state=0, **SMALL).fit(graphs, y)
    counter = _Count()
    net.set_params(callbacks=[("count", counter)], max_epochs=2)
    net.fit(graphs, y)
    assert dict(net.callbacks_)["count"] is counter
    assert counter.epochs_ == 2
    net.set_params(callbacks="disable")
    net.fit(graphs, y)
    assert net.callbacks_ == []
    assert len(net.history) == 5 and "train_mae" not in net.history[-1]


# ---- max_epochs=0 and initialize_for ----------------------------------------------------------


def test_max_epochs_zero_fits_without_training(data):
    _, graphs, y = data
    net = CGCNNRegressor(max_epochs=0, random_state=0, **SMALL).fit(graphs, y)
    assert len(net.history) == 0
    assert "early_stopping" not in dict(net.callbacks_)  # nothing to stop or restore
    np.testing.assert_allclose(net.target_mean_, [y.mean()])
    assert net.predict(graphs).shape == (20,)
    # the same untrained module as initialize_for with the same random_state
    same = CGCNNRegressor(random_state=0, **SMALL).initialize_for(
        n_atom_features=92, gaussian=(0.0, 0.2, 6.0), target_mean=y.mean(), target_scale=y.std()
    )
    np.testing.assert_array_equal(same.predict(graphs), net.predict(graphs))
    clf = CGCNNClassifier(max_epochs=0, random_state=0, **SMALL).fit(graphs, y > 20)
    assert clf.classes_.tolist() == [False, True] and len(clf.history) == 0


def test_max_epochs_zero_with_warm_start_keeps_the_weights(data, fitted):
    _, graphs, y = data
    net = pickle.loads(pickle.dumps(fitted)).set_params(warm_start=True, max_epochs=0)
    net.fit(graphs, 2 * y)  # warm start: the first fit's standardisation is kept
    np.testing.assert_array_equal(net.predict(graphs), fitted.predict(graphs))
    assert len(net.history) == 3


def test_initialize_for_then_load_weights_predicts_like_the_fitted_net(data, fitted):
    _, graphs, y = data
    net = CGCNNRegressor(**SMALL).initialize_for(
        n_atom_features=92,
        gaussian=[0, 0.2, 6],
        target_mean=float(fitted.target_mean_[0]),
        target_scale=float(fitted.target_scale_[0]),
    )
    assert net.n_bond_features_ == 31 and net.gaussian_ == (0.0, 0.2, 6.0)
    assert (net.n_outputs_, net.target_ndim_) == (1, 1)
    assert len(net.history) == 0
    net.module_.load_state_dict(fitted.module_.state_dict())
    np.testing.assert_array_equal(net.predict(graphs), fitted.predict(graphs))
    # and it trains on from those weights with warm_start
    net.set_params(warm_start=True, max_epochs=1, random_state=0)
    module = net.module_
    net.fit(graphs, y)
    assert net.module_ is module and len(net.history) == 1
    np.testing.assert_allclose(net.target_mean_, fitted.target_mean_)


def test_initialize_for_target_shapes():
    kw = dict(n_atom_features=4, gaussian=(0.0, 1.0, 3.0))
    one = CGCNNRegressor(**SMALL).initialize_for(**kw)  # defaults: mean 0, scale 1
    assert one.target_mean_.tolist() == [0.0] and one.target_scale_.tolist() == [1.0]
    assert one.n_bond_features_ == 4  # centres 0, 1, 2, 3
    two = CGCNNRegressor(**SMALL).initialize_for(
        **kw, target_mean=[1.0, -2.0], target_scale=[0.5, 4.0]
    )
    assert (two.n_outputs_, two.target_ndim_) == (2, 2)
    assert two.module_.fc_out.out_features == 2
    # scalar scale with two means broadcasts; a (1,) array means 2-D predictions
    assert CGCNNRegressor(**SMALL).initialize_for(
        **kw, target_mean=[1.0, 2.0], target_scale=3.0
    ).target_scale_.tolist() == [3.0, 3.0]
    assert CGCNNRegressor(**SMALL).initialize_for(**kw, target_mean=[1.0]).target_ndim_ == 2


def test_initialize_for_predictions_in_original_units(data):
    # A module with fc_out = 0 predicts the standardised value 0: predictions are the means.
    _, graphs, _ = data
    net = CGCNNRegressor(**SMALL).initialize_for(
        n_atom_features=92, gaussian=(0, 0.2, 6), target_mean=[3.0, -1.0], target_scale=[2, 5]
    )
    with torch.no_grad():
        net.module_.fc_out.weight.zero_()
        net.module_.fc_out.bias.copy_(torch.tensor([1.0, -2.0]))
    pred = net.predict(graphs[:3])
    assert pred.shape == (3, 2)
    np.testing.assert_allclose(pred, [[3.0 + 2.0, -1.0 - 10.0]] * 3, rtol=1e-6)


def test_initialize_for_classifier(data):
    _, graphs, y = data
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3])).astype(str)  # "0", "1", "2"
    clf = CGCNNClassifier(max_epochs=1, random_state=0, **SMALL).fit(graphs, labels)
    new = CGCNNClassifier(**SMALL).initialize_for(
        n_atom_features=92, gaussian=(0.0, 0.2, 6.0), classes=["0", "1", "2"]
    )
    assert new.module_.fc_out.out_features == 3 and new.module_.classification
    new.module_.load_state_dict(clf.module_.state_dict())
    np.testing.assert_array_equal(new.predict(graphs), clf.predict(graphs))
    np.testing.assert_array_equal(new.predict_proba(graphs), clf.predict_proba(graphs))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_atom_features=0), "n_atom_features must be a positive integer, got 0"),
        (dict(n_atom_features=True), "n_atom_features must be a positive integer"),
        (dict(gaussian=(0.0, 0.2)), r"gaussian must be \(dmin, step, radius\), three numbers"),
        (dict(gaussian=(0.0, 0.0, 6.0)), "needs finite values, step > 0 and radius > dmin"),
        (dict(gaussian=(6.0, 0.2, 2.0)), "needs finite values, step > 0 and radius > dmin"),
        (dict(target_scale=0.0), "target_scale finite and > 0"),
        (dict(target_mean=np.nan), "target_mean must be finite"),
        (dict(target_mean=[1.0, 2.0], target_scale=[1.0, 2.0, 3.0]),
         r"target_mean \(shape \(2,\)\) and target_scale \(shape \(3,\)\)"),
        (dict(target_mean=[[1.0]]), "two numbers or two 1-D arrays"),
        (dict(target_mean=[], target_scale=[]), "give at least one target"),
    ],
)
def test_initialize_for_regressor_errors(kwargs, message):
    args = dict(n_atom_features=92, gaussian=(0.0, 0.2, 6.0)) | kwargs
    net = CGCNNRegressor(**SMALL)
    with pytest.raises(ValueError, match=message):
        net.initialize_for(**args)
    assert not net.initialized_


def test_initialize_for_classifier_errors():
    kw = dict(n_atom_features=92, gaussian=(0.0, 0.2, 6.0))
    with pytest.raises(ValueError, match=r"classes must be sorted and unique .* got \['b', "
                       r"'a'\]; sorted: \['a', 'b'\]"):
        CGCNNClassifier().initialize_for(**kw, classes=["b", "a"])
    with pytest.raises(ValueError, match="classes must be sorted and unique"):
        CGCNNClassifier().initialize_for(**kw, classes=[0, 0, 1])
    with pytest.raises(ValueError, match="at least 2 labels"):
        CGCNNClassifier().initialize_for(**kw, classes=[1])
    with pytest.raises(ValueError, match=r"module__n_atom_fea=10 but the data gives n_atom_fea=92"):
        CGCNNClassifier(module__n_atom_fea=10).initialize_for(**kw, classes=[0, 1])


def test_load_params_of_a_two_target_file(tmp_path, data):
    _, graphs, y = data
    Y = np.column_stack([y, -y])
    net = CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, Y)
    net.save_params(f_params=tmp_path / "two.pt")
    new = CGCNNRegressor(**SMALL)
    new.load_params(f_params=tmp_path / "two.pt")
    assert new.target_ndim_ == 2
    np.testing.assert_array_equal(new.predict(graphs), net.predict(graphs))


@pytest.mark.slow
@pytest.mark.shared_data
def test_pipeline_learns_real_phonons(shared_data):
    """Matbench phonons, first 300 rows: 240 to train, 60 held out (~40 s of CPU)."""
    import gzip
    import json

    from pymatgen.core import Structure

    with gzip.open(shared_data / "matbench_phonons" / "matbench_phonons.json.gz", "rt") as fh:
        rows = json.load(fh)["data"][:300]
    structures = [Structure.from_dict(s) for s, _ in rows]
    y = np.array([v for _, v in rows])
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:240], idx[240:]
    model = Pipeline(
        [
            ("graph", CrystalGraphFeaturizer()),
            ("cgcnn", CGCNNRegressor(max_epochs=40, batch_size=32, random_state=0)),
        ]
    )
    model.fit([structures[i] for i in train], y[train])
    mae = np.abs(model.predict([structures[i] for i in test]) - y[test]).mean()
    mae_mean = np.abs(y[train].mean() - y[test]).mean()
    assert mae < 0.5 * mae_mean, (mae, mae_mean)  # measured: 76 vs 248 cm^-1
