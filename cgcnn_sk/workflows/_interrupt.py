"""Ctrl-C in long runs: notice it even where skorch swallows it, so nothing half-done is kept.

skorch's ``NeuralNet.partial_fit`` catches ``KeyboardInterrupt`` and ends the epoch loop as if
training had finished: handy in a notebook, but a cross-validation would then score a
half-trained model, and the Matbench loop would save one as a finished member. The same
exception is also skorch's way to stop early (``EarlyStopping`` raises it), so the exception
alone cannot tell a user's Ctrl-C from a planned stop. :func:`watch_sigint` therefore records
the signal itself (SIGINT) while still raising ``KeyboardInterrupt`` as Python does, and the
caller asks after each fit whether it was cut short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RunInterrupted", "watch_sigint"]


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C; the message says what was kept and how to go on.

    Attributes
    ----------
    result : object or None
        What finished before the interrupt (a partial
        :class:`~cgcnn_sk.studies.StudyResult` for :func:`~cgcnn_sk.studies.run_study`).
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class SigintWatch:
    """Whether a SIGINT arrived while :func:`watch_sigint` was active (picklable)."""

    def __init__(self) -> None:
        self.interrupted = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C came, even if a fit swallowed it."""
        if self.interrupted:
            raise KeyboardInterrupt


@contextmanager
def watch_sigint() -> Iterator[SigintWatch]:
    """Record Ctrl-C (SIGINT) in the returned watch, then handle it as before.

    Only the main thread can set signal handlers, and a SIGINT that is ignored (``nohup``,
    background jobs) or left to the OS default does not raise ``KeyboardInterrupt``; in those
    cases nothing is installed and the watch stays False.

    Examples
    --------
    >>> with watch_sigint() as watch:
    ...     pass
    >>> watch.interrupted
    False
    """
    watch = SigintWatch()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield watch
        return

    def handler(signum, frame):
        watch.interrupted = True
        previous(signum, frame)  # Python's default raises KeyboardInterrupt here

    signal.signal(signal.SIGINT, handler)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, previous)
