"""A deep ensemble: one estimator fitted with several seeds, its predictions averaged."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, _fit_context, clone
from sklearn.ensemble import VotingRegressor
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .._version import VersionedPickleMixin

__all__ = ["CGCNNEnsembleRegressor", "seeded_clone"]


def seeded_clone(estimator, seed):
    """An unfitted clone of ``estimator`` with every ``random_state`` parameter set to ``seed``.

    Nested ones count too (``regressor__random_state`` of a ``TransformedTargetRegressor``,
    ``cgcnn__random_state`` of a Pipeline), so a wrapped CGCNN gets its own seed.
    """
    est = clone(estimator)
    keys = [k for k in est.get_params(deep=True)
            if k == "random_state" or k.endswith("__random_state")]
    return est.set_params(**dict.fromkeys(keys, seed))


class CGCNNEnsembleRegressor(
    VersionedPickleMixin, MetaEstimatorMixin, RegressorMixin, BaseEstimator
):
    """Average ``n_estimators`` copies of a regressor that differ only in their seed.

    A deep ensemble (Lakshminarayanan et al., NeurIPS 2017): each member is
    ``estimator`` with its ``random_state`` (and every nested ``*__random_state``) set to its
    own seed, so members differ in initialisation, batch order and validation split. The
    members are fitted and averaged by scikit-learn's :class:`~sklearn.ensemble.VotingRegressor`
    (``ensemble_``), in parallel with ``n_jobs``; this class only adds the seeding, so that one
    ``estimator`` (and ``estimator__<param>`` in a grid search) describes every member, and
    ``predict(X, return_std=True)`` for the spread of the members.

    Parameters
    ----------
    estimator : regressor
        The member, e.g. ``CGCNNRegressor(criterion=torch.nn.L1Loss)``, or any regressor with
        a ``random_state`` somewhere in its parameters.
    n_estimators : int, default=5
        Number of members.
    random_state : int, RandomState or None, default=0
        Member ``m`` gets seed ``random_state + m`` for an int (so adding members keeps the
        seeds of the ones before), seeds drawn from it for a RandomState, ``None`` for None.
    n_jobs : int or None, default=None
        Members fitted in parallel (joblib; ``None`` means 1).

    Attributes
    ----------
    ensemble_ : VotingRegressor
        The fitted members, ``ensemble_.estimators_``.
    seeds_ : list
        The seed of each member.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> from cgcnn_sk import CGCNNEnsembleRegressor
    >>> X = np.arange(20.0).reshape(10, 2); y = X @ [1.0, 2.0]
    >>> ens = CGCNNEnsembleRegressor(SGDRegressor(max_iter=50, tol=None), n_estimators=3)
    >>> mean, std = ens.fit(X, y).predict(X[:2], return_std=True)
    >>> mean.shape, std.shape, ens.seeds_
    ((2,), (2,), [0, 1, 2])
    """

    _required_state = ("seeds_", "ensemble_")
    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [None, numbers.Integral],
    }

    def __init__(self, estimator, *, n_estimators: int = 5, random_state=0, n_jobs=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.n_jobs = n_jobs

    def member_seeds(self) -> list:
        """The seed of each member, as ``fit`` assigns them."""
        rs = self.random_state
        if rs is None:
            return [None] * self.n_estimators
        if isinstance(rs, numbers.Integral):
            return [int(rs) + m for m in range(self.n_estimators)]
        draws = check_random_state(rs).randint(np.iinfo(np.int32).max, size=self.n_estimators)
        return [int(s) for s in draws]

    def members(self) -> list[tuple[str, object]]:
        """``(name, unfitted member)`` pairs, as ``fit`` builds them (for resumable loops)."""
        return [(f"seed_{s}" if s is not None else f"member_{m}", seeded_clone(self.estimator, s))
                for m, s in enumerate(self.member_seeds())]

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit every member on (X, y).

        Returns
        -------
        self
        """
        self.seeds_ = self.member_seeds()
        self.ensemble_ = VotingRegressor(self.members(), n_jobs=self.n_jobs)
        self.ensemble_.fit(X, y, **fit_params)
        return self

    def member_predictions(self, X) -> np.ndarray:
        """Each member's prediction, shape (n_samples, n_estimators)."""
        check_is_fitted(self)
        return self.ensemble_.transform(X)

    def predict(self, X, return_std: bool = False):
        """Mean of the members' predictions, and their standard deviation if asked.

        Parameters
        ----------
        X : the members' input (crystal graphs for CGCNN members)
        return_std : bool, default=False
            Also return the standard deviation over members (ddof=0), an uncertainty estimate
            in the units of y.

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        std : ndarray of shape (n_samples,), only with ``return_std=True``
        """
        per_member = self.member_predictions(X)
        mean = per_member.mean(axis=1)
        if return_std:
            return mean, per_member.std(axis=1)
        return mean
