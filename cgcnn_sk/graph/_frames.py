"""DataFrame input of the featurizer: the structure column and the global feature columns.

``_GlobalColumns`` is the part of :class:`~cgcnn_sk.CrystalGraphFeaturizer` that reads a
DataFrame ``X``: its ``structure_column`` holds the structures, and the columns named by
``global_features`` become each graph's ``global_features`` (finite numbers, checked column
by column, the bad row named).
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np


def _is_frame(X) -> bool:
    import pandas as pd

    return isinstance(X, pd.DataFrame)


def _numeric_column(column, name: str) -> np.ndarray:
    """A global feature column as finite float64 values, or a ValueError naming the row."""
    labels = list(column.index)
    if column.dtype.kind not in "biuf":
        raw = column.to_numpy(dtype=object)
        bad = next((i for i, v in enumerate(raw) if not isinstance(v, Real | np.number)), 0)
        raise ValueError(
            f"global feature column {name!r} is not numeric (dtype {column.dtype}): row {bad} "
            f"(index {labels[bad]!r}) holds {raw[bad]!r}; global features must be numbers"
        )
    values = column.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"global feature column {name!r} holds {values[i]} at row {i} (index "
            f"{labels[i]!r}), {bad.size} non-finite value(s) in all: fill or drop them"
        )
    return values


class _GlobalColumns:
    """Reads ``structure_column`` and ``global_features`` of a DataFrame ``X``."""

    def _listed_columns(self) -> list[str]:
        names = list(self.global_features)
        bad = [c for c in names if not isinstance(c, str)]
        if bad or not names:
            raise ValueError(
                f"global_features must be None, 'all' or a non-empty list of column names "
                f"(str), got {self.global_features!r}"
            )
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ValueError(f"global_features names the column(s) {dup} more than once")
        if self.structure_column in names:
            raise ValueError(
                f"global_features lists the structure column {self.structure_column!r}"
            )
        return names

    def _global_columns(self, frame, fitted: bool = True) -> list[tuple[str, Any]]:
        """``(name, column label)`` of the global feature columns of ``frame``, in order."""
        col = self.structure_column
        if self.global_features == "all":
            pairs = [(str(c), c) for c in frame.columns if c != col]
            if not pairs:
                raise ValueError(
                    f"global_features='all' but the DataFrame has no column besides {col!r}"
                )
        else:
            pairs = []
            for name in self._listed_columns():
                if name not in frame.columns:
                    raise ValueError(
                        f"global feature column {name!r} is missing from the DataFrame "
                        f"(columns: {[str(c) for c in frame.columns][:12]})"
                    )
                pairs.append((name, name))
        names = [n for n, _ in pairs]
        if len(set(names)) != len(names) or len(frame.columns.unique()) != len(frame.columns):
            raise ValueError(
                f"the DataFrame has duplicated column names ({[str(c) for c in frame.columns]}):"
                " each global feature needs its own column"
            )
        known = getattr(self, "global_feature_names_", None) if fitted else None
        if known is not None and names != list(known):
            raise ValueError(
                f"X has the global feature columns {names}, but the featurizer was fitted "
                f"with {list(known)}: give the same columns in the same order"
            )
        return pairs

    def _split_frame(self, X) -> tuple[Any, np.ndarray | None, tuple[str, ...] | None]:
        """``(structures, global values (n, k) or None, global names or None)`` of ``X``."""
        if not _is_frame(X):
            if self.global_features is not None:
                raise ValueError(
                    f"global_features={self.global_features!r} reads the extra columns of a "
                    f"DataFrame, but X is a {type(X).__name__}: pass a DataFrame with a "
                    f"{self.structure_column!r} column and the global columns, or set "
                    "global_features=None"
                )
            return X, None, None
        col = self.structure_column
        if col not in X.columns:
            raise ValueError(
                f"a DataFrame input needs a {col!r} column (structure_column={col!r}); got "
                f"columns {[str(c) for c in X.columns][:10]}"
            )
        structures = X[col]  # a Series: its index labels become the graph ids
        if self.global_features is None:
            return structures, None, None
        pairs = self._global_columns(X)
        values = np.empty((len(X), len(pairs)), dtype=np.float64)
        for k, (name, label) in enumerate(pairs):
            values[:, k] = _numeric_column(X[label], name)
        values.flags.writeable = False  # the graphs hold row views, like the neighbour lists
        return structures, values, tuple(name for name, _ in pairs)
