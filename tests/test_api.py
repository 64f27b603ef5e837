r"""The public API matches its documentation: every object of the API
reference (docs/api/*.rst) is importable from the documented path and
listed in that module's :obj:`__all__`, and every :obj:`__all__` name of the
public packages is documented."""
import importlib
import re
from pathlib import Path

import pytest

API_DIR = Path(__file__).resolve().parents[1] / 'docs' / 'api'

#: The packages whose whole `__all__` must be in the API reference.
PUBLIC = [
    'pyg_recs.data',
    'pyg_recs.datasets',
    'pyg_recs.loader',
    'pyg_recs.nn',
    'pyg_recs.nn.conv',
    'pyg_recs.nn.aggr',
    'pyg_recs.nn.kge',
    'pyg_recs.nn.functional',
    'pyg_recs.nn.models',
    'pyg_recs.metrics',
    'pyg_recs.engine',
]

DIRECTIVE = re.compile(
    r'^\.\. (?:auto(?:class|function|exception|data)|py:data)::\s+(\S+)\s*$',
    re.MULTILINE)
SUMMARY = re.compile(r'^\.\. autosummary::\n((?:[ \t]+.*\n|\n)*)',
                     re.MULTILINE)


def documented():
    r"""The fully qualified names of the reference, per .rst file."""
    return {
        path.name: DIRECTIVE.findall(path.read_text())
        for path in sorted(API_DIR.glob('*.rst'))
    }


def split_name(qualname):
    r"""(module, name) of a documented object: the longest importable
    module prefix and the rest."""
    parts = qualname.split('.')
    for i in range(len(parts) - 1, 0, -1):
        module = '.'.join(parts[:i])
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return module, '.'.join(parts[i:])
    raise AssertionError(f"'{qualname}': no importable module")


def all_documented():
    return [name for names in documented().values() for name in names]


def test_reference_is_not_empty():
    names = documented()
    assert set(names) >= {'data.rst', 'datasets.rst', 'loader.rst', 'nn.rst',
                          'metrics.rst', 'engine.rst'}
    assert 'pyg_recs.nn.conv.SRGNNConv' in names['nn.rst']
    assert 'pyg_recs.nn.kge.TransH' in names['nn.rst']


@pytest.mark.parametrize('qualname', all_documented())
def test_documented_is_public(qualname):
    module_name, name = split_name(qualname)
    assert '.' not in name, f"'{qualname}': document the object itself"
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"'{qualname}' is not importable"
    assert name in getattr(module, '__all__', []), \
        f"'{name}' is not in '{module_name}.__all__'"


def test_documented_once():
    names = all_documented()
    assert len(names) == len(set(names))
    objects = [id(getattr(importlib.import_module(m), n))
               for m, n in map(split_name, names)]
    assert len(objects) == len(set(objects)), \
        'an object is documented under two names'


@pytest.mark.parametrize('module_name', sorted(
    set(PUBLIC) | {split_name(q)[0]
                   for q in all_documented()}))
def test_public_is_documented(module_name):
    module = importlib.import_module(module_name)
    docs = {
        id(getattr(importlib.import_module(m), n))
        for m, n in map(split_name, all_documented())
    }
    missing = [
        name for name in module.__all__
        if id(getattr(module, name)) not in docs
    ]
    assert not missing, (f"'{module_name}.__all__' names missing from "
                         f"docs/api/*.rst: {missing}")


@pytest.mark.parametrize('page', sorted(p.name for p in API_DIR.glob('*.rst')))
def test_summary_tables_match(page):
    # The summary tables at the top of each section list what the page
    # documents (constants documented by hand excepted).
    text = (API_DIR / page).read_text()
    listed = [
        line.strip().lstrip('~') for block in SUMMARY.findall(text)
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith(':')
    ]
    autos = re.findall(
        r'^\.\. auto(?:class|function|exception|data)::\s+(\S+)\s*$', text,
        re.MULTILINE)
    assert sorted(listed) == sorted(autos)
