"""Tests of embeddings: a fitted CGCNN's crystal vectors, CGCNNEmbedder, transform."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_small_structures
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNClassifier, CGCNNEmbedder, CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.graph._collate import collate_graphs

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=12, module__n_conv=2)


@pytest.fixture(scope="module")
def data():
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    return structures, graphs, y


@pytest.fixture(scope="module")
def fitted(data):
    """A small regressor with two hidden layers, fitted for 3 epochs (don't refit)."""
    _, graphs, y = data
    return CGCNNRegressor(
        max_epochs=3, train_split=None, random_state=0, module__n_h=2, **SMALL
    ).fit(graphs, y)


def test_transform_shapes(fitted, data):
    graphs = data[1]
    assert fitted.transform(graphs).shape == (20, 8)  # atom_fea_len
    assert fitted.transform(graphs, layer="hidden").shape == (20, 12)  # h_fea_len
    assert fitted.transform(graphs).dtype == np.float32


@pytest.mark.parametrize("layer", ["pooled", "hidden"])
def test_crystal_alone_equals_crystal_in_batch(fitted, data, layer):
    """Evaluation mode: a crystal's vector does not depend on its batch mates.

    Equal up to float rounding only: the batch and the crystal alone can take different but
    equivalent convolution paths (block vs flat bonds), whose sums round differently.
    """
    graphs = data[1]
    together = fitted.transform(graphs, layer=layer)
    for i in (0, 7, 19):
        alone = fitted.transform(graphs[[i]], layer=layer)
        np.testing.assert_allclose(alone[0], together[i], rtol=1e-5, atol=1e-6)
    fitted.set_params(batch_size=3)  # other batch boundaries: same rows
    try:
        np.testing.assert_allclose(
            fitted.transform(graphs, layer=layer), together, rtol=1e-5, atol=1e-6
        )
    finally:
        fitted.set_params(batch_size=64)


def test_pooled_is_the_mean_of_the_atom_vectors(fitted, data):
    graphs = data[1]
    module = fitted.module_.eval()
    with torch.no_grad():
        inputs = collate_graphs([graphs[19]])  # CaZrO3, 5 atoms
        inputs.pop("crystal_idx"), inputs.pop("n_crystals")
        atoms = module.atom_vectors(**inputs).numpy()
    assert atoms.shape == (5, 8)
    np.testing.assert_allclose(fitted.transform(graphs[[19]])[0], atoms.mean(axis=0), rtol=1e-5)


def test_hidden_is_the_input_of_fc_out(fitted, data):
    """fc_out applied to the hidden vectors, unstandardised, gives predict."""
    graphs = data[1]
    hidden = torch.from_numpy(fitted.transform(graphs, layer="hidden"))
    with torch.no_grad():
        out = fitted.module_.fc_out(hidden).numpy()[:, 0]
    expected = out * fitted.target_scale_[0] + fitted.target_mean_[0]
    np.testing.assert_allclose(expected, fitted.predict(graphs), rtol=1e-5)


def test_transform_bad_layer_and_not_fitted(fitted, data):
    with pytest.raises(ValueError, match=r"layer='last' is not one of \['pooled', 'hidden'\]"):
        fitted.transform(data[1], layer="last")
    with pytest.raises(NotFittedError):
        CGCNNRegressor().transform(data[1])


def test_classifier_transform(data):
    graphs, y = data[1], data[2]
    clf = CGCNNClassifier(max_epochs=2, train_split=None, random_state=0, **SMALL)
    clf.fit(graphs, y > np.median(y))
    assert clf.transform(graphs, layer="hidden").shape == (20, 12)


def test_embedder_prefit_does_not_retrain(fitted, data):
    graphs = data[1]
    emb = CGCNNEmbedder(fitted, prefit=True).fit(graphs)  # no y needed
    np.testing.assert_array_equal(emb.transform(graphs), fitted.transform(graphs))
    assert len(emb.estimator_.history) == len(fitted.history) == 3  # no epoch added
    assert emb.estimator_ is not fitted  # a copy: refitting the original changes nothing here
    assert emb.n_features_out_ == 8


def test_embedder_trains_a_clone(data):
    graphs, y = data[1], data[2]
    base = CGCNNRegressor(max_epochs=2, train_split=None, random_state=0, **SMALL)
    emb = CGCNNEmbedder(base, layer="hidden").fit(graphs, y)
    assert not base.initialized_  # the given estimator stays untouched
    assert len(emb.estimator_.history) == 2
    twin = clone(base).fit(graphs, y)
    np.testing.assert_allclose(emb.transform(graphs), twin.transform(graphs, layer="hidden"))


def test_feature_names_and_pandas_output(fitted, data):
    graphs = data[1]
    emb = CGCNNEmbedder(fitted, layer="hidden", prefit=True).fit(graphs)
    names = emb.get_feature_names_out()
    assert names.tolist() == [f"cgcnn_hidden_{i}" for i in range(12)]
    frame = emb.set_output(transform="pandas").transform(graphs)
    assert isinstance(frame, pd.DataFrame)
    assert frame.columns.tolist() == names.tolist()
    np.testing.assert_array_equal(frame.to_numpy(), fitted.transform(graphs, layer="hidden"))


def test_embedder_errors(fitted, data):
    graphs, y = data[1], data[2]
    with pytest.raises(ValueError, match="prefit=True but the CGCNNRegressor given is not fitted"):
        CGCNNEmbedder(CGCNNRegressor(), prefit=True).fit(graphs)
    with pytest.raises(ValueError, match="prefit=True needs a fitted estimator"):
        CGCNNEmbedder(prefit=True).fit(graphs)
    with pytest.raises(ValueError, match="prefit=False trains its network and requires y"):
        CGCNNEmbedder(CGCNNRegressor()).fit(graphs)
    with pytest.raises(ValueError, match="layer='atoms' is not one of"):
        CGCNNEmbedder(fitted, layer="atoms", prefit=True).fit(graphs)
    with pytest.raises(TypeError, match="estimator must be a CGCNNRegressor or CGCNNClassifier"):
        CGCNNEmbedder("cgcnn").fit(graphs, y)
    with pytest.raises(NotFittedError):
        CGCNNEmbedder(fitted, prefit=True).transform(graphs)


def test_embedder_in_a_pipeline_under_cross_validation(data):
    structures, _, y = data
    model = Pipeline([
        ("graph", CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8)),
        ("embed", CGCNNEmbedder(
            CGCNNRegressor(max_epochs=2, train_split=None, random_state=0, **SMALL))),
        ("rf", RandomForestRegressor(n_estimators=10, random_state=0)),
    ])
    scores = cross_val_score(model, structures, y, cv=2, scoring="neg_mean_absolute_error")
    assert scores.shape == (2,) and np.isfinite(scores).all()
    params = clone(model).get_params()
    assert params["embed__estimator__max_epochs"] == 2 and params["embed__layer"] == "pooled"
    fitted_model = model.fit(structures, y)
    again = pickle.loads(pickle.dumps(fitted_model))
    np.testing.assert_allclose(again.predict(structures), fitted_model.predict(structures))
