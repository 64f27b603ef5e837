import json
import os.path as osp

import pytest

from pyg_recs.cli import main


def test_cli_train_evaluate_recommend(sample_root, tmp_path, capsys):
    out = str(tmp_path / 'run')
    json_path = str(tmp_path / 'run.json')
    assert main([
        'train', 'srgnn', '--dataset', 'srgnn-format', '--root', sample_root,
        '--epochs', '2', '--hidden', '16', '--batch-size', '50', '--lr',
        '0.01', '--out', out, '--json', json_path, '--no-progress'
    ]) == 0
    with open(json_path) as f:
        record = json.load(f)
    assert record['model'] == 'srgnn'
    assert record['hparams']['lr'] == 0.01
    assert len(record['epochs']) == 2
    assert len(record['epoch_seconds']) == 2
    for key in ('HR@20', 'MRR@20', 'NDCG@20', 'HR@10'):
        assert 0.0 <= record[key] <= 1.0
    assert osp.exists(osp.join(out, 'best.pt'))

    capsys.readouterr()
    assert main(['evaluate', '--run', out]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert abs(metrics['HR@20'] - record['HR@20']) < 1e-6

    assert main(['recommend', '--run', out, '--query', '1 2', '-k', '5']) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 5 and all(isinstance(i, int) for i in items)
    assert main(['recommend', '--run', out, '--query', '999999']) == 2
    assert 'Unknown item ids' in capsys.readouterr().err

    # A second run into the same folder is refused:
    assert main([
        'train', 'srgnn', '--dataset', 'srgnn-format', '--root', sample_root,
        '--epochs', '1', '--out', out, '--no-progress'
    ]) != 0


def test_cli_precision_pad_and_val_split(sample_root, tmp_path, capsys):
    out = str(tmp_path / 'run')
    json_path = tmp_path / 'run.json'
    assert main([
        'train', 'srgnn', '--dataset', 'srgnn-format', '--root', sample_root,
        '--epochs', '1', '--hidden', '8', '--max-train', '200',
        '--precision', 'bf16', '--pad', '--val-split', 'random', '--out',
        out, '--json', str(json_path), '--no-progress'
    ]) == 0
    record = json.loads(json_path.read_text())
    assert record['hparams']['precision'] == 'bf16'
    assert record['settings']['pad'] is True
    assert record['settings']['val_split'] == 'random'
    assert record['stats']['val_split'] == 'random'

    capsys.readouterr()
    assert main(['evaluate', '--run', out, '--precision', 'bf16']) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert abs(metrics['HR@20'] - record['HR@20']) < 1e-6
    assert main(['evaluate', '--run', out]) == 0  # fp32: close to bf16
    fp32 = json.loads(capsys.readouterr().out)
    assert abs(fp32['HR@20'] - metrics['HR@20']) < 0.05

    # Padding is for session batches only: ktup's parser has no --pad.
    with pytest.raises(SystemExit) as e:
        main(['train', 'ktup', '--dataset', 'test', '--root',
              str(tmp_path / 'kg'), '--pad', '--no-progress'])
    assert e.value.code == 2
    assert 'unrecognized arguments: --pad' in capsys.readouterr().err
