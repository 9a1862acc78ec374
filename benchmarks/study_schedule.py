"""How short can the studies' schedule be? The recipe's network at E epochs on the official folds.

Fits ``CGCNNRegressor(max_epochs=E, random_state=seed)`` (everything else the defaults: the
recipe) on the training rows of each official jdft2d fold and scores its test rows; each
finished fit is appended to ``benchmarks/results/study_design/schedule.jsonl`` and skipped on a
rerun. The 300-epoch figures to compare with are the committed recipe members
(``benchmarks/results/matbench/jdft2d/recipe/folds/fold<k>_member<m>.csv``).

    OMP_NUM_THREADS=1 python benchmarks/study_schedule.py --epochs 60 100 150 --n-jobs 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d, matbench_folds

OUT = Path(__file__).resolve().parent / "results" / "study_design" / "schedule.jsonl"


def one(graphs, y, fold, train, test, epochs, seed, m):
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    cut = CrystalGraphFeaturizer(max_num_nbr=m).fit_transform(graphs)
    net = CGCNNRegressor(max_epochs=epochs, random_state=seed)
    net.fit(cut[train], y[train])
    mae = float(np.mean(np.abs(net.predict(cut[test]) - y[test])))
    return {"fold": fold, "epochs": epochs, "seed": seed, "max_num_nbr": m, "mae": mae,
            "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, nargs="+", default=[100])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--m", type=int, nargs="+", default=[12])
    p.add_argument("--n-jobs", type=int, default=2)
    a = p.parse_args()
    structures, y = load_jdft2d()
    y = np.asarray(y, float)
    graphs = CrystalGraphFeaturizer(max_num_nbr=max(a.m)).fit_transform(structures)
    folds = list(matbench_folds(len(y)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if OUT.exists():
        for line in OUT.read_text().splitlines():
            r = json.loads(line)
            done.add((r["fold"], r["epochs"], r["seed"], r["max_num_nbr"]))
    jobs = [(k, e, s, m) for e in a.epochs for s in a.seeds for m in a.m
            for k in range(len(folds)) if (k, e, s, m) not in done]
    for r in Parallel(n_jobs=a.n_jobs, return_as="generator_unordered")(
            delayed(one)(graphs, y, k, *folds[k], e, s, m) for k, e, s, m in jobs):
        with OUT.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print(r, flush=True)


if __name__ == "__main__":
    main()
