"""Figures, one-sentence conclusions and a self-contained report from a study's tidy table.

Everything here reads plain pandas objects, never a model:

* ``table`` -- the tidy table of :func:`cgcnn_sk.studies.run_study`, one row per
  ``(study, model, setting, fold)`` with at least the columns ``study``, ``model``,
  ``setting``, ``fold`` and ``test_mae``; the figures of single studies also read
  ``max_num_nbr`` / ``featurize_time`` (neighbours), ``activation`` / ``batchnorm``
  (activation x batchnorm) and ``pooling`` (pooling).
* ``histories`` -- the loss curves, one row per ``(study, model, setting, fold, epoch)``
  with ``train_loss`` and ``valid_loss`` (skorch's ``net.history``).
* ``predictions`` -- out-of-fold predictions, one row per ``(study, model, setting, fold,
  index)`` with ``y_true`` and ``y_pred``.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so the
module works in scripts, tests and notebooks alike. Each figure has a title, axis labels with
units and a legend where more than one series is drawn.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "summarize",
    "paired_comparison",
    "conclusion",
    "plot_loss_curves",
    "plot_hyperparameters",
    "plot_neighbours",
    "plot_activation_batchnorm",
    "plot_pooling",
    "plot_baseline",
    "plot_parity",
    "make_figures",
    "write_report",
]

STUDY_TITLES = {
    "hyperparameters": "Hyperparameters and loss curves",
    "neighbours": "Neighbour count (max_num_nbr)",
    "activation_batchnorm": "ConvLayer activation x batchnorm",
    "pooling": "Pooling",
    "baseline": "Best CGCNN against the random-forest baseline",
}
_REQUIRED = ("study", "model", "setting", "fold", "test_mae")
_DEFAULT_LOSS_LABEL = "loss (MSE on the standardised target, unitless)"


# --------------------------------------------------------------------------- numbers
def _check_table(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"tidy table is missing the column(s) {missing}")


def _rows(table: pd.DataFrame, study: str, model: str | None = None) -> pd.DataFrame:
    rows = table[table["study"] == study]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        raise ValueError(f"the tidy table has no rows for study {study!r}")
    return rows


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """One row per ``(study, model, setting)``: mean and spread of the fold test MAEs.

    Parameters
    ----------
    table : DataFrame
        The tidy table (one row per setting x fold).

    Returns
    -------
    summary : DataFrame
        Columns ``study, model, setting, n_folds, mae_mean, mae_std`` (std over folds,
        ``ddof=1``), ``mae_min, mae_max`` and, when present in ``table``, the mean
        ``fit_time``, ``epochs`` and the first ``featurize_time`` of each setting. Settings
        keep their order of first appearance.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "pooling", "model": "cgcnn", "setting": ["a", "a", "b", "b"],
    ...                   "fold": [0, 1, 0, 1], "test_mae": [1.0, 3.0, 2.0, 2.0]})
    >>> summarize(t)[["setting", "mae_mean", "mae_std"]].round(3).values.tolist()
    [['a', 2.0, 1.414], ['b', 2.0, 0.0]]
    """
    _check_table(table)
    keys = ["study", "model", "setting"]
    grouped = table.groupby(keys, sort=False)
    out = grouped["test_mae"].agg(
        n_folds="count", mae_mean="mean", mae_std="std", mae_min="min", mae_max="max"
    )
    out["mae_std"] = out["mae_std"].fillna(0.0)
    if "fit_time" in table:
        out["fit_time"] = grouped["fit_time"].mean()
    if "featurize_time" in table:
        out["featurize_time"] = grouped["featurize_time"].first()
    if "epochs" in table:
        out["epochs"] = grouped["epochs"].mean()
    return out.reset_index()


def paired_comparison(
    table: pd.DataFrame,
    a: tuple[str, str, str],
    b: tuple[str, str, str],
) -> dict:
    """Compare two settings fold by fold on the same folds.

    Parameters
    ----------
    table : DataFrame
        The tidy table.
    a, b : tuple of (study, model, setting)
        The two settings; their rows are matched on ``fold``.

    Returns
    -------
    comparison : dict
        ``folds`` (fold ids), ``mae_a``, ``mae_b``, ``diff`` (``mae_a - mae_b`` per fold),
        ``wins_a`` (folds where ``a`` has the lower MAE), ``wins_b``, ``ties``,
        ``mean_diff``, ``std_diff`` (std of the per-fold differences, ``ddof=1``; 0 for a
        single fold) and ``exceeds_spread`` (``|mean_diff| > std_diff``).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "s", "model": "m", "setting": ["a"] * 3 + ["b"] * 3,
    ...                   "fold": [0, 1, 2] * 2, "test_mae": [1.0, 2.0, 3.0, 2.0, 2.5, 3.0]})
    >>> c = paired_comparison(t, ("s", "m", "a"), ("s", "m", "b"))
    >>> c["wins_a"], c["ties"], round(c["mean_diff"], 3), round(c["std_diff"], 3)
    (2, 1, -0.5, 0.5)
    """
    _check_table(table)

    def fold_mae(key):
        study, model, setting = key
        rows = table[
            (table["study"] == study) & (table["model"] == model) & (table["setting"] == setting)
        ]
        if rows.empty:
            raise ValueError(f"no rows for study={study!r}, model={model!r}, setting={setting!r}")
        return rows.set_index("fold")["test_mae"]

    ma, mb = fold_mae(a), fold_mae(b)
    folds = sorted(set(ma.index) & set(mb.index))
    if not folds:
        raise ValueError(f"settings {a} and {b} share no fold")
    va = ma.loc[folds].to_numpy(float)
    vb = mb.loc[folds].to_numpy(float)
    diff = va - vb
    std = float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0
    mean = float(np.mean(diff))
    return {
        "folds": folds,
        "mae_a": va,
        "mae_b": vb,
        "diff": diff,
        "wins_a": int(np.sum(va < vb)),
        "wins_b": int(np.sum(vb < va)),
        "ties": int(np.sum(va == vb)),
        "mean_diff": mean,
        "std_diff": std,
        "exceeds_spread": bool(abs(mean) > std),
    }


def _fmt(x: float) -> str:
    """Three significant digits, no scientific notation for everyday magnitudes."""
    if x is None or not np.isfinite(x):
        return "nan"
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{digits}f}"


def _unit_suffix(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def conclusion(
    table: pd.DataFrame,
    study: str,
    unit: str | None = None,
    *,
    featurize_first_time: float | None = None,
) -> str:
    """One sentence stating what a study's numbers say.

    For a sweep: the best setting (lowest mean test MAE), its margin over the runner-up
    and whether that margin exceeds the fold spread (the standard deviation of the paired
    per-fold differences). For ``"baseline"``: folds won by each model and the mean
    difference against its spread.

    Parameters
    ----------
    table : DataFrame
        The tidy table.
    study : str
        Study name as in the ``study`` column.
    unit : str, optional
        Unit of the target, e.g. ``"meV/atom"``.
    featurize_first_time : float, optional
        Seconds of the run's first featurization (the real neighbour search), quoted in the
        neighbours sentence beside the per-setting ``featurize_time``.

    Returns
    -------
    sentence : str

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": "pooling", "model": "cgcnn",
    ...                   "setting": ["pooling=mean"] * 2 + ["pooling=max"] * 2,
    ...                   "fold": [0, 1] * 2, "test_mae": [10.0, 12.0, 20.0, 21.0]})
    >>> conclusion(t, "pooling", "eV")  # doctest: +NORMALIZE_WHITESPACE
    'pooling=mean is best (mean test MAE 11.0 eV over 2 folds); it beats the runner-up
    pooling=max (20.5 eV) on 2 of 2 folds by 9.50 eV on average, more than the fold spread
    (std of the per-fold differences 0.707 eV), so the difference is resolved.'
    """
    _check_table(table)
    u = _unit_suffix(unit)
    if study == "baseline":
        return _baseline_conclusion(table, u)
    summary = summarize(_rows(table, study, "cgcnn"))
    summary = summary.sort_values("mae_mean", kind="stable")
    best = summary.iloc[0]
    head = (
        f"{best['setting']} is best (mean test MAE {_fmt(best['mae_mean'])}{u} over "
        f"{int(best['n_folds'])} folds)"
    )
    if len(summary) == 1:
        return head + "; it is the only setting of this study."
    runner = summary.iloc[1]
    cmp = paired_comparison(
        table, (study, "cgcnn", best["setting"]), (study, "cgcnn", runner["setting"])
    )
    n = len(cmp["folds"])
    margin = -cmp["mean_diff"]
    verdict = (
        "more than the fold spread (std of the per-fold differences "
        f"{_fmt(cmp['std_diff'])}{u}), so the difference is resolved."
        if cmp["exceeds_spread"]
        else "within the fold spread (std of the per-fold differences "
        f"{_fmt(cmp['std_diff'])}{u}), so these folds do not separate the two."
    )
    sentence = (
        f"{head}; it beats the runner-up {runner['setting']} ({_fmt(runner['mae_mean'])}{u}) "
        f"on {cmp['wins_a']} of {n} folds by {_fmt(margin)}{u} on average, {verdict}"
    )
    if study == "neighbours" and "featurize_time" in summary:
        ft = summary["featurize_time"].to_numpy(float)
        if np.all(np.isfinite(ft)):
            each = f"{_fmt(ft.min())}-{_fmt(ft.max())} s (cached neighbour lists, sliced to M)."
            if featurize_first_time is None:
                sentence += f" Re-featurizing all structures for each value took {each}"
            else:
                sentence += (
                    f" The neighbour search of all structures took {_fmt(featurize_first_time)}"
                    f" s once; re-featurizing them for each value took {each}"
                )
    return sentence


def _baseline_pair(table: pd.DataFrame) -> tuple[tuple, tuple] | None:
    rows = table[table["study"] == "baseline"]
    cg = rows[rows["model"] == "cgcnn"]["setting"].unique()
    rf = rows[rows["model"] != "cgcnn"]
    if len(cg) == 0 or rf.empty:
        return None
    rf_model, rf_setting = rf.iloc[0]["model"], rf.iloc[0]["setting"]
    return ("baseline", "cgcnn", cg[0]), ("baseline", rf_model, rf_setting)


def _baseline_conclusion(table: pd.DataFrame, u: str) -> str:
    pair = _baseline_pair(table)
    if pair is None:
        raise ValueError("the baseline study needs rows of model 'cgcnn' and of a baseline model")
    cmp = paired_comparison(table, *pair)
    n = len(cmp["folds"])
    mean_cg, mean_rf = cmp["mae_a"].mean(), cmp["mae_b"].mean()
    if cmp["exceeds_spread"]:
        better = "CGCNN" if cmp["mean_diff"] < 0 else "the RF baseline"
        verdict = f"larger than the fold spread, so {better} is better on this data."
    else:
        verdict = "within the fold spread, so these folds do not separate the two models."
    return (
        f"The best CGCNN setting ({pair[0][2]}, mean test MAE {_fmt(mean_cg)}{u}) beats the "
        f"RF baseline ({_fmt(mean_rf)}{u}) on {cmp['wins_a']} of {n} folds; the mean "
        f"difference CGCNN - RF is {_fmt(cmp['mean_diff'])}{u} with a fold spread (std of the "
        f"per-fold differences) of {_fmt(cmp['std_diff'])}{u}, {verdict}"
    )


# --------------------------------------------------------------------------- figures
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
    loss_label: str = _DEFAULT_LOSS_LABEL,
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


def plot_hyperparameters(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Bars of the CV test MAE per hyperparameter setting (best in orange), folds as dots.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'hyperparameters'.
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rows = _rows(table, "hyperparameters", "cgcnn")
    summary = summarize(rows)
    fig = Figure(figsize=(max(5.0, 1.1 * len(summary) + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    _bar_panel(ax, summary, rows, unit)
    ax.set_xlabel("setting")
    ax.set_title("Hyperparameters: cross-validated test MAE")
    return fig


def plot_neighbours(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Test MAE (mean ± std over folds) against ``max_num_nbr``, featurization time beside it.

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'neighbours' (columns ``max_num_nbr``,
        ``test_mae``, ``featurize_time``).
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
    h1 = ax.errorbar(m.index, m["mean"], yerr=m["std"], fmt="o-", capsize=4, color="tab:blue",
                     label="test MAE, mean ± std over folds")
    ax.plot(rows["max_num_nbr"], rows["test_mae"], ".", color="tab:blue", alpha=0.35,
            label="one fold")
    ax.set_xlabel("max_num_nbr M (neighbours per atom)")
    ax.set_ylabel(_mae_label(unit))
    ax.set_xticks(m.index)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "featurize_time" in rows and rows["featurize_time"].notna().any():
        ft = g["featurize_time"].first()
        ax2 = ax.twinx()
        ax2.plot(ft.index, ft.to_numpy(), "s:", color="tab:gray",
                 label="featurize time, all structures (s)")
        ax2.set_ylabel("featurization time (s)")
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    del h1
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncol=3)
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
                ax.text(j, i, f"{_fmt(v)} ± {_fmt(s)}", ha="center", va="center",
                        color="black" if v < mid else "white", fontsize=9, fontweight="bold")
    ax.set_xticks(range(len(cols)), [f"batchnorm {'on' if c else 'off'}" for c in cols])
    ax.set_yticks(range(len(mean)), list(mean.index))
    ax.set_xlabel("batch normalisation in the ConvLayers and hidden layers")
    ax.set_ylabel("ConvLayer activation")
    fig.colorbar(im, ax=ax, label=f"mean {_mae_label(unit)}")
    ax.set_title("Activation x batchnorm: CV test MAE (mean ± std)")
    return fig


def plot_pooling(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Bars of the CV test MAE per pooling (mean ± std over folds; folds as dots).

    Parameters
    ----------
    table : DataFrame
        The tidy table; reads the rows of study 'pooling' (columns ``pooling``, ``test_mae``).
    unit : str, optional
        Unit of the target, for the axis labels.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rows = _rows(table, "pooling", "cgcnn")
    summary = summarize(rows)
    labels = [str(p) for p in rows.groupby("setting", sort=False)["pooling"].first()]
    fig = Figure(figsize=(5.0, 4.2), layout="constrained")
    ax = fig.subplots()
    _bar_panel(ax, summary, rows, unit, labels=labels)
    ax.set_xlabel("pooling of atom vectors into the crystal vector")
    ax.set_title("Pooling: cross-validated test MAE")
    return fig


def plot_baseline(table: pd.DataFrame, unit: str | None = None) -> Figure:
    """Per-fold test MAE of the best CGCNN and the RF baseline, and their paired difference.

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
    pair = _baseline_pair(table)
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
                label=f"mean {_fmt(cmp['mean_diff'])}")
    ax2.axhspan(cmp["mean_diff"] - cmp["std_diff"], cmp["mean_diff"] + cmp["std_diff"],
                color="tab:red", alpha=0.12, label=f"± std {_fmt(cmp['std_diff'])}")
    ax2.set_xticks(x, [str(f) for f in folds])
    ax2.set_xlabel("fold")
    ax2.set_ylabel(f"MAE difference CGCNN - RF ({unit or 'target units'})")
    ax2.set_title(f"Paired difference (below 0: CGCNN better; wins {cmp['wins_a']}/{len(x)})",
                  fontsize=10)
    ax2.legend(fontsize=8)
    ax2.grid(axis="y", alpha=0.3)
    fig.suptitle("Best CGCNN vs random-forest baseline, fold by fold")
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
        ax.set_title(f"{name}\nout-of-fold MAE {_fmt(mae)}{_unit_suffix(unit)}", fontsize=9)
        ax.set_xlabel(f"true {target}{u}")
        ax.set_ylabel(f"predicted {target}{u}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Parity plot, out-of-fold predictions")
    return fig


# --------------------------------------------------------------------------- report
def _best_cgcnn(table: pd.DataFrame) -> tuple[str, str, str] | None:
    rows = table[table["model"] == "cgcnn"]
    if rows.empty:
        return None
    s = summarize(rows).sort_values("mae_mean", kind="stable").iloc[0]
    return s["study"], s["model"], s["setting"]


def make_figures(
    table: pd.DataFrame,
    histories: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
    out_dir: str | Path | None = None,
    *,
    target: str = "target",
    unit: str | None = None,
    loss_label: str = _DEFAULT_LOSS_LABEL,
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
    _check_table(table)
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
    plotters = {
        "hyperparameters": plot_hyperparameters,
        "neighbours": plot_neighbours,
        "activation_batchnorm": plot_activation_batchnorm,
        "pooling": plot_pooling,
        "baseline": plot_baseline,
    }
    for study in studies:
        if study in plotters:
            figs[f"study_{study}"] = plotters[study](table, unit)
    if predictions is not None and not predictions.empty:
        keys = []
        if "baseline" in studies and _baseline_pair(table) is not None:
            keys = list(_baseline_pair(table))
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


def _markdown_table(df: pd.DataFrame) -> str:
    cells = [[str(c) for c in df.columns]] + [
        [_fmt(v) if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(False)
    ]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def _section_table(table: pd.DataFrame, study: str) -> pd.DataFrame:
    s = summarize(table[table["study"] == study])
    cols = ["model", "setting", "n_folds", "mae_mean", "mae_std", "mae_min", "mae_max"]
    cols += [c for c in ("epochs", "fit_time", "featurize_time") if c in s]
    s = s[cols].copy()
    if "n_folds" in s:
        s["n_folds"] = s["n_folds"].astype(int)
    return s


def write_report(
    table: pd.DataFrame,
    histories: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
    out_dir: str | Path = "cgcnn_sk_report",
    *,
    meta: Mapping | None = None,
    formats: Iterable[str] = ("md", "html"),
    figures: Mapping[str, Path] | None = None,
) -> dict[str, Path]:
    """Write the figures, the tidy CSV and a report (Markdown and/or self-contained HTML).

    Parameters
    ----------
    table, histories, predictions : DataFrame
        See the module docstring.
    out_dir : path
        Output folder (created). It receives ``results.csv`` (the tidy table),
        ``histories.csv``, ``predictions.csv``, the PNG figures, ``report.md`` (links the
        PNGs beside it) and ``report.html`` (PNGs embedded, a single file to share).
    meta : mapping, optional
        Run facts shown at the top: ``data``, ``target``, ``unit``, ``n_samples``, ``preset``,
        ``cv``, ``random_state``, ``wall_time``, ``loss_label``, ``command`` ...
    formats : iterable of {"md", "html"}
        Which reports to write.
    figures : mapping, optional
        Already saved figures (name -> path); built with :func:`make_figures` otherwise.

    Returns
    -------
    paths : dict
        ``"csv"``, ``"md"``, ``"html"`` and one entry per figure name -> path.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> t = pd.DataFrame({"study": "pooling", "model": "cgcnn",
    ...                   "setting": ["pooling=mean"] * 2 + ["pooling=max"] * 2,
    ...                   "pooling": ["mean"] * 2 + ["max"] * 2,
    ...                   "fold": [0, 1] * 2, "test_mae": [10.0, 12.0, 20.0, 21.0]})
    >>> paths = write_report(t, out_dir=tempfile.mkdtemp(), formats=["md"])
    >>> sorted(paths)
    ['csv', 'md', 'study_pooling']
    """
    _check_table(table)
    formats = list(formats)
    bad = [f for f in formats if f not in ("md", "html")]
    if bad:
        raise ValueError(f"unknown report format(s) {bad}; choose from 'md', 'html'")
    meta = dict(meta or {})
    unit = meta.get("unit")
    target = meta.get("target", "target")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    table.to_csv(out_dir / "results.csv", index=False)
    paths["csv"] = out_dir / "results.csv"
    if histories is not None:
        histories.to_csv(out_dir / "histories.csv", index=False)
    if predictions is not None:
        predictions.to_csv(out_dir / "predictions.csv", index=False)
    if figures is None:
        figures = make_figures(
            table, histories, predictions, out_dir, target=target, unit=unit,
            loss_label=meta.get("loss_label", _DEFAULT_LOSS_LABEL),
        )
    figures = {k: Path(v) for k, v in figures.items()}
    paths.update(figures)

    sections = _report_sections(table, figures, unit, meta.get("featurize_first_time"))
    if "md" in formats:
        paths["md"] = out_dir / "report.md"
        paths["md"].write_text(_render_md(sections, meta))
    if "html" in formats:
        paths["html"] = out_dir / "report.html"
        paths["html"].write_text(_render_html(sections, meta))
    return paths


def _report_sections(table, figures, unit, featurize_first_time=None):
    sections = []
    for study in dict.fromkeys(table["study"]):
        figs = [figures[n] for n in (f"study_{study}", f"loss_{study}") if n in figures]
        if study == "baseline" and "parity" in figures:
            figs.append(figures["parity"])
        sections.append(
            {
                "title": STUDY_TITLES.get(study, study),
                "conclusion": conclusion(
                    table, study, unit, featurize_first_time=featurize_first_time
                ),
                "table": _section_table(table, study),
                "figures": figs,
            }
        )
    if "baseline" not in set(table["study"]) and "parity" in figures:
        best = _best_cgcnn(table)
        sections.append(
            {
                "title": "Parity plot of the best setting",
                "conclusion": f"Out-of-fold predictions of {best[2]} ({best[0]} study).",
                "table": None,
                "figures": [figures["parity"]],
            }
        )
    return sections


_META_ORDER = ["data", "target", "unit", "n_samples", "preset", "cv", "folds", "random_state",
               "wall_time", "command"]


def _meta_lines(meta) -> list[tuple[str, str]]:
    keys = [k for k in _META_ORDER if k in meta] + [
        k for k in meta if k not in _META_ORDER and k != "loss_label"
    ]
    out = []
    for k in keys:
        v = meta[k]
        if k == "wall_time" and isinstance(v, (int, float)):
            v = f"{v:.0f} s"
        out.append((k, str(v)))
    return out


_NOTE = (
    "Each row of a table is one setting over the same cross-validation folds; mae_std is "
    "the standard deviation over folds. A difference is called resolved only when it is "
    "larger than the standard deviation of the paired per-fold differences. The best CGCNN "
    "setting is picked on the same test folds it is then scored on, so its MAE is "
    "optimistic by the selection."
)


def _render_md(sections, meta) -> str:
    lines = ["# cgcnn_sk study report", ""]
    for k, v in _meta_lines(meta):
        lines.append(f"- **{k}**: {v}")
    lines += ["", _NOTE, ""]
    for s in sections:
        lines += [f"## {s['title']}", "", f"**Conclusion.** {s['conclusion']}", ""]
        if s["table"] is not None:
            lines += [_markdown_table(s["table"]), ""]
        for f in s["figures"]:
            lines += [f"![{f.stem}]({f.name})", ""]
    return "\n".join(lines)


def _render_html(sections, meta) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>cgcnn_sk study report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}img{max-width:100%;display:block;margin:1em 0}"
        ".c{background:#f4f7fb;padding:.6em;border-left:4px solid #4a7}</style></head><body>",
        "<h1>cgcnn_sk study report</h1><ul>",
    ]
    parts += [f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in _meta_lines(meta)]
    parts += ["</ul>", f"<p>{esc(_NOTE)}</p>"]
    for s in sections:
        parts.append(f"<h2>{esc(s['title'])}</h2>")
        parts.append(f"<p class='c'><b>Conclusion.</b> {esc(s['conclusion'])}</p>")
        if s["table"] is not None:
            parts.append(s["table"].to_html(index=False, float_format=_fmt, border=0))
        for f in s["figures"]:
            data = base64.b64encode(Path(f).read_bytes()).decode("ascii")
            parts.append(f"<img alt='{esc(f.stem)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
