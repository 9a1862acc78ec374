"""The Matbench v0.1 protocol for a CGCNN recipe: per-fold fits, per-structure predictions, resume.

For each official fold (:func:`cgcnn_sk.datasets.matbench_folds`) the recipe is fitted on that
fold's training rows only -- any validation split or early stopping inside the estimator draws
from those rows -- and predicts the fold's test rows. A recipe (a *preset*) is a featurizer
setting, a :class:`~cgcnn_sk.CGCNNRegressor` setting, an optional log transform of the target
(scikit-learn's :class:`~sklearn.compose.TransformedTargetRegressor`) and a number of
differently seeded members whose predictions are averaged
(:class:`~cgcnn_sk.CGCNNEnsembleRegressor`'s seeds and mean).

Everything is written as it finishes, under ``<out>/<task>/<preset>/``::

    folds/fold<k>_member<m>.csv   test predictions of one member (a finished member)
    folds/fold<k>_member<m>.ckpt/ the member being fitted, saved every minute (then removed)
    folds/fold<k>.json            MAE, RMSE, max error, wall time, epochs/s, the full settings
    predictions.csv               id (mb-<task>-<row>), fold, target, prediction, member std
    summary.csv, summary.md       ours per fold and mean, beside the published Matbench rows
    coverage.csv, intervals.csv   calibrated 68 % / 95 % intervals: coverage and width per
                                  fold and overall, and each structure's bounds
    calibration.png               their coverage beside the raw member spread's

A rerun skips finished members and folds, so an interrupted run resumes where it stopped; a
finished fold can gain members later by raising ``n_members``. The member being fitted is
saved at most once a minute (skorch's ``Checkpoint``: module, optimizer, history) and a rerun
continues it from there (``LoadInitState``), so a kill loses at most a minute of a long fold
(a dielectric member trains for about 25 minutes). On Ctrl-C that member's predictions are not
written (skorch would return it half-trained as if finished) and :func:`run_matbench` raises
:class:`~cgcnn_sk._interrupt.RunInterrupted` saying what was kept.

Two runs of the same call on one ``out`` share the work: each member is fitted under its lock
(``folds/fold<k>_member<m>.lock``, the ``filelock`` package; released when its process ends,
also on ``kill -9``), so a run skips the members another run is fitting and, at the end, waits
for them, fitting one itself only if the other run did not finish it. The fold tables are
written under ``summary.lock``. A file of the folder that cannot be read back (damaged by a
crash or an edit) stops the run with a :class:`~cgcnn_sk.workflows._files.ResultFileError`
naming it and saying what to delete; ``settings.json`` records the cgcnn_sk version, and a
rerun by another version warns (:class:`~cgcnn_sk.InconsistentVersionWarning`).
"""

from __future__ import annotations

import inspect
import json
import numbers
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from .._utils import write_atomic
from .._version import __version__, check_saved_version
from ..datasets import TASKS, load_jdft2d, load_matbench, matbench_folds
from ..descriptors import MatminerDescriptors
from ..estimators._ensemble import CGCNNEnsembleRegressor
from ..estimators._regressor import CGCNNRegressor
from ..graph._featurizer import CrystalGraphFeaturizer
from ..nn._model import CGCNN
from ..recipes import RECIPES, Recipe
from ._build import recipe_callbacks
from ._coverage import INTERVAL_LEVELS, interval_coverage, write_interval_report
from ._files import ResultFileError, read_csv, read_json
from ._interrupt import RunInterrupted, watch_sigint
from ._locks import claim, unit_lock

__all__ = [
    "INTERVAL_LEVELS",
    "MATBENCH_PRESETS",
    "MATBENCH_TASKS",
    "PUBLISHED",
    "calibration",
    "interval_coverage",
    "matbench_ids",
    "run_matbench",
    "summarize_matbench",
]

#: The tasks with committed runs and published figures (their meaning and unit:
#: :data:`cgcnn_sk.datasets.TASKS`).
MATBENCH_TASKS = ("jdft2d", "phonons", "dielectric")

#: Published Matbench v0.1 mean test MAE on the same folds (Dunn et al. 2020 and the Matbench
#: leaderboard, as listed in the shared data's README).
PUBLISHED = {
    "Dummy (predict the mean)": {"jdft2d": 67.29, "phonons": 323.98, "dielectric": 0.8088},
    "RF-SCM/Magpie": {"jdft2d": 50.04, "phonons": 67.61, "dielectric": 0.4196},
    "CGCNN v2019": {"jdft2d": 49.24, "phonons": 57.76, "dielectric": 0.5988},
    "Automatminer express": {"jdft2d": 39.85, "phonons": 56.17, "dielectric": 0.3150},
    "ALIGNN": {"jdft2d": 43.42, "phonons": 29.54, "dielectric": 0.3449},
    "coNGN": {"jdft2d": 36.17, "phonons": 28.89, "dielectric": 0.3142},
    "coGN": {"jdft2d": 37.17, "phonons": 29.71, "dielectric": 0.3088},
    "MEGNet (kgcnn)": {"jdft2d": 54.17, "phonons": 28.76, "dielectric": 0.3391},
    "MODNet v0.1.12": {"jdft2d": 33.19, "phonons": 34.28, "dielectric": 0.2711},
}

#: Matbench preset -> recipe (:data:`cgcnn_sk.recipes.RECIPES`). ``"defaults"`` is one
#: net of what ``CGCNNRegressor()`` does; the names are those of the committed result folders.
MATBENCH_PRESETS: dict[str, Recipe] = {
    "tiny": RECIPES["tiny"],
    "defaults": RECIPES["default"],
    "recipe": RECIPES["recipe"],
    "long": RECIPES["long"],
    "pretrained": RECIPES["pretrained"],
    "magpie": RECIPES["magpie"],
    "ema": RECIPES["ema"],
    "swa": RECIPES["swa"],
    "m48": RECIPES["m48"],
    "tuned": RECIPES["tuned"],
}


def matbench_ids(task: str, n: int) -> list[str]:
    """Matbench's row ids: ``mb-<task>-<1-based row>``, zero-padded to the width of ``n``.

    Examples
    --------
    >>> from cgcnn_sk.workflows.matbench import matbench_ids
    >>> matbench_ids("jdft2d", 636)[:2], matbench_ids("dielectric", 4764)[-1]
    (['mb-jdft2d-001', 'mb-jdft2d-002'], 'mb-dielectric-4764')
    """
    width = len(str(n))
    return [f"mb-{task}-{i:0{width}d}" for i in range(1, n + 1)]


def _recipe(preset: str | Recipe | Mapping, task: str) -> dict[str, Any]:
    """The preset as plain parameters for ``task``: featurizer, cgcnn, log_target, n_members,
    descriptors.

    A mapping preset has the keys of :class:`~cgcnn_sk.recipes.Recipe` (any of ``featurizer``,
    ``cgcnn``, ``log_target``, ``n_members``, ``pretrained``, ``tasks``, ``descriptors``,
    ``averaging``).
    """
    if isinstance(preset, str):
        if preset not in MATBENCH_PRESETS:
            raise ValueError(f"preset={preset!r} is not one of {sorted(MATBENCH_PRESETS)}")
        preset = MATBENCH_PRESETS[preset]
    if isinstance(preset, Mapping):
        fields = {"featurizer", "cgcnn", "log_target", "n_members", "pretrained", "tasks",
                  "descriptors", "averaging"}
        unknown = set(preset) - fields
        if unknown:
            raise ValueError(f"preset keys {sorted(unknown)} unknown; use {sorted(fields)}")
        preset = Recipe("custom", "a preset given as a mapping", **preset)
    recipe = preset.for_task(task)
    cgcnn = dict(recipe.cgcnn)
    callbacks = recipe_callbacks(recipe)
    if callbacks:
        cgcnn["callbacks"] = callbacks
    if recipe.descriptors is not None and recipe.featurizer.get("global_features") is None:
        raise ValueError(
            f"preset {recipe.name!r} adds descriptors but its featurizer has no "
            "global_features: set featurizer global_features='all' (or the column names)"
        )
    out = {"featurizer": dict(recipe.featurizer), "cgcnn": cgcnn,
           "log_target": recipe.log_target, "n_members": recipe.n_members}
    if recipe.descriptors is not None:  # absent otherwise: settings files as before
        out["descriptors"] = dict(recipe.descriptors)
    return out


def _member(recipe: Mapping, extra_callbacks: Sequence = ()) -> CGCNNEnsembleRegressor:
    net = CGCNNRegressor(**recipe["cgcnn"])
    if extra_callbacks:
        net.set_params(callbacks=list(net.callbacks or []) + list(extra_callbacks))
    model = (TransformedTargetRegressor(net, func=np.log, inverse_func=np.exp)
             if recipe["log_target"] else net)
    return CGCNNEnsembleRegressor(model, n_estimators=recipe["n_members"], random_state=0)


def _settings(recipe: Mapping) -> dict[str, Any]:
    """The recipe as JSON, and every parameter of the estimator and featurizer it builds.

    Only ``recipe`` (without ``n_members``) decides whether a rerun may resume: a package
    upgrade that adds estimator parameters does not invalidate finished folds.
    """
    net = CGCNNRegressor(**recipe["cgcnn"])
    params = {k: v for k, v in net.get_params(deep=False).items()
              if not k.startswith(("iterator_", "_"))}
    feat = CrystalGraphFeaturizer(**recipe["featurizer"]).get_params(deep=False)
    settings = {"recipe": {k: v for k, v in recipe.items() if k != "n_members"},
                "n_members": recipe["n_members"], "featurizer": feat, "cgcnn": params}
    if "descriptors" in recipe:
        settings["descriptors"] = MatminerDescriptors(**recipe["descriptors"]).get_params()
    return json.loads(json.dumps(settings, default=_name))


#: Parameters that change no fitted number (or are set per member).
_IRRELEVANT = {"verbose", "random_state", "n_jobs", "memory"}
_MISSING = "<no default>"


def _defaults(cls, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _comparable(settings: Mapping) -> tuple:
    """What decides whether finished members may be kept: the effective parameters.

    The featurizer's and the estimator's parameters that differ from their class defaults
    (so a preset that spells a default out, or a package version that adds a parameter with a
    default, changes nothing), and the log target; not how the preset was written.
    """
    def changed(params: Mapping, defaults: Mapping) -> dict:
        return {k: v for k, v in params.items()
                if k not in _IRRELEVANT and json.loads(json.dumps(
                    defaults.get(k, _MISSING), default=_name)) != v}

    cgcnn = changed(settings.get("cgcnn", {}),
                    {**_defaults(CGCNNRegressor), **_defaults(CGCNN, "module__")})
    feat = changed(settings.get("featurizer", {}), _defaults(CrystalGraphFeaturizer))
    desc = settings.get("descriptors")
    desc = None if desc is None else changed(desc, {"n_jobs": None, "memory": None})
    return feat, cgcnn, bool(settings.get("recipe", {}).get("log_target", False)), desc


def _name(obj) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)


def _load(task: str, data_home) -> tuple[list, np.ndarray]:
    if task == "jdft2d" and data_home is None:
        return load_jdft2d()
    return load_matbench(task, data_home=data_home)


class _EpochBar(Callback):
    """Advance a tqdm bar by one per epoch of any member of the run."""

    def __init__(self, bar):
        self.bar = bar

    def __sklearn_clone__(self):  # members are clones: they must share the one bar
        return self

    def on_epoch_end(self, net, **kwargs):
        self.bar.update(1)


#: Seconds between two checkpoints of the member being fitted. A save takes ~20 ms for the
#: recipe's net (1 MB; 18 ms median of 20 saves), so once a minute it costs nothing and a kill
#: loses at most a minute.
CHECKPOINT_EVERY_S = 60.0


class _Every:
    """A ``Checkpoint`` monitor: true once ``seconds`` have passed since the last true."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last = time.monotonic()

    def __call__(self, net) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def _resumable(member, dirname: Path):
    """``member`` saving itself to ``dirname`` as it trains, and resuming from it when fitted.

    A checkpoint left by a kill can be cut short or mixed; it is dropped with a warning (the
    member then starts over) rather than loaded half, since ``LoadInitState`` only skips a
    missing file.
    """
    files = {"f_params": "params.pt", "f_optimizer": "optimizer.pt",
             "f_criterion": "criterion.pt", "f_history": "history.json"}
    restored = 0
    # skorch makes the folder when training begins; a kill before the first save leaves it empty
    if any((dirname / name).exists() for name in files.values()):
        try:
            for key in ("f_params", "f_optimizer", "f_criterion"):
                torch.load(dirname / files[key], weights_only=True)
            restored = len(json.loads((dirname / files["f_history"]).read_text()))
        except Exception as err:  # any unreadable file: torch, json or OS errors alike
            why = (str(err).splitlines() or [""])[0]  # torch's messages run over many lines
            warnings.warn(f"checkpoint {dirname} is unreadable ({type(err).__name__}: {why}); "
                          "its member starts over", RuntimeWarning, stacklevel=3)
            shutil.rmtree(dirname)
            restored = 0
    net = getattr(member, "regressor", member)
    prefix = "regressor__" if net is not member else ""
    cp = Checkpoint(dirname=str(dirname), monitor=_Every(CHECKPOINT_EVERY_S), event_name=None,
                    load_best=False, **files)
    callbacks = [*(net.callbacks or []), ("checkpoint", cp), ("resume", LoadInitState(cp))]
    return clone(member).set_params(**{f"{prefix}callbacks": callbacks}), restored


def run_matbench(
    task: str,
    *,
    preset: str | Mapping = "recipe",
    folds: Iterable[int] | None = None,
    out: str | os.PathLike = "matbench_results",
    data_home: str | os.PathLike | None = None,
    progress: bool = True,
    n_members: int | None = None,
) -> pd.DataFrame:
    """Run a recipe on the official Matbench folds of ``task``; resume what was started.

    Parameters
    ----------
    task : {"jdft2d", "phonons", "dielectric"}
    preset : str or dict, default="recipe"
        A key of :data:`MATBENCH_PRESETS` or a dict of the same form.
    folds : iterable of int, default=None
        Folds to run (0-4); ``None``: all five.
    out : path, default="matbench_results"
        Results go to ``<out>/<task>/<preset>/`` (a dict preset: ``custom``).
    data_home : path, default=None
        Folder with ``matbench_<task>/matbench_<task>.json.gz`` (e.g. ``../shared/data``);
        jdft2d is embedded and needs none.
    progress : bool, default=True
        A tqdm bar over all epochs left, with an ETA.
    n_members : int, default=None
        Fit only the first ``n_members`` seeded members of each fold (``None``: the preset's
        number). A later run with more adds members to the finished folds, so a preset's
        first member can be compared on every fold before the others are paid for.

    Returns
    -------
    DataFrame
        One row per finished fold (``fold``, ``mae``, ``rmse``, ``max_error``, ``wall_s``,
        ``epochs_per_s``, ...), the same table as ``folds/*.json``.

    Raises
    ------
    RunInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``): the finished members stay on disk, the one being
        fitted is not written, and the message says so; the same call resumes.

    Examples
    --------
    >>> from cgcnn_sk.workflows.matbench import run_matbench
    >>> table = run_matbench("jdft2d", preset="tiny", folds=[0], out="/tmp/mb",
    ...                      progress=False)  # doctest: +SKIP
    >>> table[["fold", "mae"]]  # doctest: +SKIP
    """
    if task not in MATBENCH_TASKS:
        raise ValueError(f"task={task!r} is not one of {sorted(MATBENCH_TASKS)}")
    recipe = _recipe(preset, task)
    if n_members is not None:
        if isinstance(n_members, bool) or not isinstance(n_members, numbers.Integral) \
                or n_members < 1:
            raise ValueError(f"n_members={n_members!r}: give a whole number >= 1")
        recipe["n_members"] = int(n_members)
    folds = list(range(5)) if folds is None else sorted(set(int(k) for k in folds))
    bad = [k for k in folds if not 0 <= k < 5]
    if bad:
        raise ValueError(f"folds {bad} out of range: Matbench has folds 0-4")
    root = Path(out) / task / (preset if isinstance(preset, str) else "custom")
    fold_dir = root / "folds"
    fold_dir.mkdir(parents=True, exist_ok=True)
    settings = {**_settings(recipe), "cgcnn_sk_version": __version__}
    settings_file = root / "settings.json"
    if settings_file.exists():
        before = read_json(settings_file, "delete it if the folder's results are from the same "
                           "preset (the rerun writes it again), or use another --out")
        if _comparable(before) != _comparable(settings):
            raise ValueError(
                f"{settings_file} holds other settings than preset {preset!r} gives now: "
                "its finished folds would be mixed with new ones; use another --out"
            )
        if before.get("cgcnn_sk_version") != __version__:  # finished folds of another version
            check_saved_version(f"the results in {root}", before.get("cgcnn_sk_version"))
            settings["cgcnn_sk_version"] = before.get("cgcnn_sk_version")  # warn on each rerun
    with unit_lock(root / "summary.lock"):  # another run may write it too
        write_atomic(settings_file, json.dumps(settings, indent=1))

    structures, y = _load(task, data_home)
    y = np.asarray(y, dtype=np.float64)
    ids = np.asarray(matbench_ids(task, len(y)))
    splits = matbench_folds(len(y))

    def member_file(k, m):
        return fold_dir / f"fold{k}_member{m}.csv"

    todo = [(k, m) for k in folds for m in range(recipe["n_members"])
            if not member_file(k, m).exists()]
    bar = None
    callbacks = []
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) * max(int(recipe["cgcnn"].get("max_epochs", 100)), 1),
                   desc=f"matbench {task}", unit="epoch")
        callbacks = [("progress", _EpochBar(bar))]
    members = _member(recipe, callbacks).members()
    featurizer = CrystalGraphFeaturizer(**recipe["featurizer"])
    fold_graphs = {}

    def graphs_of(k):
        """The graphs of fold ``k``: descriptors, when the recipe has them, fitted on its
        training rows (the neighbour lists are searched once, for the first fold)."""
        if "descriptors" not in recipe:
            k = None  # one set of graphs for every fold
            if k not in fold_graphs:
                fold_graphs[k] = featurizer.fit_transform(structures)
        elif k not in fold_graphs:
            train = splits[k][0]
            desc = MatminerDescriptors(**recipe["descriptors"])
            desc.fit([structures[i] for i in train])
            fold_graphs[k] = featurizer.fit_transform(desc.transform(structures))
        return fold_graphs[k]

    now = {"current": None, "ckpt": None}  # the member being fitted (a Ctrl-C must not keep it)

    def fit_member(k: int, m: int, name: str, member) -> None:
        """Fit member ``m`` on fold ``k`` and write it; the caller holds its lock."""
        path = member_file(k, m)
        if path.exists():  # another process finished it while this one waited
            return
        train, test = splits[k]
        if bar is not None:
            bar.set_postfix_str(f"fold {k} {name}")
        now["current"], now["ckpt"] = f"fold {k} member {m}", path.with_suffix(".ckpt")
        fitting, restored = _resumable(member, now["ckpt"])
        t0 = time.perf_counter()
        graphs = graphs_of(k)
        fitting.fit(graphs[train], y[train])
        pred = fitting.predict(graphs[test])
        wall = time.perf_counter() - t0
        watch.check()  # skorch ends its epoch loop on Ctrl-C and returns
        net = getattr(fitting, "regressor_", fitting)
        text = pd.DataFrame({"id": ids[test], "prediction": pred}).to_csv(index=False)
        meta = {"member": name, "wall_s": wall, "epochs": len(net.history)}
        if restored:  # the epochs of the killed run count in the member's time
            meta["resumed_after_epoch"] = restored
            meta["wall_s"] += float(sum(net.history[:restored, "dur"]))
        write_atomic(path.with_suffix(".json"), json.dumps(meta))
        write_atomic(path, text)  # last: the csv marks the member finished
        shutil.rmtree(now["ckpt"], ignore_errors=True)
        now["current"] = None
        with unit_lock(root / "summary.lock"):  # the tables on disk follow every member
            _finish_fold(k, splits[k], ids, y, recipe, root)
            _summarize(task, root)

    with watch_sigint() as watch:
        try:
            # Member-major: a partial run gives every fold's first member (a full 5-fold
            # score of a single net) before the ensembles grow. A member another process
            # (the same command on the same --out) is fitting is left to it; this one comes
            # back to it at the end, and fits it only if that process did not finish it.
            busy = []
            for m, (name, member) in enumerate(members):
                for k in folds:
                    if member_file(k, m).exists():
                        continue
                    with claim(member_file(k, m).with_suffix(".lock")) as mine:
                        if mine:
                            fit_member(k, m, name, member)
                        else:
                            busy.append((k, m, name, member))
            for k, m, name, member in busy:
                with unit_lock(member_file(k, m).with_suffix(".lock")):  # wait for it
                    fit_member(k, m, name, member)
            with unit_lock(root / "summary.lock"):
                for k in folds:  # resumed runs with nothing left to fit still get their summary
                    _finish_fold(k, splits[k], ids, y, recipe, root)
                table = _summarize(task, root)
        except KeyboardInterrupt:
            done = len(list(fold_dir.glob("fold*_member*.csv")))
            current, ckpt = now["current"], now["ckpt"]
            lost = f"{current} was not written" if current else "no member was being fitted"
            history = ckpt / "history.json" if current else None
            if history is not None and history.exists():
                try:
                    epochs = len(json.loads(history.read_text()))
                    lost += f" (its checkpoint after epoch {epochs} is kept in {ckpt})"
                except (ValueError, OSError):  # cut short by the interrupt itself
                    lost += f" (its checkpoint in {ckpt} may be incomplete)"
            raise RunInterrupted(
                f"interrupted (Ctrl-C); {done} finished member file(s) kept in {fold_dir}, "
                f"{lost}; a rerun of the same call resumes from there"
            ) from None
        finally:
            if bar is not None:
                bar.close()
    return table


def _finish_fold(k, split, ids, y, recipe, root: Path) -> None:
    """Score fold ``k`` with its first members that are done (all of them, once finished)."""
    fold_dir = root / "folds"
    files = []
    for m in range(recipe["n_members"]):
        if not (fold_dir / f"fold{k}_member{m}.csv").exists():
            break
        files.append(fold_dir / f"fold{k}_member{m}.csv")
    if not files:
        return
    _, test = split
    preds = np.column_stack([_member_predictions(f, ids[test]) for f in files])
    metas = [read_json(f.with_suffix(".json"), _REFIT.format(name=f.name),
                       keys=("wall_s", "epochs")) for f in files]
    mean = preds.mean(axis=1)
    err = mean - y[test]
    wall = float(sum(m["wall_s"] for m in metas))
    epochs = int(sum(m["epochs"] for m in metas))
    record = {
        "fold": k, "n_train": int(len(y) - len(test)), "n_test": int(len(test)),
        "n_members": len(files), "complete": len(files) == recipe["n_members"],
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))), "max_error": float(np.max(np.abs(err))),
        "member_mae": [float(np.mean(np.abs(p - y[test]))) for p in preds.T],
        "wall_s": round(wall, 1), "epochs": epochs,
        "epochs_per_s": round(epochs / wall, 3) if wall > 0 else None,
        "torch_threads": torch.get_num_threads(),
        "settings": read_json(root / "settings.json", "delete it; the rerun writes it again"),
    }
    write_atomic(fold_dir / f"fold{k}.json", json.dumps(record, indent=1))
    frame = pd.DataFrame({"id": ids[test], "fold": k, "target": y[test], "prediction": mean,
                          "member_std": preds.std(axis=1)})
    write_atomic(fold_dir / f"fold{k}_predictions.csv", frame.to_csv(index=False))


#: What to do about a damaged member file.
_REFIT = ("delete it and the member's other file (fold<k>_member<m>.csv and .json, here "
          "{name}); a rerun fits that member again")


def _member_predictions(path: Path, test_ids: np.ndarray) -> np.ndarray:
    """A member's test predictions, in the fold's order; a ResultFileError names a bad file."""
    remedy = _REFIT.format(name=path.name)
    frame = read_csv(path, remedy, columns=("id", "prediction")).set_index("id")
    missing = pd.Index(test_ids).difference(frame.index)
    if len(missing) or frame.index.has_duplicates:
        raise ResultFileError(
            f"{path} does not hold one prediction for each of the fold's {len(test_ids)} test "
            f"rows ({len(missing)} missing, e.g. {list(missing[:2])}): {remedy}")
    values = frame.loc[test_ids, "prediction"].to_numpy()
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise ResultFileError(f"{path} holds predictions that are not finite numbers: {remedy}")
    return values


def calibration(y_true, y_pred, y_std) -> dict[str, float]:
    """How well an ensemble's spread predicts its error on held-out rows.

    Returns the fraction of targets within one and two predicted standard deviations (0.683
    and 0.954 for calibrated Gaussian errors) and Spearman's rank correlation of the absolute
    error with the standard deviation (above 0: larger spread, larger error).

    Examples
    --------
    >>> from cgcnn_sk.workflows.matbench import calibration
    >>> calibration([0.0, 0.0, 0.0, 0.0], [0.5, -1.5, 3.0, 0.1], [1.0, 1.0, 1.0, 1.0])
    {'within_1_std': 0.5, 'within_2_std': 0.75, 'spearman_abs_error_std': nan}
    """
    from scipy.stats import spearmanr

    err = np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))
    std = np.asarray(y_std, float)
    rho = spearmanr(err, std).statistic if np.ptp(std) > 0 else float("nan")
    return {"within_1_std": float(np.mean(err <= std)),
            "within_2_std": float(np.mean(err <= 2 * std)),
            "spearman_abs_error_std": float(rho)}


def summarize_matbench(
    task: str, *, preset: str = "recipe", out: str | os.PathLike = "matbench_results"
) -> pd.DataFrame:
    """Rewrite the summaries of ``<out>/<task>/<preset>/`` from its fold files; fit nothing.

    ``predictions.csv``, ``summary.csv``, ``summary.md``, ``coverage.csv``, ``intervals.csv``
    and ``calibration.png`` are recomputed from ``folds/fold<k>.json`` and
    ``folds/fold<k>_predictions.csv`` as :func:`run_matbench` left them.

    Returns
    -------
    DataFrame
        One row per finished fold, as :func:`run_matbench` returns it.

    Examples
    --------
    >>> from cgcnn_sk.workflows.matbench import summarize_matbench
    >>> table = summarize_matbench("jdft2d", preset="long",
    ...                            out="benchmarks/results/matbench")  # doctest: +SKIP
    """
    if task not in MATBENCH_TASKS:
        raise ValueError(f"task={task!r} is not one of {sorted(MATBENCH_TASKS)}")
    root = Path(out) / task / preset
    if not sorted((root / "folds").glob("fold[0-4].json")):
        raise FileNotFoundError(f"{root / 'folds'} holds no finished fold (fold<k>.json): "
                                "nothing to summarize; run_matbench writes them")
    return _summarize(task, root)


def _summarize(task: str, root: Path) -> pd.DataFrame:
    fold_dir = root / "folds"
    again = "delete it; a rerun writes it again from the member files"
    records = [read_json(fold_dir / f"fold{k}.json", again, keys=("fold", "mae"))
               for k in range(5) if (fold_dir / f"fold{k}.json").exists()]
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "settings"} for r in records])
    if not records:
        return table
    preds = pd.concat([
        read_csv(fold_dir / f"fold{r['fold']}_predictions.csv", again,
                 columns=("id", "target", "prediction", "member_std"))
        for r in records]).sort_values("id")
    write_atomic(root / "predictions.csv", preds.to_csv(index=False))
    write_atomic(root / "summary.csv", table.to_csv(index=False))
    unit = TASKS[task].unit
    n = len(records)
    members = sorted(set(table["n_members"]))
    ours = (f"cgcnn_sk `{root.name}` ({n} of 5 folds, "
            f"{'/'.join(map(str, members))} member(s))")
    rows = [{"model": ours, "MAE": table["mae"].mean(),
             "per fold": ", ".join(f"{v:.4g}" for v in table["mae"])}]
    rows += [{"model": name, "MAE": scores[task], "per fold": "published"}
             for name, scores in PUBLISHED.items()]
    lines = [f"# Matbench v0.1 {task} ({TASKS[task].target}, MAE in {unit})", "",
             pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"), "",
             f"Wall time of the finished folds: {table['wall_s'].sum():.0f} s "
             f"({table['epochs'].sum()} epochs, {table['torch_threads'].iloc[0]} torch threads)."]
    if n < 5 or not table["complete"].all():
        lines.append("Partial: folds or members are missing; the mean is over what is done.")
    if preds["member_std"].gt(0).any():
        cal = calibration(preds["target"], preds["prediction"], preds["member_std"])
        lines += ["", "Uncertainty (the members' standard deviation, test rows of the finished "
                  "folds): {within_1_std:.3f} of the targets within 1 std (0.683 if "
                  "calibrated), {within_2_std:.3f} within 2 std (0.954); Spearman rho of "
                  "|error| and std {spearman_abs_error_std:.3f}; `calibration.png`.".format(**cal)]
        lines += write_interval_report(task, preds, root)
    write_atomic(root / "summary.md", "\n".join(lines) + "\n")
    return table
