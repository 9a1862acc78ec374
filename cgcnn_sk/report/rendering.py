"""The written report: CSV tables, PNG figures and jinja2 templates (Markdown, HTML).

The report opens with what a reader wants first -- the data, the questions and their verdicts
-- then one section per question with its evidence and figures, and ends with the run's facts.
"""

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

#: run facts shown at the end, in this order (anything else in ``meta`` follows)
_FACT_ORDER = ["data", "target", "unit", "n_samples", "preset", "recipe", "factors", "fraction",
               "n_settings", "cv", "folds", "repeats", "rope", "n_fits", "random_state",
               "baseline_cgcnn", "neighbour_shells", "featurize_first_time", "wall_time",
               "command"]
_HIDDEN = {"studies", "interrupted", "params", "inner_cv", "n_jobs", "factor_params",
           "questions"}
_FIGURES = {"neighbours": ["effects", "loss"], "activation_batchnorm": ["interaction"],
            "pooling": [], "baseline": ["baseline", "parity"]}
_QUESTIONS = {
    "neighbours": "How does the neighbour count M change the model, and why?",
    "activation_batchnorm": "What do the ConvLayer's activation and batch normalisation do, "
                            "alone and together?",
    "pooling": "Mean or max pooling?",
    "baseline": "Does the CGCNN beat a matminer random forest?",
}
_METHOD = (
    "Method: the factors form a two-level factorial design ({fraction} fraction, {n} settings), "
    "every setting fitted on the same folds with the same seed. Per fold, an effect is the mean "
    "test MAE of the fits at one level minus that at the other; the folds' effects go to a "
    "Bayesian correlated t-test (Benavoli et al. 2017), whose correction for the training rows "
    "folds share keeps the verdict honest. A verdict says 'better' when the posterior puts 95 % "
    "beyond the region of practical equivalence (ROPE: {rope:.1%} of the mean test MAE), "
    "'equivalent' when it puts 95 % inside it, and 'undecided' otherwise, with the smallest "
    "difference the design could have resolved. The CGCNN of the RF comparison is {selection}."
)


def _facts(meta: Mapping) -> list[tuple[str, str]]:
    keys = [k for k in _FACT_ORDER if k in meta]
    keys += [k for k in meta if k not in _FACT_ORDER and k not in _HIDDEN]
    return [(k, f"{meta[k]:.0f} s" if k == "wall_time" else str(meta[k])) for k in keys]


def _settings_table(table: pd.DataFrame) -> pd.DataFrame:
    s = summarize(table)
    cols = ["study", "model", "setting", "n_folds", "n_failed", "mae_mean", "mae_std"]
    return s[cols + [c for c in ("epochs", "fit_time") if c in s]]


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
        The tidy tables of :class:`cgcnn_sk.workflows.studies.StudyResult`.
    out_dir : path
        Output folder (created). It receives ``results.csv`` (the tidy table),
        ``histories.csv``, ``predictions.csv``, the PNG figures, ``report.md`` (links the
        PNGs beside it) and ``report.html`` (PNGs embedded, a single file to share).
    meta : mapping, optional
        The result's ``meta``: the questions (``studies``), the design (``factors``,
        ``fraction``, ``rope``), and run facts shown at the end (``data``, ``target``,
        ``unit``, ``wall_time`` ...). ``interrupted`` is shown first when present.
    formats : iterable of {"md", "html"}
        Which reports to write.
    figures : mapping, optional
        Already saved figures (name -> path); built with :func:`make_figures` otherwise.

    Returns
    -------
    paths : dict
        ``"csv"``, ``"md"``, ``"html"`` and one entry per figure name -> path.
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
        figures = make_figures(table, histories, predictions, out_dir, meta=meta,
                               target=meta.get("target", "target"), unit=unit,
                               loss_label=meta.get("loss_label", LOSS_LABEL))
    figures = {k: Path(v) for k, v in figures.items()}
    paths.update(figures)
    studies = meta.get("studies") or []
    sections = []
    for study in studies:
        text = conclusion(table, study, meta)
        sections.append({
            "title": STUDY_TITLES.get(study, study),
            "question": _QUESTIONS.get(study, ""),
            "verdict": text.split(". ")[0].rstrip(".") + ".",
            "conclusion": text,
            "figures": [figures[n] for n in _FIGURES.get(study, []) if n in figures],
        })
    shown = {f for s in sections for f in s["figures"]}
    extra = [f for f in figures.values() if f not in shown]
    if sections and extra:
        sections[0]["figures"] += extra
    data = meta.get("data", "the data")
    n = meta.get("n_samples", len(set(table.get("fold", []))))
    intro = (f"Data: {data}, {n} structures; target: {meta.get('target', 'the target')}"
             f"{' (' + unit + ')' if unit else ''}.")
    context = {
        "interrupted": meta.get("interrupted"),
        "intro": intro,
        "sections": sections,
        "method": _METHOD.format(fraction=meta.get("fraction", "full"),
                                 n=meta.get("n_settings", "?"), rope=meta.get("rope", 0.025),
                                 selection=selection_text(meta)),
        "settings": _settings_table(table),
        "facts": _facts(meta),
    }
    for fmt in formats:
        paths[fmt] = out_dir / f"report.{fmt}"
        paths[fmt].write_text(_ENV.get_template(f"report.{fmt}.j2").render(**context))
    return paths
