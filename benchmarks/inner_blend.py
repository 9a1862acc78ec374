"""Inner validation of a blend: the mean of two candidates' predictions on the same inner folds.

Reads the validation predictions ``accuracy_inner.py --save-predictions DIR`` wrote
(``DIR/<candidate>_seed<s>_fold<k>.csv``) and prints, per (seed, inner fold) both candidates
have, the MAE of each and of their mean, and the blend minus the better of the two. With
``--b-seed`` the second candidate's fits of that seed are paired with every seed of the first
(two seeds of one candidate: ``--a X --b X --b-seed 1``).

    python benchmarks/inner_blend.py --dir benchmarks/results/accuracy/predictions_phonons \\
        --a e600 --b e600_pool_max
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--b-seed", type=int, default=None,
                        help="seed of --b's fits (default: the same as --a's)")
    args = parser.parse_args()
    rows = []
    for fa in sorted(args.dir.glob(f"{args.a}_seed*_fold*.csv")):
        seed, fold = map(int, re.search(r"_seed(\d+)_fold(\d+)\.csv$", fa.name).groups())
        b_seed = seed if args.b_seed is None else args.b_seed
        fb = args.dir / f"{args.b}_seed{b_seed}_fold{fold}.csv"
        if fb == fa or not fb.exists():
            continue
        a, b = pd.read_csv(fa), pd.read_csv(fb)
        if not np.array_equal(a["row"], b["row"]):
            raise SystemExit(f"{fa.name} and {fb.name} hold different rows")
        names = (args.a, args.b) if args.a != args.b else (f"{args.a} seed {seed}",
                                                            f"{args.b} seed {b_seed}")
        mae = {name: float(np.mean(np.abs(pred - a["target"])))
               for name, pred in [(names[0], a["prediction"]), (names[1], b["prediction"]),
                                  ("blend", (a["prediction"] + b["prediction"]) / 2)]}
        rows.append({"seed": seed, "fold": fold, **mae,
                     "blend - best": mae["blend"] - min(mae[names[0]], mae[names[1]])})
    if not rows:
        raise SystemExit(f"no fold has predictions of both {args.a} and {args.b} in {args.dir}")
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    print("mean:", table.drop(columns=["seed", "fold"]).mean().round(3).to_dict())


if __name__ == "__main__":
    main()
