"""What the command reads: the ``--data`` specs, and pipeline parameters given as flags."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATA_HELP", "CLIError", "Data", "load_data", "parse_set_params"]


DATA_HELP = (
    "jdft2d (embedded, default) | matbench:<name> (e.g. matbench:phonons; see --data-home) | "
    "cif-folder:<path> (CIF files + id_prop.csv) | csv:<path> (a column of CIF text or CIF "
    "paths, and a numeric target column; see --target, --structure-column)"
)


class CLIError(Exception):
    """A problem with the arguments or the data, reported as one line."""


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    """Structures and targets loaded from a ``--data`` spec."""

    structures: list
    y: np.ndarray | None
    ids: list | None
    name: str
    target: str
    unit: str | None
    matbench: bool = False
    task: str | None = None  # the Matbench task's key ("jdft2d"), for task-specific settings


def _read_csv(path: Path, target: str | None, structure_column: str | None) -> Data:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as err:  # parser errors, encodings, empty files
        raise CLIError(f"cannot read csv:{path}: {type(err).__name__}: {_one_line(err)}") from err
    cols = list(frame.columns)
    if structure_column is None:
        found = [c for c in ("structure", "cif", "cif_path", "path", "file") if c in cols]
        if not found:
            raise CLIError(
                f"csv:{path}: no structure column (looked for structure, cif, cif_path, path, "
                f"file; columns are {cols}); name it with --structure-column"
            )
        structure_column = found[0]
    elif structure_column not in cols:
        raise CLIError(f"csv:{path}: no column {structure_column!r} (columns are {cols})")
    if target is None:
        rest = [c for c in cols if c != structure_column and c not in ("id", "material_id")]
        numeric = [c for c in rest if pd.api.types.is_numeric_dtype(frame[c])]
        if len(rest) == 1:
            target = rest[0]
        elif len(numeric) == 1:
            target = numeric[0]
        else:
            raise CLIError(
                f"csv:{path}: cannot tell the target column among {rest}; name it with --target"
            )
    elif target not in cols:
        raise CLIError(f"csv:{path}: no target column {target!r} (columns are {cols})")
    values = pd.to_numeric(frame[target], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise CLIError(
            f"csv:{path}: target column {target!r} is not numeric (row {i}: "
            f"{frame[target].iloc[i]!r}; {bad.size} non-numeric rows)"
        )
    items = []
    for v in frame[structure_column]:
        if isinstance(v, str) and "\n" not in v and not Path(v).is_absolute():
            rel = path.parent / v
            v = str(rel) if rel.exists() else v
        items.append(v)
    id_col = next((c for c in ("id", "material_id") if c in cols), None)
    ids = [str(i) for i in frame[id_col]] if id_col else [str(i) for i in frame.index]
    return Data(items, values.to_numpy(float), ids, f"csv:{path}", target, None)


def load_data(
    spec: str,
    *,
    data_home: str | None = None,
    target: str | None = None,
    structure_column: str | None = None,
) -> Data:
    """Load structures and targets from a ``--data`` spec.

    Parameters
    ----------
    spec : str
        ``"jdft2d"``, ``"matbench:<name>"``, ``"cif-folder:<path>"`` or ``"csv:<path>"``.
    data_home : str, optional
        Folder of the Matbench files (``matbench:``).
    target, structure_column : str, optional
        Columns of a ``csv:`` file.

    Returns
    -------
    data : Data
        ``structures``, ``y``, ``ids``, ``name``, ``target``, ``unit``.
    """
    from ..datasets import TASKS

    scheme, _, rest = spec.partition(":")
    if spec == "jdft2d" or (spec == "matbench:jdft2d" and data_home is None):
        from ..datasets import load_jdft2d

        frame = load_jdft2d(as_frame=True)
        ids = [str(i) for i in frame.index]
        name, unit = TASKS["jdft2d"].target, TASKS["jdft2d"].unit
        return Data(list(frame["structure"]), frame["exfoliation_en"].to_numpy(float), ids,
                    "matbench_jdft2d (embedded)", name, unit, matbench=True, task="jdft2d")
    if scheme == "matbench" and rest:
        from ..datasets import load_matbench

        task = rest.removeprefix("matbench_")
        try:
            frame = load_matbench(task, data_home, as_frame=True, download_if_missing=False)
        except FileNotFoundError as err:
            raise CLIError(_one_line(err)) from err
        col = [c for c in frame.columns if c != "structure"][0]
        known = TASKS.get(task)
        name, unit = (known.target, known.unit) if known else (col, None)
        return Data(list(frame["structure"]), frame[col].to_numpy(float),
                    [str(i) for i in frame.index], f"matbench_{task}", name, unit, matbench=True,
                    task=task)
    if scheme in ("cif-folder", "csv") and rest:
        path = Path(rest).expanduser()
        if not path.exists():
            raise CLIError(f"cannot read data {spec!r}: {path} does not exist")
        if scheme == "csv":
            if not path.is_file():
                raise CLIError(f"cannot read data {spec!r}: {path} is not a file")
            return _read_csv(path, target, structure_column)
        if not path.is_dir():
            raise CLIError(f"cannot read data {spec!r}: {path} is not a folder")
        from .. import datasets

        if not hasattr(datasets, "load_cif_folder"):
            raise CLIError("cif-folder: needs cgcnn_sk.datasets.load_cif_folder (not available)")
        try:
            out = datasets.load_cif_folder(path)
        except (FileNotFoundError, ValueError, OSError) as err:
            raise CLIError(f"cannot read data {spec!r}: {_one_line(err)}") from err
        structures, y, ids = out[0], out[1], out[2] if len(out) > 2 else None
        try:
            y = np.asarray(y, dtype=float)
        except (TypeError, ValueError) as err:
            raise CLIError(f"{spec}: the targets in id_prop.csv are not numeric") from err
        return Data(list(structures), y, None if ids is None else [str(i) for i in ids],
                    f"cif-folder:{path}", "target", None)
    raise CLIError(f"unknown data {spec!r}; use {DATA_HELP}")


def _subsample(data: Data, n: int | None, random_state: int | None) -> Data:
    if n is None or n >= len(data.structures):
        return data
    if n < 1:
        raise CLIError(f"--max-samples must be >= 1, got {n}")
    keep = np.sort(np.random.default_rng(random_state).permutation(len(data.structures))[:n])
    return Data(
        [data.structures[i] for i in keep],
        None if data.y is None else data.y[keep],
        None if data.ids is None else [data.ids[i] for i in keep],
        f"{data.name} (random subset of {n})", data.target, data.unit, matbench=False,
    )


# --------------------------------------------------------------------------- flags
def _literal(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_set_params(extra: Sequence[str]) -> dict[str, Any]:
    """Turn ``["--cgcnn__module__pooling=max", "--graph__max_num_nbr", "8"]`` into a dict.

    Only names with a ``__`` (``<step>__<param>``) are accepted; anything else is an error.

    Examples
    --------
    >>> parse_set_params(["--cgcnn__module__pooling=max", "--graph__max_num_nbr", "8"])
    {'cgcnn__module__pooling': 'max', 'graph__max_num_nbr': 8}
    """
    out: dict[str, Any] = {}
    i = 0
    extra = list(extra)
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--"):
            raise CLIError(f"unrecognized argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if "__" not in name:
            raise CLIError(
                f"unrecognized argument {arg!r} (pipeline parameters look like "
                "--cgcnn__module__pooling=max)"
            )
        if not eq:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                raise CLIError(f"parameter --{name} needs a value (--{name}=VALUE)")
            value = extra[i + 1]
            i += 1
        out[name.replace("-", "_")] = _literal(value)
        i += 1
    return out


def _one_line(err: BaseException | str) -> str:
    text = str(err).strip() or type(err).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines)
