"""Tests of ``benchmarks/floor.py`` on tiny real inputs: the report's
shape and arithmetic, not its timings (speed is judged by the committed
benchmark results, never by timed tests)."""
import importlib.util
import json
import os.path as osp

import pytest

from .conftest import shared_path

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))

spec = importlib.util.spec_from_file_location(
    'floor', osp.join(ROOT, 'benchmarks', 'floor.py'))
floor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(floor)


def test_floor_report_on_small_real_data(tmp_path):
    sample = shared_path('srgnn-sample', 'srgnn-format')
    kg = shared_path('ml-100k-kg')
    out = tmp_path / 'out'
    assert floor.main([
        '--srgnn-dataset', 'srgnn-format', '--srgnn-root',
        str(tmp_path / 's'), '--srgnn-raw-from', sample, '--ktup-root',
        str(tmp_path / 'k'), '--ktup-raw-from', kg, '--steps', '3',
        '--eval-batches', '1', '--repeats', '1', '--hidden', '16',
        '--out-dir', str(out), '--tag', 'tiny', '--device', 'cpu'
    ]) == 0
    with open(out / 'tiny-floor.json') as f:
        report = json.load(f)
    assert set(report['paths']) == set(floor.PATHS)
    for name, path in report['paths'].items():
        assert path['library_seconds'] > 0 and path['floor_seconds'] > 0
        assert path['over_floor'] == pytest.approx(
            path['library_seconds'] / path['floor_seconds'])
        assert path['floor_is']
        assert path['profile'] and 0 < path['profile'][0]['share'] <= 1
    assert report['paths']['srgnn-train']['steps'] == 3
    assert report['paths']['ktup-eval']['p_norm'] == 1.0
    text = (out / 'tiny-floor.md').read_text()
    assert '| srgnn-train |' in text and '| ktup-eval |' in text


def test_take_limits_a_loader():
    take = floor._Take(list(range(10)), 3)
    assert len(take) == 3 and list(take) == [0, 1, 2]
    assert len(floor._Take([1], 5)) == 1
