r"""Reproduces a paper's result with the paper's protocol, and records how
the tested model was chosen.

.. code-block:: bash

    # SR-GNN on the full SR-GNN split of Diginetica (both phases at once)
    python benchmarks/reproduce.py srgnn --dataset diginetica \
        --raw-from ../shared/data/diginetica --out runs/reproduce

Two phases train with the protocol of :data:`PROTOCOLS` (the paper's
settings), each in its own resumable run folder under ``--out``:

- ``valid``: the last ``val_ratio`` of the training data is held out
  (``--val-split random``: a random share, as the SR-GNN reference code's
  ``split_validation``); the epoch with the best validation ``monitor`` is
  selected and the test split is evaluated for that model. This is the
  headline number (``"selection": "valid"``).
- ``refit``: trains on train + validation for the same number of epochs
  and reports the test metrics of the epoch the ``valid`` phase selected
  (what most papers do; the schedule depends on the epoch only, so epoch
  ``k`` of this run *is* a refit for ``k`` epochs).

Both phases also record every epoch's test metrics, labelled as reported
only: they are never used for selection, and show what the reference
code's habit (the best test epoch of every metric, chosen separately)
would report. ``--phase valid`` / ``--phase refit`` run one phase (e.g.
in two processes at once); each phase writes ``<out>/<phase>.json`` and
every call (re)assembles the combined record from what is there,
``<results>/<tag>-reproduce-<model>-<dataset>.json`` and ``.md``.
``--resume`` continues the phases' runs from their last complete epoch.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path.insert(0, REPO)

PHASES = ('valid', 'refit')

#: The published protocols: recipe settings, training hyper-parameters,
#: the paper's numbers (percent) and other reported numbers to compare.
PROTOCOLS: Dict[str, Dict[str, Any]] = {
    'srgnn-diginetica': dict(
        settings=dict(hidden=100, num_steps=1, batch_size=100,
                      eval_batch_size=500, val_ratio=0.1, val_split='last'),
        # lr 1e-3, x0.1 every 3 epochs (1e-6 from epoch 10 on: more epochs
        # change nothing), L2 1e-5 (Wu et al., 2019, Sec. 4.1).
        hparams=dict(epochs=9, lr=1e-3, weight_decay=1e-5, lr_step=3,
                     lr_gamma=0.1, patience=0),
        monitor='HR@20',
        metrics=('HR@20', 'MRR@20'),
        reported={
            'paper (Wu et al., AAAI 2019)': {'HR@20': 50.73, 'MRR@20': 17.59},
            'RecBole (reported, selected on test)': {
                'HR@20': 51.02, 'MRR@20': 17.64},
        },
        reported_source=(
            'SR-GNN paper, Table 2 (P@20 = HR@20 with one target per '
            'session); RecBole: RUCAIBox/RecBole pull request #888'),
    ),
    # SR-GNN's successors train with SR-GNN's settings (their code is built
    # on the SR-GNN reference code); the scheduler, L2 and batch size are
    # SR-GNN's.
    'niser-diginetica': dict(
        settings=dict(hidden=100, num_steps=1, batch_size=100,
                      eval_batch_size=500, val_ratio=0.1, val_split='last'),
        hparams=dict(epochs=9, lr=1e-3, weight_decay=1e-5, lr_step=3,
                     lr_gamma=0.1, patience=0),
        monitor='HR@20',
        metrics=('HR@20', 'MRR@20'),
        reported={
            'paper, NISER+ (Gupta et al., 2019)': {
                'HR@20': 53.39, 'MRR@20': 18.72},
        },
        reported_source='NISER paper (arXiv 1909.04276), Table 2: '
        'Recall@20 and MRR@20 of NISER+ on Diginetica',
    ),
    'gcsan-diginetica': dict(
        settings=dict(hidden=100, num_steps=1, batch_size=100,
                      eval_batch_size=500, val_ratio=0.1, val_split='last'),
        hparams=dict(epochs=9, lr=1e-3, weight_decay=1e-5, lr_step=3,
                     lr_gamma=0.1, patience=0),
        monitor='HR@20',
        metrics=('HR@20', 'MRR@20'),
        reported={},
        reported_source='',
    ),
    'tagnn-diginetica': dict(
        settings=dict(hidden=100, num_steps=1, batch_size=100,
                      eval_batch_size=500, val_ratio=0.1, val_split='last'),
        hparams=dict(epochs=9, lr=1e-3, weight_decay=1e-5, lr_step=3,
                     lr_gamma=0.1, patience=0),
        monitor='HR@20',
        metrics=('HR@20', 'MRR@20'),
        reported={
            'paper (Yu et al., SIGIR 2020)': {'HR@20': 51.31, 'MRR@20': 18.03},
        },
        reported_source='TAGNN paper (arXiv 2005.02844), Table 3: P@20 '
        '(= HR@20) and MRR@20 on Diginetica',
    ),
    'ktup-ml-100k-kg': dict(
        settings=dict(val_ratio=0.1),
        hparams=dict(epochs=30, lr=1e-3, weight_decay=0.0, lr_step=0,
                     lr_gamma=1.0, patience=5),
        monitor='Recall@10',
        metrics=('Precision@10', 'Recall@10', 'NDCG@10', 'Hit@10'),
        reported={},
        reported_source='',
    ),
}


def protocol(model: str, dataset: str) -> Dict[str, Any]:
    key = f'{model}-{dataset}'
    if key not in PROTOCOLS:
        raise SystemExit(f"error: no protocol for {model} on {dataset}; "
                         f"choose from {sorted(PROTOCOLS)}")
    return PROTOCOLS[key]


# Selection ###################################################################

def select_epoch(epochs: List[Dict[str, Any]], monitor: str) -> int:
    r"""The epoch (1-based) with the best validation :obj:`monitor`, the
    earliest on ties, as the trainer selects it."""
    best, best_epoch = None, 0
    for record in epochs:
        value = (record.get('valid') or {}).get(monitor)
        if value is None:
            raise ValueError(f"Epoch {record.get('epoch')} has no "
                             f"validation '{monitor}'")
        if best is None or value > best:
            best, best_epoch = value, record['epoch']
    if best_epoch == 0:
        raise ValueError('No epoch to select from')
    return best_epoch


def best_test_epochs(epochs: List[Dict[str, Any]],
                     metrics) -> Dict[str, Dict[str, Any]]:
    r"""For every metric, the epoch with its best *test* value, chosen
    separately per metric as the SR-GNN reference code reports it. This
    selects on the test split: it is reported for comparison only."""
    out = {}
    for metric in metrics:
        scored = [(r['test'][metric], r['epoch']) for r in epochs
                  if metric in (r.get('test') or {})]
        if scored:
            value, epoch = max(scored, key=lambda t: (t[0], -t[1]))
            out[metric] = {'epoch': epoch, 'value': value}
    return out


def _epoch_rows(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for r in record.get('epochs', []):
        rows.append({
            'epoch': r['epoch'],
            'lr': r.get('lr'),
            'loss': r.get('loss'),
            'seconds': r.get('seconds'),
            'valid': {k: v for k, v in (r.get('valid') or {}).items()
                      if k != 'seconds'},
            'test_reported_only': {k: v for k, v in
                                   (r.get('test') or {}).items()
                                   if k != 'seconds'},
        })
    return rows


def combine(model: str, dataset: str, phases: Dict[str, Dict[str, Any]],
            commands: List[str]) -> Dict[str, Any]:
    r"""The reproduction record from the phase records present
    (:obj:`phases['valid']`, optionally :obj:`phases['refit']`)."""
    proto = protocol(model, dataset)
    if 'valid' not in phases:
        raise ValueError("The 'valid' phase has not finished: no selected "
                         "model to report")
    valid = phases['valid']
    selected = select_epoch(valid['epochs'], proto['monitor'])
    if selected != valid['best_epoch']:
        raise ValueError(f"The run selected epoch {valid['best_epoch']} "
                         f"but its validation history selects {selected}")
    record: Dict[str, Any] = {
        'model': model,
        'dataset': dataset,
        'protocol': 'paper',
        'selection': 'valid',
        'monitor': proto['monitor'],
        'best_epoch': selected,
        'settings': valid['settings'],
        'hparams': valid['hparams'],
        'stats': valid['stats'],
        'test': valid['test'],
        'epochs': _epoch_rows(valid),
        'best_test_epoch_reported_only': best_test_epochs(
            valid['epochs'], proto['metrics']),
        'seconds_per_epoch': [r['seconds'] for r in valid['epochs']],
        'peak_memory': valid.get('peak_memory'),
        'versions': valid.get('versions'),
        'reported': proto['reported'],
        'reported_source': proto['reported_source'],
        'commands': commands,
    }
    refit = phases.get('refit')
    if refit is not None:
        by_epoch = {r['epoch']: r for r in refit['epochs']}
        entry: Dict[str, Any] = {
            'selection': f'train + valid, {selected} epochs (the epoch '
                         f'count the valid phase selected)',
            'epochs_trained': len(refit['epochs']),
            'stats': refit['stats'],
            'epochs': _epoch_rows(refit),
            'best_test_epoch_reported_only': best_test_epochs(
                refit['epochs'], proto['metrics']),
        }
        if selected in by_epoch and 'test' in by_epoch[selected]:
            entry['test'] = {k: v for k, v in
                             by_epoch[selected]['test'].items()
                             if k != 'seconds'}
        else:
            entry['test'] = None
            entry['note'] = (f'the refit run has not reached epoch '
                             f'{selected} yet')
        record['refit'] = entry
    return record


def to_markdown(record: Dict[str, Any]) -> str:
    metrics = list(PROTOCOLS[f"{record['model']}-{record['dataset']}"]
                   ['metrics'])

    def pct(v):
        return '' if v is None else f'{100 * v:.2f}'

    head = '| | ' + ' | '.join(metrics) + ' | epoch |'
    lines = [f"# {record['model']} on {record['dataset']}: reproduction",
             '', head, '|---' * (len(metrics) + 2) + '|']
    for name, values in record['reported'].items():
        lines.append(f'| {name} | ' + ' | '.join(
            f'{values.get(m, float("nan")):.2f}' for m in metrics) + ' | |')
    lines.append("| ours, selected on valid | " + ' | '.join(
        pct(record['test'].get(m)) for m in metrics) +
        f" | {record['best_epoch']} |")
    refit = record.get('refit')
    if refit and refit.get('test'):
        lines.append('| ours, refit on train + valid | ' + ' | '.join(
            pct(refit['test'].get(m)) for m in metrics) +
            f" | {record['best_epoch']} |")
    best = record['best_test_epoch_reported_only']
    lines.append('| ours, best test epoch per metric (reference habit) | ' +
                 ' | '.join(pct(best.get(m, {}).get('value'))
                            for m in metrics) + ' | ' +
                 '/'.join(str(best.get(m, {}).get('epoch', ''))
                          for m in metrics) + ' |')
    lines += ['', '## Every epoch (valid phase)', '',
              '| epoch | lr | loss | s | ' +
              ' | '.join(f'valid {m}' for m in metrics) + ' | ' +
              ' | '.join(f'test {m} (reported only)' for m in metrics) +
              ' |', '|---' * (4 + 2 * len(metrics)) + '|']
    for r in record['epochs']:
        lines.append(
            f"| {r['epoch']} | {r['lr']:g} | {r['loss']:.4f} | "
            f"{r['seconds']:.0f} | " +
            ' | '.join(pct(r['valid'].get(m)) for m in metrics) + ' | ' +
            ' | '.join(pct(r['test_reported_only'].get(m))
                       for m in metrics) + ' |')
    if refit:
        lines += ['', '## Every epoch (refit phase, train + valid)', '',
                  '| epoch | lr | loss | s | ' +
                  ' | '.join(f'test {m}' for m in metrics) + ' |',
                  '|---' * (4 + len(metrics)) + '|']
        for r in refit['epochs']:
            lines.append(
                f"| {r['epoch']} | {r['lr']:g} | {r['loss']:.4f} | "
                f"{r['seconds']:.0f} | " +
                ' | '.join(pct(r['test_reported_only'].get(m))
                           for m in metrics) + ' |')
    stats = record['stats']
    lines += ['', f"Training examples: {stats.get('num_train')} (valid "
              f"phase; {stats.get('num_valid')} held out for validation)"
              + (f", {refit['stats'].get('num_train')} (refit)"
                 if refit else '') + '.', '',
              'Commands:', '', '```bash'] + record['commands'] + ['```', '']
    return '\n'.join(lines)


def write_record(record: Dict[str, Any], base: str) -> str:
    r"""Writes :obj:`record` to :obj:`base`.json and .md (atomically);
    returns the Markdown."""
    from pyg_recs.io import atomic_json_dump, atomic_write
    os.makedirs(osp.dirname(osp.abspath(base)), exist_ok=True)
    atomic_json_dump(record, base + '.json')
    text = to_markdown(record)
    atomic_write(base + '.md', lambda f: f.write(text), mode='w')
    return text


# Running #####################################################################

def run_phase(args, phase: str) -> Dict[str, Any]:
    from pyg_recs.engine import run
    proto = protocol(args.model, args.dataset)
    settings = dict(proto['settings'], dataset=args.dataset,
                    root=args.root or osp.join('datasets', args.dataset))
    if phase == 'refit':
        settings['val_ratio'] = 0.0
    elif args.val_split != 'last':
        settings['val_split'] = args.val_split
    for key in ('max_train', 'max_eval'):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    hparams = dict(proto['hparams'])
    if args.epochs is not None:
        hparams['epochs'] = args.epochs
    out_dir = osp.join(args.out, phase)
    resume = args.resume and osp.isdir(out_dir)
    return run(args.model, settings, seed=args.seed, device=args.device,
               out_dir=out_dir, resume=resume,
               json_path=osp.join(args.out, f'{phase}.json'),
               progress=not args.no_progress, test_each_epoch=True,
               precision=args.precision, **hparams)


def _read_phases(out: str) -> Dict[str, Dict[str, Any]]:
    phases = {}
    for phase in PHASES:
        path = osp.join(out, f'{phase}.json')
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                phases[phase] = json.load(f)
    return phases


def main(argv: Optional[List[str]] = None) -> int:
    from pyg_recs.cli import link_raw, positive_int, resolve_device

    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', choices=sorted(
        {k.split('-')[0] for k in PROTOCOLS}))
    parser.add_argument('--dataset', required=True)
    parser.add_argument('--root', help='dataset folder (default: '
                        'datasets/<dataset>)')
    parser.add_argument('--raw-from', help='link these raw files into '
                        'ROOT/raw first')
    parser.add_argument('--out', default='runs/reproduce',
                        help='folder of the phases\' run folders and '
                        'records')
    parser.add_argument('--val-split', choices=('last', 'random'),
                        default='last', help="valid phase: hold out the "
                        "most recent training examples (default) or a "
                        "random share, as the SR-GNN reference code does "
                        "(session models only)")
    parser.add_argument('--phase', choices=PHASES + ('both', 'report'),
                        default='both', help="'report' only assembles the "
                        "record from finished phases")
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--epochs', type=positive_int,
                        help='override the protocol (tests)')
    parser.add_argument('--max-train', type=positive_int,
                        help='first N training examples (tests)')
    parser.add_argument('--max-eval', type=positive_int,
                        help='first N validation and test examples (tests)')
    parser.add_argument('--seed', type=int, default=2019)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--results', default=osp.join(HERE, 'results'))
    parser.add_argument('--tag', default=datetime.date.today().isoformat())
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--precision', choices=('fp32', 'bf16'),
                        default='fp32', help="the trainer's precision "
                        "(bf16: autocast, see benchmarks/precision.py)")
    args = parser.parse_args(argv)
    proto = protocol(args.model, args.dataset)
    if args.val_split != 'last' and 'val_split' not in proto['settings']:
        parser.error(f"--val-split {args.val_split}: the {args.model} "
                     f"protocol has no choice of validation split")
    args.device = resolve_device(args.device)
    args.out = osp.abspath(args.out)
    if args.raw_from:
        link_raw(args.raw_from, osp.join(
            args.root or osp.join('datasets', args.dataset), 'raw'))

    phases = PHASES if args.phase == 'both' else \
        (() if args.phase == 'report' else (args.phase,))
    for phase in phases:
        run_phase(args, phase)

    found = _read_phases(args.out)
    if 'valid' not in found:
        print(f"The 'valid' phase has no record in {args.out} yet: "
              f"nothing to report")
        return 0 if phases else 1
    command = ' '.join(['python', 'benchmarks/reproduce.py', args.model,
                        '--dataset', args.dataset] +
                       (['--raw-from', args.raw_from] if args.raw_from
                        else []) +
                       (['--val-split', args.val_split]
                        if args.val_split != 'last' else []) +
                       (['--precision', args.precision]
                        if args.precision != 'fp32' else []) +
                       (['--epochs', str(args.epochs)]
                        if args.epochs is not None else []) +
                       ['--out', osp.relpath(args.out)])
    record = combine(args.model, args.dataset, found, [command])
    base = osp.join(args.results,
                    f'{args.tag}-reproduce-{args.model}-{args.dataset}')
    print(write_record(record, base))
    print(f'Wrote {base}.json and {base}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
