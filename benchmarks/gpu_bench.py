r"""The parts of ``benchmarks/gpu.sh``, one process each, and its report.

.. code-block:: bash

    python benchmarks/gpu_bench.py prepare --work DIR [--dry-run] ...
    python benchmarks/gpu_bench.py srgnn-fp32 --work DIR [--dry-run] ...
    python benchmarks/gpu_bench.py report --work DIR --tag TAG --out-dir D

Every part trains through the public API (:func:`pyg_recs.engine.run`)
and writes ``DIR/<part>.json``; :obj:`report` gathers the parts that
finished (a part that failed or ran out of time is reported with the
last lines of its log) into ``<out-dir>/<tag>-gpu.json`` and ``.md``.

Parts:

* ``prepare``: processes the datasets once (cached in ``DIR/data``), so
  that the timed parts do not pay for it;
* ``srgnn-fp32``, ``srgnn-bf16``: one epoch of SR-GNN, eager, over the
  whole training split, then one full test evaluation (no validation
  split: :obj:`val_ratio=0`);
* ``srgnn-compiled-bf16``: the same in bf16 with padded batches and
  :func:`torch.compile` with :obj:`mode='reduce-overhead'` (CUDA graphs);
  its epoch includes the compilation;
* ``tagnn``: TAGNN's reproduction, the valid phase of
  ``benchmarks/reproduce.py`` (random 10% validation split, the paper's
  settings, the epoch with the best validation HR@20 tested), up to
  ``--tagnn-epochs`` epochs, one more epoch per step: a part stopped by
  its time limit keeps the record of every epoch it finished. Off the dry
  run it also writes ``<out-dir>/<tag>-reproduce-tagnn-diginetica.*``;
* ``ktup``: KTUP on ml-100k-kg for ``--ktup-epochs`` epochs, then the
  test evaluation.

``srgnn-bf16`` (eager bf16) is not in ``gpu.sh``'s run, to leave its
time to ``tagnn``; run it alone with ``gpu_bench.py srgnn-bf16``.

With ``--dry-run`` everything runs on the CPU on tiny data
(``srgnn-sample``, a few batches; ``recbole-test-kg``), to check the
script, not to time anything.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, REPO)

SHARED = osp.join(REPO, '..', 'shared', 'data')
SRGNN_PARTS = {
    # name: (precision, pad, compile)
    'srgnn-fp32': ('fp32', False, False),
    'srgnn-bf16': ('bf16', False, False),
    'srgnn-compiled-bf16': ('bf16', True, True),
}
PARTS = ('prepare', *SRGNN_PARTS, 'tagnn', 'ktup')
#: What ``gpu.sh`` runs (the report lists the others only if they ran).
DEFAULT_PARTS = tuple(p for p in PARTS if p != 'srgnn-bf16')
KTUP_FILES = ('inter', 'kg', 'link')


def srgnn_settings(args) -> Dict[str, Any]:
    from precision import prepare_root
    root = prepare_root(args.srgnn_data, osp.join(args.work, 'data'))
    settings = dict(dataset='srgnn-format', root=root, val_ratio=0.0,
                    batch_size=100, eval_batch_size=500)
    if args.dry_run:
        settings.update(hidden=16, max_train=300, max_eval=200)
    return settings


def ktup_settings(args) -> Dict[str, Any]:
    from pyg_recs.cli import link_raw
    name = 'test' if args.dry_run else 'ml-100k'
    source = args.ktup_data
    root = osp.join(args.work, 'data', osp.basename(osp.normpath(source)))
    for ext in KTUP_FILES:
        path = osp.join(source, f'{name}.{ext}')
        if not osp.isfile(path):
            raise FileNotFoundError(f"No '{name}.{ext}' in '{source}'")
        link_raw(path, osp.join(root, 'raw'))
    if args.dry_run:
        return dict(dataset='test', root=root, strict=False, hidden=8,
                    kg_eval_max=50)
    return dict(dataset='ml-100k-kg', root=root, kg_eval_max=1000)


def device_info(device: str) -> Dict[str, Any]:
    import torch

    from precision import cpu_name
    out = {'device': device, 'torch': torch.__version__}
    if device.startswith('cuda'):
        out['device_name'] = torch.cuda.get_device_name(0)
        out['cuda'] = torch.version.cuda
    else:
        out['device_name'] = cpu_name()
        out['threads'] = torch.get_num_threads()
    return out


def prepare(args) -> Dict[str, Any]:
    r"""Processes both datasets once, into the cache of the later parts."""
    from pyg_recs.engine.recipes import kg_dataset, session_dataset
    start = time.perf_counter()
    s = srgnn_settings(args)
    sizes = {split: len(session_dataset(s['dataset'], s['root'], split,
                                        s['val_ratio']))
             for split in ('train', 'test')}
    # The splits of the tagnn part's valid phase:
    for split in ('train', 'valid'):
        session_dataset(s['dataset'], s['root'], split, 0.1, 'random')
    k = ktup_settings(args)
    kg_dataset(k['dataset'], k['root'], strict=k.get('strict', True))
    return {'seconds': time.perf_counter() - start, 'srgnn_sizes': sizes}


def train_part(model: str, settings: Dict[str, Any], args,
               **kwargs) -> Dict[str, Any]:
    from pyg_recs.engine import run
    record = run(model, settings, device=args.device, progress=False,
                 patience=0, **kwargs)
    epochs = [{
        key: h[key]
        for key in ('epoch', 'loss', 'seconds', 'load_seconds',
                    'compute_seconds') if key in h
    } for h in record['epochs']]
    metrics = {key: value for key, value in record['test'].items()
               if '@' in key or key.startswith('KG_')}
    return {
        'epochs': epochs,
        'epoch_seconds': [e['seconds'] for e in epochs],
        'eval_seconds': record['eval_seconds'],
        'train_seconds': record['train_seconds'],
        'metrics': metrics,
        'peak_memory': record['peak_memory'],
        'hparams': record['hparams'],
        'stats': record['stats'],
    }


def tagnn_part(args) -> Dict[str, Any]:
    r"""TAGNN's reproduction on the prepared Diginetica, one epoch more
    per step (the run folder resumes), rewriting ``tagnn.json`` after each
    so that a timeout loses only the epoch under way."""
    import reproduce

    from pyg_recs.io import atomic_json_dump
    settings = srgnn_settings(args)
    out = osp.join(args.work, 'tagnn')
    phase = argparse.Namespace(
        model='tagnn', dataset='diginetica', root=settings['root'],
        val_split='random', max_train=settings.get('max_train'),
        max_eval=settings.get('max_eval'), out=out, resume=True,
        seed=2019, device=args.device, no_progress=True, precision='fp32')
    command = (f"python benchmarks/gpu_bench.py tagnn --work {args.work}"
               f"{' --dry-run' if args.dry_run else ''}")
    result: Dict[str, Any] = {}
    for epochs in range(1, args.tagnn_epochs + 1):
        phase.epochs = epochs
        valid = reproduce.run_phase(phase, 'valid')
        record = reproduce.combine('tagnn', 'diginetica', {'valid': valid},
                                   [command])
        if not args.dry_run:
            reproduce.write_record(record, osp.join(
                args.out_dir, f'{args.tag}-reproduce-tagnn-diginetica'))
        result = {
            'epochs': record['epochs'],
            'epoch_seconds': record['seconds_per_epoch'],
            'eval_seconds': valid['eval_seconds'],
            'best_epoch': record['best_epoch'],
            'metrics': record['test'],
            'peak_memory': valid['peak_memory'],
            'hparams': valid['hparams'],
            'stats': valid['stats'],
            'status': 'ok',
            'device_info': device_info(args.device),
        }
        atomic_json_dump(result, osp.join(args.work, 'tagnn.json'))
    return result


def run_part(part: str, args) -> Dict[str, Any]:
    if part == 'prepare':
        return prepare(args)
    if part in SRGNN_PARTS:
        precision, pad, compile = SRGNN_PARTS[part]
        settings = srgnn_settings(args)
        settings['pad'] = pad
        return train_part('srgnn', settings, args, epochs=1,
                          precision=precision, compile=compile)
    if part == 'tagnn':
        return tagnn_part(args)
    if part == 'ktup':
        return train_part('ktup', ktup_settings(args), args,
                          epochs=args.ktup_epochs)
    raise ValueError(f"Invalid part (got '{part}'); choose from {PARTS}")


def report(args) -> Dict[str, Any]:
    parts = {}
    for part in PARTS:
        path = osp.join(args.work, f'{part}.json')
        ran = any(osp.isfile(osp.join(args.work, f'{part}.{ext}'))
                  for ext in ('json', 'rc'))
        if part not in DEFAULT_PARTS and not ran:
            continue
        if osp.isfile(path):
            with open(path) as f:
                parts[part] = json.load(f)
        else:
            log = osp.join(args.work, f'{part}.log')
            tail = []
            if osp.isfile(log):
                with open(log, errors='replace') as f:
                    tail = f.read().splitlines()[-5:]
            rc = None
            if osp.isfile(osp.join(args.work, f'{part}.rc')):
                with open(osp.join(args.work, f'{part}.rc')) as f:
                    rc = int(f.read().strip() or 1)
            status = 'timeout' if rc in (124, 137) else \
                'not run' if rc is None else 'failed'
            parts[part] = {'status': status, 'exit_code': rc,
                           'log_tail': tail}
    info = next((p['device_info'] for p in parts.values()
                 if 'device_info' in p), {})
    result = {'tag': args.tag, 'dry_run': args.dry_run,
              'srgnn_data': args.srgnn_data, 'ktup_data': args.ktup_data,
              **info, 'parts': parts}
    os.makedirs(args.out_dir, exist_ok=True)
    base = osp.join(args.out_dir, f'{args.tag}-gpu')
    with open(base + '.json', 'w') as f:
        json.dump(result, f, indent=2)
    with open(base + '.md', 'w') as f:
        f.write(to_markdown(result))
    return result


def to_markdown(result: Dict[str, Any]) -> str:
    lines = [
        f"# GPU benchmark ({result['tag']})", '',
        f"Device `{result.get('device')}` "
        f"({result.get('device_name', 'unknown')}), torch "
        f"{result.get('torch', '?')}."
        + (' **Dry run** on the CPU with tiny data: the script check, '
           'no meaningful timing.' if result['dry_run'] else ''), '',
        '| part | status | s/epoch | s/test evaluation | peak CUDA MiB | '
        'metrics |', '|---|---|---|---|---|---|',
    ]
    for name, part in result['parts'].items():
        if part.get('status') != 'ok':
            tail = ' / '.join(part.get('log_tail', []))[-200:]
            lines.append(f"| {name} | {part.get('status', '?')} | | | | "
                         f"{tail.replace('|', '/')} |")
            continue
        if name == 'prepare':
            lines.append(f"| prepare | ok ({part['seconds']:.1f} s) | | | "
                         f"| {part['srgnn_sizes']} |")
            continue
        epochs = ', '.join(f'{s:.1f}' for s in part['epoch_seconds'])
        cuda = part['peak_memory'].get('cuda_mb')
        keys = [k for k in ('HR@20', 'MRR@20', 'Recall@10', 'NDCG@10',
                            'KG_Hits@10') if k in part['metrics']]
        shown = ', '.join(f"{k} {100 * part['metrics'][k]:.2f}"
                          for k in keys)
        if 'best_epoch' in part:
            shown += (f" (epoch {part['best_epoch']} of "
                      f"{len(part['epoch_seconds'])}, best on validation)")
        lines.append(f"| {name} | ok | {epochs} | "
                     f"{part['eval_seconds']:.2f} | "
                     f"{'' if cuda is None else f'{cuda:.0f}'} | {shown} |")
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('part', choices=PARTS + ('report', ))
    parser.add_argument('--work', required=True,
                        help='folder of the part records and data cache')
    parser.add_argument('--dry-run', action='store_true')
    parser.add_argument('--srgnn-data', default=None)
    parser.add_argument('--ktup-data', default=None)
    parser.add_argument('--ktup-epochs', type=int, default=None)
    parser.add_argument('--tagnn-epochs', type=int, default=None,
                        help='at most this many (default: the protocol\'s '
                        '9; 2 in a dry run)')
    parser.add_argument('--device', default=None)
    parser.add_argument('--tag', default=time.strftime('%Y-%m-%d'))
    parser.add_argument('--out-dir', default=osp.join(HERE, 'results'))
    args = parser.parse_args(argv)
    if args.srgnn_data is None:
        args.srgnn_data = osp.join(
            SHARED, 'srgnn-sample' if args.dry_run else 'diginetica')
    if args.ktup_data is None:
        args.ktup_data = osp.join(
            SHARED, 'recbole-test-kg' if args.dry_run else 'ml-100k-kg')
    if args.ktup_epochs is None:
        args.ktup_epochs = 1 if args.dry_run else 5
    if args.tagnn_epochs is None:
        args.tagnn_epochs = 2 if args.dry_run else 9
    if args.device is None:
        args.device = 'cpu' if args.dry_run else 'cuda'
    os.makedirs(args.work, exist_ok=True)
    if args.part == 'report':
        result = report(args)
        print(to_markdown(result))
        failed = [k for k, v in result['parts'].items()
                  if v.get('status') != 'ok']
        return 1 if failed else 0
    try:
        out = run_part(args.part, args)
    except Exception:
        traceback.print_exc()
        return 1
    out.update(status='ok', device_info=device_info(args.device))
    with open(osp.join(args.work, f'{args.part}.json'), 'w') as f:
        json.dump(out, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
