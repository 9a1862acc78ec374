"""Reading back the files a run wrote, with errors that name the file and say what to do.

A results folder is read back on every rerun (to resume) and may meet a file that a crash, a
full disk or a hand edit damaged. ``json`` and ``pandas`` then say ``Expecting ',' delimiter``
or ``KeyError``, without the file; :func:`read_json` and :func:`read_csv` raise one
:class:`ResultFileError` naming the file, the problem and the remedy given by the caller
(typically: delete it, and the rerun rebuilds it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ResultFileError", "read_csv", "read_json"]


class ResultFileError(ValueError):
    """A file of a results folder cannot be used; the message names it and says what to do."""


def _why(exc: BaseException) -> str:
    text = (str(exc).splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_json(path: Path, remedy: str, keys: tuple[str, ...] = ()) -> Any:
    """``json.loads`` of ``path``; a ResultFileError naming it when unreadable or lacking ``keys``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fold0.json"
    >>> _ = path.write_text('{"mae": 1.0,')
    >>> read_json(path, "delete it; a rerun writes it again")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cgcnn_sk.workflows._files.ResultFileError: .../fold0.json is damaged (JSONDecodeError: ...
    """
    try:
        data = json.loads(Path(path).read_text())
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are both
        raise ResultFileError(f"{path} is damaged ({_why(exc)}): {remedy}") from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise ResultFileError(f"{path} lacks {', '.join(missing)}: {remedy}")
    return data


def read_csv(path: Path, remedy: str, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """``pandas.read_csv`` of ``path``; a ResultFileError naming it when unreadable or lacking
    ``columns``."""
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ResultFileError(f"{path} is damaged ({_why(exc)}): {remedy}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ResultFileError(
            f"{path} lacks the column(s) {missing} (it has {list(frame.columns)[:6]}): {remedy}"
        )
    return frame
