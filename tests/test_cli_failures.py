"""``cgcnn-sk study`` fails (exit 1, one line) when every CGCNN fit of the study failed."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from cgcnn_sk.cli import main
from cgcnn_sk.workflows import studies


class _Result:
    """What ``run_study`` returns, reduced to what the command reads."""

    failed = studies.StudyResult.failed

    def __init__(self, table):
        self.table = table
        self.meta = {}

    def write_report(self, out, formats):
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("report")
        return {"md": out / "report.md", "csv": out / "results.csv"}

    def conclusions(self):
        return {}


def _table(cgcnn_status, rf_status=("ok",), error="ValueError: lr must be > 0\nmore"):
    rows = [{"study": "pooling", "model": "cgcnn", "setting": f"s{i}", "fold": 0,
             "status": s, "error": error if s == "failed" else ""}
            for i, s in enumerate(cgcnn_status)]
    rows += [{"study": "baseline", "model": "rf", "setting": "rf", "fold": 0, "status": s,
              "error": ""} for s in rf_status]
    return pd.DataFrame(rows)


def _run(monkeypatch, tmp_path, table, capsys):
    monkeypatch.setattr(studies, "run_study", lambda *a, **k: _Result(table))
    code = main(["study", "--studies", "pooling", "--max-samples", "20", "--quiet",
                 "--out", str(tmp_path / "out"), "--no-cache", "--n-jobs", "1"])
    return code, capsys.readouterr()


@pytest.mark.parametrize("n", [1, 3])
def test_study_whose_every_cgcnn_fit_failed_exits_1_with_the_first_reason(
        monkeypatch, tmp_path, capsys, n):
    code, out = _run(monkeypatch, tmp_path, _table(["failed"] * n), capsys)
    assert code == 1
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("cgcnn-sk study: error: every CGCNN fit failed: "
                               "ValueError: lr must be > 0; more (report of the failures: ")
    assert (tmp_path / "out" / "report.md").exists()  # the report is still written
    assert "report:" not in out.out


def test_study_with_one_good_cgcnn_fit_succeeds(monkeypatch, tmp_path, capsys):
    code, out = _run(monkeypatch, tmp_path, _table(["failed", "ok", "failed"]), capsys)
    assert code == 0
    assert out.out.startswith("report: ")


def test_a_failed_baseline_alone_does_not_fail_the_command(monkeypatch, tmp_path, capsys):
    code, _ = _run(monkeypatch, tmp_path, _table(["ok"], rf_status=("failed",)), capsys)
    assert code == 0


@pytest.mark.slow
def test_study_with_an_invalid_lr_exits_non_zero_for_real(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cgcnn_sk.cli", "study", "--cgcnn__lr=fast", "--max-samples",
         "30", "--studies", "pooling", "--out", str(tmp_path), "--quiet", "--n-jobs",
         "1", "--no-cache"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "every CGCNN fit failed: " in proc.stderr and "'lr'" in proc.stderr
