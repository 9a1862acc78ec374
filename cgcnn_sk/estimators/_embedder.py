"""CGCNNEmbedder: a fitted CGCNN's crystal vectors as a scikit-learn transformer step."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from .._version import VersionedPickleMixin
from ._readout import _check_layer, _require_embed, crystal_embedding, embedding_feature_names
from ._regressor import CGCNNRegressor

__all__ = ["CGCNNEmbedder"]


class CGCNNEmbedder(VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Crystal graphs to the learned crystal vectors of a CGCNN, as a scikit-learn transformer.

    Put it between a :class:`~cgcnn_sk.CrystalGraphFeaturizer` and any scikit-learn model.
    With ``prefit=False`` (the default) ``fit`` trains a clone of ``estimator`` on ``(X, y)``,
    so under cross-validation the network only sees the training fold; with ``prefit=True``
    ``estimator`` is an already fitted (or pretrained) net, which ``fit`` does not retrain:
    it keeps a copy and needs no ``y``.

    Parameters
    ----------
    estimator : CGCNNRegressor or CGCNNClassifier, default=None
        The network. ``None``: ``CGCNNRegressor()`` (needs ``prefit=False``).
    layer : {"pooled", "hidden"}, default="pooled"
        ``"pooled"``: the pooled atom vectors, the input of the hidden layers (width
        ``module__atom_fea_len``; global features are not included, append your own columns
        if you want them). ``"hidden"``: the output of the last hidden layer (width
        ``module__h_fea_len``), which depends on the global features.
    prefit : bool, default=False
        Whether ``estimator`` is already fitted (see above).

    Attributes
    ----------
    estimator_ : CGCNNRegressor or CGCNNClassifier
        The fitted network used by ``transform``.
    n_features_out_ : int
        Width of the embedding.

    See Also
    --------
    cgcnn_sk.CGCNNRegressor.transform : the same vectors from a fitted regressor.

    Notes
    -----
    The training rows are embedded by a network fitted on them, so a downstream model sees
    training embeddings that fit their targets better than new crystals' do (as in any
    stacking); cross-validate the whole pipeline to measure it.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import Pipeline
    >>> from cgcnn_sk import CGCNNEmbedder, CGCNNRegressor, CrystalGraphFeaturizer
    >>> structures = [Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ...               for a in (4.0, 4.1, 4.2, 4.3, 4.4, 4.5)]
    >>> y = [s.volume for s in structures]
    >>> cgcnn = CGCNNRegressor(max_epochs=3, train_split=None, random_state=0,
    ...                        module__atom_fea_len=8)
    >>> model = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0)),
    ...                   ("embed", CGCNNEmbedder(cgcnn)), ("ridge", Ridge())])
    >>> model.fit(structures, y).predict(structures[:2]).shape
    (2,)
    >>> model[:-1].transform(structures[:2]).shape
    (2, 8)
    >>> model[1].get_feature_names_out()[:2].tolist()
    ['cgcnn_pooled_0', 'cgcnn_pooled_1']
    """

    _required_state = ("estimator_", "n_features_out_")

    def __init__(self, estimator=None, *, layer: str = "pooled", prefit: bool = False):
        self.estimator = estimator
        self.layer = layer
        self.prefit = prefit

    def _check_params(self) -> None:
        _check_layer(self.layer)
        if not isinstance(self.prefit, (bool, np.bool_)):
            raise ValueError(f"prefit must be True or False, got {self.prefit!r}")
        if self.estimator is not None and not callable(getattr(self.estimator, "fit", None)):
            raise TypeError(
                f"estimator must be a CGCNNRegressor or CGCNNClassifier, got "
                f"{type(self.estimator).__name__}"
            )
        if self.prefit and self.estimator is None:
            raise ValueError("prefit=True needs a fitted estimator, got estimator=None")

    def fit(self, X, y=None, **fit_params) -> CGCNNEmbedder:
        """Train a clone of ``estimator`` on (X, y), or with ``prefit=True`` keep a copy.

        Parameters
        ----------
        X : CrystalGraphs or sequence of CrystalGraph
        y : array-like of shape (n_samples,), default=None
            Needed unless ``prefit=True``.
        **fit_params
            Passed to the estimator's ``fit``.

        Returns
        -------
        self
        """
        from copy import deepcopy

        self._check_params()
        if self.prefit:
            try:
                self.estimator.check_is_fitted()
            except Exception as exc:
                raise ValueError(
                    f"prefit=True but the {type(self.estimator).__name__} given is not "
                    f"fitted ({exc}); fit it first, or use prefit=False"
                ) from exc
            # a copy, so that refitting the original later does not change this transformer
            self.estimator_ = deepcopy(self.estimator)
        else:
            if y is None:
                raise ValueError(
                    "CGCNNEmbedder with prefit=False trains its network and requires y; "
                    "pass y, or a fitted estimator with prefit=True"
                )
            base = CGCNNRegressor() if self.estimator is None else self.estimator
            self.estimator_ = clone(base).fit(X, y, **fit_params)
        _require_embed(self.estimator_)
        self.n_features_out_ = len(embedding_feature_names(self.estimator_, self.layer))
        return self

    def transform(self, X) -> np.ndarray:
        """The crystal vectors of X, shape (n_samples, n_features_out), float32."""
        check_is_fitted(self, "estimator_")
        return crystal_embedding(self.estimator_, X, self.layer)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """``cgcnn_<layer>_0``, ``cgcnn_<layer>_1``, ...; ``input_features`` is not used."""
        check_is_fitted(self, "estimator_")
        return embedding_feature_names(self.estimator_, self.layer)
