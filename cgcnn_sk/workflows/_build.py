"""Recipes (plain data, :mod:`cgcnn_sk.recipes`) made into callbacks and pipelines."""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline

from ..estimators import CGCNNRegressor, WeightAveraging
from ..graph import CrystalGraphFeaturizer
from ..recipes import Recipe

__all__ = ["recipe_callbacks", "recipe_pipeline"]


def recipe_callbacks(recipe: Recipe) -> list[tuple[str, Any]]:
    """The callbacks a recipe names: a pretrained start, weight averaging (fresh objects)."""
    out = []
    if recipe.pretrained is not None:
        from ..pretrained import PretrainedInit

        out.append(("pretrained_init", PretrainedInit(recipe.pretrained)))
    if recipe.averaging is not None:
        out.append(("averaging", WeightAveraging(**recipe.averaging)))
    return out


def recipe_pipeline(recipe: Recipe, random_state: int | None = 0, **params) -> Pipeline:
    """``Pipeline([("descriptors", ...)?, ("graph", ...), ("cgcnn", ...)])`` of a recipe.

    Examples
    --------
    >>> from cgcnn_sk.recipes import get_recipe
    >>> recipe_pipeline(get_recipe("magpie")).steps[0][0]
    'descriptors'
    >>> recipe_pipeline(get_recipe("ema"))[-1].callbacks[0][0]
    'averaging'
    """
    steps = []
    if recipe.descriptors is not None:
        from ..descriptors import MatminerDescriptors

        steps.append(("descriptors", MatminerDescriptors(**recipe.descriptors)))
    steps += [("graph", CrystalGraphFeaturizer()),
              ("cgcnn", CGCNNRegressor(random_state=random_state, verbose=0))]
    callbacks = recipe_callbacks(recipe)
    extra = {"cgcnn__callbacks": callbacks} if callbacks else {}
    return Pipeline(steps).set_params(**{**recipe.pipeline_params(), **extra, **params})
