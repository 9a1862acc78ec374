"""Shared fixtures: small hand-built crystals with hand-computable geometry.

Fixture names are a contract used by every test module: ``nacl_conventional``,
``nacl_primitive``, ``diamond``, ``small_structures`` (and ``small``, the same built once per
module for the end-to-end tests) and ``shared_data``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Element, Lattice, Structure

#: NaCl lattice constant used by the fixtures, Angstrom (Na-Cl = A_NACL / 2 = 2.82).
A_NACL = 5.64
#: Diamond lattice constant, Angstrom (C-C = A_DIAMOND * sqrt(3) / 4 = 1.5445).
A_DIAMOND = 3.567

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``<repo>/../shared/data``; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


def make_nacl_conventional(a: float = A_NACL) -> Structure:
    """Rock-salt NaCl, cubic 8-atom cell: Na at sites 0, 2, 4, 6 and Cl at 1, 3, 5, 7."""
    na = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    cl = [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]]
    coords = [c for pair in zip(na, cl, strict=True) for c in pair]
    return Structure(Lattice.cubic(a), ["Na", "Cl"] * 4, coords)


def make_nacl_primitive(a: float = A_NACL) -> Structure:
    """Rock-salt NaCl, 2-atom fcc primitive cell: Na (site 0) at the origin, Cl (site 1)."""
    h = a / 2
    lattice = Lattice([[0, h, h], [h, 0, h], [h, h, 0]])
    return Structure(lattice, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def make_diamond(a: float = A_DIAMOND, element: str = "C") -> Structure:
    """Diamond, 2-atom fcc primitive cell; every atom has 4 neighbours at a*sqrt(3)/4."""
    h = a / 2
    lattice = Lattice([[0, h, h], [h, 0, h], [h, h, 0]])
    return Structure(lattice, [element, element], [[0, 0, 0], [0.25, 0.25, 0.25]])


@pytest.fixture
def nacl_conventional() -> Structure:
    return make_nacl_conventional()


@pytest.fixture
def nacl_primitive() -> Structure:
    return make_nacl_primitive()


@pytest.fixture
def diamond() -> Structure:
    return make_diamond()


def _radius(symbol: str) -> float:
    return float(Element(symbol).atomic_radius)


def make_small_structures() -> tuple[list[Structure], np.ndarray]:
    """20 small crystals of 6 prototypes and the volume per atom (Angstrom^3) of each.

    Lattice constants come from pymatgen's atomic radii (nearest-neighbour distance = sum of
    the two radii), so the structures are plausible and fully deterministic, and the target
    (``structure.volume / len(structure)``) is a physical quantity a graph model can learn
    from the bond lengths.
    """
    out: list[Structure] = []

    def fcc_prim(a):
        h = a / 2
        return Lattice([[0, h, h], [h, 0, h], [h, h, 0]])

    for a_el, b_el in [("Na", "Cl"), ("K", "Br"), ("Mg", "O"), ("Li", "F"), ("Ca", "S")]:
        d = _radius(a_el) + _radius(b_el)  # rock salt: nn = a/2
        out.append(Structure(fcc_prim(2 * d), [a_el, b_el], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    for a_el, b_el in [("Cs", "Cl"), ("Cs", "I"), ("Tl", "Br")]:
        d = _radius(a_el) + _radius(b_el)  # CsCl: nn = a*sqrt(3)/2
        out.append(
            Structure(Lattice.cubic(2 * d / np.sqrt(3)), [a_el, b_el], [[0, 0, 0], [0.5] * 3])
        )
    for a_el, b_el in [("Ga", "As"), ("Zn", "S"), ("In", "P"), ("Si", "Si")]:
        d = _radius(a_el) + _radius(b_el)  # zinc blende / diamond: nn = a*sqrt(3)/4
        a = 4 * d / np.sqrt(3)
        out.append(Structure(fcc_prim(a), [a_el, b_el], [[0, 0, 0], [0.25] * 3]))
    for el in ["Cu", "Al", "Ni"]:
        a = 2 * np.sqrt(2) * _radius(el)  # fcc: nn = a/sqrt(2)
        out.append(Structure(fcc_prim(a), [el], [[0, 0, 0]]))
    for el in ["Fe", "W"]:
        a = 4 * _radius(el) / np.sqrt(3)  # bcc conventional: nn = a*sqrt(3)/2
        out.append(Structure(Lattice.cubic(a), [el, el], [[0, 0, 0], [0.5] * 3]))
    for a_el, b_el in [("Sr", "Ti"), ("Ba", "Ti"), ("Ca", "Zr")]:
        a = 2 * (_radius(b_el) + _radius("O"))  # cubic perovskite: B-O = a/2
        out.append(
            Structure(
                Lattice.cubic(a),
                [a_el, b_el, "O", "O", "O"],
                [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
            )
        )
    y = np.array([s.volume / len(s) for s in out])
    return out, y


@pytest.fixture
def small_structures() -> tuple[list[Structure], np.ndarray]:
    """``(structures, y)``: 20 varied small crystals and their volume per atom (A^3)."""
    return make_small_structures()


@pytest.fixture(scope="module")
def small() -> tuple[list[Structure], np.ndarray]:
    """:func:`small_structures`, built once per module (the end-to-end tests only read it)."""
    return make_small_structures()
