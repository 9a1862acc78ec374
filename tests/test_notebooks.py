"""Execute every notebook with small parameters; any cell error fails the test.

The cell tagged ``parameters`` of each notebook is followed by an injected cell that shrinks
the data and the epochs (papermill's convention, without papermill). The slow variant runs
the notebooks at their own sizes.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import SHARED_DATA

nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

SMALL = {
    "01_crystal_graph_nacl.ipynb": {},
    "02_train_cgcnn.ipynb": {"N_SAMPLES": 40, "MAX_EPOCHS": 2},
    "03_studies.ipynb": {
        "N_SAMPLES": 24, "CV": 2, "STUDIES": ["pooling", "baseline"], "REPEATS": 2,
        "PARAMS": {"cgcnn__max_epochs": 2, "cgcnn__module__atom_fea_len": 8,
                   "cgcnn__module__h_fea_len": 8, "cgcnn__module__n_conv": 1},
        "N_JOBS": 1,
    },
    "04_contributions.ipynb": {"N_SAMPLES": 40, "MAX_EPOCHS": 2},
}
#: Notebooks whose small run still exceeds ~20 s (04: CIF parsing + a kernel; 89 s measured
#: on the shared 2-core machine under load), run with the slow tests only.
SLOW_SMALL = {"04_contributions.ipynb"}
NEEDS_SHARED_DATA = {"04_contributions.ipynb"}  # reads ../shared/data/perov5


def _run(name: str, overrides: dict, tmp_path: Path, timeout: int) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    if overrides:
        src = "# injected by tests/test_notebooks.py\n" + "\n".join(
            f"{k} = {v!r}" for k, v in overrides.items()
        )
        nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(src))
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    return nb


def _outputs(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SMALL else n for n in sorted(SMALL)],
)
def test_notebook_runs_small(name, tmp_path):
    if name in NEEDS_SHARED_DATA and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} reads {SHARED_DATA}, which is absent")
    nb = _run(name, SMALL[name], tmp_path, timeout=300)
    text = _outputs(nb)
    n_images = sum(
        "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
    )
    assert n_images >= 1, f"{name} drew no figure"
    if name.startswith("01"):
        assert "nbr_index[Na] = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]" in text
        assert "peak of the 2.82 A bond at mu = 2.8" in text
    if name.startswith("03"):
        assert (tmp_path / "study_report" / "report.html").exists()
        assert "fits in" in text and "verdict" in text
    if name.startswith("04"):
        gap = re.search(r"max \|sum of site contributions - prediction\| = (\S+) eV", text)
        assert gap is not None and float(gap.group(1)) < 1e-4  # float32 rounding, eV


def test_notebooks_saved_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        assert set(SMALL) >= {path.name}, f"{path.name} has no small settings in this test"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs_full_size(name, tmp_path):
    if name in NEEDS_SHARED_DATA and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} reads {SHARED_DATA}, which is absent")
    _run(name, {}, tmp_path, timeout=3600)
