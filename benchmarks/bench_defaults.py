"""Defaults that learn: what ``CGCNNRegressor()`` and ``CGCNNClassifier()`` reach untuned.

Two held-out checks, one torch thread each (``OMP_NUM_THREADS=1``)::

    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py                 # every row
    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --rows regressor
    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --rows clf:recipe
    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --rows clf:defaults --cv-seed 1
    python benchmarks/bench_defaults.py --summary                         # print the tables
    OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --speed eager-64 compile-64 eager-256

* ``regressor``: ``CGCNNRegressor()`` on a held-out 20 % of jdft2d
  (``train_test_split(test_size=0.2, random_state=0)``) against predicting the training mean.
* ``clf:<config>``: metal vs non-metal (band gap > 0) on the cubic perovskites
  (``../shared/data/perov5/val.csv.gz``), the CGCNN paper's classification task on a set with
  3.8 % non-metals. A stratified subsample of ``--n`` rows (2000: each fit a few minutes on
  one thread) is split 80/20 (stratified, ``random_state=0``). Each configuration is first
  scored by a stratified 3-fold CV over the 80 % (the only rows that may decide a default),
  then refit on the 80 % and scored on the 20 %, beside the majority-class dummy.

Each finished row is written to ``benchmarks/results/defaults.json`` at once (under a file
lock, so two processes with different ``--rows`` can share it); a rerun skips finished rows.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from cgcnn_sk import CGCNNClassifier, CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.datasets import load_jdft2d, load_perovskites, matbench_folds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results" / "defaults.json"
RECIPE = {"train_split": None, "patience": None, "max_epochs": 300}
#: classifier configurations compared; ``defaults`` is ``CGCNNClassifier()`` as shipped
CONFIGS = {
    "defaults": {},
    "recipe": dict(RECIPE),
    "defaults_balanced": {"class_weight": "balanced"},
    # the recipe's whole-set training at the old epoch budget: are 300 epochs needed?
    "fixed100": {"train_split": None, "patience": None},
    # early stopping on the split's ROC AUC instead of its loss
    "monitor_auc": {"early_stopping_monitor": "roc_auc"},
}


@contextmanager
def _locked():
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # the lock lives beside the system's temporary files, not in the results folder
    with open(Path(tempfile.gettempdir()) / "cgcnn_sk_bench_defaults.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {"rows": {}}


def _save_row(name: str, row: dict) -> None:
    with _locked():
        results = _load()
        results["machine"] = {
            "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "note": "2-core machine shared with other training jobs",
        }
        results["rows"][name] = row
        tmp = OUT.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        tmp.replace(OUT)
    print(name, json.dumps(row), flush=True)


def _done() -> set:
    with _locked():
        return set(_load()["rows"])


def run_regressor() -> None:
    structures, y = load_jdft2d()
    s_tr, s_te, y_tr, y_te = train_test_split(structures, y, test_size=0.2, random_state=0)
    t0 = time.perf_counter()
    featurizer = CrystalGraphFeaturizer()
    g_tr = featurizer.fit_transform(s_tr)
    net = CGCNNRegressor(random_state=0).fit(g_tr, y_tr)
    pred = net.predict(featurizer.transform(s_te))
    wall = time.perf_counter() - t0
    mae = float(np.mean(np.abs(pred - y_te)))
    dummy = float(np.mean(np.abs(np.mean(y_tr) - y_te)))
    _save_row("regressor", {
        "task": "jdft2d, train_test_split(test_size=0.2, random_state=0)",
        "estimator": "CrystalGraphFeaturizer() + CGCNNRegressor(random_state=0)",
        "n_train": len(y_tr), "n_test": len(y_te), "epochs": len(net.history),
        "mae": round(mae, 3), "mean_predictor_mae": round(dummy, 3),
        "ratio": round(mae / dummy, 4), "wall_s": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
    })


def perovskite_task(n: int):
    """Graphs and labels (1: band gap > 0) of the stratified ``n``-row subsample, 80/20 split."""
    structures, gap = load_perovskites(DATA / "perov5" / "val.csv.gz", target="ind_gap")
    labels = (gap > 0).astype(int)
    keep, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels,
                               random_state=0)
    graphs = CrystalGraphFeaturizer().fit_transform([structures[i] for i in keep])
    labels = labels[keep]
    tr, te = train_test_split(np.arange(n), test_size=0.2, stratify=labels, random_state=0)
    return graphs, labels, tr, te


def _scores(y, proba) -> dict:
    return {
        "accuracy": round(float(accuracy_score(y, proba.argmax(1))), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, proba.argmax(1))), 4),
        "roc_auc": round(float(roc_auc_score(y, proba[:, 1])), 4),
        "log_loss": round(float(log_loss(y, proba, labels=[0, 1])), 4),
    }


def _fit_score(params: dict, graphs, labels, tr, te) -> dict:
    t0 = time.perf_counter()
    if params is None:
        model = DummyClassifier(strategy="prior").fit(np.zeros((len(tr), 1)), labels[tr])
        proba = model.predict_proba(np.zeros((len(te), 1)))
        epochs = 0
    else:
        model = CGCNNClassifier(random_state=0, **params).fit(graphs[tr], labels[tr])
        proba = model.predict_proba(graphs[te])
        epochs = len(model.history)
    return {
        **_scores(labels[te], proba), "epochs": epochs,
        "wall_s": round(time.perf_counter() - t0, 1), "n_train": len(tr), "n_test": len(te),
        "positives_test": int(labels[te].sum()), "torch_threads": torch.get_num_threads(),
    }


def run_classifier(configs: list[str], n: int, cv_seed: int = 0) -> None:
    """Score ``configs``: 3-fold CV over the training rows (shuffled by ``cv_seed``; rows
    ``cv0``-``cv2``, or ``s<seed>cv0``... for another seed), then the held-out rows."""
    done = _done()
    prefix = "" if cv_seed == 0 else f"s{cv_seed}"
    parts = [f"{prefix}cv{k}" for k in range(3)] + ([] if cv_seed else ["heldout"])
    jobs = [(c, p) for c in configs for p in parts if f"clf:{c}:{p}" not in done]
    if not jobs:
        return
    graphs, labels, tr, te = perovskite_task(n)
    inner = list(StratifiedKFold(3, shuffle=True, random_state=cv_seed).split(tr, labels[tr]))
    for config, part in jobs:
        params = None if config == "dummy" else CONFIGS[config]
        if part == "heldout":
            fit_rows, score_rows = tr, te
        else:
            a, b = inner[int(part[-1])]
            fit_rows, score_rows = tr[a], tr[b]
        row = _fit_score(params, graphs, labels, fit_rows, score_rows)
        row.update(config=config, params=repr(params), n_subsample=n, cv_seed=cv_seed,
                   task="perov5 val: ind_gap > 0, stratified subsample, 80/20 random_state=0")
        _save_row(f"clf:{config}:{part}", row)


def run_speed(variant: str) -> None:
    """20 epochs of the default regressor on jdft2d fold 0's training rows: epochs/s, results.

    ``variant``: ``eager-64``, ``compile-64`` (skorch's ``compile=True``: ``torch.compile``),
    ``eager-256`` (batch 256).
    """
    mode, batch = variant.split("-")
    structures, y = load_jdft2d()
    train = matbench_folds(len(y))[0][0]
    graphs = CrystalGraphFeaturizer().fit_transform([structures[i] for i in train])
    extra = {"compile": True} if mode == "compile" else {}
    net = CGCNNRegressor(max_epochs=20, random_state=0, batch_size=int(batch), **extra)
    t0 = time.perf_counter()
    net.fit(graphs, np.asarray(y)[train])
    wall = time.perf_counter() - t0
    durations = net.history[:, "dur"]
    _save_row(f"speed:{variant}", {
        "fit_wall_s": round(wall, 1), "median_epoch_s": round(float(np.median(durations)), 3),
        "epochs_per_s_after_first": round((len(durations) - 1) / float(sum(durations[1:])), 3),
        "train_mae_last": round(float(net.history[-1, "train_mae"]), 3),
        "predict_first3": net.predict(graphs[:3]).round(3).tolist(),
        "n_train": len(train), "torch_threads": torch.get_num_threads(),
    })


def summary() -> None:
    rows = _load()["rows"]
    if "regressor" in rows:
        r = rows["regressor"]
        print(f"regressor: MAE {r['mae']:.2f}, mean predictor {r['mean_predictor_mae']:.2f}, "
              f"ratio {r['ratio']:.3f}, {r['epochs']} epochs, {r['wall_s']} s")
    for name in sorted(n for n in rows if n.startswith("speed:")):
        r = rows[name]
        print(f"{name}: fit {r['fit_wall_s']} s, median epoch {r['median_epoch_s']} s, "
              f"train MAE {r['train_mae_last']}, predictions {r['predict_first3']}")
    metrics = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
    print("config | part | " + " | ".join(metrics) + " | epochs | wall s")
    for config in ["dummy", *CONFIGS]:
        for prefix in ("", "s1"):
            cv = [rows[f"clf:{config}:{prefix}cv{k}"] for k in range(3)
                  if f"clf:{config}:{prefix}cv{k}" in rows]
            if not cv:
                continue
            means = [f"{np.mean([r[m] for r in cv]):.3f} ± {np.std([r[m] for r in cv]):.3f}"
                     for m in metrics]
            seed = prefix[1:] or "0"
            print(f"{config} | 3-fold CV seed {seed} ({len(cv)}) | " + " | ".join(means)
                  + f" | {np.mean([r['epochs'] for r in cv]):.0f}"
                  + f" | {np.mean([r['wall_s'] for r in cv]):.0f}")
        if f"clf:{config}:heldout" in rows:
            r = rows[f"clf:{config}:heldout"]
            print(f"{config} | held-out | " + " | ".join(f"{r[m]:.3f}" for m in metrics)
                  + f" | {r['epochs']} | {r['wall_s']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="*",
                        default=["regressor", "clf:dummy", *(f"clf:{c}" for c in CONFIGS)])
    parser.add_argument("--n", type=int, default=2000, help="perovskite subsample size")
    parser.add_argument("--cv-seed", type=int, default=0,
                        help="shuffle of the 3-fold CV; another seed repeats the CV only")
    parser.add_argument("--summary", action="store_true")
    parser.add_argument("--speed", nargs="*", default=[],
                        choices=["eager-64", "compile-64", "eager-256"],
                        help="time 20 epochs of the default regressor instead")
    args = parser.parse_args()
    if args.summary:
        summary()
        return
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.speed:  # alternate the variants as given; finished ones are skipped
        for variant in args.speed:
            if f"speed:{variant}" not in _done():
                run_speed(variant)
        return
    if "regressor" in args.rows and "regressor" not in _done():
        run_regressor()
    configs = [r.split(":", 1)[1] for r in args.rows if r.startswith("clf:")]
    if configs:
        run_classifier(configs, args.n, args.cv_seed)


if __name__ == "__main__":
    main()
