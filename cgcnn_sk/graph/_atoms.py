"""Atom feature tables.

A table is a float32 array of shape ``(MAX_Z + 1, n_features)`` whose row ``Z`` is the feature
vector of element ``Z`` (row 0 is unused and zero). Which elements a table actually defines is
returned beside it by :func:`load_atom_table` (``return_elements=True``); the featurizer refuses
structures containing any other element.

Encodings
---------
``"cgcnn"``
    The 92-dimensional one-hot encoding of the reference CGCNN (Xie & Grossman, PRL 120,
    145301, 2018), shipped unchanged as ``cgcnn_sk/data/atom_init.json`` (MIT, see
    ``cgcnn_sk/data/README.md``). Nine segments: group, period, electronegativity, covalent
    radius, valence electrons, first ionisation energy, electron affinity, block, atomic
    volume.
``"onehot"``
    Plain one-hot of the atomic number, Z = 1..100 (100 features).
path
    Any ``atom_init.json``-style file: a JSON object ``{"Z": [features...]}``.
dict
    ``{Z: vector}`` with integer (or integer-string) keys and equal-length vectors.

:func:`build_cgcnn_table` rebuilds a table of the CGCNN kind from pymatgen's element data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ATOM_DTYPE",
    "CGCNN_SEGMENTS",
    "MAX_Z",
    "build_cgcnn_table",
    "compare_tables",
    "load_atom_table",
]

#: dtype of every atom table.
ATOM_DTYPE = np.float32
#: Largest atomic number a table may hold.
MAX_Z = 100


def _table_from_mapping(mapping: Mapping[Any, Any], source: str) -> tuple[np.ndarray, np.ndarray]:
    if len(mapping) == 0:
        raise ValueError(f"atom feature table {source} is empty")
    rows: dict[int, np.ndarray] = {}
    width = None
    for key, vec in mapping.items():
        try:
            z = int(key)
        except (TypeError, ValueError):
            raise ValueError(
                f"atom feature table {source}: key {key!r} is not an atomic number"
            ) from None
        if not 1 <= z <= MAX_Z:
            raise ValueError(
                f"atom feature table {source}: atomic number {z} outside 1..{MAX_Z}"
            )
        arr = np.asarray(vec, dtype=np.float64).ravel()
        if width is None:
            width = arr.shape[0]
        elif arr.shape[0] != width:
            raise ValueError(
                f"atom feature table {source}: element Z={z} has {arr.shape[0]} features, "
                f"others have {width}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"atom feature table {source}: element Z={z} has non-finite values")
        rows[z] = arr
    if not width:
        raise ValueError(f"atom feature table {source} has zero-length vectors")
    table = np.zeros((MAX_Z + 1, width), dtype=ATOM_DTYPE)
    elements = np.array(sorted(rows), dtype=np.int16)
    for z in elements:
        table[z] = rows[int(z)]
    return table, elements


@lru_cache(maxsize=8)
def _load_json(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"atom feature file {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"atom feature file {path!r} must hold a JSON object {{Z: vector}}")
    return _table_from_mapping(data, repr(os.path.basename(path)))


def _cgcnn_path() -> str:
    return str(resources.files("cgcnn_sk").joinpath("data", "atom_init.json"))


def load_atom_table(
    spec: str | os.PathLike | Mapping | np.ndarray = "cgcnn", *, return_elements: bool = False
):
    """Load an atom feature table.

    Parameters
    ----------
    spec : {"cgcnn", "onehot"}, path, dict or ndarray, default="cgcnn"
        ``"cgcnn"``: the reference 92-dim encoding; ``"onehot"``: one-hot of Z = 1..100;
        a path to an ``atom_init.json``-style JSON file; a dict ``{Z: vector}``; or an array of
        shape ``(MAX_Z + 1, n_features)`` whose row Z is element Z (rows that are all zero count
        as undefined).
    return_elements : bool, default=False
        Also return the sorted atomic numbers the table defines.

    Returns
    -------
    table : ndarray of shape (MAX_Z + 1, n_features), float32
        Row Z is the vector of element Z; rows of undefined elements are zero.
    elements : ndarray of int16
        Only when ``return_elements=True``.

    Examples
    --------
    >>> from cgcnn_sk import load_atom_table
    >>> table = load_atom_table("cgcnn")
    >>> table.shape, table.dtype.name
    ((101, 92), 'float32')
    >>> int(table[11].sum())  # Na: one hot entry in each of the nine segments
    9
    """
    if isinstance(spec, str) and spec == "cgcnn":
        table, elements = _load_json(_cgcnn_path(), 0.0)
    elif isinstance(spec, str) and spec == "onehot":
        table = np.zeros((MAX_Z + 1, MAX_Z), dtype=ATOM_DTYPE)
        table[np.arange(1, MAX_Z + 1), np.arange(MAX_Z)] = 1.0
        elements = np.arange(1, MAX_Z + 1, dtype=np.int16)
    elif isinstance(spec, Mapping):
        table, elements = _table_from_mapping(spec, "(dict)")
    elif isinstance(spec, np.ndarray):
        if spec.ndim != 2 or spec.shape[0] != MAX_Z + 1 or spec.shape[1] == 0:
            raise ValueError(
                f"an atom table array must have shape ({MAX_Z + 1}, n_features), got {spec.shape}"
            )
        if not np.all(np.isfinite(spec)):
            raise ValueError("atom table array has non-finite values")
        table = spec.astype(ATOM_DTYPE, copy=True)
        elements = np.flatnonzero(np.any(table != 0, axis=1)).astype(np.int16)
        elements = elements[elements > 0]
        table[0] = 0.0
    elif isinstance(spec, str | os.PathLike):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(
                f"atom_features={str(spec)!r} is neither 'cgcnn', 'onehot' nor an existing "
                "atom_init.json-style file"
            )
        table, elements = _load_json(str(path.resolve()), path.stat().st_mtime)
    else:
        raise ValueError(
            "atom_features must be 'cgcnn', 'onehot', a path to an atom_init.json-style file, "
            f"a dict {{Z: vector}} or an array; got {type(spec).__name__}"
        )
    table = table.copy()  # callers own their copy; the lru_cache keeps the original
    table.flags.writeable = False
    if return_elements:
        return table, elements.copy()
    return table


# --------------------------------------------------------------------------------------------
# Rebuilding the CGCNN encoding from element properties
# --------------------------------------------------------------------------------------------

#: The nine segments of the CGCNN encoding as (name, number of columns), in column order.
CGCNN_SEGMENTS: tuple[tuple[str, int], ...] = (
    ("group", 19),
    ("period", 7),
    ("electronegativity", 10),
    ("covalent_radius", 10),
    ("valence_electrons", 12),
    ("first_ionization_energy", 10),
    ("electron_affinity", 10),
    ("block", 4),
    ("atomic_volume", 10),
)


def _one_hot_bin(value: float | None, edges: np.ndarray) -> int | None:
    """Index of the bin of ``value`` for bins ``(edges[i], edges[i+1]]``, clipped to the ends."""
    if value is None or not np.isfinite(value):
        return None
    i = int(np.searchsorted(edges, value, side="left")) - 1
    return min(max(i, 0), len(edges) - 2)


#: Continuous properties of the CGCNN encoding: (segment, low, high, log scale) for 10 equal bins,
#: the ranges of the CGCNN paper's supplementary table (values outside are clipped to the ends).
_CGCNN_BINS = {
    "electronegativity": (0.5, 4.0, False),  # Pauling
    "covalent_radius": (25.0, 250.0, False),  # pm
    "first_ionization_energy": (1.3, 3.3, True),  # ln(eV)
    "electron_affinity": (-3.0, 3.7, False),  # eV
    "atomic_volume": (1.5, 4.3, True),  # ln(cm^3/mol)
}


def _element_properties(z: int) -> dict:
    """The nine CGCNN properties of element ``z`` from pymatgen's element data (None: unknown)."""
    import warnings

    from pymatgen.core.periodic_table import Element

    el = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about missing data (NaN returned)
        x = float(el.X)
        ie = el.ionization_energies[0] if el.ionization_energies else None
        ea = el.electron_affinity
        vol = el.molar_volume
        radius = el.atomic_radius  # empirical (Slater) radius: the closest pymatgen has
    f_block = el.block == "f"
    group = 0 if f_block else int(el.group)  # the encoding puts La-Yb, Ac-No in "group 0"
    if f_block or z == 2:  # f-block: the encoding counts the two outer s electrons
        valence = 2
    elif group <= 12:
        valence = group
    else:
        valence = group - 10
    block = {"s": 0, "p": 1, "d": 2, "f": 3}[el.block]
    if z == 2:
        block = 0  # helium: 1s2
    return {
        "group": group,
        "period": int(el.row) - 1,
        "electronegativity": x if np.isfinite(x) else None,
        "covalent_radius": float(radius) * 100.0 if radius is not None else None,
        "valence_electrons": valence - 1,
        "first_ionization_energy": float(ie) if ie else None,
        "electron_affinity": float(ea) if ea is not None and np.isfinite(ea) else None,
        "block": block,
        "atomic_volume": float(vol) if vol is not None else None,
    }


def build_cgcnn_table() -> np.ndarray:
    """Build a CGCNN-style 92-dim one-hot atom table from pymatgen's element data.

    Each element gets one hot entry per segment of :data:`CGCNN_SEGMENTS`: group (0 for the
    f-block La-Yb / Ac-No, else 1-18), period, number of valence electrons (1-12), block
    (s, p, d, f), and five continuous properties put in 10 equal bins over the ranges of the
    CGCNN paper's supplementary table -- Pauling electronegativity 0.5-4.0, radius 25-250 pm,
    ln(first ionisation energy / eV) 1.3-3.3, electron affinity -3 to 3.7 eV,
    ln(molar volume / cm^3 mol^-1) 1.5-4.3. A segment stays all-zero where pymatgen has no
    value. pymatgen has no covalent radii, so its empirical atomic radius stands in.

    The shipped ``atom_init.json`` stays the default (reference checkpoints need it exactly);
    :func:`compare_tables` measures how close this rebuild is (the tests check which segments
    are exact and how close the binned ones come).

    Returns
    -------
    table : ndarray of shape (MAX_Z + 1, 92), float32
    """
    width = sum(n for _, n in CGCNN_SEGMENTS)
    table = np.zeros((MAX_Z + 1, width), dtype=ATOM_DTYPE)
    for z in range(1, MAX_Z + 1):
        props = _element_properties(z)
        start = 0
        for name, size in CGCNN_SEGMENTS:
            value = props[name]
            if name in _CGCNN_BINS and value is not None:
                lo, hi, log = _CGCNN_BINS[name]
                if log:
                    value = np.log(value) if value > 0 else None
                idx = _one_hot_bin(value, np.linspace(lo, hi, size + 1))
            else:
                idx = value
            if idx is not None and 0 <= idx < size:
                table[z, start + idx] = 1.0
            start += size
    return table


def compare_tables(a: np.ndarray, b: np.ndarray, elements: np.ndarray | None = None) -> dict:
    """Count matching entries of two atom tables over Z = 1..100 (or ``elements``).

    Returns
    -------
    summary : dict
        ``n_entries``, ``n_equal`` (entries equal), ``n_rows_equal`` (elements whose whole
        vector is equal) and ``per_segment`` (equal entries per CGCNN segment) when the tables
        have 92 columns.
    """
    if elements is None:
        elements = np.arange(1, MAX_Z + 1)
    a = np.asarray(a)[elements]
    b = np.asarray(b)[elements]
    eq = a == b
    out = {
        "n_entries": int(eq.size),
        "n_equal": int(eq.sum()),
        "n_rows_equal": int(eq.all(axis=1).sum()),
    }
    if a.shape[1] == sum(n for _, n in CGCNN_SEGMENTS):
        start = 0
        per = {}
        for name, n in CGCNN_SEGMENTS:
            seg = slice(start, start + n)
            per[name] = {
                "entries_equal": int(eq[:, seg].sum()),
                "elements_equal": int(eq[:, seg].all(axis=1).sum()),
            }
            start += n
        out["per_segment"] = per
    return out
