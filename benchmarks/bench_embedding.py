"""CGCNN as a featurizer on matbench_jdft2d: a random forest on the learned crystal vectors.

On each of the five official Matbench folds: train a ``CGCNNRegressor`` (its defaults: L1 loss,
300 epochs on the whole training part; ``--epochs`` changes the budget; ``random_state=0``),
take its crystal vectors (``transform``, ``layer="pooled"`` and ``"hidden"``) of the training
and test parts, fit
``RandomForestRegressor(n_estimators=500, random_state=0)`` on the training vectors and score
the test part by MAE. The CGCNN's own test MAE is recorded beside them, and the committed
RF-on-Magpie+SCM per-fold MAEs (``benchmarks/results/baselines_jdft2d.json``, same folds, same
forest) are copied in for the comparison.

Each fold is written to the output JSON as soon as it finishes; a rerun skips finished folds.
Folds can run in separate processes (``--folds 3 4 --out other.json``) and be merged after
(``--merge other.json``: adds their folds to ``--out``, same configuration only).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_embedding.py \
        > benchmarks/results/bench_embedding.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d, matbench_folds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _summarise(record: dict) -> None:
    """Means over the folds done, in fold order."""
    record["folds"] = dict(sorted(record["folds"].items()))
    done = record["folds"].values()
    for key in ("cgcnn_mae", "rf_pooled_mae", "rf_hidden_mae", "rf_magpie_scm_mae"):
        record[f"mean_{key}"] = float(np.mean([f[key] for f in done]))
    record["n_folds_done"] = len(record["folds"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--folds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_embedding_jdft2d.json")
    parser.add_argument("--merge", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    if args.merge:
        record = json.loads(args.out.read_text())
        for path in args.merge:
            other = json.loads(path.read_text())
            if other["config"] != record["config"]:
                raise SystemExit(f"{path} was run with another configuration")
            record["folds"].update(other["folds"])
        _summarise(record)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        return

    structures, y = load_jdft2d()
    graphs = CrystalGraphFeaturizer().fit_transform(structures)
    baseline = json.loads((RESULTS / "baselines_jdft2d.json").read_text())
    config = {
        "cgcnn": f"CGCNNRegressor(max_epochs={args.epochs}, random_state=0), other parameters "
        "default (L1 loss, train_split=None, patience=None)",
        "featurizer": "CrystalGraphFeaturizer() defaults",
        "forest": "RandomForestRegressor(n_estimators=500, random_state=0, n_jobs=1)",
        "folds": "matbench_folds (KFold(5, shuffle=True, random_state=18012019))",
        "torch_threads": torch.get_num_threads(),
    }
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    if record.get("config") != config:
        record = {"config": config, "dataset": "matbench_jdft2d", "unit": "meV/atom",
                  "command": f"python benchmarks/bench_embedding.py --epochs {args.epochs}",
                  "folds": {}}
    for k, (train, test) in enumerate(matbench_folds(len(y))):
        if k not in args.folds or str(k) in record["folds"]:
            continue
        t0 = time.perf_counter()
        net = CGCNNRegressor(max_epochs=args.epochs, random_state=0)
        net.fit(graphs[train], y[train])
        fit_s = time.perf_counter() - t0
        fold = {
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "cgcnn_mae": float(mean_absolute_error(y[test], net.predict(graphs[test]))),
            "cgcnn_epochs_run": len(net.history),
            "cgcnn_fit_s": round(fit_s, 1),
            "rf_magpie_scm_mae": baseline["folds"][str(k)]["mae"],
        }
        for layer in ("pooled", "hidden"):
            forest = RandomForestRegressor(n_estimators=500, random_state=0, n_jobs=1)
            forest.fit(net.transform(graphs[train], layer=layer), y[train])
            pred = forest.predict(net.transform(graphs[test], layer=layer))
            fold[f"rf_{layer}_mae"] = float(mean_absolute_error(y[test], pred))
            fold[f"rf_{layer}_width"] = int(net.transform(graphs[test[:1]], layer=layer).shape[1])
        record["folds"][str(k)] = fold
        print(k, json.dumps(fold), flush=True)
        _summarise(record)
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
