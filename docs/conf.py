r"""Sphinx configuration of the pyg_recs documentation.

Build (from the repository root; warnings are errors, as in CI):

.. code-block:: bash

    pip install -r docs/requirements.txt
    sphinx-build -W --keep-going -b html docs docs/_build/html

The build needs no network: the theme is installed from PyPI, MathJax is
loaded by the reader's browser and no inventories are fetched.
"""
import datetime
import os.path as osp
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

import pyg_recs  # noqa: E402

author = 'pyg_recs contributors'
project = 'pyg_recs'
version = pyg_recs.__version__
release = pyg_recs.__version__
copyright = f'{datetime.datetime.now().year}, {author}'

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.autosummary',
    'sphinx.ext.mathjax',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'myst_parser',
]

root_doc = 'index'
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
# `index.md` is the landing page's text; `index.rst` includes it and adds
# the navigation (two sources cannot share one document name):
exclude_patterns = ['_build', 'index.md', 'requirements.txt', 'Makefile']

html_theme = 'furo'
html_title = f'pyg_recs {version}'
html_static_path = []

add_module_names = False
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # types are in the `Args:` entries, as in PyG
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

myst_heading_anchors = 3
myst_enable_extensions = ['dollarmath']

# Links of the Markdown pages that point outside `docs/`, written to be
# followed on GitHub (e.g. `../datasets/README.md`), and the site pages that
# show the same files:
REPO_PAGES = {
    'datasets/README.md': 'datasets',
    'benchmarks/README.md': 'benchmarks',
}
BENCHMARKS_README = osp.join(ROOT, 'benchmarks', 'README.md')


def _resolve_repo_links(app, doctree) -> None:
    # MyST turns a relative link into a `pending_xref`, to a document of the
    # site if the target is one, else to a path; send the links to files
    # shown by an include page to that page.
    from sphinx import addnodes

    srcdir = str(app.srcdir)
    for node in doctree.findall(addnodes.pending_xref):
        if node.get('reftype') != 'myst':
            continue
        target = node['reftarget']
        if node.get('refdomain') == 'doc':
            path = osp.join(srcdir, target + '.md')
        else:
            refdoc = node.get('refdoc', app.env.docname)
            path = osp.join(srcdir, osp.dirname(refdoc), target)
        path = osp.relpath(osp.normpath(path), ROOT).replace(osp.sep, '/')
        if path in REPO_PAGES:
            node['refdomain'] = 'doc'
            node['reftarget'] = REPO_PAGES[path]
            node['reftargetid'] = None


def _source_read(app, docname: str, source: list) -> None:
    if docname == 'benchmarks':
        if osp.exists(BENCHMARKS_README):
            body = ('.. include:: ../benchmarks/README.md\n'
                    '    :parser: myst_parser.sphinx_\n')
        else:
            body = ('Benchmarks\n==========\n\n'
                    'The benchmark tables are written to '
                    ':file:`benchmarks/README.md` by the benchmark harness; '
                    'this copy of the repository has none yet.\n')
        source[0] = source[0].replace('.. BENCHMARKS-README', body)


def setup(app):
    app.connect('source-read', _source_read)
    app.connect('doctree-read', _resolve_repo_links)
