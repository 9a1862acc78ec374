"""Scale-out: GridSearchCV on a dask.distributed cluster gives the local run's scores, and the
workers do no neighbour search when the graphs (or a graph store) are passed as X."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import torch
from conftest import make_small_structures
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from cgcnn_sk import CGCNNRegressor
from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer
from cgcnn_sk.graph._store import write_graph_store

distributed = pytest.importorskip("distributed")

SMALL = dict(module__atom_fea_len=16, module__h_fea_len=16, module__n_conv=2)
GRID = {"graph__max_num_nbr": [4, 8]}


def count_searches():
    """Wrap the neighbour search of this process to count the structures it searches."""
    from cgcnn_sk.graph import _crystal as _graph

    inner = getattr(_graph.find_neighbors_batch, "__wrapped__", _graph.find_neighbors_batch)

    def counted(items, *args, **kwargs):
        counted.n += len(items)
        return inner(items, *args, **kwargs)

    counted.n = 0
    counted.__wrapped__ = inner
    _graph.find_neighbors_batch = counted


def n_searched():
    from cgcnn_sk.graph import _crystal as _graph

    return getattr(_graph.find_neighbors_batch, "n", None)


def n_executed(dask_worker):
    return dask_worker.state.executed_count


def search():
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8)),
                     ("cgcnn", CGCNNRegressor(max_epochs=3, batch_size=8, random_state=0,
                                              **SMALL))])
    return GridSearchCV(pipe, GRID, cv=KFold(3, shuffle=True, random_state=0),
                        scoring="neg_mean_absolute_error", n_jobs=-1)


def scores(gs):
    keys = [f"split{k}_test_score" for k in range(3)] + ["mean_test_score", "rank_test_score"]
    return {k: gs.cv_results_[k] for k in keys}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    return structures, graphs, y


@pytest.mark.slow
def test_dask_grid_search_equals_local_and_workers_do_not_search(client, data, tmp_path):
    import cgcnn_sk

    structures, graphs, y = data
    # the workers import the same cgcnn_sk as this process (the checkout under test)
    assert set(client.run(lambda: cgcnn_sk.__file__).values()) == {cgcnn_sk.__file__}
    # dask's workers run torch on 1 thread; the same thread count here makes the float
    # reductions (and so the scores) bit-identical
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = search().set_params(n_jobs=None).fit(graphs, y)
    finally:
        torch.set_num_threads(threads)

    client.run(count_searches)
    before = sum(client.run(n_executed).values())
    with joblib.parallel_backend("dask"):
        on_dask = search().fit(graphs, y)
    for key, value in scores(local).items():
        np.testing.assert_array_equal(scores(on_dask)[key], value, err_msg=key)
    assert sum(client.run(n_executed).values()) - before >= 6  # 2 candidates x 3 folds ran there
    assert set(client.run(n_searched).values()) == {0}  # graphs as X: only re-cuts

    # a graph store as X: each task receives only its path and reads the shards
    store = write_graph_store(tmp_path / "store", graphs,
                              CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8), shard_size=8)
    with joblib.parallel_backend("dask"):
        from_store = search().fit(store, y)
    for key, value in scores(local).items():
        np.testing.assert_array_equal(scores(from_store)[key], value, err_msg=key)
    assert set(client.run(n_searched).values()) == {0}

    # control (the counter works): Structures as X are searched on the workers. Not only once
    # per worker: inside a task the featurizer's own joblib call resolves to the dask backend,
    # so the searches become nested tasks and concurrent tasks of one worker miss together.
    with joblib.parallel_backend("dask"):
        from_structures = search().fit(structures, y)
    np.testing.assert_array_equal(scores(from_structures)["mean_test_score"],
                                  scores(local)["mean_test_score"])
    assert sum(client.run(n_searched).values()) >= len(structures)
