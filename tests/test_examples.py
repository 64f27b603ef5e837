import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / 'examples'
SHARED = ROOT.parent / 'shared' / 'data'
TEST_KG = SHARED / 'recbole-test-kg' / 'test.kg'

# Every example with small settings, and the metric line it must print.
RUNS = {
    'srgnn_conv_citation': dict(
        args=['--epochs', '30', '--num_nodes', '500'],
        metric=r'Test accuracy: (\d+\.\d+)',
    ),
    'kge_transh': dict(
        args=['--epochs', '2', '--eval_every', '2', '--hidden_channels',
              '16', '--max_eval', '200', '--kg', str(TEST_KG)],
        metric=r'Test \(filtered\):.*Hits@10: (\d+\.\d+)',
        needs=TEST_KG,
    ),
}


def _missing(name):
    needs = RUNS[name].get('needs')
    return needs is not None and not Path(needs).exists()


@pytest.fixture(scope='module')
def outputs():
    # Start all examples at once (most of their time is importing torch and
    # PyG), then collect what each printed.
    pythonpath = [str(ROOT)] + ([os.environ['PYTHONPATH']]
                                if os.environ.get('PYTHONPATH') else [])
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(pythonpath))
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / f'{name}.py')] + run['args'],
            cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        for name, run in RUNS.items() if not _missing(name)
    }
    out = {}
    for name, proc in procs.items():
        try:
            stdout, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        out[name] = (proc.returncode, stdout)
    return out


@pytest.mark.parametrize('name', sorted(RUNS))
def test_example_runs(name, outputs):
    if _missing(name):
        pytest.skip(f"'{RUNS[name]['needs']}' not found")
    returncode, stdout = outputs[name]
    assert returncode == 0, stdout[-3000:]
    match = re.search(RUNS[name]['metric'], stdout)
    assert match is not None, stdout[-3000:]
    assert 0.0 <= float(match.group(1)) <= 1.0


def test_srgnn_conv_example_learns(outputs):
    _, stdout = outputs['srgnn_conv_citation']
    acc = float(re.search(RUNS['srgnn_conv_citation']['metric'], stdout)[1])
    assert acc > 0.5, stdout[-3000:]  # chance is 1/5


def test_kge_example_filters_ranks(outputs):
    if _missing('kge_transh'):
        pytest.skip(f"'{TEST_KG}' not found")
    _, stdout = outputs['kge_transh']
    assert 'test.kg: 11,338 triples, 6,033 entities, 24 relations' in stdout
    raw = re.search(r'Test \(raw\): Mean Rank: (\d+\.\d+), MRR: (\d+\.\d+)',
                    stdout)
    filt = re.search(r'Test \(filtered\): Mean Rank: (\d+\.\d+), '
                     r'MRR: (\d+\.\d+)', stdout)
    assert raw is not None and filt is not None, stdout[-3000:]
    # Removing the other true tails can only move the true one up (raw ranks
    # are 0-based, filtered ones 1-based):
    assert float(filt[1]) <= float(raw[1]) + 1.0
    assert float(filt[2]) >= float(raw[2]) - 1e-4


def test_every_example_is_tested():
    assert {path.stem for path in EXAMPLES.glob('*.py')} == set(RUNS)
