"""WeightAveraging: the averaged weights against hand-computed averages, and what predicts."""

from __future__ import annotations

import copy
import doctest
import pickle

import numpy as np
import pytest
import torch
from conftest import make_small_structures
from sklearn.base import clone
from skorch.callbacks import Callback

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.estimators import WeightAveraging, _averaging

TINY = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, random_state=0,
            train_split=None, lr=0.05)


@pytest.fixture(scope="module")
def data():
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=6).fit_transform(structures)
    return graphs, y


class _Record(Callback):
    """The module's parameters after every training batch and at every epoch end."""

    def __init__(self):
        self.batches, self.epochs = [], []

    def _snapshot(self, net):
        return [p.detach().clone() for p in net.module_.parameters()]

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.batches.append(self._snapshot(net))

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(self._snapshot(net))


def _fit(data, averaging, **kw):
    record = _Record()
    net = CGCNNRegressor(**{**TINY, **kw},
                         callbacks=[("record", record), ("averaging", averaging)])
    return net.fit(*data), record


def _close(params, expected):
    return all(torch.allclose(p, e, atol=1e-6) for p, e in zip(params, expected, strict=True))


def test_ema_of_two_steps_is_the_hand_computed_one(data):
    # 20 rows in batches of 10: two optimizer steps, w1 and w2
    net, record = _fit(data, WeightAveraging(decay=0.7, update_bn=False),
                       max_epochs=1, batch_size=10)
    w1, w2 = record.batches
    expected = [0.7 * a + 0.3 * b for a, b in zip(w1, w2, strict=True)]
    assert not _close(w2, expected)  # the steps moved the weights: the test can tell
    assert _close(list(net.module_.parameters()), expected)
    assert dict(net.callbacks_)["averaging"].n_averaged_ == 2


def test_swa_averages_the_epochs_after_start(data):
    # max_epochs=4, start=0.5: the ends of epochs 3 and 4, with equal weights
    net, record = _fit(data, WeightAveraging("swa", start=0.5, update_bn=False),
                       max_epochs=4, batch_size=10)
    e3, e4 = record.epochs[2], record.epochs[3]
    expected = [(a + b) / 2 for a, b in zip(e3, e4, strict=True)]
    assert _close(list(net.module_.parameters()), expected)
    assert dict(net.callbacks_)["averaging"].n_averaged_ == 2


def test_predictions_use_the_averaged_weights(data):
    graphs, y = data
    net, record = _fit(data, WeightAveraging(decay=0.5, update_bn=False),
                       max_epochs=2, batch_size=10, module__batchnorm=False)
    averaged = net.predict(graphs)
    last = copy.deepcopy(net)  # the same fitted net; then the last trained weights put in
    with torch.no_grad():
        for p, w in zip(last.module_.parameters(), record.batches[-1], strict=True):
            p.copy_(w)
    assert not np.allclose(last.predict(graphs), averaged)
    with torch.no_grad():
        for p, w in zip(last.module_.parameters(), net.module_.parameters(), strict=True):
            p.copy_(w)
    np.testing.assert_allclose(last.predict(graphs), averaged, rtol=1e-6)


def _first_bn_input_mean(net, graphs):
    """Mean of the first batch-norm layer's input over all rows, the module in train mode."""
    bn = next(m for m in net.module_.modules() if isinstance(m, torch.nn.BatchNorm1d))
    seen = []
    handle = bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    module_state = {k: v.clone() for k, v in net.module_.state_dict().items()}
    net.module_.train()
    try:
        with torch.no_grad():
            for batch, _ in net.get_iterator(net.get_dataset(graphs), training=False):
                net.infer(batch)
    finally:
        handle.remove()
        net.module_.load_state_dict(module_state)  # the pass updated the running stats
        net.module_.eval()
    return bn, torch.cat(seen).mean(dim=0)


def test_batchnorm_statistics_are_those_of_the_averaged_weights(data):
    graphs, y = data
    kw = dict(max_epochs=2, batch_size=-1, module__batchnorm=True)
    net, _ = _fit(data, WeightAveraging(decay=0.5), **kw)
    bn, mean = _first_bn_input_mean(net, graphs)
    torch.testing.assert_close(bn.running_mean, mean, atol=1e-5, rtol=1e-5)
    stale, _ = _fit(data, WeightAveraging(decay=0.5, update_bn=False), **kw)
    bn, mean = _first_bn_input_mean(stale, graphs)
    assert not torch.allclose(bn.running_mean, mean, atol=1e-3)


def test_clone_pickle_and_random_state(data):
    graphs, y = data
    averaging = WeightAveraging("swa", decay=0.9, start=0.25, update_bn=False)
    net = CGCNNRegressor(**TINY, max_epochs=2, batch_size=10,
                         callbacks=[("averaging", averaging)])
    twin = clone(net)
    assert twin.callbacks[0][1] is not averaging
    assert twin.callbacks[0][1].get_params() == averaging.get_params()
    tuned = clone(net).set_params(callbacks__averaging__start=0.5)  # as a grid search sets it
    assert dict(tuned.callbacks_)["averaging"].start == 0.5
    a, b = net.fit(graphs, y).predict(graphs), twin.fit(graphs, y).predict(graphs)
    np.testing.assert_array_equal(a, b)  # same random_state, same averaged net
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(graphs), a)
    assert not hasattr(dict(net.callbacks_)["averaging"], "average_")  # no copy kept
    assert repr(averaging) == ("WeightAveraging(kind='swa', decay=0.9, start=0.25, "
                               "update_bn=False)")


@pytest.mark.parametrize("params, message", [
    (dict(kind="mean"), "'kind' parameter of WeightAveraging must be a str among"),
    (dict(decay=1.0), "'decay' parameter of WeightAveraging must be a float in the range"),
    (dict(start=1.0), "'start' parameter of WeightAveraging must be a float in the range"),
])
def test_bad_parameters_are_named_at_fit(data, params, message):
    net = CGCNNRegressor(**TINY, max_epochs=1, callbacks=[("a", WeightAveraging(**params))])
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        net.fit(*data)


def test_docstring_examples_run():
    assert doctest.testmod(_averaging, raise_on_error=True).attempted > 0
