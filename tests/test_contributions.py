"""Tests of site contributions: per-site contributions that add up to the prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_small_structures

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.estimators._contributions import _target_affine
from cgcnn_sk.graph._collate import collate_graphs

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=12, module__n_conv=2)


@pytest.fixture(scope="module")
def data():
    structures, y = make_small_structures()  # volume per atom: mean ~24 A^3, so offsets matter
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    return structures, graphs, y


@pytest.fixture(scope="module")
def nets(data):
    """Fitted atom-readout regressors by pooling (don't refit)."""
    graphs, y = data[1], data[2]
    return {pooling: fit(graphs, y, module__pooling=pooling) for pooling in ("mean", "sum")}


def fit(graphs, y, **kw):
    params = dict(max_epochs=3, train_split=None, random_state=0, module__readout="atom")
    params.update(SMALL, **kw)
    return CGCNNRegressor(**params).fit(graphs, y)


@pytest.mark.parametrize("n_h", [1, 2])
def test_mean_pooling_contributions_average_to_predict(data, nets, n_h):
    graphs, y = data[1], data[2]
    net = nets["mean"] if n_h == 1 else fit(graphs, y, module__n_h=n_h)
    sites = net.predict_contributions(graphs)
    assert [s.shape for s in sites] == [(g.n_atoms,) for g in graphs]
    np.testing.assert_allclose([s.mean() for s in sites], net.predict(graphs), rtol=1e-5)


def test_sum_pooling_contributions_add_up_to_predict(data, nets):
    graphs = data[1]
    net = nets["sum"]
    sites = net.predict_contributions(graphs)
    np.testing.assert_allclose([s.sum() for s in sites], net.predict(graphs), rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_contributions_by_hand(data, nets, pooling):
    """scale * (the module's per-atom output) + the mean (mean pooling) or mean / n (sum)."""
    net = nets[pooling]
    graph = data[1][17]  # SrTiO3, 5 sites
    inputs = collate_graphs([graph])
    with torch.no_grad():
        raw = net.module_.eval().site_outputs(**inputs).numpy()[:, 0].astype(np.float64)
    mean, scale = net.target_mean_[0], net.target_scale_[0]
    assert mean > 1.5 * scale  # volume per atom: mean 20, std 10 A^3, a real offset
    offset = mean if pooling == "mean" else mean / 5
    (sites,) = net.predict_contributions([graph])
    np.testing.assert_allclose(sites, scale * raw + offset, rtol=1e-5)


def test_one_atom_crystal_contribution_is_its_prediction(data, nets):
    one = data[1][[12]]  # fcc Cu, one site
    assert one[0].n_atoms == 1
    for net in nets.values():
        (site,) = net.predict_contributions(one)
        np.testing.assert_allclose(site, net.predict(one), rtol=1e-6)


def test_equivalent_sites_get_equal_contributions(data, nets):
    """The three O of a cubic perovskite are symmetry-equivalent: equal contributions."""
    graphs = data[1]
    net = nets["mean"]
    (sites,) = net.predict_contributions(graphs[[17]])  # SrTiO3: Sr, Ti, O, O, O
    np.testing.assert_allclose(sites[2:], sites[2], rtol=1e-5)
    assert not np.isclose(sites[0], sites[1])


def test_two_targets(data):
    graphs, y = data[1], data[2]
    y2 = np.column_stack([y, -3 * y + 100])
    net = fit(graphs, y2)
    sites = net.predict_contributions(graphs)
    assert sites[17].shape == (5, 2)
    np.testing.assert_allclose(np.stack([s.mean(axis=0) for s in sites]), net.predict(graphs),
                               rtol=1e-5)


def test_default_readout_and_max_pooling_raise(data):
    graphs, y = data[1], data[2]
    net = CGCNNRegressor(max_epochs=0, train_split=None, random_state=0, **SMALL).fit(graphs, y)
    with pytest.raises(ValueError, match=r"needs module__readout='atom'.*readout='crystal'"):
        net.predict_contributions(graphs)
    net = fit(graphs, y, module__pooling="max", max_epochs=0)
    with pytest.raises(ValueError, match="needs module__pooling='mean' or 'sum'; with "
                       "pooling='max' each output is decided by one atom"):
        net.predict_contributions(graphs)


def test_target_affine_reads_a_standard_scaler():
    """If the regressor standardises y with a StandardScaler, its mean_/scale_ are used."""
    from sklearn.preprocessing import StandardScaler

    class Net:
        n_outputs_ = 1
        target_scaler_ = StandardScaler().fit([[1.0], [3.0]])

    mean, scale = _target_affine(Net())
    np.testing.assert_allclose(mean, [2.0])
    np.testing.assert_allclose(scale, [1.0])
