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

from pyg_recs.engine.recipes import RECIPES

from pyg_recs.engine.settings import (  # noqa: F401 (re-exported)
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    unit_float,
)
from pyg_recs.io import link_files

PRECISIONS = ('fp32', 'bf16')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pyg-recs',
        description='Graph learning for recommendation on PyTorch '
        'Geometric: train, evaluate and query SR-GNN and its successors '
        '(NISER+, GC-SAN, TAGNN) and KTUP.')
    sub = parser.add_subparsers(dest='command', required=True)

    train = sub.add_parser('train', help='train a model and report test '
                           'metrics of the model selected on validation')
    models = train.add_subparsers(dest='model', required=True,
                                  metavar='MODEL')
    for name, recipe in RECIPES.items():
        add_recipe_parser(models, name, recipe)

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
    recommend.add_argument('--query', required=True, help='session models: '
                           'a session as item ids ("12 7 31"); ktup: a user '
                           'id')
    recommend.add_argument('-k', type=positive_int, default=20)
    recommend.add_argument('--checkpoint', default='best.pt')
    recommend.add_argument('--device', default='auto')
    return parser


def add_recipe_parser(models, name: str, recipe) -> argparse.ArgumentParser:
    r"""The :obj:`train MODEL` parser: the recipe's settings as flags, then
    the trainer's and the run's."""
    trainer = recipe.trainer_defaults()
    parser = models.add_parser(name, help=recipe.description,
                               description=recipe.description)
    group = parser.add_argument_group(f'{name} settings')
    for key, setting in recipe.settings.items():
        setting.add_to(group, key)
    group = parser.add_argument_group('training')
    group.add_argument('--raw-from', help='link these raw files (a file or '
                       'the files of a folder) into ROOT/raw first')
    group.add_argument('--epochs', type=positive_int,
                       default=trainer['epochs'],
                       help=f"at most N epochs (default: {trainer['epochs']})")
    group.add_argument('--lr', type=positive_float, default=trainer['lr'],
                       help=f"learning rate (default: {trainer['lr']})")
    group.add_argument('--l2', type=non_negative_float, dest='weight_decay',
                       default=trainer['weight_decay'], help='L2 penalty '
                       f"(weight decay; default: {trainer['weight_decay']})")
    group.add_argument('--lr-step', type=non_negative_int,
                       default=trainer['lr_step'], help='decay the learning '
                       'rate every N epochs (0: never; default: '
                       f"{trainer['lr_step']})")
    group.add_argument('--lr-gamma', type=positive_float,
                       default=trainer['lr_gamma'], help='decay factor '
                       f"(default: {trainer['lr_gamma']})")
    group.add_argument('--patience', type=non_negative_int,
                       default=trainer['patience'],
                       help='early stopping patience in epochs (default: '
                       f"{trainer['patience']})")
    group.add_argument('--device', default='auto',
                       help="auto (CUDA when available), cpu, cuda, cuda:1")
    group.add_argument('--seed', type=int, default=2019)
    group.add_argument('--out', help='run folder for checkpoints '
                       '(default: runs/<model>-<dataset>-<time>)')
    group.add_argument('--resume', action='store_true', help='continue the '
                       'run in --out from its last complete epoch')
    group.add_argument('--json', help='write the run record to this file')
    group.add_argument('--no-progress', action='store_true')
    group.add_argument('--compile', action='store_true', help='compile the '
                       'training step with torch.compile')
    group.add_argument('--precision', choices=PRECISIONS, default='fp32',
                       help="'bf16': autocast the forwards to bfloat16 "
                       "(parameters, gradients, optimiser state and loss "
                       "stay fp32; default: fp32)")
    return parser


def link_raw(source: str, raw_dir: str) -> None:
    r"""Symbolically links :obj:`source` (a file, or every file of a folder)
    into :obj:`raw_dir` (see :func:`pyg_recs.io.link_files`)."""
    if not osp.exists(source):
        raise FileNotFoundError(f"--raw-from: no such file or folder "
                                f"'{source}'")
    if osp.isdir(source):
        files = [osp.join(source, f) for f in sorted(os.listdir(source))]
    else:
        files = [source]
    try:
        link_files([f for f in files if osp.isfile(f)], raw_dir)
    except ValueError as e:
        raise ValueError(f"--raw-from: {e} (another --root "
                         f"gives another folder)") from None


def train(args: argparse.Namespace) -> Dict[str, Any]:
    from pyg_recs.engine import run

    recipe = RECIPES[args.model]
    if args.root is None:
        args.root = osp.join('datasets', args.dataset)
    if args.raw_from is not None:
        link_raw(args.raw_from, osp.join(args.root, 'raw'))
    settings = {
        key: getattr(args, key)
        for key in recipe.settings
        if getattr(args, key, None) is not None
    }
    out = args.out or osp.join(
        'runs', f'{args.model}-{args.dataset}-{time.strftime("%Y%m%d-%H%M%S")}')
    record = run(
        args.model, settings, epochs=args.epochs, lr=args.lr,
        weight_decay=args.weight_decay, lr_step=args.lr_step,
        lr_gamma=args.lr_gamma, patience=args.patience, seed=args.seed,
        device=args.device, out_dir=out, resume=args.resume,
        json_path=args.json, progress=not args.no_progress,
        compile=args.compile, precision=args.precision)
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
