"""Tests for cgcnn_sk.datasets: embedded jdft2d, Matbench loader and folds, CIF folders, CSV."""

from __future__ import annotations

import gzip
import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import KFold, cross_val_score

from cgcnn_sk.datasets import (
    MATBENCH_RANDOM_STATE,
    load_cif_folder,
    load_jdft2d,
    load_matbench,
    load_perovskites,
    matbench_folds,
    save_cif_folder,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present")
EMBEDDED = resources.files("cgcnn_sk.datasets") / "data" / "matbench_jdft2d.json.gz"


@pytest.fixture(scope="module")
def jdft2d():
    return load_jdft2d()


def _nacl() -> Structure:
    return Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# -- embedded jdft2d --------------------------------------------------------------------------
def test_load_jdft2d_returns_636_structures_and_targets(jdft2d):
    structures, y = jdft2d
    assert len(structures) == 636
    assert y.shape == (636,) and y.dtype == np.float64
    assert all(isinstance(s, Structure) for s in structures[:20])
    # mean absolute deviation of the target as recorded in Matbench's metadata
    assert np.mean(np.abs(y - y.mean())) == pytest.approx(67.2020, abs=5e-5)


def test_load_jdft2d_rows_match_the_file_in_order(jdft2d):
    structures, y = jdft2d
    with gzip.open(EMBEDDED, "rt") as fh:
        raw = json.load(fh)
    assert raw["columns"] == ["structure", "exfoliation_en"]
    for i in (0, 1, 317, 635):
        assert y[i] == raw["data"][i][1]
        assert structures[i] == Structure.from_dict(raw["data"][i][0])


def test_load_jdft2d_as_frame(jdft2d):
    frame = load_jdft2d(as_frame=True)
    assert list(frame.columns) == ["structure", "exfoliation_en"]
    assert len(frame) == 636
    np.testing.assert_array_equal(frame["exfoliation_en"].to_numpy(), jdft2d[1])


def test_attribution_file_cites_matbench_and_jarvis():
    text = (resources.files("cgcnn_sk.datasets") / "data" / "ATTRIBUTION.md").read_text()
    assert "10.1038/s41524-020-00406-3" in text and "10.1038/s41598-017-05402-0" in text
    assert "10.1038/s41524-020-00406-3" in load_jdft2d.__doc__


# -- Matbench folds -------------------------------------------------------------------------
def test_matbench_folds_reproduce_official_kfold():
    assert MATBENCH_RANDOM_STATE == 18012019
    folds = matbench_folds(636)
    ref = KFold(n_splits=5, shuffle=True, random_state=18012019).split(np.zeros((636, 1)))
    assert len(folds) == 5
    for (train, test), (ref_train, ref_test) in zip(folds, ref, strict=True):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(test, ref_test)
    tests = np.concatenate([t for _, t in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(636))
    assert [len(t) for _, t in folds] == [128, 127, 127, 127, 127]


def test_matbench_folds_accept_the_data_and_work_as_cv(jdft2d):
    structures, y = jdft2d
    folds = matbench_folds(structures)
    np.testing.assert_array_equal(folds[2][1], matbench_folds(636)[2][1])
    scores = cross_val_score(
        DummyRegressor(), np.zeros((636, 1)), y, cv=folds, scoring="neg_mean_absolute_error"
    )
    # the published Matbench v0.1 "Dummy" figure for jdft2d on these folds
    assert -scores.mean() == pytest.approx(67.29, abs=0.01)


@pytest.mark.parametrize("bad", [3, 0, True])
def test_matbench_folds_reject_too_few_samples(bad):
    with pytest.raises(ValueError, match="at least 5 samples"):
        matbench_folds(bad)


# -- load_matbench --------------------------------------------------------------------------
def test_load_matbench_reads_flat_data_home(tmp_path, jdft2d):
    shutil.copy(EMBEDDED, tmp_path / "matbench_jdft2d.json.gz")
    structures, y = load_matbench("matbench_jdft2d", data_home=tmp_path)
    np.testing.assert_array_equal(y, jdft2d[1])
    assert structures[5] == jdft2d[0][5]


def test_load_matbench_reads_folder_per_task_layout(tmp_path):
    (tmp_path / "matbench_jdft2d").mkdir()
    shutil.copy(EMBEDDED, tmp_path / "matbench_jdft2d" / "matbench_jdft2d.json.gz")
    frame = load_matbench("jdft2d", data_home=tmp_path, as_frame=True)
    assert frame.shape == (636, 2)


def test_load_matbench_missing_file_names_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="matbench_phonons.json.gz") as info:
        load_matbench("phonons", data_home=tmp_path, download_if_missing=False)
    assert str(tmp_path / "matbench_phonons.json.gz") in str(info.value)
    assert str(tmp_path / "matbench_phonons" / "matbench_phonons.json.gz") in str(info.value)


def test_load_matbench_download_failure_is_reported_without_network(tmp_path, monkeypatch):
    import matminer.datasets

    calls = []

    def offline(name, data_home=None, **kwargs):
        calls.append((name, data_home))
        raise OSError("network is unreachable")

    monkeypatch.setattr(matminer.datasets, "load_dataset", offline)
    with pytest.raises(FileNotFoundError, match="download failed: OSError: network is unreach"):
        load_matbench("phonons", data_home=tmp_path)
    assert calls == [("matbench_phonons", str(tmp_path))]


def test_load_matbench_rejects_a_file_that_is_not_split_json(tmp_path):
    with gzip.open(tmp_path / "matbench_x.json.gz", "wt") as fh:
        json.dump({"columns": ["structure", "t"]}, fh)
    with pytest.raises(ValueError, match=r"not a pandas orient='split' file.*\['data', 'index'\]"):
        load_matbench("x", data_home=tmp_path)


def test_load_matbench_names_an_unreadable_row(tmp_path):
    good = _nacl().as_dict()
    payload = {"index": [7, 8], "columns": ["structure", "t"], "data": [[good, 1.0], [{}, 2.0]]}
    with gzip.open(tmp_path / "matbench_x.json.gz", "wt") as fh:
        json.dump(payload, fh)
    with pytest.raises(ValueError, match=r"row 1 \(index 8\) is not a readable structure"):
        load_matbench("x", data_home=tmp_path)


@pytest.mark.shared_data
@needs_shared
def test_load_matbench_phonons_from_shared_data():
    structures, y = load_matbench("phonons", data_home=SHARED, download_if_missing=False)
    assert len(structures) == len(y) == 1265
    assert np.mean(np.abs(y - y.mean())) == pytest.approx(323.7870, abs=5e-5)


# -- CIF folders ----------------------------------------------------------------------------
@pytest.mark.shared_data
@needs_shared
def test_load_cif_folder_reads_the_reference_sample():
    data = load_cif_folder(SHARED / "cgcnn-sample" / "sample-regression")
    structures, y, ids, *_ = data  # a named tuple: unpacks like (structures, y, ids, ...)
    assert structures is data.structures and y is data.y and ids is data.ids
    assert data.ids[:3] == ["1000041", "1000050", "1101051"]
    np.testing.assert_array_equal(data.y, np.arange(1.0, 11.0))
    assert data.y.dtype == np.float64
    assert len(data.structures) == 10
    assert len(data.atom_init) == 100 and len(data.atom_init[8]) == 92


@pytest.mark.shared_data
@needs_shared
def test_load_cif_folder_keeps_integer_classes():
    data = load_cif_folder(SHARED / "cgcnn-sample" / "sample-classification")
    assert data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y, [1, 0] * 5)


@pytest.mark.shared_data
@needs_shared
def test_cif_folder_round_trip(tmp_path):
    source = SHARED / "cgcnn-sample" / "sample-regression"
    data = load_cif_folder(source)
    save_cif_folder(tmp_path, data.structures, data.y, data.ids,
                    atom_init=source / "atom_init.json")
    again = load_cif_folder(tmp_path)
    assert again.ids == data.ids
    np.testing.assert_array_equal(again.y, data.y)
    assert again.atom_init == data.atom_init
    for a, b in zip(data.structures, again.structures, strict=True):
        assert a.composition == b.composition
        np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix, atol=1e-5)
        np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-5)
    assert (tmp_path / "id_prop.csv").read_text().splitlines()[0] == "1000041,1.0"


def test_save_cif_folder_default_ids_and_integer_targets(tmp_path):
    po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    save_cif_folder(tmp_path, [_nacl(), po.as_dict()], np.array([1, 0]),
                    atom_init={8: [0.0, 1.0]})
    assert (tmp_path / "id_prop.csv").read_text() == "0,1\n1,0\n"
    data = load_cif_folder(tmp_path)
    assert data.ids == ["0", "1"]
    assert data.y.dtype == np.int64
    assert data.structures[1].composition.reduced_formula == "Po"
    assert data.atom_init == {8: [0.0, 1.0]}


def test_save_cif_folder_writes_several_targets(tmp_path):
    save_cif_folder(tmp_path, [_nacl(), _nacl()], [[1.5, 2.0], [0.25, -1.0]], ids=["a", "b"])
    data = load_cif_folder(tmp_path)
    np.testing.assert_array_equal(data.y, [[1.5, 2.0], [0.25, -1.0]])
    assert data.atom_init is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y": [1.0]}, "2 structures but 1 targets"),
        ({"ids": ["a", "a"]}, r"ids\[1\] = 'a' is repeated"),
        ({"ids": ["a", "b/c"]}, r"ids\[1\] = 'b/c' is not usable as a file name"),
        ({"ids": ["a"]}, "2 structures but 1 ids"),
    ],
)
def test_save_cif_folder_rejects_bad_arguments(tmp_path, kwargs, message):
    args = {"y": [1.0, 2.0], "ids": None} | kwargs
    with pytest.raises(ValueError, match=message):
        save_cif_folder(tmp_path, [_nacl(), _nacl()], **args)


def test_save_cif_folder_names_a_bad_structure(tmp_path):
    with pytest.raises(ValueError, match=r"structures\[1\] \(id 'b'\): not a structure"):
        save_cif_folder(tmp_path, [_nacl(), 42], [1, 2], ids=["a", "b"])


def test_load_cif_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_cif_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="has no id_prop.csv"):
        load_cif_folder(tmp_path)
    (tmp_path / "id_prop.csv").write_text("a,1.0\nb,2.0\n")
    save_cif_folder(tmp_path / "tmp", [_nacl()], [1.0], ids=["a"])
    shutil.copy(tmp_path / "tmp" / "a.cif", tmp_path / "a.cif")
    pattern = r"id 'b' \(id_prop.csv row 2\) has no CIF file b.cif"
    with pytest.raises(FileNotFoundError, match=pattern):
        load_cif_folder(tmp_path)
    (tmp_path / "id_prop.csv").write_text("a,high\n")
    with pytest.raises(ValueError, match=r"line 1 \(id 'a'\) has a non-numeric target"):
        load_cif_folder(tmp_path)
    (tmp_path / "id_prop.csv").write_text("a,1.0\n")
    (tmp_path / "a.cif").write_text("data_broken\n_cell_length_a 3\n")
    with pytest.raises(ValueError, match="a.cif: unreadable CIF"):
        load_cif_folder(tmp_path)


# -- perovskites ----------------------------------------------------------------------------
def _tiny_perovskite_csv(path: Path, n: int, offset: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(n):
        a = 3.9 + 0.05 * (i + offset)
        s = Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                      [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
        rows.append({"material_id": 100 + i + offset, "cif": s.to(fmt="cif"),
                     "formula": "SrTiO3", "heat_all": 0.1 * i, "heat_ref": -1.0 - i,
                     "dir_gap": 2.0, "ind_gap": 1.5})
    frame = pd.DataFrame(rows)
    frame.to_csv(path)
    return frame


def test_load_perovskites_reads_cif_column(tmp_path):
    _tiny_perovskite_csv(tmp_path / "val.csv.gz", 3)
    structures, y = load_perovskites(tmp_path / "val.csv.gz")
    np.testing.assert_array_equal(y, [-1.0, -2.0, -3.0])
    assert [len(s) for s in structures] == [5, 5, 5]
    assert structures[2].lattice.a == pytest.approx(4.0)
    _, gap = load_perovskites(tmp_path / "val.csv.gz", target="ind_gap")
    np.testing.assert_array_equal(gap, [1.5] * 3)


def test_load_perovskites_folder_concatenates_in_name_order(tmp_path):
    _tiny_perovskite_csv(tmp_path / "val.csv.gz", 2)
    _tiny_perovskite_csv(tmp_path / "test.csv", 1, offset=5)
    frame = load_perovskites(tmp_path, as_frame=True)
    assert list(frame["split"]) == ["test", "val", "val"]
    assert list(frame["material_id"]) == [105, 100, 101]
    assert frame.columns[0] == "structure"


def test_load_perovskites_errors(tmp_path):
    with pytest.raises(ValueError, match="target must be one of"):
        load_perovskites(tmp_path, target="band_gap")
    with pytest.raises(FileNotFoundError, match=r"no \*.csv or \*.csv.gz file"):
        load_perovskites(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_perovskites(tmp_path / "x.csv")
    frame = _tiny_perovskite_csv(tmp_path / "val.csv", 2)
    frame.loc[1, "cif"] = "data_x\n_cell_length_a 1\n"
    frame.to_csv(tmp_path / "val.csv")
    with pytest.raises(ValueError, match="val: row 1: unreadable CIF"):
        load_perovskites(tmp_path / "val.csv")


@pytest.mark.shared_data
@needs_shared
def test_load_perovskites_shared_head_matches_csv():
    path = SHARED / "perov5" / "val.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    head = pd.read_csv(path, index_col=0, nrows=1)
    structure = Structure.from_str(head["cif"].iloc[0], fmt="cif")
    assert len(structure) == 5
    assert structure.composition.reduced_formula == \
        __import__("pymatgen.core", fromlist=["Composition"]).Composition(
            head["formula"].iloc[0]).reduced_formula


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_load_perovskites_whole_shared_folder():
    frame = load_perovskites(SHARED / "perov5", as_frame=True)
    assert len(frame) == 7572
    assert frame["split"].value_counts().to_dict() == {"val": 3787, "test": 3785}
    assert all(len(s) == 5 for s in frame["structure"])
