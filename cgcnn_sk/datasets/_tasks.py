"""The one table of the Matbench v0.1 structure tasks the package knows by name."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["TASKS", "Task"]


@dataclass(frozen=True)
class Task:
    """A Matbench v0.1 structure task.

    Parameters
    ----------
    name : str
        Short name (``"jdft2d"``); the dataset is ``matbench_<name>``.
    column : str
        The target's column in the Matbench file.
    target : str
        What the target is, in words.
    unit : str
        Its unit.
    kind : {"regression", "classification"}
    """

    name: str
    column: str
    target: str
    unit: str
    kind: str = "regression"

    @property
    def dataset(self) -> str:
        """The Matbench dataset name, ``matbench_<name>``."""
        return f"matbench_{self.name}"


#: name -> :class:`Task`
TASKS = MappingProxyType({t.name: t for t in [
    Task("jdft2d", "exfoliation_en", "exfoliation energy", "meV/atom"),
    Task("phonons", "last phdos peak", "last phonon DOS peak", "cm^-1"),
    Task("dielectric", "n", "refractive index n", "unitless"),
    Task("log_gvrh", "log10(G_VRH)", "log10 shear modulus", "log10(GPa)"),
    Task("log_kvrh", "log10(K_VRH)", "log10 bulk modulus", "log10(GPa)"),
    Task("perovskites", "e_form", "formation energy", "eV/unit cell"),
    Task("mp_gap", "gap pbe", "band gap", "eV"),
    Task("mp_e_form", "e_form", "formation energy", "eV/atom"),
    Task("mp_is_metal", "is_metal", "is a metal", "", kind="classification"),
]})
