"""Tests of cgcnn_sk.graph._store: the on-disk graph store (write in shards, read memory-mapped)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from conftest import make_small_structures
from pymatgen.core import Lattice, Structure
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNRegressor
from cgcnn_sk.graph._crystal import CrystalGraphs
from cgcnn_sk.graph._featurizer import CrystalGraphError, CrystalGraphFeaturizer
from cgcnn_sk.graph._store import GraphStore, GraphStoreError, write_graph_store

SMALL = dict(module__atom_fea_len=16, module__h_fea_len=16, module__n_conv=2)
FEATURIZER = dict(radius=6.0, max_num_nbr=8)


@pytest.fixture(scope="module")
def data():
    """The 20 small crystals, their in-memory graphs (radius 6, M 8), and the targets."""
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(**FEATURIZER).fit_transform(structures)
    return structures, graphs, y


@pytest.fixture
def store(data, tmp_path):
    """The 20 crystals written in shards of 7 (so 7 + 7 + 6)."""
    structures, _, _ = data
    return write_graph_store(tmp_path / "store", structures,
                             CrystalGraphFeaturizer(**FEATURIZER), shard_size=7)


def assert_same_graph(a, b):
    for field in ("numbers", "nbr_index", "nbr_dist"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        np.testing.assert_array_equal(x, y, err_msg=field)
    np.testing.assert_array_equal(a.atom_table, b.atom_table)
    assert a.gaussian == b.gaussian and a.id == b.id


def test_round_trip_equals_in_memory_graphs(data, store):
    _, graphs, _ = data
    assert len(store) == 20
    assert [s["n_graphs"] for s in store.header["shards"]] == [7, 7, 6]
    for a, b in zip(store, graphs, strict=True):
        assert_same_graph(a, b)
    assert store.n_atoms == graphs.n_atoms
    assert store.nbytes == graphs.nbytes  # 2 + 8 * M bytes per atom, as in memory


def test_header_records_the_featurizer_settings(store):
    h = json.loads((store.path / "header.json").read_text())
    assert h["featurizer"] == {"radius": 6.0, "max_num_nbr": 8, "dmin": 0.0, "step": 0.2,
                               "atom_features": "cgcnn"}
    assert h["gaussian"] == [0.0, 0.2, 6.0] and h["n_graphs"] == 20
    # the shard arrays are the atoms of the shard's graphs concatenated
    offsets = np.load(store.path / "shard-00001.offsets.npy")
    assert offsets[0] == 0 and offsets[-1] == h["shards"][1]["n_atoms"] and len(offsets) == 8


def test_indexing_like_crystal_graphs(data, store):
    _, graphs, _ = data
    assert_same_graph(store[-1], graphs[19])
    assert_same_graph(store[np.int64(8)], graphs[8])  # second shard
    view = store[3:17:2]
    assert isinstance(view, GraphStore) and len(view) == 7
    for a, b in zip(view, graphs[3:17:2], strict=True):
        assert_same_graph(a, b)
    mask = np.arange(20) % 3 == 0
    assert [g.id for g in store[mask]] == [g.id for g in graphs[mask]]
    assert [g.n_atoms for g in store[[5, 0, 19]]] == [graphs[i].n_atoms for i in (5, 0, 19)]
    assert [g.n_atoms for g in view[[1, -1]]] == [graphs[5].n_atoms, graphs[15].n_atoms]
    with pytest.raises(IndexError, match="out of range for a store of 20"):
        store[20]
    with pytest.raises(IndexError, match="boolean index of length 3 for 20"):
        store[np.ones(3, dtype=bool)]


def test_graphs_are_read_only_views_of_the_files(store):
    g = store[9]
    assert not g.nbr_index.flags.writeable and not g.nbr_dist.flags.writeable
    assert not g.nbr_index.flags.owndata  # a view, not a copy
    assert g.atom_table is store[0].atom_table  # one shared table, as from the featurizer


def test_pickle_keeps_the_path_not_the_graphs(data, store):
    view = store[[2, 11]]
    blob = pickle.dumps(view)
    assert len(blob) < 1000  # the 20 graphs alone are several kB
    back = pickle.loads(blob)
    assert isinstance(back, GraphStore) and back.path == store.path
    assert_same_graph(back[1], data[1][11])


def test_training_from_the_store_equals_training_from_memory(data, store):
    _, graphs, y = data
    kw = dict(max_epochs=4, batch_size=8, random_state=0, **SMALL)
    p_mem = CGCNNRegressor(**kw).fit(graphs, y).predict(graphs)
    net = CGCNNRegressor(**kw).fit(store, y)
    np.testing.assert_array_equal(net.predict(store), p_mem)
    np.testing.assert_array_equal(net.predict(graphs), p_mem)


def test_pipeline_featurizer_recuts_store_graphs(data, store):
    _, graphs, y = data
    def pipe():
        return Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0, max_num_nbr=4)),
                         ("cgcnn", CGCNNRegressor(max_epochs=2, random_state=1, **SMALL))])
    p_mem = pipe().fit(graphs, y).predict(graphs)
    np.testing.assert_array_equal(pipe().fit(store, y).predict(store), p_mem)


def test_generator_input_and_graph_input(data, tmp_path):
    structures, graphs, _ = data
    s1 = write_graph_store(tmp_path / "gen", (s for s in structures),
                           CrystalGraphFeaturizer(**FEATURIZER), shard_size=64)
    assert len(s1.header["shards"]) == 1
    s2 = write_graph_store(tmp_path / "graphs", graphs, CrystalGraphFeaturizer(**FEATURIZER))
    for a, b, c in zip(s1, s2, graphs, strict=True):
        assert_same_graph(a, c)
        assert_same_graph(b, c)


def test_missing_shard_file_is_named(store):
    victim = store.path / "shard-00001.nbr_dist.npy"
    victim.unlink()
    with pytest.raises(GraphStoreError, match=f"graph store file missing: {victim}"):
        GraphStore(store.path)


def test_truncated_shard_file_is_named(store):
    victim = store.path / "shard-00002.nbr_index.npy"
    data = victim.read_bytes()
    victim.write_bytes(data[:-10])
    with pytest.raises(GraphStoreError, match=f"{victim} is {len(data) - 10} bytes, expected "
                       f"{len(data)}.*truncated"):
        GraphStore(store.path)


def test_shard_of_wrong_shape_is_named(store):
    victim = store.path / "shard-00000.numbers.npy"
    np.save(victim, np.zeros(3, dtype=np.int16))
    with pytest.raises(GraphStoreError, match=f"{victim} holds int16\\(3,\\), the header "
                       "expects int16\\("):
        GraphStore(store.path)


def test_garbage_shard_file_is_named(store):
    victim = store.path / "shard-00000.offsets.npy"
    victim.write_bytes(b"not numpy")
    with pytest.raises(GraphStoreError, match=f"{victim} is not a valid .npy file"):
        GraphStore(store.path)


def test_bad_ids_file_is_named_on_first_access(store):
    victim = store.path / "shard-00001.ids.json"
    victim.write_text("[1, 2")
    reopened = GraphStore(store.path)
    reopened[0]  # shard 0 is fine
    with pytest.raises(GraphStoreError, match=f"{victim} is not valid JSON"):
        reopened[7]


def test_missing_or_foreign_header(tmp_path, store):
    (store.path / "header.json").write_text("{")
    with pytest.raises(GraphStoreError, match="header.json is not valid JSON"):
        GraphStore(store.path)
    (store.path / "header.json").write_text('{"format": "other"}')
    with pytest.raises(GraphStoreError, match="is not a cgcnn_sk graph store header"):
        GraphStore(store.path)
    with pytest.raises(GraphStoreError, match="not a graph store: .*empty.header.json is missing"):
        GraphStore(tmp_path / "empty")


def test_bad_items_are_all_reported_and_no_half_store_opens(data, tmp_path):
    structures, _, _ = data
    lonely = Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]])  # no neighbour within 6 A
    items = structures[:5] + [lonely] + structures[5:15] + [lonely] + structures[15:]
    feat = CrystalGraphFeaturizer(**FEATURIZER)
    with pytest.raises(CrystalGraphError, match="2 of 22 structures") as info:
        write_graph_store(tmp_path / "s", items, feat, shard_size=4)
    assert [pos for pos, _, _ in info.value.errors] == [5, 16]  # positions in the whole input
    with pytest.raises(GraphStoreError, match="unfinished write_graph_store"):
        GraphStore(tmp_path / "s")
    # a rerun replaces the unfinished directory without overwrite=True
    store = write_graph_store(tmp_path / "s", structures, feat, shard_size=4)
    assert len(store) == 20 and len(store.header["shards"]) == 5


def test_existing_directories_are_not_clobbered(data, store, tmp_path):
    structures, _, _ = data
    with pytest.raises(FileExistsError, match="pass overwrite=True.*holds a graph store"):
        write_graph_store(store.path, structures[:2])
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a graph store: refusing to delete it"):
        write_graph_store(other, structures[:2], overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    replaced = write_graph_store(store.path, structures[:2], overwrite=True)
    assert len(replaced) == 2 and isinstance(replaced, CrystalGraphs)


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_bad_shard_size(tmp_path, size):
    with pytest.raises(ValueError, match=f"shard_size must be a positive integer, got {size}"):
        write_graph_store(tmp_path / "x", [], shard_size=size)


def test_empty_input(tmp_path):
    with pytest.raises(ValueError, match="empty input"):
        write_graph_store(tmp_path / "x", [])
