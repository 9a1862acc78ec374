"""Turning user input into pymatgen ``Structure`` objects.

One item at a time (:func:`to_structure`) and a whole collection at once
(:func:`coerce_structures`). The featurizer and the baselines share these functions, so every
estimator in cgcnn_sk accepts the same inputs:

* a pymatgen ``Structure`` (or ``IStructure``);
* an ASE ``Atoms`` object (periodic);
* a ``Structure.as_dict()`` dictionary;
* a path (``str`` or ``os.PathLike``) to a CIF file, or anything else pymatgen reads;
* the text of a CIF file (a string containing a newline or starting with ``data_``).

Collections may be lists, tuples, 1-D arrays, pandas Series, or a pandas DataFrame with a
``structure`` column. Coercion never raises for a bad item: the exception takes the item's
place, so callers can report every bad item at once.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import IStructure, Structure

__all__ = [
    "StructureInputError", "coerce_structures", "item_ids", "structure_key", "to_structure",
]


class StructureInputError(ValueError):
    """An input item could not be turned into a crystal structure."""


def _looks_like_cif_text(text: str) -> bool:
    stripped = text.lstrip()
    return "\n" in text or stripped.startswith("data_")


def _read_cif_text(text: str, source: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's CIF parser warns about many benign things
        try:
            structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError, ...
            raise StructureInputError(f"unreadable CIF {source}: {_short(exc)}") from exc
    return structure


def _short(exc: BaseException, limit: int = 200) -> str:
    msg = f"{type(exc).__name__}: {exc}".strip()
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def to_structure(item: Any) -> Structure:
    """Convert one input item to a pymatgen ``Structure``.

    Parameters
    ----------
    item : Structure, ase.Atoms, dict, str or os.PathLike
        A structure, an ASE ``Atoms``, a ``Structure.as_dict()`` dictionary, a path to a
        structure file (CIF, POSCAR, ... anything ``Structure.from_file`` reads), or CIF text.

    Returns
    -------
    structure : Structure
        ``IStructure`` inputs are returned as they are (they have the same interface).

    Raises
    ------
    StructureInputError
        If the item is not one of the accepted kinds, the file is missing or unreadable.

    Examples
    --------
    >>> from cgcnn_sk.graph import to_structure
    >>> s = to_structure({"@module": "pymatgen.core.structure", "@class": "Structure",
    ...     "lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
    ...     "sites": [{"species": [{"element": "Po", "occu": 1}], "abc": [0, 0, 0]}]})
    >>> s.composition.reduced_formula
    'Po'
    """
    if isinstance(item, IStructure):  # Structure is a subclass
        return item
    if isinstance(item, dict):
        try:
            return Structure.from_dict(item)
        except Exception as exc:
            raise StructureInputError(
                f"dict is not a Structure.as_dict() dictionary: {_short(exc)}"
            ) from exc
    if isinstance(item, bytes):
        item = item.decode("utf-8", errors="replace")
    if isinstance(item, str) and _looks_like_cif_text(item):
        return _read_cif_text(item, "text")
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        if not path.is_file():
            raise StructureInputError(f"no such file: {str(path)!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return Structure.from_file(path)
            except Exception as exc:
                raise StructureInputError(
                    f"unreadable structure file {path.name!r}: {_short(exc)}"
                ) from exc
    if _is_ase_atoms(item):
        from pymatgen.io.ase import AseAtomsAdaptor

        if not np.all(item.pbc) or abs(item.cell.volume) < 1e-8:
            raise StructureInputError(
                "ASE Atoms without a periodic 3-D cell (pbc must be True on all axes and the "
                "cell volume non-zero); a crystal graph needs a lattice"
            )
        try:
            return AseAtomsAdaptor.get_structure(item)
        except Exception as exc:
            raise StructureInputError(f"ASE Atoms could not be converted: {_short(exc)}") from exc
    kind = type(item).__name__
    raise StructureInputError(
        f"not a structure: got {kind}; expected a pymatgen Structure, ASE Atoms, a "
        "Structure.as_dict() dict, a CIF path or CIF text"
    )


def _is_ase_atoms(item: Any) -> bool:
    cls = type(item)
    return any(
        c.__name__ == "Atoms" and c.__module__.startswith("ase") for c in cls.__mro__
    )


def _item_id(item: Any, label: Any = None) -> str | None:
    if label is not None:
        return str(label)
    if isinstance(item, IStructure):  # the common case first
        props = item.properties
        if props:
            for key in ("material_id", "id", "name"):
                if props.get(key) is not None:
                    return str(props[key])
        return None
    if isinstance(item, os.PathLike) or (
        isinstance(item, str) and not _looks_like_cif_text(item)
    ):
        return Path(item).name
    if isinstance(item, str):  # CIF text: its data_ block name
        for line in item.splitlines():
            line = line.strip()
            if line.startswith("data_"):
                return line[5:] or None
        return None
    props = getattr(item, "properties", None)
    if isinstance(props, dict):
        for key in ("material_id", "id", "name"):
            if props.get(key) is not None:
                return str(props[key])
    return None


def _as_items(X: Any) -> tuple[list, list | None]:
    """Flatten the accepted containers into a list of items and optional index labels."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        if "structure" not in X.columns:
            raise ValueError(
                "a DataFrame input needs a 'structure' column; got columns "
                f"{list(X.columns)[:10]}"
            )
        X = X["structure"]
    if pd is not None and isinstance(X, pd.Series):
        labels = None if isinstance(X.index, pd.RangeIndex) else list(X.index)
        return list(X.to_numpy(dtype=object)), labels
    if isinstance(X, IStructure | dict | str | bytes | os.PathLike) or _is_ase_atoms(X):
        raise ValueError(
            f"expected a collection of structures, got a single {type(X).__name__}; "
            "wrap it in a list"
        )
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"expected a 1-D array of structures, got shape {X.shape}")
        return list(X), None
    if isinstance(X, Sequence) or hasattr(X, "__iter__"):
        return list(X), None
    raise ValueError(f"expected a collection of structures, got {type(X).__name__}")


def item_ids(X: Any) -> list[str | None]:
    """Identifiers of the items of ``X`` (file names, index labels, ``properties['id']``)."""
    items, labels = _as_items(X)
    if labels is None:
        labels = [None] * len(items)
    return [_item_id(it, lab) for it, lab in zip(items, labels, strict=True)]


def coerce_structures(X: Any) -> tuple[list[Structure | Exception], list[str | None]]:
    """Convert a collection of inputs, keeping failures in place.

    Parameters
    ----------
    X : list, tuple, ndarray, pandas Series or DataFrame
        Items accepted by :func:`to_structure`; a DataFrame must have a ``structure`` column.

    Returns
    -------
    structures : list of (Structure or Exception)
        One entry per item, in order; an item that could not be converted is replaced by the
        exception describing why.
    ids : list of (str or None)
        An identifier per item when one is known: the file name of a path, the index label of
        a pandas input (unless it is a plain ``RangeIndex``), the ``data_`` name of CIF text,
        or ``structure.properties['material_id' | 'id' | 'name']``.

    Raises
    ------
    ValueError
        If ``X`` is not a collection (a single structure, for example) or is empty.
    """
    items, labels = _as_items(X)
    if len(items) == 0:
        raise ValueError("empty input: no structures to featurize")
    if labels is None:
        labels = [None] * len(items)
    out: list[Structure | Exception] = []
    ids: list[str | None] = []
    for item, label in zip(items, labels, strict=True):
        ids.append(_item_id(item, label))
        try:
            out.append(to_structure(item))
        except StructureInputError as exc:
            out.append(exc)
    return out, ids


def structure_key(structure: Structure, *, lattice: np.ndarray | None = None,
                  cart: np.ndarray | None = None, species: Sequence | None = None) -> str:
    """Content hash of a structure: lattice, Cartesian coordinates, periodicity, species.

    Two structures with the same key give the same graphs and the same features, whatever
    object holds them; the caches of the featurizer and the baselines are keyed by it.
    Species are compared as pymatgen writes them, oxidation states and occupancies included.
    A caller that has already read ``lattice.matrix``, ``cart_coords`` or ``species`` (of
    an ordered structure) passes them, so that pymatgen builds them once.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from cgcnn_sk.graph._structures import structure_key
    >>> a = Structure(Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> b = Structure(Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> structure_key(a) == structure_key(b), structure_key(a) == structure_key(b * 2)
    (True, False)
    """
    lattice = structure.lattice.matrix if lattice is None else lattice
    cart = structure.cart_coords if cart is None else cart
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(lattice, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(cart, dtype=np.float64).tobytes())
    h.update(bytes(bool(p) for p in structure.lattice.pbc))
    try:
        text = "|".join(map(str, structure.species if species is None else species))
    except AttributeError:  # a disordered site: compositions, occupancies included
        text = "#" + "|".join(str(site.species) for site in structure)
    h.update(text.encode())
    return h.hexdigest()
