"""The package's layout: public names stay importable, and one recipe serves every entry point."""

from __future__ import annotations

import importlib

import pytest
from sklearn.pipeline import Pipeline

import cgcnn_sk
from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer
from cgcnn_sk.cli import main

#: ``cgcnn_sk.__all__`` before the package was split into subpackages: each must still import.
NAMES_BEFORE_THE_MOVE = [
    "CGCNN", "CGCNNClassifier", "CGCNNEmbedder", "CGCNNEnsembleRegressor", "CGCNNRegressor",
    "ConvLayer", "CrystalGraph", "CrystalGraphError", "CrystalGraphFeaturizer", "CrystalGraphs",
    "GraphStore", "GraphStoreError", "ModelFileError", "RunInterrupted", "__version__",
    "baselines", "clear_cache", "datasets", "graph", "load", "load_atom_table",
    "write_graph_store",
]


@pytest.mark.parametrize("name", NAMES_BEFORE_THE_MOVE)
def test_names_public_before_the_move_still_import(name):
    assert name in cgcnn_sk.__all__
    namespace: dict = {}
    exec(f"from cgcnn_sk import {name}", namespace)
    assert namespace[name] is getattr(cgcnn_sk, name)


@pytest.mark.parametrize("module", ["cgcnn_sk.cli", "cgcnn_sk.graph", "cgcnn_sk.estimators",
                                    "cgcnn_sk.workflows.studies", "cgcnn_sk.report"])
def test_every_name_in_a_subpackage_all_exists(module):
    mod = importlib.import_module(module)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing


def _same(a, b) -> bool:
    """Equal values; objects (callbacks) of one class with equal parameters."""
    if hasattr(a, "get_params") and hasattr(b, "get_params"):
        pa, pb = a.get_params(), b.get_params()
        return type(a) is type(b) and pa.keys() == pb.keys() and all(
            _same(pa[k], pb[k]) for k in pa)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, z) for x, z in zip(a, b, strict=True))
    try:
        return bool(a == b) or repr(a) == repr(b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)


class _Captured(KeyboardInterrupt):
    """Ends the command at ``fit``, after the pipeline it built was recorded."""


def test_cgcnn_sk_train_trains_what_cgcnnregressor_does(small, tmp_path, monkeypatch, capsys):
    """``cgcnn-sk train`` (default recipe) builds the net and schedule of the no-argument
    estimators: every parameter equal, apart from the seed and the printing."""
    structures, y = small
    frame_path = tmp_path / "data.csv"
    import pandas as pd

    pd.DataFrame({"cif": [s.to(fmt="cif") for s in structures], "y": y}).to_csv(frame_path)
    seen = {}

    def record(self, X, y=None, **kw):
        seen.update(self.get_params())
        raise _Captured

    monkeypatch.setattr(Pipeline, "fit", record)
    code = main(["train", "--data", f"csv:{frame_path}", "--target", "y", "--quiet",
                 "--out", str(tmp_path / "m.joblib")])
    assert code == 130 and seen
    expected = Pipeline([("graph", CrystalGraphFeaturizer()),
                         ("cgcnn", CGCNNRegressor())]).get_params()
    skip = {"steps", "graph", "cgcnn", "memory", "verbose", "transform_input",
            "cgcnn__random_state", "cgcnn__verbose", "graph__verbose",
            "cgcnn___params_to_validate"}  # skorch's record of what set_params set
    keys = set(expected) - skip
    assert keys <= set(seen)
    differ = {k: (seen[k], expected[k]) for k in keys if not _same(seen[k], expected[k])}
    assert not differ
    assert seen["cgcnn__max_epochs"] == 300 and seen["graph__max_num_nbr"] == 12


def test_python_dash_m_runs_the_command():
    """``python -m cgcnn_sk.cli`` stays the command now that ``cli`` is a package."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cgcnn_sk.cli", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: cgcnn-sk")
