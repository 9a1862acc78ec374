"""A fitted net checks that the graphs it predicts come from the settings it was fitted on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_small_structures

from cgcnn_sk import CGCNNClassifier, CGCNNRegressor, CrystalGraphFeaturizer, load_atom_table
from cgcnn_sk.estimators._fitted_on import atom_table_digest

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1, max_epochs=2)


@pytest.fixture(scope="module")
def structures():
    return make_small_structures()


def _graphs(structures, **kw):
    return CrystalGraphFeaturizer(**{"radius": 6.0, **kw}).fit_transform(structures)


@pytest.fixture(scope="module")
def fitted8(structures):
    s, y = structures
    return CGCNNRegressor(random_state=0, **SMALL).fit(_graphs(s, max_num_nbr=8), y)


def test_fit_records_max_num_nbr_and_the_atom_table(fitted8):
    assert fitted8.max_num_nbr_ == 8
    assert fitted8.atom_table_digest_ == atom_table_digest(load_atom_table("cgcnn"))


@pytest.mark.parametrize("m", [4, 6])
def test_fewer_neighbours_than_fitted_is_an_error_naming_both(structures, fitted8, m):
    with pytest.raises(ValueError, match=rf"X\[0\] has max_num_nbr={m}, but CGCNNRegressor was "
                       r"fitted on graphs with max_num_nbr=8: featurize with max_num_nbr=8"):
        fitted8.predict(_graphs(structures[0], max_num_nbr=m))
    with pytest.raises(ValueError, match=rf"max_num_nbr={m}"):
        fitted8.score(_graphs(structures[0], max_num_nbr=m), structures[1])
    with pytest.raises(ValueError, match=rf"max_num_nbr={m}"):
        fitted8.transform(_graphs(structures[0], max_num_nbr=m))


@pytest.mark.parametrize("m", [9, 12, 20])
def test_more_neighbours_than_fitted_are_recut_exactly(structures, fitted8, m):
    expected = fitted8.predict(_graphs(structures[0], max_num_nbr=8))
    np.testing.assert_array_equal(fitted8.predict(_graphs(structures[0], max_num_nbr=m)),
                                  expected)


def test_graphs_holding_every_neighbour_are_padded_exactly(structures):
    s, y = structures
    # NaCl, KBr, CaS at radius 3.5 A: 6 neighbours each (the next 12 are beyond 3.9 A), so
    # M=8 graphs hold all of them
    s, y = [s[i] for i in (0, 1, 4)], y[[0, 1, 4]]
    small = _graphs(s, radius=3.5, max_num_nbr=8)
    assert all((g.nbr_index[:, -1] < 0).all() for g in small)
    net = CGCNNRegressor(random_state=0, **SMALL).fit(_graphs(s, radius=3.5, max_num_nbr=16), y)
    np.testing.assert_array_equal(net.predict(small),
                                  net.predict(_graphs(s, radius=3.5, max_num_nbr=16)))


def test_another_atom_table_of_the_same_width_is_an_error(structures):
    s, y = structures
    table = load_atom_table("cgcnn").copy()
    table[11] = table[19]  # Na reads as K: same width, other values
    net = CGCNNRegressor(random_state=0, **SMALL).fit(_graphs(s), y)
    with pytest.raises(ValueError, match=r"X\[0\] was featurized with another atom table than "
                       r"the graphs CGCNNRegressor was fitted on \(same width 92"):
        net.predict(_graphs(s, atom_features=table))


def test_fit_on_graphs_of_two_featurizations_is_an_error(structures):
    s, y = structures
    mixed = list(_graphs(s[:10], max_num_nbr=8)) + list(_graphs(s[10:], max_num_nbr=6))
    with pytest.raises(ValueError, match=r"X\[10\] has max_num_nbr=6, X\[0\] has "
                       r"max_num_nbr=8: CGCNNClassifier is fitted on graphs of one"):
        CGCNNClassifier(**SMALL).fit(mixed, y > 20)


def test_save_params_keeps_what_the_net_was_fitted_on(structures, fitted8, tmp_path):
    path = tmp_path / "p.pt"
    fitted8.save_params(f_params=path)
    net = CGCNNRegressor(**SMALL)
    net.load_params(f_params=path)
    assert net.max_num_nbr_ == 8
    with pytest.raises(ValueError, match="fitted on graphs with max_num_nbr=8"):
        net.predict(_graphs(structures[0], max_num_nbr=4))


def test_a_net_that_does_not_know_checks_nothing(structures, fitted8):
    net = CGCNNRegressor(**SMALL).initialize_for(
        n_atom_features=92, gaussian=fitted8.gaussian_, target_mean=0.0, target_scale=1.0)
    assert net.max_num_nbr_ is None
    assert len(net.predict(_graphs(structures[0], max_num_nbr=4))) == 20
