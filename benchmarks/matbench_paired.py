"""Two committed Matbench runs of one task, fold by fold: MAE of their first members, paired.

Each run's members are read from ``benchmarks/results/matbench/<task>/<preset>/folds/``
(``fold<k>_member<m>.csv``); the targets from the run's ``predictions.csv``. For each fold the
MAE of the mean of the first ``--members`` members of each run is printed, then their
difference and the corrected resampled t-test over the folds present in both
(:func:`cgcnn_sk.report.statistics.corrected_ttest`, n_test / n_train = 1/4).

    python benchmarks/matbench_paired.py --task phonons --a tuned --b long --members 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cgcnn_sk.report.statistics import corrected_ttest

ROOT = Path(__file__).resolve().parent / "results" / "matbench"


def fold_mae(task: str, preset: str, members: int) -> dict[int, float]:
    """Fold -> MAE of the mean of the first ``members`` members (folds that have them all)."""
    run = ROOT / task / preset
    target = pd.read_csv(run / "predictions.csv").set_index("id")["target"]
    out = {}
    for k in range(5):
        files = [run / "folds" / f"fold{k}_member{m}.csv" for m in range(members)]
        if not all(f.exists() for f in files):
            continue
        pred = pd.concat([pd.read_csv(f).set_index("id")["prediction"] for f in files], axis=1)
        out[k] = float((pred.mean(axis=1) - target.loc[pred.index]).abs().mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--a", required=True, help="preset folder of the run under test")
    parser.add_argument("--b", required=True, help="preset folder it is compared with")
    parser.add_argument("--members", type=int, default=1)
    args = parser.parse_args()
    a = fold_mae(args.task, args.a, args.members)
    b = fold_mae(args.task, args.b, args.members)
    folds = sorted(set(a) & set(b))
    if not folds:
        raise SystemExit(f"no fold has {args.members} member(s) in both runs")
    diff = np.array([a[k] - b[k] for k in folds])
    print(f"{args.task}, first {args.members} member(s) per fold")
    print(f"{'fold':>6} {args.a:>10} {args.b:>10} {'diff':>8}")
    for k, d in zip(folds, diff, strict=True):
        print(f"{k:>6} {a[k]:>10.4g} {b[k]:>10.4g} {d:>+8.3g}")
    test = corrected_ttest(diff, test_train_ratio=1 / 4)
    print(f"{'mean':>6} {np.mean([a[k] for k in folds]):>10.4g} "
          f"{np.mean([b[k] for k in folds]):>10.4g} {test['mean']:>+8.3g}  "
          f"(corrected resampled t-test p = {test['p_value']:.2g}, {len(folds)} folds)")


if __name__ == "__main__":
    main()
