"""Geometry that cannot be a crystal: an error naming the problem, or a warning.

Each case goes through ``CrystalGraphFeaturizer.transform`` beside a good structure, which must
still be featurized (the error lists the bad item only).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import make_nacl_primitive
from pymatgen.core import DummySpecies, Lattice, Species, Structure

from cgcnn_sk import CrystalGraphError, CrystalGraphFeaturizer
from cgcnn_sk.graph import SuspiciousGeometryWarning
from cgcnn_sk.graph._geometry import cell_problem, contact_problem


def _nacl(coords=((0, 0, 0), (0.5, 0.5, 0.5)), lattice=None, species=("Na", "Cl")):
    return Structure(lattice if lattice is not None else Lattice.cubic(4.0), list(species),
                     [list(c) for c in coords])


CASES = {
    "nan fractional coordinate": (
        lambda: _nacl(coords=((0, 0, 0), (np.nan, 0.5, 0.5))),
        r"site 1 \(Cl\) has a non-finite coordinate: cartesian \[nan"),
    "infinite coordinate": (
        lambda: _nacl(coords=((0, 0, np.inf), (0.5, 0.5, 0.5))),
        r"site 0 \(Na\) has a non-finite coordinate"),
    "infinite lattice length": (
        lambda: _nacl(lattice=Lattice.from_parameters(np.inf, 4, 4, 90, 90, 90)),
        r"the lattice is not finite \(NaN or infinite\).*lengths a, b, c = \[inf, 4, 4\]"),
    "nan lattice angle": (
        lambda: _nacl(lattice=Lattice.from_parameters(4, 4, 4, np.nan, 90, 90)),
        r"the lattice is not finite"),
    "dummy species": (
        lambda: _nacl(species=(DummySpecies("X"), "Cl")),
        r"species X0\+ is a placeholder \(pymatgen DummySpecies\), not a chemical element"),
    "dummy species with an oxidation state": (
        lambda: _nacl(species=("Na", DummySpecies("Xa", 2))),
        r"species Xa2\+ is a placeholder"),
    "coplanar lattice vectors": (
        lambda: _nacl(lattice=Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 0]])),
        r"the lattice vectors are coplanar or zero \(volume 0 A\^3"),
    "a zero lattice vector": (
        lambda: _nacl(lattice=Lattice([[4, 0, 0], [0, 0, 0], [0, 0, 4]])),
        r"coplanar or zero"),
    "lattice in nm instead of Angstrom": (
        lambda: _nacl(lattice=Lattice.cubic(0.4)),
        r"2 atoms in a cell of 0.064 A\^3 \(31.2 atoms/A\^3.*too small for its sites"),
    "a site given twice": (
        lambda: _nacl(coords=((0, 0, 0), (0, 0, 0), (0.5, 0.5, 0.5)), species=("Na", "Na", "Cl")),
        r"site 0 \(Na\) and site 1 \(Na\) are 0.000 A apart: no crystal has atoms closer than "
        r"0.5 A \(a duplicated site"),
    "overlapping atoms": (
        lambda: _nacl(coords=((0, 0, 0), (0.05, 0, 0), (0.5, 0.5, 0.5)),
                      species=("Na", "Cl", "Cl")),
        r"site 0 \(Na\) and site 1 \(Cl\) are 0.200 A apart"),
    "a lattice vector shorter than a bond": (
        lambda: Structure(Lattice.orthorhombic(0.3, 10, 10), ["Na"], [[0, 0, 0]]),
        r"site 0 \(Na\) and its own periodic image are 0.300 A apart.*lattice vector shorter"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_geometry_that_cannot_be_a_crystal_is_an_error_naming_it(name):
    make, message = CASES[name]
    good = make_nacl_primitive()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pymatgen's own, on NaN input
        bad = make()
        with pytest.raises(CrystalGraphError, match=r"1 of 2 structures") as info:
            CrystalGraphFeaturizer().fit_transform([good, bad])
    (pos, _, text), = info.value.errors
    assert pos == 1
    assert __import__("re").search(message, text), text
    assert "without any neighbour" not in text  # not the wrong explanation


def test_atoms_closer_than_any_bond_but_not_impossible_warn_once():
    h2 = _nacl(coords=((0, 0, 0), (0.15, 0, 0), (0.5, 0.5, 0.5)), species=("H", "H", "Cl"))
    h2b = _nacl(coords=((0, 0, 0), (0, 0.16, 0), (0.5, 0.5, 0.5)), species=("H", "H", "Cl"))
    with pytest.warns(SuspiciousGeometryWarning) as rec:
        graphs = CrystalGraphFeaturizer().fit_transform([make_nacl_primitive(), h2, h2b])
    assert len(rec) == 1
    text = str(rec[0].message)
    assert text.startswith("2 of 3 structures have atoms closer than any real bond:")
    assert "item 1: site 0 (H) and site 1 (H) are 0.600 A apart" in text
    assert "item 2: site 0 (H) and site 1 (H) are 0.640 A apart" in text
    assert len(graphs) == 3 and graphs[1].nbr_dist[0, 0] == pytest.approx(0.6)


def test_real_crystals_pass_silently(small_structures):
    structures, _ = small_structures
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CrystalGraphFeaturizer().fit_transform(structures)


def test_charged_species_are_their_elements():
    s = _nacl(species=(Species("Na", 1), Species("Cl", -1)))
    assert CrystalGraphFeaturizer().fit_transform([s])[0].numbers.tolist() == [11, 17]


def test_the_checks_on_arrays():
    assert cell_problem(np.eye(3) * 4, np.zeros((2, 3)), [11, 17], pbc=(True, True, False)) \
        is None  # a slab: the density does not count
    idx = np.array([[1, 1], [0, 0]])
    dist = np.array([[0.55, 1.0], [0.55, 1.0]], dtype=np.float32)
    error, warning = contact_problem(idx, dist, [1, 1])
    assert error is None and warning.startswith("site 0 (H) and site 1 (H) are 0.550 A apart")
    assert contact_problem(idx, dist + 0.2, [1, 1]) == (None, None)
    assert contact_problem(np.full((2, 2), -1), np.zeros((2, 2)), [1, 1]) == (None, None)
