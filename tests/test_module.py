"""Tests of cgcnn_sk.nn._model: the gated convolution, pooling, names, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cgcnn_sk.graph._collate import collate_graphs, gaussian_expand
from cgcnn_sk.graph._crystal import CrystalGraph
from cgcnn_sk.nn._model import CGCNN, ConvLayer

GAUSS = (0.0, 0.5, 5.0)  # 11 Gaussians


def softplus(x):
    return np.log1p(np.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def set_two_atom_weights(conv: ConvLayer) -> None:
    with torch.no_grad():
        conv.fc_full.weight.copy_(torch.tensor([[1.0, 2.0, 0.5], [-1.0, 1.0, 2.0]]))
        conv.fc_full.bias.copy_(torch.tensor([0.1, -0.2]))


def two_atom_inputs():
    atom = torch.tensor([[1.0], [2.0]])  # v_0 = 1, v_1 = 2
    bond = torch.tensor([[0.5], [0.5]])  # u_01 = u_10 = 0.5
    return atom, bond, torch.tensor([0, 1]), torch.tensor([1, 0])


def test_conv_layer_two_atoms_by_hand():
    """F = G = 1, one bond each way, no batchnorm: every number written out."""
    conv = ConvLayer(atom_fea_len=1, nbr_fea_len=1, batchnorm=False)
    set_two_atom_weights(conv)
    out = conv(*two_atom_inputs())
    # bond 0->1: [v0, v1, u] = [1, 2, .5]: filter 1 + 4 + .25 + .1, core -1 + 2 + 1 - .2
    # bond 1->0: [v1, v0, u] = [2, 1, .5]: filter 2 + 2 + .25 + .1, core -2 + 1 + 1 - .2
    m0 = sigmoid(5.35) * softplus(1.8)
    m1 = sigmoid(4.35) * softplus(-0.2)
    expected = np.array([[softplus(1.0 + m0)], [softplus(2.0 + m1)]])
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6)
    assert expected[0, 0] == pytest.approx(2.9951, abs=1e-4)  # log(1 + e^2.9438)


def test_conv_layer_two_atoms_batchnorm_eval_by_hand():
    """Batchnorm in eval mode uses the running statistics: (x - mean) / sqrt(var + eps) * w + b."""
    conv = ConvLayer(atom_fea_len=1, nbr_fea_len=1, batchnorm=True).eval()
    set_two_atom_weights(conv)
    with torch.no_grad():
        conv.bn1.running_mean.copy_(torch.tensor([1.0, 0.5]))
        conv.bn1.running_var.copy_(torch.tensor([4.0, 1.0]))
        conv.bn1.weight.copy_(torch.tensor([2.0, 1.0]))
        conv.bn1.bias.copy_(torch.tensor([0.0, 0.3]))
        conv.bn2.running_mean.fill_(0.2)
        conv.bn2.running_var.fill_(0.25)
    eps = conv.bn1.eps
    z = np.array([[5.35, 1.8], [4.35, -0.2]])
    z = (z - [1.0, 0.5]) / np.sqrt(np.array([4.0, 1.0]) + eps) * [2.0, 1.0] + [0.0, 0.3]
    m = sigmoid(z[:, 0]) * softplus(z[:, 1])
    expected = softplus(np.array([1.0, 2.0]) + (m - 0.2) / np.sqrt(0.25 + eps))[:, None]
    out = conv(*two_atom_inputs())
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6)


def reference_conv(conv: ConvLayer, atom, nbr_fea, nbr_idx):
    """The reference CGCNN ConvLayer on padded (N, M) tensors (for comparison only)."""
    n, m = nbr_idx.shape
    f = conv.atom_fea_len
    total = torch.cat([atom.unsqueeze(1).expand(n, m, f), atom[nbr_idx], nbr_fea], dim=2)
    gated = conv.bn1(conv.fc_full(total).view(-1, 2 * f)).view(n, m, 2 * f)
    filt, core = gated.chunk(2, dim=2)
    summed = (torch.sigmoid(filt) * nn.functional.softplus(core)).sum(dim=1)
    return nn.functional.softplus(atom + conv.bn2(summed))


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("degree", [5, 0])  # 5: the (n_atoms, M) block path; 0: flat path
@pytest.mark.parametrize("training", [True, False])
def test_conv_layer_equals_reference_form(training, degree, momentum):
    """Outputs, every parameter gradient and the running statistics after the step."""
    import copy

    g = random_graph(np.random.default_rng(1), 6, 5)
    conv = ConvLayer(atom_fea_len=8, nbr_fea_len=11).train(training)
    conv.bn1.momentum = conv.bn2.momentum = momentum
    with torch.no_grad():
        conv.bn1.running_mean.uniform_(-1, 1)
        conv.bn1.running_var.uniform_(0.5, 2)
        conv.bn2.running_var.uniform_(0.5, 2)
    ref_conv = copy.deepcopy(conv)
    atom = torch.randn(6, 8)
    batch = collate_graphs([g])
    nbr_fea = torch.from_numpy(gaussian_expand(g.nbr_dist.ravel(), GAUSS).reshape(6, 5, -1))
    args = (batch["bond_fea"], batch["self_idx"], batch["nbr_idx"])
    a1, a2 = atom.clone().requires_grad_(), atom.clone().requires_grad_()
    ours = conv(a1, *args, degree=degree)
    ref = reference_conv(ref_conv, a2, nbr_fea, torch.from_numpy(g.nbr_index).long())
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-5, atol=1e-5)
    for (name, p1), p2 in zip(conv.named_parameters(), ref_conv.parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-5, msg=name)
    for (name, b1), b2 in zip(conv.named_buffers(), ref_conv.buffers(), strict=True):
        torch.testing.assert_close(b1, b2, rtol=1e-5, atol=1e-6, msg=name)


# ---- whole-model tests on random graphs --------------------------------------------------

TABLE = np.random.default_rng(0).random((20, 6)).astype(np.float32)


def random_graph(rng, n_atoms, m, n_pad=0, id=None):
    idx = rng.integers(0, n_atoms, (n_atoms, m)).astype(np.int32)
    dist = np.sort(rng.uniform(1.0, 4.5, (n_atoms, m)), axis=1).astype(np.float32)
    if n_pad:
        idx = np.concatenate([idx, np.full((n_atoms, n_pad), -1, np.int32)], axis=1)
        dist = np.concatenate([dist, np.zeros((n_atoms, n_pad), np.float32)], axis=1)
    numbers = rng.integers(1, 20, n_atoms).astype(np.int16)
    return CrystalGraph(numbers, idx, dist, TABLE, GAUSS, id)


def permute_atoms(g: CrystalGraph, perm: np.ndarray) -> CrystalGraph:
    """The same crystal with its sites relabelled: new site k is old site perm[k]."""
    inv = np.argsort(perm)
    idx = g.nbr_index[perm]
    idx = np.where(idx >= 0, inv[np.maximum(idx, 0)], -1).astype(np.int32)
    return CrystalGraph(g.numbers[perm], idx, g.nbr_dist[perm], g.atom_table, g.gaussian)


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    model = CGCNN(n_atom_fea=6, n_bond_fea=11, atom_fea_len=16, h_fea_len=32, **kw)
    # non-trivial batchnorm running statistics so eval mode is a real test
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return model.eval()


def predict(model, graphs):
    with torch.no_grad():
        return model(**collate_graphs(graphs)).numpy()


@pytest.fixture
def graphs():
    rng = np.random.default_rng(7)
    return [random_graph(rng, n, 5) for n in (1, 3, 4, 2, 6)]


@pytest.mark.parametrize("pooling", ["mean", "max", "sum"])
def test_permuting_atoms_within_a_crystal(graphs, pooling):
    model = make_model(pooling=pooling)
    rng = np.random.default_rng(3)
    permuted = [permute_atoms(g, rng.permutation(g.n_atoms)) for g in graphs]
    np.testing.assert_allclose(predict(model, permuted), predict(model, graphs), rtol=1e-5)


def test_permuting_crystals_in_a_batch(graphs):
    model = make_model(n_h=2)
    order = [3, 0, 4, 2, 1]
    out = predict(model, graphs)
    np.testing.assert_allclose(predict(model, [graphs[i] for i in order]), out[order], rtol=1e-5)


def test_batch_of_one_equals_batch_of_many(graphs):
    model = make_model()
    many = predict(model, graphs)
    for i, g in enumerate(graphs):
        np.testing.assert_allclose(predict(model, [g])[0], many[i], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("train_mode", [False, True])
def test_padded_bonds_change_nothing(train_mode):
    """Same crystals with M = 5 and with M = 9 (4 padded slots): identical outputs.

    Also in training mode, where batchnorm uses batch statistics over the real bonds.
    """
    rng = np.random.default_rng(11)
    tight = [random_graph(rng, n, 5) for n in (2, 3)]
    padded = [
        CrystalGraph(
            g.numbers,
            np.pad(g.nbr_index, ((0, 0), (0, 4)), constant_values=-1),
            np.pad(g.nbr_dist, ((0, 0), (0, 4))),
            g.atom_table,
            g.gaussian,
        )
        for g in tight
    ]
    model = make_model().train(train_mode)
    # (tight batches take the block path, padded ones the flat path: equal up to rounding)
    torch.testing.assert_close(
        model(**collate_graphs(padded)), model(**collate_graphs(tight)), rtol=1e-6, atol=1e-6
    )


def test_pooling_by_hand():
    """mean / max / sum pooling of the atom vectors, against a per-crystal loop."""
    from cgcnn_sk.nn._model import _pool

    x = torch.tensor([[1.0, -2.0], [3.0, 0.0], [5.0, 4.0], [-1.0, 1.0], [0.0, 2.0]])
    idx = torch.tensor([0, 0, 1, 1, 1])
    np.testing.assert_allclose(_pool(x, idx, 2, "mean"), [[2.0, -1.0], [4 / 3, 7 / 3]], rtol=1e-6)
    assert _pool(x, idx, 2, "max").tolist() == [[3.0, 0.0], [5.0, 4.0]]
    assert _pool(x, idx, 2, "sum").tolist() == [[4.0, -2.0], [4.0, 7.0]]


REFERENCE_KEYS = [
    "embedding.weight", "embedding.bias",
    *[
        f"convs.{i}.{p}"
        for i in range(3)
        for p in [
            "fc_full.weight", "fc_full.bias",
            "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
            "bn1.num_batches_tracked",
            "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
            "bn2.num_batches_tracked",
        ]
    ],
    "conv_to_fc.weight", "conv_to_fc.bias",
    "fcs.0.weight", "fcs.0.bias",
    "fc_out.weight", "fc_out.bias",
]  # fmt: skip


def test_state_dict_names_match_reference():
    model = CGCNN(92, 41, n_h=2)
    assert list(model.state_dict()) == REFERENCE_KEYS
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["embedding.weight"] == (64, 92)
    assert shapes["convs.0.fc_full.weight"] == (128, 169)
    assert shapes["conv_to_fc.weight"] == (128, 64)
    assert shapes["fc_out.weight"] == (1, 128)


def test_reference_head_order():
    """out = fc_out(g(conv_to_fc(g(mean_pool(atoms))))) with n_conv = 0, n_h = 1."""
    model = CGCNN(3, 2, atom_fea_len=4, n_conv=0, h_fea_len=5).eval()
    atom = torch.randn(3, 3)
    batch = dict(
        atom_fea=atom, bond_fea=torch.zeros(0, 2), self_idx=torch.zeros(0, dtype=torch.long),
        nbr_idx=torch.zeros(0, dtype=torch.long), crystal_idx=torch.tensor([0, 0, 0]),
        n_crystals=1,
    )
    sp = nn.functional.softplus
    crys = model.embedding(atom).mean(dim=0, keepdim=True)
    expected = model.fc_out(sp(model.conv_to_fc(sp(crys))))
    torch.testing.assert_close(model(**batch), expected)


def test_batchnorm_false_has_no_batchnorm():
    model = CGCNN(6, 11, batchnorm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert not any("bn" in k for k in model.state_dict())


@pytest.mark.parametrize("activation", ["softplus", "relu", "silu", "gelu", "elu", "leaky_relu"])
def test_named_activations(graphs, activation):
    model = make_model(activation=activation)
    assert isinstance(model.convs[0].act_out, type(model.conv_to_fc_act))
    assert np.all(np.isfinite(predict(model, graphs)))


def test_activation_class_and_classification(graphs):
    model = make_model(activation=nn.Tanh, n_out=3, classification=True, dropout=0.5)
    assert isinstance(model.convs[1].act_core, nn.Tanh)
    assert predict(model, graphs).shape == (5, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "swish"}, r"activation='swish' is not one of \['elu', 'gelu', "),
        ({"activation": torch.tanh}, "activation must be one of"),
        ({"pooling": "median"}, r"pooling='median' is not one of \['mean', 'max', 'sum'\]"),
        ({"n_conv": -1}, "n_conv must be an integer >= 0"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
        ({"classification": True}, "classification needs n_out >= 2"),
        ({"readout": "site"}, r"readout='site' is not one of \['crystal', 'atom'\]"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CGCNN(6, 11, **kwargs)


def test_single_atom_batch_trains():
    """A training batch with one one-atom crystal (bn2 sees one row) does not fail."""
    rng = np.random.default_rng(0)
    model = make_model().train()
    out = model(**collate_graphs([random_graph(rng, 1, 4)]))
    out.sum().backward()
    assert model.embedding.weight.grad is not None


def test_uniform_degree_detection():
    from cgcnn_sk.nn._model import uniform_degree

    assert uniform_degree(torch.tensor([0, 0, 1, 1, 2, 2]), 3) == 2
    assert uniform_degree(torch.tensor([0, 1, 1, 2, 2, 0]), 3) == 0  # unsorted
    assert uniform_degree(torch.tensor([0, 0, 0, 1, 2, 2]), 3) == 0  # uneven
    assert uniform_degree(torch.tensor([0, 1]), 3) == 0
    assert uniform_degree(torch.zeros(0, dtype=torch.long), 2) == 0


@pytest.mark.parametrize("training", [True, False])
def test_block_path_equals_flat_path(training):
    """The (n_atoms, M) block path and the flat gather/scatter path agree."""
    g = random_graph(np.random.default_rng(5), 7, 4)
    batch = collate_graphs([g])
    conv = ConvLayer(atom_fea_len=8, nbr_fea_len=11).train(training)
    with torch.no_grad():
        conv.bn1.running_mean.uniform_(-1, 1)
        conv.bn1.running_var.uniform_(0.5, 2)
    atom = torch.randn(7, 8)
    args = (atom, batch["bond_fea"], batch["self_idx"], batch["nbr_idx"])
    torch.testing.assert_close(conv(*args, degree=4), conv(*args, degree=0))


def _inputs(graphs):
    inputs = collate_graphs(graphs)
    return inputs, {k: v for k, v in inputs.items() if k not in ("crystal_idx", "n_crystals")}


@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_atom_readout_pools_the_per_atom_outputs(graphs, pooling):
    """readout='atom': out = pool over each crystal of head(v_i), written out with numpy."""
    model = make_model(readout="atom", pooling=pooling, n_h=2, n_out=2)
    inputs, atom_inputs = _inputs(graphs)
    with torch.no_grad():
        per_atom = model.site_outputs(**atom_inputs).numpy()
        out = model(**inputs).numpy()
    reduce = {"mean": np.mean, "sum": np.sum, "max": np.max}[pooling]
    owner = inputs["crystal_idx"].numpy()
    expected = np.stack([reduce(per_atom[owner == k], axis=0) for k in range(len(graphs))])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_atom_readout_keeps_the_parameter_names():
    assert list(CGCNN(92, 41, n_h=2, readout="atom").state_dict()) == REFERENCE_KEYS


def test_atom_and_crystal_readout_agree_on_one_atom_crystals():
    """With one atom per crystal, pooling is the identity: both readouts are one function."""
    rng = np.random.default_rng(5)
    single = [random_graph(rng, 1, 3) for _ in range(3)]
    crystal = make_model(n_h=2)
    atom = make_model(n_h=2, readout="atom")
    atom.load_state_dict(crystal.state_dict())
    np.testing.assert_allclose(predict(atom, single), predict(crystal, single), rtol=1e-6)


def test_site_outputs_need_atom_readout(graphs):
    _, atom_inputs = _inputs(graphs)
    with pytest.raises(ValueError, match="site outputs need readout='atom'"):
        make_model().site_outputs(**atom_inputs)


@pytest.mark.parametrize("readout", ["crystal", "atom"])
def test_embed_layers(graphs, readout):
    """pooled = mean of the atom vectors; fc_out(hidden) = the output."""
    model = make_model(n_h=2, readout=readout)
    inputs, atom_inputs = _inputs(graphs)
    with torch.no_grad():
        pooled = model.embed(**inputs).numpy()
        hidden = model.embed(**inputs, layer="hidden")
        atoms = model.atom_vectors(**atom_inputs).numpy()
        head = model.fc_out(hidden).numpy()
        out = model(**inputs).numpy()
    owner = inputs["crystal_idx"].numpy()
    expected = np.stack([atoms[owner == k].mean(axis=0) for k in range(len(graphs))])
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    assert tuple(hidden.shape) == (5, 32)
    # atom readout: fc_out is affine, so fc_out(mean of hidden) = mean of fc_out(hidden)
    np.testing.assert_allclose(head, out, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="layer='conv' is not one of"):
        model.embed(**inputs, layer="conv")
