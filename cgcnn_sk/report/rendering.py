"""The written report: CSV tables, PNG figures and jinja2 templates (Markdown, HTML)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2
import pandas as pd

from .figures import LOSS_LABEL, STUDY_TITLES, make_figures
from .statistics import check_table, conclusion, selection_text, summarize

__all__ = ["write_report"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("cgcnn_sk.report", "templates"),
    autoescape=jinja2.select_autoescape(["html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["b64"] = lambda path: base64.b64encode(Path(path).read_bytes()).decode("ascii")

_META_ORDER = ["data", "target", "unit", "n_samples", "preset", "cv", "folds", "random_state",
               "baseline_cgcnn", "wall_time", "command"]
_NOTE = (
    "Each table row is one setting over the same cross-validation folds (mae_std: standard "
    "deviation over folds). Two settings are compared with the corrected resampled t-test of "
    "their per-fold differences (Nadeau & Bengio 2003, variance factor 1/k + n_test/n_train); "
    "a difference is called resolved when p < 0.05. The best setting of a sweep is picked on "
    "the folds it is scored on, so its MAE is optimistic; the CGCNN of the baseline study is "
    "{selection}. A failed fit is listed, not scored."
)


def _meta_items(meta: Mapping) -> list[tuple[str, str]]:
    keys = [k for k in _META_ORDER if k in meta] + [k for k in meta if k not in _META_ORDER]
    return [(k, f"{meta[k]:.0f} s" if k == "wall_time" else str(meta[k])) for k in keys]


def _section_table(table: pd.DataFrame, study: str) -> pd.DataFrame:
    s = summarize(table[table["study"] == study])
    cols = ["model", "setting", "n_folds", "n_failed", "mae_mean", "mae_std", "mae_min",
            "mae_max"] + [c for c in ("epochs", "fit_time") if c in s]
    return s[cols]


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
        The tidy tables of :class:`cgcnn_sk.studies.StudyResult`.
    out_dir : path
        Output folder (created). It receives ``results.csv`` (the tidy table),
        ``histories.csv``, ``predictions.csv``, the PNG figures, ``report.md`` (links the
        PNGs beside it) and ``report.html`` (PNGs embedded, a single file to share).
    meta : mapping, optional
        Run facts shown at the top (``data``, ``target``, ``unit``, ``n_samples``, ``preset``,
        ``cv``, ``random_state``, ``baseline_cgcnn``, ``wall_time``, ``command`` ...).
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
    ...                   "fold": [0, 1] * 2, "test_mae": [10.0, 12.0, 20.0, 21.0]})
    >>> paths = write_report(t, out_dir=tempfile.mkdtemp(), formats=["md"])
    >>> sorted(paths)
    ['csv', 'md', 'study_pooling']
    """
    check_table(table)
    formats = list(formats)
    bad = [f for f in formats if f not in ("md", "html")]
    if bad:
        raise ValueError(f"unknown report format(s) {bad}; choose from 'md', 'html'")
    meta = dict(meta or {})
    unit = meta.get("unit")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "results.csv"}
    table.to_csv(paths["csv"], index=False)
    for name, frame in (("histories", histories), ("predictions", predictions)):
        if frame is not None:
            frame.to_csv(out_dir / f"{name}.csv", index=False)
    if figures is None:
        figures = make_figures(table, histories, predictions, out_dir,
                               target=meta.get("target", "target"), unit=unit,
                               loss_label=meta.get("loss_label", LOSS_LABEL))
    figures = {k: Path(v) for k, v in figures.items()}
    paths.update(figures)
    sections = []
    for study in dict.fromkeys(table["study"]):
        names = [f"study_{study}", f"loss_{study}"] + ["parity"] * (study == "baseline")
        sections.append({
            "title": STUDY_TITLES.get(study, study),
            "conclusion": conclusion(table, study, unit, meta=meta),
            "table": _section_table(table, study),
            "figures": [figures[n] for n in names if n in figures],
        })
    if "baseline" not in set(table["study"]) and "parity" in figures:
        sections.append({"title": "Parity plot of the best setting",
                         "conclusion": "Out-of-fold predictions of the best setting.",
                         "table": None, "figures": [figures["parity"]]})
    context = {"meta": _meta_items(meta), "sections": sections,
               "note": _NOTE.format(selection=selection_text(meta))}
    for fmt in formats:
        paths[fmt] = out_dir / f"report.{fmt}"
        paths[fmt].write_text(_ENV.get_template(f"report.{fmt}.j2").render(**context))
    return paths
