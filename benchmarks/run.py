r"""Side-by-side benchmark of ``pyg_recs`` and RecBole on identical data.

.. code-block:: bash

    python benchmarks/run.py --models srgnn ktup \
        --datasets diginetica ml-100k-kg --device cpu \
        --epochs srgnn=2 ktup=3 --max-train 20000 --max-eval 5000 \
        --compare recbole

For every (model, dataset) pair it trains ``pyg_recs`` through its public
:func:`pyg_recs.engine.run` in a subprocess of this Python (so that the
peak memory is that of one run), and, with ``--compare recbole``, RecBole's
own implementation through ``benchmarks/peers/recbole_runner.py`` in
RecBole's virtual environment, on the same splits exported to RecBole's
atomic files (``benchmarks/export.py``), with the same hyper-parameters
where both libraries have them. Each run reports seconds per training
epoch (median, warm-up excluded, CUDA synchronised), seconds per
evaluation, peak memory and the full-ranking test metrics.

One call writes ``<out-dir>/<date>-<device>.json`` (every raw record, the
versions, the machine, the speed-up ratios), ``.md`` (the tables) and
``.png`` (seconds per epoch and the headline metric, side by side).
See ``benchmarks/README.md``.
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, REPO)

from export import export_kg, export_session, prepare_session_root  # noqa
from precision import cpu_name  # noqa
from pyg_recs.engine.recipes import RECIPES, SESSION_MODELS  # noqa
from pyg_recs.io import link_files  # noqa

RUNNER = osp.join(HERE, 'peers', 'recbole_runner.py')
DEFAULT_VENV = os.environ.get(
    'PYG_RECS_RECBOLE_VENV',
    osp.join(osp.expanduser('~'), '.cache', 'pyg_recs', 'recbole-venv'))
LIBRARIES = ('pyg_recs', 'recbole')

#: The benchmarked models and their kind of data: the session models of
#: the recipes (SR-GNN and its successors) and KTUP.
KIND: Dict[str, str] = {**{m: 'session' for m in SESSION_MODELS},
                        'ktup': 'kg'}
#: Benchmark datasets: the kind of model they serve, where the raw files
#: are under ``--data-root``, and the dataset name the ``pyg_recs`` recipe
#: opens.
DATASETS: Dict[str, Dict[str, Any]] = {
    'diginetica': dict(kind='session', source='diginetica',
                       recipe='diginetica'),
    'srgnn-sample': dict(kind='session',
                         source='srgnn-sample/srgnn-format',
                         recipe='srgnn-format'),
    'ml-100k-kg': dict(kind='kg', source='ml-100k-kg',
                       recipe='ml-100k-kg',
                       files=('ml-100k.inter', 'ml-100k.kg', 'ml-100k.link')),
}

#: Hyper-parameters given to both libraries. SR-GNN: the reference
#: settings. KTUP: the reference batch size, embedding size and 7:3
#: rec/KG ratio, and RecBole's model defaults (squared L2 distance ->
#: ``p_norm=2`` here, straight-through Gumbel preference selection). No KG
#: completion test for pyg_recs (``kg_eval_max=0``): RecBole has none, and
#: at its default of 1,000 triples it would dominate pyg_recs' peak memory.
HPARAMS: Dict[str, Dict[str, Any]] = {
    'srgnn': dict(hidden=100, num_steps=1, batch_size=100,
                  eval_batch_size=500, lr=1e-3, l2=1e-5, lr_step=3,
                  lr_gamma=0.1),
    'ktup': dict(hidden=100, batch_size=256, kg_batch_size=256,
                 eval_batch_size=256, lr=5e-3, l2=0.0, lr_step=0,
                 lr_gamma=0.1, rec_steps=7, kg_steps=3, use_st_gumbel=True,
                 p_norm=2.0, margin=1.0, kg_eval_max=0,
                 recbole_train_rec_step=2, recbole_train_kg_step=1),
}
# SR-GNN's successors: SR-GNN's data and training settings (the recipes'
# trainer defaults), the model's own settings at the recipe defaults.
for _model in SESSION_MODELS:
    _trainer = RECIPES[_model].trainer_defaults()
    HPARAMS[_model] = dict(
        HPARAMS['srgnn'], lr=_trainer['lr'], l2=_trainer['weight_decay'],
        lr_step=_trainer['lr_step'], lr_gamma=_trainer['lr_gamma'])
# RecBole-GNN's TAGNN holds (sessions, items, hidden) tensors: 500 sessions
# of Diginetica would be 8.6 GB each; 100 keeps both libraries in memory.
HPARAMS['tagnn']['eval_batch_size'] = 100
_HEADLINE = {'session': 'HR@20', 'kg': 'Recall@10'}
_SHOWN = {'session': ('HR@20', 'MRR@20', 'NDCG@20'),
          'kg': ('Recall@10', 'NDCG@10', 'Hit@10', 'Precision@10')}
HEADLINE = {m: _HEADLINE[kind] for m, kind in KIND.items()}
#: Metrics both libraries compute the same way, shown in the tables.
SHOWN = {m: _SHOWN[kind] for m, kind in KIND.items()}
LABEL = {m: RECIPES[m].label for m in KIND}

#: Published results (SR-GNN paper, AAAI 2019, Table 2; "P@20" there is
#: the hit rate HR@20), in percent.
PUBLISHED = [
    dict(model='srgnn', dataset='diginetica', metric='HR@20', value=50.73),
    dict(model='srgnn', dataset='diginetica', metric='MRR@20', value=17.59),
    dict(model='srgnn', dataset='yoochoose1_64', metric='HR@20',
         value=70.57),
    dict(model='srgnn', dataset='yoochoose1_64', metric='MRR@20',
         value=30.94),
    dict(model='srgnn', dataset='yoochoose1_4', metric='HR@20', value=71.36),
    # NISER paper (arXiv 1909.04276), Table 2, NISER+; TAGNN paper (arXiv
    # 2005.02844), Table 3.
    dict(model='niser', dataset='diginetica', metric='HR@20', value=53.39),
    dict(model='niser', dataset='diginetica', metric='MRR@20', value=18.72),
    dict(model='tagnn', dataset='diginetica', metric='HR@20', value=51.31),
    dict(model='tagnn', dataset='diginetica', metric='MRR@20', value=18.03),
    dict(model='srgnn', dataset='yoochoose1_4', metric='MRR@20',
         value=31.89),
]
PAPER_PROTOCOL = ('SR-GNN paper: full SR-GNN split (Diginetica 719,470 '
                  'train / 60,858 test), hidden 100, batch 100, lr 1e-3 '
                  'x0.1 every 3 epochs, L2 1e-5, up to 30 epochs, '
                  'patience 10')
README_START = '<!-- results:start -->'
README_END = '<!-- results:end -->'

# The pyg_recs side: run() in a fresh interpreter, one record as JSON.
WORKER = r'''
import json, sys, time
start = time.perf_counter()
import torch
spec = json.load(open(sys.argv[1]))
out, threads = spec.pop('out'), spec.pop('threads')
if threads:
    torch.set_num_threads(threads)
from pyg_recs.engine import run
record = run(**spec)
record['torch_threads'] = torch.get_num_threads()
record['process_seconds'] = time.perf_counter() - start
with open(out, 'w') as f:
    json.dump(record, f, indent=2)
'''


# Command line ################################################################

def parse_epochs(values: Sequence[str]) -> Dict[str, int]:
    r"""Parses :obj:`--epochs`: one number for every model, or
    :obj:`model=N` items."""
    out: Dict[str, int] = {}
    for value in values:
        name, sep, number = value.rpartition('=')
        try:
            epochs = int(number)
        except ValueError:
            raise ValueError(f"Invalid '--epochs' (got '{value}'); expected "
                             f"N or MODEL=N") from None
        if epochs < 1:
            raise ValueError(f"Invalid '--epochs' (got '{value}'); expected "
                             f'at least one epoch')
        if sep and name not in HPARAMS:
            raise ValueError(f"Invalid '--epochs' (got '{value}'); unknown "
                             f"model '{name}'")
        for model in ([name] if sep else HPARAMS):
            out[model] = epochs
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description='Benchmark pyg_recs (and RecBole) on identical data.')
    p.add_argument('--models', nargs='+', default=['srgnn', 'ktup'],
                   choices=sorted(HPARAMS), help='srgnn, its successors '
                   '(niser, gcsan, tagnn: RecBole-GNN on the RecBole side, '
                   'when installed in its venv) and ktup')
    p.add_argument('--datasets', nargs='+',
                   default=['diginetica', 'ml-100k-kg'],
                   choices=sorted(DATASETS))
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--epochs', nargs='+', default=['2'],
                   help='N for every model, or MODEL=N items '
                        '(e.g. srgnn=2 ktup=3; default 2)')
    p.add_argument('--compare', choices=['recbole'],
                   help='also run this library on the same data')
    p.add_argument('--max-train', type=int,
                   help='session data: the first N training examples')
    p.add_argument('--max-eval', type=int,
                   help='session data: the first N validation and test '
                        'examples each')
    p.add_argument('--data-root', default=osp.normpath(
        osp.join(REPO, '..', 'shared', 'data')),
        help='folder of the raw data (default: ../shared/data)')
    p.add_argument('--cache-dir', default=osp.join(HERE, '.data'),
                   help='processed datasets (default: benchmarks/.data)')
    p.add_argument('--work-dir', default=osp.join(HERE, '.work'),
                   help='exports, raw records and logs (default: '
                        'benchmarks/.work)')
    p.add_argument('--out-dir', default=osp.join(HERE, 'results'),
                   help='where the JSON, Markdown and PNG go (default: '
                        'benchmarks/results)')
    p.add_argument('--tag', help='file stem of the outputs (default: '
                   '<date>-<device>)')
    p.add_argument('--warmup', type=int, default=1,
                   help='leading epochs left out of the medians '
                        '(default: 1)')
    p.add_argument('--select', action='store_true',
                   help='both libraries test their best-validation epoch '
                        '(by the headline metric: HR@20, Recall@10), with '
                        'early stopping after --patience epochs without '
                        'improvement; without it the RecBole runner tests '
                        'its last epoch')
    p.add_argument('--patience', type=int, default=5,
                   help='with --select: epochs without improvement before '
                        'stopping (0: never; default 5)')
    p.add_argument('--seed', type=int, default=2020)
    p.add_argument('--threads', type=int,
                   help='torch threads in every run (default: torch '
                        'default)')
    p.add_argument('--timeout', type=float,
                   help='seconds after which one library run is stopped '
                        'and recorded as failed')
    p.add_argument('--recbole-venv', default=DEFAULT_VENV)
    p.add_argument('--recbole-anomaly-detection', action='store_true',
                   help='keep autograd anomaly detection on in RecBole, '
                        'as its import turns it on (stock behaviour; '
                        'about twice slower backward)')
    p.add_argument('--update-readme', action='store_true',
                   help='replace the results block of benchmarks/README.md')
    p.add_argument('--from-json', metavar='PATH', nargs='+',
                   help='run nothing: redraw the Markdown and the chart of '
                        'saved JSON reports (next to each; with '
                        '--update-readme the README gets all of them)')
    return p


# Environment ################################################################

def machine_info(device: str) -> Dict[str, Any]:
    r"""What the numbers depend on: CPUs, memory, GPU, load."""
    import torch
    info: Dict[str, Any] = {
        'platform': platform.platform(),
        'python': platform.python_version(),
        'cpu_count': os.cpu_count(),
        'cpus_usable': len(os.sched_getaffinity(0))
        if hasattr(os, 'sched_getaffinity') else os.cpu_count(),
        'torch_threads_default': torch.get_num_threads(),
        'load_average_start': list(os.getloadavg()),
    }
    info['cpu_model'] = cpu_name()
    try:
        with open('/proc/meminfo') as f:
            kib = int(f.readline().split()[1])
            info['memory_gib'] = round(kib / 2**20, 1)
    except OSError:  # pragma: no cover (not Linux)
        pass
    if device == 'cuda' and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name()
        info['cuda'] = torch.version.cuda
    return info


def git_info() -> Dict[str, Any]:
    r"""The commit of the repository and whether the tree is modified."""
    def git(*args):
        return subprocess.run(['git', '-C', REPO, *args], check=True,
                              capture_output=True, text=True).stdout.strip()
    try:
        return {'commit': git('rev-parse', 'HEAD'),
                'modified': bool(git('status', '--porcelain',
                                     '--untracked-files=no'))}
    except (OSError, subprocess.CalledProcessError):
        return {}


# Data #######################################################################

def prepare_data(name: str, args) -> Dict[str, Any]:
    r"""Readies the dataset root that pyg_recs trains on; returns the
    recipe settings that open it and a description."""
    spec = DATASETS[name]
    source = osp.join(args.data_root, spec['source'])
    if not osp.exists(source):
        raise FileNotFoundError(f"Raw data of '{name}' not found at "
                                f"'{source}' (see --data-root)")
    if spec['kind'] == 'session':
        subset = args.max_train is not None or args.max_eval is not None
        tag = name + (f'-t{args.max_train or "all"}-e'
                      f'{args.max_eval or "all"}' if subset else '')
        root, val_ratio, info = prepare_session_root(
            source, osp.join(args.cache_dir, tag), args.max_train,
            args.max_eval)
        settings = {'dataset': spec['recipe'], 'root': root,
                    'val_ratio': val_ratio}
        return {'settings': settings, 'info': info}
    root = osp.join(args.cache_dir, name)
    link_files([osp.join(source, file) for file in spec['files']],
               osp.join(root, 'raw'))
    return {'settings': {'dataset': spec['recipe'], 'root': root},
            'info': {'source': osp.abspath(source)}}


def export_data(name: str, settings: Dict[str, Any],
                out_dir: str) -> Dict[str, Any]:
    r"""Writes the splits pyg_recs uses as RecBole atomic files."""
    if DATASETS[name]['kind'] == 'session':
        return export_session(settings['root'], settings['val_ratio'],
                              out_dir, name)
    from pyg_recs.engine.recipes import kg_dataset
    ds = kg_dataset(settings['dataset'], settings['root'])
    return export_kg(ds[0], out_dir, name)


# Runs #######################################################################

def pyg_recs_settings(model: str, data_settings: Dict[str, Any]):
    r"""The recipe settings and the :func:`run` arguments of pyg_recs."""
    hp = HPARAMS[model]
    keys = {'session': ('hidden', 'num_steps', 'batch_size',
                        'eval_batch_size'),
            'kg': ('hidden', 'batch_size', 'kg_batch_size',
                   'eval_batch_size', 'rec_steps', 'kg_steps',
                   'use_st_gumbel', 'p_norm', 'margin',
                   'kg_eval_max')}[KIND[model]]
    settings = dict(data_settings, **{k: hp[k] for k in keys})
    train = dict(lr=hp['lr'], weight_decay=hp['l2'], lr_step=hp['lr_step'],
                 lr_gamma=hp['lr_gamma'])
    return settings, train


def recbole_args(model: str, epochs: int, data_dir: str, name: str,
                 out: str, args) -> List[str]:
    r"""The command line of the RecBole peer runner."""
    hp = HPARAMS[model]
    cmd = ['--model', model.upper(), '--data-dir', data_dir, '--dataset',
           name, '--epochs', str(epochs), '--device', args.device, '--out',
           out, '--batch-size', str(hp['batch_size']), '--hidden',
           str(hp['hidden']), '--lr', str(hp['lr']), '--l2', str(hp['l2']),
           '--seed', str(args.seed), '--quiet']
    if KIND[model] == 'session':
        cmd += ['--eval-batch-size', str(hp['eval_batch_size']), '--step',
                str(hp['num_steps']), '--lr-decay-step', str(hp['lr_step']),
                '--lr-decay-gamma', str(hp['lr_gamma'])]
    else:
        cmd += ['--train-rec-step', str(hp['recbole_train_rec_step']),
                '--train-kg-step', str(hp['recbole_train_kg_step'])]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    if getattr(args, 'select', False):
        cmd += ['--select', HEADLINE[model], '--patience',
                str(args.patience)]
    if args.recbole_anomaly_detection:
        cmd.append('--keep-anomaly-detection')
    return cmd


def run_process(cmd: List[str], log: str,
                timeout: Optional[float]) -> Dict[str, Any]:
    r"""Runs one library run; returns its wall time, load averages and
    an error description if it failed."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH']
                                if env.get('PYTHONPATH') else '')
    out: Dict[str, Any] = {'load_average_before': list(os.getloadavg())}
    start = time.perf_counter()
    with open(log, 'w') as f:
        try:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                                  cwd=REPO, env=env, timeout=timeout)
            if proc.returncode != 0:
                out['error'] = f'exit code {proc.returncode}'
        except subprocess.TimeoutExpired:
            out['error'] = f'stopped after the {timeout:g} s timeout'
    out['wall_seconds'] = time.perf_counter() - start
    out['load_average_after'] = list(os.getloadavg())
    if 'error' in out:
        with open(log) as f:
            out['log_tail'] = f.read()[-3000:]
    return out


def run_pyg_recs(model: str, dataset: str, data: Dict[str, Any],
                 epochs: int, work: str, args) -> Dict[str, Any]:
    settings, train = pyg_recs_settings(model, data['settings'])
    out = osp.join(work, 'pyg_recs.json')
    spec = dict(model_name=model, settings=settings, epochs=epochs,
                patience=args.patience if getattr(args, 'select', False)
                else epochs + 1, seed=args.seed, device=args.device,
                progress=False, out=out, threads=args.threads, **train)
    spec_path = osp.join(work, 'pyg_recs-spec.json')
    with open(spec_path, 'w') as f:
        json.dump(spec, f, indent=2)
    if osp.exists(out):
        os.remove(out)
    proc = run_process([sys.executable, '-c', WORKER, spec_path],
                       osp.join(work, 'pyg_recs.log'), args.timeout)
    raw = None
    if 'error' not in proc:
        with open(out) as f:
            raw = json.load(f)
    return summarize_pyg_recs(raw, model, dataset, args.device, proc,
                              args.warmup)


def run_recbole(model: str, dataset: str, export_dir: str, epochs: int,
                work: str, args) -> Dict[str, Any]:
    python = osp.join(args.recbole_venv, 'bin', 'python')
    if not osp.isfile(python):
        raise FileNotFoundError(
            f"No RecBole venv at '{args.recbole_venv}': run "
            f"'bash benchmarks/peers/setup_recbole.sh' first")
    out = osp.join(work, 'recbole.json')
    if osp.exists(out):
        os.remove(out)
    cmd = [python, RUNNER] + recbole_args(model, epochs, export_dir,
                                          dataset, out, args)
    proc = run_process(cmd, osp.join(work, 'recbole.log'), args.timeout)
    proc['command'] = cmd
    raw = None
    if 'error' not in proc:
        with open(out) as f:
            raw = json.load(f)
    return summarize_recbole(raw, model, dataset, args.device, proc,
                             args.warmup)


# Summaries ##################################################################

def median(values: Sequence[float]) -> Optional[float]:
    values = sorted(values)
    n = len(values)
    if n == 0:
        return None
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def steady(values: Sequence[float], warmup: int) -> List[float]:
    r"""The values after the :obj:`warmup` first ones (all of them if no
    value would remain)."""
    return list(values[warmup:]) if len(values) > warmup else list(values)


def _base(library, model, dataset, device, proc) -> Dict[str, Any]:
    out = {'library': library, 'model': model, 'dataset': dataset,
           'device': device}
    out.update(proc)
    return out


def _timing(out: Dict[str, Any], epoch_seconds: Sequence[float],
            batches: Sequence[int], warmup: int) -> None:
    out['epoch_seconds'] = list(epoch_seconds)
    out['batches_per_epoch'] = list(batches)
    out['warmup_epochs_excluded'] = min(warmup, max(len(epoch_seconds) - 1,
                                                    0))
    out['epoch_s'] = median(steady(epoch_seconds, warmup))
    ms = [1000 * s / max(b, 1) for s, b in zip(epoch_seconds, batches)]
    out['batch_ms'] = median(steady(ms, warmup))


def summarize_pyg_recs(raw: Optional[Dict[str, Any]], model: str,
                       dataset: str, device: str, proc: Dict[str, Any],
                       warmup: int = 1) -> Dict[str, Any]:
    r"""The common summary of one pyg_recs run record."""
    out = _base('pyg_recs', model, dataset, device, proc)
    if raw is None:
        return out
    stats, hp = raw['stats'], HPARAMS[model]
    num_batches = math.ceil(stats['num_train'] / hp['batch_size'])
    if model == 'ktup':  # JointLoader: rec batches, then kg_steps KG ones
        num_batches += math.ceil(num_batches / hp['rec_steps']) * \
            hp['kg_steps']
    _timing(out, raw['epoch_seconds'], [num_batches] * len(raw['epochs']),
            warmup)
    valid = [h['valid']['seconds'] for h in raw['epochs'] if 'valid' in h]
    split = epoch_split(raw['epochs'], warmup)
    if split:
        out['epoch_split_s'] = split
    out.update({
        'eval_s': raw['eval_seconds'],
        'valid_s': median(steady(valid, warmup)),
        'peak_rss_mb': raw['peak_memory']['rss_mb'],
        'cuda_max_memory_allocated_mb': raw['peak_memory'].get('cuda_mb'),
        'metrics': {k: v for k, v in raw['test'].items()},
        'n_items': stats['num_items'],
        'n_train': stats['num_train'],
        'n_valid': stats['num_valid'],
        'n_test': stats['num_test'],
        'torch_threads': raw.get('torch_threads'),
        'versions': raw['versions'],
        'tested_model': f"best validation {raw['hparams']['monitor']} "
                        f"(epoch {raw['best_epoch']} of "
                        f"{len(raw['epochs'])})",
        'raw': raw,
    })
    return out


#: The parts of a training epoch that the trainer times (on a CPU).
SPLIT = ('load', 'forward', 'backward', 'optimizer')


def epoch_split(epochs: Sequence[Dict[str, Any]],
                warmup: int = 1) -> Dict[str, float]:
    r"""Median seconds per epoch of data loading, forward (with the loss),
    backward and optimiser step, and the rest (loss bookkeeping, progress),
    from the trainer's epoch records; empty when they were not timed."""
    rows = [h for h in steady(list(epochs), warmup)
            if 'forward_seconds' in h]
    if not rows:
        return {}
    out = {part: median([h[f'{part}_seconds'] for h in rows])
           for part in SPLIT}
    out['other'] = median([h['seconds'] - sum(h[f'{p}_seconds']
                                              for p in SPLIT) for h in rows])
    return out


def summarize_recbole(raw: Optional[Dict[str, Any]], model: str,
                      dataset: str, device: str, proc: Dict[str, Any],
                      warmup: int = 1) -> Dict[str, Any]:
    r"""The common summary of one RecBole peer runner report."""
    out = _base('recbole', model, dataset, device, proc)
    if raw is None:
        return out
    data, bs = raw['data'], raw['hyperparameters']['batch_size']
    times = raw['epoch_times']
    phases = raw.get('epoch_phases') or ['rs'] * len(times)
    sizes = {'rs': data['n_train'], 'rskg': data['n_train'],
             'kg': data.get('n_kg_triples', 0)}
    _timing(out, times, [math.ceil(sizes[p] / bs) for p in phases], warmup)
    if model == 'ktup':
        out['epoch_phases'] = phases
        out['phase_epoch_s'] = {
            p: median([t for i, (t, q) in enumerate(zip(times, phases))
                       if q == p and (i >= warmup or len(times) <= warmup)])
            for p in sorted(set(phases))
        }
    out.update({
        'eval_s': raw['eval_seconds'],
        'valid_s': median(steady(raw.get('valid_seconds', []), warmup)),
        'peak_rss_mb': raw['peak_rss_mb'],
        'cuda_max_memory_allocated_mb': raw['cuda_max_memory_allocated_mb'],
        'metrics': raw['test_metrics'],
        'n_items': data['n_items'],
        'n_train': data['n_train'],
        'n_valid': data['n_valid'],
        'n_test': data['n_test'],
        'torch_threads': raw.get('torch_threads'),
        'versions': raw['versions'],
        'tested_model': (
            f"best validation {raw['select_metric']} (epoch "
            f"{raw['best_epoch']} of {len(times)})"
            if raw.get('selection') == 'valid'
            else f'last epoch ({len(times)})'),
        'autograd_anomaly_detection': raw['autograd_anomaly_detection'],
        'raw': raw,
    })
    return out


def mean_load(record: Dict[str, Any]) -> Optional[float]:
    r"""The mean of the 1-minute load averages before and after a run."""
    values = [record[k][0] for k in ('load_average_before',
                                     'load_average_after') if k in record]
    return sum(values) / len(values) if values else None


def ratios(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""pyg_recs vs RecBole, measured in the same run: speed-ups (RecBole
    time / pyg_recs time; above 1 means pyg_recs is faster), memory
    ratios and the headline metric of both."""
    out = []
    ok = [r for r in records if 'error' not in r and 'epoch_s' in r]
    for pyg in (r for r in ok if r['library'] == 'pyg_recs'):
        for peer in ok:
            if peer['library'] == 'pyg_recs' or any(
                    peer[k] != pyg[k] for k in ('model', 'dataset',
                                                'device')):
                continue

            def ratio(key, a=peer, b=pyg):
                if a.get(key) is None or not b.get(key):
                    return None
                return a[key] / b[key]
            metric = HEADLINE[pyg['model']]
            out.append({
                'model': pyg['model'], 'dataset': pyg['dataset'],
                'device': pyg['device'], 'versus': peer['library'],
                'speedup_epoch': ratio('epoch_s'),
                'speedup_batch': ratio('batch_ms'),
                'speedup_eval': ratio('eval_s'),
                'speedup_valid': ratio('valid_s'),
                'rss_ratio': ratio('peak_rss_mb'),
                'cuda_memory_ratio': ratio('cuda_max_memory_allocated_mb'),
                'headline_metric': metric,
                'headline_pyg_recs': pyg['metrics'].get(metric),
                'headline_peer': peer['metrics'].get(metric),
                'load_pyg_recs': mean_load(pyg),
                'load_peer': mean_load(peer),
            })
    return out


# Tables and chart ###########################################################

def _f(value: Optional[float], digits: int = 2, scale: float = 1.0) -> str:
    if value is None:
        return '-'
    return f'{value * scale:.{digits}f}'


def _x(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}x'


def results_table(report: Dict[str, Any]) -> str:
    lines = [
        '| model | dataset | library | s/epoch | ms/batch | every epoch (s) '
        '| eval s | valid s | peak RSS MB | CUDA MB | test metrics | '
        'candidates |',
        '|---|---|---|---:|---:|---|---:|---:|---:|---:|---|---:|',
    ]
    for r in report['records']:
        head = (f"| {LABEL[r['model']]} | {r['dataset']} | "
                f"{r['library']} |")
        if 'error' in r:
            lines.append(f"{head} failed: {r['error']} | | | | | | | | |")
            continue
        metrics = ', '.join(f"{k} {_f(r['metrics'].get(k), 2, 100)}"
                            for k in SHOWN[r['model']])
        every = ', '.join(f'{t:.1f}' for t in r['epoch_seconds'])
        if r.get('epoch_phases'):
            every += ' (' + ', '.join(r['epoch_phases']) + ')'
        lines.append(
            f"{head} {_f(r['epoch_s'])} | {_f(r['batch_ms'], 1)} | "
            f"{every} | {_f(r['eval_s'])} | {_f(r['valid_s'])} | "
            f"{_f(r['peak_rss_mb'], 0)} | "
            f"{_f(r['cuda_max_memory_allocated_mb'], 0)} | {metrics} | "
            f"{r['n_items']} |")
    return '\n'.join(lines)


def ratio_table(report: Dict[str, Any]) -> str:
    lines = [
        '| model | dataset | device | speed-up per epoch | per batch | '
        'per test evaluation | per validation | peak RSS (peer / ours) | '
        'headline (ours / peer) | load (ours / peer) |',
        '|---|---|---|---:|---:|---:|---:|---:|---|---|',
    ]
    for r in report['ratios']:
        lines.append(
            f"| {LABEL[r['model']]} | {r['dataset']} | {r['device']} | "
            f"{_x(r['speedup_epoch'])} | {_x(r['speedup_batch'])} | "
            f"{_x(r['speedup_eval'])} | {_x(r['speedup_valid'])} | "
            f"{_x(r['rss_ratio'])} | {r['headline_metric']} "
            f"{_f(r['headline_pyg_recs'], 2, 100)} / "
            f"{_f(r['headline_peer'], 2, 100)} | "
            f"{_f(r.get('load_pyg_recs'), 1)} / {_f(r.get('load_peer'), 1)} "
            f'|')
    return '\n'.join(lines)


def protocol(report: Dict[str, Any], dataset: str, model: str) -> str:
    data = report['data'].get(dataset, {}).get('info', {})
    epochs = report['settings']['epochs'].get(model)
    if data.get('subset'):
        text = (f"first {data['num_train']:,} train / {data['num_valid']:,} "
                f"valid / {data['num_test']:,} test examples")
    else:
        text = 'full split'
    return f'{text}, {epochs} epochs, hyper-parameters of the paper'


def published_table(report: Dict[str, Any]) -> str:
    lines = [
        '| model | dataset | metric | paper | pyg_recs | RecBole | '
        'protocol here |',
        '|---|---|---|---:|---:|---:|---|',
    ]
    for row in PUBLISHED:
        got = {r['library']: r for r in report['records']
               if r['model'] == row['model'] and r['dataset'] ==
               row['dataset'] and 'error' not in r}
        ours = [_f(got[lib]['metrics'].get(row['metric']), 2, 100)
                if lib in got else '-' for lib in LIBRARIES]
        if got:
            proto = protocol(report, row['dataset'], row['model'])
        elif row['dataset'] in DATASETS:
            proto = 'not run in this call'
        else:
            proto = 'not run (no data in ../shared/data)'
        lines.append(f"| {LABEL[row['model']]} | {row['dataset']} | "
                     f"{row['metric']} | "
                     f"{row['value']:.2f} | {ours[0]} | {ours[1]} | "
                     f'{proto} |')
    return '\n'.join(lines)


def markdown(report: Dict[str, Any]) -> str:
    m = report['machine']
    where = m.get('gpu') or f"{m.get('cpu_model', 'CPU')}, " \
        f"{m['cpus_usable']} cores"
    load = ', '.join(f'{v:.1f}' for v in m['load_average_start'])
    parts = [
        f"### Results {report['tag']} ({report['device']}: {where})",
        '',
        f"Command: `{report['command']}`  ",
        f"Load average at start: {load}. Versions: "
        + ', '.join(f'{k} {v}' for k, v in report['versions_summary'].items())
        + '.',
        '',
        'Median seconds per training epoch and milliseconds per training '
        'batch (warm-up epoch excluded), one full-ranking test evaluation, '
        'median validation, peak process RSS; test metrics in percent; '
        'candidates = items ranked.',
        '',
        results_table(report),
        '',
        'Speed-ups of pyg_recs over RecBole in the same run (RecBole time '
        '/ pyg_recs time; above 1 = pyg_recs faster; load = mean 1-minute '
        'load average around each run):',
        '',
        ratio_table(report) if report['ratios'] else '(no comparison run)',
        '',
        'Published numbers next to ours:',
        '',
        published_table(report),
        '',
        f'Paper protocol: {PAPER_PROTOCOL}.',
        '',
    ]
    remarks = notes(report)
    if remarks:
        parts += ['Notes:', ''] + [f'- {n}' for n in remarks] + ['']
    return '\n'.join(parts)


def draw_chart(report: Dict[str, Any], path: str) -> None:
    r"""Two panels: median seconds per epoch, and the headline metric, per
    (model, dataset) and library."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = [r for r in report['records'] if 'error' not in r]
    groups = []
    for r in records:
        key = (r['model'], r['dataset'])
        if key not in groups:
            groups.append(key)
    libs = [lib for lib in LIBRARIES if any(r['library'] == lib
                                            for r in records)]
    colors = {'pyg_recs': '#3b75af', 'recbole': '#ef8636'}
    width = 0.8 / max(len(libs), 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = [('epoch_s', 'seconds per training epoch (median)'),
              ('headline', 'test metric (%)')]
    for ax, (key, title) in zip(axes, panels):
        for j, lib in enumerate(libs):
            xs, ys = [], []
            for i, (model, dataset) in enumerate(groups):
                r = next((r for r in records if r['library'] == lib
                          and r['model'] == model
                          and r['dataset'] == dataset), None)
                if r is None:
                    continue
                value = r['epoch_s'] if key == 'epoch_s' else \
                    100 * r['metrics'].get(HEADLINE[model], float('nan'))
                xs.append(i + (j - (len(libs) - 1) / 2) * width)
                ys.append(value)
            bars = ax.bar(xs, ys, width, label=lib, color=colors[lib])
            ax.bar_label(bars, fmt='%.2f', fontsize=8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([
            f'{LABEL[m]}\n{d}'
            + (f'\n{HEADLINE[m]}' if key != 'epoch_s' else '')
            for m, d in groups])
        ax.set_title(title)
        ax.margins(y=0.15)
    axes[0].legend()
    fig.suptitle(f"pyg_recs vs RecBole, {report['tag']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(path: str, text: str) -> None:
    r"""Replaces the text between the results markers of the README."""
    with open(path) as f:
        content = f.read()
    start, end = content.find(README_START), content.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"'{path}' has no '{README_START}' ... "
                         f"'{README_END}' block")
    content = (content[:start + len(README_START)] + '\n\n' + text + '\n'
               + content[end:])
    with open(path, 'w') as f:
        f.write(content)


# Main #######################################################################

def versions_summary(records: Sequence[Dict[str, Any]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for r in records:
        v = r.get('versions') or {}
        if r['library'] == 'pyg_recs':
            for key in ('pyg_recs', 'torch_geometric', 'torch'):
                if key in v:
                    out.setdefault(key, v[key])
        elif 'recbole' in v:
            out.setdefault('recbole', v['recbole'])
            out.setdefault('torch (RecBole venv)', v['torch'])
    return out


def write_outputs(report: Dict[str, Any], stem: str,
                  readme: bool = False) -> str:
    r"""Writes :obj:`stem.md` and :obj:`stem.png` (and the README block);
    returns the Markdown."""
    text = markdown(report)
    with open(stem + '.md', 'w') as f:
        f.write(text)
    draw_chart(report, stem + '.png')
    if readme:
        update_readme(osp.join(HERE, 'README.md'), text)
    return text


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.from_json:
        texts = []
        for path in args.from_json:
            with open(path) as f:
                report = json.load(f)
            texts.append(write_outputs(report, osp.splitext(path)[0]))
        text = '\n'.join(texts)
        if args.update_readme:
            update_readme(osp.join(HERE, 'README.md'), text)
        print(text)
        return report
    epochs = parse_epochs(args.epochs)
    tag = args.tag or f"{time.strftime('%Y-%m-%d')}-{args.device}"
    work = osp.join(args.work_dir, tag)
    os.makedirs(work, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    command = 'python benchmarks/run.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])

    pairs = [(m, d) for d in args.datasets for m in args.models
             if KIND[m] == DATASETS[d]['kind']]
    if not pairs:
        raise SystemExit('run.py: no dataset fits the chosen --models')
    report: Dict[str, Any] = {
        'tag': tag,
        'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
        'command': command,
        'device': args.device,
        'machine': machine_info(args.device),
        'git': git_info(),
        'settings': {
            'epochs': {m: epochs.get(m, 2) for m, _ in pairs},
            'warmup_epochs': args.warmup, 'seed': args.seed,
            'threads': args.threads, 'max_train': args.max_train,
            'max_eval': args.max_eval, 'compare': args.compare,
            'hyperparameters': {m: HPARAMS[m] for m, _ in pairs},
            'recbole_autograd_anomaly_detection':
                args.recbole_anomaly_detection,
            'selection': 'valid, early stopping (patience '
                         f'{args.patience})' if args.select else
                         'pyg_recs: best valid; RecBole: last epoch',
        },
        'data': {},
        'records': [],
    }
    for model, dataset in pairs:
        n_epochs = epochs.get(model, 2)
        # One folder per model for its records and logs; the export is
        # shared by the models of a dataset.
        run_dir = osp.join(work, dataset, model)
        os.makedirs(run_dir, exist_ok=True)
        print(f'[{dataset}] preparing data', flush=True)
        data = prepare_data(dataset, args)
        report['data'][dataset] = {'settings': data['settings'],
                                   'info': data['info']}
        export_dir = None
        if args.compare:
            export_dir = osp.join(work, dataset, 'recbole-data')
            report['data'][dataset]['export'] = export_data(
                dataset, data['settings'], export_dir)
        print(f'[{dataset}] pyg_recs {model}, {n_epochs} epochs',
              flush=True)
        rec = run_pyg_recs(model, dataset, data, n_epochs, run_dir, args)
        report['records'].append(rec)
        print(f"  {rec.get('error') or _line(rec)}", flush=True)
        if args.compare == 'recbole':
            print(f'[{dataset}] recbole {model.upper()}, {n_epochs} epochs',
                  flush=True)
            rec = run_recbole(model, dataset, export_dir, n_epochs, run_dir,
                              args)
            report['records'].append(rec)
            print(f"  {rec.get('error') or _line(rec)}", flush=True)

    report['machine']['load_average_end'] = list(os.getloadavg())
    report['ratios'] = ratios(report['records'])
    report['versions_summary'] = versions_summary(report['records'])
    report['notes'] = notes(report)
    stem = osp.join(args.out_dir, tag)
    with open(stem + '.json', 'w') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    print(write_outputs(report, stem, args.update_readme))
    print(f'wrote {stem}.json, .md, .png')
    return report


def _line(r: Dict[str, Any]) -> str:
    metric = HEADLINE[r['model']]
    return (f"{_f(r['epoch_s'])} s/epoch, eval {_f(r['eval_s'])} s, "
            f"{metric} {_f(r['metrics'].get(metric), 4)}, "
            f"wall {r['wall_seconds']:.0f} s")


def notes(report: Dict[str, Any]) -> List[str]:
    r"""What the reader must know to compare the numbers."""
    out = []
    models = {r['model'] for r in report['records']}
    peer = any(r['library'] == 'recbole' for r in report['records'])
    if peer:
        selected = all(r.get('raw', {}).get('selection') == 'valid'
                       for r in report['records']
                       if r['library'] == 'recbole' and r.get('raw'))
        out.append('Both libraries test the model of their best validation '
                   'epoch, with early stopping (--select; see '
                   "'tested_model' in the JSON)." if selected else
                   'pyg_recs tests the model of its best validation epoch, '
                   'the RecBole runner the model of the last epoch (see '
                   "'tested_model' in the JSON).")
        anomaly = report['settings']['recbole_autograd_anomaly_detection']
        out.append('RecBole autograd anomaly detection (switched on by '
                   'importing RecBole 1.2.1): '
                   + ('kept on (stock behaviour).' if anomaly else
                      'switched off (--recbole-anomaly-detection keeps '
                      'it).'))
    for model, dataset in dict.fromkeys(
            (r['model'], r['dataset']) for r in report['records']):
        metric, per_lib = HEADLINE[model], []
        for r in report['records']:
            if (r['model'], r['dataset']) != (model, dataset) or \
                    'raw' not in r:
                continue
            if r['library'] == 'pyg_recs':
                valid = [h['valid'].get(metric) for h in r['raw']['epochs']
                         if 'valid' in h]
            else:
                valid = [v.get(metric) for v in r['raw']['valid_metrics']]
            per_lib.append(f"{r['library']} " + ', '.join(
                _f(v, 2, 100) for v in valid))
        if per_lib:
            out.append(f'{LABEL[model]} on {dataset}, validation {metric} '
                       f'(%) after each epoch: ' + '; '.join(per_lib) + '.')
    for r in report['records']:
        split = r.get('epoch_split_s')
        if split:
            total = sum(split.values()) or 1.0
            out.append(
                f"{LABEL[r['model']]} on {r['dataset']}, pyg_recs epoch "
                f"split (s, median): " + ', '.join(
                    f'{part} {value:.2f} ({100 * value / total:.0f}%)'
                    for part, value in split.items()) + '.')
    noisy = [f"{r['library']} {LABEL[r['model']]} "
             f"({min(r['epoch_seconds']):.1f}-{max(r['epoch_seconds']):.1f}"
             f' s)' for r in report['records']
             if len(r.get('epoch_seconds') or []) > 1
             and max(r['epoch_seconds']) > 2 * min(r['epoch_seconds'])]
    if noisy:
        out.append('Epoch times varied more than 2x within a run for '
                   + ', '.join(noisy) + ': the machine was shared (see the '
                   'load averages), so the ratios are rough; rerun with '
                   'more epochs on an idle machine for tight numbers.')
    if any(KIND[m] == 'session' for m in models):
        out.append('Session models: both libraries train on the same prefix '
                   'examples with hidden 100, batch 100, Adam lr 1e-3 '
                   'decayed x0.1 every 3 epochs, L2 1e-5, 1 GNN step, '
                   'cross-entropy over all items; evaluation batch 500 '
                   'sessions; ranking over every item of the data, no '
                   'masking.')
    if 'ktup' in models:
        hp = HPARAMS['ktup']
        out.append(
            f"KTUP: hidden {hp['hidden']}, batch {hp['batch_size']} "
            f"(rec and KG), Adam lr {hp['lr']:g}, no L2, margin "
            f"{hp['margin']:g}, straight-through Gumbel preferences, L2 "
            f"distance (RecBole squares it), trained on the KG training "
            f"triples. pyg_recs interleaves {hp['rec_steps']} rec batches "
            f"with {hp['kg_steps']} KG batches inside every epoch; RecBole "
            f"alternates whole epochs ({hp['recbole_train_rec_step']} rec "
            f"epochs, then {hp['recbole_train_kg_step']} KG epoch), about "
            f"the same 7:3 share of batches, so compare ms/batch rather "
            f"than s/epoch. Test: all items ranked per user with the "
            f"user's train and valid items masked. Evaluation batches: "
            f"{hp['eval_batch_size']} users (pyg_recs), RecBole's default "
            f"40,960 (user, item) pairs. No KG completion test (RecBole "
            f"has none; kg_eval_max=0).")
    return out


if __name__ == '__main__':
    main()
