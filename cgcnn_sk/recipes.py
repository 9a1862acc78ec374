"""Every named training recipe of the package, written once.

A recipe is the featurizer's parameters, the :class:`~cgcnn_sk.CGCNNRegressor` parameters
(network and schedule), whether the target is fitted on a log scale, how many seeded
members are averaged, and optionally matminer descriptors given to the network as global
inputs (:class:`~cgcnn_sk.descriptors.MatminerDescriptors`).
:class:`~cgcnn_sk.CGCNNRegressor`'s defaults, ``cgcnn-sk train``, the study presets
(:mod:`cgcnn_sk.workflows.studies`) and the Matbench presets
(:mod:`cgcnn_sk.workflows.matbench`) all read their parameters from :data:`RECIPES`; nothing
else spells out a schedule.

================  ===============================================================================
``"default"``     the recipe: what ``CGCNNRegressor()`` and ``CrystalGraphFeaturizer()`` do with
                  no arguments -- L1 loss on the standardised target, AdamW at ``lr=3e-3`` with a
                  cosine decay over 300 epochs on the whole training set, batch 64, 64/3/128
                  widths, M = 12 within 8 A
``"recipe"``      ``"default"`` with 5 seeded members (and a log target on dielectric): the
                  Matbench recipe
``"long"``        ``"recipe"`` with a 600-epoch cosine
``"study"``       ``"default"`` with a 60-epoch cosine: the quick study's cheaper fit
``"pretrained"``  the reference formation-energy network's architecture (64/4/32), started from
                  its checkpoint (needs the ``pretrained`` extra)
``"tiny"``        a net of a few hundred weights trained for 2 epochs: smoke tests only
``"magpie"``      ``"default"`` with the Magpie composition descriptors as global inputs
``"ema"``         ``"default"`` predicting with an exponential moving average of its weights
``"swa"``         ``"default"`` predicting with the average of its last 75 epochs' weights
``"m48"``         ``"default"`` with the 48 nearest neighbours within 8 A and 5 seeded members:
                  jdft2d's tuned recipe (:data:`TUNED`)
``"tuned"``       ``"recipe"`` with each Matbench task's settings from :data:`TUNED`: jdft2d
                  M = 48 (``"m48"``), phonons max pooling and a 600-epoch cosine
================  ===============================================================================

``"magpie"``, ``"ema"`` and ``"swa"`` are candidates, measured and not adopted: weight
averaging gained nothing inside the training rows, and Magpie's inner gain on jdft2d did not
carry over to the official test folds (42.56 against 42.33 meV/atom for the same seed).

Examples
--------
>>> from cgcnn_sk.recipes import RECIPES, TUNED, get_recipe
>>> " ".join(sorted(RECIPES))
'default ema long m48 magpie pretrained recipe study swa tiny tuned'
>>> get_recipe("long").cgcnn["max_epochs"], get_recipe("study").cgcnn["max_epochs"]
(600, 60)
>>> get_recipe("recipe", task="dielectric").log_target
True
>>> get_recipe("study").pipeline_params()["graph__max_num_nbr"]
12
>>> dict(TUNED["jdft2d"])
{'graph__max_num_nbr': 48}
>>> tuned = get_recipe("tuned", task="phonons")
>>> tuned.cgcnn["module__pooling"], tuned.cgcnn["max_epochs"], tuned.n_members
('max', 600, 5)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import torch

__all__ = ["RECIPES", "TUNED", "Recipe", "get_recipe"]


@dataclass(frozen=True)
class Recipe:
    """One named recipe: featurizer and estimator parameters, target transform, members.

    Parameters
    ----------
    name : str
        The registry key.
    summary : str
        One line: what the recipe is for and why its values are what they are.
    featurizer : mapping
        :class:`~cgcnn_sk.CrystalGraphFeaturizer` parameters.
    cgcnn : mapping
        :class:`~cgcnn_sk.CGCNNRegressor` parameters (``module__*`` for the network).
    log_target : bool, default=False
        Fit on ``log(y)`` and predict ``exp(.)``
        (:class:`~sklearn.compose.TransformedTargetRegressor`).
    n_members : int, default=1
        Seeded members averaged by the Matbench runner.
    pretrained : str or None, default=None
        Name of a reference checkpoint the network starts from
        (:func:`cgcnn_sk.pretrained.PretrainedInit`).
    tasks : mapping, default={}
        Task name -> overrides of the fields above for that task.
    descriptors : mapping or None, default=None
        :class:`~cgcnn_sk.descriptors.MatminerDescriptors` parameters: a descriptors step
        before the featurizer (whose ``global_features`` must then name its columns, e.g.
        ``"all"``). ``None``: no such step.
    averaging : mapping or None, default=None
        :class:`~cgcnn_sk.WeightAveraging` parameters: the net predicts with averaged
        weights. ``None``: with its last weights.

    A recipe is data: the workflows build the steps and callbacks it names
    (:func:`cgcnn_sk.workflows.studies.make_cgcnn_pipeline`, the Matbench runner).
    """

    name: str
    summary: str
    featurizer: Mapping[str, Any] = field(default_factory=dict)
    cgcnn: Mapping[str, Any] = field(default_factory=dict)
    log_target: bool = False
    n_members: int = 1
    pretrained: str | None = None
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    descriptors: Mapping[str, Any] | None = None
    averaging: Mapping[str, Any] | None = None

    def __post_init__(self):  # read-only views: a recipe is shared by every caller
        for name in ("featurizer", "cgcnn", "tasks", "descriptors", "averaging"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def for_task(self, task: str | None) -> Recipe:
        """This recipe with the overrides of ``task`` applied (itself when there are none)."""
        over = dict(self.tasks.get(task, {})) if task else {}
        if not over:
            return self
        for key in ("featurizer", "cgcnn", "descriptors"):
            if key in over and over[key] is not None and getattr(self, key) is not None:
                over[key] = {**getattr(self, key), **over[key]}
        return replace(self, **over, tasks={})

    def pipeline_params(self) -> dict[str, Any]:
        """``set_params`` values for ``Pipeline([("graph", ...), ("cgcnn", ...)])``.

        A recipe with ``descriptors`` needs the step ``("descriptors",
        MatminerDescriptors(**recipe.descriptors))`` before ``"graph"``, and one with
        ``pretrained`` or ``averaging`` their callbacks; those are not among these.
        """
        return {**{f"graph__{k}": v for k, v in self.featurizer.items()},
                **{f"cgcnn__{k}": v for k, v in self.cgcnn.items()}}


#: What validation inside a Matbench task's training rows changed from the ``"default"``
#: network and featurization, as pipeline ``set_params`` values: a 3-fold cross-validation
#: inside the training rows of the task's official fold 0, its test rows unseen
#: (``benchmarks/accuracy_inner.py``, figures on the benchmarks page). jdft2d: the 48 nearest
#: neighbours within 8 A, inner MAE 38.0 against 47.8 meV/atom at M = 12 (6 of 6 paired
#: 60-epoch fits; the runner-up, M = 32, 39.2). phonons: max pooling (its target, the highest
#: phonon peak, is a maximum over the crystal's modes), inner MAE 48.7 against 58.4 cm^-1 at
#: 60 epochs (6 of 6 paired fits) and 39.6 against 42.8 at 600 (2 of 3); more neighbours do
#: worse there. On the official folds, 5 members each: 32.54 against 33.39 cm^-1 for mean
#: pooling (``"long"``), better on 2 of 5 folds, not resolved.
#: The studies use it for the CGCNN they put against the random forest
#: (``run_study(baseline_cgcnn=...)``); the ``"tuned"`` recipe trains it on Matbench.
TUNED: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "jdft2d": MappingProxyType({"graph__max_num_nbr": 48}),
    "phonons": MappingProxyType({"cgcnn__module__pooling": "max"}),
})

#: The schedule validated per task beside :data:`TUNED` (same inner folds): on phonons 600
#: epochs beat 300 on 3 of 3 folds (-2.5 cm^-1); on jdft2d at M = 48, 300 and 600 epochs tie.
_TUNED_SCHEDULE = {"phonons": {"cgcnn__max_epochs": 600}}


def _fields(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Pipeline ``set_params`` values as recipe fields: ``graph__x`` -> featurizer ``x``."""
    fields: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        step, _, name = key.partition("__")
        fields.setdefault({"graph": "featurizer", "cgcnn": "cgcnn"}[step], {})[name] = value
    return fields


#: The network of the recipe (CGCNN module parameters).
_NETWORK = {
    "module__atom_fea_len": 64,
    "module__n_conv": 3,
    "module__h_fea_len": 128,
    "module__n_h": 1,
    "module__activation": "softplus",
    "module__batchnorm": True,
    "module__pooling": "mean",
}

#: The recipe's schedule. Chosen by 3-fold validation inside the training rows of Matbench
#: jdft2d fold 0 (benchmarks/recipe_search.py): L1 against MSE 44.9 vs 56.0 meV/atom on the
#: official folds; training the whole fold for a fixed cosine beat early stopping on a split.
_SCHEDULE = {
    "criterion": torch.nn.L1Loss,
    "optimizer": torch.optim.AdamW,
    "lr": 3e-3,
    "max_epochs": 300,
    "batch_size": 64,
    "train_split": None,
    "patience": None,
}

_DEFAULT = Recipe(
    "default",
    "What CGCNNRegressor() and CrystalGraphFeaturizer() do with no arguments.",
    featurizer={"max_num_nbr": 12, "radius": 8.0, "dmin": 0.0, "step": 0.2},
    cgcnn={**_SCHEDULE, **_NETWORK},
)

_RECIPE = replace(
    _DEFAULT,
    name="recipe",
    summary="The default net, 5 seeded members averaged; dielectric on a log target.",
    n_members=5,
    tasks={"dielectric": {"log_target": True}},
)

#: name -> :class:`Recipe`
RECIPES: Mapping[str, Recipe] = MappingProxyType({
    "default": _DEFAULT,
    "recipe": _RECIPE,
    # 600 epochs won a 3-fold validation inside jdft2d fold 0's training rows:
    # 42.6 meV/atom against 44.4 at 300 and 45.1 at 1000.
    "long": replace(_RECIPE, name="long", summary="The recipe with a 600-epoch cosine.",
                    cgcnn={**_RECIPE.cgcnn, "max_epochs": 600}),
    # A fit a fifth as long, so that a factorial study fits in the quick preset's 15 minutes
    # on 2 cores. On the 5 official jdft2d folds (benchmarks/study_schedule.py) it scores
    # 43.6 / 41.9 / 43.1 meV/atom (seeds 0-2) against 40.9-42.3 for single 300-epoch nets
    # (seeds 0-4): about 1.5 worse, so the quick study's verdicts are about this cheaper fit,
    # and the full study trains the default schedule.
    "study": replace(_DEFAULT, name="study",
                     summary="The default net with a 60-epoch cosine: the quick study's fit.",
                     cgcnn={**_DEFAULT.cgcnn, "max_epochs": 60}),
    "pretrained": replace(
        _RECIPE, name="pretrained",
        summary="The recipe's schedule from the reference formation-energy checkpoint "
                "(its architecture, 64/4/32, is fixed by the checkpoint).",
        cgcnn={**_RECIPE.cgcnn, "module__atom_fea_len": 64, "module__n_conv": 4,
               "module__h_fea_len": 32, "module__n_h": 1},
        pretrained="formation-energy-per-atom",
    ),
    "tiny": Recipe(
        "tiny", "Seconds per fit, says nothing about accuracy: smoke tests.",
        featurizer={"max_num_nbr": 6, "radius": 6.0},
        cgcnn={**_SCHEDULE, "max_epochs": 2, "module__atom_fea_len": 8, "module__n_conv": 1,
               "module__h_fea_len": 16},
    ),
    # The two levers after the recipe search, as candidates (measured, not adopted). Magpie's 132
    # composition statistics (MODNet's starting point), joined to the pooled crystal vector.
    "magpie": replace(
        _DEFAULT, name="magpie",
        summary="The default net with Magpie composition descriptors as global inputs.",
        featurizer={**_DEFAULT.featurizer, "global_features": "all"},
        descriptors={"kind": "magpie"},
    ),
    # More neighbours per atom: chosen among M = 12-64 by 3-fold validation inside jdft2d fold
    # 0's training rows (benchmarks/accuracy_inner.py, 60-epoch fits, seeds 0 and 1): inner
    # MAE 38.0 meV/atom at M = 48 against 47.8 at 12. Within 8 A, 38 % of jdft2d's atoms have
    # fewer than 48 neighbours and keep them all.
    "m48": replace(
        _DEFAULT, name="m48",
        summary="The default net with the 48 nearest neighbours per atom within 8 A, "
                "5 seeded members.",
        featurizer={**_DEFAULT.featurizer, "max_num_nbr": 48},
        n_members=5,
    ),
    # Each task's validated settings on the recipe's 5 members: jdft2d trains what "m48" does.
    "tuned": replace(
        _RECIPE, name="tuned",
        summary="The recipe with each Matbench task's settings from TUNED (and phonons' "
                "600-epoch cosine), 5 seeded members.",
        tasks={**_RECIPE.tasks,
               **{task: _fields({**TUNED[task], **_TUNED_SCHEDULE.get(task, {})})
                  for task in TUNED}},
    ),
    # An average over about 1000 optimizer steps: 125 of the 300 epochs on jdft2d's ~510
    # training rows in batches of 64, 17 on dielectric's 3811.
    "ema": replace(
        _DEFAULT, name="ema",
        summary="The default net predicting with an EMA of its weights (decay 0.999 a step).",
        averaging={"kind": "ema", "decay": 0.999},
    ),
    # Stochastic weight averaging over the last quarter of the cosine, where the learning rate
    # falls from 15 % of lr to 0: one snapshot per epoch, whatever the data size.
    "swa": replace(
        _DEFAULT, name="swa",
        summary="The default net predicting with the mean of its weights over the last "
                "quarter of the cosine (SWA).",
        averaging={"kind": "swa", "start": 0.75},
    ),
})


def get_recipe(name: str, task: str | None = None) -> Recipe:
    """The recipe called ``name``, with the overrides of ``task`` applied.

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`RECIPES`; the message lists the names.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    return RECIPES[name].for_task(task)
