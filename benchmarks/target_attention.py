r"""TAGNN's target attention: the library's kernel against the plain PyG
formulation and against its matrix products alone.

.. code-block:: bash

    python benchmarks/target_attention.py ../shared/data/diginetica \
        --threads 1 --tag 2026-12-06-cpu

On real mini-batches (``--batches`` random batches of ``--batch-size``
training examples from the SR-GNN pickles in ``DATA``), with random item
and node states of width ``--hidden``, it times forward and backward of
the attention :math:`\sum_t \mathrm{softmax}_t(\mathbf{v}_i^{\top}
\mathbf{W} \mathbf{h}_t)\, \mathbf{v}_i^{\top} \mathbf{h}_t` for every
session and every item:

- ``pyg-clicks``: one row per click, :func:`torch_geometric.utils.softmax`
  over the session index and :func:`~torch_geometric.utils.scatter`
  (TAGNN before 2026-12-06);
- ``fused-nodes``: one row per session node with :math:`\log c` for a
  node clicked :math:`c` times, and
  :func:`pyg_recs.nn.aggr.target_attention` (as :class:`TAGNN` runs);
- ``floor``: the two matrix products of ``fused-nodes`` and their
  backward alone (the unavoidable arithmetic).

Writes ``<out-dir>/<tag>-target-attention.json`` and ``.md``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(HERE))

from torch_geometric.data import Batch  # noqa: E402
from torch_geometric.utils import scatter, softmax  # noqa: E402

from pyg_recs.data import session_to_graph  # noqa: E402
from pyg_recs.data.safe_pickle import safe_load  # noqa: E402
from pyg_recs.io import atomic_write  # noqa: E402
from pyg_recs.nn.aggr import target_attention  # noqa: E402


def pyg_clicks(h, w, items, b):
    clicks = h[b.click_index]
    session = b.batch[b.click_index]
    beta = softmax(clicks @ w @ items.t(), session, dim=0,
                   num_nodes=b.num_graphs)
    return scatter(beta * (clicks @ items.t()), session, dim=0,
                   dim_size=b.num_graphs, reduce='sum')


def fused_nodes(h, w, items, b):
    return target_attention(h, h @ w, items, b.click_index, b.batch,
                            b.num_graphs)


def floor(h, w, items, b):
    return (h @ w @ items.t()).sum(0) + (h @ items.t()).sum(0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data', help='folder with train.txt (SR-GNN pickle)')
    parser.add_argument('--batch-size', type=int, default=100)
    parser.add_argument('--batches', type=int, default=6)
    parser.add_argument('--hidden', type=int, default=100)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--tag', default=time.strftime('%Y-%m-%d'))
    parser.add_argument('--out-dir', default=osp.join(HERE, 'results'))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = osp.join(args.data, 'train.txt')
    with open(path, 'rb') as f:
        seqs, targets = safe_load(f.read())
    num_items = max(max(max(s) for s in seqs), max(targets)) + 1
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(args.batches):
        idx = rng.choice(len(seqs), args.batch_size, replace=False)
        batches.append(Batch.from_data_list(
            [session_to_graph(seqs[i], targets[i]) for i in idx]))
    torch.manual_seed(0)
    items = torch.randn(num_items, args.hidden).mul_(0.1).requires_grad_()
    w = torch.randn(args.hidden, args.hidden).mul_(0.1).requires_grad_()
    states = [torch.randn(b.num_nodes, args.hidden).mul_(0.1)
              .requires_grad_() for b in batches]

    def step(fn):
        for h, b in zip(states, batches):
            out = fn(h, w, items, b)
            out.sum().backward()
        items.grad = w.grad = None

    # Same results first.
    for h, b in zip(states, batches):
        a, f = pyg_clicks(h, w, items, b), fused_nodes(h, w, items, b)
        assert torch.allclose(a, f, rtol=1e-4, atol=1e-5), (a - f).abs().max()
    times = {name: [] for name in ('pyg-clicks', 'fused-nodes', 'floor')}
    fns = {'pyg-clicks': pyg_clicks, 'fused-nodes': fused_nodes,
           'floor': floor}
    for name, fn in fns.items():
        step(fn)  # warm-up
    for _ in range(args.repeats):  # alternately
        for name, fn in fns.items():
            t = time.perf_counter()
            step(fn)
            times[name].append((time.perf_counter() - t) * 1000
                               / len(batches))
    ms = {name: min(v) for name, v in times.items()}
    report = {
        'tag': args.tag, 'data': path, 'num_items': num_items,
        'batch_size': args.batch_size, 'batches': len(batches),
        'hidden': args.hidden, 'threads': torch.get_num_threads(),
        'cpu': platform.processor() or platform.machine(),
        'torch': torch.__version__,
        'mean_clicks': float(np.mean([b.click_index.numel()
                                      for b in batches])),
        'mean_nodes': float(np.mean([b.num_nodes for b in batches])),
        'ms_per_batch': ms, 'all_ms': times,
        'speedup_vs_pyg': ms['pyg-clicks'] / ms['fused-nodes'],
        'over_floor': ms['fused-nodes'] / ms['floor'],
    }
    os.makedirs(args.out_dir, exist_ok=True)
    base = osp.join(args.out_dir, f'{args.tag}-target-attention')
    atomic_write(base + '.json',
                 lambda f: json.dump(report, f, indent=2), mode='w')
    lines = [
        f"# TAGNN target attention, {args.tag}", '',
        f"{len(batches)} batches of {args.batch_size} from `{path}` "
        f"({report['mean_clicks']:.0f} clicks, {report['mean_nodes']:.0f} "
        f"nodes a batch on average), {num_items} items, hidden "
        f"{args.hidden}, {report['threads']} thread(s), forward + backward, "
        f"best of {args.repeats}.", '',
        '| path | ms per batch | vs floor |', '|---|---:|---:|']
    for name in fns:
        lines.append(f"| {name} | {ms[name]:.1f} | "
                     f"{ms[name] / ms['floor']:.2f}x |")
    lines += ['', f"fused-nodes is {report['speedup_vs_pyg']:.2f}x faster "
              f"than pyg-clicks, {report['over_floor']:.2f}x its floor.", '',
              '```bash', 'python benchmarks/target_attention.py '
              + ' '.join(argv if argv is not None else sys.argv[1:]),
              '```', '']
    atomic_write(base + '.md', lambda f: f.write('\n'.join(lines)),
                 mode='w')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
