"""Neighbour search and graph containers, checked against hand-computed crystals and pymatgen."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pymatgen.util
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.utils import _safe_indexing

from cgcnn_sk.graph import _crystal as _graph
from cgcnn_sk.graph._atoms import load_atom_table
from cgcnn_sk.graph._crystal import (
    CrystalGraph,
    CrystalGraphs,
    find_neighbors,
    find_neighbors_batch,
    gaussian_centers,
    nearest_distance,
)

A = 5.64  # NaCl, as in conftest


def search(s: Structure, radius: float = 8.0, m: int = 12):
    return find_neighbors(s.lattice.matrix, s.cart_coords, radius, m)


def test_gaussian_centers_reference_count():
    mu = gaussian_centers(0.0, 0.2, 8.0)
    assert mu.shape == (41,) and mu.dtype == np.float32
    assert mu[0] == 0.0 and mu[-1] == pytest.approx(8.0)
    assert len(gaussian_centers(0.5, 0.5, 6.0)) == 12


def test_nacl_primitive_six_bonds_to_the_same_cl(nacl_primitive):
    idx, dist = search(nacl_primitive)
    assert idx.dtype == np.int32 and dist.dtype == np.float32 and idx.shape == (2, 12)
    # Na (site 0): 6 Cl at a/2, all the single Cl site (index 1) through different images
    assert idx[0, :6].tolist() == [1] * 6
    np.testing.assert_allclose(dist[0, :6], A / 2, atol=1e-6)
    # next shell: 12 Na at a/sqrt(2), all periodic images of the Na site itself; 6 fit in M=12
    assert idx[0, 6:].tolist() == [0] * 6
    np.testing.assert_allclose(dist[0, 6:], A / np.sqrt(2), atol=1e-5)
    assert idx[1, :6].tolist() == [0] * 6  # and Cl sees Na


def test_nacl_conventional_shells(nacl_conventional):
    idx, dist = search(nacl_conventional)
    numbers = np.array(nacl_conventional.atomic_numbers)
    for site in range(8):
        np.testing.assert_allclose(dist[site, :6], A / 2, atol=1e-6)
        np.testing.assert_allclose(dist[site, 6:], A / np.sqrt(2), atol=1e-5)
        # first shell: the other element; second shell: the same element
        assert (numbers[idx[site, :6]] != numbers[site]).all()
        assert (numbers[idx[site, 6:]] == numbers[site]).all()
    # in the conventional cell the 6 nearest Cl of Na(0) are 3 distinct sites, twice each
    assert sorted(Counter(idx[0, :6].tolist()).values()) == [2, 2, 2]


def test_gaussian_expansion_peaks_at_nearest_centre(nacl_primitive):
    _, dist = search(nacl_primitive)
    mu = gaussian_centers(0.0, 0.2, 8.0)
    g = np.exp(-((dist[0, 0] - mu) ** 2) / 0.2**2)
    assert g.shape == (41,)
    assert int(np.argmax(g)) == 14 and mu[14] == pytest.approx(2.8)
    assert g[14] == pytest.approx(np.exp(-((2.82 - 2.8) ** 2) / 0.04), rel=1e-5)


def test_diamond_four_neighbours(diamond):
    idx, dist = search(diamond, radius=2.0)
    a = 3.567
    assert (idx[:, :4] >= 0).all() and (idx[:, 4:] == -1).all()
    np.testing.assert_allclose(dist[:, :4], a * np.sqrt(3) / 4, atol=1e-6)
    assert (dist[:, 4:] == 0.0).all()
    assert idx[0, :4].tolist() == [1, 1, 1, 1]


def test_padding_and_simple_cubic_shells():
    s = Structure(Lattice.cubic(3.0), ["Po"], [[0, 0, 0]])
    idx, dist = search(s, radius=4.5, m=30)
    n_real = 6 + 12  # 6 at a, 12 at a*sqrt(2); the 8 at a*sqrt(3) = 5.196 are out of range
    assert (idx[0, :n_real] == 0).all() and (idx[0, n_real:] == -1).all()
    np.testing.assert_allclose(dist[0, :6], 3.0, atol=1e-6)
    np.testing.assert_allclose(dist[0, 6:n_real], 3.0 * np.sqrt(2), atol=1e-6)
    assert (dist[0, n_real:] == 0.0).all()


def test_isolated_atom_and_nearest_distance(nacl_primitive):
    idx, dist = search(nacl_primitive, radius=2.0)
    assert (idx == -1).all() and (dist == 0).all()
    d = nearest_distance(nacl_primitive.lattice.matrix, nacl_primitive.cart_coords, 0, 2.0)
    assert d == pytest.approx(A / 2, abs=1e-6)


def test_empty_structure_arrays():
    idx, dist = find_neighbors(np.eye(3) * 4, np.zeros((0, 3)), 8.0, 12)
    assert idx.shape == (0, 12) and dist.shape == (0, 12)


def test_batch_equals_one_by_one(small_structures, nacl_primitive):
    structures, _ = small_structures
    structures = [*structures, Structure(Lattice.cubic(3.0), [], []), nacl_primitive]
    items = [(s.lattice.matrix, s.cart_coords, s.lattice.pbc) for s in structures]
    # radius 3.0 leaves the NaCl atoms short of 12 (redo path) and the empty cell empty
    for radius in (8.0, 3.0):
        batch = find_neighbors_batch(items, radius, 12)
        assert len(batch) == len(structures)
        for s, (idx, dist) in zip(structures, batch, strict=True):
            idx1, dist1 = search(s, radius=radius)
            assert idx.shape == (len(s), 12)
            np.testing.assert_array_equal(idx, idx1)
            np.testing.assert_array_equal(dist, dist1)
    assert find_neighbors_batch([], 8.0, 12) == []


def _bundled_structures() -> list[tuple[str, Structure]]:
    folder = Path(pymatgen.util.__file__).parent / "structures"
    out = []
    for path in sorted(folder.glob("*.json")):
        s = Structure.from_dict(json.loads(path.read_text()))
        if s.is_ordered:
            out.append((path.stem, s))
    return out


BUNDLED = _bundled_structures()


def _assert_same_as_reference(s: Structure, idx, dist, radius: float, m: int):
    """Compare with pymatgen's per-site get_all_neighbors, sorted: the slow, obvious way."""
    all_nbrs = s.get_all_neighbors(radius, include_index=True)
    for site, nbrs in enumerate(all_nbrs):
        ref = sorted((float(nb.nn_distance), int(nb.index)) for nb in nbrs)
        k = min(m, len(ref))
        assert (idx[site, k:] == -1).all()
        ours_d = dist[site, :k].astype(float)
        ref_d = np.array([d for d, _ in ref[:k]])
        np.testing.assert_allclose(ours_d, ref_d, atol=1e-6, rtol=0)
        # exact-distance ties make the order (and, at the cut, the kept set) ambiguous:
        # group the reference's sorted list into shells of equal distance (within 1e-5) and
        # compare index multisets shell by shell; the shell cut by M must contain ours
        ref_i = [i for _, i in ref]
        all_d = np.array([d for d, _ in ref])
        bounds = np.flatnonzero(np.diff(all_d) > 1e-5) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(ref)]])
        for a, b in zip(starts, ends, strict=True):
            if a >= k:
                break
            ours = Counter(idx[site, a : min(b, k)].tolist())
            theirs = Counter(ref_i[a:b])
            if b <= k:
                assert ours == theirs, f"site {site}, shell at {all_d[a]:.4f}"
            else:
                assert not (ours - theirs), f"site {site}, cut shell at {all_d[a]:.4f}"


@pytest.mark.parametrize("name, s", BUNDLED, ids=[n for n, _ in BUNDLED])
def test_agrees_with_get_all_neighbors_on_pymatgen_structures(name, s):
    assert len(BUNDLED) >= 15
    idx, dist = search(s, radius=8.0, m=12)
    _assert_same_as_reference(s, idx, dist, 8.0, 12)


@pytest.mark.parametrize("radius, m", [(3.0, 12), (5.0, 40)])
def test_agrees_with_get_all_neighbors_short_radius_and_large_m(radius, m):
    for _, s in BUNDLED[:6]:
        idx, dist = search(s, radius=radius, m=m)
        _assert_same_as_reference(s, idx, dist, radius, m)


@pytest.mark.parametrize("factor", [0.05, 1e6])
def test_inner_radius_does_not_change_the_result(monkeypatch, factor):
    # factor 0.05: no atom has M pairs inside the inner radius, all pairs are sorted;
    # 1e6: the inner radius is the full radius. Both give the default result bit for bit,
    # order of ties included, with one search per structure.
    expected = [search(s) for _, s in BUNDLED]
    calls = []
    original = _graph._find_points_in_spheres

    def spy(all_coords, center_coords, r, **kw):
        calls.append((len(center_coords), r))
        return original(all_coords, center_coords, r=r, **kw)

    monkeypatch.setattr(_graph, "_INNER_FACTOR", factor)
    monkeypatch.setattr(_graph, "_find_points_in_spheres", spy)
    for (_, s), (idx, dist) in zip(BUNDLED, expected, strict=True):
        calls.clear()
        idx2, dist2 = search(s)
        np.testing.assert_array_equal(idx2, idx)
        np.testing.assert_array_equal(dist2, dist)
        assert calls == [(len(s), 8.0)]


def test_inner_radius_estimate(nacl_conventional):
    lattice = nacl_conventional.lattice.matrix
    r0 = _graph._inner_radius(lattice, 8, 8.0, 12)
    assert A / np.sqrt(2) < r0 < 8.0  # holds the 18 nearest, far fewer than the ~240 at 8 A


def test_same_order_as_sorted_get_all_neighbors_ties_included():
    # the reference CGCNN sorts get_all_neighbors by distance (a stable sort); with the same
    # search and a stable sort, even the choice among equidistant neighbours at the cut and
    # their order match exactly
    for _, s in BUNDLED:
        idx, dist = search(s)
        for site, nbrs in enumerate(s.get_all_neighbors(8.0)):
            ref = sorted(nbrs, key=lambda nb: nb.nn_distance)[:12]
            assert idx[site].tolist() == [nb.index for nb in ref]
            np.testing.assert_allclose(dist[site], [nb.nn_distance for nb in ref], atol=1e-6)


# ------------------------------------------------------------------------------------------
# containers
# ------------------------------------------------------------------------------------------


def _graph_of(s: Structure, m: int = 12, gid=None) -> CrystalGraph:
    idx, dist = search(s, m=m)
    return CrystalGraph(
        numbers=np.array(s.atomic_numbers, dtype=np.int16),
        nbr_index=idx,
        nbr_dist=dist,
        atom_table=load_atom_table("cgcnn"),
        gaussian=(0.0, 0.2, 8.0),
        id=gid,
    )


def test_crystal_graph_properties_and_bytes(nacl_conventional):
    g = _graph_of(nacl_conventional, gid="nacl")
    assert g.n_atoms == 8 and g.max_num_nbr == 12 and g.n_bonds == 96
    assert g.n_atom_features == 92 and g.n_bond_features == 41
    assert g.atom_fea.shape == (8, 92)
    assert g.nbytes == 8 * (2 + 12 * 4 + 12 * 4)
    assert g.nbytes / g.n_atoms == 98 <= 150
    assert repr(g) == (
        "CrystalGraph('nacl', n_atoms=8, max_num_nbr=12, n_bonds=96, atom_features=92, "
        "bond_features=41)"
    )
    g2 = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(g2.nbr_index, g.nbr_index)


def test_crystal_graphs_indexing(small_structures):
    structures, _ = small_structures
    graphs = CrystalGraphs(_graph_of(s, gid=str(i)) for i, s in enumerate(structures))
    assert len(graphs) == 20
    assert graphs[3].id == "3"
    assert isinstance(graphs[2:5], CrystalGraphs) and [g.id for g in graphs[2:5]] == [
        "2",
        "3",
        "4",
    ]
    assert [g.id for g in graphs[np.array([7, 1])]] == ["7", "1"]
    mask = np.zeros(20, dtype=bool)
    mask[[0, 19]] = True
    assert [g.id for g in graphs[mask]] == ["0", "19"]
    sub = _safe_indexing(graphs, np.array([4, 5, 6]))
    assert [g.id for g in sub] == ["4", "5", "6"]
    assert graphs[[1, 2]][0] is graphs[1]  # no copies
    assert graphs.n_atoms == sum(len(s) for s in structures)
    assert graphs.nbytes == sum(g.nbytes for g in graphs)
    with pytest.raises(IndexError, match="boolean index of length 3 for 20 graphs"):
        graphs[np.array([True, False, True])]


def test_checked_accepts_graph_sequences_and_names_the_first_bad_item(nacl_conventional):
    g = _graph_of(nacl_conventional, gid="nacl")
    graphs = CrystalGraphs([g, g])
    assert CrystalGraphs.checked(graphs, "Model") is graphs
    as_array = np.empty(2, dtype=object)
    as_array[:] = [g, g]
    assert list(CrystalGraphs.checked(as_array, "Model")) == [g, g]
    with pytest.raises(TypeError, match=r"X\[1\] is a str, not a CrystalGraph: Model takes"):
        CrystalGraphs.checked([g, "NaCl.cif"], "Model")
    with pytest.raises(TypeError, match=r"got a float64 array of shape \(2, 3\); put a "
                                        r"CrystalGraphFeaturizer before Model"):
        CrystalGraphs.checked(np.zeros((2, 3)), "Model")
    with pytest.raises(TypeError, match="a single CrystalGraph"):
        CrystalGraphs.checked(g, "Model")
    with pytest.raises(ValueError, match="Model got 0 graphs"):
        CrystalGraphs.checked([], "Model")


def test_check_compatible_compares_gaussians_tables_and_globals(nacl_conventional):
    g = _graph_of(nacl_conventional)
    other_table = CrystalGraph(g.numbers, g.nbr_index, g.nbr_dist, g.atom_table * 2,
                               g.gaussian, "b")
    same_table = CrystalGraph(g.numbers, g.nbr_index, g.nbr_dist, g.atom_table.copy(),
                              g.gaussian)
    CrystalGraphs([g, same_table]).check_compatible()  # equal arrays are one table
    with pytest.raises(ValueError, match=r"X\[1\] \('b'\) has an atom feature table of "
                                         r"shape \(101, 92\) different from X\[0\]'s"):
        CrystalGraphs([g, other_table]).check_compatible()
    coarse = CrystalGraph(g.numbers, g.nbr_index, g.nbr_dist, g.atom_table, (0.0, 0.5, 8.0))
    with pytest.raises(ValueError, match=r"batch\[1\] has gaussian=\(0.0, 0.5, 8.0\), "
                                         r"batch\[0\] has gaussian=\(0.0, 0.2, 8.0\)"):
        CrystalGraphs([g, coarse]).check_compatible("batch")
    hot = CrystalGraph(g.numbers, g.nbr_index, g.nbr_dist, g.atom_table, g.gaussian, None,
                       np.array([300.0]), ("temperature",))
    with pytest.raises(ValueError, match=r"X\[1\] has 1 global features \['temperature'\], "
                                         r"X\[0\] has no global features"):
        CrystalGraphs([g, hot]).check_compatible()
