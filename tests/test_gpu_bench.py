import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from .conftest import shared_path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'benchmarks', 'gpu.sh')


def gpu_sh(*args, **env):
    return subprocess.run(
        ['bash', SCRIPT, *args], cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHON=sys.executable, **env), timeout=900)


def test_gpu_sh_dry_run_writes_every_part(tmp_path):
    shared_path('srgnn-sample')
    shared_path('recbole-test-kg')
    out = gpu_sh('--dry-run', '--tag', 'check', '--out-dir',
                 str(tmp_path / 'results'), '--work', str(tmp_path / 'work'))
    assert out.returncode == 0, out.stdout + out.stderr
    with open(tmp_path / 'results' / 'check-gpu.json') as f:
        result = json.load(f)
    assert (tmp_path / 'results' / 'check-gpu.md').is_file()
    assert result['dry_run'] is True and result['device'] == 'cpu'
    assert {'tag', 'device_name', 'torch', 'parts'} <= result.keys()
    parts = result['parts']
    # Eager bf16 is left out of the run (its time goes to tagnn):
    assert list(parts) == ['prepare', 'srgnn-fp32', 'srgnn-compiled-bf16',
                           'tagnn', 'ktup']
    assert all(p['status'] == 'ok' for p in parts.values())
    assert parts['prepare']['srgnn_sizes'] == {'train': 1205, 'test': 99}
    expected = {
        'srgnn-fp32': ('fp32', False, False),
        'srgnn-compiled-bf16': ('bf16', True, True),
    }
    for name, (precision, pad, compile) in expected.items():
        part = parts[name]
        assert {'epochs', 'epoch_seconds', 'eval_seconds', 'metrics',
                'peak_memory', 'hparams'} <= part.keys()
        assert len(part['epoch_seconds']) == 1
        assert part['hparams']['precision'] == precision
        assert part['hparams']['compile'] is compile
        assert part['stats']['num_train'] == 300  # A few batches.
        assert 0 <= part['metrics']['HR@20'] <= 1
        assert 'MRR@20' in part['metrics']
        assert 'rss_mb' in part['peak_memory']
    # TAGNN's reproduction: the valid phase, two epochs in a dry run, the
    # best validation epoch tested; its record stays in the work folder.
    tagnn = parts['tagnn']
    assert len(tagnn['epoch_seconds']) == 2
    assert tagnn['stats']['num_train'] == 300
    assert tagnn['stats']['val_split'] == 'random'
    assert tagnn['best_epoch'] in (1, 2)
    assert [e['epoch'] for e in tagnn['epochs']] == [1, 2]
    assert all('HR@20' in e['valid'] and 'HR@20' in e['test_reported_only']
               for e in tagnn['epochs'])
    assert 0 <= tagnn['metrics']['HR@20'] <= 1
    results = sorted(os.listdir(tmp_path / 'results'))
    assert results == ['check-gpu.json', 'check-gpu.md']
    ktup = parts['ktup']
    assert len(ktup['epoch_seconds']) == 1
    assert 'Recall@10' in ktup['metrics']
    # The table has one row per part:
    markdown = (tmp_path / 'results' / 'check-gpu.md').read_text()
    assert all(f'| {name} | ok' in markdown for name in parts)


@pytest.mark.skipif(torch.cuda.is_available(), reason='has a GPU')
def test_gpu_sh_without_cuda_stops_in_one_line(tmp_path):
    out = gpu_sh('--out-dir', str(tmp_path), '--work', str(tmp_path / 'w'))
    assert out.returncode == 1
    assert out.stdout == ''
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and 'no usable CUDA device' in lines[0]
    assert not os.listdir(tmp_path)


def test_gpu_bench_report_marks_failed_parts(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    import gpu_bench
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'srgnn-fp32.rc').write_text('124\n')
    (work / 'srgnn-fp32.log').write_text('epoch 1\nstill going\n')
    (work / 'ktup.rc').write_text('1\n')
    (work / 'ktup.log').write_text('Traceback\nValueError: bad\n')
    assert gpu_bench.main(['report', '--work', str(work), '--tag', 't',
                           '--out-dir', str(tmp_path)]) == 1
    result = json.loads((tmp_path / 't-gpu.json').read_text())
    parts = result['parts']
    assert parts['srgnn-fp32']['status'] == 'timeout'
    assert parts['ktup']['status'] == 'failed'
    assert parts['ktup']['log_tail'] == ['Traceback', 'ValueError: bad']
    assert parts['prepare']['status'] == 'not run'
    assert '| ktup | failed |' in (tmp_path / 't-gpu.md').read_text()
