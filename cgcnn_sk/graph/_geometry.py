"""Geometry that no crystal has: found before the neighbour search, or from its result.

Checked for every structure the featurizer reads (:func:`cell_problem`, before the search,
which such a cell could make explode or return nonsense) and for every neighbour list it
builds (:func:`contact_problem`):

========================================  =======  ==========================================
Case                                      Outcome  Why
========================================  =======  ==========================================
NaN or infinite lattice entry             error    nothing can be computed from it
NaN or infinite site coordinate           error    same
lattice vectors coplanar (volume ~ 0)     error    no periodic cell; the search would not end
more than 1 atom per cubic Angstrom       error    the densest solids hold about 0.18 (diamond);
                                                   the search would find millions of pairs
two atoms (or an atom and its own         error    a duplicated site, or a cell too small
periodic image) closer than 0.5 A                  for its sites; no bond is that short
nearest atoms between 0.5 and 0.7 A       warning  shorter than any bond but H-H (0.74 A):
                                                   most likely an error in the structure
========================================  =======  ==========================================

An atom with no neighbour within the radius is already an error of the featurizer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SuspiciousGeometryWarning", "cell_problem", "contact_problem"]

#: Atoms closer than this (Angstrom) are an error: a duplicated site or a cell too small.
MIN_DISTANCE = 0.5
#: Nearest atoms closer than this (Angstrom, and not closer than MIN_DISTANCE) are a warning.
WARN_DISTANCE = 0.7
#: Atoms per cubic Angstrom above which a cell is an error (diamond: 0.176).
MAX_DENSITY = 1.0
#: |det| / (|a| |b| |c|) below which the lattice vectors count as coplanar.
MIN_SINE = 1e-6


class SuspiciousGeometryWarning(UserWarning):
    """Structures were featurized whose geometry is unlikely for a real crystal.

    The message lists them (position, id, the two sites and their distance).
    """


def _symbol(z) -> str:
    from pymatgen.core.periodic_table import Element

    return Element.from_Z(int(z)).symbol


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(values, dtype=float).ravel()) + "]"


def cell_problem(lattice: np.ndarray, cart: np.ndarray, numbers, pbc=(True, True, True)
                 ) -> str | None:
    """What makes a cell impossible, in words, or ``None``.

    Parameters
    ----------
    lattice : ndarray of shape (3, 3)
        Lattice vectors as rows, Angstrom.
    cart : ndarray of shape (n_atoms, 3)
        Cartesian coordinates.
    numbers : sequence of int
        The sites' atomic numbers, for the message.
    pbc : tuple of 3 bool
        Periodicity; the density is checked only for a cell periodic in 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> cell_problem(np.eye(3) * 3.0, np.zeros((1, 3)), [29]) is None
    True
    >>> cell_problem(np.eye(3) * 3.0, np.array([[0.0, np.nan, 0.0]]), [29])
    'site 0 (Cu) has a non-finite coordinate: cartesian [0, nan, 0]'
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    if not np.isfinite(lattice).all():
        lengths = np.sqrt((lattice**2).sum(axis=1))
        return (f"the lattice is not finite (NaN or infinite): vectors {_fmt(lattice[0])}, "
                f"{_fmt(lattice[1])}, {_fmt(lattice[2])}; lengths a, b, c = {_fmt(lengths)}")
    cart = np.asarray(cart, dtype=np.float64).reshape(-1, 3)
    bad = np.flatnonzero(~np.isfinite(cart).all(axis=1))
    if bad.size:
        i = int(bad[0])
        more = f" ({bad.size} such sites)" if bad.size > 1 else ""
        return (f"site {i} ({_symbol(numbers[i])}) has a non-finite coordinate: cartesian "
                f"{_fmt(cart[i])}{more}")
    lengths = np.sqrt((lattice**2).sum(axis=1))
    volume = abs(float(np.linalg.det(lattice)))
    if lengths.min() == 0 or volume <= MIN_SINE * float(np.prod(lengths)):
        return (f"the lattice vectors are coplanar or zero (volume {volume:.3g} A^3, lengths "
                f"a, b, c = {_fmt(lengths)}): not a periodic cell")
    density = len(cart) / volume
    if all(pbc) and density > MAX_DENSITY:
        return (f"{len(cart)} atoms in a cell of {volume:.4g} A^3 ({density:.3g} atoms/A^3; "
                "the densest solids hold about 0.18): the lattice is too small for its sites "
                "(lengths in Bohr or nm instead of Angstrom?)")
    return None


def contact_problem(nbr_index: np.ndarray, nbr_dist: np.ndarray, numbers
                    ) -> tuple[str | None, str | None]:
    """``(error, warning)`` from the sorted neighbour lists: atoms too close, in words.

    The first column of the lists is every atom's nearest neighbour, periodic images of itself
    included, so one look covers duplicated sites and cells shorter than a bond.
    """
    if nbr_index.size == 0:
        return None, None
    nearest = np.where(nbr_index[:, 0] >= 0, nbr_dist[:, 0], np.inf)
    i = int(np.argmin(nearest))
    d = float(nearest[i])
    if d >= WARN_DISTANCE:
        return None, None
    j = int(nbr_index[i, 0])
    other = "its own periodic image" if i == j else f"site {j} ({_symbol(numbers[j])})"
    text = f"site {i} ({_symbol(numbers[i])}) and {other} are {d:.3f} A apart"
    if d < MIN_DISTANCE:
        n = int((nearest < MIN_DISTANCE).sum())
        more = f" ({n} atoms that close)" if n > 2 else ""
        hint = ("a lattice vector shorter than a bond" if i == j
                else "a duplicated site, e.g. from a CIF's symmetry operations")
        return (f"{text}{more}: no crystal has atoms closer than {MIN_DISTANCE} A ({hint}?)",
                None)
    return None, f"{text}, shorter than any bond but H-H (0.74 A)"
