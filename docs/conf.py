"""Sphinx configuration of the cgcnn_sk documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` from the repository root (the
``docs`` extra installs what it needs). The API pages and the executed notebooks are written
at the start of the build (``docs/_ext``); nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(DOCS / "_ext"), str(ROOT)]

import cgcnn_sk  # noqa: E402

project = "cgcnn_sk"
author = "the cgcnn_sk developers"
copyright = "the cgcnn_sk developers"  # noqa: A001
release = version = cgcnn_sk.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_ext", "_inventories", "**.ipynb_checkpoints"]

# -- API reference: autosummary pages from each module's __all__ ----------------------------
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Notebooks: executed by docs/_ext/run_notebooks.py, rendered as they are ---------------
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- Cross-links to other projects' documentation ------------------------------------------
# No network at build time, so every inventory is a local file. Debian's documentation
# packages ship two (docs/_inventories.sh copies them into docs/_inventories/); a project
# whose inventory is absent is simply not linked, which Sphinx does without a warning. No
# local inventory exists for torch, skorch or pymatgen (Debian's pymatgen one is of the 2022
# site, whose page names the current site no longer has), so those names are plain text.
INVENTORIES = {
    "python": ("https://docs.python.org/3/", "python.inv"),
    "sklearn": ("https://scikit-learn.org/stable/", "sklearn.inv"),
}
intersphinx_mapping = {
    key: (url, str(DOCS / "_inventories" / inv))
    for key, (url, inv) in INVENTORIES.items()
    if (DOCS / "_inventories" / inv).is_file()
}

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"cgcnn_sk {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


def _generate(app) -> None:
    from api_pages import write_api_pages
    from run_notebooks import run_notebooks
    from sphinx.util import logging

    write_api_pages(DOCS)
    run_notebooks(ROOT, DOCS / "examples", logging.getLogger("cgcnn_sk.docs"))


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn generates set_<method>_request on every estimator class for metadata
    # routing; their docstrings point into scikit-learn's own glossary.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _public_bases(app, name, obj, options, bases) -> None:
    # A private mixin is an implementation detail; the public base (skorch's net) stays.
    bases[:] = [b for b in bases if not b.__name__.startswith("_")]


def setup(app) -> None:
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-bases", _public_bases)
    # config-inited runs before Sphinx lists the source files, so the written pages are read.
    app.connect("config-inited", lambda app, config: _generate(app))
