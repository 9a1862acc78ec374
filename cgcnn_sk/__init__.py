"""cgcnn_sk: Crystal Graph Convolutional Neural Networks as scikit-learn estimators.

The data flow reads top to bottom: structures -> :class:`CrystalGraphFeaturizer` -> graphs ->
batches (:mod:`cgcnn_sk.graph`) -> :class:`CGCNN` (torch) -> :class:`CGCNNRegressor` /
:class:`CGCNNClassifier` (skorch) -> studies and reports. Data loaders live in
:mod:`cgcnn_sk.datasets`, random-forest baselines in :mod:`cgcnn_sk.baselines`, reference
checkpoints in :mod:`cgcnn_sk.pretrained`; :func:`load` reads a saved model back.
"""

from . import baselines, datasets, graph
from ._atoms import load_atom_table
from ._classifier import CGCNNClassifier
from ._embedder import CGCNNEmbedder
from ._ensemble import CGCNNEnsembleRegressor
from ._featurizer import CrystalGraphError, CrystalGraphFeaturizer, clear_cache
from ._graph import CrystalGraph, CrystalGraphs
from ._interrupt import RunInterrupted
from ._load import ModelFileError, load
from ._module import CGCNN, ConvLayer
from ._regressor import CGCNNRegressor
from ._store import GraphStore, GraphStoreError, write_graph_store

__version__ = "0.1.0"

__all__ = [
    "CGCNN",
    "CGCNNClassifier",
    "CGCNNEmbedder",
    "CGCNNEnsembleRegressor",
    "CGCNNRegressor",
    "ConvLayer",
    "CrystalGraph",
    "CrystalGraphError",
    "CrystalGraphFeaturizer",
    "CrystalGraphs",
    "GraphStore",
    "GraphStoreError",
    "ModelFileError",
    "RunInterrupted",
    "__version__",
    "baselines",
    "clear_cache",
    "datasets",
    "graph",
    "load",
    "load_atom_table",
    "write_graph_store",
]
