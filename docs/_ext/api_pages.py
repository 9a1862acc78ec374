"""Write one API page per public module, listing every name of its ``__all__``.

Each public object is documented once, on the page of the first module (in ``MODULES`` order)
that exports it; the other modules that re-export it link to that page. The pages are written
into ``api/`` before autosummary reads them, so a name added to an ``__all__`` appears without
editing the docs, and a module listed here that the installed package does not have yet is
left out of the index instead of failing the build.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

#: The public modules, in the order a structure travels through them.
MODULES = [
    "cgcnn_sk",
    "cgcnn_sk.graph",
    "cgcnn_sk.nn",
    "cgcnn_sk.estimators",
    "cgcnn_sk.recipes",
    "cgcnn_sk.datasets",
    "cgcnn_sk.baselines",
    "cgcnn_sk.descriptors",
    "cgcnn_sk.pretrained",
    "cgcnn_sk.workflows",
    "cgcnn_sk.workflows.studies",
    "cgcnn_sk.workflows.matbench",
    "cgcnn_sk.report",
]


def _import(name: str):
    """The module, or None when this version of the package does not have it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _home(modules: dict) -> dict[int, str]:
    """id(object) -> the first module (in MODULES order) whose ``__all__`` holds it."""
    home: dict[int, str] = {}
    for modname, module in modules.items():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or isinstance(obj, (str, int, float, tuple, list, dict)):
                continue  # constants are documented where they are listed
            home.setdefault(id(obj), modname)
    return home


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _page(modname: str, module, home: dict[int, str]) -> str:
    title = f"``{modname}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {modname}", "   :no-members:", ""]
    own, elsewhere, submodules = [], [], []
    for name in sorted(module.__all__, key=str.lower):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            submodules.append(obj.__name__)
        elif home.get(id(obj), modname) == modname:
            own.append(name)
        else:
            elsewhere.append((name, home[id(obj)], obj))
    if own:
        lines += ["Contents", "--------", "", f".. currentmodule:: {modname}", "",
                  ".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in own]
        lines.append("")
    if elsewhere:
        lines += ["Also exported here", "------------------", ""]
        for name, where, obj in elsewhere:
            role = "class" if inspect.isclass(obj) else "func"
            lines.append(f"* :{role}:`{modname}.{name} <{where}.{name}>`: {_summary(obj)}")
        lines.append("")
    if submodules:
        lines += ["Modules", "-------", ""]
        lines += [f"* :mod:`{sub}`" for sub in submodules]
        lines.append("")
    return "\n".join(lines)


def write_api_pages(srcdir: Path) -> list[str]:
    """Write ``api/<module>.rst`` for every importable module; return their names."""
    modules = {name: mod for name in MODULES if (mod := _import(name)) is not None}
    home = _home(modules)
    out = srcdir / "api"
    out.mkdir(exist_ok=True)
    for modname, module in modules.items():
        text = _page(modname, module, home)
        path = out / f"{modname}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged pages stay unchanged
            path.write_text(text)
    for stale in out.glob("cgcnn_sk*.rst"):
        if stale.stem not in modules:
            stale.unlink()
    # autosummary writes generated/<module>.<name>.rst but never removes one whose name left
    # an __all__; such a page would fail to import and sit outside every toctree.
    listed = {f"{m}.{name}" for m, module in modules.items() for name in module.__all__}
    for stale in (out / "generated").glob("*.rst"):
        if stale.stem not in listed:
            stale.unlink()
    index = "\n".join([INDEX, "", ".. toctree::", "   :maxdepth: 1", ""]
                      + [f"   {name}" for name in modules]) + "\n"
    if not (out / "index.rst").exists() or (out / "index.rst").read_text() != index:
        (out / "index.rst").write_text(index)
    return list(modules)


INDEX = """API reference
=============

Every public name, module by module, in the order a structure travels: graphs, the network,
the estimators, the recipes, data, baselines, reference models, workflows, reports. The
estimators and the featurizer are also importable from :mod:`cgcnn_sk` itself, where they are
documented; the subpackage pages link there."""
