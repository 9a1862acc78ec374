"""Statistics, figures and a written report from a study's tidy tables (never a model).

* ``table`` -- the tidy table of :func:`cgcnn_sk.studies.run_study`, one row per
  ``(study, model, setting, fold)`` with at least ``study``, ``model``, ``setting``, ``fold``
  and ``test_mae`` (and ``status``/``error`` for failed fits); single-study figures also read
  ``max_num_nbr``, ``activation``/``batchnorm``.
* ``histories`` -- loss curves, one row per ``(study, model, setting, fold, epoch)``.
* ``predictions`` -- out-of-fold predictions with ``y_true`` and ``y_pred``.

:mod:`~cgcnn_sk.report.statistics` holds the numbers (summaries, the corrected resampled
t-test, conclusions), :mod:`~cgcnn_sk.report.figures` the matplotlib figures and
:mod:`~cgcnn_sk.report.rendering` the Markdown/HTML report built from jinja2 templates.
"""

from .figures import (
    STUDY_TITLES,
    make_figures,
    plot_activation_batchnorm,
    plot_baseline,
    plot_loss_curves,
    plot_neighbours,
    plot_parity,
    plot_settings,
)
from .rendering import write_report
from .statistics import conclusion, corrected_ttest, paired_comparison, summarize

__all__ = [
    "STUDY_TITLES",
    "conclusion",
    "corrected_ttest",
    "make_figures",
    "paired_comparison",
    "plot_activation_batchnorm",
    "plot_baseline",
    "plot_loss_curves",
    "plot_neighbours",
    "plot_parity",
    "plot_settings",
    "summarize",
    "write_report",
]
