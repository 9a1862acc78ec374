"""What a study returns: the tidy table of its fits, their loss curves and predictions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["PARAM_COLUMNS", "TIDY_COLUMNS", "StudyResult"]

#: tidy column -> pipeline parameter recorded for every CGCNN row
PARAM_COLUMNS = {
    "max_num_nbr": "graph__max_num_nbr",
    "radius": "graph__radius",
    "activation": "cgcnn__module__activation",
    "batchnorm": "cgcnn__module__batchnorm",
    "pooling": "cgcnn__module__pooling",
    "criterion": "cgcnn__criterion",
    "lr": "cgcnn__lr",
    "max_epochs": "cgcnn__max_epochs",
}

#: columns of ``StudyResult.table``, one row per fit
TIDY_COLUMNS = [
    "study",  # "factorial" (the design) or "baseline" (the RF comparison's extra fits)
    "model",  # "cgcnn" or the baseline's name ("rf")
    "setting",  # label of the setting, e.g. "max_num_nbr=4, activation=relu, ..."
    "params",  # JSON of the setting (for nested CV: the setting the inner CV chose)
    "repeat",  # repetition of the cross-validation (0: the design's folds)
    "fold",  # fold within the repeat, 0-based
    "n_train",
    "n_test",
    "test_mae",  # mean absolute error on the held-out fold, target units; NaN if failed
    "test_rmse",
    "fit_time",  # s, fit of the whole pipeline on the training part (incl. graph re-cut)
    "score_time",  # s
    "epochs",  # epochs trained
    "status",  # "ok" or "failed"
    "error",  # why the fit or its scoring failed ("" when ok)
    *PARAM_COLUMNS,
]


@dataclass
class StudyResult:
    """What :func:`run_study` returns: tidy tables a report is drawn from.

    Attributes
    ----------
    table : DataFrame
        One row per fit; columns :data:`TIDY_COLUMNS`.
    histories : DataFrame
        Loss curves: ``study, model, setting, repeat, fold, epoch, train_loss`` (plus
        ``train_mae`` in target units).
    predictions : DataFrame
        Out-of-fold predictions: ``study, model, setting, repeat, fold, index, id, y_true,
        y_pred``.
    meta : dict
        Run facts: ``preset``, ``recipe``, ``factors``, ``fraction``, ``cv``, ``repeats``,
        ``rope``, ``random_state``, ``n_samples``, ``studies``, ``baseline_cgcnn``,
        ``neighbour_shells``, ``wall_time`` and what the caller adds (``data``, ``target``,
        ``unit``).
    settings : dict
        Setting label -> ``set_params`` dict of every setting of the design (in memory only).

    Examples
    --------
    >>> result = run_study(structures, y, study="pooling")  # doctest: +SKIP
    >>> result.effects()[["term", "effect", "verdict"]]  # doctest: +SKIP
    >>> result.write_report("report/")  # doctest: +SKIP
    """

    table: pd.DataFrame
    histories: pd.DataFrame
    predictions: pd.DataFrame
    meta: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean and std of the fold MAEs per setting (:func:`cgcnn_sk.report.summarize`)."""
        from ..report import summarize

        return summarize(self.table)

    def effects(self) -> pd.DataFrame:
        """Every effect the questions asked for, decided (:func:`~cgcnn_sk.report.effects`)."""
        from ..report import effects

        return effects(self.table, self.meta)

    def baseline(self) -> dict | None:
        """CGCNN against the RF (:func:`~cgcnn_sk.report.baseline_comparison`), or None."""
        from ..report import baseline_comparison

        return baseline_comparison(self.table, self.meta)

    def best(self) -> dict:
        """``set_params`` values of the design's setting with the lowest mean test MAE.

        Picked on the folds it is scored on, so its MAE is optimistic; the baseline study
        does not use it.
        """
        from ..report import summarize

        rows = self.table[(self.table["model"] == "cgcnn")
                          & (self.table["study"] == "factorial")]
        s = summarize(rows)
        s = s[s["n_failed"] == 0]
        if s.empty:
            raise ValueError("no successful CGCNN setting in the design")
        label = s.sort_values("mae_mean", kind="stable")["setting"].iloc[0]
        return self.settings.get(label) or json.loads(
            rows.loc[rows["setting"] == label, "params"].iloc[0]
        )

    def conclusions(self) -> dict[str, str]:
        """One paragraph per question (:func:`cgcnn_sk.report.conclusion`)."""
        from ..report import conclusion

        return {s: conclusion(self.table, s, self.meta) for s in self.meta.get("studies", [])}

    def failed(self) -> bool:
        """True when no CGCNN fit of the run succeeded."""
        cg = self.table[self.table["model"] == "cgcnn"]
        return cg.empty or bool(cg["status"].eq("failed").all())

    def write_report(
        self, out_dir: str | Path, formats: Iterable[str] = ("md", "html")
    ) -> dict[str, Path]:
        """Write figures, CSV tables, ``meta.json`` and the report into ``out_dir``.

        A partial result (``meta["interrupted"]``, see :func:`run_study`) says so at the top.
        """
        from ..report import write_report

        out_dir = Path(out_dir)
        paths = write_report(self.table, self.histories, self.predictions, out_dir,
                             meta=self.meta, formats=formats)
        paths["meta"] = out_dir / "meta.json"
        paths["meta"].write_text(json.dumps(self.meta, indent=2, default=str))
        return paths

    @classmethod
    def load(cls, out_dir: str | Path) -> StudyResult:
        """Read back the tables written by :meth:`write_report`."""
        out_dir = Path(out_dir)
        table, hist, preds = (
            pd.read_csv(out_dir / name, keep_default_na=False, na_values=[""])
            if (out_dir / name).exists() else pd.DataFrame()
            for name in ("results.csv", "histories.csv", "predictions.csv")
        )
        if "error" in table:
            table["error"] = table["error"].fillna("")
        meta_path = out_dir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(table, hist, preds, meta)
