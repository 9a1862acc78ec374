"""Reproduce the Matbench v0.1 RF-SCM/Magpie baseline on the official folds.

For each dataset, fits ``make_rf_baseline()`` on the training part of each of the five
official folds (``KFold(5, shuffle=True, random_state=18012019)``), scores the test part by
MAE, and compares the mean with the published Matbench v0.1 figure (within 5%?).

Background-friendly: each fold's result is written to
``benchmarks/results/baselines_<dataset>.json`` as soon as it finishes, and a rerun skips the
folds already there (same configuration). Per-structure features are cached on disk
(``--cache``, default ``benchmarks/results/cache``; not for committing).

Usage (from the repository root)::

    nohup python benchmarks/bench_baselines.py --datasets jdft2d phonons dielectric \
        > benchmarks/results/baselines.log 2>&1 &
    python benchmarks/bench_baselines.py --table      # print the table of what is done
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA_HOME = ROOT.parent / "shared" / "data"

# Matbench v0.1 leaderboard, RF-SCM/Magpie (mean test MAE over the 5 official folds).
PUBLISHED = {"jdft2d": 50.04, "phonons": 67.61, "dielectric": 0.4196}
UNITS = {"jdft2d": "meV/atom", "phonons": "cm^-1", "dielectric": "(unitless)"}
TOLERANCE = 0.05


def _config(args) -> dict:
    return {
        "kind": args.kind,
        "n_estimators": args.n_estimators,
        "random_state": args.seed,
        "folds": "KFold(n_splits=5, shuffle=True, random_state=18012019)",
    }


def _versions() -> dict:
    import matminer
    import pymatgen.core
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matminer": matminer.__version__,
        "pymatgen": pymatgen.core.__version__,
    }


def _load_record(path: Path, config: dict, restart: bool) -> dict | None:
    if not path.exists() or restart:
        return None
    record = json.loads(path.read_text())
    if record.get("config") != config:
        sys.exit(
            f"{path} holds results for another configuration ({record.get('config')}); "
            "rerun with --restart to replace them"
        )
    return record


def _save(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def run_dataset(name: str, args) -> None:
    from sklearn.metrics import mean_absolute_error

    from cgcnn_sk.baselines import MatminerFeaturizer, describe_featurizers, make_rf_baseline
    from cgcnn_sk.datasets import load_matbench, matbench_folds

    path = _path(name, args.tag)
    config = _config(args)
    record = _load_record(path, config, args.restart)
    t0 = time.perf_counter()
    structures, y = load_matbench(name, data_home=args.data_home, download_if_missing=False)
    load_s = time.perf_counter() - t0
    if record is None:
        record = {
            "dataset": f"matbench_{name}",
            "n_samples": len(y),
            "unit": UNITS.get(name, ""),
            "published_mae": PUBLISHED.get(name),
            "config": config,
            "featurizers": describe_featurizers(args.kind),
            "forest": f"RandomForestRegressor(n_estimators={args.n_estimators}, "
            f"random_state={args.seed}, n_jobs={args.n_jobs}), other parameters default",
            "versions": _versions(),
            "command": "python benchmarks/bench_baselines.py " + " ".join(sys.argv[1:]),
            "folds": {},
        }
    folds = matbench_folds(len(y))
    todo = [k for k in range(5) if str(k) not in record["folds"]]
    print(f"[{name}] {len(y)} structures (loaded in {load_s:.1f}s); folds to run: {todo}",
          flush=True)
    if not todo:
        return
    # Warm the per-structure cache once (timed); the folds then reuse it.
    t0 = time.perf_counter()
    MatminerFeaturizer(kind=args.kind, n_jobs=args.n_jobs, memory=args.cache).fit(structures)
    record["featurize_all_s"] = round(time.perf_counter() - t0, 2)
    print(f"[{name}] features ready in {record['featurize_all_s']:.1f}s", flush=True)
    for k in todo:
        train, test = folds[k]
        model = make_rf_baseline(
            kind=args.kind,
            n_estimators=args.n_estimators,
            random_state=args.seed,
            n_jobs=args.n_jobs,
            memory=args.cache,
        )
        t0 = time.perf_counter()
        model.fit([structures[i] for i in train], y[train])
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict([structures[i] for i in test])
        predict_s = time.perf_counter() - t0
        mae = float(mean_absolute_error(y[test], pred))
        record["folds"][str(k)] = {
            "mae": mae,
            "n_train": int(len(train)),
            "n_test": int(len(test)),
            "n_features": int(model.named_steps["matminer"].n_features_out_),
            "scm_width": int(model.named_steps["matminer"].width_),
            "fit_s": round(fit_s, 2),
            "predict_s": round(predict_s, 2),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        maes = [record["folds"][str(j)]["mae"] for j in range(5) if str(j) in record["folds"]]
        record["mean_mae"] = float(np.mean(maes)) if len(maes) == 5 else None
        if record["mean_mae"] is not None and record["published_mae"]:
            ratio = record["mean_mae"] / record["published_mae"]
            record["ratio_to_published"] = ratio
            record["within_5pct"] = bool(abs(ratio - 1) <= TOLERANCE)
        _save(path, record)
        print(f"[{name}] fold {k}: MAE {mae:.4f} (fit {fit_s:.0f}s, predict {predict_s:.1f}s)",
              flush=True)


def _path(name: str, tag: str = "") -> Path:
    return RESULTS / f"baselines_{name}{'_' + tag if tag else ''}.json"


def print_table(names, tag: str = "") -> None:
    rows = []
    for name in names:
        path = _path(name, tag)
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        folds = [r["folds"].get(str(k), {}).get("mae") for k in range(5)]
        wall = sum(f.get("fit_s", 0) + f.get("predict_s", 0) for f in r["folds"].values())
        wall += r.get("featurize_all_s", 0)
        rows.append((name, r, folds, wall))
    if not rows:
        print("no results yet")
        return
    head = (f"{'dataset':<11} {'fold MAEs (0..4)':<44} {'mean':>8} {'published':>9} "
            f"{'ratio':>6} {'<=5%':>5} {'wall s':>7}")
    print(head)
    print("-" * len(head))
    for name, r, folds, wall in rows:
        f = " ".join("   -   " if m is None else f"{m:7.4g}" for m in folds)
        mean = r.get("mean_mae")
        ratio = r.get("ratio_to_published")
        within = r.get("within_5pct")
        print(
            f"{name:<11} {f:<44} {'' if mean is None else f'{mean:8.4g}':>8} "
            f"{r['published_mae']:>9} {'' if ratio is None else f'{ratio:6.3f}':>6} "
            f"{'' if within is None else ('yes' if within else 'NO'):>5} {wall:7.0f}"
        )
    r = rows[0][1]
    print("\nfeaturizers:", "; ".join(r["featurizers"]))
    print("forest:", r["forest"])
    print("versions:", r["versions"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["jdft2d", "phonons", "dielectric"],
                        choices=sorted(PUBLISHED))
    parser.add_argument("--data-home", default=str(DATA_HOME))
    parser.add_argument("--kind", default="magpie+scm")
    parser.add_argument("--n-estimators", type=int, default=500)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(RESULTS / "cache"),
                        help="folder of the per-structure feature cache ('' for none)")
    parser.add_argument("--restart", action="store_true",
                        help="discard earlier fold results instead of resuming")
    parser.add_argument("--tag", default="",
                        help="result file suffix: 'seed1' -> baselines_<name>_seed1.json")
    parser.add_argument("--table", action="store_true", help="only print the table")
    args = parser.parse_args(argv)
    args.cache = args.cache or None
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.table:
        warnings.filterwarnings("ignore", category=UserWarning)
        for name in args.datasets:
            run_dataset(name, args)
    print_table(args.datasets, args.tag)


if __name__ == "__main__":
    main()
