"""Every kind of bad input the package knows, as a user with a messy folder meets it.

Each case asserts the exception type, that the message names the item and the problem, and,
where something was computed before the error, that it is not lost. The featurizer is used
through its public API only (``CrystalGraphFeaturizer``, ``CrystalGraphError``,
``clear_cache``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import make_nacl_primitive, make_small_structures
from pymatgen.core import Lattice, Structure
from sklearn.utils._param_validation import InvalidParameterError

from cgcnn_sk import (
    CGCNNClassifier,
    CGCNNRegressor,
    CrystalGraphError,
    CrystalGraphFeaturizer,
    ModelFileError,
    clear_cache,
    load,
)
from cgcnn_sk import pretrained as pretrained_module
from cgcnn_sk.cli import main
from cgcnn_sk.datasets import load_cif_folder, load_perovskites, matbench_folds

SMALL = dict(module__atom_fea_len=8, module__h_fea_len=8, module__n_conv=1)


@pytest.fixture(scope="module")
def graphs_y():
    structures, y = make_small_structures()
    return CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures), y


@pytest.fixture(scope="module")
def fitted(graphs_y):
    graphs, y = graphs_y
    return CGCNNRegressor(max_epochs=1, random_state=0, **SMALL).fit(graphs, y)


def _lone_atom() -> Structure:
    return Structure(Lattice.cubic(20.0), ["Na"], [[0, 0, 0]])


def _disordered() -> Structure:
    return Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]])


# ---- the featurizer: a messy list of structures -------------------------------------------


def _broken_cif(tmp_path: Path) -> Path:
    path = tmp_path / "broken.cif"
    path.write_text("data_broken\n_cell_length_a 3\n")
    return path


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (_broken_cif, r"item 1 \(broken\.cif\): unreadable .*broken\.cif"),
        (lambda tmp: tmp / "nope.cif", r"item 1 \(nope\.cif\): no such file"),
        (lambda tmp: _lone_atom(), r"item 1: .*without any neighbour within radius=6\.0"),
        (lambda tmp: _disordered(), r"item 1: disordered .*Na0\.5 K0\.5"),
        (lambda tmp: 3, r"item 1: not a structure: got int"),
    ],
    ids=["unreadable-cif", "missing-file", "isolated-atom", "disordered", "not-a-structure"],
)
def test_featurizer_names_the_bad_item_and_featurizes_the_rest(tmp_path, make_bad, message):
    good = make_nacl_primitive()
    featurizer = CrystalGraphFeaturizer(radius=6.0)
    with pytest.raises(CrystalGraphError, match=message) as info:
        featurizer.fit_transform([good, make_bad(tmp_path), good])
    assert [pos for pos, _, _ in info.value.errors] == [1]
    assert info.value.n_items == 3
    assert str(info.value).startswith("1 of 3 structures could not be featurized")
    # the good items were done: dropping the bad one gives the same graphs
    clean = featurizer.transform([good, good])
    np.testing.assert_array_equal(clean[0].nbr_index, clean[1].nbr_index)


def test_featurizer_keeps_the_good_searches_of_a_failed_call(tmp_path):
    # memory= stores one neighbour search per structure (joblib's on-disk cache): after a
    # failed call the good structures are stored, and the rerun with the item fixed adds
    # exactly the one search that was missing.
    structures, _ = make_small_structures()
    clear_cache()
    featurizer = CrystalGraphFeaturizer(radius=6.0, memory=str(tmp_path / "cache"))
    with pytest.raises(CrystalGraphError, match=r"item 2 \(nope\.cif\)"):
        featurizer.fit_transform([structures[0], structures[1], str(tmp_path / "nope.cif")])

    def stored() -> int:
        return len(list((tmp_path / "cache").rglob("output.pkl")))

    assert stored() == 2
    clear_cache()  # the in-process cache too: only the disk copy is left
    graphs = featurizer.transform(structures[:3])
    assert len(graphs) == 3 and stored() == 3


@pytest.mark.parametrize(
    "params, name",
    [({"radius": -1.0}, "radius"), ({"max_num_nbr": 0}, "max_num_nbr"),
     ({"step": 0.0}, "step"), ({"atom_features": "nope"}, "atom_features")],
)
def test_featurizer_parameter_errors_name_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        CrystalGraphFeaturizer(**params).fit_transform([make_nacl_primitive()])


def test_featurizer_table_without_an_element_names_it():
    table = {"11": [1.0, 0.0]}  # Na only
    with pytest.raises(CrystalGraphError, match=r"item 0: element Cl \(Z=17\) is missing"):
        CrystalGraphFeaturizer(atom_features=table).fit_transform([make_nacl_primitive()])


@pytest.mark.parametrize(
    "X, message",
    [(make_nacl_primitive(), "single Structure; wrap it in a list"), ([], "empty input")],
    ids=["single-structure", "empty"],
)
def test_featurizer_input_shape_errors(X, message):
    with pytest.raises(ValueError, match=message):
        CrystalGraphFeaturizer().fit_transform(X)


# ---- the estimators ------------------------------------------------------------------------


def test_numeric_matrix_instead_of_graphs_says_to_featurize_first():
    with pytest.raises(TypeError, match=r"got a float64 array of shape \(4, 3\); put a "
                                        r"CrystalGraphFeaturizer before CGCNNRegressor"):
        CGCNNRegressor(max_epochs=1).fit(np.zeros((4, 3)), np.arange(4.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_target_names_the_row(graphs_y, bad):
    graphs, y = graphs_y
    y = y.copy()
    y[5] = bad
    with pytest.raises(ValueError, match=rf"y\[5\] = \[?{bad}\]? \(1 such rows\)"):
        CGCNNRegressor(max_epochs=1).fit(graphs, y)


def test_typos_in_parameters_are_named(graphs_y):
    graphs, y = graphs_y
    with pytest.raises(ValueError, match=r"unexpected argument\(s\) lrr"):
        CGCNNRegressor(lrr=1e-3, max_epochs=1).fit(graphs, y)
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_convs'"):
        CGCNNRegressor(module__n_convs=2, max_epochs=1).fit(graphs, y)
    with pytest.raises(TypeError, match="unexpected keyword argument 'radiu'"):
        CrystalGraphFeaturizer(radiu=3.0)


def test_a_failed_refit_keeps_the_fitted_model(graphs_y, fitted):
    # a bad value is refused before anything is touched: the fitted model still predicts
    graphs, y = graphs_y
    net = pickle.loads(pickle.dumps(fitted))
    before = net.predict(graphs)
    net.set_params(max_epochs=-1)
    with pytest.raises(InvalidParameterError, match="'max_epochs' parameter"):
        net.fit(graphs, y)
    np.testing.assert_array_equal(net.predict(graphs), before)


def test_classifier_with_one_class(graphs_y):
    graphs, _ = graphs_y
    with pytest.raises(ValueError, match=r"needs at least 2 classes in y, got \['a'\]"):
        CGCNNClassifier(max_epochs=1).fit(graphs, ["a"] * len(graphs))


# ---- saved models: truncated, wrong kind, wrong architecture --------------------------------


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


def test_load_params_of_a_truncated_file_names_it(tmp_path, fitted):
    path = tmp_path / "params.pt"
    fitted.save_params(f_params=path)
    cut = _truncate(path)
    with pytest.raises(ValueError, match=r"cut_params\.pt is not a readable save_params file"):
        CGCNNRegressor(**SMALL).load_params(f_params=cut)


def test_load_params_of_an_optimizer_file_says_what_it_holds(tmp_path, fitted):
    fitted.save_params(f_optimizer=tmp_path / "opt.pt")
    with pytest.raises(ValueError, match=r"opt\.pt holds a dict \(keys \['param_groups', "
                                         r"'state'\]\), not the module state_dict"):
        CGCNNRegressor(**SMALL).load_params(f_params=tmp_path / "opt.pt")


def test_load_params_with_another_architecture_names_the_file(tmp_path, fitted):
    fitted.save_params(f_params=tmp_path / "params.pt")
    with pytest.raises(ValueError, match=r"params\.pt does not fit CGCNNRegressor's module"):
        CGCNNRegressor(module__atom_fea_len=16).load_params(f_params=tmp_path / "params.pt")


def test_load_params_of_truncated_optimizer_and_history_names_them(tmp_path, fitted):
    fitted.save_params(f_params=tmp_path / "p.pt", f_optimizer=tmp_path / "o.pt",
                       f_history=tmp_path / "h.json")
    net = CGCNNRegressor(**SMALL)
    with pytest.raises(ValueError, match=r"f_optimizer=.*cut_o\.pt: cannot be loaded"):
        net.load_params(f_params=tmp_path / "p.pt", f_optimizer=_truncate(tmp_path / "o.pt"))
    with pytest.raises(ValueError, match=r"f_history=.*cut_h\.json: cannot be loaded"):
        net.load_params(f_params=tmp_path / "p.pt", f_history=_truncate(tmp_path / "h.json"))
    with pytest.raises(FileNotFoundError):
        net.load_params(f_params=tmp_path / "missing.pt")


def test_pretrained_load_of_a_truncated_checkpoint_names_it(tmp_path):
    module = CGCNNRegressor(**SMALL, random_state=0).initialize_for(
        n_atom_features=92, gaussian=(0.0, 0.2, 8.0)).module_
    path = tmp_path / "tiny.pth.tar"
    torch.save({"state_dict": module.state_dict(), "normalizer": {"mean": 0.0, "std": 1.0}},
               path)
    with pytest.raises(ValueError, match=r"cut_tiny\.pth\.tar is not a readable torch checkpoint "
                                         r"\(truncated"):
        pretrained_module.load(_truncate(path))
    torch.save([1, 2], tmp_path / "list.pth.tar")
    with pytest.raises(ValueError, match=r"list\.pth\.tar: expected a dict checkpoint, got list"):
        pretrained_module.load(tmp_path / "list.pth.tar")


def test_cli_predict_with_a_truncated_pipeline_names_the_file(tmp_path, fitted, capsys):
    # pickle itself cannot name the file (a bare UnpicklingError); cgcnn_sk.load does
    joblib.dump(fitted, tmp_path / "model.joblib")
    cut = _truncate(tmp_path / "model.joblib")
    cif = tmp_path / "NaCl.cif"
    make_nacl_primitive().to(filename=str(cif))
    with pytest.raises(pickle.UnpicklingError):
        joblib.load(cut)
    assert main(["predict", str(cut), str(cif)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot load model" in err[0]
    assert f"{cut} is truncated: the pickle ends early" in err[0]


def test_cli_predict_with_a_file_of_another_kind_says_what_it_holds(tmp_path, capsys):
    joblib.dump({"not": "a model"}, tmp_path / "model.joblib")
    cif = tmp_path / "NaCl.cif"
    make_nacl_primitive().to(filename=str(cif))
    assert main(["predict", str(tmp_path / "model.joblib"), str(cif)]) == 1
    err = capsys.readouterr().err
    assert "model.joblib holds a dict, not a fitted cgcnn_sk pipeline or estimator" in err


# ---- cgcnn_sk.load: saved pickles and joblib files ----------------------------------------


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("lzma", 3)],
                         ids=["raw", "zlib", "gzip", "lzma"])
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_load_of_a_truncated_joblib_file_says_truncated(tmp_path, fitted, graphs_y, compress,
                                                        keep):
    path = tmp_path / "net.joblib"
    joblib.dump(fitted, path, compress=compress)
    graphs = graphs_y[0][:4]
    np.testing.assert_array_equal(load(path).predict(graphs), fitted.predict(graphs))
    cut = _truncate(path, keep)
    with pytest.raises(ModelFileError) as exc:
        load(cut)
    assert str(exc.value).startswith(f"{cut} is truncated: the pickle ends early "
                                     f"({cut.stat().st_size} bytes on disk")


def test_load_of_a_truncated_plain_pickle_says_truncated(tmp_path, fitted):
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(fitted))
    with pytest.raises(ModelFileError, match=r"cut_net\.pkl is truncated"):
        load(_truncate(path, 0.8))


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", r"x\.joblib is empty \(0 bytes"),
     (b"id,target\nmp-1,0.5\n", r"x\.joblib is not a pickle or joblib file: it starts with "
                                 r"b'id,targe'"),
     (b"PK\x03\x04" + bytes(20), r"x\.joblib is not a pickle or joblib file \(a zip archive: "
                                  r"torch\.save\?")],
    ids=["empty", "csv-text", "zip"],
)
def test_load_of_a_file_that_is_not_a_pickle_names_it(tmp_path, content, message):
    (tmp_path / "x.joblib").write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        load(tmp_path / "x.joblib")


def test_load_of_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.joblib: no such file"):
        load(tmp_path / "nope.joblib")
    with pytest.raises(ModelFileError, match=r"is a folder, not a saved model file"):
        load(tmp_path)


def test_load_of_something_else_than_a_fitted_model_says_what_it_holds(tmp_path):
    from sklearn.linear_model import Ridge

    cases = [
        ({"graphs": [], "y": None}, r"holds crystal graphs \(cgcnn-sk featurize output: keys "
                                    r"\['graphs', 'y'\]\), not a model"),
        (Ridge().fit([[0.0], [1.0]], [0.0, 1.0]),
         r"holds a Ridge, not a fitted cgcnn_sk pipeline or estimator"),
        (CGCNNRegressor(), r"holds an unfitted CGCNNRegressor: fit it before saving"),
    ]
    for i, (obj, message) in enumerate(cases):
        joblib.dump(obj, tmp_path / f"{i}.joblib")
        with pytest.raises(ModelFileError, match=rf"{i}\.joblib " + message):
            load(tmp_path / f"{i}.joblib")


def test_load_of_a_pickle_that_needs_a_missing_module_says_so(tmp_path):
    # protocol-2 GLOBAL opcode for a class of a module that does not exist, then STOP
    (tmp_path / "old.pkl").write_bytes(b"\x80\x02cno_such_module\nNet\nq\x00)\x81q\x01.")
    with pytest.raises(ModelFileError, match=r"old\.pkl cannot be unpickled: "
                                             r"ModuleNotFoundError: No module named "
                                             r"'no_such_module' \(it was saved with other"):
        load(tmp_path / "old.pkl")


# ---- the loaders ---------------------------------------------------------------------------


def _cif_folder(tmp_path: Path, rows: str, cifs=("a",)) -> Path:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in cifs:
        make_nacl_primitive().to(filename=str(folder / f"{name}.cif"))
    (folder / "id_prop.csv").write_text(rows)
    return folder


def test_cif_folder_errors_name_the_line_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_cif_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no id_prop.csv"):
        load_cif_folder(tmp_path / "empty")
    folder = _cif_folder(tmp_path, "a,1.5\nb,high\n")
    with pytest.raises(ValueError, match=r"line 2 \(id 'b'\) has a non-numeric target"):
        load_cif_folder(folder)
    (folder / "id_prop.csv").write_text("a,1.5\nb,2.0\n")
    with pytest.raises(FileNotFoundError, match=r"id 'b' \(id_prop.csv row 2\) has no CIF "
                                                r"file b\.cif"):
        load_cif_folder(folder)
    (folder / "b.cif").write_text("data_b\n_cell_length_a 3\n")
    with pytest.raises(ValueError, match=r"b\.cif: unreadable CIF"):
        load_cif_folder(folder)


def test_perovskites_and_matbench_folds_errors(tmp_path):
    with pytest.raises(ValueError, match="target must be one of"):
        load_perovskites(tmp_path, target="gap")
    with pytest.raises(FileNotFoundError, match=r"no \*\.csv or \*\.csv\.gz file"):
        load_perovskites(tmp_path)
    with pytest.raises(ValueError, match="matbench_folds needs at least 5 samples, got 3"):
        matbench_folds(3)
