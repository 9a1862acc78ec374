"""Choose the training recipe by validation inside the training rows of Matbench fold 0.

Every candidate is scored by a 3-fold cross-validation over the *training* rows of the official
fold 0 (its test rows are never read), so the choice made here is honest for all five folds.
Each finished (candidate, inner fold) is appended to ``benchmarks/results/recipe_search/
<task>.jsonl`` at once; a rerun skips what is there.

    python benchmarks/recipe_search.py --task jdft2d
    python benchmarks/recipe_search.py --task phonons --candidates l1_es l1_300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import KFold

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_matbench, matbench_folds

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "recipe_search"

L1 = {"criterion": torch.nn.L1Loss}
FIXED = {"train_split": None, "patience": None}
#: name -> (featurizer parameters, CGCNNRegressor parameters, log-transform the target)
CANDIDATES = {
    "mse_es": ({}, {}, False),
    "l1_es": ({}, dict(L1), False),
    "l1_es300": ({}, dict(L1, max_epochs=300, patience=60), False),
    "l1_150": ({}, dict(L1, **FIXED, max_epochs=150), False),
    "l1_300": ({}, dict(L1, **FIXED, max_epochs=300), False),
    "l1_600": ({}, dict(L1, **FIXED, max_epochs=600), False),
    "l1_1000": ({}, dict(L1, **FIXED, max_epochs=1000), False),
    "huber_300": ({}, dict(FIXED, criterion=torch.nn.HuberLoss, max_epochs=300), False),
    "l1_300_lr1e-3": ({}, dict(L1, **FIXED, max_epochs=300, lr=1e-3), False),
    "l1_300_silu_nobn": (
        {}, dict(L1, **FIXED, max_epochs=300, module__activation="silu",
                 module__batchnorm=False), False),
    "l1_300_wide": (
        {}, dict(L1, **FIXED, max_epochs=300, module__atom_fea_len=128,
                 module__h_fea_len=256), False),
    "l1_300_conv5": ({}, dict(L1, **FIXED, max_epochs=300, module__n_conv=5), False),
    "l1_300_nh2": ({}, dict(L1, **FIXED, max_epochs=300, module__n_h=2), False),
    "l1_300_m16": ({"max_num_nbr": 16}, dict(L1, **FIXED, max_epochs=300), False),
    "l1_300_wd0": ({}, dict(L1, **FIXED, max_epochs=300, optimizer__weight_decay=0.0), False),
    "l1_300_wd1e-1": (
        {}, dict(L1, **FIXED, max_epochs=300, optimizer__weight_decay=0.1), False),
    "l1_300_bs32": ({}, dict(L1, **FIXED, max_epochs=300, batch_size=32), False),
    "l1_300_log": ({}, dict(L1, **FIXED, max_epochs=300), True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--inner", type=int, default=3)
    args = parser.parse_args()

    structures, y = load_matbench(args.task, data_home=DATA)
    train = matbench_folds(len(y))[0][0]  # fold 0's training rows only
    structures = [structures[i] for i in train]
    y = np.asarray(y, dtype=float)[train]
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{args.task}.jsonl"
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            rec = json.loads(line)
            done.add((rec["candidate"], rec["inner_fold"]))
    graphs = {}
    inner = list(KFold(args.inner, shuffle=True, random_state=0).split(y))
    for name in args.candidates:
        feat_params, params, log = CANDIDATES[name]
        key = tuple(sorted(feat_params.items()))
        if key not in graphs:
            graphs[key] = CrystalGraphFeaturizer(**feat_params).fit_transform(structures)
        for k, (tr, va) in enumerate(inner):
            if (name, k) in done:
                continue
            net = CGCNNRegressor(random_state=0, **params)
            model = (TransformedTargetRegressor(net, func=np.log, inverse_func=np.exp)
                     if log else clone(net))
            t0 = time.perf_counter()
            g = graphs[key]
            model.fit(g[tr], y[tr])
            pred = model.predict(g[va])
            wall = time.perf_counter() - t0
            fitted = model.regressor_ if log else model
            rec = {
                "task": args.task, "candidate": name, "inner_fold": k,
                "mae": float(np.mean(np.abs(pred - y[va]))),
                "epochs": len(fitted.history), "wall_s": round(wall, 1),
                "n_train": len(tr), "n_valid": len(va),
                "torch_threads": torch.get_num_threads(),
            }
            with out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
