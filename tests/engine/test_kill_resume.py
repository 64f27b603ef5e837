r"""Crash safety of training: a run killed with SIGKILL in the middle of an
epoch resumes from its last complete epoch and ends exactly where an
uninterrupted run with the same seed ends, and no checkpoint on disk is
ever unreadable."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from pyg_recs.cli import main
from pyg_recs.datasets import SessionDataset
from pyg_recs.engine import load_checkpoint, load_model_state

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EPOCHS = 4
# One thread per run: the runs share the CPU with each other and the test.
ENV = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')


def command(root, out, json_path, resume=False):
    cmd = [
        sys.executable, '-m', 'pyg_recs', 'train', 'srgnn', '--dataset',
        'srgnn-format', '--root', root, '--epochs', str(EPOCHS), '--hidden',
        '16', '--batch-size', '20', '--lr', '0.01', '--lr-step', '2', '--out',
        out, '--json', json_path, '--no-progress', '--seed', '7'
    ]
    return cmd + ['--resume'] if resume else cmd


def read_epoch(out):
    try:
        with open(osp.join(out, 'last.pt.json')) as f:
            return json.load(f)['epoch']
    except FileNotFoundError:
        return 0


def watch(cmd, out, log, kill_after_epoch=None, delay=0.1, timeout=300):
    r"""Runs :obj:`cmd`, loading every new version of :obj:`out/last.pt`
    while it runs (it must always be readable), and kills the process with
    SIGKILL :obj:`delay` seconds after :obj:`last.pt.json` shows
    :obj:`kill_after_epoch` (i.e. during the next epoch). Returns the exit
    code and the number of checkpoint loads."""
    with open(log, 'w') as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=f,
                                stderr=subprocess.STDOUT)
    start, loads, seen = time.monotonic(), 0, None
    path = osp.join(out, 'last.pt')
    try:
        while proc.poll() is None:
            assert time.monotonic() - start < timeout, 'training hangs'
            try:
                st = os.stat(path)
                version = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                version = None
            if version is not None and version != seen:
                state = load_checkpoint(path)  # Raises if unreadable.
                assert 1 <= state['epoch'] <= EPOCHS
                seen, loads = version, loads + 1
            if kill_after_epoch is not None and \
                    read_epoch(out) >= kill_after_epoch:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:  # pragma: no cover (a failed assertion)
            proc.kill()
            proc.wait()
    return proc.returncode, loads


def check_run_folder(out):
    r"""Every checkpoint in :obj:`out` loads."""
    state = load_checkpoint(osp.join(out, 'last.pt'))
    if osp.exists(osp.join(out, 'best.pt')):
        load_model_state(osp.join(out, 'best.pt'))
    return state


def summary(record):
    epochs = [{
        'epoch': e['epoch'],
        'loss': e['loss'],
        'lr': e['lr'],
        'best_epoch': e['best_epoch'],
        'valid': {k: v for k, v in e['valid'].items() if k != 'seconds'},
    } for e in record['epochs']]
    return {'epochs': epochs, 'best_epoch': record['best_epoch'],
            'test': record['test']}


@pytest.mark.parametrize('num_kills', [
    1,
    pytest.param(2, marks=pytest.mark.slow),  # Resume a resumed run too.
])
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(
        sample_root, tmp_path, num_kills):
    SessionDataset(sample_root)  # Process the data set once, up front.

    # The uninterrupted run, in the background meanwhile:
    full_out, full_json = str(tmp_path / 'full'), str(tmp_path / 'full.json')
    with open(tmp_path / 'full.log', 'w') as f:
        full_proc = subprocess.Popen(
            command(sample_root, full_out, full_json), cwd=REPO,
            env=ENV, stdout=f,
            stderr=subprocess.STDOUT)
    try:
        resumed, kills, loads = kill_and_resume(sample_root, tmp_path,
                                                num_kills)
        assert full_proc.wait(timeout=300) == 0, \
            open(tmp_path / 'full.log').read()
    finally:
        if full_proc.poll() is None:  # pragma: no cover (a failure above)
            full_proc.kill()
            full_proc.wait()
    assert check_run_folder(full_out)['epoch'] == EPOCHS
    with open(full_json) as f:
        full = json.load(f)
    assert len(full['epochs']) == EPOCHS

    # Bit for bit the same as the uninterrupted run:
    assert summary(resumed) == summary(full)
    assert resumed['train_losses'] == full['train_losses']
    print(f"killed after epochs {kills}; {loads} checkpoint loads; losses "
          f"{full['train_losses']}; test {full['test']}")


def kill_and_resume(root, tmp_path, num_kills):
    out, json_path = str(tmp_path / 'run'), str(tmp_path / 'run.json')
    log = str(tmp_path / 'run.log')
    # Kill in epoch 2 (resume, kill in the next epoch), resume to the end.
    kills, total_loads = [], 0
    for i in range(num_kills):
        kill_after = kills[-1] + 1 if kills else 1
        code, loads = watch(command(root, out, json_path, resume=i > 0), out,
                            log, kill_after_epoch=kill_after)
        assert code == -signal.SIGKILL, open(log).read()
        state = check_run_folder(out)
        # Killed after the last complete epoch, before the end of the next:
        assert state['epoch'] in (kill_after, kill_after + 1)
        assert not osp.exists(json_path)  # The run never finished.
        with open(osp.join(out, '.lock')) as f:  # A stale lock is left.
            assert int(f.read()) > 0
        kills.append(state['epoch'])
        total_loads += loads

    # Without --resume the CLI refuses to touch the folder:
    assert main(command(root, out, json_path)[3:]) == 2

    code, loads = watch(command(root, out, json_path, resume=True), out, log)
    assert code == 0, open(log).read()
    assert total_loads + loads > 0
    assert not osp.exists(osp.join(out, '.lock'))
    assert check_run_folder(out)['epoch'] == EPOCHS
    with open(json_path) as f:
        return json.load(f), kills, total_loads + loads
