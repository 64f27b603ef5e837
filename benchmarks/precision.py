r"""SR-GNN in fp32 and in bf16: accuracy and speed, same seed.

.. code-block:: bash

    python benchmarks/precision.py ../shared/data/srgnn-sample \
        --epochs 5 --tag 2026-12-05-cpu-sample
    python benchmarks/precision.py ../shared/data/diginetica \
        --epochs 3 --device cuda --tag 2026-12-05-cuda-diginetica

Trains SR-GNN twice through the public API (:func:`pyg_recs.engine.run`),
with :obj:`precision='fp32'` and :obj:`precision='bf16'` and the same seed,
for ``--epochs`` epochs (no early stopping), evaluating every epoch on the
validation and the test split (test metrics are reported only, never used
for selection). ``DATA`` is a folder of SR-GNN pickles (``train.txt``,
``test.txt``) or a folder holding them in ``srgnn-format/`` (as
``srgnn-sample`` does); they are linked into ``--work-dir``, where the
processed graphs are cached. Writes ``<out-dir>/<tag>-precision.json`` and
``.md``: per epoch, validation and test HR@20 and MRR@20, seconds, and the
bf16 minus fp32 differences.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, REPO)

METRICS = ('HR@20', 'MRR@20')
DEFAULT_DATA = osp.join('..', 'shared', 'data', 'srgnn-sample')


def pickle_folder(path: str) -> str:
    r"""The folder of SR-GNN pickles in :obj:`path` (itself or its
    :obj:`srgnn-format/`), with one clear error if there is none."""
    for folder in (path, osp.join(path, 'srgnn-format')):
        if all(osp.isfile(osp.join(folder, f))
               for f in ('train.txt', 'test.txt')):
            return folder
    raise FileNotFoundError(f"No SR-GNN pickles (train.txt, test.txt) in "
                            f"'{path}' or '{osp.join(path, 'srgnn-format')}'")


def prepare_root(path: str, work_dir: str) -> str:
    r"""A dataset root under :obj:`work_dir` whose :obj:`raw/` links the
    pickles of :obj:`path` (never copied); returns it."""
    from pyg_recs.cli import link_raw
    source = osp.abspath(pickle_folder(path))
    name = osp.basename(osp.normpath(osp.abspath(path)))
    root = osp.join(work_dir, name)
    raw = osp.join(root, 'raw')
    for f in ('train.txt', 'test.txt'):
        link_raw(osp.join(source, f), raw)
    return root


def cpu_name() -> str:
    r"""The CPU model (Linux), else the machine type."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    import torch
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_flags() -> List[str]:
    r"""The bf16-related instruction sets of this CPU (Linux only)."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = set(f.read().split())
    except OSError:
        return []
    return sorted(flag for flag in ('avx512_bf16', 'amx_bf16', 'avx512f')
                  if flag in flags)


def epoch_rows(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    r"""Per epoch: loss, seconds, validation and test metrics."""
    rows = []
    for h in record['epochs']:
        row = {'epoch': h['epoch'], 'loss': h['loss'],
               'seconds': h['seconds'],
               'valid_seconds': h.get('valid', {}).get('seconds')}
        for split in ('valid', 'test'):
            for key in METRICS:
                row[f'{split}_{key}'] = h.get(split, {}).get(key)
        rows.append(row)
    return rows


def median_seconds(rows: List[Dict[str, Any]]) -> float:
    r"""The median epoch time, the first epoch (warm-up) left out when
    there are more."""
    times = [r['seconds'] for r in rows]
    return statistics.median(times[1:] if len(times) > 1 else times)


def compare(runs: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    r"""bf16 minus fp32, per epoch and for the final test metrics, and the
    speed ratio (fp32 seconds over bf16 seconds: above 1, bf16 is
    faster)."""
    a, b = runs['fp32'], runs['bf16']
    per_epoch = []
    for ra, rb in zip(a['epochs'], b['epochs']):
        row = {'epoch': ra['epoch']}
        for key in ra:
            if key != 'epoch' and ra[key] is not None \
                    and rb.get(key) is not None:
                row[key] = rb[key] - ra[key]
        per_epoch.append(row)
    return {
        'per_epoch': per_epoch,
        'test': {key: b['test'][key] - a['test'][key] for key in METRICS},
        'speedup': a['median_epoch_seconds'] / b['median_epoch_seconds'],
        'eval_speedup': a['eval_seconds'] / b['eval_seconds'],
    }


def train_one(precision: str, args, root: str) -> Dict[str, Any]:
    from pyg_recs.engine import run
    settings = dict(dataset='srgnn-format', root=root, hidden=args.hidden,
                    batch_size=args.batch_size,
                    eval_batch_size=args.eval_batch_size,
                    max_train=args.max_train, max_eval=args.max_eval)
    record = run('srgnn', settings, epochs=args.epochs, lr_step=3,
                 patience=0, seed=args.seed, device=args.device,
                 progress=False, test_each_epoch=True, precision=precision)
    rows = epoch_rows(record)
    return {
        'precision': precision,
        'epochs': rows,
        'median_epoch_seconds': median_seconds(rows),
        'train_seconds': record['train_seconds'],
        'eval_seconds': record['eval_seconds'],
        'best_epoch': record['best_epoch'],
        'test': {key: record['test'][key] for key in METRICS},
        'peak_memory': record['peak_memory'],
        'hparams': record['hparams'],
        'stats': record['stats'],
    }


def to_markdown(result: Dict[str, Any]) -> str:
    def pct(v):
        return '' if v is None else f'{100 * v:.2f}'

    def diff(v):
        return '' if v is None else f'{100 * v:+.2f}'

    lines = [
        f"# SR-GNN fp32 vs bf16 ({result['tag']})", '',
        f"Data `{result['data']}` ({result['stats']['num_train']} training "
        f"examples, {result['stats']['num_items']} items), device "
        f"`{result['device']}` ({result['device_name']}), torch "
        f"{result['torch']}, {result['threads']} thread(s), seed "
        f"{result['seed']}, {result['epochs']} epochs. CPU flags: "
        f"{', '.join(result['cpu_flags']) or 'none'}.", '',
        'Metrics in %, test metrics reported only (model selection is on '
        'validation HR@20).', '',
        '| epoch | precision | loss | s/epoch | valid HR@20 | valid MRR@20 '
        '| test HR@20 | test MRR@20 |',
        '|---|---|---|---|---|---|---|---|',
    ]
    runs = result['runs']
    for i, row in enumerate(runs['fp32']['epochs']):
        for name in ('fp32', 'bf16'):
            r = runs[name]['epochs'][i]
            lines.append(
                f"| {row['epoch']} | {name} | {r['loss']:.4f} | "
                f"{r['seconds']:.2f} | {pct(r['valid_HR@20'])} | "
                f"{pct(r['valid_MRR@20'])} | {pct(r['test_HR@20'])} | "
                f"{pct(r['test_MRR@20'])} |")
        d = result['differences']['per_epoch'][i]
        lines.append(
            f"| {row['epoch']} | bf16 - fp32 | {d['loss']:+.4f} | "
            f"{d['seconds']:+.2f} | {diff(d.get('valid_HR@20'))} | "
            f"{diff(d.get('valid_MRR@20'))} | {diff(d.get('test_HR@20'))} | "
            f"{diff(d.get('test_MRR@20'))} |")
    c = result['differences']
    lines += [
        '', '| | fp32 | bf16 | bf16 - fp32 |', '|---|---|---|---|',
    ]
    for key in METRICS:
        lines.append(f"| final test {key} (best valid epoch) | "
                     f"{pct(runs['fp32']['test'][key])} | "
                     f"{pct(runs['bf16']['test'][key])} | "
                     f"{diff(c['test'][key])} |")
    lines += [
        f"| median s/epoch (first left out) | "
        f"{runs['fp32']['median_epoch_seconds']:.2f} | "
        f"{runs['bf16']['median_epoch_seconds']:.2f} | "
        f"speed-up {c['speedup']:.2f}x |",
        f"| s per test evaluation | {runs['fp32']['eval_seconds']:.2f} | "
        f"{runs['bf16']['eval_seconds']:.2f} | "
        f"speed-up {c['eval_speedup']:.2f}x |", '',
    ]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data', nargs='?', default=DEFAULT_DATA,
                        help='folder of SR-GNN pickles (default: '
                        f'{DEFAULT_DATA})')
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--hidden', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=100)
    parser.add_argument('--eval-batch-size', type=int, default=500)
    parser.add_argument('--max-train', type=int, default=None)
    parser.add_argument('--max-eval', type=int, default=None)
    parser.add_argument('--seed', type=int, default=2019)
    parser.add_argument('--threads', type=int, default=None,
                        help="torch threads (default: torch's)")
    parser.add_argument('--tag', default=time.strftime('%Y-%m-%d'))
    parser.add_argument('--out-dir', default=osp.join(HERE, 'results'))
    parser.add_argument('--work-dir', default=osp.join(HERE, '.data',
                                                       'precision'))
    args = parser.parse_args(argv)

    import torch
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    root = prepare_root(args.data, args.work_dir)
    runs = {p: train_one(p, args, root) for p in ('fp32', 'bf16')}
    device = torch.device(args.device)
    result = {
        'tag': args.tag,
        'data': osp.normpath(args.data),
        'device': str(device),
        'device_name': device_name(device),
        'cpu_flags': cpu_flags(),
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'seed': args.seed,
        'epochs': args.epochs,
        'stats': runs['fp32']['stats'],
        'runs': runs,
        'differences': compare(runs),
    }
    os.makedirs(args.out_dir, exist_ok=True)
    base = osp.join(args.out_dir, f'{args.tag}-precision')
    with open(base + '.json', 'w') as f:
        json.dump(result, f, indent=2)
    markdown = to_markdown(result)
    with open(base + '.md', 'w') as f:
        f.write(markdown)
    print(markdown)
    print(f'Wrote {base}.json and {base}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
