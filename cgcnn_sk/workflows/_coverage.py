"""Calibrated intervals on out-of-fold predictions: their coverage and width, and a figure.

Each fold's intervals take their width from the other folds' test rows
(:func:`~cgcnn_sk.cross_fold_intervals`, score ``|target - mean| / std``), so no fold's own
targets enter its intervals and nothing is refitted: the per-structure files of a finished
cross-validation (``predictions.csv`` of the Matbench protocol) are all it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..estimators._intervals import cross_fold_intervals

__all__ = ["INTERVAL_LEVELS", "interval_coverage"]

#: The confidence levels the Matbench summary reports.
INTERVAL_LEVELS = (0.68, 0.95)

_SPREAD_THIRDS = ("lowest third of std", "middle third of std", "highest third of std")


def _pct(level: float) -> str:
    return f"{100 * level:g}"


def interval_coverage(
    preds: pd.DataFrame, confidence_level: Sequence[float] = INTERVAL_LEVELS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage and width of cross-fold calibrated intervals, beside the raw ensemble spread.

    Parameters
    ----------
    preds : DataFrame
        Out-of-fold predictions with columns ``fold``, ``target``, ``prediction`` and
        ``member_std`` (and ``id``, carried over), at least two folds, every ``member_std``
        positive.
    confidence_level : sequence of float, default=(0.68, 0.95)

    Returns
    -------
    table : DataFrame
        One row per subset of rows and level: ``rows`` (``fold <k>``, ``all``, then the rows
        in the lowest, middle and highest third of ``member_std``), ``n``, ``level``,
        ``coverage`` and ``mean_width`` / ``median_width`` of the calibrated intervals,
        ``scale`` (the calibrated half-width in units of std; per fold only), and for the raw
        spread read as a Gaussian: ``raw_z`` (``norm.ppf((1 + level) / 2)``),
        ``raw_coverage`` and ``raw_mean_width`` of ``prediction -/+ raw_z * std``.
    intervals : DataFrame
        Per row: ``id`` (if given), ``fold`` and ``lower_<level>`` / ``upper_<level>`` with
        the level in percent.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cgcnn_sk.workflows.matbench import interval_coverage
    >>> rng = np.random.default_rng(0)
    >>> std = rng.uniform(0.5, 2.0, 2000)
    >>> preds = pd.DataFrame({"fold": np.arange(2000) % 5, "prediction": 0.0,
    ...                       "member_std": std, "target": rng.normal(0, 3 * std)})
    >>> table, _ = interval_coverage(preds)
    >>> all_rows = table[table["rows"] == "all"].set_index("level")
    >>> all_rows["coverage"].round(2).tolist(), all_rows["raw_coverage"].round(2).tolist()
    ([0.68, 0.95], [0.25, 0.48])
    """
    levels = [float(c) for c in confidence_level]
    y = preds["target"].to_numpy(dtype=np.float64)
    mean = preds["prediction"].to_numpy(dtype=np.float64)
    std = preds["member_std"].to_numpy(dtype=np.float64)
    fold = preds["fold"].to_numpy()
    bounds = cross_fold_intervals(y, mean, std, fold, confidence_level=levels)
    inside = (bounds[:, 0, :] <= y[:, None]) & (y[:, None] <= bounds[:, 1, :])
    width = bounds[:, 1, :] - bounds[:, 0, :]
    scale = (bounds[:, 1, :] - mean[:, None]) / std[:, None]
    z = norm.ppf((1 + np.asarray(levels)) / 2)
    raw_inside = np.abs(y - mean)[:, None] <= z * std[:, None]
    raw_width = 2 * z * std[:, None]

    subsets = [(f"fold {k}", fold == k) for k in np.unique(fold)]
    subsets.append(("all", np.ones(len(y), dtype=bool)))
    third = np.empty(len(std), dtype=int)  # by rank: equal thirds even when spreads tie
    third[np.argsort(std, kind="stable")] = np.arange(len(std)) * 3 // len(std)
    subsets += [(name, third == i) for i, name in enumerate(_SPREAD_THIRDS)]
    records = []
    for name, rows in subsets:
        for j, level in enumerate(levels):
            records.append({
                "rows": name, "n": int(rows.sum()), "level": level,
                "coverage": inside[rows, j].mean(), "mean_width": width[rows, j].mean(),
                "median_width": np.median(width[rows, j]),
                "scale": scale[rows, j][0] if name.startswith("fold ") else np.nan,
                "raw_z": z[j], "raw_coverage": raw_inside[rows, j].mean(),
                "raw_mean_width": raw_width[rows, j].mean(),
            })
    intervals = preds[[c for c in ("id", "fold") if c in preds]].copy()
    for j, level in enumerate(levels):
        intervals[f"lower_{_pct(level)}"] = bounds[:, 0, j]
        intervals[f"upper_{_pct(level)}"] = bounds[:, 1, j]
    return pd.DataFrame(records), intervals


def _figure(preds: pd.DataFrame, table: pd.DataFrame | None, path: Path, title: str) -> None:
    """Coverage against intended coverage (left), |error| against std (right); ``table=None``
    draws the raw spread only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = preds["target"].to_numpy(dtype=np.float64)
    mean = preds["prediction"].to_numpy(dtype=np.float64)
    std = preds["member_std"].to_numpy(dtype=np.float64)
    err = np.abs(y - mean)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    raw = (err[:, None] <= norm.ppf((1 + grid) / 2) * std[:, None]).mean(0)

    fig, (left, right) = plt.subplots(1, 2, figsize=(8.6, 4))
    left.plot(grid, raw, "o-", ms=3, label="raw spread, mean -/+ z std")
    if table is not None:
        bounds = cross_fold_intervals(y, mean, std, preds["fold"].to_numpy(),
                                      confidence_level=grid)
        inside = (bounds[:, 0, :] <= y[:, None]) & (y[:, None] <= bounds[:, 1, :])
        left.plot(grid, inside.mean(0), "s-", ms=3, label="calibrated (other folds)")
    left.plot([0, 1], [0, 1], "k--", lw=0.8, label="intended")
    left.set(xlabel="intended coverage", ylabel="observed coverage (test rows)",
             xlim=(0, 1), ylim=(0, 1), title=f"{title}: coverage")
    left.legend(loc="upper left", fontsize=8)

    shown = std > 0  # a log axis: one-member rows have no spread to draw
    floor = std[shown].min() * 1e-2
    right.loglog(std[shown], np.maximum(err[shown], floor), ".", ms=2, alpha=0.4,
                 color="0.4")
    line = np.geomspace(std[shown].min(), std[shown].max(), 10)
    for level, style in zip(INTERVAL_LEVELS, ("-", "--"), strict=True):
        z = norm.ppf((1 + level) / 2)
        right.plot(line, z * line, "C0" + style, label=f"raw {_pct(level)} %: {z:.2f} std")
        if table is not None:
            rows = table[(table["level"] == level) & table["rows"].str.startswith("fold ")]
            scale = float(rows["scale"].median())
            right.plot(line, scale * line, "C1" + style,
                       label=f"calibrated {_pct(level)} %: {scale:.2f} std (median of folds)")
    right.set(xlabel="member std", ylabel="|error|", title="half-widths and errors")
    right.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_interval_report(task: str, preds: pd.DataFrame, root: Path) -> list[str]:
    """Write ``coverage.csv``, ``intervals.csv`` and ``calibration.png``; summary lines."""
    folds = preds["fold"].nunique()
    if folds < 2 or not (preds["member_std"] > 0).all():
        _figure(preds, None, root / "calibration.png", task)
        why = ("one fold is finished" if folds < 2
               else "some rows have no member spread (one member)")
        return ["", f"Calibrated intervals: none yet ({why}); each fold is calibrated on the "
                "other folds' test rows and needs their member spread."]
    table, intervals = interval_coverage(preds)
    table.to_csv(root / "coverage.csv", index=False)
    intervals.to_csv(root / "intervals.csv", index=False)
    _figure(preds, table, root / "calibration.png", task)

    rows = []
    for name, part in table.groupby("rows", sort=False):
        row = {"rows": name, "n": int(part["n"].iloc[0])}
        for rec in part.itertuples():
            p = _pct(rec.level)
            row[f"{p} %"] = f"{rec.coverage:.3f}"
            row[f"{p} % width"] = f"{rec.mean_width:.4g}"
            row[f"raw {rec.raw_z:.2f} std"] = f"{rec.raw_coverage:.3f}"
            row[f"raw {p} % width"] = f"{rec.raw_mean_width:.4g}"
        rows.append(row)
    return [
        "", "Calibrated intervals (`coverage.csv`, per structure `intervals.csv`): mean -/+ "
        "scale x member std, the scale of each fold being the conformal quantile of "
        "|target - mean| / std over the other folds' test rows (MAPIE, split conformal); no "
        "fold's own targets are used. Fraction of test targets inside, and mean width, beside "
        "the raw spread read as a Gaussian (mean -/+ z std). The promise is marginal (over "
        "all test rows, approximately, as the folds' models differ), not per structure: the "
        "last three rows show the coverage where the members agree most and least.", "",
        pd.DataFrame(rows).to_markdown(index=False),
    ]
