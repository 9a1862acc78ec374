"""Tests of cgcnn_sk.graph._collate: offsets, padding, Gaussian expansion, skorch glue."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgcnn_sk.graph._collate import (
    GraphBatch,
    GraphDataset,
    collate_fn,
    collate_graphs,
    gaussian_expand,
)
from cgcnn_sk.graph._crystal import CrystalGraph

TABLE = np.arange(12, dtype=np.float32).reshape(4, 3)  # row Z = [3Z, 3Z+1, 3Z+2]
GAUSS = (0.0, 0.5, 3.0)  # centres 0, 0.5, ..., 3.0 -> 7 Gaussians


def graph(numbers, nbr_index, nbr_dist, table=TABLE, gaussian=GAUSS, id=None):
    return CrystalGraph(
        numbers=np.asarray(numbers, dtype=np.int16),
        nbr_index=np.asarray(nbr_index, dtype=np.int32),
        nbr_dist=np.asarray(nbr_dist, dtype=np.float32),
        atom_table=table,
        gaussian=gaussian,
        id=id,
    )


@pytest.fixture
def two_graphs():
    # Graph A: 2 atoms, M=2; atom 0 has one real neighbour, atom 1 has two.
    a = graph([1, 2], [[1, -1], [0, 0]], [[1.0, 0.0], [1.0, 2.0]])
    # Graph B: 3 atoms, M=2, all real.
    b = graph([3, 3, 1], [[1, 2], [0, 2], [0, 1]], [[0.5, 1.5], [0.5, 2.5], [1.5, 2.5]])
    return a, b


def test_gaussian_expand_matches_formula():
    out = gaussian_expand(np.array([1.2], dtype=np.float32), GAUSS)
    centres = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    expected = np.exp(-((1.2 - centres) ** 2) / 0.5**2)
    assert out.shape == (1, 7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    # on a centre the Gaussian is exactly one
    assert gaussian_expand(np.array([1.5]), GAUSS)[0, 3] == pytest.approx(1.0)


def test_collate_offsets_and_padding(two_graphs):
    batch = collate_graphs(two_graphs)
    assert batch["n_crystals"] == 2
    assert batch["crystal_idx"].tolist() == [0, 0, 1, 1, 1]
    # real bonds only, row-major: A has 3, B has 6; B's indices shifted by 2 atoms
    assert batch["self_idx"].tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert batch["nbr_idx"].tolist() == [1, 0, 0, 3, 4, 2, 4, 2, 3]
    assert batch["bond_fea"].shape == (9, 7)
    np.testing.assert_allclose(
        batch["bond_fea"][2].numpy(), gaussian_expand(np.array([2.0]), GAUSS)[0]
    )
    # atom features gathered from the table by atomic number
    np.testing.assert_array_equal(
        batch["atom_fea"].numpy(), TABLE[[1, 2, 3, 3, 1]]
    )
    assert batch["atom_fea"].dtype == torch.float32
    assert batch["self_idx"].dtype == torch.int64
    assert batch["nbr_idx"].dtype == torch.int64


def test_keys_are_forward_arguments(two_graphs):
    import inspect

    from cgcnn_sk.nn._model import CGCNN

    params = list(inspect.signature(CGCNN.forward).parameters)[1:]
    # global_fea only for graphs with global features (tests/test_global_features.py)
    assert sorted(collate_graphs(two_graphs)) == sorted(p for p in params if p != "global_fea")


def test_collate_mixed_widths_pads_and_drops(two_graphs):
    a, b = two_graphs
    wide = graph(
        b.numbers, np.pad(b.nbr_index, ((0, 0), (0, 3)), constant_values=-1),
        np.pad(b.nbr_dist, ((0, 0), (0, 3))),
    )
    same = collate_graphs([a, b])
    mixed = collate_graphs([a, wide])
    for key in ("atom_fea", "bond_fea", "self_idx", "nbr_idx", "crystal_idx"):
        assert torch.equal(same[key], mixed[key]), key


def test_isolated_atom_has_no_bonds():
    g = graph([1, 2], [[-1, -1], [-1, -1]], [[0, 0], [0, 0]])
    batch = collate_graphs([g])
    assert batch["bond_fea"].shape == (0, 7)
    assert batch["self_idx"].numel() == 0


def test_different_gaussians_rejected(two_graphs):
    a, _ = two_graphs
    other = graph([1], [[0]], [[1.0]], gaussian=(0.0, 0.2, 3.0), id="mp-1")
    with pytest.raises(ValueError, match=r"graphs\[1\] \('mp-1'\) has gaussian"):
        collate_graphs([a, other])


def test_different_tables_rejected(two_graphs):
    a, _ = two_graphs
    other = graph([1], [[0]], [[1.0]], table=np.ones((4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="atom feature table of shape"):
        collate_graphs([a, other])


def test_non_graph_and_empty_rejected(two_graphs):
    with pytest.raises(TypeError, match=r"graphs\[1\] is a str, not a CrystalGraph"):
        collate_graphs([two_graphs[0], "NaCl.cif"])
    with pytest.raises(ValueError, match="empty"):
        collate_graphs([])


def test_dataset_and_collate_fn(two_graphs):
    ds = GraphDataset(list(two_graphs), np.array([[1.5], [2.5]]))
    assert len(ds) == 2
    X, y = collate_fn([ds[0], ds[1]])
    assert isinstance(X, GraphBatch)
    assert len(X) == 2
    assert y.dtype == torch.float32
    assert y.tolist() == [[1.5], [2.5]]
    kwargs = X.to("cpu")
    assert kwargs["n_crystals"] == 2
    # integer labels stay integers (CrossEntropyLoss), no y gives placeholders
    _, labels = collate_fn([(two_graphs[0], 1), (two_graphs[1], 0)])
    assert labels.dtype == torch.int64
    _, none = collate_fn([GraphDataset(list(two_graphs))[0]])
    assert none.tolist() == [0]
    with pytest.raises(ValueError, match="2 graphs but 3 targets"):
        GraphDataset(list(two_graphs), [1, 2, 3])
