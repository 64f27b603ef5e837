"""Tests of the benchmark harness: ``benchmarks/export.py`` (our splits as
RecBole atomic files) and ``benchmarks/run.py`` (runs, summaries, tables,
chart). The comparison with RecBole itself needs the RecBole venv built by
``benchmarks/peers/setup_recbole.sh`` and is marked slow."""
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
import torch

from pyg_recs.data.safe_pickle import safe_load

from .conftest import SHARED_DATA, link_raw, shared_path

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_module('bench_run', osp.join(ROOT, 'benchmarks', 'run.py'))
export = sys.modules['export']


def read_inter(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    return lines[0], [line.split('\t') for line in lines[1:]]


def read_session_file(path, item_ids):
    header, rows = read_inter(path)
    assert header == export.SESSION_HEADER
    sessions = [[int(item_ids[int(t) - 1]) for t in row[1].split(' ')]
                for row in rows]
    targets = [int(item_ids[int(row[2]) - 1]) for row in rows]
    return [int(row[0]) for row in rows], sessions, targets


# Exporters ###################################################################

def test_session_export_reconstructs_pickles(tmp_path):
    from pyg_recs.datasets import SessionDataset
    src = shared_path('srgnn-sample', 'srgnn-format')
    root, val_ratio, info = export.prepare_session_root(
        src, str(tmp_path / 'root'))
    assert val_ratio == 0.1 and not info['subset']
    out = export.export_session(root, val_ratio, str(tmp_path / 'out'), 'x')
    assert (out['n_train'], out['n_valid'], out['n_test']) == (1085, 120, 99)
    assert out['n_items_pyg_recs'] == out['n_items_in_files'] == 309

    item_ids = SessionDataset(root, 'train').item_ids
    ids, sessions, targets = [], [], []
    for split in export.SPLITS:
        i, s, t = read_session_file(tmp_path / 'out' / f'x.{split}.inter',
                                    item_ids)
        ids += i
        sessions.append(s)
        targets.append(t)
    assert ids == list(range(1085 + 120 + 99))  # unique across the files
    train = safe_load(osp.join(src, 'train.txt'))
    test = safe_load(osp.join(src, 'test.txt'))
    assert sessions[0] + sessions[1] == [list(s) for s in train[0]]
    assert targets[0] + targets[1] == list(train[1])
    assert sessions[2] == [list(s) for s in test[0]]
    assert targets[2] == list(test[1])

    # The vectorised reconstruction equals the graphs one by one:
    ds = SessionDataset(root, 'valid')
    items, ptr, y = export.session_sequences(ds)
    for i in (0, 7, len(ds) - 1):
        g = ds[i]
        assert items[ptr[i]:ptr[i + 1]].tolist() == \
            g.x[g.click_index].tolist()
        assert int(y[i]) == int(g.y)


def test_session_subset_keeps_split_boundaries(tmp_path):
    from pyg_recs.datasets import SessionDataset
    src = shared_path('srgnn-sample', 'srgnn-format')
    root, val_ratio, info = export.prepare_session_root(
        src, str(tmp_path / 'root'), max_train=300, max_eval=40)
    assert info['subset'] and (info['num_train'], info['num_valid'],
                               info['num_test']) == (300, 40, 40)
    sizes = [len(SessionDataset(root, s, val_ratio=val_ratio))
             for s in export.SPLITS]
    assert sizes == [300, 40, 40]
    out = export.export_session(root, val_ratio, str(tmp_path / 'out'), 'x')
    item_ids = SessionDataset(root, 'train', val_ratio=val_ratio).item_ids
    assert out['n_items_pyg_recs'] == out['n_items_in_files'] == \
        item_ids.numel() < 309

    train = safe_load(osp.join(src, 'train.txt'))
    test = safe_load(osp.join(src, 'test.txt'))
    _, s, t = read_session_file(tmp_path / 'out' / 'x.train.inter', item_ids)
    assert s == [list(v) for v in train[0][:300]] and t == train[1][:300]
    _, s, t = read_session_file(tmp_path / 'out' / 'x.valid.inter', item_ids)
    assert s == [list(v) for v in train[0][1085:1125]]
    assert t == train[1][1085:1125]
    _, s, t = read_session_file(tmp_path / 'out' / 'x.test.inter', item_ids)
    assert s == [list(v) for v in test[0][:40]] and t == test[1][:40]

    # A second call reuses the subset:
    again = export.prepare_session_root(src, str(tmp_path / 'root'),
                                        max_train=300, max_eval=40)
    assert again[1] == val_ratio
    with pytest.raises(ValueError, match="'max_train'"):
        export.prepare_session_root(src, str(tmp_path / 'r2'), max_train=0)


def test_kg_export_matches_masks(tmp_path):
    from pyg_recs.datasets import MovieLens100KKG
    from pyg_recs.datasets.knowledge_graph import RATES, RELATION
    src = shared_path('ml-100k-kg')
    root = link_raw([osp.join(src, f'ml-100k.{e}')
                     for e in ('inter', 'kg', 'link')], str(tmp_path / 'ml'))
    data = MovieLens100KKG(root)[0]
    out_dir = tmp_path / 'out'
    info = export.export_kg(data, str(out_dir), 'ml')

    rates = data[RATES]
    users, items = data['user'].raw_id, data['item'].raw_id
    for split, mask in zip(export.SPLITS,
                           ('train_mask', 'val_mask', 'test_mask')):
        header, rows = read_inter(out_dir / f'ml.{split}.inter')
        assert header == export.KG_INTER_HEADER
        m = rates[mask]
        assert len(rows) == info[f'n_{split}'] == int(m.sum())
        u, i = rates.edge_index[:, m]
        assert {tuple(r) for r in rows} == {
            (str(int(users[a])), str(int(items[b])))
            for a, b in zip(u.tolist(), i.tolist())
        }
    assert info['n_train'] + info['n_valid'] + info['n_test'] == 100000

    kg = data[RELATION]
    header, rows = read_inter(out_dir / 'ml.kg')
    assert header == export.KG_HEADER
    assert len(rows) == int(kg.train_mask.sum()) == 64142
    ents, rels = data['entity'].raw_id, data.relation_names
    h, t = kg.edge_index[:, kg.train_mask]
    r = kg.edge_type[kg.train_mask]
    assert rows[:50] == [[ents[a], rels[b], ents[c]] for a, b, c in zip(
        h[:50].tolist(), r[:50].tolist(), t[:50].tolist())]

    header, rows = read_inter(out_dir / 'ml.link')
    assert header == export.LINK_HEADER
    assert len(rows) == info['n_link'] == 1598
    assert info['n_items_pyg_recs'] == info['n_items_in_files'] == 1682


def test_kg_export_refuses_user_with_all_items(tmp_path):
    from pyg_recs.datasets import AtomicKGDataset
    src = shared_path('recbole-test-kg')
    root = link_raw([osp.join(src, f'test.{e}')
                     for e in ('inter', 'kg', 'link')], str(tmp_path / 't'))
    with pytest.warns(UserWarning):
        data = AtomicKGDataset(root, 'test', strict=False)[0]
    with pytest.raises(ValueError, match='all 200 items'):
        export.export_kg(data, str(tmp_path / 'out'), 't')
    info = export.export_kg(data, str(tmp_path / 'out'), 't',
                            require_negatives=False)
    assert info['n_kg_triples'] == int(data['entity', 'relation',
                                            'entity'].train_mask.sum())


# Harness #####################################################################

def test_parse_epochs():
    assert bench.parse_epochs(['3']) == {m: 3 for m in bench.HPARAMS}
    assert set(bench.HPARAMS) == {'srgnn', 'niser', 'gcsan', 'tagnn',
                                  'ktup'}
    assert bench.parse_epochs(['srgnn=2', 'ktup=5']) == {'srgnn': 2,
                                                         'ktup': 5}
    for bad in (['x'], ['foo=2'], ['0']):
        with pytest.raises(ValueError, match="'--epochs'"):
            bench.parse_epochs(bad)


def fake_pyg(epoch_seconds, eval_s, num_train=1000, model='srgnn'):
    return {
        'stats': {'num_train': num_train, 'num_items': 50, 'num_valid': 10,
                  'num_test': 10},
        'epochs': [{'seconds': s, 'valid': {'seconds': 1.0}}
                   for s in epoch_seconds],
        'epoch_seconds': epoch_seconds, 'eval_seconds': eval_s,
        'peak_memory': {'rss_mb': 100.0},
        'test': {'HR@20': 0.5, 'Recall@10': 0.2},
        'versions': {'pyg_recs': '0'}, 'hparams': {'monitor': 'HR@20'},
        'best_epoch': len(epoch_seconds),
    }


def fake_recbole(epoch_times, eval_s, phases=None):
    out = {
        'data': {'n_train': 1000, 'n_valid': 10, 'n_test': 10,
                 'n_items': 50, 'n_kg_triples': 512},
        'hyperparameters': {'batch_size': 100},
        'epoch_times': epoch_times, 'eval_seconds': eval_s,
        'valid_seconds': [3.0] * len(epoch_times),
        'peak_rss_mb': 300.0, 'cuda_max_memory_allocated_mb': None,
        'test_metrics': {'HR@20': 0.4, 'Recall@10': 0.1},
        'versions': {'recbole': '1.2.1', 'torch': '2'},
        'autograd_anomaly_detection': {'used': False},
    }
    if phases:
        out['epoch_phases'] = phases
    return out


def test_summaries_and_ratios():
    pyg = bench.summarize_pyg_recs(fake_pyg([9.0, 2.0, 4.0], 0.5), 'srgnn',
                                   'd', 'cpu', {'wall_seconds': 1})
    assert pyg['epoch_s'] == 3.0  # median of [2, 4]: warm-up left out
    assert pyg['batches_per_epoch'] == [10, 10, 10]
    assert pyg['batch_ms'] == 300.0
    peer = bench.summarize_recbole(fake_recbole([20.0, 6.0, 12.0], 2.0),
                                   'srgnn', 'd', 'cpu', {'wall_seconds': 1})
    assert peer['epoch_s'] == 9.0 and peer['valid_s'] == 3.0
    rows = bench.ratios([pyg, peer])
    assert len(rows) == 1
    assert rows[0]['speedup_epoch'] == pytest.approx(3.0)
    assert rows[0]['speedup_batch'] == pytest.approx(3.0)
    assert rows[0]['speedup_eval'] == pytest.approx(4.0)
    assert rows[0]['rss_ratio'] == pytest.approx(3.0)
    assert rows[0]['headline_pyg_recs'] == 0.5

    # KTUP: pyg_recs batches = rec batches + 3 KG batches per 7 rec ones;
    # RecBole's KG epochs count KG batches.
    pyg = bench.summarize_pyg_recs(fake_pyg([1.0, 1.0], 0.1, 2560, 'ktup'),
                                   'ktup', 'd', 'cpu', {})
    assert pyg['batches_per_epoch'] == [10 + 2 * 3] * 2
    peer = bench.summarize_recbole(
        fake_recbole([5.0, 4.0, 2.0], 1.0, ['rs', 'rs', 'kg']), 'ktup', 'd',
        'cpu', {})
    assert peer['batches_per_epoch'] == [10, 10, 6]
    assert peer['phase_epoch_s'] == {'kg': 2.0, 'rs': 4.0}
    assert peer['batch_ms'] == pytest.approx((400 + 2000 / 6) / 2)

    failed = bench.summarize_recbole(None, 'ktup', 'd', 'cpu',
                                     {'error': 'exit code 1'})
    assert bench.ratios([pyg, failed]) == []


def test_update_readme(tmp_path):
    path = tmp_path / 'README.md'
    path.write_text(f'a\n{bench.README_START}\nold\n{bench.README_END}\nb\n')
    bench.update_readme(str(path), 'new table')
    text = path.read_text()
    assert 'old' not in text and 'new table' in text
    assert text.startswith('a\n') and text.endswith(f'{bench.README_END}\nb\n')
    path.write_text('no markers')
    with pytest.raises(ValueError, match='results:start'):
        bench.update_readme(str(path), 'x')


def harness_args(tmp_path):
    if not osp.isdir(SHARED_DATA):
        pytest.skip(f"real data not found at '{SHARED_DATA}'")
    return ['--models', 'srgnn', '--datasets', 'srgnn-sample', '--epochs',
            '1', '--data-root', SHARED_DATA, '--out-dir',
            str(tmp_path / 'out'), '--work-dir', str(tmp_path / 'work'),
            '--cache-dir', str(tmp_path / 'cache'), '--tag', 'test',
            '--threads', '1']


def test_run_pyg_recs_only(tmp_path, capsys):
    report = bench.main(harness_args(tmp_path))
    out = tmp_path / 'out'
    with open(out / 'test.json') as f:
        saved = json.load(f)
    assert saved['records'] == json.loads(json.dumps(report['records']))
    (rec, ) = saved['records']
    assert 'error' not in rec, rec.get('log_tail')
    assert rec['library'] == 'pyg_recs' and rec['model'] == 'srgnn'
    assert rec['n_items'] == 309 and rec['n_train'] == 1085
    assert rec['torch_threads'] == 1
    assert rec['raw']['hparams']['lr'] == 1e-3
    assert rec['raw']['settings']['hidden'] == 100
    assert len(rec['epoch_seconds']) == 1 and rec['epoch_s'] > 0
    assert rec['batches_per_epoch'] == [11]
    for key in ('HR@20', 'MRR@20', 'NDCG@20'):
        assert 0.0 <= rec['metrics'][key] <= 1.0
    assert rec['peak_rss_mb'] > 0 and rec['eval_s'] > 0
    assert saved['ratios'] == []
    assert saved['machine']['cpu_count'] >= 1
    assert len(saved['machine']['load_average_start']) == 3
    assert saved['versions_summary']['torch'] == torch.__version__

    text = (out / 'test.md').read_text()
    assert '| SR-GNN | srgnn-sample | pyg_recs |' in text
    assert f"HR@20 {100 * rec['metrics']['HR@20']:.2f}" in text
    assert '| diginetica | HR@20 | 50.73 |' in text
    assert (out / 'test.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # Redrawing from the JSON gives the same tables:
    os.remove(out / 'test.md')
    bench.main(['--from-json', str(out / 'test.json')])
    assert (out / 'test.md').read_text() == text


def test_family_tables_come_from_the_recipes(tmp_path):
    # A session model of the recipes joins the benchmark with SR-GNN's
    # data and trainer settings, without a table of its own.
    for model in ('niser', 'gcsan', 'tagnn'):
        assert bench.KIND[model] == 'session'
        assert bench.HEADLINE[model] == 'HR@20'
        hp = bench.HPARAMS[model]
        assert (hp['lr'], hp['l2'], hp['lr_step']) == (1e-3, 1e-5, 3)
    assert bench.LABEL['niser'] == 'NISER+'
    args = harness_args(tmp_path)
    args[1:2] = ['srgnn', 'gcsan']
    report = bench.main(args)
    assert [(r['model'], r['dataset']) for r in report['records']] == [
        ('srgnn', 'srgnn-sample'), ('gcsan', 'srgnn-sample')]
    for rec in report['records']:
        assert 'error' not in rec, rec.get('log_tail')
    text = (tmp_path / 'out' / 'test.md').read_text()
    assert '| GC-SAN | srgnn-sample | pyg_recs |' in text
    assert '| NISER+ | diginetica | HR@20 | 53.39 |' in text


VENV_PYTHON = osp.join(bench.DEFAULT_VENV, 'bin', 'python')


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(VENV_PYTHON), reason='no RecBole venv')
def test_run_compare_recbole(tmp_path):
    report = bench.main(harness_args(tmp_path) + ['--compare', 'recbole'])
    pyg, peer = report['records']
    assert 'error' not in peer, peer.get('log_tail')
    assert peer['library'] == 'recbole'
    for key in ('n_items', 'n_train', 'n_valid', 'n_test'):
        assert pyg[key] == peer[key]
    assert peer['raw']['hyperparameters']['lr_decay_step'] == 3
    assert peer['autograd_anomaly_detection']['used'] is False
    (row, ) = report['ratios']
    assert row['speedup_epoch'] > 0 and row['speedup_eval'] > 0


# Processing benchmark ########################################################

def test_processing_benchmark_small(tmp_path, monkeypatch):
    # The synthetic Yoochoose log and the per-fraction child processes, on
    # 30,000 clicks instead of 33 million:
    proc = load_module('bench_processing',
                       osp.join(ROOT, 'benchmarks', 'processing.py'))
    out = tmp_path / 'result.json'
    monkeypatch.setattr(sys, 'argv', [
        'processing.py', '--clicks', '30000', '--fractions', '1/4', '1',
        '--work-dir', str(tmp_path / 'work'), '--out', str(out)
    ])
    proc.main()
    result = json.loads(out.read_text())
    assert result['clicks'] >= 30000
    quarter, full = result['runs']
    assert (quarter['fraction'], full['fraction']) == ('1/4', '1')
    # The most recent quarter of the training examples (10% of either is
    # then held out for validation):
    assert abs(quarter['num_train'] - full['num_train'] / 4) <= 2
    assert quarter['num_test'] == full['num_test'] > 0
    for run in result['runs']:
        assert run['seconds'] > 0 and run['peak_rss_mb'] > 0
        assert run['num_nodes'] >= run['num_train']
