"""Execute the notebooks of ``notebooks/`` for the documentation, at documentation sizes.

Each notebook is run by ``nbclient`` with one cell inserted after its cell tagged
``parameters`` (the convention of ``tests/test_notebooks.py``), so the rendered page shows the
sizes it was run at. The executed copies go to ``docs/examples/`` and MyST-NB renders them
without executing again. A copy is reused while the notebook, its sizes and the package's
source are unchanged (set ``CGCNN_SK_DOCS_RERUN=1`` to run them all again;
``CGCNN_SK_DOCS_NOTEBOOKS=0`` renders them without running them, for quick edits of the other
pages). A cell that raises fails the build, naming the notebook and the cell.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

#: Sizes for the documentation build (CI: 2 cores, the whole build within about 5 minutes).
#: Keys are notebook file names; values are the assignments inserted after the parameters.
DOCS_PARAMS: dict[str, dict] = {
    "01_crystal_graph_nacl.ipynb": {},
    "02_train_cgcnn.ipynb": {},
    "03_studies.ipynb": {
        "N_SAMPLES": 150, "CV": 3, "STUDIES": ["neighbours", "pooling", "baseline"],
        "PARAMS": {"cgcnn__max_epochs": 20}, "N_JOBS": 1, "REPEATS": 2,
    },
    "04_contributions.ipynb": {},
}


def _shared_data() -> Path:
    import cgcnn_sk

    return Path(cgcnn_sk.__file__).resolve().parents[2] / "shared" / "data"


#: Notebooks that read files beside the checkout: rendered without outputs when absent.
NEEDS = {"04_contributions.ipynb": lambda: _shared_data() / "perov5" / "val.csv.gz"}


def _package_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((root / "cgcnn_sk").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def _prepare(source: Path, params: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(source, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise RuntimeError(f"{source.name} needs exactly one cell tagged 'parameters'")
    if params:
        src = "# Sizes of the documentation build (docs/_ext/run_notebooks.py)\n" + "\n".join(
            f"{k} = {v!r}" for k, v in params.items())
        nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(src))
    return nb


def _execute(nb: nbformat.NotebookNode, name: str, timeout: int) -> float:
    import nbclient

    # One torch thread per kernel (two kernels share the 2 cores of CI), and no tqdm notice
    # that ipywidgets is absent: the pages are static, the progress bars are not shown.
    env = {**os.environ, "PYTHONWARNINGS": "ignore:IProgress not found"}
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cgcnn_sk_docs_") as cwd:
        nbclient.NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}},
        ).execute(env=env)
    return time.perf_counter() - start


def run_notebooks(root: Path, out: Path, logger, timeout: int = 1200) -> None:
    """Write every notebook of ``root/notebooks`` to ``out``, executed at its docs size."""
    out.mkdir(exist_ok=True)
    rerun = os.environ.get("CGCNN_SK_DOCS_RERUN") == "1"
    digest = _package_digest(root)
    jobs = []
    for source in sorted((root / "notebooks").glob("*.ipynb")):
        if source.name not in DOCS_PARAMS:
            raise RuntimeError(f"{source.name} has no documentation sizes in DOCS_PARAMS")
        params = DOCS_PARAMS[source.name]
        key = hashlib.sha256(source.read_bytes() + repr(params).encode() + digest.encode())
        target = out / source.name
        if not rerun and target.exists():
            old = nbformat.read(target, as_version=4).metadata.get("cgcnn_sk_docs_key")
            if old == key.hexdigest():
                continue
        nb = _prepare(source, params)
        nb.metadata["cgcnn_sk_docs_key"] = key.hexdigest()
        needed = NEEDS.get(source.name)
        if os.environ.get("CGCNN_SK_DOCS_NOTEBOOKS") == "0":
            nb.metadata["cgcnn_sk_docs_key"] = None
            nbformat.write(nb, target)
            continue
        if needed is not None and not needed().exists():
            logger.info(f"notebooks: {source.name} not executed: {needed()} is absent")
            nb.metadata["cgcnn_sk_docs_key"] = None  # try again when the data is there
            note = (f"*This page was built without `{needed().name}` (see the data set-up "
                    "in the guide), so it shows the code without its outputs.*")
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(note))
            nbformat.write(nb, target)
            continue
        jobs.append((source.name, nb, target))

    def work(job):
        name, nb, target = job
        seconds = _execute(nb, name, timeout)
        nbformat.write(nb, target)
        return name, seconds

    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, seconds in pool.map(work, jobs):
            logger.info(f"notebooks: executed {name} in {seconds:.0f} s")
