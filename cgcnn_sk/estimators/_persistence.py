"""Load a pickled model (``joblib.dump``, ``pickle``, ``cgcnn-sk train``), naming what is wrong.

``joblib.load`` of a file cut short raises a bare ``EOFError`` or
``UnpicklingError: pickle data was truncated``, without the file's name; a CSV or CIF given by
mistake gives ``invalid load key``. :func:`load` turns these into one :class:`ModelFileError`
that names the file and the problem, and checks that what it holds is a fitted cgcnn_sk model.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import joblib

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
    cgcnn_sk._load.ModelFileError: ...net.joblib holds an unfitted CGCNNRegressor: fit it ...
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a saved model file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes; an interrupted save or copy?)")
    try:
        obj = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, ImportError, AttributeError,
            TypeError, IndexError, KeyError, OSError) as err:
        raise _unpickle_error(path, err) from err
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
    return obj
