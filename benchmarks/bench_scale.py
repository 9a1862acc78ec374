"""Scale: featurization per worker process, whole-dataset featurization, the on-disk store.

Run from the repository root (about 5 minutes on 2 idle cores)::

    python benchmarks/bench_scale.py                   # everything
    python benchmarks/bench_scale.py featurize store   # some parts only

Parts, each measured in fresh subprocesses (peak RSS from ``resource.getrusage``):

* ``featurize``: ``CrystalGraphFeaturizer().fit_transform`` on all 7,572 perovskites and all
  4,764 Matbench dielectric structures (parsed before timing, cold cache, ``n_jobs=1``):
  structures/s, peak RSS, bytes per atom of the graphs.
* ``workers``: where the featurization time goes when a search runs in worker processes.
  ``cross_validate(n_jobs=2)`` (loky, 4 folds) and a 2-candidate ``GridSearchCV`` on a dask
  ``LocalCluster`` (2 processes, 1 thread each), on the first 300 dielectric structures (a tiny
  CGCNN, 1 epoch: the featurization is what is measured), X = Structures or X = the graphs of
  one featurization in the parent; every ``transform`` call records its process id, seconds
  and the neighbour searches it did (``cache_info()['misses']``), so the cost per worker is
  measured, not inferred.
* ``store``: ``write_graph_store`` of the perovskites in shards of 1,000 (time, disk, peak
  RSS), then in a new process training ``CGCNNRegressor`` (default model) for 2 epochs from the
  store and predicting from it, with the peak RSS of that process; the time to collate all
  batches of 256 (CPU work a GPU run still needs per epoch); an extrapolation to 1 million
  structures from these rates.

Results go to ``benchmarks/results/bench_scale.json`` (with the load average during the run:
the machine is shared).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "bench_scale.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load(name: str):
    from cgcnn_sk.datasets import load_matbench, load_perovskites

    if name == "perovskites":
        return load_perovskites(DATA / "perov5")
    return load_matbench(name, data_home=DATA, download_if_missing=False)


# --------------------------------------------------------------------------------------------
# children (one fresh process each)
# --------------------------------------------------------------------------------------------


def child_featurize(name: str) -> dict:
    from cgcnn_sk import CrystalGraphFeaturizer

    t = time.perf_counter()
    structures, _ = load(name)
    load_s = time.perf_counter() - t
    rss_loaded = rss_mb()
    t = time.perf_counter()
    graphs = CrystalGraphFeaturizer().fit_transform(structures)
    dt = time.perf_counter() - t
    return {
        "n_structures": len(structures), "n_atoms": graphs.n_atoms, "parse_s": load_s,
        "featurize_s": dt, "structures_per_s": len(structures) / dt,
        "atoms_per_s": graphs.n_atoms / dt, "bytes_per_atom": graphs.nbytes / graphs.n_atoms,
        "graphs_mb": graphs.nbytes / 2**20, "rss_after_parse_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
    }


class _Logged:
    """Mixin: every transform appends (pid, seconds, items, searches) to a log file."""

    log_path = None

    def transform(self, X):
        from cgcnn_sk.graph._featurizer import cache_info

        misses = cache_info()["misses"]
        t = time.perf_counter()
        out = super().transform(X)
        rec = {"pid": os.getpid(), "s": time.perf_counter() - t, "items": len(X),
               "searched": cache_info()["misses"] - misses}
        with open(self.log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return out


def _per_worker(log: Path, parent: int) -> dict:
    recs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    out: dict = {}
    for r in recs:
        w = out.setdefault("parent" if r["pid"] == parent else f"worker-{r['pid']}",
                           {"transform_calls": 0, "featurize_s": 0.0, "searched": 0})
        w["transform_calls"] += 1
        w["featurize_s"] += r["s"]
        w["searched"] += r["searched"]
    log.unlink(missing_ok=True)
    return out


def child_workers(n: int) -> dict:
    import joblib
    import numpy as np
    from sklearn.model_selection import GridSearchCV, KFold, cross_validate
    from sklearn.pipeline import Pipeline

    from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer

    class LoggedFeaturizer(_Logged, CrystalGraphFeaturizer):
        pass

    structures, y = load("dielectric")  # parses faster than the perovskites' CIF text
    structures, y = structures[:n], np.log10(np.asarray(y[:n]))
    tmp = Path(tempfile.mkdtemp())
    LoggedFeaturizer.log_path = str(tmp / "log.jsonl")
    log = Path(LoggedFeaturizer.log_path)

    def pipe():
        return Pipeline([("graph", LoggedFeaturizer()),
                         ("cgcnn", CGCNNRegressor(max_epochs=1, batch_size=128, random_state=0,
                                                  module__atom_fea_len=16, module__n_conv=1,
                                                  module__h_fea_len=16))])

    out: dict = {"n_structures": n}
    t = time.perf_counter()
    graphs = CrystalGraphFeaturizer().fit_transform(structures)  # not logged: the parent's
    out["parent_featurize_once_s"] = time.perf_counter() - t
    cv = KFold(4, shuffle=True, random_state=0)
    for label, X in (("structures", structures), ("graphs", graphs)):
        t = time.perf_counter()
        cross_validate(pipe(), X, y, cv=cv, n_jobs=2)
        out[f"cross_validate_loky_X={label}"] = {
            "wall_s": time.perf_counter() - t, "per_process": _per_worker(log, os.getpid())}

    import dask
    from distributed import Client, LocalCluster

    grid = {"graph__max_num_nbr": [8, 12]}
    # a loaded shared machine: the default 30 s comm timeouts were hit once
    with dask.config.set({"distributed.comm.timeouts.connect": "300s",
                          "distributed.comm.timeouts.tcp": "300s"}), \
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster):
        for label, X in (("structures", structures), ("graphs", graphs)):
            t = time.perf_counter()
            with joblib.parallel_backend("dask"):
                GridSearchCV(pipe(), grid, cv=cv, n_jobs=-1).fit(X, y)
            out[f"grid_search_dask_X={label}"] = {
                "wall_s": time.perf_counter() - t, "n_fits": 8,
                "per_process": _per_worker(log, os.getpid())}
    return out


def child_store_write(path: str) -> dict:
    import numpy as np

    from cgcnn_sk import write_graph_store

    structures, y = load("perovskites")
    np.save(Path(path).parent / "y.npy", y)
    rss_loaded = rss_mb()
    t = time.perf_counter()
    store = write_graph_store(path, structures, shard_size=1000)
    dt = time.perf_counter() - t
    disk = sum(f.stat().st_size for f in Path(path).iterdir())
    return {"n_structures": len(store), "n_atoms": store.n_atoms, "write_s": dt,
            "structures_per_s": len(store) / dt, "disk_bytes": disk,
            "disk_bytes_per_atom": disk / store.n_atoms, "n_shards": len(store.header["shards"]),
            "rss_after_parse_mb": rss_loaded, "peak_rss_mb": peak_rss_mb()}


def child_store_train(path: str) -> dict:
    import numpy as np
    import torch

    from cgcnn_sk import CGCNNRegressor, GraphStore
    from cgcnn_sk.graph._collate import collate_graphs

    rss0 = rss_mb()
    store = GraphStore(path)
    y = np.load(Path(path).parent / "y.npy")
    t = time.perf_counter()
    for a in range(0, len(store), 256):
        collate_graphs(list(store[a:a + 256]))
    collate_s = time.perf_counter() - t
    net = CGCNNRegressor(max_epochs=2, batch_size=256, random_state=0)
    t = time.perf_counter()
    net.fit(store, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = net.predict(store)
    predict_s = time.perf_counter() - t
    return {"n_structures": len(store), "torch_threads": torch.get_num_threads(),
            "epoch_s": [float(v) for v in net.history[:, "dur"]], "fit_s": fit_s,
            "predict_s": predict_s, "train_mae_after_2_epochs": float(np.abs(pred - y).mean()),
            "collate_all_batches_s": collate_s, "rss_after_imports_mb": rss0,
            "peak_rss_mb": peak_rss_mb()}


CHILDREN = {"featurize": child_featurize, "workers": child_workers,
            "store_write": child_store_write, "store_train": child_store_train}


def run_child(task: str, *args) -> dict:
    cmd = [sys.executable, __file__, "_child", task, json.dumps(args)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode:
        raise RuntimeError(f"{task} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def estimate_million(results: dict) -> dict:
    """1e6 structures from the measured rates; atoms per structure from each dataset."""
    out = {}
    write = results["store"]["write"]
    train = results["store"]["train"]
    per_struct_epoch = min(train["epoch_s"]) / train["n_structures"]
    per_atom_epoch = min(train["epoch_s"]) / write["n_atoms"]
    for name, r in results["featurize"].items():
        atoms = r["n_atoms"] / r["n_structures"]
        out[name] = {
            "atoms_per_structure": atoms,
            "disk_gb": 1e6 * atoms * write["disk_bytes_per_atom"] / 1e9,
            "featurize_h_one_process": 1e6 * atoms / r["atoms_per_s"] / 3600,
            # training cost scales with atoms (and bonds = M per atom), measured on perovskites
            "epoch_h_cpu_here": 1e6 * (per_struct_epoch if name == "perovskites"
                                       else atoms * per_atom_epoch) / 3600,
            "collate_h_per_epoch_floor_for_a_gpu": 1e6 * atoms * train["collate_all_batches_s"]
            / write["n_atoms"] / 3600,
        }
    return out


def main(parts: list[str]) -> None:
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["load_average_at_start"] = os.getloadavg()
    if "featurize" in parts:
        results["featurize"] = {name: run_child("featurize", name)
                                for name in ("perovskites", "dielectric")}
        print(json.dumps(results["featurize"], indent=1))
    if "workers" in parts:
        results["workers"] = run_child("workers", 300)
        print(json.dumps(results["workers"], indent=1))
    if "store" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "perovskites")
            results["store"] = {"write": run_child("store_write", path),
                                "train": run_child("store_train", path)}
        print(json.dumps(results["store"], indent=1))
    if "featurize" in results and "store" in results:
        results["one_million_structures"] = estimate_million(results)
        print(json.dumps(results["one_million_structures"], indent=1))
    results["load_average_at_end"] = os.getloadavg()
    OUT.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["_child"]:
        print(json.dumps(CHILDREN[sys.argv[2]](*json.loads(sys.argv[3]))))
    else:
        main(sys.argv[1:] or ["featurize", "workers", "store"])
