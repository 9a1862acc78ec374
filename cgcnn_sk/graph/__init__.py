"""Structures to crystal graphs to batches: the featurizer, its graphs, the store, collation.

:class:`~cgcnn_sk.CrystalGraphFeaturizer` and the estimators are all most users need. This
namespace also exports the steps between them under public names: reading an input item as a
structure, the atom tables, the neighbour search, the Gaussian bond basis and the batching
that turns graphs into the keyword arguments of :class:`~cgcnn_sk.CGCNN`.

Examples
--------
>>> import numpy as np
>>> from cgcnn_sk.graph import find_neighbors, gaussian_centers, gaussian_expand
>>> idx, dist = find_neighbors(np.eye(3) * 3.0, np.zeros((1, 3)), radius=3.5, max_num_nbr=6)
>>> idx[0].tolist(), dist[0].tolist()
([0, 0, 0, 0, 0, 0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
>>> len(gaussian_centers(0.0, 0.2, 8.0)), gaussian_expand(dist[0], (0.0, 0.5, 3.0)).shape
(41, (6, 7))
"""

from ._atoms import CGCNN_SEGMENTS, build_cgcnn_table, compare_tables, load_atom_table
from ._collate import collate_graphs, gaussian_expand
from ._crystal import CrystalGraph, CrystalGraphs, find_neighbors, gaussian_centers
from ._featurizer import CrystalGraphError, CrystalGraphFeaturizer, clear_cache
from ._geometry import SuspiciousGeometryWarning
from ._store import GraphStore, GraphStoreError, write_graph_store
from ._structures import StructureInputError, to_structure

__all__ = [
    "CGCNN_SEGMENTS",
    "CrystalGraph",
    "CrystalGraphError",
    "CrystalGraphFeaturizer",
    "CrystalGraphs",
    "GraphStore",
    "GraphStoreError",
    "StructureInputError",
    "SuspiciousGeometryWarning",
    "build_cgcnn_table",
    "clear_cache",
    "collate_graphs",
    "compare_tables",
    "find_neighbors",
    "gaussian_centers",
    "gaussian_expand",
    "load_atom_table",
    "to_structure",
    "write_graph_store",
]
