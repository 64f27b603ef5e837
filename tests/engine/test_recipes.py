import json
import os.path as osp

import pytest

from pyg_recs.cli import main
from pyg_recs.engine.recipes import RECIPES, SESSION_MODELS
from tests.conftest import link_raw, shared_path


@pytest.mark.filterwarnings('ignore:.*line 6018')
@pytest.mark.parametrize('name', sorted(RECIPES))
def test_every_recipe_trains_one_tiny_epoch(name, sample_root, tmp_path):
    if name in SESSION_MODELS:
        args = ['--dataset', 'srgnn-format', '--root', sample_root,
                '--batch-size', '100']
    else:
        src = shared_path('recbole-test-kg')
        root = link_raw([osp.join(src, f'test.{ext}')
                         for ext in ('inter', 'kg', 'link')],
                        str(tmp_path / 'kg'))
        args = ['--dataset', 'test', '--root', root, '--lenient',
                '--batch-size', '256', '--kg-batch-size', '256',
                '--kg-eval-max', '50']
    out = tmp_path / 'record.json'
    assert main(['train', name, *args, '--epochs', '1', '--hidden', '8',
                 '--no-progress', '--out', str(tmp_path / 'run'), '--json',
                 str(out)]) == 0
    record = json.loads(out.read_text())
    assert record['model'] == name and len(record['epochs']) == 1
    assert record['train_losses'][0] > 0


def test_test_each_epoch_reports_without_changing_training(sample_root):
    from pyg_recs.engine import run
    settings = dict(dataset='srgnn-format', root=sample_root, hidden=8)
    plain = run('srgnn', settings, epochs=2, progress=False)
    reported = run('srgnn', settings, epochs=2, progress=False,
                   test_each_epoch=True)
    assert plain['selection'] == reported['selection'] == 'valid'
    assert 'test' not in plain['epochs'][0]
    # Same losses, validation and selected model: the test metrics of every
    # epoch are reported only.
    assert reported['train_losses'] == plain['train_losses']
    assert [e['valid']['HR@20'] for e in reported['epochs']] == \
        [e['valid']['HR@20'] for e in plain['epochs']]
    assert reported['test'] == plain['test']
    best = reported['best_epoch']
    assert reported['epochs'][best - 1]['test']['HR@20'] == \
        pytest.approx(reported['test']['HR@20'])
    no_valid = run('srgnn', dict(settings, val_ratio=0.0), epochs=1,
                   progress=False)
    assert no_valid['selection'] == 'train_loss'
