"""``cgcnn-sk matbench`` on a damaged folder, by two processes at once, and after ``kill -9``.

The concurrent and killed runs are real processes (``subprocess``), running a few-epoch
preset on jdft2d (embedded): a lock per member keeps two runs from fitting the same member,
and a member killed with SIGKILL resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from cgcnn_sk import InconsistentVersionWarning, __version__
from cgcnn_sk.cli import main
from cgcnn_sk.workflows._files import ResultFileError
from cgcnn_sk.workflows._locks import claim, unit_lock
from cgcnn_sk.workflows.matbench import run_matbench

MICRO = {
    "featurizer": {"max_num_nbr": 4, "radius": 5.0},
    "cgcnn": {"train_split": None, "patience": None, "max_epochs": 1,
              "module__atom_fea_len": 4, "module__n_conv": 1, "module__h_fea_len": 4},
    "n_members": 2,
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of fold 0, 2 members; tests copy it before damaging it."""
    out = tmp_path_factory.mktemp("mb")
    run_matbench("jdft2d", preset=MICRO, folds=[0], out=out, progress=False)
    return out


def _copy(finished, tmp_path) -> Path:
    import shutil

    shutil.copytree(finished, tmp_path / "out")
    return tmp_path / "out"


def _rerun(out):
    return run_matbench("jdft2d", preset=MICRO, folds=[0], out=out, progress=False)


DAMAGE = {
    "member csv not csv": ("folds/fold0_member1.csv", lambda b: b"\x00\xff" * 40 + b'"',
                           r"fold0_member1.csv (is damaged|lacks).*delete it and the member's "
                           r"other file .*a rerun fits that member again"),
    "member csv missing rows": ("folds/fold0_member0.csv", lambda b: b[: len(b) // 2].rsplit(
        b"\n", 1)[0] + b"\n", r"fold0_member0.csv does not hold one prediction for each of "
        r"the fold's 128 test rows \(\d+ missing"),
    "member csv without the column": ("folds/fold0_member0.csv", lambda b: b.replace(
        b"prediction", b"pred", 1), r"fold0_member0.csv lacks the column\(s\) \['prediction'\]"),
    "member json cut": ("folds/fold0_member1.json", lambda b: b[:10],
                        r"fold0_member1.json is damaged \(JSONDecodeError"),
    "member json without a key": ("folds/fold0_member0.json", lambda b: b'{"member": "x"}',
                                  r"fold0_member0.json lacks wall_s, epochs"),
    "settings cut": ("settings.json", lambda b: b[:33],
                     r"settings.json is damaged \(JSONDecodeError: .*\): delete it if"),
    "fold json cut": ("folds/fold0.json", lambda b: b[:50],
                      r"fold0.json is damaged .*a rerun writes it again from the member files"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_of_the_folder_is_named_with_what_to_do(finished, tmp_path, case):
    name, damage, message = DAMAGE[case]
    out = _copy(finished, tmp_path)
    victim = out / "jdft2d" / "custom" / name
    victim.write_bytes(damage(victim.read_bytes()))
    if case == "fold json cut":  # read back only by the summary of another fold's run
        with pytest.raises(ResultFileError, match=str(victim).replace(".", r"\.") + ".*"):
            run_matbench("jdft2d", preset=MICRO, folds=[1], out=out, progress=False)
        return
    with pytest.raises(ResultFileError, match=message):
        _rerun(out)


def test_deleting_the_named_member_file_refits_that_member(finished, tmp_path):
    out = _copy(finished, tmp_path)
    folds = out / "jdft2d" / "custom" / "folds"
    (folds / "fold0_member1.csv").write_text("garbage")
    with pytest.raises(ResultFileError):
        _rerun(out)
    (folds / "fold0_member1.csv").unlink()
    (folds / "fold0_member1.json").unlink()
    table = _rerun(out)
    assert table["n_members"].tolist() == [2]


def test_the_cli_names_the_file_on_one_line(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    victim = out / "jdft2d" / "tiny" / "folds" / "fold0_member0.csv"
    victim.parent.mkdir(parents=True)
    victim.write_text('id,prediction\n"mb-jdft2d-001,1.0\n')
    code = main(["matbench", "--task", "jdft2d", "--preset", "tiny", "--folds", "0", "--out",
                 str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert f"error: ResultFileError: {victim}" in err[0] and "a rerun fits that member" in err[0]


def test_settings_record_the_version_and_another_one_warns(finished, tmp_path):
    out = _copy(finished, tmp_path)
    settings = out / "jdft2d" / "custom" / "settings.json"
    data = json.loads(settings.read_text())
    assert data["cgcnn_sk_version"] == __version__
    data["cgcnn_sk_version"] = "0.0.1"
    settings.write_text(json.dumps(data))
    with pytest.warns(InconsistentVersionWarning, match=r"the results in .*custom was saved by "
                      r"cgcnn_sk 0\.0\.1"):
        _rerun(out)


def test_claim_and_unit_lock(tmp_path):
    path = tmp_path / "locks" / "unit.lock"
    with claim(path) as first:
        assert first
        code = ("import sys; from cgcnn_sk.workflows._locks import claim\n"
                "with claim(sys.argv[1]) as mine: print(mine)")
        other = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                               text=True, timeout=60)
        assert other.stdout.strip() == "False", other.stderr
    with unit_lock(path, timeout=0):
        pass


# ---------------------------------------------------------------------------- real processes
SCRIPT = textwrap.dedent('''
    """Run matbench on jdft2d with a few-epoch preset; log each member this process starts."""
    import os, sys, time
    from pathlib import Path
    from skorch.callbacks import Callback
    from cgcnn_sk.workflows import matbench

    out, log, epochs, folds, members = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    pause_at = int(os.environ.get("PAUSE_AT", "0"))
    matbench.CHECKPOINT_EVERY_S = 0.0  # a checkpoint after every epoch

    class Pause(Callback):
        """At the end of epoch ``pause_at`` (before its checkpoint) say so and wait."""
        def on_epoch_end(self, net, **kwargs):
            if pause_at and len(net.history) == pause_at:
                Path(log + ".paused").write_text(str(os.getpid()))
                time.sleep(120)
        def __repr__(self):
            return "Pause()"

    real = matbench._resumable
    def logged(member, dirname):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {Path(dirname).stem}\\n")
        return real(member, dirname)
    matbench._resumable = logged
    preset = {
        "featurizer": {"max_num_nbr": 4, "radius": 5.0},
        "cgcnn": {"train_split": None, "patience": None, "max_epochs": epochs,
                  "module__atom_fea_len": 4, "module__n_conv": 1, "module__h_fea_len": 4,
                  "callbacks": [("pause", Pause())]},
        "n_members": members,
    }
    matbench.run_matbench("jdft2d", preset=preset, folds=range(folds), out=out,
                          progress=False)
''')


def _start(tmp_path, out, log, epochs, folds, members, **env):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(log), str(epochs), str(folds), str(members)],
        env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # two processes: 10 s on idle cores, 45 s on busy ones
def test_two_processes_on_one_folder_fit_each_member_once(tmp_path):
    out, log = tmp_path / "out", tmp_path / "members.log"
    procs = [_start(tmp_path, out, log, 4, 2, 2) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    started = [line.split()[1] for line in log.read_text().splitlines()]
    assert sorted(started) == ["fold0_member0", "fold0_member1", "fold1_member0",
                               "fold1_member1"]  # each once, whichever process took it
    root = out / "jdft2d" / "custom"
    for k in (0, 1):
        record = json.loads((root / "folds" / f"fold{k}.json").read_text())
        assert record["n_members"] == 2 and record["complete"]
    assert pd.read_csv(root / "summary.csv")["fold"].tolist() == [0, 1]
    assert len(pd.read_csv(root / "predictions.csv")) == 255  # folds 0 and 1 of 636 rows
    assert not list(root.rglob("*.partial"))


@pytest.mark.slow  # two processes one after the other: 10 s on idle cores, 40 s on busy ones
def test_a_member_killed_with_sigkill_resumes_from_its_checkpoint(tmp_path):
    out, log = tmp_path / "out", tmp_path / "members.log"
    proc = _start(tmp_path, out, log, 8, 1, 1, PAUSE_AT="4")
    paused = Path(str(log) + ".paused")
    deadline = time.monotonic() + 240
    while not paused.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached epoch 4"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # in epoch 4, after the checkpoint of epoch 3
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    folds = out / "jdft2d" / "custom" / "folds"
    assert not (folds / "fold0_member0.csv").exists()
    assert len(json.loads((folds / "fold0_member0.ckpt" / "history.json").read_text())) == 3

    rerun = _start(tmp_path, out, log, 8, 1, 1)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    meta = json.loads((folds / "fold0_member0.json").read_text())
    assert meta["resumed_after_epoch"] == 3  # the 3 checkpointed epochs were not trained again
    assert meta["epochs"] == 8  # 3 restored + the 5 left
    assert not (folds / "fold0_member0.ckpt").exists()
    assert len(pd.read_csv(folds / "fold0_member0.csv")) == 128
