"""cgcnn_sk: Crystal Graph Convolutional Neural Networks as scikit-learn estimators."""

from ._graph import CrystalGraph, CrystalGraphs

__version__ = "0.1.0"

__all__ = ["CrystalGraph", "CrystalGraphs", "__version__"]
