"""Two studies on one cache, and a study killed with SIGKILL: real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

# Runs the pooling study (2 settings x 2 folds = 4 fits) on a cache; every fit that really
# runs (a cache miss) appends a line to the log, optionally after a pause so that a test
# can kill the process in the middle of the run.
SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from conftest import make_small_structures
    from cgcnn_sk.workflows import studies

    cache, log, pause, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    original, cached = studies._fit, studies._locked_fit

    def logged_fit(est, X, y, train, test, ids, scoring, key=None):  # on a cache miss only
        with open(log, "a") as f:
            f.write("fit\\n")
        return original(est, X, y, train, test, ids, scoring, key=key)

    def paused(*args, **kwargs):  # the result is in the cache before the pause
        result = cached(*args, **kwargs)
        time.sleep(pause)
        return result

    studies._fit, studies._locked_fit = logged_fit, paused
    structures, y = make_small_structures()
    tiny = {{"cgcnn__max_epochs": 2, "cgcnn__module__atom_fea_len": 8,
             "cgcnn__module__h_fea_len": 8, "cgcnn__module__n_conv": 1,
             "cgcnn__batch_size": 8}}
    result = studies.run_study(structures, y, "pooling", cv=2, params=tiny, n_jobs=1,
                               memory=cache)
    result.table.to_csv(out, index=False)
""")


def _start(tmp_path: Path, name: str, pause: float = 0.0) -> subprocess.Popen:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "cache"), str(tmp_path / "fits.log"),
         str(pause), str(tmp_path / f"{name}.csv")], env=env)


def _fits(tmp_path: Path) -> int:
    log = tmp_path / "fits.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_two_studies_on_one_cache_fit_each_setting_once(tmp_path):
    a, b = _start(tmp_path, "a"), _start(tmp_path, "b")
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    assert _fits(tmp_path) == 4  # not 8: each fit ran in one process, the other read it
    cols = ["setting", "fold", "test_mae"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv")[cols],
                                  pd.read_csv(tmp_path / "b.csv")[cols])


def test_a_killed_study_reruns_only_what_was_not_cached(tmp_path):
    p = _start(tmp_path, "killed", pause=30.0)  # waits after each fit: time to kill it
    deadline = time.monotonic() + 240
    while not list((tmp_path / "cache").rglob("output.pkl")):  # the first fit is cached
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    cached = len(list((tmp_path / "cache").rglob("output.pkl")))
    assert cached >= 1  # at least the first fit survived the kill
    before = _fits(tmp_path)
    again = _start(tmp_path, "again")
    assert again.wait(timeout=300) == 0
    assert _fits(tmp_path) - before == 4 - cached  # only what was not cached ran again
    assert len(pd.read_csv(tmp_path / "again.csv")) == 4
