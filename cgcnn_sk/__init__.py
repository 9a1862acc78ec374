"""cgcnn_sk: Crystal Graph Convolutional Neural Networks as scikit-learn estimators.

The data flow reads top to bottom: structures -> :class:`CrystalGraphFeaturizer` -> graphs ->
batches (:mod:`cgcnn_sk.graph`) -> :class:`CGCNN` (:mod:`cgcnn_sk.nn`, torch) ->
:class:`CGCNNRegressor` / :class:`CGCNNClassifier` (:mod:`cgcnn_sk.estimators`, skorch) ->
studies and the Matbench protocol (:mod:`cgcnn_sk.workflows`) -> reports
(:mod:`cgcnn_sk.report`). Data loaders live in
:mod:`cgcnn_sk.datasets`, random-forest baselines in :mod:`cgcnn_sk.baselines` (and matminer
descriptors as global inputs in :mod:`cgcnn_sk.descriptors`), reference
checkpoints in :mod:`cgcnn_sk.pretrained`; :func:`load` reads a saved model back.
"""

from . import baselines, datasets, descriptors, graph
from ._version import InconsistentVersionWarning, __version__
from .estimators import (
    CGCNNClassifier,
    CGCNNEmbedder,
    CGCNNEnsembleRegressor,
    CGCNNRegressor,
    ConformalRegressor,
    ModelFileError,
    WeightAveraging,
    cross_fold_intervals,
    load,
)
from .graph import (
    CrystalGraph,
    CrystalGraphError,
    CrystalGraphFeaturizer,
    CrystalGraphs,
    GraphStore,
    GraphStoreError,
    clear_cache,
    load_atom_table,
    write_graph_store,
)
from .nn import CGCNN, ConvLayer
from .workflows import RunInterrupted

__all__ = [
    "CGCNN",
    "CGCNNClassifier",
    "CGCNNEmbedder",
    "CGCNNEnsembleRegressor",
    "CGCNNRegressor",
    "ConformalRegressor",
    "ConvLayer",
    "CrystalGraph",
    "CrystalGraphError",
    "CrystalGraphFeaturizer",
    "CrystalGraphs",
    "GraphStore",
    "GraphStoreError",
    "InconsistentVersionWarning",
    "ModelFileError",
    "RunInterrupted",
    "WeightAveraging",
    "__version__",
    "baselines",
    "clear_cache",
    "cross_fold_intervals",
    "datasets",
    "descriptors",
    "graph",
    "load",
    "load_atom_table",
    "write_graph_store",
]
