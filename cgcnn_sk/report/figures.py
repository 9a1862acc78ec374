"""Figures of a study report, drawn from the tidy tables on :class:`matplotlib.figure.Figure`.

No pyplot state is used, so the functions work in scripts, tests and notebooks alike. Each
figure has a title, axis labels with units and a legend where more than one series is drawn.
Failed fits (``status == "failed"``) are left out of every figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .statistics import (
    _describe_level,
    _tuned_settings,
    baseline_comparison,
    check_table,
    effects,
    factor_levels,
    fmt,
)

__all__ = [
    "STUDY_TITLES",
    "make_figures",
    "plot_baseline",
    "plot_effects",
    "plot_interaction",
    "plot_loss_curves",
    "plot_parity",
]

STUDY_TITLES = {
    "neighbours": "How many neighbours? (max_num_nbr, M)",
    "activation_batchnorm": "ConvLayer activation x batch normalisation",
    "pooling": "Mean against max pooling",
    "baseline": "CGCNN against the matminer random forest",
}
LOSS_LABEL = "training loss (L1 on the standardised target)"
_VERDICT_COLORS = {"+": "tab:blue", "-": "tab:orange", "equivalent": "tab:green",
                   "undecided": "tab:gray"}


def _design(table: pd.DataFrame, meta: Mapping) -> pd.DataFrame:
    rows = table[(table["study"] == "factorial") & (table["model"] == "cgcnn")
                 & table["test_mae"].notna()]
    if rows.empty:
        raise ValueError("the tidy table has no scored fit of the design")
    return factor_levels(rows, meta)


def _mae_label(unit: str | None) -> str:
    return f"test MAE ({unit})" if unit else "test MAE (target units)"


def plot_effects(table: pd.DataFrame, meta: Mapping, unit: str | None = None) -> Figure:
    """Main effects of the design: mean test MAE at each level of each factor, fold by fold.

    One panel per factor: a grey line per fold joins the fold's mean MAE at the two levels
    (over all settings at that level), the black line their mean; the title gives the effect
    and its verdict.
    """
    rows = _design(table, meta)
    eff = effects(table, meta)
    factors = list(meta["factors"])
    fig = Figure(figsize=(3.1 * len(factors) + 1.0, 3.8), layout="constrained")
    axes = fig.subplots(1, len(factors), sharey=True, squeeze=False)[0]
    rows = rows.assign(repeat=rows["repeat"].fillna(0) if "repeat" in rows else 0)
    for ax, f in zip(axes, factors, strict=True):
        lo, hi = (_describe_level(v) for v in meta["factors"][f])
        cell = rows.groupby(["repeat", "fold", f])["test_mae"].mean().unstack(f)
        cell = cell.reindex(columns=[lo, hi])
        for _, r in cell.iterrows():
            ax.plot([0, 1], r.to_numpy(float), color="0.7", lw=1, marker="o", ms=3)
        ax.plot([0, 1], cell.mean().to_numpy(float), color="k", lw=2.2, marker="o",
                label="mean over folds")
        ax.set_xticks([0, 1], [lo, hi])
        ax.set_xlim(-0.3, 1.3)
        ax.set_xlabel(f)
        e = eff[eff["term"] == f]
        if not e.empty:
            e = e.iloc[0]
            ax.set_title(f"{f}: {fmt(e['effect'])} ({e['verdict']})", fontsize=9,
                         color=_VERDICT_COLORS.get(e["verdict"], "k"))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(_mae_label(unit))
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Main effects: mean test MAE at each level (grey: one fold; "
                 "+: the recipe's level)", fontsize=10)
    return fig


def plot_interaction(
    table: pd.DataFrame, meta: Mapping, pair=("activation", "batchnorm"), unit: str | None = None
) -> Figure:
    """Interaction plot of two factors: mean test MAE of the four cells, one line per level."""
    rows = _design(table, meta)
    a, b = pair
    cell = rows.groupby([a, b])["test_mae"].agg(["mean", "count"]).reset_index()
    fig = Figure(figsize=(5.2, 3.9), layout="constrained")
    ax = fig.subplots()
    a_levels = [_describe_level(v) for v in meta["factors"][a]]
    for lb in [_describe_level(v) for v in meta["factors"][b]]:
        c = cell[cell[b] == lb].set_index(a).reindex(a_levels)
        ax.plot(range(len(a_levels)), c["mean"].to_numpy(float), marker="o", lw=2,
                label=f"{b}={lb}")
    ax.set_xticks(range(len(a_levels)), a_levels)
    ax.set_xlabel(a)
    ax.set_ylabel(_mae_label(unit))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{a} x {b}: parallel lines mean no interaction", fontsize=10)
    return fig


def plot_loss_curves(
    histories: pd.DataFrame, table: pd.DataFrame, meta: Mapping, *,
    loss_label: str = LOSS_LABEL
) -> Figure:
    """Training loss against epoch for each level of each factor, mean over settings and folds.

    ``table`` (the tidy table) says which setting has which level of each factor.
    """
    from matplotlib.lines import Line2D

    hist = histories[(histories["study"] == "factorial") & histories["model"].eq("cgcnn")]
    if hist.empty or "train_loss" not in hist:
        raise ValueError("no loss history of the design")
    factors = list(meta["factors"])
    levels = _design(table, meta).drop_duplicates("setting").set_index("setting")
    fig = Figure(figsize=(3.2 * len(factors) + 1.0, 3.6), layout="constrained")
    axes = fig.subplots(1, len(factors), sharey=True, squeeze=False)[0]
    curve = hist.groupby(["setting", "epoch"])["train_loss"].mean().unstack("epoch")
    for ax, f in zip(axes, factors, strict=True):
        lo, hi = (_describe_level(v) for v in meta["factors"][f])
        for level, color in ((lo, "tab:orange"), (hi, "tab:blue")):
            keep = [s for s in curve.index if s in levels.index and levels.at[s, f] == level]
            if keep:
                ax.plot(curve.columns, curve.loc[keep].mean().to_numpy(float), color=color,
                        lw=1.6)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f, fontsize=10)
        ax.legend(handles=[Line2D([], [], color="tab:orange", label=f"{f}={lo}"),
                           Line2D([], [], color="tab:blue", label=f"{f}={hi}")], fontsize=7)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(loss_label)
    fig.suptitle("Training loss by factor level (mean over the design's settings and folds)",
                 fontsize=10)
    return fig


def plot_baseline(table: pd.DataFrame, meta: Mapping, unit: str | None = None) -> Figure:
    """Per-fold test MAE of CGCNN and the RF over every repeat, and the posterior of the gap."""
    from scipy import stats

    cmp = baseline_comparison(table, meta)
    if cmp is None:
        raise ValueError("the baseline study needs rows of the CGCNN and of the RF")
    x = np.arange(cmp["n_folds"])
    labels = [f"{r}.{f}" for r, f in cmp["folds"]]
    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
    w = 0.38
    which = {"nested": "nested CV", "tuned": _tuned_settings(meta)}
    ax.bar(x - w / 2, cmp["mae_a"], w, color="tab:blue",
           label=f"CGCNN ({which.get(meta.get('baseline_cgcnn'), 'recipe')})")
    ax.bar(x + w / 2, cmp["mae_b"], w, label=cmp["rf_label"], color="tab:green")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_xlabel("repeat.fold")
    ax.set_ylabel(_mae_label(unit))
    ax.set_title(f"Test MAE per fold (CGCNN wins {cmp['wins_a']} of {cmp['n_folds']})",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    if cmp["scale"] > 0:
        lo = min(cmp["ci_low"], -cmp["rope"]) - 2 * cmp["scale"]
        hi = max(cmp["ci_high"], cmp["rope"]) + 2 * cmp["scale"]
        grid = np.linspace(lo, hi, 400)
        dens = stats.t.pdf(grid, cmp["df"], loc=cmp["mean"], scale=cmp["scale"])
        ax2.plot(grid, dens, color="k")
        ax2.fill_between(grid, dens, where=grid < -cmp["rope"], color="tab:blue", alpha=0.3,
                         label=f"CGCNN better: {cmp['p_a']:.3f}")
        ax2.fill_between(grid, dens, where=grid > cmp["rope"], color="tab:green", alpha=0.3,
                         label=f"RF better: {cmp['p_b']:.3f}")
        ax2.axvspan(-cmp["rope"], cmp["rope"], color="0.85", label=f"ROPE: {cmp['p_rope']:.3f}")
    ax2.axvline(0, color="k", lw=0.6)
    ax2.set_xlabel(f"MAE difference CGCNN - RF ({unit or 'target units'})")
    ax2.set_ylabel("posterior density")
    ax2.set_title("Bayesian correlated t-test", fontsize=10)
    ax2.legend(fontsize=7)
    fig.suptitle("CGCNN against the random forest, on the same folds", fontsize=11)
    return fig


def plot_parity(
    predictions: pd.DataFrame,
    keys: Iterable[tuple[str, str, str]],
    *,
    target: str = "target",
    unit: str | None = None,
) -> Figure:
    """Predicted against true values (out-of-fold), one panel per ``(study, model, setting)``.

    Parameters
    ----------
    predictions : DataFrame
        Long table with ``study, model, setting, fold, y_true, y_pred``.
    keys : iterable of (study, model, setting)
        The settings to draw, one panel each.
    target : str
        Name of the target for the axis labels.
    unit : str, optional
        Unit of the target.
    """
    keys = list(keys)
    fig = Figure(figsize=(max(5.2, 4.6 * len(keys)), 4.8), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    u = f" ({unit})" if unit else ""
    for ax, (study, model, setting) in zip(axes, keys, strict=True):
        p = predictions[
            (predictions["study"] == study)
            & (predictions["model"] == model)
            & (predictions["setting"] == setting)
        ]
        if p.empty:
            raise ValueError(f"no predictions for {(study, model, setting)}")
        for f in sorted(p["fold"].unique()):
            q = p[p["fold"] == f]
            ax.scatter(q["y_true"], q["y_pred"], s=9, alpha=0.6, label=f"fold {f}")
        lo = float(min(p["y_true"].min(), p["y_pred"].min()))
        hi = float(max(p["y_true"].max(), p["y_pred"].max()))
        pad = 0.04 * (hi - lo or 1.0)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="ideal (y = x)")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        mae = float(np.mean(np.abs(p["y_true"] - p["y_pred"])))
        name = f"CGCNN ({setting})" if model == "cgcnn" else f"baseline ({setting})"
        name = textwrap.fill(name, 46)  # a long setting would run past the panel's edges
        ax.set_title(f"{name}\nout-of-fold MAE {fmt(mae)} {unit or ''}".rstrip(), fontsize=9)
        ax.set_xlabel(f"true {target}{u}")
        ax.set_ylabel(f"predicted {target}{u}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Parity plot, out-of-fold predictions")
    return fig


# --------------------------------------------------------------------------- report
def make_figures(
    table: pd.DataFrame,
    histories: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
    out_dir: str | Path | None = None,
    *,
    meta: Mapping | None = None,
    target: str = "target",
    unit: str | None = None,
    loss_label: str = LOSS_LABEL,
    dpi: int = 120,
) -> dict[str, Figure | Path]:
    """Build every figure the tables support; save them as PNG when ``out_dir`` is given.

    Returns
    -------
    figures : dict
        Name -> saved path (when ``out_dir`` is given) or Figure. Names: ``effects``,
        ``interaction`` (with activation and batchnorm in the design), ``loss``,
        ``baseline``, ``parity``.
    """
    check_table(table)
    meta = dict(meta or {})
    figs: dict[str, Figure] = {}
    design = (table["study"].eq("factorial") & table["test_mae"].notna()).any()
    if design and meta.get("factors"):
        figs["effects"] = plot_effects(table, meta, unit)
        if {"activation", "batchnorm"} <= set(meta["factors"]):
            figs["interaction"] = plot_interaction(table, meta, unit=unit)
        if histories is not None and not histories.empty and "train_loss" in histories:
            figs["loss"] = plot_loss_curves(histories, table, meta, loss_label=loss_label)
    if baseline_comparison(table, meta) is not None:
        figs["baseline"] = plot_baseline(table, meta, unit)
    if predictions is not None and not predictions.empty:
        p = predictions[predictions.get("repeat", 0) == 0] if "repeat" in predictions \
            else predictions
        keys = []
        cg = p[(p["study"] == "baseline") & (p["model"] == "cgcnn")]
        if not cg.empty:
            keys.append(("baseline", "cgcnn", cg["setting"].iloc[0]))
        elif design and (p["study"] == "factorial").any():
            first = table[table["study"] == "factorial"]["setting"].iloc[0]
            keys.append(("factorial", "cgcnn", first))
        rf = p[(p["study"] == "baseline") & (p["model"] != "cgcnn")]
        if not rf.empty:
            keys.append(("baseline", rf["model"].iloc[0], rf["setting"].iloc[0]))
        if keys:
            figs["parity"] = plot_parity(p, keys, target=target, unit=unit)
    if out_dir is None:
        return figs
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figs.items():
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=dpi)
        paths[name] = path
    return paths
