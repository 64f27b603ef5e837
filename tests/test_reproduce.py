"""Tests of ``benchmarks/reproduce.py``: the selection logic and the record
format, on synthetic histories and on a tiny real run of the SR-GNN
sample (the full Diginetica reproduction takes hours and is not run
here)."""
import importlib.util
import json
import os.path as osp

import pytest

from .conftest import shared_path

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))

spec = importlib.util.spec_from_file_location(
    'reproduce', osp.join(ROOT, 'benchmarks', 'reproduce.py'))
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def epoch(i, valid, test):
    return {'epoch': i, 'loss': 1.0 / i, 'seconds': 1.0, 'lr': 1e-3,
            'valid': {'HR@20': valid, 'MRR@20': valid / 3},
            'test': {'HR@20': test[0], 'MRR@20': test[1]}}


def phase(epochs, best, num_train=90, num_valid=10):
    return {'epochs': epochs, 'best_epoch': best,
            'settings': {'hidden': 100}, 'hparams': {'lr': 1e-3},
            'stats': {'num_train': num_train, 'num_valid': num_valid},
            'test': {'HR@20': 0.5, 'MRR@20': 0.2, 'NDCG@20': 0.3}}


def test_select_epoch_uses_validation_earliest_on_ties():
    epochs = [epoch(1, 0.30, (0.9, 0.1)), epoch(2, 0.40, (0.1, 0.9)),
              epoch(3, 0.40, (0.5, 0.5))]
    assert reproduce.select_epoch(epochs, 'HR@20') == 2
    with pytest.raises(ValueError, match="no validation 'NDCG@5'"):
        reproduce.select_epoch(epochs, 'NDCG@5')
    with pytest.raises(ValueError, match='No epoch'):
        reproduce.select_epoch([], 'HR@20')


def test_best_test_epoch_is_per_metric_and_labelled():
    epochs = [epoch(1, 0.30, (0.9, 0.1)), epoch(2, 0.40, (0.1, 0.9)),
              epoch(3, 0.20, (0.9, 0.5))]
    best = reproduce.best_test_epochs(epochs, ('HR@20', 'MRR@20'))
    # Each metric's own best test epoch (the reference code's habit), the
    # earliest on ties:
    assert best == {'HR@20': {'epoch': 1, 'value': 0.9},
                    'MRR@20': {'epoch': 2, 'value': 0.9}}
    record = reproduce.combine(
        'srgnn', 'diginetica', {'valid': phase(epochs, best=2)}, ['cmd'])
    # The headline is the validation-selected model, not a test maximum:
    assert record['selection'] == 'valid'
    assert record['best_epoch'] == 2
    assert record['test']['HR@20'] == 0.5
    assert record['best_test_epoch_reported_only'] == best
    assert record['epochs'][0]['test_reported_only'] == {
        'HR@20': 0.9, 'MRR@20': 0.1}
    assert 'refit' not in record


def test_combine_refuses_inconsistent_or_missing_phases():
    epochs = [epoch(1, 0.30, (0.9, 0.1)), epoch(2, 0.40, (0.1, 0.9))]
    with pytest.raises(ValueError, match='selects 2'):
        reproduce.combine('srgnn', 'diginetica',
                          {'valid': phase(epochs, best=1)}, [])
    with pytest.raises(ValueError, match="'valid' phase"):
        reproduce.combine('srgnn', 'diginetica',
                          {'refit': phase(epochs, best=2)}, [])


def test_refit_reports_the_selected_epoch_count():
    valid = phase([epoch(1, 0.3, (0.1, 0.1)), epoch(2, 0.4, (0.2, 0.1)),
                   epoch(3, 0.35, (0.3, 0.1))], best=2)
    refit = phase([epoch(1, 0, (0.15, 0.05)), epoch(2, 0, (0.25, 0.07)),
                   epoch(3, 0, (0.35, 0.09))], best=3, num_train=100,
                  num_valid=0)
    record = reproduce.combine('srgnn', 'diginetica',
                               {'valid': valid, 'refit': refit}, [])
    assert record['refit']['test'] == {'HR@20': 0.25, 'MRR@20': 0.07}
    assert record['refit']['stats']['num_train'] == 100
    # Not yet there: said so, no number made up.
    refit['epochs'] = refit['epochs'][:1]
    record = reproduce.combine('srgnn', 'diginetica',
                               {'valid': valid, 'refit': refit}, [])
    assert record['refit']['test'] is None
    assert 'epoch 2' in record['refit']['note']


def test_unknown_protocol_is_refused():
    with pytest.raises(SystemExit, match='no protocol for srgnn on foo'):
        reproduce.protocol('srgnn', 'foo')


def test_tiny_reproduction_on_the_sample(tmp_path, capsys):
    src = shared_path('srgnn-sample', 'srgnn-format')
    out, results = tmp_path / 'out', tmp_path / 'results'
    argv = ['srgnn', '--dataset', 'diginetica', '--root',
            str(tmp_path / 'ds'), '--raw-from', src, '--out', str(out),
            '--epochs', '2', '--results', str(results), '--tag', 'tiny',
            '--no-progress', '--device', 'cpu']
    assert reproduce.main(argv) == 0
    with open(results / 'tiny-reproduce-srgnn-diginetica.json') as f:
        record = json.load(f)

    assert record['model'] == 'srgnn'
    assert record['selection'] == 'valid'
    stats = record['stats']
    assert stats['num_valid'] > 0 and stats['num_train'] > 0
    assert set(record['test']) >= {'HR@20', 'MRR@20', 'NDCG@20'}
    assert [r['epoch'] for r in record['epochs']] == [1, 2]
    # The selected epoch is the validation argmax, and the tested model is
    # that epoch's model: its reported test metrics are the headline ones.
    valid = [r['valid']['HR@20'] for r in record['epochs']]
    best = record['best_epoch']
    assert valid[best - 1] == max(valid)
    assert record['epochs'][best - 1]['test_reported_only']['HR@20'] == \
        pytest.approx(record['test']['HR@20'])
    # The refit trains on train + valid, without a validation split:
    refit = record['refit']
    assert refit['stats']['num_valid'] == 0
    assert refit['stats']['num_train'] == \
        stats['num_train'] + stats['num_valid']
    assert refit['test'] == {
        k: v for k, v in refit['epochs'][best - 1]
        ['test_reported_only'].items()}
    text = (results / 'tiny-reproduce-srgnn-diginetica.md').read_text()
    assert 'ours, selected on valid' in text
    assert 'reference habit' in text

    # A later call with --resume continues the finished runs (no new
    # epoch) and assembles the same record.
    argv += ['--resume']
    assert reproduce.main(argv) == 0
    with open(results / 'tiny-reproduce-srgnn-diginetica.json') as f:
        again = json.load(f)
    assert again['test'] == record['test']
    assert again['best_epoch'] == best


def test_random_validation_split_reproduction(tmp_path):
    src = shared_path('srgnn-sample', 'srgnn-format')
    out, results = tmp_path / 'out', tmp_path / 'results'
    argv = ['srgnn', '--dataset', 'diginetica', '--root',
            str(tmp_path / 'ds'), '--raw-from', src, '--out', str(out),
            '--epochs', '1', '--results', str(results), '--tag', 'rand',
            '--no-progress', '--device', 'cpu', '--phase', 'valid',
            '--val-split', 'random']
    assert reproduce.main(argv) == 0
    with open(results / 'rand-reproduce-srgnn-diginetica.json') as f:
        record = json.load(f)
    assert record['settings']['val_split'] == 'random'
    assert record['stats']['val_split'] == 'random'
    assert '--val-split random' in record['commands'][0]
    assert 'refit' not in record


def test_random_validation_split_needs_a_session_protocol(capsys):
    with pytest.raises(SystemExit):
        reproduce.main(['ktup', '--dataset', 'ml-100k-kg',
                        '--val-split', 'random'])
    assert 'no choice of validation split' in capsys.readouterr().err
