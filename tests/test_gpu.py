"""``device="cuda"`` end to end: fit, predict, save, load on CPU, pretrained, the ensemble.

These run where CUDA is available and skip elsewhere, so that the first GPU machine runs them.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import make_small_structures

from cgcnn_sk import CGCNNEnsembleRegressor, CGCNNRegressor, CrystalGraphFeaturizer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (torch.cuda.is_available() is False)")

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, max_epochs=3,
             random_state=0)


@pytest.fixture(scope="module")
def graphs_y():
    structures, y = make_small_structures()
    return CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures), y


@pytest.fixture(scope="module")
def on_gpu(graphs_y):
    return CGCNNRegressor(device="cuda", **SMALL).fit(*graphs_y)


def test_fit_and_predict_on_cuda(on_gpu, graphs_y):
    assert next(on_gpu.module_.parameters()).device.type == "cuda"
    pred = on_gpu.predict(graphs_y[0])
    assert pred.shape == (20,) and np.isfinite(pred).all()


def test_cuda_fit_is_close_to_the_cpu_fit(on_gpu, graphs_y):
    on_cpu = CGCNNRegressor(device="cpu", **SMALL).fit(*graphs_y)
    # same seed, same data: only float32 arithmetic order differs between the devices
    np.testing.assert_allclose(on_gpu.predict(graphs_y[0]), on_cpu.predict(graphs_y[0]),
                               rtol=1e-3, atol=1e-3 * np.abs(graphs_y[1]).max())


def test_save_params_on_cuda_load_on_cpu(on_gpu, graphs_y, tmp_path):
    path = tmp_path / "params.pt"
    on_gpu.save_params(f_params=path)
    net = CGCNNRegressor(device="cpu", **SMALL)
    net.load_params(f_params=path)
    assert next(net.module_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(net.predict(graphs_y[0]), on_gpu.predict(graphs_y[0]),
                               rtol=1e-5, atol=1e-5)


def test_pickle_round_trip_on_cuda(on_gpu, graphs_y):
    again = pickle.loads(pickle.dumps(on_gpu))
    np.testing.assert_array_equal(again.predict(graphs_y[0]), on_gpu.predict(graphs_y[0]))


def test_ensemble_on_cuda(graphs_y):
    ens = CGCNNEnsembleRegressor(CGCNNRegressor(device="cuda", **SMALL), n_estimators=2,
                                 random_state=0).fit(*graphs_y)
    mean, std = ens.predict(graphs_y[0], return_std=True)
    assert mean.shape == std.shape == (20,) and (std >= 0).all()


def test_pretrained_model_on_cuda(graphs_y):
    pretrained = pytest.importorskip("cgcnn_sk.pretrained")
    try:
        cpu = pretrained.load("formation-energy-per-atom")
    except Exception as exc:  # the checkpoint comes with the `pretrained` extra
        pytest.skip(f"pretrained checkpoint not available: {exc}")
    gpu = pretrained.load("formation-energy-per-atom")
    gpu[-1].set_params(device="cuda")
    gpu[-1].module_.to("cuda")
    structures, _ = make_small_structures()
    np.testing.assert_allclose(gpu.predict(structures), cpu.predict(structures),
                               rtol=1e-4, atol=1e-4)
