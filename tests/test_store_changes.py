"""A graph store changed under a running job, or written by another version, is named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_small_structures

from cgcnn_sk import CGCNNRegressor, InconsistentVersionWarning, __version__
from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer
from cgcnn_sk.graph._store import GraphStore, GraphStoreError, write_graph_store


@pytest.fixture
def store(tmp_path):
    structures, _ = make_small_structures()
    return write_graph_store(tmp_path / "store", structures,
                             CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8), shard_size=7)


@pytest.mark.parametrize("suffix", ["nbr_index", "nbr_dist", "numbers", "offsets"])
def test_a_shard_cut_short_after_open_is_named_at_first_use(store, suffix):
    victim = store.path / f"shard-00001.{suffix}.npy"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # after GraphStore() checked every file
    assert len(store[:7]) == 7  # shard 0 is untouched and still readable
    with pytest.raises(GraphStoreError, match=rf"{victim} changed after the graph store "
                       rf"{store.path} was opened: .*(truncated|not a valid \.npy).*must not be "
                       "rewritten"):
        store[8]


def test_a_shard_deleted_or_replaced_after_open_is_named(store):
    victim = store.path / "shard-00002.nbr_dist.npy"
    victim.unlink()
    with pytest.raises(GraphStoreError, match=rf"{victim} changed after.*missing"):
        list(store)
    np.save(victim, np.zeros((3, 3), dtype=np.float64))
    with pytest.raises(GraphStoreError, match=rf"{victim} changed after.*float64"):
        store[19]


def test_fit_on_a_store_cut_short_names_the_file(store):
    victim = store.path / "shard-00002.nbr_index.npy"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(GraphStoreError, match=str(victim)):
        CGCNNRegressor(max_epochs=1, module__atom_fea_len=4, module__h_fea_len=4,
                       module__n_conv=1).fit(store, np.arange(20.0))


def test_the_header_records_the_version_and_another_one_warns(store):
    head = store.path / "header.json"
    header = json.loads(head.read_text())
    assert header["cgcnn_sk_version"] == __version__
    header["cgcnn_sk_version"] = "0.0.1"
    head.write_text(json.dumps(header))
    with pytest.warns(InconsistentVersionWarning, match=rf"{head} was saved by cgcnn_sk 0\.0\.1"):
        GraphStore(store.path)


@pytest.mark.parametrize("key", ["max_num_nbr", "gaussian", "shards"])
def test_a_header_lacking_a_key_is_named(store, key):
    head = store.path / "header.json"
    header = json.loads(head.read_text())
    del header[key]
    head.write_text(json.dumps(header))
    with pytest.raises(GraphStoreError, match=rf"{head} lacks '{key}'.*write the store again"):
        GraphStore(store.path)


def test_an_atom_table_cut_short_is_named(store):
    table = store.path / "atom_table.npy"
    table.write_bytes(table.read_bytes()[:100])
    with pytest.raises(GraphStoreError, match=rf"{table} is not a readable \.npy file"):
        GraphStore(store.path)

