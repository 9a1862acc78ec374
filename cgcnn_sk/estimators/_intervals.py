"""Prediction intervals with a stated coverage: conformal calibration through MAPIE.

A conformal interval ``prediction -/+ q * s`` takes its width ``q`` from held-out rows: the
``confidence_level`` quantile of their conformity scores ``|y - prediction| / s``, where ``s``
is 1 (``"absolute"``: one width everywhere) or the ensemble's spread (``"std_normalized"``:
wider where the members disagree). If the held-out rows and a new row are exchangeable (drawn
from the same distribution, in no particular order), the new target falls inside the interval
with probability at least ``confidence_level`` -- on average over rows and over the draw of
the held-out rows (*marginal* coverage). Nothing is promised for one given structure, nor for
a kind of structure that is rare among the held-out rows.

MAPIE (:class:`mapie.regression.SplitConformalRegressor`, absolute score) computes the
conformal quantile and the bounds. It is handed the residuals in units of the spread,
``(y - prediction) / s``, around a constant zero prediction, rather than the model: its input
checks need a feature count that crystal graphs do not have, and the residuals are all it
uses. (Its own ``"std_normalized"`` score puts the lower bound one order statistic below the
upper one; scaling the symmetric absolute interval by ``s`` keeps ``prediction -/+ q * s``.)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from mapie.regression import SplitConformalRegressor
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, _fit_context, clone
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._ensemble import CGCNNEnsembleRegressor

__all__ = ["ConformalRegressor", "cross_fold_intervals"]

_SCORES = ("absolute", "std_normalized")


def _levels(confidence_level) -> list[float]:
    levels = ([float(confidence_level)] if isinstance(confidence_level, numbers.Real)
              else [float(c) for c in confidence_level])
    bad = [c for c in levels if not 0 < c < 1]
    if not levels or bad:
        raise ValueError(f"confidence_level must be one or more numbers in (0, 1), got "
                         f"{confidence_level!r}")
    return levels


def _check_spread(std: np.ndarray, what: str) -> None:
    bad = ~(np.isfinite(std) & (std > 0))
    if bad.any():
        raise ValueError(
            f"conformity_score='std_normalized' needs a positive, finite spread on every "
            f"{what}; {int(bad.sum())} of {len(std)} have none (first at position "
            f"{int(np.flatnonzero(bad)[0])}); a one-member ensemble has no spread: use "
            "conformity_score='absolute'"
        )


def _check_enough(n: int, levels: Sequence[float], what: str) -> None:
    # the conformal quantile at level c is finite only with more than 1/(1-c) - 1 rows;
    # MAPIE asks for more than max(1/c, 1/(1-c))
    need = max(max(1 / c, 1 / (1 - c)) for c in levels)
    if n <= need:
        raise ValueError(f"{n} {what} are too few for confidence_level {levels}: "
                         f"more than {need:.0f} are needed")


def _calibrated(pred, std, y, levels) -> SplitConformalRegressor:
    """MAPIE calibrated on the residuals in units of ``std``, around a zero prediction."""
    zero = DummyRegressor(strategy="constant", constant=0.0).fit(np.zeros((1, 1)), [0.0])
    mapie = SplitConformalRegressor(zero, confidence_level=levels, conformity_score="absolute",
                                    prefit=True)
    unit = (np.asarray(y, dtype=np.float64) - pred) / std
    return mapie.conformalize(np.zeros((len(unit), 1)), unit)


def _bounds(mapie: SplitConformalRegressor, pred, std) -> np.ndarray:
    """``pred -/+ q * std`` at each level, shape (n, 2, n_levels)."""
    _, unit = mapie.predict_interval(np.zeros((len(pred), 1)))  # -q, +q per level
    return pred[:, None, None] + unit * std[:, None, None]


def _final_step(estimator):
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


class ConformalRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Split-conformal prediction intervals around a regressor (MAPIE's split conformal).

    ``fit`` holds out ``calibration_size`` of the rows, fits ``estimator`` on the rest and
    takes the interval width from the held-out rows; with ``prefit=True`` the estimator is
    already trained and every row given to ``fit`` calibrates. For a
    :class:`~cgcnn_sk.CGCNNEnsembleRegressor` (alone or last in a Pipeline) the score is, by
    default, the error divided by the members' standard deviation, so that intervals are
    wider where the members disagree; for any other regressor it is the absolute error (one
    width for every row).

    The promise is marginal: if the calibration rows and the new rows are exchangeable, the
    intervals contain at least ``confidence_level`` of the new targets on average (over the
    rows and the draw of the calibration rows; with ``n`` calibration rows, at most
    ``1 / (n + 1)`` more). It is not a per-structure probability: some kinds of structure may
    be covered far less often than others.

    Parameters
    ----------
    estimator : regressor
        A regressor or a Pipeline ending in one (e.g. featurizer + CGCNN ensemble).
    confidence_level : float or sequence of float, default=0.9
        Intended coverage of the intervals, each in (0, 1).
    conformity_score : {"auto", "absolute", "std_normalized"}, default="auto"
        ``"std_normalized"``: ``|y - mean| / std`` with ``predict(X, return_std=True)`` of the
        estimator (an ensemble); ``"absolute"``: ``|y - prediction|``; ``"auto"``:
        ``"std_normalized"`` for a :class:`~cgcnn_sk.CGCNNEnsembleRegressor`, alone or last
        in a Pipeline, else ``"absolute"``.
    calibration_size : float or int, default=0.2
        Fraction (or number) of the rows held out for calibration; ignored with ``prefit``.
    prefit : bool, default=False
        ``estimator`` is fitted already; ``fit`` only calibrates, on all its rows, which the
        estimator must not have been trained on.
    random_state : int, RandomState or None, default=None
        The draw of the calibration rows.

    Attributes
    ----------
    estimator_ : regressor
        The fitted estimator (``estimator`` itself with ``prefit=True``).
    conformity_score_ : str
        The score used (``"auto"`` resolved).
    conformity_scores_ : ndarray of shape (n_calibration,)
        The calibration rows' scores.
    n_calibration_ : int
        Number of calibration rows.
    mapie_ : mapie.regression.SplitConformalRegressor
        MAPIE calibrated on the residuals in units of std (``conformity_scores_``).

    See Also
    --------
    cross_fold_intervals : the same calibration for out-of-fold predictions.
    mapie.regression.CrossConformalRegressor : CV+ / jackknife+ (K fits, no rows held out).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from cgcnn_sk import ConformalRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(400, 1)); y = 3 * X[:, 0] + rng.normal(scale=0.1, size=400)
    >>> model = ConformalRegressor(LinearRegression(), confidence_level=0.9, random_state=0)
    >>> pred, interval = model.fit(X[:300], y[:300]).predict_interval(X[300:])
    >>> interval.shape, model.n_calibration_, model.conformity_score_
    ((100, 2), 60, 'absolute')
    >>> inside = (interval[:, 0] <= y[300:]) & (y[300:] <= interval[:, 1])
    >>> bool(0.8 < inside.mean() <= 1.0)
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "confidence_level": [Interval(numbers.Real, 0, 1, closed="neither"), "array-like"],
        "conformity_score": [StrOptions({"auto", *_SCORES})],
        "calibration_size": [Interval(numbers.Real, 0, 1, closed="neither"),
                             Interval(numbers.Integral, 1, None, closed="left")],
        "prefit": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, confidence_level=0.9, conformity_score: str = "auto",
                 calibration_size=0.2, prefit: bool = False, random_state=None):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.conformity_score = conformity_score
        self.calibration_size = calibration_size
        self.prefit = prefit
        self.random_state = random_state

    def _score(self) -> str:
        if self.conformity_score != "auto":
            return self.conformity_score
        spread = isinstance(_final_step(self.estimator), CGCNNEnsembleRegressor)
        return "std_normalized" if spread else "absolute"

    def _predict_with_std(self, X, score: str) -> tuple[np.ndarray, np.ndarray]:
        if score == "std_normalized":
            pred, std = self.estimator_.predict(X, return_std=True)
            return np.asarray(pred, dtype=np.float64), np.asarray(std, dtype=np.float64)
        pred = np.asarray(self.estimator_.predict(X), dtype=np.float64)
        return pred, np.ones_like(pred)

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit the estimator on part of the rows (unless ``prefit``), calibrate on the rest.

        Parameters
        ----------
        X : the estimator's input (structures for a Pipeline with a featurizer, graphs for
            a bare CGCNN)
        y : array-like of shape (n_samples,)
        **fit_params : passed to the estimator's ``fit`` (not with ``prefit``)

        Returns
        -------
        self
        """
        levels = _levels(self.confidence_level)
        score = self._score()
        if self.prefit:
            check_is_fitted(self.estimator)
            if fit_params:
                raise ValueError(f"prefit=True: the estimator is not fitted again, so "
                                 f"fit parameters {sorted(fit_params)} have no use")
            self.estimator_ = self.estimator
            X_cal, y_cal = X, y
        else:
            X_fit, X_cal, y_fit, y_cal = train_test_split(
                X, y, test_size=self.calibration_size, random_state=self.random_state)
            self.estimator_ = clone(self.estimator).fit(X_fit, y_fit, **fit_params)
        y_cal = np.asarray(y_cal, dtype=np.float64)
        _check_enough(len(y_cal), levels, "calibration rows")
        pred, std = self._predict_with_std(X_cal, score)
        if score == "std_normalized":
            _check_spread(std, "calibration row")
        self.mapie_ = _calibrated(pred, std, y_cal, levels)
        self.conformity_score_ = score
        self.conformity_scores_ = np.asarray(self.mapie_.conformity_scores)
        self.n_calibration_ = len(y_cal)
        return self

    def predict(self, X) -> np.ndarray:
        """The estimator's point prediction, shape (n_samples,)."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict(X), dtype=np.float64)

    def predict_interval(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Point predictions and calibrated intervals.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        y_interval : ndarray of shape (n_samples, 2), or (n_samples, 2, n_levels) when
            ``confidence_level`` is a sequence
            Lower and upper bound of each row's interval at each confidence level.
        """
        check_is_fitted(self)
        pred, std = self._predict_with_std(X, self.conformity_score_)
        y_interval = _bounds(self.mapie_, pred, std)
        if isinstance(self.confidence_level, numbers.Real):
            y_interval = y_interval[:, :, 0]
        return pred, y_interval


def cross_fold_intervals(y, prediction, std, groups, *, confidence_level=(0.68, 0.95),
                         conformity_score: str = "std_normalized") -> np.ndarray:
    """Calibrated intervals for out-of-fold predictions, each fold calibrated on the others.

    For the rows of one group (a cross-validation fold), the interval width comes from the
    conformity scores of the rows of every other group, whose predictions were also made by
    models that had not seen them; the group's own targets are never used. When the groups'
    rows are exchangeable, each interval covers its target with probability about
    ``confidence_level`` on average over rows (marginal coverage, approximately: the folds'
    models differ, so their errors are only nearly exchangeable). Nothing is promised for a
    single structure.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Targets.
    prediction : array-like of shape (n_samples,)
        Out-of-fold predictions (an ensemble's mean).
    std : array-like of shape (n_samples,)
        The spread of each prediction (the members' standard deviation); unused with
        ``conformity_score="absolute"``.
    groups : array-like of shape (n_samples,)
        The fold of each row; at least two distinct values.
    confidence_level : float or sequence of float, default=(0.68, 0.95)
    conformity_score : {"std_normalized", "absolute"}, default="std_normalized"
        ``|y - prediction| / std`` (intervals scale with the spread) or ``|y - prediction|``.

    Returns
    -------
    ndarray of shape (n_samples, 2, n_levels)
        Lower and upper bound of each row's interval at each level.

    Examples
    --------
    >>> import numpy as np
    >>> from cgcnn_sk import cross_fold_intervals
    >>> y = np.array([1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0, 9.0, -10.0])
    >>> groups = np.repeat([0, 1], 5)
    >>> iv = cross_fold_intervals(y, np.zeros(10), np.ones(10), groups, confidence_level=0.5)
    >>> iv[0, :, 0], iv[5, :, 0]  # fold 0 from |y| of fold 1 (6..10), fold 1 from 1..5
    (array([-8.,  8.]), array([-3.,  3.]))
    """
    if conformity_score not in _SCORES:
        raise ValueError(f"conformity_score={conformity_score!r} is not one of {_SCORES}")
    levels = _levels(confidence_level)
    y = np.asarray(y, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    std = (np.ones_like(y) if conformity_score == "absolute"
           else np.asarray(std, dtype=np.float64))
    groups = np.asarray(groups)
    lengths = {"y": len(y), "prediction": len(prediction), "std": len(std),
               "groups": len(groups)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"y, prediction, std and groups differ in length: {lengths}")
    if conformity_score == "std_normalized":
        _check_spread(std, "row")
    names = np.unique(groups)
    if len(names) < 2:
        raise ValueError(f"groups holds {len(names)} distinct value(s): a fold is calibrated "
                         "on the other folds, so at least two are needed")
    out = np.empty((len(y), 2, len(levels)))
    for name in names:
        rows = groups == name
        _check_enough(int((~rows).sum()), levels, f"rows outside group {name!r}")
        mapie = _calibrated(prediction[~rows], std[~rows], y[~rows], levels)
        out[rows] = _bounds(mapie, prediction[rows], std[rows])
    return out
