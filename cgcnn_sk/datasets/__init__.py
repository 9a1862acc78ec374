"""Datasets for cgcnn_sk: the embedded Matbench jdft2d task, loaders, and the Matbench folds.

* :func:`load_jdft2d` -- Matbench v0.1 ``matbench_jdft2d`` (636 structures, exfoliation energy
  in meV/atom), shipped with the package; no network.
* :func:`load_matbench` -- any Matbench v0.1 structure task from ``matbench_<name>.json.gz``.
* :func:`matbench_folds` -- the official 5 folds, usable as ``cv=``.
* :data:`TASKS` -- the Matbench tasks known by name: target column, meaning and unit.
* :func:`load_cif_folder` / :func:`save_cif_folder` -- the reference CGCNN folder layout.
* :func:`load_perovskites` -- the cubic perovskites CSV files (CIF text column).

Matbench: Dunn, Wang, Ganose, Dopp & Jain, npj Comput. Mater. 6, 138 (2020),
doi:10.1038/s41524-020-00406-3. See ``data/ATTRIBUTION.md`` for the embedded file.
"""

from ._cif import CifFolder, load_cif_folder, save_cif_folder
from ._matbench import MATBENCH_RANDOM_STATE, load_jdft2d, load_matbench, matbench_folds
from ._perovskites import load_perovskites
from ._tasks import TASKS, Task

__all__ = [
    "MATBENCH_RANDOM_STATE",
    "TASKS",
    "Task",
    "CifFolder",
    "load_cif_folder",
    "load_jdft2d",
    "load_matbench",
    "load_perovskites",
    "matbench_folds",
    "save_cif_folder",
]
