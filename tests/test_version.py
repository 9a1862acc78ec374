"""Objects saved by another cgcnn_sk version: recorded, warned about, refused when unusable.

The version is recorded in pickles (estimators, featurizer, ensemble, embedder) and in
``save_params`` files; reading them back with another version warns with
``InconsistentVersionWarning``, and ``cgcnn_sk.load`` refuses a fitted model that lacks state
this version needs, naming the file and the missing attribute.
"""

from __future__ import annotations

import pickle
import warnings

import joblib
import pytest
import torch
from conftest import make_small_structures
from sklearn.pipeline import Pipeline

from cgcnn_sk import (
    CGCNNEmbedder,
    CGCNNEnsembleRegressor,
    CGCNNRegressor,
    CrystalGraphFeaturizer,
    InconsistentVersionWarning,
    ModelFileError,
    __version__,
    load,
)
from cgcnn_sk._version import VERSION_KEY

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, max_epochs=1)


@pytest.fixture(scope="module")
def graphs_y():
    structures, y = make_small_structures()
    return CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures), y


@pytest.fixture(scope="module")
def fitted(graphs_y):
    return CGCNNRegressor(random_state=0, **SMALL).fit(*graphs_y)


class _OtherVersion:
    """Pickles ``obj`` as if another version had saved it (its recorded version replaced)."""

    def __init__(self, obj, version, drop=()):
        self.obj, self.version, self.drop = obj, version, drop

    def __reduce__(self):
        state = self.obj.__getstate__()
        for name in self.drop:
            del state[name]
        if self.version is None:
            state.pop(VERSION_KEY)
        else:
            state[VERSION_KEY] = self.version
        return (_rebuild, (type(self.obj), state))


def _rebuild(cls, state):
    obj = object.__new__(cls)
    obj.__setstate__(state)
    return obj


def _unpickle_quietly(blob):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        return pickle.loads(blob)


@pytest.mark.parametrize("make", [
    lambda f, g: f,
    lambda f, g: CrystalGraphFeaturizer().fit(),
    lambda f, g: CGCNNEnsembleRegressor(CGCNNRegressor(**SMALL), n_estimators=2,
                                        random_state=0).fit(*g),
    lambda f, g: CGCNNEmbedder(f, prefit=True).fit(g[0]),
], ids=["regressor", "featurizer", "ensemble", "embedder"])
def test_pickles_record_the_version_and_warn_on_another(fitted, graphs_y, make):
    obj = make(fitted, graphs_y)
    assert obj.__getstate__()[VERSION_KEY] == __version__
    _unpickle_quietly(pickle.dumps(obj))  # the same version: no warning
    with pytest.warns(InconsistentVersionWarning, match=r"saved by cgcnn_sk 0\.0\.1 and is read "
                      rf"by cgcnn_sk {__version__}") as rec:
        again = pickle.loads(pickle.dumps(_OtherVersion(obj, "0.0.1")))
    assert rec[0].message.saved_version == "0.0.1"
    assert VERSION_KEY not in vars(again)  # the record is not kept as an attribute
    with pytest.warns(InconsistentVersionWarning, match="did not record its version"):
        pickle.loads(pickle.dumps(_OtherVersion(obj, None)))


def test_a_model_from_another_version_still_predicts_with_the_warning(fitted, graphs_y,
                                                                      tmp_path):
    path = tmp_path / "net.joblib"
    joblib.dump(_OtherVersion(fitted, "0.0.1"), path)
    with pytest.warns(InconsistentVersionWarning, match=str(path)):
        model = load(path)
    assert torch.allclose(torch.as_tensor(model.predict(graphs_y[0])),
                          torch.as_tensor(fitted.predict(graphs_y[0])))


@pytest.mark.parametrize("drop", ["gaussian_", "target_scaler_"])
def test_load_refuses_a_fitted_model_missing_state_naming_file_and_attribute(
        fitted, graphs_y, tmp_path, drop):
    pipe = Pipeline([("graph", CrystalGraphFeaturizer().fit()),
                     ("cgcnn", _OtherVersion(fitted, "0.0.1", drop=[drop]))])
    path = tmp_path / "old.joblib"
    joblib.dump(pipe, path)
    with pytest.warns(InconsistentVersionWarning), pytest.raises(
            ModelFileError, match=rf"{path} holds a fitted CGCNNRegressor saved by cgcnn_sk "
            rf"0\.0\.1, without {drop}, which cgcnn_sk {__version__} needs"):
        load(path)


def test_load_refuses_a_featurizer_missing_state(tmp_path):
    feat = CrystalGraphFeaturizer().fit()
    del feat.elements_
    path = tmp_path / "feat.joblib"
    joblib.dump(feat, path)
    with pytest.raises(ModelFileError, match="CrystalGraphFeaturizer .*without elements_"):
        load(path)


def test_save_params_records_the_version_and_load_params_warns_on_another(fitted, graphs_y,
                                                                         tmp_path):
    path = tmp_path / "params.pt"
    fitted.save_params(f_params=path)
    state = torch.load(path, weights_only=True)
    assert state["_cgcnn_sk_meta"][VERSION_KEY] == __version__
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        CGCNNRegressor(**SMALL).load_params(f_params=path)
    state["_cgcnn_sk_meta"][VERSION_KEY] = "0.0.1"
    torch.save(state, path)
    with pytest.warns(InconsistentVersionWarning, match=rf"{path} was saved by cgcnn_sk 0\.0\.1"):
        CGCNNRegressor(**SMALL).load_params(f_params=path)
    del state["_cgcnn_sk_meta"][VERSION_KEY]
    torch.save(state, path)
    net = CGCNNRegressor(**SMALL)
    with pytest.warns(InconsistentVersionWarning, match="did not record its version"):
        net.load_params(f_params=path)
    assert torch.allclose(torch.as_tensor(net.predict(graphs_y[0])),
                          torch.as_tensor(fitted.predict(graphs_y[0])))
