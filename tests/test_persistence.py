"""Determinism and persistence of the estimators: same seed, same numbers; saved models
predict the same in a fresh process; an interrupted fit resumes from its checkpoint."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from conftest import make_small_structures
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from cgcnn_sk import CGCNNClassifier, CGCNNRegressor
from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer

SMALL = dict(module__atom_fea_len=16, module__h_fea_len=16, module__n_conv=2)
ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def data():
    structures, y = make_small_structures()
    graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
    return structures, graphs, y


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout's cgcnn_sk."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = {"PYTHONPATH": f"{ROOT}:{TESTS}", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


# ---- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CGCNNRegressor, CGCNNClassifier])
def test_same_random_state_gives_bit_identical_predictions(data, cls):
    _, graphs, y = data
    target = y if cls is CGCNNRegressor else y > np.median(y)
    kw = dict(max_epochs=3, random_state=7, **SMALL)
    first = cls(**kw).fit(graphs, target)
    second = cls(**kw).fit(graphs, target)
    out = "predict" if cls is CGCNNRegressor else "predict_proba"
    np.testing.assert_array_equal(getattr(first, out)(graphs), getattr(second, out)(graphs))
    assert first.history[:, "train_loss"] == second.history[:, "train_loss"]


def test_grid_search_scores_are_identical_between_two_runs(data):
    structures, _, y = data
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8)),
                     ("cgcnn", CGCNNRegressor(max_epochs=2, random_state=0, **SMALL))])
    grid = {"graph__max_num_nbr": [6, 8], "cgcnn__lr": [1e-3, 3e-3]}

    def scores():
        search = GridSearchCV(pipe, grid, cv=KFold(3, shuffle=True, random_state=0),
                              scoring="neg_mean_absolute_error")
        return search.fit(structures, y).cv_results_

    a, b = scores(), scores()
    for key in [f"split{i}_test_score" for i in range(3)] + ["mean_test_score"]:
        np.testing.assert_array_equal(a[key], b[key])
    assert len(set(a["mean_test_score"])) == 4  # the four settings differ


# ---- persistence in a fresh process -------------------------------------------------------


def test_pickle_joblib_and_save_params_predict_the_same_in_a_fresh_process(data, tmp_path):
    structures, _, y = data
    pipe = Pipeline([("graph", CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8)),
                     ("cgcnn", CGCNNRegressor(max_epochs=2, random_state=0, **SMALL))])
    pipe.fit(structures, y)
    expected = pipe.predict(structures)
    np.save(tmp_path / "expected.npy", expected)
    with open(tmp_path / "pipe.pkl", "wb") as fh:
        pickle.dump(pipe, fh)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    pipe[-1].save_params(f_params=tmp_path / "params.pt")
    result = _run(
        f"""
        import pickle
        import joblib, numpy as np
        from conftest import make_small_structures
        from cgcnn_sk import CGCNNRegressor
        from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer

        structures, _ = make_small_structures()
        expected = np.load("expected.npy")
        with open("pipe.pkl", "rb") as fh:
            by_pickle = pickle.load(fh).predict(structures)
        by_joblib = joblib.load("pipe.joblib").predict(structures)
        net = CGCNNRegressor(**{SMALL!r})
        net.load_params(f_params="params.pt")
        graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
        by_params = net.predict(graphs)
        for name, got in [("pickle", by_pickle), ("joblib", by_joblib), ("params", by_params)]:
            assert np.array_equal(got, expected), (name, got - expected)
        print("same")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "same"


# ---- resuming an interrupted fit ----------------------------------------------------------


class _InterruptAt(Callback):
    """Ctrl-C at the end of epoch ``epoch`` (after the checkpoint of that epoch is written)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def _resumable(dirname, *extra, max_epochs=6):
    checkpoint = Checkpoint(monitor=None, dirname=str(dirname))  # every epoch
    callbacks = [("checkpoint", checkpoint), ("resume", LoadInitState(checkpoint)), *extra]
    return CGCNNRegressor(max_epochs=max_epochs, patience=None, random_state=0,
                          callbacks=callbacks, **SMALL)


def test_fit_interrupted_by_ctrl_c_resumes_with_the_same_epochs_and_schedule(data, tmp_path):
    _, graphs, y = data
    full = _resumable(tmp_path / "full").fit(graphs, y)
    assert len(full.history) == 6

    interrupted = _resumable(tmp_path / "run", ("stop", _InterruptAt(2))).fit(graphs, y)
    assert len(interrupted.history) == 2
    resumed = _resumable(tmp_path / "run").fit(graphs, y)  # a new estimator, as after a restart
    assert len(resumed.history) == 6
    assert resumed.history[:, "fit_epoch"] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed.history[:, "event_lr"], full.history[:, "event_lr"],
                               rtol=1e-12)
    # the first two epochs are the interrupted run's, restored from the checkpoint
    assert resumed.history[:2, "train_loss"] == interrupted.history[:, "train_loss"]
    # and a finished run resumed again trains nothing more
    again = _resumable(tmp_path / "run").fit(graphs, y)
    assert len(again.history) == 6


def test_fit_of_a_killed_process_resumes_from_its_last_checkpoint(data, tmp_path):
    _, graphs, y = data
    result = _run(
        f"""
        import os
        from conftest import make_small_structures
        from skorch.callbacks import Callback, Checkpoint, LoadInitState
        from cgcnn_sk import CGCNNRegressor
        from cgcnn_sk.graph._featurizer import CrystalGraphFeaturizer

        class Kill(Callback):
            def on_epoch_end(self, net, **kwargs):
                if len(net.history) == 3:
                    os._exit(9)  # no cleanup, no on_train_end: as if the process were killed

        structures, y = make_small_structures()
        graphs = CrystalGraphFeaturizer(radius=6.0, max_num_nbr=8).fit_transform(structures)
        checkpoint = Checkpoint(monitor=None, dirname="run")
        net = CGCNNRegressor(max_epochs=6, patience=None, random_state=0, **{SMALL!r},
                             callbacks=[("checkpoint", checkpoint),
                                        ("resume", LoadInitState(checkpoint)), ("kill", Kill())])
        net.fit(graphs, y)
        """,
        tmp_path,
    )
    assert result.returncode == 9, result.stderr[-2000:]
    resumed = _resumable(tmp_path / "run").fit(graphs, y)
    full = _resumable(tmp_path / "full").fit(graphs, y)
    assert len(resumed.history) == len(full.history) == 6
    assert resumed.history[:, "fit_epoch"] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed.history[:, "event_lr"], full.history[:, "event_lr"],
                               rtol=1e-12)
    # two processes: the same losses up to float32 summation order
    np.testing.assert_allclose(resumed.history[:3, "train_loss"], full.history[:3, "train_loss"],
                               rtol=1e-5)
    assert torch.isfinite(torch.as_tensor(resumed.predict(graphs))).all()
