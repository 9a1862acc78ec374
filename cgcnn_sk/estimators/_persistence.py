"""Saving and loading the estimators: their ``save_params`` files and pickled models.

``_SavedState`` is the part of the estimators' base class that keeps what ``fit`` learns
(data dimensions, target and global-feature standardisation, classes) in the ``f_params``
file of ``save_params`` and sets it back, from that file or from ``initialize_for``, without
seeing data.

``joblib.load`` of a file cut short raises a bare ``EOFError`` or
``UnpicklingError: pickle data was truncated``, without the file's name; a CSV or CIF given by
mistake gives ``invalid load key``. :func:`load` turns these into one :class:`ModelFileError`
that names the file and the problem, and checks that what it holds is a fitted cgcnn_sk model.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from skorch.history import History

from .._version import VERSION_KEY, InconsistentVersionWarning, __version__, check_saved_version
from ..graph._crystal import gaussian_centers

__all__ = ["ModelFileError", "load"]

# the compressed formats joblib reads, by their first bytes (zlib, gzip, bz2, lzma, xz, lz4)
# (joblib 1.3-1.5 ``compressor.py``; ``ZF`` is its old zlib format)
_COMPRESSED = (b"x", b"\x1f\x8b", b"BZ", b"]\x00", b"\xfd7zXZ", b'\x04"M\x18', b"ZF")


# what pickle, joblib's array reader and the decompressors say when the data stops early
_ENDS_EARLY = re.compile(r"truncated|exhausted|\bEOF\b|ran out of input|end-of-stream", re.I)


class ModelFileError(ValueError):
    """A saved model file that cannot be used; the message names the file and why."""


def _is_ours(obj: Any) -> bool:
    """Whether ``obj`` is, or contains as a parameter, a cgcnn_sk estimator."""
    def ours(o):
        return type(o).__module__.split(".")[0] == "cgcnn_sk"

    if ours(obj):
        return True
    try:
        params = obj.get_params(deep=True)
    except Exception:  # not an estimator, or one whose get_params fails
        return False
    return any(ours(v) for v in params.values())


def _unpickle_error(path: Path, err: Exception) -> ModelFileError:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
    compressed = head.startswith(_COMPRESSED)
    if not compressed and head[:1] != b"\x80":  # pickle protocols >= 2 start with PROTO
        kind = " (a zip archive: torch.save? see pretrained.load or load_params)" \
            if head.startswith(b"PK") else ""
        return ModelFileError(
            f"{path} is not a pickle or joblib file{kind}: it starts with {head!r}"
        )
    if isinstance(err, (ModuleNotFoundError, ImportError, AttributeError)):
        return ModelFileError(
            f"{path} cannot be unpickled: {type(err).__name__}: {err} (it was saved with other "
            "packages or other versions of them)"
        )
    # a complete pickle ends with the STOP opcode b"."; joblib writes arrays inside the stream
    if (isinstance(err, EOFError) or _ENDS_EARLY.search(str(err))
            or (not compressed and head[:1] == b"\x80" and last != b".")):
        return ModelFileError(
            f"{path} is truncated: the pickle ends early ({size} bytes on disk; an interrupted "
            "save or copy?); save or copy it again"
        )
    return ModelFileError(f"{path} is a damaged pickle: {type(err).__name__}: {err}")


def load(path: str | os.PathLike) -> Any:
    """Load a fitted cgcnn_sk model or pipeline saved with joblib or pickle.

    Unpickling runs code from the file: load only files you trust.

    Parameters
    ----------
    path : path-like
        A file written by ``joblib.dump`` (any compression), ``pickle.dump`` or
        ``cgcnn-sk train``.

    Returns
    -------
    model : object
        The estimator or pipeline; it contains a cgcnn_sk estimator and is fitted.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is a folder, empty, truncated, not a pickle, saved with missing packages,
        holds something else than a cgcnn_sk model, or an unfitted one. The message names
        the file and the problem.

    Examples
    --------
    >>> import joblib, tempfile, os
    >>> from cgcnn_sk import CGCNNRegressor, load
    >>> path = os.path.join(tempfile.mkdtemp(), "net.joblib")
    >>> _ = joblib.dump(CGCNNRegressor(), path)
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cgcnn_sk.estimators._persistence.ModelFileError: ...net.joblib holds an unfitted ...
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a saved model file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes; an interrupted save or copy?)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            obj = joblib.load(path)
        except (pickle.UnpicklingError, EOFError, ValueError, ImportError, AttributeError,
                TypeError, IndexError, KeyError, OSError) as err:
            raise _unpickle_error(path, err) from err
    saved = _saved_versions(path, caught)
    name = type(obj).__name__
    if isinstance(obj, dict) and "graphs" in obj:
        raise ModelFileError(f"{path} holds crystal graphs (cgcnn-sk featurize output: keys "
                             f"{sorted(obj)}), not a model")
    if not _is_ours(obj):
        raise ModelFileError(f"{path} holds a {name}, not a fitted cgcnn_sk pipeline or "
                             "estimator")
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError as err:
        raise ModelFileError(f"{path} holds an unfitted {name}: fit it before saving") from err
    except TypeError:  # not an estimator sklearn can check: keep it
        pass
    _check_state(path, obj, saved)
    return obj


_META_KEY = "_cgcnn_sk_meta"


def _fixed_scaler(mean: np.ndarray, scale: np.ndarray) -> StandardScaler:
    """A StandardScaler as ``fit`` would leave it, from its documented fitted attributes."""
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean.copy(), scale.copy(), scale**2
    scaler.n_features_in_, scaler.n_samples_seen_ = int(mean.size), 0
    return scaler


def _file_name(f) -> str:
    """A path as given (a ``Path``'s ``.name`` would drop its folder), or an open file's name."""
    return os.fspath(f) if isinstance(f, (str, os.PathLike)) else str(getattr(f, "name", f))


class _SavedState:
    """What ``fit`` learns, set without data (``initialize_for``) and kept in ``f_params``."""

    def _fit_meta(self) -> dict:
        meta = {
            "n_atom_features": int(self.n_atom_features_),
            "n_bond_features": int(self.n_bond_features_),
            "gaussian": [float(v) for v in self.gaussian_],
            "n_outputs": int(self.n_outputs_),
        }
        for key in ("max_num_nbr", "atom_table_digest"):  # unknown after initialize_for
            if getattr(self, key + "_", None) is not None:
                meta[key] = getattr(self, key + "_")
        if getattr(self, "n_global_", 0):  # without globals the file has no global keys
            names = self.global_feature_names_
            meta["n_global"] = int(self.n_global_)
            meta["global_names"] = None if names is None else [str(n) for n in names]
            meta["global_mean"] = [float(v) for v in self.global_scaler_.mean_]
            meta["global_scale"] = [float(v) for v in self.global_scaler_.scale_]
        return meta

    def _set_globals(self, mean, scale, names) -> None:
        """Validate and store the global features' width, names and scaler (``initialize_for``)."""
        if mean is None and scale is None:
            if names is not None:
                raise ValueError("global_names needs global_mean and global_scale too")
            self.n_global_ = 0
            self.global_feature_names_ = self.global_scaler_ = None
            return
        if mean is None or scale is None:
            raise ValueError("give both global_mean and global_scale, or neither")
        mean = np.asarray(mean, dtype=np.float64)
        scale = np.asarray(scale, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or mean.size == 0:
            raise ValueError(
                f"global_mean (shape {mean.shape}) and global_scale (shape {scale.shape}) must "
                "be two non-empty 1-D arrays of the same length, one value per global feature"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(
                f"global_mean must be finite and global_scale finite and > 0, got "
                f"global_mean={mean.tolist()}, global_scale={scale.tolist()}"
            )
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != mean.size:
                raise ValueError(
                    f"global_names has {len(names)} names for {mean.size} global features"
                )
        self.n_global_ = int(mean.size)
        self.global_feature_names_ = None if names is None else np.asarray(names, dtype=object)
        self.global_scaler_ = _fixed_scaler(mean, scale)

    @staticmethod
    def _globals_from_meta(meta: dict) -> dict:
        if not meta.get("n_global"):
            return {}
        return {"global_mean": meta["global_mean"], "global_scale": meta["global_scale"],
                "global_names": meta.get("global_names")}

    def _set_graph_dims(self, n_atom_features, gaussian) -> None:
        """Validate and store what ``fit`` learns from the graphs (``initialize_for``)."""
        if (
            not isinstance(n_atom_features, (int, np.integer))
            or isinstance(n_atom_features, bool)
            or n_atom_features < 1
        ):
            raise ValueError(
                f"n_atom_features must be a positive integer, got {n_atom_features!r}"
            )
        try:
            dmin, step, radius = (float(v) for v in gaussian)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"gaussian must be (dmin, step, radius), three numbers, got {gaussian!r}"
            ) from exc
        if not (np.isfinite([dmin, step, radius]).all() and step > 0 and radius > dmin):
            raise ValueError(
                f"gaussian=(dmin, step, radius)={(dmin, step, radius)} needs finite values, "
                "step > 0 and radius > dmin"
            )
        self.n_atom_features_ = int(n_atom_features)
        self.gaussian_ = (dmin, step, radius)
        self.max_num_nbr_ = self.atom_table_digest_ = None  # not known without the graphs
        self.n_bond_features_ = len(gaussian_centers(dmin, step, radius))

    def _initialize_from_meta(self, meta: dict) -> None:
        """Become fitted from the ``"_cgcnn_sk_meta"`` entry that ``save_params`` writes."""
        self.initialize_for(
            n_atom_features=meta["n_atom_features"],
            gaussian=meta["gaussian"],
            **self._targets_from_meta(meta),
            **self._globals_from_meta(meta),
        )
        self.max_num_nbr_ = meta.get("max_num_nbr")
        self.atom_table_digest_ = meta.get("atom_table_digest")

    def save_params(self, f_params=None, use_safetensors=False, **kwargs):
        """skorch's ``save_params``; ``f_params`` also stores what ``fit`` learned.

        Besides the module's ``state_dict`` the ``f_params`` file holds one extra entry
        (``"_cgcnn_sk_meta"``: data dimensions, target standardisation, classes), so
        ``Estimator(**same_params).load_params(f_params=...)`` works without calling ``fit``
        or ``initialize`` first. With ``use_safetensors=True`` only the tensors are saved.
        """
        if f_params is None or use_safetensors:
            return super().save_params(
                f_params=f_params, use_safetensors=use_safetensors, **kwargs
            )
        self.check_is_fitted()
        if any(v is not None for v in kwargs.values()):
            super().save_params(use_safetensors=use_safetensors, **kwargs)
        state = dict(self.module_.state_dict())
        state[_META_KEY] = {**self._fit_meta(), VERSION_KEY: __version__}
        torch.save(state, f_params)
        return None

    def load_params(self, f_params=None, use_safetensors=False, checkpoint=None, **kwargs):
        """skorch's ``load_params``; a file from :meth:`save_params` restores ``fit``'s state.

        ``checkpoint`` (a skorch ``Checkpoint``, as ``LoadInitState`` passes it) is expanded
        into its files, so its ``f_params`` file is read like any other. A file that is
        truncated, not a torch file, or holds weights of another architecture raises a
        ``ValueError`` naming the file and what is wrong with it.
        """
        if checkpoint is not None:
            # as skorch does: the history first, its rows name the files (FileNotFoundError
            # on a first run, which LoadInitState ignores)
            if kwargs.get("f_history") is None and checkpoint.f_history is not None:
                self.history = History.from_file(checkpoint.f_history_)
            files = checkpoint.get_formatted_files(self)
            files.pop("f_pickle", None)
            files.update({k: v for k, v in kwargs.items() if v is not None})
            kwargs = files
            f_params = f_params if f_params is not None else kwargs.pop("f_params", None)
        if f_params is not None and not use_safetensors:
            self._load_module_file(f_params)
        else:
            kwargs["f_params"] = f_params
        # skorch loads the other files; one at a time, so an error can name the bad one
        for key, value in kwargs.items():
            if value is None:
                continue
            try:
                super().load_params(use_safetensors=use_safetensors, **{key: value})
            except FileNotFoundError:
                raise
            except Exception as exc:
                name = _file_name(value)
                raise ValueError(
                    f"{key}={name}: cannot be loaded (truncated, or a file of another kind or "
                    f"another model?): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                ) from exc
            if key == "f_params":
                self._fresh_module = False
        return None

    def _load_module_file(self, f_params) -> None:
        """Read a ``save_params`` file: module weights and, when present, what fit learned."""
        name = _file_name(f_params)
        load_kwargs = self.torch_load_kwargs or {"weights_only": True}
        try:
            state = torch.load(f_params, map_location=self.device, **load_kwargs)
        except FileNotFoundError:
            raise
        except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError...
            raise ValueError(
                f"{name} is not a readable save_params file (truncated or not written by "
                f"torch.save?): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        meta = state.pop(_META_KEY, None) if isinstance(state, dict) else None
        if isinstance(meta, dict):  # written by save_params, which records the version
            check_saved_version(str(name), meta.pop(VERSION_KEY, None), stacklevel=4)
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            keys = sorted(map(str, state))[:4] if isinstance(state, dict) else []
            raise ValueError(
                f"{name} holds a {type(state).__name__} (keys {keys}), not the module "
                "state_dict that save_params(f_params=...) writes"
            )
        # (re)build only when needed: inside fit (LoadInitState) a rebuild would replace the
        # optimizer and callbacks that training is using
        same = self.initialized_ and hasattr(self, "n_outputs_") and self._fit_meta() == meta
        if meta is not None and not same:
            self._initialize_from_meta(meta)
        elif not self.initialized_:
            self.initialize()
        try:
            self.module_.load_state_dict(state)
        except RuntimeError as exc:
            lines = " ".join(ln.strip() for ln in str(exc).splitlines())
            raise ValueError(
                f"{name} does not fit {type(self).__name__}'s module (other module__ "
                f"parameters than when it was saved?): {lines[:400]}"
            ) from exc
        self._fresh_module = False


def _saved_versions(path: Path, caught: list) -> set:
    """Re-issue the warnings of unpickling, the version ones once and naming the file."""
    saved = set()
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            saved.add(w.message.saved_version)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for version in saved:
        warnings.warn(InconsistentVersionWarning(str(path), version), stacklevel=3)
    return saved


def _parts(obj: Any) -> list:
    """``obj`` and the estimators it holds as parameters (pipeline steps, wrapped nets)."""
    parts = [obj]
    try:
        parts += list(obj.get_params(deep=True).values())
    except Exception:  # not an estimator
        pass
    return parts


def _check_state(path: Path, obj: Any, saved: set) -> None:
    """A fitted part that lacks some of the state this version needs cannot work: say so.

    A part lacking all of it is simply unfitted (``check_is_fitted`` judged the whole).
    """
    for part in _parts(obj):
        required = getattr(type(part), "_required_state", ())
        missing = [name for name in required if not hasattr(part, name)]
        if missing and len(missing) < len(required):
            by = ("another cgcnn_sk version" if not saved else
                  " and ".join(f"cgcnn_sk {v}" if v else "a cgcnn_sk version that did not "
                               "record its version" for v in sorted(saved, key=str)))
            raise ModelFileError(
                f"{path} holds a fitted {type(part).__name__} saved by {by}, without "
                f"{', '.join(missing)}, which cgcnn_sk {__version__} needs to predict: refit "
                "it with this version (or load it with the version that saved it)"
            )
