"""Reading a checkpoint of the reference CGCNN implementation (``*.pth.tar``).

A ``torch.save``'d dict with ``state_dict`` (the reference ``CrystalGraphConvNet``'s weights,
whose names :class:`~cgcnn_sk.nn.CGCNN` shares), ``normalizer`` (``mean`` and ``std`` of the
training targets) and ``args`` (the training options). :func:`_read_checkpoint` returns the
weights, the architecture read from their shapes, the task, the normalizer and the graph
settings, or a ``ValueError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import codecs
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..graph._crystal import gaussian_centers

#: Graph settings of the reference implementation, used when a checkpoint does not record them.
_REFERENCE_GRAPH = {"radius": 8.0, "max_num_nbr": 12, "dmin": 0.0, "step": 0.2}


def _numpy_scalar_globals() -> list:
    """numpy types that old checkpoints pickle (``best_mae_error`` as a numpy float)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    allowed = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return allowed


def _torch_load(path: Path, trust: bool) -> Any:
    if trust:
        return torch.load(path, map_location="cpu", weights_only=False)
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    try:
        if safe_globals is None:
            # torch 2.4 has only the process-wide allow-list, without (type, name) pairs,
            # and does not yet allow _codecs.encode (which pickled numpy scalars call; 2.5
            # does): both are added to it for good, or these checkpoints do not load.
            torch.serialization.add_safe_globals(
                [g for g in _numpy_scalar_globals() if not isinstance(g, tuple)]
                + [codecs.encode])
            return torch.load(path, map_location="cpu", weights_only=True)
        # Only add what is missing: leaving the context removes its globals again, and must
        # not remove any that the user had allowed before.
        already = torch.serialization.get_safe_globals()
        with safe_globals([g for g in _numpy_scalar_globals() if g not in already]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle of allowed objects at all
            reason = str(exc).splitlines()[0][:200]
            raise ValueError(
                f"{path.name} is not a readable torch checkpoint (truncated, or not written "
                f"by torch.save?): {reason}"
            ) from exc
        first = next(ln for ln in str(exc).splitlines() if "Unsupported global" in ln)
        raise ValueError(
            f"{path.name}: the checkpoint holds Python objects beyond tensors and numbers, "
            "which are not unpickled by default because that can run arbitrary code. If you "
            f"trust the file, call load(..., trust_pickle=True). ({first.strip()[:200]})"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(
            f"{path.name} is not a readable torch checkpoint (truncated, or not written by "
            f"torch.save?): {str(exc).splitlines()[0][:200]}"
        ) from exc


def _tensor_float(value: Any, what: str, path: Path) -> float:
    try:
        out = float(torch.as_tensor(value).reshape(-1)[0])
    except Exception as exc:
        raise ValueError(f"{path.name}: {what} is not a number ({value!r})") from exc
    if not np.isfinite(out):
        raise ValueError(f"{path.name}: {what} is not finite ({out})")
    return out


def _architecture(state: dict, path: Path) -> dict:
    """Module hyperparameters from the weight shapes of a reference state_dict."""
    for key in ("embedding.weight", "conv_to_fc.weight", "fc_out.weight"):
        if key not in state:
            raise ValueError(
                f"{path.name}: state_dict has no {key!r}; not a CGCNN checkpoint (its keys "
                f"start with {sorted(state)[:4]})"
            )
    atom_fea_len, n_atom_fea = state["embedding.weight"].shape
    conv_ids = sorted({int(m.group(1)) for k in state if (m := re.match(r"convs\.(\d+)\.", k))})
    if conv_ids != list(range(len(conv_ids))):
        raise ValueError(f"{path.name}: convolution layers {conv_ids} are not numbered 0..n-1")
    fc_ids = sorted({int(m.group(1)) for k in state if (m := re.match(r"fcs\.(\d+)\.", k))})
    arch = {
        "n_atom_fea": int(n_atom_fea),
        "atom_fea_len": int(atom_fea_len),
        "n_conv": len(conv_ids),
        "h_fea_len": int(state["conv_to_fc.weight"].shape[0]),
        "n_h": 1 + len(fc_ids),
        "n_out": int(state["fc_out.weight"].shape[0]),
        "batchnorm": "convs.0.bn1.weight" in state or not conv_ids,
        "n_bond_fea": None,
    }
    if conv_ids:
        arch["n_bond_fea"] = int(state["convs.0.fc_full.weight"].shape[1] - 2 * atom_fea_len)
    return arch


@dataclass(frozen=True)
class _Checkpoint:
    path: Path
    state_dict: dict
    arch: dict
    task: str
    mean: float
    std: float
    graph: dict
    info: dict


def _read_checkpoint(path: Path, trust: bool = False) -> _Checkpoint:
    raw = _torch_load(path, trust)
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name}: expected a dict checkpoint, got {type(raw).__name__}")
    state = raw.get("state_dict", raw if "embedding.weight" in raw else None)
    if not isinstance(state, dict):
        raise ValueError(
            f"{path.name}: no 'state_dict' entry (keys: {sorted(map(str, raw))[:8]}); not a "
            "reference CGCNN checkpoint"
        )
    state = {str(k): v for k, v in state.items() if not str(k).startswith("_")}
    arch = _architecture(state, path)
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        args = dict(vars(args)) if hasattr(args, "__dict__") else {}
    task = args.get("task")
    if task not in ("regression", "classification"):
        task = "regression" if arch["n_out"] == 1 else "classification"
    normalizer = raw.get("normalizer") or {"mean": 0.0, "std": 1.0}
    mean = _tensor_float(normalizer.get("mean", 0.0), "normalizer['mean']", path)
    std = _tensor_float(normalizer.get("std", 1.0), "normalizer['std']", path)
    if task == "regression" and std <= 0:
        raise ValueError(f"{path.name}: normalizer['std'] must be > 0, got {std}")
    graph = {k: args.get(k, v) for k, v in _REFERENCE_GRAPH.items()}
    graph = {k: int(v) if k == "max_num_nbr" else float(v) for k, v in graph.items()}
    n_gauss = len(gaussian_centers(graph["dmin"], graph["step"], graph["radius"]))
    if arch["n_bond_fea"] is not None and arch["n_bond_fea"] != n_gauss:
        raise ValueError(
            f"{path.name}: the first convolution expects {arch['n_bond_fea']} bond features, "
            f"but dmin={graph['dmin']}, step={graph['step']}, radius={graph['radius']} give "
            f"{n_gauss} Gaussians"
        )
    arch["n_bond_fea"] = n_gauss
    info = {
        "epoch": raw.get("epoch"),
        "best_mae_error": raw.get("best_mae_error", raw.get("best_mse_error")),
        "train_size": args.get("train_size"),
        "data_options": args.get("data_options"),
    }
    return _Checkpoint(path, state, arch, task, mean, std, graph, info)
