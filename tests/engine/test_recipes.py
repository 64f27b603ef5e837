import json
import os.path as osp
import re

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


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_every_recipe_model_is_a_recommender(name, sample_root, tmp_path):
    # The engine relies on the written interface only.
    from pyg_recs.nn.models import Recommender
    recipe = RECIPES[name]
    assert set(recipe.trainer_defaults()) == {
        'epochs', 'lr', 'weight_decay', 'lr_step', 'lr_gamma', 'patience'}
    if name in SESSION_MODELS:
        exp = recipe(dataset='srgnn-format', root=sample_root, hidden=8)
    else:
        src = shared_path('recbole-test-kg')
        root = link_raw([osp.join(src, f'test.{ext}')
                         for ext in ('inter', 'kg', 'link')],
                        str(tmp_path / 'kg'))
        exp = recipe(dataset='test', root=root, strict=False, hidden=8,
                     kg_eval_max=10)
    assert isinstance(exp.model, Recommender)
    batch = next(iter(exp.train_loader))
    assert exp.model.batch_loss(batch).dim() == 0


def test_recipes_refuse_unknown_settings_and_take_trainer_defaults(
        sample_root):
    from pyg_recs.engine import SettingError
    with pytest.raises(SettingError, match="'hiden'"):
        RECIPES['srgnn'](dataset='srgnn-format', root=sample_root, hiden=8)
    with pytest.raises(SettingError, match="'omega'"):
        RECIPES['niser'](dataset='srgnn-format', root=sample_root, omega=1)
    assert RECIPES['ktup'].trainer_defaults()['lr'] == 5e-3
    assert RECIPES['ktup'].trainer_defaults()['lr_step'] == 0
    assert RECIPES['srgnn'].trainer_defaults()['lr_step'] == 3
    assert RECIPES['gcsan'].label == 'GC-SAN'


def test_run_refuses_unknown_settings_before_writing(sample_root, tmp_path):
    from pyg_recs.engine import SettingError, run
    out = tmp_path / 'run'
    with pytest.raises(SettingError, match="'hiden'"):
        run('srgnn', dict(dataset='srgnn-format', root=sample_root,
                          hiden=8), out_dir=str(out), progress=False)
    assert not out.exists()


@pytest.mark.parametrize('settings, hp, message', [
    (dict(max_train=-1000), {}, 'max_train=-1000'),
    (dict(hidden=2.5), {}, 'hidden=2.5'),
    (dict(val_split='newest'), {}, 'choose from'),
    ({}, dict(epochs=0), 'epochs=0'),
    ({}, dict(lr=float('nan')), 'lr=nan'),
    ({}, dict(lr_gamma=-1.0), 'lr_gamma=-1.0'),
    ({}, dict(weight_decay=-1e-5), 'weight_decay'),
    ({}, dict(patience=-1), 'patience=-1'),
])
def test_run_holds_python_values_to_the_command_line_rules(
        sample_root, tmp_path, settings, hp, message):
    # From Python (or a hand-edited config.json) the values the command
    # line refuses are refused too, before any folder is created.
    from pyg_recs.engine import SettingError, run
    out = tmp_path / 'run'
    with pytest.raises(SettingError, match=re.escape(message)):
        run('srgnn', dict(dataset='srgnn-format', root=sample_root,
                          **settings), out_dir=str(out), progress=False,
            **hp)
    assert not out.exists()


def test_register_a_model_from_outside(sample_root, tmp_path):
    # A new model is its file plus its recipe: it then trains through run()
    # and the CLI with its own flags, nothing else to edit.
    from pyg_recs.engine import Setting, register, run
    from pyg_recs.engine.recipes import build_session
    from pyg_recs.engine.settings import positive_int

    def build(dataset, root, hidden=8, device='cpu', generator=None):
        return build_session('srgnn', dataset, root, hidden=hidden,
                             device=device, generator=generator)

    register('mine', build, settings={
        'dataset': Setting(str, 'srgnn-format'),
        'root': Setting(str, None),
        'hidden': Setting(positive_int, 8, 'embedding size')},
        trainer=dict(epochs=1, lr=0.01), description='my model')
    try:
        record = run('mine', dict(dataset='srgnn-format', root=sample_root),
                     progress=False)
        assert record['hparams']['lr'] == 0.01
        assert len(record['epochs']) == 1
        assert main(['train', 'mine', '--root', sample_root, '--hidden', '4',
                     '--no-progress', '--out', str(tmp_path / 'r')]) == 0
    finally:
        RECIPES.pop('mine')
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
