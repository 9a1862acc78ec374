"""The network, in torch only: :class:`ConvLayer` and :class:`CGCNN`.

Nothing here knows about structures, neighbour searches or training: the module reads the
keyword arguments that :func:`cgcnn_sk.graph.collate_graphs` builds.
"""

from ._model import CGCNN, EMBEDDING_LAYERS, ConvLayer

__all__ = ["CGCNN", "EMBEDDING_LAYERS", "ConvLayer"]
