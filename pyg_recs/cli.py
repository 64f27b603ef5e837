r"""The :obj:`pyg-recs` command line: it parses arguments and calls the
engine, nothing else.

.. code-block:: bash

    pyg-recs train srgnn --dataset diginetica --root datasets/diginetica \
        --epochs 30 --json runs/srgnn.json
    pyg-recs evaluate --run runs/srgnn-diginetica
    pyg-recs recommend --run runs/srgnn-diginetica --query "12 7 31" -k 10
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional

#: Settings passed to each model's recipe (the rest go to the trainer).
KG_SETTINGS = ['dataset', 'root', 'hidden', 'batch_size', 'kg_batch_size',
               'eval_batch_size', 'rec_steps', 'kg_steps', 'use_st_gumbel',
               'margin', 'p_norm', 'kg_eval_max', 'strict']
PRECISIONS = ('fp32', 'bf16')
MODEL_SETTINGS = {
    'srgnn': ['dataset', 'root', 'hidden', 'num_steps', 'batch_size',
              'eval_batch_size', 'val_ratio', 'val_split', 'max_train',
              'max_eval', 'pad'],
    'ktup': KG_SETTINGS,
    'tup': KG_SETTINGS,
    'transh': KG_SETTINGS,
}

#: Defaults per model where they differ from the argparse defaults.
MODEL_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'srgnn': dict(dataset='diginetica', hidden=100, batch_size=100, lr=1e-3,
                  l2=1e-5, lr_step=3, lr_gamma=0.1, epochs=30, patience=10),
}
for _name in ('ktup', 'tup', 'transh'):
    MODEL_DEFAULTS[_name] = dict(dataset='ml-100k-kg', hidden=100,
                                 batch_size=256, lr=5e-3, l2=0.0, lr_step=0,
                                 lr_gamma=0.1, epochs=50, patience=10)


def positive_int(text: str) -> int:
    r"""An argparse type: an integer of at least 1 (a count of epochs,
    examples, channels, ...), so that 0 or -1000 is refused up front
    instead of giving an untrained model or a silently trimmed split."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (got '{text}')") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (got {value})")
    return value


def non_negative_int(text: str) -> int:
    r"""An argparse type: an integer of at least 0 (0 often means never)."""
    value = positive_int(text) if text.strip() not in ('0', '+0', '-0') \
        else 0
    return value


def positive_float(text: str) -> float:
    r"""An argparse type: a finite number above 0 (a learning rate or a
    decay factor)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number (got '{text}')") from None
    if not 0.0 < value < float('inf'):
        raise argparse.ArgumentTypeError(
            f"expected a positive number (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pyg-recs',
        description='Graph learning for recommendation on PyTorch '
        'Geometric: train, evaluate and query SR-GNN and KTUP.')
    sub = parser.add_subparsers(dest='command', required=True)

    train = sub.add_parser('train', help='train a model and report test '
                           'metrics of the model selected on validation')
    train.add_argument('model', choices=sorted(MODEL_SETTINGS))
    train.add_argument('--dataset', help='dataset name (srgnn: diginetica, '
                       'yoochoose1_64, yoochoose1_4, srgnn-format; ktup, '
                       'tup, transh: ml-100k-kg, ktup-format, or NAME for '
                       'atomic files ROOT/raw/NAME.inter, .kg, .link)')
    train.add_argument('--root', help='dataset folder (raw files in '
                       'ROOT/raw); default: datasets/<dataset>')
    train.add_argument('--raw-from', help='link these raw files (a file or '
                       'the files of a folder) into ROOT/raw first')
    train.add_argument('--epochs', type=positive_int)
    train.add_argument('--batch-size', type=positive_int)
    train.add_argument('--eval-batch-size', type=positive_int)
    train.add_argument('--hidden', type=positive_int, help='embedding size')
    train.add_argument('--num-steps', type=positive_int,
                       help='GNN steps (srgnn)')
    train.add_argument('--lr', type=positive_float, help='learning rate')
    train.add_argument('--l2', type=float, help='L2 penalty (weight decay)')
    train.add_argument('--lr-step', type=non_negative_int,
                       help='decay the learning '
                       'rate every N epochs (0: never)')
    train.add_argument('--lr-gamma', type=positive_float, help='decay factor')
    train.add_argument('--patience', type=int, help='early stopping '
                       'patience in epochs')
    train.add_argument('--kg-batch-size', type=positive_int,
                       help='KG triples per '
                       'batch (ktup, transh)')
    train.add_argument('--rec-steps', type=int, help='recommendation '
                       'batches per round (ktup; default 7)')
    train.add_argument('--kg-steps', type=int, help='KG batches per round '
                       '(ktup; default 3)')
    train.add_argument('--use-st-gumbel', action='store_true', default=None,
                       help='hard preference attention (straight-through '
                       'Gumbel-softmax; ktup, tup)')
    train.add_argument('--margin', type=float, help='KG margin (ktup, '
                       'transh)')
    train.add_argument('--p-norm', type=float, help='norm of the '
                       'translation distance (ktup, tup, transh)')
    train.add_argument('--kg-eval-max', type=int, help='KG completion: '
                       'evaluate at most N triples (default 1000)')
    train.add_argument('--lenient', dest='strict', action='store_false',
                       default=None, help='atomic files: drop surplus '
                       'trailing fields with a warning instead of failing')
    train.add_argument('--val-ratio', type=float, default=0.1,
                       help='share of training data held out for '
                       'validation (default: 0.1)')
    train.add_argument('--val-split', choices=['last', 'random'],
                       default='last', help="session datasets: hold out "
                       "the most recent training examples ('last', default) "
                       "or a random share ('random', as the SR-GNN "
                       "reference code)")
    train.add_argument('--max-train', type=positive_int,
                       help='use only the first N '
                       'training examples')
    train.add_argument('--max-eval', type=positive_int,
                       help='use only the first N '
                       'validation and test examples')
    train.add_argument('--device', default='auto',
                       help="auto (CUDA when available), cpu, cuda, cuda:1")
    train.add_argument('--seed', type=int, default=2019)
    train.add_argument('--out', help='run folder for checkpoints '
                       '(default: runs/<model>-<dataset>-<time>)')
    train.add_argument('--resume', action='store_true', help='continue the '
                       'run in --out from its last complete epoch')
    train.add_argument('--json', help='write the run record to this file')
    train.add_argument('--no-progress', action='store_true')
    train.add_argument('--compile', action='store_true', help='compile the '
                       'training step with torch.compile')
    train.add_argument('--precision', choices=PRECISIONS, default='fp32',
                       help="'bf16': autocast the forwards to bfloat16 "
                       "(parameters, gradients, optimiser state and loss "
                       "stay fp32; default: fp32)")
    train.add_argument('--pad', action='store_true', default=None,
                       help='srgnn: pad every batch to one of a few static '
                       'shapes (for CUDA graphs; with --compile on CUDA it '
                       "uses mode='reduce-overhead')")

    evaluate = sub.add_parser('evaluate', help='evaluate the selected model '
                              'of a run on its test split')
    evaluate.add_argument('--run', required=True, help='run folder')
    evaluate.add_argument('--checkpoint', default='best.pt')
    evaluate.add_argument('--device', default='auto')
    evaluate.add_argument('--json', help='write the metrics to this file')
    evaluate.add_argument('--precision', choices=PRECISIONS,
                          default='fp32', help='evaluate in fp32 or under '
                          'bf16 autocast')

    recommend = sub.add_parser('recommend', help='top-k recommendations '
                               'from a trained run')
    recommend.add_argument('--run', required=True, help='run folder')
    recommend.add_argument('--query', required=True, help='srgnn: a '
                           'session as item ids ("12 7 31"); ktup: a user '
                           'id')
    recommend.add_argument('-k', type=positive_int, default=20)
    recommend.add_argument('--checkpoint', default='best.pt')
    recommend.add_argument('--device', default='auto')
    return parser


def link_raw(source: str, raw_dir: str) -> None:
    r"""Symbolically links :obj:`source` (a file, or every file of a folder)
    into :obj:`raw_dir`, leaving files already there untouched."""
    if not osp.exists(source):
        raise FileNotFoundError(f"--raw-from: no such file or folder "
                                f"'{source}'")
    os.makedirs(raw_dir, exist_ok=True)
    if osp.isdir(source):
        files = [osp.join(source, f) for f in sorted(os.listdir(source))]
    else:
        files = [source]
    for path in files:
        if not osp.isfile(path):
            continue
        target = osp.join(raw_dir, osp.basename(path))
        try:
            os.symlink(osp.abspath(path), target)
        except FileExistsError:  # Already there (or linked by another rank).
            if osp.realpath(target) != osp.realpath(path):
                raise ValueError(
                    f"--raw-from: '{target}' is already there and is not "
                    f"'{path}' (it is '{osp.realpath(target)}'); its "
                    f"processed data would be reused. Use another --root "
                    f"for this dataset, or remove '{raw_dir}'") from None


def train(args: argparse.Namespace) -> Dict[str, Any]:
    from pyg_recs.engine import run

    defaults = MODEL_DEFAULTS.get(args.model, {})
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.pad and 'pad' not in MODEL_SETTINGS[args.model]:
        raise ValueError(f"--pad: {args.model} has no padded batches (only "
                         f"the session models have)")
    if args.root is None:
        args.root = osp.join('datasets', args.dataset)
    if args.raw_from is not None:
        link_raw(args.raw_from, osp.join(args.root, 'raw'))
    settings = {
        key: getattr(args, key)
        for key in MODEL_SETTINGS[args.model]
        if getattr(args, key, None) is not None
    }
    out = args.out or osp.join(
        'runs', f'{args.model}-{args.dataset}-{time.strftime("%Y%m%d-%H%M%S")}')
    record = run(
        args.model, settings, epochs=args.epochs, lr=args.lr,
        weight_decay=args.l2, lr_step=args.lr_step, lr_gamma=args.lr_gamma,
        patience=args.patience, seed=args.seed, device=args.device,
        out_dir=out, resume=args.resume, json_path=args.json,
        progress=not args.no_progress, compile=args.compile,
        precision=args.precision)
    record['run'] = out
    if int(os.environ.get('RANK', '0')) == 0:
        print(summary(record))
    return record


def evaluate(args: argparse.Namespace) -> Dict[str, float]:
    from pyg_recs.engine import Trainer, load_run
    from pyg_recs.io import atomic_json_dump

    exp = load_run(args.run, args.device, args.checkpoint)
    trainer = Trainer(exp.model, metrics=exp.metrics, ks=exp.ks,
                      device=args.device, progress=False,
                      precision=args.precision)
    metrics = trainer.evaluate(exp.test_loader)
    if exp.test_fn is not None:
        metrics.update(exp.test_fn(exp.model))
    print(json.dumps(metrics, indent=2))
    if args.json:
        atomic_json_dump(metrics, args.json)
    return metrics


def recommend(args: argparse.Namespace) -> List[Any]:
    from pyg_recs.engine import load_run

    exp = load_run(args.run, args.device, args.checkpoint)
    if exp.recommend_fn is None:
        raise SystemExit('pyg-recs: this model gives no recommendations')
    items = exp.recommend_fn(exp.model, args.query, args.k)
    print(json.dumps(items))
    return items


def summary(record: Dict[str, Any]) -> str:
    test = record['test']
    lines = [f"{record['model']} on {record['dataset']}: best epoch "
             f"{record['best_epoch']} of {len(record['epochs'])}, "
             f"{_median(record['epoch_seconds']):.1f} s per epoch, "
             f"test evaluation {record['eval_seconds']:.2f} s"]
    lines += [f'  {key:>14s}  {value:.4f}' for key, value in test.items()]
    if record.get('run'):
        lines.append(f"run folder: {osp.abspath(record['run'])} (pyg-recs "
                     f"evaluate --run ...)")
    return '\n'.join(lines)


def _median(values: List[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else float('nan')


def resolve_device(device: str) -> str:
    r""":obj:`'auto'` is CUDA when a GPU is visible, else the CPU; a CUDA
    device without a GPU is a clear error instead of an assertion."""
    import torch
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is available on "
                         f"this machine; use --device cpu (or auto)")
    return device


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.device = resolve_device(args.device)
        if args.command == 'train':
            train(args)
        elif args.command == 'evaluate':
            evaluate(args)
        else:
            recommend(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f'pyg-recs: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
