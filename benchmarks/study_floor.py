"""What limits the CGCNN-against-forest verdict: per-structure errors of the committed studies.

Reads the ``predictions.csv`` of committed study runs (no fitting) and prints, per run:

- per repeat of the 5-fold CV (repeats 1 and 2, where the CGCNN is the baseline study's: the
  recipe's setting, or the tuned one of ``--baseline-cgcnn tuned``), the mean over the 636
  structures of |CGCNN error| - |RF error|, its standard deviation and its standard error: the
  difference measured in units of the data set's own noise;
- the structures that add most to the CGCNN's side;
- with three runs given, a three-seed ensemble of the recipe's setting of the factorial on the
  official folds (the three runs' predictions averaged) against the first run's forest.

    python benchmarks/study_floor.py benchmarks/results/study_quick_rs0 \\
        benchmarks/results/study_quick_rs1 benchmarks/results/study_quick_rs2 \\
        benchmarks/results/study_quick_rs0_default
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

#: the factorial's setting that is the recipe's network
RECIPE = "max_num_nbr=12, activation=softplus, batchnorm=True, pooling=mean"


def _abs_error(frame: pd.DataFrame) -> pd.Series:
    frame = frame.set_index("id").sort_index()
    return (frame.y_pred - frame.y_true).abs()


def per_structure(pred: pd.DataFrame, repeat: int) -> pd.Series:
    """|CGCNN error| - |RF error| per structure, out of fold, for one CV repeat."""
    base = pred[(pred.study == "baseline") & (pred.repeat == repeat)]
    return _abs_error(base[base.model == "cgcnn"]) - _abs_error(base[base.model == "rf"])


def fold_differences(cgcnn: pd.Series, rf: pd.Series, y: pd.Series, fold: pd.Series) -> pd.Series:
    """Per official fold: MAE of ``cgcnn`` minus MAE of ``rf`` (predictions indexed by id)."""
    return (cgcnn - y).abs().groupby(fold).mean() - (rf - y).abs().groupby(fold).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    preds = {run.name: pd.read_csv(run / "predictions.csv") for run in args.runs}
    for name, pred in preds.items():
        print(name)
        for repeat in (1, 2):
            d = per_structure(pred, repeat)
            se = d.std() / np.sqrt(len(d))
            print(f"  repeat {repeat}: mean {d.mean():+.1f} meV/atom, sd {d.std():.0f}, "
                  f"standard error {se:.2f} ({d.mean() / se:+.1f} standard errors)")
        base = pred[(pred.study == "baseline") & (pred.repeat == 1)]
        cg, rf = (base[base.model == m].set_index("id").sort_index() for m in ("cgcnn", "rf"))
        worst = per_structure(pred, 1).sort_values().index[-4:][::-1]
        print("  most against the CGCNN (id: y, CGCNN, RF): " + "; ".join(
            f"{i}: {cg.y_true[i]:.0f}, {cg.y_pred[i]:.0f}, {rf.y_pred[i]:.0f}" for i in worst))
    quick = list(preds.values())[:3]
    if len(quick) == 3:
        members = [p[(p.study == "factorial") & (p.setting == RECIPE)].set_index("id").sort_index()
                   for p in quick]
        forests = [p[(p.study == "baseline") & (p.repeat == 0) & (p.model == "rf")]
                   .set_index("id").sort_index() for p in quick]
        y, fold = members[0].y_true, members[0].fold
        for k, (m, f) in enumerate(zip(members, forests, strict=True)):
            d = fold_differences(m.y_pred, f.y_pred, y, fold)
            print(f"single network, run {k}: CGCNN - RF {d.mean():+.2f} (fold sd {d.std():.2f})")
        ensemble = sum(m.y_pred for m in members) / 3
        d = fold_differences(ensemble, forests[0].y_pred, y, fold)
        print(f"3-seed ensemble against run 0's forest: {d.mean():+.2f} (fold sd {d.std():.2f}); "
              f"MAE {(ensemble - y).abs().mean():.2f} against single "
              + ", ".join(f"{(m.y_pred - y).abs().mean():.2f}" for m in members))


if __name__ == "__main__":
    main()
