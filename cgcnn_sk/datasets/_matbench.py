"""Matbench v0.1 structure tasks: the embedded jdft2d file, other tasks from disk, the folds."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

__all__ = [
    "MATBENCH_RANDOM_STATE",
    "load_jdft2d",
    "load_matbench",
    "matbench_folds",
]

#: Seed of the Matbench v0.1 folds (Dunn et al. 2020): ``KFold(5, shuffle=True, random_state=...)``.
MATBENCH_RANDOM_STATE = 18012019

_EMBEDDED = "matbench_jdft2d.json.gz"


def _task_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a Matbench task name such as 'phonons', got {name!r}")
    return name[len("matbench_") :] if name.startswith("matbench_") else name


def _read_split_json(path: Path | str) -> pd.DataFrame:
    """Read a gzipped pandas ``orient="split"`` JSON file into a DataFrame of raw cells."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        payload = json.load(fh)
    missing = {"index", "columns", "data"} - set(payload)
    if missing:
        raise ValueError(
            f"{path}: not a pandas orient='split' file, missing keys {sorted(missing)}"
        )
    return pd.DataFrame(payload["data"], index=payload["index"], columns=payload["columns"])


def _to_structures(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    from pymatgen.core import Structure

    column = "structure"
    if column not in frame.columns:
        raise ValueError(f"{source}: no 'structure' column (columns: {list(frame.columns)})")
    structures = []
    for position, item in enumerate(frame[column]):
        if isinstance(item, Structure):
            structures.append(item)
            continue
        try:
            structures.append(Structure.from_dict(item))
        except Exception as err:  # pymatgen raises many types; name the row
            raise ValueError(
                f"{source}: row {position} (index {frame.index.tolist()[position]!r}) is not a "
                f"readable structure dict: {err}"
            ) from err
    frame = frame.copy()
    frame[column] = structures
    return frame


def _finish(frame: pd.DataFrame, as_frame: bool):
    if as_frame:
        return frame
    target = [c for c in frame.columns if c != "structure"][0]
    return list(frame["structure"]), frame[target].to_numpy()


def load_jdft2d(*, as_frame: bool = False) -> tuple[list[Any], np.ndarray] | pd.DataFrame:
    """Load Matbench v0.1 ``matbench_jdft2d``, shipped with the package (no network).

    636 two-dimensional materials from JARVIS-DFT with their exfoliation energy in meV/atom
    (OptB88vdW), rows in the original Matbench order, so :func:`matbench_folds` gives the
    official folds. Mean absolute deviation of the target: 67.2020 meV/atom.

    Data: Dunn, Wang, Ganose, Dopp & Jain, "Benchmarking materials property prediction methods:
    the Matbench test set and Automatminer reference algorithm", npj Comput. Mater. 6, 138 (2020),
    doi:10.1038/s41524-020-00406-3; from JARVIS-DFT, Choudhary et al., "High-throughput
    identification and characterization of two-dimensional materials using density functional
    theory", Sci. Rep. 7, 5179 (2017), doi:10.1038/s41598-017-05402-0. See
    ``cgcnn_sk/datasets/data/ATTRIBUTION.md``.

    Parameters
    ----------
    as_frame : bool, default=False
        If True, return a DataFrame with columns ``structure`` (pymatgen ``Structure``) and
        ``exfoliation_en`` instead of ``(structures, y)``.

    Returns
    -------
    structures : list of pymatgen.core.Structure
        The 636 crystals (returned with ``y`` when ``as_frame=False``).
    y : ndarray of shape (636,), float64
        Exfoliation energy in meV/atom.
    frame : pandas.DataFrame
        Only when ``as_frame=True``.

    See Also
    --------
    load_matbench : the other Matbench tasks, read from disk.
    matbench_folds : the official 5-fold split.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_jdft2d
    >>> structures, y = load_jdft2d()
    >>> len(structures), y.shape
    (636, (636,))
    """
    source = resources.files("cgcnn_sk.datasets") / "data" / _EMBEDDED
    with resources.as_file(source) as path:
        frame = _read_split_json(path)
    frame = _to_structures(frame, f"embedded {_EMBEDDED}")
    return _finish(frame, as_frame)


def _candidate_paths(task: str, data_home: str | os.PathLike | None) -> list[Path]:
    filename = f"matbench_{task}.json.gz"
    if data_home is None:
        from matminer.datasets.utils import _get_data_home

        homes = [Path(_get_data_home())]
    else:
        homes = [Path(data_home).expanduser()]
    paths = []
    for home in homes:
        # flat (matminer's folder) and one folder per task (the layout of ../shared/data)
        paths += [home / filename, home / f"matbench_{task}" / filename]
    return paths


def load_matbench(
    name: str,
    data_home: str | os.PathLike | None = None,
    *,
    as_frame: bool = False,
    download_if_missing: bool = True,
) -> tuple[list[Any], np.ndarray] | pd.DataFrame:
    """Load a Matbench v0.1 structure task from ``matbench_<name>.json.gz``.

    The file (pandas ``orient="split"`` JSON, gzipped, as matminer stores it) is looked for as
    ``<data_home>/matbench_<name>.json.gz`` and ``<data_home>/matbench_<name>/matbench_<name>
    .json.gz``. Without ``data_home``, matminer's data folder is used (``$MATMINER_DATA`` or the
    ``matminer/datasets`` folder); ``jdft2d`` then comes from the copy shipped with this package.
    Only when no file is found and ``download_if_missing`` is True does matminer's
    ``load_dataset`` download it (network needed) into that folder.

    Data: Dunn et al., npj Comput. Mater. 6, 138 (2020), doi:10.1038/s41524-020-00406-3, and the
    sources each task cites in matminer's dataset metadata.

    Parameters
    ----------
    name : str
        Task name with or without the ``matbench_`` prefix, e.g. ``"phonons"``.
    data_home : str or path-like, default=None
        Folder to read from (and download into). None means matminer's data folder.
    as_frame : bool, default=False
        If True, return the DataFrame (``structure`` column of pymatgen Structures and the
        target column) instead of ``(structures, y)``.
    download_if_missing : bool, default=True
        If False, raise instead of downloading when the file is absent.

    Returns
    -------
    structures : list of pymatgen.core.Structure
        Rows in the original Matbench order (returned with ``y`` when ``as_frame=False``).
    y : ndarray of shape (n_samples,)
        The task's target.
    frame : pandas.DataFrame
        Only when ``as_frame=True``.

    Raises
    ------
    FileNotFoundError
        When the file is absent (naming every path looked at) and downloading is off or fails.

    See Also
    --------
    load_jdft2d : the embedded task.
    matbench_folds : the official folds over these rows.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_matbench
    >>> structures, y = load_matbench("phonons", data_home="../shared/data")  # doctest: +SKIP
    >>> len(structures)  # doctest: +SKIP
    1265
    """
    task = _task_name(name)
    paths = _candidate_paths(task, data_home)
    for path in paths:
        if path.is_file():
            frame = _to_structures(_read_split_json(path), str(path))
            return _finish(frame, as_frame)
    if data_home is None and task == "jdft2d":
        return load_jdft2d(as_frame=as_frame)
    looked = ", ".join(str(p) for p in paths)
    if not download_if_missing:
        raise FileNotFoundError(
            f"Matbench task {task!r}: no file matbench_{task}.json.gz; looked for {looked} "
            "(download_if_missing=False)"
        )
    try:
        from matminer.datasets import load_dataset

        frame = load_dataset(f"matbench_{task}", data_home=None if data_home is None else
                             str(Path(data_home).expanduser()))
    except Exception as err:  # network errors, unknown names, hash mismatches
        raise FileNotFoundError(
            f"Matbench task {task!r}: no file matbench_{task}.json.gz; looked for {looked}, "
            f"and matminer's download failed: {type(err).__name__}: {err}"
        ) from err
    return _finish(_to_structures(frame, f"matminer matbench_{task}"), as_frame)


def matbench_folds(n_samples: int | Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The official Matbench v0.1 folds: ``KFold(5, shuffle=True, random_state=18012019)``.

    Matbench v0.1 scores a model by the mean test MAE over these five folds, taken over the rows
    in the order the loaders return them. The result is a list of ``(train, test)`` index
    arrays, usable as ``cv=`` in ``cross_validate``, ``GridSearchCV`` and friends.

    Parameters
    ----------
    n_samples : int or sequence
        Number of rows, or the data itself (its ``len`` is used).

    Returns
    -------
    folds : list of 5 tuples (train, test) of int ndarrays
        Test parts are disjoint and cover ``range(n_samples)``.

    Examples
    --------
    >>> from cgcnn_sk.datasets import matbench_folds
    >>> folds = matbench_folds(636)
    >>> len(folds), len(folds[0][1]) + len(folds[0][0])
    (5, 636)
    """
    n = n_samples if isinstance(n_samples, (int, np.integer)) else len(n_samples)
    if isinstance(n, bool) or n < 5:
        raise ValueError(f"matbench_folds needs at least 5 samples, got {n_samples!r}")
    splitter = KFold(n_splits=5, shuffle=True, random_state=MATBENCH_RANDOM_STATE)
    return list(splitter.split(np.zeros((int(n), 1))))
