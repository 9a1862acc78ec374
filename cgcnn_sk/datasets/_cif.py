"""The reference CGCNN data layout: a folder of CIF files, ``id_prop.csv``, ``atom_init.json``."""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["CifFolder", "load_cif_folder", "save_cif_folder"]


class CifFolder(NamedTuple):
    """What :func:`load_cif_folder` returns; unpacks as ``structures, y, ids, ...``.

    Attributes
    ----------
    structures : list of pymatgen.core.Structure
        In ``id_prop.csv`` order.
    y : ndarray of shape (n,) or (n, n_targets)
        Targets; int64 when every target is written as an integer, float64 otherwise.
    ids : list of str
        The ids of ``id_prop.csv`` (the CIF file stems).
    atom_init : dict or None
        ``atom_init.json`` as {atomic number: feature list}, None when the file is absent.
    path : str
        The folder.
    """

    structures: list
    y: np.ndarray
    ids: list[str]
    atom_init: dict[int, list[float]] | None
    path: str


def _parse_target(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and not any(c in text for c in ".eEnN") else value


def load_cif_folder(path: str | os.PathLike) -> CifFolder:
    """Read a dataset in the reference CGCNN layout.

    The folder holds one ``<id>.cif`` per crystal, an ``id_prop.csv`` without a header whose
    rows are ``id,target[,target...]``, and optionally the ``atom_init.json`` atom feature
    table (keyed by atomic number) the reference implementation reads (Xie & Grossman,
    Phys. Rev. Lett. 120, 145301 (2018); github.com/txie-93/cgcnn, MIT licence).

    Parameters
    ----------
    path : str or path-like
        The folder.

    Returns
    -------
    data : CifFolder
        A named tuple ``(structures, y, ids, atom_init, path)``: the pymatgen Structures in
        ``id_prop.csv`` order, the targets (shape (n,) or (n, n_targets); int64 when every
        target is written as an integer, as in classification sets), the ids, the
        ``atom_init.json`` table as {atomic number: feature list} (None when absent) and the
        folder. ``structures, y, ids, *_ = load_cif_folder(path)`` unpacks it.

    Raises
    ------
    FileNotFoundError
        If the folder, ``id_prop.csv`` or the CIF file of an id is missing.
    ValueError
        For a malformed ``id_prop.csv`` row or an unreadable CIF (the file is named).

    See Also
    --------
    save_cif_folder : the reverse.

    Examples
    --------
    >>> from cgcnn_sk.datasets import load_cif_folder
    >>> data = load_cif_folder("../shared/data/cgcnn-sample/sample-regression")  # doctest: +SKIP
    >>> len(data.structures), data.y[:3], data.ids[0]  # doctest: +SKIP
    (10, array([1., 2., 3.]), '1000041')
    """
    from pymatgen.core import Structure

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {str(folder)!r}")
    id_prop = folder / "id_prop.csv"
    if not id_prop.is_file():
        raise FileNotFoundError(f"{str(folder)!r} has no id_prop.csv (the CGCNN layout needs one)")
    ids: list[str] = []
    targets: list[list[float | int]] = []
    with open(id_prop, newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise ValueError(f"{id_prop}: line {line_no} has no target: {row!r}")
            try:
                values = [_parse_target(cell.strip()) for cell in row[1:]]
            except ValueError as err:
                raise ValueError(
                    f"{id_prop}: line {line_no} (id {row[0]!r}) has a non-numeric target "
                    f"{row[1:]!r}"
                ) from err
            if targets and len(values) != len(targets[0]):
                raise ValueError(
                    f"{id_prop}: line {line_no} has {len(values)} targets, line 1 has "
                    f"{len(targets[0])}"
                )
            ids.append(row[0].strip())
            targets.append(values)
    if not ids:
        raise ValueError(f"{id_prop} is empty")

    structures = []
    for line_no, ident in enumerate(ids, start=1):
        cif = folder / f"{ident}.cif"
        if not cif.is_file():
            raise FileNotFoundError(
                f"id {ident!r} (id_prop.csv row {line_no}) has no CIF file {cif.name} in {folder}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about benign things
            try:
                structures.append(Structure.from_file(cif))
            except Exception as err:  # pymatgen raises many kinds
                raise ValueError(
                    f"{cif.name}: unreadable CIF: {type(err).__name__}: {err}"
                ) from err

    all_int = all(isinstance(v, int) for row in targets for v in row)
    y = np.asarray(targets, dtype=np.int64 if all_int else np.float64)
    if y.shape[1] == 1:
        y = y[:, 0]

    atom_init = None
    atom_file = folder / "atom_init.json"
    if atom_file.is_file():
        with open(atom_file, encoding="utf-8") as fh:
            atom_init = {int(k): v for k, v in json.load(fh).items()}
    return CifFolder(structures=structures, y=y, ids=ids, atom_init=atom_init, path=str(folder))


def save_cif_folder(
    path: str | os.PathLike,
    structures: Sequence[Any],
    y: Any,
    ids: Sequence[str] | None = None,
    *,
    atom_init: Mapping[int, Sequence[float]] | str | os.PathLike | None = None,
) -> Path:
    """Write structures and targets in the reference CGCNN layout.

    Writes ``<id>.cif`` per structure (pymatgen's ``CifWriter``), ``id_prop.csv`` without a
    header, and ``atom_init.json`` when ``atom_init`` is given. The folder is created if
    needed; existing files of the same names are overwritten.

    Parameters
    ----------
    path : str or path-like
        Target folder.
    structures : sequence
        Items accepted by :func:`cgcnn_sk.graph.to_structure` (Structures, ASE Atoms,
        dicts, CIF paths or text).
    y : array-like of shape (n,) or (n, n_targets)
        Targets; integers are written as integers.
    ids : sequence of str, default=None
        File stems; default ``"0"``, ``"1"``, ... . Must be unique and usable as file names.
    atom_init : mapping or path, default=None
        Atom feature table (atomic number -> vector) or the path of an ``atom_init.json`` to
        copy; None writes none.

    Returns
    -------
    path : pathlib.Path
        The folder.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk.datasets import load_cif_folder, save_cif_folder
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> import tempfile
    >>> folder = save_cif_folder(tempfile.mkdtemp(), [po], [1.5], ids=["po"])
    >>> load_cif_folder(folder).y
    array([1.5])
    """
    from pymatgen.io.cif import CifWriter

    from ..graph._structures import to_structure

    y_arr = np.asarray(y)
    if y_arr.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D, got shape {y_arr.shape}")
    n = len(structures)
    if len(y_arr) != n:
        raise ValueError(f"{n} structures but {len(y_arr)} targets")
    if ids is None:
        ids = [str(i) for i in range(n)]
    ids = [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{n} structures but {len(ids)} ids")
    seen: set[str] = set()
    for position, ident in enumerate(ids):
        if not ident or ident in seen or any(c in ident for c in '/\\,:*?"<>|\n'):
            reason = "repeated" if ident in seen else "not usable as a file name"
            raise ValueError(f"ids[{position}] = {ident!r} is {reason}")
        seen.add(ident)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for position, (item, ident) in enumerate(zip(structures, ids, strict=True)):
        try:
            structure = to_structure(item)
        except ValueError as err:
            raise ValueError(f"structures[{position}] (id {ident!r}): {err}") from err
        with warnings.catch_warnings():
            # labels read from a CIF are often repeated ("O1" for every O); that is harmless
            warnings.filterwarnings("ignore", message="Site labels are not unique")
            CifWriter(structure).write_file(str(folder / f"{ident}.cif"))
    rows = y_arr.reshape(n, -1)
    with open(folder / "id_prop.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        for ident, row in zip(ids, rows, strict=True):
            writer.writerow([ident, *(_format_target(v) for v in row)])
    if atom_init is not None:
        if isinstance(atom_init, str | os.PathLike):
            with open(atom_init, encoding="utf-8") as fh:
                table = json.load(fh)
        else:
            table = {str(int(k)): list(map(float, v)) for k, v in atom_init.items()}
        with open(folder / "atom_init.json", "w", encoding="utf-8") as fh:
            json.dump(table, fh)
    return folder


def _format_target(value: Any) -> str:
    if isinstance(value, np.integer | int | np.bool_ | bool):
        return str(int(value))
    return repr(float(value))
