"""The two-level factorial design of the studies: factors, questions, settings."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["FACTORS", "QUESTIONS", "STUDIES", "design_settings"]

#: the questions a study answers, by name
STUDIES = ("neighbours", "activation_batchnorm", "pooling", "baseline")

#: factor -> (pipeline parameter, ``-`` level, ``+`` level); ``+`` is the recipe's value
FACTORS: dict[str, tuple[str, Any, Any]] = {
    "max_num_nbr": ("graph__max_num_nbr", 4, 12),
    "activation": ("cgcnn__module__activation", "relu", "softplus"),
    "batchnorm": ("cgcnn__module__batchnorm", False, True),
    "pooling": ("cgcnn__module__pooling", "max", "mean"),
}

#: question -> the effects that answer it (a tuple of factors: a main effect or an interaction)
QUESTIONS: dict[str, list[tuple[str, ...]]] = {
    "neighbours": [("max_num_nbr",)],
    "activation_batchnorm": [("activation",), ("batchnorm",), ("activation", "batchnorm")],
    "pooling": [("pooling",)],
}


def design_settings(
    factors: Sequence[str], fraction: str = "full", levels: Mapping[str, tuple] | None = None
) -> list[dict[str, Any]]:
    """The settings of a two-level factorial design, as ``set_params`` dicts.

    Parameters
    ----------
    factors : sequence of str
        Names in :data:`FACTORS` (or in ``levels``).
    fraction : {"full", "half"}, default="full"
        ``"half"`` keeps the settings whose signs multiply to ``+`` (defining relation
        ``I = AB...``): resolution IV from four factors on. With fewer factors a half
        fraction would alias main effects with interactions, so the full design is used.
    levels : mapping, optional
        Factor -> ``(parameter, low, high)`` replacing :data:`FACTORS` entries.

    Returns
    -------
    settings : list of dict
        The all-``+`` setting (the recipe's) first.

    Examples
    --------
    >>> s = design_settings(["max_num_nbr", "activation", "batchnorm", "pooling"], "half")
    >>> len(s), s[0]["graph__max_num_nbr"], s[0]["cgcnn__module__pooling"]
    (8, 12, 'mean')
    >>> len(design_settings(["pooling", "batchnorm"], "half"))
    4
    """
    table = {**FACTORS, **(levels or {})}
    unknown = [f for f in factors if f not in table]
    if unknown:
        raise ValueError(f"unknown factor(s) {unknown}; known: {sorted(table)}")
    if fraction not in ("full", "half"):
        raise ValueError(f"fraction must be 'full' or 'half', got {fraction!r}")
    half = fraction == "half" and len(factors) >= 4
    out = []
    for signs in itertools.product((1, -1), repeat=len(factors)):
        if half and np.prod(signs) < 0:
            continue
        out.append({table[f][0]: table[f][2] if s > 0 else table[f][1]
                    for f, s in zip(factors, signs, strict=True)})
    return out


def _resolve_studies(study: str | Sequence[str]) -> list[str]:
    names = [study] if isinstance(study, str) else list(study)
    choices = "choose from 'all', " + ", ".join(map(repr, STUDIES))
    if not names:
        raise ValueError("no study given; " + choices)
    for name in names:
        if name != "all" and name not in STUDIES:
            raise ValueError(f"unknown study {name!r}; " + choices)
    return list(dict.fromkeys(s for n in names for s in (STUDIES if n == "all" else [n])))
