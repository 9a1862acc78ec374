"""Statistics, figures and a written report from a study's tidy tables (never a model).

* ``table`` -- the tidy table of :func:`cgcnn_sk.workflows.studies.run_study`, one row per fit
  with at least ``study``, ``model``, ``setting``, ``fold`` and ``test_mae`` (and ``repeat``,
  the factor columns, ``status``/``error`` for failed fits).
* ``histories`` -- loss curves, one row per ``(study, model, setting, repeat, fold, epoch)``.
* ``predictions`` -- out-of-fold predictions with ``y_true`` and ``y_pred``.
* ``meta`` -- the design (``factors``, ``fraction``, ``rope``), the questions (``studies``)
  and the run's facts.

:mod:`~cgcnn_sk.report.statistics` holds the numbers (summaries, the Bayesian correlated
t-test and its verdicts, factorial effects, the corrected resampled t-test),
:mod:`~cgcnn_sk.report.figures` the matplotlib figures and
:mod:`~cgcnn_sk.report.rendering` the Markdown/HTML report built from jinja2 templates.
"""

from .figures import (
    STUDY_TITLES,
    make_figures,
    plot_baseline,
    plot_effects,
    plot_interaction,
    plot_loss_curves,
    plot_parity,
)
from .rendering import write_report
from .statistics import (
    baseline_comparison,
    compare_models,
    conclusion,
    corrected_ttest,
    correlated_ttest,
    effects,
    factorial_effects,
    paired_comparison,
    summarize,
    verdict,
)

__all__ = [
    "STUDY_TITLES",
    "baseline_comparison",
    "compare_models",
    "conclusion",
    "corrected_ttest",
    "correlated_ttest",
    "effects",
    "factorial_effects",
    "make_figures",
    "paired_comparison",
    "plot_baseline",
    "plot_effects",
    "plot_interaction",
    "plot_loss_curves",
    "plot_parity",
    "summarize",
    "verdict",
    "write_report",
]
