"""cgcnn_sk: Crystal Graph Convolutional Neural Networks as scikit-learn estimators.

The data flow reads top to bottom: structures -> :class:`CrystalGraphFeaturizer` -> graphs ->
batches (``_collate``) -> :class:`CGCNN` (torch) -> :class:`CGCNNRegressor` /
:class:`CGCNNClassifier` (skorch) -> studies and reports. Data loaders live in
:mod:`cgcnn_sk.datasets`, random-forest baselines in :mod:`cgcnn_sk.baselines`, reference
checkpoints in :mod:`cgcnn_sk.pretrained`.
"""

from . import baselines, datasets
from ._atoms import load_atom_table
from ._estimators import CGCNNClassifier, CGCNNRegressor
from ._featurizer import CrystalGraphError, CrystalGraphFeaturizer, clear_cache
from ._graph import CrystalGraph, CrystalGraphs
from ._module import CGCNN, ConvLayer
from ._store import GraphStore, GraphStoreError, write_graph_store

__version__ = "0.1.0"

__all__ = [
    "CGCNN",
    "CGCNNClassifier",
    "CGCNNRegressor",
    "ConvLayer",
    "CrystalGraph",
    "CrystalGraphError",
    "CrystalGraphFeaturizer",
    "CrystalGraphs",
    "GraphStore",
    "GraphStoreError",
    "__version__",
    "baselines",
    "clear_cache",
    "datasets",
    "load_atom_table",
    "write_graph_store",
]
