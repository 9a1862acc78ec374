"""The scikit-learn estimators: skorch nets around :class:`~cgcnn_sk.nn.CGCNN`.

:class:`CGCNNRegressor` and :class:`CGCNNClassifier` share one base; the ensemble, the
embedding transformer and :func:`load` (reading a saved model back) build on them;
:class:`WeightAveraging` is a callback for either net.
"""

from ._averaging import WeightAveraging
from ._classifier import CGCNNClassifier
from ._embedder import CGCNNEmbedder
from ._ensemble import CGCNNEnsembleRegressor
from ._intervals import ConformalRegressor, cross_fold_intervals
from ._persistence import ModelFileError, load
from ._regressor import CGCNNRegressor

__all__ = [
    "CGCNNClassifier",
    "CGCNNEmbedder",
    "CGCNNEnsembleRegressor",
    "CGCNNRegressor",
    "ConformalRegressor",
    "ModelFileError",
    "WeightAveraging",
    "cross_fold_intervals",
    "load",
]
