"""Ctrl-C during ``cgcnn-sk train``, ``matbench`` and ``study``: what is kept, what is not.

The interrupt is a real SIGINT (what Ctrl-C sends), raised in this process when a chosen
epoch begins, so it lands inside skorch's epoch loop exactly where a user's would.
"""

from __future__ import annotations

import dataclasses
import json
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import Callback

from cgcnn_sk import CGCNNRegressor, CrystalGraphFeaturizer, load
from cgcnn_sk.cli import load_data, main
from cgcnn_sk.workflows import matbench
from cgcnn_sk.workflows._interrupt import RunInterrupted, watch_sigint
from cgcnn_sk.workflows.matbench import MATBENCH_PRESETS, run_matbench
from cgcnn_sk.workflows.studies import make_cgcnn_pipeline, run_study

TINY = {"cgcnn__max_epochs": 5, "cgcnn__module__atom_fea_len": 8, "cgcnn__module__h_fea_len": 8,
        "cgcnn__module__n_conv": 1, "cgcnn__batch_size": 8}


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler, whatever the test runner inherited.

    A runner started in the background (``nohup``, ``cmd &`` without job control) inherits
    SIGINT as ignored, so Python installs no handler and a raised SIGINT does nothing; these
    tests are about the handler a terminal user gets.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def csv_file(small, tmp_path):
    structures, y = small
    path = tmp_path / "data.csv"
    pd.DataFrame({"cif": [s.to(fmt="cif") for s in structures], "volume": y}).to_csv(
        path, index=False)
    return path


def _ctrl_c_at(monkeypatch, epoch: int, fit: int = 1) -> list:
    """Send SIGINT when ``epoch`` (1-based) of the ``fit``-th fit begins; returns the fit log."""
    fits = []
    begin = CGCNNRegressor.on_train_begin
    epoch_begin = CGCNNRegressor.on_epoch_begin

    def on_train_begin(self, net, **kwargs):
        fits.append(0)
        return begin(self, net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        epoch_begin(self, net, **kwargs)
        fits[-1] += 1
        if len(fits) == fit and fits[-1] == epoch:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(CGCNNRegressor, "on_train_begin", on_train_begin)
    monkeypatch.setattr(CGCNNRegressor, "on_epoch_begin", on_epoch_begin)
    return fits


class _StopAt(Callback):
    """skorch's own way to end training early: a KeyboardInterrupt raised by a callback."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_watch_records_sigint_and_restores_the_handler():
    before = signal.getsignal(signal.SIGINT)
    with watch_sigint() as watch:
        assert not watch.interrupted
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert watch.interrupted
        with pytest.raises(KeyboardInterrupt):
            watch.check()
    assert signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored():
    # a run started with SIGINT ignored (nohup, background jobs) keeps it so: no handler goes in
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with watch_sigint() as watch:
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: no KeyboardInterrupt
    assert not watch.interrupted
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_a_callbacks_keyboardinterrupt_is_not_a_ctrl_c(small):
    # EarlyStopping and _StopAt stop skorch with KeyboardInterrupt: the watch ignores them
    structures, y = small
    pipe = make_cgcnn_pipeline("quick", 0, **TINY, cgcnn__callbacks=[("stop", _StopAt(2))])
    with watch_sigint() as watch:
        pipe.fit(structures, y)
    assert not watch.interrupted and len(pipe[-1].history) == 2


# ---- cgcnn-sk train -------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["validation", "whole set"])
def test_train_saves_the_model_trained_so_far(csv_file, small, tmp_path, monkeypatch, capsys,
                                             split):
    # cgcnn-sk train fits the default recipe (the whole set); a validation split is a flag
    flags = (["--cgcnn__train_split=auto", "--cgcnn__patience=60"] if split == "validation"
             else [])
    params = ({"cgcnn__train_split": "auto", "cgcnn__patience": 60} if split == "validation"
              else {})
    model = tmp_path / "model.joblib"
    _ctrl_c_at(monkeypatch, epoch=3)
    code = main(["train", "--data", f"csv:{csv_file}", "--out", str(model), "--quiet",
                 *[f"--{k}={v}" for k, v in TINY.items()], *flags])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 130
    assert "cgcnn-sk train: interrupted (Ctrl-C) at epoch 3 of 5 (2 complete" in err
    assert f"saved the model trained so far to {model}" in err
    assert (", the lowest valid_loss so far" in err) == (split == "validation")
    assert not model.with_name(model.name + ".partial").exists()
    # the same as a run that skorch stops itself when epoch 3 begins (same seed, same data)
    data = load_data(f"csv:{csv_file}")
    structures = data.structures
    reference = make_cgcnn_pipeline("default", 0, **TINY, **params,
                                    cgcnn__callbacks=[("stop", _StopAt(3))]).fit(structures,
                                                                                 data.y)
    saved = load(model)
    assert len(saved[-1].history) == 3
    np.testing.assert_array_equal(saved.predict(structures[:5]), reference.predict(structures[:5]))
    cif = tmp_path / "a.cif"
    small[0][0].to(filename=str(cif))
    assert main(["predict", str(model), str(cif)]) == 0


def test_train_interrupted_while_featurizing_saves_nothing(csv_file, tmp_path, monkeypatch,
                                                           capsys):
    def transform(self, X):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(CrystalGraphFeaturizer, "transform", transform)
    model = tmp_path / "model.joblib"
    assert main(["train", "--data", f"csv:{csv_file}", "--out", str(model), "--quiet"]) == 130
    assert "interrupted outside the training epochs" in capsys.readouterr().err
    assert not model.exists()


# ---- cgcnn-sk matbench ----------------------------------------------------------------------


def test_matbench_keeps_finished_members_and_drops_the_interrupted_one(tmp_path, monkeypatch,
                                                                      capsys):
    argv = ["matbench", "--task", "jdft2d", "--preset", "tiny", "--folds", "0,1",
            "--out", str(tmp_path), "--quiet"]
    _ctrl_c_at(monkeypatch, epoch=2, fit=2)  # fold 1's member, in its last epoch
    assert main(argv) == 130
    monkeypatch.undo()
    err = capsys.readouterr().err
    folds = tmp_path / "jdft2d" / "tiny" / "folds"
    assert (folds / "fold0_member0.csv").exists() and (folds / "fold0.json").exists()
    assert not (folds / "fold1_member0.csv").exists()
    assert not (folds / "fold1_member0.json").exists()
    assert (f"cgcnn-sk matbench: interrupted (Ctrl-C); 1 finished member file(s) kept in "
            f"{folds}, fold 1 member 0 was not written") in err
    assert "Resume with the same command: cgcnn-sk matbench --task jdft2d" in err

    fits = _ctrl_c_at(monkeypatch, epoch=99)  # counts fits, never interrupts
    assert main(argv) == 0
    assert len(fits) == 1  # only the interrupted member was fitted again
    done = json.loads((folds / "fold1.json").read_text())
    monkeypatch.undo()
    fresh = run_matbench("jdft2d", preset="tiny", folds=[1], out=tmp_path / "fresh",
                         progress=False)
    assert done["mae"] == pytest.approx(fresh["mae"].iloc[0], rel=1e-9)


def _four_epoch_tiny():
    tiny = MATBENCH_PRESETS["tiny"]
    return dataclasses.replace(tiny, cgcnn={**tiny.cgcnn, "max_epochs": 4})


def test_matbench_resumes_the_interrupted_member_from_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(matbench, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every epoch
    folds = tmp_path / "jdft2d" / "custom" / "folds"
    _ctrl_c_at(monkeypatch, epoch=3)  # epochs 1 and 2 are done and saved
    with pytest.raises(RunInterrupted, match=(
            r"fold 0 member 0 was not written \(its checkpoint after epoch 2 is kept in "
            rf"{folds / 'fold0_member0.ckpt'}\)")):
        run_matbench("jdft2d", preset=_four_epoch_tiny(), folds=[0], out=tmp_path,
                     progress=False)
    assert not (folds / "fold0_member0.csv").exists()
    assert (folds / "fold0_member0.ckpt" / "params.pt").exists()

    fits = _ctrl_c_at(monkeypatch, epoch=99)  # counts epochs, never interrupts
    run_matbench("jdft2d", preset=_four_epoch_tiny(), folds=[0], out=tmp_path, progress=False)
    assert fits == [2]  # epochs 3 and 4 only
    meta = json.loads((folds / "fold0_member0.json").read_text())
    assert meta["epochs"] == 4 and meta["resumed_after_epoch"] == 2
    assert not (folds / "fold0_member0.ckpt").exists()  # removed once the member is written


def test_matbench_drops_an_unreadable_checkpoint_and_starts_the_member_over(tmp_path,
                                                                           monkeypatch):
    ckpt = tmp_path / "jdft2d" / "custom" / "folds" / "fold0_member0.ckpt"
    ckpt.mkdir(parents=True)
    torch.save({"w": torch.zeros(100)}, ckpt / "params.pt")
    whole = (ckpt / "params.pt").read_bytes()
    (ckpt / "params.pt").write_bytes(whole[: len(whole) // 2])  # a kill in the middle of a save
    fits = _ctrl_c_at(monkeypatch, epoch=99)
    with pytest.warns(RuntimeWarning, match=(rf"checkpoint {ckpt} is unreadable "
                                             r"\(\w+Error: .+\); its member starts over")):
        run_matbench("jdft2d", preset=_four_epoch_tiny(), folds=[0], out=tmp_path,
                     progress=False)
    assert fits == [4]
    meta = json.loads((ckpt.parent / "fold0_member0.json").read_text())
    assert meta["epochs"] == 4 and "resumed_after_epoch" not in meta


# ---- cgcnn-sk study -------------------------------------------------------------------------


def test_study_does_not_score_an_interrupted_fit(small, monkeypatch):
    structures, y = small
    fits = _ctrl_c_at(monkeypatch, epoch=1, fit=3)  # setting 2 (max), its first fold
    with pytest.raises(RunInterrupted) as exc:
        run_study(structures, y, "pooling", cv=2, params={**TINY, "cgcnn__max_epochs": 2},
                  n_jobs=1)
    assert len(fits) == 3  # the second fold of "max" never started
    partial = exc.value.result
    assert list(partial.table["setting"]) == ["pooling=mean"] * 2
    assert (partial.table["status"] == "ok").all()
    assert set(partial.predictions["setting"]) == {"pooling=mean"}
    assert str(exc.value) == partial.meta["interrupted"]
    assert str(exc.value).startswith("PARTIAL: interrupted (Ctrl-C) after 2 of 4 fits; they "
                                     "are reported; the others were not run")


def test_study_with_memory_resumes_from_the_finished_fits(small, monkeypatch, tmp_path):
    structures, y = small
    kwargs = dict(cv=2, params={**TINY, "cgcnn__max_epochs": 2}, n_jobs=1)
    _ctrl_c_at(monkeypatch, epoch=1, fit=3)
    with pytest.raises(RunInterrupted, match=f"after 2 of 4 fits; they are reported and "
                                             f"cached in {tmp_path}, so the same call"):
        run_study(structures, y, "pooling", memory=tmp_path, **kwargs)
    monkeypatch.undo()
    fits = _ctrl_c_at(monkeypatch, epoch=99)  # counts fits, never interrupts
    resumed = run_study(structures, y, "pooling", memory=tmp_path, **kwargs)
    assert len(fits) == 2  # the two folds of pooling=max; pooling=mean came from the cache
    assert resumed.meta["fits_from_cache"] == 2
    monkeypatch.undo()
    fresh = run_study(structures, y, "pooling", **kwargs)
    cols = ["setting", "fold", "test_mae", "test_rmse", "epochs", "status"]
    pd.testing.assert_frame_equal(resumed.table[cols], fresh.table[cols])
    pd.testing.assert_frame_equal(resumed.predictions, fresh.predictions)
    assert "fits_from_cache" not in fresh.meta


def test_study_interrupted_in_its_first_fit_has_no_result(small, monkeypatch):
    structures, y = small
    _ctrl_c_at(monkeypatch, epoch=1, fit=1)
    with pytest.raises(RunInterrupted,
                       match="after 0 of 4 fits; no fit had finished, nothing is kept") as exc:
        run_study(structures, y, "pooling", cv=2, params=TINY, n_jobs=1)
    assert exc.value.result is None


def test_cli_study_writes_a_partial_report_and_resumes(csv_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    _ctrl_c_at(monkeypatch, epoch=1, fit=3)
    argv = ["study", "--data", f"csv:{csv_file}", "--studies", "pooling", "--cv", "2",
            "--out", str(out), "--n-jobs", "1", "--quiet", "--format", "md,html",
            "--cgcnn__max_epochs=2", "--cgcnn__module__atom_fea_len=8",
            "--cgcnn__module__h_fea_len=8", "--cgcnn__module__n_conv=1"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith("cgcnn-sk study: PARTIAL: interrupted (Ctrl-C) after 2 of 4 fits")
    assert f"partial report: {out / 'report.html'}" in err
    assert list(pd.read_csv(out / "results.csv")["setting"]) == ["pooling=mean"] * 2
    md = (out / "report.md").read_text().splitlines()
    assert md[0] == "# What the study found"
    assert md[2].startswith("> **PARTIAL: interrupted (Ctrl-C) after 2 of 4 fits")
    html = (out / "report.html").read_text()
    assert '<p class="partial"><b>PARTIAL: interrupted (Ctrl-C)' in html
    monkeypatch.undo()
    fits = _ctrl_c_at(monkeypatch, epoch=99)
    assert f"Resume with the same command: cgcnn-sk study --data csv:{csv_file}" in err
    monkeypatch.undo()
    fits = _ctrl_c_at(monkeypatch, epoch=99)
    assert main(argv) == 0
    assert len(fits) == 2  # pooling=mean was read from OUT/cache
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert "PARTIAL" not in (out / "report.md").read_text()
