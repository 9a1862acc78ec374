"""Cubic perovskites (Castelli et al. 2012) as distributed with CDVAE: CSV with a CIF column."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["load_perovskites"]

PEROVSKITE_TARGETS = ("heat_ref", "heat_all", "dir_gap", "ind_gap")


def load_perovskites(
    path: str | os.PathLike,
    target: str = "heat_ref",
    *,
    as_frame: bool = False,
) -> tuple[list[Any], np.ndarray] | pd.DataFrame:
    """Load the cubic-perovskite set from CSV files with a ``cif`` text column.

    The files are those of the CDVAE ``perov_5`` split (MIT licence) of the Computational
    Materials Repository's cubic perovskites (Castelli et al., Energy Environ. Sci. 5, 5814
    and 9034 (2012)): columns ``material_id``, ``cif``, ``formula``, ``heat_all``,
    ``heat_ref`` (heat of formation, eV), ``dir_gap``, ``ind_gap`` (eV).

    Parameters
    ----------
    path : str or path-like
        One ``.csv`` / ``.csv.gz`` file, or a folder whose ``*.csv`` and ``*.csv.gz`` files
        are concatenated in sorted name order (``test`` then ``val`` for ``perov5/``); the
        frame's ``split`` column records each row's file stem.
    target : str, default="heat_ref"
        Column returned as ``y``; one of ``heat_ref``, ``heat_all``, ``dir_gap``, ``ind_gap``.
    as_frame : bool, default=False
        If True, return the whole DataFrame with a ``structure`` column added.

    Returns
    -------
    structures : list of pymatgen.core.Structure
        Parsed from the ``cif`` column (returned with ``y`` when ``as_frame=False``).
    y : ndarray of shape (n_samples,), float64
    frame : pandas.DataFrame
        Only when ``as_frame=True``.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_perovskites
    >>> structures, y = load_perovskites("../shared/data/perov5/val.csv.gz")  # doctest: +SKIP
    >>> len(structures), len(structures[0])  # doctest: +SKIP
    (3787, 5)
    """
    from pymatgen.core import Structure

    if target not in PEROVSKITE_TARGETS:
        raise ValueError(f"target must be one of {PEROVSKITE_TARGETS}, got {target!r}")
    source = Path(path)
    if source.is_dir():
        files = sorted(
            p for p in source.iterdir() if p.name.endswith(".csv") or p.name.endswith(".csv.gz")
        )
        if not files:
            raise FileNotFoundError(f"no *.csv or *.csv.gz file in {str(source)!r}")
    elif source.is_file():
        files = [source]
    else:
        raise FileNotFoundError(f"no such file or folder: {str(source)!r}")

    frames = []
    for file in files:
        frame = pd.read_csv(file, index_col=0)
        missing = {"cif", target} - set(frame.columns)
        if missing:
            raise ValueError(f"{file.name}: missing column(s) {sorted(missing)}")
        frame["split"] = file.name.split(".")[0]
        frame["_row"] = np.arange(len(frame))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)

    structures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about benign things
        for cif, split, row in zip(frame["cif"], frame["split"], frame["_row"], strict=True):
            try:
                structures.append(Structure.from_str(cif, fmt="cif"))
            except Exception as err:  # pymatgen raises many kinds
                raise ValueError(
                    f"{split}: row {row}: unreadable CIF: {type(err).__name__}: {err}"
                ) from err
    frame = frame.drop(columns="_row")
    frame.insert(0, "structure", structures)
    if as_frame:
        return frame
    return structures, frame[target].to_numpy(dtype=np.float64)
