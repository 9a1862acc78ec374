"""Atom feature tables: the shipped CGCNN encoding, one-hot, files, dicts, the rebuild."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import pytest

from cgcnn_sk._atoms import (
    CGCNN_SEGMENTS,
    MAX_Z,
    build_cgcnn_table,
    compare_tables,
    load_atom_table,
)

SHIPPED = resources.files("cgcnn_sk").joinpath("data", "atom_init.json")
SHIPPED_SHA256 = "cb90bd2257dbf8cfc4e6b2b6d4348d4616e8e9680f1339b1461137032e0f1894"


def _raw_reference() -> dict[int, list[float]]:
    return {int(k): v for k, v in json.loads(SHIPPED.read_text()).items()}


def test_shipped_file_is_the_reference_file():
    assert hashlib.sha256(SHIPPED.read_bytes()).hexdigest() == SHIPPED_SHA256
    assert sorted(_raw_reference()) == list(range(1, 101))


@pytest.mark.shared_data
def test_shipped_file_matches_shared_reference_copy(shared_data):
    ref = shared_data / "cgcnn-sample" / "sample-regression" / "atom_init.json"
    assert ref.read_bytes() == SHIPPED.read_bytes()


def test_cgcnn_table_shape_dtype_and_rows():
    table, elements = load_atom_table("cgcnn", return_elements=True)
    assert table.shape == (MAX_Z + 1, 92)
    assert table.dtype == np.float32
    assert elements.tolist() == list(range(1, 101))
    assert not table[0].any()  # row 0 is not an element
    raw = _raw_reference()
    np.testing.assert_array_equal(table[11], np.array(raw[11], dtype=np.float32))  # Na
    np.testing.assert_array_equal(table[17], np.array(raw[17], dtype=np.float32))  # Cl
    # Na: group 1 (column 1), period 3 (column 19 + 2), s block (column 78)
    assert table[11, 1] == 1 and table[11, 19 + 2] == 1 and table[11, 78] == 1
    assert table[11].sum() == 9


def test_table_is_read_only_and_a_fresh_copy():
    a = load_atom_table("cgcnn")
    with pytest.raises(ValueError, match="read-only"):
        a[1, 0] = 5.0
    b = load_atom_table("cgcnn")
    assert a is not b and np.array_equal(a, b)


def test_onehot_table():
    table, elements = load_atom_table("onehot", return_elements=True)
    assert table.shape == (MAX_Z + 1, MAX_Z)
    assert elements.tolist() == list(range(1, 101))
    np.testing.assert_array_equal(table[1:].sum(axis=1), np.ones(MAX_Z))
    assert table[26, 25] == 1.0  # Fe
    assert not table[0].any()


def test_json_path_table(tmp_path):
    path = tmp_path / "my_atoms.json"
    path.write_text(json.dumps({"1": [0.5, 1.0], "8": [2.0, -1.0]}))
    table, elements = load_atom_table(str(path), return_elements=True)
    assert table.shape == (MAX_Z + 1, 2)
    assert elements.tolist() == [1, 8]
    np.testing.assert_array_equal(table[8], [2.0, -1.0])
    assert not table[2].any()
    table2 = load_atom_table(path)  # os.PathLike too
    np.testing.assert_array_equal(table, table2)


def test_dict_table_int_and_str_keys():
    t1, e1 = load_atom_table({11: [1, 2, 3], 17: [4, 5, 6]}, return_elements=True)
    t2 = load_atom_table({"11": [1, 2, 3], "17": [4, 5, 6]})
    np.testing.assert_array_equal(t1, t2)
    assert e1.tolist() == [11, 17]
    np.testing.assert_array_equal(t1[17], [4, 5, 6])


def test_array_table():
    arr = np.zeros((MAX_Z + 1, 3))
    arr[6] = [1, 2, 3]
    table, elements = load_atom_table(arr, return_elements=True)
    assert elements.tolist() == [6]
    with pytest.raises(ValueError, match=r"shape \(101, n_features\)"):
        load_atom_table(np.zeros((50, 3)))


@pytest.mark.parametrize(
    "spec, match",
    [
        ({1: [1, 2], 2: [1, 2, 3]}, "element Z=2 has 3 features, others have 2"),
        ({0: [1.0]}, "atomic number 0 outside 1..100"),
        ({101: [1.0]}, "atomic number 101 outside 1..100"),
        ({"H": [1.0]}, "key 'H' is not an atomic number"),
        ({1: [np.nan]}, "non-finite"),
        ({}, "is empty"),
        ("no_such_table", "neither 'cgcnn', 'onehot' nor an existing"),
        (3.5, "got float"),
    ],
)
def test_bad_tables(spec, match):
    with pytest.raises(ValueError, match=match):
        load_atom_table(spec)


def test_invalid_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_atom_table(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_atom_table(path)


def test_segments_add_up_to_92():
    assert sum(n for _, n in CGCNN_SEGMENTS) == 92
    reference = load_atom_table("cgcnn")
    start = 0
    for name, n in CGCNN_SEGMENTS:
        # every element has at most one hot entry per segment of the reference table
        assert reference[1:, start : start + n].sum(axis=1).max() == 1, name
        start += n


def test_build_cgcnn_table_reproduces_reference():
    built = build_cgcnn_table()
    reference = load_atom_table("cgcnn")
    assert built.shape == reference.shape == (101, 92)
    summary = compare_tables(built, reference)
    assert summary["n_entries"] == 9200
    # measured: 9002 of 9200 entries, 26 of 100 whole vectors; exact segments below
    assert summary["n_equal"] >= 9002
    assert summary["n_rows_equal"] >= 26
    per = summary["per_segment"]
    for exact in ("group", "period", "block", "first_ionization_energy"):
        assert per[exact]["elements_equal"] == 100, exact
    assert per["valence_electrons"]["elements_equal"] >= 99
    assert per["electronegativity"]["elements_equal"] >= 80
    assert per["atomic_volume"]["elements_equal"] >= 80
    assert per["electron_affinity"]["elements_equal"] >= 61
    assert per["covalent_radius"]["elements_equal"] >= 53
