"""The ``device`` parameter, checked in ``fit`` against the devices this torch can use.

torch only rejects a bad device string (``"gpu0"``) or a device it was built without
(``"cuda"`` on a CPU-only wheel) when the first tensor moves there, deep inside training.
:func:`check_device` says so at the start of ``fit``, with the devices that are available.
"""

from __future__ import annotations

import torch

__all__ = ["available_devices", "check_device"]


def available_devices() -> list[str]:
    """The devices this torch can put tensors on: ``"cpu"``, each ``"cuda:<i>"``, ``"mps"``.

    Examples
    --------
    >>> from cgcnn_sk.estimators._device import available_devices
    >>> available_devices()[0]
    'cpu'
    """
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(device, who: str) -> None:
    """Raise a ``ValueError`` naming ``device`` and the available ones if torch cannot use it.

    ``None`` (skorch: leave the module where it is) is accepted.

    Examples
    --------
    >>> from cgcnn_sk.estimators._device import check_device
    >>> check_device("cpu", "CGCNNRegressor")
    >>> check_device("gpu0", "CGCNNRegressor")
    Traceback (most recent call last):
    ...
    ValueError: CGCNNRegressor: device='gpu0' is not a torch device ...
    """
    if device is None:
        return
    have = ", ".join(repr(d) for d in available_devices())
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"{who}: device={device!r} is not a torch device (a name like 'cpu', 'cuda' or "
            f"'cuda:1'); available here: {have}"
        ) from None
    if dev.type == "cpu" or dev.type == "meta":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = "without CUDA" if torch.version.cuda is None else "with CUDA, but sees no GPU"
            raise ValueError(
                f"{who}: device={device!r} needs a CUDA GPU, and this torch "
                f"({torch.__version__}) is built {built}; available here: {have}"
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(
                f"{who}: device={device!r} but this machine has {n} CUDA device(s); "
                f"available here: {have}"
            )
        return
    backend = getattr(torch.backends, dev.type, None) or getattr(torch, dev.type, None)
    usable = getattr(backend, "is_available", None)
    if usable is None or not usable():
        raise ValueError(
            f"{who}: device={device!r} is not available to this torch ({torch.__version__}); "
            f"available here: {have}"
        )
