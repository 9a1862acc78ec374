"""``device`` is checked at the start of ``fit``, saying which devices are available."""

from __future__ import annotations

import pytest
import torch
from conftest import make_small_structures

from cgcnn_sk import CGCNNClassifier, CGCNNEnsembleRegressor, CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.estimators._device import available_devices, check_device

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, max_epochs=1)


@pytest.fixture(scope="module")
def graphs_y():
    structures, y = make_small_structures()
    return CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures), y


@pytest.mark.parametrize("device, message", [
    ("gpu0", r"device='gpu0' is not a torch device"),
    ("cuda:-1", r"device='cuda:-1' is not a torch device"),
    ("cpu cuda", r"device='cpu cuda' is not a torch device"),
    ("quantum", r"device='quantum' is not a torch device"),
])
def test_a_device_torch_cannot_parse_fails_at_fit(graphs_y, device, message):
    net = CGCNNRegressor(device=device, **SMALL)
    with pytest.raises(ValueError, match=message + r".*available here: 'cpu'"):
        net.fit(*graphs_y)
    assert not net.initialized_  # failed before building anything


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine "
                    "without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda")])
def test_cuda_without_cuda_fails_at_fit_saying_what_is_available(graphs_y, device):
    for net in (CGCNNRegressor(device=device, **SMALL),
                CGCNNClassifier(device=device, **SMALL)):
        y = graphs_y[1] if isinstance(net, CGCNNRegressor) else graphs_y[1] > 20
        with pytest.raises(ValueError, match=r"needs a CUDA GPU, and this torch .* is built "
                           r"(without CUDA|with CUDA, but sees no GPU); available here: 'cpu'"):
            net.fit(graphs_y[0], y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_ensemble_and_partial_fit_check_the_device_too(graphs_y):
    with pytest.raises(ValueError, match="device='cuda' needs a CUDA GPU"):
        CGCNNEnsembleRegressor(CGCNNRegressor(device="cuda", **SMALL), n_estimators=2).fit(
            *graphs_y)
    net = CGCNNRegressor(**SMALL).fit(*graphs_y)
    net.set_params(device="gpu0")
    with pytest.raises(ValueError, match="device='gpu0' is not a torch device"):
        net.partial_fit(*graphs_y)


def test_cpu_and_none_are_accepted():
    assert available_devices()[0] == "cpu"
    for device in ("cpu", "cpu:0", torch.device("cpu"), None):
        check_device(device, "CGCNNRegressor")
