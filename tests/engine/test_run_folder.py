r"""A run folder is never damaged by another command: its config.json
survives a refused training, and faults are found before training."""
import os
import os.path as osp

import pytest

from pyg_recs.cli import main

FAST = ['--epochs', '1', '--hidden', '8', '--batch-size', '200',
        '--max-train', '200', '--max-eval', '100', '--no-progress']


def train(root, out, *extra):
    return main(['train', 'srgnn', '--dataset', 'srgnn-format', '--root',
                 root, '--out', out, *FAST, *extra])


@pytest.fixture
def finished(sample_root, tmp_path):
    out = str(tmp_path / 'run')
    assert train(sample_root, out) == 0
    with open(osp.join(out, 'config.json')) as f:
        config = f.read()
    return out, config


def test_summary_prints_the_run_folder(sample_root, tmp_path, capsys):
    out = str(tmp_path / 'printed')
    assert train(sample_root, out) == 0
    assert f'run folder: {out} (pyg-recs evaluate --run' in \
        capsys.readouterr().out


def test_config_is_absolute_and_evaluates_from_elsewhere(
        finished, tmp_path, monkeypatch, capsys):
    out, config = finished
    assert osp.abspath(osp.dirname(osp.dirname(out))) in config
    monkeypatch.chdir(tmp_path / 'run')
    capsys.readouterr()
    assert main(['evaluate', '--run', out]) == 0


@pytest.mark.parametrize('extra, message', [
    ([], 'already holds a run'),  # A second run without --resume.
    (['--resume', '--hidden', '16'], "hidden=8 there, 16 here"),
])
def test_refused_run_keeps_config(sample_root, finished, capsys, extra,
                                  message):
    out, config = finished
    capsys.readouterr()
    argv = ['train', 'srgnn', '--dataset', 'srgnn-format', '--root',
            sample_root, '--out', out, *FAST, *extra]
    assert main(argv) != 0
    assert message in capsys.readouterr().err
    with open(osp.join(out, 'config.json')) as f:
        assert f.read() == config
    assert main(['evaluate', '--run', out]) == 0


def test_resume_on_other_data_is_refused(finished, tmp_path, capsys):
    # The same model and settings, but --root holds another dataset (here
    # the first half of the sample): refused before config.json is
    # written, and the run still evaluates.
    import pickle

    from pyg_recs.data.safe_pickle import safe_load
    out, config = finished
    src = osp.join(osp.dirname(out), 'sample', 'raw')
    other = tmp_path / 'other' / 'raw'
    other.mkdir(parents=True)
    for name in ('train.txt', 'test.txt'):
        with open(osp.join(src, name), 'rb') as f:
            seqs, targets = safe_load(f.read())
        half = len(seqs) // 2
        with open(other / name, 'wb') as f:
            pickle.dump((seqs[:half], targets[:half]), f)
    capsys.readouterr()
    assert train(str(tmp_path / 'other'), out, '--resume') != 0
    err = capsys.readouterr().err
    assert 'was trained on other data' in err and 'num_' in err
    with open(osp.join(out, 'config.json')) as f:
        assert f.read() == config
    assert main(['evaluate', '--run', out]) == 0


def test_relative_root_is_stored_absolute(sample_root, tmp_path,
                                          monkeypatch, capsys):
    monkeypatch.chdir(osp.dirname(sample_root))
    out = str(tmp_path / 'rel-run')
    assert train(osp.basename(sample_root), out) == 0
    import json
    with open(osp.join(out, 'config.json')) as f:
        root = json.load(f)['settings']['root']
    assert root == osp.abspath(sample_root)
    monkeypatch.chdir(tmp_path / 'rel-run')
    assert main(['evaluate', '--run', out]) == 0


def test_resume_of_another_model_is_refused(finished, capsys):
    out, config = finished
    capsys.readouterr()
    shared = osp.join(osp.dirname(__file__), '..', '..', '..', 'shared',
                      'data', 'recbole-test-kg')
    if not osp.isdir(shared):
        pytest.skip('no KG data')
    # The config check runs before any dataset is opened or written:
    assert main(['train', 'ktup', '--dataset', 'ml-100k-kg', '--root',
                 osp.join(osp.dirname(out), 'kg'), '--out', out,
                 '--resume', '--epochs', '1', '--no-progress']) != 0
    assert "model 'srgnn' there, 'ktup' here" in capsys.readouterr().err
    with open(osp.join(out, 'config.json')) as f:
        assert f.read() == config


def test_resume_of_missing_folder_is_refused(sample_root, tmp_path, capsys):
    out = str(tmp_path / 'typo')
    assert train(sample_root, out, '--resume') != 0
    assert 'does not exist' in capsys.readouterr().err
    assert not osp.exists(out)


def test_json_path_checked_before_training(sample_root, tmp_path, capsys):
    folder = tmp_path / 'adir'
    folder.mkdir()
    out = str(tmp_path / 'run')
    assert train(sample_root, out, '--json', str(folder)) != 0
    assert 'is a directory' in capsys.readouterr().err
    assert not osp.exists(osp.join(out, 'last.pt'))


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores permissions')
def test_unwritable_out(sample_root, tmp_path, capsys):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert train(sample_root, str(folder / 'run')) != 0
        assert 'Choose a writable --out' in capsys.readouterr().err
    finally:
        folder.chmod(0o700)


def test_device_auto_and_missing_cuda(monkeypatch, capsys):
    import torch

    from pyg_recs.cli import resolve_device
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device('auto') == 'cpu'
    assert main(['evaluate', '--run', 'nowhere', '--device', 'cuda']) == 2
    assert 'no CUDA GPU is available' in capsys.readouterr().err


@pytest.mark.parametrize('flag, value', [
    ('--epochs', '0'), ('--max-train', '-1000'), ('--max-eval', '0'),
    ('--lr-gamma', '-1'), ('--lr', 'nan'), ('--hidden', 'x'),
])
def test_nonsense_numbers_are_refused(sample_root, tmp_path, capsys, flag,
                                      value):
    with pytest.raises(SystemExit) as e:
        main(['train', 'srgnn', '--dataset', 'srgnn-format', '--root',
              sample_root, '--out', str(tmp_path / 'run'), flag, value])
    assert e.value.code == 2
    assert f'argument {flag}' in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()


def test_evaluate_with_a_foreign_checkpoint_or_config(finished, tmp_path,
                                                      sample_root, capsys):
    import json
    import shutil
    out, config = finished
    other = str(tmp_path / 'other')
    assert train(sample_root, other, '--hidden', '16') == 0
    shutil.copy(osp.join(other, 'best.pt'), osp.join(out, 'best.pt'))
    capsys.readouterr()
    assert main(['evaluate', '--run', out]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "[16]" in err and "[8]" in err
    assert 'size mismatch' not in err

    data = json.loads(config)
    del data['settings']['root']
    with open(osp.join(other, 'config.json'), 'w') as f:
        json.dump(data, f)
    assert main(['evaluate', '--run', other]) == 2
    assert "does not describe a 'srgnn' run" in capsys.readouterr().err


@pytest.mark.parametrize('query, message', [
    ('abc', "Invalid item id 'abc'"),
    ('1 ' + '9' * 23, "beyond the 64-bit range"),
])
def test_recommend_bad_query(finished, capsys, query, message):
    out, _ = finished
    capsys.readouterr()
    assert main(['recommend', '--run', out, '--query', query]) == 2
    assert message in capsys.readouterr().err


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import torch

    from pyg_recs.engine.checkpoint import load_model_state
    from pyg_recs.io import WriteError, atomic_torch_save
    path = str(tmp_path / 'last.pt')
    atomic_torch_save({'w': torch.ones(3)}, path)

    def full(obj, f):
        f.write(b'half a checkpoint')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(WriteError, match="Could not write '.*last.pt': No "
                       "space left on device; the previous file"):
        atomic_torch_save({'w': torch.zeros(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ['last.pt']  # No temporary is left.
    assert load_model_state(path)['w'].tolist() == [1.0, 1.0, 1.0]
