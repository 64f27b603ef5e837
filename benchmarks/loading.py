r"""Data-loading benchmark for SR-GNN: how long one epoch of mini-batches
takes to assemble, with :class:`pyg_recs.loader.SessionLoader` and with
PyG's :class:`~torch_geometric.loader.DataLoader`, on a processed session
dataset (graphs precomputed in ``process()``). Compare with the
``compute_seconds`` of a training epoch in a run record to see whether an
epoch is bound by data loading or by the model's arithmetic.

.. code-block:: bash

    python benchmarks/loading.py --root datasets/diginetica --batch-size 100
"""
import argparse
import json
import os
import os.path as osp
import time

import torch

HERE = osp.dirname(osp.abspath(__file__))


def time_loader(loader, max_batches=None) -> dict:
    start = time.perf_counter()
    num = 0
    for batch in loader:
        num += 1
        if max_batches is not None and num >= max_batches:
            break
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {'batches': num, 'seconds': seconds,
            'ms_per_batch': 1000 * seconds / max(num, 1)}


def main() -> None:
    from torch_geometric.loader import DataLoader

    from pyg_recs.datasets import SessionDataset
    from pyg_recs.loader import SessionLoader

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', required=True, help='a SessionDataset '
                        'root (SR-GNN pickles in ROOT/raw)')
    parser.add_argument('--batch-size', type=int, default=100)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--pyg-batches', type=int, default=500,
                        help='PyG DataLoader batches to time (it is slow)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()

    dataset = SessionDataset(args.root, 'train')
    ours = time_loader(SessionLoader(dataset, args.batch_size, shuffle=True,
                                     device=args.device))
    pyg = time_loader(DataLoader(dataset, args.batch_size, shuffle=True),
                      args.pyg_batches)
    result = {
        'dataset': args.root,
        'num_graphs': len(dataset),
        'batch_size': args.batch_size,
        'device': args.device,
        'session_loader': ours,
        'pyg_dataloader': pyg,
        'pyg_epoch_seconds_estimate':
        pyg['ms_per_batch'] * ours['batches'] / 1000,
        'speedup': pyg['ms_per_batch'] / ours['ms_per_batch'],
    }
    print(json.dumps(result, indent=2))
    out = args.out or osp.join(HERE, 'results',
                               f"{time.strftime('%Y-%m-%d')}-loading-"
                               f"{args.device}.json")
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
