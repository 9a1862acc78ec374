"""Matminer descriptors as global inputs of the CGCNN, through the scikit-learn Pipeline.

:class:`MatminerDescriptors` sits before the graph featurizer: it turns structures into a
DataFrame with a ``structure`` column and one column per descriptor, which
``CrystalGraphFeaturizer(global_features="all")`` hands to the graphs and the estimators join
to the pooled crystal vector (``n_global_``, standardised on the training rows)::

    Pipeline([("descriptors", MatminerDescriptors("magpie")),
              ("graph", CrystalGraphFeaturizer(global_features="all")),
              ("cgcnn", CGCNNRegressor())])

The descriptors are computed by matminer's featurizers through
:class:`~cgcnn_sk.baselines.MatminerFeaturizer` (its per-structure cache included); which
columns are kept, how missing values are filled and any compression are learned in ``fit``,
so under cross-validation or a grid search from the training rows alone.
"""

from __future__ import annotations

import os
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .baselines import MatminerFeaturizer, _parts

__all__ = ["MatminerDescriptors"]


class MatminerDescriptors(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Add matminer descriptor columns to the structures, for the CGCNN's global inputs.

    ``transform`` returns a DataFrame: the input frame (or a frame holding the input
    structures in ``structure_column``), followed by one column per descriptor. Put
    ``CrystalGraphFeaturizer(global_features="all")`` (or a list of the columns) after it.

    ``fit`` learns, from the rows it is given only:

    1. a missing descriptor (NaN from the featurizer, e.g. an element without tabulated
       data) is replaced by the median of its column over the training rows
       (:class:`~sklearn.impute.SimpleImputer`); a column missing in every training row is
       dropped;
    2. a column constant over the training rows is dropped
       (:class:`~sklearn.feature_selection.VarianceThreshold`): it would be a constant input;
    3. with ``n_components``, the kept columns are standardised and compressed to that many
       principal components (:class:`~sklearn.decomposition.PCA`).

    ``transform`` applies those to any rows. Infinite values and structures a featurizer
    rejects are errors naming the structure (:class:`~cgcnn_sk.baselines.MatminerFeaturizer`).

    Parameters
    ----------
    kind : str or None, default="magpie"
        The matminer feature sets, joined by ``+`` (see
        :data:`cgcnn_sk.baselines.FEATURE_SETS`): ``"magpie"`` (``ElementProperty`` Magpie
        statistics of the composition, 132 columns), ``"density"``, ``"symmetry"``,
        ``"scm"``. ``None`` passes ``X`` through unchanged (then the graph featurizer needs
        ``global_features=None``), so a grid search can switch the descriptors off.
    n_components : int or None, default=None
        Compress the kept descriptors to this many principal components; ``None`` keeps
        them all.
    structure_column : str, default="structure"
        The structure column of a DataFrame input, and the name of the structure column of
        the output when the input is a sequence of structures.
    n_jobs : int or None, default=None
        Processes for the matminer featurizers (structures not yet cached).
    memory : str, path-like or joblib.Memory, default=None
        Disk cache of the per-structure descriptors.

    Attributes
    ----------
    featurizer_ : MatminerFeaturizer or None
        The fitted matminer adapter (``None`` for ``kind=None``).
    selector_ : sklearn.pipeline.Pipeline or None
        The imputation, constant-column filter and optional PCA learned in ``fit``.
    columns_ : ndarray of str
        The descriptor columns ``transform`` adds, in order (empty for ``kind=None``).
    n_features_out_ : int
        ``len(columns_)``.

    See Also
    --------
    cgcnn_sk.CrystalGraphFeaturizer : ``global_features`` reads the columns.
    cgcnn_sk.baselines.MatminerFeaturizer : the featurizers behind the columns.

    Notes
    -----
    The estimator standardises every global input with the mean and standard deviation of
    the training rows (``global_scaler_``) and concatenates them to the pooled crystal vector
    of ``module__atom_fea_len`` values, so the first layer of the head gets
    ``atom_fea_len + n_features_out_`` inputs of comparable scale, unweighted. With Magpie and
    the default 64 pooled values, the descriptors are most of those inputs (on the training
    rows of Matbench jdft2d fold 0, 127 of the 132 Magpie columns are kept: 127 of 191
    inputs); ``n_components`` bounds their number.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk.descriptors import MatminerDescriptors
    >>> def rocksalt(a, b, c):
    ...     return Structure(Lattice.cubic(c), [a, b], [[0, 0, 0], [.5, .5, .5]])
    >>> salts = [rocksalt("Na", "Cl", 3.3), rocksalt("Mg", "O", 2.5), rocksalt("K", "Br", 3.9)]
    >>> frame = MatminerDescriptors("magpie").fit_transform(salts)
    >>> frame.shape, frame.columns[0]
    ((3, 96), 'structure')
    >>> float(frame.loc[0, "MagpieData mean Electronegativity"])  # (0.93 + 3.16) / 2
    2.045

    In a pipeline, with the descriptors switched on and off by a grid search:

    >>> from sklearn.pipeline import Pipeline
    >>> from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
    >>> model = Pipeline([
    ...     ("descriptors", MatminerDescriptors("magpie", n_components=2)),
    ...     ("graph", CrystalGraphFeaturizer(radius=5.0, global_features="all")),
    ...     ("cgcnn", CGCNNRegressor(max_epochs=2, batch_size=2, random_state=0,
    ...                              module__atom_fea_len=8, module__h_fea_len=8))])
    >>> model.fit(salts, [1.0, 2.0, 3.0])[-1].n_global_
    2
    >>> grid = [{"descriptors__kind": [None], "graph__global_features": [None]},
    ...         {"descriptors__kind": ["magpie"], "graph__global_features": ["all"]}]
    """

    _parameter_constraints = {
        "kind": [str, None],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "structure_column": [str],
        "n_jobs": [Integral, None],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    }

    def __init__(self, kind: str | None = "magpie", *, n_components: int | None = None,
                 structure_column: str = "structure", n_jobs: int | None = None,
                 memory: Any = None):
        self.kind = kind
        self.n_components = n_components
        self.structure_column = structure_column
        self.n_jobs = n_jobs
        self.memory = memory

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        return tags

    def _structures(self, X):
        """The structures of ``X``: its structure column, or ``X`` itself."""
        if isinstance(X, pd.DataFrame):
            if self.structure_column not in X.columns:
                raise ValueError(
                    f"a DataFrame input needs a {self.structure_column!r} column "
                    f"(structure_column); got columns {[str(c) for c in X.columns][:10]}"
                )
            return X[self.structure_column]
        return X

    def _fit(self, X) -> np.ndarray | None:
        if self.kind is None:
            self.featurizer_ = self.selector_ = None
            self.columns_ = np.asarray([], dtype=object)
            self.n_features_out_ = 0
            return None
        _parts(self.kind)  # a bad kind is named before any featurizing
        self.featurizer_ = MatminerFeaturizer(self.kind, n_jobs=self.n_jobs, memory=self.memory,
                                              allow_nan=True)
        raw = self.featurizer_.fit_transform(self._structures(X))
        steps = [("impute", SimpleImputer(strategy="median")),
                 ("constant", VarianceThreshold(0.0))]
        if self.n_components is not None:
            steps += [("scale", StandardScaler()), ("pca", PCA(self.n_components))]
        self.selector_ = Pipeline(steps)
        try:
            values = self.selector_.fit_transform(raw)
        except ValueError as err:
            if "No feature in X meets the variance threshold" in str(err):
                raise ValueError(
                    f"every {self.kind!r} descriptor is missing or constant over the "
                    f"{len(raw)} training rows: there is nothing to add"
                ) from None
            if self.n_components is not None and "n_components" in str(err):
                kept = len(self.selector_[:2].get_feature_names_out())
                raise ValueError(
                    f"n_components={self.n_components}, but the training rows give "
                    f"{len(raw)} rows and {kept} non-constant descriptor columns: use at most "
                    f"{min(len(raw), kept)}"
                ) from None
            raise
        names = self.selector_.get_feature_names_out(self.featurizer_.feature_names_out_)
        if self.n_components is not None:
            names = [f"{self.kind} pc{i}" for i in range(self.n_components)]
        self.columns_ = np.asarray(names, dtype=object)
        self.n_features_out_ = len(self.columns_)
        return values

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> MatminerDescriptors:
        """Compute the descriptors of ``X`` and learn the kept columns and their fill values.

        Parameters
        ----------
        X : sequence of structures or DataFrame
            Anything :class:`~cgcnn_sk.CrystalGraphFeaturizer` reads: structures (pymatgen,
            ASE, dicts, CIF) or a DataFrame with a ``structure_column``.
        y : ignored

        Returns
        -------
        self : MatminerDescriptors
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: Any, y: Any = None, **fit_params) -> Any:
        """Fit and return the frame of ``X`` with the descriptor columns (computed once)."""
        values = self._fit(X)
        return X if values is None else self._frame(X, values)

    def transform(self, X: Any) -> Any:
        """``X`` as a DataFrame with the descriptor columns added (``X`` for ``kind=None``).

        Parameters
        ----------
        X : sequence of structures or DataFrame

        Returns
        -------
        frame : DataFrame
            The columns of a DataFrame ``X`` (or ``structure_column`` holding the structures
            of a sequence), then ``columns_``; the index of a DataFrame ``X`` is kept.
        """
        check_is_fitted(self, "columns_")
        if self.featurizer_ is None:
            return X
        raw = self.featurizer_.transform(self._structures(X))
        return self._frame(X, self.selector_.transform(raw))

    def _frame(self, X, values: np.ndarray) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            frame = X
            clash = [str(c) for c in self.columns_ if c in X.columns]
            if clash:
                raise ValueError(
                    f"X already has the descriptor column(s) {clash[:5]}: rename them or "
                    "drop them before adding descriptors"
                )
        else:
            frame = pd.DataFrame({self.structure_column: list(X)})
        added = pd.DataFrame(values, columns=list(self.columns_), index=frame.index)
        return pd.concat([frame, added], axis=1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The descriptor columns ``transform`` adds (``columns_``), not the passed-on ones."""
        check_is_fitted(self, "columns_")
        return self.columns_.copy()
