"""Tests of the RecBole peer runner (benchmarks/peers/recbole_runner.py).

The helpers are tested with the main environment's Python (the runner
imports RecBole lazily). The end-to-end runs need the RecBole venv built
by ``benchmarks/peers/setup_recbole.sh`` and are skipped without it.
"""

import importlib.util
import json
import os
import os.path as osp
import random
import subprocess

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
RUNNER = osp.join(ROOT, 'benchmarks', 'peers', 'recbole_runner.py')
VENV = os.environ.get(
    'PYG_RECS_RECBOLE_VENV',
    osp.join(osp.expanduser('~'), '.cache', 'pyg_recs', 'recbole-venv'))
VENV_PYTHON = osp.join(VENV, 'bin', 'python')


def load_runner():
    """Import the runner script as a module."""
    spec = importlib.util.spec_from_file_location('recbole_runner', RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path, header, rows):
    """Write an atomic file."""
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\t'.join(header) + '\n')
        for row in rows:
            f.write('\t'.join(map(str, row)) + '\n')


def test_map_metrics_names():
    runner = load_runner()
    raw = {'hit@20': 0.5, 'mrr@20': 0.1, 'recall@10': 0.3,
           'ndcg@10': 0.2, 'precision@10': 0.03}
    ours = runner.map_metrics(raw, 'SRGNN')
    assert ours == {'HR@20': 0.5, 'MRR@20': 0.1, 'Recall@10': 0.3,
                    'NDCG@10': 0.2, 'Precision@10': 0.03}
    assert 'Hit@20' in runner.map_metrics(raw, 'KTUP')


def test_clean_link_keeps_usable_one_to_one_rows(tmp_path):
    runner = load_runner()
    src, dst = tmp_path / 'a.link', tmp_path / 'b.link'
    write(src, ['item_id:token', 'entity_id:token'], [
        ('i1', 'e1'),   # kept
        ('i9', 'e2'),   # item in no .inter file
        ('i2', 'e9'),   # entity in no triple
        ('i1', 'e3'),   # item linked twice
        ('i3', 'e1'),   # entity linked twice
        ('i4', 'e4'),   # kept
    ])
    kept, dropped = runner.write_clean_link(
        str(src), str(dst), {'i1', 'i2', 'i3', 'i4'},
        {'e1', 'e2', 'e3', 'e4'})
    assert (kept, dropped) == (2, 4)
    assert dst.read_text().splitlines() == [
        'item_id:token\tentity_id:token', 'i1\te1', 'i4\te4']


def test_ktup_phase_alternates_whole_epochs():
    runner = load_runner()
    config = {'train_rec_step': 2, 'train_kg_step': 1}
    phases = [runner.ktup_phase(config, e) for e in range(6)]
    assert phases == ['rs', 'rs', 'kg', 'rs', 'rs', 'kg']


def test_config_turns_every_filter_off(tmp_path):
    runner = load_runner()
    args = runner.parse_args([
        '--model', 'SRGNN', '--data-dir', str(tmp_path), '--dataset', 'x',
        '--out', str(tmp_path / 'o.json')])
    assert (args.hidden, args.batch_size, args.lr, args.l2) == (
        100, 100, 1e-3, 1e-5)
    cfg = runner.recbole_config_dict(args, 'data', str(tmp_path))
    assert cfg['benchmark_filename'] == ['train', 'valid', 'test']
    assert cfg['alias_of_item_id'] == ['item_id_list']
    assert cfg['train_neg_sample_args'] is None
    assert cfg['filter_inter_by_user_or_item'] is False
    assert cfg['checkpoint_dir'].startswith(str(tmp_path))


def test_gcsan_layers_follow_hidden(tmp_path):
    # RecBole-GNN's GCSAN sizes its attention by hidden_size (64 in its
    # yaml) and its feed-forward by inner_size (256), not embedding_size.
    runner = load_runner()
    args = runner.parse_args([
        '--model', 'GCSAN', '--data-dir', str(tmp_path), '--dataset', 'x',
        '--out', str(tmp_path / 'o.json'), '--hidden', '48'])
    cfg = runner.recbole_config_dict(args, 'data', str(tmp_path))
    assert (cfg['embedding_size'], cfg['hidden_size'],
            cfg['inner_size']) == (48, 48, 48)
    args.model = 'SRGNN'
    cfg = runner.recbole_config_dict(args, 'data', str(tmp_path))
    assert 'hidden_size' not in cfg and 'inner_size' not in cfg


def make_sessions(folder, name, seed=0):
    """Random prefix -> next item examples in three files."""
    rng = random.Random(seed)
    header = ['session_id:token', 'item_id_list:token_seq', 'item_id:token']
    sid = 0
    for split, n in (('train', 300), ('valid', 40), ('test', 40)):
        rows = []
        for _ in range(n):
            seq = [rng.randint(1, 50) for _ in range(rng.randint(1, 6))]
            rows.append((sid, ' '.join(map(str, seq)), rng.randint(1, 50)))
            sid += 1
        write(folder / f'{name}.{split}.inter', header, rows)


def make_kg(folder, name, seed=0):
    """Random user-item splits, a KG over items and extra entities."""
    rng = random.Random(seed)
    splits = {'train': [], 'valid': [], 'test': []}
    for user in range(30):
        items = rng.sample(range(40), 12)
        splits['train'] += [(user, i) for i in items[:8]]
        splits['valid'] += [(user, i) for i in items[8:9]]
        splits['test'] += [(user, i) for i in items[9:]]
    for split, rows in splits.items():
        write(folder / f'{name}.{split}.inter',
              ['user_id:token', 'item_id:token'], rows)
    triples = [(f'e{rng.randrange(60)}', f'r{rng.randrange(4)}',
                f'e{rng.randrange(60)}') for _ in range(300)]
    triples += [(f'e{i}', 'r0', f'e{40 + i % 20}') for i in range(40)]
    write(folder / f'{name}.kg',
          ['head_id:token', 'relation_id:token', 'tail_id:token'], triples)
    write(folder / f'{name}.link', ['item_id:token', 'entity_id:token'],
          [(i, f'e{i}') for i in range(40)])


needs_venv = pytest.mark.skipif(
    not osp.exists(VENV_PYTHON),
    reason='RecBole venv not built (benchmarks/peers/setup_recbole.sh)')


@needs_venv
@pytest.mark.parametrize('model', ['SRGNN', 'KTUP'])
def test_runner_end_to_end(tmp_path, model):
    data = tmp_path / 'data'
    data.mkdir()
    (make_sessions if model == 'SRGNN' else make_kg)(data, 'toy')
    out = tmp_path / 'out.json'
    subprocess.run(
        [VENV_PYTHON, RUNNER, '--model', model, '--data-dir', str(data),
         '--dataset', 'toy', '--epochs', '2', '--device', 'cpu',
         '--out', str(out), '--quiet', '--hidden', '16',
         '--batch-size', '64'],
        check=True, cwd=tmp_path, timeout=300, capture_output=True)
    report = json.loads(out.read_text())
    assert report['library'] == 'recbole'
    assert report['versions']['recbole'] == '1.2.1'
    assert len(report['epoch_times']) == 2
    assert len(report['train_losses']) == 2
    assert len(report['valid_metrics']) == 2
    assert report['eval_seconds'] > 0
    hit = 'HR@20' if model == 'SRGNN' else 'Hit@20'
    for key in (hit, 'MRR@20', 'NDCG@10', 'Recall@10', 'Precision@10'):
        assert 0.0 <= report['test_metrics'][key] <= 1.0
    assert report['raw_metrics']['hit@20'] == report['test_metrics'][hit]
    assert report['autograd_anomaly_detection']['used'] is False
    if model == 'SRGNN':
        assert report['data']['n_train'] == 300
        assert report['data']['n_test'] == 40
    else:
        assert report['data']['n_items'] == 40
        assert report['data']['link_rows_dropped'] == 0
    # nothing but the report is left in the working directory
    assert sorted(os.listdir(tmp_path)) == ['data', 'out.json']
