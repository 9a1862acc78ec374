"""The documentation's generated parts: API pages from ``__all__``, notebook sizes, wording.

The Sphinx build itself runs in CI (``.ci/run``); these checks are the fast part of it.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import api_pages  # noqa: E402
import run_notebooks  # noqa: E402


def test_api_pages_list_every_public_name_and_document_each_object_once(tmp_path):
    modules = api_pages.write_api_pages(tmp_path)
    assert {"cgcnn_sk", "cgcnn_sk.graph", "cgcnn_sk.estimators", "cgcnn_sk.report"} <= set(modules)
    documented = []  # (module, name) rows of the autosummary tables, which write one page each
    for modname in modules:
        text = (tmp_path / "api" / f"{modname}.rst").read_text()
        own = set(re.findall(r"^   (\w+)$", text, re.M))  # autosummary rows
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            linked = f"{modname}.{name} <" in text  # documented on another module's page
            submodule = f":mod:`{getattr(obj, '__name__', None)}`" in text
            assert name in own or linked or submodule, f"{modname}.{name} is not on its page"
        documented += [(modname, name) for name in own]
    objects = [id(getattr(importlib.import_module(m), n)) for m, n in documented
               if not isinstance(getattr(importlib.import_module(m), n), (str, int, tuple, dict,
                                                                          list, float))]
    assert len(objects) == len(set(objects)), "an object is documented on two pages"
    index = (tmp_path / "api" / "index.rst").read_text()
    assert all(f"   {m}" in index for m in modules)


def test_api_pages_leave_out_a_module_this_version_lacks_and_stale_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(api_pages, "MODULES", ["cgcnn_sk", "cgcnn_sk.not_yet_here"])
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "cgcnn_sk.not_yet_here.rst").write_text("stale")
    (tmp_path / "api" / "generated").mkdir()
    for name in ("cgcnn_sk.CGCNN", "cgcnn_sk.a_name_no_longer_exported"):
        (tmp_path / "api" / "generated" / f"{name}.rst").write_text("written by autosummary")
    assert api_pages.write_api_pages(tmp_path) == ["cgcnn_sk"]
    assert not (tmp_path / "api" / "cgcnn_sk.not_yet_here.rst").exists()
    assert [p.name for p in (tmp_path / "api" / "generated").iterdir()] == ["cgcnn_sk.CGCNN.rst"]
    assert "not_yet_here" not in (tmp_path / "api" / "index.rst").read_text()


def test_api_pages_raise_when_a_module_fails_on_a_missing_dependency(tmp_path, monkeypatch):
    fake = tmp_path / "cgcnn_sk_fake_docs_mod.py"
    fake.write_text("import a_package_that_is_not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(api_pages, "MODULES", ["cgcnn_sk", "cgcnn_sk_fake_docs_mod"])
    with pytest.raises(ModuleNotFoundError, match="a_package_that_is_not_installed_anywhere"):
        api_pages.write_api_pages(tmp_path)


def test_every_notebook_has_documentation_sizes():
    notebooks = {p.name for p in (DOCS.parent / "notebooks").glob("*.ipynb")}
    assert notebooks == set(run_notebooks.DOCS_PARAMS)


def test_inserted_sizes_follow_the_parameters_cell():
    nb = run_notebooks._prepare(DOCS.parent / "notebooks" / "03_studies.ipynb",
                                {"N_SAMPLES": 12, "STUDIES": ["pooling"]})
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert nb.cells[tagged[0] + 1].source.splitlines()[1:] == [
        "N_SAMPLES = 12", "STUDIES = ['pooling']"]


def test_docs_state_facts_not_work_history():
    pattern = re.compile(r"issue [0-9]+|session [0-9]|branch `", re.I)
    hits = [f"{p.relative_to(DOCS)}:{i}: {line.strip()}"
            for p in sorted(DOCS.rglob("*")) if p.suffix in {".md", ".rst", ".py", ".sh"}
            and "_build" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
