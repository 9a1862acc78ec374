"""CrystalGraphFeaturizer: the scikit-learn contract, inputs, bad input, the neighbour cache."""

from __future__ import annotations

import gc
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.utils.estimator_checks as sk_checks
from joblib import Memory
from pymatgen.core import Lattice, Structure
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from cgcnn_sk import (
    CrystalGraphError,
    CrystalGraphFeaturizer,
    clear_cache,
    load_atom_table,
)
from cgcnn_sk.graph import _crystal as _graph
from cgcnn_sk.graph._featurizer import cache_info

A = 5.64


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def search_calls(monkeypatch):
    """Count neighbour searches: one entry (n_atoms, radius, M) per structure searched."""
    calls = []
    original = _graph.find_neighbors_batch

    def counting(items, radius, m, **kw):
        calls.extend((len(cart), radius, m) for _, cart, _ in items)
        return original(items, radius, m, **kw)

    monkeypatch.setattr(_graph, "find_neighbors_batch", counting)
    return calls


# ------------------------------------------------------------------------------------------
# scikit-learn contract
# ------------------------------------------------------------------------------------------


def test_defaults_and_init_stores_only():
    f = CrystalGraphFeaturizer()
    assert f.get_params() == {
        "radius": 8.0,
        "max_num_nbr": 12,
        "dmin": 0.0,
        "step": 0.2,
        "atom_features": "cgcnn",
        "n_jobs": None,
        "memory": None,
        "verbose": False,
        "structure_column": "structure",
        "global_features": None,
    }
    bad = CrystalGraphFeaturizer(radius=-1, max_num_nbr=0, step=0)  # no error until fit
    assert bad.radius == -1 and not hasattr(bad, "atom_table_")


def _constraint(name: str, what: str) -> str:
    """The start of scikit-learn's message for a parameter outside its constraint."""
    return rf"The '{name}' parameter of CrystalGraphFeaturizer must be {what}"


@pytest.mark.parametrize(
    "params, match",
    [
        ({"radius": 0}, _constraint("radius", r"a float in the range \(0.0, inf\)")),
        ({"radius": -2.0}, _constraint("radius", "a float in the range")),
        ({"radius": float("inf")}, _constraint("radius", "a float in the range")),
        ({"radius": float("nan")}, _constraint("radius", "a float in the range")),
        ({"radius": "8"}, _constraint("radius", "a float in the range")),
        ({"max_num_nbr": 0}, _constraint("max_num_nbr", r"an int in the range \[1, inf\)")),
        ({"max_num_nbr": 2.5}, _constraint("max_num_nbr", "an int in the range")),
        ({"step": 0}, _constraint("step", r"a float in the range \(0.0, inf\)")),
        ({"step": -0.1}, _constraint("step", "a float in the range")),
        ({"dmin": -0.5}, _constraint("dmin", r"a float in the range \[0.0, inf\)")),
        ({"dmin": 9.0}, "dmin must be smaller than radius=8.0, got 9.0"),
        ({"n_jobs": 0}, "n_jobs must be None or a non-zero integer, got 0"),
        ({"n_jobs": "2"}, _constraint("n_jobs", "an instance of 'int' or None")),
        ({"atom_features": 3}, _constraint("atom_features", "an instance of 'str'")),
        ({"atom_features": "nonsense"}, "neither 'cgcnn', 'onehot' nor an existing"),
        ({"memory": 3}, _constraint("memory", "None, an instance of 'str'")),
        ({"verbose": "yes"}, _constraint("verbose", "an int in the range")),
    ],
)
def test_invalid_params_fail_in_fit_naming_the_param(params, match, nacl_primitive):
    f = CrystalGraphFeaturizer(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        f.fit([nacl_primitive])
    assert not hasattr(f, "atom_table_")


def test_set_params_then_fit_is_rechecked(nacl_primitive):
    f = CrystalGraphFeaturizer().fit([nacl_primitive])
    f.set_params(max_num_nbr=0)
    with pytest.raises(ValueError, match="'max_num_nbr' parameter"):
        f.fit([nacl_primitive])


def test_fit_returns_self_and_sets_attributes(nacl_primitive):
    f = CrystalGraphFeaturizer(atom_features="onehot", radius=6.0)
    assert f.fit([nacl_primitive]) is f
    assert f.atom_table_.shape == (101, 100)
    assert f.elements_.tolist() == list(range(1, 101))
    assert f.n_atom_features_ == 100
    assert f.n_bond_features_ == 31


def test_transform_before_fit_raises_not_fitted(nacl_primitive):
    with pytest.raises(NotFittedError, match="CrystalGraphFeaturizer instance is not fitted"):
        CrystalGraphFeaturizer().transform([nacl_primitive])
    with pytest.raises(NotFittedError):
        CrystalGraphFeaturizer().feature_labels()


def test_transform_uses_the_fitted_atom_table(nacl_primitive, monkeypatch):
    f = CrystalGraphFeaturizer(atom_features="onehot").fit([nacl_primitive])
    import cgcnn_sk.graph._featurizer as featurizer_module

    def no_reload(*args, **kwargs):
        raise AssertionError("transform reloaded the atom table")

    monkeypatch.setattr(featurizer_module, "load_atom_table", no_reload)
    g = f.transform([nacl_primitive])[0]
    assert g.atom_table is f.atom_table_ and g.n_atom_features == 100
    assert g.atom_fea[0, 10] == 1.0 and g.atom_fea[1, 16] == 1.0  # Na, Cl one-hot


def test_clone_get_set_params_pickle_round_trip(nacl_conventional):
    f = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8, step=0.5, atom_features="onehot")
    c = clone(f)
    assert c.get_params() == f.get_params() and c is not f
    c.set_params(max_num_nbr=4, dmin=0.5)
    assert c.max_num_nbr == 4 and c.dmin == 0.5 and f.max_num_nbr == 8
    f.fit([nacl_conventional])
    f2 = pickle.loads(pickle.dumps(f))
    assert f2.get_params() == f.get_params()
    np.testing.assert_array_equal(f2.atom_table_, f.atom_table_)
    g1 = f.transform([nacl_conventional])[0]
    g2 = f2.transform([nacl_conventional])[0]
    np.testing.assert_array_equal(g1.nbr_index, g2.nbr_index)
    np.testing.assert_array_equal(g1.nbr_dist, g2.nbr_dist)
    assert g2.gaussian == (0.0, 0.5, 6.0)


# sklearn's shared checks feed 2-D numeric arrays; with the input tag two_d_array=False,
# check_estimator skips all data checks (they cannot apply to structures). These API checks
# need no data and do apply:
API_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_fit_check_is_fitted",
    "check_dont_overwrite_parameters",
    "check_estimators_overwrite_params",
    "check_param_validation",
]


@pytest.mark.parametrize("check", API_CHECKS)
def test_sklearn_api_checks(check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(sk_checks, check)("CrystalGraphFeaturizer", CrystalGraphFeaturizer())


def test_check_estimator_skips_data_checks_cleanly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = sk_checks.check_estimator(CrystalGraphFeaturizer(), on_fail=None)
    assert all(r["status"] in ("passed", "skipped") for r in results)


# ------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------


def test_nacl_graph_values(nacl_conventional, nacl_primitive):
    graphs = CrystalGraphFeaturizer().fit_transform([nacl_conventional, nacl_primitive])
    conv, prim = graphs
    assert conv.numbers.dtype == np.int16 and conv.numbers.tolist() == [11, 17] * 4
    assert conv.nbr_index.shape == (8, 12) and conv.nbr_index.dtype == np.int32
    np.testing.assert_allclose(conv.nbr_dist[:, :6], A / 2, atol=1e-6)
    np.testing.assert_allclose(conv.nbr_dist[:, 6:], A / np.sqrt(2), atol=1e-5)
    assert prim.nbr_index[0, :6].tolist() == [1] * 6
    reference = load_atom_table("cgcnn")
    np.testing.assert_array_equal(prim.atom_fea[0], reference[11])  # Na
    np.testing.assert_array_equal(prim.atom_fea[1], reference[17])  # Cl
    assert conv.atom_table is prim.atom_table  # one table shared by the featurization
    assert conv.gaussian == (0.0, 0.2, 8.0) and conv.n_bond_features == 41
    assert graphs.nbytes / graphs.n_atoms == 98.0


def test_output_arrays_are_read_only_and_cache_safe(nacl_primitive):
    # graphs share their neighbour arrays with the cache, read-only, so no output can
    # corrupt a later transform
    f = CrystalGraphFeaturizer()
    for m in (12, 4, 20):
        g = f.set_params(max_num_nbr=m).fit_transform([nacl_primitive])[0]
        assert g.nbr_index.shape == (2, m) and g.nbr_dist.shape == (2, m)
        with pytest.raises(ValueError, match="read-only"):
            g.nbr_dist[:] = -1.0
        with pytest.raises(ValueError, match="read-only"):
            g.nbr_index[0, 0] = 5
    g2 = f.set_params(max_num_nbr=12).fit_transform([nacl_primitive])[0]
    assert g2.nbr_dist[0, 0] == pytest.approx(A / 2)


def test_padding_when_fewer_than_m_neighbours(diamond):
    g = CrystalGraphFeaturizer(radius=2.0, max_num_nbr=6).fit_transform([diamond])[0]
    assert (g.nbr_index[:, 4:] == -1).all() and (g.nbr_dist[:, 4:] == 0).all()
    assert g.mask.sum() == 8 and g.n_bonds == 8
    g2 = CrystalGraphFeaturizer(radius=2.0, max_num_nbr=20).fit_transform([diamond])[0]
    assert g2.nbr_index.shape == (2, 20) and g2.n_bonds == 8


def test_feature_labels_citations_implementors():
    f = CrystalGraphFeaturizer().fit()
    labels = f.feature_labels()
    assert len(labels) == 92 + 41
    assert labels[0] == "atom:group_0" and labels[91] == "atom:atomic_volume_9"
    assert labels[92] == "bond:gaussian_0.00A" and labels[-1] == "bond:gaussian_8.00A"
    onehot = CrystalGraphFeaturizer(atom_features="onehot", step=0.5).fit().feature_labels()
    assert onehot[0] == "atom:is_H" and len(onehot) == 100 + 17
    assert any("Xie" in c and "145301" in c for c in f.citations())
    assert any("Xie" in who for who in f.implementors())
    assert not hasattr(f, "get_feature_names_out")  # graphs are not a feature matrix


# ------------------------------------------------------------------------------------------
# input kinds
# ------------------------------------------------------------------------------------------


def _same(g1, g2):
    np.testing.assert_array_equal(g1.numbers, g2.numbers)
    np.testing.assert_array_equal(g1.nbr_index, g2.nbr_index)
    np.testing.assert_allclose(g1.nbr_dist, g2.nbr_dist, atol=1e-5)


def test_input_kinds_give_the_same_graph(nacl_conventional, tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    expected = CrystalGraphFeaturizer().fit_transform([nacl_conventional])[0]
    cif_text = nacl_conventional.to(fmt="cif")
    path = tmp_path / "nacl.cif"
    path.write_text(cif_text)
    atoms = AseAtomsAdaptor.get_atoms(nacl_conventional)
    items = [
        nacl_conventional,
        atoms,
        nacl_conventional.as_dict(),
        str(path),
        path,
        cif_text,
    ]
    graphs = CrystalGraphFeaturizer().fit_transform(items)
    for g in graphs[:3]:
        _same(g, expected)

    def environments(g):  # CIF writing reorders the sites: compare per-atom environments
        return sorted(
            (int(z), tuple(np.round(row, 4))) for z, row in zip(g.numbers, g.nbr_dist, strict=True)
        )

    for g in graphs[3:]:
        assert environments(g) == environments(expected)
    assert graphs[3].id == "nacl.cif" and graphs[4].id == "nacl.cif"


@pytest.mark.parametrize("container", ["list", "tuple", "array", "series", "frame"])
def test_containers(small_structures, container):
    structures, _ = small_structures
    structures = structures[:5]
    ids = [f"m-{i}" for i in range(5)]
    X = {
        "list": lambda: list(structures),
        "tuple": lambda: tuple(structures),
        "array": lambda: np.array(structures + [None], dtype=object)[:5],
        "series": lambda: pd.Series(structures, index=ids),
        "frame": lambda: pd.DataFrame({"structure": structures, "y": range(5)}, index=ids),
    }[container]()
    graphs = CrystalGraphFeaturizer().fit_transform(X)
    assert len(graphs) == 5
    assert [g.n_atoms for g in graphs] == [len(s) for s in structures]
    if container in ("series", "frame"):
        assert [g.id for g in graphs] == ids


def test_dataframe_without_structure_column(nacl_primitive):
    with pytest.raises(ValueError, match="needs a 'structure' column"):
        CrystalGraphFeaturizer().fit_transform(pd.DataFrame({"s": [nacl_primitive]}))


def test_single_structure_is_not_a_collection(nacl_primitive):
    with pytest.raises(ValueError, match="got a single Structure; wrap it in a list"):
        CrystalGraphFeaturizer().fit_transform(nacl_primitive)


@pytest.mark.shared_data
def test_reference_sample_cif_folder(shared_data):
    folder = shared_data / "cgcnn-sample" / "sample-regression"
    paths = sorted(folder.glob("*.cif"))
    graphs = CrystalGraphFeaturizer().fit_transform(paths)
    assert len(graphs) == 10
    assert [g.id for g in graphs] == [p.name for p in paths]
    assert all((g.nbr_index[:, 0] >= 0).all() for g in graphs)


# ------------------------------------------------------------------------------------------
# bad input: one error listing every bad item, the good ones featurized and cached
# ------------------------------------------------------------------------------------------


def _error(items, **params) -> CrystalGraphError:
    with pytest.raises(CrystalGraphError) as info:
        CrystalGraphFeaturizer(**params).fit_transform(items)
    return info.value


def test_unreadable_cif_file_and_text(nacl_primitive, tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\nthis is not a CIF\n")
    err = _error([nacl_primitive, str(bad), "data_y\n_garbage\n"])
    assert [(p, i) for p, i, _ in err.errors] == [(1, "broken.cif"), (2, "y")]
    assert "item 1 (broken.cif): unreadable structure file 'broken.cif'" in str(err)
    assert "item 2 (y): unreadable CIF text" in str(err)
    assert isinstance(err, ValueError)


def test_missing_file(nacl_primitive, tmp_path):
    err = _error([nacl_primitive, str(tmp_path / "nope.cif")])
    assert err.errors == [(1, "nope.cif", f"no such file: {str(tmp_path / 'nope.cif')!r}")]


def test_empty_structure(nacl_primitive):
    empty = Structure(Lattice.cubic(3.0), [], [])
    err = _error([empty, nacl_primitive])
    assert err.errors == [(0, None, "empty structure (no sites)")]


def test_atom_without_neighbour_names_site_distance_and_radius(nacl_primitive):
    err = _error([nacl_primitive], radius=2.5)
    (pos, ident, msg), = err.errors
    assert pos == 0
    assert "atom(s) without any neighbour within radius=2.5" in msg
    assert "site 0 (Na, nearest at 2.820 A)" in msg and "site 1 (Cl, nearest at 2.820 A)" in msg
    assert msg.endswith("use radius >= 2.9")
    # and the suggestion works
    assert len(CrystalGraphFeaturizer(radius=2.9).fit_transform([nacl_primitive])) == 1


def test_element_beyond_z100_and_missing_from_table(nacl_primitive):
    og = Structure(Lattice.cubic(3.0), ["Og"], [[0, 0, 0]])
    err = _error([og, nacl_primitive])
    assert err.errors[0][0] == 0
    assert "element Og (Z=118) is beyond Z=100" in err.errors[0][2]
    table = {11: [1.0, 0.0]}  # Na only
    err = _error([nacl_primitive], atom_features=table)
    assert "element Cl (Z=17) is missing from the atom table atom_features=<dict>" in str(err)


def test_disordered_site(nacl_primitive):
    dis = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Co": 0.5}, "O"], [[0, 0, 0], [0.5] * 3])
    vac = Structure(Lattice.cubic(4.0), [{"Fe": 0.9}, "O"], [[0, 0, 0], [0.5] * 3])
    err = _error([nacl_primitive, dis, vac])
    assert [p for p, _, _ in err.errors] == [1, 2]
    assert "disordered (partially occupied) site(s): site 0 (Fe0.5 Co0.5)" in err.errors[0][2]
    assert "site 0 (Fe0.9)" in err.errors[1][2]


@pytest.mark.parametrize("item, kind", [(42, "int"), (None, "NoneType"), ([1, 2], "list")])
def test_not_a_structure(nacl_primitive, item, kind):
    err = _error([nacl_primitive, item])
    assert err.errors[0][0] == 1
    assert f"not a structure: got {kind}" in err.errors[0][2]


def test_ase_without_cell():
    from ase import Atoms

    err = _error([Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    assert "ASE Atoms without a periodic 3-D cell" in err.errors[0][2]


def test_empty_input():
    with pytest.raises(ValueError, match="empty input: no structures to featurize"):
        CrystalGraphFeaturizer().fit_transform([])


def test_all_bad_items_in_one_error_and_good_ones_cached(small_structures, search_calls):
    structures, _ = small_structures
    good = structures[:5]
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5}], [[0, 0, 0]])
    lonely = Structure(Lattice.cubic(9.0), ["Na"], [[0, 0, 0]])  # nothing within 8 A
    items = [good[0], 42, good[1], disordered, "data_q\nnonsense\n", good[2], lonely, good[3]]
    ids = [f"m{i}" for i in range(8)]
    with pytest.raises(CrystalGraphError) as info:
        CrystalGraphFeaturizer().fit_transform(pd.Series(items, index=ids))
    err = info.value
    assert [(p, i) for p, i, _ in err.errors] == [(1, "m1"), (3, "m3"), (4, "m4"), (6, "m6")]
    problems = [m for _, _, m in err.errors]
    assert problems[0].startswith("not a structure: got int")
    assert problems[1].startswith("disordered (partially occupied) site(s): site 0 (Fe0.5)")
    assert problems[2].startswith("unreadable CIF text")
    assert problems[3].startswith("atom(s) without any neighbour within radius=8.0: site 0 (Na")
    assert str(err).startswith("4 of 8 structures could not be featurized:")
    assert "  item 3 (m3): disordered" in str(err)
    assert len(search_calls) == 5  # the 4 good items and the lonely one were searched
    # fix the bad items: the rerun searches only the fixed ones, and its graphs are those of
    # a fresh featurization
    fixed = [good[0], structures[10], good[1], structures[11], good[4], good[2], lonely, good[3]]
    fixed[6] = structures[12]
    graphs = CrystalGraphFeaturizer().fit_transform(fixed)
    assert len(search_calls) == 5 + 4
    clear_cache()
    for a, b in zip(graphs, CrystalGraphFeaturizer().fit_transform(fixed), strict=True):
        _identical(a, b)
    assert pickle.loads(pickle.dumps(err)).errors == err.errors


def test_error_message_truncates_long_lists():
    err = _error([object()] * 30)
    assert len(err.errors) == 30
    assert "... and 5 more (see the .errors attribute)" in str(err)


# ------------------------------------------------------------------------------------------
# the neighbour cache
# ------------------------------------------------------------------------------------------


def test_second_transform_does_not_search(small_structures, search_calls):
    structures, _ = small_structures
    f = CrystalGraphFeaturizer()
    g1 = f.fit_transform(structures)
    assert len(search_calls) == 20
    g2 = clone(f).fit_transform(structures)
    assert len(search_calls) == 20
    for a, b in zip(g1, g2, strict=True):
        _same(a, b)


def test_cache_key_is_content_not_identity(nacl_primitive, search_calls):
    f = CrystalGraphFeaturizer()
    f.fit_transform([nacl_primitive])
    f.fit_transform([nacl_primitive.copy()])
    f.fit_transform([Structure.from_dict(nacl_primitive.as_dict())])
    assert len(search_calls) == 1
    moved = nacl_primitive.copy()
    moved.translate_sites([1], [0.01, 0, 0])
    f.fit_transform([moved])
    assert len(search_calls) == 2
    f.set_params(radius=7.0).fit_transform([nacl_primitive])  # radius is part of the key
    assert len(search_calls) == 3


def _mutations():
    def append(s):
        s.append("Na", [0.25, 0.25, 0.25])

    def set_a(s):
        s[0].a = 0.05

    def set_x(s):
        s[1].x = s[1].x + 0.1

    def set_frac(s):
        s[0].frac_coords = [0.02, 0.0, 0.0]

    def set_coords(s):
        s[0].coords = [0.1, 0.0, 0.0]

    def set_species(s):
        s[0].species = "K"

    def set_lattice(s):
        s.lattice = Lattice.cubic(5.9)

    return {
        "translate_sites": lambda s: s.translate_sites([0], [0.01, 0.0, 0.0]),
        "perturb": lambda s: s.perturb(0.05),
        "setitem": lambda s: s.__setitem__(0, "K"),
        "replace_species": lambda s: s.replace_species({"Na": "K"}),
        "scale_lattice": lambda s: s.scale_lattice(s.volume * 1.1),
        "apply_strain": lambda s: s.apply_strain(0.02),
        "remove_sites": lambda s: s.remove_sites([1]),
        "sort": lambda s: s.sort(key=lambda site: -site.specie.Z),
        "append": append,
        "site.a": set_a,
        "site.x": set_x,
        "site.frac_coords": set_frac,
        "site.coords": set_coords,
        "site.species": set_species,
        "lattice": set_lattice,
    }


def _identical(g1, g2):
    """Two graphs hold the same atoms, neighbour lists (order included) and settings."""
    np.testing.assert_array_equal(g1.numbers, g2.numbers)
    np.testing.assert_array_equal(g1.nbr_index, g2.nbr_index)
    np.testing.assert_array_equal(g1.nbr_dist, g2.nbr_dist)
    np.testing.assert_array_equal(g1.atom_table, g2.atom_table)
    assert g1.gaussian == g2.gaussian and g1.id == g2.id


@pytest.mark.parametrize("mutation", list(_mutations()))
def test_a_structure_changed_in_place_is_searched_again(nacl_conventional, mutation, search_calls):
    s = nacl_conventional.copy()
    f = CrystalGraphFeaturizer().fit()
    before = f.transform([s])[0]
    _mutations()[mutation](s)
    after = f.transform([s])[0]
    assert len(search_calls) == 2  # the cache is keyed by content: the changed one is new
    clear_cache()
    _identical(after, f.transform([Structure.from_dict(s.as_dict())])[0])  # = fresh
    assert not (  # the change is visible in the graph
        np.array_equal(after.numbers, before.numbers)
        and np.array_equal(after.nbr_index, before.nbr_index)
        and np.array_equal(after.nbr_dist, before.nbr_dist)
    )


def test_max_num_nbr_sweep_and_gaussian_changes_reuse_the_search(
    small_structures, search_calls
):
    structures, _ = small_structures
    base = CrystalGraphFeaturizer()
    full = {}
    for m in (4, 8, 12, 1, 3):
        graphs = clone(base).set_params(max_num_nbr=m).fit_transform(structures)
        full[m] = graphs
        assert graphs[0].max_num_nbr == m
    for step, dmin in ((0.1, 0.0), (0.5, 1.0)):
        g = clone(base).set_params(step=step, dmin=dmin).fit_transform(structures)
        assert g[0].gaussian == (dmin, step, 8.0)
    assert len(search_calls) == 20  # one search per structure in total
    assert all(m == 12 for _, _, m in search_calls)  # stored for at least 12 neighbours
    for m in (1, 3, 4, 8):  # smaller M is exactly a prefix of the 12 nearest
        for a, b in zip(full[m], full[12], strict=True):
            np.testing.assert_array_equal(a.nbr_index, b.nbr_index[:, :m])
            np.testing.assert_array_equal(a.nbr_dist, b.nbr_dist[:, :m])
    # a larger M than stored needs a new search, then serves smaller M again
    clone(base).set_params(max_num_nbr=16).fit_transform(structures)
    assert len(search_calls) == 40
    clone(base).set_params(max_num_nbr=12).fit_transform(structures)
    assert len(search_calls) == 40


def test_complete_lists_serve_larger_m_without_search(diamond, search_calls):
    f = CrystalGraphFeaturizer(radius=2.0)
    f.fit_transform([diamond])  # 4 neighbours within 2 A, stored with M=12: complete
    g = f.set_params(max_num_nbr=40).fit_transform([diamond])[0]
    assert len(search_calls) == 1
    assert g.nbr_index.shape == (2, 40) and g.n_bonds == 8


class _MeanGraphRegressor(RegressorMixin, BaseEstimator):
    """Tiny test model: ridge on per-crystal mean atom features and mean bond lengths."""

    def fit(self, X, y):
        self.ridge_ = Ridge(alpha=1e-3).fit(self._features(X), y)
        return self

    def predict(self, X):
        return self.ridge_.predict(self._features(X))

    @staticmethod
    def _features(X):
        rows = []
        for g in X:
            d = np.where(g.mask, g.nbr_dist, np.nan)
            rows.append(np.concatenate([g.atom_fea.mean(0), [np.nanmean(d), np.nanmax(d)]]))
        return np.array(rows)


def test_grid_search_over_max_num_nbr_searches_once(small_structures, search_calls):
    structures, y = small_structures
    pipe = Pipeline([("graph", CrystalGraphFeaturizer()), ("model", _MeanGraphRegressor())])
    search = GridSearchCV(
        pipe,
        {"graph__max_num_nbr": [4, 8, 12]},
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_absolute_error",
    )
    search.fit(structures, y)
    assert len(search_calls) == len(structures)  # 3 candidates x 3 folds + refit: one search each
    assert search.best_params_["graph__max_num_nbr"] in (4, 8, 12)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_clear_cache_and_byte_bound(small_structures, search_calls):
    structures, _ = small_structures
    f = CrystalGraphFeaturizer()
    f.fit_transform(structures)
    info = cache_info()
    assert info["n_entries"] == 20 and info["nbytes"] > 0
    clear_cache()
    assert cache_info()["n_entries"] == 0
    f.fit_transform(structures)
    assert len(search_calls) == 40
    old = info["max_bytes"]
    try:
        one = cache_info()["nbytes"] // 20
        shrunk = cache_info(max_bytes=5 * one)
        assert 0 < shrunk["n_entries"] < 20 and shrunk["nbytes"] <= 5 * one
        cache_info(max_bytes=0)
        f.fit_transform(structures[:3])
        assert cache_info()["n_entries"] == 0
    finally:
        cache_info(max_bytes=old)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        cache_info(max_bytes=-1)


def test_disk_memory_survives_clear_cache(small_structures, search_calls, tmp_path):
    structures, _ = small_structures
    structures = structures[:5]
    # the disk key is the geometry (lattice, coordinates, radius, stored M): NaCl and CaS of
    # the fixture have the same radii sums, hence the same geometry and one disk entry
    n_geometries = len({(s.lattice.matrix.tobytes(), s.cart_coords.tobytes()) for s in structures})
    assert n_geometries == 4
    f = CrystalGraphFeaturizer(memory=Memory(str(tmp_path), verbose=0))
    g1 = f.fit_transform(structures)
    assert len(search_calls) == n_geometries
    clear_cache()
    g2 = clone(f).set_params(max_num_nbr=4).fit_transform(structures)  # from disk, sliced
    assert len(search_calls) == n_geometries
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_array_equal(a.nbr_index[:, :4], b.nbr_index)
    clear_cache()
    CrystalGraphFeaturizer(memory=tmp_path).fit_transform(structures)  # a path works too
    assert len(search_calls) == n_geometries


@pytest.mark.parametrize(
    "backend", ["threading", pytest.param("loky", marks=pytest.mark.slow)]
)
def test_n_jobs_matches_serial_and_fills_this_process_cache(
    small_structures, search_calls, backend
):
    # threading keeps the default run fast; loky (process start-up ~10 s) runs with -m slow
    from joblib import parallel_config

    structures, _ = small_structures
    with parallel_config(backend=backend):
        parallel = CrystalGraphFeaturizer(n_jobs=2).fit_transform(structures)
    n_searched_here = len(search_calls)  # 20 with threads, 0 in loky worker processes
    assert n_searched_here == (20 if backend == "threading" else 0)
    info = cache_info()
    assert info["n_entries"] == 20  # results came back to this process's cache
    serial = CrystalGraphFeaturizer().fit_transform(structures)
    assert len(search_calls) == n_searched_here  # the serial run was all cache hits
    for a, b in zip(parallel, serial, strict=True):
        _same(a, b)


def test_default_n_jobs_searches_here_inside_a_parallel_context(small_structures, monkeypatch):
    # A featurizer inside a grid search's task (dask, loky) must not send its searches on as
    # nested tasks: with n_jobs=None no joblib.Parallel is made, whatever the context says.
    import joblib
    from joblib import parallel_config

    def no_parallel(*args, **kwargs):
        raise AssertionError("n_jobs=None made a joblib.Parallel")

    monkeypatch.setattr(joblib, "Parallel", no_parallel)
    structures, _ = small_structures
    clear_cache()
    with parallel_config(backend="threading", n_jobs=2):
        graphs = CrystalGraphFeaturizer().fit_transform(structures)
    assert len(graphs) == len(structures)


def test_verbose_progress_bar(small_structures, capsys):
    structures, _ = small_structures
    CrystalGraphFeaturizer(verbose=True).fit_transform(structures[:4])
    err = capsys.readouterr().err
    assert "neighbour search" in err and "4/4" in err


# ------------------------------------------------------------------------------------------
# graphs as input: re-cutting without structures
# ------------------------------------------------------------------------------------------


def test_graphs_in_are_recut_exactly(small_structures, search_calls):
    structures, _ = small_structures
    graphs = CrystalGraphFeaturizer().fit_transform(structures)  # radius 8, M 12
    assert len(search_calls) == 20
    clear_cache()
    # the same radius: fewer neighbours, other Gaussians, another table are slices, identical
    # to a fresh featurization, order of equidistant neighbours included
    for params in ({"max_num_nbr": 4}, {"step": 0.5, "dmin": 1.0}, {"atom_features": "onehot"}):
        recut = CrystalGraphFeaturizer(**params).fit_transform(graphs)
        fresh = CrystalGraphFeaturizer(**params).fit_transform(structures)
        for a, b in zip(recut, fresh, strict=True):
            _identical(a, b)
    assert len(search_calls) == 40  # the fresh runs at radius 8 searched once (cache), re-cuts not


def test_graphs_recut_at_a_smaller_radius_keep_distances_and_shells(small_structures):
    # pymatgen's search returns equidistant pairs in an order that depends on the radius, so
    # a fresh search at 4 A may order, and at the M-th place choose, equidistant neighbours
    # differently from the 8 A lists cut down (in these structures: O of a perovskite has Sr
    # and O at the same distance across the cut). Distances are identical, and so is every
    # shell of equal distance below the one cut at M: its neighbours' elements.
    structures, _ = small_structures
    graphs = CrystalGraphFeaturizer().fit_transform(structures)
    recut = CrystalGraphFeaturizer(radius=4.0, max_num_nbr=8).fit_transform(graphs)
    fresh = CrystalGraphFeaturizer(radius=4.0, max_num_nbr=8).fit_transform(structures)
    n_reordered = 0
    for a, b in zip(recut, fresh, strict=True):
        np.testing.assert_array_equal(a.nbr_dist, b.nbr_dist)
        assert a.gaussian == b.gaussian == (0.0, 0.2, 4.0)
        for row_a, row_b, d in zip(a.nbr_index, b.nbr_index, a.nbr_dist, strict=True):
            below_cut = (row_a >= 0) & (d < d[-1] if row_a[-1] >= 0 else row_a >= 0)
            dk = d[below_cut].tolist()
            assert sorted(zip(dk, a.numbers[row_a[below_cut]].tolist(), strict=True)) == sorted(
                zip(dk, b.numbers[row_b[below_cut]].tolist(), strict=True)
            )
        n_reordered += not np.array_equal(a.nbr_index, b.nbr_index)
    assert n_reordered > 0  # the case this test is about does occur in these structures


def test_graphs_in_refuse_what_they_cannot_know(small_structures):
    structures, _ = small_structures
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=12).fit_transform(structures[:3])
    with pytest.raises(CrystalGraphError, match="cannot be re-cut at the larger radius=8.0"):
        CrystalGraphFeaturizer(radius=8.0).fit_transform(graphs)
    with pytest.raises(CrystalGraphError, match="fewer than max_num_nbr=16"):
        CrystalGraphFeaturizer(radius=6.0, max_num_nbr=16).fit_transform(graphs)
    with pytest.raises(CrystalGraphError, match="without any neighbour within radius=1.0"):
        CrystalGraphFeaturizer(radius=1.0).fit_transform(graphs)
    with pytest.raises(CrystalGraphError, match=r"atomic number\(s\) \[17\] missing"):
        CrystalGraphFeaturizer(radius=6.0, atom_features={11: [1.0]}).fit_transform(graphs[:1])


def test_grid_search_on_precomputed_graphs(small_structures, search_calls):
    structures, y = small_structures
    graphs = CrystalGraphFeaturizer().fit_transform(structures)
    pipe = Pipeline([("graph", CrystalGraphFeaturizer()), ("model", _MeanGraphRegressor())])
    grid = {"graph__max_num_nbr": [4, 8, 12]}
    cv = KFold(3, shuffle=True, random_state=0)
    on_graphs = GridSearchCV(pipe, grid, cv=cv).fit(graphs, y)
    on_structures = GridSearchCV(pipe, grid, cv=cv).fit(structures, y)
    assert len(search_calls) == 20  # the one featurization above
    np.testing.assert_allclose(
        on_graphs.cv_results_["mean_test_score"], on_structures.cv_results_["mean_test_score"]
    )


# ------------------------------------------------------------------------------------------
# speed that does not depend on the caller's heap
# ------------------------------------------------------------------------------------------


def test_garbage_collector_paused_in_the_hot_loop_and_restored(small_structures, monkeypatch):
    # a full collection inside transform costs time set by the caller's heap, not by the
    # featurizer (benchmarks/bench_featurize.py measures it): transform pauses the collector
    # while it reads and searches, and gives it back in the state it found it
    structures, _ = small_structures
    seen: list[bool] = []
    original = _graph.find_neighbors_batch

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        if kwargs.pop("fail", False) or len(args[0]) == 2:
            raise RuntimeError("search failed")
        return original(*args, **kwargs)

    monkeypatch.setattr(_graph, "find_neighbors_batch", spy)
    f = CrystalGraphFeaturizer().fit()
    assert gc.isenabled()
    f.transform(structures[:3])
    assert seen == [False] and gc.isenabled()
    with pytest.raises(CrystalGraphError):  # a bad item
        f.transform([structures[3], 42])
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="search failed"):  # an error inside the loop
        f.transform(structures[4:6])
    assert gc.isenabled()
    gc.disable()  # a caller who paused it keeps it paused
    try:
        f.transform(structures[6:7])
        assert not gc.isenabled()
    finally:
        gc.enable()
