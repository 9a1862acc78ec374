"""The package version, and the warning for objects saved by another version of it.

Everything cgcnn_sk saves for later -- pickled estimators and featurizers, ``save_params``
files, graph stores, Matbench result folders -- records the version that wrote it. Reading it
back with another version warns with :class:`InconsistentVersionWarning`, as scikit-learn does
for its own estimators: the object may still work (most releases keep their formats), but a
difference in results, or an error later, may come from there.
"""

from __future__ import annotations

import warnings

__all__ = ["InconsistentVersionWarning", "__version__", "check_saved_version"]

__version__ = "0.1.0"

#: The key under which a saved object records the version that wrote it.
VERSION_KEY = "_cgcnn_sk_version"


class InconsistentVersionWarning(UserWarning):
    """An object is read by another cgcnn_sk version than the one that saved it.

    Attributes
    ----------
    what : str
        The object or file (``"CGCNNRegressor"``, a path).
    saved_version : str or None
        The version that saved it; ``None`` for files written before versions were recorded.
    current_version : str
        This package's version.
    """

    def __init__(self, what: str, saved_version: str | None, current_version: str = __version__):
        self.what = what
        self.saved_version = saved_version
        self.current_version = current_version
        saved = ("a cgcnn_sk version that did not record its version"
                 if saved_version is None else f"cgcnn_sk {saved_version}")
        super().__init__(
            f"{what} was saved by {saved} and is read by cgcnn_sk {current_version}: it may not "
            "work or give other results; refit it, or use the version that saved it"
        )

    def __reduce__(self):
        return (type(self), (self.what, self.saved_version, self.current_version))


def check_saved_version(what: str, saved_version: str | None, stacklevel: int = 3) -> None:
    """Warn with :class:`InconsistentVersionWarning` when ``saved_version`` is not ours.

    Examples
    --------
    >>> import warnings
    >>> from cgcnn_sk._version import check_saved_version, __version__
    >>> check_saved_version("model.joblib", __version__)  # the same version: silent
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_saved_version("model.joblib", "0.0.1")
    >>> caught[0].message.saved_version
    '0.0.1'
    """
    if saved_version != __version__:
        warnings.warn(InconsistentVersionWarning(what, saved_version), stacklevel=stacklevel)


class VersionedPickleMixin:
    """Pickles record the package version; unpickling with another one warns.

    Put first among the bases, so that its ``__getstate__``/``__setstate__`` wrap those of
    scikit-learn (which records and checks scikit-learn's own version) and skorch.
    """

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state) if state is not None else dict(self.__dict__)
        state[VERSION_KEY] = __version__
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop(VERSION_KEY, None)
        check_saved_version(type(self).__name__, saved, stacklevel=2)
        parent = getattr(super(), "__setstate__", None)
        if parent is not None:
            parent(state)
        else:
            self.__dict__.update(state)
