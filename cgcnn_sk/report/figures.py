"""Figures of a report, drawn from the tidy tables on :class:`matplotlib.figure.Figure`.

No pyplot state is used, so the functions work in scripts, tests and notebooks alike. Each
figure has a title, axis labels with units and a legend where more than one series is drawn.
Failed folds (``status == "failed"``) are left out of every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .statistics import baseline_pair, check_table, fmt, paired_comparison, summarize

__all__ = [
    "plot_loss_curves",
    "plot_settings",
    "plot_neighbours",
    "plot_activation_batchnorm",
    "plot_baseline",
    "plot_parity",
    "make_figures",
]

STUDY_TITLES = {
    "hyperparameters": "Hyperparameters (loss function, learning rate, depth) and loss curves",
    "neighbours": "Neighbour count (max_num_nbr)",
    "activation_batchnorm": "ConvLayer activation x batchnorm",
    "pooling": "Pooling",
    "baseline": "CGCNN against the random-forest baseline",
}
LOSS_LABEL = "training criterion on the standardised target"


def _rows(table: pd.DataFrame, study: str, model: str | None = "cgcnn") -> pd.DataFrame:
    rows = table[(table["study"] == study) & table["test_mae"].notna()]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        raise ValueError(f"the tidy table has no scored rows for study {study!r}")
    return rows


def _mae_label(unit: str | None) -> str:
    return f"test MAE ({unit})" if unit else "test MAE (target units)"


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _fold_matrix(hist: pd.DataFrame, column: str) -> np.ndarray:
    """(n_folds, n_epochs) array of one history column.

    A fold stopped early keeps its last value for the later epochs, so that the mean over
    folds does not jump when a fold drops out.
    """
    folds = list(dict.fromkeys(hist["fold"]))
    n_epochs = int(hist["epoch"].max())
    out = np.full((len(folds), n_epochs), np.nan)
    for i, f in enumerate(folds):
        h = hist[hist["fold"] == f]
        out[i, h["epoch"].to_numpy(int) - 1] = h[column].to_numpy(float)
    return pd.DataFrame(out).ffill(axis=1).to_numpy()


def plot_loss_curves(
    histories: pd.DataFrame,
    study: str,
    *,
    panel_by: Mapping[str, str] | None = None,
    show_train: bool = True,
    loss_label: str = LOSS_LABEL,
    unit: str | None = None,
    title: str | None = None,
) -> Figure:
    """Loss (and validation MAE) against epoch, one colour per setting, mean over folds.

    The top row shows the training (dashed) and validation (solid) loss on a log scale; when
    the histories have a ``valid_mae`` column, a second row shows the validation (solid) and
    training (dashed, ``train_mae``) MAE in target units. A fold stopped early is held at its
    last value, so each curve averages all folds at every epoch.

    Parameters
    ----------
    histories : DataFrame
        Long table with ``study, setting, fold, epoch, train_loss, valid_loss`` and
        optionally ``train_mae, valid_mae``.
    study : str
        The study to draw.
    panel_by : mapping of setting -> panel name, optional
        Split the settings over side-by-side panels (e.g. batchnorm on / off).
    show_train : bool, default=True
        Draw the training curves too.
    loss_label : str
        y-axis label of the loss (the loss and its unit).
    unit : str, optional
        Unit of the target, for the MAE axis.
    title : str, optional
        Figure title; defaults to the study's title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    hist = histories[histories["study"] == study]
    if hist.empty:
        raise ValueError(f"no loss history for study {study!r}")
    settings = list(dict.fromkeys(hist["setting"]))
    panels = ["all"] if panel_by is None else list(dict.fromkeys(panel_by[s] for s in settings))
    metrics = [("valid_loss", "train_loss", loss_label)]
    if "valid_mae" in hist and hist["valid_mae"].notna().any():
        metrics.append(("valid_mae", "train_mae", f"MAE ({unit or 'target units'})"))
    fig = Figure(figsize=(5.0 * len(panels) + 2.6, 3.3 * len(metrics) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(metrics), len(panels), sharex=True, sharey="row", squeeze=False)
    colors = dict(zip(settings, _colors(len(settings)), strict=True))
    for row, (valid_col, train_col, ylabel) in enumerate(metrics):
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            for s in settings:
                if panel_by is not None and panel_by[s] != panel:
                    continue
                h = hist[hist["setting"] == s]
                valid = _fold_matrix(h, valid_col)
                epochs = np.arange(1, valid.shape[1] + 1)
                ax.plot(epochs, np.nanmean(valid, axis=0), color=colors[s], lw=1.6)
                if show_train and train_col in h and h[train_col].notna().any():
                    train = np.nanmean(_fold_matrix(h, train_col), axis=0)
                    ax.plot(epochs, train, color=colors[s], lw=1.0, ls="--")
            # log scale for both: one diverging early epoch otherwise flattens every curve
            ax.set_yscale("log")
            if row == len(metrics) - 1:
                ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel(ylabel)
            if panel_by is not None and row == 0:
                ax.set_title(panel, fontsize=10)
            ax.grid(alpha=0.3, which="both")
    handles = [Line2D([], [], color=colors[s], lw=1.6, label=s) for s in settings]
    handles += [Line2D([], [], color="k", lw=1.6, label="validation")]
    if show_train:
        handles += [Line2D([], [], color="k", lw=1.0, ls="--", label="train")]
    fig.legend(handles=handles, loc="outside right center", fontsize=7)
    fig.suptitle(
        title or f"{STUDY_TITLES.get(study, study)}: learning curves, mean over folds\n"
        "(validation: the network's own hold-out inside each training fold)",
        fontsize=11,
    )
    return fig


def _bar_panel(ax, summary: pd.DataFrame, rows: pd.DataFrame, unit: str | None, labels=None):
    labels = list(summary["setting"]) if labels is None else labels
    x = np.arange(len(summary))
    best = int(np.argmin(summary["mae_mean"].to_numpy()))
    colors = ["tab:orange" if i == best else "tab:blue" for i in range(len(summary))]
    ax.bar(x, summary["mae_mean"], yerr=summary["mae_std"], color=colors, alpha=0.8,
           capsize=4, label="mean ± std over folds (orange: best)")
    for i, s in enumerate(summary["setting"]):
        vals = rows[rows["setting"] == s]["test_mae"].to_numpy(float)
        ax.plot(np.full(len(vals), i), vals, "k.", ms=5, label="one fold" if i == 0 else None)
    ax.set_xticks(x, labels, rotation=30 if max(map(len, labels)) > 8 else 0, ha="right"
                  if max(map(len, labels)) > 8 else "center", fontsize=8)
    ax.set_ylabel(_mae_label(unit))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def plot_settings(table: pd.DataFrame, study: str, unit: str | None = None) -> Figure:
    """Bars of the CV test MAE per setting of a study (best in orange), folds as dots.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the scored CGCNN rows of ``study``.
    study : str
        E.g. ``"hyperparameters"`` or ``"pooling"``.
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rows = _rows(table, study)
    summary = summarize(rows)
    fig = Figure(figsize=(max(5.0, 1.1 * len(summary) + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    _bar_panel(ax, summary, rows, unit)
    ax.set_xlabel("setting")
    ax.set_title(f"{STUDY_TITLES.get(study, study)}: cross-validated test MAE", fontsize=10)
    return fig


def plot_neighbours(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Test MAE (mean ± std over folds) against ``max_num_nbr``.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'neighbours' (columns ``max_num_nbr``,
        ``test_mae``).
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rows = _rows(table, "neighbours", "cgcnn")
    g = rows.groupby("max_num_nbr")
    m = g["test_mae"].agg(["mean", "std"]).fillna(0.0)
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.errorbar(m.index, m["mean"], yerr=m["std"], fmt="o-", capsize=4, color="tab:blue",
                label="test MAE, mean ± std over folds")
    ax.plot(rows["max_num_nbr"], rows["test_mae"], ".", color="tab:blue", alpha=0.35,
            label="one fold")
    ax.set_xlabel("max_num_nbr M (neighbours per atom)")
    ax.set_ylabel(_mae_label(unit))
    ax.set_xticks(m.index)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Neighbour count: cross-validated test MAE")
    return fig


def plot_activation_batchnorm(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Heatmap of the mean test MAE, activations x batchnorm on/off, annotated mean ± std.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'activation_batchnorm' (columns
        ``activation``, ``batchnorm``, ``test_mae``).
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rows = _rows(table, "activation_batchnorm", "cgcnn")
    g = rows.groupby(["activation", "batchnorm"], sort=False)["test_mae"]
    mean = g.mean().unstack("batchnorm")
    std = g.std().fillna(0.0).unstack("batchnorm")
    cols = [c for c in (True, False) if c in mean.columns]
    mean, std = mean.reindex(columns=cols), std.reindex(columns=cols)
    fig = Figure(figsize=(5.2, 1.0 + 0.6 * len(mean) + 1.2), layout="constrained")
    ax = fig.subplots()
    values = mean.to_numpy(float)
    im = ax.imshow(values, cmap="viridis_r", aspect="auto")
    mid = np.nanmean([np.nanmin(values), np.nanmax(values)])
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            v, s = mean.iat[i, j], std.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{fmt(v)} ± {fmt(s)}", ha="center", va="center",
                        color="black" if v < mid else "white", fontsize=9, fontweight="bold")
    ax.set_xticks(range(len(cols)), [f"batchnorm {'on' if c else 'off'}" for c in cols])
    ax.set_yticks(range(len(mean)), list(mean.index))
    ax.set_xlabel("batch normalisation in the ConvLayers and hidden layers")
    ax.set_ylabel("ConvLayer activation")
    fig.colorbar(im, ax=ax, label=f"mean {_mae_label(unit)}")
    ax.set_title("Activation x batchnorm: CV test MAE (mean ± std)")
    return fig


def plot_baseline(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Per-fold test MAE of CGCNN and the RF baseline, their paired difference and its CI.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'baseline' (models ``"cgcnn"`` and the baseline).
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    pair = baseline_pair(table)
    if pair is None:
        raise ValueError("the baseline study needs rows of model 'cgcnn' and of a baseline model")
    cmp = paired_comparison(table, *pair)
    folds = np.asarray(cmp["folds"])
    x = np.arange(len(folds))
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    w = 0.38
    ax.bar(x - w / 2, cmp["mae_a"], w, label=f"CGCNN ({pair[0][2]})", color="tab:orange")
    ax.bar(x + w / 2, cmp["mae_b"], w, label=f"RF baseline ({pair[1][2]})", color="tab:green")
    ax.set_xticks(x, [str(f) for f in folds])
    ax.set_xlabel("fold")
    ax.set_ylabel(_mae_label(unit))
    ax.set_title("Test MAE per fold (same folds)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    neg = cmp["diff"] < 0
    ax2.bar(x[neg], cmp["diff"][neg], color="tab:orange", label="fold where CGCNN is better")
    ax2.bar(x[~neg], cmp["diff"][~neg], color="tab:green", label="fold where RF is better")
    ax2.axhline(0.0, color="k", lw=0.8)
    ax2.axhline(cmp["mean_diff"], color="tab:red", ls="--",
                label=f"mean {fmt(cmp['mean_diff'])}")
    ax2.axhspan(cmp["ci_low"], cmp["ci_high"], color="tab:red", alpha=0.12,
                label=f"95% CI (corrected t-test, p = {cmp['p_value']:.3f})")
    ax2.set_xticks(x, [str(f) for f in folds])
    ax2.set_xlabel("fold")
    ax2.set_ylabel(f"MAE difference CGCNN - RF ({unit or 'target units'})")
    ax2.set_title(f"Paired difference (below 0: CGCNN better; wins {cmp['wins_a']}/{len(x)})",
                  fontsize=10)
    ax2.legend(fontsize=8)
    ax2.grid(axis="y", alpha=0.3)
    fig.suptitle("CGCNN vs random-forest baseline, fold by fold")
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
        ax.set_title(f"{name}\nout-of-fold MAE {fmt(mae)} {unit or ''}".rstrip(), fontsize=9)
        ax.set_xlabel(f"true {target}{u}")
        ax.set_ylabel(f"predicted {target}{u}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Parity plot, out-of-fold predictions")
    return fig


# --------------------------------------------------------------------------- report
def _best_cgcnn(table: pd.DataFrame) -> tuple[str, str, str] | None:
    s = summarize(table[table["model"] == "cgcnn"]).query("n_failed == 0 and n_folds > 0")
    if s.empty:
        return None
    s = s.sort_values("mae_mean", kind="stable").iloc[0]
    return s["study"], s["model"], s["setting"]


def make_figures(
    table: pd.DataFrame,
    histories: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
    out_dir: str | Path | None = None,
    *,
    target: str = "target",
    unit: str | None = None,
    loss_label: str = LOSS_LABEL,
    dpi: int = 120,
) -> dict[str, Figure | Path]:
    """Build every figure the table supports; save them as PNG when ``out_dir`` is given.

    Parameters
    ----------
    table, histories, predictions : DataFrame
        See the module docstring. ``histories`` and ``predictions`` are optional: without
        them the loss-curve and parity figures are skipped.
    out_dir : path, optional
        Folder for ``<name>.png``; created if needed.
    target, unit : str
        Target name and unit for the axis labels.
    loss_label : str
        y-axis label of the loss curves.
    dpi : int
        Resolution of the saved PNGs.

    Returns
    -------
    figures : dict
        Name -> saved path (when ``out_dir`` is given) or Figure. Names:
        ``loss_<study>``, ``study_hyperparameters``, ``study_neighbours``,
        ``study_activation_batchnorm``, ``study_pooling``, ``study_baseline``, ``parity``.
    """
    check_table(table)
    studies = list(dict.fromkeys(table["study"]))
    figs: dict[str, Figure] = {}
    if histories is not None and not histories.empty:
        for study in studies:
            if study == "baseline" or not (histories["study"] == study).any():
                continue
            panel_by = None
            if study == "activation_batchnorm" and "batchnorm" in table:
                r = table[table["study"] == study].groupby("setting")["batchnorm"].first()
                panel_by = {s: f"batchnorm {'on' if bool(b) else 'off'}" for s, b in r.items()}
            figs[f"loss_{study}"] = plot_loss_curves(
                histories, study, panel_by=panel_by, loss_label=loss_label, unit=unit,
                show_train=study == "hyperparameters" or panel_by is None,
            )
    plotters = {"neighbours": plot_neighbours, "activation_batchnorm": plot_activation_batchnorm,
                "baseline": plot_baseline}
    for study in studies:
        if (table["study"].eq(study) & table["test_mae"].notna()).any():
            plot = plotters.get(study, lambda t, u, s=study: plot_settings(t, s, u))
            figs[f"study_{study}"] = plot(table, unit)
    if predictions is not None and not predictions.empty:
        keys = []
        if "baseline" in studies and baseline_pair(table) is not None:
            keys = list(baseline_pair(table))
        else:
            best = _best_cgcnn(table)
            if best is not None:
                keys = [best]
        keys = [
            k for k in keys
            if ((predictions["study"] == k[0]) & (predictions["model"] == k[1])
                & (predictions["setting"] == k[2])).any()
        ]
        if keys:
            figs["parity"] = plot_parity(predictions, keys, target=target, unit=unit)
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

